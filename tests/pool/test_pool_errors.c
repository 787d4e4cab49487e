/* Tests of what the pool says about failures: mp_error_detail() names the
 * refused argument (options, specs, pointers that cannot cross a spawn),
 * a task's mp_task_fail message reaches every place its error goes, and a
 * worker killed by a signal is described by the signal's name and, for a
 * fault, its address. */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(pool_errors, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 60);

#define assert_detail_has(s)                                                                       \
    cr_assert_not_null(strstr(mp_error_detail(), (s)), "detail \"%s\" lacks \"%s\"",               \
                       mp_error_detail(), (s))

static int square(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len, (void)ctx;
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x;
    return 0;
}

/* Fails odd items with code 7 and a message naming the item. */
static int fail_odd(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                    void *ctx)
{
    int64_t x = *(const int64_t *)in;
    if (x % 2)
        return mp_task_fail(7, "bad row %d", (int)x);
    return square(in, in_len, out, out_cap, out_len, ctx);
}

/* Sets a message, then succeeds: the message must not outlive the task. */
static int msg_then_ok(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                       void *ctx)
{
    (void)mp_task_fail(5, "stale message");
    return square(in, in_len, out, out_cap, out_len, ctx);
}

/* Fails without a message. */
static int fail_plain(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                      void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    return 9;
}

static int fail_long(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                     void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    char big[3 * MP_TASK_MESSAGE_MAX];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    return mp_task_fail(3, "%s", big);
}

static int for_fail(int64_t begin, int64_t end, void *acc, void *ctx)
{
    (void)end, (void)acc, (void)ctx;
    return begin == 0 ? mp_task_fail(11, "chunk at %lld", (long long)begin) : 0;
}

static int kill_self(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                     void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    raise(SIGKILL);
    return 0;
}

static int raise_segv(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                      void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    raise(SIGSEGV);
    return 0;
}

static int sleep_long(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                      void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    sleep(30);
    return 0;
}

/* A real fault, at a known address. */
static int fault_at_16(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                       void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    volatile uintptr_t addr = 16; /* hidden from the compiler's bounds checks */
    *(volatile int *)addr = 1;
    return 0;
}

/* ---- mp_error_detail on refused arguments ------------------------------------*/

Test(pool_errors, create_names_the_option)
{
    mp_pool *p = (mp_pool *)&p; /* a failing create leaves it alone */
    mp_pool *const sentinel = p;
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.processes = -1}), MP_EINVAL);
    assert_detail_has("mp_pool_create");
    assert_detail_has("opts->processes is -1");
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.task_timeout = -2}), MP_EINVAL);
    assert_detail_has("opts->task_timeout");
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.start_method = (mp_start_method)99}),
                 MP_EINVAL);
    assert_detail_has("opts->start_method is 99");
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.threads = true, .task_timeout = 1}),
                 MP_EINVAL);
    assert_detail_has("opts->task_timeout needs process workers");
    mp_assert_rc(mp_pool_create(NULL, NULL), MP_EINVAL);
    assert_detail_has("out is NULL");
    cr_assert_eq(p, sentinel);
}

