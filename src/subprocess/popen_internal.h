/* The inside of subprocess objects, shared by subprocess/popen.c (the object, waiting,
 * signals), subprocess/popen_plan.c (argv, environment and PATH resolved in the
 * parent), subprocess/popen_spawn.c (the child), subprocess/popen_io.c (communicate and the
 * pipe readers), subprocess/run.c and subprocess/pipeline.c. Not installed. */
#ifndef MULTIPROC_POPEN_INTERNAL_H
#define MULTIPROC_POPEN_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/internal.h"
#include "multiproc/popen.h"

/* Output gathered by communicate, kept across calls that time out. */
typedef struct mp__buf {
    char *data;
    size_t len, cap;
} mp__buf;

/* The state of a communicate: fds of the parent's pipe ends (-1 when not
 * used), how much input was written, and the output so far. */
typedef struct mp__comm {
    int in_fd, out_fd, err_fd;
    bool pipe[3]; /* which streams were pipes at the start */
    size_t in_off;
    mp__buf out, err;
} mp__comm;

/* Everything the child needs, prepared by the parent, so that the child
 * only makes system calls (it may share the parent's memory). */
typedef struct mp__spawn {
    const char *prog; /* the program as named (for exec failure records) */
    char *const *argv;
    char **paths; /* candidates to execve, in order */
    size_t n_paths;
    bool searched; /* the paths come from a PATH search */
    char *const *envp;
    const char *cwd;
    int src_fd[3];            /* fd to place at 0, 1, 2; -1: none (or open_path) */
    const char *open_path[3]; /* path to open for 0, 1, 2; NULL: none */
    int open_flags[3];
    bool err_to_out;
    const int *pass_fds;
    size_t n_pass_fds;
    bool close_fds;
    int session; /* 0: none, 1: setsid, 2: setpgid(0, pgid) */
    pid_t pgid;
    bool set_umask;
    mode_t umask;
    bool die_with_parent; /* arm PR_SET_PDEATHSIG(SIGKILL) */
    bool restore_signals; /* SIGPIPE and SIGXFSZ back to SIG_DFL */
    pid_t parent;         /* our pid, taken before the spawn */
    sigset_t mask;        /* the caller's mask, restored before exec */
    int report_fd;        /* fork path: write end of the CLOEXEC report pipe */
    mp_exec_error fail;   /* written by the child on failure */
} mp__spawn;

/* The parent's plan: mp__spawn plus the memory behind its pointers. */
typedef struct mp__plan {
    mp__spawn s;
    char **argv_own; /* argv with the shell prefix (only pointers owned) */
    char **envp_own; /* merged environment (only pointers owned) */
    char *path_mem;  /* the candidate paths, one block */
    int pipes[3][2]; /* pipes for MP_IO_PIPE streams: [i][0] read, [i][1] write */
} mp__plan;

struct mp_popen {
    pid_t pid;
    pid_t owner;
    int pidfd; /* -1 without pidfd support */
    bool reaped;
    int returncode;
    bool leads_group;
    bool kill_on_timeout;
    bool expired;
    mp__deadline life; /* ns < 0: no lifetime */
    mp__comm comm;
};

/* subprocess/popen_plan.c: validate opts and fill a plan (pipes created). pgid: for
 * pipelines, the group to join (0: as opts say). */
int mp__plan_init(mp__plan *pl, const char *const *argv, const mp_popen_opts *o, pid_t pgid);
void mp__plan_free(mp__plan *pl);
void mp__exec_error_set(mp_exec_error *e, mp_spawn_step step, int error, const char *path);

/* subprocess/popen_spawn.c: start the child. Returns its pid (> 0) or an error
 * with s->fail filled; on failure no child remains. */
int mp__spawn_child(mp__spawn *s, pid_t *pid);

/* subprocess/popen.c */
int mp__popen_create(mp_popen **out, const char *const *argv, const mp_popen_opts *o, pid_t pgid);
/* Reap if exited, waiting until d. 0 reaped, MP_ETIMEDOUT still running;
 * MP_EINTR or MP_ECANCELED under the thread's interrupt settings (not
 * reaped). */
int mp__popen_wait(mp_popen *p, const mp__deadline *d);
/* SIGKILL (the group if it leads one) and reap. */
void mp__popen_kill_reap(mp_popen *p);
int mp__popen_check_owner(const mp_popen *p);
/* mp__deadline_init, with an error detail naming fn for a NaN timeout. */
int mp__popen_deadline(mp__deadline *d, double timeout, const char *fn);
/* The earlier of d and the lifetime deadline. */
mp__deadline mp__popen_cap(const mp_popen *p, const mp__deadline *d);

/* subprocess/popen_io.c: run a communicate until done (0) or d (MP_ETIMEDOUT).
 * Closes in_fd once the input is written. intr: the thread's interrupt
 * settings apply to its waits (MP_EINTR, MP_ECANCELED: what was written and
 * read so far stays in c, for a later call to continue). */
int mp__comm_run(mp__comm *c, const void *input, size_t len, const mp__deadline *d, bool intr);
/* Hand the output to the caller: a copy when keep, else the buffer itself. */
int mp__comm_take(mp__buf *b, bool keep, char **out, size_t *len);
void mp__comm_free(mp__comm *c);
/* Make the parent's ends non-blocking and note which exist. */
int mp__comm_init(mp__comm *c);
/* Read up to cap bytes from fd / write up to len to fd, never raising
 * SIGPIPE; waits until d, under the thread's interrupt settings. Count, 0
 * at end of file (read), or an error (MP_ETIMEDOUT, MP_EINTR, MP_ECANCELED
 * when nothing was read or written). */
ssize_t mp__pipe_read(int fd, void *buf, size_t cap, const mp__deadline *d);
ssize_t mp__pipe_write(int fd, const void *buf, size_t len, const mp__deadline *d);
/* The whole communicate of an mp_popen-like object once mp__comm_run
 * returned rc: hands the outputs over. */
int mp__comm_finish(mp__comm *c, bool keep, char **out, size_t *out_len, char **err,
                    size_t *err_len);
void mp__close_fd(int *fd);
/* Kill and reap the child, collect what its pipes already hold (never
 * waiting for more) and hand all its output over, as mp__comm_finish. */
int mp__popen_kill_collect(mp_popen *p, char **out, size_t *out_len, char **err, size_t *err_len);

#endif /* MULTIPROC_POPEN_INTERNAL_H */
