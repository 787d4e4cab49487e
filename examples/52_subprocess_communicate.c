/* 52_subprocess_communicate — seed 003, 4. 子进程:
 *
 *     p = subprocess.Popen(['nslookup'], stdin=subprocess.PIPE,
 *                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
 *     output, err = p.communicate(b'set q=mx\npython.org\nexit\n')
 *     print(output.decode('utf-8'))
 *     print('Exit Code: ', p.returncode)
 *
 * The seed types three commands into an interactive program. Offline, the
 * interactive program is the shell: it gets several lines on stdin, runs
 * them, and communicate reads back its stdout and stderr together (all
 * pipes are polled at once, so no size can deadlock).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <multiproc.h>

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: p = Popen(['nslookup'], stdin=PIPE, stdout=PIPE, stderr=PIPE) ===");
    const char *input = "q=mx\n"
                        "echo \"set q=$q\"\n"
                        "echo \"python.org mail exchanger = 50 mail.python.org.\"\n"
                        "echo 'a note on stderr' >&2\n"
                        "exit\n";
    printf("$ sh  (fed %d lines on stdin)\n", 5);
    mp_popen *p = NULL;
    int rc = mp_popen_create(&p, (const char *const[]){"sh", NULL},
                             &(mp_popen_opts){.in = MP_PIPE, .out = MP_PIPE, .err = MP_PIPE});
    if (rc < 0) {
        fprintf(stderr, "mp_popen_create: %s\n", mp_strerror(rc));
        return 1;
    }
    char *output = NULL, *err = NULL;
    size_t olen = 0, elen = 0;
    rc = mp_popen_communicate(p, input, strlen(input), &output, &olen, &err, &elen, 30);
    if (rc < 0) {
        fprintf(stderr, "mp_popen_communicate: %s\n", mp_strerror(rc));
        mp_popen_destroy(p);
        return 1;
    }
    fwrite(output, 1, olen, stdout);
    printf("stderr: %s", err);
    int code = -1;
    mp_popen_returncode(p, &code);
    printf("Exit Code:  %d\n", code);
    free(output);
    free(err);
    mp_popen_destroy(p);
    return code == 0 ? 0 : 1;
}
