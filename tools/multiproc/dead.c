/* multiproc dead list|show|retry|purge: the pool's dead-letter stream
 * <prefix>pool:<n>:dead. A worker copies there an entry it gives up (its
 * task's fields, then "reason" and "deliveries"); retry puts the task's
 * own fields back on the task stream as a new entry, so a worker runs it
 * again with a fresh delivery count and answers its client's list. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

/* KEYS[1] the dead stream, KEYS[2] the task stream; ARGV[1] the dead
 * entry's id. Moves the entry's task fields (those before the trailing
 * reason and deliveries) to a new entry of the task stream and deletes the
 * dead one, atomically. Answers the new id, 0 when the id is unknown, -1
 * when the entry holds no task fields. */
static const char retry_lua[] =
    "local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) "
    "if #e == 0 then return 0 end "
    "local f, n = e[1][2], #e[1][2] "
    "if n >= 4 and f[n - 3] == 'reason' and f[n - 1] == 'deliveries' then n = n - 4 end "
    "if n == 0 then return -1 end "
    "local keep = {} "
    "for i = 1, n do keep[i] = f[i] end "
    "local id = redis.call('XADD', KEYS[2], '*', unpack(keep)) "
    "redis.call('XDEL', KEYS[1], ARGV[1]) "
    "return id";

/* KEYS[1] the dead stream: deletes it, answering how many entries it held. */
static const char purge_all_lua[] = "local n = redis.call('XLEN', KEYS[1]) "
                                    "redis.call('DEL', KEYS[1]) return n";

/* The number of an entry's fields that are the task's own (the dead-letter
 * stream appends reason and deliveries). */
static size_t task_fields(const redisReply *f)
{
    size_t n = f->elements;
    const redisReply *r = n >= 4 ? f->element[n - 4] : NULL, *d = n >= 4 ? f->element[n - 2] : NULL;
    if (r && d && r->type == REDIS_REPLY_STRING && d->type == REDIS_REPLY_STRING &&
        strcmp(r->str, "reason") == 0 && strcmp(d->str, "deliveries") == 0)
        n -= 4;
    return n;
}

/* Parses the task an entry's fields hold (mp__redis_task_parse, the
 * worker's own check). */
static bool parse_task(const redisReply *f, mp__redis_task *t)
{
    size_t n = task_fields(f);
    const char *v[64];
    size_t lens[64];
    if (n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool s = f->element[i]->type == REDIS_REPLY_STRING;
        v[i] = s ? f->element[i]->str : NULL;
        lens[i] = s ? f->element[i]->len : 0;
    }
    return mp__redis_task_parse(v, lens, n, t) == 0;
}

static bool entry_ok(const redisReply *e)
{
    return e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
           e->element[0]->type == REDIS_REPLY_STRING && e->element[1]->type == REDIS_REPLY_ARRAY &&
           e->element[1]->elements % 2 == 0;
}

/* Reads entries of the dead stream: all (id NULL) or the one of id. */
static int read_dead(mp__tool *t, const char *pool, const char *id, redisReply **rep)
{
    char *k;
    int rc = mp__tool_pool_key(t, &k, pool, "dead");
    if (rc < 0)
        return rc;
    rc = mp__tool_cmd(t, rep, 4, (const char *[]){"XRANGE", k, id ? id : "-", id ? id : "+"});
    free(k);
    if (rc == 0 && (*rep)->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(*rep);
        rc = MP_EBADMSG;
    }
    return rc;
}

