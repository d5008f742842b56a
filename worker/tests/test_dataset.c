/*
 * test_dataset.c -- unit tests of the trainer's interaction datasets: every
 * input format (tab and "::" MovieLens, csv with and without a header and
 * with RFC 3339 times, tsv, action-log jsonl with its weights), the exact
 * "PATH:LINE: reason" of every rejected line, merging of repeated pairs, the
 * all-or-nothing replacement of the output, the random and leave-last-out
 * splits (sizes, determinism, disjointness, shared id maps), paired files,
 * the tsv writer's round trip, and the matrix views.
 *
 * Error cases are a table of {format, file text, expected message after
 * "PATH:"}, so adding a case is one row.  Files are written to mkstemp()
 * names and removed.
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

#include "data/dataset.h"
#include "synth.h"

#define ID_RULE  "1 to 64 bytes of [A-Za-z0-9._:-]"
#define ML_NF    "expected 4 fields separated by tabs or \"::\" (user, " \
                 "item, rating, timestamp), got "
#define CSV_NF   "expected 2 to 4 comma-separated fields (user, item[, " \
                 "weight[, timestamp]]), got "
#define TSV_NF   "expected 4 tab-separated fields (user_id, item_id, " \
                 "weight, time_ms), got "


/* Writes text to a new temporary file; returns its malloc'd path. */
static char *
temp_file(const char *text)
{
    char    *path = strdup("/tmp/test_dataset_XXXXXX");
    size_t   len = strlen(text);
    int      fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t) len);
    close(fd);

    return path;
}


static void
drop_file(char *path)
{
    unlink(path);
    free(path);
}


/* Loads text as a file in fmt; asserts success. */
static void
load_text(mvw_dataset_t *d, const char *text, mvw_format_t fmt,
    const float *weights, int from_rating)
{
    mvw_load_opts_t  o = { fmt, weights, from_rating };
    mv_err_t         err;
    char            *path = temp_file(text);

    if (mvw_dataset_load_opts(d, path, &o, &err) != MV_OK) {
        fail_msg("load failed: %s", err.msg);
    }
    drop_file(path);
}


/* Asserts that interaction j is (user, item, weight, time_ms). */
static void
expect_x(const mvw_dataset_t *d, size_t j, const char *user,
    const char *item, float weight, int64_t time_ms)
{
    assert_true(j < d->n);
    assert_string_equal(mvw_idmap_get(&d->users, d->x[j].user), user);
    assert_string_equal(mvw_idmap_get(&d->items, d->x[j].item), item);
    if (d->x[j].weight != weight) {
        fail_msg("interaction %zu: weight %g, want %g", j,
                 (double) d->x[j].weight, (double) weight);
    }
    assert_int_equal(d->x[j].time_ms, time_ms);
}


static void
test_movielens(void **state)
{
    mvw_dataset_t  d;

    (void) state;
    mvw_dataset_init(&d);

    /* u.data: tabs, every rating a positive of weight 1. */
    load_text(&d, "196\t242\t3\t881250949\n"
                  "186\t302\t3\t891717742\r\n"
                  "\n"
                  "196\t377\t1\t878887116\n"
                  "244\t242\t2\t880606923", MVW_FORMAT_MOVIELENS, NULL, 0);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.users.n, 3);
    assert_int_equal(d.items.n, 3);
    expect_x(&d, 0, "196", "242", 1.0f, 881250949000LL);
    expect_x(&d, 1, "186", "302", 1.0f, 891717742000LL);
    expect_x(&d, 2, "196", "377", 1.0f, 878887116000LL);
    expect_x(&d, 3, "244", "242", 1.0f, 880606923000LL);
    assert_int_equal(d.x[3].item, 0);
    assert_int_equal(mvw_idmap_find(&d.users, "244", 3), 2);
    assert_int_equal(mvw_idmap_find(&d.users, "24", 2), -1);

    /* ratings.dat: "::", and the rating as weight (0 drops the line). */
    load_text(&d, "1::1193::5::978300760\n"
                  "1::661::3.5::978302109\n"
                  "2::1193::0::978300000\n"
                  "3::1193::4::978300000\n", MVW_FORMAT_MOVIELENS, NULL, 1);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.users.n, 2);
    expect_x(&d, 0, "1", "1193", 5.0f, 978300760000LL);
    expect_x(&d, 1, "1", "661", 3.5f, 978302109000LL);
    expect_x(&d, 2, "3", "1193", 4.0f, 978300000000LL);
    assert_int_equal(mvw_idmap_find(&d.users, "2", 1), -1);

    /* Without the option a rating of 0 is a positive too. */
    load_text(&d, "2::1193::0::978300000\n", MVW_FORMAT_MOVIELENS, NULL, 0);
    assert_int_equal(d.n, 1);
    expect_x(&d, 0, "2", "1193", 1.0f, 978300000000LL);

    mvw_dataset_free(&d);
}


