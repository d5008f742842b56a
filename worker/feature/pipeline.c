/*
 * pipeline.c -- the feature worker: log_topic's actions joined with the
 * item table into training_topic, exactly once (see pipeline.h for the
 * interface, join.h for the join itself).
 *
 * Handles.  A transactional producer (transactional.id = the group id); a
 * consumer of log_topic in the group (static member, same id), reading
 * committed records only; two table readers (table.h): the features topic
 * (the item table, followed for as long as the worker runs) and the
 * popularity topic (read once at start).
 *
 * Consume-transform-produce.  Actions are consumed in order and, in one
 * Kafka transaction per batch (commit_records actions or commit_interval
 * seconds, whichever comes first): every example is produced to
 * training_topic keyed by its user; at commit, the new count of every item
 * the batch touched is produced to popularity_topic (compacted, keyed by
 * item), then the consumer's positions after the batch are sent to the
 * transaction (send_offsets_to_transaction), then it commits.  Examples,
 * counts and consumed offsets become visible together or not at all.
 *
 * Why nothing is lost or doubled.  (1) An action is in training_topic (as
 * a read_committed consumer sees it) exactly when the transaction holding
 * its example committed, which is exactly when the group's offset moved
 * past it: after any crash the group resumes right after the last
 * committed action, so each action yields one committed example.  (2) A
 * restart first calls init_transactions with the same transactional.id,
 * which aborts what the dead run left open and fences it out, then reads
 * popularity_topic (read_committed) to its end: the counts it gets are
 * those of the committed transactions, i.e. of exactly the actions before
 * the group's committed offsets, so the next example of an item carries
 * the count it would have carried without the crash.  (3) Within a run, a
 * transaction Kafka refuses (abortable error) is aborted: the join's
 * counts go back to their committed values (mvw_join_rollback) and the
 * consumer seeks back to the first action of the transaction, which is
 * then joined again.  (4) A second feature worker of the group takes over
 * (init_transactions fences the first: its next transactional call fails
 * fatally and it stops), so there is one writer of the counts.
 *
 * The item table is not transactional: it is read from the features topic
 * from its beginning at every start (all partitions, to their ends, before
 * any action is joined), then followed.  An example carries the item's
 * features as last read; after a restart that may be a newer version than
 * an aborted attempt saw, never an older one.  An action whose item has
 * no features record yet is emitted with "features": null and counted
 * (unknown_items): holding it for features that may never come would stall
 * its partition, and the trainer learns from it either way.
 *
 * Malformed records on log_topic (not an action, unknown type, bad ids),
 * tombstones and values over 1 MiB are counted, logged rate-limited and
 * consumed past (their offsets commit with the batch); refused features
 * records (another embedding dimension ...) and popularity records that
 * are not a count likewise.
 *
 * Costs and limits.  A start reads the whole features topic (compaction
 * keeps it to one record per item) and popularity topic (one per item).
 * The trainer reads examples up to the last committed transaction: after
 * a kill -9 the open transaction blocks it until the restart aborts it or
 * transaction.timeout.ms (60 s) passes.  A broker that is down makes
 * commits retry at every step (actions are not consumed meanwhile).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "feature/join.h"
#include "feature/pipeline.h"
#include "feature/table.h"
#include "sources/kafka_common.h"
#include "sources/kafka_txn.h"
#include "sources/source.h"         /* topic and broker checks, the
                                       record size limit */

#define INIT_MS          1000       /* one wait for the producer id */
#define CALL_MS          2000       /* seeking back after an abort */
#define CLOSE_COMMIT_MS  10000      /* close: commit for at most this */
#define REVOKE_MS        10000      /* a revocation: likewise */
#define CLOSE_MS         3000       /* leaving the group */
#define BATCH_MS         50         /* consuming, per step */
#define TABLE_BATCH      10000      /* table records per step */
#define ERROR_LOG_MS     10000
#define TOPIC_MAX        (MV_SNAPSHOT_STREAM_MAX + 1)

typedef struct {
    int32_t  partition;
    int64_t  first;                 /* first offset consumed in the txn */
    int64_t  next;                  /* after the last one */
} txn_part_t;

