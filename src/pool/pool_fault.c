/* Words for failures: the signal that killed a worker (with the faulting
 * address, which a process worker records in its shared record just
 * before it dies of SIGSEGV or SIGBUS, and the backtrace it records for
 * the signals that run its handler: pool/pool_backtrace.c), a task out of
 * time, and the detail mp_async_get leaves in mp_error_detail(). */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool_internal.h"

#define FAULT_STACK (64 * 1024)

/* The record of this process's worker; one per process, set once. */
static mp__pwrec *armed;

/* The signals whose handler records what it can: those that a task's own
 * code raises (a fault, abort()). SIGKILL runs no handler. */
static const int fault_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    /* Only a fault the kernel raised has an address; a kill(2) has none. */
    if (armed && si->si_code > 0 && (sig == SIGSEGV || sig == SIGBUS)) {
        atomic_store(&armed->fault_addr, (uintptr_t)si->si_addr);
        atomic_store(&armed->fault_sig, (uint32_t)sig);
    }
    if (armed)
        mp__pool_bt_capture(sig, uc);
    /* SA_RESETHAND restored the default action: the signal, blocked while
     * this handler runs, kills the worker when it returns. */
    raise(sig);
}

/* Whether sig still has its default action: a program that installed its
 * own handler (a runtime's, a sanitizer's) keeps it in its fork workers. */
static bool is_default(int sig)
{
    struct sigaction old;
    return sigaction(sig, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
           old.sa_handler == SIG_DFL;
}

/* The alternate stack, kept reachable for the worker's life. */
static void *fault_stack;

void mp__pool_fault_arm(mp__pwrec *w)
{
    bool dfl[MP__ARRAY_LEN(fault_sigs)], any = false;
    for (size_t i = 0; i < MP__ARRAY_LEN(fault_sigs); i++) {
        dfl[i] = is_default(fault_sigs[i]);
        any = any || dfl[i];
    }
    if (!any)
        return;
    armed = w;
    mp__pool_bt_arm(w);
    /* A stack overflow faults on the stack itself: the handler needs
     * another one. An alternate stack the program set up is kept. */
    stack_t cur;
    if (!fault_stack && sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
        fault_stack = malloc(FAULT_STACK);
        stack_t st = {.ss_sp = fault_stack, .ss_size = FAULT_STACK};
        if (fault_stack && sigaltstack(&st, NULL) < 0) {
            free(fault_stack);
            fault_stack = NULL;
        }
    }
    struct sigaction sa = {.sa_sigaction = on_fault,
                           .sa_flags = (int)(SA_SIGINFO | SA_ONSTACK | SA_RESETHAND)};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < MP__ARRAY_LEN(fault_sigs); i++)
        if (dfl[i])
            (void)sigaction(fault_sigs[i], &sa, NULL);
}

void mp__pool_describe_loss(const mp_pool *p, uint32_t worker, mp_task_error *e)
{
    char nb[24];
    char *m = e->message;
    size_t cap = sizeof e->message;
    if (e->code == MP_ETASKFAILED) { /* its time ran out: the pool killed it */
        snprintf(m, cap, "ran longer than task_timeout (%g s): worker %d was killed",
                 (double)p->shm->timeout_ns / 1e9, (int)e->pid);
        return;
    }
    if (e->signal == 0) {
        snprintf(m, cap, "worker %d exited while running the task", (int)e->pid);
        return;
    }
    const char *name = mp__sig_name(e->signal, nb, sizeof nb);
    const mp__pwrec *w = worker < MP__POOL_MAXPROC ? &p->shm->wrec[worker] : NULL;
    uint32_t fsig = w && !p->threads ? atomic_load(&w->fault_sig) : 0;
    if (fsig != 0 && (int)fsig == e->signal)
        snprintf(m, cap, "worker %d killed by %s (%s at %p)", (int)e->pid, name,
                 fsig == SIGBUS ? "bus error" : "invalid memory access",
                 (void *)atomic_load(&w->fault_addr));
    else
        snprintf(m, cap, "worker %d killed by %s", (int)e->pid, name);
}

int mp__pool_detail(const mp_task_error *e)
{
    const char *sep = e->message[0] ? ": " : "";
    if (e->code == MP_ETASKFAILED && e->task_code != MP_ETIMEDOUT)
        return mp__fail(e->code, "item %zu: task failed with code %d%s%s", e->index, e->task_code,
                        sep, e->message);
    return mp__fail(e->code, "item %zu: %s%s%s", e->index, mp_strerror(e->code), sep, e->message);
}
