/* Process file descriptors (pidfds), with the fallbacks for kernels and C
 * libraries that predate them. Not installed.
 *
 * Every pidfd system call of the library goes through this file: the
 * syscall numbers and P_PIDFD, which older headers lack, are spelled out
 * here only. pidfd_open and waitid(P_PIDFD) came in Linux 5.3 and 5.4;
 * mp__pidfd_supported probes the later so that a pidfd is never half
 * supported, and the callers fall back to pids (kill, waitid(P_PID)) and
 * pipes when it says no. */
#ifndef MULTIPROC_OS_PIDFD_H
#define MULTIPROC_OS_PIDFD_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

/* This process's pid, cached (getpid is a system call, and the pool and
 * the distributed pool's executors ask on every call or item); a fork
 * child asks again. */
pid_t mp__self_pid(void);

/* True when pidfds work here (probed once; MP_DISABLE_PIDFD=1 forces the
 * fallback, for tests). */
bool mp__pidfd_supported(void);

/* A pidfd (close-on-exec) for pid, or -1: pidfds are not supported (see
 * above), or the call failed (errno). */
int mp__pidfd_open(pid_t pid);

/* pidfd_send_signal(pidfd, sig): 0, or -1 with errno (ESRCH once the
 * process is reaped). sig 0 checks whether it is still there. */
int mp__pidfd_send_signal(int pidfd, int sig);

/* waitid(P_PIDFD, pidfd, info, options): 0 or -1 with errno (EINTR is not
 * retried). */
int mp__pidfd_waitid(int pidfd, siginfo_t *info, int options);

/* The exit code that the kernel keeps with a pidfd once its process is
 * released (PIDFD_INFO_EXIT, Linux 6.15): 1 with *code (the exit status,
 * or minus the signal that killed it), 0 while it is not there (the
 * process runs, or is a zombie nobody reaped yet), or -errno (ENOTTY,
 * EINVAL: the kernel is older). */
int mp__pidfd_exit_code(int pidfd, int *code);

#endif /* MULTIPROC_OS_PIDFD_H */
