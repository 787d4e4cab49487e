/* The Redis backend of the manager (built when hiredis is found; see
 * docs/redis.md, "Redis backend"). Not installed.
 *
 * Layers, one file each:
 *   redis/redis_url.c      the URL and its options (pure, unit-tested)
 *   redis/redis_conn.c     a connection: connect, AUTH, SELECT, deadlines,
 *                    reconnect, fork; runs commands under its mutex on a
 *                    socket it polls itself (hiredis formats and parses)
 *   redis/redis_reply.c    the checks every reply passes before it is read, and
 *                    the value codec (pure, fuzzed: fuzz/fuzz_redis_reply.c)
 *   redis/redis_manager.c  the backend table, names, object handles
 *   redis/redis_dict.c, redis/redis_list.c, redis/redis_sync.c   the object families
 *   redis/redis_ops.c      the operation tables of the object types
 *
 * A Redis-backed object is a process-local handle (malloc) that starts with
 * an mp__remote_head (base/internal.h): backend MP__BACKEND_REDIS, and the
 * operation table of its type (redis/redis_ops.c), through which the public
 * functions of the type reach the functions declared here. */
#ifndef MULTIPROC_REDIS_INTERNAL_H
#define MULTIPROC_REDIS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "heap/heap_object.h"
#include "containers/containers_remote.h"
#include "queue/queue_remote.h"
#include "sync/sync_remote.h"

/* ---- URL ---------------------------------------------------------------- */

#define MP__REDIS_HOST_MAX   255
#define MP__REDIS_PREFIX_MAX 128

/* redis[s]://[[user]:password@]host[:port][/db][?option=value&...]
 * Options: prefix=<key prefix> (default "mp:"), timeout=<seconds> (default
 * 5: the deadline of each call, its connect, sends and reads together),
 * reconnect=0|1 (default 0), lease=<seconds>
 * (default 30: how long a lock stays held without a release). */
typedef struct mp__redis_url {
    bool tls; /* rediss:// */
    char host[MP__REDIS_HOST_MAX + 1];
    int port;
    int db;
    char *user;     /* NULL: the default user */
    char *password; /* NULL: no AUTH */
    char prefix[MP__REDIS_PREFIX_MAX + 1];
    double timeout;
    double lease;
    bool reconnect;
} mp__redis_url;

/* Parses url into u (strings owned by u: mp__redis_url_fini). Returns 0 or
 * MP_EINVAL (malformed URL, bad port/db/option), MP_ENOMEM. Pure. */
int mp__redis_url_parse(mp__redis_url *u, const char *url);
void mp__redis_url_fini(mp__redis_url *u);

/* ---- replies (pure: no I/O, no global state) ---------------------------- */

/* What a command's reply must look like. */
typedef enum mp__redis_reply_kind {
    MP__RR_STATUS = 1, /* +OK */
    MP__RR_INT,        /* :n */
    MP__RR_STR,        /* $n, not nil */
    MP__RR_STR_NIL,    /* $n or nil */
    MP__RR_ARRAY,      /* array of strings (not nil, no nil element) */
    MP__RR_EXEC,       /* EXEC: array (checked element by element) or nil */
    MP__RR_ANY_VALUE,  /* anything but an error (element of an EXEC reply) */
} mp__redis_reply_kind;

/* Checks a reply tree against kind before any field of it is read.
 * Returns 0, the error an error reply stands for (mp__redis_error_code),
 * or MP_EBADMSG for a reply of another shape or with inconsistent fields
 * (NULL string with a length, NULL element, nesting deeper than 4). */
int mp__redis_reply_check(const redisReply *r, mp__redis_reply_kind kind);

/* The most elements an array header of a reply may announce. hiredis 0.14
 * allocates a whole array as soon as it reads the header, before any
 * element arrives, so "*555555550\r\n" from a broken or hostile server
 * would make the client reserve 4 GiB. 2^26 elements (512 MiB of pointers)
 * is above any reply the library asks for except a snapshot of a container
 * of more than 2^26 entries (2^25 for a dict's HGETALL). */
#define MP__REDIS_ARRAY_MAX (1 << 26)

/* Makes a hiredis reader refuse array headers above MP__REDIS_ARRAY_MAX:
 * the read then fails as out of memory (REDIS_ERR_OOM), and
 * mp__redis_array_refused() tells that case apart in the calling thread.
 * Returns 0 or MP_ENOMEM. */
int mp__redis_reader_bound(redisReader *rd);

/* True when the last out-of-memory failure of a reader in this thread was
 * a refused array header; clears the mark. */
bool mp__redis_array_refused(void);

/* The library error for a Redis error reply's text: NOAUTH, WRONGPASS and
 * "invalid password" are MP_EAUTH, OOM is MP_ENOMEM, LOADING/BUSY/MASTERDOWN
 * are MP_EAGAIN, "index out of range" is MP_ERANGE, WRONGTYPE is MP_EPROTO,
 * anything else MP_ESERVER. */
int mp__redis_error_code(const char *s, size_t len);

/* Values in Redis: one tag byte, then the payload: 'b' bytes, 's' text,
 * 'i' an int64 in decimal, 'd' a double as %.17g (text, so that machines
 * of any byte order read the same values and redis-cli shows them). */
#define MP__REDIS_NUM_MAX 40
/* Encodes v: *out points to the encoded bytes (num, a caller buffer of
 * MP__REDIS_NUM_MAX bytes, for numbers; *heap, malloc'd, for bytes and
 * text: free it). Returns the encoded length, or MP_ENOMEM. */
int mp__redis_encode(const mp_item *v, char num[MP__REDIS_NUM_MAX], char **heap, const char **out,
                     size_t *out_len);
/* A value checked and encoded for a command: send p/len, then free heap
 * (NULL unless the value needed an allocation). */
typedef struct mp__redis_enc {
    char num[MP__REDIS_NUM_MAX];
    char *heap;
    const char *p;
    size_t len;
} mp__redis_enc;

/* Checks v (mp__item_check) and encodes it into e. Returns the encoded
 * length, MP_EINVAL or MP_ENOMEM; e->heap is NULL or to be freed. */
static inline int mp__redis_enc_item(mp__redis_enc *e, const mp_item *v)
{
    e->heap = NULL;
    int rc = mp__item_check(v);
    return rc < 0 ? rc : mp__redis_encode(v, e->num, &e->heap, &e->p, &e->len);
}

