/* The pool's submitting calls and their results: apply, map, for, imap,
 * and the mp_async / mp_imap objects. */
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "rpool.h"
#include "pool_internal.h"

static mp_async *async_new(void)
{
    mp_async *a = calloc(1, sizeof *a);
    if (a) {
        a->errs = a->local_errs;
        a->errs_cap = MP__POOL_ERRS_KEPT;
    }
    return a;
}

void mp__async_free(mp_async *a)
{
    mp_pool *p = a->pool;
    if (p) {
        mp__pool_block_put(p, &a->st_in);
        mp__pool_block_put(p, &a->st_out);
        if (a->all_prev)
            a->all_prev->all_next = a->all_next;
        else if (p->all == a)
            p->all = a->all_next;
        if (a->all_next)
            a->all_next->all_prev = a->all_prev;
    }
    if (a->job)
        mp__heap_free(a->job);
    free(a->retry);
    free(a->res);
    free(a);
}

static int check_submit(mp_pool *p)
{
    int rc = mp__pool_check_use(p);
    if (rc < 0)
        return rc;
    return p->closed ? MP_ECLOSED : 0;
}

/* Whether the workers can use fn and ctx (spawn, forkserver; fork and
 * thread workers share the parent's layout: nothing to check). */
static int check_ptrs(mp_pool *p, const void *fn, const void *ctx)
{
    if (!p->shm->xlate)
        return 0;
    int rc = mp__pool_xlate_check(p, fn, true);
    return rc < 0 ? rc : mp__pool_xlate_check(p, ctx, false);
}

int mp_pool_apply_async(mp_pool *p, mp_task_fn fn, void *ctx, const void *in, size_t in_len,
                        size_t out_cap, mp_async_cb cb, mp_async_cb err_cb, void *user,
                        mp_async **out)
{
    if (MP__REMOTE(p))
        return mp__rpool_apply_async(p, fn, ctx, in, in_len, out_cap, cb, err_cb, user, out);
    int rc = check_submit(p);
    if (rc < 0)
        return rc;
    if (!fn || !out || (!in && in_len > 0))
        return MP_EINVAL;
    rc = check_ptrs(p, (const void *)(uintptr_t)fn, ctx);
    if (rc < 0)
        return rc;
    mp_async *a = async_new();
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
    if (MP__REMOTE(p))
        return mp__rpool_apply(p, fn, ctx, in, in_len, out, out_cap, out_len, timeout);
    mp_async *a = NULL;
    if (!out && out_cap > 0)
        return MP_EINVAL;
    int rc = mp_pool_apply_async(p, fn, ctx, in, in_len, out_cap, NULL, NULL, NULL, &a);
    if (rc < 0)
        return rc;
    rc = mp_async_get(a, out, out_cap, out_len, timeout);
    mp_async_destroy(a);
    return rc;
}

static int check_map(const mp_map_spec *s)
{
    if (!s || !s->fn || s->in_size == 0 || (!s->in && s->n > 0))
        return MP_EINVAL;
    if (s->out && s->out_size == 0)
        return MP_EINVAL;
    if (s->n > SIZE_MAX / s->in_size || (s->out_size && s->n > SIZE_MAX / s->out_size))
        return MP_EINVAL;
    if (s->errors_cap > 0 && !s->errors)
        return MP_EINVAL;
    return 0;
}

static uint64_t auto_chunk(const mp_pool *p, uint64_t n, size_t chunksize)
{
    if (chunksize > 0)
        return chunksize;
    /* Python's rule: four chunks per worker, rounded up. */
    uint64_t per = (uint64_t)p->nproc * 4;
    uint64_t c = n / per + (n % per ? 1 : 0);
    return c ? c : 1;
}

/* Staging: arrays outside the heap are copied into a heap block (input
 * chunk by chunk as it is handed out, output as chunks complete). */
