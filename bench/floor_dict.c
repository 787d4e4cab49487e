/* The floor of dict_op_us and dict_4proc_op_us: what a C programmer writes
 * by hand without the library. One open-addressing table of fixed-size
 * slots (16-byte keys, 8-byte values) in an anonymous MAP_SHARED mapping,
 * under one process-shared pthread mutex; the same workload as
 * bench_dict.c (100 keys per process, set then get). It does less than the
 * library: no variable sizes, no growth, no deletion, no allocation, no
 * robustness to a dead holder.
 *
 *     floor_dict op|4proc <iterations>
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "bench_common.h"

#define NKEYS 100
#define SLOTS 1024

typedef struct slot {
    char key[16];
    uint32_t klen;
    int used;
    int64_t value;
} slot;

typedef struct table {
    pthread_mutex_t lock;
    volatile int go;
    double elapsed[4];
    slot s[SLOTS];
} table;

static table *t;

static uint64_t hash(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3u;
    return h;
}

static slot *find(const char *k, size_t n)
{
    for (uint64_t i = hash(k, n) % SLOTS;; i = (i + 1) % SLOTS) {
        slot *s = &t->s[i];
        if (!s->used || (s->klen == n && memcmp(s->key, k, n) == 0))
            return s;
    }
}

static void set(const char *k, size_t n, int64_t v)
{
    pthread_mutex_lock(&t->lock);
    slot *s = find(k, n);
    if (!s->used) {
        memcpy(s->key, k, n);
        s->klen = (uint32_t)n;
        s->used = 1;
    }
    s->value = v;
    pthread_mutex_unlock(&t->lock);
}

static int get(const char *k, size_t n, int64_t *v)
{
    pthread_mutex_lock(&t->lock);
    slot *s = find(k, n);
    int found = s->used;
    if (found)
        *v = s->value;
    pthread_mutex_unlock(&t->lock);
    return found;
}

static void child(int id, long iters)
{
    char keys[NKEYS][16];
    for (int k = 0; k < NKEYS; k++)
        snprintf(keys[k], sizeof(keys[k]), "%c%02d-key", 'a' + id, k);
    while (!__atomic_load_n(&t->go, __ATOMIC_ACQUIRE))
        usleep(100);
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        int64_t out;
        set(keys[i % NKEYS], 6, i);
        if (!get(keys[i % NKEYS], 6, &out) || out != i)
            _exit(1);
    }
    t->elapsed[id] = bench_now() - t0;
    _exit(0);
}

int main(int argc, char **argv)
{
    long iters = bench_args(argc, argv, "op|4proc <iterations>");
    int procs = strcmp(argv[1], "4proc") == 0 ? 4 : 1;
    t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED)
        bench_die("mmap: %s", strerror(errno));
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&t->lock, &a);
    pid_t pid[4];
    for (int i = 0; i < procs; i++) {
        pid[i] = fork();
        if (pid[i] < 0)
            bench_die("fork: %s", strerror(errno));
        if (pid[i] == 0)
            child(i, iters);
    }
    __atomic_store_n(&t->go, 1, __ATOMIC_RELEASE);
    double worst = 0;
    for (int i = 0; i < procs; i++) {
        int st;
        if (waitpid(pid[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bench_die("child %d failed", i);
        worst = t->elapsed[i] > worst ? t->elapsed[i] : worst;
    }
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", worst / (2.0 * (double)iters) * 1e6, worst,
           iters);
    return 0;
}
