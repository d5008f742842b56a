/*
 * hnsw.h -- Hierarchical Navigable Small World graphs (Malkov & Yashunin,
 * 2016): build, incremental insert, vector update, delete marks, and search
 * over a read-only graph view that is either the live in-memory index or a
 * snapshot mapped from disk.
 *
 * The graph is stored as offsets, never pointers, so the same bytes are the
 * in-memory index and a snapshot section:
 *
 *   level 0   n records of level0_stride = 4 + 4 * M0 bytes each, one
 *             fixed-stride array that mmaps as is:
 *               u32 word       bits 0..15 link count, bit 31 deleted mark
 *               u32 links[M0]  neighbour node ids (only `count` are valid)
 *   codes     (optional) n SQ8 codes of code_stride bytes (see vec.h and
 *             mv_hnsw_code_stride), in their own 64-byte-aligned array.
 *             The walk measures a node's code once for every time it
 *             expands a node's links about ten times, so codes are kept
 *             apart from links: one cache line per distance, and a code
 *             array small enough to stay in the last-level cache of a
 *             large machine (12.8 MB for 200k nodes of dim 64).
 *   upper     node i owns upper_links[upper_offsets[i] .. upper_offsets[i+1]),
 *             which is level(i) blocks of (1 + M) u32: a count, then M links.
 *             level(i) = (upper_offsets[i+1] - upper_offsets[i]) / (M + 1).
 *   vectors   n x dim float32, L2-normalised for the cosine metric, as
 *             given for L2 and the inner product.  Search re-ranks its
 *             final candidates with these exact values.
 *
 * Build: levels are drawn with multiplier 1/ln(M); M0 = 2M; neighbours are
 * chosen with the paper's heuristic (keep a candidate only if it is closer to
 * the new node than to every neighbour kept so far); a full neighbour list
 * of a linked node is re-pruned with the same heuristic.  When SQ8 codes are
 * on, the ef_construction search runs on codes and the heuristic on exact
 * distances.
 *
 * Search allocates nothing: the caller owns an mv_hnsw_scratch_t (epoch-tagged
 * visited list, heaps) sized for the graph and the largest ef it will use.
 * A scratch serves one thread at a time.
 *
 * A view of a graph that came from outside (a file) must have been validated
 * with mv_hnsw_graph_validate before it is searched.
 */
#ifndef MV_HNSW_H
#define MV_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"
#include "vec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MV_HNSW_MAX_M        64       /* largest M accepted (M0 = 128) */
#define MV_HNSW_MAX_LEVEL    31
#define MV_HNSW_DELETED      0x80000000u
#define MV_HNSW_COUNT_MASK   0x0000ffffu

/* A read-only view of a graph: the live index's arrays or a mapped file's. */
typedef struct mv_hnsw_graph {
    uint32_t         n;              /* nodes */
    uint32_t         dim;
    mv_metric_t      metric;
    uint32_t         M;              /* max links on levels >= 1 */
    uint32_t         M0;             /* max links on level 0 (2M) */
    uint32_t         max_level;      /* level of the entry point */
    uint32_t         entry;          /* entry node; unused when n == 0 */

    const uint8_t   *level0;         /* n * level0_stride bytes */
    size_t           level0_stride;  /* 4 + 4 * M0 */
    const uint8_t   *codes;          /* n * code_stride bytes, or NULL */
    size_t           code_stride;    /* mv_hnsw_code_stride(dim) */
    const uint32_t  *upper_offsets;  /* n + 1 entries, upper_offsets[0] = 0 */
    const uint32_t  *upper_links;    /* upper_offsets[n] entries */
    const float     *vectors;        /* n * dim */
    const float     *sq_min;         /* dim entries, when codes are present */
    const float     *sq_scale;       /* dim entries, when codes are present */
} mv_hnsw_graph_t;

/* The level-0 record stride for M0 links: 4 + 4 * M0. */
size_t mv_hnsw_level0_stride(uint32_t M0);

/*
 * The stride of SQ8 codes of dimension dim: the next power of two below 64
 * bytes, a multiple of 64 from there, so no code straddles more cache lines
 * than it must.
 */
size_t mv_hnsw_code_stride(uint32_t dim);

