/* multiproc — the distributed pool: tasks on a Redis stream, workers in any
 * process on any machine.
 *
 * The client is an ordinary mp_pool created with a Redis manager and a
 * pool name; apply_async, apply, map, map_async, starmap, imap,
 * imap_unordered and the parallel-for mp_pool_for, mp_async_* and
 * mp_imap_* work as on a local pool, and so do the progress options:
 *
 *     mp_manager *m;
 *     mp_manager_open(&m, "redis://:secret@10.0.0.5:6379");
 *     mp_task_register("square", square);
 *     mp_pool *pool;
 *     mp_pool_create(&pool, &(mp_pool_opts){ .manager = m, .name = "squares" });
 *     int rc = mp_pool_map(pool, &(mp_map_spec){ .fn = square, .in = in, .n = 10,
 *                              .in_size = 8, .out = out, .out_size = 8 }, 10.0);
 *
 * and on any machine, the same program (or any program that registers the
 * same names) serves it:
 *
 *     mp_task_register("square", square);
 *     mp_worker_serve(m, "squares", &(mp_worker_opts){ .idle_timeout = 60 });
 *
 * Functions: a task's function travels as the name it was registered
 * under (mp_task_register; a parallel-for function's: mp_for_register),
 * or, when it has none, as its place in the
 * client's program (module path, offset, build-id): a worker then runs it
 * only when it runs the same build of that module. A worker that cannot
 * resolve the function fails the task with MP_ENOFUNC; it never crashes.
 * Whoever can write to the Redis server can make workers call any
 * registered function, and (without registered_only) any function of
 * their program: protect the server with a password.
 *
 * Delivery is at least once. A serving worker heartbeats and renews the
 * leases of the tasks it runs (heartbeat_interval): a task of a living
 * worker stays its own however long it runs, and the tasks of a worker
 * that died or lost the server go to another worker within about 4
 * heartbeat intervals (2 s by default). A task held past
 * visibility_timeout seconds without a renewed lease is claimed again
 * too (the backstop). After max_deliveries deliveries the task fails
 * with MP_EWORKERLOST (pid 0, signal 0: the worker was on another
 * machine) and is copied to the dead-letter stream
 * <prefix>pool:<name>:dead. A task may therefore run more than once (a
 * worker cut off from the server for a while, or that lost its
 * connection after running it): make tasks idempotent. The client keeps
 * the first result of each task and drops duplicates.
 *
 * Differences from a local pool: ctx must be NULL on the client (a pointer
 * means nothing on another machine); tasks and parallel-for chunks get
 * the worker's mp_worker_opts.ctx instead, and mp_pool_for's reduce gets
 * NULL. mp_pool_pids returns 0. Callbacks and progress work; processes,
 * initializer, maxtasksperchild, task_timeout, start_method and threads
 * must be zero (MP_EINVAL). MP_ENOFUNC is a code of its own. Results have
 * no descriptor (mp_async_fd and mp_imap_fd are MP_ENOSYS: they arrive on
 * a Redis list that only the client's calls read); mp_wait and
 * mp_async_wait_any/_some look at a result every 20 ms instead, and cannot
 * wait on an iterator (MP_ENOSYS).
 *
 * Parallel-for: mp_pool_for cuts [begin, end) into chunks (chunksize, or
 * a 32nd of the range), sent as maps' chunks are (packed, pipelined);
 * each chunk runs in a worker from acc_init (or zeroes) and its partial
 * (acc_size bytes) comes back in its result, which the client reduces
 * into result as soon as it arrives: in order of arrival, so reduce must
 * be associative and commutative, as locally. A chunk whose executor
 * crashes fails alone (MP_EWORKERLOST, its pid and signal) and is left
 * out of the reduction; the others are reduced.
 *
 * Crash isolation: by default a worker is a supervisor of executor
 * processes (mp_worker_opts.executors, one per CPU) that run each batch
 * of tasks it reads in parallel. An item whose executor dies (a signal
 * such as SIGSEGV or SIGKILL, _exit, abort) fails alone with
 * MP_EWORKERLOST, and its mp_task_error carries the executor's pid (in
 * the worker's machine) and signal (0 when it exited); the executor is
 * replaced and every other item completes, as in a local pool. When the
 * worker itself dies, its tasks go to other workers, and after
 * max_deliveries a task fails with MP_EWORKERLOST, pid 0 and signal 0.
 * Every call can also fail with the connection errors of the Redis
 * manager (see multiproc/manager.h): with reconnect=0 a lost connection
 * is MP_ECONNRESET for every later call; with reconnect=1 the next call
 * connects again. Tasks in flight when a server without persistence
 * restarts are lost with its data: they fail with MP_ECONNRESET once a
 * wait of the client notices the restart (within about a second).
 * No call waits longer than its timeout plus the manager's connection
 * timeout (the URL's timeout option).
 *
 * Semantics of the pool calls on a distributed pool: close stops
 * submissions; join (after close) waits until every task this client
 * submitted has its result; terminate fails every unfinished mp_async with
 * MP_ECLOSED at once, removes the tasks no worker has taken from the
 * stream and cancels the running ones (as mp_async_cancel); destroy
 * terminates a pool with unfinished tasks and deletes the client's keys.
 * mp_async_cancel: a task no worker has taken is removed from the stream
 * and never runs; a running one finishes in its worker (it is not
 * interrupted), its result is not sent, and the worker starts none of the
 * cancelled tasks it holds and has not yet handed to its executors; the
 * worker learns of a cancel at its next heartbeat (heartbeat_interval).
 *
 * Client lease: the client keeps a key with a 10 s TTL, renewed every
 * 3.3 s by a thread of the pool (and by its calls); its result list
 * expires with it. Workers drop without running, and without an answer,
 * the tasks of a client whose key expired (a client killed, or cut off
 * from the server for 10 s). A client whose lease lapsed notices at its
 * next call: its unfinished tasks fail with MP_ECONNRESET.
 *
 * Thread safety: as a local pool (one thread at a time per pool).
 * mp_task_register may be called from any thread; mp_worker_serve may run
 * in several threads or processes at once (each with its executors, or
 * one task at a time with MP_WORKER_INLINE).
 * Threads that share a manager share its connection, on which a waiting
 * worker holds it up to half a second: give each thread its own manager.
 */
