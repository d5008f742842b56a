/*
 * test_eval.c -- unit tests of the offline evaluation: every metric on tiny
 * cases computed by hand (the arithmetic is in the comments), top-K
 * selection (ties by item index, NaN last, train items excluded, checked
 * against a full sort too), users without test items skipped, test items
 * that are also train items ignored, batching of the score callback, the
 * popularity and random baselines, and the table and JSON reports.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "data/dataset.h"
#include "data/eval.h"
#include "synth.h"

#define EPS  1e-12

/* A score callback reading a users x items table, and what it was asked. */
typedef struct table_model {
    uint32_t      n_items;
    const float  *table;        /* n_users x n_items */
    uint32_t      asked[1024];  /* users, in the order asked */
    size_t        n_asked;
    size_t        max_batch;
} table_model_t;


static void
table_scorer(void *ctx, const uint32_t *users, size_t n, float *scores)
{
    table_model_t  *m = ctx;

    if (n > m->max_batch) {
        m->max_batch = n;
    }
    for (size_t b = 0; b < n; b++) {
        memcpy(scores + b * m->n_items,
               m->table + (size_t) users[b] * m->n_items,
               m->n_items * sizeof(float));
        if (m->n_asked < sizeof(m->asked) / sizeof(m->asked[0])) {
            m->asked[m->n_asked++] = users[b];
        }
    }
}


/*
 * Builds train and test from {user, item} rows as a paired load does: the
 * train ids first, then ids only in test, one id map for both.
 */
static void
make_pair(mvw_dataset_t *train, mvw_dataset_t *test,
    const char *const (*tr)[2], size_t ntr, const char *const (*te)[2],
    size_t nte)
{
    mv_err_t  err;

    mvw_dataset_init(train);
    mvw_dataset_init(test);
    for (size_t i = 0; i < ntr; i++) {
        assert_int_equal(mvw_dataset_add(train, tr[i][0], tr[i][1], 1.0f, 0,
                                         &err), MV_OK);
    }
    assert_int_equal(mvw_idmap_copy(&test->users, &train->users, &err),
                     MV_OK);
    assert_int_equal(mvw_idmap_copy(&test->items, &train->items, &err),
                     MV_OK);
    for (size_t i = 0; i < nte; i++) {
        assert_int_equal(mvw_dataset_add(test, te[i][0], te[i][1], 1.0f, 0,
                                         &err), MV_OK);
    }
    assert_int_equal(mvw_idmap_copy(&train->users, &test->users, &err),
                     MV_OK);
    assert_int_equal(mvw_idmap_copy(&train->items, &test->items, &err),
                     MV_OK);
}


static void
expect_close(double got, double want, const char *what)
{
    if (!(fabs(got - want) <= EPS)) {
        fail_msg("%s: got %.17g, want %.17g", what, got, want);
    }
}


static void
expect_result(const mvw_eval_result_t *r, uint32_t users, double p,
    double rec, double ndcg, double map, double hr, double cov, double div,
    double nov)
{
    assert_int_equal(r->users, users);
    expect_close(r->precision, p, "precision");
    expect_close(r->recall, rec, "recall");
    expect_close(r->ndcg, ndcg, "ndcg");
    expect_close(r->map, map, "map");
    expect_close(r->hit_rate, hr, "hit_rate");
    expect_close(r->coverage, cov, "coverage");
    expect_close(r->diversity, div, "diversity");
    expect_close(r->novelty, nov, "novelty");
}


/*
 * The small world of most tests.  Users u0..u3, items i0..i5 (indices in
 * that order; i5 only in test).
 *
 *   train  u0: i0 i1    u1: i0 i2    u2: i0 i1 i3    u3: i4
 *   test   u0: i2 i3    u1: i1       u2: -           u3: i5
 *
 * Train users per item: U_i0 = {u0 u1 u2}, U_i1 = {u0 u2}, U_i2 = {u1},
 * U_i3 = {u2}, U_i4 = {u3}, U_i5 = {}; n_users = 4, n_items = 6.
 */
static const char *const small_train[][2] = {
    { "u0", "i0" }, { "u0", "i1" }, { "u1", "i0" }, { "u1", "i2" },
    { "u2", "i0" }, { "u2", "i1" }, { "u2", "i3" }, { "u3", "i4" },
};

