/*
 * cmd_topics.c -- `milvuso-worker topics`: creates the Kafka topics of
 * the configuration (log_topic, feature_topic, training_topic) with
 * [kafka] partitions and replication, and the feature worker's
 * [feature] popularity_topic (compacted, one partition: its item counts),
 * through librdkafka's admin API, so that scripts need no JVM tool for it.
 *
 *   milvuso-worker topics [--config FILE] [--timeout SECONDS]
 *
 * Idempotent: a topic that already exists with the configured partition
 * count is fine ("exists"); one with another partition count is reported
 * and fails the command (Kafka cannot shrink a topic, and growing it
 * moves keys to other partitions: an operator decides).  The broker must
 * answer within the timeout; [kafka] enabled need not be true (topics are
 * created before anything uses them).
 *
 * Output: one line per topic on stdout ("created user_actions (4
 * partitions, replication 1)", "exists user_actions (4 partitions)"),
 * problems on stderr.  Exit 0 when every topic is there as configured, 1
 * otherwise, 2 for a bad command line.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "worker.h"

#define N_TOPICS  4

typedef struct topics_opts {
    const char  *config;
    uint32_t     timeout_s;
} topics_opts_t;


void
mvw_cmd_topics_usage(FILE *out)
{
    fprintf(out,
        "usage: milvuso-worker topics [--config FILE] [--timeout SECONDS]\n"
        "\n"
        "Creates the Kafka topics [kafka] log_topic, feature_topic and\n"
        "training_topic at [kafka] brokers with [kafka] partitions and\n"
        "replication, and [feature] popularity_topic (compacted, one\n"
        "partition).  A topic that exists with those partitions is fine;\n"
        "one with another partition count is reported (exit 1).\n"
        "\n"
        "options:\n"
        "  --config FILE      TOML configuration (MILVUSO_* variables\n"
        "                     override it); default: the defaults\n"
        "  --timeout SECONDS  how long the brokers may take (default 30)\n"
        "  -h, --help         this text\n");
}


static int
parse_opts(int argc, char **argv, topics_opts_t *o)
{
    enum { O_CONFIG = 256, O_TIMEOUT };
    static const struct option  longopts[] = {
        { "config",  required_argument, NULL, O_CONFIG },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "help",    no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int  c;

    memset(o, 0, sizeof(*o));
    o->timeout_s = 30;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            mvw_cmd_topics_usage(stdout);
            return 1;
        case O_CONFIG:
            o->config = optarg;
            break;
        case O_TIMEOUT:
            if (mvw_parse_u32(optarg, 1, 3600, &o->timeout_s) != 0) {
                return mvw_usage_error("topics", mvw_cmd_topics_usage,
                                       "--timeout must be 1..3600 seconds, "
                                       "not '%s'", optarg);
            }
            break;
        default:
            return mvw_usage_error("topics", mvw_cmd_topics_usage,
                                   "bad option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return mvw_usage_error("topics", mvw_cmd_topics_usage,
                               "unexpected argument '%s'", argv[optind]);
    }
    return 0;
}


/* librdkafka's own log lines: the result says what matters. */
static void
quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void) rk;
    (void) level;
    (void) fac;
    (void) buf;
}


/* An admin client (a producer handle that produces nothing). */
static rd_kafka_t *
admin_new(const mvw_config_t *c)
{
    rd_kafka_conf_t  *conf = rd_kafka_conf_new();
    rd_kafka_t       *rk;
    char              why[512];

    if (rd_kafka_conf_set(conf, "bootstrap.servers", c->kafka.brokers, why,
                          sizeof(why)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "client.id", "milvuso-worker-topics", why,
                             sizeof(why)) != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "milvuso-worker topics: %s\n", why);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (rk == NULL) {
        fprintf(stderr, "milvuso-worker topics: %s\n", why);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}


/* The partition count of topic at the brokers, or -1 (with a message). */
static int
partitions_of(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    rd_kafka_topic_t           *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t  *md = NULL;
    rd_kafka_resp_err_t         rc;
    int                         n = -1;

    if (rkt == NULL) {
        return -1;
    }
    rc = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1
        && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        n = md->topics[0].partition_cnt;
    } else {
        fprintf(stderr, "milvuso-worker topics: metadata of %s: %s\n", topic,
                rd_kafka_err2str(rc != RD_KAFKA_RESP_ERR_NO_ERROR
                                 ? rc : md->topics[0].err));
    }
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}


/* A topic to create: its name, partitions, and whether it is compacted. */
typedef struct {
    const char  *name;
    uint32_t     partitions;
    int          compact;
} topic_t;


