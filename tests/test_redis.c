/* Tests of the Redis backend of the manager against a real server:
 * authentication, connection loss, timeouts, reconnect, key prefixes, type
 * conflicts, handles, processes, malformed stored values. Each test starts
 * its own redis-server (tests/helpers/redis_server.h) and fails when it
 * cannot. The pure parts are in test_redis_reply.c. */
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

static void redis_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(redis, .init = mp_test_fd_setup, .fini = redis_fini, .timeout = 60);

/* Starts the suite's server: a failure to start fails the test. */
static void server_up(void)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
}

static char *url_with(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *url_with(const char *fmt, ...)
{
    static char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

/* ---- a real server ------------------------------------------------------*/

Test(redis, wrong_or_missing_password_is_an_auth_error)
{
    server_up();
    mp_manager *m = NULL;
    mp_assert_rc(mp_manager_open(&m, url_with("redis://:wrong@127.0.0.1:%d", srv.port)), MP_EAUTH);
    mp_assert_rc(mp_manager_open(&m, url_with("redis://127.0.0.1:%d", srv.port)), MP_EAUTH);
    mp_assert_rc(mp_manager_open(&m, url_with("redis://nobody:s3cret@127.0.0.1:%d", srv.port)),
                 MP_EAUTH);
    cr_assert_null(m);
    /* The default ACL user, named. */
    mp_assert_ok(mp_manager_open(&m, url_with("redis://default:s3cret@127.0.0.1:%d", srv.port)));
    cr_assert_str_eq(mp_manager_backend(m), "redis");
    mp_manager_close(m);
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_manager_close(m);
    cr_assert_str_neq(mp_strerror(MP_EAUTH), "unknown error");
}

Test(redis, nobody_listening_is_refused)
{
    server_up();
    int port = srv.port;
    mp_test_redis_stop(&srv, 0);
    mp_manager *m;
    mp_assert_rc(mp_manager_open(&m, url_with("redis://:s3cret@127.0.0.1:%d", port)),
                 MP_ECONNREFUSED);
}

Test(redis, server_gone_fails_the_call)
{
    server_up();
    mp_manager *m;
    mp_dict *d;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_ok(mp_dict_set_int64(d, "x", 1));
    mp_test_redis_stop(&srv, 1);
    int rc = mp_dict_set_int64(d, "x", 2);
    cr_assert(rc == MP_ECONNRESET || rc == MP_EPIPE, "gave %s", mp_err_name(rc));
    /* reconnect=0: the connection stays failed, even with a server back. */
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    mp_assert_rc(mp_dict_set_int64(d, "x", 3), MP_ECONNRESET);
    mp_dict_destroy(d);
    mp_manager_close(m);
}

Test(redis, a_stopped_server_times_out)
{
    server_up();
    mp_manager *m;
    mp_dict *d;
    mp_assert_ok(mp_manager_open(&m, url_with("%s?timeout=0.3", srv.url)));
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    kill(srv.pid, SIGSTOP); /* alive but silent: only the timeout ends the call */
    double t0 = mp_test_now();
    mp_assert_rc(mp_dict_set_int64(d, "x", 1), MP_ETIMEDOUT);
    cr_assert_lt(mp_test_now() - t0, 10.0);
    kill(srv.pid, SIGCONT);
    mp_dict_destroy(d);
    mp_manager_close(m);
}

Test(redis, reconnect_after_a_restart)
{
    server_up();
    mp_manager *m;
    mp_dict *d;
    mp_assert_ok(mp_manager_open(&m, url_with("%s?reconnect=1", srv.url)));
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_ok(mp_dict_set_int64(d, "x", 1));
    mp_test_redis_stop(&srv, 1);
    /* While the server is down, calls fail at once with a clear error. */
    int rc = mp_dict_set_int64(d, "x", 2);
    cr_assert(rc == MP_ECONNREFUSED || rc == MP_ECONNRESET, "gave %s", mp_err_name(rc));
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    /* The server is back (empty: no persistence): calls work again. */
    int64_t v;
    mp_assert_rc(mp_dict_get_int64(d, "x", &v), MP_ENOENT);
    mp_assert_ok(mp_dict_set_int64(d, "x", 3));
    mp_assert_ok(mp_dict_get_int64(d, "x", &v));
    cr_assert_eq(v, 3);
    /* A restart between two calls is not even seen by the caller. */
    mp_test_redis_stop(&srv, 1);
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    mp_assert_ok(mp_dict_set_int64(d, "x", 4));
    mp_dict_destroy(d);
    mp_manager_close(m);
}

Test(redis, prefixes_isolate_applications)
{
    server_up();
    mp_manager *a, *b;
    mp_assert_ok(mp_manager_open(&a, url_with("%s?prefix=app1:", srv.url)));
    mp_assert_ok(mp_manager_open(&b, url_with("%s?prefix=app2:", srv.url)));
    mp_dict *da, *db;
    mp_list *lb;
    mp_assert_rc(mp_manager_dict(a, "shared-name", &da), 1);
    mp_assert_rc(mp_manager_list(b, "shared-name", &lb), 1); /* another app: no conflict */
    mp_assert_rc(mp_manager_dict(b, "config", &db), 1);
    mp_assert_ok(mp_dict_set_str(da, "k", "from a"));
    mp_assert_ok(mp_dict_set_str(db, "k", "from b"));
    size_t n;
    mp_assert_ok(mp_dict_len(da, &n));
    cr_assert_eq(n, 1);
    mp_assert_ok(mp_list_len(lb, &n));
    cr_assert_eq(n, 0);
    char *s;
    mp_assert_ok(mp_dict_get_str(da, "k", &s));
    cr_assert_str_eq(s, "from a");
    free(s);
    mp_dict_destroy(da);
    mp_dict_destroy(db);
    mp_list_destroy(lb);
    mp_manager_close(a);
    mp_manager_close(b);
}

Test(redis, names_have_one_type_and_handles_outlive_the_manager)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_dict *d, *d2;
    mp_list *l = NULL;
    mp_namespace *ns;
    mp_assert_rc(mp_manager_dict(m, "taken", &d), 1);
    mp_assert_rc(mp_manager_dict(m, "taken", &d2), 0);
    mp_assert_rc(mp_manager_list(m, "taken", &l), MP_EEXIST);
    cr_assert_null(l);
    mp_assert_rc(mp_manager_namespace(m, "taken", &ns), MP_EEXIST);
    mp_manager_close(m);
    mp_assert_ok(mp_dict_set_int64(d, "x", 7));
    int64_t v;
    mp_assert_ok(mp_dict_get_int64(d2, "x", &v)); /* two handles, one dict */
    cr_assert_eq(v, 7);
    mp_dict_destroy(d); /* releases the handle, not the data */
    mp_assert_ok(mp_dict_get_int64(d2, "x", &v));
    mp_dict_destroy(d2);
    /* A handle is not a local object, and a local object not a handle. */
    char fake[64] = {0};
    ((mp__obj_head *)(void *)fake)->backend = MP__BACKEND_REDIS;
    mp_assert_rc(mp_dict_set_int64((mp_dict *)(void *)fake, "x", 1), MP_EINVAL);
    mp_assert_rc(mp_list_append((mp_list *)(void *)fake, &MP_ITEM_INT64(1)), MP_EINVAL);
}

static const char *child_url;

static int add_in_child(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m;
    mp_dict *d;
    if (mp_manager_open(&m, child_url) < 0 || mp_manager_dict(m, "counter", &d) < 0)
        return 1;
    for (int i = 0; i < 50; i++)
        if (mp_dict_add_int64(d, "n", 1, NULL) < 0)
            return 2;
    mp_dict_destroy(d);
    mp_manager_close(m);
    return 0;
}

static mp_dict *inherited;

static int use_inherited_handle(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    for (int i = 0; i < 50; i++)
        if (mp_dict_add_int64(inherited, "n", 1, NULL) < 0)
            return 2;
    return 0;
}

static void run_children(mp_target_fn fn, int n)
{
    mp_process *p[4];
    for (int i = 0; i < n; i++) {
        mp_assert_ok(mp_process_create(&p[i], &(mp_process_opts){.target = fn}));
        mp_assert_ok(mp_process_start(p[i]));
    }
    for (int i = 0; i < n; i++) {
        int code = -1;
        mp_assert_ok(mp_process_join(p[i], 30));
        mp_assert_ok(mp_process_exitcode(p[i], &code));
        cr_assert_eq(code, 0, "child exit code %d", code);
        mp_process_destroy(p[i]);
    }
}

Test(redis, atomic_increments_from_several_processes)
{
    server_up();
    child_url = srv.url;
    run_children(add_in_child, 4);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_assert_rc(mp_manager_dict(m, "counter", &inherited), 0);
    /* Forked children using the parent's handle get their own connection. */
    MP_TEST_FORK_ONLY();
    run_children(use_inherited_handle, 4);
    int64_t n;
    mp_assert_ok(mp_dict_get_int64(inherited, "n", &n));
    cr_assert_eq(n, 400);
    mp_dict_destroy(inherited);
    mp_manager_close(m);
}

Test(redis, malformed_stored_values_are_refused)
{
    server_up();
    mp_manager *m;
    mp_dict *d;
    mp_list *l;
    mp_assert_ok(mp_manager_open(&m, url_with("%s?prefix=t:", srv.url)));
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_rc(mp_manager_list(m, "l", &l), 1);
    /* Another client writes what this library never would. */
    mp__redis_url u;
    mp__redis *r;
    mp_assert_ok(mp__redis_url_parse(&u, srv.url));
    mp_assert_ok(mp__redis_open(&r, &u));
    mp_assert_ok(mp__redis_cmd(r, MP__RR_INT, NULL, 4,
                               (const char *[]){"HSET", "t:dict:d", "k", "zzz"}, NULL));
    mp_assert_ok(
        mp__redis_cmd(r, MP__RR_INT, NULL, 3, (const char *[]){"RPUSH", "t:list:l", "i1x"}, NULL));
    mp_assert_ok(mp__redis_cmd(r, MP__RR_STATUS, NULL, 3,
                               (const char *[]){"SET", "t:dict:w", "string"}, NULL));
    mp__redis_unref(r);
    int64_t v;
    mp_snapshot *s;
    mp_assert_rc(mp_dict_get_int64(d, "k", &v), MP_EBADMSG);
    mp_assert_rc(mp_dict_items(d, &s), MP_EBADMSG);
    mp_assert_rc(mp_list_get_int64(l, 0, &v), MP_EBADMSG);
    mp_assert_rc(mp_list_slice(l, 0, MP_LIST_END, &s), MP_EBADMSG);
    mp_dict *w;
    mp_assert_rc(mp_manager_dict(m, "w", &w), 1);
    mp_assert_rc(mp_dict_set_int64(w, "x", 1), MP_EPROTO); /* WRONGTYPE */
    mp_dict_destroy(w);
    mp_dict_destroy(d);
    mp_list_destroy(l);
    mp_manager_close(m);
}

Test(redis, malformed_numbers_in_a_dict_are_refused)
{
    server_up();
    mp_manager *m;
    mp_dict *d;
    mp_assert_ok(mp_manager_open(&m, url_with("%s?prefix=t:", srv.url)));
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp__redis_url u;
    mp__redis *r;
    mp_assert_ok(mp__redis_url_parse(&u, srv.url));
    mp_assert_ok(mp__redis_open(&r, &u));
    static const char *const bad[] = {"d0x1p3",
                                      "d  5",
                                      "dnan(0x1)",
                                      "d+5",
                                      "d1e999",
                                      "d.5",
                                      "d5.",
                                      "dinfinity",
                                      "d1E5",
                                      "d",
                                      "i05",
                                      "i-0",
                                      "i+5",
                                      "i 5",
                                      "i5 ",
                                      "i0x10",
                                      "i99999999999999999999"};
    for (size_t i = 0; i < MP__ARRAY_LEN(bad); i++) {
        mp_assert_ok(mp__redis_cmd(r, MP__RR_INT, NULL, 4,
                                   (const char *[]){"HSET", "t:dict:d", "k", bad[i]}, NULL));
        double x;
        int64_t v;
        int rc = bad[i][0] == 'd' ? mp_dict_get_double(d, "k", &x) : mp_dict_get_int64(d, "k", &v);
        cr_assert(rc == MP_EBADMSG, "'%s' read as %s", bad[i], mp_err_name(rc));
        rc = mp_dict_add_int64(d, "k", 1, &v);
        cr_assert(rc == MP_EBADMSG, "add over '%s' gave %s", bad[i], mp_err_name(rc));
        redisReply *rep;
        mp_assert_ok(
            mp__redis_cmd(r, MP__RR_STR, &rep, 3, (const char *[]){"HGET", "t:dict:d", "k"}, NULL));
        cr_assert_str_eq(rep->str, bad[i]);
        freeReplyObject(rep);
    }
    /* Well-formed values of another type: MP_EPROTO, still unchanged. */
    mp_assert_ok(mp_dict_set_double(d, "k", 2.5));
    mp_assert_rc(mp_dict_add_int64(d, "k", 1, NULL), MP_EPROTO);
    double x;
    mp_assert_ok(mp_dict_get_double(d, "k", &x));
    cr_assert_eq(x, 2.5);
    mp__redis_unref(r);
    mp_dict_destroy(d);
    mp_manager_close(m);
}

Test(redis, add_int64_is_exact_at_the_ends_of_int64)
{
    server_up();
    mp_manager *m;
    mp_dict *d;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    int64_t v;
    mp_assert_ok(mp_dict_add_int64(d, "n", INT64_MAX, &v));
    cr_assert_eq(v, INT64_MAX);
    mp_assert_rc(mp_dict_add_int64(d, "n", 1, &v), MP_EOVERFLOW);
    mp_assert_ok(mp_dict_add_int64(d, "n", -1, &v));
    cr_assert_eq(v, INT64_MAX - 1);
    mp_assert_ok(mp_dict_add_int64(d, "n", INT64_MIN, &v));
    cr_assert_eq(v, -2);
    mp_assert_ok(mp_dict_add_int64(d, "n", INT64_MIN + 2, &v));
    cr_assert_eq(v, INT64_MIN);
    mp_assert_rc(mp_dict_add_int64(d, "n", -1, &v), MP_EOVERFLOW);
    mp_assert_ok(mp_dict_get_int64(d, "n", &v));
    cr_assert_eq(v, INT64_MIN);
    static const int64_t steps[] = {
        999999999, 1000000000, -1000000001, 123456789012345678, -987654321098765432, 1, -1, 0};
    int64_t want = 0;
    mp_assert_ok(mp_dict_set_int64(d, "n", 0));
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < MP__ARRAY_LEN(steps); i++) {
            want += steps[i];
            mp_assert_ok(mp_dict_add_int64(d, "n", steps[i], &v));
            cr_assert_eq(v, want);
        }
    mp_assert_ok(mp_dict_get_int64(d, "n", &v));
    cr_assert_eq(v, want);
    mp_dict_destroy(d);
    mp_manager_close(m);
}

