/* Streaming maps (mp_pool_imap_stream): items of any size, read lazily
 * from the caller's source, through a window of buffers in the shared
 * heap that bounds how many are read and not yet taken.
 *
 * A buffer holds one chunk: up to `chunk` input records of in_rec bytes
 * each, then as many result records of out_rec bytes. A record is its
 * length (a uint64_t, padded to 16 bytes so that the bytes after it are
 * aligned like a malloc'd block) and then its bytes. The parent fills a
 * free buffer from the source when it hands a chunk out (fill), workers
 * run it in place (pool/pool_worker.c, run_stream), and the buffer stays
 * with its items until every one of them has been taken by the iterator
 * (or dropped, once the iterator is gone): a dead worker's unfinished
 * items run again from the same buffer. Items are numbered in the order
 * they were read, and buffers are filled in that order, so an ordered
 * iterator finds its next item in the oldest buffer. Everything here runs
 * in the parent, during the pool's calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "pool/pool_internal.h"

#define REC_HEAD     16                /* a record's length, padded */
#define CHUNK_BYTES  (64 * 1024)       /* automatic chunks: items and results per chunk */
#define CHUNK_ITEMS  64                /* automatic chunks: at most this many items */
#define WINDOW_BYTES ((size_t)1 << 30) /* the most a window may reserve */
#define MSG_MAX      160

enum { ST_RUNNING = 0, ST_OK, ST_FAILED, ST_TAKEN };

typedef struct sbuf {
    bool used;
    uint32_t count;      /* items read into it */
    uint32_t unfinished; /* items neither done nor failed */
    uint32_t untaken;    /* items not yet given to the iterator */
    uint64_t first;      /* index of its first item */
    mp_task_error *errs; /* its failed items (kept until taken) */
    uint32_t nerrs, errs_cap;
} sbuf;

/* Unordered: items that finished, in order of arrival. */
typedef struct entry {
    uint64_t first;
    uint32_t count, buf;
} entry;

struct mp__stream {
    mp_item_source_fn source;
    void *user;
    size_t item_max, out_max;
    size_t in_rec, out_rec;   /* record strides (out_rec 0: results not kept) */
    size_t in_area, buf_size; /* a buffer's input part, a whole buffer */
    uint32_t chunk, nbuf;
    bool ordered;
    mp__block blk; /* nbuf buffers */
    sbuf *bufs;
    uint32_t *free_stack, nfree;
    uint32_t *order, order_head, order_len; /* ordered: buffers in use, oldest first */
    unsigned char *status;                  /* chunk per buffer: ST_* */
    entry *fifo;                            /* unordered: a ring of nbuf * chunk */
    size_t fifo_head, fifo_len;
    bool eof;      /* the source will not be called again */
    bool again;    /* the source had no item: ask again at the next pump */
    bool detached; /* the iterator is gone: results are dropped */
    int src_err;   /* the code the source ended the stream with, 0: none */
    bool src_err_given;
    char src_msg[MSG_MAX];
};

static size_t round16(size_t x)
{
    return (x + 15) & ~(size_t)15;
}

static char *buf_at(const mp__stream *st, uint32_t b)
{
    return (char *)st->blk.p + (size_t)b * st->buf_size;
}

static char *result_rec(const mp__stream *st, uint32_t b, uint64_t k)
{
    return buf_at(st, b) + st->in_area + k * st->out_rec;
}

bool mp__stream_has_work(const mp_async *a)
{
    const mp__stream *st = a->stream;
    return !st->eof && !st->again && st->nfree > 0;
}

void mp__stream_pumped(mp_async *a)
{
    a->stream->again = false;
}

/* The source ended the stream with rc (not 1, 0 or MP_EAGAIN). */
static void source_failed(mp__stream *st, int rc, size_t len)
{
    st->eof = true;
    if (rc == 1) {
        st->src_err = MP_EMSGSIZE;
        snprintf(st->src_msg, sizeof st->src_msg,
                 "mp_pool_imap_stream: the source gave an item of %zu bytes "
                 "(spec->item_max is %zu)",
                 len, st->item_max);
    } else if (rc > 0) {
        st->src_err = MP_EINVAL;
        snprintf(st->src_msg, sizeof st->src_msg,
                 "mp_pool_imap_stream: the source returned %d (1, 0 or a negative code)", rc);
    } else {
        st->src_err = rc;
        snprintf(st->src_msg, sizeof st->src_msg,
                 "mp_pool_imap_stream: the source ended the stream with %d", rc);
    }
}

