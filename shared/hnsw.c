/*
 * hnsw.c -- the mutable, in-memory HNSW index: insert, update, delete marks,
 * and the view that search and the snapshot writer read.
 *
 * Storage is the snapshot's layout (see hnsw.h), held in growable arrays:
 * level-0 records of a fixed stride, the float vectors, and a pool of
 * upper-level blocks addressed through per-node offsets.  Nodes only ever
 * get appended, and a node keeps its level for life, so a node's upper
 * blocks never move within the pool.
 *
 * Insertion follows Malkov & Yashunin: draw a level with multiplier 1/ln M,
 * descend greedily to that level, then on each level down to 0 run a beam
 * search of width ef_construction, choose up to M neighbours with the
 * heuristic (a candidate is kept only if it is closer to the new node than
 * to every neighbour kept so far), link both ways, and re-prune a
 * neighbour's full list with the same heuristic.  With SQ8 codes the beam
 * search measures codes and the heuristic measures floats, so the graph is
 * chosen on exact distances.
 *
 * The SQ8 quantiser starts as the range [-1, 1] (where normalised vectors
 * live) and is re-trained on all vectors each time the index doubles from
 * 256 nodes on, or explicitly by mv_hnsw_train_quantizer.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hnsw_internal.h"
#include "synth.h"

#define MV_QUANT_FIRST_TRAIN  256

#ifndef MV_BUILD_USE_CODES
#define MV_BUILD_USE_CODES    1
#endif


struct mv_hnsw {
    mv_hnsw_params_t     p;
    uint32_t             M;
    uint32_t             M0;
    double               level_mult;
    mv_rng_t             rng;
    const mv_kernels_t  *kern;

    size_t               n;
    size_t               cap;
    size_t               stride;
    size_t               code_offset;     /* 0 without SQ8 */
    uint8_t             *level0;          /* cap * stride */
    float               *vectors;         /* cap * dim */
    uint32_t            *upper_offsets;   /* cap + 1 */
    uint32_t            *upper_links;
    size_t               upper_len;
    size_t               upper_cap;
    uint32_t             max_level;
    uint32_t             entry;

    float               *sq_min;          /* dim, with SQ8 */
    float               *sq_scale;
    size_t               quant_trained_n; /* nodes at the last training */

    mv_hnsw_scratch_t   *scratch;         /* build-time searches */
    mv_pool_entry_t     *cand;            /* ef_construction + M0 + 1 */
    uint32_t            *sel;             /* M0 + 1 */
};


static int mv_hnsw_check_params(const mv_hnsw_params_t *p, mv_err_t *err);
static mv_hnsw_t *mv_hnsw_alloc(const mv_hnsw_params_t *p, size_t cap,
    mv_err_t *err);
static int mv_hnsw_grow(mv_hnsw_t *h, size_t need);
static int mv_hnsw_upper_reserve(mv_hnsw_t *h, size_t extra);
static uint32_t mv_hnsw_draw_level(mv_hnsw_t *h);
static uint32_t *mv_hnsw_links_mut(mv_hnsw_t *h, uint32_t id, uint32_t level);
static void mv_hnsw_encode(mv_hnsw_t *h, uint32_t id);
static void mv_hnsw_link(mv_hnsw_t *h, uint32_t id, uint32_t level);
static void mv_hnsw_connect(mv_hnsw_t *h, uint32_t e, uint32_t q,
    uint32_t level);
static size_t mv_hnsw_select(mv_hnsw_t *h, const mv_pool_entry_t *cand,
    size_t n_cand, size_t max_links, uint32_t *sel);
static float mv_hnsw_node_distance(const mv_hnsw_t *h, uint32_t a,
    uint32_t b);
static void mv_pool_sort(mv_pool_entry_t *a, size_t n);


size_t
mv_hnsw_level0_stride(uint32_t M0, uint32_t dim, int with_codes)
{
    return mv_align_up(4 + 4 * (size_t) M0 + (with_codes ? dim : 0), 4);
}


