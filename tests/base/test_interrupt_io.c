/* Interrupting the blocking calls of connections and subprocesses
 * (multiproc/interrupt.h): each call with signals arriving and the opt-in
 * off (it goes on), with the opt-in on (MP_EINTR), with a cancel triggered
 * from another thread and from a signal handler; and for each, that the
 * interrupted call left what a later call resumes from: a message half
 * received, a frame half sent, an unreaped child, a communicate's output. */
#include <endian.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn/conn_internal.h"
#include "intr.h"
#include "mp_test.h"

static void io_init(void);
static void io_fini(void);
TestSuite(interrupt_io, .init = io_init, .fini = io_fini, .timeout = 60);

static void io_init(void)
{
    mp_test_fd_setup();
    mp_test_intr_setup(0); /* no SA_RESTART */
}

static void io_fini(void)
{
    mp_test_intr_teardown();
    mp_test_fd_check();
}

/* Runs the statements with the settings off (signals may still arrive). */
#define SETTINGS_OFF(...)                                                                          \
    do {                                                                                           \
        bool was_ = mp_set_interruptible(false);                                                   \
        mp_cancel *c_ = mp_cancel_set_current(NULL);                                               \
        __VA_ARGS__;                                                                               \
        mp_cancel_set_current(c_);                                                                 \
        mp_set_interruptible(was_);                                                                \
    } while (0)

static bool stopped(int rc)
{
    return rc == MP_EINTR || rc == MP_ECANCELED;
}

/* ---- the blocking calls under test --------------------------------------- */

enum {
    K_RECV,
    K_RECV_INTO,
    K_RECV_FD,
    K_POLL,
    K_SEND,
    K_SEND_FD,
    K_POPEN_WAIT,
    K_COMMUNICATE,
    K_READ,
    K_WRITE,
    K_RUN,
    K_PIPELINE_WAIT,
    K_PIPELINE_COMM,
    K_N
};
static const char *const kname[K_N] = {"recv",    "recv_into",     "recv_fd",      "poll", "send",
                                       "send_fd", "popen_wait",    "comm",         "read", "write",
                                       "run",     "pipeline_wait", "pipeline_comm"};

static const char *const sleeper[] = {"sleep", "30", NULL};

/* Sends small messages without waiting until the end is full; returns
 * how many went. */
static int fill(mp_conn *w, size_t size)
{
    static const char junk[512];
    int n = 0;
    for (;;) {
        int rc = mp_conn_send(w, junk, size, 0);
        if (rc == MP_ETIMEDOUT)
            return n;
        mp_assert_ok(rc);
        n++;
    }
}

/* Receives count messages of the given size, then finds the end empty. */
static void drain(mp_conn *r, int count, size_t size)
{
    char buf[512];
    size_t len;
    for (int i = 0; i < count; i++) {
        mp_assert_ok(mp_conn_recv_into(r, buf, sizeof(buf), &len, 5));
        cr_assert_eq(len, size);
    }
    mp_assert_rc(mp_conn_poll(r, 0), 0);
}

