/*
 * hnsw_validate.c -- mv_hnsw_graph_validate: proves that a graph view whose
 * arrays came from outside (a mapped snapshot, a fuzzer) is safe to search.
 *
 * A search trusts four things, and this file checks each of them once, in
 * O(n + total links), without allocating:
 *
 *   shape      M, M0 = 2M, the level-0 record stride and the code stride
 *              are what this build lays out (mv_hnsw_level0_stride,
 *              mv_hnsw_code_stride), so record i, its links and its code
 *              are where the search reads them;
 *   levels     upper_offsets start at 0 and grow in whole blocks of M + 1
 *              words; no node is above max_level; the entry node exists and
 *              is on max_level;
 *   links      every count is within its bound, and every link names another
 *              existing node; on a level l >= 1 the linked node must itself
 *              have level >= l, because the search reads that node's level-l
 *              block next;
 *   marks      a level-0 word uses only the count bits and the deleted bit.
 *
 * The caller guarantees that the arrays are as long as the view says
 * (n records, n + 1 offsets, upper_offsets[n] links, dim-sized SQ8 arrays);
 * the snapshot reader checks that against its section lengths.  Vectors are
 * the caller's business too (the snapshot checks they are finite).
 */
#include <math.h>
#include <stdint.h>

#include "hnsw.h"


static int
aligned4(const void *p)
{
    return ((uintptr_t) p & 3u) == 0;
}


static int
validate_shape(const mv_hnsw_graph_t *g, mv_err_t *err)
{
    size_t  stride;

    if (!mv_metric_valid(g->metric)) {
        return mv_err_set(err, "hnsw: unknown metric %d", (int) g->metric);
    }
    if (g->dim == 0) {
        return mv_err_set(err, "hnsw: dim is 0");
    }
    if (g->M < 2 || g->M > MV_HNSW_MAX_M) {
        return mv_err_set(err, "hnsw: M %u not in 2..%d", g->M,
                          MV_HNSW_MAX_M);
    }
    if (g->M0 != 2 * g->M) {
        return mv_err_set(err, "hnsw: M0 %u != 2 * M (%u)", g->M0, 2 * g->M);
    }

    stride = mv_hnsw_level0_stride(g->M0);
    if (g->level0_stride != stride) {
        return mv_err_set(err, "hnsw: level-0 stride %zu != expected %zu",
                          g->level0_stride, stride);
    }
    if (g->codes != NULL && g->code_stride != mv_hnsw_code_stride(g->dim)) {
        return mv_err_set(err, "hnsw: code stride %zu != expected %zu",
                          g->code_stride, mv_hnsw_code_stride(g->dim));
    }

    if (g->max_level > MV_HNSW_MAX_LEVEL) {
        return mv_err_set(err, "hnsw: max level %u > %d", g->max_level,
                          MV_HNSW_MAX_LEVEL);
    }
    if (g->n == 0) {
        if (g->max_level != 0) {
            return mv_err_set(err, "hnsw: empty graph with max level %u",
                              g->max_level);
        }
    } else if (g->entry >= g->n) {
        return mv_err_set(err, "hnsw: entry %u out of range (n=%u)",
                          g->entry, g->n);
    }

    if (g->upper_offsets == NULL || !aligned4(g->upper_offsets)) {
        return mv_err_set(err, "hnsw: upper offsets missing or misaligned");
    }
    if (g->n > 0) {
        if (g->level0 == NULL || !aligned4(g->level0)) {
            return mv_err_set(err, "hnsw: level 0 missing or misaligned");
        }
        if (g->vectors == NULL || !aligned4(g->vectors)) {
            return mv_err_set(err, "hnsw: vectors missing or misaligned");
        }
    }

    return MV_OK;
}


static int
validate_quantizer(const mv_hnsw_graph_t *g, mv_err_t *err)
{
    uint32_t  j;

    if (g->codes == NULL) {
        return MV_OK;
    }

    if (g->sq_min == NULL || g->sq_scale == NULL || !aligned4(g->sq_min)
        || !aligned4(g->sq_scale))
    {
        return mv_err_set(err, "hnsw: sq8 parameters missing or misaligned");
    }

    for (j = 0; j < g->dim; j++) {
        if (!isfinite(g->sq_min[j])) {
            return mv_err_set(err, "hnsw: sq8 min[%u] is not finite", j);
        }
        if (!isfinite(g->sq_scale[j]) || !(g->sq_scale[j] > 0.0f)) {
            return mv_err_set(err, "hnsw: sq8 scale[%u] = %g is not a "
                              "positive finite number", j,
                              (double) g->sq_scale[j]);
        }
    }

    return MV_OK;
}


