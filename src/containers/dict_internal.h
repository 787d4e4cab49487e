/* The local (shared-heap) dict, shared by containers/dict.c and containers/dict_bulk.c. Not
 * installed.
 *
 * Layout: the dict is split into a power-of-two number of shards chosen by
 * the low bits of the key's hash. Each shard is an independent
 * open-addressing table under its own robust mutex, so processes working
 * on keys of different shards never wait for each other, and a shard grows
 * on its own (the resize protocol: build the new slot array, publish it
 * with one pointer store, free the old one). The slot array carries its own
 * capacity, so that one store publishes both. Slots hold pointers to
 * immutable blobs (containers/item_internal.h); a deleted slot holds a tombstone. */
#ifndef MULTIPROC_DICT_INTERNAL_H
#define MULTIPROC_DICT_INTERNAL_H

#include <stdatomic.h>

#include "containers/item_internal.h"

#define MP__DICT_MAX_SHARDS     256u
#define MP__DICT_DEFAULT_SHARDS 32u
#define MP__TOMBSTONE           ((mp__blob *)(uintptr_t)1)

typedef struct mp__table {
    uint32_t cap; /* a power of two */
    uint32_t pad;
    mp__blob *slot[];
} mp__table;

typedef struct mp__shard {
    mp__robust_mutex lock;
    mp__table *table;       /* NULL while the shard is empty */
    _Atomic uint32_t count; /* live entries (read without the lock by len) */
    uint32_t used;          /* live entries + tombstones */
} mp__shard;

/* Shards are padded to two cache lines (adjacent-line prefetch), so that
 * processes on different shards do not share lines. */
typedef union mp__shard_slot {
    mp__shard s;
    char pad[128];
} mp__shard_slot;

struct mp_dict {
    mp__obj_head head;
    uint32_t nshards;
    _Atomic uint64_t seq; /* next insertion number */
    mp__shard_slot shard[];
};

int mp__dict_check(const mp_dict *d);
/* The same for the public function fn: MP_EINVAL with a detail. */
int mp__dict_check_in(const char *fn, const mp_dict *d);
/* Locks shard s (repairing it after a dead holder). */
int mp__dict_lock(mp_dict *d, uint32_t s);
void mp__dict_unlock(mp_dict *d, uint32_t s);
/* Locks every shard in index order (the only order in which more than one
 * shard is ever held). On failure none is held. */
int mp__dict_lock_all(mp_dict *d);
void mp__dict_unlock_all(mp_dict *d);
/* Takes ownership of a heap blob built with the key: publishes it. */
int mp__dict_publish(mp_dict *d, mp__blob *b, bool only_if_absent, mp__blob **old_out);

#endif /* MULTIPROC_DICT_INTERNAL_H */
