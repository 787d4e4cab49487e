/* Connections: framed messages over a Unix socket pair (duplex) or a kernel
 * pipe (one-way). The wire format is in conn/conn_frame.h.
 *
 * Receiving: every end keeps a read-ahead buffer, so that one read syscall
 * yields many small messages. A frame that does not fit in it is read
 * straight into its destination, with no extra copy. A receive that stops in
 * the middle of such a frame (timeout, interrupt, error) keeps the bytes
 * already read in c->part, a buffer of the frame's size that the next receive
 * completes; a frame that fits in the read-ahead buffer simply stays there
 * (an interrupted receive, like a timed-out one, consumes nothing). The syscalls
 * themselves (timeouts, SIGPIPE, descriptors) are in conn/conn_io.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn/conn_frame.h"
#include "conn/conn_internal.h"
#include "conn/conn_io.h"
#include "base/internal.h"

#define CONN_READAHEAD     ((size_t)64 * 1024)
#define CONN_READAHEAD_MIN 16u

enum { CONN_READ = 1, CONN_WRITE = 2 };

/* What a receive delivers to: the caller's buffer (recv_into) or a buffer we
 * allocate (recv). */
typedef struct conn_sink {
    bool alloc;
    unsigned char *buf;
    size_t cap;
    void *out;
    size_t len;
} conn_sink;

/* ---- creation ---------------------------------------------------------- */

static mp_conn *conn_new(int fd, mp__conn_kind kind, bool readable, bool writable)
{
    mp_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->kind = kind;
    c->readable = readable;
    c->writable = writable;
    c->pass_fds = kind == MP__CONN_SOCKET;
    c->max_msg = MP_CONN_DEFAULT_MAX_MESSAGE;
    c->rcap = CONN_READAHEAD;
    atomic_init(&c->buffered, false);
    return c;
}

int mp_pipe(mp_conn **a, mp_conn **b, bool duplex)
{
    if (!a || !b)
        return mp__fail(MP_EINVAL, "mp_pipe: %s is NULL", !a ? "a" : "b");
    int fds[2];
    int r =
        duplex ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) : pipe2(fds, O_CLOEXEC);
    if (r < 0)
        return mp__errno();
    mp__conn_kind kind = duplex ? MP__CONN_SOCKET : MP__CONN_FIFO;
    mp_conn *x = conn_new(fds[0], kind, true, duplex);
    mp_conn *y = conn_new(fds[1], kind, duplex, true);
    if (!x || !y)
        goto fail;
    *a = x;
    *b = y;
    return 0;
fail:
    free(x);
    free(y);
    close(fds[0]);
    close(fds[1]);
    return MP_ENOMEM;
}

/* Classify an fd handed to mp_conn_open_fd. Only stream sockets keep message
 * boundaries out of the way; a datagram socket would cut frames. */
static int conn_classify(int fd, mp__conn_kind *kind, bool *rd, bool *wr, bool *unix_sock)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fstat(fd, &st) < 0)
        return mp__errno();
    *unix_sock = false;
    if (S_ISSOCK(st.st_mode)) {
        int type = 0, domain = 0;
        socklen_t n = sizeof(type), m = sizeof(domain);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &m) < 0)
            return mp__errno();
        if (type != SOCK_STREAM)
            return mp__fail(MP_EINVAL,
                            "mp_conn_open_fd: fd %d is a socket of type %d, not "
                            "SOCK_STREAM",
                            fd, type);
        *kind = MP__CONN_SOCKET;
        *rd = *wr = true;
        *unix_sock = domain == AF_UNIX;
        return 0;
    }
    *kind = S_ISFIFO(st.st_mode) ? MP__CONN_FIFO : MP__CONN_OTHER;
    int acc = fl & O_ACCMODE;
    *rd = acc == O_RDONLY || acc == O_RDWR;
    *wr = acc == O_WRONLY || acc == O_RDWR;
    return *rd || *wr ? 0 : MP_EBADF;
}

int mp_conn_open_fd(mp_conn **out, int fd)
{
    if (!out)
        return mp__fail(MP_EINVAL, "mp_conn_open_fd: out is NULL");
    if (fd < 0)
        return MP_EBADF;
    mp__conn_kind kind;
    bool rd, wr, unix_sock;
    int rc = conn_classify(fd, &kind, &rd, &wr, &unix_sock);
    if (rc)
        return rc;
    mp_conn *c = conn_new(fd, kind, rd, wr);
    if (!c)
        return MP_ENOMEM;
    c->pass_fds = unix_sock;
    /* Last, so that a failure above leaves the caller's fd as it was. */
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl >= 0 && !(fdfl & FD_CLOEXEC))
        fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC);
    *out = c;
    return 0;
}

