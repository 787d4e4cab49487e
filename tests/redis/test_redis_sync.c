/* Tests of the Redis implementations of queues, locks, events and values
 * (internal functions of src/redis/redis_queue.c and src/redis/redis_sync.c, below the
 * public API that test_manager_sync.c covers). Each test starts
 * its own redis-server and fails when it cannot. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis/redis_internal.h"
#include "redis_server.h"

static mp_test_redis srv;

static void sync_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(redis_sync, .init = mp_test_fd_setup, .fini = sync_fini, .timeout = 60);

static mp__redis *connect_server(void)
{
    cr_assert(mp_test_redis_start(&srv, "pw") == 0, "cannot start redis-server: %s", srv.error);
    mp__redis_url u;
    mp__redis *r;
    mp_assert_ok(mp__redis_url_parse(&u, srv.url));
    mp_assert_ok(mp__redis_open(&r, &u));
    return r;
}

static int child_exit(mp_target_fn fn)
{
    mp_process *p;
    int code = -1;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = fn}));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp_process_join(p, 30));
    mp_assert_ok(mp_process_exitcode(p, &code));
    mp_process_destroy(p);
    return code;
}

/* ---- lock ----------------------------------------------------------------*/

Test(redis_sync, lock_excludes_and_checks_its_holder)
{
    mp__redis *r = connect_server();
    mp__redis_lock *a, *b;
    mp_assert_ok(mp__redis_lock_open(&a, r, "L", 0));
    mp_assert_ok(mp__redis_lock_open(&b, r, "L", 0));
    mp_assert_rc(mp__redis_lock_release(a), MP_EPERM); /* not held */
    mp_assert_ok(mp__redis_lock_acquire(a, 0));
    mp_assert_rc(mp__redis_lock_acquire(a, 0), MP_EDEADLK);
    mp_assert_rc(mp__redis_lock_acquire(b, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp__redis_lock_acquire(b, 0.1), MP_ETIMEDOUT);
    mp_assert_rc(mp__redis_lock_release(b), MP_EPERM); /* b does not hold it */
    mp_assert_ok(mp__redis_lock_renew(a));
    mp_assert_ok(mp__redis_lock_release(a));
    mp_assert_ok(mp__redis_lock_acquire(b, 1)); /* released normally: no EOWNERDEAD */
    mp_assert_ok(mp__redis_lock_release(b));
    mp_assert_rc(mp__redis_lock_acquire(NULL, 0), MP_EINVAL);
    mp__redis_lock_close(a);
    mp__redis_lock_close(b);
    mp__redis_unref(r);
}

static mp__redis *conn;

static int hold_and_die(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp__redis_lock *l;
    if (mp__redis_lock_open(&l, conn, "L", 0.3) < 0 || mp__redis_lock_acquire(l, 5) != 0)
        return 1;
    _exit(0); /* dies holding it */
}

Test(redis_sync, a_dead_holders_lock_frees_itself_with_eownerdead)
{
    conn = connect_server();
    cr_assert_eq(child_exit(hold_and_die), 0);
    mp__redis_lock *l;
    mp_assert_ok(mp__redis_lock_open(&l, conn, "L", 0.3));
    double t0 = mp_test_now();
    mp_assert_rc(mp__redis_lock_acquire(l, 10), MP_EOWNERDEAD); /* once the lease ran out */
    cr_assert_lt(mp_test_now() - t0, 10.0);
    mp_assert_ok(mp__redis_lock_release(l));
    mp_assert_ok(mp__redis_lock_acquire(l, 1)); /* the next holder finds it clean */
    /* A holder that overran its lease lost the lock: its release says so. */
    usleep(500000);
    mp_assert_rc(mp__redis_lock_release(l), MP_EPERM);
    mp__redis_lock_close(l);
    mp__redis_unref(conn);
}

/* ---- event ---------------------------------------------------------------*/

static int set_event_later(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp__redis_obj *e;
    usleep(100000);
    if (mp__redis_obj_new(&e, conn, MP__MAGIC_REVENT, &mp__redis_event_ops, "event", "E") < 0 ||
        mp__redis_event_set(e) < 0)
        return 1;
    mp__redis_obj_free(e);
    return 0;
}

Test(redis_sync, event_set_clear_wait)
{
    conn = connect_server();
    mp__redis_obj *e;
    mp_assert_ok(mp__redis_obj_new(&e, conn, MP__MAGIC_REVENT, &mp__redis_event_ops, "event", "E"));
    mp_assert_rc(mp__redis_event_is_set(e), 0);
    mp_assert_rc(mp__redis_event_wait(e, 0.05), MP_ETIMEDOUT);
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = set_event_later}));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp__redis_event_wait(e, 20));
    mp_assert_rc(mp__redis_event_is_set(e), 1);
    mp_assert_ok(mp_process_join(p, 20));
    mp_process_destroy(p);
    mp_assert_ok(mp__redis_event_clear(e));
    mp_assert_rc(mp__redis_event_is_set(e), 0);
    mp__redis_obj_free(e);
    mp__redis_unref(conn);
}

/* Scripts go as EVALSHA once loaded; a server that lost them (SCRIPT
 * FLUSH, a restart) answers NOSCRIPT, and they are loaded again. */
Test(redis_sync, scripts_are_loaded_again_after_a_script_flush)
{
    conn = connect_server();
    mp__redis_lock *l;
    mp_assert_ok(mp__redis_lock_open(&l, conn, "F", 0));
    for (int i = 0; i < 3; i++) {
        mp_assert_ok(mp__redis_lock_acquire(l, 0));
        mp_assert_ok(mp__redis_lock_release(l));
        mp_assert_ok(
            mp__redis_cmd(conn, MP__RR_STATUS, NULL, 2, (const char *[]){"SCRIPT", "FLUSH"}, NULL));
    }
    mp__redis_lock_close(l);
    mp__redis_unref(conn);
}

/* ---- waiters woken by the server -----------------------------------------*/

/* The calls of a command since the last CONFIG RESETSTAT. */
static long long calls_of(mp__redis *r, const char *cmd)
{
    redisReply *rep;
    mp_assert_ok(
        mp__redis_cmd(r, MP__RR_STR, &rep, 2, (const char *[]){"INFO", "commandstats"}, NULL));
    char want[64];
    snprintf(want, sizeof(want), "cmdstat_%s:calls=", cmd);
    const char *at = strstr(rep->str, want);
    long long n = at ? atoll(at + strlen(want)) : 0;
    freeReplyObject(rep);
    return n;
}

/* The scripts run since the last CONFIG RESETSTAT (EVAL or EVALSHA). */
static long long scripts_run(mp__redis *r)
{
    return calls_of(r, "eval") + calls_of(r, "evalsha");
}

static void reset_stats(mp__redis *r)
{
    mp_assert_ok(
        mp__redis_cmd(r, MP__RR_STATUS, NULL, 2, (const char *[]){"CONFIG", "RESETSTAT"}, NULL));
}

static long long zcard(mp__redis *r, const char *key)
{
    redisReply *rep;
    char k[128];
    snprintf(k, sizeof(k), "mp:%s", key);
    mp_assert_ok(mp__redis_cmd(r, MP__RR_INT, &rep, 2, (const char *[]){"ZCARD", k}, NULL));
    long long n = rep->integer;
    freeReplyObject(rep);
    return n;
}

