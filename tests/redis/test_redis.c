/* Tests of the Redis backend of the manager against a real server:
 * authentication, connection loss, timeouts, reconnect, key prefixes, type
 * conflicts, handles, processes, malformed stored values, deadlines that
 * hold while signals arrive and against a server that trickles its replies
 * or never accepts. Each test starts its own redis-server (tests/helpers/redis_server.h) and fails
 * when it cannot. The pure parts are in test_redis_reply.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis/redis_internal.h"
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

/* The test servers: one started on a port another server holds exits,
 * and its start fails rather than hand out the other server (whose
 * clients would then share keys with this test's). */
Test(redis, a_test_server_on_a_taken_port_is_not_taken_for_ready)
{
    server_up();
    mp_test_redis other;
    cr_assert(mp_test_redis_start(&other, "s3cret") == 0, "%s", other.error);
    mp_test_redis_stop(&other, 1);
    other.port = srv.port; /* taken by srv's server */
    cr_assert_neq(mp_test_redis_restart(&other), 0, "a start on a taken port succeeded");
    cr_assert_eq(other.pid, 0);
    mp_test_redis_stop(&other, 0);
    /* srv's server still answers and its own restart works. */
    mp_test_redis_stop(&srv, 1);
    cr_assert_eq(mp_test_redis_restart(&srv), 0, "%s", srv.error);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_manager_close(m);
}

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

/* ---- a call's deadline holds whatever signals arrive ---------------------
 * timeout=1 in the URL bounds a whole call: connect, send and every read.
 * A stopped server (alive, silent) with a SIGALRM every 5 ms must not make
 * a call wait forever (a read restarted after each signal with a fresh
 * timeout would), and a signal during a connect is no I/O error. */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* A SIGALRM every 5 ms, its handler with or without SA_RESTART. */
static void alarms_start(bool restart)
{
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = restart ? SA_RESTART : 0};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
    alarms = 0;
    struct itimerval it = {.it_interval = {0, 5000}, .it_value = {0, 5000}};
    cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

/* Stops them; returns how many arrived. */
static int alarms_stop(void)
{
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_IGN); /* one may still be pending */
    return alarms;
}

typedef enum stalled_op {
    OP_DICT_GET,
    OP_QUEUE_GET,
    OP_LOCK_ACQUIRE,
    OP_SEM_ACQUIRE,
    OP_EVENT_WAIT,
    OP_MANAGER_OPEN,
} stalled_op;

/* op against a stopped server under signals: MP_ETIMEDOUT near the
 * deadline (the objects wait forever themselves: only the connection's
 * timeout can end the call). Then the server runs again, and the same
 * manager and handle work again (reconnect=1). */
static void stalled_call(stalled_op op, bool restart)
{
    server_up();
    char url[256];
    snprintf(url, sizeof(url), "%s?timeout=1&reconnect=1", srv.url);
    mp_manager *m, *m2 = NULL;
    mp_dict *d;
    mp_queue *q = NULL;
    mp_lock *l = NULL;
    mp_sem *s = NULL;
    mp_event *e = NULL;
    mp_assert_ok(mp_manager_open(&m, url));
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_rc(mp_manager_queue(m, "q", NULL, &q), 1);
    mp_assert_rc(mp_manager_lock(m, "l", &l), 1);
    mp_assert_rc(mp_manager_sem(m, "s", &(mp_sem_opts){.value = 0}, &s), 1);
    mp_assert_rc(mp_manager_event(m, "e", &e), 1);
    kill(srv.pid, SIGSTOP);
    alarms_start(restart);
    double t0 = mp_test_now();
    int64_t v = 0;
    void *data = NULL;
    size_t len = 0;
    int rc = MP_EINVAL;
    switch (op) {
    case OP_DICT_GET:
        rc = mp_dict_get_int64(d, "x", &v);
        break;
    case OP_QUEUE_GET:
        rc = mp_queue_get(q, &data, &len, -1);
        break;
    case OP_LOCK_ACQUIRE:
        rc = mp_lock_acquire(l, -1);
        break;
    case OP_SEM_ACQUIRE:
        rc = mp_sem_acquire(s, -1);
        break;
    case OP_EVENT_WAIT:
        rc = mp_event_wait(e, -1);
        break;
    case OP_MANAGER_OPEN:
        rc = mp_manager_open(&m2, url);
        break;
    }
    double took = mp_test_now() - t0;
    int n = alarms_stop();
    kill(srv.pid, SIGCONT);
    mp_assert_rc(rc, MP_ETIMEDOUT);
    cr_assert_gt(n, 0, "no signal arrived during the call");
    cr_assert_lt(took, 10.0, "a 1 s deadline took %.1f s", took); /* hang guard */
    /* The server runs again: the handles of the same manager work. */
    mp_assert_ok(mp_dict_set_int64(d, "x", 5));
    mp_assert_ok(mp_dict_get_int64(d, "x", &v));
    cr_assert_eq(v, 5);
    mp_assert_ok(mp_event_set(e));
    mp_assert_ok(mp_event_wait(e, 5));
    if (op == OP_MANAGER_OPEN) {
        mp_assert_ok(mp_manager_open(&m2, url));
        mp_manager_close(m2);
    }
    mp_event_destroy(e);
    mp_sem_destroy(s);
    mp_lock_destroy(l);
    mp_queue_destroy(q);
    mp_dict_destroy(d);
    mp_manager_close(m);
}

