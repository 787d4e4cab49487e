/* Shared dicts: one-key operations (see containers/dict_internal.h for the layout). */
#include <stdlib.h>
#include <string.h>

#include "containers/dict_internal.h"
#include "heap/heap.h"
#include "containers/containers_remote.h"

static size_t dict_size(uint32_t nshards)
{
    return sizeof(mp_dict) + nshards * sizeof(mp__shard_slot);
}

int mp__dict_check(const mp_dict *d)
{
    if (!mp__obj_check(d, sizeof(mp_dict), MP__MAGIC_DICT))
        return MP_EINVAL;
    return mp__heap_contains(d, dict_size(d->nshards)) ? 0 : MP_EINVAL;
}

int mp__dict_check_in(const char *fn, const mp_dict *d)
{
    return mp__dict_check(d) < 0 ? mp__obj_fail(fn, "d", d, "dict") : 0;
}

int mp_dict_create(mp_dict **out, const mp_dict_opts *opts)
{
    unsigned n = opts && opts->shards ? opts->shards : MP__DICT_DEFAULT_SHARDS;
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_create: out is NULL");
    if (n > MP__DICT_MAX_SHARDS || (n & (n - 1)) != 0)
        return mp__fail(MP_EINVAL,
                        "mp_dict_create: opts->shards is %u (a power of two from 1 to %u, or 0)", n,
                        MP__DICT_MAX_SHARDS);
    int rc = mp__heap_ensure();
    if (rc < 0)
        return rc;
    mp_dict *d;
    rc = mp__heap_alloc_for("mp_dict_create", (void **)&d, dict_size(n));
    if (rc < 0)
        return rc;
    uint32_t i = 0;
    for (; i < n; i++) {
        rc = mp__robust_mutex_init(&d->shard[i].s.lock, false);
        if (rc < 0)
            goto fail;
    }
    d->nshards = n;
    atomic_init(&d->seq, 1);
    d->head = (mp__obj_head){.magic = MP__MAGIC_DICT, .backend = MP__BACKEND_LOCAL};
    *out = d;
    return 0;
fail:
    while (i-- > 0)
        mp__robust_mutex_fini(&d->shard[i].s.lock);
    mp__heap_free(d);
    return rc;
}

static void table_free(mp__table *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->slot[i] != NULL && t->slot[i] != MP__TOMBSTONE)
            mp__blob_free(t->slot[i]);
    mp__heap_free(t);
}

void mp_dict_destroy(mp_dict *d)
{
    if (mp__obj_is_remote(d)) {
        const mp__dict_ops *ops = mp__dict_remote(d);
        if (ops)
            ops->destroy(d);
        return;
    }
    if (mp__dict_check(d) < 0 || (d->head.flags & MP__OBJ_NAMED))
        return;
    d->head.magic = 0;
    for (uint32_t i = 0; i < d->nshards; i++) {
        table_free(d->shard[i].s.table);
        mp__robust_mutex_fini(&d->shard[i].s.lock);
    }
    mp__heap_free(d);
}

/* After a holder died: the table pointer is always whole, the counters may
 * lag behind it by one operation, so recount them. */
static void shard_repair(void *arg)
{
    mp__shard *sh = arg;
    uint32_t live = 0, used = 0;
    mp__table *t = sh->table;
    for (uint32_t i = 0; t && i < t->cap; i++) {
        used += t->slot[i] != NULL;
        live += t->slot[i] != NULL && t->slot[i] != MP__TOMBSTONE;
    }
    atomic_store_explicit(&sh->count, live, memory_order_relaxed);
    sh->used = used;
}

int mp__dict_lock(mp_dict *d, uint32_t s)
{
    mp__shard *sh = &d->shard[s].s;
    return mp__lock_repair(&sh->lock, shard_repair, sh);
}

void mp__dict_unlock(mp_dict *d, uint32_t s)
{
    mp__robust_mutex_unlock(&d->shard[s].s.lock);
}

int mp__dict_lock_all(mp_dict *d)
{
    for (uint32_t i = 0; i < d->nshards; i++) {
        int rc = mp__dict_lock(d, i);
        if (rc < 0) {
            while (i-- > 0)
                mp__dict_unlock(d, i);
            return rc;
        }
    }
    return 0;
}

void mp__dict_unlock_all(mp_dict *d)
{
    for (uint32_t i = d->nshards; i-- > 0;)
        mp__dict_unlock(d, i);
}

static uint32_t shard_of(const mp_dict *d, uint64_t h)
{
    return (uint32_t)(h & (d->nshards - 1));
}

