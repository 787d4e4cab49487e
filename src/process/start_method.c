/* Start methods: the process-wide default, and the one place that maps a
 * method to its table (process/start_method.h). */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "process/start_method.h"

static const mp__start_method *const mp__start_methods[] = {
    [MP_START_FORK] = &mp__start_fork,
    [MP_START_SPAWN] = &mp__start_spawn,
    [MP_START_FORKSERVER] = &mp__start_forkserver,
};

/* 0 while unset: the environment decides on first use. */
static _Atomic int default_method;

static mp_start_method method_from_env(void)
{
    const char *v = secure_getenv("MP_START_METHOD");
    if (v && *v) {
        for (size_t i = 1; i < MP__ARRAY_LEN(mp__start_methods); i++)
            if (strcmp(v, mp__start_methods[i]->name) == 0)
                return mp__start_methods[i]->id;
        mp__debug("MP_START_METHOD=%s is not a start method; using fork", v);
    }
    return MP_START_FORK;
}

const mp__start_method *mp__start_method_of(mp_start_method method)
{
    if (method == MP_START_DEFAULT)
        method = mp_get_start_method();
    if (method <= MP_START_DEFAULT || (size_t)method >= MP__ARRAY_LEN(mp__start_methods))
        return NULL;
    return mp__start_methods[method];
}

int mp_set_start_method(mp_start_method method)
{
    if (method != MP_START_DEFAULT && !mp__start_method_of(method))
        return mp__fail(MP_EINVAL,
                        "mp_set_start_method: %d is not an mp_start_method (or not "
                        "built)",
                        (int)method);
    atomic_store(&default_method, (int)method);
    return 0;
}

mp_start_method mp_get_start_method(void)
{
    int m = atomic_load(&default_method);
    return m ? (mp_start_method)m : method_from_env();
}

const char *mp_start_method_name(mp_start_method method)
{
    const mp__start_method *m = mp__start_method_of(method);
    return m ? m->name : "?";
}

mp_start_method mp_process_start_method(const mp_process *p)
{
    return p ? p->method : MP_START_DEFAULT;
}

/* Every fd to pass must be open, whatever the method (a forked child would
 * otherwise find nothing at that number, or whatever took it later). */
static int check_pass_fds(const mp_process *p)
{
    for (size_t i = 0; i < p->n_pass_fds; i++)
        if (fcntl(p->pass_fds[i], F_GETFD) < 0)
            return MP_EBADF;
    return 0;
}

int mp__process_launch(mp_process *p, const mp__deadline *d)
{
    int rc = check_pass_fds(p);
    if (rc < 0)
        return rc;
    return mp__start_method_of(p->method)->launch(p, d);
}
