/*
 * trainer_snapshot.h -- where the trainer's results go: a snapshot
 * generation in the publish directory that nginx maps (shared/snapshot.h
 * has the format and the crash-safe publish).  The Redis, PostgreSQL and
 * Milvus sinks will sit beside it.
 */
#ifndef MVW_TRAINER_SNAPSHOT_H
#define MVW_TRAINER_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "model/trainer.h"
#include "mv_common.h"
#include "snapshot.h"

/*
 * Publishes the current model as generation (last + 1) into dir (see
 * mv_snapshot_publish), with positions[0 .. n_pos) as the stream
 * positions it includes, popularity decayed to now_ms; with a dedupe
 * window, the dedupe set is written beside it first
 * (mvw_trainer_dedupe_path), and side files of generations no longer kept
 * are removed after.  path_out (may be
 * NULL) receives the file's path.  Returns MV_OK, or MV_ERR with the
 * generation number unchanged (the next publish tries the same one).
 */
int mvw_trainer_publish(mvw_trainer_t *t, const char *dir,
    const mv_stream_pos_t *positions, size_t n_pos, int64_t now_ms,
    char *path_out, size_t path_out_len, mv_err_t *err);

/*
 * The path of generation's dedupe side file in dir
 * (dir/snapshot-<generation>.mvs.dedupe) into buf.  MV_OK or MV_ERR.
 */
int mvw_trainer_dedupe_path(const char *dir, uint64_t generation, char *buf,
    size_t len, mv_err_t *err);

/*
 * After mvw_trainer_restore of snapshot v from dir: takes v's
 * generation's dedupe set (the ids its stream positions include).  With a
 * dedupe_window of 0, or a snapshot without stream positions (made
 * offline: it includes no stream record, so its set is empty), there is
 * nothing to load: MV_OK with an empty set.  A missing or invalid file:
 * MV_ERR with err saying why, the set left empty and stats.dedupe_lost
 * counted -- the trainer still works, but a retry of an id applied before
 * the snapshot may be applied again.
 */
int mvw_trainer_restore_dedupe(mvw_trainer_t *t, const char *dir,
    const mv_snapshot_view_t *v, mv_err_t *err);

#endif /* MVW_TRAINER_SNAPSHOT_H */
