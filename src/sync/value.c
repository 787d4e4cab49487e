/* Shared values and arrays (see multiproc/value.h). */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/sync_internal.h"

#define MP__VALUE_MAGIC 0x6d705641u /* "mpVA" */
#define MP__ARRAY_MAGIC 0x6d704152u /* "mpAR" */

typedef enum { KIND_SIGNED, KIND_UNSIGNED, KIND_FLOAT } item_kind;

typedef struct typeinfo {
    char code;
    uint8_t size;
    item_kind kind;
    int64_t min;  /* signed kinds */
    uint64_t max; /* integer kinds */
} typeinfo;

/* 'c' is Python's one-byte bytes: 0..255 whatever the signedness of char. */
static const typeinfo types[] = {
    {'c', sizeof(char), KIND_UNSIGNED, 0, UCHAR_MAX},
    {'b', sizeof(signed char), KIND_SIGNED, SCHAR_MIN, SCHAR_MAX},
    {'B', sizeof(unsigned char), KIND_UNSIGNED, 0, UCHAR_MAX},
    {'h', sizeof(short), KIND_SIGNED, SHRT_MIN, SHRT_MAX},
    {'H', sizeof(unsigned short), KIND_UNSIGNED, 0, USHRT_MAX},
    {'i', sizeof(int), KIND_SIGNED, INT_MIN, INT_MAX},
    {'I', sizeof(unsigned int), KIND_UNSIGNED, 0, UINT_MAX},
    {'l', sizeof(long), KIND_SIGNED, LONG_MIN, LONG_MAX},
    {'L', sizeof(unsigned long), KIND_UNSIGNED, 0, ULONG_MAX},
    {'q', sizeof(long long), KIND_SIGNED, LLONG_MIN, LLONG_MAX},
    {'Q', sizeof(unsigned long long), KIND_UNSIGNED, 0, ULLONG_MAX},
    {'f', sizeof(float), KIND_FLOAT, 0, 0},
    {'d', sizeof(double), KIND_FLOAT, 0, 0},
};

/* Both objects share one layout; the data follow the header, 16-aligned. */
typedef struct mp__shared {
    mp__obj_head head;
    /* An index into types[], not a pointer: a spawned child runs another
     * image of the program, where the table may sit at another address. */
    uint32_t type_index;
    mp_rlock *lock; /* NULL when raw */
    bool own_lock;
    size_t len;
} mp__shared;

#define DATA_OFFSET ((sizeof(mp__shared) + 15) & ~(size_t)15)

struct mp_value {
    mp__shared s;
};
struct mp_array {
    mp__shared s;
};

static const typeinfo *find_type(char code)
{
    for (size_t i = 0; code != 0 && i < MP__ARRAY_LEN(types); i++)
        if (types[i].code == code)
            return &types[i];
    return NULL;
}

/* MP_EINVAL with a detail: code, fn's argument arg, is no typecode. */
static int __attribute__((cold)) bad_typecode(const char *fn, const char *arg, char code)
{
    if (code > ' ' && code < 0x7f)
        return mp__fail(MP_EINVAL, "%s: %s '%c' is not a typecode (one of cbBhHiIlLqQfd)", fn, arg,
                        code);
    return mp__fail(MP_EINVAL, "%s: %s %d is not a typecode (one of cbBhHiIlLqQfd)", fn, arg,
                    (int)code);
}

/* The detail of a failed conversion in fn: rc from get_* (what NULL: the
 * stored item does not fit the type asked for) or set_* (what names the
 * number that did not fit the item's type t). */
static int __attribute__((cold))
conv_fail(const char *fn, int rc, const typeinfo *t, const char *what)
{
    if (what == NULL)
        return mp__fail(rc,
                        "%s: the item (typecode '%c') is out of the range of the type asked for",
                        fn, t->code);
    if (rc == MP_EINVAL)
        return mp__fail(rc, "%s: %s is not a finite whole number, as typecode '%c' needs", fn, what,
                        t->code);
    if (t->kind == KIND_FLOAT)
        return mp__fail(rc, "%s: %s is beyond the range of typecode 'f' (float)", fn, what);
    return mp__fail(rc, "%s: %s is out of the range of typecode '%c' (%lld to %llu)", fn, what,
                    t->code, (long long)t->min, (unsigned long long)t->max);
}

