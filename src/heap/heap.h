/* The family's shared heap, as the library's own modules use it. Not
 * installed; the public side is include/multiproc/heap.h.
 *
 * Every shared object (lock, queue, value, pool, dict, ...) is allocated
 * here, so that a pointer to it is valid in every process of the family. */
#ifndef MULTIPROC_SRC_HEAP_H
#define MULTIPROC_SRC_HEAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Maps the heap if this process has not yet (created lazily on first use).
 * Called by mp_process_start before it forks, so that every child shares
 * the heap and sees objects created after it started. Returns 0,
 * MP_ENOHEAPADDR (the family address is taken), MP_ENOMEM, ... */
int mp__heap_ensure(void);

/* Root slots: a few pointer-sized words in the heap's header, at the same
 * address in every process that maps the family's heap, whichever way it
 * was started (fork, spawn, forkserver). They are the family's well-known
 * entry points, where shared state reachable by name is anchored. Zero
 * when the heap is made; whoever fills one does so with compare-and-swap,
 * so that racing processes agree on one value. */
enum {
    MP__ROOT_MANAGER = 0, /* the local manager's registry (an mp_dict) */
    MP__HEAP_ROOTS = 8
};

/* The address of root slot `slot`, mapping the heap first if need be.
 * Returns 0 and *out, MP_EINVAL (slot out of range), or an error of
 * mp__heap_ensure. */
int mp__heap_root(unsigned slot, _Atomic(void *) **out);

/* Allocates size bytes of zeroed memory in the heap, aligned to 16 bytes.
 * Returns 0 and *out, or MP_ENOMEM / MP_ENOHEAPADDR / MP_EINVAL (size 0 or
 * absurd); *out is untouched on failure. */
int mp__heap_alloc(void **out, size_t size);
/* The same, for the public function fn: a failure sets a detail naming
 * fn, the size and the heap's room (mp__heap_alloc sets none of its own). */
int mp__heap_alloc_for(const char *fn, void **out, size_t size);

/* Frees a block from mp__heap_alloc (NULL: no-op). */
void mp__heap_free(void *p);

/* The block area of this process's heap, [mp__heap_lo, mp__heap_hi]; both
 * 0 until the heap is mapped, then never changed. hi is stored before lo,
 * which is stored with release and loaded with acquire. */
extern _Atomic uintptr_t mp__heap_lo, mp__heap_hi;

/* True when [p, p + len) lies inside the heap (the check behind "foreign
 * pointer" errors of the shared objects). A few compares, no access to the
 * memory: every public function of a shared type makes it first. */
static inline bool mp__heap_contains(const void *p, size_t len)
{
    uintptr_t lo = atomic_load_explicit(&mp__heap_lo, memory_order_acquire);
    uintptr_t hi = atomic_load_explicit(&mp__heap_hi, memory_order_relaxed);
    uintptr_t a = (uintptr_t)p;
    return lo != 0 && a >= lo && a <= hi && len <= hi - a;
}

/* True when the len bytes at p (4-aligned, within one page) can be read
 * without a fault, asked of the kernel: for a pointer outside the heap that
 * may be a process-local handle (a Redis object) or garbage. One system
 * call. A page unmapped by another thread right after may still fault. */
bool mp__mem_readable(const void *p, size_t len);

/* A small per-thread memory of process-local handles (Redis objects) this
 * thread found readable, so that a stream of calls on one handle pays the
 * kernel probe above once. An entry holds only while no handle has been
 * freed in this process since it was remembered: mp__handle_freed, called
 * before every handle's memory is freed, forgets them all. */
bool mp__handle_known(const void *p);
void mp__handle_remember(const void *p);
void mp__handle_freed(void);

/* For spawn and forkserver, which exec a fresh image: the heap's memfd,
 * family address and size, mapping the heap first if need be (fd < 0 when
 * there is no heap and none could be made; the child then runs without).
 * The fd stays owned by the heap. */
int mp__heap_export(int *fd, void **addr, size_t *size);

/* In a freshly exec'd child, before anything else uses the heap: map the
 * parent's heap (fd inherited through exec) at its family address. Takes
 * ownership of fd. Returns 0, or MP_ENOHEAPADDR when the address is taken
 * in this image, or MP_EBADMSG when fd is not a heap of this layout. */
int mp__heap_adopt(int fd, void *addr, size_t size);

/* Gives the calling thread's cached free blocks back to the heap. Called
 * by a child before it leaves with _exit, which skips the atexit handler
 * that does it otherwise; without it a child's exit would leak them. */
void mp__heap_thread_flush(void);

#endif /* MULTIPROC_SRC_HEAP_H */
