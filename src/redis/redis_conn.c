/* A connection to Redis: connect, AUTH, SELECT, timeouts, reconnect and
 * fork, and the one place where commands are sent (under the connection's
 * mutex, so that a manager is usable from several threads).
 *
 * Lifetime: reference-counted. The manager holds one reference and every
 * object handle one more, so that handles stay usable after
 * mp_manager_close, as local named objects do.
 *
 * I/O: this file drives the socket itself, non-blocking, with poll()
 * against one absolute CLOCK_MONOTONIC deadline per call (the URL's
 * timeout, plus the server-side wait of a blocking command): the connect,
 * every write and every read of a call share it, and a signal (EINTR, with
 * or without SA_RESTART) never restarts the clock. hiredis only parses
 * replies (redisReader); no blocking system call ever runs inside it.
 * Commands are formatted here (format_all: a pipeline sized first and
 * written once). Name resolution shares the deadline too (see resolve): a
 * silent DNS server costs the call its timeout, MP_ETIMEDOUT, not the
 * resolver's own retries.
 *
 * Failure model: a command whose reply does not come whole (timeout, EOF,
 * reset, a reply cut short by the deadline) leaves the connection in an
 * unknown state (the rest of the reply may still arrive and would be taken
 * for the next command's), so the connection is closed. With reconnect=0
 * it stays closed and every later call fails with MP_ECONNRESET; with
 * reconnect=1 the next call connects again first. The failed call itself
 * is never retried: the server may have applied it. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "os/pidfd.h"
#include "redis/redis_internal.h"
#include "redis/redis_pool.h"

struct mp__redis {
    pthread_mutex_t lock;
    atomic_int refs;
    atomic_int pid;  /* the process whose connection fd is */
    int fd;          /* -1 while not connected */
    redisReader *rd; /* the replies read from fd (NULL while not connected) */
    mp__deadline dl; /* of the call under way (set by begin) */
    bool lost;       /* closed after a failure, reconnect=0 */
    bool watching;   /* WATCH sent, no EXEC/DISCARD/UNWATCH yet */
    bool in_multi;   /* MULTI sent, no EXEC/DISCARD yet */
    int64_t quantum; /* SO_RCVTIMEO of fd in ns (see may_block) */
    /* The server's id of this connection (CLIENT ID, learnt by the first
     * interruptible wait on it): 0 unknown, -1 refused by the server. */
    long long client_id;
    /* Replies of commands sent without waiting (mp__redis_side_blpop_post),
     * read and dropped before the connection's next call. */
    int owed;
    /* Bytes written with MSG_MORE that the kernel still holds (see
     * push_corked). */
    bool corked;
    mp__redis_url url;
    /* Idle side connections for waits that block on the server
     * (mp__redis_side_take); those of the process pid says. */
    pthread_mutex_t side_mu;
    mp__redis *side[MP__REDIS_SIDE_MAX];
    int nside;
};

/* Serialises the repair of connections in a forked child; re-initialised
 * there by the atfork handler, since a thread of the parent may have held
 * it at the fork. */
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_child(void)
{
    pthread_mutex_init(&fork_lock, NULL);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

/* The deadline of a call starting now: the URL's timeout (in (0, 86400],
 * so never "forever"). */
static void call_deadline(const mp__redis *r, mp__deadline *dl)
{
    mp__deadline_init(dl, r->url.timeout);
}

/* The library error for a failed socket call's errno. */
static int errno_code(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return MP_ECONNREFUSED;
    case ETIMEDOUT:
        return MP_ETIMEDOUT;
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
        return MP_ECONNRESET;
    case ENOMEM:
        return MP_ENOMEM;
    default:
        return MP_EIO;
    }
}

/* The library error for a reader that failed on the bytes fed to it. */
static int reader_error(const redisReader *rd)
{
    switch (rd->err) {
    case REDIS_ERR_PROTOCOL:
        return MP_EBADMSG;
    case REDIS_ERR_OOM:
        /* A refused array header is a malformed reply, not a lack of
         * memory. */
        return mp__redis_array_refused() ? MP_EBADMSG : MP_ENOMEM;
    default:
        return MP_EIO;
    }
}

static void close_socket(mp__redis *r)
{
    if (r->fd >= 0)
        close(r->fd);
    if (r->rd)
        redisReaderFree(r->rd);
    r->fd = -1;
    r->rd = NULL;
    r->client_id = 0;
    r->owed = 0;
    r->corked = false;
}

static void drop(mp__redis *r)
{
    close_socket(r);
    r->watching = r->in_multi = false;
    if (!r->url.reconnect)
        r->lost = true;
}

/* Waits for events on fd until dl: 0 when they came, MP_ETIMEDOUT, or the
 * error of poll. EINTR restarts the wait with the time left. */
static int wait_fd(int fd, short events, const mp__deadline *dl)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n = mp__poll(&p, 1, dl);
    return n < 0 ? n : n == 0 ? MP_ETIMEDOUT : 0;
}

/* How much shorter than the URL's timeout the socket's own receive timeout
 * is, so that the first read of a call, made a little after the call
 * began, can still block for the whole of it without passing the call's
 * deadline. */
#define QUANTUM_SLACK_NS 2000000

/* The socket is blocking, with a receive timeout (the quantum) a little
 * shorter than the URL's timeout: a read may block in the kernel (one
 * system call, no poll) when the call's deadline is at least a quantum
 * away, since the kernel then returns (EAGAIN) before the deadline; a
 * signal ends such a read with EINTR even under SA_RESTART (socket reads
 * with a timeout are never restarted), and the loop goes on with the time
 * left. Closer to the deadline, poll with the exact time left, then read
 * without waiting. quantum < 0: no timeout at all (block freely while the
 * call has no deadline); 0: never block. */
static bool may_block(const mp__redis *r, const mp__deadline *dl)
{
    if (r->quantum < 0 || dl->ns < 0)
        return r->quantum < 0 && dl->ns < 0;
    if (r->quantum == 0)
        return false;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return dl->ns - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec) >= r->quantum;
}

