/* 42_pool_results — seed 000, results collected after close/join:
 *
 *     def func(msg):
 *         print("msg:", msg)
 *         time.sleep(1)
 *         print("end")
 *         return "done " + msg
 *
 *     pool = multiprocessing.Pool(processes=4)
 *     for i in xrange(3):
 *         result.append(pool.apply_async(func, ("hello %d" % i, )))
 *     pool.close(); pool.join()
 *     for res in result:
 *         print(":::", res.get())
 *     print("Sub-process(es) done.")
 *
 * The task sleeps 0.2 s instead of 1 s. Its result is bytes (a string
 * here) that get copies out.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <multiproc.h>

static int func(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                void *ctx)
{
    (void)ctx;
    const char *msg = in;
    if (in_len == 0 || msg[in_len - 1] != '\0')
        return 22; /* the task's own error code: not a C string */
    printf("msg: %s\n", msg);
    nanosleep(&(struct timespec){.tv_nsec = 200000000}, NULL);
    printf("end\n");
    int n = snprintf(out, out_cap, "done %s", msg);
    if (n < 0 || (size_t)n >= out_cap)
        return 34; /* too long for the result buffer */
    *out_len = (size_t)n + 1;
    return 0;
}

int main(void)
{
    mp_pool *pool = NULL;
    mp_async *result[3] = {0};
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: apply_async(func, (\"hello %d\",)) x3, close, join, res.get() ===");
    int rc = mp_pool_create(&pool, &(mp_pool_opts){.processes = 4});
    for (int i = 0; rc == 0 && i < 3; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "hello %d", i);
        rc = mp_pool_apply_async(pool, func, NULL, msg, strlen(msg) + 1, 64, NULL, NULL, NULL,
                                 &result[i]);
    }
    if (rc == 0)
        rc = mp_pool_close(pool);
    if (rc == 0)
        rc = mp_pool_join(pool, MP_FOREVER);
    for (int i = 0; rc == 0 && i < 3; i++) {
        char buf[64];
        rc = mp_async_get(result[i], buf, sizeof buf, NULL, MP_FOREVER);
        if (rc == 0)
            printf("::: %s\n", buf);
    }
    if (rc == 0) {
        puts("Sub-process(es) done.");
        status = 0;
    } else {
        fprintf(stderr, "pool failed: %s (%s)\n", mp_strerror(rc), mp_err_name(rc));
    }
    for (int i = 0; i < 3; i++)
        mp_async_destroy(result[i]);
    mp_pool_destroy(pool);
    return status;
}
