/* multiproc — shared dictionaries (Python's Manager().dict()).
 *
 *     mp_dict *d;
 *     mp_dict_create(&d, NULL);
 *     mp_dict_set_int64(d, "hits", 0);        // in any process of the family
 *     mp_dict_set_str(d, "name", "worker-1");
 *     int64_t n;
 *     mp_dict_get_int64(d, "hits", &n);
 *     mp_dict_destroy(d);                      // once, when nobody uses it
 *
 * Keys and values are byte strings (keys up to MP_KEY_MAX bytes, values up
 * to MP_VALUE_MAX); each value carries a type tag (multiproc/item.h). The
 * dict lives in the family's shared heap: the mp_dict pointer is valid in
 * every process of the family, may be passed in a process's argument bytes
 * or stored in another shared object, and changes made by any process are
 * seen by all, including processes started before the dict was created.
 * Entries are kept in insertion order for keys/values/items, like Python
 * (setting an existing key keeps its place).
 *
 * Locking: the dict is split into shards, each under its own robust
 * process-shared mutex, so processes working on different keys rarely wait
 * for each other. Each operation on one key is atomic. Operations on the
 * whole dict (keys/values/items, clear, the string form) lock every shard
 * and see one consistent state; mp_dict_len and mp_dict_update are not
 * atomic as a whole.
 *
 * Robustness: a process killed at any moment (SIGKILL included) in the
 * middle of an operation leaves every entry with its old or its new value,
 * never a torn one, and never leaves the dict locked: the next process
 * repairs the shard's counters and goes on. The worst case is a leak of the
 * entry that was being written.
 *
 * Memory of replaced and deleted entries goes back to the shared heap.
 * Values read with mp_dict_get & co. are private copies (malloc).
 *
 * No call blocks for long: a lock is held only for the copy of one entry
 * (or for the update function of mp_dict_update_with), and a lock whose
 * holder died is recovered at once. So these calls take no timeout.
 *
 * Safety: every function is safe from any thread of any process of the
 * family, and across fork (the child uses the same dict). mp_dict_destroy
 * must run once, when no other process or thread uses the dict.
 *
 * Redis: a dict obtained from a Redis manager (multiproc/manager.h) takes
 * the same calls. Each operation is atomic on the server; snapshots are in
 * Redis's order, not insertion order; mp_dict_update_with's function may
 * run more than once (optimistic retry, the last run decides; once the
 * URL's timeout= has passed in races lost to other clients writing the
 * same dict it gives up with MP_EAGAIN, nothing changed); mp_dict_add_int64 runs on the
 * server and never fails for contention; every call may also return the
 * connection errors listed in manager.h.
 */
#ifndef MULTIPROC_DICT_H
#define MULTIPROC_DICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "multiproc/error.h"
#include "multiproc/item.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_dict mp_dict;

typedef struct mp_dict_opts {
    /* Number of shards (independent locks), a power of two from 1 to 256;
     * 0 means the default, 32. More shards: less waiting between processes
     * that update different keys; fewer: a smaller empty dict (about
     * 128 bytes per shard) and cheaper whole-dict operations, which lock
     * every shard. (ThreadSanitizer follows at most 64 locks held at once
     * by a thread: under it, keep 32 shards or fewer.) Other values are
     * MP_EINVAL. */
    unsigned shards;
} mp_dict_opts;

/* mp_dict_create — make an empty dict in the shared heap.
 * out: receives the dict, owned by the caller (mp_dict_destroy).
 * opts: borrowed until return; NULL means defaults.
 * Errors: MP_EINVAL (bad shard count), MP_ENOMEM (shared heap full),
 * MP_ENOHEAPADDR (the shared heap cannot be mapped). */
MP_API int mp_dict_create(mp_dict **out, const mp_dict_opts *opts);

/* mp_dict_destroy — free the dict and all its entries. NULL is a no-op; so
 * is a dict that belongs to a local manager (mp_manager_dict): those live
 * as long as the family. A Redis manager's dict handle is released (the
 * data stay on the server). No other process or thread may use the dict
 * during or after the call. */
MP_API void mp_dict_destroy(mp_dict *d);

/* ---- writing ------------------------------------------------------------
 * Common errors: MP_EINVAL (NULL dict or key, a pointer that is not a dict,
 * NULL data with a non-zero length, bad item type or length),
 * MP_EMSGSIZE (key longer than MP_KEY_MAX or value longer than
 * MP_VALUE_MAX), MP_ENOMEM (shared heap full). A failed call changes
 * nothing. */

