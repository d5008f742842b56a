/*
 * test_source_kafka.c -- unit tests of Kafka as the worker's source
 * (source.h, source_kafka.c) against librdkafka's mock cluster (an
 * in-process broker: rdkafka_mock.h), records produced by a plain
 * producer with explicit partitions:
 *
 *   - records come out with their topic's type and their exact payload,
 *     in order within each partition; positions are one per partition,
 *     the offset after the last record handed out; a tombstone (no value)
 *     and an oversized value are skipped, counted, and passed over by the
 *     positions;
 *   - a source reopened at the positions of one that read k records
 *     resumes exactly at record k + 1 of each partition (no repeat, no
 *     loss); other streams' positions are ignored;
 *   - durable() commits the positions to the group (read back with
 *     rd_kafka_committed);
 *   - the backlog: unknown before an assignment, then the records past
 *     the position up to the high watermark the fetcher last saw;
 *   - with examples set, log_topic's records come out as training
 *     examples (MV_RECORD_EXAMPLE), and refusals name training_topic;
 *   - names: a topic of 40 bytes, equal topics, a bad broker list are
 *     refused at open; the checks the configuration uses say why;
 *   - a broker where nothing listens: open succeeds, next() never blocks
 *     and counts the errors.
 *
 * Every test gets a fresh mock cluster (setup) that the teardown destroys
 * with every handle, then waits for librdkafka's threads to end, so the
 * suite is clean under ASan's leak check.  A mock group's first join
 * waits about 3 s (its initial rebalance delay), so each open costs that.
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

#include "actlog.h"
#include "events.h"
#include "sources/source.h"
#include "tests/kafka_mock.h"

#define T0          1704067200000LL        /* 2024-01-01T00:00:00.000Z */
#define ACTIONS     "t_actions"            /* 2 partitions */
#define ITEMS       "t_items"              /* 1 partition */
#define N_ACTIONS   20
#define N_ITEMS     5
#define PAYLOAD     512
#define WAIT_MS     60000          /* a loaded machine under ASan */

typedef mvt_kafka_mock_t fixture_t;

/* A record as read: its type, which record it is, where it came from. */
typedef struct {
    uint16_t  type;
    unsigned  k;
} got_t;


/* ---- helpers ------------------------------------------------------------ */

/* Action k: user-(k % 7), item-(k % 5), event id "ev-k". */
static size_t
action_payload(unsigned k, char *buf, size_t cap)
{
    mv_action_t  a;

    memset(&a, 0, sizeof(a));
    snprintf(a.event_id, sizeof(a.event_id), "ev-%u", k);
    snprintf(a.user_id, sizeof(a.user_id), "user-%u", k % 7);
    snprintf(a.item_id, sizeof(a.item_id), "item-%u", k % 5);
    a.type = (mv_action_type_t) (k % MV_ACTION_TYPES);
    a.timestamp_ms = T0 + (int64_t) k * 1000;
    return mv_action_encode(&a, buf, cap);
}


/* Item k: item-k, dim 4, event id "it-k". */
static size_t
item_payload(unsigned k, char *buf, size_t cap)
{
    mv_item_event_t  ev;
    float            v[4] = { (float) k, 0.5f, -1.0f, 1e-3f };

    memset(&ev, 0, sizeof(ev));
    snprintf(ev.event_id, sizeof(ev.event_id), "it-%u", k);
    snprintf(ev.item_id, sizeof(ev.item_id), "item-%u", k);
    ev.embedding = v;
    ev.dim = 4;
    ev.created_at_ms = T0 + k;
    return mv_item_encode(&ev, buf, cap);
}


/*
 * Actions first .. first + n - 1 into ACTIONS (partition k % 2, keyed by
 * user), items likewise into ITEMS.
 */
static void
produce_actions(fixture_t *f, unsigned first, unsigned n)
{
    char    buf[PAYLOAD], key[32];
    size_t  len;

    for (unsigned k = first; k < first + n; k++) {
        len = action_payload(k, buf, sizeof(buf));
        assert_true(len > 0);
        snprintf(key, sizeof(key), "user-%u", k % 7);
        mvt_kafka_produce(f, ACTIONS, (int32_t) (k % 2), key, buf, len);
    }
    mvt_kafka_flush(f);
}


