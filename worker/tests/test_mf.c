/*
 * test_mf.c -- unit tests of the matrix-factorisation model:
 *
 *   - every loss against its formula evaluated here from naive dot
 *     products, and its gradient against central finite differences with
 *     respect to the user row, the positive and the negatives' rows (a
 *     repeated negative and a negative equal to the positive included, so
 *     a row's derivative is the sum over its occurrences), with and without
 *     item bias and log-Q terms;
 *   - stability for huge scores;
 *   - a step: summed gradients for repeated items, the loss going down on
 *     a repeated example for every loss and optimiser, the users' bias
 *     coordinate staying exactly 1;
 *   - growth, set_user / set_item, batched scoring against naive dot
 *     products, scratch growth past 64 negatives;
 *   - a tiny synthetic problem (50 users, 40 items, two blocks of taste)
 *     learnt by every optimiser and loss: held-in positives rank above the
 *     other items;
 *   - names and refused parameters.
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

#include "model/mf.h"
#include "model/sampler.h"

#define MAXD  16


static mvw_mf_t *
make(uint32_t dim, mvw_mf_loss_t loss, mvw_optim_kind_t optim, int bias,
    size_t users, size_t items, float scale)
{
    mvw_mf_params_t  p;
    mvw_mf_t        *m;
    mv_err_t         err;

    mvw_mf_params_default(&p);
    p.dim = dim;
    p.loss = loss;
    p.optim = optim;
    p.item_bias = bias;
    p.init = MVW_INIT_NORMAL;
    p.init_scale = scale;
    p.seed = 1234;
    if (optim == MVW_OPTIM_ADAM) {
        p.lr = 0.01f;
    }

    m = mvw_mf_new(&p, &err);
    if (m == NULL) {
        fail_msg("mvw_mf_new: %s", err.msg);
    }
    assert_int_equal(mvw_mf_add_users(m, users, NULL, &err), MV_OK);
    assert_int_equal(mvw_mf_add_items(m, items, NULL, &err), MV_OK);

    return m;
}


static double
naive_dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    size_t i;

    for (i = 0; i < n; i++) {
        s += (double) a[i] * b[i];
    }

    return s;
}


/* The loss of the example from its definition in mf.h, in double. */
static double
reference_loss(mvw_mf_t *m, mvw_mf_loss_t loss, uint32_t user, uint32_t pos,
    double weight, const uint32_t *negs, size_t n_neg, const float *logq,
    float pos_logq)
{
    size_t  dim = mvw_mf_dim(m), k;
    double  sp, sn, l = 0.0, zp, zmax, sum;
    double  z[64];

    sp = naive_dot(mvw_mf_user(m, user), mvw_mf_item(m, pos), dim);
    if (loss == MVW_MF_SOFTMAX) {
        zp = sp - pos_logq;
        zmax = zp;
        for (k = 0; k < n_neg; k++) {
            z[k] = naive_dot(mvw_mf_user(m, user), mvw_mf_item(m, negs[k]),
                             dim) - (logq != NULL ? logq[k] : 0.0);
            zmax = z[k] > zmax ? z[k] : zmax;
        }
        sum = exp(zp - zmax);
        for (k = 0; k < n_neg; k++) {
            sum += exp(z[k] - zmax);
        }
        return weight * -(zp - zmax - log(sum));
    }

    if (loss == MVW_MF_LOGISTIC) {
        l = -log(1.0 / (1.0 + exp(-sp)));
    }
    for (k = 0; k < n_neg; k++) {
        sn = naive_dot(mvw_mf_user(m, user), mvw_mf_item(m, negs[k]), dim);
        if (loss == MVW_MF_LOGISTIC) {
            l += -log(1.0 / (1.0 + exp(sn)));
        } else {
            l += -log(1.0 / (1.0 + exp(-(sp - sn))));
        }
    }

    return weight * l;
}


/*
 * Loss values and finite-difference gradients for every loss, with and
 * without bias, with and without log-Q.  Example: user 2, positive 3,
 * negatives {5, 7, 5, 3, 0}.
 */
