/* multiproc status [--watch [SECONDS]]: per distributed pool of the
 * prefix, its undelivered and running entries, the tasks answered (in
 * all and per second), the age of the oldest entry, its dead letters and
 * its workers (from their heartbeat hashes). */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

typedef struct wrow {
    char *consumer;
    char host[64];
    long long pid, executors, done, failed, held;
    double rate, age; /* age: seconds since the last beat; NAN unknown */
    bool alive;       /* it has a heartbeat key */
} wrow;

typedef struct prow {
    char *name;
    long long pending, running, done, failed, dead;
    /* The age of the oldest undelivered entry and of the oldest entry a
     * worker holds (seconds since it was added; NAN: none). */
    double rate, oldest, oldest_run;
    char after[MP__REDIS_POOL_EID_MAX + 1]; /* "(<last delivered id>", or "-" */
    wrow *w;
    size_t nw;
} prow;

static void prow_free(prow *p)
{
    for (size_t i = 0; i < p->nw; i++)
        free(p->w[i].consumer);
    free(p->w);
}

/* Undelivered and running entries from XINFO GROUPS and XLEN: the group's
 * lag when the server knows it, else the entries not pending. */
static int read_counts(mp__tool *t, prow *p, const char *k_tasks)
{
    redisReply *len, *groups = NULL;
    int rc = mp__tool_cmd(t, &len, 2, (const char *[]){"XLEN", k_tasks});
    if (rc < 0)
        return rc;
    long long n = mp__tool_int(len, 0), lag = -1;
    freeReplyObject(len);
    p->running = 0;
    snprintf(p->after, sizeof(p->after), "-");
    rc = mp__tool_cmd(t, &groups, 3, (const char *[]){"XINFO", "GROUPS", k_tasks});
    if (rc == MP_ESERVER)
        rc = 0; /* no stream: nothing pending */
    for (size_t i = 0;
         rc == 0 && groups && groups->type == REDIS_REPLY_ARRAY && i < groups->elements; i++) {
        const redisReply *g = groups->element[i], *name = mp__tool_field(g, "name");
        if (name == NULL || name->type != REDIS_REPLY_STRING ||
            strcmp(name->str, MP__REDIS_POOL_GROUP) != 0)
            continue;
        const redisReply *last = mp__tool_field(g, "last-delivered-id");
        p->running = mp__tool_int(mp__tool_field(g, "pending"), 0);
        lag = mp__tool_int(mp__tool_field(g, "lag"), -1);
        if (last && last->type == REDIS_REPLY_STRING && mp__tool_eid_ok(last->str, NULL))
            snprintf(p->after, sizeof(p->after), "(%s", last->str);
    }
    if (groups)
        freeReplyObject(groups);
    p->pending = lag >= 0 ? lag : n - p->running > 0 ? n - p->running : 0;
    return rc;
}

/* The age of an entry id (ids carry the server's clock at XADD). */
static double id_age(const redisReply *id, int64_t now)
{
    uint64_t ms;
    if (id == NULL || id->type != REDIS_REPLY_STRING || !mp__tool_eid_ok(id->str, &ms))
        return NAN;
    return now > (int64_t)ms ? (double)(now - (int64_t)ms) / 1000.0 : 0.0;
}

/* The ages of the first entry after the group's last delivered one (the
 * oldest undelivered: XRANGE) and of the oldest entry delivered and not
 * acknowledged (the XPENDING summary's smallest id). */
static int read_oldest(mp__tool *t, prow *p, const char *k_tasks, int64_t now)
{
    redisReply *rep;
    p->oldest = p->oldest_run = NAN;
    int rc =
        mp__tool_cmd(t, &rep, 6, (const char *[]){"XRANGE", k_tasks, p->after, "+", "COUNT", "1"});
    if (rc == MP_ESERVER)
        return 0; /* not a stream */
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements >= 1)
        p->oldest = id_age(rep->element[0]->element[0], now);
    freeReplyObject(rep);
    rc = mp__tool_cmd(t, &rep, 3, (const char *[]){"XPENDING", k_tasks, MP__REDIS_POOL_GROUP});
    if (rc == MP_ESERVER)
        return 0; /* no group yet */
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 4)
        p->oldest_run = id_age(rep->element[1], now);
    freeReplyObject(rep);
    return 0;
}

/* One worker from its heartbeat key (a hash: host, pid, executors, done,
 * failed, rate, ttl) and the key's PTTL. */
