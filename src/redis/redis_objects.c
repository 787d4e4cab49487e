/* The public queue, value and array functions on Redis that are more than
 * one call of redis/redis_queue.c or redis/redis_sync.c: get_into, put_many, empty,
 * full, and the value and array handles (a typecode over a number key, or
 * over a list of numbers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_internal.h"

int mp__redis_parse_int(const char *s, size_t len, int64_t *out)
{
    /* Through the value codec's strict reader (no spaces, no '+', no
     * trailing bytes): the text comes from the server. */
    char tagged[MP__REDIS_NUM_MAX + 1];
    if (s == NULL || len == 0 || len >= sizeof(tagged) - 1)
        return MP_EBADMSG;
    tagged[0] = 'i';
    memcpy(tagged + 1, s, len);
    mp_item it;
    return mp__redis_decode(tagged, len + 1, &it, out) < 0 ? MP_EBADMSG : 0;
}

int mp__redis_retry(const mp__deadline *dl, unsigned *lost)
{
    if (mp__deadline_expired(dl))
        return MP_EAGAIN;
    /* The first losers retry at once (one more round trip is the cheapest
     * wait); later ones sleep a random part of a window that doubles up to
     * 32 ms, so that clients colliding again and again fall apart. */
    unsigned n = ++*lost;
    if (n <= 2)
        return 0;
    int64_t window = (int64_t)1000000 << (n - 3 < 5 ? n - 3 : 5);
    uint64_t x = (uint64_t)mp__now_ns() * 0x9E3779B97F4A7C15u ^ (uint64_t)(uintptr_t)lost;
    mp__sleep_until(dl, (int64_t)((x >> 11) % (uint64_t)window) + 1);
    return mp__deadline_expired(dl) ? MP_EAGAIN : 0;
}

/* ---- queue -------------------------------------------------------------- */

int mp__redis_queue_get_into(mp__redis_queue *q, void *buf, size_t cap, size_t *len, double timeout)
{
    if (len == NULL || (buf == NULL && cap != 0))
        return MP_EINVAL;
    void *data;
    size_t n;
    int rc = mp__redis_queue_get(q, &data, &n, timeout);
    if (rc < 0)
        return rc;
    *len = n;
    if (n > cap) {
        /* The message goes back first, as the local queue leaves it first;
         * a consumer that got another message meanwhile is not undone. */
        rc = mp__redis_queue_unget(q, data, n);
        free(data);
        return rc < 0 ? rc : MP_EMSGSIZE;
    }
    if (n)
        memcpy(buf, data, n);
    free(data);
    return 0;
}

int mp__redis_queue_put_many(mp__redis_queue *q, const mp_queue_msg *msgs, size_t n, double timeout)
{
    if (msgs == NULL && n != 0)
        return MP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].data == NULL && msgs[i].len != 0)
            return MP_EINVAL;
        if (msgs[i].len > MP_QUEUE_MAX_MESSAGE)
            return MP_EMSGSIZE;
    }
    size_t done = 0;
    for (; done < n; done++) {
        int rc = mp__redis_queue_put(q, msgs[done].data, msgs[done].len, done == 0 ? timeout : 0);
        if (rc == MP_EFULL && done > 0)
            break;
        if (rc < 0)
            return done > 0 ? (int)done : rc;
    }
    return done > INT32_MAX ? INT32_MAX : (int)done;
}

int mp__redis_queue_empty(mp__redis_queue *q)
{
    size_t n;
    int rc = mp__redis_queue_qsize(q, &n);
    return rc < 0 ? rc : n == 0;
}

int mp__redis_queue_full(mp__redis_queue *q)
{
    size_t n;
    int rc = mp__redis_queue_qsize(q, &n);
    size_t max = mp__redis_queue_maxsize(q);
    return rc < 0 ? rc : max > 0 && n >= max;
}

/* ---- value -------------------------------------------------------------- */

#define MP__MAGIC_RVALUE_HANDLE 0x6856526du /* "mRVh" */
#define MP__MAGIC_RARRAY_HANDLE 0x6841526du /* "mRAh" */

typedef struct rvalue {
    mp__remote_head rh; /* MP__MAGIC_RVALUE_HANDLE or MP__MAGIC_RARRAY_HANDLE */
    mp__redis_obj *o;   /* <prefix>value:<name> (magic MP__MAGIC_RVALUE), or
                      <prefix>array:<name> */
    char typecode;
    size_t len; /* items of an array */
} rvalue;

