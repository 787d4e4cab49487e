/* A program linked with the library, for the environment tests (test_env.c).
 *
 *     env_probe                  main: exit 10 when MP_SPAWN_FD is not in
 *                                the environment, 11 when it is
 *     env_probe --unread FD      the same, and exit 12 unless FD is still
 *                                open without close-on-exec and the head of
 *                                a start message still waits on it, unread
 *     env_probe --forge KIND [PATH]
 *                                play a stranger that forges a start of this
 *                                program's target (which exits 42): make a
 *                                socket pair, write a well-formed message
 *                                for the target on one end, run this program
 *                                with MP_SPAWN_FD naming the other, and exit
 *                                with its code (100 + signal if killed);
 *                                PATH: run that copy of this program instead
 *     env_probe --start          start one child with the default method,
 *                                exit with its code (7), or 20 + the step
 *                                that failed
 *     env_probe --method         exit with mp_get_start_method()
 *     env_probe --init           exit 0 when mp_init(NULL) succeeds, else 4
 *     env_probe --secure         exit 30 in secure-execution mode, else 31
 *
 * Forgeries (KIND): notoken (the variable as it was before tokens: the
 * number alone), wrongtoken (a token, the message another), notparent (the
 * right token, on a socket made by the grandparent), silent (the right
 * token, nothing written), ok (the right token, from the parent: a start
 * like the library's own, so the target runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/boot.h"
#include "multiproc.h"

extern char **environ;

static int probe_target(const void *args, size_t len)
{
    (void)args;
    (void)len;
    return 42;
}

static int seven(const void *args, size_t len)
{
    (void)args;
    (void)len;
    return 7;
}

static int probe_main(int argc, char **argv)
{
    int code = getenv(MP__SPAWN_ENV) ? 11 : 10;
    if (argc == 3 && strcmp(argv[1], "--unread") == 0) {
        int fd = atoi(argv[2]);
        unsigned char head[MP__BOOT_AUTH_LEN];
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0 || (flags & FD_CLOEXEC) ||
            recv(fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT) != (ssize_t)sizeof(head))
            return 12;
    }
    return code;
}

static int wait_code(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 99;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static const char *probe_path = "/proc/self/exe";

/* Runs this program (or probe_path) with MP_SPAWN_FD=value; its code. */
static int run_self(const char *value, int fd, bool unread)
{
    pid_t pid = fork();
    if (pid < 0)
        return 98;
    if (pid == 0) {
        char num[16];
        snprintf(num, sizeof(num), "%d", fd);
        setenv(MP__SPAWN_ENV, value, 1);
        char *argv[] = {(char *)"env_probe", (char *)"--unread", num, NULL};
        if (!unread)
            argv[1] = NULL;
        execve(probe_path, argv, environ);
        _exit(97);
    }
    return wait_code(pid);
}

static void fill_token(uint8_t *t, uint8_t seed)
{
    for (size_t i = 0; i < MP__BOOT_TOKEN_LEN; i++)
        t[i] = (uint8_t)(seed + 17 * i);
}

static int forge(const char *kind)
{
    mp_process *p;
    mp_process_opts o = {.target = probe_target, .start_method = MP_START_SPAWN};
    mp__boot b;
    if (mp_process_create(&p, &o) < 0 || mp__boot_fill(&b, p, MP__BOOT_CHILD) < 0)
        return 90;
    mp_process_destroy(p);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 91;
    char value[MP__SPAWN_VALUE_MAX];
    fill_token(b.token, 1);
    mp__spawn_value_format(value, sv[1], b.token);
    if (strcmp(kind, "notoken") == 0) {
        memset(b.token, 0, sizeof(b.token));
        snprintf(value, sizeof(value), "%d", sv[1]);
    } else if (strcmp(kind, "wrongtoken") == 0) {
        fill_token(b.token, 2);
    }
    bool silent = strcmp(kind, "silent") == 0;
    int code = 96;
    if (strcmp(kind, "notparent") == 0) {
        /* The socket is ours; the parent of the program is a child of ours,
         * which the message names, and which runs it once the message is
         * there. */
        int gate[2];
        if (pipe(gate) < 0)
            return 92;
        pid_t mid = fork();
        if (mid == 0) {
            char c;
            close(sv[0]);
            close(gate[1]);
            if (read(gate[0], &c, 1) != 1)
                _exit(95);
            _exit(run_self(value, sv[1], true));
        }
        close(gate[0]);
        b.ppid = mid;
        if (mp__boot_send(sv[0], &b, sizeof(b)) == 0 && write(gate[1], "x", 1) == 1)
            code = wait_code(mid);
        close(gate[1]);
    } else if (silent || mp__boot_send(sv[0], &b, sizeof(b)) == 0) {
        code = run_self(value, sv[1], !silent && strcmp(kind, "ok") != 0);
    }
    close(sv[0]);
    close(sv[1]);
    return code;
}

static int start_one(void)
{
    mp_process *p;
    int code = 0;
    if (mp_process_create(&p, &(mp_process_opts){.target = seven}) < 0)
        return 21;
    if (mp_process_start(p) < 0)
        code = 22;
    else if (mp_process_join(p, 60) < 0 || mp_process_exitcode(p, &code) < 0)
        code = 23;
    mp_process_destroy(p);
    return code;
}

int main(int argc, char **argv)
{
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "--forge") == 0) {
        if (argc == 4)
            probe_path = argv[3];
        return forge(argv[2]);
    }
    if (argc == 2 && strcmp(argv[1], "--start") == 0)
        return start_one();
    if (argc == 2 && strcmp(argv[1], "--method") == 0)
        return (int)mp_get_start_method();
    if (argc == 2 && strcmp(argv[1], "--init") == 0)
        return mp_init(NULL) == 0 ? 0 : 4;
    if (argc == 2 && strcmp(argv[1], "--secure") == 0)
        return getauxval(AT_SECURE) ? 30 : 31;
    return probe_main(argc, argv);
}
