/* Tests of the observers of the local locks (mp_lock_locked,
 * mp_lock_owner, mp_rlock_locked, mp_rlock_owner): what another thread
 * and another process see, a dead holder, bad input. The same calls on
 * a manager's locks, on both backends, are in tests/manager. */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "mp_test.h"
#include "wild_pointers.h"

TestSuite(lock_owner, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

typedef struct seen {
    mp_lock *lock;
    mp_rlock *rlock;
    int locked, rc;
    pid_t pid, tid;
    uint32_t depth;
} seen;

static void *observe(void *arg)
{
    seen *s = arg;
    s->pid = s->tid = -1;
    s->depth = 99;
    if (s->lock) {
        s->locked = mp_lock_locked(s->lock);
        s->rc = mp_lock_owner(s->lock, &s->pid, &s->tid);
    } else {
        s->locked = mp_rlock_locked(s->rlock);
        s->rc = mp_rlock_owner(s->rlock, &s->pid, &s->tid, &s->depth);
    }
    return NULL;
}

static void observe_in_thread(seen *s)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, observe, s), 0);
    pthread_join(t, NULL);
}

Test(lock_owner, another_thread_sees_the_holder_thread)
{
    seen s = {0};
    mp_assert_ok(mp_lock_create(&s.lock, NULL));
    observe_in_thread(&s);
    mp_assert_rc(s.locked, 0);
    mp_assert_rc(s.rc, MP_ESRCH);
    cr_assert(s.pid == -1 && s.tid == -1, "outputs untouched when free");
    mp_assert_ok(mp_lock_acquire(s.lock, 0));
    observe_in_thread(&s);
    mp_assert_rc(s.locked, 1);
    mp_assert_ok(s.rc);
    cr_assert_eq(s.pid, getpid());
    cr_assert_eq(s.tid, (pid_t)gettid());
    mp_assert_ok(mp_lock_release(s.lock));
    observe_in_thread(&s);
    mp_assert_rc(s.locked, 0);
    mp_assert_rc(s.rc, MP_ESRCH);
    mp_lock_destroy(s.lock);
}

Test(lock_owner, rlock_depth_follows_the_levels)
{
    seen s = {0};
    mp_assert_ok(mp_rlock_create(&s.rlock, NULL));
    for (uint32_t level = 1; level <= 3; level++) {
        mp_assert_ok(mp_rlock_acquire(s.rlock, 0));
        observe_in_thread(&s);
        mp_assert_rc(s.locked, 1);
        mp_assert_ok(s.rc);
        cr_assert_eq(s.depth, level);
        cr_assert_eq(s.pid, getpid());
        cr_assert_eq(s.tid, (pid_t)gettid());
    }
    for (uint32_t level = 3; level > 0; level--)
        mp_assert_ok(mp_rlock_release(s.rlock));
    observe_in_thread(&s);
    mp_assert_rc(s.locked, 0);
    mp_assert_rc(s.rc, MP_ESRCH);
    cr_assert_eq(s.depth, 99);
    mp_rlock_destroy(s.rlock);
}

/* Child: takes the rlock twice, says so, and waits to be killed. */
typedef struct hold_arg {
    mp_rlock *rlock;
    mp_event *held;
} hold_arg;

static int hold_twice(const void *arg, size_t len)
{
    (void)len;
    const hold_arg *h = arg;
    if (mp_rlock_acquire(h->rlock, 10) != 0 || mp_rlock_acquire(h->rlock, 10) != 0)
        return 1;
    mp_event_set(h->held);
    for (;;)
        pause();
}

Test(lock_owner, a_killed_holder_is_reported_until_taken_over)
{
    hold_arg h;
    mp_assert_ok(mp_rlock_create(&h.rlock, NULL));
    mp_assert_ok(mp_event_create(&h.held, NULL));
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = hold_twice, .args = &h}));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp_event_wait(h.held, 10));
    pid_t child = mp_process_pid(p), pid = 0, tid = 0;
    uint32_t depth = 0;
    mp_assert_ok(mp_rlock_owner(h.rlock, &pid, &tid, &depth));
    cr_assert(pid == child && tid == child && depth == 2, "%d %d %u", pid, tid, depth);
    mp_assert_ok(mp_process_kill(p));
    mp_process_destroy(p);
    mp_assert_rc(mp_rlock_locked(h.rlock), 1);
    mp_assert_ok(mp_rlock_owner(h.rlock, &pid, &tid, &depth));
    cr_assert(pid == child && tid == child && depth == 2);
    mp_assert_rc(mp_rlock_acquire(h.rlock, 10), MP_EOWNERDEAD);
    mp_assert_ok(mp_rlock_owner(h.rlock, &pid, &tid, &depth));
    cr_assert(pid == getpid() && tid == (pid_t)gettid() && depth == 1);
    mp_assert_ok(mp_rlock_consistent(h.rlock));
    mp_assert_ok(mp_rlock_release(h.rlock));
    mp_event_destroy(h.held);
    mp_rlock_destroy(h.rlock);
}

Test(lock_owner, bad_input_and_wild_pointers_are_einval)
{
    mp_lock *l;
    mp_rlock *r;
    mp_assert_ok(mp_lock_create(&l, NULL));
    mp_assert_ok(mp_rlock_create(&r, NULL));
    /* One kind is not the other. */
    mp_assert_rc(mp_lock_locked((mp_lock *)r), MP_EINVAL);
    mp_assert_rc(mp_rlock_owner((mp_rlock *)l, NULL, NULL, NULL), MP_EINVAL);
    mp_rlock_destroy(r);
    mp_lock_destroy(l);
    mp_assert_rc(mp_lock_locked(l), MP_EINVAL); /* destroyed */
    unsigned char stack[64];
    mp_test_wild w;
    mp_test_wild_begin(&w, stack);
    for (size_t i = 0; i < w.n; i++) {
        pid_t pid, tid;
        uint32_t depth;
        cr_assert_eq(mp_lock_locked(w.p[i]), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_lock_owner(w.p[i], &pid, &tid), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_rlock_locked(w.p[i]), MP_EINVAL, "%s", w.what[i]);
        cr_assert_eq(mp_rlock_owner(w.p[i], &pid, &tid, &depth), MP_EINVAL, "%s", w.what[i]);
    }
    mp_test_wild_end(&w);
}
