/* The distributed pool (redis_pool*.c) as seen by the local pool's public
 * functions: each starts with one line that hands a remote object over to
 * these. Free of hiredis types, so that pool*.c include it in every build;
 * without hiredis, pool/pool_remote.c defines them as stubs. Not installed. */
#ifndef MULTIPROC_RPOOL_H
#define MULTIPROC_RPOOL_H

#include "multiproc/pool.h"
#include "multiproc/worker.h"

/* True for a pool, mp_async or mp_imap of a distributed pool (the structs
 * of pool/pool_internal.h end with a remote flag). */
#define MP__REMOTE(x) ((x) != NULL && (x)->remote)

int mp__rpool_create(mp_pool **out, const mp_pool_opts *o);
int mp__rpool_apply_async(mp_pool *p, mp_task_fn fn, void *ctx, const void *in, size_t in_len,
                          size_t out_cap, mp_async_cb cb, mp_async_cb err_cb, void *user,
                          mp_async **out);
int mp__rpool_map_async(mp_pool *p, const mp_map_spec *s, mp_async_cb cb, mp_async_cb err_cb,
                        void *user, mp_async **out);
int mp__rpool_imap(mp_pool *p, const mp_map_spec *s, bool ordered, mp_imap **out);
int mp__rpool_close(mp_pool *p);
int mp__rpool_terminate(mp_pool *p);
int mp__rpool_join(mp_pool *p, double timeout);
int mp__rpool_poll(mp_pool *p);
void mp__rpool_destroy(mp_pool *p);

int mp__rasync_wait(mp_async *a, double timeout);
int mp__rasync_get(mp_async *a, void *out, size_t out_cap, size_t *out_len, double timeout);
bool mp__rasync_ready(mp_async *a);
int mp__rasync_successful(mp_async *a);
int mp__rasync_error(const mp_async *a, size_t i, mp_task_error *out);
void mp__rasync_destroy(mp_async *a);

int mp__rimap_next(mp_imap *it, void *item, size_t *index, mp_task_error *err, double timeout);
void mp__rimap_destroy(mp_imap *it);

/* The task registry (pool/pool_remote.c): the name of fn (NULL when it has
 * none), the function of a name (NULL when unknown). */
const char *mp__task_name(mp_task_fn fn);
mp_task_fn mp__task_lookup(const char *name, size_t len);

/* The connection (an mp__redis) of a Redis manager; NULL for any other
 * manager (manager/manager.c). */
void *mp__manager_redis_conn(struct mp_manager *m);

#endif /* MULTIPROC_RPOOL_H */