static int conn_call(int k, double t)
{
    mp_conn *a, *b;
    mp_assert_ok(mp_pipe(&a, &b, k == K_RECV_FD || k == K_SEND_FD));
    int rc, n = 0;
    char buf[16];
    size_t len = 0;
    void *msg = NULL;
    int fd = -1;
    switch (k) {
    case K_RECV:
        rc = mp_conn_recv(a, &msg, &len, t);
        break;
    case K_RECV_INTO:
        rc = mp_conn_recv_into(a, buf, sizeof(buf), &len, t);
        break;
    case K_RECV_FD:
        rc = mp_conn_recv_fd(a, &fd, t);
        break;
    case K_POLL:
        rc = mp_conn_poll(a, t);
        break;
    case K_SEND:
        SETTINGS_OFF(n = fill(b, 100));
        rc = mp_conn_send(b, (const char[100]){0}, 100, t); /* no room for its size */
        break;
    default:
        SETTINGS_OFF(n = fill(b, 1));
        rc = mp_conn_send_fd(b, 0, t);
        break;
    }
    if (stopped(rc)) {
        cr_assert_null(msg);
        cr_assert_eq(fd, -1);
        SETTINGS_OFF({
            if (k == K_SEND || k == K_SEND_FD) {
                /* Nothing of the stopped frame went out, and the end can
                 * still send. */
                drain(a, n, k == K_SEND ? 100 : 1);
                mp_assert_ok(mp_conn_send(b, "z", 1, 5));
                mp_assert_ok(mp_conn_recv_into(a, buf, sizeof(buf), &len, 5));
                cr_assert_eq(len, 1);
            } else {
                /* Nothing consumed: the next message is received whole. */
                mp_assert_ok(mp_conn_send(b, "hello", 5, 5));
                mp_assert_ok(mp_conn_recv_into(a, buf, sizeof(buf), &len, 5));
                cr_assert_eq(len, 5);
                cr_assert_eq(memcmp(buf, "hello", 5), 0);
            }
        });
    }
    free(msg);
    mp_conn_destroy(a);
    mp_conn_destroy(b);
    return rc;
}

/* A child's stdin pipe filled up while the child does not read. */
static void fill_stdin(mp_popen *p)
{
    static const char junk[4096];
    while (mp_popen_write(p, junk, sizeof(junk), 0) > 0)
        ;
}

static int popen_call(int k, double t)
{
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, sleeper,
                                 &(mp_popen_opts){.in = MP_PIPE, .out = MP_PIPE, .err = MP_PIPE}));
    char *out = (char *)"untouched", *err = out, buf[8];
    int rc, code = 12345;
    switch (k) {
    case K_POPEN_WAIT:
        rc = mp_popen_wait(p, t, &code);
        break;
    case K_COMMUNICATE:
        rc = mp_popen_communicate(p, NULL, 0, &out, NULL, &err, NULL, t);
        break;
    case K_READ:
        rc = (int)mp_popen_read(p, 1, buf, sizeof(buf), t);
        break;
    default:
        SETTINGS_OFF(fill_stdin(p));
        rc = (int)mp_popen_write(p, "x", 1, t);
        break;
    }
    if (stopped(rc)) {
        /* The child was not reaped, no output handed over, no byte
         * written. */
        cr_assert_eq(code, 12345);
        mp_assert_rc(mp_popen_returncode(p, NULL), MP_ERUNNING);
        mp_assert_rc(mp_popen_poll(p, NULL), MP_ERUNNING);
        cr_assert_str_eq(out, "untouched");
        cr_assert_str_eq(err, "untouched");
    } else if (k == K_COMMUNICATE) {
        free(out);
        free(err);
    }
    mp_popen_destroy(p);
    return rc;
}

static int run_call(double t)
{
    mp_run_result res;
    int rc = mp_run(sleeper, &(mp_run_opts){.timeout = t > 0 ? t : 0, .capture = true}, &res);
    /* Stopped (or timed out), the child was killed and reaped. */
    cr_assert_eq(res.returncode, -SIGKILL, "%d", res.returncode);
    cr_assert_not_null(res.out);
    mp_run_result_free(&res);
    return rc;
}

static int pipeline_call(int k, double t)
{
    const char *const *stages[] = {sleeper, (const char *const[]){"cat", NULL}};
    mp_pipeline *pl;
    mp_assert_ok(mp_pipeline_create(&pl, stages, 2, &(mp_pipeline_opts){.out = MP_PIPE}));
    char *out = (char *)"untouched";
    int rc = k == K_PIPELINE_WAIT ? mp_pipeline_wait(pl, t)
                                  : mp_pipeline_communicate(pl, NULL, 0, &out, NULL, NULL, NULL, t);
    if (stopped(rc)) {
        mp_assert_rc(mp_pipeline_returncode(pl, NULL), MP_ERUNNING);
        cr_assert_str_eq(out, "untouched");
    } else if (k == K_PIPELINE_COMM) {
        free(out);
    }
    mp_pipeline_destroy(pl);
    return rc;
}

