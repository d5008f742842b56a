/*
 * test_init.c -- unit tests of the embedding initialisers: for every kind
 * the mean, variance and kurtosis of a 20000 x 64 table against its formula
 * (gain included), uniform bounds, the orthogonal blocks' orthonormality
 * (full and partial blocks, one row, Haar sign symmetry), the sparse
 * kind's exact non-zero count per row, determinism for a seed, single-row
 * fills, and refused names and arguments.
 *
 * Statistical tolerances are several standard errors wide and the seeds are
 * fixed, so the tests are deterministic.
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

#include "model/init.h"

#define ROWS  20000
#define DIM   64
#define GAIN  1.5f


typedef struct moments {
    double mean, var, kurt, maxabs;
} moments_t;


static moments_t
moments_of(const float *w, size_t n)
{
    moments_t m = { 0, 0, 0, 0 };
    double    d, m4 = 0.0;
    size_t    i;

    for (i = 0; i < n; i++) {
        m.mean += w[i];
        if (fabs(w[i]) > m.maxabs) {
            m.maxabs = fabs(w[i]);
        }
    }
    m.mean /= (double) n;
    for (i = 0; i < n; i++) {
        d = w[i] - m.mean;
        m.var += d * d;
        m4 += d * d * d * d;
    }
    m.var /= (double) n;
    m.kurt = m4 / (double) n / (m.var * m.var);

    return m;
}


/* Mean, variance and shape (kurtosis 3 for a Gaussian, 1.8 uniform). */
static void
test_moments(void **state)
{
    static const struct {
        mvw_init_kind_t  kind;
        double           std;       /* before the gain */
        int              uniform;
    } cases[] = {
        { MVW_INIT_XAVIER_NORMAL, 0.125, 0 },        /* sqrt(2 / 128) */
        { MVW_INIT_XAVIER_UNIFORM, 0.125, 1 },       /* a = sqrt(6 / 128) */
        { MVW_INIT_HE_NORMAL, 0.1767766953, 0 },     /* sqrt(2 / 64) */
        { MVW_INIT_HE_UNIFORM, 0.1767766953, 1 },    /* a = sqrt(6 / 64) */
        { MVW_INIT_LECUN_NORMAL, 0.125, 0 },         /* sqrt(1 / 64) */
        { MVW_INIT_LECUN_UNIFORM, 0.125, 1 },        /* a = sqrt(3 / 64) */
        { MVW_INIT_NORMAL, 0.1, 0 },
    };
    float     *w = malloc((size_t) ROWS * DIM * sizeof(float));
    mv_rng_t   rng;
    mv_err_t   err;
    moments_t  m;
    double     std, n = (double) ROWS * DIM, a;
    size_t     c;

    (void) state;
    assert_non_null(w);

    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        mv_rng_seed(&rng, 100 + c);
        assert_int_equal(mvw_init_fill(cases[c].kind, w, ROWS, DIM, GAIN,
                                       0.0f, &rng, &err), MV_OK);
        m = moments_of(w, (size_t) n);
        std = cases[c].std * GAIN;

        /* 5 standard errors; the variance's error is below
           var * sqrt(2 / n). */
        if (fabs(m.mean) > 5.0 * std / sqrt(n)
            || fabs(m.var / (std * std) - 1.0) > 5.0 * sqrt(2.0 / n))
        {
            fail_msg("%s: mean %g var %g, want 0 and %g",
                     mvw_init_name(cases[c].kind), m.mean, m.var, std * std);
        }

        if (cases[c].uniform) {
            a = std * sqrt(3.0);
            assert_true(m.maxabs <= (double) (float) a);
            assert_true(m.maxabs > 0.999 * a);
            assert_true(fabs(m.kurt - 1.8) < 0.02);
        } else {
            assert_true(fabs(m.kurt - 3.0) < 0.05);
        }
    }

    free(w);
}


/* Checks that the rows of a block (k x dim) are orthonormal times gain,
   and, when square, its columns too. */
static void
assert_orthonormal(const float *b, size_t k, size_t dim, double gain)
{
    double  dot, want;
    size_t  i, j, t;

    for (i = 0; i < k; i++) {
        for (j = i; j < k; j++) {
            dot = 0.0;
            for (t = 0; t < dim; t++) {
                dot += (double) b[i * dim + t] * b[j * dim + t];
            }
            want = i == j ? gain * gain : 0.0;
            if (fabs(dot - want) > 1e-5 * gain * gain) {
                fail_msg("rows %zu.%zu = %g", i, j, dot);
            }
        }
    }
    if (k < dim) {
        return;
    }
    for (i = 0; i < dim; i++) {
        for (j = i; j < dim; j++) {
            dot = 0.0;
            for (t = 0; t < k; t++) {
                dot += (double) b[t * dim + i] * b[t * dim + j];
            }
            want = i == j ? gain * gain : 0.0;
            if (fabs(dot - want) > 1e-5 * gain * gain) {
                fail_msg("columns %zu.%zu = %g", i, j, dot);
            }
        }
    }
}


