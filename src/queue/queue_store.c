/* Queues: segments, records, reclaiming records of dead holders, and the
 * repair after a holder of the lock died (see queue/queue_internal.h). Every
 * function here runs under the queue's lock. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/queue_internal.h"

/* ---- owners --------------------------------------------------------------
 * A held record names its holder by pid and start time (field 22 of
 * /proc/PID/stat), so that a reused pid is not taken for the holder. */

static bool read_stat(int32_t pid, char *state, uint64_t *start)
{
    char path[40], buf[1024];
    int n = snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (n <= 0 || (size_t)n >= sizeof path)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0)
        return false;
    buf[r] = '\0';
    /* The command name may hold spaces and parentheses: fields restart
     * after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return false;
    p += 2;
    *state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return false;
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return true;
}

/* This process's pid and start time, cached (getpid() is a system call
 * and the ring's producers need the pid for every message); a fork child
 * forgets the parent's. */
static _Atomic int32_t qself_pid;
static _Atomic uint64_t qself_start;
static pthread_once_t qself_once = PTHREAD_ONCE_INIT;

static void qself_forget(void)
{
    atomic_store_explicit(&qself_pid, 0, memory_order_relaxed);
}

static void qself_register(void)
{
    pthread_atfork(NULL, NULL, qself_forget);
}

void mp__qowner_self(int32_t *pid, uint64_t *start)
{
    int32_t me = atomic_load_explicit(&qself_pid, memory_order_acquire);
    if (me == 0) {
        pthread_once(&qself_once, qself_register);
        me = (int32_t)getpid();
        char st;
        uint64_t s = 0;
        if (!read_stat(me, &st, &s))
            s = 0;
        atomic_store_explicit(&qself_start, s, memory_order_relaxed);
        atomic_store_explicit(&qself_pid, me, memory_order_release);
    }
    *pid = me;
    *start = atomic_load_explicit(&qself_start, memory_order_relaxed);
}

static bool owner_alive(int32_t pid, uint64_t start)
{
    char st;
    uint64_t s;
    if (!read_stat(pid, &st, &s))
        return false;
    return st != 'Z' && st != 'X' && (start == 0 || s == start);
}

bool mp__qowner_dead(int32_t pid, uint64_t start)
{
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    char st;
    uint64_t s;
    /* Unreadable (/proc missing, no fd left): it may be alive. */
    if (!read_stat(pid, &st, &s))
        return false;
    return st == 'Z' || st == 'X' || (start != 0 && s != start);
}

/* ---- segments ------------------------------------------------------------ */

static mp__qrec *rec_at(mp__qseg *s, uint64_t off)
{
    return (mp__qrec *)(void *)(s->data + off);
}

static int seg_new(mp_queue *q, size_t need, mp__qseg **out)
{
    while (q->spare) {
        mp__qseg *s = q->spare;
        q->spare = s->next;
        q->nspare--;
        if (s->size >= need) {
            s->next = NULL;
            s->head = 0;
            atomic_store_explicit(&s->tail, 0, memory_order_relaxed);
            *out = s;
            return 0;
        }
        mp__heap_free(s);
    }
    size_t size = need <= MP__QSEG_MIN ? MP__QSEG_MIN : (need + 65535) & ~(size_t)65535;
    void *p;
    int rc = mp__heap_alloc(&p, sizeof(mp__qseg) + size);
    if (rc < 0)
        return rc;
    mp__qseg *s = p;
    s->size = size;
    *out = s;
    return 0;
}

static void seg_recycle(mp_queue *q, mp__qseg *s)
{
    if (q->nspare >= MP__QSPARE_MAX) {
        mp__heap_free(s);
        return;
    }
    s->next = q->spare;
    q->spare = s;
    q->nspare++;
}

/* Publishes a store that makes a record count as put; with a joinable
 * queue the unfinished counter follows through the journal, so a death
 * between the two stores is repaired exactly. */
