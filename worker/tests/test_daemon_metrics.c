/*
 * test_daemon_metrics.c -- unit tests of how the trainer daemon measures
 * the lag of its published model (cli/daemon_metrics.h): the timestamp of
 * a canonical action or example payload, found without parsing it; the
 * first record applied since a publish sets the lag (its timestamp, or
 * the apply time for an item or a payload without one), later ones do
 * not; a batch handed to the publisher stays lag until it is published,
 * a failed one is pending again; the "behind" rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "actlog.h"
#include "events.h"
#include "cli/daemon_metrics.h"

#define T0        1704067200000LL          /* 2024-01-01T00:00:00.000Z */


static size_t
action_payload(const char *user, int64_t ts, char *buf, size_t cap)
{
    mv_action_t  a;
    size_t       len;

    memset(&a, 0, sizeof(a));
    snprintf(a.event_id, sizeof(a.event_id), "ev-1");
    snprintf(a.user_id, sizeof(a.user_id), "%s", user);
    snprintf(a.item_id, sizeof(a.item_id), "item-1");
    a.type = MV_ACTION_CLICK;
    a.timestamp_ms = ts;
    len = mv_action_encode(&a, buf, cap);
    assert_true(len > 0);
    return len;
}


static void
test_record_timestamp(void **state)
{
    char          buf[1024];
    size_t        len;
    int64_t       ms = 0;
    const char   *item = "{\"event_id\":\"e\",\"item_id\":\"i\","
                         "\"created_at\":\"2024-01-01T00:00:00.000Z\"}";

    (void) state;
    len = action_payload("u-1", T0 + 1234, buf, sizeof(buf));
    assert_int_equal(mvw_record_timestamp_ms(buf, len, &ms), MV_OK);
    assert_int_equal(ms, T0 + 1234);

    /* an id that looks like the key (escaped) does not fool it */
    len = action_payload(",\"timestamp\":\"2000", T0 + 5, buf, sizeof(buf));
    assert_int_equal(mvw_record_timestamp_ms(buf, len, &ms), MV_OK);
    assert_int_equal(ms, T0 + 5);

    assert_int_equal(mvw_record_timestamp_ms(item, strlen(item), &ms),
                     MV_ERR);
    assert_int_equal(mvw_record_timestamp_ms(buf, 20, &ms), MV_ERR);
}


static void
test_lag_first_record_since_publish(void **state)
{
    char        buf[1024];
    size_t      len;
    mvw_lag_t   lag = { 0 };
    int64_t     now = T0 + 60000;

    (void) state;
    assert_true(mvw_lag_seconds(&lag, now) == 0.0);

    len = action_payload("u-1", T0 + 10000, buf, sizeof(buf));
    mvw_lag_applied(&lag, MV_RECORD_ACTION, buf, len, now);
    assert_int_equal(lag.pending_since_ms, T0 + 10000);
    assert_true(mvw_lag_seconds(&lag, now) == 50.0);

    /* later records do not move it */
    len = action_payload("u-2", T0 + 1000, buf, sizeof(buf));
    mvw_lag_applied(&lag, MV_RECORD_ACTION, buf, len, now);
    assert_int_equal(lag.pending_since_ms, T0 + 10000);

    /* frozen and in flight: still lag; records applied meanwhile start
       a new pending time, the older one counts */
    mvw_lag_frozen(&lag);
    assert_true(mvw_lag_seconds(&lag, now) == 50.0);
    len = action_payload("u-3", T0 + 40000, buf, sizeof(buf));
    mvw_lag_applied(&lag, MV_RECORD_ACTION, buf, len, now);
    assert_int_equal(lag.pending_since_ms, T0 + 40000);
    assert_true(mvw_lag_seconds(&lag, now) == 50.0);

    /* a failed publish: its batch is pending again, the oldest counts */
    mvw_lag_failed(&lag);
    assert_int_equal(lag.pending_since_ms, T0 + 10000);
    assert_int_equal(lag.in_flight_since_ms, 0);
    assert_true(mvw_lag_seconds(&lag, now) == 50.0);

    /* published: only what was applied after the hand-over is left */
    mvw_lag_frozen(&lag);
    len = action_payload("u-4", T0 + 55000, buf, sizeof(buf));
    mvw_lag_applied(&lag, MV_RECORD_ACTION, buf, len, now);
    mvw_lag_published(&lag);
    assert_true(mvw_lag_seconds(&lag, now) == 5.0);
    mvw_lag_frozen(&lag);
    mvw_lag_published(&lag);
    assert_true(mvw_lag_seconds(&lag, now) == 0.0);

    /* an item: the time it was applied */
    mvw_lag_applied(&lag, MV_RECORD_ITEM, "{}", 2, now - 3000);
    assert_true(mvw_lag_seconds(&lag, now) == 3.0);
    mvw_lag_frozen(&lag);
    mvw_lag_published(&lag);

    /* a timestamp in the future is no lag */
    len = action_payload("u-5", now + 5000, buf, sizeof(buf));
    mvw_lag_applied(&lag, MV_RECORD_ACTION, buf, len, now);
    assert_true(mvw_lag_seconds(&lag, now) == 0.0);
}


static void
test_behind_rule(void **state)
{
    (void) state;
    /* publish_interval 10 s: behind past 25 s */
    assert_false(mvw_lag_behind(0.0, 10.0));
    assert_false(mvw_lag_behind(25.0, 10.0));
    assert_true(mvw_lag_behind(25.5, 10.0));
    assert_false(mvw_lag_behind(5.0, 0.0));
    assert_true(mvw_lag_behind(5.1, 0.0));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_record_timestamp),
        cmocka_unit_test(test_lag_first_record_since_publish),
        cmocka_unit_test(test_behind_rule),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
