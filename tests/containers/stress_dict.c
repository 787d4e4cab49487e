/* Kill-at-random test of the shared dict and list: worker processes hammer
 * one dict and one list with every kind of update while the parent
 * SIGKILLs them at random moments and starts replacements. After each
 * round every entry must be whole (a value a writer built completely), the
 * counts must match the contents, and both containers must still work.
 * Runs under ASan and TSan too. */
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stress.h"

#define WORKERS   4
#define ROUNDS    8
#define KILLS     6 /* per round, each followed by a replacement */
#define KEYS      256
#define OPS       4000 /* per worker: bounded, so that the heap use is too */
#define VALUE_MAX 120

static mp_dict *dict;
static mp_list *list;

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A self-checking value: the 8-byte id, then a fill byte that depends on
 * the id and the length. A torn value fails the check. */
static size_t make_value(unsigned char *buf, uint64_t id, uint64_t r)
{
    size_t len = 8 + (size_t)(r % (VALUE_MAX - 8));
    memcpy(buf, &id, 8);
    memset(buf + 8, (int)((id * 31 + len) & 0xff), len - 8);
    return len;
}

static bool value_ok(const void *p, size_t len, uint64_t *id_out)
{
    const unsigned char *b = p;
    uint64_t id;
    if (len < 8 || len >= VALUE_MAX)
        return false;
    memcpy(&id, b, 8);
    for (size_t i = 8; i < len; i++)
        if (b[i] != (unsigned char)((id * 31 + len) & 0xff))
            return false;
    if (id_out)
        *id_out = id;
    return true;
}

static size_t key_of(char *key, uint64_t id)
{
    return (size_t)snprintf(key, 16, "k%" PRIu64, id);
}

static int rewrite(mp_dict_change *u, void *user)
{
    unsigned char *buf = user;
    uint64_t id;
    if (u->found && !value_ok(u->old, u->old_len, &id))
        return MP_EBADMSG;
    memcpy(&id, buf, 8);
    size_t len = make_value(buf, id, u->old_len * 7 + 3);
    u->new_value = MP_ITEM_BYTES(buf, len);
    return MP_DICT_STORE;
}

static void dict_op(uint64_t *rng)
{
    unsigned char buf[VALUE_MAX];
    char key[16];
    uint64_t r = rng_next(rng), id = r % KEYS;
    size_t klen = key_of(key, id), len = make_value(buf, id, r >> 20);
    void *out;
    size_t out_len;
    mp_snapshot *s;
    switch ((r >> 8) % 20) {
    case 0:
        mp_dict_delete(dict, key, klen);
        break;
    case 1:
        if (mp_dict_pop(dict, key, klen, &out, &out_len, NULL) == 0)
            free(out);
        break;
    case 2:
    case 3:
        memcpy(buf, &id, 8);
        mp_dict_update_with(dict, key, klen, rewrite, buf);
        break;
    case 4:
        mp_dict_setdefault(dict, key, klen, &MP_ITEM_BYTES(buf, len), NULL, NULL, NULL);
        break;
    case 5:
        if (mp_dict_get(dict, key, klen, &out, &out_len, NULL) == 0)
            free(out);
        break;
    case 6:
        if ((r >> 32) % 50 == 0 && mp_dict_items(dict, &s) == 0)
            mp_snapshot_destroy(s);
        break;
    case 7:
        mp_dict_add_int64(dict, "counter", 1, NULL);
        break;
    default:
        mp_dict_set(dict, key, klen, buf, len);
        break;
    }
}

static void list_op(uint64_t *rng)
{
    unsigned char buf[VALUE_MAX];
    uint64_t r = rng_next(rng);
    size_t len = make_value(buf, r % 1000, r >> 20), n = 0;
    long i = (long)((r >> 40) % 64);
    mp_list_len(list, &n);
    switch ((r >> 8) % 16) {
    case 0:
    case 1:
    case 2:
        mp_list_pop(list, -1, NULL, NULL, NULL);
        break;
    case 3:
        mp_list_pop(list, i, NULL, NULL, NULL);
        break;
    case 4:
        mp_list_set(list, -i - 1, &MP_ITEM_BYTES(buf, len));
        break;
    case 5:
        mp_list_insert(list, i, &MP_ITEM_BYTES(buf, len));
        break;
    case 6:
        mp_list_remove(list, &MP_ITEM_BYTES(buf, len));
        break;
    case 7:
        if ((r >> 32) % 20 == 0)
            mp_list_sort(list, NULL, NULL);
        break;
    default:
        if (n < 400)
            mp_list_append(list, &MP_ITEM_BYTES(buf, len));
        break;
    }
}