static int
validate_levels(const mv_hnsw_graph_t *g, mv_err_t *err)
{
    uint32_t  i, lo, hi, block = g->M + 1;

    if (g->upper_offsets[0] != 0) {
        return mv_err_set(err, "hnsw: upper offsets start at %u, not 0",
                          g->upper_offsets[0]);
    }

    for (i = 0; i < g->n; i++) {
        lo = g->upper_offsets[i];
        hi = g->upper_offsets[i + 1];
        if (hi < lo) {
            return mv_err_set(err, "hnsw: node %u: upper offsets decrease "
                              "(%u -> %u)", i, lo, hi);
        }
        if ((hi - lo) % block != 0) {
            return mv_err_set(err, "hnsw: node %u: upper span %u is not a "
                              "multiple of M + 1 = %u", i, hi - lo, block);
        }
        if ((hi - lo) / block > g->max_level) {
            return mv_err_set(err, "hnsw: node %u: level %u > max level %u",
                              i, (hi - lo) / block, g->max_level);
        }
    }

    if (g->n > 0 && mv_hnsw_node_level(g, g->entry) != g->max_level) {
        return mv_err_set(err, "hnsw: entry %u has level %u != max level %u",
                          g->entry, mv_hnsw_node_level(g, g->entry),
                          g->max_level);
    }
    if (g->upper_offsets[g->n] != 0 && g->upper_links == NULL) {
        return mv_err_set(err, "hnsw: upper links missing");
    }
    if (g->upper_links != NULL && !aligned4(g->upper_links)) {
        return mv_err_set(err, "hnsw: upper links misaligned");
    }

    return MV_OK;
}


static int
validate_level0(const mv_hnsw_graph_t *g, mv_err_t *err)
{
    const uint32_t  *rec;
    uint32_t         i, j, word, count, link;

    for (i = 0; i < g->n; i++) {
        rec = mv_hnsw_level0_record(g, i);
        word = rec[0];
        if ((word & ~(MV_HNSW_COUNT_MASK | MV_HNSW_DELETED)) != 0) {
            return mv_err_set(err, "hnsw: node %u: level-0 word 0x%08x has "
                              "unknown bits", i, word);
        }
        count = word & MV_HNSW_COUNT_MASK;
        if (count > g->M0) {
            return mv_err_set(err, "hnsw: node %u: level-0 count %u > M0 %u",
                              i, count, g->M0);
        }
        for (j = 0; j < count; j++) {
            link = rec[1 + j];
            if (link >= g->n) {
                return mv_err_set(err, "hnsw: node %u link %u -> %u out of "
                                  "range (n=%u)", i, j, link, g->n);
            }
            if (link == i) {
                return mv_err_set(err, "hnsw: node %u link %u points to "
                                  "itself", i, j);
            }
        }
    }

    return MV_OK;
}


static int
validate_upper(const mv_hnsw_graph_t *g, mv_err_t *err)
{
    const uint32_t  *block;
    uint32_t         i, level, levels, j, count, link;

    for (i = 0; i < g->n; i++) {
        levels = mv_hnsw_node_level(g, i);
        for (level = 1; level <= levels; level++) {
            block = g->upper_links + g->upper_offsets[i]
                    + (size_t) (level - 1) * (g->M + 1);
            count = block[0];
            if (count > g->M) {
                return mv_err_set(err, "hnsw: node %u level %u: count %u > "
                                  "M %u", i, level, count, g->M);
            }
            for (j = 0; j < count; j++) {
                link = block[1 + j];
                if (link >= g->n) {
                    return mv_err_set(err, "hnsw: node %u level %u link %u "
                                      "-> %u out of range (n=%u)", i, level,
                                      j, link, g->n);
                }
                if (link == i) {
                    return mv_err_set(err, "hnsw: node %u level %u link %u "
                                      "points to itself", i, level, j);
                }
                if (mv_hnsw_node_level(g, link) < level) {
                    return mv_err_set(err, "hnsw: node %u level %u link %u "
                                      "-> %u which has only level %u", i,
                                      level, j, link,
                                      mv_hnsw_node_level(g, link));
                }
            }
        }
    }

    return MV_OK;
}


/*
 * Checks everything a search will trust in a view from outside (see
 * hnsw.h and the top of this file).  Returns MV_OK or MV_ERR with the first
 * problem found.
 */
int
mv_hnsw_graph_validate(const mv_hnsw_graph_t *g, mv_err_t *err)
{
    if (validate_shape(g, err) != MV_OK
        || validate_quantizer(g, err) != MV_OK
        || validate_levels(g, err) != MV_OK
        || validate_level0(g, err) != MV_OK
        || validate_upper(g, err) != MV_OK)
    {
        return MV_ERR;
    }

    return MV_OK;
}
