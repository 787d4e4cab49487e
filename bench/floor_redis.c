/* The floor of redis_dict_op_us: raw hiredis doing the same commands as
 * the Redis backend, without the library. A child process connects, AUTHs
 * and runs N x (HSET key field value; HGET key field) over 100 fields,
 * 6-byte fields and 8-byte values, checking each reply's type and value
 * as any careful caller would. It does less than the library: no value
 * type tags, no reply validation beyond that, no reconnect or fork
 * handling, no thread safety.
 *
 * The queue mode is the floor of redis_queue_op_us: RPUSH + BLPOP (1 s
 * timeout) of 8-byte messages on one list.
 *
 * The wake mode is the floor of a cross-process wake through Redis, the
 * least a Redis lock hand-off (redis_lock_handoff_us) can cost: a child
 * blocked in BLPOP on its own connection, the parent LPUSHes; from just
 * before the LPUSH to the child's BLPOP returning, the median, timed as
 * bench_redis lock times the hand-off (the same shared map, the same
 * 2 ms before each round, the parent polling for the child's answer).
 * wake_rt adds the one round trip a woken waiter needs to confirm what it
 * was woken for (a PING after the BLPOP): the floor of a hand-off whose
 * waiter runs one command once woken. wake_script pushes with the least
 * Lua script instead of LPUSH (EVALSHA of one RPUSH): the floor of a
 * hand-off whose release must check its holder on the server, which on
 * Redis 7.0 takes a script (no command compares and sets). wake_grant
 * pushes with the least script that does what a fenced lock's release
 * must do on that path: GET the lock key (the holder's check), ZCARD the
 * wait set (anyone to grant to?), INCR the fence (the grant's token),
 * RPUSH the grant and SET it as the lock's value with the lease (PX):
 * the floor of redis_lock_handoff_us's semantics, without the library's
 * checks of foreign data, its record of a holder that died, or its
 * grantee's claim (which names the grantee's pid for mp_lock_owner). The
 * lock key and a waiter's entry are set up before each round's 2 ms.
 * lock_handoff is the whole round of redis_lock_handoff_us with the least
 * complete lock of those semantics: the parent acquires (one script: SET
 * NX PX, and the fence's INCR), the child tries (the same script, which
 * enlists it in the wait set) and blocks in BLPOP, the parent releases
 * (wake_grant's script, its wait-set count a ZPOPMIN that takes the
 * waiter's entry), and the child, once timed, releases its grant. The
 * timed path is wake_grant's; the work around it is what any such lock
 * does, and on this kind of host it changes what the path costs (the
 * scheduler places and wakes processes by the CPU they used).
 *
 * The lock_pair mode is the floor of redis_lock_pair_us: the classic
 * single-server Redis lock (redis-py's Lock, one node of Redlock), an
 * uncontended acquire and release in one process: SET key token NX PX
 * 30000, then EVALSHA of the script that deletes the key when it still
 * holds the token. It has no fencing token, no record of a holder that
 * died, no waiters woken by the server and no check of foreign data.
 *
 *     floor_redis op|queue|lock_pair|wake|wake_rt|wake_script|wake_grant|lock_handoff
 *                 <iterations>
 */
#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "redis_server.h"

#define NKEYS 100

static int queue_loop(redisContext *c, long iters)
{
    for (long i = 0; i < iters; i++) {
        int64_t v = i;
        const char *put[] = {"RPUSH", "q", (const char *)&v};
        size_t put_len[] = {5, 1, sizeof(v)};
        redisReply *r = redisCommandArgv(c, 3, put, put_len);
        if (r == NULL || r->type != REDIS_REPLY_INTEGER)
            return 1;
        freeReplyObject(r);
        r = redisCommand(c, "BLPOP q 1");
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[1]->type != REDIS_REPLY_STRING || r->element[1]->len != sizeof(v) ||
            memcmp(r->element[1]->str, &v, sizeof(v)) != 0)
            return 1;
        freeReplyObject(r);
    }
    return 0;
}

static int queue_mode, pair_mode;

