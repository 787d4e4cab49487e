/* What the Redis backend does not offer: the empty slots of its operation
 * tables (redis/redis_ops.c) must be exactly the functions that
 * multiproc/manager.h lists between its "NOT ON REDIS" marker lines, and
 * each of them must answer MP_ENOSYS (NULL for a function that returns a
 * pointer) on a Redis handle. MP_MANAGER_HEADER is the header's path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_test.h"
#include "redis/redis_internal.h"
#include "redis_server.h"

#define NAMES_MAX    128
#define NAME_MAX_LEN 64

typedef struct names {
    size_t n;
    char name[NAMES_MAX][NAME_MAX_LEN];
} names;

static void names_add(names *s, const char *name)
{
    cr_assert_lt(s->n, NAMES_MAX);
    cr_assert_lt(strlen(name), NAME_MAX_LEN, "name too long: %s", name);
    snprintf(s->name[s->n++], NAME_MAX_LEN, "%s", name);
}

static bool names_has(const names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return true;
    return false;
}

/* The empty slots, as public function names mp_<type>_<op>. */
static void add_empty(const char *type, const char *op, bool filled, void *arg)
{
    char name[NAME_MAX_LEN];
    if (filled)
        return;
    snprintf(name, sizeof(name), "mp_%s_%s", type, op);
    names_add(arg, name);
}

static void table_list(names *s)
{
    memset(s, 0, sizeof(*s));
    mp__redis_ops_each(add_empty, s);
}

#define BEGIN_MARK "---- BEGIN NOT ON REDIS ----"
#define END_MARK   "---- END NOT ON REDIS ----"

/* The names between the marker lines of the header: every token that
 * starts with "mp_". */
static void doc_list(names *s)
{
    memset(s, 0, sizeof(*s));
    FILE *f = fopen(MP_MANAGER_HEADER, "r");
    cr_assert_not_null(f, "cannot open %s", MP_MANAGER_HEADER);
    char line[512];
    int state = 0; /* 0 before the list, 1 in it, 2 after */
    while (state < 2 && fgets(line, sizeof(line), f)) {
        if (strstr(line, BEGIN_MARK)) {
            cr_assert_eq(state, 0, "two begin markers");
            state = 1;
            continue;
        }
        if (strstr(line, END_MARK)) {
            cr_assert_eq(state, 1, "end marker before the begin marker");
            state = 2;
            continue;
        }
        if (state != 1)
            continue;
        for (char *tok = strtok(line, " \t\r\n*,;."); tok; tok = strtok(NULL, " \t\r\n*,;.")) {
            cr_assert(strncmp(tok, "mp_", 3) == 0, "unexpected word in the list: %s", tok);
            cr_assert(!names_has(s, tok), "%s listed twice", tok);
            names_add(s, tok);
        }
    }
    fclose(f);
    cr_assert_eq(state, 2, "the marker lines are missing from %s", MP_MANAGER_HEADER);
}

TestSuite(redis_enosys, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 60);

Test(redis_enosys, documented_list_is_the_tables_empty_slots)
{
    names doc, table;
    doc_list(&doc);
    table_list(&table);
    cr_assert_gt(table.n, 0);
    for (size_t i = 0; i < table.n; i++)
        cr_expect(names_has(&doc, table.name[i]),
                  "%s is an empty slot but is not listed in multiproc/manager.h", table.name[i]);
    for (size_t i = 0; i < doc.n; i++)
        cr_expect(names_has(&table, doc.name[i]),
                  "%s is listed in multiproc/manager.h but its slot is filled (or no slot)",
                  doc.name[i]);
}

/* ---- each empty slot answers MP_ENOSYS ------------------------------------ */

typedef struct handles {
    mp_queue *q;
    mp_value *v;
    mp_array *a;
} handles;

/* A call of the public function; returns its code, or for a function that
 * returns a pointer MP_ENOSYS when it returned NULL (0 otherwise). */
typedef struct call {
    const char *name;
    int (*run)(handles *h);
} call;

static char space[16];

static int q_get_many(handles *h)
{
    size_t lens[2];
    return mp_queue_get_many(h->q, space, sizeof(space), lens, 2, 0);
}
static int q_reserve(handles *h)
{
    void *buf;
    return mp_queue_reserve(h->q, 4, &buf, 0);
}
static int q_commit(handles *h)
{
    return mp_queue_commit(h->q, space);
}
static int q_abort(handles *h)
{
    return mp_queue_abort(h->q, space);
}
static int q_peek(handles *h)
{
    const void *data;
    size_t n;
    return mp_queue_peek(h->q, &data, &n, 0);
}
static int q_release(handles *h)
{
    return mp_queue_release(h->q, space);
}
static int q_close(handles *h)
{
    return mp_queue_close(h->q);
}
static int q_task_done(handles *h)
{
    return mp_queue_task_done(h->q);
}
static int q_join(handles *h)
{
    return mp_queue_join(h->q, 0);
}
static int v_get_lock(handles *h)
{
    return mp_value_get_lock(h->v) ? 0 : MP_ENOSYS;
}
static int v_data(handles *h)
{
    return mp_value_data(h->v) ? 0 : MP_ENOSYS;
}
static int a_get_lock(handles *h)
{
    return mp_array_get_lock(h->a) ? 0 : MP_ENOSYS;
}
static int a_data(handles *h)
{
    return mp_array_data(h->a) ? 0 : MP_ENOSYS;
}

