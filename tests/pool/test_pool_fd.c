/* Tests of the pool's results in an event loop: mp_async_fd and mp_imap_fd
 * polled by epoll, mp_wait on results and iterators, mp_async_wait_any and
 * mp_async_wait_some. Tasks that must stay unfinished wait on an event in
 * the shared heap that the test sets, so that no test depends on timing. */
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(pool_fd, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 60);

/* in: an int64_t x; out: x * 2. ctx: an mp_event to wait for first (NULL:
 * none). x == -1 kills the worker; x < -1 fails with the code -x. */
static int gated(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                 void *ctx)
{
    (void)in_len, (void)out_cap;
    int64_t x = *(const int64_t *)in;
    if (ctx && mp_event_wait(ctx, 30) != 0)
        return 99;
    if (x == -1)
        raise(SIGKILL);
    if (x < -1)
        return (int)-x;
    *(int64_t *)out = 2 * x;
    *out_len = sizeof(int64_t);
    return 0;
}

static mp_async *submit(mp_pool *p, int64_t x, mp_event *gate)
{
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_apply_async(p, gated, gate, &x, sizeof x, sizeof x, NULL, NULL, NULL, &a));
    return a;
}

static mp_event *new_gate(void)
{
    mp_event *e = NULL;
    mp_assert_ok(mp_event_create(&e, NULL));
    return e;
}

static bool readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, 0);
    cr_assert_geq(r, 0);
    return r == 1 && (pfd.revents & POLLIN);
}

/* Waits on the epoll set ep until one of the results registered in it (the
 * event's data) is ready, making progress on each woken one as the
 * contract asks; returns that result. */
static mp_async *next_ready(int ep)
{
    for (;;) {
        struct epoll_event ev[8];
        int n = epoll_wait(ep, ev, 8, 30000);
        cr_assert_gt(n, 0, "a result fd turns readable");
        for (int i = 0; i < n; i++)
            if (mp_async_ready(ev[i].data.ptr))
                return ev[i].data.ptr;
    }
}

static void epoll_add(int ep, int fd, void *ptr)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};
    cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
}

static int64_t result_of(mp_async *a)
{
    int64_t r = 0;
    size_t len = 0;
    mp_assert_ok(mp_async_get(a, &r, sizeof r, &len, 0));
    cr_assert_eq(len, sizeof r);
    return r;
}

Test(pool_fd, the_fast_result_is_readable_first_and_the_slow_one_only_when_done)
{
    mp_pool *p = mp_test_pool(2);
    mp_event *gate = new_gate();
    mp_async *slow = submit(p, 7, gate), *fast = submit(p, 5, NULL);
    int sfd = mp_async_fd(slow), ffd = mp_async_fd(fast);
    cr_assert_geq(sfd, 0);
    cr_assert_geq(ffd, 0);
    cr_assert_neq(sfd, ffd);
    cr_assert_eq(mp_async_fd(slow), sfd, "the same fd at every call");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_add(ep, sfd, slow);
    epoll_add(ep, ffd, fast);

    cr_assert_eq(next_ready(ep), fast);
    cr_assert_eq(result_of(fast), 10);
    cr_assert(!mp_async_ready(slow));
    cr_assert(readable(ffd), "a ready result's fd stays readable");
    cr_assert(!readable(sfd), "after the pool's call, an unfinished result's fd is not readable");

    cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_DEL, ffd, NULL), 0);
    mp_async_destroy(fast);
    mp_assert_ok(mp_event_set(gate));
    cr_assert_eq(next_ready(ep), slow);
    cr_assert_eq(result_of(slow), 14);
    cr_assert(readable(sfd));
    mp_assert_ok(mp_async_get(slow, &(int64_t){0}, 8, NULL, 0));
    cr_assert(readable(sfd), "get does not consume the result");
    close(ep);
    mp_async_destroy(slow);
    mp_event_destroy(gate);
    mp_test_pool_finish(p, 30);
}

Test(pool_fd, a_result_ready_before_its_fd_was_asked_for_is_readable_at_once)
{
    mp_pool *p = mp_test_pool(1);
    mp_async *a = submit(p, 3, NULL);
    mp_assert_ok(mp_async_wait(a, 30));
    int fd = mp_async_fd(a);
    cr_assert_geq(fd, 0);
    cr_assert(readable(fd));
    cr_assert_eq(result_of(a), 6);
    mp_async_destroy(a);
    mp_test_pool_finish(p, 30);
}

