/*
 * test_json.c -- the one number grammar (mv_json_number_len,
 * mv_number_parse), the float conversion every parser uses, the text check,
 * and the null-is-absent field lookup.  The gates of mv_json_load_object
 * are exercised through the event parsers in test_events.c.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "json.h"


static void
test_number_len(void **state)
{
    static const struct { const char *s; size_t len; } cases[] = {
        { "0", 1 }, { "-0", 2 }, { "7", 1 }, { "42,", 2 }, { "4.5]", 3 },
        { "-1.25e+3}", 8 }, { "1E5 ", 3 }, { "0.0", 3 },
        { "01", 0 }, { "1.", 0 }, { ".5", 0 }, { "+1", 0 }, { "-", 0 },
        { "1e", 0 }, { "1e+", 0 }, { "1.5.2", 0 }, { "--1", 0 },
        { "1.e5", 0 }, { "x", 0 }, { "", 0 }, { "1-", 0 }, { "1e5e", 0 },
    };
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (mv_json_number_len(cases[i].s, strlen(cases[i].s))
            != cases[i].len)
        {
            fail_msg("\"%s\": want %zu", cases[i].s, cases[i].len);
        }
    }
    assert_int_equal(mv_json_number_len(NULL, 3), 0);
    /* The length bounds the scan: "12" of "123" is a whole number. */
    assert_int_equal(mv_json_number_len("123", 2), 2);
}


static void
test_number_parse(void **state)
{
    double  d = 0;
    char    big[MV_NUMBER_TEXT_MAX + 2];

    (void) state;

    assert_int_equal(mv_number_parse("4.5", 3, &d), MV_OK);
    assert_true(d == 4.5);
    assert_int_equal(mv_number_parse("-2e-3", 5, &d), MV_OK);
    assert_true(d == -2e-3);
    assert_int_equal(mv_number_parse("1e999", 5, &d), MV_OK);
    assert_true(isinf(d));

    /* Exactly one number, nothing around it. */
    assert_int_equal(mv_number_parse("4.5 ", 4, &d), MV_ERR);
    assert_int_equal(mv_number_parse(" 4.5", 4, &d), MV_ERR);
    assert_int_equal(mv_number_parse(".5", 2, &d), MV_ERR);
    assert_int_equal(mv_number_parse("+1", 2, &d), MV_ERR);
    assert_int_equal(mv_number_parse("5.", 2, &d), MV_ERR);
    assert_int_equal(mv_number_parse("0x10", 4, &d), MV_ERR);
    assert_int_equal(mv_number_parse("nan", 3, &d), MV_ERR);
    assert_int_equal(mv_number_parse("", 0, &d), MV_ERR);

    memset(big, '1', sizeof(big));
    assert_int_equal(mv_number_parse(big, MV_NUMBER_TEXT_MAX, &d), MV_OK);
    assert_int_equal(mv_number_parse(big, MV_NUMBER_TEXT_MAX + 1, &d),
                     MV_ERR);
}


static void
test_float_from_double(void **state)
{
    float  f = 7.0f;

    (void) state;

    assert_int_equal(mv_float_from_double(1.5, &f), MV_OK);
    assert_true(f == 1.5f);
    assert_int_equal(mv_float_from_double((double) FLT_MAX, &f), MV_OK);
    assert_true(f == FLT_MAX);
    /* Rounds to FLT_MAX: accepted; half an ulp above: infinity, refused. */
    assert_int_equal(mv_float_from_double(0x1.fffffefffffffp127, &f), MV_OK);
    assert_int_equal(mv_float_from_double(0x1.ffffffp127, &f), MV_ERR);
    assert_int_equal(mv_float_from_double(-0x1.ffffffp127, &f), MV_ERR);
    assert_int_equal(mv_float_from_double(NAN, &f), MV_ERR);
    assert_int_equal(mv_float_from_double(INFINITY, &f), MV_ERR);
    assert_true(f == FLT_MAX);      /* untouched by refusals */
}


static void
test_text_and_fields(void **state)
{
    mv_err_t  err;
    cJSON    *o;

    (void) state;

    assert_null(mv_text_problem("caf\xc3\xa9", 5, 8));
    assert_string_equal(mv_text_problem("", 0, 8), "empty");
    assert_string_equal(mv_text_problem("abcdefghi", 9, 8), "too long");
    assert_string_equal(mv_text_problem("a\tb", 3, 8),
                        "contains a control character");
    assert_string_equal(mv_text_problem("\xc3", 1, 8), "not UTF-8");

    o = mv_json_load_object("{\"a\":null,\"b\":1}", 16, &err);
    assert_non_null(o);
    assert_null(mv_json_field(o, "a"));
    assert_null(mv_json_field(o, "c"));
    assert_non_null(mv_json_field(o, "b"));
    cJSON_Delete(o);

    assert_null(mv_json_load_object("{\"a\":1,\"a\":2}", 13, &err));
    assert_non_null(strstr(err.msg, "given twice"));
    /* at every depth, in arrays too */
    assert_null(mv_json_load_object("{\"x\":{\"a\":1,\"a\":2}}", 19, &err));
    assert_non_null(strstr(err.msg, "\"a\" given twice"));
    assert_null(mv_json_load_object("{\"x\":[{\"b\":1},{\"c\":1,\"c\":1}]}",
                                    29, &err));
    o = mv_json_load_object("{\"x\":[{\"b\":1},{\"b\":1}]}", 23, &err);
    assert_non_null(o);             /* the same key in two objects is fine */
    cJSON_Delete(o);
    assert_null(mv_json_load_object("[1]", 3, &err));
    assert_null(mv_json_load_object("{\"a\":01}", 8, &err));
    assert_non_null(strstr(err.msg, "malformed number"));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_len),
        cmocka_unit_test(test_number_parse),
        cmocka_unit_test(test_float_from_double),
        cmocka_unit_test(test_text_and_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
