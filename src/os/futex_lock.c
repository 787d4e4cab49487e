/* The robust futex lock (see os/futex_lock.h). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "os/futex_lock.h"
#include "os/futex.h"

void mp__futex_lock_wake(_Atomic uint32_t *word)
{
    mp__futex_wake(word, 1);
}

/* Whether thread tid is gone: no such task, or a zombie (a killed process
 * whose parent has not reaped it yet). /proc/<tid>/stat names the state
 * after the command in parentheses. */
static bool thread_dead(pid_t tid)
{
    if (kill(tid, 0) < 0 && errno == ESRCH)
        return true;
    char path[48], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* Takes a word whose holder is dead; false if it changed meanwhile. */
static bool take_over(_Atomic uint32_t *word, uint32_t w, pid_t self)
{
    return atomic_compare_exchange_strong(word, &w, (uint32_t)self | MP__FUTEX_LOCK_WAITERS);
}

static int lock_word(_Atomic uint32_t *word, pid_t self, const mp__deadline *d, bool intr)
{
    bool forever = d == NULL || d->ns < 0;
    bool never = !forever && d->ns == 0;
    bool probe = never; /* a try-lock probes the holder at once */
    for (;;) {
        uint32_t w = atomic_load(word);
        if (w == 0) {
            /* Others may sleep: keep the waiters bit, so our release wakes. */
            if (atomic_compare_exchange_strong(word, &w, (uint32_t)self | MP__FUTEX_LOCK_WAITERS))
                return 0;
            continue;
        }
        pid_t holder = (pid_t)(w & MP__FUTEX_LOCK_TID_MASK);
        if (holder == self)
            return MP_EDEADLK;
        if (probe && thread_dead(holder)) {
            if (take_over(word, w, self))
                return MP_EOWNERDEAD;
            continue;
        }
        if (never)
            return MP_ETIMEDOUT;
        if (!(w & MP__FUTEX_LOCK_WAITERS) &&
            !atomic_compare_exchange_strong(word, &w, w | MP__FUTEX_LOCK_WAITERS))
            continue;
        int64_t slice_end = mp__now_ns() + MP__FUTEX_LOCK_PROBE_NS;
        mp__deadline slice = {.ns = forever || slice_end < d->ns ? slice_end : d->ns};
        int rc = intr ? mp__futex_wait_intr(word, w | MP__FUTEX_LOCK_WAITERS, &slice)
                      : mp__futex_wait(word, w | MP__FUTEX_LOCK_WAITERS, &slice);
        if (rc == MP_EINTR || rc == MP_ECANCELED)
            return rc; /* not taken; the waiters bit only costs a wake-up */
        if (rc == MP_ETIMEDOUT && !forever && slice.ns == d->ns) {
            /* Last chance: the lock may be free, or its holder dead. */
            never = probe = true;
            continue;
        }
        /* A slice that ended with the same holder: probe it next round. */
        probe = rc == MP_ETIMEDOUT && atomic_load(word) == (w | MP__FUTEX_LOCK_WAITERS);
    }
}

int mp__futex_lock_lock(_Atomic uint32_t *word, pid_t self, const mp__deadline *d)
{
    return lock_word(word, self, d, false);
}

int mp__futex_lock_lock_intr(_Atomic uint32_t *word, pid_t self, const mp__deadline *d)
{
    return lock_word(word, self, d, true);
}
