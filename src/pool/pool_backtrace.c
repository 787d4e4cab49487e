/* The backtrace of a process worker killed by a signal that runs its
 * handler (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT), from the worker's
 * fault handler (pool/pool_fault.c) to the failure the parent reports
 * (mp_async_backtrace, mp_imap_backtrace).
 *
 * In the worker, the handler walks the stack of the interrupted code with
 * the unwinder of libgcc (_Unwind_Backtrace, the machinery of glibc's
 * backtrace(), called directly for each frame's CFA), from the faulting
 * instruction (the context's program counter: the handler's own frames
 * and the signal trampoline are left out) up to the frame of the pool's
 * code that called the task (mp__pool_bt_mark), at most 32 frames. It
 * names each frame with dladdr1 in the worker itself, so the names and
 * offsets are those of the worker's own image: right under fork, spawn
 * and forkserver alike, whatever the address layout. Neither the unwinder
 * nor dladdr is async-signal-safe. The unwinder is warmed up when the
 * worker starts (its first use may set things up), and with glibc 2.35 and
 * later it finds frames without a lock (_dl_find_object). dladdr takes the
 * loader's lock (recursive: a fault inside the loader in the same thread
 * does not block); a worker whose fault interrupted another of its threads
 * inside dlopen would wait for that lock for ever. That is the price of
 * names from the dying process itself, rather than a module table read by
 * the parent: the worker is dying, and its text is formatted here without
 * stdio or malloc. The text is written into the worker's place of a block
 * of the shared heap, then the signal is stored (release): the parent
 * reads the text only when the signal matches the worker's death.
 *
 * In the parent, the loss of a worker takes its text (mp__pool_bt_take),
 * and the failure the loss makes keeps it when it is one of the failures
 * the job keeps (mp__pool_bt_attach): storage stays bounded by the
 * failures kept, 16 per job unless the map's spec gives an array. */
#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

#include "heap/heap.h"
#include "pool/pool_internal.h"

/* One failure's backtrace, in the parent. */
typedef struct mp__pool_bt {
    size_t ordinal; /* the failure's place among the job's failures */
    size_t index;   /* its item */
    char *text;
} mp__pool_bt;

/* This process's worker record once armed (NULL in the parent and in
 * thread workers), the frame that calls the running task, and whether a
 * capture runs (a fault inside it records nothing). */
static mp__pwrec *bt_rec;
static const void *bt_frame;
static volatile sig_atomic_t bt_busy;

/* The main program's file name: the loader knows it only as argv[0],
 * which a program may change. */
static char bt_main[256];

/* A walk of the stack from the interrupted instruction. */
typedef struct bt_walk {
    uintptr_t pc;    /* the interrupted instruction */
    uintptr_t limit; /* the mark: see bt_step; 0: none */
    bool started;    /* past the handler's frames */
    int skipped;
    int n;
    uintptr_t ip[MP__POOL_BT_FRAMES];
} bt_walk;

/* One frame of the walk. _Unwind_GetCFA gives the frame's own stack
 * pointer at its call (libgcc and LLVM's libunwind alike): at most the
 * mark's address for the frame that holds the mark and for the task's
 * frames below it, above it for every older frame. So the first frame
 * above the mark ends the walk, and the frame before it, the pool's own,
 * is dropped. */
static _Unwind_Reason_Code bt_step(struct _Unwind_Context *ctx, void *data)
{
    bt_walk *w = data;
    uintptr_t ip = (uintptr_t)_Unwind_GetIP(ctx);
    uintptr_t cfa = (uintptr_t)_Unwind_GetCFA(ctx);
    if (!w->started) {
        /* The handler, the trampoline: a few frames. Not finding the
         * interrupted instruction soon means the unwinder cannot cross
         * the signal frame, and nothing is recorded. */
        if (ip != w->pc)
            return ++w->skipped > 16 ? _URC_END_OF_STACK : _URC_NO_REASON;
        w->started = true;
        if (cfa > w->limit)
            w->limit = 0; /* not inside a task (a stale mark): keep every frame */
    }
    if (w->limit && cfa > w->limit) {
        if (w->n > 1) /* else the fault is in the pool's frame itself: keep it */
            w->n--;
        return _URC_END_OF_STACK;
    }
    w->ip[w->n++] = ip;
    return w->n == MP__POOL_BT_FRAMES ? _URC_END_OF_STACK : _URC_NO_REASON;
}

