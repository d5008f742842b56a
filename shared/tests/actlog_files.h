/*
 * actlog_files.h -- the action log's segment files as the cmocka suites
 * of shared/ and worker/ look at them from outside (to damage, age or
 * measure one): a segment's path in a log directory and its size.
 * Header-only, as tmpdir.h: each suite is one program.
 */
#ifndef MV_TEST_ACTLOG_FILES_H
#define MV_TEST_ACTLOG_FILES_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "actlog.h"

/* Writes dir/<segment seq's file name> into path (len bytes). */
static inline void
mvt_seg_path(const char *dir, uint64_t seq, char *path, size_t len)
{
    char  name[64];

    snprintf(path, len, "%s/%s", dir,
             mv_actlog_segment_name(seq, name, sizeof(name)));
}


/* The size of segment seq of dir in bytes, or -1 when it does not exist. */
static inline off_t
mvt_seg_size(const char *dir, uint64_t seq)
{
    char         path[512];
    struct stat  st;

    mvt_seg_path(dir, seq, path, sizeof(path));
    return stat(path, &st) == 0 ? st.st_size : -1;
}

#endif /* MV_TEST_ACTLOG_FILES_H */
