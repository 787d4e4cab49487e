/* Tests of the distributed pool against a real Redis server: round trips,
 * maps with several worker processes, imap_unordered, task errors,
 * unknown functions, a worker killed while holding a task, a task that
 * kills every worker (dead letter), a server restarted mid-run, the
 * batched submission of apply_async, and the codecs on malformed input. Each test starts its own
 * redis-server (tests/helpers/redis_server.h); workers are forked processes running
 * mp_worker_serve. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
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

static void rpool_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(rpool, .init = mp_test_fd_setup, .fini = rpool_fini, .timeout = 60);

/* ---- tasks ---------------------------------------------------------------*/

static int square(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)ctx;
    int64_t x;
    if (in_len != sizeof(x) || out_cap < sizeof(x))
        return 99;
    memcpy(&x, in, sizeof(x));
    x *= x;
    memcpy(out, &x, sizeof(x));
    *out_len = sizeof(x);
    return 0;
}

static int fail_odd(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                    void *ctx)
{
    int64_t x;
    memcpy(&x, in, sizeof(x));
    if (x % 2)
        return mp_task_fail(7, "odd %d", (int)x);
    return square(in, in_len, out, out_cap, out_len, ctx);
}

/* Not registered: travels as (module, offset, build-id). */
static int negate(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)ctx, (void)out_cap;
    int64_t x;
    memcpy(&x, in, sizeof(x));
    x = -x;
    memcpy(out, &x, sizeof(x));
    *out_len = in_len;
    return 0;
}

/* Sleeps 60 s the first time (the test kills the worker meanwhile), runs
 * at once once the marker file exists. in: the marker's path. */
static int slow_once(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                     void *ctx)
{
    (void)ctx, (void)out_cap;
    char path[256];
    snprintf(path, sizeof(path), "%.*s", (int)in_len, (const char *)in);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd >= 0) {
        close(fd);
        sleep(60);
    }
    memcpy(out, "done", 4);
    *out_len = 4;
    return 0;
}

/* The square of an int64, except that the first task a process runs
 * (while the marker file at ctx does not exist) hangs for a minute. */
static int stall_once(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                      void *ctx)
{
    int fd = open((const char *)ctx, O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd >= 0) {
        close(fd);
        sleep(60);
    }
    return square(in, in_len, out, out_cap, out_len, NULL);
}

/* Appends its item's low byte to the file at ctx, sleeps 700 ms and
 * squares: the file tells how many times each item ran. */
static int logged_slow(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                       void *ctx)
{
    int fd = open((const char *)ctx, O_CREAT | O_APPEND | O_WRONLY, 0600);
    if (fd < 0 || write(fd, in, 1) != 1)
        abort();
    close(fd);
    usleep(700000);
    return square(in, in_len, out, out_cap, out_len, NULL);
}

static int sleep_ms(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                    void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)ctx;
    int64_t ms;
    memcpy(&ms, in, sizeof(ms));
    usleep((useconds_t)ms * 1000);
    *out_len = 0;
    return 0;
}

/* Claims one byte more than it may write: its result cannot be delivered. */
static int claim_too_much(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                          void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)ctx;
    *out_len = out_cap + 1;
    return 0;
}

static int suicide(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                   void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    raise(SIGKILL);
    return 0;
}

static void register_tasks(void)
{
    mp_assert_ok(mp_task_register("square", square));
    mp_assert_ok(mp_task_register("fail_odd", fail_odd));
    mp_assert_ok(mp_task_register("slow_once", slow_once));
    mp_assert_ok(mp_task_register("suicide", suicide));
    mp_assert_ok(mp_task_register("claim_too_much", claim_too_much));
    mp_assert_ok(mp_task_register("sleep_ms", sleep_ms));
    mp_assert_ok(mp_task_register("stall_once", stall_once));
    mp_assert_ok(mp_task_register("logged_slow", logged_slow));
}

/* ---- helpers -------------------------------------------------------------*/

static void server_up(void)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    register_tasks();
}

static const char *url_opt(const char *opt)
{
    static char buf[256];
    snprintf(buf, sizeof(buf), "%s%s", srv.url, opt);
    return buf;
}

static mp_pool *make_pool(mp_manager *m)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = "p"}));
    return p;
}

/* map_async of n int64 items through fn, in chunks of chunksize. */
static mp_async *map_i64_async(mp_pool *p, mp_task_fn fn, const int64_t *in, int64_t *out, size_t n,
                               size_t chunksize)
{
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_map_async(p,
                                   &(mp_map_spec){.fn = fn,
                                                  .in = in,
                                                  .n = n,
                                                  .in_size = 8,
                                                  .out = out,
                                                  .out_size = 8,
                                                  .chunksize = chunksize},
                                   NULL, NULL, NULL, &a));
    return a;
}

