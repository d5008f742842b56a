/*
 * test_example.c -- unit tests of the training example format (events.h:
 * mv_example_parse, mv_example_encode): the canonical text exactly, with
 * and without features; round trips; each refusal with its code and the
 * field its detail names; the action part read by mv_action_parse as the
 * same action; capacity handling and the MV_EXAMPLE_ENCODE_MAX bound with
 * the longest strings escaping allows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "events.h"

#define NOW     INT64_C(1700000000000)
#define T_2024  INT64_C(1704110400000)          /* 2024-01-01T12:00:00Z */

#define ACTION_FIELDS                                                       \
    "\"event_id\":\"e-1\",\"user_id\":\"u1\",\"item_id\":\"i1\","          \
    "\"action_type\":\"Click\",\"timestamp\":\"2024-01-01T12:00:00.000Z\""

#define WITH_FEATURES                                                       \
    "{" ACTION_FIELDS ",\"popularity\":3,\"features\":{\"category\":"       \
    "\"books\",\"tags\":[\"a\",\"b c\"],\"created_at\":"                    \
    "\"2024-01-01T12:00:00.000Z\"}}"

#define WITHOUT_FEATURES                                                    \
    "{" ACTION_FIELDS ",\"popularity\":1,\"features\":null}"


static void
example_fill(mv_example_t *x, int with_features)
{
    memset(x, 0, sizeof(*x));
    strcpy(x->action.event_id, "e-1");
    strcpy(x->action.user_id, "u1");
    strcpy(x->action.item_id, "i1");
    x->action.type = MV_ACTION_CLICK;
    x->action.timestamp_ms = T_2024;
    x->popularity = with_features ? 3 : 1;
    x->has_features = with_features;
    if (with_features) {
        strcpy(x->features.category, "books");
        x->features.n_tags = 2;
        strcpy(x->features.tags[0], "a");
        strcpy(x->features.tags[1], "b c");
        x->features.created_at_ms = T_2024;
    }
}


static void
expect_equal(const mv_example_t *a, const mv_example_t *b)
{
    assert_string_equal(a->action.event_id, b->action.event_id);
    assert_string_equal(a->action.user_id, b->action.user_id);
    assert_string_equal(a->action.item_id, b->action.item_id);
    assert_int_equal(a->action.type, b->action.type);
    assert_int_equal(a->action.timestamp_ms, b->action.timestamp_ms);
    assert_int_equal(a->action.client_event_id, b->action.client_event_id);
    assert_int_equal(a->popularity, b->popularity);
    assert_int_equal(a->has_features, b->has_features);
    if (!a->has_features) {
        return;
    }
    assert_string_equal(a->features.category, b->features.category);
    assert_int_equal(a->features.n_tags, b->features.n_tags);
    for (uint32_t i = 0; i < a->features.n_tags; i++) {
        assert_string_equal(a->features.tags[i], b->features.tags[i]);
    }
    assert_int_equal(a->features.created_at_ms, b->features.created_at_ms);
    assert_int_equal(a->features.deleted, b->features.deleted);
}


/* ---- tests -------------------------------------------------------------- */