static void
test_csv(void **state)
{
    mvw_dataset_t  d;

    (void) state;
    mvw_dataset_init(&d);

    /* ML-latest's header; weights; seconds and RFC 3339; trimmed fields;
       an empty weight is 1; weight 0 is not a positive. */
    load_text(&d, "userId,movieId,rating,timestamp\n"
                  "u1,i1,2.5,1704110400\n"
                  " u1 , i2 ,,2024-01-01T14:00:00+02:00\n"
                  "u2,i1\n"
                  "u2,i3,0,1\n"
                  "u3,i2,4\n", MVW_FORMAT_CSV, NULL, 0);
    assert_int_equal(d.n, 4);
    expect_x(&d, 0, "u1", "i1", 2.5f, 1704110400000LL);
    expect_x(&d, 1, "u1", "i2", 1.0f, 1704110400000LL);
    expect_x(&d, 2, "u2", "i1", 1.0f, 0);
    expect_x(&d, 3, "u3", "i2", 4.0f, 0);
    assert_int_equal(d.items.n, 2);
    assert_int_equal(mvw_idmap_find(&d.items, "i3", 2), -1);

    /* No header: the first line is data. */
    load_text(&d, "a,b,1,2024-01-01T12:00:00.5Z\n", MVW_FORMAT_CSV, NULL,
              0);
    assert_int_equal(d.n, 1);
    expect_x(&d, 0, "a", "b", 1.0f, 1704110400500LL);

    /* A header after blank lines is still the first line; "USER_ID" in any
       case; later lines with header names are data. */
    load_text(&d, "\n\nUSER_ID,item_id\nuser,item\n", MVW_FORMAT_CSV, NULL,
              0);
    assert_int_equal(d.n, 1);
    expect_x(&d, 0, "user", "item", 1.0f, 0);

    mvw_dataset_free(&d);
}


static void
test_jsonl(void **state)
{
    mvw_dataset_t  d;
    float          w[MV_ACTION_TYPES];

    (void) state;
    mvw_dataset_init(&d);

    load_text(&d,
        "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"action_type\":\"View\","
        "\"timestamp\":\"2024-01-01T12:00:00Z\"}\n"
        "{\"user_id\":\"u1\",\"item_id\":\"i2\",\"action_type\":\"Purchase\","
        "\"event_id\":\"e-2\",\"extra\":[1,2]}\n"
        "\n"
        "{\"user_id\":\"u2\",\"item_id\":\"i3\",\"action_type\":\"Dislike\"}"
        "\n"
        "{\"user_id\":\"u3\",\"item_id\":\"i1\",\"action_type\":\"add_to_cart\""
        "}\r\n", MVW_FORMAT_JSONL, NULL, 0);
    assert_int_equal(d.n, 3);
    expect_x(&d, 0, "u1", "i1", 1.0f, 1704110400000LL);
    expect_x(&d, 1, "u1", "i2", 5.0f, 0);
    expect_x(&d, 2, "u3", "i1", 4.0f, 0);
    /* The Dislike line added no ids. */
    assert_int_equal(d.users.n, 2);
    assert_int_equal(d.items.n, 2);
    assert_int_equal(mvw_idmap_find(&d.users, "u2", 2), -1);
    assert_int_equal(mvw_idmap_find(&d.items, "i3", 2), -1);

    /* Own weights: negative ones drop too, and Dislike may count. */
    mvw_action_weights_default(w);
    w[MV_ACTION_VIEW] = -2.0f;
    w[MV_ACTION_DISLIKE] = 0.5f;
    load_text(&d,
        "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"action_type\":\"View\"}\n"
        "{\"user_id\":\"u2\",\"item_id\":\"i3\",\"action_type\":\"Dislike\"}"
        "\n", MVW_FORMAT_JSONL, w, 0);
    assert_int_equal(d.n, 1);
    expect_x(&d, 0, "u2", "i3", 0.5f, 0);

    mvw_dataset_free(&d);
}


