/* Tests of the synchronisation primitives: semantics, timeouts, bad input,
 * ownership, robustness to killed holders and parties, threads and
 * processes. Each test runs in its own Criterion process. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "mp_test.h"
#include "wild_pointers.h"

TestSuite(lock, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(rlock, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(sem, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(cond, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(event, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(barrier, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

/* ---- helpers ------------------------------------------------------------- */

/* Starts a child running fn(arg) (arg passed as a pointer: fork). */
static mp_process *spawn(mp_target_fn fn, void *arg)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = fn, .args = arg}));
    mp_assert_ok(mp_process_start(p));
    return p;
}

static int join_code(mp_process *p)
{
    mp_assert_ok(mp_process_join(p, 20));
    int code = -1000;
    mp_assert_ok(mp_process_exitcode(p, &code));
    mp_process_destroy(p);
    return code;
}

/* A child that takes a lock, tells the parent and waits to be killed. */
typedef struct holder_arg {
    mp_lock *lock;
    mp_rlock *rlock;
    mp_event *held;
} holder_arg;

static int hold_forever(const void *arg, size_t len)
{
    (void)len;
    const holder_arg *h = arg;
    int rc = h->lock ? mp_lock_acquire(h->lock, 10) : mp_rlock_acquire(h->rlock, 10);
    if (rc == 0 && h->rlock)
        rc = mp_rlock_acquire(h->rlock, 10); /* two levels: dies with count 2 */
    if (rc != 0)
        return 1;
    mp_event_set(h->held);
    for (;;)
        pause();
}

static mp_process *start_holder(holder_arg *h)
{
    mp_assert_ok(mp_event_create(&h->held, NULL));
    mp_process *p = spawn(hold_forever, h);
    mp_assert_ok(mp_event_wait(h->held, 10));
    return p;
}

static void kill_holder(mp_process *p, holder_arg *h)
{
    mp_assert_ok(mp_process_kill(p));
    int code = 0;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, -SIGKILL);
    mp_process_destroy(p);
    mp_event_destroy(h->held);
}

/* ---- Lock ---------------------------------------------------------------- */

Test(lock, acquire_release_and_ownership_errors)
{
    mp_lock *l;
    mp_assert_ok(mp_lock_create(&l, NULL));
    mp_assert_ok(mp_lock_acquire(l, 0));
    mp_assert_rc(mp_lock_acquire(l, 0), MP_EDEADLK);
    mp_assert_rc(mp_lock_acquire(l, 1), MP_EDEADLK);
    mp_assert_rc(mp_lock_consistent(l), MP_EINVAL); /* held, but not owner-dead */
    mp_assert_ok(mp_lock_release(l));
    mp_assert_rc(mp_lock_release(l), MP_EPERM);
    mp_assert_ok(mp_lock_acquire(l, MP_FOREVER));
    mp_assert_ok(mp_lock_release(l));
    mp_lock_destroy(l);
}