static const call calls[] = {
    {"mp_queue_get_many", q_get_many}, {"mp_queue_reserve", q_reserve},
    {"mp_queue_commit", q_commit},     {"mp_queue_abort", q_abort},
    {"mp_queue_peek", q_peek},         {"mp_queue_release", q_release},
    {"mp_queue_close", q_close},       {"mp_queue_task_done", q_task_done},
    {"mp_queue_join", q_join},         {"mp_value_get_lock", v_get_lock},
    {"mp_value_data", v_data},         {"mp_array_get_lock", a_get_lock},
    {"mp_array_data", a_data},
};

Test(redis_enosys, every_empty_slot_answers_enosys)
{
    mp_test_redis srv;
    cr_assert(mp_test_redis_start(&srv, "pw") == 0, "cannot start redis-server: %s", srv.error);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    handles h;
    mp_assert_rc(mp_manager_queue(m, "q", NULL, &h.q), 1);
    mp_assert_rc(mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'q'}, &h.v), 1);
    mp_assert_rc(mp_manager_array(m, "a", &(mp_array_opts){.typecode = 'd', .len = 2}, &h.a), 1);
    names table;
    table_list(&table);
    for (size_t i = 0; i < table.n; i++) {
        const call *c = NULL;
        for (size_t j = 0; j < sizeof(calls) / sizeof(calls[0]); j++)
            if (strcmp(calls[j].name, table.name[i]) == 0)
                c = &calls[j];
        cr_assert_not_null(c, "no call for the empty slot %s: add one to calls[]", table.name[i]);
        int rc = c->run(&h);
        cr_expect_eq(rc, MP_ENOSYS, "%s gave %s", c->name, mp_err_name(rc));
    }
    /* The handles still work: a refused call changed nothing. */
    mp_assert_ok(mp_queue_put(h.q, "x", 1, 0));
    size_t n;
    mp_assert_ok(mp_queue_qsize(h.q, &n));
    cr_assert_eq(n, 1);
    mp_queue_destroy(h.q);
    mp_value_destroy(h.v);
    mp_array_destroy(h.a);
    mp_manager_close(m);
    mp_test_redis_stop(&srv, 0);
}

/* A Redis handle given to the functions of another type is refused, as a
 * local object is by its magic, instead of reaching another table. */
Test(redis_enosys, handle_of_another_type_is_einval)
{
    mp_test_redis srv;
    cr_assert(mp_test_redis_start(&srv, "pw") == 0, "cannot start redis-server: %s", srv.error);
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_list *l;
    mp_lock *lk;
    mp_rlock *rl;
    mp_value *v;
    mp_assert_rc(mp_manager_list(m, "l", &l), 1);
    mp_assert_rc(mp_manager_lock(m, "k", &lk), 1);
    mp_assert_rc(mp_manager_rlock(m, "r", &rl), 1);
    mp_assert_rc(mp_manager_value(m, "v", &(mp_value_opts){.typecode = 'q'}, &v), 1);
    size_t n;
    mp_assert_rc(mp_dict_len((mp_dict *)(void *)l, &n), MP_EINVAL);
    mp_assert_rc(mp_queue_qsize((mp_queue *)(void *)l, &n), MP_EINVAL);
    mp_assert_rc(mp_rlock_count((mp_rlock *)(void *)lk), MP_EINVAL);
    mp_assert_rc(mp_lock_acquire((mp_lock *)(void *)rl, 0), MP_EINVAL);
    mp_assert_rc(mp_sem_get_value((mp_sem *)(void *)v), MP_EINVAL);
    cr_assert_eq(mp_array_len((mp_array *)(void *)v), 0);
    cr_assert_eq(mp_array_typecode((mp_array *)(void *)v), 0);
    int64_t x;
    mp_assert_rc(mp_array_get_i64((mp_array *)(void *)v, 0, &x), MP_EINVAL);
    /* The handles are intact. */
    mp_assert_ok(mp_list_len(l, &n));
    mp_assert_ok(mp_lock_acquire(lk, 1));
    mp_assert_ok(mp_lock_release(lk));
    mp_assert_rc(mp_rlock_count(rl), 0);
    mp_assert_ok(mp_value_get_i64(v, &x));
    mp_list_destroy(l);
    mp_lock_destroy(lk);
    mp_rlock_destroy(rl);
    mp_value_destroy(v);
    mp_manager_close(m);
    mp_test_redis_stop(&srv, 0);
}

/* Memory that looks like a Redis handle's head is refused, whatever its
 * table pointer holds, without a fault. */
Test(redis_enosys, forged_head_is_einval)
{
    static const uint32_t not_a_table[4] = {0x12345678u, 0, 0, 0};
    const void *tables[] = {NULL, (const void *)8, (const void *)not_a_table,
                            (const char *)not_a_table + 1};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        mp__remote_head h = {.head = {.magic = 1, .backend = MP__BACKEND_REDIS}, .ops = tables[i]};
        size_t n;
        mp_assert_rc(mp_dict_len((mp_dict *)(void *)&h, &n), MP_EINVAL);
        mp_assert_rc(mp_queue_put((mp_queue *)(void *)&h, "x", 1, 0), MP_EINVAL);
        mp_assert_rc(mp_lock_acquire((mp_lock *)(void *)&h, 0), MP_EINVAL);
        cr_assert_eq(mp_array_len((mp_array *)(void *)&h), 0);
        mp_value_destroy((mp_value *)(void *)&h);
        mp__handle_freed(); /* the next h, at the same address, is probed again */
    }
}
