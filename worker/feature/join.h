/*
 * join.h -- the feature worker's state and its one operation: join an
 * action with what is known of its item, giving a training example
 * (shared/events.h).  No Kafka here (feature/pipeline.c carries records
 * in and out), so the behaviour is unit-testable in memory.
 *
 * The item table, one row per item id seen in a features record or in an
 * action:
 *   features    from the item's last features record (category, tags,
 *               created_at, deleted); a row made by an action alone has
 *               none, and its examples say "features": null;
 *   popularity  how many actions on the item have been joined, every
 *               action type counted, this one included (the example's
 *               "popularity").
 *
 * Counts are transactional, because the pipeline commits examples in
 * Kafka transactions: each count has a committed value and the current
 * one; mvw_join_commit makes the current counts the committed ones (the
 * transaction that carries them committed), mvw_join_rollback puts them
 * back (it aborted: its actions will be joined again).  The items changed
 * since the last commit or rollback are listed (mvw_join_changed), so the
 * pipeline writes exactly their new counts into the same transaction.  A
 * restart sets the committed counts back with mvw_join_set_count.
 *
 * Features are not transactional: they are a table the pipeline re-reads
 * from the features topic at every start, so an action is joined with the
 * item's features as last read, never older than at the previous join.
 *
 * One thread; no global state.
 */
#ifndef MVW_JOIN_H
#define MVW_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "mv_common.h"

#define MVW_JOIN_FAILED  (-2)   /* not the record's fault: out of memory,
                                   too many items */

typedef struct mvw_join mvw_join_t;

typedef struct mvw_join_stats {
    uint32_t  items;            /* rows in the table */
    uint32_t  with_features;    /* rows whose features are known */
    uint32_t  changed;          /* counts changed since commit/rollback */
} mvw_join_stats_t;

/*
 * An empty table.  dim: the embedding length features records must have
 * (recommendation.embedding_dim; 0 = any, 1 .. MV_DIM_MAX).  Returns NULL
 * with err set when memory runs out.
 */
mvw_join_t *mvw_join_new(uint32_t dim, mv_err_t *err);

void mvw_join_free(mvw_join_t *j);

/*
 * Applies one features record (an item payload, shared/events.h, from
 * stored data): the item's features become the record's.  now_ms stands in
 * for a missing created_at.  Returns MV_OK; MV_ERR with err set when the
 * record is refused (invalid, embedding of another dimension), nothing
 * changed; or MVW_JOIN_FAILED (out of memory), nothing changed.
 */
int mvw_join_item(mvw_join_t *j, const char *payload, size_t len,
    int64_t now_ms, mv_err_t *err);

/*
 * Joins one action payload: counts it on its item (creating a row without
 * features for an item never seen) and fills *x with the action, the
 * item's count and its features (has_features 0 when unknown).  now_ms
 * stands in for a missing timestamp.  Returns MV_OK; MV_ERR with err set
 * when the action is refused (nothing counted); MVW_JOIN_FAILED when the
 * count cannot be kept (out of memory, a count at
 * MV_EXAMPLE_POPULARITY_MAX), nothing counted.
 */
int mvw_join_action(mvw_join_t *j, const char *payload, size_t len,
    int64_t now_ms, mv_example_t *x, mv_err_t *err);

/*
 * Sets item id[0 .. len)'s committed and current count to count (0: no
 * action counted), creating its row when needed: the state a restart
 * reads back.  Only while nothing is changed (right after new, commit or
 * rollback).  Returns MV_OK; MV_ERR for an invalid id, a count above
 * MV_EXAMPLE_POPULARITY_MAX or changed counts pending; MVW_JOIN_FAILED
 * when out of memory.
 */
int mvw_join_set_count(mvw_join_t *j, const char *id, size_t len,
    uint64_t count, mv_err_t *err);

/* Items whose count changed since the last commit or rollback. */
size_t mvw_join_n_changed(const mvw_join_t *j);

/* The k-th of them (k < mvw_join_n_changed): its id and current count. */
const char *mvw_join_changed(const mvw_join_t *j, size_t k,
    uint64_t *count);

/* The current counts become the committed ones; nothing is changed after. */
void mvw_join_commit(mvw_join_t *j);

/* The counts go back to the committed ones; nothing is changed after. */
void mvw_join_rollback(mvw_join_t *j);

/* Item id's current count (0 when unknown). */
uint64_t mvw_join_count(const mvw_join_t *j, const char *id);

void mvw_join_stats(const mvw_join_t *j, mvw_join_stats_t *st);

#endif /* MVW_JOIN_H */
