/* Subprocesses: the mp_popen object, waiting by pidfd, signals. */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/pidfd.h"
#include "subprocess/popen_internal.h"

/* How long a kill waits for the child to die before giving up (a child in
 * uninterruptible sleep cannot die until the kernel lets it). */
#define MP__KILL_WAIT_NS (5 * 1000000000LL)

static const char *const mp__step_names[] = {
    [MP_STEP_NONE] = "none",           [MP_STEP_SESSION] = "session",
    [MP_STEP_OPEN] = "open",           [MP_STEP_DUP2] = "dup2",
    [MP_STEP_CLOSE_FDS] = "close_fds", [MP_STEP_PASS_FDS] = "pass_fds",
    [MP_STEP_CHDIR] = "chdir",         [MP_STEP_EXEC] = "exec",
    [MP_STEP_SPAWN] = "spawn",         [MP_STEP_PDEATHSIG] = "pdeathsig",
};

const char *mp_spawn_step_name(mp_spawn_step step)
{
    if ((unsigned)step >= MP__ARRAY_LEN(mp__step_names))
        return "?";
    return mp__step_names[step];
}

void mp__close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int exit_code(const siginfo_t *info)
{
    return info->si_code == CLD_EXITED ? info->si_status : -info->si_status;
}

/* One reap attempt (blocking with block): 1 reaped (now or before), 0
 * running. */
static int popen_reap(mp_popen *p, bool block)
{
    if (p->reaped)
        return 1;
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    int flags = WEXITED | (block ? 0 : WNOHANG);
    int r;
    do {
        if (p->pidfd >= 0)
            r = mp__pidfd_waitid(p->pidfd, &info, flags);
        else
            r = waitid(P_PID, (id_t)p->pid, &info, flags);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        /* ECHILD: reaped by someone else (SIGCHLD ignored, or a
         * waitpid(-1) elsewhere). Like Python, the code is then 0. */
        mp__debug("subprocess %d was reaped by someone else", (int)p->pid);
        p->returncode = 0;
    } else if (info.si_pid == 0) {
        return 0;
    } else {
        p->returncode = exit_code(&info);
    }
    p->reaped = true;
    mp__close_fd(&p->pidfd);
    return 1;
}

static int popen_try_reap(mp_popen *p)
{
    return popen_reap(p, false);
}

/* Sleeps until the child may have exited or d passes. Returns 0, or with
 * intr (the thread's interrupt settings apply) MP_EINTR or MP_ECANCELED. */
static int popen_sleep(mp_popen *p, const mp__deadline *d, bool intr)
{
    int r = 0;
    if (p->pidfd >= 0) {
        struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
        r = intr ? mp__poll_intr(&pfd, 1, d) : mp__poll(&pfd, 1, d);
    } else if (intr) {
        mp__deadline slice = {.ns = mp__now_ns() + 2 * 1000000};
        if (d->ns >= 0 && d->ns < slice.ns)
            slice = *d;
        r = mp__poll_intr(NULL, 0, &slice);
    } else {
        mp__sleep_until(d, 2 * 1000000); /* no pidfd: poll in 2 ms slices */
    }
    return r == MP_EINTR || r == MP_ECANCELED ? r : 0;
}

void mp__popen_kill_reap(mp_popen *p)
{
    if (p->reaped)
        return;
    if (p->leads_group)
        (void)kill(-p->pid, SIGKILL);
    (void)mp_popen_send_signal(p, SIGKILL);
    mp__deadline d = {.ns = mp__now_ns() + MP__KILL_WAIT_NS};
    while (!popen_try_reap(p) && !mp__deadline_expired(&d))
        (void)popen_sleep(p, &d, false);
}

mp__deadline mp__popen_cap(const mp_popen *p, const mp__deadline *d)
{
    mp__deadline c = *d;
    if (p->life.ns >= 0 && (c.ns < 0 || p->life.ns < c.ns))
        c = p->life;
    return c;
}

/* Kills a child whose lifetime has passed. True if it did. */
static bool popen_check_life(mp_popen *p)
{
    if (p->reaped || !mp__deadline_expired(&p->life))
        return false;
    p->expired = true;
    mp__popen_kill_reap(p);
    return true;
}

/* With no deadline, one blocking waitid; under the thread's interrupt
 * settings a poll of the pidfd instead, which (unlike waitid) sees the
 * cancel and is never restarted after a handler, even with SA_RESTART. An
 * interrupted wait reaps nothing: the child stays waitable. */
int mp__popen_wait(mp_popen *p, const mp__deadline *d)
{
    mp__deadline cap = mp__popen_cap(p, d);
    bool intr = mp__intr_active();
    if (cap.ns < 0 && !intr)
        return popen_reap(p, true) ? 0 : MP_EIO;
    for (;;) {
        if (popen_try_reap(p) || popen_check_life(p))
            return 0;
        if (mp__deadline_expired(&cap))
            return MP_ETIMEDOUT;
        int rc = popen_sleep(p, &cap, intr);
        if (rc < 0)
            return rc;
    }
}

int mp__popen_check_owner(const mp_popen *p)
{
    if (!p)
        return mp__fail(MP_EINVAL, "p is NULL");
    return p->owner == getpid() ? 0 : MP_EPERM;
}

int mp__popen_deadline(mp__deadline *d, double timeout, const char *fn)
{
    int rc = mp__deadline_init(d, timeout);
    return rc < 0 ? mp__fail(rc, "%s: timeout is NaN", fn) : 0;
}

