/* 63_manager_list_counter — beyond the seeds: a list and a counter shared
 * by name through the manager.
 *
 *     mgr = Manager()
 *     hits, log = mgr.dict(), mgr.list()
 *     def work(n):
 *         for i in range(1000):
 *             hits['n'] = hits.get('n', 0) + 1   # NOT atomic in Python:
 *         log.append('worker %d done' % n)      # updates get lost
 *
 * Four processes count to 1000 each in one shared counter and append a
 * line to a shared list. mp_dict_add_int64 is an atomic read-modify-write
 * (Python's `d[k] += 1` on a manager dict is not), so the total is always
 * 4000. The children find both objects by name: no pointer is passed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <multiproc.h>

#define WORKERS 4

static mp_manager *mgr;

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

static int work(const void *arg, size_t len)
{
    int n = *(const int *)arg;
    (void)len;
    mp_dict *hits;
    mp_list *log;
    if (mp_manager_dict(mgr, "hits", &hits) < 0 || mp_manager_list(mgr, "log", &log) < 0)
        return 1;
    for (int i = 0; i < 1000; i++)
        if (mp_dict_add_int64(hits, "n", 1, NULL) < 0)
            return 1;
    char line[32];
    snprintf(line, sizeof(line), "worker %d done", n);
    return mp_list_append(log, &MP_ITEM_STR(line)) < 0 ? 1 : 0;
}

static int print_results(void)
{
    mp_dict *hits;
    mp_list *log;
    int64_t total;
    int rc = mp_manager_dict(mgr, "hits", &hits);
    if (rc >= 0)
        rc = mp_manager_list(mgr, "log", &log);
    if (rc >= 0)
        rc = mp_dict_get_int64(hits, "n", &total);
    if (rc >= 0)
        rc = mp_list_sort(log, NULL, NULL);
    mp_snapshot *s = NULL;
    if (rc >= 0)
        rc = mp_list_slice(log, 0, MP_LIST_END, &s);
    if (rc < 0) {
        report("reading the results", rc);
        return 1;
    }
    printf("hits['n'] = %" PRId64 "\n", total);
    for (size_t i = 0; i < mp_snapshot_len(s); i++) {
        mp_item v;
        mp_snapshot_value(s, i, &v);
        printf("log[%zu] = '%s'\n", i, (const char *)v.data);
    }
    mp_snapshot_destroy(s);
    return 0;
}

int main(void)
{
    mp_process *p[WORKERS] = {NULL};
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== four processes: 1000 atomic increments each, and one line in a shared list ===");
    int rc = mp_manager_open(&mgr, "local");
    if (rc < 0) {
        report("mp_manager_open", rc);
        goto out;
    }
    for (int i = 0; i < WORKERS; i++) {
        rc = mp_process_create(
            &p[i], &(mp_process_opts){.target = work, .args = &i, .args_len = sizeof(i)});
        if (rc >= 0)
            rc = mp_process_start(p[i]);
        if (rc < 0) {
            report("mp_process_create/start", rc);
            goto out;
        }
    }
    for (int i = 0; i < WORKERS; i++) {
        int code = -1;
        rc = mp_process_join(p[i], MP_FOREVER);
        if (rc >= 0)
            rc = mp_process_exitcode(p[i], &code);
        if (rc < 0 || code != 0) {
            fprintf(stderr, "worker %d failed\n", i);
            goto out;
        }
    }
    status = print_results();
out:
    for (int i = 0; i < WORKERS; i++)
        mp_process_destroy(p[i]);
    mp_manager_close(mgr);
    return status;
}
