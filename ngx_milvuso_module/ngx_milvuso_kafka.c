/*
 * ngx_milvuso_kafka.c -- Kafka as the transport of the write endpoints:
 * the milvuso_kafka directive and one librdkafka producer per worker
 * process.
 *
 * Records: an action goes to topic= (user_actions) keyed by its user id,
 * an item to items_topic= (features) keyed by its item id, so one user's
 * events stay in one partition, in order.  The value is the canonical JSON
 * payload the action log carries (shared/events_encode.c); the worker's
 * Kafka source reads it with the same parser as a log record.
 *
 * The producer is created in init_process (worker and single processes
 * only) with acks=all and enable.idempotence=true; a broker that is down
 * never fails the worker: librdkafka connects in the background, and the
 * writes queue meanwhile.  Delivery reports are served by rd_kafka_poll
 * from a cancelable nginx timer (every millisecond while a request waits
 * for one, every 50 ms otherwise).
 *
 *   ack=off  a write is answered 202 once librdkafka queued the record and
 *            it is applied to the zone then; a record that still fails to
 *            be delivered (after the message timeout, 300 s by default) is
 *            counted and logged, rate-limited.
 *            linger.ms defaults to 20 (librdkafka's: 5): fewer, larger
 *            produce requests, for the broker and for the worker's CPU;
 *            nobody waits for them (bench/http/bench_kafka.py: 0.47x ->
 *            0.52x of return 200 on 2 cores shared with the broker).
 *   ack=on   the request waits for the record's delivery report: delivered
 *            -> applied to the zone, 202; failed -> 503 (nothing applied;
 *            "possibly persisted" says so, since an idempotent producer
 *            that timed out may still have written it).  The message
 *            timeout is timeout= (5 s by default), so the report always
 *            comes (librdkafka looks for timed-out records once a
 *            second, so up to about a second later); a non-cancelable
 *            per-request timer three seconds later is the backstop (it
 *            answers 503 "may still be stored": a report it overtook is
 *            not spooled), and it keeps a worker that quits or reloads
 *            alive until its waiting requests are answered.  linger.ms
 *            defaults to 1: the request waits for the batch, and at 64
 *            connections the rate is 2.4x librdkafka's 5 ms default.
 *
 * A queue that is full (queue.buffering.max.messages) or a producer that
 * could not be created answers 503 at once.  The message opaque is never
 * request memory: a waiting request owns a small heap record (the wait)
 * that the report finds; a request terminated meanwhile unhooks itself
 * from its wait through a pool cleanup.  exit_process flushes what is
 * queued (at most NGX_MILVUSO_KAFKA_FLUSH_MS) so that reload and stop lose
 * nothing answered 202.
 *
 * The action log as Kafka's fallback.  Configured beside
 * milvuso_action_log, a record Kafka definitely did not take is appended
 * to the log instead (ngx_milvuso_log_write, the log's own path and sync=
 * semantics) and answered 202: refused at produce time (queue full, no
 * producer), or a delivery report that failed with the record not
 * possibly persisted (rd_kafka_message_status) -- with ack=on for the
 * waiting request (applied to the zone then, once), with ack=off for a
 * record already answered and applied (ngx_milvuso_log_spool, from the
 * report's copy of the payload; at exit, what the bounded flush left
 * queued is purged and spooled the same way).  A possibly persisted
 * failure is never spooled (the drain could then deliver it twice): with
 * ack=on it stays a 503 saying so, with ack=off it is logged as lost, as
 * without the log.  A waiting request that is gone (or answered by the
 * backstop) has nothing spooled: it was neither applied nor answered 202.
 * `milvuso-worker --worker-type drain` produces the log into Kafka once it
 * is back (worker/drain/drain.c).  Spooled records are counted
 * (kafka_spooled) and logged, rate-limited.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <librdkafka/rdkafka.h>

#include "ngx_milvuso.h"


#define NGX_MILVUSO_KAFKA_FLUSH_MS     5000
#define NGX_MILVUSO_KAFKA_LINGER_OFF   "20"      /* linger.ms, ack=off */
#define NGX_MILVUSO_KAFKA_LINGER_ON    "1"       /* linger.ms, ack=on */
#define NGX_MILVUSO_KAFKA_RECONNECT    "1000"    /* reconnect.backoff.max.ms */
#define NGX_MILVUSO_KAFKA_POLL_IDLE    50
#define NGX_MILVUSO_KAFKA_POLL_BUSY    1
#define NGX_MILVUSO_KAFKA_ACK_TIMEOUT  5000
#define NGX_MILVUSO_KAFKA_OFF_TIMEOUT  300000
#define NGX_MILVUSO_KAFKA_BACKSTOP     1000


