/*
 * test_actlog.c -- unit tests of the action log (actlog.h): framing and
 * decoding, the appender (rotation, discovery of the current segment,
 * failed appends leaving nothing behind) and the tailing reader (order,
 * positions, resuming, waiting on a write in progress, skipping torn tails
 * and damage and counting them), and four processes appending under a lock
 * while a reader tails the directory.
 *
 * Every test works in its own mkdtemp directory under /tmp, removed at the
 * end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "actlog_files.h"
#include "tmpdir.h"

#include "actlog.h"
#include "crc32c.h"


#define N_WRITERS        4
#define N_PER_WRITER     2000


/* ---- helpers ------------------------------------------------------------ */

static void
make_tmpdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/test_actlog-XXXXXX");
    assert_non_null(mkdtemp(dir));
}


static off_t
file_size(const char *path)
{
    struct stat  st;

    if (stat(path, &st) != 0) {
        return -1;
    }
    return st.st_size;
}


/* The payload of record i: JSON of a length varying with i. */
static size_t
make_payload(unsigned i, char *buf, size_t cap)
{
    char    pad[128];
    size_t  n = (i * 7u) % 100u;
    int     len;

    memset(pad, 'a' + (int) (i % 26u), n);
    pad[n] = '\0';
    len = snprintf(buf, cap, "{\"i\":%u,\"pad\":\"%s\"}", i, pad);
    assert_true(len > 0 && (size_t) len < cap);
    return (size_t) len;
}


static size_t
record_size(unsigned i)
{
    char  buf[256];

    return MV_ACTLOG_HEADER_SIZE + make_payload(i, buf, sizeof(buf));
}


/* Appends records first .. first + n - 1 (payload make_payload(i)). */
static void
append_range(mv_actlog_writer_t *w, uint64_t *seq, unsigned first,
    unsigned n, mv_actlog_pos_t *positions)
{
    char      buf[256];
    size_t    len;
    unsigned  i;
    mv_err_t  err;

    for (i = first; i < first + n; i++) {
        len = make_payload(i, buf, sizeof(buf));
        err.msg[0] = '\0';
        if (mv_actlog_append(w, seq, (uint16_t) (1 + i % 2), buf, len,
                             positions != NULL ? &positions[i] : NULL,
                             &err) != MV_OK)
        {
            fail_msg("append %u: %s", i, err.msg);
        }
    }
}


/* Reads the next record and checks it is record i. */
static void
expect_record(mv_actlog_reader_t *r, unsigned i, mv_actlog_record_t *rec)
{
    char      buf[256];
    size_t    len;
    mv_err_t  err;
    int       rc;

    err.msg[0] = '\0';
    rc = mv_actlog_next(r, rec, &err);
    if (rc != 1) {
        fail_msg("record %u: next returned %d (%s)", i, rc, err.msg);
    }
    len = make_payload(i, buf, sizeof(buf));
    assert_int_equal(rec->len, len);
    assert_memory_equal(rec->payload, buf, len);
    assert_int_equal(rec->type, 1 + i % 2);
    assert_int_equal(rec->next.segment, rec->pos.segment);
    assert_int_equal(rec->next.offset,
                     rec->pos.offset + MV_ACTLOG_HEADER_SIZE + len);
}


static void
expect_nothing(mv_actlog_reader_t *r)
{
    mv_actlog_record_t  rec;
    mv_err_t            err;

    err.msg[0] = '\0';
    assert_int_equal(mv_actlog_next(r, &rec, &err), 0);
}


static void
write_bytes(const char *path, int flags, const void *data, size_t len)
{
    int  fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t) len);
    close(fd);
}


/* Frames record i into buf; returns its size. */
static size_t
frame_record(unsigned i, uint8_t *buf, size_t cap)
{
    char    payload[256];
    size_t  len = make_payload(i, payload, sizeof(payload));

    return mv_actlog_frame((uint16_t) (1 + i % 2), payload, len, buf, cap);
}


static mv_actlog_reader_t *
reader_at(const char *dir, uint64_t segment, uint64_t offset)
{
    mv_actlog_pos_t      pos;
    mv_actlog_reader_t  *r;
    mv_err_t             err;

    pos.segment = segment;
    pos.offset = offset;
    r = mv_actlog_reader_new(dir, pos, &err);
    assert_non_null(r);
    return r;
}


static mv_actlog_writer_t *
writer_on(const char *dir, uint64_t segment_bytes)
{
    mv_actlog_writer_t  *w;
    mv_err_t             err;

    err.msg[0] = '\0';
    w = mv_actlog_writer_new(dir, segment_bytes, 0, &err);
    if (w == NULL) {
        fail_msg("writer_new: %s", err.msg);
    }
    return w;
}


/* ---- framing ---------------------------------------------------------- */