static int add_5000(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m;
    mp_dict *d;
    if (mp_manager_open(&m, child_url) < 0 || mp_manager_dict(m, "counter", &d) < 0)
        return 1;
    int failed = 0;
    for (int i = 0; i < 5000; i++)
        if (mp_dict_add_int64(d, "n", 1, NULL) < 0)
            failed++;
    mp_dict_destroy(d);
    mp_manager_close(m);
    return failed ? 2 : 0;
}

Test(redis, add_int64_never_fails_under_contention)
{
    server_up();
    child_url = srv.url;
    run_children(add_5000, 3);
    mp_manager *m;
    mp_dict *d;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_assert_rc(mp_manager_dict(m, "counter", &d), 0);
    int64_t n;
    mp_assert_ok(mp_dict_get_int64(d, "n", &n));
    cr_assert_eq(n, 15000);
    mp_dict_destroy(d);
    mp_manager_close(m);
}

/* Writes other keys of the dict without a pause until "stop" appears. */
static int write_other_keys(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m;
    mp_dict *d;
    if (mp_manager_open(&m, child_url) < 0 || mp_manager_dict(m, "counter", &d) < 0)
        return 1;
    double end = mp_test_now() + 60; /* hang guard */
    int rc = 0;
    for (int64_t i = 0; rc == 0 && mp_test_now() < end; i++) {
        rc = mp_dict_set_int64(d, "other", i);
        if (rc == 0 && i % 16 == 0 && mp_dict_contains(d, "stop", 4) == 1)
            break;
    }
    mp_dict_destroy(d);
    mp_manager_close(m);
    return rc < 0 ? 2 : 0;
}

