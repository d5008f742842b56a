/*
 * profile.h -- the query vector of a recommendation: a user's model vector
 * (from the snapshot) blended with their real-time profile (the vectors of
 * the items they acted on recently, time-decayed and action-weighted).
 *
 *   profile  p = sum_i  w_i * 2^(-age_i / half_life) * v_i
 *                (age_i = now - t_i, clamped at 0; v_i unit-norm for
 *                 cosine; w_i < 0 for actions like Dislike)
 *   query    q = (1 - alpha) * u / |u|  +  alpha * p / |p|
 *
 * with the missing side dropped: a user the model does not know yet is
 * served from p alone, a user without recent history from u alone.  For the
 * cosine metric q is normalised at the end.  For the inner product q is
 * scaled by |u| when there is a u, so that a user without recent history
 * queries with the model's own vector u and every score is the model's
 * dot(u, x); profile items' vectors are taken as stored (their norms
 * weigh in as they do in the model's scores).
 *
 * Plain arithmetic on caller-owned arrays; nothing is allocated.
 */
#ifndef MV_PROFILE_H
#define MV_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mv_profile_term {
    const float  *vec;        /* dim floats */
    int64_t       time_ms;    /* when the action happened */
    float         weight;     /* the action type's weight */
} mv_profile_term_t;

/*
 * Computes p (above) into out[dim].  half_life_ms <= 0 disables decay.
 * Returns MV_OK, or MV_ERR when there is no term or the sum has (near) zero
 * norm (every term cancelled out); out is then unspecified.
 */
int mv_profile_vector(const mv_profile_term_t *terms, size_t n, uint32_t dim,
    int64_t now_ms, double half_life_ms, float *out);

/* What mv_profile_blend does with the blend q. */
typedef enum mv_blend_scale {
    MV_BLEND_PLAIN = 0,        /* q as is (L2) */
    MV_BLEND_UNIT = 1,         /* q / |q| (cosine) */
    MV_BLEND_USER_NORM = 2     /* |u| q when u is there (not NULL nor
                                  near zero), else q (inner product) */
} mv_blend_scale_t;

/*
 * Blends into out[dim] as above.  user_vec or profile_vec may be NULL (not
 * both); alpha in [0, 1] is the profile's share; scale is one of
 * mv_blend_scale_t (MV_BLEND_UNIT for the cosine metric, MV_BLEND_USER_NORM
 * for the inner product).  Returns MV_OK, or MV_ERR when both are NULL, the
 * scale is unknown, or the result has (near) zero norm or is not finite.
 */
int mv_profile_blend(const float *user_vec, const float *profile_vec,
    uint32_t dim, float alpha, int scale, float *out);

#ifdef __cplusplus
}
#endif

#endif /* MV_PROFILE_H */
