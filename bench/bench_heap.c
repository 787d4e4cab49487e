/* alloc_64B_ns with the library: mp_alloc + mp_free of 64 bytes of the
 * shared heap, in a loop (the per-thread cache's steady state).
 *
 *     bench_heap alloc64 <iterations>
 *
 * RESULT value = nanoseconds per mp_alloc + mp_free.
 */
#include "multiproc.h"

#include "bench_common.h"

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "alloc64 <iterations>");
    if (strcmp(argv[1], "alloc64") != 0)
        bench_die("unknown mode '%s'", argv[1]);
    int rc = mp_init(NULL);
    if (rc < 0)
        bench_die("mp_init: %s", mp_strerror(rc));
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        void *p = mp_alloc(64);
        if (!p)
            bench_die("mp_alloc failed");
        __asm__ volatile("" : : "r"(p) : "memory");
        mp_free(p);
    }
    double dt = bench_now() - t0;
    printf("RESULT value=%.3f elapsed=%.6f n=%ld\n", dt * 1e9 / (double)n, dt, n);
    return 0;
}
