/* The process pool's shared structures and the parts of the module shared
 * between pool/pool.c (life cycle, workers, progress in the parent),
 * pool/pool_worker.c (the worker's loop), pool/pool_jobs.c (the parent's side of the
 * ring: feeding, collecting, failing, waiting), pool/pool_async.c (the
 * submitting calls), pool/pool_result.c (mp_async and the iterators),
 * pool/pool_stream.c (streaming maps), pool/pool_fd.c (result fds),
 * pool/pool_fault.c and pool/pool_backtrace.c (what a crashed worker
 * leaves), pool/pool_xlate.c (pointers across spawn) and
 * pool/pool_threads.c (threads as workers). Not installed.
 *
 * The task ring lives in the shared heap. The parent writes tasks at the
 * tail; workers claim them at the head under a robust mutex (the claim is
 * the only critical section, so a worker dying inside it is repaired by
 * looking at one slot); a worker publishes a finished task by storing its
 * state with release order, without the lock. Each slot records which
 * worker runs it and how many of its items are done, which is all that
 * crash recovery and per-task timeouts need. Only the parent collects
 * slots and frees them, so it alone decides when a slot is reused. */
#ifndef MULTIPROC_POOL_INTERNAL_H
#define MULTIPROC_POOL_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "base/internal.h"
#include "multiproc/pool.h"
#include "pool/pool_backend.h"
#include "os/robust_mutex.h"
#include "os/symbol.h"

#define MP__POOL_RING      1024 /* slots; a power of two */
#define MP__POOL_INLINE    64   /* apply bytes carried inside the slot */
#define MP__POOL_MAXPROC   1024
#define MP__POOL_SLICE_NS  10000000 /* parent's longest futex sleep: death checks */
#define MP__POOL_ERRS_KEPT 16
#define MP__POOL_SPIN_NS   20000        /* spin for a result or a task before sleeping */
#define MP__POOL_MODS      64           /* modules the tasks of a spawn/forkserver pool may use */
#define MP__POOL_FORK_MODS 8            /* start modules a fork pool remembers as checked */
#define MP__POOL_WIN_CHUNK (512 * 1024) /* automatic chunks of a staged map: bytes per chunk */
#define MP__POOL_BT_FRAMES 32           /* frames of a crashed worker's backtrace */
#define MP__POOL_BT_TEXT   4096         /* bytes of its text, per worker */

/* The body of a spin-wait loop. */
#if defined(__x86_64__) || defined(__i386__)
#define MP__CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define MP__CPU_RELAX() __asm__ __volatile__("yield")
#else
#define MP__CPU_RELAX() ((void)0)
#endif

/* The i-th round of a spin-wait: a pause at first, then sched_yield(), so
 * that on a busy machine the spinner gives its CPU to whoever it waits
 * for instead of burning the time slice. */
static inline void mp__spin_pause(int i)
{
    if (i < 256)
        MP__CPU_RELAX();
    else
        sched_yield();
}

typedef enum mp__slot_state {
    MP__SLOT_FREE = 0,
    MP__SLOT_QUEUED,
    MP__SLOT_RUNNING,
    MP__SLOT_DONE,
} mp__slot_state;

enum {
    MP__QUIT_NO = 0,
    MP__QUIT_WHEN_EMPTY = 1, /* join: after the last queued task */
    MP__QUIT_NOW = 2,        /* terminate: queued tasks are not started */
};

/* mp__pslot.failed of a slot cancelled before a worker claimed it: the
 * parent writes it under the ring's lock while the slot is queued, the
 * worker that claims it publishes it without running it. */
#define MP__SLOT_SKIP 4

typedef enum mp__job_kind {
    MP__JOB_APPLY = 1,
    MP__JOB_MAP,
    MP__JOB_FOR,
    MP__JOB_STREAM, /* mp_pool_imap_stream: pool/pool_stream.c */
} mp__job_kind;

