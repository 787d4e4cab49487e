/* Queues: the consumer side and JoinableQueue (see
 * include/multiproc/queue.h and queue_internal.h). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"

void mp__queue_space_freed(mp_queue *q, size_t n, mp__qwake *w)
{
    uint32_t p = atomic_load_explicit(&q->putters, memory_order_relaxed);
    if (p == 0)
        return;
    atomic_fetch_add(&q->get_seq, 1);
    /* With a byte bound, the room one message leaves may suit any of the
     * waiting producers, or none: wake them all to look. */
    if (q->max_bytes)
        w->putters = INT32_MAX;
    else
        w->putters = n < p ? (int)n : (int)p;
}

/* Lock held: waits for a committed record. A closed queue still delivers
 * what is left, including reservations committed later. */
static int mp__await(mp_queue *q, const mp__deadline *d, mp__qrec **out)
{
    bool last = false, spun = false;
    for (;;) {
        if ((*out = mp__qstore_first(q)) != NULL)
            return 0;
        if (atomic_load_explicit(&q->closed, memory_order_relaxed) && q->reserved == 0)
            return MP_ECLOSED;
        if (last || mp__deadline_expired(d))
            return MP_EEMPTY;
        int rc = mp__queue_sleep(q, &q->put_seq, &q->getters, d, &spun);
        if (rc == MP_ETIMEDOUT)
            last = true;
        else if (rc < 0)
            return rc;
    }
}

/* Lock held: the record was consumed; give its space back. */
static void mp__finish(mp_queue *q, mp__qrec *r, bool was_peeked)
{
    atomic_store_explicit(&r->state, MP__QREC_DONE, memory_order_release);
    if (was_peeked)
        q->peeked--;
    else
        mp__qcount_sub(&q->count, 1);
    mp__qcount_sub(&q->bytes, r->len);
    mp__qstore_advance(q);
}

/* Lock held: take r in place for this process. */
static void mp__take(mp_queue *q, mp__qrec *r)
{
    mp__qowner_self(&r->owner_pid, &r->owner_start);
    atomic_store_explicit(&r->state, MP__QREC_PEEKED, memory_order_release);
    mp__qcount_sub(&q->count, 1);
    q->peeked++;
}

static int mp__begin(mp_queue *q, double timeout, mp__qrec **r)
{
    mp__deadline d;
    int rc = mp__deadline_init(&d, timeout);
    if (rc < 0 || (rc = mp__queue_lock(q)) < 0)
        return rc;
    if ((rc = mp__await(q, &d, r)) < 0)
        mp__queue_unlock(q, NULL);
    return rc;
}

/* A large message is copied outside the lock: peek, copy, release. */
static int mp__copy_large(mp_queue *q, mp__qrec *r, void *dst)
{
    mp__take(q, r);
    mp__queue_unlock(q, NULL);
    memcpy(dst, mp__qrec_data(r), (size_t)r->len);
    return mp_queue_release(q, mp__qrec_data(r));
}

/* Lock held, r committed and fitting: copy it to dst and consume it.
 * Returns with the lock released. */
static int mp__deliver(mp_queue *q, mp__qrec *r, void *dst)
{
    if (r->len > MP__QINLINE_MAX)
        return mp__copy_large(q, r, dst);
    if (r->len)
        memcpy(dst, mp__qrec_data(r), (size_t)r->len);
    mp__qwake w = {0};
    mp__finish(q, r, false);
    mp__queue_space_freed(q, 1, &w);
    mp__queue_unlock(q, &w);
    return 0;
}

int mp_queue_get_into(mp_queue *q, void *buf, size_t cap, size_t *len, double timeout)
{
    MP__REDIS_DISPATCH(q, mp__rqueue_get_into((mp__rqueue *)(void *)q, buf, cap, len, timeout));
    if (!mp__queue_valid(q) || !len || (!buf && cap > 0))
        return MP_EINVAL;
    mp__qrec *r;
    int rc = mp__begin(q, timeout, &r);
    if (rc < 0)
        return rc;
    size_t n = (size_t)r->len;
    if (n > cap) {
        mp__queue_unlock(q, NULL);
        *len = n;
        return MP_EMSGSIZE;
    }
    rc = mp__deliver(q, r, buf);
    if (rc == 0)
        *len = n;
    return rc;
}

int mp_queue_get(mp_queue *q, void **data, size_t *len, double timeout)
{
    MP__REDIS_DISPATCH(q, mp__rqueue_get((mp__rqueue *)(void *)q, data, len, timeout));
    if (!mp__queue_valid(q) || !data || !len)
        return MP_EINVAL;
    mp__qrec *r;
    int rc = mp__begin(q, timeout, &r);
    if (rc < 0)
        return rc;
    size_t n = (size_t)r->len;
    void *buf = malloc(n ? n : 1);
    if (!buf) {
        mp__queue_unlock(q, NULL);
        return MP_ENOMEM;
    }
    rc = mp__deliver(q, r, buf);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return 0;
}

