/* (module, offset) references for spawn and forkserver (see os/symbol.h).
 *
 * dl_iterate_phdr lists every loaded module with its load base and program
 * headers: the segments say whether an address is inside it, and the
 * PT_NOTE segments hold the GNU build-id that tells two builds apart. The
 * main program comes first and has an empty name. */
#include <elf.h>
#include <link.h>
#include <string.h>

#include "base/internal.h"
#include "os/symbol.h"

static size_t sym_build_id(const struct dl_phdr_info *info, uint8_t id[MP__BUILD_ID_MAX])
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        const unsigned char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)(const void *)p;
            size_t name_sz = (n->n_namesz + 3u) & ~3u, desc_sz = (n->n_descsz + 3u) & ~3u;
            const unsigned char *name = p + sizeof(*n), *desc = name + name_sz;
            if (desc + desc_sz > end)
                break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
                n->n_descsz <= MP__BUILD_ID_MAX) {
                memcpy(id, desc, n->n_descsz);
                return n->n_descsz;
            }
            p = desc + desc_sz;
        }
    }
    return 0;
}

static bool sym_contains(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && addr >= start && addr - start < ph->p_memsz)
            return true;
    }
    return false;
}

struct sym_find {
    uintptr_t addr;
    mp__symref *ref;
    bool found;
    uintptr_t base, lo, hi;
};

static void sym_extent(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi)
{
    *lo = UINTPTR_MAX;
    *hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type != PT_LOAD)
            continue;
        if (start < *lo)
            *lo = start;
        if (start + ph->p_memsz > *hi)
            *hi = start + ph->p_memsz;
    }
}

static int sym_find_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct sym_find *f = data;
    if (!sym_contains(info, f->addr))
        return 0;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    if (strlen(name) >= MP__MODULE_MAX)
        return 1; /* found, but its path cannot be carried: not found */
    f->ref->offset = (uint64_t)(f->addr - info->dlpi_addr);
    f->ref->build_id_len = (uint32_t)sym_build_id(info, f->ref->build_id);
    mp__strlcpy(f->ref->path, name, sizeof(f->ref->path));
    f->found = true;
    f->base = info->dlpi_addr;
    sym_extent(info, &f->lo, &f->hi);
    return 1;
}

int mp__sym_encode(const void *addr, mp__symref *out)
{
    mp__symref ref;
    memset(&ref, 0, sizeof(ref));
    struct sym_find f = {.addr = (uintptr_t)addr, .ref = &ref};
    dl_iterate_phdr(sym_find_cb, &f);
    if (!f.found)
        return MP_EINVAL;
    *out = ref;
    return 0;
}

int mp__sym_module(const void *addr, mp__symref *ref, uintptr_t *base, uintptr_t *lo, uintptr_t *hi)
{
    mp__symref r;
    memset(&r, 0, sizeof(r));
    struct sym_find f = {.addr = (uintptr_t)addr, .ref = &r};
    dl_iterate_phdr(sym_find_cb, &f);
    if (!f.found)
        return MP_EINVAL;
    r.offset = 0;
    *ref = r;
    *base = f.base;
    *lo = f.lo;
    *hi = f.hi;
    return 0;
}

struct sym_bases {
    uintptr_t *bases;
    size_t cap, n;
};

static int sym_bases_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct sym_bases *b = data;
    if (b->n < b->cap)
        b->bases[b->n] = info->dlpi_addr;
    b->n++;
    return 0;
}

size_t mp__sym_bases(uintptr_t *bases, size_t cap)
{
    struct sym_bases b = {.bases = bases, .cap = cap};
    dl_iterate_phdr(sym_bases_cb, &b);
    return b.n;
}

/* Whether a module (its name, and whether it is the main program) is the
 * one ref names. */
static bool sym_names(const mp__symref *ref, const char *name, bool is_main)
{
    return ref->path[0] == '\0' ? is_main : strcmp(name, ref->path) == 0;
}

/* For the module ref names: 0 if it has ref's build-id, else MP_EOTHERBUILD. */
static int sym_same_build(const mp__symref *ref, const uint8_t *id, size_t n)
{
    return n == ref->build_id_len && memcmp(id, ref->build_id, n) == 0 ? 0 : MP_EOTHERBUILD;
}

static int sym_ref_ok(const mp__symref *ref)
{
    if (memchr(ref->path, '\0', sizeof(ref->path)) == NULL || ref->build_id_len > MP__BUILD_ID_MAX)
        return MP_EBADMSG;
    return 0;
}

struct sym_mods {
    mp__symmod *mods;
    size_t cap, n;
};

static int sym_mods_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct sym_mods *m = data;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    if (m->n > 0 && name[0] == '\0')
        return 0; /* the vDSO on some systems: never named by a reference */
    if (strlen(name) >= MP__MODULE_MAX)
        return 0;
    if (m->n < m->cap) {
        mp__symmod *d = &m->mods[m->n];
        memset(d, 0, sizeof(*d));
        d->build_id_len = (uint32_t)sym_build_id(info, d->build_id);
        mp__strlcpy(d->path, m->n == 0 ? "" : name, sizeof(d->path));
    }
    m->n++;
    return 0;
}

size_t mp__sym_modules(mp__symmod *mods, size_t cap)
{
    struct sym_mods m = {.mods = mods, .cap = mods ? cap : 0};
    dl_iterate_phdr(sym_mods_cb, &m);
    return m.n;
}

int mp__sym_check(const mp__symref *ref, const mp__symmod *mods, size_t n)
{
    int rc = sym_ref_ok(ref);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (sym_names(ref, mods[i].path, i == 0))
            return sym_same_build(ref, mods[i].build_id, mods[i].build_id_len);
    return rc < 0 ? rc : MP_ENOTLOADED;
}

struct sym_lookup {
    const mp__symref *ref;
    uintptr_t base;
    int rc;
    bool first;
};

static int sym_lookup_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct sym_lookup *l = data;
    bool is_main = l->first;
    l->first = false;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    if (!sym_names(l->ref, name, is_main))
        return 0;
    uint8_t id[MP__BUILD_ID_MAX];
    l->rc = sym_same_build(l->ref, id, sym_build_id(info, id));
    l->base = info->dlpi_addr;
    return 1;
}

int mp__sym_decode(const mp__symref *ref, void **addr)
{
    if (sym_ref_ok(ref) < 0)
        return MP_EBADMSG;
    struct sym_lookup l = {.ref = ref, .rc = MP_ENOTLOADED, .first = true};
    dl_iterate_phdr(sym_lookup_cb, &l);
    if (l.rc == 0)
        *addr = (void *)(l.base + (uintptr_t)ref->offset);
    return l.rc;
}

static int sym_main_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uint8_t *id = data;
    return (int)sym_build_id(info, id) + 1; /* the first module is the main program */
}

size_t mp__sym_main_build_id(uint8_t id[MP__BUILD_ID_MAX])
{
    return (size_t)dl_iterate_phdr(sym_main_cb, id) - 1;
}