static int read_worker(mp__tool *t, wrow *w, const char *key)
{
    redisReply *h, *ttl;
    int rc = mp__tool_cmd(t, &ttl, 2, (const char *[]){"PTTL", key});
    if (rc < 0)
        return rc;
    long long left = mp__tool_int(ttl, -2);
    freeReplyObject(ttl);
    w->alive = left > 0;
    w->age = NAN;
    w->pid = w->executors = w->done = w->failed = -1;
    w->rate = NAN;
    rc = mp__tool_cmd(t, &h, 2, (const char *[]){"HGETALL", key});
    if (rc == MP_EPROTO)
        return 0; /* a heartbeat of another version: no figures */
    if (rc < 0)
        return rc;
    const redisReply *host = mp__tool_field(h, "host"), *rate = mp__tool_field(h, "rate");
    if (host && host->type == REDIS_REPLY_STRING)
        snprintf(w->host, sizeof(w->host), "%.*s", (int)host->len, host->str);
    w->pid = mp__tool_int(mp__tool_field(h, "pid"), -1);
    w->executors = mp__tool_int(mp__tool_field(h, "executors"), -1);
    w->done = mp__tool_int(mp__tool_field(h, "done"), -1);
    w->failed = mp__tool_int(mp__tool_field(h, "failed"), -1);
    long long full = mp__tool_int(mp__tool_field(h, "ttl"), -1);
    if (full > 0 && left > 0)
        w->age = (double)(full > left ? full - left : 0) / 1000.0;
    if (rate && rate->type == REDIS_REPLY_STRING)
        w->rate = strtod(rate->str, NULL);
    freeReplyObject(h);
    return 0;
}

static int add_worker(prow *p, const char *consumer, size_t len)
{
    wrow *nw = realloc(p->w, (p->nw + 1) * sizeof(*nw));
    if (nw == NULL)
        return MP_ENOMEM;
    p->w = nw;
    wrow *w = &p->w[p->nw];
    memset(w, 0, sizeof(*w));
    w->consumer = strndup(consumer, len);
    if (w->consumer == NULL)
        return MP_ENOMEM;
    p->nw++;
    return 0;
}

/* Consumers of the group that hold entries and have no heartbeat key: a
 * worker that died or is cut off (the others claim its entries). */
static int read_lost(mp__tool *t, prow *p, const char *k_tasks)
{
    redisReply *cs;
    int rc = mp__tool_cmd(t, &cs, 4,
                          (const char *[]){"XINFO", "CONSUMERS", k_tasks, MP__REDIS_POOL_GROUP});
    if (rc == MP_ESERVER)
        return 0; /* no stream or no group: no consumer */
    if (rc < 0)
        return rc;
    for (size_t i = 0; rc == 0 && cs->type == REDIS_REPLY_ARRAY && i < cs->elements; i++) {
        const redisReply *name = mp__tool_field(cs->element[i], "name");
        long long held = mp__tool_int(mp__tool_field(cs->element[i], "pending"), 0);
        if (name == NULL || name->type != REDIS_REPLY_STRING)
            continue;
        bool found = false;
        for (size_t j = 0; j < p->nw && !found; j++)
            if (strlen(p->w[j].consumer) == name->len &&
                memcmp(p->w[j].consumer, name->str, name->len) == 0) {
                p->w[j].held = held;
                found = true;
            }
        if (found || held == 0)
            continue;
        rc = add_worker(p, name->str, name->len);
        if (rc == 0) {
            wrow *w = &p->w[p->nw - 1];
            w->held = held;
            w->age = w->rate = NAN;
            w->pid = w->executors = w->done = w->failed = -1;
        }
    }
    freeReplyObject(cs);
    return rc;
}

static int read_workers(mp__tool *t, prow *p, const char *k_tasks)
{
    char *prefix;
    int rc = mp__tool_pool_key(t, &prefix, p->name, "worker:");
    if (rc < 0)
        return rc;
    char **keys = NULL;
    size_t n = 0;
    rc = mp__tool_scan(t, prefix, "*", &keys, &n);
    size_t plen = strlen(prefix);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = add_worker(p, keys[i] + plen, strlen(keys[i] + plen));
        if (rc == 0)
            rc = read_worker(t, &p->w[p->nw - 1], keys[i]);
        if (rc == 0 && p->w[p->nw - 1].alive && isfinite(p->w[p->nw - 1].rate))
            p->rate += p->w[p->nw - 1].rate;
    }
    mp__tool_strv_free(keys, n);
    free(prefix);
    return rc == 0 ? read_lost(t, p, k_tasks) : rc;
}

