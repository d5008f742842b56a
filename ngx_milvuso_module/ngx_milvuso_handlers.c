/*
 * ngx_milvuso_handlers.c -- the write endpoints POST /actions and
 * POST /items, and the read-outs /health and /metrics.
 *
 * A write is validated whole (shared/events.c) before anything happens;
 * then it is appended to the action log (when one is configured) and only
 * then applied to the zone, so what the trainer reads is exactly what was
 * applied, and a request refused for any reason has changed nothing.  The
 * append happens under the log's own lock (ngx_milvuso_actlog.c), never
 * under the zone's mutex that the reads take, and with sync=on in a thread
 * of the pool: each write endpoint is three steps, the body (validate,
 * encode, hand to the log), *_apply (to the zone, once the record is
 * written, even for a request terminated meanwhile) and *_logged (the
 * answer).
 *
 * Every write that reaches the stream raises the zone's last_accept_ms;
 * /health ("trainer") and /metrics compare it with the mapped model's
 * created_at: what was accepted after the model was made waits for the
 * trainer, and past milvuso_snapshot's behind= the trainer is behind.
 * That is reported, never turned into a failure: nginx keeps accepting
 * and serving.
 *
 * The plumbing (bodies, answers, errors, counters) is ngx_milvuso_request.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_milvuso.h"


static void ngx_milvuso_actions_body(ngx_http_request_t *r);
static void ngx_milvuso_action_apply(ngx_http_request_t *r, uint64_t pos);
static void ngx_milvuso_action_logged(ngx_http_request_t *r, ngx_int_t rc,
    uint64_t pos);
static void ngx_milvuso_items_body(ngx_http_request_t *r);
static void ngx_milvuso_item_apply(ngx_http_request_t *r, uint64_t pos);
static void ngx_milvuso_item_logged(ngx_http_request_t *r, ngx_int_t rc,
    uint64_t pos);
static void ngx_milvuso_post_to_log(ngx_http_request_t *r, void *event,
    uint16_t type, const char *key, const char *payload, size_t plen,
    ngx_milvuso_log_apply_pt apply, ngx_milvuso_log_done_pt done);
static void ngx_milvuso_answer_logged(ngx_http_request_t *r,
    ngx_int_t logged, const char *what, const char *event_id,
    const char *item_id, int retry_key);
static void ngx_milvuso_make_event_id(ngx_milvuso_zone_ctx_t *z, char *buf);
static void ngx_milvuso_accepted(ngx_http_request_t *r,
    ngx_milvuso_main_conf_t *mcf);
static ngx_int_t ngx_milvuso_trainer_lag(ngx_milvuso_main_conf_t *mcf,
    ngx_milvuso_zone_ctx_t *z, ngx_milvuso_proc_t *pr, int64_t now,
    ngx_uint_t *behind);


static void
ngx_milvuso_make_event_id(ngx_milvuso_zone_ctx_t *z, char *buf)
{
    uint64_t  seq;

    seq = (uint64_t) ngx_atomic_fetch_add(&z->sh->event_seq, 1);

    /* 12 hex digits of unix ms, 8 of the zone's sequence: 20 id bytes */
    *ngx_sprintf((u_char *) buf, "%012xL%08xD",
                 (uint64_t) mv_clock_realtime_ms(), (uint32_t) seq) = '\0';
}


