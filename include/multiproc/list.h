/* multiproc — shared lists (Python's Manager().list()).
 *
 *     mp_list *l;
 *     mp_list_create(&l, NULL);
 *     mp_list_append(l, &MP_ITEM_INT64(3));     // in any process of the family
 *     mp_list_append(l, &MP_ITEM_STR("three"));
 *     int64_t x;
 *     mp_list_get_int64(l, 0, &x);               // 3
 *     mp_list_destroy(l);
 *
 * Items are typed byte strings (multiproc/item.h), each up to MP_VALUE_MAX
 * bytes. Indices are like Python's: negative ones count from the end (-1 is
 * the last item). The list lives in the family's shared heap: the pointer
 * is valid in every process of the family, including processes started
 * before it was created.
 *
 * Locking and robustness: one robust process-shared mutex; every operation
 * is atomic. Items are immutable once stored and every change is published
 * by one pointer store (appends write the new length; inserts, removals and
 * sorts build a new index array and publish it), so a process killed at any
 * moment leaves the list as it was before or after its operation, never
 * torn, and never locked. Memory of removed items goes back to the heap.
 * Reads copy (malloc) under the lock; no call blocks for long, so none
 * takes a timeout.
 *
 * Safety: every function is safe from any thread of any process of the
 * family, and across fork. mp_list_destroy must run once, when nobody else
 * uses the list.
 *
 * Redis: a list obtained from a Redis manager (multiproc/manager.h) takes
 * the same calls, each atomic on the server (mp_list_sort reads, sorts in
 * the caller and writes back, retried if another client changed the list
 * meanwhile); every call may also return the connection errors listed in
 * manager.h.
 *
 * Common errors: MP_EINVAL (NULL or foreign list, NULL out pointer, bad
 * item), MP_ERANGE (index out of range: Python's IndexError), MP_EMSGSIZE
 * (item longer than MP_VALUE_MAX), MP_ENOMEM (shared heap full, or private
 * copy). A failed call changes nothing.
 */
#ifndef MULTIPROC_LIST_H
#define MULTIPROC_LIST_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "multiproc/error.h"
#include "multiproc/item.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_list mp_list;

/* No options yet; pass NULL. Reserved for growth hints. */
typedef struct mp_list_opts {
    int reserved; /* must be 0 */
} mp_list_opts;

/* mp_list_create — an empty list in the shared heap. out: owned by the
 * caller (mp_list_destroy). Errors: MP_EINVAL (reserved field set),
 * MP_ENOMEM, MP_ENOHEAPADDR. */
MP_API int mp_list_create(mp_list **out, const mp_list_opts *opts);

/* mp_list_destroy — free the list and its items. NULL is a no-op, and so
 * is a list owned by a local manager (mp_manager_list); a Redis manager's
 * list handle is released (the data stay on the server). */
MP_API void mp_list_destroy(mp_list *l);

/* mp_list_append — l.append(v). v is borrowed until return. */
MP_API int mp_list_append(mp_list *l, const mp_item *v);

/* mp_list_extend — l.extend(items): all n items are appended at once
 * (atomically), or none. items may be NULL when n is 0. */
MP_API int mp_list_extend(mp_list *l, const mp_item *items, size_t n);

/* mp_list_insert — l.insert(index, v): like Python, an index past either
 * end inserts at that end (never MP_ERANGE). */
MP_API int mp_list_insert(mp_list *l, long index, const mp_item *v);

/* mp_list_set — l[index] = v. */
MP_API int mp_list_set(mp_list *l, long index, const mp_item *v);

/* mp_list_get — copy of l[index]: malloc'd (free it), followed by a NUL
 * byte not counted in *out_len. type may be NULL. */
MP_API int mp_list_get(const mp_list *l, long index, void **out, size_t *out_len,
                       mp_item_type *type);

/* mp_list_get_into — copy of l[index] into the caller's buffer.
 * MP_EMSGSIZE when cap is too small: *out_len says the size needed. */
MP_API int mp_list_get_into(const mp_list *l, long index, void *buf, size_t cap, size_t *out_len,
                            mp_item_type *type);

/* Typed getters: MP_EPROTO when the item has another type. get_str gives a
 * malloc'd C string (free it) and also accepts bytes items. */
MP_API int mp_list_get_str(const mp_list *l, long index, char **out);
MP_API int mp_list_get_int64(const mp_list *l, long index, int64_t *out);
MP_API int mp_list_get_double(const mp_list *l, long index, double *out);

/* mp_list_pop — remove l[index] and return it (malloc'd copy; out may be
 * NULL to discard it, then out_len and type are ignored). index -1 is the
 * last item, Python's pop(). MP_ERANGE on an empty list. */
MP_API int mp_list_pop(mp_list *l, long index, void **out, size_t *out_len, mp_item_type *type);

/* mp_list_remove — remove the first item equal to v (same type and bytes).
 * MP_ENOENT when there is none (Python's ValueError). */
MP_API int mp_list_remove(mp_list *l, const mp_item *v);

/* mp_list_len — number of items into *out. */
MP_API int mp_list_len(const mp_list *l, size_t *out);

/* mp_list_clear — remove every item (del l[:]). */
MP_API int mp_list_clear(mp_list *l);

/* mp_list_slice — a private snapshot of l[start:stop] (step 1), with
 * Python's clamping: out-of-range bounds are cut to the list, an empty
 * range gives an empty snapshot. Use MP_LIST_END as stop for "to the end".
 * Read it with mp_snapshot_value; free it with mp_snapshot_destroy. */
#define MP_LIST_END LONG_MAX
MP_API int mp_list_slice(const mp_list *l, long start, long stop, mp_snapshot **out);

/* A comparator: negative, 0 or positive like strcmp. The items are views
 * valid during the call. */
typedef int (*mp_list_cmp_fn)(const mp_item *a, const mp_item *b, void *user);

/* mp_list_sort — sort in place, stably (equal items keep their order),
 * like Python's list.sort(). cmp NULL: the default order (numbers by value,
 * strings and bytes by their bytes, and between kinds by type tag: bytes,
 * str, then numbers). The comparator runs with the list locked: it must be
 * short and must not call this list. The sorted order is published at
 * once; a process killed during the sort leaves the list unsorted but
 * whole. */
MP_API int mp_list_sort(mp_list *l, mp_list_cmp_fn cmp, void *user);

/* mp_list_reverse — l.reverse(): reverse the items in place, atomically
 * (no reader sees a half-reversed list). Errors: MP_EINVAL, MP_ENOMEM. */
MP_API int mp_list_reverse(mp_list *l);

/* mp_list_imul — l *= n: the items repeated n times in place, atomically
 * (the list [a, b] becomes [a, b, a, b] for n = 2). As in Python, n of 0
 * or less empties the list and n = 1 changes nothing. Every repeated item
 * is a copy (stored anew). Errors: MP_EINVAL, MP_ENOMEM (the result does
 * not fit the shared heap, or its length overflows; nothing changed), on
 * Redis MP_EOVERFLOW (the result would exceed 2^32 - 1 items, Redis's
 * limit; nothing changed). */
MP_API int mp_list_imul(mp_list *l, long n);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_LIST_H */
