/* The pool's life cycle in the parent: workers (start, replacement),
 * close, terminate, join, destroy, progress. */
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os/futex.h"
#include "os/pidfd.h"
#include "heap/heap.h"
#include "pool/pool_internal.h"

#define TERMINATE_GRACE 1.0
/* A per-task timeout above this (a century, as for every timeout) is no
 * limit; it would overflow in nanoseconds. */
#define TASK_TIMEOUT_MAX 3.0e9

static void stop_workers(mp_pool *p, bool kill_now);

int mp__pool_check_use(const mp_pool *p)
{
    if (!p)
        return mp__fail(MP_EINVAL, "pool is NULL");
    if (p->owner != mp__self_pid())
        return MP_EPERM;
    return 0;
}

int mp__pool_spawn(mp_pool *p, int index)
{
    atomic_store(&p->shm->wrec[index].ready, 0);
    atomic_store(&p->shm->wrec[index].fault_sig, 0);
    atomic_store(&p->shm->wrec[index].bt_sig, 0);
    if (p->threads)
        return mp__pool_thread_spawn(p, index);
    mp_process *w = NULL;
    /* The workers' eventfd (pool/pool_fd.c) at the same number in every
     * worker, whatever the start method. */
    int rc = mp_process_create(&w, &(mp_process_opts){.run = mp__pool_worker_main,
                                                      .user = &p->shm->wrec[index],
                                                      .daemon = true,
                                                      .start_method = p->opts.start_method,
                                                      .terminate_grace = TERMINATE_GRACE,
                                                      .pass_fds = &p->wake_fd,
                                                      .n_pass_fds = p->wake_fd >= 0 ? 1 : 0});
    if (rc < 0)
        return rc;
    rc = mp_process_start(w);
    if (rc < 0) {
        mp_process_destroy(w);
        return rc;
    }
    p->workers[index] = w;
    mp__pool_fd_worker(p, index, true);
    return 0;
}

static unsigned broken_bound(const mp_pool *p)
{
    return 2 * (unsigned)p->nproc + 2;
}

/* Too many workers died in a row before their initializer returned: stop
 * replacing them, end every job with MP_EBROKENPOOL, refuse new ones. */
static void break_pool(mp_pool *p)
{
    p->broken = true;
    stop_workers(p, true);
    p->terminated = true; /* nothing more to pump; terminate is a no-op */
    p->joined = true;     /* no worker is left */
    mp__pool_fail_broken(p);
}

/* Counts worker i's death (code as mp_process_exitcode) towards breaking
 * the pool; true when the pool broke. A death counts only if the worker
 * never got past its initializer; the count starts again at any sign of
 * life in between (a worker got past its initializer, a task ended), so
 * that a task killing its worker, or an initializer crashing now and then,
 * never breaks the pool. */
static bool count_death(mp_pool *p, int i, pid_t pid, int code)
{
    if (atomic_load(&p->shm->wrec[i].ready)) {
        p->streak = 0;
        return false;
    }
    uint64_t mark = atomic_load(&p->shm->ready_seq) + p->meter.done;
    if (mark != p->streak_mark)
        p->streak = 0;
    p->streak_mark = mark;
    p->streak++;
    p->broken_info = (mp_pool_broken_info){.pid = pid,
                                           .signal = code < 0 ? -code : 0,
                                           .exitcode = code > 0 ? code : 0,
                                           .deaths = p->streak};
    if (p->streak < broken_bound(p))
        return false;
    break_pool(p);
    return true;
}

/* A worker has exited: fail what it held, and start its replacement while
 * the pool still has work to do (and is not broken). */
static int worker_exited(mp_pool *p, int i)
{
    mp_process *w = p->workers[i];
    int code = 0;
    mp_process_join(w, 0);
    mp_process_exitcode(w, &code);
    pid_t pid = mp_process_pid(w);
    mp__pool_lost(p, (uint32_t)i, pid, code < 0 ? -code : 0, p->tkill[i] != 0);
    p->tkill[i] = 0;
    mp__pool_fd_worker(p, i, false);
    mp_process_destroy(w);
    p->workers[i] = NULL;
    if (atomic_load(&p->shm->quit) || count_death(p, i, pid, code))
        return 0;
    return mp__pool_spawn(p, i);
}

