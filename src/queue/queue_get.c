/* Queues: the consumer side and JoinableQueue (see
 * include/multiproc/queue.h and queue/queue_internal.h). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_internal.h"

void mp__queue_space_freed(mp_queue *q, size_t n, mp__qwake *w)
{
    /* seq_cst: after a ring take, against a sleeper registering. */
    uint32_t p = atomic_load(&q->putters);
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

/* Lock held: waits for a message. The ring comes first: a ring message is
 * copied into dst (cap bytes; *r NULL, *len its length); otherwise *r is
 * the chain's first committed record, taken only while the ring is empty,
 * since a producer's ring messages precede its chain records. Returns 0,
 * MP_EMSGSIZE (the ring's first message needs *len bytes), MP_EEMPTY or
 * MP_ECLOSED, the lock held in every case. room (0: none): chain bytes to
 * make free before anything is taken. A closed queue still delivers what
 * is left, including reservations committed later. */
static int await(mp_queue *q, const mp__deadline *d, void *dst, size_t cap, mp__qrec **r,
                 size_t *len, size_t room)
{
    bool last = false, spun = false;
    for (;;) {
        *r = NULL;
        int rc = room ? mp__qstore_make_room(q, room) : 0;
        if (rc < 0)
            return rc;
        int rr = mp__qring_take(q, dst, cap, len);
        if (rr == MP__QR_OK)
            return 0;
        if (rr == MP__QR_TOOSMALL)
            return MP_EMSGSIZE;
        if (rr == MP__QR_EMPTY && (*r = mp__qstore_first(q)) != NULL) {
            if (mp__qring_state(q) == MP__QR_EMPTY)
                return 0;
            continue;
        }
        if (rr == MP__QR_EMPTY && atomic_load(&q->closed) && atomic_load(&q->reserved) == 0)
            return MP_ECLOSED;
        if (last || mp__deadline_expired(d)) {
            /* A producer that died writing the first slot hides the
             * messages behind it: look before giving up. */
            if (rr == MP__QR_BUSY && mp__qring_reap(q))
                continue;
            return MP_EEMPTY;
        }
        rc = mp__queue_sleep(q, &q->put_seq, &q->getters, d, &spun);
        if (rc == MP_ETIMEDOUT)
            last = true;
        else if (rc < 0)
            return rc;
    }
}

/* Lock held: the record was consumed; give its space back. */
static void finish(mp_queue *q, mp__qrec *r, bool was_peeked)
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
static void take_record(mp_queue *q, mp__qrec *r)
{
    mp__qowner_self(&r->owner_pid, &r->owner_start);
    atomic_store_explicit(&r->state, MP__QREC_PEEKED, memory_order_release);
    mp__qcount_sub(&q->count, 1);
    q->peeked++;
}

/* Waits for a message (see await). Returns 0 with the lock held, or
 * an error with the lock released. */
static int begin(mp_queue *q, const mp__deadline *d, void *dst, size_t cap, mp__qrec **r,
                 size_t *len)
{
    int rc = mp__queue_lock(q);
    if (rc < 0)
        return rc;
    if ((rc = await(q, d, dst, cap, r, len, 0)) < 0)
        mp__queue_unlock(q, NULL);
    return rc;
}

/* Before the lock: the ring's first message, watching the ring briefly
 * when it is empty and the call may wait. *d is set for the rest. */
static int fast_take(mp_queue *q, double timeout, mp__deadline *d, void *dst, size_t cap,
                     size_t *len)
{
    int rr = mp__qring_take(q, dst, cap, len);
    if (rr == MP__QR_OK || rr == MP__QR_TOOSMALL)
        return rr;
    if (mp__deadline_init(d, timeout) < 0 || timeout == 0)
        return rr;
    return mp__qring_take_soon(q, dst, cap, len, d);
}

/* A large message is copied outside the lock: peek, copy, release. */
static int copy_large(mp_queue *q, mp__qrec *r, void *dst)
{
    take_record(q, r);
    mp__queue_unlock(q, NULL);
    memcpy(dst, mp__qrec_data(r), (size_t)r->len);
    return mp_queue_release(q, mp__qrec_data(r));
}

/* Lock held, r committed and fitting: copy it to dst and consume it.
 * Returns with the lock released. */
static int deliver(mp_queue *q, mp__qrec *r, void *dst)
{
    if (r->len > MP__QINLINE_MAX)
        return copy_large(q, r, dst);
    if (r->len)
        memcpy(dst, mp__qrec_data(r), (size_t)r->len);
    mp__qwake w = {0};
    finish(q, r, false);
    mp__queue_space_freed(q, 1, &w);
    mp__queue_unlock(q, &w);
    return 0;
}

