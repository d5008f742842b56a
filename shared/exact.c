/*
 * exact.c -- exact top-K search through OpenBLAS (see exact.h).
 *
 * Design.  Queries are taken in blocks of up to EXACT_QUERY_BLOCK rows and,
 * for each query block, the base matrix is walked in blocks of
 * EXACT_BASE_BLOCK rows.  One cblas_sgemm per (query block, base block)
 * pair computes every inner product of the pair into a score block
 * (queries x base rows, row-major), sized to stay in the outer caches.  The
 * scores become distances (cosine: 1 - q.x; inner product: -q.x; L2:
 * |q|^2 - 2 q.x + |x|^2, clamped at 0) and feed one bounded max-heap of size min(k, n) per query;
 * the heap's root is the worst kept candidate, so a new one costs a single
 * comparison unless it enters.  Order is (distance, id) so ties go to the
 * smaller id.  At the end each heap is sorted in place (heapsort) and
 * written out best first; the n < k tail is filled with UINT32_MAX and
 * INFINITY.
 *
 * Squared norms come from the library's own dot kernel.  A NaN distance
 * (from non-finite input) is ranked as INFINITY.  The heaps of a query
 * block take k entries each; the block shrinks when k is large so that they
 * stay within EXACT_HEAP_ENTRIES.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "exact.h"

#define EXACT_QUERY_BLOCK   256
#define EXACT_BASE_BLOCK    4096
#define EXACT_HEAP_ENTRIES  ((size_t) 1 << 22)

typedef struct exact_hit {
    float    dist;
    uint32_t id;
} exact_hit_t;


/* 1 when hit a ranks strictly worse than hit b. */
static inline int
hit_worse(const exact_hit_t *a, const exact_hit_t *b)
{
    return a->dist > b->dist || (a->dist == b->dist && a->id > b->id);
}


/* Restores the max-heap order below position i of heap[0..size). */
static void
heap_sift_down(exact_hit_t *heap, size_t size, size_t i)
{
    exact_hit_t moving = heap[i];
    size_t      child;

    for (;;) {
        child = 2 * i + 1;
        if (child >= size) {
            break;
        }
        if (child + 1 < size && hit_worse(&heap[child + 1], &heap[child])) {
            child++;
        }
        if (!hit_worse(&heap[child], &moving)) {
            break;
        }
        heap[i] = heap[child];
        i = child;
    }

    heap[i] = moving;
}


