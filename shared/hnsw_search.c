/*
 * hnsw_search.c -- k-nearest-neighbour search over a read-only HNSW graph
 * view (the live index or a mapped snapshot), and the exact scan it falls
 * back on.
 *
 * A search descends greedily through the upper levels, then runs a beam
 * search of width ef on level 0 (see hnsw_internal.h for the pool).  When the
 * graph carries SQ8 codes, the walk computes distances from the codes (one
 * cache line each at dim 64, in their own array), and the final candidates
 * are re-ranked on the exact float vectors: the walk touches a quarter of the
 * memory and the answer keeps float precision.  An expansion first loads
 * the codes of all the unvisited neighbours (mv_query_touch: ordinary loads,
 * which the core keeps in flight together), then measures them; and while
 * they are measured, the links of the node most likely to be expanded next
 * are already being prefetched.
 *
 * Filters.  Nodes that the filter rejects, and deleted nodes, still route the
 * walk but never enter the result.  A selective filter that lists its
 * candidates is served by an exact scan of them when that is cheaper than a
 * widened walk; a walk that finds fewer than k acceptable nodes is completed
 * by an exact scan, so a filtered answer is never short by accident.
 *
 * Nothing here allocates except the scratch constructors: every search works
 * in the caller's mv_hnsw_scratch_t, whose visited list is epoch-tagged so it
 * is cleared only once every 255 searches.  The tags are bytes: a visited
 * check is a random access into them, and at one byte per node they take
 * half the cache that 16-bit tags did (200 KB at 200k nodes, which stays in
 * a core's L2 beside the codes a walk streams through).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hnsw_internal.h"

/* The state of one mv_search_layer walk. */
typedef struct mv_layer_walk {
    const mv_query_t   *qc;
    mv_hnsw_scratch_t  *s;
    const mv_filter_t  *filter;
    size_t              ef;
    size_t              res_cap;
    size_t              size;         /* entries in s->pool */
    size_t              n_res;        /* entries in s->res */
    size_t              asked;        /* filter verdicts */
    size_t              accepted;
} mv_layer_walk_t;

/* Re-rank at most this many walk results per requested hit (SQ8 graphs). */
#define MV_RERANK_PER_K   8
#define MV_RERANK_MIN     64


static void mv_scratch_release(mv_hnsw_scratch_t *s);
static uint8_t mv_scratch_new_epoch(mv_hnsw_scratch_t *s);
static int mv_accept(const mv_hnsw_graph_t *g, const mv_filter_t *filter,
    uint32_t id);
static size_t mv_finish(const mv_query_t *qc, mv_pool_entry_t *cand,
    size_t n_cand, size_t k, mv_hit_t *out);
static int mv_hit_cmp(const void *a, const void *b);


mv_hnsw_scratch_t *
mv_hnsw_scratch_new(size_t n, size_t dim, size_t max_ef)
{
    mv_hnsw_scratch_t  *s;

    s = calloc(1, sizeof(mv_hnsw_scratch_t));
    if (s == NULL) {
        return NULL;
    }

    if (mv_hnsw_scratch_reserve(s, n, dim, max_ef) != MV_OK) {
        free(s);
        return NULL;
    }

    return s;
}


