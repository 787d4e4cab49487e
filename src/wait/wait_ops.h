/* The wait operations of objects that live in modules above wait (the
 * pool's results). Not installed.
 *
 * mp_wait cannot call those modules (docs/layers.txt), so such an object
 * starts with an mp__wait_head whose table, filled by the object's own
 * module, does the work: mp_wait finds it at the start of the object,
 * checks its kind and calls it, as it does for the tables of remote queues
 * and events. Tables are static const data; heads live in process memory. */
#ifndef MULTIPROC_WAIT_OPS_H
#define MULTIPROC_WAIT_OPS_H

#include <stdbool.h>
#include <stdint.h>

#define MP__OPS_WAIT 0x6f57706du /* "mpWo": the table's kind */

typedef struct mp__wait_ops {
    uint32_t kind; /* MP__OPS_WAIT */
    /* Ready now? 1 (ready), 0 (not yet) or an error. When 0, *fd is a
     * descriptor that turns readable when the object may have become ready
     * (or -1: none), and *exact false asks mp_wait to look again every
     * slice (readiness that no descriptor reports). May make progress on
     * the object's behalf (a pool collects its results). *w is the state
     * of this mp_wait call for the object, NULL at first, kept across
     * rounds. */
    int (*prepare)(void *obj, void **w, int *fd, bool *exact);
    /* After *fd turned readable: 1 (ready), 0 (a spurious wake: prepare
     * again) or an error. */
    int (*confirm)(void *obj, void **w);
    /* The mp_wait call ends: undoes what prepare set up (*w not NULL). */
    void (*end)(void *obj, void **w);
} mp__wait_ops;

/* The first member of every object waited on through a table. */
typedef struct mp__wait_head {
    const mp__wait_ops *wait; /* NULL: the object cannot be waited on */
} mp__wait_head;

/* The table of obj (never NULL), or NULL when it has none. */
static inline const mp__wait_ops *mp__wait_ops_of(const void *obj)
{
    const mp__wait_ops *o = ((const mp__wait_head *)obj)->wait;
    return o != NULL && o->kind == MP__OPS_WAIT ? o : NULL;
}

#endif /* MULTIPROC_WAIT_OPS_H */
