/*
 * test_events.c -- unit tests of events.c: action type names, action and
 * item bodies (valid ones, each refusal with its code and the field its
 * detail names), the places where cJSON alone would be lenient, RFC 3339
 * timestamps both ways, and the canonical encoding (exact text, round trips
 * to bit-identical floats, capacity handling, the size bound).
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "events.h"


#define NOW  INT64_C(1700000000000)

#define ACTION_OK_BODY                                                      \
    "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"action_type\":\"Click\","     \
    "\"timestamp\":\"2024-01-01T12:00:00Z\"}"

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


static uint32_t
float_bits(float f)
{
    uint32_t  u;

    memcpy(&u, &f, sizeof(u));
    return u;
}


static float
bits_float(uint32_t u)
{
    float  f;

    memcpy(&f, &u, sizeof(f));
    return f;
}


/* Checks that body[0..len) is refused with code and a detail containing
   needle (when not NULL). */
static void
action_err_len(const char *body, size_t len, const char *code,
    const char *needle)
{
    mv_action_t       a;
    mv_event_error_t  e;

    memset(&e, 0, sizeof(e));
    if (mv_action_parse(body, len, MV_ORIGIN_DATA, NOW, &a, &e) != MV_ERR) {
        fail_msg("action accepted: %.*s", (int) len, body);
    }
    if (e.error == NULL || strcmp(e.error, code) != 0
        || (needle != NULL && strstr(e.detail, needle) == NULL))
    {
        fail_msg("action %.*s: got %s \"%s\", want %s \"%s\"", (int) len,
                 body, e.error ? e.error : "(null)", e.detail, code,
                 needle ? needle : "");
    }
}


static void
action_err(const char *body, const char *code, const char *needle)
{
    action_err_len(body, strlen(body), code, needle);
}


static void
action_ok(const char *body, mv_action_t *a)
{
    mv_event_error_t  e;

    memset(&e, 0, sizeof(e));
    if (mv_action_parse(body, strlen(body), MV_ORIGIN_DATA, NOW, a, &e) != MV_OK) {
        fail_msg("action refused: %s: %s %s", body, e.error, e.detail);
    }
}


static void
item_err_len(const char *body, size_t len, uint32_t expect_dim,
    uint32_t cap, const char *code, const char *needle)
{
    float             emb[64];
    mv_item_event_t   it;
    mv_event_error_t  e;

    assert_true(cap <= 64);
    memset(&e, 0, sizeof(e));
    if (mv_item_parse(body, len, MV_ORIGIN_DATA, NOW, expect_dim, emb, cap, &it, &e)
        != MV_ERR)
    {
        fail_msg("item accepted: %.*s", (int) len, body);
    }
    if (e.error == NULL || strcmp(e.error, code) != 0
        || (needle != NULL && strstr(e.detail, needle) == NULL))
    {
        fail_msg("item %.*s: got %s \"%s\", want %s \"%s\"", (int) len, body,
                 e.error ? e.error : "(null)", e.detail, code,
                 needle ? needle : "");
    }
}


static void
item_err(const char *body, const char *code, const char *needle)
{
    item_err_len(body, strlen(body), 4, 64, code, needle);
}


static void
item_err_dim(const char *body, uint32_t expect_dim, uint32_t cap,
    const char *code, const char *needle)
{
    item_err_len(body, strlen(body), expect_dim, cap, code, needle);
}


static void
item_ok(const char *body, uint32_t expect_dim, float *emb, uint32_t cap,
    mv_item_event_t *it)
{
    mv_event_error_t  e;

    memset(&e, 0, sizeof(e));
    if (mv_item_parse(body, strlen(body), MV_ORIGIN_DATA, NOW, expect_dim, emb, cap, it, &e)
        != MV_OK)
    {
        fail_msg("item refused: %s: %s %s", body, e.error, e.detail);
    }
}


static void
assert_items_equal(const mv_item_event_t *x, const mv_item_event_t *y)
{
    uint32_t  i;

    assert_string_equal(x->event_id, y->event_id);
    assert_string_equal(x->item_id, y->item_id);
    assert_string_equal(x->category, y->category);
    assert_int_equal(x->n_tags, y->n_tags);
    for (i = 0; i < x->n_tags; i++) {
        assert_string_equal(x->tags[i], y->tags[i]);
    }
    assert_int_equal(float_bits(x->popularity), float_bits(y->popularity));
    assert_true(x->created_at_ms == y->created_at_ms);
    assert_int_equal(x->dim, y->dim);
    assert_memory_equal(x->embedding, y->embedding, x->dim * sizeof(float));
}


/* Encodes it, checks the size bound, parses it back and compares. */
static void
item_round_trip(const mv_item_event_t *it)
{
    size_t            bound = mv_item_encode_bound(it->dim), n;
    char             *buf = malloc(bound);
    float            *emb = malloc((it->dim + 1) * sizeof(float));
    mv_item_event_t   back;
    mv_event_error_t  e;

    assert_non_null(buf);
    assert_non_null(emb);
    n = mv_item_encode(it, buf, bound);
    assert_true(n > 0);
    assert_true(n + 1 <= bound);
    assert_int_equal(strlen(buf), n);

    if (mv_item_parse(buf, n, MV_ORIGIN_DATA, 0, it->dim, emb, it->dim, &back, &e)
        != MV_OK)
    {
        fail_msg("re-parse of %s: %s %s", buf, e.error, e.detail);
    }
    assert_items_equal(it, &back);

    free(emb);
    free(buf);
}


/* ---- action types ------------------------------------------------------ */

static void
test_type_names(void **state)
{
    static const char *const  names[] = {
        "View", "Click", "Like", "Share", "AddToCart", "Purchase", "Dislike"
    };
    static const char *const  variants[][4] = {
        { "view", "VIEW", "vIeW", "view" },
        { "click", "CLICK", "Click", "click" },
        { "like", "LIKE", "lIKE", "like" },
        { "share", "SHARE", "sHaRe", "share" },
        { "addtocart", "ADD_TO_CART", "add_to_cart", "Add_To_Cart" },
        { "purchase", "PURCHASE", "Purchase", "purchase" },
        { "dislike", "DISLIKE", "DisLike", "dislike" },
    };
    static const char *const  unknown[] = {
        "", "Vie", "Views", "add-to-cart", "add_to_cart_", "_view",
        "addto_cart",
        "add_tocart", "Click ", " Click", "Unknown", "clic", "likes"
    };
    int     t, k;
    size_t  i;

    (void) state;

    assert_int_equal(MV_ACTION_TYPES, 7);
    for (t = 0; t < MV_ACTION_TYPES; t++) {
        assert_string_equal(mv_action_type_name((mv_action_type_t) t),
                            names[t]);
        assert_int_equal(mv_action_type_from_name(names[t],
                                                  strlen(names[t])), t);
        for (k = 0; k < 4; k++) {
            assert_int_equal(mv_action_type_from_name(variants[t][k],
                                 strlen(variants[t][k])), t);
        }
    }
    for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_int_equal(mv_action_type_from_name(unknown[i],
                                                  strlen(unknown[i])), -1);
    }

    /* The length counts, not a NUL. */
    assert_int_equal(mv_action_type_from_name("ViewX", 4), MV_ACTION_VIEW);
    assert_int_equal(mv_action_type_from_name("View\0", 5), -1);
    assert_int_equal(mv_action_type_from_name("Vi", 2), -1);
    assert_int_equal(mv_action_type_from_name(NULL, 0), -1);

    assert_null(mv_action_type_name(MV_ACTION_TYPES));
    assert_null(mv_action_type_name((mv_action_type_t) -1));
}


