/* The manager's queues, locks, events and values through the public API,
 * written once for every backend (like test_manager_objects.c): unset or
 * "local" MP_TEST_MANAGER_URL for the shared heap, "redis" for a
 * redis-server the suite starts itself (ctest runs both: test_manager_sync
 * and test_manager_sync_redis). Children open their own manager from the
 * URL, so the suite also runs under the spawn and forkserver methods. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis_server.h"

static mp_test_redis srv;
static char url[256];

static void msync_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(msync, .init = mp_test_fd_setup, .fini = msync_fini, .timeout = 60);

static bool on_redis(void)
{
    const char *u = getenv("MP_TEST_MANAGER_URL");
    return u && strcmp(u, "redis") == 0;
}

/* Opens the suite's manager; query: Redis URL options (e.g. "lease=1"),
 * ignored by the local backend. The URL is kept for children. */
static mp_manager *open_manager_q(const char *query)
{
    const char *u = getenv("MP_TEST_MANAGER_URL");
    if (on_redis()) {
        cr_assert(mp_test_redis_start(&srv, "pw") == 0, "cannot start redis-server: %s", srv.error);
        snprintf(url, sizeof(url), "%s%s%s", srv.url, query ? "?" : "", query ? query : "");
    } else {
        snprintf(url, sizeof(url), "%s", u && *u ? u : "local");
    }
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, url));
    return m;
}

static mp_manager *open_manager(void)
{
    return open_manager_q(NULL);
}

static mp_process *start_child(mp_target_fn fn)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(
        &p, &(mp_process_opts){.target = fn, .args = url, .args_len = strlen(url) + 1}));
    mp_assert_ok(mp_process_start(p));
    return p;
}

static void join_ok(mp_process *p)
{
    int code = -1;
    mp_assert_ok(mp_process_join(p, 30));
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0, "child exit code %d", code);
    mp_process_destroy(p);
}

/* ---- queue ---------------------------------------------------------------*/

/* Releases a queue handle and takes the name away with its data (a named
 * local queue keeps its eventfd open until destroyed that way). */
static void drop_queue(mp_manager *m, const char *name, mp_queue *q)
{
    mp_queue_destroy(q);
    mp_assert_ok(mp_manager_remove(m, name, MP_MANAGER_DESTROY));
}

static void get_str(mp_queue *q, const char *want)
{
    void *p;
    size_t n;
    mp_assert_ok(mp_queue_get(q, &p, &n, 5));
    cr_assert(n == strlen(want) && memcmp(p, want, n) == 0, "got %.*s", (int)n, (char *)p);
    free(p);
}

Test(msync, queue_put_get_maxsize_and_timeouts)
{
    mp_manager *m = open_manager();
    mp_queue *q, *q2;
    mp_assert_rc(mp_manager_queue(m, "q", &(mp_queue_opts){.maxsize = 2}, &q), 1);
    /* Options only matter at creation: a second opener shares the queue. */
    mp_assert_rc(mp_manager_queue(m, "q", NULL, &q2), 0);
    mp_assert_rc(mp_queue_empty(q), 1);
    mp_assert_rc(mp_queue_full(q), 0);
    mp_assert_ok(mp_queue_put(q, "a", 1, 0));
    mp_assert_ok(mp_queue_put(q2, "bb", 2, 1));
    mp_assert_rc(mp_queue_put_nowait(q, "c", 1), MP_EFULL);
    double t0 = mp_test_now();
    mp_assert_rc(mp_queue_put(q, "c", 1, 0.05), MP_EFULL);
    cr_assert_geq(mp_test_now() - t0, 0.05);
    mp_assert_rc(mp_queue_full(q2), 1);
    size_t n;
    mp_assert_ok(mp_queue_qsize(q, &n));
    cr_assert_eq(n, 2);
    get_str(q2, "a");
    /* A short buffer: the size needed, and the message stays first. */
    char buf[8];
    mp_assert_rc(mp_queue_get_into(q, buf, 1, &n, 1), MP_EMSGSIZE);
    cr_assert_eq(n, 2);
    mp_assert_ok(mp_queue_get_into(q, buf, sizeof(buf), &n, 1));
    cr_assert(n == 2 && memcmp(buf, "bb", 2) == 0);
    void *p;
    mp_assert_rc(mp_queue_get_nowait(q, &p, &n), MP_EEMPTY);
    t0 = mp_test_now();
    mp_assert_rc(mp_queue_get(q, &p, &n, 0.05), MP_EEMPTY);
    cr_assert_geq(mp_test_now() - t0, 0.05);
    /* put_many puts what fits. */
    mp_queue_msg msgs[3] = {{"x", 1}, {"", 0}, {"z", 1}};
    mp_assert_rc(mp_queue_put_many(q, msgs, 3, 1), 2);
    get_str(q, "x");
    get_str(q, "");
    mp_assert_rc(mp_queue_put(q, NULL, 1, 0), MP_EINVAL);
    mp_assert_rc(mp_queue_get(q, NULL, &n, 0), MP_EINVAL);
    mp_queue_destroy(q2);
    drop_queue(m, "q", q);
    mp_manager_close(m);
}

/* Child: doubles every number of "jobs" into "results" until "stop". */
static int queue_worker(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_queue *jobs, *results;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_queue(m, "jobs", NULL, &jobs) < 0 ||
        mp_manager_queue(m, "results", NULL, &results) < 0)
        return 1;
    for (;;) {
        char buf[32];
        size_t n;
        if (mp_queue_get_into(jobs, buf, sizeof(buf) - 1, &n, 20) < 0)
            return 2;
        buf[n] = '\0';
        if (strcmp(buf, "stop") == 0)
            break;
        int len2 = snprintf(buf, sizeof(buf), "%d", 2 * atoi(buf));
        if (mp_queue_put(results, buf, (size_t)len2, 20) < 0)
            return 3;
    }
    mp_queue_destroy(jobs);
    mp_queue_destroy(results);
    mp_manager_close(m);
    return 0;
}

Test(msync, queue_get_many_takes_what_fits)
{
    mp_manager *m = open_manager();
    mp_queue *q;
    mp_assert_rc(mp_manager_queue(m, "GM", NULL, &q), 1);
    const char *msgs[] = {"aa", "bbb", "c", "dddddddd", "ee"};
    for (int i = 0; i < 5; i++)
        mp_assert_ok(mp_queue_put(q, msgs[i], strlen(msgs[i]), 1));
    char buf[16];
    size_t lens[8];
    mp_assert_rc(mp_queue_get_many(q, buf, sizeof(buf), lens, 0, 1), 0);
    mp_assert_rc(mp_queue_get_many(q, buf, sizeof(buf), NULL, 2, 1), MP_EINVAL);
    mp_assert_rc(mp_queue_get_many(q, NULL, 4, lens, 2, 1), MP_EINVAL);
    /* The first alone does not fit: nothing taken, its size told. */
    mp_assert_rc(mp_queue_get_many(q, buf, 1, lens, 3, 1), MP_EMSGSIZE);
    cr_assert_eq(lens[0], 2);
    /* Room for 6 bytes: "aa", "bbb", "c"; "dddddddd" stays first. */
    mp_assert_rc(mp_queue_get_many(q, buf, 6, lens, 8, 1), 3);
    cr_assert(lens[0] == 2 && lens[1] == 3 && lens[2] == 1);
    cr_assert(memcmp(buf, "aabbbc", 6) == 0);
    /* At most n. */
    mp_assert_rc(mp_queue_get_many(q, buf, sizeof(buf), lens, 1, 1), 1);
    cr_assert(lens[0] == 8 && memcmp(buf, "dddddddd", 8) == 0);
    mp_assert_rc(mp_queue_get_many(q, buf, sizeof(buf), lens, 8, 1), 1);
    cr_assert(lens[0] == 2 && memcmp(buf, "ee", 2) == 0);
    mp_assert_rc(mp_queue_get_many(q, buf, sizeof(buf), lens, 8, 0.05), MP_EEMPTY);
    drop_queue(m, "GM", q);
    mp_manager_close(m);
}

