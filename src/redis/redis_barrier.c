/* Barriers on Redis (the public mp_barrier functions dispatch here through
 * mp__redis_barrier_ops). Keys, B = <prefix>barrier:<name>:
 *
 *   B            hash: count (parties arrived in this phase), phase (the
 *                number of the phase open now), broken (1 after an abort
 *                or a break, until reset)
 *   B:hist       hash: phase number -> 1 (completed) or 0 (broken), for
 *                the last HISTORY phases, so that a waiter that looks late
 *                learns how its own phase ended even if later ones began
 *   B:wake:<p>   list: the outcome of phase p, once for each party that
 *                waited in it (TTL MP__REDIS_WAKE_TTL_MS)
 *
 * The parties are part of the name's type ("barrier:<parties>" in the
 * names hash): every handle of a name agrees on them. An arrival is one
 * script: the last party ends the phase (completed) and pushes its
 * outcome to the phase's wake list once for each waiting party; the
 * others are counted, then block in BLPOP on that list (over a side
 * connection, in slices of at most a second), so a party is woken by the
 * server, with the outcome, and never takes the wake-up of a party of
 * another phase. After an empty slice a party looks at the phase again
 * (a wake list that expired, a party stopped for seconds). A party
 * whose timeout expires while its phase is open breaks it for everyone
 * (as locally and in Python). A barrier on Redis has no action
 * (mp_manager_barrier makes none). As locally, a new phase opens as soon
 * as the previous one ended, and a party that dies while waiting never
 * arrives: the others wait until a timeout breaks the barrier. The wake
 * lists are keys the scripts name from ARGV (the phase is known there
 * only): fine on one Redis server, not on a Redis Cluster, which this
 * backend does not serve. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_internal.h"

/* Outcomes kept in B:hist. */
#define HISTORY "1024"

struct mp__redis_barrier {
    mp__remote_head rh; /* MP__MAGIC_RBARRIER */
    mp__redis_obj *o;
    char hist[MP__REDIS_KEY_MAX];
    char wake_prefix[MP__REDIS_KEY_MAX]; /* "B:wake:" */
    char parties_text[16];
    unsigned parties;
};

int mp__redis_barrier_open(mp__redis_barrier **out, mp__redis *conn, const char *name,
                           unsigned parties)
{
    if (out == NULL || parties == 0 || parties > INT32_MAX)
        return MP_EINVAL;
    mp__redis_barrier *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return MP_ENOMEM;
    int rc = mp__redis_obj_new(&b->o, conn, MP__MAGIC_RBARRIER, NULL, "barrier", name);
    if (rc < 0) {
        free(b);
        return rc;
    }
    mp__redis_obj_part(b->o, "hist", b->hist);
    mp__redis_obj_part(b->o, "wake", b->wake_prefix);
    size_t n = strlen(b->wake_prefix);
    if (n + 2 > sizeof(b->wake_prefix)) {
        mp__redis_obj_free(b->o);
        free(b);
        return MP_EINVAL;
    }
    memcpy(b->wake_prefix + n, ":", 2);
    b->parties = parties;
    snprintf(b->parties_text, sizeof(b->parties_text), "%u", parties);
    b->rh = (mp__remote_head){.head = {.magic = MP__MAGIC_RBARRIER, .backend = MP__BACKEND_REDIS},
                              .ops = &mp__redis_barrier_ops};
    *out = b;
    return 0;
}

static mp__redis_barrier *barrier_of(mp_barrier *h)
{
    mp__redis_barrier *b = (mp__redis_barrier *)(void *)h;
    return mp__redis_obj_check(b, MP__MAGIC_RBARRIER) == 0 ? b : NULL;
}

/* Lua: KEYS[1] the state hash, KEYS[2] the outcomes, ARGV[1] the wake
 * lists' prefix. st() reads the state, or answers the error for keys
 * another program wrote; end_phase(p, ok, n) records the outcome of phase
 * p, opens the next one and pushes the outcome to p's wake list n times
 * (the parties that wait in it). */
