/*
 * test_files.c -- numbered file names (the one formatter and parser the
 * action log and the snapshot publisher share), mkdir -p, the directory
 * fsyncs, and the end of a crash-safe write (mv_file_commit).
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <fcntl.h>
#include <unistd.h>

#include "files.h"
#include "tmpdir.h"


static void
test_seqname_round_trip(void **state)
{
    static const uint64_t  seqs[] = {
        0, 1, 9, 10, 42, 1000000007u, UINT64_C(18446744073709551615)
    };
    char      buf[64];
    uint64_t  back;
    size_t    i;

    (void) state;

    assert_string_equal(mv_seqname_format("actions-", 1, ".log", buf,
                                          sizeof(buf)),
                        "actions-00000000000000000001.log");
    for (i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        mv_seqname_format("snapshot-", seqs[i], ".mvs", buf, sizeof(buf));
        assert_int_equal(strlen(buf), 9 + MV_SEQNAME_DIGITS + 4);
        back = 7;
        assert_int_equal(mv_seqname_parse(buf, "snapshot-", ".mvs", &back),
                         1);
        assert_true(back == seqs[i]);
    }

    /* Truncated, still terminated. */
    assert_string_equal(mv_seqname_format("a-", 5, ".x", buf, 6), "a-000");
}


static void
test_seqname_refusals(void **state)
{
    static const char *const  bad[] = {
        "actions-0000000000000000001.log",          /* 19 digits */
        "actions-000000000000000000001.log",        /* 21 digits */
        "actions-0000000000000000000a.log",
        "actions-00000000000000000001.log.tmp",
        "actions-00000000000000000001.lo",
        "action-000000000000000000001.log",
        "Actions-00000000000000000001.log",
        "actions-18446744073709551616.log",         /* 2^64 */
        "actions-99999999999999999999.log",
        "actions--0000000000000000001.log",
        "",
    };
    uint64_t  seq = 3;
    size_t    i;

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (mv_seqname_parse(bad[i], "actions-", ".log", &seq) != 0) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
    assert_true(seq == 3);
}


static void
test_dirs(void **state)
{
    const char   *tmp = *state;
    char          path[PATH_MAX], file[PATH_MAX + 8];
    struct stat   st;
    mv_err_t      err;
    FILE         *f;

    snprintf(path, sizeof(path), "%s/a/b//c/", tmp);
    assert_int_equal(mv_dir_make(path, &err), MV_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(mv_dir_make(path, &err), MV_OK);      /* exists */
    assert_int_equal(mv_dir_fsync(path, &err), MV_OK);

    snprintf(file, sizeof(file), "%s/a/f", tmp);
    f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(mv_dir_make(file, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "not a directory"));
    assert_int_equal(mv_dir_fsync_parent(file, &err), MV_OK);
    assert_int_equal(mv_dir_fsync_parent("no-slash", &err), MV_OK);

    snprintf(file, sizeof(file), "%s/missing/f", tmp);
    assert_int_equal(mv_dir_fsync_parent(file, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "missing"));
    assert_int_equal(mv_dir_make("", &err), MV_ERR);
}


/* Writes text to a new temp file; returns its descriptor. */
static int
temp_with(const char *tmp, const char *text)
{
    int  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    return fd;
}


/* A commit replaces the file; a failed write or rename leaves it as it
   was and removes the temp. */
static void
test_commit(void **state)
{
    const char  *dir = *state;
    char         tmp[PATH_MAX], path[PATH_MAX], buf[16] = { 0 };
    mv_err_t     err;
    FILE        *f;

    snprintf(tmp, sizeof(tmp), "%s/.f.tmp", dir);
    snprintf(path, sizeof(path), "%s/f", dir);

    assert_int_equal(mv_file_commit(temp_with(tmp, "one"), MV_OK, tmp, path,
                                    &err), MV_OK);
    assert_int_equal(access(tmp, F_OK), -1);

    /* the write failed: nothing renamed, the temp gone */
    assert_int_equal(mv_file_commit(temp_with(tmp, "two"), MV_ERR, tmp,
                                    path, &err), MV_ERR);
    assert_int_equal(access(tmp, F_OK), -1);

    /* the rename fails (no such directory): reported, the temp gone */
    snprintf(path, sizeof(path), "%s/missing/f", dir);
    assert_int_equal(mv_file_commit(temp_with(tmp, "three"), MV_OK, tmp,
                                    path, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "rename("));
    assert_int_equal(access(tmp, F_OK), -1);

    snprintf(path, sizeof(path), "%s/f", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "one");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seqname_round_trip),
        cmocka_unit_test(test_seqname_refusals),
        cmocka_unit_test_setup_teardown(test_dirs, mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_commit, mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
