/* Every operation of the manager's dicts, lists and namespaces, written
 * once for every backend. The suite runs on the backend named by
 * MP_TEST_MANAGER_URL: unset or "local" for the shared heap, "redis" for a
 * redis-server the suite starts itself (ctest runs it both ways:
 * test_manager_objects and test_manager_objects_redis), or any other
 * manager URL. Orders that only the local backend promises (insertion
 * order of dict snapshots) are not asserted here. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_test.h"
#include "mp_test_manager.h"
#include "redis_server.h"

static mp_test_redis srv;

static void objects_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(objects, .init = mp_test_fd_setup, .fini = objects_fini, .timeout = 60);

static mp_manager *open_manager(void)
{
    const char *url = getenv("MP_TEST_MANAGER_URL");
    if (url && strcmp(url, "redis") == 0) {
        cr_assert(mp_test_redis_start(&srv, "pw") == 0, "cannot start redis-server: %s", srv.error);
        url = srv.url;
    }
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, url && *url ? url : "local"));
    if (srv.pid)
        cr_assert_str_eq(mp_manager_backend(m), "redis");
    return m;
}

static int64_t dict_int(mp_dict *d, const char *key)
{
    int64_t v = -1;
    mp_assert_ok(mp_dict_get_int64(d, key, &v));
    return v;
}

Test(objects, dict_set_get_and_types)
{
    mp_manager *m = open_manager();
    mp_dict *d;
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_ok(mp_dict_set_int64(d, "i", -5));
    mp_assert_ok(mp_dict_set_double(d, "f", 2.5));
    mp_assert_ok(mp_dict_set_str(d, "s", "hello"));
    mp_assert_ok(mp_dict_set(d, "b\0k", 3, "x\0y", 3));
    mp_assert_ok(mp_dict_set(d, "", 0, NULL, 0)); /* empty key and value */
    cr_assert_eq(dict_int(d, "i"), -5);
    double f;
    mp_assert_ok(mp_dict_get_double(d, "f", &f));
    cr_assert_eq(f, 2.5);
    char *s;
    mp_assert_ok(mp_dict_get_str(d, "s", &s));
    cr_assert_str_eq(s, "hello");
    free(s);
    void *p;
    size_t n;
    mp_item_type t;
    mp_assert_ok(mp_dict_get(d, "b\0k", 3, &p, &n, &t));
    cr_assert(n == 3 && memcmp(p, "x\0y", 3) == 0 && t == MP_ITEM_BYTES);
    cr_assert_eq(((char *)p)[3], '\0');
    free(p);
    mp_assert_ok(mp_dict_get(d, "", 0, &p, &n, NULL));
    cr_assert_eq(n, 0);
    free(p);
    /* Typed getters check the type. */
    mp_assert_rc(mp_dict_get_int64(d, "s", &(int64_t){0}), MP_EPROTO);
    mp_assert_rc(mp_dict_get_double(d, "i", &f), MP_EPROTO);
    mp_assert_rc(mp_dict_get_str(d, "i", &s), MP_EPROTO);
    mp_assert_rc(mp_dict_get_int64(d, "absent", &(int64_t){0}), MP_ENOENT);
    /* get_into: exact size, too small, and the size needed. */
    char buf[8];
    mp_assert_ok(mp_dict_get_into(d, "s", 1, buf, sizeof(buf), &n, &t));
    cr_assert(n == 5 && memcmp(buf, "hello", 5) == 0 && t == MP_ITEM_STR);
    mp_assert_rc(mp_dict_get_into(d, "s", 1, buf, 2, &n, NULL), MP_EMSGSIZE);
    cr_assert_eq(n, 5);
    /* Replace keeps one entry. */
    mp_assert_ok(mp_dict_set_int64(d, "i", 6));
    cr_assert_eq(dict_int(d, "i"), 6);
    mp_assert_ok(mp_dict_len(d, &n));
    cr_assert_eq(n, 5);
    mp_dict_destroy(d);
    mp_manager_close(m);
}

