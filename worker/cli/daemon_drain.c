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
 *   loop      mvw_drain_step until SIGTERM / SIGINT; sleep
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
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/daemon_drain.h"
#include "cli/logging.h"
#include "cli/metrics.h"
#include "cli/process.h"
#include "drain/drain.h"
#include "worker.h"

#define METRICS_MS       1000
#define METRICS_IDLE_MS  5000
#define REPORT_MS        10000


static int
write_metrics(const mvw_config_t *c, const mvw_drain_stats_t *st)
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


static void
report(const mvw_log_t *log, const mvw_drain_stats_t *st)
{
    mvw_log(log, MVW_LOG_INFO, "drain: %llu transaction(s) committed, %llu "
            "action(s) and %llu item(s) drained, %llu record(s) refused, "
            "%llu abort(s)", (unsigned long long) st->transactions,
            (unsigned long long) st->actions,
            (unsigned long long) st->items,
            (unsigned long long) st->invalid,
            (unsigned long long) st->aborts);
}


/* Steps until a signal or a fatal error; returns the exit code. */
static int
run(const mvw_config_t *c, const mvw_log_t *log, mvw_drain_t *d)
{
    mvw_drain_stats_t  st;
    mv_err_t           err;
    int64_t            now, last_metrics = 0, last_report;
    uint64_t           seen = 0, reported = 0;
    int                n, rc;

    last_report = mvw_monotonic_ms();
    while (!mvw_process_stopping()) {
        n = mvw_drain_step(d, &err);
        mvw_drain_stats(d, &st);
        if (n < 0) {
            mvw_log(log, MVW_LOG_ERROR, "%s; stopping without committing "
                    "(the next start aborts what is open and drains it "
                    "again)", err.msg);
            write_metrics(c, &st);
            mvw_drain_abandon(d);
            return MVW_EXIT_FAIL;
        }

        now = mvw_monotonic_ms();
        if ((st.transactions + st.aborts + st.pending + st.phase != seen
             && now - last_metrics >= METRICS_MS)
            || now - last_metrics >= METRICS_IDLE_MS)
        {
            write_metrics(c, &st);
            seen = st.transactions + st.aborts + st.pending + st.phase;
            last_metrics = now;
        }
        if (st.actions + st.items != reported
            && now - last_report >= REPORT_MS)
        {
            report(log, &st);
            reported = st.actions + st.items;
            last_report = now;
        }
        if (n == 0 && !mvw_process_stopping()) {
            mvw_process_sleep_ms(c->worker.poll_interval * 1000.0);
        }
    }

    mvw_log(log, MVW_LOG_INFO, "signal %d: stopping",
            mvw_process_stopping());
    rc = mvw_drain_close(d, &st, &err);
    if (rc != MV_OK) {
        mvw_log(log, MVW_LOG_ERROR, "%s", err.msg);
    }
    report(log, &st);
    write_metrics(c, &st);
    return rc == MV_OK ? MVW_EXIT_OK : MVW_EXIT_FAIL;
}


int
mvw_drain_daemon(const mvw_config_t *c, int foreground)
{
    mvw_drain_params_t  p;
    mvw_drain_t        *d;
    mvw_log_t           log;
    mv_err_t            err;

    log.out = stderr;
    log.level = c->worker.log_level;
    if (mvw_process_signals() != 0) {
        fprintf(stderr, "milvuso-worker: cannot start: %s\n",
                strerror(errno));
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
    if (!foreground && mvw_process_detach() != 0) {
        mvw_log(&log, MVW_LOG_ERROR, "cannot detach: %s", strerror(errno));
        mvw_drain_abandon(d);
        return MVW_EXIT_FAIL;
    }
    mvw_log(&log, MVW_LOG_INFO, "worker drain following action log %s "
            "(consumer %s) into Kafka topics %s (actions) and %s (items) at "
            "%s, transactional id %s, a transaction every %g s or %u "
            "records (pid %d)", c->worker.action_log, mvw_drain_consumer(d),
            c->kafka.log_topic, c->kafka.feature_topic, c->kafka.brokers,
            mvw_drain_id(d), c->drain.commit_interval,
            c->drain.commit_records, (int) getpid());
    return run(c, &log, d);
}