ngx_int_t
ngx_milvuso_actions_handler(ngx_http_request_t *r)
{
    if (ngx_milvuso_req_ctx(r, NGX_MILVUSO_EP_ACTIONS) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_milvuso_read_body(r, ngx_milvuso_actions_body);
}


static void
ngx_milvuso_actions_body(ngx_http_request_t *r)
{
    u_char                   *body;
    char                     *payload;
    size_t                    len, plen;
    ngx_int_t                 rc;
    mv_action_t              *a;
    mv_event_error_t          e;
    ngx_milvuso_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);

    rc = ngx_milvuso_body_or_error(r, &body, &len);
    if (rc != NGX_DECLINED) {
        goto done;
    }

    a = ngx_palloc(r->pool, sizeof(mv_action_t));
    payload = ngx_pnalloc(r->pool, NGX_MILVUSO_ACTION_PAYLOAD_MAX);
    if (a == NULL || payload == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    if (mv_action_parse((const char *) body, len, MV_ORIGIN_CLIENT,
                        mv_clock_realtime_ms(), a, &e)
        != MV_OK)
    {
        rc = ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST, e.error, "%s",
                                    e.detail);
        goto done;
    }

    /* a client's event_id is its retry key (a->client_event_id): kept */
    if (!a->client_event_id) {
        ngx_milvuso_make_event_id(mcf->shm_zone->data, a->event_id);
    }

    plen = mv_action_encode(a, payload, NGX_MILVUSO_ACTION_PAYLOAD_MAX);

    ngx_milvuso_post_to_log(r, a, MV_RECORD_ACTION, a->user_id, payload,
                            plen,
                            ngx_milvuso_action_apply,
                            ngx_milvuso_action_logged);
    return;

done:

    ngx_http_finalize_request(r, rc);
}


/* Once the action is in the log: applied to the user's profile. */
static void
ngx_milvuso_action_apply(ngx_http_request_t *r, uint64_t pos)
{
    mv_action_t              *a;
    ngx_milvuso_req_ctx_t    *ctx;
    ngx_milvuso_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    a = ctx->event;

    (void) pos;

    ngx_milvuso_accepted(r, mcf);

    if (ngx_milvuso_profile_add(mcf->shm_zone->data, mcf, a) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "milvuso: no room in zone \"%V\" for the profile of "
                      "\"%s\"; the action is in the stream only",
                      &mcf->zone_name, a->user_id);
    }
}


/* Then answered. */
static void
ngx_milvuso_action_logged(ngx_http_request_t *r, ngx_int_t rc, uint64_t pos)
{
    mv_action_t            *a;
    ngx_milvuso_req_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    a = ctx->event;

    (void) pos;

    ngx_milvuso_answer_logged(r, rc, "action", a->event_id, NULL,
                              a->client_event_id);
}


/*
 * Hands the encoded event (plen bytes of payload; 0: the encoding failed)
 * to the transport -- Kafka when milvuso_kafka is configured (key: the
 * record's key), else the log -- keeping event for apply and done
 * (ngx_milvuso_kafka_write, ngx_milvuso_log_write); the request is
 * answered by done, or here with 500 when nothing could be handed over.
 */
static void
ngx_milvuso_post_to_log(ngx_http_request_t *r, void *event, uint16_t type,
    const char *key, const char *payload, size_t plen,
    ngx_milvuso_log_apply_pt apply, ngx_milvuso_log_done_pt done)
{
    ngx_int_t                 rc;
    ngx_milvuso_req_ctx_t    *ctx;
    ngx_milvuso_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    ctx->event = event;

    if (plen == 0) {
        rc = NGX_ERROR;

    } else if (mcf->kafka_brokers.len) {
        rc = ngx_milvuso_kafka_write(r, type, payload, plen, key, apply,
                                     done);
    } else {
        rc = ngx_milvuso_log_write(r, type, payload, plen, apply, done);
    }

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/*
 * Answers a write once its record went to the transport: 202 with the
 * event's name (and the item's id), or 503 when it could not be handed
 * over (then nothing was applied): stream_unavailable with the Kafka
 * transport's reason (ctx->refusal), which says whether the record may
 * have reached Kafka all the same (an unconfirmed send: then a second post
 * may count twice, unless retry_key: the client named the event, and the
 * trainer applies an event id so named once), log_unavailable for the log.
 * Finalizes the request.
 */
static void
ngx_milvuso_answer_logged(ngx_http_request_t *r, ngx_int_t logged,
    const char *what, const char *event_id, const char *item_id,
    int retry_key)
{
    u_char                 *out, *p;
    ngx_int_t               rc;
    ngx_milvuso_req_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);

    if (logged != NGX_OK && ctx->refusal && ctx->maybe_stored && retry_key) {
        rc = ngx_milvuso_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "stream_unavailable",
                                    "%s; the %s %s was not applied here, "
                                    "but the trainer may still learn it: "
                                    "posting it again with the same "
                                    "event_id is safe (the trainer applies "
                                    "it once)",
                                    ctx->refusal, what, event_id);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (logged != NGX_OK && ctx->refusal && ctx->maybe_stored) {
        rc = ngx_milvuso_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "stream_unavailable",
                                    "%s; the %s %s was not applied here, "
                                    "but the trainer may still learn it: "
                                    "posting it again may count it twice",
                                    ctx->refusal, what, event_id);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (logged != NGX_OK && ctx->refusal) {
        rc = ngx_milvuso_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "stream_unavailable",
                                    "%s; the %s %s was not applied and may "
                                    "be posted again", ctx->refusal, what,
                                    event_id);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (logged != NGX_OK) {
        rc = ngx_milvuso_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "log_unavailable",
                                    "the %s could not be written to the "
                                    "action log; nothing was applied", what);
        ngx_http_finalize_request(r, rc);
        return;
    }

    out = ngx_pnalloc(r->pool, 200);
    if (out == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_sprintf(out, "{\"status\":\"accepted\",\"event_id\":\"%s\"",
                    event_id);
    if (item_id != NULL) {
        p = ngx_sprintf(p, ",\"item_id\":\"%s\"", item_id);
    }
    p = ngx_cpymem(p, "}\n", 2);

    ngx_http_finalize_request(r, ngx_milvuso_send_json(r, NGX_HTTP_ACCEPTED,
                                                       out, p - out));
}


