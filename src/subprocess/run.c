/* Python's conveniences over Popen: run, call, check_call, check_output,
 * getoutput, getstatusoutput. */
#include <stdlib.h>
#include <string.h>

#include "subprocess/popen_internal.h"

static int run_opts(const mp_run_opts *ro, mp_popen_opts *po)
{
    *po = ro->popen;
    if (ro->input_len > 0 && !ro->input)
        return MP_EINVAL;
    if (!(ro->timeout == ro->timeout)) /* NaN */
        return MP_EINVAL;
    if (ro->input || ro->input_len > 0) {
        if (po->in.kind != MP_IO_INHERIT)
            return MP_EINVAL;
        po->in = MP_PIPE;
    }
    if (ro->capture) {
        if (po->out.kind != MP_IO_INHERIT || po->err.kind != MP_IO_INHERIT)
            return MP_EINVAL;
        po->out = MP_PIPE;
        po->err = MP_PIPE;
    }
    /* Python's run kills the child when its timeout passes. */
    po->kill_on_timeout = true;
    return 0;
}

/* Communicate and reap; maps a timeout to MP_ETIMEOUTEXPIRED. */
static int run_child(mp_popen *p, const mp_run_opts *ro, mp_run_result *res)
{
    double t = ro->timeout > 0 ? ro->timeout : MP_FOREVER;
    int rc = mp_popen_communicate(p, ro->input, ro->input_len, &res->out, &res->out_len, &res->err,
                                  &res->err_len, t);
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
        return MP_EINVAL;
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
            return MP_EINVAL;
        ro.popen.out = MP_PIPE;
    }
    return mp_run(argv, &ro, res);
}

int mp_call(const char *const *argv, const mp_popen_opts *opts, double timeout, int *returncode)
{
    if (!returncode)
        return MP_EINVAL;
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
        return MP_EINVAL;
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
        return MP_EINVAL;
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
