/* Name resolution of the Redis backend against the call's deadline. Each
 * test isolates its own process (Criterion runs each in one): a private
 * mount namespace where /etc/resolv.conf names a local DNS server that
 * never answers (a UDP socket of the test's, bound on 127.0.0.x:53, with
 * the resolver told to wait 30 s five times), /etc/hosts knows
 * "redis-host.test" and /etc/nsswitch.conf asks files, then DNS. No query
 * leaves the machine. This needs root (unshare, mount, port 53): without
 * it the tests fail, saying so. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_test.h"
#include "redis_server.h"

/* TSan cannot start a thread in a child forked from a multi-threaded
 * process (Criterion's test processes have two threads), and resolving a
 * name starts one: under TSan the forked child's part is left out. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static mp_test_redis srv;
static int dns_fd = -1; /* the silent DNS server */

static void resolve_fini(void)
{
    mp_test_redis_stop(&srv, 0);
    if (dns_fd >= 0)
        close(dns_fd);
}

/* No fd check here: a resolution left behind at the deadline keeps its
 * socket to the silent server until the resolver gives up. */
TestSuite(redis_resolve, .fini = resolve_fini, .timeout = 10);

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* Puts path over target in this process's mount namespace only. */
static void bind_over(const char *path, const char *target)
{
    cr_assert_eq(mount(path, target, NULL, MS_BIND, NULL), 0, "bind-mounting %s over %s: %s", path,
                 target, strerror(errno));
}

/* A UDP socket on 127.0.0.x:53 (the first x from 9 that is free, since
 * tests run in parallel) that never answers; its x. */