ngx_int_t
ngx_milvuso_items_handler(ngx_http_request_t *r)
{
    if (ngx_milvuso_req_ctx(r, NGX_MILVUSO_EP_ITEMS) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_milvuso_read_body(r, ngx_milvuso_items_body);
}


static void
ngx_milvuso_items_body(ngx_http_request_t *r)
{
    u_char                   *body;
    char                     *payload;
    size_t                    len, plen, cap;
    float                    *vec;
    uint32_t                  dim;
    ngx_int_t                 rc;
    mv_event_error_t          e;
    mv_item_event_t          *item;
    ngx_milvuso_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);

    rc = ngx_milvuso_body_or_error(r, &body, &len);
    if (rc != NGX_DECLINED) {
        goto done;
    }

    dim = ngx_milvuso_dim(mcf);

    if (dim == 0) {
        rc = ngx_milvuso_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "no_model",
                                    "the embedding dimension is not known: "
                                    "no snapshot is loaded and milvuso_dim "
                                    "is not set");
        goto done;
    }

    item = ngx_palloc(r->pool, sizeof(mv_item_event_t));
    vec = ngx_palloc(r->pool, dim * sizeof(float));
    if (item == NULL || vec == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    if (mv_item_parse((const char *) body, len, MV_ORIGIN_CLIENT,
                      mv_clock_realtime_ms(), dim, vec, dim, item, &e)
        != MV_OK)
    {
        rc = ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST, e.error, "%s",
                                    e.detail);
        goto done;
    }

    ngx_milvuso_make_event_id(mcf->shm_zone->data, item->event_id);

    cap = mv_item_encode_bound(dim);
    payload = ngx_pnalloc(r->pool, cap);
    if (payload == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    plen = mv_item_encode(item, payload, cap);

    ngx_milvuso_post_to_log(r, item, MV_RECORD_ITEM, item->item_id, payload,
                            plen, ngx_milvuso_item_apply,
                            ngx_milvuso_item_logged);
    return;

done:

    ngx_http_finalize_request(r, rc);
}


/* Once the item is in the log: put among the fresh items. */
static void
ngx_milvuso_item_apply(ngx_http_request_t *r, uint64_t pos)
{
    mv_item_event_t          *item;
    ngx_milvuso_req_ctx_t    *ctx;
    ngx_milvuso_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    item = ctx->event;

    ngx_milvuso_accepted(r, mcf);

    if (ngx_milvuso_fresh_put(mcf->shm_zone->data, mcf, item, pos)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "milvuso: no room in zone \"%V\" for item \"%s\"; "
                      "it is in the stream only and waits for the next "
                      "snapshot", &mcf->zone_name, item->item_id);
    }
}


