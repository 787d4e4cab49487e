/* Stored values of the shared containers (dict, list, namespace) and their
 * magic numbers (the header, mp__obj_head, is in base/internal.h). Not
 * installed.
 *
 * The rule that makes the containers survive a writer killed at any
 * moment: a stored entry (mp__blob) is immutable once published. A writer
 * builds a new blob completely, outside any lock, then publishes it with
 * one aligned pointer store under the container's lock; a dead writer
 * leaves either the old pointer or the new one, never half an entry. */
#ifndef MULTIPROC_ITEM_INTERNAL_H
#define MULTIPROC_ITEM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap/heap_object.h"
#include "base/internal.h"
#include "os/robust_mutex.h"

/* Magic numbers of the containers' heads. */
#define MP__MAGIC_DICT      0x7444706du /* "mpDt" */
#define MP__MAGIC_LIST      0x744c706du
#define MP__MAGIC_NAMESPACE 0x734e706du

/* True when p is the head of a local object of that kind in the heap. */
bool mp__obj_check(const void *p, size_t size, uint32_t magic);

/* One stored entry: an optional key and a typed value, each followed by a
 * NUL byte (so that strings read back are C strings); the value starts
 * 8-byte aligned. Immutable once published. */
typedef struct mp__blob {
    uint64_t hash; /* of the key (dicts) */
    uint64_t seq;  /* insertion order (dicts) */
    uint32_t key_len;
    uint32_t type; /* mp_item_type */
    size_t len;    /* value length */
    unsigned char data[];
} mp__blob;

static inline const unsigned char *mp__blob_key(const mp__blob *b)
{
    return b->data;
}

/* Rounds up to a multiple of 8: values start 8-byte aligned, so that
 * numbers read back can be loaded in place. */
static inline size_t mp__align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static inline const unsigned char *mp__blob_value(const mp__blob *b)
{
    return b->data + mp__align8((size_t)b->key_len + 1);
}

/* Validates a key (NULL is MP_EINVAL; too long is MP_EMSGSIZE). */
int mp__key_check(const void *key, size_t len);
/* Validates a typed value (type, length of numbers, NULL data, size). */
int mp__item_check(const mp_item *v);
/* The same checks for the public function fn, whose argument arg holds the
 * value: a failure sets a detail naming fn, the argument and the limit. */
int mp__key_check_in(const char *fn, const void *key, size_t len);
int mp__item_check_in(const char *fn, const char *arg, const mp_item *v);
/* 64-bit hash of a key. */
uint64_t mp__key_hash(const void *key, size_t len);

/* Builds a blob in the shared heap from a checked key (may be NULL with
 * key_len 0) and value. Returns 0, MP_ENOMEM. */
int mp__blob_new(mp__blob **out, const void *key, size_t key_len, const mp_item *v);
/* Returns a blob to the heap (NULL: no-op). */
void mp__blob_free(mp__blob *b);

/* Copies a blob's value into a new malloc'd buffer (with a NUL after it). */
int mp__blob_copy_out(const mp__blob *b, void **out, size_t *out_len, mp_item_type *type);
/* Copies a value into the caller's buffer, or MP_EMSGSIZE and the size. */
int mp__blob_copy_into(const mp__blob *b, void *buf, size_t cap, size_t *out_len,
                       mp_item_type *type);
/* The value as an mp_item view (borrowed from the blob). */
mp_item mp__blob_item(const mp__blob *b);

/* Snapshots: built in two passes over the same locked state, first
 * counting (mp__snap_count) then copying (mp__snap_add) into the memory
 * mp__snap_alloc returned. */
#define MP__SNAP_KEYS   1u
#define MP__SNAP_VALUES 2u
typedef struct mp__snap_size {
    size_t n;
    size_t bytes;
} mp__snap_size;
void mp__snap_count(mp__snap_size *sz, const mp__blob *b, unsigned what);
int mp__snap_alloc(mp_snapshot **out, const mp__snap_size *sz, unsigned what);
void mp__snap_add(mp_snapshot *s, const mp__blob *b);
/* The same from views (backends whose entries are not blobs); key is
 * ignored unless the snapshot holds keys, value unless it holds values. */
void mp__snap_count_item(mp__snap_size *sz, const mp_item *key, const mp_item *value,
                         unsigned what);
void mp__snap_add_item(mp_snapshot *s, const mp_item *key, const mp_item *value);
/* Default order of list items (mp_list_sort with no comparator). */
int mp__item_cmp(const mp_item *x, const mp_item *y);
/* The blobs' insertion sequence numbers were recorded by mp__snap_add;
 * orders the entries by them (dict snapshots). */
void mp__snap_sort_by_seq(mp_snapshot *s);

/* Python repr of an item (containers/repr.c), appended to a growing string. */
typedef struct mp__strbuf {
    char *p;
    size_t len, cap;
    bool failed;
} mp__strbuf;
void mp__sb_add(mp__strbuf *sb, const char *s, size_t n);
void mp__sb_adds(mp__strbuf *sb, const char *s);
void mp__sb_repr(mp__strbuf *sb, const mp_item *v);
/* Appends text as a Python str literal ('...'), whatever its tag. */
void mp__sb_repr_str(mp__strbuf *sb, const void *s, size_t n);
/* Hands the string to the caller: 0 and *out, or MP_ENOMEM (freed). */
int mp__sb_finish(mp__strbuf *sb, char **out);

/* Locks a robust mutex without deadline; on MP_EOWNERDEAD calls repair
 * (which puts the protected state back in order) and marks the mutex
 * consistent. Returns 0 or a negative error (the mutex is then not held). */
int mp__lock_repair(mp__robust_mutex *m, void (*repair)(void *), void *arg);

#endif /* MULTIPROC_ITEM_INTERNAL_H */
