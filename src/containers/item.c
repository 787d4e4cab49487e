/* Stored values, snapshots and the lock-and-repair helper shared by the
 * containers (see containers/item_internal.h). */
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "containers/item_internal.h"

/* A snapshot: an array of entries followed by the copied bytes. */
typedef struct mp__snap_entry {
    mp_item key;
    mp_item value;
    uint64_t seq;
} mp__snap_entry;

struct mp_snapshot {
    size_t n, cap;
    unsigned what;
    char *next; /* where the next copied bytes go */
    mp__snap_entry e[];
};

bool mp__obj_check(const void *p, size_t size, uint32_t magic)
{
    if (p == NULL || ((uintptr_t)p & 7u) != 0 || !mp__heap_contains(p, size))
        return false;
    const mp__obj_head *h = p;
    return h->magic == magic && h->backend == MP__BACKEND_LOCAL;
}

int mp__key_check(const void *key, size_t len)
{
    if (key == NULL)
        return MP_EINVAL;
    return len > MP_KEY_MAX ? MP_EMSGSIZE : 0;
}

int mp__key_check_in(const char *fn, const void *key, size_t len)
{
    if (key == NULL)
        return mp__fail(MP_EINVAL, "%s: key is NULL", fn);
    if (len > MP_KEY_MAX)
        return mp__fail(MP_EMSGSIZE, "%s: key_len %zu is above MP_KEY_MAX (%zu)", fn, len,
                        (size_t)MP_KEY_MAX);
    return 0;
}

/* The detail of a value that mp__item_check refused with rc. */
static int __attribute__((cold))
item_fail(const char *fn, const char *arg, const mp_item *v, int rc)
{
    if (v == NULL)
        return mp__fail(rc, "%s: %s is NULL", fn, arg);
    if (v->data == NULL && v->len != 0)
        return mp__fail(rc, "%s: %s->data is NULL with %s->len %zu", fn, arg, arg, v->len);
    if (rc == MP_EMSGSIZE)
        return mp__fail(rc, "%s: %s->len %zu is above MP_VALUE_MAX (%zu)", fn, arg, v->len,
                        (size_t)MP_VALUE_MAX);
    if (v->type == MP_ITEM_INT64 || v->type == MP_ITEM_DOUBLE)
        return mp__fail(rc, "%s: %s->len is %zu for a number (must be 8)", fn, arg, v->len);
    return mp__fail(rc, "%s: %s->type is %d (not an mp_item_type)", fn, arg, (int)v->type);
}

int mp__item_check_in(const char *fn, const char *arg, const mp_item *v)
{
    int rc = mp__item_check(v);
    return rc < 0 ? item_fail(fn, arg, v, rc) : 0;
}

int mp__item_check(const mp_item *v)
{
    if (v == NULL || (v->data == NULL && v->len != 0))
        return MP_EINVAL;
    switch (v->type) {
    case MP_ITEM_BYTES:
    case MP_ITEM_STR:
        return v->len > MP_VALUE_MAX ? MP_EMSGSIZE : 0;
    case MP_ITEM_INT64:
    case MP_ITEM_DOUBLE:
        return v->len == 8 ? 0 : MP_EINVAL;
    default:
        return MP_EINVAL;
    }
}

