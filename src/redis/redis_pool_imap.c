/* The distributed pool's iterators (imap, imap_unordered) and the pool's
 * life cycle: close, join, terminate, poll, destroy, and the withdrawal
 * of outstanding tasks that terminate and mp_async_cancel use. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os/bulk.h"
#include "os/pidfd.h"
#include "redis/redis_pool.h"

/* The lengths of the iterator's arrays (os/bulk.h: written item by item
 * as the results arrive; the errors, rare, are from calloc). */
static size_t items_of(const mp__redis_imap *it)
{
    return it->n ? it->n : 1;
}

static size_t buf_len(const mp__redis_imap *it)
{
    return it->out_size ? items_of(it) * it->out_size : 1;
}

static void free_imap(mp__redis_imap *it)
{
    mp__bulk_free(it->buf, buf_len(it));
    mp__bulk_free(it->status, items_of(it));
    free(it->ierr);
    mp__bulk_free(it->fifo, items_of(it) * sizeof(*it->fifo));
    free(it);
}

int mp__redis_pool_imap(mp_pool *pool, const mp_map_spec *s, bool ordered, mp_imap **out)
{
    if (!out || !s)
        return mp__fail(MP_EINVAL, "mp_pool_imap: %s is NULL", !out ? "out" : "spec");
    if (s->n && s->out_size && s->n > SIZE_MAX / s->out_size)
        return mp__fail(MP_EINVAL, "mp_pool_imap: spec->n %zu results of %zu bytes overflow size_t",
                        s->n, s->out_size);
    mp__redis_imap *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return MP_ENOMEM;
    it->head.backend = &mp__redis_pool_backend;
    it->head.wait.wait = &mp__pool_imap_wait_ops;
    it->ordered = ordered;
    it->out_size = s->out_size;
    it->n = s->n;
    size_t n = items_of(it);
    it->buf = mp__bulk_resize(NULL, 0, buf_len(it));
    it->status = mp__bulk_resize(NULL, 0, n);
    it->ierr = calloc(n, sizeof(*it->ierr));
    it->fifo =
        n <= SIZE_MAX / sizeof(*it->fifo) ? mp__bulk_resize(NULL, 0, n * sizeof(*it->fifo)) : NULL;
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
        return mp__fail(MP_EINVAL, "mp_imap_next: timeout is NaN");
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

size_t mp__redis_imap_item_size(const mp_imap *pit)
{
    return ((const mp__redis_imap *)pit)->out_size;
}

void mp__redis_imap_destroy(mp_imap *pit)
{
    mp__redis_imap *it = (mp__redis_imap *)pit;
    mp__redis_async_destroy((mp_async *)it->a);
    free_imap(it);
}

/* ---- withdrawal of tasks ------------------------------------------------ */

/* KEYS[1] the stream, KEYS[2] the client's cancel set; ARGV: group, TTL
 * in ms, then pairs of an entry id and its task id. An entry not pending
 * in the group was not delivered (or is answered and gone): it is
 * deleted, so no worker reads it. One pending is running: its task id
 * goes to the cancel set, which the workers read at their heartbeats.
 * Being a script, no delivery comes in between. Returns how many run. */
static const char withdraw_lua[] =
    "local running = 0 "
    "for i = 3, #ARGV, 2 do "
    "  local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1) "
    "  if type(p) == 'table' and not p.err and #p == 1 then "
    "    redis.call('SADD', KEYS[2], ARGV[i + 1]) "
    "    running = running + 1 "
    "  else "
    "    redis.call('XDEL', KEYS[1], ARGV[i]) "
    "  end "
    "end "
    "if running > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end "
    "return running";

/* Tasks per script call: one round trip withdraws this many. */
#define WITHDRAW_BATCH 256

static int withdraw_some(mp__redis_pool *p, const uint64_t *ids, int n)
{
    const char *argv[7 + 2 * WITHDRAW_BATCH];
    char num[WITHDRAW_BATCH][24], eid[WITHDRAW_BATCH][MP__REDIS_POOL_EID_MAX];
    const char *head[] = {"EVAL", withdraw_lua, "2", p->k_tasks, p->k_cancel, MP__REDIS_POOL_GROUP};
    memcpy(argv, head, sizeof(head));
    argv[6] = MP__REDIS_POOL_CLIENT_LEASE_MS_STR;
    int argc = 7;
    for (int i = 0; i < n; i++) {
        const mp__redis_slot *sl = &p->slots[ids[i] - p->base];
        snprintf(num[i], sizeof(num[i]), "%" PRIu64, ids[i]);
        snprintf(eid[i], sizeof(eid[i]), "%" PRIu64 "-%" PRIu32, sl->eid_ms, sl->eid_seq);
        argv[argc++] = eid[i];
        argv[argc++] = num[i];
    }
    return mp__redis_cmd(p->conn, MP__RR_INT, NULL, argc, argv, NULL);
}

int mp__redis_pool_withdraw(mp__redis_pool *p, const mp__redis_async *a)
{
    uint64_t ids[WITHDRAW_BATCH];
    int n = 0, rc = 0;
    for (uint64_t id = p->base; rc == 0 && id < p->next_id; id++) {
        const mp__redis_slot *s = &p->slots[id - p->base];
        /* The tasks of a packed entry share it: the first withdraws the
         * entry, and every one adds its id to the cancel set if it runs. */
        if (s->a && (a == NULL || s->a == a) && (s->eid_ms || s->eid_seq))
            ids[n++] = id;
        if (n == WITHDRAW_BATCH || (n > 0 && id + 1 == p->next_id)) {
            rc = withdraw_some(p, ids, n);
            n = 0;
        }
    }
    return rc;
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
    if (p->owner == mp__self_pid()) {
        mp__redis_pool_terminate(pool);
        /* Results still to come are nobody's: drop the list (a late one
         * recreates it, and it expires; see the worker), and the client's
         * key, whose absence makes the workers drop its tasks. */
        mp__redis_cmd(p->conn, MP__RR_INT, NULL, 4,
                      (const char *[]){"DEL", p->k_results, p->k_client, p->k_cancel}, NULL);
    }
    mp__redis_sender_stop(p, p->owner == mp__self_pid());
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
    mp__bulk_free(p->slots, p->slots_cap * sizeof(*p->slots));
    free(p);
}
