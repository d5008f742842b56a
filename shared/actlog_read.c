/*
 * actlog_read.c -- the action log's tailing reader (see actlog.h for the
 * format and the contract, actlog.c for framing and the appender).
 *
 * Reader.  Reads with pread into a buffer that caches bytes [buf_off,
 * buf_off + buf_len) of the current segment; a request the cache does not
 * cover entirely is read afresh from its offset (never stitched onto cached
 * bytes: a failed append's bytes may have been cut back and overwritten
 * since), and the cache is dropped whenever the reader returns 0.
 *
 * At the current offset the reader probes for a record: a valid one is
 * returned; otherwise (damage, or an incomplete record) it scans forward for
 * the next offset where a complete valid record starts (candidates are the
 * FF bytes; the magic's first byte).  If one is found, everything before it
 * is skipped as one run.  If none is found the segment's state decides: a
 * sealed segment (a higher-numbered segment exists) is skipped to its end and
 * the reader moves on; in the newest segment the reader waits, after
 * skipping damage that cannot be the start of a record in progress (up to
 * the first candidate that is a valid prefix of a record).  Sealedness is
 * checked before the bytes are read, so a record written just before the
 * rotation is never mistaken for a torn one.  Consecutive skips with no
 * record between them count as one run.
 *
 * Segments that are missing when the reader gets to them (retention removed
 * them first) count as one skipped run each time the reader jumps over some;
 * their bytes are unknown and not counted.  When the missing one is the
 * starting segment, the next call also returns MV_ERR, once, with the reason
 * in err, after moving to the next segment present.  A start position
 * beyond the newest segment is an error on every call.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actlog.h"
#include "actlog_internal.h"


#define ACTLOG_READ_AHEAD   (64u << 10)

/* probe() results besides a record size */
#define PROBE_INCOMPLETE    0
#define PROBE_INVALID       (-1)
#define PROBE_IO_ERROR      (-2)


struct mv_actlog_reader {
    char               *dir;
    uint64_t            seq;        /* 0: the oldest, not chosen yet */
    uint64_t            off;
    int                 fd;         /* -1 when closed */
    int                 sealed;     /* seq is known sealed */
    int                 opened;     /* a segment was opened once */
    uint8_t            *buf;
    size_t              cap;
    uint64_t            buf_off;    /* file offset of buf[0] */
    size_t              buf_len;
    uint64_t            skip_seq;   /* where the last skip ended */
    uint64_t            skip_end;
    mv_actlog_stats_t   stats;
};


/* ---- reader ----------------------------------------------------------- */

/* Opens a reader of dir at pos; nothing is opened before the first read. */
mv_actlog_reader_t *
mv_actlog_reader_new(const char *dir, mv_actlog_pos_t pos, mv_err_t *err)
{
    mv_actlog_reader_t  *r;

    if (dir == NULL || dir[0] == '\0') {
        mv_err_set(err, "no directory");
        return NULL;
    }

    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->dir = strdup(dir)) == NULL) {
        free(r);
        mv_err_set(err, "out of memory");
        return NULL;
    }
    r->fd = -1;
    r->seq = pos.segment;
    r->off = pos.segment == 0 ? 0 : pos.offset;

    return r;
}


static void
reader_close(mv_actlog_reader_t *r)
{
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    r->sealed = 0;
    r->buf_len = 0;
}


/* Counts bytes [from, to) of the current segment as skipped. */
static void
reader_skip(mv_actlog_reader_t *r, uint64_t from, uint64_t to)
{
    if (to <= from) {
        return;
    }
    if (r->skip_seq != r->seq || r->skip_end != from) {
        r->stats.skipped_runs++;
    }
    r->stats.skipped_bytes += to - from;
    r->skip_seq = r->seq;
    r->skip_end = to;
}


/* Moves to segment seq at offset 0. */
static void
reader_move(mv_actlog_reader_t *r, uint64_t seq)
{
    reader_close(r);
    r->seq = seq;
    r->off = 0;
}


/*
 * Opens the current segment.  Returns 1 when open, 0 when there is nothing
 * to read yet, MV_ERR on an error (or, once, when the starting segment is
 * gone: the reader has then moved on to the next one present).
 */
