/* Tests of the shared heap: allocation semantics and bad input, sharing
 * between processes (including memory allocated after a child started),
 * exhaustion, memory given back to the system, and the collision rate of
 * the family address in exec'd programs. The kill-at-random test is in
 * stress_heap.c, so that it also runs under ThreadSanitizer. */
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap/heap_internal.h"
#include "mp_test.h"

extern char **environ;

/* 150 s: the 1000 exec'd probes of the collision test take about 20 s under
 * ASan on a slow VM, and twice that beside another suite. */
TestSuite(heap, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 150);

static const size_t sizes[] = {1,   15,   16,   17,   63,   64,   100,   128,    129,
                               500, 1000, 4096, 8191, 8192, 8193, 65536, 200000, (size_t)3 << 20};

Test(heap, alloc_zeroed_aligned_and_writable)
{
    void *blocks[MP__ARRAY_LEN(sizes)];
    for (size_t i = 0; i < MP__ARRAY_LEN(sizes); i++) {
        unsigned char *p = mp_alloc(sizes[i]);
        cr_assert_not_null(p, "mp_alloc(%zu)", sizes[i]);
        cr_assert_eq((uintptr_t)p % 16, 0, "mp_alloc(%zu) = %p not 16-aligned", sizes[i],
                     (void *)p);
        cr_assert(mp_heap_contains(p, sizes[i]));
        cr_assert_geq(mp_alloc_size(p), sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++)
            cr_assert_eq(p[j], 0, "byte %zu of mp_alloc(%zu) is not zero", j, sizes[i]);
        memset(p, (int)i + 1, sizes[i]);
        blocks[i] = p;
    }
    for (size_t i = 0; i < MP__ARRAY_LEN(sizes); i++) {
        const unsigned char *p = blocks[i];
        cr_assert_eq(p[0], i + 1);
        cr_assert_eq(p[sizes[i] - 1], i + 1, "block %zu overwritten by another", i);
    }
    for (size_t i = 0; i < MP__ARRAY_LEN(sizes); i++)
        mp_free(blocks[i]);
    /* A block reused after a free is zeroed again. */
    for (size_t i = 0; i < MP__ARRAY_LEN(sizes); i++) {
        unsigned char *p = mp_alloc(sizes[i]);
        cr_assert_not_null(p);
        cr_assert_eq(p[0], 0);
        cr_assert_eq(p[sizes[i] - 1], 0);
        mp_free(p);
    }
    mp_assert_ok(mp_heap_check());
}