/* Child: gets the 3 messages of "JQ" and marks each done. */
static int consume_and_mark_done(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_queue *q;
    if (mp_manager_open(&m, arg) < 0 ||
        mp_manager_queue(m, "JQ", &(mp_queue_opts){.joinable = true}, &q) < 0)
        return 1;
    for (int i = 0; i < 3; i++) {
        void *p;
        size_t n;
        if (mp_queue_get(q, &p, &n, 20) < 0)
            return 2;
        free(p);
        usleep(20000);
        if (mp_queue_task_done(q) < 0)
            return 3;
    }
    mp_queue_destroy(q);
    mp_manager_close(m);
    return 0;
}

Test(msync, joinable_queue_join_waits_for_every_task_done)
{
    mp_manager *m = open_manager();
    mp_queue *q, *plain;
    mp_assert_rc(mp_manager_queue(m, "JQ", &(mp_queue_opts){.joinable = true}, &q), 1);
    mp_assert_ok(mp_queue_join(q, 0)); /* nothing put: nothing to wait for */
    mp_assert_rc(mp_queue_task_done(q), MP_ETOOMANYDONE);
    for (int i = 0; i < 3; i++)
        mp_assert_ok(mp_queue_put(q, "t", 1, 1));
    mp_assert_rc(mp_queue_join(q, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp_queue_join(q, 0.05), MP_ETIMEDOUT);
    mp_process *p = start_child(consume_and_mark_done);
    mp_assert_ok(mp_queue_join(q, 20));
    join_ok(p);
    mp_assert_ok(mp_queue_join(q, 0));
    mp_assert_rc(mp_queue_task_done(q), MP_ETOOMANYDONE);
    /* A plain queue has no task accounting. */
    mp_assert_rc(mp_manager_queue(m, "PQ", NULL, &plain), 1);
    mp_assert_rc(mp_queue_task_done(plain), MP_EINVAL);
    mp_assert_rc(mp_queue_join(plain, 0), MP_EINVAL);
    drop_queue(m, "PQ", plain);
    drop_queue(m, "JQ", q);
    mp_manager_close(m);
}

/* Child: blocks in a get of "CQ" until the parent closes it. */
static int get_until_closed(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_queue *q;
    mp_event *e;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_queue(m, "CQ", NULL, &q) < 0 ||
        mp_manager_event(m, "waiting", &e) < 0 || mp_event_set(e) < 0)
        return 1;
    void *p;
    size_t n;
    int rc = mp_queue_get(q, &p, &n, 20);
    mp_queue_destroy(q);
    mp_manager_close(m);
    return rc == MP_ECLOSED ? 0 : 2;
}

Test(msync, a_closed_queue_refuses_puts_drains_and_wakes_its_getters)
{
    mp_manager *m = open_manager();
    mp_queue *q;
    mp_event *waiting;
    mp_assert_rc(mp_manager_queue(m, "CQ", NULL, &q), 1);
    mp_assert_rc(mp_manager_event(m, "waiting", &waiting), 1);
    mp_process *p[2];
    for (int i = 0; i < 2; i++)
        p[i] = start_child(get_until_closed);
    mp_assert_ok(mp_event_wait(waiting, 20));
    usleep(200000); /* both in their get, most likely */
    mp_assert_ok(mp_queue_close(q));
    for (int i = 0; i < 2; i++)
        join_ok(p[i]);               /* both woke with MP_ECLOSED */
    mp_assert_ok(mp_queue_close(q)); /* again: nothing changes */
    mp_assert_rc(mp_queue_put(q, "x", 1, 1), MP_ECLOSED);
    void *data;
    size_t n;
    mp_assert_rc(mp_queue_get(q, &data, &n, 0), MP_ECLOSED);
    mp_assert_rc(mp_queue_get(q, &data, &n, 1), MP_ECLOSED);
    /* What was put before the close is still got, then MP_ECLOSED. */
    mp_queue *q2;
    mp_assert_rc(mp_manager_queue(m, "CQ2", &(mp_queue_opts){.maxsize = 4}, &q2), 1);
    mp_assert_ok(mp_queue_put(q2, "a", 1, 1));
    mp_assert_ok(mp_queue_put(q2, "b", 1, 1));
    mp_assert_ok(mp_queue_close(q2));
    mp_assert_rc(mp_queue_put(q2, "c", 1, 1), MP_ECLOSED);
    get_str(q2, "a");
    char buf[4];
    mp_assert_ok(mp_queue_get_into(q2, buf, sizeof(buf), &n, 1));
    cr_assert(n == 1 && buf[0] == 'b');
    mp_assert_rc(mp_queue_get(q2, &data, &n, 1), MP_ECLOSED);
    mp_event_destroy(waiting);
    drop_queue(m, "CQ2", q2);
    drop_queue(m, "CQ", q);
    mp_manager_close(m);
}

Test(msync, queue_between_processes)
{
    mp_manager *m = open_manager();
    mp_queue *jobs, *results;
    mp_assert_rc(mp_manager_queue(m, "jobs", &(mp_queue_opts){.maxsize = 4}, &jobs), 1);
    mp_assert_rc(mp_manager_queue(m, "results", NULL, &results), 1);
    mp_process *p[2] = {start_child(queue_worker), start_child(queue_worker)};
    long sum = 0;
    for (int i = 1; i <= 20; i++) {
        char buf[16];
        int n = snprintf(buf, sizeof(buf), "%d", i);
        mp_assert_ok(mp_queue_put(jobs, buf, (size_t)n, 20)); /* blocks while full */
    }
    for (int i = 0; i < 20; i++) {
        char buf[16];
        size_t n;
        mp_assert_ok(mp_queue_get_into(results, buf, sizeof(buf) - 1, &n, 20));
        buf[n] = '\0';
        sum += atol(buf);
    }
    cr_assert_eq(sum, 2 * 210);
    for (int i = 0; i < 2; i++)
        mp_assert_ok(mp_queue_put(jobs, "stop", 4, 20));
    join_ok(p[0]);
    join_ok(p[1]);
    drop_queue(m, "jobs", jobs);
    drop_queue(m, "results", results);
    mp_manager_close(m);
}

/* Child: puts "x" on "WQ" after 0.2 s. */
static int put_after_a_while(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_queue *q;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_queue(m, "WQ", NULL, &q) < 0)
        return 1;
    usleep(200 * 1000);
    int rc = mp_queue_put(q, "x", 1, 5);
    mp_queue_destroy(q);
    mp_manager_close(m);
    return rc < 0 ? 2 : 0;
}

