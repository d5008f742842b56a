/*
 * trainer.h -- the online trainer's state and the two things it does:
 * apply one record of the stream, and publish a snapshot (the latter in
 * publish/trainer_snapshot.h).  No I/O loop, no
 * signals, no configuration file here (that is daemon.c), so the whole
 * behaviour is unit-testable with records built in memory.
 *
 * State, all indexed the same way (item i = model row i = HNSW node i =
 * snapshot item i; user u = model row u = snapshot user u):
 *   catalogue   item and user ids (mvw_idmap_t), per item: category,
 *               popularity with exponential decay, created_at, flags;
 *               category names.  Built from POST /items records (category,
 *               content embedding as the item's initial vector, declared
 *               popularity as its initial popularity) and from actions
 *               (an unknown user or item gets a row on first sight).
 *   model       mvw_mf_t + the popularity^power negative sampler + the
 *               learner (learn.h) + a replay ring of recent examples.
 *   index       the HNSW graph kept between publishes: only items whose
 *               vector moved since the last publish (the positives and
 *               negatives of the examples since) are re-inserted, new
 *               items are added.
 *
 * Applying a training example (MV_RECORD_EXAMPLE, from the feature
 * worker) is applying its action, after taking from its features what the
 * catalogue lacks: the category of an item without one, the creation time
 * of an item this action creates (a features record, when it comes, stays
 * the authority; the example's popularity count is not the trainer's
 * decayed popularity and is not used).
 *
 * Applying an action (the feature role joins it with the catalogue, the
 * trainer role learns from it): weight = the action type's weight; weight
 * <= 0 (Dislike by default) counts the event but is not a positive.
 * Otherwise the item's popularity gets weight (decayed by event time), the
 * example is learned once (mvw_learn_one) and put in the replay ring, and
 * replay_ratio examples drawn from the ring are learned again, which keeps
 * the online model from drifting toward the latest few users.  Counting
 * state (popularity, ids) is changed exactly once per record; recovery
 * relies on that (see daemon.c).
 *
 * Popularity: p <- p * 2^(-(t - t_ref) / half_life) + weight, t = the
 * event's timestamp; half_life 0 means no decay, so p is the exact sum of
 * weights (what the crash test counts).  A snapshot stores p decayed to the
 * publish time; a restore takes that time as every item's t_ref.
 *
 * Client retries: an action whose event id is the client's retry key
 * ("client_event_id":true, shared/events.h) is applied once: the trainer
 * remembers the last dedupe_window such ids (model/dedupe.h, evicted by
 * count so a replay decides the same), and skips one it remembers.  The
 * set belongs to the model's stream position, so it is published beside
 * each snapshot and restored with it (publish/trainer_snapshot.h).
 */
#ifndef MVW_TRAINER_H
#define MVW_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "events.h"
#include "hnsw.h"
#include "model/mf.h"
#include "mv_common.h"
#include "snapshot.h"

typedef struct mvw_trainer_params {
    mvw_mf_params_t  mf;                 /* dim, loss, optimiser, init ... */
    double           neg_ratio;          /* negatives per positive */
    double           sampler_power;      /* 0.75 */
    int              lr_decay;           /* offline fit: linear to 0 */
    float            action_weights[MV_ACTION_TYPES];
    double           replay_ratio;       /* replayed examples per event */
    size_t           replay_window;      /* ring size; 0 = no replay */
    double           half_life_ms;       /* popularity decay; 0 = none */
    mv_metric_t      metric;
    uint32_t         hnsw_m;
    uint32_t         hnsw_ef_construction;
    int              sq8;
    unsigned         keep;               /* generations kept on publish */
    uint64_t         seed;
    size_t           dedupe_window;      /* client event ids remembered;
                                            0 = no deduplication */
} mvw_trainer_params_t;

typedef struct mvw_trainer_stats {
    uint64_t  actions;          /* action records applied */
    uint64_t  items;            /* item records applied */
    uint64_t  invalid;          /* records refused (bad payload) */
    uint64_t  not_positive;     /* actions with weight <= 0 */
    uint64_t  updates;          /* optimiser steps, replay included */
    uint64_t  replayed;
    uint64_t  new_users;
    uint64_t  new_items;
    double    loss_ema;         /* of the new (not replayed) examples */
    uint32_t  n_users;
    uint32_t  n_items;
    uint64_t  generation;       /* last published or restored */
    uint64_t  publishes;
    int64_t   last_publish_ms;  /* wall clock, 0 = never */
    double    last_publish_s;   /* how long it took */
    uint32_t  last_reinserted;  /* items re-inserted into the HNSW */
    uint64_t  pending;          /* records applied since the last publish */
    uint64_t  duplicates;       /* client event ids seen again: skipped */
    uint64_t  dedupe_lost;      /* resumes without the generation's set */
} mvw_trainer_stats_t;