/* An optimistic add (WATCH on the whole hash) loses every race against a
 * client that writes other keys of the same dict; the server-side add
 * does not race at all. */
Test(redis, add_int64_is_not_starved_by_writers_of_other_keys)
{
    server_up();
    child_url = srv.url;
    mp_manager *m;
    mp_dict *d;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_assert_rc(mp_manager_dict(m, "counter", &d), 1);
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = write_other_keys}));
    mp_assert_ok(mp_process_start(p));
    /* Wait until the writer runs, so that every add below meets it. */
    while (mp_dict_contains(d, "other", 5) != 1)
        usleep(1000);
    int failed = 0, first = 0;
    for (int i = 0; i < 2000; i++) {
        int rc = mp_dict_add_int64(d, "n", 1, NULL);
        if (rc < 0 && failed++ == 0)
            first = rc;
    }
    mp_assert_ok(mp_dict_set_int64(d, "stop", 1));
    int code = -1;
    mp_assert_ok(mp_process_join(p, 60));
    mp_assert_ok(mp_process_exitcode(p, &code));
    mp_process_destroy(p);
    cr_assert_eq(code, 0, "writer exit code %d", code);
    cr_assert_eq(failed, 0, "%d adds failed, the first with %s", failed, mp_err_name(first));
    int64_t n;
    mp_assert_ok(mp_dict_get_int64(d, "n", &n));
    cr_assert_eq(n, 2000);
    mp_dict_destroy(d);
    mp_manager_close(m);
}

