/* The parent's half of a spawn: validate the options and prepare, in
 * memory the child can read, everything it needs (argv, environment, the
 * PATH candidates, the pipes), so that the child only makes system calls. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "subprocess/popen_internal.h"

extern char **environ;

#define MP__DEFAULT_PATH "/bin:/usr/bin"
#define MP__SHELL        "/bin/sh"

void mp__exec_error_set(mp_exec_error *e, mp_spawn_step step, int error, const char *path)
{
    if (!e)
        return;
    e->step = step;
    e->error = error;
    mp__strlcpy(e->path, path ? path : "", sizeof(e->path));
}

static int check_io(const mp_io *io, int which)
{
    static const char *const names[3] = {"in", "out", "err"};
    const char *name = names[which];
    if ((unsigned)io->kind > MP_IO_STDOUT)
        return mp__fail(MP_EINVAL, "opts->%s.kind is %d (not an mp_io_kind)", name, (int)io->kind);
    if ((unsigned)io->mode > MP_PATH_APPEND)
        return mp__fail(MP_EINVAL, "opts->%s.mode is %d (not an mp_path_mode)", name,
                        (int)io->mode);
    if (io->kind == MP_IO_STDOUT && which != 2)
        return mp__fail(MP_EINVAL, "opts->%s is MP_TO_STDOUT (only err may be)", name);
    if (io->kind == MP_IO_PATH && !io->path)
        return mp__fail(MP_EINVAL, "opts->%s is MP_IO_PATH with a NULL path", name);
    if (io->kind == MP_IO_FD && (io->fd < 0 || fcntl(io->fd, F_GETFD) < 0))
        return MP_EBADF;
    return 0;
}

static int check_opts(const char *const *argv, const mp_popen_opts *o)
{
    if (!argv || !argv[0])
        return mp__fail(MP_EINVAL, "argv is %s", !argv ? "NULL" : "empty");
    if (o->new_session && o->process_group)
        return mp__fail(MP_EINVAL, "opts->new_session and opts->process_group are both set");
    if (!(o->lifetime >= 0)) /* also NaN */
        return mp__fail(MP_EINVAL, "opts->lifetime is %g (must be >= 0 seconds)", o->lifetime);
    if (o->n_pass_fds > 0 && !o->pass_fds)
        return mp__fail(MP_EINVAL, "opts->pass_fds is NULL with n_pass_fds %zu", o->n_pass_fds);
    for (size_t i = 0; i < o->n_pass_fds; i++) {
        if (o->pass_fds[i] < 3)
            return mp__fail(MP_EINVAL, "opts->pass_fds[%zu] is %d (must be >= 3)", i,
                            o->pass_fds[i]);
        for (size_t j = 0; j < i; j++)
            if (o->pass_fds[j] == o->pass_fds[i]) /* a duplicate is a mistake in the list */
                return mp__fail(MP_EINVAL, "opts->pass_fds[%zu] repeats pass_fds[%zu] (%d)", i, j,
                                o->pass_fds[i]);
        if (fcntl(o->pass_fds[i], F_GETFD) < 0)
            return MP_EBADF;
    }
    const mp_io *io[3] = {&o->in, &o->out, &o->err};
    for (int i = 0; i < 3; i++) {
        int rc = check_io(io[i], i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* argv as executed: with shell, {sh, "-c", argv[0], argv[1], ...}. */
static int plan_argv(mp__plan *pl, const char *const *argv, const mp_popen_opts *o)
{
    size_t n = 0;
    while (argv[n])
        n++;
    size_t extra = o->shell ? 2 : 0;
    pl->argv_own = calloc(n + extra + 1, sizeof(char *));
    if (!pl->argv_own)
        return MP_ENOMEM;
    if (o->shell) {
        pl->argv_own[0] = (char *)(o->executable ? o->executable : MP__SHELL);
        pl->argv_own[1] = (char *)"-c";
    }
    for (size_t i = 0; i < n; i++)
        pl->argv_own[extra + i] = (char *)argv[i];
    pl->s.argv = pl->argv_own;
    return 0;
}

static bool same_key(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && a[i] != '=' && a[i] == b[i])
        i++;
    return (a[i] == '=' || !a[i]) && (b[i] == '=' || !b[i]);
}

/* env (or the parent's environment) with env_add laid over it. */
static int plan_env(mp__plan *pl, const mp_popen_opts *o)
{
    char *const *base = o->env ? o->env : environ;
    if (!o->env_add) {
        pl->s.envp = base;
        return 0;
    }
    size_t nb = 0, na = 0;
    while (base && base[nb])
        nb++;
    while (o->env_add[na])
        na++;
    pl->envp_own = calloc(nb + na + 1, sizeof(char *));
    if (!pl->envp_own)
        return MP_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < nb; i++) {
        bool overridden = false;
        for (size_t j = 0; j < na && !overridden; j++)
            overridden = same_key(base[i], o->env_add[j]);
        if (!overridden)
            pl->envp_own[k++] = base[i];
    }
    for (size_t j = 0; j < na; j++)
        pl->envp_own[k++] = o->env_add[j];
    pl->s.envp = pl->envp_own;
    return 0;
}

