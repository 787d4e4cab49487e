/* A program for the tests of the heap's reservation under an address-space
 * limit (the limit is per process, so it runs as a child of the test).
 *
 *     heap_rlimit LIMIT
 *
 * sets the soft RLIMIT_AS to LIMIT bytes (0: leaves it alone; in a
 * sanitizer build, LIMIT above the address space the sanitizer already
 * holds, which is far more than any limit a test can name), then creates
 * the heap with mp_init and prints
 *
 *     init <error name or 0>
 *     reserved <bytes>               (when the heap exists)
 *
 * and uses it: small and large blocks, written and checked, a child
 * process that writes into one, mp_heap_check. Exit 0 when all of it
 * worked, 2 when mp_init failed, 3 + step when a use failed.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "heap/heap_internal.h"
#include "multiproc.h"

#if defined(MP__ASAN) || defined(MP__TSAN)
static size_t in_use(void)
{
    unsigned long long pages = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%llu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

static int set_limit(unsigned long long limit)
{
#if defined(MP__ASAN) || defined(MP__TSAN)
    limit += in_use();
#endif
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) < 0)
        return -1;
    rl.rlim_cur = (rlim_t)limit;
    return setrlimit(RLIMIT_AS, &rl);
}

static int child(const void *arg, size_t len)
{
    (void)len;
    uint64_t *shared = *(uint64_t *const *)arg;
    shared[1] = shared[0] * 2;
    return 0;
}

/* Small and large blocks, all written and read back. */
static int use_blocks(void)
{
    enum { SMALL = 1000, LARGE = 8 };
    static void *small[SMALL], *large[LARGE];
    const size_t large_size = (size_t)16 << 20;
    for (int i = 0; i < SMALL; i++) {
        if (!(small[i] = mp_alloc((size_t)(i % 200) + 1)))
            return 1;
        memset(small[i], i & 0xff, (size_t)(i % 200) + 1);
    }
    for (int i = 0; i < LARGE; i++) {
        if (!(large[i] = mp_alloc(large_size)))
            return 2;
        memset(large[i], i + 1, large_size);
    }
    for (int i = 0; i < LARGE; i++) {
        const unsigned char *p = large[i];
        if (p[0] != i + 1 || p[large_size - 1] != i + 1)
            return 3;
        mp_free(large[i]);
    }
    for (int i = 0; i < SMALL; i++) {
        if (((unsigned char *)small[i])[0] != (i & 0xff))
            return 4;
        mp_free(small[i]);
    }
    return 0;
}

static int use_in_child(void)
{
    uint64_t *shared = mp_alloc(2 * sizeof *shared);
    if (!shared)
        return 1;
    shared[0] = 21;
    mp_process *p;
    if (mp_process_create(&p, &(mp_process_opts){
                                  .target = child, .args = &shared, .args_len = sizeof shared}) < 0)
        return 2;
    int code = -1;
    int rc = mp_process_start(p);
    if (rc == 0)
        rc = mp_process_join(p, 30.0);
    if (rc == 0)
        rc = mp_process_exitcode(p, &code);
    mp_process_destroy(p);
    int ok = rc == 0 && code == 0 && shared[1] == 42;
    mp_free(shared);
    return ok ? 0 : 3;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: heap_rlimit LIMIT\n");
        return 64;
    }
    unsigned long long limit = strtoull(argv[1], NULL, 0);
    if (limit && set_limit(limit) < 0) {
        perror("heap_rlimit: setrlimit");
        return 65;
    }
    int rc = mp_init(NULL);
    printf("init %s\n", rc == 0 ? "0" : mp_err_name(rc));
    if (rc < 0) {
        /* The failure changed nothing: no heap, and allocation says so. */
        return mp_alloc(16) == NULL ? 2 : 3;
    }
    mp_heap_stats st;
    if (mp_heap_get_stats(&st) < 0)
        return 4;
    printf("reserved %zu\n", st.reserved);
    fflush(stdout);
    if (use_blocks() != 0)
        return 5;
    if (use_in_child() != 0)
        return 6;
    return mp_heap_check() == 0 ? 0 : 7;
}
