/* The distributed pool's client: creation, task submission (XADD on the
 * pool's stream, pipelined; apply_async tasks held while others are
 * outstanding go through redis/redis_pool_sender.c), and the pump that
 * takes results off the client's list
 * and hands them to their mp_async by task id. Results are untrusted:
 * each passes mp__redis_result_decode, and ids that are not outstanding
 * (duplicates of an at-least-once delivery, or of an abandoned task) are
 * dropped. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "os/bulk.h"
#include "os/pidfd.h"
#include "redis/redis_pool.h"

static int server_run_id(mp__redis_pool *p, char out[48]);

/* Results taken per LPOP when draining without waiting. */
#define DRAIN 256 /* also in drain()'s LRANGE */

int mp__redis_pool_check(mp_pool *p, mp__redis_pool **out)
{
    mp__redis_pool *rp = (mp__redis_pool *)p;
    if (rp->owner != mp__self_pid())
        return MP_EPERM;
    *out = rp;
    return 0;
}

static void make_client_id(char out[MP__REDIS_POOL_CLIENT_MAX + 1])
{
    uint64_t v[2] = {0, 0};
    if (getrandom(v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
        v[0] = (uint64_t)mp__self_pid() << 32 ^ (uint64_t)time(NULL);
        v[1] = (uint64_t)mp__now_ns();
    }
    snprintf(out, MP__REDIS_POOL_CLIENT_MAX + 1, "%016" PRIx64 "%016" PRIx64, v[0], v[1]);
}

static bool opts_are_remote_only(const mp_pool_opts *o)
{
    return o->processes == 0 && !o->initializer && !o->initarg && o->maxtasksperchild == 0 &&
           o->task_timeout == 0 && o->start_method == 0 && !o->threads;
}

/* The sender thread's periodic duty: the client's heartbeat (a failure
 * is the next pool call's to meet). */
static void client_tick(mp__redis_pool *p)
{
    (void)mp__redis_client_beat(p);
}

int mp__redis_pool_create(mp_pool **out, const mp_pool_opts *o)
{
    mp__redis *conn = mp__manager_redis_conn(o->manager);
    size_t nlen = o->name ? strnlen(o->name, MP_MANAGER_NAME_MAX + 1) : 0;
    const char *f = "mp_pool_create";
    if (conn == NULL)
        return mp__fail(MP_EINVAL, "%s: opts->manager is not a Redis manager", f);
    if (nlen == 0 || nlen > MP_MANAGER_NAME_MAX)
        return mp__fail(MP_EINVAL,
                        "%s: opts->name is %s (a distributed pool needs a name of 1..%d bytes)", f,
                        o->name ? "too long" : "NULL", MP_MANAGER_NAME_MAX);
    if (!opts_are_remote_only(o))
        return mp__fail(MP_EINVAL,
                        "%s: with opts->manager, processes, initializer, initarg, "
                        "maxtasksperchild, task_timeout, start_method and threads must be 0 (the "
                        "workers are mp_worker_serve calls elsewhere: set them there)",
                        f);
    mp__redis_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return MP_ENOMEM;
    p->head.backend = &mp__redis_pool_backend;
    p->owner = mp__self_pid();
    p->next_id = p->base = 1;
    make_client_id(p->client);
    char res[64], cli[64], can[64];
    snprintf(res, sizeof(res), "results:%s", p->client);
    snprintf(cli, sizeof(cli), "client:%s", p->client);
    snprintf(can, sizeof(can), "cancel:%s", p->client);
    const char *prefix = mp__redis_prefix(conn);
    if (mp__redis_pool_key(&p->k_tasks, prefix, o->name, "tasks") < 0 ||
        mp__redis_pool_key(&p->k_results, prefix, o->name, res) < 0 ||
        mp__redis_pool_key(&p->k_client, prefix, o->name, cli) < 0 ||
        mp__redis_pool_key(&p->k_cancel, prefix, o->name, can) < 0) {
        free(p->k_tasks);
        free(p->k_results);
        free(p->k_client);
        free(p);
        return MP_ENOMEM;
    }
    mp__redis_ref(conn);
    p->conn = conn;
    mp__pool_meter_init(&p->meter, o);
    server_run_id(p, p->run_id); /* "" if it fails: the first check sets it */
    /* Before any task: workers drop the tasks of a client without a key.
     * If it fails, the first submission beats again (and fails alike).
     * Then the sender's thread keeps the lease, whatever the caller does. */
    mp__redis_client_beat(p);
    p->tx.tick = client_tick;
    p->tx.tick_ns = (int64_t)MP__REDIS_POOL_CLIENT_LEASE_MS * 1000000 / 3;
    mp__redis_sender_start(p);
    *out = (mp_pool *)p;
    return 0;
}

/* mp_async_fd and mp_imap_fd are not offered (results arrive on a Redis
 * list that only a call of the client reads): MP_ENOSYS; mp_wait and
 * mp_async_wait_any look at such results every slice instead.
 * mp_pool_broken_reason is not offered (a distributed pool does not
 * break: its workers are elsewhere): MP_ENOSYS. */
const mp__pool_backend mp__redis_pool_backend = {
    .name = "redis",
    .create = mp__redis_pool_create,
    .apply_async = mp__redis_pool_apply_async,
    .map_async = mp__redis_pool_map_async,
    .parallel_for = mp__redis_pool_for,
    .imap = mp__redis_pool_imap,
    .close = mp__redis_pool_close,
    .terminate = mp__redis_pool_terminate,
    .join = mp__redis_pool_join,
    .poll = mp__redis_pool_poll,
    .pids = mp__redis_pool_pids,
    .destroy = mp__redis_pool_destroy,
    .async_wait = mp__redis_async_wait,
    .async_get = mp__redis_async_get,
    .async_ready = mp__redis_async_ready,
    .async_successful = mp__redis_async_successful,
    .async_error = mp__redis_async_error,
    .async_destroy = mp__redis_async_destroy,
    .async_cancel = mp__redis_async_cancel,
    .imap_next = mp__redis_imap_next,
    .imap_destroy = mp__redis_imap_destroy,
    .imap_item_size = mp__redis_imap_item_size,
    .worker_serve = mp__redis_pool_worker_serve,
    .worker_stop = mp__redis_pool_worker_stop,
};

/* Room for k more slots, after dropping the answered ones at the front. */
static int reserve_slots(mp__redis_pool *p, size_t k)
{
    size_t used = (size_t)(p->next_id - p->base), skip = 0;
    while (skip < used && p->slots[skip].a == NULL)
        skip++;
    if (skip) {
        memmove(p->slots, p->slots + skip, (used - skip) * sizeof(*p->slots));
        p->base += skip;
        used -= skip;
    }
    if (used + k <= p->slots_cap)
        return 0;
    size_t cap = p->slots_cap ? p->slots_cap : 64;
    while (cap < used + k)
        cap *= 2;
    /* A task's slot is 32 bytes, written as it goes out: os/bulk.h. */
    mp__redis_slot *s = cap <= SIZE_MAX / sizeof(*s)
                            ? mp__bulk_resize(p->slots, p->slots_cap * sizeof(*s), cap * sizeof(*s))
                            : NULL;
    if (s == NULL)
        return MP_ENOMEM;
    p->slots = s;
    p->slots_cap = cap;
    return 0;
}

/* An entry id "<ms>-<seq>" as XADD * makes them; anything else (a seq
 * past 32 bits included) leaves *ms, *seq at 0-0, unknown. */
static void parse_eid(const char *s, size_t len, uint64_t *ms, uint32_t *seq)
{
    uint64_t v[2] = {0, 0};
    size_t i = 0, digits[2] = {0, 0};
    for (int part = 0; part < 2; part++, i++)
        for (; i < len && s[i] >= '0' && s[i] <= '9' && digits[part] < 19; i++, digits[part]++)
            v[part] = v[part] * 10 + (uint64_t)(s[i] - '0');
    /* i is one past the end when the text was "<digits>-<digits>". */
    if (i != len + 1 || digits[0] == 0 || digits[1] == 0 || s[digits[0]] != '-' ||
        v[1] > UINT32_MAX)
        return;
    *ms = v[0];
    *seq = (uint32_t)v[1];
}

/* Tasks in entry c. */
static uint32_t chunk_tasks(const mp__redis_chunk *c)
{
    if (c->step) /* a parallel-for entry packs at most MP__REDIS_POOL_PACK_MAX */
        return (uint32_t)(c->span / c->step + (c->span % c->step != 0));
    return c->per ? (c->n + c->per - 1) / c->per : 1;
}

/* v in decimal into buf (24 bytes), NUL-terminated: snprintf costs a
 * tenth of a client's time at tiny tasks. */
static void u64_dec(char *buf, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
}

/* The arguments of an XADD: at most 19 (an entry with "k"). */
#define XADD_ARGS 19

/* v in signed decimal into buf (24 bytes). */
static void i64_dec(char *buf, int64_t v)
{
    if (v < 0) {
        buf[0] = '-';
        u64_dec(buf + 1, 0 - (uint64_t)v);
    } else {
        u64_dec(buf, (uint64_t)v);
    }
}

/* The XADD of one entry whose first task is id0, in argv/lens; returns
 * its argument count (17, or 19 with "k" when it packs several tasks; a
 * parallel-for entry has "lo" instead of "isz", and "k" when it packs
 * several chunks). num holds its numbers. */
static int xadd_args(mp__redis_pool *p, uint64_t id0, const char *fn, size_t fn_len,
                     const mp__redis_chunk *c, char num[5][24], const char **argv, size_t *lens)
{
    bool is_for = c->step > 0;
    u64_dec(num[0], id0);
    u64_dec(num[1], is_for ? c->span : c->n);
    if (is_for)
        i64_dec(num[2], c->lo);
    else
        u64_dec(num[2], c->isz);
    u64_dec(num[3], c->cap);
    u64_dec(num[4], is_for ? c->step : c->per);
    const char *a[XADD_ARGS] = {"XADD",
                                p->k_tasks,
                                "*",
                                "id",
                                num[0],
                                "c",
                                p->client,
                                "f",
                                fn,
                                "n",
                                num[1],
                                is_for ? "lo" : "isz",
                                num[2],
                                "cap",
                                num[3],
                                "in",
                                c->in_len ? c->in : "",
                                "k",
                                num[4]};
    int argc = chunk_tasks(c) > 1 ? 19 : 17;
    /* The function and the input are counted bytes: the input may be
     * binary with no NUL after it, so strlen must not read it. */
    for (int i = 0; i < argc; i++) {
        argv[i] = a[i];
        lens[i] = i == 8 ? fn_len : i == 16 ? c->in_len : strlen(a[i]);
    }
    return argc;
}

int mp__redis_pool_send(mp__redis_pool *p, int k, const uint64_t *ids, const char *const *fn,
                        const size_t *fn_len, const mp__redis_chunk *chunks, mp__redis_eid *eids)
{
    if (k <= 0 || k > MP__REDIS_POOL_BATCH)
        return MP_EINVAL;
    char num[MP__REDIS_POOL_BATCH][5][24];
    const char *argv[MP__REDIS_POOL_BATCH][XADD_ARGS];
    size_t lens[MP__REDIS_POOL_BATCH][XADD_ARGS];
    /* Command 0 sets the client's key: a server that lost it (a restart
     * without persistence) has it again before the tasks, so that no
     * worker takes this client for dead. */
    const char *set[] = {"SET", p->k_client, "1", "PX", MP__REDIS_POOL_CLIENT_LEASE_MS_STR};
    size_t lset[5];
    for (int j = 0; j < 5; j++)
        lset[j] = strlen(set[j]);
    int argc[MP__REDIS_POOL_BATCH + 1] = {5};
    const char *const *av[MP__REDIS_POOL_BATCH + 1] = {set};
    const size_t *lv[MP__REDIS_POOL_BATCH + 1] = {lset};
    int i = 0;
    do { /* (0 < k, which the compiler does not see through a for) */
        argc[i + 1] = xadd_args(p, ids[i], fn[i], fn_len[i], &chunks[i], num[i], argv[i], lens[i]);
        av[i + 1] = argv[i];
        lv[i + 1] = lens[i];
    } while (++i < k);
    redisReply *rep[MP__REDIS_POOL_BATCH + 1];
    int rc = mp__redis_pipeline(p->conn, MP__RR_ANY_VALUE, k + 1, argc, av, lv, rep);
    if (rc < 0)
        return rc;
    freeReplyObject(rep[0]);
    for (i = 0; i < k; i++) {
        const redisReply *r = rep[i + 1];
        eids[i] = (mp__redis_eid){0, 0};
        if (r->type == REDIS_REPLY_STRING)
            parse_eid(r->str, r->len, &eids[i].ms, &eids[i].seq);
        freeReplyObject(rep[i + 1]);
    }
    return 0;
}

static void settle(mp__redis_pool *p, uint64_t id, int code, mp__redis_result *r);

void mp__redis_pool_sent(mp__redis_pool *p, int k, const uint64_t *ids, const mp__redis_eid *eids,
                         int rc)
{
    for (int i = 0; i < k; i++) {
        if (ids[i] < p->base || ids[i] >= p->next_id || p->slots[ids[i] - p->base].a == NULL)
            continue; /* answered, or given up, and dropped */
        if (rc < 0) { /* some may be on the stream: their results find no slot */
            settle(p, ids[i], rc, NULL);
        } else { /* to tell later whether a server restart lost them */
            p->slots[ids[i] - p->base].eid_ms = eids[i].ms;
            p->slots[ids[i] - p->base].eid_seq = eids[i].seq;
        }
    }
}

int mp__redis_pool_reserve(mp__redis_pool *p, size_t k)
{
    return reserve_slots(p, k);
}

int mp__redis_pool_submit(mp__redis_pool *p, mp__redis_async *a, const char *fn, size_t fn_len,
                          int k, const mp__redis_chunk *chunks)
{
    if (k <= 0 || k > MP__REDIS_POOL_BATCH)
        return MP_EINVAL;
    size_t ntasks = 0;
    for (int i = 0; i < k; i++) {
        if (chunk_tasks(&chunks[i]) > MP__REDIS_POOL_PACK_MAX)
            return MP_EINVAL;
        ntasks += chunk_tasks(&chunks[i]);
    }
    /* Tasks keep their order on the stream: the held ones go first. */
    int rc = mp__redis_client_beat_due(p);
    if (rc == 0)
        rc = mp__redis_pool_flush(p);
    if (rc == 0)
        rc = reserve_slots(p, ntasks);
    if (rc < 0)
        return rc;
    uint64_t ids[MP__REDIS_POOL_BATCH];
    const char *fns[MP__REDIS_POOL_BATCH];
    size_t fn_lens[MP__REDIS_POOL_BATCH];
    uint64_t id0 = p->next_id;
    /* Slots first: a result can only be matched to a task in a slot. */
    for (int i = 0; i < k; i++) {
        const mp__redis_chunk *c = &chunks[i];
        ids[i] = p->next_id;
        fns[i] = fn;
        fn_lens[i] = fn_len;
        for (uint32_t j = 0, per = c->per ? c->per : c->n; j < chunk_tasks(c); j++) {
            uint32_t n = c->n - j * per < per ? c->n - j * per : per;
            /* A parallel-for chunk answers one item, its partial. */
            p->slots[p->next_id - p->base] =
                c->step ? (mp__redis_slot){.a = a, .first = c->first + j * c->step, .n = 1}
                        : (mp__redis_slot){.a = a, .first = c->first + (uint64_t)j * per, .n = n};
            p->next_id++;
        }
    }
    mp__redis_eid eids[MP__REDIS_POOL_BATCH];
    rc = mp__redis_pool_send(p, k, ids, fns, fn_lens, chunks, eids);
    if (rc < 0) {
        /* Some may be on the stream: their results will find no slot. */
        for (uint64_t id = id0; id < p->next_id; id++)
            p->slots[id - p->base].a = NULL;
        return rc;
    }
    /* The entry ids, to tell later whether a server restart lost them
     * (the tasks of one entry share it). */
    uint64_t id = id0;
    for (int i = 0; i < k; i++)
        for (uint32_t j = 0; j < chunk_tasks(&chunks[i]); j++, id++) {
            mp__redis_slot *sl = &p->slots[id - p->base];
            sl->eid_ms = eids[i].ms;
            sl->eid_seq = eids[i].seq;
        }
    a->pending += ntasks;
    return 0;
}

/* An item whose executor died: its pid and signal, and in words. */
static void lost_item(mp_task_error *e, const unsigned char *data)
{
    char nb[24];
    e->code = MP_EWORKERLOST;
    mp__redis_result_lost(data, &e->pid, &e->signal);
    if (e->signal)
        snprintf(e->message, sizeof e->message, "executor %d of the worker killed by %s",
                 (int)e->pid, mp__sig_name(e->signal, nb, sizeof nb));
    else
        snprintf(e->message, sizeof e->message, "executor %d of the worker exited", (int)e->pid);
}

/* An item whose task failed with tc; the record's bytes are its message
 * (the decoder checked their length). */
static void failed_item(mp_task_error *e, int32_t tc, const unsigned char *data, size_t len)
{
    e->code = MP_ETASKFAILED;
    e->task_code = tc;
    if (len > 0 && len < sizeof e->message) {
        memcpy(e->message, data, len);
        e->message[len] = '\0';
    }
}

/* One chunk's outcome into its parallel-for: its partial is reduced into
 * the result at once (so the partials are reduced in the order their
 * results arrive), or its failure is recorded. */
static void deliver_chunk(mp__redis_async *a, uint64_t first, int code, int32_t tc,
                          const unsigned char *data, size_t len)
{
    mp_task_error e = {.index = (size_t)(uint64_t)(a->begin + (int64_t)first), .code = code};
    if (code == 0 && len == MP__REDIS_ITEM_LOST) {
        lost_item(&e, data);
    } else if (code == 0 && tc != 0) {
        failed_item(&e, tc, data, len);
    } else if (code == 0 && len != a->acc_size) {
        e.code = MP_EBADMSG; /* a worker sends exactly acc_size bytes */
    } else if (code == 0) {
        /* The record's bytes are not aligned; reduce may expect it. As
         * locally, a reduce given with acc_size 0 still runs. */
        _Alignas(16) unsigned char partial[MP_POOL_ACC_MAX] = {0};
        if (len)
            memcpy(partial, data, len);
        if (a->reduce)
            a->reduce(a->result, partial, NULL);
        return;
    }
    mp__redis_async_record(a, &e);
}

void mp__redis_pool_count_done(mp__redis_pool *p, mp__redis_async *a, uint64_t items)
{
    if (a) {
        if (items > a->items_left)
            items = a->items_left;
        a->items_left -= items;
    }
    p->meter.done += items;
}

/* One item's outcome into its mp_async (and its iterator). */
static void deliver_item(mp__redis_async *a, uint64_t idx, int code, int32_t tc,
                         const unsigned char *data, size_t len)
{
    mp_task_error e = {.index = a->is_map ? (size_t)idx : 0, .code = code};
    if (code == 0 && len == MP__REDIS_ITEM_LOST) {
        lost_item(&e, data); /* its executor died; the worker lived on */
    } else if (code == 0 && tc != 0) {
        failed_item(&e, tc, data, len);
    } else if (code == 0 && (a->is_map ? len > a->out_size : len > a->out_cap)) {
        /* A result that cannot be delivered fails its task, as locally. */
        e.code = MP_EMSGSIZE;
    } else if (code == 0 && !a->is_map) {
        if (len)
            memcpy(a->res, data, len);
        a->res_len = len;
        return;
    } else if (code == 0) {
        if (a->out && len)
            memcpy(a->out + idx * a->out_size, data, len);
        if (a->it) {
            if (len)
                memcpy(a->it->buf + idx * a->out_size, data, len);
            a->it->status[idx] = 1;
            a->it->fifo[a->it->fifo_len++] = (size_t)idx;
        }
        return;
    }
    mp__redis_async_record(a, &e);
    if (a->it) {
        a->it->status[idx] = 2;
        a->it->ierr[idx] = e;
        a->it->fifo[a->it->fifo_len++] = (size_t)idx;
    }
}

/* Ends outstanding task id: with the items of r when code is 0, else
 * every item fails with code. */
static void settle(mp__redis_pool *p, uint64_t id, int code, mp__redis_result *r)
{
    mp__redis_slot s = p->slots[id - p->base];
    p->slots[id - p->base].a = NULL;
    for (uint32_t i = 0; i < s.n; i++) {
        int32_t tc = 0;
        const unsigned char *data = NULL;
        size_t ilen = 0;
        if (code == 0)
            mp__redis_result_next(r, &tc, &data, &ilen);
        if (s.a->is_for)
            deliver_chunk(s.a, s.first, code, tc, data, ilen);
        else
            deliver_item(s.a, s.first + i, code, tc, data, ilen);
    }
    /* A parallel-for chunk counts its indexes (as locally). */
    uint64_t left = s.a->is_for ? s.a->n - s.first : 0;
    mp__redis_pool_count_done(p, s.a, s.a->is_for ? (left < s.a->step ? left : s.a->step) : s.n);
    if (--s.a->pending == 0)
        mp__redis_async_finish(s.a);
}

static void deliver(mp__redis_pool *p, const void *buf, size_t len)
{
    mp__redis_result r;
    if (mp__redis_result_decode(buf, len, &r) < 0) {
        mp__debug("pool: dropped a malformed result on %s", p->k_results);
        return;
    }
    if (r.id < p->base || r.id >= p->next_id || p->slots[r.id - p->base].a == NULL)
        return; /* a duplicate, or a task given up */
    settle(p, r.id, r.code == 0 && r.n != p->slots[r.id - p->base].n ? MP_EBADMSG : r.code, &r);
}

/* Hands every string of a reply to deliver: LRANGE's array of strings,
 * BLMOVE's string, or BLPOP's [key, value] (kv). *got: how many. */
static int deliver_reply(mp__redis_pool *p, const redisReply *rep, bool kv, size_t *got)
{
    *got = 0;
    if (rep->type == REDIS_REPLY_NIL)
        return MP_ETIMEDOUT;
    const redisReply *const *v = (const redisReply *const *)&rep;
    size_t n = 1;
    if (rep->type == REDIS_REPLY_ARRAY) {
        if (kv && rep->elements != 2)
            return MP_EBADMSG;
        v = (const redisReply *const *)rep->element + (kv ? 1 : 0);
        n = kv ? 1 : rep->elements;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i]->type != REDIS_REPLY_STRING)
            return MP_EBADMSG;
    for (size_t i = 0; i < n; i++)
        deliver(p, v[i]->str, v[i]->len);
    *got = n;
    return 0;
}