static long long redis_int(mp_manager *m, const char *cmd, const char *key)
{
    mp__redis *r = mp__manager_redis_conn(m);
    char k[256];
    snprintf(k, sizeof(k), "%s%s", mp__redis_prefix(r), key);
    redisReply *rep;
    mp_assert_ok(mp__redis_cmd(r, MP__RR_INT, &rep, 2, (const char *[]){cmd, k}, NULL));
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

static void on_ok(mp_async *a, void *user)
{
    (void)a;
    ((int *)user)[0]++;
}

static void on_err(mp_async *a, void *user)
{
    (void)a;
    ((int *)user)[1]++;
}

/* ---- a real server -------------------------------------------------------*/

Test(rpool, apply_async_round_trip_by_name_and_by_address)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    mp_pool *p = make_pool(m);
    int64_t x = 12, y = 0;
    size_t len = 0;
    mp_async *a;
    int calls[2] = {0, 0};
    mp_assert_ok(
        mp_pool_apply_async(p, square, NULL, &x, sizeof(x), sizeof(y), on_ok, on_err, calls, &a));
    mp_assert_ok(mp_async_get(a, &y, sizeof(y), &len, 30));
    cr_assert_eq(y, 144);
    cr_assert_eq(len, sizeof(y));
    cr_assert(calls[0] == 1 && calls[1] == 0, "callbacks: %d ok, %d failed", calls[0], calls[1]);
    cr_assert(mp_async_ready(a));
    cr_assert_eq(mp_async_successful(a), 0);
    mp_async_destroy(a);
    /* An unregistered function of the same program, by address. */
    mp_assert_ok(mp_pool_apply(p, negate, NULL, &x, sizeof(x), &y, sizeof(y), &len, 30));
    cr_assert_eq(y, -12);
    /* A result larger than the caller's buffer. */
    char small[2];
    mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, sizeof(x), 8, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, small, sizeof(small), NULL, 30), MP_EMSGSIZE);
    mp_async_destroy(a);
    /* ctx pointers mean nothing on another machine. */
    mp_assert_rc(mp_pool_apply_async(p, square, &x, &x, sizeof(x), 8, NULL, NULL, NULL, &a),
                 MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "mp_pool_apply_async: ctx must be NULL"), "%s",
              mp_error_detail());
    mp_assert_rc(mp_pool_for(p, &(mp_for_spec){0}, 1), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "mp_pool_for: spec->fn is NULL"), "%s", mp_error_detail());
    /* Each refused map says which field. */
    int64_t in[2] = {1, 2}, out[2];
    mp_map_spec ms = {.fn = square, .in = in, .n = 2, .in_size = 8, .out = out, .out_size = 8};
    mp_map_spec bad = ms;
    bad.ctx = &x;
    mp_assert_rc(mp_pool_map(p, &bad, 1), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "spec->ctx must be NULL"), "%s", mp_error_detail());
    bad = ms;
    bad.in_size = 0;
    mp_assert_rc(mp_pool_map(p, &bad, 1), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "spec->in_size is 0"), "%s", mp_error_detail());
    bad = ms;
    bad.out_size = 0;
    mp_assert_rc(mp_pool_map(p, &bad, 1), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "spec->out_size is 0"), "%s", mp_error_detail());
    bad = ms;
    bad.in_size = (size_t)1 << 40;
    mp_assert_rc(mp_pool_map(p, &bad, 1), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "a distributed pool's item"), "%s", mp_error_detail());
    mp_imap *it = NULL;
    mp_assert_rc(mp_pool_imap(p, &ms, true, NULL), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "mp_pool_imap: out is NULL"), "%s", mp_error_detail());
    /* Streaming maps are local only. */
    mp_assert_rc(mp_pool_imap_stream(p, &(mp_stream_spec){.fn = square, .item_max = 8}, true, &it),
                 MP_ENOSYS);
    cr_assert(strstr(mp_error_detail(), "distributed pool has no streaming map"), "%s",
              mp_error_detail());
    mp_assert_ok(mp_pool_close(p));
    mp_assert_rc(mp_pool_apply_async(p, square, NULL, &x, sizeof(x), 8, NULL, NULL, NULL, &a),
                 MP_ECLOSED);
    mp_assert_ok(mp_pool_join(p, 30));
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rpool, create_validates_its_options)
{
    server_up();
    mp_manager *m, *local;
    mp_pool *p = NULL;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_assert_ok(mp_manager_open(&local, "local"));
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.manager = m}), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "opts->name is NULL"), "%s", mp_error_detail());
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = ""}), MP_EINVAL);
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.manager = local, .name = "p"}), MP_EINVAL);
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = "p", .processes = 2}),
                 MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "processes, initializer"), "%s", mp_error_detail());
    cr_assert_null(p);
    mp_assert_rc(mp_worker_serve(local, "p", NULL), MP_EINVAL);
    mp_assert_rc(mp_worker_serve(m, NULL, NULL), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "mp_worker_serve: pool_name is NULL"), "%s",
              mp_error_detail());
    mp_assert_rc(mp_worker_serve(m, "", NULL), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "the pool's name is empty"), "%s", mp_error_detail());
    mp_assert_rc(mp_worker_serve(m, "p", &(mp_worker_opts){.idle_timeout = -1}), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "opts->idle_timeout -1"), "%s", mp_error_detail());
    mp_assert_rc(mp_worker_serve(m, "p", &(mp_worker_opts){.executors = 5000}), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "opts->executors is 5000"), "%s", mp_error_detail());
    mp_assert_rc(mp_task_register("square", negate), MP_EEXIST);
    mp_assert_rc(mp_task_register("", negate), MP_EINVAL);
    mp_manager_close(local);
    mp_manager_close(m);
}

Test(rpool, map_of_1000_items_with_two_workers)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    /* One takes a task at a time, the other eight (prefetch). */
    pid_t w[2] = {mp_test_pool_worker(srv.url, "p", NULL),
                  mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.prefetch = 8})};
    mp_pool *p = make_pool(m);
    enum { N = 1000 };
    int64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i, out[i] = -1;
    mp_assert_ok(mp_pool_map(p,
                             &(mp_map_spec){.fn = square,
                                            .in = in,
                                            .n = N,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 7},
                             60));
    for (int i = 0; i < N; i++)
        cr_assert_eq(out[i], (int64_t)i * i, "item %d", i);
    /* Default chunking, and an empty map. */
    memset(out, 0, sizeof(out));
    mp_assert_ok(mp_pool_map(
        p, &(mp_map_spec){.fn = square, .in = in, .n = N, .in_size = 8, .out = out, .out_size = 8},
        60));
    cr_assert_eq(out[N - 1], (int64_t)(N - 1) * (N - 1));
    mp_assert_ok(mp_pool_map(p, &(mp_map_spec){.fn = square, .in = in, .n = 0, .in_size = 8}, 5));
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 30));
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", w, 2);
    mp_manager_close(m);
}

Test(rpool, imap_unordered_and_ordered)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w[2] = {mp_test_pool_worker(srv.url, "p", NULL), mp_test_pool_worker(srv.url, "p", NULL)};
    mp_pool *p = make_pool(m);
    int64_t in[50];
    for (int i = 0; i < 50; i++)
        in[i] = i;
    for (int ordered = 0; ordered < 2; ordered++) {
        mp_imap *it;
        mp_assert_ok(mp_pool_imap(
            p,
            &(mp_map_spec){
                .fn = square, .in = in, .n = 50, .in_size = 8, .out_size = 8, .chunksize = 3},
            ordered, &it));
        bool seen[50] = {false};
        int64_t v;
        size_t idx;
        size_t len = 99;
        char small[4];
        mp_assert_rc(mp_imap_next_sized(it, small, sizeof small, &len, &idx, NULL, 30),
                     MP_EMSGSIZE);
        cr_assert_eq(len, 8);
        for (int k = 0; k < 50; k++) {
            /* The ordered round reads with mp_imap_next_sized. */
            len = 99;
            if (ordered)
                mp_assert_ok(mp_imap_next_sized(it, &v, sizeof v, &len, &idx, NULL, 30));
            else
                mp_assert_ok(mp_imap_next(it, &v, &idx, NULL, 30));
            cr_assert(idx < 50 && !seen[idx]);
            if (ordered)
                cr_assert(idx == (size_t)k && len == 8, "item %zu, %zu bytes", idx, len);
            seen[idx] = true;
            cr_assert_eq(v, (int64_t)(idx * idx));
        }
        mp_assert_rc(mp_imap_next(it, &v, &idx, NULL, 1), MP_EEOF);
        len = 99; /* no result given: no length either */
        mp_assert_rc(mp_imap_next_sized(it, &v, sizeof v, &len, &idx, NULL, 1), MP_EEOF);
        cr_assert_eq(len, 0);
        mp_imap_destroy(it);
    }
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", w, 2);
    mp_manager_close(m);
}

/* Each item fails alone, with its code and its message (version 2
 * records), from executors or from the worker's own thread. */
