/* multiproc — Python's multiprocessing and subprocess, in C, for Linux.
 *
 * The umbrella header: include this, or the module headers under
 * multiproc/ one by one. Conventions, shared by every module:
 *   - functions return 0 (or a count) on success, a negative MP_E* code on
 *     failure (multiproc/error.h), and a call that fails changes nothing;
 *   - objects are opaque, made by mp_X_create(&obj, &opts) where a NULL opts
 *     or a zero field means the default, and freed by mp_X_destroy (NULL is
 *     a no-op);
 *   - blocking calls take a timeout in seconds (MP_FOREVER waits forever,
 *     0 never blocks).
 */
#ifndef MULTIPROC_H
#define MULTIPROC_H

#include "multiproc/version.h"
#include "multiproc/error.h"
#include "multiproc/interrupt.h"
#include "multiproc/process.h"
#include "multiproc/conn.h"
#include "multiproc/queue.h"
#include "multiproc/wait.h"
#include "multiproc/heap.h"
#include "multiproc/shm.h"
#include "multiproc/sync.h"
#include "multiproc/value.h"
#include "multiproc/pool.h"
#include "multiproc/worker.h"
#include "multiproc/item.h"
#include "multiproc/dict.h"
#include "multiproc/list.h"
#include "multiproc/namespace.h"
#include "multiproc/manager.h"
#include "multiproc/popen.h"

#endif /* MULTIPROC_H */
