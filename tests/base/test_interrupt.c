/* Interrupting blocking calls (multiproc/interrupt.h): each kind of wait
 * with signals arriving and the opt-in off (the wait goes on), with the
 * opt-in on (MP_EINTR, nothing changed), and with a cancel triggered from
 * another thread, from a signal handler, and before the call. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "intr.h"
#include "mp_test.h"

static void intr_init(void);
static void intr_fini(void);
TestSuite(interrupt, .init = intr_init, .fini = intr_fini, .timeout = 60);

static void intr_init(void)
{
    mp_test_fd_setup();
    mp_test_intr_setup(0); /* no SA_RESTART */
}

static void intr_fini(void)
{
    mp_test_intr_teardown();
    mp_test_fd_check();
}

/* ---- the waits under test ------------------------------------------------ */

/* Objects that every kind of wait blocks on for a long time (the test's
 * thread never gets what it waits for unless a helper gives it). */
typedef struct objs {
    mp_lock *lock;   /* held by a helper thread */
    mp_sem *sem;     /* value 0 */
    mp_event *event; /* clear */
    mp_cond *cond;
    mp_barrier *barrier; /* 2 parties */
    mp_queue *queue;     /* empty */
    mp_queue *full;      /* maxsize 1, full */
    mp_process *child;   /* sleeps */
    mp_pool *pool;
} objs;

static _Atomic int release_lock;
static void *hold_lock(void *arg)
{
    mp_lock *l = arg;
    mp_lock_acquire(l, MP_FOREVER);
    atomic_store(&release_lock, 1);
    while (atomic_load(&release_lock) != 2)
        usleep(1000);
    mp_lock_release(l);
    return NULL;
}

static int sleep_long(const void *arg, size_t len)
{
    (void)arg, (void)len;
    sleep(30);
    return 0;
}

static int nap_task(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                    void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)ctx;
    usleep(300 * 1000);
    *out_len = 0;
    return 0;
}

static pthread_t holder;

static void objs_make(objs *o)
{
    mp_assert_ok(mp_lock_create(&o->lock, NULL));
    atomic_store(&release_lock, 0);
    cr_assert_eq(pthread_create(&holder, NULL, hold_lock, o->lock), 0);
    while (atomic_load(&release_lock) != 1)
        usleep(1000);
    mp_assert_ok(mp_sem_create(&o->sem, NULL));
    mp_assert_ok(mp_event_create(&o->event, NULL));
    mp_assert_ok(mp_cond_create(&o->cond, NULL));
    mp_assert_ok(mp_barrier_create(&o->barrier, &(mp_barrier_opts){.parties = 2}));
    mp_assert_ok(mp_queue_create(&o->queue, NULL));
    mp_assert_ok(mp_queue_create(&o->full, &(mp_queue_opts){.maxsize = 1}));
    mp_assert_ok(mp_queue_put(o->full, "x", 1, 0));
    mp_assert_ok(mp_process_create(&o->child, &(mp_process_opts){.target = sleep_long}));
    mp_assert_ok(mp_process_start(o->child));
    mp_assert_ok(mp_pool_create(&o->pool, &(mp_pool_opts){.processes = 1}));
}

static void objs_free(objs *o)
{
    atomic_store(&release_lock, 2);
    pthread_join(holder, NULL);
    mp_lock_destroy(o->lock);
    mp_sem_destroy(o->sem);
    mp_event_destroy(o->event);
    mp_cond_destroy(o->cond);
    mp_barrier_destroy(o->barrier);
    mp_queue_destroy(o->queue);
    mp_queue_destroy(o->full);
    mp_process_kill(o->child);
    mp_process_join(o->child, 10);
    mp_process_destroy(o->child);
    mp_pool_terminate(o->pool);
    mp_pool_join(o->pool, 10);
    mp_pool_destroy(o->pool);
}

enum {
    W_LOCK,
    W_SEM,
    W_EVENT,
    W_COND,
    W_BARRIER,
    W_GET,
    W_PUT,
    W_JOIN,
    W_WAIT,
    W_ASYNC,
    W_MAP,
    W_N
};
static const char *const wname[W_N] = {"lock", "sem",  "event", "cond",  "barrier", "get",
                                       "put",  "join", "wait",  "async", "map"};

/* One blocking call of kind k, timeout t; then checks that it changed
 * nothing when it did not succeed. */
