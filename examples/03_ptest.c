/* 03_ptest — seed 001, ptest.py:
 *
 *     def func():
 *         print("子进程id :", os.getpid())
 *         print("所属父进程id :", os.getppid())
 *         print("Hello 老鸟Python,我是被子进程启动的函数。")
 *         time.sleep(3)
 *
 *     p = Process(target=func,)
 *     p.start()
 *     print("我是主进程执行的代码")
 *     print("主进程id :", os.getpid())
 *
 * The child runs at the same time as the parent ("并发"), so their lines may
 * come in any order. The sleep is shortened to 0.3 s.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* Process(target=func,) takes no argument: with args == NULL and
 * args_len == 0 the target receives (NULL, 0). */
static int func(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    printf("子进程id : %d\n", (int)getpid());
    printf("所属父进程id : %d\n", (int)getppid());
    printf("Hello 老鸟Python,我是被子进程启动的函数。\n");
    nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL); /* time.sleep(0.3) */
    return 0;
}

int main(void)
{
    mp_process *p = NULL;
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* interleave lines as they happen */

    puts("=== seed: p = Process(target=func,); p.start() (ptest.py) ===");
    int rc = mp_process_create(&p, &(mp_process_opts){.target = func});
    if (rc < 0) {
        report("mp_process_create", rc);
        goto out;
    }
    rc = mp_process_start(p);
    if (rc < 0) {
        report("mp_process_start", rc);
        goto out;
    }
    printf("我是主进程执行的代码\n");
    printf("主进程id : %d\n", (int)getpid());

    /* The seed ends here and lets Python wait for the child at exit. Do not
     * rely on that in C: join explicitly. Only join tells you how the child
     * ended (its exit code), the wait is visible where it happens, and it
     * does not depend on the program leaving through exit() (a crash or
     * _exit skips every at-exit action). The library does wait for
     * non-daemon children at normal exit, like Python, but only as a safety
     * net; and it never leaves a zombie: destroying a running process
     * terminates and reaps it. (The seed calls a child that outlives its
     * parent a zombie, 僵尸进程; that is an orphan. A zombie is a child that
     * has exited and that its parent has not reaped yet.) */
    rc = mp_process_join(p, MP_FOREVER);
    if (rc < 0) {
        report("mp_process_join", rc);
        goto out;
    }
    int code;
    rc = mp_process_exitcode(p, &code);
    if (rc < 0) {
        report("mp_process_exitcode", rc);
        goto out;
    }
    if (code != 0) {
        fprintf(stderr, "func exited with code %d\n", code);
        goto out;
    }
    status = 0;
out:
    mp_process_destroy(p);
    return status;
}
