/* Pointers that are no shared object, for the bad-input tests of the
 * object types: a call given one must return MP_EINVAL (or its type's
 * "nothing" value) without touching the memory, so none of them may
 * crash the test. */
#ifndef MP_TEST_WILD_POINTERS_H
#define MP_TEST_WILD_POINTERS_H

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mp_test.h"

#define MP_TEST_WILD_MAX 9

typedef struct mp_test_wild {
    size_t n;
    void *p[MP_TEST_WILD_MAX];
    const char *what[MP_TEST_WILD_MAX];
    void *none; /* the PROT_NONE page, unmapped by mp_test_wild_end */
    void *block;
    size_t page;
} mp_test_wild;

static inline void mp_test_wild_add(mp_test_wild *w, void *p, const char *what)
{
    w->p[w->n] = p;
    w->what[w->n++] = what;
}

/* Fills w; stack is a buffer of the caller's frame (at least 64 bytes),
 * which must live until the pointers are no longer used. */
static inline void mp_test_wild_begin(mp_test_wild *w, unsigned char *stack)
{
    memset(w, 0, sizeof *w);
    w->page = (size_t)sysconf(_SC_PAGESIZE);
    void *gone = mmap(NULL, w->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(gone, MAP_FAILED);
    memset(gone, 0xff, w->page);
    cr_assert_eq(munmap(gone, w->page), 0);
    w->none = mmap(NULL, w->page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(w->none, MAP_FAILED);
    memset(stack, 0, 64);
    w->block = mp_alloc(256);
    cr_assert_not_null(w->block);
    mp_heap_stats st;
    mp_assert_ok(mp_heap_get_stats(&st));
    mp_test_wild_add(w, gone, "an unmapped page");
    mp_test_wild_add(w, (void *)1, "(void *)1");
    mp_test_wild_add(w, stack, "a stack address");
    mp_test_wild_add(w, stack + 3, "a misaligned stack address");
    mp_test_wild_add(w, w->none, "a PROT_NONE page");
    mp_test_wild_add(w, (char *)w->block + 4, "a misaligned pointer into a heap block");
    mp_test_wild_add(w, st.base, "the heap's header");
    mp_test_wild_add(w, (char *)st.base + st.reserved - 8, "the heap's last word");
    mp_test_wild_add(w, (char *)st.base + st.reserved, "just past the heap");
}

static inline void mp_test_wild_end(mp_test_wild *w)
{
    munmap(w->none, w->page);
    mp_free(w->block);
}

#endif /* MP_TEST_WILD_POINTERS_H */