/* One blocking call of kind k with timeout t, on objects where it waits
 * for good; when it stopped early, the checks that it changed nothing. */
static int run_call_kind(int k, double t)
{
    if (k <= K_SEND_FD)
        return conn_call(k, t);
    if (k <= K_WRITE)
        return popen_call(k, t);
    if (k == K_RUN)
        return run_call(t);
    return pipeline_call(k, t);
}

Test(interrupt_io, signals_do_not_end_a_call_without_the_opt_in)
{
    cr_assert_not(mp_interruptible());
    for (int k = 0; k < K_N; k++) {
        int expected = k == K_POLL ? 0 : k == K_RUN ? MP_ETIMEOUTEXPIRED : MP_ETIMEDOUT;
        /* Again while fewer than 10 signals came in all (a loaded host can
         * starve the signalling thread): each call ends as it would have. */
        int handled = 0;
        for (int round = 0; round < 20 && handled <= 10; round++) {
            static mp_test_pester p;
            mp_test_storm_start(&p); /* a signal every millisecond */
            int rc = run_call_kind(k, 0.2);
            handled += mp_test_storm_stop(&p);
            cr_assert_eq(rc, expected, "%s: %s", kname[k], mp_err_name(rc));
        }
        cr_assert_gt(handled, 10, "%s: signals arrived", kname[k]);
    }
}

/* Senders and children that finish late, for the calls without a timeout. */
static void *send_late(void *arg)
{
    usleep(200 * 1000);
    mp_conn_send(arg, "late", 4, 5);
    return NULL;
}

Test(interrupt_io, signals_do_not_end_a_call_with_no_timeout_without_the_opt_in)
{
    for (int restart = 0; restart < 2; restart++) {
        mp_test_intr_handler(restart ? SA_RESTART : 0);
        static mp_test_pester p;
        mp_conn *a, *b;
        mp_assert_ok(mp_pipe(&a, &b, false));
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, send_late, b), 0);
        mp_test_pester_start(&p, 0, 1000, NULL);
        void *msg;
        size_t len;
        mp_assert_ok(mp_conn_recv(a, &msg, &len, MP_FOREVER));
        mp_test_pester_stop(&p);
        pthread_join(th, NULL);
        cr_assert_eq(len, 4);
        free(msg);
        mp_conn_destroy(a);
        mp_conn_destroy(b);

        mp_popen *c;
        mp_assert_ok(mp_popen_create(
            &c, (const char *const[]){"sh", "-c", "sleep 0.2; exit 3", NULL}, NULL));
        mp_test_storm_start(&p);
        int code = -1;
        mp_assert_ok(mp_popen_wait(c, MP_FOREVER, &code));
        /* At least one: ThreadSanitizer holds a thread's signals while it
         * is blocked in waitid and delivers them merged when it returns. */
        cr_assert_gt(mp_test_storm_stop(&p), 0);
        cr_assert_eq(code, 3);
        mp_popen_destroy(c);
    }
}

Test(interrupt_io, with_the_opt_in_a_signal_ends_each_call_with_eintr)
{
    cr_assert_not(mp_set_interruptible(true));
    for (int k = 0; k < K_N; k++) {
        /* Signals from 0.1 s on, every 20 ms, until the call returns: no
         * timeout, so only they can end it. */
        static mp_test_pester p;
        mp_test_pester_start(&p, 100, 20000, NULL);
        int rc = run_call_kind(k, MP_FOREVER);
        mp_test_pester_stop(&p);
        cr_assert_eq(rc, MP_EINTR, "%s: %s", kname[k], mp_err_name(rc));
    }
    cr_assert(mp_set_interruptible(false));
}

/* SA_RESTART makes the kernel restart a blocking read or waitid after the
 * handler: the opt-in must still see the signal. */
