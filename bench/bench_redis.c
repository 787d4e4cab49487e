/* Dict and queue operations on the Redis backend from a child process
 * (rows redis_dict_op_us and redis_queue_op_us), and the hand-off of a
 * Redis lock (redis_lock_handoff_us).
 *
 *     bench_redis op N      one child: N x (set + get) of small keys
 *     bench_redis queue N   one child: N x (put + get) of 8-byte messages
 *     bench_redis lock N    N hand-offs of a lock between two processes,
 *                           each with its own manager: the parent holds
 *                           it, the child waits in mp_lock_acquire (2 ms
 *                           after it was told to start, to be sure it
 *                           blocks), the parent releases; the time from
 *                           just before the release to the child's
 *                           acquire returning (CLOCK_MONOTONIC, shared by
 *                           both). value: the median hand-off in µs
 *     bench_redis pair N    N uncontended acquire + release pairs of a
 *                           Redis lock in one process (after 100 not
 *                           timed). value: µs per pair
 *                           (redis_lock_pair_us)
 *     bench_redis cond N    N notifies of a condition between two
 *                           processes: the child waits in mp_cond_wait, the
 *                           parent takes the lock (so the child waits),
 *                           sleeps 2 ms, then notify(1) and release; the
 *                           time from just before the notify to the
 *                           child's wait returning with the lock. value:
 *                           the median in µs (redis_cond_notify_us)
 *     bench_redis sem N     N hand-offs of a unit of a Redis semaphore
 *                           (value 0) between two processes: the child
 *                           waits in mp_sem_acquire (2 ms after it was told
 *                           to start), the parent releases one unit; the
 *                           time from just before the release to the
 *                           child's acquire returning. value: the median
 *                           in µs (redis_sem_handoff_us)
 *     bench_redis barrier N N rounds of a 4-party barrier (the parent and
 *                           3 children, each with its own manager). value:
 *                           the parent's time per round in µs
 *                           (redis_barrier_us)
 *
 * The same workload as bench_dict.c's op mode: a 6-byte key ("a42-key"
 * cut to 6), an 8-byte value, 100 keys reused, one set (mp_dict_set) and
 * one get (mp_dict_get_into) per iteration. The program starts its own
 * redis-server (127.0.0.1, a free port, a password, a temporary directory,
 * no persistence) and stops it at the end. The child uses the handle its
 * parent made (its first call connects it anew, before timing starts).
 * The queue mode uses a named queue of a Redis manager (mp_manager_queue,
 * mp_queue_put, mp_queue_get), unbounded, get with a 1 s timeout (BLPOP).
 * Prints RESULT value=<us per op> elapsed=<s>.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <multiproc.h>

#include "bench_common.h"
#include "redis_server.h"

#define NKEYS 100

static mp_dict *d;
static long iters;
static mp_test_redis srv;
static int queue_mode;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        mp_test_redis_stop(&srv, 0);
        bench_die("%s: %s", what, mp_strerror(rc));
    }
}

/* The queue loop, through the public API: the child opens a manager of
 * its own (a connection of its own, as a worker process on another
 * machine would) and a named queue on it. */
static int queue_child(void)
{
    mp_manager *m;
    mp_queue *q;
    int rc = mp_manager_open(&m, srv.url);
    if (rc >= 0)
        rc = mp_manager_queue(m, "bench-queue", NULL, &q);
    if (rc < 0) {
        fprintf(stderr, "bench_redis: queue: %s\n", mp_strerror(rc));
        return 1;
    }
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        int64_t v = i;
        void *msg;
        size_t n;
        if (mp_queue_put(q, &v, sizeof(v), 1) < 0 || mp_queue_get(q, &msg, &n, 1) < 0 ||
            n != sizeof(v) || memcmp(msg, &v, n) != 0) {
            fprintf(stderr, "bench_redis: queue: put/get failed\n");
            return 1;
        }
        free(msg);
    }
    double dt = bench_now() - t0;
    mp_queue_destroy(q);
    mp_manager_close(m);
    return mp_dict_set_double(d, "elapsed", dt) < 0 ? 1 : 0;
}

static int child(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    char keys[NKEYS][16];
    for (int k = 0; k < NKEYS; k++)
        snprintf(keys[k], sizeof(keys[k]), "a%02d-key", k);
    while (mp_dict_contains(d, "go", 2) != 1)
        usleep(100);
    if (queue_mode)
        return queue_child();
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        const char *key = keys[i % NKEYS];
        int64_t v = i, out;
        size_t n;
        if (mp_dict_set(d, key, 6, &v, sizeof(v)) < 0 ||
            mp_dict_get_into(d, key, 6, &out, sizeof(out), &n, NULL) < 0 || out != v)
            return 1;
    }
    return mp_dict_set_double(d, "elapsed", bench_now() - t0) < 0 ? 1 : 0;
}

/* ---- lock hand-off --------------------------------------------------- */

