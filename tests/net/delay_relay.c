/* delay_relay — latency between simulated hosts on kernels without the
 * netem qdisc (tests/net/netns.sh, net_relay).
 *
 *   delay_relay LISTEN_IP PORT TARGET_PORT DELAY_US
 *
 * Forwards every connection to 127.0.0.1:TARGET_PORT, holding each chunk
 * DELAY_US µs in each direction: a request and its answer take about
 * 2 x DELAY_US more. A chunk that arrives while the previous one is held
 * waits for it, so a chunk is held at least DELAY_US, at most twice that.
 * Runs until killed. Plain C, no library.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "delay_relay: %s: %s\n", what, strerror(errno));
    exit(1);
}

static long delay_us;

typedef struct pipe_dir {
    int from, to;
} pipe_dir;

static void *relay_dir(void *arg)
{
    pipe_dir d = *(pipe_dir *)arg;
    free(arg);
    char buf[65536];
    for (;;) {
        ssize_t r = read(d.from, buf, sizeof(buf));
        if (r <= 0)
            break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        long ns = until.tv_nsec + delay_us * 1000L;
        until.tv_sec += ns / 1000000000L;
        until.tv_nsec = ns % 1000000000L;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
            ;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(d.to, buf + off, (size_t)(r - off));
            if (w <= 0)
                goto out;
            off += w;
        }
    }
out:
    shutdown(d.to, SHUT_WR);
    shutdown(d.from, SHUT_RD);
    return NULL;
}

static void relay_start(int from, int to)
{
    pipe_dir *d = malloc(sizeof(*d));
    if (!d)
        die("malloc");
    *d = (pipe_dir){from, to};
    pthread_t t;
    if (pthread_create(&t, NULL, relay_dir, d) != 0)
        die("pthread_create");
    pthread_detach(t);
}

static int cmd_relay(const char *ip, int port, int target, long us)
{
    delay_us = us;
    /* Wake up on time: the default timer slack (50 µs) is a tenth of the
     * delay. Inherited by the threads. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
        fprintf(stderr, "delay_relay: bad address %s\n", ip);
        exit(2);
    }
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 64) < 0)
        die("bind/listen");
    printf("delay_relay: %s:%d -> 127.0.0.1:%d, %ld us each way\n", ip, port, target, us);
    fflush(stdout);
    for (;;) {
        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in t = {.sin_family = AF_INET, .sin_port = htons((uint16_t)target)};
        t.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(s, (struct sockaddr *)&t, sizeof(t)) < 0) {
            close(c);
            close(s);
            continue;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* The two directions share the sockets: they are never closed
         * (a test's relay lives as long as its network). */
        relay_start(c, s);
        relay_start(s, c);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: delay_relay LISTEN_IP PORT TARGET_PORT DELAY_US\n");
        return 2;
    }
    return cmd_relay(argv[1], atoi(argv[2]), atoi(argv[3]), atol(argv[4]));
}
