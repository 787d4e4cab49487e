/* Interrupting the waits of a Redis manager's objects (multiproc/interrupt.h):
 * each kind of wait with a signal every millisecond and the opt-in off (it
 * ends as it would have), with the opt-in on (MP_EINTR, and the state on
 * the server as it was), and with a cancel triggered from another thread
 * and from a signal handler; then the cases where an interrupted waiter
 * must not take what a remaining one needs: a notify, a barrier count, a
 * wake-up, messages popped just as the signal came. Each test starts its
 * own redis-server and fails when it cannot. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "manager/manager_internal.h"
#include "intr.h"
#include "mp_test.h"
#include "redis/redis_internal.h"
#include "redis_server.h"

static mp_test_redis srv;
static void rintr_init(void)
{
    mp_test_fd_setup();
    mp_test_intr_setup(0); /* no SA_RESTART */
}

static void rintr_fini(void)
{
    mp_test_intr_teardown();
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(rintr, .init = rintr_init, .fini = rintr_fini, .timeout = 120);

/* ---- helpers on the server ----------------------------------------------- */

/* An accessor's answer: 1 (created) or 0 (opened). */
#define opened(expr)                                                                               \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert(rc_ == 0 || rc_ == 1, "%s: %s", #expr, mp_err_name(rc_));                        \
    } while (0)

static mp_manager *open_manager(void)
{
    cr_assert(mp_test_redis_start(&srv, "pw") == 0, "cannot start redis-server: %s", srv.error);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    return m;
}