static void
test_canonical_text(void **state)
{
    mv_example_t  x, y;
    char          buf[MV_EXAMPLE_ENCODE_MAX];
    size_t        n;

    (void) state;
    example_fill(&x, 1);
    n = mv_example_encode(&x, buf, sizeof(buf));
    assert_int_equal(n, strlen(WITH_FEATURES));
    assert_string_equal(buf, WITH_FEATURES);
    assert_int_equal(mv_example_parse(buf, n, NOW, &y, NULL), MV_OK);
    expect_equal(&x, &y);

    example_fill(&x, 0);
    n = mv_example_encode(&x, buf, sizeof(buf));
    assert_string_equal(buf, WITHOUT_FEATURES);
    assert_int_equal(mv_example_parse(buf, n, NOW, &y, NULL), MV_OK);
    expect_equal(&x, &y);

    /* no category, a deleted item */
    example_fill(&x, 1);
    x.features.category[0] = '\0';
    x.features.n_tags = 0;
    x.features.deleted = 1;
    n = mv_example_encode(&x, buf, sizeof(buf));
    assert_string_equal(buf, "{" ACTION_FIELDS ",\"popularity\":3,"
                        "\"features\":{\"tags\":[],\"created_at\":"
                        "\"2024-01-01T12:00:00.000Z\",\"deleted\":true}}");
    assert_int_equal(mv_example_parse(buf, n, NOW, &y, NULL), MV_OK);
    expect_equal(&x, &y);

    /* the client's retry key marker survives the join */
    example_fill(&x, 0);
    x.action.client_event_id = 1;
    n = mv_example_encode(&x, buf, sizeof(buf));
    assert_string_equal(buf, "{" ACTION_FIELDS ",\"client_event_id\":true,"
                        "\"popularity\":1,\"features\":null}");
    assert_int_equal(mv_example_parse(buf, n, NOW, &y, NULL), MV_OK);
    assert_int_equal(y.action.client_event_id, 1);
    expect_equal(&x, &y);
}


static void
test_lenient_where_the_rules_are(void **state)
{
    static const char  body[] =
        "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"action_type\":\"click\","
        "\"popularity\":9007199254740991,\"extra\":[1,2],"
        "\"features\":{\"tags\":null,\"other\":true}}";
    static const char  bare[] =
        "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
        "\"popularity\":1}";
    mv_example_t  x;
    mv_action_t   a;

    (void) state;
    assert_int_equal(mv_example_parse(body, strlen(body), NOW, &x, NULL),
                     MV_OK);
    assert_int_equal(x.popularity, MV_EXAMPLE_POPULARITY_MAX);
    assert_int_equal(x.action.timestamp_ms, NOW);       /* arrival time */
    assert_string_equal(x.action.event_id, "");
    assert_int_equal(x.has_features, 1);
    assert_int_equal(x.features.n_tags, 0);
    assert_int_equal(x.features.created_at_ms, NOW);
    assert_string_equal(x.features.category, "");

    /* features absent: none, as null */
    assert_int_equal(mv_example_parse(bare, strlen(bare), NOW, &x, NULL),
                     MV_OK);
    assert_int_equal(x.has_features, 0);

    /* the action part of an example is that action */
    assert_int_equal(mv_example_parse(WITH_FEATURES, strlen(WITH_FEATURES),
                                      NOW, &x, NULL), MV_OK);
    assert_int_equal(mv_action_parse(WITH_FEATURES, strlen(WITH_FEATURES),
                                     MV_ORIGIN_DATA, NOW, &a, NULL), MV_OK);
    assert_memory_equal(&a, &x.action, sizeof(a));
}


