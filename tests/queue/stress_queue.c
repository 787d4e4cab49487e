/* Queues driven by several producer and consumer processes and threads at
 * once. Producers (2 child processes and 2 threads of the parent) put
 * PER_PRODUCER messages each through every producer call: put (with short
 * timeouts that may report MP_EFULL and are retried), put_many, and
 * reserve/commit; sizes are mostly small with some above the size that is
 * copied outside the lock. Consumers (2 child processes and 1 thread of the
 * parent) take them through get_into, get, get_many, peek/release and
 * mp_wait. Every message carries its producer, its sequence number and a
 * checksum; each consumer checks that the messages of each producer come
 * in increasing order, and a shared table counts every delivery, which
 * must be exactly one per message at the end. The queue is small (maxsize
 * 32) so that producers and consumers block and wake each other all the
 * time. Run under ThreadSanitizer by make check. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "heap/heap.h"
#include "stress.h"

#define PER_PRODUCER 20000u
#define N_PRODUCERS  4u
#define N_CONSUMERS  3u
#define BIG          ((size_t)80 * 1024)
#define MAX_MSG      BIG
#define BATCH        8u

typedef struct msg_head {
    uint32_t producer, seq;
    uint64_t sum;
} msg_head;

typedef struct shared {
    mp_queue *q;
    _Atomic uint8_t seen[N_PRODUCERS][PER_PRODUCER];
} shared;

static shared *sh;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static size_t msg_size(uint32_t producer, uint32_t seq)
{
    uint64_t h = mix64(((uint64_t)producer << 32) | seq);
    if (h % 500 == 0)
        return BIG;
    return sizeof(msg_head) + (size_t)(h % 100);
}

static void fill(unsigned char *buf, uint32_t producer, uint32_t seq, size_t len)
{
    msg_head h = {producer, seq, 0};
    uint64_t x = mix64(((uint64_t)seq << 32) | producer);
    for (size_t i = sizeof h; i < len; i++)
        buf[i] = (unsigned char)(x + i * 131);
    for (size_t i = sizeof h; i < len; i++)
        h.sum = h.sum * 31 + buf[i];
    memcpy(buf, &h, sizeof h);
}

/* Checks one delivered message; last[] is this consumer's view. */
static void check(const unsigned char *buf, size_t len, uint32_t *last)
{
    STRESS_CHECK(len >= sizeof(msg_head), "short message of %zu bytes", len);
    msg_head h;
    memcpy(&h, buf, sizeof h);
    STRESS_CHECK(h.producer < N_PRODUCERS && h.seq < PER_PRODUCER, "bad header %u/%u", h.producer,
                 h.seq);
    STRESS_CHECK(len == msg_size(h.producer, h.seq), "message %u/%u has %zu bytes", h.producer,
                 h.seq, len);
    uint64_t sum = 0;
    for (size_t i = sizeof h; i < len; i++)
        sum = sum * 31 + buf[i];
    STRESS_CHECK(sum == h.sum, "message %u/%u corrupted", h.producer, h.seq);
    STRESS_CHECK(last[h.producer] == UINT32_MAX || h.seq > last[h.producer],
                 "producer %u: %u after %u", h.producer, h.seq, last[h.producer]);
    last[h.producer] = h.seq;
    uint8_t was = atomic_fetch_add(&sh->seen[h.producer][h.seq], 1);
    STRESS_CHECK(was == 0, "message %u/%u delivered twice", h.producer, h.seq);
}

static void produce(uint32_t id)
{
    unsigned char *buf = malloc(MAX_MSG);
    STRESS_CHECK(buf != NULL, "out of memory");
    for (uint32_t seq = 0; seq < PER_PRODUCER;) {
        size_t len = msg_size(id, seq);
        int mode = (int)((seq + id) % 4);
        if (mode == 0 && len < BIG) {
            /* A batch of up to BATCH small messages. */
            unsigned char *bufs = malloc(BATCH * 256);
            mp_queue_msg m[BATCH];
            uint32_t n = 0;
            for (; n < BATCH && seq + n < PER_PRODUCER && msg_size(id, seq + n) < BIG; n++) {
                m[n].len = msg_size(id, seq + n);
                fill(bufs + n * 256, id, seq + n, m[n].len);
                m[n].data = bufs + n * 256;
            }
            int rc = mp_queue_put_many(sh->q, m, n, 0.01);
            STRESS_CHECK(rc > 0 || rc == MP_EFULL, "put_many: %s", mp_err_name(rc));
            seq += rc > 0 ? (uint32_t)rc : 0;
            free(bufs);
        } else if (mode == 1) {
            void *slot;
            int rc = mp_queue_reserve(sh->q, len, &slot, 0.01);
            STRESS_CHECK(rc == 0 || rc == MP_EFULL, "reserve: %s", mp_err_name(rc));
            if (rc == 0) {
                fill(slot, id, seq, len);
                STRESS_OK(mp_queue_commit(sh->q, slot));
                seq++;
            }
        } else {
            fill(buf, id, seq, len);
            int rc = mp_queue_put(sh->q, buf, len, mode == 2 ? 0.001 : MP_FOREVER);
            STRESS_CHECK(rc == 0 || rc == MP_EFULL, "put: %s", mp_err_name(rc));
            seq += rc == 0;
        }
    }
    free(buf);
}

