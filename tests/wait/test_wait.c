/* Tests of mp_wait over processes, connections and plain fds. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(wait, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

static int sleep_arg(const void *arg, size_t len)
{
    (void)len;
    usleep((useconds_t)(*(const double *)arg * 1e6));
    return 3;
}

static mp_process *start_sleeper(double seconds)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(
        &p, &(mp_process_opts){.target = sleep_arg, .args = &seconds, .args_len = sizeof seconds}));
    mp_assert_ok(mp_process_start(p));
    return p;
}

static void stop(mp_process *p)
{
    mp_assert_ok(mp_process_terminate(p));
    mp_process_destroy(p);
}

Test(wait, first_process_to_exit_is_ready_and_reaped)
{
    mp_process *slow = start_sleeper(30), *quick = start_sleeper(0.05);
    mp_waitable w[] = {MP_WAIT_PROCESS(slow), MP_WAIT_PROCESS(quick)};
    int n = mp_wait(w, 2, 10);
    cr_assert_eq(n, 1);
    cr_assert_not(w[0].ready);
    cr_assert(w[1].ready);
    int code;
    mp_assert_ok(mp_process_exitcode(quick, &code)); /* reaped by mp_wait */
    cr_assert_eq(code, 3);
    stop(slow);
    mp_process_destroy(quick);
}

Test(wait, timeout_returns_zero_after_the_timeout)
{
    mp_process *slow = start_sleeper(30);
    mp_waitable w[] = {MP_WAIT_PROCESS(slow)};
    double t0 = mp_test_now();
    cr_assert_eq(mp_wait(w, 1, 0.2), 0);
    double dt = mp_test_now() - t0;
    cr_assert(dt >= 0.19 && dt < 10, "mp_wait(0.2) took %.3f s", dt);
    cr_assert_not(w[0].ready);
    cr_assert_eq(mp_wait(w, 1, 0), 0);
    stop(slow);
}

Test(wait, connection_with_a_message_is_ready)
{
    mp_conn *a, *b;
    mp_assert_ok(mp_pipe(&a, &b, true));
    mp_process *slow = start_sleeper(30);
    mp_waitable w[] = {MP_WAIT_PROCESS(slow), MP_WAIT_CONN(a)};
    cr_assert_eq(mp_wait(w, 2, 0), 0);
    mp_assert_ok(mp_conn_send(b, "x", 1, 1));
    cr_assert_eq(mp_wait(w, 2, 10), 1);
    cr_assert(w[1].ready);
    cr_assert_not(w[0].ready);
    stop(slow);
    mp_conn_destroy(a);
    mp_conn_destroy(b);
}

/* Two messages arrive in one read: after the first recv the second sits in
 * the connection's own buffer, with nothing left in the kernel. mp_wait must
 * still see it. */
Test(wait, buffered_message_counts_as_ready)
{
    mp_conn *a, *b;
    mp_assert_ok(mp_pipe(&a, &b, false));
    mp_assert_ok(mp_conn_send(b, "one", 3, 1));
    mp_assert_ok(mp_conn_send(b, "two", 3, 1));
    char buf[8];
    size_t len;
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 1));
    mp_waitable w[] = {MP_WAIT_CONN(a)};
    cr_assert_eq(mp_wait(w, 1, 0), 1);
    mp_conn_destroy(a);
    mp_conn_destroy(b);
}

Test(wait, zero_timeout_still_polls)
{
    mp_conn *a, *b;
    mp_assert_ok(mp_pipe(&a, &b, false));
    mp_waitable w[] = {MP_WAIT_CONN(a)};
    cr_assert_eq(mp_wait(w, 1, 0), 0);
    mp_assert_ok(mp_conn_send(b, "x", 1, 1));
    /* Nothing is buffered in the connection: only a poll can see it. */
    cr_assert_eq(mp_wait(w, 1, 0), 1);
    cr_assert(w[0].ready);
    mp_conn_destroy(a);
    mp_conn_destroy(b);
}

