/* The distributed pool's worker: takes tasks from the pool's stream with a
 * consumer group, runs them, pushes each result to its client's list and
 * acknowledges the entry (in that order: at least once). While it serves,
 * it heartbeats and renews the leases of the entries it holds
 * (redis/redis_pool_lease.c); entries of a worker whose heartbeat expired
 * are claimed at once, and entries held longer than the visibility
 * timeout by any worker are claimed again (XAUTOCLAIM, the backstop);
 * past the delivery cap they go to the dead-letter stream and their
 * client gets MP_EWORKERLOST. Entries are untrusted:
 * every field passes mp__redis_task_parse before use. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os/bulk.h"
#include "os/symbol.h"
#include "redis/redis_pool.h"
#include "redis/redis_pool_exec.h"

#define GROUP MP__REDIS_POOL_GROUP
/* A result list lives as long as its client's lease. */
#define RESULT_TTL MP__REDIS_POOL_CLIENT_LEASE_MS_STR
/* prefetch 0 (adaptive): a read takes one entry per executor, twice as
 * many after a batch that came back full and ran in under ADAPT_NS, up to
 * ADAPT_MAX; a batch that took longer starts again from the first size. A
 * worker then holds at most ADAPT_MAX entries (a map packs up to 16 tasks
 * in one), and only entries that take about ADAPT_NS / ADAPT_MAX or less
 * each, so a dead worker delays little work and long tasks spread one by
 * one over the workers. 64 rather than 16: each batch's hand-off to the
 * executors and back costs wake-ups, and tiny tasks ran 1.35x faster. */
#define ADAPT_MAX 64
#define ADAPT_NS  5000000

/* The answers of a batch of entries, sent in one pipelined round trip
 * after they ran: the results first (one RPUSH and one PEXPIRE per run of
 * answers to the same client), then one XACK and one XDEL of every entry
 * all of whose tasks are answered, so that a task is acknowledged only
 * once its result is stored (Redis runs a connection's commands in
 * order). An entry packs one task or several (of one map of one client):
 * one answer per task. */
typedef struct answer {
    const char *k_res;  /* its entry's, borrowed */
    unsigned char *rec; /* malloc'd, or head; NULL once moved to be sent */
    unsigned char head[MP__REDIS_RESULT_HEAD];
    size_t rec_len;
    size_t entry; /* its entry's index in the batch */
} answer;

typedef struct entry_ref {
    char *k_res; /* the client's result list; NULL: no client to answer */
    bool own;    /* k_res is this entry's (else the previous entry's) */
    char client[MP__REDIS_POOL_CLIENT_MAX + 1];
    char eid[MP__REDIS_POOL_EID_MAX];
    size_t eid_len;
    size_t left; /* its answers not yet moved to be sent */
    bool moved;  /* queued for its acknowledgement */
    size_t at;   /* its index in the read's reply (mp__redis_beat_dropped) */
} entry_ref;

typedef struct batch {
    answer *a;
    size_t n, cap;
    entry_ref *e; /* the entries to acknowledge */
    size_t ne, ecap;
    char **keys; /* result-list keys the answers use, owned (a deferred batch's) */
    size_t nkeys;
} batch;

/* The arrays of a batch kept from one batch to the next (os/bulk.h,
 * mp__scratch): run_entries's, the answers' (the deferred batch borrows
 * them until it is sent, which is before the next batch is run) and the
 * commands'. */
enum {
    WS_TASKS,
    WS_PARSED,
    WS_WAIT_A,
    WS_WAIT_E,
    WS_SEND_A,
    WS_SEND_E,
    WS_JOB,
    WS_PARTS,
    WS_JOBS,
    WS_ARGV,
    WS_LENS,
    WS_AC,
    WS_AV,
    WS_LV,
    WS_REPLIES,
    WS_COUNT
};

typedef struct worker {
    mp__redis *conn;
    const mp_worker_opts *o;
    const char *name;
    char *k_tasks, *k_dead, *k_stop, *k_stats;
    char consumer[96];
    double vis;
    double beat;          /* the heartbeat interval, seconds */
    mp__redis_beat hb;    /* heartbeat and leases */
    mp__redis_exec *exec; /* runs the batches (inline or executors) */
    unsigned maxdel;
    char stop_gen[32];
    unsigned long done;
    unsigned long adapt;     /* prefetch 0: the tasks the next read takes */
    unsigned long adapt_min; /* and its floor: one per executor */
    /* After a lost connection: its own pending entries are read again,
     * from own_from on (see own_pending). */
    bool own;
    char own_from[MP__REDIS_POOL_EID_MAX];
    batch later; /* answers that go out with the next read (flush_later) */
    mp__scratch sc[WS_COUNT];
} worker;

/* Whether the stream has the workers' group (XINFO GROUPS: one flat
 * name/value array per group, "name" first). */
static bool group_exists(worker *w)
{
    redisReply *rep;
    if (mp__redis_cmd(w->conn, MP__RR_ANY_VALUE, &rep, 3,
                      (const char *[]){"XINFO", "GROUPS", w->k_tasks}, NULL) < 0)
        return false;
    bool found = false;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        const redisReply *g = rep->element[i];
        if (g->type == REDIS_REPLY_ARRAY && g->elements >= 2 &&
            g->element[1]->type == REDIS_REPLY_STRING && g->element[1]->len == strlen(GROUP) &&
            memcmp(g->element[1]->str, GROUP, strlen(GROUP)) == 0)
            found = true;
    }
    freeReplyObject(rep);
    return found;
}

static int ensure_group(worker *w)
{
    int rc = mp__redis_cmd(w->conn, MP__RR_STATUS, NULL, 6,
                           (const char *[]){"XGROUP", "CREATE", w->k_tasks, GROUP, "0", "MKSTREAM"},
                           NULL);
    /* BUSYGROUP (another worker made it) reads as a server error. */
    if ((rc == MP_ESERVER || rc == MP_EAGAIN) && group_exists(w))
        rc = 0;
    return rc;
}