static void
produce_items(fixture_t *f, unsigned first, unsigned n)
{
    char    buf[PAYLOAD], key[32];
    size_t  len;

    for (unsigned k = first; k < first + n; k++) {
        len = item_payload(k, buf, sizeof(buf));
        assert_true(len > 0);
        snprintf(key, sizeof(key), "item-%u", k);
        mvt_kafka_produce(f, ITEMS, 0, key, buf, len);
    }
    mvt_kafka_flush(f);
}


static mvw_source_t *
open_source(fixture_t *f, const char *group, const mv_stream_pos_t *pos,
    size_t n)
{
    static const char *const  extra[] = {
        "session.timeout.ms=6000", "heartbeat.interval.ms=500",
        "topic.metadata.refresh.interval.ms=1000", NULL
    };
    mvw_kafka_params_t  p;
    mvw_source_t       *s;
    mv_err_t            err;

    memset(&p, 0, sizeof(p));
    p.brokers = f->brokers;
    p.group_id = group;
    p.log_topic = ACTIONS;
    p.feature_topic = ITEMS;
    p.extra = extra;
    s = mvw_source_kafka_open(&p, pos, n, &err);
    if (s == NULL) {
        fail_msg("mvw_source_kafka_open: %s", err.msg);
    }
    return s;
}


/*
 * Reads n records into got[] (checking each payload against the record
 * its event id names), within WAIT_MS.
 */
static void
read_records(mvw_source_t *s, got_t *got, unsigned n)
{
    char          want[PAYLOAD], id[16];
    mvw_record_t  rec;
    mv_err_t      err;
    int64_t       deadline = mvt_now_ms() + WAIT_MS;
    unsigned      have = 0, k;
    size_t        len;
    const char   *p;
    int           rc;

    while (have < n) {
        rc = mvw_source_next(s, &rec, &err);
        if (rc <= 0) {
            if (mvt_now_ms() > deadline) {
                fail_msg("%u of %u records after %d ms (last: %d %s)", have,
                         n, WAIT_MS, rc, rc < 0 ? err.msg : "");
            }
            mvt_nap_ms(2);
            continue;
        }
        p = strstr(rec.payload, "\"event_id\":\"");
        assert_non_null(p);
        assert_int_equal(sscanf(p + 12, "%2[a-z]-%u", id, &k), 2);
        if (rec.type == MV_RECORD_ACTION) {
            assert_string_equal(id, "ev");
            len = action_payload(k, want, sizeof(want));
        } else {
            assert_int_equal(rec.type, MV_RECORD_ITEM);
            assert_string_equal(id, "it");
            len = item_payload(k, want, sizeof(want));
        }
        assert_int_equal(rec.len, len);
        assert_memory_equal(rec.payload, want, len);
        got[have].type = rec.type;
        got[have].k = k;
        have++;
    }
}


/* Polls for ms and fails if a record comes. */
static void
expect_nothing_for(mvw_source_t *s, long ms)
{
    mvw_record_t  rec;
    mv_err_t      err;
    int64_t       end = mvt_now_ms() + ms;

    while (mvt_now_ms() < end) {
        if (mvw_source_next(s, &rec, &err) == 1) {
            fail_msg("unexpected record: %.*s", (int) rec.len, rec.payload);
        }
        mvt_nap_ms(5);
    }
}


/* The offset of (topic, partition) among pos[0 .. n), or -1. */
static int64_t
offset_of(const mv_stream_pos_t *pos, size_t n, const char *topic,
    uint32_t partition)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(pos[i].stream, topic) == 0
            && pos[i].partition == partition)
        {
            return (int64_t) pos[i].offset;
        }
    }
    return -1;
}


/* ---- fixture ------------------------------------------------------------ */

