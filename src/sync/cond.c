/* Condition variables (see multiproc/sync.h), built on a futex sequence
 * word rather than pthread_cond_t: glibc's process-shared condvar can be
 * wedged by a waiter that dies (a signaller then waits for the dead
 * waiter's group to quiesce), and a condition must survive any party.
 *
 * Every notify bumps `seq` and hands out tickets (`signals`); a waiter
 * reads `seq` with the lock held, releases the lock, sleeps while `seq` is
 * unchanged, takes the lock back and leaves with a ticket if one is left.
 * `waiters` and `signals` change only with the lock held. A waiter that
 * dies stays counted: later notifies may then give out a ticket nobody
 * takes, which wakes one waiter too many at worst; it never keeps a live
 * waiter asleep, because a notify always bumps `seq` and wakes sleepers. */
#include <limits.h>
#include <math.h>

#include "os/futex.h"
#include "sync/sync_internal.h"
#include "sync/sync_remote.h"

struct mp_cond {
    mp__obj_head head;
    _Atomic uint32_t seq;
    uint32_t waiters; /* counted waiters (lock held) */
    uint32_t signals; /* tickets not yet taken (lock held) */
    struct mp_lock *lock;
    bool recursive; /* the lock is an rlock */
    bool own;       /* the rlock was made by the condition */
};

static int cond_check(const char *fn, const mp_cond *c)
{
    if (mp__check_obj(c, sizeof *c, MP__COND_MAGIC) < 0)
        return mp__obj_fail(fn, "cond", c, "condition");
    return 0;
}

int mp_cond_create(mp_cond **out, const mp_cond_opts *opts)
{
    mp_cond_opts o = opts ? *opts : (mp_cond_opts){0};
    const char *f = "mp_cond_create";
    if (out == NULL)
        return mp__fail(MP_EINVAL, "%s: out is NULL", f);
    if (o.lock && o.rlock)
        return mp__fail(MP_EINVAL, "%s: both opts->lock and opts->rlock are set (at most one)", f);
    /* A remote lock's backend makes the condition (its waiters must meet
     * where the lock lives). */
    if (o.lock && mp__obj_is_remote(o.lock))
        return MP__REMOTE_CALL(mp__lock_remote(o.lock), cond, o.lock, out);
    if (o.rlock && mp__obj_is_remote(o.rlock))
        return MP__REMOTE_CALL(mp__rlock_remote(o.rlock), cond, o.rlock, out);
    if (o.lock && mp__check_obj(o.lock, sizeof *o.lock, MP__LOCK_MAGIC) < 0)
        return mp__obj_fail(f, "opts->lock", o.lock, "lock");
    if (o.rlock && mp__check_obj(o.rlock, sizeof *o.rlock, MP__RLOCK_MAGIC) < 0)
        return mp__obj_fail(f, "opts->rlock", o.rlock, "rlock");
    void *mem = NULL;
    int rc = mp__heap_alloc_for("mp_cond_create", &mem, sizeof(mp_cond));
    if (rc < 0)
        return rc;
    mp_cond *c = mem;
    c->own = !o.lock && !o.rlock;
    if (c->own && (rc = mp_rlock_create(&o.rlock, NULL)) < 0) {
        mp__heap_free(mem);
        return rc;
    }
    c->lock = o.lock ? o.lock : &o.rlock->l;
    c->recursive = o.lock == NULL;
    c->waiters = c->signals = 0;
    atomic_store_explicit(&c->seq, 0, memory_order_relaxed);
    mp__obj_publish(&c->head, MP__COND_MAGIC);
    *out = c;
    return 0;
}

void mp_cond_destroy(mp_cond *cond)
{
    if (mp__obj_is_remote(cond)) {
        const mp__cond_ops *ops = mp__cond_remote(cond);
        if (ops)
            ops->destroy(cond);
        return;
    }
    if (mp__check_obj(cond, sizeof *cond, MP__COND_MAGIC) < 0 || mp__obj_named(cond))
        return;
    mp__obj_retire(&cond->head);
    if (cond->own)
        mp_rlock_destroy((mp_rlock *)cond->lock);
    mp__heap_free(cond);
}

int mp_cond_acquire(mp_cond *cond, double timeout)
{
    if (mp__obj_is_remote(cond))
        return MP__REMOTE_CALL(mp__cond_remote(cond), acquire, cond, timeout);
    int rc = cond_check("mp_cond_acquire", cond);
    if (rc < 0)
        return rc;
    return cond->recursive ? mp_rlock_acquire((mp_rlock *)cond->lock, timeout)
                           : mp_lock_acquire(cond->lock, timeout);
}

int mp_cond_release(mp_cond *cond)
{
    if (mp__obj_is_remote(cond))
        return MP__REMOTE_CALL(mp__cond_remote(cond), release, cond);
    int rc = cond_check("mp_cond_release", cond);
    if (rc < 0)
        return rc;
    return cond->recursive ? mp_rlock_release((mp_rlock *)cond->lock) : mp_lock_release(cond->lock);
}

