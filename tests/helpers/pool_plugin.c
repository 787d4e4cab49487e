/* A module that test_pool_start loads with dlopen: a task, an initializer
 * and a process target that live in a module the program did not load at
 * start. */
#include <stddef.h>
#include <stdint.h>

/* Exported whatever the project's default visibility: found with dlsym. */
#define PLUGIN_API __attribute__((visibility("default")))

PLUGIN_API int plugin_triple(const void *in, size_t in_len, void *out, size_t out_cap,
                             size_t *out_len, void *ctx);
PLUGIN_API void plugin_init(void *arg);
PLUGIN_API int plugin_exit7(const void *arg, size_t len);

int plugin_triple(const void *in, size_t in_len, void *out, size_t out_cap, size_t *out_len,
                  void *ctx)
{
    (void)in_len, (void)out_cap, (void)out_len, (void)ctx;
    *(int64_t *)out = *(const int64_t *)in * 3;
    return 0;
}

void plugin_init(void *arg)
{
    (void)arg;
}

int plugin_exit7(const void *arg, size_t len)
{
    (void)arg, (void)len;
    return 7;
}
