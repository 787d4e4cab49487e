/* multiproc — shared namespaces (Python's Manager().Namespace()).
 *
 *     mp_namespace *ns;
 *     mp_namespace_create(&ns, NULL);
 *     mp_namespace_set_int(ns, "x", 10);        // Global.x = 10
 *     mp_namespace_set_str(ns, "y", "hello");   // Global.y = 'hello'
 *     char *s;
 *     mp_namespace_repr(ns, &s);                // "Namespace(x=10, y='hello')"
 *     free(s);
 *     mp_namespace_destroy(ns);
 *
 * A namespace holds named attributes, each an int64, a double, a string or
 * bytes. Names are identifiers: a letter, '_' or a non-ASCII (UTF-8) byte,
 * then also digits; at most 255 bytes; anything else is MP_EINVAL. Setting
 * an attribute replaces its value and type. A namespace is a shared dict
 * underneath (multiproc/dict.h) and has the same properties: it lives in
 * the shared heap, every operation is atomic, a process killed in the
 * middle of one leaves the old or the new value and no lock held.
 *
 * Safety: every function is safe from any thread of any process of the
 * family and across fork; mp_namespace_destroy must run once, when nobody
 * else uses it. A namespace from a Redis manager (multiproc/manager.h) is
 * a Redis dict underneath, with the same calls and the connection errors
 * listed in manager.h.
 *
 * Common errors: MP_EINVAL (NULL or foreign namespace, NULL or invalid
 * name, NULL out pointer), MP_ENOENT (no such attribute: Python's
 * AttributeError), MP_EPROTO (the attribute has another type than the
 * getter reads), MP_EMSGSIZE (value longer than MP_VALUE_MAX), MP_ENOMEM.
 */
#ifndef MULTIPROC_NAMESPACE_H
#define MULTIPROC_NAMESPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "multiproc/error.h"
#include "multiproc/item.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_namespace mp_namespace;

/* mp_namespace_create — an empty namespace in the shared heap; opts is
 * reserved: pass NULL (anything else is MP_EINVAL). out: owned by the
 * caller. Errors: MP_EINVAL, MP_ENOMEM, MP_ENOHEAPADDR. */
MP_API int mp_namespace_create(mp_namespace **out, const void *opts);

/* mp_namespace_destroy — free it. NULL is a no-op; so is a namespace owned
 * by a local manager (mp_manager_namespace); a Redis manager's namespace
 * handle is released (the data stay on the server). */
MP_API void mp_namespace_destroy(mp_namespace *ns);

/* Setters: ns.name = value. Strings and bytes are copied. */
MP_API int mp_namespace_set_int(mp_namespace *ns, const char *name, int64_t value);
MP_API int mp_namespace_set_double(mp_namespace *ns, const char *name, double value);
MP_API int mp_namespace_set_str(mp_namespace *ns, const char *name, const char *value);
MP_API int mp_namespace_set_bytes(mp_namespace *ns, const char *name, const void *value,
                                  size_t len);

/* Getters. get_str returns a malloc'd C string (free it); get_bytes a
 * malloc'd copy (free it) and its length, for str and bytes attributes. */
MP_API int mp_namespace_get_int(const mp_namespace *ns, const char *name, int64_t *out);
MP_API int mp_namespace_get_double(const mp_namespace *ns, const char *name, double *out);
MP_API int mp_namespace_get_str(const mp_namespace *ns, const char *name, char **out);
MP_API int mp_namespace_get_bytes(const mp_namespace *ns, const char *name, void **out,
                                  size_t *len);

/* mp_namespace_type — the type of an attribute into *out. */
MP_API int mp_namespace_type(const mp_namespace *ns, const char *name, mp_item_type *out);

/* mp_namespace_has — 1 if the attribute exists, 0 if not (hasattr), or
 * MP_EINVAL. */
MP_API int mp_namespace_has(const mp_namespace *ns, const char *name);

/* mp_namespace_delete — del ns.name; MP_ENOENT when absent. */
MP_API int mp_namespace_delete(mp_namespace *ns, const char *name);

/* mp_namespace_repr — what Python prints for the namespace, into a
 * malloc'd C string (free it): "Namespace(x=10, y='hello')", exactly as
 * CPython's managers.Namespace: attributes whose name starts with '_' are
 * left out (they are still stored and readable), the others appear as
 * name=value sorted as those strings (so "a1=2" comes before "a=1"),
 * values in Python's repr (mp_item_repr). A consistent snapshot. */
MP_API int mp_namespace_repr(const mp_namespace *ns, char **out);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_NAMESPACE_H */
