/* multiproc — the manager: shared objects reachable by name (Python's
 * multiprocessing.Manager()).
 *
 *     mp_manager *m;
 *     mp_manager_open(&m, "local");            // or NULL: the same
 *     mp_dict *d;
 *     mp_manager_dict(m, "results", &d);       // creates it, or opens it
 *     mp_dict_set_int64(d, "done", 1);
 *     mp_queue *q;
 *     mp_manager_queue(m, "jobs", &(mp_queue_opts){.maxsize = 100}, &q);
 *     mp_value *n;
 *     mp_manager_value(m, "count", &(mp_value_opts){.typecode = 'q'}, &n);
 *     mp_manager_close(m);                     // d, q, n stay valid
 *
 * Python's Manager() starts a server process and every d[key] = value is a
 * pickled round trip over a socket. The local manager has no server: its
 * objects live in the family's shared heap and every process of the family
 * uses them directly, at memory speed. The manager only gives them names:
 * mp_manager_<type>(m, name, ..., &obj) returns the object registered
 * under name, creating it the first time. Creation is atomic: processes
 * racing to create the same name get the same object, and a process killed
 * while creating leaves either no name or a name with its whole object.
 *
 * Types: every shared object of the library has an accessor: dict, list,
 * namespace, queue, lock, rlock, sem, cond, event, barrier, value, array.
 * A name belongs to one type; asking for it as another type is MP_EEXIST.
 *
 * Parameters: options (queue, sem; the initial contents of a value or
 * array) are used only by the call that creates the object and ignored
 * when it exists. The parameters that fix an object's shape are checked
 * against an existing object, and a mismatch is MP_EEXIST, like another
 * type: a value's or array's typecode and raw-ness, an array's length, a
 * barrier's parties. (An opener that does not know them can read them from
 * the object once it has it, e.g. with mp_array_len.) The return value
 * (1: created, 0: opened) tells the creator apart, e.g. to fill an array.
 *
 * Lifetime: named objects belong to the manager's registry and live as
 * long as the family's shared heap (until the last process of the family
 * exits): mp_<type>_destroy on them is a no-op, and mp_manager_close
 * releases only the handle. mp_manager_remove takes a name away: by
 * default the object stays allocated (pointers held anywhere stay valid);
 * with MP_MANAGER_DESTROY it is freed too. A named queue keeps its
 * eventfd (used by mp_wait) open in the process that created it, until the
 * queue is destroyed that way.
 *
 * Reachability: the registry of the local manager is anchored in the
 * family's shared heap, so every process of the family reaches every name
 * as soon as it is created: children started by fork, spawn or forkserver,
 * before or after the name was made, and their own children.
 *
 * Backends: "local" (or NULL) is the family's shared heap.
 * "redis://[[user]:password@]host[:port][/db][?options]" is the Redis
 * backend (built when the library was built with hiredis; otherwise
 * MP_ENOSYS): the same API on a Redis server, shared by processes on any
 * machine that reaches it. Options: prefix=<key prefix> (default "mp:";
 * applications with different prefixes share one server safely),
 * timeout=<seconds> (default 5: a deadline for each call to the server,
 * its name resolution, connect, sends and reads together, which signals
 * never stretch; a blocking get may wait its server-side slice longer),
 * reconnect=0|1 (default 0: after a lost connection every call fails with
 * MP_ECONNRESET; 1: the next call connects again, and a server restarted
 * between two calls is not even noticed), lease=<seconds> (default 30: how
 * long a lock stays held without a release; see below). "rediss://" (TLS)
 * is reserved: MP_ENOSYS.
 *
 *     mp_manager_open(&m, "redis://:secret@10.0.0.5:6379/0?prefix=app1:");
 *
 * On Redis, mp_manager_<type> returns a process-local handle to the data
 * on the server: every call makes a new handle, and mp_<type>_destroy
 * releases the handle (never the data). Handles stay valid after
 * mp_manager_close; a child started with the fork method may use its
 * parent's handles (its first call opens its own connection), a spawned
 * one opens its own manager. Handles may be used from several threads
 * (their calls are serialised on the manager's connection; a call that
 * blocks on the server, a queue get or a waiter, uses a side connection
 * of its own meanwhile). Every operation can then also
 * fail with MP_ETIMEDOUT (no whole reply within the timeout; the
 * connection is then dropped, as for a lost one, since the rest of the
 * reply could still come), MP_ECONNRESET
 * (connection lost; the operation may or may not have been applied),
 * MP_ECONNREFUSED (reconnect found no server), MP_EAUTH, MP_EBADMSG (a
 * malformed reply or a stored value this library did not write, such as
 * a number in another form than the library writes: nothing is changed),
 * MP_EPROTO (the key holds another Redis type: nothing is changed) or
 * MP_ESERVER (any other server error). Names may hold any byte but NUL:
 * in keys, '%' and ':' of a name are escaped, so that no name of any type
 * reaches another object's keys (docs/redis.md, "Key layout"). What is
 * atomic, and how the Redis semantics differ (snapshot order, update
 * functions that may run more than once), is under "Redis backend" in
 * docs/redis.md.
 *
 * Interrupts on Redis (multiproc/interrupt.h): the blocking calls on a
 * Redis object honour the calling thread's settings as local ones do:
 * lock, rlock and semaphore acquire, event wait, condition wait (it
 * returns with the lock taken back), barrier wait (the party is counted
 * out of its phase), queue get, put and join, mp_wait on a Redis queue or
 * event, and the distributed pool's waits for results (mp_async_get and
 * mp_async_wait, mp_imap_next, mp_pool_map and the other synchronous
 * calls). They return MP_EINTR (a signal handler ran, the thread opted
 * in) or MP_ECANCELED (its cancel was triggered) having changed nothing
 * on the server: no lock or unit taken, no message put or lost (a get
 * that the server had already served returns its message), the waiter's
 * entry gone from the object's wait set (a lock waiter that a release
 * granted the lock to returns 0 holding it, a semaphore waiter that a
 * release granted a unit to returns 0 holding it, and a condition waiter
 * that a notify chose returns 0), a pool's results left for a later
 * call. The wait blocked on the
 * server is ended there (CLIENT UNBLOCK) within a round trip; a server
 * that refuses CLIENT UNBLOCK (an ACL) makes the call wait out the slice
 * of at most a second that it had begun. The round trips to the server
 * around the waits are short calls that a signal does not end.
 *
 * Types on Redis: every type. A Redis condition's waiters are woken by
 * the server; mp_cond_create with a Redis lock or rlock makes a Redis
 * condition whose waiters live with the lock's keys, so the conditions
 * made over one lock share their waiters (in any process). The
 * functions between the two marker lines below are not available on a
 * Redis object: they return MP_ENOSYS (NULL for those that return a
 * pointer). Every other function of these types works on Redis.
 * ---- BEGIN NOT ON REDIS ----
 *   mp_queue_reserve mp_queue_commit mp_queue_abort
 *   mp_queue_peek mp_queue_release
 *   mp_value_get_lock mp_value_data
 *   mp_array_get_lock mp_array_data
 * ---- END NOT ON REDIS ----
 * Why: the zero-copy functions hand out memory of the shared heap that
 * the message is written into or read from in place; a Redis message is
 * bytes on a server, which every put and get copies over the network
 * (mp_queue_put_many / get_many batch them instead). A value's or array's
 * data pointer and lock are shared memory and a lock guarding it; a Redis
 * number is changed atomically on the server (mp_value_add_*), so there
 * is neither memory to point at nor a lock that would protect it.
 * How the Redis objects differ from the local ones:
 *   queue: maxsize as locally (fixed by the creator); max_bytes is
 *     MP_ENOSYS at the accessor; a joinable queue is another shape under
 *     its name (a plain opener gets MP_EEXIST, and the other way round),
 *     with task_done and join (joiners woken by the server when the
 *     count of messages not done reaches 0). put, put_nowait, put_many,
 *     get, get_nowait, get_into (a short buffer puts the message back at
 *     the head), get_many (the first as get_into, then in one script the
 *     next ones that fit), qsize, empty, full work; the zero-copy
 *     functions (reserve, commit, abort, peek, release) are not
 *     available (above); mp_wait on a Redis queue waits on the server (a
 *     put ends it within a round trip, a close within a second). close
 *     as locally: later puts are MP_ECLOSED, gets take what is
 *     left then answer MP_ECLOSED, blocked gets wake.
 *   lock, rlock: the holder is the process through that handle, not the
 *     thread: threads that must exclude each other use one handle each
 *     (another thread acquiring through the same handle gets MP_EDEADLK
 *     from a lock, one more level of an rlock). A lock is held for at
 *     most its lease (URL option lease=<seconds>, default 30): a holder
 *     that dies, or holds it longer, loses it when the lease runs out, the
 *     next holder gets MP_EOWNERDEAD, and the late release is MP_EPERM.
 *     The holder extends it with mp_lock_renew; mp_lock_token gives the
 *     hold's fencing token, counted on the server (MP_MANAGER_DESTROY
 *     deletes the count: a lock made again counts from 1).
 *     mp_lock_consistent is 0 while held (there is no unrecoverable state).
 *     mp_lock_locked asks the server (a hold whose lease ran out is
 *     free); mp_lock_owner gives the pid written in the holder's token
 *     and tid 0 (the server knows no threads); mp_rlock_owner's depth is
 *     known only to the holder through its handle, 0 for anyone else.
 *   sem: value and bounded as locally; a process killed between acquire
 *     and release does not give its unit back (nor locally).
 *   event: as locally; mp_wait on a Redis event waits on the server and
 *     never misses a set. Lock, rlock, sem and event waiters block on the
 *     server and are woken by the release or set (docs/redis.md,
 *     "Waiters"; a lock's release grants it to the waiter it wakes);
 *     while waiters wait, a newcomer queues behind them.
 *   cond: mp_manager_cond makes a condition with its own rlock (its lease
 *     as a lock's); mp_cond_create over a Redis lock or rlock makes one
 *     over it, and the conditions over one Redis lock share their
 *     waiters. A notify wakes waiters in arrival order and passes over
 *     waiters that died (their entry lapses 3 s after their last renewal),
 *     so it never goes to a dead one; a wait timing out while chosen
 *     returns 0. A wait whose connection fails returns the error without
 *     the lock.
 *   barrier: as locally but with no action (mp_manager_barrier makes
 *     none); the parties are fixed by the name's type.
 *   value: the number lives on the server: mp_value_data and
 *     mp_value_get_lock are NULL; mp_value_add_i64 / mp_value_add_double
 *     are the atomic read-modify-write (INCRBY / INCRBYFLOAT). A 'Q' or
 *     'L' value adds only within int64; an add to an 'f' value returns
 *     the double the server computed (a read rounds it to float).
 *   array: the items live on the server (a list of numbers, at most 2^20
 *     items: longer is MP_ENOMEM): mp_array_data and mp_array_get_lock are
 *     NULL; the typed accessors read or write one item per round trip.
 *   barrier: no action and no default timeout (mp_barrier_wait_default
 *     waits without limit).
 *   dict: snapshots in Redis's order; mp_dict_popitem takes an arbitrary
 *     pair (a hash has no insertion order). list: as locally
 *     (mp_list_imul beyond 2^32 - 1 items is MP_EOVERFLOW).
 * Removal on Redis: flags 0 takes the name away and leaves the data keys;
 * handles anywhere keep working on them, and a new object of the same name
 * and type sees the old data (a value or array keeps its numbers: init is
 * not applied over them). MP_MANAGER_DESTROY deletes the data keys in the same
 * atomic step; handles anywhere stay valid and see an empty object.
 *
 * Safety: an mp_manager handle may be used from several threads at once;
 * it is process-local memory, valid in a forked child (which may use it or
 * close its copy); a spawned child opens its own. Named objects have the
 * safety of their type.
 */
