/* 40_pool_apply_async — seed 000 (also 002, 003), a pool of 4 workers and
 * five apply_async tasks:
 *
 *     def long_time_task(name):
 *         print('运行任务 %s (%s)...' % (name, os.getpid()))
 *         time.sleep(random.random() * 3)
 *         print('任务 %s 执行了 %0.2f 秒.' % (name, (end - start)))
 *
 *     p = Pool(4)
 *     for i in range(5):
 *         p.apply_async(long_time_task, args=(i,))
 *     print('等待所有子进程完成...')
 *     p.close(); p.join()
 *     print('所有子进程完成了.')
 *
 * Tasks 0-3 start at once; task 4 waits for a free worker. The sleeps are
 * random() * 0.3 s instead of * 3 s, to keep the example short.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <multiproc.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int long_time_task(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                          void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)ctx;
    int name = *(const int *)in;
    printf("运行任务 %d (%d)...\n", name, (int)getpid());
    srand((unsigned)getpid() ^ (unsigned)name);
    double start = now();
    long ns = (long)((double)rand() / RAND_MAX * 0.3e9);
    nanosleep(&(struct timespec){.tv_nsec = ns}, NULL);
    printf("任务 %d 执行了 %0.2f 秒.\n", name, now() - start);
    *out_len = 0;
    return 0;
}

int main(void)
{
    mp_pool *p = NULL;
    mp_async *res[5] = {0};
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: Pool(4), five apply_async(long_time_task), close, join (sleeps / 10) ===");
    printf("父进程 %d.\n", (int)getpid());
    int rc = mp_pool_create(&p, &(mp_pool_opts){.processes = 4});
    for (int i = 0; rc == 0 && i < 5; i++)
        rc = mp_pool_apply_async(p, long_time_task, NULL, &i, sizeof i, 0, NULL, NULL, NULL,
                                 &res[i]);
    if (rc == 0) {
        puts("等待所有子进程完成...");
        rc = mp_pool_close(p);
    }
    if (rc == 0)
        rc = mp_pool_join(p, MP_FOREVER);
    for (int i = 0; rc == 0 && i < 5; i++)
        rc = mp_async_get(res[i], NULL, 0, NULL, 0);
    if (rc == 0) {
        puts("所有子进程完成了.");
        status = 0;
    } else {
        fprintf(stderr, "pool failed: %s (%s)\n", mp_strerror(rc), mp_err_name(rc));
    }
    for (int i = 0; i < 5; i++)
        mp_async_destroy(res[i]);
    mp_pool_destroy(p);
    return status;
}