int mp_typecode_size(char typecode)
{
    const typeinfo *t = find_type(typecode);
    return t ? t->size : bad_typecode("mp_typecode_size", "typecode", typecode);
}

static const typeinfo *type_of(const mp__shared *s)
{
    return &types[s->type_index];
}

static unsigned char *data_of(const mp__shared *s)
{
    return (unsigned char *)s + DATA_OFFSET;
}

static const mp__shared *checked(const mp__shared *s, uint32_t magic)
{
    return mp__check_obj(s, sizeof *s, magic) == 0 ? s : NULL;
}

static int shared_new(const char *fn, mp__shared **out, char code, size_t len, const void *init,
                      bool raw, mp_rlock *lock, uint32_t magic)
{
    const typeinfo *t = find_type(code);
    if (t == NULL)
        return bad_typecode(fn, "opts->typecode", code);
    if (raw && lock != NULL)
        return mp__fail(MP_EINVAL, "%s: opts->raw with opts->lock set (a raw object has no lock)",
                        fn);
    if (lock && mp__check_obj(lock, sizeof *lock, MP__RLOCK_MAGIC) < 0)
        return mp__obj_fail(fn, "opts->lock", lock, "rlock");
    if (len > (SIZE_MAX - DATA_OFFSET) / t->size)
        return mp__fail(MP_ENOMEM, "%s: opts->len %zu items of %u bytes overflow a size_t", fn, len,
                        (unsigned)t->size);
    void *mem = NULL;
    int rc = mp__heap_alloc_for(fn, &mem, DATA_OFFSET + len * t->size);
    if (rc < 0)
        return rc;
    mp__shared *s = mem;
    s->type_index = (uint32_t)(t - types);
    s->len = len;
    s->lock = lock;
    s->own_lock = !raw && lock == NULL;
    if (s->own_lock && (rc = mp_rlock_create(&s->lock, NULL)) < 0) {
        mp__heap_free(mem);
        return rc;
    }
    if (init != NULL && len > 0)
        memcpy(data_of(s), init, len * t->size);
    else
        memset(data_of(s), 0, len * t->size);
    mp__obj_publish(&s->head, magic);
    *out = s;
    return 0;
}

static void shared_free(mp__shared *s, uint32_t magic)
{
    if (s == NULL || checked(s, magic) == NULL || mp__obj_named(s))
        return;
    mp__obj_retire(&s->head);
    if (s->own_lock)
        mp_rlock_destroy(s->lock);
    mp__heap_free(s);
}

/* ---- atomic item access --------------------------------------------------
 * Every item size is 1, 2, 4 or 8 bytes, naturally aligned, so one relaxed
 * atomic load or store moves it whole. Floats travel as their bits. */
typedef union number {
    int64_t i;
    uint64_t u;
    double f;
} number;

static uint64_t load_bits(const void *p, uint8_t size)
{
    switch (size) {
    case 1:
        return __atomic_load_n((const uint8_t *)p, __ATOMIC_RELAXED);
    case 2:
        return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
    case 4:
        return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
    default:
        return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
    }
}

static void store_bits(void *p, uint8_t size, uint64_t bits)
{
    switch (size) {
    case 1:
        __atomic_store_n((uint8_t *)p, (uint8_t)bits, __ATOMIC_RELAXED);
        break;
    case 2:
        __atomic_store_n((uint16_t *)p, (uint16_t)bits, __ATOMIC_RELAXED);
        break;
    case 4:
        __atomic_store_n((uint32_t *)p, (uint32_t)bits, __ATOMIC_RELAXED);
        break;
    default:
        __atomic_store_n((uint64_t *)p, bits, __ATOMIC_RELAXED);
        break;
    }
}

