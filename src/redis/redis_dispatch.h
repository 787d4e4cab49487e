/* The Redis implementations the public functions dispatch to
 * (MP__REDIS_DISPATCH in base/internal.h). Prototypes only, free of hiredis
 * types, so that the local types (dict, list, queue, the synchronisation
 * primitives, value) include it in every build; the definitions exist when
 * the library is built with hiredis. Not installed. */
#ifndef MULTIPROC_REDIS_DISPATCH_H
#define MULTIPROC_REDIS_DISPATCH_H

#include "containers/item_internal.h"

/* dict (redis/redis_dict.c): the same contracts as the public functions. */
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
/* One script on the server: never fails for contention. */
int mp__rdict_add_int64(mp_dict *d, const char *key, int64_t delta, int64_t *result);
int mp__rdict_snapshot(const mp_dict *d, unsigned what, mp_snapshot **out);
int mp__rdict_clear(mp_dict *d);

/* list (redis/redis_list.c) */
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

/* queue (redis/redis_queue.c): an mp_queue pointer whose head says Redis is an
 * mp__rqueue. Contracts in redis/redis_internal.h; the public functions without
 * a Redis meaning return MP_ENOSYS (multiproc/manager.h lists them). */
typedef struct mp__rqueue mp__rqueue;
void mp__rqueue_close(mp__rqueue *q);
int mp__rqueue_put(mp__rqueue *q, const void *data, size_t len, double timeout);
int mp__rqueue_get(mp__rqueue *q, void **data, size_t *len, double timeout);
int mp__rqueue_qsize(mp__rqueue *q, size_t *out);
/* (redis/redis_objects.c) */
int mp__rqueue_get_into(mp__rqueue *q, void *buf, size_t cap, size_t *len, double timeout);
int mp__rqueue_put_many(mp__rqueue *q, const mp_queue_msg *msgs, size_t n, double timeout);
int mp__rqueue_empty(mp__rqueue *q);
int mp__rqueue_full(mp__rqueue *q);

/* lock (redis/redis_sync.c): an mp_lock whose head says Redis is an mp__rlock. */
typedef struct mp__rlock mp__rlock;
void mp__rlock_close(mp__rlock *l);
int mp__rlock_acquire(mp__rlock *l, double timeout);
int mp__rlock_release(mp__rlock *l);
/* 0 when this process holds it through this handle (nothing to mark: the
 * server keeps no "inconsistent" state), else MP_EPERM. */
int mp__rlock_consistent(mp__rlock *l);
/* Levels held by this process through this handle (an rlock), or 0. */
int mp__rlock_count(mp__rlock *l);

/* sem (redis/redis_sem.c): an mp_sem whose head says Redis is an mp__rsem. */
typedef struct mp__rsem mp__rsem;
void mp__rsem_close(mp__rsem *s);
int mp__rsem_acquire(mp__rsem *s, double timeout);
int mp__rsem_release(mp__rsem *s);
int mp__rsem_get_value(mp__rsem *s);

/* event and value (redis/redis_sync.c, redis/redis_objects.c): handles are mp__robj. */
typedef struct mp__robj mp__robj;
void mp__robj_free(mp__robj *o);
int mp__revent_set(mp__robj *e);
int mp__revent_clear(mp__robj *e);
int mp__revent_is_set(mp__robj *e);
int mp__revent_wait(mp__robj *e, double timeout);

/* A value handle's typecode (0 for an invalid handle). */
char mp__rvalue_typecode(const mp_value *v);
/* The stored number as text, NUL-terminated ("0" when absent), or
 * MP_EBADMSG (too long for cap, embedded NUL). */
int mp__rvalue_get_text(mp_value *v, char *buf, size_t cap);
int mp__rvalue_set_text(mp_value *v, const char *text);
/* Atomic add of an integer on the server; the result must lie within
 * [min, max] (decimal texts), else nothing changes and MP_ERANGE. */
int mp__rvalue_add_range(mp_value *v, int64_t delta, const char *min, const char *max,
                         int64_t *result);
int mp__rvalue_add_float(mp_value *v, double delta, double *result);
void mp__rvalue_destroy(mp_value *v);

/* array (redis/redis_objects.c): the same over a Redis list of numbers. */
char mp__rarray_typecode(const mp_array *a);
size_t mp__rarray_len(const mp_array *a);
int mp__rarray_get_text(mp_array *a, size_t i, char *buf, size_t cap);
int mp__rarray_set_text(mp_array *a, size_t i, const char *text);
void mp__rarray_destroy(mp_array *a);

/* (sync/value.c) One item of a typecode as the text a Redis value holds:
 * decimal integers, %.17g for floats. Returns 0 or MP_EINVAL. */
#define MP__VALUE_TEXT_MAX 40
int mp__value_item_text(char typecode, const void *item, char *buf, size_t cap);

#endif /* MULTIPROC_REDIS_DISPATCH_H */
