/* Start methods: what spawn and forkserver carry to the child and what they
 * refuse, the process-wide default, and the fork server's life. The whole
 * process suite also runs under each method (tests/CMakeLists.txt). */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap/heap.h"
#include "base/internal.h"
#include "mp_test.h"

/* The fork server's fds live as long as the process: start it first. */
static void start_setup(void)
{
    cr_assert_eq(mp_forkserver_ensure(), 0);
    mp_test_fd_setup();
}

TestSuite(start, .init = start_setup, .fini = mp_test_fd_check, .timeout = 60);

static const mp_start_method methods[] = {MP_START_FORK, MP_START_SPAWN, MP_START_FORKSERVER};

static int run_with(mp_start_method m, mp_process_opts o)
{
    o.start_method = m;
    mp_process *p;
    int rc = mp_process_create(&p, &o);
    if (rc == 0)
        rc = mp_process_start(p);
    if (rc == 0)
        rc = mp_process_join(p, 30);
    int code = rc;
    if (rc == 0)
        cr_assert_eq(mp_process_exitcode(p, &code), 0);
    mp_process_destroy(p);
    return code;
}

static int sum_bytes(const void *arg, size_t len)
{
    int s = 0;
    for (size_t i = 0; i < len; i++)
        s += ((const unsigned char *)arg)[i];
    return s & 0xff;
}

Test(start, argument_bytes_under_every_method)
{
    unsigned char buf[100000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 7);
    int want = sum_bytes(buf, sizeof buf);
    for (size_t i = 0; i < MP__ARRAY_LEN(methods); i++)
        cr_assert_eq(
            run_with(methods[i],
                     (mp_process_opts){.target = sum_bytes, .args = buf, .args_len = sizeof buf}),
            want, "method %s", mp_start_method_name(methods[i]));
}

static const char greeting[] = "static data";

static int check_greeting(const void *arg, size_t len)
{
    (void)len;
    return arg == (const void *)greeting && strcmp(arg, "static data") == 0 ? 0 : 1;
}

Test(start, pointer_into_static_data_is_translated)
{
    for (size_t i = 0; i < MP__ARRAY_LEN(methods); i++)
        cr_assert_eq(
            run_with(methods[i], (mp_process_opts){.target = check_greeting, .args = greeting}), 0,
            "method %s", mp_start_method_name(methods[i]));
}

static int ret_zero(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return 0;
}

static int ret_seven(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return 7;
}

static int run_zero(mp_process *self, void *user)
{
    (void)self;
    (void)user;
    return 0;
}

Test(start, stack_and_malloc_pointers_are_refused)
{
    int local = 5;
    char *heap = malloc(8);
    mp_start_method fresh[] = {MP_START_SPAWN, MP_START_FORKSERVER};
    for (size_t i = 0; i < 2; i++) {
        mp_process *p;
        mp_assert_ok(mp_process_create(
            &p, &(mp_process_opts){.target = ret_zero, .args = &local, .start_method = fresh[i]}));
        mp_error_clear();
        mp_assert_rc(mp_process_start(p), MP_EINVAL);
        mp_assert_rc(mp_process_join(p, 0), MP_ENOTSTARTED); /* nothing started */
        /* The detail names the pointer, the method and the way out. */
        const char *d = mp_error_detail();
        cr_assert_not_null(strstr(d, "mp_process_start: opts->args"), "%s", d);
        cr_assert_not_null(strstr(d, mp_start_method_name(fresh[i])), "%s", d);
        cr_assert_not_null(strstr(d, "mp_alloc"), "%s", d);
        mp_process_destroy(p);
        mp_assert_ok(mp_process_create(
            &p, &(mp_process_opts){.run = run_zero, .user = heap, .start_method = fresh[i]}));
        mp_assert_rc(mp_process_start(p), MP_EINVAL);
        cr_assert_not_null(strstr(mp_error_detail(), "opts->user"), "%s", mp_error_detail());
        mp_process_destroy(p);
    }
    cr_assert_eq(mp_active_children(NULL, 0), 0);
    free(heap);
}

