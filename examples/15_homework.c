/* 15_homework — seed 001, the homework (作业):
 *
 *     写两个进程,一个进程做读取一个文件,并计算文件所占的字节大小,
 *     把结果发给另一个进程。
 *
 * (Two processes: one reads a file and counts its bytes, and sends the count
 * to the other.) Usage: 15_homework [FILE]. Without FILE the program writes a
 * temporary file of known content first, so that its output never changes.
 *
 * The count travels over a one-way pipe, and each process closes the end it
 * does not use. That is what makes the pipe safe: if the reading process
 * died before sending, the printing process would get end of file
 * (MP_EEOF) instead of waiting forever, because no write end would be left
 * open anywhere.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <multiproc.h>

/* What both children need; each gets its own copy when it is forked. */
typedef struct homework {
    const char *path;
    mp_conn *rx; /* the receiving end of the pipe */
    mp_conn *tx; /* the sending end */
} homework;

static const char content[] = "写两个进程,一个进程做读取一个文件,并计算文件所占的字节大小,"
                              "把结果发给另一个进程。\n";

static void report(const char *call, int rc)
{
    fprintf(stderr, "%s failed: %s (%s)\n", call, mp_strerror(rc), mp_err_name(rc));
}

/* Read the whole file and count its bytes. Returns false on a read error. */
static bool count_bytes(const char *path, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return false;
    }
    char buf[4096];
    size_t got;
    *size = 0;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
        *size += got;
    bool ok = !ferror(f);
    if (!ok)
        perror(path);
    fclose(f);
    return ok;
}

/* The first process: read the file, send its size. */
static int reader(const void *arg, size_t len)
{
    (void)len;
    const homework *hw = arg;
    int rc = mp_conn_close(hw->rx); /* this process only sends */
    if (rc < 0) {
        report("mp_conn_close", rc);
        return 1;
    }
    uint64_t size;
    if (!count_bytes(hw->path, &size))
        return 1;
    printf("读取进程 (%d): 文件 %s 有 %llu 字节, 发给另一个进程\n", (int)getpid(), hw->path,
           (unsigned long long)size);
    rc = mp_conn_send(hw->tx, &size, sizeof(size), MP_FOREVER);
    if (rc < 0) {
        report("mp_conn_send", rc);
        return 1;
    }
    return 0;
}

/* The second process: receive the size into a variable (no allocation)
 * and print it. */
static int printer(const void *arg, size_t len)
{
    (void)len;
    const homework *hw = arg;
    int rc = mp_conn_close(hw->tx); /* this process only receives */
    if (rc < 0) {
        report("mp_conn_close", rc);
        return 1;
    }
    uint64_t size;
    size_t got;
    rc = mp_conn_recv_into(hw->rx, &size, sizeof(size), &got, MP_FOREVER);
    if (rc < 0) {
        report("mp_conn_recv_into", rc);
        return 1;
    }
    if (got != sizeof(size)) {
        fprintf(stderr, "unexpected message of %zu bytes\n", got);
        return 1;
    }
    printf("打印进程 (%d): 收到文件大小 %llu 字节\n", (int)getpid(), (unsigned long long)size);
    return 0;
}

/* Write the known content to a new temporary file; its name goes to path. */
static bool make_temp_file(char *path, size_t cap)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, cap, "%s/mp_homework_XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return false;
    }
    bool ok = write(fd, content, sizeof(content) - 1) == (ssize_t)(sizeof(content) - 1);
    if (!ok)
        perror("write");
    if (close(fd) < 0)
        ok = false;
    if (!ok)
        unlink(path);
    return ok;
}

/* Join p and insist on exit code 0. */
static bool join_ok(mp_process *p)
{
    int rc = mp_process_join(p, MP_FOREVER);
    if (rc < 0) {
        report("mp_process_join", rc);
        return false;
    }
    int code;
    rc = mp_process_exitcode(p, &code);
    if (rc < 0) {
        report("mp_process_exitcode", rc);
        return false;
    }
    if (code != 0)
        fprintf(stderr, "%s exited with code %d\n", mp_process_name(p), code);
    return code == 0;
}

int main(int argc, char **argv)
{
    char temp[4096] = "";
    homework hw = {.path = argc > 1 ? argv[1] : temp};
    mp_process *procs[2] = {NULL, NULL};
    int status = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    puts("=== seed: 作业: one process reads a file and sends its size over a Pipe to another ===");
    if (argc <= 1) {
        if (!make_temp_file(temp, sizeof(temp)))
            return 1;
        printf("写了一个 %zu 字节的临时文件\n", sizeof(content) - 1);
    }
    int rc = mp_pipe(&hw.rx, &hw.tx, false); /* Pipe(duplex=False): rx receives, tx sends */
    if (rc < 0) {
        report("mp_pipe", rc);
        goto out;
    }
    mp_target_fn targets[2] = {reader, printer};
    for (int i = 0; i < 2; i++) {
        /* args_len 0: the children get the pointer &hw itself, valid in
         * their copies of this process's memory. */
        rc = mp_process_create(&procs[i], &(mp_process_opts){.target = targets[i], .args = &hw});
        if (rc < 0) {
            report("mp_process_create", rc);
            goto out;
        }
        rc = mp_process_start(procs[i]);
        if (rc < 0) {
            report("mp_process_start", rc);
            goto out;
        }
    }
    /* The parent uses neither end: close both (see the comment at the top). */
    mp_conn_destroy(hw.rx);
    mp_conn_destroy(hw.tx);
    hw.rx = hw.tx = NULL;
    /* Join both even if the first failed: then the printer's MP_EEOF shows. */
    bool reader_ok = join_ok(procs[0]);
    bool printer_ok = join_ok(procs[1]);
    if (!reader_ok || !printer_ok)
        goto out;
    printf("作业完成\n");
    status = 0;
out:
    for (int i = 0; i < 2; i++)
        mp_process_destroy(procs[i]);
    mp_conn_destroy(hw.rx);
    mp_conn_destroy(hw.tx);
    if (temp[0])
        unlink(temp);
    return status;
}
