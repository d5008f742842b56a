/*
 * ngx_milvuso_handlers.c -- request plumbing shared by every endpoint (the
 * request context, JSON answers and errors, counters, reading a body) and
 * the write endpoints POST /actions and POST /items, plus /health and
 * /metrics.
 *
 * A write is validated whole (shared/events.c) before anything happens;
 * then it is appended to the action log (when one is configured) and only
 * then applied to the zone, so what the trainer reads is exactly what was
 * applied, and a request refused for any reason has changed nothing.  The
 * append happens under the zone's mutex: it serialises the workers writing
 * the log (shared/actlog.h), and the master releases it if a worker dies.
 *
 * Every answer goes through ngx_milvuso_send_json, which counts it by
 * endpoint and status and records its latency.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <stdarg.h>

#include "ngx_milvuso.h"


typedef void (*ngx_milvuso_body_pt)(ngx_http_request_t *r, u_char *body,
    size_t len);


static ngx_int_t ngx_milvuso_read_body(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt done);
static ngx_int_t ngx_milvuso_body_bytes(ngx_http_request_t *r, u_char **body,
    size_t *len);
static ngx_int_t ngx_milvuso_body_or_error(ngx_http_request_t *r,
    u_char **body, size_t *len);
static void ngx_milvuso_actions_body(ngx_http_request_t *r);
static void ngx_milvuso_items_body(ngx_http_request_t *r);
static ngx_int_t ngx_milvuso_log_append(ngx_http_request_t *r,
    uint16_t type, const char *payload, size_t len, uint64_t *pos);
static void ngx_milvuso_make_event_id(ngx_milvuso_zone_ctx_t *z, char *buf);
static ngx_int_t ngx_milvuso_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, u_char *body, size_t len);
static ngx_uint_t ngx_milvuso_status_index(ngx_uint_t status);
static void ngx_milvuso_count(ngx_http_request_t *r, ngx_uint_t status);


static const ngx_uint_t  ngx_milvuso_statuses[NGX_MILVUSO_ST_N - 1] = {
    200, 202, 400, 404, 405, 413, 415, 500, 503, 304
};

static const char  *ngx_milvuso_endpoint_names[NGX_MILVUSO_EP_N] = {
    "actions", "items", "recommendations", "similar", "health", "metrics"
};

/* latency bucket upper bounds in microseconds; the last is +Inf */
static const int64_t  ngx_milvuso_lat_le_us[NGX_MILVUSO_LAT_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000
};

static const char  *ngx_milvuso_lat_le_text[NGX_MILVUSO_LAT_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05", "0.1", "0.25", "+Inf"
};

/* per process: when the last log-write error was logged (rate limit) */
static time_t  ngx_milvuso_log_error_logged;


ngx_milvuso_req_ctx_t *
ngx_milvuso_req_ctx(ngx_http_request_t *r, ngx_uint_t endpoint)
{
    ngx_milvuso_req_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_milvuso_req_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->endpoint = endpoint;
    ctx->start_us = mv_clock_monotonic_us();

    ngx_http_set_ctx(r, ctx, ngx_http_milvuso_module);

    return ctx;
}


ngx_milvuso_zone_ctx_t *
ngx_milvuso_zone(ngx_http_request_t *r)
{
    ngx_milvuso_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);

    return mcf->shm_zone->data;
}


static ngx_uint_t
ngx_milvuso_status_index(ngx_uint_t status)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_MILVUSO_ST_N - 1; i++) {
        if (ngx_milvuso_statuses[i] == status) {
            return i;
        }
    }

    return NGX_MILVUSO_ST_N - 1;
}


