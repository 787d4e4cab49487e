#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "process/start_method.h"
#include "mp_test.h"

int mp_test_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        /* The shared heap's memfd lives as long as the process, by design:
         * a test that creates the heap on first use leaks nothing. */
        char path[300], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len > 0) {
            target[len] = '\0';
            if (strncmp(target, "/memfd:multiproc-heap", 21) == 0)
                continue;
        }
        n++;
    }
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

/* -1: the suite does not count fds. */
static int mp_test_fds_before = -1;

void mp_test_fd_setup(void)
{
    /* The fork server's fds live as long as the process: count them in,
     * with its spares ready (their number is then fixed). */
    if (mp_get_start_method() == MP_START_FORKSERVER || mp__forkserver_running())
        cr_assert_eq(mp_forkserver_ensure(), 0);
    mp_test_fds_before = mp_test_fd_count();
}

void mp_test_fd_body_end(void)
{
    if (mp_test_fds_before < 0)
        return;
    if (mp__forkserver_running())
        cr_assert_eq(mp_forkserver_ensure(), 0);
    int after = mp_test_fd_count();
    cr_assert(after == mp_test_fds_before, "fd leak: %d fds open before the test, %d after",
              mp_test_fds_before, after);
}

void mp_test_fd_check(void)
{
    mp_test_fd_body_end();
}

double mp_test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int mp_test_pid_state(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp[2] : 0;
}

int mp_test_children(pid_t pid, pid_t *kids, int cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0, kid;
    while (fscanf(f, "%d", &kid) == 1)
        if (n++ < cap && kids)
            kids[n - 1] = kid;
    fclose(f);
    return n;
}

mp_pool *mp_test_pool(int n)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = n}));
    return p;
}

void mp_test_pool_finish(mp_pool *p, double timeout)
{
    mp_assert_ok(mp_pool_close(p));
    mp_assert_ok(mp_pool_join(p, timeout));
    mp_pool_destroy(p);
}
