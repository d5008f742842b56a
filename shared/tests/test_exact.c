/*
 * test_exact.c -- exact top-K: equal to a naive double-precision sort for
 * every metric (several block boundaries crossed), the n < k fill, ties
 * broken by the smaller id, k == 0 rejected, NULL dist accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exact.h"
#include "synth.h"

typedef struct ref_hit {
    double   dist;
    uint32_t id;
} ref_hit_t;


static int
ref_hit_cmp(const void *a, const void *b)
{
    const ref_hit_t *x = a, *y = b;

    if (x->dist != y->dist) {
        return x->dist < y->dist ? -1 : 1;
    }

    return x->id < y->id ? -1 : x->id > y->id;
}


/* Distances of one query to all of base, in double, sorted. */
static ref_hit_t *
naive_sorted(const float *base, size_t n, size_t dim, mv_metric_t metric,
    const float *query)
{
    ref_hit_t *hits = malloc((n > 0 ? n : 1) * sizeof(ref_hit_t));
    double     acc, d;
    size_t     i, j;

    assert_non_null(hits);
    for (i = 0; i < n; i++) {
        acc = 0;
        for (j = 0; j < dim; j++) {
            if (metric == MV_METRIC_L2) {
                d = (double) query[j] - base[i * dim + j];
                acc += d * d;
            } else {
                acc += (double) query[j] * base[i * dim + j];
            }
        }
        hits[i].dist = metric == MV_METRIC_L2 ? acc
                       : metric == MV_METRIC_IP ? -acc : 1.0 - acc;
        hits[i].id = (uint32_t) i;
    }
    qsort(hits, n, sizeof(ref_hit_t), ref_hit_cmp);

    return hits;
}


/* Compares mv_exact_topk with the naive sort on clustered data. */
static void
check_against_naive(size_t n, size_t dim, size_t nq, size_t k,
    mv_metric_t metric, uint64_t seed)
{
    float     *base = malloc(n * dim * sizeof(float));
    float     *queries = malloc(nq * dim * sizeof(float));
    uint32_t  *ids = malloc(nq * k * sizeof(uint32_t));
    float     *dist = malloc(nq * k * sizeof(float));
    ref_hit_t *ref;
    double     tolerance;
    size_t     q, r, i, j;
    mv_err_t   err;

    assert_true(base && queries && ids && dist);
    mv_synth_clustered(base, n, dim, 20, 0.3f, seed, NULL);
    mv_synth_clustered(queries, nq, dim, 20, 0.3f, seed + 1, NULL);
    if (metric == MV_METRIC_IP) {
        /* norms from 0.5 to 3 times the drawn ones: they must count */
        for (i = 0; i < n; i++) {
            for (j = 0; j < dim; j++) {
                base[i * dim + j] *= 0.5f + (float) (i % 6) * 0.5f;
            }
        }
    }
    if (metric == MV_METRIC_COSINE) {
        for (i = 0; i < n; i++) {
            mv_normalize(base + i * dim, dim);
        }
        for (i = 0; i < nq; i++) {
            mv_normalize(queries + i * dim, dim);
        }
    }

    assert_int_equal(mv_exact_topk(base, n, dim, metric, queries, nq, k,
                                   ids, dist, &err), MV_OK);

    tolerance = metric == MV_METRIC_L2 ? 1e-3 * dim
                : metric == MV_METRIC_IP ? 1e-4 * dim : 1e-5;
    for (q = 0; q < nq; q++) {
        ref = naive_sorted(base, n, dim, metric, queries + q * dim);
        for (r = 0; r < k && r < n; r++) {
            assert_true(fabs(dist[q * k + r] - ref[r].dist) <= tolerance);
            /* Ids must agree unless the reference itself is a near-tie. */
            if ((r == 0 || ref[r].dist - ref[r - 1].dist > tolerance)
                && (r + 1 >= n || ref[r + 1].dist - ref[r].dist > tolerance))
            {
                assert_int_equal(ids[q * k + r], ref[r].id);
            }
            if (r > 0) {
                assert_true(dist[q * k + r - 1] <= dist[q * k + r]);
            }
        }
        free(ref);
    }

    free(base);
    free(queries);
    free(ids);
    free(dist);
}


static void
test_l2_matches_naive(void **state)
{
    (void) state;

    check_against_naive(1000, 16, 10, 10, MV_METRIC_L2, 1);
    /* Crosses a base block (4096) and a query block (256) boundary. */
    check_against_naive(5000, 33, 300, 7, MV_METRIC_L2, 2);
    check_against_naive(50, 5, 3, 50, MV_METRIC_L2, 3);
}


static void
test_cosine_matches_naive(void **state)
{
    (void) state;

    check_against_naive(1000, 64, 10, 10, MV_METRIC_COSINE, 4);
    check_against_naive(4500, 17, 260, 5, MV_METRIC_COSINE, 5);
}


