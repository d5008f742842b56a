/*
 * files.h -- the file-system steps the action log and the snapshot
 * publisher share: numbered file names, mkdir -p, the directory fsync
 * that makes a create or a rename durable, and the end of a crash-safe
 * write (a fresh temp file, written whole, fsync, rename).
 *
 * Numbered names are <prefix><20 decimal digits><suffix>
 * ("actions-00000000000000000001.log", "snapshot-00000000000000000042.mvs"):
 * zero-padded so that names sort as numbers, 20 digits so that every
 * uint64_t fits.  One formatter and one parser, so a name one part writes
 * is always a name the other part reads.
 */
#ifndef MV_FILES_H
#define MV_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MV_SEQNAME_DIGITS  20

/*
 * Writes prefix, seq in MV_SEQNAME_DIGITS digits, and suffix into buf
 * (always NUL-terminated when len > 0; truncated when len is too small).
 * Returns buf.
 */
char *mv_seqname_format(const char *prefix, uint64_t seq, const char *suffix,
    char *buf, size_t len);

/*
 * 1 with *seq set when name is exactly prefix + MV_SEQNAME_DIGITS digits +
 * suffix (a number that fits in 64 bits), 0 otherwise (*seq untouched).
 */
int mv_seqname_parse(const char *name, const char *prefix,
    const char *suffix, uint64_t *seq);

/* mkdir -p dir with mode 0755; dir must end up a directory.  MV_OK/MV_ERR. */
int mv_dir_make(const char *dir, mv_err_t *err);

/*
 * fsyncs directory dir (a file system that cannot fsync a directory,
 * EINVAL, counts as done).  MV_OK or MV_ERR with err set.
 */
int mv_dir_fsync(const char *dir, mv_err_t *err);

/* fsyncs the directory that holds path ("." when path has no slash). */
int mv_dir_fsync_parent(const char *path, mv_err_t *err);

/*
 * Finishes a file written through fd under the temp name tmp: unless rc
 * (what writing it returned) is already MV_ERR, fsync, close and rename
 * over path; fd is closed in every case, and on any failure tmp is
 * removed and path left as it was.  The directory is not fsync'd (the
 * caller does, once it has done what else it renames there).  Returns
 * MV_OK, or MV_ERR with err set by the first step that failed (untouched
 * when rc was MV_ERR).
 */
int mv_file_commit(int fd, int rc, const char *tmp, const char *path,
    mv_err_t *err);

/*
 * Creates (O_EXCL) a fresh temp file beside path, named
 * "<path>.tmp-<pid>-<random>", into tmp (tmp_len bytes).  Returns its fd
 * (open for writing), or -1 (MV_ERR) with err set.
 */
int mv_file_open_temp(const char *path, char *tmp, size_t tmp_len,
    mv_err_t *err);

/*
 * Points dir/link at target (a name in dir) atomically: a fresh symlink
 * "dir/.<link>.tmp-<pid>-<random>" renamed over dir/link, then an fsync of
 * dir.  Readers see the old target or the new one, never no link.  Returns
 * MV_OK, or MV_ERR with err set (the temp link removed; dir/link unchanged
 * unless only the fsync failed).
 */
int mv_symlink_replace(const char *dir, const char *link, const char *target,
    mv_err_t *err);

/* Writes all len bytes of buf to fd (path names it in errors); MV_OK or
   MV_ERR with err set. */
int mv_file_write_all(int fd, const void *buf, size_t len, const char *path,
    mv_err_t *err);

#ifdef __cplusplus
}
#endif

#endif /* MV_FILES_H */
