/* The spawn start method: the child is a fresh image of the same program.
 *
 * The parent posix_spawns /proc/self/exe (vfork-fast whatever its size)
 * with MP_SPAWN_FD=<fd> in the environment, and sends the start message
 * (boot.h) and the argument bytes over a socket pair. In the child, a
 * constructor of the library sees the variable before main runs, maps the
 * shared heap at the family address, arms the death signal, reports that it
 * is ready (or why it cannot run), runs the target and exits: the program's
 * main is never entered. The same path starts the fork server. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot.h"
#include "heap.h"

extern char **environ;

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

static int spawn_exec(const mp__boot *b, int child_sock, pid_t *pid)
{
    char var[sizeof(MP__SPAWN_ENV) + 16];
    snprintf(var, sizeof(var), MP__SPAWN_ENV "=%d", child_sock);
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
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return mp__errno();
    int rc = spawn_exec(b, sv[1], pid);
    close(sv[1]);
    bool spawned = rc == 0;
    if (rc == 0)
        rc = mp__boot_send_by(sv[0], b, sizeof(*b), d);
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

int mp__process_spawn(mp_process *p, const mp__deadline *d)
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

/* ---- the child side ----------------------------------------------------- */

static _Noreturn void spawn_fail(int sock, int rc)
{
    int32_t report = rc;
    (void)mp__boot_send(sock, &report, sizeof(report));
    _exit(255);
}

static void spawn_child(int sock)
{
    mp__boot b;
    int rc = mp__boot_recv(sock, &b, sizeof(b));
    if (rc == 0)
        rc = mp__boot_check(&b);
    if (rc < 0)
        _exit(255); /* not a parent of ours: nobody to report to */
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
    mp__boot_run(p, b.ppid, b.parent_name);
}

/* Runs before main in every image of a program linked with the library; in
 * a spawned child it never returns. */
__attribute__((constructor)) static void mp__spawn_constructor(void)
{
    const char *v = getenv(MP__SPAWN_ENV);
    if (!v)
        return;
    char *end;
    errno = 0;
    long fd = strtol(v, &end, 10);
    if (errno || *end || end == v || fd < 0 || fd > INT_MAX || fcntl((int)fd, F_GETFD) < 0)
        return; /* not a start socket of ours */
    unsetenv(MP__SPAWN_ENV);
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    spawn_child((int)fd);
}
