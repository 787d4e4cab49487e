/* multiproc objects: the manager's named objects of the prefix and their
 * types, from the names hash (<prefix>names: object name -> type). */
#include <stdlib.h>
#include <string.h>

#include "tool.h"

typedef struct named {
    const redisReply *name, *type;
} named;

static int cmp_named(const void *a, const void *b)
{
    const redisReply *x = ((const named *)a)->name, *y = ((const named *)b)->name;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->str, y->str, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void print_objects(mp__tool *t, const named *v, size_t n)
{
    if (t->json) {
        fputs("{\"prefix\":", stdout);
        mp__tool_json_str(stdout, t->prefix, strlen(t->prefix));
        fputs(",\"objects\":[", stdout);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
            mp__tool_json_str(stdout, v[i].name->str, v[i].name->len);
            fputs(",\"type\":", stdout);
            mp__tool_json_str(stdout, v[i].type->str, v[i].type->len);
            fputc('}', stdout);
        }
        fputs("]}\n", stdout);
        return;
    }
    static const char *const h[] = {"NAME", "TYPE"};
    mp__tool_table tb;
    int rc = mp__tool_table_init(&tb, 2, h);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *row[] = {v[i].name->str, v[i].type->str};
        size_t lens[] = {v[i].name->len, v[i].type->len};
        rc = mp__tool_table_row(&tb, row, lens);
    }
    if (rc == 0)
        mp__tool_table_print(&tb, stdout);
    mp__tool_table_free(&tb);
}

int mp__tool_objects(mp__tool *t)
{
    char key[MP__REDIS_NAMES_KEY_MAX];
    mp__redis_names_key(key, t->prefix);
    redisReply *rep;
    int rc = mp__tool_cmd(t, &rep, 2, (const char *[]){"HGETALL", key});
    if (rc < 0)
        return mp__tool_fail(rc, "cannot read the names hash %s", key);
    size_t n = rep->type == REDIS_REPLY_ARRAY ? rep->elements / 2 : 0;
    named *v = calloc(n + 1, sizeof(*v));
    if (v == NULL) {
        freeReplyObject(rep);
        return mp__tool_fail(MP_ENOMEM, "objects");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *a = rep->element[2 * i], *b = rep->element[2 * i + 1];
        if (a->type == REDIS_REPLY_STRING && b->type == REDIS_REPLY_STRING)
            v[k++] = (named){a, b};
    }
    qsort(v, k, sizeof(*v), cmp_named);
    print_objects(t, v, k);
    free(v);
    freeReplyObject(rep);
    return MP__TOOL_OK;
}
