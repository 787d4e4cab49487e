/* 53_subprocess_pipeline — beyond the seeds: the shell's a | b | c,
 * without a shell, with every stage's status, a pipefail status, and one
 * timeout that kills every stage; then Python's run(check=True, timeout=)
 * with its two errors, CalledProcessError and TimeoutExpired.
 *
 *     printf 'pear\napple\nfig\n' | sort | head -n 2
 */
#include <stdio.h>
#include <stdlib.h>

#include <multiproc.h>

static int sorted_pipeline(void)
{
    const char *const *const stages[] = {
        (const char *const[]){"printf", "pear\\napple\\nfig\\n", NULL},
        (const char *const[]){"sort", NULL},
        (const char *const[]){"head", "-n", "2", NULL},
    };
    puts("$ printf 'pear\\napple\\nfig\\n' | sort | head -n 2");
    mp_pipeline *pl = NULL;
    int rc = mp_pipeline_create(&pl, stages, 3, &(mp_pipeline_opts){.out = MP_PIPE});
    char *out = NULL;
    if (rc == 0)
        rc = mp_pipeline_communicate(pl, NULL, 0, &out, NULL, NULL, NULL, 30);
    if (rc < 0) {
        fprintf(stderr, "pipeline: %s\n", mp_strerror(rc));
        mp_pipeline_destroy(pl);
        return 1;
    }
    fputs(out, stdout);
    for (size_t i = 0; i < mp_pipeline_size(pl); i++) {
        int code = -1;
        mp_pipeline_status(pl, i, &code);
        printf("stage %zu exit code %d\n", i, code);
    }
    int all = -1;
    mp_pipeline_returncode(pl, &all);
    printf("pipefail status %d\n", all);
    free(out);
    mp_pipeline_destroy(pl);
    return 0;
}

static void run_and_report(const char *cmd, double timeout)
{
    mp_run_result r;
    int rc = mp_run((const char *const[]){cmd, NULL},
                    &(mp_run_opts){.popen = {.shell = true, .process_group = true},
                                   .capture = true,
                                   .check = true,
                                   .timeout = timeout},
                    &r);
    printf("run('%s', check=True, timeout=%g): %s, returncode %d, stdout '%s'\n", cmd, timeout,
           mp_err_name(rc), r.returncode, r.out ? r.out : "");
    mp_run_result_free(&r);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== a pipeline: a | b | c ===");
    if (sorted_pipeline() != 0)
        return 1;
    puts("=== run(check=True, timeout=...) ===");
    run_and_report("printf ok", 10);
    run_and_report("printf failed; exit 3", 10);
    run_and_report("printf started; sleep 10", 0.3);
    return 0;
}
