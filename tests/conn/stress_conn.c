/* Connections driven from several threads and processes at once. Three
 * workloads run side by side:
 *
 *   - duplex: a socket pair with a sender and a receiver thread on each end
 *     (4 threads), DUPLEX_MSGS messages each way;
 *   - child: a forked child (mp_process) that sends CHILD_MSGS messages to
 *     the parent over a one-way pipe and receives as many over another,
 *     while a parent thread calls mp_wait with short timeouts on the end the
 *     parent receives from;
 *   - fds: a socket pair passing FD_ROUNDS descriptors each way (4 threads),
 *     mixed with data messages, each descriptor checked and closed.
 *
 * Every message has a size from 0 B to 200 KiB that both sides derive from
 * its stream and sequence number. A message of MSG_HDR bytes or more carries
 * its sequence number, its stream and a checksum of the rest, which the
 * receiver verifies in order; a shorter one is compared byte for byte with
 * the expected pattern. Senders and receivers mix blocking calls, short
 * timeouts (which must refuse a small frame whole), recv_into with a too-small
 * buffer (MP_EMSGSIZE) and mp_conn_poll. The open-fd count must be the same
 * at the end as at the start. Run under ThreadSanitizer by make check. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "stress.h"

#define DUPLEX_MSGS 20000u
#define CHILD_MSGS  10000u
#define FD_ROUNDS   5000u
#define MAX_MSG     ((size_t)200 * 1024)
#define MSG_HDR     16u   /* seq (4), stream (4), checksum (8) */
#define SMALL_CAP   1024u /* recv_into buffer that large messages overflow */

/* Stream numbers keep the flows apart: a message delivered to the wrong
 * receiver fails its stream check. */
enum { S_AB = 1, S_BA, S_C2P, S_P2C, S_FD_AB, S_FD_BA };

/* Sizes around the boundaries of the implementation: a frame header, the
 * atomic pipe write, the 64 KiB read-ahead (a payload of up to 65528 bytes
 * fits with its header), the 64 KiB pipe buffer and the largest message. */
static const size_t edge_sizes[] = {
    0,     1,     7,     8,     15,    16,     17,          4095,   4096, PIPE_BUF + 1u,
    65527, 65528, 65529, 65536, 65537, 131072, MAX_MSG - 1, MAX_MSG};
#define N_EDGES (sizeof(edge_sizes) / sizeof(edge_sizes[0]))

typedef struct stats {
    unsigned long timeouts; /* calls that timed out and were retried */
    unsigned long msgsize;  /* recv_into calls refused with MP_EMSGSIZE */
    unsigned long eproto;   /* calls refused with MP_EPROTO, as expected */
} stats;

/* ---- message contents ---------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static uint64_t msg_seed(uint32_t stream, uint32_t seq)
{
    return mix64(((uint64_t)stream << 32 | seq) + 0x9e3779b97f4a7c15u) | 1u;
}

/* Mostly small messages with a few large ones, so that the run stays short
 * under TSan while every path (read-ahead, large frame, partial frame) is
 * taken many times. */
static size_t msg_size(uint32_t stream, uint32_t seq)
{
    if (seq < N_EDGES)
        return edge_sizes[seq];
    uint64_t r = mix64(msg_seed(stream, seq));
    unsigned cls = (unsigned)(r % 100u);
    r >>= 8;
    if (cls < 1)
        return edge_sizes[r % N_EDGES];
    if (cls < 3)
        return (size_t)(r % (MAX_MSG + 1));
    if (cls < 13)
        return (size_t)(r % 8193u);
    return (size_t)(r % 257u);
}

/* Order-sensitive hash of n bytes, a word at a time (TSan instruments each
 * access, so words are much cheaper than bytes). */
static uint64_t checksum(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u ^ n, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3u;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, p + i, n - i);
    h = (h ^ w) * 0x100000001b3u;
    return h ^ (h >> 29);
}

static void msg_fill(unsigned char *buf, size_t n, uint32_t stream, uint32_t seq)
{
    uint64_t s = msg_seed(stream, seq);
    size_t i = n >= MSG_HDR ? MSG_HDR : 0;
    for (; i < n; i += 8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        if (n - i >= 8)
            memcpy(buf + i, &s, 8);
        else
            memcpy(buf + i, &s, n - i);
    }
    if (n >= MSG_HDR) {
        uint64_t sum = checksum(buf + MSG_HDR, n - MSG_HDR);
        memcpy(buf, &seq, 4);
        memcpy(buf + 4, &stream, 4);
        memcpy(buf + 8, &sum, 8);
    }
}

