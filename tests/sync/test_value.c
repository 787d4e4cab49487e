/* Tests of shared values and arrays: typecodes, initial values, locks,
 * conversions and their errors, atomic adds, sharing with children (also
 * children started before the object was made). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"
#include "wild_pointers.h"

TestSuite(value, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(array, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

static int join_code(mp_process *p)
{
    mp_assert_ok(mp_process_join(p, 20));
    int code = -1000;
    mp_assert_ok(mp_process_exitcode(p, &code));
    mp_process_destroy(p);
    return code;
}

static mp_process *spawn(mp_target_fn fn, void *arg)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = fn, .args = arg}));
    mp_assert_ok(mp_process_start(p));
    return p;
}

Test(value, every_typecode_with_its_c_size)
{
    static const struct {
        char code;
        size_t size;
    } t[] = {{'c', sizeof(char)},
             {'b', sizeof(signed char)},
             {'B', sizeof(unsigned char)},
             {'h', sizeof(short)},
             {'H', sizeof(unsigned short)},
             {'i', sizeof(int)},
             {'I', sizeof(unsigned)},
             {'l', sizeof(long)},
             {'L', sizeof(unsigned long)},
             {'q', sizeof(long long)},
             {'Q', sizeof(unsigned long long)},
             {'f', sizeof(float)},
             {'d', sizeof(double)}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cr_assert_eq(mp_typecode_size(t[i].code), (int)t[i].size, "typecode %c", t[i].code);
        mp_value *v;
        mp_assert_ok(mp_value_create(&v, &(mp_value_opts){.typecode = t[i].code}));
        cr_assert_eq(mp_value_typecode(v), t[i].code);
        int64_t x = -1;
        mp_assert_ok(mp_value_get_i64(v, &x));
        cr_assert_eq(x, 0);
        mp_assert_ok(mp_value_set_i64(v, 100));
        double d = 0;
        mp_assert_ok(mp_value_get_double(v, &d));
        cr_assert_eq(d, 100.0);
        cr_assert_not_null(mp_value_get_lock(v));
        mp_value_destroy(v);
    }
}

Test(value, unknown_typecode_and_bad_input)
{
    mp_value *v = NULL;
    const char bad[] = {'u', 'x', 'D', 0, ' '};
    for (size_t i = 0; i < sizeof bad; i++) {
        mp_assert_rc(mp_value_create(&v, &(mp_value_opts){.typecode = bad[i]}), MP_EINVAL);
        mp_assert_rc(mp_typecode_size(bad[i]), MP_EINVAL);
    }
    cr_assert_null(v);
    mp_assert_rc(mp_value_create(&v, NULL), MP_EINVAL);
    mp_assert_rc(mp_value_create(NULL, &(mp_value_opts){.typecode = 'i'}), MP_EINVAL);
    mp_rlock *r;
    mp_assert_ok(mp_rlock_create(&r, NULL));
    mp_assert_rc(mp_value_create(&v, &(mp_value_opts){.typecode = 'i', .raw = true, .lock = r}),
                 MP_EINVAL);
    mp_lock *l;
    mp_assert_ok(mp_lock_create(&l, NULL));
    mp_assert_rc(mp_value_create(&v, &(mp_value_opts){.typecode = 'i', .lock = (mp_rlock *)l}),
                 MP_EINVAL);
    mp_lock_destroy(l);
    int64_t x;
    mp_assert_rc(mp_value_get_i64(NULL, &x), MP_EINVAL);
    mp_assert_rc(mp_value_set_double(NULL, 1), MP_EINVAL);
    cr_assert_null(mp_value_data(NULL));
    cr_assert_null(mp_value_get_lock(NULL));
    mp_assert_ok(mp_value_create(&v, &(mp_value_opts){.typecode = 'i'}));
    mp_assert_rc(mp_value_get_i64(v, NULL), MP_EINVAL);
    mp_array *as_array = (mp_array *)v; /* the wrong kind of object */
    cr_assert_eq(mp_array_len(as_array), 0);
    mp_assert_rc(mp_array_set_i64(as_array, 0, 1), MP_EINVAL);
    mp_value_destroy(v);
    mp_value_destroy(NULL);
    mp_rlock_destroy(r);
}