static void
test_loss_and_gradients(void **state)
{
    static const uint32_t negs[5] = { 5, 7, 5, 3, 0 };
    static const float    logq[5] = { -1.5f, -3.0f, -1.5f, -0.7f, -2.2f };
    static const uint32_t rows[4] = { 3, 5, 7, 0 };
    const float           h = 1e-2f, weight = 1.7f;
    mvw_mf_loss_t         loss;
    mvw_mf_t             *m;
    float                 gu[MAXD], gp[MAXD], gn[5 * MAXD], *x, saved;
    double                l, lp, lm, fd, an, ref;
    size_t                dim = 7, j, k, r;
    int                   bias, with_q;

    (void) state;
    for (loss = 0; loss < MVW_MF_N_LOSSES; loss++) {
        for (bias = 0; bias <= 1; bias++) {
            for (with_q = 0; with_q <= 1; with_q++) {
                const float *q = with_q ? logq : NULL;
                float        pq = with_q ? -0.4f : 0.0f;

                m = make((uint32_t) dim, loss, MVW_OPTIM_SGD, bias, 4, 10,
                         8.0f);
                if (bias) {
                    /* Learnt biases, so that the user's bias coordinate
                       would get a gradient if it were not masked. */
                    for (r = 0; r < 10; r++) {
                        mvw_mf_item(m, (uint32_t) r)[dim - 1] =
                            0.3f * ((float) r - 4.5f);
                    }
                }

                l = mvw_mf_loss_grad(m, 2, 3, weight, negs, 5, q, pq, gu, gp,
                                     gn);
                ref = reference_loss(m, loss, 2, 3, weight, negs, 5, q, pq);
                if (fabs(l - ref) > 1e-5 * (1.0 + fabs(ref))) {
                    fail_msg("%s: loss %.9g, want %.9g",
                             mvw_mf_loss_name(loss), l, ref);
                }
                assert_true(l >= 0.0);

                /* User row (the bias coordinate has gradient 0). */
                if (bias) {
                    assert_true(gu[dim - 1] == 0.0f);
                }
                for (j = 0; j < dim - (size_t) bias; j++) {
                    x = mvw_mf_user(m, 2) + j;
                    saved = *x;
                    *x = saved + h;
                    lp = mvw_mf_loss_grad(m, 2, 3, weight, negs, 5, q, pq,
                                          gu, gp, gn);
                    *x = saved - h;
                    lm = mvw_mf_loss_grad(m, 2, 3, weight, negs, 5, q, pq,
                                          gu, gp, gn);
                    *x = saved;
                    mvw_mf_loss_grad(m, 2, 3, weight, negs, 5, q, pq, gu,
                                     gp, gn);
                    fd = (lp - lm) / (2.0 * h);
                    an = gu[j];
                    if (fabs(fd - an) > 2e-3 * (1.0 + fabs(an))) {
                        fail_msg("%s bias %d q %d: d/du[%zu] fd %g an %g",
                                 mvw_mf_loss_name(loss), bias, with_q, j, fd,
                                 an);
                    }
                }

                /* Item rows: the sum over the row's occurrences. */
                for (r = 0; r < 4; r++) {
                    for (j = 0; j < dim; j++) {
                        x = mvw_mf_item(m, rows[r]) + j;
                        saved = *x;
                        *x = saved + h;
                        lp = mvw_mf_loss_grad(m, 2, 3, weight, negs, 5, q,
                                              pq, gu, gp, gn);
                        *x = saved - h;
                        lm = mvw_mf_loss_grad(m, 2, 3, weight, negs, 5, q,
                                              pq, gu, gp, gn);
                        *x = saved;
                        mvw_mf_loss_grad(m, 2, 3, weight, negs, 5, q, pq,
                                         gu, gp, gn);
                        fd = (lp - lm) / (2.0 * h);
                        an = rows[r] == 3 ? gp[j] : 0.0;
                        for (k = 0; k < 5; k++) {
                            if (negs[k] == rows[r]) {
                                an += gn[k * dim + j];
                            }
                        }
                        if (fabs(fd - an) > 2e-3 * (1.0 + fabs(an))) {
                            fail_msg("%s bias %d q %d: d/dv%u[%zu] fd %g "
                                     "an %g", mvw_mf_loss_name(loss), bias,
                                     with_q, (unsigned) rows[r], j, fd, an);
                        }
                    }
                }

                /* Items not in the example have no gradient row at all;
                   without negatives, bpr and softmax have nothing to
                   learn and logistic only the positive term. */
                l = mvw_mf_loss_grad(m, 2, 3, weight, NULL, 0, NULL, pq, gu,
                                     gp, NULL);
                ref = reference_loss(m, loss, 2, 3, weight, NULL, 0, NULL,
                                     pq);
                assert_true(fabs(l - ref) <= 1e-5 * (1.0 + ref));
                if (loss != MVW_MF_LOGISTIC) {
                    assert_true(l == 0.0);
                    for (j = 0; j < dim; j++) {
                        assert_true(gu[j] == 0.0f && gp[j] == 0.0f);
                    }
                }

                mvw_mf_free(m);
            }
        }
    }
}


