/*
 * init.h -- initialisers of embedding tables for the trainer.
 *
 * A table is rows x dim floats, row-major.  Each row is one embedding that
 * takes part in dot products of dim terms, so every formula below uses
 * fan_in = fan_out = dim (with that convention xavier_normal and
 * lecun_normal coincide, as do xavier_uniform and lecun_uniform):
 *
 *   xavier_normal    N(0, s^2),  s = sqrt(2 / (fan_in + fan_out))
 *   xavier_uniform   U(-a, a),   a = sqrt(6 / (fan_in + fan_out))
 *   he_normal        N(0, s^2),  s = sqrt(2 / fan_in)
 *   he_uniform       U(-a, a),   a = sqrt(6 / fan_in)
 *   lecun_normal     N(0, s^2),  s = sqrt(1 / fan_in)
 *   lecun_uniform    U(-a, a),   a = sqrt(3 / fan_in)
 *   normal           N(0, s^2),  s = 0.1 (independent of dim)
 *   sparse           each row has ceil(density * dim) non-zero entries at
 *                    distinct uniformly random positions, values N(0, 1)
 *   orthogonal       each block of dim consecutive rows is a random
 *                    orthogonal dim x dim matrix (Saxe et al. 2014: QR of a
 *                    Gaussian matrix, columns of Q multiplied by the signs
 *                    of diag(R), which makes the result Haar-distributed).
 *                    A final block of k < dim rows is k orthonormal rows,
 *                    distributed as the first k rows of such a matrix; in
 *                    particular one row alone is a uniformly random unit
 *                    vector.
 *
 * Every value is then multiplied by the gain `scale`.
 *
 * Rows are added one at a time online (a new user or item): calling
 * mvw_init_fill with rows = 1 is correct for every kind, since every kind
 * but orthogonal draws its rows independently, and a lone orthogonal row is
 * a random unit vector (times scale).  Rows filled by separate calls are
 * not orthogonal to one another.
 *
 * The draws come from the caller's generator, so a fill is deterministic in
 * (kind, rows, dim, scale, density, generator state); how many values a
 * kind consumes from the generator is not part of the contract.  The
 * orthogonal kind uses LAPACK (sgeqrf, sorgqr) from OpenBLAS: link with
 * -lopenblas.
 */
#ifndef MVW_INIT_H
#define MVW_INIT_H

#include <stddef.h>

#include "mv_common.h"
#include "synth.h"

typedef enum mvw_init_kind {
    MVW_INIT_XAVIER_NORMAL = 0,
    MVW_INIT_XAVIER_UNIFORM,
    MVW_INIT_HE_NORMAL,
    MVW_INIT_HE_UNIFORM,
    MVW_INIT_LECUN_NORMAL,
    MVW_INIT_LECUN_UNIFORM,
    MVW_INIT_ORTHOGONAL,
    MVW_INIT_SPARSE,
    MVW_INIT_NORMAL,
    MVW_INIT_N_KINDS
} mvw_init_kind_t;

/*
 * Sets *kind from its name ("xavier_normal", "xavier_uniform", "he_normal",
 * "he_uniform", "lecun_normal", "lecun_uniform", "orthogonal", "sparse",
 * "normal"; exact, lower case).  Returns MV_OK, or MV_ERR for NULL or an
 * unknown name (*kind unchanged).
 */
int mvw_init_from_name(const char *name, mvw_init_kind_t *kind);

/* The name of kind, or "unknown" for a value outside the enum. */
const char *mvw_init_name(mvw_init_kind_t kind);

/*
 * Fills w (rows x dim floats, row-major) with the initialiser kind times
 * scale, drawing from rng.  density is used by the sparse kind only, and
 * must then be in (0, 1]; the count ceil(density * dim) is taken with a
 * tolerance of 1e-3 (a float density of 0.3 gives 3 of 10, not 4) and is at
 * least 1.  rows may be 0 (nothing happens).  Returns MV_OK, or MV_ERR
 * with err set for dim 0, an unknown kind, a non-finite scale, a density
 * out of range, a dim too large for LAPACK's integers or an allocation
 * failure (orthogonal and sparse need a workspace of O(dim^2) and O(dim));
 * w may have been partly written then.
 */
int mvw_init_fill(mvw_init_kind_t kind, float *w, size_t rows, size_t dim,
    float scale, float density, mv_rng_t *rng, mv_err_t *err);

#endif /* MVW_INIT_H */
