/* Cancellation and clean-up of the distributed pool, against a real Redis
 * server (tests/helpers/redis_server.h), with forked workers: a pending
 * apply is withdrawn from the stream and never runs, a running task's
 * result never arrives, a task running in an executor is stopped (the
 * executor killed and replaced, its items not started never run), a map's tasks not started are
 * dropped by the worker that holds them, terminate empties the stream of the client's tasks, a
 * SIGKILLed client's tasks are dropped and its keys expire, and the failure paths of
 * mp_async_cancel. Tasks append a byte to a file for each run, so that runs are counted across
 * processes. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/internal.h"
#include "mp_test.h"
#include "redis/redis_pool.h"
#include "redis_server.h"

static mp_test_redis srv;

static void cancel_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(rcancel, .init = mp_test_fd_setup, .fini = cancel_fini, .timeout = 90);

/* An item: how long the task sleeps after it logged its run in path. */
typedef struct item {
    int64_t ms;
    char path[96];
} item;

static int logged_sleep(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                        void *ctx)
{
    (void)ctx;
    const item *it = in;
    if (in_len != sizeof(*it))
        return 99;
    int fd = open(it->path, O_CREAT | O_APPEND | O_WRONLY, 0600);
    if (fd < 0 || write(fd, "x", 1) != 1)
        abort();
    close(fd);
    usleep((useconds_t)it->ms * 1000);
    size_t n = out_cap < 4 ? out_cap : 4;
    memcpy(out, "done", n);
    *out_len = n;
    return 0;
}

static item make_item(int64_t ms, const char *tag)
{
    item it = {.ms = ms};
    snprintf(it.path, sizeof(it.path), "/tmp/mp_rcancel_%d_%s", (int)getpid(), tag);
    unlink(it.path);
    return it;
}

static long runs(const item *it)
{
    struct stat st;
    return stat(it->path, &st) == 0 ? (long)st.st_size : 0;
}

static mp_pool *make_pool(mp_manager *m)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = "p"}));
    return p;
}

/* A command on key (the full key) that answers an integer. */
static long long key_int(mp_manager *m, const char *cmd, const char *key)
{
    redisReply *rep;
    mp_assert_ok(mp__redis_cmd(mp__manager_redis_conn(m), MP__RR_INT, &rep, 2,
                               (const char *[]){cmd, key}, NULL));
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

static const char *stream_key(mp_manager *m)
{
    static char k[256];
    snprintf(k, sizeof(k), "%spool:p:tasks", mp__redis_prefix(mp__manager_redis_conn(m)));
    return k;
}

static long long stream_len(mp_manager *m)
{
    return key_int(m, "XLEN", stream_key(m));
}

/* Runs one task through the pool to show a worker serves it. */
static void one_round_trip(mp_pool *p)
{
    item it = make_item(0, "probe");
    char out[8];
    mp_assert_ok(mp_pool_apply(p, logged_sleep, NULL, &it, sizeof(it), out, sizeof(out), NULL, 30));
    cr_assert_eq(runs(&it), 1);
    unlink(it.path);
}

static void on_err(mp_async *a, void *user)
{
    (void)a;
    ((int *)user)[1]++;
}

static void on_ok(mp_async *a, void *user)
{
    (void)a;
    ((int *)user)[0]++;
}

Test(rcancel, a_pending_apply_is_withdrawn_and_never_runs)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    item it = make_item(0, "pending");
    mp_async *a;
    int calls[2] = {0, 0};
    mp_assert_ok(
        mp_pool_apply_async(p, logged_sleep, NULL, &it, sizeof(it), 8, on_ok, on_err, calls, &a));
    cr_assert_eq(stream_len(m), 1);
    mp_assert_ok(mp_async_cancel(a));
    cr_assert_eq(calls[1], 1, "the error callback runs in the cancel");
    cr_assert_eq(stream_len(m), 0, "the entry is still on the stream");
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0), MP_ECANCELED);
    mp_task_error e;
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.code, MP_ECANCELED);
    mp_assert_rc(mp_async_cancel(a), MP_EINVAL); /* twice */
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    one_round_trip(p);
    cr_assert_eq(runs(&it), 0, "the cancelled task ran");
    cr_assert_eq(calls[0] + calls[1], 1);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_manager_close(m);
}

