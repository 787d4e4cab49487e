/* A connection to Redis: connect, AUTH, SELECT, timeouts, reconnect and
 * fork, and the one place where commands are sent (under the connection's
 * mutex, so that a manager is usable from several threads).
 *
 * Lifetime: reference-counted. The manager holds one reference and every
 * object handle one more, so that handles stay usable after
 * mp_manager_close, as local named objects do.
 *
 * Failure model: a command whose reply does not come (timeout, EOF, reset)
 * leaves the connection in an unknown state (the reply may still arrive),
 * so the connection is closed. With reconnect=0 it stays closed and every
 * later call fails with MP_ECONNRESET; with reconnect=1 the next call
 * connects again first. The failed call itself is never retried: the
 * server may have applied it. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "redis_internal.h"
#include "redis_pool.h"

struct mp__redis {
    pthread_mutex_t lock;
    atomic_int refs;
    atomic_int pid;  /* the process whose connection c is */
    redisContext *c; /* NULL while not connected */
    bool lost;       /* closed after a failure, reconnect=0 */
    bool watching;   /* WATCH sent, no EXEC/DISCARD/UNWATCH yet */
    bool in_multi;   /* MULTI sent, no EXEC/DISCARD yet */
    mp__redis_url url;
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

static struct timeval to_timeval(double s)
{
    struct timeval tv;
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    if (tv.tv_sec == 0 && tv.tv_usec == 0)
        tv.tv_usec = 1;
    return tv;
}

static bool has(const char *s, const char *word)
{
    return s && strstr(s, word) != NULL;
}

/* The library error for a failed context. hiredis keeps the text of the
 * failing call's errno (errno itself may have changed since). */
static int context_error(const redisContext *c)
{
    switch (c->err) {
    case REDIS_ERR_EOF:
        return MP_ECONNRESET;
    case REDIS_ERR_PROTOCOL:
        return MP_EBADMSG;
    case REDIS_ERR_OOM:
        /* A refused array header is a malformed reply, not a lack of
         * memory. */
        return mp__redis_array_refused() ? MP_EBADMSG : MP_ENOMEM;
    case REDIS_ERR_IO:
        if (has(c->errstr, "refused"))
            return MP_ECONNREFUSED;
        if (has(c->errstr, "temporarily unavailable") || has(c->errstr, "timed out") ||
            has(c->errstr, "in progress"))
            return MP_ETIMEDOUT;
        if (has(c->errstr, "reset") || has(c->errstr, "Broken pipe"))
            return MP_ECONNRESET;
        return MP_EIO;
    default:
        return MP_EIO;
    }
}

static void drop(mp__redis *r)
{
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
    r->watching = r->in_multi = false;
    if (!r->url.reconnect)
        r->lost = true;
}

/* Sends one command on the connected context; closes it when no reply
 * came. */
static int exec_raw(mp__redis *r, mp__rr_kind kind, redisReply **out, int argc, const char **argv,
                    const size_t *lens)
{
    redisReply *rep = redisCommandArgv(r->c, argc, argv, lens);
    if (rep == NULL) {
        int rc = context_error(r->c);
        mp__debug("redis: %s:%d: %s (%s)", r->url.host, r->url.port, r->c->errstr, mp_err_name(rc));
        drop(r);
        return rc;
    }
    int rc = mp__redis_reply_check(rep, kind);
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
static int handshake(mp__redis *r)
{
    const mp__redis_url *u = &r->url;
    int rc = 0;
    if (u->password) {
        const char *argv[3] = {"AUTH"};
        int argc = 1;
        if (u->user)
            argv[argc++] = u->user;
        argv[argc++] = u->password;
        rc = exec_raw(r, MP__RR_STATUS, NULL, argc, argv, NULL);
    }
    if (rc == 0 && u->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", u->db);
        rc = exec_raw(r, MP__RR_STATUS, NULL, 2, (const char *[]){"SELECT", db}, NULL);
    }
    if (rc == 0)
        rc = exec_raw(r, MP__RR_STATUS, NULL, 1, (const char *[]){"PING"}, NULL);
    return rc;
}

static int connect_now(mp__redis *r)
{
    struct timeval tv = to_timeval(r->url.timeout);
    redisContext *c = redisConnectWithTimeout(r->url.host, r->url.port, tv);
    if (c == NULL)
        return MP_ENOMEM;
    if (c->err) {
        int rc = context_error(c);
        mp__debug("redis: connect %s:%d: %s (%s)", r->url.host, r->url.port, c->errstr,
                  mp_err_name(rc));
        redisFree(c);
        return rc;
    }
    /* hiredis 0.14 makes its socket without SOCK_CLOEXEC; set it at once
     * so that programs this process runs do not inherit the connection. */
    int fl = fcntl(c->fd, F_GETFD);
    if (fl < 0 || fcntl(c->fd, F_SETFD, fl | FD_CLOEXEC) < 0 || redisSetTimeout(c, tv) != 0 ||
        mp__redis_reader_bound(c->reader) < 0) {
        redisFree(c);
        return MP_EIO;
    }
    r->c = c;
    r->lost = false;
    int rc = handshake(r);
    if (rc < 0 && r->c) {
        redisFree(r->c);
        r->c = NULL;
    }
    return rc;
}

/* With reconnect=1, a server that closed an idle connection (restart) is
 * seen before the next command is written, so that command goes to the new
 * server instead of failing. Unexpected bytes also mean the stream is out
 * of step: start afresh. */
static bool peer_closed(const redisContext *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) != 0;
}

