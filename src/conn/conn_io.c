/* The syscall layer of connections.
 *
 * Blocking: the fds stay in blocking mode. Their open file description may
 * be shared with forked children or, through mp_conn_open_fd, with programs
 * that expect blocking I/O, and O_NONBLOCK would leak into all of them. With
 * no timeout we simply make the blocking call (one syscall per message).
 * With a timeout we make non-blocking attempts instead (MSG_DONTWAIT on
 * sockets, RWF_NOWAIT on pipes; where the kernel lacks it, poll first and
 * write at most what poll promised) and poll until the deadline only when an
 * attempt finds nothing to do. The deadline holds for the whole send, not
 * only until its first byte: a peer that never reads cannot hold a sender
 * past it. Half a frame cannot be taken back, so a send stopped after its
 * first byte leaves the end half-sent: every later send is refused
 * (MP_EHALFSENT) rather than corrupt the stream for the receiver.
 *
 * Descriptors: the kernel delivers the descriptors of a sendmsg with the
 * first read that touches its bytes, and a read stops right after them. We
 * queue each received descriptor with the stream range [start, end) of the
 * read that brought it; the descriptor of a frame whose header starts at
 * offset X is the one with start <= X < end. Anything else is a descriptor
 * the peer attached to a data frame: it is closed once the stream has moved
 * past it, so a misbehaving peer cannot make us hoard descriptors. On a
 * socket we always read with recvmsg: a plain read() would close them.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn/conn_io.h"
#include "os/fdio.h"

/* Descriptors accepted per read; a legitimate peer sends one per sendmsg,
 * and the kernel closes any excess (MSG_CTRUNC). */
#define CONN_CMSG_FDS 8u

/* Whether preadv2/pwritev2 accept RWF_NOWAIT on pipes; a property of the
 * kernel, learnt on first use. -1 unknown, 0 no, 1 yes (until a call says
 * otherwise). Atomic because a sender and a receiver thread may both
 * discover it. */
static atomic_int conn_rwf_nowait = -1;

/* ---- readiness ---------------------------------------------------------- */

/* Non-blocking readiness probe. An error counts as ready, so that the real
 * call that follows reports it. */
static bool conn_ready(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, 0) != 0;
}

int mp__conn_wait(const mp_conn *c, short events, const mp__deadline *d, bool intr)
{
    struct pollfd p = {.fd = c->fd, .events = events};
    int r;
    if (intr) {
        /* A ready fd first: a call that can go on without sleeping does,
         * even with its cancel triggered (mp__poll_intr checks it first). */
        mp__deadline now = {.ns = 0};
        r = mp__poll(&p, 1, &now);
        if (r == 0)
            r = mp__poll_intr(&p, 1, d);
    } else {
        r = mp__poll(&p, 1, d);
    }
    if (r > 0 && (p.revents & POLLNVAL))
        return MP_EBADF;
    return r;
}

static bool conn_no_rwf_nowait(int err)
{
    if (err != EOPNOTSUPP && err != ENOSYS)
        return false;
    atomic_store_explicit(&conn_rwf_nowait, 0, memory_order_relaxed);
    return true;
}

/* MP_DISABLE_RWF_NOWAIT=1 forces the poll-first path of older kernels. */
static bool conn_use_rwf_nowait(const mp_conn *c, bool nowait)
{
    if (!nowait || c->kind != MP__CONN_FIFO)
        return false;
    int s = atomic_load_explicit(&conn_rwf_nowait, memory_order_relaxed);
    if (s < 0) {
        s = !mp__env_off("MP_DISABLE_RWF_NOWAIT");
        atomic_store_explicit(&conn_rwf_nowait, s, memory_order_relaxed);
    }
    return s == 1;
}

/* ---- the queue of received descriptors --------------------------------- */

/* Make room for n more entries before a recvmsg, so that a descriptor the
 * kernel hands us can always be queued. */
static int conn_fdq_reserve(mp_conn *c, size_t n)
{
    if (c->fdq_head == c->fdq_len)
        c->fdq_head = c->fdq_len = 0;
    if (c->fdq_cap - c->fdq_len >= n)
        return 0;
    if (c->fdq_head > 0) {
        memmove(c->fdq, c->fdq + c->fdq_head, (c->fdq_len - c->fdq_head) * sizeof(*c->fdq));
        c->fdq_len -= c->fdq_head;
        c->fdq_head = 0;
        if (c->fdq_cap - c->fdq_len >= n)
            return 0;
    }
    size_t cap = c->fdq_cap ? c->fdq_cap * 2 : 2 * n;
    if (cap < c->fdq_len + n)
        cap = c->fdq_len + n;
    mp__conn_rfd *q = realloc(c->fdq, cap * sizeof(*q));
    if (!q)
        return MP_ENOMEM;
    c->fdq = q;
    c->fdq_cap = cap;
    return 0;
}