Test(msync, mp_wait_on_a_queue_ends_with_a_put_from_another_process)
{
    mp_manager *m = open_manager();
    mp_queue *q;
    mp_assert_rc(mp_manager_queue(m, "WQ", NULL, &q), 1);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    mp_waitable w[2] = {MP_WAIT_QUEUE(q), MP_WAIT_FD(fds[0])};
    mp_assert_rc(mp_wait(w, 2, 0), 0);
    double t0 = mp_test_now();
    mp_assert_rc(mp_wait(w, 2, 0.05), 0);
    cr_assert_geq(mp_test_now() - t0, 0.05);
    /* Another object ready first: the queue's wait is given up. */
    cr_assert_eq(write(fds[1], "!", 1), 1);
    mp_assert_rc(mp_wait(w, 2, 20), 1);
    cr_assert(w[1].ready && !w[0].ready);
    char c;
    cr_assert_eq(read(fds[0], &c, 1), 1);
    /* A put from another process ends the wait. */
    mp_process *p = start_child(put_after_a_while);
    mp_assert_rc(mp_wait(w, 2, 20), 1);
    cr_assert(w[0].ready && !w[1].ready);
    join_ok(p);
    mp_assert_rc(mp_wait(w, 1, 0), 1); /* still there: nothing taken */
    get_str(q, "x");
    /* Closed: a get would not block. */
    mp_assert_ok(mp_queue_close(q));
    mp_assert_rc(mp_wait(w, 2, 5), 1);
    cr_assert(w[0].ready);
    close(fds[0]);
    close(fds[1]);
    drop_queue(m, "WQ", q);
    mp_manager_close(m);
}

/* Child: sets "WE" after 0.2 s. */
static int set_after_a_while(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_event *e;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_event(m, "WE", &e) < 0)
        return 1;
    usleep(200 * 1000);
    int rc = mp_event_set(e);
    mp_event_destroy(e);
    mp_manager_close(m);
    return rc < 0 ? 2 : 0;
}

Test(msync, mp_wait_on_an_event_ends_when_another_process_sets_it)
{
    mp_manager *m = open_manager();
    mp_event *e;
    mp_assert_rc(mp_manager_event(m, "WE", &e), 1);
    mp_waitable w[2] = {MP_WAIT_EVENT(e), MP_WAIT_EVENT(NULL)};
    mp_assert_rc(mp_wait(w, 2, 0), MP_EINVAL);
    mp_assert_rc(mp_wait(w, 1, 0), 0);
    double t0 = mp_test_now();
    mp_assert_rc(mp_wait(w, 1, 0.05), 0);
    cr_assert_geq(mp_test_now() - t0, 0.05);
    mp_process *p = start_child(set_after_a_while);
    mp_assert_rc(mp_wait(w, 1, 20), 1);
    cr_assert(w[0].ready);
    join_ok(p);
    mp_assert_rc(mp_wait(w, 1, 0), 1); /* still set */
    mp_assert_ok(mp_event_clear(e));
    mp_assert_rc(mp_wait(w, 1, 0.01), 0);
    mp_event_destroy(e);
    mp_manager_close(m);
}

/* ---- lock ----------------------------------------------------------------*/

/* Child: takes "L", says so with event "held", then waits to be killed. */
static int hold_lock(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_lock *l;
    mp_event *e;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_lock(m, "L", &l) < 0 ||
        mp_manager_event(m, "held", &e) < 0 || mp_lock_acquire(l, 20) < 0 || mp_event_set(e) < 0)
        return 1;
    for (;;)
        pause();
}

Test(msync, a_killed_holder_leaves_the_lock_owner_dead)
{
    /* A short lease: a Redis lock held by a dead process frees itself
     * after it (a local lock at once, through the kernel). */
    mp_manager *m = open_manager_q("lease=1");
    mp_lock *l;
    mp_event *held;
    mp_assert_rc(mp_manager_lock(m, "L", &l), 1);
    mp_assert_rc(mp_manager_event(m, "held", &held), 1);
    mp_assert_rc(mp_lock_release(l), MP_EPERM); /* not held */
    mp_process *p = start_child(hold_lock);
    mp_assert_ok(mp_event_wait(held, 20));
    mp_assert_rc(mp_lock_acquire(l, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp_lock_acquire(l, 0.05), MP_ETIMEDOUT);
    mp_assert_ok(mp_process_kill(p));
    mp_assert_ok(mp_process_join(p, 20));
    mp_process_destroy(p);
    mp_assert_rc(mp_lock_acquire(l, 20), MP_EOWNERDEAD);
    mp_assert_ok(mp_lock_consistent(l));
    mp_assert_ok(mp_lock_release(l));
    mp_assert_ok(mp_lock_acquire(l, 0)); /* a clean release: no owner-dead */
    mp_assert_ok(mp_lock_release(l));
    mp_lock_destroy(l);
    mp_event_destroy(held);
    mp_manager_close(m);
}

/* Child: 50 increments of "n" by get then set, under lock "CL". */
static int locked_increments(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_lock *l;
    mp_value *v;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_lock(m, "CL", &l) < 0 ||
        mp_manager_value(m, "n", &(mp_value_opts){.typecode = 'q', .raw = true}, &v) < 0)
        return 1;
    for (int i = 0; i < 50; i++) {
        int64_t x;
        if (mp_lock_acquire(l, 20) < 0)
            return 2;
        if (mp_value_get_i64(v, &x) < 0 || mp_value_set_i64(v, x + 1) < 0)
            return 3;
        if (mp_lock_release(l) < 0)
            return 4;
    }
    mp_value_destroy(v);
    mp_lock_destroy(l);
    mp_manager_close(m);
    return 0;
}

Test(msync, a_lock_excludes_other_processes)
{
    mp_manager *m = open_manager();
    mp_value *v;
    mp_assert_rc(mp_manager_value(m, "n", &(mp_value_opts){.typecode = 'q', .raw = true}, &v), 1);
    mp_process *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = start_child(locked_increments);
    for (int i = 0; i < 3; i++)
        join_ok(p[i]);
    int64_t x;
    mp_assert_ok(mp_value_get_i64(v, &x));
    cr_assert_eq(x, 150);
    mp_value_destroy(v);
    mp_manager_close(m);
}

/* ---- fencing tokens and renewal ------------------------------------------*/

/* Child: 20 holds of "FL"; in each, its token must be above every token
 * written to the value "max" before (the resource a fencing token
 * protects), which it then raises to its own. */
static int fenced_writes(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_lock *l;
    mp_value *v;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_lock(m, "FL", &l) < 0 ||
        mp_manager_value(m, "max", &(mp_value_opts){.typecode = 'q', .raw = true}, &v) < 0)
        return 1;
    for (int i = 0; i < 20; i++) {
        uint64_t t = 0;
        int64_t max;
        if (mp_lock_acquire(l, 20) < 0 || mp_lock_token(l, &t) < 0)
            return 2;
        if (mp_value_get_i64(v, &max) < 0 || t <= (uint64_t)max)
            return 3; /* a token not above one handed out before */
        if (mp_value_set_i64(v, (int64_t)t) < 0 || mp_lock_release(l) < 0)
            return 4;
        if (mp_lock_token(l, &t) != MP_EPERM)
            return 5;
    }
    mp_value_destroy(v);
    mp_lock_destroy(l);
    mp_manager_close(m);
    return 0;
}