/* Waits (at most 20 s) until n waiters are enlisted in key. */
static void until_enlisted(mp__redis *r, const char *key, long long n)
{
    long long got = 0;
    for (int i = 0; i < 2000 && (got = zcard(r, key)) != n; i++)
        usleep(10000);
    cr_assert_eq(got, n, "%lld waiters enlisted in %s, not %lld", got, key, n);
}

static int wait_lock(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp__redis_lock *l;
    if (mp__redis_lock_open(&l, conn, "W", 0) < 0 || mp__redis_lock_acquire(l, 20) != 0)
        return 1;
    return mp__redis_lock_release(l) == 0 ? 0 : 2;
}

/* The same, holding the lock for 0.3 s. */
static int wait_lock_hold(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp__redis_lock *l;
    if (mp__redis_lock_open(&l, conn, "W", 0) < 0 || mp__redis_lock_acquire(l, 20) != 0)
        return 1;
    usleep(300000);
    return mp__redis_lock_release(l) == 0 ? 0 : 2;
}

static int wait_sem(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp__redis_sem *s;
    if (mp__redis_sem_open(&s, conn, "S", 0, false) < 0 || mp__redis_sem_acquire(s, 20) != 0)
        return 1;
    return 0;
}

static int wait_event(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp__redis_obj *e;
    if (mp__redis_obj_new(&e, conn, MP__MAGIC_REVENT, &mp__redis_event_ops, "event", "E") < 0 ||
        mp__redis_event_wait(e, 20) != 0)
        return 1;
    return 0;
}

static mp_process *start_fn(mp_target_fn fn)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = fn}));
    mp_assert_ok(mp_process_start(p));
    return p;
}

static void join_zero(mp_process *p)
{
    int code = -1;
    mp_assert_ok(mp_process_join(p, 30));
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0, "child exit code %d", code);
    mp_process_destroy(p);
}

/* A waiter blocks on the server: while it waits for 0.5 s it makes no
 * call (a poller with a 1-32 ms back-off makes about 20), and the
 * release grants it the lock: it holds it with no try of its own (no
 * acquire script runs after the release: LINDEX, which every try runs
 * and no release or claim does, never runs). */
Test(redis_sync, a_lock_waiter_is_woken_by_the_release_not_by_polling)
{
    conn = connect_server();
    mp__redis_lock *l;
    mp_assert_ok(mp__redis_lock_open(&l, conn, "W", 0));
    mp_assert_ok(mp__redis_lock_acquire(l, 0));
    mp_process *p = start_fn(wait_lock);
    until_enlisted(conn, "lock:W:wait", 1);
    reset_stats(conn);
    usleep(500000);
    long long during = scripts_run(conn);
    mp_assert_ok(mp__redis_lock_release(l));
    join_zero(p);
    /* The wait: no call but the BLPOP (a slice is a second). The rest:
     * the release, the waiter's claim and its own release. */
    cr_assert_eq(during, 0, "%lld scripts ran while the waiter waited", during);
    cr_assert_leq(scripts_run(conn), 3, "%lld scripts", scripts_run(conn));
    cr_assert_eq(calls_of(conn, "lindex"), 0, "the waiter took the lock with a try of its own");
    cr_assert_leq(calls_of(conn, "blpop"), 2);
    cr_assert_eq(zcard(conn, "lock:W:wait"), 0, "the waiter left the wait set");
    mp__redis_lock_close(l);
    mp__redis_unref(conn);
}

/* While a waiter is enlisted, a newcomer queues behind it: the released
 * lock goes to the waiter, not to the caller that asks right after the
 * release (no waiter starves). */
Test(redis_sync, a_newcomer_queues_behind_an_enlisted_waiter)
{
    conn = connect_server();
    mp__redis_lock *l, *newcomer;
    mp_assert_ok(mp__redis_lock_open(&l, conn, "W", 0));
    mp_assert_ok(mp__redis_lock_open(&newcomer, conn, "W", 0));
    mp_assert_ok(mp__redis_lock_acquire(l, 0));
    mp_process *p = start_fn(wait_lock_hold);
    until_enlisted(conn, "lock:W:wait", 1);
    mp_assert_ok(mp__redis_lock_release(l));
    /* The waiter is enlisted, or holds it: either way not ours. */
    mp_assert_rc(mp__redis_lock_acquire(newcomer, 0), MP_ETIMEDOUT);
    join_zero(p); /* it had the lock, and released it */
    mp_assert_ok(mp__redis_lock_acquire(newcomer, 0));
    mp_assert_ok(mp__redis_lock_release(newcomer));
    mp__redis_lock_close(l);
    mp__redis_lock_close(newcomer);
    mp__redis_unref(conn);
}

/* A waiter killed in its wait leaves an entry that expires by itself
 * (3 s). Meanwhile a newcomer that would not wait queues behind it, and
 * one that waits enlists and takes the wake-up the release left for the
 * dead one: nobody waits for the entry to expire. */
Test(redis_sync, a_killed_waiter_delays_no_one_and_its_entry_expires)
{
    conn = connect_server();
    mp__redis_lock *l;
    mp_assert_ok(mp__redis_lock_open(&l, conn, "W", 0));
    mp_assert_ok(mp__redis_lock_acquire(l, 0));
    mp_process *p = start_fn(wait_lock);
    until_enlisted(conn, "lock:W:wait", 1);
    mp_assert_ok(mp_process_kill(p));
    mp_assert_ok(mp_process_join(p, 20));
    mp_process_destroy(p);
    mp_assert_ok(mp__redis_lock_release(l));
    mp_assert_rc(mp__redis_lock_acquire(l, 0), MP_ETIMEDOUT); /* queued behind the entry */
    reset_stats(conn);
    mp_assert_ok(mp__redis_lock_acquire(l, 20));
    cr_assert_eq(calls_of(conn, "blpop"), 1, "one grant taken, no slice waited out");
    mp_assert_ok(mp__redis_lock_release(l));
    /* The dead waiter's entry goes within its 3 s (when a script looks,
     * or with the set's own expiry). */
    int rc = MP_ETIMEDOUT;
    for (int i = 0; i < 400 && rc == MP_ETIMEDOUT; i++)
        if ((rc = mp__redis_lock_acquire(l, 0)) == MP_ETIMEDOUT)
            usleep(25000);
    mp_assert_ok(rc);
    cr_assert_eq(zcard(conn, "lock:W:wait"), 0);
    mp_assert_ok(mp__redis_lock_release(l));
    mp__redis_lock_close(l);
    mp__redis_unref(conn);
}

/* A raw command whose reply is a string, a status or nil: the text in out
 * (cap 64, "" for nil). */
static void get_text(mp__redis *r, int argc, const char **argv, char *out)
{
    redisReply *rep;
    mp_assert_ok(mp__redis_cmd(r, MP__RR_ANY_VALUE, &rep, argc, argv, NULL));
    out[0] = '\0';
    if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS)
        snprintf(out, 64, "%s", rep->str);
    freeReplyObject(rep);
}

static void raw(mp__redis *r, int argc, const char **argv)
{
    mp_assert_ok(mp__redis_cmd(r, MP__RR_ANY_VALUE, NULL, argc, argv, NULL));
}

/* Enlists a waiter that never waits (no process behind it) in the wait
 * set key: its entry lasts ms on the server's clock. */
static void enlist_ghost(mp__redis *r, const char *key, const char *id, long ms)
{
    redisReply *t;
    mp_assert_ok(mp__redis_cmd(r, MP__RR_ANY_VALUE, &t, 1, (const char *[]){"TIME"}, NULL));
    long long now = atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
    freeReplyObject(t);
    char score[32];
    snprintf(score, sizeof(score), "%lld", now + ms);
    raw(r, 4, (const char *[]){"ZADD", key, score, id});
}

