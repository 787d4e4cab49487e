/* Addresses of code and static data as (module, offset), so that a process
 * started by spawn or forkserver finds the same function or object in its
 * own image whatever the address layout. Not installed. */
#ifndef MULTIPROC_SYMBOL_H
#define MULTIPROC_SYMBOL_H

#include <stddef.h>
#include <stdint.h>

#define MP__BUILD_ID_MAX 32
#define MP__MODULE_MAX   512

/* A position-independent reference to an address inside a loaded module. */
typedef struct mp__symref {
    uint64_t offset;                    /* from the module's load base */
    uint32_t build_id_len;              /* 0: the module has no build-id */
    uint8_t build_id[MP__BUILD_ID_MAX]; /* GNU build-id note of the module */
    char path[MP__MODULE_MAX];          /* "" for the main program */
} mp__symref;

/* A loaded module as another process sees it: enough to tell whether a
 * reference would decode there (mp__sym_check). */
typedef struct mp__symmod {
    uint32_t build_id_len;
    uint8_t build_id[MP__BUILD_ID_MAX];
    char path[MP__MODULE_MAX]; /* "" for the main program */
} mp__symmod;

/* Describes addr, which must lie in a segment of a loaded module (code or
 * static data). Returns 0, or MP_EINVAL when addr belongs to no module (a
 * stack or malloc pointer: meaningless in another process image). */
int mp__sym_encode(const void *addr, mp__symref *out);

/* Finds the address that ref describes in this process. Returns 0,
 * MP_ENOTLOADED when the module is not loaded here (loaded by the parent with
 * dlopen after start), MP_EOTHERBUILD when it is another build (build-ids
 * differ), MP_EBADMSG when ref itself is malformed. */
int mp__sym_decode(const mp__symref *ref, void **addr);

/* The modules loaded now, up to cap of them in mods (NULL: just count);
 * returns how many there are. A module whose path is too long to carry is
 * left out, as mp__sym_encode leaves it out. */
size_t mp__sym_modules(mp__symmod *mods, size_t cap);

/* What mp__sym_decode of ref would return in a process whose modules are
 * mods[0..n) (from mp__sym_modules there): 0, MP_ENOTLOADED,
 * MP_EOTHERBUILD or MP_EBADMSG. */
int mp__sym_check(const mp__symref *ref, const mp__symmod *mods, size_t n);

/* The module that contains addr: ref describes its load base (offset 0),
 * *base is that base in this process and [*lo, *hi) the extent of its
 * loaded segments. Returns 0 or MP_EINVAL (addr is in no module). */
int mp__sym_module(const void *addr, mp__symref *ref, uintptr_t *base, uintptr_t *lo,
                   uintptr_t *hi);

/* The load bases of the modules loaded now, up to cap; returns how many
 * modules there are. */
size_t mp__sym_bases(uintptr_t *bases, size_t cap);

/* The build-id of the main program; 0 bytes when it has none. */
size_t mp__sym_main_build_id(uint8_t id[MP__BUILD_ID_MAX]);

#endif /* MULTIPROC_SYMBOL_H */
