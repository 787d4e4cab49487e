/* 19_value_after_start — what CPython cannot do: a Value created after the
 * child started is visible to that child.
 *
 * In CPython a fork child never sees a Value made after the fork: its
 * memory is a separate mapping. Here every shared object lives in the
 * family's shared heap, mapped at the same address in every process before
 * the first child starts, so a pointer made later works in the child too.
 * The parent hands the pointer over through a mailbox Value made before the
 * start, and an Event says when it is there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <multiproc.h>

typedef struct mailbox {
    mp_value *box; /* 'Q': the new Value's address */
    mp_event *ready;
} mailbox;

static void check(const char *call, int rc)
{
    if (rc < 0) {
        fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
        exit(1);
    }
}

static int child(const void *arg, size_t len)
{
    (void)len;
    const mailbox *m = arg;
    uint64_t address;
    if (mp_event_wait(m->ready, 30) < 0 || mp_value_get_u64(m->box, &address) < 0)
        return 1;
    mp_value *late = (mp_value *)(uintptr_t)address;
    int64_t v;
    if (mp_value_get_i64(late, &v) < 0)
        return 2;
    printf("child: sees the Value made after it started: %lld\n", (long long)v);
    printf("child: sets it to %d\n", 4343);
    return mp_value_set_i64(late, 4343) < 0 ? 3 : 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== multiproc: a Value created after the child started is seen by the child ===");
    mailbox m;
    check("mp_value_create", mp_value_create(&m.box, &(mp_value_opts){.typecode = 'Q'}));
    check("mp_event_create", mp_event_create(&m.ready, NULL));
    mp_process *p;
    check("mp_process_create",
          mp_process_create(&p, &(mp_process_opts){.target = child, .args = &m}));
    check("mp_process_start", mp_process_start(p));

    mp_value *late;
    check("mp_value_create",
          mp_value_create(&late, &(mp_value_opts){.typecode = 'i', .init = &(int){4242}}));
    puts("parent: created Value('i', 4242) after starting the child");
    check("mp_value_set_u64", mp_value_set_u64(m.box, (uint64_t)(uintptr_t)late));
    check("mp_event_set", mp_event_set(m.ready));

    check("mp_process_join", mp_process_join(p, MP_FOREVER));
    int code = -1;
    check("mp_process_exitcode", mp_process_exitcode(p, &code));
    mp_process_destroy(p);
    if (code != 0) {
        fprintf(stderr, "child exited with code %d\n", code);
        return 1;
    }
    int64_t v;
    check("mp_value_get_i64", mp_value_get_i64(late, &v));
    printf("parent: the child's write: %lld\n", (long long)v);
    mp_value_destroy(late);
    mp_event_destroy(m.ready);
    mp_value_destroy(m.box);
    return 0;
}
