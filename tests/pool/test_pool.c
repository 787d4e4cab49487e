/* Tests of the process pool: every call and its errors, worker crashes,
 * per-task timeouts, task error codes, maxtasksperchild, no fd leaks.
 * Each test runs in its own Criterion process. The suite also runs under
 * the spawn and forkserver start methods (tests/CMakeLists.txt); what only
 * those methods do is in test_pool_start.c. */
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(pool, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

/* ---- tasks ---------------------------------------------------------------*/

static int square(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in_len, (void)out_cap, (void)ctx;
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x;
    *out_len = sizeof(int64_t);
    return 0;
}

/* Fails with code 100 + x on multiples of 7. */
static int square_or_fail(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                          void *ctx)
{
    int64_t x = *(const int64_t *)in;
    if (x % 7 == 0)
        return (int)(100 + x);
    return square(in, in_len, out, out_cap, out_len, ctx);
}

/* Kills its own worker on the item equal to *ctx. */
static int square_or_die(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                         void *ctx)
{
    if (*(const int64_t *)in == *(const int64_t *)ctx)
        raise(SIGKILL);
    return square(in, in_len, out, out_cap, out_len, ctx);
}

static int sleeper(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                   void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)ctx;
    usleep((useconds_t)(*(const double *)in * 1e6));
    *out_len = 0;
    return 0;
}

static int segfault(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                    void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    raise(SIGSEGV);
    return 0;
}

static int my_pid(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in, (void)in_len, (void)out_cap, (void)ctx;
    *(pid_t *)out = getpid();
    *out_len = sizeof(pid_t);
    return 0;
}

static int echo(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                void *ctx)
{
    (void)ctx;
    if (in_len > out_cap)
        return 1;
    memcpy(out, in, in_len);
    *out_len = in_len;
    return 0;
}

/* ---- creation and misuse -------------------------------------------------*/

Test(pool, create_rejects_bad_options)
{
    mp_pool *p = NULL;
    mp_assert_rc(mp_pool_create(NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.processes = -1}), MP_EINVAL);
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.processes = 5000}), MP_EINVAL);
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.task_timeout = NAN}), MP_EINVAL);
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.task_timeout = -1}), MP_EINVAL);
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.start_method = 42}), MP_EINVAL);
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.threads = true, .task_timeout = 1}),
                 MP_EINVAL);
    cr_assert_null(p);
}

Test(pool, default_size_is_cpu_count)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, NULL));
    cr_assert_eq(mp_pool_pids(p, NULL, 0), mp_cpu_count());
    mp_test_pool_finish(p, 10);
}

Test(pool, misuse_gets_documented_errors)
{
    mp_pool *p = mp_test_pool(1);
    mp_async *a = NULL;
    int64_t x = 3;
    mp_assert_rc(mp_pool_apply_async(p, NULL, NULL, &x, 8, 8, NULL, NULL, NULL, &a), MP_EINVAL);
    mp_assert_rc(mp_pool_apply_async(p, square, NULL, NULL, 8, 8, NULL, NULL, NULL, &a), MP_EINVAL);
    mp_assert_rc(mp_pool_map(p, &(mp_map_spec){.fn = square, .in = &x, .n = 1}, 1), MP_EINVAL);
    mp_assert_rc(mp_pool_map(p, NULL, 1), MP_EINVAL);
    mp_assert_rc(mp_pool_for(p, &(mp_for_spec){.fn = NULL}, 1), MP_EINVAL);
    mp_assert_rc(mp_pool_join(p, 1), MP_EBUSY); /* join before close */
    mp_assert_ok(mp_pool_close(p));
    mp_assert_rc(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a), MP_ECLOSED);
    mp_assert_rc(mp_pool_map(p, &(mp_map_spec){.fn = square, .in = &x, .n = 1, .in_size = 8}, 1),
                 MP_ECLOSED);
    cr_assert_null(a);
    mp_assert_ok(mp_pool_join(p, 10));
    mp_assert_ok(mp_pool_join(p, 10)); /* again: at once */
    mp_pool_destroy(p);
    mp_pool_destroy(NULL);
    mp_async_destroy(NULL);
    mp_imap_destroy(NULL);
}

/* ---- apply ---------------------------------------------------------------*/

Test(pool, apply_returns_the_result)
{
    mp_pool *p = mp_test_pool(2);
    int64_t x = 12, y = 0;
    size_t len = 0;
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, &len, 5));
    cr_assert_eq(y, 144);
    cr_assert_eq(len, 8);
    /* Large input and output go through the heap instead of the slot. */
    char big[5000], back[5000];
    memset(big, 'z', sizeof big);
    mp_assert_ok(mp_pool_apply(p, echo, NULL, big, sizeof big, back, sizeof back, &len, 5));
    cr_assert_eq(len, sizeof big);
    cr_assert_eq(memcmp(big, back, sizeof big), 0);
    mp_test_pool_finish(p, 10);
}