/* N uncontended acquire + release pairs of the classic lock. */
static int pair_loop(redisContext *c, long iters)
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s",
                                 "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                 "return redis.call('DEL', KEYS[1]) end return 0");
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != 40)
        return 1;
    char sha[41];
    memcpy(sha, r->str, 41);
    freeReplyObject(r);
    for (long i = 0; i < iters; i++) {
        char tok[32];
        snprintf(tok, sizeof(tok), "%d-%lx", (int)getpid(), (unsigned long)i);
        r = redisCommand(c, "SET lk %s NX PX 30000", tok);
        if (r == NULL || r->type != REDIS_REPLY_STATUS)
            return 1;
        freeReplyObject(r);
        r = redisCommand(c, "EVALSHA %s 1 lk %s", sha, tok);
        if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer != 1)
            return 1;
        freeReplyObject(r);
    }
    return 0;
}

static int run(const mp_test_redis *srv, long iters, int out_fd)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", srv->port, (struct timeval){5, 0});
    if (c == NULL || c->err)
        return 1;
    redisReply *r = redisCommand(c, "AUTH %s", srv->password);
    if (r == NULL || r->type != REDIS_REPLY_STATUS)
        return 1;
    freeReplyObject(r);
    char keys[NKEYS][16];
    for (int k = 0; k < NKEYS; k++)
        snprintf(keys[k], sizeof(keys[k]), "a%02d-key", k);
    if (pair_mode && pair_loop(c, 100) != 0)
        return 1; /* warm-up, as the library's row */
    double t0 = bench_now();
    if (queue_mode && queue_loop(c, iters) != 0)
        return 1;
    if (pair_mode && pair_loop(c, iters) != 0)
        return 1;
    for (long i = 0; !queue_mode && !pair_mode && i < iters; i++) {
        int64_t v = i;
        const char *set[] = {"HSET", "bench", keys[i % NKEYS], (const char *)&v};
        size_t set_len[] = {4, 5, 6, sizeof(v)};
        r = redisCommandArgv(c, 4, set, set_len);
        if (r == NULL || r->type != REDIS_REPLY_INTEGER)
            return 1;
        freeReplyObject(r);
        const char *get[] = {"HGET", "bench", keys[i % NKEYS]};
        size_t get_len[] = {4, 5, 6};
        r = redisCommandArgv(c, 3, get, get_len);
        if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != sizeof(v) ||
            memcmp(r->str, &v, sizeof(v)) != 0)
            return 1;
        freeReplyObject(r);
    }
    double dt = bench_now() - t0;
    redisFree(c);
    bench_write_all(out_fd, &dt, sizeof(dt));
    return 0;
}

/* ---- wake ------------------------------------------------------------ */

/* Shared by the two processes (MAP_SHARED before the fork). */
typedef struct wake_map {
    atomic_long round; /* the parent is about to push for this round */
    atomic_long done;  /* the child was woken in this round */
    double t0;         /* just before the parent's LPUSH */
    double lat[];      /* per round, seconds */
} wake_map;

static redisContext *connect_auth(const mp_test_redis *srv)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", srv->port, (struct timeval){5, 0});
    if (c == NULL || c->err)
        return NULL;
    redisReply *r = redisCommand(c, "AUTH %s", srv->password);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* What wakes the child: a plain LPUSH (also wake_rt's), a script, or the
 * release of the least complete lock (lock_handoff). */
typedef enum wake_kind { WAKE_PUSH, WAKE_RT, WAKE_SCRIPT, WAKE_GRANT, WAKE_LOCK } wake_kind;

static const char push_lua[] = "redis.call('RPUSH', KEYS[1], '1') return 1";

/* KEYS the lock key, the wait set, the fence and the wake list; ARGV the
 * holder's token and the lease in ms. */
static const char grant_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
    "if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('DEL', KEYS[1]) return 1 end "
    "local g = '0-' .. string.format('%x', redis.call('INCR', KEYS[3])) "
    "redis.call('RPUSH', KEYS[4], g) redis.call('SET', KEYS[1], g, 'PX', ARGV[2]) return 1";

/* lock_handoff's acquire: KEYS the lock key, the wait set and the fence;
 * ARGV the token, the lease in ms and "1" to enlist the caller when the
 * lock is held. The fencing token, or -1 (held). */
static const char acquire_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
    "return redis.call('INCR', KEYS[3]) end "
    "if ARGV[3] == '1' then redis.call('ZADD', KEYS[2], 1, ARGV[1]) end return -1";

/* lock_handoff's release: grant_lua, with the grant taking one waiter's
 * entry off the wait set (ZPOPMIN, which also tells whether one waits). */
static const char release_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
    "if #redis.call('ZPOPMIN', KEYS[2]) == 0 then redis.call('DEL', KEYS[1]) return 1 end "
    "local g = '0-' .. string.format('%x', redis.call('INCR', KEYS[3])) "
    "redis.call('RPUSH', KEYS[4], g) redis.call('SET', KEYS[1], g, 'PX', ARGV[2]) return 1";

/* The SHA1s of the scripts a kind runs (loaded before the fork). */
static char sha_wake[41], sha_acquire[41];

static bool load(redisContext *c, const char *lua, char sha[41])
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", lua);
    bool ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
    if (ok)
        memcpy(sha, r->str, 41);
    if (r)
        freeReplyObject(r);
    return ok;
}

