/* Tests of mp_pool_for on a distributed pool against a real Redis server:
 * a sum of squares over a million indexes across two worker processes
 * (one with executors, one inline), negative indexes and the ends of
 * int64_t, acc_init, an empty range, acc_size 0, the workers' ctx, a
 * chunk whose executor segfaults, a chunk that returns an error, an
 * unknown function, a timeout without workers and one that cancels a
 * running chunk, bad arguments (nothing sent), the progress callback of a
 * map and of a for, and the codec of parallel-for entries on malformed
 * input (also sent to a worker: the dead-letter stream). Each test starts
 * its own redis-server (tests/helpers/redis_server.h); workers are forked
 * processes running mp_worker_serve. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis/redis_pool.h"
#include "redis_server.h"

static mp_test_redis srv;

static void rfor_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(rfor, .init = mp_test_fd_setup, .fini = rfor_fini, .timeout = 90);

/* ---- functions -----------------------------------------------------------*/

/* The chunk's sum of squares, added to the partial it starts from. */
static int sum_squares(int64_t begin, int64_t end, void *acc, void *ctx)
{
    (void)ctx;
    int64_t s = 0;
    for (int64_t x = begin; x < end; x++)
        s += x * x;
    *(int64_t *)acc += s;
    return 0;
}

/* The chunk's sum of its indexes. Not registered: travels as its address. */
static int sum_indexes(int64_t begin, int64_t end, void *acc, void *ctx)
{
    (void)ctx;
    for (int64_t x = begin; x < end; x++)
        *(int64_t *)acc += x;
    return 0;
}

static void add(void *total, const void *partial, void *ctx)
{
    (void)ctx;
    *(int64_t *)total += *(const int64_t *)partial;
}

/* A reduce for no partial: counts the chunks that succeeded. */
static int reduced;

static void count(void *total, const void *partial, void *ctx)
{
    (void)total, (void)partial, (void)ctx;
    reduced++;
}

/* A real segmentation fault, with the default action, so that a
 * sanitizer's handler does not turn it into an exit. */
static void segfault(void)
{
    signal(SIGSEGV, SIG_DFL);
    volatile int *volatile bad = (volatile int *)(uintptr_t)4096; /* unmapped, aligned */
    *bad = 1;
}

/* sum_indexes, but the chunk holding index 50 segfaults. */
static int crash_at_50(int64_t begin, int64_t end, void *acc, void *ctx)
{
    if (begin <= 50 && 50 < end)
        segfault();
    return sum_indexes(begin, end, acc, ctx);
}

/* sum_indexes, but the chunk holding index 30 fails with its code 7. */
static int fail_at_30(int64_t begin, int64_t end, void *acc, void *ctx)
{
    if (begin <= 30 && 30 < end)
        return 7;
    return sum_indexes(begin, end, acc, ctx);
}

/* No partial: fails (code 9) if it is given a chunk outside [0, 1000). */
static int check_bounds(int64_t begin, int64_t end, void *acc, void *ctx)
{
    (void)acc, (void)ctx;
    return begin >= 0 && end <= 1000 && begin < end ? 0 : 9;
}

/* No partial: fails (code 9) unless its chunk is one of the four of 5
 * indexes at the ends of int64_t that the test asks for. */
static int near_the_ends(int64_t begin, int64_t end, void *acc, void *ctx)
{
    (void)acc, (void)ctx;
    bool known = begin == INT64_MIN || begin == INT64_MIN + 5 || begin == INT64_MAX - 10 ||
                 begin == INT64_MAX - 5;
    return known && end - begin == 5 ? 0 : 9;
}

/* The chunk starting at 0 sleeps 30 s (the test gives up on it first). */
static int slow_first(int64_t begin, int64_t end, void *acc, void *ctx)
{
    if (begin == 0)
        sleep(30);
    return sum_indexes(begin, end, acc, ctx);
}

/* Adds the worker's int64 at ctx to the partial, once per chunk. */
static int add_ctx(int64_t begin, int64_t end, void *acc, void *ctx)
{
    (void)begin, (void)end;
    *(int64_t *)acc += *(const int64_t *)ctx;
    return 0;
}

static int late_for(int64_t begin, int64_t end, void *acc, void *ctx)
{
    return sum_indexes(begin, end, acc, ctx);
}

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

