/* The head of every shared object, and remote handles. Not installed.
 *
 * Objects live in the shared heap (heap/heap.h) or, for a backend such as
 * Redis, behind a process-local handle; the modules of the object types
 * (sync, queue, containers) and the backends above them share this
 * header. */
#ifndef MULTIPROC_HEAP_OBJECT_H
#define MULTIPROC_HEAP_OBJECT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/internal.h"
#include "heap/heap.h"

/* ---- shared objects ------------------------------------------------------
 * Every shared object of the library (container, queue, lock, value, ...)
 * starts with this header: its magic number (cleared by destroy, so that a
 * foreign or destroyed pointer is refused), the backend that holds its
 * data (the shared heap, or a Redis server behind a process-local handle)
 * and flags. MP__OBJ_NAMED marks an object owned by the manager's registry:
 * its mp_X_destroy does nothing. The flag is set before the object is
 * published under its name and read only by destroy, so no hot path pays
 * for it. */
typedef struct mp__obj_head {
    uint32_t magic;
    uint16_t backend; /* MP__BACKEND_LOCAL or MP__BACKEND_REDIS */
    uint16_t flags;   /* MP__OBJ_NAMED */
} mp__obj_head;

#define MP__BACKEND_LOCAL 1u
#define MP__BACKEND_REDIS 2u /* a process-local handle to data on a Redis server */
#define MP__OBJ_NAMED     1u

/* ---- remote handles --------------------------------------------------------
 * A remote handle starts with this head: the object head (backend
 * MP__BACKEND_REDIS) and the operation table of its type, a struct of
 * function pointers declared by the module that owns the type
 * (mp__dict_ops and mp__list_ops in containers/containers_remote.h,
 * mp__queue_ops in queue/queue_remote.h, the synchronisation types, value
 * and array in sync/sync_remote.h) and filled by the backend (src/redis).
 * Handles are process-local, so the pointers are valid: a function pointer
 * never goes into the shared heap, where a spawned child, whose code sits
 * at other addresses, would read it.
 *
 * A public function begins with
 *     if (mp__obj_is_remote(obj))
 *         return MP__REMOTE_CALL(mp__X_remote(obj), op, obj, args...);
 * where mp__X_remote(obj) is the handle's table, or NULL when the handle
 * is of another type (MP_EINVAL). A function that returns no error code
 * (destroy, a typecode, a length, a pointer) tests both itself.
 * An empty slot (NULL) is an operation the backend does not offer: the
 * call returns MP_ENOSYS (NULL for a function that returns a pointer), so
 * the tables are the list of what a backend lacks (documented in
 * multiproc/manager.h, checked against the tables by test_redis_enosys). */
typedef struct mp__remote_head {
    mp__obj_head head;
    const void *ops; /* the type's table (const, static storage), or NULL */
} mp__remote_head;

/* True when obj, the object of a public function, is a remote handle.
 * Handles are process-local (malloc'd), never in the shared heap, so an
 * object in the heap is local after a few compares and nothing is read;
 * one outside is read only after the kernel said its head, and the first
 * word its ops points to, are readable (one or two system calls, paid
 * once per handle while this thread remembers it: mp__handle_known in
 * heap/heap.h), so that a wild pointer (unmapped, misaligned, PROT_NONE,
 * or memory that merely looks like a head) goes on to the local check,
 * which refuses it with MP_EINVAL, or to the table's kind check
 * (mp__remote_ops), instead of faulting. Always false when the library is
 * built without hiredis (no handle can exist). */
static inline bool mp__obj_is_remote(const void *obj)
{
#ifdef MP_HAVE_REDIS
    if (obj == NULL || mp__heap_contains(obj, sizeof(mp__obj_head)) || ((uintptr_t)obj & 7u) != 0)
        return false;
    if (mp__handle_known(obj))
        return true;
    const mp__remote_head *h = obj;
    if (!mp__mem_readable(obj, sizeof(*h)) || h->head.backend != MP__BACKEND_REDIS ||
        (h->ops != NULL && !mp__mem_readable(h->ops, sizeof(uint32_t))))
        return false;
    mp__handle_remember(obj);
    return true;
#else
    (void)obj;
    return false;
#endif
}

/* The operation table of a remote handle (mp__obj_is_remote(obj) is
 * true) when it is a table of kind, else NULL. Every table starts with a
 * uint32_t, the kind of its type (MP__OPS_DICT, ...), so that a handle of
 * another type (mp_dict_len on a list handle) is refused with MP_EINVAL,
 * as the magic refuses it locally, instead of calling another table's
 * slot. */
static inline const void *mp__remote_ops(const void *obj, uint32_t kind)
{
    const uint32_t *ops = ((const mp__remote_head *)obj)->ops;
    return ops != NULL && *ops == kind ? ops : NULL;
}

/* ops->op(...); MP_ENOSYS when the slot is empty, MP_EINVAL when ops is
 * NULL (a handle of another type). */
#define MP__REMOTE_CALL(ops, op, ...)                                                              \
    ((ops) == NULL ? MP_EINVAL : (ops)->op ? (ops)->op(__VA_ARGS__) : MP_ENOSYS)

/* Fails with MP_EINVAL and a detail for mp_error_detail() saying why obj,
 * the argument named arg of the public function fn, is not a live local
 * object of its kind ("queue", "lock", ...): NULL, misaligned, outside the
 * shared heap, or a head without the kind's magic (destroyed, or another type). Called
 * only on the failure path of a validity check. */
int mp__obj_fail(const char *fn, const char *arg, const void *obj, const char *kind)
    __attribute__((cold));

/* A fresh head, magic still 0: the creator publishes the magic last. */
#define MP__OBJ_HEAD_INIT ((mp__obj_head){.magic = 0, .backend = MP__BACKEND_LOCAL, .flags = 0})

/* True when the object (any type, through its head) belongs to a registry. */
static inline bool mp__obj_named(const void *obj)
{
    return (((const mp__obj_head *)obj)->flags & MP__OBJ_NAMED) != 0;
}

#endif /* MULTIPROC_HEAP_OBJECT_H */
