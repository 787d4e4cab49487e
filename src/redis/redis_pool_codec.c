/* The distributed pool's wire formats: task entries as workers read them
 * and result records as clients read them. Both come from the network and
 * are checked completely before use. Pure; unit-tested on malformed input
 * in tests/redis/test_redis_pool.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_pool.h"

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

void mp__redis_result_put_head(unsigned char *p, uint64_t id, int32_t code, uint32_t n)
{
    memcpy(p, "MPR1", 4);
    put32(p + 4, (uint32_t)(id >> 32));
    put32(p + 8, (uint32_t)id);
    put32(p + 12, (uint32_t)code);
    put32(p + 16, n);
}

void mp__redis_result_set_v2(unsigned char *p)
{
    p[3] = '2';
}

void mp__redis_result_put_item(unsigned char *p, int32_t code, uint32_t len)
{
    put32(p, (uint32_t)code);
    put32(p + 4, len);
}

void mp__redis_result_put_lost(unsigned char *p, pid_t pid, int sig)
{
    mp__redis_result_put_item(p, MP_EWORKERLOST, MP__REDIS_RESULT_LOST);
    put32(p + MP__REDIS_RESULT_ITEM, (uint32_t)pid);
    put32(p + MP__REDIS_RESULT_ITEM + 4, (uint32_t)sig);
}

void mp__redis_result_lost(const unsigned char *data, pid_t *pid, int *sig)
{
    *pid = (pid_t)get32(data);
    *sig = (int)get32(data + 4);
}

int mp__redis_result_decode(const void *buf, size_t len, mp__redis_result *out)
{
    const unsigned char *p = buf;
    if (buf == NULL || len < MP__REDIS_RESULT_HEAD || memcmp(p, "MPR", 3) != 0 ||
        (p[3] != '1' && p[3] != '2'))
        return MP_EBADMSG;
    bool v2 = p[3] == '2';
    mp__redis_result r = {.id = (uint64_t)get32(p + 4) << 32 | get32(p + 8),
                          .code = (int32_t)get32(p + 12),
                          .n = get32(p + 16),
                          .p = p + MP__REDIS_RESULT_HEAD,
                          .end = p + len};
    if (r.code > 0 || (r.code != 0 && r.n != 0))
        return MP_EBADMSG;
    const unsigned char *q = r.p;
    for (uint32_t i = 0; i < r.n; i++) {
        if ((size_t)(r.end - q) < MP__REDIS_RESULT_ITEM)
            return MP_EBADMSG;
        uint32_t ilen = get32(q + 4);
        if (ilen == MP__REDIS_RESULT_OVERSIZE && get32(q) != 0)
            return MP_EBADMSG; /* only a task that succeeded claims a result */
        if (ilen == MP__REDIS_RESULT_LOST && (int32_t)get32(q) != MP_EWORKERLOST)
            return MP_EBADMSG; /* only a lost item carries a pid and a signal */
        if (get32(q) != 0 && ilen != MP__REDIS_RESULT_LOST &&
            (v2 ? ilen >= MP_TASK_MESSAGE_MAX : ilen != 0))
            return MP_EBADMSG; /* a failed item's bytes are its message (v2), or none */
        if (ilen == MP__REDIS_RESULT_OVERSIZE)
            ilen = 0;
        else if (ilen == MP__REDIS_RESULT_LOST)
            ilen = MP__REDIS_RESULT_LOST_LEN;
        q += MP__REDIS_RESULT_ITEM;
        if ((size_t)(r.end - q) < ilen)
            return MP_EBADMSG;
        q += ilen;
    }
    if (q != r.end)
        return MP_EBADMSG;
    *out = r;
    return 0;
}

int mp__redis_result_next(mp__redis_result *r, int32_t *code, const unsigned char **data,
                          size_t *len)
{
    if (r->p >= r->end)
        return MP_ERANGE;
    uint32_t ilen = get32(r->p + 4);
    *code = (int32_t)get32(r->p);
    *len = ilen == MP__REDIS_RESULT_OVERSIZE ? SIZE_MAX
           : ilen == MP__REDIS_RESULT_LOST   ? MP__REDIS_ITEM_LOST
                                             : ilen;
    *data = r->p + MP__REDIS_RESULT_ITEM;
    r->p += MP__REDIS_RESULT_ITEM + (ilen == MP__REDIS_RESULT_OVERSIZE ? 0
                                     : ilen == MP__REDIS_RESULT_LOST   ? MP__REDIS_RESULT_LOST_LEN
                                                                       : ilen);
    return 0;
}

