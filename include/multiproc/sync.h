/* multiproc — synchronisation primitives (Python's Lock, RLock, Semaphore,
 * BoundedSemaphore, Condition, Event and Barrier).
 *
 *     mp_lock *lock;
 *     mp_lock_create(&lock, NULL);          // in the shared heap
 *     ... start children; pass `lock` to them (the pointer is valid there)
 *     if (mp_lock_acquire(lock, 5.0) == 0) {
 *         ... critical section ...
 *         mp_lock_release(lock);
 *     }
 *
 * Every object lives in the family's shared heap, so the pointer returned
 * by create is valid in every process of the family, including children
 * started before the object was created. Each object is safe across threads
 * and across processes at once (a process-shared object is also
 * thread-safe); across fork, a child uses the very same object as its
 * parent (it is shared memory, not a copy), and a child forked while its
 * parent holds a lock does not hold it (its thread is another thread).
 * Locks, rlocks, semaphores, conditions, events and barriers obtained from
 * a Redis manager are handles to objects on the server, with a process
 * (through a handle) as holder and a lease: multiproc/manager.h, "Types
 * on Redis". mp_cond_create with a Redis lock or rlock makes a condition
 * on the server too (its waiters are shared by every condition over that
 * lock); a Redis barrier has no action.
 *
 * Waits: every blocking call takes a timeout in seconds (MP_FOREVER waits
 * without limit, 0 never blocks) and returns MP_ETIMEDOUT when it expires,
 * also with timeout 0 (Python's False). Uncontended paths make no system
 * call; waiters sleep on futexes, never spin.
 *
 * Robustness: a lock or rlock whose holder dies (any thread of any process,
 * killed or exited) is handed to the next acquirer with MP_EOWNERDEAD,
 * within about 20 ms of the death (waiters check the holder's liveness
 * periodically; a try with timeout 0 checks at once): that acquirer holds
 * the lock, repairs what the dead holder protected, and
 * calls mp_lock_consistent (mp_rlock_consistent); releasing without doing so
 * makes the lock unrecoverable (MP_ENOTRECOVERABLE for everyone after),
 * which is what a caller that cannot repair should want. A condition's or
 * barrier's waiters are never stranded by a dead party beyond their
 * timeout. Semaphores and events have no owner, so the death of a process
 * cannot be told apart from a slow one: a semaphore acquired by a process
 * that dies stays acquired.
 *
 * Ownership differs from Python's multiprocessing.Lock in one way: a lock is
 * owned by the thread that acquired it, and only that thread may release it
 * (MP_EPERM otherwise), as for RLock. That ownership is what lets the lock
 * be handed over when its holder dies.
 *
 * Lifetime: mp_X_destroy frees the object in the shared heap, for every
 * process at once: call it once, from any one process, when no thread of
 * any process uses or waits on the object any more. On an object that
 * belongs to a local manager (mp_manager_lock, ...) it does nothing: those
 * live as long as the family; on a Redis manager's handle it releases the
 * handle (the object stays on the server).
 *
 * Bad pointers: every call checks its object before it uses it, and
 * returns MP_EINVAL (false, NULL or nothing for the functions without an
 * error code) for NULL; for a pointer outside the shared heap that is not
 * a live Redis handle: unmapped, PROT_NONE, misaligned, a stack or malloc
 * address (nothing is read before the kernel says the object's first 8
 * bytes are readable); for a pointer into the heap that is misaligned, too
 * close to its end, or whose first word is not the magic of this type
 * (another type, a destroyed object, any other block). Not detectable, so
 * undefined: a pointer into the heap whose first word happens to hold this
 * type's magic without being such an object (a copy of one's bytes, or a
 * destroyed object's memory reused and so filled); readable memory outside
 * the heap made to look like a Redis handle; and memory unmapped by
 * another thread while the call runs.
 */
#ifndef MULTIPROC_SYNC_H
#define MULTIPROC_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "multiproc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock ------------------------------------------------------------- */

typedef struct mp_lock mp_lock;

/* No option yet; reserved so that options can be added without breaking
 * callers. Pass NULL or a zeroed struct. */
typedef struct mp_lock_opts {
    int reserved; /* must be 0 */
} mp_lock_opts;

/* mp_lock_create — a new, unlocked, non-recursive lock in the shared heap.
 *
 * out:  receives the lock; freed by mp_lock_destroy.
 * opts: borrowed until return; NULL for defaults.
 * Errors: MP_EINVAL (NULL out, non-zero reserved field), MP_ENOMEM (shared
 * heap exhausted), MP_ENOHEAPADDR (the heap could not be mapped).
 */
