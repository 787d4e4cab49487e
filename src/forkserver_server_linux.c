/* The fork server's own loop (see forkserver_linux.c for the protocol). It
 * runs in a spawned image with one thread.
 *
 * The server keeps one spare child, forked ahead of time and waiting on a
 * private socket. A start request is checked, handed to the spare (which
 * becomes the new process) and answered with the spare's pid and pidfd;
 * only then does the server fork the next spare, while the new process runs
 * and the parent goes on. A start thus never waits for a fork, unless
 * requests come faster than the server can fork.
 *
 * Where the kernel keeps a released child's exit code with its pidfd (Linux
 * 6.15), the server has its children released at exit (SIGCHLD ignored) and
 * the parent reads the code from its pidfd: the server is not on the exit
 * path. Elsewhere the server watches its children through pidfds, reaps
 * them and sends their exit codes. When the parent's end of the socket
 * closes, the server kills its children and exits. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

enum { FS_STARTED = 1, FS_FAILED = 2, FS_EXITED = 3 };

typedef struct fs_msg {
    int32_t type, pid, value;
} fs_msg;

typedef struct srv_child {
    pid_t pid;
    int pidfd;
} srv_child;

typedef struct srv {
    int sock;
    bool exit_by_pidfd; /* children released at exit; no EXITED messages */
    srv_child spare;    /* pid 0: none */
    int spare_chan;     /* the server's end of the spare's socket */
    srv_child *kids;    /* the children handed a start request */
    size_t n, cap;
    struct pollfd *pfd; /* sock, the spare, then one per child */
} srv;

static void srv_wait(pid_t pid)
{
    /* With SIGCHLD ignored this returns ECHILD once the child is gone. */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static _Noreturn void srv_exit(srv *s)
{
    if (s->spare.pid > 0)
        syscall(SYS_pidfd_send_signal, s->spare.pidfd, SIGKILL, NULL, 0);
    for (size_t i = 0; i < s->n; i++)
        syscall(SYS_pidfd_send_signal, s->kids[i].pidfd, SIGKILL, NULL, 0);
    if (s->spare.pid > 0)
        srv_wait(s->spare.pid);
    for (size_t i = 0; i < s->n; i++)
        srv_wait(s->kids[i].pid);
    _exit(0);
}

/* Sends a message, with a pidfd riding on it if pidfd >= 0. */
static void srv_send(srv *s, int type, pid_t pid, int value, int pidfd)
{
    fs_msg m = {type, pid, value};
    if (mp__boot_send_fds(s->sock, &m, sizeof(m), &pidfd, pidfd >= 0) < 0)
        srv_exit(s); /* the parent is gone */
}

static int srv_grow(srv *s)
{
    if (s->n < s->cap)
        return 0;
    size_t cap = s->cap ? 2 * s->cap : 16;
    srv_child *k = realloc(s->kids, cap * sizeof(*k));
    if (!k)
        return MP_ENOMEM;
    s->kids = k;
    struct pollfd *p = realloc(s->pfd, (cap + 2) * sizeof(*p));
    if (!p)
        return MP_ENOMEM;
    s->pfd = p;
    s->cap = cap;
    return 0;
}

/* Gives the received fds their numbers in the parent. They go above every
 * wanted number first, so that placing one never overwrites another. */
static int srv_place_fds(int *got, const int32_t *want, size_t n)
{
    int top = 0;
    for (size_t i = 0; i < n; i++)
        top = want[i] > top ? want[i] : top;
    for (size_t i = 0; i < n; i++) {
        int high = fcntl(got[i], F_DUPFD_CLOEXEC, top + 1);
        if (high < 0)
            return mp__errno();
        close(got[i]);
        got[i] = high;
    }
    for (size_t i = 0; i < n; i++) {
        if (dup2(got[i], want[i]) < 0)
            return mp__errno();
        close(got[i]);
    }
    return 0;
}

static void srv_close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* Reads one start request (the message, its fds, its argument bytes) from
 * fd. Returns 0 with *args (malloc'd, or NULL), or an error after which the
 * stream cannot be trusted. The fds are the caller's either way. */
static int srv_read_request(int fd, mp__boot *b, int *fds, size_t *n_fds, void **args)
{
    *args = NULL;
    int rc = mp__boot_recv_fds(fd, b, sizeof(*b), fds, n_fds);
    if (rc == 0)
        rc = mp__boot_check(b);
    if (rc == 0 && b->args_len > SIZE_MAX / 2)
        rc = MP_EBADMSG;
    if (rc == 0 && b->args_len && !(*args = malloc((size_t)b->args_len)))
        rc = MP_ENOMEM;
    if (rc == 0 && b->args_len && (rc = mp__boot_recv(fd, *args, (size_t)b->args_len)) < 0) {
        free(*args);
        *args = NULL;
    }
    return rc;
}

/* The spare, once handed a request: become the process the parent asked
 * for. The server checked the request; a failure here (out of memory) can
 * only end the process. Without a request (the server left), just leave. */
static _Noreturn void srv_spare_main(int chan)
{
    mp__boot b;
    int fds[MP_PASS_FDS_MAX];
    size_t n_fds = 0;
    void *args;
    mp_process *p = NULL;
    if (srv_read_request(chan, &b, fds, &n_fds, &args) < 0)
        _exit(0);
    close(chan);
    if (n_fds != b.n_pass_fds || mp__boot_process(&b, args, &p) < 0 ||
        srv_place_fds(fds, b.pass_fds, n_fds) < 0)
        _exit(255);
    mp__boot_run(p, b.ppid, b.parent_name);
}

/* Forks the spare, unless there is one; the spare closes the server's fds,
 * and the n_held fds the server holds for a request. Returns 0 or why not. */
static int srv_make_spare(srv *s, const int *held, size_t n_held)
{
    if (s->spare.pid > 0)
        return 0;
    int rc = srv_grow(s); /* room for it in kids, so that a hand-over cannot fail for it */
    int ch[2];
    if (rc < 0)
        return rc;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch) < 0)
        return mp__errno();
    pid_t server = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The server dies with the parent; its children die with it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != server)
            _exit(255);
        /* The server's SIGCHLD setting is no business of the child's own
         * children. */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGCHLD, &dfl, NULL);
        close(ch[0]);
        close(s->sock);
        for (size_t i = 0; i < s->n; i++)
            close(s->kids[i].pidfd);
        for (size_t i = 0; i < n_held; i++)
            close(held[i]);
        srv_spare_main(ch[1]);
    }
    close(ch[1]);
    if (pid < 0) {
        rc = mp__errno();
        close(ch[0]);
        return rc;
    }
    /* The spare waits for its request, so it is there to be opened. */
    int pidfd = mp__pidfd_open(pid);
    if (pidfd < 0) {
        rc = errno == ESRCH ? MP_ECHILD : mp__errno();
        close(ch[0]); /* it reads end of file and leaves */
        kill(pid, SIGKILL);
        srv_wait(pid);
        return rc;
    }
    s->spare = (srv_child){pid, pidfd};
    s->spare_chan = ch[0];
    return 0;
}

