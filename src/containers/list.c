/* Shared lists. Items are immutable blobs (containers/item_internal.h) referenced from
 * an index array that carries its own length: an append writes the new
 * item's slot and then the length (one store publishes it); every other
 * change that moves items builds a new array and publishes it with one
 * pointer store. A dead writer therefore never leaves a torn list, and
 * there is nothing to repair after EOWNERDEAD. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "containers/item_internal.h"
#include "containers/containers_remote.h"

typedef struct mp__larr {
    size_t cap;
    size_t len;
    mp__blob *item[];
} mp__larr;

struct mp_list {
    mp__obj_head head;
    mp__robust_mutex lock;
    mp__larr *arr; /* NULL while empty */
};

static int list_check(const char *fn, const mp_list *l)
{
    return mp__obj_check(l, sizeof(*l), MP__MAGIC_LIST) ? 0 : mp__obj_fail(fn, "l", l, "list");
}

static int list_lock(const mp_list *l)
{
    return mp__lock_repair(&((mp_list *)(uintptr_t)l)->lock, NULL, NULL);
}

static void list_unlock(const mp_list *l)
{
    mp__robust_mutex_unlock(&((mp_list *)(uintptr_t)l)->lock);
}

static size_t list_len(const mp_list *l)
{
    return l->arr ? l->arr->len : 0;
}

int mp_list_create(mp_list **out, const mp_list_opts *opts)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_list_create: out is NULL");
    if (opts && opts->reserved != 0)
        return mp__fail(MP_EINVAL, "mp_list_create: opts->reserved is %d (must be 0)",
                        opts->reserved);
    int rc = mp__heap_ensure();
    mp_list *l = NULL;
    if (rc == 0)
        rc = mp__heap_alloc_for("mp_list_create", (void **)&l, sizeof(*l));
    if (rc < 0)
        return rc;
    rc = mp__robust_mutex_init(&l->lock, false);
    if (rc < 0) {
        mp__heap_free(l);
        return rc;
    }
    l->head = (mp__obj_head){.magic = MP__MAGIC_LIST, .backend = MP__BACKEND_LOCAL};
    *out = l;
    return 0;
}

static void arr_free(mp__larr *a, bool items)
{
    for (size_t i = 0; a && items && i < a->len; i++)
        mp__blob_free(a->item[i]);
    mp__heap_free(a);
}

void mp_list_destroy(mp_list *l)
{
    if (mp__obj_is_remote(l)) {
        const mp__list_ops *ops = mp__list_remote(l);
        if (ops)
            ops->destroy(l);
        return;
    }
    if (!mp__obj_check(l, sizeof(*l), MP__MAGIC_LIST) || (l->head.flags & MP__OBJ_NAMED))
        return;
    l->head.magic = 0;
    arr_free(l->arr, true);
    mp__robust_mutex_fini(&l->lock);
    mp__heap_free(l);
}

/* A new index array with room for cap items, holding a's items [0, keep). */
static int arr_new(mp__larr **out, size_t cap, const mp__larr *a, size_t keep)
{
    if (cap < 8)
        cap = 8;
    if (cap > (SIZE_MAX - sizeof(mp__larr)) / sizeof(mp__blob *))
        return MP_ENOMEM;
    mp__larr *n;
    int rc = mp__heap_alloc((void **)&n, sizeof(*n) + cap * sizeof(n->item[0]));
    if (rc < 0)
        return rc;
    n->cap = cap;
    if (keep)
        memcpy(n->item, a->item, keep * sizeof(a->item[0]));
    n->len = keep;
    *out = n;
    return 0;
}

/* Python's index rule: negative counts from the end. MP_ERANGE, with a
 * detail for fn, when index is outside the list's len items. */
