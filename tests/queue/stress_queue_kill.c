/* Fault injection: producers and consumers of one queue are SIGKILLed at
 * random moments while TOTAL messages (10^6; 2 * 10^5 under TSan) go through it.
 *
 * A supervisor (the parent) keeps N_PROD producer and N_CONS consumer
 * processes running: every KILL_EVERY messages, after a random pause of a
 * few milliseconds, it kills one at random with
 * SIGKILL, in the middle of whatever queue call it is making (holding the
 * lock, holding a reservation or a peeked message, sleeping), and starts a
 * replacement. Each producer incarnation has its own id; after each
 * successful put it publishes how many messages it has sent. Consumers
 * record every message they receive in a shared table.
 *
 * Checked at the end: the survivors never hang (the whole run is bounded
 * by an alarm and every consumer ends when the queue is closed); every
 * message received is intact (checksum) and was received once; no message
 * beyond what a producer put arrives (one more is allowed for a producer
 * killed between its put returning and its counter update); the messages
 * missing are at most what the killed consumers had in hand (BATCH each).
 * Run under ASan and TSan by make check. */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "heap/heap.h"
#include "stress.h"

/* At least 10^6 messages; under ThreadSanitizer, whose fork of a process
 * costs tens of milliseconds, 2 * 10^5 (and as many kills per message), so
 * the run stays within seconds there too. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MP_STRESS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(MP_STRESS_TSAN)
#define TOTAL 200000u
#else
#define TOTAL 1000000u
#endif
#define N_PROD     3
#define N_CONS     3
#define CHUNK      40000u /* messages per producer incarnation at most */
#define MAX_INC    400u   /* producer incarnations */
#define BATCH      8u
#define MSG        64u
#define BIG        ((size_t)70 * 1024)
#define KILL_EVERY 2000u /* messages sent between kills */

typedef struct shared {
    mp_queue *q;
    _Atomic uint32_t sent[MAX_INC];
    _Atomic uint32_t next_inc;
    _Atomic uint64_t total_sent;
    _Atomic uint32_t stop;
    _Atomic uint8_t seen[MAX_INC][CHUNK + 1];
} shared;

static shared *sh;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static size_t msg_len(uint32_t id, uint32_t seq)
{
    return mix64(((uint64_t)id << 32) | seq) % 2000 == 0 ? BIG : MSG;
}

static void fill(unsigned char *b, uint32_t id, uint32_t seq, size_t len)
{
    uint64_t x = mix64(((uint64_t)seq << 32) | id), sum = 0;
    for (size_t i = 16; i < len; i++) {
        b[i] = (unsigned char)(x >> (i % 8 * 8)) ^ (unsigned char)i;
        sum = sum * 33 + b[i];
    }
    memcpy(b, &id, 4);
    memcpy(b + 4, &seq, 4);
    memcpy(b + 8, &sum, 8);
}

static void check(const unsigned char *b, size_t len)
{
    uint32_t id, seq;
    uint64_t sum, s = 0;
    STRESS_CHECK(len >= 16, "short message (%zu bytes)", len);
    memcpy(&id, b, 4);
    memcpy(&seq, b + 4, 4);
    memcpy(&sum, b + 8, 8);
    STRESS_CHECK(id < MAX_INC && seq < CHUNK, "bad header %u/%u", id, seq);
    STRESS_CHECK(len == msg_len(id, seq), "message %u/%u has %zu bytes", id, seq, len);
    for (size_t i = 16; i < len; i++)
        s = s * 33 + b[i];
    STRESS_CHECK(s == sum, "message %u/%u corrupted", id, seq);
    uint8_t was = atomic_fetch_add(&sh->seen[id][seq], 1);
    STRESS_CHECK(was == 0, "message %u/%u received twice", id, seq);
}

static int producer(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    uint32_t id = atomic_fetch_add(&sh->next_inc, 1);
    if (id >= MAX_INC)
        return 0;
    unsigned char *buf = malloc(BIG);
    for (uint32_t seq = 0; seq < CHUNK && !atomic_load(&sh->stop);) {
        size_t n = msg_len(id, seq);
        int rc;
        if (seq % 3 == 1) {
            void *slot;
            rc = mp_queue_reserve(sh->q, n, &slot, 1);
            if (rc == 0) {
                fill(slot, id, seq, n);
                rc = mp_queue_commit(sh->q, slot);
            }
        } else {
            fill(buf, id, seq, n);
            rc = mp_queue_put(sh->q, buf, n, 1);
        }
        STRESS_CHECK(rc == 0 || rc == MP_EFULL || rc == MP_ECLOSED, "put: %s", mp_err_name(rc));
        if (rc == MP_ECLOSED)
            break;
        if (rc == 0) {
            atomic_store(&sh->sent[id], ++seq);
            atomic_fetch_add(&sh->total_sent, 1);
        }
    }
    free(buf);
    return 0;
}

