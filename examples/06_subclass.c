/* 06_subclass — seed 001, subclassing Process and overriding run():
 *
 *     class MyProcess(Process):
 *         def __init__(self, person):
 *             super().__init__()
 *             self.person = person
 *
 *         def run(self):
 *             print(os.getpid())
 *             print(self.pid)
 *             print('我是谁:%s' % self.person)
 *
 *     p1 = MyProcess("老鸟python"); p2 = MyProcess("如花")
 *     p1.start(); p2.start()
 *     p1.join(); p2.join()
 *     print("主进程结束")
 *
 * C has no subclasses: the "subclass" is a struct of your own fields, the
 * overridden run() is mp_process_opts.run, and the struct reaches it as the
 * user pointer. The pointer is valid in the child because the fork start
 * method gives the child a copy of the parent's memory.
 */
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* The fields MyProcess adds to Process. */
typedef struct my_process {
    const char *person;
} my_process;

/* MyProcess.run: self is the child's own mp_process, so mp_process_pid(self)
 * is self.pid and equals getpid(). */
static int my_process_run(mp_process *self, void *user)
{
    const my_process *me = user;
    printf("%d\n", (int)getpid());
    printf("%d\n", (int)mp_process_pid(self));
    printf("我是谁:%s\n", me->person);
    return mp_process_pid(self) == getpid() ? 0 : 3;
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
    my_process people[2] = {{.person = "老鸟python"}, {.person = "如花"}};
    mp_process *p[2] = {NULL, NULL};
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* interleave lines as they happen */

    puts("=== seed: class MyProcess(Process): def run(self) (person) ===");
    for (int i = 0; i < 2; i++) {
        /* MyProcess(person): the run callback plus its user data. */
        int rc =
            mp_process_create(&p[i], &(mp_process_opts){.run = my_process_run, .user = &people[i]});
        if (rc < 0) {
            report("mp_process_create", rc);
            goto out;
        }
    }
    for (int i = 0; i < 2; i++) {
        int rc = mp_process_start(p[i]); /* like Python, start() calls run in the child */
        if (rc < 0) {
            report("mp_process_start", rc);
            goto out;
        }
    }
    for (int i = 0; i < 2; i++)
        if (!join_ok(p[i]))
            goto out;
    printf("主进程结束\n");
    status = 0;
out:
    for (int i = 0; i < 2; i++)
        mp_process_destroy(p[i]);
    return status;
}
