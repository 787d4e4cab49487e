/* Result fds: mp_async_fd and mp_imap_fd, so that an event loop (epoll,
 * libuv, GLib) can wait for a pool's results; mp_wait's tables for results;
 * mp_async_wait_any and mp_async_wait_some.
 *
 * Results reach the parent only when one of its calls collects them from
 * the ring (the pump): no thread of the library does it behind the
 * caller's back. So a result fd cannot be written by the parent when a
 * result arrives; instead it is an epoll set of the handle's own, holding
 * an eventfd that the pump makes readable once the handle is ready, and,
 * until then, the pool's epoll set. That one turns readable when the pool
 * needs its owner to pump: a worker published a slot (the workers write
 * the pool's eventfd then, but only while some fd is watched, and only
 * when the last write is still unread, so the ring's hot path pays one
 * load when nobody watches), a worker died (its sentinel), or, with a
 * per-task timeout, a slice passed (a timerfd). The owner's next call of
 * the pool (mp_async_ready is the cheapest) pumps, drains all of it, and
 * leaves each handle's fd readable exactly when the handle is ready.
 * mp_wait (and so wait_any/_some) polls the pool's set itself. */
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "pool/pool_internal.h"
#include "multiproc/wait.h"

#define TIMER_TAG UINT64_MAX /* epoll data of the timerfd; 0 is the eventfd, i + 1 worker i */

void mp__pool_fd_init(mp_pool *p)
{
    p->efd = p->tfd = -1;
    p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    p->wake_err = p->wake_fd < 0 ? -errno : 0;
    p->shm->wake_fd = p->wake_fd;
}

void mp__pool_fd_fini(mp_pool *p)
{
    if (p->tfd >= 0)
        close(p->tfd);
    if (p->efd >= 0)
        close(p->efd);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    p->tfd = p->efd = p->wake_fd = -1;
}

void mp__pool_fd_worker(mp_pool *p, int index, bool add)
{
    if (p->efd < 0 || p->threads || !p->workers[index])
        return;
    /* Removed explicitly before the sentinel is closed: a sibling forked
     * later holds a copy of it, so closing would not end the watch. */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)index + 1};
    int fd = mp_process_sentinel(p->workers[index]);
    if (fd >= 0)
        (void)epoll_ctl(p->efd, add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev);
}