/* What the workers read about a map or a parallel-for (in the heap). */
typedef struct mp__pjob {
    int kind;
    mp_task_fn fn;
    mp_for_fn ffn;
    void *ctx;
    const char *in; /* item i at in + i * in_size */
    size_t in_size;
    char *out; /* item i at out + i * out_size; NULL: results dropped */
    size_t out_size;
    size_t out_cap; /* stream: a result's room (in_size and out_size are the
                       strides of its records: pool/pool_stream.c) */
    size_t acc_size;
    int64_t begin; /* for: a slot's first and count are offsets from it */
    _Alignas(16) unsigned char acc_init[MP_POOL_ACC_MAX];
} mp__pjob;

typedef struct mp__pslot {
    _Atomic uint32_t state;
    uint32_t worker;               /* index of the worker running it */
    uint32_t failed;               /* 1: item first + progress failed with fail_code;
                                      2: none could run, fail_code is the library's reason;
                                      3: item first + progress failed with the library's
                                         reason fail_code (its result did not fit);
                                      MP__SLOT_SKIP: cancelled while queued, not run */
    int32_t fail_code;             /* the task's own code (failed 1), the reason (2, 3) */
    int32_t buf;                   /* map: the staging buffer it holds, -1: none (parent's) */
    mp__pjob *job;                 /* map and for */
    uint64_t first;                /* first item (for: first index - job's begin) */
    uint64_t count;                /* items (for: indexes) */
    _Atomic uint64_t progress;     /* items finished, written by the worker */
    _Atomic int64_t item_start_ns; /* when the current item began (timeouts) */
    /* apply; in and out also for maps: the first item's input and
     * output (out NULL: results dropped) */
    mp_task_fn fn;
    void *ctx;
    void *in;
    size_t in_len;
    void *out;
    size_t out_cap;
    size_t out_len;
    void *owner; /* the parent's mp_async; only the parent reads it */
    _Alignas(16) unsigned char inbuf[MP__POOL_INLINE];
    _Alignas(16) unsigned char outbuf[MP__POOL_INLINE]; /* also a for chunk's partial */
    char msg[MP_TASK_MESSAGE_MAX]; /* failed 1: the task's mp_task_fail message */
} mp__pslot;

/* A module that the function and ctx pointers of a spawn or forkserver
 * pool point into, as the parent sees it. The ring carries the parent's
 * raw pointers; a worker finds a pointer's module by its range here and
 * adds the difference of the two load bases, which it computes once per
 * module. Entries are appended by the parent and never change. */
typedef struct mp__pmod {
    uintptr_t base, lo, hi; /* in the parent */
    mp__symref ref;         /* the module's base (offset 0), path and build-id */
} mp__pmod;

/* A worker's translations (spawn and forkserver), in the worker. */
typedef struct mp__wxlate {
    const struct mp__pshm *shm;
    uintptr_t fn_from, fn_to; /* the last function translated */
    bool known[MP__POOL_MODS];
    int rc[MP__POOL_MODS]; /* 0: delta is valid, else why the module is unusable */
    uintptr_t delta[MP__POOL_MODS];
} mp__wxlate;

struct mp__pshm;

/* One per worker index: what the worker needs to find the pool. */
typedef struct mp__pwrec {
    struct mp__pshm *shm;
    uint32_t index;
    _Atomic uint32_t exited; /* thread workers: left the loop */
    _Atomic uint32_t ready;  /* the worker got past its initializer */
    /* Written by a process worker's SIGSEGV/SIGBUS handler just before it
     * dies (see pool/pool_fault.c), reset by the parent before each start. */
    _Atomic uint32_t fault_sig;
    _Atomic uintptr_t fault_addr;
    /* The same handler's backtrace (pool/pool_backtrace.c): bt_len bytes of
     * text at the worker's place in mp__pshm.bt_text, valid once bt_sig
     * (stored last, release) names the signal; reset with fault_sig. */
    _Atomic uint32_t bt_sig;
    uint32_t bt_len;
} mp__pwrec;

