/* 22_thread_local — seed 003, ThreadLocal:
 *
 *     local_school = threading.local()
 *     def process_student():
 *         std = local_school.student
 *         print('Hello, %s (in %s)' % (std, threading.current_thread().name))
 *     def process_thread(name):
 *         local_school.student = name
 *         process_student()
 *     t1 = threading.Thread(target=process_thread, args=('Alice',), name='Thread-A')
 *     t2 = threading.Thread(target=process_thread, args=('Bob',), name='Thread-B')
 *     t1.start(); t2.start(); t1.join(); t2.join()
 *
 * C11 has threading.local built in: a _Thread_local variable is global in
 * name and private to each thread in value. The thread's name is one too.
 */
#include <pthread.h>
#include <stdio.h>

static _Thread_local const char *student; /* local_school.student */
static _Thread_local const char *thread_name;

static void process_student(void)
{
    printf("Hello, %s (in %s)\n", student, thread_name);
}

typedef struct thread_args {
    const char *student;
    const char *name;
} thread_args;

static void *process_thread(void *arg)
{
    const thread_args *a = arg;
    thread_name = a->name;
    student = a->student;
    process_student();
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: local_school = threading.local(); each thread binds its own student ===");
    thread_args a = {"Alice", "Thread-A"}, b = {"Bob", "Thread-B"};
    pthread_t t1, t2;
    if (pthread_create(&t1, NULL, process_thread, &a) != 0 ||
        pthread_create(&t2, NULL, process_thread, &b) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    return 0;
}