static int
setup(void **state)
{
    static const mvt_kafka_topic_t  topics[] = {
        { ACTIONS, 2 }, { ITEMS, 1 }, { NULL, 0 }
    };
    static const char *const        conf[][2] = {
        { "message.max.bytes", "3000000" }, { NULL, NULL }
    };

    return mvt_kafka_mock_setup(state, topics, conf);
}


/* ---- tests -------------------------------------------------------------- */

static void
test_records_positions_tombstones(void **state)
{
    fixture_t           *f = *state;
    got_t                got[N_ACTIONS + N_ITEMS];
    mv_stream_pos_t      pos[8];
    mvw_source_stats_t   st;
    mvw_source_t        *s;
    int64_t              last[2] = { -1, -1 };
    unsigned             actions = 0, items = 0;
    char                *big;
    size_t               n;

    /* partition 0 of ACTIONS: a tombstone and an oversized value among
       the records; they take an offset each */
    produce_actions(f, 0, 4);
    mvt_kafka_produce(f, ACTIONS, 0, "user-x", NULL, 0);
    big = malloc(MVW_SOURCE_RECORD_MAX + 1);
    assert_non_null(big);
    memset(big, '{', MVW_SOURCE_RECORD_MAX + 1);
    mvt_kafka_produce(f, ACTIONS, 0, "user-y", big, MVW_SOURCE_RECORD_MAX + 1);
    free(big);
    mvt_kafka_flush(f);
    produce_actions(f, 4, N_ACTIONS - 4);
    produce_items(f, 0, N_ITEMS);

    s = open_source(f, "g-records", NULL, 0);
    assert_string_equal(s->ops->name, "kafka");
    assert_int_equal(mvw_source_positions(s, pos, 8), 0);

    read_records(s, got, N_ACTIONS + N_ITEMS);
    for (unsigned i = 0; i < N_ACTIONS + N_ITEMS; i++) {
        if (got[i].type == MV_RECORD_ITEM) {
            assert_int_equal(got[i].k, items);       /* one partition */
            items++;
            continue;
        }
        /* in order within each partition */
        assert_true((int64_t) got[i].k > last[got[i].k % 2]);
        last[got[i].k % 2] = got[i].k;
        actions++;
    }
    assert_int_equal(actions, N_ACTIONS);
    assert_int_equal(items, N_ITEMS);
    expect_nothing_for(s, 300);

    /* 10 actions + 2 skipped in partition 0, 10 in 1, 5 items */
    n = mvw_source_positions(s, pos, 8);
    assert_int_equal(n, 3);
    assert_int_equal(offset_of(pos, n, ACTIONS, 0), N_ACTIONS / 2 + 2);
    assert_int_equal(offset_of(pos, n, ACTIONS, 1), N_ACTIONS / 2);
    assert_int_equal(offset_of(pos, n, ITEMS, 0), N_ITEMS);
    assert_int_equal(mvw_source_positions(s, pos, 1), 1);

    mvw_source_stats(s, &st);
    assert_int_equal(st.records, N_ACTIONS + N_ITEMS);
    assert_int_equal(st.skipped_records, 2);
    assert_int_equal(st.skipped_bytes, 0);
    assert_true(st.eofs >= 1);

    /* the records that come later are read too */
    produce_actions(f, N_ACTIONS, 2);
    read_records(s, got, 2);
    assert_int_equal(got[0].k + got[1].k, 2 * N_ACTIONS + 1);
    mvw_source_free(s);
}


