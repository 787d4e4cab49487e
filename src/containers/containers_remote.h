/* The operation tables of the remote dict and list (base/internal.h,
 * "remote handles"), and what the Redis backend uses of this module.
 * Not installed.
 *
 * Each slot has the contract of the public function of the same name
 * (multiproc/dict.h, multiproc/list.h) on a remote handle, unless said
 * otherwise. An empty slot makes the public function MP_ENOSYS; destroy
 * must be filled. */
#ifndef MULTIPROC_CONTAINERS_REMOTE_H
#define MULTIPROC_CONTAINERS_REMOTE_H

#include "heap/heap_object.h"
#include "containers/item_internal.h"

/* The kinds of the tables (their first member). */
#define MP__OPS_DICT 0x6f44706du /* "mpDo" */
#define MP__OPS_LIST 0x6f4c706du /* "mpLo" */

typedef struct mp__dict_ops {
    uint32_t kind; /* MP__OPS_DICT */
    void (*destroy)(mp_dict *d);
    int (*set_item)(mp_dict *d, const void *key, size_t key_len, const mp_item *value);
    /* Runs fn on a private blob of key's value (MP_ENOENT when absent):
     * every reader (get, get_into, get_default, contains, ...). */
    int (*read)(const mp_dict *d, const void *key, size_t key_len,
                int (*fn)(const mp__blob *, void *), void *arg);
    int (*len)(const mp_dict *d, size_t *out);
    int (*delete)(mp_dict *d, const void *key, size_t key_len);
    int (*pop)(mp_dict *d, const void *key, size_t key_len, void **out, size_t *out_len,
               mp_item_type *type);
    int (*setdefault)(mp_dict *d, const void *key, size_t key_len, const mp_item *def, void **out,
                      size_t *out_len, mp_item_type *type);
    int (*update_with)(mp_dict *d, const void *key, size_t key_len, mp_dict_update_fn fn,
                       void *user);
    int (*add_int64)(mp_dict *d, const char *key, int64_t delta, int64_t *result);
    /* keys, values, items (what: MP__SNAP_*). */
    int (*snapshot)(const mp_dict *d, unsigned what, mp_snapshot **out);
    int (*clear)(mp_dict *d);
    int (*popitem)(mp_dict *d, void **key, size_t *key_len, void **value, size_t *value_len,
                   mp_item_type *type);
} mp__dict_ops;

static inline const mp__dict_ops *mp__dict_remote(const mp_dict *d)
{
    return (const mp__dict_ops *)mp__remote_ops(d, MP__OPS_DICT);
}

typedef struct mp__list_ops {
    uint32_t kind; /* MP__OPS_LIST */
    void (*destroy)(mp_list *l);
    int (*extend)(mp_list *l, const mp_item *items, size_t n);
    int (*insert)(mp_list *l, long index, const mp_item *v);
    int (*set)(mp_list *l, long index, const mp_item *v);
    /* Runs fn on a private blob of item index: every reader. */
    int (*read)(const mp_list *l, long index, int (*fn)(const mp__blob *, void *), void *arg);
    int (*pop)(mp_list *l, long index, void **out, size_t *out_len, mp_item_type *type);
    int (*remove)(mp_list *l, const mp_item *v);
    int (*len)(const mp_list *l, size_t *out);
    int (*clear)(mp_list *l);
    int (*slice)(const mp_list *l, long start, long stop, mp_snapshot **out);
    int (*sort)(mp_list *l, mp_list_cmp_fn cmp, void *user);
    int (*reverse)(mp_list *l);
    int (*imul)(mp_list *l, long n);
} mp__list_ops;

static inline const mp__list_ops *mp__list_remote(const mp_list *l)
{
    return (const mp__list_ops *)mp__remote_ops(l, MP__OPS_LIST);
}

/* A process-local namespace over d, a remote dict handle (taken over: the
 * namespace's destroy destroys it). Returns 0, MP_EINVAL or MP_ENOMEM
 * (containers/namespace.c). */
int mp__namespace_wrap(mp_namespace **out, mp_dict *d);

#endif /* MULTIPROC_CONTAINERS_REMOTE_H */
