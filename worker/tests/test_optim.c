/*
 * test_optim.c -- unit tests of the sparse per-row optimisers: each one
 * against values computed by hand (in double, from the formulas of
 * optim.h) for three steps of a 3-float row with L2, AdaGrad's accumulator,
 * Adam's per-row step count and bias correction, rows that are not stepped
 * staying as they were, growth keeping state, row reset, the SIMD paths on
 * longer rows against a double reference and against each other, names
 * and parameter checks.
 *
 * The three steps use three different gradients:
 *   w0 = {1, -2, 0.5};  g1 = {0.5, 0.25, -1};  g2 = {-0.3, 0.1, 0.4};
 *   g3 = {0.2, -0.6, 0}
 * with lr 0.1 (sgd, adagrad) or 0.01 (adam), l2 0.01, eps 1e-8, beta1 0.9,
 * beta2 0.999.
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

#include "model/optim.h"

static const float W0[3] = { 1.0f, -2.0f, 0.5f };
static const float G[3][3] = {
    { 0.5f, 0.25f, -1.0f },
    { -0.3f, 0.1f, 0.4f },
    { 0.2f, -0.6f, 0.0f },
};


static void
assert_close(const float *got, const double *want, size_t n, double tol)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!(fabs((double) got[i] - want[i])
              <= tol * (1.0 + fabs(want[i]))))
        {
            fail_msg("[%zu]: got %.9g, want %.9g", i, (double) got[i],
                     want[i]);
        }
    }
}


static mvw_optim_t *
make(mvw_optim_kind_t kind, size_t dim, size_t rows)
{
    mvw_optim_params_t  p;
    mvw_optim_t        *o;
    mv_err_t            err;

    mvw_optim_params_default(kind, &p);
    p.lr = kind == MVW_OPTIM_ADAM ? 0.01f : 0.1f;
    p.l2 = 0.01f;
    o = mvw_optim_new(kind, dim, &p, &err);
    assert_non_null(o);
    assert_int_equal(mvw_optim_reserve(o, rows, &err), MV_OK);

    return o;
}


static void
test_sgd(void **state)
{
    static const double want[3][3] = {
        { 0.949, -2.023, 0.5995 },
        { 0.978051, -2.030977, 0.5589005 },
        { 0.957072949, -1.96894602, 0.5583416 },
    };
    mvw_optim_t *o = make(MVW_OPTIM_SGD, 3, 2);
    float        w[3];
    int          s;

    (void) state;
    memcpy(w, W0, sizeof(w));
    for (s = 0; s < 3; s++) {
        mvw_optim_step(o, 1, w, G[s]);
        assert_close(w, want[s], 3, 1e-6);
    }
    assert_null(o->state);
    assert_null(mvw_optim_row_state(o, 1));
    assert_null(mvw_optim_row_clock(o, 1));
    mvw_optim_free(o);
}


static void
test_adagrad(void **state)
{
    static const double want_w[3][3] = {
        { 0.900000002, -2.1, 0.599999999 },
        { 0.949558863, -2.13248499, 0.562220067 },
        { 0.915955349, -2.03936387, 0.561696906 },
    };
    static const double want_acc[3][3] = {
        { 0.2601, 0.0529, 0.990025 },
        { 0.344781, 0.059141, 1.154861 },
        { 0.388669402, 0.445185569, 1.15489261 },
    };
    static const double zero[3] = { 0, 0, 0 };
    mvw_optim_t *o = make(MVW_OPTIM_ADAGRAD, 3, 3);
    float        w[3], other[3];
    int          s;

    (void) state;
    memcpy(w, W0, sizeof(w));
    memcpy(other, W0, sizeof(other));
    for (s = 0; s < 3; s++) {
        mvw_optim_step(o, 1, w, G[s]);
        assert_close(w, want_w[s], 3, 1e-6);
        assert_close(mvw_optim_row_state(o, 1), want_acc[s], 3, 1e-6);
    }

    /* Rows 0 and 2 were never stepped: their accumulators are still 0. */
    assert_close(mvw_optim_row_state(o, 0), zero, 3, 0);
    assert_close(mvw_optim_row_state(o, 2), zero, 3, 0);
    assert_null(mvw_optim_row_clock(o, 0));

    /* A fresh row's first step is the first step above, not the fourth. */
    mvw_optim_step(o, 2, other, G[0]);
    assert_close(other, want_w[0], 3, 1e-6);

    mvw_optim_free(o);
}


