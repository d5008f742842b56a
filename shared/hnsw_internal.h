/*
 * hnsw_internal.h -- what the HNSW builder (hnsw.c) and the searcher
 * (hnsw_search.c) share; not part of the public API.
 *
 * The search keeps one sorted array, the "pool", of the ef best nodes seen so
 * far, each tagged expanded or not (the formulation NSG and DiskANN use for
 * the HNSW beam search).  It is equivalent to the paper's two heaps (the
 * unexpanded entries are the candidate set, the whole array is the result
 * set), needs no allocation, and for ef of a few hundred an insertion by
 * binary search and memmove beats heap operations.
 */
#ifndef MV_HNSW_INTERNAL_H
#define MV_HNSW_INTERNAL_H

#include <string.h>

#include "hnsw.h"

#define MV_POOL_EXPANDED  0x80000000u   /* tag in mv_pool_entry_t.id */

typedef struct mv_pool_entry {
    float     dist;
    uint32_t  id;                       /* node id | MV_POOL_EXPANDED */
} mv_pool_entry_t;

struct mv_hnsw_scratch {
    size_t            n_cap;
    size_t            dim_cap;
    size_t            ef_cap;
    uint8_t          *visited;          /* n_cap epoch tags */
    uint8_t           epoch;
    mv_pool_entry_t  *pool;             /* ef_cap: the walk's beam */
    mv_pool_entry_t  *res;              /* ef_cap: accepted results */
    float            *q;                /* dim_cap: the query (normalised for
                                           cosine) */
    float            *qa;               /* dim_cap: SQ8 query, see vec.h */
    float            *qb;               /* dim_cap: SQ8 weights (L2) */
    uint32_t          batch[2 * MV_HNSW_MAX_M];
};

/* A query prepared against one graph. */
typedef struct mv_query {
    const mv_hnsw_graph_t  *g;
    const mv_kernels_t     *kern;
    const float            *q;          /* dim floats, normalised for cosine */
    int                     codes;      /* 1: distances from SQ8 codes */
    float                   bias;       /* SQ8 dot constant */
    float                   offset;     /* SQ8 dot distances: 1 cosine, 0 ip */
    const float            *qa;
    const float            *qb;
} mv_query_t;

/*
 * Prepares qc for searching g with the query vector q (already normalised
 * for cosine; not copied).  use_codes selects SQ8 distances (ignored when g
 * has no codes); the SQ8 query arrays go into s.
 */
void mv_query_prepare(mv_query_t *qc, const mv_hnsw_graph_t *g,
    const mv_kernels_t *kern, mv_hnsw_scratch_t *s, const float *q,
    int use_codes);

#if defined(__GNUC__)
#define mv_prefetch(p)  __builtin_prefetch((p), 0, 3)
#else
#define mv_prefetch(p)  ((void) (p))
#endif

/*
 * Starts the load of the cache line at p with an ordinary load whose value
 * is thrown away.  The walk uses it, not mv_prefetch, for the memory it is
 * about to measure: on the machine the benchmark runs on (a virtual
 * machine on AMD EPYC), software prefetches of the codes of a node's
 * neighbours mostly did not reach memory early, and the distance loop
 * waited on every code in turn (about 130 cycles per distance).  Loads
 * cannot be dropped: the out-of-order core keeps the batch in flight
 * together, and the same walk ran 1.46-1.63x faster (BENCHMARKS.md).  The
 * cost is a load slot per line, on memory read a moment later anyway.
 */
static inline void
mv_touch(const void *p)
{
    (void) *(const volatile uint8_t *) p;
}

/*
 * Touches every cache line of the bytes [p, p + len): one load every 64
 * bytes, and the last byte when p is not line-aligned (the range then ends
 * in a line those loads may miss).  Never reads outside the range.
 */
static inline void
mv_touch_lines(const void *p, size_t len)
{
    const uint8_t  *b = p;
    size_t          off;

    for (off = 0; off < len; off += 64) {
        mv_touch(b + off);
    }

    if (len > 0 && ((uintptr_t) b & 63) != 0) {
        mv_touch(b + len - 1);
    }
}

/*
 * Starts loading what mv_query_distance will read for node id (its SQ8
 * code or its float vector), so that a batch of neighbours is fetched
 * together before the first of them is measured.
 */