static void
test_orthogonal(void **state)
{
    const size_t  rows = 3 * DIM + 17;
    float        *w = malloc(rows * DIM * sizeof(float));
    float         one[8];
    mv_rng_t      rng;
    mv_err_t      err;
    double        diag;
    size_t        b, i, positive;

    (void) state;
    assert_non_null(w);
    mv_rng_seed(&rng, 7);

    /* Three full blocks and a partial one of 17 rows. */
    assert_int_equal(mvw_init_fill(MVW_INIT_ORTHOGONAL, w, rows, DIM, GAIN,
                                   0.0f, &rng, &err), MV_OK);
    for (b = 0; b < 3; b++) {
        assert_orthonormal(w + b * DIM * DIM, DIM, DIM, GAIN);
    }
    assert_orthonormal(w + 3 * DIM * DIM, 17, DIM, GAIN);

    /* Blocks are independent: block 0 and block 1 are not the same. */
    assert_true(memcmp(w, w + DIM * DIM, DIM * sizeof(float)) != 0);

    /* Haar: the signs of diag(R) are corrected, so the diagonal of the
       blocks is symmetric about 0 (without the correction, Householder QR
       makes Q[0][0] negative every time). */
    positive = 0;
    for (i = 0; i < 400; i++) {
        assert_int_equal(mvw_init_fill(MVW_INIT_ORTHOGONAL, one, 1, 8, 1.0f,
                                       0.0f, &rng, &err), MV_OK);
        assert_orthonormal(one, 1, 8, 1.0);
        positive += one[0] > 0.0f;
    }
    assert_in_range(positive, 160, 240);

    diag = 0.0;
    for (b = 0; b < 3; b++) {
        for (i = 0; i < DIM; i++) {
            diag += w[b * DIM * DIM + i * DIM + i] / GAIN;
        }
    }
    /* 192 entries of variance about 1/64: sum's sd is about 1.7. */
    assert_true(fabs(diag) < 7.0);

    free(w);
}


static void
test_sparse(void **state)
{
    static const struct {
        size_t  dim;
        float   density;
        size_t  nnz;
    } cases[] = {
        { 64, 0.1f, 7 },        /* ceil(6.4) */
        { 10, 0.3f, 3 },        /* not 4 */
        { 64, 1.0f, 64 },
        { 64, 1e-6f, 1 },
        { 1, 0.5f, 1 },
        { 100, 0.25f, 25 },
    };
    float    *w = malloc(2000 * 100 * sizeof(float));
    size_t    hits[100];
    mv_rng_t  rng;
    mv_err_t  err;
    size_t    c, r, j, count;
    double    sum2, var;

    (void) state;
    assert_non_null(w);
    mv_rng_seed(&rng, 11);

    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        assert_int_equal(mvw_init_fill(MVW_INIT_SPARSE, w, 2000, cases[c].dim,
                                       2.0f, cases[c].density, &rng, &err),
                         MV_OK);
        memset(hits, 0, sizeof(hits));
        sum2 = 0.0;
        for (r = 0; r < 2000; r++) {
            count = 0;
            for (j = 0; j < cases[c].dim; j++) {
                if (w[r * cases[c].dim + j] != 0.0f) {
                    count++;
                    hits[j]++;
                    sum2 += (double) w[r * cases[c].dim + j]
                            * w[r * cases[c].dim + j];
                }
            }
            assert_int_equal(count, cases[c].nnz);
        }

        /* Values N(0, gain^2); positions spread over every column. */
        var = sum2 / (2000.0 * (double) cases[c].nnz);
        assert_true(fabs(var / 4.0 - 1.0) < 0.1);
        for (j = 0; j < cases[c].dim; j++) {
            double expect = 2000.0 * (double) cases[c].nnz
                            / (double) cases[c].dim;

            assert_true(fabs((double) hits[j] - expect)
                        < 6.0 * sqrt(expect) + 1.0);
        }
    }

    free(w);
}


/* Every kind: the same seed gives the same table, another seed another;
   one row at a time works. */
