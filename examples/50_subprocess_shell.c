/* 50_subprocess_shell — seed 000, 子进程(subprocess):
 *
 *     r = subprocess.Popen('nslookup www.python.org', shell=True,
 *                          stdout=subprocess.PIPE)
 *     print(r.communicate()[0].decode("utf-8"))
 *     print('Exit code:', r.returncode)
 *
 * The seed asks a DNS server over the network. The demo must run offline,
 * so it looks up "localhost" instead: with nslookup when it is installed,
 * else with getent (which reads /etc/hosts), and it says which it used.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* True when the shell finds nslookup in PATH. */
static bool have_nslookup(void)
{
    int code = -1;
    int rc =
        mp_call((const char *const[]){"command -v nslookup", NULL},
                &(mp_popen_opts){.shell = true, .out = MP_DEVNULL, .err = MP_DEVNULL}, 10, &code);
    return rc == 0 && code == 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: r = subprocess.Popen('nslookup www.python.org', shell=True, stdout=PIPE) ===");
    bool ns = have_nslookup();
    const char *cmd = ns ? "nslookup localhost | head -n 1" : "getent hosts localhost";
    printf("nslookup is %s: running '%s'\n", ns ? "installed" : "not installed", cmd);

    mp_popen *r = NULL;
    int rc = mp_popen_create(&r, (const char *const[]){cmd, NULL},
                             &(mp_popen_opts){.shell = true, .out = MP_PIPE});
    if (rc < 0) {
        report("mp_popen_create", rc);
        return 1;
    }
    char *out = NULL;
    size_t len = 0;
    /* r.communicate()[0]: stdout, read to its end while the child runs. */
    rc = mp_popen_communicate(r, NULL, 0, &out, &len, NULL, NULL, 30);
    if (rc < 0) {
        report("mp_popen_communicate", rc);
        mp_popen_destroy(r);
        return 1;
    }
    fwrite(out, 1, len, stdout);
    int code = -1;
    mp_popen_returncode(r, &code);
    printf("Exit code: %d\n", code);
    free(out);
    mp_popen_destroy(r);
    return code == 0 ? 0 : 1;
}
