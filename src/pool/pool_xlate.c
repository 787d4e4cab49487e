/* Function and ctx pointers of a pool whose workers are fresh images
 * (spawn, forkserver): checked in the parent when a task is submitted,
 * translated in the worker (see mp__pmod in pool/pool_internal.h).
 *
 * A pointer is usable when it lies in the shared heap (data only: mapped
 * at the same address in the whole family) or in a module the workers
 * have, as the same build. The parent refuses at submit what it can tell
 * cheaply: a pointer in no module (stack, malloc: MP_EINVAL) and one in a
 * module loaded after the pool started (MP_ENOTLOADED), which no worker
 * can have. A module the parent loaded with dlopen before the pool started
 * is not in a spawned worker either: the worker finds that out when it
 * first meets the module, and the task fails with MP_ENOTLOADED (or
 * MP_EOTHERBUILD when the build-ids differ). Fork pools share the parent's
 * layout and only check that a task function's module was there when the
 * pool started (mp__pool_fork_check). */
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "pool/pool_internal.h"

static int record_start_modules(mp_pool *p)
{
    size_t n = mp__sym_bases(NULL, 0);
    p->start_bases = malloc((n ? n : 1) * sizeof *p->start_bases);
    if (!p->start_bases)
        return MP_ENOMEM;
    p->nstart = mp__sym_bases(p->start_bases, n);
    if (p->nstart > n)
        p->nstart = n; /* a module loaded in between: not a start module */
    return 0;
}

int mp__pool_xlate_init(mp_pool *p)
{
    void *mem = NULL;
    int rc = mp__heap_alloc(&mem, MP__POOL_MODS * sizeof(mp__pmod));
    if (rc < 0)
        return rc;
    if ((rc = record_start_modules(p)) < 0) {
        mp__heap_free(mem);
        return rc;
    }
    p->shm->mods = mem;
    p->shm->xlate = 1;
    return 0;
}

int mp__pool_fork_init(mp_pool *p)
{
    return record_start_modules(p);
}

void mp__pool_xlate_fini(mp_pool *p)
{
    if (p->shm)
        mp__heap_free(p->shm->mods);
    free(p->start_bases);
    p->start_bases = NULL;
}

static bool loaded_at_start(const mp_pool *p, uintptr_t base)
{
    for (size_t i = 0; i < p->nstart; i++)
        if (p->start_bases[i] == base)
            return true;
    return false;
}

static int add_module(mp_pool *p, const void *ptr, const char *call, const char *arg)
{
    mp__pmod m;
    int rc = mp__sym_module(ptr, &m.ref, &m.base, &m.lo, &m.hi);
    if (rc < 0) /* stack, malloc, mmap: meaningless in another image */
        return mp__fail(rc,
                        "%s: %s %p is in no module and not in the shared heap (stack, malloc or "
                        "mmap memory?): spawn and forkserver workers are fresh images and cannot "
                        "see it; put the data in the shared heap (mp_alloc) or in a static object",
                        call, arg, ptr);
    if (!loaded_at_start(p, m.base))
        return mp__fail(MP_ENOTLOADED,
                        "%s: %s %p is in %s, loaded with dlopen after the pool started: no worker "
                        "has it",
                        call, arg, ptr, m.ref.path[0] ? m.ref.path : "the program");
    uint32_t n = atomic_load_explicit(&p->shm->nmods, memory_order_relaxed);
    if (n == MP__POOL_MODS)
        return mp__fail(MP_ENOSPC, "%s: %s %p: the pool's tasks already use %d modules", call, arg,
                        ptr, MP__POOL_MODS);
    p->shm->mods[n] = m;
    atomic_store_explicit(&p->shm->nmods, n + 1, memory_order_release);
    return 0;
}

/* A fork worker is a copy of the parent as it was at the pool's start: a
 * module dlopen'd after is not mapped there, and calling into it would
 * crash the worker. Pointers in no module (code made at run time) are let
 * through: whether the worker has them cannot be told cheaply. */
int mp__pool_fork_check(mp_pool *p, const void *fn, const char *call, const char *arg)
{
    uintptr_t a = (uintptr_t)fn;
    if (!p->start_bases || a == p->last_fn)
        return 0;
    for (size_t i = 0; i < p->nfork; i++) {
        if (a >= p->fork_lo[i] && a < p->fork_hi[i]) {
            p->last_fn = a;
            return 0;
        }
    }
    mp__symref ref;
    uintptr_t base, lo, hi;
    if (mp__sym_module(fn, &ref, &base, &lo, &hi) < 0)
        return 0;
    if (!loaded_at_start(p, base))
        return mp__fail(MP_ENOTLOADED,
                        "%s: %s %p is in %s, loaded with dlopen after the pool started: the fork "
                        "workers, copies from before, do not have it",
                        call, arg, fn, ref.path[0] ? ref.path : "the program");
    if (p->nfork < MP__POOL_FORK_MODS) {
        p->fork_lo[p->nfork] = lo;
        p->fork_hi[p->nfork++] = hi;
    }
    p->last_fn = a;
    return 0;
}

int mp__pool_xlate_check(mp_pool *p, const void *ptr, bool code, const char *call, const char *arg)
{
    if (!p->shm->xlate || !ptr)
        return 0;
    uintptr_t a = (uintptr_t)ptr;
    if (code && a == p->last_fn)
        return 0;
    if (!code && mp__heap_contains(ptr, 1))
        return 0;
    uint32_t n = atomic_load_explicit(&p->shm->nmods, memory_order_relaxed);
    int rc = MP_EINVAL;
    for (uint32_t i = 0; i < n && rc < 0; i++)
        if (a >= p->shm->mods[i].lo && a < p->shm->mods[i].hi)
            rc = 0;
    if (rc < 0)
        rc = add_module(p, ptr, call, arg);
    if (rc == 0 && code)
        p->last_fn = a;
    return rc;
}

/* The difference between the worker's and the parent's load base of
 * module i, found once. */
static int module_delta(mp__wxlate *x, uint32_t i, uintptr_t *delta)
{
    if (!x->known[i]) {
        void *base = NULL;
        int rc = mp__sym_decode(&x->shm->mods[i].ref, &base);
        x->rc[i] = rc;
        x->delta[i] = (uintptr_t)base - x->shm->mods[i].base;
        x->known[i] = true;
    }
    *delta = x->delta[i];
    return x->rc[i];
}

int mp__pool_xlate(mp__wxlate *x, const void *from, bool code, void **to)
{
    uintptr_t a = (uintptr_t)from;
    if (!from || (!code && mp__heap_contains(from, 1))) {
        *to = (void *)a;
        return 0;
    }
    if (code && a == x->fn_from && a != 0) {
        *to = (void *)x->fn_to;
        return 0;
    }
    uint32_t n = atomic_load_explicit(&x->shm->nmods, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        const mp__pmod *m = &x->shm->mods[i];
        if (a < m->lo || a >= m->hi)
            continue;
        uintptr_t delta;
        int rc = module_delta(x, i, &delta);
        if (rc < 0)
            return rc;
        *to = (void *)(a + delta);
        if (code) {
            x->fn_from = a;
            x->fn_to = a + delta;
        }
        return 0;
    }
    return MP_EBADMSG; /* the parent checked every pointer it sent */
}
