/*
 * test_catalog.c -- unit tests of the worker's catalogue: JSONL item and
 * user line parsing (every accepted shape, every rejection with its exact
 * message), RFC 3339 conversion against known epoch values, and file
 * loading (line numbers, blank lines, duplicates across lines, dim
 * agreement between the item and user files).
 *
 * Error cases are a table of {line, dim, expected message}, so adding a case
 * is one row.  Files are written to mkstemp() names and removed.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "data/catalog.h"
#include "data/synthetic.h"

#define ID64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


static int
parse_item(const char *line, uint32_t dim, mvw_item_rec_t *rec, float *vec,
    mv_err_t *err)
{
    return mvw_parse_item_line(line, strlen(line), dim, vec, MV_DIM_MAX,
                               rec, err);
}


static void
test_item_full(void **state)
{
    static float    vec[MV_DIM_MAX];
    mvw_item_rec_t  r;
    mv_err_t        err;
    const char     *line =
        "{\"item_id\": \"550e8400-e29b-41d4-a716-446655440001\", "
        "\"embedding\": [0.1, -0.2, 3e2], \"category\": \"electronics\", "
        "\"tags\": [\"smartphone\", \"android\"], \"popularity_score\": 0.8,"
        " \"created_at\": \"2024-01-01T12:00:00Z\", \"deleted\": false}\r\n";

    (void) state;
    assert_int_equal(parse_item(line, 0, &r, vec, &err), MV_OK);
    assert_string_equal(r.id, "550e8400-e29b-41d4-a716-446655440001");
    assert_string_equal(r.category, "electronics");
    assert_int_equal(r.dim, 3);
    assert_ptr_equal(r.vec, vec);
    assert_true(vec[0] == 0.1f && vec[1] == -0.2f && vec[2] == 300.0f);
    assert_true(r.popularity == 0.8f);
    assert_int_equal(r.created_at_ms, 1704110400000LL);
    assert_int_equal(r.deleted, 0);
}


static void
test_item_minimal_and_nulls(void **state)
{
    static float    vec[MV_DIM_MAX];
    mvw_item_rec_t  r;
    mv_err_t        err;

    (void) state;
    assert_int_equal(parse_item("{\"embedding\":[1],\"item_id\":\"x\"}", 1,
                                &r, vec, &err), MV_OK);
    assert_string_equal(r.id, "x");
    assert_string_equal(r.category, "");
    assert_true(r.popularity == 0.0f);
    assert_int_equal(r.created_at_ms, 0);
    assert_int_equal(r.deleted, 0);

    assert_int_equal(parse_item("{\"item_id\":\"y\",\"embedding\":[1,2],"
                                "\"category\":null,\"tags\":null,"
                                "\"popularity_score\":null,"
                                "\"created_at\":1704110400123,"
                                "\"deleted\":true}", 2, &r, vec, &err),
                     MV_OK);
    assert_string_equal(r.category, "");
    assert_int_equal(r.created_at_ms, 1704110400123LL);
    assert_int_equal(r.deleted, 1);

    /* 64 bytes is the longest id; \u escapes decode to valid ids. */
    assert_int_equal(parse_item("{\"item_id\":\"" ID64 "\",\"embedding\":[0]}",
                                0, &r, vec, &err), MV_OK);
    assert_int_equal(strlen(r.id), 64);
    assert_int_equal(parse_item("{\"item_id\":\"a\\u002db\",\"embedding\":"
                                "[0]}", 0, &r, vec, &err), MV_OK);
    assert_string_equal(r.id, "a-b");
}