/* What an open transaction holds; added to the stats at commit. */
typedef struct {
    uint64_t  actions, examples, unknown, invalid, skipped;
} txn_counts_t;

struct mvw_feature {
    char                  brokers[1024];
    char                  group[256];
    char                  log_topic[TOPIC_MAX];
    char                  training_topic[TOPIC_MAX];
    char                  popularity_topic[TOPIC_MAX];
    int64_t               interval_ms;
    uint32_t              commit_records;
    const mvw_log_t      *log;

    mvw_kafka_errors_t    perrs, cerrs;     /* producer's, consumer's */
    rd_kafka_t           *producer, *consumer;
    mvw_table_t          *features, *popularity;
    mvw_join_t           *join;
    mvw_feature_phase_t   phase;

    mvw_kafka_txn_t       txn;              /* kafka_txn.h */
    txn_part_t           *parts;
    size_t                n_parts, cap_parts;
    txn_counts_t          in_txn;

    mvw_feature_stats_t   st;
    mv_example_t          example;          /* large: kept here */
    char                  buf[MV_EXAMPLE_ENCODE_MAX];

    mvw_log_limit_t       lim_record, lim_item, lim_state, lim_txn,
                          lim_delivery;
    mvw_log_limit_t       lim_transport;    /* every handle's errors */
    int64_t               last_report_ms;
};


static int64_t
now_ms(void)
{
    return mv_clock_monotonic_us() / 1000;
}


/* ---- the tables -------------------------------------------------------- */

static void
on_item(void *ctx, const char *key, size_t key_len, const char *value,
    size_t len)
{
    mvw_feature_t  *f = ctx;
    mv_err_t        err;
    int             rc;

    (void) key;
    (void) key_len;
    if (value == NULL) {
        return;             /* a tombstone: compaction's, nothing to learn */
    }
    rc = mvw_join_item(f->join, value, len, mv_clock_realtime_ms(), &err);
    if (rc == MV_OK) {
        f->st.items++;
        return;
    }
    f->st.invalid_items += rc == MV_ERR;
    if (f->log != NULL) {
        mvw_log_every(f->log, &f->lim_item, ERROR_LOG_MS, MVW_LOG_WARN,
                      "feature worker: %s", err.msg);
    }
}


/* A popularity record: key = item id, value = its count in decimal. */
static void
on_count(void *ctx, const char *key, size_t key_len, const char *value,
    size_t len)
{
    mvw_feature_t  *f = ctx;
    uint64_t        count = 0;
    mv_err_t        err;
    size_t          i;

    for (i = 0; value != NULL && i < len && i < 20; i++) {
        if (value[i] < '0' || value[i] > '9'
            || count > (UINT64_MAX - 9) / 10)
        {
            break;
        }
        count = count * 10 + (uint64_t) (value[i] - '0');
    }
    if (key == NULL || (value != NULL && (len == 0 || i != len))) {
        mv_err_set(&err, "not a count");
    } else if (mvw_join_set_count(f->join, key, key_len, count, &err)
               == MV_OK)
    {
        f->st.restored++;
        return;
    }
    f->st.invalid_state++;
    if (f->log != NULL) {
        mvw_log_every(f->log, &f->lim_state, ERROR_LOG_MS, MVW_LOG_WARN,
                      "feature worker: %s record refused: %s",
                      f->popularity_topic, err.msg);
    }
}


/* ---- the transaction ----------------------------------------------------- */

/* The consumed positions of the open transaction as a list. */
static rd_kafka_topic_partition_list_t *
positions(const mvw_feature_t *f, int first)
{
    rd_kafka_topic_partition_list_t  *list;

    list = rd_kafka_topic_partition_list_new((int) f->n_parts);
    for (size_t i = 0; i < f->n_parts; i++) {
        rd_kafka_topic_partition_list_add(list, f->log_topic,
                                          f->parts[i].partition)->offset =
            first ? f->parts[i].first : f->parts[i].next;
    }
    return list;
}


/* What the transaction held, forgotten (it committed or aborted). */
static void
txn_forget(mvw_feature_t *f)
{
    f->n_parts = 0;
    memset(&f->in_txn, 0, sizeof(f->in_txn));
}


