/* Tests of mp_popen: exec failures reported precisely, stdio wiring, fd
 * hygiene, communicate without deadlock, timeouts, signals, no zombies. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(popen, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Number of children of this process (any thread), from /proc. */
static int child_count(void)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int pid;
        while (fscanf(f, "%d", &pid) == 1)
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Runs argv with the given options, communicates, returns stdout. */
static char *run_out(const char *const *argv, mp_popen_opts o, int *code)
{
    mp_popen *p;
    o.out = MP_PIPE;
    mp_assert_ok(mp_popen_create(&p, argv, &o));
    char *out = NULL;
    size_t len = 0;
    mp_assert_ok(mp_popen_communicate(p, NULL, 0, &out, &len, NULL, NULL, 10));
    cr_assert_eq(strlen(out), len);
    int c = 12345;
    mp_assert_ok(mp_popen_returncode(p, &c));
    if (code)
        *code = c;
    mp_popen_destroy(p);
    return out;
}

static void assert_out(const char *const *argv, mp_popen_opts o, const char *expected)
{
    int code;
    char *out = run_out(argv, o, &code);
    cr_assert_str_eq(out, expected);
    cr_assert_eq(code, 0);
    free(out);
}

Test(popen, create_rejects_bad_input)
{
    mp_popen *p = (mp_popen *)0x1;
    mp_assert_rc(mp_popen_create(NULL, ARGV("true"), NULL), MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, (const char *const[]){NULL}, NULL), MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.in = {.kind = 99}}),
                 MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.in = MP_TO_STDOUT}),
                 MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.out = MP_TO_STDOUT}),
                 MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.out = MP_USE_PATH(NULL, 0)}),
                 MP_EINVAL);
    mp_assert_rc(
        mp_popen_create(&p, ARGV("true"),
                        &(mp_popen_opts){.out = {.kind = MP_IO_PATH, .path = "x", .mode = 9}}),
        MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.out = MP_USE_FD(-1)}),
                 MP_EBADF);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.out = MP_USE_FD(987)}),
                 MP_EBADF);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"),
                                 &(mp_popen_opts){.pass_fds = (int[]){1}, .n_pass_fds = 1}),
                 MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.n_pass_fds = 1}), MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"),
                                 &(mp_popen_opts){.pass_fds = (int[]){987}, .n_pass_fds = 1}),
                 MP_EBADF);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"),
                                 &(mp_popen_opts){.new_session = true, .process_group = true}),
                 MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.lifetime = -1}), MP_EINVAL);
    mp_assert_rc(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.lifetime = 0.0 / 0.0}),
                 MP_EINVAL);
    cr_assert_eq(p, (mp_popen *)0x1, "a failed create must not touch *out");
    cr_assert_eq(child_count(), 0);
}

static void assert_exec_error(const char *const *argv, mp_popen_opts o, int rc, mp_spawn_step step,
                              const char *path)
{
    mp_exec_error e;
    memset(&e, 0x55, sizeof(e));
    o.exec_error = &e;
    mp_popen *p = NULL;
    mp_assert_rc(mp_popen_create(&p, argv, &o), rc);
    cr_assert_null(p);
    cr_assert_eq(e.step, step, "step %s, expected %s", mp_spawn_step_name(e.step),
                 mp_spawn_step_name(step));
    mp_assert_rc(e.error, rc);
    cr_assert_str_eq(e.path, path);
    cr_assert_eq(child_count(), 0, "a failed spawn leaves no child");
}

Test(popen, missing_program_is_enoent_at_exec)
{
    assert_exec_error(ARGV("mp-no-such-program"), (mp_popen_opts){0}, MP_ENOENT, MP_STEP_EXEC,
                      "mp-no-such-program");
    assert_exec_error(ARGV("/nonexistent/prog"), (mp_popen_opts){0}, MP_ENOENT, MP_STEP_EXEC,
                      "/nonexistent/prog");
    assert_exec_error(ARGV("ls"), (mp_popen_opts){.executable = "/nonexistent/ls"}, MP_ENOENT,
                      MP_STEP_EXEC, "/nonexistent/ls");
    /* The PATH searched is the child's. */
    assert_exec_error(ARGV("ls"), (mp_popen_opts){.env = (char *[]){"PATH=/nonexistent", NULL}},
                      MP_ENOENT, MP_STEP_EXEC, "ls");
}

