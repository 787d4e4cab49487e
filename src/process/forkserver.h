/* The fork server's protocol, shared by the parent's side
 * (process/forkserver.c) and the server (process/forkserver_server.c). Not
 * installed.
 *
 * The server keeps FS_SPARES spare children, forked ahead of any request,
 * and announces each one to the parent with its pid, its pidfd and the
 * parent's end of a socket of its own. A start checks its request against
 * the server's modules and heap (sent once, when the server is ready),
 * writes it on a spare's socket and returns: no answer is awaited, and no
 * fork is on the way. The spare reads the request and becomes the new
 * process. A spare that died first (killed from outside) is seen when the
 * write fails, and the next one is used.
 *
 *   server -> parent: int32 0, fs_hello, mp__symmod[n_mods]   (ready, once)
 *                     {FS_SPARE, pid, number} + pidfd, socket (a new spare)
 *                     {FS_NOSPARE, 0, error}   (a fork failed; the server
 *                                               forks again on FS_NEED)
 *                     {FS_EXITED, pid, code}   (a child ended; only without
 *                                               exit_by_pidfd)
 *   parent -> server: {FS_NEED, 0, used}       (the parent has no spare left
 *                                               and has used spares 1..used)
 *   parent -> spare:  mp__boot + argument bytes, on the spare's socket
 *
 * Spares are numbered from 1 in the order they are announced, and the
 * parent uses them in that order. The server replaces a spare when it
 * exits, and, on FS_NEED, every spare the parent has used: it never holds
 * more than FS_SPARES that the parent may not have used yet. */
#ifndef MULTIPROC_FORKSERVER_H
#define MULTIPROC_FORKSERVER_H

#include <stdint.h>

/* Two: a start never waits for the fork that replaces the spare it used,
 * as long as the children end about as fast as they start. */
#define FS_SPARES 2

enum { FS_SPARE = 1, FS_NOSPARE = 2, FS_EXITED = 3, FS_NEED = 4 };

typedef struct fs_msg {
    int32_t type, pid, value;
} fs_msg;

typedef struct fs_hello {
    int32_t exit_by_pidfd; /* exit codes are read from pidfds: no FS_EXITED */
    uint32_t n_mods;       /* mp__symmod records that follow */
    uint64_t heap_addr;    /* the shared heap the server mapped; size 0: none */
    uint64_t heap_size;
} fs_hello;

#endif /* MULTIPROC_FORKSERVER_H */
