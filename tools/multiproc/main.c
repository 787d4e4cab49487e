/* multiproc: the operations tool of the Redis backend (docs/redis.md, "The
 * operations tool"). Parses the command line, connects, runs one command.
 * Exit status: 0 done, 1 an error (one line on stderr naming the cause;
 * nothing was changed by the failing step), 2 a usage error. */
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static const char usage_text[] =
    "usage: multiproc [--json] COMMAND ARGS...\n"
    "\n"
    "Sees and repairs what the multiproc library keeps in Redis. URL is the\n"
    "library's: redis://[[user]:password@]host[:port][/db][?prefix=P&timeout=S]\n"
    "\n"
    "commands:\n"
    "  status URL [--watch [SECONDS]]   pools (pending, running, done/s, oldest\n"
    "                                   entry, dead letters) and their workers;\n"
    "                                   --watch refreshes every SECONDS (2) until\n"
    "                                   SIGINT or SIGTERM\n"
    "  dead list URL POOL               the pool's dead letters\n"
    "  dead show URL POOL ID            one dead letter, every field\n"
    "  dead retry URL POOL ID|--all     put the task back on the task stream\n"
    "  dead purge URL POOL ID|--all     delete dead letters\n"
    "  pool purge URL POOL              remove the tasks no worker has taken\n"
    "                                   (their clients get MP_ECANCELED)\n"
    "  objects URL                      the manager's named objects and types\n"
    "\n"
    "options:\n"
    "  --json   machine-readable output (one JSON document per snapshot)\n"
    "  --help   this text\n"
    "\n"
    "exit status: 0 done, 1 error (one line on stderr), 2 usage error\n";

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "multiproc: %s\n", why);
    fputs(usage_text, stderr);
    return MP__TOOL_USAGE;
}

/* A --watch interval: a positive number of seconds of at most a day. */
static bool parse_every(const char *s, double *out)
{
    char *end;
    double x = strtod(s, &end);
    if (end == s || *end != '\0' || !(x >= 0.1 && x <= 86400))
        return false;
    *out = x;
    return true;
}

typedef struct args {
    const char *pos[8];
    int npos;
    bool help;
} args;

/* Options anywhere on the line; the rest are positional. */
static int parse(int argc, char **argv, mp__tool *t, args *a)
{
    t->every = 2.0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--json") == 0) {
            t->json = true;
        } else if (strcmp(s, "--all") == 0) {
            t->all = true;
        } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            a->help = true;
        } else if (strcmp(s, "--watch") == 0) {
            t->watch = true;
            if (i + 1 < argc && argv[i + 1][0] != '-' && strstr(argv[i + 1], "://") == NULL &&
                !parse_every(argv[++i], &t->every))
                return usage("--watch takes a number of seconds from 0.1 to 86400");
        } else if (s[0] == '-' && s[1] != '\0') {
            fprintf(stderr, "multiproc: unknown option %s\n", s);
            return usage(NULL);
        } else if (a->npos < 8) {
            a->pos[a->npos++] = s;
        } else {
            return usage("too many arguments");
        }
    }
    return 0;
}

typedef enum command {
    CMD_NONE,
    CMD_STATUS,
    CMD_OBJECTS,
    CMD_POOL_PURGE,
    CMD_DEAD_LIST,
    CMD_DEAD_SHOW,
    CMD_DEAD_RETRY,
    CMD_DEAD_PURGE,
} command;

/* The command the words name, with the right number of arguments. */
static command shape(const mp__tool *t, const args *a)
{
    const char *c = a->npos ? a->pos[0] : "", *sub = a->npos > 1 ? a->pos[1] : "";
    int n = a->npos;
    bool one = n == 5 && !t->all, all = n == 4 && t->all;
    if (strcmp(c, "status") == 0)
        return n == 2 ? CMD_STATUS : CMD_NONE;
    if (strcmp(c, "objects") == 0)
        return n == 2 ? CMD_OBJECTS : CMD_NONE;
    if (strcmp(c, "pool") == 0)
        return strcmp(sub, "purge") == 0 && n == 4 ? CMD_POOL_PURGE : CMD_NONE;
    if (strcmp(c, "dead") != 0)
        return CMD_NONE;
    if (strcmp(sub, "list") == 0)
        return n == 4 ? CMD_DEAD_LIST : CMD_NONE;
    if (strcmp(sub, "show") == 0)
        return n == 5 ? CMD_DEAD_SHOW : CMD_NONE;
    if (strcmp(sub, "retry") == 0)
        return one || all ? CMD_DEAD_RETRY : CMD_NONE;
    if (strcmp(sub, "purge") == 0)
        return one || all ? CMD_DEAD_PURGE : CMD_NONE;
    return CMD_NONE;
}

static int run(mp__tool *t, const args *a, command c)
{
    const char *pool = a->npos > 3 ? a->pos[3] : NULL, *id = t->all ? NULL : a->pos[4];
    switch (c) {
    case CMD_STATUS:
        return mp__tool_status(t);
    case CMD_OBJECTS:
        return mp__tool_objects(t);
    case CMD_POOL_PURGE:
        return mp__tool_pool_purge(t, pool);
    case CMD_DEAD_LIST:
        return mp__tool_dead_list(t, pool);
    case CMD_DEAD_SHOW:
        return mp__tool_dead_show(t, pool, a->pos[4]);
    case CMD_DEAD_RETRY:
        return mp__tool_dead_retry(t, pool, id);
    case CMD_DEAD_PURGE:
        return mp__tool_dead_purge(t, pool, id);
    case CMD_NONE:
        break;
    }
    return MP__TOOL_USAGE;
}

int main(int argc, char **argv)
{
    mp__tool t = {0};
    args a = {.npos = 0};
    int rc = parse(argc, argv, &t, &a);
    if (rc != 0)
        return rc;
    if (a.help) {
        fputs(usage_text, stdout);
        return MP__TOOL_OK;
    }
    /* The shape is checked before connecting: a usage error changes
     * nothing and needs no server. */
    command c = shape(&t, &a);
    if (c == CMD_NONE)
        return usage(a.npos ? "unknown command or wrong number of arguments" : NULL);
    if (t.watch && c != CMD_STATUS)
        return usage("--watch is an option of status");
    if (t.all && c != CMD_DEAD_RETRY && c != CMD_DEAD_PURGE)
        return usage("--all is an option of dead retry and dead purge");
    int u = c == CMD_STATUS || c == CMD_OBJECTS ? 1 : 2;
    if (mp__tool_connect(&t, a.pos[u]) < 0)
        return MP__TOOL_ERROR;
    rc = run(&t, &a, c);
    mp__tool_disconnect(&t);
    return rc;
}
