/* 60_manager_dict — seed 000, a dict shared through a manager:
 *
 *     def worker(d, key, value):
 *         d[key] = value
 *
 *     mgr = multiprocessing.Manager()
 *     d = mgr.dict()
 *     jobs = [multiprocessing.Process(target=worker, args=(d, i, i*2))
 *             for i in range(10)]
 *     for j in jobs: j.start()
 *     for j in jobs: j.join()
 *     print('Results:')
 *     for key, value in enumerate(dict(d)):
 *         print("%s=%s" % (key, value))
 *
 * The seed enumerates the keys of the dict, so it prints each key's
 * position and the key itself (0=0 ... 9=9); the second part prints what
 * the seed meant, the key and its value. The dict lives in the shared heap:
 * each child writes into it directly, there is no server process. Keys are
 * the bytes of an int64 here; values are int64 items.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <multiproc.h>

#define JOBS 10

static mp_dict *d; /* a pointer into the shared heap: valid in every child */

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int worker(const void *arg, size_t len)
{
    int64_t key;
    if (len != sizeof(key))
        return 2;
    memcpy(&key, arg, sizeof(key));
    int rc = mp_dict_set_item(d, &key, sizeof(key), &MP_ITEM_INT64(key * 2));
    return rc < 0 ? 1 : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints the dict in key order: the seed's enumerate, then the entries. */
static int print_results(void)
{
    mp_snapshot *s;
    int rc = mp_dict_items(d, &s);
    if (rc < 0) {
        report("mp_dict_items", rc);
        return 1;
    }
    size_t n = mp_snapshot_len(s);
    int64_t kv[JOBS][2];
    for (size_t i = 0; i < n && i < JOBS; i++) {
        mp_item k, v;
        mp_snapshot_key(s, i, &k);
        mp_snapshot_value(s, i, &v);
        memcpy(&kv[i][0], k.data, sizeof(int64_t));
        memcpy(&kv[i][1], v.data, sizeof(int64_t));
    }
    mp_snapshot_destroy(s);
    if (n != JOBS)
        return 1;
    qsort(kv, n, sizeof(kv[0]), cmp_i64);
    puts("Results:");
    for (size_t i = 0; i < n; i++)
        printf("%zu=%" PRId64 "\n", i, kv[i][0]);
    puts("=== what the seed meant: for key, value in sorted(d.items()) ===");
    for (size_t i = 0; i < n; i++)
        printf("%" PRId64 "=%" PRId64 "\n", kv[i][0], kv[i][1]);
    return 0;
}

int main(void)
{
    mp_manager *mgr = NULL;
    mp_process *jobs[JOBS] = {NULL};
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: d = Manager().dict(); ten processes set d[i] = i*2 ===");
    int rc = mp_manager_open(&mgr, "local");
    if (rc >= 0)
        rc = mp_manager_dict(mgr, "d", &d);
    if (rc < 0) {
        report("mp_manager_open/dict", rc);
        goto out;
    }
    for (int64_t i = 0; i < JOBS; i++) {
        rc = mp_process_create(
            &jobs[i], &(mp_process_opts){.target = worker, .args = &i, .args_len = sizeof(i)});
        if (rc >= 0)
            rc = mp_process_start(jobs[i]);
        if (rc < 0) {
            report("mp_process_create/start", rc);
            goto out;
        }
    }
    for (int i = 0; i < JOBS; i++) {
        int code = -1;
        rc = mp_process_join(jobs[i], MP_FOREVER);
        if (rc >= 0)
            rc = mp_process_exitcode(jobs[i], &code);
        if (rc < 0 || code != 0) {
            fprintf(stderr, "worker %d failed (%d)\n", i, code);
            goto out;
        }
    }
    status = print_results();
out:
    for (int i = 0; i < JOBS; i++)
        mp_process_destroy(jobs[i]);
    mp_manager_close(mgr);
    return status;
}
