/* multiproc — queues (Python's multiprocessing.Queue, SimpleQueue and
 * JoinableQueue), in the family's shared memory.
 *
 *     mp_queue *q;
 *     mp_queue_create(&q, &(mp_queue_opts){ .maxsize = 100 });
 *     // ... start processes that receive q (a pointer valid in all of them)
 *     mp_queue_put(q, "hello", 6, MP_FOREVER);
 *     char buf[64]; size_t len;
 *     mp_queue_get_into(q, buf, sizeof buf, &len, 1.0);   // 0, MP_EEMPTY, ...
 *     mp_queue_destroy(q);
 *
 * A queue is a structure in the shared heap: no feeder thread, no pipe, no
 * pickling. put copies the bytes into shared memory and returns (back
 * pressure: it blocks while the queue is full); get copies them out. A
 * process that put messages and exits never hangs at exit, since nothing
 * is left in flight.
 *
 * Messages are byte strings of 0 bytes or more. Order: the messages of one
 * producer (one thread) are got in the order of its put (or reserve) calls;
 * messages of different producers interleave.
 *
 * Errors of put and get (the rule): when a put cannot place its message
 * before its timeout it returns MP_EFULL, and a get that finds nothing
 * returns MP_EEMPTY, whether the timeout was 0 (nowait) or expired after a
 * wait, as Python raises queue.Full / queue.Empty in both cases. put, get
 * and their variants never return MP_ETIMEDOUT; only mp_queue_join does
 * (there is no queue state to name). After mp_queue_close, puts return
 * MP_ECLOSED and gets return what is left, then MP_ECLOSED.
 *
 * Robustness: a process killed at any moment (SIGKILL included) while using
 * a queue never wedges the others. Small messages (up to 104 bytes, in a
 * queue that is neither joinable nor byte-bounded) go through a lock-free
 * ring whose every change is one compare-and-swap and whose slots name the
 * producer writing them; everything else goes through a chain under a
 * robust mutex, whose updates are ordered so that the next process to take
 * the lock after a death repairs the queue. The only messages lost are
 * those the killed process had in hand: a message it was putting or
 * getting, a zero-copy reservation it had not committed, a message it had
 * peeked and not released. Such slots and records are reclaimed as soon as
 * a process waiting on the queue finds their owner dead (checked at most
 * every 100 ms while some are held). A thread
 * that exits while holding a reservation is not detected: its process is
 * alive, so its reservation stays until the process dies.
 *
 * Thread / process / fork safety: every function may be called from any
 * thread of any process of the family at the same time, except
 * mp_queue_destroy (once, when nobody uses the queue any more). The mp_queue
 * pointer is valid in every process of the family (the shared heap is at
 * the same address everywhere), so pass it in process arguments or store it
 * in other shared objects. A queue created after a child started is usable
 * by the child.
 *
 * A queue obtained from a Redis manager (mp_manager_queue) is a handle to a
 * queue on the server: the functions that apply to it, and those that are
 * MP_ENOSYS there, are listed in multiproc/manager.h, "Types on Redis".
 */
#ifndef MULTIPROC_QUEUE_H
#define MULTIPROC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "multiproc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_queue mp_queue;

/* The largest message any queue accepts (1 TiB); larger is MP_EMSGSIZE. */
#define MP_QUEUE_MAX_MESSAGE ((size_t)1 << 40)

typedef struct mp_queue_opts {
    /* Most messages held at once (Python's maxsize); 0: no limit but the
     * shared heap. Reserved (not yet committed) messages count. */
    size_t maxsize;
    /* Most payload bytes held at once; 0: no limit but the heap. A message
     * longer than max_bytes can never fit: its put is MP_EMSGSIZE. */
    size_t max_bytes;
    /* JoinableQueue: count unfinished tasks for task_done / join. */
    bool joinable;
    /* SimpleQueue: unbounded by construction (maxsize and max_bytes must
     * stay 0, else MP_EINVAL); otherwise the same queue. */
    bool simple;
} mp_queue_opts;

/* One message of a batch (mp_queue_put_many). */
typedef struct mp_queue_msg {
    const void *data; /* may be NULL only when len is 0 */
    size_t len;
} mp_queue_msg;

/* mp_queue_create — make a queue in the shared heap.
 *
 * out: receives the queue, valid in every process of the family until
 * mp_queue_destroy. opts: borrowed until return; NULL means defaults
 * (unbounded Queue). The calling process also gets a close-on-exec eventfd
 * for mp_wait, which children forked afterwards inherit.
 * Errors: MP_EINVAL (simple with a bound, a bound above
 * MP_QUEUE_MAX_MESSAGE), MP_ENOMEM, MP_ENOHEAPADDR, MP_EMFILE.
 */
MP_API int mp_queue_create(mp_queue **out, const mp_queue_opts *opts);

/* mp_queue_destroy — free the queue and its messages. Call it once, in one
 * process, when no process uses the queue any more. NULL is a no-op; so is
 * a queue that belongs to a local manager (mp_manager_queue). A Redis
 * manager's queue handle is released (the messages stay on the server). */
MP_API void mp_queue_destroy(mp_queue *q);

/* mp_queue_put — copy len bytes into the queue.
 *
 * data: borrowed until return; NULL only with len 0.
 * timeout: seconds to wait for room; 0 never blocks; MP_FOREVER.
 * Returns 0 once the message is in the queue. Errors (nothing changed):
 * MP_EFULL (no room before the timeout), MP_ECLOSED, MP_EMSGSIZE (longer
 * than max_bytes or MP_QUEUE_MAX_MESSAGE), MP_EINVAL (NULL q or data with
 * len > 0, foreign pointer, NaN timeout), MP_ENOMEM (shared heap exhausted).
 */
