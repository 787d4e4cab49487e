/* Talking to a child through its pipes: communicate (all pipes polled
 * together, so no size deadlocks) and the byte-stream readers/writers. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "os/fdio.h"
#include "subprocess/popen_internal.h"

/* Reads grow the output buffer to have at least this much room. */
#define MP__READ_CHUNK ((size_t)256 << 10)

int mp__comm_init(mp__comm *c)
{
    int fds[3] = {c->in_fd, c->out_fd, c->err_fd};
    for (int i = 0; i < 3; i++) {
        c->pipe[i] = fds[i] >= 0;
        if (fds[i] < 0)
            continue;
        int fl = fcntl(fds[i], F_GETFL);
        if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0)
            return mp__errno();
    }
    return 0;
}

ssize_t mp__pipe_read(int fd, void *buf, size_t cap, const mp__deadline *d)
{
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r >= 0)
            return r;
        if (errno != EAGAIN && errno != EINTR)
            return mp__errno();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = mp__poll_intr(&pfd, 1, d);
        if (pr < 0)
            return pr;
        if (pr == 0)
            return MP_ETIMEDOUT;
    }
}

ssize_t mp__pipe_write(int fd, const void *buf, size_t len, const mp__deadline *d)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = mp__write_nosignal(fd, (const char *)buf + done, len - done);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return mp__errno();
        /* A byte stream: stopped early, the call reports what it wrote,
         * as write() does after a signal. */
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr = mp__poll_intr(&pfd, 1, d);
        if (pr < 0 && (done == 0 || (pr != MP_EINTR && pr != MP_ECANCELED)))
            return pr;
        if (pr <= 0)
            return done > 0 ? (ssize_t)done : MP_ETIMEDOUT;
    }
    return (ssize_t)len;
}