#ifndef MULTIPROC_MANAGER_H
#define MULTIPROC_MANAGER_H

#include "multiproc/dict.h"
#include "multiproc/error.h"
#include "multiproc/list.h"
#include "multiproc/namespace.h"
#include "multiproc/queue.h"
#include "multiproc/sync.h"
#include "multiproc/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_manager mp_manager;

/* Longest object name, in bytes (a name is any non-empty C string). */
#define MP_MANAGER_NAME_MAX 255

/* mp_manager_open — open a manager.
 * url: NULL or "local" for the family's shared heap; "redis://..." for a
 * Redis server (see above). Borrowed until return.
 * out: receives the handle, owned by the caller (mp_manager_close).
 * Errors: MP_EINVAL (NULL out, unknown URL scheme, malformed Redis URL or
 * unknown option: mp_error_detail() names the part, e.g. "redis URL:
 * unknown option 'prefx' (known: ...)", never the password), MP_ENOSYS (a backend not built in,
 * rediss://), MP_ENOMEM, MP_ENOHEAPADDR; for Redis also MP_EAUTH (wrong or missing password),
 * MP_ECONNREFUSED (nothing listens there), MP_ETIMEDOUT (no answer within the timeout), MP_EIO
 * (host not found, other socket errors), MP_ESERVER (e.g. a db number the server lacks). */