Test(popen, non_executable_file_is_eacces)
{
    char path[] = "/tmp/mp_test_noexec_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    chmod(path, 0644);
    assert_exec_error(ARGV(path), (mp_popen_opts){0}, MP_EACCES, MP_STEP_EXEC, path);
    unlink(path);
}

Test(popen, bad_cwd_is_reported_at_chdir)
{
    assert_exec_error(ARGV("true"), (mp_popen_opts){.cwd = "/nonexistent/dir"}, MP_ENOENT,
                      MP_STEP_CHDIR, "/nonexistent/dir");
    assert_exec_error(ARGV("true"), (mp_popen_opts){.cwd = "/etc/passwd"}, MP_ENOTDIR,
                      MP_STEP_CHDIR, "/etc/passwd");
}

Test(popen, bad_stdio_path_is_reported_at_open)
{
    assert_exec_error(ARGV("true"), (mp_popen_opts){.out = MP_USE_PATH("/nonexistent/out", 0)},
                      MP_ENOENT, MP_STEP_OPEN, "/nonexistent/out");
    assert_exec_error(ARGV("true"), (mp_popen_opts){.in = MP_USE_PATH("/nonexistent/in", 0)},
                      MP_ENOENT, MP_STEP_OPEN, "/nonexistent/in");
}

Test(popen, fork_path_reports_the_same_errors)
{
    setenv("MP_SPAWN_FORK", "1", 1);
    assert_exec_error(ARGV("mp-no-such-program"), (mp_popen_opts){0}, MP_ENOENT, MP_STEP_EXEC,
                      "mp-no-such-program");
    assert_exec_error(ARGV("true"), (mp_popen_opts){.cwd = "/nonexistent/dir"}, MP_ENOENT,
                      MP_STEP_CHDIR, "/nonexistent/dir");
    assert_out(ARGV("echo", "via fork"), (mp_popen_opts){0}, "via fork\n");
}

Test(popen, communicate_round_trip_and_return_codes)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("cat"), &(mp_popen_opts){.in = MP_PIPE, .out = MP_PIPE}));
    cr_assert_geq(mp_popen_fd(p, 0), 0);
    cr_assert_geq(mp_popen_fd(p, 1), 0);
    cr_assert_eq(mp_popen_fd(p, 2), -1);
    char *out, *err = (char *)0x1;
    size_t len, elen = 9;
    mp_assert_ok(mp_popen_communicate(p, "one\ntwo\n", 8, &out, &len, &err, &elen, 10));
    cr_assert_eq(len, 8);
    cr_assert_str_eq(out, "one\ntwo\n");
    cr_assert_null(err, "stderr was not a pipe");
    cr_assert_eq(elen, 0);
    free(out);
    int code = -1;
    mp_assert_ok(mp_popen_poll(p, &code));
    cr_assert_eq(code, 0);
    mp_popen_destroy(p);

    int c;
    free(run_out(ARGV("sh", "-c", "exit 7"), (mp_popen_opts){0}, &c));
    cr_assert_eq(c, 7);
    free(run_out(ARGV("sh", "-c", "kill -TERM $$"), (mp_popen_opts){0}, &c));
    cr_assert_eq(c, -SIGTERM);
}

Test(popen, communicate_rejects_input_without_a_pipe)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("true"), NULL));
    mp_assert_rc(mp_popen_communicate(p, "x", 1, NULL, NULL, NULL, NULL, 10), MP_EINVAL);
    mp_assert_rc(mp_popen_communicate(p, NULL, 1, NULL, NULL, NULL, NULL, 10), MP_EINVAL);
    mp_assert_rc(mp_popen_communicate(p, NULL, 0, NULL, NULL, NULL, NULL, 0.0 / 0.0), MP_EINVAL);
    mp_assert_ok(mp_popen_communicate(p, NULL, 0, NULL, NULL, NULL, NULL, 10));
    mp_popen_destroy(p);
}