/* The stop generation (mp_worker_stop increments it) into buf. */
static int read_stop(worker *w, char buf[32])
{
    redisReply *rep;
    int rc =
        mp__redis_cmd(w->conn, MP__RR_STR_NIL, &rep, 2, (const char *[]){"GET", w->k_stop}, NULL);
    if (rc < 0)
        return rc;
    snprintf(buf, 32, "%.*s", rep->type == REDIS_REPLY_STRING ? (int)rep->len : 0,
             rep->type == REDIS_REPLY_STRING ? rep->str : "");
    freeReplyObject(rep);
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "r:<build-id hex>:<offset hex>:<path>" to a function of this process. */
static void *resolve_ref(const char *s, size_t len)
{
    mp__symref ref = {0};
    size_t i = 2;
    for (; i + 1 < len && s[i] != ':' && ref.build_id_len < MP__BUILD_ID_MAX; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return NULL;
        ref.build_id[ref.build_id_len++] = (uint8_t)(hi << 4 | lo);
    }
    if (ref.build_id_len == 0 || i >= len || s[i++] != ':')
        return NULL; /* without a build-id nothing proves it is the same program */
    size_t digits = 0;
    for (; i < len && s[i] != ':' && digits < 16; i++, digits++) {
        int d = hexval(s[i]);
        if (d < 0)
            return NULL;
        ref.offset = ref.offset << 4 | (uint64_t)d;
    }
    if (digits == 0 || i >= len || s[i++] != ':' || len - i >= MP__MODULE_MAX ||
        memchr(s + i, '\0', len - i))
        return NULL;
    memcpy(ref.path, s + i, len - i);
    void *addr;
    if (mp__sym_decode(&ref, &addr) < 0)
        return NULL;
    return addr;
}

/* The function of task t: a task function, or a parallel-for function for
 * a parallel-for entry (in *ffn). Whether one was found. */
static bool resolve(const worker *w, const mp__redis_task *t, mp_task_fn *fn, mp_for_fn *ffn)
{
    void *addr = NULL;
    *fn = NULL;
    *ffn = NULL;
    if (t->fn[0] == 'n' && t->is_for)
        *ffn = mp__for_lookup(t->fn + 2, t->fn_len - 2);
    else if (t->fn[0] == 'n')
        *fn = mp__task_lookup(t->fn + 2, t->fn_len - 2);
    else if (!w->o->registered_only)
        addr = resolve_ref(t->fn, t->fn_len);
    /* POSIX: functions have data-pointer size. */
    if (addr && t->is_for)
        memcpy(ffn, &addr, sizeof(addr));
    else if (addr)
        memcpy(fn, &addr, sizeof(addr));
    return *fn != NULL || *ffn != NULL;
}

/* Queues entry eid for the acknowledgement, with its client's result list
 * (client "": none) in *key. */
static int queue_entry(worker *w, batch *b, const char *eid, size_t eid_len, const char *client,
                       const char **key)
{
    entry_ref *x = &b->e[b->ne];
    *key = NULL;
    if (eid_len >= MP__REDIS_POOL_EID_MAX)
        return MP_EBADMSG; /* not an id the server makes */
    const entry_ref *prev = b->ne ? &b->e[b->ne - 1] : NULL;
    if (client[0] && prev && prev->k_res && strcmp(prev->client, client) == 0) {
        x->k_res = prev->k_res; /* the entries of a map come in runs */
    } else if (client[0]) {
        char what[64];
        snprintf(what, sizeof(what), "results:%s", client);
        int rc = mp__redis_pool_key(&x->k_res, mp__redis_prefix(w->conn), w->name, what);
        if (rc < 0)
            return rc;
        x->own = true;
    }
    memcpy(x->client, client, strlen(client) + 1); /* parsed: at most 32 */
    memcpy(x->eid, eid, eid_len);
    x->eid_len = eid_len;
    *key = x->k_res;
    b->ne++;
    return 0;
}

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->a[i].rec != b->a[i].head)
            free(b->a[i].rec);
    for (size_t i = 0; i < b->ne; i++)
        if (b->e[i].own)
            free(b->e[i].k_res);
    for (size_t i = 0; i < b->nkeys; i++)
        free(b->keys[i]);
    free(b->keys);
    b->keys = NULL;
    b->nkeys = 0;
    if (b->a)
        memset(b->a, 0, b->cap * sizeof(*b->a));
    memset(b->e, 0, b->ecap * sizeof(*b->e));
    b->n = b->ne = 0;
}

static bool same_key(const answer *x, const answer *y)
{
    return x->k_res && y->k_res && (x->k_res == y->k_res || strcmp(x->k_res, y->k_res) == 0);
}

static void push_arg(const char **argv, size_t *lens, size_t *k, const char *s, size_t len)
{
    argv[*k] = s;
    lens[*k] = len;
    (*k)++;
}

/* The commands that answer a batch: per run of answers to one client an
 * RPUSH of their records and a PEXPIRE of the list, then one XACK and one
 * XDEL of the entries; room for `extra` more commands of up to
 * EXTRA_ARGS arguments after them (the next read). */
typedef struct cmds {
    const char **argv;
    size_t *lens;
    int *ac;
    const char *const **av;
    const size_t **lv;
    int n;    /* commands */
    size_t k; /* arguments used */
    /* The tasks the commands answer, and those of them that failed. */
    uint64_t done, failed;
    char ndone[24], nfailed[24];
} cmds;

#define EXTRA_ARGS 12

/* Whether a result record tells of a failure: the task did not run, or
 * one of its items failed (its own error, an oversize result, a lost
 * executor). */