Test(pool_fd, a_result_that_arrives_without_any_call_of_the_pool_wakes_the_fd)
{
    mp_pool *p = mp_test_pool(1);
    mp_event *gate = new_gate();
    mp_async *a = submit(p, 4, gate);
    int fd = mp_async_fd(a);
    cr_assert(!readable(fd));
    mp_assert_ok(mp_event_set(gate));
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 30000), 1, "the worker's end of the task wakes the fd");
    cr_assert(mp_async_ready(a));
    cr_assert_eq(result_of(a), 8);
    mp_async_destroy(a);
    mp_event_destroy(gate);
    mp_test_pool_finish(p, 30);
}

Test(pool_fd, failures_a_killed_worker_and_a_cancel_make_the_fd_readable)
{
    mp_pool *p = mp_test_pool(2);
    mp_event *gate = new_gate();
    mp_async *fail = submit(p, -5, NULL), *killed = submit(p, -1, NULL);
    mp_async *running = submit(p, 1, gate), *queued = submit(p, 2, gate);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_add(ep, mp_async_fd(fail), fail);
    epoll_add(ep, mp_async_fd(killed), killed);
    int qfd = mp_async_fd(queued);
    cr_assert_geq(qfd, 0);
    bool seen_fail = false, seen_killed = false;
    while (!seen_fail || !seen_killed) {
        mp_async *a = next_ready(ep);
        epoll_ctl(ep, EPOLL_CTL_DEL, mp_async_fd(a), NULL);
        seen_fail |= a == fail;
        seen_killed |= a == killed;
    }
    mp_task_error e;
    mp_assert_rc(mp_async_get(fail, NULL, 0, NULL, 0), MP_ETASKFAILED);
    mp_assert_ok(mp_async_error(fail, 0, &e));
    cr_assert_eq(e.task_code, 5);
    mp_assert_rc(mp_async_get(killed, NULL, 0, NULL, 0), MP_EWORKERLOST);
    mp_assert_ok(mp_async_error(killed, 0, &e));
    cr_assert_eq(e.signal, SIGKILL);

    /* Not ready (its fd may still wake for the pool's own work, the
     * killed worker's replacement for one: mp_async_ready does it). */
    cr_assert_not(mp_async_ready(queued));
    mp_assert_ok(mp_async_cancel(queued));
    cr_assert(readable(qfd), "a cancelled result is ready");
    mp_assert_ok(mp_event_set(gate));
    mp_assert_ok(mp_async_wait(running, 30));
    cr_assert_eq(result_of(running), 2);
    close(ep);
    mp_async_destroy(fail);
    mp_async_destroy(killed);
    mp_async_destroy(running);
    mp_async_destroy(queued);
    mp_event_destroy(gate);
    mp_test_pool_finish(p, 30);
}

Test(pool_fd, a_result_held_after_its_pool_is_destroyed_is_readable_and_closed_by_destroy)
{
    mp_pool *p = mp_test_pool(1);
    mp_event *gate = new_gate();
    mp_async *a = submit(p, 1, gate);
    int fd = mp_async_fd(a);
    cr_assert(!readable(fd));
    mp_pool_destroy(p);
    cr_assert(readable(fd));
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0), MP_ECLOSED);
    mp_async_destroy(a); /* the suite checks that every fd is closed */
    mp_event_destroy(gate);
}

Test(pool_fd, a_thread_pool_gives_fds_too)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 2, .threads = true}));
    mp_event *gate = new_gate();
    mp_async *slow = submit(p, 1, gate), *fast = submit(p, 2, NULL);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_add(ep, mp_async_fd(slow), slow);
    epoll_add(ep, mp_async_fd(fast), fast);
    cr_assert_eq(next_ready(ep), fast);
    cr_assert_not(mp_async_ready(slow));
    mp_assert_ok(mp_event_set(gate));
    epoll_ctl(ep, EPOLL_CTL_DEL, mp_async_fd(fast), NULL);
    cr_assert_eq(next_ready(ep), slow);
    close(ep);
    mp_async_destroy(slow);
    mp_async_destroy(fast);
    mp_event_destroy(gate);
    mp_test_pool_finish(p, 30);
}

static int sleepy(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    sleep(30);
    return 0;
}