static void
test_user_line(void **state)
{
    static float    vec[MV_DIM_MAX];
    mvw_user_rec_t  u;
    mv_err_t        err;
    const char     *ok = "  {\"user_id\": \"user-1\", \"embedding\": [1, 2]} ";

    (void) state;
    assert_int_equal(mvw_parse_user_line(ok, strlen(ok), 2, vec, MV_DIM_MAX,
                                         &u, &err), MV_OK);
    assert_string_equal(u.id, "user-1");
    assert_int_equal(u.dim, 2);
    assert_true(vec[1] == 2.0f);

    static const struct { const char *line; const char *msg; } bad[] = {
        { "{\"embedding\": [1, 2]}", "missing \"user_id\"" },
        { "{\"user_id\": \"u\"}", "missing \"embedding\"" },
        { "{\"user_id\": \"u\", \"embedding\": [1]}",
          "\"embedding\" has 1 values, expected 2" },
        { "{\"user_id\": \"u\", \"item_id\": \"i\", \"embedding\": [1, 2]}",
          "unknown field \"item_id\"" },
        { "{\"user_id\": \"u/1\", \"embedding\": [1, 2]}",
          "\"user_id\" has a character outside [A-Za-z0-9._:-]" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mvw_parse_user_line(bad[i].line, strlen(bad[i].line),
                                             2, vec, MV_DIM_MAX, &u, &err),
                         MV_ERR);
        assert_string_equal(err.msg, bad[i].msg);
    }
}


static const struct {
    const char  *line;
    uint32_t     dim;
    const char  *msg;
} item_errors[] = {
    { "", 0, "empty line" },
    { " \t\r\n", 0, "empty line" },
    { "{\"item_id\": \"a\", \"embedding\": [1]", 0, "invalid JSON at byte" },
    { "{\"item_id\": \"a\", \"embedding\": [1]} x", 0, "invalid JSON at byte" },
    { "{'item_id': 'a'}", 0, "invalid JSON at byte" },
    { "[1, 2]", 0, "not a JSON object" },
    { "\"item\"", 0, "not a JSON object" },
    { "{\"embedding\": [1]}", 0, "missing \"item_id\"" },
    { "{\"item_id\": null, \"embedding\": [1]}", 0, "missing \"item_id\"" },
    { "{\"item_id\": \"a\"}", 0, "missing \"embedding\"" },
    { "{\"item_id\": 7, \"embedding\": [1]}", 0,
      "\"item_id\" must be a string" },
    { "{\"item_id\": \"\", \"embedding\": [1]}", 0, "\"item_id\" is empty" },
    { "{\"item_id\": \"a b\", \"embedding\": [1]}", 0,
      "\"item_id\" has a character outside [A-Za-z0-9._:-]" },
    { "{\"item_id\": \"caf\xc3\xa9\", \"embedding\": [1]}", 0,
      "\"item_id\" has a character outside [A-Za-z0-9._:-]" },
    { "{\"item_id\": \"" ID64 "b\", \"embedding\": [1]}", 0,
      "\"item_id\" is 65 bytes long (at most 64)" },
    { "{\"item_id\": \"a\\u0000b\", \"embedding\": [1]}", 0,
      "\\u0000 is not allowed in strings" },
    { "{\"item_id\": \"a\", \"embedding\": \"1,2\"}", 0,
      "\"embedding\" must be an array of numbers" },
    { "{\"item_id\": \"a\", \"embedding\": {\"0\": 1}}", 0,
      "\"embedding\" must be an array of numbers" },
    { "{\"item_id\": \"a\", \"embedding\": []}", 0, "\"embedding\" is empty" },
    { "{\"item_id\": \"a\", \"embedding\": [1, \"2\"]}", 0,
      "\"embedding\"[1] is not a number" },
    { "{\"item_id\": \"a\", \"embedding\": [1, null]}", 0,
      "\"embedding\"[1] is not a number" },
    { "{\"item_id\": \"a\", \"embedding\": [1, 2]}", 3,
      "\"embedding\" has 2 values, expected 3" },
    { "{\"item_id\": \"a\", \"embedding\": [1, 2, 3, 4]}", 3,
      "\"embedding\" has 4 values, expected 3" },
    { "{\"item_id\": \"a\", \"embedding\": [0, 1e39]}", 0,
      "\"embedding\"[1] is not a finite float32" },
    { "{\"item_id\": \"a\", \"embedding\": [-1e39]}", 0,
      "\"embedding\"[0] is not a finite float32" },
    { "{\"item_id\": \"a\", \"embedding\": [1e999]}", 0,
      "\"embedding\"[0] is not a finite float32" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"category\": 3}", 0,
      "\"category\" must be a string" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"category\": \"x y\"}", 0,
      "\"category\" has a character outside [A-Za-z0-9._:-]" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"tags\": \"t\"}", 0,
      "\"tags\" must be an array of strings" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"tags\": [\"t\", 2]}", 0,
      "\"tags\"[1] is not a string" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"tags\": [\"\"]}", 0,
      "\"tags\"[0] must be 1..256 bytes" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"popularity_score\": -0.5}",
      0, "\"popularity_score\" must be >= 0" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"popularity_score\": 1e39}",
      0, "\"popularity_score\" is not a finite float32" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"popularity_score\": \"1\"}",
      0, "\"popularity_score\" must be a number" },
    { "{\"item_id\": \"a\", \"embedding\": [1], "
      "\"created_at\": \"2024-02-30T00:00:00Z\"}", 0,
      "\"created_at\": day 30 out of range for 2024-02" },
    { "{\"item_id\": \"a\", \"embedding\": [1], "
      "\"created_at\": \"2024-01-01T12:00:00\"}", 0,
      "\"created_at\": missing time zone (Z or +hh:mm)" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"created_at\": true}", 0,
      "\"created_at\" must be an RFC 3339 string or unix milliseconds" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"created_at\": 1.5}", 0,
      "\"created_at\" must be whole unix milliseconds within years "
      "0001..9999" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"created_at\": 1e300}", 0,
      "\"created_at\" must be whole unix milliseconds within years "
      "0001..9999" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"deleted\": \"no\"}", 0,
      "\"deleted\" must be true or false" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"deleted\": 0}", 0,
      "\"deleted\" must be true or false" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"title\": \"x\"}", 0,
      "unknown field \"title\"" },
    { "{\"item_id\": \"a\", \"embedding\": [1], \"popularity\": 1}", 0,
      "unknown field \"popularity\"" },
    { "{\"item_id\": \"a\", \"item_id\": \"b\", \"embedding\": [1]}", 0,
      "duplicate field \"item_id\"" },
};


