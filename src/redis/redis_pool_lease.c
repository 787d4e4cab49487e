/* The distributed pool's heartbeats and leases. A serving worker keeps a
 * key with a short TTL alive and renews the idle time of the entries it
 * holds, from a thread, even while a task runs for long; any worker that
 * finds a consumer of the group without its key claims that consumer's
 * entries at once, instead of after the visibility timeout (which stays
 * as the backstop). Key layout: "Distributed pool" in docs/redis.md. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "os/fork_gate.h"
#include "redis/redis_pool.h"

/* The heartbeat thread's stack. */
#define BEAT_STACK ((size_t)256 << 10)

/* KEYS[1] the stream, KEYS[2] the heartbeat key; ARGV: group, consumer,
 * TTL in ms, the prefix of the clients' keys and of their cancel sets,
 * the worker's host, pid, executors (0: inline), tasks answered, tasks
 * failed and answered per second, then per entry the worker is running
 * or about to run its id, client and task id. Writes the key (a hash of
 * those figures and the TTL, from which a reader subtracts the key's
 * PTTL to know the beat's age without comparing clocks), then resets
 * the idle time of those of the
 * entries that are still pending on the consumer (JUSTID: the delivery
 * count stays): one answered meanwhile, or claimed by another worker
 * while this one was cut off, is left alone. Entries the worker holds
 * but will not run (left by a failed batch) are not renewed: the
 * visibility timeout brings them back. Returns per entry 0 (run it), 1
 * (cancelled: in its client's cancel set) or 2 (its client's key is
 * gone: the client's lease lapsed). */
static const char beat_lua[] =
    "redis.call('HSET', KEYS[2], 'host', ARGV[6], 'pid', ARGV[7], 'executors', ARGV[8], "
    "'done', ARGV[9], 'failed', ARGV[10], 'rate', ARGV[11], 'ttl', ARGV[3]) "
    "redis.call('PEXPIRE', KEYS[2], ARGV[3]) "
    "local ids, out, alive = {}, {}, {} "
    "for i = 12, #ARGV - 2, 3 do "
    "  local eid, c = ARGV[i], ARGV[i + 1] "
    "  if eid ~= '' then "
    "    local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], eid, eid, 1, ARGV[2]) "
    "    if type(p) == 'table' and not p.err and #p == 1 then ids[#ids + 1] = eid end "
    "  end "
    "  local flag = 0 "
    "  if c ~= '' then "
    "    if alive[c] == nil then alive[c] = redis.call('EXISTS', ARGV[4] .. c) end "
    "    if alive[c] == 0 then flag = 2 "
    "    elseif redis.call('SISMEMBER', ARGV[5] .. c, ARGV[i + 2]) == 1 then flag = 1 end "
    "  end "
    "  out[#out + 1] = flag "
    "end "
    "if #ids > 0 then "
    "  ids[#ids + 1] = 'JUSTID' "
    "  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids)) "
    "end "
    "return out";

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

/* What a beat learned of the held entries: flags[i] of held[i] (see
 * beat_lua), if the batch is still the one sent (gen). Also remembered
 * per client. Called with mu held. */
static void learn(mp__redis_beat *l, uint64_t gen, const redisReply *rep, int64_t now)
{
    if (gen != l->gen || rep->type != REDIS_REPLY_ARRAY || rep->elements != l->nheld)
        return;
    for (size_t i = 0; i < l->nheld; i++) {
        const redisReply *f = rep->element[i];
        mp__redis_beat_entry *h = &l->held[i];
        if (f->type != REDIS_REPLY_INTEGER || h->client[0] == '\0')
            continue;
        h->dropped = h->dropped || f->integer != 0;
        /* Replace the client's record, else the oldest. */
        size_t k = 0;
        for (size_t j = 0; j < MP__REDIS_BEAT_CLIENTS; j++) {
            if (strcmp(l->clients[j].client, h->client) == 0) {
                k = j;
                break;
            }
            if (l->clients[j].at < l->clients[k].at)
                k = j;
        }
        mp__redis_client_seen *c = &l->clients[k];
        memcpy(c->client, h->client, sizeof(c->client));
        c->alive = f->integer != 2;
        c->at = now;
    }
}

/* Records a sample of the answered count at now and writes the rate
 * over the window into buf: from the oldest sample within the window, or
 * the one before now when none is. mu held. */