Test(heap, bad_input)
{
    cr_assert_null(mp_alloc(0));
    cr_assert_null(mp_alloc(SIZE_MAX));
    cr_assert_null(mp_alloc(SIZE_MAX / 2));
    void *q = NULL;
    mp_assert_rc(mp__heap_alloc(&q, 0), MP_EINVAL);
    mp_assert_rc(mp__heap_alloc(&q, SIZE_MAX), MP_EINVAL);
    mp_assert_rc(mp__heap_alloc(NULL, 16), MP_EINVAL);
    cr_assert_null(q);
    cr_assert_null(mp_calloc(SIZE_MAX / 2, 3), "overflowing calloc");
    cr_assert_null(mp_calloc(0, 8));
    mp_free(NULL);
    int local = 5;
    void *priv = malloc(64);
    mp_free(&local); /* not ours: ignored */
    mp_free(priv);
    cr_assert_eq(local, 5);
    cr_assert_eq(mp_alloc_size(priv), 0);
    cr_assert_eq(mp_alloc_size(NULL), 0);
    cr_assert_null(mp_realloc(priv, 128), "realloc of a foreign pointer");
    cr_assert_not(mp_heap_contains(priv, 1));
    free(priv);
    char *p = mp_alloc(100);
    mp_free(p + 16); /* inside a block, not its start: ignored */
    cr_assert_eq(mp_alloc_size(p), 112);
    char *big = mp_alloc(100000);
    mp_free(big + 64);
    cr_assert_geq(mp_alloc_size(big), 100000);
    mp_free(big);
    mp_free(big); /* a second free of a large block is caught */
    mp_free(p);
    mp_assert_rc(mp_heap_get_stats(NULL), MP_EINVAL);
    /* Consistent, and the three wrong frees since the heap exists counted. */
    mp_heap_stats st;
    mp_assert_ok(mp_heap_get_stats(&st));
    cr_assert_geq(st.bad_frees, 3);
    cr_assert_eq(mp_heap_check(), (int)st.bad_frees);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static uint64_t bad_frees(void)
{
    mp_heap_stats st;
    mp_assert_ok(mp_heap_get_stats(&st));
    return st.bad_frees;
}

Test(heap, double_free_of_a_small_block_is_refused)
{
    mp_assert_ok(mp_init(NULL));
    uint64_t before = bad_frees();
    char *p = mp_alloc(64);
    cr_assert_not_null(p);
    mp_free(p);
    cr_assert_eq(mp_alloc_size(p), 0, "a freed block has no size");
    cr_assert_null(mp_realloc(p, 128), "realloc of a freed block");
    mp_free(p); /* the second free: refused, changes nothing */
    cr_assert_eq(bad_frees(), before + 1);
    char *a = mp_alloc(64), *b = mp_alloc(64);
    cr_assert(a && b);
    cr_assert_neq(a, b, "one block handed out twice");
    cr_assert_eq(mp_heap_check(), (int)(before + 1));
    mp_free(a);
    mp_free(b);
    cr_assert_eq(mp_heap_check(), (int)(before + 1));
}

Test(heap, double_free_of_a_large_block_is_refused)
{
    mp_assert_ok(mp_init(NULL));
    uint64_t before = bad_frees();
    char *p = mp_alloc(100000);
    cr_assert_not_null(p);
    mp_free(p);
    mp_free(p);
    cr_assert_eq(bad_frees(), before + 1);
    char *a = mp_alloc(100000), *b = mp_alloc(100000);
    cr_assert(a && b);
    cr_assert_neq(a, b);
    cr_assert_eq(mp_heap_check(), (int)(before + 1));
    mp_free(a);
    mp_free(b);
}

Test(heap, free_of_a_pointer_that_is_no_block_start_is_refused)
{
    mp_assert_ok(mp_init(NULL));
    uint64_t before = bad_frees();
    /* A 16-byte block: its class's slab is carved 16 blocks at a time, so
     * the slab's block 1000 has never been handed out. */
    char *p = mp_alloc(16), *big = mp_alloc((size_t)3 << 16);
    cr_assert(p && big);
    char *slab = (char *)((uintptr_t)p & ~(MP__SPAN - 1));
    char *never = slab + MP__SPAN_HDR + 1000 * 16;
    cr_assert(never != p);
    memset(p, 0x5a, 16);
    mp_free(p + 8);
    mp_free(p + 1);
    mp_free(never);
    mp_free(big + 64);
    mp_free(big + MP__SPAN); /* the start of the block's second span */
    cr_assert_eq(bad_frees(), before + 5);
    cr_assert_eq(mp_alloc_size(p), 16);
    cr_assert_eq(mp_alloc_size(p + 8), 0);
    cr_assert_geq(mp_alloc_size(big), (size_t)3 << 16);
    cr_assert_eq(p[15], 0x5a, "a refused free changed the block");
    /* Nothing was freed: more allocations than the slab holds return
     * neither p nor any block twice (the never handed out one once). */
    enum { N = 5000 };
    void **got = malloc(N * sizeof *got);
    cr_assert_not_null(got);
    for (int i = 0; i < N; i++) {
        got[i] = mp_alloc(16);
        cr_assert_not_null(got[i]);
        cr_assert(got[i] != p && got[i] != p + 8, "block %d is %p", i, got[i]);
    }
    qsort(got, N, sizeof *got, cmp_ptr);
    for (int i = 1; i < N; i++)
        cr_assert_neq(got[i], got[i - 1], "a block handed out twice");
    for (int i = 0; i < N; i++)
        mp_free(got[i]);
    free(got);
    mp_free(p);
    mp_free(big);
    cr_assert_eq(mp_heap_check(), (int)(before + 5));
}

/* Threads free the same blocks at once: each block is freed exactly once. */
enum { RACE_BLOCKS = 500, RACE_THREADS = 4 };
static void *race_blocks[RACE_BLOCKS];
static pthread_barrier_t race_start;

static void *free_all(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&race_start);
    for (int i = 0; i < RACE_BLOCKS; i++)
        mp_free(race_blocks[i]);
    return NULL;
}