/* Decodes a stored value: *out views s (bytes, text) or num (numbers).
 * MP_EBADMSG for an unknown tag or a malformed number. Pure. */
int mp__redis_decode(const char *s, size_t len, mp_item *out, void *num);
/* True when s[0..len) is a number exactly as this library writes it: an
 * integer is 0 or -?[1-9][0-9]* (at most 20 characters); a float (is_float)
 * also -?inf, -?nan, and -?D(.D+)?(e[+-]D+)? with D an integer's digits (at
 * most MP__REDIS_NUM_MAX - 1 characters: what %.17g and INCRBYFLOAT
 * write). Leading spaces, '+', hex, NaN payloads and "infinity" are not. */
bool mp__redis_num_ok(const char *s, size_t len, bool is_float);
/* A strict decimal int64 (a counter's text), or MP_EBADMSG (redis/redis_objects.c). */
int mp__redis_parse_int(const char *s, size_t len, int64_t *out);

/* Lua that the scripts reading the library's own data begin with, so that
 * data another program wrote is refused on the server, before anything is
 * changed (Redis runs Lua 5.1: numbers are doubles, so integers are
 * compared as text):
 *   isnum(s, fl)  mp__redis_num_ok(s, #s, fl)
 *   dcmp(a, b)    -1, 0 or 1 as the integers a and b (isnum) compare
 *   kind(k)       the Redis type of key k: 'none', 'string', 'hash'...
 *   EBADMSG, EPROTO   MP__REDIS_LUA_BADMSG and MP__REDIS_LUA_PROTO
 * Scripts answer MP__REDIS_LUA_BADMSG for data this library did not write and
 * MP__REDIS_LUA_PROTO for a key of another Redis type (mp__redis_lua_error). */
#define MP__REDIS_LUA_HELPERS                                                                      \
    "local function isnum(s, fl) "                                                                 \
    "if #s == 0 or #s > (fl and 39 or 20) then return false end "                                  \
    "local b = string.match(s, '^%-?(.*)$') "                                                      \
    "if fl and (b == 'inf' or b == 'nan') then return true end "                                   \
    "local i, r = string.match(b, '^(%d+)(.*)$') "                                                 \
    "if not i or (#i > 1 and string.sub(i, 1, 1) == '0') then return false end "                   \
    "if not fl then return r == '' and s ~= '-0' end "                                             \
    "local f = string.match(r, '^%.%d+') or '' "                                                   \
    "r = string.sub(r, #f + 1) "                                                                   \
    "return r == '' or string.match(r, '^e[%+%-]%d+$') ~= nil end "                                \
    "local function dcmp(a, b) "                                                                   \
    "local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-' "                       \
    "if na ~= nb then return na and -1 or 1 end "                                                  \
    "if na then a, b = string.sub(a, 2), string.sub(b, 2) end "                                    \
    "local c = 0 "                                                                                 \
    "if #a ~= #b then c = #a < #b and -1 or 1 elseif a ~= b then c = a < b and -1 or 1 end "       \
    "return na and -c or c end " MP__REDIS_LUA_KIND
/* The part of MP__REDIS_LUA_HELPERS without the numbers: kind, EBADMSG,
 * EPROTO (the scripts of locks and conditions, which must stay short). */
#define MP__REDIS_LUA_KIND                                                                         \
    "local function kind(k) return redis.call('TYPE', k).ok end "                                  \
    "local EBADMSG, EPROTO = -1000, -1001 "
#define MP__REDIS_LUA_BADMSG (-1000)
#define MP__REDIS_LUA_PROTO  (-1001)
/* The library error a script's answer stands for: MP_EBADMSG, MP_EPROTO,
 * or 0 for any other answer. */
static inline int mp__redis_lua_error(long long answer)
{
    return answer == MP__REDIS_LUA_BADMSG  ? MP_EBADMSG
           : answer == MP__REDIS_LUA_PROTO ? MP_EPROTO
                                           : 0;
}

/* One more round of an optimistic update that lost a race (WATCH ...
 * EXEC aborted): sleeps a random time that grows with *lost (up to 32 ms,
 * so that the clients that collide spread out), or returns MP_EAGAIN once
 * dl has passed. (redis/redis_objects.c) */
int mp__redis_retry(const mp__deadline *dl, unsigned *lost);

/* ---- connection --------------------------------------------------------- */

typedef struct mp__redis mp__redis;

/* Connects (AUTH, SELECT, PING) with u (taken over: *u is zeroed).
 * Errors: MP_EINVAL, MP_ENOSYS (rediss://), MP_ECONNREFUSED, MP_ETIMEDOUT,
 * MP_EAUTH, MP_ESERVER, MP_EIO, MP_ENOMEM. */
int mp__redis_open(mp__redis **out, mp__redis_url *u);
void mp__redis_ref(mp__redis *r);
/* Drops a reference; the last one closes the connection. */
void mp__redis_unref(mp__redis *r);
const char *mp__redis_prefix(const mp__redis *r);
/* The lease of the locks opened through this connection (URL option). */
double mp__redis_lease(const mp__redis *r);
/* The URL's timeout: also how long an optimistic update that keeps losing
 * races retries (mp_dict_update_with, mp_list_sort), since those calls
 * have no timeout of their own. */
double mp__redis_timeout(const mp__redis *r);

/* One command, argv[0..argc) with lengths, whose reply must be of kind.
 * On success *reply is the checked reply (freeReplyObject) — NULL may be
 * passed when the reply is not wanted. The URL's timeout is a deadline for
 * the whole call: a reconnect, the send and every read; EINTR never
 * extends it. Errors: the reply's (see mp__redis_reply_check),
 * MP_ETIMEDOUT (no whole reply before the deadline: the connection is
 * dropped, since the rest of the reply may still come),
 * MP_ECONNRESET (connection lost; with reconnect=0 it stays lost),
 * MP_ECONNREFUSED (reconnect failed), MP_EBADMSG, MP_ENOMEM. */
int mp__redis_cmd(mp__redis *r, mp__redis_reply_kind kind, redisReply **reply, int argc,
                  const char **argv, const size_t *lens);

/* Several commands on one connection, none interleaved with another
 * thread's (WATCH ... MULTI ... EXEC): begin locks and connects, call runs
 * one command, end unlocks (and, when a call failed, discards the state of
 * the connection: an UNWATCH/DISCARD is sent or the connection dropped).
 * begin starts the deadline (the URL's timeout) that bounds it and every
 * call up to end; block_s: extra seconds a blocking command (BLPOP) may
 * wait on the server, added to the deadline of that call, or 0. */