Test(objects, dict_contains_delete_pop_default)
{
    mp_manager *m = open_manager();
    mp_dict *d;
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_ok(mp_dict_set_int64(d, "a", 1));
    mp_assert_rc(mp_dict_contains(d, "a", 1), 1);
    mp_assert_rc(mp_dict_contains(d, "z", 1), 0);
    void *p;
    size_t n;
    mp_item_type t;
    mp_assert_rc(mp_dict_get_default(d, "z", 1, &MP_ITEM_STR("dflt"), &p, &n, &t), 0);
    cr_assert(n == 4 && memcmp(p, "dflt", 4) == 0 && t == MP_ITEM_STR);
    free(p);
    mp_assert_rc(mp_dict_get_default(d, "a", 1, &MP_ITEM_STR("dflt"), &p, &n, &t), 1);
    cr_assert_eq(t, MP_ITEM_INT64);
    free(p);
    mp_assert_ok(mp_dict_pop(d, "a", 1, &p, &n, &t));
    cr_assert(n == 8 && t == MP_ITEM_INT64 && *(int64_t *)p == 1);
    free(p);
    p = NULL;
    mp_assert_rc(mp_dict_pop(d, "a", 1, &p, &n, &t), MP_ENOENT);
    cr_assert_null(p);
    mp_assert_ok(mp_dict_set_int64(d, "b", 2));
    mp_assert_ok(mp_dict_delete(d, "b", 1));
    mp_assert_rc(mp_dict_delete(d, "b", 1), MP_ENOENT);
    /* setdefault: inserts once, then returns what is there. */
    mp_assert_rc(mp_dict_setdefault(d, "c", 1, &MP_ITEM_INT64(3), &p, &n, &t), 1);
    cr_assert(t == MP_ITEM_INT64 && *(int64_t *)p == 3);
    free(p);
    mp_assert_rc(mp_dict_setdefault(d, "c", 1, &MP_ITEM_INT64(9), &p, &n, &t), 0);
    cr_assert_eq(*(int64_t *)p, 3);
    free(p);
    mp_assert_rc(mp_dict_setdefault(d, "e", 1, &MP_ITEM_STR("x"), NULL, NULL, NULL), 1);
    mp_assert_ok(mp_dict_len(d, &n));
    cr_assert_eq(n, 2);
    mp_assert_ok(mp_dict_clear(d));
    mp_assert_ok(mp_dict_len(d, &n));
    cr_assert_eq(n, 0);
    mp_dict_destroy(d);
    mp_manager_close(m);
}

static int double_it(mp_dict_change *u, void *user)
{
    (void)user;
    if (!u->found)
        return MP_DICT_KEEP;
    int64_t v;
    memcpy(&v, u->old, sizeof(v));
    if (v >= 100)
        return MP_DICT_DELETE;
    static int64_t out;
    out = v * 2;
    u->new_value = MP_ITEM_INT64(out);
    u->new_value.data = &out;
    return MP_DICT_STORE;
}

static int refuse(mp_dict_change *u, void *user)
{
    (void)u;
    (void)user;
    return (-ECANCELED);
}

Test(objects, dict_update_with_and_add)
{
    mp_manager *m = open_manager();
    mp_dict *d;
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    int64_t r;
    mp_assert_ok(mp_dict_add_int64(d, "n", 5, &r));
    cr_assert_eq(r, 5);
    mp_assert_ok(mp_dict_add_int64(d, "n", -7, &r));
    cr_assert_eq(r, -2);
    mp_assert_ok(mp_dict_set_int64(d, "max", INT64_MAX));
    mp_assert_rc(mp_dict_add_int64(d, "max", 1, NULL), MP_EOVERFLOW);
    cr_assert_eq(dict_int(d, "max"), INT64_MAX);
    mp_assert_ok(mp_dict_set_str(d, "s", "x"));
    mp_assert_rc(mp_dict_add_int64(d, "s", 1, NULL), MP_EPROTO);
    mp_assert_rc(mp_dict_update_with(d, "absent", 6, double_it, NULL), MP_DICT_KEEP);
    mp_assert_ok(mp_dict_set_int64(d, "v", 60));
    mp_assert_rc(mp_dict_update_with(d, "v", 1, double_it, NULL), MP_DICT_STORE);
    cr_assert_eq(dict_int(d, "v"), 120);
    mp_assert_rc(mp_dict_update_with(d, "v", 1, double_it, NULL), MP_DICT_DELETE);
    mp_assert_rc(mp_dict_contains(d, "v", 1), 0);
    mp_assert_ok(mp_dict_set_int64(d, "v", 1));
    mp_assert_rc(mp_dict_update_with(d, "v", 1, refuse, NULL), (-ECANCELED));
    cr_assert_eq(dict_int(d, "v"), 1);
    mp_dict_destroy(d);
    mp_manager_close(m);
}

