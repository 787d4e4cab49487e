/* Writes that cannot raise SIGPIPE, and the switches that turn kernel
 * features off for tests. Not installed.
 *
 * A write to a pipe whose reader is gone raises SIGPIPE, whose default
 * action kills the process, and the library installs no handler. Sockets
 * have MSG_NOSIGNAL; pipes have RWF_NOSIGNAL (pwritev2) since Linux 6.18.
 * On older kernels SIGPIPE is blocked in the calling thread for the write,
 * and the one that write raised is consumed before the caller's mask is
 * restored. Either way the library never raises SIGPIPE in the caller, and
 * leaves a SIGPIPE the caller had pending (blocked) alone. */
#ifndef MULTIPROC_OS_FDIO_H
#define MULTIPROC_OS_FDIO_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The pwritev2 flag, spelled out because the headers may be older. */
#define MP__RWF_NOSIGNAL 0x00000100

/* Whether the environment variable name is set to turn a kernel feature
 * off ("1", anything but empty or "0"): tests reach the fallbacks of older
 * kernels this way. */
bool mp__env_off(const char *name);

/* MP__RWF_NOSIGNAL when pwritev2 takes it here, else 0. Probed once per
 * process, with an empty write on fd (a pipe or a file: the kernel checks
 * the flags before it looks at the readers). MP_DISABLE_RWF_NOSIGNAL=1
 * forces 0: the signal-mask path. */
int mp__rwf_nosignal(int fd);

/* The signal-mask path, around any number of writes:
 * mp__sigpipe_block, the writes, then mp__sigpipe_restore with whether a
 * write failed with EPIPE. */
typedef struct mp__sigpipe_guard {
    sigset_t set;     /* { SIGPIPE } */
    bool was_blocked; /* by the caller: the mask stays as it is */
    bool theirs;      /* a SIGPIPE of the caller was already pending */
} mp__sigpipe_guard;
void mp__sigpipe_block(mp__sigpipe_guard *g);
void mp__sigpipe_restore(const mp__sigpipe_guard *g, bool epipe);

/* write(fd, buf, len) that cannot raise SIGPIPE (EPIPE instead), by
 * RWF_NOSIGNAL or the signal mask. Returns what write returns, with errno. */
ssize_t mp__write_nosignal(int fd, const void *buf, size_t len);

#endif /* MULTIPROC_OS_FDIO_H */