/* Scores of +-1000 give finite losses and gradients. */
static void
test_stability(void **state)
{
    static const uint32_t negs[2] = { 1, 2 };
    mvw_mf_loss_t         loss;
    mvw_mf_t             *m;
    mv_err_t              err;
    float                 big[2] = { 40.0f, 25.0f }, gu[2], gp[2], gn[4];
    float                 neg[2] = { -40.0f, -25.0f };
    double                l;
    size_t                j;

    (void) state;
    for (loss = 0; loss < MVW_MF_N_LOSSES; loss++) {
        m = make(2, loss, MVW_OPTIM_SGD, 0, 1, 3, 1.0f);
        assert_int_equal(mvw_mf_set_user(m, 0, big, &err), MV_OK);

        /* Positive far above, negatives far below: loss ~ 0. */
        assert_int_equal(mvw_mf_set_item(m, 0, big, &err), MV_OK);
        assert_int_equal(mvw_mf_set_item(m, 1, neg, &err), MV_OK);
        assert_int_equal(mvw_mf_set_item(m, 2, neg, &err), MV_OK);
        l = mvw_mf_loss_grad(m, 0, 0, 1.0f, negs, 2, NULL, 0.0f, gu, gp, gn);
        assert_true(l >= 0.0 && l < 1e-300);

        /* The reverse: loss ~ 3 * 2225 (logistic), 2 * 4450 (bpr) or
           4450 + log 2 (softmax); gradients finite. */
        assert_int_equal(mvw_mf_set_item(m, 0, neg, &err), MV_OK);
        assert_int_equal(mvw_mf_set_item(m, 1, big, &err), MV_OK);
        assert_int_equal(mvw_mf_set_item(m, 2, big, &err), MV_OK);
        l = mvw_mf_loss_grad(m, 0, 0, 1.0f, negs, 2, NULL, 0.0f, gu, gp, gn);
        if (loss == MVW_MF_LOGISTIC) {
            assert_true(fabs(l - 3.0 * 2225.0) < 1e-6 * l);
        } else if (loss == MVW_MF_BPR) {
            assert_true(fabs(l - 2.0 * 4450.0) < 1e-6 * l);
        } else {
            assert_true(fabs(l - (4450.0 + log(2.0))) < 1e-6 * l);
        }
        for (j = 0; j < 2; j++) {
            assert_true(isfinite(gu[j]) && isfinite(gp[j]));
            assert_true(isfinite(gn[j]) && isfinite(gn[2 + j]));
        }

        mvw_mf_free(m);
    }
}


/*
 * With sgd (no state), one step must equal w -= lr * (sum of the row's
 * gradients + l2 * w), for the user, the positive, a negative repeated
 * twice and a negative equal to the positive.
 */
static void
test_step_sums_repeats(void **state)
{
    static const uint32_t negs[4] = { 4, 1, 4, 2 };
    mvw_mf_loss_t         loss;
    mvw_mf_t             *m;
    float                 gu[8], gp[8], gn[4 * 8], before[5][8], u0[8];
    float                 lr, l2;
    double                want, g;
    size_t                j, k;
    uint32_t              i;

    (void) state;
    for (loss = 0; loss < MVW_MF_N_LOSSES; loss++) {
        m = make(8, loss, MVW_OPTIM_SGD, 1, 3, 5, 5.0f);
        lr = mvw_mf_params(m)->lr;
        l2 = mvw_mf_params(m)->l2;

        mvw_mf_loss_grad(m, 1, 2, 0.9f, negs, 4, NULL, 0.0f, gu, gp, gn);
        memcpy(u0, mvw_mf_user(m, 1), sizeof(u0));
        for (i = 0; i < 5; i++) {
            memcpy(before[i], mvw_mf_item(m, i), sizeof(before[i]));
        }

        mvw_mf_step(m, 1, 2, 0.9f, negs, 4, NULL, 0.0f);

        for (j = 0; j < 7; j++) {
            want = u0[j] - lr * (gu[j] + l2 * u0[j]);
            assert_true(fabs(mvw_mf_user(m, 1)[j] - want) < 1e-6);
        }
        assert_true(mvw_mf_user(m, 1)[7] == 1.0f);

        for (i = 0; i < 5; i++) {
            for (j = 0; j < 8; j++) {
                g = i == 2 ? gp[j] : 0.0;
                for (k = 0; k < 4; k++) {
                    g += negs[k] == i ? gn[k * 8 + j] : 0.0f;
                }
                want = i == 0 || i == 3
                       ? before[i][j]
                       : before[i][j] - lr * (g + l2 * before[i][j]);
                if (fabs(mvw_mf_item(m, i)[j] - want) > 1e-6) {
                    fail_msg("%s item %u [%zu]: %g, want %g",
                             mvw_mf_loss_name(loss), (unsigned) i, j,
                             (double) mvw_mf_item(m, i)[j], want);
                }
            }
        }

        mvw_mf_free(m);
    }
}