static inline void
mv_query_touch(const mv_query_t *qc, uint32_t id)
{
    const mv_hnsw_graph_t  *g = qc->g;

    if (qc->codes) {
        mv_touch_lines(g->codes + (size_t) id * g->code_stride, g->dim);
        return;
    }

    mv_touch_lines(g->vectors + (size_t) id * g->dim, g->dim * sizeof(float));
}

/* Distance from the prepared query to node id (approximate with codes). */
static inline float
mv_query_distance(const mv_query_t *qc, uint32_t id)
{
    const mv_hnsw_graph_t  *g = qc->g;
    const uint8_t          *code;
    float                   d;

    if (qc->codes) {
        code = g->codes + (size_t) id * g->code_stride;

        if (g->metric == MV_METRIC_L2) {
            return qc->kern->l2sq_u8(qc->qa, qc->qb, code, g->dim);
        }

        /* cosine: 1 - dot; the inner product: -dot (offset 0), NaN from
           an overflow ranked last as in mv_distance */
        d = qc->offset - qc->bias - qc->kern->dot_u8(qc->qa, code, g->dim);
        return isnan(d) ? INFINITY : d;
    }

    return mv_distance(qc->kern, g->metric, qc->q,
                       g->vectors + (size_t) id * g->dim, g->dim);
}

/* Links of node id at level (0 or 1..level(id)); *count receives their number. */
static inline const uint32_t *
mv_hnsw_links(const mv_hnsw_graph_t *g, uint32_t id, uint32_t level,
    uint32_t *count)
{
    const uint32_t  *block;

    if (level == 0) {
        block = mv_hnsw_level0_record(g, id);
        *count = block[0] & MV_HNSW_COUNT_MASK;
        return block + 1;
    }

    block = g->upper_links + g->upper_offsets[id]
            + (size_t) (level - 1) * (g->M + 1);
    *count = block[0];
    return block + 1;
}

/*
 * Greedy descent: from node `from`, on each level from `top` down to
 * `bottom` + 1, moves to the nearest neighbour until no neighbour is nearer.
 * Returns the node reached; *dist receives its distance.
 */
uint32_t mv_search_greedy(const mv_query_t *qc, uint32_t from, uint32_t top,
    uint32_t bottom, float *dist);

/*
 * Beam search of width ef (<= s->ef_cap) on one level from one entry node,
 * the one walk both the builder and queries use.  Node `skip` (UINT32_MAX
 * for none) is neither measured nor returned: a node being re-linked starts
 * from its own links.  Leaves the ef best nodes found in s->pool, sorted by
 * distance.  With a filter, the acceptable nodes measured on the way are
 * also kept in s->res (capacity res_cap <= s->ef_cap), so rejected nodes
 * route the walk without taking result places, and *acceptance (when not
 * NULL) receives the share of the filter's verdicts that were yes.  Returns
 * the number of s->res entries with a filter, of s->pool entries without
 * (deleted nodes still among them).
 */
size_t mv_search_layer(const mv_query_t *qc, mv_hnsw_scratch_t *s,
    uint32_t entry, size_t ef, uint32_t level, uint32_t skip,
    const mv_filter_t *filter, size_t res_cap, double *acceptance);

/*
 * Inserts (d, id) into the sorted array a of *size entries and capacity cap
 * (dropping the last entry when full).  Returns the position, or cap when d
 * is not better than a full array's last entry.  Equal distances keep
 * insertion order.
 */
static inline size_t
mv_pool_insert(mv_pool_entry_t *a, size_t *size, size_t cap, float d,
    uint32_t id)
{
    size_t  lo, hi, mid, n;

    n = *size;

    if (n == cap) {
        if (!(d < a[cap - 1].dist)) {
            return cap;
        }
        n--;
    }

    lo = 0;
    hi = n;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        if (a[mid].dist <= d) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    if (n > lo) {
        memmove(&a[lo + 1], &a[lo], (n - lo) * sizeof(mv_pool_entry_t));
    }

    a[lo].dist = d;
    a[lo].id = id;
    *size = n + 1;

    return lo;
}

/*
 * Sorts by distance, then id.  Insertion sort: the lists sorted here are
 * short (a neighbour list) or nearly sorted already (a beam re-measured on
 * exact distances: the build's beam, a query's re-ranked candidates),
 * where it beats qsort and its indirect comparisons.
 */
static inline void
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

#endif /* MV_HNSW_INTERNAL_H */