Test(pool, apply_async_get_times_out_and_the_task_keeps_running)
{
    mp_pool *p = mp_test_pool(1);
    mp_async *a = NULL;
    double secs = 0.5;
    mp_assert_ok(
        mp_pool_apply_async(p, sleeper, NULL, &secs, sizeof secs, 0, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0.05), MP_ETIMEDOUT);
    cr_assert(!mp_async_ready(a));
    mp_assert_rc(mp_async_successful(a), MP_EBUSY);
    mp_assert_rc(mp_async_wait(a, 0), MP_ETIMEDOUT);
    mp_assert_ok(mp_async_wait(a, 10));
    cr_assert(mp_async_ready(a));
    cr_assert_eq(mp_async_successful(a), 0);
    mp_assert_ok(mp_async_get(a, NULL, 0, NULL, 0));
    mp_async_destroy(a);
    mp_test_pool_finish(p, 10);
}

Test(pool, task_error_code_fails_only_that_task)
{
    mp_pool *p = mp_test_pool(2);
    mp_async *a = NULL;
    mp_task_error e;
    int64_t x = 14, y;
    mp_assert_ok(mp_pool_apply_async(p, square_or_fail, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, &y, 8, NULL, 10), MP_ETASKFAILED);
    cr_assert_eq(mp_async_successful(a), 1);
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.code, MP_ETASKFAILED);
    cr_assert_eq(e.task_code, 114);
    mp_assert_rc(mp_async_error(a, 1, &e), MP_ERANGE);
    mp_async_destroy(a);
    x = 5;
    mp_assert_ok(mp_pool_apply(p, square_or_fail, NULL, &x, 8, &y, 8, NULL, 10));
    cr_assert_eq(y, 25);
    mp_test_pool_finish(p, 10);
}

Test(pool, result_larger_than_the_buffer_is_emsgsize)
{
    mp_pool *p = mp_test_pool(1);
    char in[32] = "0123456789", out[4];
    mp_assert_rc(mp_pool_apply(p, echo, NULL, in, sizeof in, out, sizeof out, NULL, 10),
                 MP_ETASKFAILED); /* the task itself refuses: in_len > out_cap */
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_apply_async(p, echo, NULL, in, 8, 8, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, out, sizeof out, NULL, 10), MP_EMSGSIZE);
    mp_async_destroy(a);
    mp_test_pool_finish(p, 10);
}

static int ok_calls, err_calls;

static void on_ok(mp_async *a, void *user)
{
    (void)a;
    cr_assert_eq(*(int *)user, 7);
    ok_calls++;
}

static void on_err(mp_async *a, void *user)
{
    (void)a, (void)user;
    err_calls++;
}

Test(pool, callbacks_run_in_the_caller_during_join)
{
    mp_pool *p = mp_test_pool(2);
    mp_async *a[4];
    int user = 7;
    for (int64_t i = 0; i < 4; i++) {
        int64_t x = i == 3 ? 7 : i + 1;
        mp_assert_ok(
            mp_pool_apply_async(p, square_or_fail, NULL, &x, 8, 8, on_ok, on_err, &user, &a[i]));
    }
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 10));
    cr_assert_eq(ok_calls, 3);
    cr_assert_eq(err_calls, 1);
    for (int i = 0; i < 4; i++)
        mp_async_destroy(a[i]);
    mp_pool_destroy(p);
}

/* ---- map, starmap, imap, for ---------------------------------------------*/

static void check_squares(mp_pool *p, size_t n, size_t chunksize)
{
    int64_t *in = malloc(n * 8 + 1), *out = malloc(n * 8 + 1);
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)i, out[i] = -1;
    mp_assert_ok(mp_pool_map(p,
                             &(mp_map_spec){.fn = square,
                                            .in = in,
                                            .n = n,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = chunksize},
                             10));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(out[i], (int64_t)(i * i), "item %zu", i);
    free(in);
    free(out);
}

Test(pool, map_with_every_chunk_size)
{
    mp_pool *p = mp_test_pool(3);
    check_squares(p, 0, 0);
    check_squares(p, 1, 0);
    check_squares(p, 1000, 0);
    check_squares(p, 1000, 1);
    check_squares(p, 1000, 7);
    check_squares(p, 5000, 5000);
    mp_test_pool_finish(p, 10);
}

Test(pool, map_over_shared_heap_arrays_in_place)
{
    mp_pool *p = mp_test_pool(2);
    int64_t *in = mp_alloc(100 * 8), *out = mp_alloc(100 * 8);
    cr_assert(in && out);
    for (int i = 0; i < 100; i++)
        in[i] = i;
    mp_assert_ok(mp_pool_map(
        p,
        &(mp_map_spec){.fn = square, .in = in, .n = 100, .in_size = 8, .out = out, .out_size = 8},
        10));
    for (int i = 0; i < 100; i++)
        cr_assert_eq(out[i], i * i);
    mp_test_pool_finish(p, 10);
    mp_free(in);
    mp_free(out);
}