Test(start, bad_options_are_named)
{
    mp_process *p = NULL;
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){.target = ret_zero, .run = run_zero}),
                 MP_EINVAL);
    cr_assert_not_null(strstr(mp_error_detail(), "exactly one of opts->target and opts->run"));
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){.target = ret_zero, .args_len = 4}),
                 MP_EINVAL);
    cr_assert_not_null(strstr(mp_error_detail(), "opts->args is NULL with opts->args_len 4"));
    mp_assert_rc(
        mp_process_create(&p, &(mp_process_opts){.target = ret_zero, .start_timeout = NAN}),
        MP_EINVAL);
    cr_assert_not_null(strstr(mp_error_detail(), "opts->start_timeout"));
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){.target = ret_zero,
                                                          .start_method = (mp_start_method)42}),
                 MP_EINVAL);
    cr_assert_not_null(strstr(mp_error_detail(), "opts->start_method is 42"));
    cr_assert_null(p);
    mp_assert_rc(mp_set_start_method((mp_start_method)9), MP_EINVAL);
    cr_assert_not_null(strstr(mp_error_detail(), "mp_set_start_method: 9"));
    /* A create that succeeds leaves the detail as it was. */
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = ret_zero}));
    cr_assert_not_null(strstr(mp_error_detail(), "mp_set_start_method: 9"));
    mp_process_destroy(p);
}

struct shared_box {
    int ready;
    int value;
};

static int read_heap_later(const void *arg, size_t len)
{
    (void)len;
    struct shared_box *box = *(struct shared_box *const *)arg;
    /* The parent fills the box only after this process started. */
    for (int i = 0; i < 3000 && !__atomic_load_n(&box->ready, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    return __atomic_load_n(&box->ready, __ATOMIC_ACQUIRE) ? box->value : 255;
}

Test(start, heap_is_shared_with_spawned_children)
{
    for (size_t i = 0; i < MP__ARRAY_LEN(methods); i++) {
        void *mem;
        mp_assert_ok(mp__heap_alloc(&mem, sizeof(struct shared_box)));
        struct shared_box *box = mem;
        mp_process *p;
        mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = read_heap_later,
                                                              .args = &box,
                                                              .args_len = sizeof box,
                                                              .start_method = methods[i]}));
        mp_assert_ok(mp_process_start(p));
        box->value = 42;
        __atomic_store_n(&box->ready, 1, __ATOMIC_RELEASE);
        mp_assert_ok(mp_process_join(p, 30));
        int code;
        mp_assert_ok(mp_process_exitcode(p, &code));
        cr_assert_eq(code, 42, "method %s", mp_start_method_name(methods[i]));
        mp_process_destroy(p);
        mp__heap_free(mem);
    }
}

static int write_fd(const void *arg, size_t len)
{
    (void)len;
    int fd = *(const int *)arg;
    return write(fd, "ok", 2) == 2 ? 0 : 1;
}

Test(start, pass_fds_under_every_method)
{
    for (size_t i = 0; i < MP__ARRAY_LEN(methods); i++) {
        int fds[2];
        cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
        cr_assert_eq(run_with(methods[i], (mp_process_opts){.target = write_fd,
                                                            .args = &fds[1],
                                                            .args_len = sizeof(int),
                                                            .pass_fds = &fds[1],
                                                            .n_pass_fds = 1}),
                     0, "method %s", mp_start_method_name(methods[i]));
        char buf[2];
        cr_assert_eq(read(fds[0], buf, 2), 2);
        close(fds[0]);
        close(fds[1]);
    }
}

Test(start, pass_fds_bad_input)
{
    int bad = -1;
    mp_process *p;
    mp_assert_rc(mp_process_create(
                     &p, &(mp_process_opts){.target = ret_zero, .pass_fds = &bad, .n_pass_fds = 1}),
                 MP_EBADF);
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){.target = ret_zero, .n_pass_fds = 1}),
                 MP_EINVAL);
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){.target = ret_zero,
                                                          .pass_fds = &bad,
                                                          .n_pass_fds = MP_PASS_FDS_MAX + 1}),
                 MP_EINVAL);
    int closed = 900;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = ret_zero,
                                                          .pass_fds = &closed,
                                                          .n_pass_fds = 1,
                                                          .start_method = MP_START_SPAWN}));
    mp_assert_rc(mp_process_start(p), MP_EBADF);
    mp_process_destroy(p);
}

