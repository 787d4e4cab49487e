/* Dicts on Redis: one hash per dict, one field per key, values tagged
 * (redis/redis_reply.c). Every operation is one command or one Lua script, so
 * it is atomic on the server (mp_dict_add_int64 too: a script adds to the
 * tagged int64), except mp_dict_update_with, which runs the caller's C
 * function between a read and a write: an optimistic WATCH/MULTI/EXEC
 * loop that calls the function again when another client changed the hash
 * in between, until the URL's timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_internal.h"

static int dict_args(const mp_dict *d, const void *key, size_t klen, mp__redis_obj **o)
{
    int rc = mp__redis_obj_check(d, MP__MAGIC_DICT);
    if (rc == 0)
        rc = mp__key_check(key, klen);
    if (rc == 0)
        *o = (mp__redis_obj *)(uintptr_t)d;
    return rc;
}

void mp__redis_dict_destroy(mp_dict *d)
{
    if (mp__redis_obj_check(d, MP__MAGIC_DICT) == 0)
        mp__redis_obj_free((mp__redis_obj *)d);
}

int mp__redis_dict_set_item(mp_dict *d, const void *key, size_t key_len, const mp_item *value)
{
    mp__redis_obj *o = NULL;
    mp__redis_enc e;
    int rc = dict_args(d, key, key_len, &o);
    if (rc == 0)
        rc = mp__redis_enc_item(&e, value);
    if (rc < 0)
        return rc;
    const char *argv[] = {"HSET", o->key, key, e.p};
    size_t lens[] = {4, o->key_len, key_len, e.len};
    rc = mp__redis_cmd(o->conn, MP__RR_INT, NULL, 4, argv, lens);
    free(e.heap);
    return rc;
}

/* Runs fn on a private blob of the value held by a string reply. */
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

int mp__redis_dict_read(const mp_dict *d, const void *key, size_t key_len,
                        int (*fn)(const mp__blob *, void *), void *arg)
{
    mp__redis_obj *o = NULL;
    int rc = dict_args(d, key, key_len, &o);
    if (rc < 0)
        return rc;
    const char *argv[] = {"HGET", o->key, key};
    size_t lens[] = {4, o->key_len, key_len};
    redisReply *rep;
    rc = mp__redis_cmd(o->conn, MP__RR_STR_NIL, &rep, 3, argv, lens);
    if (rc < 0)
        return rc;
    rc = rep->type == REDIS_REPLY_NIL ? MP_ENOENT : with_value(rep, fn, arg);
    freeReplyObject(rep);
    return rc;
}

int mp__redis_dict_len(const mp_dict *d, size_t *out)
{
    int rc = mp__redis_obj_check(d, MP__MAGIC_DICT);
    long long n;
    if (rc == 0)
        rc = mp__redis_obj_count((mp__redis_obj *)(uintptr_t)d, "HLEN", &n);
    if (rc == 0)
        *out = (size_t)n;
    return rc;
}

int mp__redis_dict_clear(mp_dict *d)
{
    int rc = mp__redis_obj_check(d, MP__MAGIC_DICT);
    long long n;
    return rc < 0 ? rc : mp__redis_obj_count((mp__redis_obj *)d, "DEL", &n);
}

int mp__redis_dict_delete(mp_dict *d, const void *key, size_t key_len)
{
    mp__redis_obj *o = NULL;
    int rc = dict_args(d, key, key_len, &o);
    if (rc < 0)
        return rc;
    redisReply *rep;
    rc = mp__redis_cmd(o->conn, MP__RR_INT, &rep, 3, (const char *[]){"HDEL", o->key, key},
                       (size_t[]){4, o->key_len, key_len});
    if (rc < 0)
        return rc;
    rc = rep->integer == 1 ? 0 : rep->integer == 0 ? MP_ENOENT : MP_EBADMSG;
    freeReplyObject(rep);
    return rc;
}

static int copy_out(const mp__blob *b, void *arg)
{
    void **a = arg;
    return mp__blob_copy_out(b, a[0], a[1], a[2]);
}

