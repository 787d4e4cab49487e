/* Frame headers: encoding and the decoder of untrusted bytes. */
#include <endian.h>
#include <string.h>

#include "conn/conn_frame.h"
#include "base/internal.h"

void mp__frame_encode(unsigned char hdr[MP__FRAME_HEADER], uint64_t len, bool has_fd)
{
    uint64_t v = htole64(len | (has_fd ? MP__FRAME_FD_BIT : 0));
    memcpy(hdr, &v, sizeof(v));
}

int mp__frame_decode(const unsigned char *buf, size_t avail, uint64_t max, mp__frame *f)
{
    if (avail < MP__FRAME_HEADER)
        return MP_EAGAIN;
    uint64_t v;
    memcpy(&v, buf, sizeof(v));
    v = le64toh(v);
    bool has_fd = (v & MP__FRAME_FD_BIT) != 0;
    uint64_t len = v & MP__FRAME_LEN_MAX;
    if (has_fd) {
        if (len != MP__FRAME_FD_PAYLOAD)
            return MP_EBADMSG;
    } else if (len > max || len > SIZE_MAX - MP__FRAME_HEADER) {
        /* The second test only matters on 32-bit machines, where a frame
         * must still be addressable once the header is added. */
        return MP_EBADMSG;
    }
    f->len = (size_t)len;
    f->has_fd = has_fd;
    return 0;
}
