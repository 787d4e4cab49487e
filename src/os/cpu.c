/* mp_cpu_count: the CPUs this process may really use. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/internal.h"

/* Read "quota period" (cgroup v2 cpu.max: "max 100000" or "150000 100000")
 * and return the CPU count it allows, rounded up, or 0 for no limit. */
static int cpu_max_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char quota[32] = "";
    long long period = 0;
    int n = fscanf(f, "%31s %lld", quota, &period);
    fclose(f);
    if (n != 2 || period <= 0 || strcmp(quota, "max") == 0)
        return 0;
    long long q = atoll(quota);
    if (q <= 0)
        return 0;
    return (int)((q + period - 1) / period);
}

/* cgroup v1: cpu.cfs_quota_us (-1 for none) and cpu.cfs_period_us. */
static int cpu_v1(const char *dir)
{
    char path[512];
    long long quota = -1, period = 0;
    snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    int ok = fscanf(f, "%lld", &quota) == 1;
    fclose(f);
    snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
    f = fopen(path, "re");
    if (!f)
        return 0;
    ok = ok && fscanf(f, "%lld", &period) == 1;
    fclose(f);
    if (!ok || quota <= 0 || period <= 0)
        return 0;
    return (int)((quota + period - 1) / period);
}

/* True when the comma-separated controller list names "cpu". */
static bool has_cpu_controller(const char *list, size_t len)
{
    const char *end = list + len;
    while (list < end) {
        const char *comma = memchr(list, ',', (size_t)(end - list));
        size_t n = (size_t)((comma ? comma : end) - list);
        if (n == 3 && memcmp(list, "cpu", 3) == 0)
            return true;
        list += n + 1;
    }
    return false;
}

/* The tightest quota on the path from a cgroup up to the root: a parent's
 * quota limits its children too. v2 is "/sys/fs/cgroup<rel>/cpu.max"; v1
 * is under the mount of the cpu controller. */
static int walk_limit(char *rel, bool v2)
{
    int best = 0;
    for (;;) {
        char path[1200];
        int lim;
        if (v2) {
            snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", rel);
            lim = cpu_max_file(path);
        } else {
            snprintf(path, sizeof(path), "/sys/fs/cgroup/cpu,cpuacct%s", rel);
            lim = cpu_v1(path);
            if (lim == 0) {
                snprintf(path, sizeof(path), "/sys/fs/cgroup/cpu%s", rel);
                lim = cpu_v1(path);
            }
        }
        if (lim > 0 && (best == 0 || lim < best))
            best = lim;
        char *slash = strrchr(rel, '/');
        if (!slash || rel[0] == '\0')
            return best;
        *slash = '\0';
    }
}

/* Both hierarchies can be present at once (hybrid mounts): take the
 * tighter of the two. */
static int cgroup_limit(void)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return 0;
    char line[1024], v1[1024] = "", v2[1024] = "";
    bool has_v1 = false, has_v2 = false;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        if (strncmp(line, "0::", 3) == 0) {
            snprintf(v2, sizeof(v2), "%s", c2 + 1);
            has_v2 = true;
        } else if (has_cpu_controller(c1 + 1, (size_t)(c2 - c1 - 1))) {
            snprintf(v1, sizeof(v1), "%s", c2 + 1);
            has_v1 = true;
        }
    }
    fclose(f);
    int a = has_v1 ? walk_limit(v1, false) : 0;
    int b = has_v2 ? walk_limit(v2, true) : 0;
    if (a > 0 && (b == 0 || a < b))
        return a;
    return b;
}

int mp_cpu_count(void)
{
    int n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    int lim = cgroup_limit();
    if (lim > 0 && lim < n)
        n = lim;
    return n > 0 ? n : 1;
}
