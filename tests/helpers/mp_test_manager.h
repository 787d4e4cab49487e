/* Helpers of the manager's tests: one index per named type, with a
 * generic accessor call, a check that an object works, and its destroy. */
#ifndef MP_TEST_MANAGER_H
#define MP_TEST_MANAGER_H

#include "multiproc.h"

enum {
    MPT_DICT,
    MPT_LIST,
    MPT_NS,
    MPT_QUEUE,
    MPT_LOCK,
    MPT_RLOCK,
    MPT_SEM,
    MPT_COND,
    MPT_EVENT,
    MPT_BARRIER,
    MPT_VALUE,
    MPT_ARRAY,
    MPT_N
};

extern const char *const mp_test_type_name[MPT_N];

/* The accessor of type t (fixed parameters: a sem of value 1, a barrier
 * of 2 parties, a value of 'q', an array of 8 'i'). */
int mp_test_open_as(mp_manager *m, int t, const char *name, void **out);

/* 0 when the object works as one of its type, else a failed step's number. */
int mp_test_exercise(int t, void *obj);

/* mp_<type>_destroy (a no-op on named objects). */
void mp_test_destroy_as(int t, void *obj);

/* The attribute calls of an empty namespace, asserted: a set of each kind,
 * the repr (sorted, like CPython), each read back, the type, and reads of
 * the wrong type (MP_EPROTO). Leaves b, f, x and y set. */
void mp_test_namespace_attributes(mp_namespace *ns);

#endif /* MP_TEST_MANAGER_H */