Test(msync, lock_tokens_increase_with_every_acquisition)
{
    mp_manager *m = open_manager();
    mp_lock *l;
    mp_value *v;
    uint64_t t = 0, t2 = 0;
    mp_assert_rc(mp_manager_lock(m, "FL", &l), 1);
    mp_assert_rc(mp_manager_value(m, "max", &(mp_value_opts){.typecode = 'q', .raw = true}, &v), 1);
    mp_assert_rc(mp_lock_token(l, &t), MP_EPERM); /* not held */
    mp_assert_rc(mp_lock_renew(l), MP_EPERM);
    mp_assert_ok(mp_lock_acquire(l, 0));
    mp_assert_rc(mp_lock_token(l, NULL), MP_EINVAL);
    mp_assert_rc(mp_lock_token(NULL, &t), MP_EINVAL);
    mp_assert_ok(mp_lock_token(l, &t));
    cr_assert_eq(t, 1, "the first acquisition's token: %llu", (unsigned long long)t);
    mp_assert_ok(mp_lock_renew(l));
    mp_assert_ok(mp_lock_token(l, &t2));
    cr_assert_eq(t2, t, "renewing keeps the token");
    mp_assert_ok(mp_value_set_i64(v, (int64_t)t));
    mp_assert_ok(mp_lock_release(l));
    mp_process *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = start_child(fenced_writes);
    for (int i = 0; i < 3; i++)
        join_ok(p[i]);
    int64_t max;
    mp_assert_ok(mp_value_get_i64(v, &max));
    cr_assert_eq(max, 61, "61 acquisitions, one token each: %lld", (long long)max);
    mp_assert_ok(mp_lock_acquire(l, 0));
    mp_assert_ok(mp_lock_token(l, &t));
    cr_assert_eq(t, 62);
    mp_assert_ok(mp_lock_release(l));
    /* An rlock's token changes with each acquisition, not with its levels. */
    mp_rlock *r;
    mp_assert_rc(mp_manager_rlock(m, "FR", &r), 1);
    mp_assert_rc(mp_rlock_token(r, &t), MP_EPERM);
    mp_assert_ok(mp_rlock_acquire(r, 0));
    mp_assert_ok(mp_rlock_token(r, &t));
    mp_assert_ok(mp_rlock_acquire(r, 0));
    mp_assert_ok(mp_rlock_token(r, &t2));
    cr_assert_eq(t2, t, "a level taken again keeps the token");
    mp_assert_ok(mp_rlock_renew(r));
    mp_assert_ok(mp_rlock_release(r));
    mp_assert_ok(mp_rlock_release(r));
    mp_assert_rc(mp_rlock_renew(r), MP_EPERM);
    mp_assert_ok(mp_rlock_acquire(r, 0));
    mp_assert_ok(mp_rlock_token(r, &t2));
    cr_assert_eq(t2, t + 1);
    mp_assert_ok(mp_rlock_release(r));
    mp_rlock_destroy(r);
    mp_value_destroy(v);
    mp_lock_destroy(l);
    mp_manager_close(m);
}

static bool url_is_redis(const char *u)
{
    return strncmp(u, "redis://", 8) == 0;
}

/* Child: takes "P" (its token to the value "t1"), sets "held", and waits
 * for "go" (the parent stops it meanwhile). Then, on Redis, where its
 * lease ran out and the parent took the lock, its token is below the
 * resource's "max" (a fenced store refuses its write) and renew and
 * release answer MP_EPERM; locally the lock stayed its own. */
static int paused_holder(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_lock *l;
    mp_event *held, *go;
    mp_value *t1v, *maxv;
    const mp_value_opts q = {.typecode = 'q', .raw = true};
    uint64_t t = 0;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_lock(m, "P", &l) < 0 ||
        mp_manager_event(m, "held", &held) < 0 || mp_manager_event(m, "go", &go) < 0 ||
        mp_manager_value(m, "t1", &q, &t1v) < 0 || mp_manager_value(m, "max", &q, &maxv) < 0)
        return 1;
    if (mp_lock_acquire(l, 20) < 0 || mp_lock_token(l, &t) < 0 ||
        mp_value_set_i64(t1v, (int64_t)t) < 0 || mp_event_set(held) < 0)
        return 2;
    if (mp_event_wait(go, 30) < 0)
        return 3;
    uint64_t again = 0;
    int64_t max;
    if (mp_lock_token(l, &again) < 0 || again != t || mp_value_get_i64(maxv, &max) < 0)
        return 4;
    if (url_is_redis(arg)) {
        if (t >= (uint64_t)max)
            return 5; /* the stale token would be taken */
        if (mp_lock_renew(l) != MP_EPERM || mp_lock_release(l) != MP_EPERM)
            return 6;
    } else if (mp_lock_renew(l) != 0 || mp_lock_release(l) != 0) {
        return 7;
    }
    mp_manager_close(m);
    return 0;
}

Test(msync, a_paused_holder_past_its_lease_has_a_stale_token)
{
    mp_manager *m = open_manager_q("lease=1");
    mp_lock *l;
    mp_event *held, *go;
    mp_value *t1v, *maxv;
    const mp_value_opts q = {.typecode = 'q', .raw = true};
    mp_assert_rc(mp_manager_lock(m, "P", &l), 1);
    mp_assert_rc(mp_manager_event(m, "held", &held), 1);
    mp_assert_rc(mp_manager_event(m, "go", &go), 1);
    mp_assert_rc(mp_manager_value(m, "t1", &q, &t1v), 1);
    mp_assert_rc(mp_manager_value(m, "max", &q, &maxv), 1);
    mp_process *p = start_child(paused_holder);
    mp_assert_ok(mp_event_wait(held, 20));
    cr_assert_eq(kill(mp_process_pid(p), SIGSTOP), 0);
    int64_t t1;
    mp_assert_ok(mp_value_get_i64(t1v, &t1));
    if (on_redis()) {
        /* The lease (1 s) runs out while the holder is stopped. */
        mp_assert_rc(mp_lock_acquire(l, 20), MP_EOWNERDEAD);
        uint64_t t2;
        mp_assert_ok(mp_lock_token(l, &t2));
        cr_assert_gt(t2, (uint64_t)t1, "the new hold's token %llu, the stopped one's %lld",
                     (unsigned long long)t2, (long long)t1);
        mp_assert_ok(mp_value_set_i64(maxv, (int64_t)t2)); /* the resource's highest */
        mp_assert_ok(mp_lock_consistent(l));
        mp_assert_ok(mp_lock_release(l));
    } else {
        /* No lease: the stopped holder keeps it. */
        mp_assert_rc(mp_lock_acquire(l, 1.5), MP_ETIMEDOUT);
        mp_assert_ok(mp_value_set_i64(maxv, t1));
    }
    mp_assert_ok(mp_event_set(go));
    cr_assert_eq(kill(mp_process_pid(p), SIGCONT), 0);
    join_ok(p);
    mp_value_destroy(t1v);
    mp_value_destroy(maxv);
    mp_event_destroy(held);
    mp_event_destroy(go);
    mp_lock_destroy(l);
    mp_manager_close(m);
}

/* Child: "RN" is held (and renewed) by the parent: not got in 2.5 s,
 * more than twice the lease. */
static int renewed_child(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_lock *l;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_lock(m, "RN", &l) < 0)
        return 1;
    int rc = mp_lock_acquire(l, 2.5);
    mp_manager_close(m);
    return rc == MP_ETIMEDOUT ? 0 : 2;
}

Test(msync, a_renewed_lock_stays_held_past_its_lease)
{
    mp_manager *m = open_manager_q("lease=1");
    mp_lock *l;
    mp_assert_rc(mp_manager_lock(m, "RN", &l), 1);
    mp_assert_ok(mp_lock_acquire(l, 0));
    uint64_t t, t2;
    mp_assert_ok(mp_lock_token(l, &t));
    mp_process *p = start_child(renewed_child);
    /* Renewed every 0.2 s until the child gave up (a lease is 1 s). */
    bool alive = true;
    for (int i = 0; i < 200 && alive; i++) {
        mp_assert_ok(mp_lock_renew(l));
        usleep(200 * 1000);
        alive = mp_process_is_alive(p);
    }
    join_ok(p);
    mp_assert_ok(mp_lock_token(l, &t2));
    cr_assert_eq(t2, t);
    mp_assert_ok(mp_lock_release(l)); /* still ours: a clean release */
    mp_lock_destroy(l);
    mp_manager_close(m);
}