int mp__redis_begin(mp__redis *r);
int mp__redis_call(mp__redis *r, mp__redis_reply_kind kind, redisReply **reply, double block_s,
                   int argc, const char **argv, const size_t *lens);
void mp__redis_end(mp__redis *r);

/* ---- object handles ----------------------------------------------------- */

/* A Redis-backed dict or list (and the dict under a namespace): the full
 * key of its data and a reference on the connection. */
typedef struct mp__redis_obj {
    mp__remote_head rh; /* backend MP__BACKEND_REDIS; magic of the type */
    mp__redis *conn;
    size_t key_len;
    char key[]; /* mp__redis_key(prefix, type, name, NULL), NUL-terminated */
} mp__redis_obj;

/* Keys (docs/redis.md, "Key layout"): <prefix><tag>:<name> and
 * <prefix><tag>:<name>:<part>, the name escaped ('%' as "%25", ':' as
 * "%3A") so that it holds no ':'. The tag (dict, list, ns, queue, lock,
 * rlock, sem, cond, event, barrier, value, array, pool) ends at the first ':' after the
 * prefix and the name at the next, so no name of any type gives another
 * object's key, nor the names hash <prefix>names (no ':' after the prefix).
 * The longest key: */
#define MP__REDIS_KEY_MAX (MP__REDIS_PREFIX_MAX + 16 + 3 * MP_MANAGER_NAME_MAX + 48)
/* Writes the key of (tag, name, part) into buf, NUL-terminated (part
 * NULL: the object's main key). Returns its length, or MP_EINVAL (NULL or
 * empty name, name longer than MP_MANAGER_NAME_MAX, cap too small). Pure. */
int mp__redis_key(char *buf, size_t cap, const char *prefix, const char *tag, const char *name,
                  const char *part);

/* The names hash, <prefix>names (object name -> type), into buf. */
#define MP__REDIS_NAMES_KEY_MAX (MP__REDIS_PREFIX_MAX + 8)
void mp__redis_names_key(char buf[MP__REDIS_NAMES_KEY_MAX], const char *prefix);

/* Makes a handle for key <prefix><kind>:<escaped name>; ops: the table of
 * its type when the handle is given to the public functions (a dict,
 * list or event: redis/redis_ops.c), NULL for the key holder inside
 * another handle. */
int mp__redis_obj_new(mp__redis_obj **out, mp__redis *conn, uint32_t magic, const void *ops,
                      const char *kind, const char *name);
/* The key of o's part (<o's key>:<part>) into buf of MP__REDIS_KEY_MAX. */
void mp__redis_obj_part(const mp__redis_obj *o, const char *part, char buf[MP__REDIS_KEY_MAX]);
void mp__redis_obj_free(mp__redis_obj *o);
/* 0 when p is a live handle of that magic, else MP_EINVAL. */
int mp__redis_obj_check(const void *p, uint32_t magic);
/* Runs a command on o's key alone whose integer reply is a count (LLEN,
 * HLEN, DEL): 0 with *out, MP_EBADMSG for a negative count, or the error of
 * mp__redis_cmd. */
int mp__redis_obj_count(mp__redis_obj *o, const char *cmd, long long *out);

/* A malloc'd mp__blob (containers/item_internal.h) holding a value read from Redis,
 * so that the readers of the local containers can run on it unchanged. */
int mp__redis_blob(mp__blob **out, const mp_item *v);

/* ---- the object types' operations ----------------------------------------
 * The contracts of the slots of their tables (containers/containers_remote.h,
 * queue/queue_remote.h, sync/sync_remote.h), which redis/redis_ops.c fills.
 *
 * dict (redis/redis_dict.c) */
void mp__redis_dict_destroy(mp_dict *d);
int mp__redis_dict_set_item(mp_dict *d, const void *key, size_t key_len, const mp_item *value);
/* Runs fn on a private blob of key's value (MP_ENOENT when absent). */
int mp__redis_dict_read(const mp_dict *d, const void *key, size_t key_len,
                        int (*fn)(const mp__blob *, void *), void *arg);
int mp__redis_dict_len(const mp_dict *d, size_t *out);
int mp__redis_dict_delete(mp_dict *d, const void *key, size_t key_len);
int mp__redis_dict_pop(mp_dict *d, const void *key, size_t key_len, void **out, size_t *out_len,
                       mp_item_type *type);
int mp__redis_dict_setdefault(mp_dict *d, const void *key, size_t key_len, const mp_item *def,
                              void **out, size_t *out_len, mp_item_type *type);
int mp__redis_dict_update_with(mp_dict *d, const void *key, size_t key_len, mp_dict_update_fn fn,
                               void *user);
/* One script on the server: never fails for contention. */
int mp__redis_dict_add_int64(mp_dict *d, const char *key, int64_t delta, int64_t *result);
int mp__redis_dict_snapshot(const mp_dict *d, unsigned what, mp_snapshot **out);
int mp__redis_dict_clear(mp_dict *d);
int mp__redis_dict_popitem(mp_dict *d, void **key, size_t *key_len, void **value, size_t *value_len,
                           mp_item_type *type);

/* list (redis/redis_list.c) */
void mp__redis_list_destroy(mp_list *l);
int mp__redis_list_extend(mp_list *l, const mp_item *items, size_t n);
int mp__redis_list_insert(mp_list *l, long index, const mp_item *v);
int mp__redis_list_set(mp_list *l, long index, const mp_item *v);
int mp__redis_list_read(const mp_list *l, long index, int (*fn)(const mp__blob *, void *),
                        void *arg);
int mp__redis_list_pop(mp_list *l, long index, void **out, size_t *out_len, mp_item_type *type);
int mp__redis_list_remove(mp_list *l, const mp_item *v);
int mp__redis_list_len(const mp_list *l, size_t *out);
int mp__redis_list_clear(mp_list *l);
int mp__redis_list_slice(const mp_list *l, long start, long stop, mp_snapshot **out);
int mp__redis_list_sort(mp_list *l, mp_list_cmp_fn cmp, void *user);
int mp__redis_list_reverse(mp_list *l);
int mp__redis_list_imul(mp_list *l, long n);

/* value (redis/redis_objects.c): the public value handle (mp__redis_value_open).
 * Its typecode (0 for an invalid handle): */
