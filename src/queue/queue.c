/* Queues: creation, the lock, waiting, and the producer side (see
 * include/multiproc/queue.h and queue/queue_internal.h). */
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "queue/queue_internal.h"

bool mp__queue_valid(const mp_queue *q)
{
    return q && mp__heap_contains(q, sizeof *q) && q->head.magic == MP__QUEUE_MAGIC;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

int mp__queue_fail(const char *fn, const mp_queue *q)
{
    return mp__obj_fail(fn, "q", q, "queue");
}

int mp__queue_fail_timeout(const char *fn)
{
    return mp__fail(MP_EINVAL, "%s: timeout is NaN (seconds >= 0, or MP_FOREVER)", fn);
}

int mp__queue_lock_rec(const char *fn, const char *arg, mp_queue *q, const void *payload,
                       mp__qrec **r)
{
    if (!mp__queue_valid(q))
        return mp__queue_fail(fn, q);
    if (!payload)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", fn, arg);
    if (!(*r = mp__qstore_rec_of(q, payload)))
        return mp__fail(MP_EINVAL, "%s: %s (%p) is not a message buffer of this queue", fn, arg,
                        payload);
    return mp__queue_lock(q);
}

int mp__queue_lock(mp_queue *q)
{
    /* Every hold is short (the copies above MP__QINLINE_MAX run unlocked),
     * so a busy lock is worth a few microseconds of trying before the
     * mutex puts this thread to sleep in the kernel: a futex wake-up from
     * another CPU costs tens of microseconds on a VM. */
    int rc = mp__robust_mutex_trylock(&q->lock);
    for (unsigned i = 0; rc == MP_EBUSY && i < MP__QLOCK_TRIES; i++) {
        for (unsigned k = 0; k < 16; k++)
            cpu_relax();
        rc = mp__robust_mutex_trylock(&q->lock);
    }
    if (rc == MP_EBUSY)
        rc = mp__robust_mutex_lock(&q->lock, NULL);
    if (rc == MP_EOWNERDEAD) {
        /* A holder died part-way through an update: make the queue whole
         * again before anyone else sees it. */
        mp__debug("queue %p: previous lock holder died, repairing", (void *)q);
        mp__queue_repair(q);
        rc = mp__robust_mutex_consistent(&q->lock);
        if (rc < 0)
            mp__robust_mutex_unlock(&q->lock);
    }
    return rc;
}

/* Every release of the lock: a producer's intent to append to the chain
 * ends with its hold. */
static void queue_drop_lock(mp_queue *q)
{
    if (atomic_load_explicit(&q->chain_intent, memory_order_relaxed))
        atomic_store(&q->chain_intent, 0);
    mp__robust_mutex_unlock(&q->lock);
}

void mp__queue_unlock(mp_queue *q, const mp__qwake *w)
{
    queue_drop_lock(q);
    if (!w)
        return;
    if (w->getters)
        mp__futex_wake(&q->put_seq, w->getters);
    if (w->putters)
        mp__futex_wake(&q->get_seq, w->putters);
    if (w->joiners)
        mp__futex_wake(&q->done_seq, w->joiners);
    if (w->signal && atomic_load(&q->pollers) > 0)
        mp__queue_signal(q);
}

/* Lock held on entry and on return. Before going to sleep, watch the queue
 * without the lock for a few microseconds: between two processes running
 * on two CPUs the other side usually acts within that time, and a futex
 * sleep and wake-up costs far more (tens of microseconds on a VM). Returns
 * true when the queue changed (the caller checks again), false when the
 * caller should sleep. */
static int queue_spin(mp_queue *q, const mp__deadline *d, bool *changed)
{
    uint64_t count = atomic_load_explicit(&q->count, memory_order_relaxed);
    uint64_t bytes = atomic_load_explicit(&q->bytes, memory_order_relaxed);
    uint64_t unfinished = atomic_load_explicit(&q->unfinished, memory_order_relaxed);
    uint64_t deq = atomic_load_explicit(&q->deq, memory_order_relaxed);
    queue_drop_lock(q);
    int64_t end = mp__now_ns() + MP__QSPIN_NS;
    if (d->ns >= 0 && d->ns < end)
        end = d->ns;
    *changed = false;
    for (unsigned i = 1;; i++) {
        cpu_relax();
        if (atomic_load_explicit(&q->count, memory_order_relaxed) != count ||
            atomic_load_explicit(&q->bytes, memory_order_relaxed) != bytes ||
            atomic_load_explicit(&q->unfinished, memory_order_relaxed) != unfinished ||
            atomic_load_explicit(&q->deq, memory_order_relaxed) != deq ||
            atomic_load_explicit(&q->closed, memory_order_relaxed) ||
            (q->ring && mp__qring_state(q) == MP__QR_OK)) {
            *changed = true;
            break;
        }
        if (i % 32 == 0 && mp__now_ns() >= end)
            break;
    }
    return mp__queue_lock(q);
}

/* After registering as a sleeper: did the ring change in a way its
 * lock-free side would not wake us for? Its producers and consumers wake
 * sleepers they see; one that came before the registration is seen here. */
static bool queue_ring_moved(mp_queue *q, const _Atomic uint32_t *word)
{
    if (!q->ring)
        return false;
    if (word == &q->put_seq)
        return mp__qring_state(q) == MP__QR_OK;
    if (word == &q->get_seq)
        return q->maxsize && mp__queue_count(q) + atomic_load(&q->reserved) < q->maxsize;
    return false;
}

/* After a sleep slice: drops what dead processes held. */
static bool queue_reap(mp_queue *q)
{
    bool any = mp__qring_reap(q);
    if (atomic_load(&q->reserved) + q->peeked > 0 && mp__qstore_reap_dead(q)) {
        mp__qstore_advance(q);
        any = true;
    }
    return any;
}

int mp__queue_sleep(mp_queue *q, _Atomic uint32_t *word, _Atomic uint32_t *sleepers,
                    const mp__deadline *d, bool *spun)
{
    /* First round: spin, then let the caller check again under the lock.
     * Second round: sleep, registered under the same lock hold as the
     * caller's failed check, so no wake-up can fall in between. */
    if (!*spun) {
        bool changed;
        *spun = true;
        return queue_spin(q, d, &changed);
    }
    *spun = false;
    int lrc;
    uint32_t seq = atomic_load(word);
    atomic_fetch_add(sleepers, 1);
    /* While a record or a ring slot is held, its holder may die without
     * waking anyone: sleep in slices and look for dead holders after each. */
    mp__deadline slice = *d;
    bool sliced = atomic_load(&q->reserved) + q->peeked > 0 || mp__qring_state(q) == MP__QR_BUSY;
    if (sliced) {
        int64_t cap = mp__now_ns() + MP__QSLICE_NS;
        if (slice.ns < 0 || slice.ns > cap)
            slice.ns = cap;
    }
    queue_drop_lock(q);
    int rc = queue_ring_moved(q, word) ? 0 : mp__futex_wait_intr(word, seq, &slice);
    lrc = mp__queue_lock(q);
    atomic_fetch_sub(sleepers, 1);
    if (lrc < 0)
        return lrc;
    if (rc == MP_ETIMEDOUT && sliced && queue_reap(q))
        return 0;
    if (rc == MP_ETIMEDOUT)
        return mp__deadline_expired(d) ? MP_ETIMEDOUT : 0;
    return rc < 0 ? rc : 0; /* MP_EINTR, MP_ECANCELED: the caller returns them */
}

/* ---- create / destroy ---------------------------------------------------- */

int mp__queue_check_opts(const mp_queue_opts *o)
{
    const char *f = "mp_queue_create";
    if (o->simple && (o->maxsize || o->max_bytes))
        return mp__fail(MP_EINVAL,
                        "%s: opts->simple with opts->maxsize %zu and opts->max_bytes %zu "
                        "(a simple queue has no bound: both must be 0)",
                        f, (size_t)o->maxsize, (size_t)o->max_bytes);
    if (o->max_bytes > MP_QUEUE_MAX_MESSAGE)
        return mp__fail(MP_EINVAL, "%s: opts->max_bytes is %zu (at most MP_QUEUE_MAX_MESSAGE, %zu)",
                        f, (size_t)o->max_bytes, (size_t)MP_QUEUE_MAX_MESSAGE);
    if (o->maxsize > MP_QUEUE_MAX_MESSAGE)
        return mp__fail(MP_EINVAL,
                        "%s: opts->maxsize is %zu (0 for no limit, or at most "
                        "MP_QUEUE_MAX_MESSAGE, %zu)",
                        f, (size_t)o->maxsize, (size_t)MP_QUEUE_MAX_MESSAGE);
    return 0;
}

static uint32_t queue_new_tag(const mp_queue *q)
{
    static _Atomic uint32_t counter;
    uint32_t c = atomic_fetch_add(&counter, 1);
    return (uint32_t)((uintptr_t)q >> 4) ^ ((uint32_t)getpid() << 16) ^ (c * 2654435761u);
}

int mp_queue_create(mp_queue **out, const mp_queue_opts *opts)
{
    static const mp_queue_opts defaults;
    const mp_queue_opts *o = opts ? opts : &defaults;
    if (!out)
        return mp__fail(MP_EINVAL, "mp_queue_create: out is NULL");
    int rc = mp__queue_check_opts(o);
    if (rc < 0 || (rc = mp__heap_ensure()) < 0)
        return rc;
    mp_queue *q = NULL;
    mp__qseg *seg = NULL;
    int efd = -1;
    if ((rc = mp__heap_alloc_for("mp_queue_create", (void **)&q, sizeof *q)) < 0)
        goto fail;
    if ((rc = mp__heap_alloc_for("mp_queue_create", (void **)&seg, sizeof *seg + MP__QSEG_MIN)) < 0)
        goto fail;
    seg->size = MP__QSEG_MIN;
    if ((efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        rc = mp__errno();
        goto fail;
    }
    /* The ring keeps no byte count and no task count: queues with a byte
     * bound or joinable ones use the chain only. */
    if (!o->joinable && !o->max_bytes && (rc = mp__qring_new(q, o->maxsize)) < 0)
        goto fail;
    if ((rc = mp__robust_mutex_init(&q->lock, false)) < 0)
        goto fail;
    q->maxsize = o->maxsize;
    q->max_bytes = o->max_bytes;
    q->joinable = o->joinable;
    q->simple = o->simple;
    q->tag = queue_new_tag(q);
    q->head_seg = q->tail_seg = seg;
    q->efd = efd;
    if ((rc = mp__queue_efd_register(q)) < 0) {
        mp__robust_mutex_fini(&q->lock);
        goto fail;
    }
    q->head = MP__OBJ_HEAD_INIT;
    __atomic_store_n(&q->head.magic, MP__QUEUE_MAGIC, __ATOMIC_RELEASE);
    *out = q;
    return 0;
fail:
    if (efd >= 0)
        close(efd);
    mp__heap_free(q ? q->ring_mem : NULL);
    mp__heap_free(seg);
    mp__heap_free(q);
    return rc;
}

void mp_queue_destroy(mp_queue *q)
{
    if (mp__obj_is_remote(q)) {
        const mp__queue_ops *ops = mp__queue_remote(q);
        if (ops)
            ops->destroy(q);
        return;
    }
    if (!mp__queue_valid(q) || mp__obj_named(q))
        return;
    q->head.magic = 0;
    mp__queue_efd_forget(q);
    mp__qstore_free_all(q);
    mp__heap_free(q->ring_mem);
    mp__robust_mutex_fini(&q->lock);
    mp__heap_free(q);
}

/* ---- producers ----------------------------------------------------------- */

/* MP_EMSGSIZE with a detail: len bytes never fit in q. */
static int __attribute__((cold)) too_big(const char *fn, const mp_queue *q, size_t len)
{
    if (len > MP_QUEUE_MAX_MESSAGE)
        return mp__fail(MP_EMSGSIZE, "%s: len %zu is above MP_QUEUE_MAX_MESSAGE (%zu)", fn, len,
                        (size_t)MP_QUEUE_MAX_MESSAGE);
    return mp__fail(MP_EMSGSIZE, "%s: len %zu is above the queue's max_bytes (%zu)", fn, len,
                    (size_t)q->max_bytes);
}

/* MP_ENOMEM with a detail: the shared heap had no room for a message of
 * len bytes (the chain's segments come from mp__heap_alloc, which sets no
 * detail of its own). */
static int __attribute__((cold)) heap_full(const char *fn, size_t len)
{
    return mp__fail(MP_ENOMEM,
                    "%s: no room in the shared heap for a message of %zu bytes (MP_HEAP_SIZE or "
                    "mp_init_opts.heap_size sets its size)",
                    fn, len);
}

static int put_check(const char *fn, mp_queue *q, const void *data, size_t len)
{
    if (!mp__queue_valid(q))
        return mp__queue_fail(fn, q);
    if (!data && len > 0)
        return mp__fail(MP_EINVAL, "%s: data is NULL with len %zu", fn, len);
    if (len > MP_QUEUE_MAX_MESSAGE || (q->max_bytes && len > q->max_bytes))
        return too_big(fn, q, len);
    return 0;
}

/* Lock held: may a message of len bytes go into the chain? With a ring,
 * chain_intent is raised first (until the lock is dropped): a ring producer
 * claiming a slot meanwhile either is counted here or sees the intent and
 * steps back, so the two never overshoot maxsize together. */
static bool has_room(mp_queue *q, size_t len)
{
    if (q->ring)
        atomic_store(&q->chain_intent, 1);
    uint64_t count = mp__queue_count(q);
    if (q->maxsize && count + atomic_load(&q->reserved) >= q->maxsize)
        return false;
    uint64_t bytes = atomic_load_explicit(&q->bytes, memory_order_relaxed);
    return !q->max_bytes || bytes + len <= q->max_bytes;
}

/* Lock held: waits until a message of len bytes fits. A message with data
 * small enough tries the ring first (*in_ring: it went there, done). The
 * last check after an expired wait decides, so a timeout never hides room
 * that appeared. */
static int admit(mp_queue *q, const void *data, size_t len, const mp__deadline *d, bool *in_ring)
{
    bool last = false, spun = false;
    *in_ring = false;
    for (;;) {
        if (atomic_load_explicit(&q->closed, memory_order_relaxed))
            return MP_ECLOSED;
        if (data && q->ring) {
            int rr = mp__qring_put_quiet(q, data, len);
            if (rr == MP__QR_OK || rr == MP__QR_CLOSED) {
                *in_ring = rr == MP__QR_OK;
                return rr == MP__QR_OK ? 0 : MP_ECLOSED;
            }
        }
        if (has_room(q, len))
            return 0;
        if (last || mp__deadline_expired(d))
            return MP_EFULL;
        int rc = mp__queue_sleep(q, &q->get_seq, &q->putters, d, &spun);
        if (rc == MP_ETIMEDOUT)
            last = true;
        else if (rc < 0)
            return rc;
    }
}

/* Lock held: n messages were published; wake as many consumers. */
static void wake_getters(mp_queue *q, size_t n, mp__qwake *w)
{
    /* seq_cst: after a ring publication, against a sleeper registering
     * without the lock's help (see mp__qring_wake_getters). */
    uint32_t g = atomic_load(&q->getters);
    w->signal = true;
    if (g == 0)
        return;
    atomic_fetch_add(&q->put_seq, 1);
    w->getters = n < g ? (int)n : (int)g;
}

static int put_large(mp_queue *q, const void *data, size_t len, double timeout)
{
    void *buf;
    int rc = mp_queue_reserve(q, len, &buf, timeout);
    if (rc < 0)
        return rc == MP_ENOMEM ? heap_full("mp_queue_put", len) : rc;
    memcpy(buf, data, len);
    return mp_queue_commit(q, buf);
}

int mp_queue_put(mp_queue *q, const void *data, size_t len, double timeout)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), put, q, data, len, timeout);
    int rc = put_check("mp_queue_put", q, data, len);
    if (rc < 0)
        return rc;
    mp__deadline d;
    if ((rc = mp__deadline_init(&d, timeout)) < 0)
        return mp__queue_fail_timeout("mp_queue_put");
    /* A small message goes into the ring without the lock when it can. */
    int rr = mp__qring_put(q, data, len, timeout != 0 ? &d : NULL);
    if (rr == MP__QR_OK || rr == MP__QR_CLOSED)
        return rr == MP__QR_OK ? 0 : MP_ECLOSED;
    /* A large copy runs outside the lock: reserve, copy, commit. */
    if (len > MP__QINLINE_MAX)
        return put_large(q, data, len, timeout);
    if ((rc = mp__queue_lock(q)) < 0)
        return rc;
    mp__qwake w = {0};
    mp__qrec *r;
    bool in_ring;
    rc = admit(q, data ? data : "", len, &d, &in_ring);
    if (rc == 0 && !in_ring)
        rc = mp__qstore_append(q, data, len, MP__QREC_COMMITTED, &r);
    if (rc == 0)
        wake_getters(q, 1, &w);
    else if (rc == MP_ENOMEM)
        rc = heap_full("mp_queue_put", len);
    mp__queue_unlock(q, &w);
    return rc;
}

