/* Writes that cannot raise SIGPIPE (os/fdio.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "os/fdio.h"

bool mp__env_off(const char *name)
{
    const char *v = secure_getenv(name);
    return v && *v && *v != '0';
}

/* -1 unknown, 0 no, 1 yes: whether pwritev2 takes RWF_NOSIGNAL. */
static atomic_int nosignal_state = -1;

int mp__rwf_nosignal(int fd)
{
    int s = atomic_load_explicit(&nosignal_state, memory_order_relaxed);
    if (s < 0) {
        /* An empty write returns before a pipe looks at its readers, but
         * only after the kernel has checked the flags: a safe probe. An
         * error other than an unknown flag (a bad fd) says nothing about
         * the kernel: the next call probes again. */
        struct iovec none = {.iov_base = NULL, .iov_len = 0};
        if (mp__env_off("MP_DISABLE_RWF_NOSIGNAL"))
            s = 0;
        else if (pwritev2(fd, &none, 1, -1, MP__RWF_NOSIGNAL) == 0)
            s = 1;
        else if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)
            s = 0;
        else
            return 0;
        atomic_store_explicit(&nosignal_state, s, memory_order_relaxed);
    }
    return s == 1 ? MP__RWF_NOSIGNAL : 0;
}

void mp__sigpipe_block(mp__sigpipe_guard *g)
{
    sigset_t old, pending;
    sigemptyset(&g->set);
    sigaddset(&g->set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &g->set, &old);
    g->was_blocked = sigismember(&old, SIGPIPE);
    /* A SIGPIPE the caller had pending already is theirs, not ours. */
    g->theirs = g->was_blocked && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

void mp__sigpipe_restore(const mp__sigpipe_guard *g, bool epipe)
{
    int saved = errno;
    sigset_t pending;
    if (epipe && !g->theirs && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&g->set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    if (!g->was_blocked)
        pthread_sigmask(SIG_UNBLOCK, &g->set, NULL);
    errno = saved;
}

ssize_t mp__write_nosignal(int fd, const void *buf, size_t len)
{
    int flag = mp__rwf_nosignal(fd);
    if (flag) {
        struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
        return pwritev2(fd, &iov, 1, -1, flag);
    }
    mp__sigpipe_guard g;
    mp__sigpipe_block(&g);
    ssize_t w = write(fd, buf, len);
    mp__sigpipe_restore(&g, w < 0 && errno == EPIPE);
    return w;
}
