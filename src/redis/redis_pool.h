/* The distributed pool on Redis: a backend of the pool module
 * (pool/pool_backend.h) that the Redis manager backend registers. Client
 * (redis/redis_pool.c, redis/redis_pool_async.c, redis/redis_pool_imap.c),
 * worker (redis/redis_pool_worker.c) and the pure codecs they share
 * (redis/redis_pool_codec.c). Key layout and protocol: "Distributed pool" in
 * docs/redis.md. Not installed. */
#ifndef MULTIPROC_REDIS_POOL_H
#define MULTIPROC_REDIS_POOL_H

#include <pthread.h>

#include "manager/manager_internal.h"
#include "pool/pool_backend.h"
#include "redis/redis_internal.h"

/* Client ids are up to 32 lowercase hex digits (they are part of a key). */
#define MP__REDIS_POOL_CLIENT_MAX 32
/* Bounds a worker enforces on a task before allocating for it. */
#define MP__REDIS_POOL_ITEMS_MAX ((uint64_t)1 << 24)
#define MP__REDIS_POOL_OUT_MAX   ((uint64_t)1 << 28)
/* The client's lease: its key <prefix>pool:<n>:client:<c>, its result
 * list and its cancel set live this long after its last heartbeat
 * (mp__redis_client_beat, due every third of it); a worker pushing a
 * result gives the list the same TTL. Workers drop the tasks of a client
 * whose key is gone. */
#define MP__REDIS_POOL_CLIENT_LEASE_MS     10000
#define MP__REDIS_POOL_CLIENT_LEASE_MS_STR "10000"
/* Failures kept per map when the spec gives no array (as locally). */
#define MP__REDIS_POOL_ERRS_KEPT 16

/* ---- codecs (pure) ------------------------------------------------------ */

/* A task as a worker reads it from the stream entry's fields. Views into
 * the fields; fn is "n:<name>" or "r:<build-id hex>:<offset hex>:<path>". */
typedef struct mp__redis_task {
    uint64_t id;
    char client[MP__REDIS_POOL_CLIENT_MAX + 1];
    const char *fn;
    size_t fn_len;
    uint64_t n, isz, cap; /* items, input bytes per item, output cap per item */
    /* Items per task: an entry packs ceil(n / per) tasks of one map, ids
     * id, id + 1, ..., each of per items (the last of the rest); field
     * "k", absent: per = n, one task. */
    uint64_t per;
    const unsigned char *in;
    size_t in_len;
    /* A parallel-for entry (it has the field "lo", and no "isz"): its
     * items are the indexes lo, lo + 1, ..., lo + n - 1, cut into tasks
     * (chunks) of per indexes; isz is 0, in is the initial partial (cap
     * bytes, at most MP_POOL_ACC_MAX) and each task answers one item, its
     * partial (cap bytes). */
    bool is_for;
    int64_t lo;
} mp__redis_task;
/* Most tasks one entry packs. */
#define MP__REDIS_POOL_PACK_MAX 64

/* Parses nf field/value strings (f[0], f[1] the first pair). Returns 0, or
 * MP_EBADMSG for a missing, duplicate or malformed field, sizes that do
 * not add up, or bounds exceeded. */
int mp__redis_task_parse(const char *const *f, const size_t *lens, size_t nf, mp__redis_task *t);
/* The number of tasks a parsed entry packs (1 to MP__REDIS_POOL_PACK_MAX). */
uint64_t mp__redis_task_count(const mp__redis_task *t);
/* Task j (below mp__redis_task_count) of a parsed entry, as an entry of
 * its own: id + j, its items and their input. */
void mp__redis_task_part(const mp__redis_task *t, uint64_t j, mp__redis_task *out);
/* The items of the result record of one task (a part): its n, or 1 for a
 * parallel-for chunk. */
uint64_t mp__redis_task_items(const mp__redis_task *t);