/* ---- actions ----------------------------------------------------------- */

static void
test_action_valid(void **state)
{
    mv_action_t  a;
    char         body[256];
    int          t;

    (void) state;

    action_ok(ACTION_OK_BODY, &a);
    assert_string_equal(a.event_id, "");
    assert_string_equal(a.user_id, "u1");
    assert_string_equal(a.item_id, "i1");
    assert_int_equal(a.type, MV_ACTION_CLICK);
    assert_true(a.timestamp_ms == T_2024);

    /* Without a timestamp: now. */
    action_ok("{\"user_id\":\"u1\",\"item_id\":\"i1\",\"action_type\":"
              "\"add_to_cart\"}", &a);
    assert_int_equal(a.type, MV_ACTION_ADD_TO_CART);
    assert_true(a.timestamp_ms == NOW);

    /* event_id, whitespace everywhere, unknown fields of every kind. */
    action_ok(" \t\r\n{ \"event_id\" : "
              "\"550e8400-e29b-41d4-a716-446655440000\""
              " ,\n\"extra\":{\"a\":[1,2,{\"b\":null}],\"c\":true},"
              "\"user_id\":\"U.s:e-r_1\",\"n\":-1.5e3,\"f\":false,"
              "\"item_id\":\"item-9\",\"action_type\":\"PURCHASE\","
              "\"s\":\"caf\\u00e9 \\ud83d\\ude00 \\\" \\\\ \\/ \\n\","
              "\"timestamp\":\"2024-01-01T14:00:00.250+02:00\"} \n", &a);
    assert_string_equal(a.event_id, "550e8400-e29b-41d4-a716-446655440000");
    assert_string_equal(a.user_id, "U.s:e-r_1");
    assert_string_equal(a.item_id, "item-9");
    assert_int_equal(a.type, MV_ACTION_PURCHASE);
    assert_true(a.timestamp_ms == T_2024 + 250);

    /* Every type, by its name. */
    for (t = 0; t < MV_ACTION_TYPES; t++) {
        snprintf(body, sizeof(body), "{\"user_id\":\"u\",\"item_id\":\"i\","
                 "\"action_type\":\"%s\"}",
                 mv_action_type_name((mv_action_type_t) t));
        action_ok(body, &a);
        assert_int_equal(a.type, t);
    }

    /* Only len bytes are read: what follows does not matter. */
    {
        const char  *s = ACTION_OK_BODY "garbage\xff";
        mv_event_error_t  e;

        assert_int_equal(mv_action_parse(s, strlen(ACTION_OK_BODY), MV_ORIGIN_DATA, NOW, &a,
                                         &e), MV_OK);
        assert_true(a.timestamp_ms == T_2024);
    }

    /* e may be NULL. */
    assert_int_equal(mv_action_parse("{}", 2, MV_ORIGIN_DATA, NOW, &a, NULL), MV_ERR);
    assert_int_equal(mv_action_parse(ACTION_OK_BODY, strlen(ACTION_OK_BODY), MV_ORIGIN_DATA, NOW, &a, NULL), MV_OK);
}


static void
test_action_missing_and_types(void **state)
{
    mv_action_t  a;

    (void) state;

    action_err("{\"item_id\":\"i1\",\"action_type\":\"Click\"}",
               "invalid_field", "\"user_id\": missing");
    action_err("{\"user_id\":\"u1\",\"action_type\":\"Click\"}",
               "invalid_field", "\"item_id\": missing");
    action_err("{\"user_id\":\"u1\",\"item_id\":\"i1\"}",
               "invalid_field", "\"action_type\": missing");
    action_err("{}", "invalid_field", "\"user_id\": missing");
    /* Keys are case-sensitive. */
    action_err("{\"User_Id\":\"u1\",\"item_id\":\"i1\",\"action_type\":"
               "\"Click\"}", "invalid_field", "\"user_id\": missing");

    action_err("{\"user_id\":1,\"item_id\":\"i1\",\"action_type\":\"Click\"}",
               "invalid_field", "\"user_id\": expected a string");
    /* null means absent: a missing required field. */
    action_err("{\"user_id\":\"u\",\"item_id\":null,\"action_type\":\"Like\"}",
               "invalid_field", "\"item_id\": missing");
    action_err("{\"user_id\":\"u\",\"item_id\":[\"i\"],\"action_type\":"
               "\"Like\"}", "invalid_field", "\"item_id\": expected a string");
    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":3}",
               "invalid_field", "\"action_type\": expected a string");
    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":true}",
               "invalid_field", "\"action_type\": expected a string");
    /* A time is RFC 3339 text or whole unix milliseconds; null: absent. */
    action_ok("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Like\","
              "\"timestamp\":1704110400000}", &a);
    assert_true(a.timestamp_ms == INT64_C(1704110400000));
    action_ok("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Like\","
              "\"timestamp\":null}", &a);
    assert_true(a.timestamp_ms == NOW);
    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Like\","
               "\"timestamp\":1.5}",
               "invalid_field", "\"timestamp\": not whole unix milliseconds");
    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Like\","
               "\"timestamp\":253402300800000}",
               "invalid_field", "\"timestamp\": not whole unix milliseconds");
    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Like\","
               "\"timestamp\":true}",
               "invalid_field", "\"timestamp\": expected an RFC 3339 string");
    action_err("{\"event_id\":{},\"user_id\":\"u\",\"item_id\":\"i\","
               "\"action_type\":\"Like\"}",
               "invalid_field", "\"event_id\": expected a string");
    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Like\","
               "\"timestamp\":\"2024-01-01\"}",
               "invalid_field", "\"timestamp\": not an RFC 3339");
    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Like\","
               "\"timestamp\":\"2023-02-29T00:00:00Z\"}",
               "invalid_field", "\"timestamp\"");

    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":"
               "\"Poke\"}",
               "unknown_action_type", "\"action_type\"");
    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"\"}",
               "unknown_action_type", "\"action_type\"");
    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":"
               "\"add-to-cart\"}", "unknown_action_type", NULL);
    action_err("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":"
               "\"Click\\u00e9\"}", "unknown_action_type", NULL);
}


static void
test_action_ids(void **state)
{
    char         id64[MV_ID_MAX + 1], id65[MV_ID_MAX + 2], body[512];
    mv_action_t  a;
    size_t       i;
    static const char *const  bad[] = {
        "", "a b", "a/b", "caf\\u00e9", "a\\tb", "a+b", "a@b", "a\\\"b",
        "\\u0041\\u0020"
    };

    (void) state;

    memset(id64, 'x', MV_ID_MAX);
    id64[MV_ID_MAX] = '\0';
    memset(id65, 'y', MV_ID_MAX + 1);
    id65[MV_ID_MAX + 1] = '\0';

    snprintf(body, sizeof(body), "{\"event_id\":\"%s\",\"user_id\":\"%s\","
             "\"item_id\":\"%s\",\"action_type\":\"View\"}", id64, id64,
             id64);
    action_ok(body, &a);
    assert_string_equal(a.event_id, id64);
    assert_string_equal(a.user_id, id64);
    assert_string_equal(a.item_id, id64);

    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"item_id\":\"i\","
             "\"action_type\":\"View\"}", id65);
    action_err(body, "invalid_field", "\"user_id\": not an id");
    snprintf(body, sizeof(body), "{\"user_id\":\"u\",\"item_id\":\"%s\","
             "\"action_type\":\"View\"}", id65);
    action_err(body, "invalid_field", "\"item_id\": not an id");
    snprintf(body, sizeof(body), "{\"event_id\":\"%s\",\"user_id\":\"u\","
             "\"item_id\":\"i\",\"action_type\":\"View\"}", id65);
    action_err(body, "invalid_field", "\"event_id\": not an id");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"user_id\":\"u\",\"item_id\":\"%s\","
                 "\"action_type\":\"View\"}", bad[i]);
        action_err(body, "invalid_field", "\"item_id\": not an id");
    }

    /* An escape that decodes to an id character is fine. */
    action_ok("{\"user_id\":\"\\u0041b\",\"item_id\":\"i\\u002d\\u005f\","
              "\"action_type\":\"View\"}", &a);
    assert_string_equal(a.user_id, "Ab");
    assert_string_equal(a.item_id, "i-_");
}