/* A release with a waiter enlisted grants the lock: a new token in the
 * wake list, for whoever pops it. Nobody popping it (the waiter was not
 * blocked then), the lock reads free, a newcomer that would not wait
 * still queues behind the entry, one that waits pops the grant at once,
 * and once the entry is gone the grant left by the next release goes to
 * the next acquirer's try. The fencing token rises with every hold, and
 * no grant is taken for a dead holder's (no MP_EOWNERDEAD). */
Test(redis_sync, a_grant_nobody_takes_is_free_for_the_next_acquirer)
{
    conn = connect_server();
    mp__redis_lock *l, *b;
    mp_assert_ok(mp__redis_lock_open(&l, conn, "W", 0));
    mp_assert_ok(mp__redis_lock_open(&b, conn, "W", 0));
    uint64_t t1, t2, t3;
    mp_assert_ok(mp__redis_lock_acquire(l, 0));
    mp_assert_ok(mp__redis_lock_token(l, &t1));
    enlist_ghost(conn, "mp:lock:W:wait", "999-dead", 1000);
    mp_assert_ok(mp__redis_lock_release(l));
    char g[64], v[64];
    get_text(conn, 3, (const char *[]){"LINDEX", "mp:lock:W:wake", "0"}, g);
    get_text(conn, 2, (const char *[]){"GET", "mp:lock:W"}, v);
    cr_assert(strncmp(g, "0-", 2) == 0 && strcmp(g, v) == 0, "grant %s, lock key %s", g, v);
    mp_assert_rc(mp__redis_lock_locked(l), 0); /* a grant nobody took: free */
    mp_assert_rc(mp__redis_lock_owner(l, NULL, NULL, NULL), MP_ESRCH);
    mp_assert_rc(mp__redis_lock_acquire(b, 0), MP_ETIMEDOUT); /* queued behind the entry */
    reset_stats(conn);
    mp_assert_ok(mp__redis_lock_acquire(b, 5)); /* enlists, pops the grant at once */
    cr_assert_eq(calls_of(conn, "blpop"), 1);
    mp_assert_ok(mp__redis_lock_token(b, &t2));
    cr_assert_gt(t2, t1);
    mp_assert_rc(mp__redis_lock_locked(l), 1);
    /* The ghost's entry is still there: the release grants again. */
    mp_assert_ok(mp__redis_lock_release(b));
    usleep(1100000);                            /* the entry's time is up */
    mp_assert_ok(mp__redis_lock_acquire(l, 0)); /* takes the grant: no MP_EOWNERDEAD */
    mp_assert_ok(mp__redis_lock_token(l, &t3));
    cr_assert_gt(t3, t2);
    cr_assert_eq(zcard(conn, "lock:W:wait"), 0);
    get_text(conn, 2, (const char *[]){"TYPE", "mp:lock:W:wake"}, g);
    redisReply *rep;
    mp_assert_ok(mp__redis_cmd(conn, MP__RR_ANY_VALUE, &rep, 2,
                               (const char *[]){"KEYS", "mp:lock:W:*"}, NULL));
    for (size_t i = 0; i < rep->elements; i++) /* no wake list left over */
        cr_assert(strstr(rep->element[i]->str, ":wake") == NULL, "left over: %s",
                  rep->element[i]->str);
    freeReplyObject(rep);
    mp_assert_ok(mp__redis_lock_release(l));
    mp__redis_lock_close(l);
    mp__redis_lock_close(b);
    mp__redis_unref(conn);
}

/* A waiter granted the lock holds it, 0.5 s, then dies without releasing. */
static int take_grant_and_die(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp__redis_lock *l;
    if (mp__redis_lock_open(&l, conn, "W", 2) < 0 || mp__redis_lock_acquire(l, 20) != 0)
        return 1;
    usleep(500000);
    _exit(0);
}

/* The grantee's claim names its process (mp_lock_owner), and a grantee
 * that dies holding the lock is a dead holder like any other: the next
 * acquirer gets MP_EOWNERDEAD once the lease ran out. So is one that died
 * before its claim reached the server (simulated: a grant taken, in the
 * owner key, its lease run out), while a grant nobody took is not. */
Test(redis_sync, a_grantee_that_dies_holding_the_lock_is_a_dead_holder)
{
    conn = connect_server();
    mp__redis_lock *l;
    mp_assert_ok(mp__redis_lock_open(&l, conn, "W", 2));
    mp_assert_ok(mp__redis_lock_acquire(l, 0));
    mp_process *p = start_fn(take_grant_and_die);
    until_enlisted(conn, "lock:W:wait", 1);
    mp_assert_ok(mp__redis_lock_release(l));
    pid_t pid = 0;
    for (int i = 0; i < 200 && pid != mp_process_pid(p); i++) {
        int rc = mp__redis_lock_owner(l, &pid, NULL, NULL);
        cr_assert(rc == 0 || rc == MP_ESRCH, "%s", mp_err_name(rc));
        if (pid != mp_process_pid(p))
            usleep(2000);
    }
    cr_assert_eq(pid, mp_process_pid(p), "owner %d, the grantee is %d", (int)pid,
                 (int)mp_process_pid(p));
    join_zero(p);
    mp_assert_rc(mp__redis_lock_acquire(l, 10), MP_EOWNERDEAD);
    mp_assert_ok(mp__redis_lock_release(l));
    /* Taken, not claimed: the owner key still holds the releaser's
     * token (or, from an older release, the grant itself). */
    const char *left[] = {"4242-abcdef", "0-ffff"};
    for (int i = 0; i < 2; i++) {
        raw(conn, 5, (const char *[]){"SET", "mp:lock:W", "0-ffff", "PX", "200"});
        raw(conn, 3, (const char *[]){"SET", "mp:lock:W:owner", left[i]});
        int rc = mp__redis_lock_acquire(l, 10);
        cr_assert_eq(rc, MP_EOWNERDEAD, "owner %s: %s", left[i], mp_err_name(rc));
        mp_assert_ok(mp__redis_lock_release(l));
    }
    /* Not taken: the grant still waits in the wake list, and the owner
     * key holds the token of the releaser that granted it, which did
     * release. */
    for (int i = 0; i < 2; i++) {
        raw(conn, 5, (const char *[]){"SET", "mp:lock:W", "0-fffff", "PX", "200"});
        raw(conn, 3, (const char *[]){"SET", "mp:lock:W:owner", left[i]});
        raw(conn, 3, (const char *[]){"RPUSH", "mp:lock:W:wake", "0-fffff"});
        int rc = mp__redis_lock_acquire(l, 0);
        cr_assert_eq(rc, 0, "owner %s: %s", left[i], mp_err_name(rc));
        mp_assert_ok(mp__redis_lock_release(l));
    }
    mp__redis_lock_close(l);
    mp__redis_unref(conn);
}

/* A thread that waits for the lock on a connection of its own, holds it
 * until told, then releases it. */
typedef struct flush_waiter {
    mp__redis_lock *l;
    atomic_int held, go;
    int rc;
} flush_waiter;

static void *flush_wait(void *arg)
{
    flush_waiter *w = arg;
    w->rc = mp__redis_lock_acquire(w->l, 10);
    atomic_store(&w->held, 1);
    while (!atomic_load(&w->go))
        usleep(1000);
    if (w->rc == 0)
        w->rc = mp__redis_lock_release(w->l);
    return NULL;
}

/* Connects conn and *c2, a connection of its own, and opens the lock
 * name through each: *a on conn, *b on *c2. */
