/* Pipelines a | b | c: one mp_popen per stage, linked by pipes, with one
 * communicate over the first stdin, the last stdout and a shared stderr. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "subprocess/popen_internal.h"

#define MP__PIPELINE_MAX 256

struct mp_pipeline {
    size_t n;
    mp_popen **st;
    mp__comm comm;
    bool kill_on_timeout;
    pid_t pgid; /* > 0 when the stages share a new process group */
};

static void pipeline_kill_all(mp_pipeline *pl)
{
    if (pl->pgid > 0)
        (void)kill(-pl->pgid, SIGKILL);
    for (size_t i = 0; i < pl->n; i++)
        if (pl->st[i])
            (void)mp_popen_send_signal(pl->st[i], SIGKILL);
    for (size_t i = 0; i < pl->n; i++)
        if (pl->st[i])
            mp__popen_kill_reap(pl->st[i]);
}

/* Options of stage i: its stdin is the previous stage's pipe (prev_r), its
 * stdout the link pipe (link_w) unless it is the last stage. */
static mp_popen_opts stage_opts(const mp_pipeline_opts *o, size_t i, size_t n, int prev_r,
                                int link_w, int err_w)
{
    mp_popen_opts so = {.cwd = o->cwd, .env = o->env, .env_add = o->env_add};
    so.in = i == 0 ? o->in : MP_USE_FD(prev_r);
    so.out = i == n - 1 ? o->out : MP_USE_FD(link_w);
    so.err = err_w >= 0 ? MP_USE_FD(err_w) : o->err;
    so.process_group = o->process_group && i == 0;
    so.die_with_parent = o->die_with_parent;
    so.keep_ignored_signals = o->keep_ignored_signals;
    so.exec_error = o->exec_error;
    return so;
}

/* Starts every stage; on failure, kills and reaps those already started. */
static int pipeline_start(mp_pipeline *pl, const char *const *const *stages,
                          const mp_pipeline_opts *o, int err_w)
{
    int prev_r = -1, rc = 0;
    for (size_t i = 0; i < pl->n && rc == 0; i++) {
        int link[2] = {-1, -1};
        if (i + 1 < pl->n && pipe2(link, O_CLOEXEC) < 0)
            rc = mp__errno();
        mp_popen_opts so = stage_opts(o, i, pl->n, prev_r, link[1], err_w);
        if (rc == 0)
            rc = mp__popen_create(&pl->st[i], stages[i], &so, i > 0 ? pl->pgid : 0);
        if (rc < 0 && o->failed_stage)
            *o->failed_stage = i;
        if (rc == 0 && i == 0 && o->process_group)
            pl->pgid = mp_popen_pid(pl->st[0]);
        mp__close_fd(&prev_r);
        mp__close_fd(&link[1]);
        prev_r = link[0];
    }
    mp__close_fd(&prev_r);
    if (rc < 0)
        pipeline_kill_all(pl);
    return rc;
}

static int pipeline_check(mp_pipeline **out, const char *const *const *stages, size_t n,
                          const mp_pipeline_opts *o)
{
    if (!out || !stages)
        return mp__fail(MP_EINVAL, "mp_pipeline_create: %s is NULL", !out ? "out" : "stages");
    if (n == 0 || n > MP__PIPELINE_MAX)
        return mp__fail(MP_EINVAL, "mp_pipeline_create: n is %zu (must be 1..%d)", n,
                        MP__PIPELINE_MAX);
    for (size_t i = 0; i < n; i++)
        if (!stages[i] || !stages[i][0])
            return mp__fail(MP_EINVAL, "mp_pipeline_create: stages[%zu] is %s", i,
                            !stages[i] ? "NULL" : "empty");
    if (o->in.kind == MP_IO_STDOUT || o->out.kind == MP_IO_STDOUT)
        return mp__fail(MP_EINVAL, "mp_pipeline_create: opts->%s is MP_TO_STDOUT (only err may be)",
                        o->in.kind == MP_IO_STDOUT ? "in" : "out");
    return 0;
}

int mp_pipeline_create(mp_pipeline **out, const char *const *const *stages, size_t n,
                       const mp_pipeline_opts *opts)
{
    static const mp_pipeline_opts defaults;
    const mp_pipeline_opts *o = opts ? opts : &defaults;
    int rc = pipeline_check(out, stages, n, o);
    if (rc < 0)
        return rc;
    int errp[2] = {-1, -1};
    mp_pipeline *pl = calloc(1, sizeof(*pl));
    if (!pl) {
        rc = MP_ENOMEM;
        goto fail;
    }
    pl->comm = (mp__comm){.in_fd = -1, .out_fd = -1, .err_fd = -1};
    if (!(pl->st = calloc(n, sizeof(*pl->st)))) {
        rc = MP_ENOMEM;
        goto fail;
    }
    pl->n = n;
    pl->kill_on_timeout = o->kill_on_timeout;
    if (o->err.kind == MP_IO_PIPE && pipe2(errp, O_CLOEXEC) < 0) {
        rc = mp__errno();
        goto fail;
    }
    if ((rc = pipeline_start(pl, stages, o, errp[1])) < 0)
        goto fail;
    mp__close_fd(&errp[1]);
    pl->comm = (mp__comm){
        .in_fd = pl->st[0]->comm.in_fd, .out_fd = pl->st[n - 1]->comm.out_fd, .err_fd = errp[0]};
    pl->st[0]->comm.in_fd = pl->st[n - 1]->comm.out_fd = -1;
    (void)mp__comm_init(&pl->comm);
    *out = pl;
    return 0;
fail:
    mp__close_fd(&errp[0]);
    mp__close_fd(&errp[1]);
    mp_pipeline_destroy(pl);
    return rc;
}

