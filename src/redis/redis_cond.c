/* Conditions on Redis (the public mp_cond functions dispatch here through
 * mp__redis_cond_ops). A condition lives with its lock: its keys are parts
 * of the lock's key L (cond:<name> for mp_manager_cond, whose own rlock
 * that is; lock:<name> or rlock:<name> for mp_cond_create over a Redis
 * lock):
 *
 *   L:cwait        sorted set: the waiters' ids, scored by arrival (FIFO)
 *   L:cexp         hash: waiter id -> when its entry expires (server ms)
 *   L:cseq         counter giving the arrival numbers
 *   L:cwake:<id>   list: one waiter's wake-up (TTL MP__REDIS_WAKE_TTL_MS)
 *
 * wait runs one script that checks the caller holds the lock, enlists it
 * and lets the lock go (waking one of the lock's waiters), so that no
 * notify can fall between the release and the enlisting. The waiter then
 * blocks in BLPOP on its own wake list, over a side connection, in slices
 * of at most a second; after each empty slice it renews its entry. notify
 * (by the holder) takes up to n live waiters in arrival order out of the
 * set, moves each into the lock's wait set (as a futex requeue does) and
 * pushes it a wake-up that says so; entries past their expiry (a waiter
 * killed or stopped in its wait) are dropped on the way, so a dead waiter
 * never takes a notification from a live one. A waiter so woken waits at
 * once for the lock's grant (the holder's release, which finds it
 * enlisted, grants it the lock), without a try that would find the lock
 * still held. A waiter that times out
 * leaves the set in a script that also tells whether it was chosen
 * meanwhile: then the wait returns 0, the notification is not lost.
 * Every way out takes the lock back (without limit, restoring an rlock's
 * levels), as locally.
 *
 * The wake lists are keys the scripts name from ARGV (a waiter's id is
 * not known when the script is sent): fine on one Redis server, not on a
 * Redis Cluster, which this backend does not serve. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_internal.h"

struct mp__redis_cond {
    mp__remote_head rh; /* MP__MAGIC_RCOND */
    mp__redis_lock *lock;
    bool own; /* the lock is the condition's (mp_manager_cond) */
    char cwait[MP__REDIS_KEY_MAX], cexp[MP__REDIS_KEY_MAX], cseq[MP__REDIS_KEY_MAX];
    char wake_prefix[MP__REDIS_KEY_MAX]; /* "L:cwake:" */
};

/* A waiter's wake list: the prefix and an id. */
#define WAKE_KEY_MAX (MP__REDIS_KEY_MAX + MP__REDIS_TOKEN_MAX)

static int cond_new(mp__redis_cond **out, mp__redis_lock *l, bool own)
{
    mp__redis_cond *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return MP_ENOMEM;
    const mp__redis_obj *o = mp__redis_lock_obj(l);
    mp__redis_obj_part(o, "cwait", c->cwait);
    mp__redis_obj_part(o, "cexp", c->cexp);
    mp__redis_obj_part(o, "cseq", c->cseq);
    mp__redis_obj_part(o, "cwake", c->wake_prefix);
    size_t n = strlen(c->wake_prefix);
    if (n + 2 > sizeof(c->wake_prefix)) {
        free(c);
        return MP_EINVAL;
    }
    memcpy(c->wake_prefix + n, ":", 2);
    c->lock = l;
    c->own = own;
    c->rh = (mp__remote_head){.head = {.magic = MP__MAGIC_RCOND, .backend = MP__BACKEND_REDIS},
                              .ops = &mp__redis_cond_ops};
    *out = c;
    return 0;
}

int mp__redis_cond_open(mp__redis_cond **out, mp__redis *conn, const char *name, double lease)
{
    mp__redis_lock *l;
    int rc = mp__redis_lock_open_kind(&l, conn, name, "cond", lease);
    if (rc < 0)
        return rc;
    mp__redis_lock_set_recursive(l);
    rc = cond_new(out, l, true);
    if (rc < 0)
        mp__redis_lock_close(l);
    return rc;
}

int mp__redis_cond_over(mp__redis_cond **out, mp__redis_lock *l)
{
    if (out == NULL || l == NULL)
        return MP_EINVAL;
    return cond_new(out, l, false);
}

static mp__redis_cond *cond_of(mp_cond *c)
{
    mp__redis_cond *rc = (mp__redis_cond *)(void *)c;
    return mp__redis_obj_check(rc, MP__MAGIC_RCOND) == 0 ? rc : NULL;
}

void mp__redis_cond_close(mp__redis_cond *c)
{
    if (c == NULL)
        return;
    c->rh.head.magic = 0;
    if (c->own)
        mp__redis_lock_close(c->lock);
    free(c);
}

