/* What other modules (mp_wait) and the tests may know of a connection
 * beyond its public API. Not installed. */
#ifndef MULTIPROC_CONN_INTERNAL_H
#define MULTIPROC_CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "multiproc/conn.h"

/* True when a recv on c would return without touching the fd: a complete
 * message (or descriptor frame) is in the read-ahead buffer, a malformed
 * header is, or the connection is at end of file or broken. False for NULL,
 * a closed or a send-only end. mp_wait must then also poll mp__conn_fd(c).
 * The answer is as of the end of the receiver's last call, read atomically:
 * safe from any thread, even while another thread is receiving on c. */
bool mp__conn_has_buffered(const mp_conn *c);

/* The fd to poll for readability, or -1 for NULL or a closed connection. */
int mp__conn_fd(const mp_conn *c);

/* Size of the read-ahead buffer (default 64 KiB), for the fuzzer and the
 * tests, which shrink it to reach the large-message path with small inputs.
 * Only before the first recv/recv_into/recv_fd; size >= 16.
 * Errors: MP_EINVAL, MP_EBUSY (the buffer already exists), MP_ECLOSED. */
int mp__conn_set_readahead(mp_conn *c, size_t size);

#endif /* MULTIPROC_CONN_INTERNAL_H */
