/* Writes to a child's stdin that nobody reads any more: an error, never a
 * SIGPIPE that kills the parent. Each case runs with RWF_NOSIGNAL (where
 * the kernel has it) and with the signal-mask path of older kernels
 * (MP_DISABLE_RWF_NOSIGNAL=1; Criterion runs each case in its own process,
 * so the switch is read fresh). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "mp_test.h"

TestSuite(popen_sigpipe, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static bool sigpipe_pending(void)
{
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, SIGPIPE);
}

static bool sigpipe_blocked(void)
{
    sigset_t s;
    pthread_sigmask(SIG_BLOCK, NULL, &s);
    return sigismember(&s, SIGPIPE);
}

/* With SIGPIPE at its default action, a write that raised it would kill
 * the test: mp_popen_write and communicate must both come back. */
static void write_to_exited_child(void)
{
    signal(SIGPIPE, SIG_DFL);
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.in = MP_PIPE}));
    mp_assert_ok(mp_popen_wait(p, 10, NULL));
    mp_assert_rc((int)mp_popen_write(p, "x", 1, 10), MP_EPIPE);
    size_t big_len = (size_t)1 << 20;
    char *big = calloc(1, big_len);
    cr_assert(big);
    mp_assert_rc((int)mp_popen_write(p, big, big_len, 10), MP_EPIPE);
    /* communicate stops feeding a child that stopped reading, like Python. */
    mp_assert_ok(mp_popen_communicate(p, big, big_len, NULL, NULL, NULL, NULL, 10));
    free(big);
    cr_assert_not(sigpipe_pending());
    cr_assert_not(sigpipe_blocked());
    mp_popen_destroy(p);
}

Test(popen_sigpipe, write_to_a_child_that_exited_is_epipe)
{
    write_to_exited_child();
}

Test(popen_sigpipe, write_to_a_child_that_exited_is_epipe_sigmask)
{
    setenv("MP_DISABLE_RWF_NOSIGNAL", "1", 1);
    write_to_exited_child();
}

/* The child reads one byte and exits while the parent is in the middle of
 * a write larger than the pipe: the rest of it fails, the parent lives. */
static void write_cut_short(void)
{
    signal(SIGPIPE, SIG_DFL);
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("head", "-c", "1"),
                                 &(mp_popen_opts){.in = MP_PIPE, .out = MP_DEVNULL}));
    size_t big_len = (size_t)4 << 20;
    char *big = calloc(1, big_len);
    cr_assert(big);
    ssize_t w = mp_popen_write(p, big, big_len, 10);
    cr_assert(w == MP_EPIPE || (w > 0 && (size_t)w < big_len), "write returned %zd", w);
    free(big);
    cr_assert_not(sigpipe_pending());
    cr_assert_not(sigpipe_blocked());
    mp_assert_ok(mp_popen_wait(p, 10, NULL));
    mp_popen_destroy(p);
}

Test(popen_sigpipe, write_cut_short_by_a_child_that_exits)
{
    write_cut_short();
}

Test(popen_sigpipe, write_cut_short_by_a_child_that_exits_sigmask)
{
    setenv("MP_DISABLE_RWF_NOSIGNAL", "1", 1);
    write_cut_short();
}

/* A caller that blocks SIGPIPE itself keeps its mask; the library leaves no
 * SIGPIPE of its own pending, and leaves the caller's own alone. */
static void write_with_blocked_sigpipe(void)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, ARGV("true"), &(mp_popen_opts){.in = MP_PIPE}));
    mp_assert_ok(mp_popen_wait(p, 10, NULL));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    mp_assert_rc((int)mp_popen_write(p, "x", 1, 10), MP_EPIPE);
    cr_assert(sigpipe_blocked());
    cr_assert_not(sigpipe_pending());
    raise(SIGPIPE); /* the caller's own */
    mp_assert_rc((int)mp_popen_write(p, "x", 1, 10), MP_EPIPE);
    cr_assert(sigpipe_pending());
    cr_assert_eq(sigtimedwait(&set, NULL, &(struct timespec){0, 0}), SIGPIPE);
    cr_assert_not(sigpipe_pending());
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    mp_popen_destroy(p);
}

