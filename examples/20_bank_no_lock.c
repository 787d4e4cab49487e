/* 20_bank_no_lock — seed 003, threads sharing a variable without a lock:
 *
 *     balance = 0
 *     def change_it(n):
 *         global balance
 *         balance = balance + n
 *         balance = balance - n
 *     def run_thread(n):
 *         for i in range(1000000):
 *             change_it(n)
 *     t1 = threading.Thread(target=run_thread, args=(5,))
 *     t2 = threading.Thread(target=run_thread, args=(8,))
 *     t1.start(); t2.start(); t1.join(); t2.join()
 *     print(balance)              # often not 0
 *
 * Each update is a read followed by a write; between them the other thread
 * may write, and its update is lost. The reads and writes are atomic loads
 * and stores, so the program is well defined C (no data race in the C11
 * sense, nothing for ThreadSanitizer to flag): only the lost updates of the
 * Python original remain. Whether they show depends on the scheduling, so
 * the result may be 0 or not; 21_bank_lock is the fix.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

static _Atomic long balance;

static void change_it(long n)
{
    long b = atomic_load_explicit(&balance, memory_order_relaxed);
    atomic_store_explicit(&balance, b + n, memory_order_relaxed);
    b = atomic_load_explicit(&balance, memory_order_relaxed);
    atomic_store_explicit(&balance, b - n, memory_order_relaxed);
}

static void *run_thread(void *arg)
{
    long n = *(const long *)arg;
    for (int i = 0; i < 1000000; i++)
        change_it(n);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: two threads change balance 10^6 times each, without a lock ===");
    long five = 5, eight = 8;
    pthread_t t1, t2;
    if (pthread_create(&t1, NULL, run_thread, &five) != 0 ||
        pthread_create(&t2, NULL, run_thread, &eight) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    printf("balance = %ld (may be wrong: updates of one thread can overwrite the other's)\n",
           atomic_load(&balance));
    return 0;
}