bool mp__stream_fill(mp_async *a, mp__pslot *s)
{
    mp__stream *st = a->stream;
    uint32_t b = st->free_stack[st->nfree - 1];
    char *base = buf_at(st, b);
    uint32_t n = 0;
    while (n < st->chunk) {
        char *rec = base + (size_t)n * st->in_rec;
        size_t len = 0;
        int rc = st->source(rec + REC_HEAD, st->item_max, &len, st->user);
        if (rc == 1 && len <= st->item_max) {
            uint64_t l = len;
            memcpy(rec, &l, sizeof l);
            n++;
        } else if (rc == MP_EAGAIN) {
            st->again = true;
            break;
        } else if (rc == 0) {
            st->eof = true;
            break;
        } else {
            source_failed(st, rc, len);
            break;
        }
    }
    if (n > 0) {
        st->nfree--;
        st->bufs[b] =
            (sbuf){.used = true, .count = n, .unfinished = n, .untaken = n, .first = a->next_item};
        memset(st->status + (size_t)b * st->chunk, ST_RUNNING, n);
        if (st->ordered)
            st->order[(st->order_head + st->order_len++) % st->nbuf] = b;
        s->first = a->next_item;
        s->count = n;
        s->buf = (int32_t)b;
        s->in = base;
        s->out = st->out_rec ? base + st->in_area : NULL;
        a->next_item += n;
        a->pool->meter.total += n;
    }
    if (st->eof)
        a->n = a->next_item; /* the job now knows its length */
    return n > 0;
}

void mp__stream_place(mp_async *a, mp__pslot *s, uint64_t first, uint64_t count)
{
    (void)count;
    mp__stream *st = a->stream;
    for (uint32_t b = 0; b < st->nbuf; b++) {
        const sbuf *sb = &st->bufs[b];
        if (sb->used && first >= sb->first && first < sb->first + sb->count) {
            uint64_t k = first - sb->first;
            s->buf = (int32_t)b;
            s->in = buf_at(st, b) + k * st->in_rec;
            s->out = st->out_rec ? result_rec(st, b, k) : NULL;
            return;
        }
    }
    abort(); /* a retried range always lies in a buffer in use */
}

/* The buffer goes back to the free ones once all its items are finished
 * and taken (or nobody will take them). */
static void maybe_release(mp__stream *st, uint32_t b)
{
    sbuf *sb = &st->bufs[b];
    if (!sb->used || sb->unfinished > 0 || (sb->untaken > 0 && !st->detached))
        return;
    free(sb->errs);
    *sb = (sbuf){0};
    st->free_stack[st->nfree++] = b;
}

static void fifo_push(mp__stream *st, uint64_t first, uint32_t count, uint32_t b)
{
    size_t cap = (size_t)st->nbuf * st->chunk; /* one entry holds at least one item */
    st->fifo[(st->fifo_head + st->fifo_len++) % cap] = (entry){first, count, b};
}

static void keep_failure(mp__stream *st, uint32_t b, const mp_task_error *e)
{
    sbuf *sb = &st->bufs[b];
    if (sb->nerrs == sb->errs_cap) {
        uint32_t cap = sb->errs_cap ? sb->errs_cap * 2 : 4;
        mp_task_error *n = realloc(sb->errs, cap * sizeof *n);
        if (!n)
            abort(); /* a few bytes in the parent: nothing sensible remains */
        sb->errs = n;
        sb->errs_cap = cap;
    }
    sb->errs[sb->nerrs++] = *e;
}