/* The pool's epoll set, made on first use. */
static int pool_efd(mp_pool *p)
{
    if (p->efd >= 0)
        return 0;
    if (p->wake_fd < 0)
        return p->wake_err;
    int efd = epoll_create1(EPOLL_CLOEXEC);
    if (efd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (epoll_ctl(efd, EPOLL_CTL_ADD, p->wake_fd, &ev) < 0)
        goto fail;
    if (p->shm->timeout_ns > 0) {
        p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        ev.data.u64 = TIMER_TAG;
        if (p->tfd < 0 || epoll_ctl(efd, EPOLL_CTL_ADD, p->tfd, &ev) < 0)
            goto fail;
    }
    p->efd = efd;
    for (int i = 0; i < p->nproc; i++)
        mp__pool_fd_worker(p, i, true);
    return 0;
fail:;
    int rc = -errno;
    if (p->tfd >= 0)
        close(p->tfd);
    p->tfd = -1;
    close(efd);
    return rc;
}

static void drain_wake(mp_pool *p)
{
    uint64_t v;
    if (atomic_exchange(&p->shm->wake_pending, 0))
        (void)!read(p->wake_fd, &v, sizeof v);
}

/* One more (delta 1) or one fewer (-1) unfinished job with an fd: the
 * workers signal, and the timer ticks, only while there is one. */
static void watch_count(mp_pool *p, int delta)
{
    p->nwatch = delta > 0 ? p->nwatch + 1 : p->nwatch - 1;
    if (p->nwatch != (delta > 0 ? 1u : 0u))
        return;
    long slice = delta > 0 ? MP__POOL_SLICE_NS : 0;
    struct itimerspec its = {.it_interval = {0, slice}, .it_value = {0, slice}};
    if (p->tfd >= 0)
        (void)timerfd_settime(p->tfd, 0, &its, NULL);
    if (delta > 0)
        drain_wake(p); /* a write left unread while nobody watched would stop the next ones */
    atomic_store(&p->shm->notify, delta > 0 ? 1u : 0u);
}

bool mp__pool_fd_drain(mp_pool *p)
{
    struct epoll_event ev[16];
    bool dead = false;
    drain_wake(p);
    int n = epoll_wait(p->efd, ev, 16, 0);
    for (int i = 0; i < n; i++) {
        uint64_t v;
        if (ev[i].data.u64 == TIMER_TAG)
            (void)!read(p->tfd, &v, sizeof v);
        else if (ev[i].data.u64 > 0)
            dead = true;
    }
    return dead;
}

static void set_ready(mp_async *a, bool on)
{
    uint64_t v = 1;
    if (on == a->ready_on)
        return;
    if (on)
        (void)!write(a->ready_fd, &v, sizeof v);
    else
        (void)!read(a->ready_fd, &v, sizeof v);
    a->ready_on = on;
}

static void unwatch(mp_async *a)
{
    if (!a->watching)
        return;
    a->watching = false;
    mp_pool *p = a->pool;
    if (p) {
        (void)epoll_ctl(a->fd, EPOLL_CTL_DEL, p->efd, NULL);
        watch_count(p, -1);
    }
}

bool mp__imap_has_next(const mp_imap *it)
{
    const mp_async *a = it->a;
    if (a->stream)
        return mp__stream_has_next(it);
    if (it->given == a->n || a->done)
        return true;
    if (it->ordered)
        return it->status[it->next] != 0;
    return it->fifo_len > 0 || it->fails_given < it->nfails;
}

void mp__async_fd_done(mp_async *a)
{
    if (a->fd < 0)
        return;
    unwatch(a);
    if (a->it)
        mp__imap_fd_update(a->it);
    else
        set_ready(a, true);
}

void mp__imap_fd_update(mp_imap *it)
{
    if (it->a->fd >= 0)
        set_ready(it->a, mp__imap_has_next(it));
}

void mp__async_fd_close(mp_async *a)
{
    if (a->fd < 0)
        return;
    unwatch(a);
    close(a->fd);
    close(a->ready_fd);
    a->fd = a->ready_fd = -1;
    a->ready_on = false;
}

/* Gives a its fd (an epoll set over its ready eventfd and, while the job
 * runs, the pool's set), then pumps once, so that what arrived before the
 * workers were asked to signal is seen. */
static int async_fd_open(mp_async *a)
{
    if (a->fd >= 0)
        return a->fd;
    bool running = !a->done && !a->cancelled && a->pool;
    int rc = running ? pool_efd(a->pool) : 0;
    if (rc < 0)
        return rc;
    int efd = epoll_create1(EPOLL_CLOEXEC);
    int rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN};
    if (efd < 0 || rfd < 0 || epoll_ctl(efd, EPOLL_CTL_ADD, rfd, &ev) < 0 ||
        (running && epoll_ctl(efd, EPOLL_CTL_ADD, a->pool->efd, &ev) < 0)) {
        rc = -errno;
        if (efd >= 0)
            close(efd);
        if (rfd >= 0)
            close(rfd);
        return rc;
    }
    a->fd = efd;
    a->ready_fd = rfd;
    a->ready_on = false;
    if (running) {
        a->watching = true;
        watch_count(a->pool, 1);
        mp__pool_pump(a->pool, false);
    }
    if (a->done || a->cancelled || !a->pool)
        mp__async_fd_done(a); /* may have ended in the pump */
    return a->fd;
}

static int check_handle(const mp_async *a)
{
    return a->pool ? mp__pool_check_use(a->pool) : 0;
}

int mp_async_fd(mp_async *a)
{
    const mp__pool_backend *b = mp__pool_backend_of(a);
    if (b)
        return MP__POOL_CALL(b, async_fd, a);
    if (!a)
        return mp__fail(MP_EINVAL, "mp_async_fd: a is NULL");
    int rc = check_handle(a);
    return rc < 0 ? rc : async_fd_open(a);
}

int mp_imap_fd(mp_imap *it)
{
    const mp__pool_backend *b = mp__pool_backend_of(it);
    if (b)
        return MP__POOL_CALL(b, imap_fd, it);
    if (!it)
        return mp__fail(MP_EINVAL, "mp_imap_fd: it is NULL");
    int rc = check_handle(it->a);
    if (rc < 0)
        return rc;
    rc = async_fd_open(it->a);
    if (rc >= 0)
        mp__imap_fd_update(it);
    return rc;
}

/* ---- mp_wait's tables ----------------------------------------------------
 * mp_wait waits on the pool's own epoll set, not on a result's: a wait on
 * thousands of results then costs no descriptor of theirs (only the
 * pool's, made once). Each waited item of a local pool counts as a watch
 * from its first round to the end of the call (its state: the pool). */

/* Ready now (after a pump on the first round, when the watch starts)? A
 * pool that cannot make its epoll set (no descriptor left) is looked at
 * every slice instead. */
