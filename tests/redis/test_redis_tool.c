/* Tests of the operations tool (tools/multiproc) against a live pool: a
 * real redis-server (tests/helpers/redis_server.h), forked workers and a
 * client in the test process. The tool binary (MP_TOOL, from CMake) runs
 * as a child; its --json output is parsed here (json below) and checked
 * against what the pool holds. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis/redis_pool.h"
#include "redis_server.h"

#ifndef MP_TOOL
#error "MP_TOOL: the path of the multiproc tool (tests/CMakeLists.txt)"
#endif

static mp_test_redis srv;

static void tool_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    mp_test_fd_check();
}

TestSuite(tool, .init = mp_test_fd_setup, .fini = tool_fini, .timeout = 60);

/* ---- a small JSON reader (what the tool prints must parse) -------------- */

typedef struct jv {
    char type; /* 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null */
    char *s;   /* a string's bytes (NUL-terminated; \u00XX as that byte) */
    double n;
    struct jv **kid;
    char **key;
    size_t nk;
} jv;

static void jfree(jv *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->nk; i++) {
        jfree(v->kid[i]);
        if (v->key)
            free(v->key[i]);
    }
    free(v->kid);
    free(v->key);
    free(v->s);
    free(v);
}

static void jws(const char **p)
{
    while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r')
        (*p)++;
}

static char *jstr(const char **p)
{
    if (**p != '"')
        return NULL;
    (*p)++;
    char *out = malloc(strlen(*p) + 1), *q = out;
    while (**p && **p != '"') {
        unsigned char c = (unsigned char)*(*p)++;
        if (c < 0x20) {
            free(out);
            return NULL; /* control bytes must be escaped */
        }
        if (c != '\\') {
            *q++ = (char)c;
            continue;
        }
        char e = *(*p)++;
        const char *map = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *m = e ? strchr(map, e) : NULL;
        if (m) {
            *q++ = to[m - map];
        } else if (e == 'u') {
            unsigned v = 0;
            for (int i = 0; i < 4; i++) {
                char h = *(*p)++;
                int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : -1;
                if (d < 0) {
                    free(out);
                    return NULL;
                }
                v = v << 4 | (unsigned)d;
            }
            *q++ = (char)v; /* the tool escapes single bytes only */
        } else {
            free(out);
            return NULL;
        }
    }
    if (**p != '"') {
        free(out);
        return NULL;
    }
    (*p)++;
    *q = '\0';
    return out;
}

static jv *jparse(const char **p);

static jv *jlist(const char **p, jv *v, bool obj)
{
    (*p)++;
    jws(p);
    if (**p == (obj ? '}' : ']')) {
        (*p)++;
        return v;
    }
    for (;;) {
        v->kid = realloc(v->kid, (v->nk + 1) * sizeof(*v->kid));
        if (obj) {
            v->key = realloc(v->key, (v->nk + 1) * sizeof(*v->key));
            jws(p);
            v->key[v->nk] = jstr(p);
            jws(p);
            if (v->key[v->nk] == NULL || *(*p)++ != ':') {
                free(v->key[v->nk]);
                return jfree(v), NULL;
            }
        }
        v->kid[v->nk] = jparse(p);
        if (v->kid[v->nk] == NULL) {
            if (obj)
                free(v->key[v->nk]);
            return jfree(v), NULL;
        }
        v->nk++;
        jws(p);
        char c = *(*p)++;
        if (c == (obj ? '}' : ']'))
            return v;
        if (c != ',')
            return jfree(v), NULL;
    }
}

static jv *jparse(const char **p)
{
    jws(p);
    jv *v = calloc(1, sizeof(*v));
    char c = **p;
    if (c == '{' || c == '[') {
        v->type = c == '{' ? 'o' : 'a';
        return jlist(p, v, c == '{');
    }
    if (c == '"') {
        v->type = 's';
        v->s = jstr(p);
        return v->s ? v : (jfree(v), NULL);
    }
    if (strncmp(*p, "true", 4) == 0 || strncmp(*p, "null", 4) == 0) {
        v->type = c == 't' ? 'b' : 'z';
        v->n = c == 't';
        *p += 4;
        return v;
    }
    if (strncmp(*p, "false", 5) == 0) {
        v->type = 'b';
        *p += 5;
        return v;
    }
    char *end;
    v->n = strtod(*p, &end);
    if (end == *p)
        return jfree(v), NULL;
    v->type = 'n';
    *p = end;
    return v;
}

