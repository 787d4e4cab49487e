/* Processes driven from several threads at once: creating, starting,
 * joining, polling and waiting on the same objects concurrently. Run under
 * ThreadSanitizer by make check. */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "stress.h"

#define THREADS 4
#define ROUNDS  25

static int ret_arg(const void *arg, size_t len)
{
    return len == sizeof(int) ? *(const int *)arg : 99;
}

/* Each thread starts and joins its own processes: the registry and the
 * identity counter are shared by all of them. */
static void *own_children(void *arg)
{
    int base = (int)(intptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int code = (base * ROUNDS + i) % 256;
        mp_process *p;
        STRESS_OK(mp_process_create(
            &p, &(mp_process_opts){.target = ret_arg, .args = &code, .args_len = sizeof code}));
        STRESS_OK(mp_process_start(p));
        STRESS_OK(mp_process_join(p, 30));
        int got = -1;
        STRESS_OK(mp_process_exitcode(p, &got));
        STRESS_CHECK(got == code, "exit code %d, expected %d", got, code);
        mp_process_destroy(p);
    }
    return NULL;
}

static mp_process *shared[8];

/* Several threads race to notice the same children's exits. */
static void *watch_shared(void *arg)
{
    int mode = (int)(intptr_t)arg;
    for (size_t i = 0; i < 8; i++) {
        if (mode == 0) {
            STRESS_OK(mp_process_join(shared[i], 30));
        } else if (mode == 1) {
            while (mp_process_is_alive(shared[i]))
                usleep(100);
        } else {
            mp_waitable w = MP_WAIT_PROCESS(shared[i]);
            int n = mp_wait(&w, 1, 30);
            STRESS_CHECK(n == 1, "mp_wait returned %d", n);
        }
        int code = -1;
        STRESS_OK(mp_process_exitcode(shared[i], &code));
        STRESS_CHECK(code == (int)i, "child %zu exit code %d", i, code);
    }
    return NULL;
}

static void *count_children(void *arg)
{
    (void)arg;
    mp_process *out[16];
    for (int i = 0; i < 200; i++) {
        int n = mp_active_children(out, 16);
        STRESS_CHECK(n >= 0 && n <= 8, "mp_active_children returned %d", n);
    }
    return NULL;
}

int main(void)
{
    STRESS_DEADLINE(240);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        STRESS_CHECK(pthread_create(&t[i], NULL, own_children, (void *)(intptr_t)i) == 0,
                     "pthread_create failed");
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);

    int codes[8];
    for (int i = 0; i < 8; i++) {
        codes[i] = i;
        STRESS_OK(mp_process_create(
            &shared[i],
            &(mp_process_opts){.target = ret_arg, .args = &codes[i], .args_len = sizeof(int)}));
        STRESS_OK(mp_process_start(shared[i]));
    }
    pthread_t w[4];
    for (int i = 0; i < 3; i++)
        STRESS_CHECK(pthread_create(&w[i], NULL, watch_shared, (void *)(intptr_t)i) == 0,
                     "pthread_create failed");
    STRESS_CHECK(pthread_create(&w[3], NULL, count_children, NULL) == 0, "pthread_create failed");
    for (int i = 0; i < 4; i++)
        pthread_join(w[i], NULL);
    STRESS_CHECK(mp_active_children(NULL, 0) == 0, "children left");
    for (int i = 0; i < 8; i++)
        mp_process_destroy(shared[i]);
    printf("stress_process: %d processes from %d threads: ok\n", THREADS * ROUNDS + 8, THREADS);
    return 0;
}
