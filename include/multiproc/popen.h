/* multiproc — running programs (Python's subprocess).
 *
 *     mp_popen *p;
 *     const char *argv[] = {"sort", NULL};
 *     mp_popen_create(&p, argv, &(mp_popen_opts){.in = MP_PIPE, .out = MP_PIPE});
 *     char *out; size_t len;
 *     mp_popen_communicate(p, "b\na\n", 4, &out, &len, NULL, NULL, 5.0);
 *     int code;
 *     mp_popen_returncode(p, &code);          // 0; out = "a\nb\n"
 *     free(out);
 *     mp_popen_destroy(p);
 *
 *     mp_run_result r;
 *     mp_run((const char *[]){"ls", "-l", NULL},
 *            &(mp_run_opts){.capture = true, .check = true, .timeout = 10}, &r);
 *     mp_run_result_free(&r);
 *
 * Spawning: the child is made with clone(CLONE_VM | CLONE_VFORK), the way
 * posix_spawn works, so a parent with a large memory spawns as fast as a
 * small one (fork would copy its page tables). The child runs only
 * async-signal-safe code between clone and exec: it arms
 * PR_SET_PDEATHSIG when asked (die_with_parent), resets caught signals
 * to their default (and SIGPIPE and SIGXFSZ even when ignored, unless
 * keep_ignored_signals: Python's restore_signals), restores the caller's signal mask (all signals
 * are blocked across the spawn), sets up the session, umask, stdio, close-on- exec flags and
 * directory, and execs. Builds with AddressSanitizer or ThreadSanitizer use fork for the same child
 * code, because a sanitizer's runtime cannot share its memory with a second process.
 *
 * Exec failures: when any step of the child fails (open of a stdio path,
 * dup2, chdir, setsid, exec, ...), mp_popen_create returns that step's error
 * (MP_ENOENT for a missing program, MP_EACCES for a file that is not
 * executable, ...) and, if asked through opts->exec_error, a record
 * {step, error, path}: never a mysterious exit code 127. No child remains.
 *
 * Waiting: by pidfd (waitid(P_PIDFD)), never waitpid(-1), no SIGCHLD
 * handler. Return codes have Python's meaning: 0..255 for an exit, -signal
 * for a child killed by a signal.
 *
 * Every fd the library creates is close-on-exec; by default the child
 * inherits only 0, 1, 2 and the pass_fds.
 *
 * Interrupts (multiproc/interrupt.h): every call that waits (mp_popen_wait,
 * mp_popen_communicate, mp_popen_read, mp_popen_write, mp_run and the
 * helpers over it, mp_pipeline_wait, mp_pipeline_communicate) honours the
 * calling thread's settings: MP_EINTR when a signal handler ran during
 * the wait and the thread opted in, MP_ECANCELED once its mp_cancel is
 * triggered. What holds then is said at each call; in short, a wait reaps
 * nothing and a communicate keeps its progress for the next call, while
 * mp_run, which leaves nothing to resume, kills and reaps its child. A
 * call that can proceed without waiting does, even with its cancel
 * triggered. With either setting on, a wait without a timeout polls the
 * pidfd instead of blocking in waitid. Not interruptible: the kills (after
 * a timeout or the lifetime, mp_pipeline_kill, the destroys), which wait
 * for the child to die as mp_process_terminate does, and mp_popen_create,
 * which waits only for the exec.
 *
 * Every MP_EINVAL of this module names the argument (or option) in
 * mp_error_detail() (multiproc/error.h).
 *
 * Thread safety: an mp_popen or mp_pipeline must be used by one thread at a
 * time (several objects may be used, and created, from several threads at
 * once). Across processes and fork: only the process that created the child
 * may wait for it, signal it or read its pipes (others get MP_EPERM).
 */
#ifndef MULTIPROC_POPEN_H
#define MULTIPROC_POPEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "multiproc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_popen mp_popen;
typedef struct mp_pipeline mp_pipeline;

/* What one of the child's standard streams is connected to. */
typedef enum mp_io_kind {
    MP_IO_INHERIT = 0, /* the parent's own fd (default) */
    MP_IO_PIPE,        /* a pipe to the parent (Python's PIPE) */
    MP_IO_DEVNULL,     /* /dev/null */
    MP_IO_FD,          /* the caller's fd .fd (borrowed until create returns) */
    MP_IO_PATH,        /* the file .path, opened by the child with .mode */
    MP_IO_STDOUT,      /* stderr only: the same as stdout (Python's STDOUT) */
} mp_io_kind;

