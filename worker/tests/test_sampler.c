/*
 * test_sampler.c -- unit tests of the alias-table negative sampler: a
 * chi-square goodness of fit of 200k draws on a small skewed distribution,
 * exact probabilities (count^0.75 / sum, summing to 1), the table itself
 * reproducing them, zero and negative counts never drawn unless all are,
 * rebuilds of other sizes, failed builds that keep the old table, and the
 * refused arguments.
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

#include "model/sampler.h"

#define DRAWS  200000

/* Upper 0.1% points of chi-square for 1 .. 10 degrees of freedom. */
static const double chi2_999[11] = {
    0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59
};


/* Draws DRAWS items into hits (n entries) and returns the chi-square
   statistic over the items of non-zero probability; *df gets its degrees
   of freedom. */
static double
chi_square(const mvw_sampler_t *s, size_t n, uint64_t seed, size_t *hits,
    size_t *df)
{
    mv_rng_t  rng;
    double    chi2 = 0.0, e;
    size_t    i, cells = 0;
    uint32_t  x;

    memset(hits, 0, n * sizeof(*hits));
    mv_rng_seed(&rng, seed);
    for (i = 0; i < DRAWS; i++) {
        x = mvw_sampler_draw(s, &rng);
        assert_true(x < n);
        hits[x]++;
    }

    for (i = 0; i < n; i++) {
        e = mvw_sampler_prob(s, i) * DRAWS;
        if (e > 0.0) {
            chi2 += ((double) hits[i] - e) * ((double) hits[i] - e) / e;
            cells++;
        }
    }
    *df = cells - 1;

    return chi2;
}


/* The probability of each item implied by the alias table. */
static void
table_probs(const mvw_sampler_t *s, double *out)
{
    size_t i;
    double keep;

    memset(out, 0, s->n * sizeof(*out));
    for (i = 0; i < s->n; i++) {
        keep = s->slots[i].keep == UINT64_MAX
               ? 1.0 : (double) s->slots[i].keep * 0x1p-64;
        out[i] += keep / (double) s->n;
        out[s->slots[i].alias] += (1.0 - keep) / (double) s->n;
    }
}


static void
test_skewed_fit(void **state)
{
    static const double counts[8] = { 100, 50, 20, 10, 5, 1, 0, 3 };
    mvw_sampler_t       s;
    mv_err_t            err;
    size_t              hits[8], df, i;
    double              chi2, sum = 0.0, want, w[8], implied[8];

    (void) state;
    mvw_sampler_init(&s);
    assert_int_equal(mvw_sampler_build(&s, counts, 8, MVW_SAMPLER_POWER,
                                       &err), MV_OK);

    /* Exact probabilities. */
    for (i = 0; i < 8; i++) {
        w[i] = pow(counts[i], 0.75);
        sum += w[i];
    }
    want = 0.0;
    for (i = 0; i < 8; i++) {
        assert_true(fabs(mvw_sampler_prob(&s, i) - w[i] / sum) < 1e-15);
        want += mvw_sampler_prob(&s, i);
    }
    assert_true(fabs(want - 1.0) < 1e-12);
    assert_true(mvw_sampler_prob(&s, 8) == 0.0);
    assert_true(mvw_sampler_prob(&s, 6) == 0.0);

    /* The table realises them. */
    table_probs(&s, implied);
    for (i = 0; i < 8; i++) {
        assert_true(fabs(implied[i] - w[i] / sum) < 1e-12);
    }

    chi2 = chi_square(&s, 8, 5, hits, &df);
    assert_int_equal(df, 6);
    if (chi2 > chi2_999[df]) {
        fail_msg("chi-square %g over %zu df", chi2, df);
    }
    assert_int_equal(hits[6], 0);

    /* A biased sampler is caught: power 1 drawn, 0.75 expected. */
    {
        mvw_sampler_t  t;
        size_t         dft;

        mvw_sampler_init(&t);
        assert_int_equal(mvw_sampler_build(&t, counts, 8, 1.0, &err),
                         MV_OK);
        chi2 = chi_square(&t, 8, 5, hits, &dft);
        assert_true(chi2 < chi2_999[dft]);
        memcpy(t.p, s.p, 8 * sizeof(double));        /* wrong reference */
        chi2 = chi_square(&t, 8, 5, hits, &dft);
        assert_true(chi2 > 1000.0);
        mvw_sampler_free(&t);
    }

    mvw_sampler_free(&s);
}