/* The new tests name the suite's timeout: under ASan, Criterion's runner
 * leaks a timeout record when tests of different timeouts run side by side. */
#define STALLED_TEST(name, op)                                                                     \
    Test(redis, name##_times_out_under_signals, .timeout = 60)                                     \
    {                                                                                              \
        stalled_call(op, false);                                                                   \
    }                                                                                              \
    Test(redis, name##_times_out_under_restarting_signals, .timeout = 60)                          \
    {                                                                                              \
        stalled_call(op, true);                                                                    \
    }

STALLED_TEST(dict_get, OP_DICT_GET)
STALLED_TEST(queue_get, OP_QUEUE_GET)
STALLED_TEST(lock_acquire, OP_LOCK_ACQUIRE)
STALLED_TEST(sem_acquire, OP_SEM_ACQUIRE)
STALLED_TEST(event_wait, OP_EVENT_WAIT)
STALLED_TEST(manager_open, OP_MANAGER_OPEN)

/* ---- a server that trickles its replies -----------------------------------
 * A thread on 127.0.0.1 speaking just enough of the protocol: PING and
 * HSETNX are answered at once (unless every reply is slow), anything else
 * with a valid reply sent one byte every 300 ms. A timeout that bounded
 * each read, not the call, would never end such a call. */

typedef struct trickler {
    int listen_fd, port;
    int stop[2]; /* written to: the thread ends */
    bool all_slow;
    pthread_t thread;
} trickler;

/* "<tag><decimal>\r\n" at b[*i]. */
static bool resp_number(const char *b, size_t n, size_t *i, char tag, size_t *out)
{
    if (*i >= n || b[*i] != tag)
        return false;
    size_t j = *i + 1, v = 0;
    while (j < n && b[j] >= '0' && b[j] <= '9')
        v = v * 10 + (size_t)(b[j++] - '0');
    if (j + 2 > n || b[j] != '\r')
        return false;
    *i = j + 2;
    *out = v;
    return true;
}

/* The first whole command in b[0..n): its name, and the bytes it spans. */
static bool resp_command(const char *b, size_t n, const char **name, size_t *name_len, size_t *used)
{
    size_t i = 0, argc, len;
    if (!resp_number(b, n, &i, '*', &argc) || argc == 0)
        return false;
    for (size_t a = 0; a < argc; a++) {
        if (!resp_number(b, n, &i, '$', &len) || i + len + 2 > n)
            return false;
        if (a == 0) {
            *name = b + i;
            *name_len = len;
        }
        i += len + 2;
    }
    *used = i;
    return true;
}

static const char slow_reply[] = "$31\r\nsthis text comes one byte a time\r\n";

static void trickle_serve(trickler *t, int c)
{
    char in[8192];
    size_t have = 0, sent = 0, out_len = 0;
    const char *out = NULL;
    bool slow = false;
    for (;;) {
        struct pollfd p[2] = {{.fd = c, .events = POLLIN}, {.fd = t->stop[0], .events = POLLIN}};
        int wait = sent < out_len ? (slow ? 300 : 0) : -1;
        if (poll(p, 2, wait) < 0 && errno != EINTR)
            return;
        if (p[1].revents)
            return;
        if (p[0].revents) {
            ssize_t k = recv(c, in + have, sizeof(in) - have, 0);
            if (k <= 0)
                return;
            have += (size_t)k;
        }
        const char *name;
        size_t name_len, used;
        if (sent == out_len && resp_command(in, have, &name, &name_len, &used)) {
            bool ping = name_len == 4 && strncasecmp(name, "PING", 4) == 0;
            bool hsetnx = name_len == 6 && strncasecmp(name, "HSETNX", 6) == 0;
            slow = t->all_slow || !(ping || hsetnx);
            out = slow && !ping ? slow_reply : ping ? "+PONG\r\n" : ":1\r\n";
            out_len = strlen(out);
            sent = 0;
            memmove(in, in + used, have - used);
            have -= used;
        }
        if (sent < out_len) {
            size_t chunk = slow ? 1 : out_len - sent;
            if (send(c, out + sent, chunk, MSG_NOSIGNAL) < 0)
                return;
            sent += chunk;
        }
    }
}

static void *trickle_main(void *arg)
{
    trickler *t = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = t->listen_fd, .events = POLLIN},
                              {.fd = t->stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return NULL;
        if (p[1].revents)
            return NULL;
        if (!p[0].revents)
            continue;
        int c = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) {
            trickle_serve(t, c);
            close(c);
        }
    }
}

