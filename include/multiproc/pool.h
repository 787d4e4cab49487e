/* multiproc — process pools (Python's multiprocessing.Pool and AsyncResult).
 *
 * Worked example (the seeds' map of squares, then the sum of the squares
 * of 1..10^7 as a parallel-for with a reduction):
 *
 *     static int square(const void *in, size_t in_len, void *out, size_t out_cap,
 *                       size_t *out_len, void *ctx)
 *     {
 *         int64_t x = *(const int64_t *)in;
 *         *(int64_t *)out = x * x;             // out_cap is sizeof(int64_t)
 *         return 0;                            // or the task's own error code
 *     }
 *
 *     static int sum_squares(int64_t begin, int64_t end, void *acc, void *ctx)
 *     {
 *         int64_t s = 0;                       // one chunk [begin, end)
 *         for (int64_t x = begin; x < end; x++)
 *             s += x * x;
 *         *(int64_t *)acc = s;                 // this chunk's partial
 *         return 0;
 *     }
 *
 *     static void add(void *total, const void *partial, void *ctx)
 *     {
 *         *(int64_t *)total += *(const int64_t *)partial;   // in the parent
 *     }
 *
 *     mp_pool *pool;
 *     mp_pool_create(&pool, &(mp_pool_opts){ .processes = 4 });
 *     int64_t in[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, out[10];
 *     int rc = mp_pool_map(pool, &(mp_map_spec){ .fn = square,
 *                              .in = in, .n = 10, .in_size = 8,
 *                              .out = out, .out_size = 8 }, MP_FOREVER);
 *     // rc == 0, out == {1, 4, 9, ..., 100}
 *
 *     int64_t sum;                             // 1^2 + ... + 1000000^2
 *     rc = mp_pool_for(pool, &(mp_for_spec){ .fn = sum_squares,
 *                          .begin = 1, .end = 1000001,
 *                          .acc_size = sizeof sum, .reduce = add, .result = &sum },
 *                      MP_FOREVER);
 *     // rc == 0, sum == 333333833333500000
 *     mp_pool_close(pool);
 *     mp_pool_join(pool, MP_FOREVER);
 *     mp_pool_destroy(pool);
 *
 * Tasks are C functions of one signature (mp_task_fn) that read input bytes
 * and write output bytes. Every item of a map is one call; items are sent to
 * the workers in chunks. A task returns 0, or its own non-zero error code:
 * the item then fails with MP_ETASKFAILED and that code, and the pool goes on.
 *
 * Crash-proof: a worker that dies (SIGKILL, segfault, OOM) fails only the
 * item it was running, with MP_EWORKERLOST and its pid and signal
 * (mp_task_error); a replacement worker starts and every other item
 * completes. With a per-task timeout, a worker whose item runs longer is
 * killed and replaced and the item fails with MP_ETASKFAILED and the reason
 * MP_ETIMEDOUT. Nothing ever hangs on a dead worker.
 *
 * Broken pool: workers that keep dying before they get past the
 * initializer (it crashes or exits) are not replaced for ever. After 2 * processes + 2 worker
 * deaths in a row in which no worker got past its initializer and no task ended, the pool is broken
 * (Python's BrokenProcessPool): its workers are stopped, every unfinished job fails with
 * MP_EBROKENPOOL (error callbacks run), every later submit returns MP_EBROKENPOOL, and
 * mp_pool_broken_reason tells the last death. A task that kills its worker is not such a death: it
 * fails alone with MP_EWORKERLOST and the pool goes on. Thread pools never break (a crash ends the
 * process).
 *
 * The parent starts no thread (unless the threads option asks for thread
 * workers). All the pool's bookkeeping (collecting
 * results, copying them into output arrays, replacing dead workers, killing
 * overdue tasks, calling callbacks, drawing progress) happens inside the
 * pool's calls made by the owner: mp_async_get/wait/ready, mp_imap_next,
 * mp_pool_map/apply/for, mp_pool_join, mp_pool_poll, mp_async_fd and
 * mp_imap_fd, mp_async_wait_any/_some and mp_wait on results. Callbacks
 * therefore run in the caller's thread, during one of those calls. An
 * event loop learns when to make such a call from the results'
 * descriptors (mp_async_fd, "results in an event loop" below).
 *
 * Memory: input bytes and arrays are copied into the family's shared heap
 * (once, chunk by chunk as they are handed out, through a few reused
 * chunk buffers for map arrays); results reach an ordinary output array
 * as their chunks finish. Arrays that already live in the shared heap are
 * used in place (zero-copy), for input and output. This holds for every
 * start method. The caller's arrays are not touched after mp_pool_map
 * returns (even on MP_ETIMEDOUT) or after the map's mp_async or mp_imap is
 * destroyed: an unfinished map goes on with a private copy of its input.
 *
 * Start methods (option start_method): workers are started like
 * mp_process children, with fork, spawn or forkserver; replacements of
 * dead or retired workers use the pool's method too. Task functions, the
 * initializer and the ctx / initarg pointers are plain pointers of the
 * caller under every method:
 *   - fork: workers are copies of the parent made when each started, so
 *     any pointer to data older than the worker works (stack and malloc
 *     included), unchecked. A task function in a module the parent loaded
 *     with dlopen after the pool was created is refused at submit with
 *     MP_ENOTLOADED (the workers, copies from before, would crash calling
 *     it); a ctx pointer into such a module is not checked;
 *   - spawn, forkserver: workers are fresh images of the program. A
 *     function or a pointer into static data is translated into the
 *     worker's image (module, offset, and a check of the module's
 *     build-id); a pointer into the shared heap passes as it is; any other
 *     ctx or initarg (stack, malloc, mmap) is refused with MP_EINVAL when
 *     the task is submitted (the pool is created). Static data reaches the
 *     worker's own copy, as initialised when the image loaded: values the
 *     parent computes belong in the shared heap. A function in a module
 *     the parent loaded with dlopen after the pool was created is refused
 *     at submit with MP_ENOTLOADED; one the workers lack for another
 *     reason (loaded with dlopen before the pool: a spawned image has only
 *     the modules the program loads at start) fails the task with
 *     MP_ENOTLOADED, and a module of another build with MP_EOTHERBUILD.
 * A task's function must therefore be a function of the program or of a
 * library it links (not a dlopen'd plugin) under spawn and forkserver.
 *
 * Thread safety: a pool and its mp_async/mp_imap objects belong to the
 * process that created the pool; calls on one pool must not run
 * concurrently from several threads (serialise them). Across processes:
 * only the creating process may use the pool (MP_EPERM elsewhere). Across
 * fork: a forked child must not use its copy of the parent's pool.
 *
 * A pool created with a Redis manager (opts.manager) is the client of a
 * distributed pool whose workers run anywhere: multiproc/worker.h.
 */
