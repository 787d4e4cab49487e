/* 31_queue_terminate_reader — seeds 002 and 003:
 *
 *     def write(q):
 *         print('Process to write: %s' % os.getpid())
 *         for value in ['A', 'B', 'C']:
 *             print('Put %s to queue...' % value)
 *             q.put(value)
 *             time.sleep(random.random())
 *
 *     def read(q):
 *         print('Process to read %s' % os.getpid())
 *         while True:
 *             value = q.get(True)
 *             print('Get %s from queue.' % value)
 *
 *     pw.start(); pr.start(); pw.join()
 *     pr.terminate()    # the reader loops forever: stop it
 *
 * The parent does not terminate the reader until it has read C (a message
 * back on a second queue), so the output is complete; the seed relies on
 * the reader being quick. mp_process_terminate also reaps the reader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <multiproc.h>

typedef struct queues {
    mp_queue *q, *seen;
} queues;

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int write_proc(const void *arg, size_t len)
{
    (void)len;
    const queues *qs = arg;
    printf("Process to write: %d\n", (int)getpid());
    for (const char *v = "ABC"; *v; v++) {
        printf("Put %c to queue...\n", *v);
        int rc = mp_queue_put(qs->q, v, 1, MP_FOREVER);
        if (rc < 0) {
            report("mp_queue_put", rc);
            return 1;
        }
        usleep((useconds_t)(rand() % 200) * 1000); /* time.sleep(random.random()), shortened */
    }
    return 0;
}

static int read_proc(const void *arg, size_t len)
{
    (void)len;
    const queues *qs = arg;
    printf("Process to read %d\n", (int)getpid());
    for (;;) {
        char v;
        size_t n;
        int rc = mp_queue_get_into(qs->q, &v, 1, &n, MP_FOREVER);
        if (rc < 0) {
            report("mp_queue_get_into", rc);
            return 1;
        }
        printf("Get %c from queue.\n", v);
        if (v == 'C')
            mp_queue_put(qs->seen, "C", 1, MP_FOREVER);
    }
}

int main(void)
{
    queues qs = {0};
    mp_process *pw = NULL, *pr = NULL;
    int status = 1, rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: pw.start(); pr.start(); pw.join(); pr.terminate() ===");
    if ((rc = mp_queue_create(&qs.q, NULL)) < 0 || (rc = mp_queue_create(&qs.seen, NULL)) < 0 ||
        (rc = mp_process_create(&pw, &(mp_process_opts){.target = write_proc, .args = &qs})) < 0 ||
        (rc = mp_process_create(&pr, &(mp_process_opts){.target = read_proc, .args = &qs})) < 0 ||
        (rc = mp_process_start(pw)) < 0 || (rc = mp_process_start(pr)) < 0) {
        report("setup", rc);
        goto out;
    }
    char c;
    size_t n;
    if ((rc = mp_process_join(pw, MP_FOREVER)) < 0 ||
        (rc = mp_queue_get_into(qs.seen, &c, 1, &n, 10)) < 0 ||
        (rc = mp_process_terminate(pr)) < 0) {
        report("join/terminate", rc);
        goto out;
    }
    puts("reader terminated");
    status = 0;
out:
    mp_process_destroy(pw);
    mp_process_destroy(pr);
    mp_queue_destroy(qs.q);
    mp_queue_destroy(qs.seen);
    return status;
}