static void
test_resume_exactly(void **state)
{
    enum { K = 9 };
    fixture_t         *f = *state;
    got_t              got[N_ACTIONS + N_ITEMS];
    mv_stream_pos_t    pos[8], mine[8];
    unsigned char      seen[N_ACTIONS + N_ITEMS];
    mvw_source_t      *s;
    size_t             n;

    produce_actions(f, 0, N_ACTIONS);
    produce_items(f, 0, N_ITEMS);

    /* the first source reads K records and stops (it has fetched more) */
    s = open_source(f, "g-resume", NULL, 0);
    read_records(s, got, K);
    n = mvw_source_positions(s, mine, 8);
    mvw_source_free(s);
    assert_true(n >= 1);

    memset(seen, 0, sizeof(seen));
    for (unsigned i = 0; i < K; i++) {
        seen[got[i].type == MV_RECORD_ITEM ? N_ACTIONS + got[i].k
                                           : got[i].k] = 1;
    }

    /* positions of other streams are ignored */
    memset(pos, 0, sizeof(pos));
    strcpy(pos[0].stream, MV_ACTLOG_STREAM_NAME);
    pos[0].offset = 12345;
    strcpy(pos[1].stream, "t_other");
    pos[1].offset = 7;
    memcpy(&pos[2], mine, n * sizeof(mine[0]));

    /* the second resumes after them: every other record, once */
    s = open_source(f, "g-resume", pos, n + 2);
    read_records(s, got, N_ACTIONS + N_ITEMS - K);
    for (unsigned i = 0; i < N_ACTIONS + N_ITEMS - K; i++) {
        unsigned  at = got[i].type == MV_RECORD_ITEM ? N_ACTIONS + got[i].k
                                                     : got[i].k;

        assert_int_equal(seen[at], 0);
        seen[at] = 1;
    }
    for (unsigned i = 0; i < N_ACTIONS + N_ITEMS; i++) {
        assert_int_equal(seen[i], 1);
    }
    expect_nothing_for(s, 500);

    /* a partition it read nothing from keeps the position it was given */
    n = mvw_source_positions(s, pos, 8);
    assert_int_equal(n, 3);
    assert_int_equal(offset_of(pos, n, ACTIONS, 0), N_ACTIONS / 2);
    assert_int_equal(offset_of(pos, n, ACTIONS, 1), N_ACTIONS / 2);
    assert_int_equal(offset_of(pos, n, ITEMS, 0), N_ITEMS);
    mvw_source_free(s);
}


static void
test_durable_commits(void **state)
{
    fixture_t                        *f = *state;
    got_t                             got[N_ACTIONS];
    mv_stream_pos_t                   pos[8];
    rd_kafka_topic_partition_list_t  *list;
    rd_kafka_conf_t                  *conf;
    rd_kafka_t                       *c;
    mvw_source_t                     *s;
    char                              why[256];
    int64_t                           deadline;
    size_t                            n;
    int                               done = 0;

    produce_actions(f, 0, N_ACTIONS);
    s = open_source(f, "g-durable", NULL, 0);
    read_records(s, got, N_ACTIONS);
    n = mvw_source_positions(s, pos, 8);
    assert_int_equal(n, 2);
    mvw_source_durable(s, pos, n);

    /* read back by another client of the group (asynchronous commit) */
    conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", f->brokers,
                                       why, sizeof(why)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "g-durable", why,
                                       sizeof(why)), RD_KAFKA_CONF_OK);
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    assert_non_null(c);
    deadline = mvt_now_ms() + WAIT_MS;
    while (!done && mvt_now_ms() < deadline) {
        list = rd_kafka_topic_partition_list_new(2);
        rd_kafka_topic_partition_list_add(list, ACTIONS, 0);
        rd_kafka_topic_partition_list_add(list, ACTIONS, 1);
        if (rd_kafka_committed(c, list, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR
            && list->elems[0].offset == N_ACTIONS / 2
            && list->elems[1].offset == N_ACTIONS / 2)
        {
            done = 1;
        }
        rd_kafka_topic_partition_list_destroy(list);
        mvt_nap_ms(50);
    }
    assert_true(done);
    rd_kafka_destroy(c);
    mvw_source_free(s);
}


