/* The queues, locks, events and values of a Redis manager, where they
 * differ from the local ones (the common behaviour is in
 * test_manager_sync.c, run on both backends): a server restarted or
 * stalled in the middle of a run, the functions a Redis queue does not
 * have, the key layout of docs/design.md, the lease of a lock. Each test
 * starts its own redis-server and fails when it cannot. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis_internal.h"
#include "redis_server.h"

static mp_test_redis srv;

static void robj_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(redis_objects, .init = mp_test_fd_setup, .fini = robj_fini, .timeout = 60);

/* Starts the server and opens a manager with the URL options query. */
static mp_manager *open_q(const char *query)
{
    cr_assert(mp_test_redis_start(&srv, "pw") == 0, "cannot start redis-server: %s", srv.error);
    char url[256];
    snprintf(url, sizeof(url), "%s%s%s", srv.url, query ? "?" : "", query ? query : "");
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, url));
    return m;
}

static void get_str(mp_queue *q, const char *want)
{
    void *p;
    size_t n;
    mp_assert_ok(mp_queue_get(q, &p, &n, 5));
    cr_assert(n == strlen(want) && memcmp(p, want, n) == 0, "got %.*s", (int)n, (char *)p);
    free(p);
}

static bool is_conn_error(int rc)
{
    return rc == MP_ECONNRESET || rc == MP_ECONNREFUSED || rc == MP_EPIPE;
}

/* ---- a server restarted or stalled in the middle of a run -----------------*/

Test(redis_objects, queue_with_reconnect_survives_a_restart)
{
    mp_manager *m = open_q("reconnect=1&timeout=1");
    mp_queue *q;
    mp_assert_rc(mp_manager_queue(m, "q", &(mp_queue_opts){.maxsize = 8}, &q), 1);
    mp_assert_ok(mp_queue_put(q, "a", 1, 0));
    get_str(q, "a");
    mp_test_redis_stop(&srv, 1);
    /* Down: calls fail at once with a clear code, whatever their timeout. */
    double t0 = mp_test_now();
    void *p;
    size_t n;
    int rc = mp_queue_get(q, &p, &n, 30);
    cr_assert(is_conn_error(rc), "get gave %s", mp_err_name(rc));
    rc = mp_queue_put(q, "b", 1, 30);
    cr_assert(is_conn_error(rc), "put gave %s", mp_err_name(rc));
    cr_assert_lt(mp_test_now() - t0, 10.0);
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    /* Back (empty: no persistence): the same handle works again. */
    mp_assert_rc(mp_queue_get(q, &p, &n, 0.05), MP_EEMPTY);
    mp_assert_ok(mp_queue_put(q, "b", 1, 1));
    get_str(q, "b");
    /* A restart between two calls is not even seen. */
    mp_test_redis_stop(&srv, 1);
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    mp_assert_ok(mp_queue_put(q, "c", 1, 1));
    get_str(q, "c");
    mp_queue_destroy(q);
    mp_manager_close(m);
}

Test(redis_objects, queue_without_reconnect_stays_failed)
{
    mp_manager *m = open_q("timeout=1");
    mp_queue *q;
    mp_assert_rc(mp_manager_queue(m, "q", NULL, &q), 1);
    mp_assert_ok(mp_queue_put(q, "a", 1, 0));
    mp_test_redis_stop(&srv, 1);
    void *p;
    size_t n;
    int rc = mp_queue_get(q, &p, &n, 30);
    cr_assert(is_conn_error(rc), "get gave %s", mp_err_name(rc));
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    mp_assert_rc(mp_queue_get(q, &p, &n, 30), MP_ECONNRESET);
    mp_assert_rc(mp_queue_put(q, "b", 1, 30), MP_ECONNRESET);
    mp_queue_destroy(q);
    mp_manager_close(m);
}

static void *kill_server_soon(void *arg)
{
    (void)arg;
    usleep(200 * 1000);
    mp_test_redis_stop(&srv, 1);
    return NULL;
}

Test(redis_objects, a_blocked_get_ends_when_the_server_dies_or_stalls)
{
    mp_manager *m = open_q("timeout=0.5");
    mp_queue *q;
    mp_assert_rc(mp_manager_queue(m, "q", NULL, &q), 1);
    /* Killed while a get waits in BLPOP: the get fails, it does not hang. */
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, kill_server_soon, NULL), 0);
    double t0 = mp_test_now();
    void *p;
    size_t n;
    int rc = mp_queue_get(q, &p, &n, 30);
    cr_assert(is_conn_error(rc), "get gave %s", mp_err_name(rc));
    cr_assert_lt(mp_test_now() - t0, 10.0);
    pthread_join(t, NULL);
    mp_queue_destroy(q);
    mp_manager_close(m);
    /* Stalled (alive, silent): a get ends by the socket timeout. */
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    char url[256];
    snprintf(url, sizeof(url), "%s?timeout=0.3", srv.url);
    mp_assert_ok(mp_manager_open(&m, url));
    mp_assert_rc(mp_manager_queue(m, "q", NULL, &q), 1);
    kill(srv.pid, SIGSTOP);
    t0 = mp_test_now();
    mp_assert_rc(mp_queue_get(q, &p, &n, 0.2), MP_ETIMEDOUT);
    cr_assert_lt(mp_test_now() - t0, 10.0);
    kill(srv.pid, SIGCONT);
    mp_queue_destroy(q);
    mp_manager_close(m);
}

