/* Queues on Redis (mp_manager_queue on a Redis manager; the public queue
 * functions dispatch here, see redis/redis_internal.h).
 *
 * <prefix>queue:<name> is a Redis list of messages (raw bytes, no tag: a
 * queue carries bytes). <prefix>queue:<name>:maxsize holds the capacity
 * its first opener chose (SET NX), so that every client honours the same
 * one. put to a bounded queue is a Lua script (check the length, then
 * RPUSH: atomic, so that racing producers never overfill), to an unbounded
 * one a script too (it checks the closed flag first); a full queue is
 * polled with a backoff until the timeout. A joinable queue's put also
 * counts the message not done (task_done, join below). get is BLPOP, the server's own blocking pop,
 * on a side connection (mp__redis_side_take: the handle's stays free for the other threads), in
 * slices of at most a second so that the socket timeout always covers the wait. get_many gets the
 * first message as get_into does, then takes in one script the next ones while they fit (never one
 * that does not). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis/redis_internal.h"

struct mp__redis_queue {
    mp__remote_head rh; /* MP__MAGIC_RQUEUE */
    mp__redis_obj *o;
    long long maxsize; /* 0: unbounded */
    bool joinable;
    /* A joinable queue's count of messages not done, and of the times it
     * came down to 0 (joiners wait for it to move), and its joiners. */
    char unfinished[MP__REDIS_KEY_MAX], jgen[MP__REDIS_KEY_MAX];
    mp__redis_wakers wk;
    /* Closed: the flag ("1" once closed, what puts and gets check) and a
     * wake-up list of one "1" pushed by the close, so that a get blocked in
     * BLPOP on the queue and that list wakes at once (and puts it back for
     * the next one; if that push is lost, the flag still answers at the
     * end of the slice). */
    char closed[MP__REDIS_KEY_MAX], closed_wake[MP__REDIS_KEY_MAX];
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

int mp__redis_queue_open(mp__redis_queue **out, mp__redis *conn, const char *name, size_t maxsize,
                         bool joinable)
{
    if (out == NULL || conn == NULL || name == NULL)
        return MP_EINVAL;
    mp__redis_queue *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return MP_ENOMEM;
    int rc = mp__redis_obj_new(&q->o, conn, MP__MAGIC_RQUEUE, NULL, "queue", name);
    if (rc == 0)
        rc = read_maxsize(q, maxsize);
    if (rc == 0) {
        q->joinable = joinable;
        mp__redis_obj_part(q->o, "unfinished", q->unfinished);
        mp__redis_obj_part(q->o, "jgen", q->jgen);
        mp__redis_obj_part(q->o, "closed", q->closed);
        mp__redis_obj_part(q->o, "closedwake", q->closed_wake);
        mp__redis_wakers_init(q->o, &q->wk);
    }
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

/* KEYS[2] the closed mark. Answers -2 (closed), -1 (full), or the
 * length. */
static const char put_lua[] = "if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end "
                              "local m = tonumber(ARGV[2]) "
                              "if m > 0 and redis.call('LLEN', KEYS[1]) >= m then return -1 end "
                              "return redis.call('RPUSH', KEYS[1], ARGV[1])";

/* Lua: u, a joinable queue's count of messages not done (KEYS[k]). */
#define UNFINISHED(k)                                                                              \
    MP__REDIS_LUA_HELPERS MP__REDIS_LUA_COUNT "local u, ue = count(KEYS[" k                        \
                                              "]) if not u then return ue end "

/* A joinable queue's put: the message and one more not done, at once
 * (KEYS[3] the closed mark). */
static const char put_joinable_lua[] =
    UNFINISHED("2") "if redis.call('EXISTS', KEYS[3]) == 1 then return -2 end "
                    "local m = tonumber(ARGV[2]) "
                    "if m > 0 and redis.call('LLEN', KEYS[1]) >= m then return -1 end "
                    "local n = redis.call('RPUSH', KEYS[1], ARGV[1]) "
                    "redis.call('INCR', KEYS[2]) return n";

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
    const char *argv[] = {"EVAL", put_lua, "2", q->o->key, q->closed, data ? data : "", max};
    size_t lens[] = {4, sizeof(put_lua) - 1, 1, q->o->key_len, strlen(q->closed), len, strlen(max)};
    const char *jargv[] = {"EVAL",    put_joinable_lua, "3", q->o->key, q->unfinished,
                           q->closed, data ? data : "", max};
    size_t jlens[] = {4,
                      sizeof(put_joinable_lua) - 1,
                      1,
                      q->o->key_len,
                      strlen(q->unfinished),
                      strlen(q->closed),
                      len,
                      strlen(max)};
    long step = 1;
    for (;;) {
        redisReply *rep;
        rc = q->joinable ? mp__redis_cmd(q->o->conn, MP__RR_INT, &rep, 8, jargv, jlens)
                         : mp__redis_cmd(q->o->conn, MP__RR_INT, &rep, 7, argv, lens);
        if (rc < 0)
            return rc;
        long long r = rep->integer;
        freeReplyObject(rep);
        if ((rc = mp__redis_lua_error(r)) < 0)
            return rc;
        if (r == -2)
            return MP_ECLOSED;
        if (r >= 0)
            return 0;
        if (mp__deadline_expired(&dl))
            return MP_EFULL;
        int left = mp__deadline_poll_ms(&dl);
        long ms = left >= 0 && step > left ? left : step;
        /* The nap honours the interrupt settings: nothing was put. */
        mp__deadline nap = {.ns = mp__now_ns() + ms * 1000000};
        if ((rc = mp__poll_intr(NULL, 0, &nap)) < 0)
            return rc;
        step = step < 32 ? step * 2 : step;
    }
}

