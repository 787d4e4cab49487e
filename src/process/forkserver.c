/* The forkserver start method, the parent's side (the protocol is in
 * process/forkserver.h, the server in process/forkserver_server.c).
 *
 * A fork server is a spawned image of the program (so it never ran main
 * and has one thread) that forks children for the parent: each child
 * starts as a copy of that small, quiet process instead of a copy of a
 * large, threaded parent. The server forks its children ahead, as spares,
 * and sends the parent each one's pid, pidfd and socket; a start checks its
 * request here, writes it on the next spare's socket and returns.
 *
 * The children are the server's, not the parent's: the parent watches them
 * through the pidfds the server sent. Where the kernel keeps the exit code
 * of a released process with its pidfd (PIDFD_INFO_EXIT, Linux 6.15), the
 * server has its children released at exit and the parent reads the code
 * from the pidfd as soon as it turns readable. Elsewhere the server reaps
 * them and sends their codes; codes that arrive while waiting for something
 * else are kept in a table until their process asks. Calls are serialised
 * under a mutex. When the parent's end of the socket closes (the parent
 * exited or died; forked children of the parent close their copy), the
 * server kills its children and exits. It has no death signal: that would
 * follow the thread that started it, not the process. A server that is
 * lost (killed from outside) is replaced at the next start or ensure. A
 * server that does not answer by the start's deadline (stopped) is kept,
 * with its children: that start fails with MP_ETIMEDOUT, and the next one
 * asks it again. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/pidfd.h"
#include "process/boot.h"
#include "process/forkserver.h"
#include "process/start_method.h"

typedef struct fs_spare {
    pid_t pid;
    int pidfd;
    int chan; /* our end of its socket: the request goes there */
    uint32_t number;
} fs_spare;

typedef struct fs_exit {
    pid_t pid;
    int code;
    bool unwanted; /* a spare given up: drop its code when it comes */
} fs_exit;

/* The parent's side: one server per process (a forked child makes its own). */
static struct {
    pthread_mutex_t mu;
    pid_t owner; /* the process that started the server; 0: none */
    pid_t pid;
    int sock;
    uint32_t gen;       /* counts servers started: a process knows its own */
    bool exit_by_pidfd; /* the server's children: see the top of the file */
    mp__symmod *mods;   /* the server's modules, to check requests against */
    size_t n_mods;
    uint64_t heap_addr, heap_size; /* the shared heap the server mapped */
    /* The spares announced and not used yet, oldest first; the number of
     * the last one used (or found dead); why the last fork failed. */
    fs_spare *spares;
    size_t n_spares, cap_spares;
    uint32_t used, announced;
    int spare_err;  /* from FS_NOSPARE, for the next start */
    fs_exit *exits; /* exit codes received, not yet asked for */
    size_t n_exits, cap_exits;
} fs = {.mu = PTHREAD_MUTEX_INITIALIZER, .sock = -1};

/* Whether this process has a server it started, not yet lost. */
static bool fs_ours(void)
{
    return fs.owner == getpid() && fs.sock >= 0;
}

/* Forgets the server and everything it sent (not the exit codes kept). */
static void fs_forget(void)
{
    if (fs.sock >= 0)
        close(fs.sock);
    fs.sock = -1;
    fs.owner = 0;
    for (size_t i = 0; i < fs.n_spares; i++) {
        close(fs.spares[i].chan); /* the spare reads end of file and leaves */
        close(fs.spares[i].pidfd);
    }
    free(fs.spares);
    fs.spares = NULL;
    fs.n_spares = fs.cap_spares = 0;
    fs.used = fs.announced = 0;
    fs.spare_err = 0;
    free(fs.mods);
    fs.mods = NULL;
    fs.n_mods = 0;
}

static void fs_atfork_child(void)
{
    /* The server belongs to the parent; this process will start its own. */
    pthread_mutex_init(&fs.mu, NULL);
    fs_forget();
    free(fs.exits);
    fs.exits = NULL;
    fs.n_exits = fs.cap_exits = 0;
}

