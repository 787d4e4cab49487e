/* The family's shared heap, as the library's own modules use it. Not
 * installed; the public side is include/multiproc/heap.h.
 *
 * Every shared object (lock, queue, value, pool, dict, ...) is allocated
 * here, so that a pointer to it is valid in every process of the family. */
#ifndef MULTIPROC_HEAP_H
#define MULTIPROC_HEAP_H

#include <stdbool.h>
#include <stddef.h>

/* Maps the heap if this process has not yet (created lazily on first use).
 * Called by mp_process_start before it forks, so that every child shares
 * the heap and sees objects created after it started. Returns 0,
 * MP_ENOHEAPADDR (the family address is taken), MP_ENOMEM, ... */
int mp__heap_ensure(void);

/* Allocates size bytes of zeroed memory in the heap, aligned to 16 bytes.
 * Returns 0 and *out, or MP_ENOMEM / MP_ENOHEAPADDR / MP_EINVAL (size 0 or
 * absurd); *out is untouched on failure. */
int mp__heap_alloc(void **out, size_t size);

/* Frees a block from mp__heap_alloc (NULL: no-op). */
void mp__heap_free(void *p);

/* True when [p, p + len) lies inside the heap (the check behind "foreign
 * pointer" errors of the shared objects). */
bool mp__heap_contains(const void *p, size_t len);

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

#endif /* MULTIPROC_HEAP_H */
