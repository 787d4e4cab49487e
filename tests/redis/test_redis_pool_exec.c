/* The distributed pool's workers as supervisors of executor processes,
 * against a real Redis server: a task that segfaults or calls _exit fails
 * alone with MP_EWORKERLOST and its executor's pid and signal while the
 * other items complete and the worker goes on (its executors replaced),
 * also when they are a few among a backlog of 20,000 tiny tasks read in
 * full batches, a batch runs in parallel over the executors, a SIGKILLed supervisor
 * leaves no executor behind and its tasks go to another worker, and a
 * worker that returns has reaped its executors. Each test starts its own
 * redis-server (tests/helpers/redis_server.h); workers are forked
 * processes running mp_worker_serve. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis/redis_pool.h"
#include "redis_server.h"

static mp_test_redis srv;

static void exec_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(rexec, .init = mp_test_fd_setup, .fini = exec_fini, .timeout = 60);

/* ---- tasks ---------------------------------------------------------------*/

/* Shared by the test and every executor (MAP_SHARED before the fork). */
typedef struct meeting {
    atomic_int arrived; /* tasks that started */
    int expected;       /* rendezvous: tasks that must meet */
    int hang;           /* 1: tasks hang after arriving */
} meeting;

/* A real segmentation fault, with the default action, so that a
 * sanitizer's handler does not turn it into an exit. */
static void segfault(void)
{
    signal(SIGSEGV, SIG_DFL);
    /* Through a volatile pointer: the compiler cannot see the address. */
    volatile int *volatile bad = (volatile int *)(uintptr_t)4096; /* unmapped, aligned */
    *bad = 1;
}

/* Squares the int64 at in into out; crash_at(x) first decides whether it
 * segfaults (1) or calls _exit (2). */
static int square_or_crash(const void *in, size_t in_len, void *out, size_t out_cap,
                           size_t *out_len, int (*crash_at)(int64_t))
{
    int64_t x;
    if (in_len != sizeof(x) || out_cap < sizeof(x))
        return 99;
    memcpy(&x, in, sizeof(x));
    int how = crash_at(x);
    if (how == 1)
        segfault();
    if (how == 2)
        _exit(7);
    x *= x;
    memcpy(out, &x, sizeof(x));
    *out_len = sizeof(x);
    return 0;
}

static int crash_3_and_5(int64_t x)
{
    return x == 3 ? 1 : x == 5 ? 2 : 0;
}

static int crash_every_2000(int64_t x)
{
    return x % 2000 == 1999;
}

/* Squares its int64; 3 segfaults, 5 calls _exit. */
static int crashy(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)ctx;
    return square_or_crash(in, in_len, out, out_cap, out_len, crash_3_and_5);
}

/* Squares its int64; every 2000th (x % 2000 == 1999) segfaults. */
static int crashy_sparse(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                         void *ctx)
{
    (void)ctx;
    return square_or_crash(in, in_len, out, out_cap, out_len, crash_every_2000);
}

/* Arrives at the meeting at ctx and waits (at most 20 s) until the
 * expected number of tasks did; answers its pid and whether they all
 * met. With hang set, it then sleeps for a minute. */
static int meet(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                void *ctx)
{
    (void)in, (void)in_len;
    meeting *mt = ctx;
    if (mt == NULL || out_cap < 2 * sizeof(int64_t))
        return 99;
    atomic_fetch_add(&mt->arrived, 1);
    int64_t r[2] = {getpid(), 0};
    for (int i = 0; i < 2000 && !r[1]; i++) {
        r[1] = atomic_load(&mt->arrived) >= mt->expected;
        if (!r[1])
            usleep(10000);
    }
    if (mt->hang)
        sleep(60);
    memcpy(out, r, sizeof(r));
    *out_len = sizeof(r);
    return 0;
}

/* ---- helpers -------------------------------------------------------------*/

static void server_up(void)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    mp_assert_ok(mp_task_register("crashy", crashy));
    mp_assert_ok(mp_task_register("meet", meet));
    mp_assert_ok(mp_task_register("crashy_sparse", crashy_sparse));
}

