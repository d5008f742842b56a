/*
 * test_actlog_trim.c -- unit tests of the action log's retention
 * (actlog.h): consumer registrations (written, read back, refused, damaged),
 * the disk use, and mv_actlog_trim: segments wholly before every live
 * consumer go, the newest never, retention by age and its byte cap, the
 * minimum over consumers, damaged and expired registrations, a trim that
 * finds the lock taken, and a reader and a writer working across a trim.
 *
 * Segments are made as plain files of a chosen size and mtime where only
 * the directory matters, and with the appender where records matter.
 * Every test works in its own mkdtemp directory (tmpdir.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "actlog_files.h"
#include "tmpdir.h"

#include "actlog.h"


#define HOUR_MS   (3600 * 1000LL)


/* ---- helpers ------------------------------------------------------------ */

static int64_t
now_ms(void)
{
    return mv_clock_realtime_ms();
}


static int
seg_exists(const char *dir, uint64_t seq)
{
    char  path[512];

    mvt_seg_path(dir, seq, path, sizeof(path));
    return access(path, F_OK) == 0;
}


/* Sets path's mtime to age_ms before now. */
static void
set_age(const char *path, int64_t age_ms)
{
    struct timespec  ts[2];
    int64_t          t = now_ms() - age_ms;

    ts[0].tv_sec = ts[1].tv_sec = (time_t) (t / 1000);
    ts[0].tv_nsec = ts[1].tv_nsec = (long) (t % 1000) * 1000000L;
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}


/* Segment seq of bytes bytes (any content), last written age_ms ago. */
static void
make_segment(const char *dir, uint64_t seq, size_t bytes, int64_t age_ms)
{
    char   path[512];
    char  *buf = calloc(1, bytes + 1);
    int    fd;

    assert_non_null(buf);
    mvt_seg_path(dir, seq, path, sizeof(path));
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, bytes), (ssize_t) bytes);
    close(fd);
    free(buf);
    set_age(path, age_ms);
}


/* Segments first .. last of 100 * seq bytes, each age_ms old. */
static void
make_segments(const char *dir, uint64_t first, uint64_t last, int64_t age_ms)
{
    for (uint64_t s = first; s <= last; s++) {
        make_segment(dir, s, (size_t) (100 * s), age_ms);
    }
}


static void
register_at(const char *dir, const char *name, uint64_t segment,
    uint64_t offset, int64_t updated_ms)
{
    mv_actlog_consumer_t  c;
    mv_err_t              err;

    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "%s", name);
    c.pos.segment = segment;
    c.pos.offset = offset;
    c.updated_ms = updated_ms;
    snprintf(c.note, sizeof(c.note), "test consumer %s", name);
    err.msg[0] = '\0';
    if (mv_actlog_register(dir, &c, 1000, &err) != MV_OK) {
        fail_msg("register %s: %s", name, err.msg);
    }
}


static void
consumer_file(const char *dir, const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/%s/%s", dir, MV_ACTLOG_CONSUMERS_DIR, name);
}


static void
write_file(const char *path, const char *text)
{
    int  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
}


static mv_actlog_retention_t
retention(int64_t keep_ms, uint64_t max_bytes, int64_t expire_ms)
{
    mv_actlog_retention_t  r;

    r.keep_ms = keep_ms;
    r.max_bytes = max_bytes;
    r.expire_ms = expire_ms;
    return r;
}


static void
trim_ok(const char *dir, mv_actlog_retention_t r, mv_actlog_trim_report_t *rep)
{
    mv_err_t  err;

    err.msg[0] = '\0';
    if (mv_actlog_trim(dir, &r, now_ms(), rep, &err) != MV_OK) {
        fail_msg("trim: %s", err.msg);
    }
}


/* ---- registrations ---------------------------------------------------- */