static void json_entry(const redisReply *e, int64_t now, bool fields)
{
    const redisReply *f = e->element[1], *reason = mp__tool_field(f, "reason");
    uint64_t ms = 0;
    mp__tool_eid_ok(e->element[0]->str, &ms);
    fputs("{\"id\":", stdout);
    mp__tool_json_str(stdout, e->element[0]->str, e->element[0]->len);
    fputs(",\"age_s\":", stdout);
    mp__tool_json_num(stdout, (double)(now - (int64_t)ms) / 1000.0);
    fputs(",\"reason\":", stdout);
    if (reason && reason->type == REDIS_REPLY_STRING)
        mp__tool_json_str(stdout, reason->str, reason->len);
    else
        fputs("null", stdout);
    fprintf(stdout,
            ",\"deliveries\":%lld,\"task\":", mp__tool_int(mp__tool_field(f, "deliveries"), 0));
    mp__redis_task tk;
    if (parse_task(f, &tk)) {
        fprintf(stdout, "{\"id\":%llu,\"tasks\":%llu,\"client\":", (unsigned long long)tk.id,
                (unsigned long long)mp__redis_task_count(&tk));
        mp__tool_json_str(stdout, tk.client, strlen(tk.client));
        fputs(",\"function\":", stdout);
        mp__tool_json_str(stdout, tk.fn, tk.fn_len);
        fprintf(stdout, ",\"items\":%llu,\"input_bytes\":%zu}", (unsigned long long)tk.n,
                tk.in_len);
    } else {
        fputs("null", stdout);
    }
    if (fields) {
        fputs(",\"fields\":{", stdout);
        for (size_t i = 0; i + 1 < f->elements; i += 2) {
            const redisReply *k = f->element[i], *v = f->element[i + 1];
            if (i)
                fputc(',', stdout);
            mp__tool_json_str(stdout, k->str ? k->str : "", k->str ? k->len : 0);
            fputc(':', stdout);
            mp__tool_json_str(stdout, v->str ? v->str : "", v->str ? v->len : 0);
        }
        fputc('}', stdout);
    }
    fputc('}', stdout);
}

/* One row of the list's table for entry e. */
static int table_entry(mp__tool_table *tb, const redisReply *e, int64_t now)
{
    const redisReply *f = e->element[1], *reason = mp__tool_field(f, "reason");
    uint64_t ms = 0;
    mp__tool_eid_ok(e->element[0]->str, &ms);
    char age[32], del[24], task[48], items[24], bytes[24];
    snprintf(age, sizeof(age), "%.1fs", (double)(now - (int64_t)ms) / 1000.0);
    snprintf(del, sizeof(del), "%lld", mp__tool_int(mp__tool_field(f, "deliveries"), 0));
    mp__redis_task tk;
    bool ok = parse_task(f, &tk);
    uint64_t count = ok ? mp__redis_task_count(&tk) : 0;
    if (ok && count > 1)
        snprintf(task, sizeof(task), "%llu-%llu", (unsigned long long)tk.id,
                 (unsigned long long)(tk.id + count - 1));
    else if (ok)
        snprintf(task, sizeof(task), "%llu", (unsigned long long)tk.id);
    snprintf(items, sizeof(items), "%llu", ok ? (unsigned long long)tk.n : 0ULL);
    snprintf(bytes, sizeof(bytes), "%zu", ok ? tk.in_len : (size_t)0);
    const char *row[] = {e->element[0]->str,
                         age,
                         reason && reason->type == REDIS_REPLY_STRING ? reason->str : NULL,
                         del,
                         ok ? task : "malformed",
                         ok ? tk.client : NULL,
                         ok ? tk.fn : NULL,
                         ok ? items : NULL,
                         ok ? bytes : NULL};
    size_t lens[] = {e->element[0]->len, strlen(age),           reason ? reason->len : 0,
                     strlen(del),        ok ? strlen(task) : 9, ok ? strlen(tk.client) : 0,
                     ok ? tk.fn_len : 0, strlen(items),         strlen(bytes)};
    return mp__tool_table_row(tb, row, lens);
}

