/* Tests of processes: life cycle, exit codes, failure paths, no orphans,
 * no zombies, no fd leaks. Each test runs in its own Criterion process. */
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(process, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

static int ret_arg(const void *arg, size_t len)
{
    return len == sizeof(int) ? *(const int *)arg : 99;
}

static int run_noop(mp_process *self, void *user)
{
    (void)self;
    (void)user;
    return 0;
}

static int sleep_arg(const void *arg, size_t len)
{
    (void)len;
    usleep((useconds_t)(*(const double *)arg * 1e6));
    return 0;
}

static int sleep_forever(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    for (;;)
        pause();
    return 0;
}

static mp_process *start_sleeper(double seconds)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(
        &p, &(mp_process_opts){.target = sleep_arg, .args = &seconds, .args_len = sizeof seconds}));
    mp_assert_ok(mp_process_start(p));
    return p;
}

static int run_exitcode(mp_process_opts opts)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &opts));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp_process_join(p, 10));
    int code = 12345;
    mp_assert_ok(mp_process_exitcode(p, &code));
    mp_process_destroy(p);
    return code;
}

Test(process, create_rejects_bad_options)
{
    mp_process *p = (mp_process *)0x1;
    mp_assert_rc(mp_process_create(&p, NULL), MP_EINVAL);
    mp_assert_rc(mp_process_create(NULL, &(mp_process_opts){.target = ret_arg}), MP_EINVAL);
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){0}), MP_EINVAL);
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){.target = ret_arg, .run = run_noop}),
                 MP_EINVAL);
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){.target = ret_arg, .args_len = 4}),
                 MP_EINVAL);
    mp_assert_rc(
        mp_process_create(&p, &(mp_process_opts){.target = ret_arg, .terminate_grace = -1}),
        MP_EINVAL);
    mp_assert_rc(
        mp_process_create(&p, &(mp_process_opts){.target = ret_arg, .terminate_grace = NAN}),
        MP_EINVAL);
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){.target = ret_arg,
                                                          .start_method = (mp_start_method)77}),
                 MP_EINVAL);
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){.target = ret_arg, .name = longname}),
                 MP_EINVAL);
    cr_assert_eq(p, (mp_process *)0x1, "a failed create must not touch *out");
}

Test(process, exit_code_is_target_return_value)
{
    int v = 7;
    cr_assert_eq(run_exitcode((mp_process_opts){.target = ret_arg, .args = &v, .args_len = 4}), 7);
    v = 0;
    cr_assert_eq(run_exitcode((mp_process_opts){.target = ret_arg, .args = &v, .args_len = 4}), 0);
    v = 300; /* exit codes are 8 bits, like the kernel's */
    cr_assert_eq(run_exitcode((mp_process_opts){.target = ret_arg, .args = &v, .args_len = 4}),
                 300 & 0xff);
}

static int check_bytes(const void *arg, size_t len)
{
    return len == 6 && memcmp(arg, "hello", 6) == 0 ? 0 : 1;
}

Test(process, argument_bytes_are_copied_at_create)
{
    char buf[6] = "hello";
    mp_process *p;
    mp_assert_ok(mp_process_create(
        &p, &(mp_process_opts){.target = check_bytes, .args = buf, .args_len = 6}));
    memcpy(buf, "XXXXX", 6); /* the child must still see the original */
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp_process_join(p, 10));
    int code;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0);
    mp_process_destroy(p);
}

static int check_pointer(const void *arg, size_t len)
{
    const int *v = arg;
    return len == 0 && v[0] == 11 && v[1] == 22 ? 0 : 1;
}

Test(process, pointer_argument_with_fork)
{
    static int data[2] = {11, 22};
    cr_assert_eq(run_exitcode((mp_process_opts){.target = check_pointer, .args = data}), 0);
}

