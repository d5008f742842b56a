/*
 * actlog_trim.c -- the action log's disk use and its one deletion function
 * (see "Retention" in actlog.h for the rules; the registrations it reads
 * are actlog_consumers.c).
 *
 * What mv_actlog_trim must never do, and why it cannot:
 *   - remove a segment a writer appends to: writers append to the newest
 *     segment present or create the next one, and the newest is never a
 *     candidate (the list is taken once; a rotation meanwhile only adds
 *     a higher number);
 *   - remove what a live consumer still has to read: every candidate is
 *     numbered below the lowest segment of the live (and damaged)
 *     registrations, read under the consumers' lock, which a registration
 *     also takes, so no consumer can register unseen while the trim runs;
 *   - leave a hole: candidates are taken oldest first and the first one
 *     that stays ends the trim; an unlink that fails ends it too.
 * Expired registrations are removed under the same lock, before the
 * segments, so the report and the directory agree.
 *
 * Cost: one readdir of the log directory with an fstatat per segment, one
 * of the consumers' directory, a read of each registration, and one
 * unlink per removed segment.  The directory is not fsync'd after the
 * unlinks: a removal lost in a crash leaves an old segment that the next
 * trim removes again, and that no consumer reads (all are past it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actlog.h"
#include "actlog_internal.h"
#include "files.h"


typedef struct {
    uint64_t  seq;
    uint64_t  bytes;
    int64_t   mtime_ms;
} seg_t;


static int
by_seq(const void *a, const void *b)
{
    uint64_t  x = ((const seg_t *) a)->seq, y = ((const seg_t *) b)->seq;

    return x < y ? -1 : x > y;
}


typedef struct {
    const char  *dir;
    seg_t       *segs;
    size_t       n;
    size_t       cap;
} seg_list_t;


/* Adds segment name (seq) with its size and mtime; one removed meanwhile
   is left out. */
static int
list_one(void *arg, int dfd, const char *name, uint64_t seq, mv_err_t *err)
{
    seg_list_t   *l = arg;
    seg_t        *grown;
    struct stat   st;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return MV_OK;
        }
        return mv_err_set(err, "stat(%s/%s): %s", l->dir, name,
                          strerror(errno));
    }
    if (l->n == l->cap) {
        l->cap = l->cap == 0 ? 64 : l->cap * 2;
        grown = realloc(l->segs, l->cap * sizeof(*grown));
        if (grown == NULL) {
            return mv_err_set(err, "out of memory");
        }
        l->segs = grown;
    }
    l->segs[l->n].seq = seq;
    l->segs[l->n].bytes = (uint64_t) st.st_size;
    l->segs[l->n].mtime_ms = (int64_t) st.st_mtim.tv_sec * 1000
                             + st.st_mtim.tv_nsec / 1000000;
    l->n++;
    return MV_OK;
}


/*
 * Lists the segments of dir with their sizes and mtimes, sorted by number,
 * into *segs (malloc'd, NULL when none) and *n.  A missing dir has none.
 */
static int
list_segments(const char *dir, seg_t **segs, size_t *n, mv_err_t *err)
{
    seg_list_t  l = { dir, NULL, 0, 0 };

    *segs = NULL;
    *n = 0;
    if (mv_actlog_each_segment(dir, list_one, &l, err) != MV_OK) {
        free(l.segs);
        return MV_ERR;
    }
    if (l.n > 1) {
        qsort(l.segs, l.n, sizeof(*l.segs), by_seq);
    }
    *segs = l.segs;
    *n = l.n;
    return MV_OK;
}


/* Sums segs[from .. n) into u. */
static void
usage_of(const seg_t *segs, size_t from, size_t n, mv_actlog_usage_t *u)
{
    memset(u, 0, sizeof(*u));
    for (size_t i = from; i < n; i++) {
        u->segments++;
        u->bytes += segs[i].bytes;
    }
    if (from < n) {
        u->lowest = segs[from].seq;
        u->highest = segs[n - 1].seq;
    }
}


int
mv_actlog_usage(const char *dir, mv_actlog_usage_t *u, mv_err_t *err)
{
    seg_t   *segs;
    size_t   n;

    memset(u, 0, sizeof(*u));
    if (dir == NULL || dir[0] == '\0') {
        return mv_err_set(err, "no directory");
    }
    if (list_segments(dir, &segs, &n, err) != MV_OK) {
        return MV_ERR;
    }
    usage_of(segs, 0, n, u);
    free(segs);
    return MV_OK;
}


int
mv_actlog_bytes_after(const char *dir, mv_actlog_pos_t pos, uint64_t *bytes,
    mv_err_t *err)
{
    seg_t   *segs;
    size_t   n;

    *bytes = 0;
    if (dir == NULL || dir[0] == '\0') {
        return mv_err_set(err, "no directory");
    }
    if (list_segments(dir, &segs, &n, err) != MV_OK) {
        return MV_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        if (segs[i].seq > pos.segment) {
            *bytes += segs[i].bytes;
        } else if (segs[i].seq == pos.segment && segs[i].bytes > pos.offset) {
            *bytes += segs[i].bytes - pos.offset;
        }
    }
    free(segs);
    return MV_OK;
}


