/*
 * mf.h -- the trainer's model: implicit-feedback matrix factorisation
 * trained one example at a time, shared by the online daemon and the
 * offline `train` command.
 *
 * Model.  A user table U (users x dim) and an item table V (items x dim),
 * both row-major and growable; the score of (u, i) is s = dot(U[u], V[i]).
 * One example is (user, positive item, weight, negative items), and three
 * losses are offered, with s_p the positive's score and s_n a negative's:
 *
 *   logistic  weight * ( -log sigma(s_p) - sum_n log sigma(-s_n) )
 *   bpr       weight * sum_n -log sigma(s_p - s_n)
 *   softmax   sampled softmax with log-Q correction: logits
 *             z_j = s_j - logq_j over {positive} + negatives, where logq_j
 *             is the log of the probability with which item j was sampled
 *             (0 when the caller passes none), and
 *             loss = weight * -log( exp(z_p) / sum_j exp(z_j) )
 *
 * L2 regularisation is not part of the loss: the optimisers (optim.h)
 * apply it to the rows they update.
 *
 * Item bias.  With item_bias on, coordinate dim - 1 is a per-item bias:
 * every user row holds 1.0 there, which no update ever changes (the
 * coordinate's gradient is 0 and the user optimiser only sees the first
 * dim - 1 coordinates, so neither L2 nor momentum touches it), while item
 * rows learn it from 0.  The score stays a plain dot product, so the
 * published vectors are served by inner product unchanged.  The
 * initialisers then see dim - 1 as the embedding size (fan-in), and the
 * bias coordinate is set afterwards.
 *
 * Rows.  Users and items are appended (mvw_mf_add_users / _items); their
 * indexes are 0, 1, ... in order of addition.  Row pointers from
 * mvw_mf_user / mvw_mf_item stay valid until the next add to that table.
 *
 * Threads.  A model is trained by one thread at a time.  The const
 * functions (loss_grad, score, the accessors) use no state of the model
 * besides its tables, so several threads may call them at once while
 * nobody trains.  mvw_mf_score uses OpenBLAS, which may itself use threads.
 */
#ifndef MVW_MF_H
#define MVW_MF_H

#include <stddef.h>
#include <stdint.h>

#include "model/init.h"
#include "model/optim.h"
#include "mv_common.h"

typedef enum mvw_mf_loss {
    MVW_MF_LOGISTIC = 0,
    MVW_MF_BPR,
    MVW_MF_SOFTMAX,
    MVW_MF_N_LOSSES
} mvw_mf_loss_t;

typedef struct mvw_mf_params {
    uint32_t          dim;          /* 1 .. MV_DIM_MAX, >= 2 with bias */
    mvw_mf_loss_t     loss;

    mvw_optim_kind_t  optim;
    float             lr;
    float             l2;
    float             beta1;        /* adam */
    float             beta2;        /* adam */
    float             eps;          /* adagrad, adam */

    mvw_init_kind_t   init;
    float             init_scale;   /* gain */
    float             init_density; /* sparse init */

    int               item_bias;    /* boolean */
    uint64_t          seed;         /* of the initialisers' generator */
} mvw_mf_params_t;

typedef struct mvw_mf mvw_mf_t;

/*
 * Fills *p with defaults: dim 64, logistic loss, adagrad with lr 0.05,
 * l2 1e-5, beta1 0.9, beta2 0.999, eps 1e-8, xavier_normal init with gain
 * 1 and density 0.1, no item bias, seed 1.
 */
void mvw_mf_params_default(mvw_mf_params_t *p);

/* Name <-> enum of the losses ("logistic", "bpr", "softmax"); as
   mvw_init_from_name / mvw_init_name.  mvw_optim_* and mvw_init_* name the
   optimisers and initialisers. */
int mvw_mf_loss_from_name(const char *name, mvw_mf_loss_t *loss);
const char *mvw_mf_loss_name(mvw_mf_loss_t loss);

/*
 * Creates an empty model (no users, no items).  Returns it, or NULL with err
 * set for a parameter out of range (the message names it) or an allocation
 * failure.
 */
mvw_mf_t *mvw_mf_new(const mvw_mf_params_t *p, mv_err_t *err);

/* Frees m and everything it owns.  NULL is allowed. */
void mvw_mf_free(mvw_mf_t *m);

