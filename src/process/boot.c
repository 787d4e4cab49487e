/* Start messages of spawn and forkserver children (see process/boot.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "process/boot.h"
#include "heap/heap.h"

/* A pointer that must mean the same in another image: NULL, a pointer into
 * the shared heap (mapped at the same address in the whole family), or one
 * into a module's image, sent as (module, offset). Anything else (stack,
 * malloc) cannot be carried: the caller gets MP_EINVAL at start. */
static int boot_put_ptr(const void *ptr, uint32_t *kind, uint64_t *raw, mp__symref *ref)
{
    if (!ptr) {
        *kind = MP__PTR_NULL;
        return 0;
    }
    if (mp__heap_contains(ptr, 1)) {
        *kind = MP__PTR_HEAP;
        *raw = (uint64_t)(uintptr_t)ptr;
        return 0;
    }
    *kind = MP__PTR_IMAGE;
    return mp__sym_encode(ptr, ref);
}

/* The detail of a pointer that cannot reach the new image. */
static int boot_refuse(int rc, const mp_process *p, const char *arg, const void *ptr)
{
    return mp__fail(rc,
                    "mp_process_start: %s %p is in no module and not in the shared heap (stack, "
                    "malloc or mmap memory?): a %s child is a fresh image and cannot see it; "
                    "put the data in the shared heap (mp_alloc), or give bytes (args_len > 0)",
                    arg, ptr, mp_start_method_name(p->method));
}

static int boot_get_ptr(uint32_t kind, uint64_t raw, const mp__symref *ref, void **out)
{
    switch (kind) {
    case MP__PTR_NULL:
        *out = NULL;
        return 0;
    case MP__PTR_HEAP:
        *out = (void *)(uintptr_t)raw;
        return mp__heap_contains(*out, 1) ? 0 : MP_EBADMSG;
    case MP__PTR_IMAGE:
        return mp__sym_decode(ref, out);
    }
    return MP_EBADMSG;
}

int mp__boot_fill(mp__boot *b, const mp_process *p, mp__boot_mode mode)
{
    memset(b, 0, sizeof(*b));
    b->magic = MP__BOOT_MAGIC;
    b->size = sizeof(*b);
    b->mode = (uint32_t)mode;
    b->ppid = getpid();
    b->main_id_len = (uint32_t)mp__sym_main_build_id(b->main_id);
    b->heap_fd = -1;
    if (mode == MP__BOOT_SERVER)
        return 0;
    b->method = (uint32_t)p->method;
    for (size_t i = 0; i < p->n_pass_fds; i++)
        if (fcntl(p->pass_fds[i], F_GETFD) < 0)
            return mp__fail(MP_EBADF, "mp_process_start: opts->pass_fds[%zu] (%d) is not open", i,
                            p->pass_fds[i]);
    b->n_pass_fds = (uint32_t)p->n_pass_fds;
    for (size_t i = 0; i < p->n_pass_fds; i++)
        b->pass_fds[i] = p->pass_fds[i];
    b->daemon = p->daemon;
    b->is_run = p->run != NULL;
    uintptr_t fn_addr = p->run ? (uintptr_t)p->run : (uintptr_t)p->target;
    const void *fn = (const void *)fn_addr;
    int rc = mp__sym_encode(fn, &b->fn);
    if (rc < 0)
        rc = mp__fail(rc,
                      "mp_process_start: %s %p is not a function of a loaded module (code made at "
                      "run time?): a %s child cannot find it",
                      p->run ? "opts->run" : "opts->target", fn, mp_start_method_name(p->method));
    if (rc == 0 && p->args_len == 0 &&
        (rc = boot_put_ptr(p->args, &b->args_kind, &b->args_ptr, &b->args_ref)) < 0)
        rc = boot_refuse(rc, p, "opts->args (a pointer: args_len is 0)", p->args);
    if (rc == 0 && (rc = boot_put_ptr(p->user, &b->user_kind, &b->user_ptr, &b->user_ref)) < 0)
        rc = boot_refuse(rc, p, "opts->user", p->user);
    b->args_len = p->args_len;
    mp__strlcpy(b->name, p->name, sizeof(b->name));
    mp__strlcpy(b->ident, p->ident, sizeof(b->ident));
    mp__strlcpy(b->parent_name, mp_current_process()->name, sizeof(b->parent_name));
    return rc;
}

int mp__boot_check(const mp__boot *b)
{
    uint8_t id[MP__BUILD_ID_MAX];
    size_t n = mp__sym_main_build_id(id);
    if (b->magic != MP__BOOT_MAGIC || b->size != sizeof(*b) || b->main_id_len != n ||
        memcmp(b->main_id, id, n) != 0)
        return MP_EBADMSG;
    if (b->n_pass_fds > MP_PASS_FDS_MAX)
        return MP_EBADMSG;
    for (uint32_t i = 0; i < b->n_pass_fds; i++)
        if (b->pass_fds[i] < 0)
            return MP_EBADMSG;
    if (!memchr(b->name, '\0', sizeof(b->name)) || !memchr(b->ident, '\0', sizeof(b->ident)) ||
        !memchr(b->parent_name, '\0', sizeof(b->parent_name)))
        return MP_EBADMSG;
    return 0;
}

