/* Queues on Redis (mp_manager_queue on a Redis manager; the public queue
 * functions dispatch here, see redis/redis_internal.h).
 *
 * <prefix>queue:<name> is a Redis list of messages (raw bytes, no tag: a
 * queue carries bytes). <prefix>queue:<name>:maxsize holds the capacity
 * its first opener chose (SET NX), so that every client honours the same
 * one. put to a bounded queue is a Lua script (check the length, then
 * RPUSH: atomic, so that racing producers never overfill), to an unbounded
 * one a plain RPUSH; a full queue is polled with a backoff until the
 * timeout. get is BLPOP, the server's own blocking pop, in
 * slices of at most a second so that the connection's mutex is released
 * between slices and the socket timeout always covers the wait. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis/redis_internal.h"

struct mp__redis_queue {
    mp__remote_head rh; /* MP__MAGIC_RQUEUE */
    mp__redis_obj *o;
    long long maxsize; /* 0: unbounded */
};

static int read_maxsize(mp__redis_queue *q, size_t want)
{
    char key[MP__REDIS_KEY_MAX], num[24];
    mp__redis_obj_part(q->o, "maxsize", key);
    snprintf(num, sizeof(num), "%zu", want);
    int rc = mp__redis_cmd(q->o->conn, MP__RR_STR_NIL, NULL, 4,
                           (const char *[]){"SET", key, num, "NX"}, NULL);
    /* SET NX answers +OK or nil: either is fine; now read the winner. */
    if (rc == MP_EBADMSG)
        rc = 0;
    redisReply *rep;
    if (rc == 0)
        rc = mp__redis_cmd(q->o->conn, MP__RR_STR, &rep, 2, (const char *[]){"GET", key}, NULL);
    if (rc < 0)
        return rc;
    int64_t m = -1;
    rc = mp__redis_parse_int(rep->str, rep->len, &m); /* strict: the text is untrusted */
    if (rc == 0 && m < 0)
        rc = MP_EBADMSG;
    q->maxsize = m;
    freeReplyObject(rep);
    return rc;
}

int mp__redis_queue_open(mp__redis_queue **out, mp__redis *conn, const char *name, size_t maxsize)
{
    if (out == NULL || conn == NULL || name == NULL)
        return MP_EINVAL;
    mp__redis_queue *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return MP_ENOMEM;
    int rc = mp__redis_obj_new(&q->o, conn, MP__MAGIC_RQUEUE, NULL, "queue", name);
    if (rc == 0)
        rc = read_maxsize(q, maxsize);
    if (rc < 0) {
        mp__redis_obj_free(q->o);
        free(q);
        return rc;
    }
    q->rh = (mp__remote_head){.head = {.magic = MP__MAGIC_RQUEUE, .backend = MP__BACKEND_REDIS},
                              .ops = &mp__redis_queue_ops};
    *out = q;
    return 0;
}

void mp__redis_queue_close(mp__redis_queue *q)
{
    if (q == NULL)
        return;
    q->rh.head.magic = 0;
    mp__redis_obj_free(q->o);
    free(q);
}

static int queue_check(const mp__redis_queue *q)
{
    return q != NULL && q->rh.head.magic == MP__MAGIC_RQUEUE ? 0 : MP_EINVAL;
}

static const char put_lua[] = "local m = tonumber(ARGV[2]) "
                              "if m > 0 and redis.call('LLEN', KEYS[1]) >= m then return -1 end "
                              "return redis.call('RPUSH', KEYS[1], ARGV[1])";