/* Child: "R" is held by the parent: not got within a short timeout. */
static int rlock_child(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_rlock *r;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_rlock(m, "R", &r) < 0)
        return 1;
    if (mp_rlock_acquire(r, 0.05) != MP_ETIMEDOUT || mp_rlock_count(r) != 0)
        return 2;
    return 0;
}

Test(msync, rlock_counts_levels_and_excludes_other_processes)
{
    mp_manager *m = open_manager();
    mp_rlock *r;
    mp_assert_rc(mp_manager_rlock(m, "R", &r), 1);
    mp_assert_rc(mp_rlock_count(r), 0);
    mp_assert_rc(mp_rlock_release(r), MP_EPERM);
    mp_assert_ok(mp_rlock_acquire(r, 0));
    mp_assert_ok(mp_rlock_acquire(r, 0));
    mp_assert_rc(mp_rlock_count(r), 2);
    join_ok(start_child(rlock_child));
    mp_assert_ok(mp_rlock_release(r));
    mp_assert_rc(mp_rlock_count(r), 1);
    mp_assert_ok(mp_rlock_release(r));
    mp_assert_rc(mp_rlock_count(r), 0);
    mp_assert_rc(mp_rlock_release(r), MP_EPERM);
    mp_rlock_destroy(r);
    mp_manager_close(m);
}

/* Child: releases "S" once. */
static int sem_release_child(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_sem *s;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_sem(m, "S", NULL, &s) < 0)
        return 1;
    usleep(50 * 1000);
    int rc = mp_sem_release(s);
    mp_sem_destroy(s);
    mp_manager_close(m);
    return rc < 0 ? 2 : 0;
}

Test(msync, sem_counts_bounds_and_wakes_across_processes)
{
    mp_manager *m = open_manager();
    mp_sem *s, *b;
    mp_assert_rc(mp_manager_sem(m, "S", &(mp_sem_opts){.value = 1}, &s), 1);
    mp_assert_rc(mp_sem_get_value(s), 1);
    mp_assert_ok(mp_sem_acquire(s, 0));
    mp_assert_rc(mp_sem_acquire(s, 0), MP_ETIMEDOUT);
    double t0 = mp_test_now();
    mp_assert_rc(mp_sem_acquire(s, 0.05), MP_ETIMEDOUT);
    cr_assert_geq(mp_test_now() - t0, 0.05);
    mp_process *p = start_child(sem_release_child);
    mp_assert_ok(mp_sem_acquire(s, 20)); /* released by the child */
    join_ok(p);
    mp_assert_rc(mp_sem_get_value(s), 0);
    /* Bounded: a release above the initial value changes nothing. */
    mp_assert_rc(mp_manager_sem(m, "B", &(mp_sem_opts){.value = 2, .bounded = true}, &b), 1);
    mp_assert_rc(mp_sem_release(b), MP_EOVERFLOW);
    mp_assert_ok(mp_sem_acquire(b, 0));
    mp_assert_ok(mp_sem_release(b));
    mp_assert_rc(mp_sem_get_value(b), 2);
    mp_assert_rc(mp_sem_acquire(b, NAN), MP_EINVAL);
    mp_sem_destroy(b);
    mp_sem_destroy(s);
    mp_manager_close(m);
}

/* ---- event ---------------------------------------------------------------*/

static int set_event(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_event *e;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_event(m, "go", &e) < 0)
        return 1;
    usleep(50 * 1000);
    int rc = mp_event_set(e);
    mp_event_destroy(e);
    mp_manager_close(m);
    return rc < 0 ? 2 : 0;
}

Test(msync, event_set_wait_clear)
{
    mp_manager *m = open_manager();
    mp_event *e;
    mp_assert_rc(mp_manager_event(m, "go", &e), 1);
    cr_assert_not(mp_event_is_set(e));
    mp_assert_rc(mp_event_wait(e, 0), MP_ETIMEDOUT);
    double t0 = mp_test_now();
    mp_assert_rc(mp_event_wait(e, 0.05), MP_ETIMEDOUT);
    cr_assert_geq(mp_test_now() - t0, 0.05);
    mp_process *p = start_child(set_event);
    mp_assert_ok(mp_event_wait(e, 20)); /* set by the child */
    join_ok(p);
    cr_assert(mp_event_is_set(e));
    mp_assert_ok(mp_event_set(e)); /* already set: no change */
    mp_assert_ok(mp_event_wait(e, 0));
    mp_assert_ok(mp_event_clear(e));
    cr_assert_not(mp_event_is_set(e));
    mp_assert_rc(mp_event_wait(e, 0.01), MP_ETIMEDOUT);
    mp_assert_rc(mp_event_wait(e, NAN), MP_EINVAL);
    mp_event_destroy(e);
    mp_manager_close(m);
}

/* ---- condition -----------------------------------------------------------*/

static mp_value *state_value(mp_manager *m, const char *name)
{
    mp_value *v = NULL;
    if (mp_manager_value(m, name, &(mp_value_opts){.typecode = 'q', .raw = true}, &v) < 0)
        return NULL;
    return v;
}

static mp_value *pred_v;
static int64_t pred_want;
static bool value_is(void *arg)
{
    (void)arg;
    int64_t x = -1;
    return mp_value_get_i64(pred_v, &x) == 0 && x == pred_want;
}

/* Child: waits under "C" until "state" is 1, then makes it 2 and wakes
 * every waiter. */
static int wait_for_one_then_two(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_cond *c;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_cond(m, "C", &c) < 0 ||
        (pred_v = state_value(m, "state")) == NULL)
        return 1;
    pred_want = 1;
    if (mp_cond_acquire(c, 20) < 0 || mp_cond_wait_for(c, value_is, NULL, 20) < 0)
        return 2;
    if (mp_value_set_i64(pred_v, 2) < 0 || mp_cond_notify_all(c) < 0 || mp_cond_release(c) < 0)
        return 3;
    mp_value_destroy(pred_v);
    mp_cond_destroy(c);
    mp_manager_close(m);
    return 0;
}

Test(msync, cond_wait_for_a_state_another_process_sets)
{
    mp_manager *m = open_manager();
    mp_cond *c;
    mp_assert_rc(mp_manager_cond(m, "C", &c), 1);
    cr_assert_not_null(mp_cond_get_rlock(c)); /* Python's Condition(): an RLock */
    cr_assert_null(mp_cond_get_lock(c));
    cr_assert_not_null(pred_v = state_value(m, "state"));
    mp_process *p = start_child(wait_for_one_then_two);
    mp_assert_ok(mp_cond_acquire(c, 20));
    mp_assert_ok(mp_value_set_i64(pred_v, 1));
    cr_assert_geq(mp_cond_notify_all(c), 0); /* 1, or 0 if the child has not come yet */
    pred_want = 2;
    mp_assert_ok(mp_cond_wait_for(c, value_is, NULL, 20));
    mp_assert_ok(mp_cond_release(c));
    join_ok(p);
    mp_value_destroy(pred_v);
    mp_cond_destroy(c);
    mp_manager_close(m);
}

/* Child: counts itself in "waiting" under "N", waits, counts itself in
 * "woken" when notified. */
