/* The execution step of the distributed pool's worker: a batch of parsed
 * tasks into result records. Inline, the calling thread runs them one
 * after the other. With executors, the worker is a supervisor: it keeps
 * the connection and hands each batch to a local fork pool (mp_pool) in
 * one map over every item of the batch. The items' inputs, the tasks'
 * functions and outputs live in one block of the shared heap (the map's
 * ctx), so that executors forked before the batch see them; each map item
 * is a (task, item) pair and its map result the task's code and output
 * length. An executor that dies fails the item it ran with
 * MP_EWORKERLOST, its pid and signal (the local pool's crash isolation);
 * the pool replaces it and the batch's other items complete. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "multiproc/heap.h"
#include "multiproc/process.h"
#include "multiproc/worker.h"
#include "os/bulk.h"
#include "os/pidfd.h"
#include "redis/redis_pool_exec.h"

/* The batch's arrays kept from one batch to the next. */
enum {
    XS_ITEMS,
    XS_RES,
    XS_LOST_PID,
    XS_LOST_SIG,
    XS_STATE,
    XS_FIRST,
    XS_ERRS,
    XS_STOPPED,
    XS_COUNT
};

struct mp__redis_exec {
    mp_pool *pool; /* NULL: inline */
    unsigned width;
    int executors;
    void *ctx;
    /* The shared block of the last batch, kept for the next one: a block
     * taken from the shared heap and given back for every batch cost page
     * faults and TLB shootdowns that were most of the hand-off. */
    struct xblock *block;
    size_t block_size;
    /* The supervisor's arrays of a batch, kept for the next one
     * (os/bulk.h, mp__scratch): see xrun. */
    mp__scratch sc[XS_COUNT];
};

/* ---- the shared block of a batch ---------------------------------------- */

/* The largest shared block kept from one batch to the next. */
#define BLOCK_KEPT_MAX ((size_t)4 << 20)

typedef struct xtask {
    mp_task_fn fn;
    mp_for_fn ffn; /* a parallel-for chunk [lo, hi) (one item): fn is NULL */
    int64_t lo, hi;
    uint64_t isz, cap, slot; /* slot: output bytes per item, cap rounded to 16 */
    size_t in_off, out_off;  /* from the block's start */
    size_t first;            /* the task's first map item */
} xtask;

/* The state of a map item (an int32 of the block's state array): how a
 * task whose client cancelled it is stopped without touching another. The
 * executor moves NOT_STARTED to its pid before it runs the item and its
 * pid to FINISHED after; the supervisor moves NOT_STARTED to FINISHED (the
 * item never runs) or a pid to KILLING, then kills that executor, which,
 * finding KILLING after the task returned, waits for the signal instead
 * of taking another item. */
#define ITEM_NOT_STARTED 0
#define ITEM_FINISHED    (-1)
#define ITEM_KILLING     (-2)

typedef struct xblock {
    void *ctx; /* the worker's opts.ctx */
    size_t n;
    size_t state_off; /* the items' states (int32 each), from the block's start */
    size_t msg_off;   /* the items' failure messages (MP_TASK_MESSAGE_MAX each) */
    xtask t[];
} xblock;

/* A map item: which task and which of its items. */
typedef struct xitem {
    uint32_t task, item;
} xitem;

/* A map item's result: the task's code and output length; pad is 1 once
 * it ran (the supervisor's array starts zeroed). A failed item's
 * mp_task_fail message is in the block (msg_off), written only then: the
 * result is copied twice per item, so its size is a tiny task's cost. */
typedef struct xres {
    int32_t code;
    uint32_t pad;
    uint64_t len;
} xres;

/* Item g's message in the block. */
static char *item_msg(const xblock *b, size_t g)
{
    return (char *)b + b->msg_off + g * MP_TASK_MESSAGE_MAX;
}