int
mv_hnsw_scratch_reserve(mv_hnsw_scratch_t *s, size_t n, size_t dim,
    size_t max_ef)
{
    mv_hnsw_scratch_t  grown;

    if (n <= s->n_cap && dim <= s->dim_cap && max_ef <= s->ef_cap) {
        return MV_OK;
    }

    memset(&grown, 0, sizeof(grown));
    grown.n_cap = n > s->n_cap ? n : s->n_cap;
    grown.dim_cap = dim > s->dim_cap ? dim : s->dim_cap;
    grown.ef_cap = max_ef > s->ef_cap ? max_ef : s->ef_cap;

    if (grown.ef_cap < 1) {
        grown.ef_cap = 1;
    }

    grown.visited = calloc(grown.n_cap ? grown.n_cap : 1, sizeof(uint8_t));
    grown.pool = malloc(grown.ef_cap * sizeof(mv_pool_entry_t));
    grown.res = malloc(grown.ef_cap * sizeof(mv_pool_entry_t));
    grown.q = malloc((grown.dim_cap ? grown.dim_cap : 1) * sizeof(float));
    grown.qa = malloc((grown.dim_cap ? grown.dim_cap : 1) * sizeof(float));
    grown.qb = malloc((grown.dim_cap ? grown.dim_cap : 1) * sizeof(float));

    if (grown.visited == NULL || grown.pool == NULL || grown.res == NULL
        || grown.q == NULL || grown.qa == NULL || grown.qb == NULL)
    {
        mv_scratch_release(&grown);
        return MV_ERR;
    }

    grown.epoch = 0;
    mv_scratch_release(s);
    *s = grown;

    return MV_OK;
}


void
mv_hnsw_scratch_free(mv_hnsw_scratch_t *s)
{
    if (s == NULL) {
        return;
    }

    mv_scratch_release(s);
    free(s);
}


static void
mv_scratch_release(mv_hnsw_scratch_t *s)
{
    free(s->visited);
    free(s->pool);
    free(s->res);
    free(s->q);
    free(s->qa);
    free(s->qb);
}


/* Starts a new visited generation; clears the tags when the epoch wraps. */
static uint8_t
mv_scratch_new_epoch(mv_hnsw_scratch_t *s)
{
    s->epoch++;

    if (s->epoch == 0) {
        memset(s->visited, 0, s->n_cap * sizeof(uint8_t));
        s->epoch = 1;
    }

    return s->epoch;
}


void
mv_query_prepare(mv_query_t *qc, const mv_hnsw_graph_t *g,
    const mv_kernels_t *kern, mv_hnsw_scratch_t *s, const float *q,
    int use_codes)
{
    qc->g = g;
    qc->kern = kern;
    qc->q = q;
    qc->codes = use_codes && g->codes != NULL;
    qc->bias = 0.0f;
    qc->offset = g->metric == MV_METRIC_COSINE ? 1.0f : 0.0f;
    qc->qa = s->qa;
    qc->qb = s->qb;

    if (!qc->codes) {
        return;
    }

    if (g->metric == MV_METRIC_L2) {
        mv_sq8_prepare_l2(q, g->dim, g->sq_min, g->sq_scale, s->qa, s->qb);

    } else {
        qc->bias = mv_sq8_prepare_dot(q, g->dim, g->sq_min, g->sq_scale,
                                      s->qa);
    }
}


uint32_t
mv_search_greedy(const mv_query_t *qc, uint32_t from, uint32_t top,
    uint32_t bottom, float *dist)
{
    const uint32_t  *links;
    uint32_t         level, count, j, cur;
    float            cur_dist, d;
    int              moved;

    cur = from;
    cur_dist = mv_query_distance(qc, cur);

    for (level = top; level > bottom; level--) {
        do {
            moved = 0;
            links = mv_hnsw_links(qc->g, cur, level, &count);

            for (j = 0; j < count; j++) {
                mv_query_touch(qc, links[j]);
            }

            for (j = 0; j < count; j++) {
                d = mv_query_distance(qc, links[j]);
                if (d < cur_dist) {
                    cur_dist = d;
                    cur = links[j];
                    moved = 1;
                }
            }

        } while (moved);
    }

    *dist = cur_dist;

    return cur;
}


/* 1 when node id may be returned: not deleted and allowed by the filter. */
static int
mv_accept(const mv_hnsw_graph_t *g, const mv_filter_t *filter, uint32_t id)
{
    if (mv_hnsw_is_deleted(g, id)) {
        return 0;
    }

    return filter == NULL || filter->allow == NULL
           || filter->allow(filter->ctx, id);
}


