/* Lock and RLock (see multiproc/sync.h): a robust futex word (os/futex_lock.h)
 * plus the holder's thread id and an rlock's recursion count. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os/futex_lock.h"
#include "sync/sync_internal.h"

_Thread_local pid_t mp__tid_cache __attribute__((tls_model("initial-exec")));
_Thread_local pid_t mp__pid_cache __attribute__((tls_model("initial-exec")));
static pthread_once_t tid_once = PTHREAD_ONCE_INIT;

/* In a forked child the forking thread has a new id: forget the old one. */
static void tid_forget(void)
{
    mp__tid_cache = 0;
    mp__pid_cache = 0;
}

static void tid_register(void)
{
    pthread_atfork(NULL, NULL, tid_forget);
}

pid_t mp__self_tid_slow(void)
{
    pthread_once(&tid_once, tid_register);
    mp__pid_cache = getpid();
    return mp__tid_cache = (pid_t)syscall(SYS_gettid);
}

static const char *lock_kind(uint32_t magic)
{
    return magic == MP__LOCK_MAGIC ? "lock" : "rlock";
}

/* The object check of fn's first argument, named after its kind. */
static int lock_check(const char *fn, const struct mp_lock *l, uint32_t magic)
{
    if (mp__check_obj(l, sizeof *l, magic) < 0)
        return mp__obj_fail(fn, lock_kind(magic), l, lock_kind(magic));
    return 0;
}

int mp__lock_fail_not_held(const char *fn, const struct mp_lock *l)
{
    uint32_t magic = __atomic_load_n(&l->head.magic, __ATOMIC_RELAXED);
    pid_t pid = atomic_load_explicit(&l->owner_pid, memory_order_relaxed);
    pid_t tid = atomic_load_explicit(&l->owner, memory_order_relaxed);
    if (tid == 0)
        return mp__fail(MP_EPERM, "%s: the %s is not held (by anyone)", fn, lock_kind(magic));
    return mp__fail(MP_EPERM, "%s: the %s is not held by this thread (held by pid %d, thread %d)",
                    fn, lock_kind(magic), (int)pid, (int)tid);
}

int mp__sync_fail_nan(const char *fn)
{
    return mp__fail(MP_EINVAL, "%s: timeout is NaN (seconds >= 0, or MP_FOREVER)", fn);
}

/* The holder's writes of what observers read (mp_lock_owner): relaxed
 * atomic stores, plain moves on the common targets. Taking the lock, the
 * pid goes before the thread id, which publishes it; letting it go, the
 * thread id is cleared first, so that an observer that still reads the
 * holder's thread id after the pid has read the holder's pid. */
static inline void set_count(struct mp_lock *l, uint32_t n)
{
    __atomic_store_n(&l->count, n, __ATOMIC_RELAXED);
}

static inline void set_owner(struct mp_lock *l, pid_t self)
{
    if (self == 0) {
        atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
        atomic_store_explicit(&l->owner_pid, 0, memory_order_release);
        return;
    }
    atomic_store_explicit(&l->owner_pid, mp__pid_cache, memory_order_relaxed);
    atomic_store_explicit(&l->owner, self, memory_order_release);
}

static int lock_new(const char *fn, struct mp_lock **out, const int *reserved, uint32_t magic)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "%s: out is NULL", fn);
    if (reserved != NULL && *reserved != 0)
        return mp__fail(MP_EINVAL, "%s: opts->reserved is %d (must be 0)", fn, *reserved);
    void *mem = NULL;
    int rc = mp__heap_alloc_for(fn, &mem, sizeof(struct mp_rlock));
    if (rc < 0)
        return rc;
    struct mp_lock *l = mem;
    atomic_store_explicit(&l->word, 0, memory_order_relaxed);
    atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
    atomic_store_explicit(&l->owner_pid, 0, memory_order_relaxed);
    atomic_store_explicit(&l->unrecoverable, 0, memory_order_relaxed);
    l->count = 0;
    l->dead = false;
    mp__obj_publish(&l->head, magic);
    *out = l;
    return 0;
}

static void lock_free(struct mp_lock *l, uint32_t magic)
{
    if (mp__check_obj(l, sizeof *l, magic) < 0 || mp__obj_named(l))
        return;
    mp__obj_retire(&l->head);
    mp__heap_free(l);
}

/* Records the new holder, or gives the lock back if it became
 * unrecoverable while the caller waited for it. */
static int took(struct mp_lock *l, pid_t self, int rc)
{
    if (atomic_load_explicit(&l->unrecoverable, memory_order_relaxed)) {
        mp__futex_lock_unlock(&l->word);
        return MP_ENOTRECOVERABLE;
    }
    set_owner(l, self);
    l->dead = rc == MP_EOWNERDEAD;
    l->fence++;
    return rc;
}

