/* Ctrl-C during a pool map: the handler triggers a cancellation object,
 * the map returns MP_ECANCELED at once (its items not started are
 * withdrawn), and the pool is still usable. In CPython a KeyboardInterrupt
 * inside Pool.map is the classic hang; here the pattern is a few lines.
 * The program sends itself SIGINT after 0.3 s, as a user pressing Ctrl-C
 * (a terminal's Ctrl-C reaches the workers too: a worker killed by it is
 * replaced, and the item it ran fails with MP_EWORKERLOST). */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <multiproc.h>

static mp_cancel *stop;

static void on_sigint(int sig)
{
    (void)sig;
    mp_cancel_trigger(stop); /* async-signal-safe */
}

static int slow_square(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                       void *ctx)
{
    (void)in_len, (void)out_cap, (void)ctx;
    int64_t x;
    memcpy(&x, in, sizeof(x));
    usleep(100 * 1000);
    x *= x;
    memcpy(out, &x, sizeof(x));
    *out_len = sizeof(x);
    return 0;
}

static void *press_ctrl_c(void *arg)
{
    (void)arg;
    usleep(300 * 1000);
    kill(getpid(), SIGINT);
    return NULL;
}

int main(void)
{
    printf("=== Ctrl-C during Pool.map: mp_cancel + a SIGINT handler ===\n");
    mp_pool *pool;
    if (mp_pool_create(&pool, &(mp_pool_opts){.processes = 2}) < 0 || mp_cancel_create(&stop) < 0)
        return 1;
    mp_cancel_set_current(stop); /* this thread's blocking calls watch it */
    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = i;
    pthread_t th;
    pthread_create(&th, NULL, press_ctrl_c, NULL);
    int rc = mp_pool_map(pool,
                         &(mp_map_spec){.fn = slow_square,
                                        .in = in,
                                        .n = 100,
                                        .in_size = sizeof(int64_t),
                                        .out = out,
                                        .out_size = sizeof(int64_t),
                                        .chunksize = 1},
                         MP_FOREVER);
    pthread_join(th, NULL);
    printf("map of 100 slow items: %s (Ctrl-C after 0.3 s)\n", mp_err_name(rc));

    /* The pool goes on: the next work runs at once. */
    mp_cancel_reset(stop);
    rc = mp_pool_map(pool,
                     &(mp_map_spec){.fn = slow_square,
                                    .in = in,
                                    .n = 4,
                                    .in_size = sizeof(int64_t),
                                    .out = out,
                                    .out_size = sizeof(int64_t)},
                     MP_FOREVER);
    printf("next map: %s, squares %lld %lld %lld %lld\n", mp_err_name(rc), (long long)out[0],
           (long long)out[1], (long long)out[2], (long long)out[3]);
    mp_pool_close(pool);
    mp_pool_join(pool, MP_FOREVER);
    mp_pool_destroy(pool);
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(stop);
    return 0;
}
