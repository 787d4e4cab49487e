/* A program outside the project that uses an installed multiproc: built by
 * scripts/check_install.sh through the CMake package and through pkg-config.
 * It prints OK when the library works, and a reason otherwise. */
#include <multiproc.h>

#include <stdio.h>
#include <string.h>

static int child_target(const void *arg, size_t len)
{
    /* The exit code tells the parent that the argument bytes arrived. */
    return len == 6 && memcmp(arg, "hello", 6) == 0 ? 42 : 1;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "install consumer: %s failed: %s (%d)\n", what, mp_err_name(rc), rc);
    return 1;
}

static int run_child(void)
{
    mp_process *p = NULL;
    int code = -1;
    int rc = mp_process_create(
        &p, &(mp_process_opts){.target = child_target, .args = "hello", .args_len = 6});
    if (rc < 0)
        return fail("mp_process_create", rc);
    rc = mp_process_start(p);
    if (rc == 0)
        rc = mp_process_join(p, 30.0);
    if (rc == 0)
        rc = mp_process_exitcode(p, &code);
    mp_process_destroy(p);
    if (rc < 0)
        return fail("start/join/exitcode", rc);
    if (code != 42) {
        fprintf(stderr, "install consumer: child exit code %d, expected 42\n", code);
        return 1;
    }
    return 0;
}

int main(void)
{
    const char *text = mp_strerror(MP_ETIMEDOUT);
    const char *name = mp_err_name(MP_ETIMEDOUT);
    if (text == NULL || name == NULL || strcmp(name, "MP_ETIMEDOUT") != 0) {
        fprintf(stderr, "install consumer: mp_err_name(MP_ETIMEDOUT) is %s\n",
                name ? name : "NULL");
        return 1;
    }
    int cpus = mp_cpu_count();
    if (cpus < 1) {
        fprintf(stderr, "install consumer: mp_cpu_count() returned %d\n", cpus);
        return 1;
    }
    if (run_child() != 0)
        return 1;
    printf("multiproc %s: %s; %d CPUs; child exit code 42\nOK\n", MP_VERSION_STRING, text, cpus);
    return 0;
}
