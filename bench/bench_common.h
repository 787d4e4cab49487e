/* Helpers shared by the benchmark programs, library and floor alike. This
 * header must not include the library: the floors use it too.
 *
 * Output convention (parsed by bench/run.py): on success one line
 *     RESULT value=<v> elapsed=<seconds> [key=value ...]
 * on stdout and exit status 0; on failure a message on stderr and status 1.
 */
#ifndef MULTIPROC_BENCH_COMMON_H
#define MULTIPROC_BENCH_COMMON_H

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MIB ((size_t)1 << 20)
#define BENCH_GIB ((double)(1ULL << 30))

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((format(printf, 1, 2), noreturn)) static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* argv: <program> <mode> <iterations> [extra]; returns the iteration count. */
static inline long bench_args(int argc, char **argv, const char *usage)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        exit(2);
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(argv[2], &end, 10);
    if (errno != 0 || end == argv[2] || *end != '\0' || n < 1)
        bench_die("bad iteration count '%s'", argv[2]);
    return n;
}

/* Write all of len bytes to a blocking fd, retrying short writes and EINTR. */
static inline void bench_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            bench_die("write: %s", strerror(errno));
        p += w;
        len -= (size_t)w;
    }
}

/* Read exactly len bytes from a blocking fd. */
static inline void bench_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            bench_die("read: %s", r == 0 ? "unexpected end of file" : strerror(errno));
        p += r;
        len -= (size_t)r;
    }
}

/* Pin the calling process to a CPU if the environment asks for it:
 * BENCH_PIN="<producer cpu>,<consumer cpu>" (set by bench/run.py --pin);
 * role 0 is the producer (the parent), 1 the consumer (the child). Without
 * the variable, or with a CPU this process may not use, nothing changes. */
static inline void bench_pin(int role)
{
    const char *spec = getenv("BENCH_PIN");
    if (spec == NULL || *spec == '\0')
        return;
    int cpu[2] = {-1, -1};
    if (sscanf(spec, "%d,%d", &cpu[0], &cpu[1]) != 2 || cpu[role] < 0 || cpu[role] >= CPU_SETSIZE)
        bench_die("bad BENCH_PIN '%s' (want two CPU numbers: producer,consumer)", spec);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)cpu[role], &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0)
        bench_die("sched_setaffinity(%d): %s", cpu[role], strerror(errno));
}

/* The sum of x * x for x in [begin, end), 1 <= begin, end <= 2^26: the
 * inner loop of the sum-of-squares rows, shared by the library's benchmark
 * and its floor so that both do the same arithmetic. Blocks of 4096 terms
 * are summed in 64 bits (below 2^26 a block cannot overflow), with four
 * independent accumulators that the CPU runs in parallel, then added to
 * the 128-bit total. */
__extension__ typedef unsigned __int128 bench_u128;

#define BENCH_SUMSQ_BLOCK 4096

static inline bench_u128 bench_sumsq_range(int64_t begin, int64_t end)
{
    if (begin < 1 || end > ((int64_t)1 << 26))
        bench_die("bench_sumsq_range: [%lld, %lld) out of range", (long long)begin, (long long)end);
    bench_u128 total = 0;
    for (int64_t lo = begin; lo < end; lo += BENCH_SUMSQ_BLOCK) {
        uint64_t hi = (uint64_t)(end - lo < BENCH_SUMSQ_BLOCK ? end : lo + BENCH_SUMSQ_BLOCK);
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, x = (uint64_t)lo;
        for (; x + 4 <= hi; x += 4) {
            s0 += x * x;
            s1 += (x + 1) * (x + 1);
            s2 += (x + 2) * (x + 2);
            s3 += (x + 3) * (x + 3);
        }
        for (; x < hi; x++)
            s0 += x * x;
        total += s0 + s1 + s2 + s3;
    }
    return total;
}

#endif /* MULTIPROC_BENCH_COMMON_H */
