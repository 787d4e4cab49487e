/* Forks and the library's background threads under AddressSanitizer. Not
 * installed.
 *
 * glibc's malloc is fork-safe: fork takes its locks and the child gets
 * them free. The allocator of AddressSanitizer (GCC 12's libasan, and
 * compiler-rt before it locked its allocator around fork) is not: a
 * child forked while another thread is inside malloc or free inherits
 * the allocator's lock held, and hangs at its first allocation. The
 * library's own threads (the distributed pool's sender and the worker's
 * heartbeat) allocate while the program forks (a test forking a worker,
 * the worker replacing an executor), so in a build with
 * -fsanitize=address a fork waits until no such thread is inside its
 * work (one round trip to the server at most), and the threads wait
 * while a fork is under way. In other builds both calls are empty and
 * cost nothing. */
#ifndef MULTIPROC_OS_FORK_GATE_H
#define MULTIPROC_OS_FORK_GATE_H

#if defined(__SANITIZE_ADDRESS__)
#define MP__FORK_GATE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MP__FORK_GATE 1
#endif
#endif

#ifdef MP__FORK_GATE
/* A background thread enters before work that may allocate and leaves
 * after it; enters may overlap (several threads), a fork excludes them. */
void mp__fork_gate_enter(void);
void mp__fork_gate_leave(void);
#else
static inline void mp__fork_gate_enter(void) {}
static inline void mp__fork_gate_leave(void) {}
#endif

#endif /* MULTIPROC_OS_FORK_GATE_H */