/* A result record: "MPR1", task id (u64), code (i32: 0 when the task ran,
 * else MP_EWORKERLOST, MP_ENOFUNC, MP_EBADMSG, MP_ENOMEM for the whole
 * task), item count (u32), then per item its code (i32: the task's return
 * value) and output length (u32) and bytes (or a sentinel length, below).
 * Big-endian.
 * Version 2, "MPR2", is the same record in which the bytes of an item
 * that failed (its code not 0) are its task's message (mp_task_fail), at
 * most MP_TASK_MESSAGE_MAX - 1 of them, without a NUL; in "MPR1" such an
 * item has none. A worker writes "MPR2" only for a record that carries a
 * message (mp__redis_result_set_v2), so that a client that knows "MPR1"
 * alone still reads every other record. */
#define MP__REDIS_RESULT_HEAD 20
#define MP__REDIS_RESULT_ITEM 8
/* An item's length that says its task claimed a longer result than it was
 * allowed (*out_len above out_cap): the item has no payload and fails with
 * MP_EMSGSIZE, as in a local pool. mp__redis_result_next gives SIZE_MAX for it. */
#define MP__REDIS_RESULT_OVERSIZE UINT32_MAX
/* An item's length that says its executor died while it ran (the worker
 * lived on): the item's code is MP_EWORKERLOST and MP__REDIS_RESULT_LOST_LEN
 * bytes follow, the executor's pid and the signal that ended it (u32
 * each, 0 when it exited). mp__redis_result_next gives MP__REDIS_ITEM_LOST
 * as the length and those bytes as the data (mp__redis_result_lost). */
#define MP__REDIS_RESULT_LOST     (UINT32_MAX - 1)
#define MP__REDIS_RESULT_LOST_LEN 8
#define MP__REDIS_ITEM_LOST       (SIZE_MAX - 1)
typedef struct mp__redis_result {
    uint64_t id;
    int32_t code;
    uint32_t n;
    const unsigned char *p, *end; /* the items not read yet */
} mp__redis_result;

/* Checks the whole record (every item in bounds, nothing after the last)
 * before anything is read. 0 or MP_EBADMSG. */
int mp__redis_result_decode(const void *buf, size_t len, mp__redis_result *out);
/* The next item of a decoded record: 0, or MP_ERANGE after the last. */
int mp__redis_result_next(mp__redis_result *r, int32_t *code, const unsigned char **data,
                          size_t *len);

void mp__redis_result_put_head(unsigned char *p, uint64_t id, int32_t code, uint32_t n);
/* Marks the record whose head is at p as version 2 (it carries messages). */
void mp__redis_result_set_v2(unsigned char *p);
void mp__redis_result_put_item(unsigned char *p, int32_t code, uint32_t len);
/* A lost item: MP__REDIS_RESULT_ITEM + MP__REDIS_RESULT_LOST_LEN bytes. */
void mp__redis_result_put_lost(unsigned char *p, pid_t pid, int sig);
/* The pid and signal of a lost item's data. */
void mp__redis_result_lost(const unsigned char *data, pid_t *pid, int *sig);

/* Client ids and the keys: 0 or MP_EBADMSG / MP_ENOMEM. */
bool mp__redis_pool_client_ok(const char *s, size_t len);
/* *out = "<prefix>pool:<name>:<what>" (malloc'd), the name escaped as an
 * object's (mp__redis_key). 0, MP_EINVAL (bad name) or MP_ENOMEM. */
int mp__redis_pool_key(char **out, const char *prefix, const char *name, const char *what);

/* ---- client ------------------------------------------------------------- */

typedef struct mp__redis_async mp__redis_async;

/* One task on the stream: a map chunk of n items from first, or an apply. */
#define MP__REDIS_POOL_EID_MAX 48 /* a stream entry id: "<ms>-<seq>" */
typedef struct mp__redis_slot {
    mp__redis_async *a; /* NULL: answered or abandoned */
    uint64_t first;
    /* Its entry on the stream, "<eid_ms>-<eid_seq>" (0-0: unknown); the
     * tasks of a packed entry share it. 32 bytes a task: a map's slots
     * are written once and read once, so their size is memory traffic. */
    uint64_t eid_ms;
    uint32_t eid_seq;
    uint32_t n;
} mp__redis_slot;

