/* 41_pool_map_imap — seed 000, map, imap_unordered and get(timeout):
 *
 *     def f(x):
 *         return x*x
 *
 *     pool = Pool(processes=4)
 *     print("map: ", pool.map(f, range(10)))
 *     print("imap:")
 *     for i in pool.imap_unordered(f, range(10)):
 *         print(i)
 *     res = pool.apply_async(f, [10])
 *     print("apply:", res.get(timeout=1))     # prints "100"
 *     res = pool.apply_async(sleep, [10])
 *     print(res.get(timeout=1))               # raises multiprocessing.TimeoutError
 *
 * The sleeping task sleeps 2 s and get waits 0.5 s, instead of 10 s and
 * 1 s, to keep the example short; the pool is terminated at the end, which
 * stops the sleeper. imap_unordered gives results as they complete.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <multiproc.h>

static int f(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len, void *ctx)
{
    (void)in_len, (void)out_cap, (void)ctx;
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x;
    *out_len = sizeof(int64_t);
    return 0;
}

static int sleeper(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                   void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)ctx;
    nanosleep(&(struct timespec){.tv_sec = *(const int *)in}, NULL);
    *out_len = 0;
    return 0;
}

static int report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
    return 1;
}

static int run(mp_pool *pool)
{
    int64_t in[10], out[10];
    for (int i = 0; i < 10; i++)
        in[i] = i;
    mp_map_spec spec = {.fn = f, .in = in, .n = 10, .in_size = 8, .out = out, .out_size = 8};
    int rc = mp_pool_map(pool, &spec, MP_FOREVER);
    if (rc < 0)
        return report("mp_pool_map", rc);
    printf("map:  [");
    for (int i = 0; i < 10; i++)
        printf("%s%lld", i ? ", " : "", (long long)out[i]);
    printf("]\nimap:\n");

    mp_imap *it = NULL;
    rc = mp_pool_imap(pool, &(mp_map_spec){.fn = f, .in = in, .n = 10, .in_size = 8, .out_size = 8},
                      false, &it);
    if (rc < 0)
        return report("mp_pool_imap", rc);
    int64_t v;
    while ((rc = mp_imap_next(it, &v, NULL, NULL, MP_FOREVER)) == 0)
        printf("%lld\n", (long long)v);
    mp_imap_destroy(it);
    if (rc != MP_EEOF)
        return report("mp_imap_next", rc);

    mp_async *res = NULL;
    int64_t ten = 10;
    rc = mp_pool_apply_async(pool, f, NULL, &ten, sizeof ten, sizeof v, NULL, NULL, NULL, &res);
    if (rc == 0)
        rc = mp_async_get(res, &v, sizeof v, NULL, 1.0);
    mp_async_destroy(res);
    if (rc < 0)
        return report("apply_async(f, 10).get", rc);
    printf("apply: %lld\n", (long long)v);

    int secs = 2;
    rc = mp_pool_apply_async(pool, sleeper, NULL, &secs, sizeof secs, 0, NULL, NULL, NULL, &res);
    if (rc < 0)
        return report("mp_pool_apply_async", rc);
    rc = mp_async_get(res, NULL, 0, NULL, 0.5);
    printf("get(timeout=0.5): %s (%s)\n", mp_err_name(rc), mp_strerror(rc));
    mp_async_destroy(res);
    return rc == MP_ETIMEDOUT ? 0 : 1;
}

int main(void)
{
    mp_pool *pool = NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts(
        "=== seed: map, imap_unordered, apply_async(f, 10).get(timeout), a get that times out ===");
    int rc = mp_pool_create(&pool, &(mp_pool_opts){.processes = 4});
    if (rc < 0)
        return report("mp_pool_create", rc);
    int status = run(pool);
    mp_pool_terminate(pool);
    mp_pool_destroy(pool);
    return status;
}
