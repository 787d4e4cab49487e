/* The per-thread interrupt settings and cancellation objects (see
 * multiproc/interrupt.h, and base/internal.h for what the waits use).
 *
 * A cancel is a flag, an eventfd that turns readable when it is
 * triggered (for the waits that poll), and a table of the futex words on
 * which watching threads sleep: the trigger wakes each (FUTEX_WAKE on a
 * word wakes its other sleepers too, which take it as a spurious
 * wake-up). Everything the trigger does is an atomic operation, write()
 * or a futex system call, so it may run in a signal handler. A thread
 * that sleeps with a cancel watched sleeps in slices of at most
 * MP__INTR_SLICE_NS, so a trigger that falls between its last look and
 * its sleep costs one slice at most. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/internal.h"

/* Futex words watched at once; a sleeper that finds no free slot relies
 * on its slices. */
#define WATCH_SLOTS 64

struct mp_cancel {
    _Atomic int triggered;
    int efd;
    _Atomic(_Atomic uint32_t *) words[WATCH_SLOTS];
};

static _Thread_local bool tl_interruptible;
static _Thread_local mp_cancel *tl_cancel;

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A forked child starts with neither setting (its main thread is a copy
 * of the forking thread, thread-locals included). */
static void atfork_child(void)
{
    tl_interruptible = false;
    tl_cancel = NULL;
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

bool mp_set_interruptible(bool on)
{
    pthread_once(&atfork_once, register_atfork);
    bool was = tl_interruptible;
    tl_interruptible = on;
    return was;
}

bool mp_interruptible(void)
{
    return tl_interruptible;
}

int mp_cancel_create(mp_cancel **out)
{
    if (out == NULL)
        return MP_EINVAL;
    mp_cancel *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return MP_ENOMEM;
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->efd < 0) {
        int rc = mp__errno();
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void mp_cancel_destroy(mp_cancel *c)
{
    if (c == NULL)
        return;
    if (tl_cancel == c)
        tl_cancel = NULL;
    close(c->efd);
    free(c);
}

int mp_cancel_trigger(mp_cancel *c)
{
    if (c == NULL)
        return MP_EINVAL;
    int saved = errno; /* a signal handler must leave errno as it was */
    if (atomic_exchange(&c->triggered, 1) == 0) {
        uint64_t one = 1;
        ssize_t w = write(c->efd, &one, sizeof(one));
        (void)w;
    }
    for (int i = 0; i < WATCH_SLOTS; i++) {
        _Atomic uint32_t *word = atomic_load(&c->words[i]);
        if (word)
            syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    }
    errno = saved;
    return 0;
}

bool mp_cancel_triggered(const mp_cancel *c)
{
    return c != NULL && atomic_load(&((mp_cancel *)c)->triggered) != 0;
}

int mp_cancel_reset(mp_cancel *c)
{
    if (c == NULL)
        return MP_EINVAL;
    uint64_t v;
    while (read(c->efd, &v, sizeof(v)) > 0)
        ;
    atomic_store(&c->triggered, 0);
    return 0;
}

mp_cancel *mp_cancel_set_current(mp_cancel *c)
{
    pthread_once(&atfork_once, register_atfork);
    mp_cancel *was = tl_cancel;
    tl_cancel = c;
    return was;
}

mp_cancel *mp_cancel_current(void)
{
    return tl_cancel;
}

/* ---- what the waits use ---------------------------------------------------*/

int mp__intr_check(void)
{
    mp_cancel *c = tl_cancel;
    return c && atomic_load(&c->triggered) ? MP_ECANCELED : 0;
}

int mp__intr_after_eintr(void)
{
    int rc = mp__intr_check();
    return rc < 0 ? rc : tl_interruptible ? MP_EINTR : 0;
}

bool mp__intr_active(void)
{
    return tl_interruptible || tl_cancel != NULL;
}

int mp__intr_fd(void)
{
    return tl_cancel ? tl_cancel->efd : -1;
}

int mp__intr_watch(_Atomic uint32_t *word)
{
    mp_cancel *c = tl_cancel;
    if (c == NULL)
        return -1;
    for (int i = 0; i < WATCH_SLOTS; i++) {
        _Atomic uint32_t *none = NULL;
        if (atomic_compare_exchange_strong(&c->words[i], &none, word))
            return i;
    }
    return -1;
}

void mp__intr_unwatch(int slot)
{
    mp_cancel *c = tl_cancel;
    if (c != NULL && slot >= 0)
        atomic_store(&c->words[slot], NULL);
}

void mp__intr_slice(mp__deadline *slice, const mp__deadline *d)
{
    *slice = *d;
    if (tl_cancel == NULL)
        return;
    int64_t cap = mp__now_ns() + MP__INTR_SLICE_NS;
    if (slice->ns < 0 || slice->ns > cap)
        slice->ns = cap;
}
