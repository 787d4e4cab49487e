/* The operation tables of the Redis object types (base/internal.h,
 * "remote handles"): what the public functions of each type do on a Redis
 * handle. An empty slot is an operation Redis does not offer (MP_ENOSYS),
 * so these tables are the list in multiproc/manager.h ("Not available on
 * Redis"), which a test compares with mp__redis_ops_each. */
#include <stddef.h>

#include "redis/redis_internal.h"

/* ---- queue: the handle is an mp__redis_queue ---------------------------------- */
static mp__redis_queue *rqueue(mp_queue *q)
{
    return (mp__redis_queue *)(void *)q;
}
static void queue_destroy(mp_queue *q)
{
    mp__redis_queue_close(rqueue(q));
}
static int queue_put(mp_queue *q, const void *data, size_t len, double timeout)
{
    return mp__redis_queue_put(rqueue(q), data, len, timeout);
}
static int queue_put_many(mp_queue *q, const mp_queue_msg *msgs, size_t n, double timeout)
{
    return mp__redis_queue_put_many(rqueue(q), msgs, n, timeout);
}
static int queue_get(mp_queue *q, void **data, size_t *len, double timeout)
{
    return mp__redis_queue_get(rqueue(q), data, len, timeout);
}
static int queue_get_into(mp_queue *q, void *buf, size_t cap, size_t *len, double timeout)
{
    return mp__redis_queue_get_into(rqueue(q), buf, cap, len, timeout);
}
static int queue_get_many(mp_queue *q, void *buf, size_t cap, size_t *lens, size_t n,
                          double timeout)
{
    return mp__redis_queue_get_many(rqueue(q), buf, cap, lens, n, timeout);
}
static int queue_close(mp_queue *q)
{
    return mp__redis_queue_shut(rqueue(q));
}
static int queue_task_done(mp_queue *q)
{
    return mp__redis_queue_task_done(rqueue(q));
}
static int queue_join(mp_queue *q, double timeout)
{
    return mp__redis_queue_join(rqueue(q), timeout);
}
static int queue_wait_begin(mp_queue *q, void **w, bool block, int *fd)
{
    return mp__redis_queue_wait_begin(rqueue(q), w, block, fd);
}
static int queue_wait_finish(mp_queue *q, void **w)
{
    return mp__redis_queue_wait_finish(rqueue(q), w);
}
static void queue_wait_end(mp_queue *q, void **w)
{
    mp__redis_queue_wait_end(rqueue(q), w);
}
static int queue_qsize(mp_queue *q, size_t *n)
{
    return mp__redis_queue_qsize(rqueue(q), n);
}
static int queue_empty(mp_queue *q)
{
    return mp__redis_queue_empty(rqueue(q));
}
static int queue_full(mp_queue *q)
{
    return mp__redis_queue_full(rqueue(q));
}

/* ---- lock and rlock: the handle is an mp__redis_lock --------------------- */
static mp__redis_lock *redis_lock_of(void *l)
{
    return (mp__redis_lock *)l;
}
static void lock_destroy(mp_lock *l)
{
    mp__redis_lock_close(redis_lock_of(l));
}
static int lock_acquire(mp_lock *l, double timeout)
{
    return mp__redis_lock_acquire(redis_lock_of(l), timeout);
}
static int lock_release(mp_lock *l)
{
    return mp__redis_lock_release(redis_lock_of(l));
}
static int lock_consistent(mp_lock *l)
{
    return mp__redis_lock_consistent(redis_lock_of(l));
}
static int lock_token(mp_lock *l, uint64_t *token)
{
    return mp__redis_lock_token(redis_lock_of(l), token);
}
static int lock_renew(mp_lock *l)
{
    return mp__redis_lock_renew(redis_lock_of(l));
}
static int lock_cond(mp_lock *l, mp_cond **out)
{
    return mp__redis_cond_over((mp__redis_cond **)out, redis_lock_of(l));
}
static int lock_locked(mp_lock *l)
{
    return mp__redis_lock_locked(redis_lock_of(l));
}
static int lock_owner(mp_lock *l, pid_t *pid, pid_t *tid)
{
    return mp__redis_lock_owner(redis_lock_of(l), pid, tid, NULL);
}
static void rlock_destroy(mp_rlock *l)
{
    mp__redis_lock_close(redis_lock_of(l));
}
static int rlock_acquire(mp_rlock *l, double timeout)
{
    return mp__redis_lock_acquire(redis_lock_of(l), timeout);
}
static int rlock_release(mp_rlock *l)
{
    return mp__redis_lock_release(redis_lock_of(l));
}
static int rlock_consistent(mp_rlock *l)
{
    return mp__redis_lock_consistent(redis_lock_of(l));
}
static int rlock_count(mp_rlock *l)
{
    return mp__redis_lock_count(redis_lock_of(l));
}
static int rlock_token(mp_rlock *l, uint64_t *token)
{
    return mp__redis_lock_token(redis_lock_of(l), token);
}
static int rlock_renew(mp_rlock *l)
{
    return mp__redis_lock_renew(redis_lock_of(l));
}
static int rlock_cond(mp_rlock *l, mp_cond **out)
{
    return mp__redis_cond_over((mp__redis_cond **)out, redis_lock_of(l));
}