/* The whole text as one JSON value (asserted). */
static jv *jdoc(const char *text)
{
    const char *p = text;
    jv *v = jparse(&p);
    cr_assert(v != NULL, "not JSON: %s", text);
    jws(&p);
    cr_assert(*p == '\0', "text after the JSON value: %s", p);
    return v;
}

static jv *jget(const jv *o, const char *key)
{
    for (size_t i = 0; o && o->type == 'o' && i < o->nk; i++)
        if (strcmp(o->key[i], key) == 0)
            return o->kid[i];
    cr_assert(false, "no key %s", key);
    return NULL;
}

static double jnum(const jv *o, const char *key)
{
    jv *v = jget(o, key);
    cr_assert(v->type == 'n', "%s is not a number", key);
    return v->n;
}

/* The element of array a whose member key is the string s, or NULL. */
static jv *jfind(const jv *a, const char *key, const char *s)
{
    for (size_t i = 0; a && a->type == 'a' && i < a->nk; i++) {
        jv *k = jget(a->kid[i], key);
        if (k->type == 's' && strcmp(k->s, s) == 0)
            return a->kid[i];
    }
    return NULL;
}

/* ---- running the tool ---------------------------------------------------- */

/* Runs the tool with the arguments (NULL-terminated); its stdout into
 * *out and stderr into *err (malloc'd). Returns its exit status. */
static int tool_run(char **out, char **err, ...)
{
    const char *argv[16] = {MP_TOOL};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (const char *a; argc < 15 && (a = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    char path[64];
    snprintf(path, sizeof(path), "/tmp/mp_tool_err.%d", (int)getpid());
    int fds[2];
    cr_assert(pipe2(fds, O_CLOEXEC) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* A test that times out takes the tool with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int e = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fds[1], 1);
        dup2(e, 2);
        execv(MP_TOOL, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fds[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 1024)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fds[0]);
    int st;
    cr_assert(waitpid(pid, &st, 0) == pid);
    FILE *f = fopen(path, "r");
    char *e = calloc(1, 4096);
    if (f) {
        size_t k = fread(e, 1, 4095, f);
        e[k] = '\0';
        fclose(f);
    }
    unlink(path);
    *out = buf;
    if (err)
        *err = e;
    else
        free(e);
    cr_assert(WIFEXITED(st), "the tool died: %s", e);
    return WEXITSTATUS(st);
}

/* Runs the tool, asserts exit 0, parses its JSON output. */
static jv *tool_json(const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *out, *err;
    int rc = tool_run(&out, &err, "--json", a1, a2, a3, a4, (char *)NULL);
    cr_assert_eq(rc, 0, "%s %s: exit %d: %s", a1, a2 ? a2 : "", rc, err);
    jv *v = jdoc(out);
    free(out);
    free(err);
    return v;
}

/* Runs the tool expecting exit status want and a message containing what. */
static void tool_fails(int want, const char *what, const char *a1, const char *a2, const char *a3,
                       const char *a4, const char *a5)
{
    char *out, *err;
    int rc = tool_run(&out, &err, a1, a2, a3, a4, a5, (char *)NULL);
    cr_assert_eq(rc, want, "%s %s: exit %d (want %d): %s", a1, a2 ? a2 : "", rc, want, err);
    cr_assert(strstr(err, what) != NULL, "stderr '%s' does not say '%s'", err, what);
    free(out);
    free(err);
}

/* ---- tasks --------------------------------------------------------------- */

static int square(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)ctx;
    int64_t x;
    if (in_len != sizeof(x) || out_cap < sizeof(x))
        return 99;
    memcpy(&x, in, sizeof(x));
    x *= x;
    memcpy(out, &x, sizeof(x));
    *out_len = sizeof(x);
    return 0;
}

static int nap(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len, void *ctx)
{
    usleep(1500000);
    return square(in, in_len, out, out_cap, out_len, ctx);
}

/* Kills its worker while the flag file exists; else leaves a trace file
 * and squares. in: the directory holding both. */
static int crash_on_flag(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                         void *ctx)
{
    (void)ctx, (void)out_cap;
    char path[256];
    snprintf(path, sizeof(path), "%.*s/flag", (int)in_len, (const char *)in);
    if (access(path, F_OK) == 0)
        raise(SIGKILL);
    snprintf(path, sizeof(path), "%.*s/ran", (int)in_len, (const char *)in);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    if (fd >= 0)
        close(fd);
    memcpy(out, "ran", 3);
    *out_len = 3;
    return 0;
}

static void server_up(void)
{
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    mp_assert_ok(mp_task_register("square", square));
    mp_assert_ok(mp_task_register("nap", nap));
    mp_assert_ok(mp_task_register("crash_on_flag", crash_on_flag));
}

/* A command on the test's connection; the reply (freeReplyObject). */
static redisReply *redis(mp_manager *m, int argc, const char **argv)
{
    redisReply *rep;
    mp_assert_ok(
        mp__redis_cmd(mp__manager_redis_conn(m), MP__RR_ANY_VALUE, &rep, argc, argv, NULL));
    return rep;
}

/* An integer command on a pool key (<prefix>pool:<pool>:<what>). */
static long long pool_int(mp_manager *m, const char *cmd, const char *pool, const char *what)
{
    char *k;
    mp_assert_ok(mp__redis_pool_key(&k, mp__redis_prefix(mp__manager_redis_conn(m)), pool, what));
    redisReply *rep = redis(m, 2, (const char *[]){cmd, k});
    cr_assert_eq(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    free(k);
    return v;
}

/* Waits up to 5 s for pool_int(...) to be want (asserted). */
static void wait_int(mp_manager *m, const char *cmd, const char *pool, const char *what,
                     long long want)
{
    long long v = -1;
    for (int i = 0; i < 100 && (v = pool_int(m, cmd, pool, what)) != want; i++)
        usleep(50000);
    cr_assert_eq(v, want, "%s %s:%s is %lld, want %lld", cmd, pool, what, v, want);
}

static mp_pool *make_pool(mp_manager *m, const char *name)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.manager = m, .name = name}));
    return p;
}