static void
test_register_and_list(void **state)
{
    const char            *dir = *state;
    mv_actlog_consumer_t  *list, c;
    mv_err_t               err;
    char                   path[512];
    size_t                 n;

    /* none yet: no directory at all */
    assert_int_equal(mv_actlog_consumers(dir, &list, &n, &err), MV_OK);
    assert_null(list);
    assert_int_equal(n, 0);

    register_at(dir, "trainer-b", 7, 1234, 1700000000123LL);
    register_at(dir, "trainer-a", 3, 0, 1700000000456LL);
    register_at(dir, "trainer-b", 9, 55, 1700000000789LL);   /* moves */

    assert_int_equal(mv_actlog_consumers(dir, &list, &n, &err), MV_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "trainer-a");
    assert_int_equal(list[0].pos.segment, 3);
    assert_int_equal(list[0].pos.offset, 0);
    assert_string_equal(list[1].name, "trainer-b");
    assert_int_equal(list[1].damaged, 0);
    assert_int_equal(list[1].pos.segment, 9);
    assert_int_equal(list[1].pos.offset, 55);
    assert_int_equal(list[1].updated_ms, 1700000000789LL);
    assert_string_equal(list[1].note, "test consumer trainer-b");
    free(list);

    /* no temp file is left beside them, and a stranger is not listed */
    snprintf(path, sizeof(path), "%s/%s/.trainer-b.tmp", dir,
             MV_ACTLOG_CONSUMERS_DIR);
    assert_int_equal(access(path, F_OK), -1);
    consumer_file(dir, "not a name", path, sizeof(path));
    write_file(path, "whatever");
    assert_int_equal(mv_actlog_consumers(dir, &list, &n, &err), MV_OK);
    assert_int_equal(n, 2);
    free(list);

    /* refusals: bad names, a note with a newline, a negative time */
    memset(&c, 0, sizeof(c));
    c.pos.segment = 1;
    snprintf(c.name, sizeof(c.name), ".hidden");
    assert_int_equal(mv_actlog_register(dir, &c, 0, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "bad consumer name"));
    snprintf(c.name, sizeof(c.name), "a/b");
    assert_int_equal(mv_actlog_register(dir, &c, 0, &err), MV_ERR);
    c.name[0] = '\0';
    assert_int_equal(mv_actlog_register(dir, &c, 0, &err), MV_ERR);
    snprintf(c.name, sizeof(c.name), "ok");
    snprintf(c.note, sizeof(c.note), "two\nlines");
    assert_int_equal(mv_actlog_register(dir, &c, 0, &err), MV_ERR);
    c.note[0] = '\0';
    c.updated_ms = -1;
    assert_int_equal(mv_actlog_register(dir, &c, 0, &err), MV_ERR);
    consumer_file(dir, "ok", path, sizeof(path));
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(mv_actlog_consumer_name_ok("trainer-0a1b2c3d"), 1);
    assert_int_equal(mv_actlog_consumer_name_ok("x y"), 0);
}


/* Damaged files are listed as damaged, with the reason. */
static void
test_damaged_registrations(void **state)
{
    const char            *dir = *state;
    mv_actlog_consumer_t  *list;
    mv_err_t               err;
    char                   path[512], text[1024];
    size_t                 n;
    FILE                  *f;
    char                  *p;

    register_at(dir, "good", 5, 10, now_ms());
    register_at(dir, "flipped", 5, 10, now_ms());

    /* one digit of the position changed: the CRC no longer matches */
    consumer_file(dir, "flipped", path, sizeof(path));
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    p = strstr(text, "position 5 ");
    assert_non_null(p);
    p[9] = '4';
    write_file(path, text);

    consumer_file(dir, "garbage", path, sizeof(path));
    write_file(path, "hello\n");
    consumer_file(dir, "empty", path, sizeof(path));
    write_file(path, "");

    assert_int_equal(mv_actlog_consumers(dir, &list, &n, &err), MV_OK);
    assert_int_equal(n, 4);
    assert_string_equal(list[0].name, "empty");
    assert_int_equal(list[0].damaged, 1);
    assert_string_equal(list[1].name, "flipped");
    assert_int_equal(list[1].damaged, 1);
    assert_string_equal(list[1].note, "crc32c mismatch");
    assert_string_equal(list[2].name, "garbage");
    assert_int_equal(list[2].damaged, 1);
    assert_string_equal(list[3].name, "good");
    assert_int_equal(list[3].damaged, 0);
    free(list);
}


/* ---- disk use ------------------------------------------------------------ */

