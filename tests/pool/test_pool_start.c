/* The pool under each start method: which function and ctx pointers reach
 * the workers, what is refused and with which error, the initializer, and
 * replacement workers started like the first ones; a process target in a
 * module the child lacks, and running out of fds while workers start. Runs under fork, spawn
 * and forkserver (tests/CMakeLists.txt); the whole of test_pool too. */
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/forkserver.h"
#include "mp_test.h"
#include "pool/pool_internal.h"

/* The fork server's fds live as long as the process: start it first, also
 * for the tests that ask for forkserver whatever the suite's method is. */
static void start_setup(void)
{
    cr_assert_eq(mp_forkserver_ensure(), 0);
    mp_test_fd_setup();
}

TestSuite(pool_start, .init = start_setup, .fini = mp_test_fd_check, .timeout = 60);

static int add_ctx(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                   void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len;
    *(int64_t *)out = *(const int64_t *)in + *(const int64_t *)ctx;
    return 0;
}

static int sum_ctx(int64_t begin, int64_t end, void *acc, void *ctx)
{
    for (int64_t i = begin; i < end; i++)
        *(int64_t *)acc += i + *(const int64_t *)ctx;
    return 0;
}

static void add_partial(void *total, const void *partial, void *ctx)
{
    (void)ctx;
    *(int64_t *)total += *(const int64_t *)partial;
}

static const int64_t static_delta = 1000;

Test(pool_start, static_and_heap_ctx_reach_the_workers)
{
    mp_pool *p = mp_test_pool(2);
    int64_t *heap_delta = mp_alloc(sizeof *heap_delta);
    cr_assert(heap_delta);
    *heap_delta = 7; /* after the workers started: the heap is shared */
    int64_t x = 5, y = 0;
    mp_assert_ok(mp_pool_apply(p, add_ctx, (void *)&static_delta, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 1005);
    mp_assert_ok(mp_pool_apply(p, add_ctx, heap_delta, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 12);
    int64_t in[40], out[40];
    for (int i = 0; i < 40; i++)
        in[i] = i;
    mp_assert_ok(mp_pool_map(p,
                             &(mp_map_spec){.fn = add_ctx,
                                            .ctx = (void *)&static_delta,
                                            .in = in,
                                            .n = 40,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 3},
                             30));
    for (int i = 0; i < 40; i++)
        cr_assert_eq(out[i], i + 1000);
    int64_t sum = 0;
    mp_assert_ok(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_ctx,
                                            .ctx = heap_delta,
                                            .begin = 0,
                                            .end = 100,
                                            .chunksize = 10,
                                            .acc_size = 8,
                                            .reduce = add_partial,
                                            .result = &sum},
                             30));
    cr_assert_eq(sum, 4950 + 700);
    mp_test_pool_finish(p, 30);
    mp_free(heap_delta);
}

/* Shared objects live in the shared heap: a handle passes as it is. */
static int record_in_dict(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                          void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)out_len;
    int64_t x = *(const int64_t *)in;
    char key[32];
    snprintf(key, sizeof key, "k%lld", (long long)x);
    int rc = mp_dict_set_int64(ctx, key, x * x);
    return rc < 0 ? rc : mp_dict_add_int64(ctx, "sum", x, NULL);
}

Test(pool_start, shared_object_handles_work_as_ctx)
{
    mp_dict *d = NULL;
    mp_assert_ok(mp_dict_create(&d, NULL));
    mp_pool *p = mp_test_pool(2);
    int64_t in[50];
    for (int i = 0; i < 50; i++)
        in[i] = i;
    mp_assert_ok(mp_pool_map(
        p,
        &(mp_map_spec){
            .fn = record_in_dict, .ctx = d, .in = in, .n = 50, .in_size = 8, .chunksize = 5},
        30));
    mp_test_pool_finish(p, 30);
    int64_t v = 0;
    size_t len = 0;
    mp_assert_ok(mp_dict_get_int64(d, "sum", &v));
    cr_assert_eq(v, 1225);
    mp_assert_ok(mp_dict_get_int64(d, "k7", &v));
    cr_assert_eq(v, 49);
    mp_assert_ok(mp_dict_len(d, &len));
    cr_assert_eq(len, 51);
    mp_dict_destroy(d);
}

