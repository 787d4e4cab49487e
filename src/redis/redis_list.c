/* Lists on Redis: one Redis list per list, items tagged (redis/redis_reply.c).
 * Operations Redis has (RPUSH, LINDEX, LSET, LREM, LRANGE) are one
 * command; insert and pop at an inner index are Lua scripts, atomic on the
 * server; sort reads, sorts here with the caller's comparator and writes
 * back in a WATCH/MULTI/EXEC loop (retried when another client changed
 * the list meanwhile, until the URL's timeout). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_internal.h"

static int list_args(const mp_list *l, mp__redis_obj **o)
{
    int rc = mp__redis_obj_check(l, MP__MAGIC_LIST);
    if (rc == 0)
        *o = (mp__redis_obj *)(uintptr_t)l;
    return rc;
}

void mp__redis_list_destroy(mp_list *l)
{
    if (mp__redis_obj_check(l, MP__MAGIC_LIST) == 0)
        mp__redis_obj_free((mp__redis_obj *)l);
}

static void encs_free(mp__redis_enc *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++)
        free(e[i].heap);
    free(e);
}

int mp__redis_list_extend(mp_list *l, const mp_item *items, size_t n)
{
    mp__redis_obj *o = NULL;
    int rc = list_args(l, &o);
    if (rc == 0 && items == NULL && n != 0)
        rc = MP_EINVAL;
    if (rc < 0 || n == 0)
        return rc;
    if (n > (size_t)INT32_MAX - 2)
        return MP_EINVAL;
    mp__redis_enc *e = calloc(n, sizeof(*e));
    const char **argv = malloc((n + 2) * sizeof(*argv));
    size_t *lens = malloc((n + 2) * sizeof(*lens));
    rc = e && argv && lens ? 0 : MP_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = mp__redis_enc_item(&e[i], &items[i]);
        argv[i + 2] = e[i].p;
        lens[i + 2] = e[i].len;
    }
    if (rc == 0) {
        argv[0] = "RPUSH";
        lens[0] = 5;
        argv[1] = o->key;
        lens[1] = o->key_len;
        rc = mp__redis_cmd(o->conn, MP__RR_INT, NULL, (int)n + 2, argv, lens);
    }
    encs_free(e, n);
    free(argv);
    free(lens);
    return rc;
}

/* Moves the tail after index i back after a change at i (Lua's unpack
 * is limited in arguments: push in chunks). */
#define LUA_NORM                                                                                   \
    "local n = redis.call('LLEN', KEYS[1]) local i = tonumber(ARGV[1]) "                           \
    "if i < 0 then i = i + n end "
#define LUA_PUSH_TAIL                                                                              \
    "for j = 1, #tail, 1000 do "                                                                   \
    "redis.call('RPUSH', KEYS[1], unpack(tail, j, math.min(j + 999, #tail))) end "

static const char insert_lua[] =
    LUA_NORM "if i < 0 then i = 0 end "
             "if i >= n then return redis.call('RPUSH', KEYS[1], ARGV[2]) end "
             "if i == 0 then return redis.call('LPUSH', KEYS[1], ARGV[2]) end "
             "local tail = redis.call('LRANGE', KEYS[1], i, -1) "
             "redis.call('LTRIM', KEYS[1], 0, i - 1) "
             "redis.call('RPUSH', KEYS[1], ARGV[2]) " LUA_PUSH_TAIL "return n + 1";

static const char pop_lua[] =
    "local v = redis.call('LINDEX', KEYS[1], ARGV[1]) if not v then return false end " LUA_NORM
    "if i == 0 then redis.call('LPOP', KEYS[1]) elseif i == n - 1 then "
    "redis.call('RPOP', KEYS[1]) else "
    "local tail = redis.call('LRANGE', KEYS[1], i + 1, -1) "
    "redis.call('LTRIM', KEYS[1], 0, i - 1) " LUA_PUSH_TAIL "end return v";

/* insert (a script, since Redis has no insert at an index) and set
 * (LSET) of one value at an index. */
static int list_put_at(mp_list *l, long index, const mp_item *v, bool insert)
{
    mp__redis_obj *o = NULL;
    mp__redis_enc e;
    int rc = list_args(l, &o);
    if (rc == 0)
        rc = mp__redis_enc_item(&e, v);
    if (rc < 0)
        return rc;
    char idx[24];
    snprintf(idx, sizeof(idx), "%ld", index);
    const char *argv[] = {"EVAL", insert_lua, "1", o->key, idx, e.p};
    size_t lens[] = {4, sizeof(insert_lua) - 1, 1, o->key_len, strlen(idx), e.len};
    if (insert)
        rc = mp__redis_cmd(o->conn, MP__RR_INT, NULL, 6, argv, lens);
    else
        rc = mp__redis_cmd(o->conn, MP__RR_STATUS, NULL, 4,
                           (const char *[]){"LSET", o->key, idx, e.p},
                           (size_t[]){4, o->key_len, strlen(idx), e.len});
    free(e.heap);
    return rc;
}

