/* Heartbeats and leases of the distributed pool's workers, against a real
 * Redis server: a SIGKILLed worker's task is taken by another at once (not
 * after the visibility timeout), a task longer than the visibility timeout
 * runs once while its worker lives, and a worker that returns leaves
 * neither its heartbeat key nor its consumer behind. Each test starts its
 * own redis-server (tests/helpers/redis_server.h); workers are forked
 * processes running mp_worker_serve. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis/redis_pool.h"
#include "redis_server.h"

static mp_test_redis srv;

static void lease_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

/* Far below the visibility timeouts of the tests that kill a worker (60 s):
 * a task that waited for the timeout makes its test fail. */
TestSuite(lease, .init = mp_test_fd_setup, .fini = lease_fini, .timeout = 30);

/* ---- tasks ---------------------------------------------------------------*/

/* What a worker's tasks know (its ctx; NULL: nothing). */
typedef struct worker_ctx {
    const char *log;    /* every run appends its item's low byte here */
    const char *marker; /* created when the worker hangs */
    int hang_at;        /* the worker's run that hangs (0: none) */
    int run_ms;         /* how long each run takes */
} worker_ctx;

/* Logs the run, takes run_ms, squares its int64; the worker's hang_at-th
 * run creates the marker and hangs for a minute instead. */
static int logged(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    static int runs;
    const worker_ctx *c = ctx;
    int64_t x;
    if (c == NULL || in_len != sizeof(x) || out_cap < sizeof(x))
        return 99;
    int fd = open(c->log, O_CREAT | O_APPEND | O_WRONLY, 0600);
    if (fd < 0 || write(fd, in, 1) != 1)
        abort();
    close(fd);
    if (++runs == c->hang_at) {
        fd = open(c->marker, O_CREAT | O_WRONLY, 0600);
        if (fd >= 0)
            close(fd);
        sleep(60);
    }
    usleep((useconds_t)c->run_ms * 1000);
    memcpy(&x, in, sizeof(x));
    x *= x;
    memcpy(out, &x, sizeof(x));
    *out_len = sizeof(x);
    return 0;
}

/* ---- helpers -------------------------------------------------------------*/

static void server_up(void)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    mp_assert_ok(mp_task_register("logged", logged));
}

static void wait_for_file(const char *path)
{
    struct stat st;
    for (int i = 0; i < 1000 && stat(path, &st) != 0; i++)
        usleep(10000);
    cr_assert_eq(stat(path, &st), 0, "%s never appeared", path);
}

static redisReply *command(mp_manager *m, int argc, const char **argv)
{
    redisReply *rep;
    mp_assert_ok(
        mp__redis_cmd(mp__manager_redis_conn(m), MP__RR_ANY_VALUE, &rep, argc, argv, NULL));
    return rep;
}

static void key_of(mp_manager *m, char *buf, size_t cap, const char *what)
{
    snprintf(buf, cap, "%spool:p:%s", mp__redis_prefix(mp__manager_redis_conn(m)), what);
}

/* The group's consumers; *pending: the entries pending on the one whose
 * name holds ":<pid>:" (0 if none, or if pid is 0). */
static size_t consumers(mp_manager *m, pid_t pid, long long *pending)
{
    char k[256], tag[32];
    key_of(m, k, sizeof(k), "tasks");
    snprintf(tag, sizeof(tag), ":%d:", (int)pid);
    redisReply *rep = command(m, 4, (const char *[]){"XINFO", "CONSUMERS", k, "workers"});
    cr_assert_eq(rep->type, REDIS_REPLY_ARRAY);
    *pending = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *c = rep->element[i];
        cr_assert(c->type == REDIS_REPLY_ARRAY && c->elements >= 4);
        if (pid && strstr(c->element[1]->str, tag))
            *pending = c->element[3]->integer;
    }
    size_t n = rep->elements;
    freeReplyObject(rep);
    return n;
}

/* Runs of each item (the log's bytes), into runs[0..n). */
static void count_runs(const char *log, int *runs, int n)
{
    memset(runs, 0, (size_t)n * sizeof(*runs));
    FILE *f = fopen(log, "rb");
    cr_assert(f != NULL);
    for (int c; (c = fgetc(f)) != EOF;) {
        cr_assert(c < n, "unexpected item %d in the log", c);
        runs[c]++;
    }
    fclose(f);
}

/* ---- tests ---------------------------------------------------------------*/