void mp__stream_done(mp_pool *p, mp_async *a, const mp__pslot *s, const mp__outcome *o)
{
    mp__stream *st = a->stream;
    uint32_t b = (uint32_t)s->buf;
    sbuf *sb = &st->bufs[b];
    uint64_t d = atomic_load_explicit(&s->progress, memory_order_acquire);
    if (d > s->count)
        d = s->count;
    uint64_t k0 = s->first - sb->first;
    memset(st->status + (size_t)b * st->chunk + k0, ST_OK, d);
    sb->unfinished -= (uint32_t)d;
    a->items_done += d;
    p->meter.done += d;
    if (d > 0 && !st->ordered && !st->detached)
        fifo_push(st, s->first, (uint32_t)d, b);
    /* As in a map: a task the worker could not call fails every item. */
    uint64_t nfail = s->failed == 2 && !o->lost_code ? s->count - d : 1;
    for (uint64_t k = 0; k < nfail && d < s->count && (s->failed || o->lost_code); k++) {
        mp_task_error e;
        mp__pool_item_error(s, s->first + d, o, &e);
        mp__pool_record_error(a, &e);
        if (!st->detached) {
            keep_failure(st, b, &e);
            if (!st->ordered)
                fifo_push(st, s->first + d, 1, b);
        }
        st->status[(size_t)b * st->chunk + k0 + d] = ST_FAILED;
        sb->unfinished--;
        p->meter.done++;
        d++;
    }
    if (d < s->count)
        mp__pool_retry(a, s->first + d, s->count - d);
    maybe_release(st, b);
    if (a->it)
        mp__imap_fd_update(a->it);
}

void mp__stream_detach(mp_async *a)
{
    mp__stream *st = a->stream;
    st->detached = true;
    st->eof = true;
    a->n = a->next_item;
    for (uint32_t b = 0; b < st->nbuf; b++)
        maybe_release(st, b);
    if (a->inflight == 0 && a->nretry == 0 && !a->done)
        mp__pool_finish(a->pool, a); /* frees a: it is detached */
}

/* Frees st and what it holds; its window goes back to p's blocks (p
 * NULL: the pool is gone, to the heap). Any part may be missing. */
static void stream_release(mp_pool *p, mp__stream *st)
{
    for (uint32_t b = 0; st->bufs && b < st->nbuf; b++)
        free(st->bufs[b].errs);
    if (p)
        mp__pool_block_put(p, &st->blk);
    else
        mp__heap_free(st->blk.p);
    free(st->bufs);
    free(st->free_stack);
    free(st->order);
    free(st->status);
    free(st->fifo);
    free(st);
}

void mp__stream_free(mp_async *a)
{
    if (a->stream)
        stream_release(a->pool, a->stream);
    a->stream = NULL;
}

/* What the iterator gets when no item is there to take: the end (the
 * source's own code first, once), the code of a job that ended early
 * (terminated, broken), or MP_EAGAIN. peek: do not consume the source's
 * code. */
static int nothing_now(const mp_imap *it, bool peek)
{
    const mp_async *a = it->a;
    mp__stream *st = a->stream;
    if (st->eof && it->given == a->next_item) {
        if (st->src_err && !st->src_err_given) {
            if (peek)
                return st->src_err;
            st->src_err_given = true;
            return mp__fail(st->src_err, "%s", st->src_msg);
        }
        return MP_EEOF;
    }
    if (a->done) /* ended before its items: MP_ECLOSED or MP_EBROKENPOOL */
        return a->rc ? a->rc : MP_ECLOSED;
    return MP_EAGAIN;
}

static const mp_task_error *failure_of(const sbuf *sb, uint64_t index)
{
    for (uint32_t i = 0; i < sb->nerrs; i++)
        if (sb->errs[i].index == index)
            return &sb->errs[i];
    return NULL;
}

/* Gives item k of buffer b (finished), or MP_EMSGSIZE leaving it there. */
static int give(mp_imap *it, uint32_t b, uint64_t k, void *buf, size_t cap, size_t *len,
                size_t *index, mp_task_error *err)
{
    mp__stream *st = it->a->stream;
    sbuf *sb = &st->bufs[b];
    unsigned char *state = &st->status[(size_t)b * st->chunk + k];
    uint64_t i = sb->first + k;
    int rc = 0;
    if (*state == ST_FAILED) {
        const mp_task_error *e = failure_of(sb, i);
        rc = e ? e->code : MP_ETASKFAILED;
        if (e && err)
            *err = *e;
        if (e)
            (void)mp__pool_detail(e);
        if (len)
            *len = 0;
    } else {
        size_t rl = 0;
        const char *rec = st->out_rec ? result_rec(st, b, k) : NULL;
        if (rec) {
            uint64_t l;
            memcpy(&l, rec, sizeof l);
            rl = l < st->out_max ? (size_t)l : st->out_max; /* written by a worker */
        }
        if (len)
            *len = rl;
        if (buf && rl > cap)
            return mp__fail(MP_EMSGSIZE,
                            "mp_imap_next_sized: item %llu's result is %zu bytes, cap %zu",
                            (unsigned long long)i, rl, cap);
        if (buf && rl > 0)
            memcpy(buf, rec + REC_HEAD, rl);
    }
    if (index)
        *index = (size_t)i;
    *state = ST_TAKEN;
    sb->untaken--;
    it->given++;
    return rc;
}