/* Reads an item into n (i for signed kinds, u for unsigned, f for floats). */
static void item_load(const void *p, const typeinfo *t, number *n)
{
    uint64_t bits = load_bits(p, t->size);
    if (t->kind == KIND_FLOAT) {
        if (t->size == sizeof(float)) {
            float x;
            uint32_t b32 = (uint32_t)bits;
            memcpy(&x, &b32, sizeof x);
            n->f = x;
        } else {
            memcpy(&n->f, &bits, sizeof n->f);
        }
    } else if (t->kind == KIND_UNSIGNED) {
        n->u = bits;
    } else {
        unsigned shift = 64u - 8u * t->size; /* sign-extend */
        n->i = (int64_t)(bits << shift) >> shift;
    }
}

static void item_store_int(void *p, const typeinfo *t, uint64_t bits)
{
    store_bits(p, t->size, bits);
}

static void item_store_float(void *p, const typeinfo *t, double x)
{
    if (t->size == sizeof(float)) {
        float f = (float)x;
        uint32_t b32;
        memcpy(&b32, &f, sizeof b32);
        store_bits(p, 4, b32);
    } else {
        uint64_t b64;
        memcpy(&b64, &x, sizeof b64);
        store_bits(p, 8, b64);
    }
}

/* ---- conversions --------------------------------------------------------- */
#define TWO63 9223372036854775808.0
#define TWO64 18446744073709551616.0

static int get_i64(const void *p, const typeinfo *t, int64_t *out)
{
    number n;
    item_load(p, t, &n);
    if (t->kind == KIND_SIGNED) {
        *out = n.i;
    } else if (t->kind == KIND_UNSIGNED) {
        if (n.u > INT64_MAX)
            return MP_ERANGE;
        *out = (int64_t)n.u;
    } else {
        if (!(n.f > -TWO63 - 1024.0 && n.f < TWO63))
            return MP_ERANGE;
        *out = (int64_t)n.f;
    }
    return 0;
}

static int get_u64(const void *p, const typeinfo *t, uint64_t *out)
{
    number n;
    item_load(p, t, &n);
    if (t->kind == KIND_SIGNED) {
        if (n.i < 0)
            return MP_ERANGE;
        *out = (uint64_t)n.i;
    } else if (t->kind == KIND_UNSIGNED) {
        *out = n.u;
    } else {
        if (!(n.f > -1.0 && n.f < TWO64))
            return MP_ERANGE;
        *out = (uint64_t)n.f;
    }
    return 0;
}

static int get_double(const void *p, const typeinfo *t, double *out)
{
    number n;
    item_load(p, t, &n);
    *out = t->kind == KIND_SIGNED ? (double)n.i : t->kind == KIND_UNSIGNED ? (double)n.u : n.f;
    return 0;
}

static int set_i64(void *p, const typeinfo *t, int64_t x)
{
    if (t->kind == KIND_FLOAT) {
        item_store_float(p, t, (double)x);
        return 0;
    }
    if (t->kind == KIND_SIGNED ? (x < t->min || x > (int64_t)t->max)
                               : (x < 0 || (uint64_t)x > t->max))
        return MP_ERANGE;
    item_store_int(p, t, (uint64_t)x);
    return 0;
}

static int set_u64(void *p, const typeinfo *t, uint64_t x)
{
    if (t->kind == KIND_FLOAT) {
        item_store_float(p, t, (double)x);
        return 0;
    }
    if (x > t->max)
        return MP_ERANGE;
    item_store_int(p, t, x);
    return 0;
}

/* Whether a finite double is a whole number, without libm's trunc (the
 * library links no libm): from 2^52 up every double is whole, and below
 * that a round trip through int64_t is exact. */
static bool is_integral(double x)
{
    if (fabs(x) >= 4503599627370496.0)
        return true;
    return (double)(int64_t)x == x;
}