/* Index of key's slot in the locked shard, or -1; *free_at receives the
 * first reusable slot (tombstone or empty) met on the way. */
static long shard_find(const mp__shard *sh, uint64_t h, const void *key, size_t klen, long *free_at)
{
    *free_at = -1;
    const mp__table *t = sh->table;
    if (t == NULL)
        return -1;
    uint32_t mask = t->cap - 1;
    for (uint32_t i = (uint32_t)(h >> 8) & mask, n = 0; n < t->cap; i = (i + 1) & mask, n++) {
        const mp__blob *b = t->slot[i];
        if (b == NULL) {
            if (*free_at < 0)
                *free_at = i;
            return -1;
        }
        if (b == MP__TOMBSTONE) {
            if (*free_at < 0)
                *free_at = i;
        } else if (b->hash == h && b->key_len == klen && memcmp(mp__blob_key(b), key, klen) == 0) {
            return i;
        }
    }
    return -1;
}

/* Rebuilds the shard's table with room for one more entry: double when it
 * is half full of live entries, else the same size without tombstones. The
 * new table is complete before the one store that publishes it. */
static int shard_grow(mp__shard *sh)
{
    mp__table *old = sh->table;
    uint32_t live = atomic_load_explicit(&sh->count, memory_order_relaxed);
    uint32_t cap = old ? old->cap : 8;
    while ((live + 1) * 2 > cap)
        cap *= 2;
    mp__table *t;
    int rc = mp__heap_alloc((void **)&t, sizeof(*t) + cap * sizeof(t->slot[0]));
    if (rc < 0)
        return rc;
    t->cap = cap;
    for (uint32_t i = 0; old && i < old->cap; i++) {
        mp__blob *b = old->slot[i];
        if (b == NULL || b == MP__TOMBSTONE)
            continue;
        uint32_t j = (uint32_t)(b->hash >> 8) & (cap - 1);
        while (t->slot[j] != NULL)
            j = (j + 1) & (cap - 1);
        t->slot[j] = b;
    }
    sh->table = t;
    sh->used = live;
    mp__heap_free(old);
    return 0;
}

/* Inserts a new key's blob into the locked shard. */
static int shard_insert(mp_dict *d, mp__shard *sh, mp__blob *b, long free_at)
{
    /* Grow before filling an empty slot past 3/4 (tombstones count: they
     * lengthen probes too); free_at < 0 cannot happen below that load, but
     * growing is the safe answer if it ever did. */
    if (sh->table == NULL || free_at < 0 ||
        (sh->table->slot[free_at] == NULL && (sh->used + 1) * 4 > sh->table->cap * 3)) {
        int rc = shard_grow(sh);
        if (rc < 0)
            return rc;
        shard_find(sh, b->hash, mp__blob_key(b), b->key_len, &free_at);
    }
    bool was_empty = sh->table->slot[free_at] == NULL;
    b->seq = atomic_fetch_add_explicit(&d->seq, 1, memory_order_relaxed);
    sh->table->slot[free_at] = b; /* the publishing store */
    atomic_fetch_add_explicit(&sh->count, 1, memory_order_relaxed);
    sh->used += was_empty;
    return 0;
}

int mp__dict_publish(mp_dict *d, mp__blob *b, bool only_if_absent, mp__blob **old_out)
{
    uint32_t s = shard_of(d, b->hash);
    mp__shard *sh = &d->shard[s].s;
    int rc = mp__dict_lock(d, s);
    if (rc < 0)
        return rc;
    long free_at;
    long i = shard_find(sh, b->hash, mp__blob_key(b), b->key_len, &free_at);
    *old_out = NULL;
    if (i >= 0 && !only_if_absent) {
        b->seq = sh->table->slot[i]->seq; /* a key keeps its place */
        *old_out = sh->table->slot[i];
        sh->table->slot[i] = b;
    } else if (i < 0) {
        rc = shard_insert(d, sh, b, free_at);
    } else {
        rc = 1; /* present, left alone */
    }
    mp__dict_unlock(d, s);
    return rc;
}

