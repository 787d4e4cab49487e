/* The environment is untrusted (DESIGN §4.10): nothing in it makes a
 * program linked with the library run code it did not choose. The programs
 * run here are tests/helpers/env_probe.c and heap_probe.c, each a fresh
 * image with an environment made for the case. */
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/boot.h"
#include "mp_test.h"

extern char **environ;

TestSuite(env, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 60);

/* environ without any MP_ variable, with leak checking off in sanitizer
 * builds (a probe leaves through exit paths that do not free), plus extra
 * (NULL-terminated). Freed by env_free. */
static char **env_make(const char *const *extra)
{
    size_t n = 0, x = 0;
    while (environ[n])
        n++;
    while (extra && extra[x])
        x++;
    char **env = calloc(n + x + 2, sizeof(*env));
    cr_assert_not_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "MP_", 3) != 0 && strncmp(environ[i], "ASAN_OPTIONS=", 13) != 0)
            env[k++] = strdup(environ[i]);
    const char *asan = getenv("ASAN_OPTIONS");
    cr_assert_gt(asprintf(&env[k++], "ASAN_OPTIONS=%s%sdetect_leaks=0", asan ? asan : "",
                          asan && *asan ? ":" : ""),
                 0);
    for (size_t i = 0; i < x; i++)
        env[k++] = strdup(extra[i]);
    return env;
}