Test(pool_errors, map_and_for_name_the_spec_field)
{
    mp_pool *p = mp_test_pool(1);
    int64_t in[4] = {1, 2, 3, 4}, out[4] = {0};
    mp_map_spec s = {.fn = square, .in = in, .n = 4, .in_size = 0, .out = out, .out_size = 8};
    mp_assert_rc(mp_pool_map(p, &s, MP_FOREVER), MP_EINVAL);
    assert_detail_has("mp_pool_map: spec->in_size is 0");
    s.in_size = 8;
    s.errors_cap = 3;
    mp_assert_rc(mp_pool_map(p, &s, MP_FOREVER), MP_EINVAL);
    assert_detail_has("spec->errors is NULL with spec->errors_cap 3");
    s.errors_cap = 0;
    s.fn = NULL;
    mp_imap *it = NULL;
    mp_assert_rc(mp_pool_imap(p, &s, true, &it), MP_EINVAL);
    assert_detail_has("mp_pool_imap: spec->fn is NULL");
    cr_assert_null(it);
    int64_t sum = 0;
    mp_for_spec f = {.fn = for_fail, .begin = 5, .end = 1, .acc_size = 8, .result = &sum};
    mp_assert_rc(mp_pool_for(p, &f, MP_FOREVER), MP_EINVAL);
    assert_detail_has("spec->begin 5 is above spec->end 1");
    f.end = 10;
    mp_assert_rc(mp_pool_for(p, &f, MP_FOREVER), MP_EINVAL);
    assert_detail_has("spec->reduce is NULL");
    f.acc_size = MP_POOL_ACC_MAX + 1;
    mp_assert_rc(mp_pool_for(p, &f, MP_FOREVER), MP_EINVAL);
    assert_detail_has("spec->acc_size is 65");
    /* Nothing ran: the output is untouched. */
    for (int i = 0; i < 4; i++)
        cr_assert_eq(out[i], 0);
    /* A call that succeeds leaves the detail as it was (documented). */
    char before[MP_ERROR_DETAIL_MAX];
    strcpy(before, mp_error_detail());
    s.fn = square;
    mp_assert_ok(mp_pool_map(p, &s, MP_FOREVER));
    cr_assert_eq(out[3], 16);
    cr_assert_str_eq(mp_error_detail(), before);
    mp_test_pool_finish(p, 30);
}

Test(pool_errors, spawn_refuses_a_malloc_ctx_by_name)
{
    mp_pool *p = NULL;
    mp_assert_ok(
        mp_pool_create(&p, &(mp_pool_opts){.processes = 1, .start_method = MP_START_SPAWN}));
    int64_t in[2] = {1, 2};
    void *heap_ctx = malloc(16);
    cr_assert_not_null(heap_ctx);
    mp_map_spec s = {.fn = square, .ctx = heap_ctx, .in = in, .n = 2, .in_size = 8};
    mp_imap *it = NULL;
    mp_assert_rc(mp_pool_imap(p, &s, true, &it), MP_EINVAL);
    cr_assert_null(it);
    assert_detail_has("mp_pool_imap: spec->ctx");
    assert_detail_has("shared heap");
    assert_detail_has("mp_alloc");
    int local = 0;
    mp_async *a = NULL;
    mp_assert_rc(mp_pool_apply_async(p, square, &local, in, 8, 8, NULL, NULL, NULL, &a), MP_EINVAL);
    cr_assert_null(a);
    assert_detail_has("mp_pool_apply_async: ctx");
    /* The pool still works, with a pointer that can cross. */
    mp_error_clear();
    int64_t y = 0;
    mp_assert_ok(mp_pool_apply(p, square, NULL, &in[1], 8, &y, 8, NULL, MP_FOREVER));
    cr_assert_eq(y, 4);
    cr_assert_str_eq(mp_error_detail(), "");
    free(heap_ctx);
    mp_test_pool_finish(p, 30);
}

Test(pool_errors, spawn_refuses_a_malloc_initarg_by_name)
{
    void *arg = malloc(8);
    cr_assert_not_null(arg);
    mp_pool *p = NULL;
    mp_assert_rc(mp_pool_create(&p, &(mp_pool_opts){.processes = 1,
                                                    .start_method = MP_START_SPAWN,
                                                    .initializer = free,
                                                    .initarg = arg}),
                 MP_EINVAL);
    cr_assert_null(p);
    assert_detail_has("mp_pool_create: opts->initarg");
    free(arg);
}

/* ---- task messages -------------------------------------------------------------*/

