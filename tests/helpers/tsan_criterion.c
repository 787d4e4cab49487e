/* Linked into every Criterion test binary of the ThreadSanitizer build only.
 *
 * Criterion runs each test in a child process and shares its data with it
 * through "arenas" of its bundled sandbox library: shared mappings placed
 * with MAP_FIXED at the same address in the runner and in the child. The
 * address is 0x200000000000 + (rand_r() & 0x3fffff) * 16 MiB, and a candidate
 * is rejected, for at most 3 candidates, when mincore() finds anything mapped
 * there. Under TSan almost that whole range is TSan's own (shadow, metadata,
 * and the gaps it maps PROT_NONE), so Criterion usually aborts with "Could
 * not initialize inheritable arena", or crashes on the context it failed to
 * create.
 *
 * The only free application range TSan leaves inside it is
 * [0x550000000000, 0x568000000000), where position-independent executables
 * are loaded (gcc 12 and clang 14 runtimes, x86-64). This rand_r() replaces
 * glibc's for the whole program; when called from libcriterion it returns a
 * value that puts the arena in [0x560000000000, 0x568000000000), above the
 * executable, which the kernel loads at 0x555555554000 when ASLR is off
 * (make check turns it off for TSan; with it on, a slot the executable
 * happens to occupy is skipped by the mincore check). Every other caller,
 * and every caller on other architectures, gets glibc's rand_r().
 * Criterion's own checks (mincore) and its MAP_FIXED mapping are unchanged,
 * and TSan sees the arena as ordinary shared application memory. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Arena slot 0x360000 is 0x200000000000 + 0x360000 * 16 MiB = 0x560000000000;
 * 0x8000 slots of 16 MiB end at 0x568000000000. */
#define ARENA_FIRST_SLOT 0x360000u
#define ARENA_SLOT_MASK  0x7fffu

#if defined(__x86_64__)
static int called_from_criterion(void *caller)
{
    Dl_info info;
    return dladdr(caller, &info) && info.dli_fname && strstr(info.dli_fname, "libcriterion");
}
#endif

/* Exported (the build hides symbols by default) so that libcriterion.so and
 * libtsan.so bind to these definitions. */
#define MP_EXPORT __attribute__((visibility("default")))

MP_EXPORT int rand_r(unsigned *seed)
{
#if defined(__x86_64__)
    if (called_from_criterion(__builtin_return_address(0))) {
        uint32_t x = *seed ? *seed : 0x9e3779b9u;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *seed = x;
        return (int)(ARENA_FIRST_SLOT + (x & ARENA_SLOT_MASK));
    }
#endif
    int (*real)(unsigned *);
    *(void **)&real = dlsym(RTLD_NEXT, "rand_r");
    if (!real)
        abort();
    return real(seed);
}

/* The options make check uses, also when a test binary runs by hand: a
 * report ends the test process at once, so Criterion reports the test as
 * failed (without halt_on_error a race found in a test child would only set
 * the child's exit status, which Criterion does not look at). Criterion's
 * test process has a thread of its own, so a worker the test forks is the
 * child of a multi-threaded fork, and TSan kills such a child when it
 * starts a thread (die_after_fork) — as a distributed pool's worker does
 * for its heartbeat. POSIX allows it (the child has one thread and may
 * create others), so the tests allow it too. TSAN_OPTIONS in the
 * environment still overrides them. */
const char *__tsan_default_options(void);
MP_EXPORT const char *__tsan_default_options(void)
{
    return "halt_on_error=1:second_deadlock_stack=1:die_after_fork=0";
}
