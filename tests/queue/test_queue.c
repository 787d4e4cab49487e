/* Tests of queues: semantics, every error path, timeouts, zero copy,
 * JoinableQueue, mp_wait, dead holders, fd counts. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_test.h"
#include "queue/queue_internal.h"

TestSuite(queue, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

static mp_queue *make(const mp_queue_opts *o)
{
    mp_queue *q = NULL;
    mp_assert_ok(mp_queue_create(&q, o));
    return q;
}

static void put_str(mp_queue *q, const char *s)
{
    mp_assert_ok(mp_queue_put(q, s, strlen(s) + 1, MP_FOREVER));
}

static void expect_str(mp_queue *q, const char *s)
{
    char buf[256];
    size_t len = 0;
    mp_assert_ok(mp_queue_get_into(q, buf, sizeof buf, &len, 5));
    cr_assert_eq(len, strlen(s) + 1);
    cr_assert_str_eq(buf, s);
}

Test(queue, fifo_and_sizes)
{
    mp_queue *q = make(NULL);
    mp_assert_rc(mp_queue_empty(q), 1);
    put_str(q, "a");
    put_str(q, "bb");
    mp_assert_ok(mp_queue_put(q, NULL, 0, 0)); /* an empty message */
    size_t n = 0;
    mp_assert_ok(mp_queue_qsize(q, &n));
    cr_assert_eq(n, 3);
    mp_assert_rc(mp_queue_empty(q), 0);
    mp_assert_rc(mp_queue_full(q), 0);
    expect_str(q, "a");
    void *data;
    size_t len;
    mp_assert_ok(mp_queue_get(q, &data, &len, 0));
    cr_assert_eq(len, 3);
    cr_assert_str_eq(data, "bb");
    free(data);
    mp_assert_ok(mp_queue_get(q, &data, &len, 0));
    cr_assert_eq(len, 0);
    cr_assert_not_null(data);
    free(data);
    mp_assert_rc(mp_queue_get_nowait(q, &data, &len), MP_EEMPTY);
    mp_queue_destroy(q);
}

Test(queue, nowait_on_full_and_empty)
{
    mp_queue *q = make(&(mp_queue_opts){.maxsize = 2});
    mp_assert_ok(mp_queue_put_nowait(q, "x", 1));
    mp_assert_ok(mp_queue_put_nowait(q, "y", 1));
    mp_assert_rc(mp_queue_full(q), 1);
    mp_assert_rc(mp_queue_put_nowait(q, "z", 1), MP_EFULL);
    size_t n;
    mp_assert_ok(mp_queue_qsize(q, &n));
    cr_assert_eq(n, 2, "a refused put changed nothing");
    char c;
    size_t len;
    mp_assert_ok(mp_queue_get_into(q, &c, 1, &len, 0));
    mp_assert_ok(mp_queue_get_into(q, &c, 1, &len, 0));
    cr_assert_eq(c, 'y');
    mp_assert_rc(mp_queue_get_into(q, &c, 1, &len, 0), MP_EEMPTY);
    mp_queue_destroy(q);
}

Test(queue, timed_waits_report_full_and_empty_not_timedout)
{
    mp_queue *q = make(&(mp_queue_opts){.maxsize = 1});
    mp_assert_ok(mp_queue_put(q, "x", 1, 0));
    double t0 = mp_test_now();
    mp_assert_rc(mp_queue_put(q, "y", 1, 0.1), MP_EFULL);
    cr_assert_geq(mp_test_now() - t0, 0.09);
    char c;
    size_t len;
    mp_assert_ok(mp_queue_get_into(q, &c, 1, &len, 0.1));
    t0 = mp_test_now();
    mp_assert_rc(mp_queue_get_into(q, &c, 1, &len, 0.1), MP_EEMPTY);
    cr_assert_geq(mp_test_now() - t0, 0.09);
    mp_queue_destroy(q);
}

