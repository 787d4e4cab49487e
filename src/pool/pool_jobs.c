/* The parent's side of the task ring: handing chunks out, collecting
 * finished slots, failing the tasks of dead or overdue workers, waiting. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "os/futex.h"
#include "heap/heap.h"
#include "pool/pool_internal.h"

int mp__pool_block_get(mp_pool *p, mp__block *b, size_t size)
{
    size_t best = MP__ARRAY_LEN(p->cache);
    for (size_t i = 0; i < MP__ARRAY_LEN(p->cache); i++) {
        if (p->cache[i].p && p->cache[i].size >= size &&
            (best == MP__ARRAY_LEN(p->cache) || p->cache[i].size < p->cache[best].size))
            best = i;
    }
    if (best < MP__ARRAY_LEN(p->cache)) {
        *b = p->cache[best];
        p->cache[best] = (mp__block){0};
        return 0;
    }
    void *mem = NULL;
    int rc = mp__heap_alloc(&mem, size);
    if (rc < 0)
        return rc;
    *b = (mp__block){mem, size};
    return 0;
}

void mp__pool_block_put(mp_pool *p, mp__block *b)
{
    /* Staging blocks are kept for the next job, so that repeated maps do
     * not go back to the heap each time; the smallest is dropped first. */
    if (!b->p)
        return;
    size_t small = 0;
    for (size_t i = 0; i < MP__ARRAY_LEN(p->cache); i++) {
        if (!p->cache[i].p) {
            small = i;
            break;
        }
        if (p->cache[i].size < p->cache[small].size)
            small = i;
    }
    if (!p->cache[small].p || p->cache[small].size < b->size) {
        mp__heap_free(p->cache[small].p);
        p->cache[small] = *b;
    } else {
        mp__heap_free(b->p);
    }
    *b = (mp__block){0};
}

void mp__pool_record_error(mp_async *a, const mp_task_error *e)
{
    if (a->nerr == 0)
        a->rc = e->code;
    if (a->nerr < a->errs_cap)
        a->errs[a->nerr] = *e;
    a->nerr++;
    if (a->it && !a->stream) /* a stream keeps its failures by buffer */
        mp__imap_on_error(a->it, e);
    mp__pool_bt_attach(a, e);
}

void mp__pool_add_job(mp_pool *p, mp_async *a)
{
    a->pool = p;
    a->all_prev = NULL;
    a->all_next = p->all;
    if (p->all)
        p->all->all_prev = a;
    p->all = a;
    a->prev = p->jobs_last;
    if (p->jobs_last)
        p->jobs_last->next = a;
    else
        p->jobs = a;
    p->jobs_last = a;
    p->njobs++;
    p->meter.total += a->n;
}

static void unlink_job(mp_pool *p, mp_async *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        p->jobs = a->next;
    if (a->next)
        a->next->prev = a->prev;
    else
        p->jobs_last = a->prev;
    a->next = a->prev = NULL;
    p->njobs--;
}

void mp__pool_finish(mp_pool *p, mp_async *a)
{
    unlink_job(p, a);
    a->done = true;
    if (a->n_errors_out)
        *a->n_errors_out = a->nerr;
    mp__pool_block_put(p, &a->st_in);
    mp__pool_block_put(p, &a->win);
    if (!a->it)
        mp__pool_block_put(p, &a->st_out); /* an iterator still reads it */
    if (a->job) {
        mp__heap_free(a->job);
        a->job = NULL;
    }
    if (a->detached) {
        mp__async_free(a);
        return;
    }
    mp__async_fd_done(a);
    if (a->nerr == 0 && a->cb)
        a->cb(a, a->user);
    else if (a->nerr > 0 && a->err_cb)
        a->err_cb(a, a->user);
}

static bool job_complete(const mp_async *a)
{
    return a->inflight == 0 && a->nretry == 0 && a->next_item >= a->n;
}

typedef mp__outcome outcome;