int mp_queue_put_nowait(mp_queue *q, const void *data, size_t len)
{
    return mp_queue_put(q, data, len, 0);
}

int mp_queue_put_many(mp_queue *q, const mp_queue_msg *msgs, size_t n, double timeout)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), put_many, q, msgs, n, timeout);
    const char *f = "mp_queue_put_many";
    if (!mp__queue_valid(q))
        return mp__queue_fail(f, q);
    if (!msgs && n > 0)
        return mp__fail(MP_EINVAL, "%s: msgs is NULL with n %zu", f, n);
    if (n > INT_MAX)
        return mp__fail(MP_EINVAL, "%s: n is %zu (at most INT_MAX)", f, n);
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].data && msgs[i].len > 0)
            return mp__fail(MP_EINVAL, "%s: msgs[%zu].data is NULL with len %zu", f, i,
                            msgs[i].len);
        int rc = put_check(f, q, msgs[i].data, msgs[i].len);
        if (rc < 0)
            return rc;
    }
    mp__deadline d;
    int rc = mp__deadline_init(&d, timeout);
    if (rc < 0)
        return mp__queue_fail_timeout(f);
    if (n == 0)
        return 0;
    if ((rc = mp__queue_lock(q)) < 0)
        return rc;
    mp__qwake w = {0};
    size_t done = 0, chained = 0;
    bool in_ring;
    rc = admit(q, msgs[0].data ? msgs[0].data : "", msgs[0].len, &d, &in_ring);
    done = rc == 0 && in_ring;
    /* The rest go where they fit now: the ring while it takes them, then
     * the chain (and only the chain after that, for their order). */
    while (rc == 0 && done < n) {
        const mp_queue_msg *m = &msgs[done];
        if (chained == 0 && done > 0) {
            int rr = mp__qring_put_quiet(q, m->data ? m->data : "", m->len);
            if (rr == MP__QR_OK) {
                done++;
                continue;
            }
            if (rr == MP__QR_CLOSED)
                break;
        }
        if (done > 0 && !has_room(q, m->len))
            break;
        mp__qrec *r;
        rc = mp__qstore_append(q, m->data, m->len, MP__QREC_COMMITTED, &r);
        done += rc == 0;
        chained += rc == 0;
    }
    if (done > 0)
        wake_getters(q, done, &w);
    mp__queue_unlock(q, &w);
    return done > 0 ? (int)done : rc;
}