/* The pool named name in a status document (asserted). */
static jv *status_pool(const jv *st, const char *name)
{
    jv *p = jfind(jget(st, "pools"), "name", name);
    cr_assert(p != NULL, "pool %s not in status", name);
    return p;
}

/* ---- status --------------------------------------------------------------- */

Test(tool, status_shows_the_pools_their_workers_and_their_counts)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_worker_opts o = {.executors = 1, .heartbeat_interval = 0.2};
    pid_t w[2] = {mp_test_pool_worker(srv.url, "jobs", &o),
                  mp_test_pool_worker(srv.url, "jobs", &o)};
    mp_pool *p = make_pool(m, "jobs");
    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = i;
    mp_assert_ok(mp_pool_map(p,
                             &(mp_map_spec){.fn = square,
                                            .in = in,
                                            .n = 100,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 1},
                             30));
    /* The workers publish their counts with their next beats. */
    jv *st = NULL, *pool = NULL;
    double sum = -1;
    for (int tries = 0; tries < 50 && sum != 100; tries++) {
        jfree(st);
        usleep(tries ? 100000 : 0);
        st = tool_json("status", srv.url, NULL, NULL);
        pool = status_pool(st, "jobs");
        jv *ws = jget(pool, "workers");
        sum = 0;
        for (size_t i = 0; i < ws->nk; i++)
            sum += jnum(ws->kid[i], "done");
    }
    cr_assert_eq(sum, 100, "the workers answered 100 tasks between them");
    cr_assert_eq(jnum(pool, "done"), 100);
    cr_assert_eq(jnum(pool, "failed"), 0);
    cr_assert_eq(jnum(pool, "pending"), 0);
    cr_assert_eq(jnum(pool, "running"), 0);
    cr_assert_eq(jnum(pool, "dead"), 0);
    cr_assert(jnum(pool, "done_per_s") >= 0);
    jv *ws = jget(pool, "workers");
    cr_assert_eq(ws->nk, 2);
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    for (size_t i = 0; i < 2; i++) {
        jv *x = ws->kid[i];
        cr_assert(jget(x, "alive")->type == 'b' && jget(x, "alive")->n == 1);
        cr_assert_str_eq(jget(x, "host")->s, host);
        pid_t pid = (pid_t)jnum(x, "pid");
        cr_assert(pid == w[0] || pid == w[1], "pid %d is not a worker's", (int)pid);
        cr_assert_eq(jnum(x, "executors"), 1);
        double age = jnum(x, "last_heartbeat_age_s");
        cr_assert(age >= 0 && age < 1.0, "last beat %.3f s ago", age);
    }
    jfree(st);
    /* Tasks of a pool nobody serves are pending. */
    mp_pool *q = make_pool(m, "idle");
    mp_async *a[3];
    for (int i = 0; i < 3; i++)
        mp_assert_ok(mp_pool_apply_async(q, square, NULL, &in[i], 8, 8, NULL, NULL, NULL, &a[i]));
    cr_assert(mp_pool_poll(q) >= 0); /* the held ones go out */
    st = tool_json("status", srv.url, NULL, NULL);
    pool = status_pool(st, "idle");
    cr_assert_eq(jnum(pool, "pending"), 3);
    cr_assert_eq(jnum(pool, "running"), 0);
    cr_assert(jnum(pool, "oldest_pending_age_s") >= 0);
    cr_assert_eq(jget(pool, "oldest_running_age_s")->type, 'z', "nothing runs");
    cr_assert_eq(jget(pool, "workers")->nk, 0);
    jfree(st);
    /* The table names both pools. */
    char *text;
    cr_assert_eq(tool_run(&text, NULL, "status", srv.url, (char *)NULL), 0);
    cr_assert(strstr(text, "PENDING") && strstr(text, "jobs") && strstr(text, "idle"), "%s", text);
    free(text);
    for (int i = 0; i < 3; i++)
        mp_async_destroy(a[i]);
    mp_pool_destroy(q);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "jobs", w, 2);
    mp_manager_close(m);
}

