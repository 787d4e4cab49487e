/* The inside of a connection, shared by conn/conn.c (framing, the public API)
 * and conn/conn_io.c (the syscalls: non-blocking attempts, SIGPIPE, descriptor
 * passing). Not installed. */
#ifndef MULTIPROC_CONN_IO_H
#define MULTIPROC_CONN_IO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "base/internal.h"

typedef enum mp__conn_kind {
    MP__CONN_SOCKET, /* a stream socket: recvmsg/sendmsg */
    MP__CONN_FIFO,   /* a kernel pipe: RWF_NOWAIT where the kernel has it */
    MP__CONN_OTHER,  /* anything else mp_conn_open_fd was given */
} mp__conn_kind;

/* A received descriptor, with the stream range [start, end) of the read
 * that brought it. */
typedef struct mp__conn_rfd {
    int fd;
    uint64_t start, end;
} mp__conn_rfd;

struct mp_conn {
    int fd;
    mp__conn_kind kind;
    bool readable, writable;
    bool pass_fds; /* an AF_UNIX stream socket */
    bool closed;
    bool eof; /* the fd reported end of file: nothing more will come */
    int fail; /* sticky MP_EBADMSG or MP_ETRUNCATED, else 0 */
    uint64_t max_msg;
    unsigned char *rbuf; /* read-ahead: valid bytes are [rpos, rlen) */
    size_t rcap, rpos, rlen;
    size_t last_frame;   /* header + payload of the last frame read whole into rbuf */
    uint64_t in_off;     /* bytes read from the fd so far (stream offset of rbuf[rlen]) */
    unsigned char *part; /* large frame interrupted: payload bytes so far */
    size_t part_len, part_have;
    mp__conn_rfd *fdq; /* received descriptors, in order: [fdq_head, fdq_len) */
    size_t fdq_head, fdq_len, fdq_cap;
    /* Whether a recv would return without touching the fd, as of the end of
     * the receiver's last call. Atomic because mp_wait (and mp_conn_poll)
     * may read it from another thread while the receiver works; everything
     * above belongs to the receiving thread alone. */
    atomic_bool buffered;
    /* The sending thread's: a send stopped in the middle of a frame, so the
     * stream is torn and every later send is MP_EHALFSENT. */
    bool halfsent;
};

/* poll() the fd for events until the deadline: > 0 ready, 0 expired, or an
 * error (MP_EBADF if the fd is not open). intr: the thread's interrupt
 * settings apply (mp__poll_intr: MP_EINTR, MP_ECANCELED). */
int mp__conn_wait(const mp_conn *c, short events, const mp__deadline *d, bool intr);

/* Read up to n bytes, waiting until the deadline; descriptors that arrive
 * are queued. Returns the count, 0 at end of file (a reset connection
 * included), or an error (MP_ETIMEDOUT, MP_EINTR, MP_ECANCELED, MP_ENOMEM,
 * -errno); nothing is read when it fails. */
ssize_t mp__conn_read(mp_conn *c, void *buf, size_t n, const mp__deadline *d);

/* Most iovecs a frame is written from: header and payload. */
#define MP__CONN_IOV_MAX 2

/* Write a whole frame by the deadline; pass_fd (or -1) rides on its first
 * byte; iov (at most MP__CONN_IOV_MAX entries) is consumed. Returns 0,
 * MP_ETIMEDOUT, MP_EPIPE, MP_EINTR or MP_ECANCELED (only before the first
 * byte: nothing written), or -errno. A failure after the first byte sets
 * c->halfsent: the frame is torn and the end must send no more. */
int mp__conn_write_frame(mp_conn *c, struct iovec *iov, int cnt, int pass_fd,
                         const mp__deadline *d);

/* Take the descriptor of the frame whose header starts at stream offset at.
 * Returns 0, or MP_EBADMSG if the peer sent no descriptor with it. */
int mp__conn_fdq_take(mp_conn *c, uint64_t at, int *fd);

/* Close the queued descriptors that arrived wholly before offset off. */
void mp__conn_fdq_prune(mp_conn *c, uint64_t off);

/* Close every queued descriptor and free the queue. */
void mp__conn_fdq_clear(mp_conn *c);

#endif /* MULTIPROC_CONN_IO_H */