static bool record_failed(const unsigned char *rec, size_t len)
{
    mp__redis_result r;
    if (mp__redis_result_decode(rec, len, &r) < 0 || r.code != 0)
        return true;
    int32_t code;
    const unsigned char *data;
    size_t ilen;
    while (mp__redis_result_next(&r, &code, &data, &ilen) == 0)
        if (code != 0 || ilen == SIZE_MAX || ilen == MP__REDIS_ITEM_LOST)
            return true;
    return false;
}

/* Counts the answers the commands push into the pool's stats hash (an
 * HINCRBY of done, and of failed when some failed, in the same pipeline:
 * no round trip of their own). */
static void stats_cmds(worker *w, const batch *b, cmds *c)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->a[i].k_res == NULL)
            continue;
        c->done++;
        c->failed += record_failed(b->a[i].rec, b->a[i].rec_len);
    }
    if (c->done == 0)
        return;
    snprintf(c->ndone, sizeof(c->ndone), "%" PRIu64, c->done);
    snprintf(c->nfailed, sizeof(c->nfailed), "%" PRIu64, c->failed);
    for (int f = 0; f < (c->failed ? 2 : 1); f++) {
        size_t start = c->k;
        push_arg(c->argv, c->lens, &c->k, "HINCRBY", 7);
        push_arg(c->argv, c->lens, &c->k, w->k_stats, strlen(w->k_stats));
        push_arg(c->argv, c->lens, &c->k, f ? "failed" : "done", f ? 6 : 4);
        push_arg(c->argv, c->lens, &c->k, f ? c->nfailed : c->ndone,
                 strlen(f ? c->nfailed : c->ndone));
        c->av[c->n] = c->argv + start, c->lv[c->n] = c->lens + start, c->ac[c->n++] = 4;
    }
}

/* Worst case per answer: its own RPUSH (3) and PEXPIRE (3); per entry its
 * id in XACK and XDEL (2); plus their 5 fixed arguments and the two
 * HINCRBY of the stats (8). The records stay b's: c is sent before b is
 * cleared. */
static int answer_cmds(worker *w, const batch *b, int extra, cmds *c)
{
    size_t nargs = 6 * b->n + 2 * b->ne + 13 + (size_t)extra * EXTRA_ARGS,
           ncmd = 2 * b->n + 4 + (size_t)extra, k = 0;
    int n = 0, rc = 0;
    /* One cmds at a time: their arrays are the worker's scratch, written
     * before they are read (not zeroed). */
    const char **argv = mp__scratch_get(&w->sc[WS_ARGV], nargs, sizeof(*argv));
    size_t *lens = mp__scratch_get(&w->sc[WS_LENS], nargs, sizeof(*lens));
    int *ac = mp__scratch_get(&w->sc[WS_AC], ncmd, sizeof(*ac));
    const char *const **av = mp__scratch_get(&w->sc[WS_AV], ncmd, sizeof(*av));
    const size_t **lv = mp__scratch_get(&w->sc[WS_LV], ncmd, sizeof(*lv));
    *c = (cmds){.argv = argv, .lens = lens, .ac = ac, .av = av, .lv = lv};
    if (argv == NULL || lens == NULL || ac == NULL || av == NULL || lv == NULL)
        rc = MP_ENOMEM;
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        const answer *x = &b->a[i];
        if (x->k_res == NULL || (i > 0 && same_key(&b->a[i - 1], x)))
            continue;
        size_t start = k, kl = strlen(x->k_res);
        push_arg(argv, lens, &k, "RPUSH", 5);
        push_arg(argv, lens, &k, x->k_res, kl);
        for (size_t j = i; j < b->n && (j == i || same_key(&b->a[j - 1], &b->a[j])); j++)
            push_arg(argv, lens, &k, (const char *)b->a[j].rec, b->a[j].rec_len);
        av[n] = argv + start, lv[n] = lens + start, ac[n++] = (int)(k - start);
        start = k;
        push_arg(argv, lens, &k, "PEXPIRE", 7);
        push_arg(argv, lens, &k, x->k_res, kl);
        push_arg(argv, lens, &k, RESULT_TTL, strlen(RESULT_TTL));
        av[n] = argv + start, lv[n] = lens + start, ac[n++] = 3;
    }
    for (int cmd = 0; rc == 0 && b->ne > 0 && cmd < 2; cmd++) {
        size_t start = k;
        push_arg(argv, lens, &k, cmd == 0 ? "XACK" : "XDEL", 4);
        push_arg(argv, lens, &k, w->k_tasks, strlen(w->k_tasks));
        if (cmd == 0)
            push_arg(argv, lens, &k, GROUP, strlen(GROUP));
        for (size_t i = 0; i < b->ne; i++)
            push_arg(argv, lens, &k, b->e[i].eid, b->e[i].eid_len);
        av[n] = argv + start, lv[n] = lens + start, ac[n++] = (int)(k - start);
    }
    c->n = n;
    c->k = k;
    if (rc == 0)
        stats_cmds(w, b, c);
    return rc;
}

/* Sends a batch's answers (one round trip) and clears it. */
static int flush(worker *w, batch *b)
{
    cmds c;
    int rc = answer_cmds(w, b, 0, &c);
    if (rc == 0 && c.n > 0)
        rc = mp__redis_pipeline(w->conn, MP__RR_INT, c.n, c.ac, (const char *const *const *)c.av,
                                (const size_t *const *)c.lv, NULL);
    if (rc == 0)
        mp__redis_beat_count(&w->hb, c.done, c.failed);
    batch_clear(b);
    return rc;
}

/* The answers of the last batch read with XREADGROUP wait for the next
 * read, and go out in its round trip (before it, in the same pipeline):
 * a worker with a backlog makes one round trip per batch, not two. Any
 * other round trip of the loop that could wait sends them first. */
static void later_free(worker *w)
{
    if (w->later.a || w->later.e)
        batch_clear(&w->later); /* its arrays are the worker's (WS_SEND_*) */
    memset(&w->later, 0, sizeof(w->later));
}

