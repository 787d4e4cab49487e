/* The operation table of the remote queue (base/internal.h, "remote
 * handles"). Not installed.
 *
 * Each slot has the contract of the public function of the same name
 * (multiproc/queue.h) on a remote handle; put_nowait and get_nowait go
 * through put and get. An empty slot makes the public function
 * MP_ENOSYS; destroy must be filled. */
#ifndef MULTIPROC_QUEUE_REMOTE_H
#define MULTIPROC_QUEUE_REMOTE_H

#include "heap/heap_object.h"
#include "base/internal.h"
#include "multiproc/queue.h"

#define MP__OPS_QUEUE 0x6f51706du /* "mpQo": the table's kind */

typedef struct mp__queue_ops {
    uint32_t kind; /* MP__OPS_QUEUE */
    void (*destroy)(mp_queue *q);
    int (*put)(mp_queue *q, const void *data, size_t len, double timeout);
    int (*put_many)(mp_queue *q, const mp_queue_msg *msgs, size_t n, double timeout);
    int (*get)(mp_queue *q, void **data, size_t *len, double timeout);
    int (*get_into)(mp_queue *q, void *buf, size_t cap, size_t *len, double timeout);
    int (*get_many)(mp_queue *q, void *buf, size_t cap, size_t *lens, size_t n, double timeout);
    int (*reserve)(mp_queue *q, size_t len, void **buf, double timeout);
    int (*commit)(mp_queue *q, void *buf);
    int (*abort)(mp_queue *q, void *buf);
    int (*peek)(mp_queue *q, const void **data, size_t *len, double timeout);
    int (*release)(mp_queue *q, const void *data);
    int (*qsize)(mp_queue *q, size_t *n);
    int (*empty)(mp_queue *q);
    int (*full)(mp_queue *q);
    int (*close)(mp_queue *q);
    int (*task_done)(mp_queue *q);
    int (*join)(mp_queue *q, double timeout);
    /* mp_wait on the queue. wait_begin answers 1 when a get would not
     * block now (a message, or closed), else 0 and, when block, *fd: a
     * descriptor that turns readable when the backend has an answer (the
     * state of that wait kept in *w, NULL at first, across rounds: a call
     * with a wait under way only gives its fd again). wait_finish, once
     * *fd is readable, takes the answer: 1 (ready), 0 (not yet: begin
     * again) or an error. wait_end frees what *w holds, whatever came of
     * it. */
    int (*wait_begin)(mp_queue *q, void **w, bool block, int *fd);
    int (*wait_finish)(mp_queue *q, void **w);
    void (*wait_end)(mp_queue *q, void **w);
} mp__queue_ops;

static inline const mp__queue_ops *mp__queue_remote(const mp_queue *q)
{
    return (const mp__queue_ops *)mp__remote_ops(q, MP__OPS_QUEUE);
}

#endif /* MULTIPROC_QUEUE_REMOTE_H */
