/* Tests of the Redis backend of the manager: URLs, authentication,
 * connection loss, reconnect, key prefixes, and the checks on replies
 * (malformed replies, malformed stored values). Each test that needs a
 * server starts its own redis-server (tests/helpers/redis_server.h) and
 * fails when it cannot. */
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

TestSuite(redis_url, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(redis_reply, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
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

/* ---- URLs ---------------------------------------------------------------*/

Test(redis_url, good_urls)
{
    mp__redis_url u;
    mp_assert_ok(mp__redis_url_parse(&u, "redis://localhost"));
    cr_assert_str_eq(u.host, "localhost");
    cr_assert_eq(u.port, 6379);
    cr_assert_eq(u.db, 0);
    cr_assert_null(u.password);
    cr_assert_null(u.user);
    cr_assert_str_eq(u.prefix, "mp:");
    cr_assert_eq(u.timeout, 5.0);
    cr_assert(!u.reconnect && !u.tls);
    mp__redis_url_fini(&u);

    mp_assert_ok(mp__redis_url_parse(&u, "redis://:pa%40ss@10.0.0.1:7000/3"));
    cr_assert_str_eq(u.host, "10.0.0.1");
    cr_assert_eq(u.port, 7000);
    cr_assert_eq(u.db, 3);
    cr_assert_str_eq(u.password, "pa@ss");
    cr_assert_null(u.user);
    mp__redis_url_fini(&u);

    mp_assert_ok(mp__redis_url_parse(
        &u, "redis://app:pw@[::1]:6380/1?prefix=app1%3A&timeout=0.25&reconnect=1"));
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 6380);
    cr_assert_str_eq(u.user, "app");
    cr_assert_str_eq(u.password, "pw");
    cr_assert_str_eq(u.prefix, "app1:");
    cr_assert_eq(u.timeout, 0.25);
    cr_assert(u.reconnect);
    mp__redis_url_fini(&u);

    mp_assert_ok(mp__redis_url_parse(&u, "rediss://h/?prefix="));
    cr_assert(u.tls);
    cr_assert_str_eq(u.prefix, "");
    mp__redis_url_fini(&u);
}

Test(redis_url, bad_urls)
{
    static const char *const bad[] = {
        "redis://",                /* no host */
        "redis://:pw@",            /* no host after the password */
        "redis://h:0",             /* port out of range */
        "redis://h:65536",         /* port out of range */
        "redis://h:12x",           /* port not a number */
        "redis://h/x",             /* db not a number */
        "redis://h/-1",            /* db negative */
        "redis://h?timeout=0",     /* timeout must be positive */
        "redis://h?timeout=abc",   /* timeout not a number */
        "redis://h?reconnect=yes", /* 0 or 1 */
        "redis://h?colour=blue",   /* unknown option: a typo, never ignored */
        "redis://h?prefix",        /* option without a value */
        "redis://:p%zz@h",         /* bad escape */
        "redis://:p%00@h",         /* NUL in the password */
        "redis://[::1",            /* unclosed v6 address */
        "redis://[::1]x",          /* junk after the v6 address */
        "http://h",                /* another scheme */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mp__redis_url u;
        int rc = mp__redis_url_parse(&u, bad[i]);
        cr_assert(rc == MP_EINVAL, "'%s' gave %s", bad[i], mp_err_name(rc));
    }
    mp_manager *m;
    mp_assert_rc(mp_manager_open(&m, "redis://h?colour=blue"), MP_EINVAL);
    mp_assert_rc(mp_manager_open(&m, "rediss://127.0.0.1:1"), MP_ENOSYS); /* TLS: not built */
}

/* ---- replies and values -------------------------------------------------*/

Test(redis_reply, shapes_are_checked)
{
    redisReply s = {.type = REDIS_REPLY_STRING, .str = (char *)"sx", .len = 2};
    redisReply i = {.type = REDIS_REPLY_INTEGER, .integer = 3};
    redisReply nil = {.type = REDIS_REPLY_NIL};
    redisReply st = {.type = REDIS_REPLY_STATUS, .str = (char *)"OK", .len = 2};
    mp_assert_ok(mp__redis_reply_check(&s, MP__RR_STR));
    mp_assert_ok(mp__redis_reply_check(&s, MP__RR_STR_NIL));
    mp_assert_ok(mp__redis_reply_check(&nil, MP__RR_STR_NIL));
    mp_assert_ok(mp__redis_reply_check(&i, MP__RR_INT));
    mp_assert_ok(mp__redis_reply_check(&st, MP__RR_STATUS));
    /* The wrong kind of reply for the command. */
    mp_assert_rc(mp__redis_reply_check(&nil, MP__RR_STR), MP_EBADMSG);
    mp_assert_rc(mp__redis_reply_check(&s, MP__RR_INT), MP_EBADMSG);
    mp_assert_rc(mp__redis_reply_check(&i, MP__RR_STATUS), MP_EBADMSG);
    mp_assert_rc(mp__redis_reply_check(&st, MP__RR_ARRAY), MP_EBADMSG);
    mp_assert_rc(mp__redis_reply_check(NULL, MP__RR_ANY_VALUE), MP_EBADMSG);
    /* Inconsistent fields. */
    redisReply bad_str = {.type = REDIS_REPLY_STRING, .str = NULL, .len = 5};
    mp_assert_rc(mp__redis_reply_check(&bad_str, MP__RR_STR), MP_EBADMSG);
    redisReply huge = {.type = REDIS_REPLY_STRING, .str = (char *)"x", .len = (size_t)1 << 40};
    mp_assert_rc(mp__redis_reply_check(&huge, MP__RR_STR), MP_EBADMSG);
    redisReply unknown = {.type = 99};
    mp_assert_rc(mp__redis_reply_check(&unknown, MP__RR_ANY_VALUE), MP_EBADMSG);
    redisReply arr_null = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = NULL};
    mp_assert_rc(mp__redis_reply_check(&arr_null, MP__RR_ARRAY), MP_EBADMSG);
    redisReply *holes[2] = {&s, NULL};
    redisReply arr_hole = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = holes};
    mp_assert_rc(mp__redis_reply_check(&arr_hole, MP__RR_ARRAY), MP_EBADMSG);
    redisReply *mixed[2] = {&s, &i};
    redisReply arr_mixed = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = mixed};
    mp_assert_rc(mp__redis_reply_check(&arr_mixed, MP__RR_ARRAY), MP_EBADMSG);
    mp_assert_ok(mp__redis_reply_check(&arr_mixed, MP__RR_EXEC));
    /* Nesting deeper than any reply of ours. */
    redisReply nest[8];
    redisReply *link[8];
    for (int k = 0; k < 8; k++) {
        link[k] = k < 7 ? &nest[k + 1] : NULL;
        nest[k] = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = k < 7, .element = &link[k]};
    }
    mp_assert_rc(mp__redis_reply_check(&nest[0], MP__RR_EXEC), MP_EBADMSG);
}

