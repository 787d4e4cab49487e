/* The distributed pool's heartbeats and leases. A serving worker keeps a
 * key with a short TTL alive and renews the idle time of the entries it
 * holds, from a thread, even while a task runs for long; any worker that
 * finds a consumer of the group without its key claims that consumer's
 * entries at once, instead of after the visibility timeout (which stays
 * as the backstop). Key layout: "Distributed pool" in docs/redis.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis/redis_pool.h"

/* The heartbeat thread's stack. */
#define BEAT_STACK ((size_t)256 << 10)

/* KEYS[1] the stream, KEYS[2] the heartbeat key; ARGV: group, consumer,
 * TTL in ms, then the ids of the entries the worker is running or about
 * to run. Sets the key, then resets the idle time of those of the entries
 * that are still pending on the consumer (JUSTID: the delivery count
 * stays): one answered meanwhile, or claimed by another worker while this
 * one was cut off, is left alone. Entries the worker holds but will not
 * run (left by a failed batch) are not renewed: the visibility timeout
 * brings them back. */
static const char beat_lua[] =
    "redis.call('SET', KEYS[2], '1', 'PX', ARGV[3]) "
    "local ids = {} "
    "for i = 4, #ARGV do "
    "  local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) "
    "  if type(p) == 'table' and not p.err and #p == 1 then ids[#ids + 1] = ARGV[i] end "
    "end "
    "if #ids == 0 then return 0 end "
    "ids[#ids + 1] = 'JUSTID' "
    "redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids)) "
    "return #ids - 1";

/* KEYS[1] the stream; ARGV: group, this consumer, the heartbeat keys'
 * prefix, how many entries to claim at most. Every other consumer whose
 * heartbeat key is gone is dead (or cut off): its pending entries are
 * claimed for this consumer (delivery count + 1), and it is removed once
 * it holds none. Being one script, two workers never claim the same
 * entry, and a consumer is never removed while it holds an entry. */
static const char reap_lua[] =
    "local cs = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1]) "
    "if type(cs) ~= 'table' or cs.err then return {} end "
    "local want, ids = tonumber(ARGV[4]), {} "
    "for _, c in ipairs(cs) do "
    "  local f = {} "
    "  for i = 1, #c - 1, 2 do f[c[i]] = c[i + 1] end "
    "  local name = f['name'] "
    "  if name and name ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. name) == 0 then "
    "    if f['pending'] == 0 then "
    "      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name) "
    "    elseif #ids < want then "
    "      local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', want - #ids, name) "
    "      for _, e in ipairs(p) do ids[#ids + 1] = e[1] end "
    "    end "
    "  end "
    "end "
    "if #ids == 0 then return {} end "
    "return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids))";

/* KEYS[1] the stream, KEYS[2] the heartbeat key; ARGV: group, consumer.
 * A worker that returns removes its key, and its consumer if it holds
 * nothing (else the others claim what it holds at once). */
static const char leave_lua[] =
    "redis.call('DEL', KEYS[2]) "
    "local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) "
    "if type(p) == 'table' and not p.err and #p == 0 then "
    "  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) "
    "end "
    "return 0";

static int beat(mp__redis_beat *l)
{
    const char *head[] = {"EVAL",      beat_lua, "2", l->k_tasks, l->k_beat, MP__REDIS_POOL_GROUP,
                          l->consumer, l->ttl_ms};
    enum { NHEAD = sizeof(head) / sizeof(head[0]) };
    int64_t t0 = mp__now_ns();
    pthread_mutex_lock(&l->mu);
    size_t n = l->nheld;
    const char **argv = malloc((NHEAD + n) * sizeof(*argv));
    char *ids = n ? malloc(n * MP__REDIS_POOL_EID_MAX) : NULL;
    bool ok = argv && (n == 0 || ids);
    if (ok && n)
        memcpy(ids, l->held, n * MP__REDIS_POOL_EID_MAX);
    pthread_mutex_unlock(&l->mu);
    int rc = MP_ENOMEM;
    if (ok) {
        memcpy(argv, head, sizeof(head));
        for (size_t i = 0; i < n; i++)
            argv[NHEAD + i] = ids + i * MP__REDIS_POOL_EID_MAX;
        rc = mp__redis_cmd(l->conn, MP__RR_INT, NULL, (int)(NHEAD + n), argv, NULL);
    }
    free(argv);
    free(ids);
    if (rc == 0)
        __atomic_store_n(&l->last_beat, t0, __ATOMIC_RELEASE);
    return rc;
}

int mp__redis_beat_hold(mp__redis_beat *l, const redisReply *entries)
{
    size_t n = 0;
    char(*held)[MP__REDIS_POOL_EID_MAX] = calloc(entries->elements + 1, sizeof(*held));
    if (held == NULL)
        return MP_ENOMEM;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e && e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
            e->element[0]->type == REDIS_REPLY_STRING &&
            e->element[0]->len < MP__REDIS_POOL_EID_MAX)
            memcpy(held[n++], e->element[0]->str, e->element[0]->len);
    }
    pthread_mutex_lock(&l->mu);
    free(l->held);
    l->held = held;
    l->nheld = n;
    pthread_mutex_unlock(&l->mu);
    return 0;
}