static void register_functions(void)
{
    mp_assert_ok(mp_for_register("sum_squares", sum_squares));
    mp_assert_ok(mp_for_register("crash_at_50", crash_at_50));
    mp_assert_ok(mp_for_register("fail_at_30", fail_at_30));
    mp_assert_ok(mp_for_register("check_bounds", check_bounds));
    mp_assert_ok(mp_for_register("near_the_ends", near_the_ends));
    mp_assert_ok(mp_for_register("slow_first", slow_first));
    mp_assert_ok(mp_for_register("add_ctx", add_ctx));
    mp_assert_ok(mp_task_register("square", square));
}

/* ---- helpers -------------------------------------------------------------*/

static void server_up(void)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    register_functions();
}

static mp_pool *make_pool(mp_manager *m, const mp_pool_opts *extra)
{
    mp_pool_opts o = extra ? *extra : (mp_pool_opts){0};
    o.manager = m;
    o.name = "p";
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &o));
    return p;
}

/* cmd (XLEN, ...) of the key <prefix>key. */
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

/* The sum of squares of [1, n]. */
static int64_t squares_to(int64_t n)
{
    return n * (n + 1) * (2 * n + 1) / 6;
}

/* ---- a real server -------------------------------------------------------*/

Test(rfor, sum_of_squares_over_two_workers)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w[2] = {
        mp_test_pool_worker(srv.url, "p", NULL),
        mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = MP_WORKER_INLINE})};
    mp_pool *p = make_pool(m, NULL);
    int64_t sum = -1;
    size_t nerr = 99;
    /* The automatic chunks (a 32nd of the range). */
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_squares,
                                            .begin = 1,
                                            .end = 1000001,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum,
                                            .n_errors = &nerr},
                             60));
    cr_assert_eq(sum, 333333833333500000);
    cr_assert_eq(nerr, 0);
    /* 2,000 chunks of 500: packed entries (7 chunks each), several round
     * trips of XADDs. */
    sum = -1;
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_squares,
                                            .begin = 1,
                                            .end = 1000001,
                                            .chunksize = 500,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum},
                             60));
    cr_assert_eq(sum, squares_to(1000000));
    /* By address (not registered), over a range of negative indexes. */
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_indexes,
                                            .begin = -1000,
                                            .end = 1000,
                                            .chunksize = 7,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum},
                             60));
    cr_assert_eq(sum, -1000);
    /* The ends of int64_t: two chunks of 5 indexes at each. */
    mp_assert_ok(mp_pool_for(
        p,
        &(mp_for_spec){
            .fn = near_the_ends, .begin = INT64_MIN, .end = INT64_MIN + 10, .chunksize = 5},
        60));
    mp_assert_ok(mp_pool_for(
        p,
        &(mp_for_spec){
            .fn = near_the_ends, .begin = INT64_MAX - 10, .end = INT64_MAX, .chunksize = 5},
        60));
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 30));
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", w, 2);
    mp_manager_close(m);
}

Test(rfor, acc_init_an_empty_range_and_no_partial)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    mp_pool *p = make_pool(m, NULL);
    /* Every chunk starts from acc_init, and so does the result: 10 chunks
     * of 10, so 11 times the initial value. */
    int64_t init = 1000, sum = -1;
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_indexes,
                                            .begin = 0,
                                            .end = 100,
                                            .chunksize = 10,
                                            .acc_size = sizeof(sum),
                                            .acc_init = &init,
                                            .reduce = add,
                                            .result = &sum},
                             60));
    cr_assert_eq(sum, 11 * 1000 + 4950);
    /* An empty range: the result is the initial value, nothing is sent. */
    long long before = redis_int(m, "XLEN", "pool:p:tasks");
    size_t nerr = 99;
    sum = -1;
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_indexes,
                                            .begin = 5,
                                            .end = 5,
                                            .acc_size = sizeof(sum),
                                            .acc_init = &init,
                                            .reduce = add,
                                            .result = &sum,
                                            .n_errors = &nerr},
                             0));
    cr_assert(sum == 1000 && nerr == 0);
    sum = -1;
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_indexes,
                                            .begin = 5,
                                            .end = 5,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum},
                             0));
    cr_assert_eq(sum, 0);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), before);
    /* No partial: no reduce nor result needed; the chunks still run (a
     * chunk out of bounds would fail). */
    nerr = 99;
    mp_assert_ok(mp_pool_for(
        p, &(mp_for_spec){.fn = check_bounds, .begin = 0, .end = 1000, .n_errors = &nerr}, 60));
    cr_assert_eq(nerr, 0);
    /* A reduce given anyway runs once per chunk, as locally. */
    reduced = 0;
    mp_assert_ok(mp_pool_for(
        p,
        &(mp_for_spec){
            .fn = check_bounds, .begin = 0, .end = 1000, .chunksize = 100, .reduce = count},
        60));
    cr_assert_eq(reduced, 10);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rfor, chunks_get_the_workers_ctx)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    static int64_t seven = 7;
    pid_t w[2] = {
        mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.ctx = &seven}),
        mp_test_pool_worker(srv.url, "p",
                            &(mp_worker_opts){.ctx = &seven, .executors = MP_WORKER_INLINE})};
    mp_pool *p = make_pool(m, NULL);
    int64_t sum = 0;
    /* 40 chunks of 1 (an entry each): each adds 7, on either worker. */
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = add_ctx,
                                            .begin = 0,
                                            .end = 40,
                                            .chunksize = 1,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum},
                             60));
    cr_assert_eq(sum, 40 * 7);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", w, 2);
    mp_manager_close(m);
}