/* Takes the word: a try first, so that the uncontended path reads no
 * clock; the deadline is computed only when the caller has to wait. */
int mp__lock_acquire_raw(struct mp_lock *l, bool recursive, double timeout)
{
    pid_t self = mp__self_tid();
    if (recursive && atomic_load_explicit(&l->owner, memory_order_relaxed) == self) {
        if (l->count == UINT32_MAX)
            return MP_EOVERFLOW;
        set_count(l, l->count + 1);
        return 0;
    }
    if (atomic_load_explicit(&l->unrecoverable, memory_order_relaxed))
        return MP_ENOTRECOVERABLE;
    int rc = mp__futex_lock_trylock_fast(&l->word, self);
    if (rc == MP_EBUSY) {
        mp__deadline d = {.ns = 0};
        if (timeout != 0 && (rc = mp__deadline_init(&d, timeout)) < 0)
            return rc;
        rc = mp__futex_lock_lock_intr(&l->word, self, &d);
    }
    if (rc == 0 || rc == MP_EOWNERDEAD) {
        rc = took(l, self, rc);
        if (rc != MP_ENOTRECOVERABLE)
            set_count(l, 1);
    }
    return rc;
}

bool mp__lock_held(struct mp_lock *l)
{
    return atomic_load_explicit(&l->owner, memory_order_relaxed) == mp__self_tid();
}

/* Unlocks for the holder. Unlocking a lock still owner-dead makes the
 * mutex unrecoverable: record it where acquirers look first. */
static int unlock(struct mp_lock *l)
{
    if (l->dead) {
        l->dead = false;
        atomic_store_explicit(&l->unrecoverable, 1, memory_order_relaxed);
    }
    set_owner(l, 0);
    mp__futex_lock_unlock(&l->word);
    return 0;
}

static int lock_release(const char *fn, struct mp_lock *l, uint32_t magic)
{
    int rc = lock_check(fn, l, magic);
    if (rc < 0)
        return rc;
    if (!mp__lock_held(l))
        return mp__lock_fail_not_held(fn, l);
    set_count(l, l->count - 1);
    if (l->count > 0)
        return 0;
    return unlock(l);
}

uint32_t mp__lock_release_all(struct mp_lock *l)
{
    uint32_t count = l->count;
    set_count(l, 0);
    unlock(l);
    return count;
}

int mp__lock_retake(struct mp_lock *l, uint32_t count)
{
    pid_t self = mp__self_tid();
    int rc = mp__futex_lock_lock(&l->word, self, NULL);
    if (rc == 0 || rc == MP_EOWNERDEAD) {
        rc = took(l, self, rc);
        if (rc != MP_ENOTRECOVERABLE)
            set_count(l, count);
    }
    return rc;
}

static int lock_consistent(const char *fn, struct mp_lock *l, uint32_t magic)
{
    int rc = lock_check(fn, l, magic);
    if (rc < 0)
        return rc;
    if (!mp__lock_held(l))
        return mp__lock_fail_not_held(fn, l);
    if (!l->dead)
        return mp__fail(MP_EINVAL,
                        "%s: the %s is not in the owner-dead state (only after MP_EOWNERDEAD)", fn,
                        lock_kind(magic));
    l->dead = false;
    return 0;
}

static int lock_token(const char *fn, struct mp_lock *l, uint32_t magic, uint64_t *token)
{
    int rc = lock_check(fn, l, magic);
    if (rc < 0)
        return rc;
    if (token == NULL)
        return mp__fail(MP_EINVAL, "%s: token is NULL", fn);
    if (!mp__lock_held(l))
        return mp__lock_fail_not_held(fn, l);
    *token = l->fence;
    return 0;
}

/* A local lock has no lease: renewing checks that the caller holds it. */
static int lock_renew(const char *fn, struct mp_lock *l, uint32_t magic)
{
    int rc = lock_check(fn, l, magic);
    if (rc < 0)
        return rc;
    return mp__lock_held(l) ? 0 : mp__lock_fail_not_held(fn, l);
}

int mp_lock_create(mp_lock **out, const mp_lock_opts *opts)
{
    return lock_new("mp_lock_create", out, opts ? &opts->reserved : NULL, MP__LOCK_MAGIC);
}

void mp_lock_destroy(mp_lock *lock)
{
    if (mp__obj_is_remote(lock)) {
        const mp__lock_ops *ops = mp__lock_remote(lock);
        if (ops)
            ops->destroy(lock);
        return;
    }
    lock_free(lock, MP__LOCK_MAGIC);
}

/* The public acquire and release functions spell out the uncontended path
 * (the figure lock_ns measures) and leave everything else to
 * mp__lock_acquire_raw and lock_release. */