static void
ngx_milvuso_count(ngx_http_request_t *r, ngx_uint_t status)
{
    int64_t                  us;
    ngx_uint_t               b;
    ngx_milvuso_shctx_t     *sh;
    ngx_milvuso_req_ctx_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    if (ctx == NULL) {
        return;
    }

    sh = ngx_milvuso_zone(r)->sh;

    us = mv_clock_monotonic_us() - ctx->start_us;
    if (us < 0) {
        us = 0;
    }

    for (b = 0; b < NGX_MILVUSO_LAT_BUCKETS - 1; b++) {
        if (us <= ngx_milvuso_lat_le_us[b]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(
        &sh->requests[ctx->endpoint][ngx_milvuso_status_index(status)], 1);
    (void) ngx_atomic_fetch_add(&sh->latency[ctx->endpoint][b], 1);
    (void) ngx_atomic_fetch_add(&sh->latency_sum_us[ctx->endpoint],
                                (ngx_atomic_int_t) us);

    if (ctx->source != NGX_MILVUSO_SRC_NONE && status == NGX_HTTP_OK) {
        (void) ngx_atomic_fetch_add(&sh->sources[ctx->source], 1);
    }
}


/*
 * Counts the answer (endpoint, status, latency) and sends body as the whole
 * response with the given content type.  What it returns is what a content
 * handler returns.
 */
static ngx_int_t
ngx_milvuso_send(ngx_http_request_t *r, ngx_uint_t status, const char *type,
    u_char *body, size_t len)
{
    ngx_int_t    rc;
    ngx_buf_t   *b;
    ngx_chain_t  out;

    ngx_milvuso_count(r, status);

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (r->method == NGX_HTTP_HEAD || len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_milvuso_send_json(ngx_http_request_t *r, ngx_uint_t status, u_char *body,
    size_t len)
{
    return ngx_milvuso_send(r, status, "application/json", body, len);
}


/* Writes s as a JSON string (quotes added, escaped), bounded by last. */
u_char *
ngx_milvuso_json_str(u_char *p, u_char *last, const char *s)
{
    u_char  c;

    if (last - p < 2) {
        return p;
    }

    *p++ = '"';

    /* keep room for the longest escape (6) and the closing quote */
    while (*s && last - p > 7) {
        c = (u_char) *s++;

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = c;

        } else if (c < 0x20) {
            p = ngx_sprintf(p, "\\u%04xd", (ngx_uint_t) c);

        } else {
            *p++ = c;
        }
    }

    *p++ = '"';

    return p;
}


ngx_int_t
ngx_milvuso_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *fmt, ...)
{
    u_char   *body, *p, *last;
    u_char    detail[512];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(detail, detail + sizeof(detail) - 1, fmt, args);
    va_end(args);
    *p = '\0';

    body = ngx_pnalloc(r->pool, 1200);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = body + 1200;

    p = ngx_cpymem(body, "{\"error\":", sizeof("{\"error\":") - 1);
    p = ngx_milvuso_json_str(p, last - 20, error);
    p = ngx_cpymem(p, ",\"detail\":", sizeof(",\"detail\":") - 1);
    p = ngx_milvuso_json_str(p, last - 4, (char *) detail);
    *p++ = '}';
    *p++ = '\n';

    if (status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        r->keepalive = 0;
    }

    return ngx_milvuso_send_json(r, status, body, p - body);
}


/*
 * NGX_DECLINED when the method is allowed; otherwise answers 405 with Allow
 * and returns what the answer returned.
 */
ngx_int_t
ngx_milvuso_check_method(ngx_http_request_t *r, ngx_uint_t allowed)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    if (r->method & allowed) {
        return NGX_DECLINED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");

    if (allowed & NGX_HTTP_POST) {
        ngx_str_set(&h->value, "POST");

    } else {
        ngx_str_set(&h->value, "GET, HEAD");
    }

    return ngx_milvuso_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                  "method_not_allowed",
                                  "%V is not allowed here, use %V",
                                  &r->method_name, &h->value);
}


/*
 * The start of every GET endpoint: the request context (*ctx when ctx is
 * not NULL), GET and HEAD only (405 otherwise), the body discarded.
 * NGX_DECLINED to go on; anything else is what the handler returns.
 */
ngx_int_t
ngx_milvuso_get_begin(ngx_http_request_t *r, ngx_uint_t endpoint,
    ngx_milvuso_req_ctx_t **ctx)
{
    ngx_int_t               rc;
    ngx_milvuso_req_ctx_t  *c;

    c = ngx_milvuso_req_ctx(r, endpoint);
    if (c == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx) {
        *ctx = c;
    }

    rc = ngx_milvuso_check_method(r, NGX_HTTP_GET|NGX_HTTP_HEAD);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_milvuso_last_segment(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char  *p, *start, *end;

    end = r->uri.data + r->uri.len;
    start = r->uri.data;

    for (p = end; p > start; p--) {
        if (p[-1] == '/') {
            break;
        }
    }

    id->data = p;
    id->len = end - p;

    if (!mv_id_valid((const char *) id->data, id->len)) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Content-Type must be application/json (parameters allowed). */
static ngx_int_t
ngx_milvuso_is_json(ngx_http_request_t *r)
{
    u_char     *p, *last;
    ngx_str_t  *ct;

    if (r->headers_in.content_type == NULL) {
        return 0;
    }

    ct = &r->headers_in.content_type->value;

    if (ct->len < sizeof("application/json") - 1
        || ngx_strncasecmp(ct->data, (u_char *) "application/json",
                           sizeof("application/json") - 1) != 0)
    {
        return 0;
    }

    p = ct->data + sizeof("application/json") - 1;
    last = ct->data + ct->len;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    return p == last || *p == ';';
}


static ngx_int_t
ngx_milvuso_read_body(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt done)
{
    ngx_int_t                rc;
    ngx_milvuso_loc_conf_t  *lcf;

    rc = ngx_milvuso_check_method(r, NGX_HTTP_POST);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_milvuso_module);

    if (r->headers_in.content_length_n > (off_t) lcf->body_max) {
        r->expect_tested = 1;   /* no "100 Continue" for a refused body */
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_milvuso_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "body_too_large",
                                      "the body has %O bytes, at most %uz "
                                      "are accepted",
                                      r->headers_in.content_length_n,
                                      lcf->body_max);
    }

    if (!ngx_milvuso_is_json(r)) {
        r->expect_tested = 1;
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_milvuso_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                      "unsupported_media_type",
                                      "the body must be application/json");
    }

    rc = ngx_http_read_client_request_body(r, done);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * The whole body as one buffer (in memory, or read back from the temp file
 * nginx wrote a large body to).  NGX_DECLINED when it is larger than
 * milvuso_body_max (possible with chunked bodies).
 */
static ngx_int_t
ngx_milvuso_body_bytes(ngx_http_request_t *r, u_char **body, size_t *len)
{
    u_char                  *p;
    off_t                    total;
    ssize_t                  n;
    ngx_buf_t               *b;
    ngx_chain_t             *cl;
    ngx_milvuso_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_milvuso_module);

    *body = NULL;
    *len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    total = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        total += b->in_file ? b->file_last - b->file_pos : b->last - b->pos;
    }

    if (total > (off_t) lcf->body_max) {
        return NGX_DECLINED;
    }

    if (total == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) total);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *body = p;
    *len = (size_t) total;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "milvuso: cannot read the body back from "
                              "\"%V\"", &b->file->name);
                return NGX_ERROR;
            }
            p += n;

        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    return NGX_OK;
}


