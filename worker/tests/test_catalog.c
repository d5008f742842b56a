/*
 * test_catalog.c -- unit tests of the worker's catalogue: file loading (line
 * numbers, blank lines, duplicates across lines, dim agreement between the
 * item and user files, the line limit), the item corpus of every entry path
 * (shared/tests/corpus/items.txt) through the catalogue loader, the
 * catalogue itself and the synthetic generator.  The line parsers are
 * shared/events.c's, tested in shared/tests/test_events.c.
 *
 * Files are written to mkstemp() names and removed.
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

#include "tests/corpus.h"
#include "data/catalog.h"
#include "events.h"
#include "data/synthetic.h"

#define ID64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


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
                      NULL, "2: field \"embedding\": expected 1 numbers, "
                      "got 2");
    expect_load_error("{\"item_id\": \"a\", \"embedding\": [1]}\n"
                      "not json\n", NULL,
                      "2: not valid JSON (at byte 0)");
    expect_load_error("{\"item_id\": \"a\", \"embedding\": [1]}\n",
                      "{\"user_id\": \"u\", \"embedding\": [1, 2]}\n",
                      "1: field \"embedding\": expected 1 numbers, got 2");
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


/*
 * Every corpus line, after one good item that fixes the dim at 4: loaded
 * or refused as the corpus says for stored data; then the file of all the
 * accepted lines, each item holding what the one parser read from its line.
 */
static void
test_corpus_lines(void **state)
{
    static mvt_corpus_item_t  items[MVT_CORPUS_LINES];
    static const char         anchor[] = "{\"item_id\":\"anchor\","
                                         "\"embedding\":[0,0,0,1]}\n";
    mvw_catalog_t             c;
    mv_item_event_t           it;
    mv_event_error_t          e;
    mv_err_t                  err;
    float                     emb[MVT_CORPUS_DIM];
    char                     *text, *path, *all;
    size_t                    all_len = 0;
    int                       n, i, rc, accepted = 0;
    int64_t                   at;

    (void) state;

    n = mvt_corpus_load(items);
    assert_true(n > 40);
    all = calloc(1, 1 << 16);
    assert_non_null(all);

    for (i = 0; i < n; i++) {
        text = malloc(sizeof(anchor) + strlen(items[i].body) + 2);
        assert_non_null(text);
        sprintf(text, "%s%s\n", anchor, items[i].body);
        path = temp_file(text);
        mvw_catalog_init(&c);
        rc = mvw_catalog_load_items(&c, path, &err);
        if ((rc == MV_OK) != (strcmp(items[i].expect_data, "ok") == 0)) {
            fail_msg("corpus line %d: the catalogue %s it (%s), want %s",
                     items[i].line, rc == MV_OK ? "loaded" : "refused",
                     rc == MV_OK ? "" : err.msg, items[i].expect_data);
        }
        if (rc != MV_OK) {
            /* the reason names the line and is the parser's own */
            assert_non_null(strstr(err.msg, ":2: "));
        } else {
            accepted++;
            memcpy(all + all_len, items[i].body, strlen(items[i].body));
            all_len += strlen(items[i].body);
            all[all_len++] = '\n';
        }
        mvw_catalog_free(&c);
        unlink(path);
        free(path);
        free(text);
    }
    assert_true(accepted >= 10);

    path = temp_file(all);
    mvw_catalog_init(&c);
    assert_int_equal(mvw_catalog_load_items(&c, path, &err), MV_OK);
    assert_int_equal(c.items.n, (uint32_t) accepted);
    for (i = 0; i < n; i++) {
        if (strcmp(items[i].expect_data, "ok") != 0) {
            continue;
        }
        assert_int_equal(mv_item_parse(items[i].body, strlen(items[i].body),
                                       MV_ORIGIN_DATA, 0, MVT_CORPUS_DIM, emb,
                                       MVT_CORPUS_DIM, &it, &e), MV_OK);
        at = mvw_catalog_find_item(&c, it.item_id);
        assert_true(at >= 0);
        assert_true(c.item_meta[at].popularity == it.popularity);
        assert_true(c.item_meta[at].created_at_ms == it.created_at_ms);
        assert_int_equal((c.item_meta[at].flags & MV_ITEM_DELETED) != 0,
                         it.deleted);
        if (it.category[0] == '\0') {
            assert_int_equal(c.item_meta[at].category, MV_CATEGORY_NONE);
        } else {
            assert_string_equal(mvw_idmap_get(&c.categories,
                                              c.item_meta[at].category),
                                it.category);
        }
        assert_memory_equal(c.item_vectors + (size_t) at * MVT_CORPUS_DIM,
                            emb, sizeof(emb));
    }
    mvw_catalog_free(&c);
    unlink(path);
    free(path);
    free(all);
    mvt_corpus_free(items, n);
}


static void
test_line_limit(void **state)
{
    mvw_catalog_t  c;
    mv_err_t       err;
    FILE          *f;
    char           path[] = "/tmp/test_catalog_XXXXXX";
    int            fd;

    (void) state;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("{\"item_id\":\"a\",\"embedding\":[1],\"pad\":\"", f);
    for (unsigned k = 0; k < MVW_LINE_MAX / 64 + 1; k++) {
        fputs("0123456789012345678901234567890123456789012345678901234567890123",
              f);
    }
    fputs("\"}\n", f);
    fclose(f);

    mvw_catalog_init(&c);
    assert_int_equal(mvw_catalog_load_items(&c, path, &err), MV_ERR);
    assert_non_null(strstr(err.msg, ":1: line longer than"));
    mvw_catalog_free(&c);
    unlink(path);
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
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_corpus_lines),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_catalog_add),
        cmocka_unit_test(test_synthetic),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