Test(pool_errors, task_message_reaches_get_and_async_error)
{
    mp_pool *p = mp_test_pool(1);
    int64_t x = 3, y = 0;
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_apply_async(p, fail_odd, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    mp_error_clear();
    mp_assert_rc(mp_async_get(a, &y, 8, NULL, MP_FOREVER), MP_ETASKFAILED);
    assert_detail_has("task failed with code 7: bad row 3");
    mp_task_error e;
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.code, MP_ETASKFAILED);
    cr_assert_eq(e.task_code, 7);
    cr_assert_str_eq(e.message, "bad row 3");
    mp_async_destroy(a);
    /* The blocking apply reports it the same way. */
    mp_error_clear();
    mp_assert_rc(mp_pool_apply(p, fail_odd, NULL, &x, 8, &y, 8, NULL, MP_FOREVER), MP_ETASKFAILED);
    assert_detail_has("bad row 3");
    mp_test_pool_finish(p, 30);
}

Test(pool_errors, task_message_reaches_the_map_errors_array)
{
    mp_pool *p = mp_test_pool(2);
    enum { N = 40 };
    int64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    mp_task_error errs[N];
    size_t nerr = 0;
    mp_map_spec s = {.fn = fail_odd,
                     .in = in,
                     .n = N,
                     .in_size = 8,
                     .out = out,
                     .out_size = 8,
                     .chunksize = 1,
                     .errors = errs,
                     .errors_cap = N,
                     .n_errors = &nerr};
    mp_assert_rc(mp_pool_map(p, &s, MP_FOREVER), MP_ETASKFAILED);
    cr_assert_eq(nerr, N / 2);
    for (size_t k = 0; k < nerr; k++) {
        char want[32];
        snprintf(want, sizeof want, "bad row %zu", errs[k].index);
        cr_assert_eq(errs[k].index % 2, 1);
        cr_assert_str_eq(errs[k].message, want);
    }
    for (int i = 0; i < N; i += 2)
        cr_assert_eq(out[i], (int64_t)i * i);
    mp_test_pool_finish(p, 30);
}

static void on_error(mp_async *a, void *user)
{
    mp_task_error e;
    if (mp_async_error(a, 0, &e) == 0)
        strcpy(user, e.message);
}

Test(pool_errors, task_message_reaches_the_error_callback_and_imap)
{
    mp_pool *p = mp_test_pool(1);
    int64_t x = 5;
    char seen[MP_TASK_MESSAGE_MAX] = "";
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_apply_async(p, fail_odd, NULL, &x, 8, 8, NULL, on_error, seen, &a));
    mp_assert_rc(mp_async_wait(a, MP_FOREVER), 0);
    mp_async_destroy(a);
    cr_assert_str_eq(seen, "bad row 5");

    int64_t in[3] = {0, 1, 2};
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap(
        p, &(mp_map_spec){.fn = fail_odd, .in = in, .n = 3, .in_size = 8, .out_size = 8}, true,
        &it));
    int64_t item;
    size_t index;
    mp_task_error e;
    mp_assert_ok(mp_imap_next(it, &item, &index, &e, MP_FOREVER));
    mp_assert_rc(mp_imap_next(it, &item, &index, &e, MP_FOREVER), MP_ETASKFAILED);
    cr_assert_eq(index, 1);
    cr_assert_str_eq(e.message, "bad row 1");
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_errors, for_chunk_message)
{
    mp_pool *p = mp_test_pool(1);
    mp_task_error errs[4];
    size_t nerr = 0;
    mp_assert_rc(mp_pool_for(p,
                             &(mp_for_spec){.fn = for_fail,
                                            .begin = 0,
                                            .end = 100,
                                            .chunksize = 10,
                                            .errors = errs,
                                            .errors_cap = 4,
                                            .n_errors = &nerr},
                             MP_FOREVER),
                 MP_ETASKFAILED);
    cr_assert_eq(nerr, 1);
    cr_assert_eq(errs[0].task_code, 11);
    cr_assert_str_eq(errs[0].message, "chunk at 0");
    mp_test_pool_finish(p, 30);
}

/* One worker runs both: a message set by a task that succeeded must not
 * reach the next task's failure; a long message is cut, terminated. */
