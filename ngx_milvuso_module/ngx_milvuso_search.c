/*
 * ngx_milvuso_search.c -- what both GET endpoints search with, and
 * GET /similar/{item_id}.
 *
 * ngx_milvuso_search answers "the k best items for this query vector that
 * pass these filters": HNSW over the mapped snapshot (the category and the
 * excluded items are a filter inside the graph walk, shared/hnsw.h) plus an
 * exact scan of the fresh items in the zone, the two lists merged, a fresh
 * item replacing the snapshot's copy of the same id.  The filters, the
 * merge and the rendering of a list as JSON are shared with
 * GET /recommendations (ngx_milvuso_recommend.c).
 *
 * GET /similar takes the item's own vector (a fresh copy first: it is newer
 * than the snapshot's) as the query, the item itself excluded.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>

#include "ngx_milvuso.h"


static double ngx_milvuso_score_value(float score);


ngx_int_t
ngx_milvuso_arg_uint(ngx_http_request_t *r, char *name, ngx_uint_t def,
    ngx_uint_t max, ngx_uint_t *out)
{
    ngx_int_t  n;
    ngx_str_t  value;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &value)
        != NGX_OK)
    {
        *out = def < max ? def : max;
        return NGX_OK;
    }

    n = ngx_atoi(value.data, value.len);

    if (n == NGX_ERROR || n < 1 || (ngx_uint_t) n > max) {
        return NGX_ERROR;
    }

    *out = n;

    return NGX_OK;
}


int
ngx_milvuso_cmp_u32(const void *a, const void *b)
{
    uint32_t  x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return (x > y) - (x < y);
}


int
ngx_milvuso_snap_allow(const void *data, uint32_t id)
{
    const ngx_milvuso_snap_filter_t  *sf = data;

    if (sf->category == NGX_MILVUSO_CATEGORY_KNOWN
        && sf->view->item_meta[id].category != sf->category_index)
    {
        return 0;
    }

    if (sf->n_excluded
        && bsearch(&id, sf->excluded, sf->n_excluded, sizeof(uint32_t),
                   ngx_milvuso_cmp_u32))
    {
        return 0;
    }

    return 1;
}


/* Called under the zone's mutex: memory reads only. */
ngx_int_t
ngx_milvuso_fresh_allow(void *data, const ngx_milvuso_fresh_t *f)
{
    ngx_milvuso_fresh_filter_t *ff = data;

    ngx_uint_t  i;

    if (ff->category.len
        && (ff->category.len != f->cat_len
            || ngx_memcmp(ff->category.data, f->category, f->cat_len) != 0))
    {
        return 0;
    }

    for (i = 0; i < ff->n_excluded; i++) {
        if (ff->excluded[i].id_len == f->e.key_len
            && ngx_memcmp(ff->excluded[i].id, f->e.key, f->e.key_len) == 0)
        {
            return 0;
        }
    }

    /* no snapshot lookup here (we hold the zone's mutex): items a snapshot
       includes were dropped when it was mapped, and a fresh copy that is
       still here replaces the snapshot's copy in the merge */

    return 1;
}


void
ngx_milvuso_snap_hit(const mv_snapshot_view_t *view, uint32_t idx,
    float score, ngx_milvuso_hit_t *h)
{
    size_t       len;
    uint32_t     cat;
    const char  *s;

    s = mv_idtable_get(&view->items, idx, &len);
    h->score = score;
    h->id_len = (uint8_t) len;
    ngx_memcpy(h->id, s, len);

    h->cat_len = 0;
    cat = view->item_meta[idx].category;

    if (cat != MV_CATEGORY_NONE) {
        s = mv_idtable_get(&view->categories, cat, &len);
        h->cat_len = (uint8_t) len;
        ngx_memcpy(h->category, s, len);
    }
}


ngx_uint_t
ngx_milvuso_merge(ngx_milvuso_hit_t *out, ngx_uint_t k,
    ngx_milvuso_hit_t *fresh, ngx_uint_t n_fresh, ngx_milvuso_hit_t *snap,
    ngx_uint_t n_snap)
{
    ngx_uint_t  i, j, n, dup;

    n = 0;

    for (i = 0; i < n_fresh; i++) {
        ngx_milvuso_hits_insert(out, &n, k, &fresh[i]);
    }

    for (i = 0; i < n_snap; i++) {
        dup = 0;

        for (j = 0; j < n_fresh; j++) {
            if (fresh[j].id_len == snap[i].id_len
                && ngx_memcmp(fresh[j].id, snap[i].id, snap[i].id_len) == 0)
            {
                dup = 1;
                break;
            }
        }

        if (!dup) {
            ngx_milvuso_hits_insert(out, &n, k, &snap[i]);
        }
    }

    return n;
}