Test(value, init_raw_and_shared_lock)
{
    mp_value *v, *w, *raw;
    double pi = 3.25;
    mp_assert_ok(mp_value_create(&v, &(mp_value_opts){.typecode = 'd', .init = &pi}));
    cr_assert_eq(*(double *)mp_value_data(v), 3.25);
    mp_rlock *shared = mp_value_get_lock(v);
    mp_assert_ok(mp_value_create(&w, &(mp_value_opts){.typecode = 'q', .lock = shared}));
    cr_assert_eq(mp_value_get_lock(w), shared);
    mp_assert_ok(mp_value_create(&raw, &(mp_value_opts){.typecode = 'q', .raw = true}));
    cr_assert_null(mp_value_get_lock(raw));
    mp_value_destroy(w); /* does not free the borrowed lock */
    mp_assert_ok(mp_rlock_acquire(shared, 0));
    mp_assert_ok(mp_rlock_release(shared));
    mp_value_destroy(raw);
    mp_value_destroy(v);
}

Test(value, conversions_are_checked)
{
    mp_value *b, *c, *Q, *f, *d, *i;
    mp_assert_ok(mp_value_create(&b, &(mp_value_opts){.typecode = 'b'}));
    mp_assert_ok(mp_value_create(&c, &(mp_value_opts){.typecode = 'c'}));
    mp_assert_ok(mp_value_create(&Q, &(mp_value_opts){.typecode = 'Q'}));
    mp_assert_ok(mp_value_create(&f, &(mp_value_opts){.typecode = 'f'}));
    mp_assert_ok(mp_value_create(&d, &(mp_value_opts){.typecode = 'd'}));
    mp_assert_ok(mp_value_create(&i, &(mp_value_opts){.typecode = 'i'}));
    int64_t x;
    uint64_t u;
    double y;
    mp_assert_ok(mp_value_set_i64(b, -128));
    mp_assert_rc(mp_value_set_i64(b, 128), MP_ERANGE);
    mp_assert_rc(mp_value_set_i64(b, -129), MP_ERANGE);
    mp_assert_ok(mp_value_get_i64(b, &x));
    cr_assert_eq(x, -128); /* unchanged by the failures */
    mp_assert_rc(mp_value_get_u64(b, &u), MP_ERANGE);
    mp_assert_ok(mp_value_set_i64(c, 255));
    mp_assert_rc(mp_value_set_i64(c, -1), MP_ERANGE);
    mp_assert_rc(mp_value_set_u64(c, 256), MP_ERANGE);
    mp_assert_ok(mp_value_set_u64(Q, UINT64_MAX));
    mp_assert_ok(mp_value_get_u64(Q, &u));
    cr_assert_eq(u, UINT64_MAX);
    mp_assert_rc(mp_value_get_i64(Q, &x), MP_ERANGE);
    mp_assert_rc(mp_value_set_i64(Q, -1), MP_ERANGE);
    mp_assert_rc(mp_value_set_double(i, 3.5), MP_EINVAL);
    mp_assert_rc(mp_value_set_double(i, NAN), MP_EINVAL);
    mp_assert_rc(mp_value_set_double(i, 1e12), MP_ERANGE);
    mp_assert_ok(mp_value_set_double(i, -7.0));
    mp_assert_ok(mp_value_get_i64(i, &x));
    cr_assert_eq(x, -7);
    mp_assert_rc(mp_value_set_double(f, 1e300), MP_ERANGE);
    mp_assert_ok(mp_value_set_double(f, 0.5));
    mp_assert_ok(mp_value_get_double(f, &y));
    cr_assert_eq(y, 0.5);
    mp_assert_ok(mp_value_set_double(d, -2.75));
    mp_assert_ok(mp_value_get_i64(d, &x));
    cr_assert_eq(x, -2); /* toward zero */
    mp_assert_rc(mp_value_get_u64(d, &u), MP_ERANGE);
    mp_assert_ok(mp_value_set_double(d, NAN));
    mp_assert_rc(mp_value_get_i64(d, &x), MP_ERANGE);
    mp_assert_ok(mp_value_set_double(d, 1e30));
    mp_assert_rc(mp_value_get_i64(d, &x), MP_ERANGE);
    mp_value *all[] = {b, c, Q, f, d, i};
    for (size_t k = 0; k < 6; k++)
        mp_value_destroy(all[k]);
}