static int wait_to_be_notified(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_cond *c;
    mp_value *waiting, *woken;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_cond(m, "N", &c) < 0 ||
        (waiting = state_value(m, "waiting")) == NULL || (woken = state_value(m, "woken")) == NULL)
        return 1;
    if (mp_cond_acquire(c, 20) < 0 || mp_value_add_i64(waiting, 1, NULL) < 0)
        return 2;
    int rc = mp_cond_wait(c, 30);
    if (rc == 0 && mp_value_add_i64(woken, 1, NULL) < 0)
        return 3;
    if (mp_cond_release(c) < 0)
        return 4;
    mp_value_destroy(waiting);
    mp_value_destroy(woken);
    mp_cond_destroy(c);
    mp_manager_close(m);
    return rc == 0 ? 0 : 5;
}

static int64_t value_of(mp_value *v)
{
    int64_t x = -1;
    mp_assert_ok(mp_value_get_i64(v, &x));
    return x;
}

/* Polls v (up to 20 s) until it reads want. */
static void until_value(mp_value *v, int64_t want)
{
    for (int i = 0; i < 2000 && value_of(v) != want; i++)
        usleep(10 * 1000);
    cr_assert_eq(value_of(v), want);
}

Test(msync, one_notify_wakes_one_waiter_and_notify_all_the_rest)
{
    mp_manager *m = open_manager();
    mp_cond *c;
    mp_assert_rc(mp_manager_cond(m, "N", &c), 1);
    mp_value *waiting = state_value(m, "waiting"), *woken = state_value(m, "woken");
    cr_assert(waiting && woken);
    mp_process *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = start_child(wait_to_be_notified);
    /* A child counts itself with the lock held and lets it go only in
     * its wait: once all three counted, the lock comes to the parent only
     * after each of them waits. */
    until_value(waiting, 3);
    mp_assert_ok(mp_cond_acquire(c, 20));
    mp_assert_rc(mp_cond_notify(c, 0), 0);
    mp_assert_rc(mp_cond_notify(c, 1), 1);
    mp_assert_ok(mp_cond_release(c));
    until_value(woken, 1);
    usleep(200 * 1000);
    cr_assert_eq(value_of(woken), 1, "one notify woke more than one waiter");
    mp_assert_ok(mp_cond_acquire(c, 20));
    mp_assert_rc(mp_cond_notify_all(c), 2);
    mp_assert_ok(mp_cond_release(c));
    for (int i = 0; i < 3; i++)
        join_ok(p[i]);
    cr_assert_eq(value_of(woken), 3);
    mp_value_destroy(waiting);
    mp_value_destroy(woken);
    mp_cond_destroy(c);
    mp_manager_close(m);
}

Test(msync, a_cond_wait_times_out_with_the_lock_held_again)
{
    mp_manager *m = open_manager();
    mp_cond *c;
    mp_assert_rc(mp_manager_cond(m, "T", &c), 1);
    mp_rlock *rl = mp_cond_get_rlock(c);
    /* Not held: nothing to wait or notify with. */
    mp_assert_rc(mp_cond_wait(c, 0.01), MP_EPERM);
    mp_assert_rc(mp_cond_notify(c, 1), MP_EPERM);
    mp_assert_rc(mp_cond_notify_all(c), MP_EPERM);
    mp_assert_rc(mp_cond_release(c), MP_EPERM);
    mp_assert_ok(mp_cond_acquire(c, 0));
    mp_assert_ok(mp_cond_acquire(c, 0));
    cr_assert_eq(mp_rlock_count(rl), 2);
    double t0 = mp_test_now();
    mp_assert_rc(mp_cond_wait(c, 0.1), MP_ETIMEDOUT);
    cr_assert_geq(mp_test_now() - t0, 0.1);
    cr_assert_eq(mp_rlock_count(rl), 2, "the wait gives back every level");
    mp_assert_rc(mp_cond_wait(c, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp_cond_wait(c, NAN), MP_EINVAL);
    mp_assert_rc(mp_cond_wait_for(c, NULL, NULL, 1), MP_EINVAL);
    mp_assert_rc(mp_cond_notify(c, 5), 0); /* nobody waits */
    mp_assert_ok(mp_cond_release(c));
    mp_assert_ok(mp_cond_release(c));
    mp_assert_rc(mp_cond_release(c), MP_EPERM);
    mp_cond_destroy(c);
    mp_manager_close(m);
}

/* ---- barrier ---------------------------------------------------------------*/

#define ROUNDS 5

/* One party of "B4" (4 parties) for ROUNDS rounds: adds 1 << (8 * index)
 * to "r<round>", so that each round sums to 0x01010101 exactly when the
 * four indexes are 0..3. */
static int barrier_rounds(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_barrier *b;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_barrier(m, "B4", 4, &b) < 0)
        return 1;
    for (int r = 0; r < ROUNDS; r++) {
        char name[8];
        snprintf(name, sizeof(name), "r%d", r);
        mp_value *v = state_value(m, name);
        int index = mp_barrier_wait(b, 20);
        if (v == NULL || index < 0 || index > 3)
            return 2;
        if (mp_value_add_i64(v, (int64_t)1 << (8 * index), NULL) < 0)
            return 3;
        mp_value_destroy(v);
    }
    mp_barrier_destroy(b);
    mp_manager_close(m);
    return 0;
}

Test(msync, barrier_rounds_across_four_processes)
{
    mp_manager *m = open_manager();
    mp_barrier *b;
    mp_assert_rc(mp_manager_barrier(m, "B4", 4, &b), 1);
    mp_assert_rc(mp_manager_barrier(m, "B4", 3, &b), MP_EEXIST);
    cr_assert_eq(mp_barrier_parties(b), 4);
    cr_assert_eq(mp_barrier_n_waiting(b), 0);
    cr_assert_not(mp_barrier_broken(b));
    mp_process *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = start_child(barrier_rounds);
    for (int i = 0; i < 4; i++)
        join_ok(p[i]);
    for (int r = 0; r < ROUNDS; r++) {
        char name[8];
        snprintf(name, sizeof(name), "r%d", r);
        mp_value *v = state_value(m, name);
        cr_assert_eq(value_of(v), 0x01010101, "round %d", r);
        mp_value_destroy(v);
    }
    cr_assert_eq(mp_barrier_n_waiting(b), 0);
    mp_barrier_destroy(b);
    mp_manager_close(m);
}

/* Child: one wait on "B" (3 parties) that must end broken. */
static int wait_broken(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_barrier *b;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_barrier(m, "B", 3, &b) < 0)
        return 1;
    int rc = mp_barrier_wait(b, 20);
    mp_barrier_destroy(b);
    mp_manager_close(m);
    return rc == MP_EBROKEN ? 0 : 2;
}

static void until_waiting(mp_barrier *b, int n)
{
    for (int i = 0; i < 2000 && mp_barrier_n_waiting(b) != n; i++)
        usleep(10 * 1000);
    cr_assert_eq(mp_barrier_n_waiting(b), n);
}

