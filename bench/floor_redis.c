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
 *     floor_redis op|queue <iterations>
 */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

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

static int queue_mode;

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
    double t0 = bench_now();
    if (queue_mode && queue_loop(c, iters) != 0)
        return 1;
    for (long i = 0; !queue_mode && i < iters; i++) {
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

int main(int argc, char **argv)
{
    long iters = bench_args(argc, argv, "op|queue <iterations>");
    queue_mode = strcmp(argv[1], "queue") == 0;
    if (!queue_mode && strcmp(argv[1], "op") != 0)
        bench_die("unknown mode '%s'", argv[1]);
    mp_test_redis srv;
    if (mp_test_redis_start(&srv, "bench") < 0)
        bench_die("%s", srv.error);
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
    printf("RESULT value=%.6g elapsed=%.6f n=%ld\n", dt / (2.0 * (double)iters) * 1e6, dt, iters);
    return 0;
}
