/* Locks, rlocks, events and values on Redis (the public functions of those
 * types dispatch here; see redis/redis_internal.h).
 *
 * Lock: two keys. <prefix>lock:<name> holds the holder's token with an
 * expiry (the lease): a holder that dies stops renewing it, so the lock
 * frees itself when the lease runs out. <prefix>lock:<name>:owner holds
 * the same token without expiry, and only a release deletes it: an
 * acquirer that finds an old token there knows that the previous holder
 * never released (it died, or overran its lease) and gets MP_EOWNERDEAD,
 * the robust-mutex contract of the local locks. <prefix>lock:<name>:fence
 * counts the acquisitions (INCR in the acquire script): the count an
 * acquisition makes is its fencing token (mp_lock_token), strictly
 * increasing per lock across every client. Acquire and release are Lua
 * scripts, atomic on the server. A waiter is woken by the server
 * (redis/redis_wake.c): the acquire that fails enlists it in
 * <prefix>lock:<name>:wait and it blocks on <prefix>lock:<name>:wake.
 * A release that finds waiters enlisted does not free the lock: it grants
 * it (MP__REDIS_LOCK_RELEASE), under a new token "0-<fence in hex>" that
 * it pushes to the wake list, and the waiter whose BLPOP pops the token
 * holds the lock with it, with no round trip of its own. The server hands
 * a pushed element to the client blocked longest on the list, and only to
 * a live one: a waiter killed in its wait never gets a grant, and one
 * that is not blocked at that moment (between slices) finds the grant
 * still in the list, free for it. The grantee then sends a claim without
 * waiting for its answer, corked (it reaches the server with the side
 * connection's next call, or about 0.2 s later: redis/redis_conn.c): the owner
 * key gets its pid (mp_lock_owner) and its waiter entry goes; its release
 * removes that entry too, in case the claim has not landed yet. While
 * waiters are enlisted,
 * a newcomer queues behind them.
 *
 * Event: <prefix>event:<name> holds "1" while the event is set, and
 * <prefix>event:<name>:gen counts the sets. A waiter enlists (with the
 * count it saw) like a lock waiter; a set wakes every waiter enlisted,
 * pushing the new count once for each, and a waiter returns once it
 * pops a count above its own, even if the event was cleared since (as
 * locally, and as Python's Event).
 *
 * Value: <prefix>value:<name> is a decimal number, so that INCRBY and
 * INCRBYFLOAT change it atomically on the server.
 *
 * Every script first checks that the keys hold what this library writes
 * (MP__REDIS_LUA_HELPERS): a foreign Redis type is MP_EPROTO, a foreign text
 * MP_EBADMSG, and nothing is changed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os/pidfd.h"
#include "redis/redis_internal.h"

#define DEFAULT_LEASE 30.0

struct mp__redis_lock {
    mp__remote_head rh; /* MP__MAGIC_REDIS_LOCK */
    mp__redis_obj *o;
    mp__redis_wakers wk;
    char owner_key[MP__REDIS_KEY_MAX], fence_key[MP__REDIS_KEY_MAX];
    pthread_mutex_t mu; /* guards token and holder */
    double lease;
    int holder;                      /* pid holding it through this handle, or 0 */
    bool recursive;                  /* an rlock: the holder may acquire again */
    uint32_t count;                  /* levels held (rlock) */
    uint64_t fence;                  /* the fencing token of the hold */
    char token[MP__REDIS_TOKEN_MAX]; /* the hold's, on the server: ours or a grant */
    /* A hold by grant: the id its holder waited under, whose entry in the
     * wait set its claim removes, and its release too (the claim may not
     * have reached the server by then); "" otherwise. */
    char waiter[MP__REDIS_TOKEN_MAX];
};

int mp__redis_lock_open(mp__redis_lock **out, mp__redis *conn, const char *name, double lease)
{
    return mp__redis_lock_open_kind(out, conn, name, "lock", lease);
}

int mp__redis_lock_open_kind(mp__redis_lock **out, mp__redis *conn, const char *name,
                             const char *kind, double lease)
{
    if (out == NULL || conn == NULL || name == NULL || !(lease >= 0))
        return MP_EINVAL;
    mp__redis_lock *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return MP_ENOMEM;
    int rc = mp__redis_obj_new(&l->o, conn, MP__MAGIC_REDIS_LOCK, NULL, kind, name);
    if (rc < 0) {
        free(l);
        return rc;
    }
    pthread_mutex_init(&l->mu, NULL);
    mp__redis_wakers_init(l->o, &l->wk);
    mp__redis_obj_part(l->o, "owner", l->owner_key);
    mp__redis_obj_part(l->o, "fence", l->fence_key);
    l->lease = lease > 0 ? lease : DEFAULT_LEASE;
    l->rh = (mp__remote_head){.head = {.magic = MP__MAGIC_REDIS_LOCK, .backend = MP__BACKEND_REDIS},
                              .ops = &mp__redis_lock_ops};
    *out = l;
    return 0;
}

