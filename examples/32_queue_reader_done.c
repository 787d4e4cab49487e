/* 32_queue_reader_done — seed 000, multiproc02.py:
 *
 *     def write(q):
 *         for value in ['A', 'B', 'C']:
 *             print('Put %s to queue...' % value)
 *             q.put(value)
 *     def read(q):
 *         while True:
 *             if not q.empty():
 *                 value = q.get(True)
 *                 print('Get %s from queue.' % value)
 *             else:
 *                 q.put("Done!")
 *                 break
 *
 *     pw.start(); pw.join()     # the writer finishes first
 *     pr.start(); pr.join()
 *     print(q.get())            # "Done!"
 *     print('\n所有数据都写入并且读完')
 *
 * Messages are bytes of any length: one letter, or "Done!".
 */
#include <stdio.h>
#include <string.h>

#include <multiproc.h>

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int write_proc(const void *arg, size_t len)
{
    (void)len;
    mp_queue *q = (mp_queue *)arg;
    for (const char *v = "ABC"; *v; v++) {
        printf("Put %c to queue...\n", *v);
        int rc = mp_queue_put(q, v, 1, MP_FOREVER);
        if (rc < 0) {
            report("mp_queue_put", rc);
            return 1;
        }
    }
    return 0;
}

static int read_proc(const void *arg, size_t len)
{
    (void)len;
    mp_queue *q = (mp_queue *)arg;
    while (mp_queue_empty(q) == 0) {
        char v[8];
        size_t n;
        int rc = mp_queue_get_into(q, v, sizeof v, &n, MP_FOREVER);
        if (rc < 0) {
            report("mp_queue_get_into", rc);
            return 1;
        }
        printf("Get %.*s from queue.\n", (int)n, v);
    }
    return mp_queue_put(q, "Done!", 5, MP_FOREVER) < 0;
}

static int run(mp_process **p, mp_target_fn fn, mp_queue *q)
{
    int rc = mp_process_create(p, &(mp_process_opts){.target = fn, .args = q});
    if (rc == 0)
        rc = mp_process_start(*p);
    if (rc == 0)
        rc = mp_process_join(*p, MP_FOREVER);
    return rc;
}

int main(void)
{
    mp_queue *q = NULL;
    mp_process *pw = NULL, *pr = NULL;
    int status = 1, rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: pw.start(); pw.join(); pr.start(); pr.join(); print(q.get()) ===");
    if ((rc = mp_queue_create(&q, NULL)) < 0 || (rc = run(&pw, write_proc, q)) < 0 ||
        (rc = run(&pr, read_proc, q)) < 0) {
        report("setup", rc);
        goto out;
    }
    char buf[16];
    size_t n;
    if ((rc = mp_queue_get_into(q, buf, sizeof buf, &n, 10)) < 0) {
        report("mp_queue_get_into", rc);
        goto out;
    }
    printf("%.*s\n", (int)n, buf);
    printf("\n所有数据都写入并且读完\n");
    status = 0;
out:
    mp_process_destroy(pw);
    mp_process_destroy(pr);
    mp_queue_destroy(q);
    return status;
}
