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

/* The input of n tasks: 0, 1, ..., n - 1 (malloc'd). */
static int64_t *bench_tiny_input(long n)
{
    int64_t *in = malloc((size_t)(n ? n : 1) * sizeof *in);
    if (!in)
        bench_die("out of memory");
    for (long i = 0; i < n; i++)
        in[i] = i;
    return in;
}

/* The unordered imap of the n tasks of in: 0 and the sum of the results in
 * *total, or the error of the imap. */
static int bench_tiny_imap_in(mp_pool *p, mp_task_fn fn, const int64_t *in, long n, double timeout,
                              uint64_t *total)
{
    mp_imap *it = NULL;
    int rc = mp_pool_imap(
        p,
        &(mp_map_spec){
            .fn = fn, .in = in, .n = (size_t)n, .in_size = 8, .out_size = 8, .chunksize = 1},
        false, &it);
    int64_t v;
    *total = 0; /* modulo 2^64: large n overflows */
    while (rc == 0 && (rc = mp_imap_next(it, &v, NULL, NULL, timeout)) == 0)
        *total += (uint64_t)v;
    mp_imap_destroy(it);
    return rc == MP_EEOF ? 0 : rc;
}

/* Ends the program when total is not the sum of the squares below n. */
static void bench_tiny_check(long n, uint64_t total)
{
    uint64_t want = 0;
    for (long i = 0; i < n; i++)
        want += (uint64_t)i * (uint64_t)i;
    if (total != want)
        bench_die("wrong result");
}

/* The input, the imap and the check in one: 0, or the error of the imap;
 * a wrong sum ends the program. */
static int bench_tiny_imap(mp_pool *p, mp_task_fn fn, long n, double timeout)
{
    int64_t *in = bench_tiny_input(n);
    uint64_t total;
    int rc = bench_tiny_imap_in(p, fn, in, n, timeout, &total);
    free(in);
    if (rc == 0)
        bench_tiny_check(n, total);
    return rc;
}

#endif