/* The LTRIM that removes the p->trim results delivered from the head of
 * the list, in argv (4 entries). */
static void trim_args(mp__redis_pool *p, char num[24], const char **argv, size_t *lens)
{
    snprintf(num, 24, "%zu", p->trim);
    const char *a[4] = {"LTRIM", p->k_results, num, "-1"};
    for (int i = 0; i < 4; i++)
        argv[i] = a[i], lens[i] = strlen(a[i]);
}

/* Takes what is on the list, DRAIN at a time, without waiting: the
 * results delivered before go (LTRIM) in the same round trip as the next
 * are read (LRANGE), and the ones read stay on the list until then. */
static int drain(mp__redis_pool *p)
{
    for (;;) {
        char num[24];
        const char *tv[4], *rv[4] = {"LRANGE", p->k_results, "0", "255"};
        size_t tl[4], rl[4] = {6, strlen(p->k_results), 1, 3};
        trim_args(p, num, tv, tl);
        int k = p->trim ? 2 : 1;
        const char *const *av[2] = {tv, rv};
        const size_t *lv[2] = {tl, rl};
        int ac[2] = {4, 4};
        redisReply *rep[2];
        /* Whether the LTRIM ran is unknown if the pipeline fails: forget
         * it. Results read again are dropped as duplicates; trimming
         * twice would drop results never read. */
        p->trim = 0;
        int rc = mp__redis_pipeline(p->conn, MP__RR_ANY_VALUE, k, ac + 2 - k, av + 2 - k,
                                    lv + 2 - k, rep);
        if (rc < 0)
            return rc;
        if (k == 2)
            freeReplyObject(rep[0]);
        redisReply *r = rep[k - 1];
        size_t got = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        /* Counted before delivering: a callback may drain again. */
        p->trim = got;
        rc = deliver_reply(p, r, false, &got);
        freeReplyObject(r);
        if (rc < 0 || got < DRAIN)
            return rc == MP_ETIMEDOUT ? 0 : rc;
    }
}

