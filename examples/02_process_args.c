/* 02_process_args — seed 000, multiproc00.py:
 *
 *     def run_proc(name):
 *         for i in range(3):
 *             print(u'子进程 %s (%s)...' % (name, os.getpid()))
 *         print(u'子进程结束.')
 *
 *     print(u'父进程 %s.' % os.getpid())
 *     p = Process(target=run_proc, args=('test',))
 *     print(u'子进程要开始啦.')
 *     p.start()
 *     for i in range(3):
 *         print(u'父进程{pid}进行中...'.format(pid = os.getpid()))
 *     p.join()
 *     print(u"父进程结束啦")
 *
 * Python's args tuple becomes argument bytes: mp_process_create copies them,
 * so the string may be a local variable that is gone by the time the child
 * runs.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* run_proc(name): arg is the child's copy of the bytes given at create time,
 * here "test" with its terminating NUL. */
static int run_proc(const void *arg, size_t len)
{
    const char *name = arg;
    if (len == 0 || name[len - 1] != '\0')
        return 2; /* not a C string: refuse rather than read past the end */
    for (int i = 0; i < 3; i++)
        printf("子进程 %s (%d)...\n", name, (int)getpid());
    printf("子进程结束.\n");
    return 0;
}

int main(void)
{
    mp_process *p = NULL;
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* interleave lines as they happen */

    puts("=== seed: Process(target=run_proc, args=('test',)); start(); join() ===");
    printf("父进程 %d.\n", (int)getpid());
    const char name[] = "test";
    int rc = mp_process_create(
        &p, &(mp_process_opts){.target = run_proc, .args = name, .args_len = sizeof(name)});
    if (rc < 0) {
        report("mp_process_create", rc);
        goto out;
    }
    printf("子进程要开始啦.\n");
    rc = mp_process_start(p);
    if (rc < 0) {
        report("mp_process_start", rc);
        goto out;
    }
    for (int i = 0; i < 3; i++)
        printf("父进程%d进行中...\n", (int)getpid());
    rc = mp_process_join(p, MP_FOREVER);
    if (rc < 0) {
        report("mp_process_join", rc);
        goto out;
    }
    /* Python would print p.exitcode as 0; in C, check it. */
    int code;
    rc = mp_process_exitcode(p, &code);
    if (rc < 0) {
        report("mp_process_exitcode", rc);
        goto out;
    }
    if (code != 0) {
        fprintf(stderr, "run_proc exited with code %d\n", code);
        goto out;
    }
    printf("父进程结束啦\n");
    status = 0;
out:
    mp_process_destroy(p);
    return status;
}
