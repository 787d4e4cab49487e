/* Processes: the public API, the exit status of a child (through the table
 * of the method that started it), the body of every child, and the
 * clean-up of this process's children at exit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap/heap.h"
#include "os/pidfd.h"
#include "process/start_method.h"

/* ---- exit status and signals -------------------------------------------- */

int mp__process_try_reap(mp_process *p)
{
    pthread_mutex_lock(&p->mu);
    int reaped = 1;
    if (p->state == MP__RUNNING) {
        int code = 0;
        int r = mp__start_method_of(p->method)->status(p, &code);
        if (r < 0) {
            /* ECHILD: someone else (a waitpid(-1) elsewhere in the program,
             * or SIGCHLD set to SIG_IGN) took the status, or the fork server
             * that reported it is gone. The child is gone; its exit code is
             * lost. */
            p->status_lost = true;
            p->state = MP__REAPED;
            mp__debug("process %d was reaped by someone else", (int)p->pid);
        } else if (r == 0) {
            reaped = 0;
        } else {
            p->exitcode = code;
            p->state = MP__REAPED;
        }
    }
    pthread_mutex_unlock(&p->mu);
    /* The registry's own lock guards `linked`: unlinking checks it there (a
     * read of it here, under p->mu, would race with another thread's unlink). */
    if (reaped)
        mp__registry_unlink(p);
    return reaped;
}