Test(msync, a_barrier_timeout_or_abort_breaks_it_for_every_party_until_reset)
{
    mp_manager *m = open_manager();
    mp_barrier *b;
    mp_assert_rc(mp_manager_barrier(m, "B", 3, &b), 1);
    /* A timeout breaks the barrier for the waiting party too. */
    mp_process *p = start_child(wait_broken);
    until_waiting(b, 1);
    mp_assert_rc(mp_barrier_wait(b, 0.1), MP_EBROKEN);
    join_ok(p);
    cr_assert(mp_barrier_broken(b));
    mp_assert_rc(mp_barrier_wait(b, 5), MP_EBROKEN); /* stays broken */
    mp_assert_ok(mp_barrier_reset(b));
    cr_assert_not(mp_barrier_broken(b));
    cr_assert_eq(mp_barrier_n_waiting(b), 0);
    /* An abort wakes the waiters with MP_EBROKEN. */
    p = start_child(wait_broken);
    until_waiting(b, 1);
    mp_assert_ok(mp_barrier_abort(b));
    join_ok(p);
    cr_assert(mp_barrier_broken(b));
    /* A reset while a party waits breaks its phase. */
    mp_assert_ok(mp_barrier_reset(b));
    p = start_child(wait_broken);
    until_waiting(b, 1);
    mp_assert_ok(mp_barrier_reset(b));
    join_ok(p);
    cr_assert_not(mp_barrier_broken(b));
    mp_assert_rc(mp_barrier_wait(b, NAN), MP_EINVAL);
    mp_barrier_destroy(b);
    mp_manager_close(m);
}

/* ---- value ---------------------------------------------------------------*/

static int add_100(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_value *v;
    if (mp_manager_open(&m, arg) < 0 ||
        mp_manager_value(m, "count", &(mp_value_opts){.typecode = 'q'}, &v) < 0)
        return 1;
    for (int i = 0; i < 100; i++)
        if (mp_value_add_i64(v, 1, NULL) < 0)
            return 2;
    mp_value_destroy(v);
    mp_manager_close(m);
    return 0;
}

Test(msync, value_adds_from_four_processes)
{
    mp_manager *m = open_manager();
    mp_value *v;
    mp_assert_rc(mp_manager_value(m, "count", &(mp_value_opts){.typecode = 'q'}, &v), 1);
    mp_process *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = start_child(add_100);
    for (int i = 0; i < 4; i++)
        join_ok(p[i]);
    int64_t x, r;
    mp_assert_ok(mp_value_get_i64(v, &x));
    cr_assert_eq(x, 400);
    mp_assert_ok(mp_value_add_i64(v, -401, &r));
    cr_assert_eq(r, -1);
    mp_value_destroy(v);
    mp_manager_close(m);
}

Test(msync, value_types_ranges_and_init)
{
    mp_manager *m = open_manager();
    mp_value *b, *d, *i, *again;
    mp_assert_rc(mp_manager_value(m, "b", &(mp_value_opts){.typecode = 'b'}, &b), 1);
    cr_assert_eq(mp_value_typecode(b), 'b');
    mp_assert_ok(mp_value_set_i64(b, 127));
    mp_assert_rc(mp_value_set_i64(b, 128), MP_ERANGE);
    mp_assert_rc(mp_value_add_i64(b, 1, NULL), MP_ERANGE); /* nothing changes */
    int64_t x;
    mp_assert_ok(mp_value_get_i64(b, &x));
    cr_assert_eq(x, 127);
    mp_assert_rc(mp_value_add_double(b, 1.0, NULL), MP_EINVAL); /* an integer item */
    mp_assert_rc(mp_value_set_double(b, 1.5), MP_EINVAL);
    mp_assert_ok(mp_value_set_double(b, -3.0));
    mp_assert_ok(mp_value_get_i64(b, &x));
    cr_assert_eq(x, -3);
    uint64_t u;
    mp_assert_rc(mp_value_get_u64(b, &u), MP_ERANGE);
    /* The typecode is the shape: another one is MP_EEXIST. */
    mp_assert_rc(mp_manager_value(m, "b", &(mp_value_opts){.typecode = 'h'}, &again), MP_EEXIST);
    mp_assert_rc(
        mp_manager_value(m, "d", &(mp_value_opts){.typecode = 'd', .init = &(double){0.5}}, &d), 1);
    double f, r;
    mp_assert_ok(mp_value_get_double(d, &f));
    cr_assert_eq(f, 0.5);
    mp_assert_ok(mp_value_add_double(d, 0.25, &r));
    cr_assert_eq(r, 0.75);
    mp_assert_rc(mp_value_add_i64(d, 1, NULL), MP_EINVAL);
    mp_assert_ok(mp_value_get_i64(d, &x));
    cr_assert_eq(x, 0); /* truncated */
    /* init only when creating. */
    mp_assert_rc(mp_manager_value(m, "i", &(mp_value_opts){.typecode = 'i', .init = &(int){5}}, &i),
                 1);
    mp_assert_rc(
        mp_manager_value(m, "i", &(mp_value_opts){.typecode = 'i', .init = &(int){9}}, &again), 0);
    mp_assert_ok(mp_value_get_i64(again, &x));
    cr_assert_eq(x, 5);
    mp_assert_rc(mp_value_get_i64(i, NULL), MP_EINVAL);
    mp_value_destroy(again);
    mp_value_destroy(i);
    mp_value_destroy(d);
    mp_value_destroy(b);
    mp_manager_close(m);
}

/* Child: negates every item of "arr". */
static int negate_array(const void *arg, size_t len)
{
    (void)len;
    mp_manager *m;
    mp_array *a;
    if (mp_manager_open(&m, arg) < 0 ||
        mp_manager_array(m, "arr", &(mp_array_opts){.typecode = 'i', .len = 4}, &a) < 0)
        return 1;
    for (size_t i = 0; i < mp_array_len(a); i++) {
        int64_t x;
        if (mp_array_get_i64(a, i, &x) < 0 || mp_array_set_i64(a, i, -x) < 0)
            return 2;
    }
    mp_array_destroy(a);
    mp_manager_close(m);
    return 0;
}

Test(msync, array_items_shape_and_children)
{
    mp_manager *m = open_manager();
    mp_array *a, *again;
    int init[4] = {1, 2, 3, 4};
    mp_assert_rc(
        mp_manager_array(m, "arr", &(mp_array_opts){.typecode = 'i', .len = 4, .init = init}, &a),
        1);
    cr_assert_eq(mp_array_len(a), 4);
    cr_assert_eq(mp_array_typecode(a), 'i');
    /* The length and typecode are the shape; init only when creating. */
    mp_assert_rc(mp_manager_array(m, "arr", &(mp_array_opts){.typecode = 'i', .len = 5}, &again),
                 MP_EEXIST);
    mp_assert_rc(mp_manager_array(m, "arr", &(mp_array_opts){.typecode = 'h', .len = 4}, &again),
                 MP_EEXIST);
    mp_assert_rc(mp_manager_array(m, "arr", &(mp_array_opts){.typecode = 'i', .len = 4}, &again),
                 0);
    join_ok(start_child(negate_array));
    int64_t x;
    for (size_t i = 0; i < 4; i++) {
        mp_assert_ok(mp_array_get_i64(again, i, &x));
        cr_assert_eq(x, -(int64_t)(i + 1));
    }
    mp_assert_rc(mp_array_get_i64(a, 4, &x), MP_ERANGE);
    mp_assert_rc(mp_array_set_i64(a, 4, 0), MP_ERANGE);
    mp_assert_rc(mp_array_set_i64(a, 0, (int64_t)INT32_MAX + 1), MP_ERANGE);
    mp_assert_ok(mp_array_set_double(a, 3, 7.0));
    double d;
    mp_assert_ok(mp_array_get_double(a, 3, &d));
    cr_assert_eq(d, 7.0);
    mp_assert_rc(mp_array_get_double(a, 3, NULL), MP_EINVAL);
    mp_array *z;
    mp_assert_rc(mp_manager_array(m, "zeros", &(mp_array_opts){.typecode = 'd', .len = 2}, &z), 1);
    mp_assert_ok(mp_array_get_double(z, 1, &d));
    cr_assert_eq(d, 0.0);
    mp_array_destroy(z);
    mp_array_destroy(again);
    mp_array_destroy(a);
    mp_manager_close(m);
}