Test(pool, map_reports_each_failed_item_and_completes_the_others)
{
    mp_pool *p = mp_test_pool(2);
    int64_t in[50], out[50];
    for (int i = 0; i < 50; i++)
        in[i] = i, out[i] = -1;
    mp_task_error errs[10];
    size_t nerr = 0;
    int rc = mp_pool_map(p,
                         &(mp_map_spec){.fn = square_or_fail,
                                        .in = in,
                                        .n = 50,
                                        .in_size = 8,
                                        .out = out,
                                        .out_size = 8,
                                        .chunksize = 6,
                                        .errors = errs,
                                        .errors_cap = 10,
                                        .n_errors = &nerr},
                         10);
    mp_assert_rc(rc, MP_ETASKFAILED);
    cr_assert_eq(nerr, 8); /* 0, 7, 14, ..., 49 */
    bool seen[50] = {0};
    for (size_t k = 0; k < nerr; k++) {
        cr_assert_eq(errs[k].code, MP_ETASKFAILED);
        cr_assert_eq(errs[k].index % 7, 0);
        cr_assert_eq(errs[k].task_code, 100 + (int)errs[k].index);
        seen[errs[k].index] = true;
    }
    for (int i = 0; i < 50; i++)
        if (!seen[i])
            cr_assert_eq(out[i], i * i, "item %d", i);
    mp_test_pool_finish(p, 10);
}

typedef struct pair {
    int32_t a, b;
} pair;

static int mul(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len, void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len, (void)ctx;
    const pair *pr = in;
    *(int64_t *)out = (int64_t)pr->a * pr->b;
    return 0;
}

Test(pool, starmap_over_argument_structs)
{
    mp_pool *p = mp_test_pool(2);
    pair args[20];
    int64_t out[20];
    for (int i = 0; i < 20; i++)
        args[i] = (pair){i, i + 1};
    mp_assert_ok(mp_pool_starmap(
        p,
        &(mp_map_spec){
            .fn = mul, .in = args, .n = 20, .in_size = sizeof(pair), .out = out, .out_size = 8},
        10));
    for (int i = 0; i < 20; i++)
        cr_assert_eq(out[i], i * (i + 1));
    mp_test_pool_finish(p, 10);
}

Test(pool, map_async_with_callback)
{
    mp_pool *p = mp_test_pool(2);
    int64_t in[30], out[30];
    int user = 7;
    for (int i = 0; i < 30; i++)
        in[i] = i;
    mp_async *a = NULL;
    ok_calls = 0;
    mp_assert_ok(mp_pool_map_async(
        p, &(mp_map_spec){.fn = square, .in = in, .n = 30, .in_size = 8, .out = out, .out_size = 8},
        on_ok, on_err, &user, &a));
    mp_assert_ok(mp_async_get(a, NULL, 0, NULL, 10));
    cr_assert_eq(ok_calls, 1);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(out[i], i * i);
    mp_async_destroy(a);
    mp_test_pool_finish(p, 10);
}

static void imap_all(mp_pool *p, bool ordered)
{
    int64_t in[100];
    for (int i = 0; i < 100; i++)
        in[i] = i;
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap(
        p,
        &(mp_map_spec){
            .fn = square_or_fail, .in = in, .n = 100, .in_size = 8, .out_size = 8, .chunksize = 3},
        ordered, &it));
    bool seen[100] = {0};
    size_t count = 0, fails = 0, idx, last = 0;
    int64_t v;
    mp_task_error e;
    int rc;
    while ((rc = mp_imap_next(it, &v, &idx, &e, 10)) != MP_EEOF) {
        cr_assert(idx < 100 && !seen[idx]);
        if (ordered)
            cr_assert(count == 0 || idx == last + 1);
        seen[idx] = true;
        last = idx;
        count++;
        if (idx % 7 == 0) {
            mp_assert_rc(rc, MP_ETASKFAILED);
            cr_assert_eq(e.index, idx);
            fails++;
        } else {
            mp_assert_ok(rc);
            cr_assert_eq(v, (int64_t)(idx * idx));
        }
    }
    cr_assert_eq(count, 100);
    cr_assert_eq(fails, 15);
    mp_assert_rc(mp_imap_next(it, &v, &idx, &e, 0), MP_EEOF);
    mp_imap_destroy(it);
}

Test(pool, imap_in_order_and_unordered)
{
    mp_pool *p = mp_test_pool(3);
    imap_all(p, true);
    imap_all(p, false);
    mp_test_pool_finish(p, 10);
}

__extension__ typedef unsigned __int128 u128;

static int sum_sq(int64_t begin, int64_t end, void *acc, void *ctx)
{
    (void)ctx;
    u128 s = *(u128 *)acc;
    for (int64_t x = begin; x < end; x++)
        s = s + (uint64_t)(x * x);
    *(u128 *)acc = s;
    return begin <= 500 && 500 < end && ctx ? 9 : 0;
}

static void add128(void *total, const void *partial, void *ctx)
{
    (void)ctx;
    *(u128 *)total = *(u128 *)total + *(const u128 *)partial;
}

Test(pool, parallel_for_reduces_the_chunks)
{
    mp_pool *p = mp_test_pool(2);
    u128 sum = 0;
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_sq,
                                            .begin = 1,
                                            .end = 1000001,
                                            .acc_size = sizeof(u128),
                                            .reduce = add128,
                                            .result = &sum},
                             10));
    cr_assert(sum == (u128)333333833333500000ULL);
    /* A failing chunk is left out and reported. */
    mp_task_error e;
    size_t nerr = 0;
    static const int flag = 1; /* static data: every start method can pass it */
    mp_assert_rc(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_sq,
                                            .ctx = (void *)&flag,
                                            .begin = 0,
                                            .end = 1000,
                                            .chunksize = 100,
                                            .acc_size = sizeof(u128),
                                            .reduce = add128,
                                            .result = &sum,
                                            .errors = &e,
                                            .errors_cap = 1,
                                            .n_errors = &nerr},
                             10),
                 MP_ETASKFAILED);
    cr_assert_eq(nerr, 1);
    cr_assert_eq(e.index, 500);
    cr_assert_eq(e.task_code, 9);
    mp_assert_rc(mp_pool_for(p, &(mp_for_spec){.fn = sum_sq, .begin = 5, .end = 1}, 1), MP_EINVAL);
    mp_test_pool_finish(p, 10);
}