Test(rcancel, a_running_task_result_never_arrives)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    item it = make_item(1500, "running");
    mp_async *a;
    mp_assert_ok(
        mp_pool_apply_async(p, logged_sleep, NULL, &it, sizeof(it), 8, NULL, NULL, NULL, &a));
    for (int i = 0; i < 2000 && runs(&it) == 0; i++)
        usleep(5000);
    cr_assert_eq(runs(&it), 1, "the task did not start");
    int64_t t0 = mp__now_ns();
    mp_assert_ok(mp_async_cancel(a));
    char out[8] = "";
    mp_assert_rc(mp_async_get(a, out, sizeof(out), NULL, 30), MP_ECANCELED);
    cr_assert_lt(mp__now_ns() - t0, 500000000, "get waited for the task");
    /* The task ends within a second and a half; its worker then
     * acknowledges it, in the round trip that would push its result. */
    for (int i = 0; i < 1000 && stream_len(m) > 0; i++)
        usleep(10000);
    cr_assert_eq(stream_len(m), 0);
    const char *k_results = ((mp__redis_pool *)p)->k_results;
    cr_assert_eq(key_int(m, "LLEN", k_results), 0, "the cancelled task's result was pushed");
    one_round_trip(p); /* the worker goes on */
    cr_assert_eq(runs(&it), 1);
    cr_assert_eq(out[0], '\0');
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_manager_close(m);
}

/* With executors the worker stops a cancelled task that runs: the
 * executor running it is killed and replaced, and the task's items not
 * started never run. Without that, the only executor would be busy for
 * 20 s and the next task would wait for it. */
Test(rcancel, a_running_task_in_an_executor_is_stopped)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    pid_t w = mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = 1});
    enum { N = 4 };
    item in[N];
    for (int i = 0; i < N; i++)
        in[i] = make_item(20000, "executor");
    char out[N][8];
    mp_async *a;
    /* One task of four items: one entry, one executor runs them in turn. */
    mp_assert_ok(mp_pool_map_async(p,
                                   &(mp_map_spec){.fn = logged_sleep,
                                                  .in = in,
                                                  .n = N,
                                                  .in_size = sizeof(item),
                                                  .out = out,
                                                  .out_size = sizeof(out[0]),
                                                  .chunksize = N},
                                   NULL, NULL, NULL, &a));
    for (int i = 0; i < 2000 && runs(&in[0]) == 0; i++)
        usleep(5000);
    cr_assert_eq(runs(&in[0]), 1, "the task did not start");
    pid_t kids[4];
    cr_assert_eq(mp_test_children(w, kids, 4), 1, "one executor");
    pid_t executor = kids[0];
    mp_assert_ok(mp_async_cancel(a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 30), MP_ECANCELED);
    /* Its entry is acknowledged at once (not after 20 s), with no result
     * pushed. */
    for (int i = 0; i < 500 && stream_len(m) > 0; i++)
        usleep(10000);
    cr_assert_eq(stream_len(m), 0, "the cancelled task was not stopped");
    const char *k_results = ((mp__redis_pool *)p)->k_results;
    cr_assert_eq(key_int(m, "LLEN", k_results), 0, "the cancelled task's result was pushed");
    /* The next task runs at once on a new executor (10 s < the 20 s the
     * old one would still be busy). */
    item probe = make_item(0, "probe");
    char o[8];
    mp_assert_ok(
        mp_pool_apply(p, logged_sleep, NULL, &probe, sizeof(probe), o, sizeof(o), NULL, 10));
    cr_assert_eq(runs(&probe), 1);
    unlink(probe.path);
    cr_assert_eq(mp_test_children(w, kids, 4), 1, "one executor");
    cr_assert_neq(kids[0], executor, "the executor running the cancelled task was replaced");
    cr_assert(kill(executor, 0) < 0, "the old executor is gone");
    /* The other three items never ran. */
    usleep(300000);
    cr_assert_eq(runs(&in[0]), 1, "an item not started ran");
    mp_test_pool_workers_stop(m, "p", &w, 1);
    unlink(in[0].path);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_manager_close(m);
}

