/* 43_pool_hundred — seed 001, a pool of 10 workers running 100 tasks:
 *
 *     def func(args):
 *         time.sleep(1)
 *         print("正在执行进程 ", args)
 *
 *     p = Pool(10)
 *     for num in range(100):
 *         p.apply_async(func=func, args=(num,))
 *     p.close()
 *     p.join()
 *
 * Each task sleeps 0.05 s instead of 1 s: ten at a time, about 0.5 s in all.
 * The results are not kept: each mp_async is destroyed at once, and the
 * pool still runs its task (Python drops the AsyncResult the same way).
 */
#include <stdio.h>
#include <time.h>

#include <multiproc.h>

static int func(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)ctx;
    nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
    printf("正在执行进程  %d\n", *(const int *)in);
    *out_len = 0;
    return 0;
}

int main(void)
{
    mp_pool *p = NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: Pool(10), 100 x apply_async(func), close, join (sleeps / 20) ===");
    int rc = mp_pool_create(&p, &(mp_pool_opts){.processes = 10});
    for (int num = 0; rc == 0 && num < 100; num++) {
        mp_async *a = NULL;
        rc = mp_pool_apply_async(p, func, NULL, &num, sizeof num, 0, NULL, NULL, NULL, &a);
        mp_async_destroy(a);
    }
    if (rc == 0)
        rc = mp_pool_close(p);
    if (rc == 0)
        rc = mp_pool_join(p, MP_FOREVER);
    if (rc == 0)
        puts("joined");
    else
        fprintf(stderr, "pool failed: %s (%s)\n", mp_strerror(rc), mp_err_name(rc));
    mp_pool_destroy(p);
    return rc == 0 ? 0 : 1;
}