/* How an MP_IO_PATH file is opened. The default reads for stdin, and for
 * stdout/stderr creates or truncates (mode 0666 minus the umask). */
typedef enum mp_path_mode {
    MP_PATH_DEFAULT = 0,
    MP_PATH_READ,
    MP_PATH_WRITE,  /* create or truncate */
    MP_PATH_APPEND, /* create or append */
} mp_path_mode;

typedef struct mp_io {
    mp_io_kind kind;
    int fd;           /* MP_IO_FD */
    const char *path; /* MP_IO_PATH; borrowed until create returns */
    mp_path_mode mode;
} mp_io;

#define MP_PIPE           ((mp_io){.kind = MP_IO_PIPE})
#define MP_DEVNULL        ((mp_io){.kind = MP_IO_DEVNULL})
#define MP_TO_STDOUT      ((mp_io){.kind = MP_IO_STDOUT})
#define MP_USE_FD(f)      ((mp_io){.kind = MP_IO_FD, .fd = (f)})
#define MP_USE_PATH(p, m) ((mp_io){.kind = MP_IO_PATH, .path = (p), .mode = (m)})

/* The step of the child's set-up that failed. */
typedef enum mp_spawn_step {
    MP_STEP_NONE = 0,  /* nothing failed */
    MP_STEP_SESSION,   /* setsid or setpgid ("session") */
    MP_STEP_OPEN,      /* opening a stdio path (or /dev/null) */
    MP_STEP_DUP2,      /* placing a stdio fd */
    MP_STEP_CLOSE_FDS, /* marking inherited fds close-on-exec */
    MP_STEP_PASS_FDS,  /* keeping a pass_fds entry open */
    MP_STEP_CHDIR,     /* changing to cwd */
    MP_STEP_EXEC,      /* execve of every candidate path */
    MP_STEP_SPAWN,     /* clone/fork itself (in the parent) */
    MP_STEP_PDEATHSIG, /* prctl(PR_SET_PDEATHSIG) for die_with_parent */
} mp_spawn_step;

/* Why a child could not be started. */
typedef struct mp_exec_error {
    mp_spawn_step step;
    int error;      /* negative code: MP_ENOENT, MP_EACCES, ... */
    char path[256]; /* the file or directory concerned ("" if none), truncated */
} mp_exec_error;

/* mp_spawn_step_name — "chdir", "exec", ... for a step; "?" if unknown. */
MP_API const char *mp_spawn_step_name(mp_spawn_step step);

