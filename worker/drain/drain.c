/*
 * drain.c -- the action log drained into Kafka, exactly once (see
 * drain.h for the interface).
 *
 * Why there is something to drain.  nginx configured with milvuso_kafka
 * and milvuso_action_log appends to the log what Kafka definitely did not
 * take (refused at produce time, or a delivery report that failed without
 * the record being possibly persisted) and answers 202.  Those records
 * must reach Kafka's topics once, and only once, when the broker is back.
 *
 * Handles.  A transactional producer (transactional.id = "milvuso-drain-
 * CRC", CRC = crc32c of the log directory's real path, so every drain of
 * one log has the same id and a new one fences the old one out); a
 * consumer handle of group "milvuso-drain-CRC" that never subscribes: it
 * only reads the group's committed offset, read_committed (librdkafka
 * then asks the broker for stable offsets, so a pending transactional
 * commit is waited for, never read); the action log through the worker's
 * actlog source (sources/source.h), registered as the log's consumer
 * "drain-CRC", so that retention keeps every segment not yet drained.
 *
 * The position.  The log position after the last drained record (the
 * source's packed segment << 40 | offset) is stored in Kafka as the
 * group's committed offset of partition 0 of log_topic, with metadata
 * MVW_DRAIN_METADATA naming it a log position.  Kafka does not check a
 * committed offset against the partition's end (verified against Kafka
 * 4.1.1: a transactional commit of 3 << 40 + 12345 on a partition of a few
 * records reads back as committed), and the group has no members, so
 * nothing else ever moves it.  In Kafka's tools the group shows an odd
 * lag on that partition: the metadata says why.
 *
 * One transaction per commit_records records or commit_interval seconds:
 * each action is produced to log_topic keyed by its user, each item to
 * feature_topic keyed by its id, the value the record's payload itself
 * (exactly what nginx's producer sends), then the position after the last
 * one goes into the transaction (send_offsets_to_transaction), then it
 * commits.
 *
 * Why nothing is lost or doubled.  (1) Records and position become
 * visible together or not at all: a read_committed consumer of the topics
 * sees a drained record exactly when the group's offset is past it.  (2)
 * A start first calls init_transactions, which aborts what a killed drain
 * left open and fences out a drain still running, then reads the
 * committed position (stable) and opens the log there: the records after
 * it were in no committed transaction, those before it in one.  (3) A
 * transaction Kafka refuses (a delivery that failed, a timeout of the
 * transaction) is aborted and the log reopened at the committed position,
 * so its records are drained again in the next one.  (4) A drain fenced
 * by a newer one fails its next transactional call and stops: one writer.
 * Records nginx answered 202 are in the log before they are answered
 * (sync=on: on disk), and retention removes a segment only once the
 * drain registered a position past it, which it does after the commit
 * that covers it.
 *
 * Staying alive.  Kafka expires the committed offsets of a group without
 * members offsets.retention.minutes (7 days by default) after their last
 * commit, and a drain with nothing to drain commits nothing: so an idle
 * drain commits its position again (an empty transaction) as often as it
 * refreshes its log registration, a quarter of the consumer expiry, at
 * most hourly.  A drain started with no committed position (a first
 * start, or one stopped for longer than Kafka keeps offsets) starts at
 * its registration in the log when it has one (it is written after each
 * commit, so it is at most one transaction behind), else at the log's
 * start; it says which.
 *
 * A broker that is down: records wait in the open transaction, its
 * commit is retried at each step (the drain reads no further meanwhile),
 * and a transaction that times out is aborted and drained again.  An idle
 * step costs a read() of the newest segment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "crc32c.h"
#include "drain/drain.h"
#include "events.h"
#include "files.h"
#include "sources/kafka_common.h"
#include "sources/kafka_txn.h"
#include "sources/source.h"

#define INIT_MS          1000       /* one wait for the producer id */
#define CALL_MS          2000       /* reading the committed position */
#define CLOSE_COMMIT_MS  10000      /* close: commit for at most this */
#define BATCH_MS         50         /* draining, per step */
#define ERROR_LOG_MS     10000
#define REFRESH_MAX_MS   (3600 * 1000LL)
#define REFRESH_MIN_MS   1000
#define TOPIC_MAX        (MV_SNAPSHOT_STREAM_MAX + 1)
#define NAME_MAX_        32