void mp__redis_beat_release(mp__redis_beat *l)
{
    pthread_mutex_lock(&l->mu);
    free(l->held);
    l->held = NULL;
    l->nheld = 0;
    pthread_mutex_unlock(&l->mu);
}

int mp__redis_beat_due(mp__redis_beat *l)
{
    int64_t last = __atomic_load_n(&l->last_beat, __ATOMIC_ACQUIRE);
    return mp__now_ns() - last >= l->interval_ns ? beat(l) : 0;
}

static void *beat_thread(void *arg)
{
    mp__redis_beat *l = arg;
    int64_t retry = 0; /* after a failure: not before */
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        int64_t next = __atomic_load_n(&l->last_beat, __ATOMIC_ACQUIRE) + l->interval_ns;
        int64_t wait = (next > retry ? next : retry) - mp__now_ns();
        if (wait > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + wait;
            ts.tv_sec += (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&l->mu);
        /* A failure is the loop's to report (it uses the same
         * connection); the next beat is tried an interval later. */
        if (beat(l) < 0)
            retry = mp__now_ns() + l->interval_ns;
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static int lease_init(mp__redis_beat *l, mp__redis *conn, const char *name, const char *k_tasks,
                      const char *consumer, double interval)
{
    memset(l, 0, sizeof(*l));
    l->conn = conn;
    l->k_tasks = k_tasks;
    l->consumer = consumer;
    l->interval_ns = (int64_t)(interval * 1e9);
    snprintf(l->ttl_ms, sizeof(l->ttl_ms), "%lld",
             (long long)(interval * 1000 * MP__REDIS_POOL_BEAT_TTL) + 1);
    char what[128];
    snprintf(what, sizeof(what), "worker:%s", consumer);
    const char *prefix = mp__redis_prefix(conn);
    if (mp__redis_pool_key(&l->k_beat, prefix, name, what) < 0 ||
        mp__redis_pool_key(&l->k_beat_prefix, prefix, name, "worker:") < 0)
        return MP_ENOMEM;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return MP_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int e = pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (e != 0)
        return MP_ENOMEM;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        pthread_cond_destroy(&l->cv);
        return MP_ENOMEM;
    }
    return 0;
}

int mp__redis_beat_start(mp__redis_beat *l, mp__redis *conn, const char *name, const char *k_tasks,
                         const char *consumer, double interval)
{
    int rc = lease_init(l, conn, name, k_tasks, consumer, interval);
    if (rc < 0) {
        free(l->k_beat);
        free(l->k_beat_prefix);
        l->k_beat = l->k_beat_prefix = NULL;
        return rc;
    }
    l->started = true;
    rc = beat(l);
    pthread_attr_t attr;
    if (rc == 0 && pthread_attr_init(&attr) != 0)
        rc = MP_ENOMEM;
    if (rc == 0) {
        /* A beat needs little stack. Asking for a size of our own also
         * keeps glibc from giving the thread the cached stack (and so the
         * id) of a thread that a parent had when it forked this process,
         * which ThreadSanitizer takes for a thread still alive. */
        pthread_attr_setstacksize(&attr, BEAT_STACK);
        if (pthread_create(&l->thread, &attr, beat_thread, l) != 0)
            rc = MP_EAGAIN;
        pthread_attr_destroy(&attr);
    }
    if (rc < 0) {
        l->stop = true; /* no thread: stop only frees */
        l->thread = (pthread_t)0;
    }
    return rc;
}

int mp__redis_beat_reap(mp__redis_beat *l, unsigned long count, redisReply **claimed)
{
    char want[24];
    snprintf(want, sizeof(want), "%lu", count ? count : 1);
    const char *argv[] = {"EVAL",      reap_lua,         "1", l->k_tasks, MP__REDIS_POOL_GROUP,
                          l->consumer, l->k_beat_prefix, want};
    redisReply *rep;
    *claimed = NULL;
    int rc = mp__redis_cmd(l->conn, MP__RR_ANY_VALUE, &rep, 8, argv, NULL);
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0)
        *claimed = rep;
    else
        freeReplyObject(rep);
    return 0;
}

void mp__redis_beat_stop(mp__redis_beat *l)
{
    if (!l->started)
        return;
    pthread_mutex_lock(&l->mu);
    bool running = !l->stop;
    l->stop = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (running)
        pthread_join(l->thread, NULL);
    /* A server not reached for a TTL is not waited for: the key expires
     * by itself and the others claim what the consumer holds. */
    int64_t last = __atomic_load_n(&l->last_beat, __ATOMIC_ACQUIRE);
    bool reached = mp__now_ns() - last < l->interval_ns * MP__REDIS_POOL_BEAT_TTL;
    const char *argv[] = {"EVAL",     leave_lua, "2", l->k_tasks, l->k_beat, MP__REDIS_POOL_GROUP,
                          l->consumer};
    if (reached && mp__redis_cmd(l->conn, MP__RR_INT, NULL, 7, argv, NULL) < 0)
        mp__debug("pool: worker %s leaves without removing its heartbeat", l->consumer);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l->k_beat);
    free(l->k_beat_prefix);
    free(l->held);
    l->started = false;
}