void mp__qstore_set_unfinished_after(mp_queue *q, _Atomic uint64_t *word, uint64_t value)
{
    if (!q->joinable) {
        atomic_store_explicit(word, value, memory_order_release);
        return;
    }
    q->j_word = word;
    q->j_value = value;
    q->j_unfinished = atomic_load_explicit(&q->unfinished, memory_order_relaxed) + 1;
    atomic_store_explicit(&q->j_active, 1, memory_order_release);
    atomic_store_explicit(word, value, memory_order_release);
    atomic_store_explicit(&q->unfinished, q->j_unfinished, memory_order_release);
    atomic_store_explicit(&q->j_active, 0, memory_order_release);
}

int mp__qstore_make_room(mp_queue *q, size_t need)
{
    mp__qseg *t = q->tail_seg;
    uint64_t tail = atomic_load_explicit(&t->tail, memory_order_relaxed);
    if (t->size - tail >= need)
        return 0;
    /* Records held by dead processes pin the head; look for them before
     * the chain grows. */
    if (q->head_seg != t && atomic_load(&q->reserved) + q->peeked > 0 && mp__qstore_reap_dead(q))
        mp__qstore_advance(q);
    mp__qseg *s;
    int rc = seg_new(q, need, &s);
    if (rc < 0)
        return rc;
    atomic_thread_fence(memory_order_release);
    t->next = s;
    q->tail_seg = s;
    return 0;
}

int mp__qstore_append(mp_queue *q, const void *data, uint64_t len, uint64_t state, mp__qrec **out)
{
    size_t need = mp__qrec_size(len);
    int rc = mp__qstore_make_room(q, need);
    if (rc < 0)
        return rc;
    mp__qseg *t = q->tail_seg;
    uint64_t tail = atomic_load_explicit(&t->tail, memory_order_relaxed);
    mp__qrec *r = rec_at(t, tail);
    if (data && len)
        memcpy(mp__qrec_data(r), data, (size_t)len);
    r->len = len;
    r->tag = q->tag;
    if (state != MP__QREC_COMMITTED)
        mp__qowner_self(&r->owner_pid, &r->owner_start);
    atomic_store_explicit(&r->state, state, memory_order_relaxed);
    if (state == MP__QREC_COMMITTED)
        mp__qstore_set_unfinished_after(q, &t->tail, tail + need);
    else
        atomic_store_explicit(&t->tail, tail + need, memory_order_release);
    mp__qcount_add(&q->bytes, len);
    if (state == MP__QREC_COMMITTED)
        atomic_fetch_add(&q->count, 1);
    else if (state == MP__QREC_RESERVED)
        mp__qcount_add(&q->reserved, 1);
    else
        q->peeked++;
    *out = r;
    return 0;
}

mp__qrec *mp__qstore_first(mp_queue *q)
{
    if (atomic_load_explicit(&q->count, memory_order_relaxed) == 0)
        return NULL;
    for (mp__qseg *s = q->head_seg; s; s = s->next) {
        uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
        for (uint64_t off = s->head; off < tail;) {
            mp__qrec *r = rec_at(s, off);
            if (atomic_load_explicit(&r->state, memory_order_relaxed) == MP__QREC_COMMITTED)
                return r;
            off += mp__qrec_size(r->len);
        }
    }
    return NULL;
}

void mp__qstore_advance(mp_queue *q)
{
    for (;;) {
        mp__qseg *s = q->head_seg;
        uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
        while (s->head < tail) {
            mp__qrec *r = rec_at(s, s->head);
            if (atomic_load_explicit(&r->state, memory_order_relaxed) != MP__QREC_DONE)
                return;
            s->head += mp__qrec_size(r->len);
        }
        if (s == q->tail_seg) {
            /* Empty: start again at the beginning, where the cache is warm. */
            atomic_store_explicit(&s->tail, 0, memory_order_release);
            s->head = 0;
            return;
        }
        q->head_seg = s->next;
        seg_recycle(q, s);
    }
}

