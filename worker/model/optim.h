/*
 * optim.h -- sparse per-row optimisers for embedding tables.
 *
 * The trainer updates a few rows per example (one user, one positive item,
 * a handful of negatives), so an optimiser here updates one row of dim
 * floats from that row's gradient g and never touches the others.  With
 * g' = g + l2 * w (L2 regularisation belongs to the optimiser, not to the
 * loss), elementwise:
 *
 *   sgd       w -= lr * g'
 *   adagrad   G += g'^2;  w -= lr * g' / (sqrt(G) + eps)
 *   adam      the lazy (sparse) variant: each row has its own moments m, v
 *             and its own step count t, which counts the steps of that row
 *             only and drives the bias correction:
 *               t += 1
 *               m = beta1 * m + (1 - beta1) * g'
 *               v = beta2 * v + (1 - beta2) * g'^2
 *               w -= lr * mhat / (sqrt(vhat) + eps),
 *               mhat = m / (1 - beta1^t),  vhat = v / (1 - beta2^t)
 *             A row that is not stepped keeps m, v and t as they were (no
 *             decay), which is what "lazy" means.
 *
 * The per-row state (G for adagrad; m, v, t for adam; nothing for sgd)
 * lives in one array the optimiser owns, one stretch per row of the table
 * it serves (adam: the clock, then m, then v, so that one step finds all
 * of a row's state together); mvw_optim_reserve grows it as the table
 * grows, new rows starting at zero.  beta1^t and beta2^t are kept per row
 * as running products, so a step calls no pow().
 *
 * An optimiser is used by one thread at a time; distinct optimisers are
 * independent.
 */
#ifndef MVW_OPTIM_H
#define MVW_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"

typedef enum mvw_optim_kind {
    MVW_OPTIM_SGD = 0,
    MVW_OPTIM_ADAGRAD,
    MVW_OPTIM_ADAM,
    MVW_OPTIM_N_KINDS
} mvw_optim_kind_t;

/* Hyper-parameters.  beta1 and beta2 are used by adam, eps by adagrad and
   adam; the others ignore them. */
typedef struct mvw_optim_params {
    float  lr;                  /* > 0 */
    float  l2;                  /* >= 0 */
    float  beta1;               /* [0, 1) */
    float  beta2;               /* [0, 1) */
    float  eps;                 /* > 0 */
} mvw_optim_params_t;

/* Adam's per-row clock: the row's step count and the powers it implies. */
typedef struct mvw_adam_clock {
    double    beta1_t;          /* beta1^t */
    double    beta2_t;          /* beta2^t */
    uint32_t  t;
} mvw_adam_clock_t;

/* Floats reserved for the clock at the start of an adam row's state. */
#define MVW_ADAM_CLOCK_FLOATS  8

typedef struct mvw_optim {
    mvw_optim_kind_t   kind;
    float              lr, l2, beta1, beta2, eps;
    size_t             dim;
    size_t             rows;    /* rows with state */
    size_t             cap;     /* rows allocated */
    size_t             width;   /* state floats per row (0 for sgd) */
    float             *state;   /* rows x width, see mvw_optim_row_state */
    int                avx;     /* 1: AVX kernels (see optim.c) */
} mvw_optim_t;

/*
 * Sets *kind from its name ("sgd", "adagrad", "adam").  Returns MV_OK, or
 * MV_ERR for NULL or an unknown name (*kind unchanged).
 */
int mvw_optim_from_name(const char *name, mvw_optim_kind_t *kind);

/* The name of kind, or "unknown" for a value outside the enum. */
const char *mvw_optim_name(mvw_optim_kind_t kind);

/*
 * Fills *p with the defaults for kind: lr 0.05 (sgd), 0.1 (adagrad), 0.01
 * (adam); l2 0; beta1 0.9; beta2 0.999; eps 1e-8.
 */
void mvw_optim_params_default(mvw_optim_kind_t kind, mvw_optim_params_t *p);

/*
 * Creates an optimiser for rows of dim floats, with no rows yet.  Returns
 * it, or NULL with err set for an unknown kind, dim 0, a hyper-parameter
 * out of its range (NaN included) or an allocation failure.
 */
mvw_optim_t *mvw_optim_new(mvw_optim_kind_t kind, size_t dim,
    const mvw_optim_params_t *p, mv_err_t *err);

/* Frees o and its state.  NULL is allowed. */
void mvw_optim_free(mvw_optim_t *o);

/*
 * Makes state exist for rows 0 .. rows - 1; rows that had none start at
 * zero (t = 0).  Never shrinks.  Capacity grows geometrically, so adding
 * rows one at a time is amortised O(1).  Returns MV_OK, or MV_ERR with err
 * set on allocation failure (o unchanged).
 */
int mvw_optim_reserve(mvw_optim_t *o, size_t rows, mv_err_t *err);

/*
 * Applies one step to row `row` (< o->rows), whose dim weights are w,
 * given its gradient g (dim floats, not part of w).  Allocates nothing.
 */
void mvw_optim_step(mvw_optim_t *o, size_t row, float *w, const float *g);

/*
 * A hint: starts loading row's state into the cache, so that a step on it
 * a little later does not wait for memory.  Harmless on any row < o->rows.
 */
void mvw_optim_prefetch(const mvw_optim_t *o, size_t row);

/* Returns row's state to zero, as if it had just been reserved. */
void mvw_optim_reset_row(mvw_optim_t *o, size_t row);

/*
 * The state of row (< o->rows), for inspection and for saving it: adagrad's
 * G (dim floats) or adam's m then v (2 dim floats); NULL for sgd.
 */
float *mvw_optim_row_state(const mvw_optim_t *o, size_t row);

/* Adam's clock of row (< o->rows); NULL for the other kinds. */
mvw_adam_clock_t *mvw_optim_row_clock(const mvw_optim_t *o, size_t row);

#endif /* MVW_OPTIM_H */
