/* Tests of mp_manager (named objects of every type, errors, removal, backends)
 * and mp_namespace. The manager across processes: test_manager_procs.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"
#include "mp_test_manager.h"

TestSuite(manager, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(namespace, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

static mp_manager *open_local(void)
{
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, "local"));
    return m;
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

Test(manager, bad_urls_and_arguments_are_named)
{
    mp_manager *m = NULL;
    mp_assert_rc(mp_manager_open(&m, "locl"), MP_EINVAL);
    cr_assert_null(m);
    cr_assert_not_null(strstr(mp_error_detail(), "mp_manager_open: URL 'locl' is neither"), "%s",
                       mp_error_detail());
    /* Only the scheme of an unknown URL is quoted: the rest may be a secret. */
    mp_assert_rc(mp_manager_open(&m, "http://:secret@h"), MP_EINVAL);
    cr_assert_not_null(strstr(mp_error_detail(), "'http...'"), "%s", mp_error_detail());
    cr_assert_null(strstr(mp_error_detail(), "secret"), "%s", mp_error_detail());
    m = open_local();
    mp_value *v = NULL;
    mp_assert_rc(mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'z'}, &v), MP_EINVAL);
    cr_assert_not_null(strstr(mp_error_detail(), "mp_manager_value: opts->typecode"), "%s",
                       mp_error_detail());
    char long_name[MP_MANAGER_NAME_MAX + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    mp_dict *d = NULL;
    mp_assert_rc(mp_manager_dict(m, long_name, &d), MP_EINVAL);
    cr_assert_not_null(strstr(mp_error_detail(), "name is too long"), "%s", mp_error_detail());
    mp_assert_rc(mp_manager_remove(m, "x", 0x80), MP_EINVAL);
    cr_assert_not_null(strstr(mp_error_detail(), "unknown flags 0x80"), "%s", mp_error_detail());
    mp_manager_close(m);
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

static void remove_all(mp_manager *m, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%d", prefix, i);
        mp_assert_ok(mp_manager_remove(m, name, MP_MANAGER_DESTROY));
    }
}

Test(manager, every_type_creates_then_opens)
{
    mp_manager *m = open_local(), *m2 = open_local();
    for (int t = 0; t < MPT_N; t++) {
        char name[64];
        snprintf(name, sizeof name, "every-%d", t);
        void *a = NULL, *b = NULL;
        mp_assert_rc(mp_test_open_as(m, t, name, &a), 1);
        mp_assert_rc(mp_test_open_as(m2, t, name, &b), 0);
        cr_assert(a != NULL && a == b, "%s: one object per name", mp_test_type_name[t]);
        cr_assert_eq(mp_test_exercise(t, a), 0, "%s works", mp_test_type_name[t]);
        mp_test_destroy_as(t, a); /* named: a no-op */
        cr_assert_eq(mp_test_exercise(t, b), 0, "%s survives destroy", mp_test_type_name[t]);
    }
    mp_manager_close(m2);
    remove_all(m, "every-", MPT_N);
    mp_manager_close(m);
}

Test(manager, a_name_of_one_type_is_mp_eexist_as_any_other)
{
    mp_manager *m = open_local();
    for (int t = 0; t < MPT_N; t++) {
        char name[64];
        snprintf(name, sizeof name, "typed-%d", t);
        void *obj;
        mp_assert_rc(mp_test_open_as(m, t, name, &obj), 1);
        for (int u = 0; u < MPT_N; u++) {
            if (u == t)
                continue;
            void *other = &other;
            int rc = mp_test_open_as(m, u, name, &other);
            cr_assert(rc == MP_EEXIST && other == &other, "%s as %s: %s", mp_test_type_name[t],
                      mp_test_type_name[u], mp_err_name(rc));
        }
    }
    remove_all(m, "typed-", MPT_N);
    mp_manager_close(m);
}