Test(tool, status_watch_prints_snapshots_until_sigterm)
{
    server_up();
    int fds[2];
    cr_assert(pipe2(fds, O_CLOEXEC) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        execl(MP_TOOL, MP_TOOL, "--json", "status", "--watch", "0.2", srv.url, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    usleep(1000000);
    kill(pid, SIGTERM);
    char buf[65536];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fds[0]);
    int st;
    cr_assert(waitpid(pid, &st, 0) == pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the tool ends cleanly on SIGTERM");
    int docs = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"), docs++)
        jfree(jdoc(line));
    cr_assert(docs >= 2, "%d snapshots in a second at 0.2 s", docs);
}

/* ---- pool purge ----------------------------------------------------------- */

Test(tool, pool_purge_removes_waiting_tasks_and_leaves_the_running_one)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_worker_opts o = {.executors = MP_WORKER_INLINE, .prefetch = 1, .heartbeat_interval = 0.2};
    pid_t w = mp_test_pool_worker(srv.url, "jobs", &o);
    mp_pool *p = make_pool(m, "jobs");
    int64_t five = 5, x = 0;
    mp_async *slow, *a[4];
    mp_assert_ok(mp_pool_apply_async(p, nap, NULL, &five, 8, 8, NULL, NULL, NULL, &slow));
    jv *st = NULL;
    for (int tries = 0; tries < 100; tries++) {
        jfree(st);
        st = tool_json("status", srv.url, NULL, NULL);
        if (jnum(status_pool(st, "jobs"), "running") == 1)
            break;
        usleep(50000);
    }
    cr_assert_eq(jnum(status_pool(st, "jobs"), "running"), 1, "the worker runs the nap");
    cr_assert(jnum(status_pool(st, "jobs"), "oldest_running_age_s") >= 0);
    cr_assert_eq(jget(status_pool(st, "jobs"), "oldest_pending_age_s")->type, 'z');
    jfree(st);
    for (int i = 0; i < 4; i++)
        mp_assert_ok(mp_pool_apply_async(p, square, NULL, &five, 8, 8, NULL, NULL, NULL, &a[i]));
    cr_assert(mp_pool_poll(p) >= 0);
    jv *r = tool_json("pool", "purge", srv.url, "jobs");
    cr_assert_eq(jnum(r, "purged_entries"), 4);
    cr_assert_eq(jnum(r, "purged_tasks"), 4);
    cr_assert_eq(jnum(r, "running_entries"), 1);
    jfree(r);
    /* Their client is answered at once; the running task completes. */
    for (int i = 0; i < 4; i++) {
        mp_assert_rc(mp_async_get(a[i], &x, 8, NULL, 5), MP_ECANCELED);
        mp_async_destroy(a[i]);
    }
    mp_assert_ok(mp_async_get(slow, &x, 8, NULL, 10));
    cr_assert_eq(x, 25);
    mp_async_destroy(slow);
    /* The worker serves on. */
    mp_assert_ok(mp_pool_apply(p, square, NULL, &five, 8, &x, 8, NULL, 10));
    wait_int(m, "XLEN", "jobs", "tasks", 0);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "jobs", &w, 1);
    mp_manager_close(m);
}

