/*
 * source_kafka.c -- Kafka as a worker source (see source.h): one
 * librdkafka high-level consumer in [kafka] group_id, subscribed to
 * log_topic (records are actions) -- or, when a feature worker runs, to
 * training_topic (records are training examples) -- and feature_topic
 * (records are items).
 *
 * Transactions.  The feature worker writes training examples in Kafka
 * transactions; the consumer reads with isolation.level read_committed,
 * so it never sees the examples of an aborted transaction (a feature
 * worker killed mid-transaction) and waits at an open one.  A position
 * after the last committed record may point at a transaction marker or
 * at aborted records: Kafka skips them when reading resumes there.
 *
 * Record contract (the nginx producer follows it): the value is exactly
 * the canonical JSON payload the action log carries (mv_action_encode,
 * mv_item_encode), the key is the user id (actions) or the item id
 * (items) and only spreads records over partitions, no headers; the
 * topic gives the record type.
 *
 * Positions.  The snapshot is the truth, not Kafka's committed offsets:
 * a table of (topic, partition) -> next offset to read is filled from the
 * snapshot's positions at open and moved past each record handed out
 * (tombstones and oversized records included: they are consumed too).
 * When the group assigns partitions (the rebalance callback), each one
 * starts at its table offset, or at its beginning when the table has
 * none: on a first start the model holds nothing, so everything the
 * topic retains is read.  A partition revoked from us keeps its entry,
 * so a snapshot never forgets a position it was given.  The table holds
 * MV_SNAPSHOT_MAX_POSITIONS entries, what a snapshot stores: an
 * assignment that does not fit is refused (nothing is consumed, next()
 * reports it) instead of publishing a snapshot that loses positions.
 *
 * Nothing is committed automatically (enable.auto.commit and
 * enable.auto.offset.store off); durable() commits a durable snapshot's
 * positions asynchronously, so that the group's lag shows in Kafka's
 * tools.
 *
 * Never blocking: next() polls with a zero timeout, which also serves the
 * callbacks (rebalance, errors, commit results) on the caller's thread
 * (the main queue is forwarded to the consumer's).  librdkafka connects
 * lazily and retries by itself: a broker that is down at open or later
 * only shows as counted errors (the error callback logs them through the
 * worker's logger, rate-limited); consumption resumes when it is back.
 * Partition ends are counted, not reported.  A fatal error (librdkafka
 * gives up on the handle: another member with our instance id, or a
 * commit fenced after a coordinator restart) makes every next() return
 * MV_ERR saying so, and stats() report it: the daemon then opens a new
 * source at positions() (the records applied) and frees this one.
 *
 * Group membership is static when the caller gives an instance id (the
 * daemon derives one from the host and the snapshot directory, the unit
 * that its lock makes single): a worker restarted after kill -9 is the
 * same member and gets its partitions back at once, where a dynamic one
 * would wait for the dead member's session to time out (45 s by default)
 * before any partition is assigned.  The price: a worker stopped for good
 * keeps its partitions for that long (a hot standby waits).
 *
 * Closing leaves the group within CLOSE_MS (an asynchronous close whose
 * queue is served here); past it, with the group coordinator out of
 * reach, the handle is destroyed without waiting further.  The source
 * owns one librdkafka handle and the held message (the payload of the
 * last record handed out, valid until the next call).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "actlog.h"            /* MV_RECORD_ACTION, _ITEM, _EXAMPLE */
#include "sources/kafka_common.h"
#include "sources/source.h"

#define N_TOPICS         2
#define POLL_BATCH       1024      /* messages looked at per next() call */
#define CLOSE_MS         3000
#define ERROR_LOG_MS     10000

typedef struct {
    uint8_t   topic;               /* index into k->topics */
    int32_t   partition;
    int64_t   next;                /* next offset to read; -1: none yet */
} kafka_slot_t;

typedef struct {
    mvw_source_t         base;     /* first: the public part */
    rd_kafka_t          *rk;
    rd_kafka_message_t  *held;     /* the record handed out last */

    char                 topics[N_TOPICS][MV_SNAPSHOT_STREAM_MAX + 1];
    uint16_t             types[N_TOPICS];
    unsigned             n_topics;

    kafka_slot_t         slots[MV_SNAPSHOT_MAX_POSITIONS];
    unsigned             n_slots;
    int                  refused;  /* an assignment did not fit */

    mvw_kafka_errors_t   errs;     /* the handle's opaque; errs.owner = k */
    const mvw_log_t     *log;
    mvw_log_limit_t      lim_commit;

    uint64_t             records;
    uint64_t             skipped;
    uint64_t             eofs;
} kafka_source_t;


