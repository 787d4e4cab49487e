/* Tests of streaming maps: mp_pool_imap_stream (items of any size read
 * lazily from a source, through a bounded window) and mp_imap_next_sized
 * (results of any size). Tasks that must stay unfinished wait on an event
 * in the shared heap that the test sets, so that no test depends on
 * timing. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intr.h"
#include "mp_test.h"

TestSuite(pool_stream, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 120);

/* ---- sources ----------------------------------------------------------*/

/* Item i (from 0) is "i:" followed by (i % 97) letters; n items, then the
 * end, or end_code after n items when it is not 0. Counts what was read
 * and how far it ran ahead of what the test took. again: answer
 * MP_EAGAIN before every other item. */
typedef struct counter {
    uint64_t n, read, taken, max_ahead;
    int end_code;
    bool again, asked_again;
    uint64_t calls_after_end;
    bool ended;
    size_t oversize_at; /* 0: never; else item (oversize_at - 1) claims too many bytes */
} counter;

static size_t make_item(uint64_t i, char *buf, size_t cap)
{
    int k = snprintf(buf, cap, "%llu:", (unsigned long long)i);
    size_t len = (size_t)k;
    for (uint64_t j = 0; j < i % 97 && len < cap; j++)
        buf[len++] = (char)('a' + (i + j) % 26);
    return len;
}

static int count_source(void *item, size_t cap, size_t *len, void *user)
{
    counter *c = user;
    if (c->ended) {
        c->calls_after_end++;
        return 0;
    }
    if (c->again && !c->asked_again) {
        c->asked_again = true;
        return MP_EAGAIN;
    }
    c->asked_again = false;
    if (c->read == c->n) {
        c->ended = true;
        return c->end_code;
    }
    if (c->oversize_at && c->read + 1 == c->oversize_at) {
        *len = cap + 1;
        return 1;
    }
    *len = make_item(c->read, item, cap);
    c->read++;
    if (c->read - c->taken > c->max_ahead)
        c->max_ahead = c->read - c->taken;
    return 1;
}

/* ---- tasks ------------------------------------------------------------*/

/* The result of an item is its bytes reversed, then its length as a
 * decimal: a result whose size depends on the item. Items whose number
 * ends in 3 fail with code 7 and a message; "13:..." kills its worker
 * when ctx is not NULL (then ctx is an int flag: kill once). */
static int reverse(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                   void *ctx)
{
    const char *s = in;
    unsigned long long i = strtoull(s, NULL, 10);
    if (ctx && i == 13)
        raise(SIGKILL);
    if (i % 10 == 3)
        return mp_task_fail(7, "item %llu refused", i);
    char tmp[64];
    int k = snprintf(tmp, sizeof tmp, "#%zu", in_len);
    if (in_len + (size_t)k > out_cap)
        return 99;
    for (size_t j = 0; j < in_len; j++)
        ((char *)out)[j] = s[in_len - 1 - j];
    memcpy((char *)out + in_len, tmp, (size_t)k);
    *out_len = in_len + (size_t)k;
    return 0;
}

static size_t expected(uint64_t i, char *buf, size_t cap)
{
    char item[256];
    size_t len = make_item(i, item, sizeof item);
    for (size_t j = 0; j < len; j++)
        buf[j] = item[len - 1 - j];
    int k = snprintf(buf + len, cap - len, "#%zu", len);
    return len + (size_t)k;
}

/* Waits on the event ctx (when not NULL) before giving an 8-byte result. */
static int gated(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                 void *ctx)
{
    (void)in_len, (void)out_cap;
    if (ctx && strncmp(in, "0:", 2) == 0 && mp_event_wait(ctx, 60) != 0)
        return 98;
    memset(out, 'x', 8);
    *out_len = 8;
    return 0;
}

static int count_only(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                      void *ctx)
{
    (void)in, (void)in_len, (void)out, (void)out_cap, (void)out_len, (void)ctx;
    return 0;
}

/* ---- helpers ----------------------------------------------------------*/