Test(rcancel, a_map_cancel_drops_the_tasks_a_worker_holds_and_has_not_started)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    enum { N = 4 };
    item in[N];
    char out[N][8];
    for (int i = 0; i < N; i++)
        in[i] = make_item(1200, "map"); /* all log to the same file */
    mp_async *a;
    size_t nerr = 99;
    mp_assert_ok(mp_pool_map_async(p,
                                   &(mp_map_spec){.fn = logged_sleep,
                                                  .in = in,
                                                  .n = N,
                                                  .in_size = sizeof(item),
                                                  .out = out,
                                                  .out_size = 8,
                                                  .chunksize = 1,
                                                  .n_errors = &nerr},
                                   NULL, NULL, NULL, &a));
    cr_assert_eq(stream_len(m), N);
    /* One read takes the whole map: the worker holds N tasks. */
    pid_t w = mp_test_pool_worker(srv.url, "p",
                                  &(mp_worker_opts){.prefetch = N, .executors = MP_WORKER_INLINE});
    for (int i = 0; i < 2000 && runs(&in[0]) == 0; i++)
        usleep(5000);
    mp_assert_ok(mp_async_cancel(a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0), MP_ECANCELED);
    cr_assert_eq(nerr, 1);
    /* The worker learns of it at its next heartbeat (0.5 s), during the
     * first task: it starts none of the others. */
    for (int i = 0; i < 1000 && stream_len(m) > 0; i++)
        usleep(10000);
    cr_assert_eq(stream_len(m), 0, "the worker did not acknowledge the dropped tasks");
    cr_assert_eq(runs(&in[0]), 1, "%ld of the map's tasks ran", runs(&in[0]));
    cr_assert_eq(key_int(m, "LLEN", ((mp__redis_pool *)p)->k_results), 0);
    one_round_trip(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_manager_close(m);
    unlink(in[0].path);
}

Test(rcancel, terminate_removes_the_pending_tasks_from_the_stream)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    enum { N = 300 };
    item *in = calloc(N, sizeof(*in));
    for (int i = 0; i < N; i++)
        in[i] = make_item(0, "terminated");
    mp_async *a, *b;
    mp_assert_ok(mp_pool_map_async(
        p,
        &(mp_map_spec){
            .fn = logged_sleep, .in = in, .n = N, .in_size = sizeof(item), .chunksize = 1},
        NULL, NULL, NULL, &a));
    mp_assert_ok(
        mp_pool_apply_async(p, logged_sleep, NULL, &in[0], sizeof(item), 8, NULL, NULL, NULL, &b));
    cr_assert_eq(mp_pool_poll(p), 2); /* sends the apply, held behind the map */
    cr_assert_eq(stream_len(m), N + 1);
    mp_assert_ok(mp_pool_terminate(p));
    cr_assert_eq(stream_len(m), 0);
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0), MP_ECLOSED);
    mp_assert_rc(mp_async_get(b, NULL, 0, NULL, 0), MP_ECLOSED);
    mp_assert_rc(mp_async_cancel(b), MP_EINVAL); /* terminated: done */
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    mp_pool *q = make_pool(m);
    one_round_trip(q);
    cr_assert_eq(runs(&in[0]), 0, "a terminated task ran");
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_async_destroy(a);
    mp_async_destroy(b);
    mp_pool_destroy(p);
    mp_pool_destroy(q);
    mp_manager_close(m);
    free(in);
}

/* The keys of a client of the pool "p" (with the server's prefix). */
static void client_key(mp_manager *m, char *out, size_t cap, const char *what, const char *client)
{
    snprintf(out, cap, "%spool:p:%s:%s", mp__redis_prefix(mp__manager_redis_conn(m)), what, client);
}