static void two_handles(const char *name, mp__redis **c2, mp__redis_lock **a, mp__redis_lock **b)
{
    conn = connect_server();
    mp__redis_url u;
    mp_assert_ok(mp__redis_url_parse(&u, srv.url));
    mp_assert_ok(mp__redis_open(c2, &u));
    mp_assert_ok(mp__redis_lock_open(a, conn, name, 0));
    mp_assert_ok(mp__redis_lock_open(b, *c2, name, 0));
}

/* The pid a grantee's claim wrote, waiting up to 1 s for it to land. */
static pid_t claimed_pid(mp__redis_lock *l, pid_t want)
{
    pid_t pid = -1;
    for (int i = 0; i < 500 && pid != want; i++) {
        mp_assert_ok(mp__redis_lock_owner(l, &pid, NULL, NULL));
        if (pid != want)
            usleep(2000);
    }
    return pid;
}

/* A grantee's claim goes without waiting for its answer. Once the server
 * lost its scripts (SCRIPT FLUSH), the first claim cannot run: the
 * grantee holds the lock all the same, and its pid reads 0 (the grant's).
 * The NOSCRIPT answer, read at the connection's next call, makes the
 * process load the script again before the next claim, which names its
 * grantee. */
Test(redis_sync, a_claim_after_a_script_flush_loads_the_script_again)
{
    mp__redis *c2;
    mp__redis_lock *a, *b;
    two_handles("F2", &c2, &a, &b);
    for (int round = 0; round < 3; round++) {
        mp_assert_ok(mp__redis_lock_acquire(a, 5)); /* (the entry of round 1 lingers) */
        flush_waiter w = {.l = b};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, flush_wait, &w), 0);
        until_enlisted(conn, "lock:F2:wait", 1);
        if (round == 1)
            raw(conn, 2, (const char *[]){"SCRIPT", "FLUSH"});
        mp_assert_ok(mp__redis_lock_release(a));
        while (!atomic_load(&w.held))
            usleep(1000);
        mp_assert_ok(w.rc);
        if (round == 1) {
            usleep(50000);
            pid_t pid = -1;
            mp_assert_ok(mp__redis_lock_owner(a, &pid, NULL, NULL));
            cr_assert_eq(pid, 0, "round 1: owner %d", (int)pid);
        } else {
            cr_assert_eq(claimed_pid(a, getpid()), getpid(), "round %d", round);
        }
        atomic_store(&w.go, 1);
        pthread_join(t, NULL);
        mp_assert_ok(w.rc);
    }
    mp__redis_lock_close(a);
    mp__redis_lock_close(b);
    mp__redis_unref(c2);
    mp__redis_unref(conn);
}

/* A grantee's claim is sent corked and reaches the server later (with
 * its connection's next call, or about 0.2 s later on loopback). A grantee that releases
 * before its claim landed leaves the lock clean all the same: its release
 * takes its own entry out of the wait set (else it would count as a
 * waiter, and the lock would be granted to nobody), and clears the owner
 * key, which still held the releaser's token (else the next acquirer
 * would take the lock for a dead holder's). The claim, landing after,
 * changes nothing. */
Test(redis_sync, a_grantee_that_releases_before_its_claim_lands_leaves_it_clean)
{
    mp__redis *c2;
    mp__redis_lock *a, *b;
    two_handles("R", &c2, &a, &b);
    for (int round = 0; round < 3; round++) {
        mp_assert_ok(mp__redis_lock_acquire(a, 5));
        flush_waiter w = {.l = b};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, flush_wait, &w), 0);
        until_enlisted(conn, "lock:R:wait", 1);
        mp_assert_ok(mp__redis_lock_release(a));
        while (!atomic_load(&w.held))
            usleep(100);
        mp_assert_ok(w.rc);
        uint64_t fence = 0;
        mp_assert_ok(mp__redis_lock_token(b, &fence));
        atomic_store(&w.go, 1);
        pthread_join(t, NULL);
        mp_assert_ok(w.rc);
        /* Released at once, its claim most likely still in its socket. */
        cr_assert_eq(zcard(conn, "lock:R:wait"), 0, "round %d: the grantee's entry stayed", round);
        char v[64];
        get_text(conn, 2, (const char *[]){"GET", "mp:lock:R:owner"}, v);
        cr_assert_str_empty(v, "round %d: the owner key holds %s", round, v);
        int rc = mp__redis_lock_acquire(a, 5);
        cr_assert_eq(rc, 0, "round %d: %s", round, mp_err_name(rc));
        uint64_t next = 0;
        mp_assert_ok(mp__redis_lock_token(a, &next));
        cr_assert_gt(next, fence, "round %d", round);
        mp_assert_ok(mp__redis_lock_release(a));
    }
    /* The claims landed by now (about 0.2 s on loopback), and changed
     * nothing. */
    usleep(400000);
    cr_assert_eq(zcard(conn, "lock:R:wait"), 0);
    char v[64];
    get_text(conn, 2, (const char *[]){"GET", "mp:lock:R:owner"}, v);
    cr_assert_str_empty(v, "the owner key holds %s", v);
    mp__redis_lock_close(a);
    mp__redis_lock_close(b);
    mp__redis_unref(c2);
    mp__redis_unref(conn);
}

/* One release pushes one wake-up, however many wait, and the wake list
 * never holds more wake-ups than waiters: three waiters enlisted (no
 * process behind them, so nothing pops), four releases. */
Test(redis_sync, one_sem_release_wakes_one_waiter)
{
    conn = connect_server();
    mp__redis_sem *s;
    mp_assert_ok(mp__redis_sem_open(&s, conn, "S", 0, false));
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "w%d", i);
        mp_assert_ok(mp__redis_cmd(conn, MP__RR_INT, NULL, 4,
                                   (const char *[]){"ZADD", "mp:sem:S:wait", "9e15", id}, NULL));
    }
    long long want[] = {1, 2, 3, 3};
    for (int i = 0; i < 4; i++) {
        mp_assert_ok(mp__redis_sem_release(s));
        redisReply *rep;
        mp_assert_ok(mp__redis_cmd(conn, MP__RR_INT, &rep, 2,
                                   (const char *[]){"LLEN", "mp:sem:S:wake"}, NULL));
        cr_assert_eq(rep->integer, want[i], "after release %d: %lld wake-ups", i + 1, rep->integer);
        freeReplyObject(rep);
    }
    mp__redis_sem_close(s);
    mp__redis_unref(conn);
}

/* A release with a waiter blocked grants it the unit: the waiter's
 * acquire returns with no try of its own (DECR and LPOP, which only a try
 * runs, never run after the release), its entry gone with its BLPOP, and
 * the value stays 0. */
Test(redis_sync, a_sem_release_grants_the_unit_to_the_waiter)
{
    conn = connect_server();
    mp__redis_sem *s;
    mp_assert_ok(mp__redis_sem_open(&s, conn, "S", 0, false));
    for (int round = 0; round < 3; round++) {
        mp_process *p = start_fn(wait_sem);
        until_enlisted(conn, "sem:S:wait", 1);
        usleep(100000); /* in its BLPOP by now (else the grant waits for it) */
        reset_stats(conn);
        mp_assert_ok(mp__redis_sem_release(s));
        join_zero(p);
        cr_assert_eq(calls_of(conn, "rpush"), 1, "the release granted the unit");
        cr_assert_eq(calls_of(conn, "decr") + calls_of(conn, "lpop"), 0,
                     "the waiter tried the semaphore itself");
        cr_assert_eq(zcard(conn, "sem:S:wait"), 0);
        mp_assert_rc(mp__redis_sem_get_value(s), 0);
    }
    mp__redis_sem_close(s);
    mp__redis_unref(conn);
}