void mp__pool_item_error(const mp__pslot *s, uint64_t index, const outcome *o, mp_task_error *e)
{
    *e = (mp_task_error){.index = (size_t)index, .code = MP_ETASKFAILED, .task_code = s->fail_code};
    if (o->lost_code) {
        *e = (mp_task_error){.index = (size_t)index,
                             .code = o->lost_code,
                             .task_code = o->lost_code == MP_ETASKFAILED ? MP_ETIMEDOUT : 0,
                             .pid = o->pid,
                             .signal = o->sig};
        memcpy(e->message, o->msg, sizeof e->message);
    } else if (s->failed == 2 || s->failed == 3) {
        *e = (mp_task_error){.index = (size_t)index, .code = s->fail_code};
    } else {
        memcpy(e->message, s->msg, sizeof e->message);
        e->message[sizeof e->message - 1] = '\0'; /* written by a worker: trust no terminator */
    }
}

static void failed_item(mp_async *a, const mp__pslot *s, uint64_t index, const outcome *o)
{
    mp_task_error e;
    mp__pool_item_error(s, index, o, &e);
    mp__pool_record_error(a, &e);
}

void mp__pool_retry(mp_async *a, uint64_t first, uint64_t count)
{
    if (a->nretry == a->retry_cap) {
        size_t cap = a->retry_cap ? a->retry_cap * 2 : 8;
        mp__range *r = realloc(a->retry, cap * sizeof *r);
        if (!r)
            abort(); /* a few bytes in the parent: nothing sensible remains */
        a->retry = r;
        a->retry_cap = cap;
    }
    a->retry[a->nretry++] = (mp__range){first, count};
}

/* Faults in the pages of [p, p + len) with one call before they are
 * written: a fresh output array otherwise takes one page fault per page,
 * in the parent, one after the other, and that trap was a large part of
 * a staged map's cost. The pages are the caller's and are about to be
 * written; their contents do not change. Best effort (MADV_POPULATE_WRITE
 * is Linux 5.14). */