static void conn_fdq_take_cmsgs(mp_conn *c, struct msghdr *m, uint64_t start)
{
    for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h; h = CMSG_NXTHDR(m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(fd));
            if (c->fdq_len == c->fdq_cap) {
                close(fd); /* cannot happen: reserved before the read */
                continue;
            }
            c->fdq[c->fdq_len++] = (mp__conn_rfd){.fd = fd, .start = start, .end = c->in_off};
        }
    }
}

/* Close the descriptors that arrived with bytes wholly before offset off:
 * they were attached to data frames, and no frame can claim them any more. */
void mp__conn_fdq_prune(mp_conn *c, uint64_t off)
{
    while (c->fdq_head < c->fdq_len && c->fdq[c->fdq_head].end <= off)
        close(c->fdq[c->fdq_head++].fd);
}

void mp__conn_fdq_clear(mp_conn *c)
{
    mp__conn_fdq_prune(c, UINT64_MAX);
    free(c->fdq);
    c->fdq = NULL;
    c->fdq_head = c->fdq_len = c->fdq_cap = 0;
}

int mp__conn_fdq_take(mp_conn *c, uint64_t at, int *fd)
{
    mp__conn_fdq_prune(c, at);
    if (c->fdq_head == c->fdq_len || c->fdq[c->fdq_head].start > at)
        return MP_EBADMSG;
    *fd = c->fdq[c->fdq_head++].fd;
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

static ssize_t conn_recvmsg(mp_conn *c, void *buf, size_t n, bool nowait)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * CONN_CMSG_FDS)];
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = n};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl.buf,
                       .msg_controllen = sizeof(ctl.buf)};
    if (conn_fdq_reserve(c, CONN_CMSG_FDS) < 0) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t r = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC | (nowait ? MSG_DONTWAIT : 0));
    if (r < 0)
        return r;
    uint64_t start = c->in_off;
    c->in_off += (uint64_t)r;
    conn_fdq_take_cmsgs(c, &m, start);
    return r;
}

/* One read attempt; with nowait it fails with EAGAIN instead of blocking. */
static ssize_t conn_read_once(mp_conn *c, void *buf, size_t n, bool nowait)
{
    if (c->kind == MP__CONN_SOCKET)
        return conn_recvmsg(c, buf, n, nowait);
    ssize_t r;
    if (conn_use_rwf_nowait(c, nowait)) {
        struct iovec iov = {.iov_base = buf, .iov_len = n};
        r = preadv2(c->fd, &iov, 1, -1, RWF_NOWAIT);
        if (r >= 0 || !conn_no_rwf_nowait(errno))
            goto done;
    }
    if (nowait && !conn_ready(c->fd, POLLIN)) {
        errno = EAGAIN;
        return -1;
    }
    r = read(c->fd, buf, n);
done:
    if (r > 0)
        c->in_off += (uint64_t)r;
    return r;
}

/* Read up to n bytes, waiting until the deadline. Returns the count, 0 at end
 * of file, or an error (MP_ETIMEDOUT, ...). A reset connection is the peer
 * gone: end of file, once the data it sent has been read. Under the
 * thread's interrupt settings the attempts are non-blocking even with no
 * deadline, so that the wait is a poll that a signal or a cancel ends
 * (a blocking read would not see the cancel, and a handler installed with
 * SA_RESTART would restart it); nothing is read then. */
ssize_t mp__conn_read(mp_conn *c, void *buf, size_t n, const mp__deadline *d)
{
    bool intr = mp__intr_active();
    bool nowait = d->ns >= 0 || intr;
    for (;;) {
        ssize_t r = conn_read_once(c, buf, n, nowait);
        if (r >= 0)
            return r;
        int err = errno;
        if (err == EINTR)
            continue;
        if (err == ECONNRESET)
            return 0;
        if (err != EAGAIN && err != EWOULDBLOCK)
            return -err;
        int w = mp__conn_wait(c, POLLIN, d, intr);
        if (w <= 0)
            return w == 0 ? MP_ETIMEDOUT : w;
    }
}

/* ---- writing ------------------------------------------------------------ */

static void conn_iov_advance(struct iovec **iov, int *cnt, size_t n)
{
    while (*cnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*cnt)--;
    }
    if (*cnt > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

static ssize_t conn_sendmsg(mp_conn *c, struct iovec *iov, int cnt, int pass_fd, bool nowait)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
    if (pass_fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &pass_fd, sizeof(int));
    }
    return sendmsg(c->fd, &m, MSG_NOSIGNAL | (nowait ? MSG_DONTWAIT : 0));
}