int mp_queue_reserve(mp_queue *q, size_t len, void **buf, double timeout)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), reserve, q, len, buf, timeout);
    const char *f = "mp_queue_reserve";
    int rc = put_check(f, q, NULL, 0);
    if (rc < 0)
        return rc;
    if (!buf)
        return mp__fail(MP_EINVAL, "%s: buf is NULL", f);
    if (len > MP_QUEUE_MAX_MESSAGE || (q->max_bytes && len > q->max_bytes))
        return too_big(f, q, len);
    mp__deadline d;
    if ((rc = mp__deadline_init(&d, timeout)) < 0)
        return mp__queue_fail_timeout(f);
    if ((rc = mp__queue_lock(q)) < 0)
        return rc;
    mp__qrec *r;
    bool in_ring;
    rc = admit(q, NULL, len, &d, &in_ring);
    if (rc == 0)
        rc = mp__qstore_append(q, NULL, len, MP__QREC_RESERVED, &r);
    mp__queue_unlock(q, NULL);
    if (rc == 0)
        *buf = mp__qrec_data(r);
    else if (rc == MP_ENOMEM)
        rc = heap_full(f, len);
    return rc;
}

/* Lock held: r must be a reservation of this process. */
static int check_holder(const char *fn, const mp__qrec *r)
{
    if (atomic_load_explicit(&r->state, memory_order_relaxed) != MP__QREC_RESERVED)
        return mp__fail(MP_EINVAL,
                        "%s: buf is not a live reservation (already committed or aborted)", fn);
    int32_t pid;
    uint64_t start;
    mp__qowner_self(&pid, &start);
    if (r->owner_pid != pid)
        return mp__fail(MP_EPERM, "%s: buf was reserved by another process (pid %d), not this one",
                        fn, (int)r->owner_pid);
    return 0;
}

