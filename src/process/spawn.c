/* The spawn start method: the child is a fresh image of the same program.
 *
 * The parent posix_spawns /proc/self/exe (vfork-fast whatever its size)
 * with MP_SPAWN_FD=<fd>:<token> in the environment, and sends the start
 * message (process/boot.h) and the argument bytes over a socket pair. In the child,
 * a constructor of the library (process/spawn_child.c) sees the variable
 * before main runs, makes sure the socket is the one its parent made for
 * it (as below), maps the
 * shared heap at the family address, arms the death signal, reports that it
 * is ready (or why it cannot run), runs the target and exits: the program's
 * main is never entered. The same path starts the fork server.
 *
 * The environment is untrusted (anyone who runs the program chooses it), so
 * the variable alone makes nobody a child. The token is 128 random bits
 * drawn for one start; the parent puts it at the head of the message and
 * queues that head on the socket before the image exists. The constructor
 * accepts the start only if the fd is one end of a Unix stream socket pair
 * made by its parent process (SO_PEERCRED) on which the magic and that token
 * are already waiting, which it checks without reading anything (MSG_PEEK)
 * and without waiting (MSG_DONTWAIT). Anything else (a number that is not an fd, a pipe,
 * someone else's socket, a silent or foreign peer, another token) leaves the
 * fd as the program got it: the variable is removed and main runs. In
 * secure-execution mode (setuid, file capabilities) the variable is not
 * even read. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap/heap.h"
#include "os/pidfd.h"
#include "process/boot.h"
#include "process/start_method.h"

extern char **environ;

/* Pulls process/spawn_child.c, the child's side, into a static link. */
__attribute__((used)) static const char *const spawn_child_anchor = &mp__spawn_child_linked;

/* environ without any MP_SPAWN_FD, plus ours. Freed by the caller. */
static char **spawn_env(char *ours)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = malloc((n + 2) * sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0, plen = strlen(MP__SPAWN_ENV "=");
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], MP__SPAWN_ENV "=", plen) != 0)
            env[k++] = environ[i];
    env[k++] = ours;
    env[k] = NULL;
    return env;
}

void mp__spawn_value_format(char *out, int fd, const uint8_t token[MP__BOOT_TOKEN_LEN])
{
    int n = snprintf(out, MP__SPAWN_VALUE_MAX, "%d:", fd);
    for (size_t i = 0; i < MP__BOOT_TOKEN_LEN; i++, n += 2)
        snprintf(out + n, MP__SPAWN_VALUE_MAX - (size_t)n, "%02x", token[i]);
}

static int spawn_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int mp__spawn_value_parse(const char *v, int *fd, uint8_t token[MP__BOOT_TOKEN_LEN])
{
    long n = 0;
    size_t i = 0;
    for (; v[i] >= '0' && v[i] <= '9'; i++)
        if ((n = n * 10 + (v[i] - '0')) > INT_MAX)
            return MP_EINVAL;
    if (i == 0 || v[i] != ':')
        return MP_EINVAL;
    const char *h = v + i + 1;
    for (size_t k = 0; k < MP__BOOT_TOKEN_LEN; k++) {
        int hi = spawn_hex_digit(h[2 * k]);
        int lo = hi < 0 ? -1 : spawn_hex_digit(h[2 * k + 1]);
        if (lo < 0)
            return MP_EINVAL;
        token[k] = (uint8_t)(hi << 4 | lo);
    }
    if (h[2 * MP__BOOT_TOKEN_LEN] != '\0')
        return MP_EINVAL;
    *fd = (int)n;
    return 0;
}

/* 128 bits from the kernel's generator; there is no weaker fallback, since
 * a guessable token would let a stranger's socket pass for ours. */
static int spawn_token(uint8_t *t)
{
    ssize_t n;
    do
        n = getrandom(t, MP__BOOT_TOKEN_LEN, 0);
    while (n < 0 && errno == EINTR);
    if (n == MP__BOOT_TOKEN_LEN)
        return 0;
    if (n >= 0 || errno != ENOSYS)
        return n >= 0 ? MP_EAGAIN : mp__errno();
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mp__errno();
    do
        n = read(fd, t, MP__BOOT_TOKEN_LEN);
    while (n < 0 && errno == EINTR);
    int rc = n == MP__BOOT_TOKEN_LEN ? 0 : n < 0 ? mp__errno() : MP_EAGAIN;
    close(fd);
    return rc;
}