int mp__redis_list_insert(mp_list *l, long index, const mp_item *v)
{
    return list_put_at(l, index, v, true);
}

int mp__redis_list_set(mp_list *l, long index, const mp_item *v)
{
    return list_put_at(l, index, v, false);
}

/* Runs fn on a private blob of the value of a string reply. */
static int with_value(const redisReply *rep, int (*fn)(const mp__blob *, void *), void *arg)
{
    mp_item v;
    int64_t num;
    int rc = mp__redis_decode(rep->str, rep->len, &v, &num);
    mp__blob *b = NULL;
    if (rc == 0)
        rc = mp__redis_blob(&b, &v);
    if (rc == 0)
        rc = fn(b, arg);
    free(b);
    return rc;
}

int mp__redis_list_read(const mp_list *l, long index, int (*fn)(const mp__blob *, void *),
                        void *arg)
{
    mp__redis_obj *o = NULL;
    int rc = list_args(l, &o);
    if (rc < 0)
        return rc;
    char idx[24];
    snprintf(idx, sizeof(idx), "%ld", index);
    redisReply *rep;
    rc = mp__redis_cmd(o->conn, MP__RR_STR_NIL, &rep, 3, (const char *[]){"LINDEX", o->key, idx},
                       (size_t[]){6, o->key_len, strlen(idx)});
    if (rc < 0)
        return rc;
    rc = rep->type == REDIS_REPLY_NIL ? MP_ERANGE : with_value(rep, fn, arg);
    freeReplyObject(rep);
    return rc;
}

static int copy_out(const mp__blob *b, void *arg)
{
    void **a = arg;
    if (a[0] == NULL) /* the caller discards the item */
        return 0;
    return mp__blob_copy_out(b, a[0], a[1], a[2]);
}

int mp__redis_list_pop(mp_list *l, long index, void **out, size_t *out_len, mp_item_type *type)
{
    mp__redis_obj *o = NULL;
    int rc = list_args(l, &o);
    if (rc == 0 && out && !out_len)
        rc = MP_EINVAL;
    if (rc < 0)
        return rc;
    char idx[24];
    snprintf(idx, sizeof(idx), "%ld", index);
    redisReply *rep;
    if (index == -1 || index == 0) /* the common ends: one plain command */
        rc = mp__redis_cmd(o->conn, MP__RR_STR_NIL, &rep, 2,
                           (const char *[]){index ? "RPOP" : "LPOP", o->key},
                           (size_t[]){4, o->key_len});
    else
        rc = mp__redis_cmd(o->conn, MP__RR_STR_NIL, &rep, 5,
                           (const char *[]){"EVAL", pop_lua, "1", o->key, idx},
                           (size_t[]){4, sizeof(pop_lua) - 1, 1, o->key_len, strlen(idx)});
    if (rc < 0)
        return rc;
    void *a[] = {out, out_len, type};
    rc = rep->type == REDIS_REPLY_NIL ? MP_ERANGE : with_value(rep, copy_out, a);
    freeReplyObject(rep);
    return rc;
}

int mp__redis_list_remove(mp_list *l, const mp_item *v)
{
    mp__redis_obj *o = NULL;
    mp__redis_enc e;
    int rc = list_args(l, &o);
    if (rc == 0)
        rc = mp__redis_enc_item(&e, v);
    if (rc < 0)
        return rc;
    redisReply *rep;
    rc = mp__redis_cmd(o->conn, MP__RR_INT, &rep, 4, (const char *[]){"LREM", o->key, "1", e.p},
                       (size_t[]){4, o->key_len, 1, e.len});
    free(e.heap);
    if (rc < 0)
        return rc;
    rc = rep->integer == 1 ? 0 : rep->integer == 0 ? MP_ENOENT : MP_EBADMSG;
    freeReplyObject(rep);
    return rc;
}

int mp__redis_list_len(const mp_list *l, size_t *out)
{
    mp__redis_obj *o = NULL;
    int rc = list_args(l, &o);
    long long n;
    if (rc == 0 && out == NULL)
        rc = MP_EINVAL;
    if (rc == 0)
        rc = mp__redis_obj_count(o, "LLEN", &n);
    if (rc == 0)
        *out = (size_t)n;
    return rc;
}

int mp__redis_list_clear(mp_list *l)
{
    mp__redis_obj *o = NULL;
    long long n;
    int rc = list_args(l, &o);
    return rc < 0 ? rc : mp__redis_obj_count(o, "DEL", &n);
}