/* ---- shared ------------------------------------------------------------- */

/* fn: the public call, named in the error detail of a NULL c (NULL: no
 * detail, for the internal questions mp_wait asks). */
static int conn_check(const mp_conn *c, int need, const char *fn)
{
    if (!c)
        return fn ? mp__fail(MP_EINVAL, "%s: c is NULL", fn) : MP_EINVAL;
    if (c->closed)
        return MP_ECLOSED;
    if (((need & CONN_READ) && !c->readable) || ((need & CONN_WRITE) && !c->writable))
        return MP_EBADF;
    return 0;
}

static int conn_deadline(mp__deadline *d, double timeout, const char *fn)
{
    int rc = mp__deadline_init(d, timeout);
    return rc ? mp__fail(rc, "%s: timeout is NaN", fn) : 0;
}

/* ---- receiving ---------------------------------------------------------- */

/* Stream offset of the first byte not yet consumed from the read-ahead. */
static uint64_t conn_consumed_off(const mp_conn *c)
{
    return c->in_off - (c->rlen - c->rpos);
}

static int conn_truncated(mp_conn *c)
{
    free(c->part);
    c->part = NULL;
    c->fail = MP_ETRUNCATED;
    return MP_ETRUNCATED;
}

/* How much to read into the read-ahead when it must hold need bytes. A
 * reader that takes everything the pipe holds empties it on every call, so
 * each message the writer sends must wake it up again: with small messages
 * that costs more than the reads it saves (1.4 M against 1.7 M 64-byte
 * messages/s on a 2-CPU VM). So the reader asks for what it needs, or for the
 * size of the last frame if that is more: one read per message while the
 * sizes repeat. */
static size_t conn_read_size(const mp_conn *c, size_t need)
{
    size_t want = c->last_frame > need ? c->last_frame : need;
    size_t missing = want - (c->rlen - c->rpos);
    size_t room = c->rcap - c->rlen;
    return missing < room ? missing : room;
}

/* Make the read-ahead hold at least need (<= rcap) unconsumed bytes. */
static int conn_fill(mp_conn *c, size_t need, const mp__deadline *d)
{
    if (c->rpos == c->rlen)
        c->rpos = c->rlen = 0;
    if (c->rlen - c->rpos >= need)
        return 0;
    if (c->rcap - c->rpos < need) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    while (c->rlen - c->rpos < need) {
        if (c->eof)
            return c->rlen == c->rpos ? MP_EEOF : conn_truncated(c);
        ssize_t n = mp__conn_read(c, c->rbuf + c->rlen, conn_read_size(c, need), d);
        if (n < 0)
            return (int)n;
        if (n == 0)
            c->eof = true;
        c->rlen += (size_t)n;
    }
    return 0;
}

/* Decode the header of the next frame, reading it in if need be. */
static int conn_next_header(mp_conn *c, mp__frame *f, const mp__deadline *d)
{
    if (c->fail)
        return c->fail;
    if (c->part) {
        *f = (mp__frame){.len = c->part_len, .has_fd = false};
        return 0;
    }
    for (;;) {
        size_t avail = c->rlen - c->rpos;
        int rc = mp__frame_decode(c->rbuf + c->rpos, avail, c->max_msg, f);
        if (rc == 0)
            return 0;
        if (rc == MP_EBADMSG)
            return c->fail = MP_EBADMSG;
        rc = conn_fill(c, MP__FRAME_HEADER, d);
        if (rc)
            return rc;
    }
}

/* Read the rest of a large payload straight into dst. */
static int conn_read_payload(mp_conn *c, unsigned char *dst, size_t len, size_t *have,
                             const mp__deadline *d)
{
    while (*have < len) {
        ssize_t n = mp__conn_read(c, dst + *have, len - *have, d);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            c->eof = true;
            return conn_truncated(c);
        }
        *have += (size_t)n;
    }
    return 0;
}

/* A frame that fits in the read-ahead: read it whole there, then copy out.
 * A timeout leaves it in the read-ahead; nothing else to keep. */