static size_t conn_iov_total(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* The first iovecs of iov, cut to at most max bytes in all, into out
 * (room for cnt entries); returns how many. */
static int conn_iov_cap(const struct iovec *iov, int cnt, size_t max, struct iovec *out)
{
    int k = 0;
    for (; k < cnt && max > 0; k++) {
        out[k] = iov[k];
        if (out[k].iov_len > max)
            out[k].iov_len = max;
        max -= out[k].iov_len;
    }
    return k;
}

/* One write attempt; with nowait it fails with EAGAIN rather than block.
 * Pipe writes up to PIPE_BUF are atomic. A larger one first merges its tail
 * into the pipe's last page, so even a full pipe would take a few bytes of
 * the frame and leave it torn: start such a write only when a page is free.
 * Without RWF_NOWAIT the fd itself blocks, so after poll reported a free
 * page we write no more than the page (PIPE_BUF), which a pipe then takes
 * at once. */
static ssize_t conn_write_once(mp_conn *c, struct iovec *iov, int cnt, int pass_fd, bool nowait)
{
    if (c->kind == MP__CONN_SOCKET)
        return conn_sendmsg(c, iov, cnt, pass_fd, nowait);
    bool rwf = conn_use_rwf_nowait(c, nowait);
    bool polled = false;
    if (nowait && (!rwf || conn_iov_total(iov, cnt) > PIPE_BUF)) {
        if (!conn_ready(c->fd, POLLOUT)) {
            errno = EAGAIN;
            return -1;
        }
        polled = true;
    }
    /* Probed already by mp__conn_write_frame: a load. */
    int nosig = mp__rwf_nosignal(c->fd);
    if (rwf) {
        ssize_t r = pwritev2(c->fd, iov, cnt, -1, RWF_NOWAIT | nosig);
        if (r >= 0 || !conn_no_rwf_nowait(errno))
            return r;
    }
    struct iovec capped[MP__CONN_IOV_MAX];
    if (nowait) {
        if (!polled && !conn_ready(c->fd, POLLOUT)) {
            errno = EAGAIN;
            return -1;
        }
        cnt = conn_iov_cap(iov, cnt < MP__CONN_IOV_MAX ? cnt : MP__CONN_IOV_MAX, PIPE_BUF, capped);
        iov = capped;
    }
    if (nosig)
        return pwritev2(c->fd, iov, cnt, -1, nosig);
    return writev(c->fd, iov, cnt);
}

/* Write the whole frame by the deadline; the descriptor, if any, rides on
 * the first write. With a deadline every attempt is non-blocking, so that
 * neither a full pipe nor a signal can carry the call past it (mp__poll
 * restarts with the time left). A failure after the first byte leaves the
 * frame torn: the end is marked half-sent. The thread's interrupt settings
 * make the attempts non-blocking too, and apply only until the first byte
 * is out: an interrupt then would tear the frame, so the rest is written
 * as if the settings were off (up to the deadline, as before). */
static int conn_write_all(mp_conn *c, struct iovec *iov, int cnt, int pass_fd,
                          const mp__deadline *d)
{
    bool intr = mp__intr_active();
    bool started = false, nowait = d->ns >= 0 || intr;
    int rc = 0;
    while (cnt > 0 && rc == 0) {
        ssize_t n = conn_write_once(c, iov, cnt, started ? -1 : pass_fd, nowait);
        if (n >= 0) {
            started = true;
            conn_iov_advance(&iov, &cnt, (size_t)n);
            continue;
        }
        int err = errno;
        if (err == EINTR)
            continue;
        if (err == EPIPE || err == ECONNRESET)
            rc = MP_EPIPE;
        else if (err != EAGAIN && err != EWOULDBLOCK)
            rc = -err;
        else {
            int w = mp__conn_wait(c, POLLOUT, d, intr && !started);
            if (w <= 0)
                rc = w == 0 ? MP_ETIMEDOUT : w;
        }
    }
    if (rc && started)
        c->halfsent = true;
    return rc;
}

/* A write to a pipe whose reader is gone raises SIGPIPE: see os/fdio.h.
 * Sockets have MSG_NOSIGNAL, pipes RWF_NOSIGNAL since Linux 6.18; on older
 * kernels the whole frame is written under one mp__sigpipe_guard. */
int mp__conn_write_frame(mp_conn *c, struct iovec *iov, int cnt, int pass_fd, const mp__deadline *d)
{
    if (c->kind == MP__CONN_SOCKET || mp__rwf_nosignal(c->fd))
        return conn_write_all(c, iov, cnt, pass_fd, d);
    mp__sigpipe_guard g;
    mp__sigpipe_block(&g);
    int rc = conn_write_all(c, iov, cnt, pass_fd, d);
    mp__sigpipe_restore(&g, rc == MP_EPIPE);
    return rc;
}
