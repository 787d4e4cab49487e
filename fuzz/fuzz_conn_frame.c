/* Fuzz target: the receive path of a connection, fed untrusted bytes.
 *
 * Run (from the repository root):
 *     CC=clang cmake -S . -B build-fuzz -DMP_BUILD_FUZZ=ON -DMP_BUILD_TESTS=OFF \
 *         -DMP_BUILD_EXAMPLES=OFF -DMP_BUILD_BENCH=OFF
 *     cmake --build build-fuzz --target fuzz_conn_frame
 *     build-fuzz/fuzz/fuzz_conn_frame -max_total_time=30 fuzz/corpus/conn_frame
 *
 * Input: byte 0 configures the connection (bit 0: a socket pair rather than a
 * pipe; bits 1-4: log2 of the largest message accepted, 15 meaning 1 MiB;
 * bits 5-6: the read-ahead size, 64 KiB, 16, 64 or 1024 bytes, the small ones
 * sending every frame down the large-message path). Byte 1 seeds a PRNG that
 * cuts the rest into writes of random sizes (on a socket pair, some carry a
 * descriptor) and, between writes, picks receive calls with a zero timeout:
 * recv, recv_into with a random capacity, recv_fd, poll. Then the writer
 * closes and the reader drains.
 *
 * A reference decoder of the same bytes predicts every result exactly
 * (message contents included); the only freedom is recv_fd on a descriptor
 * frame, which may fail with MP_EBADMSG when the writer attached no
 * descriptor. Any difference, a crash, a sanitizer report or a leaked fd
 * aborts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn/conn_internal.h"
#include "multiproc.h"

#define FD_BIT ((uint64_t)1 << 63)

typedef struct model {
    const uint8_t *s; /* the whole byte stream the peer will write */
    size_t len, written, pos;
    uint64_t max;
    bool duplex, closed;
    int broken; /* sticky expected result, once the stream is lost */
} model;

typedef struct mframe {
    bool hdr, bad, fd, complete;
    uint64_t len;
} mframe;

typedef struct fuzz {
    model m;
    mp_conn *a, *b;
    uint32_t rng;
    unsigned char *buf; /* for recv_into */
} fuzz;

static int devnull = -1;

static void fail(const char *what, int got, int want)
{
    fprintf(stderr, "fuzz_conn_frame: %s: got %s (%d), expected %s (%d)\n", what, mp_err_name(got),
            got, mp_err_name(want), want);
    abort();
}

static uint32_t rnd(fuzz *z)
{
    z->rng ^= z->rng << 13;
    z->rng ^= z->rng >> 17;
    z->rng ^= z->rng << 5;
    return z->rng;
}

/* ---- the reference decoder ---------------------------------------------- */

static mframe model_next(const model *m)
{
    mframe f = {0};
    if (m->written - m->pos < 8)
        return f;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)m->s[m->pos + (size_t)i] << (8 * i);
    f.hdr = true;
    f.fd = (v & FD_BIT) != 0;
    f.len = v & ~FD_BIT;
    f.bad = f.fd ? f.len != 1 : f.len > m->max;
    f.complete = !f.bad && f.len <= m->written - m->pos - 8;
    return f;
}

/* What a receive gives when the next frame is not all there. */
static int model_missing(model *m)
{
    if (!m->closed)
        return MP_ETIMEDOUT;
    if (m->pos == m->written)
        return MP_EEOF;
    return m->broken = MP_ETRUNCATED;
}

static int model_data(model *m, bool into, size_t cap, mframe *f)
{
    if (m->broken)
        return m->broken;
    *f = model_next(m);
    if (!f->hdr)
        return model_missing(m);
    if (f->bad)
        return m->broken = MP_EBADMSG;
    if (f->fd)
        return MP_EPROTO;
    if (into && f->len > cap)
        return MP_EMSGSIZE;
    if (!f->complete)
        return model_missing(m);
    return 0;
}

static int model_fd(model *m)
{
    if (!m->duplex)
        return MP_ENOTSOCK;
    if (m->broken)
        return m->broken;
    mframe f = model_next(m);
    if (!f.hdr)
        return model_missing(m);
    if (f.bad)
        return m->broken = MP_EBADMSG;
    if (!f.fd)
        return MP_EPROTO;
    if (!f.complete)
        return model_missing(m);
    return 0;
}

/* ---- receive operations, each checked against the model ---------------- */

static void check_payload(model *m, const mframe *f, const void *got, size_t len)
{
    if (len != f->len)
        fail("message length", (int)len, (int)f->len);
    if (len && memcmp(got, m->s + m->pos + 8, len) != 0)
        fail("message contents", 1, 0);
    m->pos += 8 + len;
}

static void op_recv(fuzz *z)
{
    mframe f;
    int want = model_data(&z->m, false, 0, &f);
    void *msg = NULL;
    size_t len = 0;
    int rc = mp_conn_recv(z->a, &msg, &len, 0);
    if (rc != want)
        fail("recv", rc, want);
    if (rc == 0) {
        if (!msg)
            fail("recv gave a NULL buffer", 0, 1);
        check_payload(&z->m, &f, msg, len);
    }
    free(msg);
}

