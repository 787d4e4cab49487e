/* The operation tables of the remote synchronisation objects, values and
 * arrays (base/internal.h, "remote handles"), and what the Redis backend
 * uses of this module. Not installed.
 *
 * Each slot has the contract of the public function of the same name
 * (multiproc/sync.h, multiproc/value.h) on a remote handle, unless said
 * otherwise. An empty slot makes the public function MP_ENOSYS, or NULL
 * for a function that returns a pointer; the slots of functions that
 * return neither an error nor a pointer (destroy, typecode, len, is_set's
 * bool) must be filled. */
#ifndef MULTIPROC_SYNC_REMOTE_H
#define MULTIPROC_SYNC_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "heap/heap_object.h"
#include "base/internal.h"

/* The kinds of the tables (their first member). */
#define MP__OPS_LOCK  0x6f4b706du /* "mpKo" */
#define MP__OPS_RLOCK 0x6f52706du /* "mpRo" */
#define MP__OPS_SEM   0x6f53706du /* "mpSo" */
#define MP__OPS_EVENT 0x6f45706du /* "mpEo" */
#define MP__OPS_VALUE 0x6f56706du /* "mpVo" */
#define MP__OPS_ARRAY 0x6f41706du /* "mpAo" */
#define MP__OPS_COND  0x6f43706du /* "mpCo" */
#define MP__OPS_BARR  0x6f42706du /* "mpBo" */

typedef struct mp__lock_ops {
    uint32_t kind; /* MP__OPS_LOCK */
    void (*destroy)(mp_lock *l);
    int (*acquire)(mp_lock *l, double timeout);
    int (*release)(mp_lock *l);
    int (*consistent)(mp_lock *l);
    int (*token)(mp_lock *l, uint64_t *token);
    int (*renew)(mp_lock *l);
    /* mp_cond_create with this lock: a remote condition over it. */
    int (*cond)(mp_lock *l, mp_cond **out);
    int (*locked)(mp_lock *l);
    int (*owner)(mp_lock *l, pid_t *pid, pid_t *tid);
} mp__lock_ops;

typedef struct mp__rlock_ops {
    uint32_t kind; /* MP__OPS_RLOCK */
    void (*destroy)(mp_rlock *l);
    int (*acquire)(mp_rlock *l, double timeout);
    int (*release)(mp_rlock *l);
    int (*consistent)(mp_rlock *l);
    int (*count)(mp_rlock *l);
    int (*token)(mp_rlock *l, uint64_t *token);
    int (*renew)(mp_rlock *l);
    int (*cond)(mp_rlock *l, mp_cond **out);
    int (*locked)(mp_rlock *l);
    int (*owner)(mp_rlock *l, pid_t *pid, pid_t *tid, uint32_t *depth);
} mp__rlock_ops;

typedef struct mp__sem_ops {
    uint32_t kind; /* MP__OPS_SEM */
    void (*destroy)(mp_sem *s);
    int (*acquire)(mp_sem *s, double timeout);
    int (*release)(mp_sem *s);
    int (*get_value)(mp_sem *s);
} mp__sem_ops;

typedef struct mp__event_ops {
    uint32_t kind; /* MP__OPS_EVENT */
    void (*destroy)(mp_event *e);
    int (*set)(mp_event *e);
    int (*clear)(mp_event *e);
    /* 1 when set, 0 when not, or an error (read as not set). */
    int (*is_set)(mp_event *e);
    int (*wait)(mp_event *e, double timeout);
    /* mp_wait on the event: the contract of the queue's wait_begin,
     * wait_finish and wait_end (queue/queue_remote.h); ready when set, or
     * set since the first wait_begin of this mp_wait. */
    int (*wait_begin)(mp_event *e, void **w, bool block, int *fd);
    int (*wait_finish)(mp_event *e, void **w);
    void (*wait_end)(mp_event *e, void **w);
} mp__event_ops;

/* A condition over a remote lock (made by mp_manager_cond on that
 * backend, or by mp_cond_create with a remote lock: the lock's cond slot). */
typedef struct mp__cond_ops {
    uint32_t kind; /* MP__OPS_COND */
    void (*destroy)(mp_cond *c);
    int (*acquire)(mp_cond *c, double timeout);
    int (*release)(mp_cond *c);
    mp_lock *(*get_lock)(mp_cond *c);
    mp_rlock *(*get_rlock)(mp_cond *c);
    int (*wait)(mp_cond *c, double timeout);
    int (*wait_for)(mp_cond *c, mp_cond_pred pred, void *arg, double timeout);
    int (*notify)(mp_cond *c, unsigned n);
    int (*notify_all)(mp_cond *c);
} mp__cond_ops;