/* Aborted: its actions are joined again, counts back, consumer back. */
static int
on_aborted(void *ctx, mv_err_t *err)
{
    mvw_feature_t                    *f = ctx;
    rd_kafka_topic_partition_list_t  *list;
    rd_kafka_error_t                 *e;

    (void) err;
    mvw_join_rollback(f->join);
    list = positions(f, 1);
    e = rd_kafka_seek_partitions(f->consumer, list, CALL_MS);
    if (e != NULL) {
        rd_kafka_error_destroy(e);
    }
    for (int i = 0; i < list->cnt; i++) {
        if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR
            && f->log != NULL)
        {
            /* revoked meanwhile: its next owner starts from the group's
               committed offset, which is the same place */
            mvw_log(f->log, MVW_LOG_DEBUG, "feature worker: seek %s [%d]: "
                    "%s", f->log_topic, (int) list->elems[i].partition,
                    rd_kafka_err2str(list->elems[i].err));
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (f->log != NULL) {
        mvw_log(f->log, MVW_LOG_WARN, "feature worker: transaction of %llu "
                "action(s) aborted; they are joined again",
                (unsigned long long) f->in_txn.actions);
    }
    f->st.aborts++;
    txn_forget(f);
    return MV_OK;
}


/* Before the offsets: the new count of every item the transaction
   changed, produced into it. */
static int
write_counts(void *ctx, mv_err_t *err)
{
    mvw_feature_t       *f = ctx;
    rd_kafka_resp_err_t  rc;
    const char          *id;
    uint64_t             count;
    char                 num[24];
    int                  n;

    for (size_t k = 0; k < mvw_join_n_changed(f->join); k++) {
        id = mvw_join_changed(f->join, k, &count);
        n = snprintf(num, sizeof(num), "%llu", (unsigned long long) count);
        rc = rd_kafka_producev(f->producer,
                               RD_KAFKA_V_TOPIC(f->popularity_topic),
                               RD_KAFKA_V_KEY(id, strlen(id)),
                               RD_KAFKA_V_VALUE(num, (size_t) n),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_END);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return mv_err_set(err, "feature worker: producing the count of "
                              "%s: %s", id, rd_kafka_err2str(rc));
        }
    }
    return MV_OK;
}


/* The consumer's positions after the transaction, with its group's
   metadata. */
static rd_kafka_error_t *
send_positions(void *ctx, rd_kafka_t *producer, int timeout_ms)
{
    mvw_feature_t                       *f = ctx;
    rd_kafka_consumer_group_metadata_t  *meta;
    rd_kafka_topic_partition_list_t     *list;
    rd_kafka_error_t                    *e;

    meta = rd_kafka_consumer_group_metadata(f->consumer);
    list = positions(f, 0);
    e = rd_kafka_send_offsets_to_transaction(producer, list, meta,
                                             timeout_ms);
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_group_metadata_destroy(meta);
    return e;
}


/* Committed: the join's counts are the committed ones, counted. */
static void
on_committed(void *ctx)
{
    mvw_feature_t  *f = ctx;

    mvw_join_commit(f->join);
    f->st.transactions++;
    f->st.actions += f->in_txn.actions;
    f->st.examples += f->in_txn.examples;
    f->st.unknown_items += f->in_txn.unknown;
    f->st.invalid += f->in_txn.invalid;
    f->st.skipped += f->in_txn.skipped;
    txn_forget(f);
}


static const mvw_kafka_txn_ops_t  feature_txn_ops = {
    write_counts, send_positions, on_committed, on_aborted
};

static const mvw_kafka_txn_texts_t  feature_txn_texts = {
    "feature worker", " (another feature worker of this group took over)",
    "sending the consumed offsets", "its actions are joined again"
};


/* ---- the group ----------------------------------------------------------- */

