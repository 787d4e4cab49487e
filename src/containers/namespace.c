/* Shared namespaces: a dict of typed attributes with identifier names. */
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "containers/containers_remote.h"

struct mp_namespace {
    mp__obj_head head;
    mp_dict *d;
};
/* The wrapper of a remote dict is a remote handle too: mp__obj_is_remote
 * probes an mp__remote_head's bytes (the dict pointer stands where a
 * handle's table is; the namespace has none and never reads it). */
_Static_assert(sizeof(struct mp_namespace) >= sizeof(mp__remote_head),
               "a namespace wrapper covers a remote head");

static int ns_check(const mp_namespace *ns)
{
    /* A namespace of another backend is a process-local wrapper around a
     * dict handle of that backend (mp__namespace_wrap): it has no
     * operation table, its functions go through the dict's. */
    if (mp__obj_is_remote(ns))
        return ns->head.magic == MP__MAGIC_NAMESPACE ? 0 : MP_EINVAL;
    return mp__obj_check(ns, sizeof(*ns), MP__MAGIC_NAMESPACE) ? 0 : MP_EINVAL;
}

#ifdef MP_HAVE_REDIS
int mp__namespace_wrap(mp_namespace **out, mp_dict *d)
{
    mp_namespace *ns = malloc(sizeof(*ns));
    if (ns == NULL)
        return MP_ENOMEM;
    ns->head = (mp__obj_head){.magic = MP__MAGIC_NAMESPACE, .backend = MP__BACKEND_REDIS};
    ns->d = d;
    *out = ns;
    return 0;
}
#endif

/* MP_EINVAL with a detail: name, fn's argument, breaks the identifier rule. */
static int __attribute__((cold)) bad_name(const char *fn, const char *name, size_t n)
{
    return mp__fail(MP_EINVAL,
                    "%s: name \"%.64s\" (%zu bytes) is not an identifier (1 to 255 letters, "
                    "digits or '_', not starting with a digit)",
                    fn, name, n);
}

/* Identifier rule of namespace.h. */
static int name_check(const char *fn, const char *name)
{
    if (name == NULL)
        return mp__fail(MP_EINVAL, "%s: name is NULL", fn);
    size_t n = strlen(name);
    if (n == 0 || n > 255 || (name[0] >= '0' && name[0] <= '9'))
        return bad_name(fn, name, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c >= 0x80;
        if (!ok)
            return bad_name(fn, name, n);
    }
    return 0;
}

static int ns_args(const char *fn, const mp_namespace *ns, const char *name)
{
    if (ns_check(ns) < 0)
        return mp__obj_fail(fn, "ns", ns, "namespace");
    return name_check(fn, name);
}

/* MP_EPROTO with a detail: attribute name of fn is not of the type asked. */
static int __attribute__((cold)) not_a(const char *fn, const char *name, const char *want)
{
    return mp__fail(MP_EPROTO, "%s: attribute \"%.64s\" is not %s", fn, name, want);
}

int mp_namespace_create(mp_namespace **out, const void *opts)
{
    if (out == NULL || opts != NULL)
        return mp__fail(MP_EINVAL, "mp_namespace_create: %s",
                        out == NULL ? "out is NULL" : "opts must be NULL (no options yet)");
    int rc = mp__heap_ensure();
    mp_namespace *ns = NULL;
    if (rc == 0)
        rc = mp__heap_alloc_for("mp_namespace_create", (void **)&ns, sizeof(*ns));
    if (rc < 0)
        return rc;
    /* A few shards: namespaces hold few attributes. */
    rc = mp_dict_create(&ns->d, &(mp_dict_opts){.shards = 4});
    if (rc < 0) {
        mp__heap_free(ns);
        return rc;
    }
    ns->head = (mp__obj_head){.magic = MP__MAGIC_NAMESPACE, .backend = MP__BACKEND_LOCAL};
    *out = ns;
    return 0;
}

void mp_namespace_destroy(mp_namespace *ns)
{
    if (ns_check(ns) < 0 || (ns->head.flags & MP__OBJ_NAMED))
        return;
    if (ns->head.backend != MP__BACKEND_LOCAL) { /* a handle: the data stays */
        ns->head.magic = 0;
        mp_dict_destroy(ns->d);
        free(ns);
        return;
    }
    ns->head.magic = 0;
    mp_dict_destroy(ns->d);
    mp__heap_free(ns);
}

static int ns_set(const char *fn, mp_namespace *ns, const char *name, const mp_item *v)
{
    int rc = ns_args(fn, ns, name);
    return rc < 0 ? rc : mp_dict_set_item(ns->d, name, strlen(name), v);
}

int mp_namespace_set_int(mp_namespace *ns, const char *name, int64_t value)
{
    return ns_set("mp_namespace_set_int", ns, name, &MP_ITEM_INT64(value));
}

int mp_namespace_set_double(mp_namespace *ns, const char *name, double value)
{
    return ns_set("mp_namespace_set_double", ns, name, &MP_ITEM_DOUBLE(value));
}

int mp_namespace_set_str(mp_namespace *ns, const char *name, const char *value)
{
    if (value == NULL)
        return mp__fail(MP_EINVAL, "mp_namespace_set_str: value is NULL");
    return ns_set("mp_namespace_set_str", ns, name, &MP_ITEM_STR(value));
}

int mp_namespace_set_bytes(mp_namespace *ns, const char *name, const void *value, size_t len)
{
    if (value == NULL && len != 0)
        return mp__fail(MP_EINVAL, "mp_namespace_set_bytes: value is NULL with len %zu", len);
    return ns_set("mp_namespace_set_bytes", ns, name, &MP_ITEM_BYTES(value, len));
}

