/*
 * profile.c -- the real-time profile vector and the query blend (see
 * profile.h for the formulas).
 *
 * The dimension is small (tens to a few hundred), so these are plain loops.
 * Per-term coefficients (weight times decay) and every norm are computed in
 * double; the sum itself accumulates in out[] as floats, one term at a time
 * (there is no scratch memory to accumulate in double).  2^(-age /
 * half_life) is exp2(); ages are computed in double, so no time difference
 * can overflow, and a negative age (an action stamped in the future) counts
 * as 0.
 *
 * "Near zero" means a norm below MV_PROFILE_EPS (1e-12), compared squared.
 * It is an absolute threshold: terms cancelling each other out (a Like and
 * a Dislike of the same item at the same time) land there, and so does a
 * history so old that every decay factor is below ~1e-12 (40 half-lives),
 * which is as good as no recent history.
 *
 * A non-finite value anywhere (a weight, a vector component, an overflow)
 * makes the norm non-finite and the call fails the same way: such a vector
 * must never reach a search.
 *
 * Blend.  A side is dropped when it is NULL or its norm is near zero (its
 * direction is undefined); with one side dropped the other is used alone,
 * whatever alpha is.  With both present, q = (1 - alpha) u/|u| + alpha
 * p/|p|.  The result may be written over either input (each component is
 * read before it is written).  MV_BLEND_USER_NORM computes |u| q as
 * (1 - alpha) u + alpha |u| p/|p|, so alpha 0 (or no profile) gives back
 * u's own values, not a rounded u/|u| * |u|.
 */
#include <math.h>
#include <string.h>

#include "profile.h"


#define MV_PROFILE_EPS    1e-12
#define MV_PROFILE_EPS2   (MV_PROFILE_EPS * MV_PROFILE_EPS)


/* Squared L2 norm of v, in double. */
static double
norm2(const float *v, uint32_t dim)
{
    double    s = 0.0;
    uint32_t  j;

    for (j = 0; j < dim; j++) {
        s += (double) v[j] * (double) v[j];
    }

    return s;
}


/* 1 when a squared norm makes a usable direction: finite, not near 0. */
static int
norm2_ok(double n2)
{
    return isfinite(n2) && n2 >= MV_PROFILE_EPS2;
}


/*
 * p = sum_i w_i * 2^(-age_i / half_life) * v_i into out[dim] (out must not
 * be one of the terms' vectors).  Returns MV_OK, or MV_ERR when there is no
 * term, a term has no vector, dim is 0, or p is near zero or not finite.
 */
int
mv_profile_vector(const mv_profile_term_t *terms, size_t n, uint32_t dim,
    int64_t now_ms, double half_life_ms, float *out)
{
    size_t    i;
    uint32_t  j;
    double    age, c;

    if (terms == NULL || n == 0 || dim == 0 || out == NULL) {
        return MV_ERR;
    }

    memset(out, 0, (size_t) dim * sizeof(float));

    for (i = 0; i < n; i++) {
        if (terms[i].vec == NULL) {
            return MV_ERR;
        }

        c = (double) terms[i].weight;
        if (half_life_ms > 0.0) {
            age = (double) now_ms - (double) terms[i].time_ms;
            if (age < 0.0) {
                age = 0.0;
            }
            c *= exp2(-age / half_life_ms);
        }
        if (c == 0.0) {
            continue;           /* decayed away, or a zero weight */
        }

        for (j = 0; j < dim; j++) {
            out[j] = (float) ((double) out[j]
                              + c * (double) terms[i].vec[j]);
        }
    }

    return norm2_ok(norm2(out, dim)) ? MV_OK : MV_ERR;
}


/*
 * q = (1 - alpha) u/|u| + alpha p/|p| into out[dim], a side dropped when
 * NULL or near zero, then scaled as asked.  out may be user_vec or
 * profile_vec.  Returns MV_OK, or MV_ERR when no side is left, alpha is not
 * in [0, 1], the scale is unknown, or q is near zero or not finite.
 */
int
mv_profile_blend(const float *user_vec, const float *profile_vec,
    uint32_t dim, float alpha, int scale, float *out)
{
    double    nu = 0.0, np = 0.0, wu = 0.0, wp = 0.0, n2, x;
    uint32_t  j;
    int       keep_nu;

    if (out == NULL || dim == 0 || !(alpha >= 0.0f && alpha <= 1.0f)
        || (scale != MV_BLEND_PLAIN && scale != MV_BLEND_UNIT
            && scale != MV_BLEND_USER_NORM))
    {
        return MV_ERR;
    }

    if (user_vec != NULL) {
        n2 = norm2(user_vec, dim);
        if (!isfinite(n2)) {
            return MV_ERR;
        }
        if (n2 >= MV_PROFILE_EPS2) {
            nu = sqrt(n2);
            wu = 1.0 - (double) alpha;
        }
    }
    if (profile_vec != NULL) {
        n2 = norm2(profile_vec, dim);
        if (!isfinite(n2)) {
            return MV_ERR;
        }
        if (n2 >= MV_PROFILE_EPS2) {
            np = sqrt(n2);
            wp = (double) alpha;
        }
    }

    if (nu == 0.0 && np == 0.0) {
        return MV_ERR;
    }
    if (nu == 0.0) {
        wp = 1.0;               /* the profile alone */
    } else if (np == 0.0) {
        wu = 1.0;               /* the model vector alone */
    }

    /* |u| q when asked and u is there: u's own scale, u exactly at alpha 0
       (and |u| p/|p| at alpha 1) */
    keep_nu = scale == MV_BLEND_USER_NORM && nu != 0.0;

    for (j = 0; j < dim; j++) {
        x = 0.0;
        if (wu != 0.0) {
            x += keep_nu ? wu * (double) user_vec[j]
                         : wu * (double) user_vec[j] / nu;
        }
        if (wp != 0.0) {
            x += keep_nu ? wp * nu * (double) profile_vec[j] / np
                         : wp * (double) profile_vec[j] / np;
        }
        out[j] = (float) x;
    }

    n2 = norm2(out, dim);
    if (!norm2_ok(n2)) {
        return MV_ERR;
    }

    if (scale == MV_BLEND_UNIT) {
        x = sqrt(n2);
        for (j = 0; j < dim; j++) {
            out[j] = (float) ((double) out[j] / x);
        }
    }

    return MV_OK;
}
