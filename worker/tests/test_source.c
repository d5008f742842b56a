/*
 * test_source.c -- unit tests of the action log as the worker's source
 * (source.h, source_actlog.c): records written with mv_actlog_append (one
 * writer, so a local segment number stands in for the shared one and no
 * lock is needed) are handed out in order with their type and payload;
 * the positions after k records, stored and given back to a new source,
 * resume exactly at record k + 1, also across segment rotations; positions
 * of other streams are ignored, a stored position in segment 0 is
 * refused; the stats count records and the bytes skipped around a
 * corrupted record.  As a consumer of the log it registers at open, and
 * each durable() registers the oldest of the last `keep` durable positions
 * and removes (and counts) the segments every consumer is past.  Its
 * backlog is the bytes of the log past the reader.
 *
 * Payloads are canonical action and item records (mv_action_encode,
 * mv_item_encode), as nginx writes them.  Every test gets its own mkdtemp
 * directory under /tmp (a cmocka setup), removed by the teardown even when
 * it fails.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/actlog_files.h"
#include "tests/tmpdir.h"

#include "actlog.h"
#include "events.h"
#include "sources/source.h"

#define T0        1704067200000LL          /* 2024-01-01T00:00:00.000Z */
#define PAYLOAD   4096


/* ---- helpers ------------------------------------------------------------ */

/*
 * Record k: every fifth an item (dim 4), the others actions of varying
 * users, items and types.  Returns the payload length; *type the type.
 */
static size_t
make_record(unsigned k, uint16_t *type, char *buf, size_t cap)
{
    size_t  len;

    if (k % 5 == 4) {
        static mv_item_event_t  ev;
        float                   v[4] = { (float) k, 0.5f, -1.0f, 1e-3f };

        memset(&ev, 0, sizeof(ev));
        snprintf(ev.item_id, sizeof(ev.item_id), "item-%u", k);
        snprintf(ev.category, sizeof(ev.category), "cat-%u", k % 3);
        ev.embedding = v;
        ev.dim = 4;
        ev.popularity = 0.25f * (float) k;
        ev.created_at_ms = T0 + k;
        *type = MV_RECORD_ITEM;
        len = mv_item_encode(&ev, buf, cap);
    } else {
        mv_action_t  a;

        memset(&a, 0, sizeof(a));
        snprintf(a.event_id, sizeof(a.event_id), "ev-%u", k);
        snprintf(a.user_id, sizeof(a.user_id), "user-%u", k % 11);
        snprintf(a.item_id, sizeof(a.item_id), "item-%u", k % 17);
        a.type = (mv_action_type_t) (k % MV_ACTION_TYPES);
        a.timestamp_ms = T0 + (int64_t) k * 1000;
        *type = MV_RECORD_ACTION;
        len = mv_action_encode(&a, buf, cap);
    }
    assert_true(len > 0);
    return len;
}


/* Appends records first .. first + n - 1; where[k - first] = positions. */
static void
append_records(mv_actlog_writer_t *w, uint64_t *shared_seq, unsigned first,
    unsigned n, mv_actlog_pos_t *where)
{
    char      buf[PAYLOAD];
    uint16_t  type;
    size_t    len;
    mv_err_t  err;

    for (unsigned k = first; k < first + n; k++) {
        len = make_record(k, &type, buf, sizeof(buf));
        if (mv_actlog_append(w, shared_seq, type, buf, len,
                             where ? &where[k - first] : NULL, &err)
            != MV_OK)
        {
            fail_msg("append %u: %s", k, err.msg);
        }
    }
}


/* The parameters of a plain reader of dir (no registration, no trim). */
static mvw_actlog_params_t
plain(const char *dir)
{
    mvw_actlog_params_t  p;

    memset(&p, 0, sizeof(p));
    p.dir = dir;
    return p;
}


static mvw_source_t *
open_source(const char *dir, const mv_stream_pos_t *pos, size_t n)
{
    mv_err_t             err;
    mvw_actlog_params_t  p = plain(dir);
    mvw_source_t        *s = mvw_source_actlog_open(&p, pos, n, &err);

    if (s == NULL) {
        fail_msg("mvw_source_actlog_open(%s): %s", dir, err.msg);
    }
    return s;
}


