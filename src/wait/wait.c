/* mp_wait: one poll() over the fds behind processes, connections, fds and
 * the tables of the objects of other modules (queues and events of remote
 * backends, the pool's results). */
#include <stdlib.h>

#include "heap/heap_object.h"
#include "conn/conn_internal.h"
#include "process/process_internal.h"
#include "queue/queue_internal.h"
#include "queue/queue_remote.h"
#include "sync/sync_remote.h"
#include "wait/wait_ops.h"

#define MP__WAIT_MAX 4096

/* The state of the waits under way on remote queues and events and on
 * tabled objects (one per item, NULL for the others), kept across rounds. */
typedef struct wait_state {
    void **remote;
} wait_state;

static bool is_remote_queue(const mp_waitable *w)
{
    return w->kind == MP_WAIT_KIND_QUEUE && mp__obj_is_remote(w->queue);
}

static bool is_remote_event(const mp_waitable *w)
{
    return w->kind == MP_WAIT_KIND_EVENT && w->event && mp__obj_is_remote(w->event);
}

/* A result or an iterator of a pool (a module above this one): the object's
 * wait table does the waiting (wait/wait_ops.h). */
static void *tabled(const mp_waitable *w)
{
    if (w->kind == MP_WAIT_KIND_ASYNC)
        return w->async;
    if (w->kind == MP_WAIT_KIND_IMAP)
        return w->imap;
    return NULL;
}

/* A queue or an event of a remote backend: its table does the waiting. */
static bool is_remote(const mp_waitable *w)
{
    return is_remote_queue(w) || is_remote_event(w);
}

/* 0 when the remote item's table has the wait functions, MP_EINVAL (a
 * handle of another type), MP_ENOSYS (a backend that cannot wait). */
static int remote_check(const mp_waitable *w)
{
    if (is_remote_queue(w)) {
        const mp__queue_ops *o = mp__queue_remote(w->queue);
        return o == NULL                                        ? MP_EINVAL
               : o->wait_begin && o->wait_finish && o->wait_end ? 0
                                                                : MP_ENOSYS;
    }
    const mp__event_ops *o = mp__event_remote(w->event);
    return o == NULL ? MP_EINVAL : o->wait_begin && o->wait_finish && o->wait_end ? 0 : MP_ENOSYS;
}

static void remote_end(mp_waitable *w, void **state)
{
    if (is_remote_queue(w))
        mp__queue_remote(w->queue)->wait_end(w->queue, state);
    else
        mp__event_remote(w->event)->wait_end(w->event, state);
}

/* Ready without touching the kernel? Fills *fd with what to poll otherwise,
 * or -1 when only a slice-by-slice check works (a process without a pidfd). */
static int wait_prepare(mp_waitable *w, void **remote, bool block, int *fd, bool *exact)
{
    *exact = true;
    if (is_remote_queue(w))
        return MP__REMOTE_CALL(mp__queue_remote(w->queue), wait_begin, w->queue, remote, block, fd);
    if (is_remote_event(w))
        return MP__REMOTE_CALL(mp__event_remote(w->event), wait_begin, w->event, remote, block, fd);
    switch (w->kind) {
    case MP_WAIT_KIND_ASYNC:
    case MP_WAIT_KIND_IMAP: {
        void *obj = tabled(w);
        return mp__wait_ops_of(obj)->prepare(obj, remote, fd, exact);
    }
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
    case MP_WAIT_KIND_EVENT:
        /* No descriptor: looked at again every slice. */
        *exact = false;
        return mp__event_poll(w->event);
    }
    return MP_EINVAL;
}

/* After poll: a process is ready only once reaped (the fallback pipe can
 * report end of file before the child is a zombie). */
static int wait_confirm(mp_waitable *w, void **remote, short revents)
{
    if (is_remote_queue(w))
        return MP__REMOTE_CALL(mp__queue_remote(w->queue), wait_finish, w->queue, remote);
    if (is_remote_event(w))
        return MP__REMOTE_CALL(mp__event_remote(w->event), wait_finish, w->event, remote);
    if (w->kind == MP_WAIT_KIND_PROCESS)
        return mp__process_try_reap(w->process) == 1;
    if (tabled(w))
        return mp__wait_ops_of(tabled(w))->confirm(tabled(w), remote);
    if (w->kind == MP_WAIT_KIND_QUEUE)
        return mp__queue_wait_confirm(w->queue);
    return revents != 0;
}

static int by_fd(const void *a, const void *b, void *arg)
{
    const struct pollfd *pfd = arg;
    int x = pfd[*(const size_t *)a].fd, y = pfd[*(const size_t *)b].fd;
    return (x > y) - (x < y);
}

static int fd_cmp(const void *key, const void *elem)
{
    int x = *(const int *)key, y = ((const struct pollfd *)elem)->fd;
    return (x > y) - (x < y);
}

/* poll() over pfd[0..n), each descriptor once: poll refuses more entries
 * than RLIMIT_NOFILE allows, and many items may share one descriptor (the
 * results of one pool share the pool's). Sets every entry's revents and
 * returns how many entries have some, or an error. */
