/*
 * actlog.c -- the embedded action log: record framing, the appender and the
 * tailing reader (see actlog.h for the format and the contract).
 *
 * Framing.  mv_actlog_decode checks a record field by field in file order
 * (magic, length, type, flags, CRC) and stops at the first byte it lacks, so
 * every strict prefix of a valid record decodes as "incomplete" (0) and any
 * bad field seen so far as "no record here" (-1).  Type 0 and non-zero flags
 * are damage; mv_actlog_frame refuses to produce them.
 *
 * Writer.  The caller holds the writers' lock, so an fstat before the write
 * gives the exact offset the record lands at (O_APPEND) and the size to cut
 * back to.  The record is framed into a buffer the writer owns and grows,
 * then written with one write(): a short write or an error is cut back with
 * ftruncate and reported, so a failed append leaves nothing behind.  With
 * sync the record is fdatasync'd; a failed fdatasync is cut back too (a
 * reader may have seen the record by then: the writer's caller is told it
 * failed, and the reader resynchronises on whatever is written there next).
 * Rotation happens after a successful append that brings the segment to the
 * rotation size: *shared_seq is advanced first, then segment seq + 1 is
 * created and the directory fsync'd, so no writer appends to the full
 * segment again even if the rotating one dies in between.  If creating the
 * file fails the append still succeeded (the record is in the log); the
 * next append opens (creates) the new segment and reports the failure then,
 * with nothing appended.  A writer that finds its segment already full
 * (found by discovery, or written with a larger size limit) rotates before
 * writing, which also keeps offsets packable (below 2^40).
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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actlog.h"
#include "crc32c.h"


#define ACTLOG_PREFIX       "actions-"
#define ACTLOG_SUFFIX       ".log"
#define ACTLOG_NAME_LEN     (8 + 20 + 4)
#define ACTLOG_NAME_SIZE    64
#define ACTLOG_READ_AHEAD   (64u << 10)
#define ACTLOG_MAX_SEQ      ((1ull << 24) - 1)
#define ACTLOG_MAX_RECORD   (MV_ACTLOG_HEADER_SIZE + MV_ACTLOG_MAX_PAYLOAD)

/* probe() results besides a record size */
#define PROBE_INCOMPLETE    0
#define PROBE_INVALID       (-1)
#define PROBE_IO_ERROR      (-2)

static const uint8_t  actlog_magic[4] = { 0xff, 0x4d, 0x56, 0xfe };


struct mv_actlog_writer {
    char      *dir;
    uint64_t   segment_bytes;
    int        sync;
    int        fd;              /* -1 when closed */
    uint64_t   seq;             /* the segment fd is open on */
    uint8_t   *buf;             /* framing buffer */
    size_t     cap;
};


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


/* ---- positions, names, framing ------------------------------------- */

uint64_t
mv_actlog_pos_pack(mv_actlog_pos_t pos)
{
    return (pos.segment << 40) | (pos.offset & MV_ACTLOG_SEGMENT_MAX);
}


mv_actlog_pos_t
mv_actlog_pos_unpack(uint64_t packed)
{
    mv_actlog_pos_t  pos;

    pos.segment = packed >> 40;
    pos.offset = packed & MV_ACTLOG_SEGMENT_MAX;
    return pos;
}


/*
 * Writes "actions-<seq, 20 digits>.log" into buf (truncated, but always
 * NUL-terminated, when len is too small: the name is 32 characters, so a
 * complete one needs 33 bytes).
 */
char *
mv_actlog_segment_name(uint64_t seq, char *buf, size_t len)
{
    if (len > 0) {
        snprintf(buf, len, ACTLOG_PREFIX "%020llu" ACTLOG_SUFFIX,
                 (unsigned long long) seq);
    }
    return buf;
}


static void
put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
}


static void
put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}


static uint16_t
get_le16(const uint8_t *p)
{
    return (uint16_t) (p[0] | (p[1] << 8));
}


static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8)
           | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}


/*
 * Frames header + payload into buf.  Returns the record's size, or 0 when
 * cap is too small, len is 0 or above MV_ACTLOG_MAX_PAYLOAD, or type is 0
 * (which readers treat as damage).
 */
size_t
mv_actlog_frame(uint16_t type, const void *payload, size_t len, void *buf,
    size_t cap)
{
    uint8_t   *p = buf;
    uint32_t   crc;

    if (len == 0 || len > MV_ACTLOG_MAX_PAYLOAD || type == 0
        || payload == NULL || buf == NULL
        || cap < MV_ACTLOG_HEADER_SIZE + len)
    {
        return 0;
    }

    memcpy(p, actlog_magic, sizeof(actlog_magic));
    put_le32(p + 4, (uint32_t) len);
    put_le16(p + 8, type);
    put_le16(p + 10, 0);
    crc = mv_crc32c(0, p + 4, 8);
    crc = mv_crc32c(crc, payload, len);
    put_le32(p + 12, crc);
    memmove(p + MV_ACTLOG_HEADER_SIZE, payload, len);

    return MV_ACTLOG_HEADER_SIZE + len;
}


