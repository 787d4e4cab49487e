/* Tests of the manager across processes: named objects reached and used by
 * children of every start method, racing creators, killed creators. Runs
 * under each start method (MP_METHOD_SUITES). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"
#include "mp_test_manager.h"

TestSuite(manager_procs, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

static mp_manager *open_local(void)
{
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, "local"));
    return m;
}

static void join_ok(mp_process *p)
{
    int code = -1;
    mp_assert_ok(mp_process_join(p, 20));
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0, "child exit code %d", code);
    mp_process_destroy(p);
}

/* Opens a name the parent creates after this child started (whoever comes
 * first creates it: the same object either way) and waits for the value.
 * The child opens its own manager: it finds the family's registry in the
 * shared heap, whatever the start method. */
static int wait_for_late_name(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m;
    mp_dict *d;
    if (mp_manager_open(&m, NULL) < 0 || mp_manager_dict(m, "late", &d) < 0)
        return 1;
    for (int i = 0; i < 2000; i++) {
        int64_t v;
        if (mp_dict_get_int64(d, "v", &v) == 0)
            return v == 42 ? 0 : 2;
        usleep(5000);
    }
    return 3;
}

Test(manager_procs, names_reach_children_started_before_them)
{
    mp_manager *m = open_local();
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = wait_for_late_name}));
    mp_assert_ok(mp_process_start(p));
    usleep(20000);
    mp_dict *d;
    cr_assert_geq(mp_manager_dict(m, "late", &d), 0);
    mp_assert_ok(mp_dict_set_int64(d, "v", 42));
    join_ok(p);
    mp_manager_close(m);
}

static int count_in_named(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m;
    mp_dict *d;
    mp_list *l;
    if (mp_manager_open(&m, NULL) < 0 || mp_manager_dict(m, "race", &d) < 0 ||
        mp_manager_list(m, "race-list", &l) < 0)
        return 1;
    for (int i = 0; i < 50; i++)
        if (mp_dict_add_int64(d, "n", 1, NULL) < 0 ||
            mp_list_append(l, &MP_ITEM_INT64(getpid())) < 0)
            return 1;
    mp_manager_close(m);
    return 0;
}

Test(manager_procs, racing_creators_get_the_same_object)
{
    mp_manager *m = open_local();
    mp_process *p[4];
    for (int i = 0; i < 4; i++) {
        mp_assert_ok(mp_process_create(&p[i], &(mp_process_opts){.target = count_in_named}));
        mp_assert_ok(mp_process_start(p[i]));
    }
    for (int i = 0; i < 4; i++)
        join_ok(p[i]);
    mp_dict *d;
    mp_list *l;
    mp_assert_rc(mp_manager_dict(m, "race", &d), 0);
    mp_assert_rc(mp_manager_list(m, "race-list", &l), 0);
    int64_t n;
    mp_assert_ok(mp_dict_get_int64(d, "n", &n));
    cr_assert_eq(n, 200);
    size_t len;
    mp_assert_ok(mp_list_len(l, &len));
    cr_assert_eq(len, 200);
    mp_manager_close(m);
}

/* ---- across processes ----------------------------------------------------
 * Every child opens its own manager and finds the objects by name, as a
 * program would; the suite runs under every start method. */
static mp_process *start_child(mp_target_fn fn, const void *args, size_t len, mp_start_method sm)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(
        &p, &(mp_process_opts){.target = fn, .args = args, .args_len = len, .start_method = sm}));
    mp_assert_ok(mp_process_start(p));
    return p;
}

static mp_manager *child_manager(void)
{
    mp_manager *m = NULL;
    return mp_manager_open(&m, NULL) == 0 ? m : NULL;
}

static int put_three(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m = child_manager();
    mp_queue *q;
    if (m == NULL || mp_manager_queue(m, "xq", NULL, &q) < 0)
        return 1;
    for (int i = 0; i < 3; i++)
        if (mp_queue_put(q, &i, sizeof i, 10) < 0)
            return 2;
    return 0;
}

Test(manager_procs, queue_put_in_child_got_in_parent)
{
    mp_manager *m = open_local();
    mp_process *p = start_child(put_three, NULL, 0, MP_START_DEFAULT);
    mp_queue *q;
    cr_assert_geq(mp_manager_queue(m, "xq", NULL, &q), 0);
    for (int i = 0; i < 3; i++) {
        int v = -1;
        size_t n;
        mp_assert_ok(mp_queue_get_into(q, &v, sizeof v, &n, 10));
        cr_assert(n == sizeof v && v == i);
    }
    join_ok(p);
    mp_assert_ok(mp_manager_remove(m, "xq", MP_MANAGER_DESTROY));
    mp_manager_close(m);
}