/* What an open transaction holds; added to the stats at commit. */
typedef struct {
    uint64_t  records, actions, items, invalid;
    uint64_t  pos;                  /* packed position after its last */
    int       refresh;              /* only the position, idle */
} txn_counts_t;

struct mvw_drain {
    char                  brokers[1024];
    char                  dir[4096];
    char                  id[NAME_MAX_];          /* milvuso-drain-CRC */
    char                  name[NAME_MAX_];        /* drain-CRC */
    char                  note[MV_ACTLOG_CONSUMER_NOTE_MAX + 1];
    char                  log_topic[TOPIC_MAX];
    char                  feature_topic[TOPIC_MAX];
    int64_t               interval_ms, refresh_ms;
    uint32_t              commit_records;
    mv_actlog_retention_t retention;
    const mvw_log_t      *log;

    mvw_kafka_errors_t    perrs, cerrs;     /* producer's, consumer's */
    rd_kafka_t           *producer, *consumer;
    mvw_source_t         *source;           /* once RUNNING */
    mvw_drain_phase_t     phase;

    mvw_kafka_txn_t       txn;              /* kafka_txn.h */
    int64_t               committed_ms;     /* last commit, monotonic */
    txn_counts_t          in_txn;

    mvw_drain_stats_t     st;
    mvw_source_stats_t    gone;             /* stats of freed sources */
    float                *vec;              /* an item's embedding */

    mvw_log_limit_t       lim_record, lim_txn, lim_read, lim_resume;
    mvw_log_limit_t       lim_transport;    /* both handles' errors */
};


static int64_t
now_ms(void)
{
    return mv_clock_monotonic_us() / 1000;
}


static void
say(mvw_drain_t *d, mvw_log_limit_t *lim, mvw_log_level_t level,
    const char *msg)
{
    if (d->log != NULL) {
        if (lim != NULL) {
            mvw_log_every(d->log, lim, ERROR_LOG_MS, level, "drain: %s", msg);
        } else {
            mvw_log(d->log, level, "drain: %s", msg);
        }
    }
}


/* ---- the log ------------------------------------------------------------- */

/* Opens the log's source at packed position pos (0: the log's start). */
static int
source_open(mvw_drain_t *d, uint64_t pos, mv_err_t *err)
{
    mvw_actlog_params_t  ap;
    mv_stream_pos_t      sp;
    mvw_source_stats_t   st;

    if (d->source != NULL) {
        mvw_source_stats(d->source, &st);
        d->gone.skipped_bytes += st.skipped_bytes;
        d->gone.removed_segments += st.removed_segments;
        d->gone.removed_bytes += st.removed_bytes;
        mvw_source_free(d->source);
        d->source = NULL;
    }
    memset(&ap, 0, sizeof(ap));
    ap.dir = d->dir;
    ap.consumer = d->name;
    ap.note = d->note;
    ap.keep = 1;
    ap.retention = d->retention;
    ap.log = d->log;
    memset(&sp, 0, sizeof(sp));
    memcpy(sp.stream, MV_ACTLOG_STREAM_NAME, sizeof(MV_ACTLOG_STREAM_NAME));
    sp.offset = pos;
    d->source = mvw_source_actlog_open(&ap, &sp, pos != 0, err);
    if (d->source == NULL) {
        return MV_ERR;
    }
    if (pos != 0) {
        /* the registration moves from segment 0 (held while opening) to
           the committed position, and retention trims before it */
        mvw_source_durable(d->source, &sp, 1);
    }
    return MV_OK;
}


/* The position our registration holds, packed; 0 when none. */
static uint64_t
registered_pos(mvw_drain_t *d)
{
    mv_actlog_consumer_t  *list = NULL;
    mv_err_t               err;
    size_t                 n = 0;
    uint64_t               pos = 0;

    if (mv_actlog_consumers(d->dir, &list, &n, &err) != MV_OK) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, d->name) == 0 && !list[i].damaged
            && list[i].pos.segment != 0)
        {
            pos = mv_actlog_pos_pack(list[i].pos);
        }
    }
    free(list);
    return pos;
}


