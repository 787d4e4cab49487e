/* The start message of a process started by spawn or forkserver: what a
 * fresh image needs to run a target as the parent asked. Not installed.
 *
 * The parent fills it (process/boot.c), sends it with the argument bytes over a
 * socket, and the child (a spawned image, or a child of the fork server)
 * checks it and runs the target (process/spawn_child.c,
 * process/forkserver_server.c).
 * Both sides are the same build of the same program, which the main
 * program's build-id in the message confirms, so the struct is sent as it
 * is. */
#ifndef MULTIPROC_BOOT_H
#define MULTIPROC_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "process/process_internal.h"
#include "os/symbol.h"

#define MP__BOOT_MAGIC 0x746f6f62706dULL /* "mpboot" */
/* The environment variable that makes a spawned image a child:
 * "<fd>:<token>", the number of its end of the start socket and the start's
 * random token in hex. The environment is untrusted: a child is a child only
 * once the socket proves to be its parent's and to carry that token (see
 * process/spawn.c); anything else is ignored and main runs. */
#define MP__SPAWN_ENV       "MP_SPAWN_FD"
#define MP__BOOT_TOKEN_LEN  16
#define MP__SPAWN_VALUE_MAX (11 + 1 + 2 * MP__BOOT_TOKEN_LEN + 1)

typedef enum mp__boot_mode {
    MP__BOOT_CHILD = 1,  /* run the target, exit with its code */
    MP__BOOT_SERVER = 2, /* become the fork server */
} mp__boot_mode;

/* How a pointer (args with args_len == 0, or user) travels. */
typedef enum mp__boot_ptr {
    MP__PTR_NULL = 0,
    MP__PTR_HEAP = 1,  /* into the shared heap: the same address everywhere */
    MP__PTR_IMAGE = 2, /* into a module's code or static data: as a symref */
} mp__boot_ptr;

typedef struct mp__boot {
    uint64_t magic;
    /* A spawned image's proof that the message is the one meant for it: the
     * token of its MP_SPAWN_FD. The parent sends magic and token before it
     * spawns the image. Zero on a fork server's channels. */
    uint8_t token[MP__BOOT_TOKEN_LEN];
    uint64_t size; /* sizeof(mp__boot): a second guard on the layout */
    uint32_t mode;
    int32_t ppid;
    uint32_t main_id_len;
    uint8_t main_id[MP__BUILD_ID_MAX];
    int32_t heap_fd; /* in the child; -1 without a heap */
    uint64_t heap_addr, heap_size;
    uint32_t method; /* the mp_start_method that started the child */
    uint32_t n_pass_fds;
    int32_t pass_fds[MP_PASS_FDS_MAX]; /* the numbers they must have in the child */
    uint8_t daemon;
    uint8_t is_run; /* fn is a mp_run_fn, else a mp_target_fn */
    mp__symref fn;
    uint64_t args_len; /* > 0: that many bytes follow the message */
    uint32_t args_kind, user_kind;
    uint64_t args_ptr, user_ptr;   /* MP__PTR_HEAP */
    mp__symref args_ref, user_ref; /* MP__PTR_IMAGE */
    char name[MP__NAME_MAX];
    char ident[MP__IDENT_MAX];
    char parent_name[MP__NAME_MAX];
} mp__boot;

/* The bytes a spawned image checks before it trusts the socket. */
#define MP__BOOT_AUTH_LEN (offsetof(mp__boot, token) + MP__BOOT_TOKEN_LEN)

/* Parent side: describe p (whose method is spawn or forkserver) for a
 * child. Returns 0, or MP_EINVAL when a pointer it carries (args with
 * args_len == 0, user) is neither in the shared heap nor in a module's
 * image, or the target is not in a module. */
int mp__boot_fill(mp__boot *b, const mp_process *p, mp__boot_mode mode);

/* Child side: check a received message. Returns 0 or MP_EBADMSG. */
int mp__boot_check(const mp__boot *b);

/* Child side: build this process's mp_process from a checked message and
 * its argument bytes (owned by the process afterwards; may be NULL).
 * Returns 0 with *out, or MP_ENOTLOADED / MP_EOTHERBUILD (a module missing
 * or of another build), MP_EBADMSG, MP_ENOMEM. */
int mp__boot_process(const mp__boot *b, void *args, mp_process **out);

/* Send and receive all of len bytes on a socket (EINTR retried, no
 * SIGPIPE). Return 0, MP_EEOF (peer closed before the first byte),
 * MP_ETRUNCATED (in the middle), or -errno. */
int mp__boot_send(int fd, const void *buf, size_t len);
int mp__boot_recv(int fd, void *buf, size_t len);
/* The same, with n fds riding on the first byte (SCM_RIGHTS); the receiver
 * gets them close-on-exec in fds (room for MP_PASS_FDS_MAX) and their count
 * in *n, and owns them even when it fails. */
int mp__boot_send_fds(int fd, const void *buf, size_t len, const int *fds, size_t n);
int mp__boot_recv_fds(int fd, void *buf, size_t len, int *fds, size_t *n);
/* The same four, bounded by a deadline (NULL: none): MP_ETIMEDOUT when it
 * passes before the first byte, MP_ETRUNCATED when it passes in the middle
 * of the message (the stream is then out of step). */
int mp__boot_send_by(int fd, const void *buf, size_t len, const mp__deadline *d);
int mp__boot_recv_by(int fd, void *buf, size_t len, const mp__deadline *d);
int mp__boot_send_fds_by(int fd, const void *buf, size_t len, const int *fds, size_t n,
                         const mp__deadline *d);
int mp__boot_recv_fds_by(int fd, void *buf, size_t len, int *fds, size_t *n, const mp__deadline *d);

/* Spawn a fresh image of the program and send it b (whose heap fields are
 * filled here) and args, by the deadline d. Returns 0 with the child's pid
 * and the parent's end of the start socket, on which mp__spawn_report reads
 * the child's answer; on failure (MP_ETIMEDOUT: the child did not take the
 * message in time) the child is killed and reaped. */
int mp__spawn_image(mp__boot *b, const void *args, const mp__deadline *d, pid_t *pid, int *sock);
/* 0 when the child runs its target (or serves), else why not: MP_EBOOT when
 * it died first, MP_ETIMEDOUT when it did not report by the deadline (it
 * is still there: the caller kills it), or the code it reported
 * (MP_ENOHEAPADDR, MP_ENOTLOADED, ...). */
int mp__spawn_report(int sock, const mp__deadline *d);
/* Kills and reaps the child of a failed spawn (it never ran its target). */
void mp__spawn_reap_failed(pid_t pid);
/* The value of MP_SPAWN_FD for a start socket fd and a token, into out
 * (MP__SPAWN_VALUE_MAX bytes); and its strict parse: 0 with *fd and token,
 * or MP_EINVAL for anything but "<decimal fd>:<lower-case hex token>". */
void mp__spawn_value_format(char *out, int fd, const uint8_t token[MP__BOOT_TOKEN_LEN]);
int mp__spawn_value_parse(const char *v, int *fd, uint8_t token[MP__BOOT_TOKEN_LEN]);

/* process/spawn_child.c: defined beside the constructor that makes a
 * spawned image a child, and referenced by process/spawn.c only so that a
 * static link that can spawn takes that file too. */
extern const char mp__spawn_child_linked;

/* process/forkserver_server.c: the fork server's loop, in a spawned image
 * (process/spawn_child.c); never returns. */
_Noreturn void mp__forkserver_main(int sock, const mp__boot *b);

#endif /* MULTIPROC_BOOT_H */
