/* Floor of queue_1MiB_GiB_per_s and queue_1MiB_zerocopy_GiB_per_s: the
 * cost of moving 1 MiB once, by hand: one memcpy(3) of 1 MiB per message
 * between two reused buffers, in one process, with no queue, no lock and
 * no second process.
 *
 *     floor_memcpy mib <messages>
 *
 * A copying queue moves each message twice (into shared memory, out of
 * it), so its cost_vs_floor cannot go below about 2; a zero-copy queue
 * moves nothing and can beat this floor. RESULT value = GiB/s.
 */
#include "bench_common.h"

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "mib <messages>");
    if (strcmp(argv[1], "mib") != 0)
        bench_die("unknown mode '%s'", argv[1]);
    char *src = malloc(BENCH_MIB), *dst = malloc(BENCH_MIB);
    if (!src || !dst)
        bench_die("out of memory");
    memset(src, 'x', BENCH_MIB);
    memset(dst, 0, BENCH_MIB);
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        src[0] = (char)i;
        memcpy(dst, src, BENCH_MIB);
        /* Keep the copy: the compiler must not drop it. */
        __asm__ volatile("" : : "r"(dst) : "memory");
    }
    double dt = bench_now() - t0;
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", (double)n * (double)BENCH_MIB / BENCH_GIB / dt,
           dt, n);
    free(src);
    free(dst);
    return 0;
}