int mp__tool_dead_list(mp__tool *t, const char *pool)
{
    int rc = mp__tool_pool_known(t, pool);
    if (rc != 0)
        return rc;
    redisReply *rep;
    int64_t now;
    rc = mp__tool_server_ms(t, &now);
    if (rc == 0)
        rc = read_dead(t, pool, NULL, &rep);
    if (rc < 0)
        return mp__tool_fail(rc, "cannot read the dead letters of pool '%s'", pool);
    if (t->json) {
        fputs("{\"pool\":", stdout);
        mp__tool_json_str(stdout, pool, strlen(pool));
        fputs(",\"dead\":[", stdout);
        for (size_t i = 0, k = 0; i < rep->elements; i++)
            if (entry_ok(rep->element[i])) {
                fputs(k++ ? "," : "", stdout);
                json_entry(rep->element[i], now, false);
            }
        fputs("]}\n", stdout);
    } else {
        static const char *const h[] = {"ID",     "AGE",      "REASON", "DELIVERIES", "TASK",
                                        "CLIENT", "FUNCTION", "ITEMS",  "INPUT"};
        mp__tool_table tb;
        rc = mp__tool_table_init(&tb, 9, h);
        for (size_t i = 0; rc == 0 && i < rep->elements; i++)
            if (entry_ok(rep->element[i]))
                rc = table_entry(&tb, rep->element[i], now);
        if (rc == 0)
            mp__tool_table_print(&tb, stdout);
        mp__tool_table_free(&tb);
    }
    freeReplyObject(rep);
    return rc < 0 ? mp__tool_fail(rc, "cannot print the dead letters") : MP__TOOL_OK;
}

/* Checks the id's form (exit 1 when bad). */
static int check_id(const char *id)
{
    return mp__tool_eid_ok(id, NULL) ? 0
                                     : mp__tool_fail(0,
                                                     "bad dead-letter id '%s' (expected "
                                                     "<ms>-<seq>, as dead list shows)",
                                                     id);
}

int mp__tool_dead_show(mp__tool *t, const char *pool, const char *id)
{
    int rc = mp__tool_pool_known(t, pool);
    if (rc == 0)
        rc = check_id(id);
    if (rc != 0)
        return rc;
    redisReply *rep;
    int64_t now;
    rc = mp__tool_server_ms(t, &now);
    if (rc == 0)
        rc = read_dead(t, pool, id, &rep);
    if (rc < 0)
        return mp__tool_fail(rc, "cannot read the dead letters of pool '%s'", pool);
    if (rep->elements != 1 || !entry_ok(rep->element[0])) {
        freeReplyObject(rep);
        return mp__tool_fail(0, "unknown dead-letter id '%s' in pool '%s'", id, pool);
    }
    const redisReply *e = rep->element[0], *f = e->element[1];
    if (t->json) {
        json_entry(e, now, true);
        fputc('\n', stdout);
    } else {
        static const char *const h[] = {"FIELD", "VALUE"};
        mp__tool_table tb;
        rc = mp__tool_table_init(&tb, 2, h);
        const char *row[] = {"entry", e->element[0]->str};
        if (rc == 0)
            rc = mp__tool_table_row(&tb, row, NULL);
        for (size_t i = 0; rc == 0 && i + 1 < f->elements; i += 2) {
            const char *kv[] = {f->element[i]->str, f->element[i + 1]->str};
            size_t lens[] = {f->element[i]->len, f->element[i + 1]->len};
            rc = mp__tool_table_row(&tb, kv, lens);
        }
        if (rc == 0)
            mp__tool_table_print(&tb, stdout);
        mp__tool_table_free(&tb);
    }
    freeReplyObject(rep);
    return rc < 0 ? mp__tool_fail(rc, "cannot print the entry") : MP__TOOL_OK;
}

/* Retries one entry: 0, or MP_ENOENT (unknown id), MP_EBADMSG (no task
 * fields), or a connection error. */
static int retry_one(mp__tool *t, const char *k_dead, const char *k_tasks, const char *id,
                     char *new_id, size_t cap)
{
    redisReply *rep;
    int rc =
        mp__tool_cmd(t, &rep, 6, (const char *[]){"EVAL", retry_lua, "2", k_dead, k_tasks, id});
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_STRING)
        snprintf(new_id, cap, "%s", rep->str);
    else
        rc = mp__tool_int(rep, 0) == 0 ? MP_ENOENT : MP_EBADMSG;
    freeReplyObject(rep);
    return rc;
}

