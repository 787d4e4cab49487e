/* Linux side of processes: fork with the orphan guard, pidfds, reaping. */
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/boot.h"
#include "heap/heap.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* -1 unknown, 0 no, 1 yes. Probed once; the answer never changes. */
static _Atomic int mp__pidfd_state = -1;

bool mp__pidfd_supported(void)
{
    int s = atomic_load(&mp__pidfd_state);
    if (s >= 0)
        return s == 1;
    const char *off = secure_getenv("MP_DISABLE_PIDFD");
    s = 0;
    if (!(off && *off && *off != '0')) {
        /* waitid(P_PIDFD) came a release after pidfd_open (5.3 vs 5.4); probe
         * the later one so that a pidfd is never half supported. */
        int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        if (fd >= 0) {
            siginfo_t info;
            memset(&info, 0, sizeof(info));
            /* On our own pidfd this fails with ECHILD if P_PIDFD is known,
             * EINVAL if the kernel does not know P_PIDFD. */
            if (waitid((idtype_t)P_PIDFD, (id_t)fd, &info, WEXITED | WNOHANG) < 0 &&
                errno == ECHILD)
                s = 1;
            close(fd);
        }
    }
    atomic_store(&mp__pidfd_state, s);
    return s == 1;
}

int mp__pidfd_open(pid_t pid)
{
    if (!mp__pidfd_supported())
        return -1;
    /* pidfd_open returns a close-on-exec fd. */
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* PIDFD_GET_INFO (Linux 6.13) and its PIDFD_INFO_EXIT field (6.15), spelled
 * out because the system headers may be older than the kernel. */
struct mp__pidfd_info {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code; /* a wait status */
    uint32_t coredump_mask;
    uint32_t spare;
};
#define MP__PIDFD_INFO_EXIT 8u
#define MP__PIDFD_GET_INFO  _IOWR(0xFF, 11, struct mp__pidfd_info)

int mp__pidfd_exit_code(int pidfd, int *code)
{
    struct mp__pidfd_info info;
    memset(&info, 0, sizeof(info));
    info.mask = MP__PIDFD_INFO_EXIT;
    if (ioctl(pidfd, MP__PIDFD_GET_INFO, &info) < 0)
        return errno == ESRCH ? 0 : mp__errno();
    if (!(info.mask & MP__PIDFD_INFO_EXIT))
        return 0;
    int st = info.exit_code;
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    return 1;
}

static int mp__exit_code_from(const siginfo_t *info)
{
    if (info->si_code == CLD_EXITED)
        return info->si_status;
    return -info->si_status; /* CLD_KILLED, CLD_DUMPED */
}

/* Whether our child p exited, without blocking: 1 with *code, 0 while it
 * runs, or MP_ECHILD when its status is lost. Call with p->mu held. */
static int mp__collect_exit(mp_process *p, int *code)
{
    if (p->method == MP_START_FORKSERVER)
        return mp__forkserver_status(p, code);
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    int r;
    do {
        if (p->sentinel_is_pidfd)
            r = waitid((idtype_t)P_PIDFD, (id_t)p->sentinel, &info, WEXITED | WNOHANG);
        else
            r = waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return MP_ECHILD;
    if (info.si_pid == 0)
        return 0;
    *code = mp__exit_code_from(&info);
    return 1;
}

int mp__process_try_reap(mp_process *p)
{
    pthread_mutex_lock(&p->mu);
    int reaped = 1;
    if (p->state == MP__RUNNING) {
        int code = 0;
        int r = mp__collect_exit(p, &code);
        if (r < 0) {
            /* ECHILD: someone else (a waitpid(-1) elsewhere in the program,
             * or SIGCHLD set to SIG_IGN) took the status, or the fork server
             * that reported it is gone. The child is gone; its exit code is
             * lost. */
            p->status_lost = true;
            p->state = MP__REAPED;
            mp__debug("process %d was reaped by someone else", (int)p->pid);
        } else if (r == 0) {
            reaped = 0;
        } else {
            p->exitcode = code;
            p->state = MP__REAPED;
        }
    }
    pthread_mutex_unlock(&p->mu);
    /* The registry's own lock guards `linked`: unlinking checks it there (a
     * read of it here, under p->mu, would race with another thread's unlink). */
    if (reaped)
        mp__registry_unlink(p);
    return reaped;
}

int mp__process_signal(mp_process *p, int sig)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    /* Under the lock no other thread can reap, so the pid cannot have been
     * reused by the time kill() runs; a pidfd makes it exact anyway. */
    if (p->state == MP__RUNNING) {
        int r;
        if (p->sentinel_is_pidfd)
            r = (int)syscall(SYS_pidfd_send_signal, p->sentinel, sig, NULL, 0);
        else
            r = kill(p->pid, sig);
        if (r < 0 && errno != ESRCH)
            rc = mp__errno();
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* The fallback sentinel: a pipe whose write end only the child holds, so
 * its read end turns readable (end of file) when the child exits. */
static int mp__fallback_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return mp__errno();
    return 0;
}

/* With lazy binding, the first call of a libc function in a process image
 * resolves its symbol and writes the GOT. A forked child starts from the
 * parent's GOT, so a function the parent never called is resolved again in
 * every child: a symbol lookup and a copied page per child. Calling the
 * child's functions once in the parent resolves them for all children. */
static void mp__warm_child_calls(void)
{
    static _Atomic bool warm;
    if (atomic_load_explicit(&warm, memory_order_relaxed))
        return;
    int sig;
    (void)prctl(PR_GET_PDEATHSIG, &sig);
    (void)getppid();
    atomic_store_explicit(&warm, true, memory_order_relaxed);
}

/* _exit through a pointer: the pointer is relocated when the program loads,
 * whereas a direct call would be resolved lazily in each child (volatile,
 * so that the compiler does not turn it back into a direct call). */
static void (*volatile const mp__exit_fn)(int) = _exit;

int mp__process_fork(mp_process *p)
{
    mp__warm_child_calls();
    bool use_pidfd = mp__pidfd_supported();
    int fb[2] = {-1, -1};
    int rc;
    if (!use_pidfd && (rc = mp__fallback_pipe(fb)) < 0)
        return rc;

    /* Output buffered before fork would otherwise be printed twice. */
    fflush(stdout);
    fflush(stderr);
    /* Block signals across fork so that no handler of the program runs in
     * the child before it is set up (and none runs twice in the parent). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t ppid = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (fb[0] >= 0)
            close(fb[0]);
        mp__child_main(p, ppid, fb[1]);
    }
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (fb[1] >= 0)
        close(fb[1]);
    if (pid < 0) {
        if (fb[0] >= 0)
            close(fb[0]);
        return saved > 0 ? -saved : MP_EAGAIN;
    }
    p->pid = pid;
    p->owner = ppid;
    p->sentinel = use_pidfd ? mp__pidfd_open(pid) : fb[0];
    p->sentinel_is_pidfd = use_pidfd && p->sentinel >= 0;
    if (p->sentinel < 0) {
        /* pidfd_open can only fail here for lack of fds or memory. The
         * child exists: reap it by pid instead, so nothing leaks. */
        mp__debug("pidfd_open(%d) failed: %s", (int)pid, strerror(errno));
    }
    return 0;
}

_Noreturn void mp__child_main(mp_process *p, pid_t ppid, int fallback_wfd)
{
    /* No orphans: die with the parent. The parent may already have died
     * between fork and prctl, in which case the signal will never come:
     * getppid() tells. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != ppid)
        _exit(255);
    (void)fallback_wfd; /* held open, unused, until this process exits */
    p->pid = getpid();
    mp__registry_child_init(p, ppid, NULL);
    int code = p->target ? p->target(p->args, p->args_len) : p->run(p, p->user);
    /* Like Python's child bootstrap: deal with our own children, flush stdio,
     * and leave without running the parent's atexit handlers. */
    mp__registry_exit_cleanup();
    mp__heap_thread_flush();
    fflush(NULL);
    mp__exit_fn(code & 0xff);
    __builtin_unreachable();
}