/* The snapshot's entry whose key is k, or -1. */
static long find_key(const mp_snapshot *s, const char *k)
{
    for (size_t i = 0; i < mp_snapshot_len(s); i++) {
        mp_item key;
        mp_assert_ok(mp_snapshot_key(s, i, &key));
        if (key.len == strlen(k) && memcmp(key.data, k, key.len) == 0)
            return (long)i;
    }
    return -1;
}

Test(objects, dict_snapshots_update_and_repr)
{
    mp_manager *m = open_manager();
    mp_dict *d, *d2;
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_rc(mp_manager_dict(m, "d2", &d2), 1);
    mp_assert_ok(mp_dict_set_int64(d, "a", 1));
    mp_assert_ok(mp_dict_set_str(d, "b", "two"));
    mp_snapshot *s;
    mp_assert_ok(mp_dict_items(d, &s));
    cr_assert_eq(mp_snapshot_len(s), 2);
    long i = find_key(s, "b");
    cr_assert_geq(i, 0);
    mp_item v;
    mp_assert_ok(mp_snapshot_value(s, (size_t)i, &v));
    cr_assert(v.type == MP_ITEM_STR && v.len == 3 && memcmp(v.data, "two", 3) == 0);
    mp_snapshot_destroy(s);
    mp_assert_ok(mp_dict_keys(d, &s));
    cr_assert_eq(mp_snapshot_len(s), 2);
    cr_assert_geq(find_key(s, "a"), 0);
    mp_assert_rc(mp_snapshot_value(s, 0, &v), MP_ENOENT);
    mp_snapshot_destroy(s);
    mp_assert_ok(mp_dict_values(d, &s));
    cr_assert_eq(mp_snapshot_len(s), 2);
    mp_snapshot_destroy(s);
    mp_assert_ok(mp_dict_update(d2, d));
    cr_assert_eq(dict_int(d2, "a"), 1);
    mp_assert_ok(mp_dict_delete(d, "b", 1));
    char *r;
    mp_assert_ok(mp_dict_repr(d, &r));
    cr_assert_str_eq(r, "{'a': 1}");
    free(r);
    mp_assert_ok(mp_dict_clear(d));
    mp_assert_ok(mp_dict_items(d, &s));
    cr_assert_eq(mp_snapshot_len(s), 0);
    mp_snapshot_destroy(s);
    mp_dict_destroy(d);
    mp_dict_destroy(d2);
    mp_manager_close(m);
}

static int64_t list_int(mp_list *l, long i)
{
    int64_t v = -1;
    mp_assert_ok(mp_list_get_int64(l, i, &v));
    return v;
}

static size_t list_len(mp_list *l)
{
    size_t n = 0;
    mp_assert_ok(mp_list_len(l, &n));
    return n;
}