/* The classic deadlock: the child writes 10 MiB to stdout and 10 MiB to
 * stderr while it reads 10 MiB of input. */
Test(popen, ten_mib_both_ways_without_deadlock)
{
    size_t n = (size_t)10 << 20;
    char *input = malloc(n);
    for (size_t i = 0; i < n; i++)
        input[i] = (char)('a' + i % 26);
    mp_popen *p;
    mp_assert_ok(mp_popen_create(
        &p, ARGV("{ head -c 10485760 /dev/zero >&2 & cat; wait; }", "sh"),
        &(mp_popen_opts){.shell = true, .in = MP_PIPE, .out = MP_PIPE, .err = MP_PIPE}));
    char *out, *err;
    size_t olen, elen;
    mp_assert_ok(mp_popen_communicate(p, input, n, &out, &olen, &err, &elen, 25));
    cr_assert_eq(olen, n);
    cr_assert(memcmp(out, input, n) == 0);
    cr_assert_eq(elen, n);
    int code;
    mp_assert_ok(mp_popen_returncode(p, &code));
    cr_assert_eq(code, 0);
    free(out);
    free(err);
    free(input);
    mp_popen_destroy(p);
}

Test(popen, timeout_returns_partial_output_and_leaves_the_child)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("echo start; exec sleep 30"),
                                 &(mp_popen_opts){.shell = true, .out = MP_PIPE}));
    char *out;
    size_t len;
    /* Until "start" has arrived, a short timeout may see nothing yet. */
    for (;;) {
        mp_assert_rc(mp_popen_communicate(p, NULL, 0, &out, &len, NULL, NULL, 0.2), MP_ETIMEDOUT);
        if (len > 0)
            break;
        free(out);
    }
    cr_assert_str_eq(out, "start\n");
    free(out);
    mp_assert_rc(mp_popen_poll(p, NULL), MP_ERUNNING);
    mp_assert_rc(mp_popen_returncode(p, NULL), MP_ERUNNING);
    mp_assert_ok(mp_popen_kill(p));
    /* The next communicate returns the whole output, once. */
    mp_assert_ok(mp_popen_communicate(p, NULL, 0, &out, &len, NULL, NULL, 10));
    cr_assert_str_eq(out, "start\n");
    free(out);
    int code;
    mp_assert_ok(mp_popen_returncode(p, &code));
    cr_assert_eq(code, -SIGKILL);
    mp_popen_destroy(p);
}

static void assert_dies(int pid)
{
    double until = mp_test_now() + 10;
    int st;
    while ((st = mp_test_pid_state(pid)) != 0 && st != 'Z' && mp_test_now() < until)
        usleep(10000);
    cr_assert(st == 0 || st == 'Z', "process %d still alive (state %c)", pid, st);
}

/* A grandchild holds the stdout pipe: the timeout still returns, and with
 * kill_on_timeout the whole session dies. */
Test(popen, timeout_with_grandchild_kills_the_group)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(
        &p, ARGV("sleep 30 & echo $!; wait"),
        &(mp_popen_opts){
            .shell = true, .out = MP_PIPE, .new_session = true, .kill_on_timeout = true}));
    char buf[32] = {0};
    ssize_t r = mp_popen_read(p, 1, buf, sizeof(buf) - 1, 10);
    cr_assert_gt(r, 0);
    int grandchild = atoi(buf);
    cr_assert_gt(grandchild, 0);
    char *out;
    size_t len;
    mp_assert_rc(mp_popen_communicate(p, NULL, 0, &out, &len, NULL, NULL, 0.3), MP_ETIMEDOUT);
    free(out);
    int code;
    mp_assert_ok(mp_popen_returncode(p, &code));
    cr_assert_eq(code, -SIGKILL);
    assert_dies(grandchild);
    mp_popen_destroy(p);
}

/* Without the option the child that exited is reaped later, and the
 * grandchild that holds the pipe does not stretch the timeout forever. */
