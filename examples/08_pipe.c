/* 08_pipe — seed 000, multiproc03.py:
 *
 *     def f(conn):
 *         conn.send([42, None, 'hello'])
 *         conn.close()
 *
 *     parent_conn, child_conn = Pipe()
 *     p = Process(target=f, args=(child_conn,))
 *     p.start()
 *     print(parent_conn.recv())   # prints "[42, None, 'hello']"
 *     p.join()
 *
 * A connection carries messages of bytes; C has no pickle, so both sides
 * agree on a struct instead. Parent and child are the same program, so the
 * struct has the same layout on both sides; between different programs, fix
 * the layout (sizes, byte order) yourself.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <multiproc.h>

/* The message [42, None, 'hello']. */
typedef struct message {
    int32_t number;  /* 42 */
    uint8_t has_obj; /* 0: the second item is None */
    char text[15];   /* 'hello', NUL-terminated */
} message;

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* f(conn): with args_len == 0 the child gets the pointer itself, its own
 * copy of child_conn (the fork start method copies the whole parent). */
static int f(const void *arg, size_t len)
{
    (void)len;
    mp_conn *conn = (mp_conn *)arg;
    message m = {.number = 42, .has_obj = 0};
    snprintf(m.text, sizeof(m.text), "hello");
    int rc = mp_conn_send(conn, &m, sizeof(m), MP_FOREVER);
    if (rc < 0) {
        report("mp_conn_send", rc);
        return 1;
    }
    rc = mp_conn_close(conn);
    if (rc < 0) {
        report("mp_conn_close", rc);
        return 1;
    }
    return 0;
}

/* parent_conn.recv() and print(): check the size before trusting the bytes,
 * since they come from another process. */
static bool receive_and_print(mp_conn *conn)
{
    void *data;
    size_t len;
    int rc = mp_conn_recv(conn, &data, &len, MP_FOREVER);
    if (rc < 0) {
        report("mp_conn_recv", rc);
        return false;
    }
    message m;
    bool ok = len == sizeof(m);
    if (ok) {
        memcpy(&m, data, sizeof(m));
        m.text[sizeof(m.text) - 1] = '\0';
        printf("[%d, %s, '%s']\n", (int)m.number, m.has_obj ? "<object>" : "None", m.text);
    } else {
        fprintf(stderr, "unexpected message of %zu bytes\n", len);
    }
    free(data); /* the buffer belongs to the caller */
    return ok;
}

int main(void)
{
    mp_conn *parent_conn = NULL, *child_conn = NULL;
    mp_process *p = NULL;
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: parent_conn, child_conn = Pipe(); conn.send([42, None, 'hello']) ===");
    int rc = mp_pipe(&parent_conn, &child_conn, true); /* Pipe(): duplex by default */
    if (rc < 0) {
        report("mp_pipe", rc);
        goto out;
    }
    rc = mp_process_create(&p, &(mp_process_opts){.target = f, .args = child_conn});
    if (rc < 0) {
        report("mp_process_create", rc);
        goto out;
    }
    rc = mp_process_start(p);
    if (rc < 0) {
        report("mp_process_start", rc);
        goto out;
    }
    /* The child has its own copy of child_conn now; close the parent's, so
     * that if the child died before sending, recv would see end of file
     * (MP_EEOF) instead of waiting forever. Python leaves this to the
     * garbage collector. */
    rc = mp_conn_close(child_conn);
    if (rc < 0) {
        report("mp_conn_close", rc);
        goto out;
    }
    if (!receive_and_print(parent_conn))
        goto out;
    rc = mp_process_join(p, MP_FOREVER);
    if (rc < 0) {
        report("mp_process_join", rc);
        goto out;
    }
    int code;
    rc = mp_process_exitcode(p, &code);
    if (rc < 0) {
        report("mp_process_exitcode", rc);
        goto out;
    }
    if (code != 0) {
        fprintf(stderr, "f exited with code %d\n", code);
        goto out;
    }
    status = 0;
out:
    mp_process_destroy(p);
    mp_conn_destroy(parent_conn);
    mp_conn_destroy(child_conn);
    return status;
}
