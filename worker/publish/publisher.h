/*
 * publisher.h -- turns frozen batches (publish_batch.h) into published
 * generations (shared/generation.h), on the caller's thread
 * (mvw_publisher_run) or on a thread of its own (mvw_publisher_start,
 * submit, poll), so that the trainer never waits for a publish.
 *
 * The publisher owns the item graph: it takes the trainer's HNSW at
 * creation and brings it up to date with each batch (items that moved are
 * re-linked, new ones added, deleted marks set), which is the ~1 s of a
 * publish at 10k items that used to stop training.
 *
 * Generation G is published as:
 *   items-G.mvs            every item, the categories, the graph,
 *                          popularity (written whole each generation);
 *   users-G.mvs            the users the batch carries (none: no file);
 *   gen-G.mvm.dedupe       the trainer's dedupe set at the batch's
 *                          positions (when it keeps one);
 *   gen-G.mvm              the manifest: items-G, the user segments of the
 *                          previous generation, then users-G;
 * and `current` then names gen-G.mvm (mv_generation_publish, which also
 * prunes).  When the deltas of the last published generation L are too
 * many (more than max_deltas) or too big (their bytes above base_ratio x
 * the base's), the publish of G first merges L's users into
 * users-L.base.mvs (mv_generation_compact_users), and G's manifest names
 * that base instead of the segments it replaces.  So a publish writes what changed
 * plus the items, and compaction rewrites the users in the background at
 * a bounded write amplification.
 *
 * Generations are numbered by the publisher, after the newest file in the
 * directory; a failed attempt's number is never reused (its files may
 * exist), so numbers may skip.
 */
#ifndef MVW_PUBLISHER_H
#define MVW_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include "generation.h"
#include "model/trainer.h"
#include "mv_common.h"
#include "publish/publish_batch.h"

typedef struct mvw_publisher mvw_publisher_t;

/* What one publish did. */
typedef struct mvw_publish_report {
    int        ok;              /* 1 published, 0 failed (err says why) */
    mv_err_t   err;
    uint64_t   generation;      /* published (or tried) */
    uint64_t   bytes;           /* written: segments, manifest, side file */
    uint32_t   user_segments;   /* named by the manifest */
    uint32_t   reinserted;      /* items re-linked or added in the graph */
    double     index_s;         /* bringing the graph up to date */
    double     write_s;         /* segments, side file, manifest, prune */
    double     total_s;
    int        compacted;       /* 1 when it named a new base */
    int        compact_waited;  /* 1 when it waited for the compaction */
    int        compact_started; /* 1 when it started one (background) */
    uint64_t   compact_bytes;
    double     compact_s;
    mv_err_t   compact_err;     /* when compaction failed (the publish
                                   stands; the deltas stay) */
} mvw_publish_report_t;

/*
 * A publisher for dir keeping `keep` generations (keep >= 1), taking t's
 * graph (t keeps none afterwards) and its HNSW parameters.  Numbers
 * generations after the newest one in dir and after t's generation.
 * NULL with err set on failure.
 */
mvw_publisher_t *mvw_publisher_new(mvw_trainer_t *t, const char *dir,
    unsigned keep, mv_err_t *err);

/*
 * The same without a trainer (benchmarks, tools): HNSW parameters hp,
 * taking hnsw (may be NULL: built from the first batch's items) on success
 * only, and numbering generations after the newest one in dir and after
 * `after`.
 */
mvw_publisher_t *mvw_publisher_new_graph(const mv_hnsw_params_t *hp,
    mv_hnsw_t *hnsw, uint64_t after, const char *dir, unsigned keep,
    mv_err_t *err);

/* Takes the graph back from p (which keeps none); NULL when it has none. */
mv_hnsw_t *mvw_publisher_release_index(mvw_publisher_t *p);

/* Compaction policy (defaults 8 and 0.5). */
void mvw_publisher_set_compaction(mvw_publisher_t *p, uint32_t max_deltas,
    double base_ratio);

/*
 * Continues generation g of dir (the one the trainer was restored from):
 * when it has a manifest, its user segments are named again by the next
 * one.  After a restore from a plain snapshot file (no manifest) or from
 * nothing, the trainer's users must all be marked changed instead
 * (mvw_trainer_all_users_changed).  MV_OK or MV_ERR.
 */
int mvw_publisher_resume(mvw_publisher_t *p, const mv_generation_t *g,
    mv_err_t *err);

/*
 * Publishes b on the caller's thread and fills r.  b->generation receives
 * the number used.  Returns MV_OK or MV_ERR (r->err has the reason; then
 * the caller unfreezes b into the trainer).
 */
int mvw_publisher_run(mvw_publisher_t *p, mvw_publish_batch_t *b,
    mvw_publish_report_t *r);

/* Starts the publisher's thread.  MV_OK or MV_ERR. */
int mvw_publisher_start(mvw_publisher_t *p, mv_err_t *err);

/*
 * Hands b to the thread (the batch's contents move to the publisher; b is
 * left empty).  Returns 1 when taken, 0 when a batch is still in flight or
 * its result not yet collected (the caller keeps b).
 */
int mvw_publisher_submit(mvw_publisher_t *p, mvw_publish_batch_t *b);

/*
 * 1 when a compaction finished in the background and the next publish
 * would name its base.  Only while not busy (the publisher's thread is
 * then waiting, and the caller saw its state under the lock).
 */
int mvw_publisher_compaction_ready(mvw_publisher_t *p);

/* 1 while a compaction runs or waits to be named (same rule). */
int mvw_publisher_compacting(mvw_publisher_t *p);

/* 1 while a batch is in flight or its result not yet collected. */
int mvw_publisher_busy(mvw_publisher_t *p);

/*
 * Collects the result of the batch handed to the thread: returns 1 and
 * moves the batch back into *b (free it, or unfreeze it when r->ok is 0)
 * with its report into *r; 0 when there is none yet.  With wait set,
 * blocks until the batch in flight is done (0 at once when none is).
 */
int mvw_publisher_poll(mvw_publisher_t *p, int wait, mvw_publish_batch_t *b,
    mvw_publish_report_t *r);

/* Stops the thread (after the batch in flight) and frees p.  NULL ok. */
void mvw_publisher_free(mvw_publisher_t *p);

#endif /* MVW_PUBLISHER_H */
