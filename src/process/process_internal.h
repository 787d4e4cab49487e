/* The process object and the parts of the process module shared between
 * process/process.c (the API), process/process_fork.c (fork, pidfd, reaping) and
 * process/registry.c (this process's children, current and parent objects). */
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

/* process/start_method.c: start p by its method (fork, spawn or forkserver), by
 * the deadline d (which fork, never blocking, does not need). */
int mp__process_launch(mp_process *p, const mp__deadline *d);

/* process/process_fork.c */
int mp__process_fork(mp_process *p);
/* Check (without blocking) whether the child exited; reap it if so.
 * Returns 1 if reaped (now or before), 0 if still running. Takes p->mu. */
int mp__process_try_reap(mp_process *p);
/* Send sig unless the child was already reaped. Takes p->mu. */
int mp__process_signal(mp_process *p, int sig);
/* Open a pidfd for pid, or -1 with the fallback in use (or on error). */
int mp__pidfd_open(pid_t pid);
/* The exit code that the kernel keeps with a pidfd once its process is
 * released (PIDFD_INFO_EXIT, Linux 6.15): 1 with *code, 0 while it is not
 * there (the process runs, or is a zombie nobody reaped yet), or -errno
 * (ENOTTY, EINVAL: the kernel is older). */
int mp__pidfd_exit_code(int pidfd, int *code);
/* True when pidfds work here (probed once; MP_DISABLE_PIDFD=1 forces the
 * fallback, for tests). */
bool mp__pidfd_supported(void);
/* The child side after fork: never returns. */
_Noreturn void mp__child_main(mp_process *p, pid_t ppid, int fallback_wfd);

/* process/registry.c */
void mp__registry_link(mp_process *p);
void mp__registry_unlink(mp_process *p);
/* Assign the next identity ("N" or "<self>:N") to a new process. */
void mp__next_identity(char *ident, size_t cap);
/* Called in the child right after fork: reset the registry, become p. */
/* parent_name: NULL after a fork (the parent's object is in our copy of its
 * memory), the name sent by the parent after spawn. */
void mp__registry_child_init(mp_process *p, pid_t ppid, const char *parent_name);
/* Terminate daemon children, join the others (at exit, like Python). */
void mp__registry_exit_cleanup(void);
/* Register the atexit handler once. */
void mp__registry_ensure_atexit(void);
bool mp__is_current(const mp_process *p);

#endif /* MULTIPROC_PROCESS_INTERNAL_H */
