/* 07_global_not_shared — seed 001, a global list is not shared:
 *
 *     shareddata = []
 *
 *     def func(name):
 *         shareddata.append(name)
 *         print("我是:%s,shareddata的值是:%s,shareddata的地址是:%s"
 *               % (name, shareddata, id(shareddata)))
 *
 *     p1 = Process(target=func, args=("进程1",))
 *     p2 = Process(target=func, args=("进程2",))
 *     p1.start(); p2.start(); p1.join(); p2.join()
 *     print("我是:主进程,shareddata的值是:", shareddata)
 *
 * Each child appends to its own copy of the global array, and the parent's
 * stays empty. Note the address: in C all three processes print the SAME
 * address, because a forked child is a copy of the parent's address space;
 * the same virtual address in two processes is still two different pieces
 * of memory. (Python printed different ids because its Windows children were
 * new interpreters.) To share data, use shared memory, a pipe or a queue.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <multiproc.h>

#define SHARED_MAX 8

/* The global "list": names appended by this process, and their count. */
static const char *shareddata[SHARED_MAX];
static size_t shareddata_len;

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* Format the list the way Python prints it: ['进程1', '进程2']. */
static void format_list(char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < shareddata_len && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s'%s'", i ? ", " : "", shareddata[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

static int func(const void *arg, size_t len)
{
    const char *name = arg;
    if (len == 0 || name[len - 1] != '\0' || shareddata_len == SHARED_MAX)
        return 2;
    /* arg points into this child's copy of the argument bytes, which lives
     * as long as the child: storing the pointer is fine. */
    shareddata[shareddata_len++] = name;
    char list[256];
    format_list(list, sizeof(list));
    printf("我是:%s,shareddata的值是:%s,shareddata的地址是:%p\n", name, list, (void *)shareddata);
    return 0;
}

static bool join_ok(mp_process *p)
{
    int rc = mp_process_join(p, MP_FOREVER);
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
    static const char *const names[2] = {"进程1", "进程2"};
    mp_process *p[2] = {NULL, NULL};
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* interleave lines as they happen */

    puts("=== seed: shareddata = []; each child appends to it (globals are not shared) ===");
    for (int i = 0; i < 2; i++) {
        int rc = mp_process_create(
            &p[i],
            &(mp_process_opts){.target = func, .args = names[i], .args_len = strlen(names[i]) + 1});
        if (rc < 0) {
            report("mp_process_create", rc);
            goto out;
        }
    }
    for (int i = 0; i < 2; i++) {
        int rc = mp_process_start(p[i]);
        if (rc < 0) {
            report("mp_process_start", rc);
            goto out;
        }
    }
    for (int i = 0; i < 2; i++)
        if (!join_ok(p[i]))
            goto out;
    char list[256];
    format_list(list, sizeof(list));
    printf("我是:主进程,shareddata的值是: %s\n", list);
    status = shareddata_len == 0 ? 0 : 1;
out:
    for (int i = 0; i < 2; i++)
        mp_process_destroy(p[i]);
    return status;
}
