/* The manager: URL dispatch to a backend, and the typed accessors, which
 * validate every argument before any backend sees it. */
#include <stdlib.h>
#include <string.h>

#include "manager/manager_internal.h"
#include "pool/pool_backend.h"
#include "queue/queue_internal.h"

struct mp_manager {
    const mp__backend_ops *ops;
    void *state;
};

static bool is_redis_url(const char *url)
{
    return strncmp(url, "redis://", 8) == 0 || strncmp(url, "rediss://", 9) == 0;
}

static const mp__backend_ops *const backends[] = {
    &mp__backend_local,
#ifdef MP_HAVE_REDIS
    &mp__backend_redis,
#endif
};

/* A pool with a manager, and a worker, need a manager handle: registering
 * the distributed pools here makes them known before either can be made. */
static void register_pools(void)
{
    for (size_t i = 0; i < MP__ARRAY_LEN(backends); i++)
        if (backends[i]->pool)
            mp__pool_distributed_register(backends[i]->pool);
}

int mp_manager_open(mp_manager **out, const char *url)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_manager_open: out is NULL");
    register_pools();
    const mp__backend_ops *ops = NULL;
    for (size_t i = 0; i < MP__ARRAY_LEN(backends) && ops == NULL; i++)
        if (backends[i]->accepts(url))
            ops = backends[i];
    if (ops == NULL) {
        if (url && is_redis_url(url)) {
            return mp__fail(MP_ENOSYS, "mp_manager_open: the Redis backend is not built in this "
                                       "version");
        }
        /* Only the scheme is quoted: the rest may hold a password. */
        size_t n = strcspn(url, ":/@?");
        return mp__fail(MP_EINVAL,
                        "mp_manager_open: URL '%.*s%s' is neither \"local\" (or NULL) nor "
                        "redis://... or rediss://...",
                        (int)(n > 16 ? 16 : n), url, url[n] ? "..." : "");
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

static int check_name(const mp_manager *m, const char *name)
{
    if (m == NULL || name == NULL)
        return mp__fail(MP_EINVAL, "manager: %s is NULL", m ? "name" : "the manager");
    size_t n = strnlen(name, MP_MANAGER_NAME_MAX + 1);
    if (n == 0 || n > MP_MANAGER_NAME_MAX)
        return mp__fail(MP_EINVAL, "manager: name is %s (1..%d bytes)", n ? "too long" : "empty",
                        MP_MANAGER_NAME_MAX);
    return 0;
}

static int manager_get(mp_manager *m, mp__objtype type, const char *name, const void *opts,
                       void **out)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "manager: out is NULL");
    if (check_name(m, name) < 0)
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

int mp_manager_queue(mp_manager *m, const char *name, const mp_queue_opts *opts, mp_queue **out)
{
    int rc;
    if (opts != NULL && (rc = mp__queue_check_opts(opts)) < 0)
        return rc; /* its detail names the option (as mp_queue_create checks them) */
    return manager_get(m, MP__OBJ_QUEUE, name, opts, (void **)out);
}

int mp_manager_lock(mp_manager *m, const char *name, mp_lock **out)
{
    return manager_get(m, MP__OBJ_LOCK, name, NULL, (void **)out);
}

int mp_manager_rlock(mp_manager *m, const char *name, mp_rlock **out)
{
    return manager_get(m, MP__OBJ_RLOCK, name, NULL, (void **)out);
}

int mp_manager_sem(mp_manager *m, const char *name, const mp_sem_opts *opts, mp_sem **out)
{
    if (opts != NULL && opts->value > MP_SEM_VALUE_MAX)
        return mp__fail(MP_EINVAL, "mp_manager_sem: opts->value %u is above MP_SEM_VALUE_MAX",
                        (unsigned)opts->value);
    return manager_get(m, MP__OBJ_SEM, name, opts, (void **)out);
}

int mp_manager_cond(mp_manager *m, const char *name, mp_cond **out)
{
    return manager_get(m, MP__OBJ_COND, name, NULL, (void **)out);
}

int mp_manager_event(mp_manager *m, const char *name, mp_event **out)
{
    return manager_get(m, MP__OBJ_EVENT, name, NULL, (void **)out);
}

int mp_manager_barrier(mp_manager *m, const char *name, unsigned parties, mp_barrier **out)
{
    if (parties == 0 || parties > INT32_MAX)
        return mp__fail(MP_EINVAL, "mp_manager_barrier: parties is %u (1..INT32_MAX)", parties);
    mp_barrier_opts o = {.parties = parties};
    return manager_get(m, MP__OBJ_BARRIER, name, &o, (void **)out);
}

/* A named value or array owns its lock (or has none): a borrowed lock
 * would have to outlive a name that lives as long as the family. */
static int check_typed(bool no_opts, char typecode, bool lock, const char *f)
{
    if (no_opts)
        return mp__fail(MP_EINVAL, "%s: opts is NULL (a typecode is required)", f);
    if (mp_typecode_size(typecode) < 0)
        return mp__fail(MP_EINVAL, "%s: opts->typecode %d is not one of c b B h H i I l L q Q f d",
                        f, (int)typecode);
    if (lock)
        return mp__fail(MP_EINVAL, "%s: opts->lock must be NULL (a named object owns its lock)", f);
    return 0;
}

int mp_manager_value(mp_manager *m, const char *name, const mp_value_opts *opts, mp_value **out)
{
    int rc = check_typed(opts == NULL, opts ? opts->typecode : 0, opts && opts->lock,
                         "mp_manager_value");
    if (rc < 0)
        return rc;
    return manager_get(m, MP__OBJ_VALUE, name, opts, (void **)out);
}

int mp_manager_array(mp_manager *m, const char *name, const mp_array_opts *opts, mp_array **out)
{
    int rc = check_typed(opts == NULL, opts ? opts->typecode : 0, opts && opts->lock,
                         "mp_manager_array");
    if (rc < 0)
        return rc;
    return manager_get(m, MP__OBJ_ARRAY, name, opts, (void **)out);
}

int mp_manager_remove(mp_manager *m, const char *name, unsigned flags)
{
    int rc = check_name(m, name);
    if (rc < 0)
        return rc;
    if ((flags & ~(unsigned)MP_MANAGER_DESTROY) != 0)
        return mp__fail(MP_EINVAL, "mp_manager_remove: unknown flags 0x%x",
                        flags & ~(unsigned)MP_MANAGER_DESTROY);
    return m->ops->remove(m->state, name, flags);
}

void *mp__manager_redis_conn(mp_manager *m)
{
#ifdef MP_HAVE_REDIS
    if (m && m->ops == &mp__backend_redis)
        return m->state;
#else
    (void)m;
#endif
    return NULL;
}