static const struct {
    mvw_format_t  fmt;
    const char   *text;
    const char   *msg;
} load_errors[] = {
    { MVW_FORMAT_MOVIELENS, "1\t2\t3\t4\n1\t2\t3\n", "2: " ML_NF "3" },
    { MVW_FORMAT_MOVIELENS, "1 2 3 4\n", "1: " ML_NF "1" },
    { MVW_FORMAT_MOVIELENS, "1\t2\t3\t4\t5\n", "1: " ML_NF "5" },
    { MVW_FORMAT_MOVIELENS, "1::2::3\n", "1: " ML_NF "3" },
    { MVW_FORMAT_MOVIELENS, "\n\n1\t2\t3\t4\n\nbad\n", "5: " ML_NF "1" },
    { MVW_FORMAT_MOVIELENS, "u/1\t2\t3\t4\n",
      "1: user id must be " ID_RULE },
    { MVW_FORMAT_MOVIELENS, "1\t\t3\t4\n", "1: item id must be " ID_RULE },
    { MVW_FORMAT_MOVIELENS, "1\t2\tx\t4\n",
      "1: rating must be a finite number >= 0" },
    { MVW_FORMAT_MOVIELENS, "1\t2\t-1\t4\n",
      "1: rating must be a finite number >= 0" },
    { MVW_FORMAT_MOVIELENS, "1\t2\tnan\t4\n",
      "1: rating must be a finite number >= 0" },
    { MVW_FORMAT_MOVIELENS, "1\t2\t1e39\t4\n",
      "1: rating must be a finite number >= 0" },
    { MVW_FORMAT_MOVIELENS, "1\t2\t0x3\t4\n",
      "1: rating must be a finite number >= 0" },
    { MVW_FORMAT_MOVIELENS, "1\t2\t3\t4.5\n",
      "1: timestamp must be whole unix seconds within years 0001..9999" },
    { MVW_FORMAT_MOVIELENS, "1\t2\t3\t253402300800\n",
      "1: timestamp must be whole unix seconds within years 0001..9999" },
    { MVW_FORMAT_MOVIELENS, "1\t2\t3\t99999999999999999999\n",
      "1: timestamp must be whole unix seconds within years 0001..9999" },
    { MVW_FORMAT_CSV, "a\n", "1: " CSV_NF "1" },
    { MVW_FORMAT_CSV, "a,b,1,2,3\n", "1: " CSV_NF "5" },
    { MVW_FORMAT_CSV, "a b,c\n", "1: user id must be " ID_RULE },
    { MVW_FORMAT_CSV, "a,\n", "1: item id must be " ID_RULE },
    { MVW_FORMAT_CSV, "a,b,-1\n", "1: weight must be a finite number >= 0" },
    { MVW_FORMAT_CSV, "a,b,.\n", "1: weight must be a finite number >= 0" },
    { MVW_FORMAT_CSV, "a,b,1e\n", "1: weight must be a finite number >= 0" },
    { MVW_FORMAT_CSV, "a,b,+inf\n", "1: weight must be a finite number >= 0" },
    { MVW_FORMAT_CSV, "a,b,1,yesterday\n",
      "1: timestamp must be unix seconds or an RFC 3339 date-time: "
      "not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm))" },
    { MVW_FORMAT_CSV, "a,b,1,2024-02-30T00:00:00Z\n",
      "1: timestamp must be unix seconds or an RFC 3339 date-time: "
      "day 30 out of range for 2024-02" },
    /* the one number grammar: what a JSON body refuses, a file refuses */
    { MVW_FORMAT_CSV, "a,b,.5\n", "1: weight must be a finite number >= 0" },
    { MVW_FORMAT_CSV, "a,b,+1\n", "1: weight must be a finite number >= 0" },
    { MVW_FORMAT_CSV, "a,b,5.\n", "1: weight must be a finite number >= 0" },
    { MVW_FORMAT_CSV, "a,b,01\n", "1: weight must be a finite number >= 0" },
    { MVW_FORMAT_CSV, "a,b\nuser_id,item_id,weight\n",
      "2: weight must be a finite number >= 0" },
    /* A line that is not a positive is still checked. */
    { MVW_FORMAT_CSV, "a,b,0,zzz\n",
      "1: timestamp must be unix seconds or an RFC 3339 date-time: "
      "not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm))" },
    { MVW_FORMAT_CSV, "a/b,c,0\n", "1: user id must be " ID_RULE },
    { MVW_FORMAT_CSV, "a,c/d,0\n", "1: item id must be " ID_RULE },
    { MVW_FORMAT_TSV, "a\tb\t1\t1.5\n",
      "1: time_ms must be whole unix milliseconds within years 0001..9999" },
    { MVW_FORMAT_TSV, "a::b::1::2\n", "1: " TSV_NF "1" },
    { MVW_FORMAT_JSONL, "not json\n", "1: not valid JSON (at byte 0)" },
    { MVW_FORMAT_JSONL, "[1]\n", "1: the body is not a JSON object" },
    { MVW_FORMAT_JSONL,
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\"}\n"
      "{\"user_id\":\"u\",\"item_id\":\"i\"}\n",
      "2: field \"action_type\": missing" },
    { MVW_FORMAT_JSONL,
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Poke\"}\n",
      "1: field \"action_type\": not one of View, Click, Like, Share, "
      "AddToCart, Purchase, Dislike" },
    { MVW_FORMAT_JSONL,
      "{\"user_id\":\"u/1\",\"item_id\":\"i\",\"action_type\":\"Dislike\"}\n",
      "1: field \"user_id\": not an id: a character outside [A-Za-z0-9._:-]" },
    { MVW_FORMAT_JSONL,
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
      "\"timestamp\":\"yesterday\"}\n",
      "1: field \"timestamp\": not an RFC 3339 date-time "
      "(YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm))" },
    { MVW_FORMAT_MOVIELENS, "", " no interactions" },
    { MVW_FORMAT_MOVIELENS, "\n \t\n\r\n", " no interactions" },
    { MVW_FORMAT_CSV, "user,item\n", " no interactions" },
    { MVW_FORMAT_CSV, "a,b,0\n", " no interactions" },
    { MVW_FORMAT_JSONL,
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Dislike\"}\n",
      " no interactions" },
};


