/* Futex system calls (see os/futex.h). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "os/futex.h"

int mp__futex_wait(_Atomic uint32_t *word, uint32_t expected, const mp__deadline *d)
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
        if (mp__deadline_expired(d))
            return MP_ETIMEDOUT;
    }
}

int mp__futex_wake(_Atomic uint32_t *word, int n)
{
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
    return r < 0 ? mp__errno() : (int)r;
}