int mp__pool_check_workers(mp_pool *p, bool force)
{
    int64_t now = mp__now_ns();
    if (!force && now - p->last_check_ns < MP__POOL_SLICE_NS / 2)
        return 0;
    p->last_check_ns = now;
    if (p->threads) {
        mp__pool_thread_reap(p);
        return 0;
    }
    struct pollfd fds[MP__POOL_MAXPROC];
    int idx[MP__POOL_MAXPROC];
    nfds_t n = 0;
    for (int i = 0; i < p->nproc; i++) {
        if (!p->workers[i]) {
            if (!atomic_load(&p->shm->quit) && mp__pool_spawn(p, i) < 0)
                continue; /* retried at the next check */
            continue;
        }
        fds[n] = (struct pollfd){.fd = mp_process_sentinel(p->workers[i]), .events = POLLIN};
        idx[n++] = i;
    }
    if (n == 0)
        return 0;
    int r = poll(fds, n, 0);
    if (r <= 0)
        return 0;
    int rc = 0;
    for (nfds_t k = 0; k < n && !p->broken; k++) {
        if (fds[k].revents && !mp_process_is_alive(p->workers[idx[k]])) {
            int e = worker_exited(p, idx[k]);
            if (e < 0 && rc == 0)
                rc = e;
        }
    }
    return rc;
}

static int check_opts(const mp_pool_opts *o)
{
    const char *f = "mp_pool_create";
    if (o->processes < 0 || o->processes > MP__POOL_MAXPROC)
        return mp__fail(MP_EINVAL, "%s: opts->processes is %d (must be 0..%d; 0: cpu count)", f,
                        o->processes, MP__POOL_MAXPROC);
    if (isnan(o->task_timeout) || o->task_timeout < 0)
        return mp__fail(MP_EINVAL, "%s: opts->task_timeout is %g (must be >= 0 seconds)", f,
                        o->task_timeout);
    if (o->start_method != MP_START_DEFAULT && o->start_method != MP_START_FORK &&
        o->start_method != MP_START_SPAWN && o->start_method != MP_START_FORKSERVER)
        return mp__fail(MP_EINVAL, "%s: opts->start_method is %d (not an mp_start_method)", f,
                        (int)o->start_method);
    /* A thread cannot be killed: no per-task timeout, no other start method. */
    if (o->threads && o->task_timeout > 0)
        return mp__fail(MP_EINVAL,
                        "%s: opts->task_timeout needs process workers (opts->threads "
                        "is set, and a thread cannot be killed)",
                        f);
    if (o->threads && o->start_method != MP_START_DEFAULT)
        return mp__fail(MP_EINVAL,
                        "%s: opts->start_method needs process workers (opts->threads "
                        "is set)",
                        f);
    return 0;
}

static int init_shm(mp_pool *p)
{
    void *mem = NULL;
    int rc = mp__heap_alloc(&mem, sizeof(mp__pshm));
    if (rc < 0)
        return rc;
    /* The block comes zeroed, and untouched: most of it (the ring) is
     * faulted in only as slots are used, which keeps the pool's start
     * short. */
    mp__pshm *shm = mem;
    rc = mp__robust_mutex_init(&shm->mu, false);
    if (rc < 0) {
        mp__heap_free(shm);
        return rc;
    }
    shm->timeout_ns = (int64_t)(p->opts.task_timeout * 1e9);
    shm->maxtasks = p->opts.maxtasksperchild;
    shm->initializer = p->opts.initializer;
    shm->initarg = p->opts.initarg;
    for (int i = 0; i < p->nproc; i++)
        shm->wrec[i] = (mp__pwrec){.shm = shm, .index = (uint32_t)i};
    p->shm = shm;
    if (p->threads)
        return 0;
    if (p->opts.start_method == MP_START_FORK) {
        if ((rc = mp__pool_fork_init(p)) < 0) {
            mp__robust_mutex_fini(&shm->mu);
            mp__heap_free(shm);
            p->shm = NULL;
        }
        return rc;
    }
    rc = mp__pool_xlate_init(p);
    if (rc == 0)
        rc = mp__pool_xlate_check(p, (const void *)(uintptr_t)p->opts.initializer, true,
                                  "mp_pool_create", "opts->initializer");
    if (rc == 0)
        rc = mp__pool_xlate_check(p, p->opts.initarg, false, "mp_pool_create", "opts->initarg");
    if (rc < 0) {
        mp__pool_xlate_fini(p);
        mp__robust_mutex_fini(&shm->mu);
        mp__heap_free(shm);
        p->shm = NULL;
    }
    return rc;
}

static void stop_workers(mp_pool *p, bool kill_now)
{
    if (p->threads) {
        mp__deadline none = {-1};
        mp__pool_thread_stop(p, kill_now ? MP__QUIT_NOW : MP__QUIT_WHEN_EMPTY, &none);
        return;
    }
    atomic_store(&p->shm->quit, kill_now ? MP__QUIT_NOW : MP__QUIT_WHEN_EMPTY);
    atomic_fetch_add(&p->shm->work_seq, 1);
    mp__futex_wake(&p->shm->work_seq, INT32_MAX);
    if (kill_now) {
        for (int i = 0; i < p->nproc; i++)
            if (p->workers[i])
                mp_process_send_signal(p->workers[i], SIGTERM);
    }
    for (int i = 0; i < p->nproc; i++) {
        if (!p->workers[i])
            continue;
        if (kill_now)
            mp_process_terminate(p->workers[i]);
        mp__pool_fd_worker(p, i, false);
        mp_process_destroy(p->workers[i]);
        p->workers[i] = NULL;
    }
}