static void
test_load_errors(void **state)
{
    mvw_dataset_t  d;
    mv_err_t       err;
    char           want[512];
    float          w[MV_ACTION_TYPES];

    (void) state;
    mvw_dataset_init(&d);
    load_text(&d, "keep\tme\t1\t1\n", MVW_FORMAT_MOVIELENS, NULL, 0);

    for (size_t i = 0; i < sizeof(load_errors) / sizeof(load_errors[0]);
         i++)
    {
        char  *path = temp_file(load_errors[i].text);

        memset(&err, 0, sizeof(err));
        if (mvw_dataset_load(&d, path, load_errors[i].fmt, NULL, &err)
            != MV_ERR)
        {
            fail_msg("case %zu accepted", i);
        }
        snprintf(want, sizeof(want), "%s:%s", path, load_errors[i].msg);
        if (strcmp(err.msg, want) != 0) {
            fail_msg("case %zu: got '%s', want '%s'", i, err.msg, want);
        }
        drop_file(path);

        /* Nothing half-applied. */
        assert_int_equal(d.n, 1);
        expect_x(&d, 0, "keep", "me", 1.0f, 1000);
    }

    assert_int_equal(mvw_dataset_load(&d, "/nonexistent/u.data",
                                      MVW_FORMAT_MOVIELENS, NULL, &err),
                     MV_ERR);
    assert_string_equal(err.msg,
                        "/nonexistent/u.data: No such file or directory");

    mvw_action_weights_default(w);
    w[MV_ACTION_CLICK] = NAN;
    assert_int_equal(mvw_dataset_load_buffer(&d, "buf", "x", 1,
                     &(mvw_load_opts_t) { MVW_FORMAT_JSONL, w, 0 }, &err),
                     MV_ERR);
    assert_string_equal(err.msg, "buf: the weight of Click is not finite");
    assert_int_equal(d.n, 1);

    mvw_dataset_free(&d);
}


static void
test_load_buffer(void **state)
{
    mvw_dataset_t    d;
    mv_err_t         err;
    mvw_load_opts_t  o = { MVW_FORMAT_CSV, NULL, 0 };
    const char       text[] = "a,b,2\nc,d,3\nbad";

    (void) state;
    mvw_dataset_init(&d);
    /* Only len bytes count: the bad third line is cut off. */
    assert_int_equal(mvw_dataset_load_buffer(&d, "mem", text, 12, &o, &err),
                     MV_OK);
    assert_int_equal(d.n, 2);
    expect_x(&d, 1, "c", "d", 3.0f, 0);
    assert_int_equal(mvw_dataset_load_buffer(&d, "mem", text,
                                             sizeof(text) - 1, &o, &err),
                     MV_ERR);
    assert_string_equal(err.msg, "mem:3: " CSV_NF "1");
    assert_int_equal(d.n, 2);
    /* Cut before the weight: an empty weight field is 1. */
    assert_int_equal(mvw_dataset_load_buffer(&d, "mem", text, 4, &o, &err),
                     MV_OK);
    expect_x(&d, 0, "a", "b", 1.0f, 0);
    mvw_dataset_free(&d);
}