void mp__redis_lock_close(mp__redis_lock *l)
{
    if (l == NULL)
        return;
    l->rh.head.magic = 0;
    mp__redis_obj_free(l->o);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

#define LOCK_CHECK MP__REDIS_LOCK_CHECK

/* KEYS[3] the fence counter, checked before anything changes (a number
 * INCR takes), KEYS[4] and KEYS[5] the wait set and wake list; ARGV[3]
 * "1": enlist the caller (ARGV[1], its token) when it must wait. The lock
 * is free when its key is gone or holds a grant no waiter took (it waits
 * in the wake list): the caller takes it when no waiter is enlisted, or
 * when it is one. Answers -1 (held, or free with others waiting before
 * the caller), or {0 or 1 (the previous holder never released: a token
 * or a claim left in the owner key, unless a grant nobody took waits in
 * the wake list, which makes the last release a clean one), the fencing
 * token}.
 * An uncontended acquire is on the caller's path every time, and on a
 * cold server every command a script runs costs a few µs, so each key is
 * read once, its type checked by the read itself (redis.pcall answers a
 * WRONGTYPE error as a value): eight commands when nobody waits (the four
 * reads, the fence's, its INCR and the two writes); the server's clock
 * and the expiry of dead waiters' entries only when entries exist. Every
 * check comes before the first write, and the writes cannot fail on the
 * types read, so a refusal changes nothing. */
static const char acquire_lua[] =
    "if redis.replicate_commands then redis.replicate_commands() end "
    "local EBADMSG, EPROTO = -1000, -1001 "
    "local function tok(k) local v = redis.pcall('GET', k) "
    "if type(v) == 'table' then return nil, EPROTO end "
    "if v and not string.match(v, '^%d+%-%x+$') then return nil, EBADMSG end return v end "
    "local v, ve = tok(KEYS[1]) if ve then return ve end "
    "local o, oe = tok(KEYS[2]) if oe then return oe end "
    "local n = redis.pcall('ZCARD', KEYS[4]) if type(n) == 'table' then return EPROTO end "
    "local g = redis.pcall('LINDEX', KEYS[5], 0) if type(g) == 'table' then return EPROTO end "
    "local f = redis.pcall('GET', KEYS[3]) if type(f) == 'table' then return EPROTO end "
    "if f and (#f > 18 or not string.match(f, '^%d+$')) then return EBADMSG end "
    "local now = nil "
    "local function clock() local t = redis.call('TIME') "
    "return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end "
    "if n > 0 then now = clock() "
    "n = n - redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now) end "
    "local free = not v or (string.sub(v, 1, 2) == '0-' and g == v) "
    "if not free or (n > 0 and not redis.call('ZSCORE', KEYS[4], ARGV[1])) then "
    "  if ARGV[3] == '1' then now = now or clock() "
    "    redis.call('ZADD', KEYS[4], now + " MP__REDIS_WAKE_TTL_MS ", ARGV[1]) "
    "    redis.call('PEXPIRE', KEYS[4], " MP__REDIS_WAKE_TTL_MS ") end "
    "  return -1 "
    "end "
    "local fence = redis.call('INCR', KEYS[3]) "
    "if n > 0 then redis.call('ZREM', KEYS[4], ARGV[1]) end "
    "if g then redis.call('DEL', KEYS[5]) end "
    "redis.call('SET', KEYS[2], ARGV[1]) "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "if o and not g then return {1, fence} end return {0, fence}";

/* KEYS[3], KEYS[4] and KEYS[5] the wait set, wake list and fence; ARGV
 * the token, the lease in ms and the holder's waiter id (a hold by grant)
 * or "". Answers 1 (let go or granted), 0 (the token does not hold it) or
 * an error. */
static const char release_lua[] = MP__REDIS_LUA_KIND MP__REDIS_LOCK_RELEASE(
    "3", "4", "5") "local r = lk_release(ARGV[1], ARGV[2], ARGV[3]) "
                   "if r == true then return 1 elseif r == false then return 0 end return r";

static const char renew_lua[] = LOCK_CHECK "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                           "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
                                           "return 0";

/* A grantee's claim: KEYS the lock key, the owner key and the wait set,
 * ARGV the grantee's pid, its waiter id and the grant. The waiter leaves
 * the wait set, and while the grant holds the lock, the owner key (which
 * still holds the releaser's token) gets the grantee's own form of the
 * grant ("<pid>-<the grant's hex>", which a release of the grant also
 * clears): mp_lock_owner then knows the process. Nothing changes in the
 * owner key once the grant no longer holds the lock (released, or its
 * lease ran out: the claim may land 0.2 s late, or more on a slow
 * network). */
static const char claim_lua[] = "redis.call('ZREM', KEYS[3], ARGV[2]) "
                                "if redis.call('GET', KEYS[1]) == ARGV[3] then "
                                "redis.call('SET', KEYS[2], ARGV[1] .. string.sub(ARGV[3], 2)) end "
                                "return 0";

/* Runs a lock script: KEYS = lock and owner keys, wait set, wake list and
 * fence, ARGV = token, lease in ms and waiter (see the struct). *result:
 * the script's integer; MP_EBADMSG or MP_EPROTO when a key holds what no
 * holder of this library wrote (nothing changed). */
static int lock_script(mp__redis_lock *l, const char *lua, const char *token, const char *waiter,
                       long long *result)
{
    char ms[24];
    mp__redis_lock_lease_ms(l, ms);
    const char *argv[] = {"EVAL",     lua,          "5",   l->o->key, l->owner_key, l->wk.wait,
                          l->wk.wake, l->fence_key, token, ms,        waiter};
    redisReply *rep;
    int rc = mp__redis_cmd(l->o->conn, MP__RR_INT, &rep, 11, argv, NULL);
    if (rc < 0)
        return rc;
    *result = rep->integer;
    freeReplyObject(rep);
    return mp__redis_lua_error(*result);
}

/* The acquire script's answer: *flag -1 (held by another), 0 or 1
 * (acquired; 1: the previous holder never released), with the token in
 * *fence. */
static int acquire_answer(const redisReply *rep, long long *flag, uint64_t *fence)
{
    int rc = 0;
    if (rep->type == REDIS_REPLY_INTEGER) {
        *flag = rep->integer;
        rc = mp__redis_lua_error(rep->integer);
        if (rc == 0 && rep->integer != -1)
            rc = MP_EBADMSG;
    } else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
               rep->element[0]->type == REDIS_REPLY_INTEGER &&
               rep->element[1]->type == REDIS_REPLY_INTEGER && rep->element[1]->integer > 0 &&
               (rep->element[0]->integer == 0 || rep->element[0]->integer == 1)) {
        *flag = rep->element[0]->integer;
        *fence = (uint64_t)rep->element[1]->integer;
    } else {
        rc = MP_EBADMSG;
    }
    return rc;
}