static void
test_determinism_and_single_rows(void **state)
{
    float            a[5 * 16], b[5 * 16];
    mv_rng_t         r1, r2;
    mv_err_t         err;
    mvw_init_kind_t  k;
    double           norm;
    size_t           i, j;

    (void) state;
    for (k = 0; k < MVW_INIT_N_KINDS; k++) {
        mv_rng_seed(&r1, 42);
        mv_rng_seed(&r2, 42);
        assert_int_equal(mvw_init_fill(k, a, 5, 16, 1.0f, 0.5f, &r1, &err),
                         MV_OK);
        assert_int_equal(mvw_init_fill(k, b, 5, 16, 1.0f, 0.5f, &r2, &err),
                         MV_OK);
        assert_memory_equal(a, b, sizeof(a));

        mv_rng_seed(&r2, 43);
        assert_int_equal(mvw_init_fill(k, b, 5, 16, 1.0f, 0.5f, &r2, &err),
                         MV_OK);
        assert_memory_not_equal(a, b, sizeof(a));

        /* Online: rows added one by one are valid and differ. */
        for (i = 0; i < 5; i++) {
            assert_int_equal(mvw_init_fill(k, a + i * 16, 1, 16, 3.0f, 0.5f,
                                           &r1, &err), MV_OK);
            norm = 0.0;
            for (j = 0; j < 16; j++) {
                assert_true(isfinite(a[i * 16 + j]));
                norm += (double) a[i * 16 + j] * a[i * 16 + j];
            }
            assert_true(norm > 0.0);
            if (k == MVW_INIT_ORTHOGONAL) {
                assert_true(fabs(sqrt(norm) - 3.0) < 1e-5);
            }
        }
        assert_memory_not_equal(a, a + 16, 16 * sizeof(float));
    }

    /* rows 0 writes nothing; gain 0 gives zeros. */
    mv_rng_seed(&r1, 1);
    assert_int_equal(mvw_init_fill(MVW_INIT_ORTHOGONAL, NULL, 0, 16, 1.0f,
                                   0.0f, &r1, &err), MV_OK);
    assert_int_equal(mvw_init_fill(MVW_INIT_HE_UNIFORM, a, 5, 16, 0.0f,
                                   0.0f, &r1, &err), MV_OK);
    for (i = 0; i < 5 * 16; i++) {
        assert_true(a[i] == 0.0f);
    }
}


static void
test_names(void **state)
{
    static const char *bad[] = {
        "", "Xavier_normal", "xavier", "orthogonal ", "glorot_uniform",
        "normal\n", "unknown",
    };
    mvw_init_kind_t    k, got;
    size_t             i;

    (void) state;
    for (k = 0; k < MVW_INIT_N_KINDS; k++) {
        assert_int_equal(mvw_init_from_name(mvw_init_name(k), &got), MV_OK);
        assert_int_equal(got, k);
    }
    assert_string_equal(mvw_init_name(MVW_INIT_LECUN_UNIFORM),
                        "lecun_uniform");
    assert_string_equal(mvw_init_name(MVW_INIT_N_KINDS), "unknown");
    assert_string_equal(mvw_init_name((mvw_init_kind_t) -1), "unknown");

    got = MVW_INIT_SPARSE;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mvw_init_from_name(bad[i], &got), MV_ERR);
    }
    assert_int_equal(mvw_init_from_name(NULL, &got), MV_ERR);
    assert_int_equal(got, MVW_INIT_SPARSE);
}


static void
test_bad_args(void **state)
{
    static const struct {
        mvw_init_kind_t  kind;
        size_t           dim;
        float            scale, density;
        const char      *msg;
    } bad[] = {
        { MVW_INIT_HE_NORMAL, 0, 1.0f, 0.0f, "he_normal init: dim is 0" },
        { MVW_INIT_NORMAL, 4, NAN, 0.0f,
          "normal init: scale nan is not finite" },
        { MVW_INIT_ORTHOGONAL, 4, INFINITY, 0.0f,
          "orthogonal init: scale inf is not finite" },
        { MVW_INIT_SPARSE, 4, 1.0f, 0.0f,
          "sparse init: density 0 is not in (0, 1]" },
        { MVW_INIT_SPARSE, 4, 1.0f, 1.5f,
          "sparse init: density 1.5 is not in (0, 1]" },
        { MVW_INIT_SPARSE, 4, 1.0f, NAN,
          "sparse init: density nan is not in (0, 1]" },
        { MVW_INIT_N_KINDS, 4, 1.0f, 0.0f, "unknown initialiser 9" },
        { MVW_INIT_ORTHOGONAL, (size_t) 1 << 31, 1.0f, 0.0f,
          "orthogonal init: dim 2147483648 is too large" },
    };
    float     w[16];
    mv_rng_t  rng;
    mv_err_t  err;
    size_t    i;

    (void) state;
    mv_rng_seed(&rng, 1);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mvw_init_fill(bad[i].kind, w, 1, bad[i].dim,
                                       bad[i].scale, bad[i].density, &rng,
                                       &err), MV_ERR);
        assert_string_equal(err.msg, bad[i].msg);
    }

    /* The density is ignored by the other kinds. */
    assert_int_equal(mvw_init_fill(MVW_INIT_NORMAL, w, 4, 4, 1.0f, -3.0f,
                                   &rng, &err), MV_OK);
    /* A table too large for size_t. */
    assert_int_equal(mvw_init_fill(MVW_INIT_NORMAL, w, SIZE_MAX / 2, 4, 1.0f,
                                   0.0f, &rng, &err), MV_ERR);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moments),
        cmocka_unit_test(test_orthogonal),
        cmocka_unit_test(test_sparse),
        cmocka_unit_test(test_determinism_and_single_rows),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bad_args),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
