/*
 * daemon_loop.h -- the process of the Kafka-transactional daemons, the
 * feature worker (daemon_feature.c) and the drain (daemon_drain.c), as
 * one loop: the role's object stepped until SIGTERM / SIGINT
 * (cli/process.h), its metrics file written every METRICS_MS when
 * something changed (every METRICS_IDLE_MS otherwise), a progress line
 * every REPORT_MS when it progressed, the open transaction settled at
 * the stop, exit 1 on a fatal error without settling anything.
 *
 * The object is one of the two (mvw_daemon_obj_t names which); what
 * differs between them -- their stats, what counts as changed or as
 * progress, their metrics names and progress lines (each daemon file's
 * mvw_*_write_metrics and mvw_*_report) -- is chosen here by role, so
 * that neither daemon keeps a copy of the loop.  No state beyond a call.
 */
#ifndef MVW_DAEMON_LOOP_H
#define MVW_DAEMON_LOOP_H

#include "cli/logging.h"
#include "config/config.h"
#include "drain/drain.h"
#include "feature/pipeline.h"

/* The object a daemon runs: exactly one of the two is set. */
typedef struct {
    mvw_drain_t    *drain;
    mvw_feature_t  *feature;
} mvw_daemon_obj_t;

/*
 * Sets log up (stderr at c's worker.log_level) and the stop signals
 * (process.h): MVW_EXIT_OK, or MVW_EXIT_FAIL said on stderr.
 */
int mvw_daemon_begin(const mvw_config_t *c, mvw_log_t *log);

/*
 * Detaches unless foreground (process.h): MVW_EXIT_OK, or MVW_EXIT_FAIL
 * logged and o's object abandoned.
 */
int mvw_daemon_detach(mvw_daemon_obj_t o, const mvw_log_t *log,
    int foreground);

/*
 * Steps o's object until a stop signal or a fatal error, sleeping
 * c's worker.poll_interval after a step that found nothing.  At a signal
 * it logs "signal N: stopping", closes the object (its open transaction
 * settled within the object's bound), logs the progress line and writes
 * the metrics; at a fatal error it logs "ERROR; stopping without
 * committing (the next start aborts what is open and ...)", writes the
 * metrics and abandons the object.  The object is freed either way.
 * Returns the exit code: MVW_EXIT_OK after a close that settled,
 * MVW_EXIT_FAIL otherwise.
 */
int mvw_daemon_loop(const mvw_config_t *c, const mvw_log_t *log,
    mvw_daemon_obj_t o);

#endif /* MVW_DAEMON_LOOP_H */