/* A score as JSON prints it: finite, and small enough for "%.6f". */
static double
ngx_milvuso_score_value(float score)
{
    if (isnan(score)) {
        return 0.0;
    }

    if (score > 1e12f) {
        return 1e12;
    }

    if (score < -1e12f) {
        return -1e12;
    }

    return (double) score;
}


ngx_int_t
ngx_milvuso_render(ngx_http_request_t *r, ngx_milvuso_hit_t *hits,
    ngx_uint_t n, ngx_str_t *out)
{
    u_char      *p, *last;
    double       score;
    size_t       size;
    ngx_uint_t   i;

    /* per hit: the literals, two ids, a score of at most 21 characters
       ("-1000000000000.000000"), a comma; plus the brackets */
    size = 2 + n * (sizeof("{\"item_id\":\"\",\"score\":,\"category\":\"\"},")
                    + 2 * MV_ID_MAX + 32);

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    last = p + size;

    *p++ = '[';

    for (i = 0; i < n; i++) {
        score = ngx_milvuso_score_value(hits[i].score);

        p = ngx_slprintf(p, last, "%s{\"item_id\":\"%*s\",\"score\":%s%.6f",
                         i ? "," : "",
                         (size_t) hits[i].id_len, hits[i].id,
                         score < 0 ? "-" : "", score < 0 ? -score : score);

        if (hits[i].cat_len) {
            p = ngx_slprintf(p, last, ",\"category\":\"%*s\"",
                             (size_t) hits[i].cat_len, hits[i].category);
        }

        p = ngx_slprintf(p, last, "}");
    }

    p = ngx_slprintf(p, last, "]");

    out->len = p - out->data;

    return NGX_OK;
}


/* HNSW + fresh scan, merged: the k best for query that pass the filters. */
ngx_uint_t
ngx_milvuso_search(ngx_http_request_t *r, const float *query, ngx_uint_t k,
    ngx_milvuso_snap_filter_t *sf, ngx_milvuso_fresh_filter_t *ff,
    ngx_milvuso_hit_t *out, ngx_uint_t *candidates)
{
    size_t                     i, n_snap, n_cand;
    float                      score;
    uint32_t                   c;
    mv_hit_t                  *mh;
    mv_filter_t                filter;
    ngx_uint_t                 n_fresh, scanned, ef;
    ngx_milvuso_hit_t         *fresh, *snap;
    ngx_milvuso_proc_t        *pr = &ngx_milvuso_proc;
    ngx_milvuso_loc_conf_t    *lcf;
    ngx_milvuso_main_conf_t   *mcf;
    const mv_snapshot_view_t  *view = pr->view;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_milvuso_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);

    fresh = ngx_palloc(r->pool, 2 * k * sizeof(ngx_milvuso_hit_t));
    mh = ngx_palloc(r->pool, k * sizeof(mv_hit_t));
    if (fresh == NULL || mh == NULL) {
        return 0;
    }

    snap = fresh + k;
    n_snap = 0;
    n_fresh = 0;

    if (view && view->n_items
        && sf->category != NGX_MILVUSO_CATEGORY_UNKNOWN)
    {
        filter.allow = ngx_milvuso_snap_allow;
        filter.ctx = sf;
        filter.candidates = NULL;
        filter.n_candidates = 0;

        if (sf->category == NGX_MILVUSO_CATEGORY_KNOWN) {
            c = sf->category_index;
            filter.candidates = view->cat_popular
                                + view->cat_popular_offsets[c];
            n_cand = view->cat_popular_offsets[c + 1]
                     - view->cat_popular_offsets[c];
            filter.n_candidates = n_cand;
        }

        ef = lcf->ef > k ? lcf->ef : k;

        /* no filter at all is the fast path of the search */
        n_snap = mv_hnsw_search(&view->graph, pr->kern, pr->scratch, query, k,
                                ef,
                                (sf->category == NGX_MILVUSO_CATEGORY_KNOWN
                                 || sf->n_excluded)
                                ? &filter : NULL,
                                mh);

        for (i = 0; i < n_snap; i++) {
            /* cosine similarity, minus squared L2, or the dot product */
            score = mv_metric_score(view->metric, mh[i].distance);
            ngx_milvuso_snap_hit(view, mh[i].id, score, &snap[i]);
        }
    }

    scanned = ngx_milvuso_fresh_scan(mcf->shm_zone->data, pr->kern,
                                     ngx_milvuso_metric(), query,
                                     ngx_milvuso_dim(mcf),
                                     ngx_milvuso_fresh_allow, ff, fresh, k,
                                     &n_fresh);

    *candidates = n_snap + scanned;

    return ngx_milvuso_merge(out, k, fresh, n_fresh, snap, n_snap);
}


