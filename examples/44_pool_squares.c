/* 44_pool_squares — seed 004, the squares of [1..10] three ways:
 *
 *     def func(num):
 *         return num**2
 *
 *     lst = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
 *     pool = Pool(4)
 *     results = [pool.apply_async(func, (item, )) for item in lst]
 *     pool.close(); pool.join()
 *     print(type(results[0]))
 *     for res in results:
 *         print(res.get())
 *
 *     results = pool.map(func, lst)          # [1, 4, 9, ..., 100]
 *     results = pool.map_async(func, lst)    # then results.get()
 *
 * (Python needs a new Pool for the second and third parts, since the first
 * closed it; so does this port.)
 */
#include <stdint.h>
#include <stdio.h>

#include <multiproc.h>

static int func(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                void *ctx)
{
    (void)in_len, (void)out_cap, (void)ctx;
    int64_t num = *(const int64_t *)in;
    *(int64_t *)out = num * num;
    *out_len = sizeof(int64_t);
    return 0;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", what, mp_strerror(rc), mp_err_name(rc));
    return 1;
}

static void print_list(const int64_t *v, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++)
        printf("%s%lld", i ? ", " : "", (long long)v[i]);
    printf("]\n");
}

static int with_apply_async(const int64_t *lst)
{
    mp_pool *pool = NULL;
    mp_async *results[10] = {0};
    int rc = mp_pool_create(&pool, &(mp_pool_opts){.processes = 4});
    for (int i = 0; rc == 0 && i < 10; i++)
        rc = mp_pool_apply_async(pool, func, NULL, &lst[i], sizeof lst[i], sizeof(int64_t), NULL,
                                 NULL, NULL, &results[i]);
    if (rc == 0)
        rc = mp_pool_close(pool);
    if (rc == 0)
        rc = mp_pool_join(pool, MP_FOREVER);
    if (rc == 0)
        puts("<mp_async *>");
    for (int i = 0; rc == 0 && i < 10; i++) {
        int64_t v;
        rc = mp_async_get(results[i], &v, sizeof v, NULL, MP_FOREVER);
        if (rc == 0)
            printf("%lld\n", (long long)v);
    }
    for (int i = 0; i < 10; i++)
        mp_async_destroy(results[i]);
    mp_pool_destroy(pool);
    return rc < 0 ? fail("apply_async", rc) : 0;
}

static int with_map(const int64_t *lst, bool async)
{
    mp_pool *pool = NULL;
    mp_async *res = NULL;
    int64_t out[10];
    mp_map_spec spec = {.fn = func, .in = lst, .n = 10, .in_size = 8, .out = out, .out_size = 8};
    int rc = mp_pool_create(&pool, &(mp_pool_opts){.processes = 4});
    if (rc == 0 && !async)
        rc = mp_pool_map(pool, &spec, MP_FOREVER);
    if (rc == 0 && async)
        rc = mp_pool_map_async(pool, &spec, NULL, NULL, NULL, &res);
    if (rc == 0)
        rc = mp_pool_close(pool);
    if (rc == 0)
        rc = mp_pool_join(pool, MP_FOREVER);
    if (rc == 0 && async)
        rc = mp_async_get(res, NULL, 0, NULL, MP_FOREVER);
    if (rc == 0)
        print_list(out, 10);
    mp_async_destroy(res);
    mp_pool_destroy(pool);
    return rc < 0 ? fail(async ? "map_async" : "map", rc) : 0;
}

int main(void)
{
    const int64_t lst[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: apply_async(func, (item,)) for item in lst; close; join; res.get() ===");
    if (with_apply_async(lst))
        return 1;
    puts("=== seed: pool.map(func, lst) ===");
    if (with_map(lst, false))
        return 1;
    puts("=== seed: pool.map_async(func, lst); close; join; results.get() ===");
    return with_map(lst, true);
}