Test(wait, peer_closed_counts_as_ready)
{
    mp_conn *a, *b;
    mp_assert_ok(mp_pipe(&a, &b, true));
    mp_conn_destroy(b);
    mp_waitable w[] = {MP_WAIT_CONN(a)};
    cr_assert_eq(mp_wait(w, 1, 10), 1);
    void *msg;
    size_t len;
    mp_assert_rc(mp_conn_recv(a, &msg, &len, 0), MP_EEOF);
    mp_conn_destroy(a);
}

Test(wait, plain_fd)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    mp_waitable w[] = {MP_WAIT_FD(fds[0])};
    cr_assert_eq(mp_wait(w, 1, 0.01), 0);
    cr_assert_eq(write(fds[1], "z", 1), 1);
    cr_assert_eq(mp_wait(w, 1, 10), 1);
    cr_assert(w[0].ready);
    close(fds[0]);
    close(fds[1]);
}

Test(wait, bad_input_is_rejected)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = sleep_arg}));
    mp_waitable unstarted[] = {MP_WAIT_PROCESS(p)};
    mp_assert_rc(mp_wait(unstarted, 1, 0), MP_ENOTSTARTED);
    mp_waitable nullproc[] = {MP_WAIT_PROCESS(NULL)};
    mp_assert_rc(mp_wait(nullproc, 1, 0), MP_EINVAL);
    mp_waitable badkind[] = {{.kind = (mp_wait_kind)42}};
    mp_assert_rc(mp_wait(badkind, 1, 0), MP_EINVAL);
    mp_waitable badfd[] = {MP_WAIT_FD(-1)};
    mp_assert_rc(mp_wait(badfd, 1, 0), MP_EBADF);
    mp_assert_rc(mp_wait(NULL, 1, 0), MP_EINVAL);
    mp_assert_rc(mp_wait(unstarted, 1, NAN), MP_EINVAL);
    mp_assert_rc(mp_wait(NULL, 0, MP_FOREVER), MP_EINVAL);
    cr_assert_eq(mp_wait(NULL, 0, 0.01), 0);
    mp_conn *a, *b;
    mp_assert_ok(mp_pipe(&a, &b, false));
    mp_waitable sendonly[] = {MP_WAIT_CONN(b)};
    mp_assert_rc(mp_wait(sendonly, 1, 0), MP_EBADF);
    mp_assert_ok(mp_conn_close(a));
    mp_waitable closed[] = {MP_WAIT_CONN(a)};
    mp_assert_rc(mp_wait(closed, 1, 0), MP_ECLOSED);
    mp_conn_destroy(a);
    mp_conn_destroy(b);
    mp_process_destroy(p);
}

Test(wait, process_without_pidfd)
{
    setenv("MP_DISABLE_PIDFD", "1", 1);
    mp_process *slow = start_sleeper(30), *quick = start_sleeper(0.05);
    mp_waitable w[] = {MP_WAIT_PROCESS(slow), MP_WAIT_PROCESS(quick)};
    cr_assert_eq(mp_wait(w, 2, 10), 1);
    cr_assert(w[1].ready);
    stop(slow);
    mp_process_destroy(quick);
}

/* Many items may share one descriptor (every result of a pool waits on the
 * pool's): poll gets each descriptor once, so a wait longer than the
 * process's descriptor limit is not refused. */
Test(wait, more_items_than_the_descriptor_limit_sharing_one_fd)
{
    enum { N = 2000 };
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    static mp_waitable w[N];
    for (int i = 0; i < N; i++)
        w[i] = MP_WAIT_FD(fds[0]);
    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 256;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    int empty = mp_wait(w, N, 0.05);
    cr_assert_eq(write(fds[1], "x", 1), 1);
    int full = mp_wait(w, N, 5);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    mp_assert_rc(empty, 0);
    mp_assert_rc(full, N);
    cr_assert(w[0].ready && w[N - 1].ready);
    close(fds[0]);
    close(fds[1]);
}
