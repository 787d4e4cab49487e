/* Start methods: the process-wide default and the dispatch of a start. */
#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "process/boot.h"

/* 0 while unset: the environment decides on first use. */
static _Atomic int mp__default_method;

static mp_start_method mp__method_from_env(void)
{
    const char *v = secure_getenv("MP_START_METHOD");
    if (v && strcmp(v, "spawn") == 0)
        return MP_START_SPAWN;
    if (v && strcmp(v, "forkserver") == 0)
        return MP_START_FORKSERVER;
    if (v && *v && strcmp(v, "fork") != 0)
        mp__debug("MP_START_METHOD=%s is not a start method; using fork", v);
    return MP_START_FORK;
}

int mp_set_start_method(mp_start_method method)
{
    if (method < MP_START_DEFAULT || method > MP_START_FORKSERVER)
        return MP_EINVAL;
    atomic_store(&mp__default_method, (int)method);
    return 0;
}

mp_start_method mp_get_start_method(void)
{
    int m = atomic_load(&mp__default_method);
    return m ? (mp_start_method)m : mp__method_from_env();
}

const char *mp_start_method_name(mp_start_method method)
{
    switch (method) {
    case MP_START_FORK:
        return "fork";
    case MP_START_SPAWN:
        return "spawn";
    case MP_START_FORKSERVER:
        return "forkserver";
    case MP_START_DEFAULT:
        return mp_start_method_name(mp_get_start_method());
    }
    return "?";
}

mp_start_method mp_process_start_method(const mp_process *p)
{
    return p ? p->method : MP_START_DEFAULT;
}

/* Threads of this process, from /proc/self/task; 0 if unknown. */
static int mp__thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Every fd to pass must be open, whatever the method (a forked child would
 * otherwise find nothing at that number, or whatever took it later). */
static int mp__check_pass_fds(const mp_process *p)
{
    for (size_t i = 0; i < p->n_pass_fds; i++)
        if (fcntl(p->pass_fds[i], F_GETFD) < 0)
            return MP_EBADF;
    return 0;
}

int mp__process_launch(mp_process *p, const mp__deadline *d)
{
    int rc = mp__check_pass_fds(p);
    if (rc < 0)
        return rc;
    switch (p->method) {
    case MP_START_SPAWN:
        return mp__process_spawn(p, d);
    case MP_START_FORKSERVER:
        return mp__forkserver_start(p, d);
    default:
        break;
    }
    /* Only under MP_DEBUG: counting threads costs a directory scan. */
    if (mp__debug_enabled()) {
        int n = mp__thread_count();
        if (n > 1)
            mp__debug("fork with %d threads: only the calling thread exists in the child, "
                      "and locks held by the others stay locked there; consider the "
                      "spawn or forkserver start method",
                      n);
    }
    return mp__process_fork(p);
}