static void
test_pos_pack(void **state)
{
    mv_actlog_pos_t  pos, back;
    uint64_t         segs[] = { 1, 2, 77, (1u << 24) - 1 };
    uint64_t         offs[] = { 0, 1, 16, 123456789,
                                MV_ACTLOG_SEGMENT_MAX };
    size_t           i, j;

    (void) state;
    for (i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        for (j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
            pos.segment = segs[i];
            pos.offset = offs[j];
            back = mv_actlog_pos_unpack(mv_actlog_pos_pack(pos));
            assert_int_equal(back.segment, pos.segment);
            assert_int_equal(back.offset, pos.offset);
        }
    }

    pos.segment = 3;
    pos.offset = 5;
    assert_int_equal(mv_actlog_pos_pack(pos), (3ull << 40) | 5);
}


static void
test_segment_name(void **state)
{
    char  buf[64];

    (void) state;
    assert_string_equal(mv_actlog_segment_name(1, buf, sizeof(buf)),
                        "actions-00000000000000000001.log");
    assert_string_equal(mv_actlog_segment_name(12345678901234567890ull, buf,
                                               sizeof(buf)),
                        "actions-12345678901234567890.log");
}


static void
test_frame_decode_roundtrip(void **state)
{
    size_t          sizes[] = { 1, 2, 15, 16, 100, 4095, 65536,
                                MV_ACTLOG_MAX_PAYLOAD };
    uint8_t        *payload, *buf;
    const void     *p;
    uint32_t        len;
    uint16_t        type;
    size_t          i, j, n, cap = MV_ACTLOG_HEADER_SIZE
                                   + MV_ACTLOG_MAX_PAYLOAD + 8;

    (void) state;
    payload = malloc(MV_ACTLOG_MAX_PAYLOAD + 1);
    buf = malloc(cap);
    assert_non_null(payload);
    assert_non_null(buf);
    for (j = 0; j <= MV_ACTLOG_MAX_PAYLOAD; j++) {
        payload[j] = (uint8_t) ('0' + j % 64);
    }

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        n = mv_actlog_frame((uint16_t) (MV_RECORD_ACTION + i % 2), payload,
                            sizes[i], buf, cap);
        assert_int_equal(n, MV_ACTLOG_HEADER_SIZE + sizes[i]);
        assert_memory_equal(buf, "\xff\x4d\x56\xfe", 4);

        /* Exact and with trailing bytes. */
        assert_int_equal(mv_actlog_decode(buf, n, &type, &p, &len),
                         (long) n);
        assert_int_equal(type, MV_RECORD_ACTION + i % 2);
        assert_int_equal(len, sizes[i]);
        assert_ptr_equal(p, buf + MV_ACTLOG_HEADER_SIZE);
        assert_memory_equal(p, payload, sizes[i]);
        assert_int_equal(mv_actlog_decode(buf, cap, NULL, NULL, NULL),
                         (long) n);

        /* Too small a buffer. */
        assert_int_equal(mv_actlog_frame(MV_RECORD_ITEM, payload, sizes[i],
                                         buf, n - 1), 0);
    }

    /* Refused lengths and type. */
    assert_int_equal(mv_actlog_frame(1, payload, 0, buf, cap), 0);
    assert_int_equal(mv_actlog_frame(1, payload, MV_ACTLOG_MAX_PAYLOAD + 1,
                                     buf, cap + 16), 0);
    assert_int_equal(mv_actlog_frame(0, payload, 10, buf, cap), 0);

    /* The CRC is CRC-32C of bytes 4..11 then the payload. */
    n = mv_actlog_frame(MV_RECORD_ITEM, "{}", 2, buf, cap);
    assert_int_equal(n, 18);
    assert_int_equal(buf[4], 2);
    assert_int_equal(buf[8], MV_RECORD_ITEM);
    len = mv_crc32c(mv_crc32c(0, buf + 4, 8), "{}", 2);
    assert_int_equal(buf[12] | buf[13] << 8 | buf[14] << 16
                     | (uint32_t) buf[15] << 24, len);

    free(payload);
    free(buf);
}