int mp__stream_take(mp_imap *it, void *buf, size_t cap, size_t *len, size_t *index,
                    mp_task_error *err)
{
    mp__stream *st = it->a->stream;
    if (st->ordered) {
        if (st->order_len == 0)
            return nothing_now(it, false);
        uint32_t b = st->order[st->order_head];
        const sbuf *sb = &st->bufs[b];
        uint64_t k = it->next - sb->first;
        if (st->status[(size_t)b * st->chunk + k] == ST_RUNNING) {
            int rc = nothing_now(it, false);
            return rc == MP_EEOF ? MP_EAGAIN : rc; /* items remain: not the end */
        }
        int rc = give(it, b, k, buf, cap, len, index, err);
        if (rc == MP_EMSGSIZE && st->status[(size_t)b * st->chunk + k] != ST_TAKEN)
            return rc;
        it->next++;
        if (k + 1 == sb->count) {
            st->order_head = (st->order_head + 1) % st->nbuf;
            st->order_len--;
        }
        maybe_release(st, b);
        return rc;
    }
    if (st->fifo_len == 0)
        return nothing_now(it, false);
    size_t cap_f = (size_t)st->nbuf * st->chunk;
    entry *e = &st->fifo[st->fifo_head];
    uint32_t b = e->buf;
    uint64_t k = e->first - st->bufs[b].first;
    int rc = give(it, b, k, buf, cap, len, index, err);
    if (rc == MP_EMSGSIZE && st->status[(size_t)b * st->chunk + k] != ST_TAKEN)
        return rc;
    e->first++;
    if (--e->count == 0) {
        st->fifo_head = (st->fifo_head + 1) % cap_f;
        st->fifo_len--;
    }
    maybe_release(st, b);
    return rc;
}

bool mp__stream_has_next(const mp_imap *it)
{
    const mp__stream *st = it->a->stream;
    if (st->ordered && st->order_len > 0) {
        uint32_t b = st->order[st->order_head];
        uint64_t k = it->next - st->bufs[b].first;
        if (st->status[(size_t)b * st->chunk + k] != ST_RUNNING)
            return true;
        return it->a->done;
    }
    if (!st->ordered && st->fifo_len > 0)
        return true;
    return nothing_now(it, true) != MP_EAGAIN;
}

/* ---- starting a stream -------------------------------------------------*/

static int check_spec(const mp_stream_spec *s)
{
    const char *f = "mp_pool_imap_stream";
    if (!s->fn)
        return mp__fail(MP_EINVAL, "%s: spec->fn is NULL", f);
    if (!s->source)
        return mp__fail(MP_EINVAL, "%s: spec->source is NULL", f);
    if (s->item_max == 0 || s->item_max > MP_STREAM_ITEM_MAX)
        return mp__fail(MP_EINVAL, "%s: spec->item_max is %zu (1 to MP_STREAM_ITEM_MAX, %zu)", f,
                        s->item_max, MP_STREAM_ITEM_MAX);
    if (s->out_max > MP_STREAM_ITEM_MAX)
        return mp__fail(MP_EINVAL, "%s: spec->out_max is %zu (at most MP_STREAM_ITEM_MAX, %zu)", f,
                        s->out_max, MP_STREAM_ITEM_MAX);
    return 0;
}

/* Sizes the chunks and the window; MP_EINVAL when the window would
 * reserve more than WINDOW_BYTES. */
static int size_window(mp__stream *st, const mp_pool *p, const mp_stream_spec *s)
{
    st->in_rec = REC_HEAD + round16(s->item_max);
    st->out_rec = s->out_max ? REC_HEAD + round16(s->out_max) : 0;
    size_t per_item = st->in_rec + st->out_rec;
    size_t chunk = s->chunksize;
    if (chunk == 0) {
        chunk = CHUNK_BYTES / per_item;
        chunk = chunk < 1 ? 1 : chunk > CHUNK_ITEMS ? CHUNK_ITEMS : chunk;
    }
    size_t window = s->window ? s->window : chunk * 2 * ((size_t)p->nproc + 1);
    size_t nbuf = window / chunk + (window % chunk ? 1 : 0);
    if (nbuf > MP__POOL_RING)
        nbuf = MP__POOL_RING;
    size_t total;
    if (chunk > UINT32_MAX || __builtin_mul_overflow(chunk, per_item, &st->buf_size) ||
        __builtin_mul_overflow(st->buf_size, nbuf, &total) || total > WINDOW_BYTES)
        return mp__fail(MP_EINVAL,
                        "mp_pool_imap_stream: a window of %zu tasks of %zu items of up to %zu "
                        "bytes and results of up to %zu bytes exceeds 1 GiB (lower "
                        "spec->window, spec->chunksize, item_max or out_max)",
                        nbuf, chunk, s->item_max, s->out_max);
    st->chunk = (uint32_t)chunk;
    st->nbuf = (uint32_t)nbuf;
    st->in_area = chunk * st->in_rec;
    return 0;
}

