/* 01_fork — seed 000, os.fork():
 *
 *     print('Process (%s) 开始...' % os.getpid())
 *     pid = os.fork()
 *     if pid == 0:
 *         print('子进程: (%s) 它的父进程是: (%s.)' % (os.getpid(), os.getppid()))
 *     else:
 *         print('父进程 (%s) 产生了子进程 (%s).' % (os.getpid(), pid))
 *
 * fork(), getpid() and getppid() are libc: multiproc does not wrap them. The
 * first half is the seed with plain fork() and waitpid(); the second half is
 * the same idea with mp_process, which does the fork, the exit and the reaping
 * for you.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <multiproc.h>

/* Print which call failed and why: what every example does with an error. */
static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* The seed with nothing but libc. */
static bool plain_fork(void)
{
    printf("Process (%d) 开始...\n", (int)getpid());
    /* Flush before fork: otherwise text still in the stdio buffer would be
     * copied into the child and printed twice. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return false;
    }
    if (pid == 0) {
        printf("子进程: (%d) 它的父进程是: (%d.)\n", (int)getpid(), (int)getppid());
        fflush(stdout);
        /* _exit, not exit or return: the child is a copy of the parent, and
         * must not run the parent's atexit handlers or unwind its main(). */
        _exit(0);
    }
    printf("父进程 (%d) 产生了子进程 (%d).\n", (int)getpid(), (int)pid);
    /* Python's os.fork leaves the reaping to you, and so does C: without
     * waitpid the child would stay a zombie until this process exits. */
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        return false;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The child's side, as an mp_process target: the argument is unused. */
static int child(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    printf("子进程: (%d) 它的父进程是: (%d.)\n", (int)getpid(), (int)getppid());
    return 0; /* the exit code */
}

/* The same with mp_process: no fflush, no _exit, no waitpid to get right. */
static bool with_mp_process(void)
{
    mp_process *p = NULL;
    bool ok = false;
    printf("Process (%d) 开始...\n", (int)getpid());
    int rc = mp_process_create(&p, &(mp_process_opts){.target = child});
    if (rc < 0) {
        report("mp_process_create", rc);
        goto out;
    }
    rc = mp_process_start(p);
    if (rc < 0) {
        report("mp_process_start", rc);
        goto out;
    }
    printf("父进程 (%d) 产生了子进程 (%d).\n", (int)getpid(), (int)mp_process_pid(p));
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
    ok = code == 0;
out:
    mp_process_destroy(p);
    return ok;
}

int main(void)
{
    /* Line-buffered stdout: the lines of parent and child then interleave as
     * they happen, like on a terminal, even when stdout is a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: pid = os.fork(); os.getpid(); os.getppid() ===");
    if (!plain_fork()) {
        fprintf(stderr, "the forked child failed\n");
        return 1;
    }
    puts("=== seed: the same with Process(target=...); start(); join() ===");
    if (!with_mp_process()) {
        fprintf(stderr, "the mp_process child failed\n");
        return 1;
    }
    return 0;
}