/* Reads the next record and checks that it is record k. */
static void
expect_record(mvw_source_t *s, unsigned k)
{
    char          want[PAYLOAD];
    uint16_t      type;
    size_t        len = make_record(k, &type, want, sizeof(want));
    mvw_record_t  rec;
    mv_err_t      err;
    int           rc;

    rc = mvw_source_next(s, &rec, &err);
    if (rc != 1) {
        fail_msg("record %u: next returned %d (%s)", k, rc,
                 rc < 0 ? err.msg : "nothing");
    }
    assert_int_equal(rec.type, type);
    assert_int_equal(rec.len, len);
    assert_memory_equal(rec.payload, want, len);
}


static void
expect_nothing(mvw_source_t *s)
{
    mvw_record_t  rec;
    mv_err_t      err;

    assert_int_equal(mvw_source_next(s, &rec, &err), 0);
}


/* The source's actlog position, checked for shape. */
static mv_stream_pos_t
position_of(const mvw_source_t *s)
{
    mv_stream_pos_t  pos[4];

    memset(pos, 0xa5, sizeof(pos));
    assert_int_equal(mvw_source_positions(s, pos, 4), 1);
    assert_string_equal(pos[0].stream, MV_ACTLOG_STREAM_NAME);
    assert_int_equal(pos[0].partition, 0);
    return pos[0];
}


/* ---- tests -------------------------------------------------------------- */

static void
test_reads_all_from_the_start(void **state)
{
    char                 sub[96];
    uint64_t             seq = 0;
    mv_actlog_writer_t  *w;
    mvw_source_t        *s;
    mvw_source_stats_t   st;
    mv_stream_pos_t      pos, none[1];
    mv_actlog_pos_t      p;
    mv_err_t             err;
    const char          *dir = *state;

    w = mv_actlog_writer_new(dir, 0, 0, &err);
    assert_non_null(w);
    append_records(w, &seq, 0, 50, NULL);
    assert_int_equal(seq, 1);

    s = open_source(dir, NULL, 0);
    assert_string_equal(s->ops->name, "actlog");
    for (unsigned k = 0; k < 50; k++) {
        expect_record(s, k);
    }
    expect_nothing(s);
    mvw_source_stats(s, &st);
    assert_int_equal(st.records, 50);
    assert_int_equal(st.skipped_bytes, 0);
    assert_int_equal(st.skipped_runs, 0);

    /* the position is the end of segment 1; cap 0 writes nothing */
    pos = position_of(s);
    p = mv_actlog_pos_unpack(pos.offset);
    assert_int_equal(p.segment, 1);
    assert_int_equal(p.offset, mvt_seg_size(dir, 1));
    assert_int_equal(mvw_source_positions(s, none, 0), 0);

    /* tailing: records appended later are handed out */
    append_records(w, &seq, 50, 3, NULL);
    expect_record(s, 50);
    expect_record(s, 51);
    expect_record(s, 52);
    expect_nothing(s);
    mvw_source_free(s);
    mvw_source_free(NULL);

    /* a directory that does not exist yet: nothing, then the records */
    snprintf(sub, sizeof(sub), "%s/later", dir);
    s = open_source(sub, NULL, 0);
    expect_nothing(s);
    mv_actlog_writer_free(w);
    w = mv_actlog_writer_new(sub, 0, 0, &err);
    assert_non_null(w);
    seq = 0;
    append_records(w, &seq, 0, 2, NULL);
    expect_record(s, 0);
    expect_record(s, 1);
    expect_nothing(s);
    mvw_source_free(s);

    mv_actlog_writer_free(w);
}