/* ---- invalid JSON ------------------------------------------------------ */

typedef struct bad_json {
    const char  *body;
    size_t       len;
} bad_json_t;


/* {"x":[[...]],...}: an action nested levels + 1 deep. */
static char *
make_deep(int levels)
{
    char    *s = malloc(200 + 2 * (size_t) levels);
    size_t   len;
    int      k;

    assert_non_null(s);
    len = (size_t) sprintf(s, "{\"x\":");
    for (k = 0; k < levels; k++) {
        s[len++] = '[';
    }
    for (k = 0; k < levels; k++) {
        s[len++] = ']';
    }
    sprintf(s + len, ",\"user_id\":\"u\",\"item_id\":\"i\","
            "\"action_type\":\"View\"}");
    return s;
}


/* An action with 300 more members, the last one named last. */
static char *
make_wide(const char *last)
{
    char    *s = malloc(20000);
    size_t   len;
    int      k;

    assert_non_null(s);
    len = (size_t) sprintf(s, "{\"user_id\":\"u\",\"item_id\":\"i\","
                           "\"action_type\":\"View\"");
    for (k = 0; k < 300; k++) {
        len += (size_t) sprintf(s + len, ",\"k%d\":%d", k, k);
    }
    sprintf(s + len, ",\"%s\":0}", last);
    return s;
}


static void
test_invalid_json(void **state)
{
    /* Each is otherwise a valid action. */
#define V_USER  "\"user_id\":\"u\""
#define V_REST  "\"item_id\":\"i\",\"action_type\":\"View\""
#define B(s)    { s, sizeof(s) - 1 }
    static const bad_json_t  bad[] = {
        B(""),
        B(" \n"),
        B("{"),
        { "{" V_USER "," V_REST, 0 },
        B("{" V_USER "," V_REST "}}"),
        B("{" V_USER "," V_REST "} x"),
        B("{" V_USER "," V_REST "}{}"),
        B("{" V_USER "," V_REST "},"),
        B("[{" V_USER "," V_REST "}]"),
        B("\"s\""),
        B("1"),
        B("null"),
        B("true"),
        B("[]"),
        B("{" V_USER "," V_REST ",}"),
        B("{" V_USER ",," V_REST "}"),
        B("{'user_id':'u'," V_REST "}"),
        B("{user_id:\"u\"," V_REST "}"),
        B("{" V_USER V_REST "}"),
        /* comments */
        B("{" V_USER "," V_REST "}/*c*/"),
        B("/*c*/{" V_USER "," V_REST "}"),
        B("{" V_USER "," V_REST "}//c"),
        /* duplicate keys: used or not */
        B("{" V_USER "," V_USER "," V_REST "}"),
        B("{" V_USER ",\"user_id\":\"v\"," V_REST "}"),
        B("{\"x\":1," V_USER ",\"x\":2," V_REST "}"),
        /* numbers cJSON would take */
        B("{\"n\":01," V_USER "," V_REST "}"),
        B("{\"n\":1.," V_USER "," V_REST "}"),
        B("{\"n\":-.5," V_USER "," V_REST "}"),
        B("{\"n\":1.e5," V_USER "," V_REST "}"),
        B("{\"n\":+1," V_USER "," V_REST "}"),
        B("{\"n\":0x10," V_USER "," V_REST "}"),
        B("{\"n\":NaN," V_USER "," V_REST "}"),
        B("{\"n\":-Infinity," V_USER "," V_REST "}"),
        B("{\"n\":1e," V_USER "," V_REST "}"),
        B("{\"n\":-," V_USER "," V_REST "}"),
        B("{\"n\":1e+," V_USER "," V_REST "}"),
        B("{\"n\":--1," V_USER "," V_REST "}"),
        B("{\"n\":1-2," V_USER "," V_REST "}"),
        /* whitespace cJSON would skip */
        B("\xef\xbb\xbf{" V_USER "," V_REST "}"),
        B("{\x01" V_USER "," V_REST "}"),
        B("{\x0b" V_USER "," V_REST "}"),
        B("{\x0c" V_USER "," V_REST "}"),
        B("{" V_USER "," V_REST "}\x00"),
        B("{\x00" V_USER "," V_REST "}"),
        B("{" V_USER "," V_REST "}\x7f"),
        /* strings */
        B("{" V_USER ",\"s\":\"a\x01z\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"a\nz\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"a\\u0000z\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"a\\uZZZZz\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"a\\u12\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"a\\x\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"\\ud800\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"\\udc00\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"\\ud800\\u0041\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"\xff\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"\xc0\xaf\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"\xe0\x80\xaf\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"\xed\xa0\x80\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"\xf4\x90\x80\x80\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"\xc3\"," V_REST "}"),
        B("{" V_USER ",\"s\":\"\x80\"," V_REST "}"),
        B("{" V_USER ",\"s\xff\":1," V_REST "}"),
        B("{" V_USER ",\"s\":\"abc"),
        B("{" V_USER ",\"s\":\"abc\\"),
        B("{" V_USER ",\"a\\u0000\":1," V_REST "}"),
    };
#undef V_USER
#undef V_REST
#undef B
    size_t       i, len;
    char        *deep, *many;
    int          k;
    mv_action_t  a;

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        action_err_len(bad[i].body, bad[i].len, "invalid_json", NULL);
    }
    action_err_len(NULL, 0, "invalid_json", "empty");
    action_err_len(NULL, 5, "invalid_json", "empty");

    /* The detail names the duplicated key. */
    action_err("{\"user_id\":\"u\",\"user_id\":\"u\"}", "invalid_json",
               "\"user_id\" given twice");
    action_err("{\"a b\":1,\"a b\":1}", "invalid_json", "a key is given "
               "twice");

    /* Many members: the keys are sorted off the stack. */
    many = make_wide("k7");
    action_err(many, "invalid_json", "\"k7\" given twice");
    free(many);
    many = make_wide("k300");
    action_ok(many, &a);
    free(many);

    /* Nesting: 32 levels are fine, 33 are not. */
    deep = make_deep(31);
    action_ok(deep, &a);
    free(deep);
    deep = make_deep(32);
    action_err(deep, "invalid_json", "nested deeper");
    free(deep);

    /* Values: 4 * MV_DIM_MAX at most. */
    many = malloc(5 * 4 * MV_DIM_MAX + 200);
    assert_non_null(many);
    len = (size_t) sprintf(many, "{\"user_id\":\"u\",\"item_id\":\"i\","
                           "\"action_type\":\"View\",\"x\":[");
    for (k = 0; k < 4 * MV_DIM_MAX; k++) {
        len += (size_t) sprintf(many + len, "%s0", k ? "," : "");
    }
    sprintf(many + len, "]}");
    action_err(many, "invalid_json", "more than");
    free(many);
}