#ifndef MULTIPROC_POOL_H
#define MULTIPROC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "multiproc/error.h"
#include "multiproc/process.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_pool mp_pool;
typedef struct mp_async mp_async;
typedef struct mp_imap mp_imap;

/* A task: reads in_len bytes at in, writes at most out_cap bytes at out and
 * their number in *out_len (preset to out_cap; maps use fixed-size items, so
 * they may ignore it). out is aligned to 16 bytes for apply, and at the
 * item's place in the output array for maps. ctx is the pointer given with
 * the task. Runs in a worker. Returns 0, or a non-zero code of the task's
 * own. A task that returns 0 but sets *out_len above out_cap has a result
 * that cannot be delivered: it fails with MP_EMSGSIZE (for maps too). */
typedef int (*mp_task_fn)(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                          void *ctx);

/* mp_task_fail — fail the running task with code and a message, e.g.
 *     return mp_task_fail(7, "bad row %d", i);
 * from a task function (mp_task_fn, mp_for_fn) that then returns what it
 * returns. The message (printf format, cut at MP_TASK_MESSAGE_MAX - 1
 * bytes; fmt NULL: none, and an earlier call's is forgotten) reaches the item's
 * mp_task_error.message: through mp_async_error, the error callback, the map's errors array,
 * mp_imap_next's err, and mp_error_detail() after the mp_async_get or mp_pool_map/for/apply that
 * reports the failure. A task that calls it and then returns 0 succeeds:
 * the message is dropped. A distributed pool (multiproc/worker.h) carries
 * the message as well.
 * Returns code (0 is returned too, but a task returning 0 succeeded).
 * Thread safety: per thread; outside a task it has no effect but its
 * return value. */
MP_API int mp_task_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A parallel-for chunk: processes indexes [begin, end) and accumulates into
 * acc (acc_size bytes, aligned to 16, preset to the spec's acc_init, or
 * zero). Returns 0 or the chunk's own non-zero code. */
typedef int (*mp_for_fn)(int64_t begin, int64_t end, void *acc, void *ctx);

/* Combines one chunk's partial result into the total, in the parent. */
typedef void (*mp_reduce_fn)(void *total, const void *partial, void *ctx);

/* Runs once in each new worker before its first task (also in the
 * replacements of dead or retired workers). */
typedef void (*mp_init_fn)(void *arg);

/* Called in the parent when an mp_async completes (successfully, or not for
 * the error callback), during a call of the pool; see the file comment.
 * The callback may read the result (mp_async_error) but must not destroy
 * it nor call the pool's blocking calls. Not called for tasks cancelled by
 * terminate; the error callback is called for jobs ended by a broken pool. */
typedef void (*mp_async_cb)(mp_async *a, void *user);

/* Progress of the pool's items: done of total (all jobs), in the parent. */
typedef void (*mp_progress_fn)(uint64_t done, uint64_t total, void *user);