/* Sets fd blocking with the receive timeout that may_block relies on. */
static int set_quantum(mp__redis *r, int fd)
{
    double t = r->url.timeout;
    int64_t q = t < 0 || t > 3e9 ? -1 : (int64_t)(t * 1e9) - QUANTUM_SLACK_NS;
    if (q > 0) {
        struct timeval tv = {.tv_sec = (time_t)(q / 1000000000),
                             .tv_usec = (suseconds_t)(q % 1000000000 / 1000)};
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
            return errno_code(errno);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        return errno_code(errno);
    r->quantum = q < 0 ? -1 : q;
    return 0;
}

/* Writes p[0..n) before dl. */
static int send_all(mp__redis *r, const char *p, size_t n, const mp__deadline *dl)
{
    while (n > 0) {
        if (mp__deadline_expired(dl))
            return MP_ETIMEDOUT;
        ssize_t w = send(r->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return errno_code(errno);
        int rc = wait_fd(r->fd, POLLOUT, dl);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Reads until the reader holds a whole reply, before dl. */
static int recv_reply(mp__redis *r, redisReply **out, const mp__deadline *dl)
{
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(r->rd, &rep) != REDIS_OK)
            return reader_error(r->rd);
        if (rep) {
            *out = rep;
            return 0;
        }
        if (mp__deadline_expired(dl))
            return MP_ETIMEDOUT;
        int flags = 0;
        if (!may_block(r, dl)) {
            int rc = wait_fd(r->fd, POLLIN, dl);
            if (rc < 0)
                return rc;
            flags = MSG_DONTWAIT;
        }
        char buf[16384];
        ssize_t n = recv(r->fd, buf, sizeof(buf), flags);
        if (n == 0)
            return MP_ECONNRESET; /* EOF: the server closed the connection */
        if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return errno_code(errno);
        if (n > 0 && redisReaderFeed(r->rd, buf, (size_t)n) != REDIS_OK)
            return reader_error(r->rd);
    }
}

/* The decimal digits of v. */
static size_t dec_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10)
        v /= 10, n++;
    return n;
}

/* Writes c, then v in decimal, then CRLF at p; returns the end. */
static char *put_head(char *p, char c, uint64_t v)
{
    size_t n = dec_len(v);
    *p++ = c;
    for (size_t i = n; i-- > 0; v /= 10)
        p[i] = (char)('0' + v % 10);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* The n commands in RESP, one after the other, in *out (malloc'd, exactly
 * *out_len bytes): sized first, then written once. hiredis formats each
 * command into a buffer of its own, with a printf per argument; a worker
 * answering a batch sends one argument per task. lens NULL: the arguments
 * are strings. */
static int format_all(int n, const int *argc, const char *const *const *argv,
                      const size_t *const *lens, char **out, size_t *out_len)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        len += 3 + dec_len((uint64_t)argc[i]);
        for (int j = 0; j < argc[i]; j++) {
            size_t l = lens && lens[i] ? lens[i][j] : strlen(argv[i][j]);
            if (l > SIZE_MAX / 2 || len > SIZE_MAX / 2 - l)
                return MP_ENOMEM;
            len += 5 + dec_len(l) + l;
        }
    }
    char *all = malloc(len ? len : 1), *p = all;
    if (all == NULL)
        return MP_ENOMEM;
    for (int i = 0; i < n; i++) {
        p = put_head(p, '*', (uint64_t)argc[i]);
        for (int j = 0; j < argc[i]; j++) {
            size_t l = lens && lens[i] ? lens[i][j] : strlen(argv[i][j]);
            p = put_head(p, '$', l);
            if (l)
                memcpy(p, argv[i][j], l);
            p += l;
            *p++ = '\r';
            *p++ = '\n';
        }
    }
    *out = all;
    *out_len = len;
    return 0;
}

/* One command in RESP (format_all of one). */
static int format_one(int argc, const char **argv, const size_t *lens, char **out, size_t *out_len)
{
    return format_all(1, &argc, (const char *const *const[]){argv}, (const size_t *const[]){lens},
                      out, out_len);
}

/* Sends one command and reads its reply (*rep, unchecked); closes the
 * connection when the reply did not come whole before dl. */
static int exec_once(mp__redis *r, redisReply **rep, int argc, const char **argv,
                     const size_t *lens, const mp__deadline *dl)
{
    char *cmd = NULL;
    size_t len = 0;
    *rep = NULL;
    if (format_one(argc, argv, lens, &cmd, &len) < 0)
        return MP_ENOMEM; /* nothing sent: the connection is still in step */
    int rc = send_all(r, cmd, len, dl);
    free(cmd);
    if (rc == 0)
        rc = recv_reply(r, rep, dl);
    if (rc < 0) {
        mp__debug("redis: %s:%d: %s: %s", r->url.host, r->url.port, argv[0], mp_err_name(rc));
        drop(r);
    }
    return rc;
}

/* ---- scripts by their SHA1 ------------------------------------------------
 * A script sent with EVAL travels whole and is hashed by the server at
 * every call (several kB for the lock's). The first EVAL of a text in
 * this process loads it (SCRIPT LOAD, which answers its SHA1) and every
 * call then sends EVALSHA; a server that lost it (restarted, SCRIPT
 * FLUSH) answers NOSCRIPT, and the text is loaded again. The texts are
 * kept by content (a copy), so that a caller's buffer may change. */

#define SCRIPTS_MAX 64

typedef struct script_sha {
    char *text;
    size_t len;
    char sha[41];
} script_sha;

static script_sha scripts[SCRIPTS_MAX];
static size_t nscripts;
static pthread_mutex_t scripts_mu = PTHREAD_MUTEX_INITIALIZER;