bool mp__redis_pool_client_ok(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > MP__REDIS_POOL_CLIENT_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int mp__redis_pool_key(char **out, const char *prefix, const char *name, const char *what)
{
    /* The objects' scheme (mp__redis_key): tag "pool", the name escaped, and
     * what as the part, so that no pool name reaches another pool's keys
     * (or an object's: their tags differ). */
    char key[MP__REDIS_KEY_MAX];
    int n = mp__redis_key(key, sizeof(key), prefix, "pool", name, what);
    if (n < 0)
        return n;
    char *k = malloc((size_t)n + 1);
    if (k == NULL)
        return MP_ENOMEM;
    memcpy(k, key, (size_t)n + 1);
    *out = k;
    return 0;
}

/* A decimal u64 with no sign, no leading junk, no overflow. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return MP_EBADMSG;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return MP_EBADMSG;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return MP_EBADMSG;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A decimal int64: an optional '-', then digits as parse_u64. */
static int parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t neg = len > 0 && s[0] == '-' ? 1 : 0;
    uint64_t v;
    int rc = parse_u64(s + neg, len - neg, &v);
    if (rc < 0 || v > (uint64_t)INT64_MAX + neg)
        return MP_EBADMSG;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static bool field_is(const char *f, size_t len, const char *name)
{
    return len == strlen(name) && memcmp(f, name, len) == 0;
}

/* Stores one field; bit is its flag in *seen (duplicates are refused). */
static int task_field(mp__redis_task *t, const char *f, size_t fl, const char *v, size_t vl,
                      unsigned *seen)
{
    static const char *const names[] = {"id", "c", "f", "n", "isz", "cap", "in", "k", "lo"};
    unsigned bit = 0;
    for (unsigned i = 0; i < 9; i++)
        if (field_is(f, fl, names[i]))
            bit = 1u << i;
    if (bit == 0)
        return 0; /* fields of later versions are ignored */
    if (*seen & bit)
        return MP_EBADMSG;
    *seen |= bit;
    switch (bit) {
    case 1u:
        return parse_u64(v, vl, &t->id);
    case 2u:
        if (!mp__redis_pool_client_ok(v, vl))
            return MP_EBADMSG;
        memcpy(t->client, v, vl);
        t->client[vl] = '\0';
        return 0;
    case 4u:
        t->fn = v;
        t->fn_len = vl;
        return vl > 2 && v[1] == ':' && (v[0] == 'n' || v[0] == 'r') ? 0 : MP_EBADMSG;
    case 8u:
        return parse_u64(v, vl, &t->n);
    case 16u:
        return parse_u64(v, vl, &t->isz);
    case 32u:
        return parse_u64(v, vl, &t->cap);
    case 128u:
        return parse_u64(v, vl, &t->per);
    case 256u:
        t->is_for = true;
        return parse_i64(v, vl, &t->lo);
    default:
        t->in = (const unsigned char *)v;
        t->in_len = vl;
        return 0;
    }
}

/* A map or apply entry: every field but "k" and no "lo"; bounds. */
static bool task_ok(const mp__redis_task *t, unsigned seen)
{
    return (seen & 0x7fu) == 0x7fu && t->n != 0 && t->n <= MP__REDIS_POOL_ITEMS_MAX &&
           t->isz <= MP__REDIS_POOL_OUT_MAX && t->cap <= MP__REDIS_POOL_OUT_MAX &&
           t->cap * t->n <= MP__REDIS_POOL_OUT_MAX && t->isz * t->n == t->in_len;
}

/* A parallel-for entry: id, c, f, n, cap, in and lo, never isz; at least
 * one index and at most INT64_MAX (mp_pool_for's bound on a span), and an
 * end lo + n that is an int64 (the chunks' ends are passed as such); a
 * partial of at most MP_POOL_ACC_MAX bytes and its initial value of that
 * size. */
static bool for_ok(const mp__redis_task *t, unsigned seen)
{
    const unsigned need = 1u | 2u | 4u | 8u | 32u | 64u | 256u;
    /* INT64_MAX - lo, computed unsigned, is exact for every lo. */
    return (seen & need) == need && !(seen & 16u) && t->n != 0 && t->n <= (uint64_t)INT64_MAX &&
           t->n <= (uint64_t)INT64_MAX - (uint64_t)t->lo && t->cap <= MP_POOL_ACC_MAX &&
           t->in_len == t->cap;
}

int mp__redis_task_parse(const char *const *f, const size_t *lens, size_t nf, mp__redis_task *t)
{
    memset(t, 0, sizeof(*t));
    if (nf % 2 != 0)
        return MP_EBADMSG;
    unsigned seen = 0;
    for (size_t i = 0; i < nf; i += 2) {
        if (f[i] == NULL || f[i + 1] == NULL)
            return MP_EBADMSG;
        int rc = task_field(t, f[i], lens[i], f[i + 1], lens[i + 1], &seen);
        if (rc < 0)
            return rc;
    }
    if (t->is_for ? !for_ok(t, seen) : !task_ok(t, seen))
        return MP_EBADMSG;
    if (!(seen & 128u))
        t->per = t->n;
    /* A packed entry: at least one item per task, at most PACK_MAX tasks,
     * and ids that do not wrap. */
    if (t->per == 0 || t->per > t->n || mp__redis_task_count(t) > MP__REDIS_POOL_PACK_MAX ||
        t->id > UINT64_MAX - mp__redis_task_count(t))
        return MP_EBADMSG;
    return 0;
}

uint64_t mp__redis_task_count(const mp__redis_task *t)
{
    return (t->n + t->per - 1) / t->per;
}

void mp__redis_task_part(const mp__redis_task *t, uint64_t j, mp__redis_task *out)
{
    uint64_t first = j * t->per, n = t->n - first < t->per ? t->n - first : t->per;
    *out = *t;
    out->id = t->id + j;
    out->n = n;
    out->per = n;
    if (t->is_for) { /* every chunk starts from the initial partial */
        out->lo = (int64_t)((uint64_t)t->lo + first);
        return;
    }
    out->in = t->in + first * t->isz;
    out->in_len = (size_t)(n * t->isz);
}

uint64_t mp__redis_task_items(const mp__redis_task *t)
{
    return t->is_for ? 1 : t->n;
}
