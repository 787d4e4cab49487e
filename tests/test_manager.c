/* Tests of mp_manager (named objects, backends) and mp_namespace. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(manager, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(namespace, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

static mp_manager *open_local(void)
{
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, "local"));
    return m;
}

static void join_ok(mp_process *p)
{
    int code = -1;
    mp_assert_ok(mp_process_join(p, 20));
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0, "child exit code %d", code);
    mp_process_destroy(p);
}

Test(manager, open_urls)
{
    mp_manager *m = NULL;
    mp_assert_ok(mp_manager_open(&m, NULL));
    cr_assert_str_eq(mp_manager_backend(m), "local");
    mp_manager_close(m);
    mp_assert_ok(mp_manager_open(&m, "local"));
    mp_manager_close(m);
#ifdef MP_TEST_HAVE_REDIS
    /* Built with the Redis backend: TLS is the part not built. The backend
     * itself is tested in test_redis.c and test_manager_objects.c. */
    mp_assert_rc(mp_manager_open(&m, "rediss://:secret@127.0.0.1:6379/0"), MP_ENOSYS);
#else
    mp_assert_rc(mp_manager_open(&m, "redis://:secret@127.0.0.1:6379/0"), MP_ENOSYS);
#endif
    mp_assert_rc(mp_manager_open(&m, "bogus://x"), MP_EINVAL);
    mp_assert_rc(mp_manager_open(&m, ""), MP_EINVAL);
    mp_assert_rc(mp_manager_open(NULL, "local"), MP_EINVAL);
    cr_assert_null(mp_manager_backend(NULL));
    mp_manager_close(NULL);
}

Test(manager, create_then_open_by_name)
{
    mp_manager *m = open_local(), *m2 = open_local();
    mp_dict *d1, *d2;
    mp_assert_rc(mp_manager_dict(m, "results", &d1), 1);
    mp_assert_rc(mp_manager_dict(m2, "results", &d2), 0);
    cr_assert_eq(d1, d2, "one registry per family");
    mp_list *l1, *l2;
    mp_assert_rc(mp_manager_list(m, "items", &l1), 1);
    mp_assert_rc(mp_manager_list(m, "items", &l2), 0);
    cr_assert_eq(l1, l2);
    mp_namespace *n1, *n2;
    mp_assert_rc(mp_manager_namespace(m, "Global", &n1), 1);
    mp_assert_rc(mp_manager_namespace(m, "Global", &n2), 0);
    cr_assert_eq(n1, n2);
    /* Named objects belong to the registry: destroy is a no-op. */
    mp_assert_ok(mp_dict_set_int64(d1, "x", 1));
    mp_dict_destroy(d1);
    mp_list_destroy(l1);
    mp_namespace_destroy(n1);
    int64_t x;
    mp_assert_ok(mp_dict_get_int64(d2, "x", &x));
    mp_assert_ok(mp_list_append(l2, &MP_ITEM_INT64(1)));
    mp_assert_ok(mp_namespace_set_int(n2, "y", 2));
    mp_manager_close(m);
    mp_manager_close(m2);
    mp_assert_ok(mp_dict_get_int64(d2, "x", &x)); /* objects outlive handles */
}

Test(manager, a_name_has_one_type)
{
    mp_manager *m = open_local();
    mp_dict *d;
    mp_list *l;
    mp_namespace *ns;
    mp_assert_rc(mp_manager_dict(m, "taken", &d), 1);
    l = NULL;
    mp_assert_rc(mp_manager_list(m, "taken", &l), MP_EEXIST);
    cr_assert_null(l);
    mp_assert_rc(mp_manager_namespace(m, "taken", &ns), MP_EEXIST);
    mp_assert_rc(mp_manager_dict(m, "taken", &d), 0);
    mp_manager_close(m);
}

Test(manager, bad_names_and_arguments)
{
    mp_manager *m = open_local();
    mp_dict *d;
    char long_name[MP_MANAGER_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    mp_assert_rc(mp_manager_dict(m, "", &d), MP_EINVAL);
    mp_assert_rc(mp_manager_dict(m, NULL, &d), MP_EINVAL);
    mp_assert_rc(mp_manager_dict(m, long_name, &d), MP_EINVAL);
    long_name[MP_MANAGER_NAME_MAX] = '\0';
    mp_assert_rc(mp_manager_dict(m, long_name, &d), 1);
    mp_assert_rc(mp_manager_dict(m, "x", NULL), MP_EINVAL);
    mp_assert_rc(mp_manager_dict(NULL, "x", &d), MP_EINVAL);
    mp_assert_rc(mp_manager_list(m, "x", NULL), MP_EINVAL);
    mp_manager_close(m);
}

static mp_manager *family;

/* Opens a name the parent creates after this child started (whoever comes
 * first creates it: the same object either way) and waits for the value. */
static int wait_for_late_name(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_dict *d;
    if (mp_manager_dict(family, "late", &d) < 0)
        return 1;
    for (int i = 0; i < 2000; i++) {
        int64_t v;
        if (mp_dict_get_int64(d, "v", &v) == 0)
            return v == 42 ? 0 : 2;
        usleep(5000);
    }
    return 3;
}

Test(manager, names_reach_children_started_before_them)
{
    family = open_local();
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = wait_for_late_name}));
    mp_assert_ok(mp_process_start(p));
    usleep(20000);
    mp_dict *d;
    cr_assert_geq(mp_manager_dict(family, "late", &d), 0);
    mp_assert_ok(mp_dict_set_int64(d, "v", 42));
    join_ok(p);
    mp_manager_close(family);
}

