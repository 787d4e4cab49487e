/* The distributed pool's client API: apply, map, imap, parallel-for and
 * their results, and the wire names of their functions. The same
 * contracts as the local pool (multiproc/pool.h), with the differences
 * listed in multiproc/worker.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os/pidfd.h"
#include "redis/redis_pool.h"
#include "os/symbol.h"

/* Largest input a map chunk carries, so that one XADD stays small. */
#define CHUNK_BYTES ((size_t)1 << 20)
/* A map of many chunks packs up to PACK_CHUNKS of them into one stream
 * entry (one unit of distribution), keeping at least PACK_SPREAD entries. */
#define PACK_CHUNKS 16
#define PACK_SPREAD 256

static void hex(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* "n:<name>" when the function at addr has a name, else "r:<ref>". */
static int fn_spec(const char *name, void *addr, char *buf, size_t cap, size_t *len)
{
    int n;
    if (name) {
        n = snprintf(buf, cap, "n:%s", name);
    } else {
        mp__symref ref;
        int rc = mp__sym_encode(addr, &ref);
        if (rc < 0)
            return rc;
        char bid[2 * MP__BUILD_ID_MAX + 1] = "";
        hex(bid, ref.build_id, ref.build_id_len);
        n = snprintf(buf, cap, "r:%s:%" PRIx64 ":%s", bid, ref.offset, ref.path);
    }
    if (n < 0 || (size_t)n >= cap)
        return MP_EINVAL;
    *len = (size_t)n;
    return 0;
}

int mp__redis_pool_fn_spec(mp_task_fn fn, char *buf, size_t cap, size_t *len)
{
    void *addr;
    memcpy(&addr, &fn, sizeof(addr)); /* POSIX: functions have data-pointer size */
    return fn_spec(mp__task_name(fn), addr, buf, cap, len);
}

int mp__redis_pool_for_spec(mp_for_fn fn, char *buf, size_t cap, size_t *len)
{
    void *addr;
    memcpy(&addr, &fn, sizeof(addr));
    return fn_spec(mp__for_name(fn), addr, buf, cap, len);
}

void mp__redis_async_link(mp__redis_pool *p, mp__redis_async *a)
{
    a->head.backend = &mp__redis_pool_backend;
    a->head.wait.wait = &mp__pool_async_wait_ops;
    a->pool = p;
    a->next = p->live;
    if (p->live)
        p->live->prev = a;
    p->live = a;
    p->unfinished++;
}

static void unlink_async(mp__redis_async *a)
{
    mp__redis_pool *p = a->pool;
    if (p == NULL)
        return;
    if (a->prev)
        a->prev->next = a->next;
    else
        p->live = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->next = a->prev = NULL;
    /* Results still to come for it find no slot and are dropped (a done
     * result has no slot left: no scan); its items count as ended. */
    for (uint64_t id = p->base; !a->done && id < p->next_id; id++)
        if (p->slots[id - p->base].a == a)
            p->slots[id - p->base].a = NULL;
    mp__redis_pool_count_done(p, a, a->items_left);
    if (!a->done)
        p->unfinished--;
    a->pool = NULL;
}

void mp__redis_async_record(mp__redis_async *a, const mp_task_error *e)
{
    if (a->nerr < a->errs_cap)
        a->errs[a->nerr] = *e;
    a->nerr++;
    if (a->rc == 0)
        a->rc = e->code;
}

void mp__redis_async_finish(mp__redis_async *a)
{
    a->done = true;
    if (a->pool)
        a->pool->unfinished--;
    if (a->n_errors_out)
        *a->n_errors_out = a->nerr;
    if (a->rc == 0 && a->cb)
        a->cb((mp_async *)a, a->user);
    else if (a->rc != 0 && a->err_cb)
        a->err_cb((mp_async *)a, a->user);
}

/* Fails a not-yet-done result with code (terminate, a failed submit). */
void mp__redis_async_abandon(mp__redis_async *a, int code)
{
    mp__redis_pool *p = a->pool;
    for (uint64_t id = p ? p->base : 0; p && id < p->next_id; id++)
        if (p->slots[id - p->base].a == a)
            p->slots[id - p->base].a = NULL;
    a->pending = 0;
    if (p) /* its items not ended are dropped */
        mp__redis_pool_count_done(p, a, a->items_left);
    if (a->rc == 0)
        a->rc = code;
    if (a->it) /* the iterator ends: every item not given is failed */
        for (size_t i = 0; i < a->it->n; i++)
            if (a->it->status[i] == 0) {
                a->it->status[i] = 2;
                a->it->ierr[i] = (mp_task_error){.index = i, .code = code};
                a->it->fifo[a->it->fifo_len++] = i;
            }
    a->done = true;
    if (p)
        p->unfinished--;
}

/* A new result of items items (for the progress). */
static mp__redis_async *new_async(mp__redis_pool *p, uint64_t items, mp_async_cb cb,
                                  mp_async_cb err_cb, void *user)
{
    mp__redis_async *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->items_left = items;
    p->meter.total += items;
    a->cb = cb;
    a->err_cb = err_cb;
    a->user = user;
    a->errs = a->local_errs;
    a->errs_cap = MP__REDIS_POOL_ERRS_KEPT;
    mp__redis_async_link(p, a);
    return a;
}

static void free_async(mp__redis_async *a)
{
    unlink_async(a);
    free(a->res);
    free(a);
}

static int check_submit(mp_pool *pool, mp__redis_pool **p)
{
    int rc = mp__redis_pool_check(pool, p);
    if (rc == 0 && (*p)->closed)
        rc = MP_ECLOSED;
    return rc;
}

int mp__redis_pool_apply_async(mp_pool *pool, mp_task_fn fn, void *ctx, const void *in,
                               size_t in_len, size_t out_cap, mp_async_cb cb, mp_async_cb err_cb,
                               void *user, mp_async **out)
{
    mp__redis_pool *p;
    const char *f = "mp_pool_apply_async";
    if (!fn || !out)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", f, !fn ? "fn" : "out");
    if (ctx)
        return mp__fail(MP_EINVAL,
                        "%s: ctx must be NULL on a distributed pool (a task runs on another "
                        "machine: put what it needs in its input)",
                        f);
    if (!in && in_len)
        return mp__fail(MP_EINVAL, "%s: in is NULL with in_len %zu", f, in_len);
    if (out_cap > MP__REDIS_POOL_OUT_MAX)
        return mp__fail(MP_EINVAL, "%s: out_cap is %zu (at most %zu on a distributed pool)", f,
                        out_cap, (size_t)MP__REDIS_POOL_OUT_MAX);
    int rc = check_submit(pool, &p);
    char spec[MP__MODULE_MAX + 128];
    size_t spec_len;
    if (rc == 0)
        rc = mp__redis_pool_fn_spec(fn, spec, sizeof(spec), &spec_len);
    if (rc < 0)
        return rc;
    mp__redis_async *a = new_async(p, 1, cb, err_cb, user);
    if (a == NULL || (out_cap && (a->res = malloc(out_cap)) == NULL)) {
        if (a)
            free_async(a);
        return MP_ENOMEM;
    }
    a->out_cap = out_cap;
    a->errs_cap = 1;
    mp__redis_chunk c = {.n = 1, .isz = in_len, .cap = out_cap, .in = in, .in_len = in_len};
    rc = mp__redis_pool_enqueue(p, a, spec, spec_len, &c);
    if (rc < 0) {
        free_async(a);
        return rc;
    }
    *out = (mp_async *)a;
    return 0;
}

static size_t pick_chunk(const mp_map_spec *s)
{
    size_t c = s->chunksize ? s->chunksize : (s->n + 31) / 32;
    size_t big = s->in_size > s->out_size ? s->in_size : s->out_size;
    if (!s->chunksize && c * big > CHUNK_BYTES)
        c = CHUNK_BYTES / big;
    if (c > UINT32_MAX)
        c = UINT32_MAX;
    return c ? c : 1;
}

/* Chunks one entry packs: enough that tiny chunks share their entry's
 * stream and worker costs, few enough that the map still spreads over at
 * least PACK_SPREAD entries, and at most CHUNK_BYTES of input. */
static size_t pick_pack(const mp_map_spec *s, size_t chunk)
{
    size_t chunks = (s->n + chunk - 1) / chunk, pack = chunks / PACK_SPREAD;
    if (pack > PACK_CHUNKS)
        pack = PACK_CHUNKS;
    while (pack > 1 && (pack * chunk > UINT32_MAX || pack * chunk * s->in_size > CHUNK_BYTES))
        pack /= 2;
    return pack ? pack : 1;
}

/* Puts every chunk of the map on the stream, packed pick_pack to an entry,
 * MP__REDIS_POOL_BATCH entries per round trip. */
static int submit_map(mp__redis_pool *p, mp__redis_async *a, const mp_map_spec *s, const char *spec,
                      size_t spec_len)
{
    size_t chunk = pick_chunk(s), pack = pick_pack(s, chunk), step = chunk * pack;
    mp__redis_chunk c[MP__REDIS_POOL_BATCH];
    int k = 0;
    for (size_t first = 0; first < s->n; first += step) {
        size_t n = s->n - first < step ? s->n - first : step;
        c[k++] = (mp__redis_chunk){.first = first,
                                   .n = (uint32_t)n,
                                   .per = n > chunk ? (uint32_t)chunk : 0,
                                   .isz = s->in_size,
                                   .cap = s->out_size,
                                   .in = (const char *)s->in + first * s->in_size,
                                   .in_len = n * s->in_size};
        if (k == MP__REDIS_POOL_BATCH || first + n >= s->n) {
            int rc = mp__redis_pool_submit(p, a, spec, spec_len, k, c);
            if (rc < 0)
                return rc;
            k = 0;
        }
    }
    return 0;
}

static int check_spec(const mp_map_spec *s)
{
    const char *f = "mp_pool_map";
    int rc = mp__pool_check_map(s, f);
    if (rc < 0)
        return rc;
    if (s->ctx)
        return mp__fail(MP_EINVAL,
                        "%s: spec->ctx must be NULL on a distributed pool (a task runs on another "
                        "machine)",
                        f);
    if (s->in_size > MP__REDIS_POOL_OUT_MAX || s->out_size > MP__REDIS_POOL_OUT_MAX)
        return mp__fail(MP_EINVAL,
                        "%s: spec->in_size %zu or spec->out_size %zu is above %zu (a distributed "
                        "pool's item)",
                        f, s->in_size, s->out_size, (size_t)MP__REDIS_POOL_OUT_MAX);
    return 0;
}

static int map_start(mp_pool *pool, const mp_map_spec *s, mp_async_cb cb, mp_async_cb err_cb,
                     void *user, mp__redis_imap *it, mp__redis_async **out)
{
    mp__redis_pool *p;
    int rc = check_spec(s);
    if (rc == 0)
        rc = check_submit(pool, &p);
    char spec[MP__MODULE_MAX + 128];
    size_t spec_len;
    if (rc == 0)
        rc = mp__redis_pool_fn_spec(s->fn, spec, sizeof(spec), &spec_len);
    if (rc < 0)
        return rc;
    mp__redis_async *a = new_async(p, s->n, cb, err_cb, user);
    if (a == NULL)
        return MP_ENOMEM;
    a->is_map = true;
    a->out = it ? NULL : s->out;
    a->out_size = s->out_size;
    a->n = s->n;
    a->it = it;
    if (!it && s->errors) {
        a->errs = s->errors;
        a->errs_cap = s->errors_cap;
    }
    a->n_errors_out = it ? NULL : s->n_errors;
    rc = submit_map(p, a, s, spec, spec_len);
    if (rc < 0 && a->pending == 0) {
        free_async(a);
        return rc;
    }
    if (rc < 0) /* part of it is on the stream: the map fails as a whole */
        mp__redis_async_abandon(a, rc);
    else if (a->pending == 0)
        mp__redis_async_finish(a);
    *out = a;
    return 0;
}

int mp__redis_pool_map_start(mp_pool *pool, const mp_map_spec *s, mp__redis_imap *it,
                             mp__redis_async **out)
{
    return map_start(pool, s, NULL, NULL, NULL, it, out);
}

int mp__redis_pool_map_async(mp_pool *pool, const mp_map_spec *s, mp_async_cb cb,
                             mp_async_cb err_cb, void *user, mp_async **out)
{
    mp__redis_async *a = NULL;
    if (!out)
        return mp__fail(MP_EINVAL, "mp_pool_map_async: out is NULL");
    int rc = map_start(pool, s, cb, err_cb, user, NULL, &a);
    if (rc == 0)
        *out = (mp_async *)a;
    return rc;
}

/* ---- parallel-for ---------------------------------------------------------- */

/* The for's indexes, end - begin, computed where it cannot overflow. */
static uint64_t for_span(const mp_for_spec *s)
{
    return (uint64_t)s->end - (uint64_t)s->begin;
}

/* The local pool's checks (mp_pool_for), and ctx NULL as for every task. */
static int check_for(const mp_for_spec *s)
{
    int rc = mp__pool_check_for(s);
    if (rc == 0 && s->ctx)
        return mp__fail(MP_EINVAL, "mp_pool_for: spec->ctx must be NULL on a distributed pool");
    return rc;
}

/* Puts the for's chunks on the stream: chunksize indexes each (0: a 32nd
 * of the span, as a map's chunks), packed as a map's are (pick_pack: at
 * most PACK_CHUNKS chunks to an entry, at least PACK_SPREAD entries),
 * MP__REDIS_POOL_BATCH entries per round trip. Every chunk carries the
 * initial partial acc. */
static int submit_for(mp__redis_pool *p, mp__redis_async *a, const mp_for_spec *s, const void *acc,
                      const char *spec, size_t spec_len)
{
    uint64_t span = for_span(s), chunk = s->chunksize ? s->chunksize : span / 32 + (span % 32 != 0);
    chunk = chunk > span ? span : chunk ? chunk : 1;
    uint64_t chunks = span / chunk + (span % chunk != 0), pack = chunks / PACK_SPREAD;
    pack = pack > PACK_CHUNKS ? PACK_CHUNKS : pack ? pack : 1;
    uint64_t step = chunk * pack; /* pack > 1 only when chunk <= span / 512 */
    a->step = chunk;
    mp__redis_chunk c[MP__REDIS_POOL_BATCH];
    int k = 0;
    for (uint64_t off = 0; off < span; off += step) {
        uint64_t n = span - off < step ? span - off : step;
        c[k++] = (mp__redis_chunk){.first = off,
                                   .lo = (int64_t)((uint64_t)s->begin + off),
                                   .span = n,
                                   .step = chunk,
                                   .cap = s->acc_size,
                                   .in = acc,
                                   .in_len = s->acc_size};
        if (k == MP__REDIS_POOL_BATCH || off + n >= span) {
            int rc = mp__redis_pool_submit(p, a, spec, spec_len, k, c);
            if (rc < 0)
                return rc;
            k = 0;
        }
    }
    return 0;
}

static int wait_done(mp__redis_async *a, const mp__deadline *d);

/* Starts the for (its result preset from acc_init, or zeroes). */
static int for_start(mp__redis_pool *p, const mp_for_spec *s, mp__redis_async **out)
{
    char spec[MP__MODULE_MAX + 128];
    size_t spec_len;
    _Alignas(16) unsigned char acc[MP_POOL_ACC_MAX] = {0};
    int rc = mp__redis_pool_for_spec(s->fn, spec, sizeof(spec), &spec_len);
    if (rc < 0)
        return rc;
    mp__redis_async *a = new_async(p, for_span(s), NULL, NULL, NULL);
    if (a == NULL)
        return MP_ENOMEM;
    a->is_map = a->is_for = true;
    a->n = (size_t)for_span(s);
    a->begin = s->begin;
    a->acc_size = s->acc_size;
    a->reduce = s->reduce;
    a->result = s->result;
    if (s->errors) {
        a->errs = s->errors;
        a->errs_cap = s->errors_cap;
    }
    a->n_errors_out = s->n_errors;
    if (s->acc_init && s->acc_size)
        memcpy(acc, s->acc_init, s->acc_size);
    if (s->acc_size)
        memcpy(s->result, acc, s->acc_size);
    rc = submit_for(p, a, s, acc, spec, spec_len);
    if (rc < 0 && a->pending == 0) {
        free_async(a);
        return rc;
    }
    if (rc < 0) /* part of it is on the stream: the for fails as a whole */
        mp__redis_async_abandon(a, rc);
    else if (a->pending == 0)
        mp__redis_async_finish(a);
    *out = a;
    return 0;
}

int mp__redis_pool_for(mp_pool *pool, const mp_for_spec *s, double timeout)
{
    mp__redis_pool *p;
    mp__deadline d;
    mp__redis_async *a;
    int rc = check_for(s);
    if (rc == 0)
        rc = mp__deadline_init(&d, timeout);
    if (rc == 0)
        rc = check_submit(pool, &p);
    if (rc == 0)
        rc = for_start(p, s, &a);
    if (rc < 0)
        return rc;
    rc = wait_done(a, &d);
    if (rc == 0) {
        rc = a->rc;
    } else if (!a->done && mp__redis_pool_withdraw(p, a) < 0) {
        /* Its result can no longer be given: no worker needs to run the
         * chunks left (best effort; their results are dropped anyway). */
        mp__debug("pool: could not withdraw the chunks of a parallel-for on %s", p->k_tasks);
    }
    free_async(a); /* late partials find no slot: result is not written */
    return rc;
}

/* ---- results -------------------------------------------------------------- */

/* Pumps until a is done or the deadline passes. */
static int wait_done(mp__redis_async *a, const mp__deadline *d)
{
    while (!a->done) {
        if (a->pool == NULL)
            return MP_ECLOSED;
        if (a->pool->owner != mp__self_pid())
            return MP_EPERM; /* a forked child would take its parent's results */
        int rc = mp__redis_pool_pump(a->pool, d, true);
        if (rc < 0 && !a->done)
            return rc;
    }
    return 0;
}

int mp__redis_async_wait(mp_async *pa, double timeout)
{
    mp__redis_async *a = (mp__redis_async *)pa;
    mp__deadline d;
    int rc = mp__deadline_init(&d, timeout);
    return rc < 0 ? rc : wait_done(a, &d);
}

int mp__redis_async_get(mp_async *pa, void *out, size_t out_cap, size_t *out_len, double timeout)
{
    mp__redis_async *a = (mp__redis_async *)pa;
    int rc = mp__redis_async_wait(pa, timeout);
    if (rc < 0)
        return rc;
    if (a->rc != 0)
        return a->rc;
    if (a->is_map)
        return 0;
    if (a->res_len > out_cap)
        return MP_EMSGSIZE; /* a smaller buffer than the one submitted */
    if (a->res_len)
        memcpy(out, a->res, a->res_len);
    if (out_len)
        *out_len = a->res_len;
    return 0;
}

bool mp__redis_async_ready(mp_async *pa)
{
    mp__redis_async *a = (mp__redis_async *)pa;
    if (!a->done && a->pool && a->pool->owner == mp__self_pid())
        mp__redis_pool_pump(a->pool, NULL, false);
    return a->done;
}

int mp__redis_async_successful(mp_async *pa)
{
    mp__redis_async *a = (mp__redis_async *)pa;
    if (!a->done)
        return MP_EBUSY;
    return a->rc == 0 ? 0 : 1;
}

int mp__redis_async_error(const mp_async *pa, size_t i, mp_task_error *out)
{
    const mp__redis_async *a = (const mp__redis_async *)pa;
    if (!out)
        return mp__fail(MP_EINVAL, "mp_async_error: out is NULL");
    if (!a->done)
        return MP_EBUSY;
    if (a->rc != 0 && a->nerr == 0 && i == 0) { /* abandoned as a whole */
        *out = (mp_task_error){.code = a->rc};
        return 0;
    }
    if (i >= a->nerr || i >= a->errs_cap)
        return MP_ERANGE;
    *out = a->errs[i];
    return 0;
}

void mp__redis_async_destroy(mp_async *pa)
{
    free_async((mp__redis_async *)pa);
}

int mp__redis_async_cancel(mp_async *pa)
{
    mp__redis_async *a = (mp__redis_async *)pa;
    mp__redis_pool *p = a->pool;
    if (a->done || p == NULL)
        return mp__fail(MP_EINVAL, "mp_async_cancel: the result is %s",
                        a->done ? "ready already" : "no longer tied to a pool");
    if (p->owner != mp__self_pid())
        return MP_EPERM;
    /* Accepted tasks go out first, so that every task of a has its entry
     * id (a failed send fails them: a is then done, its outcome stands). */
    int rc = mp__redis_pool_flush(p);
    if (a->done)
        return mp__fail(MP_EINVAL, "mp_async_cancel: the result is ready already");
    /* Then the server: if it cannot be reached, nothing changes. */
    if (rc == 0)
        rc = mp__redis_pool_withdraw(p, a);
    if (rc < 0)
        return rc;
    mp__redis_async_record(a, &(mp_task_error){.code = MP_ECANCELED});
    mp__redis_async_abandon(a, MP_ECANCELED); /* late results find no slot */
    a->rc = MP_ECANCELED;
    if (a->n_errors_out)
        *a->n_errors_out = a->nerr;
    if (a->err_cb)
        a->err_cb(pa, a->user);
    return 0;
}
