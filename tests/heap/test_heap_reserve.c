/* Tests of how much address space the shared heap reserves: under an
 * address-space limit (ulimit -v), under valgrind, with MP_HEAP_SIZE, and
 * the error when the reservation cannot be made. The limit is per process,
 * so each case runs the helper tests/helpers/heap_rlimit.c as a child and
 * reads what it prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap/heap_internal.h"
#include "mp_test.h"

TestSuite(heap_reserve, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 120);

#define GIB ((size_t)1 << 30)

/* Runs `env ENV heap_rlimit LIMIT` (stderr into stdout) and returns its
 * exit status; its output in out, and the reservation it printed (0 if
 * none) in *reserved. */
static int run_helper(const char *env, size_t limit, char *out, size_t cap, size_t *reserved)
{
    char cmd[1024];
    int n =
        snprintf(cmd, sizeof cmd, "env -u MP_HEAP_SIZE -u MP_DEBUG -u LD_PRELOAD %s '%s' %zu 2>&1",
                 env, MP_HEAP_RLIMIT, limit);
    cr_assert(n > 0 && (size_t)n < sizeof cmd);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t len = fread(out, 1, cap - 1, f);
    out[len] = '\0';
    int status = pclose(f);
    cr_assert(WIFEXITED(status), "%s: status %#x\n%s", cmd, status, out);
    *reserved = 0;
    const char *r = strstr(out, "reserved ");
    if (r)
        *reserved = (size_t)strtoull(r + strlen("reserved "), NULL, 10);
    return WEXITSTATUS(status);
}

Test(heap_reserve, default_fits_under_a_2gib_address_space_limit)
{
    char out[8192];
    size_t reserved;
    int code = run_helper("", 2 * GIB, out, sizeof out, &reserved);
    cr_assert_eq(code, 0, "heap_rlimit exited %d:\n%s", code, out);
    cr_assert(strstr(out, "init 0\n"), "%s", out);
    /* A quarter of what the limit leaves: the program keeps the rest. */
    cr_assert_leq(reserved, 2 * GIB / 4, "reserved %zu under a 2 GiB limit", reserved);
    cr_assert_geq(reserved, 2 * GIB / 8, "reserved %zu under a 2 GiB limit", reserved);
}

Test(heap_reserve, heap_size_is_used_under_a_limit)
{
    char out[8192];
    size_t reserved;
    int code = run_helper("MP_HEAP_SIZE=256M", 2 * GIB, out, sizeof out, &reserved);
    cr_assert_eq(code, 0, "heap_rlimit exited %d:\n%s", code, out);
    cr_assert_eq(reserved, (size_t)256 << 20);
}

Test(heap_reserve, heap_size_beyond_the_limit_is_enomem_and_named)
{
    char out[65536];
    size_t reserved;
    int code = run_helper("MP_DEBUG=1 MP_HEAP_SIZE=3G", 2 * GIB, out, sizeof out, &reserved);
    cr_assert_eq(code, 2, "heap_rlimit exited %d:\n%s", code, out);
    cr_assert(strstr(out, "init MP_ENOMEM\n"), "%s", out);
    cr_assert_eq(reserved, 0);
    /* The debug log says what to change. */
    cr_assert(strstr(out, "set MP_HEAP_SIZE to a smaller size"), "%s", out);
    cr_assert(strstr(out, "RLIMIT_AS: "), "%s", out);
}

Test(heap_reserve, heap_size_above_the_maximum_is_einval)
{
    char out[65536];
    size_t reserved;
    int code = run_helper("MP_DEBUG=1 MP_HEAP_SIZE=5T", 0, out, sizeof out, &reserved);
    cr_assert_eq(code, 2, "heap_rlimit exited %d:\n%s", code, out);
    cr_assert(strstr(out, "init MP_EINVAL\n"), "%s", out);
    cr_assert(strstr(out, "(MP_HEAP_SIZE) is not between"), "%s", out);
}

Test(heap_reserve, malformed_heap_size_is_einval)
{
    char out[65536];
    size_t reserved;
    int code = run_helper("MP_DEBUG=1 MP_HEAP_SIZE=12X", 0, out, sizeof out, &reserved);
    cr_assert_eq(code, 2, "heap_rlimit exited %d:\n%s", code, out);
    cr_assert(strstr(out, "init MP_EINVAL\n"), "%s", out);
    cr_assert(strstr(out, "MP_HEAP_SIZE is malformed"), "%s", out);
}

Test(heap_reserve, default_without_limit_is_64gib)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_AS, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY)
        cr_skip("this test runs under an address-space limit already");
    char out[8192];
    size_t reserved;
    int code = run_helper("", 0, out, sizeof out, &reserved);
    cr_assert_eq(code, 0, "heap_rlimit exited %d:\n%s", code, out);
    cr_assert_eq(reserved, 64 * GIB);
}

/* Valgrind is recognised by its preloaded library; a name that does not
 * exist is enough (the dynamic loader says so on stderr and goes on). */
Test(heap_reserve, default_under_valgrind_is_1gib)
{
    char out[8192];
    size_t reserved;
    int code = run_helper("LD_PRELOAD=/nonexistent/vgpreload_memcheck-amd64-linux.so", 0, out,
                          sizeof out, &reserved);
    cr_assert_eq(code, 0, "heap_rlimit exited %d:\n%s", code, out);
    cr_assert_eq(reserved, GIB);
}

/* And under valgrind itself, when it is installed (not with a sanitizer,
 * which valgrind cannot run). */
Test(heap_reserve, default_under_real_valgrind_is_1gib, .timeout = 300)
{
#if defined(MP__ASAN) || defined(MP__TSAN)
    cr_skip("valgrind cannot run a sanitizer build");
#else
    if (system("command -v valgrind >/dev/null 2>&1") != 0)
        cr_skip("valgrind is not installed");
    char out[65536];
    size_t reserved;
    int code = run_helper("valgrind -q --error-exitcode=99 --trace-children=no", 0, out, sizeof out,
                          &reserved);
    cr_assert_eq(code, 0, "valgrind heap_rlimit exited %d:\n%s", code, out);
    cr_assert_eq(reserved, GIB);
#endif
}