Test(manager, shape_parameters_must_match_options_need_not)
{
    mp_manager *m = open_local();
    mp_value *v, *v2 = NULL;
    mp_assert_rc(mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'i', .init = &(int){3}}, &v),
                 1);
    mp_assert_rc(mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'd'}, &v2), MP_EEXIST);
    mp_assert_rc(mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'i', .raw = true}, &v2),
                 MP_EEXIST);
    cr_assert_null(v2);
    /* init only matters to the creator. */
    mp_assert_rc(
        mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'i', .init = &(int){9}}, &v2), 0);
    int64_t x;
    mp_assert_ok(mp_value_get_i64(v2, &x));
    cr_assert_eq(x, 3);

    mp_value *raw;
    mp_assert_rc(mp_manager_value(m, "raw", &(mp_value_opts){.typecode = 'c', .raw = true}, &raw),
                 1);
    cr_assert_null(mp_value_get_lock(raw));
    mp_assert_rc(mp_manager_value(m, "raw", &(mp_value_opts){.typecode = 'c'}, &raw), MP_EEXIST);

    mp_array *a;
    mp_assert_rc(mp_manager_array(m, "a", &(mp_array_opts){.typecode = 'd', .len = 4}, &a), 1);
    mp_assert_rc(mp_manager_array(m, "a", &(mp_array_opts){.typecode = 'd', .len = 5}, &a),
                 MP_EEXIST);
    mp_assert_rc(mp_manager_array(m, "a", &(mp_array_opts){.typecode = 'f', .len = 4}, &a),
                 MP_EEXIST);
    mp_assert_rc(mp_manager_array(m, "a", &(mp_array_opts){.typecode = 'd', .len = 4}, &a), 0);
    cr_assert_eq(mp_array_len(a), 4);

    mp_barrier *b;
    mp_assert_rc(mp_manager_barrier(m, "b", 3, &b), 1);
    mp_assert_rc(mp_manager_barrier(m, "b", 4, &b), MP_EEXIST);
    mp_assert_rc(mp_manager_barrier(m, "b", 3, &b), 0);

    /* Options of the other types are the creator's. */
    mp_queue *q, *q2;
    mp_assert_rc(mp_manager_queue(m, "q", &(mp_queue_opts){.maxsize = 1}, &q), 1);
    mp_assert_rc(mp_manager_queue(m, "q", &(mp_queue_opts){.maxsize = 100}, &q2), 0);
    cr_assert_eq(q, q2);
    mp_assert_ok(mp_queue_put_nowait(q2, "a", 1));
    mp_assert_rc(mp_queue_put_nowait(q2, "b", 1), MP_EFULL);
    mp_sem *s, *s2;
    mp_assert_rc(mp_manager_sem(m, "s", &(mp_sem_opts){.value = 2, .bounded = true}, &s), 1);
    mp_assert_rc(mp_manager_sem(m, "s", NULL, &s2), 0);
    cr_assert_eq(mp_sem_get_value(s2), 2);
    mp_assert_rc(mp_sem_release(s2), MP_EOVERFLOW);
    mp_assert_ok(mp_manager_remove(m, "q", MP_MANAGER_DESTROY));
    mp_manager_close(m);
}