Test(heap, racing_double_frees_free_each_block_once)
{
    mp_assert_ok(mp_init(NULL));
    uint64_t before = bad_frees();
    for (int i = 0; i < RACE_BLOCKS; i++)
        cr_assert_not_null(race_blocks[i] = mp_alloc(i % 2 ? 64 : 20000));
    pthread_barrier_init(&race_start, NULL, RACE_THREADS);
    pthread_t t[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, free_all, NULL), 0);
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL); /* their caches go back to the heap */
    pthread_barrier_destroy(&race_start);
    cr_assert_eq(bad_frees(), before + (uint64_t)RACE_BLOCKS * (RACE_THREADS - 1));
    cr_assert_eq(mp_heap_check(), (int)(before + (uint64_t)RACE_BLOCKS * (RACE_THREADS - 1)));
    /* Every small block is in the free structures once: allocating many
     * more than there were never returns one twice. */
    enum { N = 4 * RACE_BLOCKS };
    void **got = malloc(N * sizeof *got);
    cr_assert_not_null(got);
    for (int i = 0; i < N; i++)
        cr_assert_not_null(got[i] = mp_alloc(64));
    qsort(got, N, sizeof *got, cmp_ptr);
    for (int i = 1; i < N; i++)
        cr_assert_neq(got[i], got[i - 1], "a block handed out twice");
    for (int i = 0; i < N; i++)
        mp_free(got[i]);
    free(got);
}

static int child_frees_again(const void *arg, size_t len)
{
    (void)len;
    void *p = *(void *const *)arg;
    mp_heap_stats st;
    if (mp_heap_get_stats(&st) < 0)
        return 1;
    mp_free(p);
    mp_heap_stats after;
    if (mp_heap_get_stats(&after) < 0)
        return 1;
    return after.bad_frees == st.bad_frees + 1 ? 0 : 2;
}

Test(heap, a_double_free_by_another_process_is_refused)
{
    mp_assert_ok(mp_init(NULL));
    uint64_t before = bad_frees();
    void *p = mp_alloc(64);
    cr_assert_not_null(p);
    mp_free(p); /* in this thread's cache, free */
    mp_process *c;
    mp_assert_ok(mp_process_create(
        &c, &(mp_process_opts){.target = child_frees_again, .args = &p, .args_len = sizeof p}));
    mp_assert_ok(mp_process_start(c));
    mp_assert_ok(mp_process_join(c, 30));
    int code = -1;
    mp_assert_ok(mp_process_exitcode(c, &code));
    cr_assert_eq(code, 0, "the child's free was not refused (exit %d)", code);
    mp_process_destroy(c);
    char *a = mp_alloc(64), *b = mp_alloc(64);
    cr_assert(a && b && a != b);
    cr_assert_eq(mp_heap_check(), (int)(before + 1));
    mp_free(a);
    mp_free(b);
}

Test(heap, calloc_and_realloc)
{
    int *a = mp_calloc(100, sizeof(int));
    cr_assert_not_null(a);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(a[i], 0);
        a[i] = i;
    }
    a = mp_realloc(a, 10000 * sizeof(int)); /* small -> large: moves */
    cr_assert_not_null(a);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(a[i], i);
    a[9999] = 42;
    int *b = mp_realloc(a, 50 * sizeof(int)); /* large -> small: moves back */
    cr_assert_not_null(b);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(b[i], i);
    int *c = mp_realloc(b, 52 * sizeof(int)); /* fits the same block */
    cr_assert_eq(c, b);
    cr_assert_null(mp_realloc(c, 0), "realloc to 0 frees");
    char *d = mp_realloc(NULL, 30);
    cr_assert_not_null(d);
    cr_assert_null(mp_realloc(d, SIZE_MAX / 2), "failed realloc");
    d[29] = 'x'; /* still ours */
    mp_free(d);
    mp_assert_ok(mp_heap_check());
}

Test(heap, init_options)
{
    mp_assert_rc(mp_init(&(mp_init_opts){.heap_size = 4096}), MP_EINVAL);
    mp_assert_rc(mp_init(&(mp_init_opts){.heap_size = SIZE_MAX}), MP_EINVAL);
    mp_assert_ok(mp_init(&(mp_init_opts){.heap_size = (size_t)8 << 20}));
    mp_assert_ok(mp_init(&(mp_init_opts){.heap_size = (size_t)8 << 20}));
    mp_assert_ok(mp_init(NULL));
    mp_assert_rc(mp_init(&(mp_init_opts){.heap_size = (size_t)16 << 20}), MP_EBUSY);
    mp_heap_stats st;
    mp_assert_ok(mp_heap_get_stats(&st));
    cr_assert_eq(st.reserved, (size_t)8 << 20);
    cr_assert_eq((uintptr_t)st.base, mp__heap_family_addr());
}