typedef struct mp__pshm {
    mp__robust_mutex mu;       /* guards head and the claim of a slot */
    _Atomic uint64_t head;     /* next ticket to claim */
    _Atomic uint64_t tail;     /* next ticket the parent writes */
    _Atomic uint32_t work_seq; /* futex: bumped when tasks are added */
    _Atomic uint32_t work_waiters;
    _Atomic uint32_t done_seq; /* futex: bumped when a task finishes */
    _Atomic uint32_t parent_waiting;
    _Atomic uint32_t spinner;   /* 1 while an idle worker spins for a task */
    _Atomic uint32_t quit;      /* workers exit when the ring is empty */
    _Atomic uint32_t ready_seq; /* bumped by each worker that gets past its initializer */
    /* Result fds (pool/pool_fd.c): while notify is set, a worker that
     * publishes a slot writes the eventfd wake_fd (the same number in every
     * worker) unless wake_pending says a write is already unread. */
    _Atomic uint32_t notify;
    _Atomic uint32_t wake_pending;
    int32_t wake_fd;    /* -1: none */
    int64_t timeout_ns; /* per-item timeout, 0: none */
    unsigned long maxtasks;
    mp_init_fn initializer;
    void *initarg;
    uint32_t xlate;         /* 1: workers are fresh images; pointers need translation */
    _Atomic uint32_t nmods; /* entries of mods (written before, release) */
    mp__pmod *mods;         /* MP__POOL_MODS entries, in the heap; NULL with fork */
    char *bt_text;          /* MP__POOL_BT_TEXT bytes per worker, in the heap; NULL: none */
    mp__pwrec wrec[MP__POOL_MAXPROC];
    mp__pslot ring[MP__POOL_RING];
} mp__pshm;

/* What happened to a slot, from the parent's point of view. */
typedef struct mp__outcome {
    int lost_code; /* 0, MP_EWORKERLOST or MP_ETASKFAILED (timed out) */
    pid_t pid;
    int sig;
    char msg[MP_TASK_MESSAGE_MAX]; /* the loss in words */
} mp__outcome;

/* A range of items still to hand out (first submission or retry). */
typedef struct mp__range {
    uint64_t first, count;
} mp__range;

typedef struct mp__block {
    void *p;
    size_t size;
} mp__block;

struct mp_async {
    mp__pool_head head; /* first: a local one's backend is NULL */
    mp_pool *pool;
    mp__job_kind kind;
    bool done;
    bool detached;                        /* destroyed by the user before completion */
    bool cancelled;                       /* mp_async_cancel: ready for the user, results dropped */
    int rc;                               /* first failure's code, once done */
    struct mp_async *next, *prev;         /* the pool's unfinished jobs */
    struct mp_async *all_next, *all_prev; /* every live mp_async of the pool */

    /* Callbacks. */
    mp_async_cb cb, err_cb;
    void *user;

    /* Failures. */
    mp_task_error *errs;
    size_t errs_cap, nerr;
    size_t *n_errors_out;
    mp_task_error local_errs[MP__POOL_ERRS_KEPT];
    struct mp__pool_bt *bts; /* backtraces of kept failures (pool/pool_backtrace.c) */
    size_t nbts;

    /* apply: the task, its input (inline or staged), its result */
    mp_task_fn fn;
    void *ctx;
    size_t in_len, out_cap;
    unsigned char inl[MP__POOL_INLINE];
    void *res;
    size_t res_len;

    /* map / for */
    mp__pjob *job;
    uint64_t n, chunk, next_item, items_done, inflight;
    mp__range *retry;
    size_t nretry, retry_cap;
    const char *user_in;     /* ordinary input array, staged through the window */
    char *user_out;          /* ordinary output array, staged through the window */
    char *in_copy;           /* private copy of user_in once detached (user_in points to it) */
    mp__block st_in, st_out; /* apply's staging, imap's results (NULL p: none) */
    mp__block win;           /* map: the staging window (NULL p: none) */
    size_t win_in, win_buf;  /* bytes of a buffer's input part, of a whole buffer */
    uint32_t *win_stack;     /* indexes of the free buffers, the last freed on top */
    uint32_t win_nfree;
    int64_t begin; /* for: first index */
    void *result;  /* for: total */
    mp_reduce_fn reduce;
    void *rctx;