/* A request waiting for its record's delivery report (ack=on). */
typedef struct {
    ngx_http_request_t        *r;        /* NULL once the request is gone */
    ngx_pool_cleanup_t        *cln;
    uint16_t                   type;     /* the record, for the fallback */
    const char                *payload;  /* in r->pool */
    size_t                     len;
    ngx_milvuso_log_apply_pt   apply;
    ngx_milvuso_log_done_pt    done;
    ngx_event_t                backstop;
    ngx_queue_t                queue;     /* in ngx_milvuso_kafka_waits */
} ngx_milvuso_kafka_wait_t;


static char *ngx_milvuso_kafka_set_props(ngx_conf_t *cf,
    ngx_milvuso_main_conf_t *mcf, rd_kafka_conf_t *conf, char *errstr,
    size_t errlen);
static void ngx_milvuso_kafka_delivered(rd_kafka_t *rk,
    const rd_kafka_message_t *m, void *opaque);
static void ngx_milvuso_kafka_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);
static void ngx_milvuso_kafka_poll(ngx_event_t *ev);
static void ngx_milvuso_kafka_backstop(ngx_event_t *ev);
static void ngx_milvuso_kafka_unhook(void *data);
static void ngx_milvuso_kafka_answer(ngx_milvuso_kafka_wait_t *w,
    ngx_int_t ok, const char *detail, ngx_uint_t maybe_stored);
static void ngx_milvuso_kafka_wait_free(ngx_milvuso_kafka_wait_t *w);
static ngx_int_t ngx_milvuso_kafka_spool(ngx_http_request_t *r,
    uint16_t type, const char *payload, size_t len, const char *why,
    ngx_milvuso_log_apply_pt apply, ngx_milvuso_log_done_pt done);
static void ngx_milvuso_kafka_spool_report(const rd_kafka_message_t *m);


/* per process */
static rd_kafka_t        *ngx_milvuso_kafka_rk;
static rd_kafka_topic_t  *ngx_milvuso_kafka_topics[2];  /* actions, items */
static ngx_event_t        ngx_milvuso_kafka_poll_ev;
static ngx_queue_t        ngx_milvuso_kafka_waits;
static ngx_uint_t         ngx_milvuso_kafka_n_waits;
static ngx_milvuso_zone_ctx_t  *ngx_milvuso_kafka_zone;
static ngx_milvuso_main_conf_t *ngx_milvuso_kafka_mcf;
/* rate limits: one line a second per call site */
static time_t             ngx_milvuso_kafka_logged_error;
static time_t             ngx_milvuso_kafka_logged_failed;
static time_t             ngx_milvuso_kafka_logged_refused;
static time_t             ngx_milvuso_kafka_logged_spooled;
static u_char             ngx_milvuso_kafka_why[256];   /* when no producer */
static ngx_uint_t         ngx_milvuso_kafka_exiting;


/* Properties the directive's own parameters own. */
static const char  *ngx_milvuso_kafka_owned[] = {
    "bootstrap.servers", "metadata.broker.list", "acks",
    "request.required.acks", "enable.idempotence", "message.timeout.ms",
    "delivery.timeout.ms", NULL
};


/*
 * milvuso_kafka brokers=HOST:PORT[,...] [topic=NAME] [items_topic=NAME]
 *     [ack=on|off] [timeout=TIME] [PROPERTY=VALUE ...]: checked whole at
 * configuration time (nginx -t), the librdkafka properties included (each
 * is set on a throw-away configuration, which validates names and values).
 */