static void
test_adam(void **state)
{
    static const double want_w[3][3] = {
        { 0.99, -2.01, 0.51 },
        { 0.987857087, -2.0187722, 0.513398302 },
        { 0.984144305, -2.01530115, 0.515994614 },
    };
    static const double want_m[3][3] = {
        { 0.051, 0.023, -0.0995 },
        { 0.01689, 0.02869, -0.04904 },
        { 0.0361888571, -0.0361977722, -0.0436226017 },
    };
    static const double want_v[3][3] = {
        { 0.0002601, 5.29e-05, 0.000990025 },
        { 0.00034399791, 5.923111e-05, 0.00115314098 },
        { 0.000387702927, 0.000443804689, 0.0011520142 },
    };
    mvw_optim_t *o = make(MVW_OPTIM_ADAM, 3, 4);
    float        a[3], b[3], idle[3];
    int          s;

    (void) state;
    memcpy(a, W0, sizeof(a));
    memcpy(b, W0, sizeof(b));
    memcpy(idle, W0, sizeof(idle));

    /* Row 0 takes two steps; then row 3 its first: with its own t = 1, it
       must match row 0's first step exactly. */
    for (s = 0; s < 2; s++) {
        mvw_optim_step(o, 0, a, G[s]);
        assert_close(a, want_w[s], 3, 1e-6);
        assert_close(mvw_optim_row_state(o, 0), want_m[s], 3, 1e-6);
        assert_close(mvw_optim_row_state(o, 0) + 3, want_v[s], 3, 1e-6);
    }
    mvw_optim_step(o, 3, b, G[0]);
    assert_close(b, want_w[0], 3, 1e-6);
    assert_int_equal(mvw_optim_row_clock(o, 0)->t, 2);
    assert_int_equal(mvw_optim_row_clock(o, 3)->t, 1);
    assert_int_equal(mvw_optim_row_clock(o, 1)->t, 0);

    /* Row 0 goes on with t = 3 although rows 3 stepped in between. */
    mvw_optim_step(o, 0, a, G[2]);
    assert_close(a, want_w[2], 3, 1e-6);
    assert_close(mvw_optim_row_state(o, 0), want_m[2], 3, 1e-6);
    assert_close(mvw_optim_row_state(o, 0) + 3, want_v[2], 3, 1e-6);
    assert_true(fabs(mvw_optim_row_clock(o, 0)->beta1_t - 0.729) < 1e-7);
    assert_true(fabs(mvw_optim_row_clock(o, 0)->beta2_t - 0.997002999)
                < 1e-7);

    /* Lazy: untouched rows 1 and 2 kept zero moments. */
    for (s = 0; s < 6; s++) {
        assert_true(mvw_optim_row_state(o, 1)[s] == 0.0f);
        assert_true(mvw_optim_row_state(o, 2)[s] == 0.0f);
    }

    /* Reset: row 0 restarts at t = 1. */
    mvw_optim_reset_row(o, 0);
    assert_int_equal(mvw_optim_row_clock(o, 0)->t, 0);
    memcpy(idle, W0, sizeof(idle));
    mvw_optim_step(o, 0, idle, G[0]);
    assert_close(idle, want_w[0], 3, 1e-6);

    mvw_optim_free(o);
}


