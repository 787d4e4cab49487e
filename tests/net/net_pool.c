/* net_pool — the programs of the distributed pool's tests across hosts
 * (tests/net/run.sh runs them on the hosts of tests/net/netns.sh). Each
 * command prints what it checks and exits non-zero on a failed check.
 *
 *   net_pool worker URL NAME RUNS
 *       serve the pool "net" (task "work") until mp_worker_stop or
 *       SIGTERM; every task run appends "NAME <id>" to the file RUNS when
 *       it starts (O_APPEND), so that the script counts the runs.
 *   net_pool map URL FIRST N MS [SUBMITTED]
 *       imap_unordered of the tasks FIRST..FIRST+N-1, chunksize 1, each
 *       sleeping MS ms in the worker; checks one result per task, each
 *       the task's own (id * 3 + 1). Creates the file SUBMITTED (if
 *       given) once the submission returned. Prints the elapsed time.
 *   net_pool stop URL
 *       mp_worker_stop of the pool "net".
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <multiproc.h>

#define POOL "net"

typedef struct item {
    uint64_t id;
    uint64_t ms;
} item;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("net_pool: FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- worker ---- */

static int runs_fd = -1;
static char worker_name[32];
static volatile int stop_flag;

static void on_term(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int work(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                void *ctx)
{
    (void)ctx, (void)out_cap;
    item it;
    if (in_len != sizeof(it))
        return 1;
    memcpy(&it, in, sizeof(it));
    if (runs_fd >= 0) {
        char line[64];
        int len = snprintf(line, sizeof(line), "%s %llu\n", worker_name, (unsigned long long)it.id);
        if (write(runs_fd, line, (size_t)len) != len)
            return 2;
    }
    if (it.ms > 0) {
        struct timespec ts = {(time_t)(it.ms / 1000), (long)(it.ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    uint64_t r = it.id * 3 + 1;
    memcpy(out, &r, sizeof(r));
    *out_len = sizeof(r);
    return 0;
}

static int cmd_worker(const char *url, const char *name, const char *runs)
{
    snprintf(worker_name, sizeof(worker_name), "%s", name);
    runs_fd = open(runs, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (runs_fd < 0)
        die("%s: %s", runs, strerror(errno));
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    mp_manager *m;
    int rc = mp_manager_open(&m, url);
    if (rc < 0)
        die("worker %s: mp_manager_open: %s", name, mp_strerror(rc));
    rc = mp_worker_serve(m, POOL, &(mp_worker_opts){.stop = &stop_flag});
    mp_manager_close(m);
    if (rc < 0)
        die("worker %s: mp_worker_serve: %s", name, mp_strerror(rc));
    printf("worker %s: stopped\n", name);
    return 0;
}

/* ---- client ---- */

static int cmd_map(const char *url, uint64_t first, size_t n, uint64_t ms, const char *submitted)
{
    mp_manager *m;
    mp_pool *p;
    int rc = mp_manager_open(&m, url);
    if (rc < 0)
        die("mp_manager_open: %s", mp_strerror(rc));
    if ((rc = mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = POOL})) < 0)
        die("mp_pool_create: %s", mp_strerror(rc));
    item *in = calloc(n, sizeof(*in));
    unsigned char *seen = calloc(n, 1);
    if (!in || !seen)
        die("out of memory");
    for (size_t i = 0; i < n; i++)
        in[i] = (item){first + i, ms};
    double t0 = now();
    mp_imap *it;
    rc = mp_pool_imap(p,
                      &(mp_map_spec){.fn = work,
                                     .in = in,
                                     .n = n,
                                     .in_size = sizeof(item),
                                     .out_size = sizeof(uint64_t),
                                     .chunksize = 1},
                      false, &it);
    if (rc < 0)
        die("mp_pool_imap: %s", mp_strerror(rc));
    printf("map: %zu tasks (ids %llu..%llu, %llu ms each) submitted in %.3f s\n", n,
           (unsigned long long)first, (unsigned long long)(first + n - 1), (unsigned long long)ms,
           now() - t0);
    fflush(stdout);
    if (submitted) {
        int fd = open(submitted, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            die("%s: %s", submitted, strerror(errno));
        close(fd);
    }
    size_t got = 0, index;
    uint64_t r;
    int lost = 0; /* errors of the wait retried */
    for (;;) {
        mp_task_error err = {.index = SIZE_MAX};
        rc = mp_imap_next(it, &r, &index, &err, 60);
        if (rc < 0 && rc != MP_EEOF && err.index != SIZE_MAX)
            die("task %llu failed: %s (code %s)", (unsigned long long)(first + err.index),
                mp_strerror(rc), mp_err_name(err.code));
        /* Any other error of the wait (not of an item) while the server is
         * away: the next call reconnects (reconnect=1). */
        if (rc < 0 && rc != MP_EEOF && lost < 100) {
            lost++;
            printf("map: %s (%s) after %zu results; waiting on (reconnect=1)\n", mp_strerror(rc),
                   mp_err_name(rc), got);
            usleep(100000);
            continue;
        }
        if (rc != 0)
            break;
        if (index >= n)
            die("result with index %zu out of 0..%zu", index, n - 1);
        if (seen[index]++)
            die("task %llu: a second result", (unsigned long long)(first + index));
        if (r != (first + index) * 3 + 1)
            die("task %llu: result %llu, expected %llu", (unsigned long long)(first + index),
                (unsigned long long)r, (unsigned long long)((first + index) * 3 + 1));
        got++;
    }
    if (rc != MP_EEOF)
        die("mp_imap_next after %zu of %zu results: %s", got, n, mp_strerror(rc));
    if (got != n)
        die("%zu results for %zu tasks", got, n);
    printf("map: %zu results for %zu tasks, each once and right, in %.3f s (%d errors of the "
           "wait retried)\n",
           got, n, now() - t0, lost);
    mp_imap_destroy(it);
    mp_pool_close(p);
    mp_pool_destroy(p);
    mp_manager_close(m);
    free(in);
    free(seen);
    return 0;
}

static int cmd_stop(const char *url)
{
    mp_manager *m;
    int rc = mp_manager_open(&m, url);
    if (rc == 0)
        rc = mp_worker_stop(m, POOL);
    if (rc < 0)
        die("mp_worker_stop: %s", mp_strerror(rc));
    mp_manager_close(m);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = mp_task_register("work", work);
    if (rc < 0)
        die("mp_task_register: %s", mp_strerror(rc));
    if (argc >= 5 && strcmp(argv[1], "worker") == 0)
        return cmd_worker(argv[2], argv[3], argv[4]);
    if (argc >= 6 && strcmp(argv[1], "map") == 0)
        return cmd_map(argv[2], strtoull(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
                       strtoull(argv[5], NULL, 10), argc > 6 ? argv[6] : NULL);
    if (argc >= 3 && strcmp(argv[1], "stop") == 0)
        return cmd_stop(argv[2]);
    fprintf(stderr, "usage: net_pool worker URL NAME RUNS | map URL FIRST N MS [SUBMITTED] | "
                    "stop URL\n");
    return 2;
}