char *
ngx_milvuso_kafka_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_milvuso_main_conf_t *mcf = conf;

    char              errstr[512];
    char             *rv;
    u_char           *eq;
    ngx_str_t        *value, s;
    ngx_uint_t        i, k;
    ngx_keyval_t     *kv;
    rd_kafka_conf_t  *kconf;

    if (mcf->kafka_brokers.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mcf->kafka_props = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
    if (mcf->kafka_props == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');
        if (eq == NULL || eq == value[i].data
            || eq == value[i].data + value[i].len - 1)
        {
            goto invalid;
        }

        s.data = eq + 1;
        s.len = value[i].data + value[i].len - s.data;

        if (ngx_strncmp(value[i].data, "brokers=", 8) == 0) {
            mcf->kafka_brokers = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "topic=", 6) == 0) {
            mcf->kafka_topic = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "items_topic=", 12) == 0) {
            mcf->kafka_items_topic = s;
            continue;
        }

        if (ngx_strcmp(value[i].data, "ack=on") == 0) {
            mcf->kafka_ack = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "ack=off") == 0) {
            mcf->kafka_ack = 0;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ack=", 4) == 0) {
            goto invalid;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            mcf->kafka_timeout = ngx_parse_time(&s, 0);
            if (mcf->kafka_timeout == (ngx_msec_t) NGX_ERROR
                || mcf->kafka_timeout < 1 || mcf->kafka_timeout > 3600000)
            {
                goto invalid;
            }
            continue;
        }

        /* a librdkafka property */
        for (k = 0; ngx_milvuso_kafka_owned[k]; k++) {
            if ((size_t) (eq - value[i].data)
                    == ngx_strlen(ngx_milvuso_kafka_owned[k])
                && ngx_strncmp(value[i].data, ngx_milvuso_kafka_owned[k],
                               eq - value[i].data) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": the property \"%s\" is set by "
                                   "milvuso_kafka itself (brokers=, ack=, "
                                   "timeout=; acks=all and idempotence "
                                   "always)", &value[i],
                                   ngx_milvuso_kafka_owned[k]);
                return NGX_CONF_ERROR;
            }
        }

        kv = ngx_array_push(mcf->kafka_props);
        if (kv == NULL) {
            return NGX_CONF_ERROR;
        }

        kv->key.len = eq - value[i].data;
        kv->key.data = ngx_pnalloc(cf->pool, kv->key.len + 1);
        if (kv->key.data == NULL) {
            return NGX_CONF_ERROR;
        }
        *ngx_cpymem(kv->key.data, value[i].data, kv->key.len) = '\0';
        kv->value = s;                  /* NUL-terminated: the argument's */
    }

    if (mcf->kafka_brokers.len == 0) {
        return "needs brokers=HOST:PORT[,...]";
    }

    if (mcf->kafka_topic.len == 0) {
        ngx_str_set(&mcf->kafka_topic, "user_actions");
    }

    if (mcf->kafka_items_topic.len == 0) {
        ngx_str_set(&mcf->kafka_items_topic, "features");
    }

    if (mcf->kafka_topic.len > MV_SNAPSHOT_STREAM_MAX
        || mcf->kafka_items_topic.len > MV_SNAPSHOT_STREAM_MAX)
    {
        return "has a topic name longer than "
               NGX_MILVUSO_STRINGIFY(MV_SNAPSHOT_STREAM_MAX) " bytes (the "
               "trainer stores each topic's position under its name)";
    }

    if (mcf->kafka_topic.len == mcf->kafka_items_topic.len
        && ngx_strncmp(mcf->kafka_topic.data, mcf->kafka_items_topic.data,
                       mcf->kafka_topic.len) == 0)
    {
        return "needs two different topics for actions and items";
    }

    if (mcf->kafka_ack == NGX_CONF_UNSET) {
        mcf->kafka_ack = 0;
    }

    if (mcf->kafka_timeout == NGX_CONF_UNSET_MSEC) {
        mcf->kafka_timeout = mcf->kafka_ack ? NGX_MILVUSO_KAFKA_ACK_TIMEOUT
                                            : NGX_MILVUSO_KAFKA_OFF_TIMEOUT;
    }

    /* the whole producer configuration, on a throw-away copy */
    kconf = rd_kafka_conf_new();
    rv = ngx_milvuso_kafka_set_props(cf, mcf, kconf, errstr, sizeof(errstr));
    rd_kafka_conf_destroy(kconf);

    return rv;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * Sets the producer's properties on conf: the fixed ones, linger.ms by
 * ack= and reconnect.backoff.max.ms (the directive's own name=value
 * overrides either), then the directive's.  cf non-NULL: a refusal is
 * reported there and NGX_CONF_ERROR returned; cf NULL: errstr says why.
 *
 * reconnect.backoff.max.ms: 1 s instead of librdkafka's 10 s.  librdkafka
 * 2.0.2 times records out in the broker's thread, which sleeps through its
 * reconnect backoff while the broker is down: with 10 s, a record's
 * failed delivery report came up to 10 s after timeout=, past the
 * backstop, so a record Kafka never had was answered 503 "may still be
 * stored" instead of its report's verdict (and, with the log as the
 * fallback, not spooled).
 */