Test(pool_fd, a_task_past_the_per_task_timeout_makes_the_fd_readable)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 1, .task_timeout = 0.2}));
    mp_async *a = NULL;
    mp_assert_ok(mp_pool_apply_async(p, sleepy, NULL, NULL, 0, 0, NULL, NULL, NULL, &a));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_add(ep, mp_async_fd(a), a);
    cr_assert_eq(next_ready(ep), a);
    mp_task_error e;
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0), MP_ETASKFAILED);
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.task_code, MP_ETIMEDOUT);
    close(ep);
    mp_async_destroy(a);
    mp_test_pool_finish(p, 30);
}

Test(pool_fd, bad_input)
{
    mp_assert_rc(mp_async_fd(NULL), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_async_fd: a is NULL");
    mp_assert_rc(mp_imap_fd(NULL), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_imap_fd: it is NULL");
    size_t ready[1], index;
    mp_assert_rc(mp_async_wait_some(NULL, 1, ready, 0), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_async_wait_some: asyncs is NULL with n 1");
    mp_assert_rc(mp_async_wait_some(NULL, 0, NULL, 0), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_async_wait_some: ready_out is NULL");
    mp_assert_rc(mp_async_wait_any(NULL, 0, 0, NULL), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_async_wait_any: index is NULL");
    mp_async *none[1] = {NULL};
    mp_assert_rc(mp_async_wait_any(none, MP_ASYNC_WAIT_MAX + 1, 0, &index), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "at most MP_ASYNC_WAIT_MAX"), "%s", mp_error_detail());
}

/* ---- iterators ----------------------------------------------------------*/

static int ident(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                 void *ctx)
{
    return gated(in, in_len, out, out_cap, out_len, *(const int64_t *)in == 0 ? ctx : NULL);
}

Test(pool_fd, an_unordered_iterator_fd_follows_the_items_until_the_end)
{
    mp_pool *p = mp_test_pool(2);
    int64_t in[50];
    for (int i = 0; i < 50; i++)
        in[i] = i == 17 ? -3 : i;
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap(
        p,
        &(mp_map_spec){.fn = ident, .in = in, .n = 50, .in_size = 8, .out_size = 8, .chunksize = 3},
        false, &it));
    int fd = mp_imap_fd(it);
    cr_assert_geq(fd, 0);
    cr_assert_eq(mp_imap_fd(it), fd);
    int64_t sum = 0;
    int got = 0, failed = 0, rc;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&pfd, 1, 30000), 1);
        int64_t v;
        size_t idx;
        rc = mp_imap_next(it, &v, &idx, NULL, 0);
        if (rc == MP_ETIMEDOUT)
            continue; /* the pool's own work, done by the call */
        if (rc == MP_EEOF)
            break;
        if (rc == 0) {
            sum += v;
            got++;
        } else {
            mp_assert_rc(rc, MP_ETASKFAILED);
            cr_assert_eq(idx, 17);
            failed++;
        }
    }
    cr_assert_eq(got, 49);
    cr_assert_eq(failed, 1);
    cr_assert_eq(sum, 2 * (49 * 50 / 2 - 17));
    cr_assert(readable(fd), "the end is readable too");
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_fd, an_ordered_iterator_fd_waits_for_the_next_item_in_order)
{
    mp_pool *p = mp_test_pool(2);
    mp_event *gate = new_gate();
    int64_t in[4] = {0, 1, 2, 3};
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap(p,
                              &(mp_map_spec){.fn = ident,
                                             .ctx = gate,
                                             .in = in,
                                             .n = 4,
                                             .in_size = 8,
                                             .out_size = 8,
                                             .chunksize = 1},
                              true, &it));
    int fd = mp_imap_fd(it);
    /* Items 1..3 end while item 0 waits: still nothing to take in order. */
    int64_t v;
    for (int k = 0; k < 3; k++) {
        mp_waitable w = MP_WAIT_IMAP(it);
        mp_assert_rc(mp_wait(&w, 1, 0.05), 0);
    }
    cr_assert(!readable(fd));
    mp_assert_rc(mp_imap_next(it, &v, NULL, NULL, 0), MP_ETIMEDOUT);
    mp_assert_ok(mp_event_set(gate));
    mp_waitable w = MP_WAIT_IMAP(it);
    mp_assert_rc(mp_wait(&w, 1, 30), 1);
    cr_assert(w.ready);
    cr_assert(readable(fd));
    for (int64_t k = 0; k < 4; k++) {
        size_t idx;
        mp_assert_ok(mp_imap_next(it, &v, &idx, NULL, 30));
        cr_assert_eq(idx, (size_t)k);
        cr_assert_eq(v, 2 * k);
    }
    mp_assert_rc(mp_imap_next(it, &v, NULL, NULL, 0), MP_EEOF);
    cr_assert(readable(fd));
    mp_imap_destroy(it);
    mp_event_destroy(gate);
    mp_test_pool_finish(p, 30);
}