/* The server broke its protocol or went away: it is stopped (its children
 * die with it) and the next start spawns another. */
static void fs_lose_server(void)
{
    kill(fs.pid, SIGKILL);
    while (waitpid(fs.pid, NULL, 0) < 0 && errno == EINTR)
        ;
    fs_forget();
}

/* Whether the server (our child) has exited: a zombie not reaped yet, or
 * reaped by another part of the program. Its end of the socket may close
 * later than that: a spare forked just before holds it a moment. */
static bool fs_server_exited(void)
{
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    int r;
    do
        r = waitid(P_PID, (id_t)fs.pid, &info, WEXITED | WNOHANG | WNOWAIT);
    while (r < 0 && errno == EINTR);
    return r < 0 ? errno == ECHILD : info.si_pid == fs.pid;
}

static pthread_once_t fs_once = PTHREAD_ONCE_INIT;

static void fs_register_atfork(void)
{
    pthread_atfork(NULL, NULL, fs_atfork_child);
}

/* Reads the server's ready message: its modules and heap. */
static int fs_read_hello(int sock, const mp__deadline *d)
{
    fs_hello h;
    int rc = mp__spawn_report(sock, d);
    if (rc == 0)
        rc = mp__boot_recv_by(sock, &h, sizeof(h), d);
    if (rc == 0 && (h.n_mods == 0 || h.n_mods > 1u << 16))
        rc = MP_EBADMSG;
    mp__symmod *mods = NULL;
    if (rc == 0 && !(mods = calloc(h.n_mods, sizeof(*mods))))
        rc = MP_ENOMEM;
    if (rc == 0)
        rc = mp__boot_recv_by(sock, mods, h.n_mods * sizeof(*mods), d);
    if (rc < 0) {
        free(mods);
        if (rc == MP_ETRUNCATED && mp__deadline_expired(d))
            return MP_ETIMEDOUT;
        return rc == MP_EEOF || rc == MP_ETRUNCATED ? MP_EBOOT : rc;
    }
    fs.mods = mods;
    fs.n_mods = h.n_mods;
    fs.exit_by_pidfd = h.exit_by_pidfd == 1;
    fs.heap_addr = h.heap_addr;
    fs.heap_size = h.heap_size;
    return 0;
}

/* Starts a server unless this process has one, by the deadline d (a
 * server too slow to say it is ready is killed: MP_ETIMEDOUT). */
static int fs_ensure_locked(const mp__deadline *d)
{
    if (fs_ours())
        return 0;
    pthread_once(&fs_once, fs_register_atfork);
    mp__boot b;
    mp__boot_fill(&b, NULL, MP__BOOT_SERVER);
    pid_t pid;
    int sock;
    int rc = mp__spawn_image(&b, NULL, d, &pid, &sock);
    if (rc < 0)
        return rc;
    if ((rc = fs_read_hello(sock, d)) < 0) {
        close(sock);
        mp__spawn_reap_failed(pid);
        return rc;
    }
    fs.owner = getpid();
    fs.pid = pid;
    fs.sock = sock;
    fs.gen++;
    return 0;
}

/* Room for one more element in the array that the pointer at arr points
 * to, which holds n of capacity *cap. */
static int fs_room(void *arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? 2 * *cap : 4;
    void *old;
    memcpy(&old, arr, sizeof(old)); /* the pointer is of another type */
    void *grown = realloc(old, c * size);
    if (!grown)
        return MP_ENOMEM;
    memcpy(arr, &grown, sizeof(grown));
    *cap = c;
    return 0;
}

/* The entry of pid in the exit table (wanted or not), or -1. */
static ptrdiff_t fs_find_exit(pid_t pid, bool unwanted)
{
    for (size_t i = 0; i < fs.n_exits; i++)
        if (fs.exits[i].pid == pid && fs.exits[i].unwanted == unwanted)
            return (ptrdiff_t)i;
    return -1;
}