static void
test_resume_after_k_records(void **state)
{
    enum { N = 60 };
    uint64_t             seq = 0;
    mv_actlog_writer_t  *w;
    mv_actlog_pos_t      where[N];
    mvw_source_t        *s, *r;
    mvw_source_stats_t   st;
    mv_stream_pos_t      pos;
    mv_actlog_pos_t      p;
    mv_err_t             err;
    unsigned             crossings = 0;
    const char          *dir = *state;

    /* ~ 3 records a segment */
    w = mv_actlog_writer_new(dir, 400, 0, &err);
    assert_non_null(w);
    append_records(w, &seq, 0, N, where);
    assert_true(seq > 10);
    assert_true(mvt_seg_size(dir, 2) > 0);

    for (unsigned k = 1; k <= N; k++) {
        s = open_source(dir, NULL, 0);
        for (unsigned j = 0; j < k; j++) {
            expect_record(s, j);
        }
        pos = position_of(s);
        p = mv_actlog_pos_unpack(pos.offset);
        /* right after record k - 1: same segment, its end */
        assert_int_equal(p.segment, where[k - 1].segment);
        assert_true(p.offset > where[k - 1].offset);
        mvw_source_free(s);

        if (k < N && where[k].segment != where[k - 1].segment) {
            crossings++;
            assert_int_equal(p.offset, mvt_seg_size(dir, p.segment));
        } else if (k < N) {
            assert_int_equal(p.offset, where[k].offset);
        }

        r = open_source(dir, &pos, 1);
        for (unsigned j = k; j < N; j++) {
            expect_record(r, j);
        }
        expect_nothing(r);
        mvw_source_stats(r, &st);
        assert_int_equal(st.records, N - k);
        assert_int_equal(st.skipped_bytes, 0);

        /* a source that read nothing since it was opened is where it
           was opened (or, past the end of a sealed segment, at the start
           of the next one) */
        if (k == N) {
            mv_stream_pos_t  again;
            mv_actlog_pos_t  q;

            mvw_source_free(r);
            r = open_source(dir, &pos, 1);
            expect_nothing(r);
            again = position_of(r);
            q = mv_actlog_pos_unpack(again.offset);
            assert_true(again.offset == pos.offset
                        || (q.segment == p.segment + 1 && q.offset == 0));
            /* and it continues with what is appended next */
            append_records(w, &seq, N, 2, NULL);
            expect_record(r, N);
            expect_record(r, N + 1);
        }
        mvw_source_free(r);
    }
    assert_true(crossings > 5);

    mv_actlog_writer_free(w);
}


static void
test_other_streams_ignored(void **state)
{
    uint64_t             seq = 0;
    mv_actlog_writer_t  *w;
    mvw_source_t        *s;
    mv_stream_pos_t      pos[3], mine;
    mv_err_t             err;
    const char          *dir = *state;

    w = mv_actlog_writer_new(dir, 0, 0, &err);
    assert_non_null(w);
    append_records(w, &seq, 0, 10, NULL);

    memset(pos, 0, sizeof(pos));
    strcpy(pos[0].stream, "user_actions");                 /* Kafka */
    pos[0].offset = (1ull << 40) | 500;
    strcpy(pos[1].stream, "actlog2");
    pos[1].offset = (1ull << 40) | 500;
    strcpy(pos[2].stream, MV_ACTLOG_STREAM_NAME);          /* partition 1 */
    pos[2].partition = 1;
    pos[2].offset = (1ull << 40) | 500;

    s = open_source(dir, pos, 3);
    for (unsigned k = 0; k < 10; k++) {
        expect_record(s, k);
    }
    expect_nothing(s);
    mvw_source_free(s);

    /* among other streams, the actlog one is taken */
    s = open_source(dir, NULL, 0);
    for (unsigned k = 0; k < 4; k++) {
        expect_record(s, k);
    }
    mine = position_of(s);
    mvw_source_free(s);
    pos[1] = mine;
    s = open_source(dir, pos, 3);
    expect_record(s, 4);
    mvw_source_free(s);

    mv_actlog_writer_free(w);
}


static void
test_segment_zero_refused(void **state)
{
    mv_stream_pos_t      pos;
    mv_err_t             err;
    const char          *dir = *state;
    mvw_actlog_params_t  p = plain(dir);

    memset(&pos, 0, sizeof(pos));
    strcpy(pos.stream, MV_ACTLOG_STREAM_NAME);

    pos.offset = 123;                       /* segment 0, offset 123 */
    err.msg[0] = '\0';
    assert_null(mvw_source_actlog_open(&p, &pos, 1, &err));
    assert_non_null(strstr(err.msg, "segment 0"));
    pos.offset = 0;
    assert_null(mvw_source_actlog_open(&p, &pos, 1, &err));

    /* an empty directory name is refused too, and a bad consumer name */
    p.dir = "";
    assert_null(mvw_source_actlog_open(&p, NULL, 0, &err));
    p.dir = dir;
    p.consumer = "no/slash";
    p.keep = 1;
    assert_null(mvw_source_actlog_open(&p, NULL, 0, &err));
    assert_non_null(strstr(err.msg, "consumer"));
}


