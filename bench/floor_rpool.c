/* The floor of redis_pool_tiny_tasks_per_s: raw hiredis moving the same
 * tasks through the same Redis commands with the same batching as the
 * distributed pool, without the library.
 *
 *     floor_rpool tiny N   N tasks (square of an int64), one item each,
 *                          served by 2 forked workers; value = tasks/s
 *
 * The client packs the tasks into stream entries as the pool packs map
 * chunks (up to 16 tasks an entry, at least 256 entries) and sends them
 * with pipelined XADDs, 64 per round trip (fields id, c, f, n, isz, cap,
 * in, k); each worker reads with XREADGROUP COUNT 16 BLOCK, squares every
 * item, and answers a batch in one pipelined round trip: one RPUSH of a
 * result record per task (id, count, per item a code, a length and the
 * value), one XACK and one XDEL of the batch's entries. The client reads
 * its list as the library does (LRANGE of up to 256 pipelined with the
 * LTRIM of what it read before; BLMOVE to wait when it is empty), checks each record's size, keeps
 * the first result of each task id and sums the values. It does less than the library: no
 * heartbeats, leases or claims of dead workers, no result expiry, no function lookup, no adaptive
 * read size, no reconnects, no validation beyond sizes. Both sides are timed as in bench_rpool:
 * from the first XADD to the last result, after a warm-up of 100 tasks.
 *
 *     floor_rpool roundtrip N   N times one task, then its result, with one
 *                          forked worker; value = µs per task
 *
 * The floor of the commands behind redis_pool_roundtrip_us: the client
 * sends one XADD and waits for its reply, then waits for the result in
 * one round trip of the library's kind (LTRIM of what it read before,
 * BLMOVE of the list onto itself with a timeout, LRANGE); the worker is
 * the one above (XREADGROUP BLOCK, then RPUSH, XACK and XDEL in one round
 * trip), running the task in its own process. After 200 warm-up tasks.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "redis_server.h"

#define WORKERS 2
/* The library's worker reads up to 64 entries; these two workers ran 0.77x
 * as fast with 64 as with 16 (they share the backlog worse), so the floor
 * keeps its own best. */
#define READ_COUNT "16"
#define PACK       16  /* most tasks an entry packs */
#define SPREAD     256 /* fewest entries a run is cut into, when it packs */
#define XADD_BATCH 64
#define POP_MAX    256
#define TASKS      "tasks"
#define RESULTS    "results:0123456789abcdef0123456789abcdef"
#define CLIENT     "0123456789abcdef0123456789abcdef"

static mp_test_redis srv;

static redisContext *connect_auth(void)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", srv.port, (struct timeval){5, 0});
    if (c == NULL || c->err)
        bench_die("connect failed");
    redisReply *r = redisCommand(c, "AUTH %s", srv.password);
    if (r == NULL || r->type != REDIS_REPLY_STATUS)
        bench_die("AUTH failed");
    freeReplyObject(r);
    return c;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t parse_u64(const char *s, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return v;
}

/* A result record of one task of one int64 item: id (8), code (4), items
 * (4), then the item's code (4), length (4) and value (8): the pool's
 * layout. */
#define REC_LEN 36

static void make_record(unsigned char *rec, uint64_t id, int64_t v)
{
    put32(rec, (uint32_t)(id >> 32));
    put32(rec + 4, (uint32_t)id);
    put32(rec + 8, 0);
    put32(rec + 12, 1);
    put32(rec + 16, 0);
    put32(rec + 20, 8);
    memcpy(rec + 24, &v, 8);
    memset(rec + 32, 0, 4);
}

/* Answers one batch of entries: one RPUSH of every task's record, one XACK
 * and one XDEL of the entries, in one round trip. */