/* The message of a pop, or NULL: a LPOP's string, or the [key, message]
 * of a BLPOP of the queue (not of its closed mark). */
static const redisReply *popped(const mp__redis_queue *q, const redisReply *rep)
{
    if (rep->type == REDIS_REPLY_STRING)
        return rep;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING && rep->element[0]->len == q->o->key_len &&
        memcmp(rep->element[0]->str, q->o->key, q->o->key_len) == 0)
        return rep->element[1];
    return NULL;
}

/* Whether the queue is closed (the mark is there). */
static int is_closed(mp__redis_queue *q)
{
    long long n = 0;
    redisReply *rep;
    int rc =
        mp__redis_cmd(q->o->conn, MP__RR_INT, &rep, 2, (const char *[]){"EXISTS", q->closed}, NULL);
    if (rc < 0)
        return rc;
    n = rep->integer;
    freeReplyObject(rep);
    return n > 0;
}

/* One get: a LPOP (secs 0), or a BLPOP of the queue then its closed
 * wake-up list for at most secs on a side connection (the handle's stays
 * free for the process's other threads: a put of another thread goes at
 * once and wakes this get). BLPOP takes from the queue first, so a get
 * that pops the wake-up found the queue empty: it puts the wake-up back
 * for the next waiter and answers MP_ECLOSED, as does a get that finds
 * nothing and the closed flag. 0 with *rep (nil: nothing), or an error. */
static int pop_once(mp__redis_queue *q, double secs, redisReply **rep)
{
    mp__redis *r = q->o->conn;
    *rep = NULL;
    int rc = secs <= 0 ? mp__redis_cmd(r, MP__RR_STR_NIL, rep, 2,
                                       (const char *[]){"LPOP", q->o->key}, NULL)
                       : mp__redis_side_blpop(r, q->o->key, q->closed_wake, secs, rep);
    /* An interrupted BLPOP (rc MP_EINTR or MP_ECANCELED) still answers
     * what it took: a message is this get's (it completes), a close's
     * wake-up goes back as usual; only nil lets the interrupt answer. */
    if (*rep == NULL)
        return rc;
    if ((*rep)->type != REDIS_REPLY_NIL && popped(q, *rep))
        return 0;
    if ((*rep)->type != REDIS_REPLY_NIL) { /* the wake-up: back for the next */
        (void)mp__redis_cmd(r, MP__RR_INT, NULL, 3, (const char *[]){"LPUSH", q->closed_wake, "1"},
                            NULL);
        rc = MP_ECLOSED;
    } else if (rc == 0 && (rc = is_closed(q)) == 0) {
        return 0; /* nil: nothing yet */
    } else if (rc == 1) {
        rc = MP_ECLOSED;
    }
    freeReplyObject(*rep);
    *rep = NULL;
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
        /* 0: no time left, a pop that does not block (pop_once). */
        double secs = left == 0 ? 0 : mp__redis_slice_secs(left);
        redisReply *rep;
        rc = pop_once(q, secs, &rep);
        if (rc < 0)
            return rc;
        const redisReply *m = popped(q, rep);
        if (m) {
            char *p = malloc(m->len + 1);
            if (p && m->len)
                memcpy(p, m->str, m->len);
            if (p)
                p[m->len] = '\0';
            *data = p;
            *len = m->len;
            freeReplyObject(rep);
            return p ? 0 : MP_ENOMEM;
        }
        freeReplyObject(rep);
        if (secs == 0 || mp__deadline_expired(&dl))
            return MP_EEMPTY;
    }
}