/* ---- names -------------------------------------------------------------- */

int
mvw_kafka_topic_check(const char *topic, mv_err_t *err)
{
    size_t  len = strlen(topic);

    if (len == 0) {
        return mv_err_set(err, "must not be empty");
    }
    if (len > MV_SNAPSHOT_STREAM_MAX) {
        return mv_err_set(err, "must be at most %d bytes (a snapshot stores "
                          "the position of each topic by name), not %zu",
                          MV_SNAPSHOT_STREAM_MAX, len);
    }
    if (strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0) {
        return mv_err_set(err, "must not be \".\" or \"..\"");
    }
    for (size_t i = 0; i < len; i++) {
        char  c = topic[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
        {
            return mv_err_set(err, "must be a Kafka topic name: letters, "
                              "digits, '.', '_' and '-'");
        }
    }
    return MV_OK;
}


/* 1 if s[0 .. len) is a port number 1..65535. */
static int
is_port(const char *s, size_t len)
{
    unsigned long  port = 0;

    if (len == 0 || len > 5) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        port = port * 10 + (unsigned long) (s[i] - '0');
    }
    return s[0] != '0' && port <= 65535;
}


/* 1 if s[0 .. len) is host:port (host a name, IPv4 or [IPv6]). */
static int
is_broker(const char *s, size_t len)
{
    const char  *colon;
    size_t       hlen;

    if (len > 0 && s[0] == '[') {
        colon = memchr(s, ']', len);
        if (colon == NULL || colon == s + 1 || colon + 1 >= s + len
            || colon[1] != ':')
        {
            return 0;
        }
        for (const char *p = s + 1; p < colon; p++) {
            if (strchr("0123456789abcdefABCDEF:.", *p) == NULL) {
                return 0;
            }
        }
        return is_port(colon + 2, (size_t) (s + len - colon - 2));
    }

    colon = NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ':') {
            if (colon != NULL) {
                return 0;
            }
            colon = s + i;
        }
    }
    if (colon == NULL) {
        return 0;
    }
    hlen = (size_t) (colon - s);
    if (hlen == 0 || s[0] == '-' || s[0] == '.') {
        return 0;
    }
    for (size_t i = 0; i < hlen; i++) {
        char  c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '-'))
        {
            return 0;
        }
    }
    return is_port(colon + 1, len - hlen - 1);
}


int
mvw_kafka_brokers_check(const char *brokers, mv_err_t *err)
{
    const char  *p = brokers, *end;
    size_t       len;

    if (*brokers == '\0') {
        return mv_err_set(err, "must not be empty");
    }
    for (;;) {
        end = strchr(p, ',');
        len = end ? (size_t) (end - p) : strlen(p);
        if (!is_broker(p, len)) {
            return mv_err_set(err, "\"%.*s\" is not host:port (a name, an "
                              "IPv4 address or an [IPv6] one, and a port "
                              "from 1 to 65535); the list is "
                              "host:port[,host:port...]",
                              (int) (len > 100 ? 100 : len), p);
        }
        if (end == NULL) {
            return MV_OK;
        }
        p = end + 1;
    }
}


/* ---- positions ---------------------------------------------------------- */

static int
topic_index(const kafka_source_t *k, const char *topic)
{
    for (unsigned i = 0; i < k->n_topics; i++) {
        if (strcmp(k->topics[i], topic) == 0) {
            return (int) i;
        }
    }
    return -1;
}


/* The slot of (topic, partition), added when absent; NULL when full. */
static kafka_slot_t *
slot_of(kafka_source_t *k, int topic, int32_t partition)
{
    kafka_slot_t  *sl;

    for (unsigned i = 0; i < k->n_slots; i++) {
        sl = &k->slots[i];
        if (sl->topic == topic && sl->partition == partition) {
            return sl;
        }
    }
    if (k->n_slots == MV_SNAPSHOT_MAX_POSITIONS) {
        return NULL;
    }
    sl = &k->slots[k->n_slots++];
    sl->topic = (uint8_t) topic;
    sl->partition = partition;
    sl->next = -1;
    return sl;
}