static void
test_item_errors(void **state)
{
    static float    vec[MV_DIM_MAX];
    mvw_item_rec_t  r;
    mv_err_t        err;

    (void) state;
    for (size_t i = 0; i < sizeof(item_errors) / sizeof(item_errors[0]);
         i++)
    {
        const char  *want = item_errors[i].msg;

        memset(&err, 0, sizeof(err));
        if (parse_item(item_errors[i].line, item_errors[i].dim, &r, vec, &err)
            != MV_ERR)
        {
            fail_msg("case %zu accepted: %s", i, item_errors[i].line);
        }
        if (strncmp(err.msg, want, strlen(want)) != 0) {
            fail_msg("case %zu: got '%s', want '%s'", i, err.msg, want);
        }
    }
}


static void
test_item_raw_bytes(void **state)
{
    static float    vec[4];
    mvw_item_rec_t  r;
    mv_err_t        err;
    const char      nul[] = "{\"item_id\": \"a\0b\", \"embedding\": [1]}";
    const char     *big =
        "{\"item_id\": \"a\", \"embedding\": [1, 2, 3, 4, 5]}";

    (void) state;
    assert_int_equal(mvw_parse_item_line(nul, sizeof(nul) - 1, 0, vec, 4, &r,
                                         &err), MV_ERR);
    assert_string_equal(err.msg, "line contains a NUL byte");

    /* Only len bytes are read: a line cut short is invalid JSON. */
    assert_int_equal(mvw_parse_item_line(big, 20, 0, vec, 4, &r, &err),
                     MV_ERR);
    assert_true(strncmp(err.msg, "invalid JSON at byte ", 21) == 0);

    /* The caller's buffer bounds the length when dim is open. */
    assert_int_equal(mvw_parse_item_line(big, strlen(big), 0, vec, 4, &r,
                                         &err), MV_ERR);
    assert_string_equal(err.msg, "\"embedding\" has 5 values (at most 4)");
}


