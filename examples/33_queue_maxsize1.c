/* 33_queue_maxsize1 — seed 001, queues.Queue(1):
 *
 *     def func(data, shareddatas):
 *         shareddatas.put(data)
 *
 *     shareddata = queues.Queue(1, ctx=multiprocessing)  # holds one item
 *     p = Process(target=func, args=("老鸟python", shareddata))
 *     p.start(); p.join()
 *     print(shareddata.get())
 *
 * "If a second item is put, put blocks until the first is taken": the
 * child here puts a second item too. put_nowait shows the queue is full,
 * then the blocking put waits until the parent's get makes room.
 */
#include <stdio.h>
#include <string.h>

#include <multiproc.h>

static mp_queue *shareddata;

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int func(const void *arg, size_t len)
{
    if (mp_queue_put(shareddata, arg, len, MP_FOREVER) < 0)
        return 1;
    int rc = mp_queue_put_nowait(shareddata, "second", 7);
    printf("child: put_nowait of a second item: %s\n", mp_err_name(rc)); /* MP_EFULL */
    if (mp_queue_put(shareddata, "second", 7, MP_FOREVER) < 0)           /* blocks */
        return 1;
    printf("child: the second put went through once the parent got the first\n");
    return 0;
}

static void get_and_print(void)
{
    char buf[64];
    size_t n;
    int rc = mp_queue_get_into(shareddata, buf, sizeof buf, &n, 10);
    if (rc < 0)
        report("mp_queue_get_into", rc);
    else
        printf("%s\n", buf);
}

int main(void)
{
    mp_process *p = NULL;
    int status = 1, rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: shareddata = queues.Queue(1); put blocks while it holds one item ===");
    if ((rc = mp_queue_create(&shareddata, &(mp_queue_opts){.maxsize = 1})) < 0) {
        report("mp_queue_create", rc);
        goto out;
    }
    const char data[] = "老鸟python";
    if ((rc = mp_process_create(
             &p, &(mp_process_opts){.target = func, .args = data, .args_len = sizeof data})) < 0 ||
        (rc = mp_process_start(p)) < 0) {
        report("mp_process_create/start", rc);
        goto out;
    }
    /* The child is blocked in its second put: a join now would wait for
     * ever (exactly Python's behaviour), so the parent gets first. */
    rc = mp_process_join(p, 0.3);
    printf("parent: join(0.3) while the child is blocked: %s\n", mp_err_name(rc));
    get_and_print();
    if ((rc = mp_process_join(p, MP_FOREVER)) < 0) {
        report("mp_process_join", rc);
        goto out;
    }
    get_and_print();
    status = 0;
out:
    mp_process_destroy(p);
    mp_queue_destroy(shareddata);
    return status;
}
