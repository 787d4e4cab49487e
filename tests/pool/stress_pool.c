/* stress_pool — workers killed at random while a map of 10^5 tiny tasks
 * runs: every other item must complete with the right result, every lost
 * item must be reported as worker-lost with its pid and signal, and the
 * pool must go on and join. Some items also kill their own worker in the
 * middle of a task. Then the same under imap_unordered. Exits non-zero on
 * the first failed check. */
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <multiproc.h>

#define N       100000
#define MAXERRS 20000

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "stress_pool: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static _Atomic int64_t sink; /* keeps the busy loop from being optimised away */

/* Items whose task kills its own worker. */
static bool suicidal(int64_t x)
{
    return x % 9973 == 5000;
}

static int square(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len, (void)ctx;
    int64_t x = *(const int64_t *)in;
    if (suicidal(x))
        raise(SIGKILL);
    /* A few microseconds of work, so that the external kills land in the
     * middle of tasks rather than between them. */
    int64_t y = x;
    for (int k = 0; k < 1000; k++)
        y = (y * 31 + k) & 0xffff;
    atomic_store_explicit(&sink, y, memory_order_relaxed);
    *(int64_t *)out = x * x;
    return 0;
}

static unsigned rng = 12345;

static void kill_one(mp_pool *p, int *kills)
{
    pid_t pids[8];
    int n = mp_pool_pids(p, pids, 8);
    CHECK(n > 0);
    rng = rng * 1103515245u + 12345u;
    if (kill(pids[(rng >> 8) % (unsigned)n], SIGKILL) == 0)
        (*kills)++;
}

static void check_errors(const mp_task_error *errs, size_t nerr, bool *lost)
{
    for (size_t k = 0; k < nerr && k < MAXERRS; k++) {
        CHECK(errs[k].code == MP_EWORKERLOST);
        CHECK(errs[k].signal == SIGKILL);
        CHECK(errs[k].pid > 0);
        CHECK(errs[k].index < N && !lost[errs[k].index]);
        lost[errs[k].index] = true;
    }
}

static void map_under_kills(mp_pool *p, const int64_t *in)
{
    int64_t *out = malloc(N * sizeof *out);
    mp_task_error *errs = malloc(MAXERRS * sizeof *errs);
    bool *lost = calloc(N, sizeof *lost);
    CHECK(out && errs && lost);
    memset(out, 0xff, N * sizeof *out);
    size_t nerr = 0;
    mp_async *a = NULL;
    int kills = 0;
    CHECK(mp_pool_map_async(p,
                            &(mp_map_spec){.fn = square,
                                           .in = in,
                                           .n = N,
                                           .in_size = 8,
                                           .out = out,
                                           .out_size = 8,
                                           .chunksize = 50,
                                           .errors = errs,
                                           .errors_cap = MAXERRS,
                                           .n_errors = &nerr},
                            NULL, NULL, NULL, &a) == 0);
    while (mp_async_wait(a, 0.003) == MP_ETIMEDOUT)
        if (kills < 40)
            kill_one(p, &kills);
    int rc = mp_async_get(a, NULL, 0, NULL, 0);
    CHECK(rc == MP_EWORKERLOST);
    CHECK(nerr <= MAXERRS);
    check_errors(errs, nerr, lost);
    size_t ok = 0;
    for (int64_t i = 0; i < N; i++) {
        if (suicidal(i))
            CHECK(lost[i]);
        if (!lost[i]) {
            CHECK(out[i] == i * i);
            ok++;
        }
    }
    /* Each external kill loses at most the item its worker was running. */
    size_t self_kills = 0;
    for (int64_t i = 0; i < N; i++)
        self_kills += suicidal(i);
    CHECK(nerr <= self_kills + (size_t)kills);
    printf("map: %zu ok, %zu lost (%zu by the tasks, %d external kills)\n", ok, nerr, self_kills,
           kills);
    mp_async_destroy(a);
    free(out);
    free(errs);
    free(lost);
}

static void imap_under_kills(mp_pool *p, const int64_t *in)
{
    mp_imap *it = NULL;
    bool *seen = calloc(N, sizeof *seen);
    CHECK(seen);
    CHECK(mp_pool_imap(
              p,
              &(mp_map_spec){
                  .fn = square, .in = in, .n = N, .in_size = 8, .out_size = 8, .chunksize = 1},
              false, &it) == 0);
    size_t count = 0, lost = 0;
    int kills = 0, rc;
    int64_t v;
    size_t idx;
    mp_task_error e;
    while ((rc = mp_imap_next(it, &v, &idx, &e, 10)) != MP_EEOF) {
        CHECK(rc == 0 || rc == MP_EWORKERLOST);
        CHECK(idx < N && !seen[idx]);
        seen[idx] = true;
        count++;
        if (rc == 0)
            CHECK(v == (int64_t)idx * (int64_t)idx);
        else
            lost++;
        if (count % 5000 == 0 && kills < 10)
            kill_one(p, &kills);
    }
    CHECK(count == N);
    CHECK(lost <= (size_t)kills + 11);
    printf("imap_unordered: %zu results, %zu lost, %d external kills\n", count, lost, kills);
    mp_imap_destroy(it);
    free(seen);
}

int main(void)
{
    int64_t *in = malloc(N * sizeof *in);
    CHECK(in);
    for (int64_t i = 0; i < N; i++)
        in[i] = i;
    mp_pool *p = NULL;
    CHECK(mp_pool_create(&p, &(mp_pool_opts){.processes = 3}) == 0);
    map_under_kills(p, in);
    imap_under_kills(p, in);
    CHECK(mp_pool_close(p) == 0);
    CHECK(mp_pool_join(p, 30) == 0);
    mp_pool_destroy(p);

    /* The same map with threads as workers (no kills: a killed thread is a
     * killed process), which is what ThreadSanitizer checks here. */
    CHECK(mp_pool_create(&p, &(mp_pool_opts){.processes = 3, .threads = true}) == 0);
    int64_t *out = malloc(N * sizeof *out);
    CHECK(out);
    for (int64_t i = 0; i < N; i++)
        in[i] = i * 9973; /* never a suicidal item */
    CHECK(mp_pool_map(p,
                      &(mp_map_spec){.fn = square,
                                     .in = in,
                                     .n = N,
                                     .in_size = 8,
                                     .out = out,
                                     .out_size = 8,
                                     .chunksize = 7},
                      60) == 0);
    for (int64_t i = 0; i < N; i++)
        CHECK(out[i] == in[i] * in[i]);
    printf("thread pool map: ok\n");
    free(out);
    CHECK(mp_pool_close(p) == 0);
    CHECK(mp_pool_join(p, 30) == 0);
    mp_pool_destroy(p);
    free(in);
    puts("stress_pool: ok");
    return 0;
}