static void
test_decode_prefixes_and_damage(void **state)
{
    uint8_t         rec[256], bad[256];
    const char     *payload = "{\"user\":\"u1\",\"item\":\"i1\"}";
    size_t          n, k, i;
    uint32_t        len;

    (void) state;
    n = mv_actlog_frame(MV_RECORD_ACTION, payload, strlen(payload), rec,
                        sizeof(rec));
    assert_true(n > 0);

    /* Every strict prefix (including the empty one) is "incomplete". */
    for (k = 0; k < n; k++) {
        assert_int_equal(mv_actlog_decode(rec, k, NULL, NULL, NULL), 0);
    }
    assert_int_equal(mv_actlog_decode(rec, n, NULL, NULL, NULL), (long) n);

    /* Bad magic, at each byte, seen as soon as the byte is there. */
    for (i = 0; i < 4; i++) {
        memcpy(bad, rec, n);
        bad[i] ^= 0x01;
        for (k = i + 1; k <= n; k++) {
            assert_int_equal(mv_actlog_decode(bad, k, NULL, NULL, NULL), -1);
        }
    }

    /* Length 0 and above the maximum. */
    memcpy(bad, rec, n);
    memset(bad + 4, 0, 4);
    assert_int_equal(mv_actlog_decode(bad, 8, NULL, NULL, NULL), -1);
    assert_int_equal(mv_actlog_decode(bad, n, NULL, NULL, NULL), -1);
    len = MV_ACTLOG_MAX_PAYLOAD + 1;
    bad[4] = (uint8_t) len;
    bad[5] = (uint8_t) (len >> 8);
    bad[6] = (uint8_t) (len >> 16);
    bad[7] = (uint8_t) (len >> 24);
    assert_int_equal(mv_actlog_decode(bad, 8, NULL, NULL, NULL), -1);
    bad[7] = 0x80;
    assert_int_equal(mv_actlog_decode(bad, n, NULL, NULL, NULL), -1);

    /* A longer length in a valid range waits for the bytes, then fails
       the CRC. */
    memcpy(bad, rec, n);
    bad[4] = (uint8_t) (bad[4] + 1);
    assert_int_equal(mv_actlog_decode(bad, n, NULL, NULL, NULL), 0);
    bad[n] = 'x';
    assert_int_equal(mv_actlog_decode(bad, n + 1, NULL, NULL, NULL), -1);

    /* Type 0, flags. */
    memcpy(bad, rec, n);
    bad[8] = 0;
    assert_int_equal(mv_actlog_decode(bad, 10, NULL, NULL, NULL), -1);
    memcpy(bad, rec, n);
    bad[10] = 1;
    assert_int_equal(mv_actlog_decode(bad, 12, NULL, NULL, NULL), -1);
    memcpy(bad, rec, n);
    bad[11] = 0x80;
    assert_int_equal(mv_actlog_decode(bad, n, NULL, NULL, NULL), -1);

    /* CRC: a flipped bit in the CRC, the type, or any payload byte. */
    for (i = 12; i < n; i++) {
        memcpy(bad, rec, n);
        bad[i] ^= 0x20;
        assert_int_equal(mv_actlog_decode(bad, n, NULL, NULL, NULL), -1);
    }
    memcpy(bad, rec, n);
    bad[8] = MV_RECORD_ITEM;
    assert_int_equal(mv_actlog_decode(bad, n, NULL, NULL, NULL), -1);
}


/* ---- writer and reader ------------------------------------------------- */

static void
test_append_read_rotation(void **state)
{
    char                 dir[64];
    mv_actlog_writer_t  *w;
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    mv_actlog_pos_t      pos[500];
    uint64_t             seq = 0, s;
    unsigned             i, n = 500;
    off_t                size;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    w = writer_on(dir, 1000);
    append_range(w, &seq, 0, n, pos);
    assert_true(seq > 10);

    /* Positions: in order, each segment filled to the limit, no further. */
    for (i = 1; i < n; i++) {
        if (pos[i].segment == pos[i - 1].segment) {
            assert_int_equal(pos[i].offset,
                             pos[i - 1].offset + record_size(i - 1));
        } else {
            assert_int_equal(pos[i].segment, pos[i - 1].segment + 1);
            assert_int_equal(pos[i].offset, 0);
            assert_true(pos[i - 1].offset + record_size(i - 1) >= 1000);
            assert_true(pos[i - 1].offset < 1000);
        }
    }
    for (s = 1; s < seq; s++) {
        size = mvt_seg_size(dir, s);
        assert_true(size >= 1000 && size < 1000 + 200);
    }
    assert_int_equal(pos[0].segment, 1);
    assert_int_equal(pos[0].offset, 0);

    r = reader_at(dir, 0, 0);
    for (i = 0; i < n; i++) {
        expect_record(r, i, &rec);
        assert_int_equal(rec.pos.segment, pos[i].segment);
        assert_int_equal(rec.pos.offset, pos[i].offset);
        assert_int_equal(mv_actlog_reader_pos(r).offset, rec.next.offset);
    }
    expect_nothing(r);
    expect_nothing(r);

    /* The tail keeps being followed. */
    append_range(w, &seq, n, 20, NULL);
    for (i = n; i < n + 20; i++) {
        expect_record(r, i, &rec);
    }
    expect_nothing(r);

    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.records, n + 20);
    assert_int_equal(st.skipped_bytes, 0);
    assert_int_equal(st.skipped_runs, 0);

    mv_actlog_reader_free(r);
    mv_actlog_writer_free(w);
    mvt_remove_tree(dir);
}


