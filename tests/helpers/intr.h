/* What the tests of interrupted waits share (multiproc/interrupt.h): a
 * SIGUSR1 handler that counts its runs and may trigger a cancel, and a
 * thread that, after a delay, signals the test's thread (once, or every
 * few microseconds until stopped) or triggers a cancel. */
#ifndef MP_TEST_INTR_H
#define MP_TEST_INTR_H

#include <pthread.h>
#include <stdatomic.h>

#include "multiproc.h"

/* Runs of the handler since mp_test_intr_setup. */
extern _Atomic int mp_test_intr_handled;
/* When set, the handler triggers it (a cancel from a signal handler). */
extern mp_cancel *mp_test_intr_from_handler;

/* Installs the handler for SIGUSR1 with sa_flags (0: no SA_RESTART). */
void mp_test_intr_handler(int sa_flags);
/* mp_test_intr_handler, and resets the two above. */
void mp_test_intr_setup(int sa_flags);
/* Both settings of the calling thread off, SIGUSR1 back to its default. */
void mp_test_intr_teardown(void);

typedef struct mp_test_pester {
    pthread_t target, th;
    int delay_ms;      /* before the first action */
    int every_us;      /* > 0: SIGUSR1 this often until stopped */
    mp_cancel *cancel; /* non-NULL: trigger it once, instead of signals */
    _Atomic int stop;
} mp_test_pester;

/* Starts the thread, aimed at the calling thread (asserted). */
void mp_test_pester_start(mp_test_pester *p, int delay_ms, int every_us, mp_cancel *c);
/* Stops it and waits for it. */
void mp_test_pester_stop(mp_test_pester *p);

/* A storm: SIGUSR1 at the calling thread every millisecond from start
 * until stop, which answers how many times the handler ran meanwhile. */
void mp_test_storm_start(mp_test_pester *p);
int mp_test_storm_stop(mp_test_pester *p);

#endif /* MP_TEST_INTR_H */
