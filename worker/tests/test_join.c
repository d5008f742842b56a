/*
 * test_join.c -- unit tests of the feature worker's join (feature/join.h),
 * in memory:
 *
 *   - an action on an item with a features record gives an example with
 *     those features and the item's count; a later features record of
 *     the item replaces them (tags, category, deleted) for later joins;
 *   - an action on an item never described gives "features": null and is
 *     counted all the same;
 *   - counts are per item, every action type included, and the encoded
 *     example reads back equal;
 *   - commit / rollback: a rollback puts every count back to the last
 *     commit, the changed list names exactly the items whose count moved,
 *     once each;
 *   - restore: set_count gives the committed count the next join
 *     continues from, and is refused while changes are pending;
 *   - refusals change nothing: bad JSON, an unknown action type, an
 *     embedding of another dimension, a bad id, a count out of range.
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
#include "feature/join.h"

#define DIM  4
#define T0   1704067200000LL                /* 2024-01-01T00:00:00.000Z */


/* ---- helpers ------------------------------------------------------------ */

static mvw_join_t *
new_join(void)
{
    mv_err_t     err;
    mvw_join_t  *j = mvw_join_new(DIM, &err);

    if (j == NULL) {
        fail_msg("mvw_join_new: %s", err.msg);
    }
    return j;
}


/* Applies a features record of item id (category "" = none). */
static int
item(mvw_join_t *j, const char *id, const char *category, const char *tag,
    int deleted, uint32_t dim, mv_err_t *err)
{
    static mv_item_event_t  ev;
    char                    buf[4096];
    float                   v[8] = { 0.5f, 1, 2, 3, 4, 5, 6, 7 };
    size_t                  len;

    memset(&ev, 0, sizeof(ev));
    snprintf(ev.item_id, sizeof(ev.item_id), "%s", id);
    snprintf(ev.category, sizeof(ev.category), "%s", category);
    if (tag != NULL) {
        ev.n_tags = 1;
        snprintf(ev.tags[0], sizeof(ev.tags[0]), "%s", tag);
    }
    ev.embedding = v;
    ev.dim = dim;
    ev.created_at_ms = T0 - 1000;
    ev.deleted = deleted;
    len = mv_item_encode(&ev, buf, sizeof(buf));
    assert_true(len > 0);
    return mvw_join_item(j, buf, len, T0, err);
}


/* Joins user -> id (type t) into *x; fails the test when refused. */
static void
act(mvw_join_t *j, const char *user, const char *id, mv_action_type_t t,
    mv_example_t *x)
{
    mv_action_t  a;
    mv_err_t     err;
    char         buf[512];
    size_t       len;

    memset(&a, 0, sizeof(a));
    snprintf(a.event_id, sizeof(a.event_id), "ev-%s-%s", user, id);
    snprintf(a.user_id, sizeof(a.user_id), "%s", user);
    snprintf(a.item_id, sizeof(a.item_id), "%s", id);
    a.type = t;
    a.timestamp_ms = T0;
    len = mv_action_encode(&a, buf, sizeof(buf));
    if (mvw_join_action(j, buf, len, T0, x, &err) != MV_OK) {
        fail_msg("join %s -> %s: %s", user, id, err.msg);
    }
    assert_memory_equal(&x->action, &a, sizeof(a));
}


/* The changed items as "id=count" sorted by position, comma-separated. */
static void
changed_text(const mvw_join_t *j, char *out, size_t cap)
{
    size_t  at = 0;

    out[0] = '\0';
    for (size_t k = 0; k < mvw_join_n_changed(j); k++) {
        uint64_t     c;
        const char  *id = mvw_join_changed(j, k, &c);

        at += (size_t) snprintf(out + at, cap - at, "%s%s=%llu",
                                k ? "," : "", id, (unsigned long long) c);
    }
}


/* ---- tests -------------------------------------------------------------- */