/* A command on one key (prefix + rest) whose answer is an integer. */
static long long key_int(mp_manager *m, const char *cmd, const char *rest)
{
    mp__redis *r = mp__manager_redis_conn(m);
    char key[256];
    snprintf(key, sizeof(key), "%s%s", mp__redis_prefix(r), rest);
    redisReply *rep;
    mp_assert_ok(mp__redis_cmd(r, MP__RR_INT, &rep, 2, (const char *[]){cmd, key}, NULL));
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

static int task_echo(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                     void *ctx)
{
    (void)ctx;
    size_t n = in_len < out_cap ? in_len : out_cap;
    memcpy(out, in, n);
    *out_len = n;
    return 0;
}

/* ---- the waits under test ------------------------------------------------ */

/* Objects on which every kind of wait blocks until the test gives up. */
typedef struct objs {
    mp_manager *m;
    mp_lock *lock, *holder;    /* holder (another handle) holds it */
    mp_rlock *rlock, *rholder; /* the same */
    mp_sem *sem;               /* value 0 */
    mp_event *event;           /* clear */
    mp_cond *cond;
    mp_barrier *barrier; /* 2 parties */
    mp_queue *queue;     /* empty */
    mp_queue *full;      /* maxsize 1, full */
    mp_queue *joinable;  /* one message not done */
    mp_pool *pool;       /* no worker serves it */
} objs;

static void objs_make(objs *o)
{
    o->m = open_manager();
    opened(mp_manager_lock(o->m, "L", &o->lock));
    opened(mp_manager_lock(o->m, "L", &o->holder));
    mp_assert_ok(mp_lock_acquire(o->holder, 0));
    opened(mp_manager_rlock(o->m, "R", &o->rlock));
    opened(mp_manager_rlock(o->m, "R", &o->rholder));
    mp_assert_ok(mp_rlock_acquire(o->rholder, 0));
    opened(mp_manager_sem(o->m, "S", NULL, &o->sem));
    opened(mp_manager_event(o->m, "E", &o->event));
    opened(mp_manager_cond(o->m, "C", &o->cond));
    opened(mp_manager_barrier(o->m, "B", 2, &o->barrier));
    opened(mp_manager_queue(o->m, "Q", NULL, &o->queue));
    opened(mp_manager_queue(o->m, "F", &(mp_queue_opts){.maxsize = 1}, &o->full));
    mp_assert_ok(mp_queue_put(o->full, "x", 1, 0));
    opened(mp_manager_queue(o->m, "J", &(mp_queue_opts){.joinable = true}, &o->joinable));
    mp_assert_ok(mp_queue_put(o->joinable, "j", 1, 0));
    mp_assert_ok(mp_pool_create(&o->pool, &(mp_pool_opts){.manager = o->m, .name = "p"}));
}

static void objs_free(objs *o)
{
    mp_assert_ok(mp_lock_release(o->holder));
    mp_lock_destroy(o->lock);
    mp_lock_destroy(o->holder);
    mp_assert_ok(mp_rlock_release(o->rholder));
    mp_rlock_destroy(o->rlock);
    mp_rlock_destroy(o->rholder);
    mp_sem_destroy(o->sem);
    mp_event_destroy(o->event);
    mp_cond_destroy(o->cond);
    mp_barrier_destroy(o->barrier);
    mp_queue_destroy(o->queue);
    mp_queue_destroy(o->full);
    mp_queue_destroy(o->joinable);
    mp_pool_terminate(o->pool);
    mp_pool_destroy(o->pool);
    mp_manager_close(o->m);
}

enum {
    W_LOCK,
    W_RLOCK,
    W_SEM,
    W_EVENT,
    W_COND,
    W_BARRIER,
    W_GET,
    W_PUT,
    W_JOIN,
    W_WAIT_QUEUE,
    W_WAIT_EVENT,
    W_ASYNC,
    W_MAP,
    W_IMAP,
    W_N
};
static const char *const wname[W_N] = {"lock",       "rlock", "sem", "event", "cond",
                                       "barrier",    "get",   "put", "join",  "wait queue",
                                       "wait event", "async", "map", "imap"};

/* The calls below check the state themselves with the settings off:
 * signals may still come. */
static bool settings_off(mp_cancel **c)
{
    *c = mp_cancel_set_current(NULL);
    return mp_set_interruptible(false);
}

static void settings_on(bool was, mp_cancel *c)
{
    mp_cancel_set_current(c);
    mp_set_interruptible(was);
}

static bool interrupted(int rc)
{
    return rc == MP_EINTR || rc == MP_ECANCELED;
}

/* What an interrupted wait of kind k must have left as it was. */
static void check_unchanged(objs *o, int k)
{
    mp_cancel *c;
    bool was = settings_off(&c);
    switch (k) {
    case W_LOCK:
        mp_assert_rc(mp_lock_release(o->lock), MP_EPERM); /* not taken */
        cr_assert_eq(key_int(o->m, "ZCARD", "lock:L:wait"), 0, "lock: the waiter left");
        break;
    case W_RLOCK:
        cr_assert_eq(mp_rlock_count(o->rlock), 0, "rlock: not taken");
        cr_assert_eq(key_int(o->m, "ZCARD", "rlock:R:wait"), 0, "rlock: the waiter left");
        break;
    case W_SEM:
        cr_assert_eq(mp_sem_get_value(o->sem), 0);
        cr_assert_eq(key_int(o->m, "ZCARD", "sem:S:wait"), 0, "sem: the waiter left");
        break;
    case W_EVENT:
    case W_WAIT_EVENT:
        cr_assert_eq(key_int(o->m, "ZCARD", "event:E:wait"), 0, "event: the waiter left");
        break;
    case W_COND:
        cr_assert_eq(key_int(o->m, "ZCARD", "cond:C:cwait"), 0, "cond: the waiter left");
        break;
    case W_BARRIER:
        cr_assert_eq(mp_barrier_n_waiting(o->barrier), 0, "barrier: the party left");
        break;
    case W_PUT: {
        size_t n = 0;
        mp_assert_ok(mp_queue_qsize(o->full, &n));
        cr_assert_eq(n, 1, "put: nothing added");
        break;
    }
    case W_JOIN:
        cr_assert_eq(key_int(o->m, "ZCARD", "queue:J:wait"), 0, "join: the joiner left");
        break;
    case W_MAP:
        /* Withdrawn: no worker will find the map's items. */
        cr_assert_eq(key_int(o->m, "XLEN", "pool:p:tasks"), 0, "map: items withdrawn");
        break;
    default:
        break;
    }
    settings_on(was, c);
}

static int wait_cond(objs *o, double t)
{
    mp_assert_ok(mp_cond_acquire(o->cond, 0));
    int rc = mp_cond_wait(o->cond, t);
    cr_assert_eq(mp_rlock_count(mp_cond_get_rlock(o->cond)), 1, "cond: the lock came back");
    mp_assert_ok(mp_cond_release(o->cond));
    return rc;
}

static int wait_barrier(objs *o, double t)
{
    int rc = mp_barrier_wait(o->barrier, t);
    if (rc == MP_EBROKEN) {
        mp_cancel *c;
        bool was = settings_off(&c);
        mp_assert_ok(mp_barrier_reset(o->barrier));
        settings_on(was, c);
    }
    return rc;
}

static int wait_async(objs *o, double t)
{
    mp_async *a;
    mp_assert_ok(mp_pool_apply_async(o->pool, task_echo, NULL, "ab", 2, 2, NULL, NULL, NULL, &a));
    int rc = mp_async_get(a, NULL, 0, NULL, t);
    if (interrupted(rc)) {
        /* The result is left for a later get: a worker now serves it. */
        mp_cancel *c;
        bool was = settings_off(&c);
        pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
        char out[2] = {0};
        size_t len = 0;
        mp_assert_ok(mp_async_get(a, out, sizeof(out), &len, 30));
        cr_assert(len == 2 && memcmp(out, "ab", 2) == 0);
        mp_test_pool_workers_stop(o->m, "p", &w, 1);
        settings_on(was, c);
    }
    mp_async_destroy(a);
    return rc;
}

static int wait_map(objs *o, double t)
{
    char in[8] = "abcdefg", out[8];
    return mp_pool_map(o->pool,
                       &(mp_map_spec){.fn = task_echo,
                                      .n = 8,
                                      .in_size = 1,
                                      .in = in,
                                      .out_size = 1,
                                      .out = out,
                                      .chunksize = 1},
                       t);
}

/* An imap's next result: an interrupted call leaves the iteration where
 * it was; a worker started then serves the items, which come next. */
static int wait_imap(objs *o, double t)
{
    static const char in[4] = "wxyz";
    mp_imap *it;
    mp_assert_ok(mp_pool_imap(
        o->pool,
        &(mp_map_spec){
            .fn = task_echo, .n = 4, .in_size = 1, .in = in, .out_size = 1, .chunksize = 1},
        true, &it));
    char item = 0;
    size_t index = 99;
    int rc = mp_imap_next(it, &item, &index, NULL, t);
    if (interrupted(rc)) {
        mp_cancel *c;
        bool was = settings_off(&c);
        pid_t w = mp_test_pool_worker(srv.url, "p", NULL);
        for (size_t i = 0; i < 4; i++) {
            mp_assert_ok(mp_imap_next(it, &item, &index, NULL, 30));
            cr_assert(index == i && item == in[i], "imap: item %zu", i);
        }
        mp_assert_rc(mp_imap_next(it, &item, &index, NULL, 0), MP_EEOF);
        mp_test_pool_workers_stop(o->m, "p", &w, 1);
        settings_on(was, c);
    }
    mp_imap_destroy(it);
    return rc;
}

static int run_wait(objs *o, int k, double t)
{
    char buf[8];
    size_t n;
    switch (k) {
    case W_LOCK:
        return mp_lock_acquire(o->lock, t);
    case W_RLOCK:
        return mp_rlock_acquire(o->rlock, t);
    case W_SEM:
        return mp_sem_acquire(o->sem, t);
    case W_EVENT:
        return mp_event_wait(o->event, t);
    case W_COND:
        return wait_cond(o, t);
    case W_BARRIER:
        return wait_barrier(o, t);
    case W_GET:
        return mp_queue_get_into(o->queue, buf, sizeof(buf), &n, t);
    case W_PUT:
        return mp_queue_put(o->full, "y", 1, t);
    case W_JOIN:
        return mp_queue_join(o->joinable, t);
    case W_WAIT_QUEUE:
        return mp_wait(&MP_WAIT_QUEUE(o->queue), 1, t);
    case W_WAIT_EVENT:
        return mp_wait(&MP_WAIT_EVENT(o->event), 1, t);
    case W_ASYNC:
        return wait_async(o, t);
    case W_MAP:
        return wait_map(o, t);
    default:
        return wait_imap(o, t);
    }
}

/* What a wait of kind k answers when its timeout ran out. */
static int timed_out(int k)
{
    switch (k) {
    case W_BARRIER:
        return MP_EBROKEN;
    case W_GET:
        return MP_EEMPTY;
    case W_PUT:
        return MP_EFULL;
    case W_WAIT_QUEUE:
    case W_WAIT_EVENT:
        return 0;
    default:
        return MP_ETIMEDOUT;
    }
}

Test(rintr, signals_do_not_end_a_wait_without_the_opt_in)
{
    objs o;
    objs_make(&o);
    cr_assert_not(mp_interruptible());
    for (int k = 0; k < W_N; k++) {
        if (k == W_MAP)
            continue; /* its items would stay for the next kinds */
        /* Again while fewer than 10 signals came in all (a loaded host can
         * starve the signalling thread): each wait ends as it would have. */
        int handled = 0;
        for (int round = 0; round < 20 && handled <= 10; round++) {
            static mp_test_pester p;
            mp_test_storm_start(&p); /* a signal every millisecond */
            int rc = run_wait(&o, k, 0.3);
            handled += mp_test_storm_stop(&p);
            cr_assert_eq(rc, timed_out(k), "%s: %s", wname[k], mp_err_name(rc));
        }
        cr_assert_gt(handled, 10, "%s: signals arrived", wname[k]);
    }
    objs_free(&o);
}

Test(rintr, with_the_opt_in_a_signal_ends_each_wait_with_eintr)
{
    objs o;
    objs_make(&o);
    cr_assert_not(mp_set_interruptible(true));
    for (int k = 0; k < W_N; k++) {
        /* From 0.1 s on, every 20 ms: a signal that lands while the call
         * talks to the server, outside its sleep, is seen at the next
         * one (multiproc/interrupt.h), so a later signal ends it. */
        static mp_test_pester p;
        mp_test_pester_start(&p, 100, 20000, NULL);
        int rc = run_wait(&o, k, 8);
        mp_test_pester_stop(&p);
        cr_assert_eq(rc, MP_EINTR, "%s: %s", wname[k], mp_err_name(rc));
        check_unchanged(&o, k);
    }
    cr_assert(mp_set_interruptible(false));
    objs_free(&o);
}

Test(rintr, a_cancel_from_another_thread_ends_each_wait)
{
    objs o;
    objs_make(&o);
    mp_cancel *c;
    mp_assert_ok(mp_cancel_create(&c));
    cr_assert_null(mp_cancel_set_current(c));
    for (int k = 0; k < W_N; k++) {
        mp_assert_ok(mp_cancel_reset(c));
        static mp_test_pester p;
        mp_test_pester_start(&p, 100, 0, c);
        int rc = run_wait(&o, k, 8);
        mp_test_pester_stop(&p);
        cr_assert_eq(rc, MP_ECANCELED, "%s: %s", wname[k], mp_err_name(rc));
        check_unchanged(&o, k);
    }
    /* Triggered before the call: a call that can complete does. */
    mp_assert_ok(mp_cancel_reset(c));
    mp_assert_ok(mp_cancel_trigger(c));
    mp_assert_rc(mp_sem_acquire(o.sem, 8), MP_ECANCELED);
    mp_assert_ok(mp_sem_release(o.sem));
    mp_assert_ok(mp_sem_acquire(o.sem, 8));
    mp_assert_ok(mp_queue_put(o.queue, "m", 1, 0));
    char buf[4];
    size_t n = 0;
    mp_assert_ok(mp_queue_get_into(o.queue, buf, sizeof(buf), &n, 8));
    cr_assert_eq(n, 1);
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(c);
    objs_free(&o);
}

Test(rintr, a_cancel_from_a_signal_handler_ends_a_wait)
{
    objs o;
    objs_make(&o);
    mp_cancel *c;
    mp_assert_ok(mp_cancel_create(&c));
    mp_cancel_set_current(c);
    mp_test_intr_from_handler = c;
    const int kinds[] = {W_LOCK, W_GET, W_ASYNC};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        mp_assert_ok(mp_cancel_reset(c));
        static mp_test_pester p;
        mp_test_pester_start(&p, 100, 0, NULL); /* one signal: the handler triggers c */
        int rc = run_wait(&o, kinds[i], 8);
        mp_test_pester_stop(&p);
        cr_assert_eq(rc, MP_ECANCELED, "%s: %s", wname[kinds[i]], mp_err_name(rc));
        check_unchanged(&o, kinds[i]);
    }
    mp_test_intr_from_handler = NULL;
    /* Reset: the next wait waits again (its timeout, here). */
    mp_assert_ok(mp_cancel_reset(c));
    mp_assert_rc(mp_lock_acquire(o.lock, 0.1), MP_ETIMEDOUT);
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(c);
    objs_free(&o);
}

