/*
 * daemon_drain.h -- `milvuso-worker --worker-type drain`: the drain's
 * process (daemon_drain.c), started by mvw_cmd_daemon once the
 * configuration is loaded and the role allowed.
 */
#ifndef MVW_DAEMON_DRAIN_H
#define MVW_DAEMON_DRAIN_H

#include "cli/logging.h"
#include "config/config.h"
#include "drain/drain.h"

/*
 * Runs the drain of configuration c (worker.action_log and its retention
 * keys, [kafka] brokers, log_topic and feature_topic, [drain],
 * worker.log_level and poll_interval) until SIGTERM or SIGINT, detached
 * unless foreground.  Returns the process's exit code: 0 after a stop
 * whose last transaction committed, 1 otherwise.
 */
int mvw_drain_daemon(const mvw_config_t *c, int foreground);

/* Writes [drain] metrics_file (milvuso_drain_*) from st; none configured:
   nothing.  Returns 0, or -1 (the file could not be written). */
int mvw_drain_write_metrics(const mvw_config_t *c,
    const mvw_drain_stats_t *st);

/* Logs the drain's progress line from st, at info. */
void mvw_drain_report(const mvw_log_t *log, const mvw_drain_stats_t *st);

#endif /* MVW_DAEMON_DRAIN_H */
