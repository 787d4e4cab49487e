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

/* Copies name into path as "/name"; MP_EINVAL, with a detail for fn, when
 * it is not a valid name. */
static int shm_path(const char *fn, char *path, const char *name)
{
    if (!name)
        return mp__fail(MP_EINVAL, "%s: name is NULL", fn);
    const char *given = name;
    if (name[0] == '/')
        name++;
    size_t len = strlen(name);
    if (len == 0 || len > MP__SHM_NAME_MAX)
        return mp__fail(MP_EINVAL,
                        "%s: name \"%.40s\" is %zu characters (1 to %d, after a leading '/')", fn,
                        given, len, MP__SHM_NAME_MAX);
    if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return mp__fail(MP_EINVAL,
                        "%s: name \"%s\" has a '/' after its first character, or is . or ..", fn,
                        given);
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
    if (!out)
        return mp__fail(MP_EINVAL, "mp_shm_create: out is NULL");
    if (size == 0 || size > (size_t)INT64_MAX)
        return mp__fail(MP_EINVAL, "mp_shm_create: size is %zu (1 to INT64_MAX)", size);
    if (name && shm_path("mp_shm_create", path, name) < 0)
        return MP_EINVAL;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 16; attempt++) {
        if (!name)
            shm_gen_name(path);
        fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && name && errno == EEXIST)
            return mp__fail(MP_EEXIST, "mp_shm_create: name \"%s\" exists already", path + 1);
        if (fd < 0 && (name || errno != EEXIST))
            return mp__errno();
    }
    if (fd < 0)
        return mp__fail(MP_EEXIST, "mp_shm_create: 16 generated names in a row exist already");
    int rc = 0;
    if (ftruncate(fd, (off_t)size) < 0) {
        rc = errno == EFBIG
                 ? mp__fail(MP_EINVAL, "mp_shm_create: size %zu is above the file size limit", size)
                 : mp__errno();
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
    if (!out)
        return mp__fail(MP_EINVAL, "mp_shm_attach: out is NULL");
    if (shm_path("mp_shm_attach", path, name) < 0)
        return MP_EINVAL;
    int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0 && errno == ENOENT)
        return mp__fail(MP_ENOENT, "mp_shm_attach: no shared memory is named \"%s\"", path + 1);
    if (fd < 0)
        return mp__errno();
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? mp__errno() : 0;
    if (rc == 0 && st.st_size <= 0)
        rc =
            mp__fail(MP_EINVAL, "mp_shm_attach: \"%s\" is empty (its creator has not sized it yet)",
                     path + 1);
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
        return mp__fail(MP_EINVAL, "mp_shm_unlink: s is NULL");
    if (shm_unlink(s->path) < 0)
        return errno == ENOENT
                   ? mp__fail(MP_ENOENT, "mp_shm_unlink: \"%s\" is already unlinked", s->path + 1)
                   : mp__errno();
    s->unlinked = true;
    return 0;
}

int mp_shm_disown(mp_shm *s)
{
    if (!s)
        return mp__fail(MP_EINVAL, "mp_shm_disown: s is NULL");
    if (s->owner != getpid())
        return mp__fail(MP_EPERM, "mp_shm_disown: this process is not the owner of \"%s\" (%s)",
                        s->path + 1, s->owner ? "made by another process" : "attached or disowned");
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