static void check_task_errors(const mp_worker_opts *o)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", o);
    mp_pool *p = make_pool(m);
    int64_t in[10], out[10] = {0};
    for (int i = 0; i < 10; i++)
        in[i] = i;
    mp_task_error errs[8];
    size_t nerr = 0;
    mp_assert_rc(mp_pool_map(p,
                             &(mp_map_spec){.fn = fail_odd,
                                            .in = in,
                                            .n = 10,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 4,
                                            .errors = errs,
                                            .errors_cap = 8,
                                            .n_errors = &nerr},
                             30),
                 MP_ETASKFAILED);
    cr_assert_eq(nerr, 5);
    for (size_t i = 0; i < nerr; i++) {
        char want[16];
        snprintf(want, sizeof want, "odd %zu", errs[i].index);
        cr_assert_eq(errs[i].code, MP_ETASKFAILED);
        cr_assert_eq(errs[i].task_code, 7);
        cr_assert_eq(errs[i].index % 2, 1);
        cr_assert_str_eq(errs[i].message, want);
    }
    cr_assert_eq(out[4], 16);
    mp_async *a;
    mp_task_error e;
    int64_t x = 3;
    int calls[2] = {0, 0};
    mp_assert_ok(mp_pool_apply_async(p, fail_odd, NULL, &x, 8, 8, on_ok, on_err, calls, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 30), MP_ETASKFAILED);
    cr_assert(calls[0] == 0 && calls[1] == 1);
    cr_assert_eq(mp_async_successful(a), 1);
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.task_code, 7);
    cr_assert_str_eq(e.message, "odd 3");
    mp_async_destroy(a);
    /* A task that succeeds after a message is a plain result. */
    x = 4;
    int64_t y = 0;
    mp_assert_ok(mp_pool_apply(p, fail_odd, NULL, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 16);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rpool, a_task_error_code_fails_only_its_item)
{
    check_task_errors(NULL);
}

Test(rpool, a_task_error_code_fails_only_its_item_inline)
{
    check_task_errors(&(mp_worker_opts){.executors = MP_WORKER_INLINE});
}

static int late(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                void *ctx)
{
    return square(in, in_len, out, out_cap, out_len, ctx);
}

Test(rpool, a_result_larger_than_allowed_fails_its_task)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    mp_pool *p = make_pool(m);
    mp_async *a;
    mp_task_error e;
    char buf[64];
    int calls[2] = {0, 0};
    mp_assert_ok(
        mp_pool_apply_async(p, claim_too_much, NULL, NULL, 0, 8, on_ok, on_err, calls, &a));
    mp_assert_rc(mp_async_get(a, buf, sizeof buf, NULL, 30), MP_EMSGSIZE);
    cr_assert(calls[0] == 0 && calls[1] == 1, "callbacks: %d ok, %d failed", calls[0], calls[1]);
    cr_assert_eq(mp_async_successful(a), 1);
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.code, MP_EMSGSIZE);
    mp_async_destroy(a);
    int64_t in[6] = {0}, out[6];
    mp_task_error errs[6];
    size_t nerr = 0;
    mp_assert_rc(mp_pool_map(p,
                             &(mp_map_spec){.fn = claim_too_much,
                                            .in = in,
                                            .n = 6,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 4,
                                            .errors = errs,
                                            .errors_cap = 6,
                                            .n_errors = &nerr},
                             30),
                 MP_EMSGSIZE);
    cr_assert_eq(nerr, 6);
    for (size_t i = 0; i < nerr; i++)
        cr_assert_eq(errs[i].code, MP_EMSGSIZE);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rpool, unknown_function_fails_the_task_not_the_worker)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.registered_only = true});
    /* Registered after the worker started: the worker does not know it. */
    mp_assert_ok(mp_task_register("late", late));
    mp_pool *p = make_pool(m);
    int64_t x = 5, y;
    mp_assert_rc(mp_pool_apply(p, late, NULL, &x, 8, &y, 8, NULL, 30), MP_ENOFUNC);
    /* By address, refused by a registered_only worker. */
    mp_assert_rc(mp_pool_apply(p, negate, NULL, &x, 8, &y, 8, NULL, 30), MP_ENOFUNC);
    /* An entry this library did not write: dead-lettered, acknowledged. */
    mp__redis *r = mp__manager_redis_conn(m);
    char k[128];
    snprintf(k, sizeof(k), "%spool:p:tasks", mp__redis_prefix(r));
    mp_assert_ok(mp__redis_cmd(r, MP__RR_STR, NULL, 7,
                               (const char *[]){"XADD", k, "*", "id", "x", "c", "../../etc"},
                               NULL));
    /* The worker is still there (and has passed the bad entry). */
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 25);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:dead"), 1);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rpool, a_killed_worker_task_is_claimed_again)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    char marker[128];
    snprintf(marker, sizeof(marker), "%s/slow_once.marker", srv.dir);
    mp_worker_opts o = {.visibility_timeout = 1};
    pid_t w1 = mp_test_pool_worker(srv.url, "p", &o);
    mp_pool *p = make_pool(m);
    mp_async *a;
    mp_assert_ok(
        mp_pool_apply_async(p, slow_once, NULL, marker, strlen(marker), 8, NULL, NULL, NULL, &a));
    /* Wait until w1 holds it (the marker exists), then kill w1. */
    struct stat st;
    for (int i = 0; i < 3000 && stat(marker, &st) != 0; i++)
        usleep(10000);
    cr_assert_eq(stat(marker, &st), 0, "the task never started");
    kill(w1, SIGKILL);
    int status;
    cr_assert_eq(waitpid(w1, &status, 0), w1);
    pid_t w2 = mp_test_pool_worker(srv.url, "p", &o);
    char out[8];
    size_t len;
    mp_assert_ok(mp_async_get(a, out, sizeof(out), &len, 30));
    cr_assert_eq(len, 4);
    cr_assert(memcmp(out, "done", 4) == 0);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w2, 1);
    mp_manager_close(m);
}

static long long pending_count(mp_manager *m)
{
    mp__redis *r = mp__manager_redis_conn(m);
    char k[256];
    snprintf(k, sizeof(k), "%spool:p:tasks", mp__redis_prefix(r));
    redisReply *rep;
    mp_assert_ok(mp__redis_cmd(r, MP__RR_ANY_VALUE, &rep, 3,
                               (const char *[]){"XPENDING", k, "workers"}, NULL));
    cr_assert(rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
              rep->element[0]->type == REDIS_REPLY_INTEGER);
    long long n = rep->element[0]->integer;
    freeReplyObject(rep);
    return n;
}

Test(rpool, a_killed_worker_holding_a_prefetched_batch_loses_none_of_it)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    char marker[128];
    snprintf(marker, sizeof(marker), "%s/stall_once.marker", srv.dir);
    mp_pool *p = make_pool(m);
    enum { N = 8 };
    int64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i + 1, out[i] = -1;
    mp_async *a;
    /* Every task is on the stream before the worker reads: it takes all
     * eight at once, and hangs in the first. */
    a = map_i64_async(p, stall_once, in, out, N, 1);
    mp_worker_opts o = {.visibility_timeout = 1, .prefetch = N, .ctx = marker};
    pid_t w1 = mp_test_pool_worker(srv.url, "p", &o);
    struct stat st;
    for (int i = 0; i < 3000 && stat(marker, &st) != 0; i++)
        usleep(10000);
    cr_assert_eq(stat(marker, &st), 0, "the task never started");
    cr_assert_eq(pending_count(m), N);
    kill(w1, SIGKILL);
    int status;
    cr_assert_eq(waitpid(w1, &status, 0), w1);
    o.prefetch = 0; /* adaptive */
    pid_t w2 = mp_test_pool_worker(srv.url, "p", &o);
    mp_assert_ok(mp_async_get(a, NULL, 0, NULL, 30));
    for (int i = 0; i < N; i++)
        cr_assert_eq(out[i], (int64_t)(i + 1) * (i + 1), "item %d", i);
    cr_assert_eq(pending_count(m), 0);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w2, 1);
    mp_manager_close(m);
}

