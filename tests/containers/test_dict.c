/* Tests of mp_dict: every call, its errors, several processes, a holder
 * killed inside the lock. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(dict, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

static mp_dict *new_dict(void)
{
    mp_dict *d;
    mp_assert_ok(mp_dict_create(&d, NULL));
    return d;
}

static void join_ok(mp_process *p)
{
    int code = -1;
    mp_assert_ok(mp_process_join(p, 20));
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0, "child exit code %d", code);
    mp_process_destroy(p);
}

static mp_process *start(mp_target_fn fn, const void *arg, size_t len)
{
    mp_process *p;
    mp_assert_ok(
        mp_process_create(&p, &(mp_process_opts){.target = fn, .args = arg, .args_len = len}));
    mp_assert_ok(mp_process_start(p));
    return p;
}

Test(dict, create_options_and_destroy)
{
    mp_dict *d;
    mp_assert_rc(mp_dict_create(NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_dict_create(&d, &(mp_dict_opts){.shards = 3}), MP_EINVAL);
    mp_assert_rc(mp_dict_create(&d, &(mp_dict_opts){.shards = 512}), MP_EINVAL);
    mp_assert_ok(mp_dict_create(&d, &(mp_dict_opts){.shards = 1}));
    mp_assert_ok(mp_dict_set_int64(d, "a", 1));
    mp_dict_destroy(d);
    mp_dict_destroy(NULL);
}

Test(dict, set_get_every_type)
{
    mp_dict *d = new_dict();
    mp_assert_ok(mp_dict_set(d, "k", 1, "\0bin\xff", 5));
    mp_assert_ok(mp_dict_set_str(d, "s", "hello"));
    mp_assert_ok(mp_dict_set_int64(d, "i", -42));
    mp_assert_ok(mp_dict_set_double(d, "f", 2.5));
    mp_assert_ok(mp_dict_set(d, "", 0, NULL, 0)); /* empty key and value */
    void *v;
    size_t len;
    mp_item_type t;
    mp_assert_ok(mp_dict_get(d, "k", 1, &v, &len, &t));
    cr_assert(len == 5 && memcmp(v, "\0bin\xff", 5) == 0 && t == MP_ITEM_BYTES);
    cr_assert_eq(((char *)v)[5], '\0');
    free(v);
    char *s;
    mp_assert_ok(mp_dict_get_str(d, "s", &s));
    cr_assert_str_eq(s, "hello");
    free(s);
    int64_t i;
    mp_assert_ok(mp_dict_get_int64(d, "i", &i));
    cr_assert_eq(i, -42);
    double f;
    mp_assert_ok(mp_dict_get_double(d, "f", &f));
    cr_assert_eq(f, 2.5);
    mp_assert_ok(mp_dict_get(d, "", 0, &v, &len, NULL));
    cr_assert_eq(len, 0);
    free(v);
    /* Typed getters check the type. */
    mp_assert_rc(mp_dict_get_int64(d, "s", &i), MP_EPROTO);
    mp_assert_rc(mp_dict_get_double(d, "i", &f), MP_EPROTO);
    mp_assert_rc(mp_dict_get_str(d, "i", &s), MP_EPROTO);
    mp_assert_rc(mp_dict_get_int64(d, "nope", &i), MP_ENOENT);
    /* Overwrite keeps one entry and changes the type. */
    mp_assert_ok(mp_dict_set_str(d, "i", "now a string"));
    mp_assert_ok(mp_dict_get_str(d, "i", &s));
    cr_assert_str_eq(s, "now a string");
    free(s);
    size_t n;
    mp_assert_ok(mp_dict_len(d, &n));
    cr_assert_eq(n, 5);
    mp_dict_destroy(d);
}

Test(dict, get_into_reports_the_size_needed)
{
    mp_dict *d = new_dict();
    mp_assert_ok(mp_dict_set_str(d, "k", "0123456789"));
    char buf[16];
    size_t len = 0;
    mp_item_type t;
    mp_assert_rc(mp_dict_get_into(d, "k", 1, buf, 4, &len, &t), MP_EMSGSIZE);
    cr_assert_eq(len, 10);
    mp_assert_rc(mp_dict_get_into(d, "k", 1, NULL, 0, &len, NULL), MP_EMSGSIZE);
    mp_assert_ok(mp_dict_get_into(d, "k", 1, buf, sizeof(buf), &len, &t));
    cr_assert(len == 10 && memcmp(buf, "0123456789", 10) == 0 && t == MP_ITEM_STR);
    mp_assert_rc(mp_dict_get_into(d, "x", 1, buf, sizeof(buf), &len, NULL), MP_ENOENT);
    mp_assert_rc(mp_dict_get_into(d, "k", 1, NULL, 4, &len, NULL), MP_EINVAL);
    mp_dict_destroy(d);
}