/* ---- what a departed waiter must leave to the others --------------------- */

typedef struct other {
    mp_manager *m;
    pthread_t th;
    _Atomic int started;
    int rc;
} other;

/* A second waiter on the condition "C" (its own handle: a Redis lock's
 * holder is the handle), which enlists after the test's thread. */
static void *cond_waiter(void *arg)
{
    other *w = arg;
    mp_cond *c;
    opened(mp_manager_cond(w->m, "C", &c));
    mp_assert_ok(mp_cond_acquire(c, 10));
    atomic_store(&w->started, 1);
    w->rc = mp_cond_wait(c, 10);
    mp_assert_ok(mp_cond_release(c));
    mp_cond_destroy(c);
    return NULL;
}

/* The notify after an interrupted wait goes to the waiter that remains,
 * though the departed one had enlisted first (a notify takes the oldest
 * waiter): its entry left with it. */
Test(rintr, a_notify_after_an_interrupted_cond_wait_reaches_the_remaining_waiter)
{
    mp_manager *m = open_manager();
    mp_cond *c;
    opened(mp_manager_cond(m, "C", &c));
    static other w;
    w = (other){.m = m};
    mp_assert_ok(mp_cond_acquire(c, 0));
    cr_assert_eq(pthread_create(&w.th, NULL, cond_waiter, &w), 0); /* blocks on the lock */
    mp_set_interruptible(true);
    static mp_test_pester p;
    mp_test_pester_start(&p, 300, 20000, NULL);
    int rc = mp_cond_wait(c, 8); /* lets the lock go: w enlists after it */
    mp_test_pester_stop(&p);
    mp_set_interruptible(false);
    mp_assert_rc(rc, MP_EINTR);
    cr_assert(atomic_load(&w.started));
    cr_assert_eq(mp_rlock_count(mp_cond_get_rlock(c)), 1);
    cr_assert_eq(mp_cond_notify(c, 1), 1);
    mp_assert_ok(mp_cond_release(c));
    pthread_join(w.th, NULL);
    mp_assert_ok(w.rc);
    mp_cond_destroy(c);
    mp_manager_close(m);
}

