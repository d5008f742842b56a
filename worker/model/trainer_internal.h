/*
 * trainer_internal.h -- the online trainer's state, for the files that
 * implement it: model/trainer.c (catalogue, learning, restore, fit) and
 * publish/trainer_snapshot.c (publishing).  Nothing else includes it; the
 * rest of the worker goes through trainer.h.
 */
#ifndef MVW_TRAINER_INTERNAL_H
#define MVW_TRAINER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "events.h"
#include "hnsw.h"
#include "model/dedupe.h"
#include "model/learn.h"
#include "model/mf.h"
#include "model/sampler.h"
#include "model/trainer.h"
#include "synth.h"

struct mvw_trainer {
    mvw_trainer_params_t   p;
    mvw_mf_t              *mf;
    mvw_sampler_t          sampler;
    mvw_learner_t          learner;
    mv_rng_t               rng;              /* replay draws */

    mvw_idmap_t            users;
    mvw_idmap_t            items;
    mvw_idmap_t            categories;

    uint32_t               items_cap;
    uint32_t              *item_category;
    uint32_t              *item_flags;
    double                *item_pop;
    int64_t               *item_pop_ms;      /* t_ref of item_pop */
    int64_t               *item_created_ms;
    uint8_t               *item_dirty;
    double                *counts;           /* sampler input scratch */

    mv_hnsw_t             *hnsw;

    mvw_interaction_t     *ring;             /* replay window */
    size_t                 ring_len;
    size_t                 ring_head;

    uint64_t               since_rebuild;
    uint64_t               sampler_stale;    /* positives it cannot draw */
    float                 *vec;              /* one item embedding */
    mv_item_event_t        item_ev;          /* big: kept here */
    mv_example_t           example;          /* likewise */

    mvw_dedupe_t           dedupe;           /* client event ids */
    char                   last_duplicate[MV_ID_MAX + 1];

    mvw_trainer_stats_t    st;
};

/* The HNSW parameters of t's configuration (dim, metric, M,
   ef_construction, seed, sq8). */
void mvw_trainer_hnsw_params(const mvw_trainer_t *t, mv_hnsw_params_t *hp);

#endif /* MVW_TRAINER_INTERNAL_H */
