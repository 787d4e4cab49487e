/* Internal declarations shared by the library's modules. Not installed. */
#ifndef MULTIPROC_INTERNAL_H
#define MULTIPROC_INTERNAL_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "multiproc.h"

/* ---- deadlines (base/deadline.c) -------------------------------------------
 * Every blocking call turns its relative timeout into an absolute
 * CLOCK_MONOTONIC deadline at once, so that retries after EINTR or after a
 * spurious wake-up never stretch the wait. */
typedef struct mp__deadline {
    int64_t ns; /* absolute monotonic time in ns; < 0 means no deadline */
} mp__deadline;

/* Validate a timeout (NaN is MP_EINVAL) and compute its deadline. */
int mp__deadline_init(mp__deadline *d, double timeout);
/* The monotonic clock in nanoseconds. */
int64_t mp__now_ns(void);
/* True when the deadline has passed (never for no deadline). */
bool mp__deadline_expired(const mp__deadline *d);
/* Milliseconds left for poll(): -1 without deadline, 0 when expired,
 * rounded up so that a wait never ends before the deadline. */
int mp__deadline_poll_ms(const mp__deadline *d);
/* poll() until an event or the deadline, restarting after EINTR with the
 * remaining time. Returns the number of ready fds, 0 on expiry, -errno. */
int mp__poll(struct pollfd *fds, nfds_t n, const mp__deadline *d);
/* Sleep until the deadline or for at most max_ns, whichever is sooner. */
void mp__sleep_until(const mp__deadline *d, int64_t max_ns);

/* ---- misc ---------------------------------------------------------------*/
#define MP__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* Negative errno of the last failed call, never 0. */
static inline int mp__errno(void)
{
    return errno > 0 ? -errno : MP_EIO;
}

/* Copies src into dst (cap > 0 bytes), truncated and always terminated.
 * A plain loop on purpose: it runs in freshly forked children, where the
 * first call of a libc string function would resolve its symbol lazily. */
static inline void mp__strlcpy(char *dst, const char *src, size_t cap)
{
    size_t i = 0;
    for (; i + 1 < cap && src[i]; i++)
        dst[i] = src[i];
    dst[i] = '\0';
}

/* Fails with code and a detail for mp_error_detail(): formats it into this
 * thread's buffer, logs it when MP_DEBUG is on, and returns code, so that a
 * check stays one line: `return mp__fail(MP_EINVAL, "%s: ...", __func__);`.
 * Not async-signal-safe: never between fork and exec. */
int mp__fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "SIGSEGV" for SIGSEGV; "signal N" (written into buf) for others. */
const char *mp__sig_name(int sig, char *buf, size_t cap);

/* MP_DEBUG=1 in the environment turns on a debug log on stderr. */
void mp__debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whether MP_DEBUG is on (for checks that cost something to make). */
bool mp__debug_enabled(void);

#endif /* MULTIPROC_INTERNAL_H */