static mp_imap *stream(mp_pool *p, mp_task_fn fn, void *ctx, counter *c, size_t out_max,
                       bool ordered)
{
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap_stream(p,
                                     &(mp_stream_spec){.fn = fn,
                                                       .ctx = ctx,
                                                       .source = count_source,
                                                       .source_user = c,
                                                       .item_max = 200,
                                                       .out_max = out_max},
                                     ordered, &it));
    return it;
}

/* A stream of c's items whose item 0 waits for *gate (made here) to be
 * set, with 8-byte results. */
static mp_imap *gated_stream(mp_pool *p, mp_event **gate, counter *c, size_t chunksize,
                             size_t window, bool ordered)
{
    mp_assert_ok(mp_event_create(gate, NULL));
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap_stream(p,
                                     &(mp_stream_spec){.fn = gated,
                                                       .ctx = *gate,
                                                       .source = count_source,
                                                       .source_user = c,
                                                       .item_max = 64,
                                                       .out_max = 8,
                                                       .chunksize = chunksize,
                                                       .window = window},
                                     ordered, &it));
    return it;
}

/* Takes every result of a reverse stream of c->n items; checks each
 * one, and that each index comes exactly once (in order if ordered). */
static void drain_and_check(mp_imap *it, counter *c, bool ordered, int expect_end)
{
    unsigned char *seen = calloc(c->n ? c->n : 1, 1);
    cr_assert(seen);
    char got[300], want[300];
    for (uint64_t k = 0; k < c->n; k++) {
        size_t len = 0, index = SIZE_MAX;
        mp_task_error e = {0};
        int rc = mp_imap_next_sized(it, got, sizeof got, &len, &index, &e, 60);
        c->taken++;
        cr_assert(index < c->n, "index %zu of %llu items (rc %s)", index, (unsigned long long)c->n,
                  mp_err_name(rc));
        cr_assert(!seen[index], "item %zu given twice", index);
        seen[index] = 1;
        if (ordered)
            cr_assert_eq(index, k, "item %zu given in place of %llu", index, (unsigned long long)k);
        if (index % 10 == 3) {
            mp_assert_rc(rc, MP_ETASKFAILED);
            cr_assert_eq(e.task_code, 7);
            cr_assert_eq(e.index, index);
            char msg[64];
            snprintf(msg, sizeof msg, "item %zu refused", index);
            cr_assert_str_eq(e.message, msg);
            continue;
        }
        mp_assert_ok(rc);
        size_t wl = expected(index, want, sizeof want);
        cr_assert_eq(len, wl, "item %zu: %zu bytes, expected %zu", index, len, wl);
        cr_assert(memcmp(got, want, wl) == 0, "item %zu: wrong bytes", index);
    }
    if (expect_end)
        mp_assert_rc(mp_imap_next_sized(it, got, sizeof got, NULL, NULL, NULL, 10), expect_end);
    mp_assert_rc(mp_imap_next_sized(it, got, sizeof got, NULL, NULL, NULL, 10), MP_EEOF);
    mp_assert_rc(mp_imap_next(it, got, NULL, NULL, 0), MP_EEOF);
    free(seen);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* ---- tests ------------------------------------------------------------*/

Test(pool_stream, ordered_results_of_any_size_come_in_order_with_their_failures)
{
    mp_pool *p = mp_test_pool(2);
    counter c = {.n = 5000};
    mp_imap *it = stream(p, reverse, NULL, &c, 256, true);
    drain_and_check(it, &c, true, 0);
    cr_assert_eq(c.read, c.n);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, unordered_gives_every_item_once)
{
    mp_pool *p = mp_test_pool(3);
    counter c = {.n = 3000};
    mp_imap *it = stream(p, reverse, NULL, &c, 256, false);
    drain_and_check(it, &c, false, 0);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, a_million_items_stream_in_bounded_memory)
{
    /* 10^6 items of up to 110 bytes: about 60 MB if they were held at
     * once. The window holds at most `window` of them. */
    mp_pool *p = mp_test_pool(2);
    counter c = {.n = 1000000};
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap_stream(p,
                                     &(mp_stream_spec){.fn = count_only,
                                                       .source = count_source,
                                                       .source_user = &c,
                                                       .item_max = 128,
                                                       .window = 4096},
                                     true, &it));
    long before = rss_kib();
    size_t index = 0;
    uint64_t k = 0;
    int rc;
    while ((rc = mp_imap_next_sized(it, NULL, 0, NULL, &index, NULL, 60)) == 0) {
        cr_assert_eq(index, k);
        c.taken = ++k;
    }
    mp_assert_rc(rc, MP_EEOF);
    cr_assert_eq(k, 1000000);
    long after = rss_kib();
    /* Read ahead of the taker: never more than the window (rounded up to
     * whole tasks of at most 64 items). */
    cr_assert(c.max_ahead <= 4096 + 64, "read %llu items ahead of the consumer",
              (unsigned long long)c.max_ahead);
    cr_assert(after - before < 8 * 1024, "RSS grew by %ld KiB over 10^6 items", after - before);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, a_slow_first_item_stops_the_reading_at_the_window)
{
    mp_pool *p = mp_test_pool(2);
    mp_event *gate = NULL;
    counter c = {.n = 100000};
    mp_imap *it = gated_stream(p, &gate, &c, 4, 40, true);
    char out[8];
    /* Item 0 waits for the gate: the others finish, the window fills, and
     * the stream stops reading. */
    mp_assert_rc(mp_imap_next(it, out, NULL, NULL, 0.5), MP_ETIMEDOUT);
    mp_assert_rc(mp_imap_next(it, out, NULL, NULL, 0.2), MP_ETIMEDOUT);
    cr_assert_eq(c.read, 40, "read %llu items with a window of 40", (unsigned long long)c.read);
    mp_assert_ok(mp_event_set(gate));
    size_t index;
    for (uint64_t k = 0; k < c.n; k++) {
        mp_assert_ok(mp_imap_next(it, out, &index, NULL, 60));
        cr_assert_eq(index, k);
        c.taken++;
        cr_assert(c.read - c.taken <= 40);
    }
    mp_assert_rc(mp_imap_next(it, out, NULL, NULL, 10), MP_EEOF);
    mp_imap_destroy(it);
    mp_event_destroy(gate);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, a_killed_worker_fails_its_item_alone)
{
    mp_pool *p = mp_test_pool(2);
    counter c = {.n = 500};
    int flag = 1;
    mp_imap *it = stream(p, reverse, &flag, &c, 256, true);
    char got[300], want[300];
    for (uint64_t k = 0; k < c.n; k++) {
        size_t len = 0, index = 0;
        mp_task_error e = {0};
        int rc = mp_imap_next_sized(it, got, sizeof got, &len, &index, &e, 60);
        cr_assert_eq(index, k);
        if (k == 13) {
            mp_assert_rc(rc, MP_EWORKERLOST);
            cr_assert_eq(e.signal, SIGKILL);
        } else if (k % 10 == 3) {
            mp_assert_rc(rc, MP_ETASKFAILED);
        } else {
            mp_assert_ok(rc);
            size_t wl = expected(k, want, sizeof want);
            cr_assert(len == wl && memcmp(got, want, wl) == 0, "item %llu", (unsigned long long)k);
        }
    }
    mp_assert_rc(mp_imap_next(it, got, NULL, NULL, 10), MP_EEOF);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, the_source_ends_the_stream_with_its_own_code_after_its_items)
{
    mp_pool *p = mp_test_pool(2);
    counter c = {.n = 25, .end_code = -4242};
    mp_imap *it = stream(p, reverse, NULL, &c, 256, true);
    drain_and_check(it, &c, true, -4242);
    cr_assert_eq(c.calls_after_end, 0, "the source was called after it ended");
    mp_imap_destroy(it);

    counter u = {.n = 25, .end_code = -4242};
    it = stream(p, reverse, NULL, &u, 256, false);
    drain_and_check(it, &u, false, -4242);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, an_item_larger_than_item_max_ends_the_stream_with_msgsize)
{
    mp_pool *p = mp_test_pool(2);
    counter c = {.n = 1000, .oversize_at = 11};
    mp_imap *it = stream(p, reverse, NULL, &c, 256, true);
    c.n = 10; /* what drain_and_check expects: the 10 items before */
    drain_and_check(it, &c, true, MP_EMSGSIZE);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, a_source_that_has_no_item_yet_is_asked_again)
{
    mp_pool *p = mp_test_pool(2);
    counter c = {.n = 300, .again = true};
    mp_imap *it = stream(p, reverse, NULL, &c, 256, false);
    drain_and_check(it, &c, false, 0);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, a_result_larger_than_cap_is_left_for_a_larger_buffer)
{
    mp_pool *p = mp_test_pool(1);
    counter c = {.n = 60};
    mp_imap *it = stream(p, reverse, NULL, &c, 256, true);
    char small[3], got[300], want[300];
    size_t len = 0, index = 0;
    mp_assert_rc(mp_imap_next_sized(it, small, sizeof small, &len, &index, NULL, 30), MP_EMSGSIZE);
    size_t wl = expected(0, want, sizeof want);
    cr_assert_eq(len, wl);
    mp_assert_ok(mp_imap_next_sized(it, got, sizeof got, &len, &index, NULL, 30));
    cr_assert_eq(index, 0);
    cr_assert(len == wl && memcmp(got, want, wl) == 0);
    /* mp_imap_next gives the same bytes, without their length. */
    memset(got, 0, sizeof got);
    mp_assert_ok(mp_imap_next(it, got, &index, NULL, 30));
    cr_assert_eq(index, 1);
    wl = expected(1, want, sizeof want);
    cr_assert(memcmp(got, want, wl) == 0);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, destroyed_midway_the_source_is_not_called_again_and_the_pool_goes_on)
{
    mp_pool *p = mp_test_pool(2);
    counter c = {.n = 100000};
    mp_imap *it = stream(p, reverse, NULL, &c, 256, true);
    char got[300];
    for (int k = 0; k < 10; k++)
        (void)mp_imap_next_sized(it, got, sizeof got, NULL, NULL, NULL, 30);
    mp_imap_destroy(it);
    uint64_t read = c.read;
    /* The pool runs the next stream, and the first one's source stays untouched. */
    counter d = {.n = 50};
    it = stream(p, reverse, NULL, &d, 256, false);
    drain_and_check(it, &d, false, 0);
    mp_imap_destroy(it);
    cr_assert_eq(c.read, read, "the destroyed stream's source was called again");
    cr_assert(read < c.n);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, an_empty_stream_ends_at_once)
{
    mp_pool *p = mp_test_pool(1);
    counter c = {.n = 0};
    mp_imap *it = stream(p, reverse, NULL, &c, 256, true);
    mp_assert_rc(mp_imap_next(it, NULL, NULL, NULL, 10), MP_EEOF);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, results_not_kept_tell_only_success)
{
    mp_pool *p = mp_test_pool(2);
    counter c = {.n = 200};
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap_stream(
        p,
        &(mp_stream_spec){
            .fn = reverse, .source = count_source, .source_user = &c, .item_max = 200},
        true, &it));
    size_t len = 1, index;
    for (uint64_t k = 0; k < c.n; k++) {
        int rc = mp_imap_next_sized(it, NULL, 0, &len, &index, NULL, 30);
        /* With no room for results, the task's own check fails it (99),
         * and the items ending in 3 fail with 7. */
        mp_assert_rc(rc, MP_ETASKFAILED);
        cr_assert_eq(len, 0);
    }
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, an_iterator_fd_and_mp_wait_follow_the_stream)
{
    mp_pool *p = mp_test_pool(2);
    counter c = {.n = 200};
    mp_imap *it = stream(p, reverse, NULL, &c, 256, false);
    int fd = mp_imap_fd(it);
    cr_assert(fd >= 0);
    uint64_t k = 0;
    char got[300];
    while (k < c.n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&pf, 1, 30000), 1, "the fd never turned readable");
        int rc;
        while ((rc = mp_imap_next_sized(it, got, sizeof got, NULL, NULL, NULL, 0)) == 0 ||
               rc == MP_ETASKFAILED)
            k++;
        cr_assert(rc == MP_ETIMEDOUT || rc == MP_EEOF, "%s", mp_err_name(rc));
    }
    mp_waitable w = MP_WAIT_IMAP(it);
    mp_assert_rc(mp_wait(&w, 1, 10), 1); /* the end is there to take */
    mp_assert_rc(mp_imap_next(it, got, NULL, NULL, 0), MP_EEOF);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, spawn_and_thread_pools_run_streams_too)
{
    mp_pool *p = NULL;
    mp_assert_ok(
        mp_pool_create(&p, &(mp_pool_opts){.processes = 2, .start_method = MP_START_SPAWN}));
    counter c = {.n = 500};
    mp_imap *it = stream(p, reverse, NULL, &c, 256, true);
    drain_and_check(it, &c, true, 0);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);

    mp_assert_ok(mp_pool_create(&p, &(mp_pool_opts){.processes = 2, .threads = true}));
    counter t = {.n = 500};
    it = stream(p, reverse, NULL, &t, 256, false);
    drain_and_check(it, &t, false, 0);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, results_outlive_a_destroyed_pool_and_unfinished_items_fail_closed)
{
    mp_pool *p = mp_test_pool(2);
    mp_event *gate = NULL;
    counter c = {.n = 10};
    mp_imap *it = gated_stream(p, &gate, &c, 1, 0, false);
    char out[8];
    size_t index;
    for (int k = 0; k < 9; k++) {
        mp_assert_ok(mp_imap_next(it, out, &index, NULL, 30));
        cr_assert_neq(index, 0);
    }
    mp_pool_destroy(p); /* item 0 still waits on the gate */
    mp_assert_rc(mp_imap_next(it, out, NULL, NULL, 1), MP_ECLOSED);
    mp_imap_destroy(it);
    mp_event_destroy(gate);
}