Test(popen, timeout_with_grandchild_and_no_kill)
{
    mp_popen *p;
    mp_assert_ok(
        mp_popen_create(&p, ARGV("sleep 30 & echo $!"),
                        &(mp_popen_opts){.shell = true, .out = MP_PIPE, .process_group = true}));
    char *out;
    size_t len;
    mp_assert_rc(mp_popen_communicate(p, NULL, 0, &out, &len, NULL, NULL, 0.5), MP_ETIMEDOUT);
    int grandchild = atoi(out);
    cr_assert_gt(grandchild, 0);
    free(out);
    mp_assert_ok(mp_popen_wait(p, 10, NULL));
    mp_assert_ok(mp_popen_signal_group(p, SIGKILL));
    assert_dies(grandchild);
    mp_popen_destroy(p);
}

static bool fd_listed(const char *list, int fd)
{
    char want[16];
    snprintf(want, sizeof(want), "%d", fd);
    for (const char *s = list; *s;) {
        size_t n = strcspn(s, "\n");
        if (n == strlen(want) && strncmp(s, want, n) == 0)
            return true;
        s += n + (s[n] == '\n');
    }
    return false;
}

/* The child sees 0, 1, 2, pass_fds and nothing else (ls's own directory fd
 * is the lowest free one, 3). */
Test(popen, child_sees_only_stdio_and_pass_fds)
{
    int keep = fcntl(0, F_DUPFD, 60);   /* inheritable, passed */
    int leaked = fcntl(0, F_DUPFD, 61); /* inheritable, not passed */
    cr_assert(keep == 60 && leaked == 61);
    char *out = run_out(ARGV("ls", "-1", "/proc/self/fd"),
                        (mp_popen_opts){.pass_fds = &keep, .n_pass_fds = 1}, NULL);
    for (const char *s = out; *s; s += strcspn(s, "\n") + 1) {
        int fd = atoi(s);
        cr_assert(fd <= 3 || fd == 60, "child has fd %d open:\n%s", fd, out);
    }
    cr_assert(fd_listed(out, 60), "pass_fds entry missing:\n%s", out);
    cr_assert_not(fd_listed(out, 61));
    free(out);
    out = run_out(ARGV("ls", "-1", "/proc/self/fd"), (mp_popen_opts){.inherit_fds = true}, NULL);
    cr_assert(fd_listed(out, 61), "inherit_fds keeps inheritable fds:\n%s", out);
    free(out);
    close(keep);
    close(leaked);
}

/* Python's pass_fds: each entry stays open in the child at its number,
 * close-on-exec or not; a bad list starts nothing. */
Test(popen, pass_fds_keeps_each_entry_and_refuses_bad_lists)
{
    int a = fcntl(0, F_DUPFD_CLOEXEC, 70); /* close-on-exec here: passed all the same */
    int b = fcntl(0, F_DUPFD, 71);
    int other = fcntl(0, F_DUPFD_CLOEXEC, 72);
    cr_assert(a == 70 && b == 71 && other == 72);
    char *out = run_out(ARGV("ls", "-1", "/proc/self/fd"),
                        (mp_popen_opts){.pass_fds = (int[]){71, 70}, .n_pass_fds = 2}, NULL);
    cr_assert(fd_listed(out, 70) && fd_listed(out, 71), "pass_fds missing:\n%s", out);
    cr_assert_not(fd_listed(out, 72));
    free(out);
    mp_popen *p = NULL;
    const int *bad[] = {(int[]){70, -1}, (int[]){70, 71, 70}, (int[]){71, 71}};
    const size_t nbad[] = {2, 3, 2};
    for (size_t i = 0; i < 3; i++)
        mp_assert_rc(mp_popen_create(&p, ARGV("true"),
                                     &(mp_popen_opts){.pass_fds = bad[i], .n_pass_fds = nbad[i]}),
                     MP_EINVAL);
    cr_assert_null(p);
    /* Nothing was started: this process has no child at all. */
    siginfo_t si;
    cr_assert_eq(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT), -1);
    cr_assert_eq(errno, ECHILD);
    close(a);
    close(b);
    close(other);
}