struct mp__redis_pool;

/* A stream entry id, <ms>-<seq> (0-0: unknown). */
typedef struct mp__redis_eid {
    uint64_t ms;
    uint32_t seq;
} mp__redis_eid;

#define MP__REDIS_POOL_BATCH 64
/* The bound on held tasks: at most MP__REDIS_POOL_BATCH of them, holding
 * at most this many input bytes together (a larger input goes out alone). */
#define MP__REDIS_POOL_UNSENT_BYTES ((size_t)1 << 20)
/* The sender sends held tasks this long after the oldest was accepted. */
#define MP__REDIS_POOL_UNSENT_NS 1000000

/* An apply_async task accepted but not yet on the stream: its id (its
 * slot is taken), and its function's wire name and its input, copied. */
typedef struct mp__redis_held {
    uint64_t id;
    size_t fn_len;
    size_t in_len, cap;
    char *buf; /* fn_len bytes of name, then in_len bytes of input */
} mp__redis_held;

/* A batch of held tasks the sender's thread put on the stream (or failed
 * to), for the owner to record in the slots (mp__redis_pool_sent). */
typedef struct mp__redis_sent {
    struct mp__redis_sent *next;
    int k, rc;
    uint64_t ids[MP__REDIS_POOL_BATCH];
    mp__redis_eid eids[MP__REDIS_POOL_BATCH];
} mp__redis_sent;

/* The client's sender (redis/redis_pool_sender.c): the held tasks, and a
 * thread that sends them MP__REDIS_POOL_UNSENT_NS after the oldest was
 * accepted, so that a held task never waits for the next pool call. The
 * owner thread sends them itself when they reach the bound and at the
 * start of every other call. mu guards every field but thread and
 * running; one batch is in flight at a time (busy), so the stream keeps
 * the order of acceptance. */
typedef struct mp__redis_sender {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    mp__redis_held held[MP__REDIS_POOL_BATCH];
    int n;
    size_t bytes;
    int64_t since;        /* mp__now_ns() when the oldest held was accepted */
    bool busy;            /* a batch is being sent (by either thread): */
    int busy_n;           /* its tasks */
    size_t busy_bytes;    /* and their input bytes (held and busy count for the bounds) */
    bool stop;            /* the thread is to return */
    bool alive;           /* the thread entered its loop (start waits for it) */
    mp__redis_sent *sent; /* batches the thread sent, newest first */
    /* Called by the thread every tick_ns (outside mu), when set before
     * mp__redis_sender_start: the client's periodic duties. */
    void (*tick)(struct mp__redis_pool *p);
    int64_t tick_ns;
    bool running; /* the thread runs (owner only) */
    pthread_t thread;
} mp__redis_sender;

typedef struct mp__redis_pool {
    mp__pool_head head; /* first: the public handle is the struct */
    mp__redis *conn;
    pid_t owner;
    char *k_tasks, *k_results, *k_client, *k_cancel;
    char client[MP__REDIS_POOL_CLIENT_MAX + 1];
    int64_t beat_ns;  /* atomic: mp__now_ns of the last client heartbeat that succeeded */
    int lapse;        /* atomic: a heartbeat came a lease or more after the one before */
    uint64_t next_id; /* the next task id */
    /* Outstanding tasks by id: slots[id - base] for base <= id < next_id. */
    mp__redis_slot *slots;
    uint64_t base;
    size_t slots_cap;
    size_t unfinished;     /* mp__redis_async not done */
    char run_id[48];       /* the server's run_id when last seen ("": unknown) */
    mp__redis_async *live; /* every mp__redis_async of the pool */
    bool closed, terminated;
    bool no_blmove; /* the server has no BLMOVE (before Redis 6.2) */
    /* Results at the head of the list that were delivered and are still
     * to be removed: a result leaves the list only once it was received
     * (LRANGE, then LTRIM with the next command), so a reply lost with the
     * connection loses no result. */
    size_t trim;
    mp__redis_sender tx;  /* apply_async tasks accepted, not yet sent */
    mp__pool_meter meter; /* progress (the options progress, progress_cb) */
} mp__redis_pool;

