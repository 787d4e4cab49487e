/* multiproc — interrupting blocking calls: a per-thread opt-in to
 * MP_EINTR, and cancellation objects.
 *
 * By default a blocking call of the library waits out a signal: a handler
 * runs and the wait goes on (like a restarted system call). Two ways to
 * end a wait early, both per thread:
 *
 *   mp_set_interruptible(true): a blocking call during which a signal
 *   handler ran returns MP_EINTR, as a system call without SA_RESTART.
 *
 *   mp_cancel_set_current(c): blocking calls return MP_ECANCELED once c is
 *   triggered, from any thread or from a signal handler (mp_cancel_trigger
 *   is async-signal-safe), whether it was triggered before the call or
 *   during it. The usual Ctrl-C pattern:
 *
 *       static mp_cancel *stop;
 *       static void on_sigint(int sig) { (void)sig; mp_cancel_trigger(stop); }
 *
 *       mp_cancel_create(&stop);
 *       mp_cancel_set_current(stop);
 *       signal(SIGINT, on_sigint);
 *       int rc = mp_pool_map(pool, &spec, MP_FOREVER);
 *       if (rc == MP_ECANCELED) ...   // Ctrl-C: the map's items not yet
 *                                     // started were withdrawn; the pool
 *                                     // is usable, close or terminate it
 *
 * A call that returns MP_EINTR or MP_ECANCELED changed nothing: a lock is
 * not taken, a message not put nor got, a semaphore unit not taken; a
 * condition wait has its lock back, as after a timeout; a barrier party
 * leaves its phase (the others still wait for a full count, as in Python
 * when a wait raises); a pool map or for withdraws its items that no
 * worker started (the ones running finish, their results dropped); an
 * mp_async_get or mp_imap_next leaves the result to a later call; a
 * connection's receive consumes nothing (a message half arrived is kept
 * for the next receive) and a send writes nothing (a frame whose first
 * byte went out is finished: see multiproc/conn.h); an mp_popen wait reaps
 * nothing, and a communicate keeps what it wrote and read for the call
 * that continues it (mp_run, with nothing to resume, kills and reaps its
 * child: see multiproc/popen.h). A call that could complete at once
 * completes: the checks come before and after each sleep, not instead of
 * the work.
 *
 * Which calls: the waits of locks, rlocks, semaphores, events, conditions
 * and barriers, queue put, get and join, mp_async_wait / mp_async_get /
 * mp_imap_next / mp_pool_map and the other synchronous pool calls (local
 * ones and those of a Redis manager: multiproc/manager.h, "Interrupts on
 * Redis"), mp_process_join, mp_wait, the connections' send, receive and
 * poll calls, and the waits of subprocesses (mp_popen wait, communicate,
 * read and write, the run helpers, pipelines): every blocking call.
 *
 * Latency: a triggered mp_cancel wakes a thread blocked in a call that
 * watches it at once (its futex is woken, its poll sees the cancel's
 * eventfd); in the narrow window between the call's last check and its
 * sleep, the wake-up can be missed, and the call then sleeps at most
 * 50 ms before it looks again (calls that watch a cancel sleep in slices
 * of at most 50 ms). A signal that arrives in that window, with only the
 * opt-in, is seen at the call's next wake-up: for Ctrl-C, prefer a cancel.
 *
 * Threads: each setting belongs to the calling thread and is off in a new
 * thread; a process forked by any thread starts with both off (a forked
 * child's blocking calls are not cancelled by its parent's object). A
 * cancel object lives in process memory: it is not shared with children.
 */
#ifndef MULTIPROC_INTERRUPT_H
#define MULTIPROC_INTERRUPT_H

#include <stdbool.h>

#include "multiproc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* mp_set_interruptible — turn MP_EINTR on or off for the calling thread's
 * blocking calls; returns the previous setting. */
MP_API bool mp_set_interruptible(bool on);

/* mp_interruptible — the calling thread's setting. */
MP_API bool mp_interruptible(void);

typedef struct mp_cancel mp_cancel;

/* mp_cancel_create — a new cancellation object, not triggered. Errors:
 * MP_EINVAL (NULL out), MP_ENOMEM, MP_EMFILE (its eventfd). */
MP_API int mp_cancel_create(mp_cancel **out);

/* mp_cancel_destroy — free it. It must not be current in any thread nor
 * watched by a blocked call (set every thread's current cancel to another
 * one first). NULL: no-op. */
MP_API void mp_cancel_destroy(mp_cancel *c);

/* mp_cancel_trigger — trigger c: every blocking call watching it returns
 * MP_ECANCELED, now and later, until mp_cancel_reset. Async-signal-safe;
 * safe from any thread. Returns 0, or MP_EINVAL for NULL. */
MP_API int mp_cancel_trigger(mp_cancel *c);

/* mp_cancel_triggered — whether c is triggered (false for NULL). */
MP_API bool mp_cancel_triggered(const mp_cancel *c);

/* mp_cancel_reset — untrigger c, for the next round of work. Not
 * async-signal-safe. 0 or MP_EINVAL. */
MP_API int mp_cancel_reset(mp_cancel *c);

/* mp_cancel_set_current — the cancel the calling thread's blocking calls
 * watch (NULL: none); returns the previous one. */
MP_API mp_cancel *mp_cancel_set_current(mp_cancel *c);

/* mp_cancel_current — the calling thread's current cancel, or NULL. */
MP_API mp_cancel *mp_cancel_current(void);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_INTERRUPT_H */