static void answer(redisContext *c, const redisReply *entries)
{
    size_t ne = entries->elements, cap = ne * PACK;
    unsigned char(*recs)[REC_LEN] = malloc(cap * REC_LEN);
    const char **argv = malloc((cap + 2 * ne + 8) * sizeof(*argv));
    size_t *lens = malloc((cap + 2 * ne + 8) * sizeof(*lens));
    if (recs == NULL || argv == NULL || lens == NULL)
        bench_die("out of memory");
    size_t nr = 0;
    argv[0] = "RPUSH", lens[0] = 5, argv[1] = RESULTS, lens[1] = strlen(RESULTS);
    for (size_t i = 0; i < ne; i++) {
        const redisReply *f = entries->element[i]->element[1];
        uint64_t id = 0, n = 0, per = 0;
        const char *in = NULL;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            const redisReply *k = f->element[j], *v = f->element[j + 1];
            if (k->len == 2 && memcmp(k->str, "id", 2) == 0)
                id = parse_u64(v->str, v->len);
            else if (k->len == 1 && k->str[0] == 'n')
                n = parse_u64(v->str, v->len);
            else if (k->len == 1 && k->str[0] == 'k')
                per = parse_u64(v->str, v->len);
            else if (k->len == 2 && memcmp(k->str, "in", 2) == 0)
                in = v->str;
        }
        if (n == 0 || in == NULL || n > PACK)
            bench_die("bad entry");
        for (uint64_t t = 0; t < n; t++) { /* one item per task: per is 1 */
            int64_t x;
            memcpy(&x, in + 8 * t, 8);
            make_record(recs[nr], id + t, x * x);
            argv[2 + nr] = (const char *)recs[nr], lens[2 + nr] = REC_LEN;
            nr++;
        }
        (void)per;
    }
    redisAppendCommandArgv(c, (int)(2 + nr), argv, lens);
    size_t k = 0;
    argv[k] = "XACK", lens[k++] = 4;
    argv[k] = TASKS, lens[k++] = strlen(TASKS);
    argv[k] = "workers", lens[k++] = 7;
    for (size_t i = 0; i < ne; i++)
        argv[k] = entries->element[i]->element[0]->str,
        lens[k++] = entries->element[i]->element[0]->len;
    redisAppendCommandArgv(c, (int)k, argv, lens);
    argv[1] = "XDEL", lens[1] = 4, argv[2] = TASKS, lens[2] = strlen(TASKS);
    redisAppendCommandArgv(c, (int)(k - 1), argv + 1, lens + 1);
    for (int i = 0; i < 3; i++) {
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r->type != REDIS_REPLY_INTEGER)
            bench_die("answer failed");
        freeReplyObject(r);
    }
    free(recs);
    free(argv);
    free(lens);
}

static void worker(int no)
{
    redisContext *c = connect_auth();
    char consumer[32];
    snprintf(consumer, sizeof(consumer), "floor-%d", no);
    for (;;) {
        redisReply *r = redisCommand(
            c, "XREADGROUP GROUP workers %s COUNT " READ_COUNT " BLOCK 100 STREAMS " TASKS " >",
            consumer);
        if (r == NULL)
            bench_die("XREADGROUP failed");
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1)
            answer(c, r->element[0]->element[1]);
        freeReplyObject(r);
    }
}

/* Puts n tasks (ids from id0) on the stream and takes their results: the
 * sum of the squares. */
