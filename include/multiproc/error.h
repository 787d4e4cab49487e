/* multiproc — error codes.
 *
 * Every function of the library returns 0 (or a count) on success and a
 * negative code on failure. The codes are negative errno values for what the
 * operating system already names (MP_EINVAL == -EINVAL, ...) and library codes
 * in a reserved range (MP_E__LIB_FIRST .. MP_E__LIB_LAST) for what it does not
 * (a peer that closed, a process still running, a task that failed, ...).
 *
 * A call that fails changes nothing. Rich failures (which step of an exec
 * failed, which signal killed a worker, a task's own message) travel in the
 * object they concern. What a code alone cannot say about a refused
 * argument (which argument, which limit, which URL option, which pointer
 * cannot cross a spawn) is in mp_error_detail(), per thread.
 *
 * Thread safety: every function here is safe from any thread, any process.
 */
#ifndef MULTIPROC_ERROR_H
#define MULTIPROC_ERROR_H

#include <errno.h>

#include "multiproc/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* First and last value of the library's own range; errno values never reach it. */
#define MP_E__LIB_FIRST (-10000)
#define MP_E__LIB_LAST  (-10999)

typedef enum mp_error {
    MP_OK = 0,

    /* Operating-system codes, as negative errno values. */
    MP_EPERM = -EPERM,                     /* not allowed: not the owner, not the parent */
    MP_ENOENT = -ENOENT,                   /* no such name or file */
    MP_ESRCH = -ESRCH,                     /* no such process */
    MP_EINTR = -EINTR,                     /* interrupted by a signal (multiproc/interrupt.h) */
    MP_EIO = -EIO,                         /* input/output error */
    MP_EBADF = -EBADF,                     /* bad file descriptor */
    MP_ECHILD = -ECHILD,                   /* not a child of this process */
    MP_EAGAIN = -EAGAIN,                   /* resource temporarily unavailable */
    MP_ENOMEM = -ENOMEM,                   /* out of memory (or out of shared heap) */
    MP_EACCES = -EACCES,                   /* permission denied */
    MP_EFAULT = -EFAULT,                   /* bad address */
    MP_EBUSY = -EBUSY,                     /* object in use (e.g. closing a running process) */
    MP_EEXIST = -EEXIST,                   /* name already exists */
    MP_EINVAL = -EINVAL,                   /* invalid argument */
    MP_EMFILE = -EMFILE,                   /* too many open files */
    MP_ENOSPC = -ENOSPC,                   /* no space left */
    MP_EPIPE = -EPIPE,                     /* peer closed its end while we were writing */
    MP_ERANGE = -ERANGE,                   /* value out of range */
    MP_ENOSYS = -ENOSYS,                   /* not supported by this kernel, build or backend */
    MP_ENOTSOCK = -ENOTSOCK,               /* operation needs a socket (duplex) connection */
    MP_EMSGSIZE = -EMSGSIZE,               /* message too large for the buffer or object */
    MP_EPROTO = -EPROTO,                   /* next message is of another kind than asked */
    MP_EBADMSG = -EBADMSG,                 /* malformed data from another process */
    MP_EOVERFLOW = -EOVERFLOW,             /* value too large for the type */
    MP_ECONNRESET = -ECONNRESET,           /* connection reset by peer */
    MP_ETIMEDOUT = -ETIMEDOUT,             /* the timeout expired first */
    MP_EDEADLK = -EDEADLK,                 /* would deadlock: the caller already holds it */
    MP_EOWNERDEAD = -EOWNERDEAD,           /* previous owner died; caller now holds it */
    MP_ENOTRECOVERABLE = -ENOTRECOVERABLE, /* object left inconsistent by a dead owner */
    MP_ENOTDIR = -ENOTDIR,                 /* a path component is not a directory */
    MP_ENOEXEC = -ENOEXEC,                 /* not an executable format */
    MP_ETXTBSY = -ETXTBSY,                 /* executable is open for writing */
    MP_E2BIG = -E2BIG,                     /* argument list and environment too long */
    MP_ECONNREFUSED = -ECONNREFUSED,       /* no server listens at that address */
    MP_ECANCELED = -ECANCELED,             /* cancelled (mp_async_cancel, mp_cancel_trigger) */

    /* Library codes. */
    MP_EEOF = MP_E__LIB_FIRST, /* peer closed: no more messages (Python's EOFError) */
    MP_ETRUNCATED = -10001,    /* peer closed in the middle of a message */
    MP_ERUNNING = -10002,      /* process has not exited yet (Python's exitcode None) */
    MP_ENOTSTARTED = -10003,   /* process was never started */
    MP_ESTARTED = -10004,      /* process already started (start called twice) */
    MP_ECLOSED = -10005,       /* object was closed */
    MP_EEMPTY = -10006,        /* nothing to get (Python's queue.Empty) */
    MP_EFULL = -10007,         /* no room to put (Python's queue.Full) */
    MP_EWORKERLOST = -10008,   /* the worker running the task died */
    MP_ETASKFAILED = -10009,   /* the task reported a failure */
    MP_EBROKEN = -10010,       /* barrier or pool is broken */
    MP_ENOHEAPADDR = -10011,   /* the family's shared-heap address is taken */
    MP_EBROKENPOOL = -10012,   /* the pool is broken: its workers keep dying before any task ends */
    MP_EHALFSENT = -10013,     /* an earlier send stopped mid-message: this end can send no more */
    MP_ETOOMANYDONE = -10050,  /* task_done called more times than messages put (ValueError) */
    MP_EBOOT = -10060,         /* a spawned child died before running its target */
    MP_ENOTLOADED = -10061,    /* a function's module is not loaded in the child (dlopen'd) */
    MP_EOTHERBUILD = -10062,   /* a function's module is another build in the child */
    MP_EAUTH = -10070,         /* the server refused the password (or user) */
    MP_ESERVER = -10071,       /* the server answered with an error of its own */
    MP_ENOFUNC = -10080,       /* a distributed worker does not know the task's function */

    /* subprocess (-10020..-10029) */
    MP_ECALLEDPROCESS = -10020,  /* the program returned non-zero (CalledProcessError) */
    MP_ETIMEOUTEXPIRED = -10021, /* run timed out; the child was killed (TimeoutExpired) */
} mp_error;