static const char *const small_test[][2] = {
    { "u0", "i2" }, { "u0", "i3" }, { "u1", "i1" }, { "u3", "i5" },
};


static void
make_small(mvw_dataset_t *train, mvw_dataset_t *test)
{
    make_pair(train, test, small_train, 8, small_test, 4);
    assert_int_equal(train->users.n, 4);
    assert_int_equal(train->items.n, 6);
    assert_string_equal(mvw_idmap_get(&train->items, 5), "i5");
}


static void
test_hand_metrics(void **state)
{
    mvw_dataset_t      tr, te;
    mvw_eval_result_t  r;
    mv_err_t           err;
    table_model_t      m;
    static const float table[4 * 6] = {
        /* i0   i1    i2   i3   i4    i5 */
           9,   8,    1,   5,   5,    7,        /* u0 */
           0,   NAN,  3,   NAN, 1,    NAN,      /* u1 */
           1,   2,    3,   4,   5,    6,        /* u2 */
           1,   1,    1,   1,   1,    1,        /* u3 */
    };

    (void) state;
    make_small(&tr, &te);
    memset(&m, 0, sizeof(m));
    m.n_items = 6;
    m.table = table;

    assert_int_equal(mvw_eval(&tr, &te, 2, table_scorer, &m, &r, &err),
                     MV_OK);
    assert_int_equal(r.k, 2);

    /* u2 has no test item: never scored. */
    assert_int_equal(m.n_asked, 3);
    assert_int_equal(m.asked[0], 0);
    assert_int_equal(m.asked[1], 1);
    assert_int_equal(m.asked[2], 3);

    /*
     * K = 2, L = 1 / log2(3) = 0.63092975357145743.
     *
     * u0: candidates i2:1 i3:5 i4:5 i5:7 (i0, i1 are train) -> [i5, i3]
     *     (i3 before i4: equal scores, lower index).  test {i2 i3}: rel
     *     [0 1], hits 1.  P 1/2, R 1/2, DCG L, IDCG 1 + L,
     *     NDCG L / (1 + L) = 0.38685280723454163, MAP (1/2)(P@2 = 1/2) =
     *     0.25, HR 1.
     * u1: candidates i1:NaN i3:NaN i4:1 i5:NaN (i2:3 is train) -> [i4, i1]
     *     (NaNs last, by index).  test {i1}: rel [0 1].  P 1/2, R 1,
     *     DCG L, IDCG 1 (min(2, 1) = 1), NDCG L, MAP (1/1)(1/2) = 0.5, HR 1.
     * u3: all equal, i4 is train -> [i0, i1].  test {i5}: no hit, all 0.
     *
     * P    (1/2 + 1/2 + 0) / 3 = 1/3
     * R    (1/2 + 1 + 0) / 3 = 0.5
     * NDCG (0.38685280723454163 + 0.63092975357145743) / 3
     *      = 0.33926085360199969
     * MAP  (0.25 + 0.5) / 3 = 0.25
     * HR   2/3
     * coverage {i5 i3 i4 i1 i0} = 5/6
     * diversity: u0 (i5, i3): U_i5 empty, cos 0 -> 1; u1 (i4, i1): no
     *     common user -> 1; u3 (i0, i1): |{u0 u2}| / sqrt(3 * 2) =
     *     0.81649658092772603 -> 0.18350341907227397;
     *     mean (1 + 1 + 0.18350341907227397) / 3 = 0.72783447302409132
     * novelty, -log2(p) with p = users / 4: i0 -log2(3/4) =
     *     0.41503749927884381, i1 1, i3 2, i4 2, i5 (p = 0 -> 1/4) 2;
     *     u0 (2 + 2)/2 = 2, u1 (2 + 1)/2 = 1.5, u3 (0.415... + 1)/2 =
     *     0.70751874963942190; mean 4.2075187496394219 / 3 =
     *     1.4025062498798073
     */
    expect_result(&r, 3, 1.0 / 3.0, 0.5, 0.33926085360199969, 0.25,
                  2.0 / 3.0, 5.0 / 6.0, 0.72783447302409132,
                  1.4025062498798073);

    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
}


