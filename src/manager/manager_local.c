/* The local backend of the manager: a registry in the shared heap.
 *
 * The registry is itself a shared dict: name -> (type tag, object
 * pointer). Create-or-open runs as one mp_dict_update_with on the name, so
 * it is atomic across processes (the creation happens under the name's
 * shard lock) and robust: a process killed while creating leaves the name
 * absent (the half-made object leaks), never a name without its object.
 *
 * The registry is anchored in a root slot of the heap's header, so every
 * process that maps the family's heap finds it, however it was started. */
#include <stdatomic.h>
#include <string.h>

#include "heap/heap.h"
#include "containers/item_internal.h"
#include "manager/manager_internal.h"

typedef struct name_rec {
    uint32_t type;
    uint32_t pad;
    void *obj;
} name_rec;

static bool local_accepts(const char *url)
{
    return url == NULL || strcmp(url, "local") == 0;
}

/* The first opener in the family makes the registry; racing first openers
 * agree through the root's compare-and-swap, and a loser frees its own
 * copy. A process killed between the two steps leaks an empty dict. */
static int local_open(void **state, const char *url)
{
    (void)url;
    _Atomic(void *) *root;
    int rc = mp__heap_root(MP__ROOT_MANAGER, &root);
    if (rc < 0)
        return rc;
    void *r = atomic_load_explicit(root, memory_order_acquire);
    if (r == NULL) {
        mp_dict *mine;
        if ((rc = mp_dict_create(&mine, &(mp_dict_opts){.shards = 16})) < 0)
            return rc;
        ((mp__obj_head *)mine)->flags |= MP__OBJ_NAMED;
        if (atomic_compare_exchange_strong(root, &r, mine)) {
            r = mine;
        } else {
            ((mp__obj_head *)mine)->flags &= (uint16_t)~MP__OBJ_NAMED;
            mp_dict_destroy(mine);
        }
    }
    *state = r;
    return 0;
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
        if (a->rec.type != (uint32_t)a->type)
            return MP_EEXIST;
        const mp__objtype_ops *t = &mp__objtypes[a->type];
        return t->fits && t->fits(a->rec.obj, a->opts) < 0 ? MP_EEXIST : MP_DICT_KEEP;
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
            mp__debug("manager: '%s' is not a %s of these parameters", name,
                      mp__objtypes[type].name);
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

static int take_name(mp_dict_change *u, void *user)
{
    if (!u->found)
        return MP_ENOENT;
    if (u->old_len != sizeof(name_rec))
        return MP_EBADMSG;
    memcpy(user, u->old, sizeof(name_rec));
    return MP_DICT_DELETE;
}

/* The name goes first, under its shard lock; the object is freed after,
 * outside it. A process killed in between leaks the object, which nobody
 * can reach by name any more. */
static int local_remove(void *state, const char *name, unsigned flags)
{
    name_rec rec = {0};
    int rc = mp_dict_update_with(state, name, strlen(name), take_name, &rec);
    if (rc < 0)
        return rc;
    if ((flags & MP_MANAGER_DESTROY) && rec.type > 0 && rec.type < MP__OBJ_TYPE_END) {
        ((mp__obj_head *)rec.obj)->flags &= (uint16_t)~MP__OBJ_NAMED;
        mp__objtypes[rec.type].destroy(rec.obj);
    }
    return 0;
}

const mp__backend_ops mp__backend_local = {
    .name = "local",
    .accepts = local_accepts,
    .open = local_open,
    .close = local_close,
    .get = local_get,
    .remove = local_remove,
};
