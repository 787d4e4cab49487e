/* The shared heap: the memfd, its mapping at the family address, and the
 * public API over the allocator (heap/heap_alloc.c). */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "heap/heap_internal.h"
#include "heap/heap_object.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* The family address (docs/heap.md, "Shared heap"). The kernel puts
 * nothing of its own choosing below 0x2aaa'aaaa'a000 (a third of the
 * address space, where even the legacy mmap layout begins): PIE programs
 * load near 0x5555'5555'4000 and libraries, mmaps and stacks sit near the
 * top. 256 GiB is in that empty region, and inside ThreadSanitizer's
 * "low application memory" (below 512 GiB), the narrowest of the
 * sanitizer layouts. AddressSanitizer's shadow gap covers it, so ASan
 * builds use 17 TiB instead: above its high shadow (which ends near
 * 16 TiB), below Criterion's arena (at 32 TiB) and ASan's allocator (96 TiB). */
#if defined(MP__ASAN)
#define MP__HEAP_ADDR  ((uintptr_t)0x110000000000ULL)
#define MP__HEAP_LIMIT ((size_t)4 << 40)
#elif defined(MP__TSAN)
#define MP__HEAP_ADDR  ((uintptr_t)0x004000000000ULL)
#define MP__HEAP_LIMIT ((size_t)256 << 30)
#else
#define MP__HEAP_ADDR  ((uintptr_t)0x004000000000ULL)
#define MP__HEAP_LIMIT ((size_t)4 << 40)
#endif
/* The default reservation, when nothing limits it (docs/heap.md, "How
 * much is reserved"): at most a quarter of the address space RLIMIT_AS
 * leaves free, and 1 GiB under valgrind. */
#define MP__HEAP_DEFAULT  ((size_t)64 << 30)
#define MP__HEAP_VALGRIND ((size_t)1 << 30)
#define MP__HEAP_AS_SHARE 4

_Atomic(mp__hhdr *) mp__heap;
int mp__heap_fd = -1;
static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static bool cache_ready;

/* MP_HEAP_SIZE: a byte count with an optional K, M, G or T suffix, and
 * nothing else: strtoull alone would take " -1" for 2^64 - 1. */
static int env_size(size_t *out)
{
    const char *s = secure_getenv("MP_HEAP_SIZE");
    if (!s || !*s)
        return 0;
    if (*s < '0' || *s > '9')
        return MP_EINVAL;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return MP_EINVAL;
    int shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    case 't':
    case 'T':
        shift = 40;
        end++;
        break;
    default:
        break;
    }
    if (*end || v > (SIZE_MAX >> shift))
        return MP_EINVAL;
    *out = (size_t)v << shift;
    return 0;
}

/* Valgrind preloads its own libraries (vgpreload_<tool>-<arch>.so)
 * through LD_PRELOAD in every program it runs, and removes them for the
 * children it does not follow; its client request (RUNNING_ON_VALGRIND)
 * would need its headers at build time. A program that only pretends
 * gets a smaller default heap, nothing more. */
static bool under_valgrind(void)
{
    const char *s = secure_getenv("LD_PRELOAD");
    return s && strstr(s, "vgpreload") != NULL;
}

/* Bytes of address space this process maps now (VmSize), 0 if unknown. */
static size_t address_space_in_use(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long long pages = strtoull(buf, NULL, 10);
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || pages > SIZE_MAX / (unsigned long)page)
        return 0;
    return (size_t)pages * (size_t)page;
}

/* The reservation when neither mp_init_opts.heap_size nor MP_HEAP_SIZE
 * asks for one: 64 GiB, 1 GiB under valgrind (whose memory manager makes
 * a large mapping slow), and never more than a quarter of what the soft
 * RLIMIT_AS (ulimit -v) leaves above the address space in use, so that
 * the program keeps room for its own mappings. */
static size_t default_size(void)
{
    size_t size = under_valgrind() ? MP__HEAP_VALGRIND : MP__HEAP_DEFAULT;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        size_t used = address_space_in_use();
        size_t limit = (size_t)rl.rlim_cur;
        size_t room = (limit > used ? limit - used : 0) / MP__HEAP_AS_SHARE;
        if (room < size)
            size = room < MP__HEAP_MIN ? MP__HEAP_MIN : room;
    }
    return size;
}

_Atomic uintptr_t mp__heap_lo, mp__heap_hi;