/* Checks one topic's creation result; 0 when it is there as wanted. */
static int
report(rd_kafka_t *rk, const topic_t *t, const mvw_config_t *c,
    const rd_kafka_topic_result_t *tr, int timeout_ms)
{
    const char           *name = rd_kafka_topic_result_name(tr);
    rd_kafka_resp_err_t   rc = rd_kafka_topic_result_error(tr);
    int                   have;

    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
        printf("created %s (%u partitions, replication %u%s)\n", name,
               t->partitions, c->kafka.replication,
               t->compact ? ", compacted" : "");
        return 0;
    }
    if (rc != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        fprintf(stderr, "milvuso-worker topics: cannot create %s: %s\n",
                name, rd_kafka_topic_result_error_string(tr)
                      ? rd_kafka_topic_result_error_string(tr)
                      : rd_kafka_err2str(rc));
        return -1;
    }
    have = partitions_of(rk, name, timeout_ms);
    if (have < 0) {
        return -1;
    }
    if ((uint32_t) have != t->partitions) {
        fprintf(stderr, "milvuso-worker topics: %s exists with %d "
                "partitions, but %s (not changed: Kafka cannot shrink a "
                "topic, and growing it moves keys to other partitions)\n",
                name, have, t->compact ? "the feature worker's counts want "
                "1" : "[kafka] partitions says another number");
        return -1;
    }
    printf("exists %s (%d partitions)\n", name, have);
    return 0;
}


/* The topics of c: [kafka]'s three, then the feature worker's counts. */
static size_t
topics_of(const mvw_config_t *c, topic_t *out)
{
    const topic_t  all[N_TOPICS] = {
        { c->kafka.log_topic, c->kafka.partitions, 0 },
        { c->kafka.feature_topic, c->kafka.partitions, 0 },
        { c->kafka.training_topic, c->kafka.partitions, 0 },
        { c->feature.popularity_topic, 1, 1 },
    };
    size_t         n = 0;

    for (size_t i = 0; i < N_TOPICS; i++) {
        int  dup = 0;

        for (size_t j = 0; j < n; j++) {
            dup |= strcmp(all[i].name, out[j].name) == 0;
        }
        if (!dup) {
            out[n++] = all[i];
        }
    }
    return n;
}


/* Creates the topics and reports; returns an exit code. */
static int
create_topics(const mvw_config_t *c, int timeout_ms)
{
    topic_t                       topics[N_TOPICS];
    rd_kafka_NewTopic_t          *nt[N_TOPICS];
    const rd_kafka_topic_result_t  **res;
    const rd_kafka_CreateTopics_result_t  *cr;
    rd_kafka_AdminOptions_t      *ao;
    rd_kafka_queue_t             *q;
    rd_kafka_event_t             *ev;
    rd_kafka_t                   *rk;
    char                          why[512];
    size_t                        n, made = 0, cnt;
    int                           rc = MVW_EXIT_OK;

    rk = admin_new(c);
    if (rk == NULL) {
        return MVW_EXIT_FAIL;
    }
    n = topics_of(c, topics);
    for (size_t i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(topics[i].name,
                                      (int) topics[i].partitions,
                                      (int) c->kafka.replication, why,
                                      sizeof(why));
        if (nt[i] == NULL
            || (topics[i].compact
                && rd_kafka_NewTopic_set_config(nt[i], "cleanup.policy",
                                                "compact")
                   != RD_KAFKA_RESP_ERR_NO_ERROR))
        {
            fprintf(stderr, "milvuso-worker topics: %s: %s\n",
                    topics[i].name, nt[i] ? "cleanup.policy" : why);
            if (nt[i] != NULL) {
                made++;
            }
            rc = MVW_EXIT_FAIL;
            goto done;
        }
        made++;
    }

    ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, why,
                                              sizeof(why));
    rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, why,
                                                sizeof(why));
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, n, ao, q);
    rd_kafka_AdminOptions_destroy(ao);

    /* the request times out by itself; the margin covers the rest */
    ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (ev == NULL || rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "milvuso-worker topics: brokers %s: %s\n",
                c->kafka.brokers, ev ? rd_kafka_event_error_string(ev)
                                     : "no answer");
        rc = MVW_EXIT_FAIL;
    } else {
        cr = rd_kafka_event_CreateTopics_result(ev);
        res = rd_kafka_CreateTopics_result_topics(cr, &cnt);
        for (size_t i = 0; i < cnt; i++) {
            const topic_t  *t = &topics[0];

            for (size_t k = 0; k < n; k++) {
                if (strcmp(topics[k].name,
                           rd_kafka_topic_result_name(res[i])) == 0)
                {
                    t = &topics[k];
                }
            }
            if (report(rk, t, c, res[i], timeout_ms) != 0) {
                rc = MVW_EXIT_FAIL;
            }
        }
    }
    if (ev != NULL) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);

done:
    for (size_t i = 0; i < made; i++) {
        rd_kafka_NewTopic_destroy(nt[i]);
    }
    rd_kafka_destroy(rk);
    return rc;
}


int
mvw_cmd_topics(int argc, char **argv)
{
    extern char   **environ;
    topics_opts_t   o;
    mvw_config_t   *c;
    mv_err_t        err;
    int             rc;

    rc = parse_opts(argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? MVW_EXIT_OK : rc;
    }
    c = malloc(sizeof(*c));
    if (c == NULL) {
        fprintf(stderr, "milvuso-worker topics: out of memory\n");
        return MVW_EXIT_FAIL;
    }
    if (mvw_config_load(c, o.config, environ, &err) != MV_OK) {
        fprintf(stderr, "milvuso-worker topics: %s\n", err.msg);
        free(c);
        return MVW_EXIT_FAIL;
    }
    fflush(stdout);
    rc = create_topics(c, (int) o.timeout_s * 1000);
    free(c);
    return rc;
}