static char *
ngx_milvuso_kafka_set_props(ngx_conf_t *cf, ngx_milvuso_main_conf_t *mcf,
    rd_kafka_conf_t *conf, char *errstr, size_t errlen)
{
    u_char         brokers[1024], timeout[NGX_INT_T_LEN + 1];
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    if (mcf->kafka_brokers.len >= sizeof(brokers)) {
        ngx_cpystrn((u_char *) errstr, (u_char *) "brokers= is too long",
                    errlen);
        goto failed;
    }

    ngx_cpystrn(brokers, mcf->kafka_brokers.data,
                mcf->kafka_brokers.len + 1);
    *ngx_sprintf(timeout, "%M", mcf->kafka_timeout) = '\0';

    if (rd_kafka_conf_set(conf, "bootstrap.servers", (char *) brokers,
                          errstr, errlen) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "acks", "all", errstr, errlen)
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                             errlen) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "message.timeout.ms", (char *) timeout,
                             errstr, errlen) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "linger.ms",
                             mcf->kafka_ack ? NGX_MILVUSO_KAFKA_LINGER_ON
                                            : NGX_MILVUSO_KAFKA_LINGER_OFF,
                             errstr, errlen) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "reconnect.backoff.max.ms",
                             NGX_MILVUSO_KAFKA_RECONNECT, errstr, errlen)
           != RD_KAFKA_CONF_OK)
    {
        goto failed;
    }

    kv = mcf->kafka_props->elts;

    for (i = 0; i < mcf->kafka_props->nelts; i++) {
        if (rd_kafka_conf_set(conf, (char *) kv[i].key.data,
                              (char *) kv[i].value.data, errstr, errlen)
            != RD_KAFKA_CONF_OK)
        {
            if (cf) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "milvuso_kafka: \"%V=%V\": %s",
                                   &kv[i].key, &kv[i].value, errstr);
                return NGX_CONF_ERROR;
            }
            goto failed;
        }
    }

    return NGX_CONF_OK;

failed:

    if (cf) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "milvuso_kafka: %s", errstr);
    }

    return NGX_CONF_ERROR;
}


/*
 * Creates this process's producer (init_process, worker and single
 * processes).  Never fails the process: a producer that cannot be made is
 * logged and every write answers 503 saying why.
 */
ngx_int_t
ngx_milvuso_kafka_init_process(ngx_cycle_t *cycle,
    ngx_milvuso_main_conf_t *mcf)
{
    char              errstr[512], topic[MV_SNAPSHOT_STREAM_MAX + 1];
    ngx_str_t        *names[2];
    ngx_uint_t        i;
    rd_kafka_conf_t  *conf;

    ngx_queue_init(&ngx_milvuso_kafka_waits);
    ngx_milvuso_kafka_n_waits = 0;
    ngx_milvuso_kafka_zone = mcf->shm_zone->data;
    ngx_milvuso_kafka_mcf = mcf;

    conf = rd_kafka_conf_new();

    if (ngx_milvuso_kafka_set_props(NULL, mcf, conf, errstr, sizeof(errstr))
        != NGX_CONF_OK)
    {
        rd_kafka_conf_destroy(conf);
        goto failed;
    }

    rd_kafka_conf_set_dr_msg_cb(conf, ngx_milvuso_kafka_delivered);
    rd_kafka_conf_set_error_cb(conf, ngx_milvuso_kafka_error);
    rd_kafka_conf_set_opaque(conf, cycle->log);

    /* rd_kafka_new takes conf on success only */
    ngx_milvuso_kafka_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                        sizeof(errstr));
    if (ngx_milvuso_kafka_rk == NULL) {
        rd_kafka_conf_destroy(conf);
        goto failed;
    }

    names[0] = &mcf->kafka_topic;
    names[1] = &mcf->kafka_items_topic;

    for (i = 0; i < 2; i++) {
        ngx_cpystrn((u_char *) topic, names[i]->data, names[i]->len + 1);

        ngx_milvuso_kafka_topics[i] = rd_kafka_topic_new(
                                          ngx_milvuso_kafka_rk, topic, NULL);
        if (ngx_milvuso_kafka_topics[i] == NULL) {
            ngx_snprintf((u_char *) errstr, sizeof(errstr), "topic \"%s\": "
                         "%s%Z", topic, rd_kafka_err2str(rd_kafka_last_error()));
            ngx_milvuso_kafka_exit_process();
            goto failed;
        }
    }

    ngx_milvuso_kafka_poll_ev.handler = ngx_milvuso_kafka_poll;
    ngx_milvuso_kafka_poll_ev.log = cycle->log;
    /* not NULL: nginx's timer debug lines read ev->data as a connection */
    ngx_milvuso_kafka_poll_ev.data = mcf;
    ngx_milvuso_kafka_poll_ev.cancelable = 1;
    ngx_add_timer(&ngx_milvuso_kafka_poll_ev, NGX_MILVUSO_KAFKA_POLL_IDLE);

    return NGX_OK;