static void rate_of(mp__redis_beat *l, int64_t now, uint64_t done, char *buf, size_t cap)
{
    unsigned n = l->nsamples < MP__REDIS_BEAT_SAMPLES ? l->nsamples : MP__REDIS_BEAT_SAMPLES;
    int64_t t = now;
    uint64_t d = done;
    for (unsigned i = 1; i <= n; i++) {
        unsigned k = (l->nsamples - i) % MP__REDIS_BEAT_SAMPLES;
        if (i > 1 && now - l->sample_t[k] > MP__REDIS_BEAT_WINDOW_NS)
            break;
        t = l->sample_t[k];
        d = l->sample_done[k];
    }
    double rate = now > t && done >= d ? (double)(done - d) * 1e9 / (double)(now - t) : 0.0;
    snprintf(buf, cap, "%.1f", rate);
    l->sample_t[l->nsamples % MP__REDIS_BEAT_SAMPLES] = now;
    l->sample_done[l->nsamples % MP__REDIS_BEAT_SAMPLES] = done;
    l->nsamples++;
}

void mp__redis_beat_count(mp__redis_beat *l, uint64_t done, uint64_t failed)
{
    __atomic_add_fetch(&l->done, done, __ATOMIC_RELAXED);
    __atomic_add_fetch(&l->failed, failed, __ATOMIC_RELAXED);
}

static int beat(mp__redis_beat *l)
{
    char done[24], failed[24], rate[32];
    uint64_t nd = __atomic_load_n(&l->done, __ATOMIC_RELAXED);
    snprintf(done, sizeof(done), "%" PRIu64, nd);
    snprintf(failed, sizeof(failed), "%" PRIu64, __atomic_load_n(&l->failed, __ATOMIC_RELAXED));
    const char *head[] = {"EVAL",
                          beat_lua,
                          "2",
                          l->k_tasks,
                          l->k_beat,
                          MP__REDIS_POOL_GROUP,
                          l->consumer,
                          l->ttl_ms,
                          l->k_client_prefix,
                          l->k_cancel_prefix,
                          l->host,
                          l->pid,
                          l->executors,
                          done,
                          failed,
                          rate};
    enum { NHEAD = sizeof(head) / sizeof(head[0]) };
    int64_t t0 = mp__now_ns();
    pthread_mutex_lock(&l->mu);
    rate_of(l, t0, nd, rate, sizeof(rate));
    size_t n = l->nheld;
    uint64_t gen = l->gen;
    const char **argv = malloc((NHEAD + 3 * n) * sizeof(*argv));
    mp__redis_beat_entry *held = n ? malloc(n * sizeof(*held)) : NULL;
    bool ok = argv && (n == 0 || held);
    if (ok && n)
        memcpy(held, l->held, n * sizeof(*held));
    pthread_mutex_unlock(&l->mu);
    int rc = MP_ENOMEM;
    redisReply *rep = NULL;
    if (ok) {
        memcpy(argv, head, sizeof(head));
        for (size_t i = 0; i < n; i++) {
            argv[NHEAD + 3 * i] = held[i].eid;
            argv[NHEAD + 3 * i + 1] = held[i].client;
            argv[NHEAD + 3 * i + 2] = held[i].id;
        }
        rc = mp__redis_cmd(l->conn, MP__RR_ANY_VALUE, &rep, (int)(NHEAD + 3 * n), argv, NULL);
    }
    free(argv);
    free(held);
    if (rc == 0) {
        pthread_mutex_lock(&l->mu);
        learn(l, gen, rep, t0);
        pthread_mutex_unlock(&l->mu);
        freeReplyObject(rep);
        __atomic_store_n(&l->last_beat, t0, __ATOMIC_RELEASE);
    }
    return rc;
}

/* The string value of field name among an entry's fields, or NULL. */
static const redisReply *field(const redisReply *fields, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && k->len == len && memcmp(k->str, name, len) == 0)
            return v->type == REDIS_REPLY_STRING ? v : NULL;
    }
    return NULL;
}

/* An entry's id, and its client and task id when they are well formed
 * (the client then cannot make another key). */
static void held_of(const redisReply *e, mp__redis_beat_entry *h)
{
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= MP__REDIS_POOL_EID_MAX)
        return;
    memcpy(h->eid, e->element[0]->str, e->element[0]->len);
    if (e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    const redisReply *c = field(e->element[1], "c"), *id = field(e->element[1], "id");
    if (!c || !id || !mp__redis_pool_client_ok(c->str, c->len) || id->len == 0 ||
        id->len >= sizeof(h->id) || strspn(id->str, "0123456789") != id->len)
        return;
    memcpy(h->client, c->str, c->len);
    memcpy(h->id, id->str, id->len);
}