Test(pool_stream, bad_input)
{
    mp_pool *p = mp_test_pool(1);
    mp_imap *it = NULL;
    counter c = {.n = 1};
    mp_stream_spec ok = {
        .fn = reverse, .source = count_source, .source_user = &c, .item_max = 10, .out_max = 10};
    mp_stream_spec s = ok;
    s.fn = NULL;
    mp_assert_rc(mp_pool_imap_stream(p, &s, true, &it), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "spec->fn"));
    s = ok;
    s.source = NULL;
    mp_assert_rc(mp_pool_imap_stream(p, &s, true, &it), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "spec->source"));
    s = ok;
    s.item_max = 0;
    mp_assert_rc(mp_pool_imap_stream(p, &s, true, &it), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "item_max"));
    s = ok;
    s.out_max = MP_STREAM_ITEM_MAX + 1;
    mp_assert_rc(mp_pool_imap_stream(p, &s, true, &it), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "out_max"));
    s = ok;
    s.item_max = MP_STREAM_ITEM_MAX;
    s.window = 1000;
    mp_assert_rc(mp_pool_imap_stream(p, &s, true, &it), MP_EINVAL);
    cr_assert(strstr(mp_error_detail(), "1 GiB"));
    mp_assert_rc(mp_pool_imap_stream(p, NULL, true, &it), MP_EINVAL);
    mp_assert_rc(mp_pool_imap_stream(p, &ok, true, NULL), MP_EINVAL);
    cr_assert_eq(c.read, 0, "a refused stream called its source");
    mp_assert_rc(mp_imap_next_sized(NULL, NULL, 0, NULL, NULL, NULL, 0), MP_EINVAL);
    mp_assert_ok(mp_pool_close(p));
    mp_assert_rc(mp_pool_imap_stream(p, &ok, true, &it), MP_ECLOSED);
    mp_test_pool_finish(p, 30);
}

