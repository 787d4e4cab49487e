/* mp_error_detail() after refused arguments, module by module: each
 * failing call names itself first, then the argument and the reason. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "multiproc.h"
#include "mp_test.h"

TestSuite(details, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

/* expr must return code with a detail that starts with "fn: " and contains
 * each of the words given (the argument's name, the limit, ...). The
 * detail is cleared first, so that an older one cannot pass for it. */
#define assert_detail(expr, code, fn, ...)                                                         \
    do {                                                                                           \
        mp_error_clear();                                                                          \
        mp_assert_rc(expr, code);                                                                  \
        check_detail(#expr, fn, (const char *[]){__VA_ARGS__, NULL});                              \
    } while (0)

static void check_detail(const char *expr, const char *fn, const char **words)
{
    const char *d = mp_error_detail();
    size_t n = strlen(fn);
    cr_assert(strncmp(d, fn, n) == 0 && d[n] == ':',
              "%s: detail \"%s\" does not start with %s:", expr, d, fn);
    for (; *words; words++)
        cr_assert_not_null(strstr(d, *words), "%s: detail \"%s\" does not mention \"%s\"", expr, d,
                           *words);
}

/* ---- the contract --------------------------------------------------------- */

Test(details, a_success_leaves_the_detail_and_a_new_failure_replaces_it)
{
    mp_queue *q;
    mp_assert_ok(mp_queue_create(&q, NULL));
    assert_detail(mp_queue_put(q, NULL, 3, 0), MP_EINVAL, "mp_queue_put", "data");
    /* As documented: a call that succeeds does not touch the detail ... */
    mp_assert_ok(mp_queue_put(q, "abc", 3, 0));
    cr_assert_not_null(strstr(mp_error_detail(), "mp_queue_put: data"));
    /* ... a failure replaces it whole, and mp_error_clear empties it. */
    mp_assert_rc(mp_queue_task_done(q), MP_EINVAL);
    cr_assert_null(strstr(mp_error_detail(), "mp_queue_put"), "stale: %s", mp_error_detail());
    mp_error_clear();
    char buf[8];
    size_t len;
    mp_assert_ok(mp_queue_get_into(q, buf, sizeof buf, &len, 0));
    cr_assert_str_eq(mp_error_detail(), "");
    mp_queue_destroy(q);
}

/* ---- queue ------------------------------------------------------------------ */

Test(details, queue_create)
{
    mp_queue *q = NULL;
    assert_detail(mp_queue_create(NULL, NULL), MP_EINVAL, "mp_queue_create", "out is NULL");
    assert_detail(mp_queue_create(&q, &(mp_queue_opts){.simple = true, .maxsize = 3}), MP_EINVAL,
                  "mp_queue_create", "opts->simple", "opts->maxsize 3");
    assert_detail(mp_queue_create(&q, &(mp_queue_opts){.maxsize = MP_QUEUE_MAX_MESSAGE + 1}),
                  MP_EINVAL, "mp_queue_create", "opts->maxsize is 1099511627777");
    assert_detail(mp_queue_create(&q, &(mp_queue_opts){.max_bytes = (size_t)-1}), MP_EINVAL,
                  "mp_queue_create", "opts->max_bytes", "MP_QUEUE_MAX_MESSAGE");
    cr_assert_null(q);
}

Test(details, queue_put_and_get)
{
    mp_queue *q;
    mp_assert_ok(mp_queue_create(&q, &(mp_queue_opts){.max_bytes = 4}));
    uint64_t local[8] = {0};
    assert_detail(mp_queue_put(NULL, "a", 1, 0), MP_EINVAL, "mp_queue_put", "q is NULL");
    assert_detail(mp_queue_put((mp_queue *)(void *)local, "a", 1, 0), MP_EINVAL, "mp_queue_put",
                  "q (", "not in the shared heap");
    assert_detail(mp_queue_put(q, "a", 1, NAN), MP_EINVAL, "mp_queue_put", "timeout is NaN");
    assert_detail(mp_queue_put(q, "abcdef", 6, 0), MP_EMSGSIZE, "mp_queue_put", "len 6",
                  "max_bytes (4)");
    assert_detail(mp_queue_put_many(q, (mp_queue_msg[]){{"a", 1}, {NULL, 2}}, 2, 0), MP_EINVAL,
                  "mp_queue_put_many", "msgs[1].data");
    void *data;
    size_t len;
    assert_detail(mp_queue_get(q, NULL, &len, 0), MP_EINVAL, "mp_queue_get", "data is NULL");
    assert_detail(mp_queue_get(q, &data, &len, NAN), MP_EINVAL, "mp_queue_get", "timeout");
    assert_detail(mp_queue_get_into(q, NULL, 5, &len, 0), MP_EINVAL, "mp_queue_get_into",
                  "buf is NULL with cap 5");
    assert_detail(mp_queue_get_many(q, NULL, 0, NULL, 3, 0), MP_EINVAL, "mp_queue_get_many",
                  "lens is NULL with n 3");
    mp_queue_destroy(q);
}

Test(details, queue_reservations_and_joinable)
{
    mp_queue *q;
    mp_assert_ok(mp_queue_create(&q, NULL));
    void *buf;
    assert_detail(mp_queue_reserve(q, 8, NULL, 0), MP_EINVAL, "mp_queue_reserve", "buf is NULL");
    mp_assert_ok(mp_queue_reserve(q, 8, &buf, 0));
    mp_assert_ok(mp_queue_commit(q, buf));
    assert_detail(mp_queue_commit(q, buf), MP_EINVAL, "mp_queue_commit", "buf",
                  "not a live reservation");
    char other[32];
    assert_detail(mp_queue_abort(q, other + 16), MP_EINVAL, "mp_queue_abort", "buf",
                  "not a message buffer");
    assert_detail(mp_queue_release(q, NULL), MP_EINVAL, "mp_queue_release", "data is NULL");
    assert_detail(mp_queue_task_done(q), MP_EINVAL, "mp_queue_task_done", "joinable");
    assert_detail(mp_queue_join(q, 0), MP_EINVAL, "mp_queue_join", "joinable");
    mp_queue_destroy(q);

    mp_assert_ok(mp_queue_create(&q, &(mp_queue_opts){.joinable = true}));
    assert_detail(mp_queue_task_done(q), MP_ETOOMANYDONE, "mp_queue_task_done", "unfinished");
    assert_detail(mp_queue_join(q, NAN), MP_EINVAL, "mp_queue_join", "timeout is NaN");
    mp_queue_destroy(q);
}

Test(details, queue_put_names_the_message_the_heap_cannot_hold)
{
    mp_assert_ok(mp_init(&(mp_init_opts){.heap_size = (size_t)1 << 20}));
    mp_queue *q;
    mp_assert_ok(mp_queue_create(&q, NULL));
    static char msg[4000];
    int rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++)
        rc = mp_queue_put(q, msg, sizeof msg, 0);
    cr_assert_eq(rc, MP_ENOMEM, "a 1 MiB heap took 4 MB of messages (%s)", mp_err_name(rc));
    check_detail("mp_queue_put", "mp_queue_put",
                 (const char *[]){"4000 bytes", "shared heap", "MP_HEAP_SIZE", NULL});
    mp_queue_destroy(q);
}

