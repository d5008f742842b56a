/*
 * ngx_milvuso_recommend.c -- GET /recommendations/{user_id} and
 * GET /similar/{item_id}.
 *
 * A recommendation is a sequence of steps over one per-request structure
 * (ngx_milvuso_rec_t); ngx_milvuso_recommend_handler reads as that list:
 *   1. parse: the user id and the arguments (k, category, exclude_seen);
 *   2. profile: the user's real-time profile is copied out of the zone
 *      (with its version), and the fresh-item version read under the same
 *      lock;
 *   3. cache: the L1 cache is asked with a key made of the user, k, the
 *      filters, the model generation and both versions, so any action or
 *      new item makes the next request miss;
 *   4. filter: disliked items always, every item of the profile with
 *      exclude_seen, and the category, resolved once against the snapshot
 *      (any, known to the snapshot, or unknown to it: then nothing comes
 *      from the snapshot);
 *   5. query vector: the snapshot's user vector blended with the profile's
 *      time-decayed, action-weighted item vectors (shared/profile.h); items
 *      the profile names are found in the snapshot or among the fresh
 *      items;
 *   6. search: HNSW over the snapshot (category and exclude filter inside
 *      the search, shared/hnsw.h) plus an exact scan of the fresh items the
 *      snapshot does not include yet, merged, a fresh item replacing the
 *      snapshot's copy of the same id; with no query vector (no model
 *      vector, no usable profile) the popularity list (per category when
 *      asked), merged with fresh items by popularity;
 *   7. answer: the list rendered, cached, and wrapped in the JSON answer.
 * Each step returns NGX_DECLINED to go on, or what the handler returns.
 * Disliked items are never recommended; exclude_seen drops every item of
 * the profile.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>

#include "ngx_milvuso.h"


/* One GET /recommendations, as its steps fill it in. */
typedef struct {
    ngx_http_request_t          *r;
    ngx_milvuso_req_ctx_t       *ctx;
    ngx_milvuso_main_conf_t     *mcf;
    ngx_milvuso_loc_conf_t      *lcf;
    ngx_milvuso_zone_ctx_t      *zone;
    const mv_snapshot_view_t    *view;       /* NULL: no model */
    const mv_generation_t       *gen;        /* view's generation */
    uint64_t                     generation; /* 0 without a model */

    /* parse */
    ngx_str_t                    user;
    ngx_uint_t                   k;
    ngx_str_t                    category;   /* empty: any */
    ngx_uint_t                   exclude_seen;

    /* profile */
    ngx_milvuso_action_rec_t    *actions;    /* oldest first */
    ngx_uint_t                   n_actions;
    uint64_t                     profile_version;
    uint64_t                     fresh_version;

    /* cache */
    ngx_str_t                    key;        /* empty: not cached */

    /* filter */
    ngx_milvuso_snap_filter_t    sf;
    ngx_milvuso_fresh_filter_t   ff;

    /* query vector */
    uint32_t                     dim;
    float                       *query;      /* NULL: popularity */

    /* search and answer */
    ngx_milvuso_hit_t           *hits;
    ngx_uint_t                   n_hits;
    ngx_uint_t                   source;     /* NGX_MILVUSO_SRC_* */
    ngx_uint_t                   candidates;
    ngx_str_t                    list;       /* the rendered JSON array */
} ngx_milvuso_rec_t;


static int ngx_milvuso_blend_scale(void);
static ngx_int_t ngx_milvuso_rec_parse(ngx_milvuso_rec_t *rec);
static ngx_int_t ngx_milvuso_rec_profile(ngx_milvuso_rec_t *rec);
static ngx_int_t ngx_milvuso_rec_cache_get(ngx_milvuso_rec_t *rec);
static ngx_int_t ngx_milvuso_rec_servable(ngx_milvuso_rec_t *rec);
static ngx_int_t ngx_milvuso_rec_filter(ngx_milvuso_rec_t *rec);
static ngx_int_t ngx_milvuso_rec_query(ngx_milvuso_rec_t *rec);
static ngx_int_t ngx_milvuso_rec_search(ngx_milvuso_rec_t *rec);
static ngx_int_t ngx_milvuso_rec_popular(ngx_milvuso_rec_t *rec);
static ngx_int_t ngx_milvuso_rec_render(ngx_milvuso_rec_t *rec);
static ngx_int_t ngx_milvuso_rec_answer(ngx_milvuso_rec_t *rec);


