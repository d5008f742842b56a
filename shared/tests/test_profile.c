/*
 * test_profile.c -- unit tests of profile.c: the time-decayed, weighted
 * profile vector (checked against the formula by hand), cancellation, and
 * the blend with the model vector for each alpha, a missing side, and the
 * cosine normalisation.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "profile.h"


#define NOW   INT64_C(1700000000000)
#define HOUR  3600000.0
#define EPS   1e-6


static void
assert_vec_near(const float *got, const double *want, uint32_t dim)
{
    uint32_t  j;

    for (j = 0; j < dim; j++) {
        if (fabs((double) got[j] - want[j]) > EPS) {
            fail_msg("component %u: got %.9g, want %.9g", j,
                     (double) got[j], want[j]);
        }
    }
}


static double
norm(const float *v, uint32_t dim)
{
    double    s = 0.0;
    uint32_t  j;

    for (j = 0; j < dim; j++) {
        s += (double) v[j] * v[j];
    }
    return sqrt(s);
}


static void
test_single_term(void **state)
{
    static const float  v[3] = { 3.0f, 4.0f, 0.0f };
    static const float  unit[3] = { 0.6f, 0.8f, 0.0f };
    mv_profile_term_t   t = { v, NOW, 2.0f };
    float               p[3], q[3];
    const double        twice[3] = { 6.0, 8.0, 0.0 };
    const double        normalised[3] = { 0.6, 0.8, 0.0 };

    (void) state;

    /* p = w v at age 0; from p alone the query is v / |v|. */
    assert_int_equal(mv_profile_vector(&t, 1, 3, NOW, HOUR, p), MV_OK);
    assert_vec_near(p, twice, 3);
    assert_int_equal(mv_profile_blend(NULL, p, 3, 0.3f, 0, q), MV_OK);
    assert_vec_near(q, normalised, 3);
    assert_int_equal(mv_profile_blend(NULL, p, 3, 0.3f, 1, q), MV_OK);
    assert_vec_near(q, normalised, 3);

    /* A unit vector with weight 1 comes out exactly. */
    t.vec = unit;
    t.weight = 1.0f;
    assert_int_equal(mv_profile_vector(&t, 1, 3, NOW, HOUR, p), MV_OK);
    assert_memory_equal(p, unit, sizeof(unit));

    /* An action in the future counts as now. */
    t.time_ms = NOW + 5 * 3600000;
    assert_int_equal(mv_profile_vector(&t, 1, 3, NOW, HOUR, p), MV_OK);
    assert_memory_equal(p, unit, sizeof(unit));
}


static void
test_decay(void **state)
{
    static const float  e1[2] = { 1.0f, 0.0f };
    static const float  e2[2] = { 0.0f, 1.0f };
    mv_profile_term_t   t[2] = {
        { e1, NOW, 1.0f },
        { e2, NOW - 3600000, 1.0f },
    };
    float               p[2];
    double              want[2];

    (void) state;

    /* One half-life old: half the weight. */
    assert_int_equal(mv_profile_vector(t, 2, 2, NOW, HOUR, p), MV_OK);
    want[0] = 1.0;
    want[1] = 0.5;
    assert_vec_near(p, want, 2);

    /* Two half-lives: a quarter; 90 minutes: 2^-1.5. */
    t[1].time_ms = NOW - 2 * 3600000;
    assert_int_equal(mv_profile_vector(t, 2, 2, NOW, HOUR, p), MV_OK);
    want[1] = 0.25;
    assert_vec_near(p, want, 2);
    t[1].time_ms = NOW - 5400000;
    assert_int_equal(mv_profile_vector(t, 2, 2, NOW, HOUR, p), MV_OK);
    want[1] = pow(2.0, -1.5);
    assert_vec_near(p, want, 2);

    /* Both aged the same: only the ratio of weights matters after the
       blend. */
    t[0].time_ms = NOW - 3600000;
    t[1].time_ms = NOW - 3600000;
    t[1].weight = 3.0f;
    assert_int_equal(mv_profile_vector(t, 2, 2, NOW, 2 * HOUR, p), MV_OK);
    want[0] = pow(2.0, -0.5);
    want[1] = 3.0 * pow(2.0, -0.5);
    assert_vec_near(p, want, 2);

    /* half_life <= 0: no decay. */
    t[1].weight = 1.0f;
    t[1].time_ms = NOW - 100 * 3600000LL;
    assert_int_equal(mv_profile_vector(t, 2, 2, NOW, 0.0, p), MV_OK);
    want[0] = 1.0;
    want[1] = 1.0;
    assert_vec_near(p, want, 2);
    assert_int_equal(mv_profile_vector(t, 2, 2, NOW, -5.0, p), MV_OK);
    assert_vec_near(p, want, 2);

    /* Extreme times do not overflow. */
    t[0].time_ms = INT64_MIN;
    t[1].time_ms = NOW;
    assert_int_equal(mv_profile_vector(t, 2, 2, INT64_MAX, HOUR, p), MV_ERR);
    assert_int_equal(mv_profile_vector(t, 2, 2, NOW, HOUR, p), MV_OK);
    want[0] = 0.0;
    want[1] = 1.0;
    assert_vec_near(p, want, 2);
}


