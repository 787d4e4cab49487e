/* lock_ns, lock_handoff_us and value_incr_2proc_s with the library.
 *
 *     bench_lock lock <iterations>
 *     bench_lock handoff <cycles>
 *     bench_lock value_incr <increments per process>
 *
 * lock:       mp_lock_acquire(MP_FOREVER) + mp_lock_release, uncontended.
 *             RESULT value = ns per acquire+release.
 * handoff:    two processes pass three locks round (each lock released
 *             only by its holder, as a Lock must be), so that every acquire
 *             waits for the other process's release: six contended
 *             hand-offs per cycle. RESULT value = microseconds per hand-off.
 * value_incr: two processes each increment a shared Value('i') under its
 *             lock. RESULT value = seconds for 10^6 increments each
 *             (scaled from the count run).
 *
 * BENCH_PIN pins the two processes of handoff and value_incr (role 0 the
 * parent, 1 the child).
 */
#include "multiproc.h"

#include "bench_common.h"

static void check(int rc, const char *what)
{
    if (rc < 0)
        bench_die("%s: %s (%s)", what, mp_err_name(rc), mp_strerror(rc));
}

static void bench_uncontended(long n)
{
    mp_lock *l;
    check(mp_lock_create(&l, NULL), "mp_lock_create");
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        mp_lock_acquire(l, MP_FOREVER);
        mp_lock_release(l);
    }
    double dt = bench_now() - t0;
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", dt * 1e9 / (double)n, dt, n);
    mp_lock_destroy(l);
}

typedef struct handoff {
    mp_lock *l[3];
    mp_event *ready;
    long cycles;
} handoff;

static void acq(mp_lock *l)
{
    check(mp_lock_acquire(l, 60), "mp_lock_acquire");
}

static void rel(mp_lock *l)
{
    check(mp_lock_release(l), "mp_lock_release");
}

/* Process B starts holding L2; A holds L0 and L1. Each step of one
 * process waits for the matching release of the other. */
static int handoff_child(const void *arg, size_t len)
{
    (void)len;
    const handoff *h = arg;
    bench_pin(1);
    acq(h->l[2]);
    check(mp_event_set(h->ready), "mp_event_set");
    for (long i = 0; i < h->cycles; i++) {
        acq(h->l[0]);
        rel(h->l[2]);
        acq(h->l[1]);
        rel(h->l[0]);
        acq(h->l[2]);
        rel(h->l[1]);
    }
    return 0;
}

static void join_child(mp_process *p)
{
    check(mp_process_join(p, 120), "mp_process_join");
    int code = -1;
    check(mp_process_exitcode(p, &code), "mp_process_exitcode");
    if (code != 0)
        bench_die("child exit code %d", code);
    mp_process_destroy(p);
}

static void bench_handoff(long n)
{
    handoff h = {.cycles = n};
    for (int i = 0; i < 3; i++)
        check(mp_lock_create(&h.l[i], NULL), "mp_lock_create");
    check(mp_event_create(&h.ready, NULL), "mp_event_create");
    acq(h.l[0]);
    acq(h.l[1]);
    mp_process *p;
    check(mp_process_create(&p, &(mp_process_opts){.target = handoff_child, .args = &h}),
          "mp_process_create");
    check(mp_process_start(p), "mp_process_start");
    bench_pin(0);
    check(mp_event_wait(h.ready, 60), "mp_event_wait");
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        rel(h.l[0]);
        acq(h.l[2]);
        rel(h.l[1]);
        acq(h.l[0]);
        rel(h.l[2]);
        acq(h.l[1]);
    }
    double dt = bench_now() - t0;
    join_child(p);
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", dt * 1e6 / (6.0 * (double)n), dt, n);
}

typedef struct incr {
    mp_value *v;
    mp_barrier *start;
    long n;
} incr;

static void increment(const incr *w)
{
    mp_rlock *l = mp_value_get_lock(w->v);
    int *x = mp_value_data(w->v);
    for (long i = 0; i < w->n; i++) {
        mp_rlock_acquire(l, MP_FOREVER);
        (*x)++;
        mp_rlock_release(l);
    }
}

static int incr_child(const void *arg, size_t len)
{
    (void)len;
    const incr *w = arg;
    bench_pin(1);
    if (mp_barrier_wait(w->start, 60) < 0)
        return 1;
    increment(w);
    return 0;
}

static void bench_value_incr(long n)
{
    incr w = {.n = n};
    check(mp_value_create(&w.v, &(mp_value_opts){.typecode = 'i'}), "mp_value_create");
    check(mp_barrier_create(&w.start, &(mp_barrier_opts){.parties = 2}), "mp_barrier_create");
    mp_process *p;
    check(mp_process_create(&p, &(mp_process_opts){.target = incr_child, .args = &w}),
          "mp_process_create");
    check(mp_process_start(p), "mp_process_start");
    bench_pin(0);
    check(mp_barrier_wait(w.start, 60), "mp_barrier_wait");
    double t0 = bench_now();
    increment(&w);
    join_child(p);
    double dt = bench_now() - t0;
    int total = *(int *)mp_value_data(w.v);
    if ((long)total != 2 * n)
        bench_die("lost increments: %d, expected %ld", total, 2 * n);
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", dt * 1e6 / (double)n, dt, n);
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "lock|handoff|value_incr <iterations>");
    if (strcmp(argv[1], "lock") == 0)
        bench_uncontended(n);
    else if (strcmp(argv[1], "handoff") == 0)
        bench_handoff(n);
    else if (strcmp(argv[1], "value_incr") == 0)
        bench_value_incr(n);
    else
        bench_die("unknown mode '%s'", argv[1]);
    return 0;
}
