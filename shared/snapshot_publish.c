/*
 * snapshot_publish.c -- publishes snapshots into a directory of generations
 * and lists them (see snapshot.h for the contract; the file itself is
 * written by snapshot_write.c).
 *
 * Publishing names the file by generation (snapshot-<20 digits>.mvs, so
 * names sort like generations), swaps `current` by renaming a fresh symlink
 * (relative target) over it, fsyncs the directory, and then removes the
 * oldest snapshot files beyond `keep`, never the one `current` names.
 * Failing to remove an old file does not fail the publish (it is already
 * visible); the next publish retries.  Republishing an existing generation
 * replaces that file atomically (readers that mapped the old one keep it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "snapshot.h"


#define SNAP_NAME_PREFIX   "snapshot-"
#define SNAP_NAME_SUFFIX   ".mvs"
#define SNAP_NAME_LEN      (9 + MV_SEQNAME_DIGITS + 4)


/* ---- publishing --------------------------------------------------------- */

/* Parses "snapshot-<20 digits>.mvs"; returns 1 and the generation if so. */
static int
parse_snapshot_name(const char *name, uint64_t *generation)
{
    return mv_seqname_parse(name, SNAP_NAME_PREFIX, SNAP_NAME_SUFFIX,
                            generation);
}


static int
generation_desc(const void *a, const void *b)
{
    uint64_t  x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x > y ? -1 : (x < y);
}


int
mv_snapshot_generations(const char *dir, uint64_t **gens_out, size_t *n_out,
    mv_err_t *err)
{
    DIR            *d;
    struct dirent  *e;
    uint64_t       *gens = NULL, *grown, gen;
    size_t          n = 0, cap = 0;

    *gens_out = NULL;
    *n_out = 0;
    d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) {
            return MV_OK;
        }
        return mv_err_set(err, "opendir(%s): %s", dir, strerror(errno));
    }

    while ((e = readdir(d)) != NULL) {
        if (!parse_snapshot_name(e->d_name, &gen)) {
            continue;
        }
        if (n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            grown = realloc(gens, cap * sizeof(*gens));
            if (grown == NULL) {
                free(gens);
                closedir(d);
                return mv_err_set(err, "out of memory listing %s", dir);
            }
            gens = grown;
        }
        gens[n++] = gen;
    }
    closedir(d);

    if (n > 1) {
        qsort(gens, n, sizeof(*gens), generation_desc);
    }
    *gens_out = gens;
    *n_out = n;
    return MV_OK;
}


int
mv_snapshot_newest_generation(const char *dir, uint64_t *newest,
    mv_err_t *err)
{
    uint64_t  *gens;
    size_t     n;

    *newest = 0;
    if (mv_snapshot_generations(dir, &gens, &n, err) != MV_OK) {
        return MV_ERR;
    }
    if (n > 0) {
        *newest = gens[0];
    }
    free(gens);
    return MV_OK;
}


/*
 * Removes snapshot files beyond the newest keep, never current_name.
 * Best effort: errors leave files behind for the next publish.
 */
static void
remove_old(const char *dir, unsigned keep, const char *current_name)
{
    uint64_t  *gens;
    size_t     n, i;
    char       name[SNAP_NAME_LEN + 1], path[PATH_MAX];
    int        len;

    if (mv_snapshot_generations(dir, &gens, &n, NULL) != MV_OK) {
        return;
    }

    for (i = keep; i < n; i++) {
        mv_seqname_format(SNAP_NAME_PREFIX, gens[i], SNAP_NAME_SUFFIX, name,
                          sizeof(name));
        if (strcmp(name, current_name) == 0) {
            continue;
        }
        len = snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (len > 0 && (size_t) len < sizeof(path)) {
            unlink(path);
        }
    }

    free(gens);
}


/*
 * Writes dir/snapshot-<generation>.mvs, points dir/current at it, fsyncs
 * dir and removes snapshot files beyond the newest keep (see snapshot.h).
 */
int
mv_snapshot_publish(const char *dir, const mv_snapshot_input_t *in,
    unsigned keep, char *path_out, size_t path_out_len, mv_err_t *err)
{
    char     name[SNAP_NAME_LEN + 1], path[PATH_MAX];
    char     current[PATH_MAX], target[SNAP_NAME_LEN + 2];
    ssize_t  target_len;
    int      n;

    if (keep < 1) {
        return mv_err_set(err, "keep must be >= 1");
    }

    mv_seqname_format(SNAP_NAME_PREFIX, in->generation, SNAP_NAME_SUFFIX,
                      name, sizeof(name));
    n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t) n >= sizeof(path)) {
        return mv_err_set(err, "path too long: %s", dir);
    }
    n = snprintf(current, sizeof(current), "%s/current", dir);
    if (n < 0 || (size_t) n >= sizeof(current)) {
        return mv_err_set(err, "path too long: %s", dir);
    }
    if (path_out != NULL && strlen(path) >= path_out_len) {
        return mv_err_set(err, "path_out too small for %s", path);
    }

    if (mv_snapshot_write(path, in, err) != MV_OK
        || mv_symlink_replace(dir, "current", name, err) != MV_OK)
    {
        return MV_ERR;
    }

    if (path_out != NULL) {
        memcpy(path_out, path, strlen(path) + 1);
    }

    /* Whatever `current` names now (normally our file) is never removed. */
    target_len = readlink(current, target, sizeof(target) - 1);
    if (target_len < 0) {
        target_len = 0;
    }
    target[target_len] = '\0';
    remove_old(dir, keep, target_len > 0 ? target : name);

    return MV_OK;
}


/* 1 when name is a temp file of a publisher of dir (see snapshot.h). */
static int
is_temp_name(const char *name)
{
    static const char *const  prefixes[] = {
        "snapshot-", "gen-", "items-", "users-"
    };
    size_t                    i;

    if (strncmp(name, ".current.tmp-", 13) == 0) {
        return 1;
    }
    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0
            && strstr(name, ".tmp-") != NULL)
        {
            return 1;
        }
    }
    return 0;
}


int
mv_snapshot_remove_temps(const char *dir, mv_err_t *err)
{
    DIR            *dh;
    struct dirent  *de;
    char            path[PATH_MAX];
    int             removed = 0, n;

    dh = opendir(dir);
    if (dh == NULL) {
        return mv_err_set(err, "opendir(%s): %s", dir, strerror(errno));
    }
    while ((de = readdir(dh)) != NULL) {
        if (!is_temp_name(de->d_name)) {
            continue;
        }
        n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (n > 0 && (size_t) n < sizeof(path) && unlink(path) == 0) {
            removed++;
        }
    }
    closedir(dh);
    return removed;
}
