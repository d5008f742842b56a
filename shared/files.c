/*
 * files.c -- numbered file names, mkdir -p, directory fsyncs and the
 * steps of a crash-safe write (see files.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"


char *
mv_seqname_format(const char *prefix, uint64_t seq, const char *suffix,
    char *buf, size_t len)
{
    if (len > 0) {
        snprintf(buf, len, "%s%020llu%s", prefix, (unsigned long long) seq,
                 suffix);
    }

    return buf;
}


int
mv_seqname_parse(const char *name, const char *prefix, const char *suffix,
    uint64_t *seq)
{
    size_t    np = strlen(prefix), ns = strlen(suffix), i;
    uint64_t  s = 0;
    unsigned  d;

    if (strlen(name) != np + MV_SEQNAME_DIGITS + ns
        || memcmp(name, prefix, np) != 0
        || memcmp(name + np + MV_SEQNAME_DIGITS, suffix, ns) != 0)
    {
        return 0;
    }

    for (i = np; i < np + MV_SEQNAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return 0;
        }
        d = (unsigned) (name[i] - '0');
        if (s > (UINT64_MAX - d) / 10) {
            return 0;
        }
        s = s * 10 + d;
    }

    *seq = s;
    return 1;
}


int
mv_dir_make(const char *dir, mv_err_t *err)
{
    char         path[PATH_MAX];
    size_t       len = strlen(dir), i;
    struct stat  st;

    if (len == 0) {
        return mv_err_set(err, "empty directory name");
    }
    if (len >= sizeof(path)) {
        return mv_err_set(err, "path too long: %s", dir);
    }
    memcpy(path, dir, len + 1);

    for (i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') {
            continue;
        }
        if (path[i - 1] == '/') {
            continue;
        }
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            return mv_err_set(err, "mkdir(%s): %s", path, strerror(errno));
        }
        path[i] = dir[i];
    }

    if (stat(dir, &st) != 0) {
        return mv_err_set(err, "stat(%s): %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return mv_err_set(err, "%s: not a directory", dir);
    }

    return MV_OK;
}


int
mv_dir_fsync(const char *dir, mv_err_t *err)
{
    int  fd, rc;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return mv_err_set(err, "open(%s): %s", dir, strerror(errno));
    }
    rc = fsync(fd);
    if (rc != 0 && errno != EINVAL) {
        rc = mv_err_set(err, "fsync(%s): %s", dir, strerror(errno));
        close(fd);
        return rc;
    }
    close(fd);

    return MV_OK;
}


int
mv_dir_fsync_parent(const char *path, mv_err_t *err)
{
    char         dir[PATH_MAX];
    const char  *slash = strrchr(path, '/');
    size_t       len;

    if (slash == NULL) {
        return mv_dir_fsync(".", err);
    }

    len = slash == path ? 1 : (size_t) (slash - path);
    if (len >= sizeof(dir)) {
        return mv_err_set(err, "path too long: %s", path);
    }
    memcpy(dir, path, len);
    dir[len] = '\0';

    return mv_dir_fsync(dir, err);
}


int
mv_file_commit(int fd, int rc, const char *tmp, const char *path,
    mv_err_t *err)
{
    if (rc == MV_OK && fsync(fd) != 0) {
        rc = mv_err_set(err, "fsync(%s): %s", tmp, strerror(errno));
    }
    if (close(fd) != 0 && rc == MV_OK) {
        rc = mv_err_set(err, "close(%s): %s", tmp, strerror(errno));
    }
    if (rc == MV_OK && rename(tmp, path) != 0) {
        rc = mv_err_set(err, "rename(%s, %s): %s", tmp, path,
                        strerror(errno));
    }
    if (rc != MV_OK) {
        unlink(tmp);
        return MV_ERR;
    }
    return MV_OK;
}


int
mv_file_open_temp(const char *path, char *tmp, size_t tmp_len,
    mv_err_t *err)
{
    int  fd, attempt, n;

    for (attempt = 0; attempt < 16; attempt++) {
        n = snprintf(tmp, tmp_len, "%s.tmp-%ld-%016llx", path,
                     (long) getpid(), (unsigned long long) mv_random_u64());
        if (n < 0 || (size_t) n >= tmp_len) {
            return mv_err_set(err, "path too long: %s", path);
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            return fd;
        }
        if (errno != EEXIST) {
            return mv_err_set(err, "open(%s): %s", tmp, strerror(errno));
        }
    }

    return mv_err_set(err, "open(%s): could not find a free temp name", tmp);
}


int
mv_file_write_all(int fd, const void *buf, size_t len, const char *path,
    mv_err_t *err)
{
    const char  *p = buf;
    ssize_t      n;

    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return mv_err_set(err, "write(%s): %s", path,
                              n < 0 ? strerror(errno) : "short write");
        }
        p += n;
        len -= (size_t) n;
    }
    return MV_OK;
}


int
mv_symlink_replace(const char *dir, const char *link, const char *target,
    mv_err_t *err)
{
    char  path[PATH_MAX], tmp[PATH_MAX];
    int   n;

    n = snprintf(path, sizeof(path), "%s/%s", dir, link);
    if (n < 0 || (size_t) n >= sizeof(path)) {
        return mv_err_set(err, "path too long: %s", dir);
    }
    n = snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-%ld-%016llx", dir, link,
                 (long) getpid(), (unsigned long long) mv_random_u64());
    if (n < 0 || (size_t) n >= sizeof(tmp)) {
        return mv_err_set(err, "path too long: %s", dir);
    }

    if (symlink(target, tmp) != 0) {
        return mv_err_set(err, "symlink(%s): %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        mv_err_set(err, "rename(%s, %s): %s", tmp, path, strerror(errno));
        unlink(tmp);
        return MV_ERR;
    }

    return mv_dir_fsync(dir, err);
}