/* Moves b to w->later (which is empty). Its answers borrow their
 * result-list keys from the batch's waiting entries, freed when
 * run_entries returns: later keeps copies (its entries need none: only
 * their ids are sent). Without memory, b is sent now. */
static int defer(worker *w, batch *b)
{
    b->keys = malloc((b->n + 1) * sizeof(*b->keys));
    if (b->keys == NULL)
        return flush(w, b);
    const char *orig = NULL;
    for (size_t i = 0; i < b->n; i++) {
        if (b->a[i].k_res == NULL)
            continue;
        if (b->a[i].k_res != orig) {
            orig = b->a[i].k_res;
            char *copy = strdup(orig);
            if (copy == NULL)
                return flush(w, b); /* the keys made so far are freed with b */
            b->keys[b->nkeys++] = copy;
        }
        b->a[i].k_res = b->keys[b->nkeys - 1];
    }
    for (size_t i = 0; i < b->ne; i++) {
        if (b->e[i].own)
            free(b->e[i].k_res);
        b->e[i].k_res = NULL;
        b->e[i].own = false;
    }
    w->later = *b;
    *b = (batch){0};
    return 0;
}

static int flush_later(worker *w)
{
    if (w->later.n == 0 && w->later.ne == 0) {
        later_free(w);
        return 0;
    }
    int rc = flush(w, &w->later);
    later_free(w);
    return rc;
}

/* Copies the entry to the dead-letter stream with the reason. */
static int dead_letter(worker *w, const redisReply *fields, const char *reason,
                       long long deliveries)
{
    size_t nf = fields->elements, argc = 3 + nf + 4;
    const char **argv = malloc(argc * sizeof(*argv));
    size_t *lens = malloc(argc * sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        return MP_ENOMEM;
    }
    char nd[24];
    snprintf(nd, sizeof(nd), "%lld", deliveries);
    const char *head[] = {"XADD", w->k_dead, "*"}, *tail[] = {"reason", reason, "deliveries", nd};
    for (size_t i = 0; i < 3; i++)
        argv[i] = head[i], lens[i] = strlen(head[i]);
    for (size_t i = 0; i < nf; i++) {
        const redisReply *e = fields->element[i];
        bool str = e->type == REDIS_REPLY_STRING;
        argv[3 + i] = str ? e->str : "";
        lens[3 + i] = str ? e->len : 0;
    }
    for (size_t i = 0; i < 4; i++)
        argv[3 + nf + i] = tail[i], lens[3 + nf + i] = strlen(tail[i]);
    int rc = mp__redis_cmd(w->conn, MP__RR_STR, NULL, (int)argc, argv, lens);
    free(argv);
    free(lens);
    return rc;
}

/* An entry [id, [field, value, ...]] of a stream reply, checked. */
static bool entry_ok(const redisReply *e)
{
    return e && e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
           e->element[0]->type == REDIS_REPLY_STRING && e->element[1]->type == REDIS_REPLY_ARRAY &&
           e->element[1]->elements % 2 == 0 && e->element[1]->elements <= 64;
}

/* A batch while it runs: answers waiting for their job (job[i] for
 * wait.a[i]; NULL: a final record already) and answers ready to be sent
 * with the entries to acknowledge. */
typedef struct running {
    worker *w;
    batch wait, send;
    mp__redis_job **job;
} running;

/* Parses entry e (its answers at r->wait from index at, its task in *t,
 * its parts in parts[]) and queues it: a final record for each task that
 * will not run (past max_deliveries, an unknown function), else a job per
 * task for the executors (appended to jobs). A malformed entry goes to
 * the dead-letter stream unanswered (only acknowledged). */
static int prepare(worker *w, running *r, const redisReply *e, long long deliveries,
                   const mp__redis_task *t, bool parsed, mp__redis_task *parts, mp__redis_job *jobs,
                   size_t *njobs)
{
    const redisReply *id = e->element[0], *fields = e->element[1];
    batch *b = &r->wait;
    const char *key = NULL;
    if (!parsed) {
        mp__debug("pool: malformed task %.*s on %s", (int)id->len, id->str, w->k_tasks);
        int rc = dead_letter(w, fields, "malformed", deliveries);
        return rc < 0 ? rc : queue_entry(w, b, id->str, id->len, "", &key);
    }
    uint64_t count = mp__redis_task_count(t);
    bool lost = deliveries > (long long)w->maxdel;
    int rc = lost ? dead_letter(w, fields, "worker lost", deliveries) : 0;
    if (rc == 0)
        rc = queue_entry(w, b, id->str, id->len, t->client, &key);
    if (rc < 0)
        return rc;
    size_t ei = b->ne - 1;
    b->e[ei].left = (size_t)count;
    mp_task_fn fn = NULL;
    mp_for_fn ffn = NULL;
    bool found = !lost && resolve(w, t, &fn, &ffn);
    if (!lost && !found)
        mp__debug("pool: unknown function %.*s", (int)t->fn_len, t->fn);
    for (uint64_t j = 0; j < count; j++) {
        mp__redis_task_part(t, j, &parts[j]);
        size_t ai = b->n++;
        answer *x = &b->a[ai];
        x->k_res = key;
        x->rec = x->head;
        x->rec_len = MP__REDIS_RESULT_HEAD;
        x->entry = ei;
        r->job[ai] = NULL;
        if (lost) {
            mp__redis_result_put_head(x->head, parts[j].id, MP_EWORKERLOST, 0);
        } else if (!found) {
            mp__redis_result_put_head(x->head, parts[j].id, MP_ENOFUNC, 0);
        } else {
            jobs[*njobs] = (mp__redis_job){.t = &parts[j], .fn = fn, .ffn = ffn};
            r->job[ai] = &jobs[(*njobs)++];
        }
        if (!lost)
            w->done++;
    }
    return 0;
}

