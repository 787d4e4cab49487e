/* task_master — the master of the seeds' distributed example, on a
 * distributed pool: it puts ten random numbers as tasks on the Redis
 * server and prints the workers' results. Python's version serves a task
 * queue and a result queue with a BaseManager on port 5000 and authkey
 * "abc"; here the server is Redis, reached by URL and password, and the
 * workers are task_worker programs started anywhere.
 *
 *     task_master redis://:password@host:6379
 */
#include <multiproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The workers run it; the master only needs its name to match theirs. */
static int square(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    return 1;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "task_master: %s: %s\n", what, mp_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
    mp_manager *m;
    mp_pool *pool;
    int rc = mp_task_register("square", square);
    if (rc < 0 || (rc = mp_manager_open(&m, url)) < 0)
        return fail("connect", rc);
    rc = mp_pool_create(&pool, &(mp_pool_opts){.manager = m, .name = "tasks"});
    if (rc < 0)
        return fail("pool", rc);
    srand((unsigned)time(NULL));
    mp_async *res[10];
    for (int i = 0; i < 10; i++) {
        int n = rand() % 10001;
        printf("Put task %d...\n", n);
        fflush(stdout);
        rc = mp_pool_apply_async(pool, square, NULL, &n, sizeof(n), 64, NULL, NULL, NULL, &res[i]);
        if (rc < 0)
            return fail("put", rc);
    }
    printf("Try get results...\n");
    fflush(stdout);
    int failed = 0;
    for (int i = 0; i < 10; i++) {
        char r[65];
        size_t len = 0;
        rc = mp_async_get(res[i], r, 64, &len, 10);
        if (rc < 0) {
            printf("Result: %s\n", mp_err_name(rc)); /* Python: queue.Empty */
            failed = 1;
        } else {
            r[len] = '\0';
            printf("Result: %s\n", r);
        }
        mp_async_destroy(res[i]);
    }
    mp_pool_close(pool);
    mp_pool_destroy(pool);
    mp_worker_stop(m, "tasks"); /* manager.shutdown(): the workers go too */
    mp_manager_close(m);
    printf("master exit.\n");
    return failed;
}