/* A few things a strict JSON parser must still accept. */
static void
test_json_accepted(void **state)
{
    mv_action_t      a;
    mv_item_event_t  it;
    float            emb[8];

    (void) state;

    action_ok("{\"n\":[0,-0,1e5,1E+5,1e-05,-1.25e0,0.0,123456789012345678901"
              "234567890],\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":"
              "\"view\",\"u\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
              "\"\":1}", &a);
    item_ok("{\"item_id\":\"i\",\"embedding\":[0,-0,1e0,1E-1,2.5e+1,"
            "0.100000000000000000000000000000000000000000000000000000000001]}",
            0, emb, 8, &it);
    assert_int_equal(it.dim, 6);
    assert_true(emb[0] == 0.0f && !signbit(emb[0]));
    assert_true(emb[1] == 0.0f && signbit(emb[1]));
    assert_true(emb[4] == 25.0f);
    assert_true(emb[5] == 0.1f);
}


/* ---- items ------------------------------------------------------------- */

static void
test_item_valid(void **state)
{
    mv_item_event_t  it;
    float            emb[64];

    (void) state;

    item_ok("{\"event_id\":\"ev-1\",\"item_id\":\"item:42\",\"embedding\":"
            "[0.5,-1,2e-3,4],\"category\":\"books\",\"tags\":[\"sci-fi\","
            "\"caf\xc3\xa9\",\"say \\\"hi\\\"\",\"\\u20ac\"],"
            "\"popularity_score\":0.8,\"created_at\":\"2024-01-01T12:00:00Z\","
            "\"other\":[1,{\"x\":\"y\"}]}", 4, emb, 64, &it);
    assert_string_equal(it.event_id, "ev-1");
    assert_string_equal(it.item_id, "item:42");
    assert_string_equal(it.category, "books");
    assert_int_equal(it.n_tags, 4);
    assert_string_equal(it.tags[0], "sci-fi");
    assert_string_equal(it.tags[1], "caf\xc3\xa9");
    assert_string_equal(it.tags[2], "say \"hi\"");
    assert_string_equal(it.tags[3], "\xe2\x82\xac");
    assert_true(it.popularity == 0.8f);
    assert_true(it.created_at_ms == T_2024);
    assert_int_equal(it.dim, 4);
    assert_ptr_equal(it.embedding, emb);
    assert_true(emb[0] == 0.5f && emb[1] == -1.0f && emb[2] == 2e-3f
                && emb[3] == 4.0f);

    /* Minimal: everything optional absent. */
    item_ok("{\"item_id\":\"i\",\"embedding\":[1]}", 0, emb, 64, &it);
    assert_string_equal(it.event_id, "");
    assert_string_equal(it.category, "");
    assert_int_equal(it.n_tags, 0);
    assert_true(it.popularity == 0.0f);
    assert_true(it.created_at_ms == NOW);
    assert_int_equal(it.dim, 1);

    /* Empty tags, popularity 0 and -0, integer popularity. */
    item_ok("{\"item_id\":\"i\",\"embedding\":[1,2],\"tags\":[],"
            "\"popularity_score\":0}", 2, emb, 2, &it);
    assert_int_equal(it.n_tags, 0);
    item_ok("{\"item_id\":\"i\",\"embedding\":[1,2],\"popularity_score\":-0}",
            2, emb, 2, &it);
    assert_true(it.popularity == 0.0f);
    item_ok("{\"item_id\":\"i\",\"embedding\":[1,2],\"popularity_score\":7}",
            0, emb, 2, &it);
    assert_true(it.popularity == 7.0f);

    /* Float limits: a value rounding to FLT_MAX is fine. */
    item_ok("{\"item_id\":\"i\",\"embedding\":[3.4028235e38,-3.40282356e38,"
            "1e-46,-1e-50]}", 4, emb, 4, &it);
    assert_true(emb[0] == FLT_MAX && emb[1] == -FLT_MAX);
    assert_true(emb[2] == 0.0f && emb[3] == 0.0f && signbit(emb[3]));
}


