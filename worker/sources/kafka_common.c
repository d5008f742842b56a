/*
 * kafka_common.c -- configuration, error reporting and bounded close for
 * every librdkafka handle of the worker (see kafka_common.h).
 *
 * librdkafka calls the error callback from the application's poll (the
 * thread that owns the handle) and the log callback from its own threads
 * too; the latter only formats a debug line through the logger, which
 * writes one line with one call.
 */
#include <stdio.h>
#include <string.h>

#include "sources/kafka_common.h"

#define ERROR_LOG_MS  10000


int
mvw_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
    const char *value, mv_err_t *err)
{
    char  why[256];

    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why))
        != RD_KAFKA_CONF_OK)
    {
        return mv_err_set(err, "kafka: %s=%s: %s", name, value, why);
    }
    return MV_OK;
}


/*
 * Keeps the text of handle rk's fatal error in e->fatal (librdkafka's, or
 * reason when it has none), unless one is kept already: the first wins.
 */
static void
keep_fatal(rd_kafka_t *rk, mvw_kafka_errors_t *e, const char *reason)
{
    if (e->fatal[0] == '\0') {
        rd_kafka_fatal_error(rk, e->fatal, sizeof(e->fatal));
    }
    if (e->fatal[0] == '\0') {
        snprintf(e->fatal, sizeof(e->fatal), "%s", reason);
    }
}


static void
on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    mvw_kafka_errors_t  *e = opaque;

    e->count++;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        keep_fatal(rk, e, reason);
        return;                            /* the owner reports it */
    }
    if (e->log != NULL) {
        mvw_log_every(e->log, e->shared ? e->shared : &e->lim, ERROR_LOG_MS,
                      MVW_LOG_WARN, "%s: %s (%s); retrying", e->prefix, reason,
                      rd_kafka_err2name((rd_kafka_resp_err_t) code));
    }
}


int
mvw_kafka_note_fatal(rd_kafka_t *rk, const rd_kafka_message_t *m,
    mvw_kafka_errors_t *errs)
{
    if (m->err != RD_KAFKA_RESP_ERR__FATAL) {
        return 0;
    }
    keep_fatal(rk, errs, rd_kafka_message_errstr(m));
    return 1;
}


/* librdkafka's own log lines (from its threads too): debug level only. */
static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const mvw_kafka_errors_t  *e = rd_kafka_opaque(rk);

    if (e != NULL && e->log != NULL) {
        mvw_log(e->log, MVW_LOG_DEBUG, "%s: [%d %s] %s", e->prefix, level,
                fac, buf);
    }
}


rd_kafka_conf_t *
mvw_kafka_conf(const char *brokers, const char *const (*fixed)[2],
    size_t n_fixed, const char *const *extra, mvw_kafka_errors_t *errs,
    mv_err_t *err)
{
    rd_kafka_conf_t  *conf = rd_kafka_conf_new();
    char              name[128];
    const char       *eq;

    if (mvw_kafka_conf_set(conf, "bootstrap.servers", brokers, err)
        != MV_OK)
    {
        goto failed;
    }
    for (size_t i = 0; i < n_fixed; i++) {
        if (mvw_kafka_conf_set(conf, fixed[i][0], fixed[i][1], err)
            != MV_OK)
        {
            goto failed;
        }
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        eq = strchr(extra[i], '=');
        if (eq == NULL || (size_t) (eq - extra[i]) >= sizeof(name)) {
            mv_err_set(err, "kafka: \"%.100s\" is not name=value", extra[i]);
            goto failed;
        }
        snprintf(name, sizeof(name), "%.*s", (int) (eq - extra[i]),
                 extra[i]);
        if (mvw_kafka_conf_set(conf, name, eq + 1, err) != MV_OK) {
            goto failed;
        }
    }

    rd_kafka_conf_set_opaque(conf, errs);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    return conf;

failed:
    rd_kafka_conf_destroy(conf);
    return NULL;
}


mvw_kafka_errors_t *
mvw_kafka_errors_of(const rd_kafka_t *rk)
{
    return rd_kafka_opaque(rk);
}


mvw_txn_rc_t
mvw_kafka_txn_result(rd_kafka_error_t *e, const char *prefix,
    const char *what, const char *fenced, mv_err_t *err)
{
    mvw_txn_rc_t         rc;
    rd_kafka_resp_err_t  code;

    if (e == NULL) {
        return MVW_TXN_OK;
    }
    rc = rd_kafka_error_is_fatal(e) ? MVW_TXN_FATAL
         : rd_kafka_error_txn_requires_abort(e) ? MVW_TXN_ABORT
         : rd_kafka_error_is_retriable(e) ? MVW_TXN_RETRY : MVW_TXN_FATAL;
    code = rd_kafka_error_code(e);
    mv_err_set(err, "%s: %s: %s%s", prefix, what, rd_kafka_error_string(e),
               code == RD_KAFKA_RESP_ERR__FENCED
               || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ? fenced : "");
    rd_kafka_error_destroy(e);
    return rc;
}


void
mvw_kafka_consumer_close(rd_kafka_t *rk, int close_ms)
{
    const mvw_kafka_errors_t  *errs = rd_kafka_opaque(rk);
    rd_kafka_queue_t          *q;
    rd_kafka_error_t          *e;
    rd_kafka_event_t          *ev;
    int64_t                    deadline;
    int                        closed = 0;

    q = rd_kafka_queue_new(rk);
    e = rd_kafka_consumer_close_queue(rk, q);
    if (e != NULL) {
        rd_kafka_error_destroy(e);
    } else {
        /* served as events: the queue also carries what a callback
           cannot take (fetched messages); a revocation is answered here */
        deadline = mv_clock_monotonic_us() / 1000 + close_ms;
        while (!(closed = rd_kafka_consumer_closed(rk))
               && mv_clock_monotonic_us() / 1000 < deadline)
        {
            ev = rd_kafka_queue_poll(q, 100);
            if (ev == NULL) {
                continue;
            }
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
                rd_kafka_assign(rk, NULL);
            }
            rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
    if (!closed && errs != NULL && errs->log != NULL) {
        mvw_log(errs->log, MVW_LOG_WARN, "%s: the consumer did not close "
                "within %d ms (the group coordinator did not answer); "
                "closing anyway", errs->prefix, close_ms);
    }
    rd_kafka_destroy_flags(rk,
                           closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}
