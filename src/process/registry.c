/* This process's running children (a plain list: link, unlink, snapshot),
 * identities, its own process object and its parent's. Calls nothing of
 * the process module above it.
 *
 * Lock order: the registry lock may be taken while holding nothing, or
 * before a process's own lock; never the other way round. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os/pidfd.h"
#include "process/process_internal.h"

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static mp_process *reg_head;
static unsigned long reg_counter; /* identities given to our children */
static mp_process *current_proc;  /* NULL in the main process */
static mp_process *parent_proc;   /* built lazily in a child */
static pid_t parent_pid;
static char parent_proc_name[MP__NAME_MAX];
static mp_process main_proc = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .kind = MP__KIND_SELF,
    .state = MP__RUNNING,
    .sentinel = -1,
    .name = "MainProcess",
};

/* A fork that the library did not make (the program's own fork()) must not
 * leave the child with its parent's children in the list, nor with a lock
 * held by a thread that does not exist in the child. */
static void atfork_child(void)
{
    pthread_mutex_init(&reg_mu, NULL);
    reg_head = NULL;
    reg_counter = 0;
}

static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_init(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

void mp__registry_init(void)
{
    pthread_once(&reg_once, reg_init);
}

void mp__registry_link(mp_process *p)
{
    pthread_once(&reg_once, reg_init);
    pthread_mutex_lock(&reg_mu);
    p->prev = NULL;
    p->next = reg_head;
    if (reg_head)
        reg_head->prev = p;
    reg_head = p;
    p->linked = true;
    pthread_mutex_unlock(&reg_mu);
}

static void unlink_locked(mp_process *p)
{
    if (!p->linked)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        reg_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
    p->linked = false;
}

void mp__registry_unlink(mp_process *p)
{
    pthread_mutex_lock(&reg_mu);
    unlink_locked(p);
    pthread_mutex_unlock(&reg_mu);
}

void mp__next_identity(char *ident, size_t cap)
{
    pthread_mutex_lock(&reg_mu);
    unsigned long n = ++reg_counter;
    pthread_mutex_unlock(&reg_mu);
    if (current_proc)
        snprintf(ident, cap, "%s:%lu", current_proc->ident, n);
    else
        snprintf(ident, cap, "%lu", n);
}

void mp__registry_child_init(mp_process *p, pid_t ppid, const char *parent_name)
{
    /* The parent's own object is still in this copy of its memory: take its
     * name before this process becomes the current one. No snprintf here:
     * its deep stack frame would copy-on-write several stack pages in every
     * child, a measurable part of a process start. */
    const mp_process *parent_self = current_proc ? current_proc : &main_proc;
    mp__strlcpy(parent_proc_name, parent_name ? parent_name : parent_self->name,
                sizeof(parent_proc_name));
    atfork_child();
    /* The child's copy of its own object: not a child of itself. */
    p->linked = false;
    p->next = p->prev = NULL;
    p->owner = ppid;
    p->state = MP__RUNNING;
    pthread_mutex_init(&p->mu, NULL);
    current_proc = p;
    parent_proc = NULL; /* a grandparent object copied from the parent is stale */
    parent_pid = ppid;
}

bool mp__is_current(const mp_process *p)
{
    return p == current_proc || p == &main_proc || (p && p == parent_proc);
}

mp_process *mp_current_process(void)
{
    /* No pid is stored in the MainProcess object: mp_process_pid() asks
     * getpid() for it, which stays right after a fork. */
    return current_proc ? current_proc : &main_proc;
}

mp_process *mp_parent_process(void)
{
    if (!current_proc)
        return NULL;
    pthread_mutex_lock(&reg_mu);
    if (!parent_proc) {
        mp_process *pp = calloc(1, sizeof(*pp));
        if (pp) {
            pthread_mutex_init(&pp->mu, NULL);
            pp->kind = MP__KIND_PARENT;
            pp->state = MP__RUNNING;
            pp->pid = parent_pid;
            pp->sentinel = mp__pidfd_open(parent_pid);
            pp->sentinel_is_pidfd = pp->sentinel >= 0;
            snprintf(pp->name, sizeof(pp->name), "%s", parent_proc_name);
            parent_proc = pp;
        }
    }
    mp_process *r = parent_proc;
    pthread_mutex_unlock(&reg_mu);
    return r;
}

int mp__registry_snapshot(mp_process ***out)
{
    pthread_mutex_lock(&reg_mu);
    int n = 0;
    for (mp_process *p = reg_head; p; p = p->next)
        n++;
    mp_process **v = n ? malloc((size_t)n * sizeof(*v)) : NULL;
    if (n && !v) {
        pthread_mutex_unlock(&reg_mu);
        return MP_ENOMEM;
    }
    int i = 0;
    for (mp_process *p = reg_head; p; p = p->next)
        v[i++] = p;
    pthread_mutex_unlock(&reg_mu);
    *out = v;
    return n;
}
