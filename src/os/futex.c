/* Futex system calls (see os/futex.h). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "os/futex.h"

/* FUTEX_WAIT_BITSET until d: 0 (woken, or the word had changed),
 * MP_ETIMEDOUT, or -errno. After a signal handler: with intr,
 * MP_EINTR/MP_ECANCELED when the thread's settings say so; the sleep goes
 * on otherwise. */
static int futex_sleep(_Atomic uint32_t *word, uint32_t expected, const mp__deadline *d, bool intr)
{
    /* FUTEX_WAIT_BITSET takes an absolute timeout, on CLOCK_MONOTONIC unless
     * FUTEX_CLOCK_REALTIME is given: exactly the deadline we hold, so EINTR
     * retries need no arithmetic. */
    struct timespec abs;
    const struct timespec *ts = NULL;
    if (d->ns >= 0) {
        abs.tv_sec = (time_t)(d->ns / 1000000000);
        abs.tv_nsec = (long)(d->ns % 1000000000);
        ts = &abs;
    }
    for (;;) {
        long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expected, ts, NULL,
                         FUTEX_BITSET_MATCH_ANY);
        if (r == 0 || errno == EAGAIN)
            return 0;
        if (errno == ETIMEDOUT)
            return MP_ETIMEDOUT;
        if (errno != EINTR)
            return mp__errno();
        int rc = intr ? mp__intr_after_eintr() : 0;
        if (rc < 0)
            return rc;
        if (mp__deadline_expired(d))
            return MP_ETIMEDOUT;
    }
}

int mp__futex_wait(_Atomic uint32_t *word, uint32_t expected, const mp__deadline *d)
{
    return futex_sleep(word, expected, d, false);
}

int mp__futex_wait_intr(_Atomic uint32_t *word, uint32_t expected, const mp__deadline *d)
{
    /* The calling thread's cancel, if any, is checked first and wakes the
     * sleep (the word is registered with it); the sleep then lasts a slice
     * at most, and a slice that ends before d is a spurious wake-up (0). */
    int rc = mp__intr_check();
    if (rc < 0)
        return rc;
    mp__deadline slice;
    mp__intr_slice(&slice, d);
    int slot = mp__intr_watch(word);
    rc = futex_sleep(word, expected, &slice, true);
    mp__intr_unwatch(slot);
    if (rc == MP_ETIMEDOUT && slice.ns != d->ns && !mp__deadline_expired(d))
        rc = 0;
    return rc;
}

int mp__futex_wake(_Atomic uint32_t *word, int n)
{
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
    return r < 0 ? mp__errno() : (int)r;
}
