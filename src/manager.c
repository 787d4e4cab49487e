/* The manager: URL dispatch to a backend, and the typed accessors. */
#include <stdlib.h>
#include <string.h>

#include "item_internal.h"
#include "manager_internal.h"

struct mp_manager {
    const mp__backend_ops *ops;
    void *state;
};

static int create_dict(void **out, const void *opts)
{
    return mp_dict_create((mp_dict **)out, opts);
}

static void destroy_dict(void *obj)
{
    mp_dict_destroy(obj);
}

static void destroy_list(void *obj)
{
    mp_list_destroy(obj);
}

static void destroy_namespace(void *obj)
{
    mp_namespace_destroy(obj);
}

static int create_list(void **out, const void *opts)
{
    return mp_list_create((mp_list **)out, opts);
}

static int create_namespace(void **out, const void *opts)
{
    return mp_namespace_create((mp_namespace **)out, opts);
}

/* The types the registry knows. A new shared type adds its tag to
 * mp__objtype, a row here and an accessor below. */
const mp__objtype_ops mp__objtypes[MP__OBJ_TYPE_END] = {
    [MP__OBJ_DICT] = {"dict", create_dict, destroy_dict},
    [MP__OBJ_LIST] = {"list", create_list, destroy_list},
    [MP__OBJ_NAMESPACE] = {"namespace", create_namespace, destroy_namespace},
};

static bool is_redis_url(const char *url)
{
    return strncmp(url, "redis://", 8) == 0 || strncmp(url, "rediss://", 9) == 0;
}

int mp_manager_open(mp_manager **out, const char *url)
{
    if (out == NULL)
        return MP_EINVAL;
    static const mp__backend_ops *const backends[] = {
        &mp__backend_local,
#ifdef MP_HAVE_REDIS
        &mp__backend_redis,
#endif
    };
    const mp__backend_ops *ops = NULL;
    for (size_t i = 0; i < MP__ARRAY_LEN(backends) && ops == NULL; i++)
        if (backends[i]->accepts(url))
            ops = backends[i];
    if (ops == NULL) {
        if (url && is_redis_url(url)) {
            mp__debug("manager: the Redis backend is not built in this version");
            return MP_ENOSYS;
        }
        return MP_EINVAL;
    }
    mp_manager *m = malloc(sizeof(*m));
    if (m == NULL)
        return MP_ENOMEM;
    int rc = ops->open(&m->state, url);
    if (rc < 0) {
        free(m);
        return rc;
    }
    m->ops = ops;
    *out = m;
    return 0;
}

void mp_manager_close(mp_manager *m)
{
    if (m == NULL)
        return;
    m->ops->close(m->state);
    free(m);
}

const char *mp_manager_backend(const mp_manager *m)
{
    return m ? m->ops->name : NULL;
}

static int manager_get(mp_manager *m, mp__objtype type, const char *name, const void *opts,
                       void **out)
{
    if (m == NULL || name == NULL || out == NULL)
        return MP_EINVAL;
    size_t n = strlen(name);
    if (n == 0 || n > MP_MANAGER_NAME_MAX)
        return MP_EINVAL;
    return m->ops->get(m->state, type, name, opts, out);
}

int mp_manager_dict(mp_manager *m, const char *name, mp_dict **out)
{
    return manager_get(m, MP__OBJ_DICT, name, NULL, (void **)out);
}

int mp_manager_list(mp_manager *m, const char *name, mp_list **out)
{
    return manager_get(m, MP__OBJ_LIST, name, NULL, (void **)out);
}

int mp_manager_namespace(mp_manager *m, const char *name, mp_namespace **out)
{
    return manager_get(m, MP__OBJ_NAMESPACE, name, NULL, (void **)out);
}