static bool sha_of(const char *text, size_t len, char sha[41])
{
    bool found = false;
    pthread_mutex_lock(&scripts_mu);
    for (size_t i = 0; i < nscripts && !found; i++)
        if (scripts[i].len == len && memcmp(scripts[i].text, text, len) == 0) {
            memcpy(sha, scripts[i].sha, 41);
            found = true;
        }
    pthread_mutex_unlock(&scripts_mu);
    return found;
}

static void sha_keep(const char *text, size_t len, const char *sha)
{
    pthread_mutex_lock(&scripts_mu);
    bool known = false;
    for (size_t i = 0; i < nscripts && !known; i++)
        known = scripts[i].len == len && memcmp(scripts[i].text, text, len) == 0;
    char *copy = known || nscripts == SCRIPTS_MAX ? NULL : malloc(len + 1);
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = '\0';
        scripts[nscripts].text = copy;
        scripts[nscripts].len = len;
        memcpy(scripts[nscripts].sha, sha, 41);
        nscripts++;
    }
    pthread_mutex_unlock(&scripts_mu);
}

/* Forgets every script's SHA1: the server lost them. */
static void sha_forget(void)
{
    pthread_mutex_lock(&scripts_mu);
    for (size_t i = 0; i < nscripts; i++)
        free(scripts[i].text);
    nscripts = 0;
    pthread_mutex_unlock(&scripts_mu);
}

/* SCRIPT LOAD of text: its SHA1 in sha. */
static int load_script(mp__redis *r, const char *text, size_t len, char sha[41],
                       const mp__deadline *dl)
{
    redisReply *rep;
    int rc = exec_once(r, &rep, 3, (const char *[]){"SCRIPT", "LOAD", text},
                       (const size_t[]){6, 4, len}, dl);
    if (rc < 0)
        return rc;
    rc = mp__redis_reply_check(rep, MP__RR_STR);
    if (rc == 0 && rep->len != 40)
        rc = MP_EBADMSG;
    if (rc == 0) {
        memcpy(sha, rep->str, 40);
        sha[40] = '\0';
        sha_keep(text, len, sha);
    }
    freeReplyObject(rep);
    return rc;
}

static bool is_noscript(const redisReply *rep)
{
    return rep->type == REDIS_REPLY_ERROR && rep->len >= 8 && memcmp(rep->str, "NOSCRIPT", 8) == 0;
}

/* EVAL as EVALSHA (above): *rep, unchecked. */
static int exec_eval(mp__redis *r, redisReply **rep, int argc, const char **argv,
                     const size_t *lens, const mp__deadline *dl)
{
    size_t len = lens ? lens[1] : strlen(argv[1]);
    char sha[41];
    const char **av = malloc((size_t)argc * sizeof(*av));
    size_t *lv = malloc((size_t)argc * sizeof(*lv));
    int rc = av && lv ? 0 : MP_ENOMEM;
    for (int i = 0; rc == 0 && i < argc; i++) {
        av[i] = argv[i];
        lv[i] = lens ? lens[i] : strlen(argv[i]);
    }
    *rep = NULL;
    for (int attempt = 0; rc == 0 && attempt < 2; attempt++) {
        if ((attempt > 0 || !sha_of(argv[1], len, sha)) &&
            (rc = load_script(r, argv[1], len, sha, dl)) < 0)
            break;
        av[0] = "EVALSHA", lv[0] = 7;
        av[1] = sha, lv[1] = 40;
        rc = exec_once(r, rep, argc, av, lv, dl);
        if (rc < 0 || !is_noscript(*rep))
            break;
        freeReplyObject(*rep); /* the server lost it: load it again */
        *rep = NULL;
    }
    free(av);
    free(lv);
    return rc;
}

static int exec_raw(mp__redis *r, mp__redis_reply_kind kind, redisReply **out, int argc,
                    const char **argv, const size_t *lens, const mp__deadline *dl)
{
    redisReply *rep = NULL;
    int rc = argc >= 2 && strcmp(argv[0], "EVAL") == 0 ? exec_eval(r, &rep, argc, argv, lens, dl)
                                                       : exec_once(r, &rep, argc, argv, lens, dl);
    if (rc < 0)
        return rc;
    rc = mp__redis_reply_check(rep, kind);
    if (rc < 0 && rep->type == REDIS_REPLY_ERROR)
        mp__debug("redis: %s: %.*s", argv[0], (int)rep->len, rep->str);
    if (rc < 0 || out == NULL)
        freeReplyObject(rep);
    else
        *out = rep;
    return rc;
}

/* AUTH, SELECT and a PING: a server that wants a password we lack answers
 * the PING with NOAUTH, so open reports MP_EAUTH at once. */
static int handshake(mp__redis *r, const mp__deadline *dl)
{
    const mp__redis_url *u = &r->url;
    int rc = 0;
    if (u->password) {
        const char *argv[3] = {"AUTH"};
        int argc = 1;
        if (u->user)
            argv[argc++] = u->user;
        argv[argc++] = u->password;
        rc = exec_raw(r, MP__RR_STATUS, NULL, argc, argv, NULL, dl);
    }
    if (rc == 0 && u->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", u->db);
        rc = exec_raw(r, MP__RR_STATUS, NULL, 2, (const char *[]){"SELECT", db}, NULL, dl);
    }
    if (rc == 0)
        rc = exec_raw(r, MP__RR_STATUS, NULL, 1, (const char *[]){"PING"}, NULL, dl);
    return rc;
}

/* A close-on-exec socket connected to ai before dl, in *fd (non-blocking:
 * connect_now then makes it blocking with its receive timeout). */