static void *barrier_party(void *arg)
{
    other *w = arg;
    mp_barrier *b;
    opened(mp_manager_barrier(w->m, "B", 2, &b));
    w->rc = mp_barrier_wait(b, 10);
    mp_barrier_destroy(b);
    return NULL;
}

/* A party interrupted out of its phase is not counted: the phase then
 * needs two more arrivals, as if it had never come. */
Test(rintr, an_interrupted_barrier_party_is_counted_out)
{
    mp_manager *m = open_manager();
    mp_barrier *b;
    opened(mp_manager_barrier(m, "B", 2, &b));
    mp_set_interruptible(true);
    static mp_test_pester p;
    mp_test_pester_start(&p, 100, 20000, NULL);
    mp_assert_rc(mp_barrier_wait(b, 8), MP_EINTR);
    mp_test_pester_stop(&p);
    mp_set_interruptible(false);
    cr_assert_eq(mp_barrier_n_waiting(b), 0);
    static other w;
    w = (other){.m = m};
    cr_assert_eq(pthread_create(&w.th, NULL, barrier_party, &w), 0);
    int mine = mp_barrier_wait(b, 10);
    pthread_join(w.th, NULL);
    cr_assert(mine >= 0 && w.rc >= 0 && mine + w.rc == 1, "indexes %d and %d", mine, w.rc);
    mp_barrier_destroy(b);
    mp_manager_close(m);
}

