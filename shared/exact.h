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
 * 1 - dot; for MV_METRIC_IP distance = -dot, of the vectors as given).
 * Writes ids[q * k + r] and dist[q * k + r] best first; when
 * n < k the tail is filled with id UINT32_MAX and distance INFINITY.  Ties
 * are broken by the smaller id; a NaN distance ranks as INFINITY.  dist may
 * be NULL.  L2 is computed as |q|^2 - 2 q.x + |x|^2, so near-duplicates get
 * distances near 1e-6 |x|^2 rather than exactly 0.  Returns MV_OK, or MV_ERR
 * on allocation failure, k == 0, an unknown metric, dim > INT_MAX (BLAS
 * takes int) or n > UINT32_MAX.
 */
int mv_exact_topk(const float *base, size_t n, size_t dim, mv_metric_t metric,
    const float *queries, size_t nq, size_t k, uint32_t *ids, float *dist,
    mv_err_t *err);

#ifdef __cplusplus
}
#endif

#endif /* MV_EXACT_H */
