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
 * positions it includes, popularity decayed to now_ms.  path_out (may be
 * NULL) receives the file's path.  Returns MV_OK, or MV_ERR with the
 * generation number unchanged (the next publish tries the same one).
 */
int mvw_trainer_publish(mvw_trainer_t *t, const char *dir,
    const mv_stream_pos_t *positions, size_t n_pos, int64_t now_ms,
    char *path_out, size_t path_out_len, mv_err_t *err);

#endif /* MVW_TRAINER_SNAPSHOT_H */