Test(dict, get_default_contains_delete_pop)
{
    mp_dict *d = new_dict();
    void *v;
    size_t len;
    mp_item_type t;
    mp_assert_rc(mp_dict_get_default(d, "a", 1, &MP_ITEM_INT64(7), &v, &len, &t), 0);
    cr_assert(len == 8 && t == MP_ITEM_INT64 && *(int64_t *)v == 7);
    free(v);
    mp_assert_rc(mp_dict_contains(d, "a", 1), 0); /* get_default does not insert */
    mp_assert_ok(mp_dict_set_str(d, "a", "x"));
    mp_assert_rc(mp_dict_get_default(d, "a", 1, &MP_ITEM_INT64(7), &v, &len, &t), 1);
    cr_assert(len == 1 && t == MP_ITEM_STR);
    free(v);
    mp_assert_rc(mp_dict_contains(d, "a", 1), 1);
    mp_assert_ok(mp_dict_delete(d, "a", 1));
    mp_assert_rc(mp_dict_delete(d, "a", 1), MP_ENOENT);
    mp_assert_rc(mp_dict_contains(d, "a", 1), 0);
    mp_assert_ok(mp_dict_set_int64(d, "p", 5));
    v = NULL;
    mp_assert_ok(mp_dict_pop(d, "p", 1, &v, &len, &t));
    cr_assert(t == MP_ITEM_INT64 && *(int64_t *)v == 5);
    free(v);
    v = NULL;
    mp_assert_rc(mp_dict_pop(d, "p", 1, &v, &len, NULL), MP_ENOENT);
    cr_assert_null(v);
    size_t n = 9;
    mp_assert_ok(mp_dict_len(d, &n));
    cr_assert_eq(n, 0);
    mp_dict_destroy(d);
}

Test(dict, setdefault_inserts_once)
{
    mp_dict *d = new_dict();
    void *v;
    size_t len;
    mp_assert_rc(mp_dict_setdefault(d, "k", 1, &MP_ITEM_STR("first"), &v, &len, NULL), 1);
    cr_assert_str_eq(v, "first");
    free(v);
    mp_assert_rc(mp_dict_setdefault(d, "k", 1, &MP_ITEM_STR("second"), &v, &len, NULL), 0);
    cr_assert_str_eq(v, "first");
    free(v);
    mp_assert_rc(mp_dict_setdefault(d, "j", 1, &MP_ITEM_INT64(1), NULL, NULL, NULL), 1);
    mp_assert_rc(mp_dict_setdefault(d, "j", 1, NULL, NULL, NULL, NULL), MP_EINVAL);
    mp_dict_destroy(d);
}

Test(dict, snapshots_keep_insertion_order)
{
    mp_dict *d = new_dict();
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        mp_assert_ok(mp_dict_set_int64(d, key, i));
    }
    mp_assert_ok(mp_dict_set_int64(d, "key0", 1000)); /* keeps its place */
    for (int i = 1; i < 300; i += 2) {
        snprintf(key, sizeof(key), "key%d", i);
        mp_assert_ok(mp_dict_delete(d, key, strlen(key)));
    }
    mp_snapshot *items, *keys, *values;
    mp_assert_ok(mp_dict_items(d, &items));
    mp_assert_ok(mp_dict_keys(d, &keys));
    mp_assert_ok(mp_dict_values(d, &values));
    cr_assert_eq(mp_snapshot_len(items), 150);
    cr_assert_eq(mp_snapshot_len(keys), 150);
    mp_assert_ok(mp_dict_clear(d)); /* the snapshots are private copies */
    for (size_t i = 0; i < 150; i++) {
        mp_item k, v;
        mp_assert_ok(mp_snapshot_key(items, i, &k));
        mp_assert_ok(mp_snapshot_value(items, i, &v));
        snprintf(key, sizeof(key), "key%zu", 2 * i);
        cr_assert_str_eq(k.data, key);
        int64_t x = *(const int64_t *)v.data;
        cr_assert_eq(x, i == 0 ? 1000 : (int64_t)(2 * i));
        mp_assert_ok(mp_snapshot_key(keys, i, &k));
        cr_assert_str_eq(k.data, key);
        mp_assert_rc(mp_snapshot_value(keys, i, &v), MP_ENOENT);
        mp_assert_rc(mp_snapshot_key(values, i, &k), MP_ENOENT);
    }
    mp_item k;
    mp_assert_rc(mp_snapshot_key(items, 150, &k), MP_ERANGE);
    mp_assert_rc(mp_snapshot_key(NULL, 0, &k), MP_EINVAL);
    cr_assert_eq(mp_snapshot_len(NULL), 0);
    mp_snapshot_destroy(items);
    mp_snapshot_destroy(keys);
    mp_snapshot_destroy(values);
    size_t n;
    mp_assert_ok(mp_dict_len(d, &n));
    cr_assert_eq(n, 0);
    mp_dict_destroy(d);
}

