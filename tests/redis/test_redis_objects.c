/* The queues, locks, events and values of a Redis manager, where they
 * differ from the local ones (the common behaviour is in
 * test_manager_sync.c, run on both backends): a server restarted or
 * stalled in the middle of a run, the functions a Redis queue does not
 * have, the key layout of docs/redis.md, the lease of a lock. Each test
 * starts its own redis-server and fails when it cannot. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis/redis_internal.h"
#include "redis/redis_pool.h"
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
    size_t n;
    char space[16];
    mp_assert_rc(mp_queue_reserve(q, 4, &buf, 0), MP_ENOSYS);
    mp_assert_rc(mp_queue_commit(q, space), MP_ENOSYS);
    mp_assert_rc(mp_queue_abort(q, space), MP_ENOSYS);
    mp_assert_rc(mp_queue_peek(q, &data, &n, 0), MP_ENOSYS);
    mp_assert_rc(mp_queue_release(q, space), MP_ENOSYS);
    mp_assert_rc(mp_queue_task_done(q), MP_EINVAL); /* not joinable, as locally */
    mp_assert_rc(mp_queue_join(q, 0), MP_EINVAL);
    mp_assert_rc(mp_wait(&MP_WAIT_QUEUE(q), 1, 0), 0); /* empty: not ready */
    /* Options a Redis queue cannot honour are refused, not dropped. */
    mp_queue *q2;
    mp_assert_rc(mp_manager_queue(m, "b", &(mp_queue_opts){.max_bytes = 64}, &q2), MP_ENOSYS);
    /* A joinable queue is another shape: each side refuses the other. */
    mp_assert_rc(mp_manager_queue(m, "q", &(mp_queue_opts){.joinable = true}, &q2), MP_EEXIST);
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
    cr_assert_str_eq(RAW(r, "EXISTS", "app:lock:l:fence", "app:rlock:rl:fence"), "0");
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

/* ---- names never collide (docs/redis.md, "Key layout") ------------------*/

/* A raw connection to the test's server, beside the manager's. */
static mp__redis *raw_conn(void)
{
    mp__redis_url u;
    mp__redis *r;
    mp_assert_ok(mp__redis_url_parse(&u, srv.url));
    mp_assert_ok(mp__redis_open(&r, &u));
    return r;
}

Test(redis_objects, a_lock_named_like_another_locks_owner_key_is_its_own)
{
    mp_manager *m = open_q(NULL);
    mp_lock *a, *b;
    mp_assert_rc(mp_manager_lock(m, "L:owner", &a), 1);
    mp_assert_rc(mp_manager_lock(m, "L", &b), 1);
    /* Two locks: each is free, neither sees the other's holder. */
    mp_assert_ok(mp_lock_acquire(a, 0));
    mp_assert_ok(mp_lock_acquire(b, 0));
    mp_assert_ok(mp_lock_release(b));
    mp_assert_ok(mp_lock_acquire(b, 0));
    mp_assert_ok(mp_lock_release(a));
    mp_assert_ok(mp_lock_release(b));
    mp_lock_destroy(a);
    mp_lock_destroy(b);
    mp_manager_close(m);
}

Test(redis_objects, a_bounded_semaphore_and_one_named_like_its_bound_are_apart)
{
    mp_manager *m = open_q(NULL);
    mp_sem *s, *smax;
    mp_assert_rc(mp_manager_sem(m, "s", &(mp_sem_opts){.value = 1, .bounded = true}, &s), 1);
    mp_assert_rc(mp_manager_sem(m, "s:max", &(mp_sem_opts){.value = 5}, &smax), 1);
    cr_assert_eq(mp_sem_get_value(smax), 5);
    for (int i = 0; i < 5; i++)
        mp_assert_ok(mp_sem_acquire(smax, 0));
    mp_assert_rc(mp_sem_acquire(smax, 0), MP_ETIMEDOUT);
    /* s keeps its bound of 1 and its value. */
    cr_assert_eq(mp_sem_get_value(s), 1);
    mp_assert_rc(mp_sem_release(s), MP_EOVERFLOW);
    mp_assert_ok(mp_sem_acquire(s, 0));
    mp_assert_ok(mp_sem_release(s));
    mp_sem_destroy(s);
    mp_sem_destroy(smax);
    mp_manager_close(m);
}