int mp_lock_acquire(mp_lock *lock, double timeout)
{
    if (mp__obj_is_remote(lock))
        return MP__REMOTE_CALL(mp__lock_remote(lock), acquire, lock, timeout);
    if (mp__check_obj(lock, sizeof *lock, MP__LOCK_MAGIC) < 0)
        return mp__obj_fail("mp_lock_acquire", "lock", lock, "lock");
    if (isnan(timeout))
        return mp__sync_fail_nan("mp_lock_acquire");
    pid_t self = mp__self_tid();
    if (!atomic_load_explicit(&lock->unrecoverable, memory_order_relaxed) &&
        mp__futex_lock_trylock_fast(&lock->word, self) == 0) {
        set_owner(lock, self);
        set_count(lock, 1);
        lock->dead = false;
        lock->fence++;
        return 0;
    }
    return mp__lock_acquire_raw(lock, false, timeout);
}

int mp_lock_release(mp_lock *lock)
{
    if (mp__obj_is_remote(lock))
        return MP__REMOTE_CALL(mp__lock_remote(lock), release, lock);
    if (mp__check_obj(lock, sizeof *lock, MP__LOCK_MAGIC) < 0)
        return mp__obj_fail("mp_lock_release", "lock", lock, "lock");
    if (atomic_load_explicit(&lock->owner, memory_order_relaxed) != mp__self_tid())
        return mp__lock_fail_not_held("mp_lock_release", lock);
    set_count(lock, 0);
    return unlock(lock);
}

int mp_lock_consistent(mp_lock *lock)
{
    if (mp__obj_is_remote(lock))
        return MP__REMOTE_CALL(mp__lock_remote(lock), consistent, lock);
    return lock_consistent("mp_lock_consistent", lock, MP__LOCK_MAGIC);
}

int mp_lock_token(mp_lock *lock, uint64_t *token)
{
    if (mp__obj_is_remote(lock))
        return MP__REMOTE_CALL(mp__lock_remote(lock), token, lock, token);
    return lock_token("mp_lock_token", lock, MP__LOCK_MAGIC, token);
}

int mp_lock_renew(mp_lock *lock)
{
    if (mp__obj_is_remote(lock))
        return MP__REMOTE_CALL(mp__lock_remote(lock), renew, lock);
    return lock_renew("mp_lock_renew", lock, MP__LOCK_MAGIC);
}

/* The lock inside an rlock, its first member: converted, not reached by
 * member access, so that a misaligned pointer (refused by the check that
 * follows) is not already undefined behaviour here. */
static struct mp_lock *rlock_lock(mp_rlock *rlock)
{
    return (struct mp_lock *)(void *)rlock;
}

int mp_rlock_create(mp_rlock **out, const mp_rlock_opts *opts)
{
    struct mp_lock *l = NULL;
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_rlock_create: out is NULL");
    int rc = lock_new("mp_rlock_create", &l, opts ? &opts->reserved : NULL, MP__RLOCK_MAGIC);
    if (rc == 0)
        *out = (mp_rlock *)l;
    return rc;
}

void mp_rlock_destroy(mp_rlock *rlock)
{
    if (mp__obj_is_remote(rlock)) {
        const mp__rlock_ops *ops = mp__rlock_remote(rlock);
        if (ops)
            ops->destroy(rlock);
        return;
    }
    lock_free(rlock_lock(rlock), MP__RLOCK_MAGIC);
}

int mp_rlock_acquire(mp_rlock *rlock, double timeout)
{
    if (mp__obj_is_remote(rlock))
        return MP__REMOTE_CALL(mp__rlock_remote(rlock), acquire, rlock, timeout);
    struct mp_lock *l = rlock_lock(rlock);
    if (mp__check_obj(l, sizeof *l, MP__RLOCK_MAGIC) < 0)
        return mp__obj_fail("mp_rlock_acquire", "rlock", l, "rlock");
    if (isnan(timeout))
        return mp__sync_fail_nan("mp_rlock_acquire");
    pid_t self = mp__self_tid();
    if (atomic_load_explicit(&l->owner, memory_order_relaxed) != self &&
        !atomic_load_explicit(&l->unrecoverable, memory_order_relaxed) &&
        mp__futex_lock_trylock_fast(&l->word, self) == 0) {
        set_owner(l, self);
        set_count(l, 1);
        l->dead = false;
        l->fence++;
        return 0;
    }
    return mp__lock_acquire_raw(l, true, timeout);
}

int mp_rlock_release(mp_rlock *rlock)
{
    if (mp__obj_is_remote(rlock))
        return MP__REMOTE_CALL(mp__rlock_remote(rlock), release, rlock);
    return lock_release("mp_rlock_release", rlock_lock(rlock), MP__RLOCK_MAGIC);
}