int mp_namespace_get_int(const mp_namespace *ns, const char *name, int64_t *out)
{
    int rc = ns_args("mp_namespace_get_int", ns, name);
    if (rc == 0 && out == NULL)
        rc = mp__fail(MP_EINVAL, "mp_namespace_get_int: out is NULL");
    if (rc == 0)
        rc = mp_dict_get_int64(ns->d, name, out);
    return rc == MP_EPROTO ? not_a("mp_namespace_get_int", name, "an int") : rc;
}

int mp_namespace_get_double(const mp_namespace *ns, const char *name, double *out)
{
    int rc = ns_args("mp_namespace_get_double", ns, name);
    if (rc == 0 && out == NULL)
        rc = mp__fail(MP_EINVAL, "mp_namespace_get_double: out is NULL");
    if (rc == 0)
        rc = mp_dict_get_double(ns->d, name, out);
    return rc == MP_EPROTO ? not_a("mp_namespace_get_double", name, "a double") : rc;
}

int mp_namespace_get_str(const mp_namespace *ns, const char *name, char **out)
{
    int rc = ns_args("mp_namespace_get_str", ns, name);
    if (rc == 0 && out == NULL)
        rc = mp__fail(MP_EINVAL, "mp_namespace_get_str: out is NULL");
    if (rc == 0)
        rc = mp_dict_get_str(ns->d, name, out);
    return rc == MP_EPROTO ? not_a("mp_namespace_get_str", name, "a str or bytes") : rc;
}

int mp_namespace_get_bytes(const mp_namespace *ns, const char *name, void **out, size_t *len)
{
    const char *f = "mp_namespace_get_bytes";
    int rc = ns_args(f, ns, name);
    if (rc < 0)
        return rc;
    if (out == NULL || len == NULL)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", f, out == NULL ? "out" : "len");
    mp_item_type t;
    void *p;
    size_t n;
    rc = mp_dict_get(ns->d, name, strlen(name), &p, &n, &t);
    if (rc < 0)
        return rc;
    if (t != MP_ITEM_BYTES && t != MP_ITEM_STR) {
        free(p);
        return not_a(f, name, "bytes or a str");
    }
    *out = p;
    *len = n;
    return 0;
}

int mp_namespace_type(const mp_namespace *ns, const char *name, mp_item_type *out)
{
    int rc = ns_args("mp_namespace_type", ns, name);
    if (rc < 0)
        return rc;
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_namespace_type: out is NULL");
    size_t len;
    rc = mp_dict_get_into(ns->d, name, strlen(name), NULL, 0, &len, out);
    return rc == MP_EMSGSIZE ? 0 : rc;
}

int mp_namespace_has(const mp_namespace *ns, const char *name)
{
    int rc = ns_args("mp_namespace_has", ns, name);
    return rc < 0 ? rc : mp_dict_contains(ns->d, name, strlen(name));
}

int mp_namespace_delete(mp_namespace *ns, const char *name)
{
    int rc = ns_args("mp_namespace_delete", ns, name);
    return rc < 0 ? rc : mp_dict_delete(ns->d, name, strlen(name));
}

/* CPython sorts the strings "name=repr(value)"; names are unique and hold
 * no '=', so that is the order of the names each followed by '=' (a1 comes
 * before a, since '1' < '='). UTF-8 byte order is code point order, which
 * is how Python compares them. */
static int cmp_names(const void *a, const void *b)
{
    const mp_item *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->data, y->data, n);
    if (c || x->len == y->len)
        return c;
    unsigned char nx = x->len > n ? ((const unsigned char *)x->data)[n] : '=';
    unsigned char ny = y->len > n ? ((const unsigned char *)y->data)[n] : '=';
    return nx < ny ? -1 : 1;
}

int mp_namespace_repr(const mp_namespace *ns, char **out)
{
    if (ns_check(ns) < 0)
        return mp__obj_fail("mp_namespace_repr", "ns", ns, "namespace");
    if (out == NULL)
        return mp__fail(MP_EINVAL, "mp_namespace_repr: out is NULL");
    int rc;
    mp_snapshot *s;
    rc = mp_dict_items(ns->d, &s);
    if (rc < 0)
        return rc;
    size_t n = mp_snapshot_len(s), shown = 0;
    mp_item *kv = malloc((n ? n : 1) * 2 * sizeof(*kv));
    mp__strbuf sb = {0};
    if (kv == NULL) {
        mp_snapshot_destroy(s);
        return MP_ENOMEM;
    }
    /* Like CPython's Namespace.__repr__, names starting with '_' are not
     * shown. */
    for (size_t i = 0; i < n; i++) {
        mp_snapshot_key(s, i, &kv[2 * shown]);
        if (kv[2 * shown].len > 0 && ((const char *)kv[2 * shown].data)[0] == '_')
            continue;
        mp_snapshot_value(s, i, &kv[2 * shown + 1]);
        shown++;
    }
    qsort(kv, shown, 2 * sizeof(*kv), cmp_names);
    mp__sb_adds(&sb, "Namespace(");
    for (size_t i = 0; i < shown; i++) {
        if (i)
            mp__sb_adds(&sb, ", ");
        mp__sb_add(&sb, kv[2 * i].data, kv[2 * i].len);
        mp__sb_adds(&sb, "=");
        mp__sb_repr(&sb, &kv[2 * i + 1]);
    }
    mp__sb_adds(&sb, ")");
    free(kv);
    mp_snapshot_destroy(s);
    return mp__sb_finish(&sb, out);
}