Test(rfor, a_chunk_that_crashes_or_fails_is_reported_and_left_out)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w[2] = {mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = 2}),
                  mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = 1})};
    mp_pool *p = make_pool(m, NULL);
    mp_task_error errs[4];
    size_t nerr = 0;
    int64_t sum = 0;
    /* Chunks of 10: [50, 60) segfaults in its executor. */
    mp_assert_rc(mp_pool_for(p,
                             &(mp_for_spec){.fn = crash_at_50,
                                            .begin = 0,
                                            .end = 100,
                                            .chunksize = 10,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum,
                                            .errors = errs,
                                            .errors_cap = 4,
                                            .n_errors = &nerr},
                             60),
                 MP_EWORKERLOST);
    cr_assert_eq(nerr, 1);
    cr_assert_eq(errs[0].index, 50);
    cr_assert_eq(errs[0].code, MP_EWORKERLOST);
    cr_assert_eq(errs[0].signal, SIGSEGV);
    cr_assert_gt(errs[0].pid, 0);
    cr_assert_eq(sum, 4950 - (50 + 59) * 10 / 2);
    /* A chunk's own error code: [30, 40) fails, the others are reduced. */
    sum = 0;
    nerr = 0;
    mp_assert_rc(mp_pool_for(p,
                             &(mp_for_spec){.fn = fail_at_30,
                                            .begin = 0,
                                            .end = 100,
                                            .chunksize = 10,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum,
                                            .errors = errs,
                                            .errors_cap = 4,
                                            .n_errors = &nerr},
                             60),
                 MP_ETASKFAILED);
    cr_assert_eq(nerr, 1);
    cr_assert(errs[0].index == 30 && errs[0].code == MP_ETASKFAILED && errs[0].task_code == 7);
    cr_assert_eq(sum, 4950 - (30 + 39) * 10 / 2);
    /* The workers went on. */
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_squares,
                                            .begin = 1,
                                            .end = 11,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum},
                             60));
    cr_assert_eq(sum, 385);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", w, 2);
    mp_manager_close(m);
}