static void
test_usage(void **state)
{
    const char         *dir = *state;
    char                path[512];
    mv_actlog_usage_t   u;
    mv_err_t            err;

    snprintf(path, sizeof(path), "%s/none", dir);
    assert_int_equal(mv_actlog_usage(path, &u, &err), MV_OK);
    assert_int_equal(u.segments, 0);
    assert_int_equal(u.bytes, 0);

    make_segments(dir, 3, 5, 0);                   /* 300 + 400 + 500 */
    register_at(dir, "someone", 3, 0, now_ms());   /* not counted */
    snprintf(path, sizeof(path), "%s/actions-1.log", dir);
    write_file(path, "not a segment name");
    assert_int_equal(mv_actlog_usage(dir, &u, &err), MV_OK);
    assert_int_equal(u.segments, 3);
    assert_int_equal(u.bytes, 1200);
    assert_int_equal(u.lowest, 3);
    assert_int_equal(u.highest, 5);
}


/* ---- trimming ------------------------------------------------------------ */

/* Segments wholly before the consumer go; its own segment stays. */
static void
test_trim_before_position(void **state)
{
    const char               *dir = *state;
    mv_actlog_trim_report_t   rep;

    make_segments(dir, 1, 5, 2 * HOUR_MS);
    register_at(dir, "trainer", 4, 10, now_ms());

    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 3);
    assert_int_equal(rep.removed_bytes, 100 + 200 + 300);
    assert_int_equal(rep.stop, MV_ACTLOG_STOP_CONSUMER);
    assert_string_equal(rep.held_by, "trainer");
    assert_int_equal(rep.floor.segment, 4);
    assert_int_equal(rep.floor.offset, 10);
    assert_int_equal(rep.live, 1);
    assert_int_equal(rep.left.segments, 2);
    assert_int_equal(rep.left.bytes, 400 + 500);
    assert_int_equal(rep.left.lowest, 4);
    assert_false(seg_exists(dir, 3));
    assert_true(seg_exists(dir, 4));

    /* again: nothing more to do */
    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 0);
    assert_int_equal(rep.left.segments, 2);
}


/* A consumer past every segment still leaves the newest. */
static void
test_trim_keeps_newest(void **state)
{
    const char               *dir = *state;
    mv_actlog_trim_report_t   rep;

    make_segments(dir, 1, 4, 2 * HOUR_MS);
    register_at(dir, "trainer", 99, 0, now_ms());

    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 3);
    assert_int_equal(rep.stop, MV_ACTLOG_STOP_NEWEST);
    assert_int_equal(rep.left.segments, 1);
    assert_true(seg_exists(dir, 4));

    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 0);
    assert_true(seg_exists(dir, 4));
}


/* Segments younger than keep_ms stay, and with them every later one. */
static void
test_trim_retention_age(void **state)
{
    const char               *dir = *state;
    mv_actlog_trim_report_t   rep;

    make_segments(dir, 1, 2, 3 * HOUR_MS);
    make_segments(dir, 3, 6, HOUR_MS / 2);
    make_segment(dir, 4, 400, 3 * HOUR_MS);    /* old, but after a young one */
    register_at(dir, "trainer", 6, 0, now_ms());

    trim_ok(dir, retention(HOUR_MS, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 2);
    assert_int_equal(rep.stop, MV_ACTLOG_STOP_RETENTION);
    assert_false(seg_exists(dir, 2));
    assert_true(seg_exists(dir, 3));
    assert_true(seg_exists(dir, 4));          /* no hole after 3 */

    /* keep 0: everything the consumer is past goes */
    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 3);
    assert_int_equal(rep.left.lowest, 6);
}


/* Above max_bytes applied segments go even when young; never what a
   consumer still needs. */
static void
test_trim_byte_cap(void **state)
{
    const char               *dir = *state;
    mv_actlog_trim_report_t   rep;

    make_segments(dir, 1, 6, 0);               /* 2100 bytes, all young */
    register_at(dir, "trainer", 5, 0, now_ms());

    /* cap 1200: 1 (100), 2 (200), 3 (300) go, leaving 1500 > 1200 ... */
    trim_ok(dir, retention(HOUR_MS, 1200, 0), &rep);
    assert_int_equal(rep.removed_segments, 4);  /* ... and 4: 1100 left */
    assert_int_equal(rep.removed_bytes, 1000);
    assert_int_equal(rep.left.bytes, 1100);
    assert_int_equal(rep.stop, MV_ACTLOG_STOP_CONSUMER);

    /* under the cap, young segments stay */
    register_at(dir, "trainer", 7, 0, now_ms());
    make_segment(dir, 7, 10, 0);
    trim_ok(dir, retention(HOUR_MS, 5000, 0), &rep);
    assert_int_equal(rep.removed_segments, 0);
    assert_int_equal(rep.stop, MV_ACTLOG_STOP_RETENTION);

    /* a cap of 1 byte: down to the newest */
    trim_ok(dir, retention(HOUR_MS, 1, 0), &rep);
    assert_int_equal(rep.removed_segments, 2);
    assert_int_equal(rep.left.segments, 1);
    assert_int_equal(rep.left.lowest, 7);
}