static int consumer(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    unsigned char *buf = malloc(BIG * BATCH);
    size_t lens[BATCH];
    for (unsigned round = 0;; round++) {
        int rc;
        if (round % 3 == 0) {
            rc = mp_queue_get_many(sh->q, buf, BIG * BATCH, lens, BATCH, 1);
            for (int i = 0, off = 0; i < rc; off += (int)lens[i], i++)
                check(buf + off, lens[i]);
        } else if (round % 3 == 1) {
            const void *d;
            rc = mp_queue_peek(sh->q, &d, lens, 1);
            if (rc == 0) {
                check(d, lens[0]);
                rc = mp_queue_release(sh->q, d);
            }
        } else {
            rc = mp_queue_get_into(sh->q, buf, BIG, lens, 1);
            if (rc == 0)
                check(buf, lens[0]);
        }
        if (rc == MP_ECLOSED)
            break;
        STRESS_CHECK(rc >= 0 || rc == MP_EEMPTY, "get: %s", mp_err_name(rc));
    }
    free(buf);
    return 0;
}

static mp_process *spawn(mp_target_fn fn)
{
    mp_process *p;
    STRESS_OK(mp_process_create(&p, &(mp_process_opts){.target = fn}));
    STRESS_OK(mp_process_start(p));
    return p;
}

static void finish(mp_process *p)
{
    STRESS_OK(mp_process_join(p, 60));
    int code = -1;
    STRESS_OK(mp_process_exitcode(p, &code));
    STRESS_CHECK(code == 0, "child exited with %d", code);
    mp_process_destroy(p);
}

/* Progress is possible while a producer runs (one may finish its chunk). */
static bool alive_any(mp_process **prod)
{
    for (int i = 0; i < N_PROD; i++)
        if (mp_process_is_alive(prod[i]))
            return true;
    return false;
}

/* Checks the table; returns how many messages are missing. */
static uint64_t verify(uint64_t *received)
{
    uint64_t missing = 0;
    uint32_t incs = atomic_load(&sh->next_inc);
    for (uint32_t id = 0; id < incs && id < MAX_INC; id++) {
        uint32_t sent = atomic_load(&sh->sent[id]);
        for (uint32_t s = 0; s <= CHUNK; s++) {
            uint8_t n = atomic_load(&sh->seen[id][s]);
            STRESS_CHECK(n <= 1, "message %u/%u received %u times", id, s, n);
            STRESS_CHECK(n == 0 || s <= sent, "message %u/%u was never sent (sent %u)", id, s,
                         sent);
            *received += n;
            missing += s < sent && n == 0;
        }
    }
    return missing;
}

int main(void)
{
    STRESS_DEADLINE(280);
    srand((unsigned)time(NULL));
    STRESS_OK(mp__heap_alloc((void **)&sh, sizeof *sh));
    STRESS_OK(mp_queue_create(&sh->q, &(mp_queue_opts){.maxsize = 256}));
    mp_process *prod[N_PROD], *cons[N_CONS];
    for (int i = 0; i < N_PROD; i++)
        prod[i] = spawn(producer);
    for (int i = 0; i < N_CONS; i++)
        cons[i] = spawn(consumer);
    unsigned kills_prod = 0, kills_cons = 0;
    while (atomic_load(&sh->total_sent) < TOTAL && atomic_load(&sh->next_inc) < MAX_INC - N_PROD) {
        uint64_t from = atomic_load(&sh->total_sent);
        struct timespec ts = {0, (long)(rand() % 3000 + 100) * 1000L};
        do
            nanosleep(&ts, NULL);
        while (atomic_load(&sh->total_sent) - from < KILL_EVERY && alive_any(prod));
        int victim = rand() % (N_PROD + N_CONS);
        mp_process **slot = victim < N_PROD ? &prod[victim] : &cons[victim - N_PROD];
        bool was_alive = mp_process_is_alive(*slot);
        STRESS_OK(mp_process_kill(*slot));
        int code = 0;
        STRESS_OK(mp_process_exitcode(*slot, &code));
        if (was_alive && code == -9)
            *(victim < N_PROD ? &kills_prod : &kills_cons) += 1;
        mp_process_destroy(*slot);
        *slot = spawn(victim < N_PROD ? producer : consumer);
        for (int i = 0; i < N_PROD; i++) {
            if (!mp_process_is_alive(prod[i])) { /* finished its chunk */
                finish(prod[i]);
                prod[i] = spawn(producer);
            }
        }
    }
    atomic_store(&sh->stop, 1);
    for (int i = 0; i < N_PROD; i++)
        finish(prod[i]);
    STRESS_OK(mp_queue_close(sh->q));
    for (int i = 0; i < N_CONS; i++)
        finish(cons[i]);
    uint64_t received = 0, missing = verify(&received);
    STRESS_CHECK(atomic_load(&sh->total_sent) >= TOTAL, "only %llu messages sent",
                 (unsigned long long)atomic_load(&sh->total_sent));
    STRESS_CHECK(missing <= (uint64_t)kills_cons * BATCH,
                 "%llu messages lost, but only %u consumers were killed",
                 (unsigned long long)missing, kills_cons);
    printf("stress_queue_kill: %llu sent, %llu received, %llu lost with %u killed consumers, "
           "%u producers killed\n",
           (unsigned long long)atomic_load(&sh->total_sent), (unsigned long long)received,
           (unsigned long long)missing, kills_cons, kills_prod);
    mp_queue_destroy(sh->q);
    mp__heap_free(sh);
    return 0;
}