/* ---- what a Redis queue does not have ------------------------------------*/

Test(redis_objects, unsupported_functions_are_mp_enosys)
{
    mp_manager *m = open_q(NULL);
    mp_queue *q;
    mp_assert_rc(mp_manager_queue(m, "q", NULL, &q), 1);
    void *buf = NULL;
    const void *data;
    size_t n, lens[2];
    char space[16];
    mp_assert_rc(mp_queue_reserve(q, 4, &buf, 0), MP_ENOSYS);
    mp_assert_rc(mp_queue_commit(q, space), MP_ENOSYS);
    mp_assert_rc(mp_queue_abort(q, space), MP_ENOSYS);
    mp_assert_rc(mp_queue_peek(q, &data, &n, 0), MP_ENOSYS);
    mp_assert_rc(mp_queue_release(q, space), MP_ENOSYS);
    mp_assert_rc(mp_queue_get_many(q, space, sizeof(space), lens, 2, 0), MP_ENOSYS);
    mp_assert_rc(mp_queue_close(q), MP_ENOSYS);
    mp_assert_rc(mp_queue_task_done(q), MP_ENOSYS);
    mp_assert_rc(mp_queue_join(q, 0), MP_ENOSYS);
    mp_assert_rc(mp_wait(&MP_WAIT_QUEUE(q), 1, 0), MP_ENOSYS);
    /* Options a Redis queue cannot honour are refused, not dropped. */
    mp_queue *q2;
    mp_assert_rc(mp_manager_queue(m, "j", &(mp_queue_opts){.joinable = true}, &q2), MP_ENOSYS);
    mp_assert_rc(mp_manager_queue(m, "b", &(mp_queue_opts){.max_bytes = 64}, &q2), MP_ENOSYS);
    /* A value has no lock and no local memory: mp_value_add_* instead. */
    mp_value *v;
    mp_assert_rc(mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'q'}, &v), 1);
    cr_assert_null(mp_value_get_lock(v));
    cr_assert_null(mp_value_data(v));
    mp_value_destroy(v);
    mp_array *a;
    mp_assert_rc(mp_manager_array(m, "a", &(mp_array_opts){.typecode = 'i', .len = 2}, &a), 1);
    cr_assert_null(mp_array_get_lock(a));
    cr_assert_null(mp_array_data(a));
    mp_array_destroy(a);
    mp_assert_rc(mp_manager_array(m, "big", &(mp_array_opts){.typecode = 'b', .len = 1u << 21}, &a),
                 MP_ENOMEM);
    /* Types the backend does not serve. */
    mp_cond *c;
    mp_barrier *b;
    mp_assert_rc(mp_manager_cond(m, "c", &c), MP_ENOSYS);
    mp_assert_rc(mp_manager_barrier(m, "b", 2, &b), MP_ENOSYS);
    mp_queue_destroy(q);
    mp_manager_close(m);
}

/* ---- key layout and lease -------------------------------------------------*/

/* The reply of one command on a raw connection, as text ("" for nil,
 * the number for integers). */
static const char *raw(mp__redis *r, int argc, const char **argv)
{
    static char out[128];
    redisReply *rep;
    int rc = mp__redis_cmd(r, MP__RR_ANY_VALUE, &rep, argc, argv, NULL);
    cr_assert(rc == 0, "%s gave %s", argv[0], mp_err_name(rc));
    if (rep->type == REDIS_REPLY_INTEGER)
        snprintf(out, sizeof(out), "%lld", rep->integer);
    else if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS)
        snprintf(out, sizeof(out), "%.*s", (int)rep->len, rep->str);
    else
        out[0] = '\0';
    freeReplyObject(rep);
    return out;
}

#define RAW(r, ...)                                                                                \
    raw(r, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),                    \
        (const char *[]){__VA_ARGS__})