static const char pop_lua[] = "local v = redis.call('HGET', KEYS[1], ARGV[1]) "
                              "if v then redis.call('HDEL', KEYS[1], ARGV[1]) end return v";

int mp__redis_dict_pop(mp_dict *d, const void *key, size_t key_len, void **out, size_t *out_len,
                       mp_item_type *type)
{
    mp__redis_obj *o = NULL;
    int rc = dict_args(d, key, key_len, &o);
    if (rc < 0)
        return rc;
    const char *argv[] = {"EVAL", pop_lua, "1", o->key, key};
    size_t lens[] = {4, sizeof(pop_lua) - 1, 1, o->key_len, key_len};
    redisReply *rep;
    rc = mp__redis_cmd(o->conn, MP__RR_STR_NIL, &rep, 5, argv, lens);
    if (rc < 0)
        return rc;
    void *a[] = {out, out_len, type};
    rc = rep->type == REDIS_REPLY_NIL ? MP_ENOENT : with_value(rep, copy_out, a);
    freeReplyObject(rep);
    return rc;
}

static const char setdefault_lua[] =
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then return {1, ARGV[2]} end "
    "return {0, redis.call('HGET', KEYS[1], ARGV[1])}";

/* {created, value}: the only shape setdefault's script answers. */
static int check_setdefault(const redisReply *rep)
{
    if (rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_STRING ||
        (rep->element[0]->integer != 0 && rep->element[0]->integer != 1))
        return MP_EBADMSG;
    return 0;
}

int mp__redis_dict_setdefault(mp_dict *d, const void *key, size_t key_len, const mp_item *def,
                              void **out, size_t *out_len, mp_item_type *type)
{
    mp__redis_obj *o = NULL;
    mp__redis_enc e;
    int rc = dict_args(d, key, key_len, &o);
    if (rc == 0)
        rc = mp__redis_enc_item(&e, def);
    if (rc < 0)
        return rc;
    const char *argv[] = {"EVAL", setdefault_lua, "1", o->key, key, e.p};
    size_t lens[] = {4, sizeof(setdefault_lua) - 1, 1, o->key_len, key_len, e.len};
    redisReply *rep;
    rc = mp__redis_cmd(o->conn, MP__RR_EXEC, &rep, 6, argv, lens);
    free(e.heap);
    if (rc < 0)
        return rc;
    rc = rep->type == REDIS_REPLY_ARRAY ? check_setdefault(rep) : MP_EBADMSG;
    void *a[] = {out, out_len, type};
    if (rc == 0 && out)
        rc = with_value(rep->element[1], copy_out, a);
    if (rc == 0)
        rc = (int)rep->element[0]->integer;
    freeReplyObject(rep);
    return rc;
}

/* One attempt of update_with on a begun connection: WATCH, read, decide,
 * MULTI/write/EXEC. Returns fn's decision, MP_EAGAIN when EXEC was
 * aborted by a concurrent change, or an error. */
