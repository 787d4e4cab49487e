/* Futex waits and wakes on 32-bit words in shared memory. Not installed.
 *
 * Every word the library waits on lives in MAP_SHARED memory (the shared
 * heap), so the calls here are the process-shared (non-private) futex
 * operations. Waits take the absolute monotonic deadline of the blocking
 * call (base/deadline.c), so a retry after EINTR or a spurious wake-up never
 * stretches the wait. */
#ifndef MULTIPROC_FUTEX_H
#define MULTIPROC_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/internal.h"

/* Sleeps while *word == expected, until woken or the deadline passes.
 * Returns 0 when woken (or the word already differed: the caller re-checks
 * its condition either way; wake-ups may be spurious), MP_ETIMEDOUT when the
 * deadline passed. EINTR is retried with the remaining time. */
int mp__futex_wait(_Atomic uint32_t *word, uint32_t expected, const mp__deadline *d);

/* The same for the sleeps of public blocking calls, where the calling
 * thread's interrupt settings (multiproc/interrupt.h) apply: MP_ECANCELED
 * when its cancel is triggered (before or during the sleep, which it
 * wakes), MP_EINTR when a signal handler ran and the thread is
 * interruptible; otherwise EINTR is retried. With a cancel watched the
 * sleep lasts MP__INTR_SLICE_NS at most (0, a spurious wake-up, when the
 * slice ends first). Every caller returns those two codes to its own
 * caller having changed nothing. Internal locks never use it: their waits
 * must end with the lock held. */
int mp__futex_wait_intr(_Atomic uint32_t *word, uint32_t expected, const mp__deadline *d);

/* Wakes at most n sleepers on word (INT32_MAX: all). Returns how many woke. */
int mp__futex_wake(_Atomic uint32_t *word, int n);

#endif /* MULTIPROC_FUTEX_H */