static void
test_join_with_features(void **state)
{
    mvw_join_t        *j = new_join();
    mvw_join_stats_t   st;
    mv_example_t       x, y;
    mv_err_t           err;
    char               buf[MV_EXAMPLE_ENCODE_MAX];
    size_t             len;

    (void) state;
    assert_int_equal(item(j, "book-1", "books", "paper", 0, DIM, &err),
                     MV_OK);
    act(j, "u1", "book-1", MV_ACTION_CLICK, &x);
    assert_int_equal(x.popularity, 1);
    assert_int_equal(x.has_features, 1);
    assert_string_equal(x.features.category, "books");
    assert_int_equal(x.features.n_tags, 1);
    assert_string_equal(x.features.tags[0], "paper");
    assert_int_equal(x.features.created_at_ms, T0 - 1000);
    assert_int_equal(x.features.deleted, 0);

    /* the encoded example reads back equal */
    len = mv_example_encode(&x, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(mv_example_parse(buf, len, 0, &y, NULL), MV_OK);
    assert_memory_equal(&y.action, &x.action, sizeof(x.action));
    assert_int_equal(y.popularity, 1);
    assert_string_equal(y.features.tags[0], "paper");

    /* every action type counts, per item */
    act(j, "u2", "book-1", MV_ACTION_DISLIKE, &x);
    assert_int_equal(x.popularity, 2);
    act(j, "u2", "other", MV_ACTION_VIEW, &x);
    assert_int_equal(x.popularity, 1);
    act(j, "u3", "book-1", MV_ACTION_PURCHASE, &x);
    assert_int_equal(x.popularity, 3);

    /* a new features record replaces the features, keeps the count */
    assert_int_equal(item(j, "book-1", "", NULL, 1, DIM, &err), MV_OK);
    act(j, "u4", "book-1", MV_ACTION_VIEW, &x);
    assert_int_equal(x.popularity, 4);
    assert_string_equal(x.features.category, "");
    assert_int_equal(x.features.n_tags, 0);
    assert_int_equal(x.features.deleted, 1);
    assert_int_equal(item(j, "book-1", "novels", "a", 0, DIM, &err), MV_OK);
    act(j, "u4", "book-1", MV_ACTION_VIEW, &x);
    assert_string_equal(x.features.category, "novels");
    assert_int_equal(x.features.deleted, 0);

    mvw_join_stats(j, &st);
    assert_int_equal(st.items, 2);
    assert_int_equal(st.with_features, 1);
    mvw_join_free(j);
}


static void
test_unknown_item(void **state)
{
    mvw_join_t        *j = new_join();
    mvw_join_stats_t   st;
    mv_example_t       x;
    mv_err_t           err;

    (void) state;
    act(j, "u1", "ghost", MV_ACTION_LIKE, &x);
    assert_int_equal(x.has_features, 0);
    assert_int_equal(x.popularity, 1);
    act(j, "u2", "ghost", MV_ACTION_LIKE, &x);
    assert_int_equal(x.popularity, 2);
    assert_int_equal(mvw_join_count(j, "ghost"), 2);

    /* described later: the next join has the features, the count goes on */
    assert_int_equal(item(j, "ghost", "spirits", NULL, 0, DIM, &err), MV_OK);
    act(j, "u3", "ghost", MV_ACTION_LIKE, &x);
    assert_int_equal(x.has_features, 1);
    assert_int_equal(x.popularity, 3);
    assert_string_equal(x.features.category, "spirits");
    mvw_join_stats(j, &st);
    assert_int_equal(st.items, 1);
    assert_int_equal(st.with_features, 1);
    mvw_join_free(j);
}


static void
test_commit_rollback(void **state)
{
    mvw_join_t    *j = new_join();
    mv_example_t   x;
    char           text[256];

    (void) state;
    act(j, "u1", "a", MV_ACTION_VIEW, &x);
    act(j, "u1", "b", MV_ACTION_VIEW, &x);
    act(j, "u2", "a", MV_ACTION_VIEW, &x);
    changed_text(j, text, sizeof(text));
    assert_string_equal(text, "a=2,b=1");            /* each once */
    mvw_join_commit(j);
    assert_int_equal(mvw_join_n_changed(j), 0);

    /* a transaction that aborts: every count goes back */
    act(j, "u3", "a", MV_ACTION_VIEW, &x);
    act(j, "u3", "c", MV_ACTION_VIEW, &x);
    act(j, "u4", "c", MV_ACTION_VIEW, &x);
    changed_text(j, text, sizeof(text));
    assert_string_equal(text, "a=3,c=2");
    mvw_join_rollback(j);
    assert_int_equal(mvw_join_n_changed(j), 0);
    assert_int_equal(mvw_join_count(j, "a"), 2);
    assert_int_equal(mvw_join_count(j, "b"), 1);
    assert_int_equal(mvw_join_count(j, "c"), 0);

    /* joined again, the same examples come out */
    act(j, "u3", "a", MV_ACTION_VIEW, &x);
    assert_int_equal(x.popularity, 3);
    act(j, "u3", "c", MV_ACTION_VIEW, &x);
    assert_int_equal(x.popularity, 1);
    mvw_join_commit(j);
    mvw_join_rollback(j);                           /* nothing to undo */
    assert_int_equal(mvw_join_count(j, "a"), 3);
    assert_int_equal(mvw_join_count(j, "c"), 1);
    mvw_join_free(j);
}


static void
test_restore_counts(void **state)
{
    static const char  top[] = "{\"user_id\":\"u\",\"item_id\":\"top\","
                               "\"action_type\":\"View\"}";
    mvw_join_t    *j = new_join();
    mv_example_t   x;
    mv_err_t       err;

    (void) state;
    assert_int_equal(mvw_join_set_count(j, "a", 1, 41, &err), MV_OK);
    assert_int_equal(mvw_join_set_count(j, "b", 1, 7, &err), MV_OK);
    assert_int_equal(mvw_join_set_count(j, "b", 1, 9, &err), MV_OK);
    assert_int_equal(mvw_join_n_changed(j), 0);
    act(j, "u1", "a", MV_ACTION_VIEW, &x);
    assert_int_equal(x.popularity, 42);
    assert_int_equal(x.has_features, 0);
    act(j, "u1", "b", MV_ACTION_VIEW, &x);
    assert_int_equal(x.popularity, 10);

    /* pending changes: refused */
    assert_int_equal(mvw_join_set_count(j, "a", 1, 1, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "pending"));
    mvw_join_rollback(j);
    assert_int_equal(mvw_join_count(j, "a"), 41);

    /* out of range, bad id */
    assert_int_equal(mvw_join_set_count(j, "a", 1,
                                        MV_EXAMPLE_POPULARITY_MAX + 1, &err),
                     MV_ERR);
    assert_int_equal(mvw_join_set_count(j, "a b", 3, 1, &err), MV_ERR);
    assert_int_equal(mvw_join_set_count(j, "", 0, 1, &err), MV_ERR);

    /* the largest count cannot grow */
    assert_int_equal(mvw_join_set_count(j, "top", 3,
                                        MV_EXAMPLE_POPULARITY_MAX, &err),
                     MV_OK);
    assert_int_equal(mvw_join_action(j, top, strlen(top), T0, &x, &err),
                     MVW_JOIN_FAILED);
    assert_int_equal(mvw_join_count(j, "top"), MV_EXAMPLE_POPULARITY_MAX);
    assert_int_equal(mvw_join_n_changed(j), 0);
    mvw_join_free(j);
}


static void
test_refusals_change_nothing(void **state)
{
    static const char *const  actions[] = {
        "not json",
        "{\"user_id\":\"u\",\"item_id\":\"i\",\"action_type\":\"Teleport\"}",
        "{\"user_id\":\"u u\",\"item_id\":\"i\",\"action_type\":\"View\"}",
        "{\"item_id\":\"i\",\"action_type\":\"View\"}",
        "",
    };
    static const char  no_vec[] = "{\"item_id\":\"i\"}";
    mvw_join_t        *j = new_join();
    mvw_join_stats_t   st;
    mv_example_t       x;
    mv_err_t           err;

    (void) state;
    for (size_t k = 0; k < sizeof(actions) / sizeof(actions[0]); k++) {
        assert_int_equal(mvw_join_action(j, actions[k], strlen(actions[k]),
                                         T0, &x, &err), MV_ERR);
        assert_non_null(strstr(err.msg, "action record refused"));
    }
    assert_int_equal(item(j, "i", "c", NULL, 0, DIM + 1, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "dimension_mismatch"));
    assert_int_equal(mvw_join_item(j, no_vec, strlen(no_vec), T0, &err),
                     MV_ERR);
    assert_int_equal(mvw_join_item(j, "[]", 2, T0, &err), MV_ERR);

    mvw_join_stats(j, &st);
    assert_int_equal(st.items, 0);
    assert_int_equal(st.changed, 0);
    assert_int_equal(mvw_join_count(j, "i"), 0);

    /* dim 0: any length is taken */
    mvw_join_free(j);
    j = mvw_join_new(0, &err);
    assert_non_null(j);
    assert_int_equal(item(j, "i", "c", NULL, 0, 7, &err), MV_OK);
    mvw_join_free(j);
    assert_null(mvw_join_new(MV_DIM_MAX + 1, &err));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_join_with_features),
        cmocka_unit_test(test_unknown_item),
        cmocka_unit_test(test_commit_rollback),
        cmocka_unit_test(test_restore_counts),
        cmocka_unit_test(test_refusals_change_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
