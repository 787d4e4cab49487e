/* Results: mp_async (Python's AsyncResult) and the imap iterators. */
#include <stdlib.h>
#include <string.h>

#include "pool/pool_internal.h"

static int check_async(const mp_async *a)
{
    if (!a)
        return mp__fail(MP_EINVAL, "mp_async: the result is NULL");
    if (a->pool)
        return mp__pool_check_use(a->pool);
    return 0;
}

int mp_async_wait(mp_async *a, double timeout)
{
    const mp__pool_backend *b = mp__pool_backend_of(a);
    if (b)
        return MP__POOL_CALL(b, async_wait, a, timeout);
    mp__deadline d;
    int rc = check_async(a);
    if (rc == 0)
        rc = mp__deadline_init(&d, timeout);
    if (rc < 0)
        return rc;
    while (!a->done && !a->cancelled) {
        mp__pool_pump(a->pool, false);
        if (a->done || a->cancelled)
            break;
        rc = mp__pool_wait_event(a->pool, &d);
        if (rc < 0) /* MP_ETIMEDOUT, or interrupted (multiproc/interrupt.h) */
            return rc;
    }
    return 0;
}

int mp_async_get(mp_async *a, void *out, size_t out_cap, size_t *out_len, double timeout)
{
    const mp__pool_backend *b = mp__pool_backend_of(a);
    if (b)
        return MP__POOL_CALL(b, async_get, a, out, out_cap, out_len, timeout);
    if (a && a->kind == MP__JOB_APPLY && !out && out_cap > 0)
        return mp__fail(MP_EINVAL, "mp_async_get: out is NULL with out_cap %zu", out_cap);
    int rc = mp_async_wait(a, timeout);
    if (rc < 0)
        return rc;
    if (a->rc != 0)
        return a->nerr > 0 && a->errs_cap > 0 ? mp__pool_detail(&a->errs[0]) : a->rc;
    if (a->kind != MP__JOB_APPLY)
        return 0;
    if (a->res_len > out_cap)
        return MP_EMSGSIZE;
    if (a->res_len > 0)
        memcpy(out, a->res, a->res_len);
    if (out_len)
        *out_len = a->res_len;
    return 0;
}

bool mp_async_ready(mp_async *a)
{
    const mp__pool_backend *b = mp__pool_backend_of(a);
    if (b)
        return b->async_ready ? b->async_ready(a) : false;
    if (check_async(a) < 0)
        return false;
    if (!a->done && !a->cancelled)
        mp__pool_pump(a->pool, false);
    return a->done || a->cancelled;
}

int mp_async_successful(mp_async *a)
{
    const mp__pool_backend *b = mp__pool_backend_of(a);
    if (b)
        return MP__POOL_CALL(b, async_successful, a);
    if (!mp_async_ready(a))
        return a ? MP_EBUSY : mp__fail(MP_EINVAL, "mp_async_successful: a is NULL");
    return a->rc == 0 ? 0 : 1;
}

int mp_async_error(const mp_async *a, size_t i, mp_task_error *out)
{
    const mp__pool_backend *b = mp__pool_backend_of(a);
    if (b)
        return MP__POOL_CALL(b, async_error, a, i, out);
    if (!a || !out)
        return mp__fail(MP_EINVAL, "mp_async_error: %s is NULL", a ? "out" : "a");
    if (!a->done && !a->cancelled)
        return MP_EBUSY;
    if (i >= a->nerr || i >= a->errs_cap)
        return MP_ERANGE;
    *out = a->errs[i];
    return 0;
}

void mp_async_destroy(mp_async *a)
{
    const mp__pool_backend *b = mp__pool_backend_of(a);
    if (b) {
        b->async_destroy(a);
        return;
    }
    if (!a)
        return;
    mp__async_fd_close(a);
    if (a->done || !a->pool) {
        mp__async_free(a);
        return;
    }
    /* Still running: the pool frees it when its last task comes back, and
     * writes nothing more into the caller's memory. */
    a->detached = true;
    a->cb = a->err_cb = NULL;
    a->user_out = NULL;
    a->reduce = NULL;
    a->n_errors_out = NULL;
    a->it = NULL;
    if (a->errs != a->local_errs) {
        a->errs = a->local_errs;
        a->errs_cap = 0;
    }
    mp__async_own_input(a); /* last: may free a */
}