static mp_pool *make_pool(mp_manager *m)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = "p"}));
    return p;
}

static meeting *meeting_new(int expected, int hang)
{
    meeting *mt =
        mmap(NULL, sizeof(*mt), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert(mt != MAP_FAILED);
    mt->expected = expected;
    mt->hang = hang;
    return mt;
}

/* Waits (at most 10 s) until pid has n children; returns how many. */
static int wait_children(pid_t pid, int n, pid_t *kids, int cap)
{
    int got = 0;
    for (int i = 0; i < 1000 && (got = mp_test_children(pid, kids, cap)) != n; i++)
        usleep(10000);
    return got;
}

/* A worker that, once mp_worker_serve returned, exits 0 only when it has
 * no child left (its executors reaped), 4 otherwise. */
static pid_t reaping_worker(const mp_worker_opts *o)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        mp_manager *m;
        if (mp_manager_open(&m, srv.url) < 0)
            _exit(2);
        int rc = mp_worker_serve(m, "p", o);
        mp_manager_close(m);
        errno = 0;
        bool none = waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
        _exit(rc != 0 ? 3 : none ? 0 : 4);
    }
    return pid;
}

/* ---- tests ---------------------------------------------------------------*/

Test(rexec, a_segfaulting_task_fails_alone_and_the_worker_goes_on)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = 2});
    pid_t kids[8];
    cr_assert_eq(wait_children(w, 2, kids, 8), 2, "two executors");
    mp_pool *p = make_pool(m);
    enum { N = 8 };
    int64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i, out[i] = -1;
    mp_task_error errs[4];
    size_t nerr = 0;
    int rc = mp_pool_map(p,
                         &(mp_map_spec){.fn = crashy,
                                        .in = in,
                                        .n = N,
                                        .in_size = 8,
                                        .out = out,
                                        .out_size = 8,
                                        .chunksize = 1,
                                        .errors = errs,
                                        .errors_cap = 4,
                                        .n_errors = &nerr},
                         30);
    mp_assert_rc(rc, MP_EWORKERLOST);
    cr_assert_eq(nerr, 2, "items 3 and 5 fail, %zu failed", nerr);
    for (size_t i = 0; i < nerr; i++) {
        cr_assert_eq(errs[i].code, MP_EWORKERLOST);
        cr_assert(errs[i].pid > 0 && errs[i].pid != w, "the executor's pid, not %d",
                  (int)errs[i].pid);
        if (errs[i].index == 3) {
            cr_assert_eq(errs[i].signal, SIGSEGV);
            cr_assert_not_null(strstr(errs[i].message, "killed by SIGSEGV"), "%s", errs[i].message);
        } else {
            cr_assert(errs[i].index == 5 && errs[i].signal == 0, "item %zu signal %d",
                      errs[i].index, errs[i].signal);
            cr_assert_not_null(strstr(errs[i].message, "exited"), "%s", errs[i].message);
        }
    }
    for (int i = 0; i < N; i++)
        if (i != 3 && i != 5)
            cr_assert_eq(out[i], (int64_t)i * i, "item %d", i);
    /* The worker serves on, with its executors replaced. */
    cr_assert_eq(wait_children(w, 2, kids, 8), 2, "the executors are replaced");
    int64_t x = 9, y = 0;
    size_t len = 0;
    mp_assert_ok(mp_pool_apply(p, crashy, NULL, &x, 8, &y, 8, &len, 30));
    cr_assert_eq(y, 81);
    for (int i = 0; i < N; i++)
        in[i] = i + 10;
    mp_assert_ok(mp_pool_map(
        p, &(mp_map_spec){.fn = crashy, .in = in, .n = N, .in_size = 8, .out = out, .out_size = 8},
        30));
    for (int i = 0; i < N; i++)
        cr_assert_eq(out[i], (int64_t)(i + 10) * (i + 10), "item %d", i);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

/* A backlog of tiny tasks, read in full batches of the adaptive size,
 * with a task every 2000 that crashes its executor: each of those fails
 * alone, every other task gets exactly its result, and every entry is
 * acknowledged and deleted. */