/* Lua: KEYS[5] the waiter set, KEYS[6] the expiry hash, KEYS[7] the
 * arrival counter (after the lock's four keys, when a script has them);
 * refuses another Redis type or a counter that is no count. */
#define COND_CHECK(W, E, S)                                                                        \
    "local function cond_bad() "                                                                   \
    "local a = kind(KEYS[" W "]) if a ~= 'none' and a ~= 'zset' then return EPROTO end "           \
    "local b = kind(KEYS[" E "]) if b ~= 'none' and b ~= 'hash' then return EPROTO end "           \
    "local s, se = count(KEYS[" S "]) if not s then return se end return false end "               \
    "local function cond_keep(now) for _, k in ipairs({KEYS[" W "], KEYS[" E "], KEYS[" S          \
    "]}) do "                                                                                      \
    "redis.call('PEXPIRE', k, " MP__REDIS_WAKE_TTL_MS ") end end "

/* KEYS: lock, owner, lock wait set, lock wake list, cwait, cexp, cseq,
 * the lock's fence; ARGV: the holder's lock token, the waiter's id, the
 * lock's lease in ms, the lock waiter id of a hold by grant (or ""). Answers 1 (enlisted, the lock
 * let go) or 0 (the token does not hold the lock: its lease ran out;
 * nothing changed). */
static const char wait_lua[] = MP__REDIS_LOCK_CHECK MP__REDIS_LUA_COUNT MP__REDIS_WAKE_LUA("3", "4")
    MP__REDIS_LOCK_RELEASE("3", "4", "8") COND_CHECK(
        "5", "6", "7") "local w = wk_check() or cond_bad() if w then return w end "
                       "local f, fe = count(KEYS[8]) if not f then return fe end "
                       "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
                       "local now = wk_now() "
                       "redis.call('ZADD', KEYS[5], redis.call('INCR', KEYS[7]), ARGV[2]) "
                       "redis.call('HSET', KEYS[6], ARGV[2], now + " MP__REDIS_WAKE_TTL_MS
                       ") cond_keep(now) lk_release(ARGV[1], ARGV[3], ARGV[4]) return 1";

/* KEYS: lock, cwait, cexp, the lock's wait set; ARGV: the holder's lock
 * token, how many to wake, the wake list prefix. Answers the number
 * woken, or -1 when the token does not hold the lock. A waiter woken is
 * moved into the lock's wait set (as a lock waiter enlists, under its
 * id) and its wake-up says so ("r"): the release that follows grants it
 * the lock, and it waits for that grant at once, with no try that would
 * only find the lock still held. */
static const char notify_lua[] = MP__REDIS_LUA_HELPERS
    "if redis.replicate_commands then redis.replicate_commands() end "
    "local a = kind(KEYS[2]) if a ~= 'none' and a ~= 'zset' then return EPROTO end "
    "local b = kind(KEYS[3]) if b ~= 'none' and b ~= 'hash' then return EPROTO end "
    "local c = kind(KEYS[4]) if c ~= 'none' and c ~= 'zset' then return EPROTO end "
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end "
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / "
    "1000) "
    "local want, woken = tonumber(ARGV[2]), 0 "
    "while woken < want do "
    "  local e = redis.call('ZRANGE', KEYS[2], 0, 63) "
    "  if #e == 0 then break end "
    "  for i = 1, #e do "
    "    if woken >= want then break end "
    "    local exp = tonumber(redis.call('HGET', KEYS[3], e[i]) or '0') or 0 "
    "    redis.call('ZREM', KEYS[2], e[i]) redis.call('HDEL', KEYS[3], e[i]) "
    "    if exp > now then "
    "      redis.call('ZADD', KEYS[4], now + " MP__REDIS_WAKE_TTL_MS ", e[i]) "
    "      local k = ARGV[3] .. e[i] "
    "      redis.call('RPUSH', k, 'r') redis.call('PEXPIRE', k, " MP__REDIS_WAKE_TTL_MS ") "
    "      woken = woken + 1 "
    "    end "
    "  end "
    "end "
    "if woken > 0 then redis.call('PEXPIRE', KEYS[4], " MP__REDIS_WAKE_TTL_MS ") end "
    "return woken";

/* KEYS: cwait, cexp, cseq, the waiter's wake list; ARGV: its id, "1" to
 * leave (its time is up). Answers 1 (chosen by a notify: its wake-up is
 * taken), 0 (still waiting: its entry renewed; or, leaving, out of the
 * set now) or 2 (neither chosen nor in the set: its entry expired). */