/* The lowest of several consumers holds the log. */
static void
test_trim_consumers_minimum(void **state)
{
    const char               *dir = *state;
    mv_actlog_trim_report_t   rep;

    make_segments(dir, 1, 8, 2 * HOUR_MS);
    register_at(dir, "fast", 7, 0, now_ms());
    register_at(dir, "slow", 3, 5, now_ms());
    register_at(dir, "middle", 5, 0, now_ms());

    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 2);
    assert_int_equal(rep.live, 3);
    assert_string_equal(rep.held_by, "slow");
    assert_int_equal(rep.floor.segment, 3);
    assert_true(seg_exists(dir, 3));

    /* the slow one moves on: the next lowest holds */
    register_at(dir, "slow", 8, 0, now_ms());
    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 2);
    assert_string_equal(rep.held_by, "middle");
    assert_int_equal(rep.left.lowest, 5);
}


/* A damaged registration holds the whole log until it expires by mtime. */
static void
test_trim_damaged_holds(void **state)
{
    const char               *dir = *state;
    mv_actlog_trim_report_t   rep;
    char                      path[512];

    make_segments(dir, 1, 5, 2 * HOUR_MS);
    register_at(dir, "trainer", 5, 0, now_ms());
    consumer_file(dir, "broken", path, sizeof(path));
    write_file(path, "milvuso-actlog-consumer 1\nname broken\n");

    trim_ok(dir, retention(0, 0, 24 * HOUR_MS), &rep);
    assert_int_equal(rep.removed_segments, 0);
    assert_int_equal(rep.damaged, 1);
    assert_int_equal(rep.live, 1);
    assert_string_equal(rep.damaged_name, "broken");
    assert_string_equal(rep.damaged_why, "no crc32c line at the end");
    assert_string_equal(rep.held_by, "broken");
    assert_int_equal(rep.stop, MV_ACTLOG_STOP_CONSUMER);

    /* once its file is older than the expiry it is removed, and no longer
       holds anything */
    set_age(path, 25 * HOUR_MS);
    trim_ok(dir, retention(0, 0, 24 * HOUR_MS), &rep);
    assert_int_equal(rep.expired, 1);
    assert_string_equal(rep.expired_name, "broken");
    assert_int_equal(rep.damaged, 0);
    assert_int_equal(rep.removed_segments, 4);
    assert_int_equal(access(path, F_OK), -1);
}


/* An expired registration holds nothing and is removed; a missing one
   holds nothing; with none left, nothing is removed. */
static void
test_trim_expired_and_missing(void **state)
{
    const char               *dir = *state;
    mv_actlog_trim_report_t   rep;
    char                      path[512];

    make_segments(dir, 1, 6, 2 * HOUR_MS);

    /* no consumers directory: nobody vouches, nothing goes */
    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 0);
    assert_int_equal(rep.stop, MV_ACTLOG_STOP_CONSUMER);
    assert_string_equal(rep.held_by, "");
    assert_int_equal(rep.left.segments, 6);

    register_at(dir, "gone", 1, 0, now_ms() - 8 * 24 * HOUR_MS);
    register_at(dir, "trainer", 4, 0, now_ms());
    trim_ok(dir, retention(0, 0, 7 * 24 * HOUR_MS), &rep);
    assert_int_equal(rep.expired, 1);
    assert_string_equal(rep.expired_name, "gone");
    assert_int_equal(rep.live, 1);
    assert_int_equal(rep.removed_segments, 3);
    consumer_file(dir, "gone", path, sizeof(path));
    assert_int_equal(access(path, F_OK), -1);

    /* expire_ms 0: never expires */
    register_at(dir, "old", 4, 0, 1);
    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.expired, 0);
    assert_int_equal(rep.live, 2);

    /* the registrations removed by hand: nothing goes any more */
    consumer_file(dir, "old", path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    consumer_file(dir, "trainer", path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    make_segment(dir, 7, 10, 0);
    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 0);
    assert_int_equal(rep.left.lowest, 4);
}