Test(rpool, a_packed_entry_of_a_killed_worker_gives_one_result_per_item)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    char marker[128];
    snprintf(marker, sizeof(marker), "%s/stall_once.marker", srv.dir);
    mp_pool *p = make_pool(m);
    /* 1024 chunks of one item: packed 4 to an entry (256 entries). */
    enum { N = 1024 };
    static int64_t in[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    mp_imap *it;
    mp_assert_ok(mp_pool_imap(
        p,
        &(mp_map_spec){
            .fn = stall_once, .in = in, .n = N, .in_size = 8, .out_size = 8, .chunksize = 1},
        false, &it));
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), N / 4);
    /* The first worker takes one entry (4 tasks) and hangs in its first. */
    mp_worker_opts o = {.visibility_timeout = 1, .ctx = marker, .executors = 1};
    pid_t w1 = mp_test_pool_worker(srv.url, "p", &o);
    struct stat st;
    for (int i = 0; i < 3000 && stat(marker, &st) != 0; i++)
        usleep(10000);
    cr_assert_eq(stat(marker, &st), 0, "the task never started");
    cr_assert_eq(pending_count(m), 1);
    kill(w1, SIGKILL);
    int status;
    cr_assert_eq(waitpid(w1, &status, 0), w1);
    pid_t w2 = mp_test_pool_worker(srv.url, "p", &o);
    static bool seen[N];
    int64_t v;
    size_t idx;
    for (int k = 0; k < N; k++) {
        mp_assert_ok(mp_imap_next(it, &v, &idx, NULL, 30));
        cr_assert(idx < N && !seen[idx], "item %zu twice", idx);
        seen[idx] = true;
        cr_assert_eq(v, (int64_t)(idx * idx));
    }
    mp_assert_rc(mp_imap_next(it, &v, &idx, NULL, 0.5), MP_EEOF);
    mp_imap_destroy(it);
    cr_assert_eq(pending_count(m), 0);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w2, 1);
    mp_manager_close(m);
}

/* XADDs an entry of the given fields to the pool p's stream. */
static void xadd_raw(mp_manager *m, int nf, const char *const *f, const size_t *lens)
{
    mp__redis *r = mp__manager_redis_conn(m);
    char k[256];
    snprintf(k, sizeof(k), "%spool:p:tasks", mp__redis_prefix(r));
    const char *argv[32] = {"XADD", k, "*"};
    size_t al[32] = {4, strlen(k), 1};
    for (int i = 0; i < nf; i++)
        argv[3 + i] = f[i], al[3 + i] = lens[i];
    mp_assert_ok(mp__redis_cmd(r, MP__RR_STR, NULL, 3 + nf, argv, al));
}

Test(rpool, malformed_packed_entries_go_to_the_dead_letter_stream)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    /* No item per task; more tasks than an entry packs. */
    const char *bad[2][16] = {{"id", "1", "c", "00ff", "f", "n:square", "n", "2", "isz", "8", "cap",
                               "8", "in", "0123456789abcdef", "k", "0"},
                              {"id", "1", "c", "00ff", "f", "n:square", "n", "65", "isz", "0",
                               "cap", "8", "in", "", "k", "1"}};
    for (int b = 0; b < 2; b++) {
        size_t lens[16];
        for (int i = 0; i < 16; i++)
            lens[i] = strlen(bad[b][i]);
        xadd_raw(m, 16, bad[b], lens);
    }
    /* Their client is alive (workers drop the tasks of a client without
     * its key, malformed or not). */
    mp__redis *r = mp__manager_redis_conn(m);
    char k[256];
    snprintf(k, sizeof(k), "%spool:p:client:00ff", mp__redis_prefix(r));
    mp_assert_ok(mp__redis_cmd(r, MP__RR_STATUS, NULL, 5,
                               (const char *[]){"SET", k, "1", "PX", "60000"}, NULL));
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    for (int i = 0; i < 3000 && redis_int(m, "XLEN", "pool:p:dead") < 2; i++)
        usleep(10000);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:dead"), 2);
    /* The worker goes on. */
    int64_t x = 9, y = 0;
    mp_async *a;
    mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    mp_assert_ok(mp_async_get(a, &y, 8, NULL, 30));
    cr_assert_eq(y, 81);
    mp_async_destroy(a);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    cr_assert_eq(pending_count(m), 0);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rpool, a_prefetched_batch_longer_than_the_visibility_timeout_runs_once)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    char log[128];
    snprintf(log, sizeof(log), "%s/runs.log", srv.dir);
    mp_pool *p = make_pool(m);
    enum { N = 6 };
    int64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i, out[i] = -1;
    mp_async *a;
    a = map_i64_async(p, logged_slow, in, out, N, 1);
    /* w1 takes the six (4.2 s of work, twice its visibility timeout); w2
     * claims whatever stays idle past it: the batch's held tasks must not. */
    mp_worker_opts o = {.visibility_timeout = 2, .prefetch = N, .ctx = log};
    pid_t w[2] = {mp_test_pool_worker(srv.url, "p", &o), 0};
    struct stat st;
    for (int i = 0; i < 3000 && stat(log, &st) != 0; i++)
        usleep(10000);
    cr_assert_eq(pending_count(m), N);
    o.prefetch = 0;
    w[1] = mp_test_pool_worker(srv.url, "p", &o);
    mp_assert_ok(mp_async_get(a, NULL, 0, NULL, 30));
    for (int i = 0; i < N; i++)
        cr_assert_eq(out[i], (int64_t)i * i, "item %d", i);
    cr_assert_eq(stat(log, &st), 0);
    cr_assert_eq(st.st_size, N, "every task ran once");
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", w, 2);
    mp_manager_close(m);
}

Test(rpool, batched_answers_reach_interleaved_clients)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p[2] = {make_pool(m), make_pool(m)};
    enum { N = 200 };
    mp_async *a[2][N];
    int64_t x[N];
    /* Alternate clients on the stream, so that a batch of answers mixes
     * their result lists. */
    for (int i = 0; i < N; i++) {
        x[i] = i;
        for (int c = 0; c < 2; c++)
            mp_assert_ok(
                mp_pool_apply_async(p[c], square, NULL, &x[i], 8, 8, NULL, NULL, NULL, &a[c][i]));
    }
    pid_t w[2] = {mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.prefetch = 16}),
                  mp_test_pool_worker(srv.url, "p", NULL)};
    for (int i = 0; i < N; i++)
        for (int c = 0; c < 2; c++) {
            int64_t v = -1;
            size_t len = 0;
            mp_assert_ok(mp_async_get(a[c][i], &v, sizeof(v), &len, 30));
            cr_assert(len == 8 && v == (int64_t)i * i, "client %d task %d", c, i);
            mp_async_destroy(a[c][i]);
        }
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0, "entries are deleted once answered");
    mp_pool_destroy(p[0]);
    mp_pool_destroy(p[1]);
    mp_test_pool_workers_stop(m, "p", w, 2);
    mp_manager_close(m);
}