/* ---- the transaction ------------------------------------------------------ */

/* Sends the log position after the transaction's last record, as the
   synthetic group's offset of log_topic partition 0 (kafka_txn.h). */
static rd_kafka_error_t *
send_position(void *ctx, rd_kafka_t *producer, int timeout_ms)
{
    mvw_drain_t                         *d = ctx;
    rd_kafka_consumer_group_metadata_t  *meta;
    rd_kafka_topic_partition_list_t     *list;
    rd_kafka_topic_partition_t          *tp;
    rd_kafka_error_t                    *e;
    mv_actlog_pos_t                      pos;
    char                                 text[4200];

    pos = mv_actlog_pos_unpack(d->in_txn.pos);
    snprintf(text, sizeof(text), MVW_DRAIN_METADATA " (segment %llu, "
             "offset %llu) of %s, not a Kafka offset",
             (unsigned long long) pos.segment,
             (unsigned long long) pos.offset, d->dir);
    list = rd_kafka_topic_partition_list_new(1);
    tp = rd_kafka_topic_partition_list_add(list, d->log_topic, 0);
    tp->offset = (int64_t) d->in_txn.pos;
    tp->metadata = strdup(text);              /* freed with the list */
    tp->metadata_size = tp->metadata ? strlen(text) : 0;
    meta = rd_kafka_consumer_group_metadata_new(d->id);
    e = rd_kafka_send_offsets_to_transaction(producer, list, meta,
                                             timeout_ms);
    rd_kafka_consumer_group_metadata_destroy(meta);
    rd_kafka_topic_partition_list_destroy(list);
    return e;
}


/* Committed: counted, and the registration in the log moved past it
   (durable in Kafka), so retention may trim before it. */
static void
on_committed(void *ctx)
{
    mvw_drain_t      *d = ctx;
    mv_stream_pos_t   sp;

    d->st.transactions++;
    d->st.refreshes += d->in_txn.refresh;
    d->st.actions += d->in_txn.actions;
    d->st.items += d->in_txn.items;
    d->st.invalid += d->in_txn.invalid;
    d->st.position = d->in_txn.pos;
    d->committed_ms = now_ms();
    memset(&d->in_txn, 0, sizeof(d->in_txn));

    memset(&sp, 0, sizeof(sp));
    memcpy(sp.stream, MV_ACTLOG_STREAM_NAME, sizeof(MV_ACTLOG_STREAM_NAME));
    sp.offset = d->st.position;
    mvw_source_durable(d->source, &sp, 1);
}


/* Aborted: the log reopened at the committed position, so its records
   come again in the next transaction. */
static int
on_aborted(void *ctx, mv_err_t *err)
{
    mvw_drain_t  *d = ctx;
    char          msg[160];

    snprintf(msg, sizeof(msg), "transaction of %llu record(s) aborted; they "
             "are drained again", (unsigned long long) d->in_txn.records);
    say(d, NULL, MVW_LOG_WARN, msg);
    d->st.aborts++;
    memset(&d->in_txn, 0, sizeof(d->in_txn));
    return source_open(d, d->st.position, err);
}


static const mvw_kafka_txn_ops_t  drain_txn_ops = {
    NULL, send_position, on_committed, on_aborted
};

static const mvw_kafka_txn_texts_t  drain_txn_texts = {
    "drain", " (another drain of this action log took over)",
    "sending the log position", "its records are drained again"
};


/* ---- draining ------------------------------------------------------------- */

/*
 * The topic and key of a log record (nginx's producer's: an action to
 * log_topic keyed by its user, an item to feature_topic keyed by its id),
 * into *topic and key.  MV_OK, or MV_ERR with err saying why it is
 * neither.
 */