/* A grant nobody pops (its waiter never came: an entry with no process
 * behind it) is a unit still free: the value counts it, a bounded
 * semaphore's release counts it against the bound, a newcomer that would
 * not wait queues behind the entry, one that waits pops the grant at once,
 * and once the entry is gone a release adds to the value again. */
Test(redis_sync, a_sem_grant_nobody_pops_is_a_unit_still_free)
{
    conn = connect_server();
    mp__redis_sem *s;
    mp_assert_ok(mp__redis_sem_open(&s, conn, "SB", 1, true));
    mp_assert_ok(mp__redis_sem_acquire(s, 0));
    enlist_ghost(conn, "mp:sem:SB:wait", "999-dead", 1000);
    mp_assert_ok(mp__redis_sem_release(s));
    char v[64];
    get_text(conn, 2, (const char *[]){"GET", "mp:sem:SB"}, v);
    cr_assert_str_eq(v, "0", "the unit went to the wake list, not the value");
    mp_assert_rc(mp__redis_sem_get_value(s), 1);
    mp_assert_rc(mp__redis_sem_release(s), MP_EOVERFLOW);    /* 0 + 1 grant: at the bound */
    mp_assert_rc(mp__redis_sem_acquire(s, 0), MP_ETIMEDOUT); /* queued behind the entry */
    reset_stats(conn);
    mp_assert_ok(mp__redis_sem_acquire(s, 5)); /* enlists, pops the grant at once */
    cr_assert_eq(calls_of(conn, "blpop"), 1);
    mp_assert_rc(mp__redis_sem_get_value(s), 0);
    usleep(1100000); /* the entry's time is up */
    mp_assert_ok(mp__redis_sem_release(s));
    get_text(conn, 2, (const char *[]){"GET", "mp:sem:SB"}, v);
    cr_assert_str_eq(v, "1", "no waiter: the unit went to the value");
    mp_assert_ok(mp__redis_sem_acquire(s, 0));
    mp_assert_rc(mp__redis_sem_get_value(s), 0);
    mp__redis_sem_close(s);
    mp__redis_unref(conn);
}

/* Child: 40 rounds of acquire (up to 20 s), a short hold, release, on
 * "SK" (3 units). */
static int churn_sem(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp__redis_sem *s;
    if (mp__redis_sem_open(&s, conn, "SK", 3, true) < 0)
        return 1;
    for (int i = 0; i < 40; i++) {
        if (mp__redis_sem_acquire(s, 20) != 0)
            return 2;
        usleep((useconds_t)(i % 5) * 200);
        if (mp__redis_sem_release(s) != 0)
            return 3;
    }
    mp__redis_sem_close(s);
    return 0;
}

/* Units are conserved under contention and a waiter's death: a waiter
 * killed in its wait leaves an entry that releases grant units to until
 * it expires; those grants nobody pops stay units, and six processes
 * taking and giving back the three units 40 times each all finish, with
 * the three units (value and grants) there at the end. */
Test(redis_sync, sem_units_survive_contention_and_a_killed_waiter)
{
    conn = connect_server();
    mp__redis_sem *s;
    mp_assert_ok(mp__redis_sem_open(&s, conn, "SK", 3, true));
    for (int i = 0; i < 3; i++)
        mp_assert_ok(mp__redis_sem_acquire(s, 0));
    mp_process *victim = start_fn(churn_sem);
    until_enlisted(conn, "sem:SK:wait", 1);
    mp_assert_ok(mp_process_kill(victim));
    mp_assert_ok(mp_process_join(victim, 20));
    mp_process_destroy(victim);
    for (int i = 0; i < 3; i++) /* the dead entry counts: grants nobody pops */
        mp_assert_ok(mp__redis_sem_release(s));
    mp_assert_rc(mp__redis_sem_get_value(s), 3);
    mp_assert_rc(mp__redis_sem_release(s), MP_EOVERFLOW);
    mp_process *p[6];
    for (int k = 0; k < 6; k++)
        p[k] = start_fn(churn_sem);
    for (int k = 0; k < 6; k++)
        join_zero(p[k]);
    mp_assert_rc(mp__redis_sem_get_value(s), 3);
    for (int i = 0; i < 3; i++)
        mp_assert_ok(mp__redis_sem_acquire(s, 5));
    mp_assert_rc(mp__redis_sem_acquire(s, 0), MP_ETIMEDOUT);
    mp__redis_sem_close(s);
    mp__redis_unref(conn);
}

/* Three processes wait; three releases give each its unit. */
Test(redis_sync, sem_waiters_each_get_a_released_unit)
{
    conn = connect_server();
    mp__redis_sem *s;
    mp_assert_ok(mp__redis_sem_open(&s, conn, "S", 0, false));
    mp_process *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = start_fn(wait_sem);
    until_enlisted(conn, "sem:S:wait", 3);
    mp_assert_ok(mp__redis_sem_release(s));
    until_enlisted(conn, "sem:S:wait", 2);
    mp_assert_ok(mp__redis_sem_release(s));
    mp_assert_ok(mp__redis_sem_release(s));
    for (int i = 0; i < 3; i++)
        join_zero(p[i]);
    mp_assert_rc(mp__redis_sem_get_value(s), 0);
    mp__redis_sem_close(s);
    mp__redis_unref(conn);
}

/* A set wakes every waiter, and each returns even if the event was
 * cleared right after (as a local event, and Python's). */
Test(redis_sync, an_event_set_wakes_every_waiter_even_if_cleared_at_once)
{
    conn = connect_server();
    mp__redis_obj *e;
    mp_assert_ok(mp__redis_obj_new(&e, conn, MP__MAGIC_REVENT, &mp__redis_event_ops, "event", "E"));
    mp_process *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = start_fn(wait_event);
    until_enlisted(conn, "event:E:wait", 3);
    reset_stats(conn);
    mp_assert_ok(mp__redis_event_set(e));
    mp_assert_ok(mp__redis_event_clear(e));
    for (int i = 0; i < 3; i++)
        join_zero(p[i]);
    mp_assert_rc(mp__redis_event_is_set(e), 0);
    mp__redis_obj_free(e);
    mp__redis_unref(conn);
}

/* ---- condition and barrier -------------------------------------------------*/

/* Child: waits on the condition "C" (up to 30 s) and exits 0 when notified. */
static int wait_cond(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp__redis_cond *c;
    if (mp__redis_cond_open(&c, conn, "C", 0) < 0 || mp_cond_acquire((mp_cond *)c, 20) != 0)
        return 1;
    int rc = mp__redis_cond_wait(c, 30);
    if (mp_cond_release((mp_cond *)c) != 0)
        return 2;
    return rc == 0 ? 0 : 3;
}

/* A condition's waiter blocks on its own wake list: no call while it
 * waits, and a notify wakes it. */
Test(redis_sync, a_cond_waiter_is_woken_by_the_notify_not_by_polling)
{
    conn = connect_server();
    mp__redis_cond *c;
    mp_assert_ok(mp__redis_cond_open(&c, conn, "C", 0));
    mp_process *p = start_fn(wait_cond);
    until_enlisted(conn, "cond:C:cwait", 1);
    reset_stats(conn);
    usleep(500000);
    long long during = scripts_run(conn);
    mp_assert_ok(mp_cond_acquire((mp_cond *)c, 20));
    mp_assert_rc(mp__redis_cond_notify(c, 1), 1);
    mp_assert_ok(mp_cond_release((mp_cond *)c));
    join_zero(p);
    cr_assert_eq(during, 0, "%lld scripts ran while the waiter waited", during);
    cr_assert_eq(zcard(conn, "cond:C:cwait"), 0);
    mp__redis_cond_close(c);
    mp__redis_unref(conn);
}

