/* multiproc — waiting on several objects at once (Python's
 * multiprocessing.connection.wait).
 *
 *     mp_waitable w[] = { MP_WAIT_PROCESS(p), MP_WAIT_CONN(c) };
 *     int n = mp_wait(w, 2, 1.5);   // number ready; w[i].ready says which
 *
 * A process is ready when it has exited (it is then reaped); a connection
 * when a recv would not block (a message, end of file or an error); a queue
 * when a get would not block (a message, or closed and drained); an event
 * when it is set, or was set while mp_wait waited (as mp_event_wait); an
 * fd when it is readable; a pool's result (mp_async) when mp_async_ready
 * would be true, a finished task's failure included; an iterator (mp_imap)
 * when mp_imap_next would not block (an item, a failure, the end).
 *
 * Results: mp_wait collects the pool's results while it waits (it is one
 * of the pool's calls, so callbacks may run in it), woken by the pool's
 * own descriptor (made on the first wait, kept by the pool): a result
 * costs no descriptor of its own. A distributed pool's result has none
 * and is looked at every 20 ms; its iterators cannot be waited on
 * (MP_ENOSYS).
 *
 * Queues: the waiter sleeps on the queue's eventfd, which producers write
 * only while someone waits through mp_wait. A process that has no such fd
 * (forked before the queue was created, or started by spawn or forkserver:
 * the fd is close-on-exec) puts without signalling; its puts are noticed
 * by the waiter's 20 ms re-checks instead (late, never lost). A queue of a
 * Redis manager is waited on at the server (a blocking command on a
 * connection of its own, whose socket is polled with the rest): a put
 * ends the wait within a round trip, a close within a second; nothing is
 * taken from the queue (docs/redis.md, "mp_wait on a queue").
 *
 * Events: a local event has no descriptor, so it is looked at every
 * 20 ms while mp_wait sleeps (a set shorter than that, set and cleared
 * again, may be missed); a Redis manager's event is waited on at the
 * server like its own waiters (enlisted, woken by the set with its count
 * of sets), so a set ends the wait within a round trip and is never
 * missed, even if cleared at once. Readiness is a snapshot:
 * another consumer may take the message first, so get with a timeout of 0
 * and expect MP_EEMPTY.
 *
 * Thread safety: safe from any thread; the objects follow their own rules.
 * Waiting on a connection while another thread receives on it is allowed,
 * but what that thread reads ahead is seen only when its receive returns:
 * the receiver, not the waiter, then owns those messages.
 */
#ifndef MULTIPROC_WAIT_H
#define MULTIPROC_WAIT_H

#include <stdbool.h>
#include <stddef.h>

#include "multiproc/conn.h"
#include "multiproc/pool.h"
#include "multiproc/process.h"
#include "multiproc/queue.h"
#include "multiproc/sync.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mp_wait_kind {
    MP_WAIT_KIND_PROCESS = 1,
    MP_WAIT_KIND_CONN = 2,
    MP_WAIT_KIND_FD = 3,
    MP_WAIT_KIND_QUEUE = 4,
    MP_WAIT_KIND_EVENT = 5,
    MP_WAIT_KIND_ASYNC = 6,
    MP_WAIT_KIND_IMAP = 7,
} mp_wait_kind;

typedef struct mp_waitable {
    mp_wait_kind kind;
    mp_process *process; /* with MP_WAIT_KIND_PROCESS */
    mp_conn *conn;       /* with MP_WAIT_KIND_CONN */
    int fd;              /* with MP_WAIT_KIND_FD: readable */
    mp_queue *queue;     /* with MP_WAIT_KIND_QUEUE */
    bool ready;          /* output */
    mp_event *event;     /* with MP_WAIT_KIND_EVENT */
    mp_async *async;     /* with MP_WAIT_KIND_ASYNC */
    mp_imap *imap;       /* with MP_WAIT_KIND_IMAP */
} mp_waitable;

#define MP_WAIT_PROCESS(p) ((mp_waitable){.kind = MP_WAIT_KIND_PROCESS, .process = (p), .fd = -1})
#define MP_WAIT_CONN(c)    ((mp_waitable){.kind = MP_WAIT_KIND_CONN, .conn = (c), .fd = -1})
#define MP_WAIT_FD(f)      ((mp_waitable){.kind = MP_WAIT_KIND_FD, .fd = (f)})
#define MP_WAIT_QUEUE(q)   ((mp_waitable){.kind = MP_WAIT_KIND_QUEUE, .queue = (q), .fd = -1})
#define MP_WAIT_EVENT(e)   ((mp_waitable){.kind = MP_WAIT_KIND_EVENT, .event = (e), .fd = -1})
#define MP_WAIT_ASYNC(a)   ((mp_waitable){.kind = MP_WAIT_KIND_ASYNC, .async = (a), .fd = -1})
#define MP_WAIT_IMAP(it)   ((mp_waitable){.kind = MP_WAIT_KIND_IMAP, .imap = (it), .fd = -1})

/* mp_wait — wait until at least one object is ready or the timeout expires.
 *
 * items: n entries, borrowed until return; each .ready is set on return.
 * timeout: seconds, MP_FOREVER, or 0 to only check.
 * Returns the number of ready objects, 0 if the timeout expired first (like
 * Python's empty list). Errors (nothing waited for): MP_EINVAL (NULL items
 * with n > 0, unknown kind, NULL or foreign object, n above 4096), MP_ENOTSTARTED /
 * MP_ECLOSED / MP_EBADF for an object that cannot be waited on; for a Redis
 * queue also the connection's errors (MP_ECONNRESET, MP_ETIMEDOUT...);
 * for a result or an iterator MP_EPERM (a pool of another process) and
 * MP_ENOSYS (a distributed pool's iterator).
 * With n == 0 it sleeps for the timeout and returns 0 (MP_EINVAL if that
 * would be forever).
 */
MP_API int mp_wait(mp_waitable *items, size_t n, double timeout);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_WAIT_H */