/* Then answered. */
static void
ngx_milvuso_item_logged(ngx_http_request_t *r, ngx_int_t rc, uint64_t pos)
{
    mv_item_event_t        *item;
    ngx_milvuso_req_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    item = ctx->event;

    (void) pos;

    ngx_milvuso_answer_logged(r, rc, "item", item->event_id, item->item_id,
                              0);
}


/*
 * A write is in the stream (the action log, Kafka, or the log as Kafka's
 * fallback: every path calls *_apply once it is there): the trainer has
 * something newer than its model.  Without a stream nothing reaches a
 * trainer, and nothing is noted.
 */
static void
ngx_milvuso_accepted(ngx_http_request_t *r, ngx_milvuso_main_conf_t *mcf)
{
    ngx_milvuso_zone_ctx_t  *z;

    (void) r;

    if (mcf->log_dir.len == 0 && mcf->kafka_brokers.len == 0) {
        return;
    }

    z = mcf->shm_zone->data;
    ngx_milvuso_note_accepted(z->sh, mv_clock_realtime_ms());
}


/*
 * How long the trainer has left what this nginx accepted unpublished: when
 * a write was accepted after the mapped generation was created, its age
 * in seconds (what was accepted is at most that old and not in it), else
 * 0.  Sets *behind when that is past milvuso_snapshot's behind=.  With no
 * model mapped: -1 (unknown), and behind when anything was accepted.
 */
static ngx_int_t
ngx_milvuso_trainer_lag(ngx_milvuso_main_conf_t *mcf,
    ngx_milvuso_zone_ctx_t *z, ngx_milvuso_proc_t *pr, int64_t now,
    ngx_uint_t *behind)
{
    int64_t  accepted, created, unpublished;

    accepted = (int64_t) z->sh->last_accept_ms;

    if (pr->view == NULL || pr->info == NULL) {
        *behind = accepted != 0;
        return -1;
    }

    /* the generation's time (its items segment may be an older one's) */
    created = pr->info->created_at_ms;
    unpublished = 0;

    if (accepted > created && now > created) {
        unpublished = (now - created) / 1000;
    }

    *behind = unpublished * 1000 > (int64_t) mcf->snapshot_behind;

    return (ngx_int_t) unpublished;
}