static int conn_recv_small(mp_conn *c, const mp__frame *f, conn_sink *s, const mp__deadline *d)
{
    int rc = conn_fill(c, MP__FRAME_HEADER + f->len, d);
    if (rc)
        return rc;
    unsigned char *dst = s->buf;
    if (s->alloc && !(dst = malloc(f->len ? f->len : 1)))
        return MP_ENOMEM;
    if (f->len)
        memcpy(dst, c->rbuf + c->rpos + MP__FRAME_HEADER, f->len);
    c->rpos += MP__FRAME_HEADER + f->len;
    c->last_frame = MP__FRAME_HEADER + f->len;
    mp__conn_fdq_prune(c, conn_consumed_off(c));
    s->out = dst;
    s->len = f->len;
    return 0;
}

/* A large frame stopped before its end: keep what was read in c->part, a
 * buffer of the frame's size. It is the destination itself when we
 * allocated it, else the spare that recv_into set aside in advance for
 * timeouts and interrupts; only an error with neither (no spare) needs a new
 * one, and if even that fails the stream cannot be resynchronised. */
static int conn_keep_partial(mp_conn *c, unsigned char *owned, unsigned char *spare,
                             const unsigned char *dst, size_t len, size_t have, int rc)
{
    if (rc == MP_ETRUNCATED) {
        free(owned);
        free(spare);
        return rc;
    }
    unsigned char *keep = owned ? owned : spare ? spare : malloc(len);
    if (!keep)
        return conn_truncated(c);
    if (keep != owned)
        memcpy(keep, dst, have);
    c->part = keep;
    c->part_len = len;
    c->part_have = have;
    return rc;
}

/* A frame larger than the read-ahead: copy the part already buffered, then
 * read the rest straight into the destination. */
static int conn_recv_large(mp_conn *c, const mp__frame *f, conn_sink *s, const mp__deadline *d)
{
    unsigned char *owned = NULL, *spare = NULL, *dst;
    if (s->alloc) {
        dst = owned = malloc(f->len);
        if (!dst)
            return MP_ENOMEM;
    } else {
        dst = s->buf;
        /* A wait that can end early (timeout, interrupt) needs the spare. */
        if ((d->ns >= 0 || mp__intr_active()) && !(spare = malloc(f->len)))
            return MP_ENOMEM;
    }
    /* The frame does not fit in the read-ahead, so all of it is this frame's. */
    size_t have = c->rlen - c->rpos - MP__FRAME_HEADER;
    memcpy(dst, c->rbuf + c->rpos + MP__FRAME_HEADER, have);
    c->rpos = c->rlen = 0;
    int rc = conn_read_payload(c, dst, f->len, &have, d);
    if (rc)
        return conn_keep_partial(c, owned, spare, dst, f->len, have, rc);
    free(spare);
    mp__conn_fdq_prune(c, c->in_off);
    s->out = dst;
    s->len = f->len;
    return 0;
}

/* Complete the large frame a previous receive left in c->part. */
static int conn_recv_resume(mp_conn *c, conn_sink *s, const mp__deadline *d)
{
    int rc = conn_read_payload(c, c->part, c->part_len, &c->part_have, d);
    if (rc)
        return rc;
    s->len = c->part_len;
    if (s->alloc) {
        s->out = c->part;
    } else {
        memcpy(s->buf, c->part, c->part_len);
        free(c->part);
        s->out = s->buf;
    }
    c->part = NULL;
    mp__conn_fdq_prune(c, c->in_off);
    return 0;
}

/* Whether the next recv would return without touching the fd: a complete
 * frame (or a malformed header) in the read-ahead, end of file, or a broken
 * stream. */
static bool conn_buffered(const mp_conn *c)
{
    if (c->fail)
        return true;
    if (c->part)
        return false; /* the read-ahead is empty while a large frame is pending */
    size_t avail = c->rlen - c->rpos;
    mp__frame f;
    int rc = avail ? mp__frame_decode(c->rbuf + c->rpos, avail, c->max_msg, &f) : MP_EAGAIN;
    if (rc == MP_EBADMSG)
        return true;
    if (rc == 0 && f.len <= avail - MP__FRAME_HEADER)
        return true;
    return c->eof;
}

/* End of every receive call: publish the state for mp_wait and poll. */
static int conn_publish(mp_conn *c, int rc)
{
    atomic_store_explicit(&c->buffered, conn_buffered(c), memory_order_release);
    return rc;
}

