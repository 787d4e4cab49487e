/* Every type the manager names, handled alike by the manager's tests. */
#include <stdlib.h>
#include <string.h>

#include "mp_test.h"
#include "mp_test_manager.h"

const char *const mp_test_type_name[MPT_N] = {"dict",  "list",    "namespace", "queue",
                                              "lock",  "rlock",   "sem",       "cond",
                                              "event", "barrier", "value",     "array"};

int mp_test_open_as(mp_manager *m, int t, const char *name, void **out)
{
    switch (t) {
    case MPT_DICT:
        return mp_manager_dict(m, name, (mp_dict **)out);
    case MPT_LIST:
        return mp_manager_list(m, name, (mp_list **)out);
    case MPT_NS:
        return mp_manager_namespace(m, name, (mp_namespace **)out);
    case MPT_QUEUE:
        return mp_manager_queue(m, name, NULL, (mp_queue **)out);
    case MPT_LOCK:
        return mp_manager_lock(m, name, (mp_lock **)out);
    case MPT_RLOCK:
        return mp_manager_rlock(m, name, (mp_rlock **)out);
    case MPT_SEM:
        return mp_manager_sem(m, name, &(mp_sem_opts){.value = 1}, (mp_sem **)out);
    case MPT_COND:
        return mp_manager_cond(m, name, (mp_cond **)out);
    case MPT_EVENT:
        return mp_manager_event(m, name, (mp_event **)out);
    case MPT_BARRIER:
        return mp_manager_barrier(m, name, 2, (mp_barrier **)out);
    case MPT_VALUE:
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
    case MPT_LOCK:
        return mp_lock_acquire(obj, 0) == 0 && mp_lock_release(obj) == 0 ? 0 : 10;
    case MPT_RLOCK:
        return mp_rlock_acquire(obj, 0) == 0 && mp_rlock_acquire(obj, 0) == 0 &&
                       mp_rlock_release(obj) == 0 && mp_rlock_release(obj) == 0
                   ? 0
                   : 11;
    case MPT_SEM:
        return mp_sem_release(obj) == 0 && mp_sem_acquire(obj, 0) == 0 ? 0 : 12;
    case MPT_COND:
        return mp_cond_acquire(obj, 0) == 0 && mp_cond_notify_all(obj) == 0 &&
                       mp_cond_release(obj) == 0
                   ? 0
                   : 13;
    case MPT_EVENT:
        return mp_event_set(obj) == 0 && mp_event_is_set(obj) && mp_event_clear(obj) == 0 ? 0 : 14;
    default:
        return mp_barrier_parties(obj) == 2 && !mp_barrier_broken(obj) ? 0 : 15;
    }
}

int mp_test_exercise(int t, void *obj)
{
    int64_t i = 0;
    size_t n = 0;
    char buf[8];
    switch (t) {
    case MPT_DICT:
        return mp_dict_set_int64(obj, "k", 5) == 0 && mp_dict_get_int64(obj, "k", &i) == 0 && i == 5
                   ? 0
                   : 1;
    case MPT_LIST:
        return mp_list_append(obj, &MP_ITEM_INT64(5)) == 0 && mp_list_len(obj, &n) == 0 && n > 0
                   ? 0
                   : 2;
    case MPT_NS:
        return mp_namespace_set_int(obj, "k", 5) == 0 && mp_namespace_get_int(obj, "k", &i) == 0
                   ? 0
                   : 3;
    case MPT_QUEUE:
        return mp_queue_put_nowait(obj, "hi", 3) == 0 &&
                       mp_queue_get_into(obj, buf, sizeof buf, &n, 0) == 0 && n == 3
                   ? 0
                   : 4;
    case MPT_VALUE:
        return mp_value_set_i64(obj, 7) == 0 && mp_value_get_i64(obj, &i) == 0 && i == 7 ? 0 : 5;
    case MPT_ARRAY:
        return mp_array_len(obj) == 8 && mp_array_set_i64(obj, 7, 7) == 0 &&
                       mp_array_get_i64(obj, 7, &i) == 0 && i == 7
                   ? 0
                   : 6;
    default:
        return exercise_sync(t, obj);
    }
}

/* mp_X_destroy of the object's type: a no-op on a named object. */
void mp_test_destroy_as(int t, void *obj)
{
    switch (t) {
    case MPT_DICT:
        mp_dict_destroy(obj);
        break;
    case MPT_LIST:
        mp_list_destroy(obj);
        break;
    case MPT_NS:
        mp_namespace_destroy(obj);
        break;
    case MPT_QUEUE:
        mp_queue_destroy(obj);
        break;
    case MPT_LOCK:
        mp_lock_destroy(obj);
        break;
    case MPT_RLOCK:
        mp_rlock_destroy(obj);
        break;
    case MPT_SEM:
        mp_sem_destroy(obj);
        break;
    case MPT_COND:
        mp_cond_destroy(obj);
        break;
    case MPT_EVENT:
        mp_event_destroy(obj);
        break;
    case MPT_BARRIER:
        mp_barrier_destroy(obj);
        break;
    case MPT_VALUE:
        mp_value_destroy(obj);
        break;
    default:
        mp_array_destroy(obj);
        break;
    }
}

/* Frees what a test named (a named queue keeps its eventfd open in the
 * process that created it until it is destroyed). */

void mp_test_namespace_attributes(mp_namespace *ns)
{
    char *s;
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace()");
    free(s);
    mp_assert_ok(mp_namespace_set_str(ns, "y", "hello"));
    mp_assert_ok(mp_namespace_set_int(ns, "x", 10));
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace(x=10, y='hello')");
    free(s);
    mp_assert_ok(mp_namespace_set_double(ns, "f", 1e16));
    mp_assert_ok(mp_namespace_set_bytes(ns, "b", "a\0", 2));
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace(b=b'a\\x00', f=1e+16, x=10, y='hello')");
    free(s);
    /* Both backends print like CPython: '_' names hidden, "x1=" before "x=". */
    mp_assert_ok(mp_namespace_set_int(ns, "_hidden", 1));
    mp_assert_ok(mp_namespace_set_int(ns, "x1", 2));
    mp_assert_ok(mp_namespace_repr(ns, &s));
    cr_assert_str_eq(s, "Namespace(b=b'a\\x00', f=1e+16, x1=2, x=10, y='hello')");
    free(s);
    mp_assert_ok(mp_namespace_delete(ns, "_hidden"));
    mp_assert_ok(mp_namespace_delete(ns, "x1"));
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
}