static void popen_take_fds(mp_popen *p, mp__plan *pl)
{
    p->comm.in_fd = pl->pipes[0][1];
    p->comm.out_fd = pl->pipes[1][0];
    p->comm.err_fd = pl->pipes[2][0];
    pl->pipes[0][1] = pl->pipes[1][0] = pl->pipes[2][0] = -1;
}

int mp__popen_create(mp_popen **out, const char *const *argv, const mp_popen_opts *o, pid_t pgid)
{
    static const mp_popen_opts defaults;
    if (!o)
        o = &defaults;
    if (!out)
        return mp__fail(MP_EINVAL, "mp_popen_create: out is NULL");
    mp__plan pl;
    mp_popen *p = calloc(1, sizeof(*p));
    int rc = p ? mp__plan_init(&pl, argv, o, pgid) : MP_ENOMEM;
    if (rc < 0)
        goto fail;
    pid_t pid = 0;
    rc = mp__spawn_child(&pl.s, &pid);
    if (rc < 0) {
        if (o->exec_error)
            *o->exec_error = pl.s.fail;
        goto fail;
    }
    if (o->exec_error)
        memset(o->exec_error, 0, sizeof(*o->exec_error));
    p->pid = pid;
    p->owner = getpid();
    p->pidfd = mp__pidfd_open(pid);
    p->leads_group = pl.s.session != 0 && pgid == 0;
    p->kill_on_timeout = o->kill_on_timeout;
    p->life.ns = -1;
    if (o->lifetime > 0)
        (void)mp__deadline_init(&p->life, o->lifetime);
    popen_take_fds(p, &pl);
    mp__plan_free(&pl);
    (void)mp__comm_init(&p->comm);
    *out = p;
    return 0;
fail:
    if (p)
        mp__plan_free(&pl);
    free(p);
    return rc;
}

int mp_popen_create(mp_popen **out, const char *const *argv, const mp_popen_opts *opts)
{
    return mp__popen_create(out, argv, opts, 0);
}

int mp_popen_wait(mp_popen *p, double timeout, int *code)
{
    mp__deadline d;
    int rc = mp__popen_check_owner(p);
    if (rc < 0 || (rc = mp__popen_deadline(&d, timeout, __func__)) < 0)
        return rc;
    rc = mp__popen_wait(p, &d);
    if (rc == 0 && code)
        *code = p->returncode;
    return rc;
}

int mp_popen_poll(mp_popen *p, int *code)
{
    mp__deadline now = {.ns = 0};
    int rc = mp__popen_check_owner(p);
    if (rc < 0)
        return rc;
    rc = mp__popen_wait(p, &now);
    if (rc == MP_ETIMEDOUT)
        return MP_ERUNNING;
    if (code)
        *code = p->returncode;
    return 0;
}

int mp_popen_returncode(const mp_popen *p, int *code)
{
    if (!p)
        return mp__fail(MP_EINVAL, "mp_popen_returncode: p is NULL");
    if (!p->reaped)
        return MP_ERUNNING;
    if (code)
        *code = p->returncode;
    return 0;
}

int mp_popen_send_signal(mp_popen *p, int sig)
{
    int rc = mp__popen_check_owner(p);
    if (rc < 0)
        return rc;
    if (sig < 0 || sig >= NSIG)
        return mp__fail(MP_EINVAL, "mp_popen_send_signal: sig %d is not a signal", sig);
    if (p->reaped)
        return 0;
    int r;
    if (p->pidfd >= 0)
        r = mp__pidfd_send_signal(p->pidfd, sig);
    else
        r = kill(p->pid, sig); /* not reaped: the pid is still ours */
    return r < 0 && errno != ESRCH ? mp__errno() : 0;
}

int mp_popen_terminate(mp_popen *p)
{
    return mp_popen_send_signal(p, SIGTERM);
}

int mp_popen_kill(mp_popen *p)
{
    return mp_popen_send_signal(p, SIGKILL);
}

int mp_popen_signal_group(mp_popen *p, int sig)
{
    int rc = mp__popen_check_owner(p);
    if (rc < 0)
        return rc;
    if (!p->leads_group)
        return mp__fail(MP_EINVAL, "mp_popen_signal_group: the child leads no group (made "
                                   "without new_session or process_group)");
    if (sig < 0 || sig >= NSIG)
        return mp__fail(MP_EINVAL, "mp_popen_signal_group: sig %d is not a signal", sig);
    return kill(-p->pid, sig) < 0 && errno != ESRCH ? mp__errno() : 0;
}

pid_t mp_popen_pid(const mp_popen *p)
{
    return p ? p->pid : 0;
}

int mp_popen_fd(const mp_popen *p, int which)
{
    if (!p)
        return -1;
    switch (which) {
    case 0:
        return p->comm.in_fd;
    case 1:
        return p->comm.out_fd;
    case 2:
        return p->comm.err_fd;
    }
    return -1;
}

int mp_popen_sentinel(const mp_popen *p)
{
    return p ? p->pidfd : -1;
}

bool mp_popen_lifetime_expired(const mp_popen *p)
{
    return p && p->expired;
}

void mp_popen_destroy(mp_popen *p)
{
    if (!p)
        return;
    mp__close_fd(&p->comm.in_fd);
    mp__close_fd(&p->comm.out_fd);
    mp__close_fd(&p->comm.err_fd);
    if (p->owner == getpid() && !popen_try_reap(p)) {
        (void)mp_popen_send_signal(p, SIGKILL);
        mp__deadline d = {.ns = mp__now_ns() + MP__KILL_WAIT_NS};
        while (!popen_try_reap(p) && !mp__deadline_expired(&d))
            (void)popen_sleep(p, &d, false);
    }
    mp__close_fd(&p->pidfd);
    mp__comm_free(&p->comm);
    free(p);
}