static void msg_check(const unsigned char *buf, size_t n, uint32_t stream, uint32_t seq)
{
    size_t want = msg_size(stream, seq);
    STRESS_CHECK(n == want, "stream %u message %u: %zu bytes, expected %zu", stream, seq, n, want);
    if (n < MSG_HDR) {
        unsigned char ref[MSG_HDR];
        msg_fill(ref, n, stream, seq);
        STRESS_CHECK(n == 0 || memcmp(ref, buf, n) == 0, "stream %u message %u: wrong bytes",
                     stream, seq);
        return;
    }
    uint32_t got_seq, got_stream;
    uint64_t sum;
    memcpy(&got_seq, buf, 4);
    memcpy(&got_stream, buf + 4, 4);
    memcpy(&sum, buf + 8, 8);
    STRESS_CHECK(got_stream == stream && got_seq == seq,
                 "expected stream %u message %u, got stream %u message %u", stream, seq, got_stream,
                 got_seq);
    STRESS_CHECK(checksum(buf + MSG_HDR, n - MSG_HDR) == sum,
                 "stream %u message %u (%zu bytes): bad checksum", stream, seq, n);
}

/* ---- sending and receiving one message ---------------------------------- */

/* A frame of at most PIPE_BUF bytes goes out in one piece (atomic on a
 * pipe, one buffer on a socket), so its timeout can only refuse it whole: a
 * retry never duplicates or tears it, which the receiver's sequence and
 * checksum checks would catch. A larger frame stopped by its timeout would
 * leave the end half-sent (MP_EHALFSENT), so those get MP_FOREVER or a
 * deadline that is never meant to pass (the timed non-blocking path). */
static void send_msg(mp_conn *c, uint32_t stream, uint32_t seq, unsigned char *buf, stats *st)
{
    static const double timeouts[] = {MP_FOREVER, 0, 0.001, 0.05};
    size_t n = msg_size(stream, seq);
    msg_fill(buf, n, stream, seq);
    bool small = n + 8 <= PIPE_BUF;
    double t = small ? timeouts[seq % 4] : seq % 2 ? MP_FOREVER : 60;
    int rc;
    /* A 0-byte message may come with NULL data. */
    while ((rc = mp_conn_send(c, n ? buf : NULL, n, t)) == MP_ETIMEDOUT && small) {
        st->timeouts++;
        t = 0.005;
    }
    STRESS_CHECK(rc == 0, "send stream %u message %u (%zu bytes): %s", stream, seq, n,
                 mp_err_name(rc));
}

enum { RX_FOREVER, RX_ALLOC_SHORT, RX_INTO_SHORT, RX_INTO_SMALL, RX_POLL, RX_MODES };

/* One receive attempt in the given mode. Returns 0 with *data (scratch or a
 * buffer to free) and *len set, or the error. */
static int recv_attempt(mp_conn *c, unsigned mode, unsigned char *scratch, void **data, size_t *len)
{
    int rc;
    switch (mode) {
    case RX_FOREVER:
        return mp_conn_recv(c, data, len, MP_FOREVER);
    case RX_ALLOC_SHORT:
        return mp_conn_recv(c, data, len, 0.0005);
    case RX_INTO_SHORT:
        *data = scratch;
        return mp_conn_recv_into(c, scratch, MAX_MSG, len, 0.001);
    case RX_INTO_SMALL:
        *data = scratch;
        return mp_conn_recv_into(c, scratch, SMALL_CAP, len, 0.002);
    default:
        /* poll promises progress, not a whole message: recv may still time
         * out on a frame that has only partly arrived. */
        rc = mp_conn_poll(c, 0.002);
        if (rc == 1)
            return mp_conn_recv(c, data, len, 0);
        return rc == 0 ? MP_ETIMEDOUT : rc;
    }
}

/* Receive the next message and check that it is message seq of stream.
 * Each retry moves to the next mode, so that a frame left half received by
 * one kind of call is completed by another; RX_FOREVER ends the rotation. */