static int rlock_locked(mp_rlock *l)
{
    return mp__redis_lock_locked(redis_lock_of(l));
}
static int rlock_owner(mp_rlock *l, pid_t *pid, pid_t *tid, uint32_t *depth)
{
    return mp__redis_lock_owner(redis_lock_of(l), pid, tid, depth);
}

/* ---- sem: the handle is an mp__redis_sem -------------------------------------- */
static mp__redis_sem *rsem(mp_sem *s)
{
    return (mp__redis_sem *)(void *)s;
}
static void sem_destroy(mp_sem *s)
{
    mp__redis_sem_close(rsem(s));
}
static int sem_acquire(mp_sem *s, double timeout)
{
    return mp__redis_sem_acquire(rsem(s), timeout);
}
static int sem_release(mp_sem *s)
{
    return mp__redis_sem_release(rsem(s));
}
static int sem_get_value(mp_sem *s)
{
    return mp__redis_sem_get_value(rsem(s));
}

/* ---- event: the handle is an mp__redis_obj ------------------------------------ */
static mp__redis_obj *revent(mp_event *e)
{
    return (mp__redis_obj *)(void *)e;
}
static void event_destroy(mp_event *e)
{
    mp__redis_obj_free(revent(e));
}
static int event_set(mp_event *e)
{
    return mp__redis_event_set(revent(e));
}
static int event_clear(mp_event *e)
{
    return mp__redis_event_clear(revent(e));
}
static int event_is_set(mp_event *e)
{
    return mp__redis_event_is_set(revent(e));
}
static int event_wait(mp_event *e, double timeout)
{
    return mp__redis_event_wait(revent(e), timeout);
}
static int event_wait_begin(mp_event *e, void **w, bool block, int *fd)
{
    return mp__redis_event_wait_begin(revent(e), w, block, fd);
}
static int event_wait_finish(mp_event *e, void **w)
{
    return mp__redis_event_wait_finish(revent(e), w);
}
static void event_wait_end(mp_event *e, void **w)
{
    mp__redis_event_wait_end(revent(e), w);
}

/* ---- the tables ------------------------------------------------------------
 * Every slot is named, an empty one too (written NULL), so that reading a
 * table tells what Redis lacks. */
const mp__dict_ops mp__redis_dict_ops = {
    .kind = MP__OPS_DICT,
    .destroy = mp__redis_dict_destroy,
    .set_item = mp__redis_dict_set_item,
    .read = mp__redis_dict_read,
    .len = mp__redis_dict_len,
    .delete = mp__redis_dict_delete,
    .pop = mp__redis_dict_pop,
    .setdefault = mp__redis_dict_setdefault,
    .update_with = mp__redis_dict_update_with,
    .add_int64 = mp__redis_dict_add_int64,
    .snapshot = mp__redis_dict_snapshot,
    .clear = mp__redis_dict_clear,
    .popitem = mp__redis_dict_popitem,
};

const mp__list_ops mp__redis_list_ops = {
    .kind = MP__OPS_LIST,
    .destroy = mp__redis_list_destroy,
    .extend = mp__redis_list_extend,
    .insert = mp__redis_list_insert,
    .set = mp__redis_list_set,
    .read = mp__redis_list_read,
    .pop = mp__redis_list_pop,
    .remove = mp__redis_list_remove,
    .len = mp__redis_list_len,
    .clear = mp__redis_list_clear,
    .slice = mp__redis_list_slice,
    .sort = mp__redis_list_sort,
    .reverse = mp__redis_list_reverse,
    .imul = mp__redis_list_imul,
};