/* mp_strerror — a human-readable description of an error code.
 *
 * code: any value returned by the library (0 and unknown codes included).
 * Returns a static string, never NULL ("unknown error" for unknown codes).
 */
MP_API const char *mp_strerror(int code);

/* mp_err_name — the symbolic name of an error code, e.g. "MP_ETIMEDOUT".
 *
 * Returns a static string, never NULL ("MP_E?" for unknown codes).
 */
MP_API const char *mp_err_name(int code);

/* Longest detail kept, terminating NUL included; longer ones are cut. */
#define MP_ERROR_DETAIL_MAX 256

/* mp_error_detail — what the last failing call of this thread had to say
 * about its failure, e.g. "mp_pool_map: spec->in_size is 0 (must be >= 1)"
 * or "mp_manager_open: unknown URL option 'prefx' (known: prefix, ...)".
 *
 * Set by a call that fails and has something to say: every MP_EINVAL of
 * the pool, the manager URL, process start, queues, the sync types, values
 * and arrays, the shared heap, mp_shm and the containers, and the other
 * refusals whose code alone does not say why (a NULL from mp_alloc, a lock
 * released by a thread that does not hold it: the holder is named). Not
 * changed by calls that succeed, nor by failures that have nothing to add
 * to their code, so read it right after the failing call, or call
 * mp_error_clear() before the call when in doubt. With MP_DEBUG=1 in the
 * environment, each detail is also printed to stderr when it is set.
 *
 * Returns a pointer to this thread's buffer (at most MP_ERROR_DETAIL_MAX - 1
 * characters), "" when nothing was set: valid until this thread's next call
 * of the library. Never NULL. Thread safety: per thread; a forked child
 * starts with its parent's detail.
 */
MP_API const char *mp_error_detail(void);

/* mp_error_clear — empty this thread's detail (mp_error_detail() gives ""). */
MP_API void mp_error_clear(void);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_ERROR_H */
