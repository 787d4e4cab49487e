/* Error names, descriptions and the per-thread detail. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"

typedef struct mp__errinfo {
    int code;
    const char *name;
    const char *text;
} mp__errinfo;

/* clang-format off */
#define MP__E(code, text) {code, #code, text}
static const mp__errinfo errors[] = {
    MP__E(MP_OK, "success"),
    MP__E(MP_EPERM, "operation not permitted"),
    MP__E(MP_ENOENT, "no such file or name"),
    MP__E(MP_ESRCH, "no such process"),
    MP__E(MP_EINTR, "interrupted by a signal"),
    MP__E(MP_EIO, "input/output error"),
    MP__E(MP_EBADF, "bad file descriptor, or wrong direction for this end"),
    MP__E(MP_ECHILD, "not a child of this process"),
    MP__E(MP_EAGAIN, "resource temporarily unavailable"),
    MP__E(MP_ENOMEM, "out of memory"),
    MP__E(MP_EACCES, "permission denied"),
    MP__E(MP_EFAULT, "bad address"),
    MP__E(MP_EBUSY, "object is in use"),
    MP__E(MP_EEXIST, "already exists"),
    MP__E(MP_EINVAL, "invalid argument"),
    MP__E(MP_EMFILE, "too many open files"),
    MP__E(MP_ENOSPC, "no space left"),
    MP__E(MP_EPIPE, "peer closed its end"),
    MP__E(MP_ERANGE, "value out of range"),
    MP__E(MP_ENOSYS, "not supported (by this kernel, this build or this backend)"),
    MP__E(MP_ENOTSOCK, "operation needs a duplex (socket) connection"),
    MP__E(MP_EMSGSIZE, "message too large"),
    MP__E(MP_EPROTO, "next message is of another kind"),
    MP__E(MP_EBADMSG, "malformed message"),
    MP__E(MP_EOVERFLOW, "value too large"),
    MP__E(MP_ECONNRESET, "connection reset by peer"),
    MP__E(MP_ETIMEDOUT, "timed out"),
    MP__E(MP_EDEADLK, "would deadlock: already held by the caller"),
    MP__E(MP_EOWNERDEAD, "previous owner died"),
    MP__E(MP_ENOTRECOVERABLE, "state not recoverable"),
    MP__E(MP_ENOTDIR, "not a directory"),
    MP__E(MP_ENOEXEC, "not an executable format"),
    MP__E(MP_ETXTBSY, "executable is busy (open for writing)"),
    MP__E(MP_E2BIG, "argument list too long"),
    MP__E(MP_ECONNREFUSED, "connection refused: no server at that address"),
    MP__E(MP_ECANCELED, "cancelled"),
    MP__E(MP_EEOF, "end of file: the peer closed"),
    MP__E(MP_ETRUNCATED, "peer closed in the middle of a message"),
    MP__E(MP_ERUNNING, "process is still running"),
    MP__E(MP_ENOTSTARTED, "process was not started"),
    MP__E(MP_ESTARTED, "process was already started"),
    MP__E(MP_ECLOSED, "object is closed"),
    MP__E(MP_EEMPTY, "empty"),
    MP__E(MP_EFULL, "full"),
    MP__E(MP_EWORKERLOST, "worker lost"),
    MP__E(MP_ETASKFAILED, "task failed"),
    MP__E(MP_EBROKEN, "broken"),
    MP__E(MP_ENOHEAPADDR, "shared heap address is taken"),
    MP__E(MP_EBROKENPOOL, "the pool is broken: its workers died one after another before finishing any task"),
    MP__E(MP_EHALFSENT, "an earlier send stopped in the middle of a message; this connection can no longer send"),
    MP__E(MP_ETOOMANYDONE, "task_done called more times than messages were put"),
    MP__E(MP_ECALLEDPROCESS, "program returned a non-zero exit status"),
    MP__E(MP_ETIMEOUTEXPIRED, "timed out; the program was killed"),
    MP__E(MP_EBOOT, "the new process died before running its target"),
    MP__E(MP_ENOTLOADED, "the function's module is not loaded in the child or worker (loaded with dlopen after the start: spawn and forkserver children have only the modules the program loads at start)"),
    MP__E(MP_EOTHERBUILD, "the function's module is another build in the child or worker (build-ids differ)"),
    MP__E(MP_EAUTH, "authentication failed: wrong or missing password"),
    MP__E(MP_ESERVER, "the server reported an error"),
    MP__E(MP_ENOFUNC, "the worker does not know the task's function (not registered, or another build)"),
};
/* clang-format on */

static const mp__errinfo *find_error(int code)
{
    for (size_t i = 0; i < MP__ARRAY_LEN(errors); i++)
        if (errors[i].code == code)
            return &errors[i];
    return NULL;
}

const char *mp_strerror(int code)
{
    const mp__errinfo *e = find_error(code);
    return e ? e->text : "unknown error";
}

const char *mp_err_name(int code)
{
    const mp__errinfo *e = find_error(code);
    return e ? e->name : "MP_E?";
}

/* Only failing calls write it, so no hot path pays for it. */
static _Thread_local char detail[MP_ERROR_DETAIL_MAX];

int mp__fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    mp__debug("%s: %s", mp_err_name(code), detail);
    return code;
}

const char *mp_error_detail(void)
{
    return detail;
}

void mp_error_clear(void)
{
    detail[0] = '\0';
}

/* "SIGSEGV" for 11: the short names, which every reader of a crash knows
 * (sigabbrev_np is glibc only). */
const char *mp__sig_name(int sig, char *buf, size_t cap)
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {
        {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
        {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
        {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
        {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}, {SIGXCPU, "SIGXCPU"},
        {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
    };
    for (size_t i = 0; i < MP__ARRAY_LEN(names); i++)
        if (names[i].sig == sig)
            return names[i].name;
    snprintf(buf, cap, "signal %d", sig);
    return buf;
}