static int
mv_hnsw_check_params(const mv_hnsw_params_t *p, mv_err_t *err)
{
    if (p->dim == 0 || p->dim > 65536) {
        return mv_err_set(err, "hnsw: dim %u out of range 1..65536", p->dim);
    }

    if (p->metric != MV_METRIC_COSINE && p->metric != MV_METRIC_L2) {
        return mv_err_set(err, "hnsw: unknown metric %d", (int) p->metric);
    }

    if (p->M < 2 || p->M > MV_HNSW_MAX_M) {
        return mv_err_set(err, "hnsw: M %u out of range 2..%u", p->M,
                          MV_HNSW_MAX_M);
    }

    if (p->ef_construction == 0 || p->ef_construction > 65536) {
        return mv_err_set(err, "hnsw: ef_construction %u out of range "
                          "1..65536", p->ef_construction);
    }

    return MV_OK;
}


static mv_hnsw_t *
mv_hnsw_alloc(const mv_hnsw_params_t *p, size_t cap, mv_err_t *err)
{
    mv_hnsw_t  *h;
    size_t      ef, j;

    if (mv_hnsw_check_params(p, err) != MV_OK) {
        return NULL;
    }

    h = calloc(1, sizeof(mv_hnsw_t));
    if (h == NULL) {
        mv_err_set(err, "hnsw: out of memory");
        return NULL;
    }

    h->p = *p;
    h->M = p->M;
    h->M0 = 2 * p->M;
    h->level_mult = 1.0 / log((double) p->M);
    h->kern = mv_kernels_best();
    mv_rng_seed(&h->rng, p->seed);
    h->stride = mv_hnsw_level0_stride(h->M0, p->dim, p->sq8);
    h->code_offset = p->sq8 ? 4 + 4 * (size_t) h->M0 : 0;

    ef = p->ef_construction > h->M ? p->ef_construction : h->M;
    h->cand = malloc((ef + h->M0 + 1) * sizeof(mv_pool_entry_t));
    h->sel = malloc((h->M0 + 1) * sizeof(uint32_t));
    h->upper_offsets = calloc(1, sizeof(uint32_t));
    h->scratch = mv_hnsw_scratch_new(cap ? cap : 1, p->dim, ef + h->M0 + 1);

    if (p->sq8) {
        h->sq_min = malloc(p->dim * sizeof(float));
        h->sq_scale = malloc(p->dim * sizeof(float));
    }

    if (h->cand == NULL || h->sel == NULL || h->upper_offsets == NULL
        || h->scratch == NULL
        || (p->sq8 && (h->sq_min == NULL || h->sq_scale == NULL))
        || mv_hnsw_grow(h, cap ? cap : 16) != MV_OK)
    {
        mv_hnsw_free(h);
        mv_err_set(err, "hnsw: out of memory");
        return NULL;
    }

    if (p->sq8) {
        for (j = 0; j < p->dim; j++) {
            h->sq_min[j] = -1.0f;
            h->sq_scale[j] = 2.0f / 255.0f;
        }
    }

    return h;
}


mv_hnsw_t *
mv_hnsw_new(const mv_hnsw_params_t *p, size_t capacity, mv_err_t *err)
{
    return mv_hnsw_alloc(p, capacity, err);
}