/* Marks the held entries of clients known dead; true when a client of
 * the batch was not checked for two intervals (or never). mu held. */
static bool apply_known(mp__redis_beat *l, int64_t now)
{
    bool stale = false;
    for (size_t i = 0; i < l->nheld; i++) {
        mp__redis_beat_entry *h = &l->held[i];
        if (h->client[0] == '\0')
            continue;
        const mp__redis_client_seen *c = NULL;
        for (size_t j = 0; j < MP__REDIS_BEAT_CLIENTS && !c; j++)
            if (strcmp(l->clients[j].client, h->client) == 0)
                c = &l->clients[j];
        if (c && !c->alive)
            h->dropped = true;
        if (!c || now - c->at > 2 * l->interval_ns)
            stale = true;
    }
    return stale;
}

int mp__redis_beat_hold(mp__redis_beat *l, const redisReply *entries)
{
    mp__redis_beat_entry *held = calloc(entries->elements + 1, sizeof(*held));
    if (held == NULL)
        return MP_ENOMEM;
    for (size_t i = 0; i < entries->elements; i++)
        held_of(entries->element[i], &held[i]);
    pthread_mutex_lock(&l->mu);
    free(l->held);
    l->held = held;
    l->nheld = entries->elements;
    l->gen++;
    bool stale = apply_known(l, mp__now_ns());
    pthread_mutex_unlock(&l->mu);
    /* A client not checked lately is checked now, before its tasks run:
     * at most once per two intervals per client, and never while the
     * heartbeat thread keeps the clients of the batches it renews fresh. */
    /* A failure leaves what is known; the batch's answers meet it. */
    if (stale)
        (void)beat(l);
    return 0;
}

void mp__redis_beat_release(mp__redis_beat *l)
{
    pthread_mutex_lock(&l->mu);
    free(l->held);
    l->held = NULL;
    l->nheld = 0;
    l->gen++;
    pthread_mutex_unlock(&l->mu);
}

bool mp__redis_beat_dropped(mp__redis_beat *l, size_t i)
{
    pthread_mutex_lock(&l->mu);
    bool d = i < l->nheld && l->held[i].dropped;
    pthread_mutex_unlock(&l->mu);
    return d;
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
    l->alive = true;
    pthread_cond_broadcast(&l->cv);
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
        mp__fork_gate_enter();
        if (beat(l) < 0)
            retry = mp__now_ns() + l->interval_ns;
        mp__fork_gate_leave();
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static int lease_init(mp__redis_beat *l, mp__redis *conn, const char *name, const char *k_tasks,
                      const char *consumer, double interval, unsigned executors)
{
    memset(l, 0, sizeof(*l));
    gethostname(l->host, sizeof(l->host) - 1);
    snprintf(l->pid, sizeof(l->pid), "%d", (int)getpid());
    snprintf(l->executors, sizeof(l->executors), "%u", executors);
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
        mp__redis_pool_key(&l->k_beat_prefix, prefix, name, "worker:") < 0 ||
        mp__redis_pool_key(&l->k_client_prefix, prefix, name, "client:") < 0 ||
        mp__redis_pool_key(&l->k_cancel_prefix, prefix, name, "cancel:") < 0)
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
                         const char *consumer, double interval, unsigned executors)
{
    int rc = lease_init(l, conn, name, k_tasks, consumer, interval, executors);
    if (rc < 0) {
        free(l->k_beat);
        free(l->k_beat_prefix);
        free(l->k_client_prefix);
        free(l->k_cancel_prefix);
        l->k_beat = l->k_beat_prefix = l->k_client_prefix = l->k_cancel_prefix = NULL;
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
    if (rc == 0) {
        /* Its start-up done before the worker goes on (and may fork an
         * executor): see mp__redis_sender_start. */
        pthread_mutex_lock(&l->mu);
        while (!l->alive)
            pthread_cond_wait(&l->cv, &l->mu);
        pthread_mutex_unlock(&l->mu);
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
    free(l->k_client_prefix);
    free(l->k_cancel_prefix);
    free(l->held);
    l->started = false;
}