static void
test_ip_matches_naive(void **state)
{
    (void) state;

    check_against_naive(1000, 16, 10, 10, MV_METRIC_IP, 6);
    /* Crosses a base block (4096) and a query block (256) boundary. */
    check_against_naive(4500, 17, 260, 5, MV_METRIC_IP, 7);
}


/* The inner product ranks by q.x as given: a longer vector wins. */
static void
test_ip_by_dot_product(void **state)
{
    float    base[4 * 2] = { 1, 0,  2, 1,  -1, 0,  0, 3 };
    float    query[2] = { 1, 0 };
    uint32_t ids[4];
    float    dist[4];

    (void) state;

    assert_int_equal(mv_exact_topk(base, 4, 2, MV_METRIC_IP, query, 1, 4,
                                   ids, dist, NULL), MV_OK);
    /* q.x: 1, 2, -1, 0 */
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[2], 3);
    assert_int_equal(ids[3], 2);
    assert_true(dist[0] == -2.0f && dist[1] == -1.0f && dist[2] == 0.0f
                && dist[3] == 1.0f);
    assert_int_equal(mv_exact_topk(base, 4, 2, (mv_metric_t) 4, query, 1, 4,
                                   ids, dist, NULL), MV_ERR);
}


static void
test_fill_when_n_below_k(void **state)
{
    float    base[3 * 2] = { 0, 0, 1, 0, 3, 0 };
    float    query[2] = { 0.9f, 0.0f };
    uint32_t ids[5];
    float    dist[5];
    size_t   r;

    (void) state;

    assert_int_equal(mv_exact_topk(base, 3, 2, MV_METRIC_L2, query, 1, 5,
                                   ids, dist, NULL), MV_OK);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[2], 2);
    for (r = 3; r < 5; r++) {
        assert_int_equal(ids[r], UINT32_MAX);
        assert_true(isinf(dist[r]) && dist[r] > 0);
    }

    /* n == 0: everything is fill. */
    assert_int_equal(mv_exact_topk(base, 0, 2, MV_METRIC_L2, query, 1, 5,
                                   ids, NULL, NULL), MV_OK);
    for (r = 0; r < 5; r++) {
        assert_int_equal(ids[r], UINT32_MAX);
    }
}


static void
test_ties_by_smaller_id(void **state)
{
    /* Small integers: every product and sum is exact, so ties are exact. */
    float    base[6 * 2] = { 2, 0,  1, 1,  0, 2,  1, 1,  2, 0,  0, 0 };
    float    query[2 * 2] = { 1, 1,  0, 0 };
    uint32_t ids[2 * 6];
    float    dist[2 * 6];
    uint32_t want_l2_q0[6] = { 1, 3, 0, 2, 4, 5 };
    uint32_t want_l2_q1[6] = { 5, 1, 3, 0, 2, 4 };
    size_t   r;

    (void) state;

    assert_int_equal(mv_exact_topk(base, 6, 2, MV_METRIC_L2, query, 2, 6,
                                   ids, dist, NULL), MV_OK);
    for (r = 0; r < 6; r++) {
        assert_int_equal(ids[r], want_l2_q0[r]);
        assert_int_equal(ids[6 + r], want_l2_q1[r]);
    }
    assert_true(dist[0] == 0.0f && dist[1] == 0.0f && dist[2] == 2.0f);

    /* Three slots: the tied group {0, 2, 4, 5} at 2 is cut by id. */
    assert_int_equal(mv_exact_topk(base, 6, 2, MV_METRIC_L2, query, 1, 3,
                                   ids, dist, NULL), MV_OK);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 0);

    /* Cosine (un-normalised, so only the order matters): ids 0..4 all have
     * q.x = 2 and tie; id 5 has 0 and comes last. */
    assert_int_equal(mv_exact_topk(base, 6, 2, MV_METRIC_COSINE, query, 1, 6,
                                   ids, dist, NULL), MV_OK);
    for (r = 0; r < 6; r++) {
        assert_int_equal(ids[r], r);
    }
    assert_true(dist[0] == -1.0f && dist[5] == 1.0f);
}


static void
test_k_zero_is_error(void **state)
{
    float    base[2] = { 1, 0 };
    uint32_t ids[1];
    mv_err_t err;

    (void) state;

    memset(&err, 0, sizeof(err));
    assert_int_equal(mv_exact_topk(base, 1, 2, MV_METRIC_L2, base, 1, 0,
                                   ids, NULL, &err), MV_ERR);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(mv_exact_topk(base, 1, 2, MV_METRIC_L2, base, 1, 0,
                                   ids, NULL, NULL), MV_ERR);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_l2_matches_naive),
        cmocka_unit_test(test_cosine_matches_naive),
        cmocka_unit_test(test_ip_matches_naive),
        cmocka_unit_test(test_ip_by_dot_product),
        cmocka_unit_test(test_fill_when_n_below_k),
        cmocka_unit_test(test_ties_by_smaller_id),
        cmocka_unit_test(test_k_zero_is_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
