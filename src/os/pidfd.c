/* Process file descriptors, and their fallbacks (os/pidfd.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/internal.h"
#include "os/fdio.h"
#include "os/pidfd.h"

/* The system headers may be older than the kernel. */
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
static _Atomic int pidfd_state = -1;

bool mp__pidfd_supported(void)
{
    int s = atomic_load(&pidfd_state);
    if (s >= 0)
        return s == 1;
    s = 0;
    if (!mp__env_off("MP_DISABLE_PIDFD")) {
        /* waitid(P_PIDFD) came a release after pidfd_open (5.3 vs 5.4); probe
         * the later one so that a pidfd is never half supported. */
        int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        if (fd >= 0) {
            siginfo_t info;
            memset(&info, 0, sizeof(info));
            /* On our own pidfd this fails with ECHILD if P_PIDFD is known,
             * EINVAL if the kernel does not know P_PIDFD. */
            if (mp__pidfd_waitid(fd, &info, WEXITED | WNOHANG) < 0 && errno == ECHILD)
                s = 1;
            close(fd);
        }
    }
    atomic_store(&pidfd_state, s);
    return s == 1;
}

int mp__pidfd_open(pid_t pid)
{
    if (!mp__pidfd_supported())
        return -1;
    /* pidfd_open returns a close-on-exec fd. */
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int mp__pidfd_send_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int mp__pidfd_waitid(int pidfd, siginfo_t *info, int options)
{
    return waitid((idtype_t)P_PIDFD, (id_t)pidfd, info, options);
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

static _Atomic pid_t self_pid;
static pthread_once_t self_pid_once = PTHREAD_ONCE_INIT;

static void forget_pid(void)
{
    atomic_store_explicit(&self_pid, 0, memory_order_relaxed);
}

static void register_forget_pid(void)
{
    pthread_atfork(NULL, NULL, forget_pid);
}

pid_t mp__self_pid(void)
{
    pid_t me = atomic_load_explicit(&self_pid, memory_order_relaxed);
    if (me == 0) {
        pthread_once(&self_pid_once, register_forget_pid);
        me = getpid();
        atomic_store_explicit(&self_pid, me, memory_order_relaxed);
    }
    return me;
}
