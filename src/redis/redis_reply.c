/* Replies from Redis are untrusted input: every one passes
 * mp__redis_reply_check before the backend reads a field of it, and every
 * stored value passes mp__redis_decode. Both are pure functions, fuzzed by
 * fuzz/fuzz_redis_reply.c and unit-tested on malformed replies. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_internal.h"

/* Deepest nesting the backend ever asks for is 5 (XREADGROUP: streams,
 * stream, entries, entry, fields); a deeper reply is not one of ours. */
#define MAX_DEPTH 6
/* A stored value is at most MP_VALUE_MAX bytes plus its tag. */
#define MAX_STR (MP_VALUE_MAX + 1)

static bool starts_with(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && memcmp(s, word, n) == 0;
}

static bool contains(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(s + i, word, n) == 0)
            return true;
    return false;
}

int mp__redis_error_code(const char *s, size_t len)
{
    if (s == NULL)
        return MP_ESERVER;
    if (starts_with(s, len, "NOAUTH") || starts_with(s, len, "WRONGPASS") ||
        contains(s, len, "invalid password") || contains(s, len, "without any password") ||
        contains(s, len, "invalid username-password"))
        return MP_EAUTH;
    if (starts_with(s, len, "OOM"))
        return MP_ENOMEM;
    if (starts_with(s, len, "LOADING") || starts_with(s, len, "BUSY") ||
        starts_with(s, len, "MASTERDOWN") || starts_with(s, len, "TRYAGAIN"))
        return MP_EAGAIN;
    if (starts_with(s, len, "WRONGTYPE"))
        return MP_EPROTO;
    if (contains(s, len, "index out of range") || starts_with(s, len, "ERR no such key"))
        return MP_ERANGE;
    return MP_ESERVER;
}

/* Fields a reply of each type must have consistent, whatever was asked. */
static int check_node(const redisReply *r, int depth)
{
    if (r == NULL || depth > MAX_DEPTH)
        return MP_EBADMSG;
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        if (r->len > MAX_STR || (r->str == NULL && r->len != 0) || r->len > INT32_MAX)
            return MP_EBADMSG;
        return 0;
    case REDIS_REPLY_INTEGER:
    case REDIS_REPLY_NIL:
        return 0;
    case REDIS_REPLY_ARRAY:
        if (r->elements != 0 && r->element == NULL)
            return MP_EBADMSG;
        for (size_t i = 0; i < r->elements; i++) {
            int rc = check_node(r->element[i], depth + 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    default:
        return MP_EBADMSG;
    }
}

static int error_of(const redisReply *r)
{
    return mp__redis_error_code(r->str, r->len);
}

static int check_kind(const redisReply *r, mp__redis_reply_kind kind)
{
    if (r->type == REDIS_REPLY_ERROR)
        return error_of(r);
    switch (kind) {
    case MP__RR_STATUS:
        return r->type == REDIS_REPLY_STATUS ? 0 : MP_EBADMSG;
    case MP__RR_INT:
        return r->type == REDIS_REPLY_INTEGER ? 0 : MP_EBADMSG;
    case MP__RR_STR:
        return r->type == REDIS_REPLY_STRING ? 0 : MP_EBADMSG;
    case MP__RR_STR_NIL:
        return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL ? 0 : MP_EBADMSG;
    case MP__RR_ARRAY:
        if (r->type != REDIS_REPLY_ARRAY)
            return MP_EBADMSG;
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type != REDIS_REPLY_STRING)
                return r->element[i]->type == REDIS_REPLY_ERROR ? error_of(r->element[i])
                                                                : MP_EBADMSG;
        return 0;
    case MP__RR_EXEC:
        /* The elements are checked by the caller against what it queued:
         * an error inside means one queued command failed. */
        return r->type == REDIS_REPLY_ARRAY || r->type == REDIS_REPLY_NIL ? 0 : MP_EBADMSG;
    case MP__RR_ANY_VALUE:
        return 0;
    }
    return MP_EBADMSG;
}

int mp__redis_reply_check(const redisReply *r, mp__redis_reply_kind kind)
{
    int rc = check_node(r, 0);
    return rc < 0 ? rc : check_kind(r, kind);
}