/* Decodes every element of an LRANGE reply into items (numbers into nums). */
static int decode_all(const redisReply *rep, mp_item *items, int64_t *nums)
{
    for (size_t i = 0; i < rep->elements; i++)
        if (mp__redis_decode(rep->element[i]->str, rep->element[i]->len, &items[i], &nums[i]) < 0)
            return MP_EBADMSG;
    return 0;
}

/* LRANGE with Python's slice bounds: Redis clamps negative and large
 * bounds the same way Python does, but its stop is inclusive. */
static int lrange(mp__redis_obj *o, long start, long stop, redisReply **rep)
{
    char a[24], b[24];
    snprintf(a, sizeof(a), "%ld", start);
    snprintf(b, sizeof(b), "%ld", stop == MP_LIST_END ? -1L : stop - 1);
    return mp__redis_cmd(o->conn, MP__RR_ARRAY, rep, 4, (const char *[]){"LRANGE", o->key, a, b},
                         (size_t[]){6, o->key_len, strlen(a), strlen(b)});
}

int mp__redis_list_slice(const mp_list *l, long start, long stop, mp_snapshot **out)
{
    mp__redis_obj *o = NULL;
    int rc = list_args(l, &o);
    if (rc == 0 && out == NULL)
        rc = MP_EINVAL;
    if (rc < 0)
        return rc;
    redisReply *rep = NULL;
    /* Stop 0 (or a negative one past the front) is an empty slice, which
     * Redis's inclusive -1 would turn into "to the end". */
    if (stop != 0 && stop != LONG_MIN && (rc = lrange(o, start, stop, &rep)) < 0)
        return rc;
    size_t n = rep ? rep->elements : 0;
    mp_item *items = calloc(n ? n : 1, sizeof(*items));
    int64_t *nums = calloc(n ? n : 1, sizeof(*nums));
    rc = items && nums ? 0 : MP_ENOMEM;
    if (rc == 0 && rep)
        rc = decode_all(rep, items, nums);
    mp__snap_size sz = {0};
    for (size_t i = 0; rc == 0 && i < n; i++)
        mp__snap_count_item(&sz, NULL, &items[i], MP__SNAP_VALUES);
    if (rc == 0)
        rc = mp__snap_alloc(out, &sz, MP__SNAP_VALUES);
    for (size_t i = 0; rc == 0 && i < n; i++)
        mp__snap_add_item(*out, NULL, &items[i]);
    free(items);
    free(nums);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

typedef struct sort_item {
    mp_item v;
    size_t pos;
    const redisReply *raw;
} sort_item;

typedef struct sort_ctx {
    mp_list_cmp_fn cmp;
    void *user;
} sort_ctx;

static int sort_cmp(const void *pa, const void *pb, void *arg)
{
    const sort_item *a = pa, *b = pb;
    const sort_ctx *ctx = arg;
    int c = ctx->cmp ? ctx->cmp(&a->v, &b->v, ctx->user) : mp__item_cmp(&a->v, &b->v);
    if (c)
        return c;
    return a->pos < b->pos ? -1 : 1; /* stable, like Python's sort */
}

/* Writes the sorted items back in one transaction: DEL, RPUSH, EXEC.
 * MP_EAGAIN when EXEC was aborted because the list changed. */
static int write_back(mp__redis_obj *o, const sort_item *it, size_t n)
{
    const char **argv = malloc((n + 2) * sizeof(*argv));
    size_t *lens = malloc((n + 2) * sizeof(*lens));
    int rc = argv && lens ? 0 : MP_ENOMEM;
    if (rc == 0)
        rc = mp__redis_call(o->conn, MP__RR_STATUS, NULL, 0, 1, (const char *[]){"MULTI"}, NULL);
    if (rc == 0)
        rc = mp__redis_call(o->conn, MP__RR_STATUS, NULL, 0, 2, (const char *[]){"DEL", o->key},
                            (size_t[]){3, o->key_len});
    if (rc == 0) {
        argv[0] = "RPUSH";
        lens[0] = 5;
        argv[1] = o->key;
        lens[1] = o->key_len;
        for (size_t i = 0; i < n; i++) {
            argv[i + 2] = it[i].raw->str;
            lens[i + 2] = it[i].raw->len;
        }
        rc = mp__redis_call(o->conn, MP__RR_STATUS, NULL, 0, (int)n + 2, argv, lens);
    }
    redisReply *rep = NULL;
    if (rc == 0)
        rc = mp__redis_call(o->conn, MP__RR_EXEC, &rep, 0, 1, (const char *[]){"EXEC"}, NULL);
    if (rc == 0) {
        rc = rep->type == REDIS_REPLY_NIL ? MP_EAGAIN : rep->elements != 2 ? MP_EBADMSG : 0;
        for (size_t i = 0; rc == 0 && i < rep->elements; i++)
            rc = mp__redis_reply_check(rep->element[i], MP__RR_INT);
        freeReplyObject(rep);
    }
    free(argv);
    free(lens);
    return rc;
}

static int sort_once(mp__redis_obj *o, sort_ctx *ctx)
{
    redisReply *rep = NULL;
    int rc = mp__redis_call(o->conn, MP__RR_STATUS, NULL, 0, 2, (const char *[]){"WATCH", o->key},
                            (size_t[]){5, o->key_len});
    if (rc == 0)
        rc = mp__redis_call(o->conn, MP__RR_ARRAY, &rep, 0, 4,
                            (const char *[]){"LRANGE", o->key, "0", "-1"},
                            (size_t[]){6, o->key_len, 1, 2});
    if (rc < 0)
        return rc;
    size_t n = rep->elements;
    sort_item *it = calloc(n ? n : 1, sizeof(*it));
    int64_t *nums = calloc(n ? n : 1, sizeof(*nums));
    rc = it && nums ? 0 : MP_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        it[i].pos = i;
        it[i].raw = rep->element[i];
        rc = mp__redis_decode(it[i].raw->str, it[i].raw->len, &it[i].v, &nums[i]);
    }
    if (rc == 0 && n > 1) {
        qsort_r(it, n, sizeof(*it), sort_cmp, ctx);
        rc = write_back(o, it, n);
    }
    free(it);
    free(nums);
    freeReplyObject(rep);
    return rc;
}

