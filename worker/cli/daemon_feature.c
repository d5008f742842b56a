/*
 * daemon_feature.c -- `milvuso-worker --config FILE --worker-type feature`:
 * the feature worker's process around its pipeline (feature/pipeline.h,
 * where the exactly-once design is).
 *
 *   open      the pipeline's handles from the configuration (a bad topic
 *             or broker list fails the start with its exit status, before
 *             detaching)
 *   loop      (daemon_loop.c, the drain's too)
 *             mvw_feature_step until SIGTERM / SIGINT; sleep
 *             worker.poll_interval when a step found nothing; the metrics
 *             file every second when something changed (every
 *             METRICS_IDLE_MS otherwise); a progress line every REPORT_MS
 *             when something changed
 *   stop      commit the open transaction, leave the group, exit 0 (1 when
 *             it could not be committed: its actions are joined again by
 *             the next start)
 *   fatal     another feature worker of the group took over, or
 *             librdkafka gave up: log, exit 1 without committing (the next
 *             start aborts what is open)
 *
 * The process holds no lock of its own: Kafka makes it the one writer of
 * its group (its transactional id fences any earlier one out).
 */
#include <string.h>
#include <unistd.h>

#include "cli/daemon_feature.h"
#include "cli/daemon_loop.h"
#include "cli/logging.h"
#include "cli/metrics.h"
#include "feature/pipeline.h"
#include "worker.h"

int
mvw_feature_write_metrics(const mvw_config_t *c, const mvw_feature_stats_t *st)
{
    mvw_metrics_file_t  m;

    if (c->feature.metrics_file[0] == '\0') {
        return 0;
    }
    if (mvw_metrics_begin(&m, c->feature.metrics_file, "milvuso_feature_")
        != 0)
    {
        return -1;
    }
    mvw_metrics_counter(&m, "actions_total", "log_topic records committed "
                        "past", st->actions);
    mvw_metrics_counter(&m, "examples_total", "training examples committed",
                        st->examples);
    mvw_metrics_counter(&m, "unknown_items_total", "examples committed "
                        "without features (item not described yet)",
                        st->unknown_items);
    mvw_metrics_counter(&m, "invalid_records_total", "action records "
                        "refused", st->invalid);
    mvw_metrics_counter(&m, "skipped_records_total", "action records "
                        "without a value or too large", st->skipped);
    mvw_metrics_counter(&m, "transactions_total", "transactions committed",
                        st->transactions);
    mvw_metrics_counter(&m, "aborts_total", "transactions aborted (their "
                        "actions joined again)", st->aborts);
    mvw_metrics_counter(&m, "items_total", "features records applied since "
                        "start", st->items);
    mvw_metrics_counter(&m, "invalid_items_total", "features records "
                        "refused", st->invalid_items);
    mvw_metrics_counter(&m, "restored_counts_total", "item counts read "
                        "back at start", st->restored);
    mvw_metrics_counter(&m, "invalid_counts_total", "popularity records "
                        "refused", st->invalid_state);
    mvw_metrics_counter(&m, "errors_total", "transport errors (broker "
                        "down ...)", st->errors);
    mvw_metrics_gauge(&m, "pending_actions", "actions in the open "
                      "transaction", "%llu",
                      (unsigned long long) st->pending);
    mvw_metrics_gauge(&m, "items", "rows of the item table", "%u",
                      st->table_items);
    mvw_metrics_gauge(&m, "items_with_features", "rows whose features are "
                      "known", "%u", st->with_features);
    mvw_metrics_gauge(&m, "phase", "0 starting, 1 restoring, 2 running",
                      "%d", (int) st->phase);
    return mvw_metrics_end(&m);
}


void
mvw_feature_report(const mvw_log_t *log, const mvw_feature_stats_t *st)
{
    mvw_log(log, MVW_LOG_INFO, "feature worker: %llu transaction(s) "
            "committed, %llu example(s) (%llu without features), %llu "
            "record(s) refused, %llu skipped, %llu abort(s); %u item(s) "
            "known", (unsigned long long) st->transactions,
            (unsigned long long) st->examples,
            (unsigned long long) st->unknown_items,
            (unsigned long long) st->invalid,
            (unsigned long long) st->skipped,
            (unsigned long long) st->aborts, st->with_features);
}


static void
fill_params(const mvw_config_t *c, const mvw_log_t *log,
    mvw_feature_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->brokers = c->kafka.brokers;
    p->group_id = c->feature.group_id;
    p->log_topic = c->kafka.log_topic;
    p->feature_topic = c->kafka.feature_topic;
    p->training_topic = c->kafka.training_topic;
    p->popularity_topic = c->feature.popularity_topic;
    p->dim = c->recommendation.embedding_dim;
    p->commit_interval = c->feature.commit_interval;
    p->commit_records = c->feature.commit_records;
    p->log = log;
}


int
mvw_feature_daemon(const mvw_config_t *c, int foreground)
{
    mvw_feature_params_t  p;
    mvw_feature_t        *f;
    mvw_log_t             log;
    mv_err_t              err;
    mvw_daemon_obj_t      o = { NULL, NULL };

    if (mvw_daemon_begin(c, &log) != MVW_EXIT_OK) {
        return MVW_EXIT_FAIL;
    }

    fill_params(c, &log, &p);
    f = mvw_feature_open(&p, &err);
    if (f == NULL) {
        mvw_log(&log, MVW_LOG_ERROR, "%s", err.msg);
        return MVW_EXIT_FAIL;
    }
    o.feature = f;
    if (mvw_daemon_detach(o, &log, foreground) != MVW_EXIT_OK) {
        return MVW_EXIT_FAIL;
    }
    mvw_log(&log, MVW_LOG_INFO, "worker feature following Kafka topic %s "
            "(actions) joined with %s (items) at %s, group %s, writing "
            "training examples to %s (item counts in %s), a transaction "
            "every %g s or %u actions (pid %d)", c->kafka.log_topic,
            c->kafka.feature_topic, c->kafka.brokers, c->feature.group_id,
            c->kafka.training_topic, c->feature.popularity_topic,
            c->feature.commit_interval, c->feature.commit_records,
            (int) getpid());
    return mvw_daemon_loop(c, &log, o);
}
