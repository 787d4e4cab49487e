/* The fork start method (fork with the orphan guard), and the exit status
 * of a child of this process (fork and spawn). */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/pidfd.h"
#include "process/start_method.h"

static int exit_code_from(const siginfo_t *info)
{
    if (info->si_code == CLD_EXITED)
        return info->si_status;
    return -info->si_status; /* CLD_KILLED, CLD_DUMPED */
}

int mp__own_child_status(mp_process *p, int *code)
{
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    int r;
    do {
        if (p->sentinel_is_pidfd)
            r = mp__pidfd_waitid(p->sentinel, &info, WEXITED | WNOHANG);
        else
            r = waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return MP_ECHILD;
    if (info.si_pid == 0)
        return 0;
    *code = exit_code_from(&info);
    return 1;
}

/* The fallback sentinel: a pipe whose write end only the child holds, so
 * its read end turns readable (end of file) when the child exits. */
static int fallback_pipe(int fds[2])
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
static void warm_child_calls(void)
{
    static _Atomic bool warm;
    if (atomic_load_explicit(&warm, memory_order_relaxed))
        return;
    int sig;
    (void)prctl(PR_GET_PDEATHSIG, &sig);
    (void)getppid();
    atomic_store_explicit(&warm, true, memory_order_relaxed);
}

/* Threads of this process, from /proc/self/task; 0 if unknown. */
static int thread_count(void)
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

static int fork_launch(mp_process *p, const mp__deadline *d)
{
    (void)d; /* fork never blocks */
    /* Only under MP_DEBUG: counting threads costs a directory scan. */
    if (mp__debug_enabled()) {
        int n = thread_count();
        if (n > 1)
            mp__debug("fork with %d threads: only the calling thread exists in the child, "
                      "and locks held by the others stay locked there; consider the "
                      "spawn or forkserver start method",
                      n);
    }
    warm_child_calls();
    bool use_pidfd = mp__pidfd_supported();
    int fb[2] = {-1, -1};
    int rc;
    if (!use_pidfd && (rc = fallback_pipe(fb)) < 0)
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
        /* fb[1] stays open, unused, until this process exits: the
         * parent's sentinel without pidfds. No orphans: die with the
         * parent. The parent may already have died between fork and prctl,
         * in which case the signal will never come: getppid() tells. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != ppid)
            _exit(255);
        p->owner = ppid;
        return MP__LAUNCHED_CHILD;
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

const mp__start_method mp__start_fork = {
    .id = MP_START_FORK,
    .name = "fork",
    .launch = fork_launch,
    .status = mp__own_child_status,
};