/* The server's run_id (INFO server), which a restart changes. */
static int server_run_id(mp__redis_pool *p, char out[48])
{
    redisReply *rep;
    int rc = mp__redis_cmd(p->conn, MP__RR_STR, &rep, 2, (const char *[]){"INFO", "server"}, NULL);
    if (rc < 0)
        return rc;
    out[0] = '\0';
    for (size_t i = 0; i + 7 <= rep->len; i++)
        if (memcmp(rep->str + i, "run_id:", 7) == 0) {
            size_t n = 0;
            while (i + 7 + n < rep->len && n < 47 && isxdigit((unsigned char)rep->str[i + 7 + n]))
                n++;
            memcpy(out, rep->str + i + 7, n);
            out[n] = '\0';
            break;
        }
    freeReplyObject(rep);
    return 0;
}

/* Marks in gone[] the outstanding tasks of ids[0..n) whose stream entry
 * no longer exists (XRANGE of the entry's id, pipelined). */
static int entries_gone(mp__redis_pool *p, const uint64_t *ids, int n, bool *gone)
{
    const char *argv[MP__REDIS_POOL_BATCH][4];
    size_t lens[MP__REDIS_POOL_BATCH][4];
    const char *const *av[MP__REDIS_POOL_BATCH];
    const size_t *lv[MP__REDIS_POOL_BATCH];
    int argc[MP__REDIS_POOL_BATCH];
    redisReply *rep[MP__REDIS_POOL_BATCH];
    char eid[MP__REDIS_POOL_BATCH][MP__REDIS_POOL_EID_MAX];
    for (int i = 0; i < n; i++) {
        const mp__redis_slot *sl = &p->slots[ids[i] - p->base];
        snprintf(eid[i], sizeof(eid[i]), "%" PRIu64 "-%" PRIu32, sl->eid_ms, sl->eid_seq);
        const char *a[4] = {"XRANGE", p->k_tasks, eid[i], eid[i]};
        for (int j = 0; j < 4; j++)
            argv[i][j] = a[j], lens[i][j] = strlen(a[j]);
        av[i] = argv[i];
        lv[i] = lens[i];
        argc[i] = 4;
    }
    int rc = mp__redis_pipeline(p->conn, MP__RR_ANY_VALUE, n, argc, av, lv, rep);
    for (int i = 0; rc == 0 && i < n; i++) {
        gone[i] = rep[i]->type == REDIS_REPLY_ARRAY && rep[i]->elements == 0;
        freeReplyObject(rep[i]);
    }
    return rc;
}