static void
test_duplicates(void **state)
{
    mvw_dataset_t  d;
    mv_err_t       err;

    (void) state;
    mvw_dataset_init(&d);
    /* Merged into the first position: weights summed, latest time. */
    load_text(&d, "u1,i1,1,100\n"
                  "u2,i1,1,50\n"
                  "u1,i1,2.5,300\n"
                  "u1,i2,1,10\n"
                  "u1,i1,0.5,200\n", MVW_FORMAT_CSV, NULL, 0);
    assert_int_equal(d.n, 3);
    expect_x(&d, 0, "u1", "i1", 4.0f, 300000);
    expect_x(&d, 1, "u2", "i1", 1.0f, 50000);
    expect_x(&d, 2, "u1", "i2", 1.0f, 10000);

    /* The same through mvw_dataset_add, and a sum that would overflow. */
    assert_int_equal(mvw_dataset_add(&d, "u2", "i1", 3e38f, 7, &err), MV_OK);
    assert_int_equal(mvw_dataset_add(&d, "u2", "i1", 3e38f, 9, &err),
                     MV_ERR);
    assert_string_equal(err.msg,
                        "the summed weight of the repeated pair is not "
                        "finite");
    assert_int_equal(d.n, 3);
    assert_true(d.x[1].weight == 1.0f + 3e38f);
    assert_int_equal(d.x[1].time_ms, 50000);
    mvw_dataset_free(&d);

    /* jsonl: repeated actions add their weights. */
    mvw_dataset_init(&d);
    load_text(&d,
        "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
        "\"timestamp\":\"2024-01-01T00:00:02Z\"}\n"
        "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Dislike\","
        "\"timestamp\":\"2024-01-01T00:00:09Z\"}\n"
        "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Purchase\","
        "\"timestamp\":\"2024-01-01T00:00:01Z\"}\n", MVW_FORMAT_JSONL, NULL,
        0);
    assert_int_equal(d.n, 1);
    expect_x(&d, 0, "u", "i", 6.0f, 1704067202000LL);
    mvw_dataset_free(&d);
}


static void
test_add(void **state)
{
    mvw_dataset_t  d;
    mv_err_t       err;

    (void) state;
    mvw_dataset_init(&d);
    static const struct { const char *u, *i; float w; const char *msg; }
    bad[] = {
        { "u 1", "i", 1.0f, "user id must be " ID_RULE },
        { "", "i", 1.0f, "user id must be " ID_RULE },
        { "u", "i\"", 1.0f, "item id must be " ID_RULE },
        { "u", "i", 0.0f, "weight must be finite and > 0" },
        { "u", "i", -1.0f, "weight must be finite and > 0" },
        { "u", "i", NAN, "weight must be finite and > 0" },
        { "u", "i", INFINITY, "weight must be finite and > 0" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mvw_dataset_add(&d, bad[i].u, bad[i].i, bad[i].w, 0,
                                         &err), MV_ERR);
        assert_string_equal(err.msg, bad[i].msg);
        assert_int_equal(d.n + d.users.n + d.items.n, 0);
    }
    assert_int_equal(mvw_dataset_add(&d, "u", "i", 1.0f, 0, &err), MV_OK);
    mvw_dataset_free(&d);
}


static void
test_formats(void **state)
{
    static const char *const names[] = { "movielens", "csv", "tsv",
                                         "jsonl" };
    mvw_format_t  f;
    mv_err_t      err;

    (void) state;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mvw_format_from_name(names[i], &f, &err), MV_OK);
        assert_int_equal(f, i);
        assert_string_equal(mvw_format_name(f), names[i]);
    }
    assert_int_equal(mvw_format_from_name("JSONL", &f, &err), MV_ERR);
    assert_string_equal(err.msg, "unknown dataset format \"JSONL\" "
                        "(movielens, csv, tsv, jsonl)");
    assert_string_equal(mvw_format_name((mvw_format_t) 9), "?");
}


/* A dataset of 60 users with 0..39 interactions each (user u has u % 40,
   on items spread over 100), times increasing with the line. */
static void
make_synthetic(mvw_dataset_t *d)
{
    mv_err_t  err;
    char      u[16], it[16];
    int64_t   t = 0;

    mvw_dataset_init(d);
    for (unsigned k = 0; k < 40; k++) {
        for (unsigned user = 0; user < 60; user++) {
            if (k >= user % 40) {
                continue;
            }
            snprintf(u, sizeof(u), "u%u", user);
            snprintf(it, sizeof(it), "i%u", (user * 7 + k * 13) % 100);
            assert_int_equal(mvw_dataset_add(d, u, it, 1.0f + (float) k,
                                             t++, &err), MV_OK);
        }
    }
}