/* ---- sync ------------------------------------------------------------------- */

static void *release_elsewhere(void *arg)
{
    mp_error_clear();
    int rc = mp_lock_release(arg);
    char *copy = strdup(mp_error_detail());
    return rc == MP_EPERM ? copy : NULL;
}

Test(details, lock)
{
    mp_lock *lock;
    assert_detail(mp_lock_create(NULL, NULL), MP_EINVAL, "mp_lock_create", "out is NULL");
    assert_detail(mp_lock_create(&lock, &(mp_lock_opts){.reserved = 7}), MP_EINVAL,
                  "mp_lock_create", "opts->reserved is 7");
    mp_assert_ok(mp_lock_create(&lock, NULL));
    assert_detail(mp_lock_acquire(NULL, 0), MP_EINVAL, "mp_lock_acquire", "lock is NULL");
    assert_detail(mp_lock_acquire(lock, NAN), MP_EINVAL, "mp_lock_acquire", "timeout is NaN");
    assert_detail(mp_lock_release(lock), MP_EPERM, "mp_lock_release", "not held");
    assert_detail(mp_lock_token(lock, NULL), MP_EINVAL, "mp_lock_token", "token is NULL");
    mp_assert_ok(mp_lock_acquire(lock, 0));
    assert_detail(mp_lock_consistent(lock), MP_EINVAL, "mp_lock_consistent", "owner-dead");
    /* Held here: another thread is told who holds it. */
    pthread_t t;
    void *detail = NULL;
    cr_assert_eq(pthread_create(&t, NULL, release_elsewhere, lock), 0);
    cr_assert_eq(pthread_join(t, &detail), 0);
    cr_assert_not_null(detail, "release by another thread was not MP_EPERM");
    char pid[32];
    snprintf(pid, sizeof pid, "held by pid %d", (int)getpid());
    cr_assert(strncmp(detail, "mp_lock_release: ", 17) == 0 && strstr(detail, pid), "%s",
              (char *)detail);
    free(detail);
    mp_assert_ok(mp_lock_release(lock));
    mp_rlock *r;
    mp_assert_ok(mp_rlock_create(&r, NULL));
    assert_detail(mp_rlock_acquire((mp_rlock *)(void *)lock, 0), MP_EINVAL, "mp_rlock_acquire",
                  "rlock (", "not a live rlock");
    assert_detail(mp_rlock_release(r), MP_EPERM, "mp_rlock_release", "rlock is not held");
    mp_rlock_destroy(r);
    mp_lock_destroy(lock);
}

