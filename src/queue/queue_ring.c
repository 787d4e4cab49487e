/* Queues: the ring of small messages, used without the lock (see
 * queue/queue_internal.h and docs/queue.md, "Queues").
 *
 * A queue without a byte bound and not joinable has, besides its chain of
 * records, a ring of SLOTS fixed-size slots (maxsize rounded up to a power
 * of two, 64 to 8192; 1024 when unbounded) for messages of up to
 * MP__QRING_MAX bytes. Position p (a 64-bit count) lives in slot p mod
 * SLOTS, in round p / SLOTS. A slot's word says, for one round, whether it
 * is FREE (a producer may claim it), CLAIMED by a producer (pid in the
 * word) that is writing it, or PUB (published, ready to take):
 *
 *   FREE(p) --claim CAS--> CLAIMED(p, pid) --publish CAS--> PUB(p)
 *   PUB(p) --take CAS--> FREE(p + SLOTS)        (the consumer got it)
 *   CLAIMED(p, pid) --> FREE(p + SLOTS)         (abandoned, or pid dead)
 *
 * Every transition is one compare-and-swap on the word, so a process killed
 * at any instruction leaves each slot in one of these states. enq and deq
 * are hints, advanced by whoever sees that the slot at the hint moved on.
 * A consumer copies the payload out before its take CAS and keeps the copy
 * only when the CAS succeeds: until then the message stays in the ring, so
 * a consumer's death loses only a message its CAS had already taken. A
 * producer's death while its slot is CLAIMED is detected from the pid and
 * start time, and the slot is dropped: that message was in its hands.
 *
 * Order with the chain: a producer uses the ring only while the chain holds
 * no committed or reserved record (and no producer is deciding to append
 * there), so a producer's ring messages never follow its chain records; a
 * consumer takes from the chain only when the ring is empty, so its ring
 * messages never follow its chain records either. */
#include <string.h>

#include "queue/queue_internal.h"

enum { MP__QS_FREE = 0, MP__QS_CLAIMED = 1, MP__QS_PUB = 2 };

#define MP__QS_PID_BITS 22u
#define MP__QS_ROUND_AT (2u + MP__QS_PID_BITS)

static inline uint64_t qs_word(const mp_queue *q, uint64_t pos, uint32_t pid, unsigned state)
{
    return ((pos >> q->ring_shift) << MP__QS_ROUND_AT) | ((uint64_t)pid << 2) | state;
}

static inline uint64_t qs_round(uint64_t word)
{
    return word >> MP__QS_ROUND_AT;
}

static inline uint64_t qs_slots(const mp_queue *q)
{
    return (uint64_t)1 << q->ring_shift;
}

static inline mp__qslot *qs_slot(mp_queue *q, uint64_t pos)
{
    return &q->ring[pos & (((uint64_t)1 << q->ring_shift) - 1)];
}

static inline void qs_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Moves a position hint past pos, unless someone already did. */
static inline void qring_advance(_Atomic uint64_t *hint, uint64_t pos)
{
    uint64_t expected = pos;
    atomic_compare_exchange_strong(hint, &expected, pos + 1);
}