/* Publishes the mapped heap h: its block area first (mp__heap_contains),
 * then the heap itself. */
static void heap_publish(mp__hhdr *h)
{
    atomic_store_explicit(&mp__heap_hi, (uintptr_t)h + h->size, memory_order_relaxed);
    atomic_store_explicit(&mp__heap_lo, (uintptr_t)h + h->spans_off, memory_order_release);
    atomic_store_explicit(&mp__heap, h, memory_order_release);
}

/* A private futex wait that cannot sleep (zero timeout) reads the word
 * through the kernel's user-copy, which reports a fault as EFAULT instead
 * of a signal; any other outcome (the word differed, or matched and the
 * zero wait timed out) means it was read. */
static bool word_readable(const void *p)
{
    struct timespec zero = {0, 0};
    long rc;
    do
        rc = syscall(SYS_futex, p, FUTEX_WAIT_PRIVATE, 0u, &zero, NULL, 0);
    while (rc < 0 && errno == EINTR);
    return rc == 0 || errno != EFAULT;
}

/* Handles freed so far; a thread's remembered handles carry the count of
 * their time. */
static _Atomic uint64_t handles_freed;

#define MP__HANDLE_MEMORY 4

static _Thread_local struct {
    const void *p[MP__HANDLE_MEMORY];
    uint64_t freed; /* handles_freed when the entries were made */
    unsigned next;
} mp__handles;

bool mp__handle_known(const void *p)
{
    if (mp__handles.freed != atomic_load_explicit(&handles_freed, memory_order_acquire))
        return false;
    for (int i = 0; i < MP__HANDLE_MEMORY; i++)
        if (mp__handles.p[i] == p)
            return true;
    return false;
}

void mp__handle_remember(const void *p)
{
    uint64_t now = atomic_load_explicit(&handles_freed, memory_order_acquire);
    if (mp__handles.freed != now) {
        memset(mp__handles.p, 0, sizeof(mp__handles.p));
        mp__handles.freed = now;
    }
    mp__handles.p[mp__handles.next++ % MP__HANDLE_MEMORY] = p;
}

void mp__handle_freed(void)
{
    atomic_fetch_add_explicit(&handles_freed, 1, memory_order_release);
}

bool mp__mem_readable(const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)p;
    if (p == NULL || len == 0 || (a & 3u) != 0)
        return false;
    uintptr_t last = (a + len - 1) & ~(uintptr_t)3;
    /* Readability is per page, and a page is at least 4 KiB: one probe
     * answers for both ends when they share a 4 KiB block. */
    if (!word_readable(p))
        return false;
    return (a >> 12) == (last >> 12) || word_readable((const void *)last);
}

static int heap_format(mp__hhdr *h, size_t size)
{
    uint64_t max_spans = size >> MP__SPAN_SHIFT;
    size_t meta = sizeof(mp__hhdr) + (size_t)(max_spans + 63) / 64 * sizeof(uint64_t);
    size_t off = (meta + MP__SPAN - 1) & ~(MP__SPAN - 1);
    if (off + MP__SPAN > size)
        return MP_EINVAL;
    h->size = size;
    h->spans_off = off;
    h->nspans = (size - off) >> MP__SPAN_SHIFT;
    int rc = mp__robust_mutex_init(&h->page_lock, false);
    for (int c = 0; c < MP__NCLASS && rc == 0; c++)
        rc = mp__robust_mutex_init(&h->cls[c].lock, false);
    if (rc == 0)
        __atomic_store_n(&h->magic, MP__HEAP_MAGIC, __ATOMIC_RELEASE);
    return rc;
}

/* Says why the reservation failed and what to do, in the detail of fn
 * (and on stderr with MP_DEBUG=1). Returns rc. */
static int report_map_failure(const char *fn, size_t size, const char *source, int rc)
{
    if (rc == MP_ENOHEAPADDR)
        return mp__fail(
            rc, "%s: cannot map the shared heap (%zu bytes, %s) at %p: the address is taken", fn,
            size, source, (void *)MP__HEAP_ADDR);
    struct rlimit rl;
    char lim[48] = "unlimited";
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        snprintf(lim, sizeof lim, "%llu bytes", (unsigned long long)rl.rlim_cur);
    return mp__fail(rc,
                    "%s: cannot reserve the shared heap (%zu bytes, %s) at %p: %s (RLIMIT_AS: %s); "
                    "set MP_HEAP_SIZE to a smaller size, e.g. MP_HEAP_SIZE=256M",
                    fn, size, source, (void *)MP__HEAP_ADDR, mp_strerror(rc), lim);
}

