/* 16_value_array — seed 000, multiproc05.py (static data sharing):
 *
 *     def f(n, a):
 *         n.value = 3.1415927
 *         for i in range(len(a)):
 *             a[i] = -a[i]
 *
 *     num = Value('d', 0.0)
 *     arr = Array('i', range(10))
 *     p = Process(target=f, args=(num, arr))
 *     p.start()
 *     p.join()
 *     print(num.value)            # 3.1415927
 *     print(arr[:])               # [0, -1, -2, ..., -9]
 *
 * Value and Array live in the shared heap: the pointers mean the same thing
 * in the child, which writes the parent's memory.
 */
#include <stdio.h>
#include <stdlib.h>

#include <multiproc.h>

typedef struct shared {
    mp_value *num;
    mp_array *arr;
} shared;

static void check(const char *call, int rc)
{
    if (rc < 0) {
        fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
        exit(1);
    }
}

static int f(const void *arg, size_t len)
{
    (void)len;
    const shared *s = arg;
    if (mp_value_set_double(s->num, 3.1415927) < 0)
        return 1;
    int *a = mp_array_data(s->arr);
    for (size_t i = 0; i < mp_array_len(s->arr); i++)
        a[i] = -a[i];
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("=== seed: num = Value('d', 0.0); arr = Array('i', range(10)); a child sets num and "
         "negates arr ===");
    shared s;
    int range10[10];
    for (int i = 0; i < 10; i++)
        range10[i] = i;
    check("mp_value_create", mp_value_create(&s.num, &(mp_value_opts){.typecode = 'd'}));
    check("mp_array_create",
          mp_array_create(&s.arr, &(mp_array_opts){.typecode = 'i', .len = 10, .init = range10}));

    mp_process *p;
    check("mp_process_create", mp_process_create(&p, &(mp_process_opts){.target = f, .args = &s}));
    check("mp_process_start", mp_process_start(p));
    check("mp_process_join", mp_process_join(p, MP_FOREVER));
    int code = -1;
    check("mp_process_exitcode", mp_process_exitcode(p, &code));
    mp_process_destroy(p);
    if (code != 0) {
        fprintf(stderr, "f exited with code %d\n", code);
        return 1;
    }

    double num;
    check("mp_value_get_double", mp_value_get_double(s.num, &num));
    printf("%.8g\n", num);
    const int *a = mp_array_data(s.arr);
    printf("[");
    for (size_t i = 0; i < mp_array_len(s.arr); i++)
        printf("%s%d", i ? ", " : "", a[i]);
    printf("]\n");
    mp_array_destroy(s.arr);
    mp_value_destroy(s.num);
    return 0;
}
