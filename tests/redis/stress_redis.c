/* Threads and processes on one Redis manager: the parent and PROCS child
 * processes (which use the handles their parent made: each process gets
 * its own connection) each run THREADS threads on the same handles, with
 * atomic dict increments, list appends, read-modify-writes that are right
 * only under the Redis lock, and through the public API a bounded queue
 * (each op puts then gets one message) and a value's atomic adds. At the
 * end every count must be exact and the queue empty.
 * Starts its own redis-server; runs under ASan and TSan too (the
 * connection's mutex is the only synchronisation around hiredis). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_internal.h"
#include "redis_server.h"
#include "stress.h"

#define PROCS   2
#define THREADS 3
#define OPS     100

static mp_test_redis srv;
static mp_manager *mgr;
static mp_dict *dict;
static mp_list *list;
static mp__redis *conn;
static mp_queue *queue;
static mp_value *count;

static void *worker(void *arg)
{
    (void)arg;
    mp__redis_lock *l;
    mp__redis_obj *v;
    STRESS_OK(mp__redis_lock_open(&l, conn, "L", 0));
    STRESS_OK(mp__redis_obj_new(&v, conn, MP__MAGIC_RVALUE, NULL, "value", "guarded"));
    for (int i = 0; i < OPS; i++) {
        STRESS_OK(mp_dict_add_int64(dict, "n", 1, NULL));
        STRESS_OK(mp_list_append(list, &MP_ITEM_INT64(i)));
        /* A read-modify-write that is only right under the lock. */
        int rc = mp__redis_lock_acquire(l, 30);
        STRESS_CHECK(rc == 0, "acquire: %s", mp_err_name(rc));
        int64_t x;
        STRESS_OK(mp__redis_value_get_int64(v, &x));
        STRESS_OK(mp__redis_value_set_int64(v, x + 1));
        STRESS_OK(mp__redis_lock_release(l));
        STRESS_OK(mp_queue_put(queue, &i, sizeof(i), 30));
        int got;
        size_t n;
        STRESS_OK(mp_queue_get_into(queue, &got, sizeof(got), &n, 30));
        STRESS_CHECK(n == sizeof(got), "message of %zu bytes", n);
        STRESS_OK(mp_value_add_i64(count, 1, NULL));
    }
    mp__redis_obj_free(v);
    mp__redis_lock_close(l);
    return NULL;
}

static int run_threads(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        STRESS_CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    return 0;
}

static int child(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return run_threads();
}

int main(void)
{
    STRESS_DEADLINE(240);
    STRESS_CHECK(mp_test_redis_start(&srv, "pw") == 0, "%s", srv.error);
    STRESS_OK(mp_manager_open(&mgr, srv.url));
    STRESS_CHECK(mp_manager_dict(mgr, "d", &dict) == 1, "dict");
    STRESS_CHECK(mp_manager_list(mgr, "l", &list) == 1, "list");
    STRESS_CHECK(mp_manager_queue(mgr, "q", &(mp_queue_opts){.maxsize = 4}, &queue) == 1, "queue");
    STRESS_CHECK(mp_manager_value(mgr, "c", &(mp_value_opts){.typecode = 'q'}, &count) == 1,
                 "value");
    mp__redis_url u;
    STRESS_OK(mp__redis_url_parse(&u, srv.url));
    STRESS_OK(mp__redis_open(&conn, &u));
    mp_process *p[PROCS];
    for (int i = 0; i < PROCS; i++) {
        STRESS_OK(mp_process_create(&p[i], &(mp_process_opts){.target = child}));
        STRESS_OK(mp_process_start(p[i]));
    }
    run_threads(); /* the parent works too */
    for (int i = 0; i < PROCS; i++) {
        int code = -1;
        STRESS_OK(mp_process_join(p[i], 200));
        STRESS_OK(mp_process_exitcode(p[i], &code));
        STRESS_CHECK(code == 0, "child %d exit code %d", i, code);
        mp_process_destroy(p[i]);
    }
    const int64_t total = (PROCS + 1) * THREADS * OPS;
    int64_t n;
    size_t len;
    STRESS_OK(mp_dict_get_int64(dict, "n", &n));
    STRESS_CHECK(n == total, "dict counter %lld, want %lld", (long long)n, (long long)total);
    STRESS_OK(mp_list_len(list, &len));
    STRESS_CHECK((int64_t)len == total, "list length %zu", len);
    mp__redis_obj *v;
    STRESS_OK(mp__redis_obj_new(&v, conn, MP__MAGIC_RVALUE, NULL, "value", "guarded"));
    STRESS_OK(mp__redis_value_get_int64(v, &n));
    STRESS_CHECK(n == total, "guarded counter %lld: the lock let two holders in", (long long)n);
    mp__redis_obj_free(v);
    STRESS_OK(mp_value_get_i64(count, &n));
    STRESS_CHECK(n == total, "value counter %lld", (long long)n);
    STRESS_CHECK(mp_queue_empty(queue) == 1, "queue not empty");
    mp_value_destroy(count);
    mp_queue_destroy(queue);
    mp_dict_destroy(dict);
    mp_list_destroy(list);
    mp__redis_unref(conn);
    mp_manager_close(mgr);
    mp_test_redis_stop(&srv, 0);
    puts("stress_redis: ok");
    return 0;
}