static void check_no_stale_message(mp_pool *p)
{
    int64_t x = 2, y = 0;
    mp_assert_ok(mp_pool_apply(p, msg_then_ok, NULL, &x, 8, &y, 8, NULL, MP_FOREVER));
    cr_assert_eq(y, 4);
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_apply_async(p, fail_plain, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, MP_FOREVER), MP_ETASKFAILED);
    mp_task_error e;
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.task_code, 9);
    cr_assert_str_eq(e.message, "");
    mp_async_destroy(a);
    mp_assert_ok(mp_pool_apply_async(p, fail_long, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, MP_FOREVER), MP_ETASKFAILED);
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(strlen(e.message), MP_TASK_MESSAGE_MAX - 1);
    mp_async_destroy(a);
}

Test(pool_errors, a_message_never_outlives_its_task)
{
    mp_pool *p = mp_test_pool(1);
    check_no_stale_message(p);
    mp_test_pool_finish(p, 30);
}

Test(pool_errors, thread_workers_carry_messages)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 1, .threads = true}));
    check_no_stale_message(p);
    int64_t x = 7, y;
    mp_assert_rc(mp_pool_apply(p, fail_odd, NULL, &x, 8, &y, 8, NULL, MP_FOREVER), MP_ETASKFAILED);
    assert_detail_has("bad row 7");
    mp_test_pool_finish(p, 30);
}

/* ---- workers killed by a signal --------------------------------------------------*/

static void lost_item(mp_pool *p, mp_task_fn fn, mp_task_error *e)
{
    int64_t x = 1;
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_apply_async(p, fn, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, MP_FOREVER), MP_EWORKERLOST);
    mp_assert_ok(mp_async_error(a, 0, e));
    mp_async_destroy(a);
}

Test(pool_errors, a_killed_worker_is_named_with_its_signal)
{
    mp_pool *p = mp_test_pool(1);
    mp_task_error e;
    mp_error_clear();
    lost_item(p, kill_self, &e);
    char want[64];
    snprintf(want, sizeof want, "worker %d killed by SIGKILL", (int)e.pid);
    cr_assert_eq(e.signal, SIGKILL);
    cr_assert_str_eq(e.message, want);
    assert_detail_has("worker lost: worker ");
    assert_detail_has("killed by SIGKILL");
    mp_test_pool_finish(p, 30);
}

static void check_fault(mp_start_method method)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 1, .start_method = method}));
    mp_task_error e;
    lost_item(p, fault_at_16, &e);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizer's own handler reports the fault and ends the worker. */
    cr_assert_gt(strlen(e.message), 0);
#else
    cr_assert_eq(e.signal, SIGSEGV);
    cr_assert_not_null(strstr(e.message, "killed by SIGSEGV (invalid memory access at 0x10)"),
                       "message: %s", e.message);
#endif
    /* A raised SIGSEGV has no address. */
    lost_item(p, raise_segv, &e);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    cr_assert_eq(e.signal, SIGSEGV);
    cr_assert_not_null(strstr(e.message, "killed by SIGSEGV"), "message: %s", e.message);
    cr_assert_null(strstr(e.message, " at "), "message: %s", e.message);
#endif
    /* The replacement worker runs tasks. */
    int64_t x = 3, y = 0;
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, MP_FOREVER));
    cr_assert_eq(y, 9);
    mp_test_pool_finish(p, 30);
}

Test(pool_errors, a_fault_is_named_with_its_address_fork)
{
    check_fault(MP_START_FORK);
}

Test(pool_errors, a_fault_is_named_with_its_address_spawn)
{
    check_fault(MP_START_SPAWN);
}

Test(pool_errors, an_overdue_task_says_so)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 1, .task_timeout = 0.2}));
    int64_t x = 1;
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_apply_async(p, sleep_long, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, MP_FOREVER), MP_ETASKFAILED);
    mp_task_error e;
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.task_code, MP_ETIMEDOUT);
    cr_assert_not_null(strstr(e.message, "ran longer than task_timeout (0.2 s)"), "message: %s",
                       e.message);
    assert_detail_has("ran longer than task_timeout");
    mp_async_destroy(a);
    mp_test_pool_finish(p, 30);
}