#ifndef MULTIPROC_WORKER_H
#define MULTIPROC_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "multiproc/error.h"
#include "multiproc/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest task name, in bytes. */
#define MP_TASK_NAME_MAX 64

/* mp_task_register — give fn a name that clients and workers agree on.
 * name: copied. Registering the same name with the same fn again is a
 * no-op. Process-wide, thread-safe; names cannot be removed.
 * Errors: MP_EINVAL (NULL or empty name, longer than MP_TASK_NAME_MAX,
 * NULL fn), MP_EEXIST (name registered with another function, or fn under
 * another name), MP_ENOMEM. */
MP_API int mp_task_register(const char *name, mp_task_fn fn);

/* mp_for_register — the same for a parallel-for function (mp_pool_for on
 * a distributed pool): its chunks then travel as the name. Task and
 * parallel-for functions share one name space: a name given to one kind
 * cannot be given to the other (MP_EEXIST), and a worker that has the
 * name for the other kind answers MP_ENOFUNC. Same contract and errors
 * as mp_task_register. */
MP_API int mp_for_register(const char *name, mp_for_fn fn);

typedef struct mp_worker_opts {
    /* Tasks to run before returning (the rest of a packed entry of a map
     * may pass it: see prefetch); 0: no limit. */
    unsigned long max_tasks;
    /* Return 0 after this many seconds without a task; 0: never. */
    double idle_timeout;
    /* Seconds a task may stay delivered without an answer nor a renewed
     * lease before another worker claims it again; 0: 30. A serving
     * worker renews the leases of its tasks every heartbeat, so this is
     * only the backstop (a worker that cannot beat). */
    double visibility_timeout;
    /* Deliveries of one task before it fails with MP_EWORKERLOST and goes
     * to the dead-letter stream; 0: 3. */
    unsigned max_deliveries;
    /* Stream entries taken at once. An entry is one task (an apply, a
     * map or parallel-for chunk) or, for a map or parallel-for of more
     * than 511 chunks, a pack of up to 16 of its chunks, taken and run
     * whole. 0 (default): adaptive, one
     * entry per executor up to 64: twice as many after a batch that came
     * back full and ran in under 5 ms, one per executor again after a
     * slower one; tiny tasks then share round trips, and entries that take
     * longer are taken one per executor. More
     * makes tiny tasks faster; fewer spreads long tasks better over the
     * workers. Tasks taken are this worker's (their leases renewed at
     * every heartbeat): if it dies, they wait for its heartbeat to
     * expire. While it runs a batch, every half visibility timeout it
     * answers the tasks that ran. */
    unsigned prefetch;
    /* Refuse tasks whose function is not registered by name. */
    bool registered_only;
    /* Passed to every task as its ctx (in an executor: see executors). */
    void *ctx;
    /* Checked between batches (at least every half second while idle),
     * with an atomic load: non-zero makes the call return 0. Set it from
     * another thread (atomically) or a signal handler. May be NULL. */
    volatile int *stop;
    /* Seconds between heartbeats; 0: 0.5 (at most a quarter of the
     * visibility timeout is used). A thread of the call, on the manager's
     * connection, sets the key <prefix>pool:<name>:worker:<consumer> with
     * a TTL of 3 intervals and renews the lease of every task the worker
     * holds, also while a task runs: a task of a living worker is never
     * claimed by another, however long it runs. Workers take the tasks of
     * a worker whose key has expired (dead, or cut off from the server)
     * at once: within about 4 intervals of its death. */
    double heartbeat_interval;
    /* Executor processes that run the tasks; 0: mp_cpu_count(), at most
     * 1024. The call is then a supervisor: it keeps the connection (reads,
     * heartbeats, answers) and hands each batch it reads to its
     * executors, which run it in parallel. A task that crashes its
     * executor (signal, _exit, abort, SIGKILL from outside) fails alone
     * with MP_EWORKERLOST and the executor's pid and signal; the executor
     * is replaced and the worker goes on. Executors are forked from the
     * calling process (at the start, and to replace one): tasks get
     * opts.ctx, and see the memory it points to as it was at that fork
     * (what a task writes stays in its executor). They die with the
     * calling thread and its process (SIGKILL included) and are reaped
     * before the call returns. MP_WORKER_INLINE: no executors, the
     * calling thread runs the tasks one at a time (a crashing task takes
     * the worker with it; its tasks go to other workers, and one that
     * crashes every worker fails after max_deliveries). */
    int executors;
} mp_worker_opts;