/* A listening socket on 127.0.0.1 (a free port) with that backlog. */
static int listener(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, backlog), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void trickler_start(trickler *t, bool all_slow)
{
    t->all_slow = all_slow;
    t->listen_fd = listener(8, &t->port);
    cr_assert_eq(pipe2(t->stop, O_CLOEXEC), 0);
    cr_assert_eq(pthread_create(&t->thread, NULL, trickle_main, t), 0);
}

static void trickler_stop(trickler *t)
{
    cr_assert_eq(write(t->stop[1], "x", 1), 1);
    pthread_join(t->thread, NULL);
    close(t->stop[0]);
    close(t->stop[1]);
    close(t->listen_fd);
}

Test(redis, a_trickled_reply_times_out_the_call, .timeout = 60)
{
    trickler t;
    trickler_start(&t, false);
    mp_manager *m;
    mp_dict *d;
    mp_assert_ok(mp_manager_open(&m, url_with("redis://127.0.0.1:%d?timeout=1", t.port)));
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    double t0 = mp_test_now();
    int64_t v;
    mp_assert_rc(mp_dict_get_int64(d, "x", &v), MP_ETIMEDOUT);
    double took = mp_test_now() - t0;
    cr_assert_lt(took, 5.0, "a 1 s deadline took %.1f s", took); /* hang guard */
    /* The rest of the reply may still come: the connection is not used
     * again (reconnect=0: lost). */
    mp_assert_rc(mp_dict_get_int64(d, "x", &v), MP_ECONNRESET);
    mp_dict_destroy(d);
    mp_manager_close(m);
    trickler_stop(&t);
}

Test(redis, a_trickled_handshake_times_out_the_open, .timeout = 60)
{
    trickler t;
    trickler_start(&t, true);
    mp_manager *m = NULL;
    double t0 = mp_test_now();
    mp_assert_rc(mp_manager_open(&m, url_with("redis://127.0.0.1:%d?timeout=1", t.port)),
                 MP_ETIMEDOUT);
    double took = mp_test_now() - t0;
    cr_assert_lt(took, 5.0, "a 1 s deadline took %.1f s", took); /* hang guard */
    cr_assert_null(m);
    trickler_stop(&t);
}

/* ---- a listener that never accepts ----------------------------------------
 * Its accept queue is full (backlog 0 and connections nobody accepts), so
 * the kernel drops new SYNs: a connect stays in progress. Signals arriving
 * meanwhile must not turn the wait into an I/O error. */

#define FILLERS_MAX 16

static void connect_never_accepted(bool restart)
{
    int port, fillers[FILLERS_MAX], nf = 0;
    int l = listener(0, &port);
    bool pending = false;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    while (!pending && nf < FILLERS_MAX) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        cr_assert_geq(fd, 0);
        fillers[nf++] = fd;
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            continue;
        cr_assert_eq(errno, EINPROGRESS);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        pending = poll(&p, 1, 300) == 0; /* no answer to its SYN: the queue is full */
    }
    cr_assert(pending, "could not fill the accept queue of a listener");
    alarms_start(restart);
    mp_manager *m = NULL;
    double t0 = mp_test_now();
    int rc = mp_manager_open(&m, url_with("redis://127.0.0.1:%d?timeout=1", port));
    double took = mp_test_now() - t0;
    int n = alarms_stop();
    mp_assert_rc(rc, MP_ETIMEDOUT);
    cr_assert_gt(n, 0, "no signal arrived during the connect");
    cr_assert_lt(took, 10.0, "a 1 s deadline took %.1f s", took); /* hang guard */
    cr_assert_null(m);
    for (int i = 0; i < nf; i++)
        close(fillers[i]);
    close(l);
}

Test(redis, a_connect_never_accepted_times_out_under_signals, .timeout = 60)
{
    connect_never_accepted(false);
}

Test(redis, a_connect_never_accepted_times_out_under_restarting_signals, .timeout = 60)
{
    connect_never_accepted(true);
}
