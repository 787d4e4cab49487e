/* A robust futex lock for Lock and RLock. Not installed.
 *
 * The word holds the holder's thread id (0 when free) and a "waiters" bit,
 * as in the kernel's robust-futex format. Uncontended acquire is one
 * compare-and-swap, release one exchange: no system call, no robust-list
 * bookkeeping (which doubles the cost of a glibc robust mutex).
 *
 * Robustness without the kernel's robust list: a waiter sleeps in slices of
 * MP__FUTEX_LOCK_PROBE_NS; when a slice ends and the same thread still holds the
 * word, the waiter asks the kernel whether that thread still exists (a
 * thread id is unique among live threads; a killed process's main thread
 * that is a zombie counts as dead). A dead holder's word is taken over with
 * one compare-and-swap, so exactly one waiter wins and gets MP_EOWNERDEAD.
 * Safety never depends on the probe: a false "alive" (the id reused by a
 * new thread) only delays the hand-over until that thread exits; a false
 * "dead" cannot happen, since a live thread's id exists. A try-lock of a
 * busy word probes at once, so an abandoned lock is reported even with
 * timeout 0. */
#ifndef MULTIPROC_FUTEX_LOCK_H
#define MULTIPROC_FUTEX_LOCK_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/internal.h"

#define MP__FUTEX_LOCK_WAITERS  0x80000000u
#define MP__FUTEX_LOCK_TID_MASK 0x3fffffffu
#define MP__FUTEX_LOCK_PROBE_NS 20000000 /* 20 ms */

/* Acquires for thread `self`: 0, MP_EOWNERDEAD (acquired from a dead
 * holder), MP_EDEADLK (self holds it), MP_ETIMEDOUT. A NULL deadline or one
 * without limit waits for ever; a deadline of 0 ns never sleeps. */
int mp__futex_lock_lock(_Atomic uint32_t *word, pid_t self, const mp__deadline *d);
/* The same for a public Lock or RLock: the calling thread's interrupt
 * settings apply (os/futex.h, mp__futex_wait_intr): MP_EINTR or
 * MP_ECANCELED, the word not taken. */
int mp__futex_lock_lock_intr(_Atomic uint32_t *word, pid_t self, const mp__deadline *d);

/* Releases a word held by the caller (the caller checked that). */
static inline void mp__futex_lock_unlock(_Atomic uint32_t *word);

/* Wakes one sleeper (os/futex_lock.c). */
void mp__futex_lock_wake(_Atomic uint32_t *word);

static inline void mp__futex_lock_unlock(_Atomic uint32_t *word)
{
    if (atomic_exchange(word, 0) & MP__FUTEX_LOCK_WAITERS)
        mp__futex_lock_wake(word);
}

/* The fast path of mp__futex_lock_lock, inlined into the callers. */
static inline int mp__futex_lock_trylock_fast(_Atomic uint32_t *word, pid_t self)
{
    uint32_t expect = 0;
    return atomic_compare_exchange_strong(word, &expect, (uint32_t)self) ? 0 : MP_EBUSY;
}

#endif /* MULTIPROC_FUTEX_LOCK_H */