char mp__redis_value_typecode(const mp_value *v);
/* The stored number as text, NUL-terminated ("0" when absent), or
 * MP_EBADMSG (too long for cap, embedded NUL). */
int mp__redis_value_get_text(mp_value *v, char *buf, size_t cap);
int mp__redis_value_set_text(mp_value *v, const char *text);
/* Atomic add of an integer on the server; the result must lie within
 * [min, max] (decimal texts), else nothing changes and MP_ERANGE. */
int mp__redis_value_add_range(mp_value *v, int64_t delta, const char *min, const char *max,
                              int64_t *result);
int mp__redis_value_add_float(mp_value *v, double delta, double *result);
void mp__redis_value_destroy(mp_value *v);

/* array (redis/redis_objects.c): the same over a Redis list of numbers. */
char mp__redis_array_typecode(const mp_array *a);
size_t mp__redis_array_len(const mp_array *a);
int mp__redis_array_get_text(mp_array *a, size_t i, char *buf, size_t cap);
int mp__redis_array_set_text(mp_array *a, size_t i, const char *text);
void mp__redis_array_destroy(mp_array *a);

/* The operation tables (redis/redis_ops.c): every handle given to the
 * public functions points to the table of its type. */
extern const mp__dict_ops mp__redis_dict_ops;
extern const mp__list_ops mp__redis_list_ops;
extern const mp__queue_ops mp__redis_queue_ops;
extern const mp__lock_ops mp__redis_lock_ops;
extern const mp__rlock_ops mp__redis_rlock_ops;
extern const mp__sem_ops mp__redis_sem_ops;
extern const mp__event_ops mp__redis_event_ops;
extern const mp__value_ops mp__redis_value_ops;
extern const mp__array_ops mp__redis_array_ops;
extern const mp__cond_ops mp__redis_cond_ops;
extern const mp__barrier_ops mp__redis_barrier_ops;

/* Calls fn once for each slot of the tables above: the type ("dict",
 * "queue", ...), the slot's name (the public function mp_<type>_<op>'s
 * suffix where there is one) and whether the slot is filled. An empty slot
 * is what multiproc/manager.h lists as not available on Redis. */
void mp__redis_ops_each(void (*fn)(const char *type, const char *op, bool filled, void *arg),
                        void *arg);

/* ---- queue, lock, event, value (redis/redis_queue.c, redis/redis_sync.c) -------------
 * Each handle starts with an mp__remote_head (backend MP__BACKEND_REDIS):
 * the public functions of the type reach these through its table. */
#define MP__MAGIC_RQUEUE     0x7551526du /* "mRQu" */
#define MP__MAGIC_REDIS_LOCK 0x6b4c526du
#define MP__MAGIC_REVENT     0x7645526du
#define MP__MAGIC_RVALUE     0x6156526du
#define MP__MAGIC_RSEM       0x6d53526du
#define MP__MAGIC_RCOND      0x6f43526du /* "mRCo" */
#define MP__MAGIC_RBARRIER   0x6142526du /* "mRBa" */

/* A queue of byte messages; maxsize 0 is unbounded, and the first opener
 * of a name fixes it for every client. put: 0, MP_EFULL (no room before
 * the timeout), MP_EMSGSIZE, connection errors. get: 0 and a malloc'd
 * message (with a NUL after it), MP_EEMPTY (nothing before the timeout). */
typedef struct mp__redis_queue mp__redis_queue;
int mp__redis_queue_open(mp__redis_queue **out, mp__redis *conn, const char *name, size_t maxsize,
                         bool joinable);
/* A joinable queue's task_done and join (MP_EINVAL on another): as
 * mp_queue_task_done and mp_queue_join. */
int mp__redis_queue_task_done(mp__redis_queue *q);
int mp__redis_queue_join(mp__redis_queue *q, double timeout);
/* Closes the queue for every client: later puts are MP_ECLOSED, gets
 * take what is left then answer MP_ECLOSED, and blocked gets wake. 0 (also
 * when it was closed). */
int mp__redis_queue_shut(mp__redis_queue *q);
void mp__redis_queue_close(mp__redis_queue *q);
int mp__redis_queue_put(mp__redis_queue *q, const void *data, size_t len, double timeout);
int mp__redis_queue_get(mp__redis_queue *q, void **data, size_t *len, double timeout);
int mp__redis_queue_qsize(mp__redis_queue *q, size_t *out);
/* Puts a message back at the head (a get_into whose buffer was short). */
int mp__redis_queue_unget(mp__redis_queue *q, const void *data, size_t len);
/* The capacity every client honours (0: unbounded). */
size_t mp__redis_queue_maxsize(const mp__redis_queue *q);
/* (redis/redis_objects.c) */
int mp__redis_queue_get_into(mp__redis_queue *q, void *buf, size_t cap, size_t *len,
                             double timeout);
int mp__redis_queue_put_many(mp__redis_queue *q, const mp_queue_msg *msgs, size_t n,
                             double timeout);
/* Up to n messages packed into buf, the first waited for up to timeout:
 * as mp_queue_get_many. */
int mp__redis_queue_get_many(mp__redis_queue *q, void *buf, size_t cap, size_t *lens, size_t n,
                             double timeout);
int mp__redis_queue_empty(mp__redis_queue *q);
/* The wait_begin, wait_finish and wait_end slots of the queue's table
 * (mp_wait; redis/redis_queue.c). */
int mp__redis_queue_wait_begin(mp__redis_queue *q, void **w, bool block, int *fd);
int mp__redis_queue_wait_finish(mp__redis_queue *q, void **w);
void mp__redis_queue_wait_end(mp__redis_queue *q, void **w);
int mp__redis_queue_full(mp__redis_queue *q);

/* A lock with a lease of lease seconds (0: 30 s). acquire: 0, MP_EOWNERDEAD
 * (held; the previous holder never released: it died or overran its
 * lease), MP_ETIMEDOUT, MP_EDEADLK (this process holds it through this
 * handle). release and renew (a fresh lease): 0, MP_EPERM (not held by
 * this process through this handle, or the lease ran out). */
typedef struct mp__redis_lock mp__redis_lock;
int mp__redis_lock_open(mp__redis_lock **out, mp__redis *conn, const char *name, double lease);
/* The same with keys <prefix><kind>:<name> ("rlock" for an RLock). */
int mp__redis_lock_open_kind(mp__redis_lock **out, mp__redis *conn, const char *name,
                             const char *kind, double lease);