static int conn_recv_begin(mp_conn *c, mp__deadline *d, double timeout, const char *fn)
{
    int rc = conn_check(c, CONN_READ, fn);
    if (rc == 0)
        rc = conn_deadline(d, timeout, fn);
    if (rc == 0 && !c->rbuf && !(c->rbuf = malloc(c->rcap)))
        rc = MP_ENOMEM;
    return rc;
}

static int conn_recv_frame(mp_conn *c, conn_sink *s, const mp__deadline *d)
{
    mp__frame f;
    int rc = conn_next_header(c, &f, d);
    if (rc)
        return rc;
    if (f.has_fd)
        return MP_EPROTO;
    if (!s->alloc && f.len > s->cap) {
        s->len = f.len;
        return MP_EMSGSIZE;
    }
    if (c->part)
        return conn_recv_resume(c, s, d);
    if (f.len <= c->rcap - MP__FRAME_HEADER)
        return conn_recv_small(c, &f, s, d);
    return conn_recv_large(c, &f, s, d);
}

static int conn_recv_msg(mp_conn *c, conn_sink *s, double timeout, const char *fn)
{
    mp__deadline d;
    int rc = conn_recv_begin(c, &d, timeout, fn);
    return rc ? rc : conn_publish(c, conn_recv_frame(c, s, &d));
}

int mp_conn_recv(mp_conn *c, void **data, size_t *len, double timeout)
{
    if (!c || !data || !len)
        return mp__fail(MP_EINVAL, "mp_conn_recv: %s is NULL", !c ? "c" : !data ? "data" : "len");
    conn_sink s = {.alloc = true};
    int rc = conn_recv_msg(c, &s, timeout, __func__);
    if (rc == 0) {
        *data = s.out;
        *len = s.len;
    }
    return rc;
}

int mp_conn_recv_into(mp_conn *c, void *buf, size_t cap, size_t *len, double timeout)
{
    if (!c || !len)
        return mp__fail(MP_EINVAL, "mp_conn_recv_into: %s is NULL", !c ? "c" : "len");
    if (!buf && cap)
        return mp__fail(MP_EINVAL, "mp_conn_recv_into: buf is NULL with cap %zu", cap);
    conn_sink s = {.buf = buf, .cap = cap};
    int rc = conn_recv_msg(c, &s, timeout, __func__);
    if (rc == 0 || rc == MP_EMSGSIZE)
        *len = s.len;
    return rc;
}

static int conn_recv_fd_frame(mp_conn *c, int *fd, const mp__deadline *d)
{
    mp__frame f;
    int rc = conn_next_header(c, &f, d);
    if (rc == 0 && !f.has_fd)
        rc = MP_EPROTO;
    if (rc == 0)
        rc = conn_fill(c, MP__FRAME_HEADER + f.len, d);
    if (rc)
        return rc;
    /* The frame's descriptor came with the read of its first byte. */
    if (mp__conn_fdq_take(c, conn_consumed_off(c), fd))
        return c->fail = MP_EBADMSG;
    c->rpos += MP__FRAME_HEADER + f.len;
    mp__conn_fdq_prune(c, conn_consumed_off(c));
    return 0;
}

int mp_conn_recv_fd(mp_conn *c, int *fd, double timeout)
{
    mp__deadline d;
    if (!c || !fd)
        return mp__fail(MP_EINVAL, "mp_conn_recv_fd: %s is NULL", !c ? "c" : "fd");
    int rc = conn_check(c, 0, __func__);
    if (rc == 0 && !c->pass_fds)
        rc = MP_ENOTSOCK;
    if (rc == 0)
        rc = conn_recv_begin(c, &d, timeout, __func__);
    return rc ? rc : conn_publish(c, conn_recv_fd_frame(c, fd, &d));
}

/* ---- sending ------------------------------------------------------------ */

/* A send stopped mid-frame left the stream torn: sending more would make
 * the receiver read our next frame as the rest of the old one. */
static int conn_send_ok(const mp_conn *c)
{
    return c->halfsent ? MP_EHALFSENT : 0;
}