Test(redis_objects, removing_a_queue_leaves_the_queue_named_like_its_capacity)
{
    mp_manager *m = open_q(NULL);
    mp_queue *cap, *jobs;
    mp_assert_rc(mp_manager_queue(m, "jobs:maxsize", NULL, &cap), 1);
    mp_assert_ok(mp_queue_put(cap, "one", 3, 0));
    mp_assert_ok(mp_queue_put(cap, "two", 3, 0));
    mp_assert_rc(mp_manager_queue(m, "jobs", &(mp_queue_opts){.maxsize = 1}, &jobs), 1);
    mp_assert_ok(mp_queue_put(jobs, "j", 1, 0));
    mp_assert_rc(mp_queue_put(jobs, "k", 1, 0), MP_EFULL);
    mp_assert_ok(mp_manager_remove(m, "jobs", MP_MANAGER_DESTROY));
    size_t n;
    mp_assert_ok(mp_queue_qsize(cap, &n));
    cr_assert_eq(n, 2);
    get_str(cap, "one");
    get_str(cap, "two");
    mp_queue_destroy(cap);
    mp_queue_destroy(jobs);
    mp_manager_close(m);
}

/* The keys (KEYS *, the names hash left out) of one object. */
typedef struct keyset {
    char what[96];
    size_t n;
    char *key[4];
    size_t len[4];
} keyset;

static void keys_now(mp__redis *r, keyset *ks)
{
    redisReply *rep;
    mp_assert_ok(mp__redis_cmd(r, MP__RR_ARRAY, &rep, 2, (const char *[]){"KEYS", "*"}, NULL));
    ks->n = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *k = rep->element[i];
        if (k->len == 7 && memcmp(k->str, "x:names", 7) == 0)
            continue;
        cr_assert_lt(ks->n, 4, "%s: too many keys", ks->what);
        ks->key[ks->n] = malloc(k->len + 1);
        cr_assert_not_null(ks->key[ks->n]);
        memcpy(ks->key[ks->n], k->str, k->len + 1);
        ks->len[ks->n++] = k->len;
    }
    freeReplyObject(rep);
}

static const char *const hostile[] = {
    "a",      "a:owner", "a:max", "a:maxsize", "a%3Aowner",    "a%253Aowner", "%",
    "%3A",    "%%",      ":",     "::",        "a:",           ":a",          "names",
    "dict:a", "lock:a",  "a%",    " ",         "\x01\xff{}\n",
};

/* Makes the object of type t called name, in a state where every key it
 * can have exists. */
