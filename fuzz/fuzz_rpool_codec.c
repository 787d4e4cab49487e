/* Fuzz target: the distributed pool's wire formats, fed untrusted bytes
 * (what a worker reads from the task stream, what a client reads from its
 * result list).
 *
 * Run (from the repository root; needs libhiredis-dev):
 *     CC=clang cmake -S . -B build-fuzz -DMP_BUILD_FUZZ=ON -DMP_BUILD_TESTS=OFF \
 *         -DMP_BUILD_EXAMPLES=OFF -DMP_BUILD_BENCH=OFF
 *     cmake --build build-fuzz --target fuzz_rpool_codec
 *     build-fuzz/fuzz/fuzz_rpool_codec -max_total_time=30 fuzz/corpus/rpool_codec
 *
 * Input: the whole buffer is decoded as a result record (mp__redis_result_decode),
 * and when it passes every item is read (mp__redis_result_next), each of which must
 * lie inside the input (an oversize mark has no payload, and only a task
 * that returned 0 may carry one; a failed item carries its message, in a
 * version 2 record only), the items adding up to it. The same bytes, cut at
 * each NUL into fields, are parsed as a task entry (mp__redis_task_parse); a
 * task that passes must keep its promises (n x isz = input size, bounds,
 * views inside the input; the tasks of a packed entry cover its items). A
 * parallel-for entry (field "lo") keeps its own: at most MP_POOL_ACC_MAX
 * bytes of initial partial, an end lo + n that is an int64, and chunks that
 * cover its indexes in order, each one result item.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_pool.h"

static void check_result(const uint8_t *data, size_t size)
{
    mp__redis_result r;
    if (mp__redis_result_decode(data, size, &r) < 0)
        return;
    int32_t code;
    const unsigned char *d;
    size_t len, total = MP__REDIS_RESULT_HEAD;
    uint32_t n = 0;
    while (mp__redis_result_next(&r, &code, &d, &len) == 0) {
        if (len == SIZE_MAX) { /* the oversize mark: no payload, only after a 0 */
            if (code != 0)
                abort();
            len = 0;
        }
        /* A failed item's bytes are its message: at most 127 in version 2
         * ("MPR2"), none in version 1. */
        if (code != 0 && len != MP__REDIS_ITEM_LOST &&
            len >= (data[3] == '2' ? (size_t)MP_TASK_MESSAGE_MAX : 1))
            abort();
        if (d < data || d + len > data + size)
            abort();
        total += MP__REDIS_RESULT_ITEM + len;
        n++;
    }
    if (n != r.n || total != size)
        abort();
}

static void check_for(const uint8_t *data, size_t size, const mp__redis_task *t)
{
    const unsigned char *end = data + size;
    if (t->n == 0 || t->n > (uint64_t)INT64_MAX || t->n > (uint64_t)INT64_MAX - (uint64_t)t->lo ||
        t->cap > MP_POOL_ACC_MAX || t->in_len != t->cap || t->isz != 0 ||
        (t->in_len && (t->in < data || t->in + t->in_len > end)) || mp__redis_task_items(t) != 1)
        abort();
    uint64_t count = mp__redis_task_count(t), indexes = 0;
    if (count == 0 || count > MP__REDIS_POOL_PACK_MAX)
        abort();
    for (uint64_t j = 0; j < count; j++) {
        mp__redis_task part;
        mp__redis_task_part(t, j, &part);
        /* Chunk j starts where chunk j - 1 ended, with the initial partial. */
        if (part.n == 0 || part.id != t->id + j || part.in != t->in || part.in_len != t->in_len ||
            (uint64_t)part.lo != (uint64_t)t->lo + indexes || mp__redis_task_items(&part) != 1)
            abort();
        indexes += part.n;
    }
    if (indexes != t->n)
        abort();
}

static void check_task(const uint8_t *data, size_t size)
{
    const char *f[64];
    size_t lens[64], nf = 0, start = 0;
    for (size_t i = 0; i <= size && nf < 64; i++)
        if (i == size || data[i] == 0) {
            f[nf] = (const char *)data + start;
            lens[nf++] = i - start;
            start = i + 1;
        }
    mp__redis_task t;
    if (mp__redis_task_parse(f, lens, nf, &t) < 0)
        return;
    if (t.is_for) {
        check_for(data, size, &t);
        return;
    }
    const unsigned char *end = data + size;
    if (t.n == 0 || t.n > MP__REDIS_POOL_ITEMS_MAX || t.isz * t.n != t.in_len ||
        t.cap * t.n > MP__REDIS_POOL_OUT_MAX ||
        (t.in_len && (t.in < data || t.in + t.in_len > end)) ||
        (const unsigned char *)t.fn < data || (const unsigned char *)t.fn + t.fn_len > end ||
        !mp__redis_pool_client_ok(t.client, strlen(t.client)))
        abort();
    /* A packed entry: its tasks cover its items exactly, each inside it. */
    uint64_t count = mp__redis_task_count(&t), items = 0;
    if (count == 0 || count > MP__REDIS_POOL_PACK_MAX)
        abort();
    for (uint64_t j = 0; j < count; j++) {
        mp__redis_task part;
        mp__redis_task_part(&t, j, &part);
        if (part.n == 0 || part.id != t.id + j || part.in_len != part.n * t.isz ||
            (part.in_len && (part.in < t.in || part.in + part.in_len > t.in + t.in_len)))
            abort();
        items += part.n;
    }
    if (items != t.n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_result(data, size);
    check_task(data, size);
    return 0;
}