Test(pool_stream, next_sized_on_a_fixed_size_map_iterator)
{
    mp_pool *p = mp_test_pool(2);
    int64_t in[10];
    for (int i = 0; i < 10; i++)
        in[i] = i;
    mp_imap *it = NULL;
    mp_assert_ok(mp_pool_imap(
        p,
        &(mp_map_spec){.fn = gated, .in = in, .n = 10, .in_size = sizeof(int64_t), .out_size = 8},
        true, &it));
    char small[4], out[8];
    size_t len = 0, index;
    mp_assert_rc(mp_imap_next_sized(it, small, sizeof small, &len, NULL, NULL, 10), MP_EMSGSIZE);
    cr_assert_eq(len, 8);
    for (int k = 0; k < 10; k++) {
        mp_assert_ok(mp_imap_next_sized(it, out, sizeof out, &len, &index, NULL, 30));
        cr_assert_eq(len, 8);
        cr_assert_eq(index, (size_t)k);
    }
    mp_assert_rc(mp_imap_next_sized(it, out, sizeof out, &len, NULL, NULL, 10), MP_EEOF);
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

/* Aborts on the item "5:..." (a crash with a backtrace), else succeeds. */
static int abort_on_5(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                      void *ctx)
{
    (void)in_len, (void)out, (void)out_cap, (void)ctx;
    if (strncmp(in, "5:", 2) == 0)
        abort();
    *out_len = 0;
    return 0;
}

Test(pool_stream, a_crashed_item_has_its_backtrace)
{
    mp_pool *p = mp_test_pool(2);
    counter c = {.n = 20};
    mp_imap *it = stream(p, abort_on_5, NULL, &c, 16, true);
    char bt[4096];
    size_t len = 0;
    for (uint64_t k = 0; k < c.n; k++) {
        size_t index;
        mp_task_error e;
        int rc = mp_imap_next(it, NULL, &index, &e, 60);
        cr_assert_eq(index, k);
        if (k != 5) {
            mp_assert_ok(rc);
            mp_assert_rc(mp_imap_backtrace(it, index, bt, sizeof bt, &len), MP_ENOENT);
            continue;
        }
        mp_assert_rc(rc, MP_EWORKERLOST);
        cr_assert_eq(e.signal, SIGABRT);
        mp_assert_ok(mp_imap_backtrace(it, 5, bt, sizeof bt, &len));
        cr_assert(strncmp(bt, "#0 ", 3) == 0, "%s", bt);
    }
    mp_imap_destroy(it);
    mp_test_pool_finish(p, 30);
}

/* ---- interrupting a wait for the next item --------------------------- */

Test(pool_stream, an_interrupted_wait_for_the_next_item_leaves_the_stream_whole)
{
    mp_test_intr_setup(0); /* no SA_RESTART */
    mp_pool *p = mp_test_pool(2);
    mp_event *gate = NULL;
    counter c = {.n = 2000};
    mp_imap *it = gated_stream(p, &gate, &c, 0, 0, true);
    char out[8];
    /* Opt-in off: signals every millisecond do not end the wait. */
    mp_test_pester ps;
    mp_test_pester_start(&ps, 100, 1000, NULL);
    mp_assert_rc(mp_imap_next(it, out, NULL, NULL, 0.4), MP_ETIMEDOUT);
    mp_test_pester_stop(&ps);
    cr_assert_gt(atomic_load(&mp_test_intr_handled), 0);
    /* Opt-in on: one signal ends it with MP_EINTR. */
    mp_set_interruptible(true);
    mp_test_pester_start(&ps, 100, 1000, NULL);
    mp_assert_rc(mp_imap_next(it, out, NULL, NULL, MP_FOREVER), MP_EINTR);
    mp_test_pester_stop(&ps);
    mp_set_interruptible(false);
    /* A cancel from another thread: MP_ECANCELED. */
    mp_cancel *cancel = NULL;
    mp_assert_ok(mp_cancel_create(&cancel));
    mp_cancel_set_current(cancel);
    mp_test_pester_start(&ps, 100, 0, cancel);
    mp_assert_rc(mp_imap_next(it, out, NULL, NULL, MP_FOREVER), MP_ECANCELED);
    mp_test_pester_stop(&ps);
    mp_cancel_set_current(NULL);
    mp_cancel_destroy(cancel);
    /* Nothing was lost: every item comes, in order. */
    mp_assert_ok(mp_event_set(gate));
    size_t index;
    for (uint64_t k = 0; k < c.n; k++) {
        mp_assert_ok(mp_imap_next(it, out, &index, NULL, 60));
        cr_assert_eq(index, k);
    }
    mp_assert_rc(mp_imap_next(it, out, NULL, NULL, 10), MP_EEOF);
    mp_imap_destroy(it);
    mp_event_destroy(gate);
    mp_test_pool_finish(p, 30);
    mp_test_intr_teardown();
}