int mp_rlock_consistent(mp_rlock *rlock)
{
    if (mp__obj_is_remote(rlock))
        return MP__REMOTE_CALL(mp__rlock_remote(rlock), consistent, rlock);
    return lock_consistent("mp_rlock_consistent", rlock_lock(rlock), MP__RLOCK_MAGIC);
}

int mp_rlock_token(mp_rlock *rlock, uint64_t *token)
{
    if (mp__obj_is_remote(rlock))
        return MP__REMOTE_CALL(mp__rlock_remote(rlock), token, rlock, token);
    return lock_token("mp_rlock_token", rlock_lock(rlock), MP__RLOCK_MAGIC, token);
}

int mp_rlock_renew(mp_rlock *rlock)
{
    if (mp__obj_is_remote(rlock))
        return MP__REMOTE_CALL(mp__rlock_remote(rlock), renew, rlock);
    return lock_renew("mp_rlock_renew", rlock_lock(rlock), MP__RLOCK_MAGIC);
}

int mp_rlock_count(mp_rlock *rlock)
{
    if (mp__obj_is_remote(rlock))
        return MP__REMOTE_CALL(mp__rlock_remote(rlock), count, rlock);
    int rc = lock_check("mp_rlock_count", rlock_lock(rlock), MP__RLOCK_MAGIC);
    if (rc < 0)
        return rc;
    if (!mp__lock_held(rlock_lock(rlock)))
        return 0;
    return rlock->l.count > INT32_MAX ? INT32_MAX : (int)rlock->l.count;
}

/* ---- observers: anyone may ask who holds a lock ----------------------------- */

static int lock_locked(const char *fn, struct mp_lock *l, uint32_t magic)
{
    int rc = lock_check(fn, l, magic);
    if (rc < 0)
        return rc;
    return (atomic_load_explicit(&l->word, memory_order_acquire) & MP__FUTEX_LOCK_TID_MASK) != 0;
}

/* Reads the holder as one consistent picture: the word names the holding
 * thread; `owner` equal to it (before and after the other reads) says the
 * holder has recorded itself, so the pid and count read between belong to
 * it. A holder caught between taking the word and recording itself is
 * waited for briefly; one that died right there leaves pid 0. */
static int lock_owner(const char *fn, struct mp_lock *l, uint32_t magic, pid_t *pid, pid_t *tid,
                      uint32_t *depth)
{
    int rc = lock_check(fn, l, magic);
    if (rc < 0)
        return rc;
    pid_t p = 0, t = 0;
    uint32_t c = 0;
    for (int tries = 0; tries < 64; tries++) {
        t = (pid_t)(atomic_load_explicit(&l->word, memory_order_acquire) & MP__FUTEX_LOCK_TID_MASK);
        if (t == 0)
            return MP_ESRCH;
        if (atomic_load_explicit(&l->owner, memory_order_acquire) == t) {
            p = atomic_load_explicit(&l->owner_pid, memory_order_acquire);
            c = __atomic_load_n(&l->count, __ATOMIC_RELAXED);
            if (atomic_load_explicit(&l->owner, memory_order_acquire) == t)
                break;
        }
        p = 0;
        c = 0;
        sched_yield();
    }
    if (pid)
        *pid = p;
    if (tid)
        *tid = t;
    if (depth)
        *depth = p == 0 ? 0 : c == 0 ? 1 : c;
    return 0;
}

int mp_lock_locked(mp_lock *lock)
{
    if (mp__obj_is_remote(lock))
        return MP__REMOTE_CALL(mp__lock_remote(lock), locked, lock);
    return lock_locked("mp_lock_locked", lock, MP__LOCK_MAGIC);
}

int mp_lock_owner(mp_lock *lock, pid_t *pid, pid_t *tid)
{
    if (mp__obj_is_remote(lock))
        return MP__REMOTE_CALL(mp__lock_remote(lock), owner, lock, pid, tid);
    return lock_owner("mp_lock_owner", lock, MP__LOCK_MAGIC, pid, tid, NULL);
}

int mp_rlock_locked(mp_rlock *rlock)
{
    if (mp__obj_is_remote(rlock))
        return MP__REMOTE_CALL(mp__rlock_remote(rlock), locked, rlock);
    return lock_locked("mp_rlock_locked", rlock_lock(rlock), MP__RLOCK_MAGIC);
}

int mp_rlock_owner(mp_rlock *rlock, pid_t *pid, pid_t *tid, uint32_t *depth)
{
    if (mp__obj_is_remote(rlock))
        return MP__REMOTE_CALL(mp__rlock_remote(rlock), owner, rlock, pid, tid, depth);
    return lock_owner("mp_rlock_owner", rlock_lock(rlock), MP__RLOCK_MAGIC, pid, tid, depth);
}
