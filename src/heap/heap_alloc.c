/* The shared heap's allocator: spans, size classes and the per-thread cache.
 *
 * Spans (64 KiB) are handed out first-fit from a bitmap under the page lock.
 * A small block (up to 8 KiB) comes from a slab: a span cut into blocks of
 * one size class, whose free blocks form a list guarded by the class's lock.
 * Each thread keeps up to MP__TC_CAP free blocks per class in private
 * memory and moves them to and from the shared lists MP__TC_BATCH at a
 * time, so that most mp_alloc/mp_free calls take no lock at all.
 *
 * Robustness against a process killed at any instruction: every change of
 * shared state that others can see is one aligned 64-bit store (the head of
 * a free list, the bump word of a class), or a span operation recorded in
 * h->pending before it starts, which the next holder of the page lock
 * finishes or undoes when the kernel hands it the lock with EOWNERDEAD. The
 * worst a kill can do is leak the blocks the dead process held: those in
 * use and those in its thread caches. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "heap/heap_internal.h"

/* clang-format off */
const uint32_t mp__class_size[MP__NCLASS] = {
    16, 32, 48, 64, 80, 96, 112, 128,
    160, 192, 224, 256, 320, 384, 448, 512,
    640, 768, 896, 1024, 1280, 1536, 1792, 2048,
    2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
};
/* clang-format on */

/* Size class by (size + 15) / 16, filled once. */
static uint8_t class_of16[MP__SMALL_MAX / 16 + 1];
static pthread_once_t class_once = PTHREAD_ONCE_INIT;

static void class_init(void)
{
    int c = 0;
    for (size_t i = 0; i <= MP__SMALL_MAX / 16; i++) {
        while (mp__class_size[c] < i * 16)
            c++;
        class_of16[i] = (uint8_t)c;
    }
}

int mp__size_class(size_t size)
{
    if (size > MP__SMALL_MAX)
        return -1;
    return class_of16[(size + 15) >> 4];
}

/* ---- locks and repair ---------------------------------------------------*/

static void clear_bits(mp__hhdr *h, uint64_t first, uint64_t n)
{
    for (uint64_t i = first; i < first + n; i++)
        atomic_fetch_and_explicit(&h->bitmap[i >> 6], ~(1ULL << (i & 63)), memory_order_relaxed);
}

static uint64_t count_used(const mp__hhdr *h)
{
    uint64_t used = 0;
    for (uint64_t w = 0; w < (h->high + 63) / 64; w++)
        used += (uint64_t)__builtin_popcountll(
            atomic_load_explicit(&h->bitmap[w], memory_order_relaxed));
    return used;
}

static void span_release(mp__hhdr *h, uint64_t first, uint64_t n);

/* A holder of the page lock died. Finish or undo its span operation. An
 * allocation never reached its caller (the lock was still held), so undoing
 * it is safe, unless it made a new slab that its class already points at.
 * An undone allocation may have written a header or free marks: its spans
 * are released too, since a large block is handed out as zeros. */
static void repair_page(mp__hhdr *h)
{
    mp__hpending *p = &h->pending;
    if (p->op == MP__OP_ALLOC || p->op == MP__OP_FREE) {
        bool keep = false;
        if (p->op == MP__OP_ALLOC && p->cls >= 0 && p->cls < MP__NCLASS)
            keep = (h->cls[p->cls].bump >> 32) == p->first + 1;
        if (!keep && p->first < h->nspans && p->n <= h->nspans - p->first) {
            span_release(h, p->first, p->n);
            clear_bits(h, p->first, p->n);
            if (p->first < h->hint)
                h->hint = p->first;
        }
    }
    p->op = MP__OP_NONE;
    h->used = count_used(h);
    atomic_fetch_add(&h->repairs, 1);
}

/* Locks a heap lock, never sleeping more than a slice at a time. A robust
 * futex can lose a wake-up when a process dies at the wrong instruction of
 * a lock hand-over (the lock is then free while a waiter sleeps on); the
 * stress test under ASan met it. Waking every 20 ms to look again bounds
 * the cost of that to one slice instead of forever. */