/*
 * One evaluated user, u0, whose train item is i4; "x" only fixes the item
 * order and has no test item.  Items by index: 0 i4, 1 i0, 2 i2, 3 i1,
 * 4 i3; train users: U_i4 = {u0}, every other U = {x}; n_users = 2.  So
 * every pair of i0..i3 has cos 1 (diversity 0) and each has p = 1/2
 * (novelty -log2(1/2) = 1).
 */
static const char *const deep_train[][2] = {
    { "u0", "i4" }, { "x", "i0" }, { "x", "i2" }, { "x", "i1" },
    { "x", "i3" },
};


static void
eval_deep(const char *const (*te_rows)[2], size_t nte, const float *row,
    uint32_t k, mvw_eval_result_t *r)
{
    mvw_dataset_t  tr, te;
    mv_err_t       err;
    table_model_t  m;
    float          table[2 * 5];

    make_pair(&tr, &te, deep_train, 5, te_rows, nte);
    assert_int_equal(tr.items.n, 5);
    memcpy(table, row, 5 * sizeof(float));
    memcpy(table + 5, row, 5 * sizeof(float));
    memset(&m, 0, sizeof(m));
    m.n_items = 5;
    m.table = table;
    assert_int_equal(mvw_eval(&tr, &te, k, table_scorer, &m, r, &err),
                     MV_OK);
    assert_int_equal(m.n_asked, 1);
    assert_int_equal(m.asked[0], 0);
    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
}


static void
test_map_several_hits(void **state)
{
    static const char *const te_a[][2] = { { "u0", "i0" }, { "u0", "i2" } };
    static const char *const te_b[][2] = { { "u0", "i2" }, { "u0", "i1" } };
    static const char *const te_c[][2] = {
        { "u0", "i0" }, { "u0", "i2" }, { "u0", "i1" }, { "u0", "i3" },
    };
    static const float  desc[5] = { 5, 4, 3, 2, 1 };
    static const float  mixed[5] = { 5, 1, 4, 0, 3 };
    mvw_eval_result_t   r;

    (void) state;
    /*
     * Scores 5 4 3 2 1, K = 3, index 0 excluded: [1 2 3] = [i0 i2 i1];
     * test {i0 i2}: rel [1 1 0].  P 2/3, R 2/2 = 1, DCG 1 + 1/log2(3) =
     * IDCG (min(3, 2) = 2 ideal hits) -> NDCG 1, MAP (1/2)(1/1 + 2/2) = 1,
     * HR 1, coverage 3/5 = 0.6.
     */
    eval_deep(te_a, 2, desc, 3, &r);
    expect_result(&r, 1, 2.0 / 3.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.0, 1.0);

    /*
     * Scores 5 1 4 0 3, K = 4: [2 (4), 4 (3), 1 (1), 3 (0)] =
     * [i2 i3 i0 i1]; test {i2 i1}: rel [1 0 0 1].  P 2/4 = 0.5, R 1,
     * DCG 1 + 1/log2(5) = 1.4306765580733931, IDCG 1 + 1/log2(3) =
     * 1.6309297535714575, NDCG 0.8772153153380493, MAP (1/2)(1/1 + 2/4) =
     * 0.75, HR 1, coverage 4/5.
     */
    eval_deep(te_b, 2, mixed, 4, &r);
    expect_result(&r, 1, 0.5, 1.0, 0.8772153153380493, 0.75, 1.0, 0.8, 0.0,
                  1.0);

    /*
     * Same scores, K = 3, test {i0 i2 i1 i3}: [i2 i3 i0] all hits.
     * P 1, R 3/4, NDCG 1 (IDCG over min(3, 4) = 3), MAP (1/3)(1 + 1 + 1)
     * = 1, HR 1, coverage 3/5.
     */
    eval_deep(te_c, 4, mixed, 3, &r);
    expect_result(&r, 1, 1.0, 0.75, 1.0, 1.0, 1.0, 0.6, 0.0, 1.0);

    /*
     * K = 10 with only 4 candidates: [i0 i2 i1 i3] for test {i0 i2},
     * rel [1 1 0 0].  P still divides by K: 2/10 = 0.2; R 1; NDCG 1 (IDCG
     * over min(10, 2) = 2); MAP (1/2)(1/1 + 2/2) = 1; HR 1; coverage 4/5.
     */
    eval_deep(te_a, 2, desc, 10, &r);
    expect_result(&r, 1, 0.2, 1.0, 1.0, 1.0, 1.0, 0.8, 0.0, 1.0);
}