/* Reads what is there into b; closes fd at end of file. */
static int comm_drain(int *fd, mp__buf *b)
{
    for (;;) {
        if (b->cap - b->len < MP__READ_CHUNK) {
            size_t ncap = b->cap ? b->cap * 2 : MP__READ_CHUNK * 2;
            char *nd = realloc(b->data, ncap);
            if (!nd)
                return MP_ENOMEM;
            b->data = nd;
            b->cap = ncap;
        }
        ssize_t r = read(*fd, b->data + b->len, b->cap - b->len - 1);
        if (r > 0) {
            b->len += (size_t)r;
            continue;
        }
        if (r == 0) {
            mp__close_fd(fd);
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return 0;
        int rc = mp__errno();
        mp__close_fd(fd);
        return rc;
    }
}

/* Writes what fits; closes fd when all is written or the child closed its
 * end (like Python, a child that stops reading is not an error). */
static int comm_feed(mp__comm *c, const void *input, size_t len)
{
    while (c->in_off < len) {
        size_t n = len - c->in_off;
        ssize_t w = mp__write_nosignal(c->in_fd, (const char *)input + c->in_off, n);
        if (w > 0) {
            c->in_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return 0;
        break; /* EPIPE or another error: stop feeding */
    }
    mp__close_fd(&c->in_fd);
    return 0;
}

/* The poll of a communicate. Under the interrupt settings, what is ready
 * already is served first: a call that can go on without sleeping does. */
static int comm_poll(struct pollfd *pfd, nfds_t n, const mp__deadline *d, bool intr)
{
    if (!intr)
        return mp__poll(pfd, n, d);
    mp__deadline now = {.ns = 0};
    int r = mp__poll(pfd, n, &now);
    return r != 0 ? r : mp__poll_intr(pfd, n, d);
}

int mp__comm_run(mp__comm *c, const void *input, size_t len, const mp__deadline *d, bool intr)
{
    for (;;) {
        if (c->in_fd >= 0 && c->in_off >= len)
            mp__close_fd(&c->in_fd);
        struct pollfd pfd[3];
        int *fds[3] = {&c->in_fd, &c->out_fd, &c->err_fd};
        nfds_t n = 0;
        int which[3];
        for (int i = 0; i < 3; i++) {
            if (*fds[i] < 0)
                continue;
            pfd[n] = (struct pollfd){.fd = *fds[i], .events = i == 0 ? POLLOUT : POLLIN};
            which[n++] = i;
        }
        if (n == 0)
            return 0;
        int r = comm_poll(pfd, n, d, intr);
        if (r < 0)
            return r;
        if (r == 0)
            return MP_ETIMEDOUT;
        for (nfds_t k = 0; k < n; k++) {
            if (!pfd[k].revents)
                continue;
            int rc = which[k] == 0   ? comm_feed(c, input, len)
                     : which[k] == 1 ? comm_drain(&c->out_fd, &c->out)
                                     : comm_drain(&c->err_fd, &c->err);
            if (rc < 0)
                return rc;
        }
    }
}

int mp__comm_take(mp__buf *b, bool keep, char **out, size_t *len)
{
    char *data = NULL;
    size_t n = b->len;
    if (out && keep) {
        data = malloc(n + 1);
        if (!data)
            return MP_ENOMEM;
        if (n)
            memcpy(data, b->data, n);
    } else if (out) {
        data = b->data ? b->data : malloc(1);
        if (!data)
            return MP_ENOMEM;
        b->data = NULL;
    }
    if (data)
        data[n] = '\0';
    if (!keep) {
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
    }
    if (out)
        *out = data;
    if (len)
        *len = out ? n : 0;
    return 0;
}

int mp__comm_finish(mp__comm *c, bool keep, char **out, size_t *out_len, char **err,
                    size_t *err_len)
{
    char *o = NULL, *e = NULL;
    size_t ol = 0, el = 0;
    int rc = mp__comm_take(&c->out, keep, c->pipe[1] ? &o : NULL, &ol);
    if (rc == 0)
        rc = mp__comm_take(&c->err, keep, c->pipe[2] ? &e : NULL, &el);
    if (rc < 0) {
        free(o);
        return rc;
    }
    if (out)
        *out = o;
    else
        free(o);
    if (out_len)
        *out_len = ol;
    if (err)
        *err = e;
    else
        free(e);
    if (err_len)
        *err_len = el;
    return 0;
}

void mp__comm_free(mp__comm *c)
{
    mp__close_fd(&c->in_fd);
    mp__close_fd(&c->out_fd);
    mp__close_fd(&c->err_fd);
    free(c->out.data);
    free(c->err.data);
    c->out = c->err = (mp__buf){0};
}

/* After a timeout, collects what is already in the pipes (a killed child
 * writes no more, but a grandchild may hold the pipe: never wait). */
static void comm_drain_now(mp__comm *c)
{
    mp__deadline now = {.ns = 0};
    (void)mp__comm_run(c, NULL, 0, &now, false);
}

int mp__popen_kill_collect(mp_popen *p, char **out, size_t *out_len, char **err, size_t *err_len)
{
    mp__popen_kill_reap(p);
    comm_drain_now(&p->comm);
    return mp__comm_finish(&p->comm, false, out, out_len, err, err_len);
}

int mp_popen_communicate(mp_popen *p, const void *input, size_t len, char **out, size_t *out_len,
                         char **err, size_t *err_len, double timeout)
{
    mp__deadline d;
    int rc = mp__popen_check_owner(p);
    if (rc < 0 || (rc = mp__popen_deadline(&d, timeout, __func__)) < 0)
        return rc;
    if (len > 0 && !input)
        return mp__fail(MP_EINVAL, "mp_popen_communicate: input is NULL with len %zu", len);
    if (len > 0 && !p->comm.pipe[0])
        return mp__fail(MP_EINVAL, "mp_popen_communicate: input given but stdin is not a pipe");
    mp__deadline cap = mp__popen_cap(p, &d);
    rc = mp__comm_run(&p->comm, input, len, &cap, true);
    if (rc == 0)
        rc = mp__popen_wait(p, &d);
    /* Interrupted: the input written, the output read and the child stay as
     * they are, for a later call to continue; nothing is handed over. */
    if (rc == MP_EINTR || rc == MP_ECANCELED)
        return rc;
    if (rc == MP_ETIMEDOUT || (rc == 0 && p->expired)) {
        bool killed = p->kill_on_timeout || mp__deadline_expired(&p->life);
        if (killed) {
            p->expired |= mp__deadline_expired(&p->life);
            mp__popen_kill_reap(p);
            comm_drain_now(&p->comm);
        }
        int trc = mp__comm_finish(&p->comm, !killed, out, out_len, err, err_len);
        return trc < 0 ? trc : MP_ETIMEDOUT;
    }
    if (rc < 0)
        return rc;
    return mp__comm_finish(&p->comm, false, out, out_len, err, err_len);
}

ssize_t mp_popen_read(mp_popen *p, int which, void *buf, size_t cap, double timeout)
{
    mp__deadline d;
    int rc = mp__popen_check_owner(p);
    if (rc < 0 || (rc = mp__popen_deadline(&d, timeout, __func__)) < 0)
        return rc;
    if (which != 1 && which != 2)
        return mp__fail(MP_EINVAL, "mp_popen_read: which is %d (1: stdout, 2: stderr)", which);
    if (!buf && cap > 0)
        return mp__fail(MP_EINVAL, "mp_popen_read: buf is NULL with cap %zu", cap);
    int fd = which == 1 ? p->comm.out_fd : p->comm.err_fd;
    if (fd < 0)
        return MP_EBADF;
    return mp__pipe_read(fd, buf, cap, &d);
}

ssize_t mp_popen_write(mp_popen *p, const void *data, size_t len, double timeout)
{
    mp__deadline d;
    int rc = mp__popen_check_owner(p);
    if (rc < 0 || (rc = mp__popen_deadline(&d, timeout, __func__)) < 0)
        return rc;
    if (!data && len > 0)
        return mp__fail(MP_EINVAL, "mp_popen_write: data is NULL with len %zu", len);
    if (p->comm.in_fd < 0)
        return MP_EBADF;
    return mp__pipe_write(p->comm.in_fd, data, len, &d);
}

int mp_popen_close_stdin(mp_popen *p)
{
    int rc = mp__popen_check_owner(p);
    if (rc < 0)
        return rc;
    mp__close_fd(&p->comm.in_fd);
    return 0;
}
