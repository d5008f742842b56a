/*
 * daemon_metrics.h -- the trainer daemon's metrics file (worker.metrics_file,
 * milvuso_worker_*) and the two health figures it adds to the counters:
 * how far the source is behind (backlog) and how old the oldest applied
 * but unpublished record is (lag).  daemon_metrics.c has the design.
 */
#ifndef MVW_DAEMON_METRICS_H
#define MVW_DAEMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "model/trainer.h"
#include "sources/source.h"

/*
 * The lag of the published model: the event time of the first record
 * applied since the last hand-over to the publisher (pending), and that of
 * the batch being published (in flight).  The daemon owns one.
 */
typedef struct mvw_lag {
    int64_t  pending_since_ms;     /* unix ms; 0: nothing pending */
    int64_t  in_flight_since_ms;   /* of the frozen batch; 0: none */
} mvw_lag_t;

/*
 * Notes a record just applied (or refused: it is pending all the same,
 * its position goes into the next snapshot).  Only the first one since the
 * last hand-over counts, so the payload is looked at once per publish
 * cycle: its "timestamp" (actions and training examples carry the accept
 * time nginx stamped, or the client's), else -- items, or no readable
 * timestamp -- now_ms, the time it was applied.
 */
void mvw_lag_applied(mvw_lag_t *l, uint16_t type, const char *payload,
    size_t len, int64_t now_ms);

/* Notes the pending records frozen and handed to the publisher. */
void mvw_lag_frozen(mvw_lag_t *l);

/* Notes that the batch in flight is published: it is no lag any more. */
void mvw_lag_published(mvw_lag_t *l);

/* Notes that the batch in flight failed: its records are pending again
   (and the oldest of both counts). */
void mvw_lag_failed(mvw_lag_t *l);

/* Seconds between now_ms and the oldest unpublished record's time
   (pending or in flight); 0 when there is none (and never below 0: a
   client's timestamp in the future). */
double mvw_lag_seconds(const mvw_lag_t *l, int64_t now_ms);

/* 1 when lag_s is past what the publish cadence explains:
   lag_s > 2 x publish_interval_s + 5. */
int mvw_lag_behind(double lag_s, double publish_interval_s);

/*
 * The timestamp of a canonical action or example payload ("timestamp"
 * field, events.h) in *ms: MV_OK, or MV_ERR when it has none that reads.
 * It scans for the field instead of parsing the record.
 */
int mvw_record_timestamp_ms(const char *payload, size_t len, int64_t *ms);

/* The trainer's optimiser steps per second, measured between calls. */
typedef struct mvw_update_rate {
    int64_t   last_mono;        /* monotonic ms of the last call */
    uint64_t  last_updates;     /* the trainer's steps then */
    double    per_s;            /* over the interval before it */
} mvw_update_rate_t;

/* Sets r->per_s from t's steps since the last call (at now_mono). */
void mvw_update_rate(mvw_update_rate_t *r, const mvw_trainer_t *t,
    int64_t now_mono);

/* What the daemon's metrics are made of. */
typedef struct mvw_daemon_metrics {
    const char            *path;        /* worker.metrics_file; "": none */
    const mvw_trainer_t   *trainer;
    const mvw_source_t    *source;
    double                 updates_per_s;
    uint64_t               pending_records;
    const mvw_lag_t       *lag;
    double                 publish_interval;   /* seconds */
    int64_t                now_ms;             /* wall clock */
} mvw_daemon_metrics_t;

/* Writes m->path whole (metrics.h); none configured: nothing.  Returns 0,
   or -1 (the old file stays). */
int mvw_daemon_write_metrics(const mvw_daemon_metrics_t *m);

#endif /* MVW_DAEMON_METRICS_H */