Test(rexec, crashes_in_a_backlog_of_tiny_tasks_fail_alone_and_lose_nothing)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    enum { N = 20000, CRASHES = N / 2000 };
    static int64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i, out[i] = -1;
    mp_task_error errs[CRASHES + 1];
    size_t nerr = 0;
    mp_async *a;
    /* All submitted before the worker starts: its reads come back full. */
    mp_assert_ok(mp_pool_map_async(p,
                                   &(mp_map_spec){.fn = crashy_sparse,
                                                  .in = in,
                                                  .n = N,
                                                  .in_size = 8,
                                                  .out = out,
                                                  .out_size = 8,
                                                  .chunksize = 1,
                                                  .errors = errs,
                                                  .errors_cap = CRASHES + 1,
                                                  .n_errors = &nerr},
                                   NULL, NULL, NULL, &a));
    pid_t w = mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = 2});
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 50), MP_EWORKERLOST);
    cr_assert_eq(nerr, CRASHES, "%zu items failed", nerr);
    for (size_t i = 0; i < nerr; i++)
        cr_assert(errs[i].code == MP_EWORKERLOST && errs[i].signal == SIGSEGV &&
                      errs[i].index % 2000 == 1999,
                  "item %zu: %d, signal %d", errs[i].index, errs[i].code, errs[i].signal);
    for (int i = 0; i < N; i++)
        if (i % 2000 != 1999)
            cr_assert_eq(out[i], (int64_t)i * i, "item %d", i);
    mp_async_destroy(a);
    /* Every entry is acknowledged and deleted (the last answers go out
     * with the worker's next read). */
    mp__redis *r = mp__manager_redis_conn(m);
    char k[256];
    snprintf(k, sizeof(k), "%spool:p:tasks", mp__redis_prefix(r));
    long long left = -1;
    for (int i = 0; i < 300 && left != 0; i++) {
        redisReply *rep;
        mp_assert_ok(mp__redis_cmd(r, MP__RR_INT, &rep, 2, (const char *[]){"XLEN", k}, NULL));
        left = rep->integer;
        freeReplyObject(rep);
        if (left)
            usleep(10000);
    }
    cr_assert_eq(left, 0, "%lld entries left on the stream", left);
    int64_t x = 9, y = 0;
    size_t len = 0;
    mp_assert_ok(mp_pool_apply(p, crashy, NULL, &x, 8, &y, 8, &len, 30));
    cr_assert_eq(y, 81);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rexec, a_task_that_calls_exit_fails_alone)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = 1});
    mp_pool *p = make_pool(m);
    int64_t x = 5, y = 0;
    size_t len = 0;
    mp_async *a;
    mp_assert_ok(mp_pool_apply_async(p, crashy, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, &y, 8, &len, 30), MP_EWORKERLOST);
    mp_task_error e;
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.code, MP_EWORKERLOST);
    cr_assert(e.pid > 0 && e.pid != w);
    cr_assert_eq(e.signal, 0, "it exited");
    mp_async_destroy(a);
    x = 6;
    mp_assert_ok(mp_pool_apply(p, crashy, NULL, &x, 8, &y, 8, &len, 30));
    cr_assert_eq(y, 36);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rexec, a_batch_runs_in_parallel_over_the_executors)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    enum { N = 4 };
    meeting *mt = meeting_new(N, 0);
    mp_pool *p = make_pool(m);
    int64_t in[N] = {0}, out[N][2];
    memset(out, 0, sizeof(out));
    /* The four tasks are on the stream before the worker reads: it takes
     * them in one batch (a read takes a task per executor at least). */
    mp_async *a;
    mp_assert_ok(mp_pool_map_async(p,
                                   &(mp_map_spec){.fn = meet,
                                                  .in = in,
                                                  .n = N,
                                                  .in_size = 8,
                                                  .out = out,
                                                  .out_size = sizeof(out[0]),
                                                  .chunksize = 1},
                                   NULL, NULL, NULL, &a));
    pid_t w = mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = N, .ctx = mt});
    mp_assert_ok(mp_async_get(a, NULL, 0, NULL, 30));
    for (int i = 0; i < N; i++) {
        cr_assert_eq(out[i][1], 1, "task %d waited alone: the tasks did not run at once", i);
        for (int j = 0; j < i; j++)
            cr_assert_neq(out[i][0], out[j][0], "tasks %d and %d ran in one executor", i, j);
    }
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    munmap(mt, sizeof(*mt));
    mp_manager_close(m);
}

