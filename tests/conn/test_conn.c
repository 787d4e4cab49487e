/* Tests of connections: mp_pipe and mp_conn_*.
 *
 * Children are plain fork() + _exit(): they report failure through their exit
 * status (a distinct code per check), never through Criterion asserts. */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn/conn_internal.h"
#include "mp_test.h"

TestSuite(conn, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

#define MIB          ((size_t)1 << 20)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

/* ---- helpers ------------------------------------------------------------ */

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 131u + seed + (i >> 12));
}

static bool pattern_ok(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 131u + seed + (i >> 12)))
            return false;
    return true;
}

static unsigned char *pattern_new(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    pattern(p, n, seed);
    return p;
}

static void pipe_pair(mp_conn **a, mp_conn **b, bool duplex)
{
    mp_assert_ok(mp_pipe(a, b, duplex));
}

static void destroy2(mp_conn *a, mp_conn *b)
{
    mp_conn_destroy(a);
    mp_conn_destroy(b);
}

static pid_t fork_ok(void)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    return pid;
}

static void join_ok(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: status %#x (exit code %d)", st,
              WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* Write raw bytes to the fd behind a connection, bypassing the framing. */
static void raw_write(mp_conn *c, const void *p, size_t n)
{
    cr_assert_eq(write(mp_conn_fileno(c), p, n), (ssize_t)n);
}

static void raw_header(unsigned char h[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        h[i] = (unsigned char)(v >> (8 * i));
}

/* In a child: send n pattern bytes, exit 0 on success. */
static int child_send_pattern(mp_conn *c, size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    if (!p)
        return 90;
    pattern(p, n, seed);
    int rc = mp_conn_send(c, p, n, MP_FOREVER);
    free(p);
    return rc == 0 ? 0 : 91;
}

static void expect_pattern_msg(mp_conn *c, size_t n, unsigned seed, double timeout)
{
    void *m = NULL;
    size_t len = 0;
    mp_assert_ok(mp_conn_recv(c, &m, &len, timeout));
    cr_assert_not_null(m);
    cr_assert_eq(len, n);
    cr_assert(pattern_ok(m, n, seed), "payload of %zu bytes differs", n);
    free(m);
}

static void check_elapsed(double t0, double at_least, const char *what)
{
    double dt = mp_test_now() - t0;
    cr_assert(dt >= at_least && dt < 5.0, "%s took %.3f s", what, dt);
}

/* ---- round trips -------------------------------------------------------- */

static void roundtrip_in_process(bool duplex)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, duplex);
    const size_t sizes[] = {0, 1, 64, 1000, 60000};
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        unsigned char *p = pattern_new(sizes[i], (unsigned)i);
        mp_assert_ok(mp_conn_send(b, p, sizes[i], 1));
        expect_pattern_msg(a, sizes[i], (unsigned)i, 1);
        free(p);
    }
    destroy2(a, b);
}

Test(conn, roundtrip_small_sizes_oneway)
{
    roundtrip_in_process(false);
}

Test(conn, roundtrip_small_sizes_duplex_both_directions)
{
    roundtrip_in_process(true);
    mp_conn *a, *b;
    pipe_pair(&a, &b, true);
    mp_assert_ok(mp_conn_send(a, "ping", 4, 1));
    char buf[8];
    size_t len;
    mp_assert_ok(mp_conn_recv_into(b, buf, sizeof buf, &len, 1));
    cr_assert(len == 4 && memcmp(buf, "ping", 4) == 0);
    destroy2(a, b);
}

Test(conn, zero_length_message_gives_non_null_buffer)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    mp_assert_ok(mp_conn_send(b, NULL, 0, 1));
    mp_assert_ok(mp_conn_send(b, "", 0, 1));
    void *m = NULL;
    size_t len = 99;
    mp_assert_ok(mp_conn_recv(a, &m, &len, 1));
    cr_assert_not_null(m);
    cr_assert_eq(len, 0);
    free(m);
    mp_assert_ok(mp_conn_recv_into(a, NULL, 0, &len, 1));
    cr_assert_eq(len, 0);
    destroy2(a, b);
}

/* One message of n bytes from a forked child, through either kind of pipe. */
static void roundtrip_child(size_t n, bool duplex)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, duplex);
    pid_t pid = fork_ok();
    if (pid == 0) {
        mp_conn_destroy(a);
        _exit(child_send_pattern(b, n, 7));
    }
    mp_conn_destroy(b);
    expect_pattern_msg(a, n, 7, 20);
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &(size_t){0}, 20), MP_EEOF);
    join_ok(pid);
    mp_conn_destroy(a);
}

Test(conn, roundtrip_1mib_from_child_oneway)
{
    roundtrip_child(MIB, false);
}

Test(conn, roundtrip_1mib_from_child_duplex)
{
    roundtrip_child(MIB, true);
}

Test(conn, roundtrip_64mib_from_child)
{
    roundtrip_child(64 * MIB, false);
    roundtrip_child(64 * MIB, true);
}

/* Sizes cross the read-ahead boundary; recv and recv_into alternate. */
Test(conn, many_messages_arrive_whole_and_in_order)
{
    enum { N = 20000 };
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    pid_t pid = fork_ok();
    if (pid == 0) {
        mp_conn_destroy(a);
        unsigned char buf[70000];
        for (unsigned i = 0; i < N; i++) {
            size_t n = i % 1000 == 999 ? 65536 + i % 7 : i % 300;
            pattern(buf, n, i);
            if (mp_conn_send(b, buf, n, 10) != 0)
                _exit(1);
        }
        _exit(0);
    }
    mp_conn_destroy(b);
    static unsigned char buf[70000];
    for (unsigned i = 0; i < N; i++) {
        size_t n = i % 1000 == 999 ? 65536 + i % 7 : i % 300, len = 0;
        if (i % 2) {
            mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 10));
            cr_assert(len == n && pattern_ok(buf, n, i), "message %u differs", i);
        } else {
            expect_pattern_msg(a, n, i, 10);
        }
    }
    join_ok(pid);
    mp_conn_destroy(a);
}

/* ---- direction, end of file, truncation, malformed frames -------------- */