/*
 * Decodes the record at buf[0 .. avail): its size when complete and valid,
 * 0 when the bytes are a strict prefix of a possible record, -1 when no
 * record starts there (bad magic, length, type, flags or CRC).
 */
long
mv_actlog_decode(const void *buf, size_t avail, uint16_t *type,
    const void **payload, uint32_t *len)
{
    const uint8_t  *p = buf;
    size_t          i;
    uint32_t        n, crc;

    for (i = 0; i < sizeof(actlog_magic); i++) {
        if (i == avail) {
            return 0;
        }
        if (p[i] != actlog_magic[i]) {
            return -1;
        }
    }

    if (avail < 8) {
        return 0;
    }
    n = get_le32(p + 4);
    if (n == 0 || n > MV_ACTLOG_MAX_PAYLOAD) {
        return -1;
    }

    if (avail < 10) {
        return 0;
    }
    if (get_le16(p + 8) == 0) {
        return -1;
    }

    if (avail < 12) {
        return 0;
    }
    if (get_le16(p + 10) != 0) {
        return -1;
    }

    if (avail < MV_ACTLOG_HEADER_SIZE + (size_t) n) {
        return 0;
    }
    crc = mv_crc32c(0, p + 4, 8);
    crc = mv_crc32c(crc, p + MV_ACTLOG_HEADER_SIZE, n);
    if (crc != get_le32(p + 12)) {
        return -1;
    }

    if (type != NULL) {
        *type = get_le16(p + 8);
    }
    if (payload != NULL) {
        *payload = p + MV_ACTLOG_HEADER_SIZE;
    }
    if (len != NULL) {
        *len = n;
    }
    return (long) (MV_ACTLOG_HEADER_SIZE + n);
}


/* ---- directory helpers -------------------------------------------------- */

/* Parses "actions-<20 digits>.log"; returns 1 and the number if so. */
static int
parse_segment_name(const char *name, uint64_t *seq)
{
    uint64_t  s = 0;
    size_t    i;
    unsigned  d;

    if (strlen(name) != ACTLOG_NAME_LEN
        || memcmp(name, ACTLOG_PREFIX, 8) != 0
        || memcmp(name + 28, ACTLOG_SUFFIX, 4) != 0)
    {
        return 0;
    }

    for (i = 8; i < 28; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return 0;
        }
        d = (unsigned) (name[i] - '0');
        if (s > (UINT64_MAX - d) / 10) {
            return 0;
        }
        s = s * 10 + d;
    }

    if (s == 0) {
        return 0;
    }
    *seq = s;
    return 1;
}


typedef struct seg_scan {
    uint64_t  lowest;       /* 0 when none */
    uint64_t  highest;      /* 0 when none */
    uint64_t  above;        /* the smallest > the asked number, 0 if none */
} seg_scan_t;


/*
 * Lists the segments of dir.  A missing directory has none.  Returns MV_OK
 * or MV_ERR with err set.
 */
static int
scan_segments(const char *dir, uint64_t after, seg_scan_t *s, mv_err_t *err)
{
    DIR            *d;
    struct dirent  *e;
    uint64_t        seq;

    memset(s, 0, sizeof(*s));

    d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) {
            return MV_OK;
        }
        return mv_err_set(err, "opendir(%s): %s", dir, strerror(errno));
    }

    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (!parse_segment_name(e->d_name, &seq)) {
            continue;
        }
        if (s->lowest == 0 || seq < s->lowest) {
            s->lowest = seq;
        }
        if (seq > s->highest) {
            s->highest = seq;
        }
        if (seq > after && (s->above == 0 || seq < s->above)) {
            s->above = seq;
        }
    }
    if (errno != 0) {
        mv_err_set(err, "readdir(%s): %s", dir, strerror(errno));
        closedir(d);
        return MV_ERR;
    }
    closedir(d);

    return MV_OK;
}


static int
segment_path(const char *dir, uint64_t seq, char *path, size_t len,
    mv_err_t *err)
{
    char  name[ACTLOG_NAME_SIZE];
    int   n;

    n = snprintf(path, len, "%s/%s", dir,
                 mv_actlog_segment_name(seq, name, sizeof(name)));
    if (n < 0 || (size_t) n >= len) {
        return mv_err_set(err, "path too long: %s", dir);
    }
    return MV_OK;
}


/* mkdir -p with mode 0755; the last component must end up a directory. */
static int
make_dirs(const char *dir, mv_err_t *err)
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