static int count_in_named(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_dict *d;
    mp_list *l;
    if (mp_manager_dict(family, "race", &d) < 0 || mp_manager_list(family, "race-list", &l) < 0)
        return 1;
    for (int i = 0; i < 50; i++)
        if (mp_dict_add_int64(d, "n", 1, NULL) < 0 ||
            mp_list_append(l, &MP_ITEM_INT64(getpid())) < 0)
            return 1;
    return 0;
}

Test(manager, racing_creators_get_the_same_object)
{
    family = open_local();
    mp_process *p[4];
    for (int i = 0; i < 4; i++) {
        mp_assert_ok(mp_process_create(&p[i], &(mp_process_opts){.target = count_in_named}));
        mp_assert_ok(mp_process_start(p[i]));
    }
    for (int i = 0; i < 4; i++)
        join_ok(p[i]);
    mp_dict *d;
    mp_list *l;
    cr_assert_geq(mp_manager_dict(family, "race", &d), 0);
    cr_assert_geq(mp_manager_list(family, "race-list", &l), 0);
    int64_t n;
    mp_assert_ok(mp_dict_get_int64(d, "n", &n));
    cr_assert_eq(n, 200);
    size_t len;
    mp_assert_ok(mp_list_len(l, &len));
    cr_assert_eq(len, 200);
    mp_manager_close(family);
}

/* ---- namespace -----------------------------------------------------------*/

Test(namespace, attributes_and_repr)
{
    mp_namespace *ns;
    mp_assert_rc(mp_namespace_create(&ns, &ns), MP_EINVAL);
    mp_assert_ok(mp_namespace_create(&ns, NULL));
    char *s;
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace()");
    free(s);
    mp_assert_ok(mp_namespace_set_str(ns, "y", "hello"));
    mp_assert_ok(mp_namespace_set_int(ns, "x", 10));
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace(x=10, y='hello')"); /* sorted, like CPython */
    free(s);
    mp_assert_ok(mp_namespace_set_double(ns, "f", 1e16));
    mp_assert_ok(mp_namespace_set_bytes(ns, "b", "a\0", 2));
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace(b=b'a\\x00', f=1e+16, x=10, y='hello')");
    free(s);
    int64_t i;
    double d;
    void *p;
    size_t n;
    mp_item_type t;
    mp_assert_ok(mp_namespace_get_int(ns, "x", &i));
    cr_assert_eq(i, 10);
    mp_assert_ok(mp_namespace_get_double(ns, "f", &d));
    cr_assert_eq(d, 1e16);
    mp_assert_ok(mp_namespace_get_str(ns, "y", &s));
    cr_assert_str_eq(s, "hello");
    free(s);
    mp_assert_ok(mp_namespace_get_bytes(ns, "b", &p, &n));
    cr_assert(n == 2 && memcmp(p, "a\0", 2) == 0);
    free(p);
    mp_assert_ok(mp_namespace_type(ns, "f", &t));
    cr_assert_eq(t, MP_ITEM_DOUBLE);
    mp_assert_rc(mp_namespace_get_int(ns, "y", &i), MP_EPROTO);
    mp_assert_rc(mp_namespace_get_bytes(ns, "x", &p, &n), MP_EPROTO);
    mp_assert_rc(mp_namespace_has(ns, "x"), 1);
    mp_assert_ok(mp_namespace_delete(ns, "x"));
    mp_assert_rc(mp_namespace_has(ns, "x"), 0);
    mp_assert_rc(mp_namespace_delete(ns, "x"), MP_ENOENT);
    mp_assert_rc(mp_namespace_get_int(ns, "x", &i), MP_ENOENT);
    mp_assert_rc(mp_namespace_type(ns, "x", &t), MP_ENOENT);
    mp_namespace_destroy(ns);
    mp_namespace_destroy(NULL);
}

Test(namespace, names_must_be_identifiers)
{
    mp_namespace *ns;
    mp_assert_ok(mp_namespace_create(&ns, NULL));
    static const char *const bad[] = {"", "1x", "a b", "a.b", "a-b", "x\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        mp_assert_rc(mp_namespace_set_int(ns, bad[i], 1), MP_EINVAL);
    mp_assert_rc(mp_namespace_set_int(ns, NULL, 1), MP_EINVAL);
    mp_assert_rc(mp_namespace_set_str(ns, "s", NULL), MP_EINVAL);
    mp_assert_ok(mp_namespace_set_int(ns, "_private9", 1));
    mp_assert_ok(mp_namespace_set_int(ns, "名字", 2));
    char fake[64] = {0};
    mp_assert_rc(mp_namespace_set_int((mp_namespace *)(void *)fake, "x", 1), MP_EINVAL);
    mp_assert_rc(mp_namespace_repr(ns, NULL), MP_EINVAL);
    char *s;
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace(_private9=1, 名字=2)");
    free(s);
    mp_namespace_destroy(ns);
}
