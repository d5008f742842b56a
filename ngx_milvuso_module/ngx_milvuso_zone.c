/*
 * ngx_milvuso_zone.c -- the shared zone: real-time user profiles, items
 * posted since the snapshot ("fresh" items), the L1 result cache and the
 * counters behind /metrics.
 *
 * Three red-black trees keyed by a murmur hash of the entry's key (ties
 * broken by the key bytes), each with a queue: profiles and cache entries in
 * LRU order, fresh items newest first.  All three live in one slab pool and
 * are guarded by its mutex; critical sections are short copies in or out.
 *
 * Memory: when the slab is full an allocation evicts, in this order, cache
 * entries (cheap to recompute), then the least recently active profiles,
 * then the oldest fresh items (they are in the action log, so the trainer
 * still gets them), a bounded number of times.  Cache entries also expire
 * lazily by TTL (absolute milliseconds), as in OpenResty's shared dicts.
 *
 * Versions: every profile change takes a new number from one zone-wide
 * sequence (so a profile evicted and created again never repeats a version)
 * and every fresh-item change bumps fresh_version.  Cache keys include both,
 * which makes invalidation implicit: an action or a new item changes the key
 * of the next request, and the stale entries age out of the LRU.
 *
 * Trainer lag: last_accept_ms, the newest acceptance of a write into the
 * stream, is kept as a lock-free maximum; /health compares it with the
 * mapped model's created_at to tell whether the trainer is behind.
 *
 * Reload: the zone is reused as is; a reload that changes the profile size
 * (the layout of profile entries) or loads a module with another zone
 * layout (NGX_MILVUSO_LAYOUT_VERSION) is refused, naming which of the two
 * changed.  A changed zone size is
 * refused at configuration time (ngx_milvuso_module.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <float.h>
#include <math.h>

#include "ngx_milvuso.h"


#define NGX_MILVUSO_EVICT_TRIES   64


static void ngx_milvuso_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_milvuso_entry_t *ngx_milvuso_lookup(ngx_rbtree_t *tree,
    const u_char *key, size_t len, uint32_t hash);
static void *ngx_milvuso_alloc_locked(ngx_milvuso_zone_ctx_t *z, size_t size,
    ngx_uint_t cache_only);
static ngx_int_t ngx_milvuso_evict_one_locked(ngx_milvuso_zone_ctx_t *z);
static void ngx_milvuso_delete_locked(ngx_milvuso_zone_ctx_t *z,
    ngx_rbtree_t *tree, ngx_milvuso_entry_t *e, ngx_uint_t *count);
static void ngx_milvuso_cache_expire_locked(ngx_milvuso_zone_ctx_t *z,
    int64_t now, ngx_uint_t n);
static ngx_int_t ngx_milvuso_fresh_included(const mv_snapshot_view_t *view,
    const ngx_milvuso_fresh_t *f);


ngx_int_t
ngx_milvuso_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_milvuso_zone_ctx_t  *octx = data;

    size_t                   len;
    ngx_milvuso_zone_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* layout_version and profile_size open ngx_milvuso_shctx_t in
           every layout: readable whatever module created the zone */

        if (octx->sh->layout_version != NGX_MILVUSO_LAYOUT_VERSION) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "milvuso_zone \"%V\" was created by a module "
                          "with zone layout version %ui, this module uses "
                          "layout version %ui; an upgrade that changes the "
                          "layout needs a restart, not a reload",
                          &shm_zone->shm.name, octx->sh->layout_version,
                          (ngx_uint_t) NGX_MILVUSO_LAYOUT_VERSION);
            return NGX_ERROR;
        }

        if (octx->sh->profile_size != ctx->profile_size) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "milvuso_zone \"%V\" was created with profile "
                          "size=%ui, the new configuration asks for %ui; "
                          "changing it needs a restart, not a reload",
                          &shm_zone->shm.name, octx->sh->profile_size,
                          ctx->profile_size);
            return NGX_ERROR;
        }

        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;

        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool, sizeof(ngx_milvuso_shctx_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(ctx->sh, sizeof(ngx_milvuso_shctx_t));

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->profiles, &ctx->sh->profiles_sentinel,
                    ngx_milvuso_rbtree_insert_value);
    ngx_queue_init(&ctx->sh->profiles_lru);
    ngx_rbtree_init(&ctx->sh->fresh, &ctx->sh->fresh_sentinel,
                    ngx_milvuso_rbtree_insert_value);
    ngx_queue_init(&ctx->sh->fresh_age);
    ngx_rbtree_init(&ctx->sh->cache, &ctx->sh->cache_sentinel,
                    ngx_milvuso_rbtree_insert_value);
    ngx_queue_init(&ctx->sh->cache_lru);

    ctx->sh->layout_version = NGX_MILVUSO_LAYOUT_VERSION;
    ctx->sh->profile_size = ctx->profile_size;

    len = sizeof(" in milvuso zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in milvuso zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* the LRUs expect to evict: no "no memory" alerts */
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


uint32_t
ngx_milvuso_key_hash(const u_char *key, size_t len)
{
    return ngx_murmur_hash2((u_char *) key, len);
}


static void
ngx_milvuso_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t    **p;
    ngx_milvuso_entry_t   *en, *et;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            en = (ngx_milvuso_entry_t *) node;
            et = (ngx_milvuso_entry_t *) temp;

            p = (ngx_memn2cmp(en->key, et->key, en->key_len, et->key_len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_milvuso_entry_t *
ngx_milvuso_lookup(ngx_rbtree_t *tree, const u_char *key, size_t len,
    uint32_t hash)
{
    ngx_int_t             rc;
    ngx_rbtree_node_t    *node, *sentinel;
    ngx_milvuso_entry_t  *e;

    node = tree->root;
    sentinel = tree->sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        e = (ngx_milvuso_entry_t *) node;

        rc = ngx_memn2cmp((u_char *) key, e->key, len, e->key_len);

        if (rc == 0) {
            return e;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_milvuso_delete_locked(ngx_milvuso_zone_ctx_t *z, ngx_rbtree_t *tree,
    ngx_milvuso_entry_t *e, ngx_uint_t *count)
{
    ngx_queue_remove(&e->queue);
    ngx_rbtree_delete(tree, &e->node);
    ngx_slab_free_locked(z->shpool, e);
    (*count)--;
}


/* Frees one entry, cheapest to lose first.  NGX_DECLINED when empty. */
static ngx_int_t
ngx_milvuso_evict_one_locked(ngx_milvuso_zone_ctx_t *z)
{
    ngx_queue_t          *q;
    ngx_milvuso_shctx_t  *sh = z->sh;

    if (!ngx_queue_empty(&sh->cache_lru)) {
        q = ngx_queue_last(&sh->cache_lru);
        ngx_milvuso_delete_locked(z, &sh->cache,
            ngx_queue_data(q, ngx_milvuso_entry_t, queue), &sh->n_cache);

    } else if (!ngx_queue_empty(&sh->profiles_lru)) {
        q = ngx_queue_last(&sh->profiles_lru);
        ngx_milvuso_delete_locked(z, &sh->profiles,
            ngx_queue_data(q, ngx_milvuso_entry_t, queue), &sh->n_profiles);

    } else if (!ngx_queue_empty(&sh->fresh_age)) {
        q = ngx_queue_last(&sh->fresh_age);
        ngx_milvuso_delete_locked(z, &sh->fresh,
            ngx_queue_data(q, ngx_milvuso_entry_t, queue), &sh->n_fresh);
        sh->fresh_version++;

    } else {
        return NGX_DECLINED;
    }

    (void) ngx_atomic_fetch_add(&sh->evictions, 1);

    return NGX_OK;
}


/*
 * Allocates, evicting as needed.  cache_only: a cache entry may only push
 * out other cache entries, never profiles or fresh items (a burst of large
 * cache-busting lists must not wear down the real-time state).
 */
static void *
ngx_milvuso_alloc_locked(ngx_milvuso_zone_ctx_t *z, size_t size,
    ngx_uint_t cache_only)
{
    void        *p;
    ngx_uint_t   i;

    for (i = 0; i < NGX_MILVUSO_EVICT_TRIES; i++) {

        p = ngx_slab_alloc_locked(z->shpool, size);
        if (p) {
            return p;
        }

        if (cache_only) {
            if (ngx_queue_empty(&z->sh->cache_lru)) {
                break;
            }

            ngx_milvuso_delete_locked(z, &z->sh->cache,
                ngx_queue_data(ngx_queue_last(&z->sh->cache_lru),
                               ngx_milvuso_entry_t, queue),
                &z->sh->n_cache);
            (void) ngx_atomic_fetch_add(&z->sh->evictions, 1);
            continue;
        }

        if (ngx_milvuso_evict_one_locked(z) != NGX_OK) {
            break;
        }
    }

    return NULL;
}


static void
ngx_milvuso_entry_set_key(ngx_milvuso_entry_t *e, const u_char *key,
    size_t len, uint32_t hash)
{
    e->node.key = hash;
    e->key_len = (u_short) len;
    ngx_memcpy(e->key, key, len);
}


ngx_int_t
ngx_milvuso_profile_add(ngx_milvuso_zone_ctx_t *z,
    ngx_milvuso_main_conf_t *mcf, const mv_action_t *a)
{
    size_t                     len;
    uint32_t                   hash;
    ngx_milvuso_shctx_t       *sh = z->sh;
    ngx_milvuso_profile_t     *p;
    ngx_milvuso_action_rec_t  *rec;

    len = ngx_strlen(a->user_id);
    hash = ngx_milvuso_key_hash((u_char *) a->user_id, len);

    ngx_shmtx_lock(&z->shpool->mutex);

    p = (ngx_milvuso_profile_t *) ngx_milvuso_lookup(&sh->profiles,
                                            (u_char *) a->user_id, len, hash);

    if (p) {
        ngx_queue_remove(&p->e.queue);

    } else {
        p = ngx_milvuso_alloc_locked(z, sizeof(ngx_milvuso_profile_t)
                         + sh->profile_size * sizeof(ngx_milvuso_action_rec_t),
                         0);
        if (p == NULL) {
            ngx_shmtx_unlock(&z->shpool->mutex);
            return NGX_ERROR;
        }

        ngx_milvuso_entry_set_key(&p->e, (u_char *) a->user_id, len, hash);
        p->n = 0;
        p->head = 0;
        ngx_rbtree_insert(&sh->profiles, &p->e.node);
        sh->n_profiles++;
    }

    ngx_queue_insert_head(&sh->profiles_lru, &p->e.queue);

    rec = &p->ring[p->head];
    rec->time_ms = a->timestamp_ms;
    rec->weight = mcf->action_weights[a->type];
    rec->type = (uint8_t) a->type;
    rec->id_len = (uint8_t) ngx_strlen(a->item_id);
    ngx_memcpy(rec->id, a->item_id, rec->id_len);

    p->head = (p->head + 1) % sh->profile_size;
    if (p->n < sh->profile_size) {
        p->n++;
    }

    p->version = ++sh->version_seq;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


/*
 * Copies the user's actions, oldest first, and reads the profile's and the
 * fresh items' versions, all under one lock.  NGX_DECLINED (n and version
 * 0, fresh_version set) when the user has no profile.
 */
ngx_int_t
ngx_milvuso_profile_copy(ngx_milvuso_zone_ctx_t *z, const u_char *user,
    size_t len, ngx_milvuso_action_rec_t *out, ngx_uint_t cap, ngx_uint_t *n,
    uint64_t *version, uint64_t *fresh_version)
{
    uint32_t                hash;
    ngx_uint_t              i, start, size;
    ngx_milvuso_shctx_t    *sh = z->sh;
    ngx_milvuso_profile_t  *p;

    *n = 0;
    *version = 0;

    hash = ngx_milvuso_key_hash(user, len);

    ngx_shmtx_lock(&z->shpool->mutex);

    *fresh_version = sh->fresh_version;

    p = (ngx_milvuso_profile_t *) ngx_milvuso_lookup(&sh->profiles, user, len,
                                                     hash);
    if (p == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    /* oldest first */
    size = sh->profile_size;
    start = (p->head + size - p->n) % size;

    for (i = 0; i < p->n && i < cap; i++) {
        out[i] = p->ring[(start + i) % size];
    }

    *n = i;
    *version = p->version;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_milvuso_fresh_put(ngx_milvuso_zone_ctx_t *z, ngx_milvuso_main_conf_t *mcf,
    const mv_item_event_t *item, uint64_t log_pos)
{
    size_t                len, size;
    uint32_t              hash, j;
    double                norm;
    ngx_queue_t          *q;
    ngx_milvuso_shctx_t  *sh = z->sh;
    ngx_milvuso_fresh_t  *f;

    len = ngx_strlen(item->item_id);
    hash = ngx_milvuso_key_hash((u_char *) item->item_id, len);
    size = sizeof(ngx_milvuso_fresh_t) + item->dim * sizeof(float);

    norm = 0;
    for (j = 0; j < item->dim; j++) {
        norm += (double) item->embedding[j] * item->embedding[j];
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    f = (ngx_milvuso_fresh_t *) ngx_milvuso_lookup(&sh->fresh,
                                           (u_char *) item->item_id, len, hash);

    /* appends of several workers (and of one worker's thread pool) may
       complete out of log order: the zone keeps the item of the latest
       record, as the trainer will */
    if (f && log_pos != 0 && f->log_pos > log_pos) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_OK;
    }

    if (f && f->dim != item->dim) {
        ngx_milvuso_delete_locked(z, &sh->fresh, &f->e, &sh->n_fresh);
        f = NULL;
    }

    if (f) {
        ngx_queue_remove(&f->e.queue);

    } else {
        if (z->fresh_max == 0) {
            ngx_shmtx_unlock(&z->shpool->mutex);
            return NGX_DECLINED;
        }

        while (sh->n_fresh >= z->fresh_max
               && !ngx_queue_empty(&sh->fresh_age))
        {
            q = ngx_queue_last(&sh->fresh_age);
            ngx_milvuso_delete_locked(z, &sh->fresh,
                ngx_queue_data(q, ngx_milvuso_entry_t, queue), &sh->n_fresh);
            (void) ngx_atomic_fetch_add(&sh->evictions, 1);
        }

        f = ngx_milvuso_alloc_locked(z, size, 0);
        if (f == NULL) {
            sh->fresh_version++;    /* something may have been dropped */
            ngx_shmtx_unlock(&z->shpool->mutex);
            return NGX_ERROR;
        }

        ngx_milvuso_entry_set_key(&f->e, (u_char *) item->item_id, len, hash);
        ngx_rbtree_insert(&sh->fresh, &f->e.node);
        sh->n_fresh++;
    }

    ngx_queue_insert_head(&sh->fresh_age, &f->e.queue);

    f->created_at_ms = item->created_at_ms;
    f->posted_ms = mv_clock_realtime_ms();
    f->log_pos = log_pos;
    f->popularity = item->popularity;
    f->norm = (float) sqrt(norm);
    f->cat_len = (uint8_t) ngx_strlen(item->category);
    ngx_memcpy(f->category, item->category, f->cat_len);
    f->dim = item->dim;
    ngx_memcpy(f->vec, item->embedding, item->dim * sizeof(float));

    sh->fresh_version++;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_milvuso_fresh_get(ngx_milvuso_zone_ctx_t *z, const u_char *id, size_t len,
    float *vec, uint32_t dim, u_char *category, size_t *cat_len)
{
    uint32_t              hash;
    ngx_milvuso_fresh_t  *f;

    hash = ngx_milvuso_key_hash(id, len);

    ngx_shmtx_lock(&z->shpool->mutex);

    f = (ngx_milvuso_fresh_t *) ngx_milvuso_lookup(&z->sh->fresh, id, len,
                                                   hash);
    if (f == NULL || f->dim != dim) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    if (vec) {
        ngx_memcpy(vec, f->vec, dim * sizeof(float));
    }

    if (category) {
        ngx_memcpy(category, f->category, f->cat_len);
        *cat_len = f->cat_len;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


void
ngx_milvuso_hits_insert(ngx_milvuso_hit_t *hits, ngx_uint_t *n, ngx_uint_t k,
    const ngx_milvuso_hit_t *h)
{
    ngx_uint_t  i;

    if (k == 0) {
        return;
    }

    if (*n == k) {
        if (h->score < hits[k - 1].score
            || (h->score == hits[k - 1].score
                && ngx_memn2cmp((u_char *) h->id, hits[k - 1].id, h->id_len,
                                hits[k - 1].id_len) >= 0))
        {
            return;
        }
        (*n)--;
    }

    i = *n;

    while (i > 0
           && (hits[i - 1].score < h->score
               || (hits[i - 1].score == h->score
                   && ngx_memn2cmp(hits[i - 1].id, (u_char *) h->id,
                                   hits[i - 1].id_len, h->id_len) > 0)))
    {
        hits[i] = hits[i - 1];
        i--;
    }

    hits[i] = *h;
    (*n)++;
}


ngx_uint_t
ngx_milvuso_fresh_scan(ngx_milvuso_zone_ctx_t *z, const mv_kernels_t *kern,
    mv_metric_t metric, const float *query, uint32_t dim,
    ngx_milvuso_fresh_allow_pt allow, void *data, ngx_milvuso_hit_t *out,
    ngx_uint_t k, ngx_uint_t *n_out)
{
    ngx_uint_t            scanned;
    ngx_queue_t          *q;
    ngx_milvuso_hit_t     h;
    ngx_milvuso_fresh_t  *f;

    scanned = 0;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (q = ngx_queue_head(&z->sh->fresh_age);
         q != ngx_queue_sentinel(&z->sh->fresh_age);
         q = ngx_queue_next(q))
    {
        f = (ngx_milvuso_fresh_t *) ngx_queue_data(q, ngx_milvuso_entry_t,
                                                   queue);

        if (f->dim != dim || (allow && !allow(data, f))) {
            continue;
        }

        scanned++;

        if (query == NULL) {
            h.score = f->popularity;

        } else if (metric == MV_METRIC_L2) {
            h.score = -kern->l2sq(query, f->vec, dim);

        } else if (metric == MV_METRIC_IP) {
            /* stored as posted: the item's norm is part of its score */
            h.score = kern->dot(query, f->vec, dim);

        } else {
            h.score = f->norm > 0 ? kern->dot(query, f->vec, dim) / f->norm
                                  : 0.0f;
        }

        if (!isfinite(h.score)) {
            /* huge values overflow the float arithmetic: rank them last
               rather than let NaN break the order */
            h.score = isnan(h.score) ? -FLT_MAX
                                     : (h.score > 0 ? FLT_MAX : -FLT_MAX);
        }

        h.id_len = (uint8_t) f->e.key_len;
        ngx_memcpy(h.id, f->e.key, h.id_len);
        h.cat_len = f->cat_len;
        ngx_memcpy(h.category, f->category, f->cat_len);

        ngx_milvuso_hits_insert(out, n_out, k, &h);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return scanned;
}


ngx_uint_t
ngx_milvuso_fresh_drop_included(ngx_milvuso_zone_ctx_t *z,
    const mv_snapshot_view_t *view)
{
    ngx_uint_t            dropped;
    ngx_queue_t          *q, *next;
    ngx_milvuso_fresh_t  *f;

    dropped = 0;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (q = ngx_queue_head(&z->sh->fresh_age);
         q != ngx_queue_sentinel(&z->sh->fresh_age);
         q = next)
    {
        next = ngx_queue_next(q);
        f = (ngx_milvuso_fresh_t *) ngx_queue_data(q, ngx_milvuso_entry_t,
                                                   queue);

        if (ngx_milvuso_fresh_included(view, f)) {
            ngx_milvuso_delete_locked(z, &z->sh->fresh, &f->e,
                                      &z->sh->n_fresh);
            dropped++;
        }
    }

    if (dropped) {
        z->sh->fresh_version++;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return dropped;
}


/*
 * Whether the snapshot includes fresh item f: it has the id, and its stored
 * action-log position lies past f's record (or, without a log position,
 * the snapshot was made after f was posted).
 */
static ngx_int_t
ngx_milvuso_fresh_included(const mv_snapshot_view_t *view,
    const ngx_milvuso_fresh_t *f)
{
    uint32_t                i;
    const mv_stream_pos_t  *pos;

    if (mv_idtable_find(&view->items, (const char *) f->e.key, f->e.key_len)
        < 0)
    {
        return 0;
    }

    if (f->log_pos) {
        for (i = 0; i < view->n_positions; i++) {
            pos = &view->positions[i];

            if (ngx_strcmp(pos->stream, MV_ACTLOG_STREAM_NAME) == 0) {
                return pos->offset > f->log_pos;
            }
        }
    }

    /* no log position to compare: the snapshot must be newer */
    return view->created_at_ms > f->posted_ms;
}


static void
ngx_milvuso_cache_expire_locked(ngx_milvuso_zone_ctx_t *z, int64_t now,
    ngx_uint_t n)
{
    ngx_queue_t          *q;
    ngx_milvuso_cache_t  *c;

    while (n-- && !ngx_queue_empty(&z->sh->cache_lru)) {
        q = ngx_queue_last(&z->sh->cache_lru);
        c = (ngx_milvuso_cache_t *) ngx_queue_data(q, ngx_milvuso_entry_t,
                                                   queue);
        if (c->expires_ms > now) {
            return;
        }

        ngx_milvuso_delete_locked(z, &z->sh->cache, &c->e, &z->sh->n_cache);
    }
}


ngx_int_t
ngx_milvuso_cache_get(ngx_milvuso_zone_ctx_t *z, const u_char *key,
    size_t len, ngx_pool_t *pool, ngx_str_t *body, ngx_uint_t *source,
    ngx_uint_t *candidates)
{
    int64_t               now;
    uint32_t              hash;
    ngx_milvuso_cache_t  *c;

    now = mv_clock_realtime_ms();
    hash = ngx_milvuso_key_hash(key, len);

    ngx_shmtx_lock(&z->shpool->mutex);

    c = (ngx_milvuso_cache_t *) ngx_milvuso_lookup(&z->sh->cache, key, len,
                                                   hash);
    if (c == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    if (c->expires_ms <= now) {
        ngx_milvuso_delete_locked(z, &z->sh->cache, &c->e, &z->sh->n_cache);
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    body->data = ngx_pnalloc(pool, c->body_len);
    if (body->data == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memcpy(body->data, c->body, c->body_len);
    body->len = c->body_len;
    *source = c->source;
    *candidates = c->candidates;

    ngx_queue_remove(&c->e.queue);
    ngx_queue_insert_head(&z->sh->cache_lru, &c->e.queue);

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


void
ngx_milvuso_cache_put(ngx_milvuso_zone_ctx_t *z, const u_char *key,
    size_t len, ngx_msec_t ttl, const ngx_str_t *body, ngx_uint_t source,
    ngx_uint_t candidates)
{
    int64_t               now;
    uint32_t              hash;
    ngx_milvuso_cache_t  *c;

    if (len > NGX_MILVUSO_KEY_MAX) {
        return;
    }

    now = mv_clock_realtime_ms();
    hash = ngx_milvuso_key_hash(key, len);

    ngx_shmtx_lock(&z->shpool->mutex);

    ngx_milvuso_cache_expire_locked(z, now, 2);

    c = (ngx_milvuso_cache_t *) ngx_milvuso_lookup(&z->sh->cache, key, len,
                                                   hash);
    if (c) {
        ngx_milvuso_delete_locked(z, &z->sh->cache, &c->e, &z->sh->n_cache);
    }

    c = ngx_milvuso_alloc_locked(z, sizeof(ngx_milvuso_cache_t) + body->len,
                                 1);
    if (c == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    ngx_milvuso_entry_set_key(&c->e, key, len, hash);
    c->expires_ms = now + (int64_t) ttl;
    c->candidates = (uint32_t) candidates;
    c->source = (uint8_t) source;
    c->body_len = (uint32_t) body->len;
    ngx_memcpy(c->body, body->data, body->len);

    ngx_rbtree_insert(&z->sh->cache, &c->e.node);
    ngx_queue_insert_head(&z->sh->cache_lru, &c->e.queue);
    z->sh->n_cache++;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


void
ngx_milvuso_zone_usage(ngx_milvuso_zone_ctx_t *z, size_t *size, size_t *used,
    ngx_uint_t *profiles, ngx_uint_t *fresh, ngx_uint_t *cached)
{
    ngx_shmtx_lock(&z->shpool->mutex);

    *size = z->shpool->end - (u_char *) z->shpool;
    *used = *size - z->shpool->pfree * ngx_pagesize;
    *profiles = z->sh->n_profiles;
    *fresh = z->sh->n_fresh;
    *cached = z->sh->n_cache;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


void
ngx_milvuso_note_accepted(ngx_milvuso_shctx_t *sh, int64_t now_ms)
{
    ngx_atomic_uint_t  old, ms;

    if (now_ms <= 0) {
        return;
    }

    ms = (ngx_atomic_uint_t) now_ms;

    for ( ;; ) {
        old = sh->last_accept_ms;

        if (old >= ms || ngx_atomic_cmp_set(&sh->last_accept_ms, old, ms)) {
            return;
        }
    }
}
