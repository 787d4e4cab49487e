/* 21_bank_lock — seed 003, the same with a lock:
 *
 *     lock = threading.Lock()
 *     def run_thread(n):
 *         for i in range(1000000):
 *             lock.acquire()
 *             try:
 *                 change_it(n)
 *             finally:
 *                 lock.release()
 *     ...
 *     print(balance)              # 0
 *
 * An mp_lock is made for processes, and a process-shared lock is also a
 * thread lock: the result is exactly 0.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <multiproc.h>

static long balance;
static mp_lock *lock;

static void change_it(long n)
{
    balance = balance + n;
    balance = balance - n;
}

static void *run_thread(void *arg)
{
    long n = *(const long *)arg;
    for (int i = 0; i < 1000000; i++) {
        int rc = mp_lock_acquire(lock, MP_FOREVER);
        if (rc < 0) {
            fprintf(stderr, "mp_lock_acquire failed: %s\n", mp_strerror(rc));
            exit(1);
        }
        change_it(n);
        mp_lock_release(lock);
    }
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: lock = threading.Lock(); two threads change balance 10^6 times each ===");
    int rc = mp_lock_create(&lock, NULL);
    if (rc < 0) {
        fprintf(stderr, "mp_lock_create failed: %s\n", mp_strerror(rc));
        return 1;
    }
    long five = 5, eight = 8;
    pthread_t t1, t2;
    if (pthread_create(&t1, NULL, run_thread, &five) != 0 ||
        pthread_create(&t2, NULL, run_thread, &eight) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    printf("%ld\n", balance);
    mp_lock_destroy(lock);
    return balance == 0 ? 0 : 1;
}