void mp__pool_prefault(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    uintptr_t lo = (uintptr_t)p & ~(uintptr_t)4095;
    uintptr_t hi = ((uintptr_t)p + len + 4095) & ~(uintptr_t)4095;
    if (len > 0)
        (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
#else
    (void)p, (void)len;
#endif
}

static void done_map(mp_pool *p, mp_async *a, const mp__pslot *s, const outcome *o)
{
    uint64_t d = atomic_load_explicit(&s->progress, memory_order_acquire);
    if (d > s->count)
        d = s->count;
    size_t os = a->job->out_size;
    /* Results staged in the window go to the caller's array now, before
     * the buffer is reused (a detached job has no array any more). */
    if (d > 0 && a->user_out) {
        mp__pool_prefault(a->user_out + s->first * os, d * os);
        memcpy(a->user_out + s->first * os, s->out, d * os);
    }
    if (d > 0 && a->it)
        mp__imap_on_items(a->it, s->first, d);
    a->items_done += d;
    p->meter.done += d;
    /* A task the worker could not even call fails every item of the slot. */
    uint64_t nfail = s->failed == 2 && !o->lost_code ? s->count - d : 1;
    for (uint64_t k = 0; k < nfail && d < s->count && (s->failed || o->lost_code); k++) {
        failed_item(a, s, s->first + d, o);
        p->meter.done++;
        d++;
    }
    if (d < s->count)
        mp__pool_retry(a, s->first + d, s->count - d);
}

static void done_apply(mp_pool *p, mp_async *a, const mp__pslot *s, const outcome *o)
{
    p->meter.done++;
    if (s->failed || o->lost_code) {
        failed_item(a, s, 0, o);
    } else if (s->out_len > s->out_cap) {
        /* The task claims more than it was given room for: its result
         * cannot be delivered, so the task failed. */
        mp__pool_record_error(a, &(mp_task_error){.code = MP_EMSGSIZE});
    } else if (!(a->res = malloc(s->out_len ? s->out_len : 1))) {
        mp__pool_record_error(a, &(mp_task_error){.code = MP_ENOMEM});
    } else {
        memcpy(a->res, s->out, s->out_len);
        a->res_len = s->out_len;
    }
    mp__pool_block_put(p, &a->st_in);
    mp__pool_block_put(p, &a->st_out);
}

static void collect_slot(mp_pool *p, mp__pslot *s, const outcome *o)
{
    mp_async *a = s->owner;
    if (a->cancelled) {
        p->meter.done += a->kind == MP__JOB_APPLY ? 1 : s->count; /* dropped */
    } else if (a->kind == MP__JOB_APPLY) {
        done_apply(p, a, s, o);
    } else if (a->kind == MP__JOB_MAP) {
        done_map(p, a, s, o);
    } else if (a->kind == MP__JOB_STREAM) {
        mp__stream_done(p, a, s, o); /* its buffer stays until its items are taken */
    } else {
        p->meter.done += s->count;
        if (s->failed || o->lost_code)
            failed_item(a, s, (uint64_t)(a->begin + (int64_t)s->first), o);
        else if (a->reduce)
            a->reduce(a->result, s->outbuf, a->rctx);
    }
    if (s->buf >= 0 && a->kind == MP__JOB_MAP)
        a->win_stack[a->win_nfree++] = (uint32_t)s->buf; /* its worker is done, or dead */
    s->buf = -1;
    atomic_store_explicit(&s->state, MP__SLOT_FREE, memory_order_relaxed);
    a->inflight--;
    if (job_complete(a))
        mp__pool_finish(p, a);
}

static void advance_low(mp_pool *p)
{
    while (p->low < p->tail && atomic_load_explicit(&p->shm->ring[p->low % MP__POOL_RING].state,
                                                    memory_order_relaxed) == MP__SLOT_FREE)
        p->low++;
}

static void collect(mp_pool *p)
{
    p->seen_seq = atomic_load(&p->shm->done_seq);
    uint64_t head = atomic_load_explicit(&p->shm->head, memory_order_acquire);
    static const outcome ok = {0};
    for (uint64_t t = p->low; t < head; t++) {
        mp__pslot *s = &p->shm->ring[t % MP__POOL_RING];
        if (atomic_load_explicit(&s->state, memory_order_acquire) == MP__SLOT_DONE)
            collect_slot(p, s, &ok);
    }
    advance_low(p);
}

void mp__pool_lost(mp_pool *p, uint32_t worker, pid_t pid, int sig, bool timed_out)
{
    outcome o = {timed_out ? MP_ETASKFAILED : MP_EWORKERLOST, pid, sig, ""};
    mp_task_error words = {.code = o.lost_code, .pid = pid, .signal = sig};
    mp__pool_describe_loss(p, worker, &words);
    memcpy(o.msg, words.message, sizeof o.msg);
    mp__pool_bt_take(p, worker, pid, sig);
    uint64_t head = atomic_load_explicit(&p->shm->head, memory_order_acquire);
    for (uint64_t t = p->low; t < head; t++) {
        mp__pslot *s = &p->shm->ring[t % MP__POOL_RING];
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == MP__SLOT_DONE)
            collect_slot(p, s, &(outcome){0});
        else if (st == MP__SLOT_RUNNING && s->worker == worker)
            collect_slot(p, s, &o);
    }
    advance_low(p);
    mp__pool_bt_drop(p);
}

static void check_timeouts(mp_pool *p)
{
    int64_t limit = p->shm->timeout_ns;
    if (limit <= 0)
        return;
    int64_t now = mp__now_ns();
    uint64_t head = atomic_load_explicit(&p->shm->head, memory_order_acquire);
    for (uint64_t t = p->low; t < head; t++) {
        mp__pslot *s = &p->shm->ring[t % MP__POOL_RING];
        if (atomic_load_explicit(&s->state, memory_order_acquire) != MP__SLOT_RUNNING)
            continue;
        int64_t st = atomic_load_explicit(&s->item_start_ns, memory_order_relaxed);
        uint32_t w = s->worker;
        if (st > 0 && now - st > limit && w < (uint32_t)p->nproc && p->workers[w] && !p->tkill[w]) {
            p->tkill[w] = 1;
            mp_process_send_signal(p->workers[w], SIGKILL);
        }
    }
}