static void
test_item_invalid(void **state)
{
    char    body[4096], tag65[MV_TAG_MAX + 2];
    int     k;
    size_t  len;

    (void) state;

    item_err("{\"embedding\":[1,2,3,4]}", "invalid_field",
             "\"item_id\": missing");
    item_err("{\"item_id\":\"i\"}", "invalid_field",
             "\"embedding\": missing");
    item_err("{\"item_id\":\"i i\",\"embedding\":[1,2,3,4]}", "invalid_field",
             "\"item_id\": not an id");
    item_err("{\"item_id\":\"i\",\"embedding\":\"1,2,3,4\"}", "invalid_field",
             "\"embedding\": expected an array");
    item_err("{\"item_id\":\"i\",\"embedding\":{\"0\":1}}", "invalid_field",
             "\"embedding\": expected an array");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,\"3\",4]}",
             "invalid_field", "\"embedding\": element 2 is not a number");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,null]}",
             "invalid_field", "\"embedding\": element 3 is not a number");
    item_err("{\"item_id\":\"i\",\"embedding\":[[1],2,3,4]}",
             "invalid_field", "\"embedding\": element 0 is not a number");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,true,3,4]}",
             "invalid_field", "element 1");

    /* Dimensions. */
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3]}", "dimension_mismatch",
             "field \"embedding\": expected 4 numbers, got 3");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4,5]}",
             "dimension_mismatch", "expected 4 numbers, got 5");
    item_err("{\"item_id\":\"i\",\"embedding\":[]}", "dimension_mismatch",
             "expected 4 numbers, got 0");
    item_err_dim("{\"item_id\":\"i\",\"embedding\":[]}", 0, 64,
                 "dimension_mismatch", "expected 1 to 64 numbers, got 0");
    item_err_dim("{\"item_id\":\"i\",\"embedding\":[1,2,3,4,5]}", 0, 4,
                 "dimension_mismatch", "expected 1 to 4 numbers, got 5");
    item_err_dim("{\"item_id\":\"i\",\"embedding\":[1,2,3,4,5]}", 5, 4,
                 "dimension_mismatch", "got 5");
    {
        mv_item_event_t  it;
        float            emb[4];

        item_ok("{\"item_id\":\"i\",\"embedding\":[1,2,3,4]}", 0, emb, 4,
                &it);
        assert_int_equal(it.dim, 4);
        static const char  one[] = "{\"item_id\":\"i\",\"embedding\":[1]}";

        assert_int_equal(mv_item_parse(one, sizeof(one) - 1, MV_ORIGIN_DATA, NOW, 0, NULL, 4,
                                       &it, NULL), MV_ERR);
    }

    /* Non-finite numbers. */
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,1e39,4]}",
             "non_finite_number", "\"embedding\": element 2");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,-1e39]}",
             "non_finite_number", "element 3");
    item_err("{\"item_id\":\"i\",\"embedding\":[1e999,2,3,4]}",
             "non_finite_number", "element 0");
    item_err("{\"item_id\":\"i\",\"embedding\":[-1e400,2,3,4]}",
             "non_finite_number", "element 0");
    item_err("{\"item_id\":\"i\",\"embedding\":[3.4028236e38,2,3,4]}",
             "non_finite_number", "element 0");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],"
             "\"popularity_score\":1e39}", "non_finite_number",
             "\"popularity_score\"");

    /* Popularity. */
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],"
             "\"popularity_score\":-0.5}", "invalid_field",
             "\"popularity_score\": negative");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],"
             "\"popularity_score\":-1e-50}", "invalid_field", "negative");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],"
             "\"popularity_score\":\"0.5\"}", "invalid_field",
             "\"popularity_score\": expected a number");
    {
        mv_item_event_t  it;
        float            emb[4];

        /* null is absent */
        item_ok("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],"
                "\"popularity_score\":null,\"category\":null,\"tags\":null,"
                "\"created_at\":null,\"deleted\":null}", 4, emb, 4, &it);
        assert_true(it.popularity == 0.0f);
        assert_string_equal(it.category, "");
        assert_true(it.created_at_ms == NOW);
        assert_int_equal(it.deleted, 0);
    }

    /* Category, created_at, event_id. */
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"category\":\"\"}",
             "invalid_field", "\"category\": not an id");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"category\":"
             "\"sci fi\"}", "invalid_field", "\"category\": not an id");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"category\":7}",
             "invalid_field", "\"category\": expected a string");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"created_at\":"
             "\"2024-02-30T00:00:00Z\"}", "invalid_field", "\"created_at\"");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"created_at\":"
             "[0]}", "invalid_field", "\"created_at\": expected an RFC 3339");
    item_err("{\"event_id\":\"\",\"item_id\":\"i\",\"embedding\":[1,2,3,4]}",
             "invalid_field", "\"event_id\": not an id");

    /* Tags. */
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"tags\":\"a\"}",
             "invalid_field", "\"tags\": expected an array");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"tags\":[\"a\",1]}",
             "invalid_field", "\"tags\": element 1 is not a string");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"tags\":[\"\"]}",
             "invalid_field", "\"tags\": element 0: empty");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"tags\":"
             "[\"a\\nb\"]}", "invalid_field", "control character");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"tags\":"
             "[\"a\\u007fb\"]}", "invalid_field", "control character");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"tags\":"
             "[\"a\x7f" "b\"]}", "invalid_field", "control character");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"tags\":"
             "[\"\\u001f\"]}", "invalid_field", "control character");
    /* Invalid UTF-8 in a tag is refused before cJSON sees it. */
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"tags\":"
             "[\"caf\xe9\"]}", "invalid_json", "UTF-8");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"tags\":"
             "[\"\xed\xbf\xbf\"]}", "invalid_json", "UTF-8");
    item_err("{\"item_id\":\"i\",\"embedding\":[1,2,3,4],\"tags\":"
             "[\"\xc1\xbf\"]}", "invalid_json", "UTF-8");

    memset(tag65, 't', sizeof(tag65) - 1);
    tag65[MV_TAG_MAX + 1] = '\0';
    snprintf(body, sizeof(body), "{\"item_id\":\"i\",\"embedding\":[1,2,3,4],"
             "\"tags\":[\"%s\"]}", tag65);
    item_err(body, "invalid_field", "\"tags\": element 0: too long");
    tag65[MV_TAG_MAX] = '\0';
    snprintf(body, sizeof(body), "{\"item_id\":\"i\",\"embedding\":[1,2,3,4],"
             "\"tags\":[\"%s\"]}", tag65);
    {
        mv_item_event_t  it;
        float            emb[4];

        item_ok(body, 4, emb, 4, &it);
        assert_string_equal(it.tags[0], tag65);
    }

    len = (size_t) sprintf(body, "{\"item_id\":\"i\",\"embedding\":[1,2,3,4],"
                           "\"tags\":[");
    for (k = 0; k < MV_TAGS_MAX; k++) {
        len += (size_t) sprintf(body + len, "%s\"t%d\"", k ? "," : "", k);
    }
    sprintf(body + len, "]}");
    {
        mv_item_event_t  it;
        float            emb[4];

        item_ok(body, 4, emb, 4, &it);
        assert_int_equal(it.n_tags, MV_TAGS_MAX);
        assert_string_equal(it.tags[31], "t31");
    }
    sprintf(body + len, ",\"t32\"]}");
    item_err(body, "invalid_field", "\"tags\": more than 32 tags");
}


/* The 64-byte tag above is accepted; this checks it kept all its bytes. */
static void
test_item_long_tag(void **state)
{
    char             body[512], tag[MV_TAG_MAX + 1];
    mv_item_event_t  it;
    float            emb[1];
    int              k;

    (void) state;

    /* 21 three-byte characters and one byte: 64 bytes of UTF-8. */
    tag[0] = '\0';
    for (k = 0; k < 21; k++) {
        strcat(tag, "\xe2\x82\xac");
    }
    strcat(tag, "x");
    assert_int_equal(strlen(tag), MV_TAG_MAX);
    snprintf(body, sizeof(body), "{\"item_id\":\"i\",\"embedding\":[1],"
             "\"tags\":[\"%s\"]}", tag);
    item_ok(body, 1, emb, 1, &it);
    assert_string_equal(it.tags[0], tag);

    /* One more euro sign: 67 bytes. */
    snprintf(body, sizeof(body), "{\"item_id\":\"i\",\"embedding\":[1],"
             "\"tags\":[\"%s\xe2\x82\xac\"]}", tag);
    item_err_len(body, strlen(body), 1, 1, "invalid_field", "too long");
}


/* ---- encoding ---------------------------------------------------------- */

static void
test_action_encode(void **state)
{
    mv_action_t  a, back;
    char         buf[512];
    size_t       n, cap;
    static const char  want[] =
        "{\"event_id\":\"e-1\",\"user_id\":\"u1\",\"item_id\":\"i1\","
        "\"action_type\":\"AddToCart\",\"timestamp\":"
        "\"2024-01-01T12:00:00.250Z\"}";
    int          t;

    (void) state;

    action_ok("{\"timestamp\":\"2024-01-01T13:00:00.250999+01:00\","
              "\"action_type\":\"ADD_TO_CART\",\"item_id\":\"i1\","
              "\"user_id\":\"u1\",\"event_id\":\"e-1\"}", &a);
    n = mv_action_encode(&a, buf, sizeof(buf));
    assert_int_equal(n, strlen(want));
    assert_string_equal(buf, want);

    /* Capacity: too small is 0, exact is no NUL, one more has the NUL. */
    for (cap = 0; cap < n; cap++) {
        memset(buf, '#', sizeof(buf));
        assert_int_equal(mv_action_encode(&a, buf, cap), 0);
    }
    memset(buf, '#', sizeof(buf));
    assert_int_equal(mv_action_encode(&a, buf, n), n);
    assert_int_equal(buf[n], '#');
    assert_memory_equal(buf, want, n);
    assert_int_equal(mv_action_encode(&a, buf, n + 1), n);
    assert_int_equal(buf[n], '\0');
    assert_int_equal(mv_action_encode(&a, NULL, 100), 0);

    /* Without event_id. */
    action_ok("{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"like\"}",
              &a);
    n = mv_action_encode(&a, buf, sizeof(buf));
    assert_string_equal(buf, "{\"user_id\":\"u\",\"item_id\":\"i\","
                        "\"action_type\":\"Like\",\"timestamp\":"
                        "\"2023-11-14T22:13:20.000Z\"}");

    /* Round trips, every type, longest ids. */
    for (t = 0; t < MV_ACTION_TYPES; t++) {
        memset(&a, 0, sizeof(a));
        memset(a.event_id, 'e', MV_ID_MAX);
        memset(a.user_id, 'u', MV_ID_MAX);
        memset(a.item_id, 'i', MV_ID_MAX);
        a.type = (mv_action_type_t) t;
        a.timestamp_ms = INT64_C(253402300799999) - t;
        n = mv_action_encode(&a, buf, sizeof(buf));
        assert_true(n > 0 && n < 300);
        assert_int_equal(mv_action_parse(buf, n, MV_ORIGIN_DATA, 0, &back, NULL), MV_OK);
        assert_memory_equal(&a, &back, sizeof(a));
    }

    /* An unknown type cannot be encoded. */
    a.type = MV_ACTION_TYPES;
    assert_int_equal(mv_action_encode(&a, buf, sizeof(buf)), 0);
}


