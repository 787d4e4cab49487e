/* Queues: the shared layout and the pieces shared by queue*.c. Not
 * installed.
 *
 * A queue is one struct in the shared heap, a ring of small messages used
 * without the lock (queue/queue_ring.c; joinable and byte-bounded queues have
 * none) and a chain of segments, each a heap block holding records back to
 * back: a 32-byte header (length, state, owner) followed by the payload,
 * padded to 16 bytes. Producers append at the tail of the last segment (a
 * new segment is linked when a record does not fit); consumers take the
 * first committed record from the head and step the head over finished
 * ones; a drained segment goes to a small spare list, so the steady state
 * allocates nothing.
 *
 * Every update of the chain runs under the robust mutex, and is ordered so
 * that a holder killed at any instruction leaves a state mp__queue_repair
 * can fix: a record becomes visible by one release store (the segment's
 * tail, or the record's state), and the counters are recomputed from the
 * records. The one counter that cannot be recomputed (unfinished tasks) is
 * covered by a one-entry journal. */
#ifndef MULTIPROC_QUEUE_INTERNAL_H
#define MULTIPROC_QUEUE_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "heap/heap_object.h"
#include "os/futex.h"
#include "heap/heap.h"
#include "base/internal.h"
#include "multiproc/queue.h"
#include "queue/queue_remote.h"
#include "os/robust_mutex.h"

#define MP__QUEUE_MAGIC     0x7571706du          /* "mpqu" */
#define MP__QSEG_MIN        ((size_t)256 * 1024) /* smallest segment */
#define MP__QSPARE_MAX      8u                   /* drained segments kept */
#define MP__QINLINE_MAX     ((size_t)64 * 1024)  /* larger copies run unlocked */
#define MP__QSLICE_NS       (100 * 1000000LL)    /* wait slice while records are held */
#define MP__QSPIN_NS        (50 * 1000LL)        /* watch before sleeping */
#define MP__QLOCK_TRIES     200u                 /* trylock rounds before blocking */
#define MP__QRING_SHIFT     10u                  /* 1024 ring slots, unbounded queues */
#define MP__QRING_SHIFT_MIN 6u                   /* bounded: maxsize slots, 64 to 8192 */
#define MP__QRING_SHIFT_MAX 13u
#define MP__QRING_WORDS     13u                    /* payload words of a slot */
#define MP__QRING_MAX       (MP__QRING_WORDS * 8u) /* largest message in the ring */

enum {
    MP__QREC_COMMITTED = 1, /* ready to get */
    MP__QREC_RESERVED = 2,  /* a producer writes it (zero copy or large put) */
    MP__QREC_PEEKED = 3,    /* a consumer reads it in place */
    MP__QREC_DONE = 4,      /* consumed or abandoned: space to reclaim */
};

typedef struct mp__qrec {
    uint64_t len;
    _Atomic uint64_t state;
    int32_t owner_pid;    /* RESERVED / PEEKED: the holder */
    uint32_t tag;         /* identifies the queue, for commit / release checks */
    uint64_t owner_start; /* holder's start time (pid reuse) */
} mp__qrec;

/* A ring slot (128 bytes). word packs the slot's round (position >>
 * MP__QRING_SHIFT, 40 bits), the claiming producer's pid (22 bits) and a
 * state (2 bits); see queue/queue_ring.c. Every field is atomic: a consumer may
 * read a slot optimistically while a producer of the next round writes it,
 * and throws what it read away when its claim fails. */
typedef struct mp__qslot {
    _Atomic uint64_t word;
    _Atomic uint64_t start; /* claimer's start time (pid reuse) */
    _Atomic uint64_t meta;  /* position << 8 | length, stored after start */
    _Atomic uint64_t data[MP__QRING_WORDS];
} mp__qslot;

/* Outcomes of the ring's operations. */
enum {
    MP__QR_OK = 0,   /* put, or taken */
    MP__QR_CHAIN,    /* put: the ring cannot take it now; use the chain */
    MP__QR_EMPTY,    /* take: nothing claimed in the ring */
    MP__QR_BUSY,     /* take: the first slot is being written */
    MP__QR_TOOSMALL, /* take: the first message does not fit (length set) */
    MP__QR_CLOSED,   /* put: the queue is closed */
};

