/* expect_check — run a program and check its standard output against an
 * .expect file.
 *
 *     expect_check FILE.expect -- PROGRAM [ARGS...]
 *
 * Each line of FILE.expect is a POSIX extended regular expression that must
 * match one whole line of output (it is anchored at both ends). A line that
 * starts with "~ " belongs to an unordered group: a run of consecutive "~ "
 * lines matches as many consecutive output lines, in any order (for output
 * that interleaves between processes). The other lines match in order. Every
 * output line must be consumed by exactly one expectation and every
 * expectation must be used. The program must exit with status 0 within 30
 * seconds; otherwise its whole process group is killed and the check fails.
 *
 * The program's stderr passes through; its stdout is captured, echoed after
 * the run, and on a mismatch printed next to the expectations together with
 * the first problem found. Matching is byte-wise (the C locale), so UTF-8
 * text in a pattern matches the same bytes in the output.
 *
 * Exit status: 0 when everything matched, 1 on a mismatch or a failed run,
 * 2 on a usage error or an unreadable .expect file.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_TIMEOUT_S 30

/* A growable list of NUL-terminated lines that point into one buffer. */
typedef struct lines {
    char *buf;
    char **line;
    size_t n;
} lines;

typedef struct expectation {
    const char *text; /* the pattern as written, without the "~ " prefix */
    bool unordered;
    regex_t re;
} expectation;

/* What happened to the program. */
typedef struct run_result {
    char *out;
    size_t out_len;
    int status; /* from waitpid, valid when reaped */
    bool reaped;
    bool timed_out;    /* killed after RUN_TIMEOUT_S */
    bool exited_first; /* ... although the program itself had already exited */
} run_result;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "expect_check: out of memory\n");
        exit(2);
    }
    return q;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Split buf (len bytes, owned by the result) into lines at '\n'. A last line
 * without its newline still counts as a line, so that nothing is ignored. */
static lines split_lines(char *buf, size_t len)
{
    lines l = {.buf = buf};
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && buf[i] != '\n')
            continue;
        if (i == len && start == len)
            break;
        buf[i] = '\0';
        l.line = xrealloc(l.line, (l.n + 1) * sizeof(*l.line));
        l.line[l.n++] = buf + start;
        start = i + 1;
    }
    return l;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = xrealloc(buf, cap + 1);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Compile every line of the .expect file. Returns false (after printing
 * why) on a bad regular expression. */
static bool compile_expectations(const lines *src, expectation *e)
{
    for (size_t i = 0; i < src->n; i++) {
        const char *t = src->line[i];
        e[i].unordered = strncmp(t, "~ ", 2) == 0;
        e[i].text = e[i].unordered ? t + 2 : t;
        /* Anchor the whole pattern, alternatives included: ^(...)$. */
        size_t len = strlen(e[i].text);
        char *anchored = xrealloc(NULL, len + 5);
        if (len == 0)
            strcpy(anchored, "^$");
        else
            snprintf(anchored, len + 5, "^(%s)$", e[i].text);
        int rc = regcomp(&e[i].re, anchored, REG_EXTENDED | REG_NOSUB);
        free(anchored);
        if (rc != 0) {
            char msg[256];
            regerror(rc, &e[i].re, msg, sizeof(msg));
            fprintf(stderr, "expect_check: line %zu: bad pattern /%s/: %s\n", i + 1, e[i].text,
                    msg);
            for (size_t j = 0; j < i; j++)
                regfree(&e[j].re);
            return false;
        }
    }
    return true;
}

static bool matches(const expectation *e, const char *line)
{
    return regexec(&e->re, line, 0, NULL, 0) == 0;
}

/* The child side of run_program: own process group (so that a timeout can
 * kill the program and every process it started), stdout into the pipe. */