typedef struct mp_popen_opts {
    /* Run argv[0] through "/bin/sh -c"; argv[1..] become $0, $1, ... */
    bool shell;
    /* Program to execute instead of argv[0] (which stays the child's
     * argv[0]); with shell, the shell to use. Searched in PATH when it has
     * no '/'. Borrowed until create returns, like every pointer here. */
    const char *executable;
    /* Directory of the child; relative stdio paths are opened before it. */
    const char *cwd;
    /* Environment: "KEY=value" strings, NULL-terminated. env replaces the
     * parent's; env_add adds to (or overrides in) env or the parent's. The
     * program is searched in the PATH of the resulting environment. */
    char *const *env;
    char *const *env_add;
    /* The child's stdin, stdout, stderr. */
    mp_io in, out, err;
    /* fds (>= 3) the child keeps, at the same numbers, inheritable (Python's
     * pass_fds); every other fd above 2 is closed in the child unless
     * inherit_fds. Each must be open; a negative, 0-2 or repeated entry
     * is MP_EINVAL (nothing started). */
    const int *pass_fds;
    size_t n_pass_fds;
    /* Keep every inheritable fd of the parent (Python's close_fds=False).
     * Default: the child gets only 0, 1, 2 and pass_fds. */
    bool inherit_fds;
    /* setsid() in the child (it leads a new session and process group), or
     * only a new process group (setpgid(0, 0)). At most one. */
    bool new_session;
    bool process_group;
    /* umask of the child, when set_umask is true. */
    bool set_umask;
    mode_t umask;
    /* Seconds the child may live (0: no limit). Once passed, any wait,
     * poll or communicate kills it (its group with new_session or
     * process_group) and reaps it: its return code is then -SIGKILL. */
    double lifetime;
    /* When communicate times out: kill the child (its whole process group
     * with new_session or process_group), reap it, then return
     * MP_ETIMEDOUT with the partial output. Default: leave it running. */
    bool kill_on_timeout;
    /* SIGKILL the child when its parent dies, even by SIGKILL. Default
     * false: like Python's Popen, the program runs on after its parent
     * (reparented to init). The child arms PR_SET_PDEATHSIG before anything
     * else, then compares getppid() with the parent's pid taken before the
     * spawn, so a parent that died in between is noticed too. Two limits
     * of Linux: the signal comes when the *thread* that created the child
     * exits, not only the whole process (create such children from a
     * thread that lives as long as they should, e.g. the main thread); and
     * the kernel clears it when the program exec'd is set-user-ID or
     * set-group-ID or gains capabilities (such a program outlives its
     * parent). Only the child itself is killed, not its own children. */
    bool die_with_parent;
    /* Python's restore_signals=False. By default (restore_signals=True)
     * the child sets SIGPIPE and SIGXFSZ back to SIG_DFL before exec even
     * when this process ignores them, so that a program writing to a
     * closed pipe dies of SIGPIPE as in a shell (`yes | head -1` ends)
     * instead of seeing EPIPE; Linux has no SIGXFZ. true: the child keeps
     * every ignored signal ignored, as posix_spawn does. */
    bool keep_ignored_signals;
    /* Filled when create fails because the child could not start; may be
     * NULL. Owned by the caller. */
    mp_exec_error *exec_error;
} mp_popen_opts;

/* mp_popen_create — start a program (Python's Popen).
 *
 * argv: the program and its arguments, NULL-terminated; borrowed until
 *       return. argv[0] is searched in PATH unless it contains a '/'.
 * opts: NULL for defaults; borrowed until return.
 * Returns 0 with *out owned by the caller (mp_popen_destroy). Errors:
 * MP_EINVAL (NULL out, NULL or empty argv, an unknown io kind or path mode,
 * MP_IO_STDOUT for stdin/stdout, a NULL path, pass_fds below 3 (negative
 * included), repeated, or NULL with a count, new_session with process_group, a NaN or negative
 * lifetime), MP_EBADF (an MP_IO_FD or pass_fds entry that is not open), MP_ENOMEM, MP_EMFILE,
 * MP_EAGAIN (no more processes), and the error of a failed child step (MP_ENOENT, MP_EACCES,
 * MP_ENOTDIR, MP_ENOEXEC, ...), described in opts->exec_error. On failure no child and no fd
 * remain. Thread safety: may run from several threads at once.
 */
MP_API int mp_popen_create(mp_popen **out, const char *const *argv, const mp_popen_opts *opts);

/* mp_popen_communicate — send input, read stdout and stderr to their end,
 * and wait for the child (Python's communicate).
 *
 * input, len: written to the child's stdin pipe, which is then closed
 *      (borrowed until return; NULL with 0 just closes it). Input with no
 *      stdin pipe is MP_EINVAL.
 * out, out_len / err, err_len: receive what the child wrote to its stdout /
 *      stderr pipe: a malloc'd buffer, NUL-terminated (not counted in the
 *      length), owned by the caller; NULL and 0 when that stream is not a
 *      pipe. Each pointer may be NULL: that output is then read and dropped.
 * timeout: seconds for the whole call.
 * All pipes are polled together, so nothing deadlocks whatever the sizes.
 * Returns 0 once the outputs reached end of file and the child exited (its
 * return code is then known), or MP_ETIMEDOUT with the output so far in
 * *out / *err. After a timeout, without kill_on_timeout, the child runs on:
 * calling communicate again with the same input continues where the first
 * call stopped and returns the whole output. With kill_on_timeout, the
 * child (or its group) is killed and reaped first. Other errors: MP_EPERM
 * (not the creator), MP_ENOMEM, MP_EIO; MP_EINTR, MP_ECANCELED under the
 * interrupt settings: *out and *err are not set and kill_on_timeout does
 * not apply, but the input written and the output read so far are kept,
 * so that calling again with the same input continues, as after a
 * timeout, and returns the whole output.
 */