static int
record_route(mvw_drain_t *d, const mvw_record_t *r, const char **topic,
    char *key, mv_err_t *err)
{
    mv_event_error_t  e;
    mv_action_t       a;
    mv_item_event_t   item;

    if (r->type == MV_RECORD_ACTION
        && mv_action_parse(r->payload, r->len, MV_ORIGIN_DATA, 0, &a, &e)
           == MV_OK)
    {
        *topic = d->log_topic;
        memcpy(key, a.user_id, sizeof(a.user_id));
        return MV_OK;
    }
    if (r->type == MV_RECORD_ITEM
        && mv_item_parse(r->payload, r->len, MV_ORIGIN_DATA, 0, 0, d->vec,
                         MV_DIM_MAX, &item, &e) == MV_OK)
    {
        *topic = d->feature_topic;
        memcpy(key, item.item_id, sizeof(item.item_id));
        return MV_OK;
    }
    if (r->type != MV_RECORD_ACTION && r->type != MV_RECORD_ITEM) {
        return mv_err_set(err, "record type %u is neither an action nor an "
                          "item", (unsigned) r->type);
    }
    return mv_err_set(err, "%s record refused: %s: %s",
                      r->type == MV_RECORD_ACTION ? "action" : "item",
                      e.error, e.detail);
}


/* Produces one log record into the open transaction: MV_OK, 1 when the
   transaction must be aborted, MV_ERR fatal. */
static int
drain_one(mvw_drain_t *d, const mvw_record_t *r, mv_err_t *err)
{
    const char           *topic = NULL;
    char                  key[MV_ID_MAX + 1], msg[400];
    rd_kafka_resp_err_t   rc;
    mv_err_t              why;

    d->in_txn.records++;
    if (record_route(d, r, &topic, key, &why) != MV_OK) {
        d->in_txn.invalid++;
        snprintf(msg, sizeof(msg), "a log record of %.150s is skipped: %.200s",
                 d->dir, why.msg);
        say(d, &d->lim_record, MVW_LOG_WARN, msg);
        return MV_OK;
    }
    rc = rd_kafka_producev(d->producer, RD_KAFKA_V_TOPIC(topic),
                           RD_KAFKA_V_KEY(key, strlen(key)),
                           RD_KAFKA_V_VALUE((void *) r->payload, r->len),
                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                           RD_KAFKA_V_END);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        mv_err_set(err, "drain: producing to %s: %s", topic,
                   rd_kafka_err2str(rc));
        say(d, &d->lim_txn, MVW_LOG_WARN, err->msg + strlen("drain: "));
        return 1;
    }
    if (topic == d->log_topic) {
        d->in_txn.actions++;
    } else {
        d->in_txn.items++;
    }
    return MV_OK;
}


/* Drains records for at most BATCH_MS; returns how many, or MV_ERR. */
static int
drain_batch(mvw_drain_t *d, mv_err_t *err)
{
    mvw_record_t     r;
    mv_stream_pos_t  sp;
    mv_err_t         why;
    int64_t          start = now_ms();
    int              n = 0, rc;

    while (d->in_txn.records < d->commit_records) {
        rc = mvw_source_next(d->source, &r, &why);
        if (rc == 0) {
            break;
        }
        if (rc < 0) {
            say(d, &d->lim_read, MVW_LOG_ERROR, why.msg);
            break;
        }
        if (mvw_kafka_txn_state(&d->txn) == MVW_KAFKA_TXN_NONE
            && mvw_kafka_txn_begin(&d->txn, err) != MV_OK)
        {
            return MV_ERR;
        }
        rc = drain_one(d, &r, err);
        if (rc == MV_ERR) {
            return MV_ERR;
        }
        n++;
        if (mvw_source_positions(d->source, &sp, 1) == 1) {
            d->in_txn.pos = sp.offset;
        }
        if (rc == 1) {
            return mvw_kafka_txn_abort(&d->txn, err) == 0 ? n : MV_ERR;
        }
        if (n % 256 == 0 && now_ms() - start >= BATCH_MS) {
            break;
        }
    }
    return n;
}


/* ---- the phases ------------------------------------------------------------ */

static int
step_starting(mvw_drain_t *d, mv_err_t *err)
{
    char  msg[200];
    int   rc;

    rc = mvw_kafka_txn_start(&d->txn, INIT_MS, err);
    if (rc <= 0) {
        return rc;
    }
    d->phase = MVW_DRAIN_RESUMING;
    snprintf(msg, sizeof(msg), "transactional id %s ready (what an earlier "
             "drain of this log left open is aborted); reading the "
             "committed log position", d->id);
    say(d, NULL, MVW_LOG_INFO, msg);
    return 0;
}