/* Shared by the two processes (MAP_SHARED before the fork). */
typedef struct handoff {
    atomic_long round; /* the parent holds the lock for this round */
    atomic_long done;  /* the child had it in this round */
    double t0;         /* just before the parent's release */
    double *lat;       /* per round, seconds (in the shared map) */
} handoff;

static handoff *ho;

static int lock_child(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp_manager *m;
    mp_lock *l;
    if (mp_manager_open(&m, srv.url) < 0 || mp_manager_lock(m, "bench-lock", &l) < 0)
        return 1;
    for (long i = 0; i < iters; i++) {
        while (atomic_load(&ho->round) != i)
            usleep(50);
        if (mp_lock_acquire(l, 10) != 0)
            return 2;
        ho->lat[i] = bench_now() - ho->t0;
        if (mp_lock_release(l) != 0)
            return 3;
        atomic_store(&ho->done, i);
    }
    mp_lock_destroy(l);
    mp_manager_close(m);
    return 0;
}

/* Child of the sem mode: takes the unit the parent releases in each
 * round (the semaphore starts at 0). */
static int sem_child(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp_manager *m;
    mp_sem *s;
    if (mp_manager_open(&m, srv.url) < 0 || mp_manager_sem(m, "bench-sem", NULL, &s) < 0)
        return 1;
    for (long i = 0; i < iters; i++) {
        while (atomic_load(&ho->round) != i)
            usleep(50);
        if (mp_sem_acquire(s, 10) != 0)
            return 2;
        ho->lat[i] = bench_now() - ho->t0;
        atomic_store(&ho->done, i);
    }
    mp_sem_destroy(s);
    mp_manager_close(m);
    return 0;
}

/* Child of the cond mode: waits in each round, records when its wait
 * returned. */
static int cond_child(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp_manager *m;
    mp_cond *c;
    if (mp_manager_open(&m, srv.url) < 0 || mp_manager_cond(m, "bench-cond", &c) < 0)
        return 1;
    for (long i = 0; i < iters; i++) {
        if (mp_cond_acquire(c, 10) != 0)
            return 2;
        atomic_store(&ho->round, i); /* waiting once the parent has the lock */
        if (mp_cond_wait(c, 10) != 0)
            return 3;
        ho->lat[i] = bench_now() - ho->t0;
        if (mp_cond_release(c) != 0)
            return 4;
        atomic_store(&ho->done, i);
    }
    mp_cond_destroy(c);
    mp_manager_close(m);
    return 0;
}

/* Child of the barrier mode: iters rounds. */
static int barrier_child(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp_manager *m;
    mp_barrier *b;
    if (mp_manager_open(&m, srv.url) < 0 || mp_manager_barrier(m, "bench-barrier", 4, &b) < 0)
        return 1;
    for (long i = 0; i < iters; i++)
        if (mp_barrier_wait(b, 10) < 0)
            return 2;
    mp_barrier_destroy(b);
    mp_manager_close(m);
    return 0;
}

static void join_children(mp_process **p, int n)
{
    for (int k = 0; k < n; k++) {
        int code = -1;
        check(mp_process_join(p[k], 60), "mp_process_join");
        check(mp_process_exitcode(p[k], &code), "mp_process_exitcode");
        if (code != 0) {
            mp_test_redis_stop(&srv, 0);
            bench_die("child failed (exit code %d)", code);
        }
        mp_process_destroy(p[k]);
    }
}

static mp_process *start_child(mp_target_fn fn)
{
    mp_process *p;
    check(mp_process_create(&p, &(mp_process_opts){.target = fn}), "mp_process_create");
    check(mp_process_start(p), "mp_process_start");
    return p;
}

static int barrier_main(void)
{
    mp_manager *m;
    mp_barrier *b;
    check(mp_manager_open(&m, srv.url), "mp_manager_open");
    check(mp_manager_barrier(m, "bench-barrier", 4, &b), "mp_manager_barrier");
    mp_process *p[3];
    for (int k = 0; k < 3; k++)
        p[k] = start_child(barrier_child);
    /* A first round gathers the children (their start-up is not timed). */
    if (mp_barrier_wait(b, 30) < 0)
        bench_die("first round");
    double t0 = bench_now();
    for (long i = 1; i < iters; i++)
        if (mp_barrier_wait(b, 10) < 0)
            bench_die("round %ld", i);
    double elapsed = bench_now() - t0;
    join_children(p, 3);
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", elapsed / (double)(iters - 1) * 1e6, elapsed,
           iters);
    mp_barrier_destroy(b);
    mp_manager_close(m);
    mp_test_redis_stop(&srv, 0);
    return 0;
}

/* Uncontended acquire + release pairs, in this process. */
static int pair_main(void)
{
    mp_manager *m;
    mp_lock *l;
    check(mp_manager_open(&m, srv.url), "mp_manager_open");
    check(mp_manager_lock(m, "bench-pair", &l), "mp_manager_lock");
    for (int i = 0; i < 100; i++) {
        check(mp_lock_acquire(l, 10), "acquire");
        check(mp_lock_release(l), "release");
    }
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        check(mp_lock_acquire(l, 10), "acquire");
        check(mp_lock_release(l), "release");
    }
    double elapsed = bench_now() - t0;
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", elapsed / (double)iters * 1e6, elapsed, iters);
    mp_lock_destroy(l);
    mp_manager_close(m);
    mp_test_redis_stop(&srv, 0);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef enum handoff_kind { HO_LOCK, HO_COND, HO_SEM } handoff_kind;