int mp_queue_commit(mp_queue *q, void *buf)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), commit, q, buf);
    mp__qrec *r;
    int rc = mp__queue_lock_rec("mp_queue_commit", "buf", q, buf, &r);
    if (rc < 0)
        return rc;
    mp__qwake w = {0};
    if ((rc = check_holder("mp_queue_commit", r)) == 0) {
        mp__qstore_set_unfinished_after(q, &r->state, MP__QREC_COMMITTED);
        mp__qcount_sub(&q->reserved, 1);
        atomic_fetch_add(&q->count, 1);
        wake_getters(q, 1, &w);
    }
    mp__queue_unlock(q, &w);
    return rc;
}

int mp_queue_abort(mp_queue *q, void *buf)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), abort, q, buf);
    mp__qrec *r;
    int rc = mp__queue_lock_rec("mp_queue_abort", "buf", q, buf, &r);
    if (rc < 0)
        return rc;
    mp__qwake w = {0};
    if ((rc = check_holder("mp_queue_abort", r)) == 0) {
        atomic_store_explicit(&r->state, MP__QREC_DONE, memory_order_release);
        mp__qcount_sub(&q->reserved, 1);
        mp__qcount_sub(&q->bytes, r->len);
        mp__qstore_advance(q);
        mp__queue_space_freed(q, 1, &w);
    }
    mp__queue_unlock(q, &w);
    return rc;
}