ngx_int_t
ngx_milvuso_similar_handler(ngx_http_request_t *r)
{
    u_char                     *body, *p, *last;
    float                      *vec;
    int64_t                     idx;
    uint32_t                    dim, self;
    ngx_int_t                   rc;
    ngx_str_t                   item, list;
    ngx_uint_t                  k, n, cands;
    ngx_milvuso_hit_t          *hits;
    ngx_milvuso_req_ctx_t      *ctx;
    ngx_milvuso_zone_ctx_t     *z;
    ngx_milvuso_loc_conf_t     *lcf;
    ngx_milvuso_main_conf_t    *mcf;
    ngx_milvuso_action_rec_t    me;
    ngx_milvuso_snap_filter_t   sf;
    ngx_milvuso_fresh_filter_t  ff;
    ngx_milvuso_proc_t         *pr = &ngx_milvuso_proc;
    const mv_snapshot_view_t   *view;

    rc = ngx_milvuso_get_begin(r, NGX_MILVUSO_EP_SIMILAR, &ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_milvuso_module);
    z = mcf->shm_zone->data;
    view = pr->view;

    if (ngx_milvuso_last_segment(r, &item) != NGX_OK) {
        return ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid_id",
                                      "an item id is 1 to 64 bytes of "
                                      "[A-Za-z0-9._:-]");
    }

    if (ngx_milvuso_arg_uint(r, "k", 10, lcf->max_k, &k) != NGX_OK) {
        return ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_parameter",
                                      "k must be an integer from 1 to %ui",
                                      lcf->max_k);
    }

    dim = ngx_milvuso_dim(mcf);

    vec = ngx_palloc(r->pool, (dim ? dim : 1) * sizeof(float));
    hits = ngx_palloc(r->pool, k * sizeof(ngx_milvuso_hit_t));
    if (vec == NULL || hits == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    self = 0;
    sf.view = view;
    sf.category = NGX_MILVUSO_CATEGORY_ANY;
    sf.category_index = 0;
    sf.excluded = NULL;
    sf.n_excluded = 0;

    me.id_len = (uint8_t) item.len;
    ngx_memcpy(me.id, item.data, item.len);
    ff.view = view;
    ngx_str_null(&ff.category);
    ff.excluded = &me;
    ff.n_excluded = 1;

    /* a fresh copy is newer than the snapshot's */

    if (dim == 0
        || ngx_milvuso_fresh_get(z, item.data, item.len, vec, dim, NULL, NULL)
           != NGX_OK)
    {
        idx = view ? mv_idtable_find(&view->items, (const char *) item.data,
                                     item.len)
                   : -1;

        if (idx < 0 || (view->item_meta[idx].flags & MV_ITEM_DELETED)) {
            return ngx_milvuso_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                          "no item \"%V\"", &item);
        }

        ngx_memcpy(vec, view->item_vectors + (size_t) idx * dim,
                   dim * sizeof(float));
    }

    /* cosine compares directions; L2 and the inner product take the
       item's vector as it is (for the inner product its norm is part of
       every score) */
    if (ngx_milvuso_metric() == MV_METRIC_COSINE) {
        (void) mv_normalize(vec, dim);
    }

    if (view) {
        idx = mv_idtable_find(&view->items, (const char *) item.data,
                              item.len);
        if (idx >= 0) {
            self = (uint32_t) idx;
            sf.excluded = &self;
            sf.n_excluded = 1;
        }
    }

    ctx->generation = view ? view->generation : 0;
    ctx->has_generation = view != NULL;

    n = ngx_milvuso_search(r, vec, k, &sf, &ff, hits, &cands);
    ctx->candidates = cands;

    if (ngx_milvuso_render(r, hits, n, &list) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = ngx_pnalloc(r->pool, list.len + item.len + 128);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = body + list.len + item.len + 128;

    p = ngx_slprintf(body, last, "{\"item_id\":\"%V\",\"similar\":", &item);
    p = ngx_cpymem(p, list.data, list.len);

    if (view) {
        p = ngx_slprintf(p, last, ",\"model_generation\":%uL}\n",
                         view->generation);
    } else {
        p = ngx_slprintf(p, last, ",\"model_generation\":null}\n");
    }

    return ngx_milvuso_send_json(r, NGX_HTTP_OK, body, p - body);
}
