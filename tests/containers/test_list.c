/* Tests of mp_list: every call, Python's index rules, errors, processes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(list, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

static mp_list *new_list(void)
{
    mp_list *l;
    mp_assert_ok(mp_list_create(&l, NULL));
    return l;
}

static int64_t at(const mp_list *l, long i)
{
    int64_t v = -999;
    mp_assert_ok(mp_list_get_int64(l, i, &v));
    return v;
}

static size_t len_of(const mp_list *l)
{
    size_t n = 999;
    mp_assert_ok(mp_list_len(l, &n));
    return n;
}

/* A list 0, 1, ..., n-1. */
static mp_list *range_list(int n)
{
    mp_list *l = new_list();
    for (int i = 0; i < n; i++)
        mp_assert_ok(mp_list_append(l, &MP_ITEM_INT64(i)));
    return l;
}

Test(list, create_and_destroy)
{
    mp_list *l;
    mp_assert_rc(mp_list_create(NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_list_create(&l, &(mp_list_opts){.reserved = 1}), MP_EINVAL);
    mp_assert_ok(mp_list_create(&l, &(mp_list_opts){0}));
    cr_assert_eq(len_of(l), 0);
    mp_list_destroy(l);
    mp_list_destroy(NULL);
}

Test(list, append_get_negative_indices)
{
    mp_list *l = range_list(100);
    cr_assert_eq(len_of(l), 100);
    cr_assert_eq(at(l, 0), 0);
    cr_assert_eq(at(l, 99), 99);
    cr_assert_eq(at(l, -1), 99);
    cr_assert_eq(at(l, -100), 0);
    int64_t v;
    mp_assert_rc(mp_list_get_int64(l, 100, &v), MP_ERANGE);
    mp_assert_rc(mp_list_get_int64(l, -101, &v), MP_ERANGE);
    mp_assert_ok(mp_list_append(l, &MP_ITEM_STR("text")));
    mp_assert_ok(mp_list_append(l, &MP_ITEM_DOUBLE(0.5)));
    char *s;
    mp_assert_ok(mp_list_get_str(l, -2, &s));
    cr_assert_str_eq(s, "text");
    free(s);
    double d;
    mp_assert_ok(mp_list_get_double(l, -1, &d));
    cr_assert_eq(d, 0.5);
    mp_assert_rc(mp_list_get_int64(l, -2, &v), MP_EPROTO);
    mp_assert_rc(mp_list_get_double(l, 0, &d), MP_EPROTO);
    mp_assert_rc(mp_list_get_str(l, 0, &s), MP_EPROTO);
    void *p;
    size_t n;
    mp_item_type t;
    mp_assert_ok(mp_list_get(l, 100, &p, &n, &t));
    cr_assert(n == 4 && t == MP_ITEM_STR && strcmp(p, "text") == 0);
    free(p);
    char buf[2];
    mp_assert_rc(mp_list_get_into(l, 100, buf, sizeof(buf), &n, NULL), MP_EMSGSIZE);
    cr_assert_eq(n, 4);
    mp_assert_ok(mp_list_get_into(l, 0, &v, sizeof(v), &n, &t));
    cr_assert(n == 8 && t == MP_ITEM_INT64 && v == 0);
    mp_list_destroy(l);
}

Test(list, set_insert_extend)
{
    mp_list *l = range_list(3);
    mp_assert_ok(mp_list_set(l, -1, &MP_ITEM_INT64(20)));
    mp_assert_rc(mp_list_set(l, 3, &MP_ITEM_INT64(0)), MP_ERANGE);
    mp_assert_ok(mp_list_insert(l, 0, &MP_ITEM_INT64(-1)));   /* front */
    mp_assert_ok(mp_list_insert(l, 100, &MP_ITEM_INT64(30))); /* past the end: append */
    mp_assert_ok(mp_list_insert(l, -1, &MP_ITEM_INT64(25)));  /* before the last */
    mp_assert_ok(mp_list_insert(l, -100, &MP_ITEM_INT64(-2)));
    static const int64_t want[] = {-2, -1, 0, 1, 20, 25, 30};
    cr_assert_eq(len_of(l), 7);
    for (long i = 0; i < 7; i++)
        cr_assert_eq(at(l, i), want[i], "l[%ld] = %lld", i, (long long)at(l, i));
    mp_item more[20];
    for (int i = 0; i < 20; i++)
        more[i] = MP_ITEM_BYTES("xy", 2);
    mp_assert_ok(mp_list_extend(l, more, 20));
    mp_assert_ok(mp_list_extend(l, NULL, 0));
    cr_assert_eq(len_of(l), 27);
    /* One bad item: nothing of the extend is applied. */
    more[10] = (mp_item){.data = NULL, .len = 3};
    mp_assert_rc(mp_list_extend(l, more, 20), MP_EINVAL);
    cr_assert_eq(len_of(l), 27);
    mp_list_destroy(l);
}

Test(list, pop_remove_clear)
{
    mp_list *l = range_list(5);
    void *p;
    size_t n;
    mp_item_type t;
    mp_assert_ok(mp_list_pop(l, -1, &p, &n, &t));
    cr_assert(t == MP_ITEM_INT64 && *(int64_t *)p == 4);
    free(p);
    mp_assert_ok(mp_list_pop(l, 0, NULL, NULL, NULL));
    cr_assert_eq(len_of(l), 3);
    cr_assert_eq(at(l, 0), 1);
    mp_assert_rc(mp_list_pop(l, 3, NULL, NULL, NULL), MP_ERANGE);
    mp_assert_ok(mp_list_remove(l, &MP_ITEM_INT64(2)));
    mp_assert_rc(mp_list_remove(l, &MP_ITEM_INT64(2)), MP_ENOENT);
    mp_assert_rc(mp_list_remove(l, &MP_ITEM_DOUBLE(1.0)), MP_ENOENT); /* type counts */
    cr_assert_eq(len_of(l), 2);
    mp_assert_ok(mp_list_clear(l));
    cr_assert_eq(len_of(l), 0);
    mp_assert_rc(mp_list_pop(l, -1, NULL, NULL, NULL), MP_ERANGE);
    mp_assert_ok(mp_list_append(l, &MP_ITEM_STR("again")));
    cr_assert_eq(len_of(l), 1);
    mp_list_destroy(l);
}

Test(list, slices_clamp_like_python)
{
    mp_list *l = range_list(10);
    static const struct {
        long start, stop;
        size_t n;
        int64_t first;
    } cases[] = {{2, 5, 3, 2}, {-3, MP_LIST_END, 3, 7}, {0, 100, 10, 0}, {-100, 2, 2, 0},
                 {5, 2, 0, 0}, {-1, -1, 0, 0}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        mp_snapshot *s;
        mp_assert_ok(mp_list_slice(l, cases[c].start, cases[c].stop, &s));
        cr_assert_eq(mp_snapshot_len(s), cases[c].n, "case %zu", c);
        mp_item v, k;
        if (cases[c].n) {
            mp_assert_ok(mp_snapshot_value(s, 0, &v));
            cr_assert_eq(*(const int64_t *)v.data, cases[c].first);
            mp_assert_rc(mp_snapshot_key(s, 0, &k), MP_ENOENT);
        }
        mp_snapshot_destroy(s);
    }
    mp_assert_rc(mp_list_slice(l, 0, 1, NULL), MP_EINVAL);
    mp_list_destroy(l);
}

static int by_length_desc(const mp_item *a, const mp_item *b, void *user)
{
    (void)user;
    return a->len < b->len ? 1 : a->len > b->len ? -1 : 0;
}

Test(list, sort_default_and_comparator_stable)
{
    mp_list *l = new_list();
    static const int64_t in[] = {5, -1, 3, 3, 10, 0};
    for (size_t i = 0; i < 6; i++)
        mp_assert_ok(mp_list_append(l, &MP_ITEM_INT64(in[i])));
    mp_assert_ok(mp_list_append(l, &MP_ITEM_DOUBLE(2.5)));
    mp_assert_ok(mp_list_sort(l, NULL, NULL));
    static const int64_t want[] = {-1, 0};
    cr_assert_eq(at(l, 0), want[0]);
    cr_assert_eq(at(l, 1), want[1]);
    double d;
    mp_assert_ok(mp_list_get_double(l, 2, &d));
    cr_assert_eq(d, 2.5);
    cr_assert_eq(at(l, -1), 10);
    mp_assert_ok(mp_list_clear(l));
    const char *words[] = {"bb", "a", "cc", "ddd", "e"};
    for (size_t i = 0; i < 5; i++)
        mp_assert_ok(mp_list_append(l, &MP_ITEM_STR(words[i])));
    mp_assert_ok(mp_list_sort(l, by_length_desc, NULL));
    const char *sorted[] = {"ddd", "bb", "cc", "a", "e"}; /* stable among equals */
    for (long i = 0; i < 5; i++) {
        char *s;
        mp_assert_ok(mp_list_get_str(l, i, &s));
        cr_assert_str_eq(s, sorted[i]);
        free(s);
    }
    mp_list_destroy(l);
}

Test(list, bad_input)
{
    mp_list *l = range_list(1);
    char fake[128] = {0};
    mp_list *foreign = (mp_list *)(void *)fake;
    int64_t v;
    mp_assert_rc(mp_list_append(NULL, &MP_ITEM_INT64(1)), MP_EINVAL);
    mp_assert_rc(mp_list_append(foreign, &MP_ITEM_INT64(1)), MP_EINVAL);
    mp_assert_rc(mp_list_append(l, NULL), MP_EINVAL);
    mp_assert_rc(mp_list_append(l, &MP_ITEM_BYTES("x", MP_VALUE_MAX + 1)), MP_EMSGSIZE);
    mp_assert_rc(mp_list_append(l, &(mp_item){"x", 1, MP_ITEM_DOUBLE}), MP_EINVAL);
    mp_assert_rc(mp_list_get_int64(foreign, 0, &v), MP_EINVAL);
    mp_assert_rc(mp_list_get_int64(l, 0, NULL), MP_EINVAL);
    mp_assert_rc(mp_list_insert(l, 0, NULL), MP_EINVAL);
    mp_assert_rc(mp_list_set(foreign, 0, &MP_ITEM_INT64(1)), MP_EINVAL);
    mp_assert_rc(mp_list_len(l, NULL), MP_EINVAL);
    mp_assert_rc(mp_list_sort(foreign, NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_list_remove(l, NULL), MP_EINVAL);
    mp_list_destroy(foreign);
    cr_assert_eq(len_of(l), 1);
    mp_list_destroy(l);
}

static mp_list *shared;

static int append_many(const void *arg, size_t len)
{
    (void)len;
    int64_t base = *(const int *)arg * 1000;
    for (int64_t i = 0; i < 300; i++)
        if (mp_list_append(shared, &MP_ITEM_INT64(base + i)) < 0)
            return 1;
    return 0;
}

Test(list, processes_append_concurrently)
{
    shared = new_list();
    mp_process *p[3];
    for (int i = 0; i < 3; i++) {
        mp_assert_ok(mp_process_create(
            &p[i], &(mp_process_opts){.target = append_many, .args = &i, .args_len = sizeof i}));
        mp_assert_ok(mp_process_start(p[i]));
    }
    for (int i = 0; i < 3; i++) {
        int code = -1;
        mp_assert_ok(mp_process_join(p[i], 20));
        mp_assert_ok(mp_process_exitcode(p[i], &code));
        cr_assert_eq(code, 0);
        mp_process_destroy(p[i]);
    }
    cr_assert_eq(len_of(shared), 900);
    mp_assert_ok(mp_list_sort(shared, NULL, NULL));
    for (long i = 0; i < 900; i++)
        cr_assert_eq(at(shared, i), (i / 300) * 1000 + i % 300);
    mp_list_destroy(shared);
}

static int die_in_compare(const mp_item *a, const mp_item *b, void *user)
{
    (void)a;
    (void)b;
    (void)user;
    raise(SIGKILL);
    return 0;
}

static int sort_and_die(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_list_sort(shared, die_in_compare, NULL);
    return 3;
}

Test(list, killed_inside_sort_leaves_the_list_whole)
{
    shared = range_list(10);
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = sort_and_die}));
    mp_assert_ok(mp_process_start(p));
    int code = 0;
    mp_assert_ok(mp_process_join(p, 20));
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, -SIGKILL);
    mp_process_destroy(p);
    cr_assert_eq(len_of(shared), 10);
    for (long i = 0; i < 10; i++)
        cr_assert_eq(at(shared, i), i);
    mp_assert_ok(mp_list_append(shared, &MP_ITEM_INT64(10)));
    cr_assert_eq(len_of(shared), 11);
    mp_list_destroy(shared);
}