MP_API int mp_lock_create(mp_lock **out, const mp_lock_opts *opts);

/* mp_lock_destroy — free the lock (see Lifetime above). NULL: no-op. */
MP_API void mp_lock_destroy(mp_lock *lock);

/* mp_lock_acquire — take the lock, waiting up to timeout seconds.
 *
 * Returns 0 (held), MP_EOWNERDEAD (held, but its previous holder died
 * holding it: repair, then mp_lock_consistent), MP_ETIMEDOUT (not held),
 * MP_EDEADLK (the calling thread already holds it: a Lock is not
 * recursive), MP_ENOTRECOVERABLE (a previous MP_EOWNERDEAD was never marked
 * consistent), MP_EINVAL (bad lock or NaN timeout). Never MP_EINTR.
 */
MP_API int mp_lock_acquire(mp_lock *lock, double timeout);

/* mp_lock_release — release a lock held by the calling thread.
 * Errors: MP_EPERM (the calling thread does not hold it), MP_EINVAL. */
MP_API int mp_lock_release(mp_lock *lock);

/* mp_lock_consistent — after MP_EOWNERDEAD and the repair of the protected
 * data, make the lock normal again (the caller still holds it).
 * Errors: MP_EINVAL (the lock is not in the owner-dead state, or the caller
 * does not hold it), MP_EPERM. */
MP_API int mp_lock_consistent(mp_lock *lock);

/* mp_lock_token — the fencing token of the calling thread's hold: a number
 * that strictly increases with every acquisition of this lock, by anyone
 * (a Redis lock's counts on the server, shared by every machine). A
 * holder sends it with each write to what the lock protects, and that
 * resource refuses a write whose token is lower than the highest it has
 * seen: a holder that stalled past its lease (a Redis lock is then taken
 * by another) cannot corrupt it when it wakes, since its token is stale.
 *
 *     uint64_t t;
 *     if (mp_lock_acquire(lock, 5.0) == 0 && mp_lock_token(lock, &t) == 0)
 *         store_put(store, key, value, t);   // store: rejects t < its max
 *
 * The local lock has no lease, so its token only matters where the
 * resource outlives the family; it counts from 1 per lock.
 * Errors: MP_EPERM (the calling thread does not hold it), MP_EINVAL (bad
 * lock, NULL token). */
MP_API int mp_lock_token(mp_lock *lock, uint64_t *token);

/* mp_lock_renew — for its holder, start the lease of a Redis lock again
 * from now (a long critical section renews it well within the lease: the
 * manager URL's lease=, default 30 s). A local lock has no lease: renew
 * only checks that the calling thread holds it.
 * Errors: MP_EPERM (not held by the caller; on Redis also: the lease ran
 * out, and another process may have taken the lock meanwhile: stop
 * writing), MP_EINVAL, and the Redis errors of multiproc/manager.h. */
MP_API int mp_lock_renew(mp_lock *lock);

/* mp_lock_locked — Python's Lock.locked(): 1 while any thread of any
 * process holds the lock, 0 when it is free, or MP_EINVAL (bad lock). A
 * snapshot: the answer may be stale when it returns. A lock whose holder
 * died counts as held until the next acquirer takes it over (with
 * MP_EOWNERDEAD). On a Redis lock: 1 while a holder's token is on the
 * server (its lease running), at the cost of one round trip, and the
 * Redis errors of multiproc/manager.h. */
MP_API int mp_lock_locked(mp_lock *lock);

/* mp_lock_owner — who holds the lock, as any thread of any process sees
 * it: 0 with the holder's process id in *pid and its kernel thread id in
 * *tid (either pointer may be NULL), a snapshot like mp_lock_locked.
 * A holder that died keeps being reported until the lock is taken over.
 * *pid is 0 in one rare case: the holder has just taken the lock and not
 * yet recorded its process (or died right then).
 * On a Redis lock: *pid is the holder's process id as written in its
 * token on the server (a process of any machine), *tid is 0 (the server
 * knows processes, not threads: any thread of the holding process acts as
 * holder through the handle). A holder that a release handed the lock to
 * records its process after it returns, about 0.2 s later at most on a
 * local network (the TCP retransmission timeout on a slower one)
 * (docs/redis.md, "Waiters"): *pid is 0 until then.
 * Errors: MP_ESRCH (the lock is free: no holder; *pid and *tid
 * untouched), MP_EINVAL (bad lock), and on Redis the errors of
 * multiproc/manager.h. Safe from any thread of any process. */
