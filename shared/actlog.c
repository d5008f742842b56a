/*
 * actlog.c -- the embedded action log: positions, segment names, record
 * framing and the appender (see actlog.h for the format and the contract).
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
 * The tailing reader is in actlog_read.c.
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
#include "actlog_internal.h"
#include "crc32c.h"
#include "files.h"






struct mv_actlog_writer {
    char      *dir;
    uint64_t   segment_bytes;
    int        sync;
    int        fd;              /* -1 when closed */
    uint64_t   seq;             /* the segment fd is open on */
    uint8_t   *buf;             /* framing buffer */
    size_t     cap;
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
        mv_seqname_format(ACTLOG_PREFIX, seq, ACTLOG_SUFFIX, buf, len);
    }
    return buf;
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

/* Parses "actions-<20 digits>.log", seq >= 1; returns 1 and the number. */
static int
parse_segment_name(const char *name, uint64_t *seq)
{
    uint64_t  s;

    if (!mv_seqname_parse(name, ACTLOG_PREFIX, ACTLOG_SUFFIX, &s) || s == 0) {
        return 0;
    }
    *seq = s;
    return 1;
}




int
mv_actlog_each_segment(const char *dir, mv_actlog_segment_fn fn, void *arg,
    mv_err_t *err)
{
    DIR            *d;
    struct dirent  *e;
    uint64_t        seq;
    int             rc = MV_OK;

    d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) {
            return MV_OK;
        }
        return mv_err_set(err, "opendir(%s): %s", dir, strerror(errno));
    }

    errno = 0;
    while (rc == MV_OK && (e = readdir(d)) != NULL) {
        if (parse_segment_name(e->d_name, &seq)) {
            rc = fn(arg, dirfd(d), e->d_name, seq, err);
        }
        errno = 0;
    }
    if (rc == MV_OK && errno != 0) {
        rc = mv_err_set(err, "readdir(%s): %s", dir, strerror(errno));
    }
    closedir(d);
    return rc;
}


static int
scan_one(void *arg, int dfd, const char *name, uint64_t seq, mv_err_t *err)
{
    mv_actlog_seg_scan_t  *s = arg;

    (void) dfd;
    (void) name;
    (void) err;
    if (s->lowest == 0 || seq < s->lowest) {
        s->lowest = seq;
    }
    if (seq > s->highest) {
        s->highest = seq;
    }
    if (seq > s->after && (s->above == 0 || seq < s->above)) {
        s->above = seq;
    }
    return MV_OK;
}


/*
 * Lists the segments of dir.  A missing directory has none.  Returns MV_OK
 * or MV_ERR with err set.
 */
int
mv_actlog_scan_segments(const char *dir, uint64_t after,
    mv_actlog_seg_scan_t *s, mv_err_t *err)
{
    memset(s, 0, sizeof(*s));
    s->after = after;
    return mv_actlog_each_segment(dir, scan_one, s, err);
}


int
mv_actlog_segment_path(const char *dir, uint64_t seq, char *path, size_t len,
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
    if (mv_dir_make(dir, err) != MV_OK) {
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
    if (mv_actlog_segment_path(w->dir, seq, path, sizeof(path), err) != MV_OK) {
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
    if ((created || w->sync) && mv_dir_fsync(w->dir, err) != MV_OK) {
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
    mv_actlog_seg_scan_t   scan;
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
        if (mv_actlog_scan_segments(w->dir, 0, &scan, err) != MV_OK) {
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