static int
step_resuming(mvw_drain_t *d, mv_err_t *err)
{
    rd_kafka_topic_partition_list_t  *list;
    rd_kafka_topic_partition_t       *tp;
    rd_kafka_resp_err_t               rc;
    mv_actlog_pos_t                   at;
    int64_t                           off;
    uint64_t                          pos;
    char                              msg[600], from[300];

    list = rd_kafka_topic_partition_list_new(1);
    tp = rd_kafka_topic_partition_list_add(list, d->log_topic, 0);
    rc = rd_kafka_committed(d->consumer, list, CALL_MS);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = tp->err;
    }
    off = tp->offset;
    snprintf(from, sizeof(from), "the position committed in Kafka: "
             "\"%.*s\"", (int) (tp->metadata_size < 200
                                 ? tp->metadata_size : 200),
             tp->metadata ? (const char *) tp->metadata : "");
    rd_kafka_topic_partition_list_destroy(list);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        d->cerrs.count++;
        snprintf(msg, sizeof(msg), "reading the committed position of group "
                 "%s: %s; retrying", d->id, rd_kafka_err2str(rc));
        say(d, &d->lim_resume, MVW_LOG_WARN, msg);
        return 0;
    }

    pos = off >= 0 ? (uint64_t) off : registered_pos(d);
    if (off < 0) {
        snprintf(from, sizeof(from), "%s", pos != 0
                 ? "no position in Kafka (expired?): this drain's "
                   "registration in the log, which may send the records "
                   "of one transaction again"
                 : "no position in Kafka: the log's start");
    }
    at = mv_actlog_pos_unpack(pos);
    if (pos != 0 && at.segment == 0) {
        return mv_err_set(err, "drain: group %s holds offset %lld, not a log "
                          "position (segment 0); remove the group's offsets "
                          "or use another log", d->id, (long long) off);
    }
    if (source_open(d, pos, err) != MV_OK) {
        return MV_ERR;
    }
    d->st.position = pos;
    d->committed_ms = now_ms();
    d->phase = MVW_DRAIN_RUNNING;
    snprintf(msg, sizeof(msg), "draining %.150s from segment %llu offset "
             "%llu (%s)", d->dir, (unsigned long long) at.segment,
             (unsigned long long) at.offset, from);
    say(d, NULL, off >= 0 || pos == 0 ? MVW_LOG_INFO : MVW_LOG_WARN, msg);
    return 0;
}


static int
step_running(mvw_drain_t *d, mv_err_t *err)
{
    int  n;

    if (mvw_kafka_txn_state(&d->txn) > MVW_KAFKA_TXN_OPEN) {
        return mvw_kafka_txn_continue(&d->txn, err);
    }
    n = drain_batch(d, err);
    if (n < 0) {
        return MV_ERR;
    }
    if (mvw_kafka_txn_state(&d->txn) == MVW_KAFKA_TXN_NONE
        && d->st.position != 0
        && now_ms() - d->committed_ms >= d->refresh_ms)
    {
        /* idle: the committed position again, so Kafka keeps it */
        if (mvw_kafka_txn_begin(&d->txn, err) != MV_OK) {
            return MV_ERR;
        }
        d->in_txn.pos = d->st.position;
        d->in_txn.refresh = 1;
        return mvw_kafka_txn_commit(&d->txn, err);
    }
    if (mvw_kafka_txn_due(&d->txn, d->in_txn.records, d->commit_records,
                          d->interval_ms)
        && mvw_kafka_txn_commit(&d->txn, err) != 0)
    {
        return MV_ERR;
    }
    return n;
}


int
mvw_drain_step(mvw_drain_t *d, mv_err_t *err)
{
    int  rc;

    rd_kafka_poll(d->producer, 0);             /* reports, errors */
    rd_kafka_poll(d->consumer, 0);
    switch (d->phase) {
    case MVW_DRAIN_STARTING:
        rc = step_starting(d, err);
        break;
    case MVW_DRAIN_RESUMING:
        rc = step_resuming(d, err);
        break;
    default:
        rc = step_running(d, err);
    }
    if (rc >= 0 && (d->perrs.fatal[0] != '\0' || d->cerrs.fatal[0] != '\0')) {
        return mv_err_set(err, "drain: fatal error: %s (another drain of "
                          "this action log may have taken over)",
                          d->perrs.fatal[0] ? d->perrs.fatal
                                            : d->cerrs.fatal);
    }
    return rc;
}