Test(interrupt_io, the_opt_in_holds_with_sa_restart)
{
    mp_test_intr_handler(SA_RESTART);
    mp_set_interruptible(true);
    static const int kinds[] = {K_RECV, K_SEND, K_POPEN_WAIT, K_RUN};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        static mp_test_pester p;
        mp_test_pester_start(&p, 100, 20000, NULL);
        int rc = run_call_kind(kinds[i], MP_FOREVER);
        mp_test_pester_stop(&p);
        cr_assert_eq(rc, MP_EINTR, "%s: %s", kname[kinds[i]], mp_err_name(rc));
    }
    mp_set_interruptible(false);
}

Test(interrupt_io, a_cancel_from_another_thread_ends_each_call)
{
    mp_cancel *c;
    mp_assert_ok(mp_cancel_create(&c));
    mp_cancel_set_current(c);
    for (int k = 0; k < K_N; k++) {
        mp_assert_ok(mp_cancel_reset(c));
        static mp_test_pester p;
        mp_test_pester_start(&p, 100, 0, c);
        int rc = run_call_kind(k, 20);
        mp_test_pester_stop(&p);
        cr_assert_eq(rc, MP_ECANCELED, "%s: %s", kname[k], mp_err_name(rc));
    }
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(c);
}

Test(interrupt_io, a_cancel_from_a_signal_handler_ends_each_call)
{
    mp_cancel *c;
    mp_assert_ok(mp_cancel_create(&c));
    mp_cancel_set_current(c);
    mp_test_intr_from_handler = c;
    for (int k = 0; k < K_N; k++) {
        mp_assert_ok(mp_cancel_reset(c));
        static mp_test_pester p;
        mp_test_pester_start(&p, 100, 0, NULL); /* one signal; the handler triggers c */
        int rc = run_call_kind(k, MP_FOREVER);
        mp_test_pester_stop(&p);
        cr_assert_eq(rc, MP_ECANCELED, "%s: %s", kname[k], mp_err_name(rc));
    }
    mp_test_intr_from_handler = NULL;
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(c);
}

/* ---- what an interrupted call leaves, and the call that resumes ---------- */

/* How a call is stopped: a signal with the opt-in, or a cancel. */
enum { BY_SIGNAL, BY_CANCEL, BY_N };

typedef struct stopper {
    mp_test_pester p;
    mp_cancel *c;
} stopper;

/* Arms the stop of the next blocking call of this thread. */
static void stop_soon(stopper *s, int by)
{
    s->c = NULL;
    if (by == BY_SIGNAL) {
        mp_set_interruptible(true);
        mp_test_pester_start(&s->p, 100, 20000, NULL);
    } else {
        mp_assert_ok(mp_cancel_create(&s->c));
        mp_cancel_set_current(s->c);
        mp_test_pester_start(&s->p, 100, 0, s->c);
    }
}

static void stop_done(stopper *s)
{
    mp_test_pester_stop(&s->p);
    mp_set_interruptible(false);
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(s->c);
}

static int stop_code(int by)
{
    return by == BY_SIGNAL ? MP_EINTR : MP_ECANCELED;
}

static void pattern(unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
}

/* A gate a child waits at (`read x < path`: the open of a FIFO waits
 * for a writer) until the test opens it, so that the child cannot finish
 * before the call under test was stopped, however slow the machine. */
typedef struct gate {
    char dir[32];
    char path[48];
} gate;

static void gate_make(gate *g)
{
    strcpy(g->dir, "/tmp/mp_gate_XXXXXX");
    cr_assert_not_null(mkdtemp(g->dir));
    snprintf(g->path, sizeof(g->path), "%s/fifo", g->dir);
    cr_assert_eq(mkfifo(g->path, 0600), 0);
}

