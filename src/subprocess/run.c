/* Python's conveniences over Popen: run, call, check_call, check_output,
 * getoutput, getstatusoutput. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subprocess/popen_internal.h"

static int run_opts(const mp_run_opts *ro, mp_popen_opts *po)
{
    *po = ro->popen;
    if (ro->input_len > 0 && !ro->input)
        return mp__fail(MP_EINVAL, "opts->input is NULL with input_len %zu", ro->input_len);
    if (!(ro->timeout == ro->timeout)) /* NaN */
        return mp__fail(MP_EINVAL, "opts->timeout is NaN");
    if (ro->input || ro->input_len > 0) {
        if (po->in.kind != MP_IO_INHERIT)
            return mp__fail(MP_EINVAL, "opts->input with opts->popen.in set (leave it inherit)");
        po->in = MP_PIPE;
    }
    if (ro->capture) {
        if (po->out.kind != MP_IO_INHERIT || po->err.kind != MP_IO_INHERIT)
            return mp__fail(MP_EINVAL, "opts->capture with opts->popen.%s set (leave it inherit)",
                            po->out.kind != MP_IO_INHERIT ? "out" : "err");
        po->out = MP_PIPE;
        po->err = MP_PIPE;
    }
    /* Python's run kills the child when its timeout passes. */
    po->kill_on_timeout = true;
    return 0;
}

/* Communicate and reap; maps a timeout to MP_ETIMEOUTEXPIRED. An
 * interrupted communicate (MP_EINTR, MP_ECANCELED) cannot be resumed by
 * the caller, who holds no mp_popen: like Python's run on any exception,
 * the child is killed and reaped, and its output so far handed over. */
static int run_child(mp_popen *p, const mp_run_opts *ro, mp_run_result *res)
{
    double t = ro->timeout > 0 ? ro->timeout : MP_FOREVER;
    int rc = mp_popen_communicate(p, ro->input, ro->input_len, &res->out, &res->out_len, &res->err,
                                  &res->err_len, t);
    if (rc == MP_EINTR || rc == MP_ECANCELED) {
        int krc = mp__popen_kill_collect(p, &res->out, &res->out_len, &res->err, &res->err_len);
        rc = krc < 0 ? krc : rc;
    }
    (void)mp_popen_returncode(p, &res->returncode);
    if (rc == MP_ETIMEDOUT)
        return MP_ETIMEOUTEXPIRED;
    if (rc < 0)
        return rc;
    if (ro->check && res->returncode != 0)
        return MP_ECALLEDPROCESS;
    return 0;
}

int mp_run(const char *const *argv, const mp_run_opts *opts, mp_run_result *res)
{
    static const mp_run_opts defaults;
    if (!res)
        return mp__fail(MP_EINVAL, "mp_run: res is NULL");
    memset(res, 0, sizeof(*res));
    if (!opts)
        opts = &defaults;
    mp_popen_opts po;
    int rc = run_opts(opts, &po);
    if (rc < 0)
        return rc;
    po.exec_error = &res->exec_error;
    mp_popen *p = NULL;
    rc = mp_popen_create(&p, argv, &po);
    if (opts->popen.exec_error)
        *opts->popen.exec_error = res->exec_error;
    if (rc < 0)
        return rc;
    rc = run_child(p, opts, res);
    mp_popen_destroy(p);
    return rc;
}

void mp_run_result_free(mp_run_result *res)
{
    if (!res)
        return;
    free(res->out);
    free(res->err);
    memset(res, 0, sizeof(*res));
}

static int run_popen(const char *const *argv, const mp_popen_opts *opts, double timeout,
                     bool capture_out, mp_run_result *res)
{
    mp_run_opts ro = {.timeout = timeout};
    if (opts)
        ro.popen = *opts;
    if (capture_out) {
        if (ro.popen.out.kind != MP_IO_INHERIT)
            return mp__fail(MP_EINVAL, "mp_check_output: opts->out is set (leave it inherit)");
        ro.popen.out = MP_PIPE;
    }
    return mp_run(argv, &ro, res);
}

int mp_call(const char *const *argv, const mp_popen_opts *opts, double timeout, int *returncode)
{
    if (!returncode)
        return mp__fail(MP_EINVAL, "mp_call: returncode is NULL");
    mp_run_result res;
    int rc = run_popen(argv, opts, timeout, false, &res);
    if (rc == 0)
        *returncode = res.returncode;
    mp_run_result_free(&res);
    return rc;
}

int mp_check_call(const char *const *argv, const mp_popen_opts *opts, double timeout,
                  int *returncode)
{
    mp_run_result res;
    int rc = run_popen(argv, opts, timeout, false, &res);
    if (rc == 0 && res.returncode != 0)
        rc = MP_ECALLEDPROCESS;
    if ((rc == 0 || rc == MP_ECALLEDPROCESS) && returncode)
        *returncode = res.returncode;
    mp_run_result_free(&res);
    return rc;
}

