/* The multiproc operations tool: sees and repairs what the library keeps
 * in Redis (docs/redis.md, "The operations tool"). It reads the keys
 * through the library's own code: the URL parser and the connection of
 * redis/redis_conn.c, the key builders mp__redis_key and
 * mp__redis_pool_key, and the pool's codecs. Not installed as a header.
 *
 *   main.c     arguments, dispatch, exit codes
 *   out.c      JSON strings and aligned tables
 *   keys.c     the connection, commands, SCAN, pool discovery
 *   status.c   status and status --watch
 *   dead.c     dead list, show, retry, purge
 *   purge.c    pool purge
 *   objects.c  the manager's named objects */
#ifndef MULTIPROC_TOOL_H
#define MULTIPROC_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "redis/redis_pool.h"

/* Exit codes (documented in the usage text and docs/redis.md). */
#define MP__TOOL_OK    0
#define MP__TOOL_ERROR 1
#define MP__TOOL_USAGE 2

/* One run of the tool: the connection and the options of the command. */
typedef struct mp__tool {
    mp__redis *conn;
    const char *prefix; /* the URL's key prefix, borrowed from conn */
    bool json;
    bool all;
    bool watch;
    double every; /* --watch SECONDS */
} mp__tool;

/* Prints "multiproc: <what>: <the error's text>" (or just what when rc is
 * 0) on stderr and returns MP__TOOL_ERROR. */
int mp__tool_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- out.c --------------------------------------------------------------- */

/* s[0..len) as a JSON string, quotes included: valid UTF-8 as is, '"',
 * '\\' and control bytes escaped, each byte of an invalid sequence as
 * \u00XX (the code point of its value). */
void mp__tool_json_str(FILE *f, const char *s, size_t len);
/* A double for JSON ("null" when not finite). */
void mp__tool_json_num(FILE *f, double x);

/* A table of text cells printed with aligned columns. Cells are copied;
 * bytes that are not printable ASCII are shown as \xXX. */
typedef struct mp__tool_table {
    size_t ncols, nrows, cap;
    char **cells; /* nrows * ncols, row 0 the header */
} mp__tool_table;
int mp__tool_table_init(mp__tool_table *t, size_t ncols, const char *const *header);
/* Adds a row of ncols cells (NULL: "-"). 0 or MP_ENOMEM. */
int mp__tool_table_row(mp__tool_table *t, const char *const *cells, const size_t *lens);
void mp__tool_table_print(const mp__tool_table *t, FILE *f);
void mp__tool_table_free(mp__tool_table *t);

/* ---- keys.c -------------------------------------------------------------- */

/* Parses url and connects (AUTH, SELECT, PING). 0 or the library's error,
 * already reported on stderr. */
int mp__tool_connect(mp__tool *t, const char *url);
void mp__tool_disconnect(mp__tool *t);

/* One command (argv strings, NUL-terminated) whose reply is anything but an
 * error reply. 0 with *rep, or the error. */
int mp__tool_cmd(mp__tool *t, redisReply **rep, int argc, const char **argv);
/* The same with explicit lengths (binary arguments). */
int mp__tool_cmdl(mp__tool *t, redisReply **rep, int argc, const char **argv, const size_t *lens);

/* The pool key <prefix>pool:<name>:<what> into *out (malloc'd), through
 * mp__redis_pool_key. 0 or MP_EINVAL (bad name) / MP_ENOMEM. */
int mp__tool_pool_key(mp__tool *t, char **out, const char *pool, const char *what);

/* The names of the distributed pools under the prefix (every pool with a
 * task stream, a dead-letter stream or a stats hash), sorted, malloc'd
 * (mp__tool_strv_free). 0 or an error. */
int mp__tool_pools(mp__tool *t, char ***names, size_t *n);
void mp__tool_strv_free(char **v, size_t n);

/* 0 when the pool has a key under the prefix, else reports "unknown pool"
 * (or the error) and returns MP__TOOL_ERROR. Also refuses a bad name. */
int mp__tool_pool_known(mp__tool *t, const char *pool);

/* Every key that matches <literal><glob> (literal's glob characters
 * escaped), by SCAN: malloc'd, sorted. 0 or an error. */
int mp__tool_scan(mp__tool *t, const char *literal, const char *glob, char ***keys, size_t *n);

/* The server's clock in ms (TIME). 0 or an error. */
int mp__tool_server_ms(mp__tool *t, int64_t *ms);

/* A stream entry id <ms>-<seq> as the server writes it: true when s is
 * one (strict decimals), with its ms part in *ms (may be NULL). */
bool mp__tool_eid_ok(const char *s, uint64_t *ms);

/* The value of field name in a flat [field, value, ...] array reply, or
 * NULL. */
const redisReply *mp__tool_field(const redisReply *flat, const char *name);
/* A reply element as an integer (integer reply or decimal string), or
 * dflt. */
long long mp__tool_int(const redisReply *r, long long dflt);

/* ---- commands ------------------------------------------------------------ */

int mp__tool_status(mp__tool *t);
int mp__tool_dead_list(mp__tool *t, const char *pool);
int mp__tool_dead_show(mp__tool *t, const char *pool, const char *id);
int mp__tool_dead_retry(mp__tool *t, const char *pool, const char *id);
int mp__tool_dead_purge(mp__tool *t, const char *pool, const char *id);
int mp__tool_pool_purge(mp__tool *t, const char *pool);
int mp__tool_objects(mp__tool *t);

#endif /* MULTIPROC_TOOL_H */