MP_API int mp_manager_open(mp_manager **out, const char *url);

/* mp_manager_close — release the handle. The named objects stay, and so
 * do the pointers obtained through it. NULL is a no-op. */
MP_API void mp_manager_close(mp_manager *m);

/* mp_manager_backend — the backend's name: "local" or "redis". Never NULL
 * for a valid handle; NULL for NULL. */
MP_API const char *mp_manager_backend(const mp_manager *m);

/* Named objects: out receives the object registered as name, created the
 * first time (empty, or with the defaults of its type unless said
 * otherwise below). name: borrowed until return. The pointer stays valid
 * for the life of the family and may be passed to other processes.
 * Returns 1 when this call created the object, 0 when it already existed;
 * on error *out is untouched.
 * Errors of every accessor: MP_EINVAL (NULL m, name or out; empty name or
 * longer than MP_MANAGER_NAME_MAX), MP_EEXIST (the name belongs to another
 * type, or to an object of other shape: see "Parameters" above),
 * MP_ENOMEM (shared heap full), MP_ENOHEAPADDR; on Redis, the connection
 * errors above, and MP_ENOSYS for a type (or a queue option) the Redis
 * backend does not serve (see "Types on Redis" above). */
MP_API int mp_manager_dict(mp_manager *m, const char *name, mp_dict **out);
MP_API int mp_manager_list(mp_manager *m, const char *name, mp_list **out);
MP_API int mp_manager_namespace(mp_manager *m, const char *name, mp_namespace **out);

