/* The tool's connection and its view of the key layout. Keys are built by
 * the library (mp__redis_key, mp__redis_pool_key); a key found by SCAN is
 * taken for a pool's only when building the key from the name read back
 * gives the same bytes, so the tool never reads a key the library would
 * not write. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

int mp__tool_fail(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("multiproc: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (rc < 0)
        fprintf(stderr, ": %s (%s)", mp_strerror(rc), mp_err_name(rc));
    fputc('\n', stderr);
    return MP__TOOL_ERROR;
}

int mp__tool_connect(mp__tool *t, const char *url)
{
    mp__redis_url u;
    if (url == NULL || strncmp(url, "redis", 5) != 0) {
        mp__tool_fail(0,
                      "bad URL '%s' (expected redis://[[user]:password@]host[:port][/db]"
                      "[?prefix=...])",
                      url ? url : "");
        return MP_EINVAL;
    }
    int rc = mp__redis_url_parse(&u, url);
    if (rc < 0) {
        mp__tool_fail(rc, "bad URL");
        return rc;
    }
    bool tls = u.tls;
    rc = mp__redis_open(&t->conn, &u);
    mp__redis_url_fini(&u);
    if (rc < 0) {
        t->conn = NULL;
        if (rc == MP_ENOSYS && tls)
            mp__tool_fail(0, "rediss:// (TLS) is not supported by this build: use a local TLS "
                             "tunnel (docs/redis.md)");
        else
            mp__tool_fail(rc, "cannot reach the server");
        return rc;
    }
    t->prefix = mp__redis_prefix(t->conn);
    return 0;
}

void mp__tool_disconnect(mp__tool *t)
{
    if (t->conn)
        mp__redis_unref(t->conn);
    t->conn = NULL;
}

int mp__tool_cmdl(mp__tool *t, redisReply **rep, int argc, const char **argv, const size_t *lens)
{
    return mp__redis_cmd(t->conn, MP__RR_ANY_VALUE, rep, argc, argv, lens);
}

int mp__tool_cmd(mp__tool *t, redisReply **rep, int argc, const char **argv)
{
    return mp__tool_cmdl(t, rep, argc, argv, NULL);
}

int mp__tool_pool_key(mp__tool *t, char **out, const char *pool, const char *what)
{
    return mp__redis_pool_key(out, t->prefix, pool, what);
}

void mp__tool_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int strv_add(char ***v, size_t *n, size_t *cap, const char *s, size_t len)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        char **nv = realloc(*v, c * sizeof(*nv));
        if (nv == NULL)
            return MP_ENOMEM;
        *v = nv;
        *cap = c;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return MP_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    (*v)[(*n)++] = copy;
    return 0;
}

/* The SCAN pattern for keys that begin with literal and then match glob. */
static char *scan_pattern(const char *literal, const char *glob)
{
    size_t n = strlen(literal), g = strlen(glob);
    char *p = malloc(2 * n + g + 1), *q = p;
    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strchr("*?[]\\", literal[i]))
            *q++ = '\\';
        *q++ = literal[i];
    }
    memcpy(q, glob, g + 1);
    return p;
}

/* One SCAN step: the cursor's next value into cursor, keys appended. */
static int scan_step(mp__tool *t, const char *pattern, char cursor[32], char ***keys, size_t *n,
                     size_t *cap)
{
    redisReply *rep;
    int rc = mp__tool_cmd(t, &rep, 6,
                          (const char *[]){"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (rc < 0)
        return rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[0]->len >= 32 ||
        rep->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        return MP_EBADMSG;
    }
    memcpy(cursor, rep->element[0]->str, rep->element[0]->len + 1);
    for (size_t i = 0; rc == 0 && i < rep->element[1]->elements; i++) {
        const redisReply *k = rep->element[1]->element[i];
        if (k->type == REDIS_REPLY_STRING)
            rc = strv_add(keys, n, cap, k->str, k->len);
    }
    freeReplyObject(rep);
    return rc;
}

int mp__tool_scan(mp__tool *t, const char *literal, const char *glob, char ***keys, size_t *n)
{
    char *pattern = scan_pattern(literal, glob);
    char cursor[32] = "0";
    size_t cap = 0;
    *keys = NULL;
    *n = 0;
    if (pattern == NULL)
        return MP_ENOMEM;
    int rc;
    do
        rc = scan_step(t, pattern, cursor, keys, n, &cap);
    while (rc == 0 && strcmp(cursor, "0") != 0);
    free(pattern);
    if (rc < 0) {
        mp__tool_strv_free(*keys, *n);
        *keys = NULL;
        *n = 0;
        return rc;
    }
    /* SCAN may give a key twice: sorted, then the repeats dropped. */
    if (*n > 1)
        qsort(*keys, *n, sizeof(**keys), cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if (k > 0 && strcmp((*keys)[k - 1], (*keys)[i]) == 0)
            free((*keys)[i]);
        else
            (*keys)[k++] = (*keys)[i];
    }
    *n = k;
    return 0;
}

/* The name an escaped name stands for ('%25' and '%3A' undone), into out
 * (room for len + 1); false when it holds another escape. */
static bool unescape(const char *s, size_t len, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[k++] = s[i];
        } else if (i + 2 < len &&
                   (strncmp(s + i, "%25", 3) == 0 || strncmp(s + i, "%3A", 3) == 0)) {
            out[k++] = s[i + 1] == '2' ? '%' : ':';
            i += 2;
        } else {
            return false;
        }
    }
    out[k] = '\0';
    return k > 0;
}