/*
 * How the query blend is scaled under the loaded metric (shared/profile.h):
 * a unit vector for cosine; for the inner product the model's user vector
 * as it is (scores are then the model's own dot products), the profile
 * scaled to its norm.
 */
static int
ngx_milvuso_blend_scale(void)
{
    switch (ngx_milvuso_metric()) {

    case MV_METRIC_COSINE:
        return MV_BLEND_UNIT;

    case MV_METRIC_IP:
        return MV_BLEND_USER_NORM;

    default:
        return MV_BLEND_PLAIN;
    }
}


ngx_int_t
ngx_milvuso_recommend_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_milvuso_rec_t      *rec;
    ngx_milvuso_req_ctx_t  *ctx;

    rc = ngx_milvuso_get_begin(r, NGX_MILVUSO_EP_RECOMMEND, &ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rec = ngx_pcalloc(r->pool, sizeof(ngx_milvuso_rec_t));
    if (rec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rec->r = r;
    rec->ctx = ctx;
    rec->mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    rec->lcf = ngx_http_get_module_loc_conf(r, ngx_http_milvuso_module);
    rec->zone = rec->mcf->shm_zone->data;
    rec->view = ngx_milvuso_proc.view;
    rec->gen = ngx_milvuso_proc.gen;
    rec->generation = rec->view ? rec->view->generation : 0;

    rc = ngx_milvuso_rec_parse(rec);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_milvuso_rec_profile(rec);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_milvuso_rec_cache_get(rec);
    if (rc == NGX_OK) {
        return ngx_milvuso_rec_answer(rec);
    }

    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_milvuso_rec_servable(rec);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_milvuso_rec_filter(rec);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_milvuso_rec_query(rec);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = rec->query ? ngx_milvuso_rec_search(rec)
                    : ngx_milvuso_rec_popular(rec);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_milvuso_rec_render(rec);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_milvuso_rec_answer(rec);
}


/* 1. The user id (the URI's last segment) and the arguments. */
static ngx_int_t
ngx_milvuso_rec_parse(ngx_milvuso_rec_t *rec)
{
    ngx_str_t            value;
    ngx_http_request_t  *r = rec->r;

    if (ngx_milvuso_last_segment(r, &rec->user) != NGX_OK) {
        return ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid_id",
                                      "a user id is 1 to 64 bytes of "
                                      "[A-Za-z0-9._:-]");
    }

    if (ngx_milvuso_arg_uint(r, "num_recommendations", 10, rec->lcf->max_k,
                             &rec->k)
        != NGX_OK)
    {
        return ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_parameter",
                                      "num_recommendations must be an "
                                      "integer from 1 to %ui",
                                      rec->lcf->max_k);
    }

    ngx_str_null(&rec->category);

    if (ngx_http_arg(r, (u_char *) "category", 8, &value) == NGX_OK) {
        if (!mv_id_valid((const char *) value.data, value.len)) {
            return ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_parameter",
                                          "category must be 1 to 64 bytes "
                                          "of [A-Za-z0-9._:-]");
        }
        rec->category = value;
    }

    rec->exclude_seen = 0;

    if (ngx_http_arg(r, (u_char *) "exclude_seen", 12, &value) == NGX_OK) {
        if ((value.len == 1 && value.data[0] == '1')
            || (value.len == 4
                && ngx_strncasecmp(value.data, (u_char *) "true", 4) == 0))
        {
            rec->exclude_seen = 1;

        } else if (!((value.len == 1 && value.data[0] == '0')
                     || (value.len == 5
                         && ngx_strncasecmp(value.data, (u_char *) "false",
                                            5) == 0)))
        {
            return ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_parameter",
                                          "exclude_seen must be 1, 0, true "
                                          "or false");
        }
    }

    return NGX_DECLINED;
}