/* The acquire script's arguments (argv: 11 slots, ms: 24 bytes). */
static void acquire_args(mp__redis_lock *l, const char *token, bool enlist, const char **argv,
                         char *ms)
{
    snprintf(ms, 24, "%lld", (long long)(l->lease * 1000 + 0.5));
    const char *a[] = {"EVAL",     acquire_lua, "5",   l->o->key, l->owner_key,      l->fence_key,
                       l->wk.wait, l->wk.wake,  token, ms,        enlist ? "1" : "0"};
    memcpy(argv, a, sizeof(a));
}

/* The acquire script: see acquire_answer. */
static int acquire_script(mp__redis_lock *l, const char *token, bool enlist, long long *flag,
                          uint64_t *fence)
{
    char ms[24];
    const char *argv[11];
    acquire_args(l, token, enlist, argv, ms);
    redisReply *rep;
    int rc = mp__redis_cmd(l->o->conn, MP__RR_ANY_VALUE, &rep, 11, argv, NULL);
    if (rc < 0)
        return rc;
    rc = acquire_answer(rep, flag, fence);
    freeReplyObject(rep);
    return rc;
}

/* Whether g is a grant ("0-" and a fence in hex): its fence in *fence. */
static bool grant_of(const char *g, size_t len, uint64_t *fence)
{
    if (len < 3 || len > 18 || g[0] != '0' || g[1] != '-')
        return false;
    uint64_t f = 0;
    for (size_t i = 2; i < len; i++) {
        char c = g[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        f = f << 4 | (uint64_t)d;
    }
    *fence = f;
    return f > 0;
}

/* A waiter's claim (claim_lua): its argv (9 slots) for grant g. */
typedef struct claim {
    mp__redis_lock *l;
    const char *me;
    char pid[16], grant[MP__REDIS_TOKEN_MAX];
} claim;

static int claim_args(claim *c, const char *g, size_t len, const char **argv)
{
    snprintf(c->pid, sizeof(c->pid), "%d", (int)mp__self_pid());
    snprintf(c->grant, sizeof(c->grant), "%.*s", (int)len, g);
    const char *a[] = {"EVAL",        claim_lua, "3",   c->l->o->key, c->l->owner_key,
                       c->l->wk.wait, c->pid,    c->me, c->grant};
    memcpy(argv, a, sizeof(a));
    return 9;
}

/* mp__redis_side_blpop_post's post: the claim of a grant popped. */
static int claim_post(void *arg, const redisReply *popped, const char **argv)
{
    uint64_t fence;
    const redisReply *v = popped->elements == 2 ? popped->element[1] : NULL;
    if (v == NULL || v->type != REDIS_REPLY_STRING || !grant_of(v->str, v->len, &fence))
        return 0;
    return claim_args(arg, v->str, v->len, argv);
}

/* The wait of an enlisted waiter (not interruptible: see the caller): a
 * BLPOP of the wake list, and the claim of a grant it popped, sent
 * without waiting for its answer. 0 with the value popped in got (a grant:
 * the lock is the caller's), or got "" (the slice ended); MP_ETIMEDOUT
 * when dl had passed, or a connection error. */
static int wait_granted(mp__redis_lock *l, const char *me, const mp__deadline *dl, char *got,
                        size_t cap)
{
    got[0] = '\0';
    int left = mp__deadline_poll_ms(dl);
    if (left == 0)
        return MP_ETIMEDOUT;
    claim c = {.l = l, .me = me};
    redisReply *rep = NULL;
    int rc = mp__redis_side_blpop_post(l->o->conn, l->wk.wake, mp__redis_slice_secs(left),
                                       claim_lua, &rep, claim_post, &c);
    if (rc < 0)
        return rc;
    mp__redis_popped(rep, got, cap);
    freeReplyObject(rep);
    return 0;
}

void mp__redis_lock_set_recursive(mp__redis_lock *l)
{
    l->recursive = true;
    l->rh.ops = &mp__redis_rlock_ops;
}

/* A holder acquiring again: 1 (one more level of an rlock), MP_EDEADLK
 * (a lock), MP_EOVERFLOW; 0 when this process does not hold it. */
static int acquire_again(mp__redis_lock *l)
{
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    if (l->holder == (int)mp__self_pid()) {
        rc = !l->recursive ? MP_EDEADLK : l->count == UINT32_MAX ? MP_EOVERFLOW : 1;
        if (rc == 1)
            l->count++;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* Records the hold of tok (the caller's, or a grant that the waiter me
 * popped) that the acquire script answered or the waiter popped. */
static int took(mp__redis_lock *l, const char *tok, const char *me, long long flag, uint64_t fence)
{
    pthread_mutex_lock(&l->mu);
    snprintf(l->token, sizeof(l->token), "%s", tok);
    snprintf(l->waiter, sizeof(l->waiter), "%s", me);
    l->holder = (int)mp__self_pid();
    l->count = 1;
    l->fence = fence;
    pthread_mutex_unlock(&l->mu);
    return flag == 1 ? MP_EOWNERDEAD : 0;
}

/* An acquire that an interrupt (rc) ended: a last try, which takes the
 * lock if it is free for the caller (the call completes), else the
 * caller leaves the wait set. */
static int acquire_interrupted(mp__redis_lock *l, const char *tok, int rc)
{
    long long r;
    uint64_t fence = 0;
    int t = acquire_script(l, tok, false, &r, &fence);
    if (t < 0)
        return t;
    if (r >= 0)
        return took(l, tok, "", r, fence);
    (void)mp__redis_wake_leave(l->o->conn, &l->wk, tok);
    return rc;
}

/* The wait of a thread that honours interrupts (mp__redis_wake_wait, its
 * BLPOP interruptible): what it popped in got, and a grant is claimed at
 * once (a round trip, on this path only). */
static int wait_interruptible(mp__redis_lock *l, const char *me, const mp__deadline *dl, char *got,
                              size_t cap)
{
    int rc = mp__redis_wake_wait(l->o->conn, &l->wk, dl, got, cap);
    uint64_t fence;
    if (grant_of(got, strlen(got), &fence)) {
        claim c = {.l = l, .me = me};
        const char *argv[9];
        claim_args(&c, got, strlen(got), argv);
        (void)mp__redis_cmd(l->o->conn, MP__RR_ANY_VALUE, NULL, 9, argv, NULL);
    }
    return rc;
}

/* The acquire of a caller that does not hold the lock through l yet
 * (an rlock's holder just takes one more level), under the token id, or
 * a fresh one when id is NULL. A try that fails enlists the caller
 * (unless it would not wait), then it blocks until a release grants it
 * the lock (a grant it took is its hold, even when an interrupt came
 * too), or a slice ends. enlisted: id is in the wait set already (a
 * condition's notify moved it there), so the loop begins with the wait,
 * not a try. */
static int acquire_as(mp__redis_lock *l, const char *id, bool enlisted, const mp__deadline *dl)
{
    int rc = acquire_again(l);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    char tok[sizeof(l->token)], got[MP__REDIS_TOKEN_MAX];
    if (id)
        snprintf(tok, sizeof(tok), "%s", id);
    else
        mp__redis_new_token(tok, sizeof(tok));
    bool enlist = !mp__deadline_expired(dl);
    for (bool attempt = !enlisted || !enlist;; attempt = true) {
        long long r = -1;
        uint64_t fence = 0;
        if (attempt && (rc = acquire_script(l, tok, enlist, &r, &fence)) < 0)
            return rc; /* an entry left enlisted expires by itself */
        if (r >= 0)
            return took(l, tok, "", r, fence);
        got[0] = '\0';
        if (!enlist)
            rc = MP_ETIMEDOUT;
        else if (mp__redis_intr_armed())
            rc = wait_interruptible(l, tok, dl, got, sizeof(got));
        else
            rc = wait_granted(l, tok, dl, got, sizeof(got));
        if (grant_of(got, strlen(got), &fence))
            return took(l, got, tok, 0, fence);
        if (rc == MP_ETIMEDOUT) {
            if (enlist)
                (void)mp__redis_wake_leave(l->o->conn, &l->wk, tok);
            return MP_ETIMEDOUT;
        }
        if (rc == MP_EINTR || rc == MP_ECANCELED)
            return acquire_interrupted(l, tok, rc);
        if (rc < 0)
            return rc;
    }
}

int mp__redis_lock_acquire(mp__redis_lock *l, double timeout)
{
    mp__deadline dl;
    if (l == NULL || l->rh.head.magic != MP__MAGIC_REDIS_LOCK ||
        mp__deadline_init(&dl, timeout) < 0)
        return MP_EINVAL;
    return acquire_as(l, NULL, false, &dl);
}

/* Copies the token of a hold by this process (and its waiter id when me
 * is not NULL), or MP_EPERM. drop: the release of one level; 1 when an
 * rlock stays held (nothing to send). */
static int held_token(mp__redis_lock *l, char *tok, char *me, bool drop)
{
    pthread_mutex_lock(&l->mu);
    int rc = l->holder == (int)mp__self_pid() ? 0 : MP_EPERM;
    if (rc == 0)
        memcpy(tok, l->token, sizeof(l->token));
    if (rc == 0 && me)
        memcpy(me, l->waiter, sizeof(l->waiter));
    if (rc == 0 && drop && l->recursive && l->count > 1) {
        l->count--;
        rc = 1; /* still held: one level less */
    } else if (rc == 0 && drop) {
        l->holder = 0;
        l->count = 0;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int mp__redis_lock_release(mp__redis_lock *l)
{
    if (l == NULL || l->rh.head.magic != MP__MAGIC_REDIS_LOCK)
        return MP_EINVAL;
    char tok[sizeof(l->token)], me[sizeof(l->waiter)];
    int rc = held_token(l, tok, me, true);
    long long r = 0;
    if (rc == 1)
        return 0;
    if (rc == 0)
        rc = lock_script(l, release_lua, tok, me, &r);
    /* 0: the lease ran out before the release, the lock was not held any
     * more (another holder may have had it meanwhile). */
    return rc < 0 ? rc : r == 1 ? 0 : MP_EPERM;
}

int mp__redis_lock_renew(mp__redis_lock *l)
{
    if (l == NULL || l->rh.head.magic != MP__MAGIC_REDIS_LOCK)
        return MP_EINVAL;
    char tok[sizeof(l->token)];
    int rc = held_token(l, tok, NULL, false);
    long long r = 0;
    if (rc == 0)
        rc = lock_script(l, renew_lua, tok, "", &r);
    return rc < 0 ? rc : r == 1 ? 0 : MP_EPERM;
}

int mp__redis_lock_consistent(mp__redis_lock *l)
{
    if (l == NULL || l->rh.head.magic != MP__MAGIC_REDIS_LOCK)
        return MP_EINVAL;
    char tok[sizeof(l->token)];
    return held_token(l, tok, NULL, false);
}

int mp__redis_lock_token(mp__redis_lock *l, uint64_t *token)
{
    if (l == NULL || l->rh.head.magic != MP__MAGIC_REDIS_LOCK || token == NULL)
        return MP_EINVAL;
    pthread_mutex_lock(&l->mu);
    int rc = l->holder == (int)mp__self_pid() ? 0 : MP_EPERM;
    if (rc == 0)
        *token = l->fence;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int mp__redis_lock_count(mp__redis_lock *l)
{
    if (l == NULL || l->rh.head.magic != MP__MAGIC_REDIS_LOCK)
        return MP_EINVAL;
    pthread_mutex_lock(&l->mu);
    uint32_t n = l->holder == (int)mp__self_pid() ? l->count : 0;
    pthread_mutex_unlock(&l->mu);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* KEYS[3] the wake list. The holder's token on the server, or false
 * (free: no token, or a grant no waiter took yet); a grant that its
 * grantee claimed answers the claim ("<pid>-<the grant's hex>"); an
 * integer for a bad key. */
static const char holder_lua[] =
    LOCK_CHECK "local v = redis.call('GET', KEYS[1]) "
               "if not v or string.sub(v, 1, 2) ~= '0-' then return v end "
               "if redis.call('TYPE', KEYS[3]).ok == 'list' and "
               "redis.call('LINDEX', KEYS[3], 0) == v then return false end "
               "local o = redis.call('GET', KEYS[2]) "
               "if o and string.match(o, '%-(%x+)$') == string.sub(v, 3) then return o end "
               "return v";

/* The holder's token into tok (cap MP__REDIS_TOKEN_MAX), or MP_ESRCH. */
static int server_token(mp__redis_lock *l, char *tok)
{
    const char *argv[] = {"EVAL", holder_lua, "3", l->o->key, l->owner_key, l->wk.wake};
    redisReply *rep;
    int rc = mp__redis_cmd(l->o->conn, MP__RR_ANY_VALUE, &rep, 6, argv, NULL);
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_NIL)
        rc = MP_ESRCH;
    else if (rep->type == REDIS_REPLY_INTEGER)
        rc = rep->integer < 0 ? mp__redis_lua_error(rep->integer) : MP_EBADMSG;
    else if (rep->type != REDIS_REPLY_STRING || rep->len == 0 || rep->len >= MP__REDIS_TOKEN_MAX)
        rc = MP_EBADMSG;
    else
        memcpy(tok, rep->str, rep->len + 1);
    freeReplyObject(rep);
    return rc;
}

int mp__redis_lock_locked(mp__redis_lock *l)
{
    if (l == NULL || l->rh.head.magic != MP__MAGIC_REDIS_LOCK)
        return MP_EINVAL;
    char tok[MP__REDIS_TOKEN_MAX];
    int rc = server_token(l, tok);
    return rc == 0 ? 1 : rc == MP_ESRCH ? 0 : rc;
}

int mp__redis_lock_owner(mp__redis_lock *l, pid_t *pid, pid_t *tid, uint32_t *depth)
{
    if (l == NULL || l->rh.head.magic != MP__MAGIC_REDIS_LOCK)
        return MP_EINVAL;
    char tok[MP__REDIS_TOKEN_MAX];
    int rc = server_token(l, tok);
    if (rc < 0)
        return rc;
    /* A grant whose grantee has not claimed it yet reads as pid 0. */
    char *end;
    long p = strtol(tok, &end, 10);
    if (end == tok || *end != '-' || p < 0 || p > INT32_MAX)
        return MP_EBADMSG;
    uint32_t n = 0;
    pthread_mutex_lock(&l->mu);
    const char *held = strchr(l->token, '-');
    if (l->holder == (int)mp__self_pid() && held && strcmp(held, end) == 0)
        n = l->count;
    pthread_mutex_unlock(&l->mu);
    if (pid)
        *pid = (pid_t)p;
    if (tid)
        *tid = 0;
    if (depth)
        *depth = n;
    return 0;
}

/* ---- what a condition over the lock uses (redis/redis_cond.c) ------------ */

const mp__redis_obj *mp__redis_lock_obj(const mp__redis_lock *l)
{
    return l->o;
}

const char *mp__redis_lock_owner_key(const mp__redis_lock *l)
{
    return l->owner_key;
}

const mp__redis_wakers *mp__redis_lock_wakers(const mp__redis_lock *l)
{
    return &l->wk;
}

bool mp__redis_lock_is_recursive(const mp__redis_lock *l)
{
    return l->recursive;
}

const char *mp__redis_lock_fence_key(const mp__redis_lock *l)
{
    return l->fence_key;
}

void mp__redis_lock_lease_ms(const mp__redis_lock *l, char ms[24])
{
    snprintf(ms, 24, "%lld", (long long)(l->lease * 1000 + 0.5));
}

int mp__redis_lock_hold(mp__redis_lock *l, char tok[MP__REDIS_TOKEN_MAX],
                        char me[MP__REDIS_TOKEN_MAX], uint32_t *count)
{
    if (l == NULL || l->rh.head.magic != MP__MAGIC_REDIS_LOCK)
        return MP_EINVAL;
    pthread_mutex_lock(&l->mu);
    int rc = l->holder == (int)mp__self_pid() ? 0 : MP_EPERM;
    if (rc == 0) {
        memcpy(tok, l->token, sizeof(l->token));
        if (me)
            memcpy(me, l->waiter, sizeof(l->waiter));
        *count = l->count;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void mp__redis_lock_drop(mp__redis_lock *l)
{
    pthread_mutex_lock(&l->mu);
    l->holder = 0;
    l->count = 0;
    pthread_mutex_unlock(&l->mu);
}

int mp__redis_lock_retake(mp__redis_lock *l, uint32_t count, const char *id, bool enlisted)
{
    /* The lock is taken back whatever the interrupt settings say: a
     * condition's wait returns holding it, as locally. */
    bool was = mp_set_interruptible(false);
    mp_cancel *c = mp_cancel_set_current(NULL);
    mp__deadline forever;
    (void)mp__deadline_init(&forever, MP_FOREVER);
    int rc = acquire_as(l, id, enlisted, &forever);
    mp_cancel_set_current(c);
    mp_set_interruptible(was);
    if (rc == 0 || rc == MP_EOWNERDEAD) {
        pthread_mutex_lock(&l->mu);
        l->count = count ? count : 1;
        pthread_mutex_unlock(&l->mu);
    }
    return rc;
}

/* ---- event ---------------------------------------------------------------*/

static int key_int(mp__redis_obj *o, int argc, const char **argv, long long *out)
{
    redisReply *rep;
    int rc = mp__redis_cmd(o->conn, MP__RR_INT, &rep, argc, argv, NULL);
    if (rc == 0) {
        *out = rep->integer;
        freeReplyObject(rep);
    }
    return rc;
}

/* Lua: an event key is "1" or absent, its count of sets (KEYS[2]) a
 * number INCR takes or absent, its wait set and wake list KEYS[3] and
 * KEYS[4]; anything else is refused before the script changes it. */
#define EVENT_CHECK                                                                                \
    MP__REDIS_LUA_HELPERS MP__REDIS_LUA_COUNT MP__REDIS_WAKE_LUA(                                  \
        "3",                                                                                       \
        "4") "local t = kind(KEYS[1]) "                                                            \
             "if t ~= 'none' and t ~= 'string' then return EPROTO end "                            \
             "if t == 'string' and redis.call('GET', KEYS[1]) ~= '1' then return EBADMSG end "     \
             "local gen, ge = count(KEYS[2]) if not gen then return ge end "                       \
             "local w = wk_check() if w then return w end "

/* A set counts one more set and wakes every waiter enlisted: the new
 * count, once for each, in a fresh wake list (older wake-ups there are
 * moot: the count decides). */
static const char event_set_lua[] = EVENT_CHECK "redis.call('SET', KEYS[1], '1') "
                                                "wk_wake_all(redis.call('INCR', KEYS[2])) "
                                                "return 0";
static const char event_clear_lua[] = EVENT_CHECK "redis.call('DEL', KEYS[1]) return 0";
/* ARGV[1] the waiter's id, ARGV[2] "1": enlist it when the event is not
 * set. Answers {1 when set, the count of sets}. */
static const char event_check_lua[] =
    EVENT_CHECK "local set = redis.call('GET', KEYS[1]) == '1' "
                "if not set and ARGV[2] == '1' then "
                "  local now = wk_now() wk_expire(now) wk_enlist(ARGV[1], now) "
                "end "
                "return {set and 1 or 0, gen}";

static int event_script(mp__redis_obj *e, const char *lua, const char *id, bool enlist,
                        redisReply **out)
{
    int rc = mp__redis_obj_check(e, MP__MAGIC_REVENT);
    if (rc < 0)
        return rc;
    char gen[MP__REDIS_KEY_MAX];
    mp__redis_wakers wk;
    mp__redis_obj_part(e, "gen", gen);
    mp__redis_wakers_init(e, &wk);
    const char *argv[] = {
        "EVAL", lua, "4", e->key, gen, wk.wait, wk.wake, id ? id : "", enlist ? "1" : "0"};
    redisReply *rep;
    rc = mp__redis_cmd(e->conn, MP__RR_ANY_VALUE, &rep, 9, argv, NULL);
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_INTEGER) {
        rc = mp__redis_lua_error(rep->integer);
        if (rc == 0 && out)
            rc = MP_EBADMSG; /* a check answers an array */
    } else if (rep->type != REDIS_REPLY_ARRAY || out == NULL) {
        rc = MP_EBADMSG;
    }
    if (rc == 0 && out)
        *out = rep;
    else
        freeReplyObject(rep);
    return rc;
}

int mp__redis_event_set(mp__redis_obj *e)
{
    return event_script(e, event_set_lua, NULL, false, NULL);
}

int mp__redis_event_clear(mp__redis_obj *e)
{
    return event_script(e, event_clear_lua, NULL, false, NULL);
}

int mp__redis_event_is_set(mp__redis_obj *e)
{
    redisReply *rep;
    int rc = mp__redis_obj_check(e, MP__MAGIC_REVENT);
    if (rc == 0) /* another Redis type: WRONGTYPE, MP_EPROTO */
        rc = mp__redis_cmd(e->conn, MP__RR_STR_NIL, &rep, 2, (const char *[]){"GET", e->key}, NULL);
    if (rc < 0)
        return rc;
    rc = rep->type == REDIS_REPLY_NIL ? 0 : rep->len == 1 && rep->str[0] == '1' ? 1 : MP_EBADMSG;
    freeReplyObject(rep);
    return rc;
}

/* mp__redis_gen_check of an event: whether it is set (*set), and its
 * count of sets. */
static int event_check(void *obj, const char *id, bool enlist, bool *set, uint64_t *gen)
{
    redisReply *rep;
    int rc = event_script(obj, event_check_lua, id, enlist, &rep);
    if (rc < 0)
        return rc;
    rc = mp__redis_gen_reply(rep, set, gen);
    freeReplyObject(rep);
    return rc;
}

int mp__redis_event_wait(mp__redis_obj *e, double timeout)
{
    if (mp__redis_obj_check(e, MP__MAGIC_REVENT) < 0)
        return MP_EINVAL;
    mp__redis_wakers wk;
    mp__redis_wakers_init(e, &wk);
    return mp__redis_gen_wait(e->conn, &wk, timeout, event_check, e);
}

/* mp_wait on an event: ready when set, or set since the wait began (its
 * count of sets moved). Looking costs one script (enlisting the waiter
 * when the wait may block); the wait is a BLPOP of the event's wake list
 * on a side connection whose fd mp_wait polls, a second at most (then it
 * looks and enlists again), as in mp__redis_gen_wait. */
typedef struct event_wait {
    mp__redis *side; /* a BLPOP under way, or NULL */
    int fd;
    bool seen;     /* mine holds the count of sets at the first look */
    bool enlisted; /* the id is (or was) in the wait set */
    uint64_t mine;
    char id[MP__REDIS_TOKEN_MAX];
} event_wait;

int mp__redis_event_wait_begin(mp__redis_obj *e, void **w, bool block, int *fd)
{
    int rc = mp__redis_obj_check(e, MP__MAGIC_REVENT);
    if (rc < 0)
        return rc;
    event_wait *ew = *w;
    if (ew == NULL) {
        if ((ew = calloc(1, sizeof(*ew))) == NULL)
            return MP_ENOMEM;
        mp__redis_new_token(ew->id, sizeof(ew->id));
        *w = ew;
    }
    if (ew->side) { /* under way: its answer is still to come */
        *fd = ew->fd;
        return 0;
    }
    bool set;
    uint64_t gen;
    rc = event_check(e, ew->id, block, &set, &gen);
    if (rc < 0)
        return rc;
    ew->enlisted |= block;
    if (set || (ew->seen && gen > ew->mine))
        return 1;
    if (!ew->seen) {
        ew->mine = gen;
        ew->seen = true;
    }
    if (!block)
        return 0;
    mp__redis_wakers wk;
    mp__redis_wakers_init(e, &wk);
    rc = mp__redis_side_send(e->conn, 3, (const char *[]){"BLPOP", wk.wake, "1"}, &ew->side,
                             &ew->fd);
    if (rc < 0)
        return rc;
    *fd = ew->fd;
    return 0;
}

int mp__redis_event_wait_finish(mp__redis_obj *e, void **w)
{
    event_wait *ew = *w;
    if (ew == NULL || ew->side == NULL)
        return 0;
    redisReply *rep;
    int rc = mp__redis_side_recv(e->conn, ew->side, &rep);
    ew->side = NULL;
    if (rc < 0)
        return rc;
    /* A count of sets above the one first seen: set during the wait. */
    int ready = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING) {
        char num[24];
        size_t n = rep->element[1]->len < sizeof(num) - 1 ? rep->element[1]->len : sizeof(num) - 1;
        memcpy(num, rep->element[1]->str, n);
        num[n] = '\0';
        char *end = NULL;
        unsigned long long g = strtoull(num, &end, 10);
        ready = end && *end == '\0' && n > 0 && g > ew->mine;
    } else if (rep->type != REDIS_REPLY_NIL && rep->type != REDIS_REPLY_ARRAY) {
        rc = mp__redis_reply_check(rep, MP__RR_ANY_VALUE);
    }
    freeReplyObject(rep);
    return rc < 0 ? rc : ready;
}

void mp__redis_event_wait_end(mp__redis_obj *e, void **w)
{
    event_wait *ew = *w;
    if (ew == NULL)
        return;
    *w = NULL;
    if (ew->side)
        mp__redis_side_abandon(e->conn, ew->side);
    if (ew->enlisted) {
        mp__redis_wakers wk;
        mp__redis_wakers_init(e, &wk);
        (void)mp__redis_wake_leave(e->conn, &wk, ew->id);
    }
    free(ew);
}

/* ---- value ---------------------------------------------------------------*/

/* Lua: the value key holds nothing or a string (KEYS[1]). */
#define VALUE_TYPE_CHECK                                                                           \
    MP__REDIS_LUA_HELPERS "local t = kind(KEYS[1]) "                                               \
                          "if t ~= 'none' and t ~= 'string' then return EPROTO end "

/* A set replaces a number, never a key of another Redis type. */
static const char store_lua[] = VALUE_TYPE_CHECK "redis.call('SET', KEYS[1], ARGV[1]) return 0";

int mp__redis_value_store(mp__redis_obj *v, const char *text)
{
    long long r = 0;
    int rc = mp__redis_obj_check(v, MP__MAGIC_RVALUE);
    if (rc == 0 && text == NULL)
        rc = MP_EINVAL;
    if (rc == 0)
        rc = key_int(v, 5, (const char *[]){"EVAL", store_lua, "1", v->key, text}, &r);
    return rc < 0 ? rc : mp__redis_lua_error(r);
}

int mp__redis_value_set_int64(mp__redis_obj *v, int64_t x)
{
    char num[24];
    snprintf(num, sizeof(num), "%lld", (long long)x);
    return mp__redis_value_store(v, num);
}

/* INCRBY of a value that holds an int64 as this library writes it (the
 * check tells a foreign text, MP_EBADMSG, from an overflow, which Redis
 * reports with the same kind of error). */
static const char add_int_lua[] =
    VALUE_TYPE_CHECK "local s = redis.call('GET', KEYS[1]) "
                     "if s and (not isnum(s, false) or dcmp(s, '-9223372036854775808') < 0 "
                     "or dcmp(s, '9223372036854775807') > 0) then return EBADMSG end "
                     "redis.call('INCRBY', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])";

int mp__redis_value_add_int64(mp__redis_obj *v, int64_t delta, int64_t *result)
{
    char num[24];
    redisReply *rep;
    int rc = mp__redis_obj_check(v, MP__MAGIC_RVALUE);
    snprintf(num, sizeof(num), "%lld", (long long)delta);
    if (rc == 0)
        rc = mp__redis_cmd(v->conn, MP__RR_ANY_VALUE, &rep, 5,
                           (const char *[]){"EVAL", add_int_lua, "1", v->key, num}, NULL);
    if (rc < 0) /* ESERVER: "increment or decrement would overflow" */
        return rc == MP_ESERVER ? MP_EOVERFLOW : rc;
    /* The sum comes back as text: Lua would round an integer reply to a
     * double. */
    int64_t r = 0;
    if (rep->type == REDIS_REPLY_STRING)
        rc = mp__redis_parse_int(rep->str, rep->len, &r);
    else
        rc = rep->type == REDIS_REPLY_INTEGER && mp__redis_lua_error(rep->integer) < 0
                 ? mp__redis_lua_error(rep->integer)
                 : MP_EBADMSG;
    freeReplyObject(rep);
    if (rc == 0 && result)
        *result = r;
    return rc;
}

int mp__redis_value_text(mp__redis_obj *v, char *buf, size_t cap)
{
    redisReply *rep;
    int rc = mp__redis_obj_check(v, MP__MAGIC_RVALUE);
    if (rc == 0)
        rc = mp__redis_cmd(v->conn, MP__RR_STR_NIL, &rep, 2, (const char *[]){"GET", v->key}, NULL);
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_NIL)
        snprintf(buf, cap, "0");
    else if (rep->len == 0 || rep->len >= cap || memchr(rep->str, '\0', rep->len))
        rc = MP_EBADMSG;
    else
        memcpy(buf, rep->str, rep->len + 1);
    freeReplyObject(rep);
    return rc;
}

/* Decodes the stored text as a number of the kind tag ('i' or 'd'): a
 * number of the other kind is MP_EPROTO, no number MP_EBADMSG. */
static int value_as(mp__redis_obj *v, char tag, void *out)
{
    char buf[MP__REDIS_NUM_MAX], tagged[MP__REDIS_NUM_MAX + 1];
    int rc = mp__redis_value_text(v, buf, sizeof(buf));
    if (rc < 0)
        return rc;
    size_t n = strlen(buf);
    if (!mp__redis_num_ok(buf, n, true))
        return MP_EBADMSG;
    if (tag == 'i' && !mp__redis_num_ok(buf, n, false))
        return MP_EPROTO; /* "0.75" is no int64 */
    snprintf(tagged, sizeof(tagged), "%c%s", tag, buf);
    mp_item it;
    return mp__redis_decode(tagged, n + 1, &it, out) < 0 ? MP_EBADMSG : 0;
}

int mp__redis_value_get_int64(mp__redis_obj *v, int64_t *out)
{
    return value_as(v, 'i', out);
}

int mp__redis_value_set_double(mp__redis_obj *v, double x)
{
    char num[MP__REDIS_NUM_MAX];
    snprintf(num, sizeof(num), "%.17g", x);
    return mp__redis_value_store(v, num);
}

int mp__redis_value_get_double(mp__redis_obj *v, double *out)
{
    return value_as(v, 'd', out);
}

/* INCRBYFLOAT of a value that holds a number as this library writes it
 * (Redis itself would also take hex floats). */
static const char add_float_lua[] =
    VALUE_TYPE_CHECK "local s = redis.call('GET', KEYS[1]) "
                     "if s and not isnum(s, true) then return EBADMSG end "
                     "return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])";

int mp__redis_value_add_double(mp__redis_obj *v, double delta, double *result)
{
    char num[MP__REDIS_NUM_MAX];
    int rc = mp__redis_obj_check(v, MP__MAGIC_RVALUE);
    snprintf(num, sizeof(num), "%.17g", delta);
    redisReply *rep;
    if (rc == 0)
        rc = mp__redis_cmd(v->conn, MP__RR_ANY_VALUE, &rep, 5,
                           (const char *[]){"EVAL", add_float_lua, "1", v->key, num}, NULL);
    if (rc < 0) /* ESERVER: the sum is no finite double */
        return rc == MP_ESERVER ? MP_ERANGE : rc;
    if (rep->type == REDIS_REPLY_INTEGER) {
        rc = mp__redis_lua_error(rep->integer);
        freeReplyObject(rep);
        return rc < 0 ? rc : MP_EBADMSG;
    }
    char tagged[MP__REDIS_NUM_MAX + 1];
    if (rep->type != REDIS_REPLY_STRING || rep->len >= sizeof(tagged) - 1 ||
        memchr(rep->str, '\0', rep->len)) {
        freeReplyObject(rep);
        return MP_EBADMSG;
    }
    snprintf(tagged, sizeof(tagged), "d%s", rep->str);
    freeReplyObject(rep);
    double d;
    mp_item it;
    if (mp__redis_decode(tagged, strlen(tagged), &it, &d) < 0)
        return MP_EBADMSG;
    if (result)
        *result = d;
    return 0;
}