static void
test_reader_resumes(void **state)
{
    char                 dir[64];
    mv_actlog_writer_t  *w;
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    mv_actlog_pos_t      stored, pos[350];
    uint64_t             seq = 0, packed;
    unsigned             i, cut, cuts[16], n_cuts, c;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    w = writer_on(dir, 700);
    append_range(w, &seq, 0, 300, pos);

    /* Stop at several places, and at the end of a sealed segment. */
    n_cuts = 0;
    for (i = 1; i < 300; i += 37) {
        cuts[n_cuts++] = i;
    }
    for (i = 1; i < 300; i++) {
        if (pos[i].segment != pos[i - 1].segment) {
            cuts[n_cuts++] = i;
            break;
        }
    }
    assert_true(i < 300);

    for (c = 0; c < n_cuts; c++) {
        cut = cuts[c];
        r = reader_at(dir, 0, 0);
        for (i = 0; i < cut; i++) {
            expect_record(r, i, &rec);
        }
        stored = mv_actlog_reader_pos(r);
        assert_int_equal(stored.segment, rec.next.segment);
        assert_int_equal(stored.offset, rec.next.offset);
        packed = mv_actlog_pos_pack(rec.next);
        mv_actlog_reader_free(r);

        r = reader_at(dir, mv_actlog_pos_unpack(packed).segment,
                      mv_actlog_pos_unpack(packed).offset);
        for (i = cut; i < 300; i++) {
            expect_record(r, i, &rec);
        }
        expect_nothing(r);
        mv_actlog_reader_stats(r, &st);
        assert_int_equal(st.records, 300 - cut);
        assert_int_equal(st.skipped_bytes, 0);
        assert_int_equal(st.skipped_runs, 0);
        mv_actlog_reader_free(r);
    }

    /* From the very end: only what comes next. */
    r = reader_at(dir, rec.next.segment, rec.next.offset);
    expect_nothing(r);
    append_range(w, &seq, 300, 50, pos);
    for (i = 300; i < 350; i++) {
        expect_record(r, i, &rec);
    }
    expect_nothing(r);

    mv_actlog_reader_free(r);
    mv_actlog_writer_free(w);
    mvt_remove_tree(dir);
}


