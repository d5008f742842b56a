/*
 * test_corpus.c -- the item corpus (shared/tests/corpus/items.txt) through
 * the one item parser, from both origins: each line's outcome is the one
 * the corpus states, and every accepted item survives the stream (encoded,
 * parsed back as stored data: the same item, to the bit).  The worker's
 * catalogue (worker/tests/test_catalog.c) and nginx (t/035-item-corpus.t)
 * are held to the same lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "corpus.h"
#include "events.h"


#define NOW  INT64_C(1700000000000)


static const char *
outcome(int rc, const mv_event_error_t *e)
{
    return rc == MV_OK ? "ok" : e->error;
}


static void
same_item(const mv_item_event_t *a, const mv_item_event_t *b)
{
    assert_string_equal(a->item_id, b->item_id);
    assert_string_equal(a->category, b->category);
    assert_int_equal(a->n_tags, b->n_tags);
    for (uint32_t t = 0; t < a->n_tags; t++) {
        assert_string_equal(a->tags[t], b->tags[t]);
    }
    assert_memory_equal(&a->popularity, &b->popularity, sizeof(float));
    assert_true(a->created_at_ms == b->created_at_ms);
    assert_int_equal(a->deleted, b->deleted);
    assert_int_equal(a->dim, b->dim);
    assert_memory_equal(a->embedding, b->embedding, a->dim * sizeof(float));
}


static void
test_corpus_outcomes(void **state)
{
    static mvt_corpus_item_t  items[MVT_CORPUS_LINES];
    static mv_item_event_t    it, back;
    mv_event_error_t          e;
    float                     emb[MVT_CORPUS_DIM], emb2[MVT_CORPUS_DIM];
    char                      buf[8192];
    const char               *got;
    int                       n, i, rc, accepted = 0, refused = 0;
    size_t                    len;

    (void) state;

    n = mvt_corpus_load(items);
    assert_true(n > 40);

    for (i = 0; i < n; i++) {
        for (int o = 0; o < 2; o++) {
            mv_event_origin_t  origin = o ? MV_ORIGIN_DATA : MV_ORIGIN_CLIENT;
            const char        *want = o ? items[i].expect_data
                                        : items[i].expect_client;

            rc = mv_item_parse(items[i].body, strlen(items[i].body), origin,
                               NOW, MVT_CORPUS_DIM, emb, MVT_CORPUS_DIM, &it,
                               &e);
            got = outcome(rc, &e);
            if (strcmp(got, want) != 0) {
                fail_msg("line %d %s: got %s (%s), want %s", items[i].line,
                         o ? "as data" : "from a client", got,
                         rc == MV_OK ? "" : e.detail, want);
            }
        }
        if (rc != MV_OK) {
            refused++;
            continue;
        }
        accepted++;
        assert_int_equal(strncmp(it.item_id, "c-", 2), 0);

        len = mv_item_encode(&it, buf, sizeof(buf));
        assert_true(len > 0);
        assert_int_equal(mv_item_parse(buf, len, MV_ORIGIN_DATA, 0,
                                       MVT_CORPUS_DIM, emb2, MVT_CORPUS_DIM,
                                       &back, &e), MV_OK);
        same_item(&it, &back);
    }

    /* Both kinds are there: the corpus cannot pass by refusing all. */
    assert_true(accepted >= 10 && refused >= 30);
    mvt_corpus_free(items, n);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_outcomes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
