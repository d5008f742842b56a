/*
 * tmpdir.h -- temporary directories for the cmocka suites of shared/ and
 * worker/: a fresh mkdtemp directory per test (as a cmocka setup, in
 * *state) and its removal with everything in it (the teardown, which runs
 * even when the test failed).  Header-only: each suite is one program.
 */
#ifndef MV_TEST_TMPDIR_H
#define MV_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static inline int
mvt_rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}


/* Removes dir and everything below it (best effort). */
static inline void
mvt_remove_tree(const char *dir)
{
    nftw(dir, mvt_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}


/* cmocka setup: *state becomes a fresh /tmp/milvuso-test-XXXXXX. */
static inline int
mvt_tmpdir_setup(void **state)
{
    char  *dir = malloc(64);

    if (dir == NULL) {
        return -1;
    }
    snprintf(dir, 64, "/tmp/milvuso-test-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}


/* cmocka teardown: removes the directory of mvt_tmpdir_setup. */
static inline int
mvt_tmpdir_teardown(void **state)
{
    mvt_remove_tree(*state);
    free(*state);
    return 0;
}

#endif /* MV_TEST_TMPDIR_H */
