/* multiproc — the family's shared heap.
 *
 *     int *counter = mp_alloc(sizeof *counter);   // zeroed, shared
 *     mp_process_start(p);                          // the child sees *counter
 *     double *late = mp_alloc(8 * sizeof *late);    // ... and this one too,
 *                                                   // if it is told the pointer
 *     mp_free(late);
 *
 * Every process of a family (the processes started by mp_process_start,
 * their children, and so on) maps one shared heap at the same address, so a
 * pointer into it means the same memory in all of them: store it in another
 * shared object, pass it in a task's argument bytes. Memory allocated after
 * a child started is visible to that child. The library's own shared
 * objects (locks, queues, values, pools) live here too.
 *
 * The heap is a memfd reserved large and sparse (64 GiB by default, less
 * under an address-space limit or valgrind: see mp_init_opts; pages are
 * used only when touched) and mapped at a fixed address chosen so that
 * it is free in practically every process (docs/heap.md, "Shared heap").
 * It is created on first use, or by mp_init(), which reports precisely why
 * it could not be: prefer mp_init() at the start of main. Its memory goes
 * back to the system when the last process of the family exits; nothing is
 * left in /dev/shm.
 *
 * A process forked with plain fork() *before* the heap existed does not
 * share it: if it allocates, it creates a heap of its own (a new family).
 * mp_process_start creates the heap before it forks, so its children always
 * share their parent's.
 *
 * Robustness: a process killed at any point, even inside mp_alloc or
 * mp_free, never corrupts the heap nor blocks the others; the worst case is
 * a leak of the blocks it held (in use, or cached for its threads: at most
 * 32 free blocks per size class and thread).
 *
 * Thread safety: every function is safe from any thread of any process of
 * the family at once. Across fork: the child shares the heap.
 */
#ifndef MULTIPROC_HEAP_H
#define MULTIPROC_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "multiproc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_init_opts {
    /* Bytes of address space to reserve (rounded down to 64 KiB, at least
     * 1 MiB). 0: the environment variable MP_HEAP_SIZE (decimal bytes,
     * with an optional K, M, G or T suffix; ignored in secure-execution
     * mode, e.g. setuid), else the default: 64 GiB, 1 GiB under valgrind
     * (LD_PRELOAD names its vgpreload library), and at most a quarter of
     * the address space the soft RLIMIT_AS (ulimit -v) leaves free. */
    size_t heap_size;
} mp_init_opts;

/* mp_init — create and map the shared heap now.
 *
 * opts: NULL or zero fields for the defaults; borrowed until return.
 * Returns 0 (also when the heap already exists with this size), or:
 *   MP_ENOHEAPADDR  the family address is taken in this process (another
 *                   mapping is there): the heap cannot exist here;
 *   MP_ENOMEM       the system refused the reservation (an explicit size
 *                   above what RLIMIT_AS leaves, vm.overcommit_memory=2,
 *                   ...): set MP_HEAP_SIZE smaller; mp_error_detail()
 *                   gives the size tried, where it came from and the limit;
 *   MP_EINVAL       a size below 1 MiB or above the maximum for this build
 *                   (4 TiB; 256 GiB under ThreadSanitizer), or a malformed
 *                   MP_HEAP_SIZE;
 *   MP_EBUSY        the heap already exists with another size.
 * Without mp_init the heap is created by the first call that needs it, and
 * a failure shows only as NULL (mp_alloc) or the error of that call.
 * Thread-safe; a failed call leaves no heap and may be retried.
 */
MP_API int mp_init(const mp_init_opts *opts);

/* mp_alloc — allocate size bytes of zeroed shared memory, 16-byte aligned.
 *
 * Returns the block, valid in every process of the family until mp_free,
 * or NULL for size 0, heap exhaustion, or a heap that cannot be created;
 * mp_error_detail() says which (with the size and the heap's room). Blocks
 * up to 8 KiB come from per-thread caches and take no lock in the common
 * case. */
MP_API void *mp_alloc(size_t size);

/* mp_calloc — mp_alloc(n * size), NULL when the product overflows. */
MP_API void *mp_calloc(size_t n, size_t size);

/* mp_realloc — resize a block, like realloc.
 *
 * p: NULL (then like mp_alloc) or a block of this heap. size 0 frees p and
 * returns NULL. Returns the block (moved or not; the contents up to the
 * smaller size are kept), or NULL with p untouched (exhaustion, or p is not
 * a block of this heap in use). Bytes beyond the old size are unspecified. */
MP_API void *mp_realloc(void *p, size_t size);

/* mp_free — give a block back. NULL is a no-op. Any process of the family
 * may free a block allocated by another. Large blocks (above 8 KiB) give
 * their memory back to the system at once.
 *
 * A wrong free changes nothing: a block already free (a double free, of a
 * block of any size, even by two processes at once), a pointer inside a
 * block or to a block never handed out, a pointer outside the heap. It is
 * reported with MP_DEBUG=1 and counted (mp_heap_check, mp_heap_stats), and
 * a block is never handed out twice because of it. What cannot be told
 * from a valid free: freeing a stale pointer after its block was handed
 * out again (that frees the new owner's block), and a free of a small
 * block whose second 8-byte word holds, by chance or design, the
 * allocator's free mark for that address (the free is then refused: a
 * leak). A small block whose mark a write after free destroyed is left
 * unused rather than handed out (a leak, reported with MP_DEBUG=1). */
MP_API void mp_free(void *p);

/* mp_alloc_size — usable bytes of a block (at least what was asked), 0 for
 * NULL, a freed block or a pointer that is not a block of this heap. */
MP_API size_t mp_alloc_size(const void *p);

/* mp_heap_contains — true when [p, p + len) lies in the heap's block area,
 * i.e. p may be a shared object. False when no heap exists. */
MP_API bool mp_heap_contains(const void *p, size_t len);

typedef struct mp_heap_stats {
    void *base;         /* the family address */
    size_t reserved;    /* bytes of address space reserved */
    size_t span_bytes;  /* bytes of 64 KiB spans in use (slabs and large blocks) */
    size_t resident;    /* bytes of memory the heap holds now (all processes) */
    size_t leaked;      /* bytes of spans in use that no block header accounts
                           for: 0 unless a stray write hit a header */
    uint64_t repairs;   /* locks taken over from a dead process */
    uint64_t bad_frees; /* mp_free calls refused: double frees, pointers
                           that are not blocks (see mp_free) */
} mp_heap_stats;

/* mp_heap_get_stats — figures about the heap (creating it if needed).
 * out: filled on success. Returns 0, MP_EINVAL (out NULL), or the error of
 * mp_init. Walks the spans in use under the heap's page lock. Thread-safe;
 * a snapshot. */
MP_API int mp_heap_get_stats(mp_heap_stats *out);

/* mp_heap_check — check the heap's consistency (a debugging aid).
 *
 * Takes every lock of the heap in turn (repairing what dead processes left,
 * as any caller would), then walks the span bitmap, the span headers, every
 * size class's free list and slab. Slow: O(heap in use). Blocks cached by
 * threads are not seen (they are neither free-listed nor corrupt).
 * Returns 0 when consistent (a leak is not an inconsistency) and no free
 * was ever refused; when consistent but mp_free refused wrong frees (double
 * frees, pointers that are not blocks: see mp_free) in any process of the
 * family since the heap was made, their count (positive, at most INT_MAX);
 * MP_EBADMSG when a structure is corrupt, including a free block written
 * after its free (reported with MP_DEBUG=1: which, where); or the error of
 * mp_init. */
MP_API int mp_heap_check(void);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_HEAP_H */