static uint64_t run(redisContext *c, uint64_t id0, long n, const int64_t *in)
{
    size_t pack = (size_t)n / SPREAD, k = 0;
    pack = pack > PACK ? PACK : pack ? pack : 1;
    char num[XADD_BATCH][4][24];
    const char *argv[19];
    size_t lens[19];
    for (long first = 0; first < n; first += (long)pack) {
        size_t cnt = (size_t)(n - first) < pack ? (size_t)(n - first) : pack;
        snprintf(num[k][0], 24, "%" PRIu64, id0 + (uint64_t)first);
        snprintf(num[k][1], 24, "%zu", cnt);
        snprintf(num[k][2], 24, "8");
        snprintf(num[k][3], 24, "1");
        const char *a[19] = {"XADD",
                             TASKS,
                             "*",
                             "id",
                             num[k][0],
                             "c",
                             CLIENT,
                             "f",
                             "n:square",
                             "n",
                             num[k][1],
                             "isz",
                             num[k][2],
                             "cap",
                             "8",
                             "in",
                             (const char *)(in + first),
                             "k",
                             num[k][3]};
        for (int i = 0; i < 19; i++)
            argv[i] = a[i], lens[i] = strlen(a[i]);
        lens[16] = 8 * cnt;
        redisAppendCommandArgv(c, cnt > 1 ? 19 : 17, argv, lens);
        if (++k == XADD_BATCH || first + (long)cnt >= n) {
            for (size_t i = 0; i < k; i++) {
                redisReply *r;
                if (redisGetReply(c, (void **)&r) != REDIS_OK || r->type != REDIS_REPLY_STRING)
                    bench_die("XADD failed");
                freeReplyObject(r);
            }
            k = 0;
        }
    }
    bool *seen = calloc((size_t)n, 1);
    if (seen == NULL)
        bench_die("out of memory");
    uint64_t total = 0;
    /* As the library: what is there is read (LRANGE) in the round trip
     * that removes what was read before (LTRIM); when nothing is, BLMOVE
     * waits for the first result without taking it off. */
    long trim = 0;
    for (long got = 0; got < n;) {
        if (trim)
            redisAppendCommand(c, "LTRIM " RESULTS " %ld -1", trim);
        redisAppendCommand(c, "LRANGE " RESULTS " 0 %d", POP_MAX - 1);
        redisReply *r = NULL;
        if (trim && (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL))
            bench_die("LTRIM failed");
        if (r)
            freeReplyObject(r);
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL || r->type != REDIS_REPLY_ARRAY)
            bench_die("LRANGE failed");
        trim = (long)r->elements;
        if (r->elements == 0) {
            freeReplyObject(r);
            r = redisCommand(c, "BLMOVE " RESULTS " " RESULTS " LEFT LEFT 1");
            if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL))
                bench_die("BLMOVE failed");
            if (r->type == REDIS_REPLY_NIL) {
                freeReplyObject(r);
                continue;
            }
            trim = 1;
        }
        const redisReply *const *v = r->type == REDIS_REPLY_ARRAY
                                         ? (const redisReply *const *)r->element
                                         : (const redisReply *const *)&r;
        size_t nv = r->type == REDIS_REPLY_ARRAY ? r->elements : 1;
        for (size_t i = 0; i < nv; i++) {
            const unsigned char *p = (const unsigned char *)v[i]->str;
            if (v[i]->len != REC_LEN)
                bench_die("bad record");
            uint64_t id = (uint64_t)get32(p) << 32 | get32(p + 4);
            if (id < id0 || id >= id0 + (uint64_t)n || seen[id - id0])
                continue; /* a duplicate */
            seen[id - id0] = true;
            int64_t x;
            memcpy(&x, p + 24, 8);
            total += (uint64_t)x;
            got++;
        }
        freeReplyObject(r);
    }
    free(seen);
    return total;
}

/* One task on the stream, then its result: the value, after one XADD
 * round trip and one wait round trip (LTRIM, BLMOVE, LRANGE). */
