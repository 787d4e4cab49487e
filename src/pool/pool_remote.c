/* The task registry of the distributed pool (names that clients and
 * workers agree on), and, in a build without hiredis, the distributed
 * pool's entry points as stubs: a pool with a manager is then MP_ENOSYS. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "pool/rpool.h"

typedef struct mp__task_name {
    struct mp__task_name *next;
    mp_task_fn fn;
    size_t len;
    char name[];
} mp__task_name_rec;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static mp__task_name_rec *reg_head;

static mp__task_name_rec *find_locked(const char *name, size_t len, mp_task_fn fn)
{
    for (mp__task_name_rec *r = reg_head; r; r = r->next)
        if ((name && r->len == len && memcmp(r->name, name, len) == 0) || (!name && r->fn == fn))
            return r;
    return NULL;
}

int mp_task_register(const char *name, mp_task_fn fn)
{
    size_t len = name ? strnlen(name, MP_TASK_NAME_MAX + 1) : 0;
    if (len == 0 || len > MP_TASK_NAME_MAX || fn == NULL)
        return MP_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&reg_mu);
    mp__task_name_rec *by_name = find_locked(name, len, NULL);
    mp__task_name_rec *by_fn = find_locked(NULL, 0, fn);
    if (by_name || by_fn) {
        rc = by_name && by_name == by_fn ? 0 : MP_EEXIST;
        goto out;
    }
    mp__task_name_rec *r = malloc(sizeof(*r) + len + 1);
    if (r == NULL) {
        rc = MP_ENOMEM;
        goto out;
    }
    r->fn = fn;
    r->len = len;
    memcpy(r->name, name, len + 1);
    r->next = reg_head;
    reg_head = r;
out:
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

/* Records are never freed, so a name handed out stays valid. */
const char *mp__task_name(mp_task_fn fn)
{
    pthread_mutex_lock(&reg_mu);
    mp__task_name_rec *r = find_locked(NULL, 0, fn);
    pthread_mutex_unlock(&reg_mu);
    return r ? r->name : NULL;
}

mp_task_fn mp__task_lookup(const char *name, size_t len)
{
    pthread_mutex_lock(&reg_mu);
    mp__task_name_rec *r = len ? find_locked(name, len, NULL) : NULL;
    pthread_mutex_unlock(&reg_mu);
    return r ? r->fn : NULL;
}

#ifndef MP_HAVE_REDIS
/* A remote object is never made in this build: only create and the
 * worker entry points are reachable. */
int mp__rpool_create(mp_pool **out, const mp_pool_opts *o)
{
    (void)out;
    (void)o;
    return MP_ENOSYS;
}

int mp_worker_serve(struct mp_manager *m, const char *pool_name, const mp_worker_opts *opts)
{
    (void)opts;
    return m && pool_name ? MP_ENOSYS : MP_EINVAL;
}

int mp_worker_stop(struct mp_manager *m, const char *pool_name)
{
    return m && pool_name ? MP_ENOSYS : MP_EINVAL;
}
/* Unreachable without a remote object; defined so that pool*.c link. */
int mp__rpool_apply_async(mp_pool *p, mp_task_fn fn, void *ctx, const void *in, size_t in_len,
                          size_t out_cap, mp_async_cb cb, mp_async_cb err_cb, void *user,
                          mp_async **out)
{
    (void)p, (void)fn, (void)ctx, (void)in, (void)in_len, (void)out_cap;
    (void)cb, (void)err_cb, (void)user, (void)out;
    return MP_ENOSYS;
}
int mp__rpool_map_async(mp_pool *p, const mp_map_spec *s, mp_async_cb cb, mp_async_cb err_cb,
                        void *user, mp_async **out)
{
    (void)p, (void)s, (void)cb, (void)err_cb, (void)user, (void)out;
    return MP_ENOSYS;
}
int mp__rpool_imap(mp_pool *p, const mp_map_spec *s, bool ordered, mp_imap **out)
{
    (void)p, (void)s, (void)ordered, (void)out;
    return MP_ENOSYS;
}
int mp__rpool_close(mp_pool *p)
{
    (void)p;
    return MP_ENOSYS;
}
int mp__rpool_terminate(mp_pool *p)
{
    (void)p;
    return MP_ENOSYS;
}
int mp__rpool_join(mp_pool *p, double timeout)
{
    (void)p, (void)timeout;
    return MP_ENOSYS;
}
int mp__rpool_poll(mp_pool *p)
{
    (void)p;
    return MP_ENOSYS;
}
void mp__rpool_destroy(mp_pool *p)
{
    (void)p;
}
int mp__rasync_wait(mp_async *a, double timeout)
{
    (void)a, (void)timeout;
    return MP_ENOSYS;
}
int mp__rasync_get(mp_async *a, void *out, size_t out_cap, size_t *out_len, double timeout)
{
    (void)a, (void)out, (void)out_cap, (void)out_len, (void)timeout;
    return MP_ENOSYS;
}
bool mp__rasync_ready(mp_async *a)
{
    (void)a;
    return false;
}
int mp__rasync_successful(mp_async *a)
{
    (void)a;
    return MP_ENOSYS;
}
int mp__rasync_error(const mp_async *a, size_t i, mp_task_error *out)
{
    (void)a, (void)i, (void)out;
    return MP_ENOSYS;
}
void mp__rasync_destroy(mp_async *a)
{
    (void)a;
}
int mp__rimap_next(mp_imap *it, void *item, size_t *index, mp_task_error *err, double timeout)
{
    (void)it, (void)item, (void)index, (void)err, (void)timeout;
    return MP_ENOSYS;
}
void mp__rimap_destroy(mp_imap *it)
{
    (void)it;
}
#endif
