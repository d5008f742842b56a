/*
 * daemon_feature.h -- `milvuso-worker --worker-type feature`: the feature
 * worker's process (daemon_feature.c), started by mvw_cmd_daemon once the
 * configuration is loaded and the role allowed.
 */
#ifndef MVW_DAEMON_FEATURE_H
#define MVW_DAEMON_FEATURE_H

#include "config/config.h"

/*
 * Runs the feature worker of configuration c ([kafka] topics and brokers,
 * [feature] group, topic and commit keys, recommendation.embedding_dim,
 * worker.log_level and poll_interval) until SIGTERM or SIGINT, detached
 * unless foreground.  Returns the process's exit code: 0 after a stop
 * whose last transaction committed, 1 otherwise.
 */
int mvw_feature_daemon(const mvw_config_t *c, int foreground);

#endif /* MVW_DAEMON_FEATURE_H */