/*
 * The body of a write as one buffer, or the answer to give instead:
 * NGX_DECLINED with body and len set when there is a non-empty body,
 * otherwise what the error answer returned (413 for a chunked body over
 * milvuso_body_max, 400 for an empty one, 500).
 */
static ngx_int_t
ngx_milvuso_body_or_error(ngx_http_request_t *r, u_char **body, size_t *len)
{
    ngx_int_t                rc;
    ngx_milvuso_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_milvuso_module);

    rc = ngx_milvuso_body_bytes(r, body, len);

    if (rc == NGX_DECLINED) {
        return ngx_milvuso_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "body_too_large",
                                      "at most %uz bytes are accepted",
                                      lcf->body_max);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (*len == 0) {
        return ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid_json",
                                      "the body is empty");
    }

    return NGX_DECLINED;
}


static void
ngx_milvuso_make_event_id(ngx_milvuso_zone_ctx_t *z, char *buf)
{
    uint64_t  seq;

    seq = (uint64_t) ngx_atomic_fetch_add(&z->sh->event_seq, 1);

    /* 12 hex digits of unix ms, 8 of the zone's sequence: 20 id bytes */
    *ngx_sprintf((u_char *) buf, "%012xL%08xD",
                 (uint64_t) mv_clock_realtime_ms(), (uint32_t) seq) = '\0';
}