static void
test_shared_seq_discovery(void **state)
{
    char                 dir[64], nested[128];
    mv_actlog_writer_t  *a, *b;
    mv_actlog_pos_t      pos;
    uint64_t             seq_a = 0, seq_b = 0;
    mv_err_t             err;
    struct stat          st;

    (void) state;
    make_tmpdir(dir, sizeof(dir));

    /* Nested directories are created; an empty log starts at segment 1. */
    snprintf(nested, sizeof(nested), "%s/x/y/log", dir);
    a = writer_on(nested, 300);
    assert_int_equal(stat(nested, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(mv_actlog_append(a, &seq_a, 1, "{}", 2, &pos, &err),
                     MV_OK);
    assert_int_equal(seq_a, 1);
    assert_int_equal(pos.segment, 1);
    append_range(a, &seq_a, 0, 40, NULL);
    assert_true(seq_a >= 4);

    /* A writer that knows nothing continues in the newest segment. */
    b = writer_on(nested, 300);
    assert_int_equal(mv_actlog_append(b, &seq_b, 1, "{}", 2, &pos, &err),
                     MV_OK);
    assert_int_equal(seq_b, seq_a);
    assert_int_equal(pos.segment, seq_a);

    /* Discovery starts the next segment when the newest is already full
       (its rotation failed, or the segment size changed). */
    mv_actlog_writer_free(b);
    snprintf(nested, sizeof(nested), "%s/full", dir);
    b = writer_on(nested, 100000);
    seq_b = 0;
    append_range(b, &seq_b, 0, 10, NULL);
    assert_int_equal(seq_b, 1);
    mv_actlog_writer_free(b);
    b = writer_on(nested, 300);
    seq_b = 0;
    assert_int_equal(mv_actlog_append(b, &seq_b, 1, "{}", 2, &pos, &err),
                     MV_OK);
    assert_int_equal(seq_b, 2);
    assert_int_equal(pos.segment, 2);
    assert_int_equal(pos.offset, 0);

    /* A regular file in the way is refused. */
    snprintf(nested, sizeof(nested), "%s/file", dir);
    write_bytes(nested, 0, "x", 1);
    assert_null(mv_actlog_writer_new(nested, 0, 0, &err));
    assert_null(mv_actlog_writer_new(dir, MV_ACTLOG_SEGMENT_MAX + 1, 0,
                                     &err));

    mv_actlog_writer_free(a);
    mv_actlog_writer_free(b);
    mvt_remove_tree(dir);
}


static void
test_missing_dir_and_sync(void **state)
{
    char                 dir[64], log[128];
    mv_actlog_writer_t  *w;
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_err_t             err;
    uint64_t             seq = 0;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    snprintf(log, sizeof(log), "%s/later", dir);

    r = reader_at(log, 0, 0);
    expect_nothing(r);

    w = mv_actlog_writer_new(log, 0, 1, &err);
    assert_non_null(w);
    expect_nothing(r);
    append_range(w, &seq, 0, 3, NULL);
    expect_record(r, 0, &rec);
    expect_record(r, 1, &rec);
    expect_record(r, 2, &rec);
    expect_nothing(r);

    mv_actlog_reader_free(r);
    mv_actlog_writer_free(w);
    mvt_remove_tree(dir);
}


static void
test_failed_append_appends_nothing(void **state)
{
    char                 dir[64], path[512];
    mv_actlog_writer_t  *w;
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    mv_err_t             err;
    uint64_t             seq = 0;
    char                *big;
    off_t                before;
    pid_t                pid;
    int                  status;
    unsigned             i;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    w = writer_on(dir, 0);
    append_range(w, &seq, 0, 5, NULL);
    mvt_seg_path(dir, 1, path, sizeof(path));
    before = file_size(path);

    big = malloc(MV_ACTLOG_MAX_PAYLOAD + 1);
    assert_non_null(big);
    memset(big, 'x', MV_ACTLOG_MAX_PAYLOAD + 1);

    err.msg[0] = '\0';
    assert_int_equal(mv_actlog_append(w, &seq, 1, big,
                                      MV_ACTLOG_MAX_PAYLOAD + 1, NULL, &err),
                     MV_ERR);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(mv_actlog_append(w, &seq, 1, big, 0, NULL, &err),
                     MV_ERR);
    assert_int_equal(mv_actlog_append(w, &seq, 0, big, 10, NULL, &err),
                     MV_ERR);
    assert_int_equal(file_size(path), before);

    /* A short write (file size limit) is cut back. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit  lim;
        int            rc;

        signal(SIGXFSZ, SIG_IGN);
        if (getrlimit(RLIMIT_FSIZE, &lim) != 0) {
            _exit(2);
        }
        lim.rlim_cur = (rlim_t) before + 100;
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0) {
            _exit(2);
        }
        err.msg[0] = '\0';
        rc = mv_actlog_append(w, &seq, 1, big, 5000, NULL, &err);
        if (rc != MV_ERR || strstr(err.msg, "short write") == NULL) {
            _exit(3);
        }
        if (file_size(path) != before) {
            _exit(4);
        }
        /* At the limit exactly: the write fails outright. */
        lim.rlim_cur = (rlim_t) before;
        setrlimit(RLIMIT_FSIZE, &lim);
        rc = mv_actlog_append(w, &seq, 1, big, 5000, NULL, &err);
        _exit(rc == MV_ERR && file_size(path) == before ? 0 : 5);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(file_size(path), before);

    /* The writer goes on; readers see no damage. */
    append_range(w, &seq, 5, 2, NULL);
    r = reader_at(dir, 0, 0);
    for (i = 0; i < 7; i++) {
        expect_record(r, i, &rec);
    }
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.skipped_bytes, 0);

    free(big);
    mv_actlog_reader_free(r);
    mv_actlog_writer_free(w);
    mvt_remove_tree(dir);
}


/* ---- torn and damaged records ---------------------------------------- */

static void
test_waits_for_write_in_progress(void **state)
{
    char                 dir[64], path[512];
    mv_actlog_writer_t  *w;
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    uint8_t              buf[512];
    uint64_t             seq = 0;
    size_t               n, k;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    w = writer_on(dir, 0);
    append_range(w, &seq, 0, 2, NULL);
    mvt_seg_path(dir, 1, path, sizeof(path));

    r = reader_at(dir, 0, 0);
    expect_record(r, 0, &rec);
    expect_record(r, 1, &rec);
    expect_nothing(r);

    /* Record 2 appears a few bytes at a time. */
    n = frame_record(2, buf, sizeof(buf));
    for (k = 0; k < n; k += 7) {
        write_bytes(path, O_APPEND, buf + k, n - k < 7 ? n - k : 7);
        if (k + 7 < n) {
            expect_nothing(r);
        }
    }
    expect_record(r, 2, &rec);
    expect_nothing(r);

    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.records, 3);
    assert_int_equal(st.skipped_bytes, 0);
    assert_int_equal(st.skipped_runs, 0);

    mv_actlog_reader_free(r);
    mv_actlog_writer_free(w);
    mvt_remove_tree(dir);
}


