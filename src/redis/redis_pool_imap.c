/* The distributed pool's iterators (imap, imap_unordered) and the pool's
 * life cycle: close, join, terminate, poll, destroy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis/redis_pool.h"

static void free_imap(mp__redis_imap *it)
{
    free(it->buf);
    free(it->status);
    free(it->ierr);
    free(it->fifo);
    free(it);
}

int mp__redis_pool_imap(mp_pool *pool, const mp_map_spec *s, bool ordered, mp_imap **out)
{
    if (!out || !s || (s->n && s->out_size && s->n > SIZE_MAX / s->out_size))
        return MP_EINVAL;
    mp__redis_imap *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return MP_ENOMEM;
    it->head.backend = &mp__redis_pool_backend;
    it->ordered = ordered;
    it->out_size = s->out_size;
    it->n = s->n;
    size_t n = s->n ? s->n : 1;
    it->buf = malloc(s->out_size ? n * s->out_size : 1);
    it->status = calloc(n, 1);
    it->ierr = calloc(n, sizeof(*it->ierr));
    it->fifo = calloc(n, sizeof(*it->fifo));
    if (!it->buf || !it->status || !it->ierr || !it->fifo) {
        free_imap(it);
        return MP_ENOMEM;
    }
    mp__redis_async *a = NULL;
    int rc = mp__redis_pool_map_start(pool, s, it, &a);
    if (rc < 0) {
        free_imap(it);
        return rc;
    }
    it->a = a;
    *out = (mp_imap *)it;
    return 0;
}

/* The next item to give, if it has arrived: its index, or SIZE_MAX. */
static size_t next_ready(mp__redis_imap *it)
{
    if (it->ordered)
        return it->next < it->n && it->status[it->next] ? it->next : SIZE_MAX;
    return it->fifo_head < it->fifo_len ? it->fifo[it->fifo_head] : SIZE_MAX;
}

int mp__redis_imap_next(mp_imap *pit, void *item, size_t *index, mp_task_error *err, double timeout)
{
    mp__redis_imap *it = (mp__redis_imap *)pit;
    mp__deadline d;
    int rc = 0;
    if (isnan(timeout))
        return MP_EINVAL;
    if (it->given == it->n)
        return MP_EEOF;
    size_t i;
    /* The clock is read only when there is something to wait for. */
    bool timed = false;
    while ((i = next_ready(it)) == SIZE_MAX) {
        if (!timed && (rc = mp__deadline_init(&d, timeout)) < 0)
            return rc;
        timed = true;
        mp__redis_async *a = it->a;
        if (a->pool == NULL)
            return MP_ECLOSED;
        if (a->done) /* abandoned items are all in the fifo: unreachable */
            return MP_EEOF;
        rc = mp__redis_pool_pump(a->pool, &d, true);
        if (rc < 0 && next_ready(it) == SIZE_MAX)
            return rc;
    }
    if (it->ordered)
        it->next++;
    else
        it->fifo_head++;
    it->given++;
    if (index)
        *index = i;
    if (it->status[i] == 2) {
        if (err)
            *err = it->ierr[i];
        return it->ierr[i].code;
    }
    if (item && it->out_size)
        memcpy(item, it->buf + i * it->out_size, it->out_size);
    return 0;
}

void mp__redis_imap_destroy(mp_imap *pit)
{
    mp__redis_imap *it = (mp__redis_imap *)pit;
    mp__redis_async_destroy((mp_async *)it->a);
    free_imap(it);
}

/* ---- the pool ------------------------------------------------------------ */

int mp__redis_pool_close(mp_pool *pool)
{
    mp__redis_pool *p;
    int rc = mp__redis_pool_check(pool, &p);
    if (rc < 0)
        return rc;
    p->closed = true;
    /* The accepted tasks go out now; a failure is their results'. */
    mp__redis_pool_flush(p);
    return 0;
}

int mp__redis_pool_join(mp_pool *pool, double timeout)
{
    mp__redis_pool *p;
    mp__deadline d;
    int rc = mp__redis_pool_check(pool, &p);
    if (rc == 0)
        rc = mp__deadline_init(&d, timeout);
    if (rc < 0)
        return rc;
    if (!p->closed)
        return MP_EBUSY;
    mp__redis_pool_flush(p); /* tasks whose results were destroyed */
    while (p->unfinished > 0) {
        rc = mp__redis_pool_pump(p, &d, true);
        if (rc < 0 && p->unfinished > 0)
            return rc;
    }
    mp__pool_meter_report(&p->meter, true); /* as a local pool's join */
    return 0;
}

int mp__redis_pool_terminate(mp_pool *pool)
{
    mp__redis_pool *p;
    int rc = mp__redis_pool_check(pool, &p);
    if (rc < 0)
        return rc;
    p->closed = p->terminated = true;
    /* Accepted tasks reach the stream first, as the ones sent before, so
     * that all are withdrawn alike: the pending ones leave the stream and
     * the running ones are cancelled, so that workers spend nothing more
     * on this client; best effort. */
    mp__redis_pool_flush(p);
    if (p->unfinished > 0 && mp__redis_pool_withdraw(p, NULL) < 0)
        mp__debug("pool: terminate could not withdraw the tasks of %s", p->k_results);
    for (mp__redis_async *a = p->live; a; a = a->next)
        if (!a->done)
            mp__redis_async_abandon(a, MP_ECLOSED);
    return 0;
}

int mp__redis_pool_poll(mp_pool *pool)
{
    mp__redis_pool *p;
    int rc = mp__redis_pool_check(pool, &p);
    if (rc < 0)
        return rc;
    if (p->unfinished > 0)
        mp__redis_pool_pump(p, NULL, false);
    else
        mp__redis_pool_flush(p); /* tasks whose results were destroyed */
    return (int)p->unfinished;
}

/* Its workers are elsewhere: none is a process of this machine's. */
int mp__redis_pool_pids(mp_pool *pool, pid_t *out, size_t cap)
{
    (void)pool, (void)out, (void)cap;
    return 0;
}

void mp__redis_pool_destroy(mp_pool *pool)
{
    mp__redis_pool *p = (mp__redis_pool *)pool;
    if (p->owner == getpid()) {
        mp__redis_pool_terminate(pool);
        /* Results still to come are nobody's: drop the list (a late one
         * recreates it, and it expires; see the worker), and the client's
         * key, whose absence makes the workers drop its tasks. */
        mp__redis_cmd(p->conn, MP__RR_INT, NULL, 4,
                      (const char *[]){"DEL", p->k_results, p->k_client, p->k_cancel}, NULL);
    }
    mp__redis_sender_stop(p, p->owner == getpid());
    /* The results held by the user stay valid, detached from the pool. */
    while (p->live) {
        mp__redis_async *a = p->live;
        p->live = a->next;
        a->next = a->prev = NULL;
        a->pool = NULL;
    }
    mp__redis_unref(p->conn);
    free(p->k_tasks);
    free(p->k_results);
    free(p->k_client);
    free(p->k_cancel);
    free(p->slots);
    free(p);
}