static int run_self(mp_process *self, void *user)
{
    const char *want = user;
    if (self != mp_current_process() || mp_process_pid(self) != getpid())
        return 1;
    if (strcmp(mp_process_name(self), want) != 0)
        return 2;
    mp_process *parent = mp_parent_process();
    /* Under forkserver the parent is the process that asked for the child,
     * not the server that forked it, like Python. */
    bool by_server = mp_process_start_method(self) == MP_START_FORKSERVER;
    if (!parent || (!by_server && mp_process_pid(parent) != getppid()) ||
        !mp_process_is_alive(parent))
        return 3;
    if (strcmp(mp_process_name(parent), "MainProcess") != 0)
        return 4;
    int code;
    if (mp_process_exitcode(self, &code) != MP_ERUNNING)
        return 5;
    return 0;
}

Test(process, run_callback_sees_itself_and_its_parent)
{
    /* Static: the same string in a spawned image. */
    static char name[] = "worker-A";
    cr_assert_eq(run_exitcode((mp_process_opts){.run = run_self, .user = name, .name = name}), 0);
}

Test(process, current_and_parent_in_main)
{
    mp_process *me = mp_current_process();
    cr_assert_not_null(me);
    cr_assert_str_eq(mp_process_name(me), "MainProcess");
    cr_assert_eq(mp_process_pid(me), getpid());
    cr_assert(mp_process_is_alive(me));
    cr_assert_null(mp_parent_process());
}

Test(process, default_names_count_like_python)
{
    mp_process *a, *b;
    mp_assert_ok(mp_process_create(&a, &(mp_process_opts){.target = ret_arg}));
    mp_assert_ok(mp_process_create(&b, &(mp_process_opts){.target = ret_arg}));
    int na = 0, nb = 0;
    cr_assert_eq(sscanf(mp_process_name(a), "Process-%d", &na), 1);
    cr_assert_eq(sscanf(mp_process_name(b), "Process-%d", &nb), 1);
    cr_assert_eq(nb, na + 1);
    cr_assert_eq(mp_process_pid(a), 0);
    cr_assert_eq(mp_process_sentinel(a), -1);
    mp_process_destroy(a);
    mp_process_destroy(b);
}

static int nested_name(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_process *g;
    if (mp_process_create(&g, &(mp_process_opts){.target = ret_arg}) < 0)
        return 1;
    char want[300];
    snprintf(want, sizeof want, "%s:1", mp_process_name(mp_current_process()));
    int ok = strcmp(mp_process_name(g), want) == 0;
    /* A child starts with no children of its own. */
    ok = ok && mp_active_children(NULL, 0) == 0;
    mp_process_destroy(g);
    return ok ? 0 : 2;
}

Test(process, child_names_its_children_like_python)
{
    mp_process *keep = start_sleeper(5); /* the parent has a child the grandchild must not see */
    cr_assert_eq(run_exitcode((mp_process_opts){.target = nested_name}), 0);
    mp_assert_ok(mp_process_terminate(keep));
    mp_process_destroy(keep);
}

static int crash(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    signal(SIGSEGV, SIG_DFL); /* sanitizers catch SIGSEGV; we want the real crash */
    raise(SIGSEGV);
    return 0;
}

Test(process, crash_gives_negative_signal)
{
    cr_assert_eq(run_exitcode((mp_process_opts){.target = crash}), -SIGSEGV);
}