Test(rpool, a_task_that_kills_every_worker_goes_to_the_dead_letter_stream)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    /* Inline: the task kills the worker itself (with executors it kills
     * only an executor: test_redis_pool_exec.c). */
    mp_worker_opts o = {
        .visibility_timeout = 0.3, .max_deliveries = 2, .executors = MP_WORKER_INLINE};
    pid_t w = mp_test_pool_worker(srv.url, "p", &o);
    mp_pool *p = make_pool(m);
    mp_async *a;
    mp_assert_ok(mp_pool_apply_async(p, suicide, NULL, NULL, 0, 0, NULL, NULL, NULL, &a));
    int deaths = 0;
    while (!mp_async_ready(a)) {
        int st;
        if (waitpid(w, &st, WNOHANG) == w) {
            cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
            deaths++;
            cr_assert(deaths <= 2, "delivered more than max_deliveries times");
            w = mp_test_pool_worker(srv.url, "p", &o);
        }
        mp_async_wait(a, 0.05);
    }
    cr_assert_eq(deaths, 2);
    mp_task_error e;
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0), MP_EWORKERLOST);
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.code, MP_EWORKERLOST);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:dead"), 1);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rpool, server_restart_is_a_clear_error_without_reconnect)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(url_opt("?reconnect=1"), "p", NULL);
    mp_pool *p = make_pool(m);
    int64_t x = 4, y;
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 30));
    mp_test_redis_stop(&srv, 1);
    /* Down: the call fails, it does not wait for its timeout. */
    mp_assert_rc(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, MP_FOREVER), MP_ECONNRESET);
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    /* Back, but this client does not reconnect. */
    mp_async *a;
    mp_assert_rc(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a),
                 MP_ECONNRESET);
    mp_pool_destroy(p);
    mp_manager_close(m);
    /* The worker did reconnect: a new client is served. */
    mp_assert_ok(mp_manager_open(&m, srv.url));
    p = make_pool(m);
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 16);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rpool, server_restart_with_reconnect_goes_on)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, url_opt("?reconnect=1&timeout=2")));
    pid_t w = mp_test_pool_worker(url_opt("?reconnect=1"), "p", NULL);
    mp_pool *p = make_pool(m);
    int64_t x = 4, y;
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 30));
    /* A task in flight while the server restarts without its data is
     * lost: its get ends at its timeout, it does not hang. */
    mp_test_redis_stop(&srv, 1);
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 16);
    mp_async *a;
    int64_t ms = 1500;
    mp_assert_ok(mp_pool_apply_async(p, sleep_ms, NULL, &ms, 8, 0, NULL, NULL, NULL, &a));
    mp_test_redis_stop(&srv, 1);
    int rc = mp_async_get(a, NULL, 0, NULL, 1);
    cr_assert(rc == MP_ECONNREFUSED || rc == MP_ECONNRESET || rc == MP_ETIMEDOUT, "%s",
              mp_err_name(rc));
    mp_async_destroy(a);
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 30));
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rpool, tasks_lost_in_a_server_restart_fail_instead_of_hanging)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, url_opt("?reconnect=1")));
    mp_pool *p = make_pool(m);
    int64_t x = 4, in[10] = {0}, out[10], y;
    mp_async *a, *b;
    /* No worker yet: both wait on the stream when the server restarts
     * without its data. */
    mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    b = map_i64_async(p, square, in, out, 10, 3);
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0.2), MP_ETIMEDOUT);
    mp_test_redis_stop(&srv, 1);
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    mp_assert_rc(mp_async_get(a, &y, 8, NULL, MP_FOREVER), MP_ECONNRESET);
    mp_assert_rc(mp_async_get(b, NULL, 0, NULL, MP_FOREVER), MP_ECONNRESET);
    mp_task_error e;
    mp_assert_ok(mp_async_error(b, 0, &e));
    cr_assert_eq(e.code, MP_ECONNRESET);
    mp_async_destroy(a);
    mp_async_destroy(b);
    /* The pool goes on with the new server. */
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 16);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rpool, a_frozen_server_never_holds_a_call_past_its_timeouts)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, url_opt("?timeout=1")));
    mp_pool *p = make_pool(m);
    int64_t x = 4;
    mp_async *a;
    mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    /* The server stops answering (no worker either): the wait ends with
     * the call's timeout plus the connection's, not never. */
    kill(srv.pid, SIGSTOP);
    int rc = mp_async_get(a, NULL, 0, NULL, 0.5);
    cr_assert(rc == MP_ETIMEDOUT, "%s", mp_err_name(rc));
    kill(srv.pid, SIGCONT);
    mp_async_destroy(a);
    mp_pool_destroy(p);
    mp_manager_close(m);
}

Test(rpool, terminate_abandons_and_destroy_keeps_results_valid)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    int64_t x = 4;
    mp_async *a;
    /* No worker: the task stays on the stream. */
    mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0.2), MP_ETIMEDOUT);
    mp_assert_rc(mp_pool_join(p, 0.1), MP_EBUSY);
    /* Only the creating process uses the pool: a forked child would take
     * its parent's results. */
    pid_t child = fork();
    if (child == 0) {
        mp_async *b;
        bool ok = mp_async_wait(a, 0.1) == MP_EPERM &&
                  mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &b) == MP_EPERM;
        _exit(ok ? 0 : 1);
    }
    int st;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_eq(mp_pool_poll(p), 1);
    mp_assert_ok(mp_pool_terminate(p));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 1), MP_ECLOSED);
    mp_assert_ok(mp_pool_join(p, 1));
    mp_pool_destroy(p);
    cr_assert_eq(mp_async_successful(a), 1);
    mp_async_destroy(a);
    mp_manager_close(m);
}

/* ---- batched submission ------------------------------------------------*/

Test(rpool, a_burst_of_apply_async_delivers_every_result)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w[2] = {mp_test_pool_worker(srv.url, "p", NULL), mp_test_pool_worker(srv.url, "p", NULL)};
    mp_pool *p = make_pool(m);
    enum { N = 5 * MP__REDIS_POOL_BATCH + 3 };
    static mp_async *a[N];
    int calls[2] = {0, 0};
    for (int64_t i = 0; i < N; i++)
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &i, 8, 8, on_ok, on_err, calls, &a[i]));
    for (int i = N - 1; i >= 0; i--) { /* the last first: it may be unsent */
        int64_t v = -1;
        mp_assert_ok(mp_async_get(a[i], &v, sizeof(v), NULL, 30));
        cr_assert_eq(v, (int64_t)i * i, "task %d", i);
        mp_async_destroy(a[i]);
    }
    cr_assert(calls[0] == N && calls[1] == 0, "callbacks: %d ok, %d failed", calls[0], calls[1]);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", w, 2);
    mp_manager_close(m);
}

/* A task held back while others are outstanding goes out when its result
 * is asked for: no timer, no full batch needed. */
