/* Start methods: what spawn and forkserver carry to the child and what they
 * refuse, the process-wide default, and the fork server's life. The whole
 * process suite also runs under each method (tests/CMakeLists.txt). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap.h"
#include "internal.h"
#include "mp_test.h"

/* The fork server's fd lives as long as the process: start it first. */
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
        mp_assert_rc(mp_process_start(p), MP_EINVAL);
        mp_assert_rc(mp_process_join(p, 0), MP_ENOTSTARTED); /* nothing started */
        mp_process_destroy(p);
        mp_assert_ok(mp_process_create(
            &p, &(mp_process_opts){.run = run_zero, .user = heap, .start_method = fresh[i]}));
        mp_assert_rc(mp_process_start(p), MP_EINVAL);
        mp_process_destroy(p);
    }
    cr_assert_eq(mp_active_children(NULL, 0), 0);
    free(heap);
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

Test(start, forkserver_children_die_when_the_server_is_killed)
{
    /* In a child of the test, so that the server killed is not the one the
     * other tests share. */
    pid_t pid = fork();
    if (pid == 0) {
        mp_process *p;
        if (mp_process_create(&p, &(mp_process_opts){.target = sleep_long,
                                                     .start_method = MP_START_FORKSERVER}) ||
            mp_process_start(p))
            _exit(1);
        pid_t child = mp_process_pid(p);
        /* The server is the child's parent. */
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)child);
        FILE *f = fopen(path, "r");
        if (!f || !fgets(buf, sizeof buf, f))
            _exit(2);
        fclose(f);
        int server = 0;
        sscanf(strrchr(buf, ')') + 2, "%*c %d", &server);
        kill(server, SIGKILL);
        /* Its child dies with it; the exit code is lost with the server. */
        if (mp_process_join(p, 20) != 0)
            _exit(3);
        int code;
        int rc = mp_process_exitcode(p, &code);
        _exit(rc == 0 || rc == MP_ECHILD ? 0 : 4);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}