/* ---- dead letters --------------------------------------------------------- */

/* Whether the client's result list holds a record of task id that ran
 * and returned "ran". */
static bool result_listed(mp_manager *m, mp_pool *p, uint64_t id)
{
    const mp__redis_pool *rp = (const mp__redis_pool *)p;
    redisReply *rep = redis(m, 4, (const char *[]){"LRANGE", rp->k_results, "0", "-1"});
    bool found = false;
    for (size_t i = 0; i < rep->elements && !found; i++) {
        mp__redis_result r;
        int32_t code;
        const unsigned char *data;
        size_t len;
        if (mp__redis_result_decode(rep->element[i]->str, rep->element[i]->len, &r) == 0 &&
            r.id == id && r.code == 0 && mp__redis_result_next(&r, &code, &data, &len) == 0)
            found = code == 0 && len == 3 && memcmp(data, "ran", 3) == 0;
    }
    freeReplyObject(rep);
    return found;
}

Test(tool, a_dead_letter_is_listed_shown_and_retried_to_its_client)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    char flag[128], ran[128];
    snprintf(flag, sizeof(flag), "%s/flag", srv.dir);
    snprintf(ran, sizeof(ran), "%s/ran", srv.dir);
    close(open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    mp_worker_opts o = {.visibility_timeout = 0.3,
                        .max_deliveries = 2,
                        .executors = MP_WORKER_INLINE,
                        .heartbeat_interval = 0.05};
    pid_t w = mp_test_pool_worker(srv.url, "p", &o);
    mp_pool *p = make_pool(m, "p");
    mp_async *a;
    mp_assert_ok(mp_pool_apply_async(p, crash_on_flag, NULL, srv.dir, strlen(srv.dir), 8, NULL,
                                     NULL, NULL, &a));
    /* Each delivery kills its worker; a new one takes over. */
    while (!mp_async_ready(a)) {
        int st;
        if (waitpid(w, &st, WNOHANG) == w)
            w = mp_test_pool_worker(srv.url, "p", &o);
        mp_async_wait(a, 0.05);
    }
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 0), MP_EWORKERLOST);
    mp_async_destroy(a);
    jv *d = tool_json("dead", "list", srv.url, "p");
    jv *list = jget(d, "dead");
    cr_assert_eq(list->nk, 1);
    jv *e = list->kid[0], *task = jget(e, "task");
    cr_assert_str_eq(jget(e, "reason")->s, "worker lost");
    cr_assert_eq(jnum(e, "deliveries"), 3);
    cr_assert_str_eq(jget(task, "function")->s, "n:crash_on_flag");
    cr_assert_str_eq(jget(task, "client")->s, ((mp__redis_pool *)p)->client);
    uint64_t task_id = (uint64_t)jnum(task, "id");
    char id[64];
    snprintf(id, sizeof(id), "%s", jget(e, "id")->s);
    jfree(d);
    tool_fails(2, "usage", "dead", "show", srv.url, "p", NULL);
    char *out, *err;
    cr_assert_eq(tool_run(&out, &err, "--json", "dead", "show", srv.url, "p", id, (char *)NULL), 0,
                 "%s", err);
    d = jdoc(out);
    cr_assert_str_eq(jget(jget(d, "fields"), "in")->s, srv.dir);
    jfree(d);
    free(out);
    free(err);
    /* Bad ids change nothing. */
    tool_fails(1, "bad dead-letter id", "dead", "show", srv.url, "p", "zz");
    tool_fails(1, "unknown dead-letter id", "dead", "retry", srv.url, "p", "1-1");
    cr_assert_eq(pool_int(m, "XLEN", "p", "dead"), 1);
    /* Retried without the flag, the task runs and answers its client. */
    unlink(flag);
    cr_assert_eq(tool_run(&out, &err, "dead", "retry", srv.url, "p", id, (char *)NULL), 0, "%s",
                 err);
    cr_assert(strstr(out, "retried") != NULL, "%s", out);
    free(out);
    free(err);
    cr_assert_eq(pool_int(m, "XLEN", "p", "dead"), 0);
    bool listed = false;
    for (int i = 0; i < 100 && !listed; i++) {
        usleep(50000);
        listed = access(ran, F_OK) == 0 && result_listed(m, p, task_id);
    }
    cr_assert(access(ran, F_OK) == 0, "the retried task ran");
    cr_assert(listed, "its result is on its client's list");
    wait_int(m, "XLEN", "p", "tasks", 0);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