/* Writes the common part of a slot; the caller fills the task. */
static mp__pslot *slot_for(mp_pool *p, mp_async *a)
{
    mp__pslot *s = &p->shm->ring[p->tail % MP__POOL_RING];
    s->worker = UINT32_MAX;
    s->failed = 0;
    s->fail_code = 0;
    s->buf = -1;
    s->job = a->job;
    s->owner = a;
    atomic_store_explicit(&s->progress, 0, memory_order_relaxed);
    atomic_store_explicit(&s->item_start_ns, 0, memory_order_relaxed);
    return s;
}

static void feed_apply(mp_pool *p, mp_async *a)
{
    mp__pslot *s = slot_for(p, a);
    s->fn = a->fn;
    s->ctx = a->ctx;
    s->in_len = a->in_len;
    s->out_cap = a->out_cap;
    s->out_len = 0;
    if (a->st_in.p) {
        s->in = a->st_in.p;
    } else {
        memcpy(s->inbuf, a->inl, a->in_len);
        s->in = s->inbuf;
    }
    s->out = a->st_out.p ? a->st_out.p : s->outbuf;
    a->next_item = 1;
}

/* Where a map chunk's items are read and written: in place (arrays in
 * the heap, thread workers, an iterator's results), or in a free buffer of
 * the window, into which the input is copied now; the results are copied
 * out of it when the chunk comes back (done_map). */
static void place_map(mp_async *a, mp__pslot *s, uint64_t first, uint64_t count)
{
    const mp__pjob *j = a->job;
    char *buf = NULL;
    if (a->win.p) {
        uint32_t b = a->win_stack[--a->win_nfree];
        s->buf = (int32_t)b;
        buf = (char *)a->win.p + (size_t)b * a->win_buf;
    }
    if (a->user_in) {
        memcpy(buf, a->user_in + first * j->in_size, count * j->in_size);
        s->in = buf;
    } else {
        s->in = (void *)(uintptr_t)(j->in + first * j->in_size);
    }
    if (a->win_buf > a->win_in) /* the buffer has an output part */
        s->out = buf + a->win_in;
    else
        s->out = j->out ? j->out + first * j->out_size : NULL;
}

/* Writes the job's next chunk into the slot at the tail; false: none (a
 * stream's source had no item). */
static bool feed_range(mp_pool *p, mp_async *a)
{
    uint64_t first, count;
    if (a->kind == MP__JOB_STREAM && a->nretry == 0)
        return mp__stream_fill(a, slot_for(p, a));
    if (a->nretry > 0) {
        first = a->retry[a->nretry - 1].first;
        count = a->retry[a->nretry - 1].count;
        a->nretry--;
    } else {
        first = a->next_item;
        count = a->n - first < a->chunk ? a->n - first : a->chunk;
        a->next_item += count;
    }
    mp__pslot *s = slot_for(p, a);
    s->first = first;
    s->count = count;
    if (a->kind == MP__JOB_MAP)
        place_map(a, s, first, count);
    else if (a->kind == MP__JOB_STREAM)
        mp__stream_place(a, s, first, count);
    return true;
}

/* Whether a chunk of the job can be handed out now: a staged map waits
 * for a free buffer of its window. */
static bool has_work(const mp_async *a)
{
    if (a->kind == MP__JOB_STREAM)
        return a->nretry > 0 || mp__stream_has_work(a);
    return (a->nretry > 0 || a->next_item < a->n) && (!a->win.p || a->win_nfree > 0);
}

/* Makes the slots written so far visible to the workers, waking sleepers. */
static void publish(mp_pool *p, uint64_t added)
{
    atomic_store_explicit(&p->shm->tail, p->tail, memory_order_release);
    atomic_fetch_add(&p->shm->work_seq, 1);
    if (atomic_load(&p->shm->work_waiters) > 0)
        mp__futex_wake(&p->shm->work_seq, added > (uint64_t)p->nproc ? p->nproc : (int)added);
}