static void exec_child(int out_fd, char **argv)
{
    setpgid(0, 0);
    if (dup2(out_fd, STDOUT_FILENO) < 0)
        _exit(127);
    execvp(argv[0], argv);
    fprintf(stderr, "expect_check: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Wait for the program while draining its stdout, until it has exited and
 * every copy of the pipe is closed, or until the deadline. */
static void collect(int fd, pid_t pid, run_result *r)
{
    double deadline = now_s() + RUN_TIMEOUT_S;
    size_t cap = 0;
    bool eof = false;
    while (!(eof && r->reaped)) {
        double left = deadline - now_s();
        if (left <= 0) {
            r->timed_out = true;
            break;
        }
        /* Short slices: the program may exit while a leftover child still
         * holds the pipe, and its exit must be noticed without the pipe. */
        struct pollfd pfd = {.fd = eof ? -1 : fd, .events = POLLIN};
        int ms = left < 0.05 ? (int)(left * 1000) + 1 : 50;
        if (poll(&pfd, 1, ms) > 0 && !eof) {
            if (r->out_len + 4096 > cap) {
                cap = cap ? 2 * cap : 65536;
                r->out = xrealloc(r->out, cap + 1);
            }
            ssize_t got = read(fd, r->out + r->out_len, cap - r->out_len);
            if (got > 0)
                r->out_len += (size_t)got;
            else if (got == 0 || errno != EINTR)
                eof = true;
        }
        if (!r->reaped && waitpid(pid, &r->status, WNOHANG) == pid)
            r->reaped = true;
    }
    if (r->timed_out) {
        r->exited_first = r->reaped;
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        if (!r->reaped && waitpid(pid, &r->status, 0) == pid)
            r->reaped = true;
    }
    r->out = xrealloc(r->out, r->out_len + 1);
    r->out[r->out_len] = '\0';
}

static bool run_program(char **argv, run_result *r)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        perror("expect_check: pipe2");
        return false;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("expect_check: fork");
        close(p[0]);
        close(p[1]);
        return false;
    }
    if (pid == 0)
        exec_child(p[1], argv);
    /* Also from the parent, so the group exists whichever runs first. */
    setpgid(pid, pid);
    close(p[1]);
    collect(p[0], pid, r);
    close(p[0]);
    return true;
}

/* Kuhn's augmenting path: try to give pattern i a line of the group,
 * moving earlier assignments when that frees one. */
static bool augment(size_t i, size_t k, const bool *adj, bool *seen, size_t *owner)
{
    for (size_t j = 0; j < k; j++) {
        if (!adj[i * k + j] || seen[j])
            continue;
        seen[j] = true;
        if (owner[j] == SIZE_MAX || augment(owner[j], k, adj, seen, owner)) {
            owner[j] = i;
            return true;
        }
    }
    return false;
}

/* Match the k unordered expectations e[0..k) with the k output lines
 * out[0..k), in any order. On failure write the problem into msg. */
static bool match_group(const expectation *e, char **out, size_t k, size_t first_out,
                        size_t first_exp, char *msg, size_t msg_len)
{
    bool *adj = xrealloc(NULL, k * k * sizeof(*adj));
    bool *seen = xrealloc(NULL, k * sizeof(*seen));
    size_t *owner = xrealloc(NULL, k * sizeof(*owner));
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++)
            adj[i * k + j] = matches(&e[i], out[j]);
    for (size_t j = 0; j < k; j++)
        owner[j] = SIZE_MAX;
    bool ok = true;
    for (size_t i = 0; i < k && ok; i++) {
        memset(seen, 0, k * sizeof(*seen));
        if (!augment(i, k, adj, seen, owner)) {
            snprintf(msg, msg_len,
                     "expectation %zu /%s/ (unordered group of %zu, expectations %zu..%zu) "
                     "has no line left among output lines %zu..%zu",
                     first_exp + i + 1, e[i].text, k, first_exp + 1, first_exp + k, first_out + 1,
                     first_out + k);
            ok = false;
        }
    }
    free(adj);
    free(seen);
    free(owner);
    return ok;
}