int mp_queue_get_nowait(mp_queue *q, void **data, size_t *len)
{
    return mp_queue_get(q, data, len, 0);
}

int mp_queue_get_many(mp_queue *q, void *buf, size_t cap, size_t *lens, size_t n, double timeout)
{
    MP__REDIS_DISPATCH(q, MP_ENOSYS);
    if (!mp__queue_valid(q) || (!buf && cap > 0) || (!lens && n > 0) || n > INT_MAX)
        return MP_EINVAL;
    if (n == 0)
        return 0;
    mp__qrec *r;
    int rc = mp__begin(q, timeout, &r);
    if (rc < 0)
        return rc;
    if (r->len > cap) {
        mp__queue_unlock(q, NULL);
        lens[0] = (size_t)r->len;
        return MP_EMSGSIZE;
    }
    size_t got = 0, off = 0;
    while (got < n && r && r->len <= cap - off) {
        if (r->len)
            memcpy((unsigned char *)buf + off, mp__qrec_data(r), (size_t)r->len);
        lens[got++] = (size_t)r->len;
        off += (size_t)r->len;
        mp__finish(q, r, false);
        r = mp__qstore_first(q);
    }
    mp__qwake w = {0};
    mp__queue_space_freed(q, got, &w);
    mp__queue_unlock(q, &w);
    return (int)got;
}

int mp_queue_peek(mp_queue *q, const void **data, size_t *len, double timeout)
{
    MP__REDIS_DISPATCH(q, MP_ENOSYS);
    if (!mp__queue_valid(q) || !data || !len)
        return MP_EINVAL;
    mp__qrec *r;
    int rc = mp__begin(q, timeout, &r);
    if (rc < 0)
        return rc;
    mp__take(q, r);
    mp__queue_unlock(q, NULL);
    *data = mp__qrec_data(r);
    *len = (size_t)r->len;
    return 0;
}

int mp_queue_release(mp_queue *q, const void *data)
{
    MP__REDIS_DISPATCH(q, MP_ENOSYS);
    mp__qrec *r;
    int rc = mp__queue_lock_rec(q, data, &r);
    if (rc < 0)
        return rc;
    mp__qwake w = {0};
    if (atomic_load_explicit(&r->state, memory_order_relaxed) != MP__QREC_PEEKED) {
        rc = MP_EINVAL;
    } else {
        int32_t pid;
        uint64_t start;
        mp__qowner_self(&pid, &start);
        if (r->owner_pid != pid) {
            rc = MP_EPERM;
        } else {
            mp__finish(q, r, true);
            mp__queue_space_freed(q, 1, &w);
        }
    }
    mp__queue_unlock(q, &w);
    return rc;
}

/* ---- JoinableQueue ------------------------------------------------------- */

int mp_queue_task_done(mp_queue *q)
{
    MP__REDIS_DISPATCH(q, MP_ENOSYS);
    if (!mp__queue_valid(q) || !q->joinable)
        return MP_EINVAL;
    int rc = mp__queue_lock(q);
    if (rc < 0)
        return rc;
    mp__qwake w = {0};
    uint64_t u = atomic_load(&q->unfinished);
    if (u == 0) {
        rc = MP_ETOOMANYDONE;
    } else {
        /* One store: a death on either side of it leaves a valid count. */
        atomic_store(&q->unfinished, u - 1);
        if (u == 1 && atomic_load(&q->joiners) > 0) {
            atomic_fetch_add(&q->done_seq, 1);
            w.joiners = INT32_MAX;
        }
    }
    mp__queue_unlock(q, &w);
    return rc;
}

int mp_queue_join(mp_queue *q, double timeout)
{
    MP__REDIS_DISPATCH(q, MP_ENOSYS);
    if (!mp__queue_valid(q) || !q->joinable)
        return MP_EINVAL;
    mp__deadline d;
    int rc = mp__deadline_init(&d, timeout);
    if (rc < 0 || (rc = mp__queue_lock(q)) < 0)
        return rc;
    bool last = false, spun = false;
    for (;;) {
        if (atomic_load(&q->unfinished) == 0) {
            rc = 0;
            break;
        }
        if (last || mp__deadline_expired(&d)) {
            rc = MP_ETIMEDOUT;
            break;
        }
        rc = mp__queue_sleep(q, &q->done_seq, &q->joiners, &d, &spun);
        if (rc == MP_ETIMEDOUT)
            last = true;
        else if (rc < 0)
            return rc;
    }
    mp__queue_unlock(q, NULL);
    return rc;
}
