/* Floors of lock_ns, lock_handoff_us and value_incr_2proc_s: what a C
 * programmer writes by hand, with no library.
 *
 *     floor_lock lock <iterations>        process-shared pthread mutex
 *     floor_lock robust <iterations>      the same, robust (a diagnostic)
 *     floor_lock handoff <round trips>    raw futex ping-pong
 *     floor_lock value_incr <increments>  process-shared mutex + an int
 *
 * lock/robust: pthread_mutex_lock + unlock on a PTHREAD_PROCESS_SHARED
 *   mutex in MAP_SHARED memory. RESULT value = ns per pair.
 * handoff: two processes pass a turn through one word with FUTEX_WAIT /
 *   FUTEX_WAKE. RESULT value = microseconds per one-way hand-off.
 * value_incr: two processes each increment an int under a process-shared
 *   mutex. RESULT value = seconds for 10^6 increments each.
 *
 * BENCH_PIN pins the two processes (role 0 the parent, 1 the child).
 */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bench_common.h"

typedef struct shm {
    pthread_mutex_t m;
    _Atomic uint32_t word;
    _Atomic uint32_t ready;
    int counter;
} shm;

static shm *map_shared(bool robust)
{
    shm *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        bench_die("mmap: %s", strerror(errno));
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (robust)
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(&s->m, &a) != 0)
        bench_die("pthread_mutex_init");
    pthread_mutexattr_destroy(&a);
    return s;
}

static void futex_wait(_Atomic uint32_t *w, uint32_t v)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void reap(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            bench_die("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("child failed (status %#x)", status);
}

static void uncontended(long n, bool robust)
{
    shm *s = map_shared(robust);
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&s->m);
        pthread_mutex_unlock(&s->m);
    }
    double dt = bench_now() - t0;
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", dt * 1e9 / (double)n, dt, n);
}

/* The parent owns odd values of word, the child even ones. */
static void pass_turns(shm *s, long n, uint32_t mine)
{
    for (long i = 0; i < n; i++) {
        uint32_t w;
        while (((w = atomic_load(&s->word)) & 1u) != mine)
            futex_wait(&s->word, w);
        atomic_store(&s->word, w + 1);
        futex_wake(&s->word);
    }
}

static void handoff(long n)
{
    shm *s = map_shared(false);
    atomic_store(&s->word, 0);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        bench_pin(1);
        pass_turns(s, n, 1);
        _exit(0);
    }
    bench_pin(0);
    double t0 = bench_now();
    pass_turns(s, n, 0);
    uint32_t w;
    while ((w = atomic_load(&s->word)) != 2u * (uint32_t)n)
        futex_wait(&s->word, w);
    double dt = bench_now() - t0;
    reap(pid);
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", dt * 1e6 / (2.0 * (double)n), dt, n);
}

static void increment(shm *s, long n)
{
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&s->m);
        s->counter++;
        pthread_mutex_unlock(&s->m);
    }
}

static void value_incr(long n)
{
    shm *s = map_shared(false);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        bench_pin(1);
        atomic_fetch_add(&s->ready, 1);
        while (atomic_load(&s->ready) < 2)
            futex_wait(&s->ready, 1);
        increment(s, n);
        _exit(0);
    }
    bench_pin(0);
    while (atomic_load(&s->ready) < 1)
        ;
    atomic_fetch_add(&s->ready, 1);
    futex_wake(&s->ready);
    double t0 = bench_now();
    increment(s, n);
    reap(pid);
    double dt = bench_now() - t0;
    if ((long)s->counter != 2 * n)
        bench_die("lost increments");
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", dt * 1e6 / (double)n, dt, n);
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "lock|robust|handoff|value_incr <iterations>");
    if (strcmp(argv[1], "lock") == 0)
        uncontended(n, false);
    else if (strcmp(argv[1], "robust") == 0)
        uncontended(n, true);
    else if (strcmp(argv[1], "handoff") == 0)
        handoff(n);
    else if (strcmp(argv[1], "value_incr") == 0)
        value_incr(n);
    else
        bench_die("unknown mode '%s'", argv[1]);
    return 0;
}
