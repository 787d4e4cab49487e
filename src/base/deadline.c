/* Absolute monotonic deadlines and EINTR-safe waits. */
#include <math.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "base/internal.h"

int64_t mp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int mp__deadline_init(mp__deadline *d, double timeout)
{
    if (isnan(timeout))
        return MP_EINVAL;
    /* Anything beyond a century is as good as forever and would overflow. */
    if (timeout < 0 || timeout > 3.0e9) {
        d->ns = -1;
        return 0;
    }
    d->ns = mp__now_ns() + (int64_t)(timeout * 1e9);
    return 0;
}

bool mp__deadline_expired(const mp__deadline *d)
{
    return d->ns >= 0 && mp__now_ns() >= d->ns;
}

int mp__deadline_poll_ms(const mp__deadline *d)
{
    if (d->ns < 0)
        return -1;
    int64_t left = d->ns - mp__now_ns();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

int mp__poll(struct pollfd *fds, nfds_t n, const mp__deadline *d)
{
    for (;;) {
        int r = poll(fds, n, mp__deadline_poll_ms(d));
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return mp__errno();
    }
}

int mp__poll_intr(struct pollfd *fds, nfds_t n, const mp__deadline *d)
{
    int rc = mp__intr_check();
    if (rc < 0)
        return rc;
    int efd = mp__intr_fd();
    if (efd < 0) {
        for (;;) {
            int r = poll(fds, n, mp__deadline_poll_ms(d));
            if (r >= 0)
                return r;
            if (errno != EINTR)
                return mp__errno();
            if ((rc = mp__intr_after_eintr()) < 0)
                return rc;
        }
    }
    /* The cancel's eventfd polled after the caller's fds. */
    struct pollfd few[8], *all = n < 8 ? few : malloc((n + 1) * sizeof(*all));
    if (all == NULL)
        return MP_ENOMEM;
    for (nfds_t i = 0; i < n; i++)
        all[i] = fds[i];
    all[n] = (struct pollfd){.fd = efd, .events = POLLIN};
    int r;
    for (;;) {
        r = poll(all, n + 1, mp__deadline_poll_ms(d));
        if (r >= 0 || errno != EINTR)
            break;
        if ((rc = mp__intr_after_eintr()) < 0)
            break;
    }
    if (r < 0 && rc == 0)
        rc = mp__errno();
    if (rc == 0 && all[n].revents)
        rc = MP_ECANCELED;
    if (rc == 0)
        for (nfds_t i = 0; i < n; i++)
            fds[i].revents = all[i].revents;
    if (all != few)
        free(all);
    return rc < 0 ? rc : r; /* the eventfd was not ready: r counts fds only */
}

void mp__sleep_until(const mp__deadline *d, int64_t max_ns)
{
    int64_t now = mp__now_ns();
    int64_t until = max_ns > INT64_MAX - now ? INT64_MAX : now + max_ns;
    if (d->ns >= 0 && d->ns < until)
        until = d->ns;
    struct timespec ts = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

bool mp__debug_enabled(void)
{
    static _Atomic int enabled = -1;
    int on = enabled;
    if (on < 0) {
        const char *v = secure_getenv("MP_DEBUG");
        on = v && *v && *v != '0';
        enabled = on;
    }
    return on;
}

void mp__debug(const char *fmt, ...)
{
    if (!mp__debug_enabled())
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "[multiproc %d] %s\n", (int)getpid(), line);
}
