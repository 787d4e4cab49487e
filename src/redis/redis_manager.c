/* The Redis backend's entry in the manager's backend table: names, keys
 * and object handles.
 *
 * Key layout (every key starts with the URL's prefix, "mp:" by default;
 * <n> is the object's name escaped by mp__redis_key: '%' as "%25", ':' as
 * "%3A", so that it ends at the next ':'):
 *   <prefix>names          hash: object name -> type ("dict", "list", ...)
 *   <prefix>dict:<n>       hash: dict key -> tagged value (redis/redis_reply.c)
 *   <prefix>list:<n>       list of tagged values
 *   <prefix>ns:<n>         hash: attribute name -> tagged value
 *   <prefix>queue:<n>      list of messages (raw bytes), and
 *   <prefix>queue:<n>:maxsize    its capacity, a joinable queue's
 *   <prefix>queue:<n>:unfinished, ...:jgen   its count of messages not
 *                          done and of the times it reached 0, and
 *   <prefix>queue:<n>:closed, ...:closedwake   "1" and ["1"] once closed
 *                          (redis/redis_queue.c)
 *   <prefix>lock:<n>       the holder's token, with the lease as expiry, and
 *   <prefix>lock:<n>:owner       the same token until released, and
 *   <prefix>lock:<n>:fence       the count of acquisitions: the last fencing
 *                                token (redis/redis_sync.c)
 *   <prefix>sem:<n>, <prefix>sem:<n>:max   value and bound (redis/redis_sem.c)
 *   <prefix>event:<n>      "1" while the event is set, <prefix>event:<n>:gen
 *                          its count of sets
 *   <prefix><lock|rlock|sem|event>:<n>:wait, ...:wake   the waiters enlisted
 *                          and their wake-ups (redis/redis_wake.c)
 *   <prefix>value:<n>      the number in decimal (absent: 0)
 *   <prefix>pool:<n>:...   a distributed pool's keys (redis/redis_pool_codec.c)
 * A name belongs to one type, like in the local registry: HSETNX on the
 * names hash makes the creation atomic between clients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager_internal.h"
#include "redis/redis_internal.h"
#include "redis/redis_pool.h"

/* The initial number of a value its creator made (sync/value.c formats it). */
static int init_value(void *v, const mp_value_opts *o)
{
    char text[MP__VALUE_TEXT_MAX];
    if (o->init == NULL)
        return 0; /* absent reads 0 */
    int rc = mp__value_item_text(o->typecode, o->init, text, sizeof(text));
    return rc < 0 ? rc : mp__redis_value_init_text(v, text);
}

/* The items of an array its creator made: zeros, or init's. */
static int init_array(void *a, const mp_array_opts *o)
{
    size_t n = o->len, size = (size_t)mp_typecode_size(o->typecode);
    char(*texts)[MP__VALUE_TEXT_MAX] = calloc(n ? n : 1, sizeof(*texts));
    const char **argv = calloc(n ? n : 1, sizeof(*argv));
    int rc = texts && argv ? 0 : MP_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        argv[i] = texts[i];
        if (o->init == NULL)
            memcpy(texts[i], "0", 2);
        else
            rc = mp__value_item_text(o->typecode, (const char *)o->init + i * size, texts[i],
                                     sizeof(texts[i]));
    }
    if (rc == 0)
        rc = mp__redis_array_init(a, argv, n);
    free(argv);
    free(texts);
    return rc;
}

static bool redis_accepts(const char *url)
{
    return url && (strncmp(url, "redis://", 8) == 0 || strncmp(url, "rediss://", 9) == 0);
}

static int redis_open(void **state, const char *url)
{
    mp__redis_url u;
    int rc = mp__redis_url_parse(&u, url);
    if (rc < 0)
        return rc;
    mp__redis *r;
    rc = mp__redis_open(&r, &u);
    mp__redis_url_fini(&u);
    if (rc < 0)
        return rc;
    *state = r;
    return 0;
}

static void redis_close(void *state)
{
    mp__redis_unref(state);
}

/* One byte of a name as it appears in a key: itself, or %XX for the
 * separator and the escape character. Returns the bytes written (out may
 * be NULL to count). */
