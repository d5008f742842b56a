/*
 * kafka_txn.h -- one Kafka transaction of a transactional producer, as a
 * small state machine shared by the feature worker (feature/pipeline.c:
 * consume-transform-produce) and the drain (drain/drain.c: the action log
 * produced into Kafka).
 *
 * States.  NONE (nothing open) -> begin -> OPEN (records being produced
 * into it by the role) -> commit -> COMMITTING (commit started, not
 * confirmed) -> NONE; any abortable error, and a role's own decision,
 * -> ABORTING (abort started, not confirmed) -> NONE.  A retriable error
 * (a timeout: the broker is down) leaves the state as it is: the role
 * calls mvw_kafka_txn_continue at its next step, and it reads no further
 * meanwhile.  A fatal error (fenced by a newer producer of the same
 * transactional id ...) is returned as MV_ERR with err set.
 *
 * A commit is: the role's prepare (the feature worker produces its
 * counts; once per transaction, retried commits do not repeat it), then
 * its offsets (send_offsets_to_transaction: the feature worker its
 * consumer's positions with the consumer's group metadata, the drain its
 * packed log position under its synthetic group; once per transaction),
 * then commit_transaction.  Only after Kafka confirmed the commit is the
 * role's committed callback called (stats, the join's commit, the log's
 * durable registration), and only after it confirmed an abort its aborted
 * callback (counts rolled back, the consumer or the log back at the
 * committed position, so the transaction's input is produced again).
 * This is what the exactly-once arguments of both roles rest on: their
 * output and their input position become visible together or not at
 * all, and the role's view of "committed" moves only with Kafka's.
 *
 * The struct lives inside its role's object (no allocation, no global
 * state); its fields are private to kafka_txn.c but for what the
 * functions below return.  The role keeps what the transaction holds
 * (its counts, its positions) and clears it in its callbacks.
 */
#ifndef MVW_KAFKA_TXN_H
#define MVW_KAFKA_TXN_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "cli/logging.h"
#include "mv_common.h"
#include "sources/kafka_common.h"

typedef enum {
    MVW_KAFKA_TXN_NONE = 0,         /* nothing open */
    MVW_KAFKA_TXN_OPEN,             /* records being produced into it */
    MVW_KAFKA_TXN_COMMITTING,       /* commit started, not confirmed */
    MVW_KAFKA_TXN_ABORTING          /* abort started, not confirmed */
} mvw_kafka_txn_state_t;

/* What the role does at each point of a transaction; ctx is its object. */
typedef struct {
    /* Before the offsets, once per transaction (NULL: nothing): MV_OK,
       or MV_ERR with err set, and the transaction is aborted. */
    int               (*prepare)(void *ctx, mv_err_t *err);
    /* Sends the role's input position into the transaction: returns
       rd_kafka_send_offsets_to_transaction's error (NULL: done). */
    rd_kafka_error_t *(*send_offsets)(void *ctx, rd_kafka_t *producer,
                                      int timeout_ms);
    /* Kafka confirmed the commit (the state is already NONE): the role
       counts it and clears what the transaction held.  Cannot fail. */
    void              (*committed)(void *ctx);
    /* Kafka confirmed the abort (the state is already NONE): the role
       logs it, clears what the transaction held and goes back to its
       committed input position: MV_OK, or MV_ERR (fatal) with err set. */
    int               (*aborted)(void *ctx, mv_err_t *err);
} mvw_kafka_txn_ops_t;

/* The role's words in errors and log lines. */
typedef struct {
    const char  *prefix;            /* "feature worker", "drain" */
    const char  *fenced;            /* appended to a fenced error */
    const char  *offsets;           /* "sending the ...": the offsets
                                       call, named in errors */
    const char  *again;             /* "its actions are joined again":
                                       what an unsettled close means */
} mvw_kafka_txn_texts_t;

typedef struct {
    rd_kafka_t             *producer;   /* transactional */
    const mvw_kafka_txn_texts_t *texts;
    const mvw_log_t        *log;        /* NULL: nothing logged */
    mvw_log_limit_t        *lim;        /* retries, aborts */
    mvw_log_limit_t        *lim_delivery;  /* failed deliveries */
    const mvw_kafka_txn_ops_t *ops;
    void                   *ctx;

    mvw_kafka_txn_state_t   state;
    int64_t                 opened_ms;  /* monotonic, at begin */
    int                     prepared;   /* ops->prepare done */
    int                     offsets_sent;
} mvw_kafka_txn_t;