static void
test_negative_and_cancel(void **state)
{
    static const float  e1[2] = { 1.0f, 0.0f };
    static const float  e2[2] = { 0.0f, 1.0f };
    static const float  a[2] = { 0.6f, 0.8f };
    mv_profile_term_t   t[3] = {
        { e1, NOW, 1.0f },
        { e2, NOW, -0.5f },
        { a, NOW, 1.0f },
    };
    float               p[2];
    double              want[2] = { 1.0, -0.5 };

    (void) state;

    /* A Dislike pulls away. */
    assert_int_equal(mv_profile_vector(t, 2, 2, NOW, HOUR, p), MV_OK);
    assert_vec_near(p, want, 2);

    /* A single negative term is a valid (opposite) direction. */
    assert_int_equal(mv_profile_vector(t + 1, 1, 2, NOW, HOUR, p), MV_OK);
    want[0] = 0.0;
    want[1] = -0.5;
    assert_vec_near(p, want, 2);

    /* Like and Dislike of the same item at the same time cancel. */
    t[0].vec = a;
    t[1].vec = a;
    t[1].weight = -1.0f;
    assert_int_equal(mv_profile_vector(t, 2, 2, NOW, HOUR, p), MV_ERR);
    assert_int_equal(mv_profile_vector(t, 3, 2, NOW, HOUR, p), MV_OK);
    want[0] = 0.6;
    want[1] = 0.8;
    assert_vec_near(p, want, 2);

    /* Zero weights, no terms, an ancient history, bad arguments. */
    t[0].weight = 0.0f;
    assert_int_equal(mv_profile_vector(t, 1, 2, NOW, HOUR, p), MV_ERR);
    assert_int_equal(mv_profile_vector(t, 0, 2, NOW, HOUR, p), MV_ERR);
    assert_int_equal(mv_profile_vector(NULL, 1, 2, NOW, HOUR, p), MV_ERR);
    t[2].time_ms = NOW - 50 * 3600000LL;      /* 2^-50: near zero */
    assert_int_equal(mv_profile_vector(t + 2, 1, 2, NOW, HOUR, p), MV_ERR);
    t[2].time_ms = NOW - 30 * 3600000LL;      /* 2^-30: still a direction */
    assert_int_equal(mv_profile_vector(t + 2, 1, 2, NOW, HOUR, p), MV_OK);
    assert_true(fabs(p[0] / p[1] - 0.75) < EPS);
    assert_int_equal(mv_profile_vector(t + 2, 1, 0, NOW, HOUR, p), MV_ERR);
    t[2].vec = NULL;
    assert_int_equal(mv_profile_vector(t + 2, 1, 2, NOW, HOUR, p), MV_ERR);

    /* Non-finite input never yields a vector. */
    t[2].vec = a;
    t[2].time_ms = NOW;
    t[2].weight = INFINITY;
    assert_int_equal(mv_profile_vector(t + 2, 1, 2, NOW, HOUR, p), MV_ERR);
    t[2].weight = NAN;
    assert_int_equal(mv_profile_vector(t + 2, 1, 2, NOW, HOUR, p), MV_ERR);
}