Test(dict, update_and_repr)
{
    mp_dict *a = new_dict(), *b = new_dict();
    mp_assert_ok(mp_dict_set_int64(a, "x", 10));
    mp_assert_ok(mp_dict_set_str(b, "x", "hello"));
    mp_assert_ok(mp_dict_set_double(b, "y", 0.1));
    mp_assert_ok(mp_dict_set(b, "z", 1, "a'\x01", 3));
    mp_assert_ok(mp_dict_update(a, b));
    mp_assert_ok(mp_dict_update(a, a));
    char *s;
    mp_assert_ok(mp_dict_repr(a, &s));
    cr_assert_str_eq(s, "{'x': 'hello', 'y': 0.1, 'z': b\"a'\\x01\"}");
    free(s);
    mp_assert_rc(mp_dict_update(a, NULL), MP_EINVAL);
    mp_dict_destroy(a);
    mp_dict_destroy(b);
}

static int incr(mp_dict_change *u, void *user)
{
    int64_t *v = user;
    *v = u->found ? *(const int64_t *)u->old + 1 : 1;
    u->new_value = MP_ITEM_BYTES(v, sizeof(*v));
    return MP_DICT_STORE;
}

static int decide(mp_dict_change *u, void *user)
{
    (void)u;
    return *(int *)user;
}

Test(dict, update_with_keep_store_delete_and_errors)
{
    mp_dict *d = new_dict();
    int64_t v;
    cr_assert_eq(mp_dict_update_with(d, "c", 1, incr, &v), MP_DICT_STORE);
    cr_assert_eq(mp_dict_update_with(d, "c", 1, incr, &v), MP_DICT_STORE);
    cr_assert_eq(v, 2);
    int what = MP_DICT_KEEP;
    cr_assert_eq(mp_dict_update_with(d, "c", 1, decide, &what), MP_DICT_KEEP);
    what = MP_ETIMEDOUT; /* the function's own error: nothing changes */
    mp_assert_rc(mp_dict_update_with(d, "c", 1, decide, &what), MP_ETIMEDOUT);
    what = 7;
    mp_assert_rc(mp_dict_update_with(d, "c", 1, decide, &what), MP_EINVAL);
    mp_assert_rc(mp_dict_contains(d, "c", 1), 1);
    what = MP_DICT_DELETE;
    cr_assert_eq(mp_dict_update_with(d, "c", 1, decide, &what), MP_DICT_DELETE);
    mp_assert_rc(mp_dict_contains(d, "c", 1), 0);
    mp_assert_rc(mp_dict_update_with(d, "c", 1, NULL, NULL), MP_EINVAL);
    int64_t r;
    mp_assert_ok(mp_dict_add_int64(d, "n", 5, &r));
    mp_assert_ok(mp_dict_add_int64(d, "n", -2, &r));
    cr_assert_eq(r, 3);
    mp_assert_ok(mp_dict_set_int64(d, "big", INT64_MAX));
    mp_assert_rc(mp_dict_add_int64(d, "big", 1, &r), MP_EOVERFLOW);
    mp_assert_ok(mp_dict_set_str(d, "s", "x"));
    mp_assert_rc(mp_dict_add_int64(d, "s", 1, &r), MP_EPROTO);
    mp_dict_destroy(d);
}