static int poll_unique(struct pollfd *pfd, size_t n, const mp__deadline *slice)
{
    size_t *ord = malloc(n * sizeof(*ord));
    struct pollfd *u = malloc(n * sizeof(*u));
    if (ord == NULL || u == NULL) {
        free(ord);
        free(u);
        return MP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    qsort_r(ord, n, sizeof(*ord), by_fd, pfd);
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        int fd = pfd[ord[k]].fd;
        if (fd >= 0 && (m == 0 || u[m - 1].fd != fd))
            u[m++] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    int r = mp__poll_intr(u, (nfds_t)m, slice);
    int hits = 0;
    for (size_t i = 0; i < n; i++) {
        const struct pollfd *e =
            r > 0 && pfd[i].fd >= 0 ? bsearch(&pfd[i].fd, u, m, sizeof(*u), fd_cmp) : NULL;
        pfd[i].revents = e ? e->revents : 0;
        hits += pfd[i].revents != 0;
    }
    free(ord);
    free(u);
    return r < 0 ? r : hits;
}

/* One round: check everything, then poll. Returns the ready count, 0 to
 * go round again (deadline or slice expired), or an error. */
static int wait_round(mp_waitable *items, size_t n, struct pollfd *pfd, const mp__deadline *d,
                      wait_state *ws)
{
    int ready = 0;
    bool slices = false;
    /* First every object is looked at without starting a wait on a remote
     * one; only when none is ready do the remote ones start theirs (a
     * command that blocks on the server). */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            int fd = -1;
            bool exact;
            if (pass == 1 && !is_remote(&items[i]))
                continue;
            int r =
                wait_prepare(&items[i], ws->remote ? &ws->remote[i] : NULL, pass == 1, &fd, &exact);
            if (r < 0)
                return r;
            items[i].ready = r > 0;
            ready += r > 0;
            slices |= !exact;
            pfd[i] = (struct pollfd){.fd = fd, .events = POLLIN};
        }
        /* An expired deadline (a timeout of 0 included) still gets one
         * poll that does not block: readiness is checked, never assumed
         * absent. */
        if (ready > 0 || !ws->remote || mp__deadline_expired(d))
            break;
    }
    if (ready > 0)
        return ready;
    mp__deadline slice = *d;
    int64_t cap = mp__now_ns() + 20 * 1000000;
    if (slices && (slice.ns < 0 || slice.ns > cap))
        slice.ns = cap;
    int r = poll_unique(pfd, n, &slice);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n && r > 0; i++) {
        if (!pfd[i].revents)
            continue;
        int c = wait_confirm(&items[i], ws->remote ? &ws->remote[i] : NULL, pfd[i].revents);
        if (c < 0)
            return c;
        if (c > 0) {
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
        if (items[i].kind == MP_WAIT_KIND_QUEUE && !is_remote_queue(&items[i]))
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
        int r = mp__poll_intr(NULL, 0, &d);
        return r < 0 ? r : 0;
    }
    wait_state ws = {0};
    for (size_t i = 0; i < n && rc == 0; i++) {
        mp_waitable *w = &items[i];
        if (w->kind == MP_WAIT_KIND_EVENT && w->event == NULL)
            rc = MP_EINVAL;
        else if ((w->kind == MP_WAIT_KIND_ASYNC || w->kind == MP_WAIT_KIND_IMAP) &&
                 (tabled(w) == NULL || mp__wait_ops_of(tabled(w)) == NULL))
            rc = MP_EINVAL;
        else if (is_remote(w))
            /* A remote object's backend gives a descriptor to poll (on
             * Redis: a blocking command's connection). */
            rc = remote_check(w);
        else if (w->kind == MP_WAIT_KIND_QUEUE && !mp__queue_valid(w->queue))
            rc = MP_EINVAL;
        if (rc == 0 && (is_remote(w) || tabled(w)) && ws.remote == NULL &&
            (ws.remote = calloc(n, sizeof(void *))) == NULL)
            rc = MP_ENOMEM;
    }
    if (rc < 0) {
        free(ws.remote);
        return rc;
    }
    struct pollfd *pfd = malloc(n * sizeof(*pfd));
    if (!pfd) {
        free(ws.remote);
        return MP_ENOMEM;
    }
    wait_queues(items, n, 1);
    for (;;) {
        rc = wait_round(items, n, pfd, &d, &ws);
        if (rc != 0 || mp__deadline_expired(&d))
            break;
    }
    wait_queues(items, n, -1);
    for (size_t i = 0; ws.remote && i < n; i++) {
        if (is_remote(&items[i]))
            remote_end(&items[i], &ws.remote[i]);
        else if (tabled(&items[i]) && ws.remote[i])
            mp__wait_ops_of(tabled(&items[i]))->end(tabled(&items[i]), &ws.remote[i]);
    }
    free(ws.remote);
    free(pfd);
    return rc;
}