typedef struct mp__qseg {
    struct mp__qseg *next;
    uint64_t size;         /* bytes of data[] */
    uint64_t head;         /* first record not yet known finished */
    _Atomic uint64_t tail; /* end of the published records */
    uint64_t pad[4];
    unsigned char data[];
} mp__qseg;

struct mp_queue {
    mp__obj_head head;
    uint64_t maxsize, max_bytes;
    uint32_t tag;
    bool joinable, simple;
    int efd;             /* valid in processes that hold it (mp__queue_efd) */
    mp__qslot *ring;     /* NULL: this queue has no ring (joinable, byte bound) */
    uint32_t ring_shift; /* 1 << ring_shift slots */
    void *ring_mem;      /* the heap block holding ring (aligned to 64 bytes) */
    mp__robust_mutex lock;

    /* Under the lock. count and bytes are also read without it. */
    mp__qseg *head_seg, *tail_seg, *spare;
    uint32_t nspare;
    _Atomic uint64_t count;    /* committed records */
    _Atomic uint64_t reserved; /* RESERVED records */
    uint64_t peeked;           /* PEEKED records */
    _Atomic uint64_t bytes;    /* payload of every record not DONE */
    _Atomic uint32_t closed;
    _Atomic uint64_t unfinished; /* joinable: put and not yet task_done */

    /* Journal of the last step that changes unfinished: when *j_word
     * holds j_value, the step was published and unfinished must be
     * j_unfinished. */
    _Atomic uint64_t *j_word;
    uint64_t j_value, j_unfinished;
    _Atomic uint32_t j_active;

    /* Futex words (bumped under the lock) and their sleepers. */
    _Alignas(64) _Atomic uint32_t put_seq; /* consumers sleep on it */
    _Atomic uint32_t getters;
    _Alignas(64) _Atomic uint32_t get_seq; /* producers sleep on it */
    _Atomic uint32_t putters;
    _Alignas(64) _Atomic uint32_t done_seq; /* join sleeps on it */
    _Atomic uint32_t joiners;
    _Atomic uint32_t pollers; /* inside mp_wait */
    /* Set under the lock while a producer decides to append to the chain
     * of a queue with a ring: ring producers that see it step back. */
    _Atomic uint32_t chain_intent;

    /* The ring's positions: hints, each advanced past a slot by whoever
     * sees the slot done (a process may die before advancing it). */
    _Alignas(64) _Atomic uint64_t enq; /* next slot to claim */
    _Atomic uint64_t deq_seen;         /* producers' copy of deq */
    _Alignas(64) _Atomic uint64_t deq; /* next slot to take */
};

/* Wake-ups decided under the lock, done after it. */
typedef struct mp__qwake {
    int getters, putters, joiners;
    bool signal; /* new messages or close: tell mp_wait */
} mp__qwake;

/* Counters are written only under the lock and read without it: a plain
 * load and store, without the cost of a locked read-modify-write. */
static inline void mp__qcount_add(_Atomic uint64_t *c, uint64_t delta)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}
static inline void mp__qcount_sub(_Atomic uint64_t *c, uint64_t delta)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - delta,
                          memory_order_relaxed);
}

static inline size_t mp__qrec_size(uint64_t len)
{
    return sizeof(mp__qrec) + (((size_t)len + 15) & ~(size_t)15);
}
static inline unsigned char *mp__qrec_data(mp__qrec *r)
{
    return (unsigned char *)(r + 1);
}

/* queue/queue.c */
bool mp__queue_valid(const mp_queue *q);
/* MP_EINVAL with a detail: q, the argument of fn, is not a live queue. */
int mp__queue_fail(const char *fn, const mp_queue *q) __attribute__((cold));
/* MP_EINVAL with a detail: timeout, the argument of fn, is NaN. */
int mp__queue_fail_timeout(const char *fn) __attribute__((cold));
/* Validates options (not NULL): 0 or MP_EINVAL, with a detail in the
 * words of mp_queue_create. */
int mp__queue_check_opts(const mp_queue_opts *o);
int mp__queue_lock(mp_queue *q);
/* The start of the calls on one message record (commit, abort, release):
 * checks q, finds the record of payload and takes the lock. Returns 0 with
 * *r and the lock held, or MP_EINVAL (not a queue, not one of its
 * records; the detail names fn and arg, the payload's parameter) or an
 * error of mp__queue_lock. */
int mp__queue_lock_rec(const char *fn, const char *arg, mp_queue *q, const void *payload,
                       mp__qrec **r);