static int norm_index(const char *fn, long index, size_t len, size_t *out)
{
    long given = index;
    *out = 0;
    if (index < 0)
        index += (long)len;
    if (index < 0 || (size_t)index >= len)
        return mp__fail(MP_ERANGE, "%s: index %ld is out of range for a list of %zu items", fn,
                        given, len);
    *out = (size_t)index;
    return 0;
}

/* Builds the blobs of n checked items (outside the lock); a refused item
 * is named after arg, fn's argument (arg[i] when many). */
static int blobs_new(const char *fn, const char *arg, bool many, mp__blob ***out,
                     const mp_item *items, size_t n)
{
    if (n > SIZE_MAX / sizeof(mp__blob *))
        return MP_ENOMEM;
    mp__blob **b = calloc(n ? n : 1, sizeof(*b));
    if (b == NULL)
        return MP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = mp__item_check(&items[i]);
        if (rc < 0) {
            char name[32];
            snprintf(name, sizeof name, "%s[%zu]", arg, i);
            rc = mp__item_check_in(fn, many ? name : arg, &items[i]);
        }
        if (rc == 0)
            rc = mp__blob_new(&b[i], NULL, 0, &items[i]);
        if (rc < 0) {
            while (i-- > 0)
                mp__blob_free(b[i]);
            free(b);
            return rc;
        }
    }
    *out = b;
    return 0;
}

/* Appends n blobs to the locked list; *old_arr: an array to free after. */
static int append_locked(mp_list *l, mp__blob **b, size_t n, mp__larr **old_arr)
{
    mp__larr *a = l->arr;
    size_t len = list_len(l);
    if (a && a->cap - len >= n) {
        memcpy(&a->item[len], b, n * sizeof(b[0]));
        a->len = len + n; /* the publishing store */
        return 0;
    }
    mp__larr *na;
    int rc = arr_new(&na, 2 * (len + n), a, len);
    if (rc < 0)
        return rc;
    memcpy(&na->item[len], b, n * sizeof(b[0]));
    na->len = len + n;
    l->arr = na; /* the publishing store */
    *old_arr = a;
    return 0;
}

/* mp_list_extend, or mp_list_append (fn; many false: one item, v). */
static int list_extend(const char *fn, bool many, mp_list *l, const mp_item *items, size_t n)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), extend, l, items, n);
    int rc = list_check(fn, l);
    if (rc == 0 && items == NULL && n != 0)
        rc = mp__fail(MP_EINVAL, "%s: items is NULL with n %zu", fn, n);
    if (rc < 0 || n == 0)
        return rc;
    mp__blob **b;
    rc = blobs_new(fn, many ? "items" : "v", many, &b, items, n);
    if (rc < 0)
        return rc;
    mp__larr *old = NULL;
    rc = list_lock(l);
    if (rc == 0) {
        rc = append_locked(l, b, n, &old);
        list_unlock(l);
    }
    for (size_t i = 0; rc < 0 && i < n; i++)
        mp__blob_free(b[i]);
    free(b);
    arr_free(old, false);
    return rc;
}

int mp_list_extend(mp_list *l, const mp_item *items, size_t n)
{
    return list_extend("mp_list_extend", true, l, items, n);
}

int mp_list_append(mp_list *l, const mp_item *v)
{
    if (v == NULL)
        return mp__fail(MP_EINVAL, "mp_list_append: v is NULL");
    return list_extend("mp_list_append", false, l, v, 1);
}

int mp_list_insert(mp_list *l, long index, const mp_item *v)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), insert, l, index, v);
    int rc = list_check("mp_list_insert", l);
    if (rc < 0)
        return rc;
    if (v == NULL)
        return mp__fail(MP_EINVAL, "mp_list_insert: v is NULL");
    mp__blob **b;
    rc = blobs_new("mp_list_insert", "v", false, &b, v, 1);
    if (rc < 0)
        return rc;
    mp__larr *old = NULL, *na = NULL;
    rc = list_lock(l);
    if (rc < 0)
        goto out;
    size_t len = list_len(l), at;
    if (index < 0)
        index += (long)len;
    at = index < 0 ? 0 : (size_t)index > len ? len : (size_t)index;
    rc = arr_new(&na, l->arr && l->arr->cap > len ? l->arr->cap : 2 * (len + 1), l->arr, at);
    if (rc == 0) {
        na->item[at] = b[0];
        if (len > at)
            memcpy(&na->item[at + 1], &l->arr->item[at], (len - at) * sizeof(na->item[0]));
        na->len = len + 1;
        old = l->arr;
        l->arr = na; /* the publishing store */
    }
    list_unlock(l);
