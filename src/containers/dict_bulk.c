/* Shared dicts: whole-dict operations (snapshots, clear, update, repr) and
 * the atomic counter helper. */
#include <stdlib.h>
#include <string.h>

#include "containers/dict_internal.h"
#include "heap/heap.h"
#include "containers/containers_remote.h"

/* Visits every live blob of a dict whose shards are all locked. */
static void for_each_blob(const mp_dict *d, void (*fn)(const mp__blob *, void *), void *arg)
{
    for (uint32_t s = 0; s < d->nshards; s++) {
        const mp__table *t = d->shard[s].s.table;
        for (uint32_t i = 0; t && i < t->cap; i++)
            if (t->slot[i] != NULL && t->slot[i] != MP__TOMBSTONE)
                fn(t->slot[i], arg);
    }
}

typedef struct count_args {
    mp__snap_size sz;
    unsigned what;
} count_args;

static void count_blob(const mp__blob *b, void *arg)
{
    count_args *a = arg;
    mp__snap_count(&a->sz, b, a->what);
}

static void add_blob(const mp__blob *b, void *arg)
{
    mp__snap_add(arg, b);
}

/* The snapshot of mp_dict_keys, mp_dict_values or mp_dict_items (fn). */
static int dict_snapshot(const char *fn, const mp_dict *cd, unsigned what, mp_snapshot **out)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "%s: out is NULL", fn);
    if (mp__obj_is_remote(cd))
        return MP__REMOTE_CALL(mp__dict_remote(cd), snapshot, cd, what, out);
    int rc = mp__dict_check_in(fn, cd);
    if (rc < 0)
        return rc;
    mp_dict *d = (mp_dict *)(uintptr_t)cd; /* locks live in the shared dict */
    rc = mp__dict_lock_all(d);
    if (rc < 0)
        return rc;
    count_args a = {.what = what};
    for_each_blob(d, count_blob, &a);
    mp_snapshot *s;
    rc = mp__snap_alloc(&s, &a.sz, what);
    if (rc == 0)
        for_each_blob(d, add_blob, s);
    mp__dict_unlock_all(d);
    if (rc < 0)
        return rc;
    mp__snap_sort_by_seq(s);
    *out = s;
    return 0;
}

int mp_dict_keys(const mp_dict *d, mp_snapshot **out)
{
    return dict_snapshot("mp_dict_keys", d, MP__SNAP_KEYS, out);
}

int mp_dict_values(const mp_dict *d, mp_snapshot **out)
{
    return dict_snapshot("mp_dict_values", d, MP__SNAP_VALUES, out);
}

int mp_dict_items(const mp_dict *d, mp_snapshot **out)
{
    return dict_snapshot("mp_dict_items", d, MP__SNAP_KEYS | MP__SNAP_VALUES, out);
}

int mp_dict_clear(mp_dict *d)
{
    if (mp__obj_is_remote(d))
        return MP__REMOTE_CALL(mp__dict_remote(d), clear, d);
    int rc = mp__dict_check_in("mp_dict_clear", d);
    if (rc < 0)
        return rc;
    mp__table *old[MP__DICT_MAX_SHARDS];
    rc = mp__dict_lock_all(d);
    if (rc < 0)
        return rc;
    for (uint32_t s = 0; s < d->nshards; s++) {
        mp__shard *sh = &d->shard[s].s;
        old[s] = sh->table;
        sh->table = NULL; /* the publishing store; the counters follow */
        atomic_store_explicit(&sh->count, 0, memory_order_relaxed);
        sh->used = 0;
    }
    mp__dict_unlock_all(d);
    /* The old entries are unreachable now: free them without the locks. */
    for (uint32_t s = 0; s < d->nshards; s++) {
        mp__table *t = old[s];
        for (uint32_t i = 0; t && i < t->cap; i++)
            if (t->slot[i] != NULL && t->slot[i] != MP__TOMBSTONE)
                mp__blob_free(t->slot[i]);
        mp__heap_free(t);
    }
    return 0;
}

int mp_dict_update(mp_dict *dst, const mp_dict *src)
{
    /* Through the public calls, so that src and dst may be of either
     * backend. */
    int rc = mp__obj_is_remote(dst) ? 0 : mp__dict_check(dst);
    if (rc < 0)
        return mp__obj_fail("mp_dict_update", "dst", dst, "dict");
    mp_snapshot *s = NULL;
    rc = mp_dict_items(src, &s);
    for (size_t i = 0; rc == 0 && src != dst && i < mp_snapshot_len(s); i++) {
        mp_item k, v;
        mp_snapshot_key(s, i, &k);
        mp_snapshot_value(s, i, &v);
        rc = mp_dict_set_item(dst, k.data, k.len, &v);
    }
    mp_snapshot_destroy(s);
    return rc;
}

int mp_dict_repr(const mp_dict *d, char **out)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_repr: out is NULL");
    mp_snapshot *s;
    int rc = mp_dict_items(d, &s);
    if (rc < 0)
        return rc;
    mp__strbuf sb = {0};
    mp__sb_adds(&sb, "{");
    for (size_t i = 0; i < mp_snapshot_len(s); i++) {
        mp_item k, v;
        mp_snapshot_key(s, i, &k);
        mp_snapshot_value(s, i, &v);
        if (i)
            mp__sb_adds(&sb, ", ");
        mp__sb_repr_str(&sb, k.data, k.len);
        mp__sb_adds(&sb, ": ");
        mp__sb_repr(&sb, &v);
    }
    mp__sb_adds(&sb, "}");
    mp_snapshot_destroy(s);
    return mp__sb_finish(&sb, out);
}

typedef struct add_args {
    int64_t delta;
    int64_t result;
} add_args;

static int add_fn(mp_dict_change *u, void *user)
{
    add_args *a = user;
    int64_t cur = 0;
    if (u->found) {
        if (u->old_type != MP_ITEM_INT64 || u->old_len != sizeof(cur))
            return MP_EPROTO;
        memcpy(&cur, u->old, sizeof(cur));
    }
    if (__builtin_add_overflow(cur, a->delta, &a->result))
        return MP_EOVERFLOW;
    u->new_value = (mp_item){.data = &a->result, .len = sizeof(a->result), .type = MP_ITEM_INT64};
    return MP_DICT_STORE;
}

int mp_dict_add_int64(mp_dict *d, const char *key, int64_t delta, int64_t *result)
{
    if (mp__obj_is_remote(d))
        return MP__REMOTE_CALL(mp__dict_remote(d), add_int64, d, key, delta, result);
    const char *f = "mp_dict_add_int64";
    if (key == NULL)
        return mp__fail(MP_EINVAL, "%s: key is NULL", f);
    add_args a = {.delta = delta};
    int rc = mp_dict_update_with(d, key, strlen(key), add_fn, &a);
    if (rc == MP_EPROTO)
        return mp__fail(rc, "%s: the value of key \"%.64s\" is not an int64", f, key);
    if (rc == MP_EOVERFLOW)
        return mp__fail(rc, "%s: the value of key \"%.64s\" plus delta %lld overflows an int64", f,
                        key, (long long)delta);
    if (rc < 0)
        return rc;
    if (result)
        *result = a.result;
    return 0;
}
