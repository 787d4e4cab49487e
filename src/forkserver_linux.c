/* The forkserver start method.
 *
 * A fork server is a spawned image of the program (so it never ran main
 * and has one thread) that forks children on request: each child starts as
 * a copy of that small, quiet process instead of a copy of a large,
 * threaded parent. The parent talks to it over the start socket:
 *
 *   server -> parent: {0, exit_by_pidfd}               (ready, once)
 *   parent -> server: mp__boot + argument bytes       (one start request)
 *   server -> parent: {STARTED, pid} or {FAILED, code} (its answer)
 *                     {EXITED, pid, code}              (whenever a child ends,
 *                                                       unless exit_by_pidfd)
 *
 * The children are the server's, not the parent's: the parent watches them
 * through pidfds (pidfd_open works on any process, and the server sends
 * each child's with its answer). Where the kernel keeps the exit code of a
 * released process with its pidfd (PIDFD_INFO_EXIT, Linux 6.15), the server
 * has its children released at exit (SA_NOCLDWAIT) and the parent reads the
 * code from the pidfd as soon as it turns readable: the server is not on
 * the exit path at all. Elsewhere the server reaps them and sends their
 * codes. Requests are serialised under a mutex; exit codes that arrive while
 * waiting for something else are kept in a table until their process asks.
 * When the parent's end of the socket closes (the parent exited or died;
 * forked children of the parent close their copy), the server kills its
 * children and exits. It has no death signal: that would follow the thread
 * that started it, not the process. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

enum { FS_STARTED = 1, FS_FAILED = 2, FS_EXITED = 3 };

typedef struct fs_msg {
    int32_t type, pid, value;
} fs_msg;

typedef struct fs_exit {
    pid_t pid;
    int code;
} fs_exit;

/* The parent's side: one server per process (a forked child makes its own). */
static struct {
    pthread_mutex_t mu;
    pid_t owner; /* the process that started the server; 0: none */
    pid_t pid;
    int sock;
    bool exit_by_pidfd; /* the server's children: see the top of the file */
    fs_exit *exits; /* exit codes received, not yet asked for */
    size_t n_exits, cap_exits;
} fs = {.mu = PTHREAD_MUTEX_INITIALIZER, .sock = -1};

static void fs_atfork_child(void)
{
    /* The server belongs to the parent; this process will start its own. */
    pthread_mutex_init(&fs.mu, NULL);
    if (fs.sock >= 0)
        close(fs.sock);
    fs.sock = -1;
    fs.owner = 0;
    free(fs.exits);
    fs.exits = NULL;
    fs.n_exits = fs.cap_exits = 0;
}

static pthread_once_t fs_once = PTHREAD_ONCE_INIT;

static void fs_register_atfork(void)
{
    pthread_atfork(NULL, NULL, fs_atfork_child);
}

static int fs_ensure_locked(void)
{
    if (fs.owner == getpid() && fs.sock >= 0)
        return 0;
    pthread_once(&fs_once, fs_register_atfork);
    mp__boot b;
    mp__boot_fill(&b, NULL, MP__BOOT_SERVER);
    pid_t pid;
    int sock;
    int rc = mp__spawn_image(&b, NULL, &pid, &sock);
    if (rc < 0)
        return rc;
    int32_t exit_by_pidfd = 0;
    if ((rc = mp__spawn_report(sock)) < 0 ||
        (rc = mp__boot_recv(sock, &exit_by_pidfd, sizeof(exit_by_pidfd))) < 0) {
        close(sock);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return rc == MP_EEOF || rc == MP_ETRUNCATED ? MP_EBOOT : rc;
    }
    fs.owner = getpid();
    fs.pid = pid;
    fs.sock = sock;
    fs.exit_by_pidfd = exit_by_pidfd == 1;
    return 0;
}

static int fs_keep_exit(pid_t pid, int code)
{
    if (fs.n_exits == fs.cap_exits) {
        size_t cap = fs.cap_exits ? 2 * fs.cap_exits : 16;
        fs_exit *e = realloc(fs.exits, cap * sizeof(*e));
        if (!e)
            return MP_ENOMEM;
        fs.exits = e;
        fs.cap_exits = cap;
    }
    fs.exits[fs.n_exits++] = (fs_exit){pid, code};
    return 0;
}

static bool fs_take_exit(pid_t pid, int *code)
{
    for (size_t i = 0; i < fs.n_exits; i++) {
        if (fs.exits[i].pid == pid) {
            *code = fs.exits[i].code;
            fs.exits[i] = fs.exits[--fs.n_exits];
            return true;
        }
    }
    return false;
}