static int set_double(void *p, const typeinfo *t, double x)
{
    if (t->kind == KIND_FLOAT) {
        /* Converting a finite double beyond float's range is undefined. */
        if (t->size == sizeof(float) && isfinite(x) && fabs(x) > FLT_MAX)
            return MP_ERANGE;
        item_store_float(p, t, x);
        return 0;
    }
    if (!isfinite(x) || !is_integral(x))
        return MP_EINVAL;
    if (x >= -TWO63 && x < TWO63)
        return set_i64(p, t, (int64_t)x);
    if (x >= 0 && x < TWO64)
        return set_u64(p, t, (uint64_t)x);
    return MP_ERANGE;
}

/* ---- remote values and arrays ---------------------------------------------
 * The number travels as text (decimal, or %.17g for floats); the
 * conversions are the local ones, run on an item in a local buffer. h is a
 * remote value (array false, item 0) or array handle. */
int mp__value_item_text(char typecode, const void *item, char *buf, size_t cap)
{
    const typeinfo *t = find_type(typecode);
    if (t == NULL || item == NULL || buf == NULL)
        return MP_EINVAL;
    number n;
    item_load(item, t, &n);
    int len = t->kind == KIND_FLOAT    ? snprintf(buf, cap, "%.17g", n.f)
              : t->kind == KIND_SIGNED ? snprintf(buf, cap, "%lld", (long long)n.i)
                                       : snprintf(buf, cap, "%llu", (unsigned long long)n.u);
    return len < 0 || (size_t)len >= cap ? MP_EINVAL : 0;
}

/* The type of h's items, or NULL (also for a handle of another type). */
static const typeinfo *remote_type(const void *h, bool array)
{
    return find_type(array ? mp_array_typecode(h) : mp_value_typecode(h));
}

/* Item i of h as text, or MP_ERANGE (i out of range). */
static int remote_get_text(void *h, bool array, size_t i, char *buf, size_t cap)
{
    if (!array)
        return MP__REMOTE_CALL(mp__value_remote(h), get_text, h, buf, cap);
    if (i >= mp_array_len(h))
        return MP_ERANGE;
    return MP__REMOTE_CALL(mp__array_remote(h), get_text, h, i, buf, cap);
}

static int remote_set_text(void *h, bool array, size_t i, const char *text)
{
    if (!array)
        return MP__REMOTE_CALL(mp__value_remote(h), set_text, h, text);
    if (i >= mp_array_len(h))
        return MP_ERANGE;
    return MP__REMOTE_CALL(mp__array_remote(h), set_text, h, i, text);
}

/* MP_EINVAL with a detail: h, fn's argument, is a remote handle of
 * another type. */
static int __attribute__((cold)) other_handle(const char *fn, bool array)
{
    return mp__fail(MP_EINVAL, "%s: %s is a remote handle of another type", fn, array ? "a" : "v");
}

/* Reads item i of h into item, of type *t, for fn (out: the caller's
 * output pointer, MP_EINVAL when NULL). A stored text that is no number of
 * the type is MP_EBADMSG. */
static int remote_load(const char *fn, void *h, bool array, size_t i, const void *out,
                       uint64_t *item, const typeinfo **t)
{
    char text[MP__VALUE_TEXT_MAX];
    if (out == NULL)
        return mp__fail(MP_EINVAL, "%s: out is NULL", fn);
    *t = remote_type(h, array);
    if (*t == NULL)
        return other_handle(fn, array);
    int rc = remote_get_text(h, array, i, text, sizeof(text));
    if (rc < 0)
        return rc;
    char *end;
    errno = 0;
    if ((*t)->kind == KIND_FLOAT) {
        /* ERANGE with a finite result is an underflow: a subnormal number,
         * which %.17g writes and which reads back exactly. */
        double d = strtod(text, &end);
        if (errno == ERANGE && !isinf(d))
            errno = 0;
        rc = set_double(item, *t, d);
    } else if ((*t)->kind == KIND_SIGNED)
        rc = set_i64(item, *t, strtoll(text, &end, 10));
    else
        rc = text[0] == '-' ? MP_ERANGE : set_u64(item, *t, strtoull(text, &end, 10));
    return rc < 0 || errno != 0 || *end != '\0' ? MP_EBADMSG : 0;
}