/* The spare died before it was handed anything (killed from outside). */
static void srv_drop_spare(srv *s)
{
    close(s->spare_chan);
    close(s->spare.pidfd);
    srv_wait(s->spare.pid);
    s->spare.pid = 0;
}

/* Hands a checked request to the spare. Returns 0, with the spare now in
 * kids and none left, or an error (the spare is dropped). */
static int srv_hand_over(srv *s, const mp__boot *b, const int *fds, size_t n_fds, const void *args)
{
    int rc = mp__boot_send_fds(s->spare_chan, b, sizeof(*b), fds, n_fds);
    if (rc == 0 && b->args_len)
        rc = mp__boot_send(s->spare_chan, args, (size_t)b->args_len);
    if (rc < 0) {
        syscall(SYS_pidfd_send_signal, s->spare.pidfd, SIGKILL, NULL, 0);
        srv_drop_spare(s);
        return rc == MP_EPIPE ? MP_ECHILD : rc;
    }
    close(s->spare_chan);
    s->kids[s->n++] = s->spare;
    s->spare.pid = 0;
    return 0;
}

/* Forgets the children that have exited (the kernel released them), when
 * the server does not watch them. */
static void srv_sweep(srv *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->pfd[i] = (struct pollfd){.fd = s->kids[i].pidfd, .events = POLLIN};
    if (s->n == 0 || poll(s->pfd, s->n, 0) <= 0)
        return;
    for (size_t i = s->n; i-- > 0;) {
        if (s->pfd[i].revents) {
            close(s->kids[i].pidfd);
            s->kids[i] = s->kids[--s->n];
        }
    }
}

