/* Waiters woken by the server, for the Redis locks, semaphores and
 * events (docs/redis.md, "Waiters"). A waiter that finds the object
 * taken enlists in the object's wait set (<key>:wait, a sorted set of
 * waiter ids scored by when the entry expires) in the same script that
 * found it taken, then blocks in BLPOP on the object's wake list
 * (<key>:wake). A release that finds waiters enlisted pushes a wake-up
 * there, so the waiter returns within a round trip of the release, and
 * no wake-up is lost between the failed try and the BLPOP: the list
 * keeps it. The BLPOP goes over a side connection (mp__redis_side_take),
 * so that the other threads of the process keep the handle's, and lasts
 * a slice of at most a second (the waiter enlists again at each retry);
 * an entry of a waiter killed in its wait expires by itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "os/pidfd.h"
#include "redis/redis_internal.h"

void mp__redis_new_token(char *tok, size_t cap)
{
    unsigned char r[16] = {0};
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        uint64_t t = (uint64_t)mp__now_ns() ^ ((uint64_t)mp__self_pid() << 32);
        memcpy(r, &t, sizeof(t));
    }
    int n = snprintf(tok, cap, "%d-", (int)mp__self_pid());
    for (size_t i = 0; i < sizeof(r) && (size_t)n + 2 < cap; i++, n += 2)
        snprintf(tok + n, cap - (size_t)n, "%02x", r[i]);
}

void mp__redis_wakers_init(const mp__redis_obj *o, mp__redis_wakers *k)
{
    mp__redis_obj_part(o, "wake", k->wake);
    mp__redis_obj_part(o, "wait", k->wait);
}

int mp__redis_side_blpop(mp__redis *r, const char *key, const char *key2, double secs,
                         redisReply **rep)
{
    char t[32];
    snprintf(t, sizeof(t), "%.3f", secs);
    const char *argv[] = {"BLPOP", key, key2 ? key2 : t, t};
    int argc = key2 ? 4 : 3;
    *rep = NULL;
    if (mp__redis_intr_armed())
        return mp__redis_side_pipeline(r, MP__RR_EXEC, 1, &argc, (const char *const *const[]){argv},
                                       (const size_t *const[]){NULL}, rep, secs);
    mp__redis *side;
    int rc = mp__redis_side_take(r, &side);
    if (rc < 0)
        return rc;
    rc = mp__redis_begin(side);
    if (rc == 0) {
        rc = mp__redis_call(side, MP__RR_EXEC, rep, secs, argc, argv, NULL);
        mp__redis_end(side);
    }
    mp__redis_side_give(r, side);
    return rc;
}

double mp__redis_slice_secs(int left)
{
    return left < 0 || left > 1000 ? 1.0 : left / 1000.0;
}

void mp__redis_popped(const redisReply *rep, char *got, size_t cap)
{
    got[0] = '\0';
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING && rep->element[1]->len < cap) {
        memcpy(got, rep->element[1]->str, rep->element[1]->len);
        got[rep->element[1]->len] = '\0';
    }
}

int mp__redis_wake_wait(mp__redis *conn, const mp__redis_wakers *k, const mp__deadline *dl,
                        char *got, size_t cap)
{
    if (got && cap)
        got[0] = '\0';
    int left = mp__deadline_poll_ms(dl);
    if (left == 0)
        return MP_ETIMEDOUT;
    redisReply *rep;
    int rc = mp__redis_side_blpop(conn, k->wake, NULL, mp__redis_slice_secs(left), &rep);
    if (rep == NULL)
        return rc;
    if (got && cap)
        mp__redis_popped(rep, got, cap);
    freeReplyObject(rep);
    return rc;
}

int mp__redis_gen_reply(const redisReply *rep, bool *flag, uint64_t *gen)
{
    if (rep->type == REDIS_REPLY_INTEGER) {
        int rc = mp__redis_lua_error(rep->integer);
        return rc < 0 ? rc : MP_EBADMSG;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_INTEGER || rep->element[1]->integer < 0)
        return MP_EBADMSG;
    *flag = rep->element[0]->integer == 1;
    *gen = (uint64_t)rep->element[1]->integer;
    return 0;
}

/* Whether got is a count of sets above mine. */
static bool moved_past(const char *got, uint64_t mine)
{
    char *end = NULL;
    unsigned long long g = got[0] ? strtoull(got, &end, 10) : 0;
    return got[0] && end && *end == '\0' && g > mine;
}

