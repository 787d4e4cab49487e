/* The pool's submitting calls and their results: apply, map, for, imap,
 * and the mp_async / mp_imap objects. */
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "pool/pool_internal.h"

mp_async *mp__async_new(void)
{
    mp_async *a = calloc(1, sizeof *a);
    if (a) {
        a->head.wait.wait = &mp__pool_async_wait_ops;
        a->errs = a->local_errs;
        a->errs_cap = MP__POOL_ERRS_KEPT;
        a->fd = a->ready_fd = -1;
    }
    return a;
}

void mp__async_free(mp_async *a)
{
    mp_pool *p = a->pool;
    if (p) {
        mp__pool_block_put(p, &a->st_in);
        mp__pool_block_put(p, &a->st_out);
        mp__pool_block_put(p, &a->win);
        if (a->all_prev)
            a->all_prev->all_next = a->all_next;
        else if (p->all == a)
            p->all = a->all_next;
        if (a->all_next)
            a->all_next->all_prev = a->all_prev;
    }
    if (a->job)
        mp__heap_free(a->job);
    mp__stream_free(a);
    free(a->retry);
    free(a->res);
    free(a->in_copy);
    free(a->win_stack);
    mp__pool_bt_free(a);
    free(a);
}

int mp__pool_check_submit(mp_pool *p)
{
    int rc = mp__pool_check_use(p);
    if (rc < 0)
        return rc;
    if (p->broken)
        return MP_EBROKENPOOL;
    return p->closed ? MP_ECLOSED : 0;
}

/* Whether the workers can use fn and ctx (spawn, forkserver; fork workers
 * share the parent's layout as it was at the pool's start, thread workers
 * share it as it is). */
int mp__pool_check_ptrs(mp_pool *p, const void *fn, const void *ctx, const char *call, bool spec)
{
    const char *fn_arg = spec ? "spec->fn" : "fn";
    if (!p->shm->xlate)
        return mp__pool_fork_check(p, fn, call, fn_arg);
    int rc = mp__pool_xlate_check(p, fn, true, call, fn_arg);
    return rc < 0 ? rc : mp__pool_xlate_check(p, ctx, false, call, spec ? "spec->ctx" : "ctx");
}