int mp_queue_close(mp_queue *q)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), close, q);
    if (!mp__queue_valid(q))
        return mp__queue_fail("mp_queue_close", q);
    int rc = mp__queue_lock(q);
    if (rc < 0)
        return rc;
    atomic_store(&q->closed, 1);
    atomic_fetch_add(&q->put_seq, 1);
    atomic_fetch_add(&q->get_seq, 1);
    mp__qwake w = {.getters = INT32_MAX, .putters = INT32_MAX, .signal = true};
    mp__queue_unlock(q, &w);
    return 0;
}

int mp_queue_qsize(mp_queue *q, size_t *n)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), qsize, q, n);
    if (!mp__queue_valid(q))
        return mp__queue_fail("mp_queue_qsize", q);
    if (!n)
        return mp__fail(MP_EINVAL, "mp_queue_qsize: n is NULL");
    /* A slot left claimed by a dead producer must not count. */
    if (mp__qring_state(q) == MP__QR_BUSY)
        mp__qring_reap(q);
    *n = (size_t)mp__queue_count(q);
    return 0;
}

int mp_queue_empty(mp_queue *q)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), empty, q);
    if (!mp__queue_valid(q))
        return mp__queue_fail("mp_queue_empty", q);
    if (mp__qring_state(q) == MP__QR_BUSY)
        mp__qring_reap(q);
    return mp__queue_count(q) == 0;
}

int mp_queue_full(mp_queue *q)
{
    if (mp__obj_is_remote(q))
        return MP__REMOTE_CALL(mp__queue_remote(q), full, q);
    if (!mp__queue_valid(q))
        return mp__queue_fail("mp_queue_full", q);
    int rc = mp__queue_lock(q);
    if (rc < 0)
        return rc;
    bool full = !has_room(q, 0) || (q->max_bytes && atomic_load(&q->bytes) >= q->max_bytes);
    mp__queue_unlock(q, NULL);
    return full;
}
