/* multiproc — processes (Python's multiprocessing.Process).
 *
 *     static int run_proc(const void *arg, size_t len)
 *     {
 *         printf("child %s (%d)\n", (const char *)arg, getpid());
 *         return 0;                      // the exit code
 *     }
 *
 *     mp_process *p;
 *     mp_process_create(&p, &(mp_process_opts){ .target = run_proc,
 *                                               .args = "test", .args_len = 5 });
 *     mp_process_start(p);
 *     mp_process_join(p, MP_FOREVER);
 *     int code;
 *     mp_process_exitcode(p, &code);     // 0
 *     mp_process_destroy(p);
 *
 * A process runs either a `target` with its argument bytes, or a `run`
 * callback that receives the process object itself and a user pointer (the
 * C form of subclassing Process and overriding run()). The return value of
 * either is the exit code (0..255). A child that is killed by a signal, or
 * crashes, has the exit code -signal, like Python.
 *
 * Life cycle: create -> start -> (join | terminate | kill) -> close/destroy.
 * The library reaps only its own children (never waitpid(-1)), installs no
 * signal handler, and leaves no zombie: a finished child is reaped by the
 * first call that notices it (join, is_alive, exitcode, mp_active_children,
 * mp_wait), and destroying a running process terminates it first.
 *
 * No orphans: every child is started with PR_SET_PDEATHSIG(SIGKILL), armed
 * right after fork and followed by a getppid() check, so a child dies with
 * its parent even if the parent is killed. Linux sends that signal when the
 * *thread* that created the child exits: create processes from a thread that
 * outlives them (usually the main thread). At normal exit (exit() or return
 * from main), like Python, the library terminates daemon children and then
 * waits for the others.
 *
 * Output: stdout and stderr are flushed before fork and the child flushes all
 * stdio streams before it exits, so printf() in a target is never lost nor
 * printed twice.
 *
 * Thread safety: an mp_process may be used from several threads of its
 * parent at once. Across processes: only the parent that started a process
 * may join, signal or reap it (others get MP_EPERM). Across fork: a child
 * sees copies of its parent's mp_process objects; it may read them but they
 * are not its children.
 */
#ifndef MULTIPROC_PROCESS_H
#define MULTIPROC_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "multiproc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_process mp_process;

/* How a child is started (Python's start methods):
 *
 *  fork        the child is a copy of the parent (fast; any pointer of the
 *              parent is valid in the child). Unsafe in a multi-threaded
 *              parent: only the forking thread exists in the child, and a
 *              lock another thread held stays locked there forever.
 *  spawn       the child is a fresh image of the same program
 *              (/proc/self/exe), started with posix_spawn: nothing of the
 *              parent's state is inherited but the shared heap, which is
 *              mapped at the same address. The program's main() never runs
 *              in the child; the target runs from a library constructor
 *              (the program's own static constructors run before it).
 *              That constructor acts only on a start its parent really
 *              sent (MP_SPAWN_FD naming the parent's socket and carrying
 *              that start's random token): a program run by anyone else
 *              with MP_SPAWN_FD set runs main as usual, without it.
 *  forkserver  a fork server (a spawned image with a single thread,
 *              started on first use) forks the child: as safe as spawn in
 *              a threaded program, nearly as fast as fork. The server
 *              ignores SIGINT (a Ctrl-C at the terminal leaves it, and
 *              the children it would kill by dying, alone); its children
 *              get SIGINT back as the parent had it when the server
 *              started (ignored, or the default action), as under spawn.
 *
 * With spawn and forkserver the target (and run) must be a function of the
 * program or of a library it was linked with (not of one loaded later with
 * dlopen), and a pointer given as args (args_len == 0) or user must be
 * NULL, point into the shared heap, or point into a module's static data;
 * anything else (stack, malloc) is MP_EINVAL at start. Argument bytes
 * (args_len > 0) are copied in every method. */
typedef enum mp_start_method {
    MP_START_DEFAULT = 0, /* the process-wide default: mp_get_start_method() */
    MP_START_FORK = 1,
    MP_START_SPAWN = 2,
    MP_START_FORKSERVER = 3,
} mp_start_method;