static size_t escape_byte(char c, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    if (c != ':' && c != '%') {
        if (out)
            out[0] = c;
        return 1;
    }
    if (out) {
        out[0] = '%';
        out[1] = hex[(unsigned char)c >> 4];
        out[2] = hex[(unsigned char)c & 15];
    }
    return 3;
}

void mp__redis_names_key(char buf[MP__REDIS_NAMES_KEY_MAX], const char *prefix)
{
    snprintf(buf, MP__REDIS_NAMES_KEY_MAX, "%.*snames", MP__REDIS_PREFIX_MAX, prefix);
}

int mp__redis_key(char *buf, size_t cap, const char *prefix, const char *tag, const char *name,
                  const char *part)
{
    size_t nlen = name ? strnlen(name, MP_MANAGER_NAME_MAX + 1) : 0;
    if (buf == NULL || prefix == NULL || tag == NULL || nlen == 0 || nlen > MP_MANAGER_NAME_MAX)
        return MP_EINVAL;
    size_t plen = strlen(prefix), tlen = strlen(tag), xlen = part ? strlen(part) + 1 : 0, n = 0;
    for (size_t i = 0; i < nlen; i++)
        n += escape_byte(name[i], NULL);
    size_t total = plen + tlen + 1 + n + xlen;
    if (total >= cap || total > INT32_MAX)
        return MP_EINVAL;
    char *p = buf;
    memcpy(p, prefix, plen);
    memcpy(p += plen, tag, tlen);
    *(p += tlen) = ':';
    p++;
    for (size_t i = 0; i < nlen; i++)
        p += escape_byte(name[i], p);
    if (part) {
        *p++ = ':';
        memcpy(p, part, xlen - 1);
    }
    buf[total] = '\0';
    return (int)total;
}

int mp__redis_obj_new(mp__redis_obj **out, mp__redis *conn, uint32_t magic, const void *ops,
                      const char *kind, const char *name)
{
    char key[MP__REDIS_KEY_MAX];
    int n = mp__redis_key(key, sizeof(key), mp__redis_prefix(conn), kind, name, NULL);
    if (n < 0)
        return n;
    mp__redis_obj *o = malloc(sizeof(*o) + (size_t)n + 1);
    if (o == NULL)
        return MP_ENOMEM;
    o->rh = (mp__remote_head){.head = {.magic = magic, .backend = MP__BACKEND_REDIS}, .ops = ops};
    o->conn = conn;
    o->key_len = (size_t)n;
    memcpy(o->key, key, (size_t)n + 1);
    mp__redis_ref(conn);
    *out = o;
    return 0;
}

void mp__redis_obj_part(const mp__redis_obj *o, const char *part, char buf[MP__REDIS_KEY_MAX])
{
    /* The object's key ends with its escaped name: appending ":part" gives
     * mp__redis_key(..., part), and fits (the key was built to leave room). */
    snprintf(buf, MP__REDIS_KEY_MAX, "%s:%s", o->key, part);
}

void mp__redis_obj_free(mp__redis_obj *o)
{
    if (o == NULL)
        return;
    o->rh.head.magic = 0;
    mp__redis_unref(o->conn);
    mp__handle_freed(); /* every handle's close frees its object: see heap/heap.h */
    free(o);
}

int mp__redis_obj_check(const void *p, uint32_t magic)
{
    const mp__obj_head *h = p;
    if (p == NULL || ((uintptr_t)p & 7u) != 0 || h->backend != MP__BACKEND_REDIS ||
        h->magic != magic)
        return MP_EINVAL;
    return 0;
}

int mp__redis_obj_count(mp__redis_obj *o, const char *cmd, long long *out)
{
    redisReply *rep;
    int rc = mp__redis_cmd(o->conn, MP__RR_INT, &rep, 2, (const char *[]){cmd, o->key},
                           (size_t[]){strlen(cmd), o->key_len});
    if (rc < 0)
        return rc;
    *out = rep->integer;
    freeReplyObject(rep);
    return *out < 0 ? MP_EBADMSG : 0;
}

