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

#include "redis/redis_internal.h"

void mp__redis_new_token(char *tok, size_t cap)
{
    unsigned char r[16] = {0};
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        uint64_t t = (uint64_t)mp__now_ns() ^ ((uint64_t)getpid() << 32);
        memcpy(r, &t, sizeof(t));
    }
    int n = snprintf(tok, cap, "%d-", (int)getpid());
    for (size_t i = 0; i < sizeof(r) && (size_t)n + 2 < cap; i++, n += 2)
        snprintf(tok + n, cap - (size_t)n, "%02x", r[i]);
}

void mp__redis_wakers_init(const mp__redis_obj *o, mp__redis_wakers *k)
{
    mp__redis_obj_part(o, "wake", k->wake);
    mp__redis_obj_part(o, "wait", k->wait);
}

int mp__redis_wake_wait(mp__redis *conn, const mp__redis_wakers *k, const mp__deadline *dl,
                        char *got, size_t cap)
{
    if (got && cap)
        got[0] = '\0';
    int left = mp__deadline_poll_ms(dl);
    if (left == 0)
        return MP_ETIMEDOUT;
    /* Redis reads a BLPOP timeout of 0 as "forever": at least a
     * millisecond, at most a slice. */
    double secs = left < 0 || left > 1000 ? 1.0 : left / 1000.0;
    char t[32];
    snprintf(t, sizeof(t), "%.3f", secs);
    /* On a side connection: the handle's stays free meanwhile. */
    mp__redis *side;
    int rc = mp__redis_side_take(conn, &side);
    if (rc < 0)
        return rc;
    rc = mp__redis_begin(side);
    redisReply *rep = NULL;
    if (rc == 0) {
        rc = mp__redis_call(side, MP__RR_ANY_VALUE, &rep, secs, 3,
                            (const char *[]){"BLPOP", k->wake, t}, NULL);
        mp__redis_end(side);
    }
    mp__redis_side_give(conn, side);
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING && got && cap) {
        size_t n = rep->element[1]->len < cap - 1 ? rep->element[1]->len : cap - 1;
        memcpy(got, rep->element[1]->str, n);
        got[n] = '\0';
    } else if (rep->type != REDIS_REPLY_NIL && rep->type != REDIS_REPLY_ARRAY) {
        rc = MP_EPROTO; /* WRONGTYPE reads as a server error before this */
    }
    freeReplyObject(rep);
    return rc;
}

int mp__redis_wake_leave(mp__redis *conn, const mp__redis_wakers *k, const char *waiter)
{
    return mp__redis_cmd(conn, MP__RR_ANY_VALUE, NULL, 3, (const char *[]){"ZREM", k->wait, waiter},
                         NULL);
}