/*
 * Appends n users.  vecs is n x dim floats (e.g. restored from a
 * snapshot) or NULL to draw them with the model's initialiser.  With
 * item_bias, coordinate dim - 1 of each new user is set to 1 whatever vecs
 * holds there.  The new users' optimiser state is zero.  Returns MV_OK,
 * or MV_ERR with err set (a non-finite value in vecs, more than 2^31 - 1
 * rows in the table, an allocation failure); nothing is added then.
 */
int mvw_mf_add_users(mvw_mf_t *m, size_t n, const float *vecs,
    mv_err_t *err);

/*
 * Appends n items, as mvw_mf_add_users.  Given vecs (e.g. content
 * embeddings as initial vectors) are taken as they are, bias coordinate
 * included; drawn ones have bias 0.
 */
int mvw_mf_add_items(mvw_mf_t *m, size_t n, const float *vecs,
    mv_err_t *err);

/* Counts, dimension and rows (dim floats; u < n_users, i < n_items). */
size_t mvw_mf_n_users(const mvw_mf_t *m);
size_t mvw_mf_n_items(const mvw_mf_t *m);
uint32_t mvw_mf_dim(const mvw_mf_t *m);
float *mvw_mf_user(mvw_mf_t *m, uint32_t u);
float *mvw_mf_item(mvw_mf_t *m, uint32_t i);
const mvw_mf_params_t *mvw_mf_params(const mvw_mf_t *m);

/*
 * Overwrites user u's / item i's row with vec (dim floats) and returns its
 * optimiser state to zero (restoring from a snapshot, or replacing a
 * vector).  A user's bias coordinate is set to 1 as in mvw_mf_add_users.
 * Returns MV_OK, or MV_ERR with err set for an index out of range or a
 * non-finite value (the row is unchanged then).
 */
int mvw_mf_set_user(mvw_mf_t *m, uint32_t u, const float *vec,
    mv_err_t *err);
int mvw_mf_set_item(mvw_mf_t *m, uint32_t i, const float *vec,
    mv_err_t *err);

/*
 * Sets the learning rate of both optimisers (and of mvw_mf_params) to lr
 * (> 0): the offline trainer's schedule calls it as it goes.
 */
void mvw_mf_set_lr(mvw_mf_t *m, float lr);

/*
 * The loss of one example and its gradient with respect to the rows
 * involved, without changing anything.  user < n_users; pos and every
 * negs[k] < n_items; n_neg may be 0.  neg_logq (n_neg values) and pos_logq
 * are the logs of the sampling probabilities used by the softmax loss
 * (neg_logq NULL counts as all 0; pos_logq is used as given) and ignored
 * by the others; they must be finite, so a positive that the sampler never
 * draws (probability 0, log -inf) needs a floor such as log(1e-9).
 * Writes dim floats to g_user and to g_pos and n_neg x dim floats to
 * g_negs, one gradient per occurrence: a negative repeated, or equal to the
 * positive, gets its own gradient row, computed as given (g_negs may be
 * NULL when n_neg is 0).  With item_bias, g_user[dim - 1] is 0.  Returns
 * the loss (>= 0), computed without overflow for any finite scores.
 */
double mvw_mf_loss_grad(const mvw_mf_t *m, uint32_t user, uint32_t pos,
    float weight, const uint32_t *negs, size_t n_neg, const float *neg_logq,
    float pos_logq, float *g_user, float *g_pos, float *g_negs);

/*
 * One training step: the loss and gradient of the example (as
 * mvw_mf_loss_grad, from the rows as they were), then one optimiser step
 * on the user row and one on each distinct item row, the gradients of an
 * item that occurs several times (repeated negative, or a negative equal to
 * the positive) summed first.  Returns the loss.  Allocates nothing, except
 * to grow its scratch space the first time n_neg exceeds every earlier
 * n_neg (64 are provided at creation); if that allocation fails, returns
 * NaN and changes nothing.
 */
double mvw_mf_step(mvw_mf_t *m, uint32_t user, uint32_t pos, float weight,
    const uint32_t *negs, size_t n_neg, const float *neg_logq,
    float pos_logq);

/*
 * Scores of every item for each of n_users users: out[k * n_items + i] =
 * dot(U[users[k]], V[i]).  out holds n_users x n_items floats.  Uses
 * cblas_sgemm on blocks of users gathered on the stack (32 KB) and
 * allocates nothing itself.
 */
void mvw_mf_score(const mvw_mf_t *m, const uint32_t *users, size_t n_users,
    float *out);

#endif /* MVW_MF_H */
