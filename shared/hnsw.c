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
 *
 * Metrics.  Only cosine vectors are normalised on the way in; L2 and inner
 * product vectors are stored as given (an inner product's norms are part of
 * the score).  Nothing here assumes a distance is >= 0: the heuristic only
 * compares distances (it is hnswlib's, which uses it for its 'ip' space
 * too), and an inner product's distance -dot is negative for most good
 * neighbours.  Under the inner product a node need not be its own nearest
 * neighbour; insert and update exclude the node itself from its candidates
 * either way.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hnsw_internal.h"
#include "synth.h"

#define MV_QUANT_FIRST_TRAIN  256

/* Nodes per reorder block: their SQ8 codes fill one 4 KiB page at dim 64. */
#define MV_REORDER_BLOCK      64



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
    size_t               code_stride;     /* 0 without SQ8 */
    uint8_t             *level0;          /* cap * stride, 64-aligned */
    uint8_t             *codes;           /* cap * code_stride, 64-aligned */
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


size_t
mv_hnsw_level0_stride(uint32_t M0)
{
    return 4 + 4 * (size_t) M0;
}


size_t
mv_hnsw_code_stride(uint32_t dim)
{
    size_t  stride;

    if (dim >= 64) {
        return mv_align_up(dim, 64);
    }

    for (stride = 1; stride < dim; stride *= 2) {
        /* next power of two */
    }

    return stride;
}


/*
 * Moves an array of old_bytes into a 64-byte-aligned one of new_bytes
 * (cache-line-aligned records and codes keep each code within the fewest
 * lines).  Returns MV_OK, or MV_ERR with *p unchanged.
 */
static int
mv_aligned_grow(uint8_t **p, size_t old_bytes, size_t new_bytes)
{
    uint8_t  *grown;

    grown = aligned_alloc(64, mv_align_up(new_bytes ? new_bytes : 1, 64));
    if (grown == NULL) {
        return MV_ERR;
    }

    if (old_bytes) {
        memcpy(grown, *p, old_bytes);
    }

    free(*p);
    *p = grown;

    return MV_OK;
}


