/* Named shared memory (see include/multiproc/shm.h). */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/internal.h"

#define MP__SHM_NAME_MAX 200

struct mp_shm {
    void *buf;
    size_t size;
    pid_t owner; /* the creating process, 0 when not (or no longer) owner */
    bool unlinked;
    char path[MP__SHM_NAME_MAX + 2]; /* "/name" */
};

/* Copies name into path as "/name"; MP_EINVAL when it is not a valid name. */
static int shm_path(char *path, const char *name)
{
    if (!name)
        return MP_EINVAL;
    if (name[0] == '/')
        name++;
    size_t len = strlen(name);
    if (len == 0 || len > MP__SHM_NAME_MAX || strchr(name, '/') || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0)
        return MP_EINVAL;
    path[0] = '/';
    memcpy(path + 1, name, len + 1);
    return 0;
}

static void shm_gen_name(char *path)
{
    static _Atomic uint64_t counter;
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)getpid() << 40) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
            atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ULL;
    }
    snprintf(path, MP__SHM_NAME_MAX + 2, "/mp_%016llx", (unsigned long long)r);
}

/* Maps fd whole (size bytes) and builds the object; closes fd either way. */
static int shm_finish(mp_shm **out, int fd, size_t size, const char *path, bool owner)
{
    void *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int rc = buf == MAP_FAILED ? mp__errno() : 0;
    close(fd);
    if (rc < 0)
        return rc;
    mp_shm *s = calloc(1, sizeof(*s));
    if (!s) {
        munmap(buf, size);
        return MP_ENOMEM;
    }
    s->buf = buf;
    s->size = size;
    s->owner = owner ? getpid() : 0;
    memcpy(s->path, path, strlen(path) + 1);
    *out = s;
    return 0;
}

int mp_shm_create(mp_shm **out, const char *name, size_t size)
{
    char path[MP__SHM_NAME_MAX + 2];
    if (!out || size == 0 || size > (size_t)INT64_MAX)
        return MP_EINVAL;
    if (name && shm_path(path, name) < 0)
        return MP_EINVAL;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 16; attempt++) {
        if (!name)
            shm_gen_name(path);
        fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && (name || errno != EEXIST))
            return mp__errno();
    }
    if (fd < 0)
        return MP_EEXIST;
    int rc = 0;
    if (ftruncate(fd, (off_t)size) < 0) {
        rc = errno == EFBIG ? MP_EINVAL : mp__errno();
        close(fd);
    } else {
        rc = shm_finish(out, fd, size, path, true);
    }
    if (rc < 0)
        shm_unlink(path); /* ours, made a moment ago: nothing is left */
    return rc;
}

int mp_shm_attach(mp_shm **out, const char *name)
{
    char path[MP__SHM_NAME_MAX + 2];
    if (!out || shm_path(path, name) < 0)
        return MP_EINVAL;
    int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return mp__errno();
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? mp__errno() : st.st_size <= 0 ? MP_EINVAL : 0;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return shm_finish(out, fd, (size_t)st.st_size, path, false);
}

void *mp_shm_buf(const mp_shm *s)
{
    return s ? s->buf : NULL;
}

size_t mp_shm_size(const mp_shm *s)
{
    return s ? s->size : 0;
}

const char *mp_shm_name(const mp_shm *s)
{
    return s ? s->path + 1 : NULL;
}

int mp_shm_unlink(mp_shm *s)
{
    if (!s)
        return MP_EINVAL;
    if (shm_unlink(s->path) < 0)
        return mp__errno();
    s->unlinked = true;
    return 0;
}

int mp_shm_disown(mp_shm *s)
{
    if (!s)
        return MP_EINVAL;
    if (s->owner != getpid())
        return MP_EPERM;
    s->owner = 0;
    return 0;
}

void mp_shm_close(mp_shm *s)
{
    if (!s)
        return;
    munmap(s->buf, s->size);
    if (s->owner != 0 && s->owner == getpid() && !s->unlinked)
        shm_unlink(s->path);
    free(s);
}