static int
fsync_dir(const char *dir, mv_err_t *err)
{
    int  fd, rc;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return mv_err_set(err, "open(%s): %s", dir, strerror(errno));
    }
    rc = fsync(fd);
    if (rc != 0 && errno != EINVAL) {
        mv_err_set(err, "fsync(%s): %s", dir, strerror(errno));
        close(fd);
        return MV_ERR;
    }
    close(fd);

    return MV_OK;
}


/* ---- writer ----------------------------------------------------------- */

/* Prepares a writer of dir, creating dir (and its parents) if missing. */
mv_actlog_writer_t *
mv_actlog_writer_new(const char *dir, uint64_t segment_bytes, int sync,
    mv_err_t *err)
{
    mv_actlog_writer_t  *w;

    if (dir == NULL) {
        mv_err_set(err, "no directory");
        return NULL;
    }
    if (segment_bytes == 0) {
        segment_bytes = MV_ACTLOG_SEGMENT_DEFAULT;
    }
    if (segment_bytes > MV_ACTLOG_SEGMENT_MAX) {
        mv_err_set(err, "segment size %llu above the maximum %llu",
                   (unsigned long long) segment_bytes,
                   (unsigned long long) MV_ACTLOG_SEGMENT_MAX);
        return NULL;
    }
    if (make_dirs(dir, err) != MV_OK) {
        return NULL;
    }

    w = calloc(1, sizeof(*w));
    if (w == NULL || (w->dir = strdup(dir)) == NULL) {
        free(w);
        mv_err_set(err, "out of memory");
        return NULL;
    }
    w->segment_bytes = segment_bytes;
    w->sync = sync != 0;
    w->fd = -1;

    return w;
}


static void
writer_close(mv_actlog_writer_t *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
        w->seq = 0;
    }
}


/*
 * Opens segment seq for appending, creating it when it does not exist.  The
 * directory is fsync'd when the segment was created here, and in sync mode
 * on every open (a writer that died between naming a segment and creating
 * it leaves the creation to the next one).
 */
static int
writer_open(mv_actlog_writer_t *w, uint64_t seq, mv_err_t *err)
{
    char  path[PATH_MAX];
    int   fd, created = 0;

    if (seq > ACTLOG_MAX_SEQ) {
        return mv_err_set(err, "segment number %llu above the maximum %llu",
                          (unsigned long long) seq,
                          (unsigned long long) ACTLOG_MAX_SEQ);
    }
    if (segment_path(w->dir, seq, path, sizeof(path), err) != MV_OK) {
        return MV_ERR;
    }

    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        created = 1;
    }
    if (fd < 0) {
        return mv_err_set(err, "open(%s): %s", path, strerror(errno));
    }
    if ((created || w->sync) && fsync_dir(w->dir, err) != MV_OK) {
        close(fd);
        return MV_ERR;
    }

    writer_close(w);
    w->fd = fd;
    w->seq = seq;

    return MV_OK;
}


/*
 * Starts segment *shared_seq + 1.  The number is stored first: from then on
 * no writer appends to the full segment, even if this one dies or fails
 * before the file exists (the next append creates it).
 */
static int
writer_rotate(mv_actlog_writer_t *w, uint64_t *shared_seq, mv_err_t *err)
{
    if (*shared_seq >= ACTLOG_MAX_SEQ) {
        return mv_err_set(err, "segment number %llu is the last one",
                          (unsigned long long) *shared_seq);
    }
    *shared_seq += 1;
    return writer_open(w, *shared_seq, err);
}


/* Grows the framing buffer to at least need bytes. */
static int
writer_reserve(mv_actlog_writer_t *w, size_t need, mv_err_t *err)
{
    uint8_t  *grown;
    size_t    cap = w->cap == 0 ? 4096 : w->cap;

    if (need <= w->cap) {
        return MV_OK;
    }
    while (cap < need) {
        cap *= 2;
    }
    grown = realloc(w->buf, cap);
    if (grown == NULL) {
        return mv_err_set(err, "out of memory (%zu bytes)", cap);
    }
    w->buf = grown;
    w->cap = cap;
    return MV_OK;
}


/* Cuts the segment back to size after a failed write; adds to err. */
static int
writer_cut_back(mv_actlog_writer_t *w, off_t size, mv_err_t *err)
{
    char  msg[sizeof(err->msg)];

    if (ftruncate(w->fd, size) == 0) {
        return MV_ERR;
    }
    if (err != NULL) {
        memcpy(msg, err->msg, sizeof(msg));
        mv_err_set(err, "%s; ftruncate of segment %llu back to %lld bytes "
                   "failed: %s", msg, (unsigned long long) w->seq,
                   (long long) size, strerror(errno));
    }
    /* The segment may hold a partial record now: readers skip it. */
    writer_close(w);
    return MV_ERR;
}