/* A pointer that is no value or array (unmapped, misaligned, outside the
 * heap) is MP_EINVAL (or NULL, 0), never a crash. */
Test(value, wild_pointers_are_einval)
{
    unsigned char stack[64];
    mp_test_wild w;
    mp_test_wild_begin(&w, stack);
    for (size_t i = 0; i < w.n; i++) {
        mp_value *v = w.p[i];
        int64_t x;
        double d;
        cr_assert_eq(mp_value_get_i64(v, &x), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_value_set_double(v, 1), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_value_add_i64(v, 1, &x), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_value_add_double(v, 1, &d), MP_EINVAL, "%s", w.what[i]);
        cr_assert_null(mp_value_data(v), "%s", w.what[i]);
        cr_assert_null(mp_value_get_lock(v), "%s", w.what[i]);
        cr_assert_eq(mp_value_typecode(v), 0, "%s", w.what[i]);
        mp_value_destroy(v);
        mp_value *nv = NULL;
        cr_assert_eq(
            mp_value_create(&nv, &(mp_value_opts){.typecode = 'i', .lock = (mp_rlock *)w.p[i]}),
            MP_EINVAL, "%s", w.what[i]);
        mp_array *a = w.p[i];
        cr_assert_eq(mp_array_get_i64(a, 0, &x), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_array_set_u64(a, 0, 1), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_array_len(a), 0, "%s", w.what[i]);
        cr_assert_null(mp_array_data(a), "%s", w.what[i]);
        cr_assert_null(mp_array_get_lock(a), "%s", w.what[i]);
        cr_assert_eq(mp_array_typecode(a), 0, "%s", w.what[i]);
        mp_array_destroy(a);
    }
    mp_test_wild_end(&w);
}

Test(array, init_len_index_errors)
{
    int init[10];
    for (int k = 0; k < 10; k++)
        init[k] = k;
    mp_array *a, *z, *h;
    mp_assert_ok(mp_array_create(&a, &(mp_array_opts){.typecode = 'i', .len = 10, .init = init}));
    cr_assert_eq(mp_array_len(a), 10);
    cr_assert_eq(mp_array_typecode(a), 'i');
    cr_assert_eq(memcmp(mp_array_data(a), init, sizeof init), 0);
    int64_t x;
    mp_assert_ok(mp_array_get_i64(a, 9, &x));
    cr_assert_eq(x, 9);
    mp_assert_rc(mp_array_get_i64(a, 10, &x), MP_ERANGE);
    mp_assert_rc(mp_array_set_i64(a, 10, 1), MP_ERANGE);
    mp_assert_rc(mp_array_set_double(a, SIZE_MAX, 1), MP_ERANGE);
    mp_assert_ok(mp_array_set_i64(a, 0, INT_MIN));
    mp_assert_rc(mp_array_set_i64(a, 0, (int64_t)INT_MAX + 1), MP_ERANGE);
    cr_assert_not_null(mp_array_get_lock(a));
    mp_assert_ok(mp_array_create(&z, &(mp_array_opts){.typecode = 'd', .len = 0, .raw = true}));
    cr_assert_eq(mp_array_len(z), 0);
    cr_assert_null(mp_array_get_lock(z));
    mp_assert_rc(mp_array_get_double(z, 0, &(double){0}), MP_ERANGE);
    mp_assert_ok(mp_array_create(&h, &(mp_array_opts){.typecode = 'H', .len = 3}));
    uint64_t u = 1;
    mp_assert_ok(mp_array_get_u64(h, 2, &u));
    cr_assert_eq(u, 0);
    mp_assert_rc(mp_array_create(&z, &(mp_array_opts){.typecode = 'q', .len = SIZE_MAX / 2}),
                 MP_ENOMEM);
    mp_assert_rc(mp_array_create(&z, &(mp_array_opts){.typecode = 'u', .len = 1}), MP_EINVAL);
    mp_assert_rc(mp_array_create(&z, NULL), MP_EINVAL);
    mp_array_destroy(h);
    mp_array_destroy(a);
    mp_array_destroy(NULL);
}