static int heap_lock(mp__robust_mutex *m)
{
#if defined(MP__TSAN)
    /* ThreadSanitizer (GCC 12) does not see a lock taken by timedlock with
     * EOWNERDEAD, and would then report its unlock: the robust mutex layer polls
     * with trylock there, which it follows. */
    return mp__robust_mutex_lock(m, NULL);
#else
    int rc = mp__robust_mutex_trylock(m);
    while (rc == MP_EBUSY) {
        /* The realtime clock is good enough: the slice only bounds a sleep. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        int e = pthread_mutex_timedlock(&m->m, &ts);
        rc = e == ETIMEDOUT ? MP_EBUSY : -e;
    }
    return rc;
#endif
}

int mp__heap_lock_page(mp__hhdr *h)
{
    int rc = heap_lock(&h->page_lock);
    if (rc == MP_EOWNERDEAD) {
        mp__debug("heap: repairing after a process died in a span operation");
        repair_page(h);
        rc = mp__robust_mutex_consistent(&h->page_lock);
    }
    return rc;
}

int mp__heap_lock_class(mp__hhdr *h, int c)
{
    int rc = heap_lock(&h->cls[c].lock);
    if (rc == MP_EOWNERDEAD) {
        /* Every change under a class lock is a single store: the list and
         * the bump word are whole. What the dead holder took is leaked. */
        atomic_fetch_add(&h->repairs, 1);
        rc = mp__robust_mutex_consistent(&h->cls[c].lock);
    }
    return rc;
}

/* ---- spans --------------------------------------------------------------*/

/* The pending record is written field by field, its op last, and cleared
 * after the operation's last store. A process dies between two
 * instructions, so only the compiler's order matters here (the next holder
 * gets the lock through the kernel, which makes every executed store
 * visible): compiler barriers fix it. */
static void pending_begin(mp__hhdr *h, uint32_t op, int cls, uint64_t first, uint64_t n)
{
    h->pending.cls = cls;
    h->pending.first = first;
    h->pending.n = n;
    atomic_signal_fence(memory_order_seq_cst);
    h->pending.op = op;
    atomic_signal_fence(memory_order_seq_cst);
}

static void pending_end(mp__hhdr *h)
{
    atomic_signal_fence(memory_order_seq_cst);
    h->pending.op = MP__OP_NONE;
}

/* First fit of n free spans at or above the hint. Above h->high every span
 * is free, so the scan stops there. Returns the index or -1. */
static int64_t span_find(mp__hhdr *h, uint64_t n)
{
    uint64_t run = 0, start = h->hint;
    bool first_free_seen = false;
    for (uint64_t i = h->hint; i < h->nspans; i++) {
        if (i >= h->high) {
            if (run == 0)
                start = i;
            return h->nspans - start >= n ? (int64_t)start : -1;
        }
        if ((i & 63) == 0 &&
            atomic_load_explicit(&h->bitmap[i >> 6], memory_order_relaxed) == ~0ULL &&
            i + 64 <= h->high) {
            run = 0;
            i += 63;
            continue;
        }
        if (mp__bit(h, i)) {
            run = 0;
            continue;
        }
        if (!first_free_seen) {
            first_free_seen = true;
            h->hint = i;
        }
        if (run++ == 0)
            start = i;
        if (run == n)
            return (int64_t)start;
    }
    return -1;
}

/* Takes n spans for a large block (cls < 0) or a new slab of class cls,
 * whose bump word it sets. Returns the first span's index or MP_ENOMEM. */
