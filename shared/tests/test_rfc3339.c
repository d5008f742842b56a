/*
 * test_rfc3339.c -- the one date-time reader and writer (rfc3339.h): every
 * accepted variation with its exact millisecond, every refusal, the length
 * (not a NUL) ending the text, and the writer against gmtime_r with a
 * round trip through the reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "rfc3339.h"


/* 2024-01-01T12:00:00Z */
#define T_2024  INT64_C(1704110400000)


static uint64_t  rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t
rng_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t) (rng_state >> 16);
}


/* ---- cases -------------------------------------------------------- */

typedef struct time_case {
    const char  *s;
    int64_t      ms;
} time_case_t;


static void
test_time_parse(void **state)
{
    static const time_case_t  good[] = {
        { "1970-01-01T00:00:00Z", 0 },
        { "1970-01-01T00:00:00.001Z", 1 },
        { "2024-01-01T12:00:00Z", T_2024 },
        { "2024-01-01t12:00:00z", T_2024 },
        { "2024-01-01 12:00:00Z", T_2024 },
        { "2024-01-01T12:00:00.2Z", T_2024 + 200 },
        { "2024-01-01T12:00:00.25Z", T_2024 + 250 },
        { "2024-01-01T12:00:00.250Z", T_2024 + 250 },
        { "2024-01-01T12:00:00.9999Z", T_2024 + 999 },
        { "2024-01-01T12:00:00.123456789Z", T_2024 + 123 },
        { "2024-01-01T12:00:00.000000000Z", T_2024 },
        { "2024-01-01T14:00:00+02:00", T_2024 },
        { "2024-01-01T14:00:00.5+02:00", T_2024 + 500 },
        { "2024-01-01T06:30:00-05:30", T_2024 },
        { "2024-01-01T12:00:00+00:00", T_2024 },
        { "2024-01-01T12:00:00-00:00", T_2024 },
        { "2024-01-02T11:59:00+23:59", T_2024 },
        { "2023-12-31T12:01:00-23:59", T_2024 },
        { "1970-01-01T01:00:00+01:00", 0 },
        /* a leap second: the last millisecond of its minute */
        { "2016-12-31T23:59:60Z", INT64_C(1483228799999) },
        { "2016-12-31T23:59:60.5Z", INT64_C(1483228799999) },
        { "2024-01-01T12:00:00.1234567890123Z", T_2024 + 123 },
        { "1969-12-31T23:59:59Z", -1000 },
        { "1969-12-31T23:59:59.999Z", -1 },
        { "1970-01-01T00:00:00+00:01", -60000 },
        { "0001-01-01T00:00:00Z", INT64_C(-62135596800000) },
        { "0001-01-01T01:00:00+01:00", INT64_C(-62135596800000) },
        { "2024-02-29T00:00:00Z", INT64_C(1709164800000) },
        { "2000-02-29T00:00:00Z", INT64_C(951782400000) },
        { "2000-03-01T00:00:00Z", INT64_C(951868800000) },
        { "1999-12-31T23:59:59.999Z", INT64_C(946684799999) },
        { "2038-01-19T03:14:08Z", INT64_C(2147483648000) },
        { "9999-12-31T23:59:59.999Z", INT64_C(253402300799999) },
        { "9999-12-31T23:59:59.999+01:00", INT64_C(253402297199999) },
    };
    static const char *const  bad[] = {
        "",
        "2024-01-01",
        "2024-01-01T12:00:00",
        "2024-01-01T12:00Z",
        "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T12:60:00Z",
        "2024-01-01T12:00:61Z",
        "2024-01-01T12:00:00.Z",
        "2024-01-01T12:00:00,5Z",
        "2024-01-01T12:00:00+24:00",
        "2024-01-01T12:00:00+02:60",
        "2024-01-01T12:00:00+0200",
        "2024-01-01T12:00:00+02",
        "2024-01-01T12:00:00+2:00",
        "2024-01-01T12:00:00 Z",
        "2024-01-01T12:00:00ZZ",
        "2024-01-01T12:00:00Z ",
        " 2024-01-01T12:00:00Z",
        "2024-01-01x12:00:00Z",
        "2024-01-01_12:00:00Z",
        "2024/01/01T12:00:00Z",
        "2024-1-01T12:00:00Z",
        "2024-01-01T1:00:00Z",
        "+2024-01-01T12:00:00Z",
        "-024-01-01T12:00:00Z",
        "2024-01-01T12:00:00UTC",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",
        "10000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-00:01",
        "2024-01-01T12:00:00.12a4Z",
        "2O24-01-01T12:00:00Z",
    };
    size_t   i;
    int64_t  ms;

    (void) state;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ms = -42;
        if (mv_time_parse(good[i].s, strlen(good[i].s), &ms, NULL) != MV_OK
            || ms != good[i].ms)
        {
            fail_msg("%s: got %lld, want %lld", good[i].s, (long long) ms,
                     (long long) good[i].ms);
        }
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (mv_time_parse(bad[i], strlen(bad[i]), &ms, NULL) != MV_ERR) {
            fail_msg("accepted %s", bad[i]);
        }
    }

    /* Length, not NUL, ends the text. */
    assert_int_equal(mv_time_parse("2024-01-01T12:00:00Zjunk", 20, &ms, NULL),
                     MV_OK);
    assert_true(ms == T_2024);
    assert_int_equal(mv_time_parse("2024-01-01T12:00:00Z", 19, &ms, NULL), MV_ERR);
    assert_int_equal(mv_time_parse("2024-01-01T12:00:00Z\0", 21, &ms, NULL),
                     MV_ERR);
    assert_int_equal(mv_time_parse("2024-01-01T12:00:00.5", 21, &ms, NULL),
                     MV_ERR);
    assert_int_equal(mv_time_parse("2024-01-01T12:00:00+02:0", 24, &ms, NULL),
                     MV_ERR);
    assert_int_equal(mv_time_parse(NULL, 0, &ms, NULL), MV_ERR);
}


