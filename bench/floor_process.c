/* Floor of process_start_fork_ms: fork + _exit + waitpid, by hand.
 *
 *     floor_process fork <iterations>
 *
 * RESULT value = milliseconds per start+join.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include "bench_common.h"

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "fork <iterations>");
    if (strcmp(argv[1], "fork") != 0)
        bench_die("unknown mode '%s'", argv[1]);

    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            bench_die("fork: %s", strerror(errno));
        if (pid == 0)
            _exit(0);
        int status;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR)
                bench_die("waitpid: %s", strerror(errno));
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bench_die("child failed (status %#x)", status);
    }
    double dt = bench_now() - t0;
    printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", dt * 1e3 / (double)n, dt, n);
    return 0;
}