static void
test_torn_tail_newest(void **state)
{
    char                 dir[64], path[512];
    mv_actlog_writer_t  *w;
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    mv_actlog_pos_t      pos[11];
    uint64_t             seq = 0;
    unsigned             i;
    off_t                size;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    w = writer_on(dir, 0);
    append_range(w, &seq, 0, 10, pos);
    mvt_seg_path(dir, 1, path, sizeof(path));

    /* Record 9 cut mid-payload: its writer died. */
    size = file_size(path);
    assert_int_equal(truncate(path, size - 5), 0);

    r = reader_at(dir, 0, 0);
    for (i = 0; i < 9; i++) {
        expect_record(r, i, &rec);
    }
    expect_nothing(r);
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.skipped_bytes, 0);
    assert_int_equal(mv_actlog_reader_pos(r).offset, pos[9].offset);

    /* The next append lands after the torn bytes, which are then skipped. */
    append_range(w, &seq, 10, 1, pos);
    assert_int_equal(pos[10].offset, (uint64_t) (size - 5));
    expect_record(r, 10, &rec);
    assert_int_equal(rec.pos.offset, pos[10].offset);
    expect_nothing(r);

    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.records, 10);
    assert_int_equal(st.skipped_bytes, record_size(9) - 5);
    assert_int_equal(st.skipped_runs, 1);

    mv_actlog_reader_free(r);
    mv_actlog_writer_free(w);
    mvt_remove_tree(dir);
}


static void
test_torn_tail_sealed(void **state)
{
    char                 dir[64], path[512];
    mv_actlog_writer_t  *w;
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    mv_actlog_pos_t      pos[10];
    uint64_t             seq = 0;
    unsigned             i;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    w = writer_on(dir, 0);
    append_range(w, &seq, 0, 5, pos);
    mvt_seg_path(dir, 1, path, sizeof(path));

    /* Record 4 cut inside its header. */
    assert_int_equal(truncate(path, (off_t) pos[4].offset + 10), 0);

    r = reader_at(dir, 0, 0);
    for (i = 0; i < 4; i++) {
        expect_record(r, i, &rec);
    }
    expect_nothing(r);

    /* Segment 2 starts (as after a rotation): segment 1 is sealed. */
    seq = 2;
    append_range(w, &seq, 5, 3, pos);
    assert_int_equal(pos[5].segment, 2);
    for (i = 5; i < 8; i++) {
        expect_record(r, i, &rec);
        assert_int_equal(rec.pos.segment, 2);
    }
    expect_nothing(r);

    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.records, 7);
    assert_int_equal(st.skipped_bytes, 10);
    assert_int_equal(st.skipped_runs, 1);
    mv_actlog_reader_free(r);

    /* A fresh reader sees the same. */
    r = reader_at(dir, 1, 0);
    for (i = 0; i < 4; i++) {
        expect_record(r, i, &rec);
    }
    for (i = 5; i < 8; i++) {
        expect_record(r, i, &rec);
    }
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.skipped_bytes, 10);

    mv_actlog_reader_free(r);
    mv_actlog_writer_free(w);
    mvt_remove_tree(dir);
}


static void
test_garbage_resync(void **state)
{
    char                 dir[64], path[512];
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    uint8_t              buf[4096], garbage[100];
    size_t               n = 0, g;
    unsigned             i;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    mvt_seg_path(dir, 1, path, sizeof(path));

    /* Garbage: text, FF bytes, a header claiming 500000 bytes, a header
       with a bad CRC and a payload, a partial magic. */
    for (g = 0; g < sizeof(garbage); g++) {
        garbage[g] = (uint8_t) ("noise"[g % 5]);
    }
    garbage[3] = 0xff;
    garbage[20] = 0xff;
    garbage[21] = 0x4d;
    memcpy(garbage + 30, "\xff\x4d\x56\xfe\x20\xa1\x07\x00\x01\x00\x00\x00",
           12);
    g = mv_actlog_frame(1, "abcdefghij", 10, garbage + 50, 50);
    assert_int_equal(g, 26);
    garbage[70] ^= 1;
    memcpy(garbage + 97, "\xff\x4d\x56", 3);

    n += frame_record(0, buf + n, sizeof(buf) - n);
    n += frame_record(1, buf + n, sizeof(buf) - n);
    memcpy(buf + n, garbage, sizeof(garbage));
    n += sizeof(garbage);
    n += frame_record(2, buf + n, sizeof(buf) - n);
    n += frame_record(3, buf + n, sizeof(buf) - n);
    write_bytes(path, O_TRUNC, buf, n);

    r = reader_at(dir, 0, 0);
    for (i = 0; i < 4; i++) {
        expect_record(r, i, &rec);
    }
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.skipped_bytes, sizeof(garbage));
    assert_int_equal(st.skipped_runs, 1);

    /* Trailing garbage in the newest segment: skipped up to what may be
       a record being written (a partial magic), which is then skipped
       when a record follows. */
    write_bytes(path, O_APPEND, "xyz\xff\x4d", 5);
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.skipped_bytes, sizeof(garbage) + 3);
    assert_int_equal(st.skipped_runs, 2);
    n = frame_record(4, buf, sizeof(buf));
    write_bytes(path, O_APPEND, buf, n);
    expect_record(r, 4, &rec);
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.skipped_bytes, sizeof(garbage) + 5);
    assert_int_equal(st.skipped_runs, 2);

    /* Garbage only, no FF at all: skipped at once, nothing returned. */
    write_bytes(path, O_APPEND, "hello world", 11);
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.skipped_bytes, sizeof(garbage) + 16);
    assert_int_equal(st.skipped_runs, 3);

    mv_actlog_reader_free(r);
    mvt_remove_tree(dir);
}