static void fill_object(mp_manager *m, int t, const char *name)
{
    void *h = NULL;
    switch (t) {
    case 0:
        mp_assert_rc(mp_manager_dict(m, name, (mp_dict **)&h), 1);
        mp_assert_ok(mp_dict_set_int64(h, "k", 1));
        mp_dict_destroy(h);
        break;
    case 1:
        mp_assert_rc(mp_manager_list(m, name, (mp_list **)&h), 1);
        mp_assert_ok(mp_list_append(h, &MP_ITEM_INT64(1)));
        mp_list_destroy(h);
        break;
    case 2:
        mp_assert_rc(mp_manager_namespace(m, name, (mp_namespace **)&h), 1);
        mp_assert_ok(mp_namespace_set_int(h, "k", 1));
        mp_namespace_destroy(h);
        break;
    case 3:
        mp_assert_rc(mp_manager_queue(m, name, &(mp_queue_opts){.maxsize = 4}, (mp_queue **)&h), 1);
        mp_assert_ok(mp_queue_put(h, "m", 1, 0));
        mp_queue_destroy(h);
        break;
    case 4: {
        /* A condition over the lock keeps its waiters in parts of the
         * lock's key: a wait that times out leaves its arrival count. */
        mp_assert_rc(mp_manager_lock(m, name, (mp_lock **)&h), 1);
        mp_cond *c;
        mp_assert_ok(mp_cond_create(&c, &(mp_cond_opts){.lock = h}));
        mp_assert_ok(mp_lock_acquire(h, 0));
        mp_assert_rc(mp_cond_wait(c, 0), MP_ETIMEDOUT);
        mp_cond_destroy(c);
        mp_lock_destroy(h);
        break;
    }
    case 5:
        mp_assert_rc(mp_manager_rlock(m, name, (mp_rlock **)&h), 1);
        mp_assert_ok(mp_rlock_acquire(h, 0));
        mp_rlock_destroy(h);
        break;
    case 6:
        mp_assert_rc(
            mp_manager_sem(m, name, &(mp_sem_opts){.value = 2, .bounded = true}, (mp_sem **)&h), 1);
        mp_sem_destroy(h);
        break;
    case 7:
        mp_assert_rc(mp_manager_event(m, name, (mp_event **)&h), 1);
        mp_assert_ok(mp_event_set(h));
        mp_event_destroy(h);
        break;
    case 8:
        mp_assert_rc(mp_manager_value(m, name,
                                      &(mp_value_opts){.typecode = 'q', .init = &(long long){3}},
                                      (mp_value **)&h),
                     1);
        mp_value_destroy(h);
        break;
    case 9:
        mp_assert_rc(
            mp_manager_array(m, name, &(mp_array_opts){.typecode = 'i', .len = 2}, (mp_array **)&h),
            1);
        mp_array_destroy(h);
        break;
    case 10:
        mp_assert_rc(mp_manager_cond(m, name, (mp_cond **)&h), 1);
        mp_assert_ok(mp_cond_acquire(h, 0));
        mp_assert_rc(mp_cond_wait(h, 0), MP_ETIMEDOUT);
        mp_cond_destroy(h);
        break;
    default:
        /* A timeout breaks it: state and outcomes. */
        mp_assert_rc(mp_manager_barrier(m, name, 2, (mp_barrier **)&h), 1);
        mp_assert_rc(mp_barrier_wait(h, 0), MP_EBROKEN);
        mp_barrier_destroy(h);
        break;
    }
}

static bool keysets_meet(const keyset *a, const keyset *b)
{
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++)
            if (a->len[i] == b->len[j] && memcmp(a->key[i], b->key[j], a->len[i]) == 0)
                return true;
    return false;
}

/* The keys of a distributed pool's name (no server needed: the names are
 * computed), with results of clients whose hex ids look like words. */
static void pool_keys(const char *name, keyset *ks)
{
    static const char *const what[] = {"tasks", "dead", "stop", "results:dead"};
    snprintf(ks->what, sizeof(ks->what), "pool '%s'", name);
    ks->n = 4;
    for (size_t i = 0; i < 4; i++) {
        mp_assert_ok(mp__redis_pool_key(&ks->key[i], "x:", name, what[i]));
        ks->len[i] = strlen(ks->key[i]);
    }
}

Test(redis_objects, hostile_names_of_every_type_have_disjoint_keys)
{
    mp_manager *m = open_q("prefix=x:");
    mp__redis *r = raw_conn();
    enum { NTYPES = 12, NNAMES = MP__ARRAY_LEN(hostile) };
    static keyset ks[NTYPES * NNAMES + NNAMES];
    size_t n = 0;
    mp_lock *l;
    mp_assert_rc(mp_manager_lock(m, "", &l), MP_EINVAL);
    for (int t = 0; t < NTYPES; t++) {
        for (size_t i = 0; i < NNAMES; i++, n++) {
            snprintf(ks[n].what, sizeof(ks[n].what), "type %d '%s'", t, hostile[i]);
            mp_assert_ok(
                mp__redis_cmd(r, MP__RR_STATUS, NULL, 1, (const char *[]){"FLUSHDB"}, NULL));
            fill_object(m, t, hostile[i]);
            keys_now(r, &ks[n]);
            cr_assert_gt(ks[n].n, 0, "%s has no key", ks[n].what);
            /* Destroy takes every key of the object, and the name. */
            mp_assert_ok(mp_manager_remove(m, hostile[i], MP_MANAGER_DESTROY));
            cr_assert_str_eq(RAW(r, "DBSIZE"), "0", "%s left keys", ks[n].what);
        }
    }
    for (size_t i = 0; i < NNAMES; i++)
        pool_keys(hostile[i], &ks[n++]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            cr_assert(!keysets_meet(&ks[i], &ks[j]), "%s and %s share a key", ks[i].what,
                      ks[j].what);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < ks[i].n; k++)
            free(ks[i].key[k]);
    mp__redis_unref(r);
    mp_manager_close(m);
}