Test(details, sem_event_cond_barrier)
{
    mp_sem *s;
    assert_detail(mp_sem_create(&s, &(mp_sem_opts){.value = MP_SEM_VALUE_MAX + 1u}), MP_EINVAL,
                  "mp_sem_create", "opts->value", "MP_SEM_VALUE_MAX");
    mp_assert_ok(mp_sem_create(&s, &(mp_sem_opts){.value = 1, .bounded = true}));
    assert_detail(mp_sem_acquire(s, NAN), MP_EINVAL, "mp_sem_acquire", "timeout");
    assert_detail(mp_sem_release(s), MP_EOVERFLOW, "mp_sem_release", "bound");
    assert_detail(mp_event_wait((mp_event *)(void *)s, 0), MP_EINVAL, "mp_event_wait", "ev (",
                  "event");
    mp_sem_destroy(s);

    mp_lock *l;
    mp_rlock *r;
    mp_cond *c;
    mp_assert_ok(mp_lock_create(&l, NULL));
    mp_assert_ok(mp_rlock_create(&r, NULL));
    assert_detail(mp_cond_create(&c, &(mp_cond_opts){.lock = l, .rlock = r}), MP_EINVAL,
                  "mp_cond_create", "opts->lock", "opts->rlock");
    mp_assert_ok(mp_cond_create(&c, &(mp_cond_opts){.lock = l}));
    assert_detail(mp_cond_wait(c, 0), MP_EPERM, "mp_cond_wait", "not held");
    assert_detail(mp_cond_notify(c, 1), MP_EPERM, "mp_cond_notify", "not held");
    assert_detail(mp_cond_wait_for(c, NULL, NULL, 0), MP_EINVAL, "mp_cond_wait_for", "pred");
    mp_cond_destroy(c);
    mp_rlock_destroy(r);
    mp_lock_destroy(l);

    mp_barrier *b;
    assert_detail(mp_barrier_create(&b, NULL), MP_EINVAL, "mp_barrier_create", "opts is NULL");
    assert_detail(mp_barrier_create(&b, &(mp_barrier_opts){.parties = 0}), MP_EINVAL,
                  "mp_barrier_create", "opts->parties is 0");
    assert_detail(mp_barrier_wait(NULL, 0), MP_EINVAL, "mp_barrier_wait", "b is NULL");
}