/*
 * Checks everything a search will trust in a view whose arrays came from
 * outside: shape (M, M0, strides), entry < n and of level
 * max_level, upper offsets monotonic with whole blocks, every level
 * <= max_level, every count within its bound, every link < n and not the
 * node itself.  Returns MV_OK or MV_ERR with the first problem found.
 * Runs in O(total links).
 */
int mv_hnsw_graph_validate(const mv_hnsw_graph_t *g, mv_err_t *err);

/* Number of levels above 0 that node i has. */
static inline uint32_t
mv_hnsw_node_level(const mv_hnsw_graph_t *g, uint32_t i)
{
    return (g->upper_offsets[i + 1] - g->upper_offsets[i]) / (g->M + 1);
}

/* Level-0 record of node i. */
static inline const uint32_t *
mv_hnsw_level0_record(const mv_hnsw_graph_t *g, uint32_t i)
{
    return (const uint32_t *) (g->level0 + (size_t) i * g->level0_stride);
}

static inline int
mv_hnsw_is_deleted(const mv_hnsw_graph_t *g, uint32_t i)
{
    return (mv_hnsw_level0_record(g, i)[0] & MV_HNSW_DELETED) != 0;
}


/* ---- the mutable in-memory index (one writer) ---------------------------- */

typedef struct mv_hnsw_params {
    uint32_t     dim;
    mv_metric_t  metric;
    uint32_t     M;                 /* 2..MV_HNSW_MAX_M, typical 16 */
    uint32_t     ef_construction;   /* typical 200 */
    uint64_t     seed;              /* level draws are reproducible */
    int          sq8;               /* keep SQ8 codes for traversal */
} mv_hnsw_params_t;

typedef struct mv_hnsw mv_hnsw_t;

/*
 * Creates an empty index.  capacity is a hint (the index grows as needed).
 * Returns NULL with err set on bad parameters or allocation failure.
 */
mv_hnsw_t *mv_hnsw_new(const mv_hnsw_params_t *p, size_t capacity,
    mv_err_t *err);

/*
 * Creates a mutable index holding a copy of graph g (e.g. the graph of the
 * newest snapshot), so a trainer can re-insert only what moved.  The
 * parameters' dim, metric, M and sq8 must match g; ef_construction and seed
 * are taken from p.  Returns NULL with err set on mismatch.
 */
mv_hnsw_t *mv_hnsw_from_graph(const mv_hnsw_graph_t *g,
    const mv_hnsw_params_t *p, mv_err_t *err);

void mv_hnsw_free(mv_hnsw_t *h);

/*
 * Sets the SQ8 quantiser from sample vectors (row-major n x dim) and re-codes
 * every node.  Called automatically by the first mv_hnsw_add_batch on an
 * empty index; call it again when the value ranges drift (values outside the
 * trained range are clamped, which costs recall).  No-op without sq8.
 */
void mv_hnsw_train_quantizer(mv_hnsw_t *h, const float *vectors, size_t n);

/*
 * Inserts one vector (copied; normalised for cosine) as node id
 * mv_hnsw_size(h) and returns that id, or UINT32_MAX with err set
 * (allocation failure, non-finite value).
 */
uint32_t mv_hnsw_add(mv_hnsw_t *h, const float *vec, mv_err_t *err);

/*
 * Inserts n vectors (row-major) in order; the ids are consecutive from the
 * current size.  Returns MV_OK or MV_ERR (then the vectors before the bad
 * one are inserted).
 */
int mv_hnsw_add_batch(mv_hnsw_t *h, const float *vectors, size_t n,
    mv_err_t *err);

/*
 * Replaces node id's vector and re-links it: its own links are chosen afresh
 * by a search from the entry point, and it is offered as a neighbour to the
 * nodes it now links to.  Returns MV_OK or MV_ERR (bad id, non-finite value).
 */
int mv_hnsw_update(mv_hnsw_t *h, uint32_t id, const float *vec,
    mv_err_t *err);

/*
 * Sets or clears node id's delete mark.  Deleted nodes still route searches
 * but are never returned.  Returns MV_OK or MV_ERR for a bad id.
 */
int mv_hnsw_set_deleted(mv_hnsw_t *h, uint32_t id, int deleted,
    mv_err_t *err);