static int
same_x(const mvw_interaction_t *a, const mvw_interaction_t *b)
{
    return a->user == b->user && a->item == b->item
           && a->weight == b->weight && a->time_ms == b->time_ms;
}


static void
expect_same_x(const mvw_dataset_t *a, const mvw_dataset_t *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t j = 0; j < a->n; j++) {
        if (!same_x(&a->x[j], &b->x[j])) {
            fail_msg("interaction %zu differs", j);
        }
    }
}


/* Checks that train and test partition d in order, with d's id maps. */
static void
expect_partition(const mvw_dataset_t *d, const mvw_dataset_t *train,
    const mvw_dataset_t *test)
{
    size_t  a = 0, b = 0;

    assert_true(mvw_idmap_equal(&train->users, &d->users));
    assert_true(mvw_idmap_equal(&train->items, &d->items));
    assert_true(mvw_idmap_equal(&test->users, &d->users));
    assert_true(mvw_idmap_equal(&test->items, &d->items));
    assert_int_equal(train->n + test->n, d->n);
    for (size_t j = 0; j < d->n; j++) {
        if (a < train->n && same_x(&train->x[a], &d->x[j])) {
            a++;
        } else if (b < test->n && same_x(&test->x[b], &d->x[j])) {
            b++;
        } else {
            fail_msg("interaction %zu is in neither part", j);
        }
    }
}


static void
count_per_user(const mvw_dataset_t *d, size_t *counts)
{
    memset(counts, 0, d->users.n * sizeof(size_t));
    for (size_t j = 0; j < d->n; j++) {
        counts[d->x[j].user]++;
    }
}


static void
test_split_random(void **state)
{
    mvw_dataset_t  d, tr, te, tr2, te2;
    mv_err_t       err;
    size_t         all[60], ntr[60], nte[60];
    static const double  fracs[] = { 0.8, 0.5, 0.0, 1.0, 0.3 };

    (void) state;
    make_synthetic(&d);
    mvw_dataset_init(&tr);
    mvw_dataset_init(&te);
    mvw_dataset_init(&tr2);
    mvw_dataset_init(&te2);
    count_per_user(&d, all);

    for (size_t f = 0; f < sizeof(fracs) / sizeof(fracs[0]); f++) {
        assert_int_equal(mvw_split_random(&d, fracs[f], 42, &tr, &te, &err),
                         MV_OK);
        expect_partition(&d, &tr, &te);
        count_per_user(&tr, ntr);
        count_per_user(&te, nte);
        for (uint32_t u = 0; u < d.users.n; u++) {
            size_t  want = (size_t) floor(fracs[f] * (double) all[u] + 0.5);

            want = want < 1 ? 1 : want > all[u] ? all[u] : want;
            if (ntr[u] != want || nte[u] != all[u] - want) {
                fail_msg("frac %g user %u: %zu/%zu of %zu", fracs[f], u,
                         ntr[u], nte[u], all[u]);
            }
        }
    }

    /* 0.8 of 5 is 4, of 7 is 5.6 -> 6, of 2 is 1.6 -> 2, of 39 is 31.2 ->
       31; a user with 1 keeps it in train. */
    assert_int_equal(mvw_split_random(&d, 0.8, 42, &tr, &te, &err), MV_OK);
    count_per_user(&tr, ntr);
    {
        static const struct { const char *id; size_t all, train; } want[] = {
            { "u5", 5, 4 }, { "u7", 7, 6 }, { "u2", 2, 2 }, { "u1", 1, 1 },
            { "u41", 1, 1 }, { "u39", 39, 31 },
        };

        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
            int64_t  u = mvw_idmap_find(&d.users, want[i].id,
                                        strlen(want[i].id));

            assert_true(u >= 0);
            assert_int_equal(all[u], want[i].all);
            assert_int_equal(ntr[u], want[i].train);
        }
    }

    /* Deterministic per seed; another seed picks other interactions. */
    assert_int_equal(mvw_split_random(&d, 0.8, 42, &tr2, &te2, &err), MV_OK);
    expect_same_x(&tr, &tr2);
    expect_same_x(&te, &te2);
    assert_int_equal(mvw_split_random(&d, 0.8, 43, &tr2, &te2, &err), MV_OK);
    assert_int_equal(tr2.n, tr.n);
    {
        size_t  differ = 0;

        for (size_t j = 0; j < tr.n; j++) {
            differ += !same_x(&tr.x[j], &tr2.x[j]);
        }
        assert_true(differ > 0);
    }

    /* Split outputs accept more interactions (the pair index is rebuilt). */
    assert_int_equal(mvw_dataset_add(&tr2, mvw_idmap_get(&tr2.users,
                                                         tr2.x[0].user),
                                     mvw_idmap_get(&tr2.items,
                                                   tr2.x[0].item),
                                     1.0f, 0, &err), MV_OK);
    assert_int_equal(tr2.n, tr.n);

    assert_int_equal(mvw_split_random(&d, 1.5, 1, &tr, &te, &err), MV_ERR);
    assert_string_equal(err.msg, "train fraction must be within [0, 1]");
    assert_int_equal(mvw_split_random(&d, NAN, 1, &tr, &te, &err), MV_ERR);

    mvw_dataset_free(&d);
    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
    mvw_dataset_free(&tr2);
    mvw_dataset_free(&te2);
}


