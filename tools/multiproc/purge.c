/* multiproc pool purge: removes the pool's undelivered tasks. Safe while
 * workers serve: each entry is checked and deleted by one script, so an
 * entry a worker has taken (it is in the group's pending list) is never
 * deleted under it; running tasks finish and are answered as usual. Each
 * task removed is answered MP_ECANCELED on its client's result list when
 * the client still has its key (lease), as mp_async_cancel would end it,
 * so no client waits for a task that will never run. The dead-letter
 * stream, the stats and the workers' keys are left alone. */
#include <stdlib.h>
#include <string.h>

#include "tool.h"

/* Entries read per XRANGE. */
#define PURGE_CHUNK "256"

/* KEYS[1] the task stream, KEYS[2] the client's result list, KEYS[3] the
 * client's key; ARGV: group, entry id, the client lease in ms, then the
 * records answering the entry's tasks (none for a malformed entry). 1 when
 * the entry was deleted, 0 when a worker holds it or it is gone. */
static const char purge_lua[] =
    "local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) "
    "if type(p) == 'table' and not p.err and #p > 0 then return 0 end "
    "if redis.call('XDEL', KEYS[1], ARGV[2]) == 0 then return 0 end "
    "if #ARGV > 3 and redis.call('EXISTS', KEYS[3]) == 1 then "
    "  redis.call('RPUSH', KEYS[2], unpack(ARGV, 4)) "
    "  redis.call('PEXPIRE', KEYS[2], ARGV[3]) "
    "end "
    "return 1";

typedef struct purge_count {
    long long entries, tasks, held;
} purge_count;

/* The script's arguments for entry e: its client's keys and one
 * MP_ECANCELED record per task. */
static int purge_entry(mp__tool *t, const char *pool, const char *k_tasks, const redisReply *e,
                       purge_count *c)
{
    const redisReply *f = e->element[1];
    const char *v[64];
    size_t lens[64];
    mp__redis_task tk;
    bool ok = f->elements <= 64;
    for (size_t i = 0; ok && i < f->elements; i++) {
        bool s = f->element[i]->type == REDIS_REPLY_STRING;
        v[i] = s ? f->element[i]->str : NULL;
        lens[i] = s ? f->element[i]->len : 0;
    }
    ok = ok && mp__redis_task_parse(v, lens, f->elements, &tk) == 0;
    uint64_t ntasks = ok ? mp__redis_task_count(&tk) : 0;
    char *k_res = NULL, *k_client = NULL;
    char what[64];
    int rc = 0;
    if (ok) {
        snprintf(what, sizeof(what), "results:%s", tk.client);
        rc = mp__tool_pool_key(t, &k_res, pool, what);
        snprintf(what, sizeof(what), "client:%s", tk.client);
        if (rc == 0)
            rc = mp__tool_pool_key(t, &k_client, pool, what);
    }
    unsigned char rec[MP__REDIS_POOL_PACK_MAX][MP__REDIS_RESULT_HEAD];
    const char *argv[7 + MP__REDIS_POOL_PACK_MAX] = {"EVAL",
                                                     purge_lua,
                                                     "3",
                                                     k_tasks,
                                                     k_res ? k_res : k_tasks,
                                                     k_client ? k_client : k_tasks,
                                                     MP__REDIS_POOL_GROUP};
    size_t alen[10 + MP__REDIS_POOL_PACK_MAX];
    int argc = 7;
    argv[argc++] = e->element[0]->str;
    argv[argc++] = MP__REDIS_POOL_CLIENT_LEASE_MS_STR;
    for (uint64_t j = 0; j < ntasks; j++) {
        mp__redis_task part;
        mp__redis_task_part(&tk, j, &part);
        mp__redis_result_put_head(rec[j], part.id, MP_ECANCELED, 0);
        argv[argc] = (const char *)rec[j];
        alen[argc++] = MP__REDIS_RESULT_HEAD;
    }
    for (int i = 0; i < argc - (int)ntasks; i++)
        alen[i] = strlen(argv[i]);
    redisReply *rep = NULL;
    if (rc == 0)
        rc = mp__tool_cmdl(t, &rep, argc, argv, alen);
    if (rc == 0 && mp__tool_int(rep, 0) == 1) {
        c->entries++;
        c->tasks += (long long)ntasks;
    } else if (rc == 0) {
        c->held++;
    }
    if (rep)
        freeReplyObject(rep);
    free(k_res);
    free(k_client);
    return rc;
}

/* One chunk from *from (exclusive after the first): the number of entries
 * read, or an error. */
static int purge_chunk(mp__tool *t, const char *pool, const char *k_tasks, char *from,
                       purge_count *c)
{
    redisReply *rep;
    int rc = mp__tool_cmd(t, &rep, 6,
                          (const char *[]){"XRANGE", k_tasks, from, "+", "COUNT", PURGE_CHUNK});
    if (rc == MP_ESERVER)
        return 0; /* not a stream: nothing to purge */
    if (rc < 0)
        return rc;
    int n = 0;
    for (size_t i = 0; rc == 0 && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len > 48 ||
            e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        rc = purge_entry(t, pool, k_tasks, e, c);
        snprintf(from, 64, "(%s", e->element[0]->str);
        n++;
    }
    freeReplyObject(rep);
    return rc < 0 ? rc : n;
}

int mp__tool_pool_purge(mp__tool *t, const char *pool)
{
    int rc = mp__tool_pool_known(t, pool);
    if (rc != 0)
        return rc;
    char *k_tasks;
    rc = mp__tool_pool_key(t, &k_tasks, pool, "tasks");
    if (rc < 0)
        return mp__tool_fail(rc, "cannot purge pool '%s'", pool);
    purge_count c = {0, 0, 0};
    char from[64] = "-";
    while ((rc = purge_chunk(t, pool, k_tasks, from, &c)) > 0)
        ;
    free(k_tasks);
    if (rc < 0)
        return mp__tool_fail(rc, "purge of pool '%s' stopped after %lld entries", pool, c.entries);
    if (t->json) {
        fputs("{\"pool\":", stdout);
        mp__tool_json_str(stdout, pool, strlen(pool));
        printf(",\"purged_entries\":%lld,\"purged_tasks\":%lld,\"running_entries\":%lld}\n",
               c.entries, c.tasks, c.held);
    } else {
        printf("purged %lld entries (%lld tasks, answered MP_ECANCELED); %lld running entries "
               "left to their workers\n",
               c.entries, c.tasks, c.held);
    }
    return MP__TOOL_OK;
}