static void
test_time_format(void **state)
{
    char       buf[32], ref[32];
    int64_t    ms, back;
    time_t     secs;
    struct tm  tm;
    int        i;

    (void) state;

    assert_string_equal(mv_time_format(0, buf, 25),
                        "1970-01-01T00:00:00.000Z");
    assert_string_equal(mv_time_format(T_2024 + 7, buf, sizeof(buf)),
                        "2024-01-01T12:00:00.007Z");
    assert_string_equal(mv_time_format(INT64_C(951782400000), buf,
                                       sizeof(buf)),
                        "2000-02-29T00:00:00.000Z");
    assert_string_equal(mv_time_format(INT64_C(253402300799999), buf,
                                       sizeof(buf)),
                        "9999-12-31T23:59:59.999Z");
    /* Out of range: clamped, so the text still parses. */
    assert_string_equal(mv_time_format(-1, buf, sizeof(buf)),
                        "1969-12-31T23:59:59.999Z");
    assert_string_equal(mv_time_format(INT64_C(-62135596800000), buf,
                                       sizeof(buf)),
                        "0001-01-01T00:00:00.000Z");
    assert_string_equal(mv_time_format(INT64_MIN, buf, sizeof(buf)),
                        "0001-01-01T00:00:00.000Z");
    assert_string_equal(mv_time_format(INT64_MAX, buf, sizeof(buf)),
                        "9999-12-31T23:59:59.999Z");
    assert_null(mv_time_format(0, buf, 24));
    assert_null(mv_time_format(0, NULL, 25));

    /* Against gmtime_r, and back through mv_time_parse. */
    for (i = 0; i < 20000; i++) {
        ms = (int64_t) (((uint64_t) rng_u32() << 32 | rng_u32())
                        % (uint64_t) INT64_C(253402300800000));
        if (i < 100) {
            ms = (int64_t) i * 86400000 * 365 + i;
        }
        secs = (time_t) (ms / 1000);
        assert_non_null(gmtime_r(&secs, &tm));
        strftime(ref, sizeof(ref), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ref + 19, sizeof(ref) - 19, ".%03dZ", (int) (ms % 1000));
        assert_string_equal(mv_time_format(ms, buf, sizeof(buf)), ref);
        assert_int_equal(mv_time_parse(buf, strlen(buf), &back, NULL), MV_OK);
        assert_true(back == ms);
    }
}



static void
test_time_reasons(void **state)
{
    mv_err_t  err;
    int64_t   ms = 7;

    (void) state;

    assert_int_equal(mv_time_parse("2024-02-30T00:00:00Z", 20, &ms, &err),
                     MV_ERR);
    assert_string_equal(err.msg, "day 30 out of range for 2024-02");
    assert_int_equal(mv_time_parse("2024-01-01T12:00:00", 19, &ms, &err),
                     MV_ERR);
    assert_string_equal(err.msg, "missing time zone (Z or +hh:mm)");
    assert_int_equal(mv_time_parse("2024-01-01T12:00:00+24:00", 25, &ms,
                                   &err), MV_ERR);
    assert_string_equal(err.msg, "time zone offset 24:00 out of range");
    assert_int_equal(mv_time_parse("0000-01-01T00:00:00Z", 20, &ms, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "year 0000"));
    assert_true(ms == 7);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_time_reasons),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
