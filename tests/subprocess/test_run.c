/* Tests of mp_run and its conveniences, and of pipelines. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(run, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);
TestSuite(pipeline, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(run, capture_input_and_return_code)
{
    mp_run_result r;
    mp_assert_ok(
        mp_run(ARGV("cat; echo oops >&2; exit 3"),
               &(mp_run_opts){
                   .popen = {.shell = true}, .capture = true, .input = "data\n", .input_len = 5},
               &r));
    cr_assert_eq(r.returncode, 3);
    cr_assert_str_eq(r.out, "data\n");
    cr_assert_eq(r.out_len, 5);
    cr_assert_str_eq(r.err, "oops\n");
    cr_assert_eq(r.exec_error.step, MP_STEP_NONE);
    mp_run_result_free(&r);
    cr_assert_null(r.out);
    mp_run_result_free(NULL);
}

Test(run, check_gives_called_process_error_with_the_output)
{
    mp_run_result r;
    mp_assert_rc(mp_run(ARGV("echo partial; exit 4"),
                        &(mp_run_opts){.popen = {.shell = true}, .capture = true, .check = true},
                        &r),
                 MP_ECALLEDPROCESS);
    cr_assert_eq(r.returncode, 4);
    cr_assert_str_eq(r.out, "partial\n");
    mp_run_result_free(&r);
    mp_assert_ok(mp_run(ARGV("true"), &(mp_run_opts){.check = true}, &r));
    mp_run_result_free(&r);
}

/* str(CalledProcessError) of CPython, for an exit and for a signal. */
Test(run, describe_gives_called_process_errors_text)
{
    char buf[128];
    mp_run_result r;
    mp_assert_rc(mp_run(ARGV("false"), &(mp_run_opts){.check = true}, &r), MP_ECALLEDPROCESS);
    int n = mp_run_describe(ARGV("false"), r.returncode, buf, sizeof(buf));
    mp_run_result_free(&r);
    cr_assert_str_eq(buf, "Command 'false' returned non-zero exit status 1.");
    cr_assert_eq(n, (int)strlen(buf));
    mp_assert_rc(
        mp_run(ARGV("kill -9 $$"), &(mp_run_opts){.popen = {.shell = true}, .check = true}, &r),
        MP_ECALLEDPROCESS);
    cr_assert_eq(r.returncode, -SIGKILL);
    mp_run_describe(ARGV("sleep", "9"), r.returncode, buf, sizeof(buf));
    mp_run_result_free(&r);
    cr_assert_str_eq(buf, "Command 'sleep 9' died with <Signals.SIGKILL: 9>.");
    mp_run_describe(ARGV("x"), -SIGPIPE, buf, sizeof(buf));
    cr_assert_str_eq(buf, "Command 'x' died with <Signals.SIGPIPE: 13>.");
    mp_run_describe(ARGV("x"), -200, buf, sizeof(buf));
    cr_assert_str_eq(buf, "Command 'x' died with unknown signal 200.");
    /* Truncated as snprintf: the full length is returned, the text is cut. */
    char small[10];
    n = mp_run_describe(ARGV("false"), 1, small, sizeof(small));
    cr_assert_eq(n, (int)strlen("Command 'false' returned non-zero exit status 1."));
    cr_assert_str_eq(small, "Command '");
    cr_assert_eq(mp_run_describe(ARGV("false"), 1, NULL, 0), n); /* the size, nothing written */
    mp_assert_rc(mp_run_describe(NULL, 1, buf, sizeof(buf)), MP_EINVAL);
    mp_assert_rc(mp_run_describe(ARGV("x"), 1, NULL, 8), MP_EINVAL);
    mp_assert_rc(mp_run_describe((const char *const[]){NULL}, 1, buf, sizeof(buf)), MP_EINVAL);
}

Test(run, timeout_expired_kills_and_keeps_partial_output)
{
    mp_run_result r;
    mp_assert_rc(mp_run(ARGV("echo before; exec sleep 30"),
                        &(mp_run_opts){.popen = {.shell = true}, .capture = true, .timeout = 0.5},
                        &r),
                 MP_ETIMEOUTEXPIRED);
    cr_assert_eq(r.returncode, -SIGKILL);
    cr_assert_str_eq(r.out, "before\n");
    mp_run_result_free(&r);
}

Test(run, exec_failure_is_in_the_result)
{
    mp_run_result r;
    mp_exec_error e;
    mp_assert_rc(mp_run(ARGV("mp-no-such-program"),
                        &(mp_run_opts){.popen = {.exec_error = &e}, .capture = true}, &r),
                 MP_ENOENT);
    cr_assert_eq(r.exec_error.step, MP_STEP_EXEC);
    mp_assert_rc(r.exec_error.error, MP_ENOENT);
    cr_assert_str_eq(r.exec_error.path, "mp-no-such-program");
    cr_assert_eq(e.step, MP_STEP_EXEC);
    cr_assert_null(r.out);
    mp_run_result_free(&r);
}