static int ensure_connected(mp__redis *r)
{
    if (r->c && r->url.reconnect && peer_closed(r->c)) {
        mp__debug("redis: %s:%d closed the connection; reconnecting", r->url.host, r->url.port);
        redisFree(r->c);
        r->c = NULL;
    }
    if (r->c)
        return 0;
    if (r->lost)
        return MP_ECONNRESET;
    return connect_now(r);
}

/* A forked child must not talk on its parent's socket (the two would read
 * each other's replies): it closes its copy and connects anew. */
static void after_fork(mp__redis *r)
{
    pthread_mutex_lock(&fork_lock);
    int me = (int)getpid();
    if (atomic_load(&r->pid) != me) {
        pthread_mutex_init(&r->lock, NULL);
        if (r->c)
            redisFree(r->c); /* closes the child's copy of the fd only */
        r->c = NULL;
        r->lost = r->watching = r->in_multi = false;
        atomic_store(&r->pid, me);
    }
    pthread_mutex_unlock(&fork_lock);
}

int mp__redis_open(mp__redis **out, mp__redis_url *u)
{
    if (u->tls) {
        mp__debug("redis: rediss:// (TLS) is not built in this version");
        return MP_ENOSYS;
    }
    pthread_once(&atfork_once, register_atfork);
    mp__redis *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return MP_ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    atomic_init(&r->refs, 1);
    atomic_init(&r->pid, (int)getpid());
    r->url = *u;
    memset(u, 0, sizeof(*u));
    int rc = connect_now(r);
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
    if (r->c)
        redisFree(r->c);
    mp__redis_url_fini(&r->url);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const char *mp__redis_prefix(const mp__redis *r)
{
    return r->url.prefix;
}

double mp__redis_lease(const mp__redis *r)
{
    return r->url.lease;
}

int mp__redis_begin(mp__redis *r)
{
    if (atomic_load(&r->pid) != (int)getpid())
        after_fork(r);
    pthread_mutex_lock(&r->lock);
    int rc = ensure_connected(r);
    if (rc < 0)
        pthread_mutex_unlock(&r->lock);
    return rc;
}

static bool is_cmd(const char *argv0, const char *name)
{
    return strcasecmp(argv0, name) == 0;
}

int mp__redis_call(mp__redis *r, mp__rr_kind kind, redisReply **reply, double block_s, int argc,
                   const char **argv, const size_t *lens)
{
    if (r->c == NULL)
        return MP_ECONNRESET;
    if (block_s > 0)
        redisSetTimeout(r->c, to_timeval(block_s + r->url.timeout));
    int rc = exec_raw(r, kind, reply, argc, argv, lens);
    if (block_s > 0 && r->c)
        redisSetTimeout(r->c, to_timeval(r->url.timeout));
    if (r->c == NULL)
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
    if (r->c && r->in_multi)
        mp__redis_call(r, MP__RR_STATUS, NULL, 0, 1, (const char *[]){"DISCARD"}, NULL);
    if (r->c && r->watching)
        mp__redis_call(r, MP__RR_STATUS, NULL, 0, 1, (const char *[]){"UNWATCH"}, NULL);
    pthread_mutex_unlock(&r->lock);
}

int mp__redis_cmd(mp__redis *r, mp__rr_kind kind, redisReply **reply, int argc, const char **argv,
                  const size_t *lens)
{
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
static int read_replies(mp__redis *r, mp__rr_kind kind, int n, redisReply **out)
{
    int first = 0;
    for (int i = 0; i < n; i++) {
        void *rep = NULL;
        if (redisGetReply(r->c, &rep) != REDIS_OK || rep == NULL) {
            int rc = context_error(r->c);
            drop(r);
            return rc;
        }
        int rc = mp__redis_reply_check(rep, kind);
        if (rc == 0 && out)
            out[i] = rep;
        else
            freeReplyObject(rep);
        if (rc < 0 && first == 0)
            first = rc;
    }
    return first;
}

int mp__redis_pipeline(mp__redis *r, mp__rr_kind kind, int n, const int *argc,
                       const char *const *const *argv, const size_t *const *lens,
                       redisReply **replies)
{
    for (int i = 0; replies && i < n; i++)
        replies[i] = NULL;
    int rc = mp__redis_begin(r);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n && rc == 0; i++)
        if (redisAppendCommandArgv(r->c, argc[i], (const char **)argv[i], lens[i]) != REDIS_OK)
            rc = MP_ENOMEM;
    if (rc == 0)
        rc = read_replies(r, kind, n, replies);
    else
        drop(r); /* partly buffered commands: start afresh */
    mp__redis_end(r);
    for (int i = 0; rc < 0 && replies && i < n; i++) {
        if (replies[i])
            freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
    return rc;
}