/* ---- reliability ---------------------------------------------------------*/

Test(pool, killed_worker_fails_its_item_only_and_is_replaced)
{
    mp_pool *p = mp_test_pool(2);
    pid_t before[2], after[2];
    cr_assert_eq(mp_pool_pids(p, before, 2), 2);
    static const int64_t victim = 123; /* static data: every start method can pass it */
    int64_t in[200], out[200];
    for (int i = 0; i < 200; i++)
        in[i] = i;
    mp_task_error e;
    size_t nerr = 0;
    mp_assert_rc(mp_pool_map(p,
                             &(mp_map_spec){.fn = square_or_die,
                                            .ctx = (void *)&victim,
                                            .in = in,
                                            .n = 200,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 10,
                                            .errors = &e,
                                            .errors_cap = 1,
                                            .n_errors = &nerr},
                             10),
                 MP_EWORKERLOST);
    cr_assert_eq(nerr, 1);
    cr_assert_eq(e.index, 123);
    cr_assert_eq(e.code, MP_EWORKERLOST);
    cr_assert_eq(e.signal, SIGKILL);
    cr_assert(e.pid == before[0] || e.pid == before[1]);
    for (int i = 0; i < 200; i++)
        if (i != 123)
            cr_assert_eq(out[i], i * i, "item %d", i);
    cr_assert_eq(mp_pool_pids(p, after, 2), 2);
    cr_assert(after[0] != e.pid && after[1] != e.pid);
    mp_test_pool_finish(p, 10);
}

Test(pool, segfaulting_task_is_worker_lost)
{
    mp_pool *p = mp_test_pool(1);
    mp_async *a = NULL;
    mp_task_error e;
    mp_assert_ok(mp_pool_apply_async(p, segfault, NULL, NULL, 0, 0, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 10), MP_EWORKERLOST);
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_gt(e.pid, 0);
    mp_async_destroy(a);
    int64_t x = 9, y = 0;
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 10));
    cr_assert_eq(y, 81);
    mp_test_pool_finish(p, 10);
}

Test(pool, per_task_timeout_kills_and_replaces_the_worker)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 1, .task_timeout = 0.2}));
    mp_async *a = NULL;
    mp_task_error e;
    double secs = 20;
    mp_assert_ok(
        mp_pool_apply_async(p, sleeper, NULL, &secs, sizeof secs, 0, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 10), MP_ETASKFAILED);
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.task_code, MP_ETIMEDOUT);
    cr_assert_eq(e.signal, SIGKILL);
    mp_async_destroy(a);
    int64_t x = 4, y = 0;
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 10));
    cr_assert_eq(y, 16);
    mp_test_pool_finish(p, 10);
}

/* Counts in the shared heap: every start method passes heap pointers as
 * they are. */
static void count_init(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

Test(pool, maxtasksperchild_replaces_workers_and_reruns_the_initializer)
{
    _Atomic int *inits = mp_calloc(1, sizeof *inits);
    cr_assert(inits);
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 1,
                                                    .maxtasksperchild = 2,
                                                    .initializer = count_init,
                                                    .initarg = (void *)inits}));
    pid_t pids[6];
    for (int i = 0; i < 6; i++)
        mp_assert_ok(mp_pool_apply(p, my_pid, NULL, NULL, 0, &pids[i], sizeof(pid_t), NULL, 10));
    for (int i = 0; i < 6; i += 2) {
        cr_assert_eq(pids[i], pids[i + 1]);
        if (i > 0)
            cr_assert_neq(pids[i], pids[i - 1]);
    }
    mp_test_pool_finish(p, 10);
    cr_assert_geq(atomic_load(inits), 3);
    mp_free((void *)inits);
}

Test(pool, terminate_is_bounded_and_fails_unfinished_tasks)
{
    mp_pool *p = mp_test_pool(2);
    mp_async *a[4];
    double secs = 30;
    for (int i = 0; i < 4; i++)
        mp_assert_ok(
            mp_pool_apply_async(p, sleeper, NULL, &secs, sizeof secs, 0, NULL, NULL, NULL, &a[i]));
    double t0 = mp_test_now();
    mp_assert_ok(mp_pool_terminate(p));
    cr_assert_lt(mp_test_now() - t0, 10);
    for (int i = 0; i < 4; i++) {
        mp_assert_rc(mp_async_get(a[i], NULL, 0, NULL, 1), MP_ECLOSED);
        mp_async_destroy(a[i]);
    }
    mp_assert_ok(mp_pool_join(p, 1));
    mp_pool_destroy(p);
}