mv_hnsw_t *
mv_hnsw_from_graph(const mv_hnsw_graph_t *g, const mv_hnsw_params_t *p,
    mv_err_t *err)
{
    mv_hnsw_t  *h;
    size_t      upper;

    if (g->dim != p->dim || g->metric != p->metric || g->M != p->M
        || (g->code_offset != 0) != (p->sq8 != 0))
    {
        mv_err_set(err, "hnsw: graph (dim %u, metric %d, M %u, sq8 %d) does "
                   "not match the parameters (dim %u, metric %d, M %u, "
                   "sq8 %d)", g->dim, (int) g->metric, g->M,
                   g->code_offset != 0, p->dim, (int) p->metric, p->M,
                   p->sq8 != 0);
        return NULL;
    }

    h = mv_hnsw_alloc(p, g->n, err);
    if (h == NULL) {
        return NULL;
    }

    upper = g->n ? g->upper_offsets[g->n] : 0;

    if (mv_hnsw_upper_reserve(h, upper) != MV_OK) {
        mv_hnsw_free(h);
        mv_err_set(err, "hnsw: out of memory");
        return NULL;
    }

    if (g->n) {
        memcpy(h->level0, g->level0, (size_t) g->n * h->stride);
        memcpy(h->vectors, g->vectors, (size_t) g->n * g->dim * sizeof(float));
        memcpy(h->upper_offsets, g->upper_offsets,
               ((size_t) g->n + 1) * sizeof(uint32_t));
        memcpy(h->upper_links, g->upper_links, upper * sizeof(uint32_t));
    }

    if (p->sq8) {
        memcpy(h->sq_min, g->sq_min, g->dim * sizeof(float));
        memcpy(h->sq_scale, g->sq_scale, g->dim * sizeof(float));
        h->quant_trained_n = g->n;
    }

    h->n = g->n;
    h->upper_len = upper;
    h->max_level = g->max_level;
    h->entry = g->entry;

    return h;
}


void
mv_hnsw_free(mv_hnsw_t *h)
{
    if (h == NULL) {
        return;
    }

    free(h->level0);
    free(h->vectors);
    free(h->upper_offsets);
    free(h->upper_links);
    free(h->sq_min);
    free(h->sq_scale);
    free(h->cand);
    free(h->sel);
    mv_hnsw_scratch_free(h->scratch);
    free(h);
}


/* Makes room for `need` nodes (arrays and the build scratch). */
static int
mv_hnsw_grow(mv_hnsw_t *h, size_t need)
{
    size_t     cap;
    uint8_t   *level0;
    float     *vectors;
    uint32_t  *offsets;

    if (need <= h->cap) {
        return MV_OK;
    }

    cap = 2 * h->cap;
    if (cap < need) {
        cap = need;
    }

    level0 = realloc(h->level0, cap * h->stride);
    if (level0 == NULL) {
        return MV_ERR;
    }
    h->level0 = level0;

    vectors = realloc(h->vectors, cap * h->p.dim * sizeof(float));
    if (vectors == NULL) {
        return MV_ERR;
    }
    h->vectors = vectors;

    offsets = realloc(h->upper_offsets, (cap + 1) * sizeof(uint32_t));
    if (offsets == NULL) {
        return MV_ERR;
    }
    h->upper_offsets = offsets;

    if (mv_hnsw_scratch_reserve(h->scratch, cap, h->p.dim,
                                h->scratch->ef_cap) != MV_OK)
    {
        return MV_ERR;
    }

    memset(h->level0 + h->cap * h->stride, 0, (cap - h->cap) * h->stride);
    h->cap = cap;

    return MV_OK;
}


static int
mv_hnsw_upper_reserve(mv_hnsw_t *h, size_t extra)
{
    size_t     cap;
    uint32_t  *links;

    if (h->upper_len + extra <= h->upper_cap) {
        return MV_OK;
    }

    if (h->upper_len + extra > UINT32_MAX) {
        return MV_ERR;
    }

    cap = h->upper_cap ? h->upper_cap : 256;
    while (cap < h->upper_len + extra) {
        cap *= 2;
    }

    links = realloc(h->upper_links, cap * sizeof(uint32_t));
    if (links == NULL) {
        return MV_ERR;
    }

    h->upper_links = links;
    h->upper_cap = cap;

    return MV_OK;
}


static uint32_t
mv_hnsw_draw_level(mv_hnsw_t *h)
{
    double  level;

    level = floor(-log(1.0 - mv_rng_uniform(&h->rng)) * h->level_mult);

    return level > MV_HNSW_MAX_LEVEL ? MV_HNSW_MAX_LEVEL : (uint32_t) level;
}


/* Block of node id at level: the count word, then the links. */
static uint32_t *
mv_hnsw_links_mut(mv_hnsw_t *h, uint32_t id, uint32_t level)
{
    if (level == 0) {
        return (uint32_t *) (h->level0 + (size_t) id * h->stride);
    }

    return h->upper_links + h->upper_offsets[id]
           + (size_t) (level - 1) * (h->M + 1);
}


