/* Barriers (see multiproc/sync.h). The state is guarded by a robust mutex
 * held only for a few instructions; parties sleep on `phase`, a futex word
 * that moves on each time a phase ends, by completion or by a break
 * (abort, reset, timeout, failed action). `history` remembers how each of
 * the last 64 phases ended (bit phase % 64 set: completed), so a woken
 * party learns the fate of its own phase even if later phases have begun.
 *
 * Unlike Python's Barrier there is no draining state in which arrivals wait
 * for the previous phase's parties to leave: a party that died in a phase
 * would make every later arrival wait. Here a new phase is open as soon as
 * the previous one ended. */
#include <limits.h>
#include <math.h>

#include "os/futex.h"
#include "sync/sync_internal.h"
#include "sync/sync_remote.h"

struct mp_barrier {
    mp__obj_head head;
    _Atomic uint32_t phase;   /* futex word; changed with `m` held */
    _Atomic uint64_t history; /* outcome bit per phase; changed with `m` held */
    _Atomic uint32_t count;   /* parties arrived in this phase */
    _Atomic uint32_t broken;  /* 1 after abort or a break, until reset */
    uint32_t parties;
    double timeout; /* the default of mp_barrier_wait_default; <= 0: none */
    mp_barrier_action action;
    void *action_arg;
    mp__robust_mutex m;
};

static int barrier_check(const char *fn, const mp_barrier *b)
{
    if (mp__check_obj(b, sizeof *b, MP__BARRIER_MAGIC) < 0)
        return mp__obj_fail(fn, "b", b, "barrier");
    return 0;
}

int mp_barrier_create(mp_barrier **out, const mp_barrier_opts *opts)
{
    const char *f = "mp_barrier_create";
    if (out == NULL || opts == NULL)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", f, out == NULL ? "out" : "opts");
    if (opts->parties == 0 || opts->parties > INT32_MAX)
        return mp__fail(MP_EINVAL, "%s: opts->parties is %u (1 to 2^31 - 1)", f, opts->parties);
    if (isnan(opts->timeout))
        return mp__fail(MP_EINVAL, "%s: opts->timeout is NaN (seconds, or MP_FOREVER)", f);
    void *mem = NULL;
    int rc = mp__heap_alloc_for("mp_barrier_create", &mem, sizeof(mp_barrier));
    if (rc < 0)
        return rc;
    mp_barrier *b = mem;
    if ((rc = mp__robust_mutex_init(&b->m, false)) < 0) {
        mp__heap_free(mem);
        return rc;
    }
    b->parties = opts->parties;
    b->timeout = opts->timeout > 0 ? opts->timeout : MP_FOREVER;
    b->action = opts->action;
    b->action_arg = opts->action_arg;
    atomic_store_explicit(&b->phase, 0, memory_order_relaxed);
    atomic_store_explicit(&b->history, 0, memory_order_relaxed);
    atomic_store_explicit(&b->count, 0, memory_order_relaxed);
    atomic_store_explicit(&b->broken, 0, memory_order_relaxed);
    mp__obj_publish(&b->head, MP__BARRIER_MAGIC);
    *out = b;
    return 0;
}

void mp_barrier_destroy(mp_barrier *b)
{
    if (mp__obj_is_remote(b)) {
        const mp__barrier_ops *ops = mp__barrier_remote(b);
        if (ops)
            ops->destroy(b);
        return;
    }
    if (mp__check_obj(b, sizeof *b, MP__BARRIER_MAGIC) < 0 || mp__obj_named(b))
        return;
    mp__obj_retire(&b->head);
    mp__robust_mutex_fini(&b->m);
    mp__heap_free(b);
}

/* Ends the current phase (m held): records its outcome, opens the next
 * phase and wakes every sleeper. */
static void end_phase(mp_barrier *b, bool completed)
{
    uint32_t p = atomic_load(&b->phase);
    uint64_t bit = (uint64_t)1 << (p % 64);
    uint64_t h = atomic_load(&b->history);
    atomic_store(&b->history, completed ? h | bit : h & ~bit);
    atomic_store(&b->count, 0);
    atomic_store(&b->phase, p + 1);
    mp__futex_wake(&b->phase, INT_MAX);
}

/* Takes the state mutex. Its holder runs only the few instructions of this
 * file and the action, so a holder that died did so in the middle of them:
 * the state may be half-updated and the action half-done, so the barrier is
 * broken (every waiter is released with MP_EBROKEN) and the mutex made
 * consistent again. */
static void state_lock(mp_barrier *b)
{
    if (mp__robust_mutex_lock(&b->m, NULL) == MP_EOWNERDEAD) {
        atomic_store(&b->broken, 1);
        end_phase(b, false);
        mp__robust_mutex_consistent(&b->m);
    }
}

/* The fate of phase p once it has ended. */
static int phase_result(mp_barrier *b, uint32_t p, int index)
{
    uint64_t h = atomic_load(&b->history);
    return h & ((uint64_t)1 << (p % 64)) ? index : MP_EBROKEN;
}