static void
test_stats_count_skipped_bytes(void **state)
{
    enum { N = 12, BAD = 6 };
    char                 path[512];
    uint64_t             seq = 0;
    mv_actlog_writer_t  *w;
    mv_actlog_pos_t      where[N];
    mvw_source_t        *s;
    mvw_source_stats_t   st;
    mv_err_t             err;
    off_t                mid, rec_end;
    unsigned char        c;
    int                  fd;
    const char          *dir = *state;

    w = mv_actlog_writer_new(dir, 0, 0, &err);
    assert_non_null(w);
    append_records(w, &seq, 0, N, where);

    /* one byte in the middle of record BAD (mid-segment) */
    rec_end = (off_t) where[BAD + 1].offset;
    mid = (off_t) (where[BAD].offset + (uint64_t) rec_end) / 2;
    mvt_seg_path(dir, 1, path, sizeof(path));
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, mid), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, mid), 1);
    close(fd);

    s = open_source(dir, NULL, 0);
    for (unsigned k = 0; k < N; k++) {
        if (k != BAD) {
            expect_record(s, k);
        }
    }
    expect_nothing(s);
    mvw_source_stats(s, &st);
    assert_int_equal(st.records, N - 1);
    assert_int_equal(st.skipped_bytes, rec_end - (off_t) where[BAD].offset);
    assert_int_equal(st.skipped_runs, 1);

    /* a source resumed after the damage does not count it again */
    {
        mv_stream_pos_t  pos = position_of(s);
        mvw_source_t    *r;

        append_records(w, &seq, N, 1, NULL);
        r = open_source(dir, &pos, 1);
        expect_record(r, N);
        mvw_source_stats(r, &st);
        assert_int_equal(st.records, 1);
        assert_int_equal(st.skipped_bytes, 0);
        mvw_source_free(r);
    }
    mvw_source_free(s);

    mv_actlog_writer_free(w);
}


/*
 * Before the first record there is no position to store: positions()
 * returns none (not the reader's "oldest segment" marker, segment 0, which
 * a reopen would refuse).
 */
static void
test_positions_before_first_record(void **state)
{
    const char          *dir = *state;
    uint64_t             seq = 0;
    mv_actlog_writer_t  *w;
    mvw_source_t        *s, *r;
    mv_stream_pos_t      pos;
    mv_err_t             err;

    w = mv_actlog_writer_new(dir, 0, 0, &err);
    assert_non_null(w);
    append_records(w, &seq, 0, 3, NULL);

    /* nothing consumed yet: no position to store, and a reopen without
       one starts at the first record again */
    s = open_source(dir, NULL, 0);
    assert_int_equal(mvw_source_positions(s, &pos, 1), 0);
    r = open_source(dir, NULL, 0);
    expect_record(r, 0);
    mvw_source_free(r);
    mvw_source_free(s);

    mv_actlog_writer_free(w);
}


/* The registration of consumer name in dir (fails the test if none). */
static mv_actlog_consumer_t
registration(const char *dir, const char *name)
{
    mv_actlog_consumer_t  *list, c;
    mv_err_t               err;
    size_t                 n, i;

    assert_int_equal(mv_actlog_consumers(dir, &list, &n, &err), MV_OK);
    for (i = 0; i < n && strcmp(list[i].name, name) != 0; i++) {
    }
    if (i == n) {
        free(list);
        fail_msg("no registration %s", name);
    }
    c = list[i];
    free(list);
    assert_int_equal(c.damaged, 0);
    return c;
}


/* The source's position after k records read from the start (a fresh
   source each time, as publishes see it). */
static mv_stream_pos_t
position_after(const char *dir, unsigned k)
{
    mvw_source_t     *s = open_source(dir, NULL, 0);
    mv_stream_pos_t   pos;

    for (unsigned i = 0; i < k; i++) {
        expect_record(s, i);
    }
    pos = position_of(s);
    mvw_source_free(s);
    return pos;
}