/* lock_handoff's acquire by tok: its answer, or LLONG_MIN when the call
 * failed. */
static long long lock_acquire(redisContext *c, const char *tok, bool enlist)
{
    redisReply *r = redisCommand(c, "EVALSHA %s 3 lk lk:wait lk:fence %s 30000 %s", sha_acquire,
                                 tok, enlist ? "1" : "0");
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : LLONG_MIN;
    if (r)
        freeReplyObject(r);
    return v;
}

/* lock_handoff's release by tok (also what wakes the child): 1 when tok
 * held the lock. */
static long long lock_release(redisContext *c, const char *tok)
{
    redisReply *r = redisCommand(c, "EVALSHA %s 4 lk lk:wait lk:fence w %s 30000", sha_wake, tok);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : LLONG_MIN;
    if (r)
        freeReplyObject(r);
    return v;
}

static int wake_child(const mp_test_redis *srv, wake_map *w, long iters, wake_kind kind)
{
    redisContext *c = connect_auth(srv);
    if (c == NULL)
        return 1;
    for (long i = 0; i < iters; i++) {
        while (atomic_load(&w->round) != i)
            usleep(50);
        /* The lock's waiter tries first, which enlists it (the lock is
         * held), then blocks; a try that came after the release (this
         * process ran late) takes the lock, as the library's would. */
        long long got = kind == WAKE_LOCK ? lock_acquire(c, "waiter", true) : -1;
        if (got == LLONG_MIN || got == 0)
            return 4;
        char grant[32] = "waiter";
        if (got == -1) {
            redisReply *r = redisCommand(c, "BLPOP w 5");
            if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
                return 2;
            snprintf(grant, sizeof(grant), "%s", r->element[1]->str);
            freeReplyObject(r);
        }
        if (kind == WAKE_RT) {
            redisReply *r = redisCommand(c, "PING");
            if (r == NULL || r->type != REDIS_REPLY_STATUS)
                return 3;
            freeReplyObject(r);
        }
        w->lat[i] = bench_now() - w->t0;
        if (kind == WAKE_LOCK && lock_release(c, grant) != 1)
            return 5;
        atomic_store(&w->done, i);
    }
    redisFree(c);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Makes the parent the lock's holder with a waiter enlisted (wake_grant's
 * state before a release), pipelined. */
static bool grant_setup(redisContext *c)
{
    redisAppendCommand(c, "SET lk tok PX 30000");
    redisAppendCommand(c, "ZADD lk:wait 1 waiter");
    bool ok = true;
    for (int k = 0; k < 2; k++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL || r->type == REDIS_REPLY_ERROR)
            ok = false;
        if (r)
            freeReplyObject(r);
    }
    return ok;
}