Test(queue, byte_capacity_and_message_too_large)
{
    mp_queue *q = make(&(mp_queue_opts){.max_bytes = 10});
    mp_assert_rc(mp_queue_put(q, "0123456789A", 11, MP_FOREVER), MP_EMSGSIZE);
    mp_assert_ok(mp_queue_put(q, "0123456", 7, 0));
    mp_assert_rc(mp_queue_put(q, "abcd", 4, 0), MP_EFULL);
    mp_assert_ok(mp_queue_put(q, "abc", 3, 0));
    mp_assert_rc(mp_queue_full(q), 1);
    void *big;
    mp_assert_rc(mp_queue_reserve(q, 11, &big, 0), MP_EMSGSIZE);
    size_t n;
    mp_assert_ok(mp_queue_qsize(q, &n));
    cr_assert_eq(n, 2);
    mp_queue_destroy(q);
}

Test(queue, bad_arguments)
{
    mp_queue *q = make(NULL);
    mp_queue *bad;
    mp_assert_rc(mp_queue_create(NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_queue_create(&bad, &(mp_queue_opts){.simple = true, .maxsize = 3}), MP_EINVAL);
    mp_assert_rc(mp_queue_put(q, NULL, 3, 0), MP_EINVAL);
    mp_assert_rc(mp_queue_put(NULL, "x", 1, 0), MP_EINVAL);
    /* A foreign object at least as large as an object header (the Redis
     * dispatch reads the header's backend field first). */
    long long local[2] = {0};
    mp_assert_rc(mp_queue_put((mp_queue *)local, "x", 1, 0), MP_EINVAL);
    mp_assert_rc(mp_queue_put(q, "x", MP_QUEUE_MAX_MESSAGE + 1, 0), MP_EMSGSIZE);
    mp_assert_rc(mp_queue_put(q, "x", SIZE_MAX, 0), MP_EMSGSIZE);
    mp_assert_rc(mp_queue_put(q, "x", 1, 0.0 / 0.0), MP_EINVAL);
    size_t len;
    void *d;
    mp_assert_rc(mp_queue_get(q, NULL, &len, 0), MP_EINVAL);
    mp_assert_rc(mp_queue_get_into(q, NULL, 4, &len, 0), MP_EINVAL);
    mp_assert_rc(mp_queue_get_into(q, local, 4, NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_queue_commit(q, local), MP_EINVAL);
    mp_assert_rc(mp_queue_release(q, NULL), MP_EINVAL);
    mp_assert_rc(mp_queue_task_done(q), MP_EINVAL); /* not joinable */
    mp_assert_rc(mp_queue_join(q, 0), MP_EINVAL);
    mp_assert_rc(mp_queue_qsize(q, NULL), MP_EINVAL);
    mp_assert_rc(mp_queue_empty(NULL), MP_EINVAL);
    mp_assert_rc(mp_queue_full(NULL), MP_EINVAL);
    mp_assert_rc(mp_queue_close(NULL), MP_EINVAL);
    mp_assert_rc(mp_queue_get_nowait(q, &d, &len), MP_EEMPTY);
    mp_queue_destroy(NULL);
    mp_queue_destroy(q);
}

Test(queue, get_into_too_small_keeps_the_message)
{
    mp_queue *q = make(NULL);
    put_str(q, "hello world");
    char small[4];
    size_t len = 0;
    mp_assert_rc(mp_queue_get_into(q, small, sizeof small, &len, 0), MP_EMSGSIZE);
    cr_assert_eq(len, 12);
    size_t n;
    mp_assert_ok(mp_queue_qsize(q, &n));
    cr_assert_eq(n, 1);
    expect_str(q, "hello world");
    mp_queue_destroy(q);
}

Test(queue, close_refuses_puts_and_drains_gets)
{
    mp_queue *q = make(NULL);
    put_str(q, "left");
    void *res;
    mp_assert_ok(mp_queue_reserve(q, 5, &res, 0));
    mp_assert_ok(mp_queue_close(q));
    mp_assert_ok(mp_queue_close(q));
    mp_assert_rc(mp_queue_put(q, "x", 1, MP_FOREVER), MP_ECLOSED);
    void *r2;
    mp_assert_rc(mp_queue_reserve(q, 1, &r2, 0), MP_ECLOSED);
    expect_str(q, "left");
    char c[8];
    size_t len;
    /* The reservation made before close may still be committed. */
    mp_assert_rc(mp_queue_get_into(q, c, sizeof c, &len, 0), MP_EEMPTY);
    memcpy(res, "late", 5);
    mp_assert_ok(mp_queue_commit(q, res));
    expect_str(q, "late");
    mp_assert_rc(mp_queue_get_into(q, c, sizeof c, &len, MP_FOREVER), MP_ECLOSED);
    mp_assert_rc(mp_queue_empty(q), 1);
    mp_queue_destroy(q);
}

Test(queue, batches)
{
    mp_queue *q = make(&(mp_queue_opts){.maxsize = 3});
    mp_queue_msg m[4] = {{"a", 1}, {"bb", 2}, {"ccc", 3}, {"dddd", 4}};
    mp_assert_rc(mp_queue_put_many(q, m, 4, 0), 3);
    mp_assert_rc(mp_queue_put_many(q, m + 3, 1, 0), MP_EFULL);
    mp_queue_msg bad[2] = {{"a", 1}, {NULL, 2}};
    mp_assert_rc(mp_queue_put_many(q, bad, 2, 0), MP_EINVAL);
    char buf[16];
    size_t lens[4];
    mp_assert_rc(mp_queue_get_many(q, buf, 1, lens, 4, 0), 1);
    cr_assert_eq(lens[0], 1);
    mp_assert_rc(mp_queue_get_many(q, buf, 1, lens, 4, 0), MP_EMSGSIZE);
    cr_assert_eq(lens[0], 2);
    mp_assert_rc(mp_queue_get_many(q, buf, sizeof buf, lens, 4, 0), 2);
    cr_assert_eq(lens[1], 3);
    cr_assert(memcmp(buf, "bbccc", 5) == 0);
    mp_assert_rc(mp_queue_get_many(q, buf, sizeof buf, lens, 4, 0), MP_EEMPTY);
    mp_assert_rc(mp_queue_put_many(q, m, 0, 0), 0);
    mp_queue_destroy(q);
}

Test(queue, zero_copy_reserve_commit_peek_release)
{
    mp_queue *q = make(&(mp_queue_opts){.maxsize = 1});
    void *buf;
    mp_assert_ok(mp_queue_reserve(q, 1 << 20, &buf, 0));
    cr_assert_eq((uintptr_t)buf % 16, 0);
    mp_assert_rc(mp_queue_put_nowait(q, "x", 1), MP_EFULL); /* the reservation counts */
    mp_assert_rc(mp_queue_empty(q), 1);
    memset(buf, 7, 1 << 20);
    mp_assert_ok(mp_queue_commit(q, buf));
    mp_assert_rc(mp_queue_commit(q, buf), MP_EINVAL);
    const void *p;
    size_t len;
    mp_assert_ok(mp_queue_peek(q, &p, &len, 0));
    cr_assert_eq(len, 1 << 20);
    cr_assert_eq(((const unsigned char *)p)[12345], 7);
    cr_assert_eq(p, buf, "no copy: the consumer reads where the producer wrote");
    mp_assert_ok(mp_queue_put_nowait(q, "x", 1)); /* peeked: no longer counted */
    mp_assert_ok(mp_queue_release(q, p));
    mp_assert_rc(mp_queue_release(q, p), MP_EINVAL);
    mp_assert_rc(mp_queue_reserve(q, 0, &buf, 0), MP_EFULL);
    char c;
    mp_assert_ok(mp_queue_get_into(q, &c, 1, &len, 0));
    mp_assert_ok(mp_queue_reserve(q, 4, &buf, 0));
    mp_assert_ok(mp_queue_abort(q, buf));
    mp_assert_rc(mp_queue_get_into(q, &c, 1, &len, 0), MP_EEMPTY);
    mp_queue_destroy(q);
}

Test(queue, large_messages_copy_intact)
{
    mp_queue *q = make(&(mp_queue_opts){.maxsize = 2});
    size_t n = (size_t)3 << 20;
    unsigned char *a = malloc(n), *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        a[i] = (unsigned char)(i * 31 + 7);
    mp_assert_ok(mp_queue_put(q, a, n, 0));
    mp_assert_ok(mp_queue_put(q, a, 100000, 0));
    size_t len;
    mp_assert_rc(mp_queue_get_into(q, b, n - 1, &len, 0), MP_EMSGSIZE);
    cr_assert_eq(len, n);
    mp_assert_ok(mp_queue_get_into(q, b, n, &len, 0));
    cr_assert(memcmp(a, b, n) == 0);
    void *d;
    mp_assert_ok(mp_queue_get(q, &d, &len, 0));
    cr_assert_eq(len, 100000);
    cr_assert(memcmp(a, d, len) == 0);
    free(d);
    free(a);
    free(b);
    mp_queue_destroy(q);
}

Test(queue, joinable_task_done_and_join)
{
    mp_queue *q = make(&(mp_queue_opts){.joinable = true});
    mp_assert_ok(mp_queue_join(q, 0));
    mp_assert_rc(mp_queue_task_done(q), MP_ETOOMANYDONE);
    void *buf;
    mp_assert_ok(mp_queue_reserve(q, 3, &buf, 0));
    mp_assert_ok(mp_queue_join(q, 0)); /* a reservation is not a task yet */
    put_str(q, "t1");
    memcpy(buf, "t2", 3);
    mp_assert_ok(mp_queue_commit(q, buf));
    mp_assert_rc(mp_queue_join(q, 0.05), MP_ETIMEDOUT);
    expect_str(q, "t2");
    expect_str(q, "t1");
    mp_assert_ok(mp_queue_task_done(q));
    mp_assert_rc(mp_queue_join(q, 0), MP_ETIMEDOUT);
    mp_assert_ok(mp_queue_task_done(q));
    mp_assert_ok(mp_queue_join(q, 0));
    mp_assert_rc(mp_queue_task_done(q), MP_ETOOMANYDONE);
    mp_queue_destroy(q);
}

static int consume_and_mark_done(const void *arg, size_t len)
{
    (void)len;
    mp_queue *q = (mp_queue *)arg;
    char buf[16];
    size_t n;
    for (int i = 0; i < 3; i++) {
        if (mp_queue_get_into(q, buf, sizeof buf, &n, 10) < 0)
            return 1;
        usleep(10000);
        if (mp_queue_task_done(q) < 0)
            return 2;
    }
    return 0;
}

static mp_process *start(mp_target_fn fn, void *arg)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = fn, .args = arg}));
    mp_assert_ok(mp_process_start(p));
    return p;
}