Test(heap, env_size_and_bad_env)
{
    setenv("MP_HEAP_SIZE", "12x", 1);
    cr_assert_null(mp_alloc(8), "a malformed MP_HEAP_SIZE fails");
    mp_assert_rc(mp_init(NULL), MP_EINVAL);
    setenv("MP_HEAP_SIZE", "3M", 1);
    cr_assert_not_null(mp_alloc(8));
    mp_heap_stats st;
    mp_assert_ok(mp_heap_get_stats(&st));
    cr_assert_eq(st.reserved, (size_t)3 << 20);
}

Test(heap, exhaustion_is_enomem_and_recoverable)
{
    mp_assert_ok(mp_init(&(mp_init_opts){.heap_size = (size_t)2 << 20}));
    void *big[64];
    int n = 0;
    while (n < 64 && (big[n] = mp_alloc(60000)) != NULL)
        n++;
    cr_assert(n > 10 && n < 32, "%d large blocks in a 2 MiB heap", n);
    cr_assert_null(mp_alloc(60000));
    cr_assert_null(mp_alloc(16), "no span left for a small slab");
    void *q = NULL;
    mp_assert_rc(mp__heap_alloc(&q, 60000), MP_ENOMEM);
    cr_assert_null(q, "*out untouched on failure");
    mp_free(big[--n]);
    void *s = mp_alloc(16);
    cr_assert_not_null(s, "a freed span serves a new slab");
    while (n > 0)
        mp_free(big[--n]);
    cr_assert_not_null(big[0] = mp_alloc((size_t)1 << 20), "spans coalesce again");
    mp_free(big[0]);
    mp_free(s);
    mp_assert_ok(mp_heap_check());
}

Test(heap, large_free_returns_memory)
{
    size_t len = (size_t)64 << 20;
    mp_heap_stats before, during, after;
    mp_assert_ok(mp_heap_get_stats(&before));
    char *p = mp_alloc(len);
    cr_assert_not_null(p);
    memset(p, 0xab, len);
    mp_assert_ok(mp_heap_get_stats(&during));
    cr_assert_geq(during.resident, before.resident + len);
    cr_assert_geq(during.span_bytes, len);
    mp_free(p);
    mp_assert_ok(mp_heap_get_stats(&after));
    cr_assert_leq(after.resident, before.resident + ((size_t)1 << 20),
                  "resident %zu after the free, %zu before the block", after.resident,
                  before.resident);
    cr_assert_eq(after.span_bytes, before.span_bytes);
}

/* ---- sharing between processes ---------------------------------------- */

typedef struct mailbox {
    _Atomic(int *) block; /* set by the parent after the child started */
    _Atomic int state;    /* 1: child saw the block and answered */
    int *from_child;
} mailbox;

static int wait_for(_Atomic int *word, int value)
{
    double end = mp_test_now() + 10;
    while (atomic_load(word) != value)
        if (mp_test_now() > end)
            return -1;
        else
            usleep(100);
    return 0;
}

static int child_answers(const void *arg, size_t len)
{
    (void)len;
    mailbox *m = *(mailbox *const *)arg;
    double end = mp_test_now() + 10;
    int *late;
    while ((late = atomic_load(&m->block)) == NULL)
        if (mp_test_now() > end)
            return 2;
        else
            usleep(100);
    if (late[0] != 1234)
        return 3;
    late[1] = 5678; /* written by the child into the parent's new block */
    m->from_child = mp_alloc(sizeof(int) * 4);
    if (!m->from_child)
        return 4;
    m->from_child[3] = 99;
    atomic_store(&m->state, 1);
    return 0;
}

