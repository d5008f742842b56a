/*
 * daemon_drain.c -- `milvuso-worker --config FILE --worker-type drain`:
 * the drain's process around drain/drain.c (where the exactly-once design
 * is).  It runs on the nginx host, beside nginx, reading the action log
 * nginx spools to while Kafka is away (worker.action_log) and producing
 * it into [kafka] log_topic and feature_topic.
 *
 *   open      the drain's handles from the configuration (a bad topic,
 *             broker list or log directory fails the start with its exit
 *             status, before detaching)
 *   loop      (daemon_loop.c, the feature worker's too)
 *             mvw_drain_step until SIGTERM / SIGINT; sleep
 *             worker.poll_interval when a step found nothing; [drain]
 *             metrics_file every second when something changed (every
 *             METRICS_IDLE_MS otherwise); a progress line every REPORT_MS
 *             when something was drained
 *   stop      commit the open transaction, exit 0 (1 when it could not be
 *             committed: its records are drained again by the next start)
 *   fatal     another drain of the same log took over, or librdkafka gave
 *             up: log, exit 1 without committing (the next start aborts
 *             what is open)
 *
 * A broker that is down never stops it: the drain retries, logging
 * rate-limited.  No lock of its own: Kafka makes it the one writer (its
 * transactional id, from the log directory, fences any earlier drain).
 */
#include <string.h>
#include <unistd.h>

#include "cli/daemon_drain.h"
#include "cli/daemon_loop.h"
#include "cli/logging.h"
#include "cli/metrics.h"
#include "drain/drain.h"
#include "worker.h"

int
mvw_drain_write_metrics(const mvw_config_t *c, const mvw_drain_stats_t *st)
{
    mvw_metrics_file_t  m;

    if (c->drain.metrics_file[0] == '\0') {
        return 0;
    }
    if (mvw_metrics_begin(&m, c->drain.metrics_file, "milvuso_drain_") != 0) {
        return -1;
    }
    mvw_metrics_counter(&m, "actions_total", "actions of the log committed "
                        "to log_topic", st->actions);
    mvw_metrics_counter(&m, "items_total", "items of the log committed to "
                        "feature_topic", st->items);
    mvw_metrics_counter(&m, "invalid_records_total", "log records neither "
                        "an action nor an item, drained past", st->invalid);
    mvw_metrics_counter(&m, "transactions_total", "transactions committed",
                        st->transactions);
    mvw_metrics_counter(&m, "refreshes_total", "idle commits of the same "
                        "position (so that Kafka keeps it)", st->refreshes);
    mvw_metrics_counter(&m, "aborts_total", "transactions aborted (their "
                        "records drained again)", st->aborts);
    mvw_metrics_counter(&m, "errors_total", "transport errors (broker "
                        "down ...)", st->errors);
    mvw_metrics_counter(&m, "skipped_bytes_total", "damaged log bytes "
                        "skipped", st->skipped_bytes);
    mvw_metrics_counter(&m, "removed_segments_total", "log segments removed "
                        "by retention once drained", st->removed_segments);
    mvw_metrics_counter(&m, "removed_bytes_total", "their bytes",
                        st->removed_bytes);
    mvw_metrics_gauge(&m, "pending_records", "records in the open "
                      "transaction", "%llu",
                      (unsigned long long) st->pending);
    mvw_metrics_gauge(&m, "position", "log position committed (segment << "
                      "40 | offset; 0: none)", "%llu",
                      (unsigned long long) st->position);
    mvw_metrics_gauge(&m, "phase", "0 starting, 1 resuming, 2 draining",
                      "%d", (int) st->phase);
    return mvw_metrics_end(&m);
}


void
mvw_drain_report(const mvw_log_t *log, const mvw_drain_stats_t *st)
{
    mvw_log(log, MVW_LOG_INFO, "drain: %llu transaction(s) committed, %llu "
            "action(s) and %llu item(s) drained, %llu record(s) refused, "
            "%llu abort(s)", (unsigned long long) st->transactions,
            (unsigned long long) st->actions,
            (unsigned long long) st->items,
            (unsigned long long) st->invalid,
            (unsigned long long) st->aborts);
}


int
mvw_drain_daemon(const mvw_config_t *c, int foreground)
{
    mvw_drain_params_t  p;
    mvw_drain_t        *d;
    mvw_log_t           log;
    mv_err_t            err;
    mvw_daemon_obj_t    o = { NULL, NULL };

    if (mvw_daemon_begin(c, &log) != MVW_EXIT_OK) {
        return MVW_EXIT_FAIL;
    }

    memset(&p, 0, sizeof(p));
    p.brokers = c->kafka.brokers;
    p.dir = c->worker.action_log;
    p.log_topic = c->kafka.log_topic;
    p.feature_topic = c->kafka.feature_topic;
    p.commit_interval = c->drain.commit_interval;
    p.commit_records = c->drain.commit_records;
    p.retention.keep_ms = (int64_t) (c->worker.action_log_retention * 1000.0);
    p.retention.max_bytes = c->worker.action_log_retention_bytes;
    p.retention.expire_ms =
        (int64_t) (c->worker.action_log_consumer_expiry * 1000.0);
    p.log = &log;

    d = mvw_drain_open(&p, &err);
    if (d == NULL) {
        mvw_log(&log, MVW_LOG_ERROR, "%s", err.msg);
        return MVW_EXIT_FAIL;
    }
    o.drain = d;
    if (mvw_daemon_detach(o, &log, foreground) != MVW_EXIT_OK) {
        return MVW_EXIT_FAIL;
    }
    mvw_log(&log, MVW_LOG_INFO, "worker drain following action log %s "
            "(consumer %s) into Kafka topics %s (actions) and %s (items) at "
            "%s, transactional id %s, a transaction every %g s or %u "
            "records (pid %d)", c->worker.action_log, mvw_drain_consumer(d),
            c->kafka.log_topic, c->kafka.feature_topic, c->kafka.brokers,
            mvw_drain_id(d), c->drain.commit_interval,
            c->drain.commit_records, (int) getpid());
    return mvw_daemon_loop(c, &log, o);
}