static void join_ok(mp_process *p)
{
    mp_assert_ok(mp_process_join(p, 20));
    int code = -1;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0, "child exit code %d", code);
    mp_process_destroy(p);
}

Test(queue, join_waits_for_another_process)
{
    mp_queue *q = make(&(mp_queue_opts){.joinable = true});
    mp_process *p = start(consume_and_mark_done, q);
    put_str(q, "a");
    put_str(q, "b");
    put_str(q, "c");
    mp_assert_ok(mp_queue_join(q, 20));
    join_ok(p);
    mp_queue_destroy(q);
}

static int put_abc_and_exit(const void *arg, size_t len)
{
    (void)len;
    mp_queue *q = (mp_queue *)arg;
    for (char c = 'A'; c <= 'C'; c++)
        if (mp_queue_put(q, &c, 1, 10) < 0)
            return 1;
    return 0; /* exits at once: nothing is left in flight */
}

Test(queue, child_puts_and_exits_parent_gets_in_order)
{
    mp_queue *q = make(NULL);
    mp_process *p = start(put_abc_and_exit, q);
    join_ok(p);
    for (char want = 'A'; want <= 'C'; want++) {
        char c;
        size_t len;
        mp_assert_ok(mp_queue_get_into(q, &c, 1, &len, 0));
        cr_assert_eq(c, want);
    }
    mp_queue_destroy(q);
}

