/*
 * ngx_milvuso_request.c -- the request plumbing every endpoint shares: the
 * request context, the JSON answers and errors, the counters behind
 * /metrics, the method check and reading a JSON body.
 *
 * Every answer goes through ngx_milvuso_send (ngx_milvuso_send_json,
 * ngx_milvuso_send_error), which counts it by endpoint and status and
 * records its latency in the zone's atomics (no lock).  A GET endpoint
 * starts with ngx_milvuso_get_begin, a POST endpoint reads its body with
 * ngx_milvuso_read_body and takes it whole with ngx_milvuso_body_or_error.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <stdarg.h>

#include "ngx_milvuso.h"


static ngx_uint_t ngx_milvuso_status_index(ngx_uint_t status);
static void ngx_milvuso_count(ngx_http_request_t *r, ngx_uint_t status);
static ngx_int_t ngx_milvuso_is_json(ngx_http_request_t *r);
static ngx_int_t ngx_milvuso_body_bytes(ngx_http_request_t *r, u_char **body,
    size_t *len);


const ngx_uint_t  ngx_milvuso_statuses[NGX_MILVUSO_ST_N - 1] = {
    200, 202, 400, 404, 405, 413, 415, 500, 503, 304
};

const char  *ngx_milvuso_endpoint_names[NGX_MILVUSO_EP_N] = {
    "actions", "items", "recommendations", "similar", "health", "metrics"
};

/* latency bucket upper bounds in microseconds; the last is +Inf */
static const int64_t  ngx_milvuso_lat_le_us[NGX_MILVUSO_LAT_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000
};

const char  *ngx_milvuso_lat_le_text[NGX_MILVUSO_LAT_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05", "0.1", "0.25", "+Inf"
};


/*
 * The request's context, created on first use for the given endpoint (its
 * latency counts from then).  NULL when out of memory.
 */
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


/* The zone of the request's http block (milvuso_zone is required). */
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
ngx_int_t
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


/* ngx_milvuso_send with the JSON content type. */
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


/*
 * Answers {"error": error, "detail": printf(fmt, ...)} with status (413
 * also closes the connection).  What it returns is what a handler returns.
 */
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


/*
 * The URI's last path segment as an id (the user or item of a GET).
 * NGX_ERROR when it is not a valid id (shared/ids.h).
 */
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


/*
 * The start of every POST endpoint: POST only (405), the declared length
 * within milvuso_body_max (413) and a JSON content type (415), then reads
 * the body and calls done.  What it returns is what the handler returns
 * (NGX_DONE while the body is read).
 */
ngx_int_t
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
ngx_int_t
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
