/* multiproc — pipes and connections (Python's multiprocessing.Pipe and
 * Connection).
 *
 *     mp_conn *a, *b;
 *     mp_pipe(&a, &b, true);                  // duplex: both ends send and receive
 *     mp_conn_send(b, "hello", 6, MP_FOREVER);
 *     void *msg; size_t len;
 *     mp_conn_recv(a, &msg, &len, MP_FOREVER); // msg = "hello", len = 6
 *     free(msg);
 *
 * A connection carries framed messages: each send is received whole by one
 * recv, in order. Lengths are 64-bit. A duplex pipe is a Unix socket pair and
 * can also pass file descriptors (SCM_RIGHTS); a one-way pipe is a kernel pipe,
 * the first end receiving and the second sending, like Python's
 * Pipe(duplex=False).
 *
 * Every fd is close-on-exec. Each end is usually inherited by a child through
 * fork: close the ends a process does not use, so that the peer sees end of
 * file (MP_EEOF) when the other side is done.
 *
 * Frames read from another process are untrusted: a malformed frame gives
 * MP_EBADMSG, a peer that dies in the middle of a message gives
 * MP_ETRUNCATED, never a partial message delivered as whole.
 *
 * Interrupts (multiproc/interrupt.h): send, send_fd, recv, recv_into,
 * recv_fd and poll honour the calling thread's settings. With
 * mp_set_interruptible(true), a signal handler that runs while the call
 * waits makes it return MP_EINTR; with a current mp_cancel, its trigger
 * makes it return MP_ECANCELED. The call then changed nothing a later call
 * cannot resume from: a receive consumed nothing (a message half arrived
 * stays inside the connection and the next receive completes it, as after
 * a timeout); a send wrote nothing. A send is stopped only before the
 * first byte of its frame: once that went out, the settings no longer
 * apply to the call, which finishes the frame (within its timeout; a
 * timeout then has the outcome described at mp_conn_send), so an
 * interrupt never tears a frame. With MP_FOREVER such a send waits for a
 * peer that stopped reading as long as it takes: give a timeout to bound
 * it. A call that can proceed without waiting does, even with its cancel
 * triggered. With either setting on, the calls wait in poll() even without
 * a timeout.
 *
 * Every MP_EINVAL of this module names the call and the argument in
 * mp_error_detail() (multiproc/error.h).
 *
 * Thread safety: one thread may send while another receives on the same
 * end; two threads must not both send (or both receive) at once;
 * mp_conn_poll and mp_wait may run while another thread receives. Across
 * processes: an end receives read-ahead data into its own memory, so each
 * end is read by one process only (share a queue, not a receiving end, among
 * several readers). Across fork: the child gets a copy of each end.
 */
#ifndef MULTIPROC_CONN_H
#define MULTIPROC_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "multiproc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_conn mp_conn;

/* Largest message a connection accepts from its peer unless told otherwise
 * (mp_conn_set_max_message): 1 TiB. A frame announcing more is MP_EBADMSG. */
#define MP_CONN_DEFAULT_MAX_MESSAGE ((unsigned long long)1 << 40)

/* mp_pipe — make a connected pair of ends.
 *
 * a, b:   receive the ends; each owned by the caller (mp_conn_destroy).
 * duplex: true for a socket pair (both ends send and receive, fds can be
 *         passed); false for a kernel pipe where a receives and b sends.
 * Errors: MP_EMFILE, MP_ENOMEM. On failure *a and *b are untouched.
 */
MP_API int mp_pipe(mp_conn **a, mp_conn **b, bool duplex);

/* mp_conn_open_fd — wrap an existing connected fd (a stream socket or one
 * end of a pipe) as a connection. On success the connection owns fd (it is
 * made close-on-exec); fds can be passed on Unix sockets. Errors: MP_EBADF,
 * MP_EINVAL (NULL out, or a socket that is not SOCK_STREAM), MP_ENOMEM; on
 * failure fd stays the caller's, unchanged. */
MP_API int mp_conn_open_fd(mp_conn **out, int fd);

/* mp_conn_send — send one message.
 *
 * data: borrowed until return; may be NULL when len is 0.
 * timeout: seconds for the whole call, whatever the message's size and
 * however often signals interrupt it; MP_FOREVER waits for the peer to make
 * room as long as it takes. A message is received whole or not at all, and
 * part of a frame cannot be taken back, so a timeout has two outcomes:
 *  - nothing of the message was written (the peer's buffer was full):
 *    MP_ETIMEDOUT and nothing changed; send again later;
 *  - the message was cut off after its first byte: MP_ETIMEDOUT too, and the
 *    end is now half-sent: every later mp_conn_send / mp_conn_send_fd on it
 *    fails with MP_EHALFSENT, since the receiver would take the next frame
 *    for the rest of this one. Receiving on a duplex end still works. The
 *    peer's receive gets the part that arrived and then waits for the rest
 *    (MP_ETIMEDOUT), or MP_ETRUNCATED once this end is closed.
 * A frame of at most PIPE_BUF (4096) bytes, the message plus an 8-byte
 * header, goes out in one piece on a pipe and (with the default buffer
 * sizes) on a socket, so only the first outcome is possible. Any other
 * error after the first byte (MP_EPIPE, ...) also leaves the end half-sent.
 * Errors: MP_EINVAL (NULL data with len > 0, NaN timeout), MP_EPIPE (peer
 * closed), MP_EBADF (receive-only end), MP_ECLOSED, MP_ETIMEDOUT,
 * MP_EHALFSENT (an earlier send stopped mid-message), MP_EMSGSIZE;
 * MP_EINTR, MP_ECANCELED under the interrupt settings (above: nothing
 * written; never once the frame has begun).
 */
