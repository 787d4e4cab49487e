/* The tool's output: JSON strings that stay valid whatever bytes a name
 * holds, and tables with aligned columns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

/* The length of the valid UTF-8 sequence at s (at most len bytes), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (n == 0 || n > len || (c >= 0xF8))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0)))
        return 0;
    if (n == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90)))
        return 0;
    return n;
}

void mp__tool_json_str(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n;
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
            i++;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            fprintf(f, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(f, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            i++;
        } else if ((n = utf8_len(p + i, len - i)) > 0) {
            fwrite(p + i, 1, n, f);
            i += n;
        } else {
            fprintf(f, "\\u%04x", c);
            i++;
        }
    }
    fputc('"', f);
}

void mp__tool_json_num(FILE *f, double x)
{
    if (isfinite(x))
        fprintf(f, "%.3f", x);
    else
        fputs("null", f);
}

/* A cell's text: printable ASCII as is, other bytes as \xXX. */
static char *cell_text(const char *s, size_t len)
{
    char *out = malloc(4 * len + 1), *q = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\')
            *q++ = (char)c;
        else
            q += sprintf(q, "\\x%02x", c);
    }
    *q = '\0';
    return out;
}

int mp__tool_table_init(mp__tool_table *t, size_t ncols, const char *const *header)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    return mp__tool_table_row(t, header, NULL);
}

int mp__tool_table_row(mp__tool_table *t, const char *const *cells, const size_t *lens)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 8;
        char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));
        if (c == NULL)
            return MP_ENOMEM;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        const char *s = cells[i] ? cells[i] : "-";
        row[i] = cell_text(s, lens && cells[i] ? lens[i] : strlen(s));
        if (row[i] == NULL) {
            while (i-- > 0)
                free(row[i]);
            return MP_ENOMEM;
        }
    }
    t->nrows++;
    return 0;
}

void mp__tool_table_print(const mp__tool_table *t, FILE *f)
{
    size_t *w = calloc(t->ncols + 1, sizeof(*w));
    if (w == NULL)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);
            w[c] = n > w[c] ? n : w[c];
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (c + 1 == t->ncols)
                fprintf(f, "%s\n", s);
            else
                fprintf(f, "%-*s  ", (int)w[c], s);
        }
    }
    free(w);
}

void mp__tool_table_free(mp__tool_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}