/* The last party: runs the action, then completes the phase, or breaks it
 * if the action failed. The action runs with the mutex held, as Python runs
 * it under the barrier's condition: no party can arrive in a phase that is
 * being completed, and a process that dies inside the action leaves the
 * mutex to the next party with MP_EOWNERDEAD, which breaks the barrier. */
static int complete_phase(mp_barrier *b, int index)
{
    int failed = b->action ? b->action(b->action_arg) : 0;
    if (failed)
        atomic_store(&b->broken, 1);
    end_phase(b, !failed);
    mp__robust_mutex_unlock(&b->m);
    return failed ? MP_EBROKEN : index;
}

int mp_barrier_wait(mp_barrier *b, double timeout)
{
    if (mp__obj_is_remote(b))
        return MP__REMOTE_CALL(mp__barrier_remote(b), wait, b, timeout);
    int rc = barrier_check("mp_barrier_wait", b);
    if (rc < 0)
        return rc;
    mp__deadline d;
    if ((rc = mp__deadline_init(&d, timeout)) < 0)
        return mp__sync_fail_nan("mp_barrier_wait");
    state_lock(b);
    if (atomic_load(&b->broken)) {
        mp__robust_mutex_unlock(&b->m);
        return MP_EBROKEN;
    }
    uint32_t p = atomic_load(&b->phase);
    int index = (int)atomic_fetch_add(&b->count, 1);
    if ((uint32_t)index + 1 == b->parties)
        return complete_phase(b, index);
    mp__robust_mutex_unlock(&b->m);

    while (atomic_load(&b->phase) == p) {
        rc = mp__futex_wait_intr(&b->phase, p, &d);
        if ((rc == MP_EINTR || rc == MP_ECANCELED) && atomic_load(&b->phase) == p) {
            /* Interrupted: the party leaves its phase unless it ended
             * meanwhile (then its outcome stands), as a Python wait that
             * raises. */
            state_lock(b);
            bool left = atomic_load(&b->phase) == p;
            if (left)
                atomic_fetch_sub(&b->count, 1);
            mp__robust_mutex_unlock(&b->m);
            if (left)
                return rc;
            break;
        }
        if (rc < 0 && atomic_load(&b->phase) == p) {
            /* Timed out (or the wait failed): like Python, break the barrier
             * for everyone, unless the phase ended in the meantime. */
            state_lock(b);
            if (atomic_load(&b->phase) == p) {
                atomic_store(&b->broken, 1);
                end_phase(b, false);
            }
            mp__robust_mutex_unlock(&b->m);
        }
    }
    return phase_result(b, p, index);
}

int mp_barrier_wait_default(mp_barrier *b)
{
    if (mp__obj_is_remote(b))
        return MP__REMOTE_CALL(mp__barrier_remote(b), wait, b, MP_FOREVER);
    int rc = barrier_check("mp_barrier_wait_default", b);
    return rc < 0 ? rc : mp_barrier_wait(b, b->timeout);
}

int mp_barrier_reset(mp_barrier *b)
{
    if (mp__obj_is_remote(b))
        return MP__REMOTE_CALL(mp__barrier_remote(b), reset, b);
    int rc = barrier_check("mp_barrier_reset", b);
    if (rc < 0)
        return rc;
    state_lock(b);
    if (atomic_load(&b->count) > 0)
        end_phase(b, false);
    atomic_store(&b->broken, 0);
    mp__robust_mutex_unlock(&b->m);
    return 0;
}

int mp_barrier_abort(mp_barrier *b)
{
    if (mp__obj_is_remote(b))
        return MP__REMOTE_CALL(mp__barrier_remote(b), abort, b);
    int rc = barrier_check("mp_barrier_abort", b);
    if (rc < 0)
        return rc;
    state_lock(b);
    atomic_store(&b->broken, 1);
    end_phase(b, false);
    mp__robust_mutex_unlock(&b->m);
    return 0;
}

int mp_barrier_parties(mp_barrier *b)
{
    if (mp__obj_is_remote(b))
        return MP__REMOTE_CALL(mp__barrier_remote(b), parties, b);
    int rc = barrier_check("mp_barrier_parties", b);
    return rc < 0 ? rc : (int)b->parties;
}

int mp_barrier_n_waiting(mp_barrier *b)
{
    if (mp__obj_is_remote(b))
        return MP__REMOTE_CALL(mp__barrier_remote(b), n_waiting, b);
    int rc = barrier_check("mp_barrier_n_waiting", b);
    return rc < 0 ? rc : (int)atomic_load(&b->count);
}

bool mp_barrier_broken(mp_barrier *b)
{
    if (mp__obj_is_remote(b))
        return MP__REMOTE_CALL(mp__barrier_remote(b), broken, b) == 1;
    return mp__check_obj(b, sizeof *b, MP__BARRIER_MAGIC) == 0 && atomic_load(&b->broken) != 0;
}