/* How many times the entry was delivered (XPENDING), or 1 if unknown. */
static long long deliveries_of(worker *w, const redisReply *id)
{
    redisReply *rep;
    const char *argv[] = {"XPENDING", w->k_tasks, GROUP, id->str, id->str, "1"};
    size_t lens[] = {8, strlen(w->k_tasks), strlen(GROUP), id->len, id->len, 1};
    if (mp__redis_cmd(w->conn, MP__RR_ANY_VALUE, &rep, 6, argv, lens) < 0)
        return 1;
    long long n = 1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 4 &&
        rep->element[0]->element[3]->type == REDIS_REPLY_INTEGER)
        n = rep->element[0]->element[3]->integer;
    freeReplyObject(rep);
    return n;
}

/* The entries of an XREADGROUP reply of one stream (at most want), or
 * NULL. */
static const redisReply *read_entries(const redisReply *rep, unsigned long want)
{
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2 &&
        rep->element[0]->element[1]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->element[1]->elements <= want)
        return rep->element[0]->element[1];
    return NULL;
}

static void adapt(worker *w, size_t got, unsigned long want, int64_t ran_ns)
{
    if (w->o->prefetch)
        return;
    if (ran_ns >= ADAPT_NS)
        w->adapt = w->adapt_min;
    else if (got == want && w->adapt < ADAPT_MAX)
        w->adapt = w->adapt * 2 > ADAPT_MAX ? ADAPT_MAX : w->adapt * 2;
}

/* The tasks the next read (or reap) takes. */
static unsigned long read_size(const worker *w)
{
    unsigned long want = w->o->prefetch ? w->o->prefetch : w->adapt;
    /* done may pass max_tasks by the rest of a packed entry. */
    if (w->o->max_tasks && w->o->max_tasks - w->done < want && w->done < w->o->max_tasks)
        want = w->o->max_tasks - w->done;
    return want;
}

/* Moves the answers whose job is done (all with every) to the send list,
 * each with its record (MP_ENOMEM when none could be made), and the
 * entries all of whose answers moved to its acknowledgements. */
static void take_done(running *r, bool every)
{
    for (size_t i = 0; i < r->wait.n; i++) {
        mp__redis_job *j = r->job[i];
        answer *x = &r->wait.a[i];
        if (x->rec == NULL || (j && !j->done && !every))
            continue;
        answer *y = &r->send.a[r->send.n++];
        *y = *x;
        y->rec = y->head;
        y->rec_len = MP__REDIS_RESULT_HEAD;
        if (j && j->rec) {
            y->rec = j->rec;
            y->rec_len = j->rec_len;
            j->rec = NULL;
        } else if (j) {
            mp__redis_result_put_head(y->head, j->t->id, MP_ENOMEM, 0);
        } else {
            memcpy(y->head, x->head, sizeof(y->head));
        }
        x->rec = NULL; /* moved */
        r->wait.e[x->entry].left--;
        /* Cancelled, or its client gone, while it ran: only the ack. */
        if (y->k_res && mp__redis_beat_dropped(&r->w->hb, r->wait.e[x->entry].at))
            y->k_res = NULL;
    }
    for (size_t i = 0; i < r->wait.ne; i++) {
        entry_ref *e = &r->wait.e[i];
        if (e->left > 0 || e->moved)
            continue;
        entry_ref *y = &r->send.e[r->send.ne++];
        *y = *e;
        y->own = false; /* the key stays the waiting entry's */
        e->moved = true;
    }
}

/* While a batch runs: what ran is answered now rather than after the
 * whole batch (every half visibility timeout). */
static int flush_done(void *arg)
{
    running *r = arg;
    take_done(r, false);
    return flush(r->w, &r->send);
}

/* Parses entry e into *t: whether it is a well-formed task entry. */
static bool parse_entry(const redisReply *e, mp__redis_task *t)
{
    const redisReply *fields = e->element[1];
    const char *f[64];
    size_t lens[64];
    for (size_t i = 0; i < fields->elements; i++) {
        /* A non-string field is refused by the parser (NULL). */
        bool str = fields->element[i]->type == REDIS_REPLY_STRING;
        f[i] = str ? fields->element[i]->str : NULL;
        lens[i] = str ? fields->element[i]->len : 0;
    }
    return mp__redis_task_parse(f, lens, fields->elements, t) == 0;
}

/* Runs entries and answers them: the number handled, or an error. want:
 * how many a read asked for (the adaptive read size follows it), or 0 for
 * claimed entries (their delivery counts are read). While they wait,
 * their leases are renewed by the heartbeat. */
