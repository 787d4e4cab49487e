/* The task registry of the distributed pool: names that clients and
 * workers agree on (mp_task_register, mp_for_register). Task functions and
 * parallel-for functions share one name space, so that a name means one
 * function whichever kind a client sends it as. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "pool/pool_backend.h"

typedef struct mp__task_name {
    struct mp__task_name *next;
    void *addr;  /* the function (POSIX: functions have data-pointer size) */
    bool is_for; /* an mp_for_fn, else an mp_task_fn */
    size_t len;
    char name[];
} mp__task_name_rec;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static mp__task_name_rec *reg_head;

static mp__task_name_rec *find_locked(const char *name, size_t len, const void *addr)
{
    for (mp__task_name_rec *r = reg_head; r; r = r->next)
        if ((name && r->len == len && memcmp(r->name, name, len) == 0) ||
            (!name && r->addr == addr))
            return r;
    return NULL;
}

static int add(const char *name, void *addr, bool is_for)
{
    size_t len = name ? strnlen(name, MP_TASK_NAME_MAX + 1) : 0;
    const char *f = is_for ? "mp_for_register" : "mp_task_register";
    if (addr == NULL)
        return mp__fail(MP_EINVAL, "%s: fn is NULL", f);
    if (len == 0 || len > MP_TASK_NAME_MAX)
        return mp__fail(MP_EINVAL, "%s: name is %s (1..%d characters)", f,
                        !name      ? "NULL"
                        : len == 0 ? "empty"
                                   : "too long",
                        MP_TASK_NAME_MAX);
    int rc = 0;
    pthread_mutex_lock(&reg_mu);
    mp__task_name_rec *by_name = find_locked(name, len, NULL);
    mp__task_name_rec *by_fn = find_locked(NULL, 0, addr);
    if (by_name || by_fn) {
        rc = by_name && by_name == by_fn && by_name->is_for == is_for ? 0 : MP_EEXIST;
        goto out;
    }
    mp__task_name_rec *r = malloc(sizeof(*r) + len + 1);
    if (r == NULL) {
        rc = MP_ENOMEM;
        goto out;
    }
    r->addr = addr;
    r->is_for = is_for;
    r->len = len;
    memcpy(r->name, name, len + 1);
    r->next = reg_head;
    reg_head = r;
out:
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

int mp_task_register(const char *name, mp_task_fn fn)
{
    void *addr;
    memcpy(&addr, &fn, sizeof(addr));
    return add(name, addr, false);
}

int mp_for_register(const char *name, mp_for_fn fn)
{
    void *addr;
    memcpy(&addr, &fn, sizeof(addr));
    return add(name, addr, true);
}

/* Records are never freed, so a name handed out stays valid. */
static const char *name_of(const void *addr, bool is_for)
{
    pthread_mutex_lock(&reg_mu);
    mp__task_name_rec *r = addr ? find_locked(NULL, 0, addr) : NULL;
    pthread_mutex_unlock(&reg_mu);
    return r && r->is_for == is_for ? r->name : NULL;
}

static void *lookup(const char *name, size_t len, bool is_for)
{
    pthread_mutex_lock(&reg_mu);
    mp__task_name_rec *r = len ? find_locked(name, len, NULL) : NULL;
    pthread_mutex_unlock(&reg_mu);
    return r && r->is_for == is_for ? r->addr : NULL;
}

const char *mp__task_name(mp_task_fn fn)
{
    void *addr;
    memcpy(&addr, &fn, sizeof(addr));
    return name_of(addr, false);
}

mp_task_fn mp__task_lookup(const char *name, size_t len)
{
    void *addr = lookup(name, len, false);
    mp_task_fn fn;
    memcpy(&fn, &addr, sizeof(fn));
    return fn;
}

const char *mp__for_name(mp_for_fn fn)
{
    void *addr;
    memcpy(&addr, &fn, sizeof(addr));
    return name_of(addr, true);
}

mp_for_fn mp__for_lookup(const char *name, size_t len)
{
    void *addr = lookup(name, len, true);
    mp_for_fn fn;
    memcpy(&fn, &addr, sizeof(fn));
    return fn;
}