/* Repeating one example lowers its loss, for every loss and optimiser;
   the users' bias coordinate stays exactly 1 (l2 > 0, adam momentum). */
static void
test_step_descends(void **state)
{
    static const uint32_t negs[4] = { 1, 2, 3, 4 };
    static const float    logq[4] = { -1.0f, -2.0f, -1.0f, -3.0f };
    mvw_mf_loss_t         loss;
    mvw_optim_kind_t      opt;
    mvw_mf_t             *m;
    double                first, last = 0.0;
    int                   s;
    uint32_t              u;

    (void) state;
    for (loss = 0; loss < MVW_MF_N_LOSSES; loss++) {
        for (opt = 0; opt < MVW_OPTIM_N_KINDS; opt++) {
            m = make(16, loss, opt, 1, 3, 6, 1.0f);
            first = mvw_mf_step(m, 0, 0, 1.0f, negs, 4, logq, -1.5f);
            for (s = 0; s < 200; s++) {
                last = mvw_mf_step(m, 0, 0, 1.0f, negs, 4, logq, -1.5f);
                assert_true(isfinite(last));
            }
            if (!(last < 0.5 * first)) {
                fail_msg("%s/%s: loss %g -> %g", mvw_mf_loss_name(loss),
                         mvw_optim_name(opt), first, last);
            }
            for (u = 0; u < 3; u++) {
                assert_true(mvw_mf_user(m, u)[15] == 1.0f);
            }
            /* The items' bias moved: up for the positive, down for the
               negatives. */
            assert_true(mvw_mf_item(m, 0)[15] > 0.0f);
            assert_true(mvw_mf_item(m, 1)[15] < 0.0f);
            mvw_mf_free(m);
        }
    }
}