Test(details, value_and_array)
{
    mp_value *v;
    mp_array *a;
    assert_detail(mp_value_create(&v, &(mp_value_opts){.typecode = 'z'}), MP_EINVAL,
                  "mp_value_create", "opts->typecode 'z'", "cbBhHiIlLqQfd");
    assert_detail(mp_typecode_size('\n'), MP_EINVAL, "mp_typecode_size", "typecode 10");
    mp_rlock *r;
    mp_assert_ok(mp_rlock_create(&r, NULL));
    assert_detail(mp_value_create(&v, &(mp_value_opts){.typecode = 'i', .raw = true, .lock = r}),
                  MP_EINVAL, "mp_value_create", "opts->raw", "opts->lock");
    mp_rlock_destroy(r);
    mp_assert_ok(mp_value_create(&v, &(mp_value_opts){.typecode = 'b'}));
    assert_detail(mp_value_set_i64(v, 1000), MP_ERANGE, "mp_value_set_i64", "x",
                  "typecode 'b' (-128 to 127)");
    assert_detail(mp_value_set_double(v, 1.5), MP_EINVAL, "mp_value_set_double", "x",
                  "whole number");
    assert_detail(mp_value_add_double(v, 1.0, NULL), MP_EINVAL, "mp_value_add_double",
                  "typecode 'b'", "mp_value_add_i64");
    mp_assert_ok(mp_value_set_i64(v, 120));
    assert_detail(mp_value_add_i64(v, 10, NULL), MP_ERANGE, "mp_value_add_i64", "the sum");
    assert_detail(mp_value_get_i64(v, NULL), MP_EINVAL, "mp_value_get_i64", "out is NULL");
    mp_assert_ok(mp_array_create(&a, &(mp_array_opts){.typecode = 'Q', .len = 2}));
    uint64_t big = UINT64_MAX;
    mp_assert_ok(mp_array_set_u64(a, 1, big));
    int64_t x;
    assert_detail(mp_array_get_i64(a, 2, &x), MP_ERANGE, "mp_array_get_i64", "i is 2", "length 2");
    assert_detail(mp_array_get_i64(a, 1, &x), MP_ERANGE, "mp_array_get_i64", "typecode 'Q'");
    assert_detail(mp_value_get_i64((mp_value *)(void *)a, &x), MP_EINVAL, "mp_value_get_i64", "v (",
                  "not a live value");
    assert_detail(mp_array_create(&a, NULL), MP_EINVAL, "mp_array_create", "opts is NULL");
    mp_array_destroy(a);
    mp_value_destroy(v);
}

/* ---- heap and named shared memory ---------------------------------------- */

Test(details, heap_size_from_the_environment)
{
    /* Each test runs in a process of its own, without a heap yet. */
    setenv("MP_HEAP_SIZE", "12X", 1);
    assert_detail(mp_init(NULL), MP_EINVAL, "mp_init", "MP_HEAP_SIZE is malformed: \"12X\"");
    setenv("MP_HEAP_SIZE", "64K", 1);
    assert_detail(mp_init(NULL), MP_EINVAL, "mp_init", "65536 bytes (MP_HEAP_SIZE)", "not between");
    /* Made on demand, the heap says so with mp_init's name. */
    mp_queue *q = NULL;
    assert_detail(mp_queue_create(&q, NULL), MP_EINVAL, "mp_init (implicit)", "MP_HEAP_SIZE");
    unsetenv("MP_HEAP_SIZE");
    mp_assert_ok(mp_init(&(mp_init_opts){.heap_size = (size_t)256 << 20}));
    assert_detail(mp_init(&(mp_init_opts){.heap_size = (size_t)512 << 20}), MP_EBUSY, "mp_init",
                  "opts->heap_size 536870912", "268435456 bytes");
}

