/* 17_array_child_250 — seed 001, sharing data with Array:
 *
 *     def func(data, shareddatas):
 *         shareddatas[0] = data
 *         print("子进程中sharedatas 中的值:", shareddatas[0])
 *
 *     shareddatas = Array('i', 1)
 *     p = Process(target=func, args=(250, shareddatas))
 *     p.start()
 *     p.join()
 *     print("主进程中sharedatas 中的值:", shareddatas[0])
 *
 * The child receives the number as argument bytes and the array as a
 * pointer into the shared heap.
 */
#include <stdio.h>
#include <stdlib.h>

#include <multiproc.h>

typedef struct args {
    int data;
    mp_array *shareddatas;
} args;

static void check(const char *call, int rc)
{
    if (rc < 0) {
        fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
        exit(1);
    }
}

static int func(const void *arg, size_t len)
{
    if (len != sizeof(args))
        return 2;
    const args *a = arg;
    int64_t v;
    if (mp_array_set_i64(a->shareddatas, 0, a->data) < 0 ||
        mp_array_get_i64(a->shareddatas, 0, &v) < 0)
        return 1;
    printf("子进程中sharedatas 中的值: %lld\n", (long long)v);
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: shareddatas = Array('i', 1); a child sets shareddatas[0] = 250 ===");
    mp_array *shareddatas;
    check("mp_array_create",
          mp_array_create(&shareddatas, &(mp_array_opts){.typecode = 'i', .len = 1}));
    args a = {.data = 250, .shareddatas = shareddatas};
    mp_process *p;
    check("mp_process_create",
          mp_process_create(&p,
                            &(mp_process_opts){.target = func, .args = &a, .args_len = sizeof a}));
    check("mp_process_start", mp_process_start(p));
    check("mp_process_join", mp_process_join(p, MP_FOREVER));
    int code = -1;
    check("mp_process_exitcode", mp_process_exitcode(p, &code));
    mp_process_destroy(p);
    if (code != 0) {
        fprintf(stderr, "func exited with code %d\n", code);
        return 1;
    }
    int64_t v;
    check("mp_array_get_i64", mp_array_get_i64(shareddatas, 0, &v));
    printf("主进程中sharedatas 中的值: %lld\n", (long long)v);
    mp_array_destroy(shareddatas);
    return 0;
}
