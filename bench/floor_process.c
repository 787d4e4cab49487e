/* Floors of the process start rows, by hand:
 *
 *     floor_process fork <iterations>    fork + _exit + waitpid
 *     floor_process spawn <iterations>   posix_spawn of this program (which
 *                                        exits at once in main) + waitpid
 *     floor_process forkn|spawnn <iterations> <n>   the pool start rows: n
 *                                        children started at once (fork or
 *                                        posix_spawn as above), then n waitpid
 *
 * RESULT value = milliseconds per start+join (of all n children).
 */
#include <spawn.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "bench_common.h"

extern char **environ;

static void wait_ok(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            bench_die("waitpid: %s", strerror(errno));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("child failed (status %#x)", status);
}

static void spawn_loop(long n)
{
    char *args[] = {"floor_process", "exit", NULL};
    for (long i = 0; i < n; i++) {
        pid_t pid;
        int e = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ);
        if (e)
            bench_die("posix_spawn: %s", strerror(e));
        wait_ok(pid);
    }
}

static pid_t start_one(bool spawn)
{
    char *args[] = {"floor_process", "exit", NULL};
    pid_t pid;
    if (spawn) {
        int e = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ);
        if (e)
            bench_die("posix_spawn: %s", strerror(e));
        return pid;
    }
    pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(0);
    return pid;
}

/* n children at a time: what a pool of n workers starts. */
static int group_loop(long iters, bool spawn, const char *count)
{
    long n = count ? strtol(count, NULL, 10) : 0;
    if (n < 1 || n > 1024)
        bench_die("bad child count '%s'", count ? count : "");
    pid_t *pids = malloc((size_t)n * sizeof *pids);
    if (!pids)
        bench_die("out of memory");
    double t0 = bench_now();
    for (long k = 0; k < iters; k++) {
        for (long i = 0; i < n; i++)
            pids[i] = start_one(spawn);
        for (long i = 0; i < n; i++)
            wait_ok(pids[i]);
    }
    double dt = bench_now() - t0;
    free(pids);
    printf("RESULT value=%.6f elapsed=%.6f n=%ld children=%ld\n", dt * 1e3 / (double)iters, dt,
           iters, n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "exit") == 0)
        return 0; /* the spawned image of the spawn floor */
    long n = bench_args(argc, argv, "fork|spawn <iterations> | forkn|spawnn <iterations> <n>");
    if (strcmp(argv[1], "forkn") == 0 || strcmp(argv[1], "spawnn") == 0)
        return group_loop(n, argv[1][0] == 's', argc > 3 ? argv[3] : NULL);
    if (strcmp(argv[1], "spawn") == 0) {
        double t0 = bench_now();
        spawn_loop(n);
        double dt = bench_now() - t0;
        printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", dt * 1e3 / (double)n, dt, n);
        return 0;
    }
    if (strcmp(argv[1], "fork") != 0)
        bench_die("unknown mode '%s'", argv[1]);

    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            bench_die("fork: %s", strerror(errno));
        if (pid == 0)
            _exit(0);
        wait_ok(pid);
    }
    double dt = bench_now() - t0;
    printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", dt * 1e3 / (double)n, dt, n);
    return 0;
}
