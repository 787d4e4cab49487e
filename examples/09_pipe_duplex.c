/* 09_pipe_duplex — seed 000, multiproc04.py:
 *
 *     def write(conn):
 *         value = ["h1 reader~"]
 *         print('Put %s to pip...' % value)
 *         conn.send(value)
 *         time.sleep(1)
 *
 *     def read(conn):
 *         value = conn.recv()
 *         print('Get %s from pip.' % value)
 *         conn.send("hi writer~~")
 *
 *     parent_conn, child_conn = Pipe()
 *     pw = Process(target=write, args=(parent_conn,))   # one end
 *     pr = Process(target=read, args=(child_conn,))     # the other end
 *     pw.start(); pw.join()
 *     pr.start(); pr.join()
 *     print(parent_conn.recv())
 *     print('\n所有数据都写入并且读完')
 *
 * A duplex pipe: a message sent on one end is received on the other, in both
 * directions. The message waits in the pipe after its writer has exited:
 * the reader starts only once the writer is gone. Each message is bytes; its
 * length travels with it, so the text needs no terminating NUL.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* write(conn), renamed since write and read are libc's. The message is the
 * text of the one-item list ["h1 reader~"]. */
static int write_proc(const void *arg, size_t len)
{
    (void)len;
    mp_conn *conn = (mp_conn *)arg; /* the child's copy of parent_conn */
    const char value[] = "h1 reader~";
    printf("Put ['%s'] to pip...\n", value);
    int rc = mp_conn_send(conn, value, strlen(value), MP_FOREVER);
    if (rc < 0) {
        report("mp_conn_send", rc);
        return 1;
    }
    nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL); /* time.sleep(0.3) */
    return 0;
}

/* read(conn): receive, print, answer on the same (duplex) end. */
static int read_proc(const void *arg, size_t len)
{
    (void)len;
    mp_conn *conn = (mp_conn *)arg; /* the child's copy of child_conn */
    void *value;
    size_t value_len;
    int rc = mp_conn_recv(conn, &value, &value_len, MP_FOREVER);
    if (rc < 0) {
        report("mp_conn_recv", rc);
        return 1;
    }
    printf("Get ['%.*s'] from pip.\n", (int)value_len, (const char *)value);
    free(value);
    const char answer[] = "hi writer~~";
    rc = mp_conn_send(conn, answer, strlen(answer), MP_FOREVER);
    if (rc < 0) {
        report("mp_conn_send", rc);
        return 1;
    }
    return 0;
}

/* start(), join(), and insist on exit code 0. */
static bool run_to_end(mp_process *p)
{
    int rc = mp_process_start(p);
    if (rc < 0) {
        report("mp_process_start", rc);
        return false;
    }
    rc = mp_process_join(p, MP_FOREVER);
    if (rc < 0) {
        report("mp_process_join", rc);
        return false;
    }
    int code;
    rc = mp_process_exitcode(p, &code);
    if (rc < 0) {
        report("mp_process_exitcode", rc);
        return false;
    }
    if (code != 0)
        fprintf(stderr, "%s exited with code %d\n", mp_process_name(p), code);
    return code == 0;
}

int main(void)
{
    mp_conn *parent_conn = NULL, *child_conn = NULL;
    mp_process *pw = NULL, *pr = NULL;
    void *answer = NULL;
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: Pipe(); pw = Process(target=write, ...); pr = Process(target=read, ...) ===");
    int rc = mp_pipe(&parent_conn, &child_conn, true);
    if (rc < 0) {
        report("mp_pipe", rc);
        goto out;
    }
    rc = mp_process_create(&pw, &(mp_process_opts){.target = write_proc, .args = parent_conn});
    if (rc < 0) {
        report("mp_process_create", rc);
        goto out;
    }
    rc = mp_process_create(&pr, &(mp_process_opts){.target = read_proc, .args = child_conn});
    if (rc < 0) {
        report("mp_process_create", rc);
        goto out;
    }
    if (!run_to_end(pw) || !run_to_end(pr))
        goto out;
    /* Nobody uses child_conn any more: closing it means that, had the reader
     * sent nothing, the recv below would end with MP_EEOF, not wait forever. */
    rc = mp_conn_close(child_conn);
    if (rc < 0) {
        report("mp_conn_close", rc);
        goto out;
    }
    size_t answer_len;
    rc = mp_conn_recv(parent_conn, &answer, &answer_len, MP_FOREVER);
    if (rc < 0) {
        report("mp_conn_recv", rc);
        goto out;
    }
    printf("%.*s\n", (int)answer_len, (const char *)answer);
    printf("\n所有数据都写入并且读完\n");
    status = 0;
out:
    free(answer);
    mp_process_destroy(pw);
    mp_process_destroy(pr);
    mp_conn_destroy(parent_conn);
    mp_conn_destroy(child_conn);
    return status;
}