/*
 * Offers node v at distance d to the beam and, with a filter, to the
 * result; returns the beam position it took (w->ef when it took none).
 */
static inline size_t
mv_layer_offer(mv_layer_walk_t *w, uint32_t v, float d)
{
    mv_pool_entry_t  *res = w->s->res;
    size_t            pos;

    if (w->size == w->ef && !(d < w->s->pool[w->ef - 1].dist)) {
        return w->ef;
    }

    pos = mv_pool_insert(w->s->pool, &w->size, w->ef, d, v);

    if (w->filter != NULL
        && (w->n_res < w->res_cap || d < res[w->res_cap - 1].dist))
    {
        w->asked++;
        if (mv_accept(w->qc->g, w->filter, v)) {
            w->accepted++;
            mv_pool_insert(res, &w->n_res, w->res_cap, d, v);
        }
    }

    return pos;
}


size_t
mv_search_layer(const mv_query_t *qc, mv_hnsw_scratch_t *s, uint32_t entry,
    size_t ef, uint32_t level, uint32_t skip, const mv_filter_t *filter,
    size_t res_cap, double *acceptance)
{
    const mv_hnsw_graph_t  *g = qc->g;
    const uint32_t         *links;
    const uint8_t          *rec;
    mv_pool_entry_t        *pool = s->pool;
    mv_layer_walk_t         w;
    uint32_t                count, j, node, nb, v;
    uint8_t                 epoch;
    size_t                  cursor, best, pos, ahead;

    w.qc = qc;
    w.s = s;
    w.filter = filter;
    w.ef = ef;
    w.res_cap = res_cap;
    w.size = 0;
    w.n_res = 0;
    w.asked = 0;
    w.accepted = 0;

    epoch = mv_scratch_new_epoch(s);

    s->visited[entry] = epoch;
    if (skip != UINT32_MAX) {
        s->visited[skip] = epoch;
    }

    if (entry != skip) {
        mv_layer_offer(&w, entry, mv_query_distance(qc, entry));

    } else {
        /* A node re-linking itself starts from its own links. */
        links = mv_hnsw_links(g, entry, level, &count);
        for (j = 0; j < count; j++) {
            v = links[j];
            if (s->visited[v] != epoch) {
                s->visited[v] = epoch;
                mv_layer_offer(&w, v, mv_query_distance(qc, v));
            }
        }
    }

    cursor = 0;

    while (cursor < w.size) {

        if (pool[cursor].id & MV_POOL_EXPANDED) {
            cursor++;
            continue;
        }

        node = pool[cursor].id;
        pool[cursor].id |= MV_POOL_EXPANDED;

        /* The next node to expand is most likely the next unexpanded one:
           fetch its links while this node's neighbours are measured. */
        if (level == 0) {
            for (ahead = cursor + 1; ahead < w.size; ahead++) {
                if (!(pool[ahead].id & MV_POOL_EXPANDED)) {
                    rec = g->level0 + (size_t) pool[ahead].id
                                      * g->level0_stride;
                    mv_prefetch(rec);
                    mv_prefetch(rec + 64);
                    mv_prefetch(rec + g->level0_stride - 1);
                    break;
                }
            }
        }

        links = mv_hnsw_links(g, node, level, &count);
        nb = 0;

        for (j = 0; j < count; j++) {
            v = links[j];
            if (s->visited[v] == epoch) {
                continue;
            }
            s->visited[v] = epoch;
            s->batch[nb++] = v;
            mv_query_touch(qc, v);
        }

        best = w.size;

        for (j = 0; j < nb; j++) {
            v = s->batch[j];
            pos = mv_layer_offer(&w, v, mv_query_distance(qc, v));
            if (pos < best) {
                best = pos;
            }
        }

        cursor = best <= cursor ? best : cursor + 1;
    }

    if (acceptance != NULL) {
        *acceptance = w.asked ? (double) w.accepted / (double) w.asked : 1.0;
    }

    return filter != NULL ? w.n_res : w.size;
}