static void env_free(char **env)
{
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

/* Runs path with argv and the extra variables; stdin_fd (if >= 0) becomes
 * its stdin, keep_fd (if >= 0) reaches it at the same number. Its exit
 * code, or 100 + the signal that killed it. */
static int run(const char *path, const char *const *argv, const char *const *extra, int stdin_fd,
               int keep_fd)
{
    char **env = env_make(extra);
    posix_spawn_file_actions_t fa;
    cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
    if (stdin_fd >= 0)
        cr_assert_eq(posix_spawn_file_actions_adddup2(&fa, stdin_fd, 0), 0);
    if (keep_fd >= 0) /* onto itself: clears close-on-exec in the child */
        cr_assert_eq(posix_spawn_file_actions_adddup2(&fa, keep_fd, keep_fd), 0);
    pid_t pid;
    int e = posix_spawn(&pid, path, &fa, NULL, (char *const *)(uintptr_t)argv, env);
    posix_spawn_file_actions_destroy(&fa);
    env_free(env);
    cr_assert_eq(e, 0, "posix_spawn %s: %s", path, strerror(e));
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

/* env_probe's main with MP_SPAWN_FD=value, stdin on /dev/null. */
static int probe_with(const char *value, int keep_fd)
{
    char var[256];
    snprintf(var, sizeof(var), "%s=%s", MP__SPAWN_ENV, value);
    const char *argv[] = {MP_ENV_PROBE, NULL};
    const char *extra[] = {var, NULL};
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(null, 0);
    int code = run(MP_ENV_PROBE, argv, extra, null, keep_fd);
    close(null);
    return code;
}

/* A well-formed value for fd, with some token. */
static void value_for(char *out, int fd)
{
    uint8_t token[MP__BOOT_TOKEN_LEN];
    for (size_t i = 0; i < sizeof(token); i++)
        token[i] = (uint8_t)(0xa5 ^ i);
    mp__spawn_value_format(out, fd, token);
}

/* The probe's codes: main ran and the variable is gone (10) or still there
 * (11); the target of a start ran (42). */
enum { MAIN_RAN = 10, TARGET_RAN = 42 };

#define expect_code(expr, want)                                                                    \
    do {                                                                                           \
        int got_ = (expr);                                                                         \
        cr_assert_eq(got_, (want), "%s: exit code %d, want %d", #expr, got_, (want));              \
    } while (0)

Test(env, spawn_fd_naming_stdin_on_dev_null_runs_main)
{
    char value[MP__SPAWN_VALUE_MAX];
    value_for(value, 0);
    expect_code(probe_with("0", -1), MAIN_RAN);
    expect_code(probe_with(value, -1), MAIN_RAN);
}

Test(env, spawn_fd_garbage_runs_main_without_the_variable)
{
    static const char *const values[] = {
        "",
        "x",
        "-1",
        "3x",
        " 0",
        "0 ",
        "+0",
        "2147483648",
        "99999999999999999999999",
        "0:",
        "0:zz",
        "0:0123456789abcdef0123456789abcde",
        "0:0123456789abcdef0123456789abcdef0",
        "0:0123456789ABCDEF0123456789ABCDEF",
        ":0123456789abcdef0123456789abcdef",
        "999:0123456789abcdef0123456789abcdef",
    };
    for (size_t i = 0; i < MP__ARRAY_LEN(values); i++) {
        int code = probe_with(values[i], -1);
        cr_assert_eq(code, MAIN_RAN, "MP_SPAWN_FD=\"%s\": exit code %d", values[i], code);
    }
}

/* A head of a start message with the token of value_for. */
static void head_for(unsigned char *head)
{
    mp__boot b;
    memset(&b, 0, sizeof(b));
    b.magic = MP__BOOT_MAGIC;
    for (size_t i = 0; i < MP__BOOT_TOKEN_LEN; i++)
        b.token[i] = (uint8_t)(0xa5 ^ i);
    memcpy(head, &b, MP__BOOT_AUTH_LEN);
}

Test(env, spawn_fd_that_is_not_a_unix_stream_socket_runs_main)
{
    char value[MP__SPAWN_VALUE_MAX];
    unsigned char head[MP__BOOT_AUTH_LEN];
    head_for(head);
    /* A pipe with the right head in it. */
    int pfd[2];
    cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
    cr_assert_eq(write(pfd[1], head, sizeof(head)), (ssize_t)sizeof(head));
    value_for(value, pfd[0]);
    expect_code(probe_with(value, pfd[0]), MAIN_RAN);
    close(pfd[0]);
    close(pfd[1]);
    /* A datagram pair of ours, the same. */
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(send(sv[0], head, sizeof(head), 0), (ssize_t)sizeof(head));
    value_for(value, sv[1]);
    expect_code(probe_with(value, sv[1]), MAIN_RAN);
    close(sv[0]);
    close(sv[1]);
    /* An Internet socket, a regular file, a number that is no fd. */
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(udp, 0);
    value_for(value, udp);
    expect_code(probe_with(value, udp), MAIN_RAN);
    close(udp);
    int file = open(MP_ENV_PROBE, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(file, 0);
    value_for(value, file);
    expect_code(probe_with(value, file), MAIN_RAN);
    close(file);
    value_for(value, 900);
    expect_code(probe_with(value, -1), MAIN_RAN);
}

/* A connection to a named socket of the parent, with the right head waiting:
 * the peer of such a socket is whoever connected, not a socket pair the
 * parent made for this child. */
Test(env, connection_on_a_named_socket_runs_main)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int len = snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "mp_env_%d", (int)getpid());
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
    int lis = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int cli = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(lis >= 0 && cli >= 0);
    cr_assert_eq(bind(lis, (struct sockaddr *)&addr, alen), 0);
    cr_assert_eq(listen(lis, 1), 0);
    cr_assert_eq(connect(cli, (struct sockaddr *)&addr, alen), 0);
    int srv = accept4(lis, NULL, NULL, SOCK_CLOEXEC);
    cr_assert_geq(srv, 0);
    unsigned char head[MP__BOOT_AUTH_LEN];
    head_for(head);
    cr_assert_eq(send(srv, head, sizeof(head), 0), (ssize_t)sizeof(head));
    close(srv);
    close(lis);
    char value[MP__SPAWN_VALUE_MAX];
    value_for(value, cli);
    expect_code(probe_with(value, cli), MAIN_RAN);
    close(cli);
}

/* env_probe --forge kind: its code. */
static int forge(const char *kind)
{
    const char *argv[] = {MP_ENV_PROBE, "--forge", kind, NULL};
    return run(MP_ENV_PROBE, argv, NULL, -1, -1);
}

Test(env, forged_start_without_token_runs_main_not_the_target)
{
    expect_code(forge("notoken"), MAIN_RAN);
}

Test(env, forged_start_with_another_token_runs_main_not_the_target)
{
    expect_code(forge("wrongtoken"), MAIN_RAN);
}

Test(env, forged_start_on_a_socket_not_made_by_the_parent_runs_main_not_the_target)
{
    expect_code(forge("notparent"), MAIN_RAN);
}

Test(env, silent_socket_of_the_parent_runs_main_at_once)
{
    expect_code(forge("silent"), MAIN_RAN);
}

/* The control of the forgeries: their message is well-formed, and a start
 * like the library's own (the right token, from the parent) runs it. */
Test(env, start_with_the_token_from_the_parent_runs_the_target)
{
    expect_code(forge("ok"), TARGET_RAN);
}

/* A setuid copy of env_probe (to nobody), for the secure-execution cases;
 * NULL (and the test skips) where this process cannot make one. */
static char *setuid_probe(char *dir)
{
    if (geteuid() != 0 || !mkdtemp(dir))
        return NULL;
    char *path = NULL;
    cr_assert_gt(asprintf(&path, "%s/env_probe", dir), 0);
    int in = open(MP_ENV_PROBE, O_RDONLY | O_CLOEXEC);
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    cr_assert(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    cr_assert_eq(chown(path, 65534, 65534), 0);
    cr_assert_eq(chmod(path, 04755), 0);
    const char *argv[] = {path, "--secure", NULL};
    if (run(path, argv, NULL, -1, -1) != 30) { /* a file system or sandbox without setuid */
        unlink(path);
        rmdir(dir);
        free(path);
        return NULL;
    }
    return path;
}

Test(env, secure_execution_ignores_every_variable)
{
    char dir[] = "/tmp/mp_env_XXXXXX";
    char *path = setuid_probe(dir);
    if (!path)
        cr_skip_test("no setuid program runs here (it needs root, a file system that honours "
                     "setuid, and a build without sanitizers)");
    /* The start of a parent that is honest but was chosen by the caller. */
    const char *forge_argv[] = {MP_ENV_PROBE, "--forge", "ok", path, NULL};
    int forged = run(MP_ENV_PROBE, forge_argv, NULL, -1, -1);
    const char *method_argv[] = {path, "--method", NULL};
    const char *method_env[] = {"MP_START_METHOD=spawn", NULL};
    int method = run(path, method_argv, method_env, -1, -1);
    const char *init_argv[] = {path, "--init", NULL};
    const char *init_env[] = {"MP_HEAP_SIZE=1Q", NULL};
    int init = run(path, init_argv, init_env, -1, -1);
    unlink(path);
    rmdir(dir);
    free(path);
    expect_code(forged, MAIN_RAN);
    expect_code(method, (int)MP_START_FORK);
    expect_code(init, 0);
}

Test(env, malformed_heap_size_is_einval_never_another_size)
{
    static const char *const values[] = {
        "-1",
        " -1",
        "+1M",
        " 1M",
        "1Q",
        "1MB",
        "0x100000",
        "99999999999999999999999",
        "18446744073709551615",
        "17179869184T",
    };
    const char *argv[] = {MP_HEAP_PROBE, NULL};
    for (size_t i = 0; i < MP__ARRAY_LEN(values); i++) {
        char var[64];
        snprintf(var, sizeof(var), "MP_HEAP_SIZE=%s", values[i]);
        const char *extra[] = {var, NULL};
        /* heap_probe: 4 for an error other than a taken address. */
        int code = run(MP_HEAP_PROBE, argv, extra, -1, -1);
        cr_assert_eq(code, 4, "%s: exit code %d", var, code);
    }
}

Test(env, hostile_flags_and_method_fall_back_to_the_defaults)
{
    static char long_value[5000];
    memset(long_value, 'x', sizeof(long_value) - 1);
    char method_long[sizeof(long_value) + 32];
    snprintf(method_long, sizeof(method_long), "MP_START_METHOD=%s", long_value);
    const char *methods[] = {"MP_START_METHOD=", "MP_START_METHOD=spawnx", "MP_START_METHOD=FORK",
                             "MP_START_METHOD=\x01\x7f", method_long};
    const char *argv[] = {MP_ENV_PROBE, "--start", NULL};
    for (size_t i = 0; i < MP__ARRAY_LEN(methods); i++) {
        const char *extra[] = {methods[i],
                               "MP_DEBUG=%s%n",
                               "MP_DISABLE_PIDFD=-1",
                               "MP_DISABLE_RWF_NOSIGNAL=99999999999999999999",
                               "MP_SPAWN_FORK=garbage",
                               "MP_DISABLE_PIDFD_EXIT=",
                               NULL};
        int code = run(MP_ENV_PROBE, argv, extra, -1, -1);
        cr_assert_eq(code, 7, "%.40s: exit code %d", methods[i], code);
    }
}