static void feed(mp_pool *p)
{
    uint64_t added = 0;
    mp_async *next;
    for (mp_async *a = p->jobs; a; a = next) {
        next = a->next;
        while (has_work(a) && p->tail - p->low < MP__POOL_RING) {
            bool copies = a->user_in != NULL || a->kind == MP__JOB_STREAM;
            if (a->kind == MP__JOB_APPLY)
                feed_apply(p, a);
            else if (!feed_range(p, a))
                continue; /* has_work changed: the stream ended or waits */
            a->inflight++;
            atomic_store_explicit(&p->shm->ring[p->tail % MP__POOL_RING].state, MP__SLOT_QUEUED,
                                  memory_order_relaxed);
            p->tail++;
            added++;
            /* After copying a chunk of input, let the workers start on it
             * while the next one is copied. */
            if (copies) {
                publish(p, added);
                added = 0;
            }
        }
        if (a->kind == MP__JOB_STREAM) {
            mp__stream_pumped(a);
            if (job_complete(a)) /* the source ended with nothing left running */
                mp__pool_finish(p, a);
        }
    }
    if (added > 0)
        publish(p, added);
}

int mp__pool_pump(mp_pool *p, bool force_check)
{
    if (p->terminated)
        return (int)p->njobs;
    if (p->nwatch > 0 && mp__pool_fd_drain(p))
        force_check = true; /* a watched sentinel turned readable */
    collect(p);
    mp__pool_check_workers(p, force_check);
    check_timeouts(p);
    feed(p);
    mp__pool_progress(p, false);
    return (int)p->njobs;
}

/* Spins a few microseconds for a result before sleeping: when tasks are
 * short, a result is usually that close, and a parent that does not sleep
 * spares the worker a futex wake-up per task. */
static bool spin_for_result(mp_pool *p)
{
    int64_t until = mp__now_ns() + MP__POOL_SPIN_NS;
    for (int i = 1;; i++) {
        if (atomic_load_explicit(&p->shm->done_seq, memory_order_relaxed) != p->seen_seq)
            return true;
        if (i % 32 == 0 && mp__now_ns() > until)
            return false;
        mp__spin_pause(i);
    }
}

int mp__pool_wait_event(mp_pool *p, const mp__deadline *d)
{
    if (mp__deadline_expired(d))
        return MP_ETIMEDOUT;
    mp__pshm *shm = p->shm;
    if (p->tail != p->low && spin_for_result(p))
        return 0;
    atomic_store(&shm->parent_waiting, 1);
    uint32_t seq = atomic_load(&shm->done_seq);
    int rc = 0;
    if (seq == p->seen_seq) {
        /* Sleep in slices: a worker's death does not touch the futex word,
         * so the sentinels are polled between slices, and overdue tasks
         * are found at the next slice too. */
        mp__deadline slice = {mp__now_ns() + MP__POOL_SLICE_NS};
        if (d->ns >= 0 && d->ns < slice.ns)
            slice = *d;
        rc = mp__futex_wait_intr(&shm->done_seq, seq, &slice);
    }
    atomic_store(&shm->parent_waiting, 0);
    if (rc == MP_EINTR || rc == MP_ECANCELED)
        return rc;
    if (rc == MP_ETIMEDOUT) {
        mp__pool_check_workers(p, true);
        if (mp__deadline_expired(d))
            return MP_ETIMEDOUT;
    }
    return 0;
}

int mp__pool_submit_apply(mp_pool *p, mp_async *a, mp_task_fn fn, void *ctx, const void *in,
                          size_t in_len, size_t out_cap)
{
    a->kind = MP__JOB_APPLY;
    a->fn = fn;
    a->ctx = ctx;
    a->in_len = in_len;
    a->out_cap = out_cap;
    a->n = 1;
    int rc = 0;
    if (in_len > MP__POOL_INLINE)
        rc = mp__pool_block_get(p, &a->st_in, in_len);
    else if (in_len > 0)
        memcpy(a->inl, in, in_len);
    if (rc == 0 && in_len > MP__POOL_INLINE)
        memcpy(a->st_in.p, in, in_len);
    if (rc == 0 && out_cap > MP__POOL_INLINE)
        rc = mp__pool_block_get(p, &a->st_out, out_cap);
    if (rc < 0) {
        mp__pool_block_put(p, &a->st_in);
        return rc;
    }
    mp__pool_add_job(p, a);
    feed(p);
    return 0;
}