static int connect_addr(const struct addrinfo *ai, const mp__deadline *dl, int *fd)
{
    int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (s < 0)
        return errno_code(errno);
    int rc = 0;
    /* EINTR: the connection goes on in the background, as EINPROGRESS. */
    if (connect(s, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS && errno != EINTR)
        rc = errno_code(errno);
    if (rc == 0)
        rc = wait_fd(s, POLLOUT, dl);
    int err = 0;
    socklen_t len = sizeof(err);
    if (rc == 0 && getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (rc == 0 && err != 0)
        rc = errno_code(err);
    if (rc < 0) {
        close(s);
        return rc;
    }
    int one = 1; /* commands are small and wait for their reply: no Nagle delay */
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *fd = s;
    return 0;
}

/* ---- name resolution --------------------------------------------------
 * getaddrinfo has no timeout of its own (the resolver's are resolv.conf's:
 * 5 s per attempt by default), so a name is resolved in a thread of its
 * own while the caller waits on a condition variable until the call's
 * deadline; a signal never ends that wait (pthread_cond_timedwait resumes
 * by itself, against the same absolute time). An answer in time: the
 * caller joins the thread, so none is left behind (a fork that follows
 * finds only the threads it had). No answer: the call is MP_ETIMEDOUT and
 * the thread, detached, finishes the lookup alone; the request is shared,
 * and whichever of the two lets go of it last frees it (and the addresses
 * nobody took). Such a thread ends when the resolver gives up.
 *
 * Why not glibc's getaddrinfo_a: its thread pool is process-wide state
 * that a forked child inherits without the threads. A request made in a
 * child soon after a lookup in its parent stays EAI_INPROGRESS until the
 * caller gives up (seen on glibc 2.36: the pool counts an idle thread of
 * the parent's, which the child does not have); forked children are
 * exactly where connections are made again. A request it cannot cancel
 * must outlive the caller anyway, and it would need -lanl before glibc
 * 2.34. One thread per resolved name costs little next to a DNS round
 * trip, and numeric hosts and "localhost" take none. */
typedef struct resolve_req {
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    atomic_int refs; /* the caller and the thread */
    bool done;
    int gai;               /* getaddrinfo's result, once done */
    struct addrinfo *list; /* its addresses, until the caller takes them */
    char port[16];
    char host[]; /* the name */
} resolve_req;

static void resolve_unref(resolve_req *q)
{
    if (atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    if (q->list)
        freeaddrinfo(q->list);
    pthread_cond_destroy(&q->done_cv);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

static void *resolve_main(void *arg)
{
    resolve_req *q = arg;
    const struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    int g = getaddrinfo(q->host, q->port, &hints, &list);
    pthread_mutex_lock(&q->lock);
    q->gai = g;
    q->list = g == 0 ? list : NULL;
    q->done = true;
    pthread_cond_signal(&q->done_cv);
    pthread_mutex_unlock(&q->lock);
    resolve_unref(q);
    return NULL;
}

/* Starts q's thread in *t, with every signal blocked (the process's
 * handlers run in its own threads, never in this one). */
static int resolve_start(resolve_req *q, pthread_t *t)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(t, NULL, resolve_main, q);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e == 0 ? 0 : MP_ENOMEM;
}

/* getaddrinfo(host, port) in a thread, waited for until dl: 0 with its
 * result in *gai (and the addresses in *out), MP_ETIMEDOUT or MP_ENOMEM. */
static int resolve_name(const char *host, const char *port, const mp__deadline *dl,
                        struct addrinfo **out, int *gai)
{
    size_t n = strlen(host) + 1;
    resolve_req *q = calloc(1, sizeof(*q) + n);
    if (q == NULL)
        return MP_ENOMEM;
    memcpy(q->host, host, n);
    snprintf(q->port, sizeof(q->port), "%s", port);
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&q->refs, 2);
    pthread_t t;
    if (resolve_start(q, &t) < 0) {
        atomic_store(&q->refs, 1);
        resolve_unref(q);
        return MP_ENOMEM;
    }
    struct timespec ts = {0};
    if (dl->ns >= 0)
        ts = (struct timespec){.tv_sec = dl->ns / 1000000000, .tv_nsec = dl->ns % 1000000000};
    int rc = MP_ETIMEDOUT;
    pthread_mutex_lock(&q->lock);
    while (!q->done) {
        if (dl->ns < 0)
            pthread_cond_wait(&q->done_cv, &q->lock);
        else if (pthread_cond_timedwait(&q->done_cv, &q->lock, &ts) == ETIMEDOUT)
            break;
    }
    if (q->done) {
        rc = 0;
        *gai = q->gai;
        *out = q->list;
        q->list = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    resolve_unref(q);
    /* An answer: the thread is about to end, and is gone on return (a
     * fork that follows finds no thread of ours). No answer: it ends
     * alone. */
    if (rc == 0)
        pthread_join(t, NULL);
    else
        pthread_detach(t);
    return rc;
}

/* The addresses of host before dl: 0, MP_ETIMEDOUT, MP_ENOMEM or MP_EIO.
 * Numeric addresses are converted in place; "localhost" is answered from
 * /etc/hosts by every usual configuration, so it needs no thread either. */
static int resolve(const char *host, int port_num, const mp__deadline *dl, struct addrinfo **out)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", port_num);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    int g = getaddrinfo(host, port, &hints, out);
    if (g == EAI_NONAME && strcasecmp(host, "localhost") == 0) {
        hints.ai_flags = 0;
        g = getaddrinfo(host, port, &hints, out);
    } else if (g == EAI_NONAME) {
        int rc = resolve_name(host, port, dl, out, &g);
        if (rc < 0) {
            mp__debug("redis: resolving %s: %s", host, mp_err_name(rc));
            return rc;
        }
    }
    if (g != 0) {
        mp__debug("redis: %s: %s", host, gai_strerror(g));
        return g == EAI_MEMORY ? MP_ENOMEM : MP_EIO;
    }
    return 0;
}

/* Connects to the URL's host (each of its addresses in turn) before dl. */
static int connect_socket(mp__redis *r, const mp__deadline *dl, int *fd)
{
    struct addrinfo *list = NULL;
    int rc = resolve(r->url.host, r->url.port, dl, &list);
    if (rc < 0)
        return rc;
    rc = MP_EIO;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        rc = connect_addr(ai, dl, fd);
        if (rc == 0 || rc == MP_ETIMEDOUT)
            break;
    }
    freeaddrinfo(list);
    return rc;
}

static int connect_now(mp__redis *r, const mp__deadline *dl)
{
    int fd = -1;
    int rc = connect_socket(r, dl, &fd);
    if (rc < 0) {
        mp__debug("redis: connect %s:%d: %s", r->url.host, r->url.port, mp_err_name(rc));
        return rc;
    }
    if ((rc = set_quantum(r, fd)) < 0) {
        close(fd);
        return rc;
    }
    redisReader *rd = redisReaderCreate();
    if (rd == NULL || mp__redis_reader_bound(rd) < 0) {
        if (rd)
            redisReaderFree(rd);
        close(fd);
        return MP_ENOMEM;
    }
    r->fd = fd;
    r->rd = rd;
    r->lost = false;
    rc = handshake(r, dl);
    if (rc < 0)
        close_socket(r); /* a failed open leaves nothing to reconnect: not "lost" */
    return rc;
}

/* With reconnect=1, a server that closed an idle connection (restart) is
 * seen before the next command is written, so that command goes to the new
 * server instead of failing. Unexpected bytes also mean the stream is out
 * of step: start afresh. */
static bool peer_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) != 0;
}

