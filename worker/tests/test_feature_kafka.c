/*
 * test_feature_kafka.c -- unit tests of the feature worker's pipeline
 * (feature/pipeline.h) against librdkafka's mock cluster:
 *
 *   - actions and features in, one example per valid action out, keyed by
 *     its user, with its item's features (null for an item never
 *     described) and the item's count; malformed actions, a tombstone and
 *     a features record of another dimension counted, not emitted;
 *   - a restart (close, new pipeline, more actions) reads the counts back:
 *     each item's examples carry 1 .. n once each over both runs;
 *   - a transaction Kafka refuses (AddOffsetsToTxn failing with an
 *     abortable error, or a produce request failing) is aborted, its
 *     counts rolled back and its actions joined again: the examples that
 *     end up committed carry 1 .. n per item and every action once.
 *
 * The mock cluster keeps the records of aborted transactions visible to
 * every reader (it filters nothing for read_committed), so the checks read
 * the last example of each action, the one of the committed transaction
 * (the examples topic has one partition here, so the log is in production
 * order); what a real read_committed reader sees is checked by
 * check-feature.sh on a real broker.  A mock group's first join waits
 * about 3 s, so each pipeline start costs that.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "events.h"
#include "feature/pipeline.h"
#include "tests/kafka_mock.h"

#define ACTIONS      "f_actions"           /* 2 partitions */
#define ACTIONS2     "f_actions2"          /* 2, for a second run */
#define ITEMS        "f_items"             /* 1 */
#define EXAMPLES     "f_examples"          /* 1: production order */
#define COUNTS       "f_counts"            /* 1 */
#define GROUP        "f-feature"
#define N_ITEMS      4                     /* item-3 is never described */
#define MAX_EVENTS   256
#define WAIT_MS      40000
#define API_PRODUCE           0
#define API_ADD_OFFSETS_TXN   25

typedef mvt_kafka_mock_t fixture_t;

/* The last example of each action, by event number, as read back. */
typedef struct {
    int           seen[MAX_EVENTS];        /* examples of event k */
    mv_example_t  last[MAX_EVENTS];
    char          key[MAX_EVENTS][72];
    unsigned      records;
} examples_t;


/* ---- helpers ------------------------------------------------------------ */

static void
produce(fixture_t *f, const char *topic, int32_t partition, const char *key,
    const char *value)
{
    mvt_kafka_produce(f, topic, partition, key, value,
                      value ? strlen(value) : 0);
}


/* Items 0 .. N_ITEMS - 2 (dim 4, category cat-k); N_ITEMS - 1 never. */
static void
produce_items(fixture_t *f)
{
    char  buf[256], key[16];

    for (int k = 0; k < N_ITEMS - 1; k++) {
        snprintf(key, sizeof(key), "item-%d", k);
        snprintf(buf, sizeof(buf), "{\"item_id\":\"item-%d\",\"embedding\":"
                 "[1,2,3,4],\"category\":\"cat-%d\",\"tags\":[\"t%d\"]}", k, k,
                 k);
        produce(f, ITEMS, 0, key, buf);
    }
    mvt_kafka_flush(f);
}


/* Actions first .. first + n - 1: event ek, user-(k % 5), item-(k % 4). */
static void
produce_actions(fixture_t *f, const char *topic, unsigned first, unsigned n)
{
    char  buf[256], key[16];

    for (unsigned k = first; k < first + n; k++) {
        snprintf(key, sizeof(key), "user-%u", k % 5);
        snprintf(buf, sizeof(buf), "{\"event_id\":\"e%u\",\"user_id\":"
                 "\"user-%u\",\"item_id\":\"item-%u\",\"action_type\":"
                 "\"Click\",\"timestamp\":\"2024-01-01T00:00:00Z\"}", k,
                 k % 5, k % N_ITEMS);
        produce(f, topic, (int32_t) (k % 2), key, buf);
    }
    mvt_kafka_flush(f);
}


static mvw_log_t  test_log = { NULL, MVW_LOG_DEBUG };

