/* Layouts of the synchronisation objects and what their modules share.
 * Not installed. Every struct here lives in the shared heap. */
#ifndef MULTIPROC_SYNC_INTERNAL_H
#define MULTIPROC_SYNC_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "heap/heap_object.h"
#include "heap/heap.h"
#include "base/internal.h"
#include "sync/sync_remote.h"
#include "os/robust_mutex.h"

/* Magic numbers: the first word of each object (its mp__obj_head), cleared
 * by destroy, so that a foreign or destroyed pointer is refused instead of
 * followed. */
#define MP__LOCK_MAGIC    0x6d704c4bu /* "mpLK" */
#define MP__RLOCK_MAGIC   0x6d70524bu /* "mpRK" */
#define MP__SEM_MAGIC     0x6d705345u /* "mpSE" */
#define MP__COND_MAGIC    0x6d70434fu /* "mpCO" */
#define MP__EVENT_MAGIC   0x6d704556u /* "mpEV" */
#define MP__BARRIER_MAGIC 0x6d704252u /* "mpBR" */

/* A lock and an rlock share one layout: a robust futex word (os/futex_lock.h), the
 * holding thread's id (0 when free) and, for the rlock, its recursion
 * count. `owner` is written only by the holder; other threads read it to
 * learn that they are not the holder, which a stale value cannot make
 * wrong: a thread id is unique among the live threads of the system. */
struct mp_lock {
    mp__obj_head head; /* magic read and written atomically (mp__check_obj) */
    _Atomic pid_t owner;
    /* The holder's process id, written before `owner` (which is stored
     * with release), so that an observer that reads `owner` equal to the
     * word's thread id reads this holder's pid (mp_lock_owner). */
    _Atomic pid_t owner_pid;
    /* Written by the holder only, with relaxed atomic stores, so that an
     * observer may read a snapshot of the depth (mp_rlock_owner). */
    uint32_t count;
    bool dead; /* held after MP_EOWNERDEAD, not yet consistent (holder) */
    /* Set once released without being made consistent: the lock is then
     * unusable for everyone (MP_ENOTRECOVERABLE). */
    _Atomic uint32_t unrecoverable;
    _Atomic uint32_t word; /* os/futex_lock.h */
    /* The fencing token of the current hold (mp_lock_token): one more at
     * every acquisition that is not a recursive level. Holder only. */
    uint64_t fence;
};

struct mp_rlock {
    struct mp_lock l;
};

/* The calling thread's kernel id, cached per thread (and reset in a forked
 * child, whose thread has a new id) so that no lock path makes a system
 * call for it. Initial-exec TLS: one instruction to read, where the default
 * model of position-independent code calls __tls_get_addr. */
extern _Thread_local pid_t mp__tid_cache __attribute__((tls_model("initial-exec")));
/* The calling process's id, cached beside the thread id (both are set by
 * mp__self_tid_slow and forgotten together in a forked child): valid once
 * mp__self_tid has returned in this thread. */
extern _Thread_local pid_t mp__pid_cache __attribute__((tls_model("initial-exec")));
pid_t mp__self_tid_slow(void);

static inline pid_t mp__self_tid(void)
{
    pid_t t = mp__tid_cache;
    return __builtin_expect(t != 0, 1) ? t : mp__self_tid_slow();
}

/* Object checks: non-NULL, inside the shared heap, 8-aligned (like every
 * block of the heap), with its magic, which is the first word of every
 * object. Nothing is read before the range check, so a pointer outside the
 * heap is refused without a fault. The magic is loaded atomically: a
 * destroy in another thread clears it. */
static inline int mp__check_obj(const void *obj, size_t size, uint32_t want)
{
    if (obj == NULL || ((uintptr_t)obj & 7u) != 0 || !mp__heap_contains(obj, size))
        return MP_EINVAL;
    const mp__obj_head *h = obj;
    return __atomic_load_n(&h->magic, __ATOMIC_RELAXED) == want ? 0 : MP_EINVAL;
}

/* MP_EPERM with a detail for fn: the calling thread does not hold l (a
 * lock or an rlock), and who does. */
int mp__lock_fail_not_held(const char *fn, const struct mp_lock *l) __attribute__((cold));
/* MP_EINVAL with a detail: the timeout of the public function fn is NaN. */
int mp__sync_fail_nan(const char *fn) __attribute__((cold));

/* Publishes a new object's head, last and with release: a process that
 * sees the magic sees the object whole. mp__obj_retire clears the magic
 * in destroy. */
static inline void mp__obj_publish(mp__obj_head *h, uint32_t magic)
{
    h->backend = MP__BACKEND_LOCAL;
    h->flags = 0;
    __atomic_store_n(&h->magic, magic, __ATOMIC_RELEASE);
}

static inline void mp__obj_retire(mp__obj_head *h)
{
    __atomic_store_n(&h->magic, 0, __ATOMIC_RELAXED);
}

/* The lock of a condition or a synchronised value: either kind, by the
 * common layout. Acquire with or without recursion, fully release (saving
 * the rlock's count) and re-take (restoring it); the caller has checked the
 * object. */
int mp__lock_acquire_raw(struct mp_lock *l, bool recursive, double timeout);
bool mp__lock_held(struct mp_lock *l);
/* Releases every level; returns the count to restore. Holder only. */
uint32_t mp__lock_release_all(struct mp_lock *l);
/* Takes the lock back without limit and restores the count: 0 or
 * MP_EOWNERDEAD (held either way), or MP_ENOTRECOVERABLE (not held). */
int mp__lock_retake(struct mp_lock *l, uint32_t count);

#endif /* MULTIPROC_SYNC_INTERNAL_H */