int mp__redis_queue_put(mp__redis_queue *q, const void *data, size_t len, double timeout)
{
    mp__deadline dl;
    int rc = queue_check(q);
    if (rc == 0 && ((data == NULL && len != 0) || mp__deadline_init(&dl, timeout) < 0))
        rc = MP_EINVAL;
    if (rc == 0 && len > MP_VALUE_MAX)
        rc = MP_EMSGSIZE;
    if (rc < 0)
        return rc;
    char max[24];
    snprintf(max, sizeof(max), "%lld", q->maxsize);
    const char *argv[] = {"EVAL", put_lua, "1", q->o->key, data ? data : "", max};
    size_t lens[] = {4, sizeof(put_lua) - 1, 1, q->o->key_len, len, strlen(max)};
    if (q->maxsize == 0) /* unbounded: a plain RPUSH, no script to run */
        return mp__redis_cmd(q->o->conn, MP__RR_INT, NULL, 3,
                             (const char *[]){"RPUSH", q->o->key, argv[4]},
                             (size_t[]){5, q->o->key_len, len});
    long step = 1;
    for (;;) {
        redisReply *rep;
        rc = mp__redis_cmd(q->o->conn, MP__RR_INT, &rep, 6, argv, lens);
        if (rc < 0)
            return rc;
        long long r = rep->integer;
        freeReplyObject(rep);
        if (r >= 0)
            return 0;
        if (mp__deadline_expired(&dl))
            return MP_EFULL;
        int left = mp__deadline_poll_ms(&dl);
        long ms = left >= 0 && step > left ? left : step;
        nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
        step = step < 32 ? step * 2 : step;
    }
}

/* Takes the message out of a LPOP (string) or BLPOP ([key, message]) reply. */
static int take(const redisReply *rep, void **data, size_t *len)
{
    const redisReply *m = rep;
    if (rep->type == REDIS_REPLY_ARRAY) {
        if (rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_STRING)
            return MP_EBADMSG;
        m = rep->element[1];
    }
    char *p = malloc(m->len + 1);
    if (p == NULL)
        return MP_ENOMEM;
    if (m->len)
        memcpy(p, m->str, m->len);
    p[m->len] = '\0';
    *data = p;
    *len = m->len;
    return 0;
}

/* One BLPOP of at most a second (0 seconds: LPOP, never blocks). */
static int pop_once(mp__redis_queue *q, double secs, redisReply **rep)
{
    mp__redis *r = q->o->conn;
    if (secs <= 0)
        return mp__redis_cmd(r, MP__RR_STR_NIL, rep, 2, (const char *[]){"LPOP", q->o->key}, NULL);
    char t[32];
    snprintf(t, sizeof(t), "%.3f", secs);
    int rc = mp__redis_begin(r);
    if (rc < 0)
        return rc;
    rc =
        mp__redis_call(r, MP__RR_EXEC, rep, secs, 3, (const char *[]){"BLPOP", q->o->key, t}, NULL);
    mp__redis_end(r);
    return rc;
}

int mp__redis_queue_get(mp__redis_queue *q, void **data, size_t *len, double timeout)
{
    mp__deadline dl;
    int rc = queue_check(q);
    if (rc == 0 && (data == NULL || len == NULL || mp__deadline_init(&dl, timeout) < 0))
        rc = MP_EINVAL;
    if (rc < 0)
        return rc;
    for (;;) {
        int left = mp__deadline_poll_ms(&dl);
        /* Redis reads a BLPOP timeout of 0 as "forever": ask for at least
         * a millisecond when some time is left. */
        double secs = left < 0 || left > 1000 ? 1.0 : left == 0 ? 0 : left / 1000.0;
        redisReply *rep;
        rc = pop_once(q, secs, &rep);
        if (rc < 0)
            return rc;
        if (rep->type != REDIS_REPLY_NIL) {
            rc = take(rep, data, len);
            freeReplyObject(rep);
            return rc;
        }
        freeReplyObject(rep);
        if (secs == 0 || mp__deadline_expired(&dl))
            return MP_EEMPTY;
    }
}

int mp__redis_queue_qsize(mp__redis_queue *q, size_t *out)
{
    int rc = queue_check(q);
    if (rc == 0 && out == NULL)
        rc = MP_EINVAL;
    long long n;
    if (rc == 0)
        rc = mp__redis_obj_count(q->o, "LLEN", &n);
    if (rc == 0)
        *out = (size_t)n;
    return rc;
}

int mp__redis_queue_unget(mp__redis_queue *q, const void *data, size_t len)
{
    int rc = queue_check(q);
    if (rc < 0)
        return rc;
    /* LPUSH ignores maxsize on purpose: the message was in the queue a
     * moment ago, and putting it back must not fail for lack of room. */
    return mp__redis_cmd(q->o->conn, MP__RR_INT, NULL, 3,
                         (const char *[]){"LPUSH", q->o->key, data ? data : ""},
                         (size_t[]){5, q->o->key_len, len});
}

size_t mp__redis_queue_maxsize(const mp__redis_queue *q)
{
    return queue_check(q) == 0 ? (size_t)q->maxsize : 0;
}