Test(process, exitcode_states)
{
    mp_process *p;
    int code;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = sleep_forever}));
    mp_assert_rc(mp_process_exitcode(p, &code), MP_ENOTSTARTED);
    mp_assert_rc(mp_process_join(p, 0), MP_ENOTSTARTED);
    mp_assert_rc(mp_process_terminate(p), MP_ENOTSTARTED);
    cr_assert_not(mp_process_is_alive(p));
    mp_assert_ok(mp_process_start(p));
    mp_assert_rc(mp_process_start(p), MP_ESTARTED);
    cr_assert(mp_process_is_alive(p));
    mp_assert_rc(mp_process_exitcode(p, &code), MP_ERUNNING);
    mp_assert_rc(mp_process_close(p), MP_EBUSY);
    mp_assert_ok(mp_process_kill(p));
    cr_assert_not(mp_process_is_alive(p));
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, -SIGKILL);
    mp_assert_ok(mp_process_join(p, MP_FOREVER)); /* joining again is fine */
    mp_assert_ok(mp_process_close(p));
    mp_assert_ok(mp_process_close(p));
    mp_assert_rc(mp_process_join(p, 0), MP_ECLOSED);
    mp_assert_ok(mp_process_exitcode(p, &code)); /* still known after close */
    cr_assert_eq(code, -SIGKILL);
    mp_assert_rc(mp_process_start(p), MP_ECLOSED);
    mp_process_destroy(p);
}

Test(process, join_timeout_waits_then_reports)
{
    mp_process *p = start_sleeper(30);
    double t0 = mp_test_now();
    mp_assert_rc(mp_process_join(p, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp_process_join(p, 0.2), MP_ETIMEDOUT);
    double dt = mp_test_now() - t0;
    cr_assert(dt >= 0.19 && dt < 10, "join(0.2) took %.3f s", dt);
    mp_assert_rc(mp_process_join(p, NAN), MP_EINVAL);
    mp_assert_ok(mp_process_terminate(p));
    int code;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, -SIGTERM);
    mp_process_destroy(p);
}

static int ignore_term(const void *arg, size_t len)
{
    const int *fd = arg;
    (void)len;
    signal(SIGTERM, SIG_IGN);
    (void)!write(fd[1], "r", 1); /* ready: the handler is in place */
    for (;;)
        pause();
    return 0;
}

Test(process, terminate_is_bounded_when_sigterm_is_ignored)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = ignore_term,
                                                          .args = fds,
                                                          .args_len = sizeof fds,
                                                          .terminate_grace = 0.3,
                                                          .pass_fds = &fds[1],
                                                          .n_pass_fds = 1}));
    mp_assert_ok(mp_process_start(p));
    char c;
    cr_assert_eq(read(fds[0], &c, 1), 1);
    double t0 = mp_test_now();
    mp_assert_ok(mp_process_terminate(p));
    double dt = mp_test_now() - t0;
    cr_assert(dt >= 0.29 && dt < 10, "terminate took %.3f s", dt);
    int code;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, -SIGKILL);
    mp_process_destroy(p);
    close(fds[0]);
    close(fds[1]);
}

/* 20 children that ignore SIGTERM and 5 that die of it, stopped together
 * with a grace of 2 s: the suite's timeout (30 s) is below the 40 s that
 * one grace per child would take. (A timeout of this test's own would
 * do too, but Criterion's runner then leaks a timer under ASan when the
 * test runs beside another.) */
#define N_IGNORE 20
#define N_DIE    5
Test(process, terminate_all_stops_many_within_one_grace)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    mp_process *all[N_IGNORE + N_DIE];
    for (int i = 0; i < N_IGNORE; i++) {
        mp_assert_ok(mp_process_create(&all[i], &(mp_process_opts){.target = ignore_term,
                                                                   .args = fds,
                                                                   .args_len = sizeof fds,
                                                                   .pass_fds = &fds[1],
                                                                   .n_pass_fds = 1}));
        mp_assert_ok(mp_process_start(all[i]));
    }
    for (int i = N_IGNORE; i < N_IGNORE + N_DIE; i++)
        all[i] = start_sleeper(60);
    for (int i = 0; i < N_IGNORE; i++) { /* every handler in place */
        char c;
        cr_assert_eq(read(fds[0], &c, 1), 1);
    }
    mp_assert_rc(mp_terminate_all(all, N_IGNORE + N_DIE, 2.0), N_IGNORE);
    for (int i = 0; i < N_IGNORE + N_DIE; i++) {
        int code = 0;
        mp_assert_ok(mp_process_exitcode(all[i], &code)); /* reaped: no MP_ERUNNING */
        cr_assert_eq(code, i < N_IGNORE ? -SIGKILL : -SIGTERM, "child %d: %d", i, code);
        cr_assert_not(mp_process_is_alive(all[i]));
    }
    /* Again on children all reaped: nothing to send, nobody killed. */
    mp_assert_rc(mp_terminate_all(all, N_IGNORE + N_DIE, 1.0), 0);
    for (int i = 0; i < N_IGNORE + N_DIE; i++)
        mp_process_destroy(all[i]);
    close(fds[0]);
    close(fds[1]);
}