static int local_prepare(mp_async *a, void **w, int *fd, bool *exact,
                         bool (*ready)(const mp_async *))
{
    int rc = check_handle(a);
    if (rc < 0)
        return rc;
    mp_pool *p = a->pool;
    if (ready(a) || !p)
        return 1;
    if (*w == NULL) {
        if (pool_efd(p) == 0) {
            watch_count(p, 1);
            *w = p;
        }
        mp__pool_pump(p, false); /* what came before the workers signal */
        if (ready(a))
            return 1;
    }
    *exact = *w != NULL;
    *fd = *w ? p->efd : -1;
    return 0;
}

static int local_confirm(mp_async *a, bool (*ready)(const mp_async *))
{
    if (!ready(a) && a->pool)
        mp__pool_pump(a->pool, false);
    return ready(a) ? 1 : 0;
}

static bool async_is_ready(const mp_async *a)
{
    return a->done || a->cancelled;
}

static bool imap_is_ready(const mp_async *a)
{
    return mp__imap_has_next(a->it);
}

static int async_prepare(void *obj, void **w, int *fd, bool *exact)
{
    mp_async *a = obj;
    if (!mp__pool_backend_of(a))
        return local_prepare(a, w, fd, exact, async_is_ready);
    /* Another backend: no descriptor, looked at every slice. */
    *exact = false;
    return mp_async_ready(a) ? 1 : 0;
}

static int async_confirm(void *obj, void **w)
{
    (void)w;
    return local_confirm(obj, async_is_ready); /* only local ones have a descriptor */
}

static void wait_end(void *obj, void **w)
{
    (void)obj;
    watch_count(*w, -1);
    *w = NULL;
}

const mp__wait_ops mp__pool_async_wait_ops = {
    .kind = MP__OPS_WAIT,
    .prepare = async_prepare,
    .confirm = async_confirm,
    .end = wait_end,
};

static int imap_prepare(void *obj, void **w, int *fd, bool *exact)
{
    mp_imap *it = obj;
    if (mp__pool_backend_of(it))
        return MP_ENOSYS;
    return local_prepare(it->a, w, fd, exact, imap_is_ready);
}

static int imap_confirm(void *obj, void **w)
{
    (void)w;
    return local_confirm(((mp_imap *)obj)->a, imap_is_ready);
}

const mp__wait_ops mp__pool_imap_wait_ops = {
    .kind = MP__OPS_WAIT,
    .prepare = imap_prepare,
    .confirm = imap_confirm,
    .end = wait_end,
};

/* ---- as completed --------------------------------------------------------*/

int mp_async_wait_some(mp_async *const *asyncs, size_t n, size_t *ready_out, double timeout)
{
    const char *f = "mp_async_wait_some";
    if (!asyncs && n > 0)
        return mp__fail(MP_EINVAL, "%s: asyncs is NULL with n %zu", f, n);
    if (!ready_out)
        return mp__fail(MP_EINVAL, "%s: ready_out is NULL", f);
    if (n > MP_ASYNC_WAIT_MAX)
        return mp__fail(MP_EINVAL, "%s: n is %zu (at most MP_ASYNC_WAIT_MAX, %d)", f, n,
                        MP_ASYNC_WAIT_MAX);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += asyncs[i] != NULL;
    if (m == 0)
        return MP_EEOF;
    mp_waitable *w = malloc(m * sizeof *w);
    size_t *at = malloc(m * sizeof *at);
    int rc = w && at ? 0 : MP_ENOMEM;
    for (size_t i = 0, k = 0; rc == 0 && i < n; i++) {
        if (asyncs[i]) {
            at[k] = i;
            w[k++] = MP_WAIT_ASYNC(asyncs[i]);
        }
    }
    if (rc == 0)
        rc = mp_wait(w, m, timeout);
    if (rc == 0)
        rc = MP_ETIMEDOUT;
    for (size_t k = 0, r = 0; rc > 0 && k < m; k++)
        if (w[k].ready)
            ready_out[r++] = at[k];
    free(w);
    free(at);
    return rc;
}

int mp_async_wait_any(mp_async *const *asyncs, size_t n, double timeout, size_t *index)
{
    const char *f = "mp_async_wait_any";
    if (!index)
        return mp__fail(MP_EINVAL, "%s: index is NULL", f);
    if (!asyncs && n > 0)
        return mp__fail(MP_EINVAL, "%s: asyncs is NULL with n %zu", f, n);
    if (n > MP_ASYNC_WAIT_MAX)
        return mp__fail(MP_EINVAL, "%s: n is %zu (at most MP_ASYNC_WAIT_MAX, %d)", f, n,
                        MP_ASYNC_WAIT_MAX);
    size_t *ready = malloc((n ? n : 1) * sizeof *ready);
    if (!ready)
        return MP_ENOMEM;
    int rc = mp_async_wait_some(asyncs, n, ready, timeout);
    if (rc > 0) {
        *index = ready[0];
        rc = 0;
    }
    free(ready);
    return rc;
}
