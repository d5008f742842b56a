/*
 * synthetic.h -- a seeded synthetic catalogue, so that a snapshot (and with
 * it nginx's recommendation paths) can be built with no data at all.
 *
 * Items are "item-%06u", categories "cat-%02u" (all n_categories of them
 * exist, even an empty one).  Item vectors come from mv_synth_clustered with
 * one cluster per category, and the cluster index is the category, so items
 * of a category are near each other.  Popularity is Zipf-like: 1 / (rank + 1)
 * over a seeded permutation of the items.  created_at is a fixed base
 * (2024-01-01T00:00:00Z) plus i seconds, so the output depends on nothing but
 * the parameters.  Users are "user-%06u"; a user likes one category and sits
 * near it: the mean of up to three of its items plus a little noise.
 *
 * The same parameters give the same catalogue, byte for byte, on every
 * platform (mv_rng and mv_synth_clustered are platform-independent).
 */
#ifndef MVW_SYNTHETIC_H
#define MVW_SYNTHETIC_H

#include <stdint.h>

#include "data/catalog.h"
#include "mv_common.h"

#define MVW_SYNTH_BASE_MS     1704067200000LL    /* 2024-01-01T00:00:00Z */
#define MVW_SYNTH_SPREAD      0.5f               /* within-cluster noise */
#define MVW_SYNTH_USER_NOISE  0.25f

typedef struct mvw_synth_params {
    uint32_t  n_items;          /* >= 1 */
    uint32_t  dim;              /* 1..MV_DIM_MAX */
    uint32_t  n_categories;     /* >= 1 */
    uint32_t  n_users;          /* may be 0 */
    uint64_t  seed;
} mvw_synth_params_t;

/*
 * Fills the empty catalogue c with the synthetic catalogue of p.  Returns
 * MV_OK, or MV_ERR with err set (bad parameters, out of memory); c is then
 * left for the caller to free.
 */
int mvw_synth_catalog(mvw_catalog_t *c, const mvw_synth_params_t *p,
    mv_err_t *err);

#endif /* MVW_SYNTHETIC_H */