Test(process, terminate_all_refuses_a_bad_list_and_sends_nothing)
{
    mp_process *run = start_sleeper(60), *fresh;
    mp_assert_ok(mp_process_create(&fresh, &(mp_process_opts){.target = ret_arg}));
    mp_assert_rc(mp_terminate_all(NULL, 1, 1.0), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_terminate_all: procs is NULL with n 1");
    mp_assert_rc(mp_terminate_all((mp_process *[]){run, NULL}, 2, 1.0), MP_EINVAL);
    mp_assert_rc(mp_terminate_all((mp_process *[]){run}, 1, -1.0), MP_EINVAL);
    mp_assert_rc(mp_terminate_all((mp_process *[]){run}, 1, NAN), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "mp_terminate_all: grace is"), "%s", mp_error_detail());
    mp_assert_rc(mp_terminate_all((mp_process *[]){run, fresh}, 2, 1.0), MP_ENOTSTARTED);
    mp_assert_rc(mp_terminate_all((mp_process *[]){mp_current_process()}, 1, 1.0), MP_EPERM);
    cr_assert(mp_process_is_alive(run), "a refused list sends nothing");
    mp_assert_rc(mp_terminate_all(NULL, 0, 1.0), 0);
    /* grace 0: SIGKILL right after SIGTERM unless already dead. */
    mp_process *twice[] = {run, run};
    int rc = mp_terminate_all(twice, 2, 0);
    cr_assert(rc == 0 || rc == 1, "a repeated entry counts once: %d", rc);
    cr_assert_not(mp_process_is_alive(run));
    mp_process_destroy(run);
    mp_process_destroy(fresh);
}

Test(process, send_signal)
{
    mp_process *p = start_sleeper(30);
    mp_assert_rc(mp_process_send_signal(p, -1), MP_EINVAL);
    mp_assert_rc(mp_process_send_signal(p, 100000), MP_EINVAL);
    mp_assert_ok(mp_process_send_signal(p, 0));
    mp_assert_ok(mp_process_send_signal(p, SIGUSR1));
    mp_assert_ok(mp_process_join(p, 10));
    int code;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, -SIGUSR1);
    mp_assert_ok(mp_process_send_signal(p, SIGKILL)); /* reaped: nothing sent, no error */
    mp_process_destroy(p);
}

Test(process, no_zombie_after_join_or_destroy)
{
    mp_process *p = start_sleeper(0);
    pid_t pid = mp_process_pid(p);
    cr_assert_gt(pid, 0);
    mp_assert_ok(mp_process_join(p, 10));
    cr_assert_eq(mp_test_pid_state(pid), 0, "pid %d still exists after join", pid);
    mp_process_destroy(p);

    p = start_sleeper(30);
    pid = mp_process_pid(p);
    mp_process_destroy(p); /* running: destroy terminates and reaps */
    cr_assert_eq(mp_test_pid_state(pid), 0, "pid %d still exists after destroy", pid);
}

Test(process, sentinel_turns_readable_at_exit)
{
    mp_process *p = start_sleeper(0.1);
    int fd = mp_process_sentinel(p);
    cr_assert_geq(fd, 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 10000), 1);
    mp_assert_ok(mp_process_join(p, 10));
    mp_process_destroy(p);
}

