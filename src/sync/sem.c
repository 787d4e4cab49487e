/* Semaphore, BoundedSemaphore and Event (see multiproc/sync.h): lock-free
 * words in the shared heap with futex sleeps. Neither has an owner, so
 * neither has anything to hand over when a process dies. */
#include <limits.h>
#include <math.h>

#include "os/futex.h"
#include "sync/sync_internal.h"

struct mp_sem {
    mp__obj_head head;
    _Atomic uint32_t value;   /* the futex word */
    _Atomic uint32_t waiters; /* sleeping or about to: releases wake only then */
    uint32_t max;             /* the initial value when bounded */
};

/* Event: bit 0 of `word` is the flag, the bits above count the sets, so
 * that a waiter notices a set even when a clear follows it at once. */
struct mp_event {
    mp__obj_head head;
    _Atomic uint32_t word;
    _Atomic uint32_t waiters;
};

static int sem_check(const char *fn, const mp_sem *s)
{
    if (mp__check_obj(s, sizeof *s, MP__SEM_MAGIC) < 0)
        return mp__obj_fail(fn, "sem", s, "semaphore");
    return 0;
}

static int event_check(const char *fn, const mp_event *e)
{
    if (mp__check_obj(e, sizeof *e, MP__EVENT_MAGIC) < 0)
        return mp__obj_fail(fn, "ev", e, "event");
    return 0;
}

int mp_sem_create(mp_sem **out, const mp_sem_opts *opts)
{
    mp_sem_opts o = opts ? *opts : (mp_sem_opts){0};
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_sem_create: out is NULL");
    if (o.value > MP_SEM_VALUE_MAX)
        return mp__fail(MP_EINVAL,
                        "mp_sem_create: opts->value is %u (at most MP_SEM_VALUE_MAX, %u)",
                        (unsigned)o.value, (unsigned)MP_SEM_VALUE_MAX);
    void *mem = NULL;
    int rc = mp__heap_alloc_for("mp_sem_create", &mem, sizeof(mp_sem));
    if (rc < 0)
        return rc;
    mp_sem *s = mem;
    s->max = o.bounded ? o.value : MP_SEM_VALUE_MAX;
    atomic_store_explicit(&s->value, o.value, memory_order_relaxed);
    atomic_store_explicit(&s->waiters, 0, memory_order_relaxed);
    mp__obj_publish(&s->head, MP__SEM_MAGIC);
    *out = s;
    return 0;
}

void mp_sem_destroy(mp_sem *sem)
{
    if (mp__obj_is_remote(sem)) {
        const mp__sem_ops *ops = mp__sem_remote(sem);
        if (ops)
            ops->destroy(sem);
        return;
    }
    if (mp__check_obj(sem, sizeof *sem, MP__SEM_MAGIC) < 0 || mp__obj_named(sem))
        return;
    mp__obj_retire(&sem->head);
    mp__heap_free(sem);
}

static bool sem_try_down(mp_sem *s)
{
    uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    while (v > 0)
        if (atomic_compare_exchange_weak(&s->value, &v, v - 1))
            return true;
    return false;
}

int mp_sem_acquire(mp_sem *sem, double timeout)
{
    if (mp__obj_is_remote(sem))
        return MP__REMOTE_CALL(mp__sem_remote(sem), acquire, sem, timeout);
    int rc = sem_check("mp_sem_acquire", sem);
    if (rc < 0)
        return rc;
    if (isnan(timeout))
        return mp__sync_fail_nan("mp_sem_acquire");
    if (sem_try_down(sem))
        return 0;
    if (timeout == 0)
        return MP_ETIMEDOUT;
    mp__deadline d;
    mp__deadline_init(&d, timeout);
    /* The waiter count is raised before the value is checked again, and a
     * release raises the value before it reads the count (both sequentially
     * consistent): either the release sees this waiter and wakes it, or
     * this waiter sees the released unit. */
    atomic_fetch_add(&sem->waiters, 1);
    for (;;) {
        if (sem_try_down(sem)) {
            rc = 0;
            break;
        }
        rc = mp__futex_wait_intr(&sem->value, 0, &d);
        if (rc < 0) {
            rc = sem_try_down(sem) ? 0 : rc;
            break;
        }
    }
    atomic_fetch_sub(&sem->waiters, 1);
    return rc;
}