static int run_entries(worker *w, const redisReply *entries, unsigned long want)
{
    bool claimed = want == 0;
    size_t n = entries->elements, total = 0;
    /* Claimed entries may take long: what waits for the next read goes
     * now. */
    int rc = flush_later(w);
    if (rc < 0)
        return rc;
    /* Each entry is parsed once, here: its tasks size the arrays. */
    mp__redis_task *tasks = mp__scratch_array(&w->sc[WS_TASKS], n + 1, sizeof(*tasks));
    bool *parsed = mp__scratch_array(&w->sc[WS_PARSED], n + 1, sizeof(*parsed));
    for (size_t i = 0; tasks && parsed && i < n; i++)
        if (entry_ok(entries->element[i])) {
            parsed[i] = parse_entry(entries->element[i], &tasks[i]);
            total += parsed[i] ? (size_t)mp__redis_task_count(&tasks[i]) : 1;
        }
    /* The deferred batch was sent (flush_later): the answers' scratch is
     * free again. */
    running r = {.w = w,
                 .wait = {.a = mp__scratch_array(&w->sc[WS_WAIT_A], total + 1, sizeof(answer)),
                          .cap = total,
                          .e = mp__scratch_array(&w->sc[WS_WAIT_E], n + 1, sizeof(entry_ref)),
                          .ecap = n},
                 .send = {.a = mp__scratch_array(&w->sc[WS_SEND_A], total + 1, sizeof(answer)),
                          .cap = total,
                          .e = mp__scratch_array(&w->sc[WS_SEND_E], n + 1, sizeof(entry_ref)),
                          .ecap = n},
                 .job = mp__scratch_array(&w->sc[WS_JOB], total + 1, sizeof(*r.job))};
    mp__redis_task *parts = mp__scratch_array(&w->sc[WS_PARTS], total + 1, sizeof(*parts));
    mp__redis_job *jobs = mp__scratch_array(&w->sc[WS_JOBS], total + 1, sizeof(*jobs));
    if (!tasks || !parsed || !r.wait.a || !r.wait.e || !r.send.a || !r.send.e || !r.job || !parts ||
        !jobs || mp__redis_beat_hold(&w->hb, entries) < 0)
        return MP_ENOMEM;
    int64_t t0 = mp__now_ns();
    size_t njobs = 0, nparts = 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        const redisReply *e = entries->element[i];
        if (!entry_ok(e))
            continue;
        size_t before = r.wait.n, jobs0 = njobs;
        const char *key;
        /* A task cancelled, or of a client gone, is only acknowledged. */
        int h = mp__redis_beat_dropped(&w->hb, i)
                    ? queue_entry(w, &r.wait, e->element[0]->str, e->element[0]->len, "", &key)
                    : prepare(w, &r, e, claimed ? deliveries_of(w, e->element[0]) : 1, &tasks[i],
                              parsed[i], parts + nparts, jobs, &njobs);
        nparts += r.wait.n - before;
        if (h >= 0)
            r.wait.e[r.wait.ne - 1].at = i;
        for (size_t k = jobs0; k < njobs; k++)
            jobs[k].hb = &w->hb, jobs[k].entry = i;
        rc = h < 0 ? h : rc + 1;
    }
    /* The jobs run from one array (the executors take it in one hand-off). */
    int x = mp__redis_exec_run(w->exec, jobs, njobs, w->vis / 2, flush_done, &r);
    rc = rc < 0 ? rc : x < 0 ? x : rc;
    if (!claimed)
        adapt(w, entries->elements, want, mp__now_ns() - t0);
    /* Even after a failure: what ran is answered. */
    take_done(&r, x >= 0);
    /* Read by take_new: the answers go with the next read. */
    int f = claimed ? flush(w, &r.send) : defer(w, &r.send);
    rc = rc < 0 ? rc : f < 0 ? f : rc;
    mp__redis_beat_release(&w->hb);
    batch_clear(&r.wait);
    for (size_t i = 0; i < njobs; i++)
        free(jobs[i].rec);
    return rc;
}

/* Waits up to block_ms for new entries (up to the prefetch count) and
 * handles them: the number handled, 0 (none), or an error. */
static int take_new(worker *w, long block_ms)
{
    char ms[24], count[24];
    snprintf(ms, sizeof(ms), "%ld", block_ms);
    unsigned long want = read_size(w);
    snprintf(count, sizeof(count), "%lu", want);
    const char *argv[] = {"XREADGROUP", "GROUP", GROUP,     w->consumer, "COUNT", count,
                          "BLOCK",      ms,      "STREAMS", w->k_tasks,  ">"};
    redisReply *rep = NULL;
    int rc;
    if (w->later.a || w->later.e) {
        /* The last batch's answers, then the read, in one round trip. */
        cmds c;
        redisReply **replies = NULL;
        rc = answer_cmds(w, &w->later, 1, &c);
        if (rc == 0 && (replies = mp__scratch_array(&w->sc[WS_REPLIES], (size_t)c.n + 1,
                                                    sizeof(*replies))) == NULL)
            rc = MP_ENOMEM;
        if (rc == 0) {
            size_t start = c.k;
            for (size_t i = 0; i < 11; i++)
                push_arg(c.argv, c.lens, &c.k, argv[i], strlen(argv[i]));
            c.av[c.n] = c.argv + start, c.lv[c.n] = c.lens + start, c.ac[c.n++] = 11;
            rc = mp__redis_pipeline_block(
                w->conn, MP__RR_ANY_VALUE, c.n, c.ac, (const char *const *const *)c.av,
                (const size_t *const *)c.lv, replies, (double)block_ms / 1000.0);
        }
        if (rc == 0) {
            rep = replies[c.n - 1];
            replies[c.n - 1] = NULL;
            mp__redis_beat_count(&w->hb, c.done, c.failed);
        }
        for (int i = 0; replies && i < c.n; i++)
            if (replies[i])
                freeReplyObject(replies[i]);
        /* Sent or not, they are not sent again: entries whose answers
         * were lost stay pending on this consumer and run again. */
        later_free(w);
    } else {
        rc = mp__redis_begin(w->conn);
        if (rc < 0)
            return rc;
        rc = mp__redis_call(w->conn, MP__RR_ANY_VALUE, &rep, (double)block_ms / 1000.0, 11, argv,
                            NULL);
        mp__redis_end(w->conn);
    }
    if (rc < 0)
        return rc;
    const redisReply *entries = read_entries(rep, want);
    rc = 0;
    if (entries && entries->elements > 0)
        rc = run_entries(w, entries, want);
    freeReplyObject(rep);
    return rc;
}

/* After the connection was lost (the server restarted with its data, or
 * the network broke), the entries this worker had taken and not answered
 * are still pending on its consumer, and no heartbeat of a living worker
 * lets another take them before the visibility timeout. They are read
 * again (XREADGROUP from an id, not ">", returns the consumer's own
 * pending entries) and run at once; entries deleted meanwhile come back
 * without fields and are only acknowledged. The number handled, 0 once
 * none is left, or an error. */