static void
test_item_encode(void **state)
{
    mv_item_event_t  it;
    float            emb[4];
    char             buf[1024];
    size_t           n, cap;
    static const char  want[] =
        "{\"event_id\":\"ev\",\"item_id\":\"i1\",\"embedding\":[0.5,-1,"
        "0.00200000009,1e+09],\"category\":\"books\",\"tags\":[\"a\","
        "\"say \\\"hi\\\" \\\\ o/\",\"caf\xc3\xa9\"],"
        "\"popularity_score\":0.800000012,"
        "\"created_at\":\"2024-01-01T12:00:00.000Z\"}";

    (void) state;

    item_ok("{\"item_id\":\"i1\",\"tags\":[\"a\",\"say \\\"hi\\\" \\\\ o\\/\","
            "\"caf\\u00e9\"],\"event_id\":\"ev\",\"embedding\":[0.5,-1,2e-3,"
            "1000000000],\"popularity_score\":0.8,\"category\":\"books\","
            "\"created_at\":\"2024-01-01T12:00:00Z\"}", 4, emb, 4, &it);
    n = mv_item_encode(&it, buf, sizeof(buf));
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
    item_round_trip(&it);

    for (cap = 0; cap < n; cap++) {
        assert_int_equal(mv_item_encode(&it, buf, cap), 0);
    }
    assert_int_equal(mv_item_encode(&it, buf, n), n);
    assert_int_equal(mv_item_encode(&it, NULL, 0), 0);

    /* Optional parts absent: no event_id, no category, "tags":[]. */
    item_ok("{\"item_id\":\"i\",\"embedding\":[1]}", 1, emb, 1, &it);
    n = mv_item_encode(&it, buf, sizeof(buf));
    assert_string_equal(buf, "{\"item_id\":\"i\",\"embedding\":[1],"
                        "\"tags\":[],\"popularity_score\":0,\"created_at\":"
                        "\"2023-11-14T22:13:20.000Z\"}");
    item_round_trip(&it);

    /* A NULL embedding with a dimension cannot be encoded. */
    it.embedding = NULL;
    assert_int_equal(mv_item_encode(&it, buf, sizeof(buf)), 0);
}


static void
test_item_float_round_trip(void **state)
{
    static const float  edge[] = {
        FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX, 0.0f, -0.0f, FLT_EPSILON,
        1.0f, -1.0f, 0.1f, 1.0f / 3.0f, 16777216.0f, 16777217.0f,
        123456789.0f, -0.000123456789f, 1e-45f, -1e-45f, 1.17549421e-38f,
        5.877472e-39f, 3.0e-44f, 1e38f, 0.3f, 100.0f, 1e9f, 65504.0f,
    };
    mv_item_event_t  it;
    float            emb[64];
    uint32_t         i, k, u;

    (void) state;

    memset(&it, 0, sizeof(it));
    strcpy(it.item_id, "x");
    it.embedding = emb;
    it.created_at_ms = T_2024;

    it.dim = sizeof(edge) / sizeof(edge[0]);
    memcpy(emb, edge, sizeof(edge));
    it.popularity = FLT_MAX;
    item_round_trip(&it);
    it.popularity = 1e-45f;
    item_round_trip(&it);
    it.popularity = FLT_MIN;
    item_round_trip(&it);

    /* Every denormal exponent, and random finite bit patterns. */
    it.dim = 23;
    for (i = 0; i < 23; i++) {
        emb[i] = bits_float((1u << i) | (i & 1 ? 0x80000000u : 0));
    }
    item_round_trip(&it);

    it.dim = 64;
    for (k = 0; k < 500; k++) {
        for (i = 0; i < 64; i++) {
            do {
                u = rng_u32();
            } while ((u & 0x7f800000u) == 0x7f800000u);
            emb[i] = bits_float(u);
        }
        do {
            u = rng_u32() & 0x7fffffffu;
        } while ((u & 0x7f800000u) == 0x7f800000u);
        it.popularity = bits_float(u);
        item_round_trip(&it);
    }
}


static void
test_item_encode_bound(void **state)
{
    mv_item_event_t  *it;
    float            *emb;
    char             *buf;
    size_t            bound, n;
    uint32_t          i, dim;
    static const float  widest[] = {
        -1.17549435e-38f, -0.000123456789f, -1.40129846e-45f,
        -3.40282347e+38f, -123456789.0f
    };
    static const uint32_t  dims[] = { 1, 2, 7, 64, MV_DIM_MAX };
    size_t            d, w;

    (void) state;

    it = calloc(1, sizeof(*it));
    emb = malloc(MV_DIM_MAX * sizeof(float));
    assert_non_null(it);
    assert_non_null(emb);

    for (d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
        for (w = 0; w < sizeof(widest) / sizeof(widest[0]); w++) {
            char  tmp[32];

            dim = dims[d];
            snprintf(tmp, sizeof(tmp), "%.9g", (double) widest[w]);
            assert_true(strlen(tmp) >= 10);

            /* Valid, as long as it gets. */
            memset(it, 0, sizeof(*it));
            memset(it->event_id, 'e', MV_ID_MAX);
            memset(it->item_id, 'i', MV_ID_MAX);
            memset(it->category, 'c', MV_ID_MAX);
            it->n_tags = MV_TAGS_MAX;
            for (i = 0; i < MV_TAGS_MAX; i++) {
                memset(it->tags[i], 't', MV_TAG_MAX);
            }
            it->popularity = 1.17549435e-38f;
            it->created_at_ms = 1;
            it->dim = dim;
            it->embedding = emb;
            for (i = 0; i < dim; i++) {
                emb[i] = widest[w];
            }
            bound = mv_item_encode_bound(dim);
            buf = malloc(bound);
            assert_non_null(buf);
            n = mv_item_encode(it, buf, bound);
            assert_true(n > 0 && n + 1 <= bound);
            if (w == 0) {
                item_round_trip(it);
            }

            /* Hand-made strings needing every byte escaped. */
            memset(it->event_id, 0x01, MV_ID_MAX);
            memset(it->item_id, '"', MV_ID_MAX);
            memset(it->category, 0x1f, MV_ID_MAX);
            for (i = 0; i < MV_TAGS_MAX; i++) {
                memset(it->tags[i], 0x02, MV_TAG_MAX);
            }
            n = mv_item_encode(it, buf, bound);
            assert_true(n > 0 && n + 1 <= bound);
            free(buf);
        }
    }

    /* Quotes, backslashes and control characters in tags survive. */
    memset(it, 0, sizeof(*it));
    strcpy(it->item_id, "i");
    it->embedding = emb;
    it->dim = 1;
    emb[0] = 1.0f;
    it->n_tags = 3;
    strcpy(it->tags[0], "\"");
    strcpy(it->tags[1], "\\\\");
    strcpy(it->tags[2], "a\"b\\c/d");
    item_round_trip(it);
    {
        char             out[512];
        mv_item_event_t  back;
        mv_event_error_t e;

        strcpy(it->tags[2], "a\tb");
        n = mv_item_encode(it, out, sizeof(out));
        assert_non_null(strstr(out, "\"a\\u0009b\""));
        assert_int_equal(mv_item_parse(out, n, MV_ORIGIN_DATA, 0, 1, emb, 1, &back, &e),
                         MV_ERR);
        assert_string_equal(e.error, "invalid_field");
    }

    assert_true(mv_item_encode_bound(0) < mv_item_encode_bound(1));
    assert_true(mv_item_encode_bound(MV_DIM_MAX) >= 16 * MV_DIM_MAX);

    free(emb);
    free(it);
}



