/*
 * learn.h -- one training example, the unit both trainers are made of:
 * draw the negatives for a positive (user, item, weight) from the
 * popularity sampler and take one optimiser step on the model.  The online
 * daemon calls it for every event (and for replayed ones); the offline
 * `train` and `eval` commands call it for every training interaction of
 * every epoch through mvw_learn_fit.  Same code, same model, same numbers.
 *
 * Negatives: floor(ratio) draws, plus one more with probability
 * frac(ratio), each from the sampler (item i with probability p_i); a draw
 * equal to the positive is drawn again (at most a few times, then kept).
 * For the sampled softmax the log of each candidate's sampling
 * probability is handed to the step, which subtracts it from the logit
 * (the log-Q correction that makes the sampled softmax an unbiased
 * estimate of the full one); the positive's log q is computed the same way.
 */
#ifndef MVW_LEARN_H
#define MVW_LEARN_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "model/mf.h"
#include "model/sampler.h"
#include "mv_common.h"
#include "synth.h"

#define MVW_LEARN_MAX_NEGATIVES  4096

typedef struct mvw_learner {
    mvw_mf_t             *model;
    const mvw_sampler_t  *sampler;     /* must cover every item index */
    double                ratio;       /* negatives per positive */
    int                   lr_decay;    /* mvw_learn_fit: linear to 0 */
    mv_rng_t              rng;

    uint32_t             *negs;        /* the last example's negatives */
    size_t                n_last;      /* how many */
    float                *neg_logq;
    size_t                cap;

    uint64_t              steps;       /* examples stepped */
    double                loss_sum;    /* of the steps */
} mvw_learner_t;

/*
 * A count whose mean is ratio (>= 0): floor(ratio), plus one with
 * probability frac(ratio).  How many negatives an example gets, and how
 * many replayed examples follow an event.
 */
size_t mvw_learn_count(mv_rng_t *rng, double ratio);

/*
 * Prepares l for model and sampler (both stay owned by the caller; the
 * sampler may be rebuilt between calls) with ratio negatives per positive
 * (0 .. MVW_LEARN_MAX_NEGATIVES) and its own generator seeded with seed.
 * Returns MV_OK or MV_ERR (bad ratio, allocation failure).
 */
int mvw_learner_init(mvw_learner_t *l, mvw_mf_t *model,
    const mvw_sampler_t *sampler, double ratio, uint64_t seed,
    mv_err_t *err);

void mvw_learner_free(mvw_learner_t *l);

/*
 * One example: draws the negatives and steps the model.  user and item
 * must be rows of the model and item must be covered by the sampler (the
 * sampler may cover fewer items than the model: negatives are drawn among
 * those it covers).  Returns the example's loss.
 */
double mvw_learn_one(mvw_learner_t *l, uint32_t user, uint32_t item,
    float weight);

/*
 * Offline training: epochs passes over rows[0 .. n) in a fresh random
 * order each pass, one mvw_learn_one each.  With l->lr_decay set the
 * learning rate falls linearly from the model's to 0 over all the steps
 * (and is restored at the end); otherwise it stays constant.  When progress is not NULL it
 * is called after each epoch with the epoch number (1-based) and that
 * epoch's mean loss; a non-zero return stops the training early.
 * Returns MV_OK, or MV_ERR when the order array cannot be allocated.
 */
int mvw_learn_fit(mvw_learner_t *l, const mvw_interaction_t *rows,
    size_t n, uint32_t epochs,
    int (*progress)(void *ctx, uint32_t epoch, double mean_loss),
    void *ctx, mv_err_t *err);

#endif /* MVW_LEARN_H */