typedef struct mp_pool_opts {
    /* Number of workers; 0 means mp_cpu_count(). Negative or above 1024 is
     * MP_EINVAL (Python's "processes must be at least 1"). */
    int processes;
    mp_init_fn initializer;
    void *initarg;
    /* Tasks (map items) a worker runs before it is replaced; 0: no limit. */
    unsigned long maxtasksperchild;
    /* Seconds one task (one map item, one parallel-for chunk) may run;
     * 0: no limit, and so is any value above 3e9 (a century) and
     * INFINITY, as with every timeout. Negative or NaN is MP_EINVAL. */
    double task_timeout;
    /* How workers start: MP_START_FORK, _SPAWN, _FORKSERVER, or
     * MP_START_DEFAULT for the process-wide default at creation (see
     * "Start methods" above). Not allowed with threads. */
    mp_start_method start_method;
    /* Threads as workers (Python's ThreadPool): the same API, the workers
     * are threads of the caller's process, which share its memory (any ctx
     * pointer works, and maps use the caller's arrays in place). A thread cannot be killed:
     * task_timeout must be no limit (else MP_EINVAL), terminate lets running tasks finish and
     * cancels the queued ones, and a crashing task takes the whole process with it. */
    bool threads;
    /* Draw a progress line on stderr when stderr is a terminal. */
    bool progress;
    /* Called with the items done of the items submitted (an apply counts
     * one, a map its n, a parallel-for its indexes; failed and dropped
     * items count as done), in the owner's thread during the pool's
     * calls (as results arrive), at most every 100 ms, and once more,
     * unthrottled, when mp_pool_join has waited for every task; done
     * never decreases. The same on a distributed pool. */
    mp_progress_fn progress_cb;
    void *progress_user;
    /* A distributed pool (multiproc/worker.h): with a Redis manager, tasks
     * go to the Redis stream of the pool named name (required then) and
     * run in mp_worker_serve calls of any process on any machine; the
     * options above must then be zero, except the progress ones. Both
     * borrowed until return (the pool keeps its own reference to the
     * manager's connection). NULL: a local pool (name is then ignored).
     * A local manager is MP_EINVAL (MP_ENOSYS in a build without Redis). */
    struct mp_manager *manager;
    const char *name;
} mp_pool_opts;

/* Longest task message kept (mp_task_error.message), terminating NUL
 * included; longer ones are cut. */
#define MP_TASK_MESSAGE_MAX 128

/* One failed item. code is MP_ETASKFAILED (task_code holds the task's own
 * code, or MP_ETIMEDOUT when the per-task timeout killed it),
 * MP_EWORKERLOST (pid and signal of the dead worker; signal 0 if it
 * exited), MP_EMSGSIZE (the task returned 0 but its *out_len exceeded
 * out_cap: the result was not delivered), MP_ENOMEM (the parent could not
 * keep an apply's result), MP_EBROKENPOOL (the pool broke: one such error
 * stands for all the job's unfinished items, index 0; pid and signal of the
 * last worker death, task_code its exit code), or, under spawn and
 * forkserver, MP_ENOTLOADED / MP_EOTHERBUILD (the task's function, ctx or
 * the pool's initializer is in a module the worker lacks or has in another
 * build: the task never ran). */
typedef struct mp_task_error {
    size_t index; /* item index (map), chunk's first index (for), 0 (apply) */
    int code;
    int task_code;
    pid_t pid;
    int signal;
    /* What went wrong, in words, or "": the task's own message
     * (mp_task_fail) with MP_ETASKFAILED; with MP_EWORKERLOST the worker's
     * pid and the signal's name, and for SIGSEGV and SIGBUS the faulting
     * address when the worker could record it, e.g. "worker 4242 killed by
     * SIGSEGV (invalid memory access at 0x10)" (where the task was, its
     * backtrace: mp_async_backtrace, mp_imap_backtrace); the time limit
     * for a task that ran out of time. Always terminated. */
    char message[MP_TASK_MESSAGE_MAX];
} mp_task_error;

/* A map over n fixed-size items: out[i] = fn(in[i]). starmap is the same
 * with an array of argument structs as the items. */
typedef struct mp_map_spec {
    mp_task_fn fn; /* required */
    void *ctx;     /* passed to fn; see "Memory" above */
    const void *in;
    size_t n;       /* number of items (0: nothing to do) */
    size_t in_size; /* bytes per input item, >= 1 */
    void *out;      /* n * out_size bytes, or NULL to discard the results */
    size_t out_size;
    /* Items per task; 0 chooses like Python, ceil(n / (4 * processes)),
     * but at most 512 KiB of input plus output per chunk when the arrays
     * are copied (not in the shared heap). */
    size_t chunksize;
    /* Optional: up to errors_cap failures are stored here; *n_errors (if
     * not NULL) receives how many items failed in all. */
    mp_task_error *errors;
    size_t errors_cap;
    size_t *n_errors;
} mp_map_spec;

/* A parallel-for over [begin, end) with a reduction of the chunks' partials. */
typedef struct mp_for_spec {
    mp_for_fn fn; /* required */
    void *ctx;
    int64_t begin, end;   /* begin <= end, and end - begin at most INT64_MAX */
    size_t chunksize;     /* indexes per chunk; 0: automatic */
    size_t acc_size;      /* bytes of a partial, 0..MP_POOL_ACC_MAX */
    const void *acc_init; /* initial partial (NULL: zeroes) */
    mp_reduce_fn reduce;  /* required when acc_size > 0 */
    void *result;         /* acc_size bytes: receives the total (also preset
                             from acc_init or zero before reduction) */
    mp_task_error *errors;
    size_t errors_cap;
    size_t *n_errors;
} mp_for_spec;

#define MP_POOL_ACC_MAX 64

/* mp_pool_create — start a pool of worker processes (or, with
 * opts->manager, a client of a distributed pool: multiproc/worker.h).
 *
 * out: receives the pool, owned by the caller (mp_pool_destroy).
 * opts: borrowed until return; NULL means defaults.
 * Errors: MP_EINVAL (bad option; task_timeout or a start method with
 * threads; under spawn or forkserver an initarg that is neither in the
 * shared heap nor in static data), MP_ENOMEM, MP_EAGAIN (fork or thread
 * creation failed), MP_ENOHEAPADDR, MP_ENOSYS (forkserver without pidfds),
 * or what mp_process_start returns under spawn and forkserver (MP_EBOOT,
 * ...). On failure no worker is left.
 * With opts->manager: MP_EINVAL (a local manager, no name or one longer
 * than MP_MANAGER_NAME_MAX, a local-only option not zero), MP_ENOSYS
 * (built without Redis), MP_ENOMEM.
 */
