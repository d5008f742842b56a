/*
 * test_idmap.c -- unit tests of the growable id map (data/idmap.h) that the
 * datasets, the catalogue and the trainer share: indices in order of first
 * appearance through many rehashes, lookups of present and absent ids,
 * invalid ids refused with the map unchanged, the two-phase reserve and
 * append, copies and equality, the pointer array for snapshot inputs, and
 * the random per-map seed that decides only where ids sit in the hash
 * table, never their indices.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "data/idmap.h"

#define N_IDS  5000


static void
fill(mvw_idmap_t *m, unsigned n)
{
    mv_err_t  err;
    char      id[32];
    uint32_t  idx;
    int       added;

    for (unsigned i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "id-%u", i);
        assert_int_equal(mvw_idmap_intern(m, id, strlen(id), &idx, &added,
                                          &err), MV_OK);
        assert_int_equal(idx, i);
        assert_int_equal(added, 1);
    }
}


/* Growth of a map (many rehashes), lookups, copies. */
static void
test_growth_lookup_copy(void **state)
{
    mvw_idmap_t  m, c;
    mv_err_t     err;
    char         id[32];
    uint32_t     idx;
    int          added;

    (void) state;
    mvw_idmap_init(&m);
    mvw_idmap_init(&c);
    assert_int_equal(mvw_idmap_find(&m, "id-0", 4), -1);
    fill(&m, N_IDS);
    assert_int_equal(mvw_idmap_intern(&m, "id-77", 5, &idx, &added, &err),
                     MV_OK);
    assert_int_equal(idx, 77);
    assert_int_equal(added, 0);
    assert_int_equal(m.n, N_IDS);

    assert_int_equal(mvw_idmap_copy(&c, &m, &err), MV_OK);
    assert_true(mvw_idmap_equal(&c, &m));
    for (unsigned i = 0; i < N_IDS; i += 37) {
        snprintf(id, sizeof(id), "id-%u", i);
        assert_int_equal(mvw_idmap_find(&c, id, strlen(id)), i);
        assert_string_equal(mvw_idmap_get(&c, i), id);
    }
    assert_int_equal(mvw_idmap_find(&c, "id-5000", 7), -1);
    assert_int_equal(mvw_idmap_find(&c, "id-1", 3), -1);    /* a prefix */
    assert_int_equal(mvw_idmap_intern(&c, "extra", 5, &idx, NULL, &err),
                     MV_OK);
    assert_int_equal(idx, N_IDS);
    assert_false(mvw_idmap_equal(&c, &m));

    /* a copy of an empty map is empty */
    mvw_idmap_free(&m);
    assert_int_equal(mvw_idmap_copy(&c, &m, &err), MV_OK);
    assert_int_equal(c.n, 0);
    assert_true(mvw_idmap_equal(&c, &m));
    mvw_idmap_free(&m);
    mvw_idmap_free(&c);
}


static void
test_invalid_ids(void **state)
{
    static const char  *bad[] = {
        "", "a b", "a\"b", "caf\xc3\xa9",
        "12345678901234567890123456789012345678901234567890123456789012345"
    };
    mvw_idmap_t  m;
    mv_err_t     err;
    uint32_t     idx;

    (void) state;
    mvw_idmap_init(&m);
    fill(&m, 3);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mvw_idmap_intern(&m, bad[i], strlen(bad[i]), &idx,
                                          NULL, &err), MV_ERR);
        assert_string_equal(err.msg, "invalid id (want " MVW_ID_RULE ")");
        assert_int_equal(m.n, 3);
        assert_int_equal(mvw_idmap_find(&m, bad[i], strlen(bad[i])), -1);
    }
    /* 64 bytes is the longest id */
    assert_int_equal(mvw_idmap_intern(&m, bad[4], 64, &idx, NULL, &err),
                     MV_OK);
    assert_int_equal(idx, 3);
    mvw_idmap_free(&m);
}


/* reserve + append, the all-or-nothing path of the catalogue and the
   datasets: append gives index n and the id is found afterwards. */
static void
test_reserve_append(void **state)
{
    mvw_idmap_t  m;
    char         id[32];

    (void) state;
    mvw_idmap_init(&m);
    for (unsigned i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "r%u", i);
        assert_int_equal(mvw_idmap_reserve(&m, strlen(id)), MV_OK);
        assert_int_equal(m.n, i);                   /* nothing added yet */
        assert_int_equal(mvw_idmap_find(&m, id, strlen(id)), -1);
        assert_int_equal(mvw_idmap_append(&m, id, strlen(id)), i);
        assert_int_equal(mvw_idmap_find(&m, id, strlen(id)), i);
    }
    /* a reserve that is not used changes nothing observable */
    assert_int_equal(mvw_idmap_reserve(&m, 64), MV_OK);
    assert_int_equal(m.n, 1000);
    assert_string_equal(mvw_idmap_get(&m, 999), "r999");
    mvw_idmap_free(&m);
}


static void
test_pointers(void **state)
{
    mvw_idmap_t   m;
    const char  **ids;

    (void) state;
    mvw_idmap_init(&m);
    ids = mvw_idmap_pointers(&m);               /* empty: still an array */
    assert_non_null(ids);
    free(ids);

    fill(&m, 300);
    ids = mvw_idmap_pointers(&m);
    assert_non_null(ids);
    for (uint32_t i = 0; i < m.n; i++) {
        assert_ptr_equal(ids[i], mvw_idmap_get(&m, i));
    }
    free(ids);
    mvw_idmap_free(&m);
}


/*
 * Each map draws its own seed (clients choose ids, so a fixed seed would let
 * them craft collisions), and the seed never shows: the same ids in the same
 * order give the same indices and equal maps whatever the seeds.
 */
static void
test_seeds(void **state)
{
    mvw_idmap_t  a, b;
    int          differ = 0;

    (void) state;
    for (int round = 0; round < 4 && !differ; round++) {
        mvw_idmap_init(&a);
        mvw_idmap_init(&b);
        differ = a.seed != b.seed;
        mvw_idmap_free(&a);
        mvw_idmap_free(&b);
    }
    assert_true(differ);

    mvw_idmap_init(&a);
    mvw_idmap_init(&b);
    fill(&a, 2000);
    fill(&b, 2000);
    assert_true(mvw_idmap_equal(&a, &b));
    mvw_idmap_free(&a);
    assert_int_equal(a.n, 0);                   /* free leaves it usable */
    fill(&a, 10);
    mvw_idmap_free(&a);
    mvw_idmap_free(&b);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth_lookup_copy),
        cmocka_unit_test(test_invalid_ids),
        cmocka_unit_test(test_reserve_append),
        cmocka_unit_test(test_pointers),
        cmocka_unit_test(test_seeds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