/* A call that returns NULL: its detail must name fn and the words. */
static void check_null(const void *p, const char *expr, const char *fn, const char **words)
{
    cr_assert_null(p, "%s did not fail", expr);
    check_detail(expr, fn, words);
}
#define assert_null_detail(expr, fn, ...)                                                          \
    do {                                                                                           \
        mp_error_clear();                                                                          \
        check_null(expr, #expr, fn, (const char *[]){__VA_ARGS__, NULL});                          \
    } while (0)

Test(details, heap_allocations)
{
    assert_null_detail(mp_alloc(0), "mp_alloc", "0 bytes");
    assert_null_detail(mp_alloc((size_t)5 << 40), "mp_alloc", "size 5497558138880", "4 TiB");
    assert_null_detail(mp_alloc((size_t)2 << 40), "mp_alloc", "2199023255552 bytes",
                       "do not fit in the shared heap", "MP_HEAP_SIZE");
    assert_null_detail(mp_calloc(SIZE_MAX / 2, 3), "mp_calloc", "overflows");
    uint64_t local[4];
    assert_null_detail(mp_realloc(local, 64), "mp_realloc", "p (", "not a block");
    assert_detail(mp_heap_get_stats(NULL), MP_EINVAL, "mp_heap_get_stats", "out is NULL");
}

Test(details, shm_names_and_owners)
{
    mp_shm *s, *t;
    char name[64];
    snprintf(name, sizeof name, "mp-details-%d", (int)getpid());
    assert_detail(mp_shm_create(&s, "a/b", 16), MP_EINVAL, "mp_shm_create", "name \"a/b\"", "'/'");
    assert_detail(mp_shm_create(&s, "", 16), MP_EINVAL, "mp_shm_create", "name \"\"",
                  "0 characters");
    assert_detail(mp_shm_create(&s, NULL, 0), MP_EINVAL, "mp_shm_create", "size is 0");
    assert_detail(mp_shm_attach(&t, name), MP_ENOENT, "mp_shm_attach", name);
    mp_assert_ok(mp_shm_create(&s, name, 16));
    assert_detail(mp_shm_create(&t, name, 16), MP_EEXIST, "mp_shm_create", name, "exists");
    mp_assert_ok(mp_shm_attach(&t, name));
    assert_detail(mp_shm_disown(t), MP_EPERM, "mp_shm_disown", "not the owner");
    mp_assert_ok(mp_shm_unlink(t));
    assert_detail(mp_shm_unlink(s), MP_ENOENT, "mp_shm_unlink", "already unlinked");
    mp_shm_close(t);
    mp_shm_close(s);
}

/* ---- containers ------------------------------------------------------------- */

Test(details, dict)
{
    mp_dict *d;
    assert_detail(mp_dict_create(&d, &(mp_dict_opts){.shards = 3}), MP_EINVAL, "mp_dict_create",
                  "opts->shards is 3", "power of two");
    mp_assert_ok(mp_dict_create(&d, NULL));
    static char big[MP_KEY_MAX + 2];
    assert_detail(mp_dict_set(d, big, sizeof big, "v", 1), MP_EMSGSIZE, "mp_dict_set_item",
                  "key_len 65537", "MP_KEY_MAX");
    assert_detail(mp_dict_set_item(d, "k", 1, &(mp_item){.data = "x", .len = 1, .type = 99}),
                  MP_EINVAL, "mp_dict_set_item", "value->type is 99");
    assert_detail(
        mp_dict_set_item(d, "k", 1, &(mp_item){.data = "x", .len = 4, .type = MP_ITEM_INT64}),
        MP_EINVAL, "mp_dict_set_item", "value->len is 4", "must be 8");
    assert_detail(mp_dict_set_str(d, NULL, "v"), MP_EINVAL, "mp_dict_set_str", "key is NULL");
    mp_assert_ok(mp_dict_set_str(d, "name", "ada"));
    int64_t n;
    assert_detail(mp_dict_get_int64(d, "name", &n), MP_EPROTO, "mp_dict_get_int64", "\"name\"",
                  "not an int64");
    assert_detail(mp_dict_add_int64(d, "name", 1, NULL), MP_EPROTO, "mp_dict_add_int64",
                  "\"name\"");
    mp_assert_ok(mp_dict_set_int64(d, "n", INT64_MAX));
    assert_detail(mp_dict_add_int64(d, "n", 1, NULL), MP_EOVERFLOW, "mp_dict_add_int64",
                  "overflows");
    assert_detail(mp_dict_get_into(d, "n", 1, NULL, 8, &(size_t){0}, NULL), MP_EINVAL,
                  "mp_dict_get_into", "buf is NULL with cap 8");
    assert_detail(mp_dict_keys(d, NULL), MP_EINVAL, "mp_dict_keys", "out is NULL");
    assert_detail(mp_dict_len((mp_dict *)(void *)big, &(size_t){0}), MP_EINVAL, "mp_dict_len",
                  "d (", "not in the shared heap");
    mp_snapshot *s;
    mp_assert_ok(mp_dict_values(d, &s));
    mp_item it;
    assert_detail(mp_snapshot_key(s, 0, &it), MP_ENOENT, "mp_snapshot_key", "no keys");
    assert_detail(mp_snapshot_value(s, 9, &it), MP_ERANGE, "mp_snapshot_value", "i is 9",
                  "length 2");
    mp_snapshot_destroy(s);
    mp_dict_destroy(d);
}

Test(details, list_and_namespace)
{
    mp_list *l;
    assert_detail(mp_list_create(&l, &(mp_list_opts){.reserved = 1}), MP_EINVAL, "mp_list_create",
                  "opts->reserved is 1");
    mp_assert_ok(mp_list_create(&l, NULL));
    mp_assert_ok(mp_list_append(l, &MP_ITEM_STR("a")));
    mp_assert_ok(mp_list_append(l, &MP_ITEM_STR("b")));
    int64_t n;
    assert_detail(mp_list_get_int64(l, 5, &n), MP_ERANGE, "mp_list_get_int64", "index 5",
                  "list of 2 items");
    assert_detail(mp_list_pop(l, -3, NULL, NULL, NULL), MP_ERANGE, "mp_list_pop", "index -3");
    assert_detail(mp_list_get_int64(l, 0, &n), MP_EPROTO, "mp_list_get_int64", "item 0",
                  "not an int64");
    mp_item items[] = {MP_ITEM_STR("c"), {.data = NULL, .len = 3, .type = MP_ITEM_BYTES}};
    assert_detail(mp_list_extend(l, items, 2), MP_EINVAL, "mp_list_extend", "items[1]->data");
    assert_detail(mp_list_append(l, NULL), MP_EINVAL, "mp_list_append", "v is NULL");
    assert_detail(mp_list_len(NULL, &(size_t){0}), MP_EINVAL, "mp_list_len", "l is NULL");
    mp_list_destroy(l);

    mp_namespace *ns;
    assert_detail(mp_namespace_create(&ns, &n), MP_EINVAL, "mp_namespace_create", "opts");
    mp_assert_ok(mp_namespace_create(&ns, NULL));
    assert_detail(mp_namespace_set_int(ns, "9lives", 1), MP_EINVAL, "mp_namespace_set_int",
                  "name \"9lives\"", "identifier");
    assert_detail(mp_namespace_set_int(ns, "a-b", 1), MP_EINVAL, "mp_namespace_set_int",
                  "name \"a-b\"");
    mp_assert_ok(mp_namespace_set_str(ns, "who", "ada"));
    assert_detail(mp_namespace_get_int(ns, "who", &n), MP_EPROTO, "mp_namespace_get_int",
                  "attribute \"who\"", "not an int");
    assert_detail(mp_namespace_get_int(NULL, "who", &n), MP_EINVAL, "mp_namespace_get_int",
                  "ns is NULL");
    mp_namespace_destroy(ns);
    char *text;
    assert_detail(mp_item_repr(&(mp_item){.data = NULL, .len = 2, .type = MP_ITEM_STR}, &text),
                  MP_EINVAL, "mp_item_repr", "item->data is NULL");
}