MP_API int mp_pool_create(mp_pool **out, const mp_pool_opts *opts);

/* mp_pool_apply_async — run fn(in) in a worker.
 *
 * in: in_len bytes, copied before return (in may be NULL when in_len is 0).
 * out_cap: the largest result the task may write (bytes).
 * cb / err_cb / user: optional callbacks (see mp_async_cb).
 * out: receives the result object (mp_async_destroy).
 * Errors: MP_EINVAL (NULL fn or out; under spawn or forkserver a ctx that
 * is neither in the shared heap nor in static data; every MP_EINVAL of the
 * pool names its argument in mp_error_detail()), MP_ENOTLOADED (spawn,
 * forkserver: fn or ctx is in a module loaded after the pool was created),
 * MP_ENOSPC (spawn, forkserver: the pool's tasks use more than 64
 * modules), MP_ECLOSED (pool closed or terminated: Python's "Pool not
 * running"), MP_EBROKENPOOL (the pool is broken), MP_ENOMEM.
 */
MP_API int mp_pool_apply_async(mp_pool *p, mp_task_fn fn, void *ctx, const void *in, size_t in_len,
                               size_t out_cap, mp_async_cb cb, mp_async_cb err_cb, void *user,
                               mp_async **out);

/* mp_pool_apply — apply_async then get, blocking. out/out_cap/out_len as in
 * mp_async_get. Returns what get returns; on MP_ETIMEDOUT the task is
 * abandoned (it still runs, its result is dropped). */
MP_API int mp_pool_apply(mp_pool *p, mp_task_fn fn, void *ctx, const void *in, size_t in_len,
                         void *out, size_t out_cap, size_t *out_len, double timeout);

/* mp_pool_map_async — start a map; the results are written into spec->out
 * while the pool's calls run, and the spec's errors at completion.
 * spec: borrowed until return, but in, out, errors and n_errors must stay
 * valid until the mp_async completes or is destroyed.
 * Errors: MP_EINVAL (NULL fn, in_size 0, NULL in with n > 0, out_size 0
 * with out; a ctx as in apply_async), MP_ENOTLOADED, MP_ENOSPC (as in
 * apply_async), MP_ECLOSED, MP_EBROKENPOOL, MP_ENOMEM. */
MP_API int mp_pool_map_async(mp_pool *p, const mp_map_spec *spec, mp_async_cb cb,
                             mp_async_cb err_cb, void *user, mp_async **out);

/* mp_pool_map — map_async then get. Returns 0 when every item succeeded,
 * MP_ETASKFAILED or MP_EWORKERLOST (the first failure) when some failed (the
 * others are done; see spec->errors; also MP_ENOTLOADED or MP_EOTHERBUILD
 * when the workers cannot call fn, MP_EMSGSIZE for an item whose *out_len
 * exceeded out_size), MP_EBROKENPOOL (the pool broke before the map
 * ended), MP_ETIMEDOUT (the map goes on in the background and its results
 * are dropped), or the errors of map_async. */
MP_API int mp_pool_map(mp_pool *p, const mp_map_spec *spec, double timeout);

/* mp_pool_starmap — Python's starmap: map whose items are argument structs
 * (in_size = sizeof the struct). Same contract as mp_pool_map. */
MP_API int mp_pool_starmap(mp_pool *p, const mp_map_spec *spec, double timeout);

/* mp_pool_for — parallel for over [begin, end) with a reduction: each chunk
 * accumulates into a partial, the parent reduces the partials into
 * spec->result (in completion order: reduce must be associative and
 * commutative). No input or output arrays. Returns like mp_pool_map
 * (failed chunks are left out of the reduction and reported). Errors:
 * MP_EINVAL (NULL fn, begin > end, a span end - begin above INT64_MAX
 * such as INT64_MIN..INT64_MAX, acc_size too large, NULL reduce or
 * result with acc_size > 0, errors_cap > 0 with NULL errors, a ctx as in
 * apply_async), MP_ENOTLOADED, MP_ENOSPC (as in apply_async), MP_ECLOSED,
 * MP_EBROKENPOOL, MP_ETIMEDOUT, MP_ENOMEM. reduce runs in the parent: any
 * function works. A call that fails these checks sends nothing and
 * leaves result as it was; result is preset, then written only during
 * the call (never after it returns, even on MP_ETIMEDOUT).
 * On a distributed pool (multiproc/worker.h) the chunks run in the
 * workers and reduce runs in the client as their partials arrive (with
 * ctx NULL, which must also be spec->ctx): a chunk fails as a map's item
 * does, and also with MP_ENOFUNC when the worker lacks fn (register it
 * with mp_for_register); on MP_ETIMEDOUT the chunks not yet run are
 * withdrawn from the stream. */
MP_API int mp_pool_for(mp_pool *p, const mp_for_spec *spec, double timeout);

/* mp_pool_imap — iterate over a map's results: in order (ordered) or as
 * they complete (Python's imap_unordered). spec->out and spec->errors are
 * not used. Errors as mp_pool_map_async. */
MP_API int mp_pool_imap(mp_pool *p, const mp_map_spec *spec, bool ordered, mp_imap **out);