static void
test_blend(void **state)
{
    static const float  u[3] = { 3.0f, 4.0f, 0.0f };     /* |u| = 5 */
    static const float  p[3] = { 0.0f, 0.0f, 2.0f };     /* |p| = 2 */
    float               q[3], tmp[3];
    double              want[3];
    const double        r = sqrt(0.5);

    (void) state;

    /* alpha 0: u / |u|; alpha 1: p / |p|. */
    assert_int_equal(mv_profile_blend(u, p, 3, 0.0f, 0, q), MV_OK);
    want[0] = 0.6;
    want[1] = 0.8;
    want[2] = 0.0;
    assert_vec_near(q, want, 3);
    assert_int_equal(mv_profile_blend(u, p, 3, 1.0f, 0, q), MV_OK);
    want[0] = 0.0;
    want[1] = 0.0;
    want[2] = 1.0;
    assert_vec_near(q, want, 3);

    /* alpha 0.5: (0.3, 0.4, 0.5), norm sqrt(0.5); normalised /sqrt(0.5). */
    assert_int_equal(mv_profile_blend(u, p, 3, 0.5f, 0, q), MV_OK);
    want[0] = 0.3;
    want[1] = 0.4;
    want[2] = 0.5;
    assert_vec_near(q, want, 3);
    assert_true(fabs(norm(q, 3) - r) < EPS);
    assert_int_equal(mv_profile_blend(u, p, 3, 0.5f, 1, q), MV_OK);
    want[0] = 0.3 / r;
    want[1] = 0.4 / r;
    want[2] = 0.5 / r;
    assert_vec_near(q, want, 3);
    assert_true(fabs(norm(q, 3) - 1.0) < EPS);

    /* alpha 0.25: 0.75 * (0.6, 0.8, 0) + 0.25 * (0, 0, 1). */
    assert_int_equal(mv_profile_blend(u, p, 3, 0.25f, 0, q), MV_OK);
    want[0] = 0.45;
    want[1] = 0.6;
    want[2] = 0.25;
    assert_vec_near(q, want, 3);

    /* A missing side: the other alone, whatever alpha. */
    assert_int_equal(mv_profile_blend(NULL, p, 3, 0.0f, 0, q), MV_OK);
    want[0] = 0.0;
    want[1] = 0.0;
    want[2] = 1.0;
    assert_vec_near(q, want, 3);
    assert_int_equal(mv_profile_blend(u, NULL, 3, 1.0f, 0, q), MV_OK);
    want[0] = 0.6;
    want[1] = 0.8;
    want[2] = 0.0;
    assert_vec_near(q, want, 3);
    assert_int_equal(mv_profile_blend(u, NULL, 3, 0.5f, 1, q), MV_OK);
    assert_vec_near(q, want, 3);
    assert_int_equal(mv_profile_blend(NULL, NULL, 3, 0.5f, 1, q), MV_ERR);

    /* A zero side counts as missing. */
    memset(tmp, 0, sizeof(tmp));
    assert_int_equal(mv_profile_blend(tmp, p, 3, 0.5f, 0, q), MV_OK);
    want[0] = 0.0;
    want[1] = 0.0;
    want[2] = 1.0;
    assert_vec_near(q, want, 3);
    assert_int_equal(mv_profile_blend(tmp, NULL, 3, 0.5f, 0, q), MV_ERR);
    assert_int_equal(mv_profile_blend(tmp, tmp, 3, 0.5f, 1, q), MV_ERR);

    /* Opposite directions at alpha 0.5 cancel. */
    tmp[0] = -6.0f;
    tmp[1] = -8.0f;
    tmp[2] = 0.0f;
    assert_int_equal(mv_profile_blend(u, tmp, 3, 0.5f, 0, q), MV_ERR);
    assert_int_equal(mv_profile_blend(u, tmp, 3, 0.5f, 1, q), MV_ERR);
    assert_int_equal(mv_profile_blend(u, tmp, 3, 0.25f, 1, q), MV_OK);
    want[0] = 0.6;
    want[1] = 0.8;
    want[2] = 0.0;
    assert_vec_near(q, want, 3);

    /* Bad alpha, non-finite input, dim 0. */
    assert_int_equal(mv_profile_blend(u, p, 3, -0.1f, 0, q), MV_ERR);
    assert_int_equal(mv_profile_blend(u, p, 3, 1.1f, 0, q), MV_ERR);
    assert_int_equal(mv_profile_blend(u, p, 3, NAN, 0, q), MV_ERR);
    tmp[0] = INFINITY;
    assert_int_equal(mv_profile_blend(u, tmp, 3, 0.5f, 0, q), MV_ERR);
    assert_int_equal(mv_profile_blend(u, p, 0, 0.5f, 0, q), MV_ERR);

    /* In place over either input. */
    memcpy(tmp, u, sizeof(tmp));
    assert_int_equal(mv_profile_blend(tmp, p, 3, 0.5f, 0, tmp), MV_OK);
    want[0] = 0.3;
    want[1] = 0.4;
    want[2] = 0.5;
    assert_vec_near(tmp, want, 3);
    memcpy(tmp, p, sizeof(tmp));
    assert_int_equal(mv_profile_blend(u, tmp, 3, 0.5f, 0, tmp), MV_OK);
    assert_vec_near(tmp, want, 3);
}


