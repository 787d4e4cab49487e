/* 12_run_proc_en — seed 003, Process (the English version):
 *
 *     def run_proc(name):
 *         print('Run child process %s (%s)...' % (name, os.getpid()))
 *
 *     print('Parent process %s.' % os.getpid())
 *     p = Process(target=run_proc, args=('test',))
 *     print('Child process will start.')
 *     p.start()
 *     p.join()
 *     print('Child process end.')
 *
 * Also prints what Python keeps in the Process object: its name and, after
 * join, its exit code.
 */
#include <stdio.h>
#include <unistd.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int run_proc(const void *arg, size_t len)
{
    const char *name = arg;
    if (len == 0 || name[len - 1] != '\0')
        return 2; /* the bytes must be a C string */
    printf("Run child process %s (%d)...\n", name, (int)getpid());
    return 0;
}

int main(void)
{
    mp_process *p = NULL;
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: Parent process; Process(target=run_proc, args=('test',)); join() ===");
    printf("Parent process %d.\n", (int)getpid());
    const char name[] = "test";
    int rc = mp_process_create(
        &p, &(mp_process_opts){.target = run_proc, .args = name, .args_len = sizeof(name)});
    if (rc < 0) {
        report("mp_process_create", rc);
        goto out;
    }
    printf("Child process will start.\n");
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
    printf("(%s exitcode: %d)\n", mp_process_name(p), code);
    if (code != 0)
        goto out;
    printf("Child process end.\n");
    status = 0;
out:
    mp_process_destroy(p);
    return status;
}