static void
test_split_leave_last_out(void **state)
{
    mvw_dataset_t  d, tr, te;
    mv_err_t       err;

    (void) state;
    mvw_dataset_init(&d);
    mvw_dataset_init(&tr);
    mvw_dataset_init(&te);
    /* a: latest is i3 at t=9 (not the last line); b: i1 and i2 tie at 5,
       the later line wins; c: one interaction stays in train. */
    load_text(&d, "a,i1,1,5\n"
                  "b,i1,1,5\n"
                  "a,i3,1,9\n"
                  "c,i1,1,1\n"
                  "b,i2,1,5\n"
                  "a,i2,1,7\n"
                  "b,i3,1,4\n", MVW_FORMAT_CSV, NULL, 0);
    assert_int_equal(mvw_split_leave_last_out(&d, &tr, &te, &err), MV_OK);
    expect_partition(&d, &tr, &te);
    assert_int_equal(te.n, 2);
    expect_x(&te, 0, "a", "i3", 1.0f, 9000);
    expect_x(&te, 1, "b", "i2", 1.0f, 5000);
    assert_int_equal(tr.n, 5);
    expect_x(&tr, 2, "c", "i1", 1.0f, 1000);

    mvw_dataset_free(&d);
    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
}


static void
test_load_pair(void **state)
{
    mvw_dataset_t  tr, te;
    mv_err_t       err;
    char          *base, *test, *bad;

    (void) state;
    mvw_dataset_init(&tr);
    mvw_dataset_init(&te);
    base = temp_file("1\t10\t5\t100\n2\t20\t3\t200\n1\t20\t4\t300\n");
    test = temp_file("2\t10\t5\t400\n3\t30\t1\t500\n1\t10\t2\t600\n");
    bad = temp_file("2\t10\t5\t400\n3\t30\t1\n");

    assert_int_equal(mvw_dataset_load_pair(base, test, MVW_FORMAT_MOVIELENS,
                                           NULL, &tr, &te, &err), MV_OK);
    assert_true(mvw_idmap_equal(&tr.users, &te.users));
    assert_true(mvw_idmap_equal(&tr.items, &te.items));
    /* Base ids first, then those only in the test file. */
    assert_int_equal(tr.users.n, 3);
    assert_int_equal(tr.items.n, 3);
    assert_string_equal(mvw_idmap_get(&tr.users, 2), "3");
    assert_string_equal(mvw_idmap_get(&tr.items, 2), "30");
    assert_int_equal(tr.n, 3);
    assert_int_equal(te.n, 3);
    expect_x(&te, 0, "2", "10", 1.0f, 400000);
    assert_int_equal(te.x[0].user, 1);
    assert_int_equal(te.x[0].item, 0);
    expect_x(&te, 1, "3", "30", 1.0f, 500000);
    expect_x(&te, 2, "1", "10", 1.0f, 600000);

    /* Both or neither are replaced. */
    assert_int_equal(mvw_dataset_load_pair(base, bad, MVW_FORMAT_MOVIELENS,
                                           NULL, &tr, &te, &err), MV_ERR);
    assert_true(strstr(err.msg, ":2: " ML_NF "3") != NULL);
    assert_int_equal(strncmp(err.msg, bad, strlen(bad)), 0);
    assert_int_equal(tr.n, 3);
    assert_int_equal(te.n, 3);
    assert_int_equal(mvw_dataset_load_pair(bad, test, MVW_FORMAT_MOVIELENS,
                                           NULL, &tr, &te, &err), MV_ERR);
    assert_int_equal(tr.users.n, 3);

    drop_file(base);
    drop_file(test);
    drop_file(bad);
    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
}