static const struct {
    const char  *s;
    int64_t      ms;
} rfc_ok[] = {
    { "1970-01-01T00:00:00Z", 0 },
    { "2024-01-01T12:00:00Z", 1704110400000LL },
    { "2024-01-01t12:00:00z", 1704110400000LL },
    { "2024-01-01T14:00:00+02:00", 1704110400000LL },
    { "2024-01-01T06:30:00-05:30", 1704110400000LL },
    { "2024-01-01T12:00:00-00:00", 1704110400000LL },
    { "2024-01-01T12:00:00.123456789Z", 1704110400123LL },
    { "2024-01-01T12:00:00.5Z", 1704110400500LL },
    { "2000-02-29T00:00:00Z", 951782400000LL },
    { "2024-02-29T23:59:59Z", 1709251199000LL },
    { "1969-12-31T23:59:59.999Z", -1 },
    { "1900-01-01T00:00:00Z", -2208988800000LL },
    { "2038-01-19T03:14:08Z", 2147483648000LL },
    { "2016-12-31T23:59:60Z", 1483228800000LL },
    { "0001-01-01T00:00:00Z", -62135596800000LL },
    { "9999-12-31T23:59:59.999Z", 253402300799999LL },
};

static const struct {
    const char  *s;
    const char  *msg;
} rfc_bad[] = {
    { "2024-02-30T00:00:00Z", "day 30 out of range for 2024-02" },
    { "2023-02-29T00:00:00Z", "day 29 out of range for 2023-02" },
    { "1900-02-29T00:00:00Z", "day 29 out of range for 1900-02" },
    { "2024-04-31T00:00:00Z", "day 31 out of range for 2024-04" },
    { "2024-01-00T00:00:00Z", "day 00 out of range for 2024-01" },
    { "2024-13-01T00:00:00Z", "month 13 out of range" },
    { "2024-00-01T00:00:00Z", "month 00 out of range" },
    { "0000-01-01T00:00:00Z", "year 0000 out of range" },
    { "2024-01-01T24:00:00Z", "hour 24 out of range" },
    { "2024-01-01T12:60:00Z", "minute 60 out of range" },
    { "2024-01-01T12:00:61Z", "second 61 out of range" },
    { "2024-01-01T12:00:00", "missing time zone (Z or +hh:mm)" },
    { "2024-01-01T12:00:00.123", "missing time zone (Z or +hh:mm)" },
    { "2024-01-01T12:00:00 Z", "missing time zone (Z or +hh:mm)" },
    { "2024-01-01T12:00:00.Z", "no digits after the decimal point" },
    { "2024-01-01T12:00:00+2:00", "bad time zone offset (want +hh:mm)" },
    { "2024-01-01T12:00:00+0200", "bad time zone offset (want +hh:mm)" },
    { "2024-01-01T12:00:00+02", "bad time zone offset (want +hh:mm)" },
    { "2024-01-01T12:00:00+24:00", "time zone offset 24:00 out of range" },
    { "2024-01-01T12:00:00+01:60", "time zone offset 01:60 out of range" },
    { "2024-01-01T12:00:00Zx", "unexpected characters after the time zone" },
    { "2024-01-01T12:00:00+01:00:00",
      "unexpected characters after the time zone" },
    { "2024-01-01 12:00:00Z", "not an RFC 3339 date-time" },
    { "2024-1-01T12:00:00Z", "not an RFC 3339 date-time" },
    { "2024-01-01", "not an RFC 3339 date-time" },
    { "20x4-01-01T12:00:00Z", "not an RFC 3339 date-time" },
    { "", "not an RFC 3339 date-time" },
};