struct mp__redis_async {
    mp__pool_head head;   /* first: the public handle is the struct */
    mp__redis_pool *pool; /* NULL once the pool is destroyed */
    mp__redis_async *next, *prev;
    bool done, is_map;
    int rc;
    size_t pending; /* tasks without a result */
    mp_async_cb cb, err_cb;
    void *user;
    /* apply */
    unsigned char *res;
    size_t res_len, out_cap;
    /* map */
    char *out;
    size_t out_size, n;
    mp_task_error *errs;
    size_t errs_cap, nerr;
    size_t *n_errors_out;
    mp_task_error local_errs[MP__REDIS_POOL_ERRS_KEPT];
    struct mp__redis_imap *it;
    /* parallel-for (is_for; also is_map): a slot's first is its chunk's
     * offset from begin, step the indexes per chunk; each partial is
     * reduced into result as it arrives */
    bool is_for;
    int64_t begin;
    uint64_t step;
    size_t acc_size;
    mp_reduce_fn reduce;
    void *result;
    /* items (progress) of its tasks that have not ended */
    uint64_t items_left;
};

typedef struct mp__redis_imap {
    mp__pool_head head; /* first: the public handle is the struct */
    mp__redis_async *a;
    bool ordered;
    size_t out_size, n;
    unsigned char *buf;    /* n * out_size */
    unsigned char *status; /* per item: 0 pending, 1 ok, 2 failed */
    mp_task_error *ierr;   /* per item, for failed ones */
    size_t *fifo;          /* unordered: indexes in order of arrival */
    size_t fifo_head, fifo_len;
    size_t next, given; /* ordered: next index to give */
} mp__redis_imap;

/* The distributed pool's operations (pool/pool_backend.h), which its
 * handles name and the Redis manager backend registers
 * (redis/redis_pool.c). Also the functions below, which take the handles
 * of this backend only and behave as the public function of their name
 * on a distributed pool (multiproc/worker.h). */
extern const mp__pool_backend mp__redis_pool_backend;

int mp__redis_pool_create(mp_pool **out, const mp_pool_opts *o);
int mp__redis_pool_apply_async(mp_pool *p, mp_task_fn fn, void *ctx, const void *in, size_t in_len,
                               size_t out_cap, mp_async_cb cb, mp_async_cb err_cb, void *user,
                               mp_async **out);
int mp__redis_pool_map_async(mp_pool *p, const mp_map_spec *s, mp_async_cb cb, mp_async_cb err_cb,
                             void *user, mp_async **out);
int mp__redis_pool_imap(mp_pool *p, const mp_map_spec *s, bool ordered, mp_imap **out);
int mp__redis_pool_for(mp_pool *p, const mp_for_spec *s, double timeout);
int mp__redis_pool_close(mp_pool *p);
int mp__redis_pool_terminate(mp_pool *p);
int mp__redis_pool_join(mp_pool *p, double timeout);
int mp__redis_pool_poll(mp_pool *p);
int mp__redis_pool_pids(mp_pool *p, pid_t *out, size_t cap);
void mp__redis_pool_destroy(mp_pool *p);

int mp__redis_async_wait(mp_async *a, double timeout);
int mp__redis_async_get(mp_async *a, void *out, size_t out_cap, size_t *out_len, double timeout);
bool mp__redis_async_ready(mp_async *a);
int mp__redis_async_successful(mp_async *a);
int mp__redis_async_error(const mp_async *a, size_t i, mp_task_error *out);
void mp__redis_async_destroy(mp_async *a);
int mp__redis_async_cancel(mp_async *a);

int mp__redis_imap_next(mp_imap *it, void *item, size_t *index, mp_task_error *err, double timeout);
void mp__redis_imap_destroy(mp_imap *it);
size_t mp__redis_imap_item_size(const mp_imap *it);

