/*
 * kafka_common.h -- what every librdkafka handle of the worker shares
 * (the trainer's source, the feature worker's consumers and transactional
 * producer): building a configuration, reporting librdkafka's errors
 * through the worker's logger, and closing a consumer within a bound.
 *
 * Errors.  Each handle's opaque is an mvw_kafka_errors_t (owner points
 * back to the object that holds it, for its other callbacks): the error
 * callback counts every error, logs it rate-limited at warn ("PREFIX:
 * reason (CODE); retrying"), and keeps the text of a fatal error, after
 * which the handle is unusable and its owner reports it; librdkafka's own
 * log lines go to the debug level.  No global state.
 */
#ifndef MVW_KAFKA_COMMON_H
#define MVW_KAFKA_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "cli/logging.h"
#include "mv_common.h"

typedef struct mvw_kafka_errors {
    void             *owner;        /* the object the callbacks serve */
    const char       *prefix;       /* of log lines: "kafka", ... */
    const mvw_log_t  *log;          /* NULL: nothing logged */
    mvw_log_limit_t   lim;
    mvw_log_limit_t  *shared;       /* one limit for several handles of
                                       one worker; NULL: lim */
    uint64_t          count;        /* errors seen */
    char              fatal[256];   /* librdkafka's fatal error, or "" */
} mvw_kafka_errors_t;

/*
 * A configuration: bootstrap.servers = brokers, then each pair of
 * fixed[0 .. n_fixed) ({ name, value }), then extra ("name=value" strings,
 * NULL-terminated; NULL: none), with errs as the opaque and the error and
 * log callbacks above.  Returns it, or NULL with err naming the property
 * librdkafka refused and why.
 */
rd_kafka_conf_t *mvw_kafka_conf(const char *brokers,
    const char *const (*fixed)[2], size_t n_fixed, const char *const *extra,
    mvw_kafka_errors_t *errs, mv_err_t *err);

/* Sets one property of conf: MV_OK, or MV_ERR with librdkafka's reason. */
int mvw_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
    const char *value, mv_err_t *err);

/* The errs of a handle made from mvw_kafka_conf. */
mvw_kafka_errors_t *mvw_kafka_errors_of(const rd_kafka_t *rk);

/* What a transactional call's error asks of its caller. */
typedef enum mvw_txn_rc {
    MVW_TXN_OK = 0,            /* no error */
    MVW_TXN_RETRY,             /* retriable (a timeout): call it again */
    MVW_TXN_ABORT,             /* the transaction must be aborted */
    MVW_TXN_FATAL              /* the producer is unusable (fenced ...) */
} mvw_txn_rc_t;

/*
 * Classifies e, the error of a transactional call (NULL: none), and
 * destroys it: fatal, then requiring an abort, then retriable; anything
 * else is fatal.  Unless MVW_TXN_OK, err says "PREFIX: WHAT: librdkafka's
 * text", followed by fenced when the error says that a newer producer
 * with the same transactional id took over.
 */
mvw_txn_rc_t mvw_kafka_txn_result(rd_kafka_error_t *e, const char *prefix,
    const char *what, const char *fenced, mv_err_t *err);

/*
 * Keeps in errs the text of a fatal error that a consumer returned as a
 * message (m->err RD_KAFKA_RESP_ERR__FATAL: with its queues forwarded to
 * the consumer queue, librdkafka reports a fenced static member so,
 * without calling the error callback).  Returns 1 when m carried one
 * (the handle is then unusable), 0 otherwise.
 */
int mvw_kafka_note_fatal(rd_kafka_t *rk, const rd_kafka_message_t *m,
    mvw_kafka_errors_t *errs);

/*
 * Closes high-level consumer rk (leaving its group, answering the
 * revocation with an empty assignment) within close_ms, then destroys it;
 * past the bound (the group coordinator does not answer) it is destroyed
 * without waiting further, with a warning through errs' logger.
 */
void mvw_kafka_consumer_close(rd_kafka_t *rk, int close_ms);

#endif /* MVW_KAFKA_COMMON_H */