int mp__process_signal(mp_process *p, int sig)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    /* Under the lock no other thread can reap, so the pid cannot have been
     * reused by the time kill() runs; a pidfd makes it exact anyway. */
    if (p->state == MP__RUNNING) {
        int r;
        if (p->sentinel_is_pidfd)
            r = mp__pidfd_send_signal(p->sentinel, sig);
        else
            r = kill(p->pid, sig);
        if (r < 0 && errno != ESRCH)
            rc = mp__errno();
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---- the API ------------------------------------------------------------- */

static int check_opts(const mp_process_opts *o)
{
    const char *f = "mp_process_create";
    if (!o)
        return mp__fail(MP_EINVAL, "%s: opts is NULL (a target or run is required)", f);
    if (!o->target == !o->run)
        return mp__fail(MP_EINVAL,
                        "%s: exactly one of opts->target and opts->run must be set "
                        "(%s)",
                        f, o->target ? "both are" : "neither is");
    if (o->args_len > 0 && !o->args)
        return mp__fail(MP_EINVAL, "%s: opts->args is NULL with opts->args_len %zu", f,
                        o->args_len);
    if (o->name && strlen(o->name) >= MP__NAME_MAX)
        return mp__fail(MP_EINVAL, "%s: opts->name is %zu bytes (at most %d)", f, strlen(o->name),
                        MP__NAME_MAX - 1);
    if (!(o->terminate_grace >= 0)) /* also rejects NaN */
        return mp__fail(MP_EINVAL, "%s: opts->terminate_grace is %g (must be >= 0 seconds)", f,
                        o->terminate_grace);
    if (!(o->start_timeout >= 0))
        return mp__fail(MP_EINVAL, "%s: opts->start_timeout is %g (must be >= 0 seconds)", f,
                        o->start_timeout);
    if (o->n_pass_fds > MP_PASS_FDS_MAX)
        return mp__fail(MP_EINVAL, "%s: opts->n_pass_fds is %zu (at most MP_PASS_FDS_MAX, %d)", f,
                        o->n_pass_fds, MP_PASS_FDS_MAX);
    if (o->n_pass_fds && !o->pass_fds)
        return mp__fail(MP_EINVAL, "%s: opts->pass_fds is NULL with opts->n_pass_fds %zu", f,
                        o->n_pass_fds);
    for (size_t i = 0; i < o->n_pass_fds; i++)
        if (o->pass_fds[i] < 0)
            return mp__fail(MP_EBADF, "%s: opts->pass_fds[%zu] is %d", f, i, o->pass_fds[i]);
    if (o->start_method < MP_START_DEFAULT || o->start_method > MP_START_FORKSERVER)
        return mp__fail(MP_EINVAL, "%s: opts->start_method is %d (not an mp_start_method)", f,
                        (int)o->start_method);
    return 0;
}

int mp_process_create(mp_process **out, const mp_process_opts *opts)
{
    if (!out)
        return mp__fail(MP_EINVAL, "mp_process_create: out is NULL");
    int rc = check_opts(opts);
    if (rc < 0)
        return rc;
    mp_process *p = calloc(1, sizeof(*p));
    if (!p)
        return MP_ENOMEM;
    if (opts->args_len > 0) {
        p->args = malloc(opts->args_len);
        if (!p->args) {
            free(p);
            return MP_ENOMEM;
        }
        memcpy(p->args, opts->args, opts->args_len);
        p->args_owned = true;
    } else {
        p->args = (void *)(uintptr_t)opts->args; /* a pointer, passed as it is */
    }
    pthread_mutex_init(&p->mu, NULL);
    p->kind = MP__KIND_CHILD;
    p->state = MP__CREATED;
    p->sentinel = -1;
    p->target = opts->target;
    p->args_len = opts->args_len;
    p->run = opts->run;
    p->user = opts->user;
    p->daemon = opts->daemon;
    p->grace = opts->terminate_grace > 0 ? opts->terminate_grace : MP__DEFAULT_GRACE;
    p->start_timeout = opts->start_timeout > 0 ? opts->start_timeout : MP__DEFAULT_START_TIMEOUT;
    if (opts->n_pass_fds)
        memcpy(p->pass_fds, opts->pass_fds, opts->n_pass_fds * sizeof(int));
    p->n_pass_fds = opts->n_pass_fds;
    p->method = opts->start_method ? opts->start_method : mp_get_start_method();
    mp__next_identity(p->ident, sizeof(p->ident));
    if (opts->name)
        snprintf(p->name, sizeof(p->name), "%s", opts->name);
    else
        snprintf(p->name, sizeof(p->name), "Process-%s", p->ident);
    *out = p;
    return 0;
}

/* Common checks of the calls that act on a started child: it must be ours,
 * started, and not closed. Call with p->mu held. */
static int check_child_locked(const mp_process *p)
{
    if (p->kind != MP__KIND_CHILD)
        return MP_EPERM;
    if (p->closed)
        return MP_ECLOSED;
    if (p->state == MP__CREATED)
        return MP_ENOTSTARTED;
    if (p->owner != getpid())
        return MP_EPERM;
    return 0;
}

static int check_child(mp_process *p)
{
    if (!p)
        return mp__fail(MP_EINVAL, "mp_process: the process is NULL");
    pthread_mutex_lock(&p->mu);
    int rc = check_child_locked(p);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---- children at exit, and the body of a child ----------------------------- */

int mp_active_children(mp_process **out, size_t cap)
{
    if (!out && cap > 0)
        return mp__fail(MP_EINVAL, "mp_active_children: out is NULL with cap %zu", cap);
    mp_process **v = NULL;
    int n = mp__registry_snapshot(&v);
    if (n < 0)
        return n;
    int alive = 0;
    for (int i = 0; i < n; i++) {
        if (mp__process_try_reap(v[i]))
            continue;
        if ((size_t)alive < cap)
            out[alive] = v[i];
        alive++;
    }
    free(v);
    return alive;
}

/* Terminate daemon children, join the others (at exit, like Python). */
static void exit_cleanup(void)
{
    mp_process **v = NULL;
    int n = mp__registry_snapshot(&v);
    if (n <= 0)
        return;
    for (int i = 0; i < n; i++)
        if (v[i]->daemon)
            mp_process_terminate(v[i]);
    for (int i = 0; i < n; i++)
        if (!v[i]->daemon)
            mp_process_join(v[i], MP_FOREVER);
    free(v);
}

static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static void atexit_handler(void)
{
    /* Only the process that registered the handler runs it: a child made by
     * the library leaves through _exit, and a plain fork()ed child has an
     * empty list. */
    exit_cleanup();
}

static void register_atexit(void)
{
    atexit(atexit_handler);
}

/* Registers the atexit handler once. */
static void ensure_atexit(void)
{
    mp__registry_init();
    pthread_once(&atexit_once, register_atexit);
}

/* _exit through a pointer: the pointer is relocated when the program loads,
 * whereas a direct call would be resolved lazily in each child (volatile,
 * so that the compiler does not turn it back into a direct call). */
static void (*volatile const mp__exit_fn)(int) = _exit;

_Noreturn void mp__process_child_main(mp_process *p, pid_t ppid, const char *parent_name)
{
    p->pid = getpid();
    mp__registry_child_init(p, ppid, parent_name);
    int code = p->target ? p->target(p->args, p->args_len) : p->run(p, p->user);
    /* Like Python's child bootstrap: deal with our own children, flush stdio,
     * and leave without running the parent's atexit handlers. */
    exit_cleanup();
    mp__heap_thread_flush();
    fflush(NULL);
    mp__exit_fn(code & 0xff);
    __builtin_unreachable();
}

int mp_process_start(mp_process *p)
{
    if (!p)
        return mp__fail(MP_EINVAL, "mp_process_start: p is NULL");
    if (p->kind != MP__KIND_CHILD)
        return MP_EPERM;
    mp__deadline d;
    mp__deadline_init(&d, p->start_timeout);
    ensure_atexit();
    /* The heap must exist before the fork for the child to share it, and
     * to see the objects made after it started. */
    int rc = mp__heap_ensure();
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&p->mu);
    rc = p->closed ? MP_ECLOSED : p->state != MP__CREATED ? MP_ESTARTED : 0;
    if (rc == 0)
        rc = mp__process_launch(p, &d);
    if (rc == MP__LAUNCHED_CHILD)
        mp__process_child_main(p, p->owner, NULL);
    if (rc == 0)
        p->state = MP__RUNNING;
    pthread_mutex_unlock(&p->mu);
    if (rc == 0)
        mp__registry_link(p);
    return rc;
}

/* Wait for the sentinel or the deadline. A pidfd turns readable exactly
 * when the child exits. The fallback pipe can turn readable early (the child
 * exec'd) or late (a grandchild inherited the write end), so there the wait
 * is cut into short slices with a reap check after each. intr: the wait of
 * mp_process_join, where the thread's interrupt settings apply
 * (multiproc/interrupt.h); a terminate's waits go on. */
static int wait_exit(mp_process *p, const mp__deadline *d, bool intr)
{
    for (;;) {
        if (mp__process_try_reap(p))
            return 0;
        if (mp__deadline_expired(d))
            return MP_ETIMEDOUT;
        pthread_mutex_lock(&p->mu);
        int fd = p->sentinel;
        bool exact = p->sentinel_is_pidfd;
        pthread_mutex_unlock(&p->mu);
        if (fd < 0 || !exact) {
            mp__deadline slice = *d;
            int64_t cap = mp__now_ns() + 20 * 1000000;
            if (slice.ns < 0 || slice.ns > cap)
                slice.ns = cap;
            if (fd >= 0) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                int r = intr ? mp__poll_intr(&pfd, 1, &slice) : mp__poll(&pfd, 1, &slice);
                if (r == MP_EINTR || r == MP_ECANCELED)
                    return r;
                if (r > 0)
                    mp__sleep_until(&slice, 1000000); /* EOF stays readable */
            } else {
                int r = intr ? mp__poll_intr(NULL, 0, &slice) : 0;
                if (r == MP_EINTR || r == MP_ECANCELED)
                    return r;
                if (!intr)
                    mp__sleep_until(&slice, INT64_MAX);
            }
            continue;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = intr ? mp__poll_intr(&pfd, 1, d) : mp__poll(&pfd, 1, d);
        if (r < 0)
            return r;
    }
}

int mp_process_join(mp_process *p, double timeout)
{
    mp__deadline d;
    int rc = mp__deadline_init(&d, timeout);
    if (rc < 0)
        return rc;
    if ((rc = check_child(p)) < 0)
        return rc;
    return wait_exit(p, &d, true);
}

bool mp_process_is_alive(mp_process *p)
{
    if (!p)
        return false;
    if (p->kind == MP__KIND_SELF || p == mp_current_process())
        return true;
    if (p->kind == MP__KIND_PARENT) {
        if (p->sentinel >= 0) {
            struct pollfd pfd = {.fd = p->sentinel, .events = POLLIN};
            return poll(&pfd, 1, 0) == 0;
        }
        return getppid() == p->pid;
    }
    if (check_child(p) < 0)
        return false;
    return !mp__process_try_reap(p);
}

int mp_process_exitcode(mp_process *p, int *code)
{
    if (!p || !code)
        return mp__fail(MP_EINVAL, "mp_process_exitcode: %s is NULL", !p ? "p" : "code");
    if (mp__is_current(p))
        return MP_ERUNNING; /* a process asking about itself, or its parent */
    int rc = check_child(p);
    if (rc == MP_ECLOSED || rc == MP_EPERM) {
        /* A closed object (or a copy seen from another process) still knows
         * the code it recorded. */
        pthread_mutex_lock(&p->mu);
        rc = p->state == MP__REAPED ? 0 : rc;
        pthread_mutex_unlock(&p->mu);
    } else if (rc == 0 && !mp__process_try_reap(p)) {
        return MP_ERUNNING;
    }
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&p->mu);
    rc = p->status_lost ? MP_ECHILD : 0;
    if (rc == 0)
        *code = p->exitcode;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int mp_process_send_signal(mp_process *p, int sig)
{
    if (sig < 0 || sig >= NSIG)
        return mp__fail(MP_EINVAL, "mp_process_send_signal: sig %d is not a signal (0..%d)", sig,
                        NSIG - 1);
    int rc = check_child(p);
    return rc < 0 ? rc : mp__process_signal(p, sig);
}

static int stop(mp_process *p, int first_sig, double grace)
{
    int rc = check_child(p);
    if (rc < 0 || mp__process_try_reap(p))
        return rc;
    mp__deadline d;
    if (first_sig != SIGKILL) {
        if ((rc = mp__process_signal(p, first_sig)) < 0)
            return rc;
        mp__deadline_init(&d, grace);
        if (wait_exit(p, &d, false) == 0)
            return 0;
    }
    if ((rc = mp__process_signal(p, SIGKILL)) < 0)
        return rc;
    mp__deadline_init(&d, MP__KILL_WAIT);
    return wait_exit(p, &d, false);
}

int mp_process_terminate(mp_process *p)
{
    return stop(p, SIGTERM, p ? p->grace : 0);
}

int mp_process_kill(mp_process *p)
{
    return stop(p, SIGKILL, 0);
}

/* ---- many at once --------------------------------------------------------- */

/* Reaps what has exited among procs and waits, until all are reaped or d
 * passes, in one poll over every pidfd (a sentinel that is no pidfd is
 * looked at every 20 ms, as in wait_exit). Returns how many still run,
 * or an error of poll. */
static int wait_all(mp_process *const *procs, size_t n, struct pollfd *pfd, const mp__deadline *d)
{
    for (;;) {
        size_t left = 0;
        bool inexact = false;
        for (size_t i = 0; i < n; i++) {
            if (mp__process_try_reap(procs[i]))
                continue;
            pthread_mutex_lock(&procs[i]->mu);
            pfd[left] = (struct pollfd){.fd = procs[i]->sentinel, .events = POLLIN};
            inexact |= !procs[i]->sentinel_is_pidfd;
            pthread_mutex_unlock(&procs[i]->mu);
            left++;
        }
        if (left == 0 || mp__deadline_expired(d))
            return (int)(left > INT32_MAX ? INT32_MAX : left);
        mp__deadline slice = *d;
        int64_t cap = mp__now_ns() + 20 * 1000000;
        if (inexact && (slice.ns < 0 || slice.ns > cap))
            slice.ns = cap;
        int r = mp__poll(pfd, (nfds_t)left, &slice);
        if (r < 0)
            return r;
        if (r > 0 && inexact)
            mp__sleep_until(&slice, 1000000); /* a pipe's EOF stays readable */
    }
}

/* An entry repeated in the list counts once. */
static bool listed_before(mp_process *const *procs, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (procs[j] == procs[i])
            return true;
    return false;
}

int mp_terminate_all(mp_process *const *procs, size_t n, double grace)
{
    const char *f = "mp_terminate_all";
    if (procs == NULL && n > 0)
        return mp__fail(MP_EINVAL, "%s: procs is NULL with n %zu", f, n);
    if (!(grace >= 0))
        return mp__fail(MP_EINVAL, "%s: grace is %g (seconds, >= 0)", f, grace);
    if (n > INT32_MAX)
        return mp__fail(MP_EINVAL, "%s: n is %zu (at most INT32_MAX)", f, n);
    for (size_t i = 0; i < n; i++) {
        int rc = procs[i] ? check_child(procs[i]) : MP_EINVAL;
        if (rc < 0)
            return rc; /* nothing sent yet: a bad list changes nothing */
    }
    struct pollfd *pfd = calloc(n ? n : 1, sizeof(*pfd));
    if (pfd == NULL)
        return MP_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!mp__process_try_reap(procs[i]))
            (void)mp__process_signal(procs[i], SIGTERM);
    mp__deadline d;
    mp__deadline_init(&d, grace);
    int left = wait_all(procs, n, pfd, &d);
    int killed = 0;
    for (size_t i = 0; left > 0 && i < n; i++) {
        if (!mp__process_try_reap(procs[i]) && !listed_before(procs, i) &&
            mp__process_signal(procs[i], SIGKILL) == 0)
            killed++;
    }
    if (left > 0) {
        mp__deadline_init(&d, MP__KILL_WAIT);
        left = wait_all(procs, n, pfd, &d);
    }
    free(pfd);
    return left < 0 ? left : left > 0 ? MP_ETIMEDOUT : killed;
}