static int hold_lock_until_go(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m = child_manager();
    mp_lock *l;
    mp_event *held, *go;
    if (m == NULL || mp_manager_lock(m, "xl", &l) < 0 ||
        mp_manager_event(m, "xl-held", &held) < 0 || mp_manager_event(m, "xl-go", &go) < 0)
        return 1;
    if (mp_lock_acquire(l, 10) < 0 || mp_event_set(held) < 0)
        return 2;
    int rc = mp_event_wait(go, 10);
    return mp_lock_release(l) == 0 && rc == 0 ? 0 : 3;
}

Test(manager_procs, lock_held_and_event_set_by_a_child)
{
    mp_manager *m = open_local();
    mp_process *p = start_child(hold_lock_until_go, NULL, 0, MP_START_DEFAULT);
    mp_lock *l;
    mp_event *held, *go;
    cr_assert_geq(mp_manager_lock(m, "xl", &l), 0);
    cr_assert_geq(mp_manager_event(m, "xl-held", &held), 0);
    cr_assert_geq(mp_manager_event(m, "xl-go", &go), 0);
    mp_assert_ok(mp_event_wait(held, 10));
    mp_assert_rc(mp_lock_acquire(l, 0), MP_ETIMEDOUT);
    mp_assert_ok(mp_event_set(go));
    mp_assert_ok(mp_lock_acquire(l, 10));
    mp_assert_ok(mp_lock_release(l));
    join_ok(p);
    mp_manager_close(m);
}

#define INCREMENTS 500

static int increment_counter(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m = child_manager();
    mp_value *v;
    mp_barrier *b;
    if (m == NULL || mp_manager_value(m, "counter", &(mp_value_opts){.typecode = 'q'}, &v) < 0 ||
        mp_manager_barrier(m, "counter-start", 4, &b) < 0)
        return 1;
    if (mp_barrier_wait(b, 10) < 0)
        return 2;
    mp_rlock *l = mp_value_get_lock(v);
    for (int i = 0; i < INCREMENTS; i++) {
        int64_t x;
        if (mp_rlock_acquire(l, 10) < 0)
            return 3;
        int rc = mp_value_get_i64(v, &x);
        rc = rc < 0 ? rc : mp_value_set_i64(v, x + 1);
        if (mp_rlock_release(l) < 0 || rc < 0)
            return 4;
    }
    return 0;
}

Test(manager_procs, value_incremented_by_four_processes_under_its_lock)
{
    mp_manager *m = open_local();
    mp_process *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = start_child(increment_counter, NULL, 0, MP_START_DEFAULT);
    for (int i = 0; i < 4; i++)
        join_ok(p[i]);
    mp_value *v;
    mp_assert_rc(mp_manager_value(m, "counter", &(mp_value_opts){.typecode = 'q'}, &v), 0);
    int64_t x;
    mp_assert_ok(mp_value_get_i64(v, &x));
    cr_assert_eq(x, 4 * INCREMENTS);
    mp_manager_close(m);
}

static bool flag_is_set(void *arg)
{
    int64_t x = 0;
    return mp_value_get_i64(arg, &x) == 0 && x == 1;
}

static int wait_on_cond(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    mp_manager *m = child_manager();
    mp_cond *c;
    mp_value *flag;
    mp_sem *ready;
    if (m == NULL || mp_manager_cond(m, "xc", &c) < 0 ||
        mp_manager_sem(m, "xc-ready", NULL, &ready) < 0 ||
        mp_manager_value(m, "xc-flag", &(mp_value_opts){.typecode = 'i', .raw = true}, &flag) < 0)
        return 1;
    if (mp_cond_acquire(c, 10) < 0 || mp_sem_release(ready) < 0)
        return 2;
    int rc = mp_cond_wait_for(c, flag_is_set, flag, 10);
    return mp_cond_release(c) == 0 && rc == 0 ? 0 : 3;
}