/* ---- life cycle ------------------------------------------------------------ */

static rd_kafka_t *
new_handle(mvw_drain_t *d, rd_kafka_type_t type, const char *const *extra,
    mv_err_t *err)
{
    static const char *const  producer_conf[][2] = {
        { "client.id", "milvuso-drain" },
        { "transaction.timeout.ms", "60000" },
        { "linger.ms", "5" },
    };
    static const char *const  consumer_conf[][2] = {
        { "client.id", "milvuso-drain" },
        { "enable.auto.commit", "false" },
        { "isolation.level", "read_committed" },
    };
    int                  producer = type == RD_KAFKA_PRODUCER;
    mvw_kafka_errors_t  *errs = producer ? &d->perrs : &d->cerrs;
    rd_kafka_conf_t     *conf;
    rd_kafka_t          *rk;
    char                 why[512], queue[24];

    errs->owner = producer ? (void *) &d->txn : (void *) d;
    errs->prefix = producer ? "drain producer" : "drain consumer";
    errs->log = d->log;
    errs->shared = &d->lim_transport;
    conf = producer
           ? mvw_kafka_conf(d->brokers, producer_conf,
                            sizeof(producer_conf) / sizeof(producer_conf[0]),
                            extra, errs, err)
           : mvw_kafka_conf(d->brokers, consumer_conf,
                            sizeof(consumer_conf) / sizeof(consumer_conf[0]),
                            extra, errs, err);
    if (conf == NULL) {
        return NULL;
    }
    /* room for a whole transaction */
    snprintf(queue, sizeof(queue), "%u", d->commit_records + 1024);
    if ((producer
         && (mvw_kafka_conf_set(conf, "transactional.id", d->id, err)
             != MV_OK
             || mvw_kafka_conf_set(conf, "queue.buffering.max.messages",
                                   queue, err) != MV_OK))
        || (!producer
            && mvw_kafka_conf_set(conf, "group.id", d->id, err) != MV_OK))
    {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (producer) {
        rd_kafka_conf_set_dr_msg_cb(conf, mvw_kafka_txn_on_delivery);
    }
    rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        mv_err_set(err, "kafka: %s", why);
        return NULL;
    }
    return rk;
}


/* Checks p and copies what d keeps of it. */
static int
set_params(mvw_drain_t *d, const mvw_drain_params_t *p, mv_err_t *err)
{
    const char  *names[2] = { p->log_topic, p->feature_topic };
    const char  *keys[2] = { "log_topic", "feature_topic" };
    mv_err_t     why;
    int64_t      refresh;

    if (p->brokers == NULL || mvw_kafka_brokers_check(p->brokers, err)
                              != MV_OK)
    {
        return p->brokers ? MV_ERR : mv_err_set(err, "drain: no brokers");
    }
    for (int i = 0; i < 2; i++) {
        if (names[i] == NULL || mvw_kafka_topic_check(names[i], &why)
                                != MV_OK)
        {
            return mv_err_set(err, "drain: %s \"%.60s\": %s", keys[i],
                              names[i] ? names[i] : "",
                              names[i] ? why.msg : "must not be empty");
        }
    }
    if (strcmp(p->log_topic, p->feature_topic) == 0) {
        return mv_err_set(err, "drain: log_topic and feature_topic are both "
                          "\"%s\"", p->log_topic);
    }
    if (p->dir == NULL || p->dir[0] == '\0'
        || strlen(p->dir) >= sizeof(d->dir) || p->commit_records == 0
        || !(p->commit_interval > 0.0))
    {
        return mv_err_set(err, "drain: an action log directory, "
                          "commit_records >= 1 and commit_interval > 0 are "
                          "needed");
    }
    snprintf(d->brokers, sizeof(d->brokers), "%s", p->brokers);
    snprintf(d->dir, sizeof(d->dir), "%s", p->dir);
    snprintf(d->log_topic, sizeof(d->log_topic), "%s", p->log_topic);
    snprintf(d->feature_topic, sizeof(d->feature_topic), "%s",
             p->feature_topic);
    d->interval_ms = (int64_t) (p->commit_interval * 1000.0);
    d->interval_ms = d->interval_ms > 0 ? d->interval_ms : 1;
    d->commit_records = p->commit_records;
    d->retention = p->retention;
    d->log = p->log;
    refresh = p->retention.expire_ms / 4;
    d->refresh_ms = refresh <= 0 || refresh > REFRESH_MAX_MS
                    ? REFRESH_MAX_MS
                    : refresh < REFRESH_MIN_MS ? REFRESH_MIN_MS : refresh;
    return MV_OK;
}