static void gate_open(gate *g)
{
    int fd = open(g->path, O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    close(fd);
    unlink(g->path);
    rmdir(g->dir);
}

static void write_all(int fd, const void *buf, size_t len)
{
    cr_assert_eq(write(fd, buf, len), (ssize_t)len);
}

/* The peer wrote the header and part of a message, the receive is
 * stopped waiting for the rest; once it came, the next receive gets the
 * whole message. Small: it fits in the read-ahead (kept there); large: it
 * does not (kept in a buffer of its size, also for recv_into). */
Test(interrupt_io, a_recv_stopped_mid_message_is_resumed_whole)
{
    for (int by = 0; by < BY_N; by++)
        for (int large = 0; large < 2; large++)
            for (int into = 0; into < 2; into++) {
                int fds[2];
                cr_assert_eq(pipe(fds), 0);
                mp_conn *r;
                mp_assert_ok(mp_conn_open_fd(&r, fds[0]));
                if (large)
                    mp_assert_ok(mp__conn_set_readahead(r, 16));
                size_t len = large ? 40000 : 100, half = len / 2;
                unsigned char *msg = malloc(len), *got = malloc(len);
                pattern(msg, len);
                uint64_t hdr = htole64(len);
                write_all(fds[1], &hdr, sizeof(hdr));
                write_all(fds[1], msg, half);

                stopper s;
                stop_soon(&s, by);
                void *data = NULL;
                size_t n = 0;
                int rc = into ? mp_conn_recv_into(r, got, len, &n, MP_FOREVER)
                              : mp_conn_recv(r, &data, &n, MP_FOREVER);
                stop_done(&s);
                mp_assert_rc(rc, stop_code(by));
                cr_assert_null(data);

                write_all(fds[1], msg + half, len - half);
                rc = into ? mp_conn_recv_into(r, got, len, &n, 5) : mp_conn_recv(r, &data, &n, 5);
                mp_assert_ok(rc);
                cr_assert_eq(n, len);
                cr_assert_eq(memcmp(into ? got : data, msg, len), 0, "by %d large %d into %d", by,
                             large, into);
                free(data);
                free(msg);
                free(got);
                close(fds[1]);
                mp_conn_destroy(r);
            }
}

typedef struct late_reader {
    mp_conn *r;
    size_t len;
    void *data;
    int rc;
} late_reader;

static void *read_late(void *arg)
{
    late_reader *lr = arg;
    usleep(300 * 1000);
    lr->rc = mp_conn_recv(lr->r, &lr->data, &lr->len, 10);
    return NULL;
}

/* A frame once begun is finished: a signal or a cancel that comes while
 * the sender waits for room in the middle of it does not end the send
 * (it would tear the stream for the receiver). */
Test(interrupt_io, a_send_interrupted_mid_frame_finishes_the_frame)
{
    for (int by = 0; by < BY_N; by++) {
        mp_conn *r, *w;
        mp_assert_ok(mp_pipe(&r, &w, false));
        size_t len = (size_t)1 << 20; /* many times the pipe's size */
        unsigned char *msg = malloc(len);
        pattern(msg, len);
        late_reader lr = {.r = r};
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, read_late, &lr), 0);
        stopper s;
        stop_soon(&s, by);
        atomic_store(&mp_test_intr_handled, 0);
        int rc = mp_conn_send(w, msg, len, MP_FOREVER);
        bool cancelled = s.c && mp_cancel_triggered(s.c);
        stop_done(&s);
        pthread_join(th, NULL);
        mp_assert_ok(rc);
        cr_assert(by == BY_SIGNAL ? atomic_load(&mp_test_intr_handled) > 0 : cancelled,
                  "stopped mid-frame");
        mp_assert_ok(lr.rc);
        cr_assert_eq(lr.len, len);
        cr_assert_eq(memcmp(lr.data, msg, len), 0);
        mp_assert_ok(mp_conn_send(w, "next", 4, 5)); /* not half-sent */
        free(lr.data);
        free(msg);
        mp_conn_destroy(r);
        mp_conn_destroy(w);
    }
}

