/* The manager's two tables: backends and named-object types. Not
 * installed; docs/manager.md explains how to add to either. */
#ifndef MULTIPROC_MANAGER_INTERNAL_H
#define MULTIPROC_MANAGER_INTERNAL_H

#include <stdbool.h>

#include "heap/heap_object.h"
#include "base/internal.h"

/* The type tag stored with each name. Values are stored in the shared
 * registry (and by the Redis backend): never renumber them, only append.
 *
 * The opts a backend's get receives, per tag (NULL: the type's defaults;
 * the public accessor has validated them):
 *   DICT, LIST, NAMESPACE, LOCK, RLOCK, COND, EVENT: NULL
 *   QUEUE: const mp_queue_opts *     SEM: const mp_sem_opts *
 *   BARRIER: const mp_barrier_opts * (parties only, never NULL)
 *   VALUE: const mp_value_opts *     ARRAY: const mp_array_opts *
 *          (never NULL, lock always NULL) */
typedef enum mp__objtype {
    MP__OBJ_DICT = 1,
    MP__OBJ_LIST = 2,
    MP__OBJ_NAMESPACE = 3,
    MP__OBJ_QUEUE = 4,
    MP__OBJ_LOCK = 5,
    MP__OBJ_RLOCK = 6,
    MP__OBJ_SEM = 7,
    MP__OBJ_COND = 8,
    MP__OBJ_EVENT = 9,
    MP__OBJ_BARRIER = 10,
    MP__OBJ_VALUE = 11,
    MP__OBJ_ARRAY = 12,
    MP__OBJ_TYPE_END /* one past the last */
} mp__objtype;

/* How the local backend makes an object of a type, with default options
 * (opts NULL) or those the accessor passes. The object must start with an
 * mp__obj_head (base/internal.h), so that the registry can mark it named. */
typedef struct mp__objtype_ops {
    const char *name; /* "dict": for messages */
    int (*create)(void **out, const void *opts);
    /* Frees an object create made (used when registering it failed, and
     * by mp_manager_remove with MP_MANAGER_DESTROY); the named flag is
     * cleared first. */
    void (*destroy)(void *obj);
    /* Whether an existing object matches the parameters that define its
     * shape (typecode, length, parties): 0, or MP_EEXIST. NULL: every
     * object of the type matches (its opts only matter at creation). */
    int (*fits)(void *obj, const void *opts);
} mp__objtype_ops;

extern const mp__objtype_ops mp__objtypes[MP__OBJ_TYPE_END];

/* A backend: where the named objects live (SQLite's mutex-methods
 * pattern). The public manager functions only validate arguments and call
 * through this table. */
typedef struct mp__backend_ops {
    const char *name;
    /* Does this backend serve that URL? */
    bool (*accepts)(const char *url);
    int (*open)(void **state, const char *url);
    void (*close)(void *state);
    /* Returns 1 (created) or 0 (existed) and *out, or an error
     * (MP_EEXIST for a name of another type, or of this type with other
     * defining parameters). */
    int (*get)(void *state, mp__objtype type, const char *name, const void *opts, void **out);
    /* Unregisters name: 0 or MP_ENOENT. flags: 0 or MP_MANAGER_DESTROY. */
    int (*remove)(void *state, const char *name, unsigned flags);
    /* The distributed pool this backend serves (pool/pool_backend.h),
     * registered with the pool module when any manager opens; NULL: none. */
    const struct mp__pool_backend *pool;
} mp__backend_ops;

extern const mp__backend_ops mp__backend_local;
#ifdef MP_HAVE_REDIS
extern const mp__backend_ops mp__backend_redis; /* redis/redis_manager.c */
#endif

/* The connection (an mp__redis) of a Redis manager; NULL for any other
 * manager (manager/manager.c). */
void *mp__manager_redis_conn(struct mp_manager *m);

#endif /* MULTIPROC_MANAGER_INTERNAL_H */