failed:

    ngx_cpystrn(ngx_milvuso_kafka_why, (u_char *) errstr,
                sizeof(ngx_milvuso_kafka_why));
    ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                  "milvuso: no Kafka producer (%s); POST /actions and "
                  "/items answer 503", errstr);
    return NGX_OK;
}


/*
 * Flushes what is queued (at most NGX_MILVUSO_KAFKA_FLUSH_MS) and destroys
 * the producer.  Requests still waiting are not answered any more (the
 * process is going); their reports, if any come, only count.
 */
void
ngx_milvuso_kafka_exit_process(void)
{
    int                        left;
    ngx_uint_t                 i;
    ngx_queue_t               *q;
    ngx_milvuso_kafka_wait_t  *w;

    if (ngx_milvuso_kafka_rk == NULL) {
        return;
    }

    for (q = ngx_queue_head(&ngx_milvuso_kafka_waits);
         q != ngx_queue_sentinel(&ngx_milvuso_kafka_waits);
         q = ngx_queue_next(q))
    {
        w = ngx_queue_data(q, ngx_milvuso_kafka_wait_t, queue);
        if (w->r) {
            w->cln->handler = NULL;
            w->r = NULL;
        }
        if (w->backstop.timer_set) {
            ngx_del_timer(&w->backstop);
        }
    }

    if (rd_kafka_flush(ngx_milvuso_kafka_rk, NGX_MILVUSO_KAFKA_FLUSH_MS)
        != RD_KAFKA_RESP_ERR_NO_ERROR
        && ngx_milvuso_kafka_mcf->log_dir.len)
    {
        /* what was never sent goes to the log (the reports of the purged
           records are served here, spooled at once: exiting) */
        (void) rd_kafka_purge(ngx_milvuso_kafka_rk, RD_KAFKA_PURGE_F_QUEUE);
        ngx_milvuso_kafka_exiting = 1;
        (void) rd_kafka_poll(ngx_milvuso_kafka_rk, 100);
    }

    if (rd_kafka_outq_len(ngx_milvuso_kafka_rk) > 0) {
        left = rd_kafka_outq_len(ngx_milvuso_kafka_rk);
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "milvuso: %d Kafka record(s) still undelivered after "
                      "%d ms at exit: they are lost", left,
                      NGX_MILVUSO_KAFKA_FLUSH_MS);
    }

    for (i = 0; i < 2; i++) {
        if (ngx_milvuso_kafka_topics[i]) {
            rd_kafka_topic_destroy(ngx_milvuso_kafka_topics[i]);
            ngx_milvuso_kafka_topics[i] = NULL;
        }
    }

    rd_kafka_destroy(ngx_milvuso_kafka_rk);
    ngx_milvuso_kafka_rk = NULL;

    while (!ngx_queue_empty(&ngx_milvuso_kafka_waits)) {
        q = ngx_queue_head(&ngx_milvuso_kafka_waits);
        w = ngx_queue_data(q, ngx_milvuso_kafka_wait_t, queue);
        ngx_milvuso_kafka_wait_free(w);
    }
}


