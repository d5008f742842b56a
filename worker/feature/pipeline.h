/*
 * pipeline.h -- the feature worker's Kafka pipeline: actions of log_topic
 * in, joined with the item table (join.h) read from feature_topic,
 * training examples out to training_topic, exactly once, through Kafka
 * transactions.  The design and its proof are at the top of pipeline.c.
 *
 * Driven by its caller's loop (the daemon, or a test): mvw_feature_step()
 * does a bounded amount of work and returns, so the caller checks its
 * signals and writes its metrics between steps; close commits what is
 * open.  One thread.
 */
#ifndef MVW_FEATURE_PIPELINE_H
#define MVW_FEATURE_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "cli/logging.h"
#include "mv_common.h"

typedef struct mvw_feature mvw_feature_t;

typedef struct mvw_feature_params {
    const char         *brokers;
    /* consumer group on log_topic; also the producer's transactional.id
       and the group.instance.id: one feature worker per group */
    const char         *group_id;
    const char         *log_topic;          /* actions, keyed by user */
    const char         *feature_topic;      /* items, keyed by item */
    const char         *training_topic;     /* examples out, keyed by user */
    const char         *popularity_topic;   /* counts, keyed by item */
    uint32_t            dim;                /* of features records; 0 any */
    double              commit_interval;    /* seconds, > 0 */
    uint32_t            commit_records;     /* actions per transaction */
    const mvw_log_t    *log;                /* NULL: nothing logged */
    /* more librdkafka properties for every handle, "name=value",
       NULL-terminated (tests: shorter timeouts); NULL: none */
    const char *const  *extra;
} mvw_feature_params_t;

typedef enum mvw_feature_phase {
    MVW_FEATURE_STARTING = 0,   /* getting the transactional producer id */
    MVW_FEATURE_RESTORING,      /* reading the popularity and features
                                   topics to their ends */
    MVW_FEATURE_RUNNING         /* joining actions */
} mvw_feature_phase_t;

/*
 * Counters.  The action counters are of committed transactions only: an
 * aborted transaction's actions are joined again and counted then, so
 * the figures are exact, as what the trainer can read.
 */
typedef struct mvw_feature_stats {
    mvw_feature_phase_t  phase;
    uint64_t  actions;          /* log_topic records committed past */
    uint64_t  examples;         /* examples committed to training_topic */
    uint64_t  unknown_items;    /* ... of which with "features": null */
    uint64_t  invalid;          /* action records refused */
    uint64_t  skipped;          /* tombstones, values over 1 MiB */
    uint64_t  transactions;     /* committed */
    uint64_t  aborts;           /* aborted (their actions joined again) */
    uint64_t  pending;          /* actions in the open transaction */
    uint64_t  items;            /* features records applied since start */
    uint64_t  invalid_items;    /* features records refused */
    uint64_t  restored;         /* counts read back at start */
    uint64_t  invalid_state;    /* popularity records refused */
    uint64_t  errors;           /* transport errors, every handle */
    uint32_t  table_items;      /* rows of the item table */
    uint32_t  with_features;    /* ... whose features are known */
} mvw_feature_stats_t;

/*
 * Creates the pipeline's handles (nothing is contacted yet; a broker that
 * is down shows as errors and retries).  Returns NULL with err set when a
 * topic name is not one (mvw_kafka_topic_check), two topics are the same,
 * the brokers are not host:port[,...] or librdkafka refuses the
 * configuration.
 */
mvw_feature_t *mvw_feature_open(const mvw_feature_params_t *p,
    mv_err_t *err);

/*
 * One step: in STARTING, a bounded wait for the producer id (which aborts
 * what a previous run of the group left open); in RESTORING, reading the
 * two tables; in RUNNING, the features that came, then actions (at most
 * the transaction's room, about 50 ms), and the transaction's commit when
 * commit_records or commit_interval is reached (a commit the brokers do
 * not confirm at once is retried at the next step; a transaction Kafka
 * refuses is aborted: the counts of its actions go back and the consumer
 * is sent back to its first action, to join them again).  Returns the
 * number of records handled (0: the caller may sleep), or MV_ERR with err
 * set on a fatal error: another feature worker of the group took over
 * (fenced), or librdkafka gave up; the caller stops (what is open is
 * aborted by the next start).
 */
int mvw_feature_step(mvw_feature_t *f, mv_err_t *err);

/*
 * Commits the open transaction (trying for at most about 10 s), fills
 * *last (may be NULL) with the stats after it, leaves the group and frees
 * f.  Returns MV_OK, or MV_ERR with err set when the open transaction
 * could not be committed (its actions are joined again by the next start:
 * nothing is lost).
 */
int mvw_feature_close(mvw_feature_t *f, mvw_feature_stats_t *last,
    mv_err_t *err);

/*
 * Frees f without committing nor leaving the group, as a crash would
 * leave things (tests).  f may be NULL.
 */
void mvw_feature_abandon(mvw_feature_t *f);

void mvw_feature_stats(const mvw_feature_t *f, mvw_feature_stats_t *st);

#endif /* MVW_FEATURE_PIPELINE_H */