static void
test_rfc3339(void **state)
{
    mv_err_t  err;
    int64_t   ms;
    char      buf[40];

    (void) state;
    for (size_t i = 0; i < sizeof(rfc_ok) / sizeof(rfc_ok[0]); i++) {
        ms = 42;
        if (mvw_parse_rfc3339(rfc_ok[i].s, strlen(rfc_ok[i].s), &ms, &err)
            != MV_OK)
        {
            fail_msg("%s rejected: %s", rfc_ok[i].s, err.msg);
        }
        if (ms != rfc_ok[i].ms) {
            fail_msg("%s: got %lld, want %lld", rfc_ok[i].s, (long long) ms,
                     (long long) rfc_ok[i].ms);
        }
    }
    for (size_t i = 0; i < sizeof(rfc_bad) / sizeof(rfc_bad[0]); i++) {
        const char  *want = rfc_bad[i].msg;

        if (mvw_parse_rfc3339(rfc_bad[i].s, strlen(rfc_bad[i].s), &ms, &err)
            != MV_ERR)
        {
            fail_msg("%s accepted", rfc_bad[i].s);
        }
        if (strncmp(err.msg, want, strlen(want)) != 0) {
            fail_msg("%s: got '%s', want '%s'", rfc_bad[i].s, err.msg, want);
        }
    }

    /* Only len bytes count. */
    assert_int_equal(mvw_parse_rfc3339("1970-01-01T00:00:00Zjunk", 20, &ms,
                                       &err), MV_OK);
    assert_int_equal(ms, 0);

    assert_string_equal(mvw_format_rfc3339(0, buf, sizeof(buf)),
                        "1970-01-01T00:00:00.000Z");
    assert_string_equal(mvw_format_rfc3339(-1, buf, sizeof(buf)),
                        "1969-12-31T23:59:59.999Z");
    assert_string_equal(mvw_format_rfc3339(1709251199000LL, buf, sizeof(buf)),
                        "2024-02-29T23:59:59.000Z");
}


/* Formatting then parsing gives the value back, over the whole range. */
static void
test_rfc3339_roundtrip(void **state)
{
    const int64_t  lo = -62135596800000LL, hi = 253402300799999LL;
    uint64_t       x = 0x243f6a8885a308d3ULL;
    mv_err_t       err;
    char           buf[40];
    int64_t        ms, back;

    (void) state;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ms = lo + (int64_t) (x % (uint64_t) (hi - lo + 1));
        mvw_format_rfc3339(ms, buf, sizeof(buf));
        assert_int_equal(mvw_parse_rfc3339(buf, strlen(buf), &back, &err),
                         MV_OK);
        if (back != ms) {
            fail_msg("%lld -> %s -> %lld", (long long) ms, buf,
                     (long long) back);
        }
    }
}


/* Writes text to a new temporary file; returns its malloc'd path. */
static char *
temp_file(const char *text)
{
    char  *path = strdup("/tmp/test_catalog_XXXXXX");
    int    fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);

    return path;
}


static void
expect_load_error(const char *items, const char *users, const char *want)
{
    mvw_catalog_t  c;
    mv_err_t       err;
    char          *pi = temp_file(items), *pu = NULL;
    char           expect[512];
    int            rc;

    mvw_catalog_init(&c);
    rc = mvw_catalog_load_items(&c, pi, &err);
    if (rc == MV_OK && users != NULL) {
        pu = temp_file(users);
        rc = mvw_catalog_load_users(&c, pu, &err);
    }
    assert_int_equal(rc, MV_ERR);
    snprintf(expect, sizeof(expect), "%s:%s", pu ? pu : pi, want);
    assert_string_equal(err.msg, expect);

    mvw_catalog_free(&c);
    unlink(pi);
    free(pi);
    if (pu != NULL) {
        unlink(pu);
        free(pu);
    }
}