static int die_by_signal(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    raise(SIGUSR1); /* not SIGSEGV: the sanitizers catch that one */
    return 0;
}

Test(start, signals_and_exit_codes_travel_back)
{
    for (size_t i = 0; i < MP__ARRAY_LEN(methods); i++) {
        cr_assert_eq(run_with(methods[i], (mp_process_opts){.target = die_by_signal}), -SIGUSR1,
                     "method %s", mp_start_method_name(methods[i]));
        int v = 201;
        cr_assert_eq(
            run_with(methods[i], (mp_process_opts){.target = sum_bytes, .args = &v, .args_len = 1}),
            201);
    }
}

static int sleep_long(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    sleep(30);
    return 0;
}

Test(start, terminate_kill_and_sentinel_under_every_method)
{
    for (size_t i = 0; i < MP__ARRAY_LEN(methods); i++) {
        mp_process *p;
        mp_assert_ok(mp_process_create(
            &p, &(mp_process_opts){.target = sleep_long, .start_method = methods[i]}));
        mp_assert_ok(mp_process_start(p));
        cr_assert(mp_process_is_alive(p));
        cr_assert_geq(mp_process_sentinel(p), 0);
        mp_assert_rc(mp_process_join(p, 0.05), MP_ETIMEDOUT);
        mp_waitable w = MP_WAIT_PROCESS(p);
        cr_assert_eq(mp_wait(&w, 1, 0.05), 0);
        mp_assert_ok(mp_process_terminate(p));
        int code;
        mp_assert_ok(mp_process_exitcode(p, &code));
        cr_assert_eq(code, -SIGTERM, "method %s", mp_start_method_name(methods[i]));
        cr_assert_not(mp_process_is_alive(p));
        mp_process_destroy(p);
    }
}

Test(start, default_method_and_environment)
{
    mp_start_method before = mp_get_start_method();
    mp_assert_rc(mp_set_start_method((mp_start_method)9), MP_EINVAL);
    mp_assert_ok(mp_set_start_method(MP_START_SPAWN));
    cr_assert_eq(mp_get_start_method(), MP_START_SPAWN);
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = ret_zero}));
    cr_assert_eq(mp_process_start_method(p), MP_START_SPAWN);
    mp_process_destroy(p);
    mp_assert_ok(mp_set_start_method(MP_START_DEFAULT)); /* back to the environment */
    setenv("MP_START_METHOD", "forkserver", 1);
    cr_assert_eq(mp_get_start_method(), MP_START_FORKSERVER);
    setenv("MP_START_METHOD", "nonsense", 1);
    cr_assert_eq(mp_get_start_method(), MP_START_FORK);
    cr_assert_str_eq(mp_start_method_name(MP_START_SPAWN), "spawn");
    cr_assert_str_eq(mp_start_method_name((mp_start_method)9), "?");
    mp_assert_ok(mp_set_start_method(before));
}

static int report_method(mp_process *self, void *user)
{
    (void)user;
    return (int)mp_process_start_method(self);
}

Test(start, child_knows_its_method)
{
    for (size_t i = 0; i < MP__ARRAY_LEN(methods); i++)
        cr_assert_eq(run_with(methods[i], (mp_process_opts){.run = report_method}),
                     (int)methods[i]);
}

/* Runs body in a forked child of the test, which gets a fork server of its
 * own (so that killing it leaves the one the other tests share), and
 * asserts that it returned 0. */
static void in_own_process(int (*body)(void))
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        alarm(50); /* a body that hangs fails here, before the suite's timeout */
        _exit(body());
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

/* This process's fork server: its only child (in a process that has
 * started nothing else), or 0. */
static pid_t own_server(void)
{
    pid_t server = 0;
    return mp_test_children(getpid(), &server, 1) == 1 ? server : 0;
}

/* Starts a forkserver process running target and returns its exit code,
 * or an error of start, join or exitcode. */