Test(manager_procs, condition_notified_across_processes)
{
    mp_manager *m = open_local();
    mp_process *p = start_child(wait_on_cond, NULL, 0, MP_START_DEFAULT);
    mp_cond *c;
    mp_value *flag;
    mp_sem *ready;
    cr_assert_geq(mp_manager_cond(m, "xc", &c), 0);
    cr_assert_geq(mp_manager_sem(m, "xc-ready", NULL, &ready), 0);
    cr_assert_geq(
        mp_manager_value(m, "xc-flag", &(mp_value_opts){.typecode = 'i', .raw = true}, &flag), 0);
    mp_assert_ok(mp_sem_acquire(ready, 10));
    mp_assert_ok(mp_cond_acquire(c, 10));
    mp_assert_ok(mp_value_set_i64(flag, 1));
    cr_assert_geq(mp_cond_notify_all(c), 0);
    mp_assert_ok(mp_cond_release(c));
    join_ok(p);
    mp_manager_close(m);
}

/* A child of a given start method: sees a name the parent made before it
 * started and one made after, and makes one the parent then sees. */
static int meet_parent(const void *arg, size_t len)
{
    (void)len;
    int method = *(const int *)arg;
    mp_manager *m = child_manager();
    mp_dict *before, *after, *mine;
    int64_t v = 0;
    if (m == NULL || mp_manager_dict(m, "from-parent", &before) != 0 ||
        mp_dict_get_int64(before, "v", &v) < 0 || v != 42)
        return 1;
    char name[32];
    snprintf(name, sizeof name, "from-child-%d", method);
    if (mp_manager_dict(m, name, &mine) != 1 || mp_dict_set_int64(mine, "pid", getpid()) < 0)
        return 2;
    snprintf(name, sizeof name, "late-%d", method);
    if (mp_manager_dict(m, name, &after) < 0)
        return 3;
    for (int i = 0; i < 2000; i++) {
        if (mp_dict_get_int64(after, "v", &v) == 0)
            return v == 43 ? 0 : 4;
        usleep(5000);
    }
    return 5;
}

static void meet_child(mp_start_method method)
{
    mp_manager *m = open_local();
    mp_dict *d;
    cr_assert_geq(mp_manager_dict(m, "from-parent", &d), 0);
    mp_assert_ok(mp_dict_set_int64(d, "v", 42));
    int arg = (int)method;
    mp_process *p = start_child(meet_parent, &arg, sizeof arg, method);
    char name[32];
    snprintf(name, sizeof name, "late-%d", method);
    cr_assert_geq(mp_manager_dict(m, name, &d), 0);
    mp_assert_ok(mp_dict_set_int64(d, "v", 43));
    int code = -1;
    mp_assert_ok(mp_process_join(p, 20));
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0, "child exit code %d", code);
    snprintf(name, sizeof name, "from-child-%d", method);
    mp_assert_rc(mp_manager_dict(m, name, &d), 0);
    int64_t pid;
    mp_assert_ok(mp_dict_get_int64(d, "pid", &pid));
    cr_assert_eq(pid, mp_process_pid(p));
    mp_process_destroy(p);
    mp_manager_close(m);
}

Test(manager_procs, spawned_children_reach_the_registry)
{
    meet_child(MP_START_SPAWN);
}

/* The fork server's socket lives as long as the process: start it before
 * the fds are counted. */
static bool have_forkserver;

static void forkserver_fd_setup(void)
{
    have_forkserver = mp_forkserver_ensure() == 0;
    mp_test_fd_setup();
}

Test(manager_procs, forkserver_children_reach_the_registry, .init = forkserver_fd_setup)
{
    if (!have_forkserver)
        cr_skip_test("no fork server on this system");
    meet_child(MP_START_FORKSERVER);
}

/* Each child opens every type's name and writes what it got into the
 * array at its own row. */
static int open_every_type(const void *arg, size_t len)
{
    (void)len;
    int row = *(const int *)arg;
    mp_manager *m = child_manager();
    mp_array *got;
    if (m == NULL ||
        mp_manager_array(m, "race-got", &(mp_array_opts){.typecode = 'Q', .len = 4 * MPT_N}, &got) <
            0)
        return 1;
    for (int t = 0; t < MPT_N; t++) {
        char name[32];
        void *obj;
        snprintf(name, sizeof name, "race-%d", t);
        if (mp_test_open_as(m, t, name, &obj) < 0)
            return 2;
        if (mp_array_set_u64(got, (size_t)(row * MPT_N + t), (uint64_t)(uintptr_t)obj) < 0)
            return 3;
    }
    return 0;
}