Test(rfor, a_function_the_worker_lacks_is_MP_ENOFUNC)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.registered_only = true});
    /* Registered after the worker started: the worker does not know it. */
    mp_assert_ok(mp_for_register("late_for", late_for));
    mp_pool *p = make_pool(m, NULL);
    int64_t sum = 0;
    mp_task_error errs[8];
    size_t nerr = 0;
    mp_assert_rc(mp_pool_for(p,
                             &(mp_for_spec){.fn = late_for,
                                            .begin = 0,
                                            .end = 40,
                                            .chunksize = 10,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum,
                                            .errors = errs,
                                            .errors_cap = 8,
                                            .n_errors = &nerr},
                             60),
                 MP_ENOFUNC);
    cr_assert_eq(nerr, 4);
    for (size_t i = 0; i < nerr; i++)
        cr_assert_eq(errs[i].code, MP_ENOFUNC);
    cr_assert_eq(sum, 0);
    /* By address, refused by a registered_only worker. */
    mp_assert_rc(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_indexes,
                                            .begin = 0,
                                            .end = 40,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum},
                             60),
                 MP_ENOFUNC);
    /* One name space: a task's name is not a for function's, and back. */
    mp_assert_rc(mp_for_register("square", late_for), MP_EEXIST);
    mp_assert_rc(mp_task_register("sum_squares", square), MP_EEXIST);
    mp_assert_rc(mp_for_register("", late_for), MP_EINVAL);
    mp_assert_rc(mp_for_register("x", NULL), MP_EINVAL);
    mp_assert_ok(mp_for_register("late_for", late_for)); /* again: no-op */
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rfor, a_timeout_without_workers_leaves_the_pool_usable)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m, NULL);
    int64_t sum = 0;
    mp_for_spec s = {.fn = sum_squares,
                     .begin = 1,
                     .end = 11,
                     .chunksize = 2,
                     .acc_size = sizeof(sum),
                     .reduce = add,
                     .result = &sum};
    mp_assert_rc(mp_pool_for(p, &s, 0.3), MP_ETIMEDOUT);
    /* Its chunks were withdrawn: no worker runs them. */
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    sum = -1;
    mp_assert_ok(mp_pool_for(p, &s, 60));
    cr_assert_eq(sum, 385);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rfor, a_timeout_cancels_the_running_chunk)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = 2});
    mp_pool *p = make_pool(m, NULL);
    int64_t sum = 0;
    mp_assert_rc(mp_pool_for(p,
                             &(mp_for_spec){.fn = slow_first,
                                            .begin = 0,
                                            .end = 4,
                                            .chunksize = 1,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum},
                             1.0),
                 MP_ETIMEDOUT);
    /* Whatever arrived before the deadline was reduced; nothing after. */
    int64_t seen = sum;
    cr_assert(seen >= 0 && seen <= 6);
    /* The sleeping chunk's executor is killed at the worker's next
     * heartbeat and replaced: the next for runs at once. */
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_squares,
                                            .begin = 1,
                                            .end = 11,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum},
                             10));
    cr_assert_eq(sum, 385);
    for (int i = 0; i < 1000 && redis_int(m, "XLEN", "pool:p:tasks") > 0; i++)
        usleep(10000);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rfor, bad_arguments_send_nothing)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m, NULL);
    int64_t sum = 77, ctx = 0;
    unsigned char big[MP_POOL_ACC_MAX + 1] = {0};
    const mp_for_spec ok = {.fn = sum_squares,
                            .begin = 1,
                            .end = 11,
                            .acc_size = sizeof(sum),
                            .reduce = add,
                            .result = &sum};
    mp_for_spec bad[9];
    for (int i = 0; i < 9; i++)
        bad[i] = ok;
    bad[0].begin = 12;             /* begin > end */
    bad[1].acc_size = sizeof(big); /* above MP_POOL_ACC_MAX */
    bad[1].result = big;
    bad[2].reduce = NULL;     /* a partial without reduce */
    bad[3].result = NULL;     /* or without a result */
    bad[4].fn = NULL;         /* no function */
    bad[5].ctx = &ctx;        /* a pointer of this machine */
    bad[6].errors_cap = 4;    /* room for errors, no array */
    bad[7].begin = INT64_MIN; /* a span above INT64_MAX */
    bad[7].end = INT64_MAX;
    bad[8].begin = -1, bad[8].end = -2;
    for (int i = 0; i < 9; i++)
        cr_assert_eq(mp_pool_for(p, &bad[i], 1), MP_EINVAL, "case %d", i);
    mp_assert_rc(mp_pool_for(p, NULL, 1), MP_EINVAL);
    mp_assert_rc(mp_pool_for(p, &ok, NAN), MP_EINVAL);
    /* Nothing was sent (the stream does not even exist), nothing changed. */
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    cr_assert_eq(redis_int(m, "EXISTS", "pool:p:tasks"), 0);
    cr_assert_eq(sum, 77);
    /* A closed pool. */
    mp_assert_ok(mp_pool_close(p));
    mp_assert_rc(mp_pool_for(p, &ok, 1), MP_ECLOSED);
    cr_assert_eq(redis_int(m, "EXISTS", "pool:p:tasks"), 0);
    mp_assert_ok(mp_pool_join(p, 1));
    mp_pool_destroy(p);
    mp_manager_close(m);
}

/* ---- progress ------------------------------------------------------------*/

typedef struct seen {
    uint64_t calls, done, total;
    bool backwards;
} seen;

static void on_progress(uint64_t done, uint64_t total, void *user)
{
    seen *s = user;
    if (done < s->done || done > total || (s->calls && total != s->total))
        s->backwards = true;
    s->calls++;
    s->done = done;
    s->total = total;
}