/* mp_imap_next — the next result.
 * item: receives out_size bytes (may be NULL); index: the item's index.
 * Returns 0, MP_EEOF when all results were given (Python's StopIteration),
 * MP_ETIMEDOUT, or the item's failure (MP_ETASKFAILED, MP_EWORKERLOST, with
 * details in *err if not NULL): iteration may go on after a failure.
 * Once the pool is broken, the items still pending give MP_EBROKENPOOL
 * (without *err), at every call. */
MP_API int mp_imap_next(mp_imap *it, void *item, size_t *index, mp_task_error *err, double timeout);

/* ---- streaming maps: items of any size, produced lazily -----------------
 *
 * Python's imap consumes any iterable lazily; mp_pool_imap_stream does the
 * same for a C program: the items come from a callback, one at a time,
 * each of its own size, and no more of them are read than the window
 * holds, so a stream of any length (the lines of a file, the entries of a
 * directory walk) runs in bounded memory. Results may differ in size
 * too: mp_imap_next_sized gives each with its length.
 *
 *     static int next_line(void *item, size_t cap, size_t *len, void *user)
 *     {
 *         if (!fgets(item, (int)cap, user))
 *             return 0;                        // the end of the stream
 *         *len = strlen(item) + 1;             // this item's size
 *         return 1;                            // an item
 *     }
 *
 *     mp_imap *it;
 *     mp_pool_imap_stream(pool, &(mp_stream_spec){ .fn = checksum,
 *                             .source = next_line, .source_user = stdin,
 *                             .item_max = 4096, .out_max = 64 }, true, &it);
 *     char res[64];
 *     size_t len, i;
 *     while (mp_imap_next_sized(it, res, sizeof res, &len, &i, NULL, MP_FOREVER) == 0)
 *         fwrite(res, 1, len, stdout);         // in the order of the lines
 *     mp_imap_destroy(it);
 *
 * The source runs in the calling process, during the pool's calls (as
 * callbacks do: see the file comment), whenever the window has room; it
 * must not call the pool's calls itself. A source that blocks (a read of
 * a pipe) holds up those calls meanwhile: one that cannot have its items
 * at once returns MP_EAGAIN instead. mp_imap_next waits as for any
 * iterator: interruptible (multiproc/interrupt.h), and a wait that ends
 * with MP_EINTR, MP_ECANCELED or MP_ETIMEDOUT takes nothing.
 * Items are numbered from 0 in the order the source gives them; that
 * number is the index mp_imap_next reports.
 *
 * Memory: the pool reserves the window in the shared heap once, at the
 * start: window / chunksize buffers (rounded up), each with room for
 * chunksize items of item_max bytes and their results of out_max bytes.
 * An item stays in its buffer from the moment it is read until its
 * result was taken by mp_imap_next (or its failure reported); a buffer
 * whose items were all taken is filled again. So at most `window` items
 * are read and not yet taken, whatever the stream's length: an ordered
 * iterator whose next item is slow stops reading once the window is
 * full, and an iterator nobody reads stops the stream.
 *
 * Failures are as with mp_pool_imap: an item that fails (its task's
 * code, a killed worker, a timeout) is reported in its turn, and the
 * others go on; a dead worker's unfinished items run again elsewhere. */

/* Produces the next item of a stream, in the calling process: writes at
 * most cap bytes (the spec's item_max) at item, their number in *len, and
 * returns 1. Returns 0 at the end of the stream, MP_EAGAIN when no item
 * is available yet (a source that must not block: the pool asks again at
 * its next call, within 10 ms while mp_imap_next waits; mp_imap_fd cannot
 * tell when your input has items, so an event loop calls
 * mp_imap_next(it, ..., 0) when its own input turns readable), or any
 * other negative code to end the stream with that code (below). An item
 * of 0 bytes is allowed. */
typedef int (*mp_item_source_fn)(void *item, size_t cap, size_t *len, void *user);

typedef struct mp_stream_spec {
    mp_task_fn fn;            /* required; called with each item and in_len its size */
    void *ctx;                /* passed to fn; as in apply_async */
    mp_item_source_fn source; /* required */
    void *source_user;        /* passed to source; any pointer */
    /* The largest item, in bytes: >= 1, at most MP_STREAM_ITEM_MAX. */
    size_t item_max;
    /* The room for one result, in bytes (fn's out_cap); 0: results are
     * not kept, only whether each item succeeded. At most
     * MP_STREAM_ITEM_MAX. */
    size_t out_max;
    /* Items per task; 0 chooses up to 64, fewer for large items (at most
     * 64 KiB of items and results per task). */
    size_t chunksize;
    /* The most items read and not yet taken; 0 chooses
     * 2 * (processes + 1) tasks' worth. Rounded up to whole tasks, and
     * at most 1024 tasks' worth. */
    size_t window;
} mp_stream_spec;

/* The largest item_max or out_max of a stream (16 MiB). */
#define MP_STREAM_ITEM_MAX ((size_t)16 << 20)