static void
test_top_k(void **state)
{
    uint32_t             out[16];
    static const float   s[7] = { NAN, 1, 1, INFINITY, -INFINITY, NAN, 0 };
    static const uint32_t ex[] = { 3, 9 };
    static const float   z[3] = { 0.0f, -0.0f, 0.0f };

    (void) state;
    /* inf is excluded; 1 1 by index, 0, -inf, then the NaNs by index. */
    assert_int_equal(mvw_eval_top_k(s, 7, ex, 2, 16, out), 6);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 2);
    assert_int_equal(out[2], 6);
    assert_int_equal(out[3], 4);
    assert_int_equal(out[4], 0);
    assert_int_equal(out[5], 5);

    assert_int_equal(mvw_eval_top_k(s, 7, NULL, 0, 2, out), 2);
    assert_int_equal(out[0], 3);
    assert_int_equal(out[1], 1);
    assert_int_equal(mvw_eval_top_k(s, 7, ex, 2, 0, out), 0);

    /* -0 and 0 are equal scores. */
    assert_int_equal(mvw_eval_top_k(z, 3, NULL, 0, 3, out), 3);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[2], 2);
}


/* 1 when item a ranks before item b, written out independently. */
static int
ranked_first(const float *sc, uint32_t a, uint32_t b)
{
    if (isnan(sc[a]) != isnan(sc[b])) {
        return !isnan(sc[a]);
    }
    if (!isnan(sc[a]) && sc[a] != sc[b]) {
        return sc[a] > sc[b];
    }
    return a < b;
}


/* Insertion sort of items by rank: the full sort to compare with. */
static void
sort_by_rank(const float *sc, uint32_t *items, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        uint32_t  v = items[i], j = i;

        while (j > 0 && ranked_first(sc, v, items[j - 1])) {
            items[j] = items[j - 1];
            j--;
        }
        items[j] = v;
    }
}


/* mvw_eval_top_k against a full sort, with many ties and NaNs. */
static void
test_top_k_brute(void **state)
{
    enum { N = 300 };
    float      sc[N];
    uint32_t   all[N], ex[N], got[N], n_ex;
    mv_rng_t   rng;

    (void) state;
    mv_rng_seed(&rng, 7);
    for (int round = 0; round < 200; round++) {
        uint32_t  n = 1 + (uint32_t) (mv_rng_next(&rng) % N), m = 0;
        uint32_t  k = (uint32_t) (mv_rng_next(&rng) % (n + 3));

        n_ex = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t  v = mv_rng_next(&rng) % 12;

            sc[i] = v == 0 ? NAN : v == 1 ? -INFINITY : (float) (v % 5);
            if (mv_rng_next(&rng) % 4 == 0) {
                ex[n_ex++] = i;
            } else {
                all[m++] = i;
            }
        }
        sort_by_rank(sc, all, m);
        assert_int_equal(mvw_eval_top_k(sc, n, ex, n_ex, k, got),
                         k < m ? k : m);
        assert_memory_equal(got, all, (k < m ? k : m) * sizeof(uint32_t));
    }
}