static int update_once(mp__redis_obj *o, const void *key, size_t klen, mp_dict_update_fn fn,
                       void *user)
{
    redisReply *rep = NULL;
    int rc = mp__redis_call(o->conn, MP__RR_STATUS, NULL, 0, 2, (const char *[]){"WATCH", o->key},
                            (size_t[]){5, o->key_len});
    if (rc == 0)
        rc = mp__redis_call(o->conn, MP__RR_STR_NIL, &rep, 0, 3,
                            (const char *[]){"HGET", o->key, key}, (size_t[]){4, o->key_len, klen});
    if (rc < 0)
        return rc;
    mp_dict_change u = {.found = rep->type == REDIS_REPLY_STRING};
    int64_t num;
    mp__blob *cur = NULL;
    if (u.found) {
        mp_item v;
        rc = mp__redis_decode(rep->str, rep->len, &v, &num);
        if (rc == 0)
            rc = mp__redis_blob(&cur, &v); /* aligned and NUL-terminated, as promised */
        if (rc == 0) {
            u.old = mp__blob_value(cur);
            u.old_len = cur->len;
            u.old_type = (mp_item_type)cur->type;
        }
    }
    freeReplyObject(rep);
    int what = rc < 0 ? rc : fn(&u, user);
    free(cur);
    if (what < 0 || what == MP_DICT_KEEP)
        return what;
    if (what != MP_DICT_STORE && what != MP_DICT_DELETE)
        return MP_EINVAL;
    mp__redis_enc e = {.heap = NULL};
    if (what == MP_DICT_STORE && (rc = mp__redis_enc_item(&e, &u.new_value)) < 0)
        return rc;
    rc = mp__redis_call(o->conn, MP__RR_STATUS, NULL, 0, 1, (const char *[]){"MULTI"}, NULL);
    if (rc == 0 && what == MP_DICT_STORE)
        rc = mp__redis_call(o->conn, MP__RR_STATUS, NULL, 0, 4,
                            (const char *[]){"HSET", o->key, key, e.p},
                            (size_t[]){4, o->key_len, klen, e.len});
    else if (rc == 0)
        rc = mp__redis_call(o->conn, MP__RR_STATUS, NULL, 0, 3,
                            (const char *[]){"HDEL", o->key, key}, (size_t[]){4, o->key_len, klen});
    free(e.heap);
    if (rc == 0)
        rc = mp__redis_call(o->conn, MP__RR_EXEC, &rep, 0, 1, (const char *[]){"EXEC"}, NULL);
    if (rc < 0)
        return rc;
    rc = rep->type == REDIS_REPLY_NIL                             ? MP_EAGAIN
         : rep->elements != 1                                     ? MP_EBADMSG
         : mp__redis_reply_check(rep->element[0], MP__RR_INT) < 0 ? MP_EBADMSG
                                                                  : what;
    freeReplyObject(rep);
    return rc;
}

int mp__redis_dict_update_with(mp_dict *d, const void *key, size_t key_len, mp_dict_update_fn fn,
                               void *user)
{
    mp__redis_obj *o = NULL;
    mp__deadline dl;
    unsigned lost = 0;
    int rc = dict_args(d, key, key_len, &o);
    if (rc < 0)
        return rc;
    mp__deadline_init(&dl, mp__redis_timeout(o->conn));
    do {
        rc = mp__redis_begin(o->conn);
        if (rc < 0)
            return rc;
        rc = update_once(o, key, key_len, fn, user);
        mp__redis_end(o->conn);
    } while (rc == MP_EAGAIN && mp__redis_retry(&dl, &lost) == 0);
    return rc;
}

/* d[k] += delta on the server. The int64 is added in two limbs of 9
 * decimal digits (Lua 5.1 numbers are doubles, exact below 2^53), and the
 * result is checked against the int64 range as text. Answers {0, sum},
 * {1, stored} when the stored value is not an int64 as this library
 * writes it (the caller tells another type from a malformed value), or
 * {2} on overflow; nothing is written in the last two cases. */
static const char add_lua[] = MP__REDIS_LUA_HELPERS
    "local MIN, MAX = '-9223372036854775808', '9223372036854775807' "
    "local function limbs(s) local neg = string.sub(s, 1, 1) == '-' "
    "local d = neg and string.sub(s, 2) or s "
    "local hi = #d > 9 and tonumber(string.sub(d, 1, #d - 9)) or 0 "
    "local lo = tonumber(string.sub(d, -9)) "
    "if neg then return -hi, -lo end return hi, lo end "
    "local v = redis.call('HGET', KEYS[1], ARGV[1]) "
    "local cur = '0' "
    "if v then cur = string.sub(v, 2) "
    "if string.sub(v, 1, 1) ~= 'i' or not isnum(cur, false) or dcmp(cur, MIN) < 0 "
    "or dcmp(cur, MAX) > 0 then return {1, v} end end "
    "local h1, l1 = limbs(cur) local h2, l2 = limbs(ARGV[2]) "
    "local h, l = h1 + h2, l1 + l2 "
    "local c = math.floor(l / 1e9) l = l - c * 1e9 h = h + c "
    "local neg = h < 0 "
    "if neg and l > 0 then h, l = -h - 1, 1e9 - l elseif neg then h = -h end "
    "local r = h > 0 and string.format('%.0f%09.0f', h, l) or string.format('%.0f', l) "
    "if neg then r = '-' .. r end "
    "if dcmp(r, MIN) < 0 or dcmp(r, MAX) > 0 then return {2} end "
    "redis.call('HSET', KEYS[1], ARGV[1], 'i' .. r) return {0, r}";