Test(rpool, apply_async_then_get_returns_with_others_outstanding)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w[2] = {mp_test_pool_worker(srv.url, "p", NULL), mp_test_pool_worker(srv.url, "p", NULL)};
    mp_pool *p = make_pool(m);
    int64_t ms = 300, x = 7, v = 0;
    mp_async *slow, *a;
    for (int round = 0; round < 20; round++) {
        /* Idle pool: sent at once. */
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
        mp_assert_ok(mp_async_get(a, &v, sizeof(v), NULL, 30));
        cr_assert_eq(v, 49);
        mp_async_destroy(a);
    }
    mp_assert_ok(mp_pool_apply_async(p, sleep_ms, NULL, &ms, 8, 0, NULL, NULL, NULL, &slow));
    for (int round = 0; round < 20; round++) {
        /* slow is outstanding: held, then sent by get. */
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
        mp_assert_ok(mp_async_get(a, &v, sizeof(v), NULL, 30));
        cr_assert_eq(v, 49);
        mp_async_destroy(a);
        /* The same through ready and wait. */
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
        while (!mp_async_ready(a))
            mp_assert_ok(mp_async_wait(a, 30));
        mp_async_destroy(a);
    }
    mp_assert_ok(mp_async_get(slow, NULL, 0, NULL, 30));
    mp_async_destroy(slow);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", w, 2);
    mp_manager_close(m);
}

/* A held task goes out within about a millisecond by itself, whatever the
 * client does meanwhile: here it makes no pool call at all. */
Test(rpool, a_held_task_reaches_the_stream_without_another_call)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    int64_t x = 3;
    mp_async *a[3];
    for (int i = 0; i < 3; i++) /* the first goes out at once, then held */
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a[i]));
    for (int i = 0; i < 500 && redis_int(m, "XLEN", "pool:p:tasks") < 3; i++)
        usleep(10000);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 3);
    /* And the results come back as usual. */
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    for (int i = 0; i < 3; i++) {
        int64_t v = 0;
        mp_assert_ok(mp_async_get(a[i], &v, sizeof(v), NULL, 30));
        cr_assert_eq(v, 9);
        mp_async_destroy(a[i]);
    }
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

/* With no worker, a burst far larger than the bound: every call returns,
 * and at most MP__REDIS_POOL_BATCH tasks, and MP__REDIS_POOL_UNSENT_BYTES
 * of input, are held in the client at any time; the rest are on the
 * stream. */
Test(rpool, unsent_tasks_stay_bounded_without_workers)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    enum { N = 20 * MP__REDIS_POOL_BATCH };
    static mp_async *a[N];
    for (int64_t i = 0; i < N; i++) {
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &i, 8, 8, NULL, NULL, NULL, &a[i]));
        long long on_stream = redis_int(m, "XLEN", "pool:p:tasks");
        cr_assert(on_stream >= i + 1 - MP__REDIS_POOL_BATCH, "%lld of %lld sent", on_stream,
                  (long long)i + 1);
    }
    /* Large inputs: the byte bound. */
    size_t big = MP__REDIS_POOL_UNSENT_BYTES / 3 + 1;
    char *in = calloc(1, big);
    cr_assert(in);
    mp_async *b[8];
    long long before = redis_int(m, "XLEN", "pool:p:tasks");
    for (int i = 0; i < 8; i++) {
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, in, big, 8, NULL, NULL, NULL, &b[i]));
        long long held = before + i + 1 - redis_int(m, "XLEN", "pool:p:tasks");
        cr_assert(held <= 2, "%lld large tasks held", held);
    }
    free(in);
    cr_assert_eq(mp_pool_poll(p), N + 8);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), N + 8, "poll sends what was held");
    mp_pool_destroy(p);
    for (int i = 0; i < N; i++)
        mp_async_destroy(a[i]);
    for (int i = 0; i < 8; i++)
        mp_async_destroy(b[i]);
    mp_manager_close(m);
}

/* A task accepted by apply_async reaches the stream before close or join
 * returns, even when its result was destroyed at once; destroy (a
 * terminate) sends the accepted tasks and withdraws them with the others. */
Test(rpool, accepted_tasks_reach_the_stream_before_close_and_destroy_withdraws_them)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    enum { N = MP__REDIS_POOL_BATCH / 2 };
    mp_async *a, *held[N];
    int64_t x = 3;
    /* destroy */
    mp_pool *p = make_pool(m);
    for (int i = 0; i < N; i++)
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &held[i]));
    mp_pool_destroy(p); /* the results are detached, still valid */
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    for (int i = 0; i < N; i++) {
        mp_assert_ok(mp_async_successful(held[i]) >= 0 ? 0 : -1);
        mp_async_destroy(held[i]);
    }
    /* close, with fire-and-forget tasks */
    p = make_pool(m);
    for (int i = 0; i < N; i++) {
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
        mp_async_destroy(a);
    }
    mp_assert_ok(mp_pool_close(p));
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), N);
    mp_assert_ok(mp_pool_join(p, 30));
    mp_pool_destroy(p);
    /* A worker runs all of them. */
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    for (int i = 0; i < 3000 && redis_int(m, "XLEN", "pool:p:tasks") > 0; i++)
        usleep(10000);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

/* A held task that cannot be sent fails its result: it is not lost. */
Test(rpool, a_held_task_that_cannot_be_sent_fails_its_result)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, url_opt("?timeout=1")));
    mp_pool *p = make_pool(m);
    int64_t x = 5;
    mp_async *first, *held;
    int calls[2] = {0, 0};
    mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &first));
    /* The server stops answering: the held task's send (by the pool's
     * thread, 1 ms later) times out; the failure reaches its result and
     * its error callback in this thread, at the next call. */
    kill(srv.pid, SIGSTOP);
    mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, on_ok, on_err, calls, &held));
    usleep(50000); /* the thread took it: this thread does not send it */
    int rc = mp_async_get(held, NULL, 0, NULL, 30);
    kill(srv.pid, SIGCONT);
    cr_assert(rc < 0, "%s", mp_err_name(rc));
    cr_assert(mp_async_ready(held) && calls[0] == 0 && calls[1] == 1,
              "ready %d, callbacks %d ok %d failed", mp_async_ready(held), calls[0], calls[1]);
    mp_async_destroy(held);
    mp_async_destroy(first);
    mp_pool_destroy(p);
    mp_manager_close(m);
}

/* ---- codecs (pure) -------------------------------------------------------*/

