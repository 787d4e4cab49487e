/* multiproc — items and snapshots: the values stored in shared dicts, lists
 * and namespaces.
 *
 * A shared container stores byte strings. Each stored value also carries a
 * type tag (bytes, string, int64, double) so that typed getters can check
 * what they read and printers can show values the way Python does. An
 * mp_item describes one value without owning it:
 *
 *     mp_list_append(l, &MP_ITEM_STR("hello"));
 *     mp_list_append(l, &MP_ITEM_INT64(42));
 *     mp_list_append(l, &MP_ITEM_BYTES(buf, len));
 *
 * Reading many values at once gives an mp_snapshot: a private copy, made
 * under the container's locks, that later writers do not change. It belongs
 * to the process that made it (plain malloc memory), is freed with
 * mp_snapshot_destroy, and may be read from several threads at once.
 */
#ifndef MULTIPROC_ITEM_H
#define MULTIPROC_ITEM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "multiproc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest key of a dict or name of a namespace attribute, in bytes. */
#define MP_KEY_MAX ((size_t)65535)
/* Longest value stored in a dict, list or namespace, in bytes (256 MiB).
 * Longer values get MP_EMSGSIZE: share big data through mp_alloc'd memory
 * and store its pointer instead. */
#define MP_VALUE_MAX ((size_t)1 << 28)

typedef enum mp_item_type {
    MP_ITEM_BYTES = 0,  /* any bytes; printed like Python bytes: b'...' */
    MP_ITEM_STR = 1,    /* text (UTF-8, no NUL needed); printed as 'text' */
    MP_ITEM_INT64 = 2,  /* 8 bytes, an int64_t in native byte order */
    MP_ITEM_DOUBLE = 3, /* 8 bytes, a double in native byte order */
} mp_item_type;

/* One value: data[0 .. len) of the given type. Borrowed: the container
 * copies it. For MP_ITEM_INT64 and MP_ITEM_DOUBLE, len must be 8. data may
 * be NULL only when len is 0. Values read back from a container (snapshots,
 * comparators, update functions) start 8-byte aligned, so numbers can be
 * read in place, and are followed by a NUL byte, not counted in len, so
 * that strings can be used as C strings. */
typedef struct mp_item {
    const void *data;
    size_t len;
    mp_item_type type;
} mp_item;

/* Compound literals for the common cases (C only; they live until the end
 * of the enclosing block). */
#define MP_ITEM_BYTES(p, n) ((mp_item){.data = (p), .len = (n), .type = MP_ITEM_BYTES})
#define MP_ITEM_STR(s)      ((mp_item){.data = (s), .len = strlen(s), .type = MP_ITEM_STR})
#define MP_ITEM_INT64(v)                                                                           \
    ((mp_item){.data = &(int64_t){(v)}, .len = sizeof(int64_t), .type = MP_ITEM_INT64})
#define MP_ITEM_DOUBLE(v)                                                                          \
    ((mp_item){.data = &(double){(v)}, .len = sizeof(double), .type = MP_ITEM_DOUBLE})

/* A private copy of several entries of a container, in order: a dict's
 * items in insertion order, a list's slice in index order. */
typedef struct mp_snapshot mp_snapshot;

/* mp_snapshot_len — number of entries. NULL gives 0. */
MP_API size_t mp_snapshot_len(const mp_snapshot *s);

/* mp_snapshot_key — the key of entry i (dict snapshots made by mp_dict_keys
 * or mp_dict_items). out receives pointers into the snapshot, valid until
 * mp_snapshot_destroy. Errors: MP_EINVAL (NULL argument), MP_ERANGE
 * (i >= len), MP_ENOENT (the snapshot holds no keys: a list slice or
 * mp_dict_values). */
MP_API int mp_snapshot_key(const mp_snapshot *s, size_t i, mp_item *out);

/* mp_snapshot_value — the value of entry i, like mp_snapshot_key.
 * MP_ENOENT for a snapshot made by mp_dict_keys. */
MP_API int mp_snapshot_value(const mp_snapshot *s, size_t i, mp_item *out);

/* mp_snapshot_destroy — free a snapshot. NULL is a no-op. */
MP_API void mp_snapshot_destroy(mp_snapshot *s);

/* mp_item_repr — Python's repr() of a value into a new C string: 10,
 * 2.5, 'hello', b'\x00a'. Doubles print with the shortest digits that read
 * back the same, like Python (1e+16, 0.1, 10.0, inf, nan).
 * out: receives malloc'd memory that the caller frees with free().
 * Errors: MP_EINVAL (NULL argument, bad type, int64/double of length != 8),
 * MP_ENOMEM. Thread-safe. */
MP_API int mp_item_repr(const mp_item *item, char **out);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_ITEM_H */