static int fs_add_exit(pid_t pid, int code, bool unwanted)
{
    if (fs_room(&fs.exits, fs.n_exits, &fs.cap_exits, sizeof(*fs.exits)) < 0)
        return MP_ENOMEM;
    fs.exits[fs.n_exits++] = (fs_exit){pid, code, unwanted};
    return 0;
}

static void fs_drop_exit(size_t i)
{
    fs.exits[i] = fs.exits[--fs.n_exits];
}

static int fs_keep_exit(pid_t pid, int code)
{
    ptrdiff_t i = fs_find_exit(pid, true);
    if (i < 0)
        return fs_add_exit(pid, code, false);
    fs_drop_exit((size_t)i);
    return 0;
}

static bool fs_take_exit(pid_t pid, int *code)
{
    ptrdiff_t i = fs_find_exit(pid, false);
    if (i < 0)
        return false;
    *code = fs.exits[i].code;
    fs_drop_exit((size_t)i);
    return true;
}

/* A spare given up (dead before it was used, or lost for want of fds): the
 * code the server sends for it, if it sends codes, has no taker. */
static void fs_give_up(pid_t pid)
{
    int code;
    if (!fs.exit_by_pidfd && !fs_take_exit(pid, &code))
        (void)fs_add_exit(pid, 0, true); /* without memory, one entry stays */
}

