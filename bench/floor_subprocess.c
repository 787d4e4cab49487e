/* Floor of the subprocess rows: posix_spawnp + waitpid, and a hand-written
 * communicate over raw pipes (poll, non-blocking write and read).
 *
 *     floor_subprocess run_true <n>
 *     floor_subprocess run_true_1g <n>
 *     floor_subprocess communicate <n>
 *
 * RESULT value = ms per run, or GiB/s, as bench_subprocess.
 */
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "bench_common.h"

#define COMM_BYTES ((size_t)200 << 20)
#define BIG_BYTES  ((size_t)1 << 30)

extern char **environ;

static void wait_ok(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            bench_die("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("child failed (status %#x)", status);
}

static double run_true(long n)
{
    char *const argv[] = {"true", NULL};
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        pid_t pid;
        int e = posix_spawnp(&pid, "true", NULL, NULL, argv, environ);
        if (e != 0)
            bench_die("posix_spawnp: %s", strerror(e));
        wait_ok(pid);
    }
    return (bench_now() - t0) * 1e3 / (double)n;
}

/* cat with its stdin and stdout on two pipes; returns the parent's ends. */
static pid_t spawn_cat(int *to, int *from)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        bench_die("pipe2: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char *const argv[] = {"cat", NULL};
    pid_t pid;
    int e = posix_spawnp(&pid, "cat", &fa, NULL, argv, environ);
    if (e != 0)
        bench_die("posix_spawnp: %s", strerror(e));
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    *to = in[1];
    *from = out[0];
    return pid;
}

static void pump(int to, int from, const char *input, char *output)
{
    size_t off = 0, got = 0;
    while (from >= 0) {
        struct pollfd p[2] = {{.fd = from, .events = POLLIN}, {.fd = to, .events = POLLOUT}};
        if (poll(p, to >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
            bench_die("poll: %s", strerror(errno));
        if (to >= 0 && p[1].revents) {
            ssize_t w = write(to, input + off, COMM_BYTES - off);
            if (w > 0)
                off += (size_t)w;
            if (off == COMM_BYTES) {
                close(to);
                to = -1;
            }
        }
        if (p[0].revents) {
            ssize_t r;
            while ((r = read(from, output + got, COMM_BYTES + 1 - got)) > 0)
                got += (size_t)r;
            if (r == 0) {
                close(from);
                from = -1;
            }
        }
    }
    if (got != COMM_BYTES)
        bench_die("cat echoed %zu bytes", got);
}

static double communicate(long n)
{
    char *input = malloc(COMM_BYTES);
    if (!input)
        bench_die("out of memory");
    memset(input, 'x', COMM_BYTES);
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        int to, from;
        pid_t pid = spawn_cat(&to, &from);
        char *output = malloc(COMM_BYTES + 1); /* what communicate returns */
        if (!output)
            bench_die("out of memory");
        pump(to, from, input, output);
        free(output);
        wait_ok(pid);
    }
    double dt = bench_now() - t0;
    free(input);
    return (double)COMM_BYTES * (double)n / BENCH_GIB / dt;
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "run_true|run_true_1g|communicate <iterations>");
    double t0 = bench_now(), value, elapsed = -1;
    if (strcmp(argv[1], "run_true") == 0) {
        value = run_true(n);
    } else if (strcmp(argv[1], "run_true_1g") == 0) {
        char *m = mmap(NULL, BIG_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            bench_die("mmap 1 GiB: %s", strerror(errno));
        for (size_t i = 0; i < BIG_BYTES; i += 4096)
            m[i] = 1;
        t0 = bench_now();
        value = run_true(n);
        elapsed = bench_now() - t0; /* not the munmap */
        munmap(m, BIG_BYTES);
    } else if (strcmp(argv[1], "communicate") == 0) {
        value = communicate(n);
    } else {
        bench_die("unknown mode '%s'", argv[1]);
    }
    if (elapsed < 0)
        elapsed = bench_now() - t0;
    printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", value, elapsed, n);
    return 0;
}
