/* The layout of the shared heap, shared by heap/heap.c (mapping, public API),
 * heap/heap_alloc.c (the allocator) and heap/heap_check.c (the checker). Not
 * installed.
 *
 * The heap is one memfd mapped at the family address. Its first bytes hold
 * the header (struct mp__hhdr: locks, size-class lists, the pending-operation
 * record), then a bitmap with one bit per span, then the spans: 64 KiB units,
 * each either free, the slab of one small size class, or part of a large
 * block. Every span in use starts with a span header (struct mp__hspan).
 * All metadata lives in the heap, so any process of the family can repair
 * what a dead one left. */
#ifndef MULTIPROC_HEAP_INTERNAL_H
#define MULTIPROC_HEAP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap/heap.h"
#include "base/internal.h"
#include "os/robust_mutex.h"

/* Sanitizer builds (GCC names them, clang has __has_feature). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MP__ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define MP__TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define MP__ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define MP__TSAN 1
#endif

#define MP__SPAN_SHIFT 16
#define MP__SPAN       ((size_t)1 << MP__SPAN_SHIFT)
#define MP__SPAN_HDR   64 /* bytes before the first block of a span */
#define MP__SMALL_MAX  8192
#define MP__NCLASS     32
#define MP__HEAP_MAGIC 0x6d7068656170ULL /* "mpheap" */
#define MP__SPAN_MAGIC 0x5350414eU       /* "SPAN" */
#define MP__HEAP_MIN   ((size_t)1 << 20)
#define MP__ALLOC_MAX  ((size_t)4 << 40) /* above: no heap of any build fits it */
#define MP__TC_CAP     32                /* blocks a thread keeps per size class */
#define MP__TC_BATCH   16                /* blocks moved between a thread and the heap at once */

/* The span-level operation in progress under the page lock, so that the
 * next holder can finish or undo what a dead holder started. */
enum { MP__OP_NONE = 0, MP__OP_ALLOC = 1, MP__OP_FREE = 2 };

typedef struct mp__hpending {
    uint32_t op;
    int32_t cls; /* size class a new slab goes to, or -1 */
    uint64_t first, n;
} mp__hpending;

/* One small size class. The lock guards free and bump. */
typedef struct mp__hclass {
    mp__robust_mutex lock;
    void *free;    /* singly linked through each free block's first word */
    uint64_t bump; /* (span index + 1) << 32 | next block index; 0: none */
    char pad[128 - sizeof(mp__robust_mutex) - 16];
} mp__hclass;

typedef struct mp__hhdr {
    uint64_t magic; /* written last at creation */
    uint64_t size;  /* bytes of the whole mapping */
    uint64_t nspans;
    uint64_t spans_off; /* offset of span 0 from the heap's start */
    mp__robust_mutex page_lock;
    /* Guarded by page_lock: */
    mp__hpending pending;
    uint64_t high;                         /* spans below this index were used at least once */
    uint64_t hint;                         /* no free span below this index */
    uint64_t used;                         /* spans in use */
    _Atomic uint64_t repairs;              /* dead holders repaired (statistics) */
    _Atomic uint64_t bad_frees;            /* frees refused: double, or not a block */
    _Atomic(void *) roots[MP__HEAP_ROOTS]; /* mp__heap_root; zero at creation */
    char pad[64];
    mp__hclass cls[MP__NCLASS];
    _Atomic uint64_t bitmap[]; /* one bit per span: 1 = in use; written under page_lock */
} mp__hhdr;

enum { MP__SPAN_SLAB = 1, MP__SPAN_LARGE = 2 };

typedef struct mp__hspan {
    uint32_t magic;
    uint32_t kind;
    uint32_t cls;    /* slab: size class */
    uint32_t bsize;  /* slab: block size */
    uint64_t nspans; /* large: spans of the block */
    uint64_t nblocks;
    uint32_t inv; /* slab: 2^32 / bsize + 1, so that off / bsize is a multiply */
} mp__hspan;

/* A free small block (in a free list, in a thread cache, or not yet handed
 * out by its slab) carries a mark in its second word; an allocated block
 * does not (mp_alloc zeroes it). The mark is keyed by the block's address,
 * so that the bytes of a free block copied elsewhere are not a mark there.
 * mp_free claims a block by a compare-and-swap that sets the mark: of two
 * frees of one block, in any processes, exactly one wins and the other
 * sees the mark and changes nothing. Blocks are at least 16 bytes, so the
 * second word never meets the free-list link in the first. */
#define MP__FREE_MARK 0x6d70667265656421ULL /* "mpfree!" */

static inline _Atomic uint64_t *mp__mark_word(void *p)
{
    return (_Atomic uint64_t *)(void *)((char *)p + 8);
}

static inline uint64_t mp__free_mark(const void *p)
{
    return MP__FREE_MARK ^ (uint64_t)(uintptr_t)p;
}

static inline bool mp__block_marked(void *p)
{
    return atomic_load_explicit(mp__mark_word(p), memory_order_relaxed) == mp__free_mark(p);
}

/* The heap of this process (NULL until mapped) and its memfd. */
extern _Atomic(mp__hhdr *) mp__heap;
extern int mp__heap_fd;

/* The family address of this build (heap/heap.c). */
uintptr_t mp__heap_family_addr(void);

/* Size classes (heap/heap_alloc.c). */
extern const uint32_t mp__class_size[MP__NCLASS];
int mp__size_class(size_t size); /* -1 above MP__SMALL_MAX */

static inline char *mp__span_addr(const mp__hhdr *h, uint64_t i)
{
    return (char *)h + h->spans_off + (i << MP__SPAN_SHIFT);
}

static inline bool mp__bit(const mp__hhdr *h, uint64_t i)
{
    return (atomic_load_explicit(&h->bitmap[i >> 6], memory_order_relaxed) >> (i & 63)) & 1;
}

/* Locks with the repair of a dead holder's leftovers (heap/heap_alloc.c).
 * Return 0, or MP_ENOTRECOVERABLE. */
int mp__heap_lock_page(mp__hhdr *h);
int mp__heap_lock_class(mp__hhdr *h, int c);
/* Once per process, before the first allocation: size classes, the fork
 * epoch and the thread-cache key (heap/heap_alloc.c). */
int mp__heap_cache_setup(void);
/* True when p is a block of size class c (checks the span and the offset). */
bool mp__heap_is_block(mp__hhdr *h, const void *p, int c);
/* Usable bytes of a block, 0 for a pointer that is not one. */
size_t mp__heap_usable(const void *p);

#endif /* MULTIPROC_HEAP_INTERNAL_H */
