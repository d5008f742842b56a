/*
 * test_synth.c -- seeded synthetic data: the generator is deterministic for
 * a seed and differs for another, uniform values stay in [0, 1), normal
 * draws have mean ~0 and variance ~1, and clustered data is reproducible
 * and actually clustered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "synth.h"


static void
test_rng_deterministic(void **state)
{
    mv_rng_t a, b, c;
    size_t   i, same_as_other = 0;

    (void) state;

    mv_rng_seed(&a, 42);
    mv_rng_seed(&b, 42);
    mv_rng_seed(&c, 43);
    for (i = 0; i < 1000; i++) {
        uint64_t x = mv_rng_next(&a);

        assert_true(x == mv_rng_next(&b));
        same_as_other += x == mv_rng_next(&c);
    }
    assert_true(same_as_other == 0);

    /* Seed 0 is valid (splitmix64 never yields an all-zero state). */
    mv_rng_seed(&a, 0);
    assert_true(a.s[0] | a.s[1] | a.s[2] | a.s[3]);
    assert_true(mv_rng_next(&a) != mv_rng_next(&a));
}


static void
test_uniform_range_and_mean(void **state)
{
    mv_rng_t r;
    double   u, sum = 0;
    size_t   i, n = 100000;

    (void) state;

    mv_rng_seed(&r, 7);
    for (i = 0; i < n; i++) {
        u = mv_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
    }
    assert_true(fabs(sum / n - 0.5) < 0.01);
}


static void
test_normal_moments(void **state)
{
    mv_rng_t r, again;
    double   x, sum = 0, sum_sq = 0, mean, variance;
    size_t   i, n = 100000;

    (void) state;

    mv_rng_seed(&r, 2024);
    mv_rng_seed(&again, 2024);
    for (i = 0; i < n; i++) {
        x = mv_rng_normal(&r);
        assert_true(isfinite(x));
        assert_true(x == mv_rng_normal(&again));
        sum += x;
        sum_sq += x * x;
    }
    mean = sum / n;
    variance = sum_sq / n - mean * mean;
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(variance - 1.0) < 0.03);
}


static void
test_clustered_deterministic(void **state)
{
    enum { N = 500, DIM = 12, CLUSTERS = 8 };
    float   *a = malloc(N * DIM * sizeof(float));
    float   *b = malloc(N * DIM * sizeof(float));
    uint32_t ca[N], cb[N];

    (void) state;

    assert_true(a && b);
    mv_synth_clustered(a, N, DIM, CLUSTERS, 0.1f, 99, ca);
    mv_synth_clustered(b, N, DIM, CLUSTERS, 0.1f, 99, cb);
    assert_memory_equal(a, b, N * DIM * sizeof(float));
    assert_memory_equal(ca, cb, sizeof(ca));

    mv_synth_clustered(b, N, DIM, CLUSTERS, 0.1f, 100, cb);
    assert_memory_not_equal(a, b, N * DIM * sizeof(float));

    /* Without cluster_of the points are the same. */
    mv_synth_clustered(b, N, DIM, CLUSTERS, 0.1f, 99, NULL);
    assert_memory_equal(a, b, N * DIM * sizeof(float));

    free(a);
    free(b);
}


static void
test_clustered_is_clustered(void **state)
{
    enum { N = 2000, DIM = 16, CLUSTERS = 10 };
    float   *v = malloc(N * DIM * sizeof(float));
    uint32_t of[N];
    size_t   i, j, seen[CLUSTERS] = { 0 };
    double   d, same = 0, other = 0;
    size_t   n_same = 0, n_other = 0;

    (void) state;

    assert_non_null(v);
    mv_synth_clustered(v, N, DIM, CLUSTERS, 0.05f, 5, of);
    for (i = 0; i < N; i++) {
        assert_true(of[i] < CLUSTERS);
        seen[of[i]]++;
    }
    for (i = 0; i < CLUSTERS; i++) {
        assert_true(seen[i] > N / CLUSTERS / 2);
    }

    /* Points of one cluster are far closer to each other than to others. */
    for (i = 1; i < N; i++) {
        d = 0;
        for (j = 0; j < DIM; j++) {
            double diff = (double) v[i * DIM + j] - v[(i - 1) * DIM + j];

            d += diff * diff;
        }
        if (of[i] == of[i - 1]) {
            same += d;
            n_same++;
        } else {
            other += d;
            n_other++;
        }
    }
    assert_true(n_same > 0 && n_other > 0);
    /* Same cluster: about 2 * DIM * spread^2; others: about 2 * DIM. */
    assert_true(same / n_same < 0.1);
    assert_true(other / n_other > 5.0);

    /* n_clusters == 0 behaves as one cluster. */
    mv_synth_clustered(v, 10, DIM, 0, 0.1f, 5, of);
    for (i = 0; i < 10; i++) {
        assert_int_equal(of[i], 0);
    }

    free(v);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_deterministic),
        cmocka_unit_test(test_uniform_range_and_mean),
        cmocka_unit_test(test_normal_moments),
        cmocka_unit_test(test_clustered_deterministic),
        cmocka_unit_test(test_clustered_is_clustered),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