Test(manager_procs, racing_creators_of_every_type_get_one_object)
{
    mp_manager *m = open_local();
    mp_process *p[4];
    int rows[4] = {0, 1, 2, 3};
    for (int i = 0; i < 4; i++)
        p[i] = start_child(open_every_type, &rows[i], sizeof rows[i], MP_START_DEFAULT);
    for (int i = 0; i < 4; i++)
        join_ok(p[i]);
    mp_array *got;
    mp_assert_rc(
        mp_manager_array(m, "race-got", &(mp_array_opts){.typecode = 'Q', .len = 4 * MPT_N}, &got),
        0);
    for (int t = 0; t < MPT_N; t++) {
        char name[32];
        void *obj;
        snprintf(name, sizeof name, "race-%d", t);
        mp_assert_rc(mp_test_open_as(m, t, name, &obj), 0);
        for (int row = 0; row < 4; row++) {
            uint64_t x;
            mp_assert_ok(mp_array_get_u64(got, (size_t)(row * MPT_N + t), &x));
            cr_assert_eq(x, (uint64_t)(uintptr_t)obj, "%s: child %d got another object",
                         mp_test_type_name[t], row);
        }
        cr_assert_eq(mp_test_exercise(t, obj), 0, "%s works", mp_test_type_name[t]);
    }
    mp_manager_close(m);
}

/* ---- killed creators -----------------------------------------------------
 * A child creates names k<round>-0, k<round>-1, ... of every type in turn
 * and is SIGKILLed at a random moment. The registry must hold exactly a
 * prefix of the sequence, each name with a whole, working object: the
 * name being created when the kill came is either absent or complete. */
#define KILL_ROUNDS 20
#define KILL_NAMES  20000

static int create_until_killed(const void *arg, size_t len)
{
    (void)len;
    int round = *(const int *)arg;
    mp_manager *m = child_manager();
    char name[32];
    mp_event *ready;
    snprintf(name, sizeof name, "kready-%d", round);
    if (m == NULL || mp_manager_event(m, name, &ready) < 0 || mp_event_set(ready) < 0)
        return 1;
    for (int i = 0; i < KILL_NAMES; i++) {
        void *obj;
        snprintf(name, sizeof name, "k%d-%d", round, i);
        if (mp_test_open_as(m, i % MPT_N, name, &obj) != 1)
            return 2;
    }
    return 0;
}

/* Checks round's names: a prefix of whole objects, then nothing. Returns
 * the prefix length. */
static int check_round(mp_manager *m, int round)
{
    char name[32];
    void *obj;
    int i = 0, rc = 0;
    for (; i < KILL_NAMES; i++) {
        snprintf(name, sizeof name, "k%d-%d", round, i);
        rc = mp_test_open_as(m, i % MPT_N, name, &obj);
        cr_assert(rc == 0 || rc == 1, "%s: %s", name, mp_err_name(rc));
        cr_assert_eq(mp_test_exercise(i % MPT_N, obj), 0, "%s (%s) is whole", name,
                     mp_test_type_name[i % MPT_N]);
        if (rc == 1)
            break; /* made now: the first name the child did not finish */
    }
    if (i + 1 < KILL_NAMES) {
        snprintf(name, sizeof name, "k%d-%d", round, i + 1);
        mp_assert_rc(mp_test_open_as(m, (i + 1) % MPT_N, name, &obj), 1);
    }
    for (int j = 0; j <= i + 1 && j < KILL_NAMES; j++) {
        snprintf(name, sizeof name, "k%d-%d", round, j);
        mp_assert_ok(mp_manager_remove(m, name, MP_MANAGER_DESTROY));
    }
    return i;
}

Test(manager_procs, killed_creators_leave_no_half_registered_name)
{
    mp_manager *m = open_local();
    unsigned seed = (unsigned)getpid() ^ (unsigned)(mp_test_now() * 1e6);
    int reached = 0;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        mp_process *p = start_child(create_until_killed, &round, sizeof round, MP_START_DEFAULT);
        /* Wait until the child runs, then kill it somewhere in the
         * sequence (or, now and then, before it starts). */
        char ready_name[32];
        snprintf(ready_name, sizeof ready_name, "kready-%d", round);
        mp_event *ready;
        cr_assert_geq(mp_manager_event(m, ready_name, &ready), 0);
        mp_assert_ok(mp_event_wait(ready, 20));
        usleep((useconds_t)(rand_r(&seed) % 8000));
        mp_assert_ok(mp_process_kill(p));
        mp_assert_ok(mp_process_join(p, 20));
        mp_process_destroy(p);
        int got = check_round(m, round);
        reached += got > 0 && got < KILL_NAMES;
    }
    cr_log_info("seed %u: %d of %d rounds killed a child mid-way", seed, reached, KILL_ROUNDS);
    mp_manager_close(m);
}
