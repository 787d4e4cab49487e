/* The os layer's fd helpers: pidfds and their fallbacks (os/pidfd.h), and
 * the write that cannot raise SIGPIPE (os/fdio.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/fdio.h"
#include "os/pidfd.h"
#include "mp_test.h"

TestSuite(os_fd, .timeout = 30);

static pid_t fork_sleeper(void)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        pause();
        _exit(0);
    }
    return pid;
}

Test(os_fd, pidfd_signal_wait_and_exit_code)
{
    cr_assert(mp__pidfd_supported(), "pidfds are expected on the test machines");
    pid_t pid = fork_sleeper();
    int fd = mp__pidfd_open(pid);
    cr_assert(fd >= 0);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    cr_assert_eq(mp__pidfd_waitid(fd, &info, WEXITED | WNOHANG), 0);
    cr_assert_eq(info.si_pid, 0); /* still running */
    cr_assert_eq(mp__pidfd_send_signal(fd, 0), 0);
    cr_assert_eq(mp__pidfd_send_signal(fd, SIGTERM), 0);
    memset(&info, 0, sizeof(info));
    cr_assert_eq(mp__pidfd_waitid(fd, &info, WEXITED), 0);
    cr_assert_eq(info.si_pid, pid);
    cr_assert_eq(info.si_code, CLD_KILLED);
    cr_assert_eq(info.si_status, SIGTERM);
    /* Reaped: the process is gone. */
    cr_assert_eq(mp__pidfd_send_signal(fd, 0), -1);
    cr_assert_eq(errno, ESRCH);
    int code = 0;
    int r = mp__pidfd_exit_code(fd, &code);
    cr_assert(r == 1 || r == 0 || r < 0, "%d", r);
    if (r == 1)
        cr_assert_eq(code, -SIGTERM);
    close(fd);
}

Test(os_fd, pidfd_disabled_falls_back)
{
    setenv("MP_DISABLE_PIDFD", "1", 1);
    cr_assert_not(mp__pidfd_supported());
    cr_assert_eq(mp__pidfd_open(getpid()), -1);
}

static bool sigpipe_pending(void)
{
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, SIGPIPE);
}

static void write_to_closed_pipe(void)
{
    signal(SIGPIPE, SIG_DFL);
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    cr_assert_eq(mp__write_nosignal(fds[1], "ab", 2), 2);
    close(fds[0]);
    errno = 0;
    cr_assert_eq(mp__write_nosignal(fds[1], "x", 1), -1);
    cr_assert_eq(errno, EPIPE);
    cr_assert_not(sigpipe_pending());
    sigset_t s;
    pthread_sigmask(SIG_BLOCK, NULL, &s);
    cr_assert_not(sigismember(&s, SIGPIPE));
    close(fds[1]);
}

Test(os_fd, write_nosignal_to_a_closed_pipe_is_epipe)
{
    write_to_closed_pipe();
}

Test(os_fd, write_nosignal_to_a_closed_pipe_is_epipe_sigmask)
{
    setenv("MP_DISABLE_RWF_NOSIGNAL", "1", 1);
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    cr_assert_eq(mp__rwf_nosignal(fds[1]), 0);
    close(fds[0]);
    close(fds[1]);
    write_to_closed_pipe();
}
