/* 34_queue_full_empty — seed 002, the description of Queue.put/get:
 *
 *     put(obj, block=True, timeout=None): with a positive timeout, blocks
 *     at most timeout seconds for room, then raises Queue.Full; with
 *     block=False raises Queue.Full at once when the queue is full.
 *     get(block=True, timeout=None): likewise raises Queue.Empty; and
 *     get_nowait() on an empty queue raises Queue.Empty at once.
 *
 * In C, Full and Empty are the return codes MP_EFULL and MP_EEMPTY, both
 * for a timeout that expired and for a call that may not block.
 */
#include <stdio.h>

#include <multiproc.h>

int main(void)
{
    mp_queue *q = NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: q = Queue(1); q.put(x, timeout=0.5) on a full queue; q.get_nowait() ===");
    int rc = mp_queue_create(&q, &(mp_queue_opts){.maxsize = 1});
    if (rc < 0) {
        fprintf(stderr, "mp_queue_create: %s\n", mp_strerror(rc));
        return 1;
    }
    printf("put('a'): %s\n", mp_err_name(mp_queue_put(q, "a", 1, MP_FOREVER)));
    printf("full(): %d\n", mp_queue_full(q));
    rc = mp_queue_put(q, "b", 1, 0.5);
    printf("put('b', timeout=0.5): %s (queue.Full: %s)\n", mp_err_name(rc), mp_strerror(rc));
    printf("put_nowait('b'): %s\n", mp_err_name(mp_queue_put_nowait(q, "b", 1)));
    char c;
    size_t n;
    rc = mp_queue_get_into(q, &c, 1, &n, MP_FOREVER);
    printf("get(): %s -> '%c'\n", mp_err_name(rc), c);
    rc = mp_queue_get_into(q, &c, 1, &n, 0.5);
    printf("get(timeout=0.5): %s (queue.Empty: %s)\n", mp_err_name(rc), mp_strerror(rc));
    void *d;
    rc = mp_queue_get_nowait(q, &d, &n);
    printf("get_nowait(): %s (queue.Empty: %s)\n", mp_err_name(rc), mp_strerror(rc));
    mp_queue_destroy(q);
    return 0;
}
