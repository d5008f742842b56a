/*
 * init.c -- initialisers of embedding tables (see init.h).
 *
 * Design.  The six fan-based kinds and `normal` reduce to two shapes, a
 * Gaussian of a given standard deviation and a symmetric uniform of a given
 * half-width, both computed once per call from dim and the gain; a table
 * (init_kinds) holds each kind's name, shape and the constant c in
 * sqrt(c / dim), so adding a kind of that family is one row.
 *
 * Orthogonal.  A block of k <= dim rows, row-major, is exactly a dim x k
 * matrix in LAPACK's column-major order (leading dimension dim): column j
 * is row j.  So the block is filled with N(0, 1) in place, factored with
 * sgeqrf (A = QR), the signs of diag(R) are kept, sorgqr overwrites the
 * block with the k orthonormal columns of Q, and column j is multiplied by
 * sign(R_jj) * scale.  No transposition and no copy are needed.  When k =
 * dim, Q is square, so the block's rows and columns are both orthonormal.
 * sign(0) is taken as +1 (R_jj = 0 has probability zero, but a 0 there
 * must not erase a column).  The LAPACK routines are Fortran: every
 * argument is passed by address, integers are 32-bit (Debian's OpenBLAS is
 * built LP64) and neither routine takes a hidden string length.
 *
 * Sparse.  Distinct positions come from a partial Fisher-Yates shuffle of
 * an index array: the first k swaps select a uniformly random ordered
 * k-subset whatever order the array was left in, so the array is not reset
 * between rows.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/init.h"

/* LAPACK, from OpenBLAS. */
void sgeqrf_(const int *m, const int *n, float *a, const int *lda,
    float *tau, float *work, const int *lwork, int *info);
void sorgqr_(const int *m, const int *n, const int *k, float *a,
    const int *lda, const float *tau, float *work, const int *lwork,
    int *info);

/* The std of `normal`, before the gain. */
#define INIT_NORMAL_STD        0.1
/* Tolerance on density * dim before rounding up (see init.h). */
#define INIT_SPARSE_TOLERANCE  1e-3

typedef enum init_shape {
    INIT_SHAPE_GAUSSIAN,        /* N(0, s^2), s = sqrt(c / dim) */
    INIT_SHAPE_UNIFORM,         /* U(-a, a),  a = sqrt(c / dim) */
    INIT_SHAPE_OTHER            /* handled by its own function */
} init_shape_t;

static const struct {
    const char    *name;
    init_shape_t   shape;
    double         c;           /* numerator over fan_in = fan_out = dim */
} init_kinds[MVW_INIT_N_KINDS] = {
    [MVW_INIT_XAVIER_NORMAL]  = { "xavier_normal",  INIT_SHAPE_GAUSSIAN, 1 },
    [MVW_INIT_XAVIER_UNIFORM] = { "xavier_uniform", INIT_SHAPE_UNIFORM,  3 },
    [MVW_INIT_HE_NORMAL]      = { "he_normal",      INIT_SHAPE_GAUSSIAN, 2 },
    [MVW_INIT_HE_UNIFORM]     = { "he_uniform",     INIT_SHAPE_UNIFORM,  6 },
    [MVW_INIT_LECUN_NORMAL]   = { "lecun_normal",   INIT_SHAPE_GAUSSIAN, 1 },
    [MVW_INIT_LECUN_UNIFORM]  = { "lecun_uniform",  INIT_SHAPE_UNIFORM,  3 },
    [MVW_INIT_ORTHOGONAL]     = { "orthogonal",     INIT_SHAPE_OTHER,    0 },
    [MVW_INIT_SPARSE]         = { "sparse",         INIT_SHAPE_OTHER,    0 },
    [MVW_INIT_NORMAL]         = { "normal",         INIT_SHAPE_OTHER,    0 },
};


/* See init.h. */
int
mvw_init_from_name(const char *name, mvw_init_kind_t *kind)
{
    int i;

    if (name == NULL) {
        return MV_ERR;
    }

    for (i = 0; i < MVW_INIT_N_KINDS; i++) {
        if (strcmp(name, init_kinds[i].name) == 0) {
            *kind = (mvw_init_kind_t) i;
            return MV_OK;
        }
    }

    return MV_ERR;
}


/* See init.h. */
const char *
mvw_init_name(mvw_init_kind_t kind)
{
    if ((int) kind < 0 || kind >= MVW_INIT_N_KINDS) {
        return "unknown";
    }

    return init_kinds[kind].name;
}


static void
init_gaussian(float *w, size_t n, double std, mv_rng_t *rng)
{
    size_t i;

    for (i = 0; i < n; i++) {
        w[i] = (float) (std * mv_rng_normal(rng));
    }
}


static void
init_uniform(float *w, size_t n, double a, mv_rng_t *rng)
{
    size_t i;

    /* [-a, a): the open end is one ulp of a double, invisible in float. */
    for (i = 0; i < n; i++) {
        w[i] = (float) (a * (2.0 * mv_rng_uniform(rng) - 1.0));
    }
}


