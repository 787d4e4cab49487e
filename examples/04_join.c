/* 04_join — seed 001, join():
 *
 *     def func(name):
 *         print(name)
 *         time.sleep(3)
 *
 *     p = Process(target=func, args=("老鸟python",))
 *     p.start()
 *     print("我是主进程执行的语句!")
 *     p.join()   # blocks until the child has ended
 *     print("父进程执行结束!")
 *
 * join turns the asynchronous child into a synchronous step: whatever the
 * order of the first two lines, "父进程执行结束!" always comes last.
 */
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int func(const void *arg, size_t len)
{
    const char *name = arg;
    if (len == 0 || name[len - 1] != '\0')
        return 2; /* the bytes must be a C string */
    printf("%s\n", name);
    nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL); /* time.sleep(0.3) */
    return 0;
}

/* p.join(), then insist on exit code 0 (Python's p.exitcode == 0). */
static bool join_ok(mp_process *p)
{
    int rc = mp_process_join(p, MP_FOREVER);
    if (rc < 0) {
        report("mp_process_join", rc);
        return false;
    }
    int code;
    rc = mp_process_exitcode(p, &code);
    if (rc < 0) {
        report("mp_process_exitcode", rc);
        return false;
    }
    if (code != 0)
        fprintf(stderr, "%s exited with code %d\n", mp_process_name(p), code);
    return code == 0;
}

int main(void)
{
    mp_process *p = NULL;
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* interleave lines as they happen */

    puts("=== seed: p.start(); print(...); p.join(); print(\"父进程执行结束!\") ===");
    const char name[] = "老鸟python";
    int rc = mp_process_create(
        &p, &(mp_process_opts){.target = func, .args = name, .args_len = sizeof(name)});
    if (rc < 0) {
        report("mp_process_create", rc);
        goto out;
    }
    rc = mp_process_start(p);
    if (rc < 0) {
        report("mp_process_start", rc);
        goto out;
    }
    printf("我是主进程执行的语句!\n");
    if (!join_ok(p)) /* blocks here for about 0.3 s, while func sleeps */
        goto out;
    printf("父进程执行结束!\n");
    status = 0;
out:
    mp_process_destroy(p);
    return status;
}
