/*
 * learn.c -- negatives + one optimiser step per example, and the offline
 * epoch loop (see learn.h).
 */
#include <math.h>
#include <stdlib.h>

#include "model/learn.h"

#define REDRAWS  8          /* attempts to avoid drawing the positive */


int
mvw_learner_init(mvw_learner_t *l, mvw_mf_t *model,
    const mvw_sampler_t *sampler, double ratio, uint64_t seed,
    mv_err_t *err)
{
    size_t  cap;

    if (!(ratio >= 0.0) || ratio > MVW_LEARN_MAX_NEGATIVES) {
        return mv_err_set(err, "negative ratio %g outside 0..%d", ratio,
                          MVW_LEARN_MAX_NEGATIVES);
    }

    cap = (size_t) ratio + 1;
    l->model = model;
    l->sampler = sampler;
    l->ratio = ratio;
    mv_rng_seed(&l->rng, seed);
    l->negs = malloc(cap * sizeof(uint32_t));
    l->neg_logq = malloc(cap * sizeof(float));
    l->cap = cap;
    l->lr_decay = 0;
    l->n_last = 0;
    l->steps = 0;
    l->loss_sum = 0.0;

    if (l->negs == NULL || l->neg_logq == NULL) {
        mvw_learner_free(l);
        return mv_err_set(err, "out of memory");
    }

    return MV_OK;
}


void
mvw_learner_free(mvw_learner_t *l)
{
    free(l->negs);
    free(l->neg_logq);
    l->negs = NULL;
    l->neg_logq = NULL;
    l->cap = 0;
}


static float
log_q(const mvw_sampler_t *s, uint32_t i)
{
    double  p = i < s->n ? mvw_sampler_prob(s, i) : 0.0;

    /* An item the sampler cannot draw (new since its last build, or
       without popularity) counts as the rarest one it can: a q of ~0
       would lift the positive's corrected logit so far above every
       negative that the example taught nothing. */
    if (!(p > 0.0)) {
        p = s->n > 0 ? s->p_min : 1.0;
    }
    return (float) log(p);
}


size_t
mvw_learn_count(mv_rng_t *rng, double ratio)
{
    double  whole = floor(ratio);
    size_t  n = (size_t) whole;

    if (ratio > whole && mv_rng_uniform(rng) < ratio - whole) {
        n++;
    }
    return n;
}


double
mvw_learn_one(mvw_learner_t *l, uint32_t user, uint32_t item, float weight)
{
    const mvw_sampler_t  *s = l->sampler;
    size_t                n, k;
    double                loss;

    n = mvw_learn_count(&l->rng, l->ratio);
    if (s->n == 0) {
        n = 0;
    }

    for (k = 0; k < n; k++) {
        uint32_t  j = mvw_sampler_draw(s, &l->rng);

        for (int r = 0; j == item && r < REDRAWS; r++) {
            j = mvw_sampler_draw(s, &l->rng);
        }
        l->negs[k] = j;
        l->neg_logq[k] = log_q(s, j);
    }

    l->n_last = n;
    loss = mvw_mf_step(l->model, user, item, weight, l->negs, n,
                       l->neg_logq, log_q(s, item));
    l->steps++;
    l->loss_sum += loss;
    return loss;
}


int
mvw_learn_fit(mvw_learner_t *l, const mvw_interaction_t *rows, size_t n,
    uint32_t epochs,
    int (*progress)(void *ctx, uint32_t epoch, double mean_loss),
    void *ctx, mv_err_t *err)
{
    size_t   *order;
    float     lr0 = mvw_mf_params(l->model)->lr;
    double    total = (double) n * epochs, done = 0.0;

    if (n == 0) {
        return MV_OK;
    }

    order = malloc(n * sizeof(size_t));
    if (order == NULL) {
        return mv_err_set(err, "out of memory for %zu examples", n);
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
    }

    for (uint32_t e = 1; e <= epochs; e++) {
        double  sum = 0.0;

        for (size_t i = n - 1; i > 0; i--) {
            size_t  j = (size_t) (mv_rng_next(&l->rng) % (i + 1));
            size_t  t = order[i];

            order[i] = order[j];
            order[j] = t;
        }

        for (size_t i = 0; i < n; i++) {
            const mvw_interaction_t  *x = &rows[order[i]];

            if (l->lr_decay && (i & 63) == 0) {
                float  lr = (float) (lr0 * (1.0 - done / total));

                mvw_mf_set_lr(l->model, lr > lr0 * 1e-4f ? lr : lr0 * 1e-4f);
            }
            sum += mvw_learn_one(l, x->user, x->item, x->weight);
            done += 1.0;
        }

        if (progress != NULL && progress(ctx, e, sum / (double) n) != 0) {
            break;
        }
    }

    free(order);
    mvw_mf_set_lr(l->model, lr0);
    return MV_OK;
}