MP_API int mp_popen_communicate(mp_popen *p, const void *input, size_t len, char **out,
                                size_t *out_len, char **err, size_t *err_len, double timeout);

/* mp_popen_wait — wait for the child to exit and reap it.
 *
 * code: receives the return code (may be NULL).
 * Returns 0, MP_ETIMEDOUT (still running; nothing is killed), MP_EPERM;
 * MP_EINTR, MP_ECANCELED under the interrupt settings (the child is not
 * reaped, *code is not set: wait again).
 * The pipes are not read: a child blocked on a full pipe never exits, use
 * communicate for children with output pipes.
 */
MP_API int mp_popen_wait(mp_popen *p, double timeout, int *code);

/* mp_popen_poll — reap the child if it has exited, without blocking.
 * Returns 0 with *code set (may be NULL), MP_ERUNNING, MP_EPERM. */
MP_API int mp_popen_poll(mp_popen *p, int *code);

/* mp_popen_returncode — the return code as last seen by wait, poll or
 * communicate (no system call). 0 with *code, or MP_ERUNNING. */
MP_API int mp_popen_returncode(const mp_popen *p, int *code);

/* mp_popen_send_signal — signal the child (by pidfd: never a recycled pid).
 * A child that has exited receives nothing (success). Errors: MP_EINVAL
 * (bad signal), MP_EPERM. terminate is SIGTERM, kill is SIGKILL; neither
 * waits. */
MP_API int mp_popen_send_signal(mp_popen *p, int sig);
MP_API int mp_popen_terminate(mp_popen *p);
MP_API int mp_popen_kill(mp_popen *p);

/* mp_popen_signal_group — signal the child's whole process group; the child
 * must have been made with new_session or process_group (else MP_EINVAL).
 * A group with no member left is not an error. */
MP_API int mp_popen_signal_group(mp_popen *p, int sig);

/* mp_popen_read — read up to cap bytes from the child's stdout (which = 1)
 * or stderr (which = 2) pipe. Returns the count (> 0), 0 at end of file,
 * MP_ETIMEDOUT, MP_EBADF (that stream is not a pipe, or it was closed),
 * MP_EINVAL, MP_EPERM; MP_EINTR, MP_ECANCELED under the interrupt settings
 * (nothing read). */
MP_API ssize_t mp_popen_read(mp_popen *p, int which, void *buf, size_t cap, double timeout);

/* mp_popen_write — write to the child's stdin pipe. Returns len once all is
 * written, the count written so far if the timeout expires after some
 * bytes, MP_ETIMEDOUT if none, MP_EPIPE (the child closed its stdin),
 * MP_EBADF (no stdin pipe), MP_EPERM. Under the interrupt settings the
 * same: the count written so far when a signal or the cancel stops it
 * after some bytes (as write() after a signal), MP_EINTR or MP_ECANCELED
 * if none. */
MP_API ssize_t mp_popen_write(mp_popen *p, const void *data, size_t len, double timeout);

/* mp_popen_close_stdin — close the stdin pipe so the child sees end of file.
 * Closing twice returns 0. */
MP_API int mp_popen_close_stdin(mp_popen *p);

/* Accessors. fd: the parent's end of the pipe for 0 (stdin), 1, 2; -1 when
 * not a pipe or closed; owned by the object (do not close it); it is
 * close-on-exec and non-blocking (O_NONBLOCK: poll before a read or write,
 * or use mp_popen_read/mp_popen_write). sentinel: a pidfd readable when the child exits (for
 * mp_wait with MP_WAIT_FD), -1 without pidfd support. lifetime_expired:
 * the child was killed because its lifetime passed. */
MP_API pid_t mp_popen_pid(const mp_popen *p);
MP_API int mp_popen_fd(const mp_popen *p, int which);
MP_API int mp_popen_sentinel(const mp_popen *p);
MP_API bool mp_popen_lifetime_expired(const mp_popen *p);

/* mp_popen_destroy — close the pipes and free. A child still running is
 * killed (SIGKILL) and reaped, so no zombie remains: wait first to let it
 * finish. NULL is a no-op. */