static int stage(mp_pool *p, mp_async *a, const mp_map_spec *s, bool force_out)
{
    mp__pjob *j = a->job;
    size_t in_bytes = s->n * s->in_size, out_bytes = s->n * s->out_size;
    int rc = 0;
    /* Thread workers share the caller's memory: nothing to stage. */
    if (in_bytes == 0 || p->threads || mp__heap_contains(s->in, in_bytes)) {
        j->in = s->in;
    } else {
        rc = mp__pool_block_get(p, &a->st_in, in_bytes);
        j->in = a->st_in.p;
    }
    if (rc == 0 && out_bytes > 0) {
        if (s->out && !force_out && (p->threads || mp__heap_contains(s->out, out_bytes))) {
            j->out = s->out;
        } else if (s->out || force_out) {
            rc = mp__pool_block_get(p, &a->st_out, out_bytes);
            j->out = a->st_out.p;
            a->user_out = force_out ? NULL : s->out;
        }
    }
    a->user_in = a->st_in.p ? s->in : NULL;
    return rc;
}

int mp__pool_map_start(mp_pool *p, const mp_map_spec *s, bool force_out, mp_async **out)
{
    void *jm = NULL;
    int rc = check_submit(p);
    if (rc == 0)
        rc = check_map(s);
    if (rc == 0)
        rc = check_ptrs(p, (const void *)(uintptr_t)s->fn, s->ctx);
    if (rc < 0)
        return rc;
    mp_async *a = async_new();
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
    rc = stage(p, a, s, force_out);
    if (rc < 0)
        goto fail;
    a->kind = MP__JOB_MAP;
    a->n = s->n;
    a->chunk = auto_chunk(p, s->n, s->chunksize);
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
    if (MP__REMOTE(p))
        return mp__rpool_map_async(p, spec, cb, err_cb, user, out);
    if (!out)
        return MP_EINVAL;
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

int mp_pool_map(mp_pool *p, const mp_map_spec *spec, double timeout)
{
    if (MP__REMOTE(p))
        return mp__rpool_map(p, spec, timeout);
    mp_async *a = NULL;
    int rc = mp__pool_map_start(p, spec, false, &a);
    if (rc < 0)
        return rc;
    rc = mp_async_get(a, NULL, 0, NULL, timeout);
    mp_async_destroy(a);
    return rc;
}

int mp_pool_starmap(mp_pool *p, const mp_map_spec *spec, double timeout)
{
    if (MP__REMOTE(p))
        return mp__rpool_map(p, spec, timeout);
    return mp_pool_map(p, spec, timeout);
}

static int check_for(const mp_for_spec *s)
{
    if (!s || !s->fn || s->begin > s->end || s->acc_size > MP_POOL_ACC_MAX)
        return MP_EINVAL;
    if (s->acc_size > 0 && (!s->reduce || !s->result))
        return MP_EINVAL;
    if (s->errors_cap > 0 && !s->errors)
        return MP_EINVAL;
    if ((uint64_t)(s->end - s->begin) > (uint64_t)INT64_MAX)
        return MP_EINVAL;
    return 0;
}

int mp_pool_for(mp_pool *p, const mp_for_spec *s, double timeout)
{
    if (MP__REMOTE(p))
        return MP_ENOSYS;
    void *jm = NULL;
    int rc = check_submit(p);
    if (rc == 0)
        rc = check_for(s);
    if (rc == 0)
        rc = check_ptrs(p, (const void *)(uintptr_t)s->fn, s->ctx);
    if (rc < 0)
        return rc;
    mp_async *a = async_new();
    if (!a)
        return MP_ENOMEM;
    rc = mp__heap_alloc(&jm, sizeof(mp__pjob));
    if (rc < 0) {
        free(a);
        return rc;
    }
    a->job = jm;
    *a->job = (mp__pjob){.kind = MP__JOB_FOR, .ffn = s->fn, .ctx = s->ctx, .acc_size = s->acc_size};
    if (s->acc_init)
        memcpy(a->job->acc_init, s->acc_init, s->acc_size);
    if (s->acc_size)
        memcpy(s->result, a->job->acc_init, s->acc_size);
    a->kind = MP__JOB_FOR;
    a->begin = s->begin;
    a->n = (uint64_t)(s->end - s->begin);
    a->chunk = auto_chunk(p, a->n, s->chunksize);
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
    mp_async_destroy(a);
    return rc;
}