Test(process, active_children_reaps_and_counts)
{
    mp_process *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = start_sleeper(i == 0 ? 0 : 30);
    mp_process *out[8];
    double t0 = mp_test_now();
    int n;
    while ((n = mp_active_children(out, 8)) == 3 && mp_test_now() - t0 < 10)
        usleep(10000);
    cr_assert_eq(n, 2);
    cr_assert((out[0] == p[1] && out[1] == p[2]) || (out[0] == p[2] && out[1] == p[1]));
    cr_assert_eq(mp_active_children(out, 1), 2, "the count may exceed cap");
    mp_assert_rc(mp_active_children(NULL, 1), MP_EINVAL);
    for (int i = 0; i < 3; i++) {
        mp_assert_ok(mp_process_terminate(p[i]));
        mp_process_destroy(p[i]);
    }
    cr_assert_eq(mp_active_children(NULL, 0), 0);
}

struct joiner {
    mp_process *p;
    int rc, code;
};

static void *join_thread(void *arg)
{
    struct joiner *j = arg;
    j->rc = mp_process_join(j->p, 20);
    if (j->rc == 0)
        j->rc = mp_process_exitcode(j->p, &j->code);
    return NULL;
}

Test(process, joined_from_two_threads)
{
    int v = 42;
    mp_process *p;
    mp_assert_ok(mp_process_create(
        &p, &(mp_process_opts){.target = ret_arg, .args = &v, .args_len = sizeof v}));
    mp_assert_ok(mp_process_start(p));
    struct joiner j[2] = {{.p = p}, {.p = p}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, join_thread, &j[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        mp_assert_ok(j[i].rc);
        cr_assert_eq(j[i].code, 42);
    }
    mp_process_destroy(p);
}

static int join_sibling(const void *arg, size_t len)
{
    (void)len;
    mp_process *sibling = *(mp_process *const *)arg;
    int code;
    if (mp_process_join(sibling, 0) != MP_EPERM || mp_process_terminate(sibling) != MP_EPERM)
        return 1;
    if (mp_process_exitcode(sibling, &code) != MP_EPERM)
        return 2;
    return 0;
}

Test(process, only_the_parent_may_join)
{
    MP_TEST_FORK_ONLY(); /* the sibling's object travels as a pointer */
    mp_process *s = start_sleeper(30);
    cr_assert_eq(
        run_exitcode((mp_process_opts){.target = join_sibling, .args = &s, .args_len = sizeof s}),
        0);
    mp_assert_ok(mp_process_terminate(s));
    mp_process_destroy(s);
}

/* Read one pid from a pipe, with a deadline. */
static pid_t read_pid(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 10000), 1);
    pid_t pid = 0;
    cr_assert_eq(read(fd, &pid, sizeof pid), (ssize_t)sizeof pid);
    return pid;
}

static bool gone_within(pid_t pid, double seconds)
{
    double t0 = mp_test_now();
    while (mp_test_now() - t0 < seconds) {
        int s = mp_test_pid_state(pid);
        if (s == 0 || s == 'Z')
            return true;
        usleep(10000);
    }
    return false;
}

/* Writes its pid to the test (fd[0]) and a byte to its parent (fd[1]). */
static int report_and_sleep(const void *arg, size_t len)
{
    const int *fd = arg;
    (void)len;
    pid_t me = getpid();
    (void)!write(fd[0], &me, sizeof me);
    (void)!write(fd[1], "r", 1);
    for (;;)
        pause();
    return 0;
}

/* An intermediate process (plain fork) starts a library child, reports its
 * pid, then dies in the way given; the child must not outlive it. */
