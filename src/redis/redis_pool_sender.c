/* The distributed pool client's sender: apply_async tasks accepted while
 * others are outstanding are held and go out together, one pipelined
 * round trip per batch. The owner thread sends a batch when it is full
 * and at the start of every other pool call; a thread of the pool sends
 * it MP__REDIS_POOL_UNSENT_NS after the oldest was accepted, so that a
 * held task never waits for the owner's next call. One batch is in
 * flight at a time, whoever sends it, so the stream keeps the order in
 * which tasks were accepted.
 *
 * The thread touches the held copies, the connection (which has a lock of
 * its own) and what never changes in the pool (its keys); the slots stay
 * the owner's: what the thread sent, or failed to send, is handed back as
 * an mp__redis_sent and recorded by the owner at its next flush, so
 * results, failures and callbacks all happen in the owner's thread. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "os/fork_gate.h"
#include "redis/redis_pool.h"

static void lock(mp__redis_sender *s)
{
    pthread_mutex_lock(&s->mu);
}

static void unlock(mp__redis_sender *s)
{
    pthread_mutex_unlock(&s->mu);
}

/* Waits on s->cv until at (mp__now_ns clock), or for ever when at < 0. */
static void wait_until(mp__redis_sender *s, int64_t at)
{
    if (at < 0) {
        pthread_cond_wait(&s->cv, &s->mu);
        return;
    }
    struct timespec ts = {.tv_sec = (time_t)(at / 1000000000), .tv_nsec = (long)(at % 1000000000)};
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* Under mu: moves the held tasks into the batch (k of them) and marks a
 * batch in flight. */
typedef struct batch {
    int k;
    uint64_t ids[MP__REDIS_POOL_BATCH];
    const char *fns[MP__REDIS_POOL_BATCH];
    size_t fn_lens[MP__REDIS_POOL_BATCH];
    mp__redis_chunk c[MP__REDIS_POOL_BATCH];
    char *bufs[MP__REDIS_POOL_BATCH];
} batch;

static void take(mp__redis_sender *s, batch *b)
{
    b->k = s->n;
    s->busy_n = s->n;
    s->busy_bytes = s->bytes;
    for (int i = 0; i < s->n; i++) {
        const mp__redis_held *h = &s->held[i];
        b->ids[i] = h->id;
        b->fns[i] = h->buf;
        b->fn_lens[i] = h->fn_len;
        b->c[i] = (mp__redis_chunk){
            .n = 1, .isz = h->in_len, .cap = h->cap, .in = h->buf + h->fn_len, .in_len = h->in_len};
        b->bufs[i] = h->buf;
    }
    s->n = 0;
    s->bytes = 0;
    s->busy = b->k > 0;
}

static void free_bufs(batch *b)
{
    for (int i = 0; i < b->k; i++)
        free(b->bufs[i]);
}

static void *sender_main(void *arg)
{
    mp__redis_pool *p = arg;
    mp__redis_sender *s = &p->tx;
    int64_t next_tick = s->tick ? mp__now_ns() + s->tick_ns : -1;
    lock(s);
    s->alive = true;
    pthread_cond_broadcast(&s->cv);
    while (!s->stop) {
        if (next_tick >= 0 && mp__now_ns() >= next_tick) {
            unlock(s);
            mp__fork_gate_enter();
            s->tick(p);
            mp__fork_gate_leave();
            next_tick = mp__now_ns() + s->tick_ns;
            lock(s);
            continue;
        }
        if (s->n == 0 || s->busy) {
            wait_until(s, next_tick);
            continue;
        }
        int64_t due = s->since + MP__REDIS_POOL_UNSENT_NS;
        if (mp__now_ns() < due) {
            wait_until(s, next_tick >= 0 && next_tick < due ? next_tick : due);
            continue;
        }
        /* The record first: without memory the owner sends them. */
        unlock(s);
        mp__fork_gate_enter();
        mp__redis_sent *r = malloc(sizeof(*r));
        lock(s);
        if (r == NULL || s->n == 0 || s->busy) { /* or the owner sent them meanwhile */
            mp__fork_gate_leave();
            free(r);
            if (r == NULL)
                wait_until(s, mp__now_ns() + MP__REDIS_POOL_UNSENT_NS);
            continue;
        }
        batch b;
        take(s, &b);
        unlock(s);
        r->k = b.k;
        memcpy(r->ids, b.ids, (size_t)b.k * sizeof(b.ids[0]));
        r->rc = mp__redis_pool_send(p, b.k, b.ids, b.fns, b.fn_lens, b.c, r->eids);
        free_bufs(&b);
        mp__fork_gate_leave();
        lock(s);
        r->next = s->sent;
        s->sent = r;
        s->busy = false;
        s->busy_n = 0;
        s->busy_bytes = 0;
        pthread_cond_broadcast(&s->cv);
    }
    unlock(s);
    return NULL;
}

void mp__redis_sender_start(mp__redis_pool *p)
{
    mp__redis_sender *s = &p->tx;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    s->running = pthread_create(&s->thread, NULL, sender_main, p) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!s->running) {
        mp__debug("pool: no sender thread (%s): each apply_async is sent at once", strerror(errno));
        return;
    }
    /* Until the thread runs its own code, its start-up may allocate (a
     * sanitizer's runtime does): a fork the program makes right after
     * creating the pool must not find it there (os/fork_gate.h). */
    lock(s);
    while (!s->alive)
        pthread_cond_wait(&s->cv, &s->mu);
    unlock(s);
}

