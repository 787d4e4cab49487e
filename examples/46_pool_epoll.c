/* 46_pool_epoll — a pool driven from a plain epoll loop, the way a server
 * with its own event loop (or libuv, GLib) would use one:
 *
 *     loop = asyncio.get_event_loop()           # the Python idea
 *     futs = [loop.run_in_executor(pool, f, x) for x in jobs]
 *     for fut in asyncio.as_completed(futs):
 *         print(await fut)
 *
 * One epoll set watches a timerfd (every 100 ms it submits the next job to
 * the pool), stdin (a line "q" stops early; end of file is ignored) and the
 * descriptor of each submitted result (mp_async_fd). A readable result
 * descriptor means "ready, or the pool has work to do": mp_async_ready
 * does that work and says which; a ready result is printed, its descriptor
 * taken out of the set, and the result destroyed (which closes it). Results come in
 * the order they complete, so the expected output lists them unordered.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <multiproc.h>

#define NJOBS     6
#define TAG_TIMER UINT64_MAX
#define TAG_STDIN (UINT64_MAX - 1)

static const char *const words[NJOBS] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"};

/* in: a word; out: its length as an int64_t. Sleeps 0, 150 or 300 ms to
 * stand for work of different sizes; "epsilon" fails with code 7. */
static int measure(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                   void *ctx)
{
    (void)out_cap, (void)ctx;
    nanosleep(&(struct timespec){.tv_nsec = (long)(in_len % 3) * 150000000L}, NULL);
    if (in_len == strlen("epsilon") && memcmp(in, "epsilon", in_len) == 0)
        return 7;
    *(int64_t *)out = (int64_t)in_len;
    *out_len = sizeof(int64_t);
    return 0;
}

static int report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
    return 1;
}

static int watch(int ep, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : report("epoll_ctl", -1);
}

/* The timer ticked: submit the next job and watch its result. */
static int submit(mp_pool *pool, int ep, mp_async **as, int i)
{
    int rc = mp_pool_apply_async(pool, measure, NULL, words[i], strlen(words[i]), sizeof(int64_t),
                                 NULL, NULL, NULL, &as[i]);
    if (rc < 0)
        return report("mp_pool_apply_async", rc);
    int fd = mp_async_fd(as[i]);
    if (fd < 0)
        return report("mp_async_fd", fd);
    return watch(ep, fd, (uint64_t)i);
}

/* A result's descriptor is readable: print the result if it is ready. */
static int on_result(int ep, mp_async **as, int i, int *handled)
{
    if (as[i] == NULL || !mp_async_ready(as[i]))
        return 0; /* the pool's own work, done by mp_async_ready */
    int64_t len = 0;
    mp_task_error e;
    int rc = mp_async_get(as[i], &len, sizeof len, NULL, 0);
    if (rc == 0)
        printf("job %d: %-8s -> %lld letters\n", i, words[i], (long long)len);
    else if (mp_async_error(as[i], 0, &e) == 0)
        printf("job %d: %-8s -> failed (%s, task code %d)\n", i, words[i], mp_err_name(rc),
               e.task_code);
    /* Out of the set first: a worker forked since holds a copy of it. */
    epoll_ctl(ep, EPOLL_CTL_DEL, mp_async_fd(as[i]), NULL);
    mp_async_destroy(as[i]); /* closes its descriptor */
    as[i] = NULL;
    (*handled)++;
    return 0;
}

/* A line on stdin: "q" stops; at end of file stdin leaves the set. */
static bool on_stdin(int ep)
{
    char line[64];
    ssize_t n = read(STDIN_FILENO, line, sizeof line);
    if (n <= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
        return false;
    }
    return line[0] == 'q';
}

static int loop(mp_pool *pool, int ep, int tfd, mp_async **as)
{
    int submitted = 0, handled = 0;
    while (handled < NJOBS) {
        struct epoll_event ev[8];
        int n = epoll_wait(ep, ev, 8, 10000);
        if (n <= 0)
            return report("epoll_wait", n < 0 ? -1 : MP_ETIMEDOUT);
        for (int k = 0; k < n; k++) {
            uint64_t tag = ev[k].data.u64, ticks;
            int rc = 0;
            if (tag == TAG_TIMER && read(tfd, &ticks, sizeof ticks) > 0 && submitted < NJOBS)
                rc = submit(pool, ep, as, submitted++);
            else if (tag == TAG_STDIN && on_stdin(ep))
                return 0;
            else if (tag < NJOBS)
                rc = on_result(ep, as, (int)tag, &handled);
            if (rc != 0)
                return rc;
        }
    }
    printf("all %d results handled as they completed\n", handled);
    return 0;
}

int main(void)
{
    printf("=== an epoll loop: a timerfd submits jobs, results handled as they complete ===\n");
    fflush(stdout);
    mp_pool *pool = NULL;
    mp_async *as[NJOBS] = {NULL};
    int rc = mp_pool_create(&pool, &(mp_pool_opts){.processes = 3});
    if (rc < 0)
        return report("mp_pool_create", rc);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec every = {.it_interval = {0, 100000000}, .it_value = {0, 100000000}};
    int status = ep < 0 || tfd < 0 || timerfd_settime(tfd, 0, &every, NULL) < 0
                     ? report("epoll_create1/timerfd", -1)
                     : watch(ep, tfd, TAG_TIMER);
    /* stdin may be a file or /dev/null, which epoll refuses: then no stdin. */
    struct epoll_event in = {.events = EPOLLIN, .data.u64 = TAG_STDIN};
    if (status == 0)
        (void)epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &in);
    if (status == 0)
        status = loop(pool, ep, tfd, as);
    for (int i = 0; i < NJOBS; i++)
        mp_async_destroy(as[i]);
    if (tfd >= 0)
        close(tfd);
    if (ep >= 0)
        close(ep);
    mp_pool_close(pool);
    mp_pool_join(pool, MP_FOREVER);
    mp_pool_destroy(pool);
    return status;
}