/*
 * Appends a record to the action log under the zone's mutex.  NGX_OK (pos
 * set, 0 when no log is configured), or NGX_ERROR (logged, rate-limited).
 */
static ngx_int_t
ngx_milvuso_log_append(ngx_http_request_t *r, uint16_t type,
    const char *payload, size_t len, uint64_t *pos)
{
    int                       rc;
    mv_err_t                  err;
    mv_actlog_pos_t           p;
    ngx_milvuso_zone_ctx_t   *z;
    ngx_milvuso_main_conf_t  *mcf;

    *pos = 0;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);

    if (mcf->log_dir.len == 0) {
        return NGX_OK;
    }

    z = mcf->shm_zone->data;

    if (ngx_milvuso_proc.log == NULL) {
        ngx_cpystrn((u_char *) err.msg, (u_char *) "the writer could not "
                    "be set up at start (see the error log)",
                    sizeof(err.msg));
        rc = MV_ERR;

    } else {
        ngx_shmtx_lock(&z->shpool->mutex);
        rc = mv_actlog_append(ngx_milvuso_proc.log, &z->sh->log_seq, type,
                              payload, len, &p, &err);
        ngx_shmtx_unlock(&z->shpool->mutex);
    }

    if (rc != MV_OK) {
        (void) ngx_atomic_fetch_add(&z->sh->log_errors, 1);

        if (ngx_time() != ngx_milvuso_log_error_logged) {
            ngx_milvuso_log_error_logged = ngx_time();
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "milvuso: action log \"%V\": %s",
                          &mcf->log_dir, err.msg);
        }

        return NGX_ERROR;
    }

    (void) ngx_atomic_fetch_add(&z->sh->log_records, 1);
    *pos = mv_actlog_pos_pack(p);

    return NGX_OK;
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
    u_char                   *body, *out, *p;
    size_t                    len, plen;
    uint64_t                  pos;
    ngx_int_t                 rc;
    mv_action_t               a;
    mv_event_error_t          e;
    ngx_milvuso_main_conf_t  *mcf;
    char                      payload[512];

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);

    rc = ngx_milvuso_body_or_error(r, &body, &len);
    if (rc != NGX_DECLINED) {
        goto done;
    }

    if (mv_action_parse((const char *) body, len, mv_clock_realtime_ms(), &a,
                        &e)
        != MV_OK)
    {
        rc = ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST, e.error, "%s",
                                    e.detail);
        goto done;
    }

    ngx_milvuso_make_event_id(mcf->shm_zone->data, a.event_id);

    plen = mv_action_encode(&a, payload, sizeof(payload));
    if (plen == 0) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    if (ngx_milvuso_log_append(r, MV_RECORD_ACTION, payload, plen, &pos)
        != NGX_OK)
    {
        rc = ngx_milvuso_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "log_unavailable",
                                    "the action could not be written to "
                                    "the action log; nothing was applied");
        goto done;
    }

    if (ngx_milvuso_profile_add(mcf->shm_zone->data, mcf, &a) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "milvuso: no room in zone \"%V\" for the profile of "
                      "\"%s\"; the action is in the log only",
                      &mcf->zone_name, a.user_id);
    }

    out = ngx_pnalloc(r->pool, 128);
    if (out == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    p = ngx_sprintf(out, "{\"status\":\"accepted\",\"event_id\":\"%s\"}\n",
                    a.event_id);

    rc = ngx_milvuso_send_json(r, NGX_HTTP_ACCEPTED, out, p - out);

done:

    ngx_http_finalize_request(r, rc);
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
    u_char                   *body, *out, *p;
    char                     *payload;
    size_t                    len, plen, cap;
    float                    *vec;
    uint32_t                  dim;
    uint64_t                  pos;
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

    if (mv_item_parse((const char *) body, len, mv_clock_realtime_ms(), dim,
                      vec, dim, item, &e)
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
    if (plen == 0) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    if (ngx_milvuso_log_append(r, MV_RECORD_ITEM, payload, plen, &pos)
        != NGX_OK)
    {
        rc = ngx_milvuso_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "log_unavailable",
                                    "the item could not be written to the "
                                    "action log; nothing was applied");
        goto done;
    }

    if (ngx_milvuso_fresh_put(mcf->shm_zone->data, mcf, item, pos)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "milvuso: no room in zone \"%V\" for item \"%s\"; "
                      "it is in the log only and waits for the next "
                      "snapshot", &mcf->zone_name, item->item_id);
    }

    out = ngx_pnalloc(r->pool, 200);
    if (out == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    p = ngx_sprintf(out, "{\"status\":\"accepted\",\"event_id\":\"%s\","
                    "\"item_id\":\"%s\"}\n", item->event_id, item->item_id);

    rc = ngx_milvuso_send_json(r, NGX_HTTP_ACCEPTED, out, p - out);

done:

    ngx_http_finalize_request(r, rc);
}


