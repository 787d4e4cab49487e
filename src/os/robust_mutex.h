/* Robust process-shared mutexes: the lock under every shared object. Not
 * installed.
 *
 * A thin layer over a pthread mutex that is PTHREAD_PROCESS_SHARED and
 * PTHREAD_MUTEX_ROBUST: the uncontended paths are one atomic instruction
 * with no system call, and when the holder dies (any thread of any process
 * of the family) the kernel's robust-futex list hands the mutex to the next
 * locker with MP_EOWNERDEAD. The caller then repairs what the dead holder
 * left and calls mp__robust_mutex_consistent(); unlocking without doing so makes
 * the mutex unusable (MP_ENOTRECOVERABLE for everyone after), which is what
 * a caller that cannot repair should want.
 *
 * The struct must live in memory shared by the processes that use it (the
 * shared heap) and be initialised once with mp__robust_mutex_init. */
#ifndef MULTIPROC_ROBUST_MUTEX_H
#define MULTIPROC_ROBUST_MUTEX_H

#include <pthread.h>
#include <stdbool.h>

#include "base/internal.h"

typedef struct mp__robust_mutex {
    pthread_mutex_t m;
} mp__robust_mutex;

/* recursive: the same thread may lock it again (counted), as an RLock. */
int mp__robust_mutex_init(mp__robust_mutex *m, bool recursive);
void mp__robust_mutex_fini(mp__robust_mutex *m);

/* Locks until the deadline. Returns 0, MP_EOWNERDEAD (locked: the previous
 * holder died holding it), MP_ETIMEDOUT, MP_ENOTRECOVERABLE, or -EDEADLK
 * (a non-recursive mutex the caller already holds); never MP_EINTR. A NULL
 * deadline, or one without limit, waits forever. */
int mp__robust_mutex_lock(mp__robust_mutex *m, const mp__deadline *d);
/* Never blocks: 0, MP_EOWNERDEAD, MP_EBUSY (held by someone else), ... */
int mp__robust_mutex_trylock(mp__robust_mutex *m);
/* Returns 0, or MP_EPERM when the calling thread does not hold it. */
int mp__robust_mutex_unlock(mp__robust_mutex *m);
/* After MP_EOWNERDEAD and the repair: the mutex is normal again. */
int mp__robust_mutex_consistent(mp__robust_mutex *m);

/* True when the last holder died holding it and nobody has locked it
 * since: one load, for callers that work beside the mutex without taking
 * it and must let the next locker repair first. (glibc: the kernel marks
 * the futex word FUTEX_OWNER_DIED; elsewhere always false.) */
static inline bool mp__robust_mutex_owner_died(mp__robust_mutex *m)
{
#if defined(__GLIBC__)
    return (__atomic_load_n(&m->m.__data.__lock, __ATOMIC_RELAXED) & 0x40000000) != 0;
#else
    (void)m;
    return false;
#endif
}

#endif /* MULTIPROC_ROBUST_MUTEX_H */