void mp__redis_lock_close(mp__redis_lock *l);
int mp__redis_lock_acquire(mp__redis_lock *l, double timeout);
int mp__redis_lock_release(mp__redis_lock *l);
int mp__redis_lock_renew(mp__redis_lock *l);
/* The fencing token of this process's hold through this handle (the
 * count of acquisitions of the lock on the server when it was taken), or
 * MP_EPERM. */
int mp__redis_lock_token(mp__redis_lock *l, uint64_t *token);
/* Makes the handle an RLock's: its holder may acquire again (counted;
 * MP_EOVERFLOW at 2^32 - 1), and a release drops one level. */
void mp__redis_lock_set_recursive(mp__redis_lock *l);
/* 0 when this process holds it through this handle (nothing to mark: the
 * server keeps no "inconsistent" state), else MP_EPERM. */
int mp__redis_lock_consistent(mp__redis_lock *l);
/* Levels held by this process through this handle (an rlock), or 0. */
int mp__redis_lock_count(mp__redis_lock *l);
/* Whether anyone holds the lock on the server (1 or 0), and who: the
 * pid of the holder's token (tid 0: unknown to the server) and, when the
 * holder is this process through this handle, its levels (else 0:
 * unknown). MP_ESRCH when free; MP_EBADMSG or MP_EPROTO for keys this
 * library did not write. */
int mp__redis_lock_locked(mp__redis_lock *l);
int mp__redis_lock_owner(mp__redis_lock *l, pid_t *pid, pid_t *tid, uint32_t *depth);

/* Pipelined commands on one connection (redis/redis_conn.c): n commands, all
 * sent before any reply is read; each reply must be of kind. Returns 0 or
 * the first error (the others' replies are read and dropped). replies:
 * NULL, or n slots that receive the checked replies on success (free each
 * with freeReplyObject; all NULL on failure). */
int mp__redis_pipeline(mp__redis *r, mp__redis_reply_kind kind, int n, const int *argc,
                       const char *const *const *argv, const size_t *const *lens,
                       redisReply **replies);
/* The same, where one of the commands may block up to block_s seconds on
 * the server (added to the deadline). */
int mp__redis_pipeline_block(mp__redis *r, mp__redis_reply_kind kind, int n, const int *argc,
                             const char *const *const *argv, const size_t *const *lens,
                             redisReply **replies, double block_s);
/* Whether the connection reconnects after a loss (the URL's option). */
bool mp__redis_reconnects(const mp__redis *r);

/* A command sent on a side connection of r whose reply is read later (a
 * wait that polls the connection's fd with other descriptors: mp_wait).
 * send takes the side connection, sends argv and gives *out (held) and
 * its *fd; recv, once fd is readable, reads the reply (*rep) and gives
 * the connection back; abandon closes it instead (the reply will not be
 * read), without making r's connection lost. */
int mp__redis_side_send(mp__redis *r, int argc, const char **argv, mp__redis **out, int *fd);
int mp__redis_side_recv(mp__redis *r, mp__redis *side, redisReply **rep);
void mp__redis_side_abandon(mp__redis *r, mp__redis *side);

/* Whether the calling thread's blocking calls honour a signal or a cancel
 * (multiproc/interrupt.h): it is interruptible or watches a cancel. The
 * waits take the interruptible path below only then, so that the plain
 * one stays as it was. */
bool mp__redis_intr_armed(void);
/* As mp__redis_pipeline_block, over a side connection of r, the wait
 * honouring the interrupt settings: on a signal (interruptible) or a
 * triggered cancel, the command blocked on the server is ended there
 * (CLIENT UNBLOCK over r's connection: it answers as if its time ran out)
 * and the call returns MP_EINTR or MP_ECANCELED with every reply read, as
 * on 0: a blocking command that the server had served already answers
 * what it took (a popped element), which the caller must use or put back.
 * When the server refuses CLIENT ID or UNBLOCK, the replies are waited
 * for (block_s at most). Other errors: as mp__redis_pipeline_block, with
 * all replies NULL. */
int mp__redis_side_pipeline(mp__redis *r, mp__redis_reply_kind kind, int n, const int *argc,
                            const char *const *const *argv, const size_t *const *lens,
                            redisReply **replies, double block_s);

/* Lock tokens and waiter ids: "<pid>-<32 hex digits>" (mp__redis_new_token). */
#define MP__REDIS_TOKEN_MAX 48

/* What a condition over a lock uses (redis/redis_cond.c): the lock's
 * object and keys; hold copies the token and levels of this process's
 * hold (MP_EPERM: not held); drop forgets the hold once the server let
 * the lock go (the condition's wait script released it); retake acquires
 * it again without limit, under the token id (the waiter's id), and
 * restores count levels: 0, MP_EOWNERDEAD or a connection error.
 * enlisted: a notify moved id into the lock's wait set already, so the
 * retake begins with the wait for a release's grant, not with a try. */
const struct mp__redis_obj *mp__redis_lock_obj(const mp__redis_lock *l);
const char *mp__redis_lock_owner_key(const mp__redis_lock *l);
const struct mp__redis_wakers *mp__redis_lock_wakers(const mp__redis_lock *l);
bool mp__redis_lock_is_recursive(const mp__redis_lock *l);
/* The fence key, and the lease in ms as text: what a script that releases
 * the lock (MP__REDIS_LOCK_RELEASE) needs besides the keys above. */
const char *mp__redis_lock_fence_key(const mp__redis_lock *l);
void mp__redis_lock_lease_ms(const mp__redis_lock *l, char ms[24]);
int mp__redis_lock_hold(mp__redis_lock *l, char tok[MP__REDIS_TOKEN_MAX],
                        char me[MP__REDIS_TOKEN_MAX], uint32_t *count);
void mp__redis_lock_drop(mp__redis_lock *l);
int mp__redis_lock_retake(mp__redis_lock *l, uint32_t count, const char *id, bool enlisted);

/* Lua: refuses (with the error to answer) a lock key (KEYS[1]) or owner
 * key (KEYS[2]) that holds no token of this library: another Redis type,
 * or another text. Includes MP__REDIS_LUA_KIND. */