/* Runs in an executor: one item of one task of the block at ctx. */
static int exec_item(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                     void *ctx)
{
    xblock *b = ctx;
    xitem it;
    if (in_len != sizeof(it) || out_cap < sizeof(xres))
        return MP_EINVAL;
    memcpy(&it, in, sizeof(it));
    const xtask *t = &b->t[it.task];
    const unsigned char *base = (const unsigned char *)b;
    unsigned char *o = (unsigned char *)b + t->out_off + it.item * t->slot;
    int32_t *state = (int32_t *)((unsigned char *)b + b->state_off) + t->first + it.item;
    int32_t me = (int32_t)mp__self_pid(), expect = ITEM_NOT_STARTED;
    size_t olen = (size_t)t->cap;
    xres r = {0};
    if (__atomic_compare_exchange_n(state, &expect, me, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        if (t->ffn) { /* the chunk starts from the initial partial, its input */
            memcpy(o, base + t->in_off, (size_t)t->cap);
            r.code = t->ffn(t->lo, t->hi, o, b->ctx);
        } else {
            r.code = t->fn(base + t->in_off + it.item * t->isz, (size_t)t->isz, o, (size_t)t->cap,
                           &olen, b->ctx);
        }
        expect = me;
        if (!__atomic_compare_exchange_n(state, &expect, ITEM_FINISHED, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            for (;;) /* KILLING: the supervisor's SIGKILL is on its way */
                pause();
        if (r.code != 0)
            mp__task_msg_take(item_msg(b, t->first + it.item), MP_TASK_MESSAGE_MAX);
    } else {
        r.code = MP_ECANCELED; /* cancelled before it started: never runs */
        item_msg(b, t->first + it.item)[0] = '\0';
        olen = 0;
    }
    r.len = olen;
    r.pad = 1; /* ran */
    memcpy(out, &r, sizeof(r));
    *out_len = sizeof(r);
    return 0;
}

/* ---- records ------------------------------------------------------------ */

static size_t record_cap(const mp__redis_task *t)
{
    return MP__REDIS_RESULT_HEAD +
           (size_t)mp__redis_task_items(t) * (MP__REDIS_RESULT_ITEM + (size_t)t->cap +
                                              MP__REDIS_RESULT_LOST_LEN + MP_TASK_MESSAGE_MAX);
}

/* Appends one item's outcome at *off of rec: its output, or when it
 * failed its message (msg, "" for none), which makes the record version 2. */
static void put_item(unsigned char *rec, size_t *off, const mp__redis_task *t, int32_t code,
                     size_t olen, const void *out, const char *msg)
{
    bool oversize = code == 0 && olen > t->cap;
    if (code != 0 || oversize)
        olen = 0;
    if (code != 0 && msg[0]) {
        out = msg;
        olen = strnlen(msg, MP_TASK_MESSAGE_MAX - 1);
        mp__redis_result_set_v2(rec);
    }
    mp__redis_result_put_item(rec + *off, code,
                              oversize ? MP__REDIS_RESULT_OVERSIZE : (uint32_t)olen);
    if (olen)
        memcpy(rec + *off + MP__REDIS_RESULT_ITEM, out, olen);
    *off += MP__REDIS_RESULT_ITEM + olen;
}

/* ---- inline ------------------------------------------------------------- */

static void run_inline_job(const mp__redis_exec *x, mp__redis_job *j)
{
    const mp__redis_task *t = j->t;
    size_t cap = (size_t)t->cap, n = (size_t)mp__redis_task_items(t);
    unsigned char *r =
        malloc(MP__REDIS_RESULT_HEAD + n * (MP__REDIS_RESULT_ITEM + cap + MP_TASK_MESSAGE_MAX));
    /* Tasks may expect aligned output (apply promises 16 bytes). */
    void *out = aligned_alloc(16, (cap + 15) / 16 * 16 + 16);
    j->done = true;
    if (r == NULL || out == NULL) {
        free(r);
        free(out);
        return;
    }
    size_t off = MP__REDIS_RESULT_HEAD;
    mp__redis_result_put_head(r, t->id, 0, (uint32_t)n); /* first: items may mark it v2 */
    for (size_t i = 0; i < n; i++) {
        size_t olen = cap;
        char msg[MP_TASK_MESSAGE_MAX] = "";
        int code;
        if (j->ffn) { /* one chunk, from the initial partial */
            memcpy(out, t->in, cap);
            code = j->ffn(t->lo, (int64_t)((uint64_t)t->lo + t->n), out, x->ctx);
        } else {
            code = j->fn(t->in + i * t->isz, (size_t)t->isz, out, cap, &olen, x->ctx);
        }
        if (code != 0)
            mp__task_msg_take(msg, sizeof msg);
        else
            mp__task_msg_drop();
        put_item(r, &off, t, code, olen, out, msg);
    }
    free(out);
    j->rec = r;
    j->rec_len = off;
}

static int run_inline(mp__redis_exec *x, mp__redis_job *jobs, size_t n, double period,
                      mp__redis_exec_ready ready, void *arg)
{
    int rc = 0;
    int64_t since = mp__now_ns();
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && period > 0 && ready && (double)(mp__now_ns() - since) / 1e9 >= period) {
            int r = ready(arg);
            rc = rc < 0 ? rc : r;
            since = mp__now_ns();
        }
        if (jobs[i].hb && mp__redis_beat_dropped(jobs[i].hb, jobs[i].entry))
            jobs[i].done = true; /* cancelled, or its client gone: not run */
        else
            run_inline_job(x, &jobs[i]);
    }
    return rc;
}

/* ---- executors ---------------------------------------------------------- */

/* What the supervisor keeps of a batch while its map runs: its arrays
 * are the exec's scratch (valid until the next batch). */
typedef struct xrun {
    xblock *b;
    xitem *items;
    xres *res;       /* per map item */
    pid_t *lost_pid; /* per map item, with state 2 */
    int *lost_sig;
    unsigned char *state; /* per map item: 0 running, 1 done, 2 lost */
    size_t *first;        /* per job: its first map item */
} xrun;

/* The block and the item table of jobs[0..n): total items in *m. */
static int xrun_build(mp__redis_exec *x, xrun *r, mp__redis_job *jobs, size_t n, size_t *m)
{
    size_t head = sizeof(xblock) + n * sizeof(xtask), size = (head + 15) / 16 * 16, items = 0;
    for (size_t i = 0; i < n; i++) {
        const mp__redis_task *t = jobs[i].t;
        size += (t->in_len + 15) / 16 * 16 +
                (size_t)mp__redis_task_items(t) * (((size_t)t->cap + 15) / 16 * 16);
        items += (size_t)mp__redis_task_items(t);
    }
    size_t state_off = size;
    size += (items * sizeof(int32_t) + 15) / 16 * 16;
    size_t msg_off = size;
    size += items * MP_TASK_MESSAGE_MAX;
    if (x->block_size < size) {
        /* Grown by doubling, so that batches of about one size reuse it. */
        size_t want = x->block_size ? x->block_size : 64 * 1024;
        while (want < size)
            want *= 2;
        mp_free(x->block);
        x->block = mp_alloc(want);
        x->block_size = x->block ? want : 0;
    }
    r->b = x->block;
    /* items and first are written whole below: not zeroed. */
    r->items = mp__scratch_get(&x->sc[XS_ITEMS], items, sizeof(*r->items));
    r->res = mp__scratch_array(&x->sc[XS_RES], items, sizeof(*r->res));
    r->lost_pid = mp__scratch_array(&x->sc[XS_LOST_PID], items, sizeof(*r->lost_pid));
    r->lost_sig = mp__scratch_array(&x->sc[XS_LOST_SIG], items, sizeof(*r->lost_sig));
    r->state = mp__scratch_array(&x->sc[XS_STATE], items, 1);
    r->first = mp__scratch_get(&x->sc[XS_FIRST], n, sizeof(*r->first));
    if (!r->b || !r->items || !r->res || !r->lost_pid || !r->lost_sig || !r->state || !r->first)
        return MP_ENOMEM;
    r->b->ctx = x->ctx;
    r->b->n = n;
    r->b->state_off = state_off;
    r->b->msg_off = msg_off;
    memset((unsigned char *)r->b + state_off, 0, items * sizeof(int32_t)); /* NOT_STARTED */
    size_t off = (head + 15) / 16 * 16, k = 0;
    for (size_t i = 0; i < n; i++) {
        const mp__redis_task *t = jobs[i].t;
        xtask *xt = &r->b->t[i];
        xt->fn = jobs[i].fn;
        xt->ffn = jobs[i].ffn;
        xt->lo = t->lo;
        xt->hi = (int64_t)((uint64_t)t->lo + t->n); /* parsed: an int64 */
        xt->isz = t->isz;
        xt->cap = t->cap;
        xt->slot = (t->cap + 15) / 16 * 16;
        xt->in_off = off;
        if (t->in_len)
            memcpy((unsigned char *)r->b + off, t->in, t->in_len);
        off += (t->in_len + 15) / 16 * 16;
        xt->out_off = off;
        off += (size_t)mp__redis_task_items(t) * (size_t)xt->slot;
        r->first[i] = k;
        xt->first = k;
        for (uint64_t j = 0; j < mp__redis_task_items(t); j++, k++)
            r->items[k] = (xitem){(uint32_t)i, (uint32_t)j};
    }
    *m = items;
    return 0;
}

/* The record of job i, all of whose items are done. */
static void xrun_record(const xrun *r, mp__redis_job *j, size_t i)
{
    const mp__redis_task *t = j->t;
    const xtask *xt = &r->b->t[i];
    unsigned char *rec = malloc(record_cap(t));
    j->done = true;
    if (rec == NULL)
        return;
    size_t off = MP__REDIS_RESULT_HEAD;
    mp__redis_result_put_head(rec, t->id, 0, (uint32_t)mp__redis_task_items(t));
    for (size_t k = 0; k < (size_t)mp__redis_task_items(t); k++) {
        size_t g = r->first[i] + k;
        if (r->state[g] != 1) {
            /* Lost, or never ran in a pool that broke (pid 0). */
            mp__redis_result_put_lost(rec + off, r->lost_pid[g], r->lost_sig[g]);
            off += MP__REDIS_RESULT_ITEM + MP__REDIS_RESULT_LOST_LEN;
            continue;
        }
        const unsigned char *out = (const unsigned char *)r->b + xt->out_off + k * xt->slot;
        put_item(rec, &off, t, r->res[g].code, (size_t)r->res[g].len, out,
                 r->res[g].code ? item_msg(r->b, g) : "");
    }
    j->rec = rec;
    j->rec_len = off;
}

static int start_pool(mp__redis_exec *x)
{
    return mp_pool_create(
        &x->pool, &(mp_pool_opts){.processes = (int)x->width, .start_method = MP_START_FORK});
}

/* Records the jobs whose items all ran (their results marked by
 * exec_item) while the map goes on: whether there was one. */
static bool record_ran(xrun *r, mp__redis_job *jobs, size_t n)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0, cnt = (size_t)mp__redis_task_items(jobs[i].t);
        while (!jobs[i].done && k < cnt && r->res[r->first[i] + k].pad == 1)
            k++;
        if (!jobs[i].done && k == cnt) {
            for (k = 0; k < cnt; k++)
                r->state[r->first[i] + k] = 1;
            xrun_record(r, &jobs[i], i);
            any = true;
        }
    }
    return any;
}