/*
 * The inner product's blend keeps the model vector's scale: u itself
 * without a profile (the scores are then the model's own dot products),
 * |u| times the blend with one, the unit blend for a profile alone.
 */
static void
test_blend_user_norm(void **state)
{
    static const float  u[3] = { 3.0f, 4.0f, 0.0f };     /* |u| = 5 */
    static const float  p[3] = { 0.0f, 0.0f, 2.0f };     /* |p| = 2 */
    static const float  odd[3] = { 0.3f, -1.7f, 1e-3f };
    float               q[3], tmp[3];
    double              want[3];
    size_t              j;

    (void) state;

    /* No profile, or alpha 0: u bit for bit. */
    assert_int_equal(mv_profile_blend(odd, NULL, 3, 0.4f, MV_BLEND_USER_NORM,
                                      q), MV_OK);
    assert_memory_equal(q, odd, sizeof(q));
    assert_int_equal(mv_profile_blend(odd, p, 3, 0.0f, MV_BLEND_USER_NORM,
                                      q), MV_OK);
    assert_memory_equal(q, odd, sizeof(q));

    /* alpha 0.5: 5 * ((0.3, 0.4, 0) + (0, 0, 0.5)) */
    assert_int_equal(mv_profile_blend(u, p, 3, 0.5f, MV_BLEND_USER_NORM, q),
                     MV_OK);
    want[0] = 1.5;
    want[1] = 2.0;
    want[2] = 2.5;
    assert_vec_near(q, want, 3);

    /* alpha 1: the profile's direction at u's scale */
    assert_int_equal(mv_profile_blend(u, p, 3, 1.0f, MV_BLEND_USER_NORM, q),
                     MV_OK);
    want[0] = 0.0;
    want[1] = 0.0;
    want[2] = 5.0;
    assert_vec_near(q, want, 3);

    /* No model vector (or a zero one): p / |p| as for the other metrics */
    assert_int_equal(mv_profile_blend(NULL, p, 3, 0.3f, MV_BLEND_USER_NORM,
                                      q), MV_OK);
    want[0] = 0.0;
    want[1] = 0.0;
    want[2] = 1.0;
    assert_vec_near(q, want, 3);
    memset(tmp, 0, sizeof(tmp));
    assert_int_equal(mv_profile_blend(tmp, p, 3, 0.3f, MV_BLEND_USER_NORM,
                                      q), MV_OK);
    assert_vec_near(q, want, 3);

    /* Same direction as MV_BLEND_PLAIN, |u| times longer. */
    assert_int_equal(mv_profile_blend(u, p, 3, 0.25f, MV_BLEND_PLAIN, tmp),
                     MV_OK);
    assert_int_equal(mv_profile_blend(u, p, 3, 0.25f, MV_BLEND_USER_NORM, q),
                     MV_OK);
    for (j = 0; j < 3; j++) {
        want[j] = 5.0 * tmp[j];
    }
    assert_vec_near(q, want, 3);

    /* In place, cancelling, overflow, unknown scale */
    memcpy(tmp, u, sizeof(tmp));
    assert_int_equal(mv_profile_blend(tmp, p, 3, 0.5f, MV_BLEND_USER_NORM,
                                      tmp), MV_OK);
    want[0] = 1.5;
    want[1] = 2.0;
    want[2] = 2.5;
    assert_vec_near(tmp, want, 3);
    tmp[0] = -6.0f;
    tmp[1] = -8.0f;
    tmp[2] = 0.0f;
    assert_int_equal(mv_profile_blend(u, tmp, 3, 0.5f, MV_BLEND_USER_NORM, q),
                     MV_ERR);
    tmp[0] = 3e38f;                 /* |u| = 4.2e38 > FLT_MAX */
    tmp[1] = 3e38f;
    tmp[2] = 0.0f;
    assert_int_equal(mv_profile_blend(tmp, p, 3, 0.5f, MV_BLEND_USER_NORM, q),
                     MV_OK);        /* (1.5e38, 1.5e38, 2.1e38) */
    assert_int_equal(mv_profile_blend(tmp, p, 3, 0.9f, MV_BLEND_USER_NORM, q),
                     MV_ERR);       /* 0.9 * 4.2e38 overflows float */
    assert_int_equal(mv_profile_blend(u, p, 3, 0.5f, 3, q), MV_ERR);
    assert_int_equal(mv_profile_blend(u, p, 3, 0.5f, -1, q), MV_ERR);
}


