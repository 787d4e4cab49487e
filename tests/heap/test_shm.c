/* Tests of named shared memory: create/attach between processes, explicit
 * ownership (the creator unlinks, attaching never does), exclusive creation
 * with mode 0600, and bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mp_test.h"

TestSuite(shm, .init = mp_test_fd_setup, .fini = mp_test_fd_check, .timeout = 30);

static void unique_name(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/mp_test_%s_%d", tag, (int)getpid());
}

static int child_attaches(const void *arg, size_t len)
{
    (void)len;
    mp_shm *s;
    if (mp_shm_attach(&s, arg) != 0)
        return 2;
    char *buf = mp_shm_buf(s);
    if (strcmp(buf, "from parent") != 0)
        return 3;
    strcpy(buf + 100, "from child");
    mp_shm_close(s); /* an attacher's close removes nothing */
    return 0;
}

Test(shm, create_attach_in_another_process)
{
    char name[64];
    unique_name(name, sizeof name, "xproc");
    mp_shm *s;
    mp_assert_ok(mp_shm_create(&s, name, 4096));
    cr_assert_eq(mp_shm_size(s), 4096);
    cr_assert_str_eq(mp_shm_name(s), name + 1);
    char *buf = mp_shm_buf(s);
    for (int i = 0; i < 4096; i++)
        cr_assert_eq(buf[i], 0);
    strcpy(buf, "from parent");
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.target = child_attaches,
                                                          .args = mp_shm_name(s),
                                                          .args_len = strlen(name)}));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp_process_join(p, 10));
    int code = -1;
    mp_assert_ok(mp_process_exitcode(p, &code));
    cr_assert_eq(code, 0);
    mp_process_destroy(p);
    cr_assert_str_eq(buf + 100, "from child");
    mp_shm *t;
    mp_assert_ok(mp_shm_attach(&t, name)); /* still there after the child's close */
    cr_assert_eq(mp_shm_size(t), 4096);
    mp_shm_close(t);
    mp_shm_close(s); /* the creator removes the name */
    mp_assert_rc(mp_shm_attach(&t, name), MP_ENOENT);
}

Test(shm, generated_names_are_unique_and_private)
{
    mp_shm *a, *b;
    mp_assert_ok(mp_shm_create(&a, NULL, 100));
    mp_assert_ok(mp_shm_create(&b, NULL, 100));
    cr_assert_str_neq(mp_shm_name(a), mp_shm_name(b));
    cr_assert(strncmp(mp_shm_name(a), "mp_", 3) == 0);
    char path[300];
    snprintf(path, sizeof path, "/dev/shm/%s", mp_shm_name(a));
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    mp_shm_close(a);
    mp_shm_close(b);
    cr_assert_neq(stat(path, &st), 0, "the creator's close removed the name");
}

Test(shm, exclusive_create_and_missing_attach)
{
    char name[64];
    unique_name(name, sizeof name, "excl");
    mp_shm *s, *t = NULL;
    mp_assert_ok(mp_shm_create(&s, name + 1, 10)); /* the '/' is optional */
    mp_assert_rc(mp_shm_create(&t, name, 10), MP_EEXIST);
    cr_assert_null(t);
    mp_shm_close(s);
    mp_assert_rc(mp_shm_attach(&t, name), MP_ENOENT);
    mp_assert_rc(mp_shm_attach(&t, "mp_test_never_created"), MP_ENOENT);
}

Test(shm, unlink_and_disown)
{
    char name[64];
    unique_name(name, sizeof name, "unlink");
    mp_shm *s, *t;
    mp_assert_ok(mp_shm_create(&s, name, 64));
    mp_assert_ok(mp_shm_attach(&t, name));
    mp_assert_ok(mp_shm_unlink(t)); /* anyone may remove the name */
    mp_assert_rc(mp_shm_unlink(s), MP_ENOENT);
    ((char *)mp_shm_buf(t))[0] = 'x'; /* mappings outlive the name */
    cr_assert_eq(((char *)mp_shm_buf(s))[0], 'x');
    mp_assert_rc(mp_shm_disown(t), MP_EPERM);
    mp_shm_close(t);
    mp_shm_close(s);

    mp_assert_ok(mp_shm_create(&s, name, 64));
    mp_assert_ok(mp_shm_disown(s));
    mp_shm_close(s); /* disowned: the name stays */
    mp_assert_ok(mp_shm_attach(&t, name));
    mp_assert_ok(mp_shm_unlink(t));
    mp_shm_close(t);
}

Test(shm, bad_input)
{
    mp_shm *s = NULL;
    char longname[260];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *bad[] = {"", "/", "a/b", "/a/b", ".", "..", longname};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mp_assert_rc(mp_shm_create(&s, bad[i], 10), MP_EINVAL);
        mp_assert_rc(mp_shm_attach(&s, bad[i]), MP_EINVAL);
    }
    mp_assert_rc(mp_shm_create(&s, NULL, 0), MP_EINVAL);
    mp_assert_rc(mp_shm_create(&s, NULL, SIZE_MAX), MP_EINVAL);
    mp_assert_rc(mp_shm_create(NULL, NULL, 10), MP_EINVAL);
    mp_assert_rc(mp_shm_attach(NULL, "x"), MP_EINVAL);
    mp_assert_rc(mp_shm_attach(&s, NULL), MP_EINVAL);
    cr_assert_null(s);
    mp_assert_rc(mp_shm_unlink(NULL), MP_EINVAL);
    mp_assert_rc(mp_shm_disown(NULL), MP_EINVAL);
    cr_assert_null(mp_shm_buf(NULL));
    cr_assert_eq(mp_shm_size(NULL), 0);
    cr_assert_null(mp_shm_name(NULL));
    mp_shm_close(NULL);
}

static int child_closes_copy(mp_process *self, void *user)
{
    (void)self;
    mp_shm_close(user); /* a forked copy is not the owner */
    return 0;
}

Test(shm, forked_copy_does_not_unlink)
{
    mp_shm *s, *t;
    mp_assert_ok(mp_shm_create(&s, NULL, 32));
    mp_process *p;
    mp_assert_ok(mp_process_create(&p, &(mp_process_opts){.run = child_closes_copy, .user = s}));
    mp_assert_ok(mp_process_start(p));
    mp_assert_ok(mp_process_join(p, 10));
    mp_process_destroy(p);
    mp_assert_ok(mp_shm_attach(&t, mp_shm_name(s)));
    mp_shm_close(t);
    mp_shm_close(s);
}
