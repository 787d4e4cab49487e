/* 45_pool_sum_squares — seed 000, the performance test: the sum of the
 * squares of 1..10^7 through a pool.
 *
 *     def f(x):
 *         return x**2
 *
 *     pool = Pool(processes=4)
 *     result = pool.map_async(f, xrange(1, 10000001))
 *     pool.close(); pool.join()
 *     print(sum(result.get()))        # 333333383333335000000
 *
 * The sum needs more than 64 bits: it is kept in an unsigned __int128.
 * Done twice: with map over an array of 10^7 items, as the seed does, then
 * with the parallel-for and a per-chunk reduction, which needs no arrays.
 * The times go to stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <multiproc.h>

#define N 10000000

__extension__ typedef unsigned __int128 u128;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void print_u128(u128 v)
{
    char buf[48];
    int i = (int)sizeof buf - 1;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    puts(&buf[i]);
}

static int f(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len, void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len, (void)ctx;
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x;
    return 0;
}

/* One chunk of the parallel-for: the sum of the squares of [begin, end). */
static int sum_chunk(int64_t begin, int64_t end, void *acc, void *ctx)
{
    (void)ctx;
    u128 s = 0;
    for (int64_t x = begin; x < end; x++)
        s = s + (uint64_t)(x * x);
    *(u128 *)acc = s;
    return 0;
}

static void add(void *total, const void *partial, void *ctx)
{
    (void)ctx;
    *(u128 *)total = *(u128 *)total + *(const u128 *)partial;
}

static int with_map(mp_pool *pool)
{
    int64_t *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    int rc = in && out ? 0 : MP_ENOMEM;
    double t0 = now();
    for (int64_t i = 0; rc == 0 && i < N; i++)
        in[i] = i + 1;
    if (rc == 0)
        rc = mp_pool_map(
            pool,
            &(mp_map_spec){.fn = f, .in = in, .n = N, .in_size = 8, .out = out, .out_size = 8},
            MP_FOREVER);
    u128 sum = 0;
    for (int64_t i = 0; rc == 0 && i < N; i++)
        sum = sum + (uint64_t)out[i];
    if (rc == 0) {
        print_u128(sum);
        fprintf(stderr, "map: %.3f s\n", now() - t0);
    }
    free(in);
    free(out);
    return rc;
}

static int with_for(mp_pool *pool)
{
    u128 sum;
    double t0 = now();
    int rc = mp_pool_for(pool,
                         &(mp_for_spec){.fn = sum_chunk,
                                        .begin = 1,
                                        .end = N + 1,
                                        .acc_size = sizeof(u128),
                                        .reduce = add,
                                        .result = &sum},
                         MP_FOREVER);
    if (rc == 0) {
        print_u128(sum);
        fprintf(stderr, "parallel-for: %.3f s\n", now() - t0);
    }
    return rc;
}

int main(void)
{
    mp_pool *pool = NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: sum(Pool(4).map_async(f, xrange(1, 10000001)).get()) ===");
    int rc = mp_pool_create(&pool, &(mp_pool_opts){.processes = 4});
    if (rc == 0)
        rc = with_map(pool);
    if (rc == 0) {
        puts("=== the same with mp_pool_for and a per-chunk reduction ===");
        rc = with_for(pool);
    }
    if (rc == 0)
        rc = mp_pool_close(pool);
    if (rc == 0)
        rc = mp_pool_join(pool, MP_FOREVER);
    if (rc < 0)
        fprintf(stderr, "pool failed: %s (%s)\n", mp_strerror(rc), mp_err_name(rc));
    mp_pool_destroy(pool);
    return rc < 0;
}
