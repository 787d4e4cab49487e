/* Benchmarks of the process pool (rows seed_sumsq_map_s, seed_sumsq_for_s,
 * pool_roundtrip_us, pool_tiny_tasks_per_s, pool_stream_lines_per_s).
 *
 *     bench_pool sumsq_map N   the seeds' sum of the squares of 1..10^7 with
 *                              mp_pool_map over malloc'd arrays, allocated
 *                              cold and filled inside the timed region (the
 *                              pool copies them chunk by chunk through its
 *                              staging window and back); value = seconds
 *                              per sum
 *     bench_pool sumsq_map_heap N   the same over arrays allocated cold in
 *                              the shared heap (zero-copy map; a diagnostic:
 *                              fresh shared pages fault more slowly than
 *                              private ones, so cold this is slower than
 *                              the staged map)
 *     bench_pool sumsq_for N   the same with mp_pool_for and a reduction
 *     bench_pool roundtrip N   apply_async(identity).get() on an idle pool;
 *                              value = microseconds per round trip
 *     bench_pool tiny N        imap_unordered of N trivial tasks, chunksize
 *                              1; value = tasks per second
 *     bench_pool stream N      an ordered streaming map (mp_pool_imap_stream)
 *                              of N lines of text ("line 123 of the stream",
 *                              made by the source as the window asks) to
 *                              their 64-bit FNV-1a hashes, taken in order;
 *                              value = lines per second
 *     bench_pool start_fork|start_spawn|start_forkserver N   pool start with
 *                              that method: create a pool, wait until every
 *                              worker runs a task (a map of one item per
 *                              worker, each waiting for all the others),
 *                              close, join, destroy; value = milliseconds
 *                              per pool (the fork server is started before
 *                              the clock)
 *
 * The pool has mp_cpu_count() workers and, but for the start modes, is
 * created before the clock starts.
 */
#include <stdatomic.h>
#include <stdint.h>

#include <multiproc.h>

#include "bench_common.h"
#include "bench_tiny.h"

#define SUMSQ_N 10000000

__extension__ typedef unsigned __int128 u128;

static const u128 expected_sum = (u128)333333383333335ULL * 1000000u;

static int square(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len, (void)ctx;
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x;
    return 0;
}

static int sum_chunk(int64_t begin, int64_t end, void *acc, void *ctx)
{
    (void)ctx;
    *(u128 *)acc = bench_sumsq_range(begin, end); /* the floor's inner loop */
    return 0;
}

static void add(void *total, const void *partial, void *ctx)
{
    (void)ctx;
    *(u128 *)total = *(u128 *)total + *(const u128 *)partial;
}

static int identity(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                    void *ctx)
{
    (void)ctx;
    if (in_len > out_cap)
        return 1;
    memcpy(out, in, in_len);
    *out_len = in_len;
    return 0;
}

typedef struct lines {
    long next, n;
} lines;

static int next_line(void *item, size_t cap, size_t *len, void *user)
{
    lines *l = user;
    if (l->next == l->n)
        return 0;
    int k = snprintf(item, cap, "line %ld of the stream", l->next++);
    *len = (size_t)k;
    return 1;
}

static int fnv(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len, void *ctx)
{
    (void)out_cap, (void)ctx;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < in_len; i++)
        h = (h ^ ((const unsigned char *)in)[i]) * 1099511628211ULL;
    memcpy(out, &h, sizeof h);
    *out_len = sizeof h;
    return 0;
}

static void check(int rc, const char *what)
{
    if (rc < 0)
        bench_die("%s: %s", what, mp_strerror(rc));
}

/* heap: the arrays live in the shared heap (zero-copy map); otherwise they
 * are malloc'd and the pool copies them in and out. */
static u128 sumsq_map(mp_pool *p, bool heap)
{
    int64_t *in = NULL, *out = NULL;
    if (heap) {
        in = mp_alloc(SUMSQ_N * sizeof *in);
        out = mp_alloc(SUMSQ_N * sizeof *out);
        if (!in || !out)
            bench_die("out of shared heap");
    } else {
        in = malloc(SUMSQ_N * sizeof *in);
        out = malloc(SUMSQ_N * sizeof *out);
        if (!in || !out)
            bench_die("out of memory");
    }
    for (int64_t i = 0; i < SUMSQ_N; i++)
        in[i] = i + 1;
    check(mp_pool_map(
              p,
              &(mp_map_spec){
                  .fn = square, .in = in, .n = SUMSQ_N, .in_size = 8, .out = out, .out_size = 8},
              MP_FOREVER),
          "mp_pool_map");
    u128 sum = 0;
    for (int64_t i = 0; i < SUMSQ_N; i++)
        sum = sum + (uint64_t)out[i];
    if (heap) {
        mp_free(in);
        mp_free(out);
    } else {
        free(in);
        free(out);
    }
    return sum;
}

static u128 sumsq_for(mp_pool *p)
{
    u128 sum = 0;
    check(mp_pool_for(p,
                      &(mp_for_spec){.fn = sum_chunk,
                                     .begin = 1,
                                     .end = SUMSQ_N + 1,
                                     .acc_size = sizeof(u128),
                                     .reduce = add,
                                     .result = &sum},
                      MP_FOREVER),
          "mp_pool_for");
    return sum;
}

