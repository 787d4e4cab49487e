/* Shared dict operations from child processes (rows dict_op_us and
 * dict_4proc_op_us).
 *
 *     bench_dict op    N   one child: N x (set + get) of small keys
 *     bench_dict 4proc N   four children at once, each on its own keys
 *
 * An op is one set or one get: a 6-byte key ("key42"), an 8-byte value;
 * 100 keys per process, reused. Each child times its own loop (after a
 * start signal, so process start-up is excluded) and stores the elapsed
 * seconds in the dict; the value printed is microseconds per op, the
 * slowest child's for 4proc. Prints RESULT value=<us/op> elapsed=<s>.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <multiproc.h>

#include "bench_common.h"

#define NKEYS 100

static mp_dict *d;
static long iters;

static void check(int rc, const char *what)
{
    if (rc < 0)
        bench_die("%s: %s", what, mp_strerror(rc));
}

static int child(const void *arg, size_t len)
{
    int id = *(const int *)arg;
    (void)len;
    char keys[NKEYS][16];
    for (int k = 0; k < NKEYS; k++)
        snprintf(keys[k], sizeof(keys[k]), "%c%02d-key", 'a' + id, k);
    while (mp_dict_contains(d, "go", 2) != 1)
        usleep(100);
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        const char *key = keys[i % NKEYS];
        int64_t v = i, out;
        size_t n;
        if (mp_dict_set(d, key, 6, &v, sizeof(v)) < 0 ||
            mp_dict_get_into(d, key, 6, &out, sizeof(out), &n, NULL) < 0 || out != v)
            return 1;
    }
    double dt = bench_now() - t0;
    char key[16];
    snprintf(key, sizeof(key), "elapsed%d", id);
    return mp_dict_set_double(d, key, dt) < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    iters = bench_args(argc, argv, "op|4proc <iterations>");
    int procs = strcmp(argv[1], "4proc") == 0 ? 4 : 1;
    if (procs == 1 && strcmp(argv[1], "op") != 0)
        bench_die("unknown mode '%s'", argv[1]);
    check(mp_dict_create(&d, NULL), "mp_dict_create");
    mp_process *p[4];
    for (int i = 0; i < procs; i++) {
        check(mp_process_create(
                  &p[i], &(mp_process_opts){.target = child, .args = &i, .args_len = sizeof(i)}),
              "mp_process_create");
        check(mp_process_start(p[i]), "mp_process_start");
    }
    double w0 = bench_now();
    check(mp_dict_set_int64(d, "go", 1), "set go");
    double worst = 0;
    for (int i = 0; i < procs; i++) {
        int code = -1;
        check(mp_process_join(p[i], 120), "mp_process_join");
        check(mp_process_exitcode(p[i], &code), "mp_process_exitcode");
        if (code != 0)
            bench_die("child %d failed (exit code %d)", i, code);
        char key[16];
        double dt;
        snprintf(key, sizeof(key), "elapsed%d", i);
        check(mp_dict_get_double(d, key, &dt), "get elapsed");
        worst = dt > worst ? dt : worst;
        mp_process_destroy(p[i]);
    }
    double wall = bench_now() - w0;
    double us = worst / (2.0 * (double)iters) * 1e6;
    printf("RESULT value=%.6g elapsed=%.6f n=%ld procs=%d aggregate_mops=%.3g\n", us, worst, iters,
           procs, 2.0 * (double)iters * procs / wall / 1e6);
    mp_dict_destroy(d);
    return 0;
}
