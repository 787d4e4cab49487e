/* Floors of the pool rows: what a C programmer writes by hand.
 *
 *     floor_pool sumsq_map N   the seeds' map + sum with an OpenMP parallel
 *                              loop (same cold arrays, same serial fill and sum)
 *     floor_pool sumsq_for N   the sum of squares as one OpenMP parallel
 *                              region: each thread sums its static share
 *                              with bench_sumsq_range (the library's chunks
 *                              use the same) into a 128-bit partial
 *     floor_pool roundtrip N   futex ping-pong between two processes over a
 *                              shared word; value = microseconds per round trip
 *     floor_pool roundtrip_spin N  the same hand-off with both sides spinning
 *                              on the word (no system call): the cost of
 *                              moving one cache line there and back, the
 *                              limit for any hand-off between two CPUs
 *
 * Built with -fopenmp (this program only).
 */
#include <linux/futex.h>
#include <sched.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bench_common.h"

#define SUMSQ_N 10000000

__extension__ typedef unsigned __int128 u128;

static const u128 expected_sum = (u128)333333383333335ULL * 1000000u;

static u128 sumsq_map(void)
{
    int64_t *in = malloc(SUMSQ_N * sizeof *in), *out = malloc(SUMSQ_N * sizeof *out);
    if (!in || !out)
        bench_die("out of memory");
    for (int64_t i = 0; i < SUMSQ_N; i++)
        in[i] = i + 1;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < SUMSQ_N; i++)
        out[i] = in[i] * in[i];
    u128 sum = 0;
    for (int64_t i = 0; i < SUMSQ_N; i++)
        sum = sum + (uint64_t)out[i];
    free(in);
    free(out);
    return sum;
}

static u128 sumsq_for(void)
{
    u128 sum = 0;
#pragma omp parallel
    {
        /* Each thread's static share of 1..10^7, summed by the same inner
         * loop as the library's chunks. */
        int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t lo = 1 + SUMSQ_N * t / nt, hi = 1 + SUMSQ_N * (t + 1) / nt;
        u128 part = bench_sumsq_range(lo, hi);
#pragma omp critical
        sum = sum + part;
    }
    return sum;
}

static void futex_wait(_Atomic uint32_t *w, uint32_t v)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* The parent sets the word to 1 and waits for 0; the child waits for 1,
 * sets 0. One request and one reply per round trip, like a task. */
static void roundtrip(long n)
{
    _Atomic uint32_t *w =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED)
        bench_die("mmap");
    atomic_store(w, 0);
    pid_t c = fork();
    if (c < 0)
        bench_die("fork");
    if (c == 0) {
        for (long i = 0; i < n; i++) {
            while (atomic_load(w) != 1)
                futex_wait(w, 0);
            atomic_store(w, 0);
            futex_wake(w);
        }
        _exit(0);
    }
    for (long i = 0; i < n; i++) {
        atomic_store(w, 1);
        futex_wake(w);
        while (atomic_load(w) != 0)
            futex_wait(w, 1);
    }
    waitpid(c, NULL, 0);
}

/* The parent writes the round number, the child answers with its
 * negation; both spin (yielding now and then, to stay correct on one CPU). */
static void roundtrip_spin(long n)
{
    _Atomic int64_t *w =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED)
        bench_die("mmap");
    atomic_store(w, 0);
    pid_t c = fork();
    if (c < 0)
        bench_die("fork");
    if (c == 0) {
        for (int64_t i = 1; i <= n; i++) {
            for (unsigned spins = 0; atomic_load_explicit(w, memory_order_acquire) != i;)
                if (++spins % 4096 == 0)
                    sched_yield();
            atomic_store_explicit(w, -i, memory_order_release);
        }
        _exit(0);
    }
    for (int64_t i = 1; i <= n; i++) {
        atomic_store_explicit(w, i, memory_order_release);
        for (unsigned spins = 0; atomic_load_explicit(w, memory_order_acquire) != -i;)
            if (++spins % 4096 == 0)
                sched_yield();
    }
    waitpid(c, NULL, 0);
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "sumsq_map|sumsq_for|roundtrip|roundtrip_spin <iterations>");
    const char *mode = argv[1];
    double t0 = bench_now(), value;
    if (strcmp(mode, "sumsq_map") == 0 || strcmp(mode, "sumsq_for") == 0) {
        int map = mode[6] == 'm';
        for (long i = 0; i < n; i++)
            if ((map ? sumsq_map() : sumsq_for()) != expected_sum)
                bench_die("wrong sum");
        value = (bench_now() - t0) / (double)n;
    } else if (strcmp(mode, "roundtrip") == 0 || strcmp(mode, "roundtrip_spin") == 0) {
        if (mode[9] == '_')
            roundtrip_spin(n);
        else
            roundtrip(n);
        value = (bench_now() - t0) * 1e6 / (double)n;
    } else {
        bench_die("unknown mode '%s'", mode);
    }
    printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", value, bench_now() - t0, n);
    return 0;
}