MP_API int mp_lock_owner(mp_lock *lock, pid_t *pid, pid_t *tid);

/* ---- RLock -------------------------------------------------------------- */

typedef struct mp_rlock mp_rlock;

typedef struct mp_rlock_opts {
    int reserved; /* must be 0 */
} mp_rlock_opts;

/* mp_rlock_create — a new recursive lock: the holding thread may acquire
 * it again; it is free once released as many times as it was acquired.
 * Errors as mp_lock_create. */
MP_API int mp_rlock_create(mp_rlock **out, const mp_rlock_opts *opts);

/* mp_rlock_destroy — free the rlock (see Lifetime above). NULL: no-op. */
MP_API void mp_rlock_destroy(mp_rlock *rlock);

/* mp_rlock_acquire — take the rlock (or count one more level when the
 * calling thread holds it already), waiting up to timeout seconds.
 * Returns 0, MP_EOWNERDEAD (held with a count of 1; repair, then
 * mp_rlock_consistent), MP_ETIMEDOUT, MP_ENOTRECOVERABLE, MP_EOVERFLOW
 * (recursion count at its maximum, 2^32 - 1), MP_EINVAL. */
MP_API int mp_rlock_acquire(mp_rlock *rlock, double timeout);

/* mp_rlock_release — drop one level; the rlock is free when the count
 * reaches zero. Errors: MP_EPERM (not held by the calling thread), MP_EINVAL. */
MP_API int mp_rlock_release(mp_rlock *rlock);

/* mp_rlock_consistent — as mp_lock_consistent. */
MP_API int mp_rlock_consistent(mp_rlock *rlock);

/* mp_rlock_count — how many times the calling thread holds the rlock
 * (0 when it does not hold it), or MP_EINVAL. */
MP_API int mp_rlock_count(mp_rlock *rlock);

/* mp_rlock_token, mp_rlock_renew — as mp_lock_token and mp_lock_renew;
 * the token changes with each acquisition from a count of 0, not with the
 * levels taken again by the holder. */
MP_API int mp_rlock_token(mp_rlock *rlock, uint64_t *token);
MP_API int mp_rlock_renew(mp_rlock *rlock);

/* mp_rlock_locked — 1 while any thread holds the rlock (at any depth), 0
 * when free, or an error: as mp_lock_locked. */
MP_API int mp_rlock_locked(mp_rlock *rlock);

/* mp_rlock_owner — as mp_lock_owner, plus the holder's recursion depth
 * (how many releases free it) in *depth (may be NULL): a snapshot, taken
 * while the holder may be acquiring or releasing levels; 0 with *pid 0 in
 * the rare case described at mp_lock_owner.
 * On a Redis rlock the depth is known only to the holding process (its
 * handle counts the levels; the server sees one hold): the holder,
 * through the handle it holds it by, reads its depth; any other process
 * or handle reads *depth 0, meaning "held, depth unknown". *tid is 0.
 * Errors as mp_lock_owner (MP_ESRCH when free). */
MP_API int mp_rlock_owner(mp_rlock *rlock, pid_t *pid, pid_t *tid, uint32_t *depth);

/* ---- Semaphore and BoundedSemaphore --------------------------------------- */

typedef struct mp_sem mp_sem;

/* Largest value a semaphore can hold. */
#define MP_SEM_VALUE_MAX 0x7fffffffu

typedef struct mp_sem_opts {
    /* Initial value (Python's Semaphore(value)); the zero value is 0, so
     * write .value = 1 for Python's default. At most MP_SEM_VALUE_MAX. */
    unsigned value;
    /* BoundedSemaphore: a release that would raise the value above the
     * initial value fails with MP_EOVERFLOW (Python's ValueError) and
     * changes nothing. */
    bool bounded;
} mp_sem_opts;

/* mp_sem_create — a new semaphore. Errors: MP_EINVAL (NULL out, value above
 * MP_SEM_VALUE_MAX), MP_ENOMEM, MP_ENOHEAPADDR. */
MP_API int mp_sem_create(mp_sem **out, const mp_sem_opts *opts);

/* mp_sem_destroy — free the semaphore (see Lifetime above). NULL: no-op. */
MP_API void mp_sem_destroy(mp_sem *sem);

/* mp_sem_acquire — decrement the value, waiting up to timeout seconds
 * while it is 0. Returns 0, MP_ETIMEDOUT (nothing changed), MP_EINVAL. */