/* The cancelable poll timer: serves delivery reports and errors. */
static void
ngx_milvuso_kafka_poll(ngx_event_t *ev)
{
    if (ngx_milvuso_kafka_rk == NULL) {
        return;
    }

    (void) rd_kafka_poll(ngx_milvuso_kafka_rk, 0);

    ngx_add_timer(ev, ngx_milvuso_kafka_n_waits
                      ? NGX_MILVUSO_KAFKA_POLL_BUSY
                      : NGX_MILVUSO_KAFKA_POLL_IDLE);
}


/* librdkafka's error callback (from rd_kafka_poll): logged, rate-limited. */
static void
ngx_milvuso_kafka_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_log_t  *log = opaque;

    if (ngx_time() == ngx_milvuso_kafka_logged_error) {
        return;
    }

    ngx_milvuso_kafka_logged_error = ngx_time();
    ngx_log_error(NGX_LOG_ERR, log, 0, "milvuso: Kafka: %s: %s",
                  rd_kafka_err2name(err), reason);
}


/*
 * A record's delivery report (from rd_kafka_poll, in the event loop):
 * counted; a failure logged, rate-limited; a waiting request answered.
 */
static void
ngx_milvuso_kafka_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque)
{
    u_char                     detail[300];
    ngx_uint_t                 maybe;
    ngx_milvuso_shctx_t       *sh = ngx_milvuso_kafka_zone->sh;
    ngx_milvuso_kafka_wait_t  *w = m->_private;

    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        (void) ngx_atomic_fetch_add(&sh->kafka_delivered, 1);

        if (w) {
            ngx_milvuso_kafka_answer(w, 1, NULL, 0);
        }
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->kafka_failed, 1);

    maybe = (rd_kafka_message_status(m)
             == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED);
    *ngx_snprintf(detail, sizeof(detail) - 1, "Kafka did not confirm the "
                  "record (%s)%s", rd_kafka_err2str(m->err),
                  maybe ? "; it may still have been stored" : "") = '\0';

    if (!maybe && ngx_milvuso_kafka_mcf->log_dir.len) {
        if (w == NULL) {
            ngx_milvuso_kafka_spool_report(m);   /* answered 202 already */
            return;
        }
        if (w->r) {
            ngx_milvuso_kafka_answer(w, 0, (char *) detail, 0);
            return;
        }
    }

    if (ngx_time() != ngx_milvuso_kafka_logged_failed) {
        ngx_milvuso_kafka_logged_failed = ngx_time();
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "milvuso: topic \"%s\": %s%s",
                      rd_kafka_topic_name(m->rkt), detail,
                      w ? "" : " (answered 202 with ack=off)");
    }

    if (w) {
        ngx_milvuso_kafka_answer(w, 0, (char *) detail, maybe);
    }
}


/*
 * Answers (or, for a request gone meanwhile, only forgets) a wait once its
 * report came: ok -> apply, done(NGX_OK); a failure that was not
 * possibly stored, with the log configured -> the record goes to the log
 * (ngx_milvuso_kafka_spool: apply and done from there); else
 * done(NGX_ERROR) with the detail (and whether the record may have been
 * stored all the same) in the request's context.  Frees the wait.
 */
static void
ngx_milvuso_kafka_answer(ngx_milvuso_kafka_wait_t *w, ngx_int_t ok,
    const char *detail, ngx_uint_t maybe_stored)
{
    ngx_connection_t       *c;
    ngx_http_request_t     *r = w->r;
    ngx_milvuso_req_ctx_t  *ctx;

    if (r == NULL) {
        ngx_milvuso_kafka_wait_free(w);
        return;
    }

    w->cln->handler = NULL;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);

    if (ok) {
        w->apply(r, 0);
        w->done(r, NGX_OK, 0);

    } else if (!maybe_stored && ngx_milvuso_kafka_mcf->log_dir.len) {
        if (ngx_milvuso_kafka_spool(r, w->type, w->payload, w->len, detail,
                                    w->apply, w->done)
            == NGX_ERROR)
        {
            w->done(r, NGX_ERROR, 0);
        }

    } else {
        ctx->maybe_stored = maybe_stored ? 1 : 0;
        ctx->refusal = ngx_pnalloc(r->pool, ngx_strlen(detail) + 1);
        if (ctx->refusal) {
            ngx_cpystrn((u_char *) ctx->refusal, (u_char *) detail,
                        ngx_strlen(detail) + 1);
        }
        w->done(r, NGX_ERROR, 0);
    }

    ngx_milvuso_kafka_wait_free(w);
    ngx_http_run_posted_requests(c);
}