MP_API void mp_popen_destroy(mp_popen *p);

/* ---- conveniences (Python's run, call, check_call, ...) ---------------- */

typedef struct mp_run_opts {
    /* Everything of Popen. With capture, out and err must be left inherit;
     * with input, in must be left inherit. */
    mp_popen_opts popen;
    /* Bytes for the child's stdin (borrowed until return). */
    const void *input;
    size_t input_len;
    /* Capture stdout and stderr (Python's capture_output). */
    bool capture;
    /* A non-zero return code makes mp_run return MP_ECALLEDPROCESS. */
    bool check;
    /* Seconds for the whole run; 0 (the default) or negative: no limit.
     * When it passes, the child (its group with new_session or
     * process_group) is killed and reaped: MP_ETIMEOUTEXPIRED. */
    double timeout;
} mp_run_opts;

typedef struct mp_run_result {
    int returncode;           /* -signal when killed; valid unless create failed */
    char *out, *err;          /* captured output, NUL-terminated, or NULL; free() */
    size_t out_len, err_len;  /* lengths without the NUL */
    mp_exec_error exec_error; /* step MP_STEP_NONE unless the child failed to start */
} mp_run_result;

/* mp_run — run a program to its end (Python's subprocess.run).
 *
 * argv: as mp_popen_create. opts: NULL for defaults. res: filled in every
 * case (zeroed first), release with mp_run_result_free.
 * Returns 0 when the program ran (whatever its return code unless check),
 * MP_ECALLEDPROCESS (check and a non-zero return code: Python's
 * CalledProcessError; the output is in res), MP_ETIMEOUTEXPIRED (Python's
 * TimeoutExpired: killed and reaped, partial output in res), the errors of
 * mp_popen_create (res->exec_error says which step failed), MP_EINVAL
 * (conflicting options, NULL res), MP_EINTR, MP_ECANCELED (the interrupt
 * settings: as Python's run on KeyboardInterrupt, the child, or its group
 * with new_session or process_group, is killed and reaped; the output so
 * far and the return code, -SIGKILL unless it had exited, are in res).
 * mp_call, mp_check_call, mp_check_output, mp_getstatusoutput and
 * mp_getoutput run through mp_run and return these two codes the same way
 * (their outputs are then not set).
 */
MP_API int mp_run(const char *const *argv, const mp_run_opts *opts, mp_run_result *res);

/* mp_run_result_free — free the buffers of a result and zero it. */
MP_API void mp_run_result_free(mp_run_result *res);

/* mp_run_describe — the text of Python's CalledProcessError for a command
 * and its return code, into buf (NUL-terminated, truncated to cap like
 * snprintf):
 *     Command 'false' returned non-zero exit status 1.
 *     Command 'sleep 9' died with <Signals.SIGKILL: 9>.
 * argv: the command (borrowed until return), its words joined by spaces;
 * for a shell command, {cmd, NULL}. returncode: as mp_run_result's (a
 * negative one is the signal that killed the program; a signal Python
 * has no name for gives "died with unknown signal N."). Returns the
 * length of the whole text (without the NUL; cap too small: the text is
 * cut, as snprintf), or MP_EINVAL (NULL or empty argv, NULL buf with a
 * cap). Thread-safe; allocates nothing. */
MP_API int mp_run_describe(const char *const *argv, int returncode, char *buf, size_t cap);

/* mp_call — run and give the return code (Python's call). opts: as for
 * mp_popen_create (NULL for defaults). timeout: as mp_run_opts.timeout.
 * returncode: required (MP_EINVAL if NULL). Errors as mp_run. */
MP_API int mp_call(const char *const *argv, const mp_popen_opts *opts, double timeout,
                   int *returncode);

/* mp_check_call — run; 0 only for a return code of 0, else
 * MP_ECALLEDPROCESS (Python's check_call). returncode may be NULL. */
MP_API int mp_check_call(const char *const *argv, const mp_popen_opts *opts, double timeout,
                         int *returncode);

/* mp_check_output — run and capture stdout (Python's check_output).
 * out, len: receive the output (NUL-terminated, free()), also with
 * MP_ECALLEDPROCESS; len may be NULL. */