out:
    if (rc < 0)
        mp__blob_free(b[0]);
    free(b);
    arr_free(old, false);
    return rc;
}

int mp_list_set(mp_list *l, long index, const mp_item *v)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), set, l, index, v);
    int rc = list_check("mp_list_set", l);
    if (rc < 0)
        return rc;
    if (v == NULL)
        return mp__fail(MP_EINVAL, "mp_list_set: v is NULL");
    mp__blob **b;
    rc = blobs_new("mp_list_set", "v", false, &b, v, 1);
    if (rc < 0)
        return rc;
    mp__blob *old = NULL;
    rc = list_lock(l);
    if (rc == 0) {
        size_t i;
        rc = norm_index("mp_list_set", index, list_len(l), &i);
        if (rc == 0) {
            old = l->arr->item[i];
            l->arr->item[i] = b[0]; /* the publishing store */
        }
        list_unlock(l);
    }
    mp__blob_free(rc < 0 ? b[0] : old);
    free(b);
    return rc;
}

/* Removes item i of the locked list: the last one by shortening the array
 * (one store), any other by publishing a copy without it. */
static int remove_locked(mp_list *l, size_t i, mp__blob **gone, mp__larr **old_arr)
{
    mp__larr *a = l->arr;
    *gone = a->item[i];
    if (i + 1 == a->len) {
        a->len = i; /* the publishing store */
        return 0;
    }
    mp__larr *na;
    int rc = arr_new(&na, a->cap, a, i);
    if (rc < 0)
        return rc;
    memcpy(&na->item[i], &a->item[i + 1], (a->len - i - 1) * sizeof(a->item[0]));
    na->len = a->len - 1;
    l->arr = na; /* the publishing store */
    *old_arr = a;
    return 0;
}

int mp_list_pop(mp_list *l, long index, void **out, size_t *out_len, mp_item_type *type)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), pop, l, index, out, out_len, type);
    int rc = list_check("mp_list_pop", l);
    if (rc == 0 && out && !out_len)
        rc = mp__fail(MP_EINVAL, "mp_list_pop: out_len is NULL with out set");
    if (rc == 0)
        rc = list_lock(l);
    if (rc < 0)
        return rc;
    size_t i;
    mp__blob *gone = NULL;
    mp__larr *old = NULL;
    rc = norm_index("mp_list_pop", index, list_len(l), &i);
    if (rc == 0 && out)
        rc = mp__blob_copy_out(l->arr->item[i], out, out_len, type);
    if (rc == 0) {
        rc = remove_locked(l, i, &gone, &old);
        if (rc < 0 && out)
            free(*out);
    }
    list_unlock(l);
    if (rc == 0)
        mp__blob_free(gone);
    arr_free(old, false);
    return rc;
}

int mp_list_remove(mp_list *l, const mp_item *v)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), remove, l, v);
    int rc = list_check("mp_list_remove", l);
    if (rc == 0)
        rc = mp__item_check_in("mp_list_remove", "v", v);
    if (rc == 0)
        rc = list_lock(l);
    if (rc < 0)
        return rc;
    mp__blob *gone = NULL;
    mp__larr *old = NULL;
    rc = MP_ENOENT;
    for (size_t i = 0; i < list_len(l); i++) {
        const mp__blob *b = l->arr->item[i];
        if (b->type == (uint32_t)v->type && b->len == v->len &&
            (v->len == 0 || memcmp(mp__blob_value(b), v->data, v->len) == 0)) {
            rc = remove_locked(l, i, &gone, &old);
            break;
        }
    }
    list_unlock(l);
    if (rc == 0)
        mp__blob_free(gone);
    arr_free(old, false);
    return rc;
}

