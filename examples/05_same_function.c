/* 05_same_function — seed 001, a function belongs to whichever process
 * calls it:
 *
 *     def func(name):
 *         print("调用我的进程名字:%s;进程id是:%s" % (name, os.getpid()))
 *
 *     p1 = Process(target=func, args=("子进程1",))
 *     p2 = Process(target=func, args=("子进程2",))
 *     p1.start(); p2.start()
 *     p1.join(); p2.join()
 *     func("主进程")
 *
 * The same func runs three times, in three processes: each prints its own pid.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* Called as a target (arg = the copied bytes) and directly by main. */
static int func(const void *arg, size_t len)
{
    const char *name = arg;
    if (len == 0 || name[len - 1] != '\0')
        return 2; /* the bytes must be a C string */
    printf("调用我的进程名字:%s;进程id是:%d\n", name, (int)getpid());
    return 0;
}

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
    static const char *const names[2] = {"子进程1", "子进程2"};
    mp_process *p[2] = {NULL, NULL};
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* interleave lines as they happen */

    puts("=== seed: p1, p2 = Process(target=func, ...); func(\"主进程\") ===");
    for (int i = 0; i < 2; i++) {
        int rc = mp_process_create(
            &p[i],
            &(mp_process_opts){.target = func, .args = names[i], .args_len = strlen(names[i]) + 1});
        if (rc < 0) {
            report("mp_process_create", rc);
            goto out;
        }
    }
    for (int i = 0; i < 2; i++) {
        int rc = mp_process_start(p[i]);
        if (rc < 0) {
            report("mp_process_start", rc);
            goto out;
        }
    }
    for (int i = 0; i < 2; i++)
        if (!join_ok(p[i]))
            goto out;
    const char me[] = "主进程";
    if (func(me, sizeof(me)) != 0) /* now the parent calls it */
        goto out;
    status = 0;
out:
    for (int i = 0; i < 2; i++)
        mp_process_destroy(p[i]);
    return status;
}
