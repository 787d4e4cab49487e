/* TEMPORARY development scaffold: NOT the real heap, never to be merged.
 * A bump allocator over one anonymous MAP_SHARED region mapped by a
 * constructor (so it exists before any fork). free() leaks. The real heap
 * (src/heap.c) replaces this file when it lands. */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "heap.h"
#include "internal.h"

#define SCAFFOLD_SIZE ((size_t)1 << 30)

static char *base;
static _Atomic size_t *used;

__attribute__((constructor)) static void scaffold_map(void)
{
    void *p = mmap(NULL, SCAFFOLD_SIZE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return;
    base = p;
    used = (_Atomic size_t *)p;
    atomic_store(used, 64);
}

int mp__heap_ensure(void)
{
    return base ? 0 : MP_ENOMEM;
}

int mp__heap_alloc(void **out, size_t size)
{
    if (!base)
        return MP_ENOMEM;
    if (size == 0 || size > SCAFFOLD_SIZE / 2)
        return MP_EINVAL;
    size = (size + 63) & ~(size_t)63;
    size_t off = atomic_fetch_add(used, size);
    if (off + size > SCAFFOLD_SIZE)
        return MP_ENOMEM;
    *out = base + off;
    return 0;
}

void mp__heap_free(void *p)
{
    (void)p;
}

bool mp__heap_contains(const void *p, size_t len)
{
    const char *c = p;
    return base && c >= base && c + len <= base + SCAFFOLD_SIZE && c + len >= c;
}