Test(lease, a_killed_worker_task_is_taken_at_once_not_after_the_visibility_timeout)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    char log[128], marker[128];
    snprintf(log, sizeof(log), "%s/runs.log", srv.dir);
    snprintf(marker, sizeof(marker), "%s/hang.marker", srv.dir);
    enum { N = 200 };
    int64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i, out[i] = -1;
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = "p"}));
    /* The victim hangs in its 10th task (mid-map); the other runs on. */
    worker_ctx vc = {.log = log, .marker = marker, .hang_at = 10, .run_ms = 10};
    worker_ctx sc = {.log = log, .run_ms = 10};
    /* One executor: the victim holds one task at a time (with more, the
     * tasks of its batch that ran beside the hung one would run again). */
    pid_t victim = mp_test_pool_worker(
        srv.url, "p", &(mp_worker_opts){.visibility_timeout = 60, .ctx = &vc, .executors = 1});
    pid_t w =
        mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.visibility_timeout = 60, .ctx = &sc});
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_map_async(p,
                                   &(mp_map_spec){.fn = logged,
                                                  .in = in,
                                                  .n = N,
                                                  .in_size = 8,
                                                  .out = out,
                                                  .out_size = 8,
                                                  .chunksize = 1},
                                   NULL, NULL, NULL, &a));
    wait_for_file(marker);
    kill(victim, SIGKILL);
    int st;
    cr_assert_eq(waitpid(victim, &st, 0), victim);
    long long held;
    consumers(m, victim, &held);
    cr_assert_geq(held, 1, "the victim held its task when it died");
    int64_t t0 = mp__now_ns();
    for (int i = 0; i < 1000 && held > 0; i++) {
        usleep(10000);
        consumers(m, victim, &held);
    }
    cr_log_info("task claimed %.2f s after the kill", (double)(mp__now_ns() - t0) / 1e9);
    /* Without heartbeats the victim's task would wait 60 s. */
    mp_assert_ok(mp_async_get(a, NULL, 0, NULL, 20));
    cr_log_info("map done %.2f s after the kill", (double)(mp__now_ns() - t0) / 1e9);
    for (int i = 0; i < N; i++)
        cr_assert_eq(out[i], (int64_t)i * i, "item %d", i);
    int runs[N], total = 0;
    count_runs(log, runs, N);
    for (int i = 0; i < N; i++) {
        cr_assert_geq(runs[i], 1, "item %d never ran", i);
        total += runs[i];
    }
    cr_assert_eq(total, N + 1, "only the task of the dead worker ran twice");
    /* The dead consumer goes once it holds nothing. */
    size_t n = 0;
    for (int i = 0; i < 300 && (n = consumers(m, 0, &held)) != 1; i++)
        usleep(10000);
    cr_assert_eq(n, 1, "the dead worker's consumer is removed");
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(lease, a_task_longer_than_the_visibility_timeout_runs_once_while_its_worker_lives)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    char log[128];
    snprintf(log, sizeof(log), "%s/runs.log", srv.dir);
    /* 3 s per run, three visibility timeouts; a second worker would claim
     * the task if its lease were not renewed. */
    worker_ctx c = {.log = log, .run_ms = 3000};
    mp_worker_opts o = {.visibility_timeout = 1, .ctx = &c};
    pid_t w[2] = {mp_test_pool_worker(srv.url, "p", &o), 0};
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = "p"}));
    int64_t x = 7, y = 0;
    size_t len = 0;
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_apply_async(p, logged, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    wait_for_file(log);
    w[1] = mp_test_pool_worker(srv.url, "p", &o);
    mp_assert_ok(mp_async_get(a, &y, sizeof(y), &len, 20));
    cr_assert(len == 8 && y == 49);
    struct stat st;
    cr_assert_eq(stat(log, &st), 0);
    cr_assert_eq(st.st_size, 1, "the task ran once, not %d times", (int)st.st_size);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", w, 2);
    mp_manager_close(m);
}

Test(lease, a_serving_worker_heartbeats_and_leaves_nothing_behind)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_assert_rc(mp_worker_serve(m, "p", &(mp_worker_opts){.heartbeat_interval = -1}), MP_EINVAL);
    char log[128];
    snprintf(log, sizeof(log), "%s/runs.log", srv.dir);
    worker_ctx c = {.log = log};
    pid_t w =
        mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.heartbeat_interval = 0.2, .ctx = &c});
    /* A task makes the worker a consumer of the group. */
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = "p"}));
    int64_t x = 3, y = 0;
    mp_assert_ok(mp_pool_apply(p, logged, NULL, &x, 8, &y, 8, NULL, 20));
    cr_assert_eq(y, 9);
    mp_pool_destroy(p);
    char pattern[256];
    key_of(m, pattern, sizeof(pattern), "worker:*");
    redisReply *keys = NULL;
    for (int i = 0; i < 500; i++) {
        keys = command(m, 2, (const char *[]){"KEYS", pattern});
        if (keys->elements == 1)
            break;
        freeReplyObject(keys);
        keys = NULL;
        usleep(10000);
    }
    cr_assert(keys != NULL, "no heartbeat key");
    redisReply *ttl = command(m, 2, (const char *[]){"PTTL", keys->element[0]->str});
    cr_assert(ttl->integer > 0 && ttl->integer <= 601, "TTL %lld ms, 3 intervals at most",
              ttl->integer);
    freeReplyObject(ttl);
    /* Still there several TTLs later: the worker beats while idle too. */
    usleep(1500000);
    redisReply *ex = command(m, 2, (const char *[]){"EXISTS", keys->element[0]->str});
    cr_assert_eq(ex->integer, 1);
    freeReplyObject(ex);
    freeReplyObject(keys);
    long long held;
    cr_assert_eq(consumers(m, w, &held), 1);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    keys = command(m, 2, (const char *[]){"KEYS", pattern});
    cr_assert_eq(keys->elements, 0, "the heartbeat key is deleted on return");
    freeReplyObject(keys);
    cr_assert_eq(consumers(m, 0, &held), 0, "the consumer is removed on return");
    mp_manager_close(m);
}