static int64_t span_alloc(mp__hhdr *h, uint64_t n, int cls)
{
    if (mp__heap_lock_page(h) < 0)
        return MP_ENOMEM;
    int64_t s = n <= h->nspans ? span_find(h, n) : -1;
    if (s < 0) {
        mp__robust_mutex_unlock(&h->page_lock);
        return MP_ENOMEM;
    }
    uint64_t first = (uint64_t)s;
    pending_begin(h, MP__OP_ALLOC, cls, first, n);
    for (uint64_t i = first; i < first + n; i++)
        atomic_fetch_or_explicit(&h->bitmap[i >> 6], 1ULL << (i & 63), memory_order_relaxed);
    h->used += n;
    if (first + n > h->high)
        h->high = first + n;
    if (first == h->hint)
        h->hint = first + n;
    mp__hspan *sp = (mp__hspan *)mp__span_addr(h, first);
    if (cls >= 0) {
        uint32_t bs = mp__class_size[cls];
        /* Every block of a new slab is free: marked, so that a free of one
         * not yet handed out is refused like a double free. */
        for (char *b = (char *)sp + MP__SPAN_HDR; b + bs <= (char *)sp + MP__SPAN; b += bs)
            atomic_store_explicit(mp__mark_word(b), mp__free_mark(b), memory_order_relaxed);
        *sp = (mp__hspan){.magic = MP__SPAN_MAGIC,
                          .kind = MP__SPAN_SLAB,
                          .cls = (uint32_t)cls,
                          .bsize = bs,
                          .nspans = 1,
                          .nblocks = (MP__SPAN - MP__SPAN_HDR) / bs,
                          .inv = (uint32_t)((1ULL << 32) / bs + 1)};
        h->cls[cls].bump = (first + 1) << 32;
    } else {
        *sp = (mp__hspan){.magic = MP__SPAN_MAGIC, .kind = MP__SPAN_LARGE, .nspans = n};
    }
    pending_end(h);
    mp__robust_mutex_unlock(&h->page_lock);
    return s;
}

/* Returns the memory of n spans to the system; they read as zeros after. */
static void span_release(mp__hhdr *h, uint64_t first, uint64_t n)
{
    char *a = mp__span_addr(h, first);
    size_t len = (size_t)n << MP__SPAN_SHIFT;
    off_t off = (off_t)(a - (char *)h);
    if (fallocate(mp__heap_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, (off_t)len) < 0 &&
        madvise(a, len, MADV_REMOVE) < 0)
        memset(a, 0, len); /* large blocks are handed out zeroed */
}

/* Counts and reports a free that changes nothing. */
static void bad_free(mp__hhdr *h, const void *p, const char *why)
{
    atomic_fetch_add_explicit(&h->bad_frees, 1, memory_order_relaxed);
    mp__debug("heap: mp_free(%p): %s; ignored", p, why);
}

/* Gives back the large block starting at span first, memory first, under
 * the page lock and recorded as pending: a holder killed anywhere in
 * between is completed by the next (release again, clear the bits), so a
 * free never leaks address space. The header is checked again under the
 * lock: of two frees of one block (in any processes) the first wipes it
 * (the released memory reads as zeros), the second finds it gone. */
static void large_free(mp__hhdr *h, uint64_t first, const void *p)
{
    if (mp__heap_lock_page(h) < 0)
        return; /* unrecoverable lock: leak rather than corrupt */
    const mp__hspan *sp = (const mp__hspan *)mp__span_addr(h, first);
    uint64_t n = sp->nspans;
    if (!mp__bit(h, first) || sp->magic != MP__SPAN_MAGIC || sp->kind != MP__SPAN_LARGE || n == 0 ||
        n > h->nspans - first) {
        mp__robust_mutex_unlock(&h->page_lock);
        bad_free(h, p, "a large block already free (a double free)");
        return;
    }
    pending_begin(h, MP__OP_FREE, -1, first, n);
    span_release(h, first, n);
    clear_bits(h, first, n);
    h->used -= n;
    if (first < h->hint)
        h->hint = first;
    pending_end(h);
    mp__robust_mutex_unlock(&h->page_lock);
}

/* ---- blocks ------------------------------------------------------------ */

/* The span header of a pointer into the span area, or NULL. */
static mp__hspan *span_of(mp__hhdr *h, const void *p, uint64_t *index)
{
    const char *spans = (const char *)h + h->spans_off;
    if ((const char *)p < spans + MP__SPAN_HDR)
        return NULL;
    uint64_t i = (uint64_t)((const char *)p - spans) >> MP__SPAN_SHIFT;
    if (i >= h->nspans || !mp__bit(h, i))
        return NULL;
    mp__hspan *sp = (mp__hspan *)mp__span_addr(h, i);
    if (sp->magic != MP__SPAN_MAGIC)
        return NULL;
    *index = i;
    return sp;
}