static void recv_msg(mp_conn *c, uint32_t stream, uint32_t seq, unsigned char *scratch, stats *st)
{
    unsigned mode = seq % RX_MODES;
    for (;;) {
        void *data = NULL;
        size_t len = 0;
        int rc = recv_attempt(c, mode, scratch, &data, &len);
        if (rc == 0) {
            STRESS_CHECK(data != NULL, "stream %u message %u: NULL buffer", stream, seq);
            msg_check(data, len, stream, seq);
            if (data != scratch)
                free(data);
            return;
        }
        if (rc == MP_EMSGSIZE) {
            STRESS_CHECK(mode == RX_INTO_SMALL && len == msg_size(stream, seq) && len > SMALL_CAP,
                         "stream %u message %u: MP_EMSGSIZE with len %zu", stream, seq, len);
            st->msgsize++;
        } else {
            STRESS_CHECK(rc == MP_ETIMEDOUT, "recv stream %u message %u (mode %u): %s", stream, seq,
                         mode, mp_err_name(rc));
            st->timeouts++;
        }
        mode = (mode + 1) % RX_MODES;
    }
}

static unsigned char *xmalloc(size_t n)
{
    unsigned char *p = malloc(n);
    STRESS_CHECK(p != NULL, "out of memory");
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- flows: one thread sending or receiving a stream --------------------- */

typedef struct flow {
    mp_conn *c;
    uint32_t stream, count;
    stats st;
    double secs; /* how long the thread ran */
} flow;

static void *flow_send(void *arg)
{
    flow *f = arg;
    double t0 = now_s();
    unsigned char *buf = xmalloc(MAX_MSG);
    for (uint32_t i = 0; i < f->count; i++)
        send_msg(f->c, f->stream, i, buf, &f->st);
    free(buf);
    f->secs = now_s() - t0;
    return NULL;
}

static void *flow_recv(void *arg)
{
    flow *f = arg;
    double t0 = now_s();
    unsigned char *scratch = xmalloc(MAX_MSG);
    for (uint32_t i = 0; i < f->count; i++)
        recv_msg(f->c, f->stream, i, scratch, &f->st);
    free(scratch);
    f->secs = now_s() - t0;
    return NULL;
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    STRESS_CHECK(pthread_create(t, NULL, fn, arg) == 0, "pthread_create failed");
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    STRESS_CHECK(d != NULL, "cannot open /proc/self/fd");
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ---- the child process and the parent's watcher --------------------------- */

/* Set before the child is started, so that it inherits them. */
static mp_conn *c2p_rx, *c2p_tx, *p2c_rx, *p2c_tx;
static atomic_bool c2p_done;

/* The child: send a message, receive one, until both streams are done, then
 * expect end of file once the parent has closed its sending end. */
static int child_main(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    /* The child's copies of the parent's ends: closing them lets each side
     * see end of file when the other is done. */
    mp_conn_destroy(c2p_rx);
    mp_conn_destroy(p2c_tx);
    unsigned char *buf = xmalloc(MAX_MSG), *scratch = xmalloc(MAX_MSG);
    stats st = {0};
    for (uint32_t i = 0; i < CHILD_MSGS; i++) {
        send_msg(c2p_tx, S_C2P, i, buf, &st);
        recv_msg(p2c_rx, S_P2C, i, scratch, &st);
    }
    mp_conn_destroy(c2p_tx);
    void *data;
    size_t n;
    int rc = mp_conn_recv(p2c_rx, &data, &n, 60);
    STRESS_CHECK(rc == MP_EEOF, "child: after the last message: %s", mp_err_name(rc));
    mp_conn_destroy(p2c_rx);
    free(buf);
    free(scratch);
    return 0;
}

/* Receives from the child, then expects end of file once it has exited. */
static void *child_recv(void *arg)
{
    flow *f = arg;
    flow_recv(f);
    void *data;
    size_t n;
    int rc = mp_conn_recv(f->c, &data, &n, 60);
    STRESS_CHECK(rc == MP_EEOF, "parent: after the child's last message: %s", mp_err_name(rc));
    atomic_store(&c2p_done, true);
    return NULL;
}

typedef struct watch {
    mp_conn *c;
    unsigned long rounds, ready;
} watch;

/* mp_wait on the end that child_recv reads, with short timeouts, for as long
 * as it reads. Whatever the interleaving, the result must be 0 or 1 and
 * agree with .ready; at the end, the pending end of file must be ready. */
static void *watcher(void *arg)
{
    static const double timeouts[] = {0.0005, 0.001, 0, 0.003};
    watch *w = arg;
    while (!atomic_load(&c2p_done)) {
        mp_waitable it = MP_WAIT_CONN(w->c);
        int n = mp_wait(&it, 1, timeouts[w->rounds % 4]);
        STRESS_CHECK(n == 0 || n == 1, "mp_wait returned %s (%d)", mp_err_name(n), n);
        STRESS_CHECK(it.ready == (n == 1), "mp_wait returned %d with ready %d", n, it.ready);
        w->rounds++;
        w->ready += (unsigned long)n;
        if (n == 1)
            usleep(200); /* leave the receiver the CPU: this is a 2-core box */
    }
    mp_waitable it = MP_WAIT_CONN(w->c);
    int n = mp_wait(&it, 1, 10);
    STRESS_CHECK(n == 1 && it.ready, "mp_wait at end of file returned %d", n);
    return NULL;
}

/* ---- descriptor passing --------------------------------------------------- */

static uint32_t fd_marker(uint32_t stream, uint32_t i)
{
    return (uint32_t)mix64((uint64_t)stream << 32 | i);
}

/* Each round: every third round a data message, then the read end of a fresh
 * pipe holding a marker, its write end already closed. */
static void *fd_send(void *arg)
{
    flow *f = arg;
    double t0 = now_s();
    unsigned char *buf = xmalloc(MAX_MSG);
    for (uint32_t i = 0; i < f->count; i++) {
        if (i % 3 == 0)
            send_msg(f->c, f->stream, i, buf, &f->st);
        int p[2];
        STRESS_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2 failed");
        uint32_t marker = fd_marker(f->stream, i);
        STRESS_CHECK(write(p[1], &marker, 4) == 4, "write to pipe failed");
        close(p[1]);
        double t = i % 2 ? MP_FOREVER : 0.001;
        int rc;
        while ((rc = mp_conn_send_fd(f->c, p[0], t)) == MP_ETIMEDOUT) {
            f->st.timeouts++;
            t = 0.005;
        }
        STRESS_CHECK(rc == 0, "send_fd %u: %s", i, mp_err_name(rc));
        close(p[0]);
    }
    free(buf);
    f->secs = now_s() - t0;
    return NULL;
}

/* Receive the descriptor of round i and check that it is the read end of
 * the pipe fd_send made: close-on-exec, the marker, then end of file. */
static void fd_take(flow *f, uint32_t i)
{
    int fd = -1, rc;
    double t = i % 2 ? 0.001 : MP_FOREVER;
    while ((rc = mp_conn_recv_fd(f->c, &fd, t)) == MP_ETIMEDOUT) {
        f->st.timeouts++;
        t = MP_FOREVER;
    }
    STRESS_CHECK(rc == 0 && fd >= 0, "recv_fd %u: %s", i, mp_err_name(rc));
    int fl = fcntl(fd, F_GETFD);
    STRESS_CHECK(fl >= 0 && (fl & FD_CLOEXEC), "fd %d of round %u: flags %d", fd, i, fl);
    uint32_t marker = 0;
    ssize_t n = read(fd, &marker, 4);
    STRESS_CHECK(n == 4 && marker == fd_marker(f->stream, i),
                 "fd of round %u: read %zd bytes, marker %08x", i, n, marker);
    char extra;
    STRESS_CHECK(read(fd, &extra, 1) == 0, "fd of round %u: no end of file", i);
    STRESS_CHECK(close(fd) == 0, "close of received fd %d failed", fd);
}

/* The other end of fd_send. Asking for the wrong kind of frame must give
 * MP_EPROTO and consume nothing. */
static void *fd_recv(void *arg)
{
    flow *f = arg;
    double t0 = now_s();
    unsigned char *scratch = xmalloc(MAX_MSG);
    for (uint32_t i = 0; i < f->count; i++) {
        if (i % 3 == 0) {
            if (i % 2 == 0) {
                int fd = -1;
                int rc = mp_conn_recv_fd(f->c, &fd, 30);
                STRESS_CHECK(rc == MP_EPROTO && fd == -1, "recv_fd on data %u: %s", i,
                             mp_err_name(rc));
                f->st.eproto++;
            }
            recv_msg(f->c, f->stream, i, scratch, &f->st);
        }
        if (i % 4 == 1) {
            void *data = NULL;
            size_t len = 0;
            int rc = mp_conn_recv(f->c, &data, &len, 30);
            STRESS_CHECK(rc == MP_EPROTO, "recv on fd %u: %s", i, mp_err_name(rc));
            f->st.eproto++;
        }
        fd_take(f, i);
    }
    free(scratch);
    f->secs = now_s() - t0;
    return NULL;
}

/* ---- main ---------------------------------------------------------------- */

static void report(const char *what, const flow *f)
{
    printf("  %-22s %6u msgs %6.2f s  timeouts %lu  emsgsize %lu  eproto %lu\n", what, f->count,
           f->secs, f->st.timeouts, f->st.msgsize, f->st.eproto);
}

/* The child first, while the parent still has one thread. A daemon, so
 * that a failed check in the parent (exit(1)) terminates it instead of
 * waiting for a child blocked on a pipe nobody reads any more. */
static mp_process *start_child(void)
{
    mp_process *p;
    STRESS_OK(mp_pipe(&c2p_rx, &c2p_tx, false));
    STRESS_OK(mp_pipe(&p2c_rx, &p2c_tx, false));
    STRESS_OK(mp_process_create(&p, &(mp_process_opts){.target = child_main, .daemon = true}));
    STRESS_OK(mp_process_start(p));
    mp_conn_destroy(c2p_tx);
    mp_conn_destroy(p2c_rx);
    c2p_tx = p2c_rx = NULL;
    return p;
}

static void finish_child(mp_process *p)
{
    mp_conn_destroy(p2c_tx); /* the child now sees end of file */
    STRESS_OK(mp_process_join(p, 60));
    int code = -1;
    STRESS_OK(mp_process_exitcode(p, &code));
    STRESS_CHECK(code == 0, "child exit code %d", code);
    mp_process_destroy(p);
    mp_conn_destroy(c2p_rx);
}

/* Both duplex ends are quiet after the flows: nothing extra was delivered,
 * and closing one end gives the other end of file. */
static void finish_duplex(mp_conn *a, mp_conn *b)
{
    STRESS_CHECK(mp_conn_poll(a, 0) == 0 && mp_conn_poll(b, 0) == 0, "unexpected data left");
    mp_conn_destroy(b);
    void *data;
    size_t n;
    int rc = mp_conn_recv(a, &data, &n, 10);
    STRESS_CHECK(rc == MP_EEOF, "recv after peer closed: %s", mp_err_name(rc));
    mp_conn_destroy(a);
}

int main(void)
{
    STRESS_DEADLINE(120);
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* The shared heap's memfd, made by the first process start, stays open
     * for the life of the process by design: create it before counting. */
    STRESS_OK(mp_init(NULL));
    int fds_before = count_fds();
    double t0 = now_s();

    mp_process *child = start_child();
    mp_conn *da, *db, *fa, *fb;
    STRESS_OK(mp_pipe(&da, &db, true));
    STRESS_OK(mp_pipe(&fa, &fb, true));

    flow fl[10] = {
        {.c = da, .stream = S_AB, .count = DUPLEX_MSGS},
        {.c = db, .stream = S_AB, .count = DUPLEX_MSGS},
        {.c = db, .stream = S_BA, .count = DUPLEX_MSGS},
        {.c = da, .stream = S_BA, .count = DUPLEX_MSGS},
        {.c = c2p_rx, .stream = S_C2P, .count = CHILD_MSGS},
        {.c = p2c_tx, .stream = S_P2C, .count = CHILD_MSGS},
        {.c = fa, .stream = S_FD_AB, .count = FD_ROUNDS},
        {.c = fb, .stream = S_FD_AB, .count = FD_ROUNDS},
        {.c = fb, .stream = S_FD_BA, .count = FD_ROUNDS},
        {.c = fa, .stream = S_FD_BA, .count = FD_ROUNDS},
    };
    void *(*fn[10])(void *) = {flow_send, flow_recv, flow_send, flow_recv, child_recv,
                               flow_send, fd_send,   fd_recv,   fd_send,   fd_recv};
    watch w = {.c = c2p_rx};
    pthread_t t[11];
    for (int i = 0; i < 10; i++)
        start(&t[i], fn[i], &fl[i]);
    start(&t[10], watcher, &w);
    for (int i = 0; i < 11; i++)
        pthread_join(t[i], NULL);

    finish_child(child);
    finish_duplex(da, db);
    finish_duplex(fa, fb);
    int fds_after = count_fds();
    STRESS_CHECK(fds_after == fds_before, "%d fds open before, %d after", fds_before, fds_after);

    static const char *const names[10] = {
        "duplex a->b send",   "duplex a->b recv",   "duplex b->a send", "duplex b->a recv",
        "child->parent recv", "parent->child send", "fds a->b send",    "fds a->b recv",
        "fds b->a send",      "fds b->a recv"};
    for (int i = 0; i < 10; i++)
        report(names[i], &fl[i]);
    printf("  mp_wait watcher: %lu rounds, %lu ready\n", w.rounds, w.ready);
    printf("stress_conn: %u duplex, %u child, %u fd rounds each way: ok in %.2f s\n", DUPLEX_MSGS,
           CHILD_MSGS, FD_ROUNDS, now_s() - t0);
    return 0;
}