Test(heap, block_allocated_after_start_is_seen_by_the_child)
{
    mailbox *m = mp_alloc(sizeof *m);
    cr_assert_not_null(m);
    mp_process *p;
    mp_assert_ok(mp_process_create(
        &p, &(mp_process_opts){.target = child_answers, .args = &m, .args_len = sizeof m}));
    mp_assert_ok(mp_process_start(p));
    /* Made now, after the fork: the child never had a copy of this. */
    int *late = mp_alloc(sizeof(int) * 2);
    cr_assert_not_null(late);
    late[0] = 1234;
    atomic_store(&m->block, late);
    cr_assert_eq(wait_for(&m->state, 1), 0, "the child never answered");
    cr_assert_eq(late[1], 5678);
    cr_assert_not_null(m->from_child);
    cr_assert_eq(m->from_child[3], 99, "a block the child allocated, read by the parent");
    mp_assert_ok(mp_process_join(p, 10));
    int code = -1;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0);
    mp_process_destroy(p);
    mp_free(m->from_child); /* freed by another process than its allocator */
    mp_free(late);
    mp_free(m);
    mp_assert_ok(mp_heap_check());
}

static int child_churns(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    /* Fills the child's thread cache; its exit gives it back. */
    void *keep[100];
    for (int i = 0; i < 100; i++)
        if (!(keep[i] = mp_alloc(64)))
            return 1;
    for (int i = 0; i < 100; i++)
        mp_free(keep[i]);
    return mp_heap_check() == 0 ? 0 : 2;
}

Test(heap, children_allocate_and_free_concurrently)
{
    mp_process *p[4];
    for (int i = 0; i < 4; i++) {
        mp_assert_ok(mp_process_create(&p[i], &(mp_process_opts){.target = child_churns}));
        mp_assert_ok(mp_process_start(p[i]));
    }
    for (int i = 0; i < 4; i++) {
        mp_assert_ok(mp_process_join(p[i], 10));
        int code = -1;
        mp_assert_ok(mp_process_exitcode(p[i], &code));
        cr_assert_eq(code, 0, "child %d", i);
        mp_process_destroy(p[i]);
    }
    mp_assert_ok(mp_heap_check());
}

Test(heap, plain_fork_child_never_reuses_the_parents_cached_blocks)
{
    /* Fill this thread's cache with freed blocks, then fork by hand: the
     * child's copy of the cache names blocks the parent still owns. */
    void *warm[20];
    for (int i = 0; i < 20; i++)
        cr_assert_not_null(warm[i] = mp_alloc(48));
    for (int i = 0; i < 20; i++)
        mp_free(warm[i]);
    void **theirs = mp_calloc(20, sizeof(void *));
    cr_assert_not_null(theirs);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        for (int i = 0; i < 20; i++)
            theirs[i] = mp_alloc(48);
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    void *ours[20];
    for (int i = 0; i < 20; i++)
        cr_assert_not_null(ours[i] = mp_alloc(48));
    for (int i = 0; i < 20; i++) {
        cr_assert_not_null(theirs[i]);
        for (int j = 0; j < 20; j++)
            cr_assert_neq(theirs[i], ours[j], "parent and child got the same block %p", ours[j]);
    }
    for (int i = 0; i < 20; i++)
        mp_free(ours[i]);
    mp_free(theirs);
    mp_assert_ok(mp_heap_check());
}

Test(heap, execd_child_adopts_the_heap)
{
    int fd;
    void *addr;
    size_t size;
    mp_assert_ok(mp__heap_export(&fd, &addr, &size));
    cr_assert_geq(fd, 0);
    cr_assert_eq((uintptr_t)addr, mp__heap_family_addr());
    uint64_t *p = mp_calloc(3, sizeof *p);
    cr_assert_not_null(p);
    p[0] = 41;
    int inherit = dup(fd); /* without close-on-exec, as spawn hands it over */
    cr_assert_geq(inherit, 0);
    char a[4][32];
    snprintf(a[0], sizeof a[0], "%d", inherit);
    snprintf(a[1], sizeof a[1], "%#lx", (unsigned long)(uintptr_t)addr);
    snprintf(a[2], sizeof a[2], "%zu", size);
    snprintf(a[3], sizeof a[3], "%#lx", (unsigned long)(uintptr_t)p);
    char *argv[] = {MP_HEAP_PROBE, a[0], a[1], a[2], a[3], NULL};
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, MP_HEAP_PROBE, NULL, NULL, argv, environ), 0);
    close(inherit);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exec'd child failed (status %#x)", st);
    cr_assert_eq(p[1], 42);
    uint64_t *theirs = (uint64_t *)(uintptr_t)p[2];
    cr_assert(mp_heap_contains(theirs, sizeof *theirs));
    cr_assert_eq(*theirs, 77, "a block allocated by the exec'd child");
    mp_free(theirs);
    mp_free(p);
    mp_assert_ok(mp_heap_check());
    /* Adopting in a process that has a heap, or a bad fd, changes nothing. */
    mp_assert_rc(mp__heap_adopt(-1, addr, size), MP_EBADF);
    mp_assert_rc(mp__heap_adopt(dup(fd), addr, size), MP_EBUSY);
}