/* mp_dict_set — d[key] = value (bytes). key/value: borrowed until return;
 * an empty key or value is allowed (key and value then may not be NULL
 * for the key; value may be NULL when value_len is 0). */
MP_API int mp_dict_set(mp_dict *d, const void *key, size_t key_len, const void *value,
                       size_t value_len);

/* mp_dict_set_item — d[key] = a typed value. */
MP_API int mp_dict_set_item(mp_dict *d, const void *key, size_t key_len, const mp_item *value);

/* Typed helpers whose key is a C string (its bytes without the NUL). */
MP_API int mp_dict_set_str(mp_dict *d, const char *key, const char *value);
MP_API int mp_dict_set_int64(mp_dict *d, const char *key, int64_t value);
MP_API int mp_dict_set_double(mp_dict *d, const char *key, double value);

/* mp_dict_setdefault — if key is absent, d[key] = def; then return a copy
 * of d[key] (like Python's setdefault), atomically.
 * out/out_len/type: receive a malloc'd copy (free it), its length and type;
 * out may be NULL when the value is not wanted. Returns 1 when the default
 * was inserted, 0 when the key was already there, or a negative error. */
MP_API int mp_dict_setdefault(mp_dict *d, const void *key, size_t key_len, const mp_item *def,
                              void **out, size_t *out_len, mp_item_type *type);

/* mp_dict_delete — del d[key]. Returns 0, or MP_ENOENT when the key is
 * absent (Python's KeyError). */
MP_API int mp_dict_delete(mp_dict *d, const void *key, size_t key_len);

/* mp_dict_pop — remove key and return its value (malloc'd copy, to free).
 * type may be NULL. MP_ENOENT when absent: nothing changes and *out is
 * untouched. */
MP_API int mp_dict_pop(mp_dict *d, const void *key, size_t key_len, void **out, size_t *out_len,
                       mp_item_type *type);

/* mp_dict_popitem — d.popitem(): remove an entry and return its key and
 * value (two malloc'd copies, each followed by a NUL byte; free both).
 * Locally the entry is the last inserted (LIFO, as Python 3.7+; a key
 * that was set again keeps its first place). On Redis, whose hashes have
 * no order, it is an arbitrary entry (HRANDFIELD), read, copied, then
 * removed only if it still holds what was read (else another entry is
 * tried). key, key_len, value and value_len are required; type may be
 * NULL. Atomic: two callers never get the same entry. Errors: MP_EEMPTY
 * (the dict is empty: Python's KeyError; outputs untouched), MP_EINVAL,
 * MP_ENOMEM (nothing removed); on Redis also MP_EBADMSG (an entry this
 * library did not write: nothing removed). */
MP_API int mp_dict_popitem(mp_dict *d, void **key, size_t *key_len, void **value, size_t *value_len,
                           mp_item_type *type);

/* mp_dict_clear — remove every entry, atomically. */
MP_API int mp_dict_clear(mp_dict *d);

/* mp_dict_update — copy every entry of src into dst (Python's
 * dst.update(src)). src is read as one snapshot; the entries are then set
 * one by one, each atomically. src == dst is allowed (no change).
 * Errors: as for set, and MP_ENOMEM for the private snapshot. */
MP_API int mp_dict_update(mp_dict *dst, const mp_dict *src);

/* What mp_dict_update_with's function sees and decides. */
typedef struct mp_dict_change {
    /* In: the current value (a read-only view valid during the call), or
     * found == false with old = NULL, old_len = 0. */
    bool found;
    const void *old;
    size_t old_len;
    mp_item_type old_type;
    /* Out, when the function returns MP_DICT_STORE: the new value, copied
     * by the library after the function returns (new_value must stay valid
     * until then, e.g. point into the function's user data). */
    mp_item new_value;
} mp_dict_change;

/* Return values of an update function (or a negative error to abort). */
enum { MP_DICT_KEEP = 0, MP_DICT_STORE = 1, MP_DICT_DELETE = 2 };

/* An update function: reads u->old, fills u->new_value and returns what to
 * do. It runs with the key's shard locked: it must be short, must not call
 * this dict (a call to the same shard fails with -EDEADLK) and must not
 * block. If the process dies inside it, the dict keeps the old value. */
typedef int (*mp_dict_update_fn)(mp_dict_change *u, void *user);