int mp__redis_blob(mp__blob **out, const mp_item *v)
{
    mp__blob *b = malloc(sizeof(*b) + mp__align8(1) + v->len + 1);
    if (b == NULL)
        return MP_ENOMEM;
    memset(b, 0, sizeof(*b));
    b->type = (uint32_t)v->type;
    b->len = v->len;
    b->data[0] = '\0';
    unsigned char *val = (unsigned char *)(uintptr_t)mp__blob_value(b);
    if (v->len)
        memcpy(val, v->data, v->len);
    val[v->len] = '\0';
    *out = b;
    return 0;
}

/* The type names stored in the names hash (part of the key layout). A
 * value's name carries its shape, "value:q" or "value:qr" (raw), so that
 * a mismatch is MP_EEXIST like another type. Returns NULL for a type this
 * backend does not serve. */
static const char *type_name(mp__objtype type, const void *opts, char buf[48])
{
    switch (type) {
    case MP__OBJ_DICT:
        return "dict";
    case MP__OBJ_LIST:
        return "list";
    case MP__OBJ_NAMESPACE:
        return "namespace";
    case MP__OBJ_QUEUE: {
        /* A joinable queue is another shape: a plain opener is refused. */
        const mp_queue_opts *o = opts;
        return o && o->joinable ? "queue:j" : "queue";
    }
    case MP__OBJ_LOCK:
        return "lock";
    case MP__OBJ_RLOCK:
        return "rlock";
    case MP__OBJ_SEM:
        return "sem";
    case MP__OBJ_EVENT:
        return "event";
    case MP__OBJ_COND:
        return "cond";
    case MP__OBJ_BARRIER: {
        /* The parties are the barrier's shape: another number is refused. */
        snprintf(buf, 48, "barrier:%u", ((const mp_barrier_opts *)opts)->parties);
        return buf;
    }
    case MP__OBJ_VALUE: {
        const mp_value_opts *o = opts;
        snprintf(buf, 48, "value:%c%s", o->typecode, o->raw ? "r" : "");
        return buf;
    }
    case MP__OBJ_ARRAY: {
        const mp_array_opts *o = opts;
        snprintf(buf, 48, "array:%c%s:%zu", o->typecode, o->raw ? "r" : "", o->len);
        return buf;
    }
    default:
        return NULL;
    }
}

/* The most keys an object has: its key and up to 7 parts. */
#define DATA_KEYS_MAX 8

/* The data keys of an object whose stored type name is tname: what
 * MP_MANAGER_DESTROY deletes (a lock's fence counter too: a lock made
 * again under the name counts its tokens from 1). Returns their number,
 * or MP_EINVAL. */
static int data_keys(const char *prefix, const char *tname, const char *name,
                     char keys[DATA_KEYS_MAX][MP__REDIS_KEY_MAX])
{
    static const struct {
        const char *type, *kind, *parts[DATA_KEYS_MAX]; /* parts: NULL-ended */
    } rows[] = {
        {"dict", "dict", {NULL}},
        {"list", "list", {NULL}},
        {"namespace", "ns", {NULL}},
        {"queue",
         "queue",
         {"maxsize", "unfinished", "jgen", "wait", "wake", "closed", "closedwake"}},
        {"lock", "lock", {"owner", "fence", "wait", "wake", "cwait", "cexp", "cseq"}},
        {"event", "event", {"gen", "wait", "wake", NULL}},
        {"value", "value", {NULL}},
        {"rlock", "rlock", {"owner", "fence", "wait", "wake", "cwait", "cexp", "cseq"}},
        {"cond", "cond", {"owner", "fence", "wait", "wake", "cwait", "cexp", "cseq"}},
        {"barrier", "barrier", {"hist", NULL}},
        {"sem", "sem", {"max", "wait", "wake", NULL}},
        {"array", "array", {NULL}},
    };
    for (size_t i = 0; i < MP__ARRAY_LEN(rows); i++) {
        size_t n = strlen(rows[i].type);
        if (strncmp(tname, rows[i].type, n) != 0 || (tname[n] != '\0' && tname[n] != ':'))
            continue;
        int rc = mp__redis_key(keys[0], MP__REDIS_KEY_MAX, prefix, rows[i].kind, name, NULL);
        int k = 1;
        for (; rc >= 0 && k < DATA_KEYS_MAX && rows[i].parts[k - 1]; k++)
            rc = mp__redis_key(keys[k], MP__REDIS_KEY_MAX, prefix, rows[i].kind, name,
                               rows[i].parts[k - 1]);
        return rc < 0 ? rc : k;
    }
    return 0; /* written by a later version: only the name goes */
}