Test(conn, oneway_ends_refuse_the_wrong_direction)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    cr_assert(mp_conn_readable(a) && !mp_conn_writable(a));
    cr_assert(!mp_conn_readable(b) && mp_conn_writable(b));
    size_t len;
    char buf[4];
    mp_assert_rc(mp_conn_send(a, "x", 1, 0), MP_EBADF);
    mp_assert_rc(mp_conn_recv(b, &(void *){NULL}, &len, 0), MP_EBADF);
    mp_assert_rc(mp_conn_recv_into(b, buf, sizeof buf, &len, 0), MP_EBADF);
    mp_assert_rc(mp_conn_poll(b, 0), MP_EBADF);
    cr_assert_not(mp__conn_has_buffered(b));
    destroy2(a, b);
    pipe_pair(&a, &b, true);
    cr_assert(mp_conn_readable(a) && mp_conn_writable(a));
    cr_assert(mp_conn_readable(b) && mp_conn_writable(b));
    destroy2(a, b);
}

/* The child exits without reading what we sent it: on a socket the kernel
 * then reports a reset rather than a plain end of file. Both are EOF. */
static void eof_when_child_exits(bool duplex)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, duplex);
    if (duplex)
        mp_assert_ok(mp_conn_send(a, "unread", 6, 1));
    pid_t pid = fork_ok();
    if (pid == 0) {
        mp_conn_destroy(a);
        if (mp_conn_send(b, "one", 3, 5) || mp_conn_send(b, "two", 3, 5))
            _exit(1);
        _exit(0);
    }
    mp_conn_destroy(b);
    join_ok(pid);
    char buf[8];
    size_t len;
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 5));
    cr_assert(len == 3 && memcmp(buf, "one", 3) == 0);
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 5));
    cr_assert(len == 3 && memcmp(buf, "two", 3) == 0);
    mp_assert_rc(mp_conn_recv_into(a, buf, sizeof buf, &len, 5), MP_EEOF);
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 5), MP_EEOF);
    cr_assert_eq(mp_conn_poll(a, 0), 1);
    cr_assert(mp__conn_has_buffered(a));
    mp_conn_destroy(a);
}

Test(conn, eof_after_the_last_message_when_child_exits_oneway)
{
    eof_when_child_exits(false);
}

Test(conn, eof_after_the_last_message_when_child_exits_duplex)
{
    eof_when_child_exits(true);
}

/* A child writes the first n raw bytes (header included) of a frame
 * announcing `announced` payload bytes, then dies. */
static void truncated_by_child(uint64_t announced, size_t n, bool duplex)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, duplex);
    pid_t pid = fork_ok();
    if (pid == 0) {
        mp_conn_destroy(a);
        unsigned char *p = calloc(1, n + 8);
        if (!p)
            _exit(2);
        raw_header(p, announced);
        ssize_t w = write(mp_conn_fileno(b), p, n);
        _exit(w == (ssize_t)n ? 0 : 1);
    }
    mp_conn_destroy(b);
    size_t len;
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 5), MP_ETRUNCATED);
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 5), MP_ETRUNCATED);
    cr_assert_eq(mp_conn_poll(a, 0), 1);
    join_ok(pid);
    mp_conn_destroy(a);
}

Test(conn, truncated_when_peer_dies_mid_header)
{
    truncated_by_child(100, 5, false);
}

Test(conn, truncated_when_peer_dies_mid_payload)
{
    truncated_by_child(100, 8 + 50, false);
    truncated_by_child(100, 8 + 50, true);
}

Test(conn, truncated_when_peer_dies_mid_large_payload)
{
    truncated_by_child(MIB, 8 + 200000, false);
    truncated_by_child(MIB, 8 + 200000, true);
}

static void expect_badmsg_forever(mp_conn *a)
{
    size_t len;
    char buf[16];
    int fd;
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 1), MP_EBADMSG);
    mp_assert_rc(mp_conn_recv_into(a, buf, sizeof buf, &len, 1), MP_EBADMSG);
    if (mp_conn_writable(a))
        mp_assert_rc(mp_conn_recv_fd(a, &fd, 1), MP_EBADMSG);
    cr_assert_eq(mp_conn_poll(a, 0), 1);
    cr_assert(mp__conn_has_buffered(a));
}

Test(conn, garbage_header_is_ebadmsg_and_stays_broken)
{
    const uint64_t bad[] = {UINT64_MAX, MP_CONN_DEFAULT_MAX_MESSAGE + 1, ((uint64_t)1 << 63) | 2,
                            ((uint64_t)1 << 63)};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        mp_conn *a, *b;
        pipe_pair(&a, &b, i % 2 == 1);
        unsigned char h[8];
        raw_header(h, bad[i]);
        raw_write(b, h, 8);
        mp_assert_ok(mp_conn_send(b, "fine", 4, 1)); /* too late: the stream is lost */
        expect_badmsg_forever(a);
        destroy2(a, b);
    }
}

Test(conn, message_above_max_is_ebadmsg_after_the_good_ones)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    mp_assert_rc(mp_conn_set_max_message(a, 0), MP_EINVAL);
    mp_assert_ok(mp_conn_set_max_message(a, 100));
    unsigned char buf[101] = {0};
    mp_assert_ok(mp_conn_send(b, buf, 100, 1));
    mp_assert_ok(mp_conn_send(b, buf, 101, 1));
    mp_assert_ok(mp_conn_send(b, buf, 1, 1));
    size_t len;
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 1));
    cr_assert_eq(len, 100);
    expect_badmsg_forever(a);
    destroy2(a, b);
    pipe_pair(&a, &b, false);
    mp_assert_ok(mp_conn_set_max_message(a, ULLONG_MAX)); /* clamped, accepted */
    destroy2(a, b);
}

/* ---- recv_into sizes, memory ------------------------------------------- */

