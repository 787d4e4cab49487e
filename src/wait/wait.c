/* mp_wait: one poll() over the fds behind processes, connections and fds. */
#include <stdlib.h>

#include "heap/heap_object.h"
#include "conn/conn_internal.h"
#include "process/process_internal.h"
#include "queue/queue_internal.h"

#define MP__WAIT_MAX 4096

/* Ready without touching the kernel? Fills *fd with what to poll otherwise,
 * or -1 when only a slice-by-slice check works (a process without a pidfd). */
static int wait_prepare(mp_waitable *w, int *fd, bool *exact)
{
    *exact = true;
    switch (w->kind) {
    case MP_WAIT_KIND_PROCESS: {
        mp_process *p = w->process;
        if (!p || p->kind != MP__KIND_CHILD)
            return MP_EINVAL;
        pthread_mutex_lock(&p->mu);
        int rc = p->closed ? MP_ECLOSED : p->state == MP__CREATED ? MP_ENOTSTARTED : 0;
        *fd = p->sentinel;
        *exact = p->sentinel_is_pidfd;
        pthread_mutex_unlock(&p->mu);
        if (rc < 0)
            return rc;
        return mp__process_try_reap(p);
    }
    case MP_WAIT_KIND_CONN:
        if (!w->conn)
            return MP_EINVAL;
        if ((*fd = mp__conn_fd(w->conn)) < 0)
            return MP_ECLOSED;
        if (!mp_conn_readable(w->conn))
            return MP_EBADF;
        return mp__conn_has_buffered(w->conn) ? 1 : 0;
    case MP_WAIT_KIND_QUEUE:
        /* Sliced: a producer without the queue's eventfd cannot signal. */
        *exact = false;
        return mp__queue_wait_prepare(w->queue, fd);
    case MP_WAIT_KIND_FD:
        if (w->fd < 0)
            return MP_EBADF;
        *fd = w->fd;
        return 0;
    }
    return MP_EINVAL;
}

/* After poll: a process is ready only once reaped (the fallback pipe can
 * report end of file before the child is a zombie). */
static bool wait_confirm(mp_waitable *w, short revents)
{
    if (w->kind == MP_WAIT_KIND_PROCESS)
        return mp__process_try_reap(w->process) == 1;
    if (w->kind == MP_WAIT_KIND_QUEUE)
        return mp__queue_wait_confirm(w->queue);
    return revents != 0;
}

/* One round: check everything, then poll. Returns the ready count, 0 to
 * go round again (deadline or slice expired), or an error. */
static int wait_round(mp_waitable *items, size_t n, struct pollfd *pfd, const mp__deadline *d)
{
    int ready = 0;
    bool slices = false;
    for (size_t i = 0; i < n; i++) {
        int fd = -1;
        bool exact;
        int r = wait_prepare(&items[i], &fd, &exact);
        if (r < 0)
            return r;
        items[i].ready = r > 0;
        ready += r > 0;
        slices |= !exact;
        pfd[i] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    /* An expired deadline (a timeout of 0 included) still gets one poll
     * that does not block: readiness is checked, never assumed absent. */
    if (ready > 0)
        return ready;
    mp__deadline slice = *d;
    int64_t cap = mp__now_ns() + 20 * 1000000;
    if (slices && (slice.ns < 0 || slice.ns > cap))
        slice.ns = cap;
    int r = mp__poll(pfd, (nfds_t)n, &slice);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n && r > 0; i++) {
        if (pfd[i].revents && wait_confirm(&items[i], pfd[i].revents)) {
            items[i].ready = true;
            ready++;
        }
    }
    return ready;
}

/* Count this call among the queues' mp_wait sleepers (producers signal
 * the eventfd only while there are some). */
static void wait_queues(mp_waitable *items, size_t n, int delta)
{
    for (size_t i = 0; i < n; i++)
        if (items[i].kind == MP_WAIT_KIND_QUEUE)
            mp__queue_pollers_add(items[i].queue, delta);
}

int mp_wait(mp_waitable *items, size_t n, double timeout)
{
    mp__deadline d;
    int rc = mp__deadline_init(&d, timeout);
    if (rc < 0)
        return rc;
    if ((!items && n > 0) || n > MP__WAIT_MAX)
        return MP_EINVAL;
    if (n == 0) {
        if (d.ns < 0)
            return MP_EINVAL;
        mp__sleep_until(&d, INT64_MAX);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i].kind != MP_WAIT_KIND_QUEUE)
            continue;
        /* A remote queue has no fd to poll (docs/redis.md, "Redis backend"). */
        if (mp__obj_is_remote(items[i].queue))
            return MP_ENOSYS;
        if (!mp__queue_valid(items[i].queue))
            return MP_EINVAL;
    }
    struct pollfd *pfd = malloc(n * sizeof(*pfd));
    if (!pfd)
        return MP_ENOMEM;
    wait_queues(items, n, 1);
    for (;;) {
        rc = wait_round(items, n, pfd, &d);
        if (rc != 0 || mp__deadline_expired(&d))
            break;
    }
    wait_queues(items, n, -1);
    free(pfd);
    return rc;
}
