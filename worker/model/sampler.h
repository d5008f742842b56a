/*
 * sampler.h -- the trainer's negative sampler: item i is drawn with
 * probability
 *
 *   p_i = w_i / sum_j w_j,   w_i = max(count_i, 0)^power,
 *
 * (power 0.75 by default, as word2vec), with 0^power taken as 0 for every
 * power, so an item whose count is 0 or less is never drawn -- unless every
 * count is, in which case all n items are equally likely.
 *
 * The table is Walker's alias method, built with Vose's O(n) algorithm:
 * one draw is one mv_rng_next, one multiplication and one table entry.
 * mvw_sampler_prob returns p_i exactly as defined above (in double), which
 * the sampled softmax needs for its log-Q correction; the draws realise it
 * up to the rounding of the build (relative error of order 1e-15) and a
 * column choice of relative bias below n / 2^64.
 *
 * A sampler is rebuilt as counts change; drawing from one while another
 * thread rebuilds it is not allowed, but any number of threads may draw
 * from one that nobody rebuilds (each with its own mv_rng_t).
 */
#ifndef MVW_SAMPLER_H
#define MVW_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"
#include "synth.h"

#define MVW_SAMPLER_POWER  0.75

/* One column of the alias table. */
typedef struct mvw_alias_slot {
    uint64_t  keep;             /* keep the column when the draw's fraction,
                                   in 2^-64 units, is below keep */
    uint32_t  alias;            /* the other item of the column */
} mvw_alias_slot_t;

typedef struct mvw_sampler {
    size_t             n;       /* items; 0 until built */
    size_t             cap;
    double            *p;       /* n exact probabilities */
    double             p_min;   /* the smallest non-zero of them */
    mvw_alias_slot_t  *slots;   /* n columns */
} mvw_sampler_t;

/* Initialises an empty sampler (all zero, which is also a valid static
   initialiser). */
void mvw_sampler_init(mvw_sampler_t *s);

/* Frees what s owns and leaves it empty.  Safe on an empty one. */
void mvw_sampler_free(mvw_sampler_t *s);

/*
 * (Re)builds s for items 0 .. n - 1 with the given counts and power.
 * Returns MV_OK, or MV_ERR with err set when n is 0 or above UINT32_MAX,
 * a count is NaN or infinite, power is negative or not finite, or memory
 * runs out; s is unchanged then (a sampler in use keeps its old table).
 * Weights are computed as (count_i / max count)^power, so large counts do
 * not overflow; a count that small relative to the largest underflows to
 * weight 0 and is reported (and drawn) with probability 0.
 */
int mvw_sampler_build(mvw_sampler_t *s, const double *counts, size_t n,
    double power, mv_err_t *err);

/* Draws one item (s must have been built).  Allocates nothing. */
uint32_t mvw_sampler_draw(const mvw_sampler_t *s, mv_rng_t *rng);

/* The probability of drawing item i (0 for i >= n). */
double mvw_sampler_prob(const mvw_sampler_t *s, size_t i);

#endif /* MVW_SAMPLER_H */