#define MP__REDIS_LOCK_CHECK                                                                       \
    MP__REDIS_LUA_KIND                                                                             \
    "local function bad(k) local t = kind(k) "                                                     \
    "if t == 'none' then return false end "                                                        \
    "if t ~= 'string' then return EPROTO end "                                                     \
    "if not string.match(redis.call('GET', k), '^%d+%-%x+$') then return EBADMSG end "             \
    "return false end "                                                                            \
    "local b = bad(KEYS[1]) or bad(KEYS[2]) if b then return b end "
/* Lua, after MP__REDIS_LUA_KIND: lk_release(tok, ms, me), with KEYS[1] and
 * KEYS[2] the lock and owner keys and KEYS[W], KEYS[L], KEYS[F] the wait
 * set, wake list and fence (numbers as string literals). It lets the lock
 * go when tok holds it and clears the owner key (one DEL of both keys);
 * when tok no longer holds it (its lease ran out), it clears the owner key
 * only if that names tok or tok's claim. It answers true when tok
 * held it, false when not, or the error (EPROTO, EBADMSG) of a key that
 * holds what this library does not write, with nothing changed. With
 * waiters enlisted, the lock is not freed but granted: a new token
 * "0-<fence in hex>" holds it (lease ms) and is pushed to the wake list,
 * and the waiter whose BLPOP takes it holds the lock with it, with no try
 * of its own. The grant is on the waiter's critical path, and on a cold
 * server every command a script runs costs a few µs, so that path runs
 * the fewest: the lock key's read (its equality with tok is its check),
 * the wait set's count, the fence's INCR (refused before anything is
 * written when the fence is no count), the push (refused, the INCR undone,
 * when the wake list is another type) and the lock key's write. The owner
 * key keeps the releaser's token until the grantee's claim turns it into
 * the grantee's: a grant that was taken (it is no longer in the wake list)
 * and whose lease ran out is then a holder that never released, claimed
 * or not, while a grant still in the list is none. The wake list is empty
 * while a token holds the lock (whatever sets the lock key clears it, and
 * only a release pushes to it); should it not be, the push leaves the
 * grant alone in it. The entries of waiters that died are left to the
 * acquirers to expire (a grant nobody takes is free for the next
 * acquirer). me, when not nil or "", is the waiter id of a holder by
 * grant: its entry, which its claim removes but may not have reached the
 * server yet (the claim is sent corked), is not counted as a waiter and
 * goes. */
#define MP__REDIS_LOCK_RELEASE(W, L, F)                                                            \
    "local function lk_release(tok, ms, me) "                                                      \
    "local v = redis.pcall('GET', KEYS[1]) if type(v) == 'table' then return EPROTO end "          \
    "if v == tok then "                                                                            \
    "  local n = redis.pcall('ZCARD', KEYS[" W "]) if type(n) == 'table' then return EPROTO end "  \
    "  if n > 0 and me and me ~= '' then n = n - redis.call('ZREM', KEYS[" W "], me) end "         \
    "  if n > 0 then "                                                                             \
    "    local f = redis.pcall('INCR', KEYS[" F "]) "                                              \
    "    if type(f) == 'table' then "                                                              \
    "      if string.find(f.err, 'WRONGTYPE', 1, true) then return EPROTO end return EBADMSG end " \
    "    local g = '0-' .. string.format('%x', f) "                                                \
    "    local p = redis.pcall('RPUSH', KEYS[" L "], g) "                                          \
    "    if type(p) == 'table' then redis.call('DECR', KEYS[" F "]) return EPROTO end "            \
    "    if p > 1 then redis.call('LTRIM', KEYS[" L "], -1, -1) end "                              \
    "    redis.call('SET', KEYS[1], g, 'PX', ms) return true "                                     \
    "  end "                                                                                       \
    "elseif v and (#v > 40 or not string.match(v, '^%d+%-%x+$')) then return EBADMSG end "         \
    "local o = redis.pcall('GET', KEYS[2]) if type(o) == 'table' then return EPROTO end "          \
    "if o and (#o > 40 or not string.match(o, '^%d+%-%x+$')) then return EBADMSG end "             \
    "if v == tok then redis.call('DEL', KEYS[1], KEYS[2]) return true end "                        \
    "if o and (o == tok or (string.sub(tok, 1, 2) == '0-' and "                                    \
    "string.match(o, '%-(%x+)$') == string.sub(tok, 3))) then redis.call('DEL', KEYS[2]) end "     \
    "return false end "

/* A condition (redis/redis_cond.c): open makes a named one with its own
 * rlock (keys <prefix>cond:<name>...), over makes one over a Redis lock or
 * rlock, which must outlive it. The other functions have the contracts of
 * the public mp_cond ones. */
typedef struct mp__redis_cond mp__redis_cond;
int mp__redis_cond_open(mp__redis_cond **out, mp__redis *conn, const char *name, double lease);
int mp__redis_cond_over(mp__redis_cond **out, mp__redis_lock *l);
void mp__redis_cond_close(mp__redis_cond *c);
int mp__redis_cond_wait(mp__redis_cond *c, double timeout);
int mp__redis_cond_wait_for(mp__redis_cond *c, mp_cond_pred pred, void *arg, double timeout);
int mp__redis_cond_notify(mp__redis_cond *c, unsigned n);

/* A barrier for parties parties (redis/redis_barrier.c); its functions are
 * the slots of mp__redis_barrier_ops. */
typedef struct mp__redis_barrier mp__redis_barrier;
int mp__redis_barrier_open(mp__redis_barrier **out, mp__redis *conn, const char *name,
                           unsigned parties);

/* An event (handle: mp__redis_obj_new(..., MP__MAGIC_REVENT, &mp__redis_event_ops,
 * "event", name)).
 * is_set: 1 or 0; wait: 0 or MP_ETIMEDOUT. Every function: MP_EBADMSG
 * when the key holds another text than "1", MP_EPROTO when it is of
 * another Redis type (nothing changes). */
int mp__redis_event_set(mp__redis_obj *e);
int mp__redis_event_clear(mp__redis_obj *e);
int mp__redis_event_is_set(mp__redis_obj *e);
int mp__redis_event_wait(mp__redis_obj *e, double timeout);
/* The wait_begin, wait_finish and wait_end slots of the event's table
 * (mp_wait). */
int mp__redis_event_wait_begin(mp__redis_obj *e, void **w, bool block, int *fd);
int mp__redis_event_wait_finish(mp__redis_obj *e, void **w);
void mp__redis_event_wait_end(mp__redis_obj *e, void **w);