static int put_after_delay(const void *arg, size_t len)
{
    (void)len;
    usleep(100000);
    return mp_queue_put((mp_queue *)arg, "w", 1, 10) < 0;
}

Test(queue, blocked_get_wakes_on_put_from_another_process)
{
    mp_queue *q = make(NULL);
    mp_process *p = start(put_after_delay, q);
    char c;
    size_t len;
    mp_assert_ok(mp_queue_get_into(q, &c, 1, &len, 20));
    cr_assert_eq(c, 'w');
    join_ok(p);
    mp_queue_destroy(q);
}

static int get_after_delay(const void *arg, size_t len)
{
    (void)len;
    usleep(100000);
    char c;
    size_t n;
    return mp_queue_get_into((mp_queue *)arg, &c, 1, &n, 10) < 0;
}

Test(queue, blocked_put_wakes_on_get_from_another_process)
{
    mp_queue *q = make(&(mp_queue_opts){.maxsize = 1});
    put_str(q, "");
    mp_process *p = start(get_after_delay, q);
    mp_assert_ok(mp_queue_put(q, "z", 1, 20));
    join_ok(p);
    mp_queue_destroy(q);
}

static int close_after_delay(const void *arg, size_t len)
{
    (void)len;
    usleep(100000);
    return mp_queue_close((mp_queue *)arg) < 0;
}