Test(heap, adopt_rejects_what_is_not_a_heap)
{
    void *addr = (void *)mp__heap_family_addr();
    size_t size = (size_t)1 << 20;
    int fd = memfd_create("not-a-heap", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);
    mp_assert_rc(mp__heap_adopt(dup(fd), (char *)addr + 4096, size), MP_EBADMSG);
    mp_assert_rc(mp__heap_adopt(dup(fd), addr, size * 2), MP_EBADMSG);
    mp_assert_rc(mp__heap_adopt(fd, addr, size), MP_EBADMSG); /* zeros: no header */
    mp_assert_ok(mp_init(NULL));                              /* and nothing was left mapped */
}

/* ---- thread caches go back to the heap --------------------------------- */

/* Blocks on the shared free list of class c. Every block a thread took
 * (the 40 it used and the rest of its last batch) must be there once the
 * thread or process has gone. */
static size_t free_list_length(int c)
{
    mp__hhdr *h = atomic_load(&mp__heap);
    size_t n = 0;
    for (void *p = h->cls[c].free; p; p = *(void **)p)
        n++;
    return n;
}

static void *churn_2000(void *arg)
{
    (void)arg;
    void *b[40];
    for (int i = 0; i < 40; i++)
        if (!(b[i] = mp_alloc(2000)))
            return NULL;
    for (int i = 0; i < 40; i++)
        mp_free(b[i]);
    return b[0];
}

static int child_churn_2000(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return churn_2000(NULL) ? 0 : 1;
}

Test(heap, an_exiting_thread_gives_its_cache_back)
{
    mp_assert_ok(mp_init(NULL));
    pthread_t t;
    void *ok = NULL;
    cr_assert_eq(pthread_create(&t, NULL, churn_2000, NULL), 0);
    cr_assert_eq(pthread_join(t, &ok), 0);
    cr_assert_not_null(ok);
    cr_assert_geq(free_list_length(mp__size_class(2000)), 40);
}

Test(heap, an_exiting_child_gives_its_cache_back)
{
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = child_churn_2000}));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp_process_join(p, 10));
    int code = -1;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0);
    mp_process_destroy(p);
    cr_assert_geq(free_list_length(mp__size_class(2000)), 40, "the child's _exit kept blocks");
}

/* ---- repair after a death inside the allocator ------------------------- */

/* Runs fn in a plain forked child that then dies by SIGKILL, holding
 * whatever heap lock fn took. */
