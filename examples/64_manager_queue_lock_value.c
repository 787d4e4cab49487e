/* 64_manager_queue_lock_value — a Queue, a Lock and a Value of a Manager,
 * found by name in spawned children.
 *
 *     mgr = Manager()
 *     q, lock, total = mgr.Queue(), mgr.Lock(), mgr.Value('i', 0)
 *     def producer(n):
 *         for i in range(1, 6): q.put(n * 100 + i)
 *     def consumer():
 *         while (x := q.get()) is not None:
 *             with lock: total.value += x
 *
 * Two producers put five numbers each, two consumers add them up under the
 * lock until each gets the end mark. The children are started by spawn (a
 * fresh run of the program, which shares nothing with the parent but the
 * family's shared heap): they get no pointer, only names, and the manager
 * finds the objects there.
 */
#include <inttypes.h>
#include <stdio.h>

#include <multiproc.h>

#define END (-1)

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* The three named objects, as every process opens them. */
static int open_all(mp_manager **m, mp_queue **q, mp_lock **lock, mp_value **total)
{
    int rc = mp_manager_open(m, "local");
    if (rc >= 0)
        rc = mp_manager_queue(*m, "numbers", NULL, q);
    if (rc >= 0)
        rc = mp_manager_lock(*m, "lock", lock);
    if (rc >= 0)
        rc = mp_manager_value(*m, "total", &(mp_value_opts){.typecode = 'i'}, total);
    return rc < 0 ? rc : 0;
}

static int producer(const void *arg, size_t len)
{
    (void)len;
    int n = *(const int *)arg;
    mp_manager *m;
    mp_queue *q;
    mp_lock *lock;
    mp_value *total;
    if (open_all(&m, &q, &lock, &total) < 0)
        return 1;
    for (int i = 1; i <= 5; i++) {
        int x = n * 100 + i;
        if (mp_queue_put(q, &x, sizeof x, MP_FOREVER) < 0)
            return 1;
    }
    mp_manager_close(m);
    return 0;
}

static int consumer(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m;
    mp_queue *q;
    mp_lock *lock;
    mp_value *total;
    if (open_all(&m, &q, &lock, &total) < 0)
        return 1;
    for (;;) {
        int x;
        size_t n;
        int64_t sum;
        if (mp_queue_get_into(q, &x, sizeof x, &n, MP_FOREVER) < 0)
            return 1;
        if (x == END)
            break;
        if (mp_lock_acquire(lock, MP_FOREVER) < 0)
            return 1;
        int rc = mp_value_get_i64(total, &sum);
        if (rc >= 0)
            rc = mp_value_set_i64(total, sum + x);
        mp_lock_release(lock);
        if (rc < 0)
            return 1;
    }
    mp_manager_close(m);
    return 0;
}

static int start(mp_process **p, mp_target_fn fn, int n)
{
    int rc = mp_process_create(
        p, &(mp_process_opts){
               .target = fn, .args = &n, .args_len = sizeof n, .start_method = MP_START_SPAWN});
    return rc < 0 ? rc : mp_process_start(*p);
}

static int join_all(mp_process **p, int n)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int code = -1;
        if (mp_process_join(p[i], MP_FOREVER) < 0 || mp_process_exitcode(p[i], &code) < 0 ||
            code != 0)
            failed = 1;
    }
    return failed;
}

int main(void)
{
    mp_process *prod[2] = {NULL}, *cons[2] = {NULL};
    mp_manager *m = NULL;
    mp_queue *q;
    mp_lock *lock;
    mp_value *total;
    int status = 1, rc;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== two producers, two consumers: a named Queue, Lock and Value ===");
    if ((rc = open_all(&m, &q, &lock, &total)) < 0) {
        report("opening the named objects", rc);
        goto out;
    }
    for (int i = 0; i < 2; i++)
        if ((rc = start(&prod[i], producer, i + 1)) < 0 ||
            (rc = start(&cons[i], consumer, i)) < 0) {
            report("mp_process_create/start", rc);
            goto out;
        }
    if (join_all(prod, 2)) {
        fputs("a producer failed\n", stderr);
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        int end = END;
        if ((rc = mp_queue_put(q, &end, sizeof end, MP_FOREVER)) < 0) {
            report("mp_queue_put", rc);
            goto out;
        }
    }
    if (join_all(cons, 2)) {
        fputs("a consumer failed\n", stderr);
        goto out;
    }
    int64_t sum;
    if ((rc = mp_value_get_i64(total, &sum)) < 0) {
        report("mp_value_get_i64", rc);
        goto out;
    }
    printf("total.value = %" PRId64 "\n", sum);
    status = 0;
out:
    for (int i = 0; i < 2; i++) {
        mp_process_destroy(prod[i]);
        mp_process_destroy(cons[i]);
    }
    mp_manager_close(m);
    return status;
}