    /* imap */
    mp_imap *it;
    struct mp__stream *stream; /* mp_pool_imap_stream (pool/pool_stream.c) */

    /* Result fd (pool/pool_fd.c): fd, an epoll set owned by the handle
     * (-1: none asked for yet), holds ready_fd, an eventfd readable while
     * the handle is ready (ready_on), and, while the job is unfinished
     * (watching), the pool's own epoll set. */
    int fd, ready_fd;
    bool ready_on, watching;
};

struct mp_imap {
    mp__pool_head head; /* first: a local one's backend is NULL */
    mp_async *a;
    bool ordered;
    size_t out_size;
    uint64_t next;         /* ordered: next item to give */
    unsigned char *status; /* ordered: per item 0 pending, 1 ok, 2 failed */
    mp_task_error *fails;  /* every failure, in order of arrival */
    size_t nfails, fails_cap, fails_given;
    mp__range *fifo; /* unordered: finished ranges of good items */
    size_t fifo_head, fifo_len, fifo_cap;
    uint64_t given;
};

struct mp_pool {
    mp__pool_head head; /* first: a local one's backend is NULL */
    mp__pshm *shm;
    pid_t owner;
    int nproc;
    mp_process **workers;
    pthread_t *threads; /* threads option */
    bool *thread_live;
    unsigned char *tkill; /* per worker: killed for an overdue task */
    uint32_t seen_seq;    /* done_seq when the ring was last scanned */
    mp_pool_opts opts;
    bool closed, terminated, joined;
    /* Broken (see mp_pool_broken_reason): too many workers in a row died
     * before getting past their initializer, while nothing else went on. */
    bool broken;
    mp_pool_broken_info broken_info;
    unsigned streak;      /* such deaths in a row */
    uint64_t streak_mark; /* ready_seq + items_done at the last one */
    uint64_t low;         /* lowest ticket not collected */
    uint64_t tail;        /* parent's copy of shm->tail */
    int64_t last_check_ns;
    mp_async *jobs; /* unfinished jobs, oldest first */
    mp_async *jobs_last;
    mp_async *all; /* every live mp_async (unfinished, or held by the user) */
    size_t njobs;
    mp__block cache[4];   /* staging blocks kept for the next map */
    mp__pool_meter meter; /* progress of the items of every job */
    /* Result fds (pool/pool_fd.c): the workers' eventfd (-1: its creation
     * failed with wake_err), and, once a result fd was asked for, an epoll
     * set over it, the workers' sentinels and, with a per-task timeout, a
     * timerfd (tfd); nwatch counts the unfinished jobs with an fd. */
    int wake_fd, wake_err, efd, tfd;
    size_t nwatch;
    int64_t started_ns;
    /* process pools: modules loaded when the pool started, and the last
     * function pointer found in a usable module; fork pools also keep the
     * extents of the start modules their functions were found in */
    uintptr_t *start_bases;
    size_t nstart;
    uintptr_t last_fn;
    uintptr_t fork_lo[MP__POOL_FORK_MODS], fork_hi[MP__POOL_FORK_MODS];
    size_t nfork;
    /* The backtrace of the worker being reported lost, until a failure of
     * that loss takes it (pool/pool_backtrace.c); NULL: none. */
    char *bt_pending;
};

/* pool/pool_worker.c */
int mp__pool_worker_main(mp_process *self, void *user);
void mp__pool_repair(mp__pshm *shm);

/* pool/pool_fault.c */
/* In a process worker: record a fault's address and a backtrace in w
 * before dying of it. */
void mp__pool_fault_arm(mp__pwrec *w);
/* In the parent: the words for a worker's death into e->message. */
void mp__pool_describe_loss(const mp_pool *p, uint32_t worker, mp_task_error *e);
/* The words for a failed item, for mp_error_detail(). */
int mp__pool_detail(const mp_task_error *e);