Test(conn, recv_into_too_small_keeps_the_message)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    mp_assert_ok(mp__conn_set_readahead(a, 16)); /* 100 B is then a "large" frame */
    unsigned char *p = pattern_new(100, 3);
    mp_assert_ok(mp_conn_send(b, p, 100, 1));
    mp_assert_ok(mp_conn_send(b, p, 10, 1));
    unsigned char buf[100];
    size_t len = 0;
    mp_assert_rc(mp_conn_recv_into(a, buf, 99, &len, 1), MP_EMSGSIZE);
    cr_assert_eq(len, 100);
    mp_assert_rc(mp_conn_recv_into(a, NULL, 0, &len, 1), MP_EMSGSIZE);
    cr_assert_eq(len, 100);
    mp_assert_ok(mp_conn_recv_into(a, buf, 100, &len, 1));
    cr_assert(len == 100 && pattern_ok(buf, 100, 3));
    mp_assert_rc(mp_conn_recv_into(a, buf, 9, &len, 1), MP_EMSGSIZE);
    cr_assert_eq(len, 10);
    expect_pattern_msg(a, 10, 3, 1);
    free(p);
    destroy2(a, b);
}

/* RLIMIT_DATA makes malloc fail for real; the sanitizers' allocators cannot
 * live under it. */
#ifndef UNDER_SANITIZER
static long vm_data_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmData: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}
#endif

Test(conn, recv_out_of_memory_keeps_the_message)
{
#ifdef UNDER_SANITIZER
    cr_skip_test("RLIMIT_DATA does not mix with sanitizer allocators");
#else
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    pid_t pid = fork_ok();
    if (pid == 0) {
        mp_conn_destroy(a);
        if (mp_conn_send(b, "w", 1, 10) != 0)
            _exit(1);
        _exit(child_send_pattern(b, 8 * MIB, 5));
    }
    mp_conn_destroy(b);
    /* A first message makes the connection allocate its read-ahead now, so
     * that the only allocation under the limit is the 8 MiB message's. */
    char w;
    size_t one;
    mp_assert_ok(mp_conn_recv_into(a, &w, 1, &one, 10));
    cr_assert_eq(mp_conn_poll(a, 10), 1);
    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_DATA, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)vm_data_bytes() + MIB;
    cr_assert_eq(setrlimit(RLIMIT_DATA, &low), 0);
    void *m = NULL;
    size_t len = 0;
    int rc = mp_conn_recv(a, &m, &len, 10);
    setrlimit(RLIMIT_DATA, &old);
    mp_assert_rc(rc, MP_ENOMEM);
    expect_pattern_msg(a, 8 * MIB, 5, 10);
    join_ok(pid);
    mp_conn_destroy(a);
#endif
}

/* ---- timeouts ----------------------------------------------------------- */

Test(conn, recv_on_empty_pipe_times_out_after_the_timeout)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, true);
    size_t len;
    char buf[4];
    int fd;
    double t0 = mp_test_now();
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0.1), MP_ETIMEDOUT);
    check_elapsed(t0, 0.09, "recv(0.1)");
    t0 = mp_test_now();
    mp_assert_rc(mp_conn_recv_into(a, buf, sizeof buf, &len, 0.1), MP_ETIMEDOUT);
    check_elapsed(t0, 0.09, "recv_into(0.1)");
    t0 = mp_test_now();
    mp_assert_rc(mp_conn_recv_fd(a, &fd, 0.1), MP_ETIMEDOUT);
    check_elapsed(t0, 0.09, "recv_fd(0.1)");
    t0 = mp_test_now();
    cr_assert_eq(mp_conn_poll(a, 0.1), 0);
    check_elapsed(t0, 0.09, "poll(0.1)");
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0), MP_ETIMEDOUT);
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, NAN), MP_EINVAL);
    mp_assert_rc(mp_conn_send(a, "x", 1, NAN), MP_EINVAL);
    mp_assert_rc(mp_conn_poll(a, NAN), MP_EINVAL);
    destroy2(a, b);
}

Test(conn, recv_timing_out_mid_message_loses_nothing)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    unsigned char frame[8 + 64];
    raw_header(frame, 64);
    pattern(frame + 8, 64, 9);
    raw_write(b, frame, 5);
    size_t len;
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0.05), MP_ETIMEDOUT);
    raw_write(b, frame + 5, 30);
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0), MP_ETIMEDOUT);
    raw_write(b, frame + 35, sizeof frame - 35);
    expect_pattern_msg(a, 64, 9, 1);
    destroy2(a, b);
}

/* With a tiny read-ahead every frame takes the large-message path: the part
 * read before the timeout is kept inside the connection, whichever of recv
 * or recv_into stopped and whichever completes. */
static void large_frame_in_pieces(bool first_into, bool then_into)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    mp_assert_ok(mp__conn_set_readahead(a, 16));
    unsigned char frame[8 + 1000], buf[1000];
    raw_header(frame, 1000);
    pattern(frame + 8, 1000, 4);
    size_t len, cuts[] = {3, 20, 500, 900};
    raw_write(b, frame, cuts[0]);
    for (size_t i = 1; i < ARRAY_LEN(cuts); i++) {
        raw_write(b, frame + cuts[i - 1], cuts[i] - cuts[i - 1]);
        if (first_into)
            mp_assert_rc(mp_conn_recv_into(a, buf, sizeof buf, &len, 0.01), MP_ETIMEDOUT);
        else
            mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0.01), MP_ETIMEDOUT);
        cr_assert_eq(mp_conn_poll(a, 0), 0);
    }
    mp_assert_rc(mp_conn_recv_into(a, buf, 999, &len, 0), MP_EMSGSIZE);
    raw_write(b, frame + 900, sizeof frame - 900);
    if (then_into) {
        mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 1));
        cr_assert(len == 1000 && pattern_ok(buf, 1000, 4));
    } else {
        expect_pattern_msg(a, 1000, 4, 1);
    }
    destroy2(a, b);
}

Test(conn, large_frame_timed_out_then_completed)
{
    large_frame_in_pieces(false, false);
    large_frame_in_pieces(false, true);
    large_frame_in_pieces(true, false);
    large_frame_in_pieces(true, true);
}