Test(popen, stdio_kinds)
{
    assert_out(ARGV("cat"), (mp_popen_opts){.in = MP_DEVNULL}, "");
    assert_out(ARGV("echo a; echo b >&2"), (mp_popen_opts){.shell = true, .err = MP_TO_STDOUT},
               "a\nb\n");
    char path[] = "/tmp/mp_test_out_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    assert_out(ARGV("echo", "one"), (mp_popen_opts){.err = MP_USE_PATH(path, 0)}, "one\n");
    assert_out(ARGV("echo one >&2"),
               (mp_popen_opts){.shell = true, .err = MP_USE_PATH(path, MP_PATH_WRITE)}, "");
    assert_out(ARGV("echo two >&2"),
               (mp_popen_opts){.shell = true, .err = MP_USE_PATH(path, MP_PATH_APPEND)}, "");
    assert_out(ARGV("cat"), (mp_popen_opts){.in = MP_USE_PATH(path, 0)}, "one\ntwo\n");
    assert_out(ARGV("cat"), (mp_popen_opts){.in = MP_USE_FD(fd)}, "one\ntwo\n");
    close(fd);
    unlink(path);
}

/* Sources that are 0, 1 or 2 themselves must not overwrite each other. */
Test(popen, stdio_fds_below_three_are_shuffled_safely)
{
    int saved0 = dup(0);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], "in\n", 3), 3);
    close(fds[1]);
    cr_assert_eq(dup2(fds[0], 0), 0);
    close(fds[0]);
    /* The child's stdout is the parent's stdin slot's pipe? No: its stdin
     * is fd 0 given explicitly, its stdout a pipe. */
    assert_out(ARGV("cat"), (mp_popen_opts){.in = MP_USE_FD(0)}, "in\n");
    dup2(saved0, 0);
    close(saved0);
}

Test(popen, environment_replace_and_add)
{
    assert_out(ARGV("/usr/bin/env"), (mp_popen_opts){.env = (char *[]){"A=1", "B=2", NULL}},
               "A=1\nB=2\n");
    assert_out(ARGV("/usr/bin/env"),
               (mp_popen_opts){.env = (char *[]){"A=1", "B=2", NULL},
                               .env_add = (char *[]){"B=3", "C=4", NULL}},
               "A=1\nB=3\nC=4\n");
    assert_out(ARGV("echo $MP_TEST_ADDED"),
               (mp_popen_opts){.shell = true, .env_add = (char *[]){"MP_TEST_ADDED=yes", NULL}},
               "yes\n");
}

Test(popen, shell_executable_cwd_umask)
{
    assert_out(ARGV("echo $0 $1", "zero", "one"), (mp_popen_opts){.shell = true}, "zero one\n");
    assert_out(ARGV("fakename", "-c", "echo $0"), (mp_popen_opts){.executable = "/bin/sh"},
               "fakename\n");
    assert_out(ARGV("pwd"), (mp_popen_opts){.cwd = "/"}, "/\n");
    assert_out(ARGV("umask"), (mp_popen_opts){.shell = true, .set_umask = true, .umask = 027},
               "0027\n");
}

/* /proc/self/stat fields 5 and 6: process group and session. */
Test(popen, new_session_and_process_group)
{
    const char *const *argv = ARGV("exec cut -d' ' -f5,6 /proc/self/stat");
    mp_popen *p;
    mp_assert_ok(mp_popen_create(
        &p, argv, &(mp_popen_opts){.shell = true, .out = MP_PIPE, .new_session = true}));
    char *out;
    mp_assert_ok(mp_popen_communicate(p, NULL, 0, &out, NULL, NULL, NULL, 10));
    char want[64];
    snprintf(want, sizeof(want), "%d %d\n", (int)mp_popen_pid(p), (int)mp_popen_pid(p));
    cr_assert_str_eq(out, want);
    free(out);
    mp_popen_destroy(p);
    mp_assert_ok(mp_popen_create(
        &p, argv, &(mp_popen_opts){.shell = true, .out = MP_PIPE, .process_group = true}));
    mp_assert_ok(mp_popen_communicate(p, NULL, 0, &out, NULL, NULL, NULL, 10));
    snprintf(want, sizeof(want), "%d %d\n", (int)mp_popen_pid(p), (int)getsid(0));
    cr_assert_str_eq(out, want);
    free(out);
    mp_popen_destroy(p);
}