/* True when p, a pointer into slab sp, is the start of one of its blocks.
 * The offset is below 2^16 and a block at most 2^13 bytes, so the multiply
 * by sp->inv gives the exact quotient, without a division on mp_free's
 * path. */
static bool slab_block(const mp__hspan *sp, const void *p)
{
    uint64_t off = (uint64_t)((const char *)p - (const char *)sp) - MP__SPAN_HDR;
    uint64_t q = (off * sp->inv) >> 32;
    return off < MP__SPAN && q * sp->bsize == off && q < sp->nblocks;
}

/* True when p is a block of class c (a free-list link worth following). */
bool mp__heap_is_block(mp__hhdr *h, const void *p, int c)
{
    uint64_t i;
    mp__hspan *sp = span_of(h, p, &i);
    return sp && sp->kind == MP__SPAN_SLAB && sp->cls == (uint32_t)c && slab_block(sp, p);
}

/* Takes up to want blocks of class c from the shared list, then from the
 * class's current slab, then from a new slab. Returns how many (0: the heap
 * is exhausted). */
static int class_take(mp__hhdr *h, int c, void **out, int want)
{
    if (mp__heap_lock_class(h, c) < 0)
        return 0;
    mp__hclass *k = &h->cls[c];
    int got = 0;
    void *p = k->free;
    while (got < want && p) {
        if (!mp__heap_is_block(h, p, c)) {
            /* A write after free broke the list: drop the rest (a leak). */
            mp__debug("heap: corrupt free list of class %d cut at %p", c, p);
            p = NULL;
            break;
        }
        out[got++] = p;
        p = *(void **)p;
    }
    atomic_signal_fence(memory_order_seq_cst);
    k->free = p; /* the one store that takes the blocks */
    while (got < want) {
        if (k->bump == 0 && span_alloc(h, 1, c) < 0)
            break;
        uint64_t s = (k->bump >> 32) - 1, idx = k->bump & 0xffffffffu;
        mp__hspan *sp = (mp__hspan *)mp__span_addr(h, s);
        uint64_t m = sp->nblocks - idx;
        if (m > (uint64_t)(want - got))
            m = (uint64_t)(want - got);
        for (uint64_t j = 0; j < m; j++)
            out[got++] = (char *)sp + MP__SPAN_HDR + (idx + j) * sp->bsize;
        k->bump = idx + m == sp->nblocks ? 0 : ((s + 1) << 32) | (idx + m);
    }
    mp__robust_mutex_unlock(&k->lock);
    return got;
}

/* Returns n blocks of class c to the shared list: linked first (they are
 * still ours), then published by one store of the head. */
static void class_give(mp__hhdr *h, int c, void **blocks, int n)
{
    if (n <= 0)
        return;
    for (int i = 0; i + 1 < n; i++)
        *(void **)blocks[i] = blocks[i + 1];
    if (mp__heap_lock_class(h, c) < 0)
        return; /* leak rather than corrupt */
    *(void **)blocks[n - 1] = h->cls[c].free;
    atomic_signal_fence(memory_order_seq_cst); /* linked before published */
    h->cls[c].free = blocks[0];
    mp__robust_mutex_unlock(&h->cls[c].lock);
}

/* ---- the per-thread cache ---------------------------------------------- */

typedef struct mp__tcache {
    uint64_t epoch; /* process epoch the cached blocks belong to */
    mp__hhdr *heap;
    uint32_t n[MP__NCLASS];
    void *slot[MP__NCLASS][MP__TC_CAP];
} mp__tcache;

static _Thread_local mp__tcache *thread_cache;
static pthread_key_t tc_key;
/* The epoch of this process: a word in a page that fork wipes in the child
 * (MADV_WIPEONFORK, or an atfork handler where the kernel lacks it), so a
 * forked child notices at once that its copied caches hold its parent's
 * blocks and drops them. epoch_next is private memory, copied by fork. */
static _Atomic uint64_t *epoch_word;
static _Atomic uint64_t epoch_next = 1;