/* ---- worker heartbeats and leases (redis/redis_pool_lease.c) ------------ */

#define MP__REDIS_POOL_GROUP "workers"
/* The heartbeat key lives this many heartbeat intervals. */
#define MP__REDIS_POOL_BEAT_TTL 3

/* A serving worker's heartbeat: every interval the key
 * <prefix>pool:<n>:worker:<consumer> is set again with a TTL of
 * MP__REDIS_POOL_BEAT_TTL intervals, and the idle time of the entries the
 * worker holds to run is reset (their leases renewed), from a thread of
 * its own, so that a long task neither lets the key expire nor gets its
 * entry claimed by another worker. The thread shares the worker's
 * connection, which the worker's loop never holds for longer than half
 * an interval; the loop also beats when one is due. */
/* An entry of the batch a worker holds: its id ("": not renewed), the
 * client and task id it names ("": unknown), and whether the worker must
 * not run it or answer it (cancelled, or its client's lease lapsed). */
typedef struct mp__redis_beat_entry {
    char eid[MP__REDIS_POOL_EID_MAX];
    char client[MP__REDIS_POOL_CLIENT_MAX + 1];
    char id[24];
    bool dropped;
} mp__redis_beat_entry;

/* What a worker last learned of a client's lease. */
typedef struct mp__redis_client_seen {
    char client[MP__REDIS_POOL_CLIENT_MAX + 1];
    bool alive;
    int64_t at; /* mp__now_ns of the beat that told */
} mp__redis_client_seen;
#define MP__REDIS_BEAT_CLIENTS 32

/* The samples of a worker's count of answered tasks kept for its rate
 * (one per beat), and the window the rate covers. */
#define MP__REDIS_BEAT_SAMPLES   16
#define MP__REDIS_BEAT_WINDOW_NS 5000000000LL

typedef struct mp__redis_beat {
    mp__redis *conn;      /* borrowed */
    const char *k_tasks;  /* borrowed */
    const char *consumer; /* borrowed */
    char *k_beat, *k_beat_prefix, *k_client_prefix, *k_cancel_prefix;
    char ttl_ms[24];
    int64_t interval_ns;
    int64_t last_beat;          /* atomic: mp__now_ns of the last beat that succeeded */
    pthread_mutex_t mu;         /* guards held, nheld, gen, clients, stop */
    mp__redis_beat_entry *held; /* the batch's entries, by index in the read's reply */
    size_t nheld;
    uint64_t gen; /* changes with held */
    mp__redis_client_seen clients[MP__REDIS_BEAT_CLIENTS];
    pthread_cond_t cv;
    bool stop, started;
    bool alive; /* the thread entered its loop (start waits for it) */
    pthread_t thread;
    /* What every beat publishes in the heartbeat hash: the host, pid and
     * executors (fixed), the tasks answered and those that failed
     * (atomic: mp__redis_beat_count), and the answered tasks per second
     * over the last MP__REDIS_BEAT_WINDOW_NS, from the samples (mu). */
    char host[64], pid[16], executors[16];
    uint64_t done, failed;
    int64_t sample_t[MP__REDIS_BEAT_SAMPLES];
    uint64_t sample_done[MP__REDIS_BEAT_SAMPLES];
    unsigned nsamples;
} mp__redis_beat;

/* Sets up l and beats once (before the worker reads anything, so that no
 * entry is ever pending on a consumer without a heartbeat), then starts
 * the thread. conn, name, k_tasks, consumer: borrowed until
 * mp__redis_beat_stop. 0, a connection error or MP_ENOMEM/MP_EAGAIN. */
int mp__redis_beat_start(mp__redis_beat *l, mp__redis *conn, const char *name, const char *k_tasks,
                         const char *consumer, double interval, unsigned executors);
/* Adds to the worker's counts of answered and failed tasks, which the
 * next beat publishes. Safe from any thread. */