/* target: runs in the child with the argument given at create time.
 * Returns the exit code (0..255). */
typedef int (*mp_target_fn)(const void *arg, size_t len);

/* run: the subclass form; receives the child's copy of the process object
 * (so it can read mp_process_name(self), mp_process_pid(self)) and the user
 * pointer. Returns the exit code (0..255). */
typedef int (*mp_run_fn)(mp_process *self, void *user);

typedef struct mp_process_opts {
    /* Exactly one of target and run must be set, else MP_EINVAL. */
    mp_target_fn target;
    /* Argument of target. With args_len > 0 the bytes are copied at create
     * time (borrowed until mp_process_create returns). With args_len == 0,
     * args is passed to the target as it is: any pointer works with the fork
     * start method, since the child is a copy of the parent. */
    const void *args;
    size_t args_len;

    mp_run_fn run;
    void *user; /* passed to run; never dereferenced by the library */

    /* Name, copied; NULL gives Python's default "Process-N" (and "Process-N:M"
     * for the M-th child of Process-N). At most 255 bytes. */
    const char *name;
    /* Daemon: terminated when the parent exits normally, instead of waited for. */
    bool daemon;
    mp_start_method start_method;
    /* Seconds mp_process_terminate() waits after SIGTERM before SIGKILL;
     * 0 means the default, 3 seconds. Negative is MP_EINVAL. */
    double terminate_grace;
    /* File descriptors the child must have, at the same numbers, whatever
     * the start method (copied at create; at most MP_PASS_FDS_MAX). A forked
     * child has all of its parent's fds anyway; a spawned child has those not
     * marked close-on-exec; a forkserver child has only 0, 1, 2 (the
     * server's) and these. Each must be open at start, under every method
     * (else MP_EBADF, and nothing is started). */
    const int *pass_fds;
    size_t n_pass_fds;
    /* Seconds mp_process_start may take before it fails with MP_ETIMEDOUT:
     * under spawn, until the new image reports that it runs the target;
     * under forkserver, until the request is written for a spare child
     * (the server started first, if need be). 0 means the default, 10
     * seconds; negative or NaN is MP_EINVAL. A fork start never waits. */
    double start_timeout;
} mp_process_opts;

#define MP_PASS_FDS_MAX 64

/* mp_process_create — make a process object (nothing runs yet).
 *
 * out:  receives the object; owned by the caller, freed by mp_process_destroy.
 * opts: borrowed until return; NULL is MP_EINVAL (a target is needed).
 * Errors: MP_EINVAL (no or two callbacks, bad grace, name too long, unknown
 * start method), MP_ENOMEM.
 */
MP_API int mp_process_create(mp_process **out, const mp_process_opts *opts);

/* mp_process_start — start the child.
 *
 * Errors: MP_ESTARTED (already started), MP_ECLOSED, MP_EPERM (not a child
 * made by mp_process_create), MP_EAGAIN/MP_ENOMEM/MP_EMFILE (too many
 * processes, no memory, no fd left), MP_EBADF (an fd of pass_fds is not
 * open). Under spawn and forkserver also: MP_ETIMEDOUT (the start took
 * longer than start_timeout: the new image, stopped or stuck before its
 * target, was killed and reaped; under forkserver the server did not
 * answer, as when it is stopped: it is kept, with its running children,
 * and the next start asks it again),
 * MP_EINVAL (args or user is a pointer the child cannot see: neither in the
 * shared heap nor in a module's static data; mp_error_detail() names it),
 * MP_ENOTLOADED (the target's
 * or such a pointer's module was loaded with dlopen and the new image lacks
 * it), MP_EOTHERBUILD (the module is another build there), MP_EBOOT (the
 * new process died before running its target; forkserver: the server was
 * lost twice in a row), MP_ENOHEAPADDR (the shared heap's address is taken
 * there), MP_ENOSYS (forkserver without pidfds). On failure no child
 * exists. Under forkserver the call returns once the request is written
 * for a spare child forked ahead: a spare that cannot take it then
 * (killed from outside, out of memory) shows as a process killed or
 * exited with 255.
 */
MP_API int mp_process_start(mp_process *p);