/* Adds hit to a heap holding *size of at most cap entries. */
static inline void
heap_offer(exact_hit_t *heap, size_t *size, size_t cap, exact_hit_t hit)
{
    size_t i, parent;

    if (*size < cap) {
        /* Sift up. */
        i = (*size)++;
        while (i > 0) {
            parent = (i - 1) / 2;
            if (!hit_worse(&hit, &heap[parent])) {
                break;
            }
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = hit;
        return;
    }

    if (hit_worse(&heap[0], &hit)) {
        heap[0] = hit;
        heap_sift_down(heap, *size, 0);
    }
}


/* Sorts a max-heap in place into best-first (ascending) order. */
static void
heap_sort(exact_hit_t *heap, size_t size)
{
    exact_hit_t top;

    while (size > 1) {
        top = heap[0];
        heap[0] = heap[--size];
        heap[size] = top;
        heap_sift_down(heap, size, 0);
    }
}


/* See exact.h. */
int
mv_exact_topk(const float *base, size_t n, size_t dim, mv_metric_t metric,
    const float *queries, size_t nq, size_t k, uint32_t *ids, float *dist,
    mv_err_t *err)
{
    const mv_kernels_t *kern = mv_kernels_best();
    exact_hit_t        *heaps = NULL, *heap, hit;
    size_t             *heap_sizes = NULL;
    float              *scores = NULL, *base_norms = NULL;
    float              *query_norms = NULL;
    float               score, d;
    size_t              cap, query_block, q0, nqb, b0, nb, q, j, r;
    int                 rc = MV_ERR;

    if (k == 0) {
        return mv_err_set(err, "exact top-k: k must be at least 1");
    }
    if (!mv_metric_valid(metric)) {
        return mv_err_set(err, "exact top-k: unknown metric %d",
                          (int) metric);
    }
    if (dim > INT_MAX) {
        return mv_err_set(err, "exact top-k: dim %zu too large for BLAS",
                          dim);
    }
    if (n > (size_t) UINT32_MAX) {
        return mv_err_set(err, "exact top-k: %zu base vectors exceed the "
                          "32-bit id space", n);
    }
    if (nq == 0) {
        return MV_OK;
    }

    cap = k < n ? k : n;
    query_block = EXACT_QUERY_BLOCK;
    if (cap > 0 && query_block > EXACT_HEAP_ENTRIES / cap) {
        query_block = EXACT_HEAP_ENTRIES / cap;
        query_block = query_block > 0 ? query_block : 1;
    }

    scores = malloc(query_block * EXACT_BASE_BLOCK * sizeof(float));
    base_norms = malloc(EXACT_BASE_BLOCK * sizeof(float));
    query_norms = malloc(query_block * sizeof(float));
    heap_sizes = malloc(query_block * sizeof(size_t));
    heaps = malloc(query_block * (cap > 0 ? cap : 1) * sizeof(exact_hit_t));
    if (scores == NULL || base_norms == NULL || query_norms == NULL
        || heap_sizes == NULL || heaps == NULL)
    {
        mv_err_set(err, "exact top-k: out of memory (blocks of %zu queries, "
                   "k = %zu)", query_block, k);
        goto done;
    }

    for (q0 = 0; q0 < nq; q0 += nqb) {
        nqb = nq - q0 < query_block ? nq - q0 : query_block;

        for (q = 0; q < nqb; q++) {
            heap_sizes[q] = 0;
            query_norms[q] = kern->dot(queries + (q0 + q) * dim,
                                       queries + (q0 + q) * dim, dim);
        }

        for (b0 = 0; b0 < n; b0 += nb) {
            nb = n - b0 < EXACT_BASE_BLOCK ? n - b0 : EXACT_BASE_BLOCK;

            if (dim > 0) {
                /* scores (nqb x nb) = Q (nqb x dim) * B^T (dim x nb) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                            (int) nqb, (int) nb, (int) dim, 1.0f,
                            queries + q0 * dim, (int) dim,
                            base + b0 * dim, (int) dim,
                            0.0f, scores, (int) nb);
            } else {
                memset(scores, 0, nqb * nb * sizeof(float));
            }

            if (metric == MV_METRIC_L2) {
                for (j = 0; j < nb; j++) {
                    base_norms[j] = kern->dot(base + (b0 + j) * dim,
                                              base + (b0 + j) * dim, dim);
                }
            }

            for (q = 0; q < nqb; q++) {
                heap = heaps + q * cap;

                for (j = 0; j < nb; j++) {
                    score = scores[q * nb + j];
                    d = metric == MV_METRIC_L2
                        ? query_norms[q] - 2.0f * score + base_norms[j]
                        : metric == MV_METRIC_IP ? -score : 1.0f - score;
                    if (isnan(d)) {
                        d = INFINITY;
                    } else if (d < 0.0f && metric == MV_METRIC_L2) {
                        d = 0.0f;        /* rounding below the true 0 */
                    }

                    hit.dist = d;
                    hit.id = (uint32_t) (b0 + j);
                    heap_offer(heap, &heap_sizes[q], cap, hit);
                }
            }
        }

        for (q = 0; q < nqb; q++) {
            heap = heaps + q * cap;
            heap_sort(heap, heap_sizes[q]);

            for (r = 0; r < k; r++) {
                if (r < heap_sizes[q]) {
                    ids[(q0 + q) * k + r] = heap[r].id;
                    if (dist != NULL) {
                        dist[(q0 + q) * k + r] = heap[r].dist;
                    }
                } else {
                    ids[(q0 + q) * k + r] = UINT32_MAX;
                    if (dist != NULL) {
                        dist[(q0 + q) * k + r] = INFINITY;
                    }
                }
            }
        }
    }

    rc = MV_OK;

done:
    free(heaps);
    free(heap_sizes);
    free(query_norms);
    free(base_norms);
    free(scores);

    return rc;
}