Test(pool_start, stack_and_malloc_ctx_are_refused_at_submit)
{
    MP_TEST_FRESH_IMAGE_ONLY();
    mp_pool *p = mp_test_pool(1);
    int64_t local = 1, x = 2, y = 0;
    int64_t *mem = malloc(sizeof *mem);
    cr_assert(mem);
    *mem = 1;
    mp_async *a = NULL;
    mp_assert_rc(mp_pool_apply_async(p, add_ctx, &local, &x, 8, 8, NULL, NULL, NULL, &a),
                 MP_EINVAL);
    mp_assert_rc(mp_pool_apply(p, add_ctx, mem, &x, 8, &y, 8, NULL, 30), MP_EINVAL);
    mp_assert_rc(
        mp_pool_map(p, &(mp_map_spec){.fn = add_ctx, .ctx = mem, .in = &x, .n = 1, .in_size = 8},
                    30),
        MP_EINVAL);
    int64_t sum = 0;
    mp_assert_rc(mp_pool_for(p,
                             &(mp_for_spec){.fn = sum_ctx,
                                            .ctx = &local,
                                            .end = 10,
                                            .acc_size = 8,
                                            .reduce = add_partial,
                                            .result = &sum},
                             30),
                 MP_EINVAL);
    /* Nothing was queued, and the pool still works. */
    cr_assert_eq(mp_pool_poll(p), 0);
    mp_assert_ok(mp_pool_apply(p, add_ctx, (void *)&static_delta, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 1002);
    mp_test_pool_finish(p, 30);
    mp_pool *q = NULL;
    mp_assert_rc(mp_pool_create(&q, &(mp_pool_opts){.processes = 1,
                                                    .initializer = (mp_init_fn)(uintptr_t)free,
                                                    .initarg = &local}),
                 MP_EINVAL);
    free(mem);
    cr_assert_eq(mp_active_children(NULL, 0), 0);
}

Test(pool_start, malloc_ctx_made_before_the_pool_works_under_fork)
{
    MP_TEST_FORK_ONLY();
    int64_t *mem = malloc(sizeof *mem);
    cr_assert(mem);
    *mem = 40; /* before the workers are forked: they see it */
    mp_pool *p = mp_test_pool(1);
    int64_t x = 2, y = 0;
    mp_assert_ok(mp_pool_apply(p, add_ctx, mem, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 42);
    mp_test_pool_finish(p, 30);
    free(mem);
}

/* Worker-local state set by the initializer (static data of the worker's
 * own image) from an argument in static data. */
static int64_t worker_base;
static const int64_t init_value = 500;

static void set_base(void *arg)
{
    worker_base = *(const int64_t *)arg;
}

static int add_base(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                    void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len, (void)ctx;
    *(int64_t *)out = *(const int64_t *)in + worker_base;
    return 0;
}

Test(pool_start, initializer_runs_in_every_worker_with_its_argument)
{
    mp_pool *p = NULL;
    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 2,
                                                    .maxtasksperchild = 3,
                                                    .initializer = set_base,
                                                    .initarg = (void *)&init_value}));
    int64_t in[30], out[30];
    for (int i = 0; i < 30; i++)
        in[i] = i;
    mp_assert_ok(mp_pool_map(p,
                             &(mp_map_spec){.fn = add_base,
                                            .in = in,
                                            .n = 30,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 1},
                             30));
    for (int i = 0; i < 30; i++)
        cr_assert_eq(out[i], i + 500, "item %d", i);
    mp_test_pool_finish(p, 30);
}

static int triple_of(void *fn, int64_t x, int64_t *y)
{
    mp_pool *p = mp_test_pool(1);
    int rc = mp_pool_apply(p, (mp_task_fn)(uintptr_t)fn, NULL, &x, 8, y, 8, NULL, 30);
    mp_test_pool_finish(p, 30);
    return rc;
}