static int handoff_main(handoff_kind kind)
{
    bool cond = kind == HO_COND, sem = kind == HO_SEM;
    size_t size = sizeof(handoff) + (size_t)iters * sizeof(double);
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        bench_die("mmap");
    ho = map;
    ho->lat = (double *)(ho + 1);
    atomic_init(&ho->round, -1);
    atomic_init(&ho->done, -1);
    mp_manager *m;
    mp_lock *l = NULL;
    mp_cond *c = NULL;
    mp_sem *sm = NULL;
    check(mp_manager_open(&m, srv.url), "mp_manager_open");
    if (cond)
        check(mp_manager_cond(m, "bench-cond", &c), "mp_manager_cond");
    else if (sem)
        check(mp_manager_sem(m, "bench-sem", NULL, &sm), "mp_manager_sem");
    else
        check(mp_manager_lock(m, "bench-lock", &l), "mp_manager_lock");
    mp_process *p = start_child(cond ? cond_child : sem ? sem_child : lock_child);
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        if (cond) {
            while (atomic_load(&ho->round) != i)
                usleep(50);
            check(mp_cond_acquire(c, 10), "acquire"); /* the child waits now */
        } else if (sem) {
            atomic_store(&ho->round, i);
        } else {
            check(mp_lock_acquire(l, 10), "acquire");
            atomic_store(&ho->round, i);
        }
        usleep(2000); /* the child is blocked in its wait by now */
        ho->t0 = bench_now();
        if (cond)
            check(mp_cond_notify(c, 1) == 1 ? 0 : MP_EBADMSG, "notify");
        check(cond ? mp_cond_release(c) : sem ? mp_sem_release(sm) : mp_lock_release(l), "release");
        for (int k = 0; atomic_load(&ho->done) != i; k++) {
            if (k > 200000)
                bench_die("the child never took the lock");
            usleep(50);
        }
    }
    double elapsed = bench_now() - t0;
    join_children(&p, 1);
    qsort(ho->lat, (size_t)iters, sizeof(double), cmp_double);
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", ho->lat[iters / 2] * 1e6, elapsed, iters);
    if (cond)
        mp_cond_destroy(c);
    else if (sem)
        mp_sem_destroy(sm);
    else
        mp_lock_destroy(l);
    mp_manager_close(m);
    mp_test_redis_stop(&srv, 0);
    munmap(map, size);
    return 0;
}

int main(int argc, char **argv)
{
    iters = bench_args(argc, argv, "op|queue|lock|pair|cond|sem|barrier <iterations>");
    queue_mode = strcmp(argv[1], "queue") == 0;
    bool lock_mode = strcmp(argv[1], "lock") == 0, cond_mode = strcmp(argv[1], "cond") == 0;
    bool sem_mode = strcmp(argv[1], "sem") == 0;
    bool barrier_mode = strcmp(argv[1], "barrier") == 0, pair_mode = strcmp(argv[1], "pair") == 0;
    if (!queue_mode && !lock_mode && !cond_mode && !sem_mode && !barrier_mode && !pair_mode &&
        strcmp(argv[1], "op") != 0)
        bench_die("unknown mode '%s'", argv[1]);
    if (barrier_mode && iters < 2)
        bench_die("barrier needs at least 2 rounds");
    if (mp_test_redis_start(&srv, "bench") < 0)
        bench_die("%s", srv.error);
    if (lock_mode || cond_mode || sem_mode)
        return handoff_main(cond_mode ? HO_COND : sem_mode ? HO_SEM : HO_LOCK);
    if (barrier_mode)
        return barrier_main();
    if (pair_mode)
        return pair_main();
    mp_manager *m;
    check(mp_manager_open(&m, srv.url), "mp_manager_open");
    check(mp_manager_dict(m, "bench", &d), "mp_manager_dict");
    mp_process *p;
    check(mp_process_create(&p, &(mp_process_opts){.target = child}), "mp_process_create");
    check(mp_process_start(p), "mp_process_start");
    check(mp_dict_set_int64(d, "go", 1), "set go");
    int code = -1;
    check(mp_process_join(p, 120), "mp_process_join");
    check(mp_process_exitcode(p, &code), "mp_process_exitcode");
    if (code != 0) {
        mp_test_redis_stop(&srv, 0);
        bench_die("child failed (exit code %d)", code);
    }
    double dt;
    check(mp_dict_get_double(d, "elapsed", &dt), "get elapsed");
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", dt / (2.0 * (double)iters) * 1e6, dt, iters);
    mp_process_destroy(p);
    mp_dict_destroy(d);
    mp_manager_close(m);
    mp_test_redis_stop(&srv, 0);
    return 0;
}
