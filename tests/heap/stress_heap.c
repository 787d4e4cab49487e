/* Stress of the shared heap, also run under ThreadSanitizer:
 *   1. threads allocating, checking and freeing at once, freeing each
 *      other's blocks;
 *   2. fault injection: processes allocating and freeing at random are
 *      SIGKILLed at random moments, rounds after rounds, while others work
 *      to the end; after each round the heap must be consistent
 *      (mp_heap_check), the survivors must have finished (bounded by
 *      timeouts: no hang) and the parent must still allocate;
 *   3. exec'd programs creating the heap at the family address. */
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "multiproc.h"
#include "stress.h"

extern char **environ;

#define THREADS 4
#define SLOTS   256
/* The sanitizers slow every access (ThreadSanitizer tenfold): fewer rounds
 * keep the test to a few seconds there too. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define THREAD_OPS  4000
#define KILL_ROUNDS 20
#else
#define THREAD_OPS  40000
#define KILL_ROUNDS 40
#endif

static _Atomic(uint32_t *) slots[SLOTS];

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A block holds its size in words and a fill derived from it, so that an
 * overlap of two live blocks is noticed by whichever frees second. */
static uint32_t *make_block(uint64_t *seed)
{
    uint64_t r = rnd(seed);
    size_t words = r % 16 == 0 ? 2048 + r % 30000 : 1 + r % 300;
    uint32_t *b = mp_alloc(words * 4);
    if (!b)
        return NULL;
    for (size_t i = 0; i < words; i++)
        if (b[i] != 0)
            return NULL;
    b[0] = (uint32_t)words;
    for (size_t i = 1; i < words; i++)
        b[i] = (uint32_t)words ^ (uint32_t)i;
    return b;
}

static int check_block(const uint32_t *b)
{
    size_t words = b[0];
    for (size_t i = 1; i < words; i++)
        if (b[i] != ((uint32_t)words ^ (uint32_t)i))
            return -1;
    return 0;
}

static void *thread_main(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;
    for (int i = 0; i < THREAD_OPS; i++) {
        uint32_t *b = make_block(&seed);
        STRESS_CHECK(b != NULL, "thread allocation failed or was not zeroed");
        uint32_t *old = atomic_exchange(&slots[rnd(&seed) % SLOTS], b);
        if (old) {
            STRESS_CHECK(check_block(old) == 0, "block %p overwritten", (void *)old);
            mp_free(old);
        }
    }
    return NULL;
}

static void threads_stress(void)
{
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        STRESS_CHECK(pthread_create(&t[i], NULL, thread_main, (void *)(i + 1)) == 0, "create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < SLOTS; i++) {
        uint32_t *b = atomic_exchange(&slots[i], NULL);
        if (b) {
            STRESS_CHECK(check_block(b) == 0, "block %p overwritten", (void *)b);
            mp_free(b);
        }
    }
    STRESS_OK(mp_heap_check());
    printf("stress_heap: %d threads x %d alloc/free: ok\n", THREADS, THREAD_OPS);
}

/* A child allocating and freeing at random. ops < 0: forever (until killed). */
static int churn(const void *arg, size_t len)
{
    (void)len;
    const long *a = arg;
    uint64_t seed = (uint64_t)a[0] | 1;
    long ops = a[1];
    uint32_t *live[64] = {0};
    for (long i = 0; ops < 0 || i < ops; i++) {
        unsigned k = (unsigned)(rnd(&seed) % 64);
        if (live[k]) {
            if (check_block(live[k]) != 0)
                return 3;
            mp_free(live[k]);
        }
        live[k] = make_block(&seed);
        if (!live[k])
            return 4;
    }
    for (int k = 0; k < 64; k++)
        mp_free(live[k]);
    return 0;
}

static mp_process *start_churn(long seed, long ops)
{
    long args[2] = {seed, ops};
    mp_process *p;
    STRESS_OK(mp_process_create(
        &p, &(mp_process_opts){.target = churn, .args = args, .args_len = sizeof args}));
    STRESS_OK(mp_process_start(p));
    return p;
}

static void kill_stress(void)
{
    uint64_t seed = (uint64_t)time(NULL) | 1;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        mp_process *victims[3], *survivor = start_churn(round * 7 + 1, 3000);
        for (int i = 0; i < 3; i++)
            victims[i] = start_churn((long)rnd(&seed), -1);
        struct timespec ts = {0, (long)(rnd(&seed) % 15000000) + 500000};
        nanosleep(&ts, NULL);
        for (int i = 0; i < 3; i++) {
            STRESS_OK(mp_process_kill(victims[i]));
            mp_process_destroy(victims[i]);
        }
        STRESS_OK(mp_process_join(survivor, 60));
        int code = -1;
        STRESS_OK(mp_process_exitcode(survivor, &code));
        STRESS_CHECK(code == 0, "round %d: survivor exit code %d", round, code);
        mp_process_destroy(survivor);
        int rc = mp_heap_check();
        STRESS_CHECK(rc == 0, "round %d: heap check: %s", round, mp_err_name(rc));
        void *p = mp_alloc(100), *q = mp_alloc(100000);
        STRESS_CHECK(p && q, "round %d: the parent cannot allocate any more", round);
        mp_free(p);
        mp_free(q);
    }
    mp_heap_stats st;
    STRESS_OK(mp_heap_get_stats(&st));
    STRESS_CHECK(st.leaked == 0, "%zu bytes of spans without a header", st.leaked);
    printf("stress_heap: %d rounds of 3 kills: heap consistent; %llu locks taken over from "
           "the dead, %zu KiB of spans in use, %zu KiB leaked\n",
           KILL_ROUNDS, (unsigned long long)st.repairs, st.span_bytes >> 10, st.leaked >> 10);
}

static void exec_probes(void)
{
    char *argv[] = {MP_HEAP_PROBE, NULL};
    int taken = 0;
    for (int i = 0; i < 50; i++) {
        pid_t pid;
        STRESS_CHECK(posix_spawn(&pid, MP_HEAP_PROBE, NULL, NULL, argv, environ) == 0, "spawn");
        int st;
        STRESS_CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
        STRESS_CHECK(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3),
                     "probe failed (status %#x)", st);
        taken += WEXITSTATUS(st) == 3;
    }
    STRESS_CHECK(taken == 0, "family address taken in %d of 50 exec'd programs", taken);
    printf("stress_heap: 50 exec'd programs created the heap at the family address\n");
}

int main(void)
{
    STRESS_DEADLINE(240);
    setvbuf(stdout, NULL, _IOLBF, 0);
    STRESS_OK(mp_init(&(mp_init_opts){.heap_size = (size_t)1 << 30}));
    threads_stress();
    kill_stress();
    exec_probes();
    return 0;
}
