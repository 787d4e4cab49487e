/* Helpers shared by the Criterion tests. */
#ifndef MP_TEST_H
#define MP_TEST_H

#include <criterion/criterion.h>
#include <stddef.h>

#include "multiproc.h"

/* Number of open fds of this process (entries of /proc/self/fd). */
int mp_test_fd_count(void);

/* The test must leave as many fds open as it found. Use:
 *     TestSuite(x, .init = mp_test_fd_setup, .fini = mp_test_fd_check);
 * Criterion ignores failed assertions (and even crashes) in .init and .fini,
 * so the setup only records the count and the comparison runs at the end
 * of the test's body, where a failure counts: every Test() of this file is
 * wrapped (below). The fini is kept as a second report. */
void mp_test_fd_setup(void);
void mp_test_fd_check(void);
void mp_test_fd_body_end(void);

/* Test(): Criterion's, with the body followed by mp_test_fd_body_end()
 * (which checks only in suites whose .init is mp_test_fd_setup). Built on
 * CR_TEST_BASE of Criterion 2.4's internal/test.h. */
#ifndef CR_TEST_BASE
#error "mp_test.h wraps CR_TEST_BASE of Criterion 2.x"
#endif
#undef Test
#define Test(...) CR_EXPAND(MP__TEST_BASE(__VA_ARGS__, .sentinel_ = 0))
#define MP__TEST_BASE(Category, Name, ...)                                                         \
    static void mp__test_body_##Category##_##Name(void);                                           \
    CR_TEST_BASE(Category, Name, __VA_ARGS__)                                                      \
    {                                                                                              \
        mp__test_body_##Category##_##Name();                                                       \
        mp_test_fd_body_end();                                                                     \
    }                                                                                              \
    static void mp__test_body_##Category##_##Name(void)

/* Assert that an mp call returned the expected code, printing both names. */
#define mp_assert_rc(expr, expected)                                                               \
    do {                                                                                           \
        int mp__rc_ = (expr);                                                                      \
        int mp__ex_ = (expected);                                                                  \
        cr_assert(mp__rc_ == mp__ex_, "%s returned %s (%d), expected %s (%d)", #expr,              \
                  mp_err_name(mp__rc_), mp__rc_, mp_err_name(mp__ex_), mp__ex_);                   \
    } while (0)

#define mp_assert_ok(expr) mp_assert_rc(expr, 0)

/* For tests of behaviour that only the fork start method has (the child
 * is a copy of the parent: stack and malloc pointers, objects of the
 * parent). The process suites run under every start method (ctest runs
 * them with MP_START_METHOD=spawn and forkserver too). */
#define MP_TEST_FORK_ONLY()                                                                        \
    do {                                                                                           \
        if (mp_get_start_method() != MP_START_FORK)                                                \
            cr_skip_test("needs the fork start method");                                           \
    } while (0)

/* For tests of what only the spawn and forkserver start methods do (the
 * child is a fresh image: pointers are checked and translated). */
#define MP_TEST_FRESH_IMAGE_ONLY()                                                                 \
    do {                                                                                           \
        if (mp_get_start_method() == MP_START_FORK)                                                \
            cr_skip_test("needs the spawn or forkserver start method");                            \
    } while (0)

/* Seconds on the monotonic clock. */
double mp_test_now(void);

/* True if pid is a zombie or gone (for no-zombie checks: false while it lives). */
int mp_test_pid_state(int pid); /* returns the state letter from /proc, or 0 if gone */

/* The children of (single-threaded) process pid, running or unreaped: how
 * many there are, the first cap of them in kids (which may be NULL); -1 if
 * /proc cannot tell. */
int mp_test_children(pid_t pid, pid_t *kids, int cap);

/* A process pool of n workers (the default start method), asserted. */
mp_pool *mp_test_pool(int n);
/* Close p, join it within timeout seconds (asserted), destroy it. */
void mp_test_pool_finish(mp_pool *p, double timeout);

/* A forked worker serving the distributed pool named pool on a connection
 * of its own to url. It exits 0 when mp_worker_serve returned 0, 2 when
 * the manager did not open, 3 otherwise (the code printed on stderr). */
pid_t mp_test_pool_worker(const char *url, const char *pool, const mp_worker_opts *o);
/* Stops n such workers and asserts each returned 0. A worker reads the
 * stop counter when it starts and stops when it changes, so one forked
 * just before may read it only after a first stop (a loaded machine):
 * the stop is repeated until every worker has returned. At most 8. */
void mp_test_pool_workers_stop(mp_manager *m, const char *pool, const pid_t *pids, int n);

#endif /* MP_TEST_H */