static const char poll_lua[] = MP__REDIS_LUA_HELPERS MP__REDIS_LUA_COUNT COND_CHECK(
    "1", "2",
    "3") "local w = cond_bad() if w then return w end "
         "if redis.call('LPOP', KEYS[4]) then redis.call('DEL', KEYS[4]) return 1 end "
         "if redis.call('ZSCORE', KEYS[1], ARGV[1]) then "
         "  if ARGV[2] == '1' then "
         "    redis.call('ZREM', KEYS[1], ARGV[1]) redis.call('HDEL', KEYS[2], ARGV[1]) return 0 "
         "  end "
         "  local t = redis.call('TIME') "
         "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
         "  redis.call('HSET', KEYS[2], ARGV[1], now + " MP__REDIS_WAKE_TTL_MS ") cond_keep(now) "
         "  return 0 "
         "end "
         "return 2";

static int script_int(mp__redis *conn, int argc, const char **argv, long long *out)
{
    redisReply *rep;
    int rc = mp__redis_cmd(conn, MP__RR_INT, &rep, argc, argv, NULL);
    if (rc < 0)
        return rc;
    *out = rep->integer;
    freeReplyObject(rep);
    return mp__redis_lua_error(*out);
}

static mp__redis *cond_conn(const mp__redis_cond *c)
{
    return mp__redis_lock_obj(c->lock)->conn;
}

/* One poll of the waiter's state (leave: its time is up). */
static int cond_poll(mp__redis_cond *c, const char *id, const char *wake, bool leave,
                     long long *state)
{
    const char *argv[] = {"EVAL",  poll_lua, "4", c->cwait,         c->cexp,
                          c->cseq, wake,     id,  leave ? "1" : "0"};
    return script_int(cond_conn(c), 9, argv, state);
}

/* The wait proper, the lock let go: 0 (chosen by a notify, or an entry
 * that expired: a spurious wake-up), MP_ETIMEDOUT, or a connection error.
 * *moved: the wake-up popped said the notify moved the waiter into the
 * lock's wait set. */
static int sleep_until_chosen(mp__redis_cond *c, const char *id, const mp__deadline *dl,
                              bool *moved)
{
    *moved = false;
    char wake[WAKE_KEY_MAX];
    snprintf(wake, sizeof(wake), "%s%s", c->wake_prefix, id);
    for (;;) {
        int left = mp__deadline_poll_ms(dl);
        long long state;
        if (left == 0) {
            int rc = cond_poll(c, id, wake, true, &state);
            return rc < 0 ? rc : state == 1 ? 0 : MP_ETIMEDOUT;
        }
        redisReply *rep;
        int rc = mp__redis_side_blpop(cond_conn(c), wake, NULL, mp__redis_slice_secs(left), &rep);
        if (rep == NULL)
            return rc;
        bool woken = rep->type == REDIS_REPLY_ARRAY;
        *moved = woken && rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_STRING &&
                 rep->element[1]->len == 1 && rep->element[1]->str[0] == 'r';
        freeReplyObject(rep);
        if (woken)
            return 0; /* chosen: also when an interrupt came after */
        if (rc < 0) {
            /* Interrupted: the waiter leaves as at its timeout, unless a
             * notify chose it meanwhile (then it takes the wake-up). */
            int q = cond_poll(c, id, wake, true, &state);
            return q < 0 ? q : state == 1 ? 0 : rc;
        }
        rc = cond_poll(c, id, wake, false, &state);
        if (rc < 0)
            return rc;
        if (state != 0)
            return 0; /* chosen (1), or dropped as expired (2): spurious */
    }
}

/* The whole wait from a checked deadline: enlist and let go, sleep, take
 * the lock back. */
static int cond_wait_until(mp__redis_cond *c, const mp__deadline *dl)
{
    char tok[MP__REDIS_TOKEN_MAX], me[MP__REDIS_TOKEN_MAX], id[MP__REDIS_TOKEN_MAX], ms[24];
    uint32_t count;
    int rc = mp__redis_lock_hold(c->lock, tok, me, &count);
    if (rc < 0)
        return rc;
    mp__redis_new_token(id, sizeof(id));
    mp__redis_lock_lease_ms(c->lock, ms);
    const mp__redis_obj *o = mp__redis_lock_obj(c->lock);
    const mp__redis_wakers *wk = mp__redis_lock_wakers(c->lock);
    const char *argv[] = {
        "EVAL",   wait_lua, "8",     o->key,  mp__redis_lock_owner_key(c->lock), wk->wait,
        wk->wake, c->cwait, c->cexp, c->cseq, mp__redis_lock_fence_key(c->lock), tok,
        id,       ms,       me};
    long long held;
    rc = script_int(o->conn, 15, argv, &held);
    if (rc < 0)
        return rc;
    if (held != 1)
        return MP_EPERM; /* the lease ran out: the lock is not the caller's */
    mp__redis_lock_drop(c->lock);
    bool moved;
    rc = sleep_until_chosen(c, id, dl, &moved);
    /* Under the waiter's id: a notify that chose it enlisted that id in
     * the lock's wait set, which then counts it as queued, not as a
     * newcomer behind the others. */
    int back = mp__redis_lock_retake(c->lock, count, id, moved);
    if (back < 0 && back != MP_EOWNERDEAD)
        return back;
    return back == MP_EOWNERDEAD ? back : rc;
}