static int fs_keep_spare(const fs_msg *m, const int *fds, size_t n)
{
    int why = 0;
    if (m->pid <= 0 || (uint32_t)m->value != fs.announced + 1)
        why = MP_EBADMSG;
    else if (n != 2) /* the kernel dropped them for want of room */
        why = MP_EMFILE;
    else if (fs_room(&fs.spares, fs.n_spares, &fs.cap_spares, sizeof(*fs.spares)) < 0)
        why = MP_ENOMEM;
    if (why == 0) {
        fs.spares[fs.n_spares++] = (fs_spare){m->pid, fds[0], fds[1], (uint32_t)m->value};
        fs.announced++;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    if (why == MP_EBADMSG)
        return why;
    /* This spare is lost to us (it reads end of file and leaves, and the
     * server replaces it), and the start that wanted one fails. */
    fs.announced++;
    fs.spare_err = why;
    fs_give_up(m->pid);
    return 0;
}

/* Reads one message of the server, by the deadline d, and files it.
 * Returns 0, MP_ENOMEM (an exit code had no room and is lost),
 * MP_ETIMEDOUT (nothing came: the server may be stopped or slow, and can
 * still be used), or an error after which the server cannot be used (it is
 * gone, broke protocol, or stopped in the middle of a message). */
static int fs_read_one(const mp__deadline *d)
{
    fs_msg m;
    int fds[MP_PASS_FDS_MAX];
    size_t n = 0;
    int rc = mp__boot_recv_fds_by(fs.sock, &m, sizeof(m), fds, &n, d);
    if (rc == 0 && m.type == FS_SPARE)
        return fs_keep_spare(&m, fds, n);
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    if (rc < 0)
        return rc;
    if (m.type == FS_NOSPARE && m.value < 0 && n == 0) {
        fs.spare_err = m.value;
        return 0;
    }
    if (m.type == FS_EXITED && n == 0)
        return fs_keep_exit(m.pid, m.value);
    return MP_EBADMSG;
}

/* Files every message already there, without waiting for more (the rest
 * of one begun is waited for until the deadline d). */
static int fs_read_ready(const mp__deadline *d)
{
    struct pollfd pfd = {.fd = fs.sock, .events = POLLIN};
    int rc = 0;
    while (rc == 0 && poll(&pfd, 1, 0) > 0)
        rc = fs_read_one(d);
    return rc;
}

/* Whether a pointer of the request means something in the server's image
 * (MP_ENOTLOADED, MP_EOTHERBUILD, MP_EBADMSG if not), as the spare will
 * decode it. */
static int fs_check_ptr(uint32_t kind, uint64_t raw, const mp__symref *ref)
{
    if (kind == MP__PTR_IMAGE)
        return mp__sym_check(ref, fs.mods, fs.n_mods);
    if (kind == MP__PTR_HEAP)
        return raw >= fs.heap_addr && raw - fs.heap_addr < fs.heap_size ? 0 : MP_EBADMSG;
    return 0;
}

static int fs_check(const mp__boot *b)
{
    int rc = fs_check_ptr(MP__PTR_IMAGE, 0, &b->fn);
    if (rc == 0 && b->args_len == 0)
        rc = fs_check_ptr(b->args_kind, b->args_ptr, &b->args_ref);
    if (rc == 0)
        rc = fs_check_ptr(b->user_kind, b->user_ptr, &b->user_ref);
    return rc;
}

/* Reads what the server sent, and until at least want spares are there
 * asks for them (telling the server which ones were used) and waits, until
 * the deadline d. Returns 0, the error of a failed fork (once: the next
 * call asks again), MP_ETIMEDOUT (the server did not answer in time: it is
 * kept, and the next call asks again), or MP_EBOOT (the server is lost:
 * forgotten here). */
static int fs_fill(size_t want, const mp__deadline *d)
{
    int rc = fs_read_ready(d);
    while (rc == 0 && fs.n_spares < want && !fs.spare_err) {
        fs_msg need = {FS_NEED, 0, (int32_t)fs.used};
        rc = mp__boot_send_by(fs.sock, &need, sizeof(need), d);
        while (rc == 0 && fs.n_spares < want && !fs.spare_err)
            rc = fs_read_one(d);
    }
    if (rc == MP_ENOMEM || rc == MP_ETIMEDOUT)
        return rc; /* nothing lost in the stream: the server can go on */
    if (rc < 0) {
        fs_lose_server();
        return MP_EBOOT;
    }
    if (fs.n_spares < want) {
        rc = fs.spare_err;
        fs.spare_err = 0;
    }
    return rc;
}

/* The next spare, taken off the list (see fs_fill for the errors). */
static int fs_next_spare(fs_spare *out, const mp__deadline *d)
{
    int rc = fs_fill(1, d);
    if (rc < 0)
        return rc;
    *out = fs.spares[0];
    fs.n_spares--;
    memmove(fs.spares, fs.spares + 1, fs.n_spares * sizeof(*fs.spares));
    fs.used = out->number;
    return 0;
}

/* Writes the request for the spare, by the deadline d. A spare that died
 * before it read it (killed from outside) makes this MP_EPIPE; the caller
 * takes the next. A spare too slow to read it (stopped) makes it
 * MP_ETIMEDOUT, or MP_ETRUNCATED if it took part. */
static int fs_send_request(const fs_spare *sp, const mp__boot *b, const mp_process *p,
                           const mp__deadline *d)
{
    int rc = mp__boot_send_fds_by(sp->chan, b, sizeof(*b), p->pass_fds, p->n_pass_fds, d);
    if (rc == 0 && b->args_len) {
        rc = mp__boot_send_by(sp->chan, p->args, p->args_len, d);
        rc = rc == MP_ETIMEDOUT ? MP_ETRUNCATED : rc;
    }
    return rc;
}

bool mp__forkserver_running(void)
{
    pthread_mutex_lock(&fs.mu);
    bool yes = fs_ours();
    pthread_mutex_unlock(&fs.mu);
    return yes;
}

/* Whether the server we have died (killed from outside): then it is
 * forgotten, after filing what it sent before it went (exit codes). */
static bool fs_found_dead(void)
{
    if (!fs_ours() || !fs_server_exited())
        return false;
    (void)fs_read_ready(NULL); /* what is there is whole: the writer is dead */
    fs_lose_server();
    return true;
}

int mp_forkserver_ensure(void)
{
    if (!mp__pidfd_supported())
        return MP_ENOSYS;
    mp__deadline d;
    mp__deadline_init(&d, MP__DEFAULT_START_TIMEOUT);
    pthread_mutex_lock(&fs.mu);
    (void)fs_found_dead();
    int rc = fs_ensure_locked(&d);
    if (rc == 0 && (rc = fs_fill(FS_SPARES, &d)) == MP_EBOOT) {
        /* It died between the check and the request: start another. */
        if ((rc = fs_ensure_locked(&d)) == 0)
            rc = fs_fill(FS_SPARES, &d);
    }
    pthread_mutex_unlock(&fs.mu);
    return rc;
}

/* Writes the request for the next spare, taking the one after it if a
 * spare died first, and starting a new server once if the server was lost.
 * Returns 0 with the spare that took it in *sp. */
static int fs_place_request(const mp__boot *b, const mp_process *p, fs_spare *sp,
                            const mp__deadline *d)
{
    bool respawned = false;
    for (;;) {
        int rc = fs_next_spare(sp, d);
        if (rc == MP_EBOOT && !respawned) {
            /* The server was lost (killed from outside): start another. */
            respawned = true;
            if ((rc = fs_ensure_locked(d)) == 0)
                continue;
        }
        if (rc < 0)
            return rc;
        rc = fs_send_request(sp, b, p, d);
        close(sp->chan);
        if (rc == 0)
            return 0;
        if (rc != MP_EPIPE) /* it may have read part: it must not run */
            (void)mp__pidfd_send_signal(sp->pidfd, SIGKILL);
        close(sp->pidfd);
        fs_give_up(sp->pid);
        if (rc != MP_EPIPE)
            return rc == MP_ETRUNCATED ? MP_ETIMEDOUT : rc;
    }
}

static int fs_launch(mp_process *p, const mp__deadline *d)
{
    mp__boot b;
    int rc = mp__boot_fill(&b, p, MP__BOOT_CHILD);
    if (rc < 0)
        return rc;
    if (!mp__pidfd_supported())
        return MP_ENOSYS; /* the parent could not watch the server's children */
    pthread_mutex_lock(&fs.mu);
    (void)fs_found_dead();
    rc = fs_ensure_locked(d);
    if (rc == 0)
        rc = fs_check(&b);
    fs_spare sp = {.pidfd = -1, .chan = -1};
    if (rc == 0)
        rc = fs_place_request(&b, p, &sp, d);
    if (rc == 0) {
        p->pid = sp.pid;
        p->owner = getpid();
        p->sentinel = sp.pidfd;
        p->sentinel_is_pidfd = true;
        p->exit_by_pidfd = fs.exit_by_pidfd;
        p->server_gen = fs.gen;
    }
    pthread_mutex_unlock(&fs.mu);
    return rc;
}

/* Whether the server that started p is gone (its children were given to
 * another parent, which may take its time to reap them, or never do). */
static bool fs_server_gone(const mp_process *p)
{
    pthread_mutex_lock(&fs.mu);
    bool gone = !fs_ours() || fs.gen != p->server_gen || fs_server_exited();
    pthread_mutex_unlock(&fs.mu);
    return gone;
}

/* The i-th pause of a short wait for the kernel: yields, then sleeps. */
static void fs_pause(int i)
{
    if (i < 16)
        sched_yield();
    else
        usleep(20);
}

/* The kernel keeps a released child's code a moment before it frees its
 * pid: waits for that too (10 ms at most), so that after a join the pid is
 * gone, as after fork's waitpid. */
static void fs_wait_pid_freed(int pidfd)
{
    int64_t until = mp__now_ns() + 10 * 1000000;
    for (int i = 0; mp__pidfd_send_signal(pidfd, 0) == 0; i++) {
        if (mp__now_ns() > until)
            break;
        fs_pause(i);
    }
}

/* The wait status of zombie pid as /proc shows it (field 52 of its stat,
 * Linux 3.5), as an exit code: 1 with *code, 0 if it is not a zombie (or
 * gone, or /proc cannot tell). */
static int fs_zombie_code(pid_t pid, int *code)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    char *f = strrchr(buf, ')'); /* the name before it may hold anything */
    if (!f || f[1] != ' ' || f[2] != 'Z')
        return 0;
    f += 2; /* field 3, the state */
    for (int field = 3; field < 52 && f; field++)
        if ((f = strchr(f, ' ')))
            f++;
    if (!f || *f < '0' || *f > '9')
        return 0;
    int st = atoi(f);
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    return 1;
}