/* Creates the memfd and maps it at the family address. */
static int heap_map(const char *fn, size_t size, const char *source)
{
    int fd = memfd_create("multiproc-heap", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return mp__errno();
    int rc = 0;
    void *want = (void *)MP__HEAP_ADDR;
    if (ftruncate(fd, (off_t)size) < 0) {
        rc = errno == EFBIG || errno == EINVAL ? MP_ENOMEM : mp__errno();
        goto fail;
    }
    /* Nobody can shrink it under the family's feet (which would turn
     * accesses into SIGBUS); punching holes stays allowed. */
    (void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    void *p = mmap(want, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE | MAP_FIXED_NOREPLACE, fd, 0);
    if (p == MAP_FAILED) {
        rc = errno == EEXIST ? MP_ENOHEAPADDR : errno == ENOMEM ? MP_ENOMEM : mp__errno();
        goto fail;
    }
    if (p != want) {
        /* A kernel older than 4.17 takes the flag for a hint. */
        munmap(p, size);
        rc = MP_ENOHEAPADDR;
        goto fail;
    }
    if ((rc = heap_format(p, size)) < 0) {
        munmap(p, size);
        goto fail;
    }
    mp__heap_fd = fd;
    heap_publish(p);
    mp__debug("heap: %zu bytes (%s) at %p", size, source, p);
    return 0;
fail:
    close(fd);
    return report_map_failure(fn, size, source, rc);
}

/* Maps the heap once: for mp_init (fn), or for the first call that needs
 * it (fn "mp_init (implicit)"). */
static int heap_create(const char *fn, size_t req)
{
    pthread_mutex_lock(&init_mu);
    mp__hhdr *h = atomic_load(&mp__heap);
    int rc = 0;
    size_t size = req;
    if (h) {
        if (req && (req & ~(MP__SPAN - 1)) != h->size)
            rc = mp__fail(MP_EBUSY,
                          "%s: opts->heap_size %zu differs from the size of the heap already "
                          "mapped (%zu bytes)",
                          fn, req, (size_t)h->size);
        goto out;
    }
    const char *source = "mp_init_opts.heap_size";
    if (!size && (rc = env_size(&size)) < 0) {
        rc = mp__fail(
            rc, "%s: MP_HEAP_SIZE is malformed: \"%.40s\" (bytes, with an optional K, M, G or T)",
            fn, secure_getenv("MP_HEAP_SIZE"));
        goto out;
    }
    if (!req)
        source = size ? "MP_HEAP_SIZE" : "default";
    if (!size)
        size = default_size();
    size &= ~(MP__SPAN - 1);
    if (size < MP__HEAP_MIN || size > MP__HEAP_LIMIT) {
        rc = mp__fail(MP_EINVAL, "%s: a heap of %zu bytes (%s) is not between %zu and %zu", fn,
                      size, source, (size_t)MP__HEAP_MIN, (size_t)MP__HEAP_LIMIT);
        goto out;
    }
    if (!cache_ready) {
        if ((rc = mp__heap_cache_setup()) < 0)
            goto out;
        cache_ready = true;
    }
    rc = heap_map(fn, size, source);
out:
    pthread_mutex_unlock(&init_mu);
    return rc;
}

int mp__heap_ensure(void)
{
    if (atomic_load_explicit(&mp__heap, memory_order_acquire))
        return 0;
    return heap_create("mp_init (implicit)", 0);
}

int mp__heap_export(int *fd, void **addr, size_t *size)
{
    if (!fd || !addr || !size)
        return MP_EINVAL;
    int rc = mp__heap_ensure();
    mp__hhdr *h = atomic_load_explicit(&mp__heap, memory_order_acquire);
    *fd = h ? mp__heap_fd : -1;
    *addr = h;
    *size = h ? h->size : 0;
    return rc;
}

/* Maps an inherited heap (init lock held). The fd must be a heap of this
 * build: the address and size it claims, a formatted header. */
static int heap_adopt_locked(int fd, void *addr, size_t size)
{
    struct stat st;
    if ((uintptr_t)addr != MP__HEAP_ADDR || size < MP__HEAP_MIN || size > MP__HEAP_LIMIT ||
        fstat(fd, &st) < 0 || (uint64_t)st.st_size != size)
        return MP_EBADMSG;
    int rc = 0;
    if (!cache_ready) {
        if ((rc = mp__heap_cache_setup()) < 0)
            return rc;
        cache_ready = true;
    }
    void *p = mmap(addr, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE | MAP_FIXED_NOREPLACE, fd, 0);
    if (p == MAP_FAILED)
        return errno == EEXIST ? MP_ENOHEAPADDR : errno == ENOMEM ? MP_ENOMEM : mp__errno();
    mp__hhdr *h = p;
    if (p != addr || __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != MP__HEAP_MAGIC ||
        h->size != size) {
        munmap(p, size);
        return p != addr ? MP_ENOHEAPADDR : MP_EBADMSG;
    }
    /* Inherited through exec, so without close-on-exec: set it again. */
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    mp__heap_fd = fd;
    heap_publish(h);
    return 0;
}

int mp__heap_adopt(int fd, void *addr, size_t size)
{
    if (fd < 0)
        return MP_EBADF;
    pthread_mutex_lock(&init_mu);
    int rc = atomic_load(&mp__heap) ? MP_EBUSY : heap_adopt_locked(fd, addr, size);
    pthread_mutex_unlock(&init_mu);
    if (rc < 0)
        close(fd); /* ours either way */
    return rc;
}

int mp__heap_root(unsigned slot, _Atomic(void *) **out)
{
    if (slot >= MP__HEAP_ROOTS || out == NULL)
        return MP_EINVAL;
    int rc = mp__heap_ensure();
    if (rc < 0)
        return rc;
    *out = &atomic_load_explicit(&mp__heap, memory_order_acquire)->roots[slot];
    return 0;
}

uintptr_t mp__heap_family_addr(void)
{
    return MP__HEAP_ADDR;
}

/* ---- public API ---------------------------------------------------------*/

int mp_init(const mp_init_opts *opts)
{
    return heap_create("mp_init", opts ? opts->heap_size : 0);
}

void *mp_alloc(size_t size)
{
    void *p = NULL;
    return mp__heap_alloc_for("mp_alloc", &p, size) == 0 ? p : NULL;
}

void *mp_calloc(size_t n, size_t size)
{
    size_t total;
    void *p = NULL;
    if (__builtin_mul_overflow(n, size, &total)) {
        mp__fail(MP_EOVERFLOW, "mp_calloc: n %zu times size %zu overflows a size_t", n, size);
        return NULL;
    }
    return mp__heap_alloc_for("mp_calloc", &p, total) == 0 ? p : NULL;
}

void *mp_realloc(void *p, size_t size)
{
    if (!p)
        return mp_alloc(size);
    size_t old = mp__heap_usable(p);
    if (old == 0) {
        /* Not ours: leave it alone. */
        mp__fail(MP_EINVAL, "mp_realloc: p (%p) is not a block of the shared heap in use", p);
        return NULL;
    }
    if (size == 0) {
        mp__heap_free(p);
        return NULL;
    }
    if (size <= old && (old <= MP__SMALL_MAX || size > MP__SMALL_MAX))
        return p;
    void *q = NULL;
    if (mp__heap_alloc_for("mp_realloc", &q, size) < 0)
        return NULL;
    memcpy(q, p, old < size ? old : size);
    mp__heap_free(p);
    return q;
}

void mp_free(void *p)
{
    mp__heap_free(p);
}

size_t mp_alloc_size(const void *p)
{
    return p ? mp__heap_usable(p) : 0;
}

bool mp_heap_contains(const void *p, size_t len)
{
    return mp__heap_contains(p, len);
}

int mp__obj_fail(const char *fn, const char *arg, const void *obj, const char *kind)
{
    if (!obj)
        return mp__fail(MP_EINVAL, "%s: %s is NULL", fn, arg);
    if (((uintptr_t)obj & 7u) != 0)
        return mp__fail(MP_EINVAL, "%s: %s (%p) is not 8-byte aligned: not a %s", fn, arg, obj,
                        kind);
    if (!mp__heap_contains(obj, sizeof(mp__obj_head)))
        return mp__fail(MP_EINVAL, "%s: %s (%p) is not in the shared heap: not a %s of this family",
                        fn, arg, obj, kind);
    return mp__fail(MP_EINVAL, "%s: %s (%p) is not a live %s (destroyed, or another type)", fn, arg,
                    obj, kind);
}