static void tc_flush_all(mp__tcache *tc)
{
    if (!tc->heap || tc->epoch != atomic_load_explicit(epoch_word, memory_order_relaxed))
        return; /* a copy made by fork: the blocks are the parent's */
    for (int c = 0; c < MP__NCLASS; c++) {
        class_give(tc->heap, c, tc->slot[c], (int)tc->n[c]);
        tc->n[c] = 0;
    }
}

static void tc_destroy(void *arg)
{
    mp__tcache *tc = arg;
    tc_flush_all(tc);
    thread_cache = NULL;
    free(tc);
}

void mp__heap_thread_flush(void)
{
    if (thread_cache)
        tc_flush_all(thread_cache);
}

static void atfork_child(void)
{
    atomic_store(epoch_word, 0);
}

int mp__heap_cache_setup(void)
{
    pthread_once(&class_once, class_init);
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return mp__errno();
    if (madvise(page, 4096, MADV_WIPEONFORK) < 0 && pthread_atfork(NULL, NULL, atfork_child))
        return MP_ENOMEM;
    epoch_word = page;
    atomic_store(epoch_word, atomic_load(&epoch_next));
    if (pthread_key_create(&tc_key, tc_destroy))
        return MP_ENOMEM;
    atexit(mp__heap_thread_flush);
    return 0;
}

/* This thread's cache, valid for this process; NULL if none can be made. */
static mp__tcache *tc_get(mp__hhdr *h)
{
    mp__tcache *tc = thread_cache;
    uint64_t e = atomic_load_explicit(epoch_word, memory_order_relaxed);
    if (tc && tc->epoch == e && e != 0)
        return tc;
    if (e == 0) {
        /* First call in a forked child: a new epoch, unlike any cache's. */
        uint64_t next = atomic_fetch_add(&epoch_next, 1) + 1;
        if (atomic_compare_exchange_strong(epoch_word, &e, next))
            e = next;
    }
    if (!tc) {
        tc = calloc(1, sizeof(*tc));
        if (!tc)
            return NULL;
        pthread_setspecific(tc_key, tc);
        thread_cache = tc;
    }
    memset(tc->n, 0, sizeof(tc->n));
    tc->epoch = e;
    tc->heap = h;
    return tc;
}

static void *small_pop(mp__hhdr *h, int c)
{
    mp__tcache *tc = tc_get(h);
    void *p = NULL;
    if (!tc) {
        if (class_take(h, c, &p, 1) == 0)
            return NULL;
    } else {
        if (tc->n[c] == 0)
            tc->n[c] = (uint32_t)class_take(h, c, tc->slot[c], MP__TC_BATCH);
        if (tc->n[c] == 0)
            return NULL;
        p = tc->slot[c][--tc->n[c]];
    }
    return p;
}

static void *small_alloc(mp__hhdr *h, int c)
{
    void *p;
    while ((p = small_pop(h, c)) != NULL && !mp__block_marked(p)) {
        /* A write after free wiped the mark: someone may still use the
         * block, so it is left out (a leak) rather than handed out. */
        mp__debug("heap: free block %p was written after its free; left unused", p);
    }
    if (p)
        memset(p, 0, mp__class_size[c]); /* clears the mark: in use */
    return p;
}

/* Marks p free (see MP__FREE_MARK). Returns true when this call freed it,
 * false when it was free already: then the exchange wrote the mark that
 * was there, which changes nothing. One atomic instruction, the only cost
 * the check adds to mp_free. */
static bool block_claim(void *p)
{
    uint64_t mark = mp__free_mark(p);
    return atomic_exchange_explicit(mp__mark_word(p), mark, memory_order_relaxed) != mark;
}

static void small_free(mp__hhdr *h, int c, void *p)
{
    mp__tcache *tc = tc_get(h);
    if (!tc) {
        class_give(h, c, &p, 1);
        return;
    }
    if (tc->n[c] == MP__TC_CAP) {
        /* Give back the oldest half; the most recent stay hot here. */
        class_give(h, c, tc->slot[c], MP__TC_BATCH);
        memmove(tc->slot[c], tc->slot[c] + MP__TC_BATCH,
                (MP__TC_CAP - MP__TC_BATCH) * sizeof(void *));
        tc->n[c] = MP__TC_CAP - MP__TC_BATCH;
    }
    tc->slot[c][tc->n[c]++] = p;
}