/* What add_lua answered. */
static int add_answer(const redisReply *rep, int64_t *result)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER)
        return MP_EBADMSG;
    long long code = rep->element[0]->integer;
    if (code == 2 && rep->elements == 1)
        return MP_EOVERFLOW;
    if (rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_STRING)
        return MP_EBADMSG;
    const redisReply *s = rep->element[1];
    if (code == 0)
        return mp__redis_parse_int(s->str, s->len, result);
    mp_item v;
    int64_t num;
    if (code != 1 || mp__redis_decode(s->str, s->len, &v, &num) < 0 || v.type == MP_ITEM_INT64)
        return MP_EBADMSG;
    return MP_EPROTO; /* a well-formed value of another type */
}

int mp__redis_dict_add_int64(mp_dict *d, const char *key, int64_t delta, int64_t *result)
{
    mp__redis_obj *o = NULL;
    int rc = key ? dict_args(d, key, strlen(key), &o) : MP_EINVAL;
    if (rc < 0)
        return rc;
    char num[24];
    snprintf(num, sizeof(num), "%lld", (long long)delta);
    const char *argv[] = {"EVAL", add_lua, "1", o->key, key, num};
    size_t lens[] = {4, sizeof(add_lua) - 1, 1, o->key_len, strlen(key), strlen(num)};
    redisReply *rep;
    rc = mp__redis_cmd(o->conn, MP__RR_EXEC, &rep, 6, argv, lens);
    if (rc < 0)
        return rc;
    int64_t r = 0;
    rc = add_answer(rep, &r);
    freeReplyObject(rep);
    if (rc == 0 && result)
        *result = r;
    return rc;
}

/* Adds the entries of a HKEYS/HVALS/HGETALL reply to a snapshot (s NULL:
 * only counts into sz). Every value is decoded, so a malformed one fails
 * the whole snapshot before anything is copied. */
static int snap_pass(const redisReply *rep, unsigned what, mp__snap_size *sz, mp_snapshot *s)
{
    size_t step = what == (MP__SNAP_KEYS | MP__SNAP_VALUES) ? 2 : 1;
    for (size_t i = 0; i + step <= rep->elements; i += step) {
        const redisReply *k = rep->element[i], *v = rep->element[i + step - 1];
        mp_item key = {.data = k->str, .len = k->len, .type = MP_ITEM_BYTES}, val = {0};
        int64_t num;
        if ((what & MP__SNAP_VALUES) && mp__redis_decode(v->str, v->len, &val, &num) < 0)
            return MP_EBADMSG;
        if (s)
            mp__snap_add_item(s, &key, &val);
        else
            mp__snap_count_item(sz, &key, &val, what);
    }
    return 0;
}

int mp__redis_dict_snapshot(const mp_dict *d, unsigned what, mp_snapshot **out)
{
    int rc = mp__redis_obj_check(d, MP__MAGIC_DICT);
    if (rc < 0)
        return rc;
    const mp__redis_obj *o = (const mp__redis_obj *)d;
    const char *cmd = what == MP__SNAP_KEYS     ? "HKEYS"
                      : what == MP__SNAP_VALUES ? "HVALS"
                                                : "HGETALL";
    redisReply *rep;
    rc = mp__redis_cmd(o->conn, MP__RR_ARRAY, &rep, 2, (const char *[]){cmd, o->key},
                       (size_t[]){strlen(cmd), o->key_len});
    if (rc < 0)
        return rc;
    mp__snap_size sz = {0};
    if (strcmp(cmd, "HGETALL") == 0 && rep->elements % 2 != 0)
        rc = MP_EBADMSG;
    if (rc == 0)
        rc = snap_pass(rep, what, &sz, NULL);
    if (rc == 0)
        rc = mp__snap_alloc(out, &sz, what);
    if (rc == 0)
        snap_pass(rep, what, NULL, *out);
    freeReplyObject(rep);
    return rc;
}