Test(redis, acl_users_authenticate)
{
    server_up();
    mp__redis_url u;
    mp__redis *r;
    mp_assert_ok(mp__redis_url_parse(&u, srv.url));
    mp_assert_ok(mp__redis_open(&r, &u));
    mp_assert_ok(mp__redis_cmd(
        r, MP__RR_STATUS, NULL, 7,
        (const char *[]){"ACL", "SETUSER", "app", "on", ">app-pw", "~*", "+@all"}, NULL));
    mp__redis_unref(r);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, url_with("redis://app:app-pw@127.0.0.1:%d", srv.port)));
    mp_dict *d;
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_ok(mp_dict_set_int64(d, "x", 1));
    mp_dict_destroy(d);
    mp_manager_close(m);
    mp_assert_rc(mp_manager_open(&m, url_with("redis://app:s3cret@127.0.0.1:%d", srv.port)),
                 MP_EAUTH);
}

typedef struct thread_arg {
    mp_dict *d;
    _Atomic int failures;
} thread_arg;

static void *add_in_thread(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 100; i++)
        if (mp_dict_add_int64(a->d, "n", 1, NULL) < 0 || mp_dict_set_int64(a->d, "x", i) < 0)
            a->failures++;
    return NULL;
}

Test(redis, one_manager_from_several_threads)
{
    server_up();
    mp_manager *m;
    mp_dict *d;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    pthread_t t[4];
    thread_arg a = {.d = d};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, add_in_thread, &a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(a.failures, 0);
    int64_t n;
    mp_assert_ok(mp_dict_get_int64(d, "n", &n));
    cr_assert_eq(n, 400);
    mp_dict_destroy(d);
    mp_manager_close(m);
}
