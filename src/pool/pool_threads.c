/* Threads as workers (Python's ThreadPool): the same ring and the same
 * worker loop, run by threads of the caller's process. A thread cannot be
 * killed, so there is no per-task timeout and terminate lets the running
 * tasks finish (the queued ones are cancelled); a crashing task takes the
 * whole process with it, as in Python. */
#include <pthread.h>
#include <stdlib.h>

#include "os/futex.h"
#include "pool/pool_internal.h"

static void *thread_main(void *arg)
{
    mp__pwrec *w = arg;
    mp__pool_worker_main(NULL, w);
    atomic_store(&w->exited, 1);
    return NULL;
}

int mp__pool_thread_spawn(mp_pool *p, int index)
{
    mp__pwrec *w = &p->shm->wrec[index];
    atomic_store(&w->exited, 0);
    int e = pthread_create(&p->threads[index], NULL, thread_main, w);
    if (e != 0)
        return e == EAGAIN ? MP_EAGAIN : -e;
    p->thread_live[index] = true;
    return 0;
}

/* Joins the threads that retired (maxtasksperchild) and starts their
 * replacements. */
void mp__pool_thread_reap(mp_pool *p)
{
    for (int i = 0; i < p->nproc; i++) {
        if (p->thread_live[i] && atomic_load(&p->shm->wrec[i].exited)) {
            pthread_join(p->threads[i], NULL);
            p->thread_live[i] = false;
        }
        if (!p->thread_live[i] && !atomic_load(&p->shm->quit))
            mp__pool_thread_spawn(p, i); /* on failure: retried at the next check */
    }
}

/* Waits until every thread has left its loop, or the deadline. */
int mp__pool_thread_stop(mp_pool *p, uint32_t how, const mp__deadline *d)
{
    atomic_store(&p->shm->quit, how);
    atomic_fetch_add(&p->shm->work_seq, 1);
    mp__futex_wake(&p->shm->work_seq, INT32_MAX);
    for (int i = 0; i < p->nproc; i++) {
        while (p->thread_live[i] && !atomic_load(&p->shm->wrec[i].exited)) {
            if (mp__deadline_expired(d))
                return MP_ETIMEDOUT;
            mp__sleep_until(d, 1000000);
        }
        if (p->thread_live[i]) {
            pthread_join(p->threads[i], NULL);
            p->thread_live[i] = false;
        }
    }
    return 0;
}
