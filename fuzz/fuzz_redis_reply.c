/* Fuzz target: the Redis backend's handling of replies and stored values,
 * fed untrusted bytes.
 *
 * Run (from the repository root; needs libhiredis-dev):
 *     CC=clang cmake -S . -B build-fuzz -DMP_BUILD_FUZZ=ON -DMP_BUILD_TESTS=OFF \
 *         -DMP_BUILD_EXAMPLES=OFF -DMP_BUILD_BENCH=OFF
 *     cmake --build build-fuzz --target fuzz_redis_reply
 *     build-fuzz/fuzz/fuzz_redis_reply -max_total_time=30 fuzz/corpus/redis_reply
 *
 * Input: byte 0 picks what the backend expects (a kind of reply, as after
 * each of its commands); the rest is what a server (or anything listening
 * on its port) sends, in RESP. hiredis's reader turns it into replies;
 * every reply goes through mp__redis_reply_check, and when it passes, the
 * fields the backend reads for that kind are read the way it reads them:
 * stored values through mp__redis_decode, error texts through
 * mp__redis_error_code. The raw bytes are also decoded as one stored value
 * and parsed as a URL. A crash or a sanitizer report aborts; a value that
 * decodes must also satisfy what the decoder promises (numbers of 8 bytes,
 * views inside the input).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_internal.h"

static void check_value(const char *s, size_t len)
{
    mp_item v;
    int64_t num;
    if (mp__redis_decode(s, len, &v, &num) < 0)
        return;
    if (v.type == MP_ITEM_INT64 || v.type == MP_ITEM_DOUBLE) {
        if (v.len != 8 || v.data != (void *)&num)
            abort();
    } else if ((const char *)v.data != s + 1 || v.len != len - 1) {
        abort();
    }
}

/* What the backend reads of a reply that passed the check for kind. */
static void read_like_the_backend(const redisReply *r, mp__redis_reply_kind kind)
{
    switch (kind) {
    case MP__RR_STR:
    case MP__RR_STR_NIL:
        if (r->type == REDIS_REPLY_STRING)
            check_value(r->str, r->len);
        break;
    case MP__RR_ARRAY:
        for (size_t i = 0; i < r->elements; i++)
            check_value(r->element[i]->str, r->element[i]->len);
        break;
    case MP__RR_EXEC:
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (mp__redis_reply_check(e, MP__RR_STR) == 0)
                check_value(e->str, e->len);
            (void)mp__redis_reply_check(e, MP__RR_INT);
        }
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    mp__redis_reply_kind kind = (mp__redis_reply_kind)(1 + data[0] % MP__RR_ANY_VALUE);
    const char *bytes = (const char *)data + 1;
    size_t n = size - 1;

    check_value(bytes, n);
    char *url = malloc(n + 1);
    if (url) {
        memcpy(url, bytes, n);
        url[n] = '\0';
        mp__redis_url u;
        if (mp__redis_url_parse(&u, url) == 0)
            mp__redis_url_fini(&u);
        free(url);
    }

    redisReader *rd = redisReaderCreate();
    if (rd == NULL)
        return 0;
    if (mp__redis_reader_bound(rd) < 0) {
        redisReaderFree(rd);
        return 0;
    }
    if (redisReaderFeed(rd, bytes, n) == REDIS_OK) {
        void *reply;
        for (int i = 0; i < 64 && redisReaderGetReply(rd, &reply) == REDIS_OK && reply; i++) {
            const redisReply *r = reply;
            int rc = mp__redis_reply_check(r, kind);
            if (rc == 0)
                read_like_the_backend(r, kind);
            else if (rc > 0)
                abort();
            freeReplyObject(reply);
        }
    }
    redisReaderFree(rd);
    return 0;
}
