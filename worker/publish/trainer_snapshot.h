/*
 * trainer_snapshot.h -- where the trainer's results go: generations in
 * the publish directory that nginx maps (shared/generation.h has the
 * format and the crash-safe publish; publish/publisher.h writes them).
 * The Redis, PostgreSQL and Milvus sinks will sit beside it.
 *
 * This is the synchronous way, for the offline `train` command and the
 * tests: freeze, publish on the caller's thread, take the result.  The
 * daemon does the same three steps with the publish on the publisher's
 * thread (daemon.c).
 */
#ifndef MVW_TRAINER_SNAPSHOT_H
#define MVW_TRAINER_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "generation.h"
#include "model/trainer.h"
#include "mv_common.h"
#include "publish/publisher.h"
#include "snapshot.h"

/*
 * The trainer's publisher for dir (created on first use: it takes the
 * trainer's graph; freed with the trainer).  A publisher for another
 * directory is replaced (the graph passes on); a new publisher names no
 * user segment yet, so every user is marked changed.  NULL with err set
 * when it cannot be created.
 */
mvw_publisher_t *mvw_trainer_publisher(mvw_trainer_t *t, const char *dir,
    mv_err_t *err);

/*
 * After mvw_trainer_restore_generation of g from dir: the trainer's
 * publisher for dir continues g (mvw_publisher_resume), and when g has a
 * manifest no user is marked changed any more (its user segments are
 * named again by the next one).  MV_OK or MV_ERR.
 */
int mvw_trainer_resume(mvw_trainer_t *t, const char *dir,
    const mv_generation_t *g, mv_err_t *err);

/*
 * Publishes the current model as the next generation in dir, on the
 * caller's thread, with positions[0 .. n_pos) as the stream positions it
 * includes and popularity decayed to now_ms; the dedupe set goes beside it
 * (gen-G.mvm.dedupe).  path_out (may be NULL) receives the manifest's
 * path.  Returns MV_OK, or MV_ERR with the trainer's changes kept for the
 * next publish (and the generation number of the failed try not reused).
 */
int mvw_trainer_publish(mvw_trainer_t *t, const char *dir,
    const mv_stream_pos_t *positions, size_t n_pos, int64_t now_ms,
    char *path_out, size_t path_out_len, mv_err_t *err);

/*
 * Takes the result of publishing batch b (frozen from t) into t's
 * statistics: on success the generation, the publish counters, what the
 * batch covered leaves `pending`; on failure b's changes are marked again
 * (mvw_trainer_unfreeze).  b is not freed.
 */
void mvw_trainer_published(mvw_trainer_t *t, const mvw_publish_batch_t *b,
    const mvw_publish_report_t *r);

/*
 * After restoring t from generation g of dir: takes the dedupe set
 * published beside it (gen-G.mvm.dedupe, or snapshot-G.mvs.dedupe beside a
 * plain snapshot file).  With a dedupe_window of 0, or a generation
 * without stream positions (made offline: it includes no stream record,
 * so its set is empty), there is nothing to load: MV_OK with an empty set.
 * A missing or invalid file: MV_ERR with err saying why, the set left
 * empty and stats.dedupe_lost counted -- the trainer still works, but a
 * retry of an id applied before the generation may be applied again.
 */
int mvw_trainer_restore_dedupe(mvw_trainer_t *t, const char *dir,
    const mv_generation_t *g, mv_err_t *err);

/*
 * Restores an empty trainer t from generation g (mvw_trainer_restore of
 * the items segment, then mvw_trainer_restore_users of each user segment
 * in order), with g's generation, every user marked changed (until
 * mvw_trainer_resume says which are published already).  MV_OK or MV_ERR
 * (free t).
 */
int mvw_trainer_restore_generation(mvw_trainer_t *t,
    const mv_generation_t *g, mv_err_t *err);

#endif /* MVW_TRAINER_SNAPSHOT_H */