/*
 * Appends one record under the caller's lock (see actlog.h): one write() of
 * header + payload at the end of segment *shared_seq, rotation once the
 * segment reaches the size limit.  MV_ERR leaves nothing appended.
 */
int
mv_actlog_append(mv_actlog_writer_t *w, uint64_t *shared_seq, uint16_t type,
    const void *payload, size_t len, mv_actlog_pos_t *pos, mv_err_t *err)
{
    seg_scan_t   scan;
    struct stat  st;
    size_t       size;
    ssize_t      n;
    uint64_t     end;

    if (w == NULL || shared_seq == NULL) {
        return mv_err_set(err, "no writer or shared segment number");
    }
    if (len == 0 || len > MV_ACTLOG_MAX_PAYLOAD) {
        return mv_err_set(err, "payload of %zu bytes not in 1..%u", len,
                          MV_ACTLOG_MAX_PAYLOAD);
    }
    if (type == 0 || payload == NULL) {
        return mv_err_set(err, "record type 0 or no payload");
    }

    if (writer_reserve(w, MV_ACTLOG_HEADER_SIZE + len, err) != MV_OK) {
        return MV_ERR;
    }
    size = mv_actlog_frame(type, payload, len, w->buf, w->cap);

    if (*shared_seq == 0) {
        if (scan_segments(w->dir, 0, &scan, err) != MV_OK) {
            return MV_ERR;
        }
        *shared_seq = scan.highest == 0 ? 1 : scan.highest;
    }
    if ((w->fd < 0 || w->seq != *shared_seq)
        && writer_open(w, *shared_seq, err) != MV_OK)
    {
        return MV_ERR;
    }

    if (fstat(w->fd, &st) != 0) {
        return mv_err_set(err, "fstat(segment %llu): %s",
                          (unsigned long long) w->seq, strerror(errno));
    }

    /* Full already (an earlier rotation failed), or the record would make
       offsets unpackable: start the next segment first. */
    if (st.st_size > 0
        && ((uint64_t) st.st_size >= w->segment_bytes
            || (uint64_t) st.st_size + size > MV_ACTLOG_SEGMENT_MAX))
    {
        if (writer_rotate(w, shared_seq, err) != MV_OK) {
            return MV_ERR;
        }
        if (fstat(w->fd, &st) != 0) {
            return mv_err_set(err, "fstat(segment %llu): %s",
                              (unsigned long long) w->seq, strerror(errno));
        }
    }

    do {
        n = write(w->fd, w->buf, size);
    } while (n < 0 && errno == EINTR);

    if (n != (ssize_t) size) {
        if (n < 0) {
            mv_err_set(err, "write(segment %llu): %s",
                       (unsigned long long) w->seq, strerror(errno));
        } else {
            mv_err_set(err, "write(segment %llu): short write (%zd of %zu "
                       "bytes)", (unsigned long long) w->seq, n, size);
        }
        return writer_cut_back(w, st.st_size, err);
    }

    if (w->sync && fdatasync(w->fd) != 0) {
        mv_err_set(err, "fdatasync(segment %llu): %s",
                   (unsigned long long) w->seq, strerror(errno));
        return writer_cut_back(w, st.st_size, err);
    }

    if (pos != NULL) {
        pos->segment = w->seq;
        pos->offset = (uint64_t) st.st_size;
    }

    /* A failed rotation is retried (and reported) by the next append. */
    end = (uint64_t) st.st_size + size;
    if (end >= w->segment_bytes) {
        (void) writer_rotate(w, shared_seq, NULL);
    }

    return MV_OK;
}


void
mv_actlog_writer_free(mv_actlog_writer_t *w)
{
    if (w == NULL) {
        return;
    }
    writer_close(w);
    free(w->buf);
    free(w->dir);
    free(w);
}


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
    seg_scan_t  scan;
    uint64_t    gone;
    int         fd;

    for (;;) {
        if (r->seq == 0) {
            if (scan_segments(r->dir, 0, &scan, err) != MV_OK) {
                return MV_ERR;
            }
            if (scan.lowest == 0) {
                return 0;
            }
            r->seq = scan.lowest;
            r->off = 0;
        }

        if (segment_path(r->dir, r->seq, path, sizeof(path), err)
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
        if (scan_segments(r->dir, r->seq, &scan, err) != MV_OK) {
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
    seg_scan_t   scan;

    if (segment_path(r->dir, r->seq + 1, path, sizeof(path), err) != MV_OK) {
        return MV_ERR;
    }
    if (stat(path, &st) == 0) {
        *next = r->seq + 1;
        return 1;
    }

    if (scan_segments(r->dir, r->seq, &scan, err) != MV_OK) {
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
