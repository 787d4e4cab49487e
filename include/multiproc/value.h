/* multiproc — shared values and arrays (Python's multiprocessing.Value,
 * Array, RawValue and RawArray).
 *
 *     mp_value *num;                   // Value('d', 0.0)
 *     mp_value_create(&num, &(mp_value_opts){ .typecode = 'd' });
 *     mp_array *arr;                   // Array('i', range(10))
 *     int init[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
 *     mp_array_create(&arr, &(mp_array_opts){ .typecode = 'i', .len = 10, .init = init });
 *     ... in a child:
 *     mp_value_set_double(num, 3.1415927);
 *     int *a = mp_array_data(arr);     // direct access, typed by the caller
 *     for (size_t i = 0; i < 10; i++) a[i] = -a[i];
 *
 * The data live in the family's shared heap: the pointers are valid in
 * every process of the family, also in children started before the object
 * was made.
 *
 * Typecodes are Python's, with the C types of the platform:
 *   'c' char, 'b' signed char, 'B' unsigned char, 'h' short,
 *   'H' unsigned short, 'i' int, 'I' unsigned int, 'l' long,
 *   'L' unsigned long, 'q' long long, 'Q' unsigned long long, 'f' float,
 *   'd' double. Anything else (Python's deprecated 'u' included) is MP_EINVAL.
 *   The accessors treat 'c' as Python's one-byte bytes: 0..255.
 *
 * Locks: like Python, each object carries an rlock by default (get it with
 * mp_value_get_lock / mp_array_get_lock), or uses one given in the options
 * (several objects may share one), or none with .raw (RawValue/RawArray).
 * The accessors below read and write one item atomically (never torn,
 * also across processes) without taking the lock: hold the lock for
 * compound updates (read-modify-write, several items), as in Python
 * (`with v.get_lock(): v.value += 1`).
 *
 * Conversions of the accessors: integers are checked against the item's
 * type (MP_ERANGE if they do not fit, never silently wrapped); a double
 * stored into an integer item must be integral (MP_EINVAL otherwise) and
 * in range (MP_ERANGE); reading a float item as an integer truncates
 * toward zero (MP_ERANGE if out of range or NaN); reading a 64-bit integer
 * as a double may round.
 *
 * Thread safety: safe from any thread of any process; across fork the
 * child uses the same shared object. Lifetime: destroy once, from any one
 * process, when no one uses the object any more (as for the sync objects).
 * An invalid value or array (NULL, destroyed, not one: unmapped, misaligned,
 * outside the heap) is refused without a crash, with the same checks and
 * the same undefined cases as the sync objects (multiproc/sync.h, "Bad
 * pointers").
 *
 * A value or array obtained from a Redis manager is a process-local handle
 * to numbers on the server: mp_value_data, mp_array_data and the get_lock
 * functions return NULL, every accessor is a round trip (and may also
 * return the connection errors), mp_value_add_i64 / mp_value_add_double
 * are the atomic updates, and destroy releases the handle only:
 * multiproc/manager.h, "Types on Redis".
 */
#ifndef MULTIPROC_VALUE_H
#define MULTIPROC_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "multiproc/error.h"
#include "multiproc/sync.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_value mp_value;
typedef struct mp_array mp_array;

typedef struct mp_value_opts {
    char typecode;    /* required: one of "cbBhHiIlLqQfd" */
    const void *init; /* one item of the C type, copied; NULL: zero */
    bool raw;         /* no lock (RawValue) */
    mp_rlock *lock;   /* use this rlock (borrowed: must outlive the value) */
} mp_value_opts;

typedef struct mp_array_opts {
    char typecode;    /* required: one of "cbBhHiIlLqQfd" */
    size_t len;       /* number of items; 0 is allowed */
    const void *init; /* len items of the C type, copied; NULL: zeros */
    bool raw;         /* no lock (RawArray) */
    mp_rlock *lock;   /* use this rlock (borrowed: must outlive the array) */
} mp_array_opts;

/* mp_typecode_size — the item size of a typecode, or MP_EINVAL. */
MP_API int mp_typecode_size(char typecode);