Test(rexec, a_killed_supervisor_leaves_no_executor_and_its_tasks_go_elsewhere)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    enum { N = 2 };
    meeting *hang = meeting_new(N, 1), *go = meeting_new(1, 0);
    mp_pool *p = make_pool(m);
    int64_t in[N] = {0}, out[N][2];
    memset(out, 0, sizeof(out));
    mp_async *a;
    mp_assert_ok(mp_pool_map_async(p,
                                   &(mp_map_spec){.fn = meet,
                                                  .in = in,
                                                  .n = N,
                                                  .in_size = 8,
                                                  .out = out,
                                                  .out_size = sizeof(out[0]),
                                                  .chunksize = 1},
                                   NULL, NULL, NULL, &a));
    pid_t victim =
        mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = N, .ctx = hang});
    for (int i = 0; i < 2000 && atomic_load(&hang->arrived) < N; i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&hang->arrived), N, "both tasks run in the victim's executors");
    pid_t kids[8];
    int nk = mp_test_children(victim, kids, 8);
    cr_assert_eq(nk, N);
    kill(victim, SIGKILL);
    int st;
    cr_assert_eq(waitpid(victim, &st, 0), victim);
    for (int k = 0; k < nk; k++) {
        int state = 1;
        for (int i = 0; i < 500 && (state = mp_test_pid_state(kids[k])) != 0 && state != 'Z'; i++)
            usleep(10000);
        cr_assert(state == 0 || state == 'Z', "executor %d outlived its supervisor", (int)kids[k]);
    }
    pid_t w = mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = N, .ctx = go});
    mp_assert_ok(mp_async_get(a, NULL, 0, NULL, 30));
    for (int i = 0; i < N; i++)
        cr_assert_eq(out[i][1], 1, "task %d ran on the second worker", i);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    munmap(hang, sizeof(*hang));
    munmap(go, sizeof(*go));
    mp_manager_close(m);
}

Test(rexec, a_stopped_worker_returns_with_its_executors_reaped)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = reaping_worker(&(mp_worker_opts){.executors = 3});
    pid_t kids[8];
    cr_assert_eq(wait_children(w, 3, kids, 8), 3, "three executors");
    mp_pool *p = make_pool(m);
    int64_t x = 4, y = 0;
    size_t len = 0;
    mp_assert_ok(mp_pool_apply(p, crashy, NULL, &x, 8, &y, 8, &len, 30));
    cr_assert_eq(y, 16);
    mp_pool_destroy(p);
    /* Exit status 0: mp_worker_serve returned 0 and left no child. */
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rexec, max_tasks_ends_a_worker_with_its_executors_reaped)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = reaping_worker(&(mp_worker_opts){.executors = 2, .max_tasks = 3});
    mp_pool *p = make_pool(m);
    for (int64_t x = 10; x < 13; x++) {
        int64_t y = 0;
        size_t len = 0;
        mp_assert_ok(mp_pool_apply(p, crashy, NULL, &x, 8, &y, 8, &len, 30));
        cr_assert_eq(y, x * x);
    }
    int st;
    cr_assert_eq(waitpid(w, &st, 0), w);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker status %d", st);
    mp_pool_destroy(p);
    mp_manager_close(m);
}

Test(rexec, executors_out_of_range_are_refused)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_assert_rc(mp_worker_serve(m, "p", &(mp_worker_opts){.executors = -2}), MP_EINVAL);
    mp_assert_rc(mp_worker_serve(m, "p", &(mp_worker_opts){.executors = 1025}), MP_EINVAL);
    mp_manager_close(m);
}