Test(queue, close_wakes_blocked_getters)
{
    mp_queue *q = make(NULL);
    mp_process *p = start(close_after_delay, q);
    char c;
    size_t len;
    mp_assert_rc(mp_queue_get_into(q, &c, 1, &len, 20), MP_ECLOSED);
    join_ok(p);
    mp_queue_destroy(q);
}

Test(queue, mp_wait_on_queue_with_process)
{
    mp_queue *q = make(NULL);
    mp_process *p = start(put_after_delay, q);
    mp_waitable w[] = {MP_WAIT_QUEUE(q)};
    cr_assert_eq(mp_wait(w, 1, 0), 0);
    cr_assert_eq(mp_wait(w, 1, 20), 1);
    cr_assert(w[0].ready);
    char c;
    size_t len;
    mp_assert_ok(mp_queue_get_into(q, &c, 1, &len, 0));
    join_ok(p);
    mp_waitable w2[] = {MP_WAIT_QUEUE(q)};
    cr_assert_eq(mp_wait(w2, 1, 0.05), 0);
    mp_assert_ok(mp_queue_close(q));
    cr_assert_eq(mp_wait(w2, 1, 1), 1, "a closed queue is ready (get returns at once)");
    mp_waitable bad[] = {MP_WAIT_QUEUE(NULL)};
    mp_assert_rc(mp_wait(bad, 1, 0), MP_EINVAL);
    mp_queue_destroy(q);
}

static int reserve_and_die(const void *arg, size_t len)
{
    (void)len;
    void *buf;
    if (mp_queue_reserve((mp_queue *)arg, 100, &buf, 10) < 0)
        return 1;
    raise(SIGKILL);
    return 2;
}

Test(queue, reservation_of_a_dead_producer_is_reclaimed)
{
    mp_queue *q = make(&(mp_queue_opts){.maxsize = 1});
    mp_process *p = start(reserve_and_die, q);
    mp_assert_ok(mp_process_join(p, 20));
    mp_process_destroy(p);
    mp_assert_rc(mp_queue_put(q, "x", 1, 0), MP_EFULL);
    mp_assert_ok(mp_queue_put(q, "x", 1, 20)); /* reclaimed while waiting */
    mp_queue_destroy(q);
}

static int peek_and_die(const void *arg, size_t len)
{
    (void)len;
    const void *d;
    size_t n;
    if (mp_queue_peek((mp_queue *)arg, &d, &n, 10) < 0)
        return 1;
    raise(SIGKILL);
    return 2;
}

Test(queue, peek_of_a_dead_consumer_is_reclaimed)
{
    mp_queue *q = make(&(mp_queue_opts){.max_bytes = 8});
    put_str(q, "1234567");
    mp_process *p = start(peek_and_die, q);
    mp_assert_ok(mp_process_join(p, 20));
    mp_process_destroy(p);
    mp_assert_rc(mp_queue_empty(q), 1);
    mp_assert_ok(mp_queue_put(q, "abcdefg", 8, 20));
    expect_str(q, "abcdefg");
    mp_queue_destroy(q);
}

static int release_foreign(const void *arg, size_t len)
{
    (void)len;
    const void *const *pp = arg;
    mp_queue *q = (mp_queue *)pp[0];
    return mp_queue_release(q, pp[1]) == MP_EPERM ? 0 : 1;
}