static int forkserver_run(mp_target_fn target, pid_t *pid)
{
    mp_process *p;
    int rc = mp_process_create(
        &p, &(mp_process_opts){.target = target, .start_method = MP_START_FORKSERVER});
    if (rc == 0)
        rc = mp_process_start(p);
    if (rc == 0 && pid)
        *pid = mp_process_pid(p);
    if (rc == 0)
        rc = mp_process_join(p, 20);
    int code = 0;
    if (rc == 0)
        rc = mp_process_exitcode(p, &code);
    mp_process_destroy(p);
    return rc < 0 ? rc : code;
}

static int kill_the_server(void)
{
    mp_process *p;
    if (mp_process_create(
            &p, &(mp_process_opts){.target = sleep_long, .start_method = MP_START_FORKSERVER}) ||
        mp_process_start(p))
        return 1;
    pid_t server = own_server();
    if (server <= 0 || kill(server, SIGKILL) < 0)
        return 2;
    /* Its child dies with it: killed, where the kernel keeps the code with
     * the pidfd, else lost with the server. */
    if (mp_process_join(p, 20) != 0)
        return 3;
    int code = 0, rc = mp_process_exitcode(p, &code);
    if (!(rc == 0 && code == -SIGKILL) && rc != MP_ECHILD)
        return 4;
    mp_process_destroy(p);
    /* The next start finds the server gone and starts another. */
    if (forkserver_run(ret_seven, NULL) != 7)
        return 5;
    if (own_server() == server || forkserver_run(ret_seven, NULL) != 7)
        return 6;
    return 0;
}

Test(start, forkserver_children_die_with_a_killed_server_which_is_replaced)
{
    in_own_process(kill_the_server);
}

static int kill_the_spares(void)
{
    if (mp_forkserver_ensure() != 0)
        return 1;
    pid_t server = own_server(), spares[8];
    int n = mp_test_children(server, spares, 8);
    if (server <= 0 || n < 1 || n > 8)
        return 2;
    for (int i = 0; i < n; i++)
        kill(spares[i], SIGKILL);
    /* Until they are gone from the server's children (a request written
     * before that would go to a process being killed: killed too). */
    for (int tries = 0;; tries++) {
        pid_t now[8];
        int m = mp_test_children(server, now, 8), left = 0;
        for (int i = 0; i < m && i < 8; i++)
            for (int j = 0; j < n; j++)
                left += now[i] == spares[j];
        if (left == 0)
            break;
        if (tries == 2000)
            return 5;
        usleep(5000);
    }
    /* Every start runs its own target, in a process that is none of the
     * dead spares. */
    for (int round = 0; round < 4; round++) {
        pid_t child = 0;
        if (forkserver_run(ret_seven, &child) != 7)
            return 3;
        for (int i = 0; i < n; i++)
            if (child == spares[i])
                return 4;
    }
    return 0;
}

Test(start, forkserver_spares_killed_before_use_are_skipped)
{
    in_own_process(kill_the_spares);
}

/* The lowest fd number free in process pid. */
static int lowest_free_fd(pid_t pid)
{
    char path[64];
    for (int fd = 0;; fd++) {
        snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
        if (access(path, F_OK) < 0)
            return fd;
    }
}

static int starve_the_server(void)
{
    if (mp_forkserver_ensure() != 0)
        return 1;
    pid_t server = own_server();
    struct rlimit was, none;
    if (server <= 0 || prlimit(server, RLIMIT_NOFILE, NULL, &was) < 0)
        return 2;
    /* No new fd in the server: it cannot make the next spare's socket. (Its
     * poll of its socket and children still fits under the limit.) */
    none = was;
    none.rlim_cur = (rlim_t)lowest_free_fd(server);
    if (prlimit(server, RLIMIT_NOFILE, &none, NULL) < 0)
        return 3;
    /* The two spares ready take two long starts; the third start asks for
     * a spare the server cannot make, and fails with the server's error. */
    mp_process *ps[3] = {NULL};
    for (int i = 0; i < 2; i++)
        if (mp_process_create(&ps[i], &(mp_process_opts){.target = sleep_long,
                                                         .start_method = MP_START_FORKSERVER}) ||
            mp_process_start(ps[i]))
            return 4;
    if (mp_process_create(
            &ps[2], &(mp_process_opts){.target = ret_seven, .start_method = MP_START_FORKSERVER}))
        return 5;
    if (mp_process_start(ps[2]) != MP_EMFILE)
        return 6;
    /* With room again, the next start asks again and works. */
    if (prlimit(server, RLIMIT_NOFILE, &was, NULL) < 0)
        return 7;
    if (forkserver_run(ret_seven, NULL) != 7)
        return 8;
    for (int i = 0; i < 2; i++)
        if (mp_process_kill(ps[i]) != 0)
            return 9;
    for (int i = 0; i < 3; i++)
        mp_process_destroy(ps[i]);
    return own_server() == server ? 0 : 10;
}

