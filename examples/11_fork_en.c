/* 11_fork_en — seed 003, os.fork() (the English version):
 *
 *     print('Process (%s) start...' % os.getpid())
 *     pid = os.fork()
 *     if pid == 0:
 *         print('I am child process (%s) and my parent is %s' % (os.getpid(), os.getppid()))
 *     else:
 *         print('I (%s) just created a child process (%s).' % (os.getpid(), pid))
 *
 * fork() is libc. This is the seed as it is, plus the waitpid() that C needs
 * and Python's example forgets; 01_fork shows the same with mp_process.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: pid = os.fork() (Process start / I am child process) ===");
    printf("Process (%d) start...\n", (int)getpid());
    fflush(stdout); /* nothing buffered may be copied into the child */
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        printf("I am child process (%d) and my parent is %d\n", (int)getpid(), (int)getppid());
        fflush(stdout);
        _exit(0); /* not exit(): the parent's atexit handlers are not the child's */
    }
    printf("I (%d) just created a child process (%d).\n", (int)getpid(), (int)pid);
    int status;
    if (waitpid(pid, &status, 0) != pid) { /* reap it: no zombie */
        perror("waitpid");
        return 1;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