static void orphan_case(bool daemon, bool killed)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t mid = fork();
    cr_assert_geq(mid, 0);
    if (mid == 0) {
        int ready[2];
        if (pipe(ready) < 0)
            _exit(3);
        int args[2] = {fds[1], ready[1]};
        mp_process *c;
        if (mp_process_create(&c, &(mp_process_opts){.target = report_and_sleep,
                                                     .args = args,
                                                     .args_len = sizeof args,
                                                     .daemon = daemon,
                                                     .terminate_grace = 0.5}) ||
            mp_process_start(c))
            _exit(3);
        char r;
        if (read(ready[0], &r, 1) != 1)
            _exit(4);
        if (killed)
            raise(SIGKILL);
        exit(0); /* runs the library's atexit handler: the daemon is terminated */
    }
    close(fds[1]);
    pid_t child = read_pid(fds[0]);
    int status;
    cr_assert_eq(waitpid(mid, &status, 0), mid);
    cr_assert(gone_within(child, 10), "child %d outlived its parent", child);
    close(fds[0]);
}

Test(process, daemon_is_terminated_at_parent_exit)
{
    orphan_case(true, false);
}

Test(process, child_dies_with_killed_parent)
{
    orphan_case(false, true);
}

static int write_after_delay(const void *arg, size_t len)
{
    (void)len;
    usleep(200000);
    return write(*(const int *)arg, "done", 4) == 4 ? 0 : 1;
}

Test(process, parent_exit_waits_for_non_daemon_children)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t mid = fork();
    if (mid == 0) {
        mp_process *c;
        if (mp_process_create(&c, &(mp_process_opts){.target = write_after_delay,
                                                     .args = &fds[1],
                                                     .args_len = sizeof(int)}) ||
            mp_process_start(c))
            _exit(3);
        exit(0); /* returns only after the child finished, like Python */
    }
    close(fds[1]);
    int status;
    cr_assert_eq(waitpid(mid, &status, 0), mid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char buf[8] = "";
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 0), 1, "the child had not written before its parent exited");
    cr_assert_eq(read(fds[0], buf, sizeof buf), 4);
    close(fds[0]);
}

Test(process, cpu_count_respects_affinity)
{
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int n = mp_cpu_count();
    cr_assert(n >= 1 && n <= CPU_COUNT(&set), "mp_cpu_count() = %d, affinity %d", n,
              CPU_COUNT(&set));
    pid_t pid = fork();
    if (pid == 0) {
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0)
            _exit(2);
        _exit(mp_cpu_count() == 1 ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The same life cycle with the fallback sentinel (no pidfd). */
Test(process, fallback_without_pidfd)
{
    /* A fork server needs pidfds: without them its start is MP_ENOSYS. */
    if (mp_get_start_method() == MP_START_FORKSERVER)
        cr_skip_test("forkserver needs pidfds");
    setenv("MP_DISABLE_PIDFD", "1", 1);
    int v = 5;
    cr_assert_eq(run_exitcode((mp_process_opts){.target = ret_arg, .args = &v, .args_len = 4}), 5);
    mp_process *p = start_sleeper(30);
    int fd = mp_process_sentinel(p);
    cr_assert_geq(fd, 0);
    mp_assert_rc(mp_process_join(p, 0.1), MP_ETIMEDOUT);
    mp_assert_ok(mp_process_terminate(p));
    int code;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, -SIGTERM);
    mp_process_destroy(p);
}

Test(process, null_arguments_are_rejected)
{
    int code;
    mp_assert_rc(mp_process_start(NULL), MP_EINVAL);
    mp_assert_rc(mp_process_join(NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_process_exitcode(NULL, &code), MP_EINVAL);
    mp_assert_rc(mp_process_terminate(NULL), MP_EINVAL);
    mp_assert_rc(mp_process_kill(NULL), MP_EINVAL);
    mp_assert_rc(mp_process_close(NULL), MP_EINVAL);
    cr_assert_not(mp_process_is_alive(NULL));
    mp_process_destroy(NULL);
    mp_assert_rc(mp_process_join(mp_current_process(), 0), MP_EPERM);
}