/* Releases UNITS units of "S", one every 0.1-2 ms. */
#define UNITS 300

static void *sem_releaser(void *arg)
{
    other *w = arg;
    mp_sem *s;
    opened(mp_manager_sem(w->m, "S", NULL, &s));
    for (int i = 0; i < UNITS; i++) {
        mp_assert_ok(mp_sem_release(s));
        usleep((useconds_t)(i % 7) * 300 + 100);
    }
    atomic_store(&w->started, 1); /* all released */
    mp_sem_destroy(s);
    return NULL;
}

/* Interruptible acquires with signals every half millisecond while
 * another thread releases units: every unit released is taken once (an
 * acquire that answered 0; a grant popped just as a signal came is the
 * caller's, never dropped with the wait) or still in the value; none is
 * lost, none made twice. */
Test(rintr, interrupted_sem_acquires_lose_no_unit)
{
    mp_manager *m = open_manager();
    mp_sem *s;
    opened(mp_manager_sem(m, "S", NULL, &s));
    static other w;
    w = (other){.m = m};
    mp_set_interruptible(true);
    static mp_test_pester p;
    mp_test_pester_start(&p, 1, 500, NULL);
    cr_assert_eq(pthread_create(&w.th, NULL, sem_releaser, &w), 0);
    int taken = 0, intr = 0;
    for (int k = 0; k < 100000 && !(atomic_load(&w.started) && mp_sem_get_value(s) == 0); k++) {
        int rc = mp_sem_acquire(s, 0.05);
        cr_assert(rc == 0 || rc == MP_EINTR || rc == MP_ETIMEDOUT, "acquire: %s", mp_err_name(rc));
        taken += rc == 0;
        intr += rc == MP_EINTR;
    }
    mp_test_pester_stop(&p);
    mp_set_interruptible(false);
    pthread_join(w.th, NULL);
    int left = mp_sem_get_value(s);
    cr_assert_eq(taken + left, UNITS, "%d taken, %d left of %d", taken, left, UNITS);
    cr_assert_gt(intr, 0, "no acquire was interrupted");
    mp_sem_destroy(s);
    mp_manager_close(m);
}