Test(pool, join_times_out_while_tasks_run)
{
    mp_pool *p = mp_test_pool(1);
    mp_async *a = NULL;
    double secs = 0.6;
    mp_assert_ok(
        mp_pool_apply_async(p, sleeper, NULL, &secs, sizeof secs, 0, NULL, NULL, NULL, &a));
    mp_async_destroy(a); /* dropped: the task still runs */
    mp_assert_ok(mp_pool_close(p));
    mp_assert_rc(mp_pool_join(p, 0.05), MP_ETIMEDOUT);
    mp_assert_ok(mp_pool_join(p, 10));
    mp_pool_destroy(p);
}

Test(pool, destroy_running_pool_leaves_no_worker)
{
    mp_pool *p = mp_test_pool(2);
    pid_t pids[2];
    cr_assert_eq(mp_pool_pids(p, pids, 2), 2);
    mp_async *a = NULL;
    double secs = 30;
    mp_assert_ok(
        mp_pool_apply_async(p, sleeper, NULL, &secs, sizeof secs, 0, NULL, NULL, NULL, &a));
    mp_pool_destroy(p);
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0), MP_ECLOSED);
    mp_async_destroy(a);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(mp_test_pid_state(pids[i]), 0);
}

static uint64_t last_done, last_total;

static void on_progress(uint64_t done, uint64_t total, void *user)
{
    (void)user;
    cr_assert_leq(done, total);
    last_done = done;
    last_total = total;
}

Test(pool, progress_callback_reaches_the_total)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(
        &p, &(mp_pool_opts){.processes = 2, .progress = true, .progress_cb = on_progress}));
    check_squares(p, 3000, 10);
    mp_test_pool_finish(p, 10);
    cr_assert_eq(last_total, 3000);
    cr_assert_eq(last_done, 3000);
}

Test(pool, other_process_cannot_use_the_pool)
{
    mp_pool *p = mp_test_pool(1);
    pid_t c = fork();
    if (c == 0) {
        int64_t x = 2, y;
        _exit(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 1) == MP_EPERM ? 0 : 1);
    }
    int st;
    cr_assert_eq(waitpid(c, &st, 0), c);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    mp_test_pool_finish(p, 10);
}

/* ---- threads as workers --------------------------------------------------*/

static int add_ctx(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                   void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len;
    *(int64_t *)out = *(const int64_t *)in + *(const int64_t *)ctx;
    return 0;
}

static _Atomic int thread_inits;

static void count_thread_init(void *arg)
{
    (void)arg;
    atomic_fetch_add(&thread_inits, 1);
}

Test(pool, thread_pool_has_the_same_api)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 3,
                                                    .threads = true,
                                                    .maxtasksperchild = 10,
                                                    .initializer = count_thread_init}));
    pid_t pids[3];
    cr_assert_eq(mp_pool_pids(p, pids, 3), 3);
    cr_assert_eq(pids[0], getpid());
    check_squares(p, 1000, 0);
    check_squares(p, 1000, 1);
    /* Threads share the caller's memory: a ctx on the stack made after the
     * pool works. */
    int64_t delta = 1000, in[50], out[50];
    for (int i = 0; i < 50; i++)
        in[i] = i;
    mp_assert_ok(mp_pool_map(p,
                             &(mp_map_spec){.fn = add_ctx,
                                            .ctx = &delta,
                                            .in = in,
                                            .n = 50,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8},
                             10));
    for (int i = 0; i < 50; i++)
        cr_assert_eq(out[i], i + 1000);
    imap_all(p, true);
    imap_all(p, false);
    u128 sum = 0;
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_sq,
                                            .begin = 1,
                                            .end = 1001,
                                            .acc_size = sizeof(u128),
                                            .reduce = add128,
                                            .result = &sum},
                             10));
    cr_assert(sum == (u128)333833500u);
    int64_t x = 7, y = 0;
    mp_assert_rc(mp_pool_apply(p, square_or_fail, NULL, &x, 8, &y, 8, NULL, 10), MP_ETASKFAILED);
    mp_test_pool_finish(p, 10);
    /* maxtasksperchild: retired threads were replaced, each initialised. */
    cr_assert_gt(atomic_load(&thread_inits), 3);
}

Test(pool, thread_pool_terminate_cancels_queued_tasks)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 1, .threads = true}));
    mp_async *a[3];
    double secs = 0.2;
    for (int i = 0; i < 3; i++)
        mp_assert_ok(
            mp_pool_apply_async(p, sleeper, NULL, &secs, sizeof secs, 0, NULL, NULL, NULL, &a[i]));
    mp_assert_rc(mp_async_wait(a[0], 0.05), MP_ETIMEDOUT); /* the first one runs */
    mp_assert_ok(mp_pool_terminate(p));
    mp_assert_rc(mp_async_get(a[2], NULL, 0, NULL, 1), MP_ECLOSED);
    for (int i = 0; i < 3; i++)
        mp_async_destroy(a[i]);
    mp_pool_destroy(p);
}

