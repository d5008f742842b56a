/*
 * fuzz_actlog.c -- libFuzzer target for the action-log reader and
 * mv_actlog_decode.
 *
 * mv_actlog_decode runs on the raw input: a record it accepts must frame
 * back to the same bytes, and "incomplete" must hold for shorter prefixes
 * too.
 *
 * Then the input becomes a log directory: the first byte chooses one segment
 * or two (and where the rest is split between them), the rest is the
 * segments' bytes.  A reader reads everything from the oldest segment, and
 * again from offsets chosen by the input; then the log is written again a
 * chunk at a time with a reader tailing it (waiting at each end, seeing
 * segment 1 sealed when segment 2 appears).  Every record it returns must
 * be a valid record at exactly its position in the files, positions must
 * increase, and nothing may be lost or invented: the records' bytes plus the
 * bytes counted as skipped cover the log up to where the reader stopped;
 * the reader stops in the last segment only, and only where the bytes left
 * are a possible record still being written, with no complete record after
 * them.  These hold at every pause of the tailing reader too.
 *
 * The directory is created once (under /tmp), reused, and removed at exit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)  do { if (!(cond)) { __builtin_trap(); } } while (0)

typedef struct fz_log {
    const uint8_t  *seg[3];         /* [1], [2]: the segments' bytes */
    size_t          len[3];
    uint64_t        n_seg;
} fz_log_t;

static char  fz_dir[64];
static char  fz_path[3][128];
static int   fz_ready;


static void
fz_cleanup(void)
{
    unlink(fz_path[1]);
    unlink(fz_path[2]);
    rmdir(fz_dir);
}


static void
fz_setup(void)
{
    char  name[64];
    int   i;

    snprintf(fz_dir, sizeof(fz_dir), "/tmp/fuzz_actlog-XXXXXX");
    if (mkdtemp(fz_dir) == NULL) {
        abort();
    }
    for (i = 1; i <= 2; i++) {
        snprintf(fz_path[i], sizeof(fz_path[i]), "%s/%s", fz_dir,
                 mv_actlog_segment_name((uint64_t) i, name, sizeof(name)));
    }
    fz_ready = 1;
    atexit(fz_cleanup);
}


static void
fz_put(const char *path, const uint8_t *data, size_t len)
{
    int  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0) {
        abort();
    }
    if (len > 0 && write(fd, data, len) != (ssize_t) len) {
        abort();
    }
    close(fd);
}


static void
fuzz_decode(const uint8_t *data, size_t size)
{
    uint8_t     *again;
    const void  *payload;
    uint32_t     len;
    uint16_t     type;
    long         n;

    n = mv_actlog_decode(data, size, &type, &payload, &len);
    CHECK(n >= -1);

    if (n > 0) {
        CHECK((size_t) n <= size);
        CHECK((size_t) n == MV_ACTLOG_HEADER_SIZE + len);
        CHECK(payload == data + MV_ACTLOG_HEADER_SIZE);
        CHECK(type != 0);
        CHECK(mv_actlog_decode(data, (size_t) n - 1, NULL, NULL, NULL) == 0);
        again = malloc((size_t) n);
        CHECK(again != NULL);
        CHECK(mv_actlog_frame(type, payload, len, again, (size_t) n)
              == (size_t) n);
        CHECK(memcmp(again, data, (size_t) n) == 0);
        free(again);
    } else if (n == 0) {
        CHECK(size < MV_ACTLOG_HEADER_SIZE + MV_ACTLOG_MAX_PAYLOAD);
        CHECK(mv_actlog_decode(data, size / 2, NULL, NULL, NULL) == 0);
        if (size > 0) {
            CHECK(mv_actlog_decode(data, size - 1, NULL, NULL, NULL) == 0);
        }
    }
}


/* A reader under test and what it returned so far. */
typedef struct fz_reader {
    mv_actlog_reader_t  *r;
    uint64_t             seg;           /* where it started (1 for 0) */
    uint64_t             off;
    mv_actlog_pos_t      last;          /* after the last record */
    uint64_t             record_bytes;
    uint64_t             n_records;
} fz_reader_t;


static void
fz_open(fz_reader_t *fr, uint64_t seg, uint64_t off)
{
    mv_actlog_pos_t  pos;
    mv_err_t         err;

    pos.segment = seg;
    pos.offset = off;
    memset(fr, 0, sizeof(*fr));
    fr->r = mv_actlog_reader_new(fz_dir, pos, &err);
    CHECK(fr->r != NULL);
    fr->seg = seg == 0 ? 1 : seg;
    fr->off = seg == 0 ? 0 : off;
    fr->last.segment = fr->seg;
    fr->last.offset = fr->off;
}


/*
 * Reads until the reader has nothing more, checking each record against
 * the log as it is now (log), then checks where the reader stopped.
 */