Test(start, forkserver_fork_failure_fails_the_start_and_is_asked_again)
{
    in_own_process(starve_the_server);
}

static int read_then_exit(const void *arg, size_t len)
{
    int fd;
    if (len != sizeof(fd))
        return 100;
    memcpy(&fd, arg, sizeof(fd));
    char c;
    ssize_t r = read(fd, &c, 1); /* end of file when the parent lets go */
    return r == 0 ? 3 : 101;
}

Test(start, forkserver_more_children_at_once_than_spares)
{
    int gate[2];
    cr_assert_eq(pipe2(gate, O_CLOEXEC), 0);
    enum { N = 7 };
    mp_process *ps[N];
    for (int i = 0; i < N; i++) {
        mp_assert_ok(
            mp_process_create(&ps[i], &(mp_process_opts){.target = read_then_exit,
                                                         .args = &gate[0],
                                                         .args_len = sizeof(gate[0]),
                                                         .pass_fds = gate,
                                                         .n_pass_fds = 1,
                                                         .start_method = MP_START_FORKSERVER}));
        mp_assert_ok(mp_process_start(ps[i]));
    }
    for (int i = 0; i < N; i++)
        cr_assert(mp_process_is_alive(ps[i]));
    close(gate[1]);
    close(gate[0]);
    for (int i = 0; i < N; i++) {
        mp_assert_ok(mp_process_join(ps[i], 20));
        int code;
        mp_assert_ok(mp_process_exitcode(ps[i], &code));
        cr_assert_eq(code, 3, "child %d", i);
        mp_process_destroy(ps[i]);
    }
}

/* A spawned image of this program stalls before the library's constructor
 * can report it ready while MP_TEST_STALL_SPAWN is set: a program whose own
 * start hangs. (This constructor runs before the library's.) */
__attribute__((constructor(101))) static void stall_spawned_image(void)
{
    if (getenv("MP_TEST_STALL_SPAWN"))
        pause();
}

/* Waits (10 s at most) until process pid is in state want ('T' stopped,
 * 'Z' dead and not reaped); false if it never is. */
static bool reaches_state(pid_t pid, int want)
{
    for (int i = 0; i < 2000; i++) {
        if (mp_test_pid_state(pid) == want)
            return true;
        usleep(5000);
    }
    return false;
}

/* Starts p, expecting MP_ETIMEDOUT after its short start timeout, with
 * nothing left behind: no fd, no child, no started process. Returns 0 or
 * the number of the check that failed. */
static int start_times_out(mp_process *p)
{
    int fds = mp_test_fd_count(), kids = mp_test_children(getpid(), NULL, 0);
    double t0 = mp_test_now();
    if (mp_process_start(p) != MP_ETIMEDOUT)
        return 1;
    if (mp_test_now() - t0 > 5) /* a hang guard: 0.3 s was asked, not 10 */
        return 2;
    if (mp_test_fd_count() != fds || mp_test_children(getpid(), NULL, 0) != kids)
        return 3;
    if (mp_process_join(p, 0) != MP_ENOTSTARTED || mp_process_pid(p) != 0)
        return 4;
    return 0;
}

