/*
 * drain.h -- the drain: the embedded action log that nginx filled while
 * Kafka was away (milvuso_action_log beside milvuso_kafka, the log as
 * Kafka's fallback) produced into Kafka once it is back, exactly once.
 * The design and its argument are at the top of drain.c.
 *
 * Driven by its caller's loop (cli/daemon_drain.c, or a test):
 * mvw_drain_step() does a bounded amount of work and returns, so the
 * caller checks its signals and writes its metrics between steps; close
 * commits what is open.  One thread.
 */
#ifndef MVW_DRAIN_H
#define MVW_DRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "actlog.h"
#include "cli/logging.h"
#include "mv_common.h"

/* The metadata of the drain's committed offset starts with this. */
#define MVW_DRAIN_METADATA  "milvuso drain: action-log position"

typedef struct mvw_drain mvw_drain_t;

typedef struct mvw_drain_params {
    const char             *brokers;
    const char             *dir;             /* the action log; created
                                                when missing */
    const char             *log_topic;       /* actions, keyed by user */
    const char             *feature_topic;   /* items, keyed by item */
    double                  commit_interval; /* seconds, > 0 */
    uint32_t                commit_records;  /* records per transaction */
    /* what the drain removes of the log once drained (it is the log's
       consumer); expire_ms also sets how often an idle drain refreshes
       its registration and its committed position (a quarter of it, at
       most hourly) */
    mv_actlog_retention_t   retention;
    const mvw_log_t        *log;             /* NULL: nothing logged */
    /* more librdkafka properties for both handles, "name=value",
       NULL-terminated (tests: shorter timeouts); NULL: none */
    const char *const      *extra;
} mvw_drain_params_t;

typedef enum mvw_drain_phase {
    MVW_DRAIN_STARTING = 0,     /* getting the transactional producer id */
    MVW_DRAIN_RESUMING,         /* reading the committed log position */
    MVW_DRAIN_RUNNING           /* draining */
} mvw_drain_phase_t;

/* Counters of committed transactions only, as for the feature worker. */
typedef struct mvw_drain_stats {
    mvw_drain_phase_t  phase;
    uint64_t  actions;          /* produced to log_topic, committed */
    uint64_t  items;            /* produced to feature_topic, committed */
    uint64_t  invalid;          /* log records that are neither: drained
                                   past, not produced */
    uint64_t  transactions;     /* committed, refreshes included */
    uint64_t  refreshes;        /* ... of which only to keep the committed
                                   position alive (idle) */
    uint64_t  aborts;           /* aborted (their records drained again) */
    uint64_t  pending;          /* records in the open transaction */
    uint64_t  errors;           /* transport errors, both handles */
    uint64_t  position;         /* packed log position committed, 0 none */
    uint64_t  skipped_bytes;    /* damaged log bytes skipped by the reader
                                   (this run's reader) */
    uint64_t  removed_segments; /* removed by retention since start */
    uint64_t  removed_bytes;
} mvw_drain_stats_t;

/*
 * Creates the drain's handles for the log p->dir (nothing is contacted
 * yet; a broker that is down shows as errors and retries).  Its names
 * come from the crc32c of the log directory's real path (the directory is
 * created first when missing): transactional id and consumer group
 * "milvuso-drain-CRC", log consumer "drain-CRC".  Returns NULL with err
 * set when a topic is not a Kafka name or both are the same, the brokers
 * are not host:port[,...], commit_records is 0 or commit_interval not
 * > 0, the directory cannot be made, or librdkafka refuses the
 * configuration.
 */
mvw_drain_t *mvw_drain_open(const mvw_drain_params_t *p, mv_err_t *err);

/* The transactional id and group ("milvuso-drain-CRC") of d. */
const char *mvw_drain_id(const mvw_drain_t *d);

/* The action-log consumer name ("drain-CRC") of d. */
const char *mvw_drain_consumer(const mvw_drain_t *d);

/*
 * One step: in STARTING, a bounded wait for the producer id (which aborts
 * what an earlier drain of this log left open and fences it out); in
 * RESUMING, reading the committed position (then the log is opened
 * there); in RUNNING, records of the log into the open transaction (at
 * most its room, about 50 ms), and its commit when commit_records or
 * commit_interval is reached (a commit the broker does not confirm is
 * retried at the next step; one Kafka refuses is aborted and its records
 * read again from the committed position), or, idle, a refresh of the
 * committed position when it is due.  Returns the number of records
 * handled (0: the caller may sleep), or MV_ERR with err set on a fatal
 * error: another drain of the same log took over (fenced), or librdkafka
 * gave up; the caller stops (what is open is aborted by the next start).
 */
int mvw_drain_step(mvw_drain_t *d, mv_err_t *err);

/*
 * Commits the open transaction (trying for at most about 10 s), fills
 * *last (may be NULL) with the stats after it and frees d.  Returns
 * MV_OK, or MV_ERR with err set when it could not be committed (its
 * records are drained again by the next start: nothing is lost).
 */
int mvw_drain_close(mvw_drain_t *d, mvw_drain_stats_t *last, mv_err_t *err);

/* Frees d without committing, as a crash would leave things.  d may be
   NULL. */
void mvw_drain_abandon(mvw_drain_t *d);

void mvw_drain_stats(const mvw_drain_t *d, mvw_drain_stats_t *st);

#endif /* MVW_DRAIN_H */
