/* 14_subclass_seconds — seed 004, subclassing Process:
 *
 *     class MyProcess(Process):
 *         def __init__(self, seconds):
 *             super(MyProcess, self).__init__()
 *             self.seconds = seconds
 *
 *         def run(self):
 *             pid = os.getpid()
 *             ppid = os.getppid()
 *             print("父进程pid: {ppid}, 子进程pid: {pid}".format(ppid=ppid, pid=pid))
 *             time.sleep(self.seconds)
 *
 *     print("主进程pid: {pid}".format(pid=os.getpid()))
 *     p = MyProcess(3)
 *     p.start()
 *     p.join()
 *
 * The C form of a subclass: your own struct, a run callback, the struct as
 * the user pointer. The sleep is shortened to 0.3 s.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* The fields MyProcess adds to Process. */
typedef struct my_process {
    double seconds;
} my_process;

/* MyProcess.run; the child sees its own copy of the struct. */
static int my_process_run(mp_process *self, void *user)
{
    (void)self;
    const my_process *me = user;
    printf("父进程pid: %d, 子进程pid: %d\n", (int)getppid(), (int)getpid());
    struct timespec ts = {.tv_sec = (time_t)me->seconds};
    ts.tv_nsec = (long)((me->seconds - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL); /* time.sleep(self.seconds) */
    return 0;
}

int main(void)
{
    mp_process *p = NULL;
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: class MyProcess(Process): def run(self) (seconds) ===");
    printf("主进程pid: %d\n", (int)getpid());
    my_process me = {.seconds = 0.3}; /* MyProcess(0.3) */
    int rc = mp_process_create(&p, &(mp_process_opts){.run = my_process_run, .user = &me});
    if (rc < 0) {
        report("mp_process_create", rc);
        goto out;
    }
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
        fprintf(stderr, "MyProcess exited with code %d\n", code);
        goto out;
    }
    status = 0;
out:
    mp_process_destroy(p);
    return status;
}