MP_API int mp_check_output(const char *const *argv, const mp_popen_opts *opts, double timeout,
                           char **out, size_t *len);

/* mp_getstatusoutput / mp_getoutput — run cmd through the shell with
 * stderr merged into stdout; the output without its last newline
 * (NUL-terminated, free()). status receives the return code. */
MP_API int mp_getstatusoutput(const char *cmd, int *status, char **out);
MP_API int mp_getoutput(const char *cmd, char **out);

/* ---- pipelines: a | b | c ----------------------------------------------- */

typedef struct mp_pipeline_opts {
    /* stdin of the first stage, stdout of the last, stderr of every stage
     * (MP_IO_PIPE there: one pipe all stages write to). */
    mp_io in, out, err;
    const char *cwd;
    char *const *env;
    char *const *env_add;
    /* Put every stage in one new process group (led by the first stage),
     * so that a kill reaches their children too. */
    bool process_group;
    /* When communicate or wait times out, kill every stage (the group with
     * process_group) and reap them all. */
    bool kill_on_timeout;
    /* Every stage gets mp_popen_opts.die_with_parent (see there; default
     * false: the stages outlive a parent that dies). */
    bool die_with_parent;
    /* Every stage gets mp_popen_opts.keep_ignored_signals (default false:
     * SIGPIPE and SIGXFSZ are reset to SIG_DFL in every stage). */
    bool keep_ignored_signals;
    /* Filled when a stage could not start; the stage's index in *failed_stage
     * (both may be NULL). */
    mp_exec_error *exec_error;
    size_t *failed_stage;
} mp_pipeline_opts;

/* mp_pipeline_create — start stages[0] | stages[1] | ... | stages[n-1].
 *
 * stages: n argv arrays (each as for mp_popen_create), borrowed until
 * return. n: 1..256. Returns 0 with *out owned by the caller. Errors as
 * mp_popen_create; when a stage fails to start, the stages already started
 * are killed and reaped: nothing remains.
 */
MP_API int mp_pipeline_create(mp_pipeline **out, const char *const *const *stages, size_t n,
                              const mp_pipeline_opts *opts);

/* mp_pipeline_communicate — like mp_popen_communicate for the whole
 * pipeline: input goes to the first stage, out is the last stage's stdout,
 * err the shared stderr pipe; returns once every stage exited. One timeout
 * covers everything; with kill_on_timeout every stage is killed and reaped
 * before MP_ETIMEDOUT is returned. MP_EINTR, MP_ECANCELED: as for
 * mp_popen_communicate (nothing handed over, all kept for the next call). */
MP_API int mp_pipeline_communicate(mp_pipeline *pl, const void *input, size_t len, char **out,
                                   size_t *out_len, char **err, size_t *err_len, double timeout);

/* mp_pipeline_wait — wait until every stage exited. MP_ETIMEDOUT when the
 * timeout passes first (then, with kill_on_timeout, all are killed).
 * MP_EINTR, MP_ECANCELED under the interrupt settings: the stages reaped
 * before stay reaped, the others are not; wait again. */
MP_API int mp_pipeline_wait(mp_pipeline *pl, double timeout);

/* mp_pipeline_kill — SIGKILL every stage (and the group) and reap them. */
MP_API int mp_pipeline_kill(mp_pipeline *pl);

/* mp_pipeline_status — return code of stage i (0 with *code, MP_ERUNNING,
 * MP_EINVAL for a bad index). */
MP_API int mp_pipeline_status(const mp_pipeline *pl, size_t i, int *code);

/* mp_pipeline_returncode — pipefail: the return code of the last stage that
 * failed (non-zero), else 0. MP_ERUNNING while a stage runs. */
MP_API int mp_pipeline_returncode(const mp_pipeline *pl, int *code);

/* mp_pipeline_size / mp_pipeline_stage — the number of stages, and stage i
 * as an mp_popen owned by the pipeline (NULL for a bad index). */
MP_API size_t mp_pipeline_size(const mp_pipeline *pl);
MP_API mp_popen *mp_pipeline_stage(mp_pipeline *pl, size_t i);

/* mp_pipeline_destroy — close the pipes, kill and reap the stages still
 * running, free. NULL is a no-op. */
MP_API void mp_pipeline_destroy(mp_pipeline *pl);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_POPEN_H */