static void
test_growth_and_set(void **state)
{
    mvw_mf_t  *m;
    mv_err_t   err;
    float     *copy, vecs[3 * 6], bad[6] = { 1, 2, NAN, 4, 5, 6 };
    size_t     i, n;

    (void) state;
    m = make(6, MVW_MF_BPR, MVW_OPTIM_ADAM, 1, 10, 7, 1.0f);
    assert_int_equal(mvw_mf_n_users(m), 10);
    assert_int_equal(mvw_mf_n_items(m), 7);
    assert_int_equal(mvw_mf_dim(m), 6);

    /* Drawn rows: users have bias 1, items 0, and they are distinct. */
    for (i = 0; i < 10; i++) {
        assert_true(mvw_mf_user(m, (uint32_t) i)[5] == 1.0f);
        assert_true(mvw_mf_user(m, (uint32_t) i)[0] != 0.0f);
    }
    for (i = 0; i < 7; i++) {
        assert_true(mvw_mf_item(m, (uint32_t) i)[5] == 0.0f);
        assert_true(mvw_mf_item(m, (uint32_t) i)[4] != 0.0f);
    }
    assert_memory_not_equal(mvw_mf_item(m, 0), mvw_mf_item(m, 1),
                            5 * sizeof(float));

    copy = malloc(10 * 6 * sizeof(float));
    assert_non_null(copy);
    memcpy(copy, mvw_mf_user(m, 0), 10 * 6 * sizeof(float));

    /* Growth one row at a time, then in bulk: old rows unchanged. */
    for (n = 0; n < 300; n++) {
        assert_int_equal(mvw_mf_add_users(m, 1, NULL, &err), MV_OK);
    }
    assert_int_equal(mvw_mf_add_users(m, 5000, NULL, &err), MV_OK);
    assert_int_equal(mvw_mf_n_users(m), 5310);
    assert_memory_equal(copy, mvw_mf_user(m, 0), 10 * 6 * sizeof(float));
    assert_true(mvw_mf_user(m, 5309)[5] == 1.0f);

    /* Given vectors: copied, the user bias forced to 1. */
    for (i = 0; i < 18; i++) {
        vecs[i] = (float) i;
    }
    assert_int_equal(mvw_mf_add_items(m, 3, vecs, &err), MV_OK);
    assert_int_equal(mvw_mf_n_items(m), 10);
    assert_memory_equal(mvw_mf_item(m, 7), vecs, sizeof(vecs));
    assert_int_equal(mvw_mf_add_users(m, 3, vecs, &err), MV_OK);
    assert_true(mvw_mf_user(m, 5310)[5] == 1.0f);
    assert_true(mvw_mf_user(m, 5312)[4] == 16.0f);
    assert_true(mvw_mf_user(m, 5312)[5] == 1.0f);

    /* A non-finite value: refused, nothing added. */
    assert_int_equal(mvw_mf_add_items(m, 1, bad, &err), MV_ERR);
    assert_string_equal(err.msg, "item vector 0 has a non-finite value");
    assert_int_equal(mvw_mf_n_items(m), 10);
    assert_int_equal(mvw_mf_add_items(m, 0, NULL, &err), MV_OK);

    /* New rows are trainable (their optimiser state exists). */
    {
        uint32_t neg = 9;

        assert_true(isfinite(mvw_mf_step(m, 5312, 8, 1.0f, &neg, 1, NULL,
                                         0.0f)));
    }

    /* set_user / set_item. */
    assert_int_equal(mvw_mf_set_user(m, 3, vecs, &err), MV_OK);
    assert_memory_equal(mvw_mf_user(m, 3), vecs, 5 * sizeof(float));
    assert_true(mvw_mf_user(m, 3)[5] == 1.0f);
    assert_int_equal(mvw_mf_set_item(m, 2, vecs + 6, &err), MV_OK);
    assert_memory_equal(mvw_mf_item(m, 2), vecs + 6, 6 * sizeof(float));
    assert_int_equal(mvw_mf_set_user(m, 5313, vecs, &err), MV_ERR);
    assert_string_equal(err.msg, "user 5313 out of range (5313 users)");
    assert_int_equal(mvw_mf_set_item(m, 10, vecs, &err), MV_ERR);
    assert_string_equal(err.msg, "item 10 out of range (10 items)");
    assert_int_equal(mvw_mf_set_item(m, 2, bad, &err), MV_ERR);
    assert_memory_equal(mvw_mf_item(m, 2), vecs + 6, 6 * sizeof(float));

    free(copy);
    mvw_mf_free(m);
}


/* set_item resets adam's state: the next step is a first step again,
   which moves every coordinate by about lr. */
static void
test_set_resets_optimiser(void **state)
{
    static const uint32_t negs[1] = { 1 };
    mvw_mf_t             *m;
    mv_err_t              err;
    float                 v[4] = { 0.5f, -0.5f, 0.25f, 0.0f }, before[4];
    int                   s;
    size_t                j;

    (void) state;
    m = make(4, MVW_MF_LOGISTIC, MVW_OPTIM_ADAM, 0, 1, 2, 1.0f);
    for (s = 0; s < 50; s++) {
        mvw_mf_step(m, 0, 0, 1.0f, negs, 1, NULL, 0.0f);
    }

    assert_int_equal(mvw_mf_set_item(m, 0, v, &err), MV_OK);
    memcpy(before, mvw_mf_item(m, 0), sizeof(before));
    mvw_mf_step(m, 0, 0, 1.0f, negs, 1, NULL, 0.0f);
    for (j = 0; j < 4; j++) {
        assert_true(fabs(fabs(mvw_mf_item(m, 0)[j] - before[j]) - 0.01)
                    < 1e-4);
    }

    mvw_mf_free(m);
}