/* How often (seconds) a supervisor whose batch runs looks for tasks
 * whose client cancelled them (the heartbeat learns of them). */
#define CANCEL_POLL 0.05

/* Stops the tasks of jobs[0..n) that the heartbeat says were cancelled
 * (or whose client is gone) and that stopped[] does not list yet: their
 * items not started never run, the executors running one are killed
 * (and replaced by the pool; the items are lost, and only acknowledged). */
static void stop_cancelled(xrun *r, mp__redis_job *jobs, size_t n, bool *stopped)
{
    int32_t *states = (int32_t *)((unsigned char *)r->b + r->b->state_off);
    for (size_t i = 0; i < n; i++) {
        if (stopped[i] || jobs[i].done || !jobs[i].hb ||
            !mp__redis_beat_dropped(jobs[i].hb, jobs[i].entry))
            continue;
        stopped[i] = true;
        for (size_t k = 0; k < (size_t)mp__redis_task_items(jobs[i].t); k++) {
            int32_t *st = &states[r->first[i] + k];
            int32_t s = __atomic_load_n(st, __ATOMIC_ACQUIRE);
            while (s == ITEM_NOT_STARTED || s > 0) {
                int32_t to = s == ITEM_NOT_STARTED ? ITEM_FINISHED : ITEM_KILLING;
                if (__atomic_compare_exchange_n(st, &s, to, false, __ATOMIC_ACQ_REL,
                                                __ATOMIC_ACQUIRE)) {
                    /* The executor cannot take another item: it waits
                     * for this signal once its task returns. */
                    if (to == ITEM_KILLING)
                        kill((pid_t)s, SIGKILL);
                    break;
                }
            }
        }
    }
}

