/* Semaphores on Redis (the manager's mp_manager_sem on a Redis manager).
 *
 * <prefix>sem:<name> holds the value in decimal; <prefix>sem:<name>:max
 * the bound of a BoundedSemaphore (its initial value), or -1 (both
 * 0..MP_SEM_VALUE_MAX; the scripts refuse other texts, MP_EBADMSG, and
 * other Redis types, MP_EPROTO, before they change anything). Both are set
 * by the first opener (SET NX), like a queue's capacity. Acquire and
 * release are Lua scripts, atomic on the server. A waiter is woken by the
 * server (redis/redis_wake.c): an acquire that finds no unit enlists it
 * in <prefix>sem:<name>:wait and it blocks on <prefix>sem:<name>:wake. A
 * release with more waiters enlisted than grants waiting in the wake list
 * does not add its unit to the value: it grants it, pushing "g" there,
 * and the waiter whose BLPOP pops it holds the unit with no try of its
 * own (one release wakes one waiter). The ZREM of the waiter's entry goes
 * with its BLPOP (mp__redis_wake_wait_leave). A grant nobody popped (its
 * waiter died, or was between two slices) is a unit still free: the
 * value a caller sees is the key's plus the grants waiting, a release
 * that would pass the bound counts them, and a waiter's or, when nobody
 * waits, a newcomer's try takes one. The wake list has no expiry, so no
 * unit goes with it. While waiters are enlisted, a newcomer queues
 * behind them, so that none starves. A process killed
 * between an acquire and its release does not give the unit back (nor does
 * a local semaphore). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_internal.h"

struct mp__redis_sem {
    mp__remote_head rh; /* MP__MAGIC_RSEM */
    mp__redis_obj *o;
    char max_key[MP__REDIS_KEY_MAX];
    mp__redis_wakers wk;
};

static int set_nx(mp__redis *r, const char *key, const char *val)
{
    int rc =
        mp__redis_cmd(r, MP__RR_STR_NIL, NULL, 4, (const char *[]){"SET", key, val, "NX"}, NULL);
    return rc == MP_EBADMSG ? 0 : rc; /* +OK or nil: either is fine */
}

int mp__redis_sem_open(mp__redis_sem **out, mp__redis *conn, const char *name, unsigned value,
                       bool bounded)
{
    if (value > MP_SEM_VALUE_MAX)
        return MP_EINVAL;
    mp__redis_sem *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MP_ENOMEM;
    int rc = mp__redis_obj_new(&s->o, conn, MP__MAGIC_RSEM, NULL, "sem", name);
    char v[16], m[16];
    snprintf(v, sizeof(v), "%u", value);
    snprintf(m, sizeof(m), "%lld", bounded ? (long long)value : -1LL);
    if (rc == 0) {
        mp__redis_obj_part(s->o, "max", s->max_key);
        mp__redis_wakers_init(s->o, &s->wk);
        rc = set_nx(conn, s->max_key, m);
    }
    if (rc == 0)
        rc = set_nx(conn, s->o->key, v);
    if (rc < 0) {
        mp__redis_obj_free(s->o);
        free(s);
        return rc;
    }
    s->rh = (mp__remote_head){.head = {.magic = MP__MAGIC_RSEM, .backend = MP__BACKEND_REDIS},
                              .ops = &mp__redis_sem_ops};
    *out = s;
    return 0;
}

void mp__redis_sem_close(mp__redis_sem *s)
{
    if (s == NULL || s->rh.head.magic != MP__MAGIC_RSEM)
        return;
    s->rh.head.magic = 0;
    mp__redis_obj_free(s->o);
    free(s);
}

/* Lua: v and m, the value (absent: 0) and the bound (absent or -1:
 * none), each 0..MP_SEM_VALUE_MAX as this library writes them; anything
 * else answers before a key is changed. */
#define SEM_READ                                                                                   \
    MP__REDIS_LUA_HELPERS                                                                          \
    "local function num(k, absent) local t = kind(k) "                                             \
    "if t == 'none' then return absent end "                                                       \
    "if t ~= 'string' then return nil, EPROTO end "                                                \
    "local s = redis.call('GET', k) "                                                              \
    "if not isnum(s, false) or dcmp(s, '-1') < 0 or dcmp(s, '2147483647') > 0 then "               \
    "return nil, EBADMSG end return tonumber(s) end "                                              \
    "local v, e = num(KEYS[1], 0) if not v then return e end "                                     \
    "if v < 0 then return EBADMSG end "                                                            \
    "local m, f = num(KEYS[2], -1) if not m then return f end "

/* ARGV[1] the caller's id, ARGV[2] "1": enlist it when it must wait.
 * Answers 1 (a unit taken: from the value, or a grant nobody popped) or
 * 0 (none, or one left for the waiters enlisted before the caller). */