int mp_dict_set_item(mp_dict *d, const void *key, size_t key_len, const mp_item *value)
{
    if (mp__obj_is_remote(d))
        return MP__REMOTE_CALL(mp__dict_remote(d), set_item, d, key, key_len, value);
    const char *f = "mp_dict_set_item";
    int rc = mp__dict_check_in(f, d);
    if (rc == 0)
        rc = mp__key_check_in(f, key, key_len);
    if (rc == 0)
        rc = mp__item_check_in(f, "value", value);
    if (rc < 0)
        return rc;
    mp__blob *b, *old;
    rc = mp__blob_new(&b, key, key_len, value);
    if (rc < 0)
        return rc;
    rc = mp__dict_publish(d, b, false, &old);
    if (rc < 0) {
        mp__blob_free(b);
        return rc;
    }
    mp__blob_free(old);
    return 0;
}

int mp_dict_set(mp_dict *d, const void *key, size_t key_len, const void *value, size_t value_len)
{
    return mp_dict_set_item(d, key, key_len, &MP_ITEM_BYTES(value, value_len));
}

int mp_dict_set_str(mp_dict *d, const char *key, const char *value)
{
    if (key == NULL || value == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_set_str: %s is NULL", key == NULL ? "key" : "value");
    return mp_dict_set_item(d, key, strlen(key), &MP_ITEM_STR(value));
}

int mp_dict_set_int64(mp_dict *d, const char *key, int64_t value)
{
    if (key == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_set_int64: key is NULL");
    return mp_dict_set_item(d, key, strlen(key), &MP_ITEM_INT64(value));
}

int mp_dict_set_double(mp_dict *d, const char *key, double value)
{
    if (key == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_set_double: key is NULL");
    return mp_dict_set_item(d, key, strlen(key), &MP_ITEM_DOUBLE(value));
}

/* What a reader does with the blob it found, under the shard lock. */
typedef int (*read_fn)(const mp__blob *b, void *arg);

/* Runs fn on key's blob with its shard locked; MP_ENOENT when absent. */
static int dict_read(const char *f, const mp_dict *cd, const void *key, size_t klen, read_fn fn,
                     void *arg)
{
    if (mp__obj_is_remote(cd))
        return MP__REMOTE_CALL(mp__dict_remote(cd), read, cd, key, klen, fn, arg);
    int rc = mp__dict_check_in(f, cd);
    if (rc == 0)
        rc = mp__key_check_in(f, key, klen);
    if (rc < 0)
        return rc;
    /* Reading takes the shard's lock, which lives in the shared dict: the
     * const of the public API means "does not change the entries". */
    mp_dict *d = (mp_dict *)(uintptr_t)cd;
    uint64_t h = mp__key_hash(key, klen);
    uint32_t s = shard_of(d, h);
    rc = mp__dict_lock(d, s);
    if (rc < 0)
        return rc;
    long free_at;
    long i = shard_find(&d->shard[s].s, h, key, klen, &free_at);
    rc = i < 0 ? MP_ENOENT : fn(d->shard[s].s.table->slot[i], arg);
    mp__dict_unlock(d, s);
    return rc;
}

typedef struct copy_args {
    void **out;
    void *buf;
    size_t cap;
    size_t *len;
    mp_item_type *type;
} copy_args;

static int read_copy_out(const mp__blob *b, void *arg)
{
    copy_args *a = arg;
    return mp__blob_copy_out(b, a->out, a->len, a->type);
}

static int read_copy_into(const mp__blob *b, void *arg)
{
    copy_args *a = arg;
    return mp__blob_copy_into(b, a->buf, a->cap, a->len, a->type);
}

static int read_nothing(const mp__blob *b, void *arg)
{
    (void)b;
    (void)arg;
    return 0;
}

int mp_dict_get(const mp_dict *d, const void *key, size_t key_len, void **out, size_t *out_len,
                mp_item_type *type)
{
    if (out == NULL || out_len == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_get: %s is NULL", out == NULL ? "out" : "out_len");
    copy_args a = {.out = out, .len = out_len, .type = type};
    return dict_read("mp_dict_get", d, key, key_len, read_copy_out, &a);
}

int mp_dict_get_into(const mp_dict *d, const void *key, size_t key_len, void *buf, size_t cap,
                     size_t *out_len, mp_item_type *type)
{
    if (out_len == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_get_into: out_len is NULL");
    if (buf == NULL && cap != 0)
        return mp__fail(MP_EINVAL, "mp_dict_get_into: buf is NULL with cap %zu", cap);
    copy_args a = {.buf = buf, .cap = cap, .len = out_len, .type = type};
    return dict_read("mp_dict_get_into", d, key, key_len, read_copy_into, &a);
}

int mp_dict_get_default(const mp_dict *d, const void *key, size_t key_len, const mp_item *def,
                        void **out, size_t *out_len, mp_item_type *type)
{
    const char *f = "mp_dict_get_default";
    if (out == NULL || out_len == NULL)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", f, out == NULL ? "out" : "out_len");
    int rc = mp__item_check_in(f, "def", def);
    if (rc < 0)
        return rc;
    copy_args a = {.out = out, .len = out_len, .type = type};
    rc = dict_read(f, d, key, key_len, read_copy_out, &a);
    if (rc != MP_ENOENT)
        return rc < 0 ? rc : 1;
    char *p = malloc(def->len + 1);
    if (p == NULL)
        return MP_ENOMEM;
    if (def->len)
        memcpy(p, def->data, def->len);
    p[def->len] = '\0';
    *out = p;
    *out_len = def->len;
    if (type)
        *type = def->type;
    return 0;
}

int mp_dict_contains(const mp_dict *d, const void *key, size_t key_len)
{
    int rc = dict_read("mp_dict_contains", d, key, key_len, read_nothing, NULL);
    return rc == 0 ? 1 : rc == MP_ENOENT ? 0 : rc;
}

/* Reads an 8-byte number of the given type. */
typedef struct num_args {
    void *out;
    mp_item_type type;
} num_args;

static int read_number(const mp__blob *b, void *arg)
{
    num_args *a = arg;
    if (b->type != (uint32_t)a->type)
        return MP_EPROTO;
    memcpy(a->out, mp__blob_value(b), 8);
    return 0;
}

static int read_str(const mp__blob *b, void *arg)
{
    if (b->type != MP_ITEM_STR && b->type != MP_ITEM_BYTES)
        return MP_EPROTO;
    size_t len;
    return mp__blob_copy_out(b, arg, &len, NULL);
}

/* MP_EPROTO with a detail: key's value in fn is not of the type asked. */
static int __attribute__((cold)) wrong_type(const char *fn, const char *key, const char *want)
{
    return mp__fail(MP_EPROTO, "%s: the value of key \"%.64s\" is not %s", fn, key, want);
}

int mp_dict_get_str(const mp_dict *d, const char *key, char **out)
{
    const char *f = "mp_dict_get_str";
    if (key == NULL || out == NULL)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", f, key == NULL ? "key" : "out");
    int rc = dict_read(f, d, key, strlen(key), read_str, (void **)out);
    return rc == MP_EPROTO ? wrong_type(f, key, "a str or bytes") : rc;
}

int mp_dict_get_int64(const mp_dict *d, const char *key, int64_t *out)
{
    const char *f = "mp_dict_get_int64";
    if (key == NULL || out == NULL)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", f, key == NULL ? "key" : "out");
    int rc = dict_read(f, d, key, strlen(key), read_number, &(num_args){out, MP_ITEM_INT64});
    return rc == MP_EPROTO ? wrong_type(f, key, "an int64") : rc;
}

int mp_dict_get_double(const mp_dict *d, const char *key, double *out)
{
    const char *f = "mp_dict_get_double";
    if (key == NULL || out == NULL)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", f, key == NULL ? "key" : "out");
    int rc = dict_read(f, d, key, strlen(key), read_number, &(num_args){out, MP_ITEM_DOUBLE});
    return rc == MP_EPROTO ? wrong_type(f, key, "a double") : rc;
}

int mp_dict_len(const mp_dict *cd, size_t *out)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_len: out is NULL");
    if (mp__obj_is_remote(cd))
        return MP__REMOTE_CALL(mp__dict_remote(cd), len, cd, out);
    int rc = mp__dict_check_in("mp_dict_len", cd);
    if (rc < 0)
        return rc;
    /* Each shard is locked in turn (not all at once), so that a shard whose
     * last holder died is repaired before its count is read. */
    mp_dict *d = (mp_dict *)(uintptr_t)cd;
    size_t n = 0;
    for (uint32_t i = 0; i < d->nshards; i++) {
        rc = mp__dict_lock(d, i);
        if (rc < 0)
            return rc;
        n += atomic_load_explicit(&d->shard[i].s.count, memory_order_relaxed);
        mp__dict_unlock(d, i);
    }
    *out = n;
    return 0;
}

/* Locks key's shard and finds it: the common start of the read-modify-write
 * operations. On success the shard is locked and *idx is the slot or -1. */
typedef struct locked_key {
    mp__shard *sh;
    uint32_t s;
    uint64_t h;
    long idx, free_at;
} locked_key;

static int lock_key(const char *f, mp_dict *d, const void *key, size_t klen, locked_key *lk)
{
    int rc = mp__dict_check_in(f, d);
    if (rc == 0)
        rc = mp__key_check_in(f, key, klen);
    if (rc < 0)
        return rc;
    lk->h = mp__key_hash(key, klen);
    lk->s = shard_of(d, lk->h);
    lk->sh = &d->shard[lk->s].s;
    rc = mp__dict_lock(d, lk->s);
    if (rc < 0)
        return rc;
    lk->idx = shard_find(lk->sh, lk->h, key, klen, &lk->free_at);
    return 0;
}

/* Unpublishes the locked slot: one store of a tombstone. */
static mp__blob *shard_remove(mp__shard *sh, long idx)
{
    mp__blob *old = sh->table->slot[idx];
    sh->table->slot[idx] = MP__TOMBSTONE;
    atomic_fetch_sub_explicit(&sh->count, 1, memory_order_relaxed);
    return old;
}

int mp_dict_delete(mp_dict *d, const void *key, size_t key_len)
{
    if (mp__obj_is_remote(d))
        return MP__REMOTE_CALL(mp__dict_remote(d), delete, d, key, key_len);
    locked_key lk;
    int rc = lock_key("mp_dict_delete", d, key, key_len, &lk);
    if (rc < 0)
        return rc;
    mp__blob *old = lk.idx >= 0 ? shard_remove(lk.sh, lk.idx) : NULL;
    mp__dict_unlock(d, lk.s);
    mp__blob_free(old);
    return old ? 0 : MP_ENOENT;
}

int mp_dict_pop(mp_dict *d, const void *key, size_t key_len, void **out, size_t *out_len,
                mp_item_type *type)
{
    if (out == NULL || out_len == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_pop: %s is NULL", out == NULL ? "out" : "out_len");
    if (mp__obj_is_remote(d))
        return MP__REMOTE_CALL(mp__dict_remote(d), pop, d, key, key_len, out, out_len, type);
    locked_key lk;
    int rc = lock_key("mp_dict_pop", d, key, key_len, &lk);
    if (rc < 0)
        return rc;
    mp__blob *old = NULL;
    if (lk.idx < 0)
        rc = MP_ENOENT;
    else
        rc = mp__blob_copy_out(lk.sh->table->slot[lk.idx], out, out_len, type);
    if (rc == 0)
        old = shard_remove(lk.sh, lk.idx);
    mp__dict_unlock(d, lk.s);
    mp__blob_free(old);
    return rc;
}

int mp_dict_setdefault(mp_dict *d, const void *key, size_t key_len, const mp_item *def, void **out,
                       size_t *out_len, mp_item_type *type)
{
    const char *f = "mp_dict_setdefault";
    if (out != NULL && out_len == NULL)
        return mp__fail(MP_EINVAL, "%s: out_len is NULL with out set", f);
    if (mp__obj_is_remote(d))
        return MP__REMOTE_CALL(mp__dict_remote(d), setdefault, d, key, key_len, def, out, out_len,
                               type);
    int rc = mp__dict_check_in(f, d);
    if (rc == 0)
        rc = mp__key_check_in(f, key, key_len);
    if (rc == 0)
        rc = mp__item_check_in(f, "def", def);
    if (rc < 0)
        return rc;
    mp__blob *b;
    rc = mp__blob_new(&b, key, key_len, def);
    if (rc < 0)
        return rc;
    locked_key lk;
    rc = lock_key(f, d, key, key_len, &lk);
    if (rc < 0)
        goto out;
    const mp__blob *cur = lk.idx >= 0 ? lk.sh->table->slot[lk.idx] : b;
    if (out)
        rc = mp__blob_copy_out(cur, out, out_len, type);
    if (rc == 0 && lk.idx < 0) {
        rc = shard_insert(d, lk.sh, b, lk.free_at);
        if (rc == 0) {
            b = NULL;
            rc = 1;
        } else if (out) {
            free(*out);
        }
    }
    mp__dict_unlock(d, lk.s);
out:
    mp__blob_free(b);
    return rc;
}

/* Applies fn's decision to the locked key. *old_out: the blob to free. */
static int apply_update(mp_dict *d, locked_key *lk, const void *key, size_t klen, int what,
                        const mp_item *v, mp__blob **old_out)
{
    if (what == MP_DICT_KEEP)
        return what;
    if (what == MP_DICT_DELETE) {
        if (lk->idx >= 0)
            *old_out = shard_remove(lk->sh, lk->idx);
        return what;
    }
    if (what != MP_DICT_STORE)
        return mp__fail(MP_EINVAL,
                        "mp_dict_update_with: fn returned %d (MP_DICT_KEEP, MP_DICT_STORE, "
                        "MP_DICT_DELETE or a negative error)",
                        what);
    int rc = mp__item_check_in("mp_dict_update_with", "u->new_value", v);
    mp__blob *b = NULL;
    if (rc == 0)
        rc = mp__blob_new(&b, key, klen, v);
    if (rc < 0)
        return rc;
    if (lk->idx >= 0) {
        *old_out = lk->sh->table->slot[lk->idx];
        b->seq = (*old_out)->seq;
        lk->sh->table->slot[lk->idx] = b;
        return what;
    }
    rc = shard_insert(d, lk->sh, b, lk->free_at);
    if (rc < 0) {
        mp__blob_free(b);
        return rc;
    }
    return what;
}

int mp_dict_update_with(mp_dict *d, const void *key, size_t key_len, mp_dict_update_fn fn,
                        void *user)
{
    if (fn == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_update_with: fn is NULL");
    if (mp__obj_is_remote(d))
        return MP__REMOTE_CALL(mp__dict_remote(d), update_with, d, key, key_len, fn, user);
    locked_key lk;
    int rc = lock_key("mp_dict_update_with", d, key, key_len, &lk);
    if (rc < 0)
        return rc;
    mp_dict_change u = {.found = lk.idx >= 0};
    if (u.found) {
        const mp__blob *cur = lk.sh->table->slot[lk.idx];
        u.old = mp__blob_value(cur);
        u.old_len = cur->len;
        u.old_type = (mp_item_type)cur->type;
    }
    mp__blob *old = NULL;
    rc = fn(&u, user);
    if (rc >= 0)
        rc = apply_update(d, &lk, key, key_len, rc, &u.new_value, &old);
    mp__dict_unlock(d, lk.s);
    mp__blob_free(old);
    return rc;
}

/* The slot of the newest entry (highest insertion number) of a dict whose
 * shards are all locked, or false when it is empty. */
static bool newest_slot(mp_dict *d, uint32_t *shard, uint32_t *slot)
{
    uint64_t best = 0;
    bool found = false;
    for (uint32_t s = 0; s < d->nshards; s++) {
        const mp__table *t = d->shard[s].s.table;
        for (uint32_t i = 0; t && i < t->cap; i++) {
            const mp__blob *b = t->slot[i];
            if (b != NULL && b != MP__TOMBSTONE && (!found || b->seq > best)) {
                best = b->seq;
                *shard = s;
                *slot = i;
                found = true;
            }
        }
    }
    return found;
}

/* Copies a blob's key and value out: two malloc'd, NUL-terminated copies. */
static int copy_pair(const mp__blob *b, void **key, size_t *key_len, void **value,
                     size_t *value_len, mp_item_type *type)
{
    char *k = malloc((size_t)b->key_len + 1);
    if (k == NULL)
        return MP_ENOMEM;
    int rc = mp__blob_copy_out(b, value, value_len, type);
    if (rc < 0) {
        free(k);
        return rc;
    }
    memcpy(k, mp__blob_key(b), (size_t)b->key_len + 1);
    *key = k;
    *key_len = b->key_len;
    return 0;
}

int mp_dict_popitem(mp_dict *d, void **key, size_t *key_len, void **value, size_t *value_len,
                    mp_item_type *type)
{
    if (key == NULL || key_len == NULL || value == NULL || value_len == NULL)
        return mp__fail(MP_EINVAL, "mp_dict_popitem: %s is NULL",
                        key == NULL       ? "key"
                        : key_len == NULL ? "key_len"
                        : value == NULL   ? "value"
                                          : "value_len");
    if (mp__obj_is_remote(d))
        return MP__REMOTE_CALL(mp__dict_remote(d), popitem, d, key, key_len, value, value_len,
                               type);
    int rc = mp__dict_check_in("mp_dict_popitem", d);
    if (rc == 0)
        rc = mp__dict_lock_all(d);
    if (rc < 0)
        return rc;
    uint32_t s = 0, i = 0;
    mp__blob *old = NULL;
    if (!newest_slot(d, &s, &i))
        rc = MP_EEMPTY;
    else
        rc = copy_pair(d->shard[s].s.table->slot[i], key, key_len, value, value_len, type);
    if (rc == 0)
        old = shard_remove(&d->shard[s].s, (long)i);
    mp__dict_unlock_all(d);
    mp__blob_free(old);
    return rc;
}