typedef struct mvw_trainer mvw_trainer_t;

#define MVW_TRAINER_FAILED  (-2)    /* mvw_trainer_apply: not the record's
                                       fault; see there */
#define MVW_TRAINER_DUPLICATE  1    /* mvw_trainer_apply: applied before */

/* Defaults: the config defaults of [training] and [recommendation]. */
void mvw_trainer_params_default(mvw_trainer_params_t *p);

/* An empty trainer (no items, no users, generation 0).  NULL + err. */
mvw_trainer_t *mvw_trainer_new(const mvw_trainer_params_t *p, mv_err_t *err);

void mvw_trainer_free(mvw_trainer_t *t);

/*
 * Adopts a validated snapshot as the current model: its items (ids,
 * vectors, metadata, categories), users (ids, vectors), HNSW graph and
 * generation.  Only on an empty trainer.  The snapshot's dim and metric
 * must equal the parameters'.  With item_bias the users' last coordinate
 * is set to 1.  The view may be closed afterwards.  Returns MV_OK or
 * MV_ERR (then the trainer is unusable: free it).
 */
int mvw_trainer_restore(mvw_trainer_t *t, const mv_snapshot_view_t *v,
    mv_err_t *err);

/*
 * After mvw_trainer_restore: adopts the users of one more segment of the
 * same generation (a user segment, shared/generation.h), in segment order:
 * a user it already has takes the segment's vector, a new one gets a row.
 * Returns MV_OK or MV_ERR (then the trainer is unusable: free it).
 */
int mvw_trainer_restore_users(mvw_trainer_t *t, const mv_snapshot_view_t *v,
    mv_err_t *err);

/*
 * Applies one stream record (type MV_RECORD_ACTION, MV_RECORD_ITEM or
 * MV_RECORD_EXAMPLE, payload as in shared/events.h).  now_ms stands in
 * for a missing timestamp.  Returns MV_OK when applied; MV_ERR with err set when the
 * record is refused (invalid payload, unknown type, embedding of another
 * dimension): nothing of it is applied and stats.invalid counts it; or
 * MVW_TRAINER_FAILED with err set when the trainer could not apply a valid
 * record (out of memory, too many items): nothing countable is applied
 * (a new user or item row may exist), and the caller must not publish a
 * position past this record -- the daemon exits so that a restart reads
 * it again.  MVW_TRAINER_DUPLICATE: an action (or example) marked
 * "client_event_id":true whose event id is among the last dedupe_window
 * such ids applied: nothing is applied (no model update, no popularity,
 * not counted in actions), stats.duplicates counts it and
 * mvw_trainer_last_duplicate names it.  Unmarked actions are never
 * deduplicated, whatever their event_id.
 */
int mvw_trainer_apply(mvw_trainer_t *t, uint16_t type, const char *payload,
    size_t len, int64_t now_ms, mv_err_t *err);

/*
 * Offline training with the online model code: on an empty trainer, takes
 * d's users and items (in d's index order, so index i of d is row i of the
 * model), sets each item's popularity to the sum of its weights, then runs
 * mvw_learn_fit for epochs passes over d's interactions.  progress as in
 * mvw_learn_fit (may be NULL).  Returns MV_OK or MV_ERR.
 */
int mvw_trainer_fit(mvw_trainer_t *t, const mvw_dataset_t *d,
    uint32_t epochs, int (*progress)(void *ctx, uint32_t epoch,
    double mean_loss), void *ctx, mv_err_t *err);

void mvw_trainer_stats(const mvw_trainer_t *t, mvw_trainer_stats_t *st);

/* The event id of the last MVW_TRAINER_DUPLICATE ("" before any). */
const char *mvw_trainer_last_duplicate(const mvw_trainer_t *t);

/* Sets the generation the next publish counts from (it publishes g + 1). */
void mvw_trainer_set_generation(mvw_trainer_t *t, uint64_t g);

/* The model (for tests and the offline commands; owned by t). */
mvw_mf_t *mvw_trainer_model(mvw_trainer_t *t);

/* User u's id (u < stats.n_users; valid until the next record). */
const char *mvw_trainer_user_id(const mvw_trainer_t *t, uint32_t u);

/* Item / user index of an id, or -1. */
int64_t mvw_trainer_find_item(const mvw_trainer_t *t, const char *id);
int64_t mvw_trainer_find_user(const mvw_trainer_t *t, const char *id);

/* Item i's current popularity decayed to now_ms. */
double mvw_trainer_popularity(const mvw_trainer_t *t, uint32_t i,
    int64_t now_ms);

#endif /* MVW_TRAINER_H */