static int worker(const void *arg, size_t len)
{
    (void)len;
    uint64_t rng = 0x9e3779b97f4a7c15u ^ (uint64_t)getpid() ^ *(const uint64_t *)arg;
    for (int i = 0; i < OPS; i++) {
        dict_op(&rng);
        list_op(&rng);
    }
    pause(); /* wait to be killed: the parent kills every worker */
    return 0;
}

static mp_process *spawn(uint64_t seed)
{
    mp_process *p;
    STRESS_OK(mp_process_create(
        &p, &(mp_process_opts){.target = worker, .args = &seed, .args_len = sizeof(seed)}));
    STRESS_OK(mp_process_start(p));
    return p;
}

static void check_dict(void)
{
    mp_snapshot *s;
    size_t n;
    STRESS_OK(mp_dict_len(dict, &n));
    STRESS_OK(mp_dict_items(dict, &s));
    STRESS_CHECK(mp_snapshot_len(s) == n, "len %zu, snapshot %zu", n, mp_snapshot_len(s));
    for (size_t i = 0; i < mp_snapshot_len(s); i++) {
        mp_item k, v;
        STRESS_OK(mp_snapshot_key(s, i, &k));
        STRESS_OK(mp_snapshot_value(s, i, &v));
        if (k.len == 7 && memcmp(k.data, "counter", 7) == 0) {
            STRESS_CHECK(v.type == MP_ITEM_INT64 && v.len == 8, "counter torn");
            continue;
        }
        uint64_t id;
        char key[16];
        STRESS_CHECK(value_ok(v.data, v.len, &id), "torn value under %s", (const char *)k.data);
        STRESS_CHECK(key_of(key, id) == k.len && memcmp(key, k.data, k.len) == 0,
                     "value of %s under key %s", key, (const char *)k.data);
    }
    mp_snapshot_destroy(s);
    /* Still usable: every key can be written, read and deleted. */
    unsigned char buf[VALUE_MAX];
    char key[16];
    size_t klen = key_of(key, 7), len = make_value(buf, 7, 99), got;
    STRESS_OK(mp_dict_set(dict, key, klen, buf, len));
    STRESS_OK(mp_dict_get_into(dict, key, klen, buf, sizeof(buf), &got, NULL));
    STRESS_CHECK(got == len && value_ok(buf, got, NULL), "read back");
}

static void check_list(void)
{
    mp_snapshot *s;
    size_t n;
    STRESS_OK(mp_list_len(list, &n));
    STRESS_OK(mp_list_slice(list, 0, MP_LIST_END, &s));
    STRESS_CHECK(mp_snapshot_len(s) == n, "len %zu, slice %zu", n, mp_snapshot_len(s));
    for (size_t i = 0; i < n; i++) {
        mp_item v;
        STRESS_OK(mp_snapshot_value(s, i, &v));
        STRESS_CHECK(value_ok(v.data, v.len, NULL), "torn list item %zu", i);
    }
    mp_snapshot_destroy(s);
    STRESS_OK(mp_list_append(list, &MP_ITEM_INT64(1)));
    STRESS_OK(mp_list_pop(list, -1, NULL, NULL, NULL));
}

int main(void)
{
    STRESS_DEADLINE(240);
    STRESS_OK(mp_dict_create(&dict, &(mp_dict_opts){.shards = 8}));
    STRESS_OK(mp_list_create(&list, NULL));
    uint64_t rng = (uint64_t)time(NULL) | 1, seed = 0;
    int kills = 0;
    for (int round = 0; round < ROUNDS; round++) {
        mp_process *w[WORKERS];
        for (int i = 0; i < WORKERS; i++)
            w[i] = spawn(seed++);
        for (int k = 0; k < KILLS; k++) {
            struct timespec ts = {0, (long)(rng_next(&rng) % 8000000) + 200000};
            nanosleep(&ts, NULL);
            int victim = (int)(rng_next(&rng) % WORKERS);
            STRESS_OK(mp_process_kill(w[victim]));
            mp_process_destroy(w[victim]);
            w[victim] = spawn(seed++);
            kills++;
        }
        for (int i = 0; i < WORKERS; i++) {
            STRESS_OK(mp_process_kill(w[i]));
            mp_process_destroy(w[i]);
        }
        check_dict();
        check_list();
    }
    mp_list_destroy(list);
    mp_dict_destroy(dict);
    printf("stress_dict: %d rounds, %d workers killed at random, containers intact\n", ROUNDS,
           kills + ROUNDS * WORKERS);
    return 0;
}