/* The two steps together, the way a query is built. */
static void
test_profile_then_blend(void **state)
{
    static const float  i1[4] = { 1.0f, 0.0f, 0.0f, 0.0f };
    static const float  i2[4] = { 0.0f, 1.0f, 0.0f, 0.0f };
    static const float  u[4] = { 0.0f, 0.0f, 0.0f, 2.0f };
    mv_profile_term_t   t[2] = {
        { i1, NOW - 1800000, 1.0f },         /* half a half-life */
        { i2, NOW - 3600000, 2.0f },         /* one half-life */
    };
    float               p[4], q[4];
    double              want[4], a, b, n;

    (void) state;

    /* p = (2^-0.5, 2 * 2^-1, 0, 0) */
    assert_int_equal(mv_profile_vector(t, 2, 4, NOW, HOUR, p), MV_OK);
    a = pow(2.0, -0.5);
    b = 1.0;
    want[0] = a;
    want[1] = b;
    want[2] = 0.0;
    want[3] = 0.0;
    assert_vec_near(p, want, 4);

    /* q = 0.7 (0,0,0,1) + 0.3 p / |p|, then normalised. */
    assert_int_equal(mv_profile_blend(u, p, 4, 0.3f, 1, q), MV_OK);
    n = sqrt(a * a + b * b);
    want[0] = 0.3 * a / n;
    want[1] = 0.3 * b / n;
    want[2] = 0.0;
    want[3] = (1.0 - 0.3f);
    n = sqrt(want[0] * want[0] + want[1] * want[1] + want[3] * want[3]);
    want[0] /= n;
    want[1] /= n;
    want[3] /= n;
    assert_vec_near(q, want, 4);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_term),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_negative_and_cancel),
        cmocka_unit_test(test_blend),
        cmocka_unit_test(test_blend_user_norm),
        cmocka_unit_test(test_profile_then_blend),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
