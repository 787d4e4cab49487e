/* 51_subprocess_call — seed 003, 4. 子进程:
 *
 *     print('$ nslookup www.baidu.org')
 *     r = subprocess.call(['nslookup', 'www.baidu.org'])
 *     print('Exit code: ', r)
 *
 * Offline, the lookup is "getent hosts NAME" (it reads /etc/hosts). The
 * child writes straight to our stdout, like the seed's. Then what Python
 * reports as FileNotFoundError: mp_call says which step of starting the
 * child failed, with the errno and the path.
 */
#include <stdio.h>

#include <multiproc.h>

static int call_and_print(const char *const *argv)
{
    printf("$ %s %s %s\n", argv[0], argv[1], argv[2]);
    fflush(stdout); /* the child writes to the same stdout */
    int code = -1;
    int rc = mp_call(argv, NULL, 30, &code);
    if (rc < 0) {
        fprintf(stderr, "mp_call failed: %s (%s)\n", mp_strerror(rc), mp_err_name(rc));
        return -1;
    }
    printf("Exit code:  %d\n", code);
    return code;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: r = subprocess.call(['nslookup', 'www.baidu.org']) ===");
    if (call_and_print((const char *const[]){"getent", "hosts", "localhost", NULL}) != 0)
        return 1;
    /* getent's exit code 2: the name is not found. */
    if (call_and_print((const char *const[]){"getent", "hosts", "no-such-host.invalid", NULL}) != 2)
        return 1;

    puts("=== a program that does not exist: an error, not exit code 127 ===");
    mp_exec_error e;
    int code = -1;
    int rc = mp_call((const char *const[]){"nslookup-not-installed", "www.baidu.org", NULL},
                     &(mp_popen_opts){.exec_error = &e}, 30, &code);
    printf("mp_call: %s, step %s, path '%s'\n", mp_err_name(rc), mp_spawn_step_name(e.step),
           e.path);
    return rc == MP_ENOENT ? 0 : 1;
}
