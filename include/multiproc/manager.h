/* multiproc — the manager: shared objects reachable by name (Python's
 * multiprocessing.Manager()).
 *
 *     mp_manager *m;
 *     mp_manager_open(&m, "local");            // or NULL: the same
 *     mp_dict *d;
 *     mp_manager_dict(m, "results", &d);       // creates it, or opens it
 *     mp_dict_set_int64(d, "done", 1);
 *     mp_manager_close(m);                     // d stays valid
 *
 * Python's Manager() starts a server process and every d[key] = value is a
 * pickled round trip over a socket. The local manager has no server: its
 * objects live in the family's shared heap and every process of the family
 * uses them directly, at memory speed. The manager only gives them names:
 * mp_manager_<type>(m, name, &obj) returns the object registered under
 * name, creating it (with default options) the first time. Creation is
 * atomic: processes racing to create the same name get the same object.
 * A name belongs to one type; asking for it as another type is MP_EEXIST.
 *
 * Named objects belong to the manager's registry and live as long as the
 * family's shared heap (until the last process of the family exits):
 * mp_<type>_destroy on them is a no-op, and mp_manager_close releases only
 * the handle.
 *
 * Reachability: the registry of the local manager is created by the first
 * mp_manager_open of a process family and is shared from then on: every
 * process forked after that point (by mp_process_start or fork) reaches
 * every name, including names created after it started. Open the manager
 * in the parent before starting the children, as Python code creates its
 * Manager() first. A process that opens a manager without having inherited
 * one starts a registry of its own.
 *
 * Backends: "local" (or NULL) is the family's shared heap.
 * "redis://[[user]:password@]host[:port][/db][?options]" is the Redis
 * backend (built when the library was built with hiredis; otherwise
 * MP_ENOSYS): the same API on a Redis server, shared by processes on any
 * machine that reaches it. Options: prefix=<key prefix> (default "mp:";
 * applications with different prefixes share one server safely),
 * timeout=<seconds> (default 5: the connect and every wait for a reply),
 * reconnect=0|1 (default 0: after a lost connection every call fails with
 * MP_ECONNRESET; 1: the next call connects again, and a server restarted
 * between two calls is not even noticed). "rediss://" (TLS) is reserved:
 * MP_ENOSYS.
 *
 *     mp_manager_open(&m, "redis://:secret@10.0.0.5:6379/0?prefix=app1:");
 *
 * On Redis, mp_manager_<type> returns a process-local handle to the data
 * on the server: every call makes a new handle, and mp_<type>_destroy
 * releases the handle (never the data). Handles stay valid after
 * mp_manager_close; a child started with the fork method may use its
 * parent's handles (its first call opens its own connection), a spawned
 * one opens its own manager. Handles may be used from several threads
 * (their calls are serialised on the manager's connection). Every operation can then also
 * fail with MP_ETIMEDOUT (no reply within the timeout), MP_ECONNRESET
 * (connection lost; the operation may or may not have been applied),
 * MP_ECONNREFUSED (reconnect found no server), MP_EAUTH, MP_EBADMSG (a
 * malformed reply or a stored value this library did not write),
 * MP_EPROTO (the key holds another Redis type) or MP_ESERVER (any other
 * server error). What is atomic, and how the Redis semantics differ
 * (snapshot order, update functions that may run more than once), is
 * under "Redis backend" in docs/design.md.
 *
 * Types: dict, list and namespace today. The other shared objects of the
 * library (queue, lock, rlock, sem, cond, event, barrier, value, array)
 * plug into the same registry with one accessor each; see the section
 * "Shared containers and the manager" of docs/design.md.
 *
 * Safety: an mp_manager handle may be used from several threads at once;
 * it is process-local memory, valid in a forked child (which may use it or
 * close its copy). Named objects have the safety of their type.
 */
#ifndef MULTIPROC_MANAGER_H
#define MULTIPROC_MANAGER_H

#include "multiproc/dict.h"
#include "multiproc/error.h"
#include "multiproc/list.h"
#include "multiproc/namespace.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_manager mp_manager;

/* Longest object name, in bytes (a name is any non-empty C string). */
#define MP_MANAGER_NAME_MAX 255

/* mp_manager_open — open a manager.
 * url: NULL or "local" for the family's shared heap; "redis://..." for a
 * Redis server (see above). Borrowed until return.
 * out: receives the handle, owned by the caller (mp_manager_close).
 * Errors: MP_EINVAL (NULL out, unknown URL scheme, malformed Redis URL or
 * unknown option), MP_ENOSYS (a backend not built in, rediss://),
 * MP_ENOMEM, MP_ENOHEAPADDR; for Redis also MP_EAUTH (wrong or missing
 * password), MP_ECONNREFUSED (nothing listens there), MP_ETIMEDOUT (no
 * answer within the timeout), MP_EIO (host not found, other socket
 * errors), MP_ESERVER (e.g. a db number the server lacks). */
MP_API int mp_manager_open(mp_manager **out, const char *url);

/* mp_manager_close — release the handle. The named objects stay, and so
 * do the pointers obtained through it. NULL is a no-op. */
MP_API void mp_manager_close(mp_manager *m);

/* mp_manager_backend — the backend's name: "local" or "redis". Never NULL
 * for a valid handle; NULL for NULL. */
MP_API const char *mp_manager_backend(const mp_manager *m);

/* Named objects: out receives the object registered as name, created empty
 * the first time. The pointer stays valid for the life of the family and
 * may be passed to other processes.
 * Returns 1 when this call created the object, 0 when it already existed.
 * Errors: MP_EINVAL (NULL argument, empty name or longer than
 * MP_MANAGER_NAME_MAX), MP_EEXIST (the name belongs to another type),
 * MP_ENOMEM (shared heap full); on Redis, the connection errors above. */
MP_API int mp_manager_dict(mp_manager *m, const char *name, mp_dict **out);
MP_API int mp_manager_list(mp_manager *m, const char *name, mp_list **out);
MP_API int mp_manager_namespace(mp_manager *m, const char *name, mp_namespace **out);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_MANAGER_H */