void mp__redis_beat_count(mp__redis_beat *l, uint64_t done, uint64_t failed);
/* The entries of a batch the worker is about to run (the ids of those
 * well formed): their leases are renewed until mp__redis_beat_release,
 * and every beat tells which of them were cancelled or belong to a client
 * whose lease lapsed. When a client of the batch was not checked for two
 * intervals, it beats at once (so a batch of a dead client is not run);
 * else the liveness it knows is used (also when that beat fails).
 * 0 or MP_ENOMEM. */
int mp__redis_beat_hold(mp__redis_beat *l, const redisReply *entries);
void mp__redis_beat_release(mp__redis_beat *l);
/* Whether the held entry i (its index in the batch) must be neither run
 * nor answered, as of the last beat: the worker acknowledges and deletes
 * it without a result. A task runs in the worker, so one already running
 * finishes; the worker checks again before answering it. */
bool mp__redis_beat_dropped(mp__redis_beat *l, size_t i);
/* Beats now if an interval has passed since the last beat. */
int mp__redis_beat_due(mp__redis_beat *l);
/* Claims for l's consumer up to count entries pending on consumers whose
 * heartbeat key has expired, and removes such consumers once they hold
 * nothing (one script, so no entry is claimed twice). *claimed: the
 * XCLAIM reply (entries), or NULL when there was nothing to claim. */
int mp__redis_beat_reap(mp__redis_beat *l, unsigned long count, redisReply **claimed);
/* Stops the thread (if started), deletes the heartbeat key, removes the
 * consumer if it holds nothing, and frees l's keys. */
void mp__redis_beat_stop(mp__redis_beat *l);

int mp__redis_pool_worker_serve(struct mp_manager *m, const char *pool_name,
                                const mp_worker_opts *opts);
int mp__redis_pool_worker_stop(struct mp_manager *m, const char *pool_name);

/* The pool of a distributed p, if this process owns it: 0 or MP_EPERM. */
int mp__redis_pool_check(mp_pool *p, mp__redis_pool **out);

/* One entry: n items from first, isz input bytes each, cap output bytes
 * each (apply: one item of in_len bytes), as one task, or (per > 0) as
 * ceil(n / per) tasks of per items (the last of the rest), packed. */
typedef struct mp__redis_chunk {
    uint64_t first;
    uint32_t n, per;
    size_t isz, cap;
    const void *in;
    size_t in_len;
    /* A parallel-for entry when step > 0: the indexes [lo, lo + span)
     * (first: lo's offset from the for's begin), one task per step of
     * them (the last of the rest); in is the initial partial and cap its
     * size; n, per and isz are unused. */
    int64_t lo;
    uint64_t span, step;
} mp__redis_chunk;
/* Submits k (1..MP__REDIS_POOL_BATCH) entries of a in one pipelined round trip. */
int mp__redis_pool_submit(mp__redis_pool *p, mp__redis_async *a, const char *fn, size_t fn_len,
                          int k, const mp__redis_chunk *chunks);
/* The client's heartbeat: sets its key <prefix>pool:<n>:client:<c> and
 * renews its result list and cancel set, all with a TTL of the client
 * lease (one pipelined round trip). Safe from any thread (the connection
 * serialises commands; the pool's keys do not change after create; the
 * state it keeps is atomic). A beat a lease or more after the previous
 * one marks the lease lapsed (see mp__redis_client_beat_due).
 * 0 or a connection error. */
int mp__redis_client_beat(mp__redis_pool *p);
/* mp__redis_client_beat if a third of the lease has passed since the
 * last; then, if a heartbeat (of any thread) found that the lease had
 * lapsed, withdraws every outstanding task and fails it with
 * MP_ECONNRESET (workers drop the tasks of a client without a key). In
 * the thread that uses the pool only. */
int mp__redis_client_beat_due(mp__redis_pool *p);
/* Withdraws the outstanding tasks of a (NULL: of every mp_async): a
 * script, up to 256 tasks per call and round trip, removes the
 * entry of a task not yet delivered to a worker from the stream, and
 * adds the id of one delivered (running) to the client's cancel set.
 * Does not touch the slots. 0 or a connection error. */