static int run_executors(mp__redis_exec *x, mp__redis_job *jobs, size_t n, double period,
                         mp__redis_exec_ready ready, void *arg)
{
    xrun r = {0};
    size_t m = 0, nerr = 0;
    mp_async *a = NULL;
    mp_task_error *errs = NULL;
    int rc = x->pool ? 0 : start_pool(x);
    if (rc == 0)
        rc = xrun_build(x, &r, jobs, n, &m);
    /* The map writes errs[0, nerr), and only those are read: not zeroed. */
    if (rc == 0 && (errs = mp__scratch_get(&x->sc[XS_ERRS], m, sizeof(*errs))) == NULL)
        rc = MP_ENOMEM;
    /* One map for the batch, a chunk per executor: one hand-off. A chunk
     * whose executor dies goes on from the item after the lost one. */
    size_t chunk = (m + x->width - 1) / x->width;
    if (rc == 0)
        rc = mp_pool_map_async(x->pool,
                               &(mp_map_spec){.fn = exec_item,
                                              .ctx = r.b,
                                              .in = r.items,
                                              .n = m,
                                              .in_size = sizeof(xitem),
                                              .out = r.res,
                                              .out_size = sizeof(xres),
                                              .chunksize = chunk ? chunk : 1,
                                              .errors = errs,
                                              .errors_cap = m,
                                              .n_errors = &nerr},
                               NULL, NULL, NULL, &a);
    if (rc < 0) {
        if (rc != MP_ENOMEM)
            return rc; /* nothing ran, nothing is answered */
        /* No record: the caller answers MP_ENOMEM for each task. */
        for (size_t i = 0; i < n; i++)
            jobs[i].done = true;
        return 0;
    }
    int err = 0;
    bool timed = period > 0 && ready, watch = false;
    for (size_t i = 0; i < n && !watch; i++)
        watch = jobs[i].hb != NULL;
    bool *stopped = watch ? mp__scratch_array(&x->sc[XS_STOPPED], n, sizeof(*stopped)) : NULL;
    watch = stopped != NULL; /* without memory, cancelled tasks run on */
    int64_t since = mp__now_ns();
    for (;;) {
        double step = MP_FOREVER;
        if (timed) {
            double left = period - (double)(mp__now_ns() - since) / 1e9;
            step = left > 0 ? left : 0;
        }
        if (watch && (step < 0 || step > CANCEL_POLL))
            step = CANCEL_POLL;
        if (mp_async_wait(a, step) == 0)
            break;
        if (watch)
            stop_cancelled(&r, jobs, n, stopped);
        /* Half a visibility timeout: what ran is answered now. */
        if (timed && (double)(mp__now_ns() - since) / 1e9 >= period) {
            since = mp__now_ns();
            if (record_ran(&r, jobs, n)) {
                int f = ready(arg);
                err = err < 0 ? err : f;
            }
        }
    }
    bool broken = mp_async_get(a, NULL, 0, NULL, 0) == MP_EBROKENPOOL;
    for (size_t e = 0; e < nerr && e < m; e++)
        broken = broken || errs[e].code == MP_EBROKENPOOL;
    for (size_t k = 0; k < m; k++)
        if (r.res[k].pad == 1)
            r.state[k] = 1;
    for (size_t e = 0; e < nerr && e < m; e++)
        if (errs[e].code == MP_EWORKERLOST && errs[e].index < m) {
            /* The executor's pid and signal. */
            r.lost_pid[errs[e].index] = errs[e].pid;
            r.lost_sig[errs[e].index] = errs[e].signal;
            r.state[errs[e].index] = 2;
        }
    /* Items that neither ran nor were lost (a broken pool) are lost too. */
    for (size_t i = 0; i < n; i++)
        if (!jobs[i].done)
            xrun_record(&r, &jobs[i], i);
    mp_async_destroy(a);
    if (broken) {
        /* A new pool serves the next batch. */
        mp_pool_destroy(x->pool);
        x->pool = NULL;
    }
    if (x->block_size > BLOCK_KEPT_MAX) { /* a large batch's: not kept */
        mp_free(x->block);
        x->block = NULL;
        x->block_size = 0;
    }
    return err;
}