/* The real thing: a 4 MiB message whose sender stalls half way. */
Test(conn, large_message_from_stalled_child_completes_after_timeout)
{
    mp_conn *a, *b;
    int go[2];
    pipe_pair(&a, &b, false);
    cr_assert_eq(pipe2(go, O_CLOEXEC), 0);
    pid_t pid = fork_ok();
    if (pid == 0) {
        mp_conn_destroy(a);
        close(go[1]);
        size_t n = 4 * MIB, half = 8 + n / 2;
        unsigned char *p = malloc(8 + n);
        char c;
        if (!p)
            _exit(1);
        raw_header(p, n);
        pattern(p + 8, n, 6);
        int fd = mp_conn_fileno(b);
        for (size_t off = 0; off < 8 + n;) {
            if (off == half && read(go[0], &c, 1) != 1)
                _exit(2);
            ssize_t w = write(fd, p + off, (off < half ? half : 8 + n) - off);
            if (w <= 0)
                _exit(3);
            off += (size_t)w;
        }
        _exit(0);
    }
    mp_conn_destroy(b);
    close(go[0]);
    unsigned char *buf = malloc(4 * MIB);
    size_t len;
    mp_assert_rc(mp_conn_recv_into(a, buf, 4 * MIB, &len, 0.3), MP_ETIMEDOUT);
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0.05), MP_ETIMEDOUT);
    cr_assert_eq(write(go[1], "g", 1), 1);
    mp_assert_ok(mp_conn_recv_into(a, buf, 4 * MIB, &len, 20));
    cr_assert(len == 4 * MIB && pattern_ok(buf, len, 6));
    free(buf);
    close(go[1]);
    join_ok(pid);
    mp_conn_destroy(a);
}

/* Sends 64-byte messages (pattern n) on c until one would block; returns
 * how many went out, each whole. */
static unsigned fill_with_small_messages(mp_conn *c)
{
    unsigned char msg[64];
    unsigned n = 0;
    for (;; n++) {
        pattern(msg, sizeof msg, n);
        int rc = mp_conn_send(c, msg, sizeof msg, 0);
        if (rc == MP_ETIMEDOUT)
            return n;
        mp_assert_ok(rc);
        cr_assert(n < 1000000, "the pipe never filled");
    }
}

/* Fill the pipe with small messages, then a send with a timeout must give
 * up after the timeout having written nothing: the reader finds exactly the
 * messages that were accepted, each whole. */
static void send_times_out_on_full_pipe(bool duplex)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, duplex);
    unsigned n = fill_with_small_messages(b);
    unsigned char msg[64]; /* the message the full pipe refused */
    pattern(msg, sizeof msg, n);
    double t0 = mp_test_now();
    mp_assert_rc(mp_conn_send(b, msg, sizeof msg, 0.1), MP_ETIMEDOUT);
    check_elapsed(t0, 0.09, "send(0.1) on a full pipe");
    unsigned char *big = pattern_new(MIB, 1);
    mp_assert_rc(mp_conn_send(b, big, MIB, 0), MP_ETIMEDOUT);
    free(big);
    for (unsigned i = 0; i < n; i++)
        expect_pattern_msg(a, sizeof msg, i, 1);
    size_t len;
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0), MP_ETIMEDOUT);
    destroy2(a, b);
}

Test(conn, send_times_out_before_the_first_byte_oneway)
{
    send_times_out_on_full_pipe(false);
}

Test(conn, send_times_out_before_the_first_byte_duplex)
{
    send_times_out_on_full_pipe(true);
}

/* ---- a send cut off by its deadline ------------------------------------- */

/* Nobody reads a, so a 1 MiB send fills the pipe (or the socket's buffer)
 * and must still return by its deadline. Part of the frame is out and cannot
 * be taken back: the end refuses every later send, while a duplex end still
 * receives. */
static void send_torn_by_its_deadline(bool duplex)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, duplex);
    unsigned char *big = pattern_new(MIB, 3);
    double t0 = mp_test_now();
    mp_assert_rc(mp_conn_send(b, big, MIB, 0.05), MP_ETIMEDOUT);
    check_elapsed(t0, 0.04, "send(0.05) of 1 MiB that nobody reads");
    mp_assert_rc(mp_conn_send(b, "x", 1, 0.05), MP_EHALFSENT);
    mp_assert_rc(mp_conn_send(b, NULL, 0, 0), MP_EHALFSENT);
    mp_assert_rc(mp_conn_send(b, big, MIB, MP_FOREVER), MP_EHALFSENT);
    if (duplex) {
        mp_assert_rc(mp_conn_send_fd(b, mp_conn_fileno(a), 0), MP_EHALFSENT);
        mp_assert_ok(mp_conn_send(a, "back", 4, 1));
        char got[8];
        size_t len;
        mp_assert_ok(mp_conn_recv_into(b, got, sizeof got, &len, 1));
        cr_assert(len == 4 && memcmp(got, "back", 4) == 0);
    }
    /* The reader has the start of the frame, never its end. */
    size_t len;
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0), MP_ETIMEDOUT);
    free(big);
    destroy2(a, b);
}

Test(conn, send_torn_by_its_deadline_oneway)
{
    send_torn_by_its_deadline(false);
}

Test(conn, send_torn_by_its_deadline_duplex)
{
    send_torn_by_its_deadline(true);
}

/* The same on kernels whose pipes lack RWF_NOWAIT (poll, then write at most
 * a page). */
Test(conn, send_torn_by_its_deadline_without_rwf_nowait)
{
    setenv("MP_DISABLE_RWF_NOWAIT", "1", 1);
    send_torn_by_its_deadline(false);
}

typedef struct big_reader {
    mp_conn *c;
    size_t n;
    unsigned seed;
    bool ok;
} big_reader;

/* Receive one pattern message of r->n bytes, then "end". */
static void *big_reader_main(void *arg)
{
    big_reader *r = arg;
    void *m = NULL;
    size_t len = 0;
    r->ok = mp_conn_recv(r->c, &m, &len, 10) == 0 && len == r->n && pattern_ok(m, len, r->seed);
    free(m);
    char end[4];
    r->ok = r->ok && mp_conn_recv_into(r->c, end, sizeof end, &len, 10) == 0 && len == 3 &&
            memcmp(end, "end", 3) == 0;
    return NULL;
}

/* The peer's buffer holds only whole messages: a send that times out has
 * written nothing and changed nothing. Once the reader drains it, the end
 * sends on and every frame arrives whole. */