/* Reads the server's messages until one that is not an exit code; exit
 * codes are kept. Returns 0 with *m and the pidfd that came with it (or
 * -1), or an error (the server is gone). */
static int fs_next_answer(fs_msg *m, int *pidfd)
{
    for (;;) {
        int fds[MP_PASS_FDS_MAX];
        size_t n = 0;
        int rc = mp__boot_recv_fds(fs.sock, m, sizeof(*m), fds, &n);
        *pidfd = n > 0 ? fds[0] : -1;
        for (size_t i = 1; i < n; i++)
            close(fds[i]);
        if (rc == 0 && m->type != FS_EXITED)
            return 0;
        if (*pidfd >= 0)
            close(*pidfd);
        if (rc == 0)
            rc = fs_keep_exit(m->pid, m->value);
        if (rc < 0)
            return rc;
    }
}

int mp_forkserver_ensure(void)
{
    if (!mp__pidfd_supported())
        return MP_ENOSYS;
    pthread_mutex_lock(&fs.mu);
    int rc = fs_ensure_locked();
    pthread_mutex_unlock(&fs.mu);
    return rc;
}

int mp__forkserver_start(mp_process *p)
{
    mp__boot b;
    int rc = mp__boot_fill(&b, p, MP__BOOT_CHILD);
    if (rc < 0)
        return rc;
    if (!mp__pidfd_supported())
        return MP_ENOSYS; /* the parent could not watch the server's children */
    pthread_mutex_lock(&fs.mu);
    fs_msg m = {0};
    int pidfd = -1;
    rc = fs_ensure_locked();
    bool exit_by_pidfd = fs.exit_by_pidfd;
    if (rc == 0)
        rc = mp__boot_send_fds(fs.sock, &b, sizeof(b), p->pass_fds, p->n_pass_fds);
    if (rc == 0 && b.args_len)
        rc = mp__boot_send(fs.sock, p->args, p->args_len);
    if (rc == 0)
        rc = fs_next_answer(&m, &pidfd);
    pthread_mutex_unlock(&fs.mu);
    if (rc < 0)
        return rc == MP_EEOF || rc == MP_EPIPE || rc == MP_ETRUNCATED ? MP_EBOOT : rc;
    if (m.type == FS_STARTED && m.pid > 0 && pidfd >= 0) {
        p->pid = m.pid;
        p->owner = getpid();
        p->sentinel = pidfd;
        p->sentinel_is_pidfd = true;
        p->exit_by_pidfd = exit_by_pidfd;
        return 0;
    }
    if (pidfd >= 0) {
        /* A start without its pidfd, or the reverse: stop what we cannot watch. */
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        close(pidfd);
    }
    if (m.type == FS_FAILED)
        return m.value < 0 ? m.value : MP_EBADMSG;
    return MP_EBADMSG;
}

/* The exit code kept with the pidfd of a child that exited: the kernel
 * releases it right after the pidfd turns readable, so the code is there
 * at once or after a few yields. A child that stays a zombie longer (a
 * tracer holds it) reads as running, after a millisecond, until released. */
static int fs_status_by_pidfd(mp_process *p, int *code)
{
    for (int i = 0; i < 64; i++) {
        int r = mp__pidfd_exit_code(p->sentinel, code);
        if (r != 0)
            return r < 0 ? MP_ECHILD : 1;
        if (i < 16)
            sched_yield();
        else
            usleep(20);
    }
    return 0;
}

int mp__forkserver_status(mp_process *p, int *code)
{
    struct pollfd pfd = {.fd = p->sentinel, .events = POLLIN};
    if (poll(&pfd, 1, 0) == 0)
        return 0;
    if (p->exit_by_pidfd)
        return fs_status_by_pidfd(p, code);
    /* It exited: the server reaps it and says so at once. */
    pthread_mutex_lock(&fs.mu);
    int rc = 1;
    while (!fs_take_exit(p->pid, code)) {
        fs_msg m;
        if (fs.owner != getpid() || fs.sock < 0 || mp__boot_recv(fs.sock, &m, sizeof(m)) < 0) {
            rc = MP_ECHILD; /* the server is gone, and the exit code with it */
            break;
        }
        if (m.type == FS_EXITED && fs_keep_exit(m.pid, m.value) < 0) {
            rc = MP_ENOMEM;
            break;
        }
    }
    pthread_mutex_unlock(&fs.mu);
    return rc;
}