/* After a server restart, the tasks whose entries are gone from the
 * stream and whose results are not on the list were lost with the
 * server's data: they fail with MP_ECONNRESET. A worker pushes a result
 * before it deletes the entry, so the drain after the check finds every
 * task that did finish. */
static int check_restart(mp__redis_pool *p)
{
    char run_id[48];
    int rc = server_run_id(p, run_id);
    if (rc < 0 || strcmp(run_id, p->run_id) == 0)
        return rc;
    mp__debug("pool: the server restarted; looking for lost tasks of %s", p->k_results);
    memcpy(p->run_id, run_id, sizeof(run_id));
    uint64_t ids[MP__REDIS_POOL_BATCH];
    bool gone[MP__REDIS_POOL_BATCH];
    uint64_t lost[MP__REDIS_POOL_BATCH];
    for (uint64_t id = p->base, end = p->next_id; rc == 0 && id < end;) {
        int n = 0, nlost = 0;
        for (; id < end && n < MP__REDIS_POOL_BATCH; id++)
            if (id >= p->base && p->slots[id - p->base].a &&
                (p->slots[id - p->base].eid_ms || p->slots[id - p->base].eid_seq))
                ids[n++] = id;
        rc = n ? entries_gone(p, ids, n, gone) : 0;
        for (int i = 0; rc == 0 && i < n; i++)
            if (gone[i])
                lost[nlost++] = ids[i];
        if (rc == 0 && nlost)
            rc = drain(p);
        for (int i = 0; rc == 0 && i < nlost; i++)
            if (lost[i] >= p->base && lost[i] < p->next_id && p->slots[lost[i] - p->base].a)
                settle(p, lost[i], MP_ECONNRESET, NULL);
    }
    return rc;
}

