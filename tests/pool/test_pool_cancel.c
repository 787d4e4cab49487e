/* Tests of mp_async_cancel on the process pool: a queued task never runs,
 * a running one finishes but its result is dropped, a map stops handing
 * out chunks, and the failure paths (NULL, twice, after the result, after
 * the pool's destruction). Tasks leave a byte in a file for each run, so
 * that runs are counted whatever the start method. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/internal.h"
#include "mp_test.h"

TestSuite(pool_cancel, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

/* in: { double seconds; char path[120]; }: appends a byte to path, then
 * sleeps; its result is the 4 bytes "done". */
typedef struct job {
    double secs;
    char path[120];
} job;

static int mark_and_sleep(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                          void *ctx)
{
    (void)in_len, (void)ctx;
    const job *j = in;
    int fd = open(j->path, O_CREAT | O_APPEND | O_WRONLY, 0600);
    if (fd < 0 || write(fd, "x", 1) != 1)
        return 1;
    close(fd);
    usleep((useconds_t)(j->secs * 1e6));
    if (out_cap >= 4)
        memcpy(out, "done", 4);
    *out_len = out_cap >= 4 ? 4 : 0;
    return 0;
}

static job make_job(double secs, const char *tag)
{
    job j = {.secs = secs};
    snprintf(j.path, sizeof(j.path), "/tmp/mp_cancel_%d_%s", (int)getpid(), tag);
    unlink(j.path);
    return j;
}

static long runs(const job *j)
{
    struct stat st;
    return stat(j->path, &st) == 0 ? (long)st.st_size : 0;
}

static void count_err(mp_async *a, void *user)
{
    (void)a;
    ((int *)user)[1]++;
}

static void count_ok(mp_async *a, void *user)
{
    (void)a;
    ((int *)user)[0]++;
}

Test(pool_cancel, a_queued_task_never_runs)
{
    mp_pool *p = mp_test_pool(1);
    job busy = make_job(0.4, "busy"), queued = make_job(0, "queued");
    mp_async *a, *b;
    int calls[2] = {0, 0};
    mp_assert_ok(
        mp_pool_apply_async(p, mark_and_sleep, NULL, &busy, sizeof(busy), 8, NULL, NULL, NULL, &a));
    mp_assert_ok(mp_pool_apply_async(p, mark_and_sleep, NULL, &queued, sizeof(queued), 8, count_ok,
                                     count_err, calls, &b));
    mp_assert_ok(mp_async_cancel(b));
    cr_assert_eq(calls[0], 0);
    cr_assert_eq(calls[1], 1, "the error callback runs once, in the cancel");
    cr_assert(mp_async_ready(b));
    mp_assert_rc(mp_async_get(b, NULL, 0, NULL, 0), MP_ECANCELED);
    mp_assert_ok(mp_async_wait(b, 0));
    cr_assert_eq(mp_async_successful(b), 1);
    mp_task_error e;
    mp_assert_ok(mp_async_error(b, 0, &e));
    cr_assert_eq(e.code, MP_ECANCELED);
    mp_assert_rc(mp_async_cancel(b), MP_EINVAL); /* twice */
    cr_assert_not_null(strstr(mp_error_detail(), "cancelled already"), "%s", mp_error_detail());
    char out[8];
    mp_assert_ok(mp_async_get(a, out, sizeof(out), NULL, 10));
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 10));
    cr_assert_eq(runs(&queued), 0, "the cancelled task ran");
    cr_assert_eq(runs(&busy), 1);
    cr_assert_eq(calls[0] + calls[1], 1, "no callback after the cancel");
    mp_async_destroy(a);
    mp_async_destroy(b);
    mp_pool_destroy(p);
    unlink(busy.path);
}

Test(pool_cancel, a_running_task_finishes_and_its_result_is_dropped)
{
    mp_pool *p = mp_test_pool(1);
    job slow = make_job(0.5, "slow");
    mp_async *a;
    mp_assert_ok(
        mp_pool_apply_async(p, mark_and_sleep, NULL, &slow, sizeof(slow), 8, NULL, NULL, NULL, &a));
    for (int i = 0; i < 1000 && runs(&slow) == 0; i++)
        usleep(5000);
    cr_assert_eq(runs(&slow), 1, "the task did not start");
    int64_t t0 = mp__now_ns();
    mp_assert_ok(mp_async_cancel(a));
    char out[8] = "";
    mp_assert_rc(mp_async_get(a, out, sizeof(out), NULL, 10), MP_ECANCELED);
    cr_assert_lt(mp__now_ns() - t0, 200000000, "get waited for the running task");
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 10)); /* the task came back: dropped */
    mp_assert_rc(mp_async_get(a, out, sizeof(out), NULL, 0), MP_ECANCELED);
    cr_assert_eq(out[0], '\0');
    mp_async_destroy(a);
    mp_pool_destroy(p);
    unlink(slow.path);
}