static int handle_new(void **out, mp__redis *conn, const char *name, char typecode, bool array,
                      size_t len)
{
    rvalue *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return MP_ENOMEM;
    int rc =
        mp__redis_obj_new(&v->o, conn, MP__MAGIC_RVALUE, NULL, array ? "array" : "value", name);
    if (rc < 0) {
        free(v);
        return rc;
    }
    v->typecode = typecode;
    v->len = len;
    v->rh = (mp__remote_head){
        .head = {.magic = array ? MP__MAGIC_RARRAY_HANDLE : MP__MAGIC_RVALUE_HANDLE,
                 .backend = MP__BACKEND_REDIS},
        .ops = array ? (const void *)&mp__redis_array_ops : (const void *)&mp__redis_value_ops};
    *out = v;
    return 0;
}

int mp__redis_value_open(void **out, mp__redis *conn, const char *name, char typecode)
{
    return handle_new(out, conn, name, typecode, false, 0);
}

static rvalue *rvalue_of(const mp_value *p)
{
    return mp__redis_obj_check(p, MP__MAGIC_RVALUE_HANDLE) == 0 ? (rvalue *)(uintptr_t)p : NULL;
}

void mp__redis_value_destroy(mp_value *p)
{
    rvalue *v = rvalue_of(p);
    if (v == NULL)
        return;
    v->rh.head.magic = 0;
    mp__redis_obj_free(v->o);
    free(v);
}

char mp__redis_value_typecode(const mp_value *p)
{
    const rvalue *v = rvalue_of(p);
    return v ? v->typecode : 0;
}

/* Whether the items of typecode are floats (else integers). */
static bool float_type(char typecode)
{
    return typecode == 'f' || typecode == 'd';
}

/* An item's text as read: a number of the handle's kind as this library
 * writes it, else MP_EBADMSG (sync/value.c then converts it and checks the
 * item's range). */
static int check_text(const rvalue *v, const char *buf)
{
    return mp__redis_num_ok(buf, strlen(buf), float_type(v->typecode)) ? 0 : MP_EBADMSG;
}

int mp__redis_value_get_text(mp_value *p, char *buf, size_t cap)
{
    rvalue *v = rvalue_of(p);
    if (v == NULL || buf == NULL || cap < 2)
        return MP_EINVAL;
    int rc = mp__redis_value_text(v->o, buf, cap);
    return rc < 0 ? rc : check_text(v, buf);
}

int mp__redis_value_set_text(mp_value *p, const char *text)
{
    rvalue *v = rvalue_of(p);
    if (v == NULL || text == NULL)
        return MP_EINVAL;
    return mp__redis_value_store(v->o, text);
}

/* Sets the initial value unless the key holds one (a value created again
 * after a removal without MP_MANAGER_DESTROY keeps its number). */
int mp__redis_value_init_text(void *p, const char *text)
{
    rvalue *v = rvalue_of(p);
    if (v == NULL || text == NULL)
        return MP_EINVAL;
    int rc = mp__redis_cmd(v->o->conn, MP__RR_STR_NIL, NULL, 4,
                           (const char *[]){"SET", v->o->key, text, "NX"}, NULL);
    return rc == MP_EBADMSG ? 0 : rc; /* +OK or nil: both fine */
}

/* INCRBY of a number within [ARGV[2], ARGV[3]] (the item's range, as
 * text: Lua numbers are doubles), undone in the same script when the
 * result leaves it; a stored text that is no such number (MP_EBADMSG) or
 * another Redis type (MP_EPROTO) is refused before anything changes. */
static const char add_lua[] = MP__REDIS_LUA_HELPERS
    "local t = kind(KEYS[1]) "
    "if t ~= 'none' and t ~= 'string' then return EPROTO end "
    "local s = redis.call('GET', KEYS[1]) "
    "if s and (not isnum(s, false) or dcmp(s, ARGV[2]) < 0 or dcmp(s, ARGV[3]) > 0) then "
    "return EBADMSG end "
    "redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "local r = redis.call('GET', KEYS[1]) "
    "if dcmp(r, ARGV[2]) < 0 or dcmp(r, ARGV[3]) > 0 then "
    "if s then redis.call('SET', KEYS[1], s) else redis.call('DEL', KEYS[1]) end "
    "return false end "
    "return r";