/* A notify moves the waiter it chose into the lock's wait set, so the
 * notifier's release grants it the lock and the waiter takes it with no
 * try of its own: LINDEX, which every acquire try runs and no release,
 * notify or claim does, never runs. A waiter that tried first would find
 * the lock still held and only then wait. */
Test(redis_sync, a_notified_cond_waiter_takes_the_lock_by_the_releases_grant)
{
    conn = connect_server();
    mp__redis_cond *c;
    mp_assert_ok(mp__redis_cond_open(&c, conn, "C", 0));
    for (int round = 0; round < 3; round++) {
        mp_process *p = start_fn(wait_cond);
        until_enlisted(conn, "cond:C:cwait", 1);
        mp_assert_ok(mp_cond_acquire((mp_cond *)c, 20));
        reset_stats(conn);
        mp_assert_rc(mp__redis_cond_notify(c, 1), 1);
        cr_assert_eq(zcard(conn, "cond:C:cwait"), 0);
        cr_assert_eq(zcard(conn, "cond:C:wait"), 1, "the notify enlisted the waiter on the lock");
        if (round > 0) /* round 0: the grant waits in the list for its BLPOP */
            usleep(200000);
        mp_assert_ok(mp_cond_release((mp_cond *)c));
        join_zero(p);
        cr_assert_eq(calls_of(conn, "lindex"), 0, "the notified waiter tried the lock itself");
        cr_assert_eq(zcard(conn, "cond:C:wait"), 0);
    }
    mp__redis_cond_close(c);
    mp__redis_unref(conn);
}

/* A waiter a notify chose but that never takes the lock (killed between
 * the two) holds up no one: the release's grant waits in the wake list,
 * and the next acquirer takes it, while the moved entry is still in the
 * lock's wait set (here it never expires). */
Test(redis_sync, a_notified_waiter_that_never_comes_leaves_the_grant_to_the_next)
{
    conn = connect_server();
    mp__redis_cond *c, *c2;
    mp_assert_ok(mp__redis_cond_open(&c, conn, "C", 0));
    mp_assert_ok(mp__redis_cond_open(&c2, conn, "C", 0));
    redisReply *t;
    mp_assert_ok(mp__redis_cmd(conn, MP__RR_ANY_VALUE, &t, 1, (const char *[]){"TIME"}, NULL));
    char exp[32];
    snprintf(exp, sizeof(exp), "%lld",
             atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000 + 20000);
    freeReplyObject(t);
    raw(conn, 4, (const char *[]){"ZADD", "mp:cond:C:cwait", "1", "999-ghost"});
    raw(conn, 4, (const char *[]){"HSET", "mp:cond:C:cexp", "999-ghost", exp});
    mp_assert_ok(mp_cond_acquire((mp_cond *)c, 20));
    mp_assert_rc(mp__redis_cond_notify(c, 1), 1);
    cr_assert_eq(zcard(conn, "cond:C:wait"), 1);
    /* As if it renewed its entry for ever: nothing expires it. */
    raw(conn, 5, (const char *[]){"ZADD", "mp:cond:C:wait", "XX", "9e15", "999-ghost"});
    mp_assert_ok(mp_cond_release((mp_cond *)c));
    mp_assert_ok(mp_cond_acquire((mp_cond *)c2, 20));
    char score[64];
    get_text(conn, 3, (const char *[]){"ZSCORE", "mp:cond:C:wait", "999-ghost"}, score);
    cr_assert(score[0] != '\0', "the ghost's entry is still there");
    mp_assert_ok(mp_cond_release((mp_cond *)c2));
    mp__redis_cond_close(c2);
    mp__redis_cond_close(c);
    mp__redis_unref(conn);
}

/* Turns passed round four processes through one condition: shared
 * memory holds whose turn it is, which only the condition's lock guards.
 * Each process waits until its turn comes, takes it, and wakes all the
 * others (three are moved into the lock's wait set at every notify_all,
 * two of which find it is not their turn and wait again). */
#define TURN_PROCS  4
#define TURN_ROUNDS 25

typedef struct turns {
    int turn, inside, overlap, timeouts;
} turns;

static turns *tn;

static int take_turns(const void *arg, size_t len)
{
    (void)len;
    int me = *(const int *)arg;
    mp__redis_cond *c;
    if (mp__redis_cond_open(&c, conn, "T", 0) < 0)
        return 1;
    for (int r = 0; r < TURN_ROUNDS; r++) {
        if (mp_cond_acquire((mp_cond *)c, 20) != 0)
            return 2;
        while (tn->turn % TURN_PROCS != me)
            if (mp__redis_cond_wait(c, 20) != 0)
                tn->timeouts++;
        if (tn->inside++ != 0)
            tn->overlap++;
        usleep(200);
        tn->turn++;
        tn->inside--;
        if (mp__redis_cond_notify(c, UINT32_MAX) < 0 || mp_cond_release((mp_cond *)c) != 0)
            return 3;
    }
    mp__redis_cond_close(c);
    return 0;
}