static int
reader_open(mv_actlog_reader_t *r, mv_err_t *err)
{
    char        path[PATH_MAX];
    mv_actlog_seg_scan_t  scan;
    uint64_t    gone;
    int         fd;

    for (;;) {
        if (r->seq == 0) {
            if (mv_actlog_scan_segments(r->dir, 0, &scan, err) != MV_OK) {
                return MV_ERR;
            }
            if (scan.lowest == 0) {
                return 0;
            }
            r->seq = scan.lowest;
            r->off = 0;
        }

        if (mv_actlog_segment_path(r->dir, r->seq, path, sizeof(path), err)
            != MV_OK)
        {
            return MV_ERR;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            r->fd = fd;
            r->sealed = 0;
            r->buf_len = 0;
            r->opened = 1;
            return 1;
        }
        if (errno != ENOENT) {
            return mv_err_set(err, "open(%s): %s", path, strerror(errno));
        }

        /* Missing: removed before it was read, or not written yet. */
        if (mv_actlog_scan_segments(r->dir, r->seq, &scan, err) != MV_OK) {
            return MV_ERR;
        }
        if (scan.above == 0) {
            if (!r->opened && scan.highest != 0) {
                return mv_err_set(err, "start segment %llu is beyond the "
                                  "newest segment (%llu) of %s",
                                  (unsigned long long) r->seq,
                                  (unsigned long long) scan.highest, r->dir);
            }
            return 0;
        }

        gone = r->seq;
        r->stats.skipped_runs++;
        reader_move(r, scan.above);
        if (!r->opened) {
            return mv_err_set(err, "start segment %llu of %s is gone "
                              "(removed by retention?); continuing at "
                              "segment %llu", (unsigned long long) gone,
                              r->dir, (unsigned long long) r->seq);
        }
    }
}


/*
 * Whether a segment numbered above the current one exists.  *next receives
 * the smallest such.  Returns 1, 0, or MV_ERR.
 */
static int
reader_sealed(mv_actlog_reader_t *r, uint64_t *next, mv_err_t *err)
{
    char         path[PATH_MAX];
    struct stat  st;
    mv_actlog_seg_scan_t   scan;

    if (mv_actlog_segment_path(r->dir, r->seq + 1, path, sizeof(path), err) != MV_OK) {
        return MV_ERR;
    }
    if (stat(path, &st) == 0) {
        *next = r->seq + 1;
        return 1;
    }

    if (mv_actlog_scan_segments(r->dir, r->seq, &scan, err) != MV_OK) {
        return MV_ERR;
    }
    *next = scan.above;
    return scan.above != 0;
}


/*
 * Makes file bytes [off, off + n) available in the cache as far as the file
 * holds them; *avail receives how many bytes from off are cached (possibly
 * more than n; fewer only at the end of the file).
 */
static int
reader_fill(mv_actlog_reader_t *r, uint64_t off, size_t n, size_t *avail,
    mv_err_t *err)
{
    uint8_t  *grown;
    size_t    want, cap;
    ssize_t   got;

    if (off >= r->buf_off && off - r->buf_off <= r->buf_len
        && r->buf_len - (size_t) (off - r->buf_off) >= n)
    {
        *avail = r->buf_len - (size_t) (off - r->buf_off);
        return MV_OK;
    }

    want = n < ACTLOG_READ_AHEAD ? ACTLOG_READ_AHEAD : n;
    if (want > r->cap) {
        cap = r->cap == 0 ? ACTLOG_READ_AHEAD : r->cap;
        while (cap < want) {
            cap *= 2;
        }
        grown = realloc(r->buf, cap);
        if (grown == NULL) {
            return mv_err_set(err, "out of memory (%zu bytes)", cap);
        }
        r->buf = grown;
        r->cap = cap;
    }

    r->buf_off = off;
    r->buf_len = 0;
    while (r->buf_len < want) {
        got = pread(r->fd, r->buf + r->buf_len, want - r->buf_len,
                    (off_t) (off + r->buf_len));
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            mv_err_set(err, "read(%s, segment %llu): %s", r->dir,
                       (unsigned long long) r->seq, strerror(errno));
            r->buf_len = 0;
            return MV_ERR;
        }
        if (got == 0) {
            break;
        }
        r->buf_len += (size_t) got;
    }

    *avail = r->buf_len;
    return MV_OK;
}


/*
 * Looks for a record at off: its size when complete and valid (rec's type,
 * payload and len filled), PROBE_INCOMPLETE when the bytes up to the end of
 * the file are a prefix of one, PROBE_INVALID, or PROBE_IO_ERROR.  *avail
 * receives the bytes available at off (0: off is at or past the end).
 */
static long
reader_probe(mv_actlog_reader_t *r, uint64_t off, mv_actlog_record_t *rec,
    size_t *avail, mv_err_t *err)
{
    const uint8_t  *p;
    long            rc;

    if (reader_fill(r, off, MV_ACTLOG_HEADER_SIZE, avail, err) != MV_OK) {
        return PROBE_IO_ERROR;
    }
    p = r->buf + (off - r->buf_off);
    rc = mv_actlog_decode(p, *avail, &rec->type, &rec->payload, &rec->len);

    if (rc == 0 && *avail >= MV_ACTLOG_HEADER_SIZE) {
        if (reader_fill(r, off, MV_ACTLOG_HEADER_SIZE + get_le32(p + 4),
                        avail, err) != MV_OK)
        {
            return PROBE_IO_ERROR;
        }
        p = r->buf + (off - r->buf_off);
        rc = mv_actlog_decode(p, *avail, &rec->type, &rec->payload,
                              &rec->len);
    }

    return rc;
}