int mp_queue_get_into(mp_queue *q, void *buf, size_t cap, size_t *len, double timeout)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), get_into, q, buf, cap, len, timeout);
    const char *f = "mp_queue_get_into";
    if (!mp__queue_valid(q))
        return mp__queue_fail(f, q);
    if (!len)
        return mp__fail(MP_EINVAL, "%s: len is NULL", f);
    if (!buf && cap > 0)
        return mp__fail(MP_EINVAL, "%s: buf is NULL with cap %zu", f, cap);
    if (isnan(timeout))
        return mp__queue_fail_timeout(f);
    mp__deadline d;
    int rr = fast_take(q, timeout, &d, buf, cap, len);
    if (rr == MP__QR_OK || rr == MP__QR_TOOSMALL)
        return rr == MP__QR_OK ? 0 : MP_EMSGSIZE;
    mp__qrec *r;
    size_t n = 0;
    int rc = begin(q, &d, buf, cap, &r, &n);
    if (rc == MP_EMSGSIZE)
        *len = n;
    if (rc < 0)
        return rc;
    if (!r) {
        mp__queue_unlock(q, NULL);
        *len = n;
        return 0;
    }
    n = (size_t)r->len;
    if (n > cap) {
        mp__queue_unlock(q, NULL);
        *len = n;
        return MP_EMSGSIZE;
    }
    rc = deliver(q, r, buf);
    if (rc == 0)
        *len = n;
    return rc;
}

int mp_queue_get(mp_queue *q, void **data, size_t *len, double timeout)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), get, q, data, len, timeout);
    const char *f = "mp_queue_get";
    if (!mp__queue_valid(q))
        return mp__queue_fail(f, q);
    if (!data || !len)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", f, !data ? "data" : "len");
    if (isnan(timeout))
        return mp__queue_fail_timeout(f);
    /* Allocated before anything is taken, so that a failure leaves the
     * message in the queue; a ring message is delivered in it. */
    void *small = malloc(MP__QRING_MAX);
    if (!small)
        return MP_ENOMEM;
    size_t n;
    mp__deadline d;
    if (fast_take(q, timeout, &d, small, MP__QRING_MAX, &n) == MP__QR_OK) {
        *data = small;
        *len = n;
        return 0;
    }
    mp__qrec *r;
    int rc = begin(q, &d, small, MP__QRING_MAX, &r, &n);
    if (rc < 0) {
        free(small);
        return rc;
    }
    if (!r) {
        mp__queue_unlock(q, NULL);
        *data = small;
        *len = n;
        return 0;
    }
    free(small);
    n = (size_t)r->len;
    void *buf = malloc(n ? n : 1);
    if (!buf) {
        mp__queue_unlock(q, NULL);
        return MP_ENOMEM;
    }
    rc = deliver(q, r, buf);
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

/* Lock held: the next message, if one is ready and fits in cap bytes at
 * dst: a ring message is copied (returns true, *r NULL), a chain record is
 * returned in *r for the caller to copy. */
static bool next_record(mp_queue *q, void *dst, size_t cap, mp__qrec **r, size_t *len)
{
    *r = NULL;
    int rr = mp__qring_take_quiet(q, dst, cap, len);
    if (rr == MP__QR_OK)
        return true;
    if (rr != MP__QR_EMPTY || !(*r = mp__qstore_first(q)))
        return false;
    if (mp__qring_state(q) != MP__QR_EMPTY || (*r)->len > cap) {
        *r = NULL;
        return false;
    }
    *len = (size_t)(*r)->len;
    return true;
}

int mp_queue_get_many(mp_queue *q, void *buf, size_t cap, size_t *lens, size_t n, double timeout)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), get_many, q, buf, cap, lens, n, timeout);
    const char *f = "mp_queue_get_many";
    if (!mp__queue_valid(q))
        return mp__queue_fail(f, q);
    if (!buf && cap > 0)
        return mp__fail(MP_EINVAL, "%s: buf is NULL with cap %zu", f, cap);
    if (!lens && n > 0)
        return mp__fail(MP_EINVAL, "%s: lens is NULL with n %zu", f, n);
    if (n > INT_MAX)
        return mp__fail(MP_EINVAL, "%s: n is %zu (at most INT_MAX)", f, n);
    if (n == 0)
        return 0;
    mp__qrec *r;
    size_t len = 0;
    mp__deadline d;
    int rc = mp__deadline_init(&d, timeout);
    if (rc < 0)
        return mp__queue_fail_timeout(f);
    rc = begin(q, &d, buf, cap, &r, &len);
    if (rc == MP_EMSGSIZE)
        lens[0] = len;
    if (rc < 0)
        return rc;
    if (r && r->len > cap) {
        mp__queue_unlock(q, NULL);
        lens[0] = (size_t)r->len;
        return MP_EMSGSIZE;
    }
    size_t got = 0, off = 0;
    for (bool more = true; more;) {
        if (r) {
            len = (size_t)r->len;
            if (len)
                memcpy((unsigned char *)buf + off, mp__qrec_data(r), len);
            finish(q, r, false);
        }
        lens[got++] = len;
        off += len;
        more =
            got < n && next_record(q, buf ? (unsigned char *)buf + off : NULL, cap - off, &r, &len);
    }
    mp__qwake w = {0};
    mp__queue_space_freed(q, got, &w);
    mp__queue_unlock(q, &w);
    return (int)got;
}