int mp_process_close(mp_process *p)
{
    if (!p)
        return mp__fail(MP_EINVAL, "mp_process_close: p is NULL");
    if (p->kind != MP__KIND_CHILD)
        return MP_EPERM;
    pthread_mutex_lock(&p->mu);
    bool ours_running = p->state == MP__RUNNING && p->owner == getpid();
    pthread_mutex_unlock(&p->mu);
    if (ours_running && !mp__process_try_reap(p))
        return MP_EBUSY;
    pthread_mutex_lock(&p->mu);
    if (!p->closed && p->sentinel >= 0)
        close(p->sentinel);
    p->sentinel = -1;
    p->closed = true;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void mp_process_destroy(mp_process *p)
{
    if (!p || p->kind != MP__KIND_CHILD || mp__is_current(p))
        return;
    if (p->owner == getpid() && p->state == MP__RUNNING && !p->closed) {
        mp_process_terminate(p);
        mp__registry_unlink(p); /* even if the kernel kept it: never dangle */
    }
    if (p->sentinel >= 0)
        close(p->sentinel);
    if (p->args_owned)
        free(p->args);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

pid_t mp_process_pid(const mp_process *p)
{
    if (!p)
        return 0;
    if (p->kind == MP__KIND_SELF)
        return getpid();
    return p->pid;
}

const char *mp_process_name(const mp_process *p)
{
    return p ? p->name : NULL;
}

bool mp_process_daemon(const mp_process *p)
{
    return p && p->daemon;
}

int mp_process_sentinel(const mp_process *p)
{
    return p ? p->sentinel : -1;
}