/* Another process holding the lock: the trim does nothing, a registration
   waits for it (and gives up after its wait). */
static void
test_trim_lock_busy(void **state)
{
    const char               *dir = *state;
    mv_actlog_trim_report_t   rep;
    mv_actlog_consumer_t      c;
    mv_err_t                  err;
    char                      path[512];
    int                       fd;

    make_segments(dir, 1, 4, 2 * HOUR_MS);
    register_at(dir, "trainer", 4, 0, now_ms());

    /* a second open file description conflicts with flock like another
       process would */
    consumer_file(dir, ".lock", path, sizeof(path));
    fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);

    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.stop, MV_ACTLOG_STOP_BUSY);
    assert_int_equal(rep.removed_segments, 0);
    assert_int_equal(rep.left.segments, 4);

    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "trainer");
    c.pos.segment = 1;
    assert_int_equal(mv_actlog_register(dir, &c, 30, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "locked"));

    close(fd);
    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 3);
}


/* A reader inside a segment that is removed reads it to its end; a writer
   that starts afresh after a trim goes on numbering after the newest. */
static void
test_trim_under_reader_and_writer(void **state)
{
    const char               *dir = *state;
    mv_actlog_writer_t       *w, *w2;
    mv_actlog_reader_t       *r;
    mv_actlog_record_t        rec;
    mv_actlog_trim_report_t   rep;
    mv_actlog_pos_t           start = { 0, 0 }, pos;
    mv_err_t                  err;
    uint64_t                  seq = 0, seq2 = 0, first_seg;
    unsigned                  i, read = 0;
    char                      payload[64];
    int                       rc;

    w = mv_actlog_writer_new(dir, 200, 0, &err);
    assert_non_null(w);
    for (i = 0; i < 40; i++) {
        int  len = snprintf(payload, sizeof(payload), "{\"i\":%u}", i);

        assert_int_equal(mv_actlog_append(w, &seq, MV_RECORD_ACTION, payload,
                                          (size_t) len, NULL, &err), MV_OK);
    }
    assert_true(seq >= 4);

    r = mv_actlog_reader_new(dir, start, &err);
    assert_non_null(r);
    assert_int_equal(mv_actlog_next(r, &rec, &err), 1);
    read++;
    first_seg = rec.pos.segment;
    assert_int_equal(first_seg, 1);

    /* a consumer (not this reader) past segment 2: 1 and 2 go while the
       reader is inside 1 */
    register_at(dir, "other", 3, 0, now_ms());
    trim_ok(dir, retention(0, 0, 0), &rep);
    assert_int_equal(rep.removed_segments, 2);
    assert_false(seg_exists(dir, 1));

    /* the reader finishes segment 1 from its open descriptor, then finds
       2 gone (counted) and goes on with 3 */
    while ((rc = mv_actlog_next(r, &rec, &err)) == 1) {
        read++;
        if (rec.pos.segment == 1) {
            continue;
        }
        assert_true(rec.pos.segment >= 3);
    }
    assert_int_equal(rc, 0);
    assert_true(read > 1);

    /* nginx restarted (its shared number lost): the writer finds the
       newest segment and appends there, never back at segment 1 */
    w2 = mv_actlog_writer_new(dir, 200, 0, &err);
    assert_non_null(w2);
    assert_int_equal(mv_actlog_append(w2, &seq2, MV_RECORD_ACTION, "{}", 2,
                                      &pos, &err), MV_OK);
    assert_true(pos.segment >= seq);

    mv_actlog_reader_free(r);
    mv_actlog_writer_free(w2);
    mv_actlog_writer_free(w);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, mvt_tmpdir_setup, \
                                             mvt_tmpdir_teardown)
        T(test_register_and_list),
        T(test_damaged_registrations),
        T(test_usage),
        T(test_trim_before_position),
        T(test_trim_keeps_newest),
        T(test_trim_retention_age),
        T(test_trim_byte_cap),
        T(test_trim_consumers_minimum),
        T(test_trim_damaged_holds),
        T(test_trim_expired_and_missing),
        T(test_trim_lock_busy),
        T(test_trim_under_reader_and_writer),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