static void
mv_hnsw_encode(mv_hnsw_t *h, uint32_t id)
{
    if (h->code_offset == 0) {
        return;
    }

    mv_sq8_encode(h->vectors + (size_t) id * h->p.dim, h->p.dim, h->sq_min,
                  h->sq_scale, h->level0 + (size_t) id * h->stride
                  + h->code_offset);
}


void
mv_hnsw_train_quantizer(mv_hnsw_t *h, const float *vectors, size_t n)
{
    size_t  i;

    if (h->code_offset == 0) {
        return;
    }

    mv_sq8_train(vectors, n, h->p.dim, h->sq_min, h->sq_scale);

    for (i = 0; i < h->n; i++) {
        mv_hnsw_encode(h, (uint32_t) i);
    }

    h->quant_trained_n = h->n > n ? h->n : n;
}


static float
mv_hnsw_node_distance(const mv_hnsw_t *h, uint32_t a, uint32_t b)
{
    return mv_distance(h->kern, h->p.metric,
                       h->vectors + (size_t) a * h->p.dim,
                       h->vectors + (size_t) b * h->p.dim, h->p.dim);
}


/*
 * Sorts by distance, then id.  Insertion sort: the lists sorted here are
 * short (a neighbour list) or nearly sorted already (a beam re-measured on
 * exact distances), where it beats qsort and its indirect comparisons.
 */
static void
mv_pool_sort(mv_pool_entry_t *a, size_t n)
{
    mv_pool_entry_t  x;
    size_t           i, j;

    for (i = 1; i < n; i++) {
        x = a[i];
        j = i;

        while (j > 0 && (a[j - 1].dist > x.dist
                         || (a[j - 1].dist == x.dist && a[j - 1].id > x.id)))
        {
            a[j] = a[j - 1];
            j--;
        }

        a[j] = x;
    }
}


/*
 * The neighbour-selection heuristic: walks candidates (sorted by distance to
 * the new node) and keeps one only if it is closer to the new node than to
 * every candidate kept before it, up to max_links.  Returns the number kept.
 */
static size_t
mv_hnsw_select(mv_hnsw_t *h, const mv_pool_entry_t *cand, size_t n_cand,
    size_t max_links, uint32_t *sel)
{
    size_t  i, j, n_sel;
    int     keep;

    n_sel = 0;

    for (i = 0; i < n_cand && n_sel < max_links; i++) {
        keep = 1;

        for (j = 0; j < n_sel; j++) {
            if (mv_hnsw_node_distance(h, cand[i].id, sel[j]) < cand[i].dist) {
                keep = 0;
                break;
            }
        }

        if (keep) {
            sel[n_sel++] = cand[i].id;
        }
    }

    return n_sel;
}


/*
 * Offers q as a neighbour of e at level: appended when e has room, else e's
 * list plus q is re-pruned with the heuristic (distances from e).
 */
static void
mv_hnsw_connect(mv_hnsw_t *h, uint32_t e, uint32_t q, uint32_t level)
{
    uint32_t  *block, count, max_links, j, flags;
    size_t     n_sel;

    block = mv_hnsw_links_mut(h, e, level);
    count = block[0] & MV_HNSW_COUNT_MASK;
    flags = block[0] & ~MV_HNSW_COUNT_MASK;
    max_links = level == 0 ? h->M0 : h->M;

    for (j = 0; j < count; j++) {
        if (block[1 + j] == q) {
            return;
        }
    }

    if (count < max_links) {
        block[1 + count] = q;
        block[0] = flags | (count + 1);
        return;
    }

    for (j = 0; j < count; j++) {
        h->cand[j].id = block[1 + j];
        h->cand[j].dist = mv_hnsw_node_distance(h, e, block[1 + j]);
    }
    h->cand[count].id = q;
    h->cand[count].dist = mv_hnsw_node_distance(h, e, q);

    mv_pool_sort(h->cand, count + 1);

    n_sel = mv_hnsw_select(h, h->cand, count + 1, max_links, h->sel);

    memcpy(block + 1, h->sel, n_sel * sizeof(uint32_t));
    block[0] = flags | (uint32_t) n_sel;
}


