/*
 * daemon_metrics.c -- the trainer daemon's metrics file, and how the
 * daemon tells that it falls behind (see daemon_metrics.h).
 *
 * Under overload the trainer must say so rather than fail: nginx keeps
 * accepting into the stream, nothing is dropped, and the metrics show how
 * far behind the published model is, in two independent figures.
 *
 *   backlog   what the source has not handed out yet, from what it knows
 *             without waiting (mvw_source_backlog): on Kafka the records
 *             between the consumer's position and the high watermark of
 *             the last fetch, on the action log the bytes past the
 *             reader.  A metric whose figure is unknown (-1: no partition
 *             assigned yet, the log directory unreadable) is left out of
 *             the file rather than written as 0.
 *   lag       the age of the oldest record applied but not yet in a
 *             published generation: the event time of the first record
 *             applied since the last hand-over to the publisher's thread,
 *             or of the batch that thread is publishing, whichever is
 *             older (mvw_lag_t: a failed publish puts its batch's time
 *             back among the pending), 0 when there is none.  nginx stamps an action's timestamp
 *             when it accepts it (unless the client sent one), so this is
 *             the accept-to-model delay of the oldest waiting action.  It
 *             grows by itself when publishing fails or stalls, and while a
 *             backlog is being worked off (the records applied first are
 *             old).  Only the first record of a cycle is looked at, so the
 *             cost is one scan of one payload per publish, not a second
 *             parse of every record (the trainer keeps its parsed action
 *             to itself).
 *   behind    1 when lag > 2 x publish_interval + 5 s.  A healthy trainer
 *             publishes within publish_interval of its first pending
 *             record (plus the publish itself); twice that, plus slack for
 *             a slow publish, means it does not keep up.
 *
 * A client that posts actions with old timestamps (a backfill) makes the
 * lag as old as they are until the next publish: the figure is about event
 * time, which is what a consumer of the recommendations sees.
 */
#include <stdio.h>
#include <string.h>

#include "cli/daemon_metrics.h"
#include "cli/metrics.h"
#include "actlog.h"                 /* MV_RECORD_* */
#include "rfc3339.h"

#define TIMESTAMP_KEY   ",\"timestamp\":\""


int
mvw_record_timestamp_ms(const char *payload, size_t len, int64_t *ms)
{
    const char  *p, *end = payload + len, *q;
    size_t       klen = sizeof(TIMESTAMP_KEY) - 1;

    /* In canonical JSON a raw quote never occurs inside a string, so
       ,"timestamp":" can only be a key after another member. */
    p = memmem(payload, len, TIMESTAMP_KEY, klen);
    if (p == NULL) {
        return MV_ERR;
    }
    p += klen;
    q = memchr(p, '"', (size_t) (end - p));
    if (q == NULL) {
        return MV_ERR;
    }
    return mv_time_parse(p, (size_t) (q - p), ms, NULL);
}


void
mvw_lag_applied(mvw_lag_t *l, uint16_t type, const char *payload,
    size_t len, int64_t now_ms)
{
    int64_t  ts;

    if (l->pending_since_ms != 0) {
        return;
    }
    if ((type == MV_RECORD_ACTION || type == MV_RECORD_EXAMPLE)
        && mvw_record_timestamp_ms(payload, len, &ts) == MV_OK && ts > 0)
    {
        l->pending_since_ms = ts;
    } else {
        l->pending_since_ms = now_ms;
    }
}


void
mvw_lag_frozen(mvw_lag_t *l)
{
    l->in_flight_since_ms = l->pending_since_ms;
    l->pending_since_ms = 0;
}


void
mvw_lag_published(mvw_lag_t *l)
{
    l->in_flight_since_ms = 0;
}


void
mvw_lag_failed(mvw_lag_t *l)
{
    if (l->in_flight_since_ms != 0
        && (l->pending_since_ms == 0
            || l->in_flight_since_ms < l->pending_since_ms))
    {
        l->pending_since_ms = l->in_flight_since_ms;
    }
    l->in_flight_since_ms = 0;
}


double
mvw_lag_seconds(const mvw_lag_t *l, int64_t now_ms)
{
    int64_t  since = l->pending_since_ms;

    if (l->in_flight_since_ms != 0
        && (since == 0 || l->in_flight_since_ms < since))
    {
        since = l->in_flight_since_ms;
    }
    if (since == 0 || now_ms <= since) {
        return 0.0;
    }
    return (double) (now_ms - since) / 1000.0;
}


int
mvw_lag_behind(double lag_s, double publish_interval_s)
{
    return lag_s > 2.0 * publish_interval_s + 5.0;
}


