/* Shared values and arrays (see multiproc/value.h). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "sync_internal.h"

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

int mp_typecode_size(char typecode)
{
    const typeinfo *t = find_type(typecode);
    return t ? t->size : MP_EINVAL;
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

static int shared_new(mp__shared **out, char code, size_t len, const void *init, bool raw,
                      mp_rlock *lock, uint32_t magic)
{
    const typeinfo *t = find_type(code);
    if (out == NULL || t == NULL || (raw && lock != NULL))
        return MP_EINVAL;
    if (lock && mp__check_obj(lock, sizeof *lock, MP__RLOCK_MAGIC) < 0)
        return MP_EINVAL;
    if (len > (SIZE_MAX - DATA_OFFSET) / t->size)
        return MP_ENOMEM;
    void *mem = NULL;
    int rc = mp__heap_alloc(&mem, DATA_OFFSET + len * t->size);
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

/* ---- mp_value ------------------------------------------------------------ */
static mp__shared *value_of(mp_value *v)
{
    return v ? (mp__shared *)checked(&v->s, MP__VALUE_MAGIC) : NULL;
}

int mp_value_create(mp_value **out, const mp_value_opts *opts)
{
    if (out == NULL || opts == NULL)
        return MP_EINVAL;
    mp__shared *s = NULL;
    int rc = shared_new(&s, opts->typecode, 1, opts->init, opts->raw, opts->lock, MP__VALUE_MAGIC);
    if (rc == 0)
        *out = (mp_value *)s;
    return rc;
}

void mp_value_destroy(mp_value *v)
{
    shared_free(v ? &v->s : NULL, MP__VALUE_MAGIC);
}

mp_rlock *mp_value_get_lock(mp_value *v)
{
    mp__shared *s = value_of(v);
    return s ? s->lock : NULL;
}

char mp_value_typecode(const mp_value *v)
{
    const mp__shared *s = v ? checked(&v->s, MP__VALUE_MAGIC) : NULL;
    return s ? type_of(s)->code : 0;
}

void *mp_value_data(mp_value *v)
{
    mp__shared *s = value_of(v);
    return s ? data_of(s) : NULL;
}

#define VALUE_ACCESSOR(name, T, impl, check_out)                                                   \
    int name(mp_value *v, T x)                                                                     \
    {                                                                                              \
        mp__shared *s = value_of(v);                                                               \
        if (s == NULL || (check_out))                                                              \
            return MP_EINVAL;                                                                      \
        return impl(data_of(s), type_of(s), x);                                                    \
    }

VALUE_ACCESSOR(mp_value_get_i64, int64_t *, get_i64, x == NULL)
VALUE_ACCESSOR(mp_value_get_u64, uint64_t *, get_u64, x == NULL)
VALUE_ACCESSOR(mp_value_get_double, double *, get_double, x == NULL)
VALUE_ACCESSOR(mp_value_set_i64, int64_t, set_i64, false)
VALUE_ACCESSOR(mp_value_set_u64, uint64_t, set_u64, false)
VALUE_ACCESSOR(mp_value_set_double, double, set_double, false)

/* ---- mp_array ------------------------------------------------------------ */
static mp__shared *array_of(mp_array *a)
{
    return a ? (mp__shared *)checked(&a->s, MP__ARRAY_MAGIC) : NULL;
}

int mp_array_create(mp_array **out, const mp_array_opts *opts)
{
    if (out == NULL || opts == NULL)
        return MP_EINVAL;
    mp__shared *s = NULL;
    int rc = shared_new(&s, opts->typecode, opts->len, opts->init, opts->raw, opts->lock,
                        MP__ARRAY_MAGIC);
    if (rc == 0)
        *out = (mp_array *)s;
    return rc;
}

void mp_array_destroy(mp_array *a)
{
    shared_free(a ? &a->s : NULL, MP__ARRAY_MAGIC);
}

mp_rlock *mp_array_get_lock(mp_array *a)
{
    mp__shared *s = array_of(a);
    return s ? s->lock : NULL;
}

char mp_array_typecode(const mp_array *a)
{
    const mp__shared *s = a ? checked(&a->s, MP__ARRAY_MAGIC) : NULL;
    return s ? type_of(s)->code : 0;
}

size_t mp_array_len(const mp_array *a)
{
    const mp__shared *s = a ? checked(&a->s, MP__ARRAY_MAGIC) : NULL;
    return s ? s->len : 0;
}

void *mp_array_data(mp_array *a)
{
    mp__shared *s = array_of(a);
    return s ? data_of(s) : NULL;
}

#define ARRAY_ACCESSOR(name, T, impl, check_out)                                                   \
    int name(mp_array *a, size_t i, T x)                                                           \
    {                                                                                              \
        mp__shared *s = array_of(a);                                                               \
        if (s == NULL || (check_out))                                                              \
            return MP_EINVAL;                                                                      \
        if (i >= s->len)                                                                           \
            return MP_ERANGE;                                                                      \
        const typeinfo *t = type_of(s);                                                            \
        return impl(data_of(s) + i * t->size, t, x);                                               \
    }

ARRAY_ACCESSOR(mp_array_get_i64, int64_t *, get_i64, x == NULL)
ARRAY_ACCESSOR(mp_array_get_u64, uint64_t *, get_u64, x == NULL)
ARRAY_ACCESSOR(mp_array_get_double, double *, get_double, x == NULL)
ARRAY_ACCESSOR(mp_array_set_i64, int64_t, set_i64, false)
ARRAY_ACCESSOR(mp_array_set_u64, uint64_t, set_u64, false)
ARRAY_ACCESSOR(mp_array_set_double, double, set_double, false)
