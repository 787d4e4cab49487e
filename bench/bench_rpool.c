/* The distributed pool's tiny-task throughput (row
 * redis_pool_tiny_tasks_per_s), to set against the local pool's
 * pool_tiny_tasks_per_s (bench_pool tiny).
 *
 *     bench_rpool tiny N   imap_unordered of N trivial tasks (square of an
 *                          int64), chunksize 1, served by one worker with
 *                          2 executor processes on this machine; value =
 *                          tasks/s
 *     bench_rpool tiny_prefetch16 N   the same with workers that take 16
 *                          tasks per round trip (mp_worker_opts.prefetch)
 *     bench_rpool apply N  a burst of N apply_async of the same task, then
 *                          a get of each; value = tasks/s
 *     bench_rpool map N    mp_pool_map of N items, chunksize 1 (N tasks);
 *                          value = tasks/s
 *
 * The same workload as bench_pool's tiny mode, but every task is one entry
 * of a Redis stream and one result on the client's list. The program
 * starts its own redis-server (127.0.0.1, a free port, a password, no
 * persistence) and one forked worker (mp_worker_serve, 2 executors), and
 * warms it up before the clock starts. Prints RESULT value=<tasks/s>
 * elapsed=<s>. BENCH_PREFETCH=<k> overrides the workers' prefetch option,
 * BENCH_WORKERS=<n> the number of workers (1 to 16), BENCH_EXECUTORS=<k>
 * their executors (-1: tasks run in the worker itself).
 * BENCH_CMDSTATS=1 prints the server's INFO commandstats of the measured
 * run (redis-cli), to count the commands per task. The tiny modes make
 * their input before the clock starts and check the sum after it stops, as
 * floor_rpool does.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <multiproc.h>

#include "bench_common.h"
#include "bench_tiny.h"
#include "redis_server.h"

static int workers = 1; /* BENCH_WORKERS */

static mp_test_redis srv;
static unsigned prefetch; /* BENCH_PREFETCH: the workers' prefetch option */

static void check(int rc, const char *what)
{
    if (rc < 0) {
        mp_test_redis_stop(&srv, 0);
        bench_die("%s: %s", what, mp_strerror(rc));
    }
}

/* Runs redis-cli on the bench's server with the given arguments. */
static void redis_cli(const char *args)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "redis-cli --no-auth-warning -p %d -a %s %s", srv.port, srv.password,
             args);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_rpool: '%s' failed\n", args);
}

/* Executors per worker (BENCH_EXECUTORS; -1: inline, 0: one per CPU). */
static int executors = 2;

static pid_t start_worker(void)
{
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork failed");
    if (pid == 0) {
        mp_manager *m;
        int rc = mp_manager_open(&m, srv.url);
        if (rc == 0)
            rc = mp_worker_serve(m, "bench",
                                 &(mp_worker_opts){.prefetch = prefetch, .executors = executors});
        _exit(rc == 0 ? 0 : 1);
    }
    return pid;
}

/* A burst of n apply_async, then a get of each. */
static int apply_burst(mp_pool *p, long n, double timeout)
{
    mp_async **a = calloc((size_t)n, sizeof(*a));
    if (a == NULL)
        return MP_ENOMEM;
    int rc = 0;
    long sent = 0;
    for (; rc == 0 && sent < n; sent++) {
        int64_t x = sent;
        rc = mp_pool_apply_async(p, bench_tiny_square, NULL, &x, 8, 8, NULL, NULL, NULL, &a[sent]);
        if (rc < 0)
            break;
    }
    for (long i = 0; i < sent; i++) {
        int64_t v = -1;
        int r = mp_async_get(a[i], &v, sizeof(v), NULL, timeout);
        if (r == 0 && v != i * i)
            bench_die("apply %ld: %lld", i, (long long)v);
        if (rc == 0)
            rc = r;
        mp_async_destroy(a[i]);
    }
    free(a);
    return rc;
}

/* mp_pool_map of n items, one per task. */
static int map_tiny(mp_pool *p, long n, double timeout)
{
    int64_t *in = malloc((size_t)n * sizeof(*in)), *out = malloc((size_t)n * sizeof(*out));
    int rc = in && out ? 0 : MP_ENOMEM;
    for (long i = 0; rc == 0 && i < n; i++)
        in[i] = i;
    if (rc == 0)
        rc = mp_pool_map(p,
                         &(mp_map_spec){.fn = bench_tiny_square,
                                        .in = in,
                                        .n = (size_t)n,
                                        .in_size = 8,
                                        .out = out,
                                        .out_size = 8,
                                        .chunksize = 1},
                         timeout);
    for (long i = 0; rc == 0 && i < n; i++)
        if (out[i] != i * i)
            bench_die("map %ld: %lld", i, (long long)out[i]);
    free(in);
    free(out);
    return rc;
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "tiny|tiny_prefetch16|apply|map <iterations>");
    bool apply = strcmp(argv[1], "apply") == 0, map = strcmp(argv[1], "map") == 0;
    if (strcmp(argv[1], "tiny") != 0 && strcmp(argv[1], "tiny_prefetch16") != 0 && !apply && !map)
        bench_die("unknown mode '%s'", argv[1]);
    const char *ew = getenv("BENCH_WORKERS"), *ee = getenv("BENCH_EXECUTORS");
    if (ew && atoi(ew) >= 1 && atoi(ew) <= 16)
        workers = atoi(ew);
    if (ee)
        executors = atoi(ee);
    const char *pf = getenv("BENCH_PREFETCH");
    prefetch = pf ? (unsigned)atoi(pf) : strcmp(argv[1], "tiny_prefetch16") == 0 ? 16 : 0;
    if (mp_test_redis_start(&srv, "bench") != 0)
        bench_die("redis-server: %s", srv.error);
    check(mp_task_register("square", bench_tiny_square), "register");
    pid_t w[16];
    for (int i = 0; i < workers; i++)
        w[i] = start_worker();
    mp_manager *m;
    check(mp_manager_open(&m, srv.url), "mp_manager_open");
    mp_pool *p;
    check(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = "bench"}), "mp_pool_create");
    check(bench_tiny_imap(p, bench_tiny_square, 100, 60), "imap"); /* warm-up: both workers serve */
    bool stats = getenv("BENCH_CMDSTATS") != NULL;
    if (stats)
        redis_cli("CONFIG RESETSTAT > /dev/null");
    /* The imap's input is made before the clock starts and its sum checked
     * after it stops, as floor_rpool does. */
    int64_t *in = apply || map ? NULL : bench_tiny_input(n);
    uint64_t total = 0;
    double t0 = bench_now();
    check(apply ? apply_burst(p, n, 60)
          : map ? map_tiny(p, n, 60)
                : bench_tiny_imap_in(p, bench_tiny_square, in, n, 60, &total),
          "run");
    double elapsed = bench_now() - t0;
    if (in) {
        bench_tiny_check(n, total);
        free(in);
    }
    if (stats)
        redis_cli("INFO commandstats");
    mp_pool_destroy(p);
    check(mp_worker_stop(m, "bench"), "stop");
    for (int i = 0; i < workers; i++)
        waitpid(w[i], NULL, 0);
    mp_manager_close(m);
    mp_test_redis_stop(&srv, 0);
    printf("RESULT value=%.6f elapsed=%.6f n=%ld workers=%d\n", (double)n / elapsed, elapsed, n,
           workers);
    return 0;
}
