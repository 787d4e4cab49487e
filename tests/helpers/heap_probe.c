/* A freshly exec'd program that tries to create the shared heap at the
 * family address, for the collision-rate test. Exit status: 0 created,
 * 3 the address was taken (MP_ENOHEAPADDR), 4 another error. */
#include <stdio.h>

#include "multiproc.h"

int main(void)
{
    int rc = mp_init(NULL);
    if (rc == 0)
        return 0;
    if (rc == MP_ENOHEAPADDR)
        return 3;
    fprintf(stderr, "heap_probe: %s\n", mp_strerror(rc));
    return 4;
}