Test(lock, bad_input)
{
    mp_lock *l = NULL;
    mp_assert_rc(mp_lock_create(NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_lock_create(&l, &(mp_lock_opts){.reserved = 1}), MP_EINVAL);
    cr_assert_null(l);
    mp_assert_rc(mp_lock_acquire(NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_lock_release(NULL), MP_EINVAL);
    char foreign[256] = {0};
    mp_assert_rc(mp_lock_acquire((mp_lock *)foreign, 0), MP_EINVAL);
    mp_assert_ok(mp_lock_create(&l, NULL));
    mp_assert_rc(mp_lock_acquire(l, 0.0 / 0.0), MP_EINVAL);
    /* An rlock is not a lock. */
    mp_rlock *r;
    mp_assert_ok(mp_rlock_create(&r, NULL));
    mp_assert_rc(mp_lock_acquire((mp_lock *)r, 0), MP_EINVAL);
    mp_rlock_destroy(r);
    mp_lock_destroy(l);
    mp_assert_rc(mp_lock_acquire(l, 0), MP_EINVAL); /* destroyed */
    mp_lock_destroy(NULL);
    mp_rlock_destroy(NULL);
}

/* sync.h: a pointer that is no lock (unmapped, misaligned, outside the
 * heap) is MP_EINVAL, never a crash. */
Test(lock, wild_pointers_are_einval)
{
    unsigned char stack[64];
    mp_test_wild w;
    mp_test_wild_begin(&w, stack);
    for (size_t i = 0; i < w.n; i++) {
        mp_lock *l = w.p[i];
        cr_assert_eq(mp_lock_acquire(l, 0), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_lock_release(l), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_lock_consistent(l), MP_EINVAL, "%s", w.what[i]);
        mp_lock_destroy(l);
        mp_cond *c = NULL;
        cr_assert_eq(mp_cond_create(&c, &(mp_cond_opts){.lock = l}), MP_EINVAL, "%s", w.what[i]);
    }
    mp_test_wild_end(&w);
}

static void *release_other_thread(void *arg)
{
    return (void *)(intptr_t)mp_lock_release(arg);
}

static void *try_acquire_thread(void *arg)
{
    return (void *)(intptr_t)mp_lock_acquire(arg, 0.05);
}

Test(lock, owned_by_the_acquiring_thread)
{
    mp_lock *l;
    mp_assert_ok(mp_lock_create(&l, NULL));
    mp_assert_ok(mp_lock_acquire(l, 0));
    pthread_t t;
    void *ret;
    cr_assert_eq(pthread_create(&t, NULL, release_other_thread, l), 0);
    pthread_join(t, &ret);
    mp_assert_rc((int)(intptr_t)ret, MP_EPERM);
    cr_assert_eq(pthread_create(&t, NULL, try_acquire_thread, l), 0);
    pthread_join(t, &ret);
    mp_assert_rc((int)(intptr_t)ret, MP_ETIMEDOUT);
    mp_assert_ok(mp_lock_release(l));
    mp_lock_destroy(l);
}

Test(lock, timeout_while_another_process_holds_it)
{
    holder_arg h = {0};
    mp_assert_ok(mp_lock_create(&h.lock, NULL));
    mp_process *p = start_holder(&h);
    mp_assert_rc(mp_lock_acquire(h.lock, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp_lock_acquire(h.lock, 0.1), MP_ETIMEDOUT);
    mp_assert_rc(mp_lock_release(h.lock), MP_EPERM);
    kill_holder(p, &h);
    mp_assert_rc(mp_lock_acquire(h.lock, 10), MP_EOWNERDEAD);
    mp_assert_ok(mp_lock_consistent(h.lock));
    mp_assert_ok(mp_lock_release(h.lock));
    mp_lock_destroy(h.lock);
}

Test(lock, owner_killed_hands_over_with_ownerdead)
{
    holder_arg h = {0};
    mp_assert_ok(mp_lock_create(&h.lock, NULL));
    mp_process *p = start_holder(&h);
    kill_holder(p, &h);
    mp_assert_rc(mp_lock_acquire(h.lock, 10), MP_EOWNERDEAD);
    mp_assert_ok(mp_lock_consistent(h.lock));
    mp_assert_ok(mp_lock_release(h.lock));
    mp_assert_ok(mp_lock_acquire(h.lock, 0)); /* normal again */
    mp_assert_ok(mp_lock_release(h.lock));
    mp_lock_destroy(h.lock);
}

Test(lock, tokens_count_holds_including_after_a_dead_holder)
{
    holder_arg h = {0};
    uint64_t t = 0, t2 = 0;
    mp_assert_ok(mp_lock_create(&h.lock, NULL));
    mp_assert_rc(mp_lock_token(h.lock, &t), MP_EPERM);
    mp_assert_ok(mp_lock_acquire(h.lock, 0));
    mp_assert_ok(mp_lock_token(h.lock, &t));
    cr_assert_eq(t, 1);
    mp_assert_ok(mp_lock_release(h.lock));
    mp_process *p = start_holder(&h); /* its hold is token 2 */
    kill_holder(p, &h);
    mp_assert_rc(mp_lock_acquire(h.lock, 10), MP_EOWNERDEAD);
    mp_assert_ok(mp_lock_token(h.lock, &t2));
    cr_assert_eq(t2, 3, "after the dead holder's: %llu", (unsigned long long)t2);
    mp_assert_ok(mp_lock_consistent(h.lock));
    mp_assert_ok(mp_lock_release(h.lock));
    mp_lock_destroy(h.lock);
}

Test(lock, not_marked_consistent_becomes_unrecoverable)
{
    holder_arg h = {0};
    mp_assert_ok(mp_lock_create(&h.lock, NULL));
    mp_process *p = start_holder(&h);
    kill_holder(p, &h);
    /* A try (timeout 0) checks the holder at once. */
    mp_assert_rc(mp_lock_acquire(h.lock, 0), MP_EOWNERDEAD);
    mp_assert_ok(mp_lock_release(h.lock));
    mp_assert_rc(mp_lock_acquire(h.lock, 0), MP_ENOTRECOVERABLE);
    mp_assert_rc(mp_lock_acquire(h.lock, 1), MP_ENOTRECOVERABLE);
    mp_lock_destroy(h.lock);
}

Test(lock, holder_killed_and_not_yet_reaped_is_dead)
{
    holder_arg h = {0};
    mp_assert_ok(mp_lock_create(&h.lock, NULL));
    mp_process *p = start_holder(&h);
    mp_assert_ok(mp_process_send_signal(p, SIGKILL));
    /* The child is a zombie until joined: its id still exists. */
    while (mp_test_pid_state(mp_process_pid(p)) != 'Z')
        usleep(1000);
    mp_assert_rc(mp_lock_acquire(h.lock, 10), MP_EOWNERDEAD);
    mp_assert_ok(mp_lock_consistent(h.lock));
    mp_assert_ok(mp_lock_release(h.lock));
    mp_assert_ok(mp_process_join(p, 10));
    mp_process_destroy(p);
    mp_event_destroy(h.held);
    mp_lock_destroy(h.lock);
}

static void *acquire_and_exit(void *arg)
{
    return (void *)(intptr_t)mp_lock_acquire(arg, 10);
}

Test(lock, owner_thread_exit_hands_over)
{
    mp_lock *l;
    mp_assert_ok(mp_lock_create(&l, NULL));
    pthread_t t;
    void *ret;
    cr_assert_eq(pthread_create(&t, NULL, acquire_and_exit, l), 0);
    pthread_join(t, &ret);
    mp_assert_ok((int)(intptr_t)ret);
    mp_assert_rc(mp_lock_acquire(l, 10), MP_EOWNERDEAD);
    mp_assert_ok(mp_lock_consistent(l));
    mp_assert_ok(mp_lock_release(l));
    mp_lock_destroy(l);
}

typedef struct counter_arg {
    mp_lock *lock;
    long *counter; /* in the shared heap */
    int rounds;
} counter_arg;

static int count_under_lock(const void *arg, size_t len)
{
    (void)len;
    const counter_arg *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        if (mp_lock_acquire(c->lock, 20) != 0)
            return 1;
        long v = __atomic_load_n(c->counter, __ATOMIC_RELAXED);
        __atomic_store_n(c->counter, v + 1, __ATOMIC_RELAXED);
        if (mp_lock_release(c->lock) != 0)
            return 2;
    }
    return 0;
}

Test(lock, mutual_exclusion_across_processes)
{
    mp_value *v;
    mp_assert_ok(mp_value_create(&v, &(mp_value_opts){.typecode = 'l', .raw = true}));
    counter_arg c = {.counter = mp_value_data(v), .rounds = 20000};
    mp_assert_ok(mp_lock_create(&c.lock, NULL));
    mp_process *a = spawn(count_under_lock, &c), *b = spawn(count_under_lock, &c);
    cr_assert_eq(count_under_lock(&c, 0), 0);
    cr_assert_eq(join_code(a), 0);
    cr_assert_eq(join_code(b), 0);
    cr_assert_eq(*c.counter, 3L * c.rounds);
    mp_lock_destroy(c.lock);
    mp_value_destroy(v);
}

/* ---- RLock ---------------------------------------------------------------- */

static void *rlock_try(void *arg)
{
    return (void *)(intptr_t)mp_rlock_acquire(arg, 0);
}

static void *rlock_release_thread(void *arg)
{
    return (void *)(intptr_t)mp_rlock_release(arg);
}

Test(rlock, recursion_counts_and_ownership)
{
    mp_rlock *r;
    mp_assert_ok(mp_rlock_create(&r, NULL));
    cr_assert_eq(mp_rlock_count(r), 0);
    for (int i = 1; i <= 3; i++) {
        mp_assert_ok(mp_rlock_acquire(r, 0));
        cr_assert_eq(mp_rlock_count(r), i);
    }
    pthread_t t;
    void *ret;
    cr_assert_eq(pthread_create(&t, NULL, rlock_try, r), 0);
    pthread_join(t, &ret);
    mp_assert_rc((int)(intptr_t)ret, MP_ETIMEDOUT);
    cr_assert_eq(pthread_create(&t, NULL, rlock_release_thread, r), 0);
    pthread_join(t, &ret);
    mp_assert_rc((int)(intptr_t)ret, MP_EPERM);
    for (int i = 2; i >= 0; i--) {
        mp_assert_ok(mp_rlock_release(r));
        cr_assert_eq(mp_rlock_count(r), i);
    }
    mp_assert_rc(mp_rlock_release(r), MP_EPERM);
    /* Free now: another thread gets it at once (and exits holding it). */
    cr_assert_eq(pthread_create(&t, NULL, rlock_try, r), 0);
    pthread_join(t, &ret);
    mp_assert_ok((int)(intptr_t)ret);
    mp_assert_rc(mp_rlock_acquire(r, 5), MP_EOWNERDEAD);
    mp_assert_ok(mp_rlock_consistent(r));
    mp_assert_ok(mp_rlock_release(r));
    mp_assert_rc(mp_rlock_acquire(NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_rlock_count(NULL), MP_EINVAL);
    mp_rlock_destroy(r);
}

Test(rlock, wild_pointers_are_einval)
{
    unsigned char stack[64];
    mp_test_wild w;
    mp_test_wild_begin(&w, stack);
    for (size_t i = 0; i < w.n; i++) {
        mp_rlock *r = w.p[i];
        cr_assert_eq(mp_rlock_acquire(r, 0), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_rlock_release(r), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_rlock_consistent(r), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_rlock_count(r), MP_EINVAL, "%s", w.what[i]);
        mp_rlock_destroy(r);
        mp_cond *c = NULL;
        cr_assert_eq(mp_cond_create(&c, &(mp_cond_opts){.rlock = r}), MP_EINVAL, "%s", w.what[i]);
    }
    mp_test_wild_end(&w);
}

Test(rlock, owner_killed_with_count_two)
{
    holder_arg h = {0};
    mp_assert_ok(mp_rlock_create(&h.rlock, NULL));
    mp_process *p = start_holder(&h);
    mp_assert_rc(mp_rlock_acquire(h.rlock, 0.05), MP_ETIMEDOUT);
    kill_holder(p, &h);
    mp_assert_rc(mp_rlock_acquire(h.rlock, 10), MP_EOWNERDEAD);
    cr_assert_eq(mp_rlock_count(h.rlock), 1);
    mp_assert_ok(mp_rlock_consistent(h.rlock));
    mp_assert_ok(mp_rlock_release(h.rlock));
    cr_assert_eq(mp_rlock_count(h.rlock), 0);
    mp_assert_ok(mp_rlock_acquire(h.rlock, 0));
    mp_assert_ok(mp_rlock_release(h.rlock));
    mp_rlock_destroy(h.rlock);
}

/* ---- Semaphore ------------------------------------------------------------ */

Test(sem, counts_and_times_out)
{
    mp_sem *s;
    mp_assert_ok(mp_sem_create(&s, &(mp_sem_opts){.value = 2}));
    cr_assert_eq(mp_sem_get_value(s), 2);
    mp_assert_ok(mp_sem_acquire(s, 0));
    mp_assert_ok(mp_sem_acquire(s, MP_FOREVER));
    mp_assert_rc(mp_sem_acquire(s, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp_sem_acquire(s, 0.05), MP_ETIMEDOUT);
    cr_assert_eq(mp_sem_get_value(s), 0);
    for (int i = 0; i < 5; i++) /* unbounded: above the initial value is fine */
        mp_assert_ok(mp_sem_release(s));
    cr_assert_eq(mp_sem_get_value(s), 5);
    mp_sem_destroy(s);
    mp_assert_ok(mp_sem_create(&s, NULL)); /* zero value: 0 */
    mp_assert_rc(mp_sem_acquire(s, 0), MP_ETIMEDOUT);
    mp_sem_destroy(s);
}

Test(sem, bounded_release_past_initial_value_fails)
{
    mp_sem *s;
    mp_assert_ok(mp_sem_create(&s, &(mp_sem_opts){.value = 1, .bounded = true}));
    mp_assert_rc(mp_sem_release(s), MP_EOVERFLOW);
    cr_assert_eq(mp_sem_get_value(s), 1);
    mp_assert_ok(mp_sem_acquire(s, 0));
    mp_assert_ok(mp_sem_release(s));
    mp_assert_rc(mp_sem_release(s), MP_EOVERFLOW);
    cr_assert_eq(mp_sem_get_value(s), 1);
    mp_sem_destroy(s);
}

Test(sem, bad_input)
{
    mp_sem *s = NULL;
    mp_assert_rc(mp_sem_create(&s, &(mp_sem_opts){.value = MP_SEM_VALUE_MAX + 1u}), MP_EINVAL);
    mp_assert_rc(mp_sem_create(NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_sem_acquire(NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_sem_release(NULL), MP_EINVAL);
    mp_assert_ok(mp_sem_create(&s, &(mp_sem_opts){.value = MP_SEM_VALUE_MAX}));
    mp_assert_rc(mp_sem_release(s), MP_EOVERFLOW);
    mp_assert_rc(mp_sem_acquire(s, 0.0 / 0.0), MP_EINVAL);
    mp_sem_destroy(s);
    mp_sem_destroy(NULL);
}

static int sem_take_then_give(const void *arg, size_t len)
{
    (void)len;
    mp_sem *const *s = arg;
    if (mp_sem_acquire(s[0], 20) != 0)
        return 1;
    return mp_sem_release(s[1]) == 0 ? 0 : 2;
}

Test(sem, wild_pointers_are_einval)
{
    unsigned char stack[64];
    mp_test_wild w;
    mp_test_wild_begin(&w, stack);
    for (size_t i = 0; i < w.n; i++) {
        mp_sem *s = w.p[i];
        cr_assert_eq(mp_sem_acquire(s, 0), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_sem_release(s), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_sem_get_value(s), MP_EINVAL, "%s", w.what[i]);
        mp_sem_destroy(s);
    }
    mp_test_wild_end(&w);
}

Test(sem, wakes_a_waiter_in_another_process)
{
    mp_sem *s[2];
    mp_assert_ok(mp_sem_create(&s[0], NULL));
    mp_assert_ok(mp_sem_create(&s[1], NULL));
    mp_process *p = spawn(sem_take_then_give, s);
    usleep(20000); /* usually asleep by now; correct either way */
    mp_assert_ok(mp_sem_release(s[0]));
    mp_assert_ok(mp_sem_acquire(s[1], 20));
    cr_assert_eq(join_code(p), 0);
    mp_sem_destroy(s[0]);
    mp_sem_destroy(s[1]);
}

/* ---- Condition ------------------------------------------------------------ */

Test(cond, wait_times_out_and_keeps_the_lock)
{
    mp_cond *c;
    mp_assert_ok(mp_cond_create(&c, NULL));
    cr_assert_not_null(mp_cond_get_rlock(c));
    cr_assert_null(mp_cond_get_lock(c));
    mp_assert_rc(mp_cond_wait(c, 0.05), MP_EPERM); /* not held */
    mp_assert_rc(mp_cond_notify(c, 1), MP_EPERM);
    mp_assert_ok(mp_cond_acquire(c, 1));
    mp_assert_ok(mp_cond_acquire(c, 1)); /* rlock: twice */
    mp_assert_rc(mp_cond_wait(c, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp_cond_wait(c, 0.05), MP_ETIMEDOUT);
    cr_assert_eq(mp_rlock_count(mp_cond_get_rlock(c)), 2);
    mp_assert_rc(mp_cond_notify(c, 3), 0); /* nobody waits */
    /* A wait lets the lock go and takes it again: a new hold, a new
     * token. */
    uint64_t t = 0, t2 = 0;
    mp_assert_ok(mp_rlock_token(mp_cond_get_rlock(c), &t));
    mp_assert_rc(mp_cond_wait(c, 0.01), MP_ETIMEDOUT);
    mp_assert_ok(mp_rlock_token(mp_cond_get_rlock(c), &t2));
    cr_assert_eq(t2, t + 1);
    mp_assert_rc(mp_cond_wait(c, 0.0 / 0.0), MP_EINVAL);
    mp_assert_ok(mp_cond_release(c));
    mp_assert_ok(mp_cond_release(c));
    mp_assert_rc(mp_cond_release(c), MP_EPERM);
    mp_cond_destroy(c);
}

Test(cond, bad_input)
{
    mp_cond *c = NULL;
    mp_lock *l;
    mp_rlock *r;
    mp_assert_ok(mp_lock_create(&l, NULL));
    mp_assert_ok(mp_rlock_create(&r, NULL));
    mp_assert_rc(mp_cond_create(&c, &(mp_cond_opts){.lock = l, .rlock = r}), MP_EINVAL);
    mp_assert_rc(mp_cond_create(&c, &(mp_cond_opts){.lock = (mp_lock *)r}), MP_EINVAL);
    mp_assert_rc(mp_cond_create(NULL, NULL), MP_EINVAL);
    cr_assert_null(c);
    mp_assert_ok(mp_cond_create(&c, &(mp_cond_opts){.lock = l}));
    cr_assert_eq(mp_cond_get_lock(c), l);
    mp_assert_ok(mp_lock_acquire(l, 0));
    mp_assert_rc(mp_cond_wait_for(c, NULL, NULL, 0), MP_EINVAL);
    mp_assert_ok(mp_lock_release(l));
    mp_assert_rc(mp_cond_wait(NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_cond_notify_all(NULL), MP_EINVAL);
    mp_cond_destroy(c);
    mp_cond_destroy(NULL);
    mp_rlock_destroy(r);
    mp_lock_destroy(l);
}

typedef struct cond_state {
    mp_cond *c;
    int ready;  /* waiters that are waiting (lock held) */
    int woken;  /* waiters that returned 0 (lock held) */
    int result; /* last error of a waiter */
} cond_state;

static void *cond_waiter(void *arg)
{
    cond_state *st = arg;
    if (mp_cond_acquire(st->c, 10) != 0)
        return NULL;
    st->ready++;
    int rc = mp_cond_wait(st->c, 20);
    if (rc == 0)
        st->woken++;
    else
        st->result = rc;
    mp_cond_release(st->c);
    return NULL;
}

static int cond_read(cond_state *st, int *field)
{
    mp_assert_ok(mp_cond_acquire(st->c, 10));
    int v = *field;
    mp_assert_ok(mp_cond_release(st->c));
    return v;
}

Test(cond, wild_pointers_are_einval)
{
    unsigned char stack[64];
    mp_test_wild w;
    mp_test_wild_begin(&w, stack);
    for (size_t i = 0; i < w.n; i++) {
        mp_cond *c = w.p[i];
        cr_assert_eq(mp_cond_acquire(c, 0), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_cond_release(c), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_cond_wait(c, 0), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_cond_notify(c, 1), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_cond_notify_all(c), MP_EINVAL, "%s", w.what[i]);
        cr_assert_null(mp_cond_get_lock(c), "%s", w.what[i]);
        cr_assert_null(mp_cond_get_rlock(c), "%s", w.what[i]);
        mp_cond_destroy(c);
    }
    mp_test_wild_end(&w);
}

Test(cond, notify_n_wakes_exactly_n)
{
    cond_state st = {0};
    mp_lock *l;
    mp_assert_ok(mp_lock_create(&l, NULL));
    mp_assert_ok(mp_cond_create(&st.c, &(mp_cond_opts){.lock = l}));
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, cond_waiter, &st), 0);
    while (cond_read(&st, &st.ready) < 4)
        usleep(1000);
    mp_assert_ok(mp_cond_acquire(st.c, 10));
    mp_assert_rc(mp_cond_notify(st.c, 2), 2);
    mp_assert_ok(mp_cond_release(st.c));
    while (cond_read(&st, &st.woken) < 2)
        usleep(1000);
    usleep(50000); /* room for a third to wake by mistake */
    cr_assert_eq(cond_read(&st, &st.woken), 2);
    mp_assert_ok(mp_cond_acquire(st.c, 10));
    mp_assert_rc(mp_cond_notify_all(st.c), 2);
    mp_assert_ok(mp_cond_release(st.c));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(st.woken, 4);
    cr_assert_eq(st.result, 0);
    mp_cond_destroy(st.c);
    mp_lock_destroy(l);
}

static bool flag_is_set(void *arg)
{
    return __atomic_load_n((int *)arg, __ATOMIC_RELAXED) != 0;
}

typedef struct wait_for_arg {
    mp_cond *c;
    int *flag; /* in the shared heap */
} wait_for_arg;

static int set_flag_and_notify(const void *arg, size_t len)
{
    (void)len;
    const wait_for_arg *w = arg;
    usleep(20000);
    if (mp_cond_acquire(w->c, 10) != 0)
        return 1;
    __atomic_store_n(w->flag, 1, __ATOMIC_RELAXED);
    mp_cond_notify_all(w->c);
    return mp_cond_release(w->c) == 0 ? 0 : 2;
}

Test(cond, wait_for_predicate_across_processes)
{
    mp_value *v;
    mp_assert_ok(mp_value_create(&v, &(mp_value_opts){.typecode = 'i', .raw = true}));
    wait_for_arg w = {.flag = mp_value_data(v)};
    mp_assert_ok(mp_cond_create(&w.c, NULL));
    mp_assert_ok(mp_cond_acquire(w.c, 10));
    mp_assert_rc(mp_cond_wait_for(w.c, flag_is_set, w.flag, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp_cond_wait_for(w.c, flag_is_set, w.flag, 0.05), MP_ETIMEDOUT);
    mp_process *p = spawn(set_flag_and_notify, &w);
    mp_assert_ok(mp_cond_wait_for(w.c, flag_is_set, w.flag, 20));
    mp_assert_ok(mp_cond_wait_for(w.c, flag_is_set, w.flag, 0)); /* already true */
    mp_assert_ok(mp_cond_release(w.c));
    cr_assert_eq(join_code(p), 0);
    mp_cond_destroy(w.c);
    mp_value_destroy(v);
}

static int cond_wait_in_child(const void *arg, size_t len)
{
    (void)len;
    cond_state *st = (cond_state *)arg;
    if (mp_cond_acquire(st->c, 10) != 0)
        return 1;
    st->ready++;
    mp_cond_wait(st->c, 30); /* killed while waiting */
    return 2;
}

Test(cond, killed_waiter_strands_no_one)
{
    mp_array *a; /* the state lives in the heap so that the child's counts are seen */
    mp_assert_ok(mp_array_create(
        &a, &(mp_array_opts){.typecode = 'B', .len = sizeof(cond_state), .raw = true}));
    cond_state *st = mp_array_data(a);
    mp_assert_ok(mp_cond_create(&st->c, NULL));
    mp_process *p = spawn(cond_wait_in_child, st);
    while (cond_read(st, &st->ready) < 1)
        usleep(1000);
    mp_assert_ok(mp_process_kill(p));
    mp_process_destroy(p);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, cond_waiter, st), 0);
    while (cond_read(st, &st->ready) < 2)
        usleep(1000);
    mp_assert_ok(mp_cond_acquire(st->c, 10));
    mp_assert_rc(mp_cond_notify(st->c, 1), 1);
    mp_assert_ok(mp_cond_release(st->c));
    pthread_join(t, NULL);
    cr_assert_eq(st->woken, 1, "the live waiter was not woken (result %s)",
                 mp_err_name(st->result));
    mp_cond_destroy(st->c);
    mp_array_destroy(a);
}

/* ---- Event ---------------------------------------------------------------- */

Test(event, set_clear_wait)
{
    mp_event *e;
    mp_assert_ok(mp_event_create(&e, NULL));
    cr_assert(!mp_event_is_set(e));
    mp_assert_rc(mp_event_wait(e, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp_event_wait(e, 0.05), MP_ETIMEDOUT);
    mp_assert_ok(mp_event_set(e));
    mp_assert_ok(mp_event_set(e));
    cr_assert(mp_event_is_set(e));
    mp_assert_ok(mp_event_wait(e, 0));
    mp_assert_ok(mp_event_wait(e, MP_FOREVER));
    mp_assert_ok(mp_event_clear(e));
    cr_assert(!mp_event_is_set(e));
    mp_event_destroy(e);
    mp_assert_ok(mp_event_create(&e, &(mp_event_opts){.set = true}));
    cr_assert(mp_event_is_set(e));
    mp_assert_rc(mp_event_wait(e, 0.0 / 0.0), MP_EINVAL);
    mp_event_destroy(e);
    mp_assert_rc(mp_event_create(NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_event_set(NULL), MP_EINVAL);
    mp_assert_rc(mp_event_wait(NULL, 0), MP_EINVAL);
    cr_assert(!mp_event_is_set(NULL));
}

typedef struct event_wait_arg {
    mp_event *go;
    mp_sem *ready;
} event_wait_arg;

/* Says it is about to wait, then waits for go. */
static int event_wait_child(const void *arg, size_t len)
{
    (void)len;
    const event_wait_arg *a = arg;
    mp_sem_release(a->ready);
    return mp_event_wait(a->go, 20) == 0 ? 0 : 1;
}

/* Waits until process p sleeps (its state in /proc is S): after it said it
 * is about to wait, the only place it can sleep is that wait. */
static void wait_until_sleeping(mp_process *p)
{
    double t0 = mp_test_now();
    while (mp_test_pid_state(mp_process_pid(p)) != 'S') {
        cr_assert(mp_test_now() - t0 < 10, "child %d never waits", (int)mp_process_pid(p));
        usleep(1000);
    }
}

Test(event, wild_pointers_are_einval)
{
    unsigned char stack[64];
    mp_test_wild w;
    mp_test_wild_begin(&w, stack);
    for (size_t i = 0; i < w.n; i++) {
        mp_event *e = w.p[i];
        cr_assert_eq(mp_event_set(e), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_event_clear(e), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_event_wait(e, 0), MP_EINVAL, "%s", w.what[i]);
        cr_assert_not(mp_event_is_set(e), "%s", w.what[i]);
        mp_event_destroy(e);
    }
    mp_test_wild_end(&w);
}

Test(event, wakes_waiters_in_other_processes)
{
    event_wait_arg a;
    mp_assert_ok(mp_event_create(&a.go, NULL));
    mp_assert_ok(mp_sem_create(&a.ready, &(mp_sem_opts){.value = 0}));
    mp_process *p = spawn(event_wait_child, &a), *q = spawn(event_wait_child, &a);
    mp_assert_ok(mp_sem_acquire(a.ready, 10));
    mp_assert_ok(mp_sem_acquire(a.ready, 10));
    wait_until_sleeping(p);
    wait_until_sleeping(q);
    mp_assert_ok(mp_event_set(a.go));
    mp_assert_ok(
        mp_event_clear(a.go)); /* a set is never missed by a waiter, even cleared at once */
    cr_assert_eq(join_code(p), 0);
    cr_assert_eq(join_code(q), 0);
    mp_event_destroy(a.go);
    mp_sem_destroy(a.ready);
}

/* ---- Barrier -------------------------------------------------------------- */

typedef struct barrier_arg {
    mp_barrier *b;
    double timeout;
    int result;
} barrier_arg;

static void *barrier_thread(void *arg)
{
    barrier_arg *a = arg;
    a->result = mp_barrier_wait(a->b, a->timeout);
    return NULL;
}

static int count_action(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

Test(barrier, indices_and_action)
{
    int actions = 0;
    mp_barrier *b;
    mp_assert_ok(mp_barrier_create(
        &b, &(mp_barrier_opts){.parties = 3, .action = count_action, .action_arg = &actions}));
    cr_assert_eq(mp_barrier_parties(b), 3);
    for (int round = 0; round < 3; round++) {
        barrier_arg a[3];
        pthread_t t[3];
        for (int i = 0; i < 3; i++) {
            a[i] = (barrier_arg){.b = b, .timeout = 20};
            cr_assert_eq(pthread_create(&t[i], NULL, barrier_thread, &a[i]), 0);
        }
        int seen = 0;
        for (int i = 0; i < 3; i++) {
            pthread_join(t[i], NULL);
            cr_assert(a[i].result >= 0 && a[i].result < 3, "result %d", a[i].result);
            seen |= 1 << a[i].result;
        }
        cr_assert_eq(seen, 7);
    }
    cr_assert_eq(actions, 3);
    cr_assert(!mp_barrier_broken(b));
    mp_barrier_destroy(b);
}

Test(barrier, timeout_breaks_it_until_reset)
{
    mp_barrier *b;
    mp_assert_ok(mp_barrier_create(&b, &(mp_barrier_opts){.parties = 3}));
    barrier_arg a = {.b = b, .timeout = 20};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, barrier_thread, &a), 0);
    while (mp_barrier_n_waiting(b) < 1)
        usleep(1000);
    /* The second of three parties times out: the barrier breaks for both. */
    mp_assert_rc(mp_barrier_wait(b, 0.05), MP_EBROKEN);
    pthread_join(t, NULL);
    mp_assert_rc(a.result, MP_EBROKEN);
    cr_assert(mp_barrier_broken(b));
    mp_assert_rc(mp_barrier_wait(b, 1), MP_EBROKEN);
    mp_assert_rc(mp_barrier_wait(b, 0), MP_EBROKEN);
    mp_assert_ok(mp_barrier_reset(b));
    cr_assert(!mp_barrier_broken(b));
    barrier_arg a2 = a;
    pthread_t t2;
    cr_assert_eq(pthread_create(&t, NULL, barrier_thread, &a), 0);
    cr_assert_eq(pthread_create(&t2, NULL, barrier_thread, &a2), 0);
    while (mp_barrier_n_waiting(b) < 2)
        usleep(1000);
    int idx = mp_barrier_wait(b, 0); /* the last party never waits */
    pthread_join(t, NULL);
    pthread_join(t2, NULL);
    cr_assert_eq(idx, 2);
    cr_assert_eq(a.result + a2.result, 1);
    mp_barrier_destroy(b);
}

static void *barrier_default_thread(void *arg)
{
    barrier_arg *a = arg;
    a->result = mp_barrier_wait_default(a->b);
    return NULL;
}

/* Python's Barrier(parties, timeout=t).wait(): the default breaks the
 * barrier when it expires; an explicit timeout overrides it. */
Test(barrier, default_timeout_is_used_by_wait_default_only)
{
    mp_barrier *b;
    mp_assert_ok(mp_barrier_create(&b, &(mp_barrier_opts){.parties = 2, .timeout = 0.05}));
    mp_assert_rc(mp_barrier_wait_default(b), MP_EBROKEN);
    cr_assert(mp_barrier_broken(b));
    mp_assert_ok(mp_barrier_reset(b));
    /* An explicit timeout is not the default: this party outwaits it. */
    barrier_arg a = {.b = b, .timeout = 20};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, barrier_thread, &a), 0);
    while (mp_barrier_n_waiting(b) < 1)
        usleep(1000);
    usleep(200 * 1000); /* four default timeouts */
    int idx = mp_barrier_wait_default(b);
    pthread_join(t, NULL);
    cr_assert_eq(idx + a.result, 1, "%d %d", idx, a.result);
    cr_assert_not(mp_barrier_broken(b));
    mp_barrier_destroy(b);
}

Test(barrier, no_default_timeout_waits_without_limit)
{
    mp_barrier *b;
    mp_assert_ok(mp_barrier_create(&b, &(mp_barrier_opts){.parties = 2}));
    barrier_arg a = {.b = b};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, barrier_default_thread, &a), 0);
    while (mp_barrier_n_waiting(b) < 1)
        usleep(1000);
    usleep(100 * 1000); /* a default of 0 would have broken it at once */
    cr_assert_not(mp_barrier_broken(b));
    int idx = mp_barrier_wait(b, 20);
    pthread_join(t, NULL);
    cr_assert_eq(idx + a.result, 1, "%d %d", idx, a.result);
    mp_barrier_destroy(b);
    mp_assert_rc(mp_barrier_wait_default(NULL), MP_EINVAL);
    mp_assert_rc(mp_barrier_create(&b, &(mp_barrier_opts){.parties = 2, .timeout = 0.0 / 0.0}),
                 MP_EINVAL);
}

Test(barrier, abort_and_reset_release_waiters)
{
    mp_barrier *b;
    mp_assert_ok(mp_barrier_create(&b, &(mp_barrier_opts){.parties = 3}));
    barrier_arg a = {.b = b, .timeout = 20};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, barrier_thread, &a), 0);
    while (mp_barrier_n_waiting(b) < 1)
        usleep(1000);
    mp_assert_ok(mp_barrier_reset(b));
    pthread_join(t, NULL);
    mp_assert_rc(a.result, MP_EBROKEN);
    cr_assert(!mp_barrier_broken(b));
    cr_assert_eq(mp_barrier_n_waiting(b), 0);
    cr_assert_eq(pthread_create(&t, NULL, barrier_thread, &a), 0);
    while (mp_barrier_n_waiting(b) < 1)
        usleep(1000);
    mp_assert_ok(mp_barrier_abort(b));
    pthread_join(t, NULL);
    mp_assert_rc(a.result, MP_EBROKEN);
    cr_assert(mp_barrier_broken(b));
    mp_assert_rc(mp_barrier_wait(b, 1), MP_EBROKEN);
    mp_barrier_destroy(b);
}