Test(interrupt_io, a_popen_wait_stopped_leaves_the_child_to_a_later_wait)
{
    for (int by = 0; by < BY_N; by++) {
        /* It exits once its stdin is closed. */
        mp_popen *p;
        mp_assert_ok(mp_popen_create(&p, (const char *const[]){"sh", "-c", "read x; exit 7", NULL},
                                     &(mp_popen_opts){.in = MP_PIPE}));
        stopper s;
        stop_soon(&s, by);
        int code = -1;
        int rc = mp_popen_wait(p, MP_FOREVER, &code);
        stop_done(&s);
        mp_assert_rc(rc, stop_code(by));
        cr_assert_eq(code, -1);
        mp_assert_rc(mp_popen_returncode(p, NULL), MP_ERUNNING);
        mp_assert_ok(mp_popen_close_stdin(p));
        mp_assert_ok(mp_popen_wait(p, 10, &code));
        cr_assert_eq(code, 7);
        mp_popen_destroy(p);
    }
}

/* Output beyond a pipe's size before the stop, input beyond it too: the
 * call that resumes (with the same input) returns all of both. */
Test(interrupt_io, a_communicate_stopped_is_resumed_with_all_the_output)
{
    size_t in_len = 100000, zeros = 200000;
    unsigned char *input = malloc(in_len);
    pattern(input, in_len);
    for (int by = 0; by < BY_N; by++) {
        gate g;
        gate_make(&g);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "head -c %zu /dev/zero; read x < %s; cat; printf done >&2",
                 zeros, g.path);
        mp_popen *p;
        mp_assert_ok(
            mp_popen_create(&p, (const char *const[]){"sh", "-c", cmd, NULL},
                            &(mp_popen_opts){.in = MP_PIPE, .out = MP_PIPE, .err = MP_PIPE}));
        stopper s;
        stop_soon(&s, by);
        char *out = NULL, *err = NULL;
        size_t out_len = 0, err_len = 0;
        int rc = mp_popen_communicate(p, input, in_len, &out, &out_len, &err, &err_len, MP_FOREVER);
        stop_done(&s);
        mp_assert_rc(rc, stop_code(by));
        cr_assert_null(out);
        cr_assert_null(err);
        gate_open(&g);
        mp_assert_ok(
            mp_popen_communicate(p, input, in_len, &out, &out_len, &err, &err_len, MP_FOREVER));
        cr_assert_eq(out_len, zeros + in_len);
        for (size_t i = 0; i < zeros; i++)
            cr_assert_eq(out[i], 0);
        cr_assert_eq(memcmp(out + zeros, input, in_len), 0);
        cr_assert_str_eq(err, "done");
        int code = -1;
        mp_assert_ok(mp_popen_returncode(p, &code));
        cr_assert_eq(code, 0);
        free(out);
        free(err);
        mp_popen_destroy(p);
    }
    free(input);
}

Test(interrupt_io, a_pipeline_stopped_is_resumed_with_all_the_output)
{
    size_t len = 100000;
    unsigned char *input = malloc(len);
    pattern(input, len);
    for (int by = 0; by < BY_N; by++) {
        gate g;
        gate_make(&g);
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "read x < %s; cat", g.path);
        const char *const *stages[] = {(const char *const[]){"sh", "-c", cmd, NULL},
                                       (const char *const[]){"cat", NULL}};
        mp_pipeline *pl;
        mp_assert_ok(
            mp_pipeline_create(&pl, stages, 2, &(mp_pipeline_opts){.in = MP_PIPE, .out = MP_PIPE}));
        stopper s;
        stop_soon(&s, by);
        char *out = NULL;
        size_t out_len = 0;
        int rc = mp_pipeline_communicate(pl, input, len, &out, &out_len, NULL, NULL, MP_FOREVER);
        stop_done(&s);
        mp_assert_rc(rc, stop_code(by));
        cr_assert_null(out);
        gate_open(&g);
        mp_assert_ok(mp_pipeline_communicate(pl, input, len, &out, &out_len, NULL, NULL, 20));
        cr_assert_eq(out_len, len);
        cr_assert_eq(memcmp(out, input, len), 0);
        int code = -1;
        mp_assert_ok(mp_pipeline_returncode(pl, &code));
        cr_assert_eq(code, 0);
        free(out);
        mp_pipeline_destroy(pl);
    }
    free(input);
}