#define BARRIER_LUA                                                                                \
    MP__REDIS_LUA_HELPERS                                                                          \
    "local function hnum(f) local v = redis.call('HGET', KEYS[1], f) "                             \
    "if not v then return 0 end "                                                                  \
    "if #v > 18 or not string.match(v, '^%d+$') then return nil end "                              \
    "return tonumber(v) end "                                                                      \
    "local function st() "                                                                         \
    "local a = kind(KEYS[1]) if a ~= 'none' and a ~= 'hash' then return EPROTO end "               \
    "local b = kind(KEYS[2]) if b ~= 'none' and b ~= 'hash' then return EPROTO end "               \
    "local c, p, k = hnum('count'), hnum('phase'), hnum('broken') "                                \
    "if not (c and p and k) or k > 1 then return EBADMSG end "                                     \
    "return false, c, p, k end "                                                                   \
    "local function end_phase(p, ok, n) "                                                          \
    "redis.call('HSET', KEYS[1], 'count', 0, 'phase', p + 1) "                                     \
    "redis.call('HSET', KEYS[2], p, ok) "                                                          \
    "redis.call('HDEL', KEYS[2], p - " HISTORY ") "                                                \
    "if n > 0 then local k = ARGV[1] .. p "                                                        \
    "for i = 1, n do redis.call('RPUSH', k, ok) end "                                              \
    "redis.call('PEXPIRE', k, " MP__REDIS_WAKE_TTL_MS ") end end "                                 \
    "local e, cnt, ph, br = st() if e then return e end "

/* ARGV[2]: parties. Answers {-1, phase} (broken), or {index, phase, 1
 * when the caller ended the phase}. */
static const char arrive_lua[] = BARRIER_LUA
    "if br == 1 then return {-1, ph} end "
    "if cnt + 1 >= tonumber(ARGV[2]) then end_phase(ph, 1, cnt) return {cnt, ph, 1} end "
    "redis.call('HSET', KEYS[1], 'count', cnt + 1) "
    "return {cnt, ph, 0}";

/* ARGV[2]: the waiter's phase, ARGV[3] "1" when its time is up (then an
 * open phase is broken for everyone), "2" when an interrupt ended its
 * wait (then it is counted out of an open phase). Answers 1 (the phase
 * completed), 0 (it was broken) or 2 (still open; left with "2"). */
static const char check_lua[] = BARRIER_LUA
    "local mine = tonumber(ARGV[2]) "
    "if ph > mine then "
    "  return redis.call('HGET', KEYS[2], ARGV[2]) == '1' and 1 or 0 "
    "end "
    "if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'broken', 1) "
    "end_phase(ph, 0, cnt - 1) return 0 end "
    "if ARGV[3] == '2' and cnt > 0 then redis.call('HSET', KEYS[1], 'count', cnt - 1) end "
    "return 2";

/* ARGV[2]: "reset" or "abort". */
static const char change_lua[] =
    BARRIER_LUA "if ARGV[2] == 'abort' then redis.call('HSET', KEYS[1], 'broken', 1) "
                "end_phase(ph, 0, cnt) return 0 end "
                "if cnt > 0 then end_phase(ph, 0, cnt) end "
                "redis.call('HSET', KEYS[1], 'broken', 0) return 0";

/* Answers {count, broken}. */
static const char state_lua[] = BARRIER_LUA "return {cnt, br}";

/* Runs a barrier script with its two keys, the wake prefix and nargs (at
 * most 2) more arguments. */
static int barrier_script(mp__redis_barrier *b, const char *lua, int nargs, const char **args,
                          redisReply **out)
{
    const char *argv[6 + 2] = {"EVAL", lua, "2", b->o->key, b->hist, b->wake_prefix};
    int argc = 6;
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    redisReply *rep = NULL;
    int rc = mp__redis_cmd(b->o->conn, MP__RR_ANY_VALUE, &rep, argc, argv, NULL);
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_INTEGER) {
        rc = mp__redis_lua_error(rep->integer);
        if (rc == 0 && out) {
            *out = rep;
            return 0;
        }
    } else if (rep->type != REDIS_REPLY_ARRAY || out == NULL) {
        rc = MP_EBADMSG;
    }
    if (rc == 0 && out)
        *out = rep;
    else
        freeReplyObject(rep);
    return rc;
}

/* The integer element i of an array answer, or -2 when it is not one. */
static long long elem(const redisReply *rep, size_t i)
{
    if (rep->type != REDIS_REPLY_ARRAY || i >= rep->elements ||
        rep->element[i]->type != REDIS_REPLY_INTEGER)
        return -2;
    return rep->element[i]->integer;
}

/* mode: "0" a look, "1" the time is up, "2" interrupted (check_lua). */
static int check_phase(mp__redis_barrier *b, const char *phase, const char *mode, long long *state)
{
    redisReply *rep = NULL;
    const char *args[] = {phase, mode};
    int rc = barrier_script(b, check_lua, 2, args, &rep);
    if (rc < 0)
        return rc;
    *state = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -2;
    freeReplyObject(rep);
    return *state >= 0 && *state <= 2 ? 0 : MP_EBADMSG;
}

