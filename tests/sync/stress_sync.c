/* The sync primitives hammered from several threads of several processes at
 * once, then lock holders killed at random: the survivors never hang and
 * the data the lock protects is consistent after each repair. Run under
 * ThreadSanitizer by make check. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stress.h"

#define THREADS   2 /* per process: even workers produce, odd ones consume */
#define CHILDREN  2
#define WORKERS   ((CHILDREN + 1) * THREADS)
#define ROUNDS    2000
#define SYNC_EACH 100 /* rounds between barrier meetings */
#define CAPACITY  4   /* of the producer/consumer slot count */

typedef struct shared {
    mp_lock *lock;
    mp_rlock *rlock;
    mp_sem *sem;
    mp_cond *cond;
    mp_event *go;
    mp_barrier *barrier;
    long lock_count, rlock_count, sem_count;
    int items; /* produced and not yet consumed (cond's lock held) */
    long produced, consumed;
    /* The kill test: a and b are equal whenever the lock is free. */
    mp_lock *klock;
    long a, b, repairs;
} shared;

static shared *S;

static bool has_room(void *arg)
{
    (void)arg;
    return S->items < CAPACITY;
}

static bool has_item(void *arg)
{
    (void)arg;
    return S->items > 0;
}

static void produce_or_consume(bool producer)
{
    STRESS_OK(mp_cond_acquire(S->cond, 20));
    STRESS_OK(mp_cond_wait_for(S->cond, producer ? has_room : has_item, NULL, 20));
    S->items += producer ? 1 : -1;
    if (producer)
        S->produced++;
    else
        S->consumed++;
    STRESS_CHECK(S->items >= 0 && S->items <= CAPACITY, "items %d", S->items);
    int woken = mp_cond_notify_all(S->cond);
    STRESS_CHECK(woken >= 0, "notify: %s", mp_err_name(woken));
    STRESS_OK(mp_cond_release(S->cond));
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    STRESS_OK(mp_event_wait(S->go, 20));
    for (int i = 0; i < ROUNDS; i++) {
        STRESS_OK(mp_lock_acquire(S->lock, 20));
        S->lock_count++;
        STRESS_OK(mp_lock_release(S->lock));

        STRESS_OK(mp_rlock_acquire(S->rlock, 20));
        STRESS_OK(mp_rlock_acquire(S->rlock, 0));
        S->rlock_count++;
        STRESS_OK(mp_rlock_release(S->rlock));
        STRESS_OK(mp_rlock_release(S->rlock));

        STRESS_OK(mp_sem_acquire(S->sem, 20));
        S->sem_count++;
        STRESS_OK(mp_sem_release(S->sem));

        /* Even workers produce, odd ones consume, as many items each. */
        if (i % 4 == 0)
            produce_or_consume(id % 2 == 0);
        if (i % SYNC_EACH == SYNC_EACH - 1) {
            int idx = mp_barrier_wait(S->barrier, 30);
            STRESS_CHECK(idx >= 0 && idx < WORKERS, "barrier: %s", mp_err_name(idx));
        }
    }
    return NULL;
}

static void run_threads(int first_id)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        STRESS_CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)(first_id + i)) == 0,
                     "pthread_create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static int child_threads(const void *arg, size_t len)
{
    (void)len;
    run_threads((int)(intptr_t)arg);
    return 0;
}

static void hammer(void)
{
    mp_process *p[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        STRESS_OK(mp_process_create(
            &p[c], &(mp_process_opts){.target = child_threads,
                                      .args = (void *)(intptr_t)((c + 1) * THREADS)}));
        STRESS_OK(mp_process_start(p[c]));
    }
    STRESS_OK(mp_event_set(S->go));
    run_threads(0);
    for (int c = 0; c < CHILDREN; c++) {
        STRESS_OK(mp_process_join(p[c], 60));
        int code = -1;
        STRESS_OK(mp_process_exitcode(p[c], &code));
        STRESS_CHECK(code == 0, "child %d exit code %d", c, code);
        mp_process_destroy(p[c]);
    }
    long want = (long)WORKERS * ROUNDS;
    STRESS_CHECK(S->lock_count == want, "lock count %ld != %ld", S->lock_count, want);
    STRESS_CHECK(S->rlock_count == want, "rlock count %ld != %ld", S->rlock_count, want);
    STRESS_CHECK(S->sem_count == want, "sem count %ld != %ld", S->sem_count, want);
    STRESS_CHECK(S->produced == S->consumed && S->items == 0, "produced %ld consumed %ld",
                 S->produced, S->consumed);
    STRESS_CHECK(!mp_barrier_broken(S->barrier), "barrier broken");
}

