/* The local backend of the manager: a registry in the shared heap.
 *
 * The registry is itself a shared dict: name -> (type tag, object
 * pointer). Create-or-open runs as one mp_dict_update_with on the name, so
 * it is atomic across processes (the creation happens under the name's
 * shard lock) and robust: a process killed while creating leaves the name
 * absent (the half-made object leaks), never a name without its object. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "item_internal.h"
#include "manager_internal.h"

typedef struct name_rec {
    uint32_t type;
    uint32_t pad;
    void *obj;
} name_rec;

/* The family's registry. Process memory, so a forked child inherits the
 * pointer, and the dict it points to is in the shared heap. */
static _Atomic(mp_dict *) registry;
static pthread_mutex_t registry_init = PTHREAD_MUTEX_INITIALIZER;

static bool local_accepts(const char *url)
{
    return url == NULL || strcmp(url, "local") == 0;
}

static int local_open(void **state, const char *url)
{
    (void)url;
    mp_dict *r = atomic_load(&registry);
    int rc = 0;
    if (r == NULL) {
        pthread_mutex_lock(&registry_init);
        r = atomic_load(&registry);
        if (r == NULL) {
            rc = mp_dict_create(&r, &(mp_dict_opts){.shards = 16});
            if (rc == 0) {
                ((mp__obj_head *)r)->flags |= MP__OBJ_NAMED;
                atomic_store(&registry, r);
            }
        }
        pthread_mutex_unlock(&registry_init);
    }
    *state = r;
    return rc;
}

static void local_close(void *state)
{
    (void)state; /* the registry lives as long as the family */
}

typedef struct get_args {
    mp__objtype type;
    const void *opts;
    name_rec rec;
    int created;
} get_args;

static int create_or_check(mp_dict_change *u, void *user)
{
    get_args *a = user;
    if (u->found) {
        if (u->old_len != sizeof(name_rec))
            return MP_EBADMSG;
        memcpy(&a->rec, u->old, sizeof(a->rec));
        return a->rec.type == (uint32_t)a->type ? MP_DICT_KEEP : MP_EEXIST;
    }
    void *obj;
    int rc = mp__objtypes[a->type].create(&obj, a->opts);
    if (rc < 0)
        return rc;
    ((mp__obj_head *)obj)->flags |= MP__OBJ_NAMED;
    a->rec = (name_rec){.type = (uint32_t)a->type, .obj = obj};
    a->created = 1;
    u->new_value = MP_ITEM_BYTES(&a->rec, sizeof(a->rec));
    return MP_DICT_STORE;
}

static int local_get(void *state, mp__objtype type, const char *name, const void *opts, void **out)
{
    if (type <= 0 || type >= MP__OBJ_TYPE_END || mp__objtypes[type].create == NULL)
        return MP_EINVAL;
    get_args a = {.type = type, .opts = opts};
    int rc = mp_dict_update_with(state, name, strlen(name), create_or_check, &a);
    if (rc < 0) {
        if (rc == MP_EEXIST)
            mp__debug("manager: '%s' is not a %s", name, mp__objtypes[type].name);
        /* The store failed after the object was made: unmark and free it. */
        if (a.created) {
            ((mp__obj_head *)a.rec.obj)->flags &= (uint16_t)~MP__OBJ_NAMED;
            mp__objtypes[type].destroy(a.rec.obj);
        }
        return rc;
    }
    *out = a.rec.obj;
    return a.created;
}

const mp__backend_ops mp__backend_local = {
    .name = "local",
    .accepts = local_accepts,
    .open = local_open,
    .close = local_close,
    .get = local_get,
};