/* Waits up to left seconds for a result on the list and takes what is
 * there once one is, in one round trip: the LTRIM of what was delivered
 * before, BLMOVE of the list onto its own head (Redis 6.2: it waits and
 * moves nothing; BLPOP before, which takes the first), and LRANGE of up
 * to DRAIN, which the server runs as soon as the wait ends. *got: how
 * many came. Returns 0, 1 when the server answered that none came,
 * MP_EINTR or MP_ECANCELED (the wait interrupted, what came delivered),
 * or an error (MP_ETIMEDOUT: the server did not answer in time). */
static int pop_wait(mp__redis_pool *p, double left, size_t *got)
{
    char t[32], num[24];
    snprintf(t, sizeof(t), "%.3f", left);
    const char *blmove[] = {"BLMOVE", p->k_results, p->k_results, "LEFT", "LEFT", t};
    const char *blpop[] = {"BLPOP", p->k_results, t};
    const char *rv[4] = {"LRANGE", p->k_results, "0", "255"};
    size_t rl[4] = {6, strlen(p->k_results), 1, 3};
    const char *tv[4];
    size_t tl[4], bl[6];
    trim_args(p, num, tv, tl);
    *got = 0;
    for (;;) {
        bool m = !p->no_blmove;
        const char **bv = m ? blmove : blpop;
        int bn = m ? 6 : 3;
        for (int i = 0; i < bn; i++)
            bl[i] = strlen(bv[i]);
        int k = p->trim ? 3 : 2;
        const char *const *av[3] = {tv, bv, rv};
        const size_t *lv[3] = {tl, bl, rl};
        int ac[3] = {4, bn, 4};
        redisReply *rep[3];
        p->trim = 0; /* as in drain */
        /* A thread that honours interrupts waits over a side connection
         * whose wait a signal or a cancel ends (the results stay on the
         * list: BLMOVE moves nothing, and what a BLPOP took is delivered
         * below); the interrupt is answered after the delivery. */
        int rc = (mp__redis_intr_armed() ? mp__redis_side_pipeline : mp__redis_pipeline_block)(
            p->conn, MP__RR_ANY_VALUE, k, ac + 3 - k, av + 3 - k, lv + 3 - k, rep, left);
        if (rc == MP_ESERVER && m) { /* an older server: unknown command */
            p->no_blmove = true;
            continue;
        }
        int intr = rc == MP_EINTR || rc == MP_ECANCELED ? rc : 0;
        if (rc < 0 && !intr)
            return rc;
        if (k == 3)
            freeReplyObject(rep[0]);
        redisReply *w = rep[k - 2], *r = rep[k - 1];
        bool none = w->type == REDIS_REPLY_NIL;
        size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        p->trim = n; /* counted before delivering: a callback may pump */
        size_t g1 = 0, g2 = 0;
        /* BLPOP took the first: it is not in the LRANGE. */
        rc = m || none ? 0 : deliver_reply(p, w, true, &g1);
        if (rc == 0)
            rc = deliver_reply(p, r, false, &g2);
        freeReplyObject(w);
        freeReplyObject(r);
        *got = g1 + g2;
        if (rc == MP_ETIMEDOUT)
            rc = 0;
        return rc < 0 ? rc : intr ? intr : none ? 1 : 0;
    }
}