Test(popen, wait_poll_signals)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("sleep", "30"), NULL));
    cr_assert_gt(mp_popen_pid(p), 0);
    mp_assert_rc(mp_popen_wait(p, 0.1, NULL), MP_ETIMEDOUT);
    mp_assert_rc(mp_popen_poll(p, NULL), MP_ERUNNING);
    mp_assert_rc(mp_popen_send_signal(p, -1), MP_EINVAL);
    mp_assert_rc(mp_popen_send_signal(p, 999), MP_EINVAL);
    mp_assert_rc(mp_popen_signal_group(p, SIGTERM), MP_EINVAL);
    mp_waitable w = MP_WAIT_FD(mp_popen_sentinel(p));
    mp_assert_rc(mp_wait(&w, 1, 0), 0);
    mp_assert_ok(mp_popen_terminate(p));
    mp_assert_rc(mp_wait(&w, 1, 10), 1);
    int code;
    mp_assert_ok(mp_popen_wait(p, 10, &code));
    cr_assert_eq(code, -SIGTERM);
    mp_assert_ok(mp_popen_kill(p)); /* after the exit: nothing to do */
    mp_popen_destroy(p);
}

Test(popen, lifetime_kills_the_child)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("sleep", "30"), &(mp_popen_opts){.lifetime = 0.2}));
    int code;
    mp_assert_ok(mp_popen_wait(p, MP_FOREVER, &code));
    cr_assert_eq(code, -SIGKILL);
    cr_assert(mp_popen_lifetime_expired(p));
    mp_popen_destroy(p);
}

Test(popen, read_write_streams)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("cat"), &(mp_popen_opts){.in = MP_PIPE, .out = MP_PIPE}));
    mp_assert_rc((int)mp_popen_read(p, 2, (char[4]){0}, 4, 0), MP_EBADF);
    mp_assert_rc((int)mp_popen_read(p, 0, (char[4]){0}, 4, 0), MP_EINVAL);
    mp_assert_rc((int)mp_popen_read(p, 1, (char[4]){0}, 4, 0), MP_ETIMEDOUT);
    cr_assert_eq(mp_popen_write(p, "hello", 5, 10), 5);
    mp_assert_ok(mp_popen_close_stdin(p));
    mp_assert_ok(mp_popen_close_stdin(p));
    mp_assert_rc((int)mp_popen_write(p, "x", 1, 10), MP_EBADF);
    char buf[16];
    size_t got = 0;
    ssize_t r;
    while ((r = mp_popen_read(p, 1, buf + got, sizeof(buf) - got, 10)) > 0)
        got += (size_t)r;
    cr_assert_eq(r, 0);
    cr_assert_eq(got, 5);
    cr_assert(memcmp(buf, "hello", 5) == 0);
    mp_assert_ok(mp_popen_wait(p, 10, NULL));
    mp_popen_destroy(p);
}

Test(popen, write_to_a_child_that_closed_stdin_is_epipe)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.in = MP_PIPE}));
    mp_assert_ok(mp_popen_wait(p, 10, NULL));
    mp_assert_rc((int)mp_popen_write(p, "x", 1, 10), MP_EPIPE);
    /* communicate ignores it, like Python. */
    mp_assert_ok(mp_popen_communicate(p, "x", 1, NULL, NULL, NULL, NULL, 10));
    mp_popen_destroy(p);
}

Test(popen, destroy_kills_a_running_child)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("sleep", "30"), NULL));
    int pid = mp_popen_pid(p);
    mp_popen_destroy(p);
    cr_assert_eq(mp_test_pid_state(pid), 0);
    mp_popen_destroy(NULL);
}

Test(popen, three_hundred_spawns_leave_no_zombie_and_no_fd)
{
    for (int i = 0; i < 300; i++) {
        mp_popen *p;
        mp_assert_ok(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.out = MP_PIPE}));
        if (i % 2 == 0) {
            mp_assert_ok(mp_popen_communicate(p, NULL, 0, NULL, NULL, NULL, NULL, 10));
        } else {
            int code;
            mp_assert_ok(mp_popen_wait(p, 10, &code));
            cr_assert_eq(code, 0);
        }
        mp_popen_destroy(p);
    }
    cr_assert_eq(child_count(), 0);
}