int mp_pool_create(mp_pool **out, const mp_pool_opts *opts)
{
    if (out && opts && opts->manager) {
        const mp__pool_backend *b = mp__pool_distributed();
        return b ? MP__POOL_CALL(b, create, out, opts) : MP_ENOSYS;
    }
    mp_pool_opts o = opts ? *opts : (mp_pool_opts){0};
    if (!out)
        return mp__fail(MP_EINVAL, "mp_pool_create: out is NULL");
    if (o.task_timeout > TASK_TIMEOUT_MAX)
        o.task_timeout = 0; /* no limit (INFINITY included) */
    int rc = check_opts(&o);
    if (rc < 0)
        return rc;
    rc = mp__heap_ensure();
    if (rc < 0)
        return rc;
    mp_pool *p = calloc(1, sizeof *p);
    if (!p)
        return MP_ENOMEM;
    /* Replacements of dead or retired workers start like the first ones,
     * whatever the default is by then. */
    if (!o.threads && o.start_method == MP_START_DEFAULT)
        o.start_method = mp_get_start_method();
    p->opts = o;
    p->nproc = o.processes ? o.processes : mp_cpu_count();
    p->owner = mp__self_pid();
    p->wake_fd = p->efd = p->tfd = -1;
    p->workers = calloc((size_t)p->nproc, sizeof *p->workers);
    p->tkill = calloc((size_t)p->nproc, 1);
    if (o.threads) {
        p->threads = calloc((size_t)p->nproc, sizeof *p->threads);
        p->thread_live = calloc((size_t)p->nproc, sizeof *p->thread_live);
    }
    rc = p->workers && p->tkill && (!o.threads || (p->threads && p->thread_live)) ? init_shm(p)
                                                                                  : MP_ENOMEM;
    if (rc < 0)
        goto fail;
    mp__pool_fd_init(p);
    mp__pool_bt_init(p);
    for (int i = 0; i < p->nproc; i++) {
        rc = mp__pool_spawn(p, i);
        if (rc < 0)
            goto fail_workers;
    }
    p->started_ns = mp__now_ns();
    p->last_check_ns = p->started_ns;
    mp__pool_meter_init(&p->meter, &o);
    *out = p;
    return 0;
fail_workers:
    stop_workers(p, true);
    mp__pool_fd_fini(p);
    mp__pool_xlate_fini(p);
    mp__pool_bt_fini(p);
    mp__robust_mutex_fini(&p->shm->mu);
    mp__heap_free(p->shm);
fail:
    free(p->workers);
    free(p->tkill);
    free(p->threads);
    free(p->thread_live);
    free(p);
    return rc;
}

int mp_pool_close(mp_pool *p)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b)
        return MP__POOL_CALL(b, close, p);
    int rc = mp__pool_check_use(p);
    if (rc < 0)
        return rc;
    p->closed = true;
    return 0;
}

int mp_pool_terminate(mp_pool *p)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b)
        return MP__POOL_CALL(b, terminate, p);
    int rc = mp__pool_check_use(p);
    if (rc < 0)
        return rc;
    p->closed = true;
    if (p->terminated)
        return 0;
    p->terminated = true;
    stop_workers(p, true);
    mp__pool_fail_all(p, MP_ECLOSED);
    p->joined = true;
    return 0;
}

int mp_pool_join(mp_pool *p, double timeout)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b)
        return MP__POOL_CALL(b, join, p, timeout);
    mp__deadline d;
    int rc = mp__pool_check_use(p);
    if (rc < 0)
        return rc;
    if (!p->closed)
        return MP_EBUSY;
    rc = mp__deadline_init(&d, timeout);
    if (rc < 0 || p->joined)
        return rc;
    while (mp__pool_pump(p, false) > 0) {
        rc = mp__pool_wait_event(p, &d);
        if (rc < 0)
            return rc;
    }
    if (p->threads) {
        rc = mp__pool_thread_stop(p, MP__QUIT_WHEN_EMPTY, &d);
        if (rc < 0)
            return rc;
    }
    atomic_store(&p->shm->quit, MP__QUIT_WHEN_EMPTY);
    atomic_fetch_add(&p->shm->work_seq, 1);
    mp__futex_wake(&p->shm->work_seq, INT32_MAX);
    for (int i = 0; i < p->nproc && !p->threads; i++) {
        if (!p->workers[i])
            continue;
        rc = mp_process_join(p->workers[i], timeout == 0 ? 0 : mp__deadline_poll_ms(&d) / 1e3);
        if (rc == MP_ETIMEDOUT && timeout < 0)
            rc = mp_process_join(p->workers[i], MP_FOREVER);
        if (rc < 0)
            return rc;
        mp__pool_fd_worker(p, i, false);
        mp_process_destroy(p->workers[i]);
        p->workers[i] = NULL;
    }
    mp__pool_progress(p, true);
    p->joined = true;
    return 0;
}

