/* Arrays that grow with a job's task count (a distributed pool's slots,
 * an iterator's buffers), each in a mapping of its own. Not installed.
 *
 * Such an array is first written page by page as the tasks go out and
 * their results come back. From malloc, every 4 KiB page of it is a page
 * fault (about 8 µs each on a virtual machine), and a growing array is
 * copied by realloc into fresh pages that fault again, once the heap's
 * dynamic mmap threshold has moved it off a mapping of its own: together
 * a sixth of a tiny-task client's time. Here an array grows with mremap
 * (no copy: its pages move with it), and one of MP__BULK_HUGE bytes or
 * more is marked MADV_HUGEPAGE, so that the kernel backs each aligned
 * 2 MiB with one page where it can (transparent_hugepage "madvise",
 * Debian's default, asks for the mark; "always" needs none; "never"
 * ignores it). MP_DISABLE_HUGEPAGE=1 leaves the mark off (to measure it).
 *
 * New bytes read zero. The memory is the process's like malloc's (a fork
 * copies it on write); sanitizers do not see inside it. */
#ifndef MULTIPROC_OS_BULK_H
#define MULTIPROC_OS_BULK_H

#include <stddef.h>

/* Arrays of this size or more are marked MADV_HUGEPAGE. */
#define MP__BULK_HUGE ((size_t)4 << 20)

/* An array of len bytes, zeroed (p NULL, old_len 0), or p of old_len bytes
 * grown or shrunk to len keeping its first min(old_len, len) bytes, maybe
 * moved. NULL when the kernel refuses (ENOMEM): p is then unchanged. len 0
 * is a valid empty array, NULL. */
void *mp__bulk_resize(void *p, size_t old_len, size_t len);

/* Frees the array p of len bytes (the length it was last given). NULL:
 * no-op. */
void mp__bulk_free(void *p, size_t len);

/* A buffer kept from one batch to the next (a worker's per-batch arrays):
 * malloc'd and freed for every batch, they moved the heap's top up and
 * down, and the pages the heap gave back and took again faulted for every
 * batch, a quarter of a tiny-task worker's time. It grows to the largest
 * size asked and is kept until mp__scratch_free. Zero it is empty. */
typedef struct mp__scratch {
    void *p;
    size_t cap;
} mp__scratch;

/* n elements of size bytes from s, zeroed as by calloc (the buffer's
 * previous contents are gone), valid until the next call on s; NULL when
 * n * size overflows or without memory (s unchanged). */
void *mp__scratch_array(mp__scratch *s, size_t n, size_t size);

/* The same without the zeroing, for an array the caller writes whole
 * before it reads it: its bytes are undefined. */
void *mp__scratch_get(mp__scratch *s, size_t n, size_t size);

/* Frees s's buffer and empties it. */
void mp__scratch_free(mp__scratch *s);

#endif /* MULTIPROC_OS_BULK_H */
