/* See redis_server.h. */
#include "redis_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int can_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void run_server(const mp_test_redis *s, pid_t parent)
{
    /* The server must die with the test: SIGKILL on the parent's death,
     * kept across exec; re-check the parent in case it died already. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    syscall(SYS_close_range, 3U, ~0U, 0U);
    char port[16], log[96];
    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(log, sizeof(log), "%s/redis.log", s->dir);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
    }
    const char *argv[24] = {"redis-server",
                            "--port",
                            port,
                            "--bind",
                            "127.0.0.1",
                            "--dir",
                            s->dir,
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--logfile",
                            log,
                            "--daemonize",
                            "no"};
    int argc = 15;
    if (s->password[0]) {
        argv[argc++] = "--requirepass";
        argv[argc++] = s->password;
    }
    argv[argc] = NULL;
    execvp("redis-server", (char *const *)argv);
    _exit(127);
}

/* The size of the server's log (0 when there is none yet). */
static long log_size(const mp_test_redis *s)
{
    char path[96];
    struct stat st;
    snprintf(path, sizeof(path), "%s/redis.log", s->dir);
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Whether the server's log says, after byte from, that it listens. The
 * log is this server's own (its --dir is ours): a connection that
 * succeeds may reach another test's server that took the same port
 * between free_port() and this server's bind (this one then exits), so a
 * connection alone does not say the server is ours. */
static int log_says_ready(const mp_test_redis *s, long from)
{
    char path[96], buf[4096];
    snprintf(path, sizeof(path), "%s/redis.log", s->dir);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    int ready = 0;
    if (fseek(f, from, SEEK_SET) == 0)
        while (!ready && fgets(buf, sizeof(buf), f))
            ready = strstr(buf, "Ready to accept connections") != NULL;
    fclose(f);
    return ready;
}

static int spawn(mp_test_redis *s)
{
    long from = log_size(s); /* a restart appends to the same log */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(s->error, sizeof(s->error), "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0)
        run_server(s, parent);
    s->pid = (int)pid;
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 1000; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            snprintf(s->error, sizeof(s->error),
                     WIFEXITED(status) && WEXITSTATUS(status) == 127
                         ? "redis-server not found or not startable: apt-get install redis-server"
                         : "redis-server exited at start (see its log in %s)",
                     s->dir);
            return -1;
        }
        if (log_says_ready(s, from) && can_connect(s->port))
            return 0;
        nanosleep(&pause, NULL);
    }
    snprintf(s->error, sizeof(s->error), "redis-server did not answer on port %d", s->port);
    mp_test_redis_stop(s, 1);
    return -1;
}

int mp_test_redis_start(mp_test_redis *s, const char *password)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/mp-redis-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        snprintf(s->error, sizeof(s->error), "mkdtemp: %s", strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    if (password)
        snprintf(s->password, sizeof(s->password), "%s", password);
    /* A port found free may be taken before the server binds it: retry. */
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = free_port();
        if (s->port > 0 && spawn(s) == 0)
            break;
    }
    if (s->pid == 0) {
        mp_test_redis_stop(s, 0);
        return -1;
    }
    if (s->password[0])
        snprintf(s->url, sizeof(s->url), "redis://:%s@127.0.0.1:%d", s->password, s->port);
    else
        snprintf(s->url, sizeof(s->url), "redis://127.0.0.1:%d", s->port);
    return 0;
}

int mp_test_redis_restart(mp_test_redis *s)
{
    return s->pid ? 0 : spawn(s);
}

void mp_test_redis_stop(mp_test_redis *s, int keep_dir)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        s->pid = 0;
    }
    if (!keep_dir && s->dir[0]) {
        char path[128];
        static const char *const files[] = {"redis.log", "dump.rdb"};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", s->dir, files[i]);
            unlink(path);
        }
        rmdir(s->dir);
        s->dir[0] = '\0';
    }
}