/* A number (handle: mp__redis_obj_new(..., MP__MAGIC_RVALUE, NULL, "value", name));
 * an absent value reads 0. add_int64: atomic, MP_EOVERFLOW (nothing
 * changes); add_double: MP_ERANGE when the sum is no finite double; getters: MP_EPROTO when the
 * stored text is a number of the other kind. Every function: MP_EBADMSG when the stored text is no
 * number as this library writes it, MP_EPROTO when the key is of another
 * Redis type (nothing changes). */
int mp__redis_value_set_int64(mp__redis_obj *v, int64_t x);
/* SET of a number's text, unless the key holds another Redis type
 * (MP_EPROTO, nothing changed). */
int mp__redis_value_store(mp__redis_obj *v, const char *text);
/* GET of the value's text into buf (cap >= 2): "0" for an absent value,
 * like a fresh Value(); MP_EBADMSG for an empty text, one with a NUL or
 * longer than cap - 1. */
int mp__redis_value_text(mp__redis_obj *v, char *buf, size_t cap);
int mp__redis_value_get_int64(mp__redis_obj *v, int64_t *out);
int mp__redis_value_add_int64(mp__redis_obj *v, int64_t delta, int64_t *result);
int mp__redis_value_set_double(mp__redis_obj *v, double x);
int mp__redis_value_get_double(mp__redis_obj *v, double *out);
int mp__redis_value_add_double(mp__redis_obj *v, double delta, double *result);

/* A semaphore (redis/redis_sem.c); value and bounded are used by the first
 * opener of a name only. Contracts of the public mp_sem functions. */
typedef struct mp__redis_sem mp__redis_sem;
int mp__redis_sem_open(mp__redis_sem **out, mp__redis *conn, const char *name, unsigned value,
                       bool bounded);
void mp__redis_sem_close(mp__redis_sem *s);
int mp__redis_sem_acquire(mp__redis_sem *s, double timeout);
int mp__redis_sem_release(mp__redis_sem *s);
int mp__redis_sem_get_value(mp__redis_sem *s);

/* The public value handle (redis/redis_objects.c): a typecode over a number key.
 * init_text: SET NX of the initial number. */
int mp__redis_value_open(void **out, mp__redis *conn, const char *name, char typecode);
int mp__redis_value_init_text(void *v, const char *text);
/* The public array handle: len items in a Redis list (at most
 * MP__REDIS_ARRAY_ITEMS_MAX: every item travels in the creating command; more is
 * MP_ENOMEM). init: the n = len items' texts, pushed unless the list
 * exists. */
#define MP__REDIS_ARRAY_ITEMS_MAX ((size_t)1 << 20)
int mp__redis_array_open(void **out, mp__redis *conn, const char *name, char typecode, size_t len);
int mp__redis_array_init(void *a, const char *const *texts, size_t n);

/* ---- waiters woken by the server (redis/redis_wake.c) -------------------- */

/* A fresh random id: "<pid>-<32 hex digits>" (a lock's token, a waiter's
 * id in a wait set). */
void mp__redis_new_token(char *tok, size_t cap);

/* How long (ms) a waiter's entry in a wait set lasts unless the waiter
 * enlists again (it does at every retry, at least every second), so that
 * the entry of a waiter killed in its wait goes by itself. */
#define MP__REDIS_WAKE_TTL_MS "3000"

/* Lua for the scripts of a waitable object whose wait set is KEYS[W] and
 * wake list KEYS[L] (W, L: numbers as string literals). After
 * MP__REDIS_LUA_HELPERS. Defines:
 *   wk_check()      EPROTO when either key holds another Redis type, else
 *                   false (call it before changing anything)
 *   wk_now()        the server's clock in ms; wk_expire(now) drops the
 *                   entries past their time
 *   wk_may(id)      whether id may take the object: nobody waits, or id
 *                   is enlisted (a newcomer queues behind the waiters)
 *   wk_enlist(id, now), wk_leave(id)
 *   wk_wake_all(g)  wakes every waiter enlisted: g once for each, in a
 *                   fresh wake list (the older wake-ups are moot), and
 *                   empties the wait set
 * Both keys expire MP__REDIS_WAKE_TTL_MS after the last enlisting or
 * wake-up: nothing stays once no waiter is left. */
#define MP__REDIS_WAKE_LUA(W, L)                                                                   \
    "if redis.replicate_commands then redis.replicate_commands() end "                             \
    "local WK_WAIT, WK_WAKE = KEYS[" W "], KEYS[" L "] "                                           \
    "local function wk_check() local a = kind(WK_WAIT) "                                           \
    "if a ~= 'none' and a ~= 'zset' then return EPROTO end "                                       \
    "local b = kind(WK_WAKE) if b ~= 'none' and b ~= 'list' then return EPROTO end "               \
    "return false end "                                                                            \
    "local function wk_now() local t = redis.call('TIME') "                                        \
    "return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end "                        \
    "local function wk_expire(now) redis.call('ZREMRANGEBYSCORE', WK_WAIT, '-inf', now) end "      \
    "local function wk_may(id) return redis.call('ZCARD', WK_WAIT) == 0 or "                       \
    "redis.call('ZSCORE', WK_WAIT, id) ~= false end "                                              \
    "local function wk_enlist(id, now) "                                                           \
    "redis.call('ZADD', WK_WAIT, now + " MP__REDIS_WAKE_TTL_MS ", id) "                            \
    "redis.call('PEXPIRE', WK_WAIT, " MP__REDIS_WAKE_TTL_MS ") end "                               \
    "local function wk_leave(id) redis.call('ZREM', WK_WAIT, id) end "                             \
    "local function wk_wake_all(gen) wk_expire(wk_now()) "                                         \
    "local n = redis.call('ZCARD', WK_WAIT) if n == 0 then return end "                            \
    "redis.call('DEL', WK_WAKE) "                                                                  \
    "for i = 1, n do redis.call('RPUSH', WK_WAKE, gen) end "                                       \
    "redis.call('PEXPIRE', WK_WAKE, " MP__REDIS_WAKE_TTL_MS ") "                                   \
    "redis.call('DEL', WK_WAIT) end "

/* Lua, after MP__REDIS_LUA_HELPERS: count(key), the value of a counter
 * key that INCR and DECR take (absent: 0), or nil and EPROTO (another
 * Redis type) or EBADMSG (not a number of at most 18 digits). */
