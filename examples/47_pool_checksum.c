/* 47_pool_checksum — a parallel checksum of every file under a directory,
 * with the files streamed to the pool as a walk finds them:
 *
 *     def files(top):                           # the Python idea
 *         for root, dirs, names in os.walk(top):
 *             for n in names:
 *                 yield os.path.join(root, n)
 *     with Pool() as pool:
 *         for line in pool.imap(checksum, files(top)):
 *             print(line)
 *
 * The walk is the source of a streaming map (mp_pool_imap_stream): it
 * gives one path at a time, of its own length, when the pool's window has
 * room, so a tree of a million files is never listed in memory. Each
 * worker reads its file and returns a line of its own length (the FNV-1a
 * hash, the size, the path), which mp_imap_next_sized gives back in the
 * order of the walk. A file that cannot be read fails alone, with the
 * reason in its message.
 *
 *     ./47_pool_checksum DIR     checksums the files under DIR
 *     ./47_pool_checksum         makes a small tree in /tmp and checksums it
 *
 * The order of a directory's entries is the file system's, so the
 * expected output lists the files unordered.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <multiproc.h>

/* ---- the walk: a generator over the regular files of a tree ----------- */

#define DEPTH_MAX 64

typedef struct walk {
    DIR *dirs[DEPTH_MAX];
    char path[PATH_MAX]; /* the directory at the top of the stack */
    size_t len[DEPTH_MAX];
    int depth;
} walk;

static int walk_open(walk *w, const char *top)
{
    w->depth = 0;
    snprintf(w->path, sizeof w->path, "%s", top);
    w->dirs[0] = opendir(top);
    w->len[0] = strlen(w->path);
    return w->dirs[0] ? 0 : -1;
}

/* The source: the next regular file's path, or 0 at the end. */
static int next_file(void *item, size_t cap, size_t *len, void *user)
{
    walk *w = user;
    while (w->depth >= 0) {
        struct dirent *e = readdir(w->dirs[w->depth]);
        if (!e) { /* this directory is done: back to its parent */
            closedir(w->dirs[w->depth--]);
            if (w->depth >= 0)
                w->path[w->len[w->depth]] = '\0';
            continue;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t base = w->len[w->depth];
        int n = snprintf(w->path + base, sizeof w->path - base, "/%s", e->d_name);
        if (n < 0 || (size_t)n >= sizeof w->path - base || base + (size_t)n + 1 > cap)
            continue; /* a path too long to carry: skipped */
        struct stat st;
        if (lstat(w->path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && w->depth + 1 < DEPTH_MAX) {
            DIR *d = opendir(w->path);
            if (d) {
                w->dirs[++w->depth] = d;
                w->len[w->depth] = base + (size_t)n;
                continue;
            }
        }
        if (!S_ISREG(st.st_mode)) {
            w->path[base] = '\0';
            continue;
        }
        *len = base + (size_t)n + 1; /* the path and its NUL */
        memcpy(item, w->path, *len);
        w->path[base] = '\0';
        return 1;
    }
    return 0;
}

/* ---- the task: runs in a worker --------------------------------------- */

/* in: a path; out: "<hash>  <size>  <path>". */
static int checksum(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                    void *ctx)
{
    (void)in_len, (void)ctx;
    const char *path = in;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mp_task_fail(errno, "%s: %s", path, strerror(errno));
    uint64_t h = 14695981039346656037ULL, size = 0;
    unsigned char buf[65536];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            h = (h ^ buf[i]) * 1099511628211ULL;
        size += (uint64_t)r;
    }
    int err = errno;
    close(fd);
    if (r < 0)
        return mp_task_fail(err, "%s: %s", path, strerror(err));
    int n = snprintf(out, out_cap, "%016llx  %8llu  %s", (unsigned long long)h,
                     (unsigned long long)size, path);
    *out_len = (size_t)n < out_cap ? (size_t)n : out_cap;
    return 0;
}

/* ---- a small tree for the tour ---------------------------------------- */

static void put(const char *dir, const char *name, const char *text, size_t repeat)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    for (size_t i = 0; f && i < repeat; i++)
        fputs(text, f);
    if (f)
        fclose(f);
}

static void make_tree(char *top)
{
    char sub[PATH_MAX], deeper[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/src", top);
    snprintf(deeper, sizeof deeper, "%s/src/lib", top);
    mkdir(sub, 0700);
    mkdir(deeper, 0700);
    put(top, "README", "checksums, in parallel\n", 1);
    put(top, "empty", "", 0);
    put(sub, "main.c", "int main(void) { return 0; }\n", 1);
    put(deeper, "big.dat", "0123456789abcdef", 1 << 16); /* 1 MiB */
    put(deeper, "notes.txt", "streamed, not listed\n", 3);
}

static void remove_tree(const char *top)
{
    const char *names[] = {"src/lib/big.dat", "src/lib/notes.txt", "src/main.c", "README",
                           "empty",           "src/lib",           "src",        ""};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", top, names[i]);
        remove(path);
    }
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/mp-checksum-XXXXXX";
    const char *top = argc > 1 ? argv[1] : NULL;
    if (!top) {
        if (!mkdtemp(tmp))
            return perror("mkdtemp"), 1;
        make_tree(tmp);
        top = tmp;
    }
    walk w;
    if (walk_open(&w, top) != 0)
        return perror(top), 1;

    mp_pool *pool;
    int rc = mp_pool_create(&pool, &(mp_pool_opts){.processes = 4});
    if (rc != 0)
        return fprintf(stderr, "mp_pool_create: %s\n", mp_strerror(rc)), 1;
    mp_imap *it;
    rc = mp_pool_imap_stream(pool,
                             &(mp_stream_spec){.fn = checksum,
                                               .source = next_file,
                                               .source_user = &w,
                                               .item_max = PATH_MAX,
                                               .out_max = PATH_MAX + 64},
                             true, &it);
    if (rc != 0)
        return fprintf(stderr, "mp_pool_imap_stream: %s\n", mp_error_detail()), 1;

    char line[PATH_MAX + 64];
    size_t len, files = 0, failed = 0;
    mp_task_error err;
    while ((rc = mp_imap_next_sized(it, line, sizeof line, &len, NULL, &err, MP_FOREVER)) !=
           MP_EEOF) {
        if (rc == 0) { /* print the path relative to the top */
            size_t skip = strlen(top);
            printf("%.*s  %.*s\n", 26, line, (int)(len - 28 - skip - 1), line + 28 + skip + 1);
            files++;
        } else {
            fprintf(stderr, "failed: %s\n", err.message);
            failed++;
        }
    }
    printf("%zu files checksummed, %zu failed\n", files, failed);
    mp_imap_destroy(it);
    mp_pool_close(pool);
    mp_pool_join(pool, MP_FOREVER);
    mp_pool_destroy(pool);
    if (top == tmp)
        remove_tree(tmp);
    return failed ? 1 : 0;
}
