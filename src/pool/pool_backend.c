/* The registration of the distributed pool's backend, and the worker's
 * entry points, which reach that backend through it (pool/pool_backend.h). */
#include <stdatomic.h>

#include "base/internal.h"
#include "pool/pool_backend.h"

static _Atomic(const mp__pool_backend *) distributed;

void mp__pool_distributed_register(const mp__pool_backend *b)
{
    atomic_store_explicit(&distributed, b, memory_order_release);
}

const mp__pool_backend *mp__pool_distributed(void)
{
    return atomic_load_explicit(&distributed, memory_order_acquire);
}

int mp_worker_serve(struct mp_manager *m, const char *pool_name, const mp_worker_opts *opts)
{
    const mp__pool_backend *b = mp__pool_distributed();
    if (m == NULL || pool_name == NULL)
        return mp__fail(MP_EINVAL, "mp_worker_serve: %s is NULL", m ? "pool_name" : "m");
    return b ? MP__POOL_CALL(b, worker_serve, m, pool_name, opts) : MP_ENOSYS;
}

int mp_worker_stop(struct mp_manager *m, const char *pool_name)
{
    const mp__pool_backend *b = mp__pool_distributed();
    if (m == NULL || pool_name == NULL)
        return mp__fail(MP_EINVAL, "mp_worker_stop: %s is NULL", m ? "pool_name" : "m");
    return b ? MP__POOL_CALL(b, worker_stop, m, pool_name) : MP_ENOSYS;
}