/* Owner: records the batches the thread sent, oldest first. */
static void record_sent(mp__redis_pool *p, mp__redis_sent *r)
{
    mp__redis_sent *order = NULL;
    while (r) { /* reverse: the list is newest first */
        mp__redis_sent *next = r->next;
        r->next = order;
        order = r;
        r = next;
    }
    while (order) {
        mp__redis_sent *next = order->next;
        mp__redis_pool_sent(p, order->k, order->ids, order->eids, order->rc);
        free(order);
        order = next;
    }
}

int mp__redis_pool_flush(mp__redis_pool *p)
{
    mp__redis_sender *s = &p->tx;
    batch b;
    lock(s);
    while (s->busy)
        wait_until(s, -1);
    take(s, &b);
    mp__redis_sent *sent = s->sent;
    s->sent = NULL;
    unlock(s);
    record_sent(p, sent);
    if (b.k == 0)
        return 0;
    mp__redis_eid eids[MP__REDIS_POOL_BATCH];
    int rc = mp__redis_pool_send(p, b.k, b.ids, b.fns, b.fn_lens, b.c, eids);
    free_bufs(&b);
    lock(s);
    s->busy = false;
    s->busy_n = 0;
    s->busy_bytes = 0;
    pthread_cond_broadcast(&s->cv);
    unlock(s);
    /* Accepted tasks are never lost silently: on failure their results
     * fail (a callback may submit: the queue is already empty). */
    mp__redis_pool_sent(p, b.k, b.ids, eids, rc);
    return rc;
}

int mp__redis_pool_enqueue(mp__redis_pool *p, mp__redis_async *a, const char *fn, size_t fn_len,
                           const mp__redis_chunk *c)
{
    mp__redis_sender *s = &p->tx;
    /* Nothing else outstanding (a itself is counted), too large to hold,
     * or no thread to send it: it goes out now, without waiting for
     * company (after the held ones: mp__redis_pool_submit flushes). */
    lock(s);
    bool now = (p->unfinished <= 1 && s->n == 0 && !s->busy) || !s->running ||
               c->in_len > MP__REDIS_POOL_UNSENT_BYTES;
    /* The bounds count the batch in flight too: what is not on the
     * stream is at most MP__REDIS_POOL_BATCH tasks and
     * MP__REDIS_POOL_UNSENT_BYTES of input. */
    bool full = s->n + s->busy_n >= MP__REDIS_POOL_BATCH ||
                s->bytes + s->busy_bytes + c->in_len > MP__REDIS_POOL_UNSENT_BYTES;
    unlock(s);
    if (now)
        return mp__redis_pool_submit(p, a, fn, fn_len, 1, c);
    int rc = full ? mp__redis_pool_flush(p) : 0;
    if (rc == 0)
        rc = mp__redis_pool_reserve(p, 1);
    char *buf = rc == 0 ? malloc(fn_len + c->in_len + 1) : NULL;
    if (rc < 0 || buf == NULL)
        return rc < 0 ? rc : MP_ENOMEM;
    memcpy(buf, fn, fn_len);
    if (c->in_len)
        memcpy(buf + fn_len, c->in, c->in_len);
    p->slots[p->next_id - p->base] = (mp__redis_slot){.a = a, .first = c->first, .n = c->n};
    a->pending++;
    lock(s);
    if (s->n == 0) {
        s->since = mp__now_ns();
        pthread_cond_broadcast(&s->cv); /* the thread starts its clock */
    }
    s->held[s->n++] = (mp__redis_held){
        .id = p->next_id, .fn_len = fn_len, .in_len = c->in_len, .cap = c->cap, .buf = buf};
    s->bytes += c->in_len;
    full = s->n + s->busy_n >= MP__REDIS_POOL_BATCH;
    unlock(s);
    p->next_id++;
    /* Full: the caller sends it (back-pressure). The task is accepted
     * either way; a failure fails its result. */
    if (full)
        mp__redis_pool_flush(p);
    return 0;
}

void mp__redis_sender_stop(mp__redis_pool *p, bool owner)
{
    mp__redis_sender *s = &p->tx;
    if (!owner) { /* a forked child: no thread, and mu may be held */
        for (int i = 0; i < s->n; i++)
            free(s->held[i].buf);
        for (mp__redis_sent *r = s->sent, *next; r; r = next) {
            next = r->next;
            free(r);
        }
        return;
    }
    if (s->running) {
        lock(s);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        unlock(s);
        pthread_join(s->thread, NULL);
        s->running = false;
    }
    /* After the last flush nothing is held; what the thread sent since is
     * only freed (its results find no pool). */
    for (int i = 0; i < s->n; i++)
        free(s->held[i].buf);
    s->n = 0;
    for (mp__redis_sent *r = s->sent, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    s->sent = NULL;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}