uint64_t mp__key_hash(const void *key, size_t len)
{
    /* FNV-1a, then a 64-bit finaliser so that every bit depends on every
     * byte: the low bits pick the shard, the next ones the slot. */
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

int mp__blob_new(mp__blob **out, const void *key, size_t key_len, const mp_item *v)
{
    mp__blob *b;
    size_t voff = mp__align8(key_len + 1);
    int rc = mp__heap_alloc((void **)&b, sizeof(*b) + voff + v->len + 1);
    if (rc < 0)
        return rc;
    b->key_len = (uint32_t)key_len;
    b->type = (uint32_t)v->type;
    b->len = v->len;
    if (key_len)
        memcpy(b->data, key, key_len);
    b->data[key_len] = 0;
    if (v->len)
        memcpy(b->data + voff, v->data, v->len);
    b->data[voff + v->len] = 0;
    if (key)
        b->hash = mp__key_hash(key, key_len);
    *out = b;
    return 0;
}

void mp__blob_free(mp__blob *b)
{
    mp__heap_free(b);
}

mp_item mp__blob_item(const mp__blob *b)
{
    return (mp_item){.data = mp__blob_value(b), .len = b->len, .type = (mp_item_type)b->type};
}

int mp__blob_copy_out(const mp__blob *b, void **out, size_t *out_len, mp_item_type *type)
{
    char *p = malloc(b->len + 1);
    if (p == NULL)
        return MP_ENOMEM;
    memcpy(p, mp__blob_value(b), b->len + 1);
    *out = p;
    *out_len = b->len;
    if (type)
        *type = (mp_item_type)b->type;
    return 0;
}

int mp__blob_copy_into(const mp__blob *b, void *buf, size_t cap, size_t *out_len,
                       mp_item_type *type)
{
    *out_len = b->len;
    if (type)
        *type = (mp_item_type)b->type;
    if (b->len > cap)
        return MP_EMSGSIZE;
    if (b->len)
        memcpy(buf, mp__blob_value(b), b->len);
    return 0;
}

void mp__snap_count(mp__snap_size *sz, const mp__blob *b, unsigned what)
{
    sz->n++;
    if (what & MP__SNAP_KEYS)
        sz->bytes += mp__align8((size_t)b->key_len + 1);
    if (what & MP__SNAP_VALUES)
        sz->bytes += mp__align8(b->len + 1);
}

int mp__snap_alloc(mp_snapshot **out, const mp__snap_size *sz, unsigned what)
{
    size_t head = sizeof(mp_snapshot) + sz->n * sizeof(mp__snap_entry);
    mp_snapshot *s = malloc(head + sz->bytes + 1);
    if (s == NULL)
        return MP_ENOMEM;
    s->n = 0;
    s->cap = sz->n;
    s->what = what;
    s->next = (char *)s + head;
    *out = s;
    return 0;
}

static mp_item snap_copy(mp_snapshot *s, const void *data, size_t len, mp_item_type type)
{
    char *p = s->next;
    memcpy(p, data, len);
    p[len] = '\0';
    s->next = p + mp__align8(len + 1);
    return (mp_item){.data = p, .len = len, .type = type};
}

void mp__snap_add(mp_snapshot *s, const mp__blob *b)
{
    mp__snap_entry *e = &s->e[s->n++];
    memset(e, 0, sizeof(*e));
    e->seq = b->seq;
    if (s->what & MP__SNAP_KEYS)
        e->key = snap_copy(s, mp__blob_key(b), b->key_len, MP_ITEM_BYTES);
    if (s->what & MP__SNAP_VALUES)
        e->value = snap_copy(s, mp__blob_value(b), b->len, (mp_item_type)b->type);
}

void mp__snap_count_item(mp__snap_size *sz, const mp_item *key, const mp_item *value, unsigned what)
{
    sz->n++;
    if (what & MP__SNAP_KEYS)
        sz->bytes += mp__align8(key->len + 1);
    if (what & MP__SNAP_VALUES)
        sz->bytes += mp__align8(value->len + 1);
}

void mp__snap_add_item(mp_snapshot *s, const mp_item *key, const mp_item *value)
{
    mp__snap_entry *e = &s->e[s->n++];
    memset(e, 0, sizeof(*e));
    e->seq = s->n;
    if (s->what & MP__SNAP_KEYS)
        e->key = snap_copy(s, key->data, key->len, MP_ITEM_BYTES);
    if (s->what & MP__SNAP_VALUES)
        e->value = snap_copy(s, value->data, value->len, value->type);
}

static int cmp_seq(const void *a, const void *b)
{
    uint64_t x = ((const mp__snap_entry *)a)->seq, y = ((const mp__snap_entry *)b)->seq;
    return x < y ? -1 : x > y;
}

void mp__snap_sort_by_seq(mp_snapshot *s)
{
    if (s->n > 1)
        qsort(s->e, s->n, sizeof(s->e[0]), cmp_seq);
}

size_t mp_snapshot_len(const mp_snapshot *s)
{
    return s ? s->n : 0;
}

static int snap_get(const mp_snapshot *s, size_t i, mp_item *out, unsigned what)
{
    const char *fn = what == MP__SNAP_KEYS ? "mp_snapshot_key" : "mp_snapshot_value";
    if (s == NULL || out == NULL)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", fn, s == NULL ? "s" : "out");
    if (i >= s->n)
        return mp__fail(MP_ERANGE, "%s: i is %zu, past the snapshot's end (length %zu)", fn, i,
                        s->n);
    if (!(s->what & what))
        return mp__fail(MP_ENOENT, "%s: the snapshot holds no %s", fn,
                        what == MP__SNAP_KEYS ? "keys" : "values");
    *out = what == MP__SNAP_KEYS ? s->e[i].key : s->e[i].value;
    return 0;
}

int mp_snapshot_key(const mp_snapshot *s, size_t i, mp_item *out)
{
    return snap_get(s, i, out, MP__SNAP_KEYS);
}

int mp_snapshot_value(const mp_snapshot *s, size_t i, mp_item *out)
{
    return snap_get(s, i, out, MP__SNAP_VALUES);
}

void mp_snapshot_destroy(mp_snapshot *s)
{
    free(s);
}

int mp__lock_repair(mp__robust_mutex *m, void (*repair)(void *), void *arg)
{
    int rc = mp__robust_mutex_lock(m, NULL);
    if (rc == MP_EOWNERDEAD) {
        /* The previous holder died inside its critical section. Every
         * published pointer is whole (see containers/item_internal.h); only derived
         * state such as counters may lag, and repair recomputes it. */
        mp__debug("shared container: repairing after a dead lock holder");
        if (repair)
            repair(arg);
        rc = mp__robust_mutex_consistent(m);
        if (rc < 0)
            mp__robust_mutex_unlock(m);
    }
    return rc;
}