static int64_t one(redisContext *c, uint64_t id, int64_t x, long *trim)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, id);
    const char *argv[] = {"XADD",          TASKS, "*", "id",  num, "c",   CLIENT, "f",
                          "n:square",      "n",   "1", "isz", "8", "cap", "8",    "in",
                          (const char *)&x};
    size_t lens[17];
    for (int i = 0; i < 17; i++)
        lens[i] = strlen(argv[i]);
    lens[16] = 8;
    redisReply *r = redisCommandArgv(c, 17, argv, lens);
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        bench_die("XADD failed");
    freeReplyObject(r);
    for (;;) {
        if (*trim)
            redisAppendCommand(c, "LTRIM " RESULTS " %ld -1", *trim);
        redisAppendCommand(c, "BLMOVE " RESULTS " " RESULTS " LEFT LEFT 1");
        redisAppendCommand(c, "LRANGE " RESULTS " 0 %d", POP_MAX - 1);
        for (int i = *trim ? 0 : 1; i < 3; i++) {
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
                bench_die("wait failed");
            if (i < 2)
                freeReplyObject(r);
            else if (r->type != REDIS_REPLY_ARRAY)
                bench_die("LRANGE failed");
        }
        *trim = (long)r->elements;
        for (size_t i = 0; i < r->elements; i++) {
            const unsigned char *p = (const unsigned char *)r->element[i]->str;
            if (r->element[i]->len != REC_LEN)
                bench_die("bad record");
            if (((uint64_t)get32(p) << 32 | get32(p + 4)) == id) {
                int64_t v;
                memcpy(&v, p + 24, 8);
                freeReplyObject(r);
                return v;
            }
        }
        freeReplyObject(r);
    }
}

int main(int argc, char **argv)
{
    long n = bench_args(argc, argv, "tiny|roundtrip <iterations>");
    bool rt = strcmp(argv[1], "roundtrip") == 0;
    if (strcmp(argv[1], "tiny") != 0 && !rt)
        bench_die("unknown mode '%s'", argv[1]);
    if (mp_test_redis_start(&srv, "bench") != 0)
        bench_die("redis-server: %s", srv.error);
    redisContext *c = connect_auth();
    redisReply *r = redisCommand(c, "XGROUP CREATE " TASKS " workers 0 MKSTREAM");
    if (r == NULL || r->type != REDIS_REPLY_STATUS)
        bench_die("XGROUP failed");
    freeReplyObject(r);
    pid_t w[WORKERS];
    int nw = rt ? 1 : WORKERS;
    for (int i = 0; i < nw; i++) {
        w[i] = fork();
        if (w[i] < 0)
            bench_die("fork: %s", strerror(errno));
        if (w[i] == 0) {
            redisFree(c);
            worker(i);
        }
    }
    if (rt) {
        long trim = 0;
        double t0 = 0;
        for (long i = -200; i < n; i++) {
            if (i == 0)
                t0 = bench_now();
            if (one(c, (uint64_t)(i + 1000), 7, &trim) != 49)
                bench_die("wrong result");
        }
        double elapsed = bench_now() - t0;
        kill(w[0], SIGKILL);
        waitpid(w[0], NULL, 0);
        redisFree(c);
        mp_test_redis_stop(&srv, 0);
        printf("RESULT value=%.6f elapsed=%.6f n=%ld\n", elapsed / (double)n * 1e6, elapsed, n);
        return 0;
    }
    int64_t *in = malloc((size_t)n * sizeof(*in));
    if (in == NULL)
        bench_die("out of memory");
    for (long i = 0; i < n; i++)
        in[i] = i;
    run(c, 1, n < 100 ? n : 100, in); /* warm-up: both workers serve */
    double t0 = bench_now();
    uint64_t total = run(c, 1000, n, in), want = 0;
    double elapsed = bench_now() - t0;
    for (long i = 0; i < n; i++)
        want += (uint64_t)i * (uint64_t)i;
    for (int i = 0; i < WORKERS; i++) {
        kill(w[i], SIGKILL);
        waitpid(w[i], NULL, 0);
    }
    redisFree(c);
    mp_test_redis_stop(&srv, 0);
    free(in);
    if (total != want)
        bench_die("wrong result");
    printf("RESULT value=%.6f elapsed=%.6f n=%ld workers=%d\n", (double)n / elapsed, elapsed, n,
           WORKERS);
    return 0;
}