Test(objects, list_append_insert_set_get)
{
    mp_manager *m = open_manager();
    mp_list *l;
    mp_assert_rc(mp_manager_list(m, "l", &l), 1);
    mp_assert_ok(mp_list_append(l, &MP_ITEM_INT64(1)));
    mp_item more[] = {MP_ITEM_INT64(2), MP_ITEM_INT64(3)};
    mp_assert_ok(mp_list_extend(l, more, 2));
    mp_assert_ok(mp_list_extend(l, NULL, 0));
    mp_assert_ok(mp_list_insert(l, 0, &MP_ITEM_INT64(0)));     /* [0 1 2 3] */
    mp_assert_ok(mp_list_insert(l, 2, &MP_ITEM_INT64(15)));    /* [0 1 15 2 3] */
    mp_assert_ok(mp_list_insert(l, -1, &MP_ITEM_INT64(25)));   /* [0 1 15 2 25 3] */
    mp_assert_ok(mp_list_insert(l, 100, &MP_ITEM_INT64(4)));   /* at the end */
    mp_assert_ok(mp_list_insert(l, -100, &MP_ITEM_INT64(-1))); /* at the front */
    static const int64_t want[] = {-1, 0, 1, 15, 2, 25, 3, 4};
    cr_assert_eq(list_len(l), 8);
    for (long i = 0; i < 8; i++)
        cr_assert_eq(list_int(l, i), want[i], "item %ld", i);
    cr_assert_eq(list_int(l, -1), 4);
    mp_assert_ok(mp_list_set(l, -2, &MP_ITEM_STR("three")));
    char *s;
    mp_assert_ok(mp_list_get_str(l, 6, &s));
    cr_assert_str_eq(s, "three");
    free(s);
    mp_assert_rc(mp_list_get_int64(l, 6, &(int64_t){0}), MP_EPROTO);
    mp_assert_rc(mp_list_get_int64(l, 8, &(int64_t){0}), MP_ERANGE);
    mp_assert_rc(mp_list_get_int64(l, -9, &(int64_t){0}), MP_ERANGE);
    mp_assert_rc(mp_list_set(l, 8, &MP_ITEM_INT64(0)), MP_ERANGE);
    mp_assert_ok(mp_list_set(l, 0, &MP_ITEM_DOUBLE(0.5)));
    double f;
    mp_assert_ok(mp_list_get_double(l, 0, &f));
    cr_assert_eq(f, 0.5);
    char buf[4];
    size_t n;
    mp_item_type t;
    mp_assert_rc(mp_list_get_into(l, 6, buf, 2, &n, &t), MP_EMSGSIZE);
    cr_assert_eq(n, 5);
    void *p;
    mp_assert_ok(mp_list_get(l, 6, &p, &n, &t));
    cr_assert(n == 5 && t == MP_ITEM_STR);
    free(p);
    mp_list_destroy(l);
    mp_manager_close(m);
}

Test(objects, list_pop_remove_clear_slice)
{
    mp_manager *m = open_manager();
    mp_list *l;
    mp_assert_rc(mp_manager_list(m, "l", &l), 1);
    void *p;
    size_t n;
    mp_item_type t;
    mp_assert_rc(mp_list_pop(l, -1, &p, &n, &t), MP_ERANGE); /* empty */
    for (int64_t i = 0; i < 6; i++)
        mp_assert_ok(mp_list_append(l, &MP_ITEM_INT64(i)));
    mp_assert_ok(mp_list_pop(l, -1, &p, &n, &t));
    cr_assert_eq(*(int64_t *)p, 5);
    free(p);
    mp_assert_ok(mp_list_pop(l, 0, &p, &n, &t));
    cr_assert_eq(*(int64_t *)p, 0);
    free(p);
    mp_assert_ok(mp_list_pop(l, 1, &p, &n, &t)); /* [1 2 3 4] -> 2 */
    cr_assert_eq(*(int64_t *)p, 2);
    free(p);
    mp_assert_ok(mp_list_pop(l, -2, NULL, NULL, NULL)); /* [1 3 4] -> 3, discarded */
    mp_assert_rc(mp_list_pop(l, 5, &p, &n, &t), MP_ERANGE);
    cr_assert_eq(list_len(l), 2);
    mp_assert_ok(mp_list_append(l, &MP_ITEM_STR("x")));
    mp_assert_ok(mp_list_append(l, &MP_ITEM_BYTES("x", 1)));
    mp_assert_ok(mp_list_remove(l, &MP_ITEM_BYTES("x", 1))); /* type counts */
    mp_assert_rc(mp_list_remove(l, &MP_ITEM_BYTES("x", 1)), MP_ENOENT);
    cr_assert_eq(list_len(l), 3); /* [1 4 'x'] */
    mp_snapshot *s;
    static const struct {
        long start, stop;
        size_t n;
    } cases[] = {{0, MP_LIST_END, 3},
                 {1, 2, 1},
                 {-2, MP_LIST_END, 2},
                 {0, -1, 2},
                 {0, 0, 0},
                 {2, 1, 0},
                 {-100, 100, 3},
                 {0, -5, 0},
                 {5, 9, 0},
                 {LONG_MIN, LONG_MIN, 0}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        mp_assert_ok(mp_list_slice(l, cases[k].start, cases[k].stop, &s));
        cr_assert_eq(mp_snapshot_len(s), cases[k].n, "slice [%ld:%ld]", cases[k].start,
                     cases[k].stop);
        mp_snapshot_destroy(s);
    }
    mp_assert_ok(mp_list_slice(l, 1, MP_LIST_END, &s));
    mp_item v;
    mp_assert_ok(mp_snapshot_value(s, 0, &v));
    cr_assert(v.type == MP_ITEM_INT64 && *(const int64_t *)v.data == 4);
    mp_assert_ok(mp_snapshot_value(s, 1, &v));
    cr_assert(v.type == MP_ITEM_STR && v.len == 1 && ((const char *)v.data)[1] == '\0');
    mp_snapshot_destroy(s);
    mp_assert_ok(mp_list_clear(l));
    cr_assert_eq(list_len(l), 0);
    mp_list_destroy(l);
    mp_manager_close(m);
}