typedef struct mp__barrier_ops {
    uint32_t kind; /* MP__OPS_BARR */
    void (*destroy)(mp_barrier *b);
    int (*wait)(mp_barrier *b, double timeout);
    int (*reset)(mp_barrier *b);
    int (*abort)(mp_barrier *b);
    int (*parties)(mp_barrier *b);
    int (*n_waiting)(mp_barrier *b);
    /* 1 when broken, 0 when not, or an error (read as not broken). */
    int (*broken)(mp_barrier *b);
} mp__barrier_ops;

/* Values and arrays hold their numbers as text on a remote backend
 * (mp__value_item_text): the typed accessors convert here, with the
 * local conversions, and the table moves texts. */
typedef struct mp__value_ops {
    uint32_t kind; /* MP__OPS_VALUE */
    void (*destroy)(mp_value *v);
    char (*typecode)(const mp_value *v);
    /* The stored number as text, NUL-terminated ("0" when absent), or
     * MP_EBADMSG (too long for cap, embedded NUL). */
    int (*get_text)(mp_value *v, char *buf, size_t cap);
    int (*set_text)(mp_value *v, const char *text);
    /* Atomic add of an integer; the result must lie within [min, max]
     * (decimal texts), else nothing changes and MP_ERANGE. */
    int (*add_range)(mp_value *v, int64_t delta, const char *min, const char *max, int64_t *result);
    int (*add_double)(mp_value *v, double delta, double *result);
    mp_rlock *(*get_lock)(mp_value *v);
    void *(*data)(mp_value *v);
} mp__value_ops;

typedef struct mp__array_ops {
    uint32_t kind; /* MP__OPS_ARRAY */
    void (*destroy)(mp_array *a);
    char (*typecode)(const mp_array *a);
    size_t (*len)(const mp_array *a);
    /* get_text and set_text of item i < len. */
    int (*get_text)(mp_array *a, size_t i, char *buf, size_t cap);
    int (*set_text)(mp_array *a, size_t i, const char *text);
    mp_rlock *(*get_lock)(mp_array *a);
    void *(*data)(mp_array *a);
} mp__array_ops;

static inline const mp__lock_ops *mp__lock_remote(const mp_lock *l)
{
    return (const mp__lock_ops *)mp__remote_ops(l, MP__OPS_LOCK);
}
static inline const mp__rlock_ops *mp__rlock_remote(const mp_rlock *l)
{
    return (const mp__rlock_ops *)mp__remote_ops(l, MP__OPS_RLOCK);
}
static inline const mp__sem_ops *mp__sem_remote(const mp_sem *s)
{
    return (const mp__sem_ops *)mp__remote_ops(s, MP__OPS_SEM);
}
static inline const mp__event_ops *mp__event_remote(const mp_event *e)
{
    return (const mp__event_ops *)mp__remote_ops(e, MP__OPS_EVENT);
}
static inline const mp__cond_ops *mp__cond_remote(const mp_cond *c)
{
    return (const mp__cond_ops *)mp__remote_ops(c, MP__OPS_COND);
}
static inline const mp__barrier_ops *mp__barrier_remote(const mp_barrier *b)
{
    return (const mp__barrier_ops *)mp__remote_ops(b, MP__OPS_BARR);
}
static inline const mp__value_ops *mp__value_remote(const mp_value *v)
{
    return (const mp__value_ops *)mp__remote_ops(v, MP__OPS_VALUE);
}
static inline const mp__array_ops *mp__array_remote(const mp_array *a)
{
    return (const mp__array_ops *)mp__remote_ops(a, MP__OPS_ARRAY);
}

/* A local event for mp_wait: 1 when set, 0 when not, MP_EINVAL for a bad
 * event (sync/sem.c). */
int mp__event_poll(mp_event *ev);

/* One item of a typecode as the text a remote value holds: decimal
 * integers, %.17g for floats. Returns 0 or MP_EINVAL (sync/value.c). */
#define MP__VALUE_TEXT_MAX 40
int mp__value_item_text(char typecode, const void *item, char *buf, size_t cap);

#endif /* MULTIPROC_SYNC_REMOTE_H */