/* One blocking wait of at most the time left, and at most a second (a
 * server gone silent is then noticed within a second plus the
 * connection's timeout), then the rest of the list if it was full. */
static int wait_one(mp__redis_pool *p, const mp__deadline *d)
{
    double left = 1.0;
    if (d->ns >= 0)
        left = (double)(d->ns - mp__now_ns()) / 1e9;
    if (left < 0.001) { /* no time to wait, but what has come counts */
        int rc = drain(p);
        return rc < 0 ? rc : MP_ETIMEDOUT;
    }
    if (left > 1.0)
        left = 1.0;
    size_t got = 0;
    int rc = pop_wait(p, left, &got);
    if (rc == 1) { /* a quiet second: did the server lose our tasks? */
        int r2 = check_restart(p);
        rc = r2 < 0 ? r2 : MP_ETIMEDOUT;
    }
    if (rc == 0 && got >= DRAIN)
        rc = drain(p);
    return rc;
}

int mp__redis_pool_pump(mp__redis_pool *p, const mp__deadline *d, bool block)
{
    /* What the sender's thread sent, or failed to, is recorded first:
     * a wait then ends on a held task's failure. */
    int rc = mp__redis_pool_flush(p);
    if (rc == 0)
        rc = mp__redis_client_beat_due(p);
    if (rc == 0 && !block) {
        rc = drain(p);
        mp__pool_meter_report(&p->meter, false);
        return rc;
    }
    /* One slice: the caller looks at what it waits for and calls again,
     * so that a task settled by check_restart ends its wait at once. */
    if (rc == 0)
        rc = wait_one(p, d);
    if (rc == MP_EAGAIN && block && !mp__deadline_expired(d)) {
        /* The server answers LOADING (it is reading its data after a
         * restart) or BUSY (a script): a wait goes on, within its
         * deadline, rather than fail. */
        int64_t nap = 20000000, left = d->ns >= 0 ? d->ns - mp__now_ns() : nap;
        struct timespec ts = {0, (long)(left < nap ? (left > 0 ? left : 0) : nap)};
        nanosleep(&ts, NULL);
        return 0;
    }
    if (rc == MP_ETIMEDOUT && !mp__deadline_expired(d))
        rc = 0;
    mp__pool_meter_report(&p->meter, false);
    return rc;
}

