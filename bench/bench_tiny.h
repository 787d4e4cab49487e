/* The pool_tiny rows, shared by bench_pool (local pool) and bench_rpool
 * (distributed pool): an unordered imap of n trivial tasks, each the square
 * of an int64 (fn), one item per chunk, summed and checked. Needs
 * multiproc.h and bench_common.h first. */
#ifndef BENCH_TINY_H
#define BENCH_TINY_H

/* The task of the distributed rows: the square of an int64, with its
 * output length (the local pool's bench has a leaner one of its own). */
static inline int bench_tiny_square(const void *in, size_t in_len, void *out, size_t out_cap,
                                    size_t *out_len, void *ctx)
{
    (void)in_len, (void)out_cap, (void)ctx;
    int64_t x;
    memcpy(&x, in, sizeof(x));
    x *= x;
    memcpy(out, &x, sizeof(x));
    *out_len = sizeof(x);
    return 0;
}

/* Returns 0, or the error of the imap; a wrong sum ends the program. */
static int bench_tiny_imap(mp_pool *p, mp_task_fn fn, long n, double timeout)
{
    int64_t *in = malloc((size_t)n * sizeof *in);
    if (!in)
        bench_die("out of memory");
    for (long i = 0; i < n; i++)
        in[i] = i;
    mp_imap *it = NULL;
    int rc = mp_pool_imap(
        p,
        &(mp_map_spec){
            .fn = fn, .in = in, .n = (size_t)n, .in_size = 8, .out_size = 8, .chunksize = 1},
        false, &it);
    int64_t v;
    uint64_t total = 0, want = 0; /* both modulo 2^64: large n overflows */
    while (rc == 0 && (rc = mp_imap_next(it, &v, NULL, NULL, timeout)) == 0)
        total += (uint64_t)v;
    for (long i = 0; i < n; i++)
        want += (uint64_t)i * (uint64_t)i;
    mp_imap_destroy(it);
    free(in);
    if (rc != MP_EEOF)
        return rc;
    if (total != want)
        bench_die("wrong result");
    return 0;
}

#endif