static size_t
kafka_positions(const mvw_source_t *s, mv_stream_pos_t *out, size_t cap)
{
    const kafka_source_t  *k = (const kafka_source_t *) s;
    const kafka_slot_t    *sl;
    size_t                 n = 0;

    for (unsigned i = 0; i < k->n_slots && n < cap; i++) {
        sl = &k->slots[i];
        if (sl->next < 0) {
            continue;
        }
        memset(&out[n], 0, sizeof(out[n]));
        memcpy(out[n].stream, k->topics[sl->topic],
               strlen(k->topics[sl->topic]) + 1);
        out[n].partition = (uint32_t) sl->partition;
        out[n].offset = (uint64_t) sl->next;
        n++;
    }
    return n;
}


/* ---- callbacks (served by rd_kafka_consumer_poll on our thread) --------- */

static void
kafka_assign(kafka_source_t *k, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_t  *tp;
    kafka_slot_t                *sl;
    int                          t;

    k->refused = 0;
    for (int i = 0; i < parts->cnt; i++) {
        tp = &parts->elems[i];
        t = topic_index(k, tp->topic);
        sl = t < 0 ? NULL : slot_of(k, t, tp->partition);
        if (sl == NULL) {
            k->refused = 1;
            break;
        }
        tp->offset = sl->next >= 0 ? sl->next : RD_KAFKA_OFFSET_BEGINNING;
    }

    if (k->refused) {
        rd_kafka_assign(k->rk, NULL);
        if (k->log != NULL) {
            mvw_log(k->log, MVW_LOG_ERROR, "kafka: %d partitions assigned, "
                    "more than the %d positions a snapshot holds: consuming "
                    "nothing", parts->cnt, MV_SNAPSHOT_MAX_POSITIONS);
        }
        return;
    }
    rd_kafka_assign(k->rk, parts);
    if (k->log != NULL) {
        mvw_log(k->log, MVW_LOG_INFO, "kafka: %d partition(s) assigned",
                parts->cnt);
    }
}


static void
kafka_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_source_t  *k = ((mvw_kafka_errors_t *) opaque)->owner;

    (void) rk;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        kafka_assign(k, parts);
        return;
    }
    /* revoked (or an error): stop fetching; the slots stay */
    rd_kafka_assign(k->rk, NULL);
    k->refused = 0;
}


static void
kafka_committed(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    kafka_source_t  *k = ((mvw_kafka_errors_t *) opaque)->owner;

    (void) rk;
    (void) offsets;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR
        && err != RD_KAFKA_RESP_ERR__NO_OFFSET && k->log != NULL)
    {
        mvw_log_every(k->log, &k->lim_commit, ERROR_LOG_MS, MVW_LOG_WARN,
                      "kafka: committing the published positions failed: "
                      "%s (only Kafka's lag view is behind)",
                      rd_kafka_err2str(err));
    }
}


/* ---- the source --------------------------------------------------------- */

static int
kafka_next(mvw_source_t *s, mvw_record_t *rec, mv_err_t *err)
{
    kafka_source_t      *k = (kafka_source_t *) s;
    rd_kafka_message_t  *m;
    kafka_slot_t        *sl;
    int                  t;

    if (k->held != NULL) {
        rd_kafka_message_destroy(k->held);
        k->held = NULL;
    }

    for (unsigned i = 0; i < POLL_BATCH; i++) {
        m = rd_kafka_consumer_poll(k->rk, 0);
        if (m == NULL) {
            break;
        }

        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            k->eofs++;
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            k->errs.count++;
            mvw_kafka_note_fatal(k->rk, m, &k->errs);
            mv_err_set(err, "kafka %s [%d]: %s",
                       m->rkt ? rd_kafka_topic_name(m->rkt) : "-",
                       (int) m->partition, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            return MV_ERR;
        }

        t = topic_index(k, rd_kafka_topic_name(m->rkt));
        sl = t < 0 ? NULL : slot_of(k, t, m->partition);
        if (sl == NULL) {
            /* not one of ours, or no room: assignment refused it */
            rd_kafka_message_destroy(m);
            continue;
        }
        sl->next = m->offset + 1;

        if (m->payload == NULL || m->len > MVW_SOURCE_RECORD_MAX) {
            k->skipped++;
            rd_kafka_message_destroy(m);
            continue;
        }

        k->held = m;
        k->records++;
        rec->type = k->types[t];
        rec->payload = m->payload;
        rec->len = m->len;
        return 1;
    }

    if (k->errs.fatal[0] != '\0') {
        mv_err_set(err, "kafka: fatal error, nothing more is consumed "
                   "on this handle: %s", k->errs.fatal);
        return MV_ERR;
    }
    if (k->refused) {
        mv_err_set(err, "kafka: more partitions assigned than the %d "
                   "positions a snapshot holds; consuming nothing",
                   MV_SNAPSHOT_MAX_POSITIONS);
        return MV_ERR;
    }
    return 0;
}