static int
init_sparse(float *w, size_t rows, size_t dim, float scale, float density,
    mv_rng_t *rng, mv_err_t *err)
{
    size_t  *pos;
    size_t   nnz, r, k, j, tmp;
    double   x;

    if (!(density > 0.0f && density <= 1.0f)) {
        return mv_err_set(err, "sparse init: density %g is not in (0, 1]",
                          (double) density);
    }

    x = (double) density * (double) dim;
    x = ceil(x - INIT_SPARSE_TOLERANCE);
    nnz = x < 1.0 ? 1 : (size_t) x;
    if (nnz > dim) {
        nnz = dim;
    }

    pos = malloc(dim * sizeof(*pos));
    if (pos == NULL) {
        return mv_err_set(err, "sparse init: out of memory");
    }
    for (j = 0; j < dim; j++) {
        pos[j] = j;
    }

    for (r = 0; r < rows; r++) {
        float *row = w + r * dim;

        memset(row, 0, dim * sizeof(*row));
        for (k = 0; k < nnz; k++) {
            j = k + (size_t) (mv_rng_uniform(rng) * (double) (dim - k));
            tmp = pos[k];
            pos[k] = pos[j];
            pos[j] = tmp;
            row[pos[k]] = (float) ((double) scale * mv_rng_normal(rng));
        }
    }

    free(pos);

    return MV_OK;
}


static int
init_orthogonal(float *w, size_t rows, size_t dim, float scale,
    mv_rng_t *rng, mv_err_t *err)
{
    float   *tau, *sign, *work, query;
    size_t   r, k, j, i;
    int      m, n, lda, lwork, ask, info;

    if (dim > (size_t) INT_MAX / 2) {
        return mv_err_set(err, "orthogonal init: dim %zu is too large", dim);
    }

    m = (int) dim;
    lda = (int) dim;
    n = (int) (rows < dim ? rows : dim);

    /* Workspace size: the optimum grows with n, so ask for the largest. */
    ask = -1;
    sgeqrf_(&m, &n, w, &lda, &query, &query, &ask, &info);
    lwork = info == 0 ? (int) query : 0;
    sorgqr_(&m, &n, &n, w, &lda, &query, &query, &ask, &info);
    if (info == 0 && (int) query > lwork) {
        lwork = (int) query;
    }
    if (lwork < n) {
        lwork = n;
    }

    tau = malloc((2 * dim + (size_t) lwork) * sizeof(float));
    if (tau == NULL) {
        return mv_err_set(err, "orthogonal init: out of memory");
    }
    sign = tau + dim;
    work = sign + dim;

    for (r = 0; r < rows; r += k) {
        float *a = w + r * dim;

        k = rows - r < dim ? rows - r : dim;
        n = (int) k;

        init_gaussian(a, k * dim, 1.0, rng);

        sgeqrf_(&m, &n, a, &lda, tau, work, &lwork, &info);
        if (info != 0) {
            free(tau);
            return mv_err_set(err, "orthogonal init: sgeqrf failed (%d)",
                              info);
        }
        for (j = 0; j < k; j++) {
            sign[j] = a[j * dim + j] < 0.0f ? -scale : scale;
        }

        sorgqr_(&m, &n, &n, a, &lda, tau, work, &lwork, &info);
        if (info != 0) {
            free(tau);
            return mv_err_set(err, "orthogonal init: sorgqr failed (%d)",
                              info);
        }
        for (j = 0; j < k; j++) {
            for (i = 0; i < dim; i++) {
                a[j * dim + i] *= sign[j];
            }
        }
    }

    free(tau);

    return MV_OK;
}


/* See init.h. */
int
mvw_init_fill(mvw_init_kind_t kind, float *w, size_t rows, size_t dim,
    float scale, float density, mv_rng_t *rng, mv_err_t *err)
{
    double c;

    if ((int) kind < 0 || kind >= MVW_INIT_N_KINDS) {
        return mv_err_set(err, "unknown initialiser %d", (int) kind);
    }
    if (dim == 0) {
        return mv_err_set(err, "%s init: dim is 0", init_kinds[kind].name);
    }
    if (!isfinite(scale)) {
        return mv_err_set(err, "%s init: scale %g is not finite",
                          init_kinds[kind].name, (double) scale);
    }
    if (rows > SIZE_MAX / sizeof(float) / dim) {
        return mv_err_set(err, "%s init: %zu x %zu is too large",
                          init_kinds[kind].name, rows, dim);
    }

    switch (kind) {

    case MVW_INIT_ORTHOGONAL:
        return rows == 0 ? MV_OK
                         : init_orthogonal(w, rows, dim, scale, rng, err);

    case MVW_INIT_SPARSE:
        return init_sparse(w, rows, dim, scale, density, rng, err);

    case MVW_INIT_NORMAL:
        init_gaussian(w, rows * dim, INIT_NORMAL_STD * scale, rng);
        return MV_OK;

    default:
        c = sqrt(init_kinds[kind].c / (double) dim) * (double) scale;
        if (init_kinds[kind].shape == INIT_SHAPE_GAUSSIAN) {
            init_gaussian(w, rows * dim, c, rng);
        } else {
            init_uniform(w, rows * dim, c, rng);
        }
        return MV_OK;
    }
}
