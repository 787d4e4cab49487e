/* Tests of the backtrace a process worker records when a signal that runs
 * its handler kills it (mp_async_backtrace, mp_imap_backtrace), under the
 * three start methods, and of its absence where none can be recorded.
 *
 * The functions a backtrace must name are visible (not static) and kept
 * out of line, and this binary is linked with -rdynamic
 * (tests/CMakeLists.txt), so that dladdr finds their names. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_test.h"

/* AddressSanitizer and ThreadSanitizer install their own SIGSEGV handler,
 * which the pool keeps (it reports the fault and ends the worker): no
 * backtrace for a fault there. abort() runs the pool's handler under both. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

/* Exported (the build hides symbols by default), out of line and never
 * cloned (a clone would have a local name). */
#if defined(__clang__)
#define BT_KEEP __attribute__((visibility("default"), noinline, used))
#else
#define BT_KEEP __attribute__((visibility("default"), noipa, used))
#endif

/* The fork server's fds live as long as the process: started before the
 * count, for the tests that use it. */
static void setup(void)
{
    cr_assert_eq(mp_forkserver_ensure(), 0);
    mp_test_fd_setup();
}

TestSuite(pool_backtrace, .init = setup, .fini = mp_test_fd_check, .timeout = 60);

/* The faulting address, out of the compiler's sight. */
volatile uintptr_t bt_bad_address = 16;

BT_KEEP int bt_crash_inner(int x)
{
    *(volatile int *)bt_bad_address = x;
    return x;
}

BT_KEEP int bt_crash_outer(int x)
{
    return bt_crash_inner(x + 1) + 1; /* not a tail call: this frame stays */
}

/* Calls abort() on every path: a conditional call would go to a cold part
 * of the function, which has a local name (bt_abort_outer.cold). */
BT_KEEP void bt_abort_outer(int x)
{
    (void)x;
    abort();
}

/* A division by zero, with a divisor out of the compiler's sight. */
volatile int bt_zero = 0;

BT_KEEP int bt_divide(int x)
{
    return x / bt_zero;
}

BT_KEEP void bt_raise_ill(int x)
{
    bt_zero = raise(SIGILL) + x; /* not a tail call: this frame stays */
}

static int divide_task(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                       void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    return bt_divide((int)*(const int64_t *)in) == 0 ? 0 : 1;
}

static int ill_task(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                    void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    bt_raise_ill((int)*(const int64_t *)in);
    return 0;
}

static int crash_task(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                      void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    return bt_crash_outer((int)*(const int64_t *)in) == 0 ? 0 : 1;
}

static int abort_task(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                      void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    bt_abort_outer((int)*(const int64_t *)in);
    return 0;
}

static int kill_task(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                     void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    raise(SIGKILL);
    return 0;
}

static int fail_task(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                     void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    return mp_task_fail(7, "refused");
}

/* Squares its item; crashes on item 2 (maps). */
static int square_or_crash(const void *in, size_t in_len, void *out, size_t out_cap,
                           size_t *out_len, void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len, (void)ctx;
    int64_t x = *(const int64_t *)in;
    if (x == 2)
        bt_crash_outer((int)x);
    *(int64_t *)out = x * x;
    return 0;
}

static mp_pool *new_pool(mp_start_method method)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 1, .start_method = method}));
    return p;
}

/* Runs fn once in p; expects it to fail with code and gives its error. */
static mp_async *run_one(mp_pool *p, mp_task_fn fn, int code, mp_task_error *e)
{
    int64_t x = 1;
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_apply_async(p, fn, NULL, &x, 8, 8, NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, MP_FOREVER), code);
    mp_assert_ok(mp_async_error(a, 0, e));
    return a;
}

/* The pool still runs tasks (its worker was replaced), then ends. */
static void check_goes_on(mp_pool *p)
{
    int64_t x = 3, y = 0;
    mp_assert_ok(mp_pool_apply(p, square_or_crash, NULL, &x, 8, &y, 8, NULL, MP_FOREVER));
    cr_assert_eq(y, 9);
    mp_test_pool_finish(p, 30);
}

/* Where needle is in the text (cr_assert that it is). */
static const char *find(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    cr_assert_not_null(at, "no \"%s\" in the backtrace:\n%s", needle, text);
    return at;
}