static const char acquire_lua[] = SEM_READ MP__REDIS_WAKE_LUA(
    "3", "4") "local w = wk_check() if w then return w end "
              "local now = wk_now() wk_expire(now) "
              "if wk_may(ARGV[1]) then "
              "  if v > 0 then redis.call('DECR', KEYS[1]) wk_leave(ARGV[1]) return 1 end "
              "  if redis.call('LPOP', KEYS[4]) then wk_leave(ARGV[1]) return 1 end "
              "end "
              "if ARGV[2] == '1' then wk_enlist(ARGV[1], now) end "
              "return 0";

/* Answers 1 (the unit added to the value, or granted to a waiter) or -1
 * (the value, with the grants waiting, is at its bound). */
static const char release_lua[] = SEM_READ MP__REDIS_WAKE_LUA(
    "3", "4") "local w = wk_check() if w then return w end "
              "local g = redis.call('LLEN', KEYS[4]) "
              "if (m >= 0 and v + g >= m) or v + g >= 2147483647 then return -1 end "
              "wk_expire(wk_now()) "
              "if redis.call('ZCARD', KEYS[3]) > g then redis.call('RPUSH', KEYS[4], 'g') "
              "else redis.call('INCR', KEYS[1]) end return 1";

/* The value a caller sees: the key's and the grants nobody popped. */
static const char value_lua[] = SEM_READ "local t = kind(KEYS[4]) "
                                         "if t ~= 'none' and t ~= 'list' then return EPROTO end "
                                         "return v + redis.call('LLEN', KEYS[4])";

static int script(mp__redis_sem *s, const char *lua, const char *id, bool enlist, long long *result)
{
    redisReply *rep;
    int rc = mp__redis_cmd(s->o->conn, MP__RR_INT, &rep, 9,
                           (const char *[]){"EVAL", lua, "4", s->o->key, s->max_key, s->wk.wait,
                                            s->wk.wake, id ? id : "", enlist ? "1" : "0"},
                           NULL);
    if (rc < 0)
        return rc;
    *result = rep->integer;
    freeReplyObject(rep);
    return mp__redis_lua_error(*result);
}

/* An acquire that an interrupt (rc) ended, its entry already gone: a
 * last try, which takes a unit if one is there for the caller (the call
 * completes). */
static int acquire_interrupted(mp__redis_sem *s, const char *id, int rc)
{
    long long r;
    int t = script(s, acquire_lua, id, false, &r);
    return t < 0 ? t : r == 1 ? 0 : rc;
}

int mp__redis_sem_acquire(mp__redis_sem *s, double timeout)
{
    mp__deadline dl;
    if (s == NULL || s->rh.head.magic != MP__MAGIC_RSEM || mp__deadline_init(&dl, timeout) < 0)
        return MP_EINVAL;
    char id[48], got[8];
    mp__redis_new_token(id, sizeof(id));
    bool enlist = !mp__deadline_expired(&dl);
    for (;;) {
        long long r;
        int rc = script(s, acquire_lua, id, enlist, &r);
        if (rc < 0 || r == 1)
            return rc; /* an entry left enlisted expires by itself */
        got[0] = '\0';
        rc = enlist ? mp__redis_wake_wait_leave(s->o->conn, &s->wk, id, &dl, got, sizeof(got))
                    : MP_ETIMEDOUT;
        if (strcmp(got, "g") == 0)
            return 0; /* granted: the unit is the caller's, even when interrupted */
        if (rc == MP_ETIMEDOUT) {
            if (enlist)
                (void)mp__redis_wake_leave(s->o->conn, &s->wk, id);
            return MP_ETIMEDOUT;
        }
        if (rc == MP_EINTR || rc == MP_ECANCELED)
            return acquire_interrupted(s, id, rc);
        if (rc < 0)
            return rc;
    }
}

int mp__redis_sem_release(mp__redis_sem *s)
{
    if (s == NULL || s->rh.head.magic != MP__MAGIC_RSEM)
        return MP_EINVAL;
    long long r;
    int rc = script(s, release_lua, NULL, false, &r);
    return rc < 0 ? rc : r == 1 ? 0 : MP_EOVERFLOW;
}

int mp__redis_sem_get_value(mp__redis_sem *s)
{
    if (s == NULL || s->rh.head.magic != MP__MAGIC_RSEM)
        return MP_EINVAL;
    long long v;
    int rc = script(s, value_lua, NULL, false, &v);
    if (rc == 0 && (v < 0 || v > INT32_MAX))
        rc = MP_EBADMSG;
    return rc < 0 ? rc : (int)v;
}