Test(manager, bad_arguments_of_every_accessor)
{
    mp_manager *m = open_local();
    char long_name[MP_MANAGER_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    for (int t = 0; t < MPT_N; t++) {
        void *obj = &obj;
        mp_assert_rc(mp_test_open_as(m, t, NULL, &obj), MP_EINVAL);
        mp_assert_rc(mp_test_open_as(m, t, "", &obj), MP_EINVAL);
        mp_assert_rc(mp_test_open_as(m, t, long_name, &obj), MP_EINVAL);
        mp_assert_rc(mp_test_open_as(NULL, t, "x", &obj), MP_EINVAL);
        mp_assert_rc(mp_test_open_as(m, t, "x", NULL), MP_EINVAL);
        cr_assert_eq(obj, &obj, "%s: out untouched on error", mp_test_type_name[t]);
    }
    mp_value *v;
    mp_array *a;
    mp_rlock *l;
    mp_assert_ok(mp_rlock_create(&l, NULL));
    mp_assert_rc(mp_manager_value(m, "v", NULL, &v), MP_EINVAL);
    mp_assert_rc(mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'z'}, &v), MP_EINVAL);
    mp_assert_rc(mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'i', .lock = l}, &v),
                 MP_EINVAL);
    mp_assert_rc(mp_manager_array(m, "a", NULL, &a), MP_EINVAL);
    mp_assert_rc(mp_manager_array(m, "a", &(mp_array_opts){.len = 1}, &a), MP_EINVAL);
    mp_assert_rc(mp_manager_array(m, "a", &(mp_array_opts){.typecode = 'i', .lock = l}, &a),
                 MP_EINVAL);
    mp_assert_rc(
        mp_manager_array(m, "a", &(mp_array_opts){.typecode = 'Q', .len = SIZE_MAX / 2}, &a),
        MP_ENOMEM);
    mp_rlock_destroy(l);
    mp_barrier *b;
    mp_assert_rc(mp_manager_barrier(m, "b", 0, &b), MP_EINVAL);
    mp_assert_rc(mp_manager_barrier(m, "b", 1u << 31, &b), MP_EINVAL);
    mp_sem *s;
    mp_assert_rc(mp_manager_sem(m, "s", &(mp_sem_opts){.value = MP_SEM_VALUE_MAX + 1u}, &s),
                 MP_EINVAL);
    mp_queue *q;
    mp_assert_rc(mp_manager_queue(m, "q", &(mp_queue_opts){.simple = true, .maxsize = 1}, &q),
                 MP_EINVAL);
    /* None of the failed calls registered its name. */
    static const char *const names[] = {"v", "a", "b", "s", "q", "x"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        mp_assert_rc(mp_manager_remove(m, names[i], 0), MP_ENOENT);
    mp_manager_close(m);
}

Test(manager, named_objects_refuse_bad_input)
{
    mp_manager *m = open_local();
    mp_dict *d;
    mp_list *l;
    mp_array *a;
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_rc(mp_manager_list(m, "l", &l), 1);
    mp_assert_rc(mp_manager_array(m, "a", &(mp_array_opts){.typecode = 'h', .len = 2}, &a), 1);
    mp_assert_rc(mp_dict_set(d, NULL, 0, "v", 1), MP_EINVAL);
    char *big = calloc(1, MP_KEY_MAX + 1);
    cr_assert_not_null(big);
    mp_assert_rc(mp_dict_set(d, big, MP_KEY_MAX + 1, "v", 1), MP_EMSGSIZE);
    free(big);
    int64_t x;
    mp_assert_rc(mp_list_get_int64(l, 0, &x), MP_ERANGE);
    mp_assert_rc(mp_array_set_i64(a, 2, 1), MP_ERANGE);
    mp_assert_rc(mp_array_set_i64(a, 0, 1 << 20), MP_ERANGE);
    mp_assert_ok(mp_array_set_i64(a, 1, -5));
    mp_manager_close(m);
}

