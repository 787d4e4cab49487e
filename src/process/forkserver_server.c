/* The fork server's own loop (protocol in process/forkserver.h). It runs in a
 * spawned image with one thread.
 *
 * It keeps FS_SPARES spares forked and announced. Each waits on a socket of
 * its own, whose other end the parent holds, for the request that makes it
 * a process; the server never sees the requests. A spare is replaced when
 * it exits, or when the parent says (FS_NEED) that it used it.
 *
 * Where the kernel keeps a released child's exit code with its pidfd (Linux
 * 6.15), the server has its children released at exit (SIGCHLD ignored) and
 * the parent reads the code from its pidfd: the server is not on the exit
 * path. Elsewhere the server reaps its children and sends their exit codes.
 * When the parent's end of the socket closes, the server kills its
 * children and exits. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/fdio.h"
#include "os/pidfd.h"
#include "process/boot.h"
#include "process/forkserver.h"

typedef struct srv_child {
    pid_t pid;
    int pidfd;
    uint32_t number; /* its number as a spare */
} srv_child;

typedef struct srv {
    int sock;
    bool exit_by_pidfd; /* children released at exit; no FS_EXITED */
    uint32_t number;    /* of the last spare announced */
    uint32_t used;      /* the parent has used spares 1..used */
    bool want_spare;    /* false after FS_NOSPARE, until FS_NEED */
    srv_child *kids;    /* every child that has not exited: spares and not */
    size_t n, cap;
    struct pollfd *pfd;      /* sock, then one per child */
    struct sigaction sigint; /* as the server found it: its children's */
} srv;

static void srv_wait(pid_t pid)
{
    /* With SIGCHLD ignored this returns ECHILD once the child is gone. */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static _Noreturn void srv_exit(srv *s)
{
    for (size_t i = 0; i < s->n; i++)
        (void)mp__pidfd_send_signal(s->kids[i].pidfd, SIGKILL);
    for (size_t i = 0; i < s->n; i++)
        srv_wait(s->kids[i].pid);
    _exit(0);
}

/* Sends a message, with n fds riding on it. */
static void srv_send(srv *s, int type, pid_t pid, int value, const int *fds, size_t n)
{
    fs_msg m = {type, pid, value};
    if (mp__boot_send_fds(s->sock, &m, sizeof(m), fds, n) < 0)
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

/* The spare: wait for the request on its socket and become the process the
 * parent asked for. Without a request (the parent closed the socket) it
 * just leaves. The parent checked the request against this image
 * beforehand, so a failure to decode it (out of memory) can only end the
 * process. It ignores SIGINT, as the server does, until it has its request
 * (a Ctrl-C costs no spare), then takes back the setting the server found,
 * sigint: the parent's when it started the server, as a spawned child
 * would have it. */
static _Noreturn void srv_spare_main(int chan, const struct sigaction *sigint)
{
    mp__boot b;
    int fds[MP_PASS_FDS_MAX];
    size_t n_fds = 0;
    int rc = mp__boot_recv_fds(chan, &b, sizeof(b), fds, &n_fds);
    if (rc == MP_EEOF)
        _exit(0);
    void *args = NULL;
    if (rc == 0)
        rc = mp__boot_check(&b);
    if (rc == 0 && (b.mode != MP__BOOT_CHILD || n_fds != b.n_pass_fds || b.args_len > SIZE_MAX / 2))
        rc = MP_EBADMSG;
    if (rc == 0 && b.args_len && !(args = malloc((size_t)b.args_len)))
        rc = MP_ENOMEM;
    if (rc == 0 && b.args_len)
        rc = mp__boot_recv(chan, args, (size_t)b.args_len);
    mp_process *p = NULL;
    if (rc == 0)
        rc = mp__boot_process(&b, args, &p);
    close(chan); /* before the fds take their numbers, one of which may be its */
    if (rc < 0 || srv_place_fds(fds, b.pass_fds, n_fds) < 0)
        _exit(255);
    sigaction(SIGINT, sigint, NULL);
    mp__process_child_main(p, b.ppid, b.parent_name);
}

/* Forks a spare and announces it, or announces why not (and forks no more
 * until the parent asks). */
static void srv_make_spare(srv *s)
{
    int rc = srv_grow(s);
    int ch[2] = {-1, -1};
    if (rc == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch) < 0)
        rc = mp__errno();
    pid_t server = getpid();
    pid_t pid = rc == 0 ? fork() : -1;
    if (pid == 0) {
        /* The server dies with the parent; its children die with it. If it
         * died before the death signal was armed, die as the signal would
         * have made us (the parent may have used this spare already, and
         * sees how it ended). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != server) {
            raise(SIGKILL);
            _exit(255);
        }
        /* The server's SIGCHLD setting is no business of the child's own
         * children. */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGCHLD, &dfl, NULL);
        close(ch[0]);
        close(s->sock);
        for (size_t i = 0; i < s->n; i++)
            close(s->kids[i].pidfd);
        srv_spare_main(ch[1], &s->sigint);
    }
    if (rc == 0 && pid < 0)
        rc = mp__errno();
    if (ch[1] >= 0)
        close(ch[1]);
    /* The spare waits for its request, so it is there to be opened. */
    int fds[2] = {pid > 0 ? mp__pidfd_open(pid) : -1, ch[0]};
    if (pid > 0 && fds[0] < 0) {
        rc = errno == ESRCH ? MP_ECHILD : mp__errno();
        kill(pid, SIGKILL);
        srv_wait(pid);
    }
    if (rc < 0) {
        if (ch[0] >= 0)
            close(ch[0]);
        s->want_spare = false;
        srv_send(s, FS_NOSPARE, 0, rc, NULL, 0);
        return;
    }
    s->kids[s->n++] = (srv_child){pid, fds[0], ++s->number};
    srv_send(s, FS_SPARE, pid, (int32_t)s->number, fds, 2);
    close(ch[0]); /* the parent's end now */
}

