/* The shared heap's consistency checker and statistics. */
#include <limits.h>
#include <sys/stat.h>

#include "heap/heap_internal.h"

#define MP__BAD(...)                                                                               \
    do {                                                                                           \
        mp__debug("heap check: " __VA_ARGS__);                                                     \
        return MP_EBADMSG;                                                                         \
    } while (0)

/* Walks the spans in use (page lock held): every run must start with a
 * valid header; runs without one are leaks (a kill between a large block's
 * hole punch and its bits). Counts the slabs of each class. */
static int walk_spans(const mp__hhdr *h, uint64_t *slabs, uint64_t *leaked)
{
    uint64_t i = 0, used = 0;
    *leaked = 0;
    while (i < h->high) {
        if (!mp__bit(h, i)) {
            i++;
            continue;
        }
        const mp__hspan *sp = (const mp__hspan *)mp__span_addr(h, i);
        uint64_t n = 1;
        if (sp->magic != MP__SPAN_MAGIC) {
            (*leaked)++;
        } else if (sp->kind == MP__SPAN_SLAB) {
            if (sp->cls >= MP__NCLASS || sp->bsize != mp__class_size[sp->cls] ||
                sp->nblocks != (MP__SPAN - MP__SPAN_HDR) / sp->bsize ||
                sp->inv != (uint32_t)((1ULL << 32) / sp->bsize + 1))
                MP__BAD("span %llu: bad slab header", (unsigned long long)i);
            if (slabs)
                slabs[sp->cls]++;
        } else if (sp->kind == MP__SPAN_LARGE) {
            n = sp->nspans;
            if (n == 0 || n > h->nspans - i)
                MP__BAD("span %llu: bad large block length", (unsigned long long)i);
            for (uint64_t j = i; j < i + n; j++)
                if (!mp__bit(h, j))
                    MP__BAD("span %llu: large block over a free span", (unsigned long long)i);
        } else {
            MP__BAD("span %llu: unknown kind %u", (unsigned long long)i, sp->kind);
        }
        used += n;
        i += n;
    }
    for (uint64_t j = h->high; j < h->nspans && j < h->high + 128; j++)
        if (mp__bit(h, j))
            MP__BAD("span %llu in use above the high mark", (unsigned long long)j);
    if (used != h->used)
        MP__BAD("%llu spans in use, counter says %llu", (unsigned long long)used,
                (unsigned long long)h->used);
    return 0;
}

static int check_header(const mp__hhdr *h)
{
    if (h->magic != MP__HEAP_MAGIC)
        MP__BAD("bad magic");
    if (h->spans_off % MP__SPAN || h->spans_off + (h->nspans << MP__SPAN_SHIFT) > h->size)
        MP__BAD("bad geometry");
    if (h->high > h->nspans || h->hint > h->nspans)
        MP__BAD("high mark or hint out of range");
    if (h->pending.op != MP__OP_NONE)
        MP__BAD("span operation left pending");
    return 0;
}

/* One class (its lock held): the free list is acyclic, made of blocks of
 * this class that carry the free mark, and the bump word names one of its
 * slabs. */
static int check_class(mp__hhdr *h, int c, uint64_t slabs)
{
    const mp__hclass *k = &h->cls[c];
    uint64_t per = (MP__SPAN - MP__SPAN_HDR) / mp__class_size[c];
    uint64_t limit = slabs * per, n = 0;
    for (void *p = k->free; p; p = *(void **)p) {
        if (!mp__heap_is_block(h, p, c))
            MP__BAD("class %d: free list holds %p, not one of its blocks", c, p);
        if (!mp__block_marked(p))
            MP__BAD("class %d: free block %p written after its free", c, p);
        if (++n > limit)
            MP__BAD("class %d: free list longer than its slabs (a cycle)", c);
    }
    if (k->bump) {
        uint64_t s = (k->bump >> 32) - 1, idx = k->bump & 0xffffffffu;
        const mp__hspan *sp = (const mp__hspan *)mp__span_addr(h, s);
        if (s >= h->nspans || !mp__bit(h, s) || sp->magic != MP__SPAN_MAGIC ||
            sp->kind != MP__SPAN_SLAB || sp->cls != (uint32_t)c || idx >= sp->nblocks)
            MP__BAD("class %d: bad bump word", c);
    }
    return 0;
}

int mp_heap_check(void)
{
    int rc = mp__heap_ensure();
    if (rc < 0)
        return rc;
    mp__hhdr *h = atomic_load_explicit(&mp__heap, memory_order_acquire);
    int locked = 0;
    /* Classes before the page lock: the order of the allocation paths. */
    for (; locked < MP__NCLASS; locked++)
        if ((rc = mp__heap_lock_class(h, locked)) < 0)
            goto out;
    if ((rc = mp__heap_lock_page(h)) < 0)
        goto out;
    uint64_t slabs[MP__NCLASS] = {0}, leaked;
    rc = check_header(h);
    if (rc == 0)
        rc = walk_spans(h, slabs, &leaked);
    for (int c = 0; c < MP__NCLASS && rc == 0; c++)
        rc = check_class(h, c, slabs[c]);
    mp__robust_mutex_unlock(&h->page_lock);
out:
    while (locked-- > 0)
        mp__robust_mutex_unlock(&h->cls[locked].lock);
    if (rc == 0) {
        /* Consistent; the frees it refused tell of a bug in the program. */
        uint64_t bad = atomic_load_explicit(&h->bad_frees, memory_order_relaxed);
        if (bad)
            mp__debug("heap check: %llu frees refused (double frees, or not blocks)",
                      (unsigned long long)bad);
        rc = bad > INT_MAX ? INT_MAX : (int)bad;
    }
    return rc;
}

int mp_heap_get_stats(mp_heap_stats *out)
{
    if (!out)
        return mp__fail(MP_EINVAL, "mp_heap_get_stats: out is NULL");
    int rc = mp__heap_ensure();
    if (rc < 0)
        return rc;
    mp__hhdr *h = atomic_load_explicit(&mp__heap, memory_order_acquire);
    if ((rc = mp__heap_lock_page(h)) < 0)
        return rc;
    uint64_t leaked = 0;
    (void)walk_spans(h, NULL, &leaked);
    uint64_t used = h->used;
    mp__robust_mutex_unlock(&h->page_lock);
    struct stat st;
    size_t resident = fstat(mp__heap_fd, &st) == 0 ? (size_t)st.st_blocks * 512 : 0;
    *out = (mp_heap_stats){.base = h,
                           .reserved = h->size,
                           .span_bytes = (size_t)used << MP__SPAN_SHIFT,
                           .resident = resident,
                           .leaked = (size_t)leaked << MP__SPAN_SHIFT,
                           .repairs = atomic_load(&h->repairs),
                           .bad_frees = atomic_load(&h->bad_frees)};
    return 0;
}
