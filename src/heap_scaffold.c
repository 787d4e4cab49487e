/* TEMPORARY development scaffold: NOT the real heap, never to be merged.
 * A bump allocator over a memfd mapped at a fixed address (so that spawned
 * children can map it too). free() leaks. */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap.h"
#include "internal.h"

#define SCAFFOLD_SIZE ((size_t)1 << 30)
#if defined(__SANITIZE_THREAD__)
#define SCAFFOLD_ADDR ((void *)0x004000000000ull)
#else
#define SCAFFOLD_ADDR ((void *)0x300000000000ull)
#endif

static char *base;
static int heap_fd = -1;

static int scaffold_map(int fd)
{
    void *p = mmap(SCAFFOLD_ADDR, SCAFFOLD_SIZE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE | MAP_FIXED_NOREPLACE, fd, 0);
    if (p == MAP_FAILED)
        return MP_ENOHEAPADDR;
    if (p != SCAFFOLD_ADDR) {
        munmap(p, SCAFFOLD_SIZE);
        return MP_ENOHEAPADDR;
    }
    base = p;
    heap_fd = fd;
    return 0;
}

__attribute__((constructor)) static void scaffold_init(void)
{
    if (getenv("MP_SPAWN_FD"))
        return; /* a spawned child adopts its parent's */
    int fd = memfd_create("multiproc-heap", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)SCAFFOLD_SIZE) < 0 || scaffold_map(fd) < 0)
        return;
    atomic_store((_Atomic size_t *)(void *)base, 64);
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
    size_t off = atomic_fetch_add((_Atomic size_t *)(void *)base, size);
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

int mp__heap_export(int *fd, void **addr, size_t *size)
{
    *fd = heap_fd;
    *addr = base;
    *size = SCAFFOLD_SIZE;
    return base ? 0 : MP_ENOMEM;
}

int mp__heap_adopt(int fd, void *addr, size_t size)
{
    if (addr != SCAFFOLD_ADDR || size != SCAFFOLD_SIZE)
        return MP_EBADMSG;
    return scaffold_map(fd);
}