int mp__boot_process(const mp__boot *b, void *args, mp_process **out)
{
    void *fn, *ptr_args = NULL, *user;
    int rc = mp__sym_decode(&b->fn, &fn);
    if (rc == 0 && b->args_len == 0)
        rc = boot_get_ptr(b->args_kind, b->args_ptr, &b->args_ref, &ptr_args);
    if (rc == 0)
        rc = boot_get_ptr(b->user_kind, b->user_ptr, &b->user_ref, &user);
    if (rc < 0)
        return rc;
    mp_process *p = calloc(1, sizeof(*p));
    if (!p)
        return MP_ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    p->kind = MP__KIND_CHILD;
    p->state = MP__RUNNING;
    p->sentinel = -1;
    if (b->is_run)
        p->run = (mp_run_fn)(uintptr_t)fn;
    else
        p->target = (mp_target_fn)(uintptr_t)fn;
    p->args = b->args_len ? args : ptr_args;
    p->args_len = (size_t)b->args_len;
    p->args_owned = b->args_len > 0;
    p->user = user;
    p->daemon = b->daemon;
    p->method = (mp_start_method)b->method;
    p->grace = MP__DEFAULT_GRACE;
    mp__strlcpy(p->name, b->name, sizeof(p->name));
    mp__strlcpy(p->ident, b->ident, sizeof(p->ident));
    *out = p;
    return 0;
}

/* Waits until fd is ready for events or the deadline passes (MP_ETIMEDOUT).
 * Without a deadline the socket call itself blocks: nothing to wait for. */
static int boot_ready(int fd, short events, const mp__deadline *d)
{
    if (!d)
        return 0;
    struct pollfd pfd = {.fd = fd, .events = events};
    int r = mp__poll(&pfd, 1, d);
    return r < 0 ? r : r == 0 ? MP_ETIMEDOUT : 0;
}

/* A deadline that passes after part of a message leaves the stream out of
 * step: that is a truncated message, not a timeout. */
static int boot_late(size_t done)
{
    return done ? MP_ETRUNCATED : MP_ETIMEDOUT;
}

int mp__boot_send_by(int fd, const void *buf, size_t len, const mp__deadline *d)
{
    const char *p = buf;
    size_t done = 0;
    int flags = MSG_NOSIGNAL | (d ? MSG_DONTWAIT : 0);
    while (done < len) {
        int rc = boot_ready(fd, POLLOUT, d);
        if (rc < 0)
            return rc == MP_ETIMEDOUT ? boot_late(done) : rc;
        ssize_t n = send(fd, p + done, len - done, flags);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return errno == EPIPE || errno == ECONNRESET ? MP_EPIPE : mp__errno();
        done += (size_t)n;
    }
    return 0;
}

int mp__boot_send(int fd, const void *buf, size_t len)
{
    return mp__boot_send_by(fd, buf, len, NULL);
}

int mp__boot_recv_by(int fd, void *buf, size_t len, const mp__deadline *d)
{
    size_t n = 0;
    return mp__boot_recv_fds_by(fd, buf, len, NULL, &n, d);
}

int mp__boot_recv(int fd, void *buf, size_t len)
{
    return mp__boot_recv_by(fd, buf, len, NULL);
}

int mp__boot_send_fds_by(int fd, const void *buf, size_t len, const int *fds, size_t n,
                         const mp__deadline *d)
{
    if (n == 0)
        return mp__boot_send_by(fd, buf, len, d);
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * MP_PASS_FDS_MAX)];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(h), fds, sizeof(int) * n);
    ssize_t r;
    for (;;) {
        int rc = boot_ready(fd, POLLOUT, d);
        if (rc < 0)
            return rc;
        r = sendmsg(fd, &m, MSG_NOSIGNAL | (d ? MSG_DONTWAIT : 0));
        if (r >= 0)
            break;
        if (errno != EINTR && errno != EAGAIN)
            return errno == EPIPE || errno == ECONNRESET ? MP_EPIPE : mp__errno();
    }
    int rc = mp__boot_send_by(fd, (const char *)buf + r, len - (size_t)r, d);
    return rc == MP_ETIMEDOUT ? MP_ETRUNCATED : rc; /* the fds and r bytes went */
}

int mp__boot_send_fds(int fd, const void *buf, size_t len, const int *fds, size_t n)
{
    return mp__boot_send_fds_by(fd, buf, len, fds, n, NULL);
}

static void boot_take_fds(struct msghdr *m, int *fds, size_t *n)
{
    for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h; h = CMSG_NXTHDR(m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int f;
            memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof(f));
            if (*n < MP_PASS_FDS_MAX)
                fds[(*n)++] = f;
            else
                close(f);
        }
    }
}

/* Without room for fds (fds NULL) the kernel closes any that come. */
int mp__boot_recv_fds_by(int fd, void *buf, size_t len, int *fds, size_t *n, const mp__deadline *d)
{
    char *p = buf;
    size_t done = 0;
    *n = 0;
    while (done < len) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int) * MP_PASS_FDS_MAX)];
        } ctl;
        struct iovec iov = {.iov_base = p + done, .iov_len = len - done};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = fds ? ctl.buf : NULL,
                           .msg_controllen = fds ? sizeof(ctl) : 0};
        int rc = boot_ready(fd, POLLIN, d);
        if (rc < 0)
            return rc == MP_ETIMEDOUT ? boot_late(done) : rc;
        ssize_t r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC | (d ? MSG_DONTWAIT : 0));
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0 && errno != ECONNRESET)
            return mp__errno();
        if (r > 0 && fds)
            boot_take_fds(&m, fds, n);
        if (r <= 0)
            return done ? MP_ETRUNCATED : MP_EEOF;
        done += (size_t)r;
    }
    return 0;
}

int mp__boot_recv_fds(int fd, void *buf, size_t len, int *fds, size_t *n)
{
    return mp__boot_recv_fds_by(fd, buf, len, fds, n, NULL);
}