static int read_pool(mp__tool *t, prow *p, int64_t now)
{
    char *k_tasks = NULL, *k_dead = NULL, *k_stats = NULL;
    int rc = mp__tool_pool_key(t, &k_tasks, p->name, "tasks");
    if (rc == 0)
        rc = mp__tool_pool_key(t, &k_dead, p->name, "dead");
    if (rc == 0)
        rc = mp__tool_pool_key(t, &k_stats, p->name, "stats");
    if (rc == 0)
        rc = read_counts(t, p, k_tasks);
    if (rc == 0)
        rc = read_oldest(t, p, k_tasks, now);
    redisReply *rep;
    if (rc == 0 && (rc = mp__tool_cmd(t, &rep, 2, (const char *[]){"XLEN", k_dead})) == 0) {
        p->dead = mp__tool_int(rep, 0);
        freeReplyObject(rep);
    }
    if (rc == 0 && (rc = mp__tool_cmd(t, &rep, 4,
                                      (const char *[]){"HMGET", k_stats, "done", "failed"})) == 0) {
        bool ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2;
        p->done = ok ? mp__tool_int(rep->element[0], 0) : 0;
        p->failed = ok ? mp__tool_int(rep->element[1], 0) : 0;
        freeReplyObject(rep);
    }
    if (rc == 0)
        rc = read_workers(t, p, k_tasks);
    free(k_tasks);
    free(k_dead);
    free(k_stats);
    return rc;
}

static void json_int(FILE *f, const char *name, long long v, bool comma)
{
    fprintf(f, "\"%s\":", name);
    if (v < 0)
        fputs("null", f);
    else
        fprintf(f, "%lld", v);
    if (comma)
        fputc(',', f);
}

static void json_dbl(FILE *f, const char *name, double v, bool comma)
{
    fprintf(f, "\"%s\":", name);
    mp__tool_json_num(f, v);
    if (comma)
        fputc(',', f);
}

static void print_json(mp__tool *t, const prow *p, size_t n)
{
    fputs("{\"prefix\":", stdout);
    mp__tool_json_str(stdout, t->prefix, strlen(t->prefix));
    fputs(",\"pools\":[", stdout);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        mp__tool_json_str(stdout, p[i].name, strlen(p[i].name));
        fputc(',', stdout);
        json_int(stdout, "pending", p[i].pending, true);
        json_int(stdout, "running", p[i].running, true);
        json_int(stdout, "done", p[i].done, true);
        json_int(stdout, "failed", p[i].failed, true);
        json_dbl(stdout, "done_per_s", p[i].rate, true);
        json_dbl(stdout, "oldest_pending_age_s", p[i].oldest, true);
        json_dbl(stdout, "oldest_running_age_s", p[i].oldest_run, true);
        json_int(stdout, "dead", p[i].dead, true);
        fputs("\"workers\":[", stdout);
        for (size_t j = 0; j < p[i].nw; j++) {
            const wrow *w = &p[i].w[j];
            fputs(j ? ",{\"consumer\":" : "{\"consumer\":", stdout);
            mp__tool_json_str(stdout, w->consumer, strlen(w->consumer));
            fputs(",\"host\":", stdout);
            mp__tool_json_str(stdout, w->host, strlen(w->host));
            fprintf(stdout, ",\"alive\":%s,", w->alive ? "true" : "false");
            json_int(stdout, "pid", w->pid, true);
            json_int(stdout, "executors", w->executors, true);
            json_dbl(stdout, "last_heartbeat_age_s", w->age, true);
            json_int(stdout, "held", w->held, true);
            json_int(stdout, "done", w->done, true);
            json_int(stdout, "failed", w->failed, true);
            json_dbl(stdout, "done_per_s", w->rate, false);
            fputc('}', stdout);
        }
        fputs("]}", stdout);
    }
    fputs("]}\n", stdout);
}

/* n as text, or "-" when unknown (negative). */
static const char *num(char *buf, size_t cap, long long n)
{
    if (n < 0)
        return "-";
    snprintf(buf, cap, "%lld", n);
    return buf;
}

static const char *secs(char *buf, size_t cap, double s, const char *none)
{
    if (!isfinite(s))
        return none;
    snprintf(buf, cap, "%.1fs", s);
    return buf;
}