static void
kafka_stats(const mvw_source_t *s, mvw_source_stats_t *st)
{
    const kafka_source_t  *k = (const kafka_source_t *) s;

    memset(st, 0, sizeof(*st));
    st->records = k->records;
    st->skipped_records = k->skipped;
    st->errors = k->errs.count;
    st->eofs = k->eofs;
    st->fatal = k->errs.fatal[0] != '\0';
}


static void
kafka_durable(mvw_source_t *s, const mv_stream_pos_t *positions, size_t n)
{
    kafka_source_t                   *k = (kafka_source_t *) s;
    rd_kafka_topic_partition_list_t  *list;
    rd_kafka_topic_partition_t       *tp;
    rd_kafka_resp_err_t               rc;

    list = rd_kafka_topic_partition_list_new((int) n);
    for (size_t i = 0; i < n; i++) {
        if (topic_index(k, positions[i].stream) < 0) {
            continue;
        }
        tp = rd_kafka_topic_partition_list_add(
                 list, positions[i].stream, (int32_t) positions[i].partition);
        tp->offset = (int64_t) positions[i].offset;
    }
    if (list->cnt > 0) {
        rc = rd_kafka_commit(k->rk, list, 1);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kafka_committed(k->rk, rc, list, &k->errs);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}


static void
kafka_free(mvw_source_t *s)
{
    kafka_source_t  *k = (kafka_source_t *) s;

    if (k->held != NULL) {
        rd_kafka_message_destroy(k->held);
    }
    if (k->rk != NULL) {
        mvw_kafka_consumer_close(k->rk, CLOSE_MS);
    }
    free(k);
}


/*
 * Records not consumed yet over the current assignment: the high watermark
 * librdkafka cached from its last fetch response (rd_kafka_get_watermark_
 * offsets: no broker query) minus the position (rd_kafka_position: local;
 * before the first fetch, the offset the assignment starts at, from our
 * slot, or the cached low watermark when it starts at the beginning).
 * Unknown (-1) when anything is not known yet or nothing is assigned.
 */
static void
kafka_backlog(const mvw_source_t *s, int64_t *records, int64_t *bytes)
{
    const kafka_source_t             *k = (const kafka_source_t *) s;
    rd_kafka_topic_partition_list_t  *parts = NULL;
    rd_kafka_topic_partition_t       *tp;
    const kafka_slot_t               *sl;
    int64_t                           lo, hi, pos, sum = 0;
    int                               t, known;

    *records = -1;
    *bytes = -1;
    if (rd_kafka_assignment(k->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    known = parts->cnt > 0
            && rd_kafka_position(k->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR;

    for (int i = 0; known && i < parts->cnt; i++) {
        tp = &parts->elems[i];
        if (rd_kafka_get_watermark_offsets(k->rk, tp->topic, tp->partition,
                                           &lo, &hi)
            != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
        {
            known = 0;
            break;
        }
        pos = tp->offset;
        if (pos < 0) {
            t = topic_index(k, tp->topic);
            sl = NULL;
            for (unsigned j = 0; t >= 0 && j < k->n_slots; j++) {
                if (k->slots[j].topic == t
                    && k->slots[j].partition == tp->partition)
                {
                    sl = &k->slots[j];
                }
            }
            pos = sl != NULL && sl->next >= 0 ? sl->next : lo;
        }
        if (pos < 0) {
            known = 0;
            break;
        }
        sum += hi > pos ? hi - pos : 0;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    if (known) {
        *records = sum;
    }
}


static const mvw_source_ops_t  kafka_ops = {
    "kafka", kafka_next, kafka_positions, kafka_stats, kafka_free,
    kafka_durable, kafka_backlog
};


static rd_kafka_conf_t *
make_conf(kafka_source_t *k, const mvw_kafka_params_t *p, mv_err_t *err)
{
    static const char *const  fixed[][2] = {
        { "client.id", "milvuso-worker" },
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "auto.offset.reset", "earliest" },
        { "enable.partition.eof", "true" },
        { "isolation.level", "read_committed" },
    };
    rd_kafka_conf_t  *conf;

    k->errs.owner = k;
    k->errs.prefix = "kafka";
    k->errs.log = p->log;
    conf = mvw_kafka_conf(p->brokers, fixed, sizeof(fixed) / sizeof(fixed[0]),
                          p->extra, &k->errs, err);
    if (conf == NULL) {
        return NULL;
    }
    if (mvw_kafka_conf_set(conf, "group.id", p->group_id, err) != MV_OK
        || (p->instance_id != NULL && p->instance_id[0] != '\0'
            && mvw_kafka_conf_set(conf, "group.instance.id", p->instance_id,
                                  err) != MV_OK))
    {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, kafka_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, kafka_committed);
    return conf;
}


/* Copies and checks the topics of p into k. */
static int
set_topics(kafka_source_t *k, const mvw_kafka_params_t *p, mv_err_t *err)
{
    const char  *names[N_TOPICS] = { p->log_topic, p->feature_topic };
    const char  *keys[N_TOPICS] = {
        p->examples ? "training_topic" : "log_topic", "feature_topic"
    };
    uint16_t     types[N_TOPICS] = {
        p->examples ? MV_RECORD_EXAMPLE : MV_RECORD_ACTION, MV_RECORD_ITEM
    };
    mv_err_t     why;

    for (unsigned i = 0; i < N_TOPICS; i++) {
        if (i > 0 && (names[i] == NULL || names[i][0] == '\0')) {
            continue;
        }
        if (names[i] == NULL
            || mvw_kafka_topic_check(names[i], &why) != MV_OK)
        {
            return mv_err_set(err, "kafka %s \"%.60s\": %s", keys[i],
                              names[i] ? names[i] : "", names[i] ? why.msg
                              : "must not be empty");
        }
        if (topic_index(k, names[i]) >= 0) {
            return mv_err_set(err, "kafka: %s and feature_topic are "
                              "both \"%s\"; the topic says the record "
                              "type, so they must differ", keys[0],
                              names[i]);
        }
        memcpy(k->topics[k->n_topics], names[i], strlen(names[i]) + 1);
        k->types[k->n_topics++] = types[i];
    }
    return MV_OK;
}


mvw_source_t *
mvw_source_kafka_open(const mvw_kafka_params_t *p,
    const mv_stream_pos_t *positions, size_t n, mv_err_t *err)
{
    kafka_source_t                   *k;
    rd_kafka_conf_t                  *conf;
    rd_kafka_topic_partition_list_t  *subs;
    rd_kafka_resp_err_t               rc;
    kafka_slot_t                     *sl;
    char                              why[512];
    int                               t;

    if (p->brokers == NULL || p->group_id == NULL || p->group_id[0] == '\0'
        || mvw_kafka_brokers_check(p->brokers, err) != MV_OK)
    {
        if (p->brokers != NULL && p->brokers[0] != '\0') {
            return NULL;
        }
        mv_err_set(err, "kafka: brokers and group_id must not be empty");
        return NULL;
    }

    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        mv_err_set(err, "out of memory");
        return NULL;
    }
    k->base.ops = &kafka_ops;
    k->log = p->log;
    if (set_topics(k, p, err) != MV_OK) {
        free(k);
        return NULL;
    }

    for (size_t i = 0; i < n; i++) {
        t = topic_index(k, positions[i].stream);
        if (t < 0) {
            continue;                           /* another stream's */
        }
        if (positions[i].offset > (uint64_t) INT64_MAX
            || positions[i].partition > (uint32_t) INT32_MAX)
        {
            mv_err_set(err, "stored kafka position %s [%u] @ %llu is out "
                       "of range", positions[i].stream,
                       positions[i].partition,
                       (unsigned long long) positions[i].offset);
            free(k);
            return NULL;
        }
        sl = slot_of(k, t, (int32_t) positions[i].partition);
        if (sl == NULL) {
            mv_err_set(err, "more than %d stored kafka positions",
                       MV_SNAPSHOT_MAX_POSITIONS);
            free(k);
            return NULL;
        }
        sl->next = (int64_t) positions[i].offset;
    }

    conf = make_conf(k, p, err);
    if (conf == NULL) {
        free(k);
        return NULL;
    }
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (k->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        mv_err_set(err, "kafka: %s", why);
        free(k);
        return NULL;
    }
    rd_kafka_poll_set_consumer(k->rk);

    subs = rd_kafka_topic_partition_list_new((int) k->n_topics);
    for (unsigned i = 0; i < k->n_topics; i++) {
        rd_kafka_topic_partition_list_add(subs, k->topics[i],
                                          RD_KAFKA_PARTITION_UA);
    }
    rc = rd_kafka_subscribe(k->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        mv_err_set(err, "kafka: subscribe: %s", rd_kafka_err2str(rc));
        kafka_free(&k->base);
        return NULL;
    }
    return &k->base;
}