/* Adds n malformed entries to the pool's stream: a worker sends each to
 * the dead-letter stream at once (reason "malformed"). */
static void add_malformed(mp_manager *m, const char *pool, int n)
{
    char *k;
    mp_assert_ok(
        mp__redis_pool_key(&k, mp__redis_prefix(mp__manager_redis_conn(m)), pool, "tasks"));
    for (int i = 0; i < n; i++)
        freeReplyObject(redis(m, 5, (const char *[]){"XADD", k, "*", "x", "y"}));
    free(k);
}

Test(tool, dead_purge_removes_one_letter_or_all)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_worker_opts o = {.executors = 1, .heartbeat_interval = 0.2};
    pid_t w = mp_test_pool_worker(srv.url, "p", &o);
    mp_pool *p = make_pool(m, "p");
    int64_t x = 3, y = 0;
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 10)); /* the group exists */
    add_malformed(m, "p", 3);
    wait_int(m, "XLEN", "p", "dead", 3);
    jv *d = tool_json("dead", "list", srv.url, "p");
    jv *list = jget(d, "dead");
    cr_assert_eq(list->nk, 3);
    cr_assert_str_eq(jget(list->kid[0], "reason")->s, "malformed");
    cr_assert_eq(jget(list->kid[0], "task")->type, 'z');
    char id[64];
    snprintf(id, sizeof(id), "%s", jget(list->kid[0], "id")->s);
    jfree(d);
    char *out, *err;
    cr_assert_eq(tool_run(&out, &err, "dead", "purge", srv.url, "p", id, (char *)NULL), 0, "%s",
                 err);
    free(out);
    free(err);
    cr_assert_eq(pool_int(m, "XLEN", "p", "dead"), 2);
    tool_fails(1, "unknown dead-letter id", "dead", "purge", srv.url, "p", id);
    tool_fails(2, "usage", "dead", "purge", srv.url, "p", NULL);
    cr_assert_eq(
        tool_run(&out, &err, "--json", "dead", "purge", srv.url, "p", "--all", (char *)NULL), 0,
        "%s", err);
    d = jdoc(out);
    cr_assert_eq(jnum(d, "purged"), 2);
    jfree(d);
    free(out);
    free(err);
    cr_assert_eq(pool_int(m, "XLEN", "p", "dead"), 0);
    /* The worker serves on. */
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 10));
    cr_assert_eq(y, 9);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
}

/* ---- objects --------------------------------------------------------------- */