/* mp_dict_update_with — atomic read-modify-write of one key: no other
 * process can change the key between the read and the write (Python's
 * `d[k] += 1` on a manager dict is not atomic; this is).
 * fn: called exactly once; user: passed to it.
 * Returns what fn returned (MP_DICT_KEEP, MP_DICT_STORE, MP_DICT_DELETE),
 * or fn's negative return (nothing changed), or an error: MP_EINVAL (bad
 * new value or return code), MP_EMSGSIZE, MP_ENOMEM (nothing changed). */
MP_API int mp_dict_update_with(mp_dict *d, const void *key, size_t key_len, mp_dict_update_fn fn,
                               void *user);

/* mp_dict_add_int64 — atomically add delta to an int64 value (absent: 0)
 * and optionally return the result (Python's d[k] = d.get(k, 0) + delta,
 * made atomic). MP_EPROTO when the stored value is not an int64,
 * MP_EOVERFLOW when the sum overflows (nothing changes). On Redis: one
 * script on the server, never MP_EAGAIN; MP_EBADMSG when the stored value
 * is no value this library wrote (nothing changes). */
MP_API int mp_dict_add_int64(mp_dict *d, const char *key, int64_t delta, int64_t *result);

/* ---- reading --------------------------------------------------------------
 * Common errors: MP_EINVAL (NULL argument, not a dict), MP_ENOENT (no such
 * key: Python's KeyError), MP_ENOMEM (private copy). */

/* mp_dict_get — copy of d[key].
 * out: receives malloc'd memory (free it) holding the value followed by a
 * NUL byte not counted in *out_len; type may be NULL. */
MP_API int mp_dict_get(const mp_dict *d, const void *key, size_t key_len, void **out,
                       size_t *out_len, mp_item_type *type);

/* mp_dict_get_into — copy d[key] into the caller's buffer (no allocation).
 * out_len receives the value's length. MP_EMSGSIZE when cap is smaller:
 * *out_len then says the size needed and buf is untouched. type may be
 * NULL; buf may be NULL when cap is 0. */
MP_API int mp_dict_get_into(const mp_dict *d, const void *key, size_t key_len, void *buf,
                            size_t cap, size_t *out_len, mp_item_type *type);

/* mp_dict_get_default — like mp_dict_get, but an absent key gives a copy
 * of def instead of MP_ENOENT. Returns 1 when the key was found, 0 when
 * the default was returned. */
MP_API int mp_dict_get_default(const mp_dict *d, const void *key, size_t key_len,
                               const mp_item *def, void **out, size_t *out_len, mp_item_type *type);

/* Typed getters whose key is a C string. MP_EPROTO when the value stored
 * has another type (e.g. get_int64 of a string). get_str gives a malloc'd
 * C string (free it) and also accepts MP_ITEM_BYTES values. */
MP_API int mp_dict_get_str(const mp_dict *d, const char *key, char **out);
MP_API int mp_dict_get_int64(const mp_dict *d, const char *key, int64_t *out);
MP_API int mp_dict_get_double(const mp_dict *d, const char *key, double *out);

/* mp_dict_contains — 1 when key is present, 0 when not, or MP_EINVAL. */
MP_API int mp_dict_contains(const mp_dict *d, const void *key, size_t key_len);

/* mp_dict_len — number of entries into *out. Exact when no other process
 * is writing; otherwise a value between the dict's sizes at the start and
 * at the end of the call (the shards are counted one after the other). */
MP_API int mp_dict_len(const mp_dict *d, size_t *out);

/* mp_dict_keys, mp_dict_values, mp_dict_items — a consistent private
 * snapshot of the keys, values or both, in insertion order (read them with
 * mp_snapshot_key / mp_snapshot_value; free with mp_snapshot_destroy).
 * Errors: MP_EINVAL, MP_ENOMEM. */
MP_API int mp_dict_keys(const mp_dict *d, mp_snapshot **out);
MP_API int mp_dict_values(const mp_dict *d, mp_snapshot **out);
MP_API int mp_dict_items(const mp_dict *d, mp_snapshot **out);

/* mp_dict_repr — the dict as Python prints it, into a malloc'd C string:
 * {'a': 1, 'b': 'x'}. Keys are shown as strings (non-printable bytes
 * escaped), values by their type (mp_item_repr). Errors: MP_EINVAL,
 * MP_ENOMEM. */
MP_API int mp_dict_repr(const mp_dict *d, char **out);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_DICT_H */