static void
fz_drain(fz_reader_t *fr, const fz_log_t *log)
{
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    mv_actlog_pos_t      pos;
    mv_err_t             err;
    const uint8_t       *s;
    const void          *payload;
    uint64_t             covered, q;
    uint32_t             len;
    uint16_t             type;
    size_t               slen;
    long                 n;
    int                  rc;

    while ((rc = mv_actlog_next(fr->r, &rec, &err)) == 1) {
        CHECK(rec.pos.segment >= 1 && rec.pos.segment <= log->n_seg);
        CHECK(rec.pos.segment > fr->last.segment
              || (rec.pos.segment == fr->last.segment
                  && rec.pos.offset >= fr->last.offset));
        CHECK(rec.next.segment == rec.pos.segment);
        CHECK(rec.next.offset
              == rec.pos.offset + MV_ACTLOG_HEADER_SIZE + rec.len);
        CHECK(rec.type != 0);

        /* It is the record at that place in the file. */
        s = log->seg[rec.pos.segment];
        slen = log->len[rec.pos.segment];
        CHECK(rec.next.offset <= slen);
        n = mv_actlog_decode(s + rec.pos.offset, slen - rec.pos.offset,
                             &type, &payload, &len);
        CHECK(n == (long) (MV_ACTLOG_HEADER_SIZE + rec.len));
        CHECK(type == rec.type && len == rec.len);
        CHECK(memcmp(payload, rec.payload, len) == 0);

        fr->last = rec.next;
        fr->record_bytes += MV_ACTLOG_HEADER_SIZE + rec.len;
        fr->n_records++;
        CHECK(fr->n_records <= log->len[1] + log->len[2]);
    }
    CHECK(rc == 0);

    /* Stopped in the last segment, and everything before is accounted. */
    pos = mv_actlog_reader_pos(fr->r);
    mv_actlog_reader_stats(fr->r, &st);
    CHECK(st.records == fr->n_records);
    CHECK(pos.segment == log->n_seg);

    covered = pos.offset - (fr->seg == pos.segment ? fr->off : 0);
    if (fr->seg < pos.segment) {
        covered += log->len[fr->seg] - fr->off;
    }
    CHECK(fr->record_bytes + st.skipped_bytes == covered);

    /* What is left may be a write in progress, and nothing complete
       follows it. */
    s = log->seg[log->n_seg];
    slen = log->len[log->n_seg];
    CHECK(pos.offset <= slen);
    CHECK(mv_actlog_decode(s + pos.offset, slen - pos.offset, NULL, NULL,
                           NULL) == 0);
    for (q = pos.offset + 1; q < slen; q++) {
        CHECK(mv_actlog_decode(s + q, slen - q, NULL, NULL, NULL) <= 0);
    }

    /* Still nothing on a second look. */
    CHECK(mv_actlog_next(fr->r, &rec, &err) == 0);
}


/* Reads the whole log from (seg, off). */
static void
fuzz_read(const fz_log_t *log, uint64_t seg, uint64_t off)
{
    fz_reader_t  fr;

    fz_open(&fr, seg, off);
    fz_drain(&fr, log);
    mv_actlog_reader_free(fr.r);
}


static void
fz_append(const char *path, const uint8_t *data, size_t len)
{
    int  fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

    if (fd < 0 || write(fd, data, len) != (ssize_t) len) {
        abort();
    }
    close(fd);
}


/*
 * Writes the log a chunk at a time (chunk sizes taken from the input),
 * segment 2 created once segment 1 is complete, with a reader tailing it
 * all along.
 */
static void
fuzz_tail(const fz_log_t *log, const uint8_t *data, size_t size)
{
    fz_reader_t  fr;
    fz_log_t     now;
    size_t       chunk, k = 0;
    uint64_t     i;

    memset(&now, 0, sizeof(now));
    now.n_seg = 1;
    now.seg[1] = log->seg[1];
    now.seg[2] = log->seg[2];
    fz_put(fz_path[1], NULL, 0);
    unlink(fz_path[2]);

    fz_open(&fr, 0, 0);
    for (i = 1; i <= log->n_seg; i++) {
        if (i == 2) {
            fz_put(fz_path[2], NULL, 0);
            now.n_seg = 2;
            fz_drain(&fr, &now);
        }
        while (now.len[i] < log->len[i]) {
            chunk = 1 + data[k++ % size] % 97u;
            if (chunk > log->len[i] - now.len[i]) {
                chunk = log->len[i] - now.len[i];
            }
            fz_append(fz_path[i], log->seg[i] + now.len[i], chunk);
            now.len[i] += chunk;
            fz_drain(&fr, &now);
        }
    }
    mv_actlog_reader_free(fr.r);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_log_t        log;
    const uint8_t  *body;
    size_t          blen, split;
    uint64_t        off;

    fuzz_decode(data, size);

    if (size == 0) {
        return 0;
    }
    if (!fz_ready) {
        fz_setup();
    }

    body = data + 1;
    blen = size - 1;
    memset(&log, 0, sizeof(log));
    if (data[0] & 1) {
        /* two segments */
        split = (size_t) (data[0] >> 1) * blen / 127;
        log.n_seg = 2;
        log.seg[1] = body;
        log.len[1] = split;
        log.seg[2] = body + split;
        log.len[2] = blen - split;
        fz_put(fz_path[1], log.seg[1], log.len[1]);
        fz_put(fz_path[2], log.seg[2], log.len[2]);
    } else {
        log.n_seg = 1;
        log.seg[1] = body;
        log.len[1] = blen;
        fz_put(fz_path[1], log.seg[1], log.len[1]);
        unlink(fz_path[2]);
    }

    fuzz_read(&log, 0, 0);

    /* From an offset in the first segment, chosen by the input. */
    off = (uint64_t) data[size - 1] * 131 % (log.len[1] + 1);
    fuzz_read(&log, 1, off);

    if (log.n_seg == 2) {
        off = (uint64_t) data[size / 2] * 17 % (log.len[2] + 1);
        fuzz_read(&log, 2, off);
    }

    fuzz_tail(&log, data, size);

    return 0;
}