Test(rfor, progress_of_a_map_reaches_the_total)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    seen s = {0};
    mp_pool *p = make_pool(
        m, &(mp_pool_opts){.progress = true, .progress_cb = on_progress, .progress_user = &s});
    enum { N = 3000 };
    static int64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    mp_assert_ok(mp_pool_map(p,
                             &(mp_map_spec){.fn = square,
                                            .in = in,
                                            .n = N,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 10},
                             60));
    cr_assert_eq(out[N - 1], (int64_t)(N - 1) * (N - 1));
    cr_assert_gt(s.calls, 0);
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 30));
    cr_assert(!s.backwards, "done went backwards or total changed");
    cr_assert_eq(s.total, N);
    cr_assert_eq(s.done, N);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

Test(rfor, progress_of_a_for_counts_its_indexes)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    seen s = {0};
    mp_pool *p = make_pool(m, &(mp_pool_opts){.progress_cb = on_progress, .progress_user = &s});
    int64_t sum = 0;
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_squares,
                                            .begin = 1,
                                            .end = 100001,
                                            .chunksize = 100,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum},
                             60));
    cr_assert_eq(sum, squares_to(100000));
    cr_assert_gt(s.calls, 0);
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 30));
    cr_assert(!s.backwards, "done went backwards or total changed");
    cr_assert_eq(s.total, 100000);
    cr_assert_eq(s.done, 100000);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

/* ---- the wire format of parallel-for entries -----------------------------*/

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

Test(rfor, codec_for_entries_are_checked_before_use)
{
    mp__redis_task t, part;
    /* Indexes -3 .. 6, chunks of 4: tasks 7, 8, 9 of 4, 4 and 2 indexes,
     * each starting from the 8-byte partial "abcdefgh". */
    mp_assert_ok(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sum", "lo", "-3", "n", "10", "cap",
                       "8", "in", "abcdefgh", "k", "4"));
    cr_assert(t.is_for && t.lo == -3 && t.n == 10 && t.per == 4 && t.cap == 8 && t.in_len == 8);
    cr_assert_eq(mp__redis_task_count(&t), 3);
    cr_assert_eq(mp__redis_task_items(&t), 1);
    mp__redis_task_part(&t, 2, &part);
    cr_assert(part.id == 9 && part.lo == 5 && part.n == 2 && part.in_len == 8 &&
              memcmp(part.in, "abcdefgh", 8) == 0);
    mp__redis_task_part(&t, 1, &part);
    cr_assert(part.id == 8 && part.lo == 1 && part.n == 4);
    /* Without k: one chunk; no partial (cap 0); the ends of int64_t. */
    mp_assert_ok(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sum", "lo", "-9223372036854775808",
                       "n", "9223372036854775807", "cap", "0", "in", ""));
    cr_assert(t.lo == INT64_MIN && mp__redis_task_count(&t) == 1);
    mp_assert_ok(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sum", "lo", "9223372036854775806",
                       "n", "1", "cap", "0", "in", ""));
    /* An end past INT64_MAX, no index, lo not an int64. */
    const char *bad_lo_n[][2] = {{"9223372036854775807", "1"},
                                 {"9223372036854775806", "2"},
                                 {"-9223372036854775808", "9223372036854775808"},
                                 {"0", "0"},
                                 {"-9223372036854775809", "1"},
                                 {"9223372036854775808", "1"},
                                 {"--1", "1"},
                                 {"-", "1"},
                                 {"", "1"},
                                 {"+1", "1"},
                                 {"1x", "1"}};
    for (size_t i = 0; i < sizeof(bad_lo_n) / sizeof(*bad_lo_n); i++)
        cr_assert_eq(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sum", "lo", bad_lo_n[i][0], "n",
                           bad_lo_n[i][1], "cap", "0", "in", ""),
                     MP_EBADMSG, "lo %s, n %s", bad_lo_n[i][0], bad_lo_n[i][1]);
    /* A partial above MP_POOL_ACC_MAX, an initial value of another size,
     * isz in a for entry, a missing field, a duplicate lo. */
    char acc[MP_POOL_ACC_MAX + 2];
    memset(acc, 'a', sizeof(acc) - 1);
    acc[sizeof(acc) - 1] = '\0';
    mp_assert_rc(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sum", "lo", "0", "n", "1", "cap",
                       "65", "in", acc),
                 MP_EBADMSG);
    acc[MP_POOL_ACC_MAX] = '\0';
    mp_assert_ok(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sum", "lo", "0", "n", "1", "cap",
                       "64", "in", acc));
    mp_assert_rc(parse(&t, 14, "id", "7", "c", "00ff", "f", "n:sum", "lo", "0", "n", "1", "cap",
                       "8", "in", "abc"),
                 MP_EBADMSG);
    mp_assert_rc(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sum", "lo", "0", "n", "1", "isz",
                       "0", "cap", "0", "in", ""),
                 MP_EBADMSG);
    mp_assert_rc(
        parse(&t, 12, "id", "7", "c", "00ff", "f", "n:sum", "lo", "0", "n", "1", "cap", "0"),
        MP_EBADMSG);
    mp_assert_rc(
        parse(&t, 12, "id", "7", "c", "00ff", "f", "n:sum", "lo", "0", "cap", "0", "in", ""),
        MP_EBADMSG);
    mp_assert_rc(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sum", "lo", "0", "lo", "1", "n", "1",
                       "cap", "0", "in", ""),
                 MP_EBADMSG);
    /* Packing: no index per chunk, more per chunk than the entry has,
     * more chunks than an entry packs, ids that wrap. */
    const char *bad_k[] = {"0", "11", "-1", "x", ""};
    for (size_t i = 0; i < sizeof(bad_k) / sizeof(*bad_k); i++)
        cr_assert_eq(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sum", "lo", "0", "n", "10",
                           "cap", "0", "in", "", "k", bad_k[i]),
                     MP_EBADMSG, "k = '%s'", bad_k[i]);
    mp_assert_rc(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sum", "lo", "0", "n", "650", "cap",
                       "0", "in", "", "k", "10"),
                 MP_EBADMSG);
    mp_assert_ok(parse(&t, 16, "id", "7", "c", "00ff", "f", "n:sum", "lo", "0", "n", "640", "cap",
                       "0", "in", "", "k", "10"));
    mp_assert_rc(parse(&t, 16, "id", "18446744073709551614", "c", "00ff", "f", "n:sum", "lo", "0",
                       "n", "4", "cap", "0", "in", "", "k", "1"),
                 MP_EBADMSG);
}