static _Unwind_Reason_Code bt_count(struct _Unwind_Context *ctx, void *data)
{
    (void)ctx;
    ++*(int *)data;
    return _URC_NO_REASON;
}

/* The interrupted instruction, from the handler's context; 0 where this
 * file does not know the context's layout (no backtrace there). */
static uintptr_t bt_pc(const void *uc)
{
    const ucontext_t *c = uc;
#if defined(__x86_64__)
    return (uintptr_t)c->uc_mcontext.gregs[REG_RIP];
#elif defined(__i386__)
    return (uintptr_t)c->uc_mcontext.gregs[REG_EIP];
#elif defined(__aarch64__)
    return (uintptr_t)c->uc_mcontext.pc;
#else
    (void)c;
    return 0;
#endif
}

/* Text built without stdio (the handler may have interrupted it). */
typedef struct bt_out {
    char *p;
    size_t len, cap;
} bt_out;

static void put(bt_out *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        n = o->cap - o->len;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_str(bt_out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_num(bt_out *o, uintptr_t v, unsigned base)
{
    char d[2 * sizeof v + 1];
    size_t i = sizeof d;
    do {
        d[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    put(o, d + i, sizeof d - i);
}

/* One frame: "#1 crash+0x1a (prog+0x11a9)", "#2 ?? (libx.so+0x2f0)" (no
 * dynamic symbol) or "#3 ?? (0x7f12...)" (in no module). A return address
 * is looked up one byte back, inside its call: a call that ends a
 * function would otherwise name the next one. */
static void bt_line(bt_out *o, int k, uintptr_t ip)
{
    Dl_info info;
    struct link_map *map = NULL;
    bool found = dladdr1((void *)(k == 0 ? ip : ip - 1), &info, (void **)&map, RTLD_DL_LINKMAP) &&
                 map != NULL;
    put_str(o, "#");
    put_num(o, (uintptr_t)k, 10);
    if (found && info.dli_sname && info.dli_saddr) {
        put_str(o, " ");
        put(o, info.dli_sname, strnlen(info.dli_sname, 200));
        put_str(o, "+0x");
        put_num(o, ip - (uintptr_t)info.dli_saddr, 16);
    } else {
        put_str(o, " ??");
    }
    put_str(o, " (");
    if (found && info.dli_fname) {
        const char *file = map->l_name[0] || !bt_main[0] ? info.dli_fname : bt_main;
        const char *slash = strrchr(file, '/');
        const char *base = slash ? slash + 1 : file;
        put(o, base, strnlen(base, 100));
        put_str(o, "+");
        ip -= (uintptr_t)map->l_addr; /* the address addr2line takes */
    }
    put_str(o, "0x");
    put_num(o, ip, 16);
    put_str(o, ")\n");
}

/* The frames of w as text, whole lines only; returns its length. */
static size_t bt_format(const bt_walk *w, char *text, size_t cap)
{
    size_t len = 0;
    for (int k = 0; k < w->n; k++) {
        char line[400];
        bt_out o = {line, 0, sizeof line};
        bt_line(&o, k, w->ip[k]);
        if (o.len > cap - 1 - len)
            break;
        memcpy(text + len, line, o.len);
        len += o.len;
    }
    if (len > 0)
        len--; /* no newline after the last frame */
    text[len] = '\0';
    return len;
}

void mp__pool_bt_arm(mp__pwrec *w)
{
    if (!w->shm->bt_text)
        return;
    /* The first walk may set the unwinder up; better now than in a
     * handler. */
    int n = 0;
    _Unwind_Backtrace(bt_count, &n);
    ssize_t len = readlink("/proc/self/exe", bt_main, sizeof bt_main - 1);
    bt_main[len > 0 ? len : 0] = '\0';
    bt_rec = w;
}

void mp__pool_bt_mark(const void *frame)
{
    if (bt_rec)
        bt_frame = frame;
}

void mp__pool_bt_capture(int sig, const void *uc)
{
    mp__pwrec *w = bt_rec;
    if (!w || bt_busy)
        return;
    bt_busy = 1;
    bt_walk walk = {.pc = bt_pc(uc), .limit = (uintptr_t)bt_frame};
    if (walk.pc != 0)
        _Unwind_Backtrace(bt_step, &walk);
    if (walk.n == 0)
        return;
    char *text = w->shm->bt_text + (size_t)w->index * MP__POOL_BT_TEXT;
    w->bt_len = (uint32_t)bt_format(&walk, text, MP__POOL_BT_TEXT);
    atomic_store_explicit(&w->bt_sig, (uint32_t)sig, memory_order_release);
}

void mp__pool_bt_init(mp_pool *p)
{
    void *mem = NULL;
    if (!p->threads && mp__heap_alloc(&mem, (size_t)p->nproc * MP__POOL_BT_TEXT) == 0)
        p->shm->bt_text = mem;
}

void mp__pool_bt_fini(mp_pool *p)
{
    mp__pool_bt_drop(p);
    if (p->shm && p->shm->bt_text) {
        mp__heap_free(p->shm->bt_text);
        p->shm->bt_text = NULL;
    }
}

void mp__pool_bt_take(mp_pool *p, uint32_t worker, pid_t pid, int sig)
{
    mp__pool_bt_drop(p);
    if (!p->shm->bt_text || worker >= (uint32_t)p->nproc || sig <= 0)
        return;
    mp__pwrec *w = &p->shm->wrec[worker];
    if (atomic_load_explicit(&w->bt_sig, memory_order_acquire) != (uint32_t)sig)
        return;
    size_t len = w->bt_len < MP__POOL_BT_TEXT ? w->bt_len : MP__POOL_BT_TEXT - 1;
    char *t = malloc(len + 1);
    if (!t)
        return;
    memcpy(t, p->shm->bt_text + (size_t)worker * MP__POOL_BT_TEXT, len);
    t[len] = '\0';
    p->bt_pending = t;
    char nb[24];
    mp__debug("pool: worker %d killed by %s, in:\n%s", (int)pid, mp__sig_name(sig, nb, sizeof nb),
              t);
}

void mp__pool_bt_drop(mp_pool *p)
{
    free(p->bt_pending);
    p->bt_pending = NULL;
}

void mp__pool_bt_attach(mp_async *a, const mp_task_error *e)
{
    mp_pool *p = a->pool;
    if (!p || !p->bt_pending || e->code != MP_EWORKERLOST || a->nerr == 0 ||
        a->nerr - 1 >= a->errs_cap)
        return;
    mp__pool_bt *b = realloc(a->bts, (a->nbts + 1) * sizeof *b);
    if (!b)
        return;
    b[a->nbts++] = (mp__pool_bt){a->nerr - 1, e->index, p->bt_pending};
    a->bts = b;
    p->bt_pending = NULL;
}

void mp__pool_bt_free(mp_async *a)
{
    for (size_t k = 0; k < a->nbts; k++)
        free(a->bts[k].text);
    free(a->bts);
    a->bts = NULL;
    a->nbts = 0;
}

/* text into buf as mp_async_backtrace documents. */
static int bt_copy(const char *text, char *buf, size_t cap, size_t *len)
{
    size_t n = strlen(text);
    if (len)
        *len = n;
    if (cap > 0) {
        size_t k = n < cap ? n : cap - 1;
        memcpy(buf, text, k);
        buf[k] = '\0';
    }
    return n < cap ? 0 : MP_EMSGSIZE;
}

int mp_async_backtrace(const mp_async *a, size_t i, char *buf, size_t cap, size_t *len)
{
    if (!a || (!buf && cap > 0))
        return mp__fail(MP_EINVAL, "mp_async_backtrace: %s is NULL", a ? "buf" : "a");
    if (mp__pool_backend_of(a))
        return MP_ENOSYS;
    if (!a->done && !a->cancelled)
        return MP_EBUSY;
    if (i >= a->nerr || i >= a->errs_cap)
        return MP_ERANGE;
    for (size_t k = 0; k < a->nbts; k++)
        if (a->bts[k].ordinal == i)
            return bt_copy(a->bts[k].text, buf, cap, len);
    return MP_ENOENT;
}

int mp_imap_backtrace(const mp_imap *it, size_t index, char *buf, size_t cap, size_t *len)
{
    if (!it || (!buf && cap > 0))
        return mp__fail(MP_EINVAL, "mp_imap_backtrace: %s is NULL", it ? "buf" : "it");
    if (mp__pool_backend_of(it))
        return MP_ENOSYS;
    const mp_async *a = it->a;
    for (size_t k = 0; a && k < a->nbts; k++)
        if (a->bts[k].index == index)
            return bt_copy(a->bts[k].text, buf, cap, len);
    return MP_ENOENT;
}