int mp_async_cancel(mp_async *a)
{
    const mp__pool_backend *b = mp__pool_backend_of(a);
    if (b)
        return MP__POOL_CALL(b, async_cancel, a);
    int rc = check_async(a);
    if (rc < 0)
        return rc;
    /* An iterator's job is not the caller's to cancel (mp_imap_destroy). */
    if (a->it)
        return mp__fail(MP_EINVAL, "mp_async_cancel: the result belongs to an iterator "
                                   "(mp_imap_destroy cancels it)");
    if (a->done || a->cancelled || !a->pool)
        return mp__fail(MP_EINVAL, "mp_async_cancel: the result is %s",
                        a->cancelled ? "cancelled already"
                        : a->done    ? "ready already"
                                     : "no longer tied to a pool");
    mp__pool_cancel(a->pool, a);
    return 0;
}

/* ---- iterators ---------------------------------------------------------*/

void mp__imap_on_items(mp_imap *it, uint64_t first, uint64_t count)
{
    if (it->ordered) {
        memset(it->status + first, 1, count);
        mp__imap_fd_update(it);
        return;
    }
    if (it->fifo_len == it->fifo_cap) {
        size_t cap = it->fifo_cap ? it->fifo_cap * 2 : 64;
        mp__range *f = malloc(cap * sizeof *f);
        if (!f)
            abort(); /* a few bytes in the parent: nothing sensible remains */
        for (size_t i = 0; i < it->fifo_len; i++)
            f[i] = it->fifo[(it->fifo_head + i) % it->fifo_cap];
        free(it->fifo);
        it->fifo = f;
        it->fifo_cap = cap;
        it->fifo_head = 0;
    }
    it->fifo[(it->fifo_head + it->fifo_len++) % it->fifo_cap] = (mp__range){first, count};
    mp__imap_fd_update(it);
}

void mp__imap_on_error(mp_imap *it, const mp_task_error *e)
{
    if (it->nfails == it->fails_cap) {
        size_t cap = it->fails_cap ? it->fails_cap * 2 : 8;
        mp_task_error *f = realloc(it->fails, cap * sizeof *f);
        if (!f)
            abort();
        it->fails = f;
        it->fails_cap = cap;
    }
    it->fails[it->nfails++] = *e;
    if (it->ordered)
        it->status[e->index] = 2;
    mp__imap_fd_update(it);
}

int mp_pool_imap(mp_pool *p, const mp_map_spec *spec, bool ordered, mp_imap **out)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b)
        return MP__POOL_CALL(b, imap, p, spec, ordered, out);
    if (!out || !spec)
        return mp__fail(MP_EINVAL, "mp_pool_imap: %s is NULL", out ? "spec" : "out");
    mp_imap *it = calloc(1, sizeof *it);
    if (!it)
        return MP_ENOMEM;
    it->head.wait.wait = &mp__pool_imap_wait_ops;
    it->ordered = ordered;
    it->out_size = spec->out_size;
    if (ordered && spec->n > 0) {
        it->status = calloc(spec->n, 1);
        if (!it->status) {
            free(it);
            return MP_ENOMEM;
        }
    }
    mp_map_spec s = *spec;
    s.out = NULL;
    s.errors = NULL;
    s.errors_cap = 0;
    s.n_errors = NULL;
    mp_async *a = NULL;
    int rc = mp__pool_map_start(p, &s, true, &a);
    if (rc < 0) {
        free(it->status);
        free(it);
        return rc;
    }
    it->a = a;
    a->it = it;
    *out = it;
    return 0;
}