static void send_refused_whole_then_resumed(bool duplex)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, duplex);
    unsigned n = fill_with_small_messages(b);
    unsigned char msg[64]; /* the message the full pipe refused */
    pattern(msg, sizeof msg, n);
    unsigned char *big = pattern_new(MIB, 4);
    mp_assert_rc(mp_conn_send(b, big, MIB, 0.05), MP_ETIMEDOUT);
    mp_assert_rc(mp_conn_send(b, msg, sizeof msg, 0.01), MP_ETIMEDOUT);
    for (unsigned i = 0; i < n; i++)
        expect_pattern_msg(a, sizeof msg, i, 1);
    big_reader r = {.c = a, .n = MIB, .seed = 4};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, big_reader_main, &r), 0);
    int rc_big = mp_conn_send(b, big, MIB, 10);
    int rc_end = mp_conn_send(b, "end", 3, 10);
    pthread_join(t, NULL);
    mp_assert_ok(rc_big);
    mp_assert_ok(rc_end);
    cr_assert(r.ok, "the reader did not get the 1 MiB message and \"end\" intact");
    free(big);
    destroy2(a, b);
}

Test(conn, send_refused_whole_keeps_the_end_usable_oneway)
{
    send_refused_whole_then_resumed(false);
}

Test(conn, send_refused_whole_keeps_the_end_usable_duplex)
{
    send_refused_whole_then_resumed(true);
}

/* ---- signals ------------------------------------------------------------ */

static void noop_handler(int sig)
{
    (void)sig;
}

typedef struct pester {
    pthread_t target, thread;
    atomic_bool stop;
} pester;

static void *pester_main(void *arg)
{
    pester *p = arg;
    while (!atomic_load(&p->stop)) {
        pthread_kill(p->target, SIGUSR1);
        usleep(5000);
    }
    return NULL;
}

/* A no-op handler without SA_RESTART, and a thread signalling us every 5 ms:
 * every blocking call sees EINTR over and over. */
static void pester_start(pester *p, struct sigaction *old)
{
    struct sigaction sa = {.sa_handler = noop_handler};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, old), 0);
    p->target = pthread_self();
    atomic_init(&p->stop, false);
    cr_assert_eq(pthread_create(&p->thread, NULL, pester_main, p), 0);
}

static void pester_stop(pester *p, const struct sigaction *old)
{
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    sigaction(SIGUSR1, old, NULL);
}

Test(conn, signals_neither_cut_nor_stretch_waits)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    pester p;
    struct sigaction old;
    pester_start(&p, &old);
    size_t len;
    double t0 = mp_test_now();
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0.3), MP_ETIMEDOUT);
    check_elapsed(t0, 0.29, "recv(0.3) under signals");
    t0 = mp_test_now();
    cr_assert_eq(mp_conn_poll(a, 0.3), 0);
    check_elapsed(t0, 0.29, "poll(0.3) under signals");
    pid_t pid = fork_ok();
    if (pid == 0) {
        mp_conn_destroy(a);
        usleep(300000);
        _exit(child_send_pattern(b, 2 * MIB, 8));
    }
    expect_pattern_msg(a, 2 * MIB, 8, MP_FOREVER);
    pester_stop(&p, &old);
    join_ok(pid);
    destroy2(a, b);
}

Test(conn, signals_do_not_cut_a_blocked_send)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    while (mp_conn_send(b, "x", 1, 0) == 0)
        ;
    pester p;
    struct sigaction old;
    pester_start(&p, &old);
    double t0 = mp_test_now();
    mp_assert_rc(mp_conn_send(b, "x", 1, 0.3), MP_ETIMEDOUT);
    check_elapsed(t0, 0.29, "send(0.3) under signals");
    pester_stop(&p, &old);
    destroy2(a, b);
}

/* SIGALRM every millisecond (setitimer), with a no-op handler without
 * SA_RESTART: a write blocked mid-frame would be cut and restarted forever. */
static void alarm_every_ms_start(struct sigaction *old)
{
    struct sigaction sa = {.sa_handler = noop_handler};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGALRM, &sa, old), 0);
    struct itimerval it = {.it_interval = {0, 1000}, .it_value = {0, 1000}};
    cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void alarm_every_ms_stop(const struct sigaction *old)
{
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, old, NULL);
}

static void torn_send_under_signals(bool duplex)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, duplex);
    unsigned char *big = pattern_new(MIB, 5);
    struct sigaction old;
    alarm_every_ms_start(&old);
    double t0 = mp_test_now();
    int rc = mp_conn_send(b, big, MIB, 0.2);
    double dt = mp_test_now() - t0;
    alarm_every_ms_stop(&old);
    mp_assert_rc(rc, MP_ETIMEDOUT);
    cr_assert(dt >= 0.19 && dt < 5.0, "send(0.2) under SIGALRM every ms took %.3f s", dt);
    mp_assert_rc(mp_conn_send(b, "x", 1, 0), MP_EHALFSENT);
    free(big);
    destroy2(a, b);
}

Test(conn, signals_every_ms_do_not_stretch_a_started_send_oneway)
{
    torn_send_under_signals(false);
}

Test(conn, signals_every_ms_do_not_stretch_a_started_send_duplex)
{
    torn_send_under_signals(true);
}

static bool sigpipe_pending(void)
{
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, SIGPIPE);
}

static bool sigpipe_blocked(void)
{
    sigset_t s;
    pthread_sigmask(SIG_BLOCK, NULL, &s);
    return sigismember(&s, SIGPIPE);
}

/* Default SIGPIPE disposition: without care the first send kills us. */
static void epipe_and_survive(void)
{
    signal(SIGPIPE, SIG_DFL);
    for (int duplex = 0; duplex < 2; duplex++) {
        mp_conn *a, *b;
        pipe_pair(&a, &b, duplex);
        mp_conn_destroy(a);
        mp_assert_rc(mp_conn_send(b, "x", 1, MP_FOREVER), MP_EPIPE);
        unsigned char *big = pattern_new(MIB, 0);
        mp_assert_rc(mp_conn_send(b, big, MIB, 1), MP_EPIPE);
        free(big);
        cr_assert_not(sigpipe_pending());
        cr_assert_not(sigpipe_blocked());
        mp_conn_destroy(b);
    }
}

Test(conn, send_after_peer_closed_is_epipe_and_we_survive)
{
    epipe_and_survive();
}

/* The same on kernels without RWF_NOSIGNAL (the signal-mask path). */
Test(conn, send_after_peer_closed_is_epipe_and_we_survive_sigmask)
{
    setenv("MP_DISABLE_RWF_NOSIGNAL", "1", 1);
    epipe_and_survive();
}

