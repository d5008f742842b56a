/*
 * ngx_milvuso_recommend.c -- GET /recommendations/{user_id} and
 * GET /similar/{item_id}.
 *
 * A recommendation, in order:
 *   1. the user's real-time profile is copied out of the zone (with its
 *      version), and the fresh-item version read under the same lock;
 *   2. the L1 cache is asked with a key made of the user, k, the filters,
 *      the model generation and both versions, so any action or new item
 *      makes the next request miss;
 *   3. the query vector: the snapshot's user vector blended with the
 *      profile's time-decayed, action-weighted item vectors
 *      (shared/profile.h); items the profile names are found in the
 *      snapshot or among the fresh items;
 *   4. HNSW over the snapshot (category and exclude filter inside the
 *      search, shared/hnsw.h) plus an exact scan of the fresh items the
 *      snapshot does not include yet; the two lists are merged, a fresh
 *      item replacing the snapshot's copy of the same id;
 *   5. no model vector and no usable profile: the popularity list (per
 *      category when asked), merged with fresh items by popularity.
 * Disliked items are never recommended; exclude_seen drops every item of
 * the profile.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>

#include "ngx_milvuso.h"


typedef struct {
    const mv_snapshot_view_t  *view;
    int64_t                    category;     /* -1: any */
    const uint32_t            *excluded;     /* sorted snapshot indices */
    size_t                     n_excluded;
} ngx_milvuso_snap_filter_t;

typedef struct {
    const mv_snapshot_view_t  *view;
    ngx_str_t                  category;     /* empty: any */
    ngx_milvuso_action_rec_t  *excluded;
    ngx_uint_t                 n_excluded;
} ngx_milvuso_fresh_filter_t;

typedef struct {
    ngx_uint_t                 k;
    ngx_str_t                  category;
    ngx_uint_t                 exclude_seen;
} ngx_milvuso_query_args_t;


static ngx_int_t ngx_milvuso_arg_uint(ngx_http_request_t *r, char *name,
    ngx_uint_t def, ngx_uint_t max, ngx_uint_t *out);
static int ngx_milvuso_snap_allow(const void *data, uint32_t id);
static ngx_int_t ngx_milvuso_fresh_allow(void *data,
    const ngx_milvuso_fresh_t *f);
static void ngx_milvuso_snap_hit(const mv_snapshot_view_t *view,
    uint32_t idx, float score, ngx_milvuso_hit_t *h);
static ngx_uint_t ngx_milvuso_merge(ngx_milvuso_hit_t *out, ngx_uint_t k,
    ngx_milvuso_hit_t *fresh, ngx_uint_t n_fresh, ngx_milvuso_hit_t *snap,
    ngx_uint_t n_snap);
static ngx_int_t ngx_milvuso_render(ngx_http_request_t *r,
    ngx_milvuso_hit_t *hits, ngx_uint_t n, ngx_str_t *out);
static ngx_uint_t ngx_milvuso_search(ngx_http_request_t *r,
    const float *query, ngx_uint_t k, ngx_milvuso_snap_filter_t *sf,
    ngx_milvuso_fresh_filter_t *ff, ngx_milvuso_hit_t *out,
    ngx_uint_t *candidates);
static int ngx_milvuso_cmp_u32(const void *a, const void *b);
static int ngx_milvuso_blend_scale(void);


static ngx_int_t
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


static int
ngx_milvuso_cmp_u32(const void *a, const void *b)
{
    uint32_t  x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return (x > y) - (x < y);
}


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