/*
 * Scans from offset from for the first complete valid record.  Returns 1
 * with its offset in *found, 0 when there is none up to the end of the
 * file (whose offset *eof receives), MV_ERR on an I/O error.  *prefix
 * receives the first offset whose bytes are a possible record still
 * incomplete (UINT64_MAX when none).  Candidates are the offsets where the
 * magic's first byte sits.
 */
static int
reader_resync(mv_actlog_reader_t *r, uint64_t from, uint64_t *found,
    uint64_t *prefix, uint64_t *eof, mv_err_t *err)
{
    mv_actlog_record_t   rec;
    const uint8_t       *p, *hit;
    size_t               avail;
    uint64_t             at;
    long                 rc;

    *prefix = UINT64_MAX;

    for (;;) {
        if (reader_fill(r, from, 1, &avail, err) != MV_OK) {
            return MV_ERR;
        }
        if (avail == 0) {
            *eof = from;
            return 0;
        }
        p = r->buf + (from - r->buf_off);
        hit = memchr(p, actlog_magic[0], avail);
        if (hit == NULL) {
            from += avail;
            continue;
        }
        at = from + (uint64_t) (hit - p);

        rc = reader_probe(r, at, &rec, &avail, err);
        if (rc == PROBE_IO_ERROR) {
            return MV_ERR;
        }
        if (rc > 0) {
            *found = at;
            return 1;
        }
        if (rc == PROBE_INCOMPLETE && *prefix == UINT64_MAX) {
            *prefix = at;
        }
        from = at + 1;
    }
}


/*
 * Reads the next record (see actlog.h): 1 with rec filled, 0 when none is
 * available now, MV_ERR on an I/O error.  When the starting segment is gone
 * the call also returns MV_ERR (with the reason in err), once: the reader
 * has moved on to the next segment present and the next call reads from it.
 */
int
mv_actlog_next(mv_actlog_reader_t *r, mv_actlog_record_t *rec,
    mv_err_t *err)
{
    mv_actlog_record_t  got;
    size_t              avail;
    uint64_t            found, prefix, eof, next;
    long                n;
    int                 rc, sealed;

    for (;;) {
        if (r->fd < 0) {
            rc = reader_open(r, err);
            if (rc <= 0) {
                r->buf_len = 0;
                return rc;
            }
        }

        /* Observed before reading: a sealed segment's end is final. */
        sealed = r->sealed;

        n = reader_probe(r, r->off, &got, &avail, err);
        if (n == PROBE_IO_ERROR) {
            return MV_ERR;
        }
        if (n > 0) {
            got.pos.segment = r->seq;
            got.pos.offset = r->off;
            r->off += (uint64_t) n;
            got.next.segment = r->seq;
            got.next.offset = r->off;
            r->stats.records++;
            *rec = got;
            return 1;
        }

        /* Damage, an incomplete record, or the end of the segment. */
        prefix = UINT64_MAX;
        eof = r->off;
        if (avail > 0) {
            rc = reader_resync(r, r->off + 1, &found, &prefix, &eof, err);
            if (rc == MV_ERR) {
                return MV_ERR;
            }
            if (rc == 1) {
                reader_skip(r, r->off, found);      /* torn or damaged */
                r->off = found;
                continue;
            }
        }

        if (!sealed) {
            rc = reader_sealed(r, &next, err);
            if (rc == MV_ERR) {
                return MV_ERR;
            }
            if (rc == 1) {
                r->sealed = 1;
                continue;                   /* read it again, to its end */
            }

            /* The newest segment: wait, past damage that cannot be the
               start of a write in progress. */
            if (n == PROBE_INVALID) {
                eof = prefix != UINT64_MAX ? prefix : eof;
                reader_skip(r, r->off, eof);
                r->off = eof;
            }
            r->buf_len = 0;
            return 0;
        }

        /* Sealed and no record follows: the rest is torn or damaged. */
        reader_skip(r, r->off, eof);
        if (reader_sealed(r, &next, err) == MV_ERR) {
            return MV_ERR;
        }
        if (next == 0) {
            next = r->seq + 1;
        }
        if (next > r->seq + 1) {
            r->stats.skipped_runs++;        /* segments removed unread */
        }
        reader_move(r, next);
    }
}


mv_actlog_pos_t
mv_actlog_reader_pos(const mv_actlog_reader_t *r)
{
    mv_actlog_pos_t  pos;

    pos.segment = r->seq;
    pos.offset = r->off;
    return pos;
}


void
mv_actlog_reader_stats(const mv_actlog_reader_t *r, mv_actlog_stats_t *stats)
{
    *stats = r->stats;
}


void
mv_actlog_reader_free(mv_actlog_reader_t *r)
{
    if (r == NULL) {
        return;
    }
    reader_close(r);
    free(r->buf);
    free(r->dir);
    free(r);
}