/* The push that wakes the child: 1 when it went through. */
static long long wake_push(redisContext *c, wake_kind kind)
{
    if (kind == WAKE_LOCK)
        return lock_release(c, "holder");
    redisReply *r = kind == WAKE_GRANT
                        ? redisCommand(c, "EVALSHA %s 4 lk lk:wait lk:fence w tok 30000", sha_wake)
                    : kind == WAKE_SCRIPT ? redisCommand(c, "EVALSHA %s 1 w", sha_wake)
                                          : redisCommand(c, "LPUSH w 1");
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : LLONG_MIN;
    if (r)
        freeReplyObject(r);
    return v;
}

static int wake_main(mp_test_redis *srv, long iters, wake_kind kind)
{
    size_t size = sizeof(wake_map) + (size_t)iters * sizeof(double);
    wake_map *w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    redisContext *c = w == MAP_FAILED ? NULL : connect_auth(srv);
    if (c == NULL) {
        mp_test_redis_stop(srv, 0);
        bench_die("mmap or connect");
    }
    atomic_init(&w->round, -1);
    atomic_init(&w->done, -1);
    const char *lua = kind == WAKE_SCRIPT  ? push_lua
                      : kind == WAKE_GRANT ? grant_lua
                      : kind == WAKE_LOCK  ? release_lua
                                           : NULL;
    if ((lua && !load(c, lua, sha_wake)) ||
        (kind == WAKE_LOCK && !load(c, acquire_lua, sha_acquire))) {
        mp_test_redis_stop(srv, 0);
        bench_die("SCRIPT LOAD");
    }
    pid_t pid = fork();
    if (pid == 0)
        _exit(wake_child(srv, w, iters, kind));
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        if (kind == WAKE_GRANT && !grant_setup(c))
            break;
        if (kind == WAKE_LOCK && lock_acquire(c, "holder", false) <= 0)
            break;
        atomic_store(&w->round, i);
        usleep(2000); /* the child is blocked in its BLPOP by now */
        w->t0 = bench_now();
        if (wake_push(c, kind) != 1)
            break;
        for (int k = 0; atomic_load(&w->done) != i && k <= 200000; k++)
            usleep(50);
        if (atomic_load(&w->done) != i)
            break;
    }
    double elapsed = bench_now() - t0;
    int status = 0;
    waitpid(pid, &status, 0);
    redisFree(c);
    mp_test_redis_stop(srv, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("child failed");
    qsort(w->lat, (size_t)iters, sizeof(double), cmp_double);
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", w->lat[iters / 2] * 1e6, elapsed, iters);
    munmap(w, size);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        wake_kind kind;
    } wakes[] = {{"wake", WAKE_PUSH},
                 {"wake_rt", WAKE_RT},
                 {"wake_script", WAKE_SCRIPT},
                 {"wake_grant", WAKE_GRANT},
                 {"lock_handoff", WAKE_LOCK}};
    long iters = bench_args(
        argc, argv,
        "op|queue|lock_pair|wake|wake_rt|wake_script|wake_grant|lock_handoff <iterations>");
    queue_mode = strcmp(argv[1], "queue") == 0;
    pair_mode = strcmp(argv[1], "lock_pair") == 0;
    int wake = -1;
    for (int k = 0; k < (int)(sizeof(wakes) / sizeof(wakes[0])); k++)
        if (strcmp(argv[1], wakes[k].name) == 0)
            wake = k;
    if (!queue_mode && !pair_mode && wake < 0 && strcmp(argv[1], "op") != 0)
        bench_die("unknown mode '%s'", argv[1]);
    mp_test_redis srv;
    if (mp_test_redis_start(&srv, "bench") < 0)
        bench_die("%s", srv.error);
    if (wake >= 0)
        return wake_main(&srv, iters, wakes[wake].kind);
    int fds[2];
    if (pipe(fds) < 0)
        bench_die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid == 0)
        _exit(run(&srv, iters, fds[1]));
    int status = 0;
    waitpid(pid, &status, 0);
    double dt = 0;
    ssize_t got = read(fds[0], &dt, sizeof(dt));
    mp_test_redis_stop(&srv, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != (ssize_t)sizeof(dt))
        bench_die("child failed");
    /* op and queue: per operation (half a pair); lock_pair: per pair. */
    double per = pair_mode ? (double)iters : 2.0 * (double)iters;
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", dt / per * 1e6, dt, iters);
    return 0;
}