static const char *env_path(char *const *envp)
{
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], "PATH=", 5) == 0)
            return envp[i] + 5;
    return MP__DEFAULT_PATH;
}

/* The files execve will try: the program itself when it has a '/', else
 * each PATH directory joined with it (an empty entry is "."). */
static int plan_paths(mp__plan *pl, const char *prog)
{
    const char *path = strchr(prog, '/') || !*prog ? "" : env_path(pl->s.envp);
    size_t dirs = 1, plen = strlen(path), blen = strlen(prog);
    for (size_t i = 0; i < plen; i++)
        dirs += path[i] == ':';
    pl->s.paths = calloc(dirs, sizeof(char *));
    pl->path_mem = malloc(plen + dirs * (blen + 3) + 1);
    if (!pl->s.paths || !pl->path_mem)
        return MP_ENOMEM;
    if (!*path) {
        memcpy(pl->path_mem, prog, blen + 1);
        pl->s.paths[0] = pl->path_mem;
        pl->s.n_paths = 1;
        return 0;
    }
    pl->s.searched = true;
    char *w = pl->path_mem;
    for (const char *d = path;; d++) {
        const char *end = strchr(d, ':');
        size_t dl = end ? (size_t)(end - d) : strlen(d);
        pl->s.paths[pl->s.n_paths++] = w;
        if (dl == 0)
            *w++ = '.';
        memcpy(w, d, dl);
        w += dl;
        *w++ = '/';
        memcpy(w, prog, blen + 1);
        w += blen + 1;
        if (!end)
            break;
        d = end;
    }
    return 0;
}

static int open_flags_for(const mp_io *io, int which)
{
    mp_path_mode m = io->mode;
    if (m == MP_PATH_DEFAULT)
        m = which == 0 ? MP_PATH_READ : MP_PATH_WRITE;
    if (m == MP_PATH_READ)
        return O_RDONLY | O_CLOEXEC;
    if (m == MP_PATH_APPEND)
        return O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
    return O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
}

static int plan_stdio(mp__plan *pl, const mp_popen_opts *o)
{
    const mp_io *io[3] = {&o->in, &o->out, &o->err};
    for (int i = 0; i < 3; i++) {
        pl->s.src_fd[i] = -1;
        switch (io[i]->kind) {
        case MP_IO_PIPE:
            if (pipe2(pl->pipes[i], O_CLOEXEC) < 0)
                return mp__errno();
            pl->s.src_fd[i] = pl->pipes[i][i == 0 ? 0 : 1];
            break;
        case MP_IO_FD:
            pl->s.src_fd[i] = io[i]->fd;
            break;
        case MP_IO_DEVNULL:
            pl->s.open_path[i] = "/dev/null";
            pl->s.open_flags[i] = (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC;
            break;
        case MP_IO_PATH:
            pl->s.open_path[i] = io[i]->path;
            pl->s.open_flags[i] = open_flags_for(io[i], i);
            break;
        case MP_IO_STDOUT:
            pl->s.err_to_out = true;
            break;
        case MP_IO_INHERIT:
            break;
        }
    }
    return 0;
}

int mp__plan_init(mp__plan *pl, const char *const *argv, const mp_popen_opts *o, pid_t pgid)
{
    memset(pl, 0, sizeof(*pl));
    for (int i = 0; i < 3; i++)
        pl->pipes[i][0] = pl->pipes[i][1] = -1;
    pl->s.report_fd = -1;
    int rc = check_opts(argv, o);
    if (rc < 0)
        return rc;
    pl->s.cwd = o->cwd;
    pl->s.pass_fds = o->pass_fds;
    pl->s.n_pass_fds = o->n_pass_fds;
    pl->s.close_fds = !o->inherit_fds;
    pl->s.session = o->new_session ? 1 : (o->process_group || pgid > 0) ? 2 : 0;
    pl->s.pgid = pgid;
    pl->s.set_umask = o->set_umask;
    pl->s.umask = o->umask;
    pl->s.die_with_parent = o->die_with_parent;
    pl->s.restore_signals = !o->keep_ignored_signals;
    if ((rc = plan_argv(pl, argv, o)) < 0 || (rc = plan_env(pl, o)) < 0)
        return rc;
    const char *prog = o->executable ? o->executable : pl->s.argv[0];
    pl->s.prog = prog;
    if ((rc = plan_paths(pl, prog)) < 0)
        return rc;
    return plan_stdio(pl, o);
}

void mp__plan_free(mp__plan *pl)
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            mp__close_fd(&pl->pipes[i][j]);
    free(pl->argv_own);
    free(pl->envp_own);
    free(pl->s.paths);
    free(pl->path_mem);
    pl->argv_own = pl->envp_own = pl->s.paths = NULL;
    pl->path_mem = NULL;
}