static void die_inside(void (*fn)(mp__hhdr *, void *), void *arg)
{
    mp__hhdr *h = atomic_load(&mp__heap);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        fn(h, arg);
        raise(SIGKILL);
        _exit(1);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void half_allocate(mp__hhdr *h, void *arg)
{
    (void)arg;
    mp__heap_lock_page(h);
    h->pending = (mp__hpending){.op = MP__OP_ALLOC, .cls = -1, .first = 5, .n = 2};
    atomic_fetch_or(&h->bitmap[0], 3ULL << 5);
    h->used += 2;
}

Test(heap, a_death_inside_an_allocation_is_undone)
{
    mp_assert_ok(mp_init(&(mp_init_opts){.heap_size = (size_t)8 << 20}));
    mp__hhdr *h = atomic_load(&mp__heap);
    die_inside(half_allocate, NULL);
    cr_assert(mp__bit(h, 5), "the dead process set the bits");
    mp_assert_ok(mp_heap_check()); /* takes the lock: EOWNERDEAD, repair */
    cr_assert_not(mp__bit(h, 5));
    cr_assert_not(mp__bit(h, 6));
    mp_heap_stats st;
    mp_assert_ok(mp_heap_get_stats(&st));
    cr_assert_geq(st.repairs, 1);
    cr_assert_eq(st.span_bytes, 0);
    cr_assert_eq(st.leaked, 0);
}

static void half_free(mp__hhdr *h, void *arg)
{
    uint64_t first = (uint64_t)(uintptr_t)arg;
    mp__heap_lock_page(h);
    h->pending = (mp__hpending){.op = MP__OP_FREE, .cls = -1, .first = first, .n = 2};
}

Test(heap, a_death_inside_a_free_is_completed)
{
    mp_assert_ok(mp_init(&(mp_init_opts){.heap_size = (size_t)8 << 20}));
    mp__hhdr *h = atomic_load(&mp__heap);
    unsigned char *p = mp_alloc(100000); /* two spans */
    cr_assert_not_null(p);
    memset(p, 0xff, 100000);
    uint64_t first =
        ((uint64_t)(uintptr_t)p - (uint64_t)(uintptr_t)h - h->spans_off) >> MP__SPAN_SHIFT;
    die_inside(half_free, (void *)(uintptr_t)first);
    mp_assert_ok(mp_heap_check());
    cr_assert_not(mp__bit(h, first), "the free was completed");
    unsigned char *q = mp_alloc(100000);
    cr_assert_eq(q, p, "first fit gives the same spans back");
    for (size_t i = 0; i < 100000; i += 997)
        cr_assert_eq(q[i], 0, "byte %zu of the completed free was not released", i);
    mp_free(q);
}

static void hold_class(mp__hhdr *h, void *arg)
{
    mp__heap_lock_class(h, (int)(intptr_t)arg);
}

Test(heap, a_death_holding_a_class_lock_blocks_nobody)
{
    mp_assert_ok(mp_init(NULL));
    int c = mp__size_class(3000);
    die_inside(hold_class, (void *)(intptr_t)c);
    void *p = mp_alloc(3000);
    cr_assert_not_null(p, "the lock of a dead holder was taken over");
    mp_free(p);
    mp_assert_ok(mp_heap_check());
}

/* ---- the family address ------------------------------------------------ */

Test(heap, taken_address_is_enoheapaddr)
{
    void *want = (void *)mp__heap_family_addr();
    void *m = mmap(want, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    cr_assert_eq(m, want, "could not occupy the family address");
    mp_assert_rc(mp_init(NULL), MP_ENOHEAPADDR);
    cr_assert_null(mp_alloc(16));
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = child_churns}));
    mp_assert_rc(mp_process_start(p), MP_ENOHEAPADDR);
    mp_process_destroy(p);
    munmap(m, 4096);
    mp_assert_ok(mp_init(NULL)); /* once free, the heap can be created */
}

/* environ, with leak checking off in sanitizer builds: a probe does not
 * leak, and the check at its exit would cost most of its run time. */
static char **probe_env(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    cr_assert_not_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "ASAN_OPTIONS=", 13) != 0)
            env[k++] = environ[i];
    const char *asan = getenv("ASAN_OPTIONS");
    char *opt = NULL;
    cr_assert_gt(asprintf(&opt, "ASAN_OPTIONS=%s%sdetect_leaks=0", asan ? asan : "",
                          asan && *asan ? ":" : ""),
                 0);
    env[k] = opt;
    return env;
}

Test(heap, collision_rate_over_1000_execd_children)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The address choice is the same code with or without instrumentation,
     * and the plain build runs this; under TSan, make check turns ASLR off
     * (setarch -R), so a rate would mean nothing there. A thousand
     * instrumented execs took a minute. */
    cr_skip_test("runs in the build without sanitizers");
#endif
    char *argv[] = {MP_HEAP_PROBE, NULL};
    char **env = probe_env();
    int taken = 0, other = 0;
    const int runs = 1000;
    /* Two probes at a time: the machines have two cores. */
    for (int i = 0; i < runs; i += 2) {
        pid_t pid[2];
        for (int j = 0; j < 2; j++)
            cr_assert_eq(posix_spawn(&pid[j], MP_HEAP_PROBE, NULL, NULL, argv, env), 0);
        for (int j = 0; j < 2; j++) {
            int st;
            cr_assert_eq(waitpid(pid[j], &st, 0), pid[j]);
            cr_assert(WIFEXITED(st), "probe died (status %#x)", st);
            if (WEXITSTATUS(st) == 3)
                taken++;
            else if (WEXITSTATUS(st) != 0)
                other++;
        }
    }
    printf("heap: family address %#lx taken in %d of %d exec'd children (%.2f%%)\n",
           (unsigned long)mp__heap_family_addr(), taken, runs, 100.0 * taken / runs);
    cr_assert_eq(other, 0, "%d probes failed for another reason", other);
    cr_assert_leq(taken, runs / 1000, "collision rate %d/%d", taken, runs);
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], "ASAN_OPTIONS=", 13) == 0)
            free(env[i]);
    free(env);
}
