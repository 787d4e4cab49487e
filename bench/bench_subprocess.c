/* Subprocess rows with the library:
 *
 *     bench_subprocess run_true <n>      mp_run({"true"}) n times
 *     bench_subprocess run_true_1g <n>   the same with 1 GiB of touched
 *                                        memory in the parent
 *     bench_subprocess communicate <n>   n times: 200 MiB through cat with
 *                                        mp_popen_communicate
 *
 * RESULT value = ms per run, or GiB/s (of input, which cat echoes back).
 */
#include <sys/mman.h>

#include "multiproc.h"

#include "bench_common.h"

#define COMM_BYTES ((size_t)200 << 20)
#define BIG_BYTES  ((size_t)1 << 30)

static void check(int rc, const char *what)
{
    if (rc < 0)
        bench_die("%s: %s (%s)", what, mp_err_name(rc), mp_strerror(rc));
}

/* Memory the parent holds while it spawns: every page written once. */
static void *hold_big_memory(void)
{
    char *m = mmap(NULL, BIG_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        bench_die("mmap 1 GiB: %s", strerror(errno));
    for (size_t i = 0; i < BIG_BYTES; i += 4096)
        m[i] = 1;
    return m;
}

static double run_true(long n)
{
    const char *const argv[] = {"true", NULL};
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        mp_run_result r;
        check(mp_run(argv, NULL, &r), "mp_run");
        if (r.returncode != 0)
            bench_die("true returned %d", r.returncode);
        mp_run_result_free(&r);
    }
    return (bench_now() - t0) * 1e3 / (double)n;
}

static double communicate(long n)
{
    char *input = malloc(COMM_BYTES);
    if (!input)
        bench_die("out of memory");
    memset(input, 'x', COMM_BYTES);
    const char *const argv[] = {"cat", NULL};
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        mp_popen *p;
        check(mp_popen_create(&p, argv, &(mp_popen_opts){.in = MP_PIPE, .out = MP_PIPE}),
              "mp_popen_create");
        char *out;
        size_t len;
        check(mp_popen_communicate(p, input, COMM_BYTES, &out, &len, NULL, NULL, MP_FOREVER),
              "mp_popen_communicate");
        if (len != COMM_BYTES)
            bench_die("cat echoed %zu bytes", len);
        free(out);
        mp_popen_destroy(p);
    }
    double dt = bench_now() - t0;
    free(input);
    return (double)COMM_BYTES * (double)n / BENCH_GIB / dt;
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "run_true|run_true_1g|communicate <iterations>");
    double t0 = bench_now(), value, elapsed = -1;
    if (strcmp(argv[1], "run_true") == 0) {
        value = run_true(n);
    } else if (strcmp(argv[1], "run_true_1g") == 0) {
        void *big = hold_big_memory();
        t0 = bench_now();
        value = run_true(n);
        elapsed = bench_now() - t0; /* not the munmap */
        munmap(big, BIG_BYTES);
    } else if (strcmp(argv[1], "communicate") == 0) {
        value = communicate(n);
    } else {
        bench_die("unknown mode '%s'", argv[1]);
    }
    if (elapsed < 0)
        elapsed = bench_now() - t0;
    printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", value, elapsed, n);
    return 0;
}