Test(pool, killed_parent_leaves_no_worker)
{
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    pid_t c = fork();
    if (c == 0) {
        mp_pool *p = NULL;
        pid_t pids[3];
        if (mp_pool_create(&p, &(mp_pool_opts){.processes = 3}) < 0 ||
            mp_pool_pids(p, pids, 3) != 3)
            _exit(1);
        if (write(fds[1], pids, sizeof pids) != (ssize_t)sizeof pids)
            _exit(1);
        pause(); /* killed here, with its pool running */
        _exit(0);
    }
    close(fds[1]);
    pid_t pids[3];
    cr_assert_eq(read(fds[0], pids, sizeof pids), (ssize_t)sizeof pids);
    close(fds[0]);
    kill(c, SIGKILL);
    cr_assert_eq(waitpid(c, NULL, 0), c);
    for (int i = 0; i < 3; i++) {
        double t0 = mp_test_now();
        int st;
        while ((st = mp_test_pid_state(pids[i])) != 0 && st != 'Z' && mp_test_now() - t0 < 10)
            usleep(1000);
        cr_assert(st == 0 || st == 'Z', "worker %d survived its parent", (int)pids[i]);
    }
}

/* ---- broken pools ----------------------------------------------------------*/

/* Initializers that kill their worker; arg counts the workers started (in
 * the shared heap: every start method passes heap pointers as they are). */
static void init_then_sigkill(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    raise(SIGKILL);
}

static void init_then_segfault(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    raise(SIGSEGV);
}

static void init_then_exit3(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    _exit(3);
}

/* A pool of n workers whose initializer is init, counting into *starts. */
static mp_pool *dying_pool(int n, mp_init_fn init, _Atomic int **starts)
{
    *starts = mp_calloc(1, sizeof **starts);
    cr_assert(*starts);
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(
        &p, &(mp_pool_opts){.processes = n, .initializer = init, .initarg = (void *)*starts}));
    return p;
}

/* What every broken pool does: later submits fail at once, close, join and
 * terminate work, and no worker is left. */
static void check_broken_pool(mp_pool *p, const mp_pool_broken_info *info)
{
    int64_t x = 2, y = 0;
    mp_async *a = NULL;
    mp_assert_rc(mp_pool_apply_async(p, square, NULL, &x, 8, 8, NULL, NULL, NULL, &a),
                 MP_EBROKENPOOL);
    cr_assert_null(a);
    mp_assert_rc(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, MP_FOREVER), MP_EBROKENPOOL);
    mp_assert_rc(
        mp_pool_map(p, &(mp_map_spec){.fn = square, .in = &x, .n = 1, .in_size = 8}, MP_FOREVER),
        MP_EBROKENPOOL);
    cr_assert_eq(mp_pool_pids(p, NULL, 0), 0);
    mp_pool_broken_info again;
    cr_assert_eq(mp_pool_broken_reason(p, &again), 1);
    cr_assert_eq(memcmp(&again, info, sizeof again), 0);
    cr_assert_eq(mp_pool_poll(p), 0);
    mp_assert_ok(mp_pool_terminate(p));
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 10));
    mp_pool_destroy(p);
}

Test(pool, initializer_killing_every_worker_breaks_the_pool)
{
    _Atomic int *starts;
    mp_pool *p = dying_pool(2, init_then_sigkill, &starts);
    int64_t in[20], out[20];
    for (int i = 0; i < 20; i++)
        in[i] = i;
    mp_task_error e = {0};
    size_t nerr = 0;
    /* Hangs (and fails by the timeout) if the pool respawns for ever. */
    mp_assert_rc(mp_pool_map(p,
                             &(mp_map_spec){.fn = square,
                                            .in = in,
                                            .n = 20,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .errors = &e,
                                            .errors_cap = 1,
                                            .n_errors = &nerr},
                             MP_FOREVER),
                 MP_EBROKENPOOL);
    mp_pool_broken_info info;
    cr_assert_eq(mp_pool_broken_reason(p, &info), 1);
    cr_assert_gt(info.pid, 0);
    cr_assert_eq(info.signal, SIGKILL);
    cr_assert_eq(info.exitcode, 0);
    cr_assert_eq(info.deaths, 2 * 2 + 2); /* the documented bound */
    cr_assert_eq(nerr, 1);
    cr_assert_eq(e.code, MP_EBROKENPOOL);
    cr_assert_eq(e.pid, info.pid);
    cr_assert_eq(e.signal, SIGKILL);
    /* The first two, then one replacement per death but the last. */
    cr_assert_leq(atomic_load(starts), 2 + 2 * 2 + 2);
    check_broken_pool(p, &info);
    mp_free((void *)starts);
}

Test(pool, initializer_segfaulting_breaks_the_pool)
{
    _Atomic int *starts;
    mp_pool *p = dying_pool(1, init_then_segfault, &starts);
    int64_t x = 3, y = 0;
    mp_assert_rc(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, MP_FOREVER), MP_EBROKENPOOL);
    mp_pool_broken_info info;
    cr_assert_eq(mp_pool_broken_reason(p, &info), 1);
    cr_assert_gt(info.pid, 0);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    cr_assert(info.signal != 0 || info.exitcode != 0); /* a sanitizer reports it its own way */
#else
    cr_assert_eq(info.signal, SIGSEGV);
#endif
    cr_assert_eq(info.deaths, 2 * 1 + 2);
    cr_assert_leq(atomic_load(starts), 1 + 2 * 1 + 2);
    check_broken_pool(p, &info);
    mp_free((void *)starts);
}

static int broken_ok, broken_err;

static void on_broken_ok(mp_async *a, void *user)
{
    (void)a, (void)user;
    broken_ok++;
}