int mp_check_output(const char *const *argv, const mp_popen_opts *opts, double timeout, char **out,
                    size_t *len)
{
    if (!out)
        return mp__fail(MP_EINVAL, "mp_check_output: out is NULL");
    mp_run_result res;
    int rc = run_popen(argv, opts, timeout, true, &res);
    if (rc == 0 && res.returncode != 0)
        rc = MP_ECALLEDPROCESS;
    if (rc == 0 || rc == MP_ECALLEDPROCESS || rc == MP_ETIMEOUTEXPIRED) {
        *out = res.out;
        if (len)
            *len = res.out_len;
        res.out = NULL;
    }
    mp_run_result_free(&res);
    return rc;
}

int mp_getstatusoutput(const char *cmd, int *status, char **out)
{
    if (!cmd || !out)
        return mp__fail(MP_EINVAL, "mp_getstatusoutput: %s is NULL", !cmd ? "cmd" : "out");
    const char *argv[] = {cmd, NULL};
    mp_run_result res;
    mp_run_opts ro = {.popen = {.shell = true, .out = MP_PIPE, .err = MP_TO_STDOUT}};
    int rc = mp_run(argv, &ro, &res);
    if (rc == 0) {
        if (res.out_len > 0 && res.out[res.out_len - 1] == '\n')
            res.out[--res.out_len] = '\0';
        *out = res.out;
        res.out = NULL;
        if (status)
            *status = res.returncode;
    }
    mp_run_result_free(&res);
    return rc;
}

int mp_getoutput(const char *cmd, char **out)
{
    return mp_getstatusoutput(cmd, NULL, out);
}

/* The names Python's signal.Signals gives the signals of Linux. */
static const char *signal_name(int sig)
{
    static const char *const names[] = {
        [SIGHUP] = "SIGHUP",       [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT",
        [SIGILL] = "SIGILL",       [SIGTRAP] = "SIGTRAP",     [SIGABRT] = "SIGABRT",
        [SIGBUS] = "SIGBUS",       [SIGFPE] = "SIGFPE",       [SIGKILL] = "SIGKILL",
        [SIGUSR1] = "SIGUSR1",     [SIGSEGV] = "SIGSEGV",     [SIGUSR2] = "SIGUSR2",
        [SIGPIPE] = "SIGPIPE",     [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM",
        [SIGSTKFLT] = "SIGSTKFLT", [SIGCHLD] = "SIGCHLD",     [SIGCONT] = "SIGCONT",
        [SIGSTOP] = "SIGSTOP",     [SIGTSTP] = "SIGTSTP",     [SIGTTIN] = "SIGTTIN",
        [SIGTTOU] = "SIGTTOU",     [SIGURG] = "SIGURG",       [SIGXCPU] = "SIGXCPU",
        [SIGXFSZ] = "SIGXFSZ",     [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF",
        [SIGWINCH] = "SIGWINCH",   [SIGIO] = "SIGIO",         [SIGPWR] = "SIGPWR",
        [SIGSYS] = "SIGSYS",
    };
    if (sig > 0 && (size_t)sig < sizeof(names) / sizeof(names[0]))
        return names[sig];
    if (sig == SIGRTMIN)
        return "SIGRTMIN";
    if (sig == SIGRTMAX)
        return "SIGRTMAX";
    return NULL;
}

/* Appends to buf like snprintf, counting what did not fit. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = *len < cap ? cap - *len : 0;
    int n = vsnprintf(room ? buf + *len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
}

int mp_run_describe(const char *const *argv, int returncode, char *buf, size_t cap)
{
    if (!argv || !argv[0])
        return mp__fail(MP_EINVAL, "mp_run_describe: argv is %s", !argv ? "NULL" : "empty");
    if (!buf && cap > 0)
        return mp__fail(MP_EINVAL, "mp_run_describe: buf is NULL with cap %zu", cap);
    size_t len = 0;
    if (cap > 0)
        buf[0] = '\0';
    append(buf, cap, &len, "Command '");
    for (size_t i = 0; argv[i]; i++)
        append(buf, cap, &len, i ? " %s" : "%s", argv[i]);
    const char *name = returncode < 0 ? signal_name(-returncode) : NULL;
    if (returncode >= 0)
        append(buf, cap, &len, "' returned non-zero exit status %d.", returncode);
    else if (name)
        append(buf, cap, &len, "' died with <Signals.%s: %d>.", name, -returncode);
    else
        append(buf, cap, &len, "' died with unknown signal %d.", -returncode);
    return len > INT32_MAX ? INT32_MAX : (int)len;
}