static int own_pending(worker *w)
{
    unsigned long want = read_size(w);
    char count[24];
    snprintf(count, sizeof(count), "%lu", want);
    const char *argv[] = {"XREADGROUP", "GROUP",   GROUP,      w->consumer, "COUNT",
                          count,        "STREAMS", w->k_tasks, w->own_from};
    redisReply *rep;
    int rc = mp__redis_cmd(w->conn, MP__RR_ANY_VALUE, &rep, 9, argv, NULL);
    if (rc < 0)
        return rc;
    const redisReply *entries = read_entries(rep, want);
    size_t n = entries ? entries->elements : 0;
    if (n == 0) {
        w->own = false;
        freeReplyObject(rep);
        return 0;
    }
    const redisReply *last = entries->element[n - 1];
    if (last->type == REDIS_REPLY_ARRAY && last->elements >= 1 &&
        last->element[0]->type == REDIS_REPLY_STRING &&
        last->element[0]->len < MP__REDIS_POOL_EID_MAX) {
        memcpy(w->own_from, last->element[0]->str, last->element[0]->len);
        w->own_from[last->element[0]->len] = '\0';
    } else {
        w->own = false; /* not a reply to go on from */
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const redisReply *e = entries->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
            e->element[0]->type == REDIS_REPLY_STRING && e->element[1]->type == REDIS_REPLY_NIL)
            rc = mp__redis_cmd(w->conn, MP__RR_INT, NULL, 4,
                               (const char *[]){"XACK", w->k_tasks, GROUP, e->element[0]->str},
                               NULL);
    }
    if (rc == 0) {
        mp__debug("pool: %s runs again %zu entries it held when the connection broke", w->consumer,
                  n);
        rc = run_entries(w, entries, 0);
        rc = rc == 0 ? 1 : rc; /* some were handled (acknowledged) */
    }
    freeReplyObject(rep);
    return rc;
}

static bool is_conn_error(int rc)
{
    return rc == MP_ECONNRESET || rc == MP_ECONNREFUSED || rc == MP_ETIMEDOUT || rc == MP_EIO ||
           rc == MP_EAGAIN;
}

static int worker_init(worker *w, mp_manager *m, const char *name, const mp_worker_opts *o)
{
    size_t nlen = name ? strnlen(name, MP_MANAGER_NAME_MAX + 1) : 0;
    w->conn = mp__manager_redis_conn(m);
    const char *f = "mp_worker_serve";
    if (w->conn == NULL)
        return mp__fail(MP_EINVAL, "%s: m is not a Redis manager", f);
    if (nlen == 0 || nlen > MP_MANAGER_NAME_MAX)
        return mp__fail(MP_EINVAL, "%s: the pool's name is %s (1..%d bytes)", f,
                        name ? (nlen ? "too long" : "empty") : "NULL", MP_MANAGER_NAME_MAX);
    if (!(o->idle_timeout >= 0) || !(o->visibility_timeout >= 0) || !(o->heartbeat_interval >= 0))
        return mp__fail(MP_EINVAL,
                        "%s: opts->idle_timeout %g, visibility_timeout %g and heartbeat_interval "
                        "%g must be >= 0",
                        f, o->idle_timeout, o->visibility_timeout, o->heartbeat_interval);
    if (o->executors < MP_WORKER_INLINE || o->executors > 1024)
        return mp__fail(MP_EINVAL, "%s: opts->executors is %d (MP_WORKER_INLINE, 0 or 1..1024)", f,
                        o->executors);
    w->o = o;
    w->name = name;
    w->vis = o->visibility_timeout > 0 ? o->visibility_timeout : 30;
    /* A lease must be renewed several times within the visibility
     * timeout, and the heartbeat key must outlive the longest wait of the
     * loop on the shared connection (half an interval). */
    w->beat = o->heartbeat_interval > 0 ? o->heartbeat_interval : 0.5;
    w->beat = w->beat > w->vis / 4 ? w->vis / 4 : w->beat < 0.01 ? 0.01 : w->beat;
    w->maxdel = o->max_deliveries ? o->max_deliveries : 3;
    w->adapt = 1;
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(w->consumer, sizeof(w->consumer), "%s:%d:%p", host, (int)getpid(), (void *)w);
    const char *prefix = mp__redis_prefix(w->conn);
    if (mp__redis_pool_key(&w->k_tasks, prefix, name, "tasks") < 0 ||
        mp__redis_pool_key(&w->k_dead, prefix, name, "dead") < 0 ||
        mp__redis_pool_key(&w->k_stop, prefix, name, "stop") < 0 ||
        mp__redis_pool_key(&w->k_stats, prefix, name, "stats") < 0)
        return MP_ENOMEM;
    return 0;
}

static bool stopping(worker *w, int64_t idle_since, int64_t *last_check)
{
    const mp_worker_opts *o = w->o;
    int64_t now = mp__now_ns();
    if ((o->stop && __atomic_load_n(o->stop, __ATOMIC_ACQUIRE)) ||
        (o->max_tasks && w->done >= o->max_tasks) ||
        (o->idle_timeout > 0 && (double)(now - idle_since) / 1e9 >= o->idle_timeout))
        return true;
    if (now - *last_check < 500000000)
        return false;
    *last_check = now;
    char gen[32];
    return read_stop(w, gen) == 0 && strcmp(gen, w->stop_gen) != 0;
}

/* Claims one entry idle past the visibility timeout and runs it: 1 when
 * one was handled, 0 when none was idle, or an error. */
static int reclaim(worker *w)
{
    char idle[24];
    snprintf(idle, sizeof(idle), "%lld", (long long)(w->vis * 1000));
    redisReply *rep;
    int rc = mp__redis_cmd(
        w->conn, MP__RR_ANY_VALUE, &rep, 8,
        (const char *[]){"XAUTOCLAIM", w->k_tasks, GROUP, w->consumer, idle, "0-0", "COUNT", "1"},
        NULL);
    if (rc < 0)
        return rc;
    rc = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
        rep->element[1]->type == REDIS_REPLY_ARRAY && rep->element[1]->elements == 1 &&
        entry_ok(rep->element[1]->element[0]))
        rc = run_entries(w, rep->element[1], 0);
    freeReplyObject(rep);
    return rc;
}

