/* Dict and queue operations on the Redis backend from a child process
 * (rows redis_dict_op_us and redis_queue_op_us).
 *
 *     bench_redis op N      one child: N x (set + get) of small keys
 *     bench_redis queue N   one child: N x (put + get) of 8-byte messages
 *
 * The same workload as bench_dict.c's op mode: a 6-byte key ("a42-key"
 * cut to 6), an 8-byte value, 100 keys reused, one set (mp_dict_set) and
 * one get (mp_dict_get_into) per iteration. The program starts its own
 * redis-server (127.0.0.1, a free port, a password, a temporary directory,
 * no persistence) and stops it at the end. The child uses the handle its
 * parent made (its first call connects it anew, before timing starts).
 * The queue mode uses a named queue of a Redis manager (mp_manager_queue,
 * mp_queue_put, mp_queue_get), unbounded, get with a 1 s timeout (BLPOP).
 * Prints RESULT value=<us per op> elapsed=<s>.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <multiproc.h>

#include "bench_common.h"
#include "redis_server.h"

#define NKEYS 100

static mp_dict *d;
static long iters;
static mp_test_redis srv;
static int queue_mode;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        mp_test_redis_stop(&srv, 0);
        bench_die("%s: %s", what, mp_strerror(rc));
    }
}

/* The queue loop, through the public API: the child opens a manager of
 * its own (a connection of its own, as a worker process on another
 * machine would) and a named queue on it. */
static int queue_child(void)
{
    mp_manager *m;
    mp_queue *q;
    int rc = mp_manager_open(&m, srv.url);
    if (rc >= 0)
        rc = mp_manager_queue(m, "bench-queue", NULL, &q);
    if (rc < 0) {
        fprintf(stderr, "bench_redis: queue: %s\n", mp_strerror(rc));
        return 1;
    }
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        int64_t v = i;
        void *msg;
        size_t n;
        if (mp_queue_put(q, &v, sizeof(v), 1) < 0 || mp_queue_get(q, &msg, &n, 1) < 0 ||
            n != sizeof(v) || memcmp(msg, &v, n) != 0) {
            fprintf(stderr, "bench_redis: queue: put/get failed\n");
            return 1;
        }
        free(msg);
    }
    double dt = bench_now() - t0;
    mp_queue_destroy(q);
    mp_manager_close(m);
    return mp_dict_set_double(d, "elapsed", dt) < 0 ? 1 : 0;
}

static int child(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    char keys[NKEYS][16];
    for (int k = 0; k < NKEYS; k++)
        snprintf(keys[k], sizeof(keys[k]), "a%02d-key", k);
    while (mp_dict_contains(d, "go", 2) != 1)
        usleep(100);
    if (queue_mode)
        return queue_child();
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        const char *key = keys[i % NKEYS];
        int64_t v = i, out;
        size_t n;
        if (mp_dict_set(d, key, 6, &v, sizeof(v)) < 0 ||
            mp_dict_get_into(d, key, 6, &out, sizeof(out), &n, NULL) < 0 || out != v)
            return 1;
    }
    return mp_dict_set_double(d, "elapsed", bench_now() - t0) < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    iters = bench_args(argc, argv, "op|queue <iterations>");
    queue_mode = strcmp(argv[1], "queue") == 0;
    if (!queue_mode && strcmp(argv[1], "op") != 0)
        bench_die("unknown mode '%s'", argv[1]);
    if (mp_test_redis_start(&srv, "bench") < 0)
        bench_die("%s", srv.error);
    mp_manager *m;
    check(mp_manager_open(&m, srv.url), "mp_manager_open");
    check(mp_manager_dict(m, "bench", &d), "mp_manager_dict");
    mp_process *p;
    check(mp_process_create(&p, &(mp_process_opts){.target = child}), "mp_process_create");
    check(mp_process_start(p), "mp_process_start");
    check(mp_dict_set_int64(d, "go", 1), "set go");
    int code = -1;
    check(mp_process_join(p, 120), "mp_process_join");
    check(mp_process_exitcode(p, &code), "mp_process_exitcode");
    if (code != 0) {
        mp_test_redis_stop(&srv, 0);
        bench_die("child failed (exit code %d)", code);
    }
    double dt;
    check(mp_dict_get_double(d, "elapsed", &dt), "get elapsed");
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", dt / (2.0 * (double)iters) * 1e6, dt, iters);
    mp_process_destroy(p);
    mp_dict_destroy(d);
    mp_manager_close(m);
    mp_test_redis_stop(&srv, 0);
    return 0;
}
