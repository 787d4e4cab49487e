/* pipe_64B_msgs_per_s and pipe_1MiB_GiB_per_s with the library: a one-way
 * pipe (mp_pipe(&r, &w, false), Python's Pipe(duplex=False)), the parent
 * sends with mp_conn_send, a consumer process started with mp_process
 * receives with mp_conn_recv_into into one reused buffer.
 *
 *     bench_pipe msg64 <messages>
 *     bench_pipe mib   <messages>
 *
 * BENCH_PIN="<producer cpu>,<consumer cpu>" pins the two processes.
 *
 * Timing starts once the consumer is running (it sends a ready message on a
 * second pipe) and stops when it has acknowledged the last message. RESULT
 * value = messages/s (msg64) or GiB/s (mib); pipe_size= reports the capacity
 * of the library's pipe (F_GETPIPE_SZ), which run.py gives to the floor so
 * both run on the same pipe, and nonblock= whether the library made the
 * sending fd non-blocking.
 */
#include <fcntl.h>

#include "multiproc.h"

#include "bench_common.h"

#define MSG64 64

struct consumer_args {
    mp_conn *r, *w, *ack_r, *ack_w;
    long n;
    size_t size;
};

static void check(int rc, const char *what)
{
    if (rc < 0)
        bench_die("%s: %s (%s)", what, mp_err_name(rc), mp_strerror(rc));
}

static int consumer(const void *arg, size_t len)
{
    const struct consumer_args *a = arg;
    (void)len;
    bench_pin(1);
    /* The child's copies of the parent's ends: closing them here lets each
     * side see end of file if the other dies. */
    check(mp_conn_close(a->w), "mp_conn_close");
    check(mp_conn_close(a->ack_r), "mp_conn_close");
    char *buf = malloc(a->size);
    if (buf == NULL)
        bench_die("out of memory");
    memset(buf, 0, a->size);
    check(mp_conn_send(a->ack_w, "r", 1, MP_FOREVER), "mp_conn_send(ready)");
    for (long i = 0; i < a->n; i++) {
        size_t got = 0;
        check(mp_conn_recv_into(a->r, buf, a->size, &got, MP_FOREVER), "mp_conn_recv_into");
        if (got != a->size)
            bench_die("message %ld has %zu bytes, expected %zu", i, got, a->size);
    }
    check(mp_conn_send(a->ack_w, "k", 1, MP_FOREVER), "mp_conn_send(ack)");
    free(buf);
    return 0;
}

static void wait_ack(mp_conn *ack_r)
{
    char c;
    size_t got = 0;
    check(mp_conn_recv_into(ack_r, &c, 1, &got, MP_FOREVER), "mp_conn_recv_into(ack)");
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "msg64|mib <messages>");
    struct consumer_args a = {.n = n};
    if (strcmp(argv[1], "msg64") == 0)
        a.size = MSG64;
    else if (strcmp(argv[1], "mib") == 0)
        a.size = BENCH_MIB;
    else
        bench_die("unknown mode '%s'", argv[1]);

    check(mp_pipe(&a.r, &a.w, false), "mp_pipe");
    check(mp_pipe(&a.ack_r, &a.ack_w, false), "mp_pipe(ack)");
    int wfd = mp_conn_fileno(a.w);
    int pipe_size = fcntl(wfd, F_GETPIPE_SZ);
    int nonblock = (fcntl(wfd, F_GETFL) & O_NONBLOCK) != 0;

    mp_process *p = NULL;
    check(mp_process_create(&p, &(mp_process_opts){.target = consumer, .args = &a}),
          "mp_process_create");
    check(mp_process_start(p), "mp_process_start");
    bench_pin(0);
    check(mp_conn_close(a.r), "mp_conn_close");
    check(mp_conn_close(a.ack_w), "mp_conn_close");

    char *msg = malloc(a.size);
    if (msg == NULL)
        bench_die("out of memory");
    memset(msg, 'x', a.size);
    wait_ack(a.ack_r);

    double t0 = bench_now();
    for (long i = 0; i < n; i++)
        check(mp_conn_send(a.w, msg, a.size, MP_FOREVER), "mp_conn_send");
    wait_ack(a.ack_r);
    double dt = bench_now() - t0;

    check(mp_process_join(p, MP_FOREVER), "mp_process_join");
    int code = -1;
    check(mp_process_exitcode(p, &code), "mp_process_exitcode");
    if (code != 0)
        bench_die("consumer exit code %d", code);

    double value = a.size == MSG64 ? (double)n / dt : (double)n * (double)a.size / BENCH_GIB / dt;
    printf("RESULT value=%.6g elapsed=%.6f n=%ld pipe_size=%d nonblock=%d\n", value, dt, n,
           pipe_size, nonblock);
    free(msg);
    mp_process_destroy(p);
    mp_conn_destroy(a.r);
    mp_conn_destroy(a.w);
    mp_conn_destroy(a.ack_r);
    mp_conn_destroy(a.ack_w);
    return 0;
}
