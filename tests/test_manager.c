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
    mp_assert_rc(mp_manager_open(&m, "redis://:secret@127.0.0.1:6379/0"), MP_ENOSYS);
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

/* Opens a name the parent creates after this child started (whoever comes
 * first creates it: the same object either way) and waits for the value.
 * The child opens its own manager: it finds the family's registry in the
 * shared heap, whatever the start method. */
static int wait_for_late_name(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m;
    mp_dict *d;
    if (mp_manager_open(&m, NULL) < 0 || mp_manager_dict(m, "late", &d) < 0)
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
    mp_manager *m = open_local();
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = wait_for_late_name}));
    mp_assert_ok(mp_process_start(p));
    usleep(20000);
    mp_dict *d;
    cr_assert_geq(mp_manager_dict(m, "late", &d), 0);
    mp_assert_ok(mp_dict_set_int64(d, "v", 42));
    join_ok(p);
    mp_manager_close(m);
}

static int count_in_named(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m;
    mp_dict *d;
    mp_list *l;
    if (mp_manager_open(&m, NULL) < 0 || mp_manager_dict(m, "race", &d) < 0 ||
        mp_manager_list(m, "race-list", &l) < 0)
        return 1;
    for (int i = 0; i < 50; i++)
        if (mp_dict_add_int64(d, "n", 1, NULL) < 0 ||
            mp_list_append(l, &MP_ITEM_INT64(getpid())) < 0)
            return 1;
    mp_manager_close(m);
    return 0;
}

Test(manager, racing_creators_get_the_same_object)
{
    mp_manager *m = open_local();
    mp_process *p[4];
    for (int i = 0; i < 4; i++) {
        mp_assert_ok(mp_process_create(&p[i], &(mp_process_opts){.target = count_in_named}));
        mp_assert_ok(mp_process_start(p[i]));
    }
    for (int i = 0; i < 4; i++)
        join_ok(p[i]);
    mp_dict *d;
    mp_list *l;
    mp_assert_rc(mp_manager_dict(m, "race", &d), 0);
    mp_assert_rc(mp_manager_list(m, "race-list", &l), 0);
    int64_t n;
    mp_assert_ok(mp_dict_get_int64(d, "n", &n));
    cr_assert_eq(n, 200);
    size_t len;
    mp_assert_ok(mp_list_len(l, &len));
    cr_assert_eq(len, 200);
    mp_manager_close(m);
}

/* ---- every type ----------------------------------------------------------
 * One index per accessor, with a generic open and a check that the object
 * works, so that the tests below cover every type alike. */
enum {
    T_DICT,
    T_LIST,
    T_NS,
    T_QUEUE,
    T_LOCK,
    T_RLOCK,
    T_SEM,
    T_COND,
    T_EVENT,
    T_BARRIER,
    T_VALUE,
    T_ARRAY,
    T_N
};

static const char *const type_name[T_N] = {"dict",  "list",    "namespace", "queue",
                                           "lock",  "rlock",   "sem",       "cond",
                                           "event", "barrier", "value",     "array"};

static int open_as(mp_manager *m, int t, const char *name, void **out)
{
    switch (t) {
    case T_DICT:
        return mp_manager_dict(m, name, (mp_dict **)out);
    case T_LIST:
        return mp_manager_list(m, name, (mp_list **)out);
    case T_NS:
        return mp_manager_namespace(m, name, (mp_namespace **)out);
    case T_QUEUE:
        return mp_manager_queue(m, name, NULL, (mp_queue **)out);
    case T_LOCK:
        return mp_manager_lock(m, name, (mp_lock **)out);
    case T_RLOCK:
        return mp_manager_rlock(m, name, (mp_rlock **)out);
    case T_SEM:
        return mp_manager_sem(m, name, &(mp_sem_opts){.value = 1}, (mp_sem **)out);
    case T_COND:
        return mp_manager_cond(m, name, (mp_cond **)out);
    case T_EVENT:
        return mp_manager_event(m, name, (mp_event **)out);
    case T_BARRIER:
        return mp_manager_barrier(m, name, 2, (mp_barrier **)out);
    case T_VALUE:
        return mp_manager_value(m, name, &(mp_value_opts){.typecode = 'q'}, (mp_value **)out);
    default:
        return mp_manager_array(m, name, &(mp_array_opts){.typecode = 'i', .len = 8},
                                (mp_array **)out);
    }
}

/* 0 when the object answers as a fresh or used object of its type should,
 * else the number of the failed step. */
static int exercise_sync(int t, void *obj)
{
    switch (t) {
    case T_LOCK:
        return mp_lock_acquire(obj, 0) == 0 && mp_lock_release(obj) == 0 ? 0 : 10;
    case T_RLOCK:
        return mp_rlock_acquire(obj, 0) == 0 && mp_rlock_acquire(obj, 0) == 0 &&
                       mp_rlock_release(obj) == 0 && mp_rlock_release(obj) == 0
                   ? 0
                   : 11;
    case T_SEM:
        return mp_sem_release(obj) == 0 && mp_sem_acquire(obj, 0) == 0 ? 0 : 12;
    case T_COND:
        return mp_cond_acquire(obj, 0) == 0 && mp_cond_notify_all(obj) == 0 &&
                       mp_cond_release(obj) == 0
                   ? 0
                   : 13;
    case T_EVENT:
        return mp_event_set(obj) == 0 && mp_event_is_set(obj) && mp_event_clear(obj) == 0 ? 0 : 14;
    default:
        return mp_barrier_parties(obj) == 2 && !mp_barrier_broken(obj) ? 0 : 15;
    }
}

