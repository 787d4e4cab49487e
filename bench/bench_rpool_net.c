/* The distributed pool over a network and on its own (rows
 * redis_pool_rtt1ms_tasks_per_s, redis_pool_roundtrip_us,
 * redis_pool_recovery_s).
 *
 *     bench_rpool_net roundtrip N   N times apply_async + get of a trivial
 *                          task on an idle pool with 1 local worker;
 *                          value = µs per round trip
 *     bench_rpool_net ping N        the floor: N raw PINGs with hiredis
 *                          on the same kind of server; value = µs per PING
 *     bench_rpool_net recovery N    N times: a map of 10,000 tasks of 1 ms
 *                          (imap_unordered, chunksize 1) over 3 local
 *                          workers, then the same map with one worker
 *                          SIGKILLed once half the results are in; value =
 *                          mean seconds the kill added
 *     bench_rpool_net rtt1ms_worker URL   serve the pool "bench" (used by
 *                          bench/net_bench.sh on the worker hosts)
 *     bench_rpool_net rtt1ms_client URL N  imap_unordered of N tiny tasks
 *                          (bench_tiny_imap) from the client host;
 *                          value = tasks/s
 *
 * The local modes start their own redis-server (127.0.0.1, a password, no
 * persistence) and forked workers, and warm up before the clock starts.
 * Prints RESULT value=<v> elapsed=<s>.
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <multiproc.h>

#include "bench_common.h"
#include "bench_tiny.h"
#include "redis_server.h"

#define POOL "bench"

static mp_test_redis srv;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        mp_test_redis_stop(&srv, 0);
        bench_die("%s: %s", what, mp_strerror(rc));
    }
}

/* 1 ms of "work", then the input back. */
static int one_ms(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in_len, (void)out_cap, (void)ctx;
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, NULL);
    memcpy(out, in, sizeof(int64_t));
    *out_len = sizeof(int64_t);
    return 0;
}

/* The workers' options: defaults, or BENCH_EXECUTORS executors each. */
static const mp_worker_opts *worker_opts(void)
{
    static mp_worker_opts o;
    const char *e = getenv("BENCH_EXECUTORS");
    if (e == NULL)
        return NULL;
    o.executors = atoi(e);
    return &o;
}

static pid_t start_worker(const char *url)
{
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork failed");
    if (pid == 0) {
        mp_manager *m;
        int rc = mp_manager_open(&m, url);
        if (rc == 0)
            rc = mp_worker_serve(m, POOL, worker_opts());
        _exit(rc == 0 ? 0 : 1);
    }
    return pid;
}

static void open_pool(const char *url, mp_manager **m, mp_pool **p)
{
    check(mp_manager_open(m, url), "mp_manager_open");
    check(mp_pool_create(p, &(mp_pool_opts){.manager = *m, .name = POOL}), "mp_pool_create");
}

static void close_pool(mp_manager *m, mp_pool *p, pid_t *w, int nw)
{
    mp_pool_destroy(p);
    check(mp_worker_stop(m, POOL), "stop");
    for (int i = 0; i < nw; i++)
        if (w[i] > 0)
            waitpid(w[i], NULL, 0);
    mp_manager_close(m);
}

static void roundtrip(long n)
{
    pid_t w = start_worker(srv.url);
    mp_manager *m;
    mp_pool *p;
    open_pool(srv.url, &m, &p);
    int64_t x = 7, r;
    size_t len;
    double t0 = 0;
    for (long i = -200; i < n; i++) { /* 200 warm-up round trips */
        if (i == 0)
            t0 = bench_now();
        check(mp_pool_apply(p, bench_tiny_square, NULL, &x, sizeof(x), &r, sizeof(r), &len, 10),
              "apply");
        if (r != 49)
            bench_die("wrong result");
    }
    double elapsed = bench_now() - t0;
    close_pool(m, p, &w, 1);
    printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", elapsed / (double)n * 1e6, elapsed, n);
}

static void ping(long n)
{
    redisContext *c = redisConnect("127.0.0.1", srv.port);
    if (!c || c->err)
        bench_die("connect failed");
    redisReply *rep = redisCommand(c, "AUTH %s", srv.password);
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        bench_die("AUTH failed");
    freeReplyObject(rep);
    double t0 = 0;
    for (long i = -200; i < n; i++) {
        if (i == 0)
            t0 = bench_now();
        rep = redisCommand(c, "PING");
        if (!rep || rep->type != REDIS_REPLY_STATUS)
            bench_die("PING failed");
        freeReplyObject(rep);
    }
    double elapsed = bench_now() - t0;
    redisFree(c);
    printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", elapsed / (double)n * 1e6, elapsed, n);
}

