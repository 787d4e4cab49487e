/* mp_error_detail() after refused arguments, module by module: each
 * failing call names itself first, then the argument and the reason. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "multiproc.h"
#include "mp_test.h"

TestSuite(details, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

/* expr must return code with a detail that starts with "fn: " and contains
 * each of the words given (the argument's name, the limit, ...). The
 * detail is cleared first, so that an older one cannot pass for it. */
#define assert_detail(expr, code, fn, ...)                                                         \
    do {                                                                                           \
        mp_error_clear();                                                                          \
        mp_assert_rc(expr, code);                                                                  \
        check_detail(#expr, fn, (const char *[]){__VA_ARGS__, NULL});                              \
    } while (0)

static void check_detail(const char *expr, const char *fn, const char **words)
{
    const char *d = mp_error_detail();
    size_t n = strlen(fn);
    cr_assert(strncmp(d, fn, n) == 0 && d[n] == ':',
              "%s: detail \"%s\" does not start with %s:", expr, d, fn);
    for (; *words; words++)
        cr_assert_not_null(strstr(d, *words), "%s: detail \"%s\" does not mention \"%s\"", expr, d,
                           *words);
}

/* ---- the contract --------------------------------------------------------- */

Test(details, a_success_leaves_the_detail_and_a_new_failure_replaces_it)
{
    mp_queue *q;
    mp_assert_ok(mp_queue_create(&q, NULL));
    assert_detail(mp_queue_put(q, NULL, 3, 0), MP_EINVAL, "mp_queue_put", "data");
    /* As documented: a call that succeeds does not touch the detail ... */
    mp_assert_ok(mp_queue_put(q, "abc", 3, 0));
    cr_assert_not_null(strstr(mp_error_detail(), "mp_queue_put: data"));
    /* ... a failure replaces it whole, and mp_error_clear empties it. */
    mp_assert_rc(mp_queue_task_done(q), MP_EINVAL);
    cr_assert_null(strstr(mp_error_detail(), "mp_queue_put"), "stale: %s", mp_error_detail());
    mp_error_clear();
    char buf[8];
    size_t len;
    mp_assert_ok(mp_queue_get_into(q, buf, sizeof buf, &len, 0));
    cr_assert_str_eq(mp_error_detail(), "");
    mp_queue_destroy(q);
}

/* ---- queue ------------------------------------------------------------------ */

Test(details, queue_create)
{
    mp_queue *q = NULL;
    assert_detail(mp_queue_create(NULL, NULL), MP_EINVAL, "mp_queue_create", "out is NULL");
    assert_detail(mp_queue_create(&q, &(mp_queue_opts){.simple = true, .maxsize = 3}), MP_EINVAL,
                  "mp_queue_create", "opts->simple", "opts->maxsize 3");
    assert_detail(mp_queue_create(&q, &(mp_queue_opts){.maxsize = MP_QUEUE_MAX_MESSAGE + 1}),
                  MP_EINVAL, "mp_queue_create", "opts->maxsize is 1099511627777");
    assert_detail(mp_queue_create(&q, &(mp_queue_opts){.max_bytes = (size_t)-1}), MP_EINVAL,
                  "mp_queue_create", "opts->max_bytes", "MP_QUEUE_MAX_MESSAGE");
    cr_assert_null(q);
}

Test(details, queue_put_and_get)
{
    mp_queue *q;
    mp_assert_ok(mp_queue_create(&q, &(mp_queue_opts){.max_bytes = 4}));
    uint64_t local[8] = {0};
    assert_detail(mp_queue_put(NULL, "a", 1, 0), MP_EINVAL, "mp_queue_put", "q is NULL");
    assert_detail(mp_queue_put((mp_queue *)(void *)local, "a", 1, 0), MP_EINVAL, "mp_queue_put",
                  "q (", "not in the shared heap");
    assert_detail(mp_queue_put(q, "a", 1, NAN), MP_EINVAL, "mp_queue_put", "timeout is NaN");
    assert_detail(mp_queue_put(q, "abcdef", 6, 0), MP_EMSGSIZE, "mp_queue_put", "len 6",
                  "max_bytes (4)");
    assert_detail(mp_queue_put_many(q, (mp_queue_msg[]){{"a", 1}, {NULL, 2}}, 2, 0), MP_EINVAL,
                  "mp_queue_put_many", "msgs[1].data");
    void *data;
    size_t len;
    assert_detail(mp_queue_get(q, NULL, &len, 0), MP_EINVAL, "mp_queue_get", "data is NULL");
    assert_detail(mp_queue_get(q, &data, &len, NAN), MP_EINVAL, "mp_queue_get", "timeout");
    assert_detail(mp_queue_get_into(q, NULL, 5, &len, 0), MP_EINVAL, "mp_queue_get_into",
                  "buf is NULL with cap 5");
    assert_detail(mp_queue_get_many(q, NULL, 0, NULL, 3, 0), MP_EINVAL, "mp_queue_get_many",
                  "lens is NULL with n 3");
    mp_queue_destroy(q);
}

Test(details, queue_reservations_and_joinable)
{
    mp_queue *q;
    mp_assert_ok(mp_queue_create(&q, NULL));
    void *buf;
    assert_detail(mp_queue_reserve(q, 8, NULL, 0), MP_EINVAL, "mp_queue_reserve", "buf is NULL");
    mp_assert_ok(mp_queue_reserve(q, 8, &buf, 0));
    mp_assert_ok(mp_queue_commit(q, buf));
    assert_detail(mp_queue_commit(q, buf), MP_EINVAL, "mp_queue_commit", "buf",
                  "not a live reservation");
    char other[32];
    assert_detail(mp_queue_abort(q, other + 16), MP_EINVAL, "mp_queue_abort", "buf",
                  "not a message buffer");
    assert_detail(mp_queue_release(q, NULL), MP_EINVAL, "mp_queue_release", "data is NULL");
    assert_detail(mp_queue_task_done(q), MP_EINVAL, "mp_queue_task_done", "joinable");
    assert_detail(mp_queue_join(q, 0), MP_EINVAL, "mp_queue_join", "joinable");
    mp_queue_destroy(q);

    mp_assert_ok(mp_queue_create(&q, &(mp_queue_opts){.joinable = true}));
    assert_detail(mp_queue_task_done(q), MP_ETOOMANYDONE, "mp_queue_task_done", "unfinished");
    assert_detail(mp_queue_join(q, NAN), MP_EINVAL, "mp_queue_join", "timeout is NaN");
    mp_queue_destroy(q);
}