/* With examples set, log_topic's records are training examples. */
static void
test_examples_topic(void **state)
{
    static const char *const  extra[] = { "session.timeout.ms=6000", NULL };
    fixture_t           *f = *state;
    mvw_kafka_params_t   p;
    mvw_source_t        *s;
    mvw_record_t         rec;
    mv_example_t         x;
    mv_err_t             err;
    char                 buf[MV_EXAMPLE_ENCODE_MAX], key[32];
    size_t               len;
    int64_t              deadline;
    unsigned             got = 0;

    memset(&x, 0, sizeof(x));
    x.action.type = MV_ACTION_LIKE;
    x.action.timestamp_ms = T0;
    snprintf(x.action.item_id, sizeof(x.action.item_id), "item-1");
    for (unsigned k = 0; k < 3; k++) {
        snprintf(x.action.user_id, sizeof(x.action.user_id), "user-%u", k);
        snprintf(key, sizeof(key), "user-%u", k);
        x.popularity = k + 1;
        len = mv_example_encode(&x, buf, sizeof(buf));
        assert_true(len > 0);
        mvt_kafka_produce(f, ACTIONS, 0, key, buf, len);
    }
    mvt_kafka_flush(f);

    memset(&p, 0, sizeof(p));
    p.brokers = f->brokers;
    p.group_id = "g-examples";
    p.log_topic = ACTIONS;
    p.examples = 1;
    p.feature_topic = ITEMS;
    p.extra = extra;
    s = mvw_source_kafka_open(&p, NULL, 0, &err);
    assert_non_null(s);
    deadline = mvt_now_ms() + WAIT_MS;
    while (got < 3 && mvt_now_ms() < deadline) {
        if (mvw_source_next(s, &rec, &err) != 1) {
            mvt_nap_ms(2);
            continue;
        }
        assert_int_equal(rec.type, MV_RECORD_EXAMPLE);
        assert_int_equal(mv_example_parse(rec.payload, rec.len, T0, &x,
                                          NULL), MV_OK);
        assert_int_equal(x.popularity, got + 1);     /* one partition */
        got++;
    }
    assert_int_equal(got, 3);
    mvw_source_free(s);

    /* the refusals name the training topic's key */
    p.feature_topic = ACTIONS;
    assert_null(mvw_source_kafka_open(&p, NULL, 0, &err));
    assert_non_null(strstr(err.msg, "training_topic and feature_topic"));
}


static void
test_names_refused(void **state)
{
    fixture_t           *f = *state;
    mvw_kafka_params_t   p;
    mv_err_t             err;
    char                 t40[41];

    memset(t40, 'a', 40);
    t40[40] = '\0';
    memset(&p, 0, sizeof(p));
    p.brokers = f->brokers;
    p.group_id = "g";
    p.log_topic = t40;
    p.feature_topic = ITEMS;
    assert_null(mvw_source_kafka_open(&p, NULL, 0, &err));
    assert_non_null(strstr(err.msg, "log_topic"));
    assert_non_null(strstr(err.msg, "at most 39 bytes"));

    p.log_topic = ACTIONS;
    p.feature_topic = t40;
    assert_null(mvw_source_kafka_open(&p, NULL, 0, &err));
    assert_non_null(strstr(err.msg, "feature_topic"));

    t40[39] = '\0';                           /* 39 bytes: fine */
    assert_int_equal(mvw_kafka_topic_check(t40, &err), MV_OK);
    assert_int_equal(mvw_kafka_topic_check("a b", &err), MV_ERR);
    assert_int_equal(mvw_kafka_topic_check("..", &err), MV_ERR);
    assert_int_equal(mvw_kafka_topic_check("", &err), MV_ERR);

    p.feature_topic = ACTIONS;
    assert_null(mvw_source_kafka_open(&p, NULL, 0, &err));
    assert_non_null(strstr(err.msg, "must differ"));

    p.feature_topic = ITEMS;
    p.brokers = "127.0.0.1";
    assert_null(mvw_source_kafka_open(&p, NULL, 0, &err));
    assert_non_null(strstr(err.msg, "not host:port"));
    assert_int_equal(mvw_kafka_brokers_check("a:1,[::1]:2,10.0.0.1:3", &err),
                     MV_OK);
    assert_int_equal(mvw_kafka_brokers_check("a:1,", &err), MV_ERR);
    assert_int_equal(mvw_kafka_brokers_check("a:0", &err), MV_ERR);
    assert_int_equal(mvw_kafka_brokers_check("[::1]", &err), MV_ERR);
    assert_int_equal(mvw_kafka_brokers_check("", &err), MV_ERR);

    /* an extra property librdkafka does not know */
    {
        static const char *const  extra[] = { "no.such.property=1", NULL };

        p.brokers = f->brokers;
        p.extra = extra;
        assert_null(mvw_source_kafka_open(&p, NULL, 0, &err));
        assert_non_null(strstr(err.msg, "no.such.property"));
    }
}