int mp__redis_encode(const mp_item *v, char num[MP__REDIS_NUM_MAX], char **heap, const char **out,
                     size_t *out_len)
{
    *heap = NULL;
    int n;
    switch (v->type) {
    case MP_ITEM_INT64: {
        int64_t i;
        memcpy(&i, v->data, sizeof(i));
        n = snprintf(num, MP__REDIS_NUM_MAX, "i%" PRId64, i);
        break;
    }
    case MP_ITEM_DOUBLE: {
        double d;
        memcpy(&d, v->data, sizeof(d));
        n = snprintf(num, MP__REDIS_NUM_MAX, "d%.17g", d);
        break;
    }
    default: {
        char *p = malloc(v->len + 1);
        if (p == NULL)
            return MP_ENOMEM;
        p[0] = v->type == MP_ITEM_STR ? 's' : 'b';
        if (v->len)
            memcpy(p + 1, v->data, v->len);
        *heap = p;
        *out = p;
        *out_len = v->len + 1;
        return 0;
    }
    }
    *out = num;
    *out_len = (size_t)n;
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Digits from s[*i] on, at least one; returns how many. */
static size_t digits(const char *s, size_t len, size_t *i)
{
    size_t start = *i;
    while (*i < len && is_digit(s[*i]))
        (*i)++;
    return *i - start;
}

bool mp__redis_num_ok(const char *s, size_t len, bool is_float)
{
    if (s == NULL || len == 0 || len > (is_float ? MP__REDIS_NUM_MAX - 1 : 20))
        return false;
    size_t i = s[0] == '-';
    if (is_float && len - i == 3 && (memcmp(s + i, "inf", 3) == 0 || memcmp(s + i, "nan", 3) == 0))
        return true;
    size_t start = i, n = digits(s, len, &i);
    if (n == 0 || (n > 1 && s[start] == '0'))
        return false; /* no digit, or a leading zero */
    if (!is_float)
        return i == len && !(start == 1 && n == 1 && s[1] == '0'); /* "-0" */
    if (i < len && s[i] == '.' && (++i, digits(s, len, &i) == 0))
        return false;
    if (i < len && s[i] == 'e') {
        i++;
        if (i == len || (s[i] != '+' && s[i] != '-'))
            return false;
        i++;
        if (digits(s, len, &i) == 0)
            return false;
    }
    return i == len;
}

/* Strictly the form the encoder writes: no spaces, no sign but '-', no
 * leading zero, no trailing bytes, within int64. */
static int decode_int(const char *s, size_t len, int64_t *out)
{
    char buf[MP__REDIS_NUM_MAX];
    if (!mp__redis_num_ok(s, len, false))
        return MP_EBADMSG;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end != '\0' || errno != 0)
        return MP_EBADMSG;
    *out = (int64_t)v;
    return 0;
}

/* Strictly what %.17g (or Redis's INCRBYFLOAT) writes: no spaces, no '+',
 * no hex, no NaN payload, no "infinity", nothing out of range. */
static int decode_double(const char *s, size_t len, double *out)
{
    char buf[MP__REDIS_NUM_MAX];
    if (!mp__redis_num_ok(s, len, true))
        return MP_EBADMSG;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    /* ERANGE with a finite result is an underflow: the encoder writes
     * subnormal numbers, which read back exactly. An infinite one came
     * from digits too large for a double, which it never writes. */
    bool written_inf = buf[len - 1] == 'f';
    if (*end != '\0' || (errno == ERANGE && isinf(d) && !written_inf))
        return MP_EBADMSG;
    *out = d;
    return 0;
}

int mp__redis_decode(const char *s, size_t len, mp_item *out, void *num)
{
    if (s == NULL || len == 0)
        return MP_EBADMSG;
    const char *p = s + 1;
    size_t n = len - 1;
    switch (s[0]) {
    case 'b':
    case 's':
        *out = (mp_item){.data = p, .len = n, .type = s[0] == 's' ? MP_ITEM_STR : MP_ITEM_BYTES};
        return 0;
    case 'i': {
        int64_t v;
        int rc = decode_int(p, n, &v);
        if (rc < 0)
            return rc;
        memcpy(num, &v, sizeof(v));
        *out = (mp_item){.data = num, .len = 8, .type = MP_ITEM_INT64};
        return 0;
    }
    case 'd': {
        double v;
        int rc = decode_double(p, n, &v);
        if (rc < 0)
            return rc;
        memcpy(num, &v, sizeof(v));
        *out = (mp_item){.data = num, .len = 8, .type = MP_ITEM_DOUBLE};
        return 0;
    }
    default:
        return MP_EBADMSG;
    }
}

/* The reader functions of this library: hiredis's own, except that an
 * array header above MP__REDIS_ARRAY_MAX elements is refused. Copied once
 * from a reader made with the defaults (hiredis 0.14 does not export its
 * table). */
static redisReplyObjectFunctions bounded_fns;
static void *(*default_create_array)(const redisReadTask *, int);
static pthread_once_t bounded_once = PTHREAD_ONCE_INIT;
static _Thread_local bool array_refused;

static void *create_array_bounded(const redisReadTask *task, int elements)
{
    if (elements > MP__REDIS_ARRAY_MAX) {
        array_refused = true;
        return NULL;
    }
    return default_create_array(task, elements);
}

static void bounded_init(void)
{
    redisReader *tmp = redisReaderCreate();
    if (tmp == NULL || tmp->fn == NULL || tmp->fn->createArray == NULL) {
        redisReaderFree(tmp);
        return;
    }
    bounded_fns = *tmp->fn;
    default_create_array = tmp->fn->createArray;
    bounded_fns.createArray = create_array_bounded;
    redisReaderFree(tmp);
}

int mp__redis_reader_bound(redisReader *rd)
{
    if (rd == NULL || pthread_once(&bounded_once, bounded_init) != 0 || !default_create_array)
        return MP_ENOMEM;
    rd->fn = &bounded_fns;
    return 0;
}

bool mp__redis_array_refused(void)
{
    bool was = array_refused;
    array_refused = false;
    return was;
}