/* 1 when a is before b. */
static int
pos_before(mv_actlog_pos_t a, mv_actlog_pos_t b)
{
    return a.segment < b.segment
           || (a.segment == b.segment && a.offset < b.offset);
}


/*
 * Reads the registrations (the lock is held): sets rep's counts, names and
 * floor (the lowest live position; (0, 0) when a damaged one holds the
 * whole log) and removes the files of expired ones.  Returns 1 when some
 * registration holds the log (so that something may be removed), 0 when
 * none does, MV_ERR.
 */
static int
read_floor(const char *dir, const mv_actlog_retention_t *r, int64_t now_ms,
    mv_actlog_trim_report_t *rep, mv_err_t *err)
{
    char                   path[PATH_MAX];
    mv_actlog_consumer_t  *list, *c;
    size_t                 n, i;
    int                    held = 0;

    if (mv_actlog_consumers(dir, &list, &n, err) != MV_OK) {
        return MV_ERR;
    }

    for (i = 0; i < n; i++) {
        c = &list[i];

        if (r->expire_ms > 0 && now_ms - c->updated_ms >= r->expire_ms) {
            if (rep->expired++ == 0) {
                memcpy(rep->expired_name, c->name, sizeof(c->name));
            }
            if (mv_actlog_consumer_path(dir, c->name, path, sizeof(path),
                                        NULL) == MV_OK)
            {
                (void) unlink(path);   /* failing: expired again next time */
            }
            continue;
        }

        if (c->damaged) {
            if (rep->damaged++ == 0) {
                memcpy(rep->damaged_name, c->name, sizeof(c->name));
                memcpy(rep->damaged_why, c->note, sizeof(c->note));
            }
            c->pos.segment = 0;
            c->pos.offset = 0;
        } else {
            rep->live++;
        }

        if (!held || pos_before(c->pos, rep->floor)) {
            rep->floor = c->pos;
            memcpy(rep->held_by, c->name, sizeof(c->name));
        }
        held = 1;
    }

    free(list);
    return held;
}


int
mv_actlog_trim(const char *dir, const mv_actlog_retention_t *r,
    int64_t now_ms, mv_actlog_trim_report_t *rep, mv_err_t *err)
{
    char      path[PATH_MAX];
    seg_t    *segs = NULL;
    size_t    n = 0, i = 0;
    uint64_t  bytes;
    int       fd, rc, held;

    memset(rep, 0, sizeof(*rep));
    rep->stop = MV_ACTLOG_STOP_NEWEST;
    if (dir == NULL || dir[0] == '\0' || r == NULL) {
        rep->stop = MV_ACTLOG_STOP_ERROR;
        return mv_err_set(err, "no directory or retention");
    }

    rc = mv_actlog_consumers_lock(dir, 0, 0, &fd, err);
    if (rc == MV_ERR) {
        rep->stop = MV_ACTLOG_STOP_ERROR;
        return MV_ERR;
    }
    if (rc == 0) {
        rep->stop = MV_ACTLOG_STOP_BUSY;
        return mv_actlog_usage(dir, &rep->left, err);
    }

    /* no consumers directory (fd -1): nobody holds anything */
    held = fd < 0 ? 0 : read_floor(dir, r, now_ms, rep, err);
    if (held == MV_ERR || list_segments(dir, &segs, &n, err) != MV_OK) {
        rep->stop = MV_ACTLOG_STOP_ERROR;
        rc = MV_ERR;
        goto done;
    }
    if (!held) {
        rep->stop = MV_ACTLOG_STOP_CONSUMER;
    }

    bytes = 0;
    for (size_t k = 0; k < n; k++) {
        bytes += segs[k].bytes;
    }

    rc = MV_OK;
    for (i = 0; held && i + 1 < n; i++) {
        if (segs[i].seq >= rep->floor.segment) {
            rep->stop = MV_ACTLOG_STOP_CONSUMER;
            break;
        }
        if (now_ms - segs[i].mtime_ms < r->keep_ms
            && (r->max_bytes == 0 || bytes <= r->max_bytes))
        {
            rep->stop = MV_ACTLOG_STOP_RETENTION;
            break;
        }
        if (mv_actlog_segment_path(dir, segs[i].seq, path, sizeof(path),
                                   err) != MV_OK)
        {
            rc = MV_ERR;
        } else if (unlink(path) != 0 && errno != ENOENT) {
            rc = mv_err_set(err, "unlink(%s): %s", path, strerror(errno));
        }
        if (rc != MV_OK) {
            rep->stop = MV_ACTLOG_STOP_ERROR;
            break;
        }
        rep->removed_segments++;
        rep->removed_bytes += segs[i].bytes;
        bytes -= segs[i].bytes;
    }

done:

    usage_of(segs, i, n, &rep->left);
    free(segs);
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}