static int stream_new(mp_pool *p, const mp_stream_spec *s, bool ordered, mp__stream **out)
{
    mp__stream *st = calloc(1, sizeof *st);
    if (!st)
        return MP_ENOMEM;
    st->source = s->source;
    st->user = s->source_user;
    st->item_max = s->item_max;
    st->out_max = s->out_max;
    st->ordered = ordered;
    int rc = size_window(st, p, s);
    if (rc < 0) {
        stream_release(p, st);
        return rc;
    }
    size_t items = (size_t)st->nbuf * st->chunk;
    st->bufs = calloc(st->nbuf, sizeof *st->bufs);
    st->free_stack = malloc(st->nbuf * sizeof *st->free_stack);
    st->order = malloc(st->nbuf * sizeof *st->order);
    st->status = malloc(items);
    st->fifo = ordered ? NULL : malloc(items * sizeof *st->fifo);
    if (!st->bufs || !st->free_stack || !st->order || !st->status || (!ordered && !st->fifo))
        rc = MP_ENOMEM;
    if (rc == 0)
        rc = mp__pool_block_get(p, &st->blk, (size_t)st->nbuf * st->buf_size);
    if (rc < 0) {
        stream_release(p, st);
        return rc;
    }
    for (uint32_t i = 0; i < st->nbuf; i++)
        st->free_stack[i] = st->nbuf - 1 - i; /* buffer 0 on top */
    st->nfree = st->nbuf;
    *out = st;
    return 0;
}

int mp_pool_imap_stream(mp_pool *p, const mp_stream_spec *spec, bool ordered, mp_imap **out)
{
    const char *f = "mp_pool_imap_stream";
    if (!p || !spec || !out)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", f, !p ? "p" : !spec ? "spec" : "out");
    if (mp__pool_backend_of(p))
        return mp__fail(MP_ENOSYS,
                        "%s: a distributed pool has no streaming map (its items are sent "
                        "with the map: use mp_pool_imap over a batch of the stream)",
                        f);
    int rc = mp__pool_check_submit(p);
    if (rc == 0)
        rc = check_spec(spec);
    if (rc == 0)
        rc = mp__pool_check_ptrs(p, (const void *)(uintptr_t)spec->fn, spec->ctx, f, true);
    if (rc < 0)
        return rc;
    mp_imap *it = calloc(1, sizeof *it);
    mp_async *a = mp__async_new();
    void *jm = NULL;
    mp__stream *st = NULL;
    if (!it || !a) {
        rc = MP_ENOMEM;
        goto fail;
    }
    rc = stream_new(p, spec, ordered, &st);
    if (rc == 0)
        rc = mp__heap_alloc(&jm, sizeof(mp__pjob));
    if (rc < 0)
        goto fail;
    a->job = jm;
    *a->job = (mp__pjob){.kind = MP__JOB_STREAM,
                         .fn = spec->fn,
                         .ctx = spec->ctx,
                         .in_size = st->in_rec,
                         .out_size = st->out_rec,
                         .out_cap = spec->out_max};
    a->kind = MP__JOB_STREAM;
    a->stream = st;
    a->it = it;
    it->head.wait.wait = &mp__pool_imap_wait_ops;
    it->ordered = ordered;
    it->out_size = spec->out_max;
    it->a = a;
    a->n = 0; /* counted into the progress as they are read */
    mp__pool_add_job(p, a);
    a->n = UINT64_MAX; /* unknown until the source ends */
    mp__pool_pump(p, false);
    *out = it;
    return 0;
fail:
    if (st)
        stream_release(p, st);
    mp__heap_free(jm);
    free(a);
    free(it);
    return rc;
}
