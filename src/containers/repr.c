/* Python's repr() of stored values: what the printers of the dict and the
 * namespace show (see containers/item_internal.h). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "containers/item_internal.h"

void mp__sb_add(mp__strbuf *sb, const char *s, size_t n)
{
    if (sb->failed)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 64;
        while (cap < sb->len + n + 1)
            cap *= 2;
        char *p = realloc(sb->p, cap);
        if (p == NULL) {
            sb->failed = true;
            return;
        }
        sb->p = p;
        sb->cap = cap;
    }
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

void mp__sb_adds(mp__strbuf *sb, const char *s)
{
    mp__sb_add(sb, s, strlen(s));
}

int mp__sb_finish(mp__strbuf *sb, char **out)
{
    mp__sb_add(sb, "", 0);
    if (sb->failed || sb->p == NULL) {
        free(sb->p);
        return MP_ENOMEM;
    }
    *out = sb->p;
    return 0;
}

/* Python picks double quotes only when the text has a single quote and no
 * double quote. */
static char pick_quote(const unsigned char *p, size_t n)
{
    bool single = memchr(p, '\'', n) != NULL, dbl = memchr(p, '"', n) != NULL;
    return single && !dbl ? '"' : '\'';
}

/* Appends a quoted literal; text: bytes >= 0x80 pass through (UTF-8 text),
 * otherwise (bytes) they are escaped as \xNN, like Python. */
static void add_quoted(mp__strbuf *sb, const void *s, size_t n, bool text)
{
    const unsigned char *p = s;
    char q = pick_quote(p, n);
    char esc[8];
    mp__sb_add(sb, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\\' || c == (unsigned char)q) {
            esc[0] = '\\';
            esc[1] = (char)c;
            mp__sb_add(sb, esc, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            mp__sb_adds(sb, c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t");
        } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !text)) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            mp__sb_add(sb, esc, 4);
        } else {
            mp__sb_add(sb, (const char *)&c, 1);
        }
    }
    mp__sb_add(sb, &q, 1);
}

void mp__sb_repr_str(mp__strbuf *sb, const void *s, size_t n)
{
    add_quoted(sb, s, n, true);
}

/* Python's float repr: the shortest digits that read back to the same
 * double, in fixed notation when the exponent is in [-4, 16), else in
 * exponent notation (1e+16, 1.5e-05); integral values get ".0". */
static void add_double(mp__strbuf *sb, double v)
{
    if (isnan(v)) {
        mp__sb_adds(sb, "nan");
        return;
    }
    if (isinf(v)) {
        mp__sb_adds(sb, v < 0 ? "-inf" : "inf");
        return;
    }
    char e[40], out[64];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    snprintf(e, sizeof(e), "%.*e", prec - 1, v);
    int exp10 = atoi(strchr(e, 'e') + 1);
    if (exp10 >= -4 && exp10 < 16) {
        int decimals = prec - 1 - exp10;
        snprintf(out, sizeof(out), "%.*f", decimals > 0 ? decimals : 0, v);
        if (strchr(out, '.') == NULL)
            strcat(out, ".0");
    } else {
        /* %e gives "1.5e-05"; Python writes the exponent with at least two
         * digits too, and drops a bare ".0" mantissa only when prec is 1. */
        snprintf(out, sizeof(out), "%.*e", prec - 1, v);
    }
    mp__sb_adds(sb, out);
}

void mp__sb_repr(mp__strbuf *sb, const mp_item *v)
{
    char num[32];
    switch (v->type) {
    case MP_ITEM_INT64: {
        int64_t x;
        memcpy(&x, v->data, sizeof(x));
        snprintf(num, sizeof(num), "%" PRId64, x);
        mp__sb_adds(sb, num);
        break;
    }
    case MP_ITEM_DOUBLE: {
        double x;
        memcpy(&x, v->data, sizeof(x));
        add_double(sb, x);
        break;
    }
    case MP_ITEM_STR:
        add_quoted(sb, v->data, v->len, true);
        break;
    default:
        mp__sb_add(sb, "b", 1);
        add_quoted(sb, v->data, v->len, false);
        break;
    }
}

int mp_item_repr(const mp_item *item, char **out)
{
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_item_repr: out is NULL");
    int rc = mp__item_check_in("mp_item_repr", "item", item);
    if (rc < 0)
        return rc == MP_EMSGSIZE ? rc : MP_EINVAL;
    mp__strbuf sb = {0};
    mp__sb_repr(&sb, item);
    return mp__sb_finish(&sb, out);
}