/* mp_process_join — wait until the child exits and reap it.
 *
 * timeout: seconds; MP_FOREVER waits without limit, 0 only checks.
 * Returns 0 once the child has exited (mp_process_exitcode then tells how),
 * MP_ETIMEDOUT if it is still running when the timeout expires (or, under
 * forkserver on kernels before 6.15, if its exit code has not come from a
 * stopped server yet: such a call may overrun its timeout by 0.1 s),
 * MP_ENOTSTARTED, MP_ECLOSED, MP_EPERM (called from another process than the
 * parent), MP_EINVAL (p NULL, timeout NaN). Those are the only codes.
 * Joining an exited process again returns 0 at once.
 */
MP_API int mp_process_join(mp_process *p, double timeout);

/* mp_process_is_alive — true while the child is started and has not exited.
 * Reaps the child if it has exited. False before start and after close. */
MP_API bool mp_process_is_alive(mp_process *p);

/* mp_process_exitcode — the exit code, with Python's meaning.
 *
 * code: receives the exit status (0..255) or -signal if a signal ended it.
 * A forkserver child killed with its server (the server's death kills its
 * children) has -SIGKILL, like a child killed directly.
 * Returns 0 when *code is set, MP_ERUNNING while the child runs (Python's
 * None), MP_ENOTSTARTED before start, MP_ECLOSED after close, MP_EINVAL (p
 * or code NULL), or MP_ECHILD when the child has ended but its status was
 * lost: someone else reaped it (a waitpid(-1) elsewhere in the program,
 * SIGCHLD set to SIG_IGN), or, under forkserver on kernels before 6.15, its
 * server died and init reaped it before its status was read. Never blocks
 * (under forkserver before 6.15, at most 0.1 s for a stopped server).
 */
MP_API int mp_process_exitcode(mp_process *p, int *code);

/* mp_process_terminate — stop the child, bounded in time.
 *
 * Sends SIGTERM, waits up to the terminate grace period, then sends SIGKILL
 * and reaps. Returns 0 once the child is reaped (also if it had already
 * exited), MP_ENOTSTARTED, MP_ECLOSED, MP_EPERM, or MP_ETIMEDOUT in the
 * pathological case of a child that does not die within 5 s of SIGKILL
 * (stuck in the kernel); it is then still reaped later by any call.
 */
MP_API int mp_process_terminate(mp_process *p);

/* mp_process_kill — like terminate, but SIGKILL at once. */
MP_API int mp_process_kill(mp_process *p);

/* mp_terminate_all — stop n children together, within one grace period.
 *
 * Sends SIGTERM to every child still running, waits up to grace seconds
 * for all of them at once (one poll over their pidfds), then sends
 * SIGKILL to those still running and reaps them: stopping 20 children
 * that ignore SIGTERM takes about one grace, not 20 (mp_process_terminate
 * in a loop would wait each one's grace in turn). Children that exit on
 * SIGTERM are never sent SIGKILL; children already exited are reaped.
 *
 * procs: n children started by this process, borrowed until return (may
 * be NULL when n is 0; an entry may repeat). grace: seconds, 0 for SIGKILL
 * right after SIGTERM; each child's terminate_grace is not used.
 * Returns how many children had to be sent SIGKILL (0..n), all of them
 * reaped, or: MP_EINVAL (NULL procs with n > 0, a NULL entry, negative or
 * NaN grace), MP_ENOTSTARTED, MP_ECLOSED, MP_EPERM (an entry that is not
 * a started, open child of this process: checked for all before any
 * signal, so nothing was sent), MP_ENOMEM, or MP_ETIMEDOUT when a child
 * does not die within 5 s of SIGKILL (as mp_process_terminate).
 * Thread safety: as mp_process_terminate for each entry.
 */
MP_API int mp_terminate_all(mp_process *const *procs, size_t n, double grace);

/* mp_process_send_signal — send a signal and return without waiting.
 * Errors: MP_EINVAL (bad signal), MP_ENOTSTARTED, MP_ECLOSED, MP_EPERM.
 * A child that has exited but is not reaped yet receives nothing (success). */
MP_API int mp_process_send_signal(mp_process *p, int sig);