Test(redis_sync, turns_pass_round_four_processes_with_notify_all)
{
    conn = connect_server();
    tn = mmap(NULL, sizeof(*tn), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert(tn != MAP_FAILED);
    mp_process *p[TURN_PROCS];
    for (int k = 0; k < TURN_PROCS; k++) {
        mp_assert_ok(mp_process_create(
            &p[k], &(mp_process_opts){.target = take_turns, .args = &k, .args_len = sizeof(k)}));
        mp_assert_ok(mp_process_start(p[k]));
    }
    for (int k = 0; k < TURN_PROCS; k++)
        join_zero(p[k]);
    cr_assert_eq(tn->turn, TURN_PROCS * TURN_ROUNDS);
    cr_assert_eq(tn->overlap, 0, "two processes held the lock at once");
    cr_assert_eq(tn->timeouts, 0, "a wait timed out: a wake-up or a grant was lost");
    cr_assert_eq(zcard(conn, "cond:T:wait"), 0);
    cr_assert_eq(zcard(conn, "cond:T:cwait"), 0);
    munmap(tn, sizeof(*tn));
    mp__redis_unref(conn);
}

/* A waiter killed in its wait stays enlisted until its entry expires (3 s
 * after it last renewed it); a notify then passes over it to a live
 * waiter enlisted after it. Without the expiry the notify would go to
 * the dead one and the live one would wait its 30 s out. */
Test(redis_sync, a_dead_cond_waiter_never_takes_a_notify_from_a_live_one)
{
    conn = connect_server();
    mp__redis_cond *c;
    mp_assert_ok(mp__redis_cond_open(&c, conn, "C", 0));
    mp_process *dead = start_fn(wait_cond);
    until_enlisted(conn, "cond:C:cwait", 1);
    double killed = mp_test_now();
    mp_assert_ok(mp_process_kill(dead));
    mp_assert_ok(mp_process_join(dead, 20));
    mp_process_destroy(dead);
    mp_process *live = start_fn(wait_cond);
    until_enlisted(conn, "cond:C:cwait", 2);
    while (mp_test_now() - killed < 3.3)
        usleep(50000);
    mp_assert_ok(mp_cond_acquire((mp_cond *)c, 20));
    mp_assert_rc(mp__redis_cond_notify(c, 1), 1);
    mp_assert_ok(mp_cond_release((mp_cond *)c));
    join_zero(live);
    cr_assert_eq(zcard(conn, "cond:C:cwait"), 0, "the dead waiter's entry went too");
    mp__redis_cond_close(c);
    mp__redis_unref(conn);
}

/* Child: one party of "B" (3 parties). */
static int wait_barrier(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp__redis_barrier *b;
    if (mp__redis_barrier_open(&b, conn, "B", 3) < 0)
        return 1;
    int rc = mp_barrier_wait((mp_barrier *)b, 20);
    mp_barrier_destroy((mp_barrier *)b);
    return rc >= 0 && rc < 2 ? 0 : 2;
}

Test(redis_sync, barrier_parties_are_woken_by_the_last_arrival_not_by_polling)
{
    conn = connect_server();
    mp__redis_barrier *b;
    mp_assert_ok(mp__redis_barrier_open(&b, conn, "B", 3));
    mp_process *p[2] = {start_fn(wait_barrier), start_fn(wait_barrier)};
    for (int i = 0; i < 2000 && mp_barrier_n_waiting((mp_barrier *)b) != 2; i++)
        usleep(10000);
    cr_assert_eq(mp_barrier_n_waiting((mp_barrier *)b), 2);
    reset_stats(conn);
    usleep(500000);
    long long during = scripts_run(conn);
    mp_assert_rc(mp_barrier_wait((mp_barrier *)b, 20), 2); /* the last of three */
    join_zero(p[0]);
    join_zero(p[1]);
    cr_assert_eq(during, 0, "%lld scripts ran while the parties waited", during);
    /* The last arrival; the parties it woke got their outcome with the
     * wake-up and run nothing. */
    cr_assert_eq(scripts_run(conn), 1, "%lld scripts", scripts_run(conn));
    mp_barrier_destroy((mp_barrier *)b);
    mp__redis_unref(conn);
}

/* ---- value ---------------------------------------------------------------*/

static int add_100(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp__redis_obj *v;
    if (mp__redis_obj_new(&v, conn, MP__MAGIC_RVALUE, NULL, "value", "n") < 0)
        return 1;
    for (int i = 0; i < 100; i++)
        if (mp__redis_value_add_int64(v, 1, NULL) < 0)
            return 2;
    mp__redis_obj_free(v);
    return 0;
}

Test(redis_sync, values_add_atomically)
{
    conn = connect_server();
    mp__redis_obj *v, *f;
    mp_assert_ok(mp__redis_obj_new(&v, conn, MP__MAGIC_RVALUE, NULL, "value", "n"));
    mp_assert_ok(mp__redis_obj_new(&f, conn, MP__MAGIC_RVALUE, NULL, "value", "f"));
    int64_t i;
    mp_assert_ok(mp__redis_value_get_int64(v, &i));
    cr_assert_eq(i, 0); /* absent reads 0 */
    for (int k = 0; k < 3; k++)
        cr_assert_eq(child_exit(add_100), 0);
    mp_assert_ok(mp__redis_value_get_int64(v, &i));
    cr_assert_eq(i, 300);
    mp_assert_ok(mp__redis_value_set_int64(v, INT64_MAX));
    mp_assert_rc(mp__redis_value_add_int64(v, 1, NULL), MP_EOVERFLOW);
    mp_assert_ok(mp__redis_value_add_int64(v, -1, &i));
    cr_assert_eq(i, INT64_MAX - 1);
    double d;
    mp_assert_ok(mp__redis_value_set_double(f, 0.5));
    mp_assert_ok(mp__redis_value_add_double(f, 0.25, &d));
    cr_assert_eq(d, 0.75);
    mp_assert_ok(mp__redis_value_get_double(f, &d));
    cr_assert_eq(d, 0.75);
    mp_assert_rc(mp__redis_value_get_int64(f, &i), MP_EPROTO); /* "0.75" is no int64 */
    mp__redis_obj_free(v);
    mp__redis_obj_free(f);
    mp__redis_unref(conn);
}

/* mp_wait on a Redis queue blocks on the server (one BLMOVE, no poll)
 * and leaves the message where it is: a getter that blocked on the queue
 * after the waiter still gets it. (One that blocked before takes it
 * first, and the waiter, finding the queue empty, waits on, as locally.) */
static int get_blocked(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp__redis_queue *q;
    void *m = NULL;
    size_t n;
    if (mp__redis_queue_open(&q, conn, "WQ", 0, false) < 0 ||
        mp__redis_queue_get(q, &m, &n, 20) != 0 || n != 1 || memcmp(m, "x", 1) != 0)
        return 1;
    free(m);
    mp__redis_queue_close(q);
    return 0;
}

static long long blocked_clients(void)
{
    redisReply *rep;
    mp_assert_ok(
        mp__redis_cmd(conn, MP__RR_STR, &rep, 2, (const char *[]){"INFO", "clients"}, NULL));
    const char *at = strstr(rep->str, "blocked_clients:");
    long long n = at ? atoll(at + 16) : 0;
    freeReplyObject(rep);
    return n;
}

static void until_blocked(long long n)
{
    for (int i = 0; i < 2000 && blocked_clients() != n; i++)
        usleep(5000);
    cr_assert_eq(blocked_clients(), n);
}

static mp_queue *wq;
static mp_event *we;
static void *wait_event_item(void *arg)
{
    mp_waitable w = MP_WAIT_EVENT(we);
    *(int *)arg = mp_wait(&w, 1, 20);
    return NULL;
}
static void *wait_queue(void *arg)
{
    mp_waitable w = MP_WAIT_QUEUE(wq);
    *(int *)arg = mp_wait(&w, 1, 20);
    return NULL;
}

Test(redis_sync, mp_wait_on_a_queue_blocks_on_the_server_and_takes_nothing)
{
    conn = connect_server();
    mp_assert_ok(mp__redis_queue_open((mp__redis_queue **)&wq, conn, "WQ", 0, false));
    int n = -1;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, wait_queue, &n), 0);
    until_blocked(1);
    mp_process *getter = start_fn(get_blocked);
    until_blocked(2);
    reset_stats(conn);
    usleep(300000);
    cr_assert_eq(calls_of(conn, "blmove") + calls_of(conn, "llen"), 0, "the wait polled");
    mp_assert_ok(mp_queue_put(wq, "x", 1, 0));
    cr_assert_eq(pthread_join(th, NULL), 0);
    join_zero(getter);
    cr_assert_eq(n, 1);
    size_t len = 9;
    mp_assert_ok(mp_queue_qsize(wq, &len));
    cr_assert_eq(len, 0, "the getter took the message, nothing else did");
    /* A wait that times out leaves no connection blocked. */
    mp_waitable w = MP_WAIT_QUEUE(wq);
    mp_assert_rc(mp_wait(&w, 1, 0.05), 0);
    until_blocked(0);
    mp__redis_queue_close((mp__redis_queue *)wq);
    mp__redis_unref(conn);
}

/* Child: sets and at once clears the event "WE". */
static int set_and_clear(const void *arg, size_t len)
{
    (void)arg, (void)len;
    mp__redis_obj *e;
    if (mp__redis_obj_new(&e, conn, MP__MAGIC_REVENT, &mp__redis_event_ops, "event", "WE") < 0 ||
        mp__redis_event_set(e) < 0 || mp__redis_event_clear(e) < 0)
        return 1;
    mp__redis_obj_free(e);
    return 0;
}