/*
 * With a consumer: registered at segment 0 on open (nothing removed), then
 * at each durable() the oldest of the last `keep` durable positions, and
 * the segments every consumer is past are removed and counted.
 */
static void
test_durable_registers_and_trims(void **state)
{
    enum { N = 120 };
    const char            *dir = *state;
    uint64_t               seq = 0;
    mv_actlog_writer_t    *w;
    mv_actlog_pos_t        where[N], at;
    mvw_actlog_params_t    p = plain(dir);
    mvw_source_t          *s;
    mvw_source_stats_t     st;
    mv_stream_pos_t        pos[3];
    mv_actlog_consumer_t   c;
    mv_err_t               err;

    w = mv_actlog_writer_new(dir, 2048, 0, &err);
    assert_non_null(w);
    append_records(w, &seq, 0, N, where);
    assert_true(where[N - 1].segment >= 8);

    p.consumer = "trainer-test";
    p.note = "unit test";
    p.keep = 2;
    s = mvw_source_actlog_open(&p, NULL, 0, &err);
    assert_non_null(s);
    c = registration(dir, "trainer-test");
    assert_int_equal(c.pos.segment, 0);
    assert_string_equal(c.note, "unit test");

    /* the positions after 30, 60 and 90 records: publishes 1, 2, 3 */
    pos[0] = position_after(dir, 30);
    pos[1] = position_after(dir, 60);
    pos[2] = position_after(dir, 90);

    /* publish 1: the other kept generation is unknown: all stays */
    mvw_source_durable(s, &pos[0], 1);
    assert_int_equal(registration(dir, "trainer-test").pos.segment, 0);
    assert_true(mvt_seg_size(dir, 1) > 0);

    /* publish 2: registered at publish 1's position; below it, gone */
    mvw_source_durable(s, &pos[1], 1);
    at = mv_actlog_pos_unpack(pos[0].offset);
    c = registration(dir, "trainer-test");
    assert_int_equal(c.pos.segment, at.segment);
    assert_int_equal(c.pos.offset, at.offset);
    assert_int_equal(mvt_seg_size(dir, at.segment - 1), -1);
    assert_true(mvt_seg_size(dir, at.segment) > 0);
    mvw_source_stats(s, &st);
    assert_int_equal(st.removed_segments, at.segment - 1);

    /* publish 3: publish 2's position; a second consumer further back
       holds the log where it is */
    c.pos = mv_actlog_pos_unpack(pos[0].offset);
    snprintf(c.name, sizeof(c.name), "other");
    assert_int_equal(mv_actlog_register(dir, &c, 0, &err), MV_OK);
    mvw_source_durable(s, &pos[2], 1);
    assert_int_equal(registration(dir, "trainer-test").pos.segment,
                     mv_actlog_pos_unpack(pos[1].offset).segment);
    assert_true(mvt_seg_size(dir, at.segment) > 0);
    mvw_source_stats(s, &st);
    assert_int_equal(st.removed_segments, at.segment - 1);
    assert_true(st.removed_bytes > 0);

    /* positions of another stream only: nothing happens */
    strcpy(pos[0].stream, "user_actions");
    mvw_source_durable(s, &pos[0], 1);
    assert_int_equal(registration(dir, "trainer-test").pos.segment,
                     mv_actlog_pos_unpack(pos[1].offset).segment);

    mvw_source_free(s);
    mv_actlog_writer_free(w);
}


/* A reader registered as a consumer still reads everything: registering
   at open holds the log before its reader lists the directory. */
static void
test_consumer_reads_all(void **state)
{
    const char           *dir = *state;
    uint64_t              seq = 0;
    mv_actlog_writer_t   *w;
    mvw_actlog_params_t   p = plain(dir);
    mvw_source_t         *s;
    mv_err_t              err;

    w = mv_actlog_writer_new(dir, 1024, 0, &err);
    assert_non_null(w);
    append_records(w, &seq, 0, 40, NULL);
    p.consumer = "reader";
    p.keep = 3;
    s = mvw_source_actlog_open(&p, NULL, 0, &err);
    assert_non_null(s);
    for (unsigned k = 0; k < 40; k++) {
        expect_record(s, k);
    }
    expect_nothing(s);
    mvw_source_free(s);
    mv_actlog_writer_free(w);
}