int mp_pool_apply_async(mp_pool *p, mp_task_fn fn, void *ctx, const void *in, size_t in_len,
                        size_t out_cap, mp_async_cb cb, mp_async_cb err_cb, void *user,
                        mp_async **out)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b)
        return MP__POOL_CALL(b, apply_async, p, fn, ctx, in, in_len, out_cap, cb, err_cb, user,
                             out);
    int rc = mp__pool_check_submit(p);
    if (rc < 0)
        return rc;
    const char *f = "mp_pool_apply_async";
    if (!fn)
        return mp__fail(MP_EINVAL, "%s: fn is NULL", f);
    if (!out)
        return mp__fail(MP_EINVAL, "%s: out is NULL", f);
    if (!in && in_len > 0)
        return mp__fail(MP_EINVAL, "%s: in is NULL with in_len %zu", f, in_len);
    rc = mp__pool_check_ptrs(p, (const void *)(uintptr_t)fn, ctx, f, false);
    if (rc < 0)
        return rc;
    mp_async *a = mp__async_new();
    if (!a)
        return MP_ENOMEM;
    a->cb = cb;
    a->err_cb = err_cb;
    a->user = user;
    rc = mp__pool_submit_apply(p, a, fn, ctx, in, in_len, out_cap);
    if (rc < 0) {
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int mp_pool_apply(mp_pool *p, mp_task_fn fn, void *ctx, const void *in, size_t in_len, void *out,
                  size_t out_cap, size_t *out_len, double timeout)
{
    mp_async *a = NULL; /* apply_async, get and destroy serve both kinds of pool */
    if (!out && out_cap > 0)
        return mp__fail(MP_EINVAL, "mp_pool_apply: out is NULL with out_cap %zu", out_cap);
    int rc = mp_pool_apply_async(p, fn, ctx, in, in_len, out_cap, NULL, NULL, NULL, &a);
    if (rc < 0)
        return rc;
    rc = mp_async_get(a, out, out_cap, out_len, timeout);
    mp_async_destroy(a);
    return rc;
}

int mp__pool_check_map(const mp_map_spec *s, const char *f)
{
    if (!s)
        return mp__fail(MP_EINVAL, "%s: spec is NULL", f);
    if (!s->fn)
        return mp__fail(MP_EINVAL, "%s: spec->fn is NULL", f);
    if (s->in_size == 0)
        return mp__fail(MP_EINVAL, "%s: spec->in_size is 0 (must be >= 1)", f);
    if (!s->in && s->n > 0)
        return mp__fail(MP_EINVAL, "%s: spec->in is NULL with spec->n %zu", f, s->n);
    if (s->out && s->out_size == 0)
        return mp__fail(MP_EINVAL, "%s: spec->out_size is 0 with spec->out set", f);
    if (s->n > SIZE_MAX / s->in_size || (s->out_size && s->n > SIZE_MAX / s->out_size))
        return mp__fail(MP_EINVAL,
                        "%s: spec->n %zu items of spec->in_size %zu or "
                        "spec->out_size %zu bytes overflow size_t",
                        f, s->n, s->in_size, s->out_size);
    if (s->errors_cap > 0 && !s->errors)
        return mp__fail(MP_EINVAL, "%s: spec->errors is NULL with spec->errors_cap %zu", f,
                        s->errors_cap);
    return 0;
}

/* staged: bytes per item that pass through a staging window (0: none). */
static uint64_t auto_chunk(const mp_pool *p, uint64_t n, size_t chunksize, size_t staged)
{
    if (chunksize > 0)
        return chunksize < n ? chunksize : (n ? n : 1);
    /* Python's rule: four chunks per worker, rounded up. */
    uint64_t per = (uint64_t)p->nproc * 4;
    uint64_t c = n / per + (n % per ? 1 : 0);
    /* Staged chunks stay small: the window's buffers then stay in the
     * caches between the parent's copies and the worker's pass. */
    if (staged > 0 && c > MP__POOL_WIN_CHUNK / staged)
        c = MP__POOL_WIN_CHUNK / staged;
    return c ? c : 1;
}

static size_t round64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

/* The window of a staged map: chunk-sized buffers, reused as chunks come
 * back, so that a large array is never duplicated in the heap and the
 * buffers' pages, faulted once, stay warm (the pool keeps the block for
 * the next map). Two per worker and two more let the parent fill the next
 * chunks while the workers run theirs; small chunks get more, up to the
 * same bytes (or one per ring slot), so that a map of tiny tasks keeps as
 * many chunks queued as it would in place. */
static int open_window(mp_pool *p, mp_async *a, size_t in_size, size_t out_size)
{
    uint64_t chunks = a->n / a->chunk + (a->n % a->chunk ? 1 : 0);
    /* chunk <= n, and n * size fits (mp__pool_check_map): no overflow below 2^63. */
    a->win_in = in_size ? round64(a->chunk * in_size) : 0;
    a->win_buf = a->win_in + (out_size ? round64(a->chunk * out_size) : 0);
    uint64_t base = (uint64_t)p->nproc * 2 + 2;
    uint64_t nbuf = base * MP__POOL_WIN_CHUNK / a->win_buf;
    if (nbuf < base)
        nbuf = base;
    if (nbuf > MP__POOL_RING)
        nbuf = MP__POOL_RING;
    if (nbuf > chunks)
        nbuf = chunks;
    size_t total;
    if (__builtin_mul_overflow(a->win_buf, (size_t)nbuf, &total))
        return MP_ENOMEM;
    a->win_stack = malloc((size_t)nbuf * sizeof *a->win_stack);
    if (!a->win_stack)
        return MP_ENOMEM;
    for (uint32_t i = 0; i < (uint32_t)nbuf; i++)
        a->win_stack[i] = (uint32_t)nbuf - 1 - i; /* buffer 0 on top */
    a->win_nfree = (uint32_t)nbuf;
    int rc = mp__pool_block_get(p, &a->win, total);
    if (rc == 0)
        mp__pool_prefault(a->win.p, total); /* fresh shared pages: one call */
    return rc;
}

/* Staging: arrays outside the heap pass through the window (input copied
 * into a buffer as its chunk is handed out, results copied back to the
 * caller's array as the chunk comes back); arrays in the heap are used in
 * place, and so are all arrays with thread workers, which share the
 * caller's memory. An iterator's results are kept in a heap block of
 * their own until taken. */
static int stage(mp_pool *p, mp_async *a, const mp_map_spec *s, bool force_out)
{
    mp__pjob *j = a->job;
    size_t in_bytes = s->n * s->in_size, out_bytes = s->n * s->out_size;
    bool win_in = in_bytes > 0 && !p->threads && !mp__heap_contains(s->in, in_bytes);
    bool win_out = false;
    int rc = 0;
    j->in = win_in ? NULL : s->in;
    a->user_in = win_in ? s->in : NULL;
    if (out_bytes > 0 && force_out) {
        rc = mp__pool_block_get(p, &a->st_out, out_bytes);
        j->out = a->st_out.p;
    } else if (out_bytes > 0 && s->out) {
        win_out = !p->threads && !mp__heap_contains(s->out, out_bytes);
        j->out = win_out ? NULL : s->out;
        a->user_out = win_out ? s->out : NULL;
    }
    a->chunk =
        auto_chunk(p, s->n, s->chunksize, (win_in ? s->in_size : 0) + (win_out ? s->out_size : 0));
    if (rc < 0 || (!win_in && !win_out))
        return rc;
    return open_window(p, a, win_in ? s->in_size : 0, win_out ? s->out_size : 0);
}

void mp__async_own_input(mp_async *a)
{
    if (a->stream) {
        mp__stream_detach(a); /* may free a */
        return;
    }
    if (!a->user_in || a->in_copy)
        return;
    size_t bytes = a->n * a->job->in_size;
    a->in_copy = malloc(bytes);
    if (a->in_copy) {
        memcpy(a->in_copy, a->user_in, bytes);
        a->user_in = a->in_copy;
        return;
    }
    /* No copy: the items not yet handed out are dropped unrun (nobody
     * would see their results). */
    a->next_item = a->n;
    a->nretry = 0;
    if (a->inflight == 0)
        mp__pool_finish(a->pool, a);
}

int mp__pool_map_start(mp_pool *p, const mp_map_spec *s, bool force_out, mp_async **out)
{
    void *jm = NULL;
    const char *f = force_out ? "mp_pool_imap" : "mp_pool_map";
    int rc = mp__pool_check_submit(p);
    if (rc == 0)
        rc = mp__pool_check_map(s, f);
    if (rc == 0)
        rc = mp__pool_check_ptrs(p, (const void *)(uintptr_t)s->fn, s->ctx, f, true);
    if (rc < 0)
        return rc;
    mp_async *a = mp__async_new();
    if (!a)
        return MP_ENOMEM;
    rc = mp__heap_alloc(&jm, sizeof(mp__pjob));
    if (rc < 0)
        goto fail;
    a->job = jm;
    jm = NULL;
    *a->job = (mp__pjob){.kind = MP__JOB_MAP,
                         .fn = s->fn,
                         .ctx = s->ctx,
                         .in_size = s->in_size,
                         .out_size = s->out_size};
    a->pool = p;
    a->n = s->n;
    rc = stage(p, a, s, force_out);
    if (rc < 0)
        goto fail;
    a->kind = MP__JOB_MAP;
    if (s->errors_cap > 0) {
        a->errs = s->errors;
        a->errs_cap = s->errors_cap;
    }
    a->n_errors_out = s->n_errors;
    mp__pool_add_job(p, a);
    if (a->n == 0)
        mp__pool_finish(p, a);
    else
        mp__pool_pump(p, false);
    *out = a;
    return 0;
fail:
    mp__heap_free(jm);
    mp__async_free(a);
    return rc;
}

int mp_pool_map_async(mp_pool *p, const mp_map_spec *spec, mp_async_cb cb, mp_async_cb err_cb,
                      void *user, mp_async **out)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b)
        return MP__POOL_CALL(b, map_async, p, spec, cb, err_cb, user, out);
    if (!out)
        return mp__fail(MP_EINVAL, "mp_pool_map_async: out is NULL");
    mp_async *a = NULL;
    int rc = mp__pool_map_start(p, spec, false, &a);
    if (rc < 0)
        return rc;
    a->cb = cb;
    a->err_cb = err_cb;
    a->user = user;
    if (a->done && cb)
        cb(a, user); /* an empty map is complete at once */
    *out = a;
    return 0;
}