/* Walk the expectations over the output; the first problem goes into msg. */
static bool match_all(const expectation *e, size_t ne, const lines *out, char *msg, size_t msg_len)
{
    size_t o = 0;
    for (size_t i = 0; i < ne;) {
        if (!e[i].unordered) {
            if (o >= out->n) {
                snprintf(msg, msg_len, "output ended; expectation %zu /%s/ is unused", i + 1,
                         e[i].text);
                return false;
            }
            if (!matches(&e[i], out->line[o])) {
                snprintf(msg, msg_len, "output line %zu \"%s\" does not match expectation %zu /%s/",
                         o + 1, out->line[o], i + 1, e[i].text);
                return false;
            }
            i++;
            o++;
            continue;
        }
        size_t k = 0;
        while (i + k < ne && e[i + k].unordered)
            k++;
        if (o + k > out->n) {
            snprintf(msg, msg_len,
                     "output ended; the unordered group at expectations %zu..%zu needs %zu "
                     "lines, only %zu left",
                     i + 1, i + k, k, out->n - o);
            return false;
        }
        if (!match_group(&e[i], out->line + o, k, o, i, msg, msg_len))
            return false;
        i += k;
        o += k;
    }
    if (o < out->n) {
        snprintf(msg, msg_len, "extra output line %zu \"%s\" (every expectation already used)",
                 o + 1, out->line[o]);
        return false;
    }
    return true;
}

static void describe_exit(const run_result *r, char *msg, size_t msg_len)
{
    if (r->timed_out)
        snprintf(msg, msg_len, "timed out after %d s (%s); the process group was killed",
                 RUN_TIMEOUT_S,
                 r->exited_first ? "the program exited but something still held its stdout open"
                                 : "the program was still running");
    else if (WIFSIGNALED(r->status))
        snprintf(msg, msg_len, "the program was killed by signal %d (%s)", WTERMSIG(r->status),
                 strsignal(WTERMSIG(r->status)));
    else if (WEXITSTATUS(r->status) != 0)
        snprintf(msg, msg_len, "the program exited with status %d", WEXITSTATUS(r->status));
    else
        msg[0] = '\0';
}

static void report(const char *expect_path, const expectation *e, size_t ne, const lines *out,
                   const char *problem)
{
    fprintf(stderr, "---- expectations (%s) ----\n", expect_path);
    for (size_t i = 0; i < ne; i++)
        fprintf(stderr, "%4zu %s /%s/\n", i + 1, e[i].unordered ? "~" : " ", e[i].text);
    fprintf(stderr, "---- output (%zu lines) ----\n", out->n);
    for (size_t i = 0; i < out->n; i++)
        fprintf(stderr, "%4zu | %s\n", i + 1, out->line[i]);
    fprintf(stderr, "---- first problem ----\n%s\n", problem);
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: %s FILE.expect -- PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    size_t exp_len;
    char *exp_buf = read_file(argv[1], &exp_len);
    if (!exp_buf) {
        fprintf(stderr, "expect_check: cannot read %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    lines exp_lines = split_lines(exp_buf, exp_len);
    expectation *e = xrealloc(NULL, exp_lines.n * sizeof(*e));
    if (!compile_expectations(&exp_lines, e))
        return 2;

    run_result r = {0};
    if (!run_program(argv + 3, &r))
        return 1;
    lines out = split_lines(r.out, r.out_len);
    for (size_t i = 0; i < out.n; i++)
        printf("%s\n", out.line[i]);

    char problem[1024];
    describe_exit(&r, problem, sizeof(problem));
    bool ok = problem[0] == '\0' && match_all(e, exp_lines.n, &out, problem, sizeof(problem));
    if (ok)
        printf("expect_check: %zu lines match %s\n", out.n, argv[1]);
    else
        report(argv[1], e, exp_lines.n, &out, problem);

    for (size_t i = 0; i < exp_lines.n; i++)
        regfree(&e[i].re);
    free(e);
    free(exp_lines.line);
    free(exp_buf);
    free(out.line);
    free(r.out);
    return ok ? 0 : 1;
}
