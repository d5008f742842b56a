/*
 * publish_batch.h -- a frozen copy of what a publish needs from the
 * trainer, so that the files can be written on another thread while the
 * trainer goes on learning (publish/publisher.h).
 *
 * A freeze copies, on the trainer's thread and between two records:
 *   - every item: ids, vectors, metadata (popularity decayed to the freeze
 *     time, which becomes the trainer's new reference: value-preserving,
 *     so a failed publish loses nothing), and which items moved since the
 *     last freeze (for the graph);
 *   - the categories;
 *   - only the users whose rows changed since the last freeze (new users,
 *     and older ones that learning touched), with their rows;
 *   - the stream positions the model includes at that moment, and the
 *     dedupe set that goes with them (encoded, O(its ids)).
 * Its cost is O(items + changed users), not O(users): at 1M users and
 * 10k changed ones it copies a few MB.
 *
 * If the publish fails, mvw_trainer_unfreeze marks the batch's items and
 * users changed again, so the next freeze includes them; positions travel
 * with the rows they cover, so nothing is lost or counted twice.
 */
#ifndef MVW_PUBLISH_BATCH_H
#define MVW_PUBLISH_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "data/idmap.h"
#include "model/trainer.h"
#include "mv_common.h"
#include "snapshot.h"

typedef struct mvw_publish_batch {
    uint64_t          generation;      /* set by the publisher */
    int64_t           now_ms;          /* created_at of the generation */
    uint32_t          dim;
    mv_metric_t       metric;

    uint32_t          n_items;
    mvw_idmap_t       item_ids;        /* copy: item i = id i */
    float            *item_vectors;    /* n_items x dim */
    mv_item_meta_t   *item_meta;       /* n_items */
    uint8_t          *item_moved;      /* n_items: 1 = re-link in the graph */

    mvw_idmap_t       categories;      /* copy */

    uint32_t          n_users_total;   /* users in the model */
    uint32_t          n_changed;       /* users below */
    uint32_t         *user_index;      /* the trainer's index of each */
    mvw_idmap_t       user_ids;        /* changed user k = id k */
    float            *user_vectors;    /* n_changed x dim */

    uint64_t          records;         /* trainer's `pending` at the freeze */
    uint32_t          n_positions;
    mv_stream_pos_t   positions[MV_SNAPSHOT_MAX_POSITIONS];

    void             *dedupe;          /* the dedupe set's file bytes
                                          (model/dedupe.h), or NULL when
                                          the trainer keeps none */
    size_t            dedupe_len;
} mvw_publish_batch_t;

/*
 * Freezes t into b (which it initialises) with positions[0 .. n_pos) and
 * now_ms, and starts the next change set.
 * Returns MV_OK, or MV_ERR with err set (out of memory, too many
 * positions): then b is empty and t unchanged.
 */
int mvw_trainer_freeze(mvw_trainer_t *t, const mv_stream_pos_t *positions, size_t n_pos, int64_t now_ms,
    mvw_publish_batch_t *b, mv_err_t *err);

/*
 * After b failed to publish: marks its items moved and its users changed
 * again in t (the same trainer that froze it), so that the next freeze
 * carries them.  b is not freed.
 */
void mvw_trainer_unfreeze(mvw_trainer_t *t, const mvw_publish_batch_t *b);

/*
 * Marks every user of t as changed: the next freeze carries all of them
 * (after a restore from a file whose users cannot be shared, or none).
 */
void mvw_trainer_all_users_changed(mvw_trainer_t *t);

/*
 * Marks no user as changed: after a restore from a generation whose user
 * segments the next manifest names again.  Returns MV_OK or MV_ERR (out of
 * memory for the change marks).
 */
int mvw_trainer_users_published(mvw_trainer_t *t, mv_err_t *err);

/* Frees what b holds; b may be reused with mvw_trainer_freeze. */
void mvw_publish_batch_free(mvw_publish_batch_t *b);

#endif /* MVW_PUBLISH_BATCH_H */
