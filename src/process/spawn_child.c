/* The spawn start method, the child's side: a spawned image's entry,
 * before main (the parent's side, and why the socket is trusted, are in
 * process/spawn.c). The constructor runs in every image of a program
 * linked with the library; in a spawned child it never returns: it runs
 * the target (process.c's mp__process_child_main) or becomes the fork
 * server (process/forkserver_server.c). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "heap/heap.h"
#include "process/boot.h"

/* Referenced by process/spawn.c so that a static link that can spawn also
 * takes this file (its constructor is referenced by nothing else). */
const char mp__spawn_child_linked = 1;

static _Noreturn void spawn_fail(int sock, int rc)
{
    int32_t report = rc;
    (void)mp__boot_send(sock, &report, sizeof(report));
    _exit(255);
}

/* What the constructor makes of the socket its MP_SPAWN_FD names. */
typedef enum spawn_verdict {
    SPAWN_NOT_OURS, /* run main: the variable was not meant for this image */
    SPAWN_OURS,     /* a start from our parent */
    SPAWN_ORPHANED, /* a start meant for us, by a parent that has died since */
} spawn_verdict;

/* A connected Unix stream socket without a name at either end: one end of
 * a socket pair, as the parent makes (a connection accepted on a named
 * socket has a peer that anyone could be). */
static bool spawn_is_socket_pair(int fd)
{
    struct stat st;
    int domain = -1, type = -1;
    socklen_t dl = sizeof(domain), tl = sizeof(type);
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) < 0 || domain != AF_UNIX ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM)
        return false;
    struct sockaddr_un me, peer;
    socklen_t ml = sizeof(me), pl = sizeof(peer);
    return getsockname(fd, (struct sockaddr *)&me, &ml) == 0 && ml == sizeof(sa_family_t) &&
           getpeername(fd, (struct sockaddr *)&peer, &pl) == 0 && pl == sizeof(sa_family_t);
}

/* Whether the magic and the token are already waiting on fd. Peeked, not
 * read, and never waited for: the parent queued them before the spawn. */
static bool spawn_head_matches(int fd, const uint8_t token[MP__BOOT_TOKEN_LEN])
{
    unsigned char head[MP__BOOT_AUTH_LEN];
    ssize_t n;
    do
        n = recv(fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(head))
        return false;
    uint64_t magic;
    memcpy(&magic, head + offsetof(mp__boot, magic), sizeof(magic));
    unsigned diff = 0;
    for (size_t i = 0; i < MP__BOOT_TOKEN_LEN; i++)
        diff |= head[offsetof(mp__boot, token) + i] ^ token[i];
    return magic == MP__BOOT_MAGIC && diff == 0;
}

static spawn_verdict spawn_authenticate(int fd, const uint8_t token[MP__BOOT_TOKEN_LEN])
{
    if (!spawn_is_socket_pair(fd) || !spawn_head_matches(fd, token))
        return SPAWN_NOT_OURS;
    struct ucred peer;
    socklen_t len = sizeof(peer);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0 || len != sizeof(peer))
        return SPAWN_NOT_OURS;
    /* A maker outside our pid namespace shows as 0, like a parent there. */
    if (peer.pid > 0 && peer.pid == getppid())
        return SPAWN_OURS;
    /* The token is right but the socket's maker is not our parent: either
     * the parent that spawned us died at once (we were re-parented, its end
     * is closed), or whoever set our environment is playing games. Running
     * main in an orphaned child would start the whole program again. */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP))
        return SPAWN_ORPHANED;
    return SPAWN_NOT_OURS;
}

/* Runs the start the authenticated socket carries; never returns. */
static _Noreturn void spawn_child(int sock)
{
    mp__boot b;
    int rc = mp__boot_recv(sock, &b, sizeof(b));
    if (rc < 0)
        _exit(255); /* the parent died in the middle: nobody to report to */
    if ((rc = mp__boot_check(&b)) < 0)
        spawn_fail(sock, rc);
    if (b.heap_fd >= 0 &&
        (rc = mp__heap_adopt(b.heap_fd, (void *)(uintptr_t)b.heap_addr, (size_t)b.heap_size)) < 0)
        spawn_fail(sock, rc);
    /* The parent may have died already. */
    if (getppid() != b.ppid)
        _exit(255);
    /* The fork server serves the whole parent process, not the thread that
     * happened to start it, which the death signal would follow: it leaves
     * when the parent's end of the socket closes, which happens when the
     * parent process dies. */
    if (b.mode == MP__BOOT_SERVER)
        mp__forkserver_main(sock, &b);
    /* No orphans, as after fork. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != b.ppid)
        _exit(255);
    void *args = NULL;
    if (b.args_len > 0) {
        if (b.args_len > SIZE_MAX / 2 || !(args = malloc((size_t)b.args_len)))
            spawn_fail(sock, MP_ENOMEM);
        if ((rc = mp__boot_recv(sock, args, (size_t)b.args_len)) < 0)
            _exit(255);
    }
    mp_process *p;
    if ((rc = mp__boot_process(&b, args, &p)) < 0)
        spawn_fail(sock, rc);
    int32_t ok = 0;
    if (mp__boot_send(sock, &ok, sizeof(ok)) < 0)
        _exit(255);
    /* The socket stays open until exit: the parent's sentinel where there
     * are no pidfds. */
    mp__process_child_main(p, b.ppid, b.parent_name);
}

/* Runs before main in every image of a program linked with the library; in
 * a spawned child it never returns. Everywhere else it only removes the
 * variable, so that neither main nor the program's own children see it. */
__attribute__((constructor)) static void mp__spawn_constructor(void)
{
    const char *v = secure_getenv(MP__SPAWN_ENV);
    int fd = -1;
    uint8_t token[MP__BOOT_TOKEN_LEN];
    bool parsed = v && mp__spawn_value_parse(v, &fd, token) == 0;
    /* Also in secure-execution mode, where it was not read. */
    unsetenv(MP__SPAWN_ENV);
    if (!parsed)
        return;
    switch (spawn_authenticate(fd, token)) {
    case SPAWN_NOT_OURS:
        return;
    case SPAWN_ORPHANED:
        _exit(255);
    case SPAWN_OURS:
        break;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    spawn_child(fd);
}