Test(dict, bad_input)
{
    mp_dict *d = new_dict();
    char fake[256] = {0};
    mp_dict *foreign = (mp_dict *)(void *)fake;
    void *v;
    size_t len;
    mp_assert_rc(mp_dict_set(NULL, "k", 1, "v", 1), MP_EINVAL);
    mp_assert_rc(mp_dict_set(foreign, "k", 1, "v", 1), MP_EINVAL);
    mp_assert_rc(mp_dict_set(d, NULL, 0, "v", 1), MP_EINVAL);
    mp_assert_rc(mp_dict_set(d, "k", 1, NULL, 1), MP_EINVAL);
    mp_assert_rc(mp_dict_set(d, "k", MP_KEY_MAX + 1, "v", 1), MP_EMSGSIZE);
    mp_assert_rc(mp_dict_set(d, "k", 1, "v", MP_VALUE_MAX + 1), MP_EMSGSIZE);
    mp_assert_rc(mp_dict_set_item(d, "k", 1, &(mp_item){.data = "v", .len = 1, .type = 9}),
                 MP_EINVAL);
    mp_assert_rc(mp_dict_set_item(d, "k", 1, &(mp_item){"1234", 4, MP_ITEM_INT64}), MP_EINVAL);
    mp_assert_rc(mp_dict_set_item(d, "k", 1, NULL), MP_EINVAL);
    mp_assert_rc(mp_dict_set_str(d, NULL, "v"), MP_EINVAL);
    mp_assert_rc(mp_dict_set_str(d, "k", NULL), MP_EINVAL);
    mp_assert_rc(mp_dict_get(d, NULL, 0, &v, &len, NULL), MP_EINVAL);
    mp_assert_rc(mp_dict_get(d, "k", 1, NULL, &len, NULL), MP_EINVAL);
    mp_assert_rc(mp_dict_get(foreign, "k", 1, &v, &len, NULL), MP_EINVAL);
    mp_assert_rc(mp_dict_contains(d, NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_dict_len(foreign, &len), MP_EINVAL);
    mp_assert_rc(mp_dict_len(d, NULL), MP_EINVAL);
    mp_assert_rc(mp_dict_keys(foreign, &(mp_snapshot *){NULL}), MP_EINVAL);
    mp_assert_rc(mp_dict_clear(foreign), MP_EINVAL);
    mp_assert_rc(mp_dict_repr(d, NULL), MP_EINVAL);
    mp_dict_destroy(foreign); /* ignored, no crash */
    size_t n;
    mp_assert_ok(mp_dict_len(d, &n));
    cr_assert_eq(n, 0, "failed calls changed nothing");
    mp_dict_destroy(d);
}

/* ---- processes ---------------------------------------------------------*/

static mp_dict *shared;

static int set_own_keys(const void *arg, size_t len)
{
    int base = *(const int *)arg;
    (void)len;
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "p%d-%d", base, i);
        if (mp_dict_set_int64(shared, key, base * 1000 + i) < 0)
            return 1;
        if (mp_dict_add_int64(shared, "total", 1, NULL) < 0)
            return 1;
    }
    return 0;
}

Test(dict, processes_update_one_dict)
{
    shared = new_dict();
    mp_process *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = start(set_own_keys, &i, sizeof(i));
    for (int i = 0; i < 4; i++)
        join_ok(p[i]);
    size_t n;
    mp_assert_ok(mp_dict_len(shared, &n));
    cr_assert_eq(n, 4 * 200 + 1);
    int64_t total, v;
    mp_assert_ok(mp_dict_get_int64(shared, "total", &total));
    cr_assert_eq(total, 800, "add_int64 is atomic: %lld", (long long)total);
    mp_assert_ok(mp_dict_get_int64(shared, "p3-199", &v));
    cr_assert_eq(v, 3199);
    mp_dict_destroy(shared);
}

static int die_inside(mp_dict_change *u, void *user)
{
    (void)u;
    (void)user;
    raise(SIGKILL); /* killed with the shard locked */
    return MP_DICT_KEEP;
}

static int kill_in_lock(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_dict_update_with(shared, "victim", 6, die_inside, NULL);
    return 3;
}

Test(dict, holder_killed_inside_the_lock_is_recovered)
{
    shared = new_dict();
    mp_assert_ok(mp_dict_set_str(shared, "victim", "old"));
    mp_process *p = start(kill_in_lock, NULL, 0);
    int code = 0;
    mp_assert_ok(mp_process_join(p, 20));
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, -SIGKILL);
    mp_process_destroy(p);
    char *s;
    mp_assert_ok(mp_dict_get_str(shared, "victim", &s)); /* not locked, old value */
    cr_assert_str_eq(s, "old");
    free(s);
    mp_assert_ok(mp_dict_set_str(shared, "victim", "new"));
    size_t n;
    mp_assert_ok(mp_dict_len(shared, &n));
    cr_assert_eq(n, 1);
    mp_dict_destroy(shared);
}

Test(dict, item_repr_like_python)
{
    static const struct {
        double v;
        const char *repr;
    } cases[] = {{10.0, "10.0"}, {0.1, "0.1"},        {1e16, "1e+16"}, {1e15, "1000000000000000.0"},
                 {-2.5, "-2.5"}, {1.5e-5, "1.5e-05"}, {1e-4, "0.0001"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s;
        mp_assert_ok(mp_item_repr(&MP_ITEM_DOUBLE(cases[i].v), &s));
        cr_assert_str_eq(s, cases[i].repr);
        free(s);
    }
    char *s;
    mp_assert_ok(mp_item_repr(&MP_ITEM_STR("it's"), &s));
    cr_assert_str_eq(s, "\"it's\"");
    free(s);
    mp_assert_ok(mp_item_repr(&MP_ITEM_BYTES("\n\x80", 2), &s));
    cr_assert_str_eq(s, "b'\\n\\x80'");
    free(s);
    mp_assert_ok(mp_item_repr(&MP_ITEM_INT64(-7), &s));
    cr_assert_str_eq(s, "-7");
    free(s);
    mp_assert_rc(mp_item_repr(NULL, &s), MP_EINVAL);
}