/* ---- mp_wait ------------------------------------------------------------
 * Ready: a message, or closed (a get would not block). The wait is a
 * BLMOVE of the queue's last message to where it is (RIGHT to RIGHT on
 * the same key: nothing changes, and the getters blocked on the queue
 * are still served), which blocks on the server until the queue has a
 * message, sent on a side connection whose fd mp_wait polls. It lasts a
 * second at most: then the flag is read again, so a close is seen within
 * a second (a message at once). A wait that ends another way (another
 * object ready, the timeout) closes its side connection. */

typedef struct queue_wait {
    mp__redis *side;
    int fd;
} queue_wait;

int mp__redis_queue_wait_begin(mp__redis_queue *q, void **w, bool block, int *fd)
{
    int rc = queue_check(q);
    if (rc < 0)
        return rc;
    queue_wait *qw = *w;
    if (qw) { /* under way: its answer is still to come */
        *fd = qw->fd;
        return 0;
    }
    if (block) {
        if ((qw = calloc(1, sizeof(*qw))) == NULL)
            return MP_ENOMEM;
        const char *argv[] = {"BLMOVE", q->o->key, q->o->key, "RIGHT", "RIGHT", "1"};
        rc = mp__redis_side_send(q->o->conn, 6, argv, &qw->side, &qw->fd);
        if (rc < 0) {
            free(qw);
            return rc;
        }
        *w = qw;
        *fd = qw->fd;
        return 0;
    }
    redisReply *rep[2] = {NULL, NULL};
    rc = mp__redis_pipeline(q->o->conn, MP__RR_INT, 2, (const int[]){2, 2},
                            (const char *const *const[]){(const char *[]){"LLEN", q->o->key},
                                                         (const char *[]){"EXISTS", q->closed}},
                            (const size_t *const[]){NULL, NULL}, rep);
    if (rc < 0)
        return rc;
    bool ready = rep[0]->integer > 0 || rep[1]->integer > 0;
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    return ready ? 1 : 0;
}

int mp__redis_queue_wait_finish(mp__redis_queue *q, void **w)
{
    queue_wait *qw = *w;
    if (qw == NULL)
        return 0;
    *w = NULL;
    redisReply *rep;
    int rc = mp__redis_side_recv(q->o->conn, qw->side, &rep);
    free(qw);
    if (rc < 0)
        return rc;
    rc = mp__redis_reply_check(rep, MP__RR_STR_NIL);
    if (rc == 0)
        rc = rep->type == REDIS_REPLY_STRING ? 1 : 0;
    freeReplyObject(rep);
    return rc;
}

void mp__redis_queue_wait_end(mp__redis_queue *q, void **w)
{
    queue_wait *qw = *w;
    if (qw == NULL)
        return;
    *w = NULL;
    mp__redis_side_abandon(q->o->conn, qw->side);
    free(qw);
}

int mp__redis_queue_shut(mp__redis_queue *q)
{
    int rc = queue_check(q);
    if (rc < 0)
        return rc;
    /* The flag, and with the first close one wake-up. */
    static const char close_lua[] = "if redis.call('SET', KEYS[1], '1', 'NX') then "
                                    "redis.call('RPUSH', KEYS[2], '1') end return 0";
    return mp__redis_cmd(q->o->conn, MP__RR_INT, NULL, 5,
                         (const char *[]){"EVAL", close_lua, "2", q->closed, q->closed_wake}, NULL);
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

/* Takes messages from the head while they fit in ARGV[2] bytes, at most
 * ARGV[1] of them, and answers them; a message that does not fit stays
 * first. */
static const char take_fitting_lua[] =
    "local n, room, out = tonumber(ARGV[1]), tonumber(ARGV[2]), {} "
    "while #out < n do "
    "  local m = redis.call('LINDEX', KEYS[1], 0) "
    "  if not m or #m > room then break end "
    "  redis.call('LPOP', KEYS[1]) room = room - #m out[#out + 1] = m "
    "end "
    "return out";

int mp__redis_queue_get_many(mp__redis_queue *q, void *buf, size_t cap, size_t *lens, size_t n,
                             double timeout)
{
    int rc = queue_check(q);
    if (rc == 0 && ((buf == NULL && cap > 0) || (lens == NULL && n > 0) || n > INT_MAX))
        rc = MP_EINVAL;
    if (rc < 0 || n == 0)
        return rc;
    rc = mp__redis_queue_get_into(q, buf, cap, &lens[0], timeout);
    if (rc < 0 || n == 1)
        return rc < 0 ? rc : 1;
    char more[24], room[24];
    snprintf(more, sizeof(more), "%zu", n - 1);
    snprintf(room, sizeof(room), "%zu", cap - lens[0]);
    redisReply *rep;
    rc =
        mp__redis_cmd(q->o->conn, MP__RR_ANY_VALUE, &rep, 6,
                      (const char *[]){"EVAL", take_fitting_lua, "1", q->o->key, more, room}, NULL);
    if (rc < 0)
        return 1; /* the first is got: the rest stays for the next call */
    size_t got = 1, off = lens[0];
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        const redisReply *m = rep->element[i];
        if (m->type != REDIS_REPLY_STRING || m->len > cap - off)
            break; /* not what the script answers: taken, yet not given */
        memcpy((char *)buf + off, m->str, m->len);
        lens[got++] = m->len;
        off += m->len;
    }
    freeReplyObject(rep);
    return (int)got;
}