/* A Redis list of messages: no zero-copy records (reserve ... release). */
const mp__queue_ops mp__redis_queue_ops = {
    .kind = MP__OPS_QUEUE,
    .destroy = queue_destroy,
    .put = queue_put,
    .put_many = queue_put_many,
    .get = queue_get,
    .get_into = queue_get_into,
    .get_many = queue_get_many,
    .reserve = NULL,
    .commit = NULL,
    .abort = NULL,
    .peek = NULL,
    .release = NULL,
    .qsize = queue_qsize,
    .empty = queue_empty,
    .full = queue_full,
    .close = queue_close,
    .task_done = queue_task_done,
    .join = queue_join,
    .wait_begin = queue_wait_begin,
    .wait_finish = queue_wait_finish,
    .wait_end = queue_wait_end,
};

const mp__lock_ops mp__redis_lock_ops = {
    .kind = MP__OPS_LOCK,
    .destroy = lock_destroy,
    .acquire = lock_acquire,
    .release = lock_release,
    .consistent = lock_consistent,
    .token = lock_token,
    .renew = lock_renew,
    .cond = lock_cond,
    .locked = lock_locked,
    .owner = lock_owner,
};

const mp__rlock_ops mp__redis_rlock_ops = {
    .kind = MP__OPS_RLOCK,
    .destroy = rlock_destroy,
    .acquire = rlock_acquire,
    .release = rlock_release,
    .consistent = rlock_consistent,
    .count = rlock_count,
    .token = rlock_token,
    .renew = rlock_renew,
    .cond = rlock_cond,
    .locked = rlock_locked,
    .owner = rlock_owner,
};

const mp__sem_ops mp__redis_sem_ops = {
    .kind = MP__OPS_SEM,
    .destroy = sem_destroy,
    .acquire = sem_acquire,
    .release = sem_release,
    .get_value = sem_get_value,
};

const mp__event_ops mp__redis_event_ops = {
    .kind = MP__OPS_EVENT,
    .destroy = event_destroy,
    .set = event_set,
    .clear = event_clear,
    .is_set = event_is_set,
    .wait = event_wait,
    .wait_begin = event_wait_begin,
    .wait_finish = event_wait_finish,
    .wait_end = event_wait_end,
};

/* The numbers live on the server: no lock, no local data. */
const mp__value_ops mp__redis_value_ops = {
    .kind = MP__OPS_VALUE,
    .destroy = mp__redis_value_destroy,
    .typecode = mp__redis_value_typecode,
    .get_text = mp__redis_value_get_text,
    .set_text = mp__redis_value_set_text,
    .add_range = mp__redis_value_add_range,
    .add_double = mp__redis_value_add_float,
    .get_lock = NULL,
    .data = NULL,
};

const mp__array_ops mp__redis_array_ops = {
    .kind = MP__OPS_ARRAY,
    .destroy = mp__redis_array_destroy,
    .typecode = mp__redis_array_typecode,
    .len = mp__redis_array_len,
    .get_text = mp__redis_array_get_text,
    .set_text = mp__redis_array_set_text,
    .get_lock = NULL,
    .data = NULL,
};

/* ---- enumeration ---------------------------------------------------------- */
typedef struct slot {
    const char *op;
    bool filled;
} slot;

#define SLOT(table, op)                                                                            \
    {                                                                                              \
#op, (table).op != NULL                                                                    \
    }
/* Reports the slots of one table; the assertion fails to compile when a
 * slot of the table's type is missing from the list. */