Test(queue, release_by_another_process_is_eperm)
{
    mp_queue *q = make(NULL);
    put_str(q, "m");
    const void *d;
    size_t len;
    mp_assert_ok(mp_queue_peek(q, &d, &len, 0));
    const void *args[2] = {q, d};
    mp_process *p;
    mp_assert_ok(mp_process_create(
        &p, &(mp_process_opts){.target = release_foreign, .args = args, .args_len = sizeof args}));
    mp_assert_ok(mp_process_start(p));
    join_ok(p);
    mp_assert_ok(mp_queue_release(q, d));
    mp_queue_destroy(q);
}

Test(queue, many_messages_cross_segments)
{
    mp_queue *q = make(NULL);
    for (uint32_t i = 0; i < 20000; i++)
        mp_assert_ok(mp_queue_put(q, &i, sizeof i, 0));
    for (uint32_t i = 0; i < 20000; i++) {
        uint32_t v;
        size_t len;
        mp_assert_ok(mp_queue_get_into(q, &v, sizeof v, &len, 0));
        cr_assert_eq(v, i);
    }
    mp_assert_rc(mp_queue_empty(q), 1);
    mp_queue_destroy(q);
}

/* A holder killed between publishing a record and updating the counters:
 * the next locker is handed the lock with EOWNERDEAD and recounts. */
static int die_holding_the_lock(const void *arg, size_t len)
{
    (void)len;
    mp_queue *q = (mp_queue *)arg;
    if (mp__queue_lock(q) < 0)
        return 1;
    mp__qrec *r;
    if (mp__qstore_append(q, "dead", 5, MP__QREC_COMMITTED, &r) < 0)
        return 2;
    atomic_store(&q->count, 0); /* as if killed before the count was raised */
    raise(SIGKILL);
    return 3;
}

Test(queue, lock_holder_killed_mid_update_is_repaired)
{
    mp_queue *q = make(&(mp_queue_opts){.maxsize = 4});
    put_str(q, "before");
    mp_process *p = start(die_holding_the_lock, q);
    mp_assert_ok(mp_process_join(p, 20));
    int code = 0;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, -SIGKILL);
    mp_process_destroy(p);
    put_str(q, "after"); /* takes the lock with EOWNERDEAD and repairs */
    size_t n;
    mp_assert_ok(mp_queue_qsize(q, &n));
    cr_assert_eq(n, 3);
    expect_str(q, "before");
    expect_str(q, "dead");
    expect_str(q, "after");
    mp_assert_rc(mp_queue_empty(q), 1);
    mp_queue_destroy(q);
}

/* ---- the ring of small messages ------------------------------------------ */

Test(queue, ring_and_chain_keep_each_producers_order)
{
    mp_queue *q = make(NULL);
    size_t big = (size_t)100 * 1024;
    char *b = calloc(1, big);
    cr_assert_not_null(b);
    put_str(q, "ring");                       /* small: the ring */
    mp_assert_ok(mp_queue_put(q, b, big, 0)); /* large: the chain */
    put_str(q, "behind the large one");       /* must stay behind it */
    void *slot;
    mp_assert_ok(mp_queue_reserve(q, 8, &slot, 0)); /* a reservation first */
    put_str(q, "after the reservation");
    size_t n = 0;
    mp_assert_ok(mp_queue_qsize(q, &n));
    cr_assert_eq(n, 4);
    expect_str(q, "ring");
    size_t len = 0;
    mp_assert_ok(mp_queue_get_into(q, b, big, &len, 5));
    cr_assert_eq(len, big);
    expect_str(q, "behind the large one");
    expect_str(q, "after the reservation"); /* the reservation is skipped */
    memcpy(slot, "reserved", 8);
    mp_assert_ok(mp_queue_commit(q, slot));
    char buf[8];
    mp_assert_ok(mp_queue_get_into(q, buf, sizeof buf, &len, 5));
    cr_assert(len == 8 && memcmp(buf, "reserved", 8) == 0);
    put_str(q, "ring again"); /* the chain is empty: the ring again */
    expect_str(q, "ring again");
    mp_assert_rc(mp_queue_empty(q), 1);
    free(b);
    mp_queue_destroy(q);
}