/* The backstop: the report is overdue (librdkafka promised it by the
   message timeout).  Answers 503; the wait stays for the late report. */
static void
ngx_milvuso_kafka_backstop(ngx_event_t *ev)
{
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_milvuso_req_ctx_t     *ctx;
    ngx_milvuso_kafka_wait_t  *w = ev->data;

    r = w->r;
    if (r == NULL) {
        return;
    }

    w->cln->handler = NULL;
    w->r = NULL;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    ctx->refusal = "Kafka sent no delivery report in time; the record may "
                   "still be stored";
    ctx->maybe_stored = 1;

    w->done(r, NGX_ERROR, 0);
    ngx_http_run_posted_requests(c);
}


/* A waiting request's pool cleanup: the request is gone. */
static void
ngx_milvuso_kafka_unhook(void *data)
{
    ngx_milvuso_kafka_wait_t  *w = data;

    w->r = NULL;
}


static void
ngx_milvuso_kafka_wait_free(ngx_milvuso_kafka_wait_t *w)
{
    if (w->backstop.timer_set) {
        ngx_del_timer(&w->backstop);
    }

    ngx_queue_remove(&w->queue);
    ngx_milvuso_kafka_n_waits--;
    ngx_free(w);
}


/*
 * Hands a record to Kafka: type MV_RECORD_ACTION goes to topic=, an item to
 * items_topic=, keyed by key.  ack=off: queued -> apply(r, 0) then
 * done(r, NGX_OK, 0) before this returns NGX_OK.  ack=on: returns NGX_AGAIN
 * and both run from the delivery report (or done(r, NGX_ERROR, 0) alone
 * when delivery failed).  Not queued (queue full, no producer): done(r,
 * NGX_ERROR, 0) with ctx->refusal set, NGX_OK.  With milvuso_action_log
 * configured, what Kafka definitely did not take goes to the log instead
 * (see the top) and this returns what ngx_milvuso_log_write returns.
 * NGX_ERROR: out of memory, nothing queued, neither called.
 */
ngx_int_t
ngx_milvuso_kafka_write(ngx_http_request_t *r, uint16_t type,
    const char *payload, size_t len, const char *key,
    ngx_milvuso_log_apply_pt apply, ngx_milvuso_log_done_pt done)
{
    rd_kafka_resp_err_t        err;
    ngx_milvuso_shctx_t       *sh;
    ngx_milvuso_req_ctx_t     *ctx;
    ngx_milvuso_main_conf_t   *mcf;
    ngx_milvuso_kafka_wait_t  *w;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    sh = ((ngx_milvuso_zone_ctx_t *) mcf->shm_zone->data)->sh;

    if (ngx_milvuso_kafka_rk == NULL) {
        (void) ngx_atomic_fetch_add(&sh->kafka_refused, 1);
        if (mcf->log_dir.len) {
            return ngx_milvuso_kafka_spool(r, type, payload, len,
                                           (char *) ngx_milvuso_kafka_why,
                                           apply, done);
        }
        ctx->refusal = (char *) ngx_milvuso_kafka_why;
        done(r, NGX_ERROR, 0);
        return NGX_OK;
    }

    w = NULL;

    if (mcf->kafka_ack) {
        w = ngx_calloc(sizeof(ngx_milvuso_kafka_wait_t), r->connection->log);
        if (w == NULL) {
            return NGX_ERROR;
        }

        w->cln = ngx_pool_cleanup_add(r->pool, 0);
        if (w->cln == NULL) {
            ngx_free(w);
            return NGX_ERROR;
        }

        w->r = r;
        w->type = type;
        w->payload = payload;
        w->len = len;
        w->apply = apply;
        w->done = done;
        w->cln->handler = ngx_milvuso_kafka_unhook;
        w->cln->data = w;
    }

    if (rd_kafka_produce(ngx_milvuso_kafka_topics[type == MV_RECORD_ITEM],
                         RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                         (void *) payload, len, key, ngx_strlen(key), w)
        != 0)
    {
        err = rd_kafka_last_error();

        if (w) {
            w->cln->handler = NULL;
            ngx_free(w);
        }

        (void) ngx_atomic_fetch_add(&sh->kafka_refused, 1);

        if (ngx_time() != ngx_milvuso_kafka_logged_refused) {
            ngx_milvuso_kafka_logged_refused = ngx_time();
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "milvuso: Kafka refused a record: %s",
                          rd_kafka_err2str(err));
        }

        ctx->refusal = (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                       ? "the Kafka producer's queue is full"
                       : "Kafka refused the record";
        if (mcf->log_dir.len) {
            return ngx_milvuso_kafka_spool(r, type, payload, len,
                                           ctx->refusal, apply, done);
        }
        done(r, NGX_ERROR, 0);
        return NGX_OK;
    }

    (void) ngx_atomic_fetch_add(&sh->kafka_queued, 1);

    if (w == NULL) {
        apply(r, 0);
        done(r, NGX_OK, 0);
        return NGX_OK;
    }

    ngx_queue_insert_tail(&ngx_milvuso_kafka_waits, &w->queue);
    ngx_milvuso_kafka_n_waits++;

    w->backstop.handler = ngx_milvuso_kafka_backstop;
    w->backstop.data = w;
    w->backstop.log = r->connection->log;
    ngx_add_timer(&w->backstop,
                  mcf->kafka_timeout + NGX_MILVUSO_KAFKA_BACKSTOP);

    /* deliver reports promptly while someone waits */
    if (ngx_milvuso_kafka_poll_ev.timer_set) {
        ngx_del_timer(&ngx_milvuso_kafka_poll_ev);
    }
    ngx_add_timer(&ngx_milvuso_kafka_poll_ev, NGX_MILVUSO_KAFKA_POLL_BUSY);

    return NGX_AGAIN;
}