/* A synchronous map or for interrupted (multiproc/interrupt.h) withdraws
 * its items no worker started, so that the pool is free for what comes
 * next; the running ones finish and their results are dropped. */
static void withdraw_if_interrupted(mp_async *a, int rc)
{
    if (rc == MP_EINTR || rc == MP_ECANCELED)
        (void)mp_async_cancel(a);
}

int mp_pool_map(mp_pool *p, const mp_map_spec *spec, double timeout)
{
    mp_async *a = NULL;
    const mp__pool_backend *b = mp__pool_backend_of(p);
    int rc = b ? MP__POOL_CALL(b, map_async, p, spec, NULL, NULL, NULL, &a)
               : mp__pool_map_start(p, spec, false, &a);
    if (rc < 0)
        return rc;
    rc = mp_async_get(a, NULL, 0, NULL, timeout);
    withdraw_if_interrupted(a, rc);
    mp_async_destroy(a);
    return rc;
}

int mp_pool_starmap(mp_pool *p, const mp_map_spec *spec, double timeout)
{
    return mp_pool_map(p, spec, timeout);
}

/* The number of indexes of [begin, end), begin <= end: computed unsigned,
 * where it cannot overflow (end - begin in int64_t can). */
static uint64_t for_span(const mp_for_spec *s)
{
    return (uint64_t)s->end - (uint64_t)s->begin;
}