static int failing_action(void *arg)
{
    (void)arg;
    return -1;
}

Test(barrier, failed_action_breaks_it)
{
    mp_barrier *b;
    mp_assert_ok(mp_barrier_create(&b, &(mp_barrier_opts){.parties = 2, .action = failing_action}));
    barrier_arg a = {.b = b, .timeout = 20};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, barrier_thread, &a), 0);
    mp_assert_rc(mp_barrier_wait(b, 20), MP_EBROKEN);
    pthread_join(t, NULL);
    mp_assert_rc(a.result, MP_EBROKEN);
    cr_assert(mp_barrier_broken(b));
    mp_barrier_destroy(b);
}

Test(barrier, bad_input)
{
    mp_barrier *b = NULL;
    mp_assert_rc(mp_barrier_create(&b, &(mp_barrier_opts){.parties = 0}), MP_EINVAL);
    mp_assert_rc(mp_barrier_create(&b, NULL), MP_EINVAL);
    mp_assert_rc(mp_barrier_create(NULL, &(mp_barrier_opts){.parties = 1}), MP_EINVAL);
    cr_assert_null(b);
    mp_assert_ok(mp_barrier_create(&b, &(mp_barrier_opts){.parties = 1}));
    cr_assert_eq(mp_barrier_wait(b, 0), 0); /* one party: never waits */
    mp_assert_rc(mp_barrier_wait(b, 0.0 / 0.0), MP_EINVAL);
    mp_barrier_destroy(b);
    mp_assert_rc(mp_barrier_wait(NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_barrier_parties(NULL), MP_EINVAL);
    mp_barrier_destroy(NULL);
}

static int barrier_party(const void *arg, size_t len)
{
    (void)len;
    int rc = mp_barrier_wait((mp_barrier *)arg, 20);
    return rc >= 0 ? rc : 100;
}

Test(barrier, wild_pointers_are_einval)
{
    unsigned char stack[64];
    mp_test_wild w;
    mp_test_wild_begin(&w, stack);
    for (size_t i = 0; i < w.n; i++) {
        mp_barrier *b = w.p[i];
        cr_assert_eq(mp_barrier_wait(b, 0), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_barrier_reset(b), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_barrier_abort(b), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_barrier_parties(b), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_barrier_n_waiting(b), MP_EINVAL, "%s", w.what[i]);
        cr_assert_not(mp_barrier_broken(b), "%s", w.what[i]);
        mp_barrier_destroy(b);
    }
    mp_test_wild_end(&w);
}

Test(barrier, processes_and_a_killed_party)
{
    mp_barrier *b;
    mp_assert_ok(mp_barrier_create(&b, &(mp_barrier_opts){.parties = 3}));
    mp_process *p = spawn(barrier_party, b), *q = spawn(barrier_party, b);
    int mine = mp_barrier_wait(b, 20);
    int cp = join_code(p), cq = join_code(q);
    cr_assert(mine >= 0 && cp <= 2 && cq <= 2);
    cr_assert_eq((1 << mine) | (1 << cp) | (1 << cq), 7);
    /* A party that dies while waiting: the others are released by their
     * timeout, with the barrier broken. */
    p = spawn(barrier_party, b);
    while (mp_barrier_n_waiting(b) < 1)
        usleep(1000);
    mp_assert_ok(mp_process_kill(p));
    mp_process_destroy(p);
    mp_assert_rc(mp_barrier_wait(b, 0.1), MP_EBROKEN);
    cr_assert(mp_barrier_broken(b));
    mp_barrier_destroy(b);
}
