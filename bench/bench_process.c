/* process_start_{fork,spawn,forkserver}_ms with the library: create +
 * start + join + destroy of a no-op target, the C form of
 *     p = ctx.Process(target=noop); p.start(); p.join()
 *
 *     bench_process fork|spawn|forkserver <iterations>
 *
 * The fork server is started before the timing, as CPython's is by its
 * first Process (its peer runs one untimed start first).
 *
 * RESULT value = milliseconds per start+join.
 */
#include "multiproc.h"

#include "bench_common.h"

static int noop(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return 0;
}

static void check(int rc, const char *what)
{
    if (rc < 0)
        bench_die("%s: %s (%s)", what, mp_err_name(rc), mp_strerror(rc));
}

static void start_join_one(mp_start_method m)
{
    mp_process *p = NULL;
    check(mp_process_create(&p, &(mp_process_opts){.target = noop, .start_method = m}),
          "mp_process_create");
    check(mp_process_start(p), "mp_process_start");
    check(mp_process_join(p, MP_FOREVER), "mp_process_join");
    int code = -1;
    check(mp_process_exitcode(p, &code), "mp_process_exitcode");
    if (code != 0)
        bench_die("child exit code %d", code);
    mp_process_destroy(p);
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "fork|spawn|forkserver <iterations>");
    mp_start_method m;
    if (strcmp(argv[1], "fork") == 0)
        m = MP_START_FORK;
    else if (strcmp(argv[1], "spawn") == 0)
        m = MP_START_SPAWN;
    else if (strcmp(argv[1], "forkserver") == 0)
        m = MP_START_FORKSERVER;
    else
        bench_die("unknown mode '%s'", argv[1]);
    if (m == MP_START_FORKSERVER)
        check(mp_forkserver_ensure(), "mp_forkserver_ensure");

    double t0 = bench_now();
    for (long i = 0; i < n; i++)
        start_join_one(m);
    double dt = bench_now() - t0;
    printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", dt * 1e3 / (double)n, dt, n);
    return 0;
}
