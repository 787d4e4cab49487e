/* The worker's side of the pool: claim a task, run it (after translating
 * the parent's pointers when the worker is a fresh image: spawn,
 * forkserver), publish it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "os/futex.h"
#include "pool/pool_internal.h"

/* The running task's mp_task_fail message. Per thread, so that thread
 * workers keep theirs apart; only a failing task writes it. */
static _Thread_local char task_msg[MP_TASK_MESSAGE_MAX];

int mp_task_fail(int code, const char *fmt, ...)
{
    task_msg[0] = '\0'; /* a NULL fmt: no message */
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(task_msg, sizeof task_msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void mp__task_msg_take(char *dst, size_t cap)
{
    mp__strlcpy(dst, task_msg, cap);
    task_msg[0] = '\0';
}

void mp__task_msg_drop(void)
{
    if (task_msg[0]) /* a load, not a store, per task that succeeds */
        task_msg[0] = '\0';
}

/* A task failed with rc: the slot's failure and the task's message. */
static void task_failed(mp__pslot *s, int rc)
{
    s->fail_code = rc;
    s->failed = 1;
    mp__task_msg_take(s->msg, sizeof s->msg);
}

void mp__pool_repair(mp__pshm *shm)
{
    /* The claim writes the slot's worker and state before it advances the
     * head, so a holder that died inside it left at most one slot marked
     * running at the head: that task was never taken, queue it again. */
    uint64_t h = atomic_load(&shm->head);
    if (h < atomic_load(&shm->tail)) {
        mp__pslot *s = &shm->ring[h % MP__POOL_RING];
        if (atomic_load(&s->state) == MP__SLOT_RUNNING)
            atomic_store(&s->state, MP__SLOT_QUEUED);
    }
    mp__robust_mutex_consistent(&shm->mu);
}

static mp__pslot *claim(mp__pshm *shm, uint32_t self)
{
    mp__pslot *s = NULL;
    int rc = mp__robust_mutex_lock(&shm->mu, NULL);
    if (rc == MP_EOWNERDEAD)
        mp__pool_repair(shm);
    else if (rc < 0)
        _exit(70); /* the pool's lock is unusable: nothing sane to do */
    uint64_t h = atomic_load_explicit(&shm->head, memory_order_relaxed);
    if (h < atomic_load_explicit(&shm->tail, memory_order_acquire)) {
        s = &shm->ring[h % MP__POOL_RING];
        s->worker = self;
        atomic_store_explicit(&s->progress, 0, memory_order_relaxed);
        atomic_store_explicit(&s->state, MP__SLOT_RUNNING, memory_order_relaxed);
        atomic_store_explicit(&shm->head, h + 1, memory_order_release);
    }
    mp__robust_mutex_unlock(&shm->mu);
    return s;
}

static void mark_start(const mp__pshm *shm, mp__pslot *s)
{
    if (shm->timeout_ns > 0)
        atomic_store_explicit(&s->item_start_ns, mp__now_ns(), memory_order_relaxed);
}

/* What a task calls: the pointers of the ring, translated for this image
 * when the workers are fresh images. */
typedef struct task_call {
    mp_task_fn fn;
    mp_for_fn ffn;
    void *ctx;
} task_call;

static void run_map(const mp__pshm *shm, mp__pslot *s, const task_call *c)
{
    const mp__pjob *j = s->job;
    const char *in = s->in; /* the chunk's first item, in place or staged */
    char *res = s->out;
    unsigned char scratch[256];
    void *tmp = NULL;
    mp__pool_bt_mark(scratch); /* a crash's backtrace ends at this frame */
    if (!res && j->out_size > sizeof scratch)
        tmp = malloc(j->out_size);
    for (uint64_t k = 0; k < s->count; k++) {
        mark_start(shm, s);
        void *out = res ? res + k * j->out_size : (tmp ? tmp : scratch);
        size_t out_len = j->out_size;
        int rc = c->fn(in + k * j->in_size, j->in_size, out, j->out_size, &out_len, c->ctx);
        if (rc != 0) {
            task_failed(s, rc);
            break;
        }
        mp__task_msg_drop();
        if (out_len > j->out_size) { /* a result that does not fit is not delivered */
            s->fail_code = MP_EMSGSIZE;
            s->failed = 3;
            break;
        }
        atomic_store_explicit(&s->progress, k + 1, memory_order_release);
    }
    free(tmp);
}

/* A stream's chunk: item k's record at in + k * in_size is its length
 * (8 bytes, 16 with the padding) and its bytes; result k's record at
 * out + k * out_size is the length the task set and its bytes
 * (pool/pool_stream.c). out NULL: results are not kept. */
static void run_stream(const mp__pshm *shm, mp__pslot *s, const task_call *c)
{
    const mp__pjob *j = s->job;
    const char *in = s->in;
    char *res = s->out;
    unsigned char scratch[16];
    mp__pool_bt_mark(scratch); /* a crash's backtrace ends at this frame */
    for (uint64_t k = 0; k < s->count; k++) {
        mark_start(shm, s);
        const char *rec = in + k * j->in_size;
        uint64_t len;
        memcpy(&len, rec, sizeof len);
        char *out = res ? res + k * j->out_size : NULL;
        size_t cap = out ? j->out_cap : 0;
        size_t out_len = cap;
        void *dst = out ? (void *)(out + 16) : (void *)scratch;
        int rc = c->fn(rec + 16, (size_t)len, dst, cap, &out_len, c->ctx);
        if (rc != 0) {
            task_failed(s, rc);
            break;
        }
        mp__task_msg_drop();
        if (out_len > cap) {
            s->fail_code = MP_EMSGSIZE;
            s->failed = 3;
            break;
        }
        if (out) {
            uint64_t ol = out_len;
            memcpy(out, &ol, sizeof ol);
        }
        atomic_store_explicit(&s->progress, k + 1, memory_order_release);
    }
}

static void run_for(const mp__pshm *shm, mp__pslot *s, const task_call *c)
{
    const mp__pjob *j = s->job;
    char frame;
    mp__pool_bt_mark(&frame); /* a crash's backtrace ends at this frame */
    memcpy(s->outbuf, j->acc_init, j->acc_size);
    mark_start(shm, s);
    /* The span fits in int64_t (mp_pool_for checks it), so neither bound
     * overflows: both lie in [begin, end]. */
    int64_t b = j->begin + (int64_t)s->first, e = b + (int64_t)s->count;
    int rc = c->ffn(b, e, s->outbuf, c->ctx);
    if (rc != 0) {
        task_failed(s, rc);
    } else {
        mp__task_msg_drop();
        atomic_store_explicit(&s->progress, s->count, memory_order_release);
    }
}

static void run_apply(const mp__pshm *shm, mp__pslot *s, const task_call *c)
{
    mark_start(shm, s);
    size_t len = s->out_cap;
    mp__pool_bt_mark(&len); /* a crash's backtrace ends at this frame */
    int rc = c->fn(s->in, s->in_len, s->out, s->out_cap, &len, c->ctx);
    s->out_len = len;
    if (rc != 0) {
        task_failed(s, rc);
    } else {
        mp__task_msg_drop();
        atomic_store_explicit(&s->progress, 1, memory_order_release);
    }
}

static void publish(mp__pshm *shm, mp__pslot *s)
{
    atomic_store_explicit(&s->state, MP__SLOT_DONE, memory_order_release);
    atomic_fetch_add(&shm->done_seq, 1);
    if (atomic_load(&shm->parent_waiting))
        mp__futex_wake(&shm->done_seq, 1);
    /* Sequentially consistent against the parent's store of notify and its
     * read of done_seq: either it pumps after this slot is done, or this
     * worker sees that it must signal (pool/pool_fd.c). */
    if (atomic_load(&shm->notify) && !atomic_exchange(&shm->wake_pending, 1)) {
        uint64_t one = 1;
        (void)!write(shm->wake_fd, &one, sizeof one);
    }
}

/* Spins a few microseconds for a task: a parent that submits one task at a
 * time (apply, then get) sends the next one that soon, and a worker found
 * awake costs it no futex wake-up. */
static bool spin_for_task(mp__pshm *shm)
{
    /* One spinner at a time: more would only take CPU from the workers
     * that have tasks and from the parent. */
    uint32_t no = 0;
    if (!atomic_compare_exchange_strong(&shm->spinner, &no, 1))
        return false;
    bool found = false;
    int64_t until = mp__now_ns() + MP__POOL_SPIN_NS;
    for (int i = 1;; i++) {
        if (atomic_load_explicit(&shm->head, memory_order_relaxed) <
                atomic_load_explicit(&shm->tail, memory_order_relaxed) ||
            atomic_load_explicit(&shm->quit, memory_order_relaxed)) {
            found = true;
            break;
        }
        if (i % 32 == 0 && mp__now_ns() > until)
            break;
        mp__spin_pause(i);
    }
    atomic_store(&shm->spinner, 0);
    return found;
}

/* Sleeps until tasks may be there or the pool quits. */
static void idle(mp__pshm *shm)
{
    if (spin_for_task(shm))
        return;
    atomic_fetch_add(&shm->work_waiters, 1);
    uint32_t seq = atomic_load(&shm->work_seq);
    if (atomic_load(&shm->head) >= atomic_load(&shm->tail) && !atomic_load(&shm->quit)) {
        mp__deadline none = {-1};
        mp__futex_wait(&shm->work_seq, seq, &none);
    }
    atomic_fetch_sub(&shm->work_waiters, 1);
}

/* The parent's pointers of a task made usable here (spawn, forkserver). */
static int translate(mp__wxlate *x, task_call *c)
{
    void *fn = NULL, *ffn = NULL;
    int rc = mp__pool_xlate(x, (const void *)(uintptr_t)c->fn, true, &fn);
    if (rc == 0)
        rc = mp__pool_xlate(x, (const void *)(uintptr_t)c->ffn, true, &ffn);
    if (rc == 0)
        rc = mp__pool_xlate(x, c->ctx, false, &c->ctx);
    c->fn = (mp_task_fn)(uintptr_t)fn;
    c->ffn = (mp_for_fn)(uintptr_t)ffn;
    return rc;
}

/* Runs the initializer; returns why it could not (spawn, forkserver). */
static int initialize(const mp__pshm *shm, mp__wxlate *x)
{
    if (!shm->initializer)
        return 0;
    if (!shm->xlate) {
        shm->initializer(shm->initarg);
        return 0;
    }
    void *fn = NULL, *arg = NULL;
    int rc = mp__pool_xlate(x, (const void *)(uintptr_t)shm->initializer, true, &fn);
    if (rc == 0)
        rc = mp__pool_xlate(x, shm->initarg, false, &arg);
    if (rc == 0)
        ((mp_init_fn)(uintptr_t)fn)(arg);
    return rc;
}

static void run_task(const mp__pshm *shm, mp__pslot *s, mp__wxlate *x, int init_rc)
{
    const mp__pjob *j = s->job;
    task_call c = {j ? j->fn : s->fn, j ? j->ffn : NULL, j ? j->ctx : s->ctx};
    int rc = shm->xlate ? (init_rc < 0 ? init_rc : translate(x, &c)) : 0;
    if (rc < 0) {
        /* Nothing of it can run here: the parent fails all its items. */
        s->fail_code = rc;
        s->failed = 2;
    } else if (j == NULL) {
        run_apply(shm, s, &c);
    } else if (j->kind == MP__JOB_FOR) {
        run_for(shm, s, &c);
    } else if (j->kind == MP__JOB_STREAM) {
        run_stream(shm, s, &c);
    } else {
        run_map(shm, s, &c);
    }
}

int mp__pool_worker_main(mp_process *self, void *user)
{
    (void)self;
    mp__pwrec *w = user;
    mp__pshm *shm = w->shm;
    mp__wxlate x = {.shm = shm};
    /* A fork worker starts with a copy of its parent thread's message. */
    mp__task_msg_drop();
    if (self)
        mp__pool_fault_arm(w);
    /* An initializer that cannot be found fails the tasks this worker
     * takes, with the reason, rather than the worker (whose replacement
     * would fail the same way, forever). */
    int init_rc = initialize(shm, &x);
    /* Past the initializer: this worker's death no longer counts towards
     * breaking the pool (see worker_exited in pool/pool.c). */
    atomic_store(&w->ready, 1);
    atomic_fetch_add(&shm->ready_seq, 1);
    unsigned long ran = 0;
    for (;;) {
        if (atomic_load(&shm->quit) == MP__QUIT_NOW)
            return 0;
        mp__pslot *s = claim(shm, w->index);
        if (!s) {
            if (atomic_load(&shm->quit))
                return 0;
            idle(shm);
            continue;
        }
        if (s->failed != MP__SLOT_SKIP) {
            run_task(shm, s, &x, init_rc);
            ran += s->job && s->job->kind != MP__JOB_FOR ? s->count : 1;
        }
        publish(shm, s);
        if (shm->maxtasks && ran >= shm->maxtasks)
            return 0;
    }
}
