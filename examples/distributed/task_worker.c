/* task_worker — the worker of the seeds' distributed example: it connects
 * to the server by URL and password only, takes tasks n and answers
 * "n * n = n*n", until the master stops it (or 30 s without tasks).
 * Start as many as you like, on any machine that reaches the server.
 *
 *     task_worker redis://:password@host:6379
 */
#include <multiproc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int square(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)ctx;
    int n;
    if (in_len != sizeof(n))
        return 1;
    memcpy(&n, in, sizeof(n));
    printf("run task %d * %d... (worker %d)\n", n, n, (int)getpid());
    fflush(stdout);
    usleep(200000); /* the seed sleeps a second per task */
    int len = snprintf(out, out_cap, "%d * %d = %lld", n, n, (long long)n * n);
    *out_len = len < 0 ? 0 : (size_t)len;
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
    /* The URL may hold a password: show only where it points. */
    const char *at = strrchr(url, '@');
    printf("Connect to server %s...\n", at ? at + 1 : url + strlen("redis://"));
    fflush(stdout);
    mp_manager *m;
    int rc = mp_task_register("square", square);
    if (rc == 0)
        rc = mp_manager_open(&m, url);
    if (rc < 0) {
        fprintf(stderr, "task_worker: %s\n", mp_strerror(rc));
        return 1;
    }
    rc = mp_worker_serve(m, "tasks", &(mp_worker_opts){.idle_timeout = 30});
    mp_manager_close(m);
    if (rc < 0)
        fprintf(stderr, "task_worker: %s\n", mp_strerror(rc));
    printf("worker exit.\n");
    return rc < 0;
}
