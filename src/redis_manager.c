/* The Redis backend's entry in the manager's backend table: names and
 * object handles.
 *
 * Key layout (every key starts with the URL's prefix, "mp:" by default):
 *   <prefix>names          hash: object name -> type ("dict", "list", ...)
 *   <prefix>dict:<name>    hash: dict key -> tagged value (redis_reply.c)
 *   <prefix>list:<name>    list of tagged values
 *   <prefix>ns:<name>      hash: attribute name -> tagged value
 * A name belongs to one type, like in the local registry: HSETNX on the
 * names hash makes the creation atomic between clients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "redis_internal.h"

/* Implemented in namespace.c: a process-local namespace over a dict
 * handle of this backend. */
int mp__namespace_wrap(mp_namespace **out, mp_dict *d);

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

int mp__robj_new(mp__robj **out, mp__redis *conn, uint32_t magic, const char *kind,
                 const char *name)
{
    const char *prefix = mp__redis_prefix(conn);
    size_t n = strlen(prefix) + strlen(kind) + 1 + strlen(name);
    mp__robj *o = malloc(sizeof(*o) + n + 1);
    if (o == NULL)
        return MP_ENOMEM;
    o->head = (mp__obj_head){.magic = magic, .backend = MP__BACKEND_REDIS};
    o->conn = conn;
    o->key_len = n;
    snprintf(o->key, n + 1, "%s%s:%s", prefix, kind, name);
    mp__redis_ref(conn);
    *out = o;
    return 0;
}

void mp__robj_free(mp__robj *o)
{
    if (o == NULL)
        return;
    o->head.magic = 0;
    mp__redis_unref(o->conn);
    free(o);
}

int mp__robj_check(const void *p, uint32_t magic)
{
    const mp__obj_head *h = p;
    if (p == NULL || ((uintptr_t)p & 7u) != 0 || h->backend != MP__BACKEND_REDIS ||
        h->magic != magic)
        return MP_EINVAL;
    return 0;
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

/* The type names stored in the names hash (part of the key layout). */
static const char *type_name(mp__objtype type)
{
    switch (type) {
    case MP__OBJ_DICT:
        return "dict";
    case MP__OBJ_LIST:
        return "list";
    case MP__OBJ_NAMESPACE:
        return "namespace";
    default:
        return NULL;
    }
}

/* Registers name as type: 1 when this call created it, 0 when it existed
 * with that type, MP_EEXIST when it has another. */
static int register_name(mp__redis *r, const char *tname, const char *name)
{
    char key[MP__REDIS_PREFIX_MAX + 8];
    snprintf(key, sizeof(key), "%snames", mp__redis_prefix(r));
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

static int make_handle(mp__redis *r, mp__objtype type, const char *name, void **out)
{
    mp__robj *o;
    int rc;
    switch (type) {
    case MP__OBJ_DICT:
        rc = mp__robj_new(&o, r, MP__MAGIC_DICT, "dict", name);
        break;
    case MP__OBJ_LIST:
        rc = mp__robj_new(&o, r, MP__MAGIC_LIST, "list", name);
        break;
    case MP__OBJ_NAMESPACE:
        rc = mp__robj_new(&o, r, MP__MAGIC_DICT, "ns", name);
        if (rc == 0) {
            rc = mp__namespace_wrap((mp_namespace **)out, (mp_dict *)o);
            if (rc < 0)
                mp__robj_free(o);
            return rc;
        }
        break;
    default:
        return MP_EINVAL;
    }
    if (rc == 0)
        *out = o;
    return rc;
}

static int redis_get(void *state, mp__objtype type, const char *name, const void *opts, void **out)
{
    (void)opts; /* the local options (shards, ...) mean nothing on Redis */
    const char *tname = type_name(type);
    if (tname == NULL) {
        /* A type the local backend has and this one does not serve yet. */
        if (type > 0 && type < MP__OBJ_TYPE_END) {
            mp__debug("manager: the Redis backend does not serve this type yet");
            return MP_ENOSYS;
        }
        return MP_EINVAL;
    }
    int created = register_name(state, tname, name);
    if (created < 0)
        return created;
    int rc = make_handle(state, type, name, out);
    return rc < 0 ? rc : created;
}

const mp__backend_ops mp__backend_redis = {
    .name = "redis",
    .accepts = redis_accepts,
    .open = redis_open,
    .close = redis_close,
    .get = redis_get,
};
