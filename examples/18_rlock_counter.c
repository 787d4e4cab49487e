/* 18_rlock_counter — seed 001, process synchronisation with a lock:
 *
 *     def func(data, shareddatas, lc):
 *         lc.acquire()
 *         shareddatas[0] = shareddatas[0] + data
 *         time.sleep(2)
 *         print("进程%s修改 shareddatas 里面的数据为:%s" % (os.getpid(), shareddatas[0]))
 *         lc.release()
 *
 *     shareddatas = Array('i', 1)
 *     lock = RLock()
 *     shareddatas[0] = 1
 *     p1 = Process(target=func, args=(10, shareddatas, lock))
 *     p2 = Process(target=func, args=(20, shareddatas, lock))
 *     p1.start(); p2.start(); p1.join(); p2.join()
 *
 * Whichever child gets the rlock first prints 11 or 21; the other one then
 * prints 31 (sleep shortened to 0.2 s).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <multiproc.h>

typedef struct args {
    int data;
    mp_array *shareddatas;
    mp_rlock *lc;
} args;

static void check(const char *call, int rc)
{
    if (rc < 0) {
        fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
        exit(1);
    }
}

static int func(const void *arg, size_t len)
{
    if (len != sizeof(args))
        return 2;
    const args *a = arg;
    if (mp_rlock_acquire(a->lc, MP_FOREVER) < 0)
        return 1;
    int *shareddatas = mp_array_data(a->shareddatas);
    shareddatas[0] = shareddatas[0] + a->data;
    usleep(200000);
    printf("进程%d修改 shareddatas 里面的数据为:%d\n", (int)getpid(), shareddatas[0]);
    return mp_rlock_release(a->lc) < 0;
}

static mp_process *start(args *a)
{
    mp_process *p;
    check("mp_process_create",
          mp_process_create(&p,
                            &(mp_process_opts){.target = func, .args = a, .args_len = sizeof *a}));
    check("mp_process_start", mp_process_start(p));
    return p;
}

static int join(mp_process *p)
{
    check("mp_process_join", mp_process_join(p, MP_FOREVER));
    int code = -1;
    check("mp_process_exitcode", mp_process_exitcode(p, &code));
    mp_process_destroy(p);
    return code;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: lock = RLock(); two processes add 10 and 20 to shareddatas[0] under it ===");
    mp_array *shareddatas;
    mp_rlock *lock;
    check("mp_array_create",
          mp_array_create(&shareddatas, &(mp_array_opts){.typecode = 'i', .len = 1}));
    check("mp_rlock_create", mp_rlock_create(&lock, NULL));
    check("mp_array_set_i64", mp_array_set_i64(shareddatas, 0, 1));
    args a1 = {.data = 10, .shareddatas = shareddatas, .lc = lock};
    args a2 = {.data = 20, .shareddatas = shareddatas, .lc = lock};
    mp_process *p1 = start(&a1), *p2 = start(&a2);
    int c1 = join(p1), c2 = join(p2);
    mp_rlock_destroy(lock);
    mp_array_destroy(shareddatas);
    if (c1 != 0 || c2 != 0) {
        fprintf(stderr, "children exited with %d and %d\n", c1, c2);
        return 1;
    }
    return 0;
}