static mvw_feature_t *
open_pipeline(fixture_t *f, const char *actions, uint32_t commit_records)
{
    static const char *const  extra[] = {
        "session.timeout.ms=6000", "heartbeat.interval.ms=500",
        "topic.metadata.refresh.interval.ms=1000", NULL
    };
    mvw_feature_params_t  p;
    mvw_feature_t        *pl;
    mv_err_t              err;

    test_log.out = stderr;
    memset(&p, 0, sizeof(p));
    p.brokers = f->brokers;
    p.group_id = GROUP;
    p.log_topic = actions;
    p.feature_topic = ITEMS;
    p.training_topic = EXAMPLES;
    p.popularity_topic = COUNTS;
    p.dim = 4;
    p.commit_interval = 0.1;
    p.commit_records = commit_records;
    p.extra = extra;
    p.log = getenv("TEST_FEATURE_LOG") ? &test_log : NULL;
    pl = mvw_feature_open(&p, &err);
    if (pl == NULL) {
        fail_msg("mvw_feature_open: %s", err.msg);
    }
    return pl;
}


/* Steps until the committed action count is `actions`, nothing pending. */
static void
drive(mvw_feature_t *pl, uint64_t actions, mvw_feature_stats_t *st)
{
    int64_t   deadline = mvt_now_ms() + WAIT_MS;
    mv_err_t  err;
    int       n;

    for (;;) {
        n = mvw_feature_step(pl, &err);
        if (n < 0) {
            fail_msg("mvw_feature_step: %s", err.msg);
        }
        mvw_feature_stats(pl, st);
        if (st->actions == actions && st->pending == 0) {
            return;
        }
        if (st->actions > actions || mvt_now_ms() > deadline) {
            fail_msg("%llu actions committed, %llu pending; want %llu",
                     (unsigned long long) st->actions,
                     (unsigned long long) st->pending,
                     (unsigned long long) actions);
        }
        if (n == 0) {
            mvt_nap_ms(5);
        }
    }
}


