/* Stress of subprocesses: several threads spawn, communicate, kill and run
 * pipelines at once. Every output must be exact, and at the end no child
 * and no extra fd may remain. Runs under ThreadSanitizer. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "stress.h"

#define THREADS 4
#define ROUNDS  200

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    STRESS_CHECK(d != NULL, "opendir %s", path);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int child_count(void)
{
    /* Children of the threads that are gone are the main thread's now. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
    FILE *f = fopen(path, "r");
    STRESS_CHECK(f != NULL, "cannot read children");
    int n = 0, pid;
    while (fscanf(f, "%d", &pid) == 1)
        n++;
    fclose(f);
    return n;
}

static void round_run(int t, int i)
{
    char input[64];
    int len = snprintf(input, sizeof(input), "thread %d round %d\n", t, i);
    mp_run_result r;
    STRESS_OK(mp_run(
        (const char *const[]){"cat", NULL},
        &(mp_run_opts){.capture = true, .input = input, .input_len = (size_t)len, .timeout = 30},
        &r));
    STRESS_CHECK(r.returncode == 0 && r.out_len == (size_t)len &&
                     memcmp(r.out, input, (size_t)len) == 0,
                 "cat returned %d, %zu bytes", r.returncode, r.out_len);
    mp_run_result_free(&r);
}

static void round_kill(void)
{
    mp_popen *p;
    STRESS_OK(mp_popen_create(&p, (const char *const[]){"sleep", "30", NULL},
                              &(mp_popen_opts){.out = MP_PIPE}));
    STRESS_OK(mp_popen_terminate(p));
    int code = 0;
    STRESS_OK(mp_popen_wait(p, 30, &code));
    STRESS_CHECK(code == -SIGTERM, "code %d", code);
    mp_popen_destroy(p);
}

static void round_pipeline(void)
{
    const char *const *const stages[] = {(const char *const[]){"echo", "b a", NULL},
                                         (const char *const[]){"tr", " ", "\n", NULL},
                                         (const char *const[]){"sort", NULL}};
    mp_pipeline *pl;
    STRESS_OK(mp_pipeline_create(&pl, stages, 3, &(mp_pipeline_opts){.out = MP_PIPE}));
    char *out;
    STRESS_OK(mp_pipeline_communicate(pl, NULL, 0, &out, NULL, NULL, NULL, 30));
    STRESS_CHECK(strcmp(out, "a\nb\n") == 0, "pipeline printed '%s'", out);
    free(out);
    mp_pipeline_destroy(pl);
}

static void round_fail(void)
{
    mp_popen *p;
    mp_exec_error e;
    int rc = mp_popen_create(&p, (const char *const[]){"mp-no-such-program", NULL},
                             &(mp_popen_opts){.exec_error = &e, .out = MP_PIPE});
    STRESS_CHECK(rc == MP_ENOENT && e.step == MP_STEP_EXEC, "rc %s step %s", mp_err_name(rc),
                 mp_spawn_step_name(e.step));
}

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        switch ((i + t) % 4) {
        case 0:
            round_run(t, i);
            break;
        case 1:
            round_kill();
            break;
        case 2:
            round_pipeline();
            break;
        default:
            round_fail();
        }
    }
    return NULL;
}

int main(void)
{
    STRESS_DEADLINE(240);
    int fds = count_dir("/proc/self/fd");
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        STRESS_CHECK(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0, "thread");
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    STRESS_CHECK(count_dir("/proc/self/fd") == fds, "fd leak: %d before, %d after", fds,
                 count_dir("/proc/self/fd"));
    STRESS_CHECK(child_count() == 0, "children remain");
    printf("stress_popen: %d threads x %d rounds ok\n", THREADS, ROUNDS);
    return 0;
}
