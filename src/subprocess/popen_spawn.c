/* The child's half of a spawn, on Linux.
 *
 * The child is made with clone(CLONE_VM | CLONE_VFORK): it runs on a stack
 * in the parent's frame and shares the parent's memory until it execs, so
 * no page table is copied whatever the parent's size, and the parent sleeps
 * until the exec (or the child's exit). A failure is written straight into
 * the shared mp__spawn. Builds with a sanitizer use fork instead (its
 * runtime cannot share memory with a second process) and carry the failure
 * through a close-on-exec pipe; MP_SPAWN_FORK=1 selects that path too.
 *
 * Between clone and exec the child makes only system calls: no malloc, no
 * stdio, no lock. Everything it needs was prepared by subprocess/popen_plan.c.
 *
 * die_with_parent: PR_SET_PDEATHSIG is the first thing the child does, on
 * either path. With CLONE_VM the child still has its own task, so the
 * setting is the child's and survives the exec (Linux clears it only for a
 * set-user-ID, set-group-ID or capability-gaining exec).
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "subprocess/popen_internal.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MP__SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define MP__SANITIZED 1
#endif
#endif
#ifndef MP__SANITIZED
#define MP__SANITIZED 0
#endif

/* Stack of the CLONE_VM child: its frames are small (no libc string or
 * stdio function runs there). */
#define MP__CHILD_STACK 32768

static long raw_syscall(long nr, long a, long b, long c, long d)
{
    long r = syscall(nr, a, b, c, d);
    return r < 0 ? -(long)errno : r;
}

static _Noreturn void mp__child_fail(mp__spawn *s, mp_spawn_step step, long err, const char *path)
{
    s->fail.step = step;
    s->fail.error = (int)err;
    mp__strlcpy(s->fail.path, path ? path : "", sizeof(s->fail.path));
    if (s->report_fd >= 0)
        (void)raw_syscall(SYS_write, s->report_fd, (long)&s->fail, (long)sizeof(s->fail), 0);
    for (;;)
        (void)syscall(SYS_exit_group, 127);
}

/* Handlers of the parent must never run in the child (they would run on
 * the parent's memory): every caught signal goes back to its default while
 * all signals are still blocked. Ignored signals stay ignored, as with
 * posix_spawn, except SIGPIPE and SIGXFSZ under restore_signals (as
 * CPython): a program that inherited them ignored (Python itself ignores
 * SIGPIPE, so do many servers) would get EPIPE or EFBIG instead of dying,
 * and `yes | head -1` would never end. */
static bool restored(const mp__spawn *s, int sig)
{
    return s->restore_signals && (sig == SIGPIPE || sig == SIGXFSZ);
}

static void child_signals(const mp__spawn *s)
{
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) < 0)
            continue;
        if ((sa.sa_handler == SIG_IGN && !restored(s, sig)) || sa.sa_handler == SIG_DFL)
            continue;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        (void)sigaction(sig, &sa, NULL);
    }
}

/* die_with_parent: the parent may already have died between the spawn and
 * the prctl, which then arms nothing, so the child checks that its parent
 * is still the process that spawned it; if not, it dies as the signal
 * would have made it. */
static void child_pdeathsig(mp__spawn *s)
{
    if (!s->die_with_parent)
        return;
    long r = raw_syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0);
    if (r < 0)
        mp__child_fail(s, MP_STEP_PDEATHSIG, r, "");
    if (raw_syscall(SYS_getppid, 0, 0, 0, 0) != (long)s->parent) {
        (void)raw_syscall(SYS_kill, raw_syscall(SYS_getpid, 0, 0, 0, 0), SIGKILL, 0, 0);
        for (;;)
            (void)syscall(SYS_exit_group, 128 + SIGKILL);
    }
}

static void child_session(mp__spawn *s)
{
    long r = 0;
    if (s->session == 1)
        r = raw_syscall(SYS_setsid, 0, 0, 0, 0);
    else if (s->session == 2)
        r = raw_syscall(SYS_setpgid, 0, s->pgid, 0, 0);
    if (r < 0)
        mp__child_fail(s, MP_STEP_SESSION, r, "");
    if (s->set_umask)
        (void)raw_syscall(SYS_umask, (long)s->umask, 0, 0, 0);
}

/* Places the stdio fds. A source that is itself 0, 1 or 2 (a parent that
 * had closed its stdin, an fd given for another stream) is first moved
 * above 2, so that placing one stream never overwrites another's source. */
static void child_stdio(mp__spawn *s)
{
    long src[3];
    for (int i = 0; i < 3; i++) {
        src[i] = s->src_fd[i];
        if (s->open_path[i]) {
            src[i] =
                raw_syscall(SYS_openat, AT_FDCWD, (long)s->open_path[i], s->open_flags[i], 0666);
            if (src[i] < 0)
                mp__child_fail(s, MP_STEP_OPEN, src[i], s->open_path[i]);
        }
    }
    for (int i = 0; i < 3; i++) {
        if (src[i] >= 0 && src[i] < 3 && src[i] != i) {
            src[i] = raw_syscall(SYS_fcntl, src[i], F_DUPFD_CLOEXEC, 3, 0);
            if (src[i] < 0)
                mp__child_fail(s, MP_STEP_DUP2, src[i], "");
        }
    }
    for (int i = 0; i < 3; i++) {
        long r = 0;
        if (src[i] == i)
            r = raw_syscall(SYS_fcntl, i, F_SETFD, 0, 0);
        else if (src[i] >= 0)
            r = raw_syscall(SYS_dup3, src[i], i, 0, 0);
        if (r < 0)
            mp__child_fail(s, MP_STEP_DUP2, r, "");
    }
    if (s->err_to_out) {
        long r = raw_syscall(SYS_dup3, 1, 2, 0, 0);
        if (r < 0)
            mp__child_fail(s, MP_STEP_DUP2, r, "");
    }
}