int mp__qring_new(mp_queue *q, size_t maxsize)
{
    /* A bounded queue's ring holds maxsize messages when it can, so that a
     * full queue is a full ring and never spills into the chain. */
    unsigned shift = MP__QRING_SHIFT;
    if (maxsize) {
        shift = MP__QRING_SHIFT_MIN;
        while (shift < MP__QRING_SHIFT_MAX && ((size_t)1 << shift) < maxsize)
            shift++;
    }
    q->ring_shift = shift;
    void *mem;
    int rc =
        mp__heap_alloc_for("mp_queue_create", &mem, (size_t)qs_slots(q) * sizeof(mp__qslot) + 64);
    if (rc < 0)
        return rc;
    mp__qslot *ring = (mp__qslot *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    for (uint64_t i = 0; i < qs_slots(q); i++)
        atomic_init(&ring[i].word, qs_word(q, i, 0, MP__QS_FREE));
    q->ring = ring;
    q->ring_mem = mem;
    return 0;
}

uint64_t mp__qring_used(mp_queue *q)
{
    if (!q->ring)
        return 0;
    /* enq trails the claims (it moves after each publication): step it
     * over the claimed and published slots first, so that every claim
     * made before this call is counted. */
    for (;;) {
        uint64_t e = atomic_load(&q->enq);
        uint64_t w = atomic_load(&qs_slot(q, e)->word);
        bool this_round = qs_round(w) == qs_round(qs_word(q, e, 0, 0));
        bool next_round = qs_round(w) == qs_round(qs_word(q, e + qs_slots(q), 0, 0));
        if (!next_round && (!this_round || (w & 3) == MP__QS_FREE))
            break;
        qring_advance(&q->enq, e);
    }
    uint64_t d = atomic_load(&q->deq), e = atomic_load(&q->enq);
    /* A producer that died before advancing enq leaves it behind deq. */
    return e > d ? e - d : 0;
}

uint64_t mp__queue_count(mp_queue *q)
{
    return atomic_load_explicit(&q->count, memory_order_relaxed) + mp__qring_used(q);
}

/* ---- producers ----------------------------------------------------------- */

/* Room under maxsize for one more message at position e: compared with a
 * cached deq first, so that producers rarely read the consumers' line. */
static bool qring_room(mp_queue *q, uint64_t e)
{
    if (!q->maxsize)
        return true;
    uint64_t d = atomic_load_explicit(&q->deq_seen, memory_order_relaxed);
    if (e < d || e - d < q->maxsize)
        return true;
    d = atomic_load(&q->deq);
    atomic_store_explicit(&q->deq_seen, d, memory_order_relaxed);
    return e < d || e - d < q->maxsize;
}

/* The ring is full (by maxsize, or every slot in use), or empty: may the
 * caller watch it a little longer? A process at work on the other side
 * acts within microseconds. Until MP__QSPIN_NS after the first look at the
 * clock, and never past the caller's deadline (NULL: not at all). */
static bool qring_watch(const mp__deadline *d, int64_t *end)
{
    if (!d)
        return false;
    int64_t now = mp__now_ns();
    if (*end < 0) {
        *end = now + MP__QSPIN_NS;
        if (d->ns >= 0 && d->ns < *end)
            *end = d->ns;
    }
    if (now >= *end)
        return false;
    for (unsigned k = 0; k < 16; k++)
        qs_relax();
    return true;
}

/* Claims the slot at enq: MP__QR_OK with *pos, or MP__QR_CHAIN when the
 * queue stays full by maxsize or every slot stays in use. */
static int qring_claim(mp_queue *q, uint32_t pid, const mp__deadline *d, uint64_t *pos)
{
    int64_t end = -1;
    for (;;) {
        uint64_t e = atomic_load_explicit(&q->enq, memory_order_relaxed);
        if (!qring_room(q, e)) {
            if (!qring_watch(d, &end))
                return MP__QR_CHAIN;
            continue;
        }
        mp__qslot *s = qs_slot(q, e);
        uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
        uint64_t free_w = qs_word(q, e, 0, MP__QS_FREE);
        if (w == free_w) {
            /* enq moves on after the publication (mp__qring_put), so
             * that a consumer watching enq does not read the slot while it
             * is being written; other producers step over it meanwhile. */
            if (atomic_compare_exchange_strong(&s->word, &w, qs_word(q, e, pid, MP__QS_CLAIMED))) {
                *pos = e;
                return MP__QR_OK;
            }
            continue;
        }
        uint64_t next_w = qs_word(q, e + qs_slots(q), 0, MP__QS_FREE);
        if (qs_round(w) != qs_round(free_w) && qs_round(w) != qs_round(next_w)) {
            /* The slot still holds the previous round: all in use. */
            if (!qring_watch(d, &end))
                return MP__QR_CHAIN;
            continue;
        }
        /* Claimed or published in this round, or abandoned: enq is
         * behind; step over it. */
        qring_advance(&q->enq, e);
    }
}

static void qring_fill(mp__qslot *s, uint64_t pos, uint64_t start, const void *data, size_t len)
{
    const unsigned char *src = data;
    atomic_store_explicit(&s->start, start, memory_order_relaxed);
    atomic_store_explicit(&s->meta, pos << 8 | len, memory_order_release);
    for (size_t i = 0; i * 8 < len; i++) {
        uint64_t v = 0;
        size_t n = len - i * 8 < 8 ? len - i * 8 : 8;
        memcpy(&v, src + i * 8, n);
        atomic_store_explicit(&s->data[i], v, memory_order_relaxed);
    }
}

void mp__qring_wake_getters(mp_queue *q)
{
    /* seq_cst loads after the seq_cst publish: a consumer registering as a
     * sleeper either is seen here or sees the message (mp__queue_sleep). */
    if (atomic_load(&q->getters) > 0) {
        atomic_fetch_add(&q->put_seq, 1);
        mp__futex_wake(&q->put_seq, 1);
    }
    if (atomic_load(&q->pollers) > 0)
        mp__queue_signal(q);
}

static int qring_put_(mp_queue *q, const void *data, size_t len, const mp__deadline *d, bool wake)
{
    int32_t pid;
    uint64_t start;
    /* After a lock holder's death the chain's counters wait for the next
     * locker's repair: until then, puts take the lock. */
    if (!q->ring || len > MP__QRING_MAX || mp__qchain_pending(q) ||
        mp__robust_mutex_owner_died(&q->lock))
        return MP__QR_CHAIN;
    mp__qowner_self(&pid, &start);
    if (pid <= 0 || (uint32_t)pid >= (1u << MP__QS_PID_BITS))
        return MP__QR_CHAIN;
    for (;;) {
        uint64_t e;
        int rc = qring_claim(q, (uint32_t)pid, d, &e);
        if (rc != MP__QR_OK)
            return rc;
        mp__qslot *s = qs_slot(q, e);
        uint64_t claimed = qs_word(q, e, (uint32_t)pid, MP__QS_CLAIMED);
        /* After the claim (seq_cst), against mp_queue_close and against a
         * producer deciding to append to the chain (chain_intent): either
         * they see this claim, or this sees them and gives the slot up. */
        bool closed = atomic_load(&q->closed) != 0;
        if (closed || atomic_load(&q->chain_intent) || atomic_load(&q->count) ||
            atomic_load(&q->reserved)) {
            uint64_t w = claimed;
            atomic_compare_exchange_strong(&s->word, &w,
                                           qs_word(q, e + qs_slots(q), 0, MP__QS_FREE));
            qring_advance(&q->enq, e);
            return closed ? MP__QR_CLOSED : MP__QR_CHAIN;
        }
        qring_fill(s, e, start, data, len);
        uint64_t w = claimed;
        if (atomic_compare_exchange_strong(&s->word, &w, qs_word(q, e, 0, MP__QS_PUB))) {
            qring_advance(&q->enq, e);
            /* The next claims' slots were last written by a consumer a
             * round ago: start bringing them over now. */
            __builtin_prefetch(qs_slot(q, e + 2), 1, 3);
            if (wake)
                mp__qring_wake_getters(q);
            return MP__QR_OK;
        }
        /* Taken for a dead claimer's (a reused pid misjudged): again. */
    }
}

int mp__qring_put(mp_queue *q, const void *data, size_t len, const mp__deadline *d)
{
    return qring_put_(q, data, len, d, true);
}

int mp__qring_put_quiet(mp_queue *q, const void *data, size_t len)
{
    return qring_put_(q, data, len, NULL, false);
}

/* ---- consumers ----------------------------------------------------------- */

static void qring_wake_putters(mp_queue *q)
{
    if (atomic_load(&q->putters) > 0) {
        atomic_fetch_add(&q->get_seq, 1);
        mp__futex_wake(&q->get_seq, 1);
    }
}

/* The slot at deq and its word, with deq moved past finished slots. */
static mp__qslot *qring_head(mp_queue *q, uint64_t *pos, uint64_t *word)
{
    for (;;) {
        uint64_t d = atomic_load(&q->deq);
        mp__qslot *s = qs_slot(q, d);
        uint64_t w = atomic_load(&s->word);
        if (qs_round(w) == qs_round(qs_word(q, d + qs_slots(q), 0, 0))) {
            qring_advance(&q->deq, d);
            continue;
        }
        *pos = d;
        *word = w;
        return s;
    }
}

static int qring_classify(const mp_queue *q, uint64_t pos, uint64_t w)
{
    if (w == qs_word(q, pos, 0, MP__QS_PUB))
        return MP__QR_OK;
    if (qs_round(w) == qs_round(qs_word(q, pos, 0, 0)) && (w & 3) == MP__QS_CLAIMED)
        return MP__QR_BUSY;
    return MP__QR_EMPTY;
}

int mp__qring_state(mp_queue *q)
{
    if (!q->ring)
        return MP__QR_EMPTY;
    uint64_t d, w;
    qring_head(q, &d, &w);
    return qring_classify(q, d, w);
}

static int qring_take_(mp_queue *q, void *dst, size_t cap, size_t *len, bool wake)
{
    if (!q->ring)
        return MP__QR_EMPTY;
    for (;;) {
        uint64_t d, w;
        mp__qslot *s = qring_head(q, &d, &w);
        int st = qring_classify(q, d, w);
        if (st != MP__QR_OK)
            return st;
        uint64_t n = atomic_load_explicit(&s->meta, memory_order_relaxed) & 0xff;
        uint64_t copy[MP__QRING_WORDS];
        for (size_t i = 0; n <= MP__QRING_MAX && i * 8 < n; i++)
            copy[i] = atomic_load_explicit(&s->data[i], memory_order_relaxed);
        if (n > cap || n > MP__QRING_MAX) {
            /* Only a length read while the word still says PUB is real. */
            if (atomic_load(&s->word) != w)
                continue;
            *len = (size_t)n;
            return MP__QR_TOOSMALL;
        }
        if (!atomic_compare_exchange_strong(&s->word, &w,
                                            qs_word(q, d + qs_slots(q), 0, MP__QS_FREE)))
            continue;
        qring_advance(&q->deq, d);
        if (n)
            memcpy(dst, copy, (size_t)n);
        *len = (size_t)n;
        if (wake)
            qring_wake_putters(q);
        return MP__QR_OK;
    }
}

int mp__qring_take(mp_queue *q, void *dst, size_t cap, size_t *len)
{
    return qring_take_(q, dst, cap, len, true);
}

int mp__qring_take_quiet(mp_queue *q, void *dst, size_t cap, size_t *len)
{
    return qring_take_(q, dst, cap, len, false);
}

int mp__qring_take_soon(mp_queue *q, void *dst, size_t cap, size_t *len, const mp__deadline *d)
{
    int rr = mp__qring_take(q, dst, cap, len);
    if (!q->ring || (rr != MP__QR_EMPTY && rr != MP__QR_BUSY))
        return rr;
    /* Watch enq, not the first slot: polling the slot a producer is
     * writing would take its cache line away at every store. */
    int64_t end = -1;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&q->count, memory_order_relaxed) ||
            atomic_load_explicit(&q->closed, memory_order_relaxed))
            return rr;
        if (rr == MP__QR_BUSY || atomic_load_explicit(&q->enq, memory_order_relaxed) !=
                                     atomic_load_explicit(&q->deq, memory_order_relaxed)) {
            rr = mp__qring_take(q, dst, cap, len);
            if (rr != MP__QR_EMPTY && rr != MP__QR_BUSY)
                return rr;
        }
        qs_relax();
        if (i % 32 == 0 && !qring_watch(d, &end))
            return rr;
    }
}

bool mp__qring_reap(mp_queue *q)
{
    if (!q->ring)
        return false;
    uint64_t d, w;
    mp__qslot *s = qring_head(q, &d, &w);
    if (qring_classify(q, d, w) != MP__QR_BUSY)
        return false;
    int32_t pid = (int32_t)((w >> 2) & ((1u << MP__QS_PID_BITS) - 1));
    /* The start time is the claimer's only when meta names this position
     * (it is stored before meta); otherwise it is a previous round's, and
     * only the pid can be judged. A live claimer is never judged dead: it
     * may be writing the slot. */
    uint64_t meta = atomic_load_explicit(&s->meta, memory_order_acquire);
    uint64_t start = atomic_load_explicit(&s->start, memory_order_relaxed);
    if ((meta >> 8) != ((d << 8) >> 8))
        start = 0;
    if (!mp__qowner_dead(pid, start))
        return false;
    if (!atomic_compare_exchange_strong(&s->word, &w, qs_word(q, d + qs_slots(q), 0, MP__QS_FREE)))
        return true;
    mp__debug("queue %p: dropping a ring slot claimed by dead pid %d", (void *)q, (int)pid);
    qring_advance(&q->deq, d);
    qring_wake_putters(q);
    return true;
}
