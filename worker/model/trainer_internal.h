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

    mv_hnsw_t             *hnsw;             /* until a publisher takes
                                                it (mvw_publisher_new) */

    /* Users changed since the last freeze (publish/publish_batch.c):
       those of index >= users_frozen are new; older ones touched by
       learning are marked once in user_mark and listed in user_list
       (both sized users_frozen at the freeze, so marking never
       allocates). */
    uint32_t               users_frozen;
    uint8_t               *user_mark;
    uint32_t              *user_list;
    uint32_t               n_user_list;

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

    /* the publisher of the synchronous publish (trainer_snapshot.c),
       freed through pub_free so that model/ needs nothing of publish/ */
    void                  *pub;
    void                 (*pub_free)(void *pub);
    char                   pub_dir[4096];
};

/* Marks user u changed since the last freeze (no allocation). */
static inline void
mvw_trainer_user_changed(mvw_trainer_t *t, uint32_t u)
{
    if (u < t->users_frozen && !t->user_mark[u]) {
        t->user_mark[u] = 1;
        t->user_list[t->n_user_list++] = u;
    }
}

/* The HNSW parameters of t's configuration (dim, metric, M,
   ef_construction, seed, sq8). */
void mvw_trainer_hnsw_params(const mvw_trainer_t *t, mv_hnsw_params_t *hp);

#endif /* MVW_TRAINER_INTERNAL_H */