/* mp_value_create — a new shared value.
 *
 * out: receives the value; freed by mp_value_destroy. opts: borrowed until
 * return; required (the typecode).
 * Errors: MP_EINVAL (NULL out or opts, unknown typecode, raw together with
 * a lock, a lock that is not an rlock of the heap), MP_ENOMEM, MP_ENOHEAPADDR.
 */
MP_API int mp_value_create(mp_value **out, const mp_value_opts *opts);

/* mp_value_destroy — free the value and the rlock it made (not a borrowed
 * one). NULL: no-op; so is a value that belongs to a local manager
 * (mp_manager_value), which lives as long as the family (a Redis handle
 * is released, the number stays on the server). */
MP_API void mp_value_destroy(mp_value *v);

/* mp_value_get_lock — the value's rlock, NULL for a raw value, a Redis
 * value (or an invalid one). Owned by the value, or by whoever passed it. */
MP_API mp_rlock *mp_value_get_lock(mp_value *v);

/* mp_value_typecode — the typecode, or 0 for an invalid value. */
MP_API char mp_value_typecode(const mp_value *v);

/* mp_value_data — the item itself, for direct typed access (e.g.
 * `*(double *)mp_value_data(v) += 1` with the lock held). Valid until
 * destroy, in every process of the family; NULL for a Redis value or an
 * invalid value. */
MP_API void *mp_value_data(mp_value *v);

/* Typed accessors (see Conversions above). Errors: MP_EINVAL (invalid
 * value or NULL out, non-integral double into an integer item), MP_ERANGE. */
MP_API int mp_value_get_i64(mp_value *v, int64_t *out);
MP_API int mp_value_get_u64(mp_value *v, uint64_t *out);
MP_API int mp_value_get_double(mp_value *v, double *out);
MP_API int mp_value_set_i64(mp_value *v, int64_t x);
MP_API int mp_value_set_u64(mp_value *v, uint64_t x);
MP_API int mp_value_set_double(mp_value *v, double x);

/* mp_value_add_i64, mp_value_add_double — add delta to the value in one
 * atomic step (Python's `with v.get_lock(): v.value += delta`, without
 * the lock): atomic against every accessor and add of any process, also on
 * a raw value and on a Redis manager's value (where there is no lock).
 * add_i64 is for integer typecodes, add_double for 'f' and 'd'.
 * result: receives the new value (as stored: a float value rounds); may be
 * NULL. Errors (nothing changed): MP_EINVAL (invalid value, a typecode of
 * the other kind), MP_ERANGE (the sum leaves the item's type or int64, or
 * the value read is out of int64 range, or a float sum leaves float's). */
MP_API int mp_value_add_i64(mp_value *v, int64_t delta, int64_t *result);
MP_API int mp_value_add_double(mp_value *v, double delta, double *result);

/* mp_array_create — a new shared array of opts->len items.
 * Errors: as mp_value_create, and MP_ENOMEM for a length whose size
 * overflows. */
MP_API int mp_array_create(mp_array **out, const mp_array_opts *opts);

/* mp_array_destroy — as mp_value_destroy. */
MP_API void mp_array_destroy(mp_array *a);

/* Accessors: the rlock (NULL when raw), the typecode, the number of items
 * (0 for an invalid array), and the first item for direct typed access
 * (len items, valid until destroy in every process of the family). */
MP_API mp_rlock *mp_array_get_lock(mp_array *a);
MP_API char mp_array_typecode(const mp_array *a);
MP_API size_t mp_array_len(const mp_array *a);
MP_API void *mp_array_data(mp_array *a);

/* Typed accessors of item i (see Conversions above). Errors: MP_ERANGE
 * (i >= len, Python's IndexError, or a value out of range), MP_EINVAL. */
MP_API int mp_array_get_i64(mp_array *a, size_t i, int64_t *out);
MP_API int mp_array_get_u64(mp_array *a, size_t i, uint64_t *out);
MP_API int mp_array_get_double(mp_array *a, size_t i, double *out);
MP_API int mp_array_set_i64(mp_array *a, size_t i, int64_t x);
MP_API int mp_array_set_u64(mp_array *a, size_t i, uint64_t x);
MP_API int mp_array_set_double(mp_array *a, size_t i, double x);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_VALUE_H */