static void
test_corrupted_records(void **state)
{
    char                 dir[64], path[512];
    mv_actlog_writer_t  *w;
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    mv_actlog_pos_t      pos[10];
    uint64_t             seq = 0;
    unsigned             i;
    uint8_t              b;
    int                  fd;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    w = writer_on(dir, 0);
    append_range(w, &seq, 0, 10, pos);
    mvt_seg_path(dir, 1, path, sizeof(path));

    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    /* Record 3: a payload byte. */
    assert_int_equal(pread(fd, &b, 1, (off_t) pos[3].offset + 20), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, (off_t) pos[3].offset + 20), 1);
    /* Record 6: its length grows by 1000 (still a valid length). */
    assert_int_equal(pread(fd, &b, 1, (off_t) pos[6].offset + 5), 1);
    b = (uint8_t) (b + 4);
    assert_int_equal(pwrite(fd, &b, 1, (off_t) pos[6].offset + 5), 1);
    /* Record 9 (the last): flags. */
    b = 1;
    assert_int_equal(pwrite(fd, &b, 1, (off_t) pos[9].offset + 10), 1);
    close(fd);

    r = reader_at(dir, 0, 0);
    for (i = 0; i < 9; i++) {
        if (i != 3 && i != 6) {
            expect_record(r, i, &rec);
        }
    }
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.records, 7);
    assert_int_equal(st.skipped_bytes,
                     record_size(3) + record_size(6) + record_size(9));
    assert_int_equal(st.skipped_runs, 3);

    mv_actlog_reader_free(r);
    mv_actlog_writer_free(w);
    mvt_remove_tree(dir);
}


static void
test_start_segment_gone(void **state)
{
    char                 dir[64], path[512];
    mv_actlog_writer_t  *w;
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    mv_actlog_pos_t      pos[60];
    mv_err_t             err;
    uint64_t             seq = 0;
    unsigned             i, first2 = 0, first3 = 0;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    w = writer_on(dir, 500);
    append_range(w, &seq, 0, 60, pos);
    assert_true(seq >= 4);
    for (i = 0; i < 60; i++) {
        if (pos[i].segment == 2 && first2 == 0) {
            first2 = i;
        }
        if (pos[i].segment == 3 && first3 == 0) {
            first3 = i;
        }
    }
    mvt_seg_path(dir, 1, path, sizeof(path));
    assert_int_equal(unlink(path), 0);

    /* The oldest present is the start of "segment 0". */
    r = reader_at(dir, 0, 0);
    expect_record(r, first2, &rec);
    mv_actlog_reader_free(r);

    /* A stored position in a removed segment: reported once. */
    r = reader_at(dir, 1, 123);
    err.msg[0] = '\0';
    assert_int_equal(mv_actlog_next(r, &rec, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "gone"));
    for (i = first2; i < 60; i++) {
        expect_record(r, i, &rec);
    }
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.skipped_runs, 1);
    mv_actlog_reader_free(r);

    /* A segment removed while the reader was behind: skipped, counted. */
    r = reader_at(dir, 0, 0);
    expect_record(r, first2, &rec);
    mvt_seg_path(dir, 3, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    for (i = first2 + 1; i < 60; i++) {
        if (i < first3 || pos[i].segment > 3) {
            expect_record(r, i, &rec);
        }
    }
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.skipped_runs, 1);
    mv_actlog_reader_free(r);

    /* A start beyond the newest segment is an error. */
    r = reader_at(dir, seq + 5, 0);
    assert_int_equal(mv_actlog_next(r, &rec, &err), MV_ERR);
    mv_actlog_reader_free(r);

    mv_actlog_writer_free(w);
    mvt_remove_tree(dir);
}


/* ---- concurrent writers ------------------------------------------------ */