int mp__redis_cond_wait(mp__redis_cond *c, double timeout)
{
    mp__deadline dl;
    if (c == NULL || mp__deadline_init(&dl, timeout) < 0)
        return MP_EINVAL;
    return cond_wait_until(c, &dl);
}

int mp__redis_cond_wait_for(mp__redis_cond *c, mp_cond_pred pred, void *arg, double timeout)
{
    mp__deadline dl;
    if (c == NULL || pred == NULL || mp__deadline_init(&dl, timeout) < 0)
        return MP_EINVAL;
    char tok[MP__REDIS_TOKEN_MAX];
    uint32_t count;
    int rc = mp__redis_lock_hold(c->lock, tok, NULL, &count);
    if (rc < 0)
        return rc;
    while (!pred(arg)) {
        if (mp__deadline_expired(&dl))
            return MP_ETIMEDOUT;
        rc = cond_wait_until(c, &dl);
        if (rc == MP_ETIMEDOUT)
            return pred(arg) ? 0 : MP_ETIMEDOUT;
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mp__redis_cond_notify(mp__redis_cond *c, unsigned n)
{
    if (c == NULL)
        return MP_EINVAL;
    char tok[MP__REDIS_TOKEN_MAX];
    uint32_t count;
    int rc = mp__redis_lock_hold(c->lock, tok, NULL, &count);
    if (rc < 0)
        return rc;
    if (n == 0)
        return 0;
    char want[16];
    snprintf(want, sizeof(want), "%u", n > INT32_MAX ? (unsigned)INT32_MAX : n);
    const char *argv[] = {"EVAL",
                          notify_lua,
                          "4",
                          mp__redis_lock_obj(c->lock)->key,
                          c->cwait,
                          c->cexp,
                          mp__redis_lock_wakers(c->lock)->wait,
                          tok,
                          want,
                          c->wake_prefix};
    long long woken;
    rc = script_int(cond_conn(c), 10, argv, &woken);
    if (rc < 0)
        return rc;
    return woken < 0 ? MP_EPERM : woken > INT32_MAX ? INT32_MAX : (int)woken;
}

/* ---- the operation table --------------------------------------------------- */

static void cond_destroy(mp_cond *c)
{
    mp__redis_cond_close(cond_of(c));
}
static int cond_acquire(mp_cond *c, double timeout)
{
    mp__redis_cond *r = cond_of(c);
    return r ? mp__redis_lock_acquire(r->lock, timeout) : MP_EINVAL;
}
static int cond_release(mp_cond *c)
{
    mp__redis_cond *r = cond_of(c);
    return r ? mp__redis_lock_release(r->lock) : MP_EINVAL;
}
static mp_lock *cond_get_lock(mp_cond *c)
{
    mp__redis_cond *r = cond_of(c);
    return r && !mp__redis_lock_is_recursive(r->lock) ? (mp_lock *)(void *)r->lock : NULL;
}
static mp_rlock *cond_get_rlock(mp_cond *c)
{
    mp__redis_cond *r = cond_of(c);
    return r && mp__redis_lock_is_recursive(r->lock) ? (mp_rlock *)(void *)r->lock : NULL;
}
static int cond_wait(mp_cond *c, double timeout)
{
    return mp__redis_cond_wait(cond_of(c), timeout);
}
static int cond_wait_for(mp_cond *c, mp_cond_pred pred, void *arg, double timeout)
{
    return mp__redis_cond_wait_for(cond_of(c), pred, arg, timeout);
}
static int cond_notify(mp_cond *c, unsigned n)
{
    return mp__redis_cond_notify(cond_of(c), n);
}
static int cond_notify_all(mp_cond *c)
{
    return mp__redis_cond_notify(cond_of(c), UINT32_MAX);
}

const mp__cond_ops mp__redis_cond_ops = {
    .kind = MP__OPS_COND,
    .destroy = cond_destroy,
    .acquire = cond_acquire,
    .release = cond_release,
    .get_lock = cond_get_lock,
    .get_rlock = cond_get_rlock,
    .wait = cond_wait,
    .wait_for = cond_wait_for,
    .notify = cond_notify,
    .notify_all = cond_notify_all,
};