int mp_conn_send(mp_conn *c, const void *data, size_t len, double timeout)
{
    mp__deadline d;
    int rc = conn_check(c, CONN_WRITE, __func__);
    if (rc)
        return rc;
    if (!data && len)
        return mp__fail(MP_EINVAL, "mp_conn_send: data is NULL with len %zu", len);
    if ((uint64_t)len > MP__FRAME_LEN_MAX)
        return MP_EMSGSIZE;
    rc = conn_deadline(&d, timeout, __func__);
    if (rc == 0)
        rc = conn_send_ok(c);
    if (rc)
        return rc;
    unsigned char hdr[MP__FRAME_HEADER];
    mp__frame_encode(hdr, len, false);
    struct iovec iov[2] = {{.iov_base = hdr, .iov_len = sizeof(hdr)},
                           {.iov_base = (void *)(uintptr_t)data, .iov_len = len}};
    return mp__conn_write_frame(c, iov, len ? 2 : 1, -1, &d);
}

int mp_conn_send_fd(mp_conn *c, int fd, double timeout)
{
    mp__deadline d;
    int rc = conn_check(c, 0, __func__);
    if (rc == 0 && !c->pass_fds)
        rc = MP_ENOTSOCK;
    if (rc == 0)
        rc = conn_check(c, CONN_WRITE, __func__);
    if (rc == 0 && fd < 0)
        rc = MP_EBADF;
    if (rc == 0)
        rc = conn_deadline(&d, timeout, __func__);
    if (rc == 0)
        rc = conn_send_ok(c);
    if (rc)
        return rc;
    unsigned char frame[MP__FRAME_HEADER + MP__FRAME_FD_PAYLOAD] = {0};
    mp__frame_encode(frame, MP__FRAME_FD_PAYLOAD, true);
    struct iovec iov = {.iov_base = frame, .iov_len = sizeof(frame)};
    return mp__conn_write_frame(c, &iov, 1, fd, &d);
}

/* ---- state, polling, closing ------------------------------------------- */

bool mp__conn_has_buffered(const mp_conn *c)
{
    return !conn_check(c, CONN_READ, NULL) &&
           atomic_load_explicit(&c->buffered, memory_order_acquire);
}

int mp__conn_fd(const mp_conn *c)
{
    return c && !c->closed ? c->fd : -1;
}

int mp__conn_set_readahead(mp_conn *c, size_t size)
{
    int rc = conn_check(c, 0, __func__);
    if (rc)
        return rc;
    if (size < CONN_READAHEAD_MIN)
        return mp__fail(MP_EINVAL, "%s: size %zu is below %u", __func__, size, CONN_READAHEAD_MIN);
    if (c->rbuf)
        return MP_EBUSY;
    c->rcap = size;
    return 0;
}

int mp_conn_poll(mp_conn *c, double timeout)
{
    mp__deadline d;
    int rc = conn_check(c, CONN_READ, __func__);
    if (rc == 0)
        rc = conn_deadline(&d, timeout, __func__);
    if (rc)
        return rc;
    if (mp__conn_has_buffered(c))
        return 1;
    /* Like Python, a readable fd counts even if it holds only part of a
     * message: the promise is that recv will make progress. */
    rc = mp__conn_wait(c, POLLIN, &d, mp__intr_active());
    return rc > 0 ? 1 : rc;
}

int mp_conn_set_max_message(mp_conn *c, unsigned long long max)
{
    int rc = conn_check(c, 0, __func__);
    if (rc)
        return rc;
    if (max == 0)
        return mp__fail(MP_EINVAL, "mp_conn_set_max_message: max is 0");
    /* The header has 63 bits of length; anything above is the same limit. */
    c->max_msg = max > MP__FRAME_LEN_MAX ? MP__FRAME_LEN_MAX : (uint64_t)max;
    return conn_publish(c, 0);
}

int mp_conn_fileno(const mp_conn *c)
{
    int rc = conn_check(c, 0, __func__);
    return rc ? rc : c->fd;
}

bool mp_conn_readable(const mp_conn *c)
{
    return c && c->readable;
}

bool mp_conn_writable(const mp_conn *c)
{
    return c && c->writable;
}

int mp_conn_close(mp_conn *c)
{
    if (!c)
        return mp__fail(MP_EINVAL, "mp_conn_close: c is NULL");
    if (c->closed)
        return 0;
    /* Linux releases the fd even when close() fails (EINTR included), so the
     * result is ignored: retrying could close someone else's new fd. */
    close(c->fd);
    c->fd = -1;
    c->closed = true;
    mp__conn_fdq_clear(c);
    free(c->rbuf);
    free(c->part);
    c->rbuf = c->part = NULL;
    c->rpos = c->rlen = c->part_len = c->part_have = 0;
    return 0;
}

void mp_conn_destroy(mp_conn *c)
{
    if (!c)
        return;
    mp_conn_close(c);
    free(c);
}