static void on_broken_err(mp_async *a, void *user)
{
    (void)user;
    mp_task_error e;
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.code, MP_EBROKENPOOL);
    broken_err++;
}

Test(pool, initializer_exiting_breaks_the_pool_with_its_exit_code)
{
    _Atomic int *starts;
    mp_pool *p = dying_pool(2, init_then_exit3, &starts);
    int64_t x = 3, in[10] = {0};
    mp_async *a[3] = {NULL};
    for (int i = 0; i < 3; i++)
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &x, 8, 8, on_broken_ok, on_broken_err,
                                         NULL, &a[i]));
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap(
        p, &(mp_map_spec){.fn = square, .in = in, .n = 10, .in_size = 8, .out_size = 8}, true,
        &it));
    int64_t item;
    mp_assert_rc(mp_imap_next(it, &item, NULL, NULL, MP_FOREVER), MP_EBROKENPOOL);
    mp_assert_rc(mp_imap_next(it, &item, NULL, NULL, 0), MP_EBROKENPOOL);
    mp_imap_destroy(it);
    mp_pool_broken_info info;
    cr_assert_eq(mp_pool_broken_reason(p, &info), 1);
    cr_assert_eq(info.signal, 0);
    cr_assert_eq(info.exitcode, 3);
    for (int i = 0; i < 3; i++) {
        mp_task_error e;
        mp_assert_rc(mp_async_get(a[i], NULL, 0, NULL, 0), MP_EBROKENPOOL);
        cr_assert_eq(mp_async_successful(a[i]), 1);
        mp_assert_ok(mp_async_error(a[i], 0, &e));
        cr_assert_eq(e.code, MP_EBROKENPOOL);
        cr_assert_eq(e.task_code, 3);
        cr_assert_eq(e.pid, info.pid);
        mp_async_destroy(a[i]);
    }
    cr_assert_eq(broken_ok, 0);
    cr_assert_eq(broken_err, 3);
    check_broken_pool(p, &info);
    mp_free((void *)starts);
}

Test(pool, tasks_killing_their_workers_do_not_break_the_pool)
{
    /* One worker, an initializer, and ten tasks in a row that each kill
     * the worker running them: more deaths in a row than the bound, but
     * each worker got past its initializer. */
    _Atomic int *inits = mp_calloc(1, sizeof *inits);
    cr_assert(inits);
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(
        &p, &(mp_pool_opts){.processes = 1, .initializer = count_init, .initarg = (void *)inits}));
    int64_t in[30], out[30];
    mp_task_error errs[30];
    size_t nerr = 0;
    for (int i = 0; i < 30; i++)
        in[i] = i < 10 ? 1000 : i;      /* 1000: the victim */
    static const int64_t victim = 1000; /* static data: every start method can pass it */
    mp_assert_rc(mp_pool_map(p,
                             &(mp_map_spec){.fn = square_or_die,
                                            .ctx = (void *)&victim,
                                            .in = in,
                                            .n = 30,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 1,
                                            .errors = errs,
                                            .errors_cap = 30,
                                            .n_errors = &nerr},
                             30),
                 MP_EWORKERLOST);
    cr_assert_eq(nerr, 10);
    for (size_t k = 0; k < nerr; k++)
        cr_assert_eq(errs[k].code, MP_EWORKERLOST);
    for (int i = 10; i < 30; i++)
        cr_assert_eq(out[i], i * i, "item %d", i);
    mp_pool_broken_info info;
    cr_assert_eq(mp_pool_broken_reason(p, &info), 0);
    cr_assert_eq(info.pid, 0);
    int64_t x = 6, y = 0;
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 10));
    cr_assert_eq(y, 36);
    mp_assert_rc(mp_pool_broken_reason(NULL, &info), MP_EINVAL);
    mp_assert_rc(mp_pool_broken_reason(p, NULL), MP_EINVAL);
    mp_test_pool_finish(p, 10);
    cr_assert_geq(atomic_load(inits), 11);
    mp_free((void *)inits);
}

/* ---- results that do not fit ---------------------------------------------*/

/* Returns 0 but claims one byte more than it was given. */
static int claim_too_much(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                          void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)ctx;
    *out_len = out_cap + 1;
    return 0;
}

Test(pool, result_larger_than_out_cap_fails_the_task)
{
    mp_pool *p = mp_test_pool(1);
    mp_async *a = NULL;
    char buf[64];
    int user = 7;
    mp_assert_ok(
        mp_pool_apply_async(p, claim_too_much, NULL, NULL, 0, 8, on_ok, on_err, &user, &a));
    mp_assert_rc(mp_async_get(a, buf, sizeof buf, NULL, 10), MP_EMSGSIZE);
    cr_assert_eq(mp_async_successful(a), 1);
    mp_task_error e;
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.code, MP_EMSGSIZE);
    mp_assert_rc(mp_async_error(a, 1, &e), MP_ERANGE);
    cr_assert_eq(ok_calls, 0);
    cr_assert_eq(err_calls, 1);
    mp_async_destroy(a);
    mp_assert_rc(mp_pool_apply(p, claim_too_much, NULL, NULL, 0, buf, 100, NULL, 10), MP_EMSGSIZE);
    mp_test_pool_finish(p, 10);
    cr_assert_eq(ok_calls, 0);
    cr_assert_eq(err_calls, 1);
}