ngx_int_t
ngx_milvuso_health_handler(ngx_http_request_t *r)
{
    u_char                    *body, *p, *last;
    size_t                     size, zsize, used;
    int64_t                    now;
    ngx_int_t                  rc;
    ngx_uint_t                 profiles, fresh, cached;
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
                         "\"snapshot\":{\"path\":", v->generation);
        p = ngx_milvuso_json_str(p, last, (char *) mcf->snapshot_path.data);
        p = ngx_slprintf(p, last,
                         ",\"generation\":%uL,"
                         "\"items\":%uD,\"users\":%uD,\"categories\":%uD,"
                         "\"dim\":%uD,\"metric\":\"%s\",\"created_at\":\"%s\","
                         "\"age_seconds\":%L},",
                         v->generation, v->n_items, v->n_users,
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

    p = ngx_slprintf(p, last,
                     "\"dim\":%uD,\"fresh_items\":%ui,\"profiles\":%ui,"
                     "\"cached_lists\":%ui,"
                     "\"zone\":{\"name\":\"%V\",\"size\":%uz,\"used\":%uz},"
                     "\"action_log\":{\"enabled\":%s,\"records\":%uA,"
                     "\"errors\":%uA}}\n",
                     ngx_milvuso_dim(mcf), fresh, profiles, cached,
                     &mcf->zone_name, zsize, used,
                     mcf->log_dir.len ? "true" : "false",
                     z->sh->log_records, z->sh->log_errors);

    return ngx_milvuso_send_json(r, NGX_HTTP_OK, body, p - body);
}


ngx_int_t
ngx_milvuso_metrics_handler(ngx_http_request_t *r)
{
    u_char                   *body, *p, *last;
    size_t                    size, used;
    ngx_int_t                 rc;
    ngx_uint_t                e, s, b, profiles, fresh, cached;
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

    return ngx_milvuso_send(r, NGX_HTTP_OK,
                            "text/plain; version=0.0.4; charset=utf-8",
                            body, p - body);
}