static int
ngx_milvuso_snap_allow(const void *data, uint32_t id)
{
    const ngx_milvuso_snap_filter_t  *sf = data;

    if (sf->category >= 0
        && sf->view->item_meta[id].category != (uint32_t) sf->category)
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
static ngx_int_t
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


static void
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


static ngx_uint_t
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


static ngx_int_t
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
static ngx_uint_t
ngx_milvuso_search(ngx_http_request_t *r, const float *query, ngx_uint_t k,
    ngx_milvuso_snap_filter_t *sf, ngx_milvuso_fresh_filter_t *ff,
    ngx_milvuso_hit_t *out, ngx_uint_t *candidates)
{
    size_t                     i, n_snap, n_cand;
    float                      score;
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

    if (view && view->n_items && sf->category != -2) {
        filter.allow = ngx_milvuso_snap_allow;
        filter.ctx = sf;
        filter.candidates = NULL;
        filter.n_candidates = 0;

        if (sf->category >= 0) {
            filter.candidates = view->cat_popular
                                + view->cat_popular_offsets[sf->category];
            n_cand = view->cat_popular_offsets[sf->category + 1]
                     - view->cat_popular_offsets[sf->category];
            filter.n_candidates = n_cand;
        }

        ef = lcf->ef > k ? lcf->ef : k;

        /* no filter at all is the fast path of the search */
        n_snap = mv_hnsw_search(&view->graph, pr->kern, pr->scratch, query, k,
                                ef,
                                (sf->category >= 0 || sf->n_excluded)
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
ngx_milvuso_recommend_handler(ngx_http_request_t *r)
{
    u_char                     *key, *kp, *body, *p, *last;
    float                      *uvec, *pvec, *q, *fvec;
    int64_t                     idx, now;
    uint64_t                    pversion, fversion, generation;
    uint32_t                    dim;
    ngx_int_t                   rc;
    ngx_str_t                   user, value, list;
    ngx_uint_t                  i, n_actions, n_terms, n, source, cands;
    ngx_uint_t                  n_excl, disliked_only;
    uint32_t                   *excl;
    size_t                      j, n_pop;
    const uint32_t             *pop;
    ngx_milvuso_hit_t          *hits, *fresh, *snap;
    mv_profile_term_t          *terms;
    ngx_milvuso_req_ctx_t      *ctx;
    ngx_milvuso_zone_ctx_t     *z;
    ngx_milvuso_loc_conf_t     *lcf;
    ngx_milvuso_main_conf_t    *mcf;
    ngx_milvuso_action_rec_t   *actions, *seen;
    ngx_milvuso_query_args_t    args;
    ngx_milvuso_snap_filter_t   sf;
    ngx_milvuso_fresh_filter_t  ff;
    ngx_milvuso_proc_t         *pr = &ngx_milvuso_proc;
    const mv_snapshot_view_t   *view;

    rc = ngx_milvuso_get_begin(r, NGX_MILVUSO_EP_RECOMMEND, &ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_milvuso_module);
    z = mcf->shm_zone->data;
    view = pr->view;

    if (ngx_milvuso_last_segment(r, &user) != NGX_OK) {
        return ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid_id",
                                      "a user id is 1 to 64 bytes of "
                                      "[A-Za-z0-9._:-]");
    }

    /* arguments */

    if (ngx_milvuso_arg_uint(r, "num_recommendations", 10, lcf->max_k,
                             &args.k)
        != NGX_OK)
    {
        return ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_parameter",
                                      "num_recommendations must be an "
                                      "integer from 1 to %ui", lcf->max_k);
    }

    ngx_str_null(&args.category);

    if (ngx_http_arg(r, (u_char *) "category", 8, &value) == NGX_OK) {
        if (!mv_id_valid((const char *) value.data, value.len)) {
            return ngx_milvuso_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_parameter",
                                          "category must be 1 to 64 bytes "
                                          "of [A-Za-z0-9._:-]");
        }
        args.category = value;
    }

    args.exclude_seen = 0;

    if (ngx_http_arg(r, (u_char *) "exclude_seen", 12, &value) == NGX_OK) {
        if ((value.len == 1 && value.data[0] == '1')
            || (value.len == 4
                && ngx_strncasecmp(value.data, (u_char *) "true", 4) == 0))
        {
            args.exclude_seen = 1;

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

    /* the real-time profile, copied out */

    actions = ngx_palloc(r->pool, z->profile_size
                                  * sizeof(ngx_milvuso_action_rec_t));
    if (actions == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_milvuso_profile_copy(z, user.data, user.len, actions,
                                    z->profile_size, &n_actions, &pversion,
                                    &fversion);
    generation = view ? view->generation : 0;
    ctx->generation = generation;
    ctx->has_generation = view != NULL;

    /* the L1 cache */

    key = NULL;
    kp = NULL;

    if (lcf->cache_ttl) {
        key = ngx_pnalloc(r->pool, NGX_MILVUSO_KEY_MAX);
        if (key == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        kp = ngx_snprintf(key, NGX_MILVUSO_KEY_MAX, "%V|%ui|%V|%ui|%uL|%uL|%uL",
                          &user, args.k, &args.category, args.exclude_seen,
                          generation, pversion, fversion);

        if (ngx_milvuso_cache_get(z, key, kp - key, r->pool, &list, &source,
                                  &cands)
            == NGX_OK)
        {
            (void) ngx_atomic_fetch_add(&z->sh->cache_hits, 1);
            ctx->source = NGX_MILVUSO_SRC_CACHE;
            ctx->candidates = cands;
            goto answer;
        }

        (void) ngx_atomic_fetch_add(&z->sh->cache_misses, 1);
    }

    dim = ngx_milvuso_dim(mcf);

    if (view == NULL && (dim == 0 || z->sh->n_fresh == 0)) {
        return ngx_milvuso_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "no_model",
                                      "no snapshot is loaded and no item "
                                      "has been posted: %s", pr->error);
    }

    /* filters: disliked items always, every seen item when asked */

    seen = ngx_palloc(r->pool, (n_actions + 1)
                               * sizeof(ngx_milvuso_action_rec_t));
    excl = ngx_palloc(r->pool, (n_actions + 1) * sizeof(uint32_t));
    if (seen == NULL || excl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n_excl = 0;
    ff.n_excluded = 0;

    for (i = 0; i < n_actions; i++) {
        disliked_only = actions[i].type == MV_ACTION_DISLIKE;

        if (!args.exclude_seen && !disliked_only) {
            continue;
        }

        seen[ff.n_excluded++] = actions[i];

        if (view) {
            idx = mv_idtable_find(&view->items, (const char *) actions[i].id,
                                  actions[i].id_len);
            if (idx >= 0) {
                excl[n_excl++] = (uint32_t) idx;
            }
        }
    }

    qsort(excl, n_excl, sizeof(uint32_t), ngx_milvuso_cmp_u32);

    sf.view = view;
    sf.category = -1;
    sf.excluded = excl;
    sf.n_excluded = n_excl;

    ff.view = view;
    ff.category = args.category;
    ff.excluded = seen;

    if (args.category.len) {
        sf.category = -2;   /* unknown to the snapshot: nothing from it */

        if (view) {
            idx = mv_idtable_find(&view->categories,
                                  (const char *) args.category.data,
                                  args.category.len);
            if (idx >= 0) {
                sf.category = idx;
            }
        }
    }

    hits = ngx_palloc(r->pool, args.k * sizeof(ngx_milvuso_hit_t));
    if (hits == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the query vector */

    q = NULL;
    uvec = NULL;
    pvec = NULL;
    now = mv_clock_realtime_ms();

    if (dim) {
        q = ngx_palloc(r->pool, 2 * dim * sizeof(float));
        terms = ngx_palloc(r->pool, (n_actions + 1)
                                    * sizeof(mv_profile_term_t));
        fvec = ngx_palloc(r->pool, (n_actions + 1) * dim * sizeof(float));
        if (q == NULL || terms == NULL || fvec == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (view) {
            idx = mv_idtable_find(&view->users, (const char *) user.data,
                                  user.len);
            if (idx >= 0) {
                uvec = (float *) view->user_vectors + (size_t) idx * dim;
            }
        }

        n_terms = 0;

        for (i = 0; i < n_actions; i++) {
            terms[n_terms].time_ms = actions[i].time_ms;
            terms[n_terms].weight = actions[i].weight;

            idx = -1;
            if (view) {
                idx = mv_idtable_find(&view->items,
                                      (const char *) actions[i].id,
                                      actions[i].id_len);
            }

            if (idx >= 0) {
                terms[n_terms++].vec = view->item_vectors + (size_t) idx * dim;
                continue;
            }

            if (ngx_milvuso_fresh_get(z, actions[i].id, actions[i].id_len,
                                      fvec + n_terms * dim, dim, NULL, NULL)
                == NGX_OK)
            {
                terms[n_terms].vec = fvec + n_terms * dim;
                n_terms++;
            }
        }

        pvec = q + dim;

        if (n_terms == 0
            || mv_profile_vector(terms, n_terms, dim, now,
                                 (double) mcf->profile_half_life, pvec)
               != MV_OK)
        {
            pvec = NULL;
        }

        if (uvec == NULL && pvec == NULL) {
            q = NULL;

        } else if (mv_profile_blend(uvec, pvec, dim, mcf->profile_weight,
                                    ngx_milvuso_blend_scale(), q)
                   != MV_OK)
        {
            q = NULL;
        }
    }

    if (q) {
        n = ngx_milvuso_search(r, q, args.k, &sf, &ff, hits, &cands);
        source = uvec ? NGX_MILVUSO_SRC_INDEX : NGX_MILVUSO_SRC_PROFILE;

    } else {
        /* popularity: the snapshot's list (per category) and fresh items */

        fresh = ngx_palloc(r->pool, 2 * args.k * sizeof(ngx_milvuso_hit_t));
        if (fresh == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        snap = fresh + args.k;
        n = 0;
        cands = 0;

        if (view && sf.category != -2) {
            if (sf.category >= 0) {
                pop = view->cat_popular
                      + view->cat_popular_offsets[sf.category];
                n_pop = view->cat_popular_offsets[sf.category + 1]
                        - view->cat_popular_offsets[sf.category];
            } else {
                pop = view->popular;
                n_pop = view->n_popular;
            }

            for (j = 0; j < n_pop && n < args.k; j++) {
                cands++;
                if (ngx_milvuso_snap_allow(&sf, pop[j])) {
                    ngx_milvuso_snap_hit(view, pop[j],
                                         view->item_meta[pop[j]].popularity,
                                         &snap[n++]);
                }
            }
        }

        i = 0;
        cands += ngx_milvuso_fresh_scan(z, pr->kern, ngx_milvuso_metric(),
                                        NULL, dim, ngx_milvuso_fresh_allow,
                                        &ff, fresh, args.k, &i);

        n = ngx_milvuso_merge(hits, args.k, fresh, i, snap, n);
        source = NGX_MILVUSO_SRC_POPULAR;
    }

    if (ngx_milvuso_render(r, hits, n, &list) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->source = source;
    ctx->candidates = cands;

    if (key) {
        ngx_milvuso_cache_put(z, key, kp - key, lcf->cache_ttl, &list, source,
                              cands);
    }

answer:

    body = ngx_pnalloc(r->pool, list.len + user.len + 160);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = body + list.len + user.len + 160;

    p = ngx_slprintf(body, last, "{\"user_id\":\"%V\",\"recommendations\":",
                     &user);
    p = ngx_cpymem(p, list.data, list.len);

    if (view) {
        p = ngx_slprintf(p, last, ",\"model_generation\":%uL", generation);
    } else {
        p = ngx_slprintf(p, last, ",\"model_generation\":null");
    }

    p = ngx_slprintf(p, last, ",\"source\":\"%s\"}\n",
                     ctx->source == NGX_MILVUSO_SRC_CACHE ? "cache"
                     : ctx->source == NGX_MILVUSO_SRC_INDEX ? "index"
                     : ctx->source == NGX_MILVUSO_SRC_PROFILE ? "profile"
                     : "popular");

    return ngx_milvuso_send_json(r, NGX_HTTP_OK, body, p - body);
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
    sf.category = -1;
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