/* 2. The real-time profile and both versions, copied out of the zone. */
static ngx_int_t
ngx_milvuso_rec_profile(ngx_milvuso_rec_t *rec)
{
    ngx_milvuso_zone_ctx_t  *z = rec->zone;

    rec->actions = ngx_palloc(rec->r->pool, z->profile_size
                                        * sizeof(ngx_milvuso_action_rec_t));
    if (rec->actions == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_milvuso_profile_copy(z, rec->user.data, rec->user.len,
                                    rec->actions, z->profile_size,
                                    &rec->n_actions, &rec->profile_version,
                                    &rec->fresh_version);

    rec->ctx->generation = rec->generation;
    rec->ctx->has_generation = rec->view != NULL;

    return NGX_DECLINED;
}


/*
 * 3. The L1 cache: NGX_OK with rec->list set on a hit, NGX_DECLINED on a
 * miss (rec->key set when the answer is to be cached), or an error.
 */
static ngx_int_t
ngx_milvuso_rec_cache_get(ngx_milvuso_rec_t *rec)
{
    u_char      *key, *last;
    ngx_uint_t   source, cands;

    if (rec->lcf->cache_ttl == 0) {
        return NGX_DECLINED;
    }

    key = ngx_pnalloc(rec->r->pool, NGX_MILVUSO_KEY_MAX);
    if (key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_snprintf(key, NGX_MILVUSO_KEY_MAX,
                        "%V|%ui|%V|%ui|%uL|%uL|%uL",
                        &rec->user, rec->k, &rec->category,
                        rec->exclude_seen, rec->generation,
                        rec->profile_version, rec->fresh_version);

    rec->key.data = key;
    rec->key.len = last - key;

    if (ngx_milvuso_cache_get(rec->zone, key, rec->key.len, rec->r->pool,
                              &rec->list, &source, &cands)
        == NGX_OK)
    {
        (void) ngx_atomic_fetch_add(&rec->zone->sh->cache_hits, 1);
        rec->ctx->source = NGX_MILVUSO_SRC_CACHE;
        rec->ctx->candidates = cands;
        return NGX_OK;
    }

    (void) ngx_atomic_fetch_add(&rec->zone->sh->cache_misses, 1);

    return NGX_DECLINED;
}


/* Something to recommend from: a model, or posted items of a known dim. */
static ngx_int_t
ngx_milvuso_rec_servable(ngx_milvuso_rec_t *rec)
{
    rec->dim = ngx_milvuso_dim(rec->mcf);

    if (rec->view == NULL && (rec->dim == 0 || rec->zone->sh->n_fresh == 0)) {
        return ngx_milvuso_send_error(rec->r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "no_model",
                                      "no snapshot is loaded and no item "
                                      "has been posted: %s",
                                      ngx_milvuso_proc.error);
    }

    return NGX_DECLINED;
}


/*
 * 4. The filters of both sources: disliked items always, every seen item
 * when asked, and the category resolved against the snapshot.
 */
static ngx_int_t
ngx_milvuso_rec_filter(ngx_milvuso_rec_t *rec)
{
    int64_t                      idx;
    uint32_t                    *excl;
    ngx_uint_t                   i, n_excl;
    ngx_milvuso_action_rec_t    *seen, *a;
    ngx_milvuso_snap_filter_t   *sf = &rec->sf;
    ngx_milvuso_fresh_filter_t  *ff = &rec->ff;
    const mv_snapshot_view_t    *view = rec->view;

    seen = ngx_palloc(rec->r->pool, (rec->n_actions + 1)
                                    * sizeof(ngx_milvuso_action_rec_t));
    excl = ngx_palloc(rec->r->pool, (rec->n_actions + 1) * sizeof(uint32_t));
    if (seen == NULL || excl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n_excl = 0;
    ff->n_excluded = 0;

    for (i = 0; i < rec->n_actions; i++) {
        a = &rec->actions[i];

        if (!rec->exclude_seen && a->type != MV_ACTION_DISLIKE) {
            continue;
        }

        seen[ff->n_excluded++] = *a;

        if (view) {
            idx = mv_idtable_find(&view->items, (const char *) a->id,
                                  a->id_len);
            if (idx >= 0) {
                excl[n_excl++] = (uint32_t) idx;
            }
        }
    }

    qsort(excl, n_excl, sizeof(uint32_t), ngx_milvuso_cmp_u32);

    sf->view = view;
    sf->category = NGX_MILVUSO_CATEGORY_ANY;
    sf->excluded = excl;
    sf->n_excluded = n_excl;

    ff->view = view;
    ff->category = rec->category;
    ff->excluded = seen;

    if (rec->category.len) {
        sf->category = NGX_MILVUSO_CATEGORY_UNKNOWN;

        if (view) {
            idx = mv_idtable_find(&view->categories,
                                  (const char *) rec->category.data,
                                  rec->category.len);
            if (idx >= 0) {
                sf->category = NGX_MILVUSO_CATEGORY_KNOWN;
                sf->category_index = (uint32_t) idx;
            }
        }
    }

    rec->hits = ngx_palloc(rec->r->pool, rec->k * sizeof(ngx_milvuso_hit_t));
    if (rec->hits == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/*
 * 5. The query vector: the snapshot's user vector blended with the
 * profile's.  rec->query stays NULL when there is neither (popularity);
 * otherwise rec->source says which one led (index: the user's model
 * vector, profile: the real-time profile alone).
 */
static ngx_int_t
ngx_milvuso_rec_query(ngx_milvuso_rec_t *rec)
{
    float                     *uvec, *pvec, *q, *fvec;
    int64_t                    idx;
    uint32_t                   dim = rec->dim;
    ngx_uint_t                 i, n_terms;
    mv_profile_term_t         *terms;
    ngx_milvuso_action_rec_t  *a;
    const mv_snapshot_view_t  *view = rec->view;

    rec->query = NULL;

    if (dim == 0) {
        return NGX_DECLINED;
    }

    q = ngx_palloc(rec->r->pool, 2 * dim * sizeof(float));
    terms = ngx_palloc(rec->r->pool, (rec->n_actions + 1)
                                     * sizeof(mv_profile_term_t));
    fvec = ngx_palloc(rec->r->pool, (rec->n_actions + 1) * dim
                                    * sizeof(float));
    if (q == NULL || terms == NULL || fvec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    uvec = NULL;

    if (view) {
        uvec = (float *) mv_generation_user(rec->gen,
                                            (const char *) rec->user.data,
                                            rec->user.len);
    }

    /* the profile's items: in the snapshot, else among the fresh items */

    n_terms = 0;

    for (i = 0; i < rec->n_actions; i++) {
        a = &rec->actions[i];
        terms[n_terms].time_ms = a->time_ms;
        terms[n_terms].weight = a->weight;

        idx = -1;
        if (view) {
            idx = mv_idtable_find(&view->items, (const char *) a->id,
                                  a->id_len);
        }

        if (idx >= 0) {
            terms[n_terms++].vec = view->item_vectors + (size_t) idx * dim;
            continue;
        }

        if (ngx_milvuso_fresh_get(rec->zone, a->id, a->id_len,
                                  fvec + n_terms * dim, dim, NULL, NULL)
            == NGX_OK)
        {
            terms[n_terms].vec = fvec + n_terms * dim;
            n_terms++;
        }
    }

    pvec = q + dim;

    if (n_terms == 0
        || mv_profile_vector(terms, n_terms, dim, mv_clock_realtime_ms(),
                             (double) rec->mcf->profile_half_life, pvec)
           != MV_OK)
    {
        pvec = NULL;
    }

    if (uvec == NULL && pvec == NULL) {
        return NGX_DECLINED;
    }

    if (mv_profile_blend(uvec, pvec, dim, rec->mcf->profile_weight,
                         ngx_milvuso_blend_scale(), q)
        != MV_OK)
    {
        return NGX_DECLINED;
    }

    rec->query = q;
    rec->source = uvec ? NGX_MILVUSO_SRC_INDEX : NGX_MILVUSO_SRC_PROFILE;

    return NGX_DECLINED;
}


/* 6. The k nearest to the query vector, snapshot and fresh items merged. */
static ngx_int_t
ngx_milvuso_rec_search(ngx_milvuso_rec_t *rec)
{
    rec->n_hits = ngx_milvuso_search(rec->r, rec->query, rec->k, &rec->sf,
                                     &rec->ff, rec->hits, &rec->candidates);

    return NGX_DECLINED;
}


/*
 * 6'. No query vector: the snapshot's popularity list (per category) and
 * the fresh items by popularity.
 */
static ngx_int_t
ngx_milvuso_rec_popular(ngx_milvuso_rec_t *rec)
{
    size_t                      j, n_pop;
    uint32_t                    c;
    ngx_uint_t                  n, n_fresh, k = rec->k;
    const uint32_t             *pop;
    ngx_milvuso_hit_t          *fresh, *snap;
    ngx_milvuso_snap_filter_t  *sf = &rec->sf;
    const mv_snapshot_view_t   *view = rec->view;

    fresh = ngx_palloc(rec->r->pool, 2 * k * sizeof(ngx_milvuso_hit_t));
    if (fresh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    snap = fresh + k;
    n = 0;
    rec->candidates = 0;

    if (view && sf->category != NGX_MILVUSO_CATEGORY_UNKNOWN) {
        if (sf->category == NGX_MILVUSO_CATEGORY_KNOWN) {
            c = sf->category_index;
            pop = view->cat_popular + view->cat_popular_offsets[c];
            n_pop = view->cat_popular_offsets[c + 1]
                    - view->cat_popular_offsets[c];
        } else {
            pop = view->popular;
            n_pop = view->n_popular;
        }

        for (j = 0; j < n_pop && n < k; j++) {
            rec->candidates++;
            if (ngx_milvuso_snap_allow(sf, pop[j])) {
                ngx_milvuso_snap_hit(view, pop[j],
                                     view->item_meta[pop[j]].popularity,
                                     &snap[n++]);
            }
        }
    }

    n_fresh = 0;
    rec->candidates += ngx_milvuso_fresh_scan(rec->zone,
                                              ngx_milvuso_proc.kern,
                                              ngx_milvuso_metric(), NULL,
                                              rec->dim,
                                              ngx_milvuso_fresh_allow,
                                              &rec->ff, fresh, k, &n_fresh);

    rec->n_hits = ngx_milvuso_merge(rec->hits, k, fresh, n_fresh, snap, n);
    rec->source = NGX_MILVUSO_SRC_POPULAR;

    return NGX_DECLINED;
}


/* 7. The hits as a JSON array, kept in the cache when the key is set. */
static ngx_int_t
ngx_milvuso_rec_render(ngx_milvuso_rec_t *rec)
{
    if (ngx_milvuso_render(rec->r, rec->hits, rec->n_hits, &rec->list)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rec->ctx->source = rec->source;
    rec->ctx->candidates = rec->candidates;

    if (rec->key.len) {
        ngx_milvuso_cache_put(rec->zone, rec->key.data, rec->key.len,
                              rec->lcf->cache_ttl, &rec->list, rec->source,
                              rec->candidates);
    }

    return NGX_DECLINED;
}


/* 7'. The answer around the list (fresh or cached). */
static ngx_int_t
ngx_milvuso_rec_answer(ngx_milvuso_rec_t *rec)
{
    u_char      *body, *p, *last;
    size_t       size;
    ngx_uint_t   source = rec->ctx->source;

    size = rec->list.len + rec->user.len + 160;

    body = ngx_pnalloc(rec->r->pool, size);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = body + size;

    p = ngx_slprintf(body, last, "{\"user_id\":\"%V\",\"recommendations\":",
                     &rec->user);
    p = ngx_cpymem(p, rec->list.data, rec->list.len);

    if (rec->view) {
        p = ngx_slprintf(p, last, ",\"model_generation\":%uL",
                         rec->generation);
    } else {
        p = ngx_slprintf(p, last, ",\"model_generation\":null");
    }

    p = ngx_slprintf(p, last, ",\"source\":\"%s\"}\n",
                     source == NGX_MILVUSO_SRC_CACHE ? "cache"
                     : source == NGX_MILVUSO_SRC_INDEX ? "index"
                     : source == NGX_MILVUSO_SRC_PROFILE ? "profile"
                     : "popular");

    return ngx_milvuso_send_json(rec->r, NGX_HTTP_OK, body, p - body);
}