/* Reserve keeps state across growth and zeroes the new rows. */
static void
test_reserve_growth(void **state)
{
    static const double want_w[2][3] = {
        { 0.99, -2.01, 0.51 },
        { 0.987857087, -2.0187722, 0.513398302 },
    };
    mvw_optim_t *o = make(MVW_OPTIM_ADAM, 3, 1);
    mv_err_t     err;
    float        w[3];
    size_t       r, j;

    (void) state;
    memcpy(w, W0, sizeof(w));
    mvw_optim_step(o, 0, w, G[0]);

    /* One row at a time up to 1000, then a jump: amortised growth. */
    for (r = 2; r <= 1000; r++) {
        assert_int_equal(mvw_optim_reserve(o, r, &err), MV_OK);
    }
    assert_int_equal(mvw_optim_reserve(o, 5000, &err), MV_OK);
    assert_int_equal(mvw_optim_reserve(o, 10, &err), MV_OK);   /* no-op */
    assert_int_equal(o->rows, 5000);
    assert_true(o->cap >= 5000);

    mvw_optim_step(o, 0, w, G[1]);
    assert_close(w, want_w[1], 3, 1e-6);
    for (r = 1; r < 5000; r++) {
        assert_int_equal(mvw_optim_row_clock(o, r)->t, 0);
        assert_true(mvw_optim_row_clock(o, r)->beta1_t == 1.0);
        for (j = 0; j < 6; j++) {
            assert_true(mvw_optim_row_state(o, r)[j] == 0.0f);
        }
    }

    mvw_optim_free(o);
}


/*
 * Rows of 1 .. 37 floats (vector body plus every tail length) against a
 * double-precision reference of the same formulas, three steps each.
 */
static void
test_long_rows(void **state)
{
    mvw_optim_kind_t kind;
    mvw_optim_t     *o;
    float            w[37], g[37];
    double           rw[37], ra[37], rb[37], gp, b1t, b2t, mh, vh;
    size_t           dim, j;
    int              s;

    (void) state;
    for (kind = 0; kind < MVW_OPTIM_N_KINDS; kind++) {
        for (dim = 1; dim <= 37; dim++) {
            o = make(kind, dim, 1);
            for (j = 0; j < dim; j++) {
                w[j] = (float) sin((double) j + 1.0);
                rw[j] = w[j];
                ra[j] = 0.0;
                rb[j] = 0.0;
            }
            b1t = 1.0;
            b2t = 1.0;
            for (s = 0; s < 3; s++) {
                b1t *= 0.9f;
                b2t *= 0.999f;
                for (j = 0; j < dim; j++) {
                    g[j] = (float) cos((double) (j * 7 + (size_t) s * 3));
                    gp = g[j] + 0.01f * rw[j];
                    if (kind == MVW_OPTIM_SGD) {
                        rw[j] -= 0.1f * gp;
                    } else if (kind == MVW_OPTIM_ADAGRAD) {
                        ra[j] += gp * gp;
                        rw[j] -= 0.1f * gp / (sqrt(ra[j]) + 1e-8f);
                    } else {
                        ra[j] = 0.9f * ra[j] + (1.0 - 0.9f) * gp;
                        rb[j] = 0.999f * rb[j] + (1.0 - 0.999f) * gp * gp;
                        mh = ra[j] / (1.0 - b1t);
                        vh = rb[j] / (1.0 - b2t);
                        rw[j] -= 0.01f * mh / (sqrt(vh) + 1e-8f);
                    }
                }
                mvw_optim_step(o, 0, w, g);
                assert_close(w, rw, dim, 2e-5);
            }
            mvw_optim_free(o);
        }
    }
}


/* The AVX, SSE2 and scalar paths agree bit for bit (the SSE2 and scalar
   ones are forced by clearing o->avx; dim 37 uses all three). */
static void
test_paths_agree(void **state)
{
    mvw_optim_kind_t kind;
    mvw_optim_t     *wide, *narrow;
    float            a[37], b[37], g[37];
    size_t           j;
    int              s;

    (void) state;
    for (kind = MVW_OPTIM_ADAGRAD; kind < MVW_OPTIM_N_KINDS; kind++) {
        wide = make(kind, 37, 1);
        narrow = make(kind, 37, 1);
        narrow->avx = 0;
        for (j = 0; j < 37; j++) {
            a[j] = b[j] = (float) sin((double) j * 0.7);
        }
        for (s = 0; s < 5; s++) {
            for (j = 0; j < 37; j++) {
                g[j] = (float) cos((double) (j + (size_t) s) * 1.3);
            }
            mvw_optim_step(wide, 0, a, g);
            mvw_optim_step(narrow, 0, b, g);
        }
        assert_memory_equal(a, b, sizeof(a));
        assert_memory_equal(mvw_optim_row_state(wide, 0),
                            mvw_optim_row_state(narrow, 0),
                            (kind == MVW_OPTIM_ADAM ? 2 : 1) * 37
                            * sizeof(float));
        mvw_optim_free(wide);
        mvw_optim_free(narrow);
    }
}


