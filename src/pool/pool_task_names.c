/* The task registry of the distributed pool: names that clients and
 * workers agree on (mp_task_register). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "pool/pool_backend.h"

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
