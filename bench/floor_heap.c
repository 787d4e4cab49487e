/* Floor of alloc_64B_ns: glibc malloc + free of 64 bytes (private memory,
 * the thread cache's fast path), in the same loop as bench_heap.
 *
 *     floor_heap alloc64 <iterations>
 *
 * RESULT value = nanoseconds per malloc + free.
 */
#include "bench_common.h"

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "alloc64 <iterations>");
    if (strcmp(argv[1], "alloc64") != 0)
        bench_die("unknown mode '%s'", argv[1]);
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        void *p = malloc(64);
        if (!p)
            bench_die("malloc failed");
        /* The empty asm makes p escape, so the pair cannot be elided. */
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
    double dt = bench_now() - t0;
    printf("RESULT value=%.3f elapsed=%.6f n=%ld\n", dt * 1e9 / (double)n, dt, n);
    return 0;
}
