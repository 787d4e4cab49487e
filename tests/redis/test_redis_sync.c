/* Tests of the Redis implementations of queues, locks, events and values
 * (internal functions of src/redis/redis_queue.c and src/redis/redis_sync.c, below the
 * public API that test_manager_sync.c covers). Each test starts
 * its own redis-server and fails when it cannot. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis/redis_internal.h"
#include "redis_server.h"

static mp_test_redis srv;

static void sync_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(redis_sync, .init = mp_test_fd_setup, .fini = sync_fini, .timeout = 60);

static mp__redis *connect_server(void)
{
    cr_assert(mp_test_redis_start(&srv, "pw") == 0, "cannot start redis-server: %s", srv.error);
    mp__redis_url u;
    mp__redis *r;
    mp_assert_ok(mp__redis_url_parse(&u, srv.url));
    mp_assert_ok(mp__redis_open(&r, &u));
    return r;
}

static int child_exit(mp_target_fn fn)
{
    mp_process *p;
    int code = -1;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = fn}));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp_process_join(p, 30));
    mp_assert_ok(mp_process_exitcode(p, &code));
    mp_process_destroy(p);
    return code;
}

/* ---- lock ----------------------------------------------------------------*/

Test(redis_sync, lock_excludes_and_checks_its_holder)
{
    mp__redis *r = connect_server();
    mp__redis_lock *a, *b;
    mp_assert_ok(mp__redis_lock_open(&a, r, "L", 0));
    mp_assert_ok(mp__redis_lock_open(&b, r, "L", 0));
    mp_assert_rc(mp__redis_lock_release(a), MP_EPERM); /* not held */
    mp_assert_ok(mp__redis_lock_acquire(a, 0));
    mp_assert_rc(mp__redis_lock_acquire(a, 0), MP_EDEADLK);
    mp_assert_rc(mp__redis_lock_acquire(b, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp__redis_lock_acquire(b, 0.1), MP_ETIMEDOUT);
    mp_assert_rc(mp__redis_lock_release(b), MP_EPERM); /* b does not hold it */
    mp_assert_ok(mp__redis_lock_renew(a));
    mp_assert_ok(mp__redis_lock_release(a));
    mp_assert_ok(mp__redis_lock_acquire(b, 1)); /* released normally: no EOWNERDEAD */
    mp_assert_ok(mp__redis_lock_release(b));
    mp_assert_rc(mp__redis_lock_acquire(NULL, 0), MP_EINVAL);
    mp__redis_lock_close(a);
    mp__redis_lock_close(b);
    mp__redis_unref(r);
}

static mp__redis *conn;

static int hold_and_die(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp__redis_lock *l;
    if (mp__redis_lock_open(&l, conn, "L", 0.3) < 0 || mp__redis_lock_acquire(l, 5) != 0)
        return 1;
    _exit(0); /* dies holding it */
}

Test(redis_sync, a_dead_holders_lock_frees_itself_with_eownerdead)
{
    conn = connect_server();
    cr_assert_eq(child_exit(hold_and_die), 0);
    mp__redis_lock *l;
    mp_assert_ok(mp__redis_lock_open(&l, conn, "L", 0.3));
    double t0 = mp_test_now();
    mp_assert_rc(mp__redis_lock_acquire(l, 10), MP_EOWNERDEAD); /* once the lease ran out */
    cr_assert_lt(mp_test_now() - t0, 10.0);
    mp_assert_ok(mp__redis_lock_release(l));
    mp_assert_ok(mp__redis_lock_acquire(l, 1)); /* the next holder finds it clean */
    /* A holder that overran its lease lost the lock: its release says so. */
    usleep(500000);
    mp_assert_rc(mp__redis_lock_release(l), MP_EPERM);
    mp__redis_lock_close(l);
    mp__redis_unref(conn);
}

/* ---- event ---------------------------------------------------------------*/

static int set_event_later(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp__redis_obj *e;
    usleep(100000);
    if (mp__redis_obj_new(&e, conn, MP__MAGIC_REVENT, &mp__redis_event_ops, "event", "E") < 0 ||
        mp__redis_event_set(e) < 0)
        return 1;
    mp__redis_obj_free(e);
    return 0;
}

Test(redis_sync, event_set_clear_wait)
{
    conn = connect_server();
    mp__redis_obj *e;
    mp_assert_ok(mp__redis_obj_new(&e, conn, MP__MAGIC_REVENT, &mp__redis_event_ops, "event", "E"));
    mp_assert_rc(mp__redis_event_is_set(e), 0);
    mp_assert_rc(mp__redis_event_wait(e, 0.05), MP_ETIMEDOUT);
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = set_event_later}));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp__redis_event_wait(e, 20));
    mp_assert_rc(mp__redis_event_is_set(e), 1);
    mp_assert_ok(mp_process_join(p, 20));
    mp_process_destroy(p);
    mp_assert_ok(mp__redis_event_clear(e));
    mp_assert_rc(mp__redis_event_is_set(e), 0);
    mp__redis_obj_free(e);
    mp__redis_unref(conn);
}

/* ---- value ---------------------------------------------------------------*/