static void srv_start(srv *s)
{
    mp__boot b;
    int fds[MP_PASS_FDS_MAX];
    size_t n_fds = 0;
    void *args;
    if (srv_read_request(s->sock, &b, fds, &n_fds, &args) < 0)
        srv_exit(s); /* the parent left, or the stream cannot be trusted */
    /* Check what the child will decode, so that a module missing here (or
     * of another build) fails the start rather than the child. */
    mp_process *p = NULL;
    int rc = n_fds == b.n_pass_fds ? mp__boot_process(&b, args, &p) : MP_EBADMSG;
    if (p) {
        pthread_mutex_destroy(&p->mu);
        free(p);
    }
    if (s->exit_by_pidfd)
        srv_sweep(s);
    for (int tries = 0; rc == 0; tries++) {
        rc = srv_make_spare(s, fds, n_fds);
        if (rc == 0)
            rc = srv_hand_over(s, &b, fds, n_fds, args);
        if (rc != MP_ECHILD || tries == 1)
            break; /* a spare killed from outside is replaced once */
        rc = 0;
    }
    srv_close_fds(fds, n_fds);
    free(args);
    if (rc < 0) {
        srv_send(s, FS_FAILED, 0, rc, -1);
        return;
    }
    srv_child *k = &s->kids[s->n - 1];
    srv_send(s, FS_STARTED, k->pid, 0, k->pidfd);
    /* The next spare is forked while this child runs. A failure is retried
     * at the next request, which then reports it. */
    (void)srv_make_spare(s, NULL, 0);
}

static void srv_reap(srv *s, size_t i)
{
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    int r;
    do
        r = waitid((idtype_t)P_PIDFD, (id_t)s->kids[i].pidfd, &info, WEXITED | WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0 && info.si_pid == 0)
        return; /* not yet */
    int code = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
    pid_t pid = s->kids[i].pid;
    close(s->kids[i].pidfd);
    s->kids[i] = s->kids[--s->n];
    srv_send(s, FS_EXITED, pid, code, -1);
}

/* Whether the kernel keeps the exit code of a child released at exit with
 * its pidfd: one child is forked, with SIGCHLD ignored, and asked about
 * after it exits. On return SIGCHLD is ignored if, and only if, the answer
 * is yes. MP_DISABLE_PIDFD_EXIT=1 forces the answer no, so that tests can
 * run the other way on any kernel. */
static bool srv_probe_exit_by_pidfd(void)
{
    const char *off = getenv("MP_DISABLE_PIDFD_EXIT");
    if (off && *off && *off != '0')
        return false;
    struct sigaction ign = {.sa_handler = SIG_IGN};
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    int gate[2];
    if (sigaction(SIGCHLD, &ign, NULL) < 0 || pipe2(gate, O_CLOEXEC) < 0)
        return false;
    bool yes = false;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(gate[1]);
        while (read(gate[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(42);
    }
    close(gate[0]);
    int pidfd = pid > 0 ? mp__pidfd_open(pid) : -1;
    close(gate[1]); /* the child exits now */
    if (pidfd >= 0) {
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        int code = 0;
        /* Readable at exit; the release (and the code) follows at once. */
        if (poll(&pfd, 1, 5000) == 1) {
            for (int i = 0; i < 100 && !yes; i++) {
                int r = mp__pidfd_exit_code(pidfd, &code);
                if (r < 0)
                    break;
                yes = r == 1 && code == 42;
                if (r == 0)
                    usleep(100);
            }
        }
        close(pidfd);
    }
    if (!yes) {
        sigaction(SIGCHLD, &dfl, NULL);
        if (pid > 0)
            srv_wait(pid);
    }
    return yes;
}

_Noreturn void mp__forkserver_main(int sock, const mp__boot *b)
{
    (void)b;
    srv s = {.sock = sock, .exit_by_pidfd = srv_probe_exit_by_pidfd()};
    if (srv_grow(&s) < 0)
        _exit(255);
    (void)srv_make_spare(&s, NULL, 0);
    int32_t ready[2] = {0, s.exit_by_pidfd};
    if (mp__boot_send(sock, ready, sizeof(ready)) < 0)
        srv_exit(&s);
    for (;;) {
        size_t n = 0;
        s.pfd[n++] = (struct pollfd){.fd = sock, .events = POLLIN};
        if (s.spare.pid > 0)
            s.pfd[n++] = (struct pollfd){.fd = s.spare.pidfd, .events = POLLIN};
        size_t first_kid = n;
        if (!s.exit_by_pidfd)
            for (size_t i = 0; i < s.n; i++)
                s.pfd[n++] = (struct pollfd){.fd = s.kids[i].pidfd, .events = POLLIN};
        if (poll(s.pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            srv_exit(&s);
        }
        if (s.spare.pid > 0 && s.pfd[1].revents)
            srv_drop_spare(&s); /* the next request forks another */
        for (size_t i = n - first_kid; i-- > 0;)
            if (s.pfd[first_kid + i].revents)
                srv_reap(&s, i);
        if (s.pfd[0].revents)
            srv_start(&s);
    }
}