MP_API int mp_queue_put(mp_queue *q, const void *data, size_t len, double timeout);
/* mp_queue_put_nowait — mp_queue_put with timeout 0. */
MP_API int mp_queue_put_nowait(mp_queue *q, const void *data, size_t len);

/* mp_queue_get — take the next message into a buffer the library mallocs.
 *
 * data, len: receive the message (*data owned by the caller: free(); a
 * 0-byte message gives a non-NULL 1-byte allocation).
 * Returns 0. Errors (nothing taken): MP_EEMPTY (nothing before the
 * timeout), MP_ECLOSED (closed and drained), MP_EINVAL, MP_ENOMEM.
 */
MP_API int mp_queue_get(mp_queue *q, void **data, size_t *len, double timeout);
/* mp_queue_get_nowait — mp_queue_get with timeout 0. */
MP_API int mp_queue_get_nowait(mp_queue *q, void **data, size_t *len);

/* mp_queue_get_into — take the next message into the caller's buffer.
 *
 * buf: cap bytes, borrowed until return (NULL only with cap 0). len:
 * receives the message's size. Returns 0, or MP_EMSGSIZE when cap is too
 * small: *len then holds the size needed and the message stays first in
 * the queue. Other errors as mp_queue_get.
 */
MP_API int mp_queue_get_into(mp_queue *q, void *buf, size_t cap, size_t *len, double timeout);

/* mp_queue_put_many — put up to n messages with one lock round and at most
 * one wake-up. Waits (up to timeout) until the first fits, then puts, in
 * order, as many as fit without waiting.
 * Returns the number put (1..n; 0 when n is 0). Errors as mp_queue_put;
 * every message is checked before any is put, so an invalid one (MP_EINVAL,
 * MP_EMSGSIZE) changes nothing.
 */
MP_API int mp_queue_put_many(mp_queue *q, const mp_queue_msg *msgs, size_t n, double timeout);

/* mp_queue_get_many — get up to n messages with one lock round and at most
 * one wake-up, packed back to back into buf (cap bytes); lens[i] receives
 * the size of the i-th. Waits (up to timeout) for the first.
 * Returns the number got (1..n). MP_EMSGSIZE when the first message alone
 * does not fit (lens[0] = size needed, nothing taken); otherwise it stops
 * before the first message that does not fit. Other errors as mp_queue_get.
 */
MP_API int mp_queue_get_many(mp_queue *q, void *buf, size_t cap, size_t *lens, size_t n,
                             double timeout);

/* Zero copy, producer side.
 *
 * mp_queue_reserve — reserve room for a message of len bytes inside the
 * queue and return where to write it (*buf, 16-byte aligned, valid in this
 * process until commit or abort). The reservation counts against maxsize
 * and max_bytes and fixes the message's place in the order of its producer.
 * Errors as mp_queue_put.
 * mp_queue_commit — publish a reserved message (also after close: it was
 * admitted before). mp_queue_abort — drop it.
 * Both: MP_EINVAL (not a live reservation of this queue), MP_EPERM (reserved
 * by another process). If the process dies before commit, the reservation
 * is reclaimed (see the top of this file) and nothing is published.
 */
MP_API int mp_queue_reserve(mp_queue *q, size_t len, void **buf, double timeout);
MP_API int mp_queue_commit(mp_queue *q, void *buf);
MP_API int mp_queue_abort(mp_queue *q, void *buf);

/* Zero copy, consumer side.
 *
 * mp_queue_peek — take the next message in place: *data points into the
 * shared heap (read-only, valid until release), *len is its size. The
 * message is taken (no other consumer gets it, qsize no longer counts it)
 * but its bytes count against max_bytes until release. Errors as
 * mp_queue_get. mp_queue_release — give the space back: MP_EINVAL (not a
 * peeked message of this queue), MP_EPERM (peeked by another process).
 */
MP_API int mp_queue_peek(mp_queue *q, const void **data, size_t *len, double timeout);
MP_API int mp_queue_release(mp_queue *q, const void *data);

/* mp_queue_qsize — messages ready to get (a snapshot). *n receives it.
 * Returns 0 or MP_EINVAL. */
MP_API int mp_queue_qsize(mp_queue *q, size_t *n);
/* mp_queue_empty / mp_queue_full — 1 or 0 (a snapshot), or MP_EINVAL.
 * full: a put of 0 bytes would not fit now (an unbounded queue is never
 * full). */
MP_API int mp_queue_empty(mp_queue *q);
MP_API int mp_queue_full(mp_queue *q);

/* mp_queue_close — close the queue for every process: later puts return
 * MP_ECLOSED, gets return what is left then MP_ECLOSED, every waiter wakes.
 * Reserved messages may still be committed. Returns 0 (also when already
 * closed) or MP_EINVAL. (Python's close only stops the calling process from
 * putting; here the state is shared, like a closed pipe.) */
MP_API int mp_queue_close(mp_queue *q);

/* mp_queue_task_done — JoinableQueue.task_done: one got message is
 * finished. Returns 0, MP_ETOOMANYDONE (more calls than messages put, like
 * Python's ValueError; nothing changed), MP_EINVAL (not joinable). */
MP_API int mp_queue_task_done(mp_queue *q);

/* mp_queue_join — JoinableQueue.join: wait until every message put has been
 * marked done. Returns 0, MP_ETIMEDOUT, MP_EINVAL (not joinable). A message
 * lost with a killed consumer is never marked done: join then waits for its
 * timeout. */
MP_API int mp_queue_join(mp_queue *q, double timeout);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_QUEUE_H */
