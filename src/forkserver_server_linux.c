/* The fork server's own loop (see forkserver_linux.c for the protocol). It
 * runs in a spawned image with one thread: it reads start requests, forks a
 * child for each, watches its children through pidfds and reports their exit
 * codes. When the parent's end closes it kills its children and exits. */
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
    srv_child *kids;
    size_t n, cap;
    struct pollfd *pfd; /* sock, then one per child */
} srv;

static _Noreturn void srv_exit(srv *s)
{
    for (size_t i = 0; i < s->n; i++)
        syscall(SYS_pidfd_send_signal, s->kids[i].pidfd, SIGKILL, NULL, 0);
    for (size_t i = 0; i < s->n; i++)
        while (waitpid(s->kids[i].pid, NULL, 0) < 0 && errno == EINTR)
            ;
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
    struct pollfd *p = realloc(s->pfd, (cap + 1) * sizeof(*p));
    if (!p)
        return MP_ENOMEM;
    s->pfd = p;
    s->cap = cap;
    return 0;
}

/* In the new child: leave the server's fds behind and become the process
 * the parent asked for. */
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

/* In the new child: leave the server's fds behind and become the process
 * the parent asked for. */
static _Noreturn void srv_child_main(srv *s, mp_process *p, const mp__boot *b, int *fds)
{
    close(s->sock);
    for (size_t i = 0; i < s->n; i++)
        close(s->kids[i].pidfd);
    if (srv_place_fds(fds, b->pass_fds, b->n_pass_fds) < 0)
        _exit(255);
    mp__boot_run(p, b->ppid, b->parent_name);
}

static void srv_close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

static void srv_start(srv *s)
{
    mp__boot b;
    int fds[MP_PASS_FDS_MAX];
    size_t n_fds = 0;
    int rc = mp__boot_recv_fds(s->sock, &b, sizeof(b), fds, &n_fds);
    if (rc < 0)
        srv_exit(s);
    void *args = NULL;
    if (mp__boot_check(&b) < 0 || b.args_len > SIZE_MAX / 2)
        srv_exit(s); /* the stream cannot be trusted any further */
    if (b.args_len && !(args = malloc((size_t)b.args_len)))
        srv_exit(s);
    if (b.args_len && mp__boot_recv(s->sock, args, (size_t)b.args_len) < 0)
        srv_exit(s);
    mp_process *p = NULL;
    rc = n_fds == b.n_pass_fds ? mp__boot_process(&b, args, &p) : MP_EBADMSG;
    if (rc == 0)
        rc = srv_grow(s);
    pid_t server = getpid();
    pid_t pid = rc == 0 ? fork() : -1;
    if (pid == 0) {
        /* The server dies with the parent; its children die with it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != server)
            _exit(255);
        srv_child_main(s, p, &b, fds);
    }
    srv_close_fds(fds, n_fds);
    if (rc == 0 && pid < 0)
        rc = mp__errno();
    int pidfd = pid > 0 ? mp__pidfd_open(pid) : -1;
    if (p) {
        if (p->args_owned)
            free(p->args);
        pthread_mutex_destroy(&p->mu);
        free(p);
    } else {
        free(args);
    }
    if (rc < 0) {
        srv_send(s, FS_FAILED, 0, rc, -1);
        return;
    }
    if (pidfd < 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        srv_send(s, FS_FAILED, 0, MP_ENOSYS, -1);
        return;
    }
    /* The parent gets its pidfd from here: one it opened itself could come
     * too late, after a short-lived child was already reaped. */
    s->kids[s->n++] = (srv_child){pid, pidfd};
    srv_send(s, FS_STARTED, pid, 0, pidfd);
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

_Noreturn void mp__forkserver_main(int sock, const mp__boot *b)
{
    (void)b;
    srv s = {.sock = sock};
    if (srv_grow(&s) < 0)
        _exit(255);
    int32_t ready = 0;
    if (mp__boot_send(sock, &ready, sizeof(ready)) < 0)
        _exit(255);
    for (;;) {
        s.pfd[0] = (struct pollfd){.fd = sock, .events = POLLIN};
        for (size_t i = 0; i < s.n; i++)
            s.pfd[i + 1] = (struct pollfd){.fd = s.kids[i].pidfd, .events = POLLIN};
        if (poll(s.pfd, s.n + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            srv_exit(&s);
        }
        for (size_t i = s.n; i-- > 0;)
            if (s.pfd[i + 1].revents)
                srv_reap(&s, i);
        if (s.pfd[0].revents)
            srv_start(&s);
    }
}