Test(tool, objects_lists_hostile_names_with_their_types)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    mp_dict *d;
    mp_list *l;
    mp_queue *q;
    mp_lock *k;
    mp_event *e;
    cr_assert(mp_manager_dict(m, "a:owner", &d) >= 0);
    cr_assert(mp_manager_list(m, "%3A\"x\\", &l) >= 0);
    cr_assert(mp_manager_queue(m, "q:%", &(mp_queue_opts){0}, &q) >= 0);
    cr_assert(mp_manager_lock(m, "names", &k) >= 0);
    cr_assert(mp_manager_event(m, "ev\001:", &e) >= 0);
    jv *o = tool_json("objects", srv.url, NULL, NULL);
    jv *list = jget(o, "objects");
    cr_assert_eq(list->nk, 5);
    static const char *const want[][2] = {{"a:owner", "dict"},
                                          {"%3A\"x\\", "list"},
                                          {"q:%", "queue"},
                                          {"names", "lock"},
                                          {"ev\001:", "event"}};
    for (int i = 0; i < 5; i++) {
        jv *x = jfind(list, "name", want[i][0]);
        cr_assert(x != NULL, "object %s not listed", want[i][0]);
        cr_assert_str_eq(jget(x, "type")->s, want[i][1]);
    }
    jfree(o);
    char *text;
    cr_assert_eq(tool_run(&text, NULL, "objects", srv.url, (char *)NULL), 0);
    cr_assert(strstr(text, "a:owner") && strstr(text, "ev\\x01:"), "%s", text);
    free(text);
    mp_dict_destroy(d);
    mp_list_destroy(l);
    mp_queue_destroy(q);
    mp_lock_destroy(k);
    mp_event_destroy(e);
    mp_manager_close(m);
}

/* ---- bad input ------------------------------------------------------------- */

/* The number of keys of the server, to show a failed command changed
 * nothing. */
static long long dbsize(mp_manager *m)
{
    redisReply *rep = redis(m, 1, (const char *[]){"DBSIZE"});
    long long n = rep->integer;
    freeReplyObject(rep);
    return n;
}

Test(tool, bad_input_fails_with_a_message_and_changes_nothing)
{
    server_up();
    mp_manager *m;
    mp_assert_ok(mp_manager_open(&m, srv.url));
    pid_t w = mp_test_pool_worker(srv.url, "p", &(mp_worker_opts){.executors = 1});
    mp_pool *p = make_pool(m, "p");
    int64_t x = 3, y = 0;
    mp_assert_ok(mp_pool_apply(p, square, NULL, &x, 8, &y, 8, NULL, 10));
    add_malformed(m, "p", 1);
    wait_int(m, "XLEN", "p", "dead", 1);
    long long keys = dbsize(m);
    tool_fails(1, "unknown pool 'nope'", "dead", "list", srv.url, "nope", NULL);
    tool_fails(1, "unknown pool", "dead", "retry", srv.url, "nope", "--all");
    tool_fails(1, "unknown pool", "dead", "purge", srv.url, "nope", "--all");
    tool_fails(1, "unknown pool", "pool", "purge", srv.url, "p:x", NULL);
    tool_fails(1, "bad dead-letter id", "dead", "purge", srv.url, "p", "12");
    tool_fails(1, "unknown dead-letter id", "dead", "show", srv.url, "p", "99999999-0");
    tool_fails(1, "bad URL", "status", "http://x", NULL, NULL, NULL);
    tool_fails(1, "bad URL", "status", "redis://127.0.0.1:99999", NULL, NULL, NULL);
    tool_fails(2, "usage", "dead", "list", srv.url, NULL, NULL);
    tool_fails(2, "unknown option", "status", srv.url, "--bogus", NULL, NULL);
    tool_fails(2, "usage", "frobnicate", srv.url, NULL, NULL, NULL);
    char bad_pw[200];
    snprintf(bad_pw, sizeof(bad_pw), "redis://:wrong@127.0.0.1:%d", srv.port);
    tool_fails(1, "cannot reach the server", "status", bad_pw, NULL, NULL, NULL);
    cr_assert_eq(dbsize(m), keys, "a failed command changed nothing");
    cr_assert_eq(pool_int(m, "XLEN", "p", "dead"), 1);
    mp_pool_destroy(p);
    mp_test_pool_workers_stop(m, "p", &w, 1);
    mp_manager_close(m);
    /* A server that is gone. */
    char url[160];
    snprintf(url, sizeof(url), "%s", srv.url);
    mp_test_redis_stop(&srv, 0);
    tool_fails(1, "cannot reach the server", "status", url, NULL, NULL, NULL);
    tool_fails(1, "cannot reach the server", "dead", "retry", url, "p", "--all");
}