/* XADDs an entry of the given fields to the pool p's stream. */
static void xadd_raw(mp_manager *m, int nf, const char *const *f)
{
    mp__redis *r = mp__manager_redis_conn(m);
    char k[256];
    snprintf(k, sizeof(k), "%spool:p:tasks", mp__redis_prefix(r));
    const char *argv[32] = {"XADD", k, "*"};
    size_t al[32] = {4, strlen(k), 1};
    for (int i = 0; i < nf; i++)
        argv[3 + i] = f[i], al[3 + i] = strlen(f[i]);
    mp_assert_ok(mp__redis_cmd(r, MP__RR_STR, NULL, 3 + nf, argv, al));
}

Test(rfor, malformed_for_entries_go_to_the_dead_letter_stream)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_pool *p = make_pool(m, NULL);
    /* isz in a for entry; an end past INT64_MAX; a partial too large. */
    const char *bad[3][16] = {
        {"id", "1", "c", "00ff", "f", "n:sum_squares", "lo", "0", "n", "2", "isz", "0", "cap", "0",
         "in", ""},
        {"id", "2", "c", "00ff", "f", "n:sum_squares", "lo", "9223372036854775807", "n", "2", "cap",
         "0", "in", ""},
        {"id", "3", "c", "00ff", "f", "n:sum_squares", "lo", "0", "n", "2", "cap", "70", "in", ""}};
    xadd_raw(m, 16, bad[0]);
    xadd_raw(m, 14, bad[1]);
    xadd_raw(m, 14, bad[2]);
    /* Their client is alive (workers drop the tasks of a client without
     * its key, malformed or not). */
    mp__redis *r = mp__manager_redis_conn(m);
    char k[256];
    snprintf(k, sizeof(k), "%spool:p:client:00ff", mp__redis_prefix(r));
    mp_assert_ok(mp__redis_cmd(r, MP__RR_STATUS, NULL, 5,
                               (const char *[]){"SET", k, "1", "PX", "60000"}, NULL));
    pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
    for (int i = 0; i < 3000 && redis_int(m, "XLEN", "pool:p:dead") < 3; i++)
        usleep(10000);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:dead"), 3);
    /* The worker goes on. */
    int64_t sum = 0;
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_squares,
                                            .begin = 1,
                                            .end = 11,
                                            .acc_size = sizeof(sum),
                                            .reduce = add,
                                            .result = &sum},
                             60));
    cr_assert_eq(sum, 385);
    cr_assert_eq(redis_int(m, "XLEN", "pool:p:tasks"), 0);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}