int mp__redis_value_add_range(mp_value *p, int64_t delta, const char *min, const char *max,
                              int64_t *result)
{
    rvalue *v = rvalue_of(p);
    if (v == NULL || min == NULL || max == NULL)
        return MP_EINVAL;
    char d[24];
    snprintf(d, sizeof(d), "%lld", (long long)delta);
    redisReply *rep;
    int rc = mp__redis_cmd(v->o->conn, MP__RR_ANY_VALUE, &rep, 7,
                           (const char *[]){"EVAL", add_lua, "1", v->o->key, d, min, max}, NULL);
    if (rc == MP_ESERVER) /* int64 overflow (a 'Q' above INT64_MAX) */
        return MP_ERANGE;
    if (rc < 0)
        return rc;
    int64_t r = 0;
    if (rep->type == REDIS_REPLY_NIL)
        rc = MP_ERANGE;
    else if (rep->type == REDIS_REPLY_INTEGER)
        rc = mp__redis_lua_error(rep->integer) < 0 ? mp__redis_lua_error(rep->integer) : MP_EBADMSG;
    else if (rep->type == REDIS_REPLY_STRING)
        rc = mp__redis_parse_int(rep->str, rep->len, &r);
    else
        rc = MP_EBADMSG;
    freeReplyObject(rep);
    if (rc == 0 && result)
        *result = r;
    return rc;
}

int mp__redis_value_add_float(mp_value *p, double delta, double *result)
{
    rvalue *v = rvalue_of(p);
    if (v == NULL)
        return MP_EINVAL;
    return mp__redis_value_add_double(v->o, delta, result);
}

/* ---- array ---------------------------------------------------------------*/

int mp__redis_array_open(void **out, mp__redis *conn, const char *name, char typecode, size_t len)
{
    if (len > MP__REDIS_ARRAY_ITEMS_MAX)
        return MP_ENOMEM;
    return handle_new(out, conn, name, typecode, true, len);
}

static rvalue *rarray_of(const mp_array *p)
{
    return mp__redis_obj_check(p, MP__MAGIC_RARRAY_HANDLE) == 0 ? (rvalue *)(uintptr_t)p : NULL;
}

void mp__redis_array_destroy(mp_array *p)
{
    rvalue *a = rarray_of(p);
    if (a == NULL)
        return;
    a->rh.head.magic = 0;
    mp__redis_obj_free(a->o);
    free(a);
}

char mp__redis_array_typecode(const mp_array *p)
{
    const rvalue *a = rarray_of(p);
    return a ? a->typecode : 0;
}

size_t mp__redis_array_len(const mp_array *p)
{
    const rvalue *a = rarray_of(p);
    return a ? a->len : 0;
}

/* Fills the list with the items' texts unless it exists (an array made
 * again after a removal without MP_MANAGER_DESTROY keeps its items). */
static const char init_lua[] = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
                               "for i = 1, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end "
                               "return 1";

int mp__redis_array_init(void *p, const char *const *texts, size_t n)
{
    rvalue *a = rarray_of(p);
    if (a == NULL || n != a->len)
        return MP_EINVAL;
    if (n == 0)
        return 0; /* an empty list is no key */
    const char **argv = malloc((n + 4) * sizeof(*argv));
    if (argv == NULL)
        return MP_ENOMEM;
    argv[0] = "EVAL";
    argv[1] = init_lua;
    argv[2] = "1";
    argv[3] = a->o->key;
    memcpy(argv + 4, texts, n * sizeof(*argv));
    int rc = mp__redis_cmd(a->o->conn, MP__RR_INT, NULL, (int)n + 4, argv, NULL);
    free(argv);
    return rc;
}

int mp__redis_array_get_text(mp_array *p, size_t i, char *buf, size_t cap)
{
    rvalue *a = rarray_of(p);
    if (a == NULL || buf == NULL || cap < 2 || i >= a->len)
        return MP_EINVAL;
    char idx[24];
    snprintf(idx, sizeof(idx), "%zu", i);
    redisReply *rep;
    int rc = mp__redis_cmd(a->o->conn, MP__RR_STR_NIL, &rep, 3,
                           (const char *[]){"LINDEX", a->o->key, idx}, NULL);
    if (rc < 0)
        return rc;
    /* nil: the list is shorter than the handle says (written by another
     * program, or an array of another length removed without its data). */
    if (rep->type == REDIS_REPLY_NIL || rep->len == 0 || rep->len >= cap ||
        memchr(rep->str, '\0', rep->len))
        rc = MP_EBADMSG;
    else
        memcpy(buf, rep->str, rep->len + 1);
    freeReplyObject(rep);
    return rc < 0 ? rc : check_text(a, buf);
}

int mp__redis_array_set_text(mp_array *p, size_t i, const char *text)
{
    rvalue *a = rarray_of(p);
    if (a == NULL || text == NULL || i >= a->len)
        return MP_EINVAL;
    char idx[24];
    snprintf(idx, sizeof(idx), "%zu", i);
    int rc = mp__redis_cmd(a->o->conn, MP__RR_STATUS, NULL, 4,
                           (const char *[]){"LSET", a->o->key, idx, text}, NULL);
    /* "no such key" / "index out of range": as a nil read above */
    return rc == MP_ERANGE || rc == MP_ESERVER ? MP_EBADMSG : rc;
}