/* ---- kill at random -------------------------------------------------------
 * Children loop on the lock: a++, a pause, b++. A holder killed between the
 * two leaves a != b; the next acquirer gets MP_EOWNERDEAD and repairs. */
static void klock_take(void)
{
    int rc = mp_lock_acquire(S->klock, 20);
    if (rc == MP_EOWNERDEAD) {
        S->b = S->a;
        S->repairs++;
        rc = mp_lock_consistent(S->klock);
    }
    if (rc != 0)
        _exit(3); /* the parent reports it */
}

static int kill_target(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    for (;;) {
        klock_take();
        if (S->a != S->b)
            _exit(4);
        S->a++;
        for (volatile int spin = 0; spin < 2000; spin++)
            ;
        S->b++;
        if (mp_lock_release(S->klock) != 0)
            _exit(5);
    }
}

static mp_process *start_target(void)
{
    mp_process *p;
    STRESS_OK(mp_process_create(&p, &(mp_process_opts){.target = kill_target}));
    STRESS_OK(mp_process_start(p));
    return p;
}

static void kill_at_random(void)
{
    enum { N = 3 };
    mp_process *p[N];
    for (int i = 0; i < N; i++)
        p[i] = start_target();
    unsigned seed = (unsigned)time(NULL);
    int kills = 0;
    for (int round = 0; round < 60; round++) {
        usleep((useconds_t)(2000 + rand_r(&seed) % 20000));
        int i = (int)(rand_r(&seed) % N);
        STRESS_OK(mp_process_kill(p[i]));
        int code = 0;
        STRESS_OK(mp_process_exitcode(p[i], &code));
        STRESS_CHECK(code == -SIGKILL, "a survivor failed: exit code %d", code);
        mp_process_destroy(p[i]);
        kills++;
        p[i] = start_target();
    }
    for (int i = 0; i < N; i++) {
        STRESS_OK(mp_process_kill(p[i]));
        int code = 0;
        STRESS_OK(mp_process_exitcode(p[i], &code));
        STRESS_CHECK(code == -SIGKILL, "a survivor failed: exit code %d", code);
        mp_process_destroy(p[i]);
    }
    klock_take();
    STRESS_CHECK(S->a == S->b, "inconsistent after repair: a %ld b %ld", S->a, S->b);
    STRESS_CHECK(S->a > 0, "no progress");
    STRESS_OK(mp_lock_release(S->klock));
    printf("kill_at_random: %d kills, %ld increments, %ld repairs\n", kills, S->a, S->repairs);
}

int main(void)
{
    STRESS_DEADLINE(240);
    mp_array *mem;
    STRESS_OK(mp_array_create(
        &mem, &(mp_array_opts){.typecode = 'B', .len = sizeof(shared), .raw = true}));
    S = mp_array_data(mem);
    STRESS_OK(mp_lock_create(&S->lock, NULL));
    STRESS_OK(mp_rlock_create(&S->rlock, NULL));
    STRESS_OK(mp_sem_create(&S->sem, &(mp_sem_opts){.value = 1, .bounded = true}));
    STRESS_OK(mp_cond_create(&S->cond, NULL));
    STRESS_OK(mp_event_create(&S->go, NULL));
    STRESS_OK(mp_barrier_create(&S->barrier, &(mp_barrier_opts){.parties = WORKERS}));
    STRESS_OK(mp_lock_create(&S->klock, NULL));
    hammer();
    kill_at_random();
    mp_lock_destroy(S->klock);
    mp_barrier_destroy(S->barrier);
    mp_event_destroy(S->go);
    mp_cond_destroy(S->cond);
    mp_sem_destroy(S->sem);
    mp_rlock_destroy(S->rlock);
    mp_lock_destroy(S->lock);
    mp_array_destroy(mem);
    puts("stress_sync: ok");
    return 0;
}