/*
 * Chooses node id's links on levels min(level, max_level) .. 0 by searching
 * the graph for its vector (id itself excluded), links back, and makes id
 * the entry point when its level is above the graph's.  Serves both a new
 * node (no links yet) and a moved one (links replaced).
 */
static void
mv_hnsw_link(mv_hnsw_t *h, uint32_t id, uint32_t level)
{
    mv_hnsw_graph_t  g;
    mv_query_t       qc;
    uint32_t        *block, cur, lev, flags;
    size_t           n_cand, i, n_sel;
    float            d;
    const float     *vec;

    vec = h->vectors + (size_t) id * h->p.dim;

    if (h->n == 1) {
        h->entry = id;
        h->max_level = level;
        return;
    }

    mv_hnsw_graph(h, &g);
    mv_query_prepare(&qc, &g, h->kern, h->scratch, vec, MV_BUILD_USE_CODES);

    cur = h->entry;

    if (level < h->max_level) {
        cur = mv_search_greedy(&qc, h->entry, h->max_level, level, &d);
    }

    lev = level < h->max_level ? level : h->max_level;

    for (;;) {
        n_cand = mv_search_layer(&qc, h->scratch, cur, h->p.ef_construction,
                                 lev, id);

        for (i = 0; i < n_cand; i++) {
            h->cand[i].id = h->scratch->pool[i].id & ~MV_POOL_EXPANDED;
            h->cand[i].dist = qc.codes
                ? mv_hnsw_node_distance(h, id, h->cand[i].id)
                : h->scratch->pool[i].dist;
        }

        if (qc.codes) {
            mv_pool_sort(h->cand, n_cand);
        }

        n_sel = mv_hnsw_select(h, h->cand, n_cand, h->M, h->sel);

        block = mv_hnsw_links_mut(h, id, lev);
        flags = block[0] & ~MV_HNSW_COUNT_MASK;
        memcpy(block + 1, h->sel, n_sel * sizeof(uint32_t));
        block[0] = (lev == 0 ? flags : 0) | (uint32_t) n_sel;

        if (n_cand > 0) {
            cur = h->cand[0].id;
        }

        /* connect() reuses h->cand and h->sel: iterate a copy of the links */
        for (i = 0; i < n_sel; i++) {
            mv_hnsw_connect(h, block[1 + i], id, lev);
        }

        if (lev == 0) {
            break;
        }
        lev--;
    }

    if (level > h->max_level) {
        h->max_level = level;
        h->entry = id;
    }
}


uint32_t
mv_hnsw_add(mv_hnsw_t *h, const float *vec, mv_err_t *err)
{
    uint32_t  id, level;
    size_t    blocks;
    float    *dst;

    if (!mv_all_finite(vec, h->p.dim)) {
        mv_err_set(err, "hnsw: vector has a non-finite value");
        return UINT32_MAX;
    }

    if (h->n >= UINT32_MAX - 1 || mv_hnsw_grow(h, h->n + 1) != MV_OK) {
        mv_err_set(err, "hnsw: out of memory");
        return UINT32_MAX;
    }

    level = mv_hnsw_draw_level(h);
    blocks = (size_t) level * (h->M + 1);

    if (mv_hnsw_upper_reserve(h, blocks) != MV_OK) {
        mv_err_set(err, "hnsw: out of memory (upper levels)");
        return UINT32_MAX;
    }

    id = (uint32_t) h->n;
    dst = h->vectors + (size_t) id * h->p.dim;
    memcpy(dst, vec, h->p.dim * sizeof(float));
    if (h->p.metric == MV_METRIC_COSINE) {
        mv_normalize(dst, h->p.dim);
    }

    memset(h->level0 + (size_t) id * h->stride, 0, h->stride);
    if (blocks > 0) {
        memset(h->upper_links + h->upper_len, 0, blocks * sizeof(uint32_t));
    }
    h->upper_offsets[id] = (uint32_t) h->upper_len;
    h->upper_len += blocks;
    h->upper_offsets[id + 1] = (uint32_t) h->upper_len;
    h->n++;

    if (h->code_offset != 0 && h->n >= MV_QUANT_FIRST_TRAIN
        && h->n >= 2 * h->quant_trained_n)
    {
        mv_hnsw_train_quantizer(h, h->vectors, h->n);

    } else {
        mv_hnsw_encode(h, id);
    }

    mv_hnsw_link(h, id, level);

    return id;
}


