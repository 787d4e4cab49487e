/* The pool's backends. A pool, mp_async or mp_imap is made either by this
 * module (the local pool) or by another backend (the distributed pool of
 * redis/redis_pool*.c), which hands the public pool functions a table of
 * its operations (SQLite's mutex-methods pattern). Free of hiredis types.
 * Not installed.
 *
 * Every handle starts with an mp__pool_head that names its backend; NULL
 * is the local pool, so a local handle costs one pointer test per call.
 * A NULL operation is MP_ENOSYS (mp_async_ready: false): a table states
 * what its backend does not offer. Tables are static const data and the
 * heads live in process memory, never in the shared heap.
 *
 * The pool module never names another backend. A backend that serves
 * pools with a manager (opts.manager) is registered with
 * mp__pool_distributed_register; the manager module registers those of
 * the manager backends built in (mp__backend_ops.pool) whenever a manager
 * is opened, so every manager handle a caller can hold implies the
 * registration. In a build without one, a pool with a manager,
 * mp_worker_serve and mp_worker_stop are MP_ENOSYS. */
#ifndef MULTIPROC_POOL_BACKEND_H
#define MULTIPROC_POOL_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "multiproc/pool.h"
#include "multiproc/worker.h"
#include "wait/wait_ops.h"

struct mp__pool_backend;

/* The message of mp_task_fail of this thread's running task: copied into
 * dst (cap > 0 bytes, always terminated; "" when none) and forgotten, so
 * that it never reaches a later task. Runners call it after each failing
 * task; mp__task_msg_drop after a task that succeeded. */
void mp__task_msg_take(char *dst, size_t cap);
void mp__task_msg_drop(void);

/* The first member of every pool, mp_async and mp_imap struct. wait is
 * mp__pool_async_wait_ops in every mp_async and mp__pool_imap_wait_ops in
 * every mp_imap, whatever the backend (mp_wait finds it there: the pool's
 * results are waited on through it); a pool leaves it NULL. */
typedef struct mp__pool_head {
    mp__wait_head wait;
    const struct mp__pool_backend *backend; /* NULL: the local pool */
} mp__pool_head;

/* mp_wait's tables for results (pool/pool_fd.c): they call the public
 * functions, so they serve every backend. */
/* The argument checks of a map and of a parallel-for that every backend
 * shares (pool/pool_async.c): 0, or MP_EINVAL with the detail naming the
 * field, after the call f. A backend adds its own limits after them. */
int mp__pool_check_map(const mp_map_spec *s, const char *f);
int mp__pool_check_for(const mp_for_spec *s);

extern const mp__wait_ops mp__pool_async_wait_ops;
extern const mp__wait_ops mp__pool_imap_wait_ops;

/* The operations behind the public pool functions of the same names, for
 * handles of one backend. Each receives arguments as the caller passed
 * them, except the handle, never NULL (the public function checks it
 * first), and validates the rest as its public function documents. */
