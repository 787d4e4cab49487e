/* multiproc — named shared memory (Python's shared_memory.SharedMemory).
 *
 *     mp_shm *s;
 *     mp_shm_create(&s, NULL, 4096);         // a generated name
 *     strcpy(mp_shm_buf(s), "hello");
 *     // another program: mp_shm_attach(&t, name) with mp_shm_name(s)
 *     mp_shm_close(s);                        // the creator also unlinks
 *
 * A segment is a POSIX shared-memory object (/dev/shm on Linux) reachable by
 * name from any process of the machine, related or not. For memory shared
 * within one process family, the shared heap (mp_alloc) is simpler: no
 * names, no sizes fixed in advance, pointers valid everywhere.
 *
 * Ownership is explicit and nothing happens behind the user's back: the
 * process that created a segment owns its name and removes it when it
 * closes the segment (or earlier with mp_shm_unlink); attaching registers
 * nothing and never removes anything; no tracker process, no warnings at
 * exit. A creator killed before closing leaves the name in /dev/shm, like
 * any file; mp_shm_attach + mp_shm_unlink removes it.
 *
 * Names: an optional leading '/', then 1 to 200 characters, none of them
 * '/'; mp_shm_name returns it without the '/'. Segments are created
 * exclusively (O_EXCL) with mode 0600: only the same user may attach.
 *
 * Thread safety: an mp_shm may be used from several threads, except that
 * mp_shm_close must be the last call on it. The bytes of the buffer are the
 * user's to synchronise. Across fork: the child shares the mapping; its copy
 * of the object is not the owner (its close never unlinks).
 */
#ifndef MULTIPROC_SHM_H
#define MULTIPROC_SHM_H

#include <stddef.h>

#include "multiproc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_shm mp_shm;

/* mp_shm_create — create and map a new named segment of size bytes (zeroed).
 *
 * out: receives the segment, owned by the caller (mp_shm_close).
 * name: borrowed until return; NULL generates a unique name ("mp_" and 16
 * hex digits). size: above 0.
 * Returns 0, or MP_EINVAL (NULL out, bad name, size 0 or too large),
 * MP_EEXIST (the name exists), MP_EACCES, MP_EMFILE, MP_ENOMEM, MP_ENOSPC.
 * Nothing is left behind on failure. Thread-safe. */
MP_API int mp_shm_create(mp_shm **out, const char *name, size_t size);

/* mp_shm_attach — map an existing segment, whole.
 *
 * out: receives the segment (mp_shm_close). name: borrowed until return.
 * Returns 0, or MP_ENOENT (no such name), MP_EINVAL (NULL out, bad name, or
 * an empty segment: its creator has not sized it), MP_EACCES (another
 * user's), MP_EMFILE, MP_ENOMEM. Thread-safe. */
MP_API int mp_shm_attach(mp_shm **out, const char *name);

/* The mapped bytes, valid until mp_shm_close (NULL for NULL). */
MP_API void *mp_shm_buf(const mp_shm *s);
/* Their number (0 for NULL). */
MP_API size_t mp_shm_size(const mp_shm *s);
/* The name, without a leading '/' (NULL for NULL); owned by s. */
MP_API const char *mp_shm_name(const mp_shm *s);

/* mp_shm_unlink — remove the name now (any process may): new attaches fail
 * with MP_ENOENT; existing mappings stay valid until closed. Returns 0,
 * MP_ENOENT (already removed), MP_EACCES, MP_EINVAL (NULL). */
MP_API int mp_shm_unlink(mp_shm *s);

/* mp_shm_disown — the creator gives up ownership: its close will not remove
 * the name (another process takes the duty over). Returns 0, MP_EINVAL
 * (NULL), MP_EPERM (not the creator in this process). */
MP_API int mp_shm_disown(mp_shm *s);

/* mp_shm_close — unmap the segment and free s; the owning creator also
 * removes the name unless it was already. NULL is a no-op. */
MP_API void mp_shm_close(mp_shm *s);

#ifdef __cplusplus
}
#endif

#endif /* MULTIPROC_SHM_H */