/* The names from the crc32c of the log directory's real path. */
static int
set_names(mvw_drain_t *d, mv_err_t *err)
{
    char      *real;
    uint32_t   crc;

    if (mv_dir_make(d->dir, err) != MV_OK) {
        return MV_ERR;
    }
    real = realpath(d->dir, NULL);
    if (real == NULL) {
        return mv_err_set(err, "drain: %s: cannot resolve its path",
                          d->dir);
    }
    crc = mv_crc32c(0, real, strlen(real));
    snprintf(d->id, sizeof(d->id), "milvuso-drain-%08x", (unsigned) crc);
    snprintf(d->name, sizeof(d->name), "drain-%08x",
             (unsigned) crc);
    snprintf(d->note, sizeof(d->note), "milvuso-worker --worker-type drain "
             "into %.60s, transactional id %s", d->log_topic, d->id);
    free(real);
    return MV_OK;
}


mvw_drain_t *
mvw_drain_open(const mvw_drain_params_t *p, mv_err_t *err)
{
    mvw_drain_t  *d;

    d = calloc(1, sizeof(*d));
    if (d == NULL || (d->vec = malloc(MV_DIM_MAX * sizeof(float))) == NULL) {
        free(d);
        mv_err_set(err, "out of memory");
        return NULL;
    }
    if (set_params(d, p, err) != MV_OK || set_names(d, err) != MV_OK
        || (d->producer = new_handle(d, RD_KAFKA_PRODUCER, p->extra, err))
           == NULL
        || (d->consumer = new_handle(d, RD_KAFKA_CONSUMER, p->extra, err))
           == NULL)
    {
        mvw_drain_abandon(d);
        return NULL;
    }
    mvw_kafka_txn_init(&d->txn, d->producer, &drain_txn_texts,
                       &drain_txn_ops, d, d->log, &d->lim_txn, &d->lim_txn);
    return d;
}


const char *
mvw_drain_id(const mvw_drain_t *d)
{
    return d->id;
}


const char *
mvw_drain_consumer(const mvw_drain_t *d)
{
    return d->name;
}


void
mvw_drain_abandon(mvw_drain_t *d)
{
    if (d == NULL) {
        return;
    }
    mvw_source_free(d->source);
    if (d->consumer != NULL) {
        rd_kafka_destroy_flags(d->consumer,
                               RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    if (d->producer != NULL) {
        rd_kafka_destroy(d->producer);
    }
    free(d->vec);
    free(d);
}


int
mvw_drain_close(mvw_drain_t *d, mvw_drain_stats_t *last, mv_err_t *err)
{
    int  rc = MV_OK;

    if (d->producer != NULL) {
        rc = mvw_kafka_txn_settle(&d->txn, CLOSE_COMMIT_MS, err);
    }
    if (last != NULL) {
        mvw_drain_stats(d, last);
    }
    mvw_drain_abandon(d);
    return rc;
}


void
mvw_drain_stats(const mvw_drain_t *d, mvw_drain_stats_t *st)
{
    mvw_source_stats_t  ss;

    *st = d->st;
    st->phase = d->phase;
    st->pending = d->in_txn.records;
    st->errors = d->perrs.count + d->cerrs.count;
    st->skipped_bytes = d->gone.skipped_bytes;
    st->removed_segments = d->gone.removed_segments;
    st->removed_bytes = d->gone.removed_bytes;
    if (d->source != NULL) {
        mvw_source_stats(d->source, &ss);
        st->skipped_bytes += ss.skipped_bytes;
        st->removed_segments += ss.removed_segments;
        st->removed_bytes += ss.removed_bytes;
    }
}