MP_API int mp_sem_acquire(mp_sem *sem, double timeout);

/* mp_sem_release — increment the value and wake one waiter. Any thread of
 * any process may release. Errors: MP_EOVERFLOW (bounded semaphore already
 * at its initial value, or value at MP_SEM_VALUE_MAX), MP_EINVAL. */
MP_API int mp_sem_release(mp_sem *sem);

/* mp_sem_get_value — the current value (a snapshot), or MP_EINVAL. */
MP_API int mp_sem_get_value(mp_sem *sem);

/* ---- Condition ------------------------------------------------------------ */

typedef struct mp_cond mp_cond;

typedef struct mp_cond_opts {
    /* The lock the condition is used with: at most one of lock and rlock
     * (both: MP_EINVAL). Borrowed: it must outlive the condition. With
     * neither, the condition makes its own rlock (Python's default),
     * reachable with mp_cond_get_rlock and freed with the condition. */
    mp_lock *lock;
    mp_rlock *rlock;
} mp_cond_opts;

/* mp_cond_create — a new condition variable (over a Redis lock or rlock:
 * a condition on the server, in process memory, freed by mp_cond_destroy).
 * Errors: MP_EINVAL (both locks given, a bad lock), MP_ENOMEM,
 * MP_ENOHEAPADDR. */
MP_API int mp_cond_create(mp_cond **out, const mp_cond_opts *opts);

/* mp_cond_destroy — free the condition (and its own rlock, if it made one)
 * (see Lifetime above). NULL: no-op. */
MP_API void mp_cond_destroy(mp_cond *cond);

/* mp_cond_acquire / mp_cond_release — acquire or release the condition's
 * lock (Python's `with cond:`); same results as mp_lock_* / mp_rlock_*. */
MP_API int mp_cond_acquire(mp_cond *cond, double timeout);
MP_API int mp_cond_release(mp_cond *cond);

/* mp_cond_get_lock / mp_cond_get_rlock — the condition's lock, or NULL if
 * it uses the other kind. Owned by the caller who passed it, or by the
 * condition for the rlock it made itself. */
MP_API mp_lock *mp_cond_get_lock(mp_cond *cond);
MP_API mp_rlock *mp_cond_get_rlock(mp_cond *cond);

/* mp_cond_wait — release the lock (all levels of an rlock), sleep until
 * notified or the timeout expires, then take the lock back (restoring the
 * rlock's count) before returning, whatever the outcome. Taking it back
 * waits without limit, like Python: the timeout bounds the sleep, not the
 * wait for a lock some other thread holds.
 *
 * Returns 0 when notified, MP_ETIMEDOUT, MP_EOWNERDEAD (the lock came back
 * from a holder that died: held, repair it), MP_EPERM (the calling thread
 * does not hold the lock: nothing done), MP_EINVAL. A return of 0 may be
 * spurious in rare races with timeouts; test the condition in a loop, or
 * use mp_cond_wait_for.
 */
MP_API int mp_cond_wait(mp_cond *cond, double timeout);

/* The predicate of mp_cond_wait_for: called with the lock held; true when
 * the awaited state holds. arg is the pointer given to mp_cond_wait_for. */
typedef bool (*mp_cond_pred)(void *arg);

/* mp_cond_wait_for — wait until pred(arg) is true (Python's wait_for),
 * checking it first and after each wake-up, within one overall timeout.
 * Returns 0 when the predicate is true, MP_ETIMEDOUT when the timeout
 * expired with it still false, and otherwise as mp_cond_wait (on
 * MP_EOWNERDEAD the predicate is not evaluated: the data may be
 * inconsistent). pred: called only in the calling thread. */
MP_API int mp_cond_wait_for(mp_cond *cond, mp_cond_pred pred, void *arg, double timeout);

/* mp_cond_notify — wake up to n threads waiting on the condition (n = 0
 * wakes none). The caller must hold the lock. Returns the number of
 * waiters chosen to wake, or MP_EPERM, MP_EINVAL. */
MP_API int mp_cond_notify(mp_cond *cond, unsigned n);

/* mp_cond_notify_all — wake every waiter. As mp_cond_notify. */
MP_API int mp_cond_notify_all(mp_cond *cond);

/* ---- Event -------------------------------------------------------------- */

typedef struct mp_event mp_event;

typedef struct mp_event_opts {
    bool set; /* initially set */
} mp_event_opts;

/* mp_event_create — a new event (clear unless opts->set). Errors: MP_EINVAL,
 * MP_ENOMEM, MP_ENOHEAPADDR. */
