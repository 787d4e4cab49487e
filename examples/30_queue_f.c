/* 30_queue_f — seed 000, multiproc01.py:
 *
 *     def f(q):
 *         q.put([42, None, 'hello'])
 *
 *     q = Queue()
 *     p = Process(target=f, args=(q,))
 *     p.start()
 *     print(q.get())    # prints "[42, None, 'hello']"
 *     p.join()
 *
 * The queue lives in the shared heap, so the pointer q is valid in the
 * child as it is. C has no pickle: both sides agree on a struct.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <multiproc.h>

typedef struct message {
    int32_t number;  /* 42 */
    uint8_t has_obj; /* 0: the second item is None */
    char text[15];   /* 'hello' */
} message;

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int f(const void *arg, size_t len)
{
    (void)len;
    mp_queue *q = (mp_queue *)arg;
    message m = {.number = 42, .has_obj = 0, .text = "hello"};
    int rc = mp_queue_put(q, &m, sizeof m, MP_FOREVER);
    if (rc < 0)
        report("mp_queue_put", rc);
    return rc < 0;
}

int main(void)
{
    mp_queue *q = NULL;
    mp_process *p = NULL;
    int status = 1, rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: q = Queue(); p = Process(target=f, args=(q,)); print(q.get()) ===");
    if ((rc = mp_queue_create(&q, NULL)) < 0) {
        report("mp_queue_create", rc);
        goto out;
    }
    if ((rc = mp_process_create(&p, &(mp_process_opts){.target = f, .args = q})) < 0 ||
        (rc = mp_process_start(p)) < 0) {
        report("mp_process_create/start", rc);
        goto out;
    }
    message m;
    size_t len;
    /* A timeout instead of forever: if the child died, we say so. */
    if ((rc = mp_queue_get_into(q, &m, sizeof m, &len, 10)) < 0 || len != sizeof m) {
        report("mp_queue_get_into", rc < 0 ? rc : MP_EBADMSG);
        goto out;
    }
    m.text[sizeof m.text - 1] = '\0';
    printf("[%d, %s, '%s']\n", (int)m.number, m.has_obj ? "<object>" : "None", m.text);
    if ((rc = mp_process_join(p, MP_FOREVER)) < 0) {
        report("mp_process_join", rc);
        goto out;
    }
    status = 0;
out:
    mp_process_destroy(p);
    mp_queue_destroy(q);
    return status;
}