Test(pool, map_item_claiming_more_than_out_size_fails_with_emsgsize)
{
    mp_pool *p = mp_test_pool(2);
    int64_t in[8] = {0}, out[8];
    mp_task_error errs[8];
    size_t nerr = 0;
    mp_assert_rc(mp_pool_map(p,
                             &(mp_map_spec){.fn = claim_too_much,
                                            .in = in,
                                            .n = 8,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 3,
                                            .errors = errs,
                                            .errors_cap = 8,
                                            .n_errors = &nerr},
                             10),
                 MP_EMSGSIZE);
    cr_assert_eq(nerr, 8);
    for (size_t k = 0; k < nerr; k++)
        cr_assert_eq(errs[k].code, MP_EMSGSIZE);
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap(
        p, &(mp_map_spec){.fn = claim_too_much, .in = in, .n = 8, .in_size = 8, .out_size = 8},
        false, &it));
    int fails = 0;
    for (;;) {
        mp_task_error e;
        int rc = mp_imap_next(it, NULL, NULL, &e, 10);
        if (rc == MP_EEOF)
            break;
        mp_assert_rc(rc, MP_EMSGSIZE);
        cr_assert_eq(e.code, MP_EMSGSIZE);
        fails++;
    }
    cr_assert_eq(fails, 8);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 10);
}

/* ---- parallel-for at the limits of int64_t --------------------------------*/

/* Adds the chunk's length; fails (1) if the chunk is empty or reversed. */
static int span_of(int64_t begin, int64_t end, void *acc, void *ctx)
{
    (void)ctx;
    if (end <= begin)
        return 1;
    *(uint64_t *)acc += (uint64_t)end - (uint64_t)begin;
    return 0;
}

static void add_u64(void *total, const void *partial, void *ctx)
{
    (void)ctx;
    *(uint64_t *)total += *(const uint64_t *)partial;
}

static int span_for(mp_pool *p, int64_t begin, int64_t end, size_t chunksize, uint64_t *sum)
{
    *sum = 0;
    return mp_pool_for(p,
                       &(mp_for_spec){.fn = span_of,
                                      .begin = begin,
                                      .end = end,
                                      .chunksize = chunksize,
                                      .acc_size = sizeof *sum,
                                      .reduce = add_u64,
                                      .result = sum},
                       30);
}

Test(pool, parallel_for_span_that_does_not_fit_is_einval)
{
    mp_pool *p = mp_test_pool(2);
    uint64_t sum = 7;
    mp_assert_rc(span_for(p, -2, INT64_MAX, 0, &sum), MP_EINVAL);
    mp_assert_rc(span_for(p, INT64_MIN, INT64_MAX, 0, &sum), MP_EINVAL);
    mp_assert_rc(span_for(p, INT64_MIN, 0, 0, &sum), MP_EINVAL);
    mp_assert_rc(span_for(p, -1, INT64_MAX, 1000, &sum), MP_EINVAL);
    mp_assert_rc(span_for(p, INT64_MAX, INT64_MIN, 0, &sum), MP_EINVAL);
    cr_assert_eq(mp_pool_poll(p), 0); /* nothing was started */
    mp_test_pool_finish(p, 10);
}

Test(pool, parallel_for_over_ranges_at_the_limits)
{
    mp_pool *p = mp_test_pool(2);
    uint64_t sum;
    mp_assert_ok(span_for(p, INT64_MIN, -1, 0, &sum)); /* a span of INT64_MAX */
    cr_assert_eq(sum, (uint64_t)INT64_MAX);
    mp_assert_ok(span_for(p, -2, INT64_MAX - 2, 0, &sum));
    cr_assert_eq(sum, (uint64_t)INT64_MAX);
    mp_assert_ok(span_for(p, 0, INT64_MAX, 0, &sum));
    cr_assert_eq(sum, (uint64_t)INT64_MAX);
    mp_assert_ok(span_for(p, INT64_MAX - 100, INT64_MAX, 7, &sum));
    cr_assert_eq(sum, 100);
    mp_assert_ok(span_for(p, INT64_MIN, INT64_MIN + 100, 7, &sum));
    cr_assert_eq(sum, 100);
    mp_test_pool_finish(p, 10);
}

/* ---- per-task timeout: infinite is no limit --------------------------------*/

Test(pool, task_timeout_infinite_or_huge_is_no_limit)
{
    const double limits[] = {INFINITY, 1e12, 3.1e9, DBL_MAX};
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
        mp_pool *p = NULL;
        mp_assert_ok(
            mp_pool_create(&p, &(mp_pool_opts){.processes = 1, .task_timeout = limits[k]}));
        int64_t x = 5, y = 0;
        mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 10));
        cr_assert_eq(y, 25);
        check_squares(p, 100, 3);
        mp_test_pool_finish(p, 10);
    }
    /* No limit is what a thread pool can do. */
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(
        &p, &(mp_pool_opts){.processes = 1, .threads = true, .task_timeout = INFINITY}));
    check_squares(p, 100, 3);
    mp_test_pool_finish(p, 10);
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.task_timeout = -INFINITY}), MP_EINVAL);
}