/* The interrupted waiter leaves the semaphore's units to the others: a
 * release after it wakes the waiter that remains. */
static void *sem_waiter(void *arg)
{
    other *w = arg;
    mp_sem *s;
    opened(mp_manager_sem(w->m, "S", NULL, &s));
    atomic_store(&w->started, 1);
    w->rc = mp_sem_acquire(s, 10);
    mp_sem_destroy(s);
    return NULL;
}

Test(rintr, a_release_after_an_interrupted_acquire_reaches_the_remaining_waiter)
{
    mp_manager *m = open_manager();
    mp_sem *s;
    opened(mp_manager_sem(m, "S", NULL, &s));
    static other w;
    w = (other){.m = m};
    cr_assert_eq(pthread_create(&w.th, NULL, sem_waiter, &w), 0);
    mp_set_interruptible(true);
    static mp_test_pester p;
    mp_test_pester_start(&p, 100, 20000, NULL);
    mp_assert_rc(mp_sem_acquire(s, 8), MP_EINTR);
    mp_test_pester_stop(&p);
    mp_set_interruptible(false);
    cr_assert_eq(mp_sem_get_value(s), 0);
    mp_assert_ok(mp_sem_release(s));
    pthread_join(w.th, NULL);
    mp_assert_ok(w.rc);
    cr_assert_eq(mp_sem_get_value(s), 0);
    mp_sem_destroy(s);
    mp_manager_close(m);
}