mp_lock *mp_cond_get_lock(mp_cond *cond)
{
    if (mp__obj_is_remote(cond))
        return mp__cond_remote(cond) && mp__cond_remote(cond)->get_lock
                   ? mp__cond_remote(cond)->get_lock(cond)
                   : NULL;
    return mp__check_obj(cond, sizeof *cond, MP__COND_MAGIC) == 0 && !cond->recursive ? cond->lock
                                                                                      : NULL;
}

mp_rlock *mp_cond_get_rlock(mp_cond *cond)
{
    if (mp__obj_is_remote(cond))
        return mp__cond_remote(cond) && mp__cond_remote(cond)->get_rlock
                   ? mp__cond_remote(cond)->get_rlock(cond)
                   : NULL;
    return mp__check_obj(cond, sizeof *cond, MP__COND_MAGIC) == 0 && cond->recursive
               ? (mp_rlock *)cond->lock
               : NULL;
}

/* Sleeps while seq == s, until the deadline: 0 once it changed. */
static int sleep_on_seq(mp_cond *c, uint32_t s, const mp__deadline *d)
{
    while (atomic_load(&c->seq) == s) {
        int rc = mp__futex_wait_intr(&c->seq, s, d);
        if (rc < 0)
            return atomic_load(&c->seq) == s ? rc : 0;
    }
    return 0;
}

/* The wait proper; the caller checked the condition and holds the lock. */
static int cond_wait_until(mp_cond *c, const mp__deadline *d)
{
    int rc, back;
    c->waiters++;
    for (;;) {
        uint32_t s = atomic_load(&c->seq);
        uint32_t count = mp__lock_release_all(c->lock);
        rc = sleep_on_seq(c, s, d);
        back = mp__lock_retake(c->lock, count);
        if (back == MP_ENOTRECOVERABLE)
            return back; /* not held: the counters are not ours to touch */
        if (c->signals > 0) {
            c->signals--;
            rc = 0;
            break;
        }
        /* No ticket left after a change of seq: another waiter took it.
         * Sleep again, unless the lock came back from a dead holder (it must
         * be repaired before anyone releases it). */
        if (rc < 0 || back == MP_EOWNERDEAD)
            break;
    }
    c->waiters--;
    return back == MP_EOWNERDEAD ? back : rc;
}

static int cond_enter(const char *fn, mp_cond *c, double timeout, mp__deadline *d)
{
    int rc = cond_check(fn, c);
    if (rc < 0)
        return rc;
    if (isnan(timeout))
        return mp__sync_fail_nan(fn);
    if (!mp__lock_held(c->lock))
        return mp__lock_fail_not_held(fn, c->lock);
    return mp__deadline_init(d, timeout);
}

int mp_cond_wait(mp_cond *cond, double timeout)
{
    if (mp__obj_is_remote(cond))
        return MP__REMOTE_CALL(mp__cond_remote(cond), wait, cond, timeout);
    mp__deadline d;
    int rc = cond_enter("mp_cond_wait", cond, timeout, &d);
    return rc < 0 ? rc : cond_wait_until(cond, &d);
}

int mp_cond_wait_for(mp_cond *cond, mp_cond_pred pred, void *arg, double timeout)
{
    if (pred == NULL)
        return mp__fail(MP_EINVAL, "mp_cond_wait_for: pred is NULL");
    if (mp__obj_is_remote(cond))
        return MP__REMOTE_CALL(mp__cond_remote(cond), wait_for, cond, pred, arg, timeout);
    mp__deadline d;
    int rc = cond_enter("mp_cond_wait_for", cond, timeout, &d);
    if (rc < 0)
        return rc;
    while (!pred(arg)) {
        if (mp__deadline_expired(&d))
            return MP_ETIMEDOUT;
        rc = cond_wait_until(cond, &d);
        if (rc == MP_ETIMEDOUT)
            return pred(arg) ? 0 : MP_ETIMEDOUT;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cond_notify(const char *fn, mp_cond *c, uint32_t n)
{
    int rc = cond_check(fn, c);
    if (rc < 0)
        return rc;
    if (!mp__lock_held(c->lock))
        return mp__lock_fail_not_held(fn, c->lock);
    uint32_t avail = c->waiters > c->signals ? c->waiters - c->signals : 0;
    uint32_t k = n < avail ? n : avail;
    if (k == 0)
        return 0;
    c->signals += k;
    atomic_fetch_add(&c->seq, 1);
    mp__futex_wake(&c->seq, k >= INT_MAX ? INT_MAX : (int)k);
    return k > INT_MAX ? INT_MAX : (int)k;
}

int mp_cond_notify(mp_cond *cond, unsigned n)
{
    if (mp__obj_is_remote(cond))
        return MP__REMOTE_CALL(mp__cond_remote(cond), notify, cond, n);
    return cond_notify("mp_cond_notify", cond, n);
}

int mp_cond_notify_all(mp_cond *cond)
{
    if (mp__obj_is_remote(cond))
        return MP__REMOTE_CALL(mp__cond_remote(cond), notify_all, cond);
    return cond_notify("mp_cond_notify_all", cond, UINT32_MAX);
}