/* Claims the entries of workers whose heartbeat expired and runs them:
 * the number handled, 0 (none), or an error. */
static int reap(worker *w)
{
    redisReply *claimed;
    int rc = mp__redis_beat_reap(&w->hb, read_size(w), &claimed);
    if (rc < 0 || claimed == NULL)
        return rc;
    mp__debug("pool: %s claims %zu entries of dead workers", w->consumer, claimed->elements);
    rc = run_entries(w, claimed, 0);
    freeReplyObject(claimed);
    return rc;
}

/* When each periodic duty of the loop is due next (mp__now_ns). */
typedef struct schedule {
    int64_t reap, claim;
} schedule;

/* One step: the entries of dead workers, or one idle past the visibility
 * timeout, when such a check is due (and again at once while it finds
 * some); else new entries. */
static int step(worker *w, schedule *next)
{
    int64_t now = mp__now_ns(), beat_ns = (int64_t)(w->beat * 1e9);
    /* The last batch's answers wait for no duty's round trip. */
    int rc = w->own || now >= next->reap || now >= next->claim ? flush_later(w) : 0;
    if (rc == 0)
        rc = mp__redis_beat_due(&w->hb);
    if (rc == 0 && w->own && (rc = own_pending(w)) != 0)
        return rc;
    if (rc == 0 && now >= next->reap && (rc = reap(w)) == 0)
        next->reap = now + beat_ns;
    if (rc == 0 && now >= next->claim && (rc = reclaim(w)) == 0) {
        double every = w->vis / 2 < 1.0 ? w->vis / 2 : 1.0;
        next->claim = now + (int64_t)(every * 1e9);
    }
    if (rc != 0)
        return rc;
    int64_t until = next->reap < next->claim ? next->reap : next->claim;
    long ms = (long)((until - now) / 1000000), most = (long)(beat_ns / 2000000);
    /* The heartbeat thread shares the connection: a read holds it for
     * half an interval at most. */
    ms = ms < 1 ? 1 : ms > most ? most : ms > 500 ? 500 : ms;
    return take_new(w, ms < 1 ? 1 : ms);
}

static int serve(worker *w)
{
    int rc = ensure_group(w);
    if (rc == 0)
        rc = read_stop(w, w->stop_gen);
    /* Executors are forked before the heartbeat thread starts. */
    if (rc == 0)
        rc = mp__redis_exec_open(&w->exec, w->o->executors, w->o->ctx);
    if (rc == 0) {
        /* A worker with executors reads at least a task for each. */
        w->adapt_min = mp__redis_exec_width(w->exec);
        w->adapt = w->adapt_min;
        rc =
            mp__redis_beat_start(&w->hb, w->conn, w->name, w->k_tasks, w->consumer, w->beat,
                                 w->o->executors == MP_WORKER_INLINE ? 0u : (unsigned)w->adapt_min);
    }
    int64_t idle_since = mp__now_ns(), last_check = idle_since;
    schedule next = {0, 0};
    bool fixed_group = false;
    while (rc == 0 && !stopping(w, idle_since, &last_check)) {
        rc = step(w, &next);
        if (rc > 0) {
            idle_since = mp__now_ns();
            fixed_group = false;
            rc = 0;
        } else if (rc == MP_ESERVER && !fixed_group) {
            /* NOGROUP: the server lost its data (restart without
             * persistence) or someone deleted the stream. */
            fixed_group = true;
            rc = ensure_group(w);
        } else if (rc < 0 && is_conn_error(rc) && mp__redis_reconnects(w->conn)) {
            mp__debug("pool: worker waits for the server (%s)", mp_err_name(rc));
            usleep(200000);
            rc = 0;
            fixed_group = false;
            w->own = true; /* what it held is still its own: run it again */
            memcpy(w->own_from, "0", 2);
        }
    }
    /* Answered before the heartbeat's leave removes the consumer. */
    int f = flush_later(w);
    rc = rc < 0 ? rc : f < 0 && !is_conn_error(f) ? f : rc;
    mp__redis_beat_stop(&w->hb);
    mp__redis_exec_close(w->exec);
    for (int i = 0; i < WS_COUNT; i++)
        mp__scratch_free(&w->sc[i]);
    return rc;
}

int mp__redis_pool_worker_serve(struct mp_manager *m, const char *pool_name,
                                const mp_worker_opts *opts)
{
    mp_worker_opts defaults = {0};
    worker w = {0};
    int rc = worker_init(&w, m, pool_name, opts ? opts : &defaults);
    if (rc == 0)
        rc = serve(&w);
    free(w.k_tasks);
    free(w.k_dead);
    free(w.k_stop);
    free(w.k_stats);
    return rc;
}

int mp__redis_pool_worker_stop(struct mp_manager *m, const char *pool_name)
{
    mp__redis *conn = mp__manager_redis_conn(m);
    size_t nlen = pool_name ? strnlen(pool_name, MP_MANAGER_NAME_MAX + 1) : 0;
    if (conn == NULL)
        return mp__fail(MP_EINVAL, "mp_worker_stop: m is not a Redis manager");
    if (nlen == 0 || nlen > MP_MANAGER_NAME_MAX)
        return mp__fail(MP_EINVAL, "mp_worker_stop: the pool's name is %s (1..%d bytes)",
                        pool_name ? (nlen ? "too long" : "empty") : "NULL", MP_MANAGER_NAME_MAX);
    char *k;
    int rc = mp__redis_pool_key(&k, mp__redis_prefix(conn), pool_name, "stop");
    if (rc < 0)
        return rc;
    rc = mp__redis_cmd(conn, MP__RR_INT, NULL, 2, (const char *[]){"INCR", k}, NULL);
    free(k);
    return rc;
}
