/* The os layer's arrays in mappings of their own and the buffers kept from
 * one batch to the next (os/bulk.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/bulk.h"
#include "mp_test.h"

TestSuite(os_bulk, .timeout = 30);

/* Whether the mapping that holds p has the VmFlags mark "hg"
 * (MADV_HUGEPAGE), from /proc/self/smaps. */
static bool marked_huge(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    cr_assert_not_null(f);
    char line[512];
    bool inside = false, hg = false, found = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            found = true;
            hg = strstr(line, " hg") != NULL;
        }
    }
    fclose(f);
    cr_assert(found, "no mapping holds %p", p);
    return hg;
}

Test(os_bulk, an_array_grows_keeping_its_contents_and_new_bytes_read_zero)
{
    unsigned char *p = mp__bulk_resize(NULL, 0, 100);
    cr_assert_not_null(p);
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(p[i], 0);
    memset(p, 0xab, 100);
    size_t big = (size_t)64 << 20;
    unsigned char *q = mp__bulk_resize(p, 100, big);
    cr_assert_not_null(q);
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(q[i], 0xab, "byte %zu", i);
    for (size_t i = 100; i < 8192; i++)
        cr_assert_eq(q[i], 0, "byte %zu", i);
    cr_assert_eq(q[big - 1], 0);
    q[big - 1] = 1; /* the whole length is writable */
    /* Shrunk, it keeps its first bytes. */
    unsigned char *r = mp__bulk_resize(q, big, 50);
    cr_assert_not_null(r);
    for (size_t i = 0; i < 50; i++)
        cr_assert_eq(r[i], 0xab);
    mp__bulk_free(r, 50);
    mp__bulk_free(NULL, 10); /* a no-op */
}

Test(os_bulk, a_length_that_cannot_be_mapped_fails_and_leaves_the_array_alone)
{
    unsigned char *p = mp__bulk_resize(NULL, 0, 4096);
    cr_assert_not_null(p);
    p[0] = 7;
    cr_assert_null(mp__bulk_resize(p, 4096, SIZE_MAX));
    cr_assert_null(mp__bulk_resize(p, 4096, SIZE_MAX - 4096));
    cr_assert_eq(p[0], 7); /* still mapped, unchanged */
    cr_assert_null(mp__bulk_resize(NULL, 0, SIZE_MAX));
    mp__bulk_free(p, 4096);
    cr_assert_null(mp__bulk_resize(NULL, 0, 0)); /* empty */
}

Test(os_bulk, a_large_array_is_marked_for_huge_pages_and_a_small_one_is_not)
{
    size_t big = MP__BULK_HUGE, small = MP__BULK_HUGE - 4096;
    void *s = mp__bulk_resize(NULL, 0, small);
    cr_assert_not_null(s);
    cr_assert_not(marked_huge(s));
    void *b = mp__bulk_resize(s, small, big); /* grown past the mark: marked */
    cr_assert_not_null(b);
    cr_assert(marked_huge(b));
    mp__bulk_free(b, big);
}

Test(os_bulk, mp_disable_hugepage_leaves_the_mark_off)
{
    setenv("MP_DISABLE_HUGEPAGE", "1", 1); /* read at the first large array */
    void *b = mp__bulk_resize(NULL, 0, MP__BULK_HUGE);
    cr_assert_not_null(b);
    cr_assert_not(marked_huge(b));
    mp__bulk_free(b, MP__BULK_HUGE);
}

Test(os_bulk, a_scratch_buffer_is_zeroed_at_every_call_and_kept_while_it_fits)
{
    mp__scratch s = {0};
    unsigned char *p = mp__scratch_array(&s, 100, 4);
    cr_assert_not_null(p);
    for (size_t i = 0; i < 400; i++)
        cr_assert_eq(p[i], 0);
    memset(p, 0xff, 400);
    unsigned char *q = mp__scratch_array(&s, 50, 8); /* fits: the same buffer, zeroed */
    cr_assert_eq(q, p);
    for (size_t i = 0; i < 400; i++)
        cr_assert_eq(q[i], 0, "byte %zu", i);
    memset(q, 0xff, 400);
    unsigned char *r = mp__scratch_array(&s, 10000, 8); /* grown */
    cr_assert_not_null(r);
    cr_assert_geq(s.cap, (size_t)80000);
    for (size_t i = 0; i < 80000; i++)
        cr_assert_eq(r[i], 0, "byte %zu", i);
    cr_assert_not_null(mp__scratch_array(&s, 0, 8)); /* empty: still a pointer */
    mp__scratch_free(&s);
    cr_assert_null(s.p);
    cr_assert_eq(s.cap, 0);
}

Test(os_bulk, a_scratch_request_that_overflows_fails_and_keeps_the_buffer)
{
    mp__scratch s = {0};
    void *p = mp__scratch_array(&s, 16, 16);
    cr_assert_not_null(p);
    size_t cap = s.cap;
    cr_assert_null(mp__scratch_array(&s, SIZE_MAX / 2, 4));
    cr_assert_eq(s.p, p);
    cr_assert_eq(s.cap, cap);
    mp__scratch_free(&s);
}

Test(os_bulk, a_scratch_get_keeps_the_buffer_without_zeroing_and_grows_when_asked)
{
    mp__scratch s = {0};
    unsigned char *p = mp__scratch_get(&s, 64, 4);
    cr_assert_not_null(p);
    memset(p, 0x5a, 256);
    unsigned char *q = mp__scratch_get(&s, 32, 8); /* fits: the same buffer, as it was */
    cr_assert_eq(q, p);
    cr_assert_eq(q[255], 0x5a);
    unsigned char *r = mp__scratch_get(&s, 4096, 8);
    cr_assert_not_null(r);
    cr_assert_geq(s.cap, (size_t)32768);
    r[32767] = 1; /* the whole length is writable */
    cr_assert_null(mp__scratch_get(&s, SIZE_MAX / 4, 8));
    cr_assert_eq(s.p, r);
    mp__scratch_free(&s);
}