int mp_list_clear(mp_list *l)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), clear, l);
    int rc = list_check("mp_list_clear", l);
    if (rc == 0)
        rc = list_lock(l);
    if (rc < 0)
        return rc;
    mp__larr *old = l->arr;
    l->arr = NULL; /* the publishing store */
    list_unlock(l);
    arr_free(old, true);
    return 0;
}

int mp_list_len(const mp_list *l, size_t *out)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), len, l, out);
    int rc = list_check("mp_list_len", l);
    if (rc == 0 && out == NULL)
        rc = mp__fail(MP_EINVAL, "mp_list_len: out is NULL");
    if (rc == 0)
        rc = list_lock(l);
    if (rc < 0)
        return rc;
    *out = list_len(l);
    list_unlock(l);
    return 0;
}

/* Runs fn on item index with the list locked. */
static int list_read(const char *f, const mp_list *l, long index,
                     int (*fn)(const mp__blob *, void *), void *arg)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), read, l, index, fn, arg);
    int rc = list_check(f, l);
    if (rc == 0)
        rc = list_lock(l);
    if (rc < 0)
        return rc;
    size_t i;
    rc = norm_index(f, index, list_len(l), &i);
    if (rc == 0)
        rc = fn(l->arr->item[i], arg);
    list_unlock(l);
    return rc;
}

typedef struct read_args {
    void **out;
    void *buf;
    size_t cap;
    size_t *len;
    mp_item_type *type;
    mp_item_type want;
} read_args;

static int read_out(const mp__blob *b, void *arg)
{
    read_args *a = arg;
    return mp__blob_copy_out(b, a->out, a->len, a->type);
}

static int read_into(const mp__blob *b, void *arg)
{
    read_args *a = arg;
    return mp__blob_copy_into(b, a->buf, a->cap, a->len, a->type);
}

static int read_typed(const mp__blob *b, void *arg)
{
    read_args *a = arg;
    if (a->want == MP_ITEM_STR) {
        if (b->type != MP_ITEM_STR && b->type != MP_ITEM_BYTES)
            return MP_EPROTO;
        size_t len;
        return mp__blob_copy_out(b, a->out, &len, NULL);
    }
    if (b->type != (uint32_t)a->want)
        return MP_EPROTO;
    memcpy(a->buf, mp__blob_value(b), 8);
    return 0;
}

int mp_list_get(const mp_list *l, long index, void **out, size_t *out_len, mp_item_type *type)
{
    if (out == NULL || out_len == NULL)
        return mp__fail(MP_EINVAL, "mp_list_get: %s is NULL", out == NULL ? "out" : "out_len");
    return list_read("mp_list_get", l, index, read_out,
                     &(read_args){.out = out, .len = out_len, .type = type});
}

int mp_list_get_into(const mp_list *l, long index, void *buf, size_t cap, size_t *out_len,
                     mp_item_type *type)
{
    if (out_len == NULL)
        return mp__fail(MP_EINVAL, "mp_list_get_into: out_len is NULL");
    if (buf == NULL && cap != 0)
        return mp__fail(MP_EINVAL, "mp_list_get_into: buf is NULL with cap %zu", cap);
    return list_read("mp_list_get_into", l, index, read_into,
                     &(read_args){.buf = buf, .cap = cap, .len = out_len, .type = type});
}