static void roundtrip(mp_pool *p, long n)
{
    uint64_t x = 42, y = 0;
    for (long i = 0; i < n; i++) {
        mp_async *a = NULL;
        check(mp_pool_apply_async(p, identity, NULL, &x, 8, 8, NULL, NULL, NULL, &a), "apply");
        check(mp_async_get(a, &y, 8, NULL, MP_FOREVER), "get");
        mp_async_destroy(a);
        if (y != x)
            bench_die("wrong result");
    }
}

/* One item per worker: each waits until all have arrived, so that the map
 * completes only once every worker runs. */
static int arrive(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)out_len;
    _Atomic int64_t *count = ctx;
    atomic_fetch_add(count, 1);
    for (int i = 0; atomic_load(count) < *(const int64_t *)in; i++)
        if (i > 64)
            sched_yield();
    return 0;
}

static mp_start_method method_named(const char *name)
{
    if (strcmp(name, "fork") == 0)
        return MP_START_FORK;
    if (strcmp(name, "spawn") == 0)
        return MP_START_SPAWN;
    if (strcmp(name, "forkserver") == 0)
        return MP_START_FORKSERVER;
    bench_die("unknown start method '%s'", name);
}

static double pool_start(const char *method, long iters)
{
    mp_start_method m = method_named(method);
    int n = mp_cpu_count();
    _Atomic int64_t *count = mp_alloc(sizeof *count);
    int64_t *in = malloc((size_t)n * sizeof *in);
    if (!count || !in)
        bench_die("out of memory");
    for (int i = 0; i < n; i++)
        in[i] = n;
    if (m == MP_START_FORKSERVER)
        check(mp_forkserver_ensure(), "mp_forkserver_ensure");
    double t0 = bench_now();
    for (long k = 0; k < iters; k++) {
        atomic_store(count, 0);
        mp_pool *p = NULL;
        check(mp_pool_create(&p, &(mp_pool_opts){.processes = n, .start_method = m}), "create");
        check(mp_pool_map(p,
                          &(mp_map_spec){.fn = arrive,
                                         .ctx = (void *)count,
                                         .in = in,
                                         .n = (size_t)n,
                                         .in_size = sizeof *in,
                                         .chunksize = 1},
                          MP_FOREVER),
              "map");
        check(mp_pool_close(p), "close");
        check(mp_pool_join(p, MP_FOREVER), "join");
        mp_pool_destroy(p);
    }
    double dt = bench_now() - t0;
    mp_free((void *)count);
    free(in);
    return dt;
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv,
                        "sumsq_map|sumsq_map_heap|sumsq_for|roundtrip|tiny|stream|"
                        "start_fork|start_spawn|start_forkserver <iterations>");
    const char *mode = argv[1];
    if (strncmp(mode, "start_", 6) == 0) {
        double dt = pool_start(mode + 6, n);
        printf("RESULT value=%.6f elapsed=%.6f n=%ld workers=%d\n", dt * 1e3 / (double)n, dt, n,
               mp_cpu_count());
        return 0;
    }
    mp_pool *p = NULL;
    check(mp_pool_create(&p, NULL), "mp_pool_create");
    roundtrip(p, 10); /* warm-up: every worker has started */
    double t0 = bench_now(), value;
    if (strncmp(mode, "sumsq_", 6) == 0) {
        bool map = strncmp(mode, "sumsq_map", 9) == 0, heap = strcmp(mode, "sumsq_map_heap") == 0;
        if (!map && strcmp(mode, "sumsq_for") != 0)
            bench_die("unknown mode '%s'", mode);
        for (long i = 0; i < n; i++)
            if ((map ? sumsq_map(p, heap) : sumsq_for(p)) != expected_sum)
                bench_die("wrong sum");
        value = (bench_now() - t0) / (double)n;
    } else if (strcmp(mode, "roundtrip") == 0) {
        roundtrip(p, n);
        value = (bench_now() - t0) * 1e6 / (double)n;
    } else if (strcmp(mode, "stream") == 0) {
        lines l = {0, n};
        mp_imap *it = NULL;
        check(mp_pool_imap_stream(p,
                                  &(mp_stream_spec){.fn = fnv,
                                                    .source = next_line,
                                                    .source_user = &l,
                                                    .item_max = 64,
                                                    .out_max = 8},
                                  true, &it),
              "imap_stream");
        uint64_t h;
        size_t len, index;
        long got = 0;
        int rc;
        while ((rc = mp_imap_next_sized(it, &h, sizeof h, &len, &index, NULL, MP_FOREVER)) == 0)
            if (index != (size_t)got++ || len != sizeof h)
                bench_die("result %ld out of order", got);
        if (rc != MP_EEOF || got != n)
            bench_die("stream ended with %s after %ld of %ld", mp_strerror(rc), got, n);
        mp_imap_destroy(it);
        value = (double)n / (bench_now() - t0);
    } else if (strcmp(mode, "tiny") == 0) {
        check(bench_tiny_imap(p, square, n, MP_FOREVER), "imap");
        value = (double)n / (bench_now() - t0);
    } else {
        bench_die("unknown mode '%s'", mode);
    }
    double elapsed = bench_now() - t0;
    check(mp_pool_close(p), "close");
    check(mp_pool_join(p, MP_FOREVER), "join");
    mp_pool_destroy(p);
    printf("RESULT value=%.6f elapsed=%.6f n=%ld workers=%d\n", value, elapsed, n, mp_cpu_count());
    return 0;
}