/* mp_pool_imap_stream — a map over the items a callback produces,
 * iterated in order (ordered) or as results complete (Python's imap and
 * imap_unordered over a generator). See above.
 * mp_imap_next gives each result (out_max bytes of room at item; the
 * result's own length is not told: use mp_imap_next_sized for that); at
 * the end of the stream MP_EEOF, and if the source ended it with a code
 * of its own, that code first, once, after every item read before it.
 * A source that writes more than item_max bytes ends the stream the same
 * way with MP_EMSGSIZE. mp_imap_fd and mp_wait work as for mp_pool_imap.
 * mp_imap_destroy while items run: the source is not called again, the
 * items already read finish and their results are dropped.
 * Returns 0, MP_EINVAL (NULL p, spec, fn, source or out; item_max 0;
 * item_max or out_max above MP_STREAM_ITEM_MAX; a window whose buffers
 * would exceed 1 GiB; a ctx as in apply_async: see mp_error_detail()),
 * MP_ENOTLOADED, MP_ECLOSED, MP_EBROKENPOOL, MP_ENOMEM (the window does
 * not fit in the shared heap), MP_ENOSYS (a distributed pool). The source
 * is first called during this call. */
MP_API int mp_pool_imap_stream(mp_pool *p, const mp_stream_spec *spec, bool ordered, mp_imap **out);

/* mp_imap_next_sized — mp_imap_next for results of any size: copies the
 * next result (at most cap bytes) to buf and its length to *len (may be
 * NULL). For a stream, the length is what the task set in *out_len; for
 * mp_pool_imap it is the spec's out_size. A result longer than cap is
 * not taken: MP_EMSGSIZE, *len its length, and the next call gives it
 * again. buf NULL takes the result without copying it (cap is then
 * ignored; *len still tells its length). Otherwise returns as
 * mp_imap_next, with *len 0 when it gives no result (a task's failure,
 * the end, a timeout), and works on every iterator (a distributed pool's
 * too). */
MP_API int mp_imap_next_sized(mp_imap *it, void *buf, size_t cap, size_t *len, size_t *index,
                              mp_task_error *err, double timeout);

/* mp_imap_destroy — free the iterator. Items already submitted still run
 * in the workers (the pool keeps its own copy of their input); their
 * results are discarded. NULL: no-op. */
MP_API void mp_imap_destroy(mp_imap *it);

/* mp_async_wait — wait until the result is ready. Returns 0 (ready, even if
 * it failed) or MP_ETIMEDOUT. */
MP_API int mp_async_wait(mp_async *a, double timeout);

/* mp_async_get — wait, then give the result.
 * out/out_cap/out_len: for apply_async, receive the result bytes (at most
 * out_cap; MP_EMSGSIZE if the task wrote more than out_cap); NULL/0/NULL
 * for maps (their results are in the spec's arrays).
 * Returns 0, MP_ETIMEDOUT (not ready; the task keeps running: Python's
 * TimeoutError), MP_ETASKFAILED, MP_EWORKERLOST, MP_ENOTLOADED or
 * MP_EOTHERBUILD, MP_EMSGSIZE (the task claimed more than the
 * apply_async's out_cap; also when the result does not fit this call's
 * out_cap, but the task then succeeded), MP_EBROKENPOOL (see
 * mp_task_error and mp_async_error), MP_ECLOSED (the pool was terminated
 * before it ran), MP_ECANCELED (mp_async_cancel). On a failure of the
 * task, mp_error_detail() describes the first failed item in words (its
 * message included), e.g. "item 3: task failed with code 7: bad row 3". */
MP_API int mp_async_get(mp_async *a, void *out, size_t out_cap, size_t *out_len, double timeout);

/* mp_async_ready — true once the result is ready (makes progress, never blocks). */
MP_API bool mp_async_ready(mp_async *a);

/* mp_async_successful — 0 if ready and succeeded, 1 if ready and failed,
 * MP_EBUSY if not ready (Python's ValueError). */
MP_API int mp_async_successful(mp_async *a);

/* mp_async_error — the i-th failure of a ready result (apply: i = 0).
 * Returns 0, MP_ERANGE (no such failure; only the first errors_cap failures
 * of a map are kept, 16 when the spec gives no array), MP_EBUSY (not ready). */
MP_API int mp_async_error(const mp_async *a, size_t i, mp_task_error *out);

/* mp_async_backtrace — where the task was when its worker died, for the
 * i-th failure of a ready result (as mp_async_error's i): a failure
 * MP_EWORKERLOST of a process worker killed by SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL or SIGABRT (signals that run a handler; not SIGKILL, not a
 * per-task timeout). The worker records and names it in its signal
 * handler, so it is right under every start method. Its frames, innermost
 * first, go from the interrupted instruction to the task's function (the
 * pool's own frames are left out; at most 32), one a line, without a
 * final newline, each with its module and the offset in it:
 *     #0 crash_inner+0x11 (myprog+0x1f2a)
 *     #1 crash_outer+0x9 (myprog+0x1f49)
 *     #2 ?? (myprog+0x1f80)
 * "name+0x11" is a dynamic symbol and the offset in it; "??" is code
 * without one (a static or hidden function, a function of an executable
 * not linked with -rdynamic, the cold part GCC splits off a function):
 * `addr2line -f -e path/to/myprog 0x1f80` names it, with its line (for
 * the frames after #0, a return address: the line of the call or the
 * next one). Not recorded when the program has its own handler for the
 * signal (a sanitizer's too), for a thread pool (a crash ends the
 * process) or a distributed pool, and only for the failures that are kept
 * (mp_async_error). With MP_DEBUG=1 the parent also prints it on stderr
 * when it learns of the death: the one way to see it for mp_pool_for and
 * the other calls that give no handle (mp_pool_map and mp_pool_apply have
 * an _async form that does).
 * buf, cap: receive the text, terminated; len (may be NULL): receives its
 * length without the terminator.
 * Returns 0, MP_EMSGSIZE (cap is at most *len: buf holds the text cut at
 * cap - 1 bytes, when cap > 0; cap 0 asks for the length), MP_ENOENT (the
 * failure has no backtrace), MP_ERANGE (no such failure is kept),
 * MP_EBUSY (not ready), MP_EINVAL (NULL a, NULL buf with cap > 0),
 * MP_ENOSYS (a distributed pool). Thread safety: as mp_async_error. */