size_t
mv_hnsw_search(const mv_hnsw_graph_t *g, const mv_kernels_t *kern,
    mv_hnsw_scratch_t *s, const float *query, size_t k, size_t ef,
    const mv_filter_t *filter, mv_hit_t *out)
{
    mv_query_t        qc;
    mv_pool_entry_t  *cand;
    size_t            n_cand, i, n_ok, walk_cost, wide;
    uint32_t          entry, id;
    float             entry_dist;
    double            acceptance;

    if (g->n == 0 || k == 0) {
        return 0;
    }

    if (g->n > s->n_cap || g->dim > s->dim_cap || k > s->ef_cap) {
        return 0;
    }

    if (ef < k) {
        ef = k;
    }

    if (filter != NULL && filter->allow == NULL
        && filter->candidates == NULL)
    {
        filter = NULL;
    }

    /* A filter rejects some nodes the walk meets: widen the beam to match. */
    if (filter != NULL && filter->candidates != NULL) {

        if (filter->n_candidates == 0) {
            return 0;
        }

        if (filter->n_candidates < g->n) {
            ef = (size_t) ((double) ef * g->n / filter->n_candidates);
        }

        if (ef > s->ef_cap) {
            ef = s->ef_cap;
        }

        /* A walk of width ef measures about ef * M0 / 2 nodes. */
        walk_cost = ef * g->M0 / 2;

        if (filter->n_candidates <= walk_cost) {
            return mv_hnsw_scan(g, kern, s, query, filter->candidates,
                                filter->n_candidates, k, filter, out);
        }
    }

    if (ef > s->ef_cap) {
        ef = s->ef_cap;
    }

    memcpy(s->q, query, g->dim * sizeof(float));
    if (g->metric == MV_METRIC_COSINE) {
        mv_normalize(s->q, g->dim);
    }

    mv_query_prepare(&qc, g, kern, s, s->q, 1);

    entry = mv_search_greedy(&qc, g->entry, g->max_level, 0, &entry_dist);
    n_cand = mv_search_layer(&qc, s, entry, ef, 0, UINT32_MAX, filter, ef,
                             &acceptance);

    /*
     * A filter that turned down most of what the walk met leaves the result
     * to the few accepted nodes the beam happened to pass: walk again with
     * the beam widened by the rejection rate, or scan when that is cheaper.
     */
    if (filter != NULL && filter->candidates == NULL && acceptance < 0.5) {
        wide = (size_t) ((double) ef / (acceptance > 0.0 ? acceptance
                                                         : 1.0 / g->n));

        if (wide > s->ef_cap || wide * g->M0 / 2 >= g->n) {
            return mv_hnsw_scan(g, kern, s, query, NULL, 0, k, filter, out);
        }

        n_cand = mv_search_layer(&qc, s, entry, wide, 0, UINT32_MAX, filter,
                                 ef, &acceptance);
    }

    if (filter != NULL) {
        cand = s->res;

    } else {
        /* Drop deleted nodes from the beam (rare: marks, not removals). */
        cand = s->pool;
        n_ok = 0;

        for (i = 0; i < n_cand; i++) {
            id = cand[i].id & ~MV_POOL_EXPANDED;
            if (!mv_hnsw_is_deleted(g, id)) {
                cand[n_ok].dist = cand[i].dist;
                cand[n_ok].id = id;
                n_ok++;
            }
        }

        n_cand = n_ok;
    }

    if (n_cand < k && n_cand < g->n) {
        /* Too few acceptable nodes near the query: complete exactly. */
        if (filter != NULL && filter->candidates != NULL) {
            return mv_hnsw_scan(g, kern, s, query, filter->candidates,
                                filter->n_candidates, k, filter, out);
        }

        return mv_hnsw_scan(g, kern, s, query, NULL, 0, k, filter, out);
    }

    return mv_finish(&qc, cand, n_cand, k, out);
}