/* mp_run gives the caller no object to resume with: the child is killed
 * and reaped, and its output so far is in the result. */
Test(interrupt_io, a_run_stopped_kills_and_reaps_its_child)
{
    for (int by = 0; by < BY_N; by++) {
        stopper s;
        stop_soon(&s, by);
        mp_run_result res;
        int rc = mp_run((const char *const[]){"sh", "-c", "printf partial; exec sleep 30", NULL},
                        &(mp_run_opts){.capture = true}, &res);
        stop_done(&s);
        mp_assert_rc(rc, stop_code(by));
        cr_assert_eq(res.returncode, -SIGKILL);
        cr_assert_str_eq(res.out, "partial");
        int kids = mp_test_children(getpid(), NULL, 0);
        cr_assert(kids <= 0, "%d children left", kids);
        mp_run_result_free(&res);
    }
}

/* A byte stream: a write stopped after some bytes says how many went. */
Test(interrupt_io, a_popen_write_stopped_after_some_bytes_returns_the_count)
{
    size_t len = (size_t)1 << 20;
    char *buf = calloc(1, len);
    for (int by = 0; by < BY_N; by++) {
        mp_popen *p;
        mp_assert_ok(mp_popen_create(&p, sleeper, &(mp_popen_opts){.in = MP_PIPE}));
        stopper s;
        stop_soon(&s, by);
        ssize_t n = mp_popen_write(p, buf, len, MP_FOREVER);
        stop_done(&s);
        cr_assert(n > 0 && (size_t)n < len, "%zd", n);
        mp_popen_destroy(p);
    }
    free(buf);
}

/* The checks come before each sleep, not instead of the work: with the
 * cancel triggered before the call, what needs no wait is done. */
Test(interrupt_io, a_triggered_cancel_lets_a_call_that_need_not_wait_complete)
{
    mp_cancel *c;
    mp_assert_ok(mp_cancel_create(&c));
    mp_popen *p;
    mp_assert_ok(mp_popen_create(&p, (const char *const[]){"sh", "-c", "printf out; exit 5", NULL},
                                 &(mp_popen_opts){.out = MP_PIPE}));
    siginfo_t info;
    cr_assert_eq(waitid(P_PID, (id_t)mp_popen_pid(p), &info, WEXITED | WNOWAIT), 0);
    mp_conn *a, *b;
    mp_assert_ok(mp_pipe(&a, &b, true));
    mp_assert_ok(mp_cancel_trigger(c));
    mp_cancel_set_current(c);

    mp_assert_ok(mp_conn_send(b, "one", 3, MP_FOREVER)); /* room: no wait */
    mp_assert_rc(mp_conn_poll(a, MP_FOREVER), 1);
    char buf[8];
    size_t n;
    mp_assert_ok(mp_conn_recv_into(a, buf, sizeof(buf), &n, MP_FOREVER));
    cr_assert_eq(n, 3);
    mp_assert_rc(mp_conn_recv_into(a, buf, sizeof(buf), &n, MP_FOREVER), MP_ECANCELED);
    mp_assert_rc(mp_conn_poll(a, MP_FOREVER), MP_ECANCELED);
    char *out = NULL;
    mp_assert_ok(mp_popen_communicate(p, NULL, 0, &out, NULL, NULL, NULL, MP_FOREVER));
    cr_assert_str_eq(out, "out");
    int code = -1;
    mp_assert_ok(mp_popen_wait(p, MP_FOREVER, &code));
    cr_assert_eq(code, 5);

    mp_cancel_set_current(NULL);
    free(out);
    mp_popen_destroy(p);
    mp_conn_destroy(a);
    mp_conn_destroy(b);
    mp_cancel_destroy(c);
}