Test(pool_start, task_in_a_module_loaded_after_the_pool_started_is_refused)
{
    /* Under every method: a fork worker is a copy of the parent from
     * before the dlopen, and would crash calling into the module. */
    mp_pool *p = mp_test_pool(1);
    void *h = dlopen(MP_POOL_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h, "%s", dlerror());
    void *fn = dlsym(h, "plugin_triple");
    cr_assert(fn);
    int64_t x = 2, y = 0;
    mp_async *a = NULL;
    mp_assert_rc(
        mp_pool_apply_async(p, (mp_task_fn)(uintptr_t)fn, NULL, &x, 8, 8, NULL, NULL, NULL, &a),
        MP_ENOTLOADED);
    mp_assert_rc(mp_pool_map(p,
                             &(mp_map_spec){.fn = (mp_task_fn)(uintptr_t)fn,
                                            .in = &x,
                                            .n = 1,
                                            .in_size = 8,
                                            .out = &y,
                                            .out_size = 8},
                             30),
                 MP_ENOTLOADED);
    cr_assert(strstr(mp_strerror(MP_ENOTLOADED), "dlopen"), "%s", mp_strerror(MP_ENOTLOADED));
    /* A ctx pointer into that module is refused the same way, where the
     * pool checks ctx pointers (spawn, forkserver). */
    void *data = dlsym(h, "plugin_init");
    if (mp_get_start_method() != MP_START_FORK)
        mp_assert_rc(mp_pool_apply(p, add_ctx, data, &x, 8, &y, 8, NULL, 30), MP_ENOTLOADED);
    /* The pool goes on with the program's own functions. */
    mp_assert_ok(mp_pool_apply(p, add_ctx, (void *)&static_delta, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 1002);
    mp_test_pool_finish(p, 30);
    dlclose(h);
}

Test(pool_start, task_in_a_module_the_workers_lack_fails_with_the_reason)
{
    /* Loaded before the pool: fork workers have it; spawned ones and the
     * fork server's (a spawned image itself) do not. */
    void *h = dlopen(MP_POOL_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h, "%s", dlerror());
    void *fn = dlsym(h, "plugin_triple");
    cr_assert(fn);
    int64_t y = 0;
    if (mp_get_start_method() == MP_START_FORK) {
        mp_assert_ok(triple_of(fn, 5, &y));
        cr_assert_eq(y, 15);
        dlclose(h);
        return;
    }
    mp_assert_rc(triple_of(fn, 5, &y), MP_ENOTLOADED);
    /* Every item of a map fails with the reason; the pool goes on. */
    mp_pool *p = mp_test_pool(2);
    int64_t in[20] = {0}, out[20];
    mp_task_error errs[20];
    size_t nerr = 0;
    mp_assert_rc(mp_pool_map(p,
                             &(mp_map_spec){.fn = (mp_task_fn)(uintptr_t)fn,
                                            .in = in,
                                            .n = 20,
                                            .in_size = 8,
                                            .out = out,
                                            .out_size = 8,
                                            .chunksize = 4,
                                            .errors = errs,
                                            .errors_cap = 20,
                                            .n_errors = &nerr},
                             30),
                 MP_ENOTLOADED);
    cr_assert_eq(nerr, 20);
    for (size_t i = 0; i < nerr; i++)
        cr_assert_eq(errs[i].code, MP_ENOTLOADED);
    int64_t x = 1;
    mp_assert_ok(mp_pool_apply(p, add_ctx, (void *)&static_delta, &x, 8, &y, 8, NULL, 30));
    cr_assert_eq(y, 1001);
    mp_test_pool_finish(p, 30);
    /* An initializer there: the workers fail their tasks with the reason
     * (instead of dying and being replaced forever). */
    mp_assert_ok(mp_pool_create(
        &p, &(mp_pool_opts){.processes = 1,
                            .initializer = (mp_init_fn)(uintptr_t)dlsym(h, "plugin_init")}));
    mp_assert_rc(mp_pool_apply(p, add_ctx, (void *)&static_delta, &x, 8, &y, 8, NULL, 30),
                 MP_ENOTLOADED);
    mp_test_pool_finish(p, 30);
    dlclose(h);
}

Test(pool_start, module_of_another_build_fails_the_task_with_the_reason)
{
    MP_TEST_FRESH_IMAGE_ONLY();
    /* What a worker of another build would see, made by hand: the pool's
     * entry for the program (added by the first submit, decoded by a worker
     * when it first meets it) gets another build-id before any worker
     * looks at it. */
    mp_pool *p = mp_test_pool(1);
    mp_assert_ok(mp__pool_xlate_check(p, (const void *)(uintptr_t)add_ctx, true, "test", "fn"));
    cr_assert_eq(atomic_load(&p->shm->nmods), 1);
    mp__symref *ref = &p->shm->mods[0].ref;
    if (ref->build_id_len == 0)
        ref->build_id_len = 1;
    ref->build_id[0] ^= 0xff;
    int64_t x = 1, y = 0;
    mp_assert_rc(mp_pool_apply(p, add_ctx, (void *)&static_delta, &x, 8, &y, 8, NULL, 30),
                 MP_EOTHERBUILD);
    mp_test_pool_finish(p, 30);
}

Test(pool_start, process_target_in_a_module_the_child_lacks_fails_its_start_with_the_reason)
{
    void *h = dlopen(MP_POOL_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h, "%s", dlerror());
    mp_target_fn fn = (mp_target_fn)(uintptr_t)dlsym(h, "plugin_exit7");
    cr_assert(fn);
    mp_process *p = NULL;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = fn}));
    if (mp_get_start_method() == MP_START_FORK) {
        /* A fork child has every module its parent had. */
        mp_assert_ok(mp_process_start(p));
        mp_assert_ok(mp_process_join(p, 30));
        int code = -1;
        mp_assert_ok(mp_process_exitcode(p, &code));
        cr_assert_eq(code, 7);
    } else {
        mp_assert_rc(mp_process_start(p), MP_ENOTLOADED);
        mp_assert_rc(mp_process_join(p, 0), MP_ENOTSTARTED); /* no child exists */
    }
    mp_process_destroy(p);
    dlclose(h);
}