/* Stores item (converted into a local buffer by set_*, rc its result) as
 * item i of h, of type t. */
static int remote_store(void *h, bool array, size_t i, const typeinfo *t, const uint64_t *item,
                        int rc)
{
    char text[MP__VALUE_TEXT_MAX];
    if (rc < 0)
        return rc;
    rc = mp__value_item_text(t->code, item, text, sizeof(text));
    return rc < 0 ? rc : remote_set_text(h, array, i, text);
}

/* ---- mp_value ------------------------------------------------------------ */
static mp__shared *value_of(mp_value *v)
{
    return v ? (mp__shared *)checked((const mp__shared *)(const void *)v, MP__VALUE_MAGIC) : NULL;
}

int mp_value_create(mp_value **out, const mp_value_opts *opts)
{
    if (out == NULL || opts == NULL)
        return mp__fail(MP_EINVAL, "mp_value_create: %s is NULL", out == NULL ? "out" : "opts");
    mp__shared *s = NULL;
    int rc = shared_new("mp_value_create", &s, opts->typecode, 1, opts->init, opts->raw, opts->lock,
                        MP__VALUE_MAGIC);
    if (rc == 0)
        *out = (mp_value *)s;
    return rc;
}

void mp_value_destroy(mp_value *v)
{
    if (mp__obj_is_remote(v)) {
        const mp__value_ops *ops = mp__value_remote(v);
        if (ops)
            ops->destroy(v);
        return;
    }
    shared_free((mp__shared *)(void *)v, MP__VALUE_MAGIC);
}

mp_rlock *mp_value_get_lock(mp_value *v)
{
    if (mp__obj_is_remote(v)) {
        const mp__value_ops *ops = mp__value_remote(v);
        return ops && ops->get_lock ? ops->get_lock(v) : NULL;
    }
    mp__shared *s = value_of(v);
    return s ? s->lock : NULL;
}

char mp_value_typecode(const mp_value *v)
{
    if (mp__obj_is_remote(v)) {
        const mp__value_ops *ops = mp__value_remote(v);
        return ops ? ops->typecode(v) : 0;
    }
    const mp__shared *s = v ? checked((const mp__shared *)(const void *)v, MP__VALUE_MAGIC) : NULL;
    return s ? type_of(s)->code : 0;
}

void *mp_value_data(mp_value *v)
{
    if (mp__obj_is_remote(v)) {
        const mp__value_ops *ops = mp__value_remote(v);
        return ops && ops->data ? ops->data(v) : NULL;
    }
    mp__shared *s = value_of(v);
    return s ? data_of(s) : NULL;
}

/* The typed accessors: on a remote value the item is read into, or
 * converted in, a local buffer (remote_load, remote_store). */
#define VALUE_GET(v, conv, out)                                                                    \
    do {                                                                                           \
        if (mp__obj_is_remote(v)) {                                                                \
            uint64_t item = 0;                                                                     \
            const typeinfo *t = NULL;                                                              \
            int rc = remote_load(__func__, v, false, 0, out, &item, &t);                           \
            return rc < 0 ? rc : conv(&item, t, out);                                              \
        }                                                                                          \
        mp__shared *s = value_of(v);                                                               \
        if (s == NULL)                                                                             \
            return mp__obj_fail(__func__, "v", v, "value");                                        \
        if ((out) == NULL)                                                                         \
            return mp__fail(MP_EINVAL, "%s: out is NULL", __func__);                               \
        int rc = conv(data_of(s), type_of(s), out);                                                \
        return rc < 0 ? conv_fail(__func__, rc, type_of(s), NULL) : 0;                             \
    } while (0)