static int spawn_exec(const mp__boot *b, int child_sock, pid_t *pid)
{
    char var[sizeof(MP__SPAWN_ENV "=") + MP__SPAWN_VALUE_MAX];
    memcpy(var, MP__SPAWN_ENV "=", sizeof(MP__SPAWN_ENV "="));
    mp__spawn_value_format(var + sizeof(MP__SPAWN_ENV), child_sock, b->token);
    char **env = spawn_env(var);
    if (!env)
        return MP_ENOMEM;
    /* A dup2 onto the same number clears close-on-exec in the child only:
     * the two fds reach the new image and no other. */
    posix_spawn_file_actions_t fa;
    int e = posix_spawn_file_actions_init(&fa);
    if (!e)
        e = posix_spawn_file_actions_adddup2(&fa, child_sock, child_sock);
    if (!e && b->heap_fd >= 0)
        e = posix_spawn_file_actions_adddup2(&fa, b->heap_fd, b->heap_fd);
    for (uint32_t i = 0; !e && i < b->n_pass_fds; i++)
        e = posix_spawn_file_actions_adddup2(&fa, b->pass_fds[i], b->pass_fds[i]);
    char *argv[] = {program_invocation_name, NULL};
    if (!e)
        e = posix_spawn(pid, "/proc/self/exe", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    return -e;
}

int mp__spawn_image(mp__boot *b, const void *args, const mp__deadline *d, pid_t *pid, int *sock)
{
    int heap_fd;
    void *addr;
    size_t size;
    if (mp__heap_export(&heap_fd, &addr, &size) == 0 && heap_fd >= 0) {
        b->heap_fd = heap_fd;
        b->heap_addr = (uint64_t)(uintptr_t)addr;
        b->heap_size = size;
    }
    int rc = spawn_token(b->token);
    if (rc < 0)
        return rc;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return mp__errno();
    /* The head of the message is waiting before the image exists, so that
     * its constructor can check it without waiting (see the top). It is a
     * few bytes on a new socket: the send cannot block or stop short. */
    ssize_t n;
    do
        n = send(sv[0], b, MP__BOOT_AUTH_LEN, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    rc = n == (ssize_t)MP__BOOT_AUTH_LEN ? 0 : n < 0 ? mp__errno() : MP_EAGAIN;
    if (rc == 0)
        rc = spawn_exec(b, sv[1], pid);
    close(sv[1]);
    bool spawned = rc == 0;
    if (rc == 0)
        rc = mp__boot_send_by(sv[0], (const char *)b + MP__BOOT_AUTH_LEN,
                              sizeof(*b) - MP__BOOT_AUTH_LEN, d);
    if (rc == 0 && b->args_len)
        rc = mp__boot_send_by(sv[0], args, (size_t)b->args_len, d);
    if (rc == MP_EPIPE)
        rc = 0; /* the child died: its report (end of file) says so */
    if (rc == MP_ETRUNCATED)
        rc = MP_ETIMEDOUT; /* the deadline passed in the middle */
    if (rc < 0) {
        close(sv[0]);
        if (spawned)
            mp__spawn_reap_failed(*pid);
        return rc;
    }
    *sock = sv[0];
    return 0;
}

/* The child's report: 0 when it runs the target, else why it could not. */
int mp__spawn_report(int sock, const mp__deadline *d)
{
    int32_t report;
    int rc = mp__boot_recv_by(sock, &report, sizeof(report), d);
    if (rc == MP_ETIMEDOUT || rc == MP_ETRUNCATED)
        return MP_ETIMEDOUT;
    if (rc < 0)
        return MP_EBOOT; /* it died before reporting */
    if (report > 0 || report < -20000)
        return MP_EBADMSG;
    return report;
}

void mp__spawn_reap_failed(pid_t pid)
{
    /* It has not run its target; it may be stuck (stopped, slow to load,
     * or waiting for the rest of its message): it must not live on. */
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static int spawn_launch(mp_process *p, const mp__deadline *d)
{
    mp__boot b;
    int rc = mp__boot_fill(&b, p, MP__BOOT_CHILD);
    if (rc < 0)
        return rc;
    pid_t pid;
    int sock;
    if ((rc = mp__spawn_image(&b, p->args, d, &pid, &sock)) < 0)
        return rc;
    if ((rc = mp__spawn_report(sock, d)) < 0) {
        close(sock);
        mp__spawn_reap_failed(pid);
        return rc;
    }
    p->pid = pid;
    p->owner = getpid();
    p->sentinel = mp__pidfd_open(pid);
    p->sentinel_is_pidfd = p->sentinel >= 0;
    if (p->sentinel_is_pidfd)
        close(sock);
    else
        p->sentinel = sock; /* end of file when the child exits: it keeps its end */
    return 0;
}

const mp__start_method mp__start_spawn = {
    .id = MP_START_SPAWN,
    .name = "spawn",
    .launch = spawn_launch,
    .status = mp__own_child_status,
};