MP_API int mp_event_create(mp_event **out, const mp_event_opts *opts);

/* mp_event_destroy — free the event (see Lifetime above). NULL: no-op. */
MP_API void mp_event_destroy(mp_event *ev);

/* mp_event_set — set the flag and wake every waiter. 0 or MP_EINVAL. */
MP_API int mp_event_set(mp_event *ev);

/* mp_event_clear — clear the flag. 0 or MP_EINVAL. */
MP_API int mp_event_clear(mp_event *ev);

/* mp_event_is_set — the flag (false for an invalid event). */
MP_API bool mp_event_is_set(mp_event *ev);

/* mp_event_wait — wait until the flag is set. Returns 0 when it is set or
 * was set during the wait (even if cleared again since: a waiter never
 * misses a set), MP_ETIMEDOUT, MP_EINVAL. */
MP_API int mp_event_wait(mp_event *ev, double timeout);

/* ---- Barrier ------------------------------------------------------------ */

typedef struct mp_barrier mp_barrier;

/* The action of a barrier: run by the last party to arrive, before the
 * others are released. A non-zero return breaks the barrier (Python: the
 * action raised). It runs in whichever process arrives last, so arg must
 * be valid there (shared heap memory, or memory inherited through fork).
 * It runs with the barrier's internal mutex held: it must not call the
 * barrier's own functions. */
typedef int (*mp_barrier_action)(void *arg);

typedef struct mp_barrier_opts {
    unsigned parties; /* required: at least 1 (0 is MP_EINVAL) */
    mp_barrier_action action;
    void *action_arg;
    /* The default timeout in seconds (Python's Barrier(timeout=)): the one
     * mp_barrier_wait_default uses. The zero value means no default, as
     * Python's None: mp_barrier_wait_default waits without limit (and so
     * does a negative value, MP_FOREVER). NaN is MP_EINVAL. */
    double timeout;
} mp_barrier_opts;

/* mp_barrier_create — a new barrier for opts->parties parties.
 * Errors: MP_EINVAL (NULL opts, parties 0 or above 2^31, NaN timeout), MP_ENOMEM,
 * MP_ENOHEAPADDR. */
MP_API int mp_barrier_create(mp_barrier **out, const mp_barrier_opts *opts);

/* mp_barrier_destroy — free the barrier (see Lifetime above). NULL: no-op. */
MP_API void mp_barrier_destroy(mp_barrier *b);

/* mp_barrier_wait — arrive and wait until all parties have arrived.
 *
 * Returns the arrival index, 0 for the first to arrive up to parties - 1
 * for the last (the one that ran the action), like Python. MP_EBROKEN when
 * the barrier is or becomes broken: by mp_barrier_abort, by a reset while
 * waiting, by an action that failed, or by a timeout. A timeout breaks the
 * barrier for every party, the one that timed out included (it also gets
 * MP_EBROKEN, as Python raises BrokenBarrierError); it stays broken until
 * mp_barrier_reset. MP_EINVAL for a bad barrier or NaN timeout.
 * A party that dies while waiting never arrives: the others wait until
 * their timeout breaks the barrier.
 */
MP_API int mp_barrier_wait(mp_barrier *b, double timeout);

/* mp_barrier_wait_default — Python's b.wait() with no argument: as
 * mp_barrier_wait with the barrier's default timeout (opts->timeout; no
 * default: without limit). An explicit timeout is always given with
 * mp_barrier_wait, whose MP_FOREVER and 0 keep their meaning. A Redis
 * barrier (mp_manager_barrier) has no default: it waits without limit.
 * Returns and errors as mp_barrier_wait. */
MP_API int mp_barrier_wait_default(mp_barrier *b);

/* mp_barrier_reset — back to the initial, unbroken state; parties waiting
 * get MP_EBROKEN. 0 or MP_EINVAL. */
MP_API int mp_barrier_reset(mp_barrier *b);

/* mp_barrier_abort — break the barrier: waiting and future calls to wait
 * get MP_EBROKEN until mp_barrier_reset. 0 or MP_EINVAL. */
MP_API int mp_barrier_abort(mp_barrier *b);

/* Accessors (snapshots): parties, number of parties waiting, broken state.
 * MP_EINVAL (or false) for a bad barrier. */
MP_API int mp_barrier_parties(mp_barrier *b);
MP_API int mp_barrier_n_waiting(mp_barrier *b);
MP_API bool mp_barrier_broken(mp_barrier *b);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_SYNC_H */