static int stop_the_server(void)
{
    if (mp_forkserver_ensure() != 0)
        return 1;
    pid_t server = own_server();
    if (server <= 0 || kill(server, SIGSTOP) < 0 || !reaches_state(server, 'T'))
        return 2;
    /* The spares forked ahead take the first starts; the next one needs
     * the stopped server. */
    mp_process *ps[8];
    int n = 0, rc = 0;
    while (n < 8) {
        if (mp_process_create(&ps[n], &(mp_process_opts){.target = ret_seven,
                                                         .start_method = MP_START_FORKSERVER,
                                                         .start_timeout = 0.3}))
            return 3;
        if (mp_process_start(ps[n]) != 0)
            break;
        n++;
    }
    if (n == 8 || (rc = start_times_out(ps[n])) != 0)
        return 10 + rc;
    mp_process_destroy(ps[n]);
    /* Woken, the same server serves again. */
    if (kill(server, SIGCONT) < 0 || forkserver_run(ret_seven, NULL) != 7 || own_server() != server)
        return 4;
    for (int i = 0; i < n; i++) {
        int code = 0;
        if (mp_process_join(ps[i], 20) != 0 || mp_process_exitcode(ps[i], &code) != 0 || code != 7)
            return 5;
        mp_process_destroy(ps[i]);
    }
    return 0;
}

Test(start, forkserver_stopped_server_times_out_the_start)
{
    in_own_process(stop_the_server);
}

static int stall_a_spawn(void)
{
    mp_process *p;
    if (mp_process_create(&p, &(mp_process_opts){.target = ret_seven,
                                                 .start_method = MP_START_SPAWN,
                                                 .start_timeout = 0.3}))
        return 1;
    setenv("MP_TEST_STALL_SPAWN", "1", 1);
    int rc = start_times_out(p);
    unsetenv("MP_TEST_STALL_SPAWN");
    if (rc != 0)
        return 10 + rc;
    if (mp_test_children(getpid(), NULL, 0) != 0)
        return 2;
    /* Nothing changed: the same object starts once the image can. */
    int code = 0;
    if (mp_process_start(p) != 0 || mp_process_join(p, 20) != 0 ||
        mp_process_exitcode(p, &code) != 0 || code != 7)
        return 3;
    mp_process_destroy(p);
    return 0;
}

Test(start, spawn_image_that_never_reports_times_out_the_start)
{
    in_own_process(stall_a_spawn);
}

Test(start, start_timeout_bad_input)
{
    mp_process *p;
    mp_assert_rc(mp_process_create(&p, &(mp_process_opts){.target = ret_zero, .start_timeout = -1}),
                 MP_EINVAL);
    mp_assert_rc(
        mp_process_create(&p, &(mp_process_opts){.target = ret_zero, .start_timeout = NAN}),
        MP_EINVAL);
}

/* Writes a byte on fds[1] once SIGINT is set (ignored if arg says so, else
 * left as the child got it), then waits for end of file on fds[0]. */
static int wait_with_sigint(const void *arg, size_t len)
{
    int fds[3];
    if (len != sizeof(fds))
        return 100;
    memcpy(fds, arg, sizeof(fds));
    if (fds[2])
        signal(SIGINT, SIG_IGN);
    if (write(fds[1], "r", 1) != 1)
        return 101;
    char c;
    return read(fds[0], &c, 1) == 0 ? 0 : 102;
}

static void on_sigint(int sig)
{
    (void)sig;
}

static int start_sigint_waiter(mp_process **p, int gate, int ready, bool ignore)
{
    int args[3] = {gate, ready, ignore};
    int rc = mp_process_create(p, &(mp_process_opts){.target = wait_with_sigint,
                                                     .args = args,
                                                     .args_len = sizeof(args),
                                                     .pass_fds = args,
                                                     .n_pass_fds = 2,
                                                     .start_method = MP_START_FORKSERVER});
    return rc == 0 ? mp_process_start(*p) : rc;
}