Test(rpool, codec_result_records_are_checked_before_use)
{
    unsigned char buf[64];
    mp__redis_result r;
    mp__redis_result_put_head(buf, 42, 0, 2);
    mp__redis_result_put_item(buf + 20, 0, 3);
    memcpy(buf + 28, "abc", 3);
    mp__redis_result_put_item(buf + 31, 5, 0);
    mp_assert_ok(mp__redis_result_decode(buf, 39, &r));
    cr_assert_eq(r.id, 42);
    int32_t code;
    const unsigned char *d;
    size_t len;
    mp_assert_ok(mp__redis_result_next(&r, &code, &d, &len));
    cr_assert(code == 0 && len == 3 && memcmp(d, "abc", 3) == 0);
    mp_assert_ok(mp__redis_result_next(&r, &code, &d, &len));
    cr_assert(code == 5 && len == 0);
    mp_assert_rc(mp__redis_result_next(&r, &code, &d, &len), MP_ERANGE);
    /* Version 2: a failed item's bytes are its message; version 1 has none. */
    unsigned char v2[32 + MP_TASK_MESSAGE_MAX] = {0};
    mp__redis_result_put_head(v2, 43, 0, 1);
    mp__redis_result_put_item(v2 + 20, 5, 4);
    memcpy(v2 + 28, "oops", 4);
    mp_assert_rc(mp__redis_result_decode(v2, 32, &r), MP_EBADMSG); /* MPR1 */
    mp__redis_result_set_v2(v2);
    cr_assert_eq(memcmp(v2, "MPR2", 4), 0);
    mp_assert_ok(mp__redis_result_decode(v2, 32, &r));
    mp_assert_ok(mp__redis_result_next(&r, &code, &d, &len));
    cr_assert(code == 5 && len == 4 && memcmp(d, "oops", 4) == 0);
    mp__redis_result_put_item(v2 + 20, 5, MP_TASK_MESSAGE_MAX); /* longer than a message */
    mp_assert_rc(mp__redis_result_decode(v2, 20 + 8 + MP_TASK_MESSAGE_MAX, &r), MP_EBADMSG);
    v2[3] = '3'; /* an unknown version */
    mp__redis_result_put_item(v2 + 20, 5, 4);
    mp_assert_rc(mp__redis_result_decode(v2, 32, &r), MP_EBADMSG);
    /* Truncated anywhere, one byte too many, a bad magic. */
    for (size_t n = 0; n < 39; n++)
        mp_assert_rc(mp__redis_result_decode(buf, n, &r), MP_EBADMSG);
    mp_assert_rc(mp__redis_result_decode(buf, 40, &r), MP_EBADMSG);
    mp_assert_rc(mp__redis_result_decode(NULL, 39, &r), MP_EBADMSG);
    buf[0] = 'X';
    mp_assert_rc(mp__redis_result_decode(buf, 39, &r), MP_EBADMSG);
    /* An item length past the end (even a huge one). */
    mp__redis_result_put_head(buf, 1, 0, 1);
    mp__redis_result_put_item(buf + 20, 0, 0xfffffffeu);
    mp_assert_rc(mp__redis_result_decode(buf, 28, &r), MP_EBADMSG);
    /* The oversize mark: no payload, a length no buffer holds; only for a
     * task that returned 0. */
    mp__redis_result_put_item(buf + 20, 0, MP__REDIS_RESULT_OVERSIZE);
    mp_assert_ok(mp__redis_result_decode(buf, 28, &r));
    mp_assert_ok(mp__redis_result_next(&r, &code, &d, &len));
    cr_assert(code == 0 && len == SIZE_MAX);
    mp_assert_rc(mp__redis_result_decode(buf, 29, &r), MP_EBADMSG);
    mp__redis_result_put_item(buf + 20, 5, MP__REDIS_RESULT_OVERSIZE);
    mp_assert_rc(mp__redis_result_decode(buf, 28, &r), MP_EBADMSG);
    /* The lost mark: the executor's pid and signal follow, and only with
     * the code MP_EWORKERLOST. */
    mp__redis_result_put_lost(buf + 20, 1234, 11);
    mp_assert_ok(mp__redis_result_decode(buf, 36, &r));
    mp_assert_ok(mp__redis_result_next(&r, &code, &d, &len));
    cr_assert(code == MP_EWORKERLOST && len == MP__REDIS_ITEM_LOST);
    pid_t pid;
    int sig;
    mp__redis_result_lost(d, &pid, &sig);
    cr_assert(pid == 1234 && sig == 11);
    mp_assert_rc(mp__redis_result_next(&r, &code, &d, &len), MP_ERANGE);
    mp_assert_rc(mp__redis_result_decode(buf, 35, &r), MP_EBADMSG);
    mp_assert_rc(mp__redis_result_decode(buf, 37, &r), MP_EBADMSG);
    mp__redis_result_put_item(buf + 20, 0, MP__REDIS_RESULT_LOST);
    mp_assert_rc(mp__redis_result_decode(buf, 36, &r), MP_EBADMSG);
    /* A whole-task failure carries no items; a positive code is not ours. */
    mp__redis_result_put_head(buf, 1, MP_EWORKERLOST, 0);
    mp_assert_ok(mp__redis_result_decode(buf, 20, &r));
    mp__redis_result_put_head(buf, 1, MP_EWORKERLOST, 1);
    mp_assert_rc(mp__redis_result_decode(buf, 20, &r), MP_EBADMSG);
    mp__redis_result_put_head(buf, 1, 3, 0);
    mp_assert_rc(mp__redis_result_decode(buf, 20, &r), MP_EBADMSG);
}

static int parse(mp__redis_task *t, size_t nf, ...)
{
    const char *f[32];
    size_t lens[32];
    va_list ap;
    va_start(ap, nf);
    for (size_t i = 0; i < nf; i++) {
        f[i] = va_arg(ap, const char *);
        lens[i] = strlen(f[i]);
    }
    va_end(ap);
    return mp__redis_task_parse(f, lens, nf, t);
}

Test(rpool, codec_task_entries_are_checked_before_use)
{
    mp__redis_task t;
    mp_assert_ok(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sq", "n", "2", "isz", "3", "cap",
                       "8", "in", "abcdef"));
    cr_assert(t.id == 7 && t.n == 2 && t.isz == 3 && t.cap == 8 && t.in_len == 6);
    cr_assert_str_eq(t.client, "00ff");
    /* Unknown fields are ignored. */
    mp_assert_ok(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sq", "n", "1", "isz", "0", "cap",
                       "8", "in", "", "x", "y"));
    /* Sizes that do not add up, a missing field, a duplicate. */
    mp_assert_rc(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sq", "n", "2", "isz", "3", "cap",
                       "8", "in", "abcde"),
                 MP_EBADMSG);
    mp_assert_rc(
        parse(&t, 12, "id", "7", "c", "00ff", "f", "n:sq", "n", "1", "isz", "0", "cap", "8"),
        MP_EBADMSG);
    mp_assert_rc(parse(&t, 16, "id", "7", "id", "8", "c", "00ff", "f", "n:sq", "n", "1", "isz", "0",
                       "cap", "8", "in", ""),
                 MP_EBADMSG);
    /* A client id that would make another key, bad numbers, no items,
     * bounds past what a worker allocates, an odd field count. */
    mp_assert_rc(parse(&t, 14, "id", "7", "c", "../x", "f", "n:sq", "n", "1", "isz", "0", "cap",
                       "8", "in", ""),
                 MP_EBADMSG);
    mp_assert_rc(parse(&t, 14, "id", "-7", "c", "00ff", "f", "n:sq", "n", "1", "isz", "0", "cap",
                       "8", "in", ""),
                 MP_EBADMSG);
    mp_assert_rc(parse(&t, 14, "id", "99999999999999999999999", "c", "00ff", "f", "n:sq", "n", "1",
                       "isz", "0", "cap", "8", "in", ""),
                 MP_EBADMSG);
    mp_assert_rc(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sq", "n", "0", "isz", "0", "cap",
                       "8", "in", ""),
                 MP_EBADMSG);
    mp_assert_rc(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sq", "n", "1000", "isz", "0", "cap",
                       "1000000000", "in", ""),
                 MP_EBADMSG);
    mp_assert_rc(parse(&t, 14, "id", "7", "c", "00ff", "f", "x:sq", "n", "1", "isz", "0", "cap",
                       "8", "in", ""),
                 MP_EBADMSG);
    mp_assert_rc(parse(&t, 3, "id", "7", "c"), MP_EBADMSG);
}

