/* Queues and mp_wait: an eventfd per queue, written by producers only while
 * some thread waits on the queue through mp_wait, so that put and get stay
 * free of system calls otherwise.
 *
 * The eventfd is created with the queue, close-on-exec; children forked
 * afterwards inherit it. A process-local table records which queues' fds
 * this process holds: it is ordinary memory, so fork copies it together
 * with the fds, and a process forked before the queue existed (whose fd
 * number would mean something else) finds nothing and never writes. Such a
 * process's puts cannot signal the fd, so mp_wait also re-checks queues in
 * 20 ms slices: a wake-up is never lost, at worst late. */
#include <stdint.h>
#include <unistd.h>

#include "queue/queue_internal.h"

#define MP__QFD_SLOTS   1024
#define MP__QFD_CLAIMED ((mp_queue *)(uintptr_t)1)

/* Slot i: the queue (published last, with release), its eventfd as
 * numbered in this process, and its tag: a queue created later at the
 * same address has another tag, so a stale slot never matches it. */
static _Atomic(mp_queue *) mp__qfd_queue[MP__QFD_SLOTS];
static int qfd_fd[MP__QFD_SLOTS];
static uint32_t qfd_tag[MP__QFD_SLOTS];
static _Atomic size_t qfd_used; /* slots ever used: the scan's bound */

int mp__queue_efd_register(mp_queue *q)
{
    for (size_t i = 0; i < MP__QFD_SLOTS; i++) {
        mp_queue *expected = NULL;
        if (!atomic_compare_exchange_strong(&mp__qfd_queue[i], &expected, MP__QFD_CLAIMED))
            continue;
        qfd_fd[i] = q->efd;
        qfd_tag[i] = q->tag;
        atomic_store_explicit(&mp__qfd_queue[i], q, memory_order_release);
        size_t used = atomic_load(&qfd_used);
        while (used < i + 1 && !atomic_compare_exchange_weak(&qfd_used, &used, i + 1))
            ;
        return 0;
    }
    return MP_EMFILE;
}

static size_t queue_slot(const mp_queue *q)
{
    size_t used = atomic_load(&qfd_used);
    for (size_t i = 0; i < used; i++)
        if (atomic_load_explicit(&mp__qfd_queue[i], memory_order_acquire) == q &&
            qfd_tag[i] == q->tag)
            return i;
    return SIZE_MAX;
}

int mp__queue_efd(const mp_queue *q)
{
    size_t i = queue_slot(q);
    return i == SIZE_MAX ? -1 : qfd_fd[i];
}

void mp__queue_efd_forget(mp_queue *q)
{
    size_t i = queue_slot(q);
    if (i == SIZE_MAX)
        return;
    int fd = qfd_fd[i];
    atomic_store(&mp__qfd_queue[i], NULL);
    close(fd);
}

void mp__queue_signal(mp_queue *q)
{
    int fd = mp__queue_efd(q);
    if (fd < 0)
        return;
    uint64_t one = 1;
    /* Non-blocking: a counter that is already huge is signalled anyway. */
    ssize_t r = write(fd, &one, sizeof one);
    (void)r;
}

void mp__queue_pollers_add(mp_queue *q, int delta)
{
    if (delta > 0)
        atomic_fetch_add(&q->pollers, 1);
    else
        atomic_fetch_sub(&q->pollers, 1);
}

/* Ready when a get would not block: a message, or closed and drained. A
 * ring slot that a dead producer left claimed is dropped here too, since
 * the messages behind it would otherwise not count. */
static bool queue_ready(mp_queue *q)
{
    int rs = mp__qring_state(q);
    if (rs == MP__QR_BUSY && mp__qring_reap(q))
        rs = mp__qring_state(q);
    return rs == MP__QR_OK || atomic_load(&q->count) > 0 || atomic_load(&q->closed);
}

int mp__queue_wait_prepare(mp_queue *q, int *fd)
{
    if (!mp__queue_valid(q))
        return mp__queue_fail("mp_wait", q);
    *fd = mp__queue_efd(q);
    return queue_ready(q) ? 1 : 0;
}

bool mp__queue_wait_confirm(mp_queue *q)
{
    /* Reset the fd first, then look: a put after the read signals again,
     * and a put before it is seen by the check. */
    int fd = mp__queue_efd(q);
    if (fd >= 0) {
        uint64_t v;
        ssize_t r = read(fd, &v, sizeof v);
        (void)r;
    }
    return queue_ready(q);
}
