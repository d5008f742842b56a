/*
 * exact.h -- exact (brute-force) top-K search, the ground truth for recall
 * measurements and the scorer for offline evaluation.  Blocks of the base
 * matrix are multiplied with blocks of queries through OpenBLAS's sgemm, then
 * a bounded heap per query keeps the K best.
 */
#ifndef MV_EXACT_H
#define MV_EXACT_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"
#include "vec.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * For each of nq queries (row-major nq x dim), finds the k base vectors
 * (row-major n x dim) of smallest distance under metric (for
 * MV_METRIC_COSINE both sides must already be normalised; distance =
 * 1 - dot).  Writes ids[q * k + r] and dist[q * k + r] best first; when
 * n < k the tail is filled with id UINT32_MAX and distance INFINITY.  Ties
 * are broken by the smaller id.  dist may be NULL.  Returns MV_OK, or MV_ERR
 * on allocation failure or k == 0.
 */
int mv_exact_topk(const float *base, size_t n, size_t dim, mv_metric_t metric,
    const float *queries, size_t nq, size_t k, uint32_t *ids, float *dist,
    mv_err_t *err);

#ifdef __cplusplus
}
#endif

#endif /* MV_EXACT_H */