/* pool/pool_backtrace.c */
/* In the parent: the backtrace text of every process worker (best effort:
 * without it, the pool works and records none). */
void mp__pool_bt_init(mp_pool *p);
void mp__pool_bt_fini(mp_pool *p);
/* In a process worker, at its start: arm the capture (which must not load
 * anything when it runs), and warm the unwinder up. */
void mp__pool_bt_arm(mp__pwrec *w);
/* In a worker, before it calls a task: frame is an address in the frame of
 * the function that makes the call; frames older than it are left out. */
void mp__pool_bt_mark(const void *frame);
/* In the fault handler of an armed worker: record the backtrace of the
 * interrupted code (uc: the handler's context) into its record. */
void mp__pool_bt_capture(int sig, const void *uc);
/* In the parent, when worker (pid, killed by sig) is reported lost: keep
 * its backtrace, if it recorded one for sig, for the failure the loss
 * makes; mp__pool_bt_drop after the loss was reported. */
void mp__pool_bt_take(mp_pool *p, uint32_t worker, pid_t pid, int sig);
void mp__pool_bt_drop(mp_pool *p);
/* After a failure was recorded in a: it takes the pending backtrace if it
 * is a lost worker's and one of the failures a keeps. */
void mp__pool_bt_attach(mp_async *a, const mp_task_error *e);
/* Frees a's backtraces. */
void mp__pool_bt_free(mp_async *a);

/* pool/pool_xlate.c */
int mp__pool_xlate_init(mp_pool *p);
void mp__pool_xlate_fini(mp_pool *p);
/* Whether the workers of p can use ptr (code: a function); call and arg
 * name it in the error detail, e.g. "mp_pool_map" and "spec->ctx". */
int mp__pool_xlate_check(mp_pool *p, const void *ptr, bool code, const char *call, const char *arg);
/* Fork pools: remember the modules loaded at start (0 or MP_ENOMEM), and
 * refuse a task function in a module loaded after (MP_ENOTLOADED). */
int mp__pool_fork_init(mp_pool *p);
int mp__pool_fork_check(mp_pool *p, const void *fn, const char *call, const char *arg);
int mp__pool_xlate(mp__wxlate *x, const void *from, bool code, void **to);

/* pool/pool_threads.c */
int mp__pool_thread_spawn(mp_pool *p, int index);
void mp__pool_thread_reap(mp_pool *p);
int mp__pool_thread_stop(mp_pool *p, uint32_t how, const mp__deadline *d);

/* pool/pool.c */
int mp__pool_spawn(mp_pool *p, int index);
int mp__pool_check_workers(mp_pool *p, bool force);
void mp__pool_progress(mp_pool *p, bool final);
int mp__pool_check_use(const mp_pool *p);

/* pool/pool_jobs.c */
int mp__pool_pump(mp_pool *p, bool force_check);
int mp__pool_wait_event(mp_pool *p, const mp__deadline *d);
void mp__pool_lost(mp_pool *p, uint32_t worker, pid_t pid, int sig, bool timed_out);
int mp__pool_submit_apply(mp_pool *p, mp_async *a, mp_task_fn fn, void *ctx, const void *in,
                          size_t in_len, size_t out_cap);
void mp__pool_add_job(mp_pool *p, mp_async *a);
void mp__pool_finish(mp_pool *p, mp_async *a);
void mp__pool_fail_all(mp_pool *p, int code);
/* mp_async_cancel of an unfinished job of p (see pool/pool_jobs.c). */
void mp__pool_cancel(mp_pool *p, mp_async *a);
void mp__pool_fail_broken(mp_pool *p);
int mp__pool_block_get(mp_pool *p, mp__block *b, size_t size);
void mp__pool_block_put(mp_pool *p, mp__block *b);
void mp__pool_record_error(mp_async *a, const mp_task_error *e);
/* The failure of item index of slot s (o: how the slot ended). */
void mp__pool_item_error(const mp__pslot *s, uint64_t index, const mp__outcome *o,
                         mp_task_error *e);