static int by_len_desc(const mp_item *a, const mp_item *b, void *user)
{
    ++*(int *)user;
    return a->len < b->len ? 1 : a->len > b->len ? -1 : 0;
}

Test(objects, list_sort)
{
    mp_manager *m = open_manager();
    mp_list *l;
    mp_assert_rc(mp_manager_list(m, "l", &l), 1);
    mp_assert_ok(mp_list_sort(l, NULL, NULL)); /* empty */
    mp_item in[] = {MP_ITEM_STR("b"),      MP_ITEM_INT64(3),  MP_ITEM_DOUBLE(1.5),
                    MP_ITEM_BYTES("z", 1), MP_ITEM_INT64(-2), MP_ITEM_STR("a")};
    mp_assert_ok(mp_list_extend(l, in, 6));
    mp_assert_ok(mp_list_sort(l, NULL, NULL));
    /* bytes, then str, then numbers by value. */
    char *s;
    mp_assert_ok(mp_list_get_str(l, 0, &s));
    cr_assert_str_eq(s, "z");
    free(s);
    mp_assert_ok(mp_list_get_str(l, 1, &s));
    cr_assert_str_eq(s, "a");
    free(s);
    cr_assert_eq(list_int(l, 3), -2);
    cr_assert_eq(list_int(l, 5), 3);
    mp_assert_ok(mp_list_clear(l));
    mp_item words[] = {MP_ITEM_STR("aa"), MP_ITEM_STR("b"), MP_ITEM_STR("ccc"), MP_ITEM_STR("d")};
    mp_assert_ok(mp_list_extend(l, words, 4));
    int calls = 0;
    mp_assert_ok(mp_list_sort(l, by_len_desc, &calls));
    cr_assert_gt(calls, 0);
    static const char *const want[] = {"ccc", "aa", "b", "d"}; /* stable */
    for (long i = 0; i < 4; i++) {
        mp_assert_ok(mp_list_get_str(l, i, &s));
        cr_assert_str_eq(s, want[i]);
        free(s);
    }
    mp_list_destroy(l);
    mp_manager_close(m);
}

Test(objects, namespace_attributes)
{
    mp_manager *m = open_manager();
    mp_namespace *ns;
    mp_assert_rc(mp_manager_namespace(m, "Global", &ns), 1);
    mp_test_namespace_attributes(ns);
    char *s;
    mp_assert_rc(mp_namespace_set_int(ns, "1x", 1), MP_EINVAL);
    mp_assert_rc(mp_namespace_has(ns, "x"), 1);
    mp_assert_ok(mp_namespace_delete(ns, "x"));
    mp_assert_rc(mp_namespace_has(ns, "x"), 0);
    mp_assert_rc(mp_namespace_delete(ns, "x"), MP_ENOENT);
    mp_namespace *again;
    mp_assert_rc(mp_manager_namespace(m, "Global", &again), 0);
    mp_assert_ok(mp_namespace_get_str(again, "y", &s));
    cr_assert_str_eq(s, "hello");
    free(s);
    mp_namespace_destroy(again);
    mp_namespace_destroy(ns);
    mp_manager_close(m);
}