#define VALUE_SET(v, conv, x)                                                                      \
    do {                                                                                           \
        if (mp__obj_is_remote(v)) {                                                                \
            uint64_t item = 0;                                                                     \
            const typeinfo *t = remote_type(v, false);                                             \
            return t ? remote_store(v, false, 0, t, &item, conv(&item, t, x))                      \
                     : other_handle(__func__, false);                                              \
        }                                                                                          \
        mp__shared *s = value_of(v);                                                               \
        if (s == NULL)                                                                             \
            return mp__obj_fail(__func__, "v", v, "value");                                        \
        int rc = conv(data_of(s), type_of(s), x);                                                  \
        return rc < 0 ? conv_fail(__func__, rc, type_of(s), "x") : 0;                              \
    } while (0)

int mp_value_get_i64(mp_value *v, int64_t *out)
{
    VALUE_GET(v, get_i64, out);
}

int mp_value_get_u64(mp_value *v, uint64_t *out)
{
    VALUE_GET(v, get_u64, out);
}

int mp_value_get_double(mp_value *v, double *out)
{
    VALUE_GET(v, get_double, out);
}

int mp_value_set_i64(mp_value *v, int64_t x)
{
    VALUE_SET(v, set_i64, x);
}

int mp_value_set_u64(mp_value *v, uint64_t x)
{
    VALUE_SET(v, set_u64, x);
}

int mp_value_set_double(mp_value *v, double x)
{
    VALUE_SET(v, set_double, x);
}

/* ---- atomic add ------------------------------------------------------------
 * A compare-and-swap loop on the item's bits: atomic against the other
 * accessors and adds of any process, without the lock. */
