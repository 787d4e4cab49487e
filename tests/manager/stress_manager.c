/* The manager's registry under several threads of several processes at
 * once: the first opens race (nobody opened the manager before the
 * children started), every thread creates or opens the same names of every
 * type and must get the same objects, works on them, and removes and
 * re-creates names of its own. Run under ThreadSanitizer by make check and
 * under every start method. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "stress.h"

#define CHILDREN 3
#define THREADS  2
#define NAMES    120 /* shared names: ten of each type */
#define ROUNDS   200
#define NTYPES   12

/* In the shared heap: the object each shared name must map to (0: not
 * seen yet). */
typedef struct table {
    _Atomic uintptr_t obj[NAMES];
} table;

static int open_type(mp_manager *m, int t, const char *name, void **out)
{
    switch (t) {
    case 0:
        return mp_manager_dict(m, name, (mp_dict **)out);
    case 1:
        return mp_manager_list(m, name, (mp_list **)out);
    case 2:
        return mp_manager_namespace(m, name, (mp_namespace **)out);
    case 3:
        return mp_manager_queue(m, name, NULL, (mp_queue **)out);
    case 4:
        return mp_manager_lock(m, name, (mp_lock **)out);
    case 5:
        return mp_manager_rlock(m, name, (mp_rlock **)out);
    case 6:
        return mp_manager_sem(m, name, NULL, (mp_sem **)out);
    case 7:
        return mp_manager_cond(m, name, (mp_cond **)out);
    case 8:
        return mp_manager_event(m, name, (mp_event **)out);
    case 9:
        return mp_manager_barrier(m, name, 3, (mp_barrier **)out);
    case 10:
        return mp_manager_value(m, name, &(mp_value_opts){.typecode = 'q'}, (mp_value **)out);
    default:
        return mp_manager_array(m, name, &(mp_array_opts){.typecode = 'd', .len = 3},
                                (mp_array **)out);
    }
}

/* Checks that a shared name maps to one object for everyone. */
static void check_shared(mp_manager *m, table *tb, int i)
{
    char name[32];
    void *obj = NULL;
    snprintf(name, sizeof name, "s-%d", i);
    int rc = open_type(m, i % NTYPES, name, &obj);
    STRESS_CHECK(rc == 0 || rc == 1, "%s: %s", name, mp_err_name(rc));
    uintptr_t want = 0;
    if (!atomic_compare_exchange_strong(&tb->obj[i], &want, (uintptr_t)obj))
        STRESS_CHECK(want == (uintptr_t)obj, "%s: two objects", name);
    /* Another type under the same name is refused. */
    void *other = NULL;
    STRESS_CHECK(open_type(m, (i + 1) % NTYPES, name, &other) == MP_EEXIST && other == NULL,
                 "%s: opened as another type", name);
}

/* Adds one to the named counter under the named lock. */
static void count_one(mp_manager *m)
{
    mp_lock *l;
    mp_value *v;
    int64_t x;
    STRESS_CHECK(mp_manager_lock(m, "counter-lock", &l) >= 0, "lock");
    STRESS_CHECK(
        mp_manager_value(m, "counter", &(mp_value_opts){.typecode = 'q', .raw = true}, &v) >= 0,
        "value");
    STRESS_OK(mp_lock_acquire(l, 20));
    STRESS_OK(mp_value_get_i64(v, &x));
    STRESS_OK(mp_value_set_i64(v, x + 1));
    STRESS_OK(mp_lock_release(l));
}

/* A name of this thread's own: made, used, removed (and freed) each round. */
static void churn(mp_manager *m, int self, int round)
{
    char name[32];
    mp_dict *d;
    snprintf(name, sizeof name, "own-%d-%d", (int)getpid(), self);
    STRESS_CHECK(mp_manager_dict(m, name, &d) == 1, "%s existed", name);
    STRESS_OK(mp_dict_set_int64(d, "round", round));
    STRESS_OK(mp_manager_remove(m, name, round % 2 ? MP_MANAGER_DESTROY : 0));
    STRESS_CHECK(mp_manager_remove(m, name, 0) == MP_ENOENT, "%s removed twice", name);
}

typedef struct worker_args {
    table *tb;
    int self;
} worker_args;

static void *worker(void *arg)
{
    worker_args *w = arg;
    mp_manager *m;
    STRESS_OK(mp_manager_open(&m, NULL));
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < NAMES; k++)
            check_shared(m, w->tb, (k * 7 + w->self + r) % NAMES);
        count_one(m);
        churn(m, w->self, r);
    }
    mp_manager_close(m);
    return NULL;
}

static int child(const void *arg, size_t len)
{
    (void)len;
    table *tb = (table *)(uintptr_t)arg;
    pthread_t th[THREADS];
    worker_args w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_args){tb, i};
        STRESS_CHECK(pthread_create(&th[i], NULL, worker, &w[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    return 0;
}

int main(void)
{
    STRESS_DEADLINE(240);
    table *tb = mp_calloc(1, sizeof *tb);
    STRESS_CHECK(tb != NULL, "mp_calloc");
    mp_process *p[CHILDREN];
    for (int i = 0; i < CHILDREN; i++) {
        STRESS_OK(mp_process_create(&p[i], &(mp_process_opts){.target = child, .args = tb}));
        STRESS_OK(mp_process_start(p[i]));
    }
    for (int i = 0; i < CHILDREN; i++) {
        int code = -1;
        STRESS_OK(mp_process_join(p[i], 200));
        STRESS_OK(mp_process_exitcode(p[i], &code));
        STRESS_CHECK(code == 0, "child %d exit code %d", i, code);
        mp_process_destroy(p[i]);
    }
    /* The parent opens last and finds what the children made. */
    mp_manager *m;
    STRESS_OK(mp_manager_open(&m, NULL));
    for (int i = 0; i < NAMES; i++) {
        char name[32];
        void *obj;
        snprintf(name, sizeof name, "s-%d", i);
        STRESS_OK(open_type(m, i % NTYPES, name, &obj));
        STRESS_CHECK((uintptr_t)obj == atomic_load(&tb->obj[i]), "%s: another object", name);
    }
    mp_value *v;
    int64_t x;
    STRESS_OK(mp_manager_value(m, "counter", &(mp_value_opts){.typecode = 'q', .raw = true}, &v));
    STRESS_OK(mp_value_get_i64(v, &x));
    STRESS_CHECK(x == CHILDREN * THREADS * ROUNDS, "counter %lld", (long long)x);
    mp_manager_close(m);
    mp_free(tb);
    puts("stress_manager: ok");
    return 0;
}