void mp_pool_destroy(mp_pool *p)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b) {
        b->destroy(p);
        return;
    }
    if (!p)
        return;
    if (p->owner != mp__self_pid()) {
        mp__pool_fd_fini(p); /* this process's copies */
        free(p->start_bases);
        free(p->workers);
        free(p->tkill);
        free(p->threads);
        free(p->thread_live);
        free(p);
        return;
    }
    if (!p->joined)
        mp_pool_terminate(p);
    mp__pool_fail_all(p, MP_ECLOSED);
    /* Results the caller still holds outlive the pool: they keep their
     * outcome and no longer refer to it. */
    for (mp_async *a = p->all; a; a = a->all_next) {
        mp__heap_free(a->st_in.p);
        mp__heap_free(a->st_out.p);
        mp__heap_free(a->win.p);
        a->st_in = a->st_out = a->win = (mp__block){0};
        a->pool = NULL;
    }
    for (size_t i = 0; i < MP__ARRAY_LEN(p->cache); i++)
        mp__heap_free(p->cache[i].p);
    mp__pool_xlate_fini(p);
    mp__pool_fd_fini(p);
    mp__pool_bt_fini(p);
    mp__robust_mutex_fini(&p->shm->mu);
    mp__heap_free(p->shm);
    free(p->workers);
    free(p->tkill);
    free(p->threads);
    free(p->thread_live);
    free(p);
}

int mp_pool_poll(mp_pool *p)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b)
        return MP__POOL_CALL(b, poll, p);
    int rc = mp__pool_check_use(p);
    if (rc < 0)
        return rc;
    return mp__pool_pump(p, true);
}

int mp_pool_broken_reason(mp_pool *p, mp_pool_broken_info *out)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b)
        return MP__POOL_CALL(b, broken_reason, p, out);
    int rc = mp__pool_check_use(p);
    if (rc < 0)
        return rc;
    if (!out)
        return mp__fail(MP_EINVAL, "mp_pool_broken_reason: out is NULL");
    *out = p->broken ? p->broken_info : (mp_pool_broken_info){0};
    return p->broken ? 1 : 0;
}

int mp_pool_pids(mp_pool *p, pid_t *out, size_t cap)
{
    const mp__pool_backend *b = mp__pool_backend_of(p);
    if (b)
        return MP__POOL_CALL(b, pids, p, out, cap);
    int rc = mp__pool_check_use(p);
    if (rc < 0)
        return rc;
    if (!out && cap > 0)
        return mp__fail(MP_EINVAL, "mp_pool_pids: out is NULL with cap %zu", cap);
    size_t n = 0;
    for (int i = 0; i < p->nproc; i++) {
        if (p->threads ? !p->thread_live[i] : !p->workers[i])
            continue;
        if (n < cap)
            out[n] = p->threads ? getpid() : mp_process_pid(p->workers[i]);
        n++;
    }
    return (int)n;
}

void mp__pool_progress(mp_pool *p, bool final)
{
    mp__pool_meter_report(&p->meter, final);
}

void mp__pool_meter_init(mp__pool_meter *m, const mp_pool_opts *o)
{
    *m = (mp__pool_meter){.cb = o->progress_cb,
                          .user = o->progress_user,
                          .on = o->progress || o->progress_cb,
                          .tty = o->progress && isatty(STDERR_FILENO),
                          .started_ns = mp__now_ns()};
}

void mp__pool_meter_report(mp__pool_meter *m, bool final)
{
    if (!m->on)
        return;
    int64_t now = mp__now_ns();
    if (!final && now - m->last_ns < 100000000)
        return;
    m->last_ns = now;
    if (m->cb)
        m->cb(m->done, m->total, m->user);
    if (!m->tty || m->total == 0)
        return;
    double el = (double)(now - m->started_ns) / 1e9;
    double rate = el > 0 ? (double)m->done / el : 0;
    double eta = rate > 0 ? (double)(m->total - m->done) / rate : 0;
    fprintf(stderr, "\r%3.0f%% %llu/%llu [%.1fs<%.1fs, %.0f it/s]%s",
            100.0 * (double)m->done / (double)m->total, (unsigned long long)m->done,
            (unsigned long long)m->total, el, eta, rate, final ? "\n" : "");
}
