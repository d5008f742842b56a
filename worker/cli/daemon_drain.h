/*
 * daemon_drain.h -- `milvuso-worker --worker-type drain`: the drain's
 * process (daemon_drain.c), started by mvw_cmd_daemon once the
 * configuration is loaded and the role allowed.
 */
#ifndef MVW_DAEMON_DRAIN_H
#define MVW_DAEMON_DRAIN_H

#include "config/config.h"

/*
 * Runs the drain of configuration c (worker.action_log and its retention
 * keys, [kafka] brokers, log_topic and feature_topic, [drain],
 * worker.log_level and poll_interval) until SIGTERM or SIGINT, detached
 * unless foreground.  Returns the process's exit code: 0 after a stop
 * whose last transaction committed, 1 otherwise.
 */
int mvw_drain_daemon(const mvw_config_t *c, int foreground);

#endif /* MVW_DAEMON_DRAIN_H */
