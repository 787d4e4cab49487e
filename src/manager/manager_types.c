/* The types the manager's local backend can name: one row each, with
 * adapters from the table's untyped signatures to the types' own create,
 * destroy and shape getters. */
#include "manager/manager_internal.h"

/* Adapters whose create takes the accessor's opts as they are. */
#define MP__OBJ_ADAPTERS(T)                                                                        \
    static int create_##T(void **out, const void *opts)                                            \
    {                                                                                              \
        return mp_##T##_create((mp_##T **)out, opts);                                              \
    }                                                                                              \
    static void destroy_##T(void *obj)                                                             \
    {                                                                                              \
        mp_##T##_destroy(obj);                                                                     \
    }

MP__OBJ_ADAPTERS(dict)
MP__OBJ_ADAPTERS(list)
MP__OBJ_ADAPTERS(namespace)
MP__OBJ_ADAPTERS(queue)
MP__OBJ_ADAPTERS(sem)
MP__OBJ_ADAPTERS(barrier)
MP__OBJ_ADAPTERS(value)
MP__OBJ_ADAPTERS(array)

/* Locks, conditions and events are always made with their defaults: a
 * condition then owns its rlock (Python's Condition()), which a name can
 * share, where a borrowed lock could not be (it would need a name too). */
#define MP__OBJ_ADAPTERS_NOOPTS(T)                                                                 \
    static int create_##T(void **out, const void *opts)                                            \
    {                                                                                              \
        (void)opts;                                                                                \
        return mp_##T##_create((mp_##T **)out, NULL);                                              \
    }                                                                                              \
    static void destroy_##T(void *obj)                                                             \
    {                                                                                              \
        mp_##T##_destroy(obj);                                                                     \
    }

MP__OBJ_ADAPTERS_NOOPTS(lock)
MP__OBJ_ADAPTERS_NOOPTS(rlock)
MP__OBJ_ADAPTERS_NOOPTS(cond)
MP__OBJ_ADAPTERS_NOOPTS(event)

static int fits_barrier(void *obj, const void *opts)
{
    const mp_barrier_opts *o = opts;
    return mp_barrier_parties(obj) == (int)o->parties ? 0 : MP_EEXIST;
}

static int fits_value(void *obj, const void *opts)
{
    const mp_value_opts *o = opts;
    bool raw = mp_value_get_lock(obj) == NULL;
    return mp_value_typecode(obj) == o->typecode && raw == o->raw ? 0 : MP_EEXIST;
}

static int fits_array(void *obj, const void *opts)
{
    const mp_array_opts *o = opts;
    bool raw = mp_array_get_lock(obj) == NULL;
    return mp_array_typecode(obj) == o->typecode && mp_array_len(obj) == o->len && raw == o->raw
               ? 0
               : MP_EEXIST;
}

/* The types the registry knows. A new shared type adds its tag to
 * mp__objtype, a row here and an accessor in manager/manager.c. */
const mp__objtype_ops mp__objtypes[MP__OBJ_TYPE_END] = {
    [MP__OBJ_DICT] = {"dict", create_dict, destroy_dict, NULL},
    [MP__OBJ_LIST] = {"list", create_list, destroy_list, NULL},
    [MP__OBJ_NAMESPACE] = {"namespace", create_namespace, destroy_namespace, NULL},
    [MP__OBJ_QUEUE] = {"queue", create_queue, destroy_queue, NULL},
    [MP__OBJ_LOCK] = {"lock", create_lock, destroy_lock, NULL},
    [MP__OBJ_RLOCK] = {"rlock", create_rlock, destroy_rlock, NULL},
    [MP__OBJ_SEM] = {"sem", create_sem, destroy_sem, NULL},
    [MP__OBJ_COND] = {"cond", create_cond, destroy_cond, NULL},
    [MP__OBJ_EVENT] = {"event", create_event, destroy_event, NULL},
    [MP__OBJ_BARRIER] = {"barrier", create_barrier, destroy_barrier, fits_barrier},
    [MP__OBJ_VALUE] = {"value", create_value, destroy_value, fits_value},
    [MP__OBJ_ARRAY] = {"array", create_array, destroy_array, fits_array},
};
