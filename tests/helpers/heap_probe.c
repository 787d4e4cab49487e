/* A freshly exec'd program for the heap tests.
 *
 *     heap_probe                  create the heap at the family address;
 *                                 exit 0 created, 3 the address was taken
 *                                 (MP_ENOHEAPADDR), 4 another error
 *     heap_probe FD ADDR SIZE P   adopt the parent's heap (the memfd FD,
 *                                 inherited), then answer at P: P[1] =
 *                                 P[0] + 1 and P[2] = a block allocated
 *                                 here holding 77; exit 0, or 5 + step
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "heap/heap.h"
#include "multiproc.h"

static int adopt_and_answer(char **argv)
{
    int fd = atoi(argv[1]);
    void *addr = (void *)(uintptr_t)strtoull(argv[2], NULL, 0);
    size_t size = (size_t)strtoull(argv[3], NULL, 0);
    uint64_t *p = (uint64_t *)(uintptr_t)strtoull(argv[4], NULL, 0);
    int rc = mp__heap_adopt(fd, addr, size);
    if (rc < 0) {
        fprintf(stderr, "heap_probe: adopt: %s\n", mp_strerror(rc));
        return 5;
    }
    if (!mp_heap_contains(p, 3 * sizeof *p))
        return 6;
    p[1] = p[0] + 1;
    uint64_t *mine = mp_alloc(sizeof *mine);
    if (!mine)
        return 7;
    *mine = 77;
    p[2] = (uint64_t)(uintptr_t)mine;
    return mp_heap_check() == 0 ? 0 : 8;
}

int main(int argc, char **argv)
{
    if (argc == 5)
        return adopt_and_answer(argv);
    int rc = mp_init(NULL);
    if (rc == 0)
        return 0;
    if (rc == MP_ENOHEAPADDR)
        return 3;
    fprintf(stderr, "heap_probe: %s\n", mp_strerror(rc));
    return 4;
}