#define MP__REDIS_LUA_COUNT                                                                        \
    "local function count(key) local t = kind(key) "                                               \
    "if t == 'none' then return 0 end "                                                            \
    "if t ~= 'string' then return nil, EPROTO end "                                                \
    "local v = redis.call('GET', key) "                                                            \
    "if #v > 18 or not string.match(v, '^%d+$') then return nil, EBADMSG end "                     \
    "return tonumber(v) end "

/* An object's wait set and wake list keys (<key>:wait, <key>:wake). */
typedef struct mp__redis_wakers {
    char wait[MP__REDIS_KEY_MAX], wake[MP__REDIS_KEY_MAX];
} mp__redis_wakers;
void mp__redis_wakers_init(const struct mp__redis_obj *o, mp__redis_wakers *k);
/* The BLPOP timeout of one slice of a wait with left ms left
 * (mp__deadline_poll_ms, not 0; -1: no deadline): a second at most, and
 * never 0, which Redis reads as "forever". */
double mp__redis_slice_secs(int left);
/* Copies into got (cap bytes) what a BLPOP reply popped; "" when it
 * popped nothing, or a value that does not fit (none this library
 * pushes). */
void mp__redis_popped(const redisReply *rep, char *got, size_t cap);
/* Blocks in BLPOP on the wake list for up to a second (never past dl):
 * 0 when woken (got: the wake-up, if got) or the slice ended (got ""),
 * MP_ETIMEDOUT when dl had passed, MP_EINTR or MP_ECANCELED (interrupted;
 * got holds the wake-up if one was taken before the wait ended: the
 * caller uses it), or a connection error. */
int mp__redis_wake_wait(mp__redis *conn, const mp__redis_wakers *k, const mp__deadline *dl,
                        char *got, size_t cap);
/* Side connections: a wait that blocks on the server (BLPOP) goes over a
 * connection of its own, so that the other threads of the process keep
 * r's (a holder's release must not wait behind a waiter of its own
 * process). take gives an idle one of r's, or opens one with r's URL;
 * give keeps it for the next wait (up to MP__REDIS_SIDE_MAX idle ones,
 * dropped in a forked child), or closes it. With reconnect=0, a side
 * connection lost makes r's lost too, and take on a lost r is
 * MP_ECONNRESET: after a lost connection every call fails, as without
 * side connections. */
#define MP__REDIS_SIDE_MAX 8
int mp__redis_side_take(mp__redis *r, mp__redis **out);
void mp__redis_side_give(mp__redis *r, mp__redis *side);
/* One BLPOP of key (then key2, if not NULL) for up to secs (> 0)
 * seconds over a side connection of r: *rep nil or [key, value]. With
 * the interrupt settings armed (mp__redis_intr_armed), it may return
 * MP_EINTR or MP_ECANCELED with *rep set all the same (nil, or what the
 * BLPOP took before it was ended: the caller owns it and frees *rep);
 * *rep is NULL after any other error. */
int mp__redis_side_blpop(mp__redis *r, const char *key, const char *key2, double secs,
                         redisReply **rep);
/* One BLPOP of key for up to secs (> 0) seconds over a side connection
 * of r, then a script sent behind it without waiting for its answer (not
 * interruptible: the waits of an armed thread take mp__redis_side_blpop).
 * script, the script's text, is loaded before the BLPOP when this process
 * does not know it on the server (once, and again after an answer read
 * late said the server lost its scripts). When the BLPOP popped a value,
 * post fills argv (at most MP__REDIS_POST_MAX strings, which must outlive
 * the call: argv[0] and argv[1] are set to EVALSHA and the SHA1, post
 * fills the key count, keys and arguments from argv[2]) and returns argc
 * (0: send nothing). Its answer is read and dropped by the connection's
 * next call, so the script must only do what the caller can do without
 * knowing it was done; one that cannot be sent is dropped with the
 * connection. 0 with *rep nil or [key, value], or a connection error with
 * *rep NULL. */
#define MP__REDIS_POST_MAX 16
typedef int (*mp__redis_post_fn)(void *arg, const redisReply *popped, const char **argv);
int mp__redis_side_blpop_post(mp__redis *r, const char *key, double secs, const char *script,
                              redisReply **rep, mp__redis_post_fn post, void *arg);
/* Waits on a count that moves when a condition comes true (an event's
 * sets, a joinable queue's times at 0): check runs the object's script,
 * enlisting id when enlist, and answers whether the condition holds
 * (*done) and the count (*gen). The wait returns 0 once the condition
 * holds, or the count moved past the one first seen (popped from the
 * wake list, or found at a retry: it came true and may have been undone
 * since, as Python's Event.wait returns); MP_ETIMEDOUT, MP_EINVAL (NaN
 * timeout), check's error, or MP_EINTR / MP_ECANCELED (interrupted: the
 * count had not moved at a last look, and the waiter left the set). */
typedef int (*mp__redis_gen_check)(void *obj, const char *id, bool enlist, bool *done,
                                   uint64_t *gen);
int mp__redis_gen_wait(mp__redis *conn, const mp__redis_wakers *wk, double timeout,
                       mp__redis_gen_check check, void *obj);
/* A check script's answer {flag, count} into *flag and *gen; an integer
 * answer is the script's error (MP_EBADMSG, MP_EPROTO). */
int mp__redis_gen_reply(const redisReply *rep, bool *flag, uint64_t *gen);
/* Takes waiter off the wait set (it gave up). */
int mp__redis_wake_leave(mp__redis *conn, const mp__redis_wakers *k, const char *waiter);
/* The wait of a waiter enlisted under id whose wake-ups are grants (a
 * semaphore's units): a BLPOP of the wake list for a slice (at most a
 * second, less when dl is nearer), and, sent with it, the ZREM of id from
 * the wait set, which the server runs once the BLPOP has answered, before
 * it writes the answer: a waiter that popped a grant is off the set at
 * once, with no command after the pop on its path, and one whose slice
 * ended enlists again at its next try. The wait honours the interrupt
 * settings. got: what was popped, "" for none. 0, MP_ETIMEDOUT (dl had
 * passed: nothing sent), MP_EINTR or MP_ECANCELED (got still says what
 * the BLPOP took before it ended), or a connection error. */
int mp__redis_wake_wait_leave(mp__redis *conn, const mp__redis_wakers *k, const char *id,
                              const mp__deadline *dl, char *got, size_t cap);

#endif /* MULTIPROC_REDIS_INTERNAL_H */