static void
test_exclusions_and_skips(void **state)
{
    static const char *const tr_rows[][2] = {
        { "a", "i0" }, { "a", "i1" }, { "b", "i2" },
    };
    static const char *const te_rows[][2] = {
        { "a", "i1" }, { "b", "i0" },
    };
    static const float  table[2 * 3] = { 100, 100, 1, 5, 5, 100 };
    mvw_dataset_t       tr, te;
    mvw_eval_result_t   r;
    mv_err_t            err;
    table_model_t       m;

    (void) state;
    /*
     * a's only test item i1 is also a train item: not counted, so a is
     * skipped.  b: i2 (score 100) is train and never recommended; K = 1
     * gives [i0] (5 = 5, lower index), a hit: everything 1, coverage 1/3,
     * no pair -> diversity 0 (no user with two items), novelty -log2(1/2)
     * = 1 (i0 has train user a of 2).
     */
    make_pair(&tr, &te, tr_rows, 3, te_rows, 2);
    memset(&m, 0, sizeof(m));
    m.n_items = 3;
    m.table = table;
    assert_int_equal(mvw_eval(&tr, &te, 1, table_scorer, &m, &r, &err),
                     MV_OK);
    assert_int_equal(m.n_asked, 1);
    assert_int_equal(m.asked[0], 1);
    expect_result(&r, 1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0 / 3.0, 0.0, 1.0);

    /* A test set with nobody to evaluate: zeros, not an error. */
    mvw_dataset_free(&te);
    assert_int_equal(mvw_idmap_copy(&te.users, &tr.users, &err), MV_OK);
    assert_int_equal(mvw_idmap_copy(&te.items, &tr.items, &err), MV_OK);
    assert_int_equal(mvw_dataset_add(&te, "a", "i0", 1.0f, 0, &err), MV_OK);
    assert_int_equal(mvw_eval(&tr, &te, 10, table_scorer, &m, &r, &err),
                     MV_OK);
    expect_result(&r, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
}


static void
test_errors(void **state)
{
    mvw_dataset_t      tr, te, other;
    mvw_eval_result_t  r;
    mv_err_t           err;
    table_model_t      m;

    (void) state;
    make_small(&tr, &te);
    memset(&m, 0, sizeof(m));
    assert_int_equal(mvw_eval(&tr, &te, 0, table_scorer, &m, &r, &err),
                     MV_ERR);
    assert_string_equal(err.msg, "k must be at least 1");

    mvw_dataset_init(&other);
    assert_int_equal(mvw_dataset_add(&other, "u0", "i0", 1.0f, 0, &err),
                     MV_OK);
    assert_int_equal(mvw_eval(&tr, &other, 10, table_scorer, &m, &r, &err),
                     MV_ERR);
    assert_string_equal(err.msg,
                        "train and test do not share their id maps");
    assert_int_equal(mvw_eval(&tr, &te, 10, NULL, &m, &r, &err), MV_ERR);
    assert_int_equal(m.n_asked, 0);

    mvw_dataset_free(&other);
    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
}


static void
test_popularity(void **state)
{
    mvw_dataset_t            tr, te;
    mvw_eval_result_t        r;
    mvw_popularity_scorer_t  pop;
    mv_err_t                 err;
    uint32_t                 users[2] = { 3, 0 };
    float                    s[2 * 6];

    (void) state;
    make_small(&tr, &te);
    assert_int_equal(mvw_eval_popularity_init(&pop, &tr, &err), MV_OK);

    /* Train counts i0..i5: 3 2 1 1 1 0, for every user alike. */
    mvw_eval_popularity_scorer(&pop, users, 2, s);
    for (int b = 0; b < 2; b++) {
        assert_true(s[b * 6 + 0] == 3.0f && s[b * 6 + 1] == 2.0f
                    && s[b * 6 + 2] == 1.0f && s[b * 6 + 3] == 1.0f
                    && s[b * 6 + 4] == 1.0f && s[b * 6 + 5] == 0.0f);
    }

    /*
     * K = 2.
     * u0: i0 i1 train; i2 i3 i4 tie at 1 -> [i2, i3]; test {i2 i3}: 2 hits,
     *     P 1, R 1, NDCG 1, MAP (1/2)(1 + 1) = 1, HR 1.
     * u1: i0 i2 train -> [i1 (2), i3 (1)]; test {i1}: hit at rank 1, P 1/2,
     *     R 1, NDCG 1 (IDCG over 1), MAP 1, HR 1.
     * u3: i4 train -> [i0, i1]; test {i5}: all 0.
     * P (1 + 1/2) / 3 = 0.5; R 2/3; NDCG 2/3; MAP 2/3; HR 2/3;
     * coverage {i2 i3 i1 i0} = 4/6.
     * diversity: u0 (i2, i3) no common user -> 1; u1 (i1, i3): |{u2}| /
     *     sqrt(2 * 1) = 0.70710678118654752 -> 0.29289321881345248; u3
     *     (i0, i1) -> 0.18350341907227397 (as in test_hand_metrics); mean
     *     1.4763966378857265 / 3 = 0.49213221262857549.
     * novelty: u0 (2 + 2)/2 = 2, u1 (1 + 2)/2 = 1.5, u3 0.70751874963942190
     *     -> 1.4025062498798073.
     */
    assert_int_equal(mvw_eval(&tr, &te, 2, mvw_eval_popularity_scorer, &pop,
                              &r, &err), MV_OK);
    expect_result(&r, 3, 0.5, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0,
                  4.0 / 6.0, 0.49213221262857549, 1.4025062498798073);

    mvw_eval_popularity_free(&pop);
    assert_null(pop.counts);
    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
}


static void
test_random_scorer(void **state)
{
    mvw_dataset_t        tr, te;
    mvw_random_scorer_t  a, b;
    mvw_eval_result_t    r1, r2;
    mv_err_t             err;
    uint32_t             users[3] = { 0, 1, 2 };
    float                all[3 * 6], one[6];

    (void) state;
    make_small(&tr, &te);
    mvw_eval_random_init(&a, &tr, 11);
    mvw_eval_random_init(&b, &tr, 12);
    assert_int_equal(a.n_items, 6);

    /* A user's scores do not depend on the batch they are in. */
    mvw_eval_random_scorer(&a, users, 3, all);
    for (int u = 0; u < 3; u++) {
        mvw_eval_random_scorer(&a, &users[u], 1, one);
        assert_memory_equal(one, all + u * 6, sizeof(one));
        for (int i = 0; i < 6; i++) {
            assert_true(one[i] >= 0.0f && one[i] <= 1.0f);
        }
    }
    assert_true(memcmp(all, all + 6, sizeof(one)) != 0);
    mvw_eval_random_scorer(&b, users, 1, one);
    assert_true(memcmp(one, all, sizeof(one)) != 0);

    assert_int_equal(mvw_eval(&tr, &te, 2, mvw_eval_random_scorer, &a, &r1,
                              &err), MV_OK);
    assert_int_equal(mvw_eval(&tr, &te, 2, mvw_eval_random_scorer, &a, &r2,
                              &err), MV_OK);
    assert_memory_equal(&r1, &r2, sizeof(r1));

    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
}


/*
 * 600 users (more than two batches), 50 items; user u has train items
 * {u % 50, (u + 1) % 50} and test items (u + 2 + j) % 50 for j < u % 13.
 * An oracle that scores exactly the test items 1 gets, per user with t
 * test items and K = 5: hits min(5, t), P min(5, t)/5, R min(5, t)/t,
 * NDCG 1, MAP 1, HR 1.
 */
typedef struct oracle {
    const mvw_dataset_t  *test;
    uint32_t              n_items;
    size_t                max_batch;
    uint32_t              next_user;
    int                   in_order;
} oracle_t;


static void
oracle_scorer(void *ctx, const uint32_t *users, size_t n, float *scores)
{
    oracle_t  *o = ctx;

    if (n > o->max_batch) {
        o->max_batch = n;
    }
    for (size_t b = 0; b < n; b++) {
        float  *row = scores + b * o->n_items;

        if (users[b] < o->next_user) {
            o->in_order = 0;
        }
        o->next_user = users[b] + 1;
        for (uint32_t i = 0; i < o->n_items; i++) {
            row[i] = 0.0f;
        }
        for (size_t j = 0; j < o->test->n; j++) {
            if (o->test->x[j].user == users[b]) {
                row[o->test->x[j].item] = 1.0f;
            }
        }
    }
}


static void
test_batches_oracle(void **state)
{
    mvw_dataset_t      tr, te;
    mvw_eval_result_t  r;
    mv_err_t           err;
    oracle_t           o;
    char               u[16], it[16];
    double             p = 0, rec = 0;
    uint32_t           n_eval = 0;

    (void) state;
    mvw_dataset_init(&tr);
    mvw_dataset_init(&te);
    for (unsigned i = 0; i < 50; i++) {
        snprintf(u, sizeof(u), "u%u", i);
        snprintf(it, sizeof(it), "i%u", i);
        assert_int_equal(mvw_dataset_add(&tr, u, it, 1.0f, 0, &err), MV_OK);
    }
    for (unsigned i = 0; i < 600; i++) {
        snprintf(u, sizeof(u), "u%u", i);
        snprintf(it, sizeof(it), "i%u", (i + 1) % 50);
        assert_int_equal(mvw_dataset_add(&tr, u, it, 1.0f, 0, &err), MV_OK);
    }
    assert_int_equal(mvw_idmap_copy(&te.users, &tr.users, &err), MV_OK);
    assert_int_equal(mvw_idmap_copy(&te.items, &tr.items, &err), MV_OK);
    for (unsigned i = 0; i < 600; i++) {
        unsigned  t = i % 13;

        snprintf(u, sizeof(u), "u%u", i);
        for (unsigned j = 0; j < t; j++) {
            snprintf(it, sizeof(it), "i%u", (i + 2 + j) % 50);
            assert_int_equal(mvw_dataset_add(&te, u, it, 1.0f, 0, &err),
                             MV_OK);
        }
        if (t > 0) {
            p += (t < 5 ? t : 5) / 5.0;
            rec += (t < 5 ? t : 5) / (double) t;
            n_eval++;
        }
    }

    memset(&o, 0, sizeof(o));
    o.test = &te;
    o.n_items = tr.items.n;
    o.in_order = 1;
    assert_int_equal(mvw_eval(&tr, &te, 5, oracle_scorer, &o, &r, &err),
                     MV_OK);
    assert_int_equal(o.max_batch, MVW_EVAL_BATCH);
    assert_true(o.in_order);
    assert_int_equal(r.users, n_eval);
    expect_close(r.precision, p / n_eval, "precision");
    expect_close(r.recall, rec / n_eval, "recall");
    expect_close(r.ndcg, 1.0, "ndcg");
    expect_close(r.map, 1.0, "map");
    expect_close(r.hit_rate, 1.0, "hit_rate");

    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
}


/* Runs a printer into a string (malloc'd). */
static char *
print_to_string(int json, const char *const *names,
    const mvw_eval_result_t *res, size_t n, uint32_t k)
{
    char    *buf = NULL;
    size_t   len = 0;
    FILE    *f = open_memstream(&buf, &len);

    assert_non_null(f);
    if (json) {
        assert_int_equal(mvw_eval_print_json(f, names, res, n, k), MV_OK);
    } else {
        assert_int_equal(mvw_eval_print_table(f, names, res, n, k), MV_OK);
    }
    fclose(f);

    return buf;
}


static void
test_reports(void **state)
{
    static const char *const names[] = { "popularity", "we\"ird\\\n" };
    mvw_eval_result_t  res[2] = {
        { 10, 943, 0.191, 0.117, 0.218, 0.1, 0.78, 0.03, 0.55, 1.4 },
        { 10, 943, 0.5, 0.25, 0.125, 0.0625, 1, 1, 0, NAN },
    };
    char  *s;

    (void) state;
    s = print_to_string(1, names, res, 2, 10);
    assert_string_equal(s,
        "{\"k\":10,\"users\":943,\"models\":{"
        "\"popularity\":{\"precision\":0.191000,\"recall\":0.117000,"
        "\"ndcg\":0.218000,\"map\":0.100000,\"hit_rate\":0.780000,"
        "\"coverage\":0.030000,\"diversity\":0.550000,"
        "\"novelty\":1.400000},"
        "\"we\\\"ird\\\\\\u000a\":{\"precision\":0.500000,"
        "\"recall\":0.250000,\"ndcg\":0.125000,\"map\":0.062500,"
        "\"hit_rate\":1.000000,\"coverage\":1.000000,"
        "\"diversity\":0.000000,\"novelty\":null}}}\n");
    free(s);

    s = print_to_string(1, names, res, 0, 5);
    assert_string_equal(s, "{\"k\":5,\"users\":0,\"models\":{}}\n");
    free(s);

    s = print_to_string(0, names, res, 1, 10);
    assert_string_equal(s,
        "model        users      P@10      R@10   NDCG@10    MAP@10     "
        "HR@10  coverage diversity   novelty\n"
        "popularity     943    0.1910    0.1170    0.2180    0.1000    "
        "0.7800    0.0300    0.5500     1.400\n");
    free(s);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_hand_metrics),
        cmocka_unit_test(test_map_several_hits),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_k_brute),
        cmocka_unit_test(test_exclusions_and_skips),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_popularity),
        cmocka_unit_test(test_random_scorer),
        cmocka_unit_test(test_batches_oracle),
        cmocka_unit_test(test_reports),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