/* mp_manager_queue — a named queue. opts (borrowed until return; NULL:
 * defaults) are used only when creating it; invalid options are MP_EINVAL
 * either way (see mp_queue_create). Also MP_EMFILE (no fd left for the
 * queue's eventfd). */
MP_API int mp_manager_queue(mp_manager *m, const char *name, const mp_queue_opts *opts,
                            mp_queue **out);

/* mp_manager_lock, mp_manager_rlock — a named Lock or RLock. */
MP_API int mp_manager_lock(mp_manager *m, const char *name, mp_lock **out);
MP_API int mp_manager_rlock(mp_manager *m, const char *name, mp_rlock **out);

/* mp_manager_sem — a named Semaphore or BoundedSemaphore. opts (borrowed
 * until return; NULL: value 0, not bounded, as mp_sem_create) are used only
 * when creating it; a value above MP_SEM_VALUE_MAX is MP_EINVAL either
 * way. */
MP_API int mp_manager_sem(mp_manager *m, const char *name, const mp_sem_opts *opts, mp_sem **out);

/* mp_manager_cond — a named Condition with its own rlock (Python's
 * Condition()), reachable with mp_cond_get_rlock. */
MP_API int mp_manager_cond(mp_manager *m, const char *name, mp_cond **out);

/* mp_manager_event — a named Event, created clear. */
MP_API int mp_manager_event(mp_manager *m, const char *name, mp_event **out);

/* mp_manager_barrier — a named Barrier for parties parties (no action).
 * Errors: MP_EINVAL (parties 0 or above 2^31 - 1), MP_EEXIST (the barrier
 * exists with another number of parties). */
MP_API int mp_manager_barrier(mp_manager *m, const char *name, unsigned parties, mp_barrier **out);

/* mp_manager_value, mp_manager_array — a named Value or Array. opts:
 * required, borrowed until return. typecode (and, for an array, len) and
 * raw are the object's shape: an existing object must have the same
 * (MP_EEXIST otherwise). init is used only when creating it. lock must be
 * NULL: a named object owns its lock (or has none, raw).
 * Errors: MP_EINVAL (NULL opts, unknown typecode, a lock given),
 * MP_EEXIST (another type or shape), MP_ENOMEM (len too large). */
MP_API int mp_manager_value(mp_manager *m, const char *name, const mp_value_opts *opts,
                            mp_value **out);
MP_API int mp_manager_array(mp_manager *m, const char *name, const mp_array_opts *opts,
                            mp_array **out);

/* Flags of mp_manager_remove. */
#define MP_MANAGER_DESTROY 1u /* free the object too */

/* mp_manager_remove — take a name away (whatever its type). The name is
 * free at once: the next accessor call with it creates a new object.
 * flags 0: the object stays allocated and named (mp_<type>_destroy still
 * does nothing), so pointers to it held by any process stay valid; its
 * memory returns when the family ends. That is the safe choice when other
 * processes may still use the object.
 * MP_MANAGER_DESTROY: the object is freed as by mp_<type>_destroy. Only
 * when no thread of any process uses it, waits on it, or may still hold a
 * pointer obtained before the removal (the manager cannot know).
 * On Redis: see "Removal on Redis" above.
 * Returns 0. Errors: MP_EINVAL (NULL m or name, bad name, unknown flags),
 * MP_ENOENT (no such name); on Redis, the connection errors above. */
MP_API int mp_manager_remove(mp_manager *m, const char *name, unsigned flags);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_MANAGER_H */