/* ---- data this library did not write --------------------------------------*/

/* A key's DUMP (type and contents) in hex, "" when absent: UNCHANGED
 * asserts that a call that fails leaves the key exactly as it was. */
static void dump_of(mp__redis *r, const char *key, char *out, size_t cap)
{
    redisReply *rep;
    mp_assert_ok(mp__redis_cmd(r, MP__RR_STR_NIL, &rep, 2, (const char *[]){"DUMP", key}, NULL));
    cr_assert_lt(rep->len * 2 + 1, cap);
    out[0] = '\0';
    for (size_t i = 0; i < rep->len; i++)
        snprintf(out + 2 * i, 3, "%02x", (unsigned char)rep->str[i]);
    freeReplyObject(rep);
}

#define UNCHANGED(r, key, call, want)                                                              \
    do {                                                                                           \
        char before_[512], after_[512];                                                            \
        dump_of(r, key, before_, sizeof(before_));                                                 \
        int rc_ = (call);                                                                          \
        cr_assert(rc_ == (want), "%s gave %s over %s = %s", #call, mp_err_name(rc_), key,          \
                  before_);                                                                        \
        dump_of(r, key, after_, sizeof(after_));                                                   \
        cr_assert_str_eq(before_, after_, "%s changed %s", #call, key);                            \
    } while (0)

Test(redis_objects, malformed_semaphores_are_ebadmsg_and_left_alone)
{
    mp_manager *m = open_q("prefix=t:");
    mp__redis *r = raw_conn();
    mp_sem *s;
    mp_assert_rc(mp_manager_sem(m, "s", &(mp_sem_opts){.value = 1, .bounded = true}, &s), 1);
    static const char *const values[] = {"-7", "abc", " 5",   "5 ",         "+5",
                                         "05", "1e2", "0x10", "2147483648", "99999999999999999999",
                                         ""};
    for (size_t i = 0; i < MP__ARRAY_LEN(values); i++) {
        RAW(r, "SET", "t:sem:s", values[i]);
        UNCHANGED(r, "t:sem:s", mp_sem_acquire(s, 0), MP_EBADMSG);
        UNCHANGED(r, "t:sem:s", mp_sem_release(s), MP_EBADMSG);
        UNCHANGED(r, "t:sem:s", mp_sem_get_value(s), MP_EBADMSG);
    }
    /* A bound that is no number: neither acquire nor release trusts it. */
    RAW(r, "SET", "t:sem:s", "1");
    RAW(r, "SET", "t:sem:s:max", "zz");
    UNCHANGED(r, "t:sem:s", mp_sem_release(s), MP_EBADMSG);
    UNCHANGED(r, "t:sem:s", mp_sem_acquire(s, 0), MP_EBADMSG);
    RAW(r, "SET", "t:sem:s:max", "-2");
    UNCHANGED(r, "t:sem:s", mp_sem_release(s), MP_EBADMSG);
    /* Another Redis type under the value's key. */
    RAW(r, "DEL", "t:sem:s");
    RAW(r, "SET", "t:sem:s:max", "1");
    RAW(r, "HSET", "t:sem:s", "f", "1");
    UNCHANGED(r, "t:sem:s", mp_sem_acquire(s, 0), MP_EPROTO);
    UNCHANGED(r, "t:sem:s", mp_sem_release(s), MP_EPROTO);
    mp_sem_destroy(s);
    mp__redis_unref(r);
    mp_manager_close(m);
}

Test(redis_objects, popitem_of_foreign_data_leaves_it_in_place)
{
    mp_manager *m = open_q("prefix=t:");
    mp__redis *r = raw_conn();
    mp_dict *d;
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    RAW(r, "HSET", "t:dict:d", "k", "not a tagged value");
    void *key = NULL, *val = NULL;
    size_t klen, vlen;
    UNCHANGED(r, "t:dict:d", mp_dict_popitem(d, &key, &klen, &val, &vlen, NULL), MP_EBADMSG);
    cr_assert_null(key);
    cr_assert_null(val);
    RAW(r, "DEL", "t:dict:d");
    mp_assert_ok(mp_dict_set_int64(d, "n", 7));
    mp_assert_ok(mp_dict_popitem(d, &key, &klen, &val, &vlen, NULL));
    cr_assert(klen == 1 && memcmp(key, "n", 1) == 0);
    free(key);
    free(val);
    mp_assert_rc(mp_dict_popitem(d, &key, &klen, &val, &vlen, NULL), MP_EEMPTY);
    mp_dict_destroy(d);
    mp__redis_unref(r);
    mp_manager_close(m);
}

Test(redis_objects, foreign_data_under_a_condition_or_a_barrier_is_refused)
{
    mp_manager *m = open_q("prefix=t:");
    mp__redis *r = raw_conn();
    mp_cond *c;
    mp_barrier *b;
    mp_assert_rc(mp_manager_cond(m, "C", &c), 1);
    mp_assert_rc(mp_manager_barrier(m, "B", 2, &b), 1);
    /* A wait refuses before it lets the lock go: still held after. */
    mp_assert_ok(mp_cond_acquire(c, 0));
    RAW(r, "SET", "t:cond:C:cseq", "zz");
    UNCHANGED(r, "t:cond:C:cseq", mp_cond_wait(c, 0.01), MP_EBADMSG);
    cr_assert_eq(mp_rlock_count(mp_cond_get_rlock(c)), 1);
    RAW(r, "DEL", "t:cond:C:cseq");
    RAW(r, "SET", "t:cond:C:cwait", "x");
    UNCHANGED(r, "t:cond:C:cwait", mp_cond_wait(c, 0.01), MP_EPROTO);
    UNCHANGED(r, "t:cond:C:cwait", mp_cond_notify(c, 1), MP_EPROTO);
    RAW(r, "DEL", "t:cond:C:cwait");
    RAW(r, "LPUSH", "t:cond:C:cexp", "x");
    UNCHANGED(r, "t:cond:C:cexp", mp_cond_notify_all(c), MP_EPROTO);
    RAW(r, "DEL", "t:cond:C:cexp");
    mp_assert_rc(mp_cond_wait(c, 0.01), MP_ETIMEDOUT);
    mp_assert_ok(mp_cond_release(c));
    /* A barrier's state: a hash of counts this library wrote. */
    static const char *const counts[] = {"-1", "abc", "1e2", "", "99999999999999999999"};
    for (size_t i = 0; i < MP__ARRAY_LEN(counts); i++) {
        RAW(r, "HSET", "t:barrier:B", "count", counts[i]);
        UNCHANGED(r, "t:barrier:B", mp_barrier_wait(b, 0), MP_EBADMSG);
        UNCHANGED(r, "t:barrier:B", mp_barrier_abort(b), MP_EBADMSG);
        UNCHANGED(r, "t:barrier:B", mp_barrier_n_waiting(b), MP_EBADMSG);
    }
    RAW(r, "HSET", "t:barrier:B", "count", "0", "broken", "7");
    UNCHANGED(r, "t:barrier:B", mp_barrier_reset(b), MP_EBADMSG);
    RAW(r, "DEL", "t:barrier:B");
    RAW(r, "SET", "t:barrier:B", "1");
    UNCHANGED(r, "t:barrier:B", mp_barrier_wait(b, 0), MP_EPROTO);
    cr_assert_not(mp_barrier_broken(b)); /* an error reads as not broken */
    RAW(r, "DEL", "t:barrier:B");
    RAW(r, "SET", "t:barrier:B:hist", "1");
    UNCHANGED(r, "t:barrier:B:hist", mp_barrier_wait(b, 0), MP_EPROTO);
    RAW(r, "DEL", "t:barrier:B:hist");
    mp_assert_rc(mp_barrier_wait(b, 0), MP_EBROKEN);
    mp_cond_destroy(c);
    mp_barrier_destroy(b);
    mp__redis_unref(r);
    mp_manager_close(m);
}

Test(redis_objects, foreign_data_under_a_lock_or_an_event_is_refused)
{
    mp_manager *m = open_q("prefix=t:");
    mp__redis *r = raw_conn();
    mp_lock *l;
    mp_event *e;
    mp_assert_rc(mp_manager_lock(m, "L", &l), 1);
    mp_assert_rc(mp_manager_event(m, "E", &e), 1);
    /* A hash under the lock's key is no holder that will ever go away. */
    RAW(r, "HSET", "t:lock:L", "f", "v");
    UNCHANGED(r, "t:lock:L", mp_lock_acquire(l, 0), MP_EPROTO);
    cr_assert_str_eq(RAW(r, "EXISTS", "t:lock:L:owner"), "0");
    RAW(r, "DEL", "t:lock:L");
    /* Under the owner key: refused before the lock key is taken. */
    RAW(r, "HSET", "t:lock:L:owner", "f", "v");
    UNCHANGED(r, "t:lock:L:owner", mp_lock_acquire(l, 0), MP_EPROTO);
    cr_assert_str_eq(RAW(r, "EXISTS", "t:lock:L"), "0");
    RAW(r, "DEL", "t:lock:L:owner");
    /* A string that is no token of this library. */
    RAW(r, "SET", "t:lock:L", "somebody");
    UNCHANGED(r, "t:lock:L", mp_lock_acquire(l, 0), MP_EBADMSG);
    RAW(r, "DEL", "t:lock:L");
    /* Under the fence counter: another type, a text, a number INCR would
     * refuse; each refused before the lock key is taken. */
    const char *bad_fence[] = {"x", "-1", "12a", "1234567890123456789", ""};
    RAW(r, "HSET", "t:lock:L:fence", "f", "v");
    UNCHANGED(r, "t:lock:L:fence", mp_lock_acquire(l, 0), MP_EPROTO);
    cr_assert_str_eq(RAW(r, "EXISTS", "t:lock:L", "t:lock:L:owner"), "0");
    RAW(r, "DEL", "t:lock:L:fence");
    for (size_t i = 0; i < sizeof(bad_fence) / sizeof(bad_fence[0]); i++) {
        RAW(r, "SET", "t:lock:L:fence", bad_fence[i]);
        UNCHANGED(r, "t:lock:L:fence", mp_lock_acquire(l, 0), MP_EBADMSG);
        cr_assert_str_eq(RAW(r, "EXISTS", "t:lock:L", "t:lock:L:owner"), "0", "fence '%s'",
                         bad_fence[i]);
    }
    /* Under the wait set or the wake list: another type, refused before
     * anything is written, and so is a waiter's try (which would enlist). */
    const char *wakers[] = {"t:lock:L:wait", "t:lock:L:wake"};
    RAW(r, "DEL", "t:lock:L:fence");
    for (int i = 0; i < 2; i++) {
        RAW(r, "SET", wakers[i], "x");
        UNCHANGED(r, wakers[i], mp_lock_acquire(l, 0), MP_EPROTO);
        cr_assert_str_eq(RAW(r, "EXISTS", "t:lock:L", "t:lock:L:owner", "t:lock:L:fence"), "0",
                         "%s", wakers[i]);
        RAW(r, "DEL", wakers[i]);
    }
    /* A count it can go on from. */
    RAW(r, "SET", "t:lock:L:fence", "41");
    uint64_t t = 0;
    mp_assert_ok(mp_lock_acquire(l, 0));
    mp_assert_ok(mp_lock_token(l, &t));
    cr_assert_eq(t, 42);
    mp_assert_ok(mp_lock_release(l));
    /* An event is a string "1" or nothing. */
    RAW(r, "HSET", "t:event:E", "f", "v");
    UNCHANGED(r, "t:event:E", mp_event_wait(e, 0), MP_EPROTO);
    UNCHANGED(r, "t:event:E", mp_event_set(e), MP_EPROTO);
    UNCHANGED(r, "t:event:E", mp_event_clear(e), MP_EPROTO);
    cr_assert_not(mp_event_is_set(e));
    RAW(r, "DEL", "t:event:E");
    RAW(r, "SET", "t:event:E", "yes");
    UNCHANGED(r, "t:event:E", mp_event_wait(e, 0), MP_EBADMSG);
    UNCHANGED(r, "t:event:E", mp_event_set(e), MP_EBADMSG);
    UNCHANGED(r, "t:event:E", mp_event_clear(e), MP_EBADMSG);
    cr_assert_not(mp_event_is_set(e));
    RAW(r, "DEL", "t:event:E");
    mp_assert_ok(mp_event_set(e));
    mp_assert_ok(mp_event_wait(e, 0));
    mp_lock_destroy(l);
    mp_event_destroy(e);
    mp__redis_unref(r);
    mp_manager_close(m);
}

Test(redis_objects, malformed_numbers_of_values_arrays_and_queues_are_refused)
{
    mp_manager *m = open_q("prefix=t:");
    mp__redis *r = raw_conn();
    mp_value *d, *q;
    mp_array *a;
    mp_assert_rc(mp_manager_value(m, "d", &(mp_value_opts){.typecode = 'd'}, &d), 1);
    mp_assert_rc(mp_manager_value(m, "q", &(mp_value_opts){.typecode = 'q'}, &q), 1);
    mp_assert_rc(mp_manager_array(m, "a", &(mp_array_opts){.typecode = 'd', .len = 1}, &a), 1);
    static const char *const doubles[] = {"0x1p3", "  5", "5 ",   "nan(0x1)", "+5",
                                          "1e999", ".5",  "5.",   "1e",       "infinity",
                                          "1E5",   "--1", "0x10", "",         "NaN"};
    double x;
    for (size_t i = 0; i < MP__ARRAY_LEN(doubles); i++) {
        RAW(r, "SET", "t:value:d", doubles[i]);
        UNCHANGED(r, "t:value:d", mp_value_get_double(d, &x), MP_EBADMSG);
        UNCHANGED(r, "t:value:d", mp_value_add_double(d, 1, &x), MP_EBADMSG);
        RAW(r, "LSET", "t:array:a", "0", doubles[i]);
        UNCHANGED(r, "t:array:a", mp_array_get_double(a, 0, &x), MP_EBADMSG);
    }
    /* What the library writes reads back. */
    static const char *const good[] = {"5",    "-0.5", "1.5e-300",
                                       "-inf", "2.5",  "4.9406564584124654e-324"};
    for (size_t i = 0; i < MP__ARRAY_LEN(good); i++) {
        RAW(r, "SET", "t:value:d", good[i]);
        int rc = mp_value_get_double(d, &x);
        cr_assert(rc == 0, "'%s' gave %s", good[i], mp_err_name(rc));
    }
    static const char *const ints[] = {
        "abc", "-0", "05", " 5", "+5", "5.0", "0x10", "1e3", "99999999999999999999", ""};
    int64_t v;
    for (size_t i = 0; i < MP__ARRAY_LEN(ints); i++) {
        RAW(r, "SET", "t:value:q", ints[i]);
        UNCHANGED(r, "t:value:q", mp_value_get_i64(q, &v), MP_EBADMSG);
        UNCHANGED(r, "t:value:q", mp_value_add_i64(q, 1, &v), MP_EBADMSG);
    }
    /* Another Redis type: set does not replace it. */
    RAW(r, "DEL", "t:value:q");
    RAW(r, "HSET", "t:value:q", "f", "1");
    UNCHANGED(r, "t:value:q", mp_value_set_i64(q, 1), MP_EPROTO);
    UNCHANGED(r, "t:value:q", mp_value_get_i64(q, &v), MP_EPROTO);
    UNCHANGED(r, "t:value:q", mp_value_add_i64(q, 1, &v), MP_EPROTO);
    /* A queue's capacity. */
    mp_queue *qu;
    static const char *const caps[] = {" 5", "+5", "05", "-1", "5x", ""};
    for (size_t i = 0; i < MP__ARRAY_LEN(caps); i++) {
        RAW(r, "SET", "t:queue:qu:maxsize", caps[i]);
        int rc = mp_manager_queue(m, "qu", NULL, &qu);
        cr_assert(rc == MP_EBADMSG, "capacity '%s' gave %s", caps[i], mp_err_name(rc));
        RAW(r, "HDEL", "t:names", "qu");
    }
    mp_value_destroy(d);
    mp_value_destroy(q);
    mp_array_destroy(a);
    mp__redis_unref(r);
    mp_manager_close(m);
}
