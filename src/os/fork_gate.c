/* See fork_gate.h. Only built into a library compiled with AddressSanitizer:
 * elsewhere the gate's calls are empty inline functions. */
#include "os/fork_gate.h"

#ifdef MP__FORK_GATE
#include <pthread.h>

static pthread_rwlock_t gate;
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;

static void make_gate(void)
{
    /* A fork waiting for the gate is not overtaken by threads entering
     * again and again. */
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&gate, &a);
    pthread_rwlockattr_destroy(&a);
}

static void before_fork(void)
{
    pthread_rwlock_wrlock(&gate);
}

static void in_parent(void)
{
    pthread_rwlock_unlock(&gate);
}

/* The child's thread has another id than the one that took the lock, and
 * glibc would take its unlock for a reader's: the child, alone, starts
 * with a new gate. */
static void in_child(void)
{
    make_gate();
}

static void gate_init(void)
{
    make_gate();
    pthread_atfork(before_fork, in_parent, in_child);
}

void mp__fork_gate_enter(void)
{
    pthread_once(&gate_once, gate_init);
    pthread_rwlock_rdlock(&gate);
}

void mp__fork_gate_leave(void)
{
    pthread_rwlock_unlock(&gate);
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int mp__fork_gate_unused;
#endif