void
mvw_update_rate(mvw_update_rate_t *r, const mvw_trainer_t *t,
    int64_t now_mono)
{
    mvw_trainer_stats_t  st;
    int64_t              dt = now_mono - r->last_mono;

    mvw_trainer_stats(t, &st);
    if (dt > 0) {
        r->per_s = (double) (st.updates - r->last_updates) * 1000.0
                   / (double) dt;
    }
    r->last_mono = now_mono;
    r->last_updates = st.updates;
}


int
mvw_daemon_write_metrics(const mvw_daemon_metrics_t *d)
{
    mvw_trainer_stats_t   st;
    mvw_source_stats_t    ss;
    mvw_metrics_file_t    m;
    int64_t               backlog_records, backlog_bytes;
    double                lag;

    if (d->path == NULL || d->path[0] == '\0') {
        return 0;
    }
    mvw_trainer_stats(d->trainer, &st);
    mvw_source_stats(d->source, &ss);
    mvw_source_backlog(d->source, &backlog_records, &backlog_bytes);
    lag = mvw_lag_seconds(d->lag, d->now_ms);
    if (mvw_metrics_begin(&m, d->path, "milvuso_worker_") != 0) {
        return -1;
    }

    mvw_metrics_counter(&m, "records_total", "stream records read",
                        ss.records);
    mvw_metrics_counter(&m, "actions_total", "action records applied",
                        st.actions);
    mvw_metrics_counter(&m, "items_total", "item records applied", st.items);
    mvw_metrics_counter(&m, "invalid_records_total", "records refused",
                        st.invalid);
    mvw_metrics_counter(&m, "duplicates_total", "actions whose client "
                        "event id was applied before: skipped",
                        st.duplicates);
    mvw_metrics_counter(&m, "dedupe_state_lost_total", "resumes without "
                        "the snapshot's dedupe set (started empty)",
                        st.dedupe_lost);
    mvw_metrics_counter(&m, "not_positive_total", "actions with weight <= 0",
                        st.not_positive);
    mvw_metrics_counter(&m, "skipped_bytes_total", "damaged log bytes "
                        "skipped", ss.skipped_bytes);
    mvw_metrics_counter(&m, "skipped_records_total", "stream records "
                        "without a value or too large, skipped",
                        ss.skipped_records);
    mvw_metrics_counter(&m, "source_errors_total", "transport errors "
                        "(broker down ...)", ss.errors);
    mvw_metrics_counter(&m, "action_log_removed_segments_total", "action "
                        "log segments removed by retention",
                        ss.removed_segments);
    mvw_metrics_counter(&m, "action_log_removed_bytes_total", "bytes of the "
                        "action log segments removed by retention",
                        ss.removed_bytes);
    mvw_metrics_counter(&m, "updates_total", "optimiser steps, replay "
                        "included", st.updates);
    mvw_metrics_counter(&m, "replayed_total", "replayed examples",
                        st.replayed);
    mvw_metrics_counter(&m, "publishes_total", "snapshots published",
                        st.publishes);
    mvw_metrics_gauge(&m, "updates_per_second", "optimiser steps per "
                      "second", "%.1f", d->updates_per_s);
    mvw_metrics_gauge(&m, "loss", "moving average of the training loss",
                      "%.6g", st.loss_ema);
    mvw_metrics_gauge(&m, "users", "users in the model", "%u", st.n_users);
    mvw_metrics_gauge(&m, "items", "items in the model", "%u", st.n_items);
    mvw_metrics_gauge(&m, "generation", "last published generation", "%llu",
                      (unsigned long long) st.generation);
    mvw_metrics_gauge(&m, "last_publish_timestamp_seconds", "when it was "
                      "published", "%.3f", (double) st.last_publish_ms
                                           / 1000.0);
    mvw_metrics_gauge(&m, "last_publish_duration_seconds", "how long it "
                      "took", "%.3f", st.last_publish_s);
    mvw_metrics_gauge(&m, "pending_records", "records applied since the "
                      "last publish", "%llu",
                      (unsigned long long) d->pending_records);
    if (backlog_records >= 0) {
        mvw_metrics_gauge(&m, "backlog_records", "Kafka records not "
                          "consumed yet: over the assigned partitions, the "
                          "high watermark of the last fetch minus the "
                          "consumer's position", "%lld",
                          (long long) backlog_records);
    }
    if (backlog_bytes >= 0) {
        mvw_metrics_gauge(&m, "backlog_bytes", "bytes of the action log "
                          "past the trainer's read position", "%lld",
                          (long long) backlog_bytes);
    }
    mvw_metrics_gauge(&m, "lag_seconds", "age of the oldest record applied "
                      "but not yet in a published generation (its event "
                      "timestamp); 0 when nothing is pending", "%.3f", lag);
    mvw_metrics_gauge(&m, "behind", "1 when the trainer falls behind: "
                      "lag_seconds > 2 x publish_interval + 5", "%d",
                      mvw_lag_behind(lag, d->publish_interval));
    return mvw_metrics_end(&m);
}