/* Registers name as type: 1 when this call created it, 0 when it existed
 * with that type, MP_EEXIST when it has another. */
static int register_name(mp__redis *r, const char *tname, const char *name)
{
    char key[MP__REDIS_NAMES_KEY_MAX];
    mp__redis_names_key(key, mp__redis_prefix(r));
    redisReply *rep;
    int rc =
        mp__redis_cmd(r, MP__RR_INT, &rep, 4, (const char *[]){"HSETNX", key, name, tname}, NULL);
    if (rc < 0)
        return rc;
    int created = rep->integer == 1;
    freeReplyObject(rep);
    if (created)
        return 1;
    rc = mp__redis_cmd(r, MP__RR_STR_NIL, &rep, 3, (const char *[]){"HGET", key, name}, NULL);
    if (rc < 0)
        return rc;
    /* nil: deleted by someone in between; the name is free again, and
     * the object (an empty key) is what a new one would be. */
    bool same = rep->type == REDIS_REPLY_NIL ||
                (rep->len == strlen(tname) && memcmp(rep->str, tname, rep->len) == 0);
    freeReplyObject(rep);
    if (!same)
        mp__debug("manager: '%s' is not a %s", name, tname);
    return same ? 0 : MP_EEXIST;
}

/* The handle of a queue, lock, event or value. */
static int make_sync_handle(mp__redis *r, mp__objtype type, const char *name, const void *opts,
                            void **out)
{
    switch (type) {
    case MP__OBJ_QUEUE: {
        const mp_queue_opts *o = opts;
        return mp__redis_queue_open((mp__redis_queue **)out, r, name, o ? o->maxsize : 0,
                                    o && o->joinable);
    }
    case MP__OBJ_LOCK:
        return mp__redis_lock_open((mp__redis_lock **)out, r, name, mp__redis_lease(r));
    case MP__OBJ_RLOCK: {
        int rc =
            mp__redis_lock_open_kind((mp__redis_lock **)out, r, name, "rlock", mp__redis_lease(r));
        if (rc == 0)
            mp__redis_lock_set_recursive(*out);
        return rc;
    }
    case MP__OBJ_SEM: {
        const mp_sem_opts *o = opts;
        return mp__redis_sem_open((mp__redis_sem **)out, r, name, o ? o->value : 0,
                                  o && o->bounded);
    }
    case MP__OBJ_EVENT:
        return mp__redis_obj_new((mp__redis_obj **)out, r, MP__MAGIC_REVENT, &mp__redis_event_ops,
                                 "event", name);
    case MP__OBJ_COND:
        return mp__redis_cond_open((mp__redis_cond **)out, r, name, mp__redis_lease(r));
    case MP__OBJ_BARRIER:
        return mp__redis_barrier_open((mp__redis_barrier **)out, r, name,
                                      ((const mp_barrier_opts *)opts)->parties);
    case MP__OBJ_VALUE:
        return mp__redis_value_open(out, r, name, ((const mp_value_opts *)opts)->typecode);
    case MP__OBJ_ARRAY: {
        const mp_array_opts *o = opts;
        return mp__redis_array_open(out, r, name, o->typecode, o->len);
    }
    default:
        return MP_EINVAL;
    }
}

static int make_handle(mp__redis *r, mp__objtype type, const char *name, const void *opts,
                       void **out)
{
    mp__redis_obj *o;
    int rc;
    switch (type) {
    case MP__OBJ_DICT:
        rc = mp__redis_obj_new(&o, r, MP__MAGIC_DICT, &mp__redis_dict_ops, "dict", name);
        break;
    case MP__OBJ_LIST:
        rc = mp__redis_obj_new(&o, r, MP__MAGIC_LIST, &mp__redis_list_ops, "list", name);
        break;
    case MP__OBJ_NAMESPACE:
        rc = mp__redis_obj_new(&o, r, MP__MAGIC_DICT, &mp__redis_dict_ops, "ns", name);
        if (rc == 0) {
            rc = mp__namespace_wrap((mp_namespace **)out, (mp_dict *)o);
            if (rc < 0)
                mp__redis_obj_free(o);
            return rc;
        }
        break;
    default:
        return make_sync_handle(r, type, name, opts, out);
    }
    if (rc == 0)
        *out = o;
    return rc;
}