static void
on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    mvw_feature_t  *f = ((mvw_kafka_errors_t *) opaque)->owner;
    mv_err_t        why;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* each partition from the group's committed offset */
        rd_kafka_assign(rk, parts);
        if (f->log != NULL) {
            mvw_log(f->log, MVW_LOG_INFO, "feature worker: %d partition(s) "
                    "of %s assigned", parts->cnt, f->log_topic);
        }
        return;
    }

    /* revoked: what was consumed from them is committed first (or
       aborted when the assignment is already lost: their next owner joins
       it again from the group's committed offsets) */
    if (mvw_kafka_txn_state(&f->txn) != MVW_KAFKA_TXN_NONE) {
        if (rd_kafka_assignment_lost(rk)) {
            mvw_kafka_txn_mark_abort(&f->txn);
        }
        if (mvw_kafka_txn_settle(&f->txn, REVOKE_MS, &why) != MV_OK
            && f->log != NULL)
        {
            mvw_log(f->log, MVW_LOG_WARN, "%s", why.msg);
        }
    }
    rd_kafka_assign(rk, NULL);
}


/* ---- joining ------------------------------------------------------------- */

/* Notes that m (a record of log_topic) is consumed in the open txn. */
static int
note_offset(mvw_feature_t *f, const rd_kafka_message_t *m, mv_err_t *err)
{
    txn_part_t  *tp;
    void        *q;

    for (size_t i = 0; i < f->n_parts; i++) {
        if (f->parts[i].partition == m->partition) {
            f->parts[i].next = m->offset + 1;
            return MV_OK;
        }
    }
    if (f->n_parts == f->cap_parts) {
        q = realloc(f->parts, (f->cap_parts ? 2 * f->cap_parts : 16)
                              * sizeof(*f->parts));
        if (q == NULL) {
            return mv_err_set(err, "feature worker: out of memory");
        }
        f->parts = q;
        f->cap_parts = f->cap_parts ? 2 * f->cap_parts : 16;
    }
    tp = &f->parts[f->n_parts++];
    tp->partition = m->partition;
    tp->first = m->offset;
    tp->next = m->offset + 1;
    return MV_OK;
}


/*
 * Joins one action record into the open transaction.  Returns MV_OK,
 * 1 when the transaction must be aborted (its example could not be
 * produced), MV_ERR on a fatal error.
 */