typedef struct mp__pool_backend {
    const char *name; /* for messages */

    /* The entry: mp_pool_create with opts->manager (never NULL). A manager
     * that the backend does not serve is MP_EINVAL. */
    int (*create)(mp_pool **out, const mp_pool_opts *opts);
    int (*apply_async)(mp_pool *p, mp_task_fn fn, void *ctx, const void *in, size_t in_len,
                       size_t out_cap, mp_async_cb cb, mp_async_cb err_cb, void *user,
                       mp_async **out);
    int (*map_async)(mp_pool *p, const mp_map_spec *spec, mp_async_cb cb, mp_async_cb err_cb,
                     void *user, mp_async **out);
    int (*parallel_for)(mp_pool *p, const mp_for_spec *spec, double timeout);
    int (*imap)(mp_pool *p, const mp_map_spec *spec, bool ordered, mp_imap **out);
    int (*close)(mp_pool *p);
    int (*terminate)(mp_pool *p);
    int (*join)(mp_pool *p, double timeout);
    int (*poll)(mp_pool *p);
    int (*pids)(mp_pool *p, pid_t *out, size_t cap);
    int (*broken_reason)(mp_pool *p, mp_pool_broken_info *out);
    void (*destroy)(mp_pool *p); /* required */

    int (*async_wait)(mp_async *a, double timeout);
    int (*async_get)(mp_async *a, void *out, size_t out_cap, size_t *out_len, double timeout);
    bool (*async_ready)(mp_async *a);
    int (*async_successful)(mp_async *a);
    int (*async_error)(const mp_async *a, size_t i, mp_task_error *out);
    void (*async_destroy)(mp_async *a); /* required */
    int (*async_cancel)(mp_async *a);
    int (*async_fd)(mp_async *a);

    int (*imap_next)(mp_imap *it, void *item, size_t *index, mp_task_error *err, double timeout);
    void (*imap_destroy)(mp_imap *it);           /* required */
    size_t (*imap_item_size)(const mp_imap *it); /* required: its results' size */
    int (*imap_fd)(mp_imap *it);

    /* mp_worker_serve and mp_worker_stop (m never NULL). */
    int (*worker_serve)(struct mp_manager *m, const char *pool_name, const mp_worker_opts *opts);
    int (*worker_stop)(struct mp_manager *m, const char *pool_name);
} mp__pool_backend;

/* The backend of a pool, mp_async or mp_imap (NULL allowed): NULL for the
 * local pool's handles and for NULL. */
static inline const mp__pool_backend *mp__pool_backend_of(const void *handle)
{
    return handle ? ((const mp__pool_head *)handle)->backend : NULL;
}

/* Calls the operation op of the table b with the arguments that follow;
 * MP_ENOSYS when b does not offer it. */
#define MP__POOL_CALL(b, op, ...) ((b)->op != NULL ? (b)->op(__VA_ARGS__) : MP_ENOSYS)

/* Makes b the backend of the pools created with a manager; b is static
 * and outlives every pool. Idempotent, thread-safe (pool/pool_backend.c). */
void mp__pool_distributed_register(const mp__pool_backend *b);
/* The registered backend, or NULL. */
const mp__pool_backend *mp__pool_distributed(void);

/* The task registry shared by the clients and workers of a distributed
 * pool (pool/pool_task_names.c): the name of fn (NULL when it has none),
 * the function of a name (NULL when unknown). Task functions
 * (mp_task_register) and parallel-for functions (mp_for_register) share
 * one name space; a lookup finds only a function of its own kind. */
const char *mp__task_name(mp_task_fn fn);
mp_task_fn mp__task_lookup(const char *name, size_t len);
const char *mp__for_name(mp_for_fn fn);
mp_for_fn mp__for_lookup(const char *name, size_t len);

/* The progress of a pool's items (opts.progress, opts.progress_cb), for
 * every backend (pool/pool.c): total counts the items of every job
 * submitted (an apply is one, a map n, a parallel-for its indexes), done
 * those that ended (succeeded, failed or dropped). The owner of the pool
 * updates both and calls mp__pool_meter_report, in its own thread. */
typedef struct mp__pool_meter {
    mp_progress_fn cb;
    void *user;
    bool on;  /* a callback or the line is wanted */
    bool tty; /* the line is drawn: progress set and stderr a terminal */
    uint64_t total, done;
    int64_t last_ns, started_ns; /* mp__now_ns of the last report, of the start */
} mp__pool_meter;

/* Sets m up from the pool's options (the clock starts now). */
void mp__pool_meter_init(mp__pool_meter *m, const mp_pool_opts *o);
/* Calls the callback and redraws the line, at most every 100 ms unless
 * final (which also ends the line). */
void mp__pool_meter_report(mp__pool_meter *m, bool final);

#endif /* MULTIPROC_POOL_BACKEND_H */