/* Options the Redis objects cannot honour: MP_ENOSYS, never silently
 * dropped (a byte budget, task accounting); an array longer than one
 * command may carry: MP_ENOMEM. */
static int check_opts(mp__objtype type, const void *opts)
{
    const mp_queue_opts *q = opts;
    if (type == MP__OBJ_QUEUE && q && q->max_bytes != 0) {
        mp__debug("manager: a Redis queue has no max_bytes");
        return MP_ENOSYS;
    }
    if (type == MP__OBJ_ARRAY && ((const mp_array_opts *)opts)->len > MP__REDIS_ARRAY_ITEMS_MAX)
        return MP_ENOMEM;
    return 0;
}

static int redis_get(void *state, mp__objtype type, const char *name, const void *opts, void **out)
{
    char buf[48];
    const char *tname = type_name(type, opts, buf);
    if (tname == NULL) {
        /* A type the local backend has and this one does not serve. */
        if (type > 0 && type < MP__OBJ_TYPE_END) {
            mp__debug("manager: the Redis backend does not serve this type");
            return MP_ENOSYS;
        }
        return MP_EINVAL;
    }
    int rc = check_opts(type, opts);
    int created = rc < 0 ? rc : register_name(state, tname, name);
    if (created < 0)
        return created;
    void *obj;
    rc = make_handle(state, type, name, opts, &obj);
    if (rc == 0 && created && type == MP__OBJ_VALUE) {
        rc = init_value(obj, opts);
        if (rc < 0)
            mp__redis_value_destroy(obj);
    }
    if (rc == 0 && created && type == MP__OBJ_ARRAY) {
        rc = init_array(obj, opts);
        if (rc < 0)
            mp__redis_array_destroy(obj);
    }
    if (rc < 0)
        return rc;
    *out = obj;
    return created;
}

/* Takes name away in one script (atomic on the server): the entry in the
 * names hash, and with destroy the data keys (KEYS[2..]). 0: the name
 * changed type or went away between the HGET and the script. */
static const char remove_lua[] = "if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then "
                                 "return 0 end redis.call('HDEL', KEYS[1], ARGV[1]) "
                                 "for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end return 1";

static int redis_remove(void *state, const char *name, unsigned flags)
{
    mp__redis *r = state;
    const char *prefix = mp__redis_prefix(r);
    char names[MP__REDIS_NAMES_KEY_MAX];
    char keys[DATA_KEYS_MAX][MP__REDIS_KEY_MAX];
    mp__redis_names_key(names, prefix);
    redisReply *rep;
    int rc = mp__redis_cmd(r, MP__RR_STR_NIL, &rep, 3, (const char *[]){"HGET", names, name}, NULL);
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_NIL || memchr(rep->str, '\0', rep->len) != NULL) {
        freeReplyObject(rep);
        return MP_ENOENT;
    }
    int nkeys = (flags & MP_MANAGER_DESTROY) ? data_keys(prefix, rep->str, name, keys) : 0;
    if (nkeys < 0) {
        freeReplyObject(rep);
        return nkeys;
    }
    const char *argv[6 + DATA_KEYS_MAX] = {"EVAL", remove_lua, NULL, names};
    char nk[12];
    snprintf(nk, sizeof(nk), "%d", 1 + nkeys);
    argv[2] = nk;
    int argc = 4;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    argv[argc++] = name;
    argv[argc++] = rep->str;
    redisReply *res;
    rc = mp__redis_cmd(r, MP__RR_INT, &res, argc, argv, NULL);
    freeReplyObject(rep);
    if (rc < 0)
        return rc;
    long long removed = res->integer;
    freeReplyObject(res);
    return removed == 1 ? 0 : MP_ENOENT;
}

const mp__backend_ops mp__backend_redis = {
    .name = "redis",
    .accepts = redis_accepts,
    .open = redis_open,
    .close = redis_close,
    .get = redis_get,
    .remove = redis_remove,
    .pool = &mp__redis_pool_backend,
};
