/* Start methods: how a process is started, and how its exit status is
 * collected. Not installed.
 *
 * Each method is one mp__start_method table, defined in the file that
 * implements it: fork in process/process_fork.c, spawn in process/spawn.c,
 * forkserver in process/forkserver.c. process/start_method.c is the one
 * place that maps an mp_start_method to its table; the generic code
 * (process/process.c) reaches a method only through it, and knows none of
 * them by name.
 *
 * Adding a method: give it a value in mp_start_method (include/multiproc/
 * process.h), write its launch and status in a file of its own with its
 * table, declare the table below, and list it in mp__start_methods
 * (process/start_method.c). A method whose child is a fresh image sends the
 * child an mp__boot (process/boot.h) and runs it there with
 * mp__process_child_main. */
#ifndef MULTIPROC_START_METHOD_H
#define MULTIPROC_START_METHOD_H

#include "process/process_internal.h"

/* What launch returns in the child of a fork (fork only): the caller runs
 * the child's body (mp__process_child_main) and never returns. */
#define MP__LAUNCHED_CHILD 1

typedef struct mp__start_method {
    mp_start_method id;
    const char *name; /* as MP_START_METHOD and mp_start_method_name spell it */
    /* Starts p (not started, its pass_fds checked, p->mu held) by the
     * deadline d (which a method that never blocks may ignore). Returns 0
     * with p->pid, p->owner and p->sentinel (and p->sentinel_is_pidfd) set,
     * MP__LAUNCHED_CHILD in a forked child, or an error, after which no
     * child exists. */
    int (*launch)(mp_process *p, const mp__deadline *d);
    /* Whether the child p, started by this method, has exited, without
     * blocking: 1 with *code (the exit status, or minus the signal), 0
     * while it runs, or MP_ECHILD when the status is lost. Called with p->mu
     * held. A method whose child is the caller's own uses
     * mp__own_child_status. */
    int (*status)(mp_process *p, int *code);
} mp__start_method;

extern const mp__start_method mp__start_fork;       /* process/process_fork.c */
extern const mp__start_method mp__start_spawn;      /* process/spawn.c */
extern const mp__start_method mp__start_forkserver; /* process/forkserver.c */

/* process/start_method.c: the table of a method (MP_START_DEFAULT: of the
 * process-wide default), or NULL for a value that is no method. */
const mp__start_method *mp__start_method_of(mp_start_method method);

/* process/start_method.c: checks p's pass_fds and launches p by its
 * method (see launch above). */
int mp__process_launch(mp_process *p, const mp__deadline *d);

/* process/process_fork.c: the status of a child of this process, by
 * waitid on its pidfd, or on its pid without one. */
int mp__own_child_status(mp_process *p, int *code);

/* process/forkserver.c: whether this process has a fork server now (for
 * the tests' fd counts: its fds are fixed once mp_forkserver_ensure has
 * returned). */
bool mp__forkserver_running(void);

#endif /* MULTIPROC_START_METHOD_H */