typedef struct seed_args {
    mp_value *num;
    mp_array *arr;
} seed_args;

static int negate(const void *arg, size_t len)
{
    (void)len;
    const seed_args *s = arg;
    if (mp_value_set_double(s->num, 3.1415927) != 0)
        return 1;
    int *a = mp_array_data(s->arr);
    for (size_t i = 0; i < mp_array_len(s->arr); i++)
        a[i] = -a[i];
    return 0;
}

Test(value, child_writes_are_seen_by_the_parent)
{
    seed_args s;
    int init[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    mp_assert_ok(mp_value_create(&s.num, &(mp_value_opts){.typecode = 'd'}));
    mp_assert_ok(
        mp_array_create(&s.arr, &(mp_array_opts){.typecode = 'i', .len = 10, .init = init}));
    cr_assert_eq(join_code(spawn(negate, &s)), 0);
    double d;
    mp_assert_ok(mp_value_get_double(s.num, &d));
    cr_assert_eq(d, 3.1415927);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(((int *)mp_array_data(s.arr))[i], -i);
    mp_array_destroy(s.arr);
    mp_value_destroy(s.num);
}

/* A spawned child runs a fresh image of the program, in which the
 * library's tables may sit elsewhere: objects must hold nothing but heap
 * pointers. */
static int read_and_negate(const void *arg, size_t len)
{
    if (len != sizeof(seed_args))
        return 1;
    const seed_args *s = arg;
    double d = 0;
    int64_t x = 0;
    if (mp_value_typecode(s->num) != 'd' || mp_value_get_double(s->num, &d) != 0 || d != 2.5)
        return 2;
    if (mp_array_typecode(s->arr) != 'i' || mp_array_get_i64(s->arr, 3, &x) != 0 || x != 3)
        return 3;
    return mp_value_set_double(s->num, -d) == 0 && mp_array_set_i64(s->arr, 3, -x) == 0 ? 0 : 4;
}

Test(value, spawned_child_uses_values_of_the_parent)
{
    seed_args s;
    int init[4] = {0, 1, 2, 3};
    mp_assert_ok(
        mp_value_create(&s.num, &(mp_value_opts){.typecode = 'd', .init = &(double){2.5}}));
    mp_assert_ok(
        mp_array_create(&s.arr, &(mp_array_opts){.typecode = 'i', .len = 4, .init = init}));
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = read_and_negate,
                                                          .args = &s,
                                                          .args_len = sizeof s,
                                                          .start_method = MP_START_SPAWN}));
    mp_assert_ok(mp_process_start(p));
    cr_assert_eq(join_code(p), 0);
    double d;
    int64_t x;
    mp_assert_ok(mp_value_get_double(s.num, &d));
    mp_assert_ok(mp_array_get_i64(s.arr, 3, &x));
    cr_assert(d == -2.5 && x == -3);
    mp_array_destroy(s.arr);
    mp_value_destroy(s.num);
}

/* The mailbox through which the parent hands the child a pointer to a value
 * made after the child started. */
typedef struct mailbox {
    mp_value *box; /* 'Q': the pointer, as an integer */
    mp_event *ready;
} mailbox;

static int read_late_value(const void *arg, size_t len)
{
    (void)len;
    const mailbox *m = arg;
    if (mp_event_wait(m->ready, 20) != 0)
        return 1;
    uint64_t bits;
    if (mp_value_get_u64(m->box, &bits) != 0)
        return 2;
    mp_value *late = (mp_value *)(uintptr_t)bits;
    int64_t x = 0;
    if (mp_value_get_i64(late, &x) != 0 || x != 4242)
        return 3;
    return mp_value_set_i64(late, 4343) == 0 ? 0 : 4;
}