void mp__queue_unlock(mp_queue *q, const mp__qwake *w);
/* Waits for the other side; lock held on entry and on return. Alternate
 * calls (tracked in *spun, false at first) spin briefly without the lock,
 * then sleep on *word (bumped by the other side) with *sleepers counted.
 * The caller re-checks its condition after every return. Returns 0 or
 * MP_ETIMEDOUT, MP_EINTR or MP_ECANCELED (multiproc/interrupt.h; the
 * lock held), or a lock error. */
int mp__queue_sleep(mp_queue *q, _Atomic uint32_t *word, _Atomic uint32_t *sleepers,
                    const mp__deadline *d, bool *spun);
/* Lock held: n records' space was given back; wake producers. */
void mp__queue_space_freed(mp_queue *q, size_t n, mp__qwake *w);

/* queue/queue_store.c (all under the lock) */
/* Makes the tail segment hold need more bytes (a new segment if not). */
int mp__qstore_make_room(mp_queue *q, size_t need);
int mp__qstore_append(mp_queue *q, const void *data, uint64_t len, uint64_t state, mp__qrec **out);
mp__qrec *mp__qstore_first(mp_queue *q);
void mp__qstore_advance(mp_queue *q);
void mp__qstore_set_unfinished_after(mp_queue *q, _Atomic uint64_t *word, uint64_t value);
bool mp__qstore_reap_dead(mp_queue *q);
void mp__queue_repair(mp_queue *q);
void mp__qstore_free_all(mp_queue *q);
void mp__qowner_self(int32_t *pid, uint64_t *start);
/* True only when pid is certainly not the live holder: no such process, a
 * zombie, or (start not 0) another process that reused the pid. */
bool mp__qowner_dead(int32_t pid, uint64_t start);
mp__qrec *mp__qstore_rec_of(mp_queue *q, const void *payload);

/* queue/queue_ring.c: the lock-free ring of small messages (see there) */
int mp__qring_new(mp_queue *q, size_t maxsize);
/* Puts a message of at most MP__QRING_MAX bytes; while the ring is full,
 * watches it briefly, never past d (NULL: not at all). MP__QR_OK,
 * MP__QR_CHAIN (the lock path must decide) or MP__QR_CLOSED. */
int mp__qring_put(mp_queue *q, const void *data, size_t len, const mp__deadline *d);
/* The same without spinning or waking anyone (a batch wakes once). */
int mp__qring_put_quiet(mp_queue *q, const void *data, size_t len);
/* Takes the first message into dst (cap bytes), length in *len. */
int mp__qring_take(mp_queue *q, void *dst, size_t cap, size_t *len);
int mp__qring_take_quiet(mp_queue *q, void *dst, size_t cap, size_t *len);
/* The same, but watching the ring for a few microseconds (without the
 * lock) while it is empty, as long as the chain is empty too. */
int mp__qring_take_soon(mp_queue *q, void *dst, size_t cap, size_t *len, const mp__deadline *d);
/* MP__QR_OK (a message is ready), MP__QR_EMPTY or MP__QR_BUSY. */
int mp__qring_state(mp_queue *q);
/* Messages claimed and not yet taken (an estimate without the lock). */
uint64_t mp__qring_used(mp_queue *q);
/* Drops the first slot when its producer died while writing it. */
bool mp__qring_reap(mp_queue *q);
/* Wakes a sleeping consumer and mp_wait after a message went in. */
void mp__qring_wake_getters(mp_queue *q);
/* Messages the queue holds: chain and ring. */
uint64_t mp__queue_count(mp_queue *q);
/* Producers must append to the chain: something there comes first. */
static inline bool mp__qchain_pending(mp_queue *q)
{
    return atomic_load_explicit(&q->count, memory_order_relaxed) != 0 ||
           atomic_load_explicit(&q->reserved, memory_order_relaxed) != 0 ||
           atomic_load_explicit(&q->chain_intent, memory_order_relaxed) != 0;
}

/* queue/queue_wait.c */
int mp__queue_efd(const mp_queue *q);
int mp__queue_efd_register(mp_queue *q);
void mp__queue_efd_forget(mp_queue *q);
void mp__queue_signal(mp_queue *q);
int mp__queue_wait_prepare(mp_queue *q, int *fd);
bool mp__queue_wait_confirm(mp_queue *q);
void mp__queue_pollers_add(mp_queue *q, int delta);

#endif /* MULTIPROC_QUEUE_INTERNAL_H */