/* What a client may not set: an item's event_id, the client_event_id
   marker, and deleted: true; an action's event_id is its retry key. */
static void
test_origins(void **state)
{
    static const char  act[] = "{\"event_id\":\"e1\",\"user_id\":\"u\","
                               "\"item_id\":\"i\",\"action_type\":\"Like\"}";
    static const char  del[] = "{\"item_id\":\"i\",\"embedding\":[1,2],"
                               "\"deleted\":true}";
    static const char  live[] = "{\"item_id\":\"i\",\"embedding\":[1,2],"
                                "\"deleted\":false}";
    static const char  item_eid[] = "{\"event_id\":\"e2\",\"item_id\":\"i\","
                                    "\"embedding\":[1,2]}";
    static const char  marked[] = "{\"event_id\":\"e1\",\"user_id\":\"u\","
                                  "\"item_id\":\"i\",\"action_type\":"
                                  "\"Like\",\"client_event_id\":true}";
    static const char  unmarked[] = "{\"event_id\":\"e1\",\"user_id\":"
                                    "\"u\",\"item_id\":\"i\",\"action_type"
                                    "\":\"Like\",\"client_event_id\":false}";
    static const char  marked_no_id[] = "{\"user_id\":\"u\",\"item_id\":"
                                        "\"i\",\"action_type\":\"Like\","
                                        "\"client_event_id\":true}";
    static const char  marked_str[] = "{\"event_id\":\"e1\",\"user_id\":"
                                      "\"u\",\"item_id\":\"i\",\"action_"
                                      "type\":\"Like\",\"client_event_id\":"
                                      "\"true\"}";
    mv_action_t        a, back_a;
    mv_item_event_t    it, back;
    mv_event_error_t   e;
    float              emb[2], emb2[2];
    char               buf[512];
    size_t             n;

    (void) state;

    assert_int_equal(mv_action_parse(act, sizeof(act) - 1, MV_ORIGIN_DATA,
                                     NOW, &a, &e), MV_OK);
    assert_string_equal(a.event_id, "e1");
    assert_int_equal(a.client_event_id, 0);
    /* a client's event_id is its retry key: accepted and marked */
    assert_int_equal(mv_action_parse(act, sizeof(act) - 1, MV_ORIGIN_CLIENT,
                                     NOW, &a, &e), MV_OK);
    assert_string_equal(a.event_id, "e1");
    assert_int_equal(a.client_event_id, 1);
    n = mv_action_encode(&a, buf, sizeof(buf));
    assert_true(n > 0);
    assert_non_null(strstr(buf, "\"timestamp\":\"2023-11-14T22:13:20.000Z\","
                           "\"client_event_id\":true}"));
    assert_int_equal(mv_action_parse(buf, n, MV_ORIGIN_DATA, 0, &back_a, &e),
                     MV_OK);
    assert_memory_equal(&a, &back_a, sizeof(a));
    /* ... under the same id rules as the other ids */
    assert_int_equal(mv_action_parse("{\"event_id\":\"a b\",\"user_id\":"
                                     "\"u\",\"item_id\":\"i\",\"action_type"
                                     "\":\"Like\"}", 67, MV_ORIGIN_CLIENT, NOW,
                                     &a, &e), MV_ERR);
    assert_string_equal(e.error, "invalid_field");
    assert_non_null(strstr(e.detail, "\"event_id\": not an id"));
    /* the marker is the server's: refused from a client, even false */
    assert_int_equal(mv_action_parse(marked, sizeof(marked) - 1,
                                     MV_ORIGIN_CLIENT, NOW, &a, &e), MV_ERR);
    assert_string_equal(e.error, "invalid_field");
    assert_non_null(strstr(e.detail, "\"client_event_id\": assigned by the "
                           "server"));
    assert_int_equal(mv_action_parse(unmarked, sizeof(unmarked) - 1,
                                     MV_ORIGIN_CLIENT, NOW, &a, &e), MV_ERR);
    assert_int_equal(mv_action_parse(unmarked, sizeof(unmarked) - 1,
                                     MV_ORIGIN_DATA, NOW, &a, &e), MV_OK);
    assert_int_equal(a.client_event_id, 0);
    n = mv_action_encode(&a, buf, sizeof(buf));
    assert_null(strstr(buf, "client_event_id"));
    /* from data: true beside an event_id, a boolean */
    assert_int_equal(mv_action_parse(marked, sizeof(marked) - 1,
                                     MV_ORIGIN_DATA, NOW, &a, &e), MV_OK);
    assert_int_equal(a.client_event_id, 1);
    assert_int_equal(mv_action_parse(marked_no_id, sizeof(marked_no_id) - 1,
                                     MV_ORIGIN_DATA, NOW, &a, &e), MV_ERR);
    assert_non_null(strstr(e.detail, "without an event_id"));
    assert_int_equal(mv_action_parse(marked_str, sizeof(marked_str) - 1,
                                     MV_ORIGIN_DATA, NOW, &a, &e), MV_ERR);
    assert_non_null(strstr(e.detail, "expected true or false"));
    /* a marker without an id cannot be written */
    memset(&a, 0, sizeof(a));
    strcpy(a.user_id, "u");
    strcpy(a.item_id, "i");
    a.client_event_id = 1;
    assert_int_equal(mv_action_encode(&a, buf, sizeof(buf)), 0);

    /* null is absent, for a client too */
    assert_int_equal(mv_action_parse("{\"event_id\":null,\"user_id\":\"u\","
                                     "\"item_id\":\"i\",\"action_type\":"
                                     "\"Like\"}", 66, MV_ORIGIN_CLIENT, NOW,
                                     &a, &e), MV_OK);
    assert_string_equal(a.event_id, "");

    assert_int_equal(mv_item_parse(item_eid, sizeof(item_eid) - 1,
                                   MV_ORIGIN_CLIENT, NOW, 2, emb, 2, &it, &e),
                     MV_ERR);
    assert_non_null(strstr(e.detail, "\"event_id\""));

    assert_int_equal(mv_item_parse(del, sizeof(del) - 1, MV_ORIGIN_DATA,
                                   NOW, 2, emb, 2, &it, &e), MV_OK);
    assert_int_equal(it.deleted, 1);
    assert_int_equal(mv_item_parse(del, sizeof(del) - 1, MV_ORIGIN_CLIENT,
                                   NOW, 2, emb, 2, &it, &e), MV_ERR);
    assert_string_equal(e.error, "invalid_field");
    assert_non_null(strstr(e.detail, "\"deleted\""));
    assert_int_equal(mv_item_parse(live, sizeof(live) - 1, MV_ORIGIN_CLIENT,
                                   NOW, 2, emb, 2, &it, &e), MV_OK);
    assert_int_equal(it.deleted, 0);
    assert_int_equal(mv_item_parse("{\"item_id\":\"i\",\"embedding\":[1,2],"
                                   "\"deleted\":1}", 45, MV_ORIGIN_DATA, NOW,
                                   2, emb, 2, &it, &e), MV_ERR);
    assert_non_null(strstr(e.detail, "expected true or false"));

    /* A deleted item's payload says so and reads back deleted; a live
       one's payload has no "deleted" at all. */
    assert_int_equal(mv_item_parse(del, sizeof(del) - 1, MV_ORIGIN_DATA,
                                   NOW, 2, emb, 2, &it, &e), MV_OK);
    n = mv_item_encode(&it, buf, sizeof(buf));
    assert_true(n > 0 && n < mv_item_encode_bound(2));
    assert_non_null(strstr(buf, ",\"deleted\":true}"));
    assert_int_equal(mv_item_parse(buf, n, MV_ORIGIN_DATA, 0, 2, emb2, 2,
                                   &back, &e), MV_OK);
    assert_int_equal(back.deleted, 1);
    it.deleted = 0;
    n = mv_item_encode(&it, buf, sizeof(buf));
    assert_null(strstr(buf, "deleted"));
}