int mp_list_get_str(const mp_list *l, long index, char **out)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_list_get_str: out is NULL");
    int rc = list_read("mp_list_get_str", l, index, read_typed,
                       &(read_args){.out = (void **)out, .want = MP_ITEM_STR});
    return rc == MP_EPROTO ? mp__fail(rc, "mp_list_get_str: item %ld is not a str or bytes", index)
                           : rc;
}

int mp_list_get_int64(const mp_list *l, long index, int64_t *out)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_list_get_int64: out is NULL");
    int rc = list_read("mp_list_get_int64", l, index, read_typed,
                       &(read_args){.buf = out, .want = MP_ITEM_INT64});
    return rc == MP_EPROTO ? mp__fail(rc, "mp_list_get_int64: item %ld is not an int64", index)
                           : rc;
}

int mp_list_get_double(const mp_list *l, long index, double *out)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_list_get_double: out is NULL");
    int rc = list_read("mp_list_get_double", l, index, read_typed,
                       &(read_args){.buf = out, .want = MP_ITEM_DOUBLE});
    return rc == MP_EPROTO ? mp__fail(rc, "mp_list_get_double: item %ld is not a double", index)
                           : rc;
}

/* Python's slice clamping of one bound. */
static size_t clamp_bound(long i, size_t len)
{
    if (i < 0) {
        i += (long)len;
        return i < 0 ? 0 : (size_t)i;
    }
    return (size_t)i > len ? len : (size_t)i;
}

int mp_list_slice(const mp_list *l, long start, long stop, mp_snapshot **out)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), slice, l, start, stop, out);
    int rc = list_check("mp_list_slice", l);
    if (rc == 0 && out == NULL)
        rc = mp__fail(MP_EINVAL, "mp_list_slice: out is NULL");
    if (rc == 0)
        rc = list_lock(l);
    if (rc < 0)
        return rc;
    size_t len = list_len(l), a = clamp_bound(start, len), b = clamp_bound(stop, len);
    if (b < a)
        b = a;
    mp__snap_size sz = {0};
    for (size_t i = a; i < b; i++)
        mp__snap_count(&sz, l->arr->item[i], MP__SNAP_VALUES);
    mp_snapshot *s;
    rc = mp__snap_alloc(&s, &sz, MP__SNAP_VALUES);
    for (size_t i = a; rc == 0 && i < b; i++)
        mp__snap_add(s, l->arr->item[i]);
    list_unlock(l);
    if (rc == 0)
        *out = s;
    return rc;
}

/* Sorting: pairs of (item, original position), the position breaking ties
 * so that the sort is stable although qsort is not. */
typedef struct sort_pair {
    const mp__blob *b;
    size_t pos;
} sort_pair;

typedef struct sort_ctx {
    mp_list_cmp_fn cmp;
    void *user;
} sort_ctx;

static int kind_rank(mp_item_type t)
{
    return t == MP_ITEM_INT64 || t == MP_ITEM_DOUBLE ? 2 : (int)t;
}

static double as_double(const mp_item *v)
{
    if (v->type == MP_ITEM_DOUBLE) {
        double d;
        memcpy(&d, v->data, sizeof(d));
        return d;
    }
    int64_t i;
    memcpy(&i, v->data, sizeof(i));
    return (double)i;
}

int mp__item_cmp(const mp_item *x, const mp_item *y)
{
    int kx = kind_rank(x->type), ky = kind_rank(y->type);
    if (kx != ky)
        return kx < ky ? -1 : 1;
    if (x->type == MP_ITEM_INT64 && y->type == MP_ITEM_INT64) {
        int64_t a, b;
        memcpy(&a, x->data, sizeof(a));
        memcpy(&b, y->data, sizeof(b));
        return a < b ? -1 : a > b;
    }
    if (kx == 2) {
        double a = as_double(x), b = as_double(y);
        return a < b ? -1 : a > b;
    }
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->data, y->data, n) : 0;
    return c ? c : x->len < y->len ? -1 : x->len > y->len;
}