static int
mv_hnsw_check_params(const mv_hnsw_params_t *p, mv_err_t *err)
{
    if (p->dim == 0 || p->dim > 65536) {
        return mv_err_set(err, "hnsw: dim %u out of range 1..65536", p->dim);
    }

    if (!mv_metric_valid(p->metric)) {
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
    h->stride = mv_hnsw_level0_stride(h->M0);
    h->code_stride = p->sq8 ? mv_hnsw_code_stride(p->dim) : 0;

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
        || (g->codes != NULL) != (p->sq8 != 0))
    {
        mv_err_set(err, "hnsw: graph (dim %u, metric %d, M %u, sq8 %d) does "
                   "not match the parameters (dim %u, metric %d, M %u, "
                   "sq8 %d)", g->dim, (int) g->metric, g->M,
                   g->codes != NULL, p->dim, (int) p->metric, p->M,
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
        if (h->code_stride) {
            memcpy(h->codes, g->codes, (size_t) g->n * h->code_stride);
        }
        memcpy(h->vectors, g->vectors, (size_t) g->n * g->dim * sizeof(float));
        memcpy(h->upper_offsets, g->upper_offsets,
               ((size_t) g->n + 1) * sizeof(uint32_t));
        if (upper > 0) {
            memcpy(h->upper_links, g->upper_links, upper * sizeof(uint32_t));
        }
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
    free(h->codes);
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
    float     *vectors;
    uint32_t  *offsets;

    if (need <= h->cap) {
        return MV_OK;
    }

    cap = 2 * h->cap;
    if (cap < need) {
        cap = need;
    }

    if (mv_aligned_grow(&h->level0, h->cap * h->stride, cap * h->stride)
        != MV_OK
        || (h->code_stride
            && mv_aligned_grow(&h->codes, h->cap * h->code_stride,
                               cap * h->code_stride) != MV_OK))
    {
        return MV_ERR;
    }

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
    if (h->code_stride == 0) {
        return;
    }

    mv_sq8_encode(h->vectors + (size_t) id * h->p.dim, h->p.dim, h->sq_min,
                  h->sq_scale, h->codes + (size_t) id * h->code_stride);
}


void
mv_hnsw_train_quantizer(mv_hnsw_t *h, const float *vectors, size_t n)
{
    size_t  i;

    if (h->code_stride == 0) {
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
    mv_query_prepare(&qc, &g, h->kern, h->scratch, vec, 1);

    cur = h->entry;

    if (level < h->max_level) {
        cur = mv_search_greedy(&qc, h->entry, h->max_level, level, &d);
    }

    lev = level < h->max_level ? level : h->max_level;

    for (;;) {
        n_cand = mv_search_layer(&qc, h->scratch, cur, h->p.ef_construction,
                                 lev, id, NULL, 0, NULL);

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
    if (h->code_stride) {
        memset(h->codes + (size_t) id * h->code_stride, 0, h->code_stride);
    }
    if (blocks > 0) {
        memset(h->upper_links + h->upper_len, 0, blocks * sizeof(uint32_t));
    }
    h->upper_offsets[id] = (uint32_t) h->upper_len;
    h->upper_len += blocks;
    h->upper_offsets[id + 1] = (uint32_t) h->upper_len;
    h->n++;

    if (h->code_stride != 0 && h->n >= MV_QUANT_FIRST_TRAIN
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
    if (h->code_stride != 0 && h->n == 0 && n > 0) {

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


int
mv_hnsw_reorder(mv_hnsw_t *h, uint32_t *old_of_new, mv_err_t *err)
{
    uint32_t  *new_of_old, *upper_links, *upper_offsets, *block, *src;
    uint32_t  *tag, *fifo, old, v, j, count, seed, block_no, blocks_len;
    uint8_t   *level0, *codes;
    float     *vectors;
    size_t     n = h->n, i, pos, scan, head, tail, taken, fifo_cap;

    if (n == 0) {
        return MV_OK;
    }

    fifo_cap = (size_t) MV_REORDER_BLOCK * h->M0 + 1;
    new_of_old = malloc(n * sizeof(uint32_t));
    tag = malloc(n * sizeof(uint32_t));
    fifo = malloc(fifo_cap * sizeof(uint32_t));
    level0 = aligned_alloc(64, mv_align_up(h->cap * h->stride, 64));
    codes = h->code_stride
            ? aligned_alloc(64, mv_align_up(h->cap * h->code_stride, 64))
            : NULL;
    vectors = malloc(h->cap * h->p.dim * sizeof(float));
    upper_offsets = malloc((h->cap + 1) * sizeof(uint32_t));
    upper_links = malloc((h->upper_cap ? h->upper_cap : 1)
                         * sizeof(uint32_t));

    if (new_of_old == NULL || tag == NULL || fifo == NULL || level0 == NULL
        || (h->code_stride && codes == NULL) || vectors == NULL || upper_offsets == NULL
        || upper_links == NULL)
    {
        free(new_of_old);
        free(tag);
        free(fifo);
        free(level0);
        free(codes);
        free(vectors);
        free(upper_offsets);
        free(upper_links);
        return mv_err_set(err, "hnsw: out of memory (reorder)");
    }

    /*
     * Number the nodes block by block: a block is grown breadth-first from a
     * seed over level-0 links until it holds MV_REORDER_BLOCK nodes, and the
     * next block is seeded from what this one discovered but did not take,
     * so blocks are compact neighbourhoods and consecutive blocks border
     * each other.  (One breadth-first pass over the whole graph would not
     * do: its layers are shells around the entry point, spread over the
     * space.)  tag[v] = the block that queued v, so a block queues a node
     * once.
     */
    memset(new_of_old, 0xff, n * sizeof(uint32_t));
    memset(tag, 0, n * sizeof(uint32_t));
    pos = 0;
    scan = 0;
    seed = h->entry;

    for (block_no = 1; pos < n; block_no++) {
        head = 0;
        tail = 0;
        fifo[tail++] = seed;
        tag[seed] = block_no;
        taken = 0;

        while (head < tail && taken < MV_REORDER_BLOCK) {
            old = fifo[head++];
            if (new_of_old[old] != UINT32_MAX) {
                continue;
            }

            new_of_old[old] = (uint32_t) pos;
            old_of_new[pos++] = old;
            taken++;

            src = (uint32_t *) (h->level0 + (size_t) old * h->stride);
            count = src[0] & MV_HNSW_COUNT_MASK;

            for (j = 0; j < count && tail < fifo_cap; j++) {
                v = src[1 + j];
                if (new_of_old[v] == UINT32_MAX && tag[v] != block_no) {
                    tag[v] = block_no;
                    fifo[tail++] = v;
                }
            }
        }

        if (pos == n) {
            break;
        }

        /* The next seed borders this block, else the first node left. */
        while (head < tail && new_of_old[fifo[head]] != UINT32_MAX) {
            head++;
        }

        if (head < tail) {
            seed = fifo[head];

        } else {
            while (new_of_old[scan] != UINT32_MAX) {
                scan++;
            }
            seed = (uint32_t) scan;
        }
    }

    /* Move every node's record, vector and upper blocks to its new id. */
    pos = 0;

    for (i = 0; i < n; i++) {
        old = old_of_new[i];

        memcpy(level0 + i * h->stride, h->level0 + (size_t) old * h->stride,
               h->stride);
        block = (uint32_t *) (level0 + i * h->stride);
        count = block[0] & MV_HNSW_COUNT_MASK;
        for (j = 0; j < count; j++) {
            block[1 + j] = new_of_old[block[1 + j]];
        }

        memcpy(vectors + i * h->p.dim, h->vectors + (size_t) old * h->p.dim,
               h->p.dim * sizeof(float));

        if (h->code_stride) {
            memcpy(codes + i * h->code_stride,
                   h->codes + (size_t) old * h->code_stride, h->code_stride);
        }

        blocks_len = h->upper_offsets[old + 1] - h->upper_offsets[old];
        upper_offsets[i] = (uint32_t) pos;
        memcpy(upper_links + pos, h->upper_links + h->upper_offsets[old],
               blocks_len * sizeof(uint32_t));

        for (j = 0; j < blocks_len; j += h->M + 1) {
            block = upper_links + pos + j;
            for (count = 0; count < block[0]; count++) {
                block[1 + count] = new_of_old[block[1 + count]];
            }
        }

        pos += blocks_len;
    }

    upper_offsets[n] = (uint32_t) pos;

    free(h->level0);
    free(h->codes);
    free(h->vectors);
    free(h->upper_offsets);
    free(h->upper_links);

    h->level0 = level0;
    h->codes = codes;
    h->vectors = vectors;
    h->upper_offsets = upper_offsets;
    h->upper_links = upper_links;
    h->entry = new_of_old[h->entry];

    free(new_of_old);
    free(tag);
    free(fifo);

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
           + h->cap * h->code_stride
           + h->cap * h->p.dim * sizeof(float)
           + (h->cap + 1) * sizeof(uint32_t)
           + h->upper_cap * sizeof(uint32_t)
           + (h->code_stride ? 2 * h->p.dim * sizeof(float) : 0);
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
    g->codes = h->codes;
    g->code_stride = h->code_stride;
    g->upper_offsets = h->upper_offsets;
    g->upper_links = h->upper_links;
    g->vectors = h->vectors;
    g->sq_min = h->sq_min;
    g->sq_scale = h->sq_scale;
}