/* Ends a job at once with code, whatever it still had to run. */
static void end_job(mp_pool *p, mp_async *a, int code)
{
    if (!a->cancelled) /* a cancelled one keeps MP_ECANCELED */
        a->rc = code;
    a->nretry = 0;
    a->next_item = a->n;
    a->inflight = 0;
    mp__pool_finish(p, a);
}

void mp__pool_fail_all(mp_pool *p, int code)
{
    while (p->jobs) {
        mp_async *a = p->jobs;
        a->cb = a->err_cb = NULL; /* nothing ran to completion: no callback */
        end_job(p, a, code);
    }
}

void mp__pool_fail_broken(mp_pool *p)
{
    const mp_pool_broken_info *b = &p->broken_info;
    mp_task_error e = {
        .code = MP_EBROKENPOOL, .task_code = b->exitcode, .pid = b->pid, .signal = b->signal};
    while (p->jobs) {
        mp_async *a = p->jobs;
        /* One failure for all the unfinished items; not given to an
         * iterator item by item (it answers MP_EBROKENPOOL for each). The
         * error callback runs: the job did end, in failure. */
        if (a->nerr < a->errs_cap && !a->cancelled)
            a->errs[a->nerr] = e;
        a->nerr += !a->cancelled;
        end_job(p, a, MP_EBROKENPOOL);
    }
}

/* Marks the slots of a still queued on the ring (not claimed: a claim
 * takes the lock) so that the worker that claims them skips them. */
static void skip_queued(mp_pool *p, mp_async *a)
{
    mp__pshm *shm = p->shm;
    int rc = mp__robust_mutex_lock(&shm->mu, NULL);
    if (rc == MP_EOWNERDEAD)
        mp__pool_repair(shm);
    else if (rc < 0)
        return; /* the lock is unusable: they run, and their results are dropped */
    uint64_t head = atomic_load_explicit(&shm->head, memory_order_relaxed);
    for (uint64_t t = head; t < p->tail; t++) {
        mp__pslot *s = &shm->ring[t % MP__POOL_RING];
        if (s->owner == a &&
            atomic_load_explicit(&s->state, memory_order_relaxed) == MP__SLOT_QUEUED)
            s->failed = MP__SLOT_SKIP;
    }
    mp__robust_mutex_unlock(&shm->mu);
}

/* The job ends for its owner now, with MP_ECANCELED: its error callback
 * runs, nothing more is handed out, its queued slots are skipped, and
 * the results of its running ones are dropped when they come back; it
 * leaves the pool's jobs then (mp__pool_finish). */
void mp__pool_cancel(mp_pool *p, mp_async *a)
{
    a->nretry = 0;
    a->next_item = a->n;
    if (a->inflight > 0)
        skip_queued(p, a);
    mp_task_error e = {.code = MP_ECANCELED};
    if (a->nerr < a->errs_cap)
        a->errs[a->nerr] = e;
    a->nerr++;
    a->rc = MP_ECANCELED;
    a->cancelled = true;
    if (a->n_errors_out)
        *a->n_errors_out = a->nerr;
    mp_async_cb err_cb = a->err_cb;
    /* Nothing more reaches the caller's memory or callbacks. */
    a->cb = a->err_cb = NULL;
    a->n_errors_out = NULL;
    a->user_out = NULL;
    a->reduce = NULL;
    if (a->inflight == 0)
        mp__pool_finish(p, a);
    else
        mp__async_fd_done(a); /* ready for its owner now */
    if (err_cb)
        err_cb(a, a->user);
}