static int silent_dns_server(void)
{
    dns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(dns_fd, 0);
    for (int x = 9; x < 250; x++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
        a.sin_addr.s_addr = htonl((in_addr_t)(0x7f000000 | (unsigned)x));
        if (bind(dns_fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return x;
        cr_assert_eq(errno, EADDRINUSE, "binding UDP 127.0.0.%d:53: %s", x, strerror(errno));
    }
    cr_assert_fail("no free UDP port 53 on 127.0.0.9 .. 127.0.0.249");
    return -1;
}

/* The isolation described at the top of the file. */
static void isolate(void)
{
    cr_assert_eq(geteuid(), 0,
                 "this test needs root (unshare(CLONE_NEWNS), mount, UDP port 53) to give the "
                 "resolver a local DNS server that never answers; run it as root (CI does)");
    cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
    cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0,
                 "making the mounts private: %s", strerror(errno));
    int x = silent_dns_server();
    char dir[] = "/tmp/mp_resolve_XXXXXX", path[3][64], text[128];
    cr_assert_not_null(mkdtemp(dir));
    const char *names[3] = {"resolv.conf", "hosts", "nsswitch.conf"};
    for (int i = 0; i < 3; i++)
        snprintf(path[i], sizeof(path[i]), "%s/%s", dir, names[i]);
    snprintf(text, sizeof(text), "nameserver 127.0.0.%d\noptions timeout:30 attempts:5\n", x);
    write_file(path[0], text);
    write_file(path[1], "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 redis-host.test\n");
    write_file(path[2], "hosts: files dns\n");
    bind_over(path[0], "/etc/resolv.conf");
    bind_over(path[1], "/etc/hosts");
    bind_over(path[2], "/etc/nsswitch.conf");
    for (int i = 0; i < 3; i++)
        unlink(path[i]); /* the mounts keep the files */
    rmdir(dir);
    /* The resolver now sees the silent server, and only it. */
    char seen[128] = "";
    FILE *f = fopen("/etc/resolv.conf", "r");
    cr_assert_not_null(f);
    size_t n = fread(seen, 1, sizeof(seen) - 1, f);
    fclose(f);
    seen[n] = '\0';
    cr_assert_str_eq(seen, text);
}

/* True when a query reached the silent server. */
static bool dns_asked(void)
{
    struct pollfd p = {.fd = dns_fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* A SIGALRM every 5 ms (restart: its handler with SA_RESTART), or none
 * (mode < 0). */
static void alarms_start(int mode)
{
    alarms = 0;
    if (mode < 0)
        return;
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = mode ? SA_RESTART : 0};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
    struct itimerval it = {.it_interval = {0, 5000}, .it_value = {0, 5000}};
    cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static int alarms_stop(void)
{
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_IGN); /* one may still be pending */
    return alarms;
}

/* A name the DNS server never answers: the open ends at its 0.5 s
 * deadline (the resolver alone would wait 30 s five times). */
static void silent_dns_times_out(int mode)
{
    isolate();
    alarms_start(mode);
    mp_manager *m = NULL;
    double t0 = mp_test_now();
    int rc = mp_manager_open(&m, "redis://never-resolves.test:6379?timeout=0.5");
    double took = mp_test_now() - t0;
    int n = alarms_stop();
    mp_assert_rc(rc, MP_ETIMEDOUT);
    cr_assert_null(m);
    cr_assert(dns_asked(), "the resolver never asked the DNS server");
    cr_assert_geq(took, 0.45, "the deadline is 0.5 s; gave up after %.3f s", took);
    cr_assert_lt(took, 2.0, "a 0.5 s deadline took %.3f s", took);
    if (mode >= 0)
        cr_assert_gt(n, 0, "no signal arrived during the resolution");
}

Test(redis_resolve, a_silent_dns_server_times_out_the_open)
{
    silent_dns_times_out(-1);
}

Test(redis_resolve, a_silent_dns_server_times_out_the_open_under_signals)
{
    silent_dns_times_out(0);
}

Test(redis_resolve, a_silent_dns_server_times_out_the_open_under_restarting_signals)
{
    silent_dns_times_out(1);
}

/* The threads of this process. */
static int threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    int n = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

/* Answers the queries waiting at the silent server: an A query with
 * 127.0.0.1, any other with no record. Returns how many it answered. */
static int answer_queries(void)
{
    int answered = 0;
    struct pollfd p = {.fd = dns_fd, .events = POLLIN};
    while (poll(&p, 1, 0) == 1) {
        unsigned char q[512], r[600];
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(dns_fd, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);
        cr_assert_gt(n, 12, "a DNS query of %zd bytes", n);
        size_t end = 12; /* the question: a name, then its type and class */
        while (end < (size_t)n && q[end] != 0)
            end += (size_t)q[end] + 1;
        end += 5;
        cr_assert_leq(end, (size_t)n, "a DNS query without a whole question");
        bool a_query = q[end - 4] == 0 && q[end - 3] == 1;
        memcpy(r, q, end);
        r[2] = (unsigned char)(0x80 | (q[2] & 0x79)); /* a response: QR, same opcode, RD */
        r[3] = 0x80;                                  /* RA, NOERROR */
        r[6] = r[8] = r[9] = r[10] = r[11] = 0;       /* no authority, no additional */
        r[7] = a_query;
        size_t len = end;
        if (a_query) {
            const unsigned char rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
            memcpy(r + len, rr, sizeof(rr));
            len += sizeof(rr);
        }
        cr_assert_eq(sendto(dns_fd, r, len, 0, (struct sockaddr *)&from, flen), (ssize_t)len);
        answered++;
    }
    return answered;
}

/* An answer that comes after the deadline: the call has gone with
 * MP_ETIMEDOUT, and the resolution's thread, alone, takes the answer,
 * frees what the call left (the addresses included) and ends. */
Test(redis_resolve, a_late_answer_is_freed_by_the_resolver)
{
    isolate();
    int before = threads_now();
    mp_manager *m = NULL;
    mp_assert_rc(mp_manager_open(&m, "redis://late-answer.test:6379?timeout=0.3"), MP_ETIMEDOUT);
    cr_assert_eq(threads_now(), before + 1, "the resolution's thread is not waiting for DNS");
    cr_assert_gt(answer_queries(), 0, "the resolver never asked the DNS server");
    double t0 = mp_test_now();
    while (threads_now() > before && mp_test_now() - t0 < 5.0) {
        answer_queries(); /* the resolver may ask once more (AAAA after A) */
        usleep(2000);
    }
    cr_assert_eq(threads_now(), before, "the resolution's thread did not end after the answer");
}

/* A name /etc/hosts knows connects, also from a forked child that
 * resolves it again right after its parent did (not under TSan, see
 * UNDER_TSAN); numeric hosts and
 * "localhost" never ask the DNS server. */
Test(redis_resolve, a_resolvable_name_connects)
{
    isolate();
    cr_assert(mp_test_redis_start(&srv, "s3cret") == 0, "cannot start redis-server: %s", srv.error);
    char url[160];
    snprintf(url, sizeof(url), "redis://:s3cret@redis-host.test:%d?timeout=2", srv.port);
    mp_manager *m = NULL;
    mp_dict *d = NULL;
    mp_assert_ok(mp_manager_open(&m, url));
    mp_assert_rc(mp_manager_dict(m, "d", &d), 1);
    mp_assert_ok(mp_dict_set_int64(d, "x", 7));
#ifndef UNDER_TSAN
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        mp_manager *c = NULL;
        int ok = mp_manager_open(&c, url) == 0;
        if (ok)
            mp_manager_close(c);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child could not connect by name");
#endif
    mp_dict_destroy(d);
    mp_manager_close(m);
    const char *hosts[] = {"127.0.0.1", "localhost", "LocalHost"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        snprintf(url, sizeof(url), "redis://:s3cret@%s:%d?timeout=2", hosts[i], srv.port);
        mp_assert_ok(mp_manager_open(&m, url));
        mp_manager_close(m);
    }
    cr_assert_not(dns_asked(), "a name in /etc/hosts or an address asked the DNS server");
}
