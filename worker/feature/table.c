/*
 * table.c -- a Kafka topic read as a table (see table.h).
 *
 * The first poll asks the metadata for the topic's partitions and assigns
 * them all at their beginning; from then on polls serve what the consumer
 * has fetched.  A partition end (enable.partition.eof) marks its partition
 * as read through once; "caught up" is every partition marked.  An empty
 * partition reports its end at once.  Errors come through the handle's
 * error callback (kafka_common.c: counted, logged rate-limited) or as
 * error messages (counted and logged here, also rate-limited).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "feature/table.h"
#include "sources/kafka_common.h"

#define METADATA_MS   1000
#define CLOSE_MS      3000
#define ERROR_LOG_MS  10000

struct mvw_table {
    mvw_kafka_errors_t   errs;            /* the handle's opaque */
    rd_kafka_t          *rk;
    char                 topic[256];
    char                 what[64];
    int32_t              n_parts;         /* 0: not assigned yet */
    unsigned char       *at_end;          /* per partition */
    int32_t              n_at_end;
    uint64_t             records;
    mvw_log_limit_t     *lim;             /* the caller's */
};


mvw_table_t *
mvw_table_open(const char *brokers, const char *topic, const char *group,
    const char *what, const mvw_log_t *log, mvw_log_limit_t *lim,
    const char *const *extra, mv_err_t *err)
{
    static const char *const  fixed[][2] = {
        { "client.id", "milvuso-feature-table" },
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "enable.partition.eof", "true" },
        { "isolation.level", "read_committed" },
    };
    mvw_table_t      *t;
    rd_kafka_conf_t  *conf;
    char              name[300], why[512];

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        mv_err_set(err, "out of memory");
        return NULL;
    }
    snprintf(t->topic, sizeof(t->topic), "%s", topic);
    snprintf(t->what, sizeof(t->what), "%s", what);
    t->errs.owner = t;
    t->errs.prefix = t->what;
    t->errs.log = log;
    t->errs.shared = lim;
    t->lim = lim;

    snprintf(name, sizeof(name), "%s.table", group);
    conf = mvw_kafka_conf(brokers, fixed, sizeof(fixed) / sizeof(fixed[0]),
                          extra, &t->errs, err);
    if (conf == NULL) {
        free(t);
        return NULL;
    }
    if (mvw_kafka_conf_set(conf, "group.id", name, err) != MV_OK) {
        rd_kafka_conf_destroy(conf);
        free(t);
        return NULL;
    }
    t->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (t->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        mv_err_set(err, "kafka: %s", why);
        free(t);
        return NULL;
    }
    rd_kafka_poll_set_consumer(t->rk);
    return t;
}


/* Gets the partitions and assigns them from their beginning. */
static void
assign_all(mvw_table_t *t)
{
    rd_kafka_topic_t                 *rkt;
    const rd_kafka_metadata_t        *md = NULL;
    rd_kafka_topic_partition_list_t  *parts;
    rd_kafka_resp_err_t               rc;
    int32_t                           n = 0;

    rkt = rd_kafka_topic_new(t->rk, t->topic, NULL);
    if (rkt == NULL) {
        return;
    }
    rc = rd_kafka_metadata(t->rk, 0, rkt, &md, METADATA_MS);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
        rc = md->topics[0].err;
        n = md->topics[0].partition_cnt;
    }
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR || n <= 0) {
        t->errs.count++;
        if (t->errs.log != NULL) {
            mvw_log_every(t->errs.log, t->lim, ERROR_LOG_MS, MVW_LOG_WARN,
                          "%s: topic %s: %s (milvuso-worker topics creates "
                          "it); retrying", t->what, t->topic,
                          rc != RD_KAFKA_RESP_ERR_NO_ERROR
                          ? rd_kafka_err2str(rc) : "no partitions");
        }
        return;
    }

    t->at_end = calloc((size_t) n, 1);
    parts = rd_kafka_topic_partition_list_new(n);
    if (t->at_end == NULL || parts == NULL) {
        free(t->at_end);
        t->at_end = NULL;
        if (parts != NULL) {
            rd_kafka_topic_partition_list_destroy(parts);
        }
        return;
    }
    for (int32_t p = 0; p < n; p++) {
        rd_kafka_topic_partition_list_add(parts, t->topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    rc = rd_kafka_assign(t->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        free(t->at_end);
        t->at_end = NULL;
        return;
    }
    t->n_parts = n;
}


int
mvw_table_poll(mvw_table_t *t, size_t max, mvw_table_fn fn, void *ctx,
    mv_err_t *err)
{
    rd_kafka_message_t  *m;
    size_t               n = 0;

    if (t->n_parts == 0) {
        assign_all(t);
    }
    while (n < max && (m = rd_kafka_consumer_poll(t->rk, 0)) != NULL) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < t->n_parts
                && !t->at_end[m->partition])
            {
                t->at_end[m->partition] = 1;
                t->n_at_end++;
            }
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            t->errs.count++;
            mvw_kafka_note_fatal(t->rk, m, &t->errs);
            if (t->errs.log != NULL) {
                mvw_log_every(t->errs.log, t->lim, ERROR_LOG_MS,
                              MVW_LOG_WARN, "%s: topic %s [%d]: %s",
                              t->what, t->topic, (int) m->partition,
                              rd_kafka_message_errstr(m));
            }
        } else {
            fn(ctx, (const char *) m->key, m->key_len,
               (const char *) m->payload, m->payload ? m->len : 0);
            t->records++;
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    if (t->errs.fatal[0] != '\0') {
        return mv_err_set(err, "%s: topic %s: fatal error: %s", t->what,
                          t->topic, t->errs.fatal);
    }
    return (int) n;
}


int
mvw_table_caught_up(const mvw_table_t *t)
{
    return t->n_parts > 0 && t->n_at_end == t->n_parts;
}


uint64_t
mvw_table_records(const mvw_table_t *t)
{
    return t->records;
}


uint64_t
mvw_table_errors(const mvw_table_t *t)
{
    return t->errs.count;
}


void
mvw_table_free(mvw_table_t *t)
{
    if (t == NULL) {
        return;
    }
    if (t->rk != NULL) {
        mvw_kafka_consumer_close(t->rk, CLOSE_MS);
    }
    free(t->at_end);
    free(t);
}
