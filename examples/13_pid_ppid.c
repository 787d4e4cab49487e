/* 13_pid_ppid — seed 004, Process with a number as argument:
 *
 *     def f(seconds):
 *         pid = os.getpid()       # this process
 *         ppid = os.getppid()     # its parent
 *         print("父进程pid: {ppid}, 子进程pid: {pid}".format(ppid=ppid, pid=pid))
 *         time.sleep(seconds)
 *
 *     pid = os.getpid()
 *     print("主进程pid: {pid}".format(pid=pid))
 *     p = Process(target=f, args=(3,))
 *     p.start()
 *     p.join()
 *
 * The argument is a double, passed as its bytes (sleep shortened to 0.3 s).
 * The child is a copy of this same program, so the bytes mean the same there.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int f(const void *arg, size_t len)
{
    double seconds;
    if (len != sizeof(seconds) || arg == NULL)
        return 2;
    memcpy(&seconds, arg, sizeof(seconds)); /* the copy may not be aligned for a double */
    if (!(seconds >= 0 && seconds < 10))
        return 2;
    printf("父进程pid: %d, 子进程pid: %d\n", (int)getppid(), (int)getpid());
    struct timespec ts = {.tv_sec = (time_t)seconds};
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL); /* time.sleep(seconds) */
    return 0;
}

int main(void)
{
    mp_process *p = NULL;
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: p = Process(target=f, args=(3,)); os.getpid(); os.getppid() ===");
    printf("主进程pid: %d\n", (int)getpid());
    double seconds = 0.3;
    int rc = mp_process_create(
        &p, &(mp_process_opts){.target = f, .args = &seconds, .args_len = sizeof(seconds)});
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
        fprintf(stderr, "f exited with code %d\n", code);
        goto out;
    }
    status = 0;
out:
    mp_process_destroy(p);
    return status;
}
