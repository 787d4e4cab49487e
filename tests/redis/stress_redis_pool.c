/* The distributed pool from several threads and processes at once: WTHREADS
 * worker threads (each with its own manager) and WPROCS worker processes
 * serve one pool name, while CLIENTS client threads (each with its own
 * manager and pool: a pool belongs to one thread at a time) run maps and
 * applies on it, with prefetch on some workers, and bursts of apply_async
 * with pauses, so that held tasks go out through the pool's sender thread
 * as well as through the caller. Every result must be right and land with
 * the client that asked, and every callback run once. Starts its own redis-server;
 * runs under ASan and TSan too (the task registry and the connection's
 * mutex are the shared state). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include "redis_server.h"
#include "stress.h"

#define WTHREADS 2
#define WPROCS   1
#define CLIENTS  3
#define ROUNDS   5
#define ITEMS    200

static mp_test_redis srv;
static volatile int stop_flag;

static int affine(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)ctx;
    int64_t x;
    if (in_len != sizeof(x) || out_cap < sizeof(x))
        return 1;
    memcpy(&x, in, sizeof(x));
    x = 3 * x + 1;
    memcpy(out, &x, sizeof(x));
    *out_len = sizeof(x);
    return 0;
}

static void *serve(void *arg)
{
    mp_manager *m;
    STRESS_OK(mp_manager_open(&m, srv.url));
    unsigned prefetch = (unsigned)(uintptr_t)arg;
    STRESS_OK(mp_worker_serve(m, "s", &(mp_worker_opts){.prefetch = prefetch, .stop = &stop_flag}));
    mp_manager_close(m);
    return NULL;
}

static void count(mp_async *a, void *user)
{
    (void)a;
    (*(int *)user)++; /* callbacks run in the thread that uses the pool */
}

static void *client(void *arg)
{
    int64_t base = (int64_t)(intptr_t)arg * 1000000;
    mp_manager *m;
    mp_pool *p;
    STRESS_OK(mp_manager_open(&m, srv.url));
    STRESS_OK(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = "s"}));
    int64_t in[ITEMS], out[ITEMS];
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < ITEMS; i++)
            in[i] = base + r * ITEMS + i;
        STRESS_OK(mp_pool_map(p,
                              &(mp_map_spec){.fn = affine,
                                             .in = in,
                                             .n = ITEMS,
                                             .in_size = 8,
                                             .out = out,
                                             .out_size = 8,
                                             .chunksize = 5},
                              60));
        for (int i = 0; i < ITEMS; i++)
            STRESS_CHECK(out[i] == 3 * in[i] + 1, "item %d: %lld", i, (long long)out[i]);
        int64_t y;
        STRESS_OK(mp_pool_apply(p, affine, NULL, &in[0], 8, &y, 8, NULL, 60));
        STRESS_CHECK(y == 3 * in[0] + 1, "apply");
        enum { BURST = 150 };
        mp_async *a[BURST];
        int calls = 0;
        for (int i = 0; i < BURST; i++) {
            STRESS_OK(
                mp_pool_apply_async(p, affine, NULL, &in[i], 8, 8, count, NULL, &calls, &a[i]));
            if (i % 37 == 36)
                usleep(1500); /* past the sender's 1 ms: its thread sends */
        }
        for (int i = BURST - 1; i >= 0; i--) {
            STRESS_OK(mp_async_get(a[i], &y, sizeof(y), NULL, 60));
            STRESS_CHECK(y == 3 * in[i] + 1, "apply_async %d", i);
            mp_async_destroy(a[i]);
        }
        STRESS_CHECK(calls == BURST, "%d callbacks for %d tasks", calls, BURST);
    }
    STRESS_OK(mp_pool_close(p));
    STRESS_OK(mp_pool_join(p, 60));
    mp_pool_destroy(p);
    mp_manager_close(m);
    return NULL;
}

int main(void)
{
    STRESS_DEADLINE(240);
    STRESS_CHECK(mp_test_redis_start(&srv, "stress") == 0, "redis-server: %s", srv.error);
    STRESS_OK(mp_task_register("affine", affine));
    pid_t procs[WPROCS];
    for (int i = 0; i < WPROCS; i++) {
        procs[i] = fork();
        STRESS_CHECK(procs[i] >= 0, "fork");
        if (procs[i] == 0) {
            mp_manager *m;
            int rc = mp_manager_open(&m, srv.url);
            if (rc == 0)
                rc = mp_worker_serve(m, "s", &(mp_worker_opts){.prefetch = 4});
            _exit(rc == 0 ? 0 : 1);
        }
    }
    pthread_t w[WTHREADS], c[CLIENTS];
    for (int i = 0; i < WTHREADS; i++)
        STRESS_CHECK(pthread_create(&w[i], NULL, serve, (void *)(uintptr_t)(i ? 8 : 1)) == 0,
                     "pthread_create");
    for (int i = 0; i < CLIENTS; i++)
        STRESS_CHECK(pthread_create(&c[i], NULL, client, (void *)(intptr_t)i) == 0,
                     "pthread_create");
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(c[i], NULL);
    __atomic_store_n(&stop_flag, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < WTHREADS; i++)
        pthread_join(w[i], NULL);
    mp_manager *m;
    STRESS_OK(mp_manager_open(&m, srv.url));
    STRESS_OK(mp_worker_stop(m, "s"));
    mp_manager_close(m);
    for (int i = 0; i < WPROCS; i++) {
        int st;
        STRESS_CHECK(waitpid(procs[i], &st, 0) == procs[i], "waitpid");
        STRESS_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker process status %d", st);
    }
    mp_test_redis_stop(&srv, 0);
    printf("stress_redis_pool: ok\n");
    return 0;
}