static void
test_load_files(void **state)
{
    mvw_catalog_t  c;
    mv_err_t       err;
    char          *pi, *pu;

    (void) state;
    pi = temp_file("{\"item_id\": \"a\", \"embedding\": [1, 0], "
                   "\"category\": \"books\", \"popularity_score\": 2}\n"
                   "\n   \n"
                   "{\"item_id\": \"b\", \"embedding\": [0, 1], "
                   "\"category\": \"films\", \"deleted\": true}\r\n"
                   "{\"item_id\": \"c\", \"embedding\": [1, 1], "
                   "\"category\": \"books\"}");
    pu = temp_file("{\"user_id\": \"u1\", \"embedding\": [0.5, 0.5]}\n");

    mvw_catalog_init(&c);
    assert_int_equal(mvw_catalog_load_items(&c, pi, &err), MV_OK);
    assert_int_equal(mvw_catalog_load_users(&c, pu, &err), MV_OK);
    assert_int_equal(c.dim, 2);
    assert_int_equal(c.items.n, 3);
    assert_int_equal(c.categories.n, 2);
    assert_string_equal(mvw_idmap_get(&c.categories, 0), "books");
    assert_string_equal(mvw_idmap_get(&c.categories, 1), "films");
    assert_int_equal(c.item_meta[0].category, 0);
    assert_int_equal(c.item_meta[1].category, 1);
    assert_int_equal(c.item_meta[2].category, 0);
    assert_int_equal(c.item_meta[1].flags, MV_ITEM_DELETED);
    assert_true(c.item_meta[0].popularity == 2.0f);
    assert_int_equal(c.item_line[1], 4);
    assert_int_equal(c.item_line[2], 5);
    assert_true(c.item_vectors[5] == 1.0f);
    assert_int_equal(mvw_catalog_find_item(&c, "c"), 2);
    assert_int_equal(mvw_catalog_find_item(&c, "d"), -1);
    assert_int_equal(c.users.n, 1);
    assert_int_equal(mvw_catalog_find_user(&c, "u1"), 0);
    mvw_catalog_free(&c);
    unlink(pi);
    unlink(pu);
    free(pi);
    free(pu);

    expect_load_error("{\"item_id\": \"a\", \"embedding\": [1]}\n\n"
                      "{\"item_id\": \"a\", \"embedding\": [2]}\n",
                      NULL, "3: duplicate item_id \"a\" (first on line 1)");
    expect_load_error("{\"item_id\": \"a\", \"embedding\": [1]}\n"
                      "{\"item_id\": \"b\", \"embedding\": [1, 2]}\n",
                      NULL, "2: \"embedding\" has 2 values, expected 1");
    expect_load_error("{\"item_id\": \"a\", \"embedding\": [1]}\n"
                      "not json\n", NULL, "2: invalid JSON at byte 1");
    expect_load_error("{\"item_id\": \"a\", \"embedding\": [1]}\n",
                      "{\"user_id\": \"u\", \"embedding\": [1, 2]}\n",
                      "1: \"embedding\" has 2 values, expected 1");
    expect_load_error("{\"item_id\": \"a\", \"embedding\": [1]}\n",
                      "{\"user_id\": \"u\", \"embedding\": [1]}\n"
                      "{\"user_id\": \"u\", \"embedding\": [2]}\n",
                      "2: duplicate user_id \"u\" (first on line 1)");
    expect_load_error("\n\n", NULL, " no items");

    mvw_catalog_init(&c);
    assert_int_equal(mvw_catalog_load_items(&c, "/nonexistent/items.jsonl",
                                            &err), MV_ERR);
    assert_string_equal(err.msg,
                        "/nonexistent/items.jsonl: No such file or directory");
    mvw_catalog_free(&c);
}