MP_API int mp_async_backtrace(const mp_async *a, size_t i, char *buf, size_t cap, size_t *len);

/* mp_imap_backtrace — mp_async_backtrace for the failure of item index of
 * an iterator (the index mp_imap_next gave with the failure, or its
 * err->index), for the iterator's first 16 failures. Returns 0,
 * MP_EMSGSIZE, MP_EINVAL, MP_ENOSYS as mp_async_backtrace, and MP_ENOENT
 * when that item has not failed with a backtrace. */
MP_API int mp_imap_backtrace(const mp_imap *it, size_t index, char *buf, size_t cap, size_t *len);

/* mp_async_destroy — free the result object. If the task has not finished,
 * it goes on and its result is dropped. NULL: no-op. */
MP_API void mp_async_destroy(mp_async *a);

/* mp_async_cancel — give up a result that is not ready (Python's
 * Future.cancel, which also lets a task already running finish).
 * Afterwards a is ready and failed with MP_ECANCELED: mp_async_get and
 * mp_async_wait return at once (get: MP_ECANCELED), mp_async_error gives
 * the failures recorded so far and then one with code MP_ECANCELED
 * (index 0), and the error callback runs once, in this call, as it does
 * for a failure (the success callback never runs). Nothing more is
 * written to the caller's memory (a map's out array and n_errors) by
 * the pool, except by a task already running that writes its output in
 * place, into an out array in the shared heap.
 * Local pool: the tasks not yet started are never run; those running
 * finish in their worker and their results are dropped.
 * Distributed pool: the tasks not yet delivered to a worker are removed
 * from the stream and never run; a worker running one learns of the
 * cancel at its next heartbeat, starts none of its items not started,
 * kills the executor running one (replaced at once; an inline worker lets
 * the task finish) and sends no result (docs/redis.md,
 * "Cancellation and clean-up"). Returns 0 (cancelled), MP_EINVAL (NULL a; a already ready: its
 * result, a failure or an earlier cancel stands; a pool destroyed; the result of an iterator: see
 * mp_imap_destroy), MP_EPERM (not the process that created the pool), or, distributed, a connection
 * error (nothing was cancelled; call again). The a object must still be destroyed. */
MP_API int mp_async_cancel(mp_async *a);

/* ---- results in an event loop ---------------------------------------------
 *
 * mp_async_fd and mp_imap_fd give a descriptor to add to epoll, poll,
 * libuv (uv_poll_t) or GLib (g_unix_fd_add) for reading (EPOLLIN/POLLIN).
 * The pool collects results only during its owner's calls (see the file
 * comment), so the descriptor turns readable in two cases:
 *   - the result is ready (an mp_async: mp_async_ready would be true; an
 *     mp_imap: mp_imap_next would not block, an item, a failure or the
 *     end, MP_EEOF, being there). This is level-triggered: it stays
 *     readable while that holds. mp_async_get does not consume a result
 *     (it may be asked again), so an mp_async's descriptor stays readable
 *     until mp_async_destroy closes it; an iterator's turns unreadable when
 *     mp_imap_next has taken the last item available, and readable again
 *     with the next one.
 *   - the pool has something to do for its owner (any task of the pool
 *     finished, a worker died, a per-task timeout must be checked: every
 *     10 ms while a job with a descriptor runs, with task_timeout). The
 *     owner's next call of the pool does it; mp_async_ready(a) (or
 *     mp_pool_poll, or mp_imap_next with a timeout of 0) is the cheap one.
 *     Afterwards every descriptor of the pool is readable exactly when its
 *     handle is ready.
 * So an event loop reacts to a readable descriptor by calling
 * mp_async_ready(a) (mp_imap_next(it, ..., 0) for an iterator) and acts
 * only when that says ready; it never needs to read the descriptor itself
 * (reading or closing it is not allowed). Nothing is ever missed: a result
 * that arrived before the descriptor was asked for makes it readable at
 * once.
 *
 * Cost: a pool holds one eventfd from its creation (passed to its
 * workers); nothing else until a descriptor is asked for; then, while a
 * job with one is unfinished (or an mp_wait on one of its results runs),
 * each task's end costs its worker at most one write to that eventfd
 * (none while an earlier one is still unread).
 */

/* mp_async_fd — the descriptor of a result, for an event loop (above).
 * Made on the first call (one more descriptor for the pool on its first
 * one, two with a task_timeout; two for the result), then the same each
 * time; owned by a and closed by mp_async_destroy (do not close it
 * yourself). Take it out of your epoll set (EPOLL_CTL_DEL, uv_poll_stop,
 * g_source_remove) before mp_async_destroy: epoll forgets a descriptor
 * only when every copy of it is closed, and a process forked after it was
 * made (a replacement worker of a fork pool, a child of yours) holds a
 * copy. Works for a result held after its pool was destroyed (readable: it
 * is ready).
 * Returns the descriptor (>= 0), MP_EINVAL (NULL a), MP_EPERM (not the
 * process that created the pool), MP_EMFILE / MP_ENFILE / MP_ENOMEM (no
 * descriptor left: nothing changed, the result can still be waited for by
 * the other calls), MP_ENOSYS (a distributed pool: its results come from a
 * Redis list that only the client's calls read; mp_wait and
 * mp_async_wait_any still work, looking at it every 20 ms). */