static void
writer_process(const char *dir, const char *lock_path, uint64_t *shared,
    int id)
{
    mv_actlog_writer_t  *w;
    mv_err_t             err;
    char                 buf[128];
    int                  lock, n, len;

    lock = open(lock_path, O_RDWR | O_CLOEXEC);
    w = mv_actlog_writer_new(dir, 4096, 0, &err);
    if (lock < 0 || w == NULL) {
        _exit(10);
    }
    for (n = 0; n < N_PER_WRITER; n++) {
        len = snprintf(buf, sizeof(buf), "{\"w\":%d,\"n\":%d,\"pad\":\"%.*s\"}",
                       id, n, (n * 13 + id) % 40, "0123456789012345678901234"
                       "567890123456789");
        if (flock(lock, LOCK_EX) != 0) {
            _exit(11);
        }
        if (mv_actlog_append(w, shared, 1, buf, (size_t) len, NULL, &err)
            != MV_OK)
        {
            _exit(12);
        }
        if (flock(lock, LOCK_UN) != 0) {
            _exit(13);
        }
    }
    mv_actlog_writer_free(w);
    close(lock);
    _exit(0);
}


static double
now_sec(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
test_concurrent_writers(void **state)
{
    char                 dir[64], log[128], lock_path[128];
    mv_actlog_reader_t  *r;
    mv_actlog_record_t   rec;
    mv_actlog_stats_t    st;
    mv_actlog_pos_t      last = { 0, 0 };
    mv_err_t             err;
    uint64_t            *shared;
    pid_t                pids[N_WRITERS];
    int                  next_n[N_WRITERS] = { 0 };
    int                  i, w, n, status, got = 0, rc;
    char                 text[128];
    double               deadline;

    (void) state;
    make_tmpdir(dir, sizeof(dir));
    snprintf(log, sizeof(log), "%s/log", dir);
    snprintf(lock_path, sizeof(lock_path), "%s/lock", dir);
    write_bytes(lock_path, 0, "", 0);

    shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(shared != MAP_FAILED);
    *shared = 0;

    r = reader_at(log, 0, 0);

    for (i = 0; i < N_WRITERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            writer_process(log, lock_path, shared, i);
        }
    }

    /* Tail while they race. */
    deadline = now_sec() + 60;
    while (got < N_WRITERS * N_PER_WRITER && now_sec() < deadline) {
        rc = mv_actlog_next(r, &rec, &err);
        assert_true(rc >= 0);
        if (rc == 0) {
            usleep(100);
            continue;
        }
        assert_true(rec.len < sizeof(text));
        memcpy(text, rec.payload, rec.len);
        text[rec.len] = '\0';
        assert_int_equal(sscanf(text, "{\"w\":%d,\"n\":%d,", &w, &n), 2);
        assert_true(w >= 0 && w < N_WRITERS);
        assert_int_equal(n, next_n[w]);
        next_n[w]++;
        assert_true(rec.pos.segment > last.segment
                    || (rec.pos.segment == last.segment
                        && rec.pos.offset >= last.offset));
        last = rec.next;
        got++;
    }

    for (i = 0; i < N_WRITERS; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }

    assert_int_equal(got, N_WRITERS * N_PER_WRITER);
    for (i = 0; i < N_WRITERS; i++) {
        assert_int_equal(next_n[i], N_PER_WRITER);
    }
    expect_nothing(r);
    mv_actlog_reader_stats(r, &st);
    assert_int_equal(st.records, N_WRITERS * N_PER_WRITER);
    assert_int_equal(st.skipped_bytes, 0);
    assert_int_equal(st.skipped_runs, 0);
    assert_true(*shared > 20);
    assert_int_equal(last.segment, *shared - (mvt_seg_size(log, *shared) == 0));

    munmap(shared, sizeof(*shared));
    mv_actlog_reader_free(r);
    mvt_remove_tree(dir);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pos_pack),
        cmocka_unit_test(test_segment_name),
        cmocka_unit_test(test_frame_decode_roundtrip),
        cmocka_unit_test(test_decode_prefixes_and_damage),
        cmocka_unit_test(test_append_read_rotation),
        cmocka_unit_test(test_reader_resumes),
        cmocka_unit_test(test_shared_seq_discovery),
        cmocka_unit_test(test_missing_dir_and_sync),
        cmocka_unit_test(test_failed_append_appends_nothing),
        cmocka_unit_test(test_waits_for_write_in_progress),
        cmocka_unit_test(test_torn_tail_newest),
        cmocka_unit_test(test_torn_tail_sealed),
        cmocka_unit_test(test_garbage_resync),
        cmocka_unit_test(test_corrupted_records),
        cmocka_unit_test(test_start_segment_gone),
        cmocka_unit_test(test_concurrent_writers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