static int run_wait(objs *o, int k, double t)
{
    switch (k) {
    case W_LOCK:
        return mp_lock_acquire(o->lock, t);
    case W_SEM:
        return mp_sem_acquire(o->sem, t);
    case W_EVENT:
        return mp_event_wait(o->event, t);
    case W_COND: {
        mp_assert_ok(mp_cond_acquire(o->cond, 0));
        int rc = mp_cond_wait(o->cond, t);
        cr_assert_eq(mp_rlock_count(mp_cond_get_rlock(o->cond)), 1, "cond: the lock came back");
        mp_assert_ok(mp_cond_release(o->cond));
        return rc;
    }
    case W_BARRIER: {
        int rc = mp_barrier_wait(o->barrier, t);
        if (rc == MP_EINTR || rc == MP_ECANCELED)
            cr_assert_eq(mp_barrier_n_waiting(o->barrier), 0, "barrier: the party left");
        if (rc == MP_EBROKEN)
            mp_assert_ok(mp_barrier_reset(o->barrier));
        return rc;
    }
    case W_GET: {
        char buf[8];
        size_t n;
        return mp_queue_get_into(o->queue, buf, sizeof(buf), &n, t);
    }
    case W_PUT: {
        int rc = mp_queue_put(o->full, "y", 1, t);
        size_t n = 0;
        mp_assert_ok(mp_queue_qsize(o->full, &n));
        cr_assert_eq(n, 1, "put: nothing added");
        return rc;
    }
    case W_JOIN:
        return mp_process_join(o->child, t);
    case W_WAIT: {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        int rc = mp_wait(&MP_WAIT_FD(fds[0]), 1, t);
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    case W_ASYNC: {
        mp_async *a;
        mp_assert_ok(mp_pool_apply_async(o->pool, nap_task, NULL, "", 1, 0, NULL, NULL, NULL, &a));
        int rc = mp_async_get(a, NULL, 0, NULL, t);
        if (rc == MP_EINTR || rc == MP_ECANCELED) {
            if (mp_cancel_current())
                mp_assert_ok(mp_cancel_reset(mp_cancel_current()));
            bool was = mp_set_interruptible(false);           /* signals may still come */
            mp_assert_ok(mp_async_get(a, NULL, 0, NULL, 20)); /* still there */
            mp_set_interruptible(was);
        }
        mp_async_destroy(a);
        return rc;
    }
    default: {
        int rc = mp_pool_map(
            o->pool,
            &(mp_map_spec){
                .fn = nap_task, .n = 50, .in_size = 1, .in = (const char[50]){0}, .chunksize = 1},
            t);
        /* Interrupted: the pool is free at once for the next work (the
         * map's items not started were withdrawn). */
        if (mp_cancel_current())
            mp_assert_ok(mp_cancel_reset(mp_cancel_current()));
        bool was = mp_set_interruptible(false); /* signals may still come */
        mp_async *a;
        mp_assert_ok(mp_pool_apply_async(o->pool, nap_task, NULL, "", 1, 0, NULL, NULL, NULL, &a));
        mp_assert_ok(mp_async_get(a, NULL, 0, NULL, 5));
        mp_async_destroy(a);
        mp_set_interruptible(was);
        return rc;
    }
    }
}

Test(interrupt, signals_do_not_end_a_wait_without_the_opt_in)
{
    objs o;
    objs_make(&o);
    cr_assert_not(mp_interruptible());
    for (int k = 0; k < W_N; k++) {
        if (k == W_MAP || k == W_ASYNC)
            continue; /* they would complete: nothing to time out */
        /* Again while fewer than 10 signals came in all (a loaded host can
         * starve the signalling thread): each wait ends as it would have. */
        int handled = 0;
        for (int round = 0; round < 20 && handled <= 10; round++) {
            static mp_test_pester p;
            mp_test_storm_start(&p); /* a signal every millisecond */
            int rc = run_wait(&o, k, 0.2);
            handled += mp_test_storm_stop(&p);
            if (k == W_BARRIER)
                mp_assert_rc(rc, MP_EBROKEN);
            else if (k == W_GET)
                mp_assert_rc(rc, MP_EEMPTY);
            else if (k == W_PUT)
                mp_assert_rc(rc, MP_EFULL);
            else if (k == W_WAIT)
                mp_assert_rc(rc, 0);
            else
                cr_assert_eq(rc, MP_ETIMEDOUT, "%s: %s", wname[k], mp_err_name(rc));
        }
        cr_assert_gt(handled, 10, "%s: signals arrived", wname[k]);
    }
    objs_free(&o);
}

Test(interrupt, with_the_opt_in_a_signal_ends_each_wait_with_eintr)
{
    objs o;
    objs_make(&o);
    cr_assert_not(mp_set_interruptible(true));
    cr_assert(mp_interruptible());
    for (int k = 0; k < W_N; k++) {
        /* Signals from 0.1 s on, every 20 ms: one that lands while the
         * call spins or checks, outside its sleep, is seen at the next
         * wake-up (multiproc/interrupt.h), so the next one ends it. */
        static mp_test_pester p;
        mp_test_pester_start(&p, 100, 20000, NULL);
        int rc = run_wait(&o, k, 20);
        mp_test_pester_stop(&p);
        cr_assert_eq(rc, MP_EINTR, "%s: %s", wname[k], mp_err_name(rc));
    }
    cr_assert(mp_set_interruptible(false));
    objs_free(&o);
}

Test(interrupt, a_cancel_from_another_thread_ends_each_wait)
{
    objs o;
    objs_make(&o);
    mp_cancel *c;
    mp_assert_ok(mp_cancel_create(&c));
    cr_assert_null(mp_cancel_set_current(c));
    cr_assert_eq(mp_cancel_current(), c);
    for (int k = 0; k < W_N; k++) {
        mp_assert_ok(mp_cancel_reset(c));
        cr_assert_not(mp_cancel_triggered(c));
        static mp_test_pester p;
        mp_test_pester_start(&p, 100, 0, c);
        int rc = run_wait(&o, k, 20);
        mp_test_pester_stop(&p);
        cr_assert_eq(rc, MP_ECANCELED, "%s: %s", wname[k], mp_err_name(rc));
        cr_assert(mp_cancel_triggered(c) || k == W_ASYNC || k == W_MAP); /* those reset it */
    }
    /* Triggered before: no wait at all; a call that can complete does. */
    mp_assert_ok(mp_cancel_trigger(c));
    mp_assert_rc(mp_sem_acquire(o.sem, 20), MP_ECANCELED);
    mp_assert_ok(mp_sem_release(o.sem));
    mp_assert_ok(mp_sem_acquire(o.sem, 20));
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(c);
    objs_free(&o);
}

Test(interrupt, a_cancel_from_a_signal_handler_ends_a_wait)
{
    objs o;
    objs_make(&o);
    mp_cancel *c;
    mp_assert_ok(mp_cancel_create(&c));
    mp_cancel_set_current(c);
    mp_test_intr_from_handler = c;
    static mp_test_pester p;
    mp_test_pester_start(&p, 100, 0, NULL); /* the handler triggers c */
    mp_assert_rc(mp_lock_acquire(o.lock, 20), MP_ECANCELED);
    mp_test_pester_stop(&p);
    mp_test_intr_from_handler = NULL;
    /* Reset: the next wait waits again (its timeout, here). */
    mp_assert_ok(mp_cancel_reset(c));
    mp_assert_rc(mp_lock_acquire(o.lock, 0.1), MP_ETIMEDOUT);
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(c);
    objs_free(&o);
}

/* Set before the release, so that a wait that returns sees it: one that
 * returned without it ended before the release came. */
static _Atomic int late;
static void *release_late(void *arg)
{
    usleep(300 * 1000);
    atomic_store(&late, 1);
    mp_sem_release(arg);
    return NULL;
}

/* A cancel that is watched but never triggered changes nothing: the wait
 * ends when it would have (its slices are not returns). */
Test(interrupt, an_untriggered_cancel_lets_waits_complete)
{
    mp_sem *s;
    mp_assert_ok(mp_sem_create(&s, NULL));
    mp_cancel *c;
    mp_assert_ok(mp_cancel_create(&c));
    mp_cancel_set_current(c);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, release_late, s), 0);
    mp_assert_ok(mp_sem_acquire(s, 20));
    cr_assert_eq(atomic_load(&late), 1);
    pthread_join(th, NULL);
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(c);
    mp_sem_destroy(s);
}

static int child_settings(const void *arg, size_t len)
{
    (void)arg, (void)len;
    return mp_interruptible() || mp_cancel_current() != NULL ? 1 : 0;
}

Test(interrupt, a_forked_child_starts_with_neither_setting)
{
    mp_cancel *c;
    mp_assert_ok(mp_cancel_create(&c));
    mp_cancel_set_current(c);
    mp_set_interruptible(true);
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = child_settings}));
    mp_assert_ok(mp_process_start(p));
    mp_set_interruptible(false);
    mp_assert_ok(mp_process_join(p, 20));
    int code = -1;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0);
    mp_process_destroy(p);
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(c);
}

Test(interrupt, bad_input)
{
    mp_assert_rc(mp_cancel_create(NULL), MP_EINVAL);
    mp_assert_rc(mp_cancel_trigger(NULL), MP_EINVAL);
    mp_assert_rc(mp_cancel_reset(NULL), MP_EINVAL);
    cr_assert_not(mp_cancel_triggered(NULL));
    mp_cancel_destroy(NULL);
    cr_assert_null(mp_cancel_set_current(NULL));
}