/* The status of a child whose server is gone (the child was killed with
 * it, or ended before). It is another process's child now: ours if this
 * process is a subreaper (reaped here), else a zombie of init or of a
 * subreaper until that one reaps it. The code is read, in that order, by
 * reaping it, from the kernel (Linux 6.15 keeps it with the pidfd of a
 * process released), or from /proc while it is a zombie. MP_ECHILD when
 * none can tell (an older kernel, and the child reaped already). */
static int fs_orphan_status(const mp_process *p, int *code)
{
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (mp__pidfd_waitid(p->sentinel, &info, WEXITED | WNOHANG) == 0 && info.si_pid != 0) {
        *code = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
        return 1;
    }
    if (mp__pidfd_exit_code(p->sentinel, code) == 1)
        return 1;
    /* The pid was still this child's when /proc was read if the child is
     * still not released afterwards. */
    if (fs_zombie_code(p->pid, code) == 1 && mp__pidfd_send_signal(p->sentinel, 0) == 0)
        return 1;
    return mp__pidfd_exit_code(p->sentinel, code) == 1 ? 1 : MP_ECHILD;
}

/* The exit code kept with the pidfd of a child that exited: the kernel
 * releases it right after the pidfd turns readable, so the code is there
 * at once or after a few yields. A child that stays a zombie longer reads
 * as running, after a millisecond, until released (a tracer holds it), or,
 * if its server is gone, as fs_orphan_status finds it. */
