/* 70_start_methods — seed 004, the three ways to start a child (spawn, fork,
 * forkserver), each running the seed's
 *
 *     def f(seconds):
 *         print("父进程pid: {ppid}, 子进程pid: {pid}".format(ppid=os.getppid(), pid=os.getpid()))
 *         time.sleep(seconds)
 *
 *     for method in ("fork", "spawn", "forkserver"):
 *         ctx = multiprocessing.get_context(method)
 *         p = ctx.Process(target=f, args=(3,)); p.start(); p.join()
 *
 * (sleep shortened to 0.1 s). fork copies this process; spawn starts a fresh
 * image of this program, whose main() never runs (so "main ran" is printed
 * once); forkserver asks a small server process, started on first use, to
 * fork the child: its os.getppid() is the server, while the library's
 * mp_parent_process() is still this process, as in Python.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <multiproc.h>

static int f(const void *arg, size_t len)
{
    double seconds;
    if (len != sizeof(seconds))
        return 2;
    memcpy(&seconds, arg, sizeof(seconds));
    mp_process *me = mp_current_process();
    printf("  %s: 父进程pid: %d, 子进程pid: %d, mp_parent_process: %d\n",
           mp_start_method_name(mp_process_start_method(me)), (int)getppid(), (int)getpid(),
           (int)mp_process_pid(mp_parent_process()));
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(seconds * 1e9)};
    nanosleep(&ts, NULL);
    return 0;
}

static int run(mp_start_method method)
{
    double seconds = 0.1;
    mp_process *p = NULL;
    int rc = mp_process_create(&p, &(mp_process_opts){.target = f,
                                                      .args = &seconds,
                                                      .args_len = sizeof(seconds),
                                                      .start_method = method});
    if (rc == 0)
        rc = mp_process_start(p);
    if (rc == 0)
        rc = mp_process_join(p, 10);
    int code = -1;
    if (rc == 0)
        rc = mp_process_exitcode(p, &code);
    if (rc < 0 || code != 0)
        fprintf(stderr, "%s: %s (exit code %d)\n", mp_start_method_name(method), mp_strerror(rc),
                code);
    mp_process_destroy(p);
    return rc < 0 || code != 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: start methods spawn, fork, forkserver (get_context(method).Process) ===");
    printf("main ran in %d (主进程pid)\n", (int)getpid());
    int failed = 0;
    mp_start_method methods[] = {MP_START_FORK, MP_START_SPAWN, MP_START_FORKSERVER};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        printf("start method: %s\n", mp_start_method_name(methods[i]));
        failed |= run(methods[i]);
    }
    return failed;
}