static void
test_catalog_add(void **state)
{
    mvw_catalog_t  c;
    mv_err_t       err;
    float          v[2] = { 1, 2 };
    char           id[32];

    (void) state;
    mvw_catalog_init(&c);
    /* Enough ids to grow the arrays and the index several times. */
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "i%u", i);
        assert_int_equal(mvw_catalog_add_item(&c, id, v, 2, i % 2 ? "odd"
                                              : "even", 1.0f, 0, 0, 0, &err),
                         MV_OK);
    }
    assert_int_equal(c.items.n, 5000);
    assert_int_equal(c.categories.n, 2);
    for (unsigned i = 0; i < 5000; i += 97) {
        snprintf(id, sizeof(id), "i%u", i);
        assert_int_equal(mvw_catalog_find_item(&c, id), i);
    }
    assert_int_equal(mvw_catalog_add_item(&c, "i7", v, 2, NULL, 0, 0, 0, 0,
                                          &err), MV_ERR);
    assert_string_equal(err.msg, "duplicate item_id \"i7\"");
    assert_int_equal(mvw_catalog_add_item(&c, "new", v, 1, NULL, 0, 0, 0, 0,
                                          &err), MV_ERR);
    assert_string_equal(err.msg, "\"embedding\" has 1 values, expected 2");
    assert_int_equal(mvw_catalog_add_item(&c, "bad id", v, 2, NULL, 0, 0, 0,
                                          0, &err), MV_ERR);
    assert_int_equal(mvw_catalog_add_item(&c, "neg", v, 2, NULL, -1.0f, 0, 0,
                                          0, &err), MV_ERR);
    assert_int_equal(c.items.n, 5000);
    mvw_catalog_free(&c);
    assert_int_equal(c.items.n, 0);
}


static void
test_synthetic(void **state)
{
    mvw_catalog_t       a, b;
    mvw_synth_params_t  p = { 500, 8, 7, 20, 99 };
    mv_err_t            err;

    (void) state;
    mvw_catalog_init(&a);
    mvw_catalog_init(&b);
    assert_int_equal(mvw_synth_catalog(&a, &p, &err), MV_OK);
    assert_int_equal(mvw_synth_catalog(&b, &p, &err), MV_OK);
    assert_int_equal(a.items.n, 500);
    assert_int_equal(a.categories.n, 7);
    assert_int_equal(a.users.n, 20);
    assert_int_equal(a.dim, 8);
    assert_string_equal(mvw_idmap_get(&a.items, 12), "item-000012");
    assert_string_equal(mvw_idmap_get(&a.categories, 3), "cat-03");
    assert_string_equal(mvw_idmap_get(&a.users, 19), "user-000019");
    assert_int_equal(a.item_meta[3].created_at_ms,
                     MVW_SYNTH_BASE_MS + 3000);
    /* Deterministic, and popularity is a permutation of 1/(r+1). */
    assert_memory_equal(a.item_vectors, b.item_vectors,
                        500 * 8 * sizeof(float));
    assert_memory_equal(a.user_vectors, b.user_vectors,
                        20 * 8 * sizeof(float));
    double  sum = 0, want = 0;
    int     top = 0;
    for (unsigned i = 0; i < 500; i++) {
        sum += a.item_meta[i].popularity;
        want += 1.0 / (i + 1);
        top += a.item_meta[i].popularity == 1.0f;
        assert_true(a.item_meta[i].category < 7);
    }
    assert_int_equal(top, 1);
    assert_true(fabs(sum - want) < 1e-3);
    mvw_catalog_free(&a);
    mvw_catalog_free(&b);

    p.n_categories = 0;
    mvw_catalog_init(&a);
    assert_int_equal(mvw_synth_catalog(&a, &p, &err), MV_ERR);
    mvw_catalog_free(&a);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_item_full),
        cmocka_unit_test(test_item_minimal_and_nulls),
        cmocka_unit_test(test_user_line),
        cmocka_unit_test(test_item_errors),
        cmocka_unit_test(test_item_raw_bytes),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_rfc3339_roundtrip),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_catalog_add),
        cmocka_unit_test(test_synthetic),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