static int ensure_connected(mp__redis *r, const mp__deadline *dl)
{
    if (r->fd >= 0 && r->url.reconnect && peer_closed(r->fd)) {
        mp__debug("redis: %s:%d closed the connection; reconnecting", r->url.host, r->url.port);
        close_socket(r);
    }
    if (r->fd >= 0)
        return 0;
    if (r->lost)
        return MP_ECONNRESET;
    return connect_now(r, dl);
}

/* Drops the idle side connections: in a forked child (their sockets are
 * the parent's: only the child's copies are closed), or for good. */
static void drop_sides(mp__redis *r)
{
    for (int i = 0; i < r->nside; i++)
        mp__redis_unref(r->side[i]);
    r->nside = 0;
}

/* A forked child must not talk on its parent's socket (the two would read
 * each other's replies): it closes its copy and connects anew. */

static void after_fork(mp__redis *r)
{
    pthread_mutex_lock(&fork_lock);
    int me = (int)mp__self_pid();
    if (atomic_load(&r->pid) != me) {
        pthread_mutex_init(&r->lock, NULL);
        close_socket(r); /* closes the child's copy of the fd only */
        r->lost = r->watching = r->in_multi = false;
        /* The parent's idle side connections are not ours either. */
        pthread_mutex_init(&r->side_mu, NULL);
        drop_sides(r);
        atomic_store(&r->pid, me);
    }
    pthread_mutex_unlock(&fork_lock);
}

int mp__redis_open(mp__redis **out, mp__redis_url *u)
{
    if (u->tls) {
        mp__debug("redis: rediss:// (TLS) is not built in: TLS needs hiredis >= 1.0 with "
                  "hiredis_ssl; this build uses hiredis %d.%d",
                  HIREDIS_MAJOR, HIREDIS_MINOR);
        return MP_ENOSYS;
    }
    pthread_once(&atfork_once, register_atfork);
    mp__redis *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return MP_ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->side_mu, NULL);
    atomic_init(&r->refs, 1);
    atomic_init(&r->pid, (int)mp__self_pid());
    r->fd = -1;
    r->url = *u;
    memset(u, 0, sizeof(*u));
    mp__deadline dl;
    call_deadline(r, &dl);
    int rc = connect_now(r, &dl);
    if (rc < 0) {
        mp__redis_unref(r);
        return rc;
    }
    *out = r;
    return 0;
}

void mp__redis_ref(mp__redis *r)
{
    atomic_fetch_add(&r->refs, 1);
}