/* ---- remove --------------------------------------------------------------*/

Test(msync, remove_with_and_without_destroy)
{
    mp_manager *m = open_manager();
    mp_queue *q, *q2;
    mp_value *v;
    mp_event *e;
    /* Without MP_MANAGER_DESTROY: the name is free for any type, and the
     * object stays usable through the pointers (handles) held. */
    mp_assert_rc(mp_manager_value(m, "rq", &(mp_value_opts){.typecode = 'q'}, &v), 1);
    mp_assert_ok(mp_value_set_i64(v, 7));
    mp_assert_ok(mp_manager_remove(m, "rq", 0));
    mp_assert_rc(mp_manager_remove(m, "rq", 0), MP_ENOENT);
    mp_assert_rc(mp_manager_event(m, "rq", &e), 1);
    int64_t x;
    mp_assert_ok(mp_value_get_i64(v, &x));
    cr_assert_eq(x, 7);
    mp_value_destroy(v); /* local: still named, a no-op; Redis: the handle */
    mp_event_destroy(e);
    mp_assert_ok(mp_manager_remove(m, "rq", MP_MANAGER_DESTROY));
    /* With it, the data go: a new queue of the name is empty (on Redis
     * the data keys were deleted). */
    mp_assert_rc(mp_manager_queue(m, "rq2", NULL, &q), 1);
    mp_assert_ok(mp_queue_put(q, "m", 1, 0));
    mp_assert_ok(mp_manager_remove(m, "rq2", MP_MANAGER_DESTROY));
    mp_assert_rc(mp_manager_queue(m, "rq2", NULL, &q2), 1);
    mp_assert_rc(mp_queue_empty(q2), 1);
    if (on_redis())
        mp_queue_destroy(q); /* a handle: released (local: freed already) */
    drop_queue(m, "rq2", q2);
    mp_assert_rc(mp_manager_remove(m, "never", 0), MP_ENOENT);
    mp_assert_rc(mp_manager_remove(m, "rq2", 2), MP_EINVAL);
    mp_manager_close(m);
}

/* ---- who holds a lock ------------------------------------------------------ */

/* Child: looks at "OL" and "OR", both held by the parent (the rlock at
 * depth 2): locked, the parent's pid, a thread id only locally, and the
 * depth only locally (on Redis only the holder knows it). */
static int observe_holder(const void *arg, size_t len)
{
    (void)len;
    bool redis = url_is_redis(arg);
    mp_manager *m;
    mp_lock *l;
    mp_rlock *r;
    pid_t pid = 0, tid = -1;
    uint32_t depth = 99;
    /* The holder is the process that started this one (under forkserver
     * not the kernel's parent: the fork server is). */
    mp_process *parent = mp_parent_process();
    pid_t holder = parent ? mp_process_pid(parent) : -1;
    if (mp_manager_open(&m, arg) < 0 || mp_manager_lock(m, "OL", &l) < 0 ||
        mp_manager_rlock(m, "OR", &r) < 0)
        return 1;
    if (mp_lock_locked(l) != 1 || mp_rlock_locked(r) != 1)
        return 2;
    if (mp_lock_owner(l, &pid, &tid) != 0 || pid != holder || (redis ? tid != 0 : tid <= 0))
        return 3;
    pid = 0;
    tid = -1;
    if (mp_rlock_owner(r, &pid, &tid, &depth) != 0 || pid != holder ||
        (redis ? tid != 0 : tid <= 0) || depth != (redis ? 0u : 2u))
        return 4;
    if (mp_lock_owner(l, NULL, NULL) != 0) /* either output may be skipped */
        return 5;
    return 0;
}

Test(msync, locked_and_owner_are_seen_by_other_processes)
{
    mp_manager *m = open_manager();
    mp_lock *l;
    mp_rlock *r;
    pid_t pid = -1, tid = -1;
    uint32_t depth = 99;
    mp_assert_rc(mp_manager_lock(m, "OL", &l), 1);
    mp_assert_rc(mp_manager_rlock(m, "OR", &r), 1);
    /* Free: not locked, no owner, the outputs untouched. */
    mp_assert_rc(mp_lock_locked(l), 0);
    mp_assert_rc(mp_rlock_locked(r), 0);
    mp_assert_rc(mp_lock_owner(l, &pid, &tid), MP_ESRCH);
    mp_assert_rc(mp_rlock_owner(r, &pid, &tid, &depth), MP_ESRCH);
    cr_assert(pid == -1 && tid == -1 && depth == 99);

    mp_assert_ok(mp_lock_acquire(l, 0));
    mp_assert_ok(mp_rlock_acquire(r, 0));
    mp_assert_ok(mp_rlock_acquire(r, 0));
    mp_assert_rc(mp_lock_locked(l), 1);
    mp_assert_ok(mp_rlock_owner(r, &pid, &tid, &depth));
    cr_assert_eq(pid, getpid());
    cr_assert_eq(depth, 2); /* the holder knows its depth on every backend */
    cr_assert_eq(tid, on_redis() ? 0 : (pid_t)gettid());
    join_ok(start_child(observe_holder));

    mp_assert_ok(mp_rlock_release(r));
    mp_assert_ok(mp_rlock_owner(r, NULL, NULL, &depth));
    cr_assert_eq(depth, 1);
    mp_assert_ok(mp_rlock_release(r));
    mp_assert_ok(mp_lock_release(l));
    mp_assert_rc(mp_lock_locked(l), 0);
    mp_assert_rc(mp_rlock_locked(r), 0);
    mp_assert_rc(mp_lock_owner(l, &pid, &tid), MP_ESRCH);
    mp_assert_rc(mp_lock_owner(NULL, &pid, &tid), MP_EINVAL);
    mp_assert_rc(mp_lock_locked(NULL), MP_EINVAL);
    mp_rlock_destroy(r);
    mp_lock_destroy(l);
    mp_manager_close(m);
}

Test(msync, a_dead_holder_is_reported_until_taken_over)
{
    mp_manager *m = open_manager_q("lease=30");
    mp_lock *l;
    mp_event *held;
    mp_assert_rc(mp_manager_lock(m, "L", &l), 1);
    mp_assert_rc(mp_manager_event(m, "held", &held), 1);
    mp_process *p = start_child(hold_lock);
    mp_assert_ok(mp_event_wait(held, 20));
    pid_t child = mp_process_pid(p), pid = 0, tid = 0;
    mp_assert_ok(mp_process_kill(p));
    mp_assert_ok(mp_process_join(p, 20));
    mp_process_destroy(p);
    /* Locally the word still names the dead thread; on Redis its token
     * stays until the lease runs out. */
    mp_assert_rc(mp_lock_locked(l), 1);
    mp_assert_ok(mp_lock_owner(l, &pid, &tid));
    cr_assert_eq(pid, child);
    if (!on_redis()) {
        cr_assert_eq(tid, child); /* the child's only thread */
        mp_assert_rc(mp_lock_acquire(l, 20), MP_EOWNERDEAD);
        mp_assert_ok(mp_lock_owner(l, &pid, &tid));
        cr_assert_eq(pid, getpid());
        mp_assert_ok(mp_lock_consistent(l));
        mp_assert_ok(mp_lock_release(l));
    }
    mp_lock_destroy(l);
    mp_event_destroy(held);
    mp_manager_close(m);
}