static void check_fault(mp_start_method method)
{
    mp_pool *p = new_pool(method);
    mp_task_error e;
    mp_async *a = run_one(p, crash_task, MP_EWORKERLOST, &e);
    char bt[4096];
    size_t len = 0;
    int rc = mp_async_backtrace(a, 0, bt, sizeof bt, &len);
#ifdef UNDER_SANITIZER
    (void)rc;
#else
    cr_assert_eq(e.signal, SIGSEGV);
    mp_assert_ok(rc);
    cr_assert_eq(len, strlen(bt));
    /* The faulting function first, then its caller, each with the module. */
    cr_assert_eq(strncmp(bt, "#0 bt_crash_inner+0x", 20), 0, "backtrace:\n%s", bt);
    const char *inner = find(bt, "bt_crash_inner+0x");
    const char *outer = find(bt, "\n#1 bt_crash_outer+0x");
    cr_assert_lt(inner, outer);
    find(bt, " (test_pool_backtrace+0x");
    /* The frames end with the task: none of the pool's worker loop. */
    cr_assert_null(strstr(bt, "mp_process"), "backtrace:\n%s", bt);
    /* The message is as without a backtrace. */
    find(e.message, "killed by SIGSEGV (invalid memory access at 0x10)");
#endif
    mp_async_destroy(a);
    check_goes_on(p);
}

Test(pool_backtrace, a_fault_names_its_functions_fork)
{
    check_fault(MP_START_FORK);
}

Test(pool_backtrace, a_fault_names_its_functions_spawn)
{
    check_fault(MP_START_SPAWN);
}

Test(pool_backtrace, a_fault_names_its_functions_forkserver)
{
    check_fault(MP_START_FORKSERVER);
}

static void check_abort(mp_start_method method)
{
    mp_pool *p = new_pool(method);
    mp_task_error e;
    mp_async *a = run_one(p, abort_task, MP_EWORKERLOST, &e);
    cr_assert_eq(e.signal, SIGABRT);
    char bt[4096];
    mp_assert_ok(mp_async_backtrace(a, 0, bt, sizeof bt, NULL));
    const char *lib = find(bt, "abort+0x");
    const char *outer = find(bt, "bt_abort_outer+0x");
    cr_assert_lt(lib, outer);
    find(e.message, "killed by SIGABRT");
    mp_async_destroy(a);
    check_goes_on(p);
}

Test(pool_backtrace, abort_gives_a_backtrace_fork)
{
    check_abort(MP_START_FORK);
}

Test(pool_backtrace, abort_gives_a_backtrace_spawn)
{
    check_abort(MP_START_SPAWN);
}

Test(pool_backtrace, sigfpe_and_sigill_give_one)
{
    mp_pool *p = new_pool(MP_START_FORK);
    mp_task_error e;
    char bt[4096];
    mp_async *a = run_one(p, divide_task, MP_EWORKERLOST, &e);
    int rc = mp_async_backtrace(a, 0, bt, sizeof bt, NULL);
#ifdef UNDER_SANITIZER
    (void)rc; /* the sanitizers handle SIGFPE too */
#else
    cr_assert_eq(e.signal, SIGFPE);
    mp_assert_ok(rc);
    cr_assert_eq(strncmp(bt, "#0 bt_divide+0x", 15), 0, "backtrace:\n%s", bt);
#endif
    mp_async_destroy(a);
    a = run_one(p, ill_task, MP_EWORKERLOST, &e);
    cr_assert_eq(e.signal, SIGILL);
    mp_assert_ok(mp_async_backtrace(a, 0, bt, sizeof bt, NULL));
    find(bt, "bt_raise_ill+0x");
    mp_async_destroy(a);
    check_goes_on(p);
}

Test(pool_backtrace, sigkill_gives_none)
{
    mp_pool *p = new_pool(MP_START_FORK);
    mp_task_error e;
    mp_async *a = run_one(p, kill_task, MP_EWORKERLOST, &e);
    cr_assert_eq(e.signal, SIGKILL);
    char bt[64];
    mp_assert_rc(mp_async_backtrace(a, 0, bt, sizeof bt, NULL), MP_ENOENT);
    mp_async_destroy(a);
    check_goes_on(p);
}