Test(manager, remove_frees_the_name_and_keeps_or_frees_the_object)
{
    mp_manager *m = open_local();
    mp_dict *d, *d2;
    mp_assert_rc(mp_manager_dict(m, "r", &d), 1);
    mp_assert_ok(mp_dict_set_int64(d, "x", 1));
    mp_assert_ok(mp_manager_remove(m, "r", 0));
    mp_assert_rc(mp_manager_remove(m, "r", 0), MP_ENOENT);
    /* The old object stays valid and named; the name makes a new one. */
    mp_dict_destroy(d);
    int64_t x;
    mp_assert_ok(mp_dict_get_int64(d, "x", &x));
    mp_assert_rc(mp_manager_dict(m, "r", &d2), 1);
    cr_assert_neq(d, d2);
    mp_assert_rc(mp_dict_get_int64(d2, "x", &x), MP_ENOENT);
    /* Another type may take a free name. */
    mp_assert_ok(mp_manager_remove(m, "r", 0));
    mp_lock *l;
    mp_assert_rc(mp_manager_lock(m, "r", &l), 1);
    mp_assert_ok(mp_manager_remove(m, "r", MP_MANAGER_DESTROY));
    /* Destroying frees the object (a queue's fd with it: the fd check). */
    int before = mp_test_fd_count();
    mp_queue *q;
    mp_assert_rc(mp_manager_queue(m, "rq", NULL, &q), 1);
    cr_assert_eq(mp_test_fd_count(), before + 1);
    mp_assert_ok(mp_manager_remove(m, "rq", MP_MANAGER_DESTROY));
    cr_assert_eq(mp_test_fd_count(), before);
    mp_assert_rc(mp_manager_remove(m, "rq", MP_MANAGER_DESTROY), MP_ENOENT);
    mp_assert_rc(mp_manager_remove(m, "r", 2), MP_EINVAL);
    mp_assert_rc(mp_manager_remove(m, "", 0), MP_EINVAL);
    mp_assert_rc(mp_manager_remove(m, NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_manager_remove(NULL, "r", 0), MP_EINVAL);
    mp_manager_close(m);
}

/* ---- namespace -----------------------------------------------------------*/

Test(namespace, attributes_and_repr)
{
    mp_namespace *ns;
    mp_assert_rc(mp_namespace_create(&ns, &ns), MP_EINVAL);
    mp_assert_ok(mp_namespace_create(&ns, NULL));
    mp_test_namespace_attributes(ns);
    int64_t i;
    mp_item_type t;
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
    cr_assert_str_eq(s, "Namespace(名字=2)"); /* _private9 is stored, not shown */
    free(s);
    int64_t v;
    mp_assert_ok(mp_namespace_get_int(ns, "_private9", &v));
    cr_assert_eq(v, 1);
    mp_namespace_destroy(ns);
}

/* CPython: repr(Namespace(_hidden=1, shown='x', a=1, a1=2, A=3, b_=4, b=5))
 * is "Namespace(A=3, a1=2, a=1, b=5, b_=4, shown='x')": names starting with
 * '_' are left out, the "name=value" strings are sorted. */
Test(namespace, repr_leaves_out_underscore_names_like_cpython)
{
    mp_namespace *ns;
    mp_assert_ok(mp_namespace_create(&ns, NULL));
    mp_assert_ok(mp_namespace_set_int(ns, "_hidden", 1));
    mp_assert_ok(mp_namespace_set_str(ns, "shown", "x"));
    char *s;
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace(shown='x')");
    free(s);
    mp_assert_ok(mp_namespace_set_int(ns, "a", 1));
    mp_assert_ok(mp_namespace_set_int(ns, "a1", 2));
    mp_assert_ok(mp_namespace_set_int(ns, "A", 3));
    mp_assert_ok(mp_namespace_set_int(ns, "b_", 4));
    mp_assert_ok(mp_namespace_set_int(ns, "b", 5));
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace(A=3, a1=2, a=1, b=5, b_=4, shown='x')");
    free(s);
    mp_assert_ok(mp_namespace_delete(ns, "shown"));
    mp_assert_ok(mp_namespace_delete(ns, "a"));
    mp_assert_ok(mp_namespace_delete(ns, "a1"));
    mp_assert_ok(mp_namespace_delete(ns, "A"));
    mp_assert_ok(mp_namespace_delete(ns, "b"));
    mp_assert_ok(mp_namespace_delete(ns, "b_"));
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace()"); /* only _hidden is left */
    free(s);
    mp_namespace_destroy(ns);
}
