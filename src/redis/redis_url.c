/* Redis URLs: redis[s]://[[user]:password@]host[:port][/db][?options].
 * A pure parser (no I/O), tested with good and bad URLs. Each refusal says
 * which part is wrong in mp_error_detail(), never quoting the password. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_internal.h"

#define DEFAULT_PORT    6379
#define DEFAULT_TIMEOUT 5.0
#define DEFAULT_LEASE   30.0

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#define KNOWN_OPTIONS "prefix, timeout, lease, reconnect"

/* Copies s[0..n) with %XX decoded into a new C string. A decoded NUL is
 * refused: it would cut the password short without a word. what names the
 * part in the error detail. */
static int decode_part(const char *s, size_t n, char **out, const char *what)
{
    char *p = malloc(n + 1);
    if (p == NULL)
        return MP_ENOMEM;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            p[j++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1;
        int lo = i + 2 < n ? hex_digit(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(p);
            return mp__fail(MP_EINVAL,
                            "redis URL: bad %%-escape in the %s (%%XX with two hex "
                            "digits, not %%00)",
                            what);
        }
        p[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    p[j] = '\0';
    *out = p;
    return 0;
}

/* A decimal number in s[0..n) within [lo, hi]. */
static int parse_long(const char *s, size_t n, long lo, long hi, long *out)
{
    if (n == 0 || n > 10)
        return MP_EINVAL;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return MP_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return MP_EINVAL;
    *out = v;
    return 0;
}

/* [user]:password before '@'. Redis URLs put a lone password after ':'
 * (redis://:secret@host); "user:password" is an ACL user. */
static int parse_userinfo(mp__redis_url *u, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL) /* "redis://secret@host": a password alone, as redis-cli reads it */
        return decode_part(s, n, &u->password, "password");
    size_t ulen = (size_t)(colon - s);
    int rc = 0;
    if (ulen > 0)
        rc = decode_part(s, ulen, &u->user, "user name");
    if (rc == 0)
        rc = decode_part(colon + 1, n - ulen - 1, &u->password, "password");
    return rc;
}

/* host, [v6 address] or host:port. */
static int parse_hostport(mp__redis_url *u, const char *s, size_t n)
{
    const char *host = s, *port = NULL;
    size_t hlen = n;
    if (n > 0 && s[0] == '[') {
        const char *end = memchr(s, ']', n);
        if (end == NULL)
            return mp__fail(MP_EINVAL, "redis URL: '[' of an IPv6 host without its ']'");
        host = s + 1;
        hlen = (size_t)(end - host);
        if (end + 1 < s + n) {
            if (end[1] != ':')
                return mp__fail(MP_EINVAL, "redis URL: after ']' comes ':port' or nothing");
            port = end + 2;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    if (hlen == 0 || hlen > MP__REDIS_HOST_MAX)
        return mp__fail(MP_EINVAL, "redis URL: the host is %s (1..%d characters)",
                        hlen ? "too long" : "empty", MP__REDIS_HOST_MAX);
    for (size_t i = 0; i < hlen; i++)
        if (host[i] == '%' || host[i] == '@' || host[i] == '/' || (unsigned char)host[i] <= ' ')
            return mp__fail(MP_EINVAL,
                            "redis URL: the host holds a character not allowed "
                            "there (at %zu: %%, @, / or a control character)",
                            i);
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    u->port = DEFAULT_PORT;
    if (port) {
        long v;
        if (parse_long(port, (size_t)(s + n - port), 1, 65535, &v) < 0)
            return mp__fail(MP_EINVAL, "redis URL: port '%.*s' is not a number in 1..65535",
                            (int)((size_t)(s + n - port) > 16 ? 16 : (size_t)(s + n - port)), port);
        u->port = (int)v;
    }
    return 0;
}

/* A number of seconds in (0, 86400]. */
static int parse_seconds(const char *v, size_t vlen, double *out)
{
    char buf[32];
    if (vlen == 0 || vlen >= sizeof(buf))
        return MP_EINVAL;
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    char *end;
    errno = 0;
    double t = strtod(buf, &end);
    if (*end != '\0' || errno != 0 || !isfinite(t) || t <= 0 || t > 86400)
        return MP_EINVAL;
    *out = t;
    return 0;
}

static int bad_value(const char *opt, const char *v, size_t vlen, const char *want)
{
    return mp__fail(MP_EINVAL, "redis URL: option %s='%.*s' is not %s", opt,
                    (int)(vlen > 32 ? 32 : vlen), v, want);
}

static int parse_option(mp__redis_url *u, const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    if (eq == NULL)
        return mp__fail(MP_EINVAL, "redis URL: option '%.*s' has no '=value' (known: %s)",
                        (int)(n > 32 ? 32 : n), s, KNOWN_OPTIONS);
    size_t klen = (size_t)(eq - s), vlen = n - klen - 1;
    const char *v = eq + 1;
    if (klen == 6 && memcmp(s, "prefix", 6) == 0) {
        char *p;
        int rc = decode_part(v, vlen, &p, "prefix option");
        if (rc < 0)
            return rc;
        size_t plen = strlen(p);
        if (plen > MP__REDIS_PREFIX_MAX) {
            free(p);
            return mp__fail(MP_EINVAL, "redis URL: option prefix is %zu bytes (at most %d)", plen,
                            MP__REDIS_PREFIX_MAX);
        }
        memcpy(u->prefix, p, plen + 1);
        free(p);
        return 0;
    }
    if (klen == 7 && memcmp(s, "timeout", 7) == 0) {
        double t;
        if (parse_seconds(v, vlen, &t) < 0)
            return bad_value("timeout", v, vlen, "seconds in (0, 86400]");
        u->timeout = t;
        return 0;
    }
    if (klen == 5 && memcmp(s, "lease", 5) == 0) {
        double t;
        if (parse_seconds(v, vlen, &t) < 0)
            return bad_value("lease", v, vlen, "seconds in (0, 86400]");
        u->lease = t;
        return 0;
    }
    if (klen == 9 && memcmp(s, "reconnect", 9) == 0) {
        if (vlen != 1 || (v[0] != '0' && v[0] != '1'))
            return bad_value("reconnect", v, vlen, "0 or 1");
        u->reconnect = v[0] == '1';
        return 0;
    }
    /* An unknown option is a typo, never silently ignored. */
    return mp__fail(MP_EINVAL, "redis URL: unknown option '%.*s' (known: %s)",
                    (int)(klen > 32 ? 32 : klen), s, KNOWN_OPTIONS);
}

static int parse_options(mp__redis_url *u, const char *s, size_t n)
{
    while (n > 0) {
        const char *amp = memchr(s, '&', n);
        size_t len = amp ? (size_t)(amp - s) : n;
        int rc = parse_option(u, s, len);
        if (rc < 0)
            return rc;
        if (amp == NULL)
            break;
        s += len + 1;
        n -= len + 1;
    }
    return 0;
}

static int parse_rest(mp__redis_url *u, const char *s)
{
    size_t n = strlen(s);
    const char *q = memchr(s, '?', n);
    size_t main_len = q ? (size_t)(q - s) : n;
    const char *slash = memchr(s, '/', main_len);
    size_t auth_end = slash ? (size_t)(slash - s) : main_len;
    const char *at = NULL;
    for (size_t i = 0; i < auth_end; i++) /* the last '@': passwords may hold one, encoded or not */
        if (s[i] == '@')
            at = s + i;
    int rc = 0;
    const char *hp = s;
    if (at) {
        rc = parse_userinfo(u, s, (size_t)(at - s));
        hp = at + 1;
    }
    if (rc == 0)
        rc = parse_hostport(u, hp, (size_t)(s + auth_end - hp));
    if (rc == 0 && slash && slash + 1 < s + main_len) {
        long db = 0;
        size_t dlen = (size_t)(s + main_len - slash - 1);
        rc = parse_long(slash + 1, dlen, 0, 1000000, &db);
        if (rc < 0)
            rc = mp__fail(rc, "redis URL: database '%.*s' after '/' is not a number in 0..1000000",
                          (int)(dlen > 16 ? 16 : dlen), slash + 1);
        u->db = (int)db;
    }
    if (rc == 0 && q)
        rc = parse_options(u, q + 1, n - main_len - 1);
    return rc;
}

int mp__redis_url_parse(mp__redis_url *u, const char *url)
{
    if (u == NULL || url == NULL)
        return mp__fail(MP_EINVAL, "redis URL: the URL is NULL");
    memset(u, 0, sizeof(*u));
    u->timeout = DEFAULT_TIMEOUT;
    u->lease = DEFAULT_LEASE;
    memcpy(u->prefix, "mp:", 4);
    const char *rest;
    if (strncmp(url, "redis://", 8) == 0) {
        rest = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        u->tls = true;
        rest = url + 9;
    } else {
        /* Only the scheme is quoted: what follows may be a password. */
        size_t n = strcspn(url, ":/@?");
        return mp__fail(MP_EINVAL, "redis URL: scheme '%.*s' is not redis:// or rediss://",
                        (int)(n > 16 ? 16 : n), url);
    }
    int rc = parse_rest(u, rest);
    if (rc < 0)
        mp__redis_url_fini(u);
    return rc;
}

void mp__redis_url_fini(mp__redis_url *u)
{
    if (u == NULL)
        return;
    free(u->user);
    if (u->password) /* a secret: do not leave it in freed memory */
        memset(u->password, 0, strlen(u->password));
    free(u->password);
    u->user = u->password = NULL;
}