/* ---- the interface ------------------------------------------------------ */

int mp__redis_exec_open(mp__redis_exec **out, int executors, void *ctx)
{
    if (executors < MP_WORKER_INLINE || executors > 1024)
        return MP_EINVAL;
    mp__redis_exec *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return MP_ENOMEM;
    x->executors = executors;
    x->ctx = ctx;
    x->width = 1;
    if (executors != MP_WORKER_INLINE) {
        int cpus = mp_cpu_count();
        x->width = executors > 0 ? (unsigned)executors : cpus > 0 ? (unsigned)cpus : 1;
        int rc = start_pool(x);
        if (rc < 0) {
            free(x);
            return rc;
        }
    }
    *out = x;
    return 0;
}

unsigned mp__redis_exec_width(const mp__redis_exec *x)
{
    return x->width;
}

void mp__redis_exec_close(mp__redis_exec *x)
{
    if (x == NULL)
        return;
    if (x->pool) {
        /* Idle executors exit as soon as the pool is closed. */
        mp_pool_close(x->pool);
        (void)mp_pool_join(x->pool, 2.0);
        mp_pool_destroy(x->pool); /* terminates them if join timed out */
    }
    mp_free(x->block);
    for (int i = 0; i < XS_COUNT; i++)
        mp__scratch_free(&x->sc[i]);
    free(x);
}

int mp__redis_exec_run(mp__redis_exec *x, mp__redis_job *jobs, size_t n, double period,
                       mp__redis_exec_ready ready, void *arg)
{
    if (n == 0)
        return 0;
    if (x->executors == MP_WORKER_INLINE)
        return run_inline(x, jobs, n, period, ready, arg);
    return run_executors(x, jobs, n, period, ready, arg);
}