int mp__redis_client_beat(mp__redis_pool *p)
{
    const char *ms = MP__REDIS_POOL_CLIENT_LEASE_MS_STR;
    const char *set[] = {"SET", p->k_client, "1", "PX", ms};
    const char *res[] = {"PEXPIRE", p->k_results, ms};
    const char *can[] = {"PEXPIRE", p->k_cancel, ms};
    const char *const *av[] = {set, res, can};
    size_t lset[5], lres[3], lcan[3];
    for (int i = 0; i < 5; i++)
        lset[i] = strlen(set[i]);
    for (int i = 0; i < 3; i++)
        lres[i] = strlen(res[i]), lcan[i] = strlen(can[i]);
    const size_t *lv[] = {lset, lres, lcan};
    int64_t t0 = mp__now_ns();
    int rc = mp__redis_pipeline(p->conn, MP__RR_ANY_VALUE, 3, (const int[]){5, 3, 3}, av, lv, NULL);
    if (rc == 0) {
        int64_t last = __atomic_exchange_n(&p->beat_ns, t0, __ATOMIC_ACQ_REL);
        if (last != 0 && t0 - last >= (int64_t)MP__REDIS_POOL_CLIENT_LEASE_MS * 1000000)
            __atomic_store_n(&p->lapse, 1, __ATOMIC_RELEASE);
    }
    return rc;
}