/*
 * The log as Kafka's fallback for a request (see the top): the record goes
 * through the log's own path (ngx_milvuso_log_write: apply and done from
 * there, counted as spooled), logged at most once a second.  Returns what
 * ngx_milvuso_log_write returns.
 */
static ngx_int_t
ngx_milvuso_kafka_spool(ngx_http_request_t *r, uint16_t type,
    const char *payload, size_t len, const char *why,
    ngx_milvuso_log_apply_pt apply, ngx_milvuso_log_done_pt done)
{
    ngx_milvuso_req_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    ctx->spooled = 1;

    if (ngx_time() != ngx_milvuso_kafka_logged_spooled) {
        ngx_milvuso_kafka_logged_spooled = ngx_time();
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "milvuso: Kafka did not take a record (%s); it goes "
                      "to the action log \"%V\" for the drain", why,
                      &ngx_milvuso_kafka_mcf->log_dir);
    }

    return ngx_milvuso_log_write(r, type, payload, len, apply, done);
}


/*
 * The log as Kafka's fallback for a record answered 202 with ack=off whose
 * delivery then failed, not possibly persisted: appended from the
 * report's payload (ngx_milvuso_log_spool; at once when exiting).
 */
static void
ngx_milvuso_kafka_spool_report(const rd_kafka_message_t *m)
{
    uint16_t  type;

    type = (m->rkt == ngx_milvuso_kafka_topics[1]) ? MV_RECORD_ITEM
                                                   : MV_RECORD_ACTION;

    if (ngx_time() != ngx_milvuso_kafka_logged_spooled) {
        ngx_milvuso_kafka_logged_spooled = ngx_time();
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "milvuso: topic \"%s\": Kafka did not take a record "
                      "answered 202 (%s); it goes to the action log \"%V\" "
                      "for the drain", rd_kafka_topic_name(m->rkt),
                      rd_kafka_err2str(m->err),
                      &ngx_milvuso_kafka_mcf->log_dir);
    }

    (void) ngx_milvuso_log_spool(ngx_cycle->log, ngx_milvuso_kafka_mcf, type,
                                 m->payload, m->len,
                                 ngx_milvuso_kafka_exiting);
}


/* How many records this process still has queued or in flight. */
ngx_uint_t
ngx_milvuso_kafka_outq(void)
{
    return ngx_milvuso_kafka_rk ? rd_kafka_outq_len(ngx_milvuso_kafka_rk)
                                : 0;
}
