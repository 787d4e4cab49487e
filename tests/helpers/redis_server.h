/* A throw-away redis-server for tests and benchmarks: 127.0.0.1, a free
 * port, a password, a temporary --dir, no persistence. The server is
 * started through a small fork whose parent-death signal is SIGKILL, so it
 * dies with the process that started it even when that process crashes or
 * is killed by a test timeout: no stray servers. Plain C (no Criterion). */
#ifndef MP_TEST_REDIS_SERVER_H
#define MP_TEST_REDIS_SERVER_H

typedef struct mp_test_redis {
    int pid; /* 0 when not running */
    int port;
    char dir[64]; /* the temporary --dir (removed by stop) */
    char password[32];
    char url[160];   /* redis://:<password>@127.0.0.1:<port> */
    char error[160]; /* why start failed */
} mp_test_redis;

/* Starts a server (password may be NULL for none) and waits until it
 * accepts connections (at most 10 s). Returns 0, or -1 with s->error set
 * (redis-server missing, did not start). */
int mp_test_redis_start(mp_test_redis *s, const char *password);

/* Starts it again on the same port and directory after a stop(s, 0). */
int mp_test_redis_restart(mp_test_redis *s);

/* Kills the server (SIGKILL), reaps it; keep_dir 0 also removes the
 * directory. Safe to call when not running. */
void mp_test_redis_stop(mp_test_redis *s, int keep_dir);

#endif /* MP_TEST_REDIS_SERVER_H */