static int add_100(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp__redis_obj *v;
    if (mp__redis_obj_new(&v, conn, MP__MAGIC_RVALUE, NULL, "value", "n") < 0)
        return 1;
    for (int i = 0; i < 100; i++)
        if (mp__redis_value_add_int64(v, 1, NULL) < 0)
            return 2;
    mp__redis_obj_free(v);
    return 0;
}

Test(redis_sync, values_add_atomically)
{
    conn = connect_server();
    mp__redis_obj *v, *f;
    mp_assert_ok(mp__redis_obj_new(&v, conn, MP__MAGIC_RVALUE, NULL, "value", "n"));
    mp_assert_ok(mp__redis_obj_new(&f, conn, MP__MAGIC_RVALUE, NULL, "value", "f"));
    int64_t i;
    mp_assert_ok(mp__redis_value_get_int64(v, &i));
    cr_assert_eq(i, 0); /* absent reads 0 */
    for (int k = 0; k < 3; k++)
        cr_assert_eq(child_exit(add_100), 0);
    mp_assert_ok(mp__redis_value_get_int64(v, &i));
    cr_assert_eq(i, 300);
    mp_assert_ok(mp__redis_value_set_int64(v, INT64_MAX));
    mp_assert_rc(mp__redis_value_add_int64(v, 1, NULL), MP_EOVERFLOW);
    mp_assert_ok(mp__redis_value_add_int64(v, -1, &i));
    cr_assert_eq(i, INT64_MAX - 1);
    double d;
    mp_assert_ok(mp__redis_value_set_double(f, 0.5));
    mp_assert_ok(mp__redis_value_add_double(f, 0.25, &d));
    cr_assert_eq(d, 0.75);
    mp_assert_ok(mp__redis_value_get_double(f, &d));
    cr_assert_eq(d, 0.75);
    mp_assert_rc(mp__redis_value_get_int64(f, &i), MP_EPROTO); /* "0.75" is no int64 */
    mp__redis_obj_free(v);
    mp__redis_obj_free(f);
    mp__redis_unref(conn);
}

/* ---- queue ---------------------------------------------------------------*/

static int put_later(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp__redis_queue *q;
    usleep(100000);
    if (mp__redis_queue_open(&q, conn, "Q", 0) < 0 || mp__redis_queue_put(q, "late", 4, 1) < 0)
        return 1;
    mp__redis_queue_close(q);
    return 0;
}

Test(redis_sync, queue_fifo_timeouts_and_maxsize)
{
    conn = connect_server();
    mp__redis_queue *q, *q2;
    mp_assert_ok(mp__redis_queue_open(&q, conn, "Q", 2));
    mp_assert_ok(mp__redis_queue_open(&q2, conn, "Q", 100)); /* the first opener's maxsize holds */
    void *m;
    size_t n;
    mp_assert_rc(mp__redis_queue_get(q, &m, &n, 0), MP_EEMPTY);
    double t0 = mp_test_now();
    mp_assert_rc(mp__redis_queue_get(q, &m, &n, 0.2), MP_EEMPTY);
    cr_assert_geq(mp_test_now() - t0, 0.15);
    mp_assert_ok(mp__redis_queue_put(q, "one", 3, 0));
    mp_assert_ok(mp__redis_queue_put(q, "", 0, 0));
    mp_assert_rc(mp__redis_queue_put(q2, "three", 5, 0), MP_EFULL);
    mp_assert_rc(mp__redis_queue_put(q2, "three", 5, 0.1), MP_EFULL);
    mp_assert_ok(mp__redis_queue_qsize(q, &n));
    cr_assert_eq(n, 2);
    mp_assert_ok(mp__redis_queue_get(q2, &m, &n, 1));
    cr_assert(n == 3 && memcmp(m, "one", 4) == 0);
    free(m);
    mp_assert_ok(mp__redis_queue_get(q2, &m, &n, 1));
    cr_assert_eq(n, 0);
    free(m);
    /* A blocked get is woken by a put from another process. */
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = put_later}));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp__redis_queue_get(q, &m, &n, 20));
    cr_assert(n == 4 && memcmp(m, "late", 4) == 0);
    free(m);
    mp_assert_ok(mp_process_join(p, 20));
    mp_process_destroy(p);
    mp_assert_rc(mp__redis_queue_put(q, NULL, 1, 0), MP_EINVAL);
    mp_assert_rc(mp__redis_queue_get(q, NULL, &n, 0), MP_EINVAL);
    mp__redis_queue_close(q);
    mp__redis_queue_close(q2);
    mp__redis_unref(conn);
}

Test(redis_sync, blocking_get_fails_cleanly_when_the_server_dies)
{
    conn = connect_server();
    mp__redis_queue *q;
    mp_assert_ok(mp__redis_queue_open(&q, conn, "Q", 0));
    kill(srv.pid, SIGKILL);
    void *m;
    size_t n;
    int rc = mp__redis_queue_get(q, &m, &n, 30);
    cr_assert(rc == MP_ECONNRESET || rc == MP_ECONNREFUSED, "gave %s", mp_err_name(rc));
    mp__redis_queue_close(q);
    mp__redis_unref(conn);
}