MP_API int mp_async_fd(mp_async *a);

/* mp_imap_fd — the descriptor of an iterator: readable when mp_imap_next
 * would not block (an item or a failure to take, or the end), and when the
 * pool has work for its owner (above). Owned by it, closed by
 * mp_imap_destroy (take it out of your epoll set first, as above). Errors as mp_async_fd (MP_ENOSYS
 * for a distributed pool's iterator, which mp_wait cannot wait on either). */
MP_API int mp_imap_fd(mp_imap *it);

/* The most results mp_async_wait_any and mp_async_wait_some take. */
#define MP_ASYNC_WAIT_MAX 4096

/* mp_async_wait_some — wait until at least one of the results is ready
 * (Python's concurrent.futures.wait with FIRST_COMPLETED), for processing
 * them in the order they complete:
 *
 *     size_t ready[N];
 *     int k;
 *     while ((k = mp_async_wait_some(as, N, ready, 10.0)) > 0)
 *         for (int j = 0; j < k; j++) {
 *             handle(as[ready[j]]);          // get, error, ...
 *             mp_async_destroy(as[ready[j]]);
 *             as[ready[j]] = NULL;           // done with it
 *         }
 *     // k == MP_EEOF: all handled; MP_ETIMEDOUT: none ready in 10 s
 *
 * asyncs: n results, borrowed until return, of any pools (local or
 * distributed); NULL entries are skipped. A result stays ready once
 * ready (get does not consume it), so the caller sets the entries it has
 * handled to NULL, or they are reported again at once.
 * ready_out: room for n indexes; receives the indexes of the ready
 * entries, in increasing order.
 * Makes progress on the pools while it waits (callbacks may run).
 * Returns the number of ready entries (>= 1), MP_ETIMEDOUT (none ready by
 * the timeout; a timeout of 0 only checks), MP_EEOF (every entry NULL, or
 * n == 0: nothing left to wait for), MP_EINVAL (NULL asyncs with n > 0,
 * NULL ready_out, n above MP_ASYNC_WAIT_MAX, NaN timeout), MP_EPERM (a
 * result of a pool of another process), MP_ENOMEM. It takes no descriptor
 * per result: it waits on each pool's own (see mp_wait). Failed results (a task's error, a killed
 * worker, MP_ECANCELED) are ready like the others. */
MP_API int mp_async_wait_some(mp_async *const *asyncs, size_t n, size_t *ready_out, double timeout);

/* mp_async_wait_any — mp_async_wait_some for the first ready entry: 0 with
 * *index the lowest index of a ready entry, or the errors of
 * mp_async_wait_some (MP_EINVAL also for a NULL index). */
MP_API int mp_async_wait_any(mp_async *const *asyncs, size_t n, double timeout, size_t *index);

/* mp_pool_poll — make progress without blocking (collect results, run
 * callbacks, replace dead workers). Returns the number of unfinished jobs. */
MP_API int mp_pool_poll(mp_pool *p);

/* mp_pool_close — no new tasks; the queued ones still run. Idempotent. */
MP_API int mp_pool_close(mp_pool *p);

/* mp_pool_terminate — stop now: kill the workers (SIGTERM, then SIGKILL
 * after at most 1 s) and fail every unfinished task with MP_ECLOSED.
 * Bounded in time (with threads: it waits for the running tasks). The pool
 * is then closed and joined. */
MP_API int mp_pool_terminate(mp_pool *p);

/* mp_pool_join — wait until every task has finished and every worker has
 * exited. Returns 0, MP_EBUSY (the pool is not closed: Python's
 * ValueError), MP_ETIMEDOUT (the pool keeps running; join may be called
 * again). */
MP_API int mp_pool_join(mp_pool *p, double timeout);

/* mp_pool_destroy — free the pool; a pool still running is terminated
 * first (its unfinished tasks fail with MP_ECLOSED). mp_async and mp_imap
 * objects still held keep their outcome and must still be destroyed by
 * their owner. NULL: no-op. */
MP_API void mp_pool_destroy(mp_pool *p);

/* mp_pool_pids — the current workers' pids (up to cap). Returns the number
 * of workers (0 for a distributed pool, whose workers are elsewhere). */
MP_API int mp_pool_pids(mp_pool *p, pid_t *out, size_t cap);

/* Why a pool broke (see "Broken pool" above): the last worker death. */
typedef struct mp_pool_broken_info {
    pid_t pid;       /* the worker that died last */
    int signal;      /* the signal that killed it; 0 if it exited */
    int exitcode;    /* its exit status when it exited (signal 0), else 0 */
    unsigned deaths; /* deaths in a row that broke the pool */
} mp_pool_broken_info;

/* mp_pool_broken_reason — whether the pool is broken, and why.
 * out: receives the reason when broken, zeroes otherwise.
 * Returns 1 (broken), 0 (not broken), MP_EINVAL (NULL p or out),
 * MP_EPERM (not the creating process), MP_ENOSYS (a distributed pool). */
MP_API int mp_pool_broken_reason(mp_pool *p, mp_pool_broken_info *out);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_POOL_H */
