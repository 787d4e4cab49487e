/* The execution step of the distributed pool's worker: a batch of parsed
 * tasks into result records, either in the calling thread or over
 * executor processes (a local fork pool of the supervisor). Protocol and
 * crash isolation: "Supervisor and executors" in docs/redis.md. Not
 * installed. */
#ifndef MULTIPROC_REDIS_POOL_EXEC_H
#define MULTIPROC_REDIS_POOL_EXEC_H

#include "redis/redis_pool.h"

/* One task of a batch: the parsed task and its resolved function in; its
 * result record out (malloc'd, rec_len bytes), or rec NULL when none could
 * be made (the caller answers MP_ENOMEM). done: the record is final. */
typedef struct mp__redis_job {
    const mp__redis_task *t;
    mp_task_fn fn;
    mp_for_fn ffn; /* a parallel-for chunk (t->is_for): fn is NULL */
    unsigned char *rec;
    size_t rec_len;
    bool done;
    /* hb (NULL: none) and the task's entry index in the batch: a task
     * that mp__redis_beat_dropped says is dropped is stopped. The inline
     * executor does not start it (done, no record); with executors its
     * items not started never run (MP_ECANCELED) and an executor running
     * one is killed (MP_EWORKERLOST): the worker only acknowledges it. */
    mp__redis_beat *hb;
    size_t entry;
} mp__redis_job;

typedef struct mp__redis_exec mp__redis_exec;

/* executors: MP_WORKER_INLINE (tasks run in the calling thread), 0 (one
 * executor per CPU) or a count. ctx: every task's ctx. Starts the
 * executors. 0, MP_EINVAL, MP_ENOMEM, or what mp_pool_create returns. */
int mp__redis_exec_open(mp__redis_exec **out, int executors, void *ctx);
/* The tasks the executors run at once (1 inline). */
unsigned mp__redis_exec_width(const mp__redis_exec *x);
/* Stops and reaps every executor. NULL: no-op. */
void mp__redis_exec_close(mp__redis_exec *x);

/* Called while a batch runs, every period seconds, when jobs are done
 * since the last call (their records may be taken and answered). */
typedef int (*mp__redis_exec_ready)(void *arg);

/* Runs every job of the batch into its record (a task whose executor died
 * has its items failed with MP_EWORKERLOST, its pid and signal; the other
 * tasks complete). period: seconds between calls of ready (0: none). 0,
 * or the first error ready returned (the batch still completes). */
int mp__redis_exec_run(mp__redis_exec *x, mp__redis_job *jobs, size_t n, double period,
                       mp__redis_exec_ready ready, void *arg);

#endif /* MULTIPROC_REDIS_POOL_EXEC_H */