/* Returns false once the queue is closed and drained. */
static bool consume_one(unsigned char *buf, uint32_t *last, unsigned round)
{
    size_t len, lens[BATCH];
    int rc;
    switch (round % 5) {
    case 0:
        rc = mp_queue_get_into(sh->q, buf, MAX_MSG, &len, 0.01);
        if (rc == 0)
            check(buf, len, last);
        break;
    case 1: {
        void *d;
        rc = mp_queue_get(sh->q, &d, &len, MP_FOREVER);
        if (rc == 0) {
            check(d, len, last);
            free(d);
        }
        break;
    }
    case 2:
        rc = mp_queue_get_many(sh->q, buf, MAX_MSG, lens, BATCH, 0.01);
        for (int i = 0, off = 0; i < rc; off += (int)lens[i], i++)
            check(buf + off, lens[i], last);
        break;
    case 3: {
        const void *d;
        rc = mp_queue_peek(sh->q, &d, &len, 0.01);
        if (rc == 0) {
            check(d, len, last);
            STRESS_OK(mp_queue_release(sh->q, d));
        }
        break;
    }
    default: {
        mp_waitable w[] = {MP_WAIT_QUEUE(sh->q)};
        rc = mp_wait(w, 1, 0.01);
        STRESS_CHECK(rc >= 0, "mp_wait: %s", mp_err_name(rc));
        rc = mp_queue_get_into(sh->q, buf, MAX_MSG, &len, 0);
        if (rc == 0)
            check(buf, len, last);
        break;
    }
    }
    STRESS_CHECK(rc >= 0 || rc == MP_EEMPTY || rc == MP_ECLOSED, "get: %s", mp_err_name(rc));
    return rc != MP_ECLOSED;
}

static void consume(void)
{
    unsigned char *buf = malloc(MAX_MSG);
    uint32_t last[N_PRODUCERS];
    for (size_t i = 0; i < N_PRODUCERS; i++)
        last[i] = UINT32_MAX;
    for (unsigned round = 0; consume_one(buf, last, round); round++)
        ;
    free(buf);
}

/* What a child process gets: under spawn and forkserver it does not share
 * this program's globals, so the shared table travels with it (a pointer
 * into the shared heap means the same in every process). */
struct proc_arg {
    uintptr_t id;
    shared *sh;
};

static int producer_proc(const void *arg, size_t len)
{
    (void)len;
    struct proc_arg a;
    memcpy(&a, arg, sizeof a);
    sh = a.sh;
    produce((uint32_t)a.id);
    return 0;
}

static int consumer_proc(const void *arg, size_t len)
{
    (void)len;
    struct proc_arg a;
    memcpy(&a, arg, sizeof a);
    sh = a.sh;
    consume();
    return 0;
}

static void *producer_thread(void *arg)
{
    produce((uint32_t)(uintptr_t)arg);
    return NULL;
}

static void *consumer_thread(void *arg)
{
    (void)arg;
    consume();
    return NULL;
}

static mp_process *spawn(mp_target_fn fn, uintptr_t arg)
{
    mp_process *p;
    struct proc_arg a = {.id = arg, .sh = sh};
    STRESS_OK(
        mp_process_create(&p, &(mp_process_opts){.target = fn, .args = &a, .args_len = sizeof a}));
    STRESS_OK(mp_process_start(p));
    return p;
}

static void join_ok(mp_process *p)
{
    STRESS_OK(mp_process_join(p, 120));
    int code = -1;
    STRESS_OK(mp_process_exitcode(p, &code));
    STRESS_CHECK(code == 0, "child exited with %d", code);
    mp_process_destroy(p);
}

int main(void)
{
    STRESS_DEADLINE(240);
    STRESS_OK(mp__heap_alloc((void **)&sh, sizeof *sh));
    STRESS_OK(mp_queue_create(&sh->q, &(mp_queue_opts){.maxsize = 32}));
    /* Children first, while the parent has one thread. */
    mp_process *prod[2], *cons[2];
    for (uintptr_t i = 0; i < 2; i++)
        prod[i] = spawn(producer_proc, i);
    for (uintptr_t i = 0; i < 2; i++)
        cons[i] = spawn(consumer_proc, 0);
    pthread_t pt[2], ct;
    for (uintptr_t i = 0; i < 2; i++)
        STRESS_CHECK(pthread_create(&pt[i], NULL, producer_thread, (void *)(i + 2)) == 0, "thread");
    STRESS_CHECK(pthread_create(&ct, NULL, consumer_thread, NULL) == 0, "thread");
    for (int i = 0; i < 2; i++) {
        join_ok(prod[i]);
        pthread_join(pt[i], NULL);
    }
    STRESS_OK(mp_queue_close(sh->q));
    for (int i = 0; i < 2; i++)
        join_ok(cons[i]);
    pthread_join(ct, NULL);
    for (uint32_t p = 0; p < N_PRODUCERS; p++)
        for (uint32_t s = 0; s < PER_PRODUCER; s++)
            STRESS_CHECK(atomic_load(&sh->seen[p][s]) == 1, "message %u/%u delivered %u times", p,
                         s, (unsigned)atomic_load(&sh->seen[p][s]));
    mp_queue_destroy(sh->q);
    mp__heap_free(sh);
    printf("stress_queue: %u messages, each delivered once, in order per producer\n",
           N_PRODUCERS * PER_PRODUCER);
    return 0;
}