/* The caller's mask reaches the child (all signals are blocked only across
 * the spawn), and ignored signals stay ignored, as with posix_spawn. */
Test(popen, signal_mask_and_ignored_signals_are_inherited)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_SETMASK, &set, &old);
    signal(SIGUSR2, SIG_IGN);
    assert_out(ARGV("grep", "SigBlk", "/proc/self/status"), (mp_popen_opts){0},
               "SigBlk:\t0000000000000200\n");
    assert_out(ARGV("kill -USR2 $$; echo alive"), (mp_popen_opts){.shell = true}, "alive\n");
    signal(SIGUSR2, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

Test(popen, lifetime_ends_a_communicate)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("sleep", "30"),
                                 &(mp_popen_opts){.out = MP_PIPE, .lifetime = 0.3}));
    char *out;
    mp_assert_rc(mp_popen_communicate(p, NULL, 0, &out, NULL, NULL, NULL, MP_FOREVER),
                 MP_ETIMEDOUT);
    cr_assert_str_eq(out, "");
    free(out);
    cr_assert(mp_popen_lifetime_expired(p));
    int code;
    mp_assert_ok(mp_popen_returncode(p, &code));
    cr_assert_eq(code, -SIGKILL);
    mp_popen_destroy(p);
}

/* ---- die_with_parent ---------------------------------------------------- */

typedef enum orphan_via { VIA_POPEN, VIA_RUN, VIA_PIPELINE } orphan_via;

/* The intermediate process: through the given API, starts a shell that
 * writes its pid to w and becomes `sleep 100`, then stays until killed. */
static _Noreturn void orphan_parent_main(orphan_via via, bool die, int w)
{
    const char *const *argv = ARGV("/bin/sh", "-c", "echo $$; exec sleep 100");
    mp_io out = MP_USE_FD(w);
    int rc;
    if (via == VIA_POPEN) {
        mp_popen *p;
        rc = mp_popen_create(&p, argv, &(mp_popen_opts){.out = out, .die_with_parent = die});
        while (rc == 0)
            pause();
    } else if (via == VIA_RUN) {
        mp_run_result r;
        rc = mp_run(argv, &(mp_run_opts){.popen = {.out = out, .die_with_parent = die}}, &r);
    } else {
        mp_pipeline *pl;
        const char *const *stages[] = {argv};
        rc = mp_pipeline_create(&pl, stages, 1,
                                &(mp_pipeline_opts){.out = out, .die_with_parent = die});
        if (rc == 0)
            rc = mp_pipeline_wait(pl, MP_FOREVER);
    }
    _exit(rc == 0 ? 0 : 1);
}

/* Forks the intermediate process (*parent) and returns the pid of the
 * program it started. */
static pid_t orphan_start(orphan_via via, bool die, pid_t *parent)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t m = fork();
    cr_assert(m >= 0);
    if (m == 0) {
        close(p[0]);
        orphan_parent_main(via, die, p[1]);
    }
    close(p[1]);
    char line[32];
    size_t n = 0;
    for (; n < sizeof(line) - 1; n++) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        cr_assert_eq(poll(&pf, 1, 10000), 1, "no pid from the intermediate process");
        cr_assert_eq(read(p[0], line + n, 1), 1, "the intermediate process could not spawn");
        if (line[n] == '\n')
            break;
    }
    line[n] = '\0';
    close(p[0]);
    *parent = m;
    pid_t kid = (pid_t)atoi(line);
    cr_assert(kid > 0, "bad pid line \"%s\"", line);
    return kid;
}

/* Whether the process ends within timeout seconds: a hang guard, not a
 * measure. By pidfd, else by /proc (gone or a zombie). */
