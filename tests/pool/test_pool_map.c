/* Tests of the pool's map data path: ordinary arrays pass through a window
 * of a few staging buffers that is reused as chunks come back, so maps
 * much larger than the window must give every result, keep per-item
 * failures and worker crashes to their items, and never read the caller's
 * input after the caller has stopped waiting. The suite also runs under
 * the spawn and forkserver start methods (tests/CMakeLists.txt). */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(pool_map, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 60);

/* Items much more numerous than the window holds (its buffers hold a few
 * automatic chunks each of a few thousand items). */
#define BIG 300000

static int square(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len, (void)ctx;
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x;
    return 0;
}

/* Kills its own worker on the item equal to *ctx; fails multiples of 1000
 * with code 7. */
static int square_die_or_fail(const void *in, size_t in_len, void *out, size_t out_cap,
                              size_t *out_len, void *ctx)
{
    int64_t x = *(const int64_t *)in;
    if (x == *(const int64_t *)ctx)
        raise(SIGKILL);
    if (x % 1000 == 999)
        return 7;
    return square(in, in_len, out, out_cap, out_len, ctx);
}

/* Adds its input to the sum at *ctx (in the shared heap), slowly. */
static int slow_sum(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                    void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)out_len;
    usleep(2000);
    atomic_fetch_add((_Atomic int64_t *)ctx, *(const int64_t *)in);
    return 0;
}

static void fill(int64_t *in, int64_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)i, out[i] = -1;
}

static void map_big(mp_pool *p, int64_t *in, int64_t *out)
{
    fill(in, out, BIG);
    mp_assert_ok(mp_pool_map(
        p,
        &(mp_map_spec){.fn = square, .in = in, .n = BIG, .in_size = 8, .out = out, .out_size = 8},
        30));
    for (size_t i = 0; i < BIG; i++)
        cr_assert_eq(out[i], (int64_t)(i * i), "item %zu", i);
}

Test(pool_map, large_maps_over_ordinary_and_heap_arrays_give_every_result)
{
    mp_pool *p = mp_test_pool(2);
    int64_t *in = malloc(BIG * 8), *out = malloc(BIG * 8);
    int64_t *hin = mp_alloc(BIG * 8), *hout = mp_alloc(BIG * 8);
    cr_assert(in && out && hin && hout);
    map_big(p, in, out);  /* both staged */
    map_big(p, in, out);  /* again, through the same (warm) window */
    map_big(p, hin, out); /* input in place, output staged */
    map_big(p, in, hout); /* input staged, output in place */
    map_big(p, hin, hout);
    mp_test_pool_finish(p, 30);
    free(in);
    free(out);
    mp_free(hin);
    mp_free(hout);
}

Test(pool_map, explicit_chunks_larger_than_the_map_are_one_chunk)
{
    mp_pool *p = mp_test_pool(2);
    int64_t in[100], out[100];
    fill(in, out, 100);
    mp_assert_ok(mp_pool_map(p,
                             &(mp_map_spec){.fn = square,
                                            .in = in,
                                            .n = 100,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 1000000},
                             10));
    for (int i = 0; i < 100; i++)
        cr_assert_eq(out[i], i * i);
    mp_test_pool_finish(p, 30);
}

Test(pool_map, killed_worker_and_failed_items_in_a_large_staged_map)
{
    mp_pool *p = mp_test_pool(2);
    static const int64_t victim = 123456; /* static data: every start method passes it */
    int64_t *in = malloc(BIG * 8), *out = malloc(BIG * 8);
    cr_assert(in && out);
    fill(in, out, BIG);
    mp_task_error errs[BIG / 1000 + 1];
    size_t nerr = 0;
    int rc = mp_pool_map(p,
                         &(mp_map_spec){.fn = square_die_or_fail,
                                        .ctx = (void *)&victim,
                                        .in = in,
                                        .n = BIG,
                                        .in_size = 8,
                                        .out = out,
                                        .out_size = 8,
                                        .errors = errs,
                                        .errors_cap = sizeof errs / sizeof errs[0],
                                        .n_errors = &nerr},
                         30);
    cr_assert(rc == MP_ETASKFAILED || rc == MP_EWORKERLOST, "rc %d", rc);
    cr_assert_eq(nerr, BIG / 1000 + 1);
    bool lost = false;
    for (size_t k = 0; k < nerr; k++) {
        if (errs[k].code == MP_EWORKERLOST) {
            cr_assert_eq(errs[k].index, (size_t)victim);
            cr_assert_eq(errs[k].signal, SIGKILL);
            lost = true;
        } else {
            cr_assert_eq(errs[k].code, MP_ETASKFAILED);
            cr_assert_eq(errs[k].task_code, 7);
            cr_assert_eq(errs[k].index % 1000, 999);
        }
    }
    cr_assert(lost);
    for (size_t i = 0; i < BIG; i++)
        if (i % 1000 != 999 && i != (size_t)victim)
            cr_assert_eq(out[i], (int64_t)(i * i), "item %zu", i);
    /* The pool and its window still serve the next map. */
    map_big(p, in, out);
    mp_test_pool_finish(p, 30);
    free(in);
    free(out);
}

/* A map whose caller stopped waiting goes on; the caller's input may be
 * overwritten and freed as soon as the call has returned. */
static void abandoned_map_goes_on(bool imap)
{
    mp_pool *p = mp_test_pool(2);
    _Atomic int64_t *sum = mp_alloc(sizeof *sum);
    size_t n = 200;
    int64_t *in = malloc(n * 8), *out = malloc(n * 8);
    cr_assert(sum && in && out);
    atomic_store(sum, 0);
    fill(in, out, n);
    mp_map_spec spec = {.fn = slow_sum,
                        .ctx = (void *)sum,
                        .in = in,
                        .n = n,
                        .in_size = 8,
                        .out = out,
                        .out_size = 8,
                        .chunksize = 1};
    if (imap) {
        mp_imap *it = NULL;
        mp_assert_ok(mp_pool_imap(p, &spec, true, &it));
        mp_assert_ok(mp_imap_next(it, NULL, NULL, NULL, 10));
        mp_imap_destroy(it);
    } else {
        mp_assert_rc(mp_pool_map(p, &spec, 0.02), MP_ETIMEDOUT);
    }
    memset(in, 0x55, n * 8);
    free(in);
    free(out);
    mp_test_pool_finish(p, 30);
    cr_assert_eq(atomic_load(sum), (int64_t)(n * (n - 1) / 2));
    mp_free((void *)sum);
}

Test(pool_map, timed_out_map_goes_on_without_the_callers_arrays)
{
    abandoned_map_goes_on(false);
}

Test(pool_map, destroyed_imap_goes_on_without_the_callers_input)
{
    abandoned_map_goes_on(true);
}