void mp__redis_unref(mp__redis *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    drop_sides(r);
    pthread_mutex_destroy(&r->side_mu);
    close_socket(r);
    mp__redis_url_fini(&r->url);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* A copy of u (its own strings). */
static int url_copy(mp__redis_url *dst, const mp__redis_url *src)
{
    *dst = *src;
    dst->user = src->user ? strdup(src->user) : NULL;
    dst->password = src->password ? strdup(src->password) : NULL;
    if ((src->user && !dst->user) || (src->password && !dst->password)) {
        mp__redis_url_fini(dst);
        return MP_ENOMEM;
    }
    return 0;
}

int mp__redis_side_take(mp__redis *r, mp__redis **out)
{
    *out = NULL;
    if (atomic_load(&r->pid) != (int)mp__self_pid())
        after_fork(r);
    /* reconnect=0: once the connection was lost, every call fails, a
     * side connection's too. */
    pthread_mutex_lock(&r->lock);
    bool lost = r->lost;
    pthread_mutex_unlock(&r->lock);
    if (lost)
        return MP_ECONNRESET;
    pthread_mutex_lock(&r->side_mu);
    if (r->nside > 0)
        *out = r->side[--r->nside];
    pthread_mutex_unlock(&r->side_mu);
    if (*out)
        return 0;
    mp__redis_url u;
    int rc = url_copy(&u, &r->url);
    if (rc == 0)
        rc = mp__redis_open(out, &u);
    if (rc == MP_ECONNREFUSED || rc == MP_ECONNRESET || rc == MP_ETIMEDOUT || rc == MP_EIO) {
        /* The server is out of reach: as if r's connection broke. */
        pthread_mutex_lock(&r->lock);
        drop(r);
        pthread_mutex_unlock(&r->lock);
    }
    return rc;
}

void mp__redis_side_give(mp__redis *r, mp__redis *side)
{
    if (side == NULL)
        return;
    if (side->lost) {
        /* reconnect=0 and the server went: r's connection is lost too. */
        pthread_mutex_lock(&r->lock);
        if (atomic_load(&r->pid) == (int)mp__self_pid())
            drop(r);
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_lock(&r->side_mu);
    bool keep = atomic_load(&r->pid) == (int)mp__self_pid() && r->nside < MP__REDIS_SIDE_MAX &&
                side->fd >= 0 && !side->lost;
    if (keep)
        r->side[r->nside++] = side;
    pthread_mutex_unlock(&r->side_mu);
    if (!keep)
        mp__redis_unref(side);
}

int mp__redis_side_send(mp__redis *r, int argc, const char **argv, mp__redis **out, int *fd)
{
    mp__redis *side;
    int rc = mp__redis_side_take(r, &side);
    if (rc < 0)
        return rc;
    rc = mp__redis_begin(side);
    if (rc == 0) {
        char *cmd = NULL;
        size_t len = 0;
        bool made = format_one(argc, argv, NULL, &cmd, &len) == 0;
        rc = made ? send_all(side, cmd, len, &side->dl) : MP_ENOMEM;
        free(cmd);
        if (rc < 0 && made)
            drop(side); /* maybe partly sent */
        *fd = side->fd;
        mp__redis_end(side);
    }
    if (rc < 0) {
        mp__redis_side_give(r, side);
        return rc;
    }
    *out = side;
    return 0;
}

int mp__redis_side_recv(mp__redis *r, mp__redis *side, redisReply **rep)
{
    *rep = NULL;
    pthread_mutex_lock(&side->lock);
    int rc = MP_ECONNRESET;
    if (side->fd >= 0) {
        mp__deadline dl;
        call_deadline(side, &dl);
        rc = recv_reply(side, rep, &dl);
        if (rc < 0)
            drop(side);
    }
    pthread_mutex_unlock(&side->lock);
    mp__redis_side_give(r, side);
    return rc;
}

void mp__redis_side_abandon(mp__redis *r, mp__redis *side)
{
    /* The reply still to come would put the connection out of step: it
     * goes (the server ends a blocked command of a closed client). Not a
     * loss of the server: r stays as it is. */
    pthread_mutex_lock(&side->lock);
    close_socket(side);
    pthread_mutex_unlock(&side->lock);
    mp__redis_side_give(r, side);
}

const char *mp__redis_prefix(const mp__redis *r)
{
    return r->url.prefix;
}

double mp__redis_lease(const mp__redis *r)
{
    return r->url.lease;
}

double mp__redis_timeout(const mp__redis *r)
{
    return r->url.timeout;
}

/* Sends what a write with MSG_MORE left in the socket (setting
 * TCP_NODELAY pushes the pending bytes out, even when it is set already),
 * before the answers to it are awaited. */
static void push_corked(mp__redis *r)
{
    int one = 1;
    if (r->corked && r->fd >= 0)
        (void)setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    r->corked = false;
}

/* Locks and connects before dl, which then bounds the calls up to end. */
static int begin_at(mp__redis *r, const mp__deadline *dl)
{
    if (atomic_load(&r->pid) != (int)mp__self_pid())
        after_fork(r);
    pthread_mutex_lock(&r->lock);
    r->dl = *dl;
    int rc = ensure_connected(r, dl);
    push_corked(r);
    /* The replies still owed come first: read and dropped (a posted
     * command's answer is not needed); one missing puts the stream out of
     * step, and the connection starts afresh. */
    while (rc == 0 && r->owed > 0) {
        redisReply *rep = NULL;
        if ((rc = recv_reply(r, &rep, dl)) < 0) {
            drop(r);
            rc = ensure_connected(r, dl);
            break;
        }
        /* The server lost its scripts (SCRIPT FLUSH, a restart): the
         * next ones sent without waiting are loaded again first. */
        if (is_noscript(rep))
            sha_forget();
        freeReplyObject(rep);
        r->owed--;
    }
    if (rc < 0)
        pthread_mutex_unlock(&r->lock);
    return rc;
}

int mp__redis_begin(mp__redis *r)
{
    mp__deadline dl;
    call_deadline(r, &dl);
    return begin_at(r, &dl);
}

static bool is_cmd(const char *argv0, const char *name)
{
    return strcasecmp(argv0, name) == 0;
}

int mp__redis_call(mp__redis *r, mp__redis_reply_kind kind, redisReply **reply, double block_s,
                   int argc, const char **argv, const size_t *lens)
{
    if (r->fd < 0)
        return MP_ECONNRESET;
    /* A blocking command may wait block_s on the server: the client waits
     * that much longer than the deadline of the call. */
    mp__deadline dl = r->dl;
    if (block_s > 0 && dl.ns >= 0)
        dl.ns += (int64_t)(block_s * 1e9);
    int rc = exec_raw(r, kind, reply, argc, argv, lens, &dl);
    if (r->fd < 0)
        return rc;
    /* Track the transaction state, so that end can leave it clean. */
    if (is_cmd(argv[0], "WATCH") && rc == 0)
        r->watching = true;
    else if (is_cmd(argv[0], "MULTI") && rc == 0)
        r->in_multi = true;
    else if (is_cmd(argv[0], "EXEC") || is_cmd(argv[0], "DISCARD"))
        r->in_multi = r->watching = false;
    else if (is_cmd(argv[0], "UNWATCH"))
        r->watching = false;
    return rc;
}

void mp__redis_end(mp__redis *r)
{
    /* The clean-up gets a deadline of its own: the call's may be spent. */
    if (r->fd >= 0 && (r->in_multi || r->watching))
        call_deadline(r, &r->dl);
    if (r->fd >= 0 && r->in_multi)
        mp__redis_call(r, MP__RR_STATUS, NULL, 0, 1, (const char *[]){"DISCARD"}, NULL);
    if (r->fd >= 0 && r->watching)
        mp__redis_call(r, MP__RR_STATUS, NULL, 0, 1, (const char *[]){"UNWATCH"}, NULL);
    pthread_mutex_unlock(&r->lock);
}

int mp__redis_cmd(mp__redis *r, mp__redis_reply_kind kind, redisReply **reply, int argc,
                  const char **argv, const size_t *lens)
{
    /* One deadline for the (re)connect and the command. */
    int rc = mp__redis_begin(r);
    if (rc < 0)
        return rc;
    rc = mp__redis_call(r, kind, reply, 0, argc, argv, lens);
    mp__redis_end(r);
    return rc;
}

bool mp__redis_reconnects(const mp__redis *r)
{
    return r->url.reconnect != 0;
}

/* Reads the replies of n pipelined commands; the first failure wins, and a
 * missing reply leaves the stream out of step, so the connection goes. */
static int read_replies(mp__redis *r, mp__redis_reply_kind kind, int n, redisReply **out)
{
    int first = 0;
    for (int i = 0; i < n; i++) {
        redisReply *rep = NULL;
        int rc = recv_reply(r, &rep, &r->dl);
        if (rc < 0) {
            mp__debug("redis: %s:%d: pipeline: %s", r->url.host, r->url.port, mp_err_name(rc));
            drop(r);
            return rc;
        }
        rc = mp__redis_reply_check(rep, kind);
        if (rc == 0 && out)
            out[i] = rep;
        else
            freeReplyObject(rep);
        if (rc < 0 && first == 0)
            first = rc;
    }
    return first;
}

int mp__redis_pipeline_block(mp__redis *r, mp__redis_reply_kind kind, int n, const int *argc,
                             const char *const *const *argv, const size_t *const *lens,
                             redisReply **replies, double block_s)
{
    for (int i = 0; replies && i < n; i++)
        replies[i] = NULL;
    char *cmds = NULL;
    size_t len = 0;
    int rc = format_all(n, argc, argv, lens, &cmds, &len);
    if (rc < 0)
        return rc;
    /* One deadline for the (re)connect, the commands and all replies. */
    rc = mp__redis_begin(r);
    if (rc == 0) {
        if (block_s > 0 && r->dl.ns >= 0)
            r->dl.ns += (int64_t)(block_s * 1e9);
        rc = send_all(r, cmds, len, &r->dl);
        if (rc < 0)
            drop(r); /* partly sent commands: start afresh */
        else
            rc = read_replies(r, kind, n, replies);
        mp__redis_end(r);
    }
    free(cmds);
    for (int i = 0; rc < 0 && replies && i < n; i++) {
        if (replies[i])
            freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
    return rc;
}

int mp__redis_pipeline(mp__redis *r, mp__redis_reply_kind kind, int n, const int *argc,
                       const char *const *const *argv, const size_t *const *lens,
                       redisReply **replies)
{
    return mp__redis_pipeline_block(r, kind, n, argc, argv, lens, replies, 0);
}

/* ---- blocking commands that a signal or a cancel may end -------------------
 * (multiproc/interrupt.h) The commands go over a side connection whose
 * socket is polled with mp__poll_intr. An interrupted wait keeps the
 * connection: the command blocked on the server is ended there with
 * CLIENT UNBLOCK, sent over r's own connection, so that it answers at once
 * as if its time had run out, and every reply is read as usual. A command
 * that the server had served already answers what it took, and the caller
 * gets it: closing the socket instead would lose an item popped just
 * before the signal. */

bool mp__redis_intr_armed(void)
{
    return mp_interruptible() || mp_cancel_current() != NULL;
}

/* Learns side's id on the server once per connection. A server that
 * refuses CLIENT ID (an ACL) leaves -1: its waits are then waited out. */
static int learn_id(mp__redis *side)
{
    if (side->client_id != 0)
        return 0;
    redisReply *rep;
    int rc = exec_raw(side, MP__RR_INT, &rep, 2, (const char *[]){"CLIENT", "ID"}, NULL, &side->dl);
    if (rc == 0) {
        side->client_id = rep->integer > 0 ? rep->integer : -1;
        freeReplyObject(rep);
    } else if (side->fd >= 0) {
        side->client_id = -1; /* an error reply: the connection is in step */
        rc = 0;
    }
    return rc;
}

/* Reads replies into rep[*have..n) before dl: 0 once all n are in,
 * MP_ETIMEDOUT (what came is kept, and a reply begun stays in the
 * reader), or a connection error. */
static int read_until(mp__redis *side, int n, redisReply **rep, int *have, const mp__deadline *dl)
{
    while (*have < n) {
        int rc = recv_reply(side, &rep[*have], dl);
        if (rc < 0)
            return rc;
        (*have)++;
    }
    return 0;
}

/* Ends side's blocked command on the server and reads the replies.
 * UNBLOCK answers 0 when the command is not blocked: served already (its
 * replies are on the way) or not yet read by the server; a short wait for
 * the replies tells which, and a command not read yet is unblocked at the
 * next try. After a few tries, or when the server refuses, the replies are
 * waited for: the blocked command's own timeout ends it. */
static int unblock_and_read(mp__redis *r, mp__redis *side, int n, redisReply **rep, int *have)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", side->client_id);
    for (int i = 0; side->client_id > 0 && i < 4; i++) {
        redisReply *u;
        if (mp__redis_cmd(r, MP__RR_INT, &u, 3, (const char *[]){"CLIENT", "UNBLOCK", id}, NULL) <
            0)
            break;
        bool was_blocked = u->integer == 1;
        freeReplyObject(u);
        if (was_blocked)
            break;
        mp__deadline soon = {.ns = mp__now_ns() + (2000000LL << i)};
        int rc = read_until(side, n, rep, have, &soon);
        if (rc != MP_ETIMEDOUT)
            return rc;
    }
    return read_until(side, n, rep, have, &side->dl);
}

/* Checks the replies of rep[0..n) against kind: 0 or the first error. */
static int check_all(mp__redis_reply_kind kind, int n, redisReply **rep)
{
    for (int i = 0; i < n; i++) {
        int rc = mp__redis_reply_check(rep[i], kind);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A side connection taken and begun for a call whose server-side wait
 * may last block_s seconds past the call's own deadline (0: none). */
static int side_open(mp__redis *r, mp__redis **side, double block_s)
{
    int rc = mp__redis_side_take(r, side);
    if (rc == 0 && (rc = mp__redis_begin(*side)) < 0)
        mp__redis_side_give(r, *side);
    if (rc == 0 && block_s > 0 && (*side)->dl.ns >= 0)
        (*side)->dl.ns += (int64_t)(block_s * 1e9);
    return rc;
}

/* Sends cmds on side (taken, begun) and reads n replies, the wait
 * honouring the interrupt settings: 0, MP_EINTR or MP_ECANCELED with all
 * n replies in rep, or a connection error. */
static int side_exchange(mp__redis *r, mp__redis *side, const char *cmds, size_t len, int n,
                         redisReply **rep)
{
    int have = 0, intr = 0;
    int rc = learn_id(side);
    if (rc == 0 && (rc = send_all(side, cmds, len, &side->dl)) == 0) {
        struct pollfd p = {.fd = side->fd, .events = POLLIN};
        int k = mp__poll_intr(&p, 1, &side->dl);
        intr = k < 0 ? k : 0;
        rc = intr ? unblock_and_read(r, side, n, rep, &have)
                  : read_until(side, n, rep, &have, &side->dl);
    }
    if (rc < 0 && side->fd >= 0)
        drop(side); /* a reply missing: the stream is out of step */
    for (int i = 0; rc < 0 && i < have; i++) {
        freeReplyObject(rep[i]);
        rep[i] = NULL;
    }
    return rc < 0 ? rc : intr;
}

int mp__redis_side_pipeline(mp__redis *r, mp__redis_reply_kind kind, int n, const int *argc,
                            const char *const *const *argv, const size_t *const *lens,
                            redisReply **replies, double block_s)
{
    for (int i = 0; i < n; i++)
        replies[i] = NULL;
    char *cmds = NULL;
    size_t len = 0;
    mp__redis *side = NULL;
    int rc = format_all(n, argc, argv, lens, &cmds, &len);
    if (rc == 0)
        rc = side_open(r, &side, block_s);
    if (rc < 0) {
        free(cmds);
        return rc;
    }
    rc = side_exchange(r, side, cmds, len, n, replies);
    free(cmds);
    mp__redis_end(side);
    mp__redis_side_give(r, side);
    int bad = rc == 0 || rc == MP_EINTR || rc == MP_ECANCELED ? check_all(kind, n, replies) : 0;
    for (int i = 0; bad < 0 && i < n; i++) {
        freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
    return bad < 0 ? bad : rc;
}

/* ---- a BLPOP, then a script sent without waiting for its answer --------
 * A waiter that a release hands its object to (a lock's grant) has one
 * more thing to tell the server: who it is. It sends that once it has
 * the BLPOP's answer and returns at once: the answer is read and dropped
 * by the connection's next call (begin_at). Sent behind the BLPOP
 * instead, the script would run on the server before it writes the
 * BLPOP's answer, in the waiter's path (a dozen µs, more when cold).
 * Nor is it pushed to the server at once: a send on loopback TCP runs
 * the receiving side's stack and wakes the server, 10-15 µs of the
 * waiter's time here. It is written with MSG_MORE, which costs 2 µs and
 * leaves it in the socket, and it goes out with the connection's next
 * call (push_corked) or, on an idle connection, when the kernel's cork
 * ceiling passes (its probe timer: the retransmission timeout, 200 ms on
 * a local network, more on a slow one); on close, before the FIN. */

/* Writes p[0..n) with MSG_MORE (corked); when the socket would not take
 * it all at once, sends the rest before dl, which pushes it all out (a
 * send without MSG_MORE). */
static int send_corked(mp__redis *r, const char *p, size_t n, const mp__deadline *dl)
{
    ssize_t w = send(r->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT | MSG_MORE);
    if (w == (ssize_t)n) {
        r->corked = true;
        return 0;
    }
    if (w < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
        return errno_code(errno);
    size_t sent = w > 0 ? (size_t)w : 0;
    return send_all(r, p + sent, n - sent, dl);
}

int mp__redis_side_blpop_post(mp__redis *r, const char *key, double secs, const char *script,
                              redisReply **rep, mp__redis_post_fn post, void *arg)
{
    *rep = NULL;
    mp__redis *side = NULL;
    int rc = side_open(r, &side, secs);
    if (rc < 0)
        return rc;
    /* After side_open, which read the answers owed: one that said the
     * server lost its scripts made this process forget them. The script
     * is loaded now, off the path of the hand-off, and its SHA1 kept for
     * after the BLPOP. */
    char sha[41], t[32];
    size_t slen = strlen(script);
    if (!sha_of(script, slen, sha))
        rc = load_script(side, script, slen, sha, &side->dl);
    snprintf(t, sizeof(t), "%.3f", secs);
    if (rc == 0)
        rc =
            exec_raw(side, MP__RR_EXEC, rep, 3, (const char *[]){"BLPOP", key, t}, NULL, &side->dl);
    const char *argv[MP__REDIS_POST_MAX];
    int argc = rc == 0 && (*rep)->type == REDIS_REPLY_ARRAY ? post(arg, *rep, argv) : 0;
    if (argc > 2) {
        argv[0] = "EVALSHA";
        argv[1] = sha;
        char *cmd = NULL;
        size_t len = 0;
        /* Lost, the script only leaves undone what the caller can do
         * without (the connection goes with it: maybe partly sent). */
        if (format_one(argc, argv, NULL, &cmd, &len) == 0) {
            if (send_corked(side, cmd, len, &side->dl) == 0)
                side->owed++;
            else
                drop(side);
            free(cmd);
        }
    }
    mp__redis_end(side);
    mp__redis_side_give(r, side);
    if (rc < 0 && *rep) {
        freeReplyObject(*rep);
        *rep = NULL;
    }
    return rc;
}