Test(run, conflicting_options_are_einval)
{
    mp_run_result r;
    mp_assert_rc(
        mp_run(ARGV("true"), &(mp_run_opts){.popen = {.out = MP_DEVNULL}, .capture = true}, &r),
        MP_EINVAL);
    mp_assert_rc(mp_run(ARGV("true"),
                        &(mp_run_opts){.popen = {.in = MP_DEVNULL}, .input = "x", .input_len = 1},
                        &r),
                 MP_EINVAL);
    mp_assert_rc(mp_run(ARGV("true"), &(mp_run_opts){.input_len = 1}, &r), MP_EINVAL);
    mp_assert_rc(mp_run(ARGV("true"), &(mp_run_opts){.timeout = 0.0 / 0.0}, &r), MP_EINVAL);
    mp_assert_rc(mp_run(ARGV("true"), NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_run(NULL, NULL, &r), MP_EINVAL);
    int code;
    mp_assert_rc(mp_call(ARGV("true"), NULL, MP_FOREVER, NULL), MP_EINVAL);
    mp_assert_rc(mp_call((const char *const[]){NULL}, NULL, MP_FOREVER, &code), MP_EINVAL);
    mp_assert_rc(mp_check_output(ARGV("true"), NULL, MP_FOREVER, NULL, NULL), MP_EINVAL);
    mp_assert_rc(mp_getoutput(NULL, (char *[1]){0}), MP_EINVAL);
}

Test(run, call_check_call_check_output)
{
    int code = -1;
    mp_assert_ok(mp_call(ARGV("sh", "-c", "exit 5"), NULL, 10, &code));
    cr_assert_eq(code, 5);
    mp_assert_ok(mp_check_call(ARGV("true"), NULL, 10, &code));
    cr_assert_eq(code, 0);
    mp_assert_rc(mp_check_call(ARGV("false"), NULL, 10, &code), MP_ECALLEDPROCESS);
    cr_assert_eq(code, 1);
    char *out;
    size_t len;
    mp_assert_ok(mp_check_output(ARGV("echo", "hi"), NULL, 10, &out, &len));
    cr_assert_str_eq(out, "hi\n");
    cr_assert_eq(len, 3);
    free(out);
    mp_assert_rc(
        mp_check_output(ARGV("echo no; exit 2"), &(mp_popen_opts){.shell = true}, 10, &out, NULL),
        MP_ECALLEDPROCESS);
    cr_assert_str_eq(out, "no\n");
    free(out);
}

Test(run, getoutput_and_getstatusoutput)
{
    char *out;
    int status;
    mp_assert_ok(mp_getstatusoutput("echo out; echo err >&2; exit 3", &status, &out));
    cr_assert_eq(status, 3);
    cr_assert_str_eq(out, "out\nerr");
    free(out);
    mp_assert_ok(mp_getoutput("printf 'a\\n\\n'", &out));
    cr_assert_str_eq(out, "a\n");
    free(out);
}

static const char *const *const sort_head[] = {
    ARGV("sort"),
    ARGV("head", "-n", "2"),
};

Test(pipeline, input_through_every_stage)
{
    mp_pipeline *pl;
    mp_assert_ok(
        mp_pipeline_create(&pl, sort_head, 2, &(mp_pipeline_opts){.in = MP_PIPE, .out = MP_PIPE}));
    cr_assert_eq(mp_pipeline_size(pl), 2);
    cr_assert_not_null(mp_pipeline_stage(pl, 1));
    cr_assert_null(mp_pipeline_stage(pl, 2));
    char *out;
    size_t len;
    mp_assert_ok(mp_pipeline_communicate(pl, "c\na\nd\nb\n", 8, &out, &len, NULL, NULL, 10));
    cr_assert_str_eq(out, "a\nb\n");
    free(out);
    int code = -1;
    mp_assert_ok(mp_pipeline_returncode(pl, &code));
    cr_assert_eq(code, 0);
    mp_pipeline_destroy(pl);
}

Test(pipeline, statuses_and_pipefail)
{
    const char *const *const stages[] = {ARGV("sh", "-c", "echo x; exit 2"), ARGV("cat"),
                                         ARGV("sh", "-c", "cat >/dev/null; exit 3"), ARGV("true")};
    mp_pipeline *pl;
    mp_assert_ok(mp_pipeline_create(&pl, stages, 4, NULL));
    mp_assert_ok(mp_pipeline_wait(pl, 10));
    int want[] = {2, 0, 3, 0};
    for (size_t i = 0; i < 4; i++) {
        int c = -1;
        mp_assert_ok(mp_pipeline_status(pl, i, &c));
        cr_assert_eq(c, want[i], "stage %zu: %d", i, c);
    }
    mp_assert_rc(mp_pipeline_status(pl, 4, NULL), MP_EINVAL);
    int code;
    mp_assert_ok(mp_pipeline_returncode(pl, &code));
    cr_assert_eq(code, 3, "pipefail: the last failing stage");
    mp_pipeline_destroy(pl);
}

Test(pipeline, shared_stderr_pipe)
{
    const char *const *const stages[] = {ARGV("sh", "-c", "echo e1 >&2; echo data"),
                                         ARGV("sh", "-c", "cat; echo e2 >&2")};
    mp_pipeline *pl;
    mp_assert_ok(
        mp_pipeline_create(&pl, stages, 2, &(mp_pipeline_opts){.out = MP_PIPE, .err = MP_PIPE}));
    char *out, *err;
    size_t elen;
    mp_assert_ok(mp_pipeline_communicate(pl, NULL, 0, &out, NULL, &err, &elen, 10));
    cr_assert_str_eq(out, "data\n");
    cr_assert_eq(elen, 6);
    cr_assert(strstr(err, "e1\n") && strstr(err, "e2\n"), "stderr: %s", err);
    free(out);
    free(err);
    mp_pipeline_destroy(pl);
}

Test(pipeline, one_timeout_kills_every_stage)
{
    const char *const *const stages[] = {ARGV("sleep", "30"), ARGV("cat"), ARGV("sleep", "30")};
    mp_pipeline *pl;
    mp_assert_ok(mp_pipeline_create(
        &pl, stages, 3,
        &(mp_pipeline_opts){.out = MP_PIPE, .process_group = true, .kill_on_timeout = true}));
    char *out;
    mp_assert_rc(mp_pipeline_communicate(pl, NULL, 0, &out, NULL, NULL, NULL, 0.3), MP_ETIMEDOUT);
    free(out);
    for (size_t i = 0; i < 3; i++) {
        int c = 0;
        mp_assert_ok(mp_pipeline_status(pl, i, &c));
        cr_assert_eq(c, -SIGKILL, "stage %zu: %d", i, c);
    }
    mp_pipeline_destroy(pl);
}

Test(pipeline, wait_timeout_without_kill_then_kill)
{
    const char *const *const stages[] = {ARGV("sleep", "30"), ARGV("cat")};
    mp_pipeline *pl;
    mp_assert_ok(mp_pipeline_create(&pl, stages, 2, NULL));
    mp_assert_rc(mp_pipeline_wait(pl, 0.1), MP_ETIMEDOUT);
    mp_assert_rc(mp_pipeline_returncode(pl, NULL), MP_ERUNNING);
    mp_assert_ok(mp_pipeline_kill(pl));
    int code;
    mp_assert_ok(mp_pipeline_returncode(pl, &code));
    cr_assert_eq(code, -SIGKILL);
    mp_pipeline_destroy(pl);
}

Test(pipeline, a_stage_that_cannot_start_stops_them_all)
{
    const char *const *const stages[] = {ARGV("sleep", "30"), ARGV("mp-no-such-program"),
                                         ARGV("cat")};
    mp_pipeline *pl = NULL;
    mp_exec_error e;
    size_t failed = 99;
    mp_assert_rc(mp_pipeline_create(&pl, stages, 3,
                                    &(mp_pipeline_opts){.exec_error = &e, .failed_stage = &failed}),
                 MP_ENOENT);
    cr_assert_null(pl);
    cr_assert_eq(failed, 1);
    cr_assert_eq(e.step, MP_STEP_EXEC);
    cr_assert_str_eq(e.path, "mp-no-such-program");
}

Test(pipeline, bad_input)
{
    mp_pipeline *pl;
    const char *const *const empty[] = {ARGV("true"), (const char *const[]){NULL}};
    const char *const *const null_stage[] = {ARGV("true"), NULL};
    mp_assert_rc(mp_pipeline_create(NULL, sort_head, 2, NULL), MP_EINVAL);
    mp_assert_rc(mp_pipeline_create(&pl, NULL, 2, NULL), MP_EINVAL);
    mp_assert_rc(mp_pipeline_create(&pl, sort_head, 0, NULL), MP_EINVAL);
    mp_assert_rc(mp_pipeline_create(&pl, sort_head, 1000, NULL), MP_EINVAL);
    mp_assert_rc(mp_pipeline_create(&pl, empty, 2, NULL), MP_EINVAL);
    mp_assert_rc(mp_pipeline_create(&pl, null_stage, 2, NULL), MP_EINVAL);
    mp_assert_rc(mp_pipeline_create(&pl, sort_head, 2, &(mp_pipeline_opts){.in = MP_TO_STDOUT}),
                 MP_EINVAL);
    mp_assert_rc(mp_pipeline_wait(NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_pipeline_returncode(NULL, NULL), MP_EINVAL);
    cr_assert_eq(mp_pipeline_size(NULL), 0);
    mp_pipeline_destroy(NULL);
}