static int pool_row(mp__tool_table *tb, const prow *p)
{
    char b[10][48];
    size_t live = 0;
    for (size_t j = 0; j < p->nw; j++)
        live += p->w[j].alive;
    snprintf(b[5], sizeof(b[5]), "%.1f", p->rate);
    const char *row[] = {p->name,
                         num(b[1], 48, p->pending),
                         secs(b[2], 48, p->oldest, "-"),
                         num(b[3], 48, p->running),
                         secs(b[4], 48, p->oldest_run, "-"),
                         b[5],
                         num(b[6], 48, p->done),
                         num(b[7], 48, p->failed),
                         num(b[8], 48, p->dead),
                         num(b[9], 48, (long long)live)};
    return mp__tool_table_row(tb, row, NULL);
}

static int worker_row(mp__tool_table *tb, const char *pool, const wrow *w)
{
    char b[9][48];
    if (w->executors == 0)
        snprintf(b[2], sizeof(b[2]), "inline");
    else
        num(b[2], 48, w->executors);
    snprintf(b[8], sizeof(b[8]), "%.1f", w->rate);
    const char *row[] = {pool,
                         w->host[0] ? w->host : "?",
                         num(b[1], 48, w->pid),
                         w->executors < 0 ? "-" : b[2],
                         w->alive ? secs(b[3], 48, w->age, "?") : "lost",
                         num(b[4], 48, w->held),
                         num(b[5], 48, w->done),
                         num(b[6], 48, w->failed),
                         isfinite(w->rate) ? b[8] : "-"};
    return mp__tool_table_row(tb, row, NULL);
}

/* The pools' table, then the workers' (when there are any). */
static int print_tables(const prow *p, size_t n)
{
    mp__tool_table pt = {0}, wt = {0};
    static const char *const ph[] = {"POOL",   "PENDING", "OLDEST", "RUNNING", "OLDEST RUN",
                                     "DONE/S", "DONE",    "FAILED", "DEAD",    "WORKERS"};
    static const char *const wh[] = {"POOL", "HOST", "PID",    "EXECUTORS", "LAST BEAT",
                                     "HELD", "DONE", "FAILED", "DONE/S"};
    int rc = mp__tool_table_init(&pt, 10, ph);
    if (rc == 0)
        rc = mp__tool_table_init(&wt, 9, wh);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = pool_row(&pt, &p[i]);
        for (size_t j = 0; rc == 0 && j < p[i].nw; j++)
            rc = worker_row(&wt, p[i].name, &p[i].w[j]);
    }
    if (rc == 0) {
        mp__tool_table_print(&pt, stdout);
        if (wt.nrows > 1) {
            fputc('\n', stdout);
            mp__tool_table_print(&wt, stdout);
        }
    }
    mp__tool_table_free(&pt);
    mp__tool_table_free(&wt);
    return rc;
}

/* One snapshot of every pool, printed. */
static int snapshot(mp__tool *t)
{
    char **names;
    size_t n;
    int64_t now;
    int rc = mp__tool_server_ms(t, &now);
    if (rc == 0)
        rc = mp__tool_pools(t, &names, &n);
    if (rc < 0)
        return mp__tool_fail(rc, "cannot read the pools");
    prow *p = calloc(n + 1, sizeof(*p));
    rc = p ? 0 : MP_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        p[i].name = names[i];
        rc = read_pool(t, &p[i], now);
    }
    if (rc == 0 && t->json)
        print_json(t, p, n);
    else if (rc == 0)
        rc = print_tables(p, n);
    for (size_t i = 0; p && i < n; i++)
        prow_free(&p[i]);
    free(p);
    mp__tool_strv_free(names, n);
    if (rc < 0)
        return mp__tool_fail(rc, "cannot read the pools");
    fflush(stdout);
    return MP__TOOL_OK;
}

int mp__tool_status(mp__tool *t)
{
    if (!t->watch)
        return snapshot(t);
    /* SIGINT and SIGTERM are taken synchronously between snapshots (never
     * in the middle of one): the tool then exits 0. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    bool tty = isatty(STDOUT_FILENO);
    for (;;) {
        if (tty)
            fputs("\033[H\033[2J", stdout);
        int rc = snapshot(t);
        if (rc != MP__TOOL_OK)
            return rc;
        if (!tty)
            fputc('\n', stdout);
        fflush(stdout);
        struct timespec ts = {.tv_sec = (time_t)t->every,
                              .tv_nsec = (long)((t->every - floor(t->every)) * 1e9)};
        if (sigtimedwait(&set, NULL, &ts) > 0)
            return MP__TOOL_OK;
    }
}