/* A hash has no order: popitem takes a random field (HRANDFIELD, Redis
 * 6.2+). It is read first and deleted only once the caller has checked
 * and copied it, by a second script that deletes it only if it still
 * holds the value read (another client may have changed or taken it:
 * then another field is picked, within the URL's timeout). So a field
 * this library never wrote, or a copy that fails, changes nothing.
 * pick answers {field, value} or false when the hash is empty; take
 * answers 1 (deleted) or 0 (changed meanwhile). */
static const char popitem_pick_lua[] = "local f = redis.call('HRANDFIELD', KEYS[1]) "
                                       "if not f then return false end "
                                       "return {f, redis.call('HGET', KEYS[1], f)}";
static const char popitem_take_lua[] = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
                                       "redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end return 0";

/* One round of popitem: 0 (taken, the outputs set), MP_EAGAIN (the pair
 * changed between the two scripts: nothing taken), or an error (nothing
 * changed). */
static int popitem_once(const mp__redis_obj *o, void **key, size_t *key_len, void **value,
                        size_t *value_len, mp_item_type *type)
{
    const char *argv[] = {"EVAL", popitem_pick_lua, "1", o->key};
    size_t lens[] = {4, sizeof(popitem_pick_lua) - 1, 1, o->key_len};
    redisReply *rep;
    int rc = mp__redis_cmd(o->conn, MP__RR_ANY_VALUE, &rep, 4, argv, lens);
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_NIL) {
        freeReplyObject(rep);
        return MP_EEMPTY;
    }
    const redisReply *f =
        rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 ? rep->element[0] : NULL;
    if (f == NULL || f->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_STRING ||
        mp__key_check(f->str, f->len) < 0) {
        freeReplyObject(rep);
        return MP_EBADMSG; /* a field this library never wrote: left where it is */
    }
    char *k = malloc(f->len + 1);
    void *v = NULL;
    size_t vlen = 0;
    mp_item_type t;
    void *a[] = {&v, &vlen, &t};
    rc = k == NULL ? MP_ENOMEM : with_value(rep->element[1], copy_out, a);
    if (rc == 0) {
        const redisReply *val = rep->element[1];
        const char *targv[] = {"EVAL", popitem_take_lua, "1", o->key, f->str, val->str};
        size_t tlens[] = {4, sizeof(popitem_take_lua) - 1, 1, o->key_len, f->len, val->len};
        redisReply *took;
        rc = mp__redis_cmd(o->conn, MP__RR_INT, &took, 6, targv, tlens);
        if (rc == 0) {
            rc = took->integer == 1 ? 0 : MP_EAGAIN;
            freeReplyObject(took);
        }
    }
    if (rc == 0) {
        memcpy(k, f->str, f->len);
        k[f->len] = '\0';
        *key = k;
        *key_len = f->len;
        *value = v;
        *value_len = vlen;
        if (type)
            *type = t;
    } else {
        free(k);
        free(v);
    }
    freeReplyObject(rep);
    return rc;
}

int mp__redis_dict_popitem(mp_dict *d, void **key, size_t *key_len, void **value, size_t *value_len,
                           mp_item_type *type)
{
    int rc = mp__redis_obj_check(d, MP__MAGIC_DICT);
    if (rc < 0)
        return rc;
    const mp__redis_obj *o = (const mp__redis_obj *)d;
    mp__deadline dl;
    unsigned lost = 0;
    mp__deadline_init(&dl, mp__redis_timeout(o->conn));
    do
        rc = popitem_once(o, key, key_len, value, value_len, type);
    while (rc == MP_EAGAIN && mp__redis_retry(&dl, &lost) == 0);
    return rc;
}