/* The client's lease lapsed (no heartbeat succeeded for a lease): workers
 * dropped, or may drop, its tasks without an answer. They are withdrawn
 * (best effort: the key is about to be set again) and fail with
 * MP_ECONNRESET, as tasks lost by the server do, instead of waiting for
 * ever. */
static void lapsed(mp__redis_pool *p)
{
    mp__debug("pool: the lease of %s lapsed; its tasks fail", p->k_client);
    if (mp__redis_pool_withdraw(p, NULL) < 0)
        mp__debug("pool: could not withdraw the tasks of %s", p->k_client);
    for (uint64_t id = p->base; id < p->next_id; id++)
        if (p->slots[id - p->base].a)
            settle(p, id, MP_ECONNRESET, NULL);
}

int mp__redis_client_beat_due(mp__redis_pool *p)
{
    int64_t last = __atomic_load_n(&p->beat_ns, __ATOMIC_ACQUIRE), now = mp__now_ns();
    const int64_t lease = (int64_t)MP__REDIS_POOL_CLIENT_LEASE_MS * 1000000;
    int rc = now - last < lease / 3 ? 0 : mp__redis_client_beat(p);
    /* A beat of any thread that found the lease lapsed leaves the flag;
     * the tasks are failed here, in the thread that uses the pool. */
    if (__atomic_exchange_n(&p->lapse, 0, __ATOMIC_ACQ_REL))
        lapsed(p);
    return rc;
}