Test(rpool, codec_packed_entries_are_checked_before_use)
{
    mp__redis_task t, part;
    /* 5 items, 2 per task: tasks 7, 8, 9 of 2, 2 and 1 items. */
    mp_assert_ok(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sq", "n", "5", "isz", "1", "cap",
                       "8", "in", "abcde", "k", "2"));
    cr_assert_eq(mp__redis_task_count(&t), 3);
    mp__redis_task_part(&t, 2, &part);
    cr_assert(part.id == 9 && part.n == 1 && part.in_len == 1 && part.in[0] == 'e');
    mp__redis_task_part(&t, 1, &part);
    cr_assert(part.id == 8 && part.n == 2 && part.in_len == 2 && memcmp(part.in, "cd", 2) == 0);
    /* Without k: one task. */
    mp_assert_ok(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sq", "n", "5", "isz", "1", "cap",
                       "8", "in", "abcde"));
    cr_assert(mp__redis_task_count(&t) == 1 && t.per == 5);
    /* No item per task, more items per task than the entry has, more
     * tasks than an entry packs, a duplicate, ids that wrap, junk. */
    const char *bad[] = {"0", "6", "-1", "x", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        cr_assert_eq(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sq", "n", "5", "isz", "1", "cap",
                           "8", "in", "abcde", "k", bad[i]),
                     MP_EBADMSG, "k = '%s'", bad[i]);
    mp_assert_rc(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sq", "n", "65", "isz", "0", "cap",
                       "8", "in", "", "k", "1"),
                 MP_EBADMSG);
    mp_assert_ok(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sq", "n", "64", "isz", "0", "cap",
                       "8", "in", "", "k", "1"));
    mp_assert_rc(parse(&t, 18, "id", "7", "c", "00ff", "f", "n:sq", "n", "4", "isz", "0", "cap",
                       "8", "in", "", "k", "1", "k", "2"),
                 MP_EBADMSG);
    mp_assert_rc(parse(&t, 16, "id", "18446744073709551614", "c", "00ff", "f", "n:sq", "n", "4",
                       "isz", "0", "cap", "8", "in", "", "k", "1"),
                 MP_EBADMSG);
}

/* Forks a child that takes new memory of every size class (not only what
 * its allocator cache holds), forks a child of its own and exits: whether
 * it was gone within 2 s (it is killed otherwise). */
static bool forked_child_runs(void)
{
    pid_t c = fork();
    cr_assert(c >= 0);
    if (c == 0) {
        for (size_t size = 16; size <= 32 * 1024; size += size / 16 + 16)
            for (int k = 0; k < 8; k++)
                if (malloc(size) == NULL)
                    _exit(3);
        /* And frees (a sanitizer's quarantine takes memory for them). */
        for (int k = 0; k < 4096; k++)
            free(malloc(32));
        /* And forks in turn (a worker forks its executors). */
        pid_t g = fork();
        if (g == 0)
            _exit(0);
        int gst;
        _exit(g > 0 && waitpid(g, &gst, 0) == g && WIFEXITED(gst) && WEXITSTATUS(gst) == 0 ? 0 : 4);
    }
    int st = 0;
    for (int k = 0; k < 2000; k++) {
        if (waitpid(c, &st, WNOHANG) == c) {
            cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
            return true;
        }
        usleep(1000);
    }
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    return false;
}

/* A fork right after a pool is created, and while its sender thread
 * sends: the child runs. Under AddressSanitizer, whose allocator a child
 * inherits locked when another thread was inside it (a thread starting up
 * allocates in the sanitizer's runtime), an unguarded fork's child hangs
 * at its first allocation of that size (os/fork_gate.h); with glibc's
 * malloc this always held. */
Test(rpool, a_fork_beside_the_pool_threads_gives_a_child_that_runs)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    enum { CREATES = 100, FORKS = 100 };
    for (int i = 0; i < CREATES; i++) {
        mp_pool *p = make_pool(m);
        cr_assert(forked_child_runs(), "child %d of %d forked after a pool create hung", i + 1,
                  CREATES);
        mp_pool_destroy(p);
    }
    mp_pool *p = make_pool(m);
    static mp_async *a[FORKS];
    int64_t x = 3;
    for (int i = 0; i < FORKS; i++) {
        /* No worker: every task after the first is held (the others are
         * outstanding), and the thread sends it about a millisecond
         * later. */
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a[i]));
        usleep((useconds_t)(900 + (i * 37) % 300));
        cr_assert(forked_child_runs(), "child %d of %d forked while the sender sends hung", i + 1,
                  FORKS);
    }
    for (int i = 0; i < FORKS; i++)
        mp_async_destroy(a[i]);
    mp_pool_destroy(p);
    mp_manager_close(m);
}

Test(rpool, results_have_no_fd_but_wait_any_and_mp_wait_take_them)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m);
    int64_t x[3] = {2, 3, 4};
    mp_async *as[4] = {NULL};
    for (int i = 0; i < 3; i++)
        mp_assert_ok(mp_pool_apply_async(p, fail_odd, NULL, &x[i], sizeof(x[i]), 8, NULL, NULL,
                                         NULL, &as[i + 1]));
    mp_assert_rc(mp_async_fd(as[1]), MP_ENOSYS);
    size_t i = 99, ready[4];
    mp_assert_rc(mp_async_wait_any(as, 4, 0.05, &i), MP_ETIMEDOUT); /* no worker yet */
    cr_assert_eq(i, 99);
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap(
        p, &(mp_map_spec){.fn = square, .in = x, .n = 3, .in_size = 8, .out_size = 8}, false, &it));
    mp_assert_rc(mp_imap_fd(it), MP_ENOSYS);
    mp_waitable wi = MP_WAIT_IMAP(it);
    mp_assert_rc(mp_wait(&wi, 1, 0), MP_ENOSYS);
    mp_imap_destroy(it);

    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    int seen = 0, failed = 0, k;
    while ((k = mp_async_wait_some(as, 4, ready, 30)) > 0) {
        for (int j = 0; j < k; j++) {
            int64_t y = 0;
            int rc = mp_async_get(as[ready[j]], &y, sizeof(y), NULL, 0);
            if (rc == 0)
                cr_assert_eq(y, x[ready[j] - 1] * x[ready[j] - 1]);
            else
                failed += rc == MP_ETASKFAILED;
            mp_async_destroy(as[ready[j]]);
            as[ready[j]] = NULL;
            seen++;
        }
    }
    mp_assert_rc(k, MP_EEOF);
    cr_assert_eq(seen, 3);
    cr_assert_eq(failed, 1);
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 30));
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}
