/*
 * kafka_mock.h -- the fixture of the worker's cmocka suites that talk to
 * librdkafka's mock cluster (rdkafka_mock.h, one in-process broker): the
 * cluster, its bootstrap address, a plain producer to write the records a
 * test reads back, and a monotonic clock.  Header-only, as tmpdir.h: each
 * suite is one program.  Unit tests only; the integration suites use the
 * real broker.
 */
#ifndef MVW_TEST_KAFKA_MOCK_H
#define MVW_TEST_KAFKA_MOCK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

typedef struct {
    rd_kafka_t               *host;      /* the handle the cluster lives on */
    rd_kafka_mock_cluster_t  *mock;
    rd_kafka_t               *producer;  /* writes the tests' records */
    char                      brokers[256];
} mvt_kafka_mock_t;

/* The topics a suite creates: { name, partitions }, ended by a NULL name. */
typedef struct {
    const char  *name;
    int          partitions;
} mvt_kafka_topic_t;


static inline int64_t
mvt_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static inline void
mvt_nap_ms(long ms)
{
    struct timespec  ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}


static inline void
mvt_kafka_quiet(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    (void) rk;
    (void) level;
    (void) fac;
    (void) buf;
}


/*
 * Starts a one-broker mock cluster with topics (replication 1) and a
 * producer on it; producer_conf: extra { name, value } pairs, ended by a
 * NULL name (NULL: none).  Fails the test on any error.
 */
static inline void
mvt_kafka_mock_start(mvt_kafka_mock_t *km, const mvt_kafka_topic_t *topics,
    const char *const (*producer_conf)[2])
{
    rd_kafka_conf_t  *conf;
    char              why[256];

    memset(km, 0, sizeof(*km));
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, mvt_kafka_quiet);  /* no bootstrap */
    km->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    assert_non_null(km->host);
    km->mock = rd_kafka_mock_cluster_new(km->host, 1);
    assert_non_null(km->mock);
    snprintf(km->brokers, sizeof(km->brokers), "%s",
             rd_kafka_mock_cluster_bootstraps(km->mock));
    for (; topics != NULL && topics->name != NULL; topics++) {
        assert_int_equal(rd_kafka_mock_topic_create(km->mock, topics->name,
                                                    topics->partitions, 1),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }

    conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       km->brokers, why, sizeof(why)),
                     RD_KAFKA_CONF_OK);
    for (; producer_conf != NULL && (*producer_conf)[0] != NULL;
         producer_conf++)
    {
        assert_int_equal(rd_kafka_conf_set(conf, (*producer_conf)[0],
                                           (*producer_conf)[1], why,
                                           sizeof(why)), RD_KAFKA_CONF_OK);
    }
    km->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    assert_non_null(km->producer);
}


/*
 * Stops what mvt_kafka_mock_start started; 0, or -1 when librdkafka's
 * handles did not all go within 10 s (a leak of the code under test).
 */
static inline int
mvt_kafka_mock_stop(mvt_kafka_mock_t *km)
{
    rd_kafka_destroy(km->producer);
    rd_kafka_mock_cluster_destroy(km->mock);
    rd_kafka_destroy(km->host);
    return rd_kafka_wait_destroyed(10000) == 0 ? 0 : -1;
}


/*
 * A cmocka setup's body: a fresh mvt_kafka_mock_t started as
 * mvt_kafka_mock_start does, in *state.  Returns 0 (fails the test on an
 * error).
 */
static inline int
mvt_kafka_mock_setup(void **state, const mvt_kafka_topic_t *topics,
    const char *const (*producer_conf)[2])
{
    mvt_kafka_mock_t  *km = calloc(1, sizeof(*km));

    assert_non_null(km);
    mvt_kafka_mock_start(km, topics, producer_conf);
    *state = km;
    return 0;
}


/* The matching cmocka teardown: stops and frees *state (see _stop). */
static inline int
mvt_kafka_mock_teardown(void **state)
{
    mvt_kafka_mock_t  *km = *state;
    int                rc = mvt_kafka_mock_stop(km);

    free(km);
    return rc;
}


/*
 * Queues one record (value NULL: a tombstone) to topic's partition, keyed
 * by key; fails the test when librdkafka refuses it.
 */
static inline void
mvt_kafka_produce(mvt_kafka_mock_t *km, const char *topic, int32_t partition,
    const char *key, const void *value, size_t len)
{
    assert_int_equal(rd_kafka_producev(km->producer, RD_KAFKA_V_TOPIC(topic),
                                       RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_KEY(key, strlen(key)),
                                       RD_KAFKA_V_VALUE((void *) value, len),
                                       RD_KAFKA_V_MSGFLAGS(
                                           RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}


/* Waits (at most 10 s) until every queued record is delivered. */
static inline void
mvt_kafka_flush(mvt_kafka_mock_t *km)
{
    assert_int_equal(rd_kafka_flush(km->producer, 10000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}

#endif /* MVW_TEST_KAFKA_MOCK_H */