static void
test_refusals(void **state)
{
    static const struct {
        const char  *body;
        const char  *code;
        const char  *field;            /* in the detail, or NULL */
    } rows[] = {
        { "not json", "invalid_json", NULL },
        { "[1]", "invalid_json", NULL },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\"}",
          "invalid_field", "popularity" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":0}", "invalid_field", "popularity" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":-3}", "invalid_field", "popularity" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":1.5}", "invalid_field", "popularity" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":9007199254740992}", "invalid_field",
          "popularity" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":\"2\"}", "invalid_field", "popularity" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Fly\","
          "\"popularity\":1}", "unknown_action_type", "action_type" },
        { "{\"user_id\":\"u u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":1}", "invalid_field", "user_id" },
        { "{\"item_id\":\"i\",\"action_type\":\"View\",\"popularity\":1}",
          "invalid_field", "user_id" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"timestamp\":1700000000,\"popularity\":1}", "invalid_field",
          "timestamp" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":1,\"features\":[]}", "invalid_field", "features" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":1,\"features\":{\"category\":\"a b\"}}",
          "invalid_field", "category" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":1,\"features\":{\"tags\":[1]}}",
          "invalid_field", "tags" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":1,\"features\":{\"created_at\":\"yesterday\"}}",
          "invalid_field", "created_at" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":1,\"features\":{\"deleted\":1}}",
          "invalid_field", "deleted" },
        { "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"View\","
          "\"popularity\":1,\"features\":{\"tags\":[],\"tags\":[]}}",
          "invalid_json", NULL },
    };
    mv_example_t      x;
    mv_event_error_t  e;

    (void) state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        memset(&e, 0, sizeof(e));
        if (mv_example_parse(rows[i].body, strlen(rows[i].body), NOW, &x, &e)
            != MV_ERR)
        {
            fail_msg("row %zu accepted: %s", i, rows[i].body);
        }
        assert_non_null(e.error);
        if (strcmp(e.error, rows[i].code) != 0
            || (rows[i].field != NULL
                && strstr(e.detail, rows[i].field) == NULL))
        {
            fail_msg("row %zu: %s: %s", i, e.error, e.detail);
        }
    }
    /* no error struct: still refused */
    assert_int_equal(mv_example_parse("{}", 2, NOW, &x, NULL), MV_ERR);
}


static void
test_encode_limits(void **state)
{
    mv_example_t  x, y;
    char         *buf = malloc(MV_EXAMPLE_ENCODE_MAX);
    size_t        n;

    (void) state;
    assert_non_null(buf);

    /* refused structs */
    example_fill(&x, 1);
    x.popularity = 0;
    assert_int_equal(mv_example_encode(&x, buf, MV_EXAMPLE_ENCODE_MAX), 0);
    x.popularity = MV_EXAMPLE_POPULARITY_MAX + 1;
    assert_int_equal(mv_example_encode(&x, buf, MV_EXAMPLE_ENCODE_MAX), 0);
    example_fill(&x, 1);
    x.action.type = MV_ACTION_TYPES;
    assert_int_equal(mv_example_encode(&x, buf, MV_EXAMPLE_ENCODE_MAX), 0);

    /* one byte short: nothing; exact: the text */
    example_fill(&x, 1);
    n = mv_example_encode(&x, buf, MV_EXAMPLE_ENCODE_MAX);
    assert_true(n > 0);
    assert_int_equal(mv_example_encode(&x, buf, n - 1), 0);
    assert_int_equal(mv_example_encode(&x, buf, n), n);
    assert_int_equal(mv_example_encode(&x, NULL, 0), 0);

    /* the longest example: every string at its limit, tags of quotes
       (escaped to two bytes each, as parsed text can hold) */
    memset(&x, 0, sizeof(x));
    memset(x.action.event_id, 'e', MV_ID_MAX);
    memset(x.action.user_id, 'u', MV_ID_MAX);
    memset(x.action.item_id, 'i', MV_ID_MAX);
    x.action.type = MV_ACTION_ADD_TO_CART;
    x.action.timestamp_ms = T_2024;
    x.popularity = MV_EXAMPLE_POPULARITY_MAX;
    x.has_features = 1;
    memset(x.features.category, 'c', MV_ID_MAX);
    x.features.n_tags = MV_TAGS_MAX;
    for (uint32_t i = 0; i < MV_TAGS_MAX; i++) {
        memset(x.features.tags[i], '"', MV_TAG_MAX);
    }
    x.features.created_at_ms = T_2024;
    x.features.deleted = 1;
    n = mv_example_encode(&x, buf, MV_EXAMPLE_ENCODE_MAX);
    assert_true(n > MV_TAGS_MAX * 2 * MV_TAG_MAX);
    assert_true(n < MV_EXAMPLE_ENCODE_MAX);
    assert_int_equal(mv_example_parse(buf, n, NOW, &y, NULL), MV_OK);
    expect_equal(&x, &y);
    free(buf);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_canonical_text),
        cmocka_unit_test(test_lenient_where_the_rules_are),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_encode_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