int mp__redis_list_sort(mp_list *l, mp_list_cmp_fn cmp, void *user)
{
    mp__redis_obj *o = NULL;
    mp__deadline dl;
    unsigned lost = 0;
    int rc = list_args(l, &o);
    sort_ctx ctx = {cmp, user};
    if (rc < 0)
        return rc;
    mp__deadline_init(&dl, mp__redis_timeout(o->conn));
    do {
        rc = mp__redis_begin(o->conn);
        if (rc < 0)
            return rc;
        rc = sort_once(o, &ctx);
        mp__redis_end(o->conn);
    } while (rc == MP_EAGAIN && mp__redis_retry(&dl, &lost) == 0);
    return rc;
}

/* Reverse and repeat rewrite the whole list in one script. The items are
 * pushed in chunks (Lua's unpack is limited in arguments). */
#define LUA_PUSH_ALL(t)                                                                            \
    "for j = 1, #" t ", 1000 do "                                                                  \
    "redis.call('RPUSH', KEYS[1], unpack(" t ", j, math.min(j + 999, #" t "))) end "

static const char reverse_lua[] = "local v = redis.call('LRANGE', KEYS[1], 0, -1) "
                                  "if #v < 2 then return 0 end "
                                  "local r = {} for i = #v, 1, -1 do r[#r + 1] = v[i] end "
                                  "redis.call('DEL', KEYS[1]) " LUA_PUSH_ALL("r") "return 0";

/* ARGV[1] n > 1; ARGV[2] the most items a list may hold. -1: too many. */
static const char imul_lua[] = "local n, max = tonumber(ARGV[1]), tonumber(ARGV[2]) "
                               "local v = redis.call('LRANGE', KEYS[1], 0, -1) "
                               "if #v == 0 then return 0 end "
                               "if #v * n > max then return -1 end "
                               "for k = 2, n do " LUA_PUSH_ALL("v") "end return 0";

int mp__redis_list_reverse(mp_list *l)
{
    mp__redis_obj *o = NULL;
    int rc = list_args(l, &o);
    if (rc < 0)
        return rc;
    const char *argv[] = {"EVAL", reverse_lua, "1", o->key};
    return mp__redis_cmd(o->conn, MP__RR_INT, NULL, 4, argv, NULL);
}

int mp__redis_list_imul(mp_list *l, long n)
{
    mp__redis_obj *o = NULL;
    int rc = list_args(l, &o);
    if (rc < 0)
        return rc;
    if (n <= 0)
        return mp__redis_list_clear(l);
    if (n == 1)
        return 0;
    char num[24];
    snprintf(num, sizeof(num), "%ld", n);
    const char *argv[] = {"EVAL", imul_lua, "1", o->key, num, "4294967295"};
    redisReply *rep;
    rc = mp__redis_cmd(o->conn, MP__RR_INT, &rep, 6, argv, NULL);
    if (rc < 0)
        return rc;
    rc = rep->integer == 0 ? 0 : rep->integer == -1 ? MP_EOVERFLOW : MP_EBADMSG;
    freeReplyObject(rep);
    return rc;
}