/* A consumer of topic's partitions from their beginning (no group). */
static rd_kafka_t *
reader(fixture_t *f, const char *topic, int parts)
{
    rd_kafka_topic_partition_list_t  *l;
    rd_kafka_conf_t                  *conf = rd_kafka_conf_new();
    rd_kafka_t                       *c;
    char                              why[256];

    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", f->brokers,
                                       why, sizeof(why)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "t-reader", why,
                                       sizeof(why)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.partition.eof", "true",
                                       why, sizeof(why)), RD_KAFKA_CONF_OK);
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    assert_non_null(c);
    rd_kafka_poll_set_consumer(c);
    l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) {
        rd_kafka_topic_partition_list_add(l, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    assert_int_equal(rd_kafka_assign(c, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    return c;
}


/* Reads the examples topic to its end into *ex. */
static void
read_examples(fixture_t *f, examples_t *ex)
{
    rd_kafka_t          *c = reader(f, EXAMPLES, 1);
    rd_kafka_message_t  *m;
    mv_example_t         x;
    unsigned             k;
    int64_t              deadline = mvt_now_ms() + WAIT_MS;

    memset(ex, 0, sizeof(*ex));
    for (;;) {
        m = rd_kafka_consumer_poll(c, 100);
        assert_true(mvt_now_ms() < deadline);
        if (m == NULL) {
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            break;
        }
        assert_int_equal(m->err, RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(mv_example_parse(m->payload, m->len, 0, &x, NULL),
                         MV_OK);
        assert_int_equal(sscanf(x.action.event_id, "e%u", &k), 1);
        assert_true(k < MAX_EVENTS);
        ex->seen[k]++;
        ex->last[k] = x;
        snprintf(ex->key[k], sizeof(ex->key[k]), "%.*s", (int) m->key_len,
                 (const char *) m->key);
        ex->records++;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_destroy(c);
}


/*
 * Events 0 .. n - 1 each have an example, keyed by its user, with the
 * features of its item, and the counts of each item are 1 .. its actions,
 * once each.
 */
static void
check_examples(const examples_t *ex, unsigned n)
{
    unsigned char  seen[N_ITEMS][MAX_EVENTS];
    unsigned       per_item[N_ITEMS] = { 0 };

    memset(seen, 0, sizeof(seen));
    for (unsigned k = 0; k < n; k++) {
        const mv_example_t  *x = &ex->last[k];
        unsigned             item = k % N_ITEMS;
        char                 want[32];

        if (ex->seen[k] == 0) {
            fail_msg("no example of action e%u", k);
        }
        snprintf(want, sizeof(want), "user-%u", k % 5);
        assert_string_equal(ex->key[k], want);
        assert_string_equal(x->action.user_id, want);
        assert_int_equal(x->has_features, item != N_ITEMS - 1);
        if (x->has_features) {
            snprintf(want, sizeof(want), "cat-%u", item);
            assert_string_equal(x->features.category, want);
            assert_int_equal(x->features.n_tags, 1);
        }
        assert_true(x->popularity >= 1 && x->popularity < MAX_EVENTS);
        if (seen[item][x->popularity]) {
            fail_msg("two examples of item-%u with count %llu", item,
                     (unsigned long long) x->popularity);
        }
        seen[item][x->popularity] = 1;
        per_item[item]++;
    }
    for (unsigned i = 0; i < N_ITEMS; i++) {
        for (unsigned c = 1; c <= per_item[i]; c++) {
            if (!seen[i][c]) {
                fail_msg("item-%u: no example with count %u", i, c);
            }
        }
    }
    for (unsigned k = n; k < MAX_EVENTS; k++) {
        assert_int_equal(ex->seen[k], 0);
    }
}


/* ---- fixture ------------------------------------------------------------ */

static int
setup(void **state)
{
    static const mvt_kafka_topic_t  topics[] = {
        { ACTIONS, 2 }, { ITEMS, 1 }, { EXAMPLES, 1 },
        { COUNTS, 1 }, { NULL, 0 }
    };

    return mvt_kafka_mock_setup(state, topics, NULL);
}


/* ---- tests -------------------------------------------------------------- */

static void
test_join_and_commit(void **state)
{
    fixture_t            *f = *state;
    examples_t           *ex = malloc(sizeof(*ex));
    mvw_feature_stats_t   st;
    mvw_feature_t        *pl;
    mv_err_t              err;

    assert_non_null(ex);
    produce_items(f);
    produce(f, ITEMS, 0, "item-9", "{\"item_id\":\"item-9\","
            "\"embedding\":[1,2,3]}");                   /* dimension 3 */
    produce_actions(f, ACTIONS, 0, 40);
    produce(f, ACTIONS, 0, "x", "not json");
    produce(f, ACTIONS, 1, "x", "{\"user_id\":\"u\",\"item_id\":\"i\","
            "\"action_type\":\"Teleport\"}");
    produce(f, ACTIONS, 1, "x", NULL);                   /* tombstone */
    mvt_kafka_flush(f);

    pl = open_pipeline(f, ACTIONS, 16);
    drive(pl, 43, &st);
    assert_int_equal(st.examples, 40);
    assert_int_equal(st.unknown_items, 10);              /* item-3 */
    assert_int_equal(st.invalid, 2);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.items, 3);
    assert_int_equal(st.invalid_items, 1);
    assert_int_equal(st.aborts, 0);
    assert_true(st.transactions >= 3);                   /* 16 at most */
    assert_int_equal(st.table_items, N_ITEMS);
    assert_int_equal(st.with_features, N_ITEMS - 1);
    assert_int_equal(mvw_feature_close(pl, &st, &err), MV_OK);

    read_examples(f, ex);
    assert_int_equal(ex->records, 40);                   /* none twice */
    check_examples(ex, 40);
    free(ex);
}


/*
 * The second run reads another actions topic: the mock cluster answers
 * the transaction's TxnOffsetCommit without storing the group's offsets,
 * so a second run of the same topic would start from its beginning again
 * (on a real broker it starts after the committed actions: check-feature.sh
 * shows a restart that reads nothing again).  What is tested here is that
 * the counts come back from the popularity topic.
 */
static void
test_restart_restores_counts(void **state)
{
    fixture_t            *f = *state;
    examples_t           *ex = malloc(sizeof(*ex));
    mvw_feature_stats_t   st;
    mvw_feature_t        *pl;
    mv_err_t              err;

    assert_non_null(ex);
    assert_int_equal(rd_kafka_mock_topic_create(f->mock, ACTIONS2, 2, 1), 0);
    produce_items(f);
    produce_actions(f, ACTIONS, 0, 30);
    pl = open_pipeline(f, ACTIONS, 1000);
    drive(pl, 30, &st);
    assert_int_equal(st.restored, 0);
    assert_int_equal(mvw_feature_close(pl, NULL, &err), MV_OK);

    produce_actions(f, ACTIONS2, 30, 30);
    pl = open_pipeline(f, ACTIONS2, 1000);
    drive(pl, 30, &st);
    assert_int_equal(st.restored, N_ITEMS);              /* one per item */
    assert_int_equal(st.examples, 30);
    assert_int_equal(mvw_feature_close(pl, NULL, &err), MV_OK);

    read_examples(f, ex);
    assert_int_equal(ex->records, 60);
    check_examples(ex, 60);                              /* 1 .. 15 each */
    free(ex);
}


/*
 * A transaction refused by Kafka (request api_key failing with code),
 * aborted aborts times before its actions commit.
 */
static void
abort_and_rejoin(fixture_t *f, int16_t api_key, rd_kafka_resp_err_t code,
    uint64_t aborts)
{
    examples_t           *ex = malloc(sizeof(*ex));
    mvw_feature_stats_t   st;
    mvw_feature_t        *pl;
    mv_err_t              err;

    assert_non_null(ex);
    produce_items(f);
    produce_actions(f, ACTIONS, 0, 12);

    /* a first transaction commits, so that the abort rolls counts back
       to values above 0 */
    pl = open_pipeline(f, ACTIONS, 1000);
    drive(pl, 12, &st);
    assert_int_equal(st.aborts, 0);

    /* the next request of that kind fails: the pipeline's (the actions
       are produced before) */
    produce_actions(f, ACTIONS, 12, 20);
    rd_kafka_mock_push_request_errors(f->mock, api_key, 1, code);
    drive(pl, 32, &st);
    assert_int_equal(st.aborts, aborts);
    assert_int_equal(st.examples, 32);                   /* committed ones */
    assert_int_equal(mvw_feature_close(pl, NULL, &err), MV_OK);

    read_examples(f, ex);
    check_examples(ex, 32);       /* the last of each: 1 .. 8 per item */
    free(ex);
}


static void
test_abort_on_offsets_refused(void **state)
{
    abort_and_rejoin(*state, API_ADD_OFFSETS_TXN,
                     RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, 1);
}


/*
 * A produce request refused breaks the idempotent producer's sequence:
 * librdkafka 2.0.2 aborts, finds the skipped sequence numbers with the
 * next transaction's first request and aborts that one too, with an epoch
 * bump; the third one commits.  Every abort rolls back and rejoins.
 */
static void
test_abort_on_produce_refused(void **state)
{
    abort_and_rejoin(*state, API_PRODUCE, RD_KAFKA_RESP_ERR_INVALID_RECORD,
                     2);
}


static void
test_refusals_at_open(void **state)
{
    fixture_t             *f = *state;
    mvw_feature_params_t   p;
    mv_err_t               err;

    memset(&p, 0, sizeof(p));
    p.brokers = f->brokers;
    p.group_id = GROUP;
    p.log_topic = ACTIONS;
    p.feature_topic = ITEMS;
    p.training_topic = ACTIONS;
    p.popularity_topic = COUNTS;
    p.commit_interval = 1;
    p.commit_records = 10;
    assert_null(mvw_feature_open(&p, &err));
    assert_non_null(strstr(err.msg, "log_topic and training_topic"));

    p.training_topic = "a b";
    assert_null(mvw_feature_open(&p, &err));
    assert_non_null(strstr(err.msg, "training_topic"));

    p.training_topic = EXAMPLES;
    p.brokers = "nohost";
    assert_null(mvw_feature_open(&p, &err));

    p.brokers = f->brokers;
    p.commit_records = 0;
    assert_null(mvw_feature_open(&p, &err));
    assert_non_null(strstr(err.msg, "commit_records"));
}


int
main(void)
{
#define WITH_MOCK(f)  cmocka_unit_test_setup_teardown(f, setup, \
                                                  mvt_kafka_mock_teardown)

    const struct CMUnitTest  tests[] = {
        WITH_MOCK(test_join_and_commit),
        WITH_MOCK(test_restart_restores_counts),
        WITH_MOCK(test_abort_on_offsets_refused),
        WITH_MOCK(test_abort_on_produce_refused),
        WITH_MOCK(test_refusals_at_open),
    };
    int  rc;

    if (getenv("TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    rd_kafka_wait_destroyed(10000);
    return rc;
}