Test(rcancel, a_killed_client_tasks_are_dropped_and_its_keys_expire)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    enum { N = 500 };
    item probe = make_item(0, "killed");
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        close(fds[0]);
        mp_manager *cm;
        mp_pool *cp;
        mp_async *ca;
        item *in = calloc(N, sizeof(*in));
        for (int i = 0; in && i < N; i++)
            in[i] = probe;
        if (!in || mp_manager_open(&cm, srv.url) < 0 ||
            mp_pool_create(&cp, &(mp_pool_opts){.manager = cm, .name = "p"}) < 0 ||
            mp_pool_map_async(
                cp,
                &(mp_map_spec){
                    .fn = logged_sleep, .in = in, .n = N, .in_size = sizeof(item), .chunksize = 1},
                NULL, NULL, NULL, &ca) < 0)
            _exit(1);
        const char *id = ((mp__redis_pool *)cp)->client;
        if (write(fds[1], id, strlen(id)) < 0)
            _exit(1);
        raise(SIGKILL);
    }
    close(fds[1]);
    char client[MP__REDIS_POOL_CLIENT_MAX + 1] = "";
    ssize_t n = read(fds[0], client, MP__REDIS_POOL_CLIENT_MAX);
    close(fds[0]);
    int st;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(n > 0 && WIFSIGNALED(st), "the client failed before its tasks were submitted");
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    cr_assert_eq(stream_len(m), N);
    char k_client[256], k_results[256], k_cancel[256];
    client_key(m, k_client, sizeof(k_client), "client", client);
    client_key(m, k_results, sizeof(k_results), "results", client);
    client_key(m, k_cancel, sizeof(k_cancel), "cancel", client);
    long long ttl = key_int(m, "PTTL", k_client);
    cr_assert(ttl > 0 && ttl <= MP__REDIS_POOL_CLIENT_LEASE_MS, "client key PTTL %lld", ttl);
    /* The lease lapses within its length after the client's last beat. */
    int64_t t0 = mp__now_ns();
    while (key_int(m, "EXISTS", k_client) && mp__now_ns() - t0 < 20000000000)
        usleep(100000);
    cr_assert_eq(key_int(m, "EXISTS", k_client), 0, "the client's key outlived its lease");
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    t0 = mp__now_ns();
    while (stream_len(m) > 0 && mp__now_ns() - t0 < 20000000000)
        usleep(50000);
    cr_assert_eq(stream_len(m), 0, "%lld of the dead client's tasks are left", stream_len(m));
    cr_assert_eq(runs(&probe), 0, "%ld of the dead client's tasks ran", runs(&probe));
    cr_assert_eq(key_int(m, "EXISTS", k_results), 0);
    cr_assert_eq(key_int(m, "EXISTS", k_cancel), 0);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rcancel, the_result_list_and_client_key_live_no_longer_than_the_lease)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    mp__redis_pool *rp = (mp__redis_pool *)p;
    long long ttl = key_int(m, "PTTL", rp->k_client);
    cr_assert(ttl > 0 && ttl <= MP__REDIS_POOL_CLIENT_LEASE_MS, "client key PTTL %lld", ttl);
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    item it = make_item(0, "ttl");
    mp_async *a;
    mp_assert_ok(
        mp_pool_apply_async(p, logged_sleep, NULL, &it, sizeof(it), 8, NULL, NULL, NULL, &a));
    /* Not taken yet: the worker pushed it and set the list's TTL. */
    for (int i = 0; i < 2000 && key_int(m, "LLEN", rp->k_results) == 0; i++)
        usleep(5000);
    cr_assert_eq(key_int(m, "LLEN", rp->k_results), 1);
    ttl = key_int(m, "PTTL", rp->k_results);
    cr_assert(ttl > 0 && ttl <= MP__REDIS_POOL_CLIENT_LEASE_MS, "results PTTL %lld", ttl);
    char out[8];
    mp_assert_ok(mp_async_get(a, out, sizeof(out), NULL, 10));
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_manager_close(m);
    unlink(it.path);
}

Test(rcancel, failure_paths)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    mp_assert_rc(mp_async_cancel(NULL), MP_EINVAL);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    item it = make_item(0, "paths");
    mp_async *a, *b;
    mp_assert_ok(
        mp_pool_apply_async(p, logged_sleep, NULL, &it, sizeof(it), 8, NULL, NULL, NULL, &a));
    mp_assert_ok(mp_async_wait(a, 30));
    mp_assert_rc(mp_async_cancel(a), MP_EINVAL); /* done: the result stands */
    char out[8];
    mp_assert_ok(mp_async_get(a, out, sizeof(out), NULL, 0));
    mp_test_pool_workers_stop(m, "p", &w, 1);
    /* No worker: still pending when the pool is destroyed. */
    mp_assert_ok(
        mp_pool_apply_async(p, logged_sleep, NULL, &it, sizeof(it), 8, NULL, NULL, NULL, &b));
    /* A forked child may not cancel its parent's tasks. */
    pid_t child = fork();
    if (child == 0)
        _exit(mp_async_cancel(b) == MP_EPERM ? 0 : 1);
    int st;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char k_client[256];
    snprintf(k_client, sizeof(k_client), "%s", ((mp__redis_pool *)p)->k_client);
    mp_pool_destroy(p);
    cr_assert_eq(stream_len(m), 0, "destroy left its pending task on the stream");
    cr_assert_eq(key_int(m, "EXISTS", k_client), 0, "destroy left the client's key");
    mp_assert_rc(mp_async_cancel(b), MP_EINVAL); /* detached */
    mp_assert_rc(mp_async_get(b, NULL, 0, NULL, 0), MP_ECLOSED);
    mp_async_destroy(a);
    mp_async_destroy(b);
    mp_manager_close(m);
    unlink(it.path);
}
