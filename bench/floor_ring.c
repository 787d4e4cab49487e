/* Floor of the queue rows that the library meets or beats through a pipe:
 * a single-producer, single-consumer ring in shared memory, written by hand
 * as a careful C programmer would (no library, no locks, no system call on
 * the data path).
 *
 *     floor_ring msg64 <messages>   4096 slots of 64 B; the producer copies
 *                                   each message in, the consumer copies it
 *                                   out (RESULT value = messages/s)
 *     floor_ring mibzc <messages>   4 slots of 1 MiB; the producer writes an
 *                                   8-byte header in place, the consumer
 *                                   reads it (RESULT value = GiB/s of slots)
 *
 * Each side publishes its index with a release store after every message
 * and keeps a cached copy of the other side's index, so that a cache line
 * crosses CPUs only when the cached view runs out. A side that finds the
 * ring full or empty spins, and yields the CPU after a while so that the
 * program stays correct on one CPU. BENCH_PIN pins producer and consumer
 * as in the library's program. Timing starts once the consumer is ready and
 * stops when it has read the last message.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "bench_common.h"

#define LINE 64

typedef struct ring {
    _Alignas(LINE) _Atomic uint64_t head; /* next slot the producer fills */
    _Alignas(LINE) _Atomic uint64_t tail; /* next slot the consumer reads */
    _Alignas(LINE) _Atomic int ready;     /* the consumer is running */
    _Alignas(LINE) char slots[];
} ring;

static void relax(unsigned *spins)
{
    if (++*spins < 1024) {
        __builtin_ia32_pause();
        return;
    }
    *spins = 0;
    sched_yield();
}

static void consume(ring *r, size_t slot_size, uint64_t cap, long n, int copy)
{
    bench_pin(1);
    char *buf = malloc(slot_size);
    if (!buf)
        bench_die("out of memory");
    memset(buf, 0, slot_size);
    atomic_store_explicit(&r->ready, 1, memory_order_release);
    uint64_t head = 0, tail = 0;
    int64_t check = 0;
    for (long i = 0; i < n; i++, tail++) {
        unsigned spins = 0;
        while (head == tail) {
            head = atomic_load_explicit(&r->head, memory_order_acquire);
            if (head == tail)
                relax(&spins);
        }
        const char *slot = r->slots + (tail % cap) * slot_size;
        if (copy)
            memcpy(buf, slot, slot_size);
        else
            memcpy(&check, slot, sizeof check);
        atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    }
    if (copy ? buf[0] != (char)(n - 1) : check != n - 1)
        bench_die("last message is not the last one sent");
    free(buf);
}

static void produce(ring *r, size_t slot_size, uint64_t cap, long n, int copy)
{
    char *msg = malloc(slot_size);
    if (!msg)
        bench_die("out of memory");
    memset(msg, 'x', slot_size);
    uint64_t head = 0, tail = 0;
    for (long i = 0; i < n; i++, head++) {
        unsigned spins = 0;
        while (head - tail == cap) {
            tail = atomic_load_explicit(&r->tail, memory_order_acquire);
            if (head - tail == cap)
                relax(&spins);
        }
        char *slot = r->slots + (head % cap) * slot_size;
        int64_t seq = i;
        if (copy) {
            msg[0] = (char)i;
            memcpy(slot, msg, slot_size);
        } else {
            memcpy(slot, &seq, sizeof seq);
        }
        atomic_store_explicit(&r->head, head + 1, memory_order_release);
    }
    free(msg);
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "msg64|mibzc <messages>");
    int copy = strcmp(argv[1], "msg64") == 0;
    if (!copy && strcmp(argv[1], "mibzc") != 0)
        bench_die("unknown mode '%s'", argv[1]);
    size_t slot_size = copy ? 64 : BENCH_MIB;
    uint64_t cap = copy ? 4096 : 4;
    size_t bytes = sizeof(ring) + cap * slot_size;
    ring *r = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        bench_die("mmap: %s", strerror(errno));
    pid_t c = fork();
    if (c < 0)
        bench_die("fork: %s", strerror(errno));
    if (c == 0) {
        consume(r, slot_size, cap, n, copy);
        _exit(0);
    }
    bench_pin(0);
    unsigned spins = 0;
    while (!atomic_load_explicit(&r->ready, memory_order_acquire))
        relax(&spins);
    double t0 = bench_now();
    produce(r, slot_size, cap, n, copy);
    int status;
    if (waitpid(c, &status, 0) != c || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("consumer failed");
    double elapsed = bench_now() - t0;
    double value = copy ? (double)n / elapsed : (double)n * (double)BENCH_MIB / BENCH_GIB / elapsed;
    printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", value, elapsed, n);
    return 0;
}