static int exercise(int t, void *obj)
{
    int64_t i = 0;
    size_t n = 0;
    char buf[8];
    switch (t) {
    case T_DICT:
        return mp_dict_set_int64(obj, "k", 5) == 0 && mp_dict_get_int64(obj, "k", &i) == 0 && i == 5
                   ? 0
                   : 1;
    case T_LIST:
        return mp_list_append(obj, &MP_ITEM_INT64(5)) == 0 && mp_list_len(obj, &n) == 0 && n > 0
                   ? 0
                   : 2;
    case T_NS:
        return mp_namespace_set_int(obj, "k", 5) == 0 && mp_namespace_get_int(obj, "k", &i) == 0
                   ? 0
                   : 3;
    case T_QUEUE:
        return mp_queue_put_nowait(obj, "hi", 3) == 0 &&
                       mp_queue_get_into(obj, buf, sizeof buf, &n, 0) == 0 && n == 3
                   ? 0
                   : 4;
    case T_VALUE:
        return mp_value_set_i64(obj, 7) == 0 && mp_value_get_i64(obj, &i) == 0 && i == 7 ? 0 : 5;
    case T_ARRAY:
        return mp_array_len(obj) == 8 && mp_array_set_i64(obj, 7, 7) == 0 &&
                       mp_array_get_i64(obj, 7, &i) == 0 && i == 7
                   ? 0
                   : 6;
    default:
        return exercise_sync(t, obj);
    }
}

/* mp_X_destroy of the object's type: a no-op on a named object. */
static void destroy_as(int t, void *obj)
{
    switch (t) {
    case T_DICT:
        mp_dict_destroy(obj);
        break;
    case T_LIST:
        mp_list_destroy(obj);
        break;
    case T_NS:
        mp_namespace_destroy(obj);
        break;
    case T_QUEUE:
        mp_queue_destroy(obj);
        break;
    case T_LOCK:
        mp_lock_destroy(obj);
        break;
    case T_RLOCK:
        mp_rlock_destroy(obj);
        break;
    case T_SEM:
        mp_sem_destroy(obj);
        break;
    case T_COND:
        mp_cond_destroy(obj);
        break;
    case T_EVENT:
        mp_event_destroy(obj);
        break;
    case T_BARRIER:
        mp_barrier_destroy(obj);
        break;
    case T_VALUE:
        mp_value_destroy(obj);
        break;
    default:
        mp_array_destroy(obj);
        break;
    }
}

/* Frees what a test named (a named queue keeps its eventfd open in the
 * process that created it until it is destroyed). */
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
    for (int t = 0; t < T_N; t++) {
        char name[64];
        snprintf(name, sizeof name, "every-%d", t);
        void *a = NULL, *b = NULL;
        mp_assert_rc(open_as(m, t, name, &a), 1);
        mp_assert_rc(open_as(m2, t, name, &b), 0);
        cr_assert(a != NULL && a == b, "%s: one object per name", type_name[t]);
        cr_assert_eq(exercise(t, a), 0, "%s works", type_name[t]);
        destroy_as(t, a); /* named: a no-op */
        cr_assert_eq(exercise(t, b), 0, "%s survives destroy", type_name[t]);
    }
    mp_manager_close(m2);
    remove_all(m, "every-", T_N);
    mp_manager_close(m);
}

Test(manager, a_name_of_one_type_is_mp_eexist_as_any_other)
{
    mp_manager *m = open_local();
    for (int t = 0; t < T_N; t++) {
        char name[64];
        snprintf(name, sizeof name, "typed-%d", t);
        void *obj;
        mp_assert_rc(open_as(m, t, name, &obj), 1);
        for (int u = 0; u < T_N; u++) {
            if (u == t)
                continue;
            void *other = &other;
            int rc = open_as(m, u, name, &other);
            cr_assert(rc == MP_EEXIST && other == &other, "%s as %s: %s", type_name[t],
                      type_name[u], mp_err_name(rc));
        }
    }
    remove_all(m, "typed-", T_N);
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
    for (int t = 0; t < T_N; t++) {
        void *obj = &obj;
        mp_assert_rc(open_as(m, t, NULL, &obj), MP_EINVAL);
        mp_assert_rc(open_as(m, t, "", &obj), MP_EINVAL);
        mp_assert_rc(open_as(m, t, long_name, &obj), MP_EINVAL);
        mp_assert_rc(open_as(NULL, t, "x", &obj), MP_EINVAL);
        mp_assert_rc(open_as(m, t, "x", NULL), MP_EINVAL);
        cr_assert_eq(obj, &obj, "%s: out untouched on error", type_name[t]);
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
