/* 62_namespace — seed 000, a Namespace has no methods but writable
 * attributes:
 *
 *     manager = multiprocessing.Manager()
 *     Global = manager.Namespace()
 *     Global.x = 10
 *     Global.y = 'hello'
 *     print(Global)          # Namespace(x=10, y='hello')
 *
 * Then, beyond the seed: a child process changes Global.x and the parent
 * sees the change, since the namespace lives in the shared heap.
 */
#include <stdio.h>
#include <stdlib.h>

#include <multiproc.h>

static mp_namespace *Global;

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int print_namespace(void)
{
    char *text;
    int rc = mp_namespace_repr(Global, &text);
    if (rc < 0) {
        report("mp_namespace_repr", rc);
        return 1;
    }
    puts(text);
    free(text);
    return 0;
}

static int child(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    int rc = mp_namespace_set_int(Global, "x", 11);
    if (rc >= 0)
        rc = mp_namespace_set_double(Global, "z", 2.5);
    return rc < 0 ? 1 : 0;
}

int main(void)
{
    mp_manager *manager = NULL;
    mp_process *p = NULL;
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: Global = Manager().Namespace(); Global.x = 10; Global.y = 'hello' ===");
    int rc = mp_manager_open(&manager, "local");
    if (rc >= 0)
        rc = mp_manager_namespace(manager, "Global", &Global);
    if (rc >= 0)
        rc = mp_namespace_set_int(Global, "x", 10);
    if (rc >= 0)
        rc = mp_namespace_set_str(Global, "y", "hello");
    if (rc < 0) {
        report("mp_manager_namespace/set", rc);
        goto out;
    }
    if (print_namespace() != 0)
        goto out;

    puts("=== a child sets Global.x = 11 and Global.z = 2.5 ===");
    rc = mp_process_create(&p, &(mp_process_opts){.target = child});
    if (rc >= 0)
        rc = mp_process_start(p);
    if (rc >= 0)
        rc = mp_process_join(p, MP_FOREVER);
    int code = -1;
    if (rc >= 0)
        rc = mp_process_exitcode(p, &code);
    if (rc < 0 || code != 0) {
        report("child", rc < 0 ? rc : MP_ETASKFAILED);
        goto out;
    }
    status = print_namespace();
out:
    mp_process_destroy(p);
    mp_manager_close(manager);
    return status;
}
