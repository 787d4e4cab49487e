/* A minimal harness for the standalone stress programs (tests/<module>/stress_*.c),
 * which run under ThreadSanitizer where Criterion cannot. A failed check
 * prints where and why and exits 1; a hang is caught by the CTest timeout
 * and by the alarm each program arms. */
#ifndef MP_STRESS_H
#define MP_STRESS_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "multiproc.h"

#define STRESS_CHECK(cond, ...)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define STRESS_OK(expr)                                                                            \
    do {                                                                                           \
        int stress_rc_ = (expr);                                                                   \
        STRESS_CHECK(stress_rc_ == 0, "%s returned %s", #expr, mp_err_name(stress_rc_));           \
    } while (0)

/* Kill the whole program (SIGALRM's default action) if it runs too long. */
#define STRESS_DEADLINE(seconds) alarm(seconds)

#endif /* MP_STRESS_H */
