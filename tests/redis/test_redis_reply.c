/* Tests of the Redis backend's pure parts: URL parsing (good and bad
 * URLs), the checks every reply passes (malformed replies built by hand),
 * the mapping of error replies and the value codec. No server needed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp_test.h"
#include "redis/redis_internal.h"

TestSuite(redis_url, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(redis_reply, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

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
    cr_assert_eq(u.lease, 30.0);
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
        &u, "redis://app:pw@[::1]:6380/1?prefix=app1%3A&timeout=0.25&reconnect=1&lease=1.5"));
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 6380);
    cr_assert_str_eq(u.user, "app");
    cr_assert_str_eq(u.password, "pw");
    cr_assert_str_eq(u.prefix, "app1:");
    cr_assert_eq(u.timeout, 0.25);
    cr_assert_eq(u.lease, 1.5);
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
        "redis://h?lease=0",       /* lease must be positive */
        "redis://h?lease=-1",      /* lease must be positive */
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

/* Each refused URL says which part is wrong, and never quotes a password. */
Test(redis_reply, bad_urls_name_the_part)
{
    static const struct {
        const char *url, *says;
    } bad[] = {
        {"redis://h?prefx=app1:", "unknown option 'prefx' (known: prefix, timeout"},
        {"redis://:secret@h?colour=blue", "unknown option 'colour'"},
        {"redis://h?timeout=abc", "option timeout='abc' is not seconds"},
        {"redis://h?lease=0", "option lease='0'"},
        {"redis://h?reconnect=yes", "option reconnect='yes' is not 0 or 1"},
        {"redis://h?prefix", "option 'prefix' has no '=value'"},
        {"redis://h:65536", "port '65536' is not a number in 1..65535"},
        {"redis://h/x", "database 'x'"},
        {"redis://", "the host is empty"},
        {"redis://:p%zz@h", "bad %-escape in the password"},
        {"redis://[::1", "without its ']'"},
        {"http://:secret@h", "scheme 'http' is not redis:// or rediss://"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mp__redis_url u;
        mp_error_clear();
        mp_assert_rc(mp__redis_url_parse(&u, bad[i].url), MP_EINVAL);
        const char *d = mp_error_detail();
        cr_assert_not_null(strstr(d, bad[i].says), "'%s': detail \"%s\" lacks \"%s\"", bad[i].url,
                           d, bad[i].says);
        cr_assert_null(strstr(d, "secret"), "'%s': the detail quotes the password: %s", bad[i].url,
                       d);
    }
    /* Through the manager, which is where users meet it. */
    mp_manager *m = NULL;
    mp_error_clear();
    mp_assert_rc(mp_manager_open(&m, "redis://:secret@127.0.0.1:1/0?prefx=app1:"), MP_EINVAL);
    cr_assert_null(m);
    cr_assert_not_null(strstr(mp_error_detail(), "unknown option 'prefx'"), "%s",
                       mp_error_detail());
    /* A good URL parses and leaves the detail alone. */
    mp__redis_url u;
    mp_assert_ok(mp__redis_url_parse(&u, "redis://h?prefix=a:"));
    mp__redis_url_fini(&u);
    cr_assert_not_null(strstr(mp_error_detail(), "prefx"));
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
        "",       "x12",      "i",         "i12a",  "i 12",      "i+1",   "i99999999999999999999",
        "i05",    "i-0",      "i-",        "i0x10", "d",         "d1.5x", "d 1",
        "d0x1p3", "d  5",     "dnan(0x1)", "d+5",   "d1e999",    "d.5",   "d5.",
        "d1e",    "d1e5",     "d1E+5",     "d05",   "dinfinity", "dNaN",  "d--1",
        "d-",     "d5.0e+5x", "d\t5"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        mp_item out;
        int64_t buf;
        int rc = mp__redis_decode(bad[k], strlen(bad[k]), &out, &buf);
        cr_assert(rc == MP_EBADMSG, "'%s' gave %s", bad[k], mp_err_name(rc));
    }
    /* What %.17g and INCRBYFLOAT write reads back. */
    static const char *const good[] = {"d5",
                                       "d-0",
                                       "d0.75",
                                       "d1e+300",
                                       "d-inf",
                                       "dnan",
                                       "d-nan",
                                       "d2.5e-05",
                                       "d4.9406564584124654e-324",
                                       "i0",
                                       "i-9223372036854775808",
                                       "i9223372036854775807"};
    for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
        mp_item out;
        int64_t buf;
        int rc = mp__redis_decode(good[k], strlen(good[k]), &out, &buf);
        cr_assert(rc == 0, "'%s' gave %s", good[k], mp_err_name(rc));
    }
}

/* hiredis allocates an array when it reads the header: a reader of the
 * library refuses a header announcing more than MP__REDIS_ARRAY_MAX
 * elements instead of reserving gigabytes, and reads ordinary arrays as
 * before. */
Test(redis_reply, huge_array_headers_are_refused)
{
    redisReader *rd = redisReaderCreate();
    cr_assert_not_null(rd);
    cr_assert_eq(mp__redis_reader_bound(rd), 0);
    const char ok[] = "*2\r\n$1\r\na\r\n$2\r\nbc\r\n";
    cr_assert_eq(redisReaderFeed(rd, ok, sizeof ok - 1), REDIS_OK);
    void *reply = NULL;
    cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_OK);
    cr_assert_not_null(reply);
    cr_assert_eq(mp__redis_reply_check(reply, MP__RR_ARRAY), 0);
    cr_assert_eq(((redisReply *)reply)->elements, 2);
    freeReplyObject(reply);
    cr_assert_not(mp__redis_array_refused());

    char huge[32];
    int n = snprintf(huge, sizeof huge, "*%d\r\n", MP__REDIS_ARRAY_MAX + 1);
    cr_assert_eq(redisReaderFeed(rd, huge, (size_t)n), REDIS_OK);
    reply = NULL;
    cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_ERR);
    cr_assert_null(reply);
    cr_assert(mp__redis_array_refused());
    cr_assert_not(mp__redis_array_refused(), "the mark is cleared once read");
    redisReaderFree(rd);

    /* The largest allowed header is still taken (its elements never come). */
    rd = redisReaderCreate();
    cr_assert_eq(mp__redis_reader_bound(rd), 0);
    n = snprintf(huge, sizeof huge, "*%d\r\n", 1000);
    cr_assert_eq(redisReaderFeed(rd, huge, (size_t)n), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_OK);
    cr_assert_null(reply, "incomplete: waits for the elements");
    redisReaderFree(rd);
    cr_assert_eq(mp__redis_reader_bound(NULL), MP_ENOMEM);
}