/* mp_wait on a Redis event is enlisted like the event's own waiters:
 * no call while it waits, and a set cleared at once still ends it. */
Test(redis_sync, mp_wait_on_an_event_never_misses_a_set_cleared_at_once)
{
    conn = connect_server();
    mp__redis_obj *e;
    mp_assert_ok(
        mp__redis_obj_new(&e, conn, MP__MAGIC_REVENT, &mp__redis_event_ops, "event", "WE"));
    int n = -1;
    pthread_t th;
    wq = NULL;
    we = (mp_event *)e;
    cr_assert_eq(pthread_create(&th, NULL, wait_event_item, &n), 0);
    until_enlisted(conn, "event:WE:wait", 1);
    reset_stats(conn);
    usleep(300000);
    long long during = scripts_run(conn);
    join_zero(start_fn(set_and_clear));
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(during, 0, "%lld scripts ran while mp_wait waited", during);
    cr_assert_eq(zcard(conn, "event:WE:wait"), 0, "mp_wait left the wait set");
    mp__redis_obj_free(e);
    mp__redis_unref(conn);
}

/* ---- queue ---------------------------------------------------------------*/

static int put_later(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp__redis_queue *q;
    usleep(100000);
    if (mp__redis_queue_open(&q, conn, "Q", 0, false) < 0 ||
        mp__redis_queue_put(q, "late", 4, 1) < 0)
        return 1;
    mp__redis_queue_close(q);
    return 0;
}

static mp__redis_queue *tq;

static void *get_one(void *arg)
{
    void *m = NULL;
    size_t n;
    int rc = mp__redis_queue_get(tq, &m, &n, 20);
    free(m);
    *(int *)arg = rc;
    return NULL;
}

/* A get blocks on a side connection: a put from another thread of the
 * same process goes at once and wakes it, in the get's first BLPOP
 * (on the handle's own connection, the put waited for the get's slice to
 * end, and the get needed a second BLPOP). */
Test(redis_sync, a_blocked_get_leaves_the_connection_to_a_putting_thread)
{
    conn = connect_server();
    mp_assert_ok(mp__redis_queue_open(&tq, conn, "T", 0, false));
    int got = 1;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, get_one, &got), 0);
    /* Until the get blocks on the server. */
    long long blocked = 0;
    for (int i = 0; i < 2000 && blocked < 1; i++) {
        redisReply *rep;
        mp_assert_ok(
            mp__redis_cmd(conn, MP__RR_STR, &rep, 2, (const char *[]){"INFO", "clients"}, NULL));
        const char *at = strstr(rep->str, "blocked_clients:");
        blocked = at ? atoll(at + 16) : 0;
        freeReplyObject(rep);
        if (blocked < 1)
            usleep(5000);
    }
    cr_assert_eq(blocked, 1, "the get never blocked");
    reset_stats(conn);
    mp_assert_ok(mp__redis_queue_put(tq, "x", 1, 0));
    cr_assert_eq(pthread_join(th, NULL), 0);
    mp_assert_ok(got);
    /* A BLPOP is counted when it is called: the blocked one before the
     * reset, a second one after it. */
    cr_assert_eq(calls_of(conn, "blpop"), 0, "%lld more BLPOPs: the first was not woken",
                 calls_of(conn, "blpop"));
    mp__redis_queue_close(tq);
    mp__redis_unref(conn);
}

/* The close's flag decides, not its wake-up: with the wake-up list gone
 * (a push-back lost with a connection), a blocked get still ends with
 * MP_ECLOSED at the end of its slice, not at its timeout. */
Test(redis_sync, a_closed_queue_without_its_wake_up_still_answers_closed)
{
    conn = connect_server();
    mp__redis_queue *q;
    mp_assert_ok(mp__redis_queue_open(&q, conn, "C", 0, false));
    mp_assert_ok(mp__redis_queue_shut(q));
    mp_assert_ok(mp__redis_cmd(conn, MP__RR_INT, NULL, 2,
                               (const char *[]){"DEL", "mp:queue:C:closedwake"}, NULL));
    void *m;
    size_t n;
    mp_assert_rc(mp__redis_queue_get(q, &m, &n, 20), MP_ECLOSED);
    mp_assert_rc(mp__redis_queue_put(q, "x", 1, 0), MP_ECLOSED);
    mp_assert_ok(mp__redis_queue_shut(q)); /* closed already: no second wake-up */
    redisReply *rep;
    mp_assert_ok(mp__redis_cmd(conn, MP__RR_INT, &rep, 2,
                               (const char *[]){"EXISTS", "mp:queue:C:closedwake"}, NULL));
    cr_assert_eq(rep->integer, 0);
    freeReplyObject(rep);
    mp__redis_queue_close(q);
    mp__redis_unref(conn);
}

Test(redis_sync, queue_fifo_timeouts_and_maxsize)
{
    conn = connect_server();
    mp__redis_queue *q, *q2;
    mp_assert_ok(mp__redis_queue_open(&q, conn, "Q", 2, false));
    mp_assert_ok(
        mp__redis_queue_open(&q2, conn, "Q", 100, false)); /* the first opener's maxsize holds */
    void *m;
    size_t n;
    mp_assert_rc(mp__redis_queue_get(q, &m, &n, 0), MP_EEMPTY);
    double t0 = mp_test_now();
    mp_assert_rc(mp__redis_queue_get(q, &m, &n, 0.2), MP_EEMPTY);
    cr_assert_geq(mp_test_now() - t0, 0.15);
    mp_assert_ok(mp__redis_queue_put(q, "one", 3, 0));
    mp_assert_ok(mp__redis_queue_put(q, "", 0, 0));
    mp_assert_rc(mp__redis_queue_put(q2, "three", 5, 0), MP_EFULL);
    mp_assert_rc(mp__redis_queue_put(q2, "three", 5, 0.1), MP_EFULL);
    mp_assert_ok(mp__redis_queue_qsize(q, &n));
    cr_assert_eq(n, 2);
    mp_assert_ok(mp__redis_queue_get(q2, &m, &n, 1));
    cr_assert(n == 3 && memcmp(m, "one", 4) == 0);
    free(m);
    mp_assert_ok(mp__redis_queue_get(q2, &m, &n, 1));
    cr_assert_eq(n, 0);
    free(m);
    /* A blocked get is woken by a put from another process. */
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = put_later}));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp__redis_queue_get(q, &m, &n, 20));
    cr_assert(n == 4 && memcmp(m, "late", 4) == 0);
    free(m);
    mp_assert_ok(mp_process_join(p, 20));
    mp_process_destroy(p);
    mp_assert_rc(mp__redis_queue_put(q, NULL, 1, 0), MP_EINVAL);
    mp_assert_rc(mp__redis_queue_get(q, NULL, &n, 0), MP_EINVAL);
    mp__redis_queue_close(q);
    mp__redis_queue_close(q2);
    mp__redis_unref(conn);
}

Test(redis_sync, blocking_get_fails_cleanly_when_the_server_dies)
{
    conn = connect_server();
    mp__redis_queue *q;
    mp_assert_ok(mp__redis_queue_open(&q, conn, "Q", 0, false));
    kill(srv.pid, SIGKILL);
    void *m;
    size_t n;
    int rc = mp__redis_queue_get(q, &m, &n, 30);
    cr_assert(rc == MP_ECONNRESET || rc == MP_ECONNREFUSED, "gave %s", mp_err_name(rc));
    mp__redis_queue_close(q);
    mp__redis_unref(conn);
}
