/* Robust process-shared mutexes (see os/robust_mutex.h). */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "os/robust_mutex.h"

#if defined(__SANITIZE_THREAD__)
#define MP__ROBUST_MUTEX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MP__ROBUST_MUTEX_TSAN 1
#endif
#endif

#if defined(MP__ROBUST_MUTEX_TSAN)
#include <sanitizer/tsan_interface.h>

/* ThreadSanitizer sees the threads of one process only. A lock released in
 * another process orders what that process did with memory this process
 * wrote earlier (a block freed here, taken and filled there, published back
 * under another lock): without help TSan reports the two accesses here as
 * a race. So under TSan every unlock of a robust mutex releases, and every
 * lock acquires, one process-wide sync object: what a thread did before an
 * unlock is ordered before whatever any thread does after a later lock.
 * The price is that TSan no longer sees two threads of one process using
 * different robust mutexes for the same data. */
static char tsan_sync;
#define TSAN_ACQUIRED(e)                                                                           \
    do {                                                                                           \
        if ((e) == 0 || (e) == EOWNERDEAD)                                                         \
            __tsan_acquire(&tsan_sync);                                                            \
    } while (0)
#endif

int mp__robust_mutex_init(mp__robust_mutex *m, bool recursive)
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

void mp__robust_mutex_fini(mp__robust_mutex *m)
{
    pthread_mutex_destroy(&m->m);
}

static int map_lock_error(int e)
{
    return e == 0 ? 0 : -e;
}

/* A robust futex can lose a wake-up when its holder dies between releasing
 * it and waking a waiter: the mutex is then free while the waiter sleeps on.
 * So no wait is longer than a slice; after each, the lock is tried again. */
#define MP__ROBUST_MUTEX_SLICE_NS 20000000

#if defined(MP__ROBUST_MUTEX_TSAN)
/* ThreadSanitizer (GCC 12) follows a mutex taken over from a dead holder
 * (EOWNERDEAD) through lock and trylock only, not through the timed locks.
 * A plain lock cannot be bounded against the lost wake-up above, so under
 * it every lock is a trylock, retried after a sleep that doubles from 20 us
 * to 1 ms, until the deadline. */
static int lock_polling(mp__robust_mutex *m, const mp__deadline *d)
{
    long nap_ns = 20000;
    for (;;) {
        int e = pthread_mutex_trylock(&m->m);
        if (e != EBUSY) {
            TSAN_ACQUIRED(e);
            return map_lock_error(e);
        }
        int64_t left = d && d->ns >= 0 ? d->ns - mp__now_ns() : INT64_MAX;
        if (left <= 0)
            return MP_ETIMEDOUT;
        struct timespec ts = {0, left < nap_ns ? (long)left : nap_ns};
        nanosleep(&ts, NULL);
        if (nap_ns < 1000000)
            nap_ns *= 2;
    }
}
#endif

int mp__robust_mutex_lock(mp__robust_mutex *m, const mp__deadline *d)
{
#if defined(MP__ROBUST_MUTEX_TSAN)
    return lock_polling(m, d);
#else
    for (;;) {
        int64_t until = mp__now_ns() + MP__ROBUST_MUTEX_SLICE_NS;
        bool last = d && d->ns >= 0 && d->ns <= until;
        if (last)
            until = d->ns;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 30)
        struct timespec ts = {.tv_sec = (time_t)(until / 1000000000),
                              .tv_nsec = (long)(until % 1000000000)};
        int e = pthread_mutex_clocklock(&m->m, CLOCK_MONOTONIC, &ts);
#else
        /* Without clocklock the slice is measured on CLOCK_REALTIME. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t abs = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (until - mp__now_ns());
        ts.tv_sec = (time_t)(abs / 1000000000);
        ts.tv_nsec = (long)(abs % 1000000000);
        int e = pthread_mutex_timedlock(&m->m, &ts);
#endif
        if (e != ETIMEDOUT || last)
            return map_lock_error(e);
    }
#endif
}

int mp__robust_mutex_trylock(mp__robust_mutex *m)
{
    int e = pthread_mutex_trylock(&m->m);
#if defined(MP__ROBUST_MUTEX_TSAN)
    TSAN_ACQUIRED(e);
#endif
    return map_lock_error(e);
}

int mp__robust_mutex_unlock(mp__robust_mutex *m)
{
#if defined(MP__ROBUST_MUTEX_TSAN)
    __tsan_release(&tsan_sync);
#endif
    return map_lock_error(pthread_mutex_unlock(&m->m));
}

int mp__robust_mutex_consistent(mp__robust_mutex *m)
{
    return map_lock_error(pthread_mutex_consistent(&m->m));
}