Test(objects, bad_arguments)
{
    mp_manager *m = open_manager();
    mp_dict *d;
    mp_list *l;
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_rc(mp_manager_list(m, "l", &l), 1);
    mp_assert_rc(mp_dict_set_item(d, NULL, 1, &MP_ITEM_INT64(1)), MP_EINVAL);
    mp_assert_rc(mp_dict_set_item(d, "k", 1, NULL), MP_EINVAL);
    mp_assert_rc(mp_dict_set_item(d, "k", 1, &(mp_item){.data = "x", .len = 1, .type = 9}),
                 MP_EINVAL);
    mp_assert_rc(
        mp_dict_set_item(d, "k", 1, &(mp_item){.data = "x", .len = 1, .type = MP_ITEM_INT64}),
        MP_EINVAL);
    mp_assert_rc(mp_dict_get(d, "k", 1, NULL, NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_dict_len(d, NULL), MP_EINVAL);
    mp_assert_rc(mp_dict_update_with(d, "k", 1, NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_list_append(l, NULL), MP_EINVAL);
    mp_assert_rc(mp_list_len(l, NULL), MP_EINVAL);
    mp_assert_rc(mp_list_slice(l, 0, 1, NULL), MP_EINVAL);
    mp_assert_rc(mp_list_extend(l, NULL, 2), MP_EINVAL);
    /* A failed call changes nothing. */
    size_t n;
    mp_assert_ok(mp_dict_len(d, &n));
    cr_assert_eq(n, 0);
    mp_dict_destroy(d);
    mp_list_destroy(l);
    mp_manager_close(m);
}

static bool on_redis(void)
{
    return srv.pid != 0;
}

/* Checks l holds exactly the integers want[0..n). */
static void list_is(mp_list *l, const int64_t *want, size_t n)
{
    size_t len = 0;
    mp_assert_ok(mp_list_len(l, &len));
    cr_assert_eq(len, n, "len %zu, want %zu", len, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(list_int(l, (long)i), want[i], "item %zu", i);
}

Test(objects, list_reverse_in_place)
{
    mp_manager *m = open_manager();
    mp_list *l;
    mp_assert_rc(mp_manager_list(m, "l", &l), 1);
    mp_assert_ok(mp_list_reverse(l)); /* empty: nothing to do */
    list_is(l, NULL, 0);
    mp_assert_ok(mp_list_append(l, &MP_ITEM_INT64(7)));
    mp_assert_ok(mp_list_reverse(l));
    list_is(l, (int64_t[]){7}, 1);
    mp_item more[] = {MP_ITEM_INT64(8), MP_ITEM_INT64(9), MP_ITEM_STR("s")};
    mp_assert_ok(mp_list_extend(l, more, 3));
    mp_assert_ok(mp_list_reverse(l));
    char *s;
    mp_assert_ok(mp_list_get_str(l, 0, &s));
    cr_assert_str_eq(s, "s");
    free(s);
    mp_assert_ok(mp_list_pop(l, 0, NULL, NULL, NULL));
    list_is(l, (int64_t[]){9, 8, 7}, 3);
    mp_assert_ok(mp_list_reverse(l));
    list_is(l, (int64_t[]){7, 8, 9}, 3);
    /* Many items (more than one chunk of a Redis script's push). */
    mp_assert_ok(mp_list_clear(l));
    for (int64_t i = 0; i < 2500; i++)
        mp_assert_ok(mp_list_append(l, &MP_ITEM_INT64(i)));
    mp_assert_ok(mp_list_reverse(l));
    cr_assert_eq(list_int(l, 0), 2499);
    cr_assert_eq(list_int(l, 1000), 1499);
    cr_assert_eq(list_int(l, -1), 0);
    mp_assert_rc(mp_list_reverse(NULL), MP_EINVAL);
    mp_list_destroy(l);
    mp_manager_close(m);
}

Test(objects, list_imul_repeats_in_place)
{
    mp_manager *m = open_manager();
    mp_list *l;
    mp_assert_rc(mp_manager_list(m, "l", &l), 1);
    mp_assert_ok(mp_list_imul(l, 3)); /* [] * 3 == [] */
    list_is(l, NULL, 0);
    mp_item in[] = {MP_ITEM_INT64(1), MP_ITEM_INT64(2)};
    mp_assert_ok(mp_list_extend(l, in, 2));
    mp_assert_ok(mp_list_imul(l, 1));
    list_is(l, (int64_t[]){1, 2}, 2);
    mp_assert_ok(mp_list_imul(l, 3));
    list_is(l, (int64_t[]){1, 2, 1, 2, 1, 2}, 6);
    /* The copies are items of their own: changing one changes no other. */
    mp_assert_ok(mp_list_set(l, 2, &MP_ITEM_INT64(5)));
    mp_assert_ok(mp_list_pop(l, -1, NULL, NULL, NULL));
    list_is(l, (int64_t[]){1, 2, 5, 2, 1}, 5);
    /* Too many items for any backend: refused, nothing changed. */
    int rc = mp_list_imul(l, LONG_MAX);
    cr_assert(rc == MP_ENOMEM || rc == MP_EOVERFLOW, "%s", mp_err_name(rc));
    list_is(l, (int64_t[]){1, 2, 5, 2, 1}, 5);
    mp_assert_ok(mp_list_imul(l, 0)); /* Python: l *= 0 empties l */
    list_is(l, NULL, 0);
    mp_assert_ok(mp_list_append(l, &MP_ITEM_INT64(4)));
    mp_assert_ok(mp_list_imul(l, -2));
    list_is(l, NULL, 0);
    mp_assert_rc(mp_list_imul(NULL, 2), MP_EINVAL);
    mp_list_destroy(l);
    mp_manager_close(m);
}

Test(objects, dict_popitem)
{
    mp_manager *m = open_manager();
    mp_dict *d;
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    void *k = (void *)1, *v = (void *)1;
    size_t kl = 7, vl = 7;
    mp_item_type t;
    mp_assert_rc(mp_dict_popitem(d, &k, &kl, &v, &vl, &t), MP_EEMPTY);
    cr_assert(k == (void *)1 && v == (void *)1 && kl == 7 && vl == 7, "outputs untouched");
    mp_assert_rc(mp_dict_popitem(d, NULL, &kl, &v, &vl, NULL), MP_EINVAL);
    mp_assert_ok(mp_dict_set_int64(d, "a", 1));
    mp_assert_ok(mp_dict_set_int64(d, "b", 2));
    mp_assert_ok(mp_dict_set_str(d, "c", "three"));
    mp_assert_ok(mp_dict_set_int64(d, "a", 10)); /* keeps its first place */
    mp_assert_rc(mp_dict_popitem(d, &k, &kl, &v, &vl, NULL), 0);
    mp_assert_rc(mp_dict_popitem(d, NULL, &kl, &v, &vl, NULL), MP_EINVAL);
    /* Each entry comes out once, with its value; locally newest first. */
    static const char *const order[] = {"c", "b", "a"};
    bool seen[3] = {false, false, false};
    for (int i = 0; i < 3; i++) {
        if (i > 0)
            mp_assert_ok(mp_dict_popitem(d, &k, &kl, &v, &vl, &t));
        else
            t = MP_ITEM_INT64; /* the first pair came out above, untyped */
        cr_assert_eq(kl, 1);
        int which = ((char *)k)[0] - 'a';
        cr_assert(which >= 0 && which < 3 && !seen[which], "key %s", (char *)k);
        seen[which] = true;
        if (!on_redis())
            cr_assert_str_eq(k, order[i], "LIFO: %s at %d", (char *)k, i);
        if (which == 2) {
            cr_assert_str_eq(v, "three");
        } else {
            int64_t x;
            cr_assert_eq(vl, 8);
            memcpy(&x, v, 8);
            cr_assert_eq(x, which == 0 ? 10 : 2);
            if (i > 0)
                cr_assert_eq(t, MP_ITEM_INT64);
        }
        free(k);
        free(v);
    }
    size_t n = 1;
    mp_assert_ok(mp_dict_len(d, &n));
    cr_assert_eq(n, 0);
    mp_assert_rc(mp_dict_popitem(d, &k, &kl, &v, &vl, &t), MP_EEMPTY);
    mp_dict_destroy(d);
    mp_manager_close(m);
}