static int pair_cmp(const void *pa, const void *pb, void *arg)
{
    const sort_pair *a = pa, *b = pb;
    const sort_ctx *ctx = arg;
    mp_item x = mp__blob_item(a->b), y = mp__blob_item(b->b);
    int c = ctx->cmp ? ctx->cmp(&x, &y, ctx->user) : mp__item_cmp(&x, &y);
    if (c)
        return c;
    return a->pos < b->pos ? -1 : 1;
}

int mp_list_sort(mp_list *l, mp_list_cmp_fn cmp, void *user)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), sort, l, cmp, user);
    int rc = list_check("mp_list_sort", l);
    if (rc == 0)
        rc = list_lock(l);
    if (rc < 0)
        return rc;
    size_t len = list_len(l);
    mp__larr *na = NULL, *old = NULL;
    sort_pair *p = malloc((len ? len : 1) * sizeof(*p));
    rc = p ? 0 : MP_ENOMEM;
    if (rc == 0 && len > 1)
        rc = arr_new(&na, l->arr->cap, NULL, 0);
    if (rc == 0 && na) {
        for (size_t i = 0; i < len; i++)
            p[i] = (sort_pair){l->arr->item[i], i};
        qsort_r(p, len, sizeof(*p), pair_cmp, &(sort_ctx){cmp, user});
        for (size_t i = 0; i < len; i++)
            na->item[i] = (mp__blob *)(uintptr_t)p[i].b;
        na->len = len;
        old = l->arr;
        l->arr = na; /* the publishing store */
    }
    list_unlock(l);
    free(p);
    arr_free(old, false);
    return rc;
}

int mp_list_reverse(mp_list *l)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), reverse, l);
    int rc = list_check("mp_list_reverse", l);
    if (rc == 0)
        rc = list_lock(l);
    if (rc < 0)
        return rc;
    size_t len = list_len(l);
    mp__larr *na = NULL, *old = NULL;
    if (len > 1)
        rc = arr_new(&na, l->arr->cap, NULL, 0);
    if (rc == 0 && na) {
        for (size_t i = 0; i < len; i++)
            na->item[i] = l->arr->item[len - 1 - i];
        na->len = len;
        old = l->arr;
        l->arr = na; /* the publishing store */
    }
    list_unlock(l);
    arr_free(old, false);
    return rc;
}

/* The items of l repeated n - 1 more times, as fresh blobs (a blob belongs
 * to one slot: removing a slot frees its blob). */
static int repeat_locked(mp_list *l, size_t len, long n, mp__larr **old_arr)
{
    if ((size_t)n > SIZE_MAX / len)
        return MP_ENOMEM;
    mp__larr *na;
    int rc = arr_new(&na, len * (size_t)n, l->arr, len);
    for (size_t i = len; rc == 0 && i < len * (size_t)n; i++) {
        mp_item v = mp__blob_item(l->arr->item[i % len]);
        rc = mp__blob_new(&na->item[i], NULL, 0, &v);
        if (rc < 0) {
            while (i-- > len)
                mp__blob_free(na->item[i]);
            mp__heap_free(na);
        }
    }
    if (rc == 0) {
        na->len = len * (size_t)n;
        *old_arr = l->arr;
        l->arr = na; /* the publishing store */
    }
    return rc;
}

int mp_list_imul(mp_list *l, long n)
{
    if (mp__obj_is_remote(l))
        return MP__REMOTE_CALL(mp__list_remote(l), imul, l, n);
    if (n <= 0)
        return mp_list_clear(l); /* Python: l *= 0 (or less) empties l */
    int rc = list_check("mp_list_imul", l);
    if (rc == 0)
        rc = list_lock(l);
    if (rc < 0)
        return rc;
    size_t len = list_len(l);
    mp__larr *old = NULL;
    if (len > 0 && n > 1)
        rc = repeat_locked(l, len, n, &old);
    list_unlock(l);
    arr_free(old, false);
    return rc;
}
