/* 10_findx — seed 002, findx:
 *
 *     def findx(name):
 *         print name
 *         print '子进程(%s)' % (os.getpid())
 *
 *     print '父进程 (%s)' % os.getpid()
 *     p = Process(target=findx, args=(' 我是宝宝',))
 *     print '开始'
 *     p.start()
 *     p.join()
 *     print '结束'
 *
 * start() immediately followed by join(): the child runs while the parent
 * waits, so the output is in program order.
 */
#include <stdio.h>
#include <unistd.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int findx(const void *arg, size_t len)
{
    const char *name = arg;
    if (len == 0 || name[len - 1] != '\0')
        return 2; /* the bytes must be a C string */
    printf("%s\n", name);
    printf("子进程(%d)\n", (int)getpid());
    return 0;
}

int main(void)
{
    mp_process *p = NULL;
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: Process(target=findx, args=(' 我是宝宝',)); start(); join() ===");
    printf("父进程 (%d)\n", (int)getpid());
    const char name[] = " 我是宝宝";
    int rc = mp_process_create(
        &p, &(mp_process_opts){.target = findx, .args = name, .args_len = sizeof(name)});
    if (rc < 0) {
        report("mp_process_create", rc);
        goto out;
    }
    printf("开始\n");
    rc = mp_process_start(p);
    if (rc < 0) {
        report("mp_process_start", rc);
        goto out;
    }
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
        fprintf(stderr, "findx exited with code %d\n", code);
        goto out;
    }
    printf("结束\n");
    status = 0;
out:
    mp_process_destroy(p);
    return status;
}