bool mp__qstore_reap_dead(mp_queue *q)
{
    bool any = false;
    for (mp__qseg *s = q->head_seg; s; s = s->next) {
        uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
        for (uint64_t off = s->head; off < tail;) {
            mp__qrec *r = rec_at(s, off);
            uint64_t st = atomic_load_explicit(&r->state, memory_order_relaxed);
            off += mp__qrec_size(r->len);
            if (st != MP__QREC_RESERVED && st != MP__QREC_PEEKED)
                continue;
            if (owner_alive(r->owner_pid, r->owner_start))
                continue;
            mp__debug("queue %p: reclaiming a record held by dead pid %d", (void *)q,
                      (int)r->owner_pid);
            atomic_store_explicit(&r->state, MP__QREC_DONE, memory_order_release);
            mp__qcount_sub(&q->bytes, r->len);
            if (st == MP__QREC_RESERVED)
                mp__qcount_sub(&q->reserved, 1);
            else
                q->peeked--;
            any = true;
        }
    }
    return any;
}

/* Recounts one segment's records; a header that cannot be right (beyond the
 * tail, unknown state) ends the segment there. */
static void repair_seg(mp_queue *q, mp__qseg *s, uint64_t *count, uint64_t *bytes)
{
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
    if (tail > s->size)
        tail = 0;
    if (s->head > tail)
        s->head = tail;
    for (uint64_t off = s->head; off < tail;) {
        mp__qrec *r = rec_at(s, off);
        uint64_t st = atomic_load_explicit(&r->state, memory_order_relaxed);
        if (st < MP__QREC_COMMITTED || st > MP__QREC_DONE || r->len > s->size ||
            off + mp__qrec_size(r->len) > tail) {
            tail = off;
            break;
        }
        if (st != MP__QREC_DONE)
            *bytes += r->len;
        *count += st == MP__QREC_COMMITTED;
        mp__qcount_add(&q->reserved, st == MP__QREC_RESERVED);
        q->peeked += st == MP__QREC_PEEKED;
        off += mp__qrec_size(r->len);
    }
    atomic_store_explicit(&s->tail, tail, memory_order_relaxed);
}

void mp__queue_repair(mp_queue *q)
{
    uint64_t count = 0, bytes = 0;
    atomic_store(&q->reserved, 0);
    q->peeked = 0;
    atomic_store(&q->chain_intent, 0);
    mp__qseg *last = q->head_seg;
    for (mp__qseg *s = q->head_seg; s; s = s->next) {
        repair_seg(q, s, &count, &bytes);
        last = s;
    }
    q->tail_seg = last;
    atomic_store(&q->count, count);
    atomic_store(&q->bytes, bytes);
    if (atomic_load(&q->j_active)) {
        if (atomic_load(q->j_word) == q->j_value)
            atomic_store(&q->unfinished, q->j_unfinished);
        atomic_store(&q->j_active, 0);
    }
    uint32_t n = 0;
    for (mp__qseg *s = q->spare; s && n < MP__QSPARE_MAX; s = s->next)
        n++;
    q->nspare = n;
    /* Sleepers may have missed the dead holder's wake-up: wake them all. */
    atomic_fetch_add(&q->put_seq, 1);
    atomic_fetch_add(&q->get_seq, 1);
    atomic_fetch_add(&q->done_seq, 1);
    mp__futex_wake(&q->put_seq, INT32_MAX);
    mp__futex_wake(&q->get_seq, INT32_MAX);
    mp__futex_wake(&q->done_seq, INT32_MAX);
}

void mp__qstore_free_all(mp_queue *q)
{
    mp__qseg *s = q->head_seg;
    while (s) {
        mp__qseg *next = s->next;
        mp__heap_free(s);
        s = next;
    }
    s = q->spare;
    for (uint32_t i = 0; s && i < MP__QSPARE_MAX; i++) {
        mp__qseg *next = s->next;
        mp__heap_free(s);
        s = next;
    }
}

mp__qrec *mp__qstore_rec_of(mp_queue *q, const void *payload)
{
    if (!payload || ((uintptr_t)payload & 15) != 0)
        return NULL;
    mp__qrec *r = (mp__qrec *)(uintptr_t)payload - 1;
    if (!mp__heap_contains(r, sizeof *r) || r->tag != q->tag)
        return NULL;
    return r;
}
