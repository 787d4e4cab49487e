/* Floor of pipe_64B_msgs_per_s and pipe_1MiB_GiB_per_s: raw write/read over
 * a kernel pipe between a producer (the parent) and a consumer (a forked
 * child), by hand, with no framing.
 *
 *     floor_pipe msg64 <messages> [pipe_size]
 *     floor_pipe msg64bulk <messages> [pipe_size]
 *     floor_pipe mib   <messages> [pipe_size]
 *
 * msg64: one write(2) of 64 bytes per message; one read(2) of 64 bytes per
 *        message (the hand-written code for fixed-size records; writes of
 *        at most PIPE_BUF bytes are atomic, so each read gets one record).
 * msg64bulk: the same writes; the consumer reads whatever is there into a
 *        64 KiB buffer. Not a row: a diagnostic. On the 2-core machines it is
 *        about half as fast as msg64 (reader and writer then contend on the
 *        pipe for every message), which matters for a library that reads
 *        ahead.
 * mib:   write(2) of 1 MiB per message (retrying short writes); the consumer
 *        reads each message into one reused 1 MiB buffer.
 * pipe_size: if given and not 0, F_SETPIPE_SZ to that size, so the floor can
 *        use the same pipe capacity as the library (run.py passes the size
 *        bench_pipe reports). Without it the kernel default (64 KiB).
 *
 * BENCH_PIN="<producer cpu>,<consumer cpu>" pins the two processes (run.py
 * does, to two different CPUs: see bench_common.h).
 *
 * Timing starts once the consumer is running (it sends a ready byte) and
 * stops when it has acknowledged the last message. RESULT value =
 * messages/s (msg64) or GiB/s (mib).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "bench_common.h"

#define MSG64      64
#define READ_CHUNK (64 * 1024)

static void consume(int rfd, int ackfd, long n, size_t size, bool bulk)
{
    char *buf = malloc(size > READ_CHUNK ? size : READ_CHUNK);
    if (buf == NULL)
        bench_die("out of memory");
    memset(buf, 0, size > READ_CHUNK ? size : READ_CHUNK);
    bench_write_all(ackfd, "r", 1);
    if (bulk) {
        unsigned long long left = (unsigned long long)n * MSG64;
        while (left > 0) {
            ssize_t r = read(rfd, buf, READ_CHUNK);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                bench_die("read: %s", r == 0 ? "unexpected end of file" : strerror(errno));
            left -= (unsigned long long)r;
        }
    } else {
        for (long i = 0; i < n; i++)
            bench_read_all(rfd, buf, size);
    }
    bench_write_all(ackfd, "k", 1);
    free(buf);
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "msg64|msg64bulk|mib <messages> [pipe_size]");
    size_t size;
    bool bulk = strcmp(argv[1], "msg64bulk") == 0;
    if (strcmp(argv[1], "msg64") == 0 || bulk)
        size = MSG64;
    else if (strcmp(argv[1], "mib") == 0)
        size = BENCH_MIB;
    else
        bench_die("unknown mode '%s'", argv[1]);
    int want_pipe_size = argc > 3 ? atoi(argv[3]) : 0;

    int data[2], ack[2];
    if (pipe2(data, O_CLOEXEC) < 0 || pipe2(ack, O_CLOEXEC) < 0)
        bench_die("pipe2: %s", strerror(errno));
    if (want_pipe_size > 0 && fcntl(data[1], F_SETPIPE_SZ, want_pipe_size) < 0)
        bench_die("F_SETPIPE_SZ %d: %s", want_pipe_size, strerror(errno));
    int pipe_size = fcntl(data[1], F_GETPIPE_SZ);

    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        bench_pin(1);
        close(data[1]);
        close(ack[0]);
        consume(data[0], ack[1], n, size, bulk);
        _exit(0);
    }
    bench_pin(0);
    close(data[0]);
    close(ack[1]);

    char *msg = malloc(size);
    if (msg == NULL)
        bench_die("out of memory");
    memset(msg, 'x', size);
    char c;
    bench_read_all(ack[0], &c, 1);

    double t0 = bench_now();
    for (long i = 0; i < n; i++)
        bench_write_all(data[1], msg, size);
    bench_read_all(ack[0], &c, 1);
    double dt = bench_now() - t0;

    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            bench_die("waitpid: %s", strerror(errno));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("consumer failed (status %#x)", status);

    double value = size == MSG64 ? (double)n / dt : (double)n * (double)size / BENCH_GIB / dt;
    printf("RESULT value=%.6g elapsed=%.6f n=%ld pipe_size=%d\n", value, dt, n, pipe_size);
    free(msg);
    return 0;
}