static void
test_zero_and_negative(void **state)
{
    static const double zeros[5] = { 0, 0, -1, 0, -0.0 };
    static const double some[6] = { 0, -5, 2, 0, 8, -1 };
    mvw_sampler_t       s;
    mv_err_t            err;
    size_t              hits[6], df, i;
    double              chi2;

    (void) state;
    mvw_sampler_init(&s);

    /* All zero or negative: uniform. */
    assert_int_equal(mvw_sampler_build(&s, zeros, 5, 0.75, &err), MV_OK);
    for (i = 0; i < 5; i++) {
        assert_true(mvw_sampler_prob(&s, i) == 0.2);
    }
    chi2 = chi_square(&s, 5, 9, hits, &df);
    assert_int_equal(df, 4);
    assert_true(chi2 < chi2_999[df]);

    /* Zero and negative counts are never drawn, for any power. */
    assert_int_equal(mvw_sampler_build(&s, some, 6, 0.0, &err), MV_OK);
    assert_true(mvw_sampler_prob(&s, 2) == 0.5);
    assert_true(mvw_sampler_prob(&s, 4) == 0.5);
    chi2 = chi_square(&s, 6, 9, hits, &df);
    assert_true(chi2 < chi2_999[df]);
    assert_int_equal(hits[0] + hits[1] + hits[3] + hits[5], 0);

    assert_int_equal(mvw_sampler_build(&s, some, 6, 2.0, &err), MV_OK);
    assert_true(fabs(mvw_sampler_prob(&s, 4) - 64.0 / 68.0) < 1e-15);
    chi2 = chi_square(&s, 6, 10, hits, &df);
    assert_true(chi2 < chi2_999[df]);
    assert_int_equal(hits[0] + hits[1] + hits[3] + hits[5], 0);

    /* One item. */
    assert_int_equal(mvw_sampler_build(&s, some + 4, 1, 0.75, &err), MV_OK);
    chi_square(&s, 1, 1, hits, &df);
    assert_int_equal(hits[0], DRAWS);

    mvw_sampler_free(&s);
}


/* A Zipf-like catalogue of 10000 items, rebuilt at other sizes: the table
   always matches the exact probabilities (up to the rounding of summing a
   popular item's share over the many columns it is the alias of). */
static void
test_rebuild_sizes(void **state)
{
    static const size_t  sizes[] = { 10000, 3, 1000, 10000, 20001 };
    mvw_sampler_t        s;
    mv_err_t             err;
    double              *counts, *implied, sum;
    size_t               k, i, n;

    (void) state;
    counts = malloc(20001 * sizeof(*counts));
    implied = malloc(20001 * sizeof(*implied));
    assert_non_null(counts);
    assert_non_null(implied);

    mvw_sampler_init(&s);
    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        n = sizes[k];
        for (i = 0; i < n; i++) {
            counts[i] = i % 7 == 3 ? 0.0 : 1e6 / (double) (i + 1 + k);
        }
        assert_int_equal(mvw_sampler_build(&s, counts, n, 0.75, &err),
                         MV_OK);
        assert_int_equal(s.n, n);

        table_probs(&s, implied);
        sum = 0.0;
        for (i = 0; i < n; i++) {
            sum += mvw_sampler_prob(&s, i);
            if (fabs(implied[i] - mvw_sampler_prob(&s, i)) > 1e-13) {
                fail_msg("n %zu item %zu: table %.17g, exact %.17g", n, i,
                         implied[i], mvw_sampler_prob(&s, i));
            }
            if (counts[i] == 0.0) {
                assert_true(implied[i] == 0.0);
            }
        }
        assert_true(fabs(sum - 1.0) < 1e-12);
    }

    mvw_sampler_free(&s);
    mvw_sampler_free(&s);       /* safe on an empty one */
    free(counts);
    free(implied);
}


static void
test_bad_builds(void **state)
{
    static const double good[3] = { 1, 2, 3 };
    static const struct {
        double       count;
        size_t       n;
        double       power;
        const char  *msg;
    } bad[] = {
        { 1, 0, 0.75, "sampler: 0 items (1 .. 4294967295 allowed)" },
        { NAN, 3, 0.75, "sampler: count of item 1 is nan" },
        { INFINITY, 3, 0.75, "sampler: count of item 1 is inf" },
        { 1, 3, -0.5, "sampler: power -0.5 must be a number >= 0" },
        { 1, 3, NAN, "sampler: power nan must be a number >= 0" },
        { 1, 3, INFINITY, "sampler: power inf must be a number >= 0" },
    };
    mvw_sampler_t  s;
    mv_err_t       err;
    double         counts[3];
    size_t         i;

    (void) state;
    mvw_sampler_init(&s);
    assert_int_equal(mvw_sampler_build(&s, good, 3, 1.0, &err), MV_OK);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(counts, good, sizeof(counts));
        counts[1] = bad[i].count;
        assert_int_equal(mvw_sampler_build(&s, counts, bad[i].n,
                                           bad[i].power, &err), MV_ERR);
        assert_string_equal(err.msg, bad[i].msg);

        /* The old table is intact. */
        assert_int_equal(s.n, 3);
        assert_true(mvw_sampler_prob(&s, 2) == 0.5);
    }

    mvw_sampler_free(&s);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skewed_fit),
        cmocka_unit_test(test_zero_and_negative),
        cmocka_unit_test(test_rebuild_sizes),
        cmocka_unit_test(test_bad_builds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