Test(pool_cancel, a_cancelled_running_task_can_be_destroyed_before_it_ends)
{
    mp_pool *p = mp_test_pool(1);
    job slow = make_job(0.3, "destroyed");
    mp_async *a, *b;
    mp_assert_ok(
        mp_pool_apply_async(p, mark_and_sleep, NULL, &slow, sizeof(slow), 8, NULL, NULL, NULL, &a));
    for (int i = 0; i < 1000 && runs(&slow) == 0; i++)
        usleep(5000);
    mp_assert_ok(mp_async_cancel(a));
    mp_async_destroy(a); /* the pool frees it when its task comes back */
    job next = make_job(0, "next");
    mp_assert_ok(
        mp_pool_apply_async(p, mark_and_sleep, NULL, &next, sizeof(next), 8, NULL, NULL, NULL, &b));
    char o[8];
    mp_assert_ok(mp_async_get(b, o, sizeof(o), NULL, 10));
    mp_async_destroy(b);
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 10));
    mp_pool_destroy(p);
    cr_assert_eq(runs(&next), 1);
    unlink(slow.path);
    unlink(next.path);
}

Test(pool_cancel, a_map_stops_handing_out_chunks)
{
    mp_pool *p = mp_test_pool(1);
    enum { N = 40 };
    job in[N];
    char out[N][8];
    mp_task_error errs[4];
    size_t nerr = 99;
    for (int i = 0; i < N; i++)
        in[i] = make_job(0.02, "map"); /* every item appends to the same file */
    mp_async *a;
    mp_assert_ok(mp_pool_map_async(p,
                                   &(mp_map_spec){.fn = mark_and_sleep,
                                                  .in = in,
                                                  .n = N,
                                                  .in_size = sizeof(job),
                                                  .out = out,
                                                  .out_size = 8,
                                                  .chunksize = 1,
                                                  .errors = errs,
                                                  .errors_cap = 4,
                                                  .n_errors = &nerr},
                                   NULL, NULL, NULL, &a));
    for (int i = 0; i < 1000 && runs(&in[0]) == 0; i++)
        usleep(2000);
    mp_assert_ok(mp_async_cancel(a));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0), MP_ECANCELED);
    cr_assert_eq(nerr, 1);
    cr_assert_eq(errs[0].code, MP_ECANCELED);
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, 10));
    cr_assert_lt(runs(&in[0]), N / 2, "%ld of %d items ran after the cancel", runs(&in[0]), N);
    cr_assert_eq(nerr, 1, "n_errors written after the cancel");
    mp_async_destroy(a);
    mp_pool_destroy(p);
    unlink(in[0].path);
}

Test(pool_cancel, failure_paths)
{
    mp_assert_rc(mp_async_cancel(NULL), MP_EINVAL);
    mp_pool *p = mp_test_pool(1);
    job quick = make_job(0, "quick"), slow = make_job(5, "never");
    mp_async *a, *b, *c;
    mp_assert_ok(mp_pool_apply_async(p, mark_and_sleep, NULL, &quick, sizeof(quick), 8, NULL, NULL,
                                     NULL, &a));
    mp_assert_ok(mp_async_wait(a, 10));
    mp_assert_rc(mp_async_cancel(a), MP_EINVAL); /* already done: the result stands */
    cr_assert_not_null(strstr(mp_error_detail(), "ready already"), "%s", mp_error_detail());
    char o[8];
    mp_assert_ok(mp_async_get(a, o, sizeof(o), NULL, 0));
    /* A job still running when the pool is destroyed ends with
     * MP_ECLOSED; the object stays valid and cannot be cancelled. */
    mp_assert_ok(
        mp_pool_apply_async(p, mark_and_sleep, NULL, &slow, sizeof(slow), 8, NULL, NULL, NULL, &b));
    mp_assert_ok(
        mp_pool_apply_async(p, mark_and_sleep, NULL, &slow, sizeof(slow), 8, NULL, NULL, NULL, &c));
    mp_assert_ok(mp_async_cancel(c));
    mp_pool_destroy(p);
    mp_assert_rc(mp_async_cancel(b), MP_EINVAL);
    mp_assert_rc(mp_async_get(b, NULL, 0, NULL, 0), MP_ECLOSED);
    mp_assert_rc(mp_async_get(c, NULL, 0, NULL, 0), MP_ECANCELED); /* terminate keeps it */
    mp_async_destroy(a);
    mp_async_destroy(b);
    mp_async_destroy(c);
    unlink(quick.path);
    unlink(slow.path);
}