/*
 * Backlog: the bytes of the log past the reader, over segment rotations:
 * all of them before anything is read, the sizes of the segments not
 * reached plus the rest of the current one while reading, 0 once all is
 * read, and what is appended next.  Records are not counted (-1).
 */
static void
test_backlog_bytes(void **state)
{
    enum { N = 30 };
    uint64_t             seq = 0, total = 0;
    mv_actlog_writer_t  *w;
    mv_actlog_pos_t      where[N + 1];
    mvw_source_t        *s;
    mv_actlog_pos_t      p;
    int64_t              records, bytes, want;
    mv_err_t             err;
    const char          *dir = *state;

    /* ~ 3 records a segment */
    w = mv_actlog_writer_new(dir, 400, 0, &err);
    assert_non_null(w);

    /* an empty log: nothing behind */
    s = open_source(dir, NULL, 0);
    mvw_source_backlog(s, &records, &bytes);
    assert_int_equal(records, -1);
    assert_int_equal(bytes, 0);
    mvw_source_free(s);

    append_records(w, &seq, 0, N, where);
    assert_true(seq > 5);
    for (uint64_t g = 1; g <= seq; g++) {
        assert_true(mvt_seg_size(dir, g) >= 0);
        total += (uint64_t) mvt_seg_size(dir, g);
    }

    s = open_source(dir, NULL, 0);
    mvw_source_backlog(s, &records, &bytes);
    assert_int_equal(records, -1);
    assert_int_equal(bytes, total);

    for (unsigned k = 0; k < N; k++) {
        expect_record(s, k);
        p = mv_actlog_pos_unpack(position_of(s).offset);
        want = mvt_seg_size(dir, p.segment) - (int64_t) p.offset;
        for (uint64_t g = p.segment + 1; g <= seq; g++) {
            want += mvt_seg_size(dir, g);
        }
        mvw_source_backlog(s, &records, &bytes);
        assert_int_equal(bytes, want);
        assert_true(bytes < (int64_t) total);
    }
    expect_nothing(s);
    mvw_source_backlog(s, &records, &bytes);
    assert_int_equal(bytes, 0);

    /* appended after: behind by exactly that record's bytes */
    p = mv_actlog_pos_unpack(position_of(s).offset);
    append_records(w, &seq, N, 1, &where[N]);
    mvw_source_backlog(s, &records, &bytes);
    if (where[N].segment == p.segment) {
        assert_int_equal(bytes, mvt_seg_size(dir, p.segment)
                                - (int64_t) p.offset);
    } else {
        assert_int_equal(bytes, mvt_seg_size(dir, where[N].segment));
    }
    assert_true(bytes > 0);
    expect_record(s, N);
    mvw_source_backlog(s, &records, &bytes);
    assert_int_equal(bytes, 0);
    mvw_source_free(s);

    /* a source resumed at a stored position is behind by what follows */
    s = open_source(dir, NULL, 0);
    for (unsigned k = 0; k < 10; k++) {
        expect_record(s, k);
    }
    {
        mv_stream_pos_t  pos = position_of(s);
        mvw_source_t    *r;
        int64_t          b2;

        mvw_source_backlog(s, &records, &bytes);
        r = open_source(dir, &pos, 1);
        mvw_source_backlog(r, &records, &b2);
        assert_int_equal(b2, bytes);
        mvw_source_free(r);
    }
    mvw_source_free(s);

    mv_actlog_writer_free(w);
}


int
main(void)
{
#define WITH_TMPDIR(f) \
    cmocka_unit_test_setup_teardown(f, mvt_tmpdir_setup, mvt_tmpdir_teardown)

    const struct CMUnitTest  tests[] = {
        WITH_TMPDIR(test_reads_all_from_the_start),
        WITH_TMPDIR(test_resume_after_k_records),
        WITH_TMPDIR(test_other_streams_ignored),
        WITH_TMPDIR(test_segment_zero_refused),
        WITH_TMPDIR(test_stats_count_skipped_bytes),
        WITH_TMPDIR(test_positions_before_first_record),
        WITH_TMPDIR(test_durable_registers_and_trims),
        WITH_TMPDIR(test_consumer_reads_all),
        WITH_TMPDIR(test_backlog_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