Test(queue, maxsize_counts_ring_and_reservations)
{
    mp_queue *q = make(&(mp_queue_opts){.maxsize = 3});
    put_str(q, "a");
    void *slot;
    mp_assert_ok(mp_queue_reserve(q, 1, &slot, 0));
    put_str(q, "b");
    mp_assert_rc(mp_queue_put(q, "c", 2, 0), MP_EFULL);
    mp_assert_rc(mp_queue_full(q), 1);
    expect_str(q, "a");
    mp_assert_ok(mp_queue_put(q, "c", 2, 0));
    mp_assert_ok(mp_queue_abort(q, slot));
    expect_str(q, "b");
    expect_str(q, "c");
    mp_assert_rc(mp_queue_empty(q), 1);
    mp_queue_destroy(q);
}

Test(queue, peek_of_a_ring_message_holds_it_until_release)
{
    mp_queue *q = make(NULL);
    put_str(q, "held");
    put_str(q, "next");
    const void *d;
    size_t len;
    mp_assert_ok(mp_queue_peek(q, &d, &len, 0));
    cr_assert_eq(len, 5);
    cr_assert_str_eq(d, "held");
    size_t n = 0;
    mp_assert_ok(mp_queue_qsize(q, &n));
    cr_assert_eq(n, 1);
    expect_str(q, "next");
    mp_assert_ok(mp_queue_release(q, d));
    mp_assert_rc(mp_queue_release(q, d), MP_EINVAL);
    mp_assert_rc(mp_queue_empty(q), 1);
    mp_queue_destroy(q);
}

/* A producer killed between claiming a ring slot and publishing it: the
 * slot names it, as mp__qring_put leaves it at that instant. */
static int claim_a_slot_and_die(const void *arg, size_t len)
{
    (void)len;
    mp_queue *q = (mp_queue *)arg;
    (void)mp__qring_used(q); /* steps enq over finished slots */
    uint64_t e = atomic_load(&q->enq);
    mp__qslot *s = &q->ring[e & (((uint64_t)1 << q->ring_shift) - 1)];
    uint64_t w = atomic_load(&s->word); /* FREE for position e */
    if ((w & 3) != 0)
        return 1;
    atomic_store(&s->word, w | (uint64_t)getpid() << 2 | 1);
    raise(SIGKILL);
    return 2;
}

static void run_and_die(mp_queue *q)
{
    mp_process *p = start(claim_a_slot_and_die, q);
    mp_assert_ok(mp_process_join(p, 20));
    int code = 0;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, -SIGKILL);
    mp_process_destroy(p);
}

Test(queue, ring_slot_of_a_dead_producer_is_dropped)
{
    mp_queue *q = make(NULL);
    run_and_die(q);
    put_str(q, "one"); /* behind the dead producer's slot */
    put_str(q, "two");
    char buf[8];
    size_t len;
    mp_assert_ok(mp_queue_get_into(q, buf, sizeof buf, &len, 0)); /* looks before giving up */
    cr_assert_str_eq(buf, "one");
    expect_str(q, "two");
    run_and_die(q);
    put_str(q, "three");
    expect_str(q, "three"); /* found while waiting */
    mp_assert_rc(mp_queue_empty(q), 1);
    mp_queue_destroy(q);
}

Test(queue, ring_slot_of_a_dead_producer_frees_its_room)
{
    mp_queue *q = make(&(mp_queue_opts){.maxsize = 1});
    run_and_die(q);
    mp_assert_rc(mp_queue_empty(q), 1); /* the dead slot does not count */
    run_and_die(q);
    size_t n = 1;
    mp_assert_ok(mp_queue_qsize(q, &n));
    cr_assert_eq(n, 0);
    run_and_die(q);
    mp_assert_rc(mp_queue_put(q, "x", 2, 0), MP_EFULL);
    mp_assert_ok(mp_queue_put(q, "x", 2, 20)); /* dropped while waiting */
    expect_str(q, "x");
    mp_queue_destroy(q);
}