Test(popen_sigpipe, write_leaves_a_callers_blocked_sigpipe_alone)
{
    write_with_blocked_sigpipe();
}

Test(popen_sigpipe, write_leaves_a_callers_blocked_sigpipe_alone_sigmask)
{
    setenv("MP_DISABLE_RWF_NOSIGNAL", "1", 1);
    write_with_blocked_sigpipe();
}

/* ---- restore_signals: the child's SIGPIPE and SIGXFSZ ---------------------- */

/* The child's ignored signals, from its /proc/self/status (read by cat). */
static unsigned long long child_sigign(bool keep)
{
    mp_run_result r;
    mp_assert_ok(mp_run(
        ARGV("cat", "/proc/self/status"),
        &(mp_run_opts){
            .popen = {.keep_ignored_signals = keep}, .capture = true, .check = true, .timeout = 20},
        &r));
    const char *line = strstr(r.out, "SigIgn:");
    cr_assert(line, "no SigIgn in:\n%s", r.out);
    unsigned long long mask = strtoull(line + 7, NULL, 16);
    mp_run_result_free(&r);
    return mask;
}

#define SIGBIT(s) (1ull << ((s)-1))

Test(popen_sigpipe, the_child_gets_sigpipe_and_sigxfsz_back_by_default)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    unsigned long long ign = child_sigign(false);
    cr_assert_not(ign & SIGBIT(SIGPIPE), "SigIgn %llx", ign);
    cr_assert_not(ign & SIGBIT(SIGXFSZ), "SigIgn %llx", ign);
    cr_assert(ign & SIGBIT(SIGUSR1), "other ignored signals stay ignored: %llx", ign);
    /* keep_ignored_signals: Python's restore_signals=False. */
    ign = child_sigign(true);
    cr_assert(ign & SIGBIT(SIGPIPE), "SigIgn %llx", ign);
    cr_assert(ign & SIGBIT(SIGXFSZ), "SigIgn %llx", ign);
    cr_assert(ign & SIGBIT(SIGUSR1), "SigIgn %llx", ign);
}

/* yes | head -1 from a process that ignores SIGPIPE (as Python does):
 * yes dies of SIGPIPE once head has gone, as in a shell. */
static int yes_head(bool keep, char **out)
{
    signal(SIGPIPE, SIG_IGN);
    const char *const *stages[] = {ARGV("yes"), ARGV("head", "-1")};
    mp_pipeline *pl;
    mp_assert_ok(mp_pipeline_create(&pl, stages, 2,
                                    &(mp_pipeline_opts){.out = MP_PIPE,
                                                        .kill_on_timeout = true,
                                                        .keep_ignored_signals = keep}));
    size_t len = 0;
    mp_assert_ok(mp_pipeline_communicate(pl, NULL, 0, out, &len, NULL, NULL, 20));
    int yes = 0, head = -1;
    mp_assert_ok(mp_pipeline_status(pl, 0, &yes));
    mp_assert_ok(mp_pipeline_status(pl, 1, &head));
    cr_assert_eq(head, 0);
    mp_pipeline_destroy(pl);
    return yes;
}

Test(popen_sigpipe, yes_head_ends_with_yes_killed_by_sigpipe)
{
    char *out = NULL;
    int yes = yes_head(false, &out);
    cr_assert_str_eq(out, "y\n");
    free(out);
    cr_assert_eq(yes, -SIGPIPE, "yes ended with %d", yes);
}

Test(popen_sigpipe, yes_head_with_ignored_sigpipe_kept_ends_by_epipe)
{
    char *out = NULL;
    int yes = yes_head(true, &out);
    cr_assert_str_eq(out, "y\n");
    free(out);
    /* yes saw EPIPE, reported it and exited with an error: no signal. */
    cr_assert_gt(yes, 0, "yes ended with %d", yes);
}