static bool pid_ends_within(int pidfd, pid_t pid, double timeout)
{
    if (pidfd >= 0) {
        struct pollfd pf = {.fd = pidfd, .events = POLLIN};
        int r;
        while ((r = poll(&pf, 1, (int)(timeout * 1000))) < 0 && errno == EINTR)
            ;
        return r == 1;
    }
    double end = mp_test_now() + timeout;
    for (;;) {
        int st = mp_test_pid_state(pid);
        if (st == 0 || st == 'Z')
            return true;
        if (mp_test_now() > end)
            return false;
        usleep(10000);
    }
}

/* Starts `sleep 100` from an intermediate process, SIGKILLs that process,
 * and checks whether the sleep dies with it. */
static void orphan_check(orphan_via via, bool die)
{
    pid_t m;
    pid_t kid = orphan_start(via, die, &m);
    /* The sleep is m's unreaped child while m lives: its pid is stable. */
    int pidfd = (int)syscall(SYS_pidfd_open, kid, 0);
    cr_assert(pidfd >= 0 || errno == ENOSYS, "pidfd_open: %s", strerror(errno));
    cr_assert_eq(kill(m, SIGKILL), 0);
    int st;
    cr_assert_eq(waitpid(m, &st, 0), m);
    if (die) {
        cr_assert(pid_ends_within(pidfd, kid, 10), "the child of a killed parent runs on");
    } else {
        /* Linux sends a parent-death signal while the parent exits, before
         * it can be reaped: had one been armed, it would be on its way. */
        cr_assert_not(pid_ends_within(pidfd, kid, 0.3), "the child died with its parent");
        cr_assert_eq(kill(kid, SIGKILL), 0);
        cr_assert(pid_ends_within(pidfd, kid, 10));
    }
    if (pidfd >= 0)
        close(pidfd);
}

Test(popen, die_with_parent_child_dies_with_its_killed_parent)
{
    orphan_check(VIA_POPEN, true);
}

Test(popen, die_with_parent_on_the_fork_path)
{
    setenv("MP_SPAWN_FORK", "1", 1);
    orphan_check(VIA_POPEN, true);
}

Test(popen, die_with_parent_reaches_mp_run)
{
    orphan_check(VIA_RUN, true);
}

Test(popen, die_with_parent_reaches_pipeline_stages)
{
    orphan_check(VIA_PIPELINE, true);
}

/* The default, as with Python's Popen: the program outlives its parent. */
Test(popen, by_default_a_child_outlives_its_killed_parent)
{
    orphan_check(VIA_POPEN, false);
}

Test(popen, by_default_a_child_outlives_its_killed_parent_fork_path)
{
    setenv("MP_SPAWN_FORK", "1", 1);
    orphan_check(VIA_POPEN, false);
}

/* An MP_EINVAL says, in mp_error_detail(), which argument is wrong. */
Test(popen, einval_names_the_argument)
{
    mp_popen *p;
    mp_assert_rc(mp_popen_create(&p, ARGV("true"),
                                 &(mp_popen_opts){.pass_fds = (int[]){5, 5}, .n_pass_fds = 2}),
                 MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "opts->pass_fds[1] repeats pass_fds[0] (5)");
    mp_assert_rc(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.in = MP_TO_STDOUT}),
                 MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "opts->in is MP_TO_STDOUT (only err may be)");
    mp_assert_rc(mp_popen_wait(NULL, 0, NULL), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "p is NULL");
    mp_assert_ok(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.out = MP_PIPE}));
    mp_assert_rc((int)mp_popen_read(p, 3, NULL, 0, 0), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_popen_read: which is 3 (1: stdout, 2: stderr)");
    mp_assert_rc(mp_popen_communicate(p, "x", 1, NULL, NULL, NULL, NULL, 10), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(),
                     "mp_popen_communicate: input given but stdin is not a pipe");
    mp_assert_rc(mp_popen_wait(p, 0.0 / 0.0, NULL), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_popen_wait: timeout is NaN");
    mp_assert_ok(mp_popen_wait(p, 10, NULL));
    mp_popen_destroy(p);
    mp_run_result res;
    mp_assert_rc(
        mp_run(ARGV("true"), &(mp_run_opts){.capture = true, .popen.out = MP_DEVNULL}, &res),
        MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(),
                     "opts->capture with opts->popen.out set (leave it inherit)");
    mp_run_result_free(&res);
}