/* ---- task_done and join ---------------------------------------------------
 * KEYS: the count not done, the count of times it reached 0, the joiners'
 * wait set and wake list. task_done answers -1 when nothing is left to
 * mark done; reaching 0 wakes every joiner, as an event's set does. */
#define JOIN_LUA                                                                                   \
    UNFINISHED("1")                                                                                \
    MP__REDIS_WAKE_LUA("3", "4")                                                                   \
    "local g, ge = count(KEYS[2]) if not g then return ge end "                                    \
    "local w = wk_check() if w then return w end "

static const char task_done_lua[] = JOIN_LUA "if u <= 0 then return -1 end "
                                             "if redis.call('DECR', KEYS[1]) == 0 then "
                                             "  wk_wake_all(redis.call('INCR', KEYS[2])) "
                                             "end "
                                             "return 0";

/* ARGV[1] the joiner's id, ARGV[2] "1": enlist it when messages are not
 * done. Answers {1 when none is left, the count of times it reached 0}. */
static const char join_check_lua[] =
    JOIN_LUA "if u > 0 and ARGV[2] == '1' then "
             "  local now = wk_now() wk_expire(now) wk_enlist(ARGV[1], now) "
             "end "
             "return {u == 0 and 1 or 0, g}";

static int join_script(mp__redis_queue *q, const char *lua, const char *id, bool enlist,
                       redisReply **out)
{
    const char *argv[] = {"EVAL",     lua,        "4",          q->unfinished,     q->jgen,
                          q->wk.wait, q->wk.wake, id ? id : "", enlist ? "1" : "0"};
    return mp__redis_cmd(q->o->conn, MP__RR_ANY_VALUE, out, 9, argv, NULL);
}

int mp__redis_queue_task_done(mp__redis_queue *q)
{
    int rc = queue_check(q);
    if (rc == 0 && !q->joinable)
        rc = MP_EINVAL;
    redisReply *rep;
    if (rc == 0)
        rc = join_script(q, task_done_lua, NULL, false, &rep);
    if (rc < 0)
        return rc;
    if (rep->type != REDIS_REPLY_INTEGER)
        rc = MP_EBADMSG;
    else if ((rc = mp__redis_lua_error(rep->integer)) == 0 && rep->integer == -1)
        rc = MP_ETOOMANYDONE;
    freeReplyObject(rep);
    return rc;
}

/* mp__redis_gen_check of a joinable queue: whether no message is left
 * not done (*none), and the count of times none was. */
static int join_check(void *obj, const char *id, bool enlist, bool *none, uint64_t *gen)
{
    redisReply *rep;
    int rc = join_script(obj, join_check_lua, id, enlist, &rep);
    if (rc < 0)
        return rc;
    rc = mp__redis_gen_reply(rep, none, gen);
    freeReplyObject(rep);
    return rc;
}

int mp__redis_queue_join(mp__redis_queue *q, double timeout)
{
    int rc = queue_check(q);
    if (rc == 0 && !q->joinable)
        rc = MP_EINVAL;
    return rc < 0 ? rc : mp__redis_gen_wait(q->o->conn, &q->wk, timeout, join_check, q);
}

size_t mp__redis_queue_maxsize(const mp__redis_queue *q)
{
    return queue_check(q) == 0 ? (size_t)q->maxsize : 0;
}