/* mp_worker_opts.executors: run the tasks in the calling thread. */
#define MP_WORKER_INLINE (-1)

/* mp_worker_serve — run tasks of the distributed pool pool_name, in
 * executor processes (opts->executors; in the calling thread with
 * MP_WORKER_INLINE), until stopped (opts->stop, mp_worker_stop,
 * max_tasks, idle_timeout) or a connection error. Its executors are
 * reaped before it returns.
 * m: a Redis manager, borrowed for the call. opts: NULL for defaults.
 * Returns 0 when stopped, or: MP_EINVAL (NULL m, NULL or empty name, longer
 * than MP_MANAGER_NAME_MAX, a local manager, negative or NaN timeouts,
 * executors out of range), MP_ENOSYS (built without Redis), MP_ENOMEM,
 * what mp_pool_create returns for the executors (MP_EAGAIN, ...),
 * and the manager's connection errors (with reconnect=1 a lost server is
 * waited for instead, until a stop condition). */
MP_API int mp_worker_serve(struct mp_manager *m, const char *pool_name, const mp_worker_opts *opts);

/* mp_worker_stop — make every worker serving pool_name return (within
 * about half a second of finishing its current batch). Workers started
 * later are not affected. Errors: MP_EINVAL (NULL m, NULL or empty name, longer
 * than MP_MANAGER_NAME_MAX, a local manager), MP_ENOSYS (built without
 * Redis), and the manager's connection errors (MP_ETIMEDOUT,
 * MP_ECONNRESET, MP_ECONNREFUSED, MP_EAUTH, MP_ESERVER). */
MP_API int mp_worker_stop(struct mp_manager *m, const char *pool_name);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_WORKER_H */