/* ---- entry points ------------------------------------------------------ */

/* The detail of a failed allocation of size bytes for fn. */
static int __attribute__((cold)) alloc_fail(const char *fn, int rc, size_t size)
{
    if (!fn)
        return rc;
    if (size == 0)
        return mp__fail(rc, "%s: 0 bytes asked (at least 1)", fn);
    if (size > MP__ALLOC_MAX)
        return mp__fail(rc, "%s: size %zu is above the largest block of any heap (4 TiB)", fn,
                        size);
    mp__hhdr *h = atomic_load_explicit(&mp__heap, memory_order_acquire);
    if (rc != MP_ENOMEM || !h)
        return rc; /* the heap's creation set its own detail */
    uint64_t used = __atomic_load_n(&h->used, __ATOMIC_RELAXED);
    return mp__fail(rc,
                    "%s: %zu bytes do not fit in the shared heap (%zu of %zu bytes in use; "
                    "MP_HEAP_SIZE or mp_init_opts.heap_size sets its size)",
                    fn, size, (size_t)used << MP__SPAN_SHIFT, (size_t)h->size);
}

int mp__heap_alloc(void **out, size_t size)
{
    return mp__heap_alloc_for(NULL, out, size);
}

int mp__heap_alloc_for(const char *fn, void **out, size_t size)
{
    if (!out || size == 0 || size > MP__ALLOC_MAX)
        return alloc_fail(fn, MP_EINVAL, size);
    int rc = mp__heap_ensure();
    if (rc < 0)
        return rc;
    mp__hhdr *h = atomic_load_explicit(&mp__heap, memory_order_acquire);
    int c = mp__size_class(size);
    void *p;
    if (c >= 0) {
        p = small_alloc(h, c);
    } else {
        if (size > h->size)
            return alloc_fail(fn, MP_ENOMEM, size);
        uint64_t n = (size + MP__SPAN_HDR + MP__SPAN - 1) >> MP__SPAN_SHIFT;
        int64_t s = span_alloc(h, n, -1);
        p = s < 0 ? NULL : mp__span_addr(h, (uint64_t)s) + MP__SPAN_HDR;
    }
    if (!p)
        return alloc_fail(fn, MP_ENOMEM, size);
    *out = p;
    return 0;
}

size_t mp__heap_usable(const void *p)
{
    mp__hhdr *h = atomic_load_explicit(&mp__heap, memory_order_acquire);
    uint64_t i;
    mp__hspan *sp = h ? span_of(h, p, &i) : NULL;
    if (!sp)
        return 0;
    if (sp->kind == MP__SPAN_SLAB)
        return slab_block(sp, p) && !mp__block_marked((void *)(uintptr_t)p) ? sp->bsize : 0;
    if ((const char *)p != (const char *)sp + MP__SPAN_HDR)
        return 0;
    return (size_t)(sp->nspans << MP__SPAN_SHIFT) - MP__SPAN_HDR;
}

void mp__heap_free(void *p)
{
    if (!p)
        return;
    mp__hhdr *h = atomic_load_explicit(&mp__heap, memory_order_acquire);
    if (!h) {
        mp__debug("heap: mp_free(%p): no shared heap in this process; ignored", p);
        return;
    }
    uint64_t i;
    mp__hspan *sp = span_of(h, p, &i);
    if (sp && sp->kind == MP__SPAN_SLAB && slab_block(sp, p)) {
        if (block_claim(p))
            small_free(h, (int)sp->cls, p);
        else
            bad_free(h, p, "a block already free (a double free)");
    } else if (sp && sp->kind == MP__SPAN_LARGE && (char *)p == (char *)sp + MP__SPAN_HDR) {
        large_free(h, i, p);
    } else {
        bad_free(h, p, "not a block in use of the shared heap (freed already, or never one)");
    }
}