int mp_sem_release(mp_sem *sem)
{
    if (mp__obj_is_remote(sem))
        return MP__REMOTE_CALL(mp__sem_remote(sem), release, sem);
    int rc = sem_check("mp_sem_release", sem);
    if (rc < 0)
        return rc;
    uint32_t v = atomic_load_explicit(&sem->value, memory_order_relaxed);
    do {
        if (v >= sem->max)
            return mp__fail(MP_EOVERFLOW, "mp_sem_release: the value is already %u, its bound (%s)",
                            (unsigned)v,
                            sem->max == MP_SEM_VALUE_MAX
                                ? "MP_SEM_VALUE_MAX"
                                : "a bounded semaphore released more than acquired");
    } while (!atomic_compare_exchange_weak(&sem->value, &v, v + 1));
    if (atomic_load(&sem->waiters) > 0)
        mp__futex_wake(&sem->value, 1);
    return 0;
}

int mp_sem_get_value(mp_sem *sem)
{
    if (mp__obj_is_remote(sem))
        return MP__REMOTE_CALL(mp__sem_remote(sem), get_value, sem);
    int rc = sem_check("mp_sem_get_value", sem);
    if (rc < 0)
        return rc;
    return (int)atomic_load_explicit(&sem->value, memory_order_relaxed);
}

int mp_event_create(mp_event **out, const mp_event_opts *opts)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_event_create: out is NULL");
    void *mem = NULL;
    int rc = mp__heap_alloc_for("mp_event_create", &mem, sizeof(mp_event));
    if (rc < 0)
        return rc;
    mp_event *e = mem;
    atomic_store_explicit(&e->word, opts && opts->set ? 1u : 0u, memory_order_relaxed);
    atomic_store_explicit(&e->waiters, 0, memory_order_relaxed);
    mp__obj_publish(&e->head, MP__EVENT_MAGIC);
    *out = e;
    return 0;
}

void mp_event_destroy(mp_event *ev)
{
    if (mp__obj_is_remote(ev)) {
        const mp__event_ops *ops = mp__event_remote(ev);
        if (ops)
            ops->destroy(ev);
        return;
    }
    if (mp__check_obj(ev, sizeof *ev, MP__EVENT_MAGIC) < 0 || mp__obj_named(ev))
        return;
    mp__obj_retire(&ev->head);
    mp__heap_free(ev);
}

int mp_event_set(mp_event *ev)
{
    if (mp__obj_is_remote(ev))
        return MP__REMOTE_CALL(mp__event_remote(ev), set, ev);
    int rc = event_check("mp_event_set", ev);
    if (rc < 0)
        return rc;
    uint32_t w = atomic_load(&ev->word);
    do {
        if (w & 1u)
            return 0;
    } while (!atomic_compare_exchange_weak(&ev->word, &w, (w + 2u) | 1u));
    if (atomic_load(&ev->waiters) > 0)
        mp__futex_wake(&ev->word, INT_MAX);
    return 0;
}

int mp_event_clear(mp_event *ev)
{
    if (mp__obj_is_remote(ev))
        return MP__REMOTE_CALL(mp__event_remote(ev), clear, ev);
    int rc = event_check("mp_event_clear", ev);
    if (rc < 0)
        return rc;
    atomic_fetch_and(&ev->word, ~1u);
    return 0;
}

int mp__event_poll(mp_event *ev)
{
    int rc = event_check("mp_wait", ev);
    return rc < 0 ? rc : (atomic_load(&ev->word) & 1u) ? 1 : 0;
}

bool mp_event_is_set(mp_event *ev)
{
    if (mp__obj_is_remote(ev))
        return MP__REMOTE_CALL(mp__event_remote(ev), is_set, ev) > 0;
    return mp__check_obj(ev, sizeof *ev, MP__EVENT_MAGIC) == 0 && (atomic_load(&ev->word) & 1u);
}

int mp_event_wait(mp_event *ev, double timeout)
{
    if (mp__obj_is_remote(ev))
        return MP__REMOTE_CALL(mp__event_remote(ev), wait, ev, timeout);
    int rc = event_check("mp_event_wait", ev);
    if (rc < 0)
        return rc;
    if (isnan(timeout))
        return mp__sync_fail_nan("mp_event_wait");
    uint32_t w = atomic_load(&ev->word);
    if (w & 1u)
        return 0;
    if (timeout == 0)
        return MP_ETIMEDOUT;
    mp__deadline d;
    mp__deadline_init(&d, timeout);
    atomic_fetch_add(&ev->waiters, 1);
    /* With the flag clear the word changes only by a set (a clear leaves it
     * as it is), so any change means the event was set during the wait. */
    for (;;) {
        if (w != atomic_load(&ev->word)) {
            rc = 0;
            break;
        }
        rc = mp__futex_wait_intr(&ev->word, w, &d);
        if (rc < 0) {
            rc = w != atomic_load(&ev->word) ? 0 : rc;
            break;
        }
    }
    atomic_fetch_sub(&ev->waiters, 1);
    return rc;
}