static void
test_broker_down(void **state)
{
    mvw_kafka_params_t   p;
    mvw_source_stats_t   st;
    mvw_source_t        *s;
    mvw_record_t         rec;
    mv_err_t             err;
    int64_t              t, end, worst = 0;

    (void) state;
    memset(&p, 0, sizeof(p));
    p.brokers = "127.0.0.1:1";                  /* nothing listens */
    p.group_id = "g-down";
    p.log_topic = ACTIONS;
    p.feature_topic = "";                        /* actions only */
    s = mvw_source_kafka_open(&p, NULL, 0, &err);
    assert_non_null(s);

    end = mvt_now_ms() + 1500;
    do {
        t = mvt_now_ms();
        assert_true(mvw_source_next(s, &rec, &err) <= 0);
        t = mvt_now_ms() - t;
        worst = t > worst ? t : worst;
        mvt_nap_ms(10);
    } while (mvt_now_ms() < end);
    assert_true(worst < 100);
    mvw_source_stats(s, &st);
    assert_int_equal(st.records, 0);
    assert_true(st.errors >= 1);

    t = mvt_now_ms();
    mvw_source_free(s);
    assert_true(mvt_now_ms() - t < 5000);
}


/* Waits (at most WAIT_MS, not consuming) until s's backlog is want
   records; fails with the last value seen. */
static void
wait_backlog(mvw_source_t *s, int64_t want)
{
    int64_t  records = -2, bytes, deadline = mvt_now_ms() + WAIT_MS;

    for ( ;; ) {
        mvw_source_backlog(s, &records, &bytes);
        assert_int_equal(bytes, -1);
        if (records == want) {
            return;
        }
        if (mvt_now_ms() > deadline) {
            fail_msg("backlog %lld records, not %lld, after %d ms",
                     (long long) records, (long long) want, WAIT_MS);
        }
        mvt_nap_ms(20);
    }
}


/*
 * The backlog in records: unknown before anything is assigned; 0 once
 * everything is read; records produced and not consumed yet count (the
 * fetcher saw the new high watermark), one less for each one handed out.
 */
static void
test_backlog_records(void **state)
{
    fixture_t     *f = *state;
    got_t          got[N_ACTIONS + N_ITEMS];
    mvw_source_t  *s;
    int64_t        records, bytes;

    produce_actions(f, 0, N_ACTIONS);
    produce_items(f, 0, N_ITEMS);

    s = open_source(f, "g-backlog", NULL, 0);
    mvw_source_backlog(s, &records, &bytes);
    assert_int_equal(records, -1);           /* no assignment yet */
    assert_int_equal(bytes, -1);

    read_records(s, got, N_ACTIONS + N_ITEMS);
    wait_backlog(s, 0);

    produce_actions(f, N_ACTIONS, 3);
    wait_backlog(s, 3);
    read_records(s, got, 1);
    wait_backlog(s, 2);
    read_records(s, got, 2);
    wait_backlog(s, 0);
    mvw_source_free(s);
}


int
main(void)
{
#define WITH_MOCK(f)  cmocka_unit_test_setup_teardown(f, setup, \
                                                  mvt_kafka_mock_teardown)

    const struct CMUnitTest  tests[] = {
        WITH_MOCK(test_records_positions_tombstones),
        WITH_MOCK(test_resume_exactly),
        WITH_MOCK(test_durable_commits),
        WITH_MOCK(test_examples_topic),
        WITH_MOCK(test_names_refused),
        WITH_MOCK(test_backlog_records),
        cmocka_unit_test(test_broker_down),
    };
    int  rc;

    rc = cmocka_run_group_tests(tests, NULL, NULL);
    rd_kafka_wait_destroyed(10000);
    return rc;
}