MP_API int mp_conn_send(mp_conn *c, const void *data, size_t len, double timeout);

/* mp_conn_recv — receive one message into a buffer the library allocates.
 *
 * data: receives a malloc'd buffer owned by the caller (free()); a 0-byte
 *       message still gives a non-NULL buffer. len: receives its size.
 * Errors: MP_ETIMEDOUT (nothing lost: a message half received is kept and
 * completed by the next call), MP_EEOF (peer closed, no message left),
 * MP_ETRUNCATED (peer closed mid-message), MP_EBADMSG (malformed frame),
 * MP_EPROTO (the next message carries a file descriptor: use
 * mp_conn_recv_fd), MP_ENOMEM (the message stays queued), MP_EBADF
 * (send-only end), MP_ECLOSED; MP_EINTR, MP_ECANCELED under the interrupt
 * settings (above: nothing lost, as for MP_ETIMEDOUT).
 */
MP_API int mp_conn_recv(mp_conn *c, void **data, size_t *len, double timeout);

/* mp_conn_recv_into — receive one message into the caller's buffer.
 *
 * buf, cap: the buffer, borrowed until return. len: receives the message
 * size. If the message is larger than cap, returns MP_EMSGSIZE with *len set
 * to the size needed, and the message stays queued for the next call.
 * With a finite timeout, or under either interrupt setting, a message
 * larger than the 64 KiB read-ahead is received through a buffer of its
 * size (so that a timeout or an interrupt can keep the part already read),
 * which can fail with MP_ENOMEM; otherwise (MP_FOREVER) it goes straight
 * into buf. Other errors as mp_conn_recv (MP_EINTR, MP_ECANCELED included).
 */
MP_API int mp_conn_recv_into(mp_conn *c, void *buf, size_t cap, size_t *len, double timeout);

/* mp_conn_poll — whether data is there to receive: a message read ahead,
 * bytes in the kernel, end of file or an error (like Python's poll). When
 * only part of a message has arrived, poll says 1 and a recv may still wait
 * for the rest. Returns 1, 0 if the timeout expired first, or an error
 * (MP_EBADF on a send-only end, MP_ECLOSED; MP_EINTR, MP_ECANCELED under
 * the interrupt settings). */
MP_API int mp_conn_poll(mp_conn *c, double timeout);

/* mp_conn_send_fd / mp_conn_recv_fd — pass a file descriptor to the peer
 * (duplex connections only; otherwise MP_ENOTSOCK). fd is duplicated by the
 * kernel; the sender keeps its own. The received fd is close-on-exec and
 * owned by the caller. Fds and messages keep their order: recv_fd on a data
 * message, or recv on an fd message, returns MP_EPROTO and consumes nothing.
 * send_fd with a negative or closed fd is MP_EBADF. The timeout of send_fd
 * works as mp_conn_send's (MP_EHALFSENT included). Other errors as
 * send/recv, MP_EINTR and MP_ECANCELED included. */
MP_API int mp_conn_send_fd(mp_conn *c, int fd, double timeout);
MP_API int mp_conn_recv_fd(mp_conn *c, int *fd, double timeout);

/* mp_conn_set_max_message — the largest message accepted from the peer
 * (default MP_CONN_DEFAULT_MAX_MESSAGE); larger frames give MP_EBADMSG.
 * With a peer you do not trust, set it to what you expect: under the
 * default, a frame announcing a huge size makes recv return MP_ENOMEM (the
 * message stays queued) rather than MP_EBADMSG. Errors: MP_EINVAL for 0. */
MP_API int mp_conn_set_max_message(mp_conn *c, unsigned long long max);

/* mp_conn_fileno — the underlying fd (owned by the connection), or
 * MP_ECLOSED. Readable when recv may have something; note that the
 * connection may also hold read-ahead data: use mp_conn_poll or mp_wait. */
MP_API int mp_conn_fileno(const mp_conn *c);

/* mp_conn_readable / mp_conn_writable — what this end can do. */
MP_API bool mp_conn_readable(const mp_conn *c);
MP_API bool mp_conn_writable(const mp_conn *c);

/* mp_conn_close — close the fd; further calls return MP_ECLOSED. Pending
 * received fds are closed. Closing twice returns 0. */
MP_API int mp_conn_close(mp_conn *c);

/* mp_conn_destroy — close and free. NULL is a no-op. */
MP_API void mp_conn_destroy(mp_conn *c);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_CONN_H */