static void
test_score(void **state)
{
    mvw_mf_t  *m;
    uint32_t   users[300];
    float     *out;
    size_t     k, i, dim = 64;
    double     want;

    (void) state;
    m = make((uint32_t) dim, MVW_MF_SOFTMAX, MVW_OPTIM_SGD, 1, 50, 333,
             3.0f);
    for (k = 0; k < 300; k++) {
        users[k] = (uint32_t) ((k * 17 + 3) % 50);
    }
    out = malloc(300 * 333 * sizeof(float));
    assert_non_null(out);

    mvw_mf_score(m, users, 300, out);
    for (k = 0; k < 300; k++) {
        for (i = 0; i < 333; i++) {
            want = naive_dot(mvw_mf_user(m, users[k]),
                             mvw_mf_item(m, (uint32_t) i), dim);
            if (fabs(out[k * 333 + i] - want) > 1e-5 * (1.0 + fabs(want))) {
                fail_msg("score[%zu][%zu] = %g, want %g", k, i,
                         (double) out[k * 333 + i], want);
            }
        }
    }

    mvw_mf_score(m, users, 0, out);
    free(out);
    mvw_mf_free(m);
}


/* More negatives than the scratch was made for: it grows. */
static void
test_many_negatives(void **state)
{
    uint32_t   negs[300];
    float      logq[300];
    mvw_mf_t  *m;
    double     l;
    size_t     k;

    (void) state;
    m = make(12, MVW_MF_SOFTMAX, MVW_OPTIM_ADAGRAD, 1, 2, 500, 1.0f);
    for (k = 0; k < 300; k++) {
        negs[k] = (uint32_t) ((k * 7) % 97);     /* many repeats */
        logq[k] = -4.0f;
    }
    for (k = 0; k < 5; k++) {
        l = mvw_mf_step(m, 1, 499, 1.0f, negs, 300, logq, -4.0f);
        assert_true(isfinite(l) && l > 0.0);
        l = mvw_mf_step(m, 0, 3, 1.0f, negs, 65, NULL, 0.0f);
        assert_true(isfinite(l) && l > 0.0);
    }
    mvw_mf_free(m);
}


/*
 * 50 users, 40 items: users 0-24 like items 0-19, users 25-49 items 20-39.
 * Each user has 8 positives drawn from its block.  After training with
 * negatives from the sampler (popularity^0.75, log-Q for the softmax), the
 * AUC of each user's positives against the other block's items is near 1,
 * and against every non-positive item is high.
 */
static void
test_synthetic_ranking(void **state)
{
    mvw_mf_loss_t     loss;
    mvw_optim_kind_t  opt;
    mvw_sampler_t     smp;
    mvw_mf_t         *m;
    mv_rng_t          rng;
    mv_err_t          err;
    uint8_t           liked[50][40];
    uint32_t          pairs[400][2], negs[4];
    double            counts[40];
    float             logq[4], scores[50 * 40];
    uint32_t          users[50];
    size_t            n_pairs = 0, e, p, k, u, i, j;
    double            auc_block, auc_all, won, total, won_b, total_b;

    (void) state;
    memset(liked, 0, sizeof(liked));
    memset(counts, 0, sizeof(counts));
    mv_rng_seed(&rng, 99);
    for (u = 0; u < 50; u++) {
        users[u] = (uint32_t) u;
        while (n_pairs < (u + 1) * 8) {
            i = (u < 25 ? 0 : 20) + (size_t) (mv_rng_uniform(&rng) * 20);
            if (!liked[u][i]) {
                liked[u][i] = 1;
                pairs[n_pairs][0] = (uint32_t) u;
                pairs[n_pairs][1] = (uint32_t) i;
                counts[i] += 1.0;
                n_pairs++;
            }
        }
    }
    mvw_sampler_init(&smp);
    assert_int_equal(mvw_sampler_build(&smp, counts, 40, 0.75, &err), MV_OK);

    for (loss = 0; loss < MVW_MF_N_LOSSES; loss++) {
        for (opt = 0; opt < MVW_OPTIM_N_KINDS; opt++) {
            m = make(16, loss, opt, 1, 50, 40, 1.0f);

            for (e = 0; e < 60; e++) {
                for (p = 0; p < n_pairs; p++) {
                    size_t q = (size_t) (mv_rng_uniform(&rng)
                                         * (double) n_pairs);

                    for (k = 0; k < 4; k++) {
                        negs[k] = mvw_sampler_draw(&smp, &rng);
                        logq[k] = (float) log(mvw_sampler_prob(&smp,
                                                               negs[k]));
                    }
                    mvw_mf_step(m, pairs[q][0], pairs[q][1], 1.0f, negs, 4,
                                logq,
                                (float) log(mvw_sampler_prob(&smp,
                                                             pairs[q][1])));
                }
            }

            mvw_mf_score(m, users, 50, scores);
            won = total = won_b = total_b = 0.0;
            for (u = 0; u < 50; u++) {
                for (i = 0; i < 40; i++) {
                    if (!liked[u][i]) {
                        continue;
                    }
                    for (j = 0; j < 40; j++) {
                        if (liked[u][j]) {
                            continue;
                        }
                        won += scores[u * 40 + i] > scores[u * 40 + j];
                        total += 1.0;
                        if ((u < 25) != (j < 20)) {
                            won_b += scores[u * 40 + i] > scores[u * 40 + j];
                            total_b += 1.0;
                        }
                    }
                }
            }
            auc_all = won / total;
            auc_block = won_b / total_b;
            if (auc_block < 0.99 || auc_all < 0.95) {
                fail_msg("%s/%s: AUC %.3f vs other block, %.3f vs all",
                         mvw_mf_loss_name(loss), mvw_optim_name(opt),
                         auc_block, auc_all);
            }
            print_message("%-8s %-8s AUC %.3f vs other block, %.3f vs all\n",
                          mvw_mf_loss_name(loss), mvw_optim_name(opt),
                          auc_block, auc_all);
            mvw_mf_free(m);
        }
    }

    mvw_sampler_free(&smp);
}