static int fs_status_by_pidfd(mp_process *p, int *code)
{
    for (int i = 0; i < 64; i++) {
        int r = mp__pidfd_exit_code(p->sentinel, code);
        if (r < 0)
            return MP_ECHILD;
        if (r == 1) {
            fs_wait_pid_freed(p->sentinel);
            return 1;
        }
        if (i == 16 && fs_server_gone(p))
            return fs_orphan_status(p, code);
        fs_pause(i);
    }
    return 0;
}

/* How long a status waits for the server to send the exit code of a child
 * that exited: it comes at once from a server that runs; a stopped one
 * must not block the call (the child reads as running meanwhile). */
#define FS_ANSWER_WAIT 0.1

/* The status of a child of the server: 1 with *code when it has exited (the
 * code read from its pidfd, or sent by the server that reaped it), 0 while
 * it runs, or MP_ECHILD (the code is lost with its server). */
static int fs_status(mp_process *p, int *code)
{
    struct pollfd pfd = {.fd = p->sentinel, .events = POLLIN};
    if (poll(&pfd, 1, 0) == 0)
        return 0;
    if (p->exit_by_pidfd)
        return fs_status_by_pidfd(p, code);
    /* It exited: the server reaps it and says so at once. */
    mp__deadline soon;
    mp__deadline_init(&soon, FS_ANSWER_WAIT);
    pthread_mutex_lock(&fs.mu);
    int rc = 1;
    bool orphan = false;
    while (rc == 1 && !orphan && !fs_take_exit(p->pid, code)) {
        if (!fs_ours() || fs.gen != p->server_gen) {
            orphan = true; /* the server is gone, before it sent the code */
            break;
        }
        int r = fs_read_one(&soon);
        if (r == MP_ETIMEDOUT)
            rc = 0;
        else if (r == MP_ENOMEM)
            rc = MP_ECHILD; /* a code had no room: perhaps this one */
        else if (r < 0)
            fs_lose_server();
    }
    pthread_mutex_unlock(&fs.mu);
    return orphan ? fs_orphan_status(p, code) : rc;
}

const mp__start_method mp__start_forkserver = {
    .id = MP_START_FORKSERVER,
    .name = "forkserver",
    .launch = fs_launch,
    .status = fs_status,
};
