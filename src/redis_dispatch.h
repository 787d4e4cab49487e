/* The Redis implementations the public container functions dispatch to
 * (MP__REDIS_DISPATCH in item_internal.h). Prototypes only, free of
 * hiredis types, so that dict.c and list.c include it in every build; the
 * definitions exist when the library is built with hiredis. Not installed. */
#ifndef MULTIPROC_REDIS_DISPATCH_H
#define MULTIPROC_REDIS_DISPATCH_H

#include "item_internal.h"

/* dict (redis_dict.c): the same contracts as the public functions. */
void mp__rdict_destroy(mp_dict *d);
int mp__rdict_set_item(mp_dict *d, const void *key, size_t key_len, const mp_item *value);
/* Runs fn on a private blob of key's value (MP_ENOENT when absent). */
int mp__rdict_read(const mp_dict *d, const void *key, size_t key_len,
                   int (*fn)(const mp__blob *, void *), void *arg);
int mp__rdict_len(const mp_dict *d, size_t *out);
int mp__rdict_delete(mp_dict *d, const void *key, size_t key_len);
int mp__rdict_pop(mp_dict *d, const void *key, size_t key_len, void **out, size_t *out_len,
                  mp_item_type *type);
int mp__rdict_setdefault(mp_dict *d, const void *key, size_t key_len, const mp_item *def,
                         void **out, size_t *out_len, mp_item_type *type);
int mp__rdict_update_with(mp_dict *d, const void *key, size_t key_len, mp_dict_update_fn fn,
                          void *user);
int mp__rdict_snapshot(const mp_dict *d, unsigned what, mp_snapshot **out);
int mp__rdict_clear(mp_dict *d);

/* list (redis_list.c) */
void mp__rlist_destroy(mp_list *l);
int mp__rlist_extend(mp_list *l, const mp_item *items, size_t n);
int mp__rlist_insert(mp_list *l, long index, const mp_item *v);
int mp__rlist_set(mp_list *l, long index, const mp_item *v);
int mp__rlist_read(const mp_list *l, long index, int (*fn)(const mp__blob *, void *), void *arg);
int mp__rlist_pop(mp_list *l, long index, void **out, size_t *out_len, mp_item_type *type);
int mp__rlist_remove(mp_list *l, const mp_item *v);
int mp__rlist_len(const mp_list *l, size_t *out);
int mp__rlist_clear(mp_list *l);
int mp__rlist_slice(const mp_list *l, long start, long stop, mp_snapshot **out);
int mp__rlist_sort(mp_list *l, mp_list_cmp_fn cmp, void *user);

#endif /* MULTIPROC_REDIS_DISPATCH_H */