/*
 * created_at before 1970 (as RFC 3339) reads back exactly; as a number, a
 * time is unix milliseconds from 1973-03-03 on, and a smaller number (unix
 * seconds, most likely) is refused instead of becoming a date in 1970.
 */
static void
test_item_created_at(void **state)
{
    static const char  body[] = "{\"item_id\":\"i\",\"embedding\":[1],"
                                "\"created_at\":\"1969-12-30T23:59:59.999Z\"}";
    static const struct { const char *t; int ok; int64_t ms; } num[] = {
        { "100000000000", 1, INT64_C(100000000000) },
        { "1704110400000", 1, INT64_C(1704110400000) },
        { "253402300799999", 1, INT64_C(253402300799999) },
        { "1704110400", 0, 0 },             /* seconds */
        { "99999999999", 0, 0 },
        { "0", 0, 0 },
        { "-86400001", 0, 0 },
        { "253402300800000", 0, 0 },
        { "1.7e12", 1, INT64_C(1700000000000) },
        { "1704110400000.5", 0, 0 },
    };
    mv_item_event_t    it, back;
    mv_event_error_t   e;
    float              emb[1], emb2[1];
    char               buf[512];
    size_t             n, i;

    (void) state;

    assert_int_equal(mv_item_parse(body, sizeof(body) - 1, MV_ORIGIN_DATA,
                                   NOW, 1, emb, 1, &it, &e), MV_OK);
    assert_true(it.created_at_ms == INT64_C(-86400001));
    n = mv_item_encode(&it, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"1969-12-30T23:59:59.999Z\""));
    assert_int_equal(mv_item_parse(buf, n, MV_ORIGIN_DATA, 0, 1, emb2, 1,
                                   &back, &e), MV_OK);
    assert_true(back.created_at_ms == it.created_at_ms);

    for (i = 0; i < sizeof(num) / sizeof(num[0]); i++) {
        snprintf(buf, sizeof(buf), "{\"item_id\":\"i\",\"embedding\":[1],"
                 "\"created_at\":%s}", num[i].t);
        if ((mv_item_parse(buf, strlen(buf), MV_ORIGIN_CLIENT, NOW, 1, emb,
                           1, &it, &e) == MV_OK) != num[i].ok
            || (num[i].ok && it.created_at_ms != num[i].ms))
        {
            fail_msg("created_at %s: want %s", num[i].t,
                     num[i].ok ? "accepted" : "refused");
        }
    }
    snprintf(buf, sizeof(buf), "{\"item_id\":\"i\",\"embedding\":[1],"
             "\"created_at\":1704110400}");
    assert_int_equal(mv_item_parse(buf, strlen(buf), MV_ORIGIN_DATA, NOW, 1,
                                   emb, 1, &it, &e), MV_ERR);
    assert_non_null(strstr(e.detail, "looks like unix seconds"));
}


/* A popularity of -0 (as sent, or underflowing) is 0, not a negative. */
static void
test_item_negative_zero(void **state)
{
    static const char *const  bodies[] = {
        "{\"item_id\":\"i\",\"embedding\":[1],\"popularity_score\":-0}",
        "{\"item_id\":\"i\",\"embedding\":[1],\"popularity_score\":-1e-400}",
    };
    mv_item_event_t           it;
    mv_event_error_t          e;
    float                     emb[1];
    char                      buf[256];
    size_t                    i;

    (void) state;

    for (i = 0; i < 2; i++) {
        assert_int_equal(mv_item_parse(bodies[i], strlen(bodies[i]),
                                       MV_ORIGIN_CLIENT, NOW, 1, emb, 1, &it,
                                       &e), MV_OK);
        assert_false(signbit(it.popularity));
        assert_true(mv_item_encode(&it, buf, sizeof(buf)) > 0);
        assert_non_null(strstr(buf, "\"popularity_score\":0,"));
    }
}


static void
test_user_vector(void **state)
{
    static const char  good[] = "{\"user_id\":\"u-1\",\"embedding\":[0.5,-1],"
                                "\"name\":\"ignored\"}";
    mv_user_vector_t   u;
    mv_event_error_t   e;
    float              emb[4];

    (void) state;

    assert_int_equal(mv_user_vector_parse(good, sizeof(good) - 1, 0, emb, 4,
                                          &u, &e), MV_OK);
    assert_string_equal(u.user_id, "u-1");
    assert_int_equal(u.dim, 2);
    assert_true(u.embedding == emb && emb[0] == 0.5f && emb[1] == -1.0f);

    assert_int_equal(mv_user_vector_parse(good, sizeof(good) - 1, 3, emb, 4,
                                          &u, &e), MV_ERR);
    assert_string_equal(e.error, "dimension_mismatch");
    assert_int_equal(mv_user_vector_parse("{\"embedding\":[1]}", 17, 0, emb,
                                          4, &u, &e), MV_ERR);
    assert_non_null(strstr(e.detail, "\"user_id\": missing"));
    assert_int_equal(mv_user_vector_parse("{\"user_id\":\"u\",\"embedding\":"
                                          "[1e39]}", 34, 0, emb, 4, &u, &e),
                     MV_ERR);
    assert_string_equal(e.error, "non_finite_number");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_action_valid),
        cmocka_unit_test(test_action_missing_and_types),
        cmocka_unit_test(test_action_ids),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_json_accepted),
        cmocka_unit_test(test_item_valid),
        cmocka_unit_test(test_item_invalid),
        cmocka_unit_test(test_item_long_tag),
        cmocka_unit_test(test_action_encode),
        cmocka_unit_test(test_item_encode),
        cmocka_unit_test(test_item_float_round_trip),
        cmocka_unit_test(test_item_encode_bound),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_item_created_at),
        cmocka_unit_test(test_item_negative_zero),
        cmocka_unit_test(test_user_vector),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