int mp__redis_pool_withdraw(mp__redis_pool *p, const mp__redis_async *a);
/* Accepts one apply task of a (1 item, c->first 0): sends it at once when
 * the pool has nothing else outstanding, else keeps a copy among the
 * held tasks, which go out together (one round trip) when they reach
 * the bound (sent by the caller), MP__REDIS_POOL_UNSENT_NS after the
 * oldest was accepted (sent by the sender's thread), or at the next
 * mp__redis_pool_flush. 0, or MP_ENOMEM / a connection error (then a has
 * no task). (redis/redis_pool_sender.c) */
int mp__redis_pool_enqueue(mp__redis_pool *p, mp__redis_async *a, const char *fn, size_t fn_len,
                           const mp__redis_chunk *c);
/* Sends the held tasks, in one round trip, after any batch the thread is
 * sending, and records what the thread sent. If sending fails, their
 * results fail with the error, which it returns. Every pool operation
 * but apply_async calls it first: a task accepted by apply_async is on
 * the stream, or its result failed, when the next one returns. */
int mp__redis_pool_flush(mp__redis_pool *p);
/* Starts the sender's thread (signals blocked). If it cannot start,
 * apply_async never holds a task: each goes out at once. */
void mp__redis_sender_start(mp__redis_pool *p);
/* Owner, after the last flush: stops the thread, frees what is left. In
 * a forked child (no thread there): frees the held copies only. */
void mp__redis_sender_stop(mp__redis_pool *p, bool owner);

/* k XADDs in one pipelined round trip: entry i holds the tasks of
 * chunks[i] from id ids[i], function fn[i]; the entry ids into eids.
 * Reads only what never changes in p: safe from the sender's thread. 0 or
 * a connection error. */
int mp__redis_pool_send(mp__redis_pool *p, int k, const uint64_t *ids, const char *const *fn,
                        const size_t *fn_len, const mp__redis_chunk *chunks, mp__redis_eid *eids);
/* Owner: records the entry ids of single-task entries sent (rc 0), or
 * fails their results with rc. */
void mp__redis_pool_sent(mp__redis_pool *p, int k, const uint64_t *ids, const mp__redis_eid *eids,
                         int rc);
/* Owner: room for k more slots. 0 or MP_ENOMEM. */
int mp__redis_pool_reserve(mp__redis_pool *p, size_t k);
/* Takes results off the client's list (after mp__redis_pool_flush). block: waits for the first for
 * at most a second and the deadline; returns 0 (results taken, or a quiet
 * second: call again) or MP_ETIMEDOUT (the deadline passed). Else never
 * waits. Or a connection error. */
int mp__redis_pool_pump(mp__redis_pool *p, const mp__deadline *d, bool block);
/* The wire name of fn: "n:<name>" or "r:<ref>", in buf. */
int mp__redis_pool_fn_spec(mp_task_fn fn, char *buf, size_t cap, size_t *len);
/* The same for a parallel-for function (its name from mp_for_register). */
int mp__redis_pool_for_spec(mp_for_fn fn, char *buf, size_t cap, size_t *len);
/* Counts items of a (NULL: of no mp_async) as ended, for the progress of
 * p (reported by mp__redis_pool_pump, throttled, and by join). */
void mp__redis_pool_count_done(mp__redis_pool *p, mp__redis_async *a, uint64_t items);
void mp__redis_async_link(mp__redis_pool *p, mp__redis_async *a);
void mp__redis_async_finish(mp__redis_async *a);
void mp__redis_async_record(mp__redis_async *a, const mp_task_error *e);
/* Fails a result that is not done with code: its tasks are given up. */
void mp__redis_async_abandon(mp__redis_async *a, int code);
/* Starts a map whose items go to the iterator it (NULL: to s->out). */
int mp__redis_pool_map_start(mp_pool *pool, const mp_map_spec *s, struct mp__redis_imap *it,
                             mp__redis_async **out);

#endif /* MULTIPROC_REDIS_POOL_H */