/*
 * Renumbers the nodes so that graph neighbours get nearby ids: blocks of
 * nodes grown breadth-first over level 0 (a compact neighbourhood each),
 * each block seeded from the frontier of the one before.  A query then
 * touches few pages of records and codes instead of pages spread over the
 * whole array, which is what an HNSW search spends its time waiting for.
 * old_of_new (room for mv_hnsw_size(h) ids) receives for each new id the
 * node's old id, so the caller can reorder what it keeps per node.  Returns
 * MV_OK, or MV_ERR on allocation failure (h unchanged).
 */
int mv_hnsw_reorder(mv_hnsw_t *h, uint32_t *old_of_new, mv_err_t *err);

size_t mv_hnsw_size(const mv_hnsw_t *h);

/* Bytes the index holds (graph, vectors, codes), for memory reports. */
size_t mv_hnsw_memory(const mv_hnsw_t *h);

/*
 * Fills g with a view of the index.  The view is valid until the next
 * mutation of h.
 */
void mv_hnsw_graph(const mv_hnsw_t *h, mv_hnsw_graph_t *g);


/* ---- search (works on any validated view) -------------------------------- */

typedef struct mv_hit {
    uint32_t  id;
    float     distance;     /* lower is better, see vec.h */
} mv_hit_t;

/*
 * What a search may return.  allow (optional) is asked about every node
 * that could enter the result (not about nodes merely traversed); deleted
 * nodes are never returned whatever allow says.  candidates (optional) lists
 * every node id that can pass allow (e.g. a category's members): when it is
 * short compared with the graph, the search scans it exactly instead of
 * walking the graph, and when a graph walk finds fewer than k results the
 * search completes them from it, so a selective filter stays correct.
 * Without candidates a walk that finds fewer than k falls back to an exact
 * scan of all nodes.
 */
typedef struct mv_filter {
    int             (*allow)(const void *ctx, uint32_t id);
    const void       *ctx;
    const uint32_t   *candidates;
    size_t            n_candidates;
} mv_filter_t;

typedef struct mv_hnsw_scratch mv_hnsw_scratch_t;

/*
 * Creates a scratch for graphs of up to n nodes, dimension up to dim, and
 * searches with ef (and k) up to max_ef.  Returns NULL on allocation
 * failure.
 */
mv_hnsw_scratch_t *mv_hnsw_scratch_new(size_t n, size_t dim, size_t max_ef);

/*
 * Grows s to serve n nodes, dim and max_ef (no-op when it already does).
 * Returns MV_OK or MV_ERR on allocation failure (s is unchanged then).
 */
int mv_hnsw_scratch_reserve(mv_hnsw_scratch_t *s, size_t n, size_t dim,
    size_t max_ef);

void mv_hnsw_scratch_free(mv_hnsw_scratch_t *s);

/*
 * Finds up to k nodes nearest to query (dim floats; normalised internally
 * for cosine) that pass filter (may be NULL) and are not deleted.  ef is the
 * candidate list size: raised to k when smaller, widened for a selective
 * filter, and capped at the scratch's max_ef.  Writes hits best first (ties
 * by id) into out (room for k) and returns their number, which is less than
 * k only when fewer than k nodes qualify.  Returns 0 when the scratch is too
 * small for the graph (n, dim) or for k, so callers reserve first.
 * Distances are exact (re-ranked on the float vectors).  Allocates nothing.
 */
size_t mv_hnsw_search(const mv_hnsw_graph_t *g, const mv_kernels_t *kern,
    mv_hnsw_scratch_t *s, const float *query, size_t k, size_t ef,
    const mv_filter_t *filter, mv_hit_t *out);

/*
 * Exact scan: the k best of the listed ids (or of all nodes when ids is
 * NULL) that pass filter and are not deleted.  Same output contract as
 * mv_hnsw_search.
 */
size_t mv_hnsw_scan(const mv_hnsw_graph_t *g, const mv_kernels_t *kern,
    mv_hnsw_scratch_t *s, const float *query, const uint32_t *ids,
    size_t n_ids, size_t k, const mv_filter_t *filter, mv_hit_t *out);

#ifdef __cplusplus
}
#endif

#endif /* MV_HNSW_H */