/* A slot's items that come back unfinished run again: [first, first + count). */
void mp__pool_retry(mp_async *a, uint64_t first, uint64_t count);
void mp__pool_prefault(void *p, size_t len);

/* pool/pool_fd.c */
/* The workers' eventfd, made at the pool's creation (a failure is kept
 * for mp_async_fd: the pool works without it). */
void mp__pool_fd_init(mp_pool *p);
void mp__pool_fd_fini(mp_pool *p);
/* A worker was started or is about to be destroyed: its sentinel joins or
 * leaves the pool's epoll set. */
void mp__pool_fd_worker(mp_pool *p, int index, bool add);
/* In the pump, while fds are watched: consumes the wake-ups; true when a
 * worker's sentinel is readable (its death must be looked at now). */
bool mp__pool_fd_drain(mp_pool *p);
/* The job ended (it is ready): its fd turns readable for good. */
void mp__async_fd_done(mp_async *a);
/* An iterator's state changed: its fd is readable iff an item can be taken. */
void mp__imap_fd_update(mp_imap *it);
/* Closes the fds of a handle being freed or detached. */
void mp__async_fd_close(mp_async *a);
/* Whether mp_imap_next would not block now (an item, a failure, the end). */
bool mp__imap_has_next(const mp_imap *it);

/* pool/pool_async.c */
mp_async *mp__async_new(void);
/* Whether p takes new tasks: 0, or why not (MP_EPERM, MP_EBROKENPOOL, MP_ECLOSED). */
int mp__pool_check_submit(mp_pool *p);
/* Whether the workers can call fn with ctx (spec: the names are spec->fn, spec->ctx). */
int mp__pool_check_ptrs(mp_pool *p, const void *fn, const void *ctx, const char *call, bool spec);
int mp__pool_map_start(mp_pool *p, const mp_map_spec *s, bool force_out, mp_async **out);
void mp__async_free(mp_async *a);
/* A map's caller is gone (destroyed before completion): stop reading its
 * input array. May finish (and free) a. */
void mp__async_own_input(mp_async *a);
void mp__imap_on_items(mp_imap *it, uint64_t first, uint64_t count);
void mp__imap_on_error(mp_imap *it, const mp_task_error *e);

/* pool/pool_stream.c: streaming maps. A stream's items are read by the
 * parent, in feed, into buffers of a window in the heap (fill); a slot
 * that comes back marks its items (done); the iterator takes them (take)
 * and a buffer whose items are all finished and taken is filled again. */
typedef struct mp__stream mp__stream;
/* Whether the job may hand out a new chunk now (a free buffer, input left). */
bool mp__stream_has_work(const mp_async *a);
/* Fills the slot with a chunk of new items; false: none (the source
 * ended, failed or has none yet). May end the stream. */
bool mp__stream_fill(mp_async *a, mp__pslot *s);
/* Places a retried range [first, first + count) in the slot. */
void mp__stream_place(mp_async *a, mp__pslot *s, uint64_t first, uint64_t count);
/* A pump is over: the source is asked again at the next one. */
void mp__stream_pumped(mp_async *a);
void mp__stream_done(mp_pool *p, mp_async *a, const mp__pslot *s, const mp__outcome *o);
/* The iterator is gone: read no more, drop results as they come. */
void mp__stream_detach(mp_async *a);
void mp__stream_free(mp_async *a);
/* For the iterator (pool/pool_result.c): 0 with a result, an item's
 * failure, MP_EAGAIN (nothing yet), the source's code, MP_EEOF. */
int mp__stream_take(mp_imap *it, void *buf, size_t cap, size_t *len, size_t *index,
                    mp_task_error *err);
bool mp__stream_has_next(const mp_imap *it);

#endif /* MULTIPROC_POOL_INTERNAL_H */