/* A caller that blocks SIGPIPE itself keeps its mask; the library leaves no
 * SIGPIPE of its own pending, and leaves the caller's own alone. */
static void epipe_with_blocked_sigpipe(void)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    mp_conn_destroy(a);
    mp_assert_rc(mp_conn_send(b, "x", 1, 1), MP_EPIPE);
    cr_assert(sigpipe_blocked());
    cr_assert_not(sigpipe_pending());
    raise(SIGPIPE); /* the caller's own */
    mp_assert_rc(mp_conn_send(b, "x", 1, 1), MP_EPIPE);
    cr_assert(sigpipe_pending());
    cr_assert_eq(sigtimedwait(&set, NULL, &(struct timespec){0, 0}), SIGPIPE);
    cr_assert_not(sigpipe_pending());
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    mp_conn_destroy(b);
}

Test(conn, epipe_leaves_a_callers_blocked_sigpipe_alone)
{
    epipe_with_blocked_sigpipe();
}

Test(conn, epipe_leaves_a_callers_blocked_sigpipe_alone_sigmask)
{
    setenv("MP_DISABLE_RWF_NOSIGNAL", "1", 1);
    epipe_with_blocked_sigpipe();
}

Test(conn, epipe_when_the_reading_child_exits)
{
    signal(SIGPIPE, SIG_DFL);
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    pid_t pid = fork_ok();
    if (pid == 0)
        _exit(0); /* holds a copy of a until it exits */
    mp_conn_destroy(a);
    join_ok(pid);
    mp_assert_rc(mp_conn_send(b, "x", 1, 5), MP_EPIPE);
    mp_conn_destroy(b);
}

/* ---- file descriptors --------------------------------------------------- */

static bool is_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl >= 0 && (fl & FD_CLOEXEC);
}

/* The parent passes the write end of a pipe; the child writes through it. */
Test(conn, passed_fd_works_in_the_other_process)
{
    mp_conn *a, *b;
    int p[2];
    pipe_pair(&a, &b, true);
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork_ok();
    if (pid == 0) {
        mp_conn_destroy(a);
        close(p[0]);
        close(p[1]);
        int fd = -1;
        if (mp_conn_recv_fd(b, &fd, 10) != 0)
            _exit(1);
        if (!is_cloexec(fd))
            _exit(2);
        _exit(write(fd, "hello", 5) == 5 ? 0 : 3);
    }
    mp_conn_destroy(b);
    mp_assert_ok(mp_conn_send_fd(a, p[1], 5));
    close(p[1]); /* the kernel duplicated it; ours is no longer needed */
    join_ok(pid);
    char buf[8];
    cr_assert_eq(read(p[0], buf, sizeof buf), 5);
    cr_assert(memcmp(buf, "hello", 5) == 0);
    cr_assert_eq(read(p[0], buf, sizeof buf), 0); /* no copy left open anywhere */
    close(p[0]);
    mp_conn_destroy(a);
}

Test(conn, fds_and_messages_keep_their_order)
{
    mp_conn *a, *b;
    int p[2], fd = -1;
    pipe_pair(&a, &b, true);
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    mp_assert_ok(mp_conn_send(b, "x", 1, 1));
    mp_assert_ok(mp_conn_send_fd(b, p[1], 1));
    mp_assert_ok(mp_conn_send(b, "y", 1, 1));
    close(p[1]);
    char buf[4];
    size_t len;
    mp_assert_rc(mp_conn_recv_fd(a, &fd, 1), MP_EPROTO);
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 1));
    cr_assert(len == 1 && buf[0] == 'x');
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 1), MP_EPROTO);
    mp_assert_rc(mp_conn_recv_into(a, buf, sizeof buf, &len, 1), MP_EPROTO);
    cr_assert_eq(mp_conn_poll(a, 0), 1);
    mp_assert_ok(mp_conn_recv_fd(a, &fd, 1));
    cr_assert(is_cloexec(fd));
    mp_assert_rc(mp_conn_recv_fd(a, &fd, 1), MP_EPROTO);
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 1));
    cr_assert(len == 1 && buf[0] == 'y');
    cr_assert_eq(write(fd, "z", 1), 1);
    cr_assert_eq(read(p[0], buf, 1), 1);
    cr_assert_eq(buf[0], 'z');
    close(fd);
    close(p[0]);
    destroy2(a, b);
}

/* Descriptors received but never claimed belong to the connection, which
 * closes them; the suite's fd count checks it. */
Test(conn, unclaimed_fds_are_closed_with_the_connection)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, true);
    int before = mp_test_fd_count();
    mp_assert_ok(mp_conn_send(b, "data", 4, 1));
    for (int i = 0; i < 3; i++)
        mp_assert_ok(mp_conn_send_fd(b, 1, 1));
    size_t len;
    char buf[8];
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 1));
    cr_assert_eq(mp_conn_poll(a, 1), 1);
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 1), MP_EPROTO); /* reads ahead */
    cr_assert_gt(mp_test_fd_count(), before, "no descriptor was received ahead");
    destroy2(a, b);
}

/* A peer that is not this library attaches a descriptor to a data frame:
 * the data arrives, the stray descriptor is closed, and a real descriptor
 * frame after it still gets its own. */
Test(conn, stray_fd_on_a_data_frame_is_dropped)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, true);
    int before = mp_test_fd_count();
    unsigned char frame[8 + 3];
    raw_header(frame, 3);
    memcpy(frame + 8, "abc", 3);
    int stray = 0;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = frame, .iov_len = sizeof frame};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &stray, sizeof stray);
    cr_assert_eq(sendmsg(mp_conn_fileno(b), &m, 0), (ssize_t)sizeof frame);
    mp_assert_ok(mp_conn_send_fd(b, 2, 1));
    char buf[4];
    size_t len;
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 1));
    cr_assert(len == 3 && memcmp(buf, "abc", 3) == 0);
    int fd = -1;
    mp_assert_ok(mp_conn_recv_fd(a, &fd, 1));
    cr_assert_eq(mp_test_fd_count(), before + 1, "the stray fd was kept");
    close(fd);
    destroy2(a, b);
}