static int pipeline_wait(mp_pipeline *pl, const mp__deadline *d)
{
    for (size_t i = 0; i < pl->n; i++) {
        int rc = mp__popen_wait(pl->st[i], d);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* pl's creator may use it (MP_EPERM otherwise); NULL is MP_EINVAL. */
static int pipeline_check_owner(const mp_pipeline *pl, const char *fn)
{
    return pl ? mp__popen_check_owner(pl->st[0]) : mp__fail(MP_EINVAL, "%s: pl is NULL", fn);
}

int mp_pipeline_wait(mp_pipeline *pl, double timeout)
{
    mp__deadline d;
    int rc = pipeline_check_owner(pl, __func__);
    if (rc < 0 || (rc = mp__popen_deadline(&d, timeout, __func__)) < 0)
        return rc;
    rc = pipeline_wait(pl, &d);
    if (rc == MP_ETIMEDOUT && pl->kill_on_timeout)
        pipeline_kill_all(pl);
    return rc;
}

int mp_pipeline_communicate(mp_pipeline *pl, const void *input, size_t len, char **out,
                            size_t *out_len, char **err, size_t *err_len, double timeout)
{
    mp__deadline d;
    int rc = pipeline_check_owner(pl, __func__);
    if (rc < 0 || (rc = mp__popen_deadline(&d, timeout, __func__)) < 0)
        return rc;
    if (len > 0 && !input)
        return mp__fail(MP_EINVAL, "mp_pipeline_communicate: input is NULL with len %zu", len);
    if (len > 0 && !pl->comm.pipe[0])
        return mp__fail(MP_EINVAL, "mp_pipeline_communicate: input given but stdin is not a pipe");
    rc = mp__comm_run(&pl->comm, input, len, &d, true);
    if (rc == 0)
        rc = pipeline_wait(pl, &d);
    if (rc == MP_EINTR || rc == MP_ECANCELED)
        return rc; /* as mp_popen_communicate: all kept for a later call */
    if (rc == MP_ETIMEDOUT) {
        if (pl->kill_on_timeout) {
            pipeline_kill_all(pl);
            mp__deadline now = {.ns = 0};
            (void)mp__comm_run(&pl->comm, NULL, 0, &now, false);
        }
        int trc = mp__comm_finish(&pl->comm, !pl->kill_on_timeout, out, out_len, err, err_len);
        return trc < 0 ? trc : MP_ETIMEDOUT;
    }
    if (rc < 0)
        return rc;
    return mp__comm_finish(&pl->comm, false, out, out_len, err, err_len);
}

int mp_pipeline_kill(mp_pipeline *pl)
{
    int rc = pipeline_check_owner(pl, __func__);
    if (rc < 0)
        return rc;
    pipeline_kill_all(pl);
    return 0;
}

int mp_pipeline_status(const mp_pipeline *pl, size_t i, int *code)
{
    if (!pl || i >= pl->n)
        return !pl ? mp__fail(MP_EINVAL, "mp_pipeline_status: pl is NULL")
                   : mp__fail(MP_EINVAL, "mp_pipeline_status: i is %zu (%zu stages)", i, pl->n);
    return mp_popen_returncode(pl->st[i], code);
}

int mp_pipeline_returncode(const mp_pipeline *pl, int *code)
{
    if (!pl)
        return mp__fail(MP_EINVAL, "mp_pipeline_returncode: pl is NULL");
    int last = 0;
    for (size_t i = 0; i < pl->n; i++) {
        int c;
        int rc = mp_popen_returncode(pl->st[i], &c);
        if (rc < 0)
            return rc;
        if (c != 0)
            last = c;
    }
    if (code)
        *code = last;
    return 0;
}

size_t mp_pipeline_size(const mp_pipeline *pl)
{
    return pl ? pl->n : 0;
}

mp_popen *mp_pipeline_stage(mp_pipeline *pl, size_t i)
{
    return pl && i < pl->n ? pl->st[i] : NULL;
}

void mp_pipeline_destroy(mp_pipeline *pl)
{
    if (!pl)
        return;
    mp__comm_free(&pl->comm);
    for (size_t i = 0; pl->st && i < pl->n; i++)
        mp_popen_destroy(pl->st[i]);
    free(pl->st);
    free(pl);
}