Test(redis_objects, key_layout_and_destroy)
{
    mp_manager *m = open_q("prefix=app:");
    mp_queue *q;
    mp_lock *l;
    mp_event *e;
    mp_value *v;
    mp_assert_rc(mp_manager_queue(m, "q", &(mp_queue_opts){.maxsize = 3}, &q), 1);
    mp_assert_rc(mp_manager_lock(m, "l", &l), 1);
    mp_assert_rc(mp_manager_event(m, "e", &e), 1);
    mp_assert_rc(
        mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'q', .init = &(long long){5}}, &v),
        1);
    mp_assert_ok(mp_queue_put(q, "m", 1, 0));
    mp_assert_ok(mp_lock_acquire(l, 0));
    mp_assert_ok(mp_event_set(e));
    mp__redis_url u;
    mp__redis *r;
    mp_assert_ok(mp__redis_url_parse(&u, srv.url));
    mp_assert_ok(mp__redis_open(&r, &u));
    cr_assert_str_eq(RAW(r, "HGET", "app:names", "q"), "queue");
    cr_assert_str_eq(RAW(r, "HGET", "app:names", "l"), "lock");
    cr_assert_str_eq(RAW(r, "HGET", "app:names", "e"), "event");
    cr_assert_str_eq(RAW(r, "HGET", "app:names", "v"), "value:q");
    cr_assert_str_eq(RAW(r, "LINDEX", "app:queue:q", "0"), "m");
    cr_assert_str_eq(RAW(r, "GET", "app:queue:q:maxsize"), "3");
    cr_assert_str_eq(RAW(r, "EXISTS", "app:lock:l", "app:lock:l:owner"), "2");
    cr_assert_str_eq(RAW(r, "EXISTS", "app:event:e"), "1");
    cr_assert_str_eq(RAW(r, "GET", "app:value:v"), "5");
    /* Removed without destroy: the data stay; with it: they go. */
    mp_assert_ok(mp_manager_remove(m, "v", 0));
    cr_assert_str_eq(RAW(r, "GET", "app:value:v"), "5");
    mp_assert_ok(mp_lock_release(l));
    mp_array *arr;
    mp_assert_rc(
        mp_manager_array(
            m, "a", &(mp_array_opts){.typecode = 'd', .len = 2, .init = (double[]){0.5, -1}}, &arr),
        1);
    cr_assert_str_eq(RAW(r, "HGET", "app:names", "a"), "array:d:2");
    cr_assert_str_eq(RAW(r, "LINDEX", "app:array:a", "0"), "0.5");
    cr_assert_str_eq(RAW(r, "LINDEX", "app:array:a", "1"), "-1");
    mp_assert_ok(mp_manager_remove(m, "a", MP_MANAGER_DESTROY));
    cr_assert_str_eq(RAW(r, "EXISTS", "app:array:a"), "0");
    mp_array_destroy(arr);
    mp_rlock *rl;
    mp_sem *sem;
    mp_assert_rc(mp_manager_rlock(m, "rl", &rl), 1);
    mp_assert_rc(mp_manager_sem(m, "s", &(mp_sem_opts){.value = 2, .bounded = true}, &sem), 1);
    mp_assert_ok(mp_rlock_acquire(rl, 0));
    mp_assert_ok(mp_rlock_acquire(rl, 0));
    cr_assert_str_eq(RAW(r, "HGET", "app:names", "rl"), "rlock");
    cr_assert_str_eq(RAW(r, "EXISTS", "app:rlock:rl", "app:rlock:rl:owner"), "2");
    cr_assert_str_eq(RAW(r, "HGET", "app:names", "s"), "sem");
    cr_assert_str_eq(RAW(r, "GET", "app:sem:s"), "2");
    cr_assert_str_eq(RAW(r, "GET", "app:sem:s:max"), "2");
    mp_assert_ok(mp_rlock_release(rl));
    mp_assert_ok(mp_rlock_release(rl));
    cr_assert_str_eq(RAW(r, "EXISTS", "app:rlock:rl", "app:rlock:rl:owner"), "0");
    const char *names[] = {"q", "l", "e", "rl", "s"};
    for (int i = 0; i < 5; i++)
        mp_assert_ok(mp_manager_remove(m, names[i], MP_MANAGER_DESTROY));
    cr_assert_str_eq(RAW(r, "EXISTS", "app:queue:q", "app:queue:q:maxsize", "app:lock:l",
                         "app:lock:l:owner", "app:event:e", "app:sem:s", "app:sem:s:max"),
                     "0");
    cr_assert_str_eq(RAW(r, "HLEN", "app:names"), "0");
    mp__redis_unref(r);
    mp_queue_destroy(q);
    mp_lock_destroy(l);
    mp_event_destroy(e);
    mp_value_destroy(v);
    mp_rlock_destroy(rl);
    mp_sem_destroy(sem);
    mp_manager_close(m);
}

Test(redis_objects, a_lock_held_past_its_lease_is_lost)
{
    mp_manager *m = open_q("lease=0.2");
    mp_lock *a, *b;
    mp_assert_rc(mp_manager_lock(m, "L", &a), 1);
    mp_assert_rc(mp_manager_lock(m, "L", &b), 0);
    mp_assert_ok(mp_lock_acquire(a, 0));
    /* The holder is the process through its handle. */
    mp_assert_rc(mp_lock_acquire(a, 0), MP_EDEADLK);
    mp_assert_rc(mp_lock_release(b), MP_EPERM);
    mp_assert_rc(mp_lock_consistent(b), MP_EPERM);
    /* a never releases within its lease: the next holder is told. */
    mp_assert_rc(mp_lock_acquire(b, 10), MP_EOWNERDEAD);
    mp_assert_rc(mp_lock_release(a), MP_EPERM); /* too late: a lost it */
    mp_assert_ok(mp_lock_release(b));
    mp_lock_destroy(a);
    mp_lock_destroy(b);
    mp_manager_close(m);
}
