/* The wire format of connections, and its pure decoder (no I/O, no
 * allocation), kept apart from conn/conn.c so that it can be fuzzed and reasoned
 * about alone.
 *
 * A frame is an 8-byte little-endian header followed by the payload. Bits
 * 0..62 of the header are the payload length; bit 63 says that the frame
 * carries a file descriptor. Such a frame always has a 1-byte payload (a
 * Unix stream socket needs at least one data byte to carry SCM_RIGHTS), and
 * its descriptor is attached to the same sendmsg as the header bytes. Not
 * installed.
 */
#ifndef MULTIPROC_CONN_FRAME_H
#define MULTIPROC_CONN_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MP__FRAME_HEADER     8u
#define MP__FRAME_FD_BIT     ((uint64_t)1 << 63)
#define MP__FRAME_LEN_MAX    (MP__FRAME_FD_BIT - 1)
#define MP__FRAME_FD_PAYLOAD 1u

typedef struct mp__frame {
    size_t len;  /* payload bytes that follow the header */
    bool has_fd; /* the frame carries a file descriptor */
} mp__frame;

/* Write the header of a frame of len payload bytes (len <= MP__FRAME_LEN_MAX). */
void mp__frame_encode(unsigned char hdr[MP__FRAME_HEADER], uint64_t len, bool has_fd);

/* Decode the header at the start of buf, of which avail bytes are valid.
 * max: the largest payload accepted for a data frame.
 * Returns 0 with *f filled, MP_EAGAIN when fewer than MP__FRAME_HEADER bytes
 * are available (buf is then not read, and may be NULL), or MP_EBADMSG for a
 * length above max (or above what this machine can address) and for a
 * descriptor frame whose payload is not exactly MP__FRAME_FD_PAYLOAD bytes. */
int mp__frame_decode(const unsigned char *buf, size_t avail, uint64_t max, mp__frame *f);

#endif /* MULTIPROC_CONN_FRAME_H */