static void
test_write_tsv(void **state)
{
    mvw_dataset_t  d, back;
    mv_err_t       err;
    char          *path = temp_file("");
    float          odd = 0.1f + 1e-8f;

    (void) state;
    mvw_dataset_init(&d);
    mvw_dataset_init(&back);
    assert_int_equal(mvw_dataset_add(&d, "user-1", "item:a", odd,
                                     -62135596800000LL, &err), MV_OK);
    assert_int_equal(mvw_dataset_add(&d, "user-2", "item:b", 3e38f,
                                     253402300799999LL, &err), MV_OK);
    assert_int_equal(mvw_dataset_add(&d, "user-1", "item:b", 1.0f, 0, &err),
                     MV_OK);
    assert_int_equal(mvw_dataset_write_tsv(&d, path, &err), MV_OK);
    assert_int_equal(mvw_dataset_load(&back, path, MVW_FORMAT_TSV, NULL,
                                      &err), MV_OK);
    assert_true(mvw_idmap_equal(&back.users, &d.users));
    assert_true(mvw_idmap_equal(&back.items, &d.items));
    expect_same_x(&back, &d);

    /* The bytes, for the Python side. */
    {
        FILE  *f = fopen(path, "r");
        char   buf[256];
        size_t got;

        assert_non_null(f);
        got = fread(buf, 1, sizeof(buf) - 1, f);
        buf[got] = '\0';
        fclose(f);
        assert_string_equal(buf,
                            "user-1\titem:a\t0.100000009\t-62135596800000\n"
                            "user-2\titem:b\t3.00000001e+38\t"
                            "253402300799999\n"
                            "user-1\titem:b\t1\t0\n");
    }

    assert_int_equal(mvw_dataset_write_tsv(&d, "/nonexistent/x.tsv", &err),
                     MV_ERR);
    assert_string_equal(err.msg, "/nonexistent/x.tsv: No such file or "
                        "directory");

    drop_file(path);
    mvw_dataset_free(&d);
    mvw_dataset_free(&back);
}


static void
test_matrix_views(void **state)
{
    mvw_dataset_t  d;
    mvw_csr_t      m;
    mv_err_t       err;
    uint32_t       counts[4];

    (void) state;
    mvw_dataset_init(&d);
    /* Users a b c, items i0 i1 i2 i3 by first appearance. */
    load_text(&d, "a,i0,1\nb,i1,2\na,i2,3\na,i1,4\nc,i3,5\nb,i0,6\n",
              MVW_FORMAT_CSV, NULL, 0);

    assert_int_equal(mvw_dataset_by_user(&d, &m, &err), MV_OK);
    assert_int_equal(m.n_rows, 3);
    assert_int_equal(m.n_cols, 4);
    {
        static const size_t    off[] = { 0, 3, 5, 6 };
        static const uint32_t  cols[] = { 0, 1, 2, 0, 1, 3 };
        static const float     vals[] = { 1, 4, 3, 6, 2, 5 };

        assert_memory_equal(m.offsets, off, sizeof(off));
        assert_memory_equal(m.cols, cols, sizeof(cols));
        assert_memory_equal(m.vals, vals, sizeof(vals));
    }
    mvw_csr_free(&m);
    assert_null(m.offsets);

    assert_int_equal(mvw_dataset_by_item(&d, &m, &err), MV_OK);
    assert_int_equal(m.n_rows, 4);
    {
        static const size_t    off[] = { 0, 2, 4, 5, 6 };
        static const uint32_t  cols[] = { 0, 1, 0, 1, 0, 2 };
        static const float     vals[] = { 1, 6, 4, 2, 3, 5 };

        assert_memory_equal(m.offsets, off, sizeof(off));
        assert_memory_equal(m.cols, cols, sizeof(cols));
        assert_memory_equal(m.vals, vals, sizeof(vals));
    }
    mvw_csr_free(&m);

    mvw_dataset_item_counts(&d, counts);
    assert_int_equal(counts[0], 2);
    assert_int_equal(counts[1], 2);
    assert_int_equal(counts[2], 1);
    assert_int_equal(counts[3], 1);

    /* An empty dataset gives empty rows. */
    mvw_dataset_free(&d);
    assert_int_equal(mvw_dataset_by_user(&d, &m, &err), MV_OK);
    assert_int_equal(m.n_rows, 0);
    assert_int_equal(m.offsets[0], 0);
    mvw_csr_free(&m);
    mvw_dataset_free(&d);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_movielens),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_buffer),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_split_random),
        cmocka_unit_test(test_split_leave_last_out),
        cmocka_unit_test(test_load_pair),
        cmocka_unit_test(test_write_tsv),
        cmocka_unit_test(test_matrix_views),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
