/*
 * vec.h -- vector kernels: dot product, squared L2, normalisation, and the
 * asymmetric 8-bit (SQ8) kernels the HNSW traversal uses.
 *
 * Several implementations exist (portable scalar C, AVX2+FMA, AVX-512F); the
 * best one the running CPU supports is chosen at run time through cpuid, so
 * one binary runs on every x86-64 machine (and the scalar code everywhere
 * else).  A kernel set is an immutable table of function pointers: callers
 * fetch it once (mv_kernels_best) and keep the pointer; there is no global
 * mutable state.  The environment variable MILVUSO_KERNELS=scalar|avx2|avx512
 * forces a set (tests use it to cover the fallback on any machine).
 *
 * Metrics.  MV_METRIC_COSINE: vectors are stored L2-normalised and the
 * distance is 1 - dot(q, x).  MV_METRIC_L2: the distance is the squared
 * Euclidean distance.  MV_METRIC_IP (maximum inner product): vectors are
 * stored as given, norms included (they carry information, e.g. an item's
 * popularity in a matrix factorisation), and the distance is -dot(q, x).
 * Every "distance" in libmilvuso is lower-is-better; only L2's and cosine's
 * are >= 0 (cosine's up to rounding), an inner product's may be negative.
 *
 * SQ8.  A vector x is coded per dimension as c[j] = round((x[j] - min[j]) /
 * scale[j]) clamped to 0..255 (scale[j] = (max[j] - min[j]) / 255, or 1 where
 * max == min).  The asymmetric kernels compare a float query against a code
 * without decoding it:
 *   dot_u8(qw, c)        = sum_j qw[j] * c[j]
 *   l2sq_u8(qs, w, c)    = sum_j w[j] * (qs[j] - c[j])^2
 * with qw[j] = q[j] * scale[j] (plus the constant sum_j q[j] * min[j]) for
 * the dot product and qs[j] = (q[j] - min[j]) / scale[j], w[j] = scale[j]^2
 * for L2.  mv_sq8_* below prepare those query-side arrays.  The dot form
 * estimates dot(q, decode(c)) for any ranges, so cosine (1 - estimate) and
 * inner product (-estimate) share it; only the quantiser's ranges differ
 * (cosine's stay within [-1, 1], an inner product's are the data's).
 */
#ifndef MV_VEC_H
#define MV_VEC_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mv_metric {
    MV_METRIC_COSINE = 1,
    MV_METRIC_L2 = 2,
    MV_METRIC_IP = 3
} mv_metric_t;

/* 1 for a metric this library knows (the values above), 0 otherwise. */
static inline int
mv_metric_valid(int metric)
{
    return metric == MV_METRIC_COSINE || metric == MV_METRIC_L2
           || metric == MV_METRIC_IP;
}

/* "cosine", "l2", "ip", or "unknown". */
static inline const char *
mv_metric_name(int metric)
{
    switch (metric) {
    case MV_METRIC_COSINE:
        return "cosine";
    case MV_METRIC_L2:
        return "l2";
    case MV_METRIC_IP:
        return "ip";
    default:
        return "unknown";
    }
}

/*
 * The similarity score a distance stands for, higher is better: 1 - d for
 * cosine (the cosine similarity), -d for L2 (minus the squared distance)
 * and for the inner product (the dot product itself).
 */
static inline float
mv_metric_score(mv_metric_t metric, float distance)
{
    return metric == MV_METRIC_COSINE ? 1.0f - distance : -distance;
}

typedef struct mv_kernels {
    const char *name;            /* "scalar", "avx2", "avx512" */

    /* sum_j a[j] * b[j] */
    float (*dot)(const float *a, const float *b, size_t dim);
    /* sum_j (a[j] - b[j])^2 */
    float (*l2sq)(const float *a, const float *b, size_t dim);
    /* sum_j qw[j] * code[j] */
    float (*dot_u8)(const float *qw, const uint8_t *code, size_t dim);
    /* sum_j w[j] * (qs[j] - code[j])^2 */
    float (*l2sq_u8)(const float *qs, const float *w, const uint8_t *code,
                     size_t dim);
} mv_kernels_t;

/*
 * Returns the fastest kernel set this CPU supports, honouring
 * MILVUSO_KERNELS when it names a supported set.  Never NULL.
 */
const mv_kernels_t *mv_kernels_best(void);

/*
 * Returns the named set ("scalar", "avx2", "avx512") or NULL when the name is
 * NULL, unknown, or the CPU lacks the instructions.  "scalar" is always
 * available.  An empty MILVUSO_KERNELS is ignored.
 */
const mv_kernels_t *mv_kernels_by_name(const char *name);

/*
 * Scales v to unit L2 norm in place and returns its previous norm.  A zero
 * vector, or one whose norm overflows float, is left unchanged and 0 is
 * returned.
 */
float mv_normalize(float *v, size_t dim);

/* Returns 1 when all dim values are finite numbers, 0 otherwise. */
int mv_all_finite(const float *v, size_t dim);

/*
 * Distance of the metric, computed exactly with kernels k.  Finite vectors
 * of huge values can make an inner product's float sum overflow to +Inf and
 * -Inf at once, i.e. NaN: that distance is INFINITY (ranked last, as in
 * mv_exact_topk) so that it cannot upset a sorted list.  (Cosine works on
 * unit vectors and L2 sums non-negative terms: neither makes NaN from
 * finite input.)
 */
static inline float
mv_distance(const mv_kernels_t *k, mv_metric_t metric, const float *a,
    const float *b, size_t dim)
{
    float  d;

    switch (metric) {
    case MV_METRIC_L2:
        return k->l2sq(a, b, dim);
    case MV_METRIC_IP:
        d = -k->dot(a, b, dim);
        return isnan(d) ? INFINITY : d;
    default:
        return 1.0f - k->dot(a, b, dim);
    }
}

/*
 * SQ8 quantiser parameters from n vectors (row-major n x dim): per-dimension
 * min and scale as described above.  n may be 0 (then min = 0, scale = 1).
 * A range too narrow for a positive scale also gets scale 1; non-finite
 * values are ignored.
 */
void mv_sq8_train(const float *vectors, size_t n, size_t dim, float *min,
    float *scale);

/* Codes one vector with the quantiser (values outside clamp to 0 / 255). */
void mv_sq8_encode(const float *v, size_t dim, const float *min,
    const float *scale, uint8_t *code);

/*
 * Prepares a query for dot_u8: qw[j] = q[j] * scale[j]; returns the constant
 * sum_j q[j] * min[j], so that dot(q, x) ~= constant + dot_u8(qw, code(x)).
 */
float mv_sq8_prepare_dot(const float *q, size_t dim, const float *min,
    const float *scale, float *qw);

/*
 * Prepares a query for l2sq_u8: qs[j] = (q[j] - min[j]) / scale[j] and
 * w[j] = scale[j]^2, so that l2sq(q, x) ~= l2sq_u8(qs, w, code(x)).
 */
void mv_sq8_prepare_l2(const float *q, size_t dim, const float *min,
    const float *scale, float *qs, float *w);

#ifdef __cplusplus
}
#endif

#endif /* MV_VEC_H */