#define REC_TASKS   10000
#define REC_WORKERS 3

/* One map of REC_TASKS 1 ms tasks; kills *victim after half the results
 * when kill is set. Returns its seconds. */
static double recovery_map(mp_pool *p, pid_t *victim, bool kill_one)
{
    static int64_t in[REC_TASKS];
    for (int i = 0; i < REC_TASKS; i++)
        in[i] = i;
    mp_imap *it;
    double t0 = bench_now();
    check(mp_pool_imap(p,
                       &(mp_map_spec){.fn = one_ms,
                                      .in = in,
                                      .n = REC_TASKS,
                                      .in_size = 8,
                                      .out_size = 8,
                                      .chunksize = 1},
                       false, &it),
          "imap");
    int64_t v;
    int rc;
    long got = 0;
    while ((rc = mp_imap_next(it, &v, NULL, NULL, 120)) == 0) {
        if (++got == REC_TASKS / 2 && kill_one) {
            kill(*victim, SIGKILL);
            waitpid(*victim, NULL, 0);
            *victim = 0;
        }
    }
    mp_imap_destroy(it);
    if (rc != MP_EEOF || got != REC_TASKS)
        bench_die("recovery map: %ld of %d results, %s", got, REC_TASKS, mp_strerror(rc));
    return bench_now() - t0;
}

static void recovery(long n)
{
    pid_t w[REC_WORKERS];
    for (int i = 0; i < REC_WORKERS; i++)
        w[i] = start_worker(srv.url);
    mp_manager *m;
    mp_pool *p;
    open_pool(srv.url, &m, &p);
    check(bench_tiny_imap(p, bench_tiny_square, 300, 60), "warm-up");
    double added = 0, base_sum = 0, total = 0;
    for (long i = 0; i < n; i++) {
        if (w[0] == 0)
            w[0] = start_worker(srv.url);
        check(bench_tiny_imap(p, bench_tiny_square, 300, 60), "warm-up");
        double base = recovery_map(p, &w[0], false);
        double killed = recovery_map(p, &w[0], true);
        added += killed - base;
        base_sum += base;
        total += base + killed;
    }
    close_pool(m, p, w, REC_WORKERS);
    printf("RESULT value=%.6f elapsed=%.6f n=%ld base_s=%.3f\n", added / (double)n, total, n,
           base_sum / (double)n);
}

static void rtt1ms_worker(const char *url)
{
    mp_manager *m;
    check(mp_manager_open(&m, url), "mp_manager_open");
    check(mp_worker_serve(m, POOL, worker_opts()), "mp_worker_serve");
    mp_manager_close(m);
}

static void rtt1ms_client(const char *url, long n)
{
    mp_manager *m;
    mp_pool *p;
    open_pool(url, &m, &p);
    check(bench_tiny_imap(p, bench_tiny_square, 300, 60), "warm-up");
    double t0 = bench_now();
    check(bench_tiny_imap(p, bench_tiny_square, n, 120), "imap");
    double elapsed = bench_now() - t0;
    mp_pool_destroy(p);
    mp_manager_close(m);
    printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", (double)n / elapsed, elapsed, n);
}

int main(int argc, char **argv)
{
    check(mp_task_register("square", bench_tiny_square), "register");
    check(mp_task_register("one_ms", one_ms), "register");
    if (argc == 3 && strcmp(argv[1], "rtt1ms_worker") == 0) {
        rtt1ms_worker(argv[2]);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "rtt1ms_client") == 0) {
        rtt1ms_client(argv[2], atol(argv[3]));
        return 0;
    }
    long n = bench_args(argc, argv, "roundtrip|ping|recovery <iterations>");
    void (*mode)(long);
    if (strcmp(argv[1], "roundtrip") == 0)
        mode = roundtrip;
    else if (strcmp(argv[1], "ping") == 0)
        mode = ping;
    else if (strcmp(argv[1], "recovery") == 0)
        mode = recovery;
    else
        bench_die("unknown mode '%s'", argv[1]);
    if (mp_test_redis_start(&srv, "bench") != 0)
        bench_die("redis-server: %s", srv.error);
    mode(n);
    mp_test_redis_stop(&srv, 0);
    return 0;
}