/* The pool name of key (<prefix>pool:<n>:<part>, part tasks, dead or
 * stats) into name (MP_MANAGER_NAME_MAX + 1 bytes), if the library builds
 * that very key from it. */
static bool pool_of_key(mp__tool *t, const char *key, char *name)
{
    size_t plen = strlen(t->prefix);
    if (strncmp(key, t->prefix, plen) != 0 || strncmp(key + plen, "pool:", 5) != 0)
        return false;
    const char *n = key + plen + 5, *end = strchr(n, ':');
    if (end == NULL || (size_t)(end - n) > 3 * MP_MANAGER_NAME_MAX)
        return false;
    const char *part = end + 1;
    if (strcmp(part, "tasks") != 0 && strcmp(part, "dead") != 0 && strcmp(part, "stats") != 0)
        return false;
    char raw[3 * MP_MANAGER_NAME_MAX + 1];
    if (!unescape(n, (size_t)(end - n), raw) || strlen(raw) > MP_MANAGER_NAME_MAX)
        return false;
    char *again;
    if (mp__tool_pool_key(t, &again, raw, part) < 0)
        return false;
    bool same = strcmp(again, key) == 0;
    free(again);
    if (same)
        memcpy(name, raw, strlen(raw) + 1);
    return same;
}

int mp__tool_pools(mp__tool *t, char ***names, size_t *n)
{
    char literal[MP__REDIS_PREFIX_MAX + 8];
    snprintf(literal, sizeof(literal), "%spool:", t->prefix);
    char **keys;
    size_t nkeys, cap = 0;
    *names = NULL;
    *n = 0;
    int rc = mp__tool_scan(t, literal, "*", &keys, &nkeys);
    for (size_t i = 0; rc == 0 && i < nkeys; i++) {
        char name[MP_MANAGER_NAME_MAX + 1];
        if (!pool_of_key(t, keys[i], name))
            continue;
        bool seen = false;
        for (size_t j = 0; j < *n && !seen; j++)
            seen = strcmp((*names)[j], name) == 0;
        if (!seen)
            rc = strv_add(names, n, &cap, name, strlen(name));
    }
    mp__tool_strv_free(keys, nkeys);
    if (rc < 0) {
        mp__tool_strv_free(*names, *n);
        *names = NULL;
        *n = 0;
        return rc;
    }
    if (*n > 1)
        qsort(*names, *n, sizeof(**names), cmp_str);
    return 0;
}

int mp__tool_pool_known(mp__tool *t, const char *pool)
{
    char *k[3] = {NULL, NULL, NULL};
    const char *parts[3] = {"tasks", "dead", "stats"};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = mp__tool_pool_key(t, &k[i], pool, parts[i]);
    if (rc == MP_EINVAL) {
        mp__tool_fail(0, "bad pool name '%s' (1 to %d bytes)", pool, MP_MANAGER_NAME_MAX);
        return MP__TOOL_ERROR;
    }
    redisReply *rep = NULL;
    if (rc == 0)
        rc = mp__tool_cmd(t, &rep, 4, (const char *[]){"EXISTS", k[0], k[1], k[2]});
    for (int i = 0; i < 3; i++)
        free(k[i]);
    if (rc < 0)
        return mp__tool_fail(rc, "cannot read pool '%s'", pool);
    bool known = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    freeReplyObject(rep);
    if (!known)
        return mp__tool_fail(0, "unknown pool '%s' under prefix '%s'", pool, t->prefix);
    return 0;
}

int mp__tool_server_ms(mp__tool *t, int64_t *ms)
{
    redisReply *rep;
    int rc = mp__tool_cmd(t, &rep, 1, (const char *[]){"TIME"});
    if (rc < 0)
        return rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        freeReplyObject(rep);
        return MP_EBADMSG;
    }
    *ms = (int64_t)mp__tool_int(rep->element[0], 0) * 1000 +
          (int64_t)mp__tool_int(rep->element[1], 0) / 1000;
    freeReplyObject(rep);
    return 0;
}

bool mp__tool_eid_ok(const char *s, uint64_t *ms)
{
    size_t a = strspn(s, "0123456789");
    if (a == 0 || a > 20 || s[a] != '-')
        return false;
    size_t b = strspn(s + a + 1, "0123456789");
    if (b == 0 || b > 20 || s[a + 1 + b] != '\0')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno != 0)
        return false;
    if (ms)
        *ms = v;
    return true;
}

const redisReply *mp__tool_field(const redisReply *flat, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; flat && flat->type == REDIS_REPLY_ARRAY && i + 1 < flat->elements; i += 2) {
        const redisReply *k = flat->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == len && memcmp(k->str, name, len) == 0)
            return flat->element[i + 1];
    }
    return NULL;
}

long long mp__tool_int(const redisReply *r, long long dflt)
{
    if (r == NULL)
        return dflt;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
        return dflt;
    char buf[24], *end;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    return errno || *end ? dflt : v;
}