Test(conn, fd_frame_without_its_fd_is_ebadmsg)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, true);
    unsigned char frame[9] = {0};
    raw_header(frame, ((uint64_t)1 << 63) | 1);
    raw_write(b, frame, sizeof frame); /* plain write: no SCM_RIGHTS */
    int fd = -1;
    mp_assert_rc(mp_conn_recv_fd(a, &fd, 1), MP_EBADMSG);
    cr_assert_eq(fd, -1);
    expect_badmsg_forever(a);
    destroy2(a, b);
}

Test(conn, fd_passing_needs_a_duplex_connection)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    int fd;
    mp_assert_rc(mp_conn_send_fd(b, 0, 0), MP_ENOTSOCK);
    mp_assert_rc(mp_conn_recv_fd(a, &fd, 0), MP_ENOTSOCK);
    destroy2(a, b);
    pipe_pair(&a, &b, true);
    mp_assert_rc(mp_conn_send_fd(b, -1, 0), MP_EBADF);
    mp_assert_rc(mp_conn_send_fd(b, 1000000, 0), MP_EBADF);
    mp_assert_rc(mp_conn_recv_fd(a, NULL, 0), MP_EINVAL);
    destroy2(a, b);
}

/* ---- poll --------------------------------------------------------------- */

Test(conn, poll_reports_messages_buffered_or_pending)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, false);
    cr_assert_eq(mp_conn_poll(a, 0), 0);
    cr_assert_not(mp__conn_has_buffered(a));
    /* A reader reads up to the size of the last frame it received: after a
     * 16-byte message, two 1-byte messages come in with one read. */
    char big[16] = {0};
    size_t len;
    mp_assert_ok(mp_conn_send(b, big, sizeof big, 1));
    mp_assert_ok(mp_conn_recv_into(a, big, sizeof big, &len, 0));
    mp_assert_ok(mp_conn_send(b, "1", 1, 1));
    mp_assert_ok(mp_conn_send(b, "2", 1, 1));
    cr_assert_eq(mp_conn_poll(a, 0), 1);
    cr_assert_not(mp__conn_has_buffered(a)); /* still in the kernel */
    char buf[4];
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 0));
    /* The second message came in with the first read: the fd is empty but
     * the connection is not. */
    cr_assert(mp__conn_has_buffered(a));
    cr_assert_eq(mp_conn_poll(a, 0), 1);
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 0));
    cr_assert_eq(mp_conn_poll(a, 0), 0);
    unsigned char frame[8 + 4];
    raw_header(frame, 4);
    raw_write(b, frame, 10);
    cr_assert_eq(mp_conn_poll(a, 0), 1); /* readable fd, like Python */
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0), MP_ETIMEDOUT);
    cr_assert_eq(mp_conn_poll(a, 0), 0); /* half a frame, buffered: recv would block */
    cr_assert_not(mp__conn_has_buffered(a));
    raw_write(b, frame + 10, 2);
    cr_assert_eq(mp_conn_poll(a, 0.5), 1);
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 0));
    mp_conn_destroy(b);
    cr_assert_eq(mp_conn_poll(a, 5), 1); /* end of file */
    mp_conn_destroy(a);
}

Test(conn, poll_wakes_when_a_child_sends)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, true);
    pid_t pid = fork_ok();
    if (pid == 0) {
        mp_conn_destroy(a);
        usleep(100000);
        _exit(mp_conn_send(b, "late", 4, 5) == 0 ? 0 : 1);
    }
    double t0 = mp_test_now();
    cr_assert_eq(mp_conn_poll(a, 10), 1);
    check_elapsed(t0, 0.05, "poll until the child sends");
    join_ok(pid);
    destroy2(a, b);
}

/* ---- closing and arguments --------------------------------------------- */

Test(conn, use_after_close_is_eclosed)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, true);
    mp_assert_ok(mp_conn_send(b, "x", 1, 1));
    mp_assert_ok(mp_conn_close(a));
    mp_assert_ok(mp_conn_close(a));
    size_t len;
    char buf[4];
    int fd;
    mp_assert_rc(mp_conn_send(a, "x", 1, 0), MP_ECLOSED);
    mp_assert_rc(mp_conn_recv(a, &(void *){NULL}, &len, 0), MP_ECLOSED);
    mp_assert_rc(mp_conn_recv_into(a, buf, sizeof buf, &len, 0), MP_ECLOSED);
    mp_assert_rc(mp_conn_send_fd(a, 0, 0), MP_ECLOSED);
    mp_assert_rc(mp_conn_recv_fd(a, &fd, 0), MP_ECLOSED);
    mp_assert_rc(mp_conn_poll(a, 0), MP_ECLOSED);
    mp_assert_rc(mp_conn_fileno(a), MP_ECLOSED);
    mp_assert_rc(mp_conn_set_max_message(a, 10), MP_ECLOSED);
    cr_assert_not(mp__conn_has_buffered(a));
    cr_assert_eq(mp__conn_fd(a), -1);
    mp_assert_rc(mp_conn_send(b, "x", 1, 1), MP_EPIPE);
    destroy2(a, b);
}

