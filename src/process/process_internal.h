/* The process object, and the parts of the process module that the files
 * of the module (and the modules above it) share. Not installed.
 *
 * Who owns what, bottom to top (a file uses only those before it):
 *   process/registry.c       this process's children (a plain list), the
 *                            identities, the current and parent objects
 *   process/boot.c           the start message of spawn and forkserver
 *   process/process_fork.c   the fork method; the status of our own child
 *   process/spawn.c          the spawn method (the parent's side)
 *   process/forkserver.c     the forkserver method (the parent's side)
 *   process/start_method.c   the default method; method -> table
 *                            (process/start_method.h)
 *   process/process.c        the API, reaping and signals through the
 *                            tables, the body of every child, the clean-up
 *                            of children at exit
 *   process/forkserver_server.c  the fork server (a spawned image)
 *   process/spawn_child.c    the entry of a spawned image (before main) */
#ifndef MULTIPROC_PROCESS_INTERNAL_H
#define MULTIPROC_PROCESS_INTERNAL_H

#include <pthread.h>
#include <signal.h>

#include "base/internal.h"

#define MP__NAME_MAX      256
#define MP__IDENT_MAX     64
#define MP__DEFAULT_GRACE 3.0
/* How long a start may take by default (spawn, forkserver), and how long
 * mp_forkserver_ensure may. */
#define MP__DEFAULT_START_TIMEOUT 10.0
/* How long kill waits for a SIGKILLed child before giving up (a child in
 * uninterruptible sleep cannot die until the kernel lets it). */
#define MP__KILL_WAIT 5.0

typedef enum mp__pstate {
    MP__CREATED = 0, /* not started */
    MP__RUNNING,     /* started, not reaped */
    MP__REAPED,      /* exit status known (or lost to another reaper) */
} mp__pstate;

typedef enum mp__pkind {
    MP__KIND_CHILD = 0, /* made by mp_process_create */
    MP__KIND_SELF,      /* the MainProcess object */
    MP__KIND_PARENT,    /* the parent, seen from a child */
} mp__pkind;

struct mp_process {
    pthread_mutex_t mu; /* guards state, exitcode, sentinel, closed */
    mp__pkind kind;
    mp__pstate state;
    bool closed;
    bool status_lost; /* reaped by someone else: exit code unknown */
    int exitcode;
    pid_t pid;
    pid_t owner;  /* the process that started it: the only one that may reap */
    int sentinel; /* pidfd, or the read end of the fallback pipe */
    bool sentinel_is_pidfd;
    /* forkserver: the server releases its children at once, and the exit
     * code is read from the pidfd (mp__pidfd_exit_code), not sent */
    bool exit_by_pidfd;
    uint32_t server_gen; /* forkserver: which server of its parent started it */

    mp_target_fn target;
    void *args; /* owned copy when args_owned */
    size_t args_len;
    bool args_owned;
    mp_run_fn run;
    void *user;
    bool daemon;
    double grace;
    double start_timeout; /* seconds; the default already put in */
    int pass_fds[MP_PASS_FDS_MAX];
    size_t n_pass_fds;
    mp_start_method method;
    char ident[MP__IDENT_MAX]; /* "1", "1:2": Python's _identity */
    char name[MP__NAME_MAX];

    /* Links in this process's list of running children (process/registry.c). */
    struct mp_process *next, *prev;
    bool linked;
};

/* process/process.c */
/* Check (without blocking) whether the child exited; reap it if so.
 * Returns 1 if reaped (now or before), 0 if still running. Takes p->mu. */
int mp__process_try_reap(mp_process *p);
/* Send sig unless the child was already reaped. Takes p->mu. */
int mp__process_signal(mp_process *p, int sig);
/* The body of every child, in the child (after a fork, or in a spawned
 * image or a child of the fork server once p is rebuilt from its start
 * message): become p, run its target, deal with its own children, flush
 * stdio and exit with the target's code. parent_name: NULL after a fork
 * (the parent's object is in our copy of its memory), the name sent by the
 * parent otherwise. */
_Noreturn void mp__process_child_main(mp_process *p, pid_t ppid, const char *parent_name);

/* process/registry.c: calls nothing above it. */
/* Registers the registry's fork handler once (linking does it too). */
void mp__registry_init(void);
void mp__registry_link(mp_process *p);
void mp__registry_unlink(mp_process *p);
/* The linked children, into a malloc'd array (*out; NULL when none):
 * returns how many, or MP_ENOMEM. The registry lock is not held after it
 * (a check of a child may unlink it), so the array is valid only while no
 * other thread destroys those objects, which the API documents. */
int mp__registry_snapshot(mp_process ***out);
/* Assign the next identity ("N" or "<self>:N") to a new process. */
void mp__next_identity(char *ident, size_t cap);
/* Called in the child right after its start: reset the registry, become
 * p (parent_name as for mp__process_child_main). */
void mp__registry_child_init(mp_process *p, pid_t ppid, const char *parent_name);
bool mp__is_current(const mp_process *p);

#endif /* MULTIPROC_PROCESS_INTERNAL_H */