static bool cas_bits(void *p, uint8_t size, uint64_t *old, uint64_t nw)
{
    switch (size) {
    case 1: {
        uint8_t o = (uint8_t)*old;
        bool ok = __atomic_compare_exchange_n((uint8_t *)p, &o, (uint8_t)nw, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
        *old = o;
        return ok;
    }
    case 2: {
        uint16_t o = (uint16_t)*old;
        bool ok = __atomic_compare_exchange_n((uint16_t *)p, &o, (uint16_t)nw, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
        *old = o;
        return ok;
    }
    case 4: {
        uint32_t o = (uint32_t)*old;
        bool ok = __atomic_compare_exchange_n((uint32_t *)p, &o, (uint32_t)nw, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
        *old = o;
        return ok;
    }
    default:
        return __atomic_compare_exchange_n((uint64_t *)p, old, nw, false, __ATOMIC_SEQ_CST,
                                           __ATOMIC_RELAXED);
    }
}

/* One step of an add: from the item cur to the item *next. */
static int add_step(const typeinfo *t, const uint64_t *cur, uint64_t *next, int64_t di, double dd,
                    number *res)
{
    int rc;
    if (t->kind == KIND_FLOAT) {
        double x;
        get_double(cur, t, &x);
        rc = set_double(next, t, x + dd);
        if (rc == 0)
            get_double(next, t, &res->f); /* rounded as stored ('f') */
        return rc;
    }
    int64_t x;
    rc = get_i64(cur, t, &x);
    if (rc == 0 && __builtin_add_overflow(x, di, &x))
        rc = MP_ERANGE;
    if (rc == 0)
        rc = set_i64(next, t, x);
    res->i = x;
    return rc;
}

static int add_local(const char *fn, mp_value *v, bool want_float, int64_t di, double dd,
                     number *res)
{
    mp__shared *s = value_of(v);
    if (s == NULL)
        return mp__obj_fail(fn, "v", v, "value");
    if ((type_of(s)->kind == KIND_FLOAT) != want_float)
        return mp__fail(MP_EINVAL, "%s: v has typecode '%c', %s", fn, type_of(s)->code,
                        want_float ? "an integer type (use mp_value_add_i64)"
                                   : "a float type (use mp_value_add_double)");
    const typeinfo *t = type_of(s);
    unsigned char *p = data_of(s);
    uint64_t old = load_bits(p, t->size);
    for (;;) {
        uint64_t cur = 0, next = 0;
        store_bits(&cur, t->size, old);
        int rc = add_step(t, &cur, &next, di, dd, res);
        if (rc < 0)
            return conv_fail(fn, rc, t, "the sum");
        if (cas_bits(p, t->size, &old, load_bits(&next, t->size)))
            return 0;
    }
}

static int remote_add_i64(mp_value *v, int64_t delta, int64_t *result)
{
    const typeinfo *t = remote_type(v, false);
    if (t == NULL)
        return other_handle("mp_value_add_i64", false);
    if (t->kind == KIND_FLOAT)
        return mp__fail(MP_EINVAL,
                        "mp_value_add_i64: v has typecode '%c', a float type (use "
                        "mp_value_add_double)",
                        t->code);
    char min[24], max[24];
    snprintf(min, sizeof(min), "%lld", (long long)(t->kind == KIND_SIGNED ? t->min : 0));
    snprintf(max, sizeof(max), "%llu", (unsigned long long)t->max);
    return MP__REMOTE_CALL(mp__value_remote(v), add_range, v, delta, min, max, result);
}

static int remote_add_double(mp_value *v, double delta, double *result)
{
    const typeinfo *t = remote_type(v, false);
    if (t == NULL)
        return other_handle("mp_value_add_double", false);
    if (t->kind != KIND_FLOAT)
        return mp__fail(MP_EINVAL,
                        "mp_value_add_double: v has typecode '%c', an integer type (use "
                        "mp_value_add_i64)",
                        t->code);
    return MP__REMOTE_CALL(mp__value_remote(v), add_double, v, delta, result);
}

int mp_value_add_i64(mp_value *v, int64_t delta, int64_t *result)
{
    if (mp__obj_is_remote(v))
        return remote_add_i64(v, delta, result);
    number n;
    int rc = add_local("mp_value_add_i64", v, false, delta, 0, &n);
    if (rc == 0 && result)
        *result = n.i;
    return rc;
}

int mp_value_add_double(mp_value *v, double delta, double *result)
{
    if (mp__obj_is_remote(v))
        return remote_add_double(v, delta, result);
    number n;
    int rc = add_local("mp_value_add_double", v, true, 0, delta, &n);
    if (rc == 0 && result)
        *result = n.f;
    return rc;
}

/* ---- mp_array ------------------------------------------------------------ */
static mp__shared *array_of(mp_array *a)
{
    return a ? (mp__shared *)checked((const mp__shared *)(const void *)a, MP__ARRAY_MAGIC) : NULL;
}

int mp_array_create(mp_array **out, const mp_array_opts *opts)
{
    if (out == NULL || opts == NULL)
        return mp__fail(MP_EINVAL, "mp_array_create: %s is NULL", out == NULL ? "out" : "opts");
    mp__shared *s = NULL;
    int rc = shared_new("mp_array_create", &s, opts->typecode, opts->len, opts->init, opts->raw,
                        opts->lock, MP__ARRAY_MAGIC);
    if (rc == 0)
        *out = (mp_array *)s;
    return rc;
}

void mp_array_destroy(mp_array *a)
{
    if (mp__obj_is_remote(a)) {
        const mp__array_ops *ops = mp__array_remote(a);
        if (ops)
            ops->destroy(a);
        return;
    }
    shared_free((mp__shared *)(void *)a, MP__ARRAY_MAGIC);
}

mp_rlock *mp_array_get_lock(mp_array *a)
{
    if (mp__obj_is_remote(a)) {
        const mp__array_ops *ops = mp__array_remote(a);
        return ops && ops->get_lock ? ops->get_lock(a) : NULL;
    }
    mp__shared *s = array_of(a);
    return s ? s->lock : NULL;
}

char mp_array_typecode(const mp_array *a)
{
    if (mp__obj_is_remote(a)) {
        const mp__array_ops *ops = mp__array_remote(a);
        return ops ? ops->typecode(a) : 0;
    }
    const mp__shared *s = a ? checked((const mp__shared *)(const void *)a, MP__ARRAY_MAGIC) : NULL;
    return s ? type_of(s)->code : 0;
}

size_t mp_array_len(const mp_array *a)
{
    if (mp__obj_is_remote(a)) {
        const mp__array_ops *ops = mp__array_remote(a);
        return ops ? ops->len(a) : 0;
    }
    const mp__shared *s = a ? checked((const mp__shared *)(const void *)a, MP__ARRAY_MAGIC) : NULL;
    return s ? s->len : 0;
}

void *mp_array_data(mp_array *a)
{
    if (mp__obj_is_remote(a)) {
        const mp__array_ops *ops = mp__array_remote(a);
        return ops && ops->data ? ops->data(a) : NULL;
    }
    mp__shared *s = array_of(a);
    return s ? data_of(s) : NULL;
}

/* MP_ERANGE with a detail: index i of fn is past the array's end. */
static int __attribute__((cold)) index_fail(const char *fn, size_t i, size_t len)
{
    return mp__fail(MP_ERANGE, "%s: i is %zu, past the array's end (length %zu)", fn, i, len);
}

/* The typed accessors of item i, as VALUE_GET and VALUE_SET. */
#define ARRAY_GET(a, i, conv, out)                                                                 \
    do {                                                                                           \
        if (mp__obj_is_remote(a)) {                                                                \
            uint64_t item = 0;                                                                     \
            const typeinfo *t = NULL;                                                              \
            int rc = remote_load(__func__, a, true, i, out, &item, &t);                            \
            return rc < 0 ? rc : conv(&item, t, out);                                              \
        }                                                                                          \
        mp__shared *s = array_of(a);                                                               \
        if (s == NULL)                                                                             \
            return mp__obj_fail(__func__, "a", a, "array");                                        \
        if ((out) == NULL)                                                                         \
            return mp__fail(MP_EINVAL, "%s: out is NULL", __func__);                               \
        if ((i) >= s->len)                                                                         \
            return index_fail(__func__, i, s->len);                                                \
        const typeinfo *t = type_of(s);                                                            \
        int rc = conv(data_of(s) + (i)*t->size, t, out);                                           \
        return rc < 0 ? conv_fail(__func__, rc, t, NULL) : 0;                                      \
    } while (0)
#define ARRAY_SET(a, i, conv, x)                                                                   \
    do {                                                                                           \
        if (mp__obj_is_remote(a)) {                                                                \
            uint64_t item = 0;                                                                     \
            const typeinfo *t = remote_type(a, true);                                              \
            return t ? remote_store(a, true, i, t, &item, conv(&item, t, x))                       \
                     : other_handle(__func__, true);                                               \
        }                                                                                          \
        mp__shared *s = array_of(a);                                                               \
        if (s == NULL)                                                                             \
            return mp__obj_fail(__func__, "a", a, "array");                                        \
        if ((i) >= s->len)                                                                         \
            return index_fail(__func__, i, s->len);                                                \
        const typeinfo *t = type_of(s);                                                            \
        int rc = conv(data_of(s) + (i)*t->size, t, x);                                             \
        return rc < 0 ? conv_fail(__func__, rc, t, "x") : 0;                                       \
    } while (0)

int mp_array_get_i64(mp_array *a, size_t i, int64_t *out)
{
    ARRAY_GET(a, i, get_i64, out);
}

int mp_array_get_u64(mp_array *a, size_t i, uint64_t *out)
{
    ARRAY_GET(a, i, get_u64, out);
}

int mp_array_get_double(mp_array *a, size_t i, double *out)
{
    ARRAY_GET(a, i, get_double, out);
}

int mp_array_set_i64(mp_array *a, size_t i, int64_t x)
{
    ARRAY_SET(a, i, set_i64, x);
}

int mp_array_set_u64(mp_array *a, size_t i, uint64_t x)
{
    ARRAY_SET(a, i, set_u64, x);
}

int mp_array_set_double(mp_array *a, size_t i, double x)
{
    ARRAY_SET(a, i, set_double, x);
}