static void op_recv_into(fuzz *z, size_t bufsize)
{
    size_t cap = rnd(z) % 2 ? bufsize : rnd(z) % 300;
    mframe f;
    int want = model_data(&z->m, true, cap, &f);
    size_t len = 0;
    int rc = mp_conn_recv_into(z->a, z->buf, cap, &len, 0);
    if (rc != want)
        fail("recv_into", rc, want);
    if (rc == MP_EMSGSIZE && len != f.len)
        fail("recv_into size needed", (int)len, (int)f.len);
    if (rc == 0)
        check_payload(&z->m, &f, z->buf, len);
}

static void op_recv_fd(fuzz *z)
{
    int want = model_fd(&z->m), fd = -1;
    int rc = mp_conn_recv_fd(z->a, &fd, 0);
    if (want == 0 && rc == MP_EBADMSG) {
        z->m.broken = MP_EBADMSG; /* a descriptor frame sent without its descriptor */
        return;
    }
    if (rc != want)
        fail("recv_fd", rc, want);
    if (rc == 0) {
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0 || !(fl & FD_CLOEXEC))
            fail("received fd not open or not close-on-exec", fl, FD_CLOEXEC);
        close(fd);
        z->m.pos += 9;
    }
}

/* poll cannot be predicted exactly (part of a frame in the kernel makes the
 * fd readable), but it must say yes whenever a recv would not block. */
static void op_poll(fuzz *z)
{
    mframe f = model_next(&z->m);
    bool must = z->m.broken || z->m.closed || (f.hdr && (f.bad || f.complete));
    bool buffered = mp__conn_has_buffered(z->a);
    int rc = mp_conn_poll(z->a, 0);
    if (rc != 0 && rc != 1)
        fail("poll", rc, 1);
    if ((must || buffered) && rc != 1)
        fail("poll with a message pending", rc, 1);
}

static void some_op(fuzz *z, size_t bufsize)
{
    switch (rnd(z) % 7) {
    case 0:
    case 1:
        op_recv(z);
        break;
    case 2:
    case 3:
        op_recv_into(z, bufsize);
        break;
    case 4:
        op_recv_fd(z);
        break;
    default:
        op_poll(z);
    }
}

/* ---- the writing peer --------------------------------------------------- */

static ssize_t peer_write(fuzz *z, const uint8_t *p, size_t n)
{
    int fd = mp_conn_fileno(z->b);
    if (!z->m.duplex)
        return write(fd, p, n);
    struct iovec iov = {.iov_base = (void *)(uintptr_t)p, .iov_len = n};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    if (rnd(z) % 4 == 0) {
        memset(&ctl, 0, sizeof ctl);
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &devnull, sizeof(int));
    }
    return sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void write_phase(fuzz *z, size_t bufsize)
{
    int stuck = 0;
    while (z->m.written < z->m.len && stuck < 4) {
        size_t n = 1 + rnd(z) % (rnd(z) % 2 ? 16 : 700);
        if (n > z->m.len - z->m.written)
            n = z->m.len - z->m.written;
        ssize_t w = peer_write(z, z->m.s + z->m.written, n);
        if (w < 0 && errno != EAGAIN)
            fail("peer write", -errno, 0);
        stuck = w > 0 ? 0 : stuck + 1;
        if (w > 0)
            z->m.written += (size_t)w;
        for (uint32_t i = rnd(z) % 3; i > 0; i--)
            some_op(z, bufsize);
    }
}

/* The writer is gone: every receive must end in a terminal result. */
static void drain_phase(fuzz *z, size_t bufsize)
{
    mp_conn_destroy(z->b);
    z->b = NULL;
    z->m.closed = true;
    for (int i = 0; i < 100000 && !z->m.broken; i++) {
        mframe f = model_next(&z->m);
        if (!f.hdr && z->m.pos == z->m.written) {
            op_recv(z); /* MP_EEOF, checked */
            break;
        }
        if (f.hdr && f.fd && !f.bad && !z->m.duplex)
            break; /* a descriptor frame on a pipe: MP_EPROTO for ever */
        if (f.hdr && f.fd && !f.bad)
            op_recv_fd(z);
        else
            some_op(z, bufsize);
    }
    op_poll(z);
}

static size_t readahead_of(uint8_t cfg)
{
    static const size_t sizes[] = {0, 16, 64, 1024};
    return sizes[(cfg >> 5) & 3];
}

static void setup(fuzz *z, const uint8_t *data, size_t size)
{
    uint8_t cfg = data[0];
    unsigned exp = (cfg >> 1) & 15;
    z->m = (model){.s = data + 2, .len = size - 2, .duplex = cfg & 1};
    z->m.max = exp == 15 ? (uint64_t)1 << 20 : (uint64_t)1 << exp;
    z->rng = (uint32_t)(data[1] | size << 8) | 1;
    if (mp_pipe(&z->a, &z->b, z->m.duplex) != 0)
        abort();
    if (mp_conn_set_max_message(z->a, z->m.max) != 0)
        abort();
    if (readahead_of(cfg) && mp__conn_set_readahead(z->a, readahead_of(cfg)) != 0)
        abort();
    int wfd = mp_conn_fileno(z->b);
    fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char buf[(1 << 20) + 64];
    if (size < 2)
        return 0;
    if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
        abort();
    /* fds are allocated lowest first: a leak moves the next one up. */
    int probe = dup(devnull);
    close(probe);
    fuzz z = {.buf = buf};
    setup(&z, data, size);
    write_phase(&z, sizeof buf);
    drain_phase(&z, sizeof buf);
    mp_conn_destroy(z.a);
    int after = dup(devnull);
    close(after);
    if (after != probe)
        fail("fd leak: next fd", after, probe);
    return 0;
}