/* The spares the parent may not have used yet. */
static size_t srv_spares(const srv *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        k += s->kids[i].number > s->used;
    return k;
}

/* Child i exited: forget it (after reaping it and sending its code, where
 * the kernel does not keep the code with its pidfd). */
static void srv_child_exited(srv *s, size_t i)
{
    if (!s->exit_by_pidfd) {
        siginfo_t info;
        memset(&info, 0, sizeof(info));
        int r;
        do
            r = mp__pidfd_waitid(s->kids[i].pidfd, &info, WEXITED | WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0 && info.si_pid == 0)
            return; /* not yet */
        int code = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
        srv_send(s, FS_EXITED, s->kids[i].pid, code, NULL, 0);
    }
    close(s->kids[i].pidfd);
    s->kids[i] = s->kids[--s->n];
}

/* A message of the parent: FS_NEED (it used spares up to value). */
static void srv_read_socket(srv *s)
{
    fs_msg m;
    if (mp__boot_recv(s->sock, &m, sizeof(m)) < 0)
        srv_exit(s); /* the parent is gone */
    if (m.type != FS_NEED || m.value < 0 || (uint32_t)m.value > s->number)
        srv_exit(s); /* the stream cannot be trusted */
    if ((uint32_t)m.value > s->used)
        s->used = (uint32_t)m.value;
    s->want_spare = true;
}

/* Whether the kernel keeps the exit code of a child released at exit with
 * its pidfd: one child is forked, with SIGCHLD ignored, and asked about
 * after it exits. On return SIGCHLD is ignored if, and only if, the answer
 * is yes. MP_DISABLE_PIDFD_EXIT=1 forces the answer no, so that tests can
 * run the other way on any kernel. */
static bool srv_probe_exit_by_pidfd(void)
{
    if (mp__env_off("MP_DISABLE_PIDFD_EXIT"))
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

/* Ready: the server's modules and heap, against which the parent checks
 * its requests. */
static int srv_hello(srv *s, const mp__boot *b)
{
    size_t n = mp__sym_modules(NULL, 0);
    mp__symmod *mods = calloc(n ? n : 1, sizeof(*mods));
    if (!mods)
        return MP_ENOMEM;
    n = mp__sym_modules(mods, n);
    fs_hello h = {.exit_by_pidfd = s->exit_by_pidfd, .n_mods = (uint32_t)n};
    if (b->heap_fd >= 0) {
        h.heap_addr = b->heap_addr;
        h.heap_size = b->heap_size;
    }
    int32_t ready = 0;
    int rc = mp__boot_send(s->sock, &ready, sizeof(ready));
    if (rc == 0)
        rc = mp__boot_send(s->sock, &h, sizeof(h));
    if (rc == 0)
        rc = mp__boot_send(s->sock, mods, n * sizeof(*mods));
    free(mods);
    return rc;
}

_Noreturn void mp__forkserver_main(int sock, const mp__boot *b)
{
    srv s = {.sock = sock, .exit_by_pidfd = srv_probe_exit_by_pidfd(), .want_spare = true};
    /* A Ctrl-C reaches the whole foreground process group, the server too:
     * its death would kill every child it started, even those that ignore
     * or handle SIGINT. Like CPython's fork server, it ignores it. */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    if (sigaction(SIGINT, &ign, &s.sigint) < 0 || srv_grow(&s) < 0 || srv_hello(&s, b) < 0)
        srv_exit(&s);
    for (;;) {
        while (s.want_spare && srv_spares(&s) < FS_SPARES)
            srv_make_spare(&s);
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
                srv_child_exited(&s, i);
        if (s.pfd[0].revents)
            srv_read_socket(&s);
    }
}
