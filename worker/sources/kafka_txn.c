/*
 * kafka_txn.c -- the transaction state machine of the feature worker and
 * the drain (see kafka_txn.h for the states and why the role's callbacks
 * come only after Kafka's confirmation).
 */
#include <stdio.h>
#include <string.h>

#include "sources/kafka_txn.h"

#define CALL_MS       2000          /* one transactional call */
#define ERROR_LOG_MS  10000


static int64_t
now_ms(void)
{
    return mv_clock_monotonic_us() / 1000;
}


void
mvw_kafka_txn_init(mvw_kafka_txn_t *t, rd_kafka_t *producer,
    const mvw_kafka_txn_texts_t *texts, const mvw_kafka_txn_ops_t *ops,
    void *ctx, const mvw_log_t *log, mvw_log_limit_t *lim,
    mvw_log_limit_t *lim_delivery)
{
    t->producer = producer;
    t->texts = texts;
    t->log = log;
    t->lim = lim;
    t->lim_delivery = lim_delivery;
    t->ops = ops;
    t->ctx = ctx;
    t->state = MVW_KAFKA_TXN_NONE;
    t->opened_ms = 0;
    t->prepared = 0;
    t->offsets_sent = 0;
}


mvw_txn_rc_t
mvw_kafka_txn_call(mvw_kafka_txn_t *t, rd_kafka_error_t *e, const char *what,
    mv_err_t *err)
{
    mvw_txn_rc_t  rc;

    rc = mvw_kafka_txn_result(e, t->texts->prefix, what, t->texts->fenced,
                              err);
    if ((rc == MVW_TXN_RETRY || rc == MVW_TXN_ABORT) && t->log != NULL) {
        mvw_log_every(t->log, t->lim, ERROR_LOG_MS, MVW_LOG_WARN, "%s%s",
                      err->msg, rc == MVW_TXN_RETRY ? "; retrying"
                                                    : "; aborting it");
    }
    return rc;
}


int
mvw_kafka_txn_start(mvw_kafka_txn_t *t, int ms, mv_err_t *err)
{
    switch (mvw_kafka_txn_call(t, rd_kafka_init_transactions(t->producer, ms),
                               "getting the transactional producer id", err))
    {
    case MVW_TXN_OK:
        return 1;
    case MVW_TXN_FATAL:
        return MV_ERR;
    default:
        return 0;
    }
}


int
mvw_kafka_txn_begin(mvw_kafka_txn_t *t, mv_err_t *err)
{
    if (mvw_kafka_txn_call(t, rd_kafka_begin_transaction(t->producer),
                           "beginning a transaction", err) != MVW_TXN_OK)
    {
        return MV_ERR;
    }
    t->state = MVW_KAFKA_TXN_OPEN;
    t->opened_ms = now_ms();
    return MV_OK;
}


mvw_kafka_txn_state_t
mvw_kafka_txn_state(const mvw_kafka_txn_t *t)
{
    return t->state;
}


int
mvw_kafka_txn_due(const mvw_kafka_txn_t *t, uint64_t n, uint64_t max_n,
    int64_t interval_ms)
{
    return t->state == MVW_KAFKA_TXN_OPEN
           && (n >= max_n || now_ms() - t->opened_ms >= interval_ms);
}


/* Back to NONE, nothing sent for the next transaction. */
static void
txn_clear(mvw_kafka_txn_t *t)
{
    t->state = MVW_KAFKA_TXN_NONE;
    t->prepared = 0;
    t->offsets_sent = 0;
}


int
mvw_kafka_txn_abort(mvw_kafka_txn_t *t, mv_err_t *err)
{
    t->state = MVW_KAFKA_TXN_ABORTING;
    switch (mvw_kafka_txn_call(t, rd_kafka_abort_transaction(t->producer,
                                                             CALL_MS),
                               "aborting a transaction", err))
    {
    case MVW_TXN_OK:
        break;
    case MVW_TXN_RETRY:
        return 0;
    default:
        return MV_ERR;
    }
    txn_clear(t);
    return t->ops->aborted(t->ctx, err) == MV_OK ? 0 : MV_ERR;
}


/* What an error of the offsets or the commit call asks: 0 retry, the
   abort's result, or MV_ERR. */
static int
after_error(mvw_kafka_txn_t *t, mvw_txn_rc_t rc, mv_err_t *err)
{
    return rc == MVW_TXN_RETRY ? 0
           : rc == MVW_TXN_ABORT ? mvw_kafka_txn_abort(t, err) : MV_ERR;
}


int
mvw_kafka_txn_commit(mvw_kafka_txn_t *t, mv_err_t *err)
{
    mvw_txn_rc_t  rc;

    t->state = MVW_KAFKA_TXN_COMMITTING;
    if (!t->prepared && t->ops->prepare != NULL) {
        if (t->ops->prepare(t->ctx, err) != MV_OK) {
            if (t->log != NULL) {
                mvw_log_every(t->log, t->lim, ERROR_LOG_MS, MVW_LOG_WARN,
                              "%s; aborting it", err->msg);
            }
            return mvw_kafka_txn_abort(t, err);
        }
    }
    t->prepared = 1;
    if (!t->offsets_sent) {
        rc = mvw_kafka_txn_call(t, t->ops->send_offsets(t->ctx, t->producer,
                                                        CALL_MS),
                                t->texts->offsets, err);
        if (rc != MVW_TXN_OK) {
            return after_error(t, rc, err);
        }
        t->offsets_sent = 1;
    }
    rc = mvw_kafka_txn_call(t, rd_kafka_commit_transaction(t->producer,
                                                           CALL_MS),
                            "committing a transaction", err);
    if (rc != MVW_TXN_OK) {
        return after_error(t, rc, err);
    }
    txn_clear(t);
    t->ops->committed(t->ctx);
    return 0;
}


void
mvw_kafka_txn_mark_abort(mvw_kafka_txn_t *t)
{
    t->state = MVW_KAFKA_TXN_ABORTING;
}


int
mvw_kafka_txn_continue(mvw_kafka_txn_t *t, mv_err_t *err)
{
    return t->state == MVW_KAFKA_TXN_ABORTING ? mvw_kafka_txn_abort(t, err)
                                              : mvw_kafka_txn_commit(t, err);
}


int
mvw_kafka_txn_settle(mvw_kafka_txn_t *t, int64_t ms, mv_err_t *err)
{
    int64_t  end = now_ms() + ms;

    while (t->state != MVW_KAFKA_TXN_NONE) {
        if (mvw_kafka_txn_continue(t, err) != 0) {
            return MV_ERR;
        }
        if (t->state == MVW_KAFKA_TXN_NONE) {
            break;
        }
        rd_kafka_poll(t->producer, 100);        /* not a busy retry */
        if (now_ms() >= end) {
            return mv_err_set(err, "%s: the open transaction was not "
                              "settled within %lld ms (%s at the next "
                              "start)", t->texts->prefix, (long long) ms,
                              t->texts->again);
        }
    }
    return MV_OK;
}


void
mvw_kafka_txn_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque)
{
    mvw_kafka_errors_t  *errs = opaque;
    mvw_kafka_txn_t     *t = errs->owner;

    (void) rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    errs->count++;
    if (t->log != NULL && m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE) {
        mvw_log_every(t->log, t->lim_delivery, ERROR_LOG_MS, MVW_LOG_WARN,
                      "%s: a record to %s was not taken: %s",
                      t->texts->prefix,
                      m->rkt ? rd_kafka_topic_name(m->rkt) : "-",
                      rd_kafka_err2str(m->err));
    }
}
