/*
 * eval.h -- offline evaluation of a recommender on a train/test split
 * (dataset.h), under the protocol of BASELINES.md.
 *
 * For every user with at least one test item, every item not in that
 * user's train set is ranked by the score the caller's model gives it, and
 * the top K are compared with the user's test items:
 *
 *   P@K     hits / K
 *   R@K     hits / |test|
 *   NDCG@K  DCG / IDCG with binary gains, DCG = sum over ranks r = 1..K of
 *           rel_r / log2(r + 1), IDCG the same for min(K, |test|) hits
 *   MAP@K   (1 / min(K, |test|)) * sum over r <= K of P@r * rel_r
 *   HR@K    1 when there is at least one hit
 *
 * each averaged over the evaluated users.  Beyond accuracy, judged the same
 * way whatever the model (only the train matrix is used):
 *
 *   coverage   distinct recommended items / n_items
 *   diversity  mean over users (with at least two recommendations) of the
 *              mean over pairs of their list of 1 - cos(i, j), where an
 *              item's vector is its column of the binary train user x item
 *              matrix: cos = |U_i & U_j| / sqrt(|U_i| |U_j|), 0 when either
 *              is empty
 *   novelty    mean over users of the mean over their list of -log2(p_i),
 *              p_i = (train users of i) / n_users, p counted as 1 / n_users
 *              for an item nobody has in train; n_users is the size of the
 *              user id map
 *
 * Ranking is deterministic: higher scores first, equal scores by ascending
 * item index, NaN after every number (NaNs by ascending index too).  A test
 * item that is also in the user's train set (possible with a predefined
 * split) cannot be recommended and is not counted in |test|; a user left
 * with no test item is skipped.  Lists are shorter than K only when a user
 * has fewer than K candidates; P@K still divides by K.
 *
 * The model is a callback that scores a batch of users at a time over all
 * items, so memory stays bounded (at most 256 users, and at most 16M
 * scores, per batch).  Selection keeps a K-sized heap per user instead of
 * sorting all items.  Nothing is global; mvw_eval can run in several
 * threads at once on different results.
 */
#ifndef MVW_EVAL_H
#define MVW_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "data/dataset.h"
#include "mv_common.h"

/* Most users scored per callback. */
#define MVW_EVAL_BATCH        256

/*
 * Writes scores[b * n_items + i] for each of the n users users[b] and every
 * item i (n_items is the size of the item id map of the train set).  Any
 * float is allowed; NaN ranks last.
 */
typedef void (*mvw_score_fn)(void *ctx, const uint32_t *users, size_t n,
    float *scores);

typedef struct mvw_eval_result {
    uint32_t  k;
    uint32_t  users;        /* users evaluated */
    double    precision;
    double    recall;
    double    ndcg;
    double    map;
    double    hit_rate;
    double    coverage;
    double    diversity;
    double    novelty;
} mvw_eval_result_t;

/*
 * Evaluates the model fn (with ctx) at cut-off k >= 1.  train and test must
 * have the same id maps (as splits and paired loads give them).  Fills
 * *out; a test set without any evaluable user gives users 0 and every
 * metric 0.  Returns MV_OK, or MV_ERR (k 0, different id maps, no items,
 * allocation failure) with the reason.
 */
int mvw_eval(const mvw_dataset_t *train, const mvw_dataset_t *test,
    uint32_t k, mvw_score_fn fn, void *ctx, mvw_eval_result_t *out,
    mv_err_t *err);

/*
 * The k best items of 0..n_items-1 by scores (the order above), skipping
 * those in exclude (n_exclude indices, ascending; others are ignored).
 * Writes them best first to out (room for k) and returns how many were
 * written, min(k, candidates).  O(n_items log k).
 */
uint32_t mvw_eval_top_k(const float *scores, uint32_t n_items,
    const uint32_t *exclude, size_t n_exclude, uint32_t k, uint32_t *out);


/* ---- baseline models ----------------------------------------------------- */

/* Popularity: every user gets score(i) = number of train users of i. */
typedef struct mvw_popularity_scorer {
    uint32_t   n_items;
    float     *counts;
} mvw_popularity_scorer_t;

/* Counts train's items into s.  Returns MV_OK or MV_ERR (no memory). */
int mvw_eval_popularity_init(mvw_popularity_scorer_t *s,
    const mvw_dataset_t *train, mv_err_t *err);

void mvw_eval_popularity_free(mvw_popularity_scorer_t *s);

/* mvw_score_fn of a mvw_popularity_scorer_t. */
void mvw_eval_popularity_scorer(void *ctx, const uint32_t *users, size_t n,
    float *scores);

/* Random: uniform scores in [0, 1), a stream per (seed, user), so that the
   result does not depend on how users are batched. */
typedef struct mvw_random_scorer {
    uint32_t   n_items;
    uint64_t   seed;
} mvw_random_scorer_t;

void mvw_eval_random_init(mvw_random_scorer_t *s, const mvw_dataset_t *train,
    uint64_t seed);

/* mvw_score_fn of a mvw_random_scorer_t. */
void mvw_eval_random_scorer(void *ctx, const uint32_t *users, size_t n,
    float *scores);


/* ---- reports ------------------------------------------------------------- */

/*
 * Prints an aligned text table: a header, then one row per model (its
 * name, users, P R NDCG MAP HR at k, coverage, diversity, novelty).
 * Returns MV_OK, or MV_ERR when the stream reports an error.
 */
int mvw_eval_print_table(FILE *f, const char *const *names,
    const mvw_eval_result_t *results, size_t n_models, uint32_t k);

/*
 * Prints one JSON object and a newline:
 *   {"k":10,"users":943,"models":{"NAME":{"precision":..,"recall":..,
 *    "ndcg":..,"map":..,"hit_rate":..,"coverage":..,"diversity":..,
 *    "novelty":..},...}}
 * users is the first model's (all models of one split agree); names are
 * escaped as JSON strings; a non-finite value is printed as null.  Returns
 * MV_OK or MV_ERR as mvw_eval_print_table.
 */
int mvw_eval_print_json(FILE *f, const char *const *names,
    const mvw_eval_result_t *results, size_t n_models, uint32_t k);

#endif /* MVW_EVAL_H */