int
mv_hnsw_add_batch(mv_hnsw_t *h, const float *vectors, size_t n,
    mv_err_t *err)
{
    size_t   i;
    float   *normalised;

    /* Train the quantiser on the batch, as the index will hold it. */
    if (h->code_offset != 0 && h->n == 0 && n > 0) {

        if (h->p.metric == MV_METRIC_COSINE) {
            normalised = malloc(n * h->p.dim * sizeof(float));
            if (normalised == NULL) {
                return mv_err_set(err, "hnsw: out of memory");
            }

            memcpy(normalised, vectors, n * h->p.dim * sizeof(float));
            for (i = 0; i < n; i++) {
                mv_normalize(normalised + i * h->p.dim, h->p.dim);
            }

            mv_hnsw_train_quantizer(h, normalised, n);
            free(normalised);

        } else {
            mv_hnsw_train_quantizer(h, vectors, n);
        }
    }

    for (i = 0; i < n; i++) {
        if (mv_hnsw_add(h, vectors + i * h->p.dim, err) == UINT32_MAX) {
            return MV_ERR;
        }
    }

    return MV_OK;
}


int
mv_hnsw_update(mv_hnsw_t *h, uint32_t id, const float *vec, mv_err_t *err)
{
    float  *dst;

    if (id >= h->n) {
        return mv_err_set(err, "hnsw: update of node %u, index has %zu",
                          id, h->n);
    }

    if (!mv_all_finite(vec, h->p.dim)) {
        return mv_err_set(err, "hnsw: vector has a non-finite value");
    }

    dst = h->vectors + (size_t) id * h->p.dim;
    memcpy(dst, vec, h->p.dim * sizeof(float));
    if (h->p.metric == MV_METRIC_COSINE) {
        mv_normalize(dst, h->p.dim);
    }

    mv_hnsw_encode(h, id);
    mv_hnsw_link(h, id, (h->upper_offsets[id + 1] - h->upper_offsets[id])
                        / (h->M + 1));

    return MV_OK;
}


int
mv_hnsw_set_deleted(mv_hnsw_t *h, uint32_t id, int deleted, mv_err_t *err)
{
    uint32_t  *word;

    if (id >= h->n) {
        return mv_err_set(err, "hnsw: delete mark on node %u, index has %zu",
                          id, h->n);
    }

    word = (uint32_t *) (h->level0 + (size_t) id * h->stride);

    if (deleted) {
        *word |= MV_HNSW_DELETED;
    } else {
        *word &= ~MV_HNSW_DELETED;
    }

    return MV_OK;
}


size_t
mv_hnsw_size(const mv_hnsw_t *h)
{
    return h->n;
}


size_t
mv_hnsw_memory(const mv_hnsw_t *h)
{
    return h->cap * h->stride
           + h->cap * h->p.dim * sizeof(float)
           + (h->cap + 1) * sizeof(uint32_t)
           + h->upper_cap * sizeof(uint32_t)
           + (h->code_offset ? 2 * h->p.dim * sizeof(float) : 0);
}


void
mv_hnsw_graph(const mv_hnsw_t *h, mv_hnsw_graph_t *g)
{
    g->n = (uint32_t) h->n;
    g->dim = h->p.dim;
    g->metric = h->p.metric;
    g->M = h->M;
    g->M0 = h->M0;
    g->max_level = h->max_level;
    g->entry = h->entry;
    g->level0 = h->level0;
    g->level0_stride = h->stride;
    g->code_offset = h->code_offset;
    g->upper_offsets = h->upper_offsets;
    g->upper_links = h->upper_links;
    g->vectors = h->vectors;
    g->sq_min = h->sq_min;
    g->sq_scale = h->sq_scale;
}