static int interrupt_the_group(void)
{
    /* A group of our own, as a terminal's foreground job: the server and
     * the children join it. This process survives the Ctrl-C by a handler
     * (which a spawned image, the server, gets back as the default). */
    struct sigaction sa = {.sa_handler = on_sigint};
    if (setpgid(0, 0) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return 1;
    int gate[2], ready[2];
    if (mp_forkserver_ensure() != 0 || pipe2(gate, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
        return 2;
    pid_t server = own_server();
    mp_process *keeps, *dflt;
    if (server <= 0 || start_sigint_waiter(&keeps, gate[0], ready[1], true) ||
        start_sigint_waiter(&dflt, gate[0], ready[1], false))
        return 3;
    char buf[2];
    if (read(ready[0], buf, 1) != 1 || read(ready[0], buf, 1) != 1)
        return 4;
    kill(0, SIGINT); /* the Ctrl-C */
    /* The child with the default action dies of it, as under spawn. */
    int code = 0;
    if (mp_process_join(dflt, 20) != 0 || mp_process_exitcode(dflt, &code) != 0 || code != -SIGINT)
        return 5;
    /* The server had it too, and lives: the child that ignores SIGINT
     * ends when it is told to, with its own code. */
    if (mp_test_pid_state(server) == 'Z' || mp_test_pid_state(server) == 0)
        return 6;
    close(gate[1]);
    if (mp_process_join(keeps, 20) != 0 || mp_process_exitcode(keeps, &code) != 0 || code != 0)
        return 7;
    if (forkserver_run(ret_seven, NULL) != 7 || own_server() != server)
        return 8;
    mp_process_destroy(keeps);
    mp_process_destroy(dflt);
    close(gate[0]);
    close(ready[0]);
    close(ready[1]);
    return 0;
}

Test(start, forkserver_survives_sigint_and_its_children_keep_their_own)
{
    in_own_process(interrupt_the_group);
}

static int ensure_after_kill(void)
{
    if (mp_forkserver_ensure() != 0)
        return 1;
    pid_t server = own_server();
    /* Dead (its fds closed), not yet reaped by us. */
    if (server <= 0 || kill(server, SIGKILL) < 0 || !reaches_state(server, 'Z'))
        return 2;
    if (mp_forkserver_ensure() != 0)
        return 3;
    pid_t now = own_server();
    if (now <= 0 || now == server)
        return 4;
    return forkserver_run(ret_seven, NULL) == 7 ? 0 : 5;
}

Test(start, forkserver_ensure_replaces_a_killed_server_at_once)
{
    in_own_process(ensure_after_kill);
}

Test(start, pass_fds_closed_fd_is_refused_under_every_method)
{
    for (size_t i = 0; i < MP__ARRAY_LEN(methods); i++) {
        int closed = dup(0);
        cr_assert_geq(closed, 0);
        close(closed);
        int kids = mp_test_children(getpid(), NULL, 0);
        mp_process *p;
        mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = ret_seven,
                                                              .pass_fds = &closed,
                                                              .n_pass_fds = 1,
                                                              .start_method = methods[i]}));
        mp_assert_rc(mp_process_start(p), MP_EBADF);
        mp_assert_rc(mp_process_join(p, 0), MP_ENOTSTARTED);
        cr_assert_eq(mp_test_children(getpid(), NULL, 0), kids, "method %s",
                     mp_start_method_name(methods[i]));
        /* Nothing changed: with the fd open, the same object starts. */
        cr_assert_eq(dup2(1, closed), closed);
        mp_assert_ok(mp_process_start(p));
        mp_assert_ok(mp_process_join(p, 20));
        int code;
        mp_assert_ok(mp_process_exitcode(p, &code));
        cr_assert_eq(code, 7);
        mp_process_destroy(p);
        close(closed);
    }
}

static int kill_server_under_children(void)
{
    enum { N = 3 };
    mp_process *ps[N];
    for (int i = 0; i < N; i++)
        if (mp_process_create(&ps[i], &(mp_process_opts){.target = sleep_long,
                                                         .start_method = MP_START_FORKSERVER}) ||
            mp_process_start(ps[i]))
            return 1;
    pid_t server = own_server();
    if (server <= 0 || kill(server, SIGKILL) < 0)
        return 2;
    /* They die with it, killed: so says every one, whoever reaps it. */
    for (int i = 0; i < N; i++) {
        int code = 0;
        if (mp_process_join(ps[i], 20) != 0)
            return 3;
        int rc = mp_process_exitcode(ps[i], &code);
        if (rc != 0)
            return 10 - rc; /* 10 + errno */
        if (code != -SIGKILL)
            return 4;
        mp_process_destroy(ps[i]);
    }
    return 0;
}

Test(start, forkserver_children_of_a_killed_server_are_reported_killed)
{
    in_own_process(kill_server_under_children);
}