/* The ids to act on: id alone, or (id NULL) every entry there now. */
static int ids_of(mp__tool *t, const char *pool, const char *id, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (id) {
        *ids = malloc(sizeof(**ids));
        if (*ids == NULL || ((*ids)[0] = strdup(id)) == NULL)
            return MP_ENOMEM;
        *n = 1;
        return 0;
    }
    redisReply *rep;
    int rc = read_dead(t, pool, NULL, &rep);
    if (rc < 0)
        return rc;
    *ids = calloc(rep->elements + 1, sizeof(**ids));
    rc = *ids ? 0 : MP_ENOMEM;
    for (size_t i = 0; rc == 0 && i < rep->elements; i++)
        if (entry_ok(rep->element[i]))
            rc = ((*ids)[(*n)++] = strdup(rep->element[i]->element[0]->str)) ? 0 : MP_ENOMEM;
    freeReplyObject(rep);
    return rc;
}

int mp__tool_dead_retry(mp__tool *t, const char *pool, const char *id)
{
    int rc = mp__tool_pool_known(t, pool);
    if (rc == 0 && id)
        rc = check_id(id);
    if (rc != 0)
        return rc;
    char *k_dead = NULL, *k_tasks = NULL, **ids = NULL;
    size_t n = 0, done = 0;
    rc = mp__tool_pool_key(t, &k_dead, pool, "dead");
    if (rc == 0)
        rc = mp__tool_pool_key(t, &k_tasks, pool, "tasks");
    if (rc == 0)
        rc = ids_of(t, pool, id, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char new_id[64];
        rc = retry_one(t, k_dead, k_tasks, ids[i], new_id, sizeof(new_id));
        if (rc == MP_ENOENT && id == NULL) {
            rc = 0; /* purged or retried by another meanwhile */
            continue;
        }
        if (rc == 0) {
            done++;
            if (!t->json)
                printf("retried %s as task entry %s\n", ids[i], new_id);
            continue;
        }
        if (rc == MP_ENOENT)
            mp__tool_fail(0, "unknown dead-letter id '%s' in pool '%s'", ids[i], pool);
        else if (rc == MP_EBADMSG)
            mp__tool_fail(0, "dead letter '%s' holds no task fields", ids[i]);
        else if (rc < 0)
            mp__tool_fail(rc, "cannot retry '%s'", ids[i]);
    }
    if (rc == 0 && t->json) {
        fputs("{\"pool\":", stdout);
        mp__tool_json_str(stdout, pool, strlen(pool));
        printf(",\"retried\":%zu}\n", done);
    }
    free(k_dead);
    free(k_tasks);
    mp__tool_strv_free(ids, n);
    return rc < 0 ? MP__TOOL_ERROR : MP__TOOL_OK;
}

int mp__tool_dead_purge(mp__tool *t, const char *pool, const char *id)
{
    int rc = mp__tool_pool_known(t, pool);
    if (rc == 0 && id)
        rc = check_id(id);
    if (rc != 0)
        return rc;
    char *k_dead;
    rc = mp__tool_pool_key(t, &k_dead, pool, "dead");
    if (rc < 0)
        return mp__tool_fail(rc, "cannot purge");
    redisReply *rep;
    if (id)
        rc = mp__tool_cmd(t, &rep, 3, (const char *[]){"XDEL", k_dead, id});
    else
        rc = mp__tool_cmd(t, &rep, 4, (const char *[]){"EVAL", purge_all_lua, "1", k_dead});
    free(k_dead);
    if (rc < 0)
        return mp__tool_fail(rc, "cannot purge the dead letters of pool '%s'", pool);
    long long n = mp__tool_int(rep, 0);
    freeReplyObject(rep);
    if (id && n == 0)
        return mp__tool_fail(0, "unknown dead-letter id '%s' in pool '%s'", id, pool);
    if (t->json)
        printf("{\"purged\":%lld}\n", n);
    else
        printf("purged %lld dead letter%s\n", n, n == 1 ? "" : "s");
    return MP__TOOL_OK;
}
