/* Tests of error codes and of the internal deadline helpers. */
#include <math.h>
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