ngx_int_t
ngx_milvuso_health_handler(ngx_http_request_t *r)
{
    u_char                    *body, *p, *last;
    size_t                     size, zsize, used;
    int64_t                    now;
    ngx_int_t                  rc, unpublished;
    uint64_t                   log_bytes, log_segments;
    ngx_uint_t                 profiles, fresh, cached, behind;
    ngx_milvuso_proc_t        *pr = &ngx_milvuso_proc;
    ngx_milvuso_zone_ctx_t    *z;
    ngx_milvuso_main_conf_t   *mcf;
    const mv_snapshot_view_t  *v;
    char                       created[32];

    rc = ngx_milvuso_get_begin(r, NGX_MILVUSO_EP_HEALTH, NULL);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    z = mcf->shm_zone->data;
    v = pr->view;
    now = mv_clock_realtime_ms();

    ngx_milvuso_zone_usage(z, &zsize, &used, &profiles, &fresh, &cached);
    ngx_milvuso_log_disk_usage(r, &log_bytes, &log_segments);
    unpublished = ngx_milvuso_trainer_lag(mcf, z, pr, now, &behind);

    /* room for the fixed fields, the escaped path and reason (at most 6
       bytes per byte) and the numbers */
    size = 1024 + 6 * (mcf->snapshot_path.len + mcf->zone_name.len
                       + sizeof(pr->error));

    body = ngx_pnalloc(r->pool, size);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = body + size;

    p = ngx_slprintf(body, last, "{\"status\":\"%s\",",
                     v ? "ok" : "degraded");

    if (v) {
        mv_time_format(v->created_at_ms, created, sizeof(created));

        p = ngx_slprintf(p, last, "\"model_generation\":%uL,"
                         "\"snapshot\":{\"path\":", pr->info->generation);
        p = ngx_milvuso_json_str(p, last, (char *) mcf->snapshot_path.data);
        p = ngx_slprintf(p, last,
                         ",\"generation\":%uL,"
                         "\"items\":%uD,\"users\":%uL,\"categories\":%uD,"
                         "\"dim\":%uD,\"metric\":\"%s\",\"created_at\":\"%s\","
                         "\"age_seconds\":%L},",
                         pr->info->generation, v->n_items,
                         pr->info->n_users,
                         v->n_categories, v->dim,
                         mv_metric_name(v->metric),
                         created,
                         (int64_t) (now - v->created_at_ms) / 1000);

    } else {
        p = ngx_slprintf(p, last, "\"model_generation\":null,\"reason\":");
        p = ngx_milvuso_json_str(p, last, (char *) pr->error);
        p = ngx_slprintf(p, last, ",");
    }

    if (pr->view && pr->error[0]) {
        p = ngx_slprintf(p, last, "\"last_refused\":");
        p = ngx_milvuso_json_str(p, last, (char *) pr->error);
        p = ngx_slprintf(p, last, ",");
    }

    /* being behind is reported, never a failure: status keeps its
       meaning (a model is mapped or not) */
    if (unpublished >= 0) {
        p = ngx_slprintf(p, last, "\"trainer\":{\"unpublished_seconds\":%i,",
                         unpublished);
    } else {
        p = ngx_slprintf(p, last, "\"trainer\":{\"unpublished_seconds\":"
                         "null,");
    }

    p = ngx_slprintf(p, last, "\"behind\":%s,\"behind_after_seconds\":%M},",
                     behind ? "true" : "false", mcf->snapshot_behind / 1000);

    p = ngx_slprintf(p, last,
                     "\"dim\":%uD,\"fresh_items\":%ui,\"profiles\":%ui,"
                     "\"cached_lists\":%ui,"
                     "\"zone\":{\"name\":\"%V\",\"size\":%uz,\"used\":%uz},"
                     "\"action_log\":{\"enabled\":%s,\"records\":%uA,"
                     "\"errors\":%uA,\"bytes\":%uL,\"segments\":%uL},"
                     "\"kafka\":{\"enabled\":%s,\"ack\":%s,"
                     "\"queued\":%uA,\"delivered\":%uA,\"failed\":%uA,"
                     "\"refused\":%uA,\"spooled\":%uA,"
                     "\"in_flight_here\":%ui}}\n",
                     ngx_milvuso_dim(mcf), fresh, profiles, cached,
                     &mcf->zone_name, zsize, used,
                     mcf->log_dir.len ? "true" : "false",
                     z->sh->log_records, z->sh->log_errors,
                     log_bytes, log_segments,
                     mcf->kafka_brokers.len ? "true" : "false",
                     mcf->kafka_ack == 1 ? "true" : "false",
                     z->sh->kafka_queued, z->sh->kafka_delivered,
                     z->sh->kafka_failed, z->sh->kafka_refused,
                     z->sh->kafka_spooled, ngx_milvuso_kafka_outq());

    return ngx_milvuso_send_json(r, NGX_HTTP_OK, body, p - body);
}


