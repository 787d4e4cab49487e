/* Robust process-shared mutexes (see rmutex.h). */
#include <errno.h>
#include <time.h>

#include "rmutex.h"

int mp__rmutex_init(mp__rmutex *m, bool recursive)
{
    pthread_mutexattr_t a;
    int e = pthread_mutexattr_init(&a);
    if (e)
        return -e;
    /* Error checking even when not recursive: an unlock by a non-holder is
     * reported (MP_EPERM), never silently corrupts the lock. */
    e = pthread_mutexattr_settype(&a,
                                  recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_ERRORCHECK);
    if (!e)
        e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!e)
        e = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!e)
        e = pthread_mutex_init(&m->m, &a);
    pthread_mutexattr_destroy(&a);
    return -e;
}

void mp__rmutex_fini(mp__rmutex *m)
{
    pthread_mutex_destroy(&m->m);
}

static int map_lock_error(int e)
{
    return e == 0 ? 0 : -e;
}

int mp__rmutex_lock(mp__rmutex *m, const mp__deadline *d)
{
    if (!d || d->ns < 0)
        return map_lock_error(pthread_mutex_lock(&m->m));
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 30)
    /* clocklock waits on the monotonic clock: the deadline as it is. */
    struct timespec ts = {.tv_sec = (time_t)(d->ns / 1000000000),
                          .tv_nsec = (long)(d->ns % 1000000000)};
    return map_lock_error(pthread_mutex_clocklock(&m->m, CLOCK_MONOTONIC, &ts));
#else
    /* Without clocklock the wait is on CLOCK_REALTIME; recompute it in slices
     * so that a clock step cannot stretch the wait by more than a slice. */
    for (;;) {
        int64_t left = d->ns - mp__now_ns();
        if (left <= 0) {
            int rc = map_lock_error(pthread_mutex_trylock(&m->m));
            return rc == MP_EBUSY ? MP_ETIMEDOUT : rc;
        }
        if (left > 100000000)
            left = 100000000;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t abs = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + left;
        ts.tv_sec = (time_t)(abs / 1000000000);
        ts.tv_nsec = (long)(abs % 1000000000);
        int e = pthread_mutex_timedlock(&m->m, &ts);
        if (e != ETIMEDOUT)
            return map_lock_error(e);
    }
#endif
}

int mp__rmutex_trylock(mp__rmutex *m)
{
    return map_lock_error(pthread_mutex_trylock(&m->m));
}

int mp__rmutex_unlock(mp__rmutex *m)
{
    return map_lock_error(pthread_mutex_unlock(&m->m));
}

int mp__rmutex_consistent(mp__rmutex *m)
{
    return map_lock_error(pthread_mutex_consistent(&m->m));
}
