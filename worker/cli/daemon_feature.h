/*
 * daemon_feature.h -- `milvuso-worker --worker-type feature`: the feature
 * worker's process (daemon_feature.c), started by mvw_cmd_daemon once the
 * configuration is loaded and the role allowed.
 */
#ifndef MVW_DAEMON_FEATURE_H
#define MVW_DAEMON_FEATURE_H

#include "cli/logging.h"
#include "config/config.h"
#include "feature/pipeline.h"

/*
 * Runs the feature worker of configuration c ([kafka] topics and brokers,
 * [feature] group, topic and commit keys, recommendation.embedding_dim,
 * worker.log_level and poll_interval) until SIGTERM or SIGINT, detached
 * unless foreground.  Returns the process's exit code: 0 after a stop
 * whose last transaction committed, 1 otherwise.
 */
int mvw_feature_daemon(const mvw_config_t *c, int foreground);

/* Writes [feature] metrics_file (milvuso_feature_*) from st; none
   configured: nothing.  Returns 0, or -1 (it could not be written). */
int mvw_feature_write_metrics(const mvw_config_t *c,
    const mvw_feature_stats_t *st);

/* Logs the feature worker's progress line from st, at info. */
void mvw_feature_report(const mvw_log_t *log,
    const mvw_feature_stats_t *st);

#endif /* MVW_DAEMON_FEATURE_H */