static void
test_names(void **state)
{
    static const char *bad[] = { "", "SGD", "adam ", "adamw", "rmsprop" };
    mvw_optim_kind_t   k, got;
    size_t             i;

    (void) state;
    for (k = 0; k < MVW_OPTIM_N_KINDS; k++) {
        assert_int_equal(mvw_optim_from_name(mvw_optim_name(k), &got),
                         MV_OK);
        assert_int_equal(got, k);
    }
    assert_string_equal(mvw_optim_name(MVW_OPTIM_ADAGRAD), "adagrad");
    assert_string_equal(mvw_optim_name(MVW_OPTIM_N_KINDS), "unknown");

    got = MVW_OPTIM_ADAM;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mvw_optim_from_name(bad[i], &got), MV_ERR);
    }
    assert_int_equal(mvw_optim_from_name(NULL, &got), MV_ERR);
    assert_int_equal(got, MVW_OPTIM_ADAM);
}


static void
test_bad_params(void **state)
{
    static const struct {
        mvw_optim_kind_t  kind;
        size_t            dim;
        float             lr, l2, beta1, beta2, eps;
        const char       *msg;
    } bad[] = {
        { MVW_OPTIM_SGD, 0, 0.1f, 0, 0.9f, 0.999f, 1e-8f,
          "sgd: invalid dim 0" },
        { MVW_OPTIM_SGD, 4, 0.0f, 0, 0.9f, 0.999f, 1e-8f,
          "sgd: lr 0 must be a positive number" },
        { MVW_OPTIM_ADAGRAD, 4, NAN, 0, 0.9f, 0.999f, 1e-8f,
          "adagrad: lr nan must be a positive number" },
        { MVW_OPTIM_SGD, 4, INFINITY, 0, 0.9f, 0.999f, 1e-8f,
          "sgd: lr inf must be a positive number" },
        { MVW_OPTIM_SGD, 4, 0.1f, -1.0f, 0.9f, 0.999f, 1e-8f,
          "sgd: l2 -1 must be a number >= 0" },
        { MVW_OPTIM_ADAM, 4, 0.1f, 0, 1.0f, 0.999f, 1e-8f,
          "adam: beta1 1 and beta2 0.999 must be in [0, 1)" },
        { MVW_OPTIM_ADAM, 4, 0.1f, 0, 0.9f, NAN, 1e-8f,
          "adam: beta1 0.9 and beta2 nan must be in [0, 1)" },
        { MVW_OPTIM_ADAGRAD, 4, 0.1f, 0, 0.9f, 0.999f, 0.0f,
          "adagrad: eps 0 must be a positive number" },
        { (mvw_optim_kind_t) 7, 4, 0.1f, 0, 0.9f, 0.999f, 1e-8f,
          "unknown optimiser 7" },
    };
    mvw_optim_params_t p;
    mvw_optim_t       *o;
    mv_err_t           err;
    size_t             i;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p.lr = bad[i].lr;
        p.l2 = bad[i].l2;
        p.beta1 = bad[i].beta1;
        p.beta2 = bad[i].beta2;
        p.eps = bad[i].eps;
        assert_null(mvw_optim_new(bad[i].kind, bad[i].dim, &p, &err));
        assert_string_equal(err.msg, bad[i].msg);
    }

    /* Betas and eps are not checked where they are not used. */
    p.lr = 0.1f;
    p.l2 = 0.0f;
    p.beta1 = 5.0f;
    p.beta2 = -1.0f;
    p.eps = 0.0f;
    o = mvw_optim_new(MVW_OPTIM_SGD, 4, &p, &err);
    assert_non_null(o);
    mvw_optim_free(o);
    mvw_optim_free(NULL);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_adagrad),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_reserve_growth),
        cmocka_unit_test(test_long_rows),
        cmocka_unit_test(test_paths_agree),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bad_params),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