/* Gives one ready result, or MP_EAGAIN when none is ready yet. */
static int imap_take(mp_imap *it, void *item, size_t *index, mp_task_error *err)
{
    mp_async *a = it->a;
    size_t os = it->out_size;
    const char *res = a->st_out.p;
    uint64_t i;
    if (it->given == a->n)
        return MP_EEOF;
    if (it->ordered) {
        i = it->next;
        if (it->status[i] == 0)
            return a->done ? a->rc : MP_EAGAIN;
        it->next++;
        it->given++;
        if (index)
            *index = (size_t)i;
        if (it->status[i] == 2) {
            for (size_t k = 0; k < it->nfails; k++) {
                if (it->fails[k].index == i) {
                    if (err)
                        *err = it->fails[k];
                    return it->fails[k].code;
                }
            }
        }
    } else if (it->fifo_len > 0) {
        mp__range *r = &it->fifo[it->fifo_head];
        i = r->first++;
        if (--r->count == 0) {
            it->fifo_head = (it->fifo_head + 1) % it->fifo_cap;
            it->fifo_len--;
        }
        it->given++;
        if (index)
            *index = (size_t)i;
    } else if (it->fails_given < it->nfails) {
        const mp_task_error *e = &it->fails[it->fails_given++];
        it->given++;
        if (index)
            *index = e->index;
        if (err)
            *err = *e;
        return e->code;
    } else {
        return a->done ? a->rc : MP_EAGAIN;
    }
    if (item && os && res)
        memcpy(item, res + i * os, os);
    return 0;
}

/* imap_take for both kinds of iterator: a stream's results have their
 * own lengths (at most cap bytes are copied), a map's are out_size. */
static int take(mp_imap *it, void *item, size_t cap, size_t *len, size_t *index, mp_task_error *err)
{
    if (it->a->stream)
        return mp__stream_take(it, item, cap, len, index, err);
    int rc = imap_take(it, item, index, err);
    if (len)
        *len = rc == 0 ? it->out_size : 0;
    return rc;
}

static int imap_next(mp_imap *it, void *item, size_t cap, size_t *len, size_t *index,
                     mp_task_error *err, const mp__deadline *dl)
{
    mp__deadline d = *dl;
    int rc;
    for (;;) {
        rc = take(it, item, cap, len, index, err);
        if (rc != MP_EAGAIN)
            return rc;
        if (!it->a->pool)
            return MP_ECLOSED;
        mp__pool_pump(it->a->pool, false);
        rc = take(it, item, cap, len, index, err);
        if (rc != MP_EAGAIN)
            return rc;
        rc = mp__pool_wait_event(it->a->pool, &d);
        if (rc < 0)
            return rc;
    }
}

int mp_imap_next(mp_imap *it, void *item, size_t *index, mp_task_error *err, double timeout)
{
    const mp__pool_backend *b = mp__pool_backend_of(it);
    if (b)
        return MP__POOL_CALL(b, imap_next, it, item, index, err, timeout);
    mp__deadline d;
    if (!it)
        return mp__fail(MP_EINVAL, "mp_imap_next: it is NULL");
    int rc = check_async(it->a);
    if (rc == 0)
        rc = mp__deadline_init(&d, timeout);
    if (rc < 0)
        return rc;
    rc = imap_next(it, item, it->out_size, NULL, index, err, &d);
    mp__imap_fd_update(it); /* an item taken may leave none to take */
    return rc;
}

int mp_imap_next_sized(mp_imap *it, void *buf, size_t cap, size_t *len, size_t *index,
                       mp_task_error *err, double timeout)
{
    const char *f = "mp_imap_next_sized";
    if (!it)
        return mp__fail(MP_EINVAL, "%s: it is NULL", f);
    const mp__pool_backend *b = mp__pool_backend_of(it);
    if (b || !it->a->stream) {
        /* Results of one size: too small a buffer can be told at once. */
        size_t size = b ? b->imap_item_size(it) : it->out_size;
        if (len)
            *len = size;
        if (buf && cap < size)
            return mp__fail(MP_EMSGSIZE, "%s: the results are %zu bytes, cap %zu", f, size, cap);
        if (b) {
            int rc = MP__POOL_CALL(b, imap_next, it, buf, index, err, timeout);
            if (len && rc != 0)
                *len = 0; /* no result given (as imap_next sets it locally) */
            return rc;
        }
    }
    mp__deadline d;
    int rc = check_async(it->a);
    if (rc == 0)
        rc = mp__deadline_init(&d, timeout);
    if (rc < 0)
        return rc;
    rc = imap_next(it, buf, cap, len, index, err, &d);
    mp__imap_fd_update(it);
    return rc;
}

void mp_imap_destroy(mp_imap *it)
{
    const mp__pool_backend *b = mp__pool_backend_of(it);
    if (b) {
        b->imap_destroy(it);
        return;
    }
    if (!it)
        return;
    if (it->a) {
        it->a->it = NULL;
        mp_async_destroy(it->a);
    }
    free(it->status);
    free(it->fails);
    free(it->fifo);
    free(it);
}