static void
test_names_and_params(void **state)
{
    mvw_mf_params_t  p;
    mvw_mf_loss_t    l, got;
    mv_err_t         err;
    size_t           i;
    static const char *bad_names[] = { "", "BPR", "softmax ", "warp" };
    static const struct {
        int          field;
        const char  *msg;
    } bad[] = {
        { 0, "dim 0 is not in 1 .. 4096" },
        { 1, "dim 4097 is not in 1 .. 4096" },
        { 2, "item_bias needs dim >= 2" },
        { 3, "unknown loss 3" },
        { 4, "adagrad: lr -1 must be a positive number" },
        { 5, "sparse init: density 0 is not in (0, 1]" },
        { 6, "xavier_normal init: scale inf is not finite" },
        { 7, "unknown initialiser 12" },
        { 8, "unknown optimiser 3" },
    };

    (void) state;
    for (l = 0; l < MVW_MF_N_LOSSES; l++) {
        assert_int_equal(mvw_mf_loss_from_name(mvw_mf_loss_name(l), &got),
                         MV_OK);
        assert_int_equal(got, l);
    }
    assert_string_equal(mvw_mf_loss_name(MVW_MF_SOFTMAX), "softmax");
    assert_string_equal(mvw_mf_loss_name(MVW_MF_N_LOSSES), "unknown");
    for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        assert_int_equal(mvw_mf_loss_from_name(bad_names[i], &got), MV_ERR);
    }
    assert_int_equal(mvw_mf_loss_from_name(NULL, &got), MV_ERR);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mvw_mf_params_default(&p);
        switch (bad[i].field) {
        case 0: p.dim = 0; break;
        case 1: p.dim = 4097; break;
        case 2: p.dim = 1; p.item_bias = 1; break;
        case 3: p.loss = MVW_MF_N_LOSSES; break;
        case 4: p.lr = -1.0f; break;
        case 5: p.init = MVW_INIT_SPARSE; p.init_density = 0.0f; break;
        case 6: p.init_scale = INFINITY; break;
        case 7: p.init = (mvw_init_kind_t) 12; break;
        default: p.optim = MVW_OPTIM_N_KINDS; break;
        }
        assert_null(mvw_mf_new(&p, &err));
        assert_string_equal(err.msg, bad[i].msg);
    }
    mvw_mf_free(NULL);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_and_gradients),
        cmocka_unit_test(test_stability),
        cmocka_unit_test(test_step_sums_repeats),
        cmocka_unit_test(test_step_descends),
        cmocka_unit_test(test_growth_and_set),
        cmocka_unit_test(test_set_resets_optimiser),
        cmocka_unit_test(test_score),
        cmocka_unit_test(test_many_negatives),
        cmocka_unit_test(test_synthetic_ranking),
        cmocka_unit_test(test_names_and_params),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
