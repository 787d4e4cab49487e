/* Arrays in mappings of their own (os/bulk.h). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "os/bulk.h"
#include "os/fdio.h"

/* The mapping's length for an array of len bytes: whole pages, and whole
 * huge pages for a large one (its last one can be huge too). */
static size_t map_len(size_t len)
{
    size_t unit = len >= MP__BULK_HUGE ? (size_t)2 << 20 : 4096;
    if (len > SIZE_MAX - unit)
        return 0;
    return (len + unit - 1) / unit * unit;
}

static void advise(void *p, size_t mlen)
{
#ifdef MADV_HUGEPAGE
    static atomic_int off = -1; /* racing first calls store the same value */
    if (mlen < MP__BULK_HUGE)
        return;
    int o = atomic_load_explicit(&off, memory_order_relaxed);
    if (o < 0) {
        o = mp__env_off("MP_DISABLE_HUGEPAGE");
        atomic_store_explicit(&off, o, memory_order_relaxed);
    }
    if (!o)
        (void)madvise(p, mlen, MADV_HUGEPAGE); /* best effort */
#else
    (void)p, (void)mlen;
#endif
}

void *mp__bulk_resize(void *p, size_t old_len, size_t len)
{
    size_t om = p ? map_len(old_len) : 0, nm = map_len(len);
    if (len > 0 && nm == 0)
        return NULL; /* too large to map */
    if (nm == om)
        return p;
    if (nm == 0) {
        munmap(p, om);
        return NULL;
    }
    void *q = om ? mremap(p, om, nm, MREMAP_MAYMOVE)
                 : mmap(NULL, nm, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return NULL;
    advise(q, nm);
    return q;
}

void mp__bulk_free(void *p, size_t len)
{
    if (p)
        munmap(p, map_len(len));
}

void *mp__scratch_get(mp__scratch *s, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t len = n * size;
    if (len == 0)
        len = 1; /* a valid pointer, as calloc's */
    if (s->cap < len) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < len)
            cap = cap > SIZE_MAX / 2 ? len : cap * 2;
        void *p = malloc(cap);
        if (p == NULL)
            return NULL;
        free(s->p);
        s->p = p;
        s->cap = cap;
    }
    return s->p;
}

void *mp__scratch_array(mp__scratch *s, size_t n, size_t size)
{
    void *p = mp__scratch_get(s, n, size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void mp__scratch_free(mp__scratch *s)
{
    free(s->p);
    s->p = NULL;
    s->cap = 0;
}