Test(value, made_after_the_child_started_is_seen_by_it)
{
    mailbox m;
    mp_assert_ok(mp_value_create(&m.box, &(mp_value_opts){.typecode = 'Q'}));
    mp_assert_ok(mp_event_create(&m.ready, NULL));
    mp_process *p = spawn(read_late_value, &m);
    mp_value *late;
    mp_assert_ok(mp_value_create(&late, &(mp_value_opts){.typecode = 'i', .init = &(int){4242}}));
    mp_assert_ok(mp_value_set_u64(m.box, (uint64_t)(uintptr_t)late));
    mp_assert_ok(mp_event_set(m.ready));
    cr_assert_eq(join_code(p), 0);
    int64_t x;
    mp_assert_ok(mp_value_get_i64(late, &x));
    cr_assert_eq(x, 4343);
    mp_value_destroy(late);
    mp_event_destroy(m.ready);
    mp_value_destroy(m.box);
}

static int increment(const void *arg, size_t len)
{
    (void)len;
    mp_value *v = (mp_value *)arg;
    mp_rlock *l = mp_value_get_lock(v);
    for (int i = 0; i < 20000; i++) {
        if (mp_rlock_acquire(l, 20) != 0)
            return 1;
        (*(int *)mp_value_data(v))++;
        mp_rlock_release(l);
    }
    return 0;
}

Test(value, increments_under_get_lock_are_exact)
{
    mp_value *v;
    mp_assert_ok(mp_value_create(&v, &(mp_value_opts){.typecode = 'i'}));
    mp_process *p = spawn(increment, v), *q = spawn(increment, v);
    cr_assert_eq(increment(v, 0), 0);
    cr_assert_eq(join_code(p), 0);
    cr_assert_eq(join_code(q), 0);
    cr_assert_eq(*(int *)mp_value_data(v), 60000);
    mp_value_destroy(v);
}

static mp_value *added;

static void *add_1000(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        if (mp_value_add_i64(added, 1, NULL) < 0)
            return (void *)1;
    return NULL;
}

Test(value, atomic_adds)
{
    /* Raw (no lock) from several threads: no add is lost. */
    mp_assert_ok(mp_value_create(&added, &(mp_value_opts){.typecode = 'i', .raw = true}));
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, add_1000, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        cr_assert_null(res);
    }
    int64_t x;
    mp_assert_ok(mp_value_get_i64(added, &x));
    cr_assert_eq(x, 4000);
    mp_value_destroy(added);
    /* Ranges: the item's type and int64; a failed add changes nothing. */
    mp_value *v;
    mp_assert_ok(
        mp_value_create(&v, &(mp_value_opts){.typecode = 'B', .init = &(unsigned char){250}}));
    mp_assert_rc(mp_value_add_i64(v, 6, NULL), MP_ERANGE);
    mp_assert_rc(mp_value_add_i64(v, -251, NULL), MP_ERANGE);
    mp_assert_ok(mp_value_add_i64(v, 5, &x));
    cr_assert_eq(x, 255);
    mp_assert_rc(mp_value_add_double(v, 1.0, NULL), MP_EINVAL);
    mp_value_destroy(v);
    mp_assert_ok(
        mp_value_create(&v, &(mp_value_opts){.typecode = 'q', .init = &(long long){LLONG_MAX}}));
    mp_assert_rc(mp_value_add_i64(v, 1, NULL), MP_ERANGE);
    mp_value_destroy(v);
    /* Floats: the result as stored ('f' rounds), beyond float's range refused. */
    mp_assert_ok(mp_value_create(&v, &(mp_value_opts){.typecode = 'f'}));
    double d;
    mp_assert_ok(mp_value_add_double(v, 0.1, &d));
    cr_assert_eq(d, (double)0.1f);
    mp_assert_rc(mp_value_add_double(v, 1e300, NULL), MP_ERANGE);
    mp_assert_rc(mp_value_add_i64(v, 1, NULL), MP_EINVAL);
    mp_value_destroy(v);
    mp_assert_rc(mp_value_add_i64(NULL, 1, NULL), MP_EINVAL);
    mp_assert_rc(mp_value_add_double(NULL, 1, NULL), MP_EINVAL);
}