/* A gen wait that an interrupt ended (rc): it completes if the count
 * moved (popped, or seen at a last look), else it leaves the wait set. */
static int gen_interrupted(mp__redis *conn, const mp__redis_wakers *wk, mp__redis_gen_check check,
                           void *obj, const char *id, uint64_t mine, const char *got, int rc)
{
    bool done = false;
    uint64_t gen = 0;
    if (moved_past(got, mine))
        return 0;
    int c = check(obj, id, false, &done, &gen);
    if (c < 0)
        return c;
    if (done || gen > mine)
        return 0;
    (void)mp__redis_wake_leave(conn, wk, id);
    return rc;
}

int mp__redis_gen_wait(mp__redis *conn, const mp__redis_wakers *wk, double timeout,
                       mp__redis_gen_check check, void *obj)
{
    mp__deadline dl;
    if (mp__deadline_init(&dl, timeout) < 0)
        return MP_EINVAL;
    char id[48], got[32];
    mp__redis_new_token(id, sizeof(id));
    bool enlist = !mp__deadline_expired(&dl), first = true, done = false;
    uint64_t mine = 0, gen = 0;
    for (;;) {
        int rc = check(obj, id, enlist, &done, &gen);
        if (rc < 0)
            return rc;
        /* Done now, or the count moved since the wait began (done then,
         * maybe undone since). */
        if (done || (!first && gen > mine))
            return 0;
        if (first)
            mine = gen;
        first = false;
        rc = enlist ? mp__redis_wake_wait(conn, wk, &dl, got, sizeof(got)) : MP_ETIMEDOUT;
        if (rc == MP_ETIMEDOUT) {
            if (enlist)
                (void)mp__redis_wake_leave(conn, wk, id);
            return MP_ETIMEDOUT;
        }
        if (rc == MP_EINTR || rc == MP_ECANCELED)
            return gen_interrupted(conn, wk, check, obj, id, mine, got, rc);
        if (rc < 0)
            return rc;
        if (moved_past(got, mine))
            return 0; /* woken by a count above the one seen */
    }
}

int mp__redis_wake_leave(mp__redis *conn, const mp__redis_wakers *k, const char *waiter)
{
    return mp__redis_cmd(conn, MP__RR_ANY_VALUE, NULL, 3, (const char *[]){"ZREM", k->wait, waiter},
                         NULL);
}

int mp__redis_wake_wait_leave(mp__redis *conn, const mp__redis_wakers *k, const char *id,
                              const mp__deadline *dl, char *got, size_t cap)
{
    got[0] = '\0';
    int left = mp__deadline_poll_ms(dl);
    if (left == 0)
        return MP_ETIMEDOUT;
    char t[32];
    double secs = mp__redis_slice_secs(left);
    snprintf(t, sizeof(t), "%.3f", secs);
    const char *blpop[] = {"BLPOP", k->wake, t}, *zrem[] = {"ZREM", k->wait, id};
    redisReply *rep[2];
    int rc = mp__redis_side_pipeline(conn, MP__RR_ANY_VALUE, 2, (const int[]){3, 3},
                                     (const char *const *const[]){blpop, zrem},
                                     (const size_t *const[]){NULL, NULL}, rep, secs);
    /* On 0, MP_EINTR and MP_ECANCELED both replies are in; otherwise
     * none (an error reply fails the call). */
    if (rep[0] == NULL || rep[1] == NULL)
        return rc;
    mp__redis_popped(rep[0], got, cap);
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    return rc;
}
