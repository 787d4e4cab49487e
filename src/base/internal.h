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
/* The same as mp__poll, for a wait that honours the calling thread's
 * interrupt settings (multiproc/interrupt.h): MP_ECANCELED when its cancel
 * is (or becomes) triggered, MP_EINTR after a signal handler when it is
 * interruptible. fds may be NULL with n 0 (a sleep). */
int mp__poll_intr(struct pollfd *fds, nfds_t n, const mp__deadline *d);

/* ---- interrupts (base/interrupt.c) -----------------------------------------
 * What the blocking waits use of the calling thread's settings. check:
 * MP_ECANCELED when its cancel is triggered, else 0 (before each sleep).
 * after_eintr: after a sleep ended by a signal: MP_ECANCELED, MP_EINTR
 * (interruptible), or 0 (sleep again). fd: the cancel's eventfd, to poll
 * with the rest, or -1. watch/unwatch: register the futex word the thread
 * is about to sleep on, so that a trigger wakes it (slot, or -1). slice:
 * d, shortened to MP__INTR_SLICE_NS from now when a cancel is watched.
 * active: either setting is on (interruptible, or a cancel watched), so a
 * call that would make one blocking system call (read, waitid) must wait
 * through mp__poll_intr instead, which a signal or a trigger ends. */
#define MP__INTR_SLICE_NS (50 * 1000000LL)
int mp__intr_check(void);
int mp__intr_after_eintr(void);
int mp__intr_fd(void);
int mp__intr_watch(_Atomic uint32_t *word);
void mp__intr_unwatch(int slot);
void mp__intr_slice(mp__deadline *slice, const mp__deadline *d);
bool mp__intr_active(void);

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
 * Cold: the branches that call it are laid out away from the success
 * path. Not async-signal-safe: never between fork and exec. */
int mp__fail(int code, const char *fmt, ...) __attribute__((cold, format(printf, 2, 3)));

/* "SIGSEGV" for SIGSEGV; "signal N" (written into buf) for others. */
const char *mp__sig_name(int sig, char *buf, size_t cap);

/* MP_DEBUG=1 in the environment turns on a debug log on stderr. */
void mp__debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whether MP_DEBUG is on (for checks that cost something to make). */
bool mp__debug_enabled(void);

#endif /* MULTIPROC_INTERNAL_H */