Test(conn, null_arguments_are_einval)
{
    mp_conn *a, *b;
    size_t len;
    void *m;
    char buf[4];
    int fd;
    mp_assert_rc(mp_pipe(NULL, &b, true), MP_EINVAL);
    mp_assert_rc(mp_pipe(&a, NULL, false), MP_EINVAL);
    mp_assert_rc(mp_conn_open_fd(NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_conn_send(NULL, "x", 1, 0), MP_EINVAL);
    mp_assert_rc(mp_conn_recv(NULL, &m, &len, 0), MP_EINVAL);
    mp_assert_rc(mp_conn_recv_into(NULL, buf, 1, &len, 0), MP_EINVAL);
    mp_assert_rc(mp_conn_send_fd(NULL, 0, 0), MP_EINVAL);
    mp_assert_rc(mp_conn_recv_fd(NULL, &fd, 0), MP_EINVAL);
    mp_assert_rc(mp_conn_poll(NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_conn_set_max_message(NULL, 1), MP_EINVAL);
    mp_assert_rc(mp_conn_fileno(NULL), MP_EINVAL);
    mp_assert_rc(mp_conn_close(NULL), MP_EINVAL);
    cr_assert(!mp_conn_readable(NULL) && !mp_conn_writable(NULL));
    cr_assert(!mp__conn_has_buffered(NULL) && mp__conn_fd(NULL) == -1);
    mp_conn_destroy(NULL);
    pipe_pair(&a, &b, true);
    mp_assert_rc(mp_conn_send(b, NULL, 1, 0), MP_EINVAL);
    mp_assert_ok(mp_conn_send(b, NULL, 0, 0));
    mp_assert_rc(mp_conn_recv(a, NULL, &len, 0), MP_EINVAL);
    mp_assert_rc(mp_conn_recv(a, &m, NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_conn_recv_into(a, NULL, 1, &len, 0), MP_EINVAL);
    mp_assert_rc(mp_conn_recv_into(a, buf, 1, NULL, 0), MP_EINVAL);
    mp_assert_rc(mp__conn_set_readahead(a, 8), MP_EINVAL);
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 0)); /* still there */
    cr_assert_eq(len, 0);
    mp_assert_rc(mp__conn_set_readahead(a, 4096), MP_EBUSY);
    destroy2(a, b);
}

Test(conn, every_fd_is_close_on_exec)
{
    for (int duplex = 0; duplex < 2; duplex++) {
        mp_conn *a, *b;
        pipe_pair(&a, &b, duplex);
        cr_assert(is_cloexec(mp_conn_fileno(a)) && is_cloexec(mp_conn_fileno(b)));
        cr_assert_eq(mp__conn_fd(a), mp_conn_fileno(a));
        destroy2(a, b);
    }
}

Test(conn, open_fd_wraps_existing_fds)
{
    int p[2];
    cr_assert_eq(pipe(p), 0); /* deliberately without O_CLOEXEC */
    mp_conn *a, *b;
    mp_assert_ok(mp_conn_open_fd(&a, p[0]));
    mp_assert_ok(mp_conn_open_fd(&b, p[1]));
    cr_assert(is_cloexec(p[0]) && is_cloexec(p[1]));
    cr_assert(mp_conn_readable(a) && !mp_conn_writable(a));
    cr_assert(!mp_conn_readable(b) && mp_conn_writable(b));
    mp_assert_ok(mp_conn_send(b, "wrapped", 7, 1));
    char buf[8];
    size_t len;
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof buf, &len, 1));
    cr_assert(len == 7 && memcmp(buf, "wrapped", 7) == 0);
    mp_assert_rc(mp_conn_send_fd(b, 0, 0), MP_ENOTSOCK);
    destroy2(a, b);
    int s[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    mp_assert_ok(mp_conn_open_fd(&a, s[0]));
    mp_assert_ok(mp_conn_open_fd(&b, s[1]));
    mp_assert_ok(mp_conn_send_fd(b, 0, 1));
    int fd;
    mp_assert_ok(mp_conn_recv_fd(a, &fd, 1));
    close(fd);
    destroy2(a, b);
}

Test(conn, open_fd_rejects_bad_fds_and_leaves_them_alone)
{
    mp_conn *c = NULL;
    mp_assert_rc(mp_conn_open_fd(&c, -1), MP_EBADF);
    mp_assert_rc(mp_conn_open_fd(&c, 1000000), MP_EBADF);
    int s[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, s), 0);
    mp_assert_rc(mp_conn_open_fd(&c, s[0]), MP_EINVAL);
    cr_assert_null(c);
    cr_assert_not(is_cloexec(s[0]), "a failed open_fd changed the fd");
    close(s[0]);
    close(s[1]);
}

/* ---- threads ------------------------------------------------------------ */

enum { THREAD_MSGS = 20000 };

static void *sender_main(void *arg)
{
    mp_conn *c = arg;
    unsigned char buf[100];
    for (unsigned i = 0; i < THREAD_MSGS; i++) {
        pattern(buf, i % 100, i);
        if (mp_conn_send(c, buf, i % 100, 10) != 0)
            return (void *)1;
    }
    return NULL;
}

static void *receiver_main(void *arg)
{
    mp_conn *c = arg;
    unsigned char buf[100];
    for (unsigned i = 0; i < THREAD_MSGS; i++) {
        size_t len;
        if (mp_conn_recv_into(c, buf, sizeof buf, &len, 10) != 0 || len != i % 100 ||
            !pattern_ok(buf, len, i))
            return (void *)1;
    }
    return NULL;
}

/* On both ends at once, one thread sends while another receives. */
Test(conn, one_thread_sends_while_another_receives)
{
    mp_conn *a, *b;
    pipe_pair(&a, &b, true);
    pthread_t ts, tr, te;
    cr_assert_eq(pthread_create(&ts, NULL, sender_main, a), 0);
    cr_assert_eq(pthread_create(&tr, NULL, receiver_main, a), 0);
    cr_assert_eq(pthread_create(&te, NULL, receiver_main, b), 0);
    void *main_rc = sender_main(b), *rs, *rr, *re;
    pthread_join(ts, &rs);
    pthread_join(tr, &rr);
    pthread_join(te, &re);
    cr_assert(!main_rc && !rs && !rr && !re, "a thread saw a failure");
    destroy2(a, b);
}

/* An MP_EINVAL says, in mp_error_detail(), which call and which argument. */
Test(conn, einval_names_the_argument)
{
    mp_conn *a, *b;
    size_t len;
    void *m;
    mp_assert_rc(mp_pipe(&a, NULL, false), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_pipe: b is NULL");
    mp_assert_rc(mp_conn_poll(NULL, 0), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_conn_poll: c is NULL");
    pipe_pair(&a, &b, true);
    mp_assert_rc(mp_conn_send(b, NULL, 3, 0), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_conn_send: data is NULL with len 3");
    mp_assert_rc(mp_conn_recv(a, &m, NULL, 0), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_conn_recv: len is NULL");
    mp_assert_rc(mp_conn_recv(a, &m, &len, NAN), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_conn_recv: timeout is NaN");
    mp_assert_rc(mp_conn_set_max_message(a, 0), MP_EINVAL);
    cr_assert_str_eq(mp_error_detail(), "mp_conn_set_max_message: max is 0");
    destroy2(a, b);
}