static int
join_one(mvw_feature_t *f, const rd_kafka_message_t *m, mv_err_t *err)
{
    mv_example_t         *x = &f->example;
    rd_kafka_resp_err_t   rc;
    size_t                len;
    int                   jr;

    f->in_txn.actions++;
    if (m->payload == NULL || m->len > MVW_SOURCE_RECORD_MAX) {
        f->in_txn.skipped++;
        return MV_OK;
    }
    jr = mvw_join_action(f->join, m->payload, m->len, mv_clock_realtime_ms(),
                         x, err);
    if (jr == MVW_JOIN_FAILED) {
        return MV_ERR;
    }
    if (jr != MV_OK) {
        f->in_txn.invalid++;
        if (f->log != NULL) {
            mvw_log_every(f->log, &f->lim_record, ERROR_LOG_MS, MVW_LOG_WARN,
                          "feature worker: %s [%d] @ %lld skipped: %s",
                          f->log_topic, (int) m->partition,
                          (long long) m->offset, err->msg);
        }
        return MV_OK;
    }

    len = mv_example_encode(x, f->buf, sizeof(f->buf));
    rc = len == 0 ? RD_KAFKA_RESP_ERR__FAIL
         : rd_kafka_producev(f->producer,
                             RD_KAFKA_V_TOPIC(f->training_topic),
                             RD_KAFKA_V_KEY(x->action.user_id,
                                            strlen(x->action.user_id)),
                             RD_KAFKA_V_VALUE(f->buf, len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        mv_err_set(err, "feature worker: producing an example: %s",
                   rd_kafka_err2str(rc));
        if (f->log != NULL) {
            mvw_log_every(f->log, &f->lim_txn, ERROR_LOG_MS, MVW_LOG_WARN,
                          "%s; aborting the transaction", err->msg);
        }
        return 1;
    }
    f->in_txn.examples++;
    f->in_txn.unknown += !x->has_features;
    return MV_OK;
}


/* Consumes actions for at most BATCH_MS; returns how many, or MV_ERR. */
static int
consume(mvw_feature_t *f, mv_err_t *err)
{
    rd_kafka_message_t  *m;
    int64_t              start = now_ms();
    int                  n = 0, rc;

    while (f->in_txn.actions < f->commit_records
           && (m = rd_kafka_consumer_poll(f->consumer, 0)) != NULL)
    {
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            f->cerrs.count++;
            if (mvw_kafka_note_fatal(f->consumer, m, &f->cerrs)) {
                rd_kafka_message_destroy(m);
                return n;                  /* step() reports it */
            }
            if (f->log != NULL) {
                mvw_log_every(f->log, &f->lim_transport, ERROR_LOG_MS,
                              MVW_LOG_WARN, "feature worker: %s [%d]: %s",
                              f->log_topic, (int) m->partition,
                              rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (mvw_kafka_txn_state(&f->txn) == MVW_KAFKA_TXN_NONE
            && mvw_kafka_txn_begin(&f->txn, err) != MV_OK)
        {
            rd_kafka_message_destroy(m);
            return MV_ERR;
        }
        rc = note_offset(f, m, err);
        if (rc == MV_OK) {
            rc = join_one(f, m, err);
        }
        rd_kafka_message_destroy(m);
        if (rc == MV_ERR) {
            return MV_ERR;
        }
        n++;
        if (rc == 1) {
            return mvw_kafka_txn_abort(&f->txn, err) == 0 ? n : MV_ERR;
        }
        if (n % 256 == 0 && now_ms() - start >= BATCH_MS) {
            break;
        }
    }
    return n;
}


/* ---- the phases ---------------------------------------------------------- */

static int
step_starting(mvw_feature_t *f, mv_err_t *err)
{
    int  rc;

    rc = mvw_kafka_txn_start(&f->txn, INIT_MS, err);
    if (rc <= 0) {
        return rc;
    }
    f->phase = MVW_FEATURE_RESTORING;
    if (f->log != NULL) {
        mvw_log(f->log, MVW_LOG_INFO, "feature worker: transactional id %s "
                "ready (what a previous run left open is aborted); reading "
                "%s and the features", f->group, f->popularity_topic);
    }
    return 0;
}


static int
step_restoring(mvw_feature_t *f, mv_err_t *err)
{
    rd_kafka_topic_partition_list_t  *subs;
    rd_kafka_resp_err_t               rc;
    int                               a = 0, b;

    if (f->popularity != NULL) {
        a = mvw_table_poll(f->popularity, TABLE_BATCH, on_count, f, err);
        if (a < 0) {
            return MV_ERR;
        }
    }
    b = mvw_table_poll(f->features, TABLE_BATCH, on_item, f, err);
    if (b < 0) {
        return MV_ERR;
    }
    if (!mvw_table_caught_up(f->features)
        || (f->popularity != NULL && !mvw_table_caught_up(f->popularity)))
    {
        return a + b;
    }

    mvw_table_free(f->popularity);
    f->popularity = NULL;
    subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, f->log_topic,
                                      RD_KAFKA_PARTITION_UA);
    rc = rd_kafka_subscribe(f->consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return mv_err_set(err, "feature worker: subscribe to %s: %s",
                          f->log_topic, rd_kafka_err2str(rc));
    }
    f->phase = MVW_FEATURE_RUNNING;
    if (f->log != NULL) {
        mvw_log(f->log, MVW_LOG_INFO, "feature worker: %llu item count(s) "
                "and %llu features record(s) read; joining %s from group "
                "%s's committed offsets", (unsigned long long) f->st.restored,
                (unsigned long long) f->st.items, f->log_topic, f->group);
    }
    return a + b;
}


static int
step_running(mvw_feature_t *f, mv_err_t *err)
{
    int  a, b;

    if (mvw_kafka_txn_state(&f->txn) > MVW_KAFKA_TXN_OPEN) {
        return mvw_kafka_txn_continue(&f->txn, err);
    }
    a = mvw_table_poll(f->features, TABLE_BATCH, on_item, f, err);
    if (a < 0) {
        return MV_ERR;
    }
    b = consume(f, err);
    if (b < 0) {
        return MV_ERR;
    }
    if (mvw_kafka_txn_due(&f->txn, f->in_txn.actions, f->commit_records,
                          f->interval_ms)
        && mvw_kafka_txn_commit(&f->txn, err) != 0)
    {
        return MV_ERR;
    }
    return a + b;
}


int
mvw_feature_step(mvw_feature_t *f, mv_err_t *err)
{
    int  rc;

    rd_kafka_poll(f->producer, 0);             /* its error events */
    switch (f->phase) {
    case MVW_FEATURE_STARTING:
        rc = step_starting(f, err);
        break;
    case MVW_FEATURE_RESTORING:
        rc = step_restoring(f, err);
        break;
    default:
        rc = step_running(f, err);
    }
    if (rc >= 0 && (f->perrs.fatal[0] != '\0' || f->cerrs.fatal[0] != '\0')) {
        return mv_err_set(err, "feature worker: fatal error: %s (another "
                          "feature worker of group %s took over, or the broker "
                          "fenced this one)",
                          f->perrs.fatal[0] ? f->perrs.fatal
                                            : f->cerrs.fatal, f->group);
    }
    return rc;
}


/* ---- life cycle ---------------------------------------------------------- */

static rd_kafka_t *
new_handle(mvw_feature_t *f, rd_kafka_type_t type, const char *const *extra,
    mv_err_t *err)
{
    static const char *const  producer_conf[][2] = {
        { "client.id", "milvuso-feature" },
        { "transaction.timeout.ms", "60000" },
        { "linger.ms", "5" },
    };
    static const char *const  consumer_conf[][2] = {
        { "client.id", "milvuso-feature" },
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "auto.offset.reset", "earliest" },
        { "isolation.level", "read_committed" },
    };
    int                  producer = type == RD_KAFKA_PRODUCER;
    mvw_kafka_errors_t  *errs = producer ? &f->perrs : &f->cerrs;
    rd_kafka_conf_t     *conf;
    rd_kafka_t          *rk;
    char                 why[512], queue[24];

    errs->owner = producer ? (void *) &f->txn : (void *) f;
    errs->prefix = producer ? "feature worker producer"
                            : "feature worker consumer";
    errs->log = f->log;
    errs->shared = &f->lim_transport;
    conf = producer
           ? mvw_kafka_conf(f->brokers, producer_conf,
                            sizeof(producer_conf) / sizeof(producer_conf[0]),
                            extra, errs, err)
           : mvw_kafka_conf(f->brokers, consumer_conf,
                            sizeof(consumer_conf) / sizeof(consumer_conf[0]),
                            extra, errs, err);
    if (conf == NULL) {
        return NULL;
    }
    /* room for a whole transaction: its examples and its counts */
    snprintf(queue, sizeof(queue), "%u", 2 * f->commit_records + 1024);
    if ((producer
         && (mvw_kafka_conf_set(conf, "transactional.id", f->group, err)
             != MV_OK
             || mvw_kafka_conf_set(conf, "queue.buffering.max.messages",
                                   queue, err) != MV_OK))
        || (!producer
            && (mvw_kafka_conf_set(conf, "group.id", f->group, err) != MV_OK
                || mvw_kafka_conf_set(conf, "group.instance.id", f->group,
                                      err) != MV_OK)))
    {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (producer) {
        rd_kafka_conf_set_dr_msg_cb(conf, mvw_kafka_txn_on_delivery);
    } else {
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    }
    rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        mv_err_set(err, "kafka: %s", why);
        return NULL;
    }
    if (!producer) {
        rd_kafka_poll_set_consumer(rk);
    }
    return rk;
}


/* Checks and copies the topics of p into f. */
static int
set_topics(mvw_feature_t *f, const mvw_feature_params_t *p, mv_err_t *err)
{
    const char  *names[4] = { p->log_topic, p->feature_topic,
                              p->training_topic, p->popularity_topic };
    const char  *keys[4] = { "log_topic", "feature_topic", "training_topic",
                             "popularity_topic" };
    mv_err_t     why;

    for (int i = 0; i < 4; i++) {
        if (names[i] == NULL || mvw_kafka_topic_check(names[i], &why)
                                != MV_OK)
        {
            return mv_err_set(err, "feature worker: %s \"%.60s\": %s",
                              keys[i], names[i] ? names[i] : "",
                              names[i] ? why.msg : "must not be empty");
        }
        for (int k = 0; k < i; k++) {
            if (strcmp(names[i], names[k]) == 0) {
                return mv_err_set(err, "feature worker: %s and %s are both "
                                  "\"%s\"", keys[k], keys[i], names[i]);
            }
        }
    }
    snprintf(f->log_topic, sizeof(f->log_topic), "%s", p->log_topic);
    snprintf(f->training_topic, sizeof(f->training_topic), "%s",
             p->training_topic);
    snprintf(f->popularity_topic, sizeof(f->popularity_topic), "%s",
             p->popularity_topic);
    return MV_OK;
}


mvw_feature_t *
mvw_feature_open(const mvw_feature_params_t *p, mv_err_t *err)
{
    mvw_feature_t  *f;

    if (p->brokers == NULL || mvw_kafka_brokers_check(p->brokers, err)
                              != MV_OK)
    {
        if (p->brokers == NULL) {
            mv_err_set(err, "feature worker: no brokers");
        }
        return NULL;
    }
    if (p->group_id == NULL || p->group_id[0] == '\0'
        || strlen(p->group_id) >= 200 || p->commit_records == 0
        || !(p->commit_interval > 0.0))
    {
        mv_err_set(err, "feature worker: a group id of 1 to 199 bytes, "
                   "commit_records >= 1 and commit_interval > 0 are needed");
        return NULL;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        mv_err_set(err, "out of memory");
        return NULL;
    }
    if (set_topics(f, p, err) != MV_OK) {
        free(f);
        return NULL;
    }
    snprintf(f->brokers, sizeof(f->brokers), "%s", p->brokers);
    snprintf(f->group, sizeof(f->group), "%s", p->group_id);
    f->interval_ms = (int64_t) (p->commit_interval * 1000.0);
    f->interval_ms = f->interval_ms > 0 ? f->interval_ms : 1;
    f->commit_records = p->commit_records;
    f->log = p->log;

    f->join = mvw_join_new(p->dim, err);
    if (f->join == NULL
        || (f->producer = new_handle(f, RD_KAFKA_PRODUCER, p->extra, err))
           == NULL
        || (f->consumer = new_handle(f, RD_KAFKA_CONSUMER, p->extra, err))
           == NULL
        || (f->features = mvw_table_open(p->brokers, p->feature_topic,
                                         f->group, "feature worker features",
                                         f->log, &f->lim_transport, p->extra,
                                         err)) == NULL
        || (f->popularity = mvw_table_open(p->brokers, p->popularity_topic,
                                           f->group,
                                           "feature worker popularity",
                                           f->log, &f->lim_transport,
                                           p->extra, err)) == NULL)
    {
        mvw_feature_abandon(f);
        return NULL;
    }
    mvw_kafka_txn_init(&f->txn, f->producer, &feature_txn_texts,
                       &feature_txn_ops, f, f->log, &f->lim_txn,
                       &f->lim_delivery);
    return f;
}


void
mvw_feature_abandon(mvw_feature_t *f)
{
    if (f == NULL) {
        return;
    }
    mvw_table_free(f->features);
    mvw_table_free(f->popularity);
    if (f->consumer != NULL) {
        rd_kafka_destroy_flags(f->consumer,
                               RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    if (f->producer != NULL) {
        rd_kafka_destroy(f->producer);
    }
    mvw_join_free(f->join);
    free(f->parts);
    free(f);
}


int
mvw_feature_close(mvw_feature_t *f, mvw_feature_stats_t *last,
    mv_err_t *err)
{
    int  rc = MV_OK;

    rc = mvw_kafka_txn_settle(&f->txn, CLOSE_COMMIT_MS, err);
    if (last != NULL) {
        mvw_feature_stats(f, last);
    }
    if (f->consumer != NULL && f->phase == MVW_FEATURE_RUNNING) {
        mvw_kafka_consumer_close(f->consumer, CLOSE_MS);
        f->consumer = NULL;
    }
    mvw_feature_abandon(f);
    return rc;
}


void
mvw_feature_stats(const mvw_feature_t *f, mvw_feature_stats_t *st)
{
    mvw_join_stats_t  js;

    *st = f->st;
    st->phase = f->phase;
    st->pending = f->in_txn.actions;
    st->errors = f->perrs.count + f->cerrs.count
                 + mvw_table_errors(f->features)
                 + (f->popularity ? mvw_table_errors(f->popularity) : 0);
    mvw_join_stats(f->join, &js);
    st->table_items = js.items;
    st->with_features = js.with_features;
}