Test(pool_start, reference_to_another_build_is_told_apart_from_a_missing_module)
{
    mp__symref ref;
    void *addr = NULL;
    mp_assert_ok(mp__sym_encode((const void *)(uintptr_t)add_ctx, &ref));
    mp_assert_ok(mp__sym_decode(&ref, &addr));
    cr_assert_eq(addr, (void *)(uintptr_t)add_ctx);
    mp__symref other = ref;
    if (other.build_id_len == 0)
        other.build_id_len = 1;
    other.build_id[0] ^= 0xff;
    mp_assert_rc(mp__sym_decode(&other, &addr), MP_EOTHERBUILD);
    mp__symref missing = ref;
    snprintf(missing.path, sizeof(missing.path), "/nonexistent/libnothing.so");
    mp_assert_rc(mp__sym_decode(&missing, &addr), MP_ENOTLOADED);
    mp__symref bad = ref;
    memset(bad.path, 'x', sizeof(bad.path)); /* no terminator */
    mp_assert_rc(mp__sym_decode(&bad, &addr), MP_EBADMSG);
}

static int sleep_then_pid(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                          void *ctx)
{
    (void)in_len, (void)out_cap;
    if (ctx)
        atomic_store((_Atomic int *)ctx, 1); /* started: in the shared heap */
    usleep((useconds_t)(*(const double *)in * 1e6));
    *(pid_t *)out = getpid();
    *out_len = sizeof(pid_t);
    return 0;
}

static int parent_pid(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                      void *ctx)
{
    (void)in, (void)in_len, (void)out_cap, (void)ctx;
    *(pid_t *)out = getppid();
    *out_len = sizeof(pid_t);
    return 0;
}

Test(pool_start, killed_forkserver_worker_fails_its_task_and_is_replaced_by_the_server)
{
    /* The pool takes the default when it is created; its replacements
     * start the same way even after the default changed. */
    mp_assert_ok(mp_set_start_method(MP_START_FORKSERVER));
    mp_pool *p = mp_test_pool(1);
    mp_assert_ok(mp_set_start_method(MP_START_FORK));
    pid_t before = 0, after = 0, ppid = 0;
    cr_assert_eq(mp_pool_pids(p, &before, 1), 1);
    mp_assert_ok(mp_pool_apply(p, parent_pid, NULL, NULL, 0, &ppid, sizeof ppid, NULL, 30));
    cr_assert_neq(ppid, getpid()); /* a child of the fork server */
    double secs = 30;
    mp_async *a = NULL;
    _Atomic int *started = mp_calloc(1, sizeof *started);
    cr_assert(started);
    mp_assert_ok(mp_pool_apply_async(p, sleep_then_pid, (void *)started, &secs, sizeof secs, 8,
                                     NULL, NULL, NULL, &a));
    double t0 = mp_test_now();
    while (!atomic_load(started) && mp_test_now() - t0 < 20)
        mp_assert_rc(mp_async_wait(a, 0.01), MP_ETIMEDOUT);
    cr_assert(atomic_load(started));
    cr_assert_eq(kill(before, SIGKILL), 0);
    mp_assert_rc(mp_async_get(a, NULL, 0, NULL, 30), MP_EWORKERLOST);
    mp_task_error e;
    mp_assert_ok(mp_async_error(a, 0, &e));
    cr_assert_eq(e.code, MP_EWORKERLOST);
    cr_assert_eq(e.pid, before);
    cr_assert_eq(e.signal, SIGKILL);
    mp_async_destroy(a);
    secs = 0;
    mp_assert_ok(
        mp_pool_apply(p, sleep_then_pid, NULL, &secs, sizeof secs, &after, sizeof after, NULL, 30));
    cr_assert_neq(after, before);
    mp_assert_ok(mp_pool_apply(p, parent_pid, NULL, NULL, 0, &ppid, sizeof ppid, NULL, 30));
    cr_assert_neq(ppid, getpid());
    mp_test_pool_finish(p, 30);
    mp_free((void *)started);
    mp_assert_ok(mp_set_start_method(MP_START_DEFAULT));
}

