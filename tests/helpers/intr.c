/* The interrupt tests' handler and signalling thread (intr.h). */
#include "intr.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

_Atomic int mp_test_intr_handled;
mp_cancel *mp_test_intr_from_handler;

static void on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&mp_test_intr_handled, 1);
    if (mp_test_intr_from_handler)
        mp_cancel_trigger(mp_test_intr_from_handler);
}

void mp_test_intr_handler(int sa_flags)
{
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = sa_flags};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
}

void mp_test_intr_setup(int sa_flags)
{
    mp_test_intr_handler(sa_flags);
    atomic_store(&mp_test_intr_handled, 0);
    mp_test_intr_from_handler = NULL;
}

void mp_test_intr_teardown(void)
{
    mp_set_interruptible(false);
    mp_cancel_set_current(NULL);
    signal(SIGUSR1, SIG_DFL);
}

static void *pester_main(void *arg)
{
    mp_test_pester *p = arg;
    usleep((useconds_t)p->delay_ms * 1000);
    if (p->cancel) {
        mp_cancel_trigger(p->cancel);
        return NULL;
    }
    do {
        pthread_kill(p->target, SIGUSR1);
        if (p->every_us > 0)
            usleep((useconds_t)p->every_us);
    } while (p->every_us > 0 && !atomic_load(&p->stop));
    return NULL;
}

void mp_test_pester_start(mp_test_pester *p, int delay_ms, int every_us, mp_cancel *c)
{
    *p = (mp_test_pester){
        .target = pthread_self(), .delay_ms = delay_ms, .every_us = every_us, .cancel = c};
    cr_assert_eq(pthread_create(&p->th, NULL, pester_main, p), 0);
}

void mp_test_pester_stop(mp_test_pester *p)
{
    atomic_store(&p->stop, 1);
    pthread_join(p->th, NULL);
}

void mp_test_storm_start(mp_test_pester *p)
{
    atomic_store(&mp_test_intr_handled, 0);
    mp_test_pester_start(p, 0, 1000, NULL);
}

int mp_test_storm_stop(mp_test_pester *p)
{
    mp_test_pester_stop(p);
    return atomic_load(&mp_test_intr_handled);
}