/*
 * Turns walk candidates (sorted by walk distance) into the k best hits with
 * exact distances, best first, ties by id.  With SQ8 the leading candidates
 * are re-measured on the float vectors.
 */
static size_t
mv_finish(const mv_query_t *qc, mv_pool_entry_t *cand, size_t n_cand,
    size_t k, mv_hit_t *out)
{
    const mv_hnsw_graph_t  *g = qc->g;
    size_t                  i, n_rerank, n_out;
    uint32_t                id;

    if (!qc->codes) {
        n_out = n_cand < k ? n_cand : k;
        for (i = 0; i < n_out; i++) {
            out[i].id = cand[i].id & ~MV_POOL_EXPANDED;
            out[i].distance = cand[i].dist;
        }
        /* Equal distances: order by id for a stable answer. */
        qsort(out, n_out, sizeof(mv_hit_t), mv_hit_cmp);
        return n_out;
    }

    n_rerank = k * MV_RERANK_PER_K;
    if (n_rerank < MV_RERANK_MIN) {
        n_rerank = MV_RERANK_MIN;
    }
    if (n_rerank > n_cand) {
        n_rerank = n_cand;
    }

    for (i = 0; i < n_rerank; i++) {
        mv_touch_lines(g->vectors
                       + (size_t) (cand[i].id & ~MV_POOL_EXPANDED) * g->dim,
                       g->dim * sizeof(float));
    }

    for (i = 0; i < n_rerank; i++) {
        id = cand[i].id & ~MV_POOL_EXPANDED;
        cand[i].id = id;
        cand[i].dist = mv_distance(qc->kern, g->metric, qc->q,
                                   g->vectors + (size_t) id * g->dim,
                                   g->dim);
    }

    mv_pool_sort(cand, n_rerank);

    n_out = n_rerank < k ? n_rerank : k;
    for (i = 0; i < n_out; i++) {
        out[i].id = cand[i].id;
        out[i].distance = cand[i].dist;
    }

    return n_out;
}


/* Orders hits by distance, then id. */
static int
mv_hit_cmp(const void *a, const void *b)
{
    const mv_hit_t  *x = a, *y = b;

    if (x->distance != y->distance) {
        return x->distance < y->distance ? -1 : 1;
    }

    return (x->id > y->id) - (x->id < y->id);
}


size_t
mv_hnsw_scan(const mv_hnsw_graph_t *g, const mv_kernels_t *kern,
    mv_hnsw_scratch_t *s, const float *query, const uint32_t *ids,
    size_t n_ids, size_t k, const mv_filter_t *filter, mv_hit_t *out)
{
    mv_pool_entry_t  *res = s->res;
    size_t            n_res, i, n, n_out;
    uint32_t          id;
    float             d;

    if (g->n == 0 || k == 0) {
        return 0;
    }

    if (g->n > s->n_cap || g->dim > s->dim_cap || k > s->ef_cap) {
        return 0;
    }

    memcpy(s->q, query, g->dim * sizeof(float));
    if (g->metric == MV_METRIC_COSINE) {
        mv_normalize(s->q, g->dim);
    }

    n = ids != NULL ? n_ids : g->n;
    n_res = 0;

    for (i = 0; i < n; i++) {
        id = ids != NULL ? ids[i] : (uint32_t) i;

        if (id >= g->n || !mv_accept(g, filter, id)) {
            continue;
        }

        d = mv_distance(kern, g->metric, s->q,
                        g->vectors + (size_t) id * g->dim, g->dim);

        if (n_res == k && !(d < res[k - 1].dist)) {
            continue;
        }

        mv_pool_insert(res, &n_res, k, d, id);
    }

    n_out = n_res;
    for (i = 0; i < n_out; i++) {
        out[i].id = res[i].id;
        out[i].distance = res[i].dist;
    }

    qsort(out, n_out, sizeof(mv_hit_t), mv_hit_cmp);

    return n_out;
}
