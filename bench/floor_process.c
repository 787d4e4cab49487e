/* Floors of the process start rows, by hand:
 *
 *     floor_process fork <iterations>    fork + _exit + waitpid
 *     floor_process spawn <iterations>   posix_spawn of this program (which
 *                                        exits at once in main) + waitpid
 *
 * RESULT value = milliseconds per start+join.
 */
#include <spawn.h>
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

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "exit") == 0)
        return 0; /* the spawned image of the spawn floor */
    long n = bench_args(argc, argv, "fork|spawn <iterations>");
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