/* Every fd above 2 becomes close-on-exec, then pass_fds are kept. */
static void child_fds(mp__spawn *s)
{
    if (s->close_fds) {
        long r = raw_syscall(SYS_close_range, 3, (long)~0U, CLOSE_RANGE_CLOEXEC, 0);
        if (r < 0) {
            /* Kernels before 5.11: one fcntl per possible fd. */
            struct rlimit rl = {.rlim_cur = 65536};
            (void)raw_syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&rl);
            long max = rl.rlim_cur > 65536 ? 65536 : (long)rl.rlim_cur;
            for (long fd = 3; fd < max; fd++)
                (void)raw_syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC, 0);
        }
    }
    for (size_t i = 0; i < s->n_pass_fds; i++) {
        long r = raw_syscall(SYS_fcntl, s->pass_fds[i], F_SETFD, 0, 0);
        if (r < 0)
            mp__child_fail(s, MP_STEP_PASS_FDS, r, "");
    }
}

/* Tries each candidate like execvp: a missing file moves on, a denied one
 * is remembered, anything else stops the search. */
static _Noreturn void mp__child_exec(mp__spawn *s)
{
    long err = -ENOENT;
    const char *err_path = s->prog;
    bool denied = false;
    for (size_t i = 0; i < s->n_paths; i++) {
        long r = raw_syscall(SYS_execve, (long)s->paths[i], (long)s->argv, (long)s->envp, 0);
        if (s->searched && (r == -ENOENT || r == -ENOTDIR))
            continue;
        if (s->searched && r == -EACCES) {
            if (!denied) {
                denied = true;
                err = r;
                err_path = s->paths[i];
            }
            continue;
        }
        err = r;
        err_path = s->paths[i];
        break;
    }
    mp__child_fail(s, MP_STEP_EXEC, err, err_path);
}

static int child_main(void *arg)
{
    mp__spawn *s = arg;
    child_pdeathsig(s);
    child_signals(s);
    child_session(s);
    child_stdio(s);
    child_fds(s);
    if (s->cwd) {
        long r = raw_syscall(SYS_chdir, (long)s->cwd, 0, 0, 0);
        if (r < 0)
            mp__child_fail(s, MP_STEP_CHDIR, r, s->cwd);
    }
    (void)raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&s->mask, 0, NSIG / 8);
    mp__child_exec(s);
}

static bool spawn_uses_fork(void)
{
    static _Atomic int state = -1;
    int v = atomic_load_explicit(&state, memory_order_relaxed);
    if (v < 0) {
        const char *e = secure_getenv("MP_SPAWN_FORK");
        v = MP__SANITIZED || (e && *e && *e != '0');
        atomic_store_explicit(&state, v, memory_order_relaxed);
    }
    return v == 1;
}

static void reap_failed(pid_t pid)
{
    siginfo_t info;
    while (waitid(P_PID, (id_t)pid, &info, WEXITED) < 0 && errno == EINTR)
        ;
}

/* noinline: the child's stack lives in this frame, which must stay put
 * while the child runs (the parent is suspended meanwhile). */
__attribute__((noinline)) static pid_t mp__spawn_clone(mp__spawn *s)
{
    _Alignas(64) char stack[MP__CHILD_STACK];
    return (pid_t)clone(child_main, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, s);
}

static pid_t spawn_fork(mp__spawn *s, int *report)
{
    if (pipe2(report, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        s->report_fd = report[1];
        child_main(s);
    }
    int saved = errno;
    close(report[1]);
    report[1] = -1;
    errno = saved;
    return pid;
}

/* Reads the child's report: a full record means it failed. */
static void read_report(mp__spawn *s, int fd)
{
    mp_exec_error rec;
    size_t got = 0;
    while (got < sizeof(rec)) {
        ssize_t r = read(fd, (char *)&rec + got, sizeof(rec) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == sizeof(rec))
        s->fail = rec;
}

int mp__spawn_child(mp__spawn *s, pid_t *pid_out)
{
    int report[2] = {-1, -1};
    bool use_fork = spawn_uses_fork();
    memset(&s->fail, 0, sizeof(s->fail));
    s->parent = getpid();
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &s->mask);
    pid_t pid = use_fork ? spawn_fork(s, report) : mp__spawn_clone(s);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &s->mask, NULL);
    if (pid < 0) {
        int rc = saved > 0 ? -saved : MP_EAGAIN;
        mp__close_fd(&report[0]);
        mp__exec_error_set(&s->fail, MP_STEP_SPAWN, rc, "");
        return rc;
    }
    if (use_fork) {
        read_report(s, report[0]);
        mp__close_fd(&report[0]);
    }
    if (s->fail.step != MP_STEP_NONE) {
        reap_failed(pid);
        return s->fail.error < 0 ? s->fail.error : MP_EIO;
    }
    *pid_out = pid;
    return 0;
}
