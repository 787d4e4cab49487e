/* 61_manager_dict_pids — seed 001, sharing data with a Manager:
 *
 *     def func(key, shareddata):
 *         shareddata[key] = "我是进程" + str(os.getpid())
 *         print(shareddata)
 *
 *     shareddata = Manager().dict()
 *     p1 = Process(target=func, args=("老鸟python", shareddata)); p1.start()
 *     p2 = Process(target=func, args=("ruhua", shareddata)); p2.start()
 *     p1.join(); p2.join()
 *     shareddata["贾跃亭"] = "我是进程" + str(os.getpid())
 *     print(shareddata)
 *
 * The two children run at the same time, so which one prints first, and
 * whether it already sees the other's entry, varies from run to run, as in
 * Python. mp_dict_repr prints the dict as Python does, in insertion order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <multiproc.h>

static mp_dict *shareddata;

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* shareddata[key] = "我是进程<pid>"; print(shareddata) */
static int set_and_print(const char *key)
{
    char value[64];
    snprintf(value, sizeof(value), "我是进程%d", (int)getpid());
    int rc = mp_dict_set_str(shareddata, key, value);
    char *text = NULL;
    if (rc >= 0)
        rc = mp_dict_repr(shareddata, &text);
    if (rc < 0) {
        report("mp_dict_set_str/repr", rc);
        return 1;
    }
    puts(text);
    free(text);
    return 0;
}

static int func(const void *arg, size_t len)
{
    const char *key = arg;
    if (len == 0 || key[len - 1] != '\0')
        return 2;
    return set_and_print(key);
}

int main(void)
{
    static const char *const keys[2] = {"老鸟python", "ruhua"};
    mp_manager *m = NULL;
    mp_process *p[2] = {NULL, NULL};
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: shareddata = Manager().dict(); two processes and the parent add their pid ===");
    int rc = mp_manager_open(&m, NULL);
    if (rc >= 0)
        rc = mp_manager_dict(m, "shareddata", &shareddata);
    if (rc < 0) {
        report("mp_manager_open/dict", rc);
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        rc = mp_process_create(
            &p[i],
            &(mp_process_opts){.target = func, .args = keys[i], .args_len = strlen(keys[i]) + 1});
        if (rc >= 0)
            rc = mp_process_start(p[i]);
        if (rc < 0) {
            report("mp_process_create/start", rc);
            goto out;
        }
    }
    for (int i = 0; i < 2; i++) {
        int code = -1;
        rc = mp_process_join(p[i], MP_FOREVER);
        if (rc >= 0)
            rc = mp_process_exitcode(p[i], &code);
        if (rc < 0 || code != 0)
            goto out;
    }
    status = set_and_print("贾跃亭");
out:
    for (int i = 0; i < 2; i++)
        mp_process_destroy(p[i]);
    mp_manager_close(m);
    return status;
}