/* A party's wait for the end of its phase: the outcome pushed to the
 * phase's wake list, or a look at the phase after an empty slice. */
static int wait_phase(mp__redis_barrier *b, long long phase, long long index,
                      const mp__deadline *dl)
{
    char ph[24], wake[MP__REDIS_KEY_MAX + 24];
    snprintf(ph, sizeof(ph), "%lld", phase);
    snprintf(wake, sizeof(wake), "%s%lld", b->wake_prefix, phase);
    for (;;) {
        long long state = -2;
        int rc, left = mp__deadline_poll_ms(dl);
        if (left == 0) {
            rc = check_phase(b, ph, "1", &state);
        } else {
            redisReply *rep = NULL;
            rc = mp__redis_side_blpop(b->o->conn, wake, NULL, mp__redis_slice_secs(left), &rep);
            if (rep == NULL)
                return rc;
            if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                rep->element[1]->type == REDIS_REPLY_STRING && rep->element[1]->len == 1)
                state = rep->element[1]->str[0] == '1' ? 1 : 0;
            freeReplyObject(rep);
            /* Interrupted (rc < 0): the party leaves its phase unless the
             * phase ended meanwhile (then its outcome stands), as locally. */
            int intr = rc;
            if (state < 0)
                rc = check_phase(b, ph, intr < 0 ? "2" : "0", &state);
            if (rc == 0 && intr < 0 && state == 2)
                return intr;
            if (intr < 0 && rc == intr)
                rc = 0;
        }
        if (rc < 0)
            return rc;
        if (state != 2)
            return state == 1 ? (int)index : MP_EBROKEN;
    }
}

static int barrier_wait(mp_barrier *h, double timeout)
{
    mp__redis_barrier *b = barrier_of(h);
    mp__deadline dl;
    if (b == NULL || mp__deadline_init(&dl, timeout) < 0)
        return MP_EINVAL;
    redisReply *rep = NULL;
    int rc = barrier_script(b, arrive_lua, 1, (const char *[]){b->parties_text}, &rep);
    if (rc < 0)
        return rc;
    long long index = elem(rep, 0), phase = elem(rep, 1), last = elem(rep, 2);
    freeReplyObject(rep);
    if (index == -1 && phase >= 0)
        return MP_EBROKEN;
    if (index < 0 || phase < 0 || (last != 0 && last != 1) || index >= b->parties)
        return MP_EBADMSG;
    return last == 1 ? (int)index : wait_phase(b, phase, index, &dl);
}

static int barrier_change(mp_barrier *h, const char *what)
{
    mp__redis_barrier *b = barrier_of(h);
    if (b == NULL)
        return MP_EINVAL;
    return barrier_script(b, change_lua, 1, (const char *[]){what}, NULL);
}

static int barrier_reset(mp_barrier *h)
{
    return barrier_change(h, "reset");
}

static int barrier_abort(mp_barrier *h)
{
    return barrier_change(h, "abort");
}

static int barrier_parties(mp_barrier *h)
{
    mp__redis_barrier *b = barrier_of(h);
    return b ? (int)b->parties : MP_EINVAL;
}

/* which: 0 the count, 1 broken. */
static int barrier_state(mp_barrier *h, size_t which)
{
    mp__redis_barrier *b = barrier_of(h);
    if (b == NULL)
        return MP_EINVAL;
    redisReply *rep = NULL;
    int rc = barrier_script(b, state_lua, 0, NULL, &rep);
    if (rc < 0)
        return rc;
    long long v = elem(rep, which);
    freeReplyObject(rep);
    return v < 0 || v > INT32_MAX ? MP_EBADMSG : (int)v;
}

static int barrier_n_waiting(mp_barrier *h)
{
    return barrier_state(h, 0);
}

static int barrier_broken(mp_barrier *h)
{
    return barrier_state(h, 1);
}

static void barrier_destroy(mp_barrier *h)
{
    mp__redis_barrier *b = barrier_of(h);
    if (b == NULL)
        return;
    b->rh.head.magic = 0;
    mp__redis_obj_free(b->o);
    free(b);
}

const mp__barrier_ops mp__redis_barrier_ops = {
    .kind = MP__OPS_BARR,
    .destroy = barrier_destroy,
    .wait = barrier_wait,
    .reset = barrier_reset,
    .abort = barrier_abort,
    .parties = barrier_parties,
    .n_waiting = barrier_n_waiting,
    .broken = barrier_broken,
};