/* ---- no message lost when the signal and the message cross -------------- */

#define MSGS 300

static void *producer(void *arg)
{
    other *w = arg;
    mp_queue *q;
    opened(mp_manager_queue(w->m, "Q", NULL, &q));
    for (int i = 0; i < MSGS; i++) {
        char msg[8];
        snprintf(msg, sizeof(msg), "%d", i);
        mp_assert_ok(mp_queue_put(q, msg, strlen(msg), 0));
        usleep((useconds_t)(i % 7) * 300);
    }
    mp_queue_destroy(q);
    return NULL;
}

/* Gets with signals every half millisecond, while a producer puts: every
 * message is got exactly once, in order, or still in the queue. A get
 * whose BLPOP the server served just as the signal came returns the
 * message; it is never dropped with the wait. */
Test(rintr, interrupted_gets_lose_no_message)
{
    mp_manager *m = open_manager();
    mp_queue *q;
    opened(mp_manager_queue(m, "Q", NULL, &q));
    static other w;
    w = (other){.m = m};
    static mp_test_pester p;
    mp_set_interruptible(true);
    mp_test_pester_start(&p, 0, 500, NULL);
    cr_assert_eq(pthread_create(&w.th, NULL, producer, &w), 0);
    int next = 0, intr = 0;
    while (next < MSGS) {
        char buf[8] = {0};
        size_t n = 0;
        int rc = mp_queue_get_into(q, buf, sizeof(buf) - 1, &n, 0.5);
        if (rc == MP_EINTR) {
            intr++;
            continue;
        }
        if (rc == MP_EEMPTY)
            break; /* the producer is done, the rest is checked below */
        mp_assert_ok(rc);
        cr_assert_eq(atoi(buf), next, "got %s, expected %d", buf, next);
        next++;
    }
    mp_test_pester_stop(&p);
    mp_set_interruptible(false);
    pthread_join(w.th, NULL);
    size_t left = 0;
    mp_assert_ok(mp_queue_qsize(q, &left));
    for (; left > 0; left--, next++) {
        char buf[8] = {0};
        size_t n = 0;
        mp_assert_ok(mp_queue_get_into(q, buf, sizeof(buf) - 1, &n, 0));
        cr_assert_eq(atoi(buf), next);
    }
    cr_assert_eq(next, MSGS, "messages lost: %d", MSGS - next);
    cr_assert_gt(intr, 0, "some gets were interrupted");
    mp_queue_destroy(q);
    mp_manager_close(m);
}

/* A user whom the server refuses CLIENT (an ACL): the wait cannot be
 * ended on the server, so it ends with its slice (at most a second), and
 * the call still answers MP_EINTR having changed nothing. */
Test(rintr, without_client_unblock_a_wait_ends_with_its_slice)
{
    mp_manager *m = open_manager();
    mp__redis *r = mp__manager_redis_conn(m);
    const char *acl[] = {"ACL", "SETUSER", "nocl", "on", ">pw2", "~*", "+@all", "-client"};
    mp_assert_ok(mp__redis_cmd(r, MP__RR_STATUS, NULL, 8, acl, NULL));
    char url[200];
    snprintf(url, sizeof(url), "redis://nocl:pw2@127.0.0.1:%d", srv.port);
    mp_manager *m2;
    mp_assert_ok(mp_manager_open(&m2, url));
    mp_sem *s;
    opened(mp_manager_sem(m2, "S", NULL, &s));
    mp_set_interruptible(true);
    static mp_test_pester p;
    mp_test_pester_start(&p, 100, 20000, NULL);
    int rc = mp_sem_acquire(s, 8);
    mp_test_pester_stop(&p);
    mp_set_interruptible(false);
    mp_assert_rc(rc, MP_EINTR);
    cr_assert_eq(mp_sem_get_value(s), 0);
    cr_assert_eq(key_int(m, "ZCARD", "sem:S:wait"), 0, "the waiter left");
    mp_sem_destroy(s);
    mp_manager_close(m2);
    mp_manager_close(m);
}
