/* Tests of error codes and of the internal deadline helpers. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/time.h>
#include <string.h>
#include <unistd.h>

#include "base/internal.h"
#include "mp_test.h"

TestSuite(error, .timeout = 30);

Test(error, names_and_texts)
{
    cr_assert_str_eq(mp_err_name(MP_ETIMEDOUT), "MP_ETIMEDOUT");
    cr_assert_str_eq(mp_err_name(MP_EEOF), "MP_EEOF");
    cr_assert_str_eq(mp_err_name(MP_ETRUNCATED), "MP_ETRUNCATED");
    cr_assert_str_eq(mp_err_name(0), "MP_OK");
    cr_assert_str_eq(mp_err_name(-99999), "MP_E?");
    cr_assert_str_eq(mp_strerror(MP_ETIMEDOUT), "timed out");
    cr_assert_str_eq(mp_strerror(12345), "unknown error");
}

Test(error, codes_are_negative_errno_or_library_range)
{
    cr_assert_eq(MP_EINVAL, -EINVAL);
    cr_assert_eq(MP_ETIMEDOUT, -ETIMEDOUT);
    cr_assert_eq(MP_EOWNERDEAD, -EOWNERDEAD);
    cr_assert_eq(MP_ECANCELED, -ECANCELED);
    cr_assert_str_eq(mp_err_name(MP_ECANCELED), "MP_ECANCELED");
    int lib[] = {MP_EEOF,        MP_ETRUNCATED,  MP_ERUNNING,     MP_ENOTSTARTED, MP_ESTARTED,
                 MP_ECLOSED,     MP_EEMPTY,      MP_EFULL,        MP_EWORKERLOST, MP_ETASKFAILED,
                 MP_EBROKEN,     MP_ENOHEAPADDR, MP_ETOOMANYDONE, MP_EBOOT,       MP_ENOTLOADED,
                 MP_EOTHERBUILD, MP_EBROKENPOOL, MP_EHALFSENT};
    for (size_t i = 0; i < sizeof lib / sizeof lib[0]; i++) {
        cr_assert(lib[i] <= MP_E__LIB_FIRST && lib[i] >= MP_E__LIB_LAST);
        cr_assert_str_neq(mp_err_name(lib[i]), "MP_E?", "code %d has no name", lib[i]);
        for (size_t j = 0; j < i; j++)
            cr_assert_neq(lib[i], lib[j]);
    }
}

Test(error, deadline_rejects_nan_and_handles_forever)
{
    mp__deadline d;
    cr_assert_eq(mp__deadline_init(&d, NAN), MP_EINVAL);
    cr_assert_eq(mp__deadline_init(&d, MP_FOREVER), 0);
    cr_assert_eq(mp__deadline_poll_ms(&d), -1);
    cr_assert_not(mp__deadline_expired(&d));
    cr_assert_eq(mp__deadline_init(&d, INFINITY), 0);
    cr_assert_eq(mp__deadline_poll_ms(&d), -1);
    cr_assert_eq(mp__deadline_init(&d, 0), 0);
    cr_assert(mp__deadline_expired(&d));
    cr_assert_eq(mp__deadline_poll_ms(&d), 0);
    cr_assert_eq(mp__deadline_init(&d, 0.0005), 0);
    cr_assert_geq(mp__deadline_poll_ms(&d), 0); /* rounded up, never early */
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* EINTR must not stretch (nor cut) a wait: signals arrive every 20 ms
 * during a 0.3 s poll on a pipe that never becomes readable. */
Test(error, poll_survives_eintr_without_stretching)
{
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    mp__deadline d;
    mp__deadline_init(&d, 0.3);
    double t0 = mp_test_now();
    int r = mp__poll(&pfd, 1, &d);
    double dt = mp_test_now() - t0;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    cr_assert_eq(r, 0);
    cr_assert(dt >= 0.29 && dt < 5, "poll(0.3 s) with EINTR took %.3f s", dt);
    close(fds[0]);
    close(fds[1]);
}

Test(error, subprocess_codes_are_in_their_range)
{
    int lib[] = {MP_ECALLEDPROCESS, MP_ETIMEOUTEXPIRED};
    for (size_t i = 0; i < sizeof lib / sizeof lib[0]; i++) {
        cr_assert(lib[i] <= -10020 && lib[i] >= -10029);
        cr_assert_str_neq(mp_err_name(lib[i]), "MP_E?", "code %d has no name", lib[i]);
        cr_assert_str_neq(mp_strerror(lib[i]), "unknown error");
    }
    cr_assert_str_eq(mp_err_name(MP_ENOTDIR), "MP_ENOTDIR");
    cr_assert_str_eq(mp_err_name(MP_ENOEXEC), "MP_ENOEXEC");
}

/* ---- the per-thread detail ------------------------------------------------ */

Test(error, detail_is_empty_until_a_failure_sets_it)
{
    cr_assert_not_null(mp_error_detail());
    cr_assert_str_eq(mp_error_detail(), "");
    mp_assert_rc(mp__fail(MP_EINVAL, "%s: spec->in_size is %d", "f", 0), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "f: spec->in_size is 0");
    /* A call that succeeds leaves it as it is; mp_error_clear empties it. */
    cr_assert_str_eq(mp_strerror(0), "success");
    cr_assert_str_eq(mp_error_detail(), "f: spec->in_size is 0");
    mp_error_clear();
    cr_assert_str_eq(mp_error_detail(), "");
}

Test(error, detail_is_cut_and_terminated)
{
    char big[2 * MP_ERROR_DETAIL_MAX];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    mp__fail(MP_ERANGE, "%s", big);
    cr_assert_eq(strlen(mp_error_detail()), MP_ERROR_DETAIL_MAX - 1);
}

static void *fail_in_thread(void *arg)
{
    (void)arg;
    int before = mp_error_detail()[0] == '\0';
    mp__fail(MP_EINVAL, "from the thread");
    return before ? (void *)1 : NULL;
}

Test(error, detail_is_per_thread)
{
    mp__fail(MP_EINVAL, "from main");
    pthread_t t;
    void *empty_there = NULL;
    cr_assert_eq(pthread_create(&t, NULL, fail_in_thread, NULL), 0);
    cr_assert_eq(pthread_join(t, &empty_there), 0);
    cr_assert_not_null(empty_there, "a new thread saw another thread's detail");
    cr_assert_str_eq(mp_error_detail(), "from main");
}

Test(error, debug_prints_the_detail_where_it_is_set)
{
    setenv("MP_DEBUG", "1", 1);
    cr_assert(mp__debug_enabled(), "MP_DEBUG was read before the test set it");
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int saved = dup(2);
    cr_assert_eq(dup2(fds[1], 2), 2);
    mp__fail(MP_EINVAL, "opts->processes is %d", -1);
    cr_assert_eq(dup2(saved, 2), 2);
    close(saved);
    close(fds[1]);
    char buf[512] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    cr_assert_gt(n, 0);
    cr_assert_not_null(strstr(buf, "MP_EINVAL: opts->processes is -1"), "stderr: %s", buf);
}