static int child_count(void)
{
    return mp_test_children(getpid(), NULL, 0);
}

/* Under forkserver the workers are the server's children (the server is
 * this process's only one): after a failed start only the server's spares
 * may be left, once the kernel has released the workers it stopped. */
static bool server_has_only_spares(void)
{
    pid_t server = 0;
    if (mp_get_start_method() != MP_START_FORKSERVER)
        return true;
    if (mp_test_children(getpid(), &server, 1) != 1)
        return false;
    for (int i = 0; i < 500; i++) {
        if (mp_test_children(server, NULL, 0) == FS_SPARES)
            return true;
        usleep(10000);
    }
    return false;
}

/* In a forked child: create a pool of 8 (by the suite's start method) with
 * room for only `room` more fds, so that the workers' start fails part of
 * the way through. 0: it started and ran a map; 1: it failed cleanly (no
 * worker left running or unreaped, no fd left open); 10 and up: a defect. */
static int pool_under_fd_limit(int room)
{
    if (mp_get_start_method() == MP_START_FORKSERVER && mp_forkserver_ensure() < 0)
        return 10;
    int fds = mp_test_fd_count(), kids = child_count(), lowest = dup(0);
    struct rlimit rl;
    if (fds < 0 || kids < 0 || lowest < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 11;
    close(lowest);
    /* New fds take the numbers from `lowest` up: room for `room` of them,
     * and one to look at /proc afterwards. */
    rl.rlim_cur = (rlim_t)(lowest + 1 + room);
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 12;
    mp_pool *p = NULL;
    int rc = mp_pool_create(&p, &(mp_pool_opts){.processes = 8});
    if (rc == 0) {
        int64_t in[16], out[16];
        for (int i = 0; i < 16; i++)
            in[i] = i;
        rc = mp_pool_map(p,
                         &(mp_map_spec){.fn = add_ctx,
                                        .ctx = (void *)&static_delta,
                                        .in = in,
                                        .n = 16,
                                        .in_size = 8,
                                        .out = out,
                                        .out_size = 8},
                         30);
        for (int i = 0; rc == 0 && i < 16; i++)
            rc = out[i] == i + static_delta ? 0 : -1;
        if (mp_pool_close(p) < 0 || mp_pool_join(p, 30) < 0)
            rc = -1;
        mp_pool_destroy(p);
        return rc == 0 ? 0 : 13;
    }
    if (child_count() != kids || !server_has_only_spares())
        return 14;
    /* The fork server's spares (each a pidfd and a socket here) are used up
     * and replaced: count them with their number made whole again. */
    if (mp_get_start_method() == MP_START_FORKSERVER && mp_forkserver_ensure() < 0)
        return 16;
    if (mp_test_fd_count() != fds)
        return 15;
    return 1;
}

Test(pool_start, running_out_of_fds_while_starting_workers_fails_cleanly)
{
    int ok = 0, failed = 0;
    for (int room = 0; room <= 12; room++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
            _exit(pool_under_fd_limit(room));
        int st = 0;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFEXITED(st), "room %d: the child died (status %#x)", room, st);
        int code = WEXITSTATUS(st);
        cr_assert(code <= 1, "room %d: defect %d", room, code);
        cr_log_info("room %d: %s", room, code ? "failed" : "started");
        ok += code == 0;
        failed += code == 1;
    }
    /* A fork worker needs no fd (without a pidfd its parent polls); a
     * spawn worker needs its start socket, a forkserver worker its pidfd
     * (the server's two spares come with theirs, taken beforehand, which
     * covers the first workers). */
    if (mp_get_start_method() != MP_START_FORK)
        cr_assert_gt(failed, 0, "no limit made the pool fail");
    cr_assert_gt(ok, 0, "no limit let the pool start");
}