/* mp_process_close — release the process's resources (its pidfd).
 *
 * Allowed before start or after the child was reaped; MP_EBUSY while it
 * runs (like Python's ValueError). Afterwards only the name, pid, exit code
 * and destroy remain usable. Closing twice returns 0.
 */
MP_API int mp_process_close(mp_process *p);

/* mp_process_destroy — free the object. A child still running is
 * terminated and reaped first, so no zombie and no orphan remain.
 * NULL is a no-op. In a forked child, destroying a copy of the parent's
 * object only frees memory. */
MP_API void mp_process_destroy(mp_process *p);

/* Accessors. pid is 0 before start. name is owned by the object.
 * sentinel is an fd that becomes readable when the child exits (a pidfd;
 * a pipe where the kernel has no pidfd); -1 before start or after close.
 * It belongs to the object: do not close it. */
MP_API pid_t mp_process_pid(const mp_process *p);
MP_API const char *mp_process_name(const mp_process *p);
MP_API bool mp_process_daemon(const mp_process *p);
MP_API int mp_process_sentinel(const mp_process *p);

/* mp_current_process — the object describing the calling process: in a
 * child started by the library, its own mp_process (name, pid); in any
 * other process, a "MainProcess" object. Owned by the library; never NULL. */
MP_API mp_process *mp_current_process(void);

/* mp_parent_process — the parent of a child started by the library, as an
 * object whose pid, name, is_alive and sentinel work (the sentinel becomes
 * readable when the parent exits). NULL in a process not started by the
 * library (Python's None). Owned by the library. */
MP_API mp_process *mp_parent_process(void);

/* mp_active_children — the children of the calling process that are still
 * running. Reaps the ones that have exited, like Python.
 *
 * out: array of cap entries, filled with borrowed pointers (may be NULL if
 * cap is 0). Returns the number of running children, which may exceed cap.
 */
MP_API int mp_active_children(mp_process **out, size_t cap);

/* mp_set_start_method — the process-wide default start method (Python's
 * set_start_method), used by objects created with MP_START_DEFAULT.
 * MP_START_DEFAULT restores the built-in choice: the environment variable
 * MP_START_METHOD ("fork", "spawn" or "forkserver"; any other value, and
 * any value in secure-execution mode such as setuid, means fork), else fork.
 * Returns 0 or MP_EINVAL. Safe from any thread; affects objects created
 * afterwards. Forked children inherit the setting. */
MP_API int mp_set_start_method(mp_start_method method);

/* mp_get_start_method — the process-wide default (never MP_START_DEFAULT). */
MP_API mp_start_method mp_get_start_method(void);

/* mp_start_method_name — "fork", "spawn", "forkserver" (or "?"); static. */
MP_API const char *mp_start_method_name(mp_start_method method);

/* mp_forkserver_ensure — start this process's fork server now rather than
 * at the first forkserver start (Python's forkserver.ensure_running), and
 * wait until its two spare children (forked ahead, one taken by each
 * start) are ready: call it early, before the program starts threads or
 * grows, for the leanest server. A server lost to a kill is replaced here
 * (by this call, at once) or at the next start. The server keeps five fds
 * (close-on-exec) of the caller open until exit: its socket, and a pidfd
 * and a socket per spare. Waits 10 seconds at most.
 * Returns 0, MP_ENOSYS (no pidfds: forkserver cannot work), MP_ETIMEDOUT
 * (a server started here did not become ready in time, and was killed; or
 * the running server did not answer, as when it is stopped: it is kept),
 * an error of spawn (MP_EBOOT, MP_ENOMEM, ...), or one of the server's fork
 * (MP_EAGAIN, MP_EMFILE, ...; the next call asks it again). Safe from any
 * thread. */
MP_API int mp_forkserver_ensure(void);

/* mp_process_start_method — the method a process object starts with. */
MP_API mp_start_method mp_process_start_method(const mp_process *p);

/* mp_cpu_count — CPUs this process may use: the affinity mask, further
 * limited by a cgroup CPU quota (v1 or v2), rounded up; at least 1. */
MP_API int mp_cpu_count(void);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_PROCESS_H */