Test(pool_backtrace, a_task_that_fails_gives_none)
{
    mp_pool *p = new_pool(MP_START_FORK);
    mp_task_error e;
    mp_async *a = run_one(p, fail_task, MP_ETASKFAILED, &e);
    char bt[64];
    mp_assert_rc(mp_async_backtrace(a, 0, bt, sizeof bt, NULL), MP_ENOENT);
    mp_assert_rc(mp_async_backtrace(a, 1, bt, sizeof bt, NULL), MP_ERANGE);
    mp_assert_rc(mp_async_backtrace(NULL, 0, bt, sizeof bt, NULL), MP_EINVAL);
    mp_assert_rc(mp_async_backtrace(a, 0, NULL, 1, NULL), MP_EINVAL);
    mp_async_destroy(a);
    check_goes_on(p);
}

Test(pool_backtrace, a_small_buffer_gets_the_length_and_a_cut_text)
{
    mp_pool *p = new_pool(MP_START_FORK);
    mp_task_error e;
    mp_async *a = run_one(p, abort_task, MP_EWORKERLOST, &e);
    size_t len = 0;
    mp_assert_rc(mp_async_backtrace(a, 0, NULL, 0, &len), MP_EMSGSIZE);
    cr_assert_gt(len, 0);
    char *full = malloc(len + 1), cut[8];
    cr_assert_not_null(full);
    mp_assert_ok(mp_async_backtrace(a, 0, full, len + 1, NULL));
    cr_assert_eq(strlen(full), len);
    mp_assert_rc(mp_async_backtrace(a, 0, cut, sizeof cut, NULL), MP_EMSGSIZE);
    cr_assert_eq(strlen(cut), sizeof cut - 1);
    cr_assert_eq(strncmp(cut, full, sizeof cut - 1), 0);
    free(full);
    mp_async_destroy(a);
    check_goes_on(p);
}

Test(pool_backtrace, a_map_and_an_iterator_keep_theirs)
{
    mp_pool *p = new_pool(MP_START_SPAWN);
    int64_t in[4] = {0, 1, 2, 3}, out[4];
    mp_task_error errs[4];
    size_t nerr = 0;
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_map_async(p,
                                   &(mp_map_spec){.fn = square_or_crash,
                                                  .in = in,
                                                  .n = 4,
                                                  .in_size = 8,
                                                  .out = out,
                                                  .out_size = 8,
                                                  .chunksize = 1,
                                                  .errors = errs,
                                                  .errors_cap = 4,
                                                  .n_errors = &nerr},
                                   NULL, NULL, NULL, &a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, MP_FOREVER), MP_EWORKERLOST);
    cr_assert_eq(nerr, 1);
    cr_assert_eq(errs[0].index, 2);
    char bt[4096];
    int rc = mp_async_backtrace(a, 0, bt, sizeof bt, NULL);
#ifdef UNDER_SANITIZER
    (void)rc;
#else
    mp_assert_ok(rc);
    find(bt, "bt_crash_inner+0x");
#endif
    mp_async_destroy(a);

    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap(
        p,
        &(mp_map_spec){
            .fn = square_or_crash, .in = in, .n = 4, .in_size = 8, .out_size = 8, .chunksize = 1},
        true, &it));
    int64_t y;
    size_t index;
    mp_task_error e;
    for (size_t i = 0; i < 4; i++) {
        rc = mp_imap_next(it, &y, &index, &e, MP_FOREVER);
        cr_assert_eq(index, i);
        if (i != 2) {
            mp_assert_ok(rc);
            mp_assert_rc(mp_imap_backtrace(it, i, bt, sizeof bt, NULL), MP_ENOENT);
            continue;
        }
        mp_assert_rc(rc, MP_EWORKERLOST);
#ifndef UNDER_SANITIZER
        mp_assert_ok(mp_imap_backtrace(it, index, bt, sizeof bt, NULL));
        find(bt, "bt_crash_outer+0x");
#endif
    }
    mp_assert_rc(mp_imap_next(it, &y, &index, &e, MP_FOREVER), MP_EEOF);
    mp_imap_destroy(it);
    check_goes_on(p);
}