#define REPORT(type, T, ...)                                                                       \
    do {                                                                                           \
        const slot s_[] = {__VA_ARGS__};                                                           \
        _Static_assert(sizeof(s_) / sizeof(s_[0]) * sizeof(void (*)(void)) ==                      \
                           sizeof(T) - offsetof(T, destroy),                                       \
                       "every slot of " #T " is listed");                                          \
        for (size_t i_ = 0; i_ < sizeof(s_) / sizeof(s_[0]); i_++)                                 \
            fn(type, s_[i_].op, s_[i_].filled, arg);                                               \
    } while (0)

void mp__redis_ops_each(void (*fn)(const char *type, const char *op, bool filled, void *arg),
                        void *arg)
{
    const mp__dict_ops *d = &mp__redis_dict_ops;
    REPORT("dict", mp__dict_ops, SLOT(*d, destroy), SLOT(*d, set_item), SLOT(*d, read),
           SLOT(*d, len), SLOT(*d, delete), SLOT(*d, pop), SLOT(*d, setdefault),
           SLOT(*d, update_with), SLOT(*d, add_int64), SLOT(*d, snapshot), SLOT(*d, clear),
           SLOT(*d, popitem));
    const mp__list_ops *l = &mp__redis_list_ops;
    REPORT("list", mp__list_ops, SLOT(*l, destroy), SLOT(*l, extend), SLOT(*l, insert),
           SLOT(*l, set), SLOT(*l, read), SLOT(*l, pop), SLOT(*l, remove), SLOT(*l, len),
           SLOT(*l, clear), SLOT(*l, slice), SLOT(*l, sort), SLOT(*l, reverse), SLOT(*l, imul));
    const mp__queue_ops *q = &mp__redis_queue_ops;
    REPORT("queue", mp__queue_ops, SLOT(*q, destroy), SLOT(*q, put), SLOT(*q, put_many),
           SLOT(*q, get), SLOT(*q, get_into), SLOT(*q, get_many), SLOT(*q, reserve),
           SLOT(*q, commit), SLOT(*q, abort), SLOT(*q, peek), SLOT(*q, release), SLOT(*q, qsize),
           SLOT(*q, empty), SLOT(*q, full), SLOT(*q, close), SLOT(*q, task_done), SLOT(*q, join),
           SLOT(*q, wait_begin), SLOT(*q, wait_finish), SLOT(*q, wait_end));
    const mp__lock_ops *lk = &mp__redis_lock_ops;
    REPORT("lock", mp__lock_ops, SLOT(*lk, destroy), SLOT(*lk, acquire), SLOT(*lk, release),
           SLOT(*lk, consistent), SLOT(*lk, token), SLOT(*lk, renew), SLOT(*lk, cond),
           SLOT(*lk, locked), SLOT(*lk, owner));
    const mp__rlock_ops *rl = &mp__redis_rlock_ops;
    REPORT("rlock", mp__rlock_ops, SLOT(*rl, destroy), SLOT(*rl, acquire), SLOT(*rl, release),
           SLOT(*rl, consistent), SLOT(*rl, count), SLOT(*rl, token), SLOT(*rl, renew),
           SLOT(*rl, cond), SLOT(*rl, locked), SLOT(*rl, owner));
    const mp__sem_ops *s = &mp__redis_sem_ops;
    REPORT("sem", mp__sem_ops, SLOT(*s, destroy), SLOT(*s, acquire), SLOT(*s, release),
           SLOT(*s, get_value));
    const mp__event_ops *e = &mp__redis_event_ops;
    REPORT("event", mp__event_ops, SLOT(*e, destroy), SLOT(*e, set), SLOT(*e, clear),
           SLOT(*e, is_set), SLOT(*e, wait), SLOT(*e, wait_begin), SLOT(*e, wait_finish),
           SLOT(*e, wait_end));
    const mp__cond_ops *c = &mp__redis_cond_ops;
    REPORT("cond", mp__cond_ops, SLOT(*c, destroy), SLOT(*c, acquire), SLOT(*c, release),
           SLOT(*c, get_lock), SLOT(*c, get_rlock), SLOT(*c, wait), SLOT(*c, wait_for),
           SLOT(*c, notify), SLOT(*c, notify_all));
    const mp__barrier_ops *b = &mp__redis_barrier_ops;
    REPORT("barrier", mp__barrier_ops, SLOT(*b, destroy), SLOT(*b, wait), SLOT(*b, reset),
           SLOT(*b, abort), SLOT(*b, parties), SLOT(*b, n_waiting), SLOT(*b, broken));
    const mp__value_ops *v = &mp__redis_value_ops;
    REPORT("value", mp__value_ops, SLOT(*v, destroy), SLOT(*v, typecode), SLOT(*v, get_text),
           SLOT(*v, set_text), SLOT(*v, add_range), SLOT(*v, add_double), SLOT(*v, get_lock),
           SLOT(*v, data));
    const mp__array_ops *a = &mp__redis_array_ops;
    REPORT("array", mp__array_ops, SLOT(*a, destroy), SLOT(*a, typecode), SLOT(*a, len),
           SLOT(*a, get_text), SLOT(*a, set_text), SLOT(*a, get_lock), SLOT(*a, data));
}