ngx_int_t
ngx_milvuso_metrics_handler(ngx_http_request_t *r)
{
    u_char                   *body, *p, *last;
    size_t                    size, used;
    uint64_t                  log_bytes, log_segments;
    ngx_int_t                 rc, unpublished;
    ngx_uint_t                e, s, b, profiles, fresh, cached, behind;
    ngx_atomic_uint_t         cum, n;
    ngx_milvuso_shctx_t      *sh;
    ngx_milvuso_zone_ctx_t   *z;
    ngx_milvuso_proc_t       *pr = &ngx_milvuso_proc;
    ngx_milvuso_main_conf_t  *mcf;
    static const char        *sources[] = {
        "", "cache", "index", "profile", "popular"
    };

    rc = ngx_milvuso_get_begin(r, NGX_MILVUSO_EP_METRICS, NULL);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    z = mcf->shm_zone->data;
    sh = z->sh;

    ngx_milvuso_zone_usage(z, &size, &used, &profiles, &fresh, &cached);
    ngx_milvuso_log_disk_usage(r, &log_bytes, &log_segments);

    body = ngx_pnalloc(r->pool, 32768);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = body + 32768;

    p = ngx_slprintf(body, last,
                     "# HELP milvuso_requests_total Answers by endpoint and "
                     "status.\n# TYPE milvuso_requests_total counter\n");

    for (e = 0; e < NGX_MILVUSO_EP_N; e++) {
        for (s = 0; s < NGX_MILVUSO_ST_N; s++) {
            n = sh->requests[e][s];
            if (n == 0) {
                continue;
            }

            if (s < NGX_MILVUSO_ST_N - 1) {
                p = ngx_slprintf(p, last, "milvuso_requests_total{endpoint="
                                 "\"%s\",status=\"%ui\"} %uA\n",
                                 ngx_milvuso_endpoint_names[e],
                                 ngx_milvuso_statuses[s], n);
            } else {
                p = ngx_slprintf(p, last, "milvuso_requests_total{endpoint="
                                 "\"%s\",status=\"other\"} %uA\n",
                                 ngx_milvuso_endpoint_names[e], n);
            }
        }
    }

    p = ngx_slprintf(p, last,
                     "# HELP milvuso_request_duration_seconds Time from the "
                     "handler to the answer.\n"
                     "# TYPE milvuso_request_duration_seconds histogram\n");

    for (e = 0; e < NGX_MILVUSO_EP_N; e++) {
        cum = 0;

        for (b = 0; b < NGX_MILVUSO_LAT_BUCKETS; b++) {
            cum += sh->latency[e][b];
            p = ngx_slprintf(p, last, "milvuso_request_duration_seconds_bucket"
                             "{endpoint=\"%s\",le=\"%s\"} %uA\n",
                             ngx_milvuso_endpoint_names[e],
                             ngx_milvuso_lat_le_text[b], cum);
        }

        p = ngx_slprintf(p, last, "milvuso_request_duration_seconds_sum"
                         "{endpoint=\"%s\"} %uA.%06uA\n"
                         "milvuso_request_duration_seconds_count"
                         "{endpoint=\"%s\"} %uA\n",
                         ngx_milvuso_endpoint_names[e],
                         sh->latency_sum_us[e] / 1000000,
                         sh->latency_sum_us[e] % 1000000,
                         ngx_milvuso_endpoint_names[e], cum);
    }

    p = ngx_slprintf(p, last,
                     "# HELP milvuso_recommendations_total Lists answered, "
                     "by source.\n"
                     "# TYPE milvuso_recommendations_total counter\n");

    for (s = 1; s < 5; s++) {
        p = ngx_slprintf(p, last, "milvuso_recommendations_total{source="
                         "\"%s\"} %uA\n", sources[s], sh->sources[s]);
    }

    p = ngx_slprintf(p, last,
        "# HELP milvuso_cache_hits_total L1 cache hits.\n"
        "# TYPE milvuso_cache_hits_total counter\n"
        "milvuso_cache_hits_total %uA\n"
        "# HELP milvuso_cache_misses_total L1 cache misses.\n"
        "# TYPE milvuso_cache_misses_total counter\n"
        "milvuso_cache_misses_total %uA\n"
        "# HELP milvuso_action_log_records_total Records appended to the "
        "action log.\n"
        "# TYPE milvuso_action_log_records_total counter\n"
        "milvuso_action_log_records_total %uA\n"
        "# HELP milvuso_action_log_errors_total Appends that failed "
        "(answered 503).\n"
        "# TYPE milvuso_action_log_errors_total counter\n"
        "milvuso_action_log_errors_total %uA\n"
        "# HELP milvuso_action_log_bytes Bytes of the action log's segments "
        "on disk (listed at most once a second).\n"
        "# TYPE milvuso_action_log_bytes gauge\n"
        "milvuso_action_log_bytes %uL\n"
        "# HELP milvuso_action_log_segments Segment files of the action "
        "log on disk.\n"
        "# TYPE milvuso_action_log_segments gauge\n"
        "milvuso_action_log_segments %uL\n"
        "# HELP milvuso_kafka_records_total Records handed to Kafka, by "
        "outcome (queued, then delivered or failed; refused: not "
        "queued; spooled: refused or failed, not possibly stored, and "
        "appended to the action log instead, for the drain).\n"
        "# TYPE milvuso_kafka_records_total counter\n"
        "milvuso_kafka_records_total{outcome=\"queued\"} %uA\n"
        "milvuso_kafka_records_total{outcome=\"delivered\"} %uA\n"
        "milvuso_kafka_records_total{outcome=\"failed\"} %uA\n"
        "milvuso_kafka_records_total{outcome=\"refused\"} %uA\n"
        "milvuso_kafka_records_total{outcome=\"spooled\"} %uA\n"
        "# HELP milvuso_zone_evictions_total Zone entries evicted for "
        "room.\n"
        "# TYPE milvuso_zone_evictions_total counter\n"
        "milvuso_zone_evictions_total %uA\n"
        "# HELP milvuso_zone_bytes Size and use of the shared zone.\n"
        "# TYPE milvuso_zone_bytes gauge\n"
        "milvuso_zone_bytes{kind=\"size\"} %uz\n"
        "milvuso_zone_bytes{kind=\"used\"} %uz\n"
        "# HELP milvuso_zone_entries Entries held in the shared zone.\n"
        "# TYPE milvuso_zone_entries gauge\n"
        "milvuso_zone_entries{kind=\"profiles\"} %ui\n"
        "milvuso_zone_entries{kind=\"fresh_items\"} %ui\n"
        "milvuso_zone_entries{kind=\"cached_lists\"} %ui\n",
        sh->cache_hits, sh->cache_misses, sh->log_records, sh->log_errors,
        log_bytes, log_segments, sh->kafka_queued, sh->kafka_delivered,
        sh->kafka_failed, sh->kafka_refused, sh->kafka_spooled,
        sh->evictions, size, used, profiles, fresh, cached);

    p = ngx_slprintf(p, last,
        "# HELP milvuso_snapshot_loaded Whether this worker has a model "
        "mapped.\n"
        "# TYPE milvuso_snapshot_loaded gauge\n"
        "milvuso_snapshot_loaded %d\n"
        "# HELP milvuso_snapshot_generation Generation of the model this "
        "worker serves.\n"
        "# TYPE milvuso_snapshot_generation gauge\n"
        "milvuso_snapshot_generation %uL\n"
        "# HELP milvuso_snapshot_age_seconds Age of the model this worker "
        "serves.\n"
        "# TYPE milvuso_snapshot_age_seconds gauge\n"
        "milvuso_snapshot_age_seconds %L\n"
        "# HELP milvuso_snapshot_refusals_total Snapshot files this worker "
        "refused.\n"
        "# TYPE milvuso_snapshot_refusals_total counter\n"
        "milvuso_snapshot_refusals_total %ui\n",
        pr->view ? 1 : 0,
        pr->view ? pr->view->generation : (uint64_t) 0,
        pr->view ? (mv_clock_realtime_ms() - pr->view->created_at_ms) / 1000
                 : (int64_t) 0,
        pr->failures);

    unpublished = ngx_milvuso_trainer_lag(mcf, z, pr, mv_clock_realtime_ms(),
                                          &behind);

    p = ngx_slprintf(p, last,
        "# HELP milvuso_model_unpublished_seconds When a write was accepted "
        "after the model this worker serves was created, the model's age "
        "(what is not in it is at most that old); else 0.\n"
        "# TYPE milvuso_model_unpublished_seconds gauge\n");

    if (unpublished >= 0) {
        p = ngx_slprintf(p, last, "milvuso_model_unpublished_seconds %i\n",
                         unpublished);
    }

    p = ngx_slprintf(p, last,
        "# HELP milvuso_trainer_behind 1 when "
        "milvuso_model_unpublished_seconds is past milvuso_snapshot's "
        "behind= (with no model: when anything was accepted).\n"
        "# TYPE milvuso_trainer_behind gauge\n"
        "milvuso_trainer_behind %ui\n", behind);

    return ngx_milvuso_send(r, NGX_HTTP_OK,
                            "text/plain; version=0.0.4; charset=utf-8",
                            body, p - body);
}
