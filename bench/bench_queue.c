/* Queue rows with the library: producer and consumer processes on one
 * mp_queue.
 *
 *     bench_queue msg64   <messages>   one producer, one consumer, 64 B,
 *                                      mp_queue_put / mp_queue_get_into
 *     bench_queue msg64x2 <messages>   two producers, two consumers, 64 B
 *                                      (aggregate rate, n messages in all)
 *     bench_queue mib     <messages>   1 MiB, copying API (put copies in,
 *                                      get_into copies out to one buffer)
 *     bench_queue mibzc   <messages>   1 MiB, zero copy: the producer
 *                                      reserves, writes an 8-byte header in
 *                                      place and commits; the consumer
 *                                      peeks, reads the header, releases
 *
 * The queues are bounded (maxsize 4096 for 64 B, 4 for 1 MiB): put is
 * synchronous with back pressure, so a faster producer waits instead of
 * growing the queue. BENCH_PIN="<producer cpu>,<consumer cpu>" pins the
 * producers and the consumers. Timing starts once every consumer is ready
 * and stops when the last one has its last message. RESULT value =
 * messages/s or GiB/s.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "multiproc.h"

#include "bench_common.h"

#define MSG64 64

static void check(int rc, const char *what)
{
    if (rc < 0)
        bench_die("%s: %s (%s)", what, mp_err_name(rc), mp_strerror(rc));
}

typedef struct job {
    mp_queue *q, *ctl, *go; /* data; consumers to parent; parent to producers */
    long n;                 /* messages for this process */
    size_t size;
    bool zc;
} job;

static void put_msg(const job *j, const char *msg, long i)
{
    if (!j->zc) {
        check(mp_queue_put(j->q, msg, j->size, MP_FOREVER), "mp_queue_put");
        return;
    }
    void *slot;
    check(mp_queue_reserve(j->q, j->size, &slot, MP_FOREVER), "mp_queue_reserve");
    *(int64_t *)slot = i;
    check(mp_queue_commit(j->q, slot), "mp_queue_commit");
}

static void get_msg(const job *j, char *buf)
{
    size_t len = 0;
    if (!j->zc) {
        check(mp_queue_get_into(j->q, buf, j->size, &len, MP_FOREVER), "mp_queue_get_into");
    } else {
        const void *d;
        check(mp_queue_peek(j->q, &d, &len, MP_FOREVER), "mp_queue_peek");
        buf[0] = (char)*(const int64_t *)d;
        check(mp_queue_release(j->q, d), "mp_queue_release");
    }
    if (len != j->size)
        bench_die("message of %zu bytes, expected %zu", len, j->size);
}

static int consumer(const void *arg, size_t len)
{
    const job *j = arg;
    (void)len;
    bench_pin(1);
    char *buf = malloc(j->size);
    if (!buf)
        bench_die("out of memory");
    memset(buf, 0, j->size);
    check(mp_queue_put(j->ctl, "r", 1, MP_FOREVER), "ready");
    for (long i = 0; i < j->n; i++)
        get_msg(j, buf);
    check(mp_queue_put(j->ctl, "k", 1, MP_FOREVER), "ack");
    free(buf);
    return 0;
}

static int producer(const void *arg, size_t len)
{
    const job *j = arg;
    (void)len;
    bench_pin(0);
    char *msg = malloc(j->size);
    if (!msg)
        bench_die("out of memory");
    memset(msg, 'x', j->size);
    char c;
    size_t got;
    check(mp_queue_get_into(j->go, &c, 1, &got, MP_FOREVER), "go");
    for (long i = 0; i < j->n; i++)
        put_msg(j, msg, i);
    free(msg);
    return 0;
}

static mp_process *spawn(mp_target_fn fn, job *j)
{
    mp_process *p;
    check(mp_process_create(&p, &(mp_process_opts){.target = fn, .args = j}), "create");
    check(mp_process_start(p), "start");
    return p;
}

static void reap(mp_process *p)
{
    check(mp_process_join(p, MP_FOREVER), "join");
    int code = -1;
    check(mp_process_exitcode(p, &code), "exitcode");
    if (code != 0)
        bench_die("child exit code %d", code);
    mp_process_destroy(p);
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "msg64|msg64x2|mib|mibzc <messages>");
    job j = {.size = MSG64};
    int pairs = 1;
    if (strcmp(argv[1], "msg64x2") == 0)
        pairs = 2;
    else if (strcmp(argv[1], "mib") == 0 || strcmp(argv[1], "mibzc") == 0)
        j.size = BENCH_MIB, j.zc = argv[1][3] == 'z';
    else if (strcmp(argv[1], "msg64") != 0)
        bench_die("unknown mode '%s'", argv[1]);
    n -= n % pairs;
    j.n = n / pairs;
    check(mp_queue_create(&j.q, &(mp_queue_opts){.maxsize = j.size == MSG64 ? 4096 : 4}),
          "mp_queue_create");
    check(mp_queue_create(&j.ctl, NULL), "mp_queue_create(ctl)");
    check(mp_queue_create(&j.go, NULL), "mp_queue_create(go)");
    mp_process *cons[2], *prod[2];
    for (int i = 0; i < pairs; i++)
        cons[i] = spawn(consumer, &j);
    for (int i = 0; i < pairs; i++)
        prod[i] = spawn(producer, &j);
    char c;
    size_t got;
    for (int i = 0; i < pairs; i++)
        check(mp_queue_get_into(j.ctl, &c, 1, &got, MP_FOREVER), "wait ready");
    double t0 = bench_now();
    for (int i = 0; i < pairs; i++)
        check(mp_queue_put(j.go, "g", 1, MP_FOREVER), "go");
    for (int i = 0; i < pairs; i++)
        check(mp_queue_get_into(j.ctl, &c, 1, &got, MP_FOREVER), "wait ack");
    double dt = bench_now() - t0;
    for (int i = 0; i < pairs; i++) {
        reap(prod[i]);
        reap(cons[i]);
    }
    double value = j.size == MSG64 ? (double)n / dt : (double)n * (double)j.size / BENCH_GIB / dt;
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", value, dt, n);
    mp_queue_destroy(j.q);
    mp_queue_destroy(j.ctl);
    mp_queue_destroy(j.go);
    return 0;
}