/*
 * Sets t up for producer (not yet init_transactions'ed), state NONE:
 * texts name the role in errors and log lines, log (NULL: nothing
 * logged) gets retries and aborts limited by lim, failed deliveries by
 * lim_delivery (may be lim).  Everything passed must outlive t.  The
 * producer's errors (kafka_common.h) must have t as their owner when
 * mvw_kafka_txn_on_delivery is its delivery callback.
 */
void mvw_kafka_txn_init(mvw_kafka_txn_t *t, rd_kafka_t *producer,
    const mvw_kafka_txn_texts_t *texts, const mvw_kafka_txn_ops_t *ops,
    void *ctx, const mvw_log_t *log, mvw_log_limit_t *lim,
    mvw_log_limit_t *lim_delivery);

/*
 * A transactional call's error e (NULL: none) classified and destroyed
 * (mvw_kafka_txn_result); unless MVW_TXN_OK err says "PREFIX: WHAT: ...",
 * and a retry or an abort is logged at warn, rate-limited (t->lim):
 * "PREFIX: WHAT: ...; retrying" or "...; aborting it".
 */
mvw_txn_rc_t mvw_kafka_txn_call(mvw_kafka_txn_t *t, rd_kafka_error_t *e,
    const char *what, mv_err_t *err);

/*
 * init_transactions, waiting at most ms (aborts what an earlier producer
 * of the transactional id left open and fences it out): 1 ready, 0 not
 * yet (call again), MV_ERR fatal with err set.
 */
int mvw_kafka_txn_start(mvw_kafka_txn_t *t, int ms, mv_err_t *err);

/* Begins a transaction (state NONE -> OPEN): MV_OK, or MV_ERR (any error
   of begin_transaction is fatal) with err set. */
int mvw_kafka_txn_begin(mvw_kafka_txn_t *t, mv_err_t *err);

/* The state. */
mvw_kafka_txn_state_t mvw_kafka_txn_state(const mvw_kafka_txn_t *t);

/*
 * 1 when t is OPEN and due for its commit: n (what it holds) >= max_n or
 * interval_ms passed since it began; 0 otherwise.
 */
int mvw_kafka_txn_due(const mvw_kafka_txn_t *t, uint64_t n, uint64_t max_n,
    int64_t interval_ms);

/*
 * Commits the open (or committing) transaction: prepare, offsets, commit,
 * each done at most once per transaction; on an abortable error (or a
 * failed prepare) it aborts instead.  Returns 0 when settled or to be
 * retried (the state says which), MV_ERR fatal with err set.
 */
int mvw_kafka_txn_commit(mvw_kafka_txn_t *t, mv_err_t *err);

/* Aborts the transaction (state -> ABORTING until Kafka confirms): 0 when
   settled or to be retried, MV_ERR fatal (or the role's aborted failed). */
int mvw_kafka_txn_abort(mvw_kafka_txn_t *t, mv_err_t *err);

/* Marks the transaction to be aborted at the next continue or settle
   (the feature worker's lost assignment); nothing is called now. */
void mvw_kafka_txn_mark_abort(mvw_kafka_txn_t *t);

/* One more attempt at what is under way: abort when ABORTING, else
   commit.  Returns as mvw_kafka_txn_commit. */
int mvw_kafka_txn_continue(mvw_kafka_txn_t *t, mv_err_t *err);

/*
 * Commits (or goes on aborting) until the state is NONE or ms passed,
 * polling the producer 100 ms between attempts: MV_OK (at once when
 * NONE), or MV_ERR with err set ("PREFIX: the open transaction was not
 * settled within MS ms (AGAIN at the next start)", or the fatal error).
 */
int mvw_kafka_txn_settle(mvw_kafka_txn_t *t, int64_t ms, mv_err_t *err);

/*
 * The producer's delivery callback (rd_kafka_conf_set_dr_msg_cb): a
 * record Kafka did not take makes the commit fail (the transaction is
 * aborted and produced again); it is counted in the producer's errors
 * and, unless purged, logged rate-limited (t->lim_delivery): "PREFIX: a
 * record to TOPIC was not taken: REASON".  The opaque must be the
 * producer's mvw_kafka_errors_t with owner t.
 */
void mvw_kafka_txn_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque);

#endif /* MVW_KAFKA_TXN_H */
