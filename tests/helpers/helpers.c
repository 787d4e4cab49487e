#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
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

pid_t mp_test_pool_worker(const char *url, const char *pool, const mp_worker_opts *o)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* The worker dies with the test: one left behind by a test that
         * timed out would keep serving (and keep ctest's output pipe
         * open) until ctest's own timeout. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(2);
        mp_manager *m;
        if (mp_manager_open(&m, url) < 0)
            _exit(2);
        int rc = mp_worker_serve(m, pool, o);
        if (rc != 0)
            fprintf(stderr, "worker %d: %s\n", (int)getpid(), mp_err_name(rc));
        mp_manager_close(m);
        _exit(rc == 0 ? 0 : 3);
    }
    return pid;
}

void mp_test_pool_workers_stop(mp_manager *m, const char *pool, const pid_t *pids, int n)
{
    bool gone[8] = {false};
    cr_assert(n <= 8);
    for (int left = n, round = 0; left > 0; round++) {
        cr_assert(round < 60, "a worker does not stop");
        cr_assert_eq(mp_worker_stop(m, pool), 0);
        for (int k = 0; k < 100 && left > 0; k++) {
            for (int i = 0; i < n; i++) {
                int st;
                if (gone[i] || waitpid(pids[i], &st, WNOHANG) != pids[i])
                    continue;
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker status %d", st);
                gone[i] = true;
                left--;
            }
            usleep(10000);
        }
    }
}