/* ---- mp_wait ------------------------------------------------------------*/

Test(pool_fd, mp_wait_on_a_pipe_and_results)
{
    mp_pool *p = mp_test_pool(2);
    mp_event *gate = new_gate();
    mp_conn *r, *wr;
    mp_assert_ok(mp_pipe(&r, &wr, false));
    mp_async *slow = submit(p, 1, gate), *fast = submit(p, 2, NULL);
    mp_assert_ok(mp_async_wait(fast, 30));
    mp_waitable w[3] = {MP_WAIT_CONN(r), MP_WAIT_ASYNC(slow), MP_WAIT_ASYNC(fast)};
    mp_assert_rc(mp_wait(w, 3, 0), 1);
    cr_assert(!w[0].ready && !w[1].ready && w[2].ready);

    mp_assert_rc(mp_wait(w, 2, 0.05), 0);
    cr_assert(!w[0].ready && !w[1].ready);
    mp_assert_ok(mp_conn_send(wr, "x", 1, 5));
    mp_assert_rc(mp_wait(w, 2, 30), 1);
    cr_assert(w[0].ready && !w[1].ready);
    char c;
    size_t len;
    mp_assert_ok(mp_conn_recv_into(r, &c, 1, &len, 5));

    mp_assert_ok(mp_event_set(gate));
    mp_assert_rc(mp_wait(w, 2, 30), 1);
    cr_assert(!w[0].ready && w[1].ready);
    cr_assert_eq(result_of(slow), 2);

    mp_waitable bad[] = {MP_WAIT_ASYNC(NULL), MP_WAIT_IMAP(NULL)};
    mp_assert_rc(mp_wait(&bad[0], 1, 0), MP_EINVAL);
    mp_assert_rc(mp_wait(&bad[1], 1, 0), MP_EINVAL);
    mp_async_destroy(slow);
    mp_async_destroy(fast);
    mp_conn_destroy(r);
    mp_conn_destroy(wr);
    mp_event_destroy(gate);
    mp_test_pool_finish(p, 30);
}

/* ---- wait_any / wait_some -----------------------------------------------*/

#define MANY 24

Test(pool_fd, wait_some_gives_every_result_once_failures_and_a_killed_worker_included)
{
    mp_pool *p = mp_test_pool(3);
    mp_async *as[MANY + 2] = {NULL};
    int64_t expect_ok = 0;
    for (int i = 0; i < MANY; i++) {
        int64_t x = i == 5 ? -1 : i % 7 == 3 ? -(i + 2) : i;
        as[i + 1] = submit(p, x, NULL); /* as[0] and as[MANY + 1] stay NULL */
        if (x >= 0)
            expect_ok += 2 * x;
    }
    int handled[MANY + 2] = {0}, lost = 0, failed = 0, k;
    int64_t sum = 0;
    size_t ready[MANY + 2];
    while ((k = mp_async_wait_some(as, MANY + 2, ready, 30)) > 0) {
        for (int j = 0; j < k; j++) {
            size_t i = ready[j];
            cr_assert(i >= 1 && i <= MANY && as[i]);
            cr_assert(j == 0 || ready[j - 1] < i, "in increasing order");
            int64_t v = 0;
            int rc = mp_async_get(as[i], &v, sizeof v, NULL, 0);
            if (rc == 0)
                sum += v;
            else if (rc == MP_EWORKERLOST)
                lost++;
            else if (rc == MP_ETASKFAILED)
                failed++;
            else
                cr_assert_fail("unexpected %s", mp_err_name(rc));
            handled[i]++;
            mp_async_destroy(as[i]);
            as[i] = NULL;
        }
    }
    mp_assert_rc(k, MP_EEOF);
    for (int i = 1; i <= MANY; i++)
        cr_assert_eq(handled[i], 1);
    cr_assert_eq(lost, 1);
    cr_assert_eq(failed, 3); /* i = 3, 10, 17 */
    cr_assert_eq(sum, expect_ok);
    mp_test_pool_finish(p, 30);
}