int mp_queue_peek(mp_queue *q, const void **data, size_t *len, double timeout)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), peek, q, data, len, timeout);
    if (!mp__queue_valid(q))
        return mp__queue_fail("mp_queue_peek", q);
    if (!data || !len)
        return mp__fail(MP_EINVAL, "mp_queue_peek: %s is NULL", !data ? "data" : "len");
    /* A ring message is moved into a chain record held by this process;
     * the room for it is made first, so that once taken it cannot be
     * lost to a failed allocation. */
    uint64_t small[MP__QRING_WORDS];
    mp__deadline d;
    int rc = mp__deadline_init(&d, timeout);
    if (rc < 0)
        return mp__queue_fail_timeout("mp_queue_peek");
    if ((rc = mp__queue_lock(q)) < 0)
        return rc;
    mp__qrec *r = NULL;
    size_t n = 0;
    rc = await(q, &d, small, sizeof small, &r, &n, q->ring ? mp__qrec_size(MP__QRING_MAX) : 0);
    if (rc == 0 && !r) {
        rc = mp__qstore_append(q, small, n, MP__QREC_PEEKED, &r);
        r = rc == 0 ? r : NULL;
    } else if (rc == 0) {
        take_record(q, r);
    }
    mp__queue_unlock(q, NULL);
    if (rc < 0)
        return rc;
    *data = mp__qrec_data(r);
    *len = (size_t)r->len;
    return 0;
}

int mp_queue_release(mp_queue *q, const void *data)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), release, q, data);
    mp__qrec *r;
    int rc = mp__queue_lock_rec("mp_queue_release", "data", q, data, &r);
    if (rc < 0)
        return rc;
    mp__qwake w = {0};
    if (atomic_load_explicit(&r->state, memory_order_relaxed) != MP__QREC_PEEKED) {
        rc = mp__fail(MP_EINVAL,
                      "mp_queue_release: data is not a peeked message (released already?)");
    } else {
        int32_t pid;
        uint64_t start;
        mp__qowner_self(&pid, &start);
        if (r->owner_pid != pid) {
            rc = mp__fail(
                MP_EPERM,
                "mp_queue_release: data was peeked by another process (pid %d), not this one",
                (int)r->owner_pid);
        } else {
            finish(q, r, true);
            mp__queue_space_freed(q, 1, &w);
        }
    }
    mp__queue_unlock(q, &w);
    return rc;
}

/* ---- JoinableQueue ------------------------------------------------------- */

int mp_queue_task_done(mp_queue *q)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), task_done, q);
    if (!mp__queue_valid(q))
        return mp__queue_fail("mp_queue_task_done", q);
    if (!q->joinable)
        return mp__fail(MP_EINVAL, "mp_queue_task_done: q is not joinable (opts->joinable was 0)");
    int rc = mp__queue_lock(q);
    if (rc < 0)
        return rc;
    mp__qwake w = {0};
    uint64_t u = atomic_load(&q->unfinished);
    if (u == 0) {
        rc = mp__fail(
            MP_ETOOMANYDONE,
            "mp_queue_task_done: no unfinished message (called more times than messages put)");
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
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), join, q, timeout);
    if (!mp__queue_valid(q))
        return mp__queue_fail("mp_queue_join", q);
    if (!q->joinable)
        return mp__fail(MP_EINVAL, "mp_queue_join: q is not joinable (opts->joinable was 0)");
    mp__deadline d;
    int rc = mp__deadline_init(&d, timeout);
    if (rc < 0)
        return mp__queue_fail_timeout("mp_queue_join");
    if ((rc = mp__queue_lock(q)) < 0)
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
        else if (rc == MP_EINTR || rc == MP_ECANCELED)
            break; /* the lock is held: released below */
        else if (rc < 0)
            return rc;
    }
    mp__queue_unlock(q, NULL);
    return rc;
}
