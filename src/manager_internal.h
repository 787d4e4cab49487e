/* The manager's two tables: backends and named-object types. Not
 * installed; docs/design.md explains how to add to either. */
#ifndef MULTIPROC_MANAGER_INTERNAL_H
#define MULTIPROC_MANAGER_INTERNAL_H

#include <stdbool.h>

#include "internal.h"

/* The type tag stored with each name. Values are stored in the shared
 * registry: never renumber them, only append. */
typedef enum mp__objtype {
    MP__OBJ_DICT = 1,
    MP__OBJ_LIST = 2,
    MP__OBJ_NAMESPACE = 3,
    MP__OBJ_TYPE_END /* one past the last */
} mp__objtype;

/* How the local backend makes an object of a type, with default options
 * (opts NULL) or those the accessor passes. The object must start with an
 * mp__obj_head (item_internal.h), so that the registry can mark it named. */
typedef struct mp__objtype_ops {
    const char *name; /* "dict": for messages */
    int (*create)(void **out, const void *opts);
    /* Frees an object create made (used when registering it failed). */
    void (*destroy)(void *obj);
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
     * (MP_EEXIST for a name of another type). */
    int (*get)(void *state, mp__objtype type, const char *name, const void *opts, void **out);
} mp__backend_ops;

extern const mp__backend_ops mp__backend_local;
#ifdef MP_HAVE_REDIS
extern const mp__backend_ops mp__backend_redis; /* redis_manager.c */
#endif

#endif /* MULTIPROC_MANAGER_INTERNAL_H */