int mp__pool_check_for(const mp_for_spec *s)
{
    const char *f = "mp_pool_for";
    if (!s)
        return mp__fail(MP_EINVAL, "%s: spec is NULL", f);
    if (!s->fn)
        return mp__fail(MP_EINVAL, "%s: spec->fn is NULL", f);
    if (s->begin > s->end)
        return mp__fail(MP_EINVAL, "%s: spec->begin %lld is above spec->end %lld", f,
                        (long long)s->begin, (long long)s->end);
    if (s->acc_size > MP_POOL_ACC_MAX)
        return mp__fail(MP_EINVAL, "%s: spec->acc_size is %zu (at most MP_POOL_ACC_MAX, %d)", f,
                        s->acc_size, MP_POOL_ACC_MAX);
    if (s->acc_size > 0 && !s->reduce)
        return mp__fail(MP_EINVAL, "%s: spec->reduce is NULL with spec->acc_size %zu", f,
                        s->acc_size);
    if (s->acc_size > 0 && !s->result)
        return mp__fail(MP_EINVAL, "%s: spec->result is NULL with spec->acc_size %zu", f,
                        s->acc_size);
    if (s->errors_cap > 0 && !s->errors)
        return mp__fail(MP_EINVAL, "%s: spec->errors is NULL with spec->errors_cap %zu", f,
                        s->errors_cap);
    /* Chunk bounds are begin plus an offset in int64_t: the span must fit. */
    if (for_span(s) > (uint64_t)INT64_MAX)
        return mp__fail(MP_EINVAL, "%s: spec->end - spec->begin exceeds INT64_MAX", f);
    return 0;
}

int mp_pool_for(mp_pool *p, const mp_for_spec *s, double timeout)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b)
        return MP__POOL_CALL(b, parallel_for, p, s, timeout);
    void *jm = NULL;
    int rc = mp__pool_check_submit(p);
    if (rc == 0)
        rc = mp__pool_check_for(s);
    if (rc == 0)
        rc = mp__pool_check_ptrs(p, (const void *)(uintptr_t)s->fn, s->ctx, "mp_pool_for", true);
    if (rc < 0)
        return rc;
    mp_async *a = mp__async_new();
    if (!a)
        return MP_ENOMEM;
    rc = mp__heap_alloc(&jm, sizeof(mp__pjob));
    if (rc < 0) {
        free(a);
        return rc;
    }
    a->job = jm;
    *a->job = (mp__pjob){.kind = MP__JOB_FOR,
                         .ffn = s->fn,
                         .ctx = s->ctx,
                         .acc_size = s->acc_size,
                         .begin = s->begin};
    if (s->acc_init)
        memcpy(a->job->acc_init, s->acc_init, s->acc_size);
    if (s->acc_size)
        memcpy(s->result, a->job->acc_init, s->acc_size);
    a->kind = MP__JOB_FOR;
    a->begin = s->begin;
    a->n = for_span(s);
    a->chunk = auto_chunk(p, a->n, s->chunksize, 0);
    a->result = s->result;
    a->reduce = s->reduce;
    a->rctx = s->ctx;
    if (s->errors_cap > 0) {
        a->errs = s->errors;
        a->errs_cap = s->errors_cap;
    }
    a->n_errors_out = s->n_errors;
    mp__pool_add_job(p, a);
    if (a->n == 0)
        mp__pool_finish(p, a);
    rc = mp_async_get(a, NULL, 0, NULL, timeout);
    withdraw_if_interrupted(a, rc);
    mp_async_destroy(a);
    return rc;
}