Test(redis_reply, errors_are_mapped)
{
    static const struct {
        const char *text;
        int code;
    } cases[] = {
        {"NOAUTH Authentication required.", MP_EAUTH},
        {"WRONGPASS invalid username-password pair or user is disabled.", MP_EAUTH},
        {"ERR invalid password", MP_EAUTH},
        {"OOM command not allowed when used memory > 'maxmemory'.", MP_ENOMEM},
        {"LOADING Redis is loading the dataset in memory", MP_EAGAIN},
        {"WRONGTYPE Operation against a key holding the wrong kind of value", MP_EPROTO},
        {"ERR index out of range", MP_ERANGE},
        {"ERR something else", MP_ESERVER},
        {"", MP_ESERVER},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        redisReply e = {
            .type = REDIS_REPLY_ERROR, .str = (char *)cases[k].text, .len = strlen(cases[k].text)};
        mp_assert_rc(mp__redis_reply_check(&e, MP__RR_STR), cases[k].code);
    }
    mp_assert_rc(mp__redis_error_code(NULL, 0), MP_ESERVER);
}

Test(redis_reply, values_round_trip_and_bad_ones_are_refused)
{
    const mp_item in[] = {MP_ITEM_INT64(INT64_MIN), MP_ITEM_INT64(42),      MP_ITEM_DOUBLE(0.1),
                          MP_ITEM_DOUBLE(-1e300),   MP_ITEM_DOUBLE(5e-324), MP_ITEM_STR("héllo"),
                          MP_ITEM_BYTES("a\0b", 3), MP_ITEM_BYTES(NULL, 0)};
    for (size_t k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
        char num[MP__REDIS_NUM_MAX], *heap;
        const char *p;
        size_t n;
        mp_assert_ok(mp__redis_encode(&in[k], num, &heap, &p, &n));
        mp_item out;
        int64_t buf;
        mp_assert_ok(mp__redis_decode(p, n, &out, &buf));
        cr_assert_eq(out.type, in[k].type);
        cr_assert_eq(out.len, in[k].len);
        cr_assert(in[k].len == 0 || memcmp(out.data, in[k].data, in[k].len) == 0, "item %zu", k);
        free(heap);
    }
    static const char *const bad[] = {
        "", "x12", "i", "i12a", "i 12", "i+1", "i99999999999999999999", "d", "d1.5x", "d 1"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        mp_item out;
        int64_t buf;
        int rc = mp__redis_decode(bad[k], strlen(bad[k]), &out, &buf);
        cr_assert(rc == MP_EBADMSG, "'%s' gave %s", bad[k], mp_err_name(rc));
    }
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