Test(pool_fd, wait_any_takes_results_in_completion_order)
{
    mp_pool *p = mp_test_pool(2);
    mp_event *g1 = new_gate(), *g2 = new_gate();
    mp_async *as[3] = {submit(p, 1, g1), NULL, submit(p, 2, g2)};
    size_t i = 99;
    mp_assert_rc(mp_async_wait_any(as, 3, 0.05, &i), MP_ETIMEDOUT);
    cr_assert_eq(i, 99, "nothing written on a timeout");
    cr_assert(!mp_async_ready(as[0]) && !mp_async_ready(as[2]));
    mp_assert_ok(mp_event_set(g2));
    mp_assert_ok(mp_async_wait_any(as, 3, 30, &i));
    cr_assert_eq(i, 2);
    mp_assert_ok(mp_async_wait_any(as, 3, 0, &i));
    cr_assert_eq(i, 2, "a result stays ready until the caller drops it");
    mp_async_destroy(as[2]);
    as[2] = NULL;
    mp_assert_rc(mp_async_wait_any(as, 3, 0, &i), MP_ETIMEDOUT);
    mp_assert_ok(mp_event_set(g1));
    mp_assert_ok(mp_async_wait_any(as, 3, 30, &i));
    cr_assert_eq(i, 0);
    cr_assert_eq(result_of(as[0]), 2);
    mp_async_destroy(as[0]);
    as[0] = NULL;
    mp_assert_rc(mp_async_wait_any(as, 3, 30, &i), MP_EEOF);
    mp_event_destroy(g1);
    mp_event_destroy(g2);
    mp_test_pool_finish(p, 30);
}

Test(pool_fd, wait_any_and_wait_some_refuse_bad_input)
{
    mp_pool *p = mp_test_pool(1);
    mp_async *as[2] = {submit(p, 1, NULL), NULL};
    size_t i = 7, ready[2];
    mp_assert_rc(mp_async_wait_any(NULL, 1, 0, &i), MP_EINVAL);
    mp_assert_rc(mp_async_wait_any(as, 2, 0, NULL), MP_EINVAL);
    mp_assert_rc(mp_async_wait_any(as, 2, NAN, &i), MP_EINVAL);
    mp_assert_rc(mp_async_wait_any(as, MP_ASYNC_WAIT_MAX + 1, 0, &i), MP_EINVAL);
    mp_assert_rc(mp_async_wait_some(NULL, 1, ready, 0), MP_EINVAL);
    mp_assert_rc(mp_async_wait_some(as, 2, NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_async_wait_some(as, 2, ready, NAN), MP_EINVAL);
    cr_assert_eq(i, 7);
    mp_assert_rc(mp_async_wait_any(as, 0, 0, &i), MP_EEOF);
    mp_assert_rc(mp_async_wait_any(as + 1, 1, 0, &i), MP_EEOF);
    mp_assert_rc(mp_async_wait_some(NULL, 0, ready, 0), MP_EEOF);
    mp_assert_ok(mp_async_wait_any(as, 2, 30, &i));
    cr_assert_eq(i, 0);
    mp_async_destroy(as[0]);
    mp_test_pool_finish(p, 30);
}

Test(pool_fd, waiting_on_hundreds_of_results_takes_no_descriptor_per_result)
{
    enum { N = 600 };
    mp_pool *p = mp_test_pool(2);
    static mp_async *as[N];
    for (int i = 0; i < N; i++)
        as[i] = submit(p, i, NULL);
    /* Far fewer descriptors than results are left to the process. */
    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)mp_test_fd_count() + 16;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    size_t ready[N];
    int k, handled = 0;
    int64_t sum = 0;
    while ((k = mp_async_wait_some(as, N, ready, 30)) > 0) {
        for (int j = 0; j < k; j++) {
            sum += result_of(as[ready[j]]);
            mp_async_destroy(as[ready[j]]);
            as[ready[j]] = NULL;
            handled++;
        }
    }
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    mp_assert_rc(k, MP_EEOF);
    cr_assert_eq(handled, N);
    cr_assert_eq(sum, (int64_t)N * (N - 1));
    mp_test_pool_finish(p, 30);
}
