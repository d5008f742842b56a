/*
 * vec.c -- vector kernels (see vec.h).
 *
 * Design.  Three immutable kernel sets are defined here as static const
 * tables: "scalar" (portable C, always present), "avx2" (AVX2 + FMA) and
 * "avx512" (AVX-512F).  The SIMD code lives in functions carrying
 * __attribute__((target(...))), so this file compiles without any -m flag
 * (nginx builds it with its own CFLAGS) and the CPU is probed at run time
 * with __builtin_cpu_supports; on other architectures only the scalar set
 * exists.  There is no mutable state: selection re-reads cpuid bits and the
 * environment each time it is called, and callers keep the pointer.
 *
 * Kernel shape.  Every SIMD kernel keeps four independent accumulators in
 * the main loop (so FMA latency is hidden), then a one-register loop, then
 * a tail handled with masked loads (floats) and a zero-padded copy (bytes),
 * so no kernel ever reads past dim elements.  Horizontal sums happen once,
 * at the end.  The SQ8 kernels widen 8 (AVX2) or 16 (AVX-512) code bytes to
 * 32-bit integers, convert them to floats and feed them to FMA.
 *
 * The scalar helpers (normalisation, finiteness, SQ8 training, encoding and
 * query preparation) are not hot; they favour exactness (double
 * accumulation) over speed.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif


/* ---- portable scalar kernels ---------------------------------------- */

static float
scalar_dot(const float *a, const float *b, size_t dim)
{
    float  s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    size_t i = 0;

    for (; i + 4 <= dim; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < dim; i++) {
        s0 += a[i] * b[i];
    }

    return (s0 + s1) + (s2 + s3);
}


static float
scalar_l2sq(const float *a, const float *b, size_t dim)
{
    float  s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    float  d0, d1, d2, d3;
    size_t i = 0;

    for (; i + 4 <= dim; i += 4) {
        d0 = a[i] - b[i];
        d1 = a[i + 1] - b[i + 1];
        d2 = a[i + 2] - b[i + 2];
        d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < dim; i++) {
        d0 = a[i] - b[i];
        s0 += d0 * d0;
    }

    return (s0 + s1) + (s2 + s3);
}


static float
scalar_dot_u8(const float *qw, const uint8_t *code, size_t dim)
{
    float  s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    size_t i = 0;

    for (; i + 4 <= dim; i += 4) {
        s0 += qw[i] * (float) code[i];
        s1 += qw[i + 1] * (float) code[i + 1];
        s2 += qw[i + 2] * (float) code[i + 2];
        s3 += qw[i + 3] * (float) code[i + 3];
    }
    for (; i < dim; i++) {
        s0 += qw[i] * (float) code[i];
    }

    return (s0 + s1) + (s2 + s3);
}


static float
scalar_l2sq_u8(const float *qs, const float *w, const uint8_t *code,
    size_t dim)
{
    float  s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    float  d0, d1, d2, d3;
    size_t i = 0;

    for (; i + 4 <= dim; i += 4) {
        d0 = qs[i] - (float) code[i];
        d1 = qs[i + 1] - (float) code[i + 1];
        d2 = qs[i + 2] - (float) code[i + 2];
        d3 = qs[i + 3] - (float) code[i + 3];
        s0 += w[i] * d0 * d0;
        s1 += w[i + 1] * d1 * d1;
        s2 += w[i + 2] * d2 * d2;
        s3 += w[i + 3] * d3 * d3;
    }
    for (; i < dim; i++) {
        d0 = qs[i] - (float) code[i];
        s0 += w[i] * d0 * d0;
    }

    return (s0 + s1) + (s2 + s3);
}


static const mv_kernels_t kernels_scalar = {
    "scalar", scalar_dot, scalar_l2sq, scalar_dot_u8, scalar_l2sq_u8
};


#if defined(__x86_64__)

/* ---- AVX2 + FMA kernels ------------------------------------------------ */

/*
 * Lane masks for _mm256_maskload_ps: row r enables the first r lanes
 * (r = 0..7 is used).
 */
static const int32_t avx2_tail_masks[8][8] = {
    {  0,  0,  0,  0,  0,  0,  0,  0 },
    { -1,  0,  0,  0,  0,  0,  0,  0 },
    { -1, -1,  0,  0,  0,  0,  0,  0 },
    { -1, -1, -1,  0,  0,  0,  0,  0 },
    { -1, -1, -1, -1,  0,  0,  0,  0 },
    { -1, -1, -1, -1, -1,  0,  0,  0 },
    { -1, -1, -1, -1, -1, -1,  0,  0 },
    { -1, -1, -1, -1, -1, -1, -1,  0 },
};


__attribute__((target("avx2,fma")))
static inline float
avx2_hsum(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);

    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));

    return _mm_cvtss_f32(lo);
}


/* Loads the first n (< 8) floats of p, zeroing the other lanes. */
__attribute__((target("avx2,fma")))
static inline __m256
avx2_load_tail(const float *p, size_t n)
{
    __m256i mask = _mm256_loadu_si256((const __m256i *) avx2_tail_masks[n]);

    return _mm256_maskload_ps(p, mask);
}


/* Widens 8 code bytes to 8 floats. */
__attribute__((target("avx2,fma")))
static inline __m256
avx2_load_u8x8(const uint8_t *p)
{
    __m128i bytes = _mm_loadl_epi64((const __m128i *) p);

    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
}


/* Widens the first n (< 8) code bytes to floats, the other lanes 0. */
__attribute__((target("avx2,fma")))
static inline __m256
avx2_load_u8_tail(const uint8_t *p, size_t n)
{
    uint8_t padded[8] = { 0 };

    memcpy(padded, p, n);

    return avx2_load_u8x8(padded);
}


__attribute__((target("avx2,fma")))
static float
avx2_dot(const float *a, const float *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;

    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i),
                             _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                             _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16),
                             _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24),
                             _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= dim; i += 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i),
                             _mm256_loadu_ps(b + i), s0);
    }
    if (i < dim) {
        s1 = _mm256_fmadd_ps(avx2_load_tail(a + i, dim - i),
                             avx2_load_tail(b + i, dim - i), s1);
    }

    return avx2_hsum(_mm256_add_ps(_mm256_add_ps(s0, s1),
                                   _mm256_add_ps(s2, s3)));
}


__attribute__((target("avx2,fma")))
static float
avx2_l2sq(const float *a, const float *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    __m256 d0, d1, d2, d3;
    size_t i = 0;

    for (; i + 32 <= dim; i += 32) {
        d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8),
                           _mm256_loadu_ps(b + i + 8));
        d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16),
                           _mm256_loadu_ps(b + i + 16));
        d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24),
                           _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= dim; i += 8) {
        d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
    }
    if (i < dim) {
        d1 = _mm256_sub_ps(avx2_load_tail(a + i, dim - i),
                           avx2_load_tail(b + i, dim - i));
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }

    return avx2_hsum(_mm256_add_ps(_mm256_add_ps(s0, s1),
                                   _mm256_add_ps(s2, s3)));
}


__attribute__((target("avx2,fma")))
static float
avx2_dot_u8(const float *qw, const uint8_t *code, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;

    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(qw + i),
                             avx2_load_u8x8(code + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(qw + i + 8),
                             avx2_load_u8x8(code + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(qw + i + 16),
                             avx2_load_u8x8(code + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(qw + i + 24),
                             avx2_load_u8x8(code + i + 24), s3);
    }
    for (; i + 8 <= dim; i += 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(qw + i),
                             avx2_load_u8x8(code + i), s0);
    }
    if (i < dim) {
        s1 = _mm256_fmadd_ps(avx2_load_tail(qw + i, dim - i),
                             avx2_load_u8_tail(code + i, dim - i), s1);
    }

    return avx2_hsum(_mm256_add_ps(_mm256_add_ps(s0, s1),
                                   _mm256_add_ps(s2, s3)));
}


__attribute__((target("avx2,fma")))
static float
avx2_l2sq_u8(const float *qs, const float *w, const uint8_t *code,
    size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    __m256 d0, d1, d2, d3;
    size_t i = 0;

    for (; i + 32 <= dim; i += 32) {
        d0 = _mm256_sub_ps(_mm256_loadu_ps(qs + i), avx2_load_u8x8(code + i));
        d1 = _mm256_sub_ps(_mm256_loadu_ps(qs + i + 8),
                           avx2_load_u8x8(code + i + 8));
        d2 = _mm256_sub_ps(_mm256_loadu_ps(qs + i + 16),
                           avx2_load_u8x8(code + i + 16));
        d3 = _mm256_sub_ps(_mm256_loadu_ps(qs + i + 24),
                           avx2_load_u8x8(code + i + 24));
        s0 = _mm256_fmadd_ps(_mm256_mul_ps(d0, _mm256_loadu_ps(w + i)),
                             d0, s0);
        s1 = _mm256_fmadd_ps(_mm256_mul_ps(d1, _mm256_loadu_ps(w + i + 8)),
                             d1, s1);
        s2 = _mm256_fmadd_ps(_mm256_mul_ps(d2, _mm256_loadu_ps(w + i + 16)),
                             d2, s2);
        s3 = _mm256_fmadd_ps(_mm256_mul_ps(d3, _mm256_loadu_ps(w + i + 24)),
                             d3, s3);
    }
    for (; i + 8 <= dim; i += 8) {
        d0 = _mm256_sub_ps(_mm256_loadu_ps(qs + i), avx2_load_u8x8(code + i));
        s0 = _mm256_fmadd_ps(_mm256_mul_ps(d0, _mm256_loadu_ps(w + i)),
                             d0, s0);
    }
    if (i < dim) {
        /* Masked-off lanes give d = 0 and w = 0: they add nothing. */
        d1 = _mm256_sub_ps(avx2_load_tail(qs + i, dim - i),
                           avx2_load_u8_tail(code + i, dim - i));
        s1 = _mm256_fmadd_ps(_mm256_mul_ps(d1,
                                           avx2_load_tail(w + i, dim - i)),
                             d1, s1);
    }

    return avx2_hsum(_mm256_add_ps(_mm256_add_ps(s0, s1),
                                   _mm256_add_ps(s2, s3)));
}


static const mv_kernels_t kernels_avx2 = {
    "avx2", avx2_dot, avx2_l2sq, avx2_dot_u8, avx2_l2sq_u8
};


/* ---- AVX-512F kernels -------------------------------------------------- */

/* Mask enabling the first n (< 16) lanes. */
static inline __mmask16
avx512_tail_mask(size_t n)
{
    return (__mmask16) ((1u << n) - 1u);
}


/* Widens 16 code bytes to 16 floats. */
__attribute__((target("avx512f")))
static inline __m512
avx512_load_u8x16(const uint8_t *p)
{
    __m128i bytes = _mm_loadu_si128((const __m128i *) p);

    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
}


/*
 * Widens the first n (< 16) code bytes to floats, the other lanes 0.
 * (A masked byte load would need AVX-512BW; a padded copy does not.)
 */
__attribute__((target("avx512f")))
static inline __m512
avx512_load_u8_tail(const uint8_t *p, size_t n)
{
    uint8_t padded[16] = { 0 };

    memcpy(padded, p, n);

    return avx512_load_u8x16(padded);
}


__attribute__((target("avx512f")))
static float
avx512_dot(const float *a, const float *b, size_t dim)
{
    __m512    s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512    s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    __mmask16 m;
    size_t    i = 0;

    for (; i + 64 <= dim; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i),
                             _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
                             _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32),
                             _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48),
                             _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i),
                             _mm512_loadu_ps(b + i), s0);
    }
    if (i < dim) {
        m = avx512_tail_mask(dim - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
                             _mm512_maskz_loadu_ps(m, b + i), s1);
    }

    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
                                              _mm512_add_ps(s2, s3)));
}


__attribute__((target("avx512f")))
static float
avx512_l2sq(const float *a, const float *b, size_t dim)
{
    __m512    s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512    s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    __m512    d0, d1, d2, d3;
    __mmask16 m;
    size_t    i = 0;

    for (; i + 64 <= dim; i += 64) {
        d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16),
                           _mm512_loadu_ps(b + i + 16));
        d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32),
                           _mm512_loadu_ps(b + i + 32));
        d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48),
                           _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= dim; i += 16) {
        d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
    }
    if (i < dim) {
        m = avx512_tail_mask(dim - i);
        d1 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
                           _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }

    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
                                              _mm512_add_ps(s2, s3)));
}


__attribute__((target("avx512f")))
static float
avx512_dot_u8(const float *qw, const uint8_t *code, size_t dim)
{
    __m512    s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512    s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    __mmask16 m;
    size_t    i = 0;

    for (; i + 64 <= dim; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(qw + i),
                             avx512_load_u8x16(code + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(qw + i + 16),
                             avx512_load_u8x16(code + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(qw + i + 32),
                             avx512_load_u8x16(code + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(qw + i + 48),
                             avx512_load_u8x16(code + i + 48), s3);
    }
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(qw + i),
                             avx512_load_u8x16(code + i), s0);
    }
    if (i < dim) {
        m = avx512_tail_mask(dim - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, qw + i),
                             avx512_load_u8_tail(code + i, dim - i), s1);
    }

    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
                                              _mm512_add_ps(s2, s3)));
}


__attribute__((target("avx512f")))
static float
avx512_l2sq_u8(const float *qs, const float *w, const uint8_t *code,
    size_t dim)
{
    __m512    s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512    s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    __m512    d0, d1, d2, d3;
    __mmask16 m;
    size_t    i = 0;

    for (; i + 64 <= dim; i += 64) {
        d0 = _mm512_sub_ps(_mm512_loadu_ps(qs + i),
                           avx512_load_u8x16(code + i));
        d1 = _mm512_sub_ps(_mm512_loadu_ps(qs + i + 16),
                           avx512_load_u8x16(code + i + 16));
        d2 = _mm512_sub_ps(_mm512_loadu_ps(qs + i + 32),
                           avx512_load_u8x16(code + i + 32));
        d3 = _mm512_sub_ps(_mm512_loadu_ps(qs + i + 48),
                           avx512_load_u8x16(code + i + 48));
        s0 = _mm512_fmadd_ps(_mm512_mul_ps(d0, _mm512_loadu_ps(w + i)),
                             d0, s0);
        s1 = _mm512_fmadd_ps(_mm512_mul_ps(d1, _mm512_loadu_ps(w + i + 16)),
                             d1, s1);
        s2 = _mm512_fmadd_ps(_mm512_mul_ps(d2, _mm512_loadu_ps(w + i + 32)),
                             d2, s2);
        s3 = _mm512_fmadd_ps(_mm512_mul_ps(d3, _mm512_loadu_ps(w + i + 48)),
                             d3, s3);
    }
    for (; i + 16 <= dim; i += 16) {
        d0 = _mm512_sub_ps(_mm512_loadu_ps(qs + i),
                           avx512_load_u8x16(code + i));
        s0 = _mm512_fmadd_ps(_mm512_mul_ps(d0, _mm512_loadu_ps(w + i)),
                             d0, s0);
    }
    if (i < dim) {
        /* Masked-off lanes give d = 0 and w = 0: they add nothing. */
        m = avx512_tail_mask(dim - i);
        d1 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, qs + i),
                           avx512_load_u8_tail(code + i, dim - i));
        s1 = _mm512_fmadd_ps(_mm512_mul_ps(d1,
                                           _mm512_maskz_loadu_ps(m, w + i)),
                             d1, s1);
    }

    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
                                              _mm512_add_ps(s2, s3)));
}


static const mv_kernels_t kernels_avx512 = {
    "avx512", avx512_dot, avx512_l2sq, avx512_dot_u8, avx512_l2sq_u8
};

#endif /* __x86_64__ */


/* ---- selection ---------------------------------------------------------- */

/* 1 when the running CPU (and OS) supports kernel set k. */
static int
kernels_supported(const mv_kernels_t *k)
{
    if (k == &kernels_scalar) {
        return 1;
    }

#if defined(__x86_64__)
    __builtin_cpu_init();

    if (k == &kernels_avx2) {
        return __builtin_cpu_supports("avx2")
               && __builtin_cpu_supports("fma");
    }
    if (k == &kernels_avx512) {
        return __builtin_cpu_supports("avx512f");
    }
#endif

    return 0;
}


/* Every kernel set compiled in, fastest first. */
static const mv_kernels_t *const kernels_all[] = {
#if defined(__x86_64__)
    &kernels_avx512,
    &kernels_avx2,
#endif
    &kernels_scalar,
};

#define KERNELS_COUNT  (sizeof(kernels_all) / sizeof(kernels_all[0]))


/* See vec.h. */
const mv_kernels_t *
mv_kernels_by_name(const char *name)
{
    size_t i;

    if (name == NULL) {
        return NULL;
    }

    for (i = 0; i < KERNELS_COUNT; i++) {
        if (strcmp(kernels_all[i]->name, name) == 0) {
            return kernels_supported(kernels_all[i]) ? kernels_all[i] : NULL;
        }
    }

    return NULL;
}


/* See vec.h. */
const mv_kernels_t *
mv_kernels_best(void)
{
    const mv_kernels_t *forced;
    const char         *name;
    size_t              i;

    name = getenv("MILVUSO_KERNELS");
    if (name != NULL && name[0] != '\0') {
        forced = mv_kernels_by_name(name);
        if (forced != NULL) {
            return forced;
        }
    }

    for (i = 0; i < KERNELS_COUNT; i++) {
        if (kernels_supported(kernels_all[i])) {
            return kernels_all[i];
        }
    }

    return &kernels_scalar;
}


/* ---- helpers ------------------------------------------------------------ */

/* See vec.h. */
float
mv_normalize(float *v, size_t dim)
{
    double sum = 0.0, norm, inv;
    size_t i;

    /* Double accumulation: no overflow or underflow for any float input. */
    for (i = 0; i < dim; i++) {
        sum += (double) v[i] * (double) v[i];
    }

    norm = sqrt(sum);
    if (!(norm > 0.0) || !(norm <= (double) FLT_MAX)) {
        /* Zero, NaN, or a norm no float can hold: leave v as it is. */
        return 0.0f;
    }

    inv = 1.0 / norm;
    for (i = 0; i < dim; i++) {
        v[i] = (float) ((double) v[i] * inv);
    }

    return (float) norm;
}


/* See vec.h. */
int
mv_all_finite(const float *v, size_t dim)
{
    uint32_t bits, any_special = 0;
    size_t   i;

    /* An exponent of all ones means Inf or NaN. */
    for (i = 0; i < dim; i++) {
        memcpy(&bits, &v[i], sizeof(bits));
        any_special |= (uint32_t) ((bits & 0x7f800000u) == 0x7f800000u);
    }

    return any_special == 0;
}


/* See vec.h. */
void
mv_sq8_train(const float *vectors, size_t n, size_t dim, float *min,
    float *scale)
{
    float  lo, hi, x, step;
    size_t i, j;

    for (j = 0; j < dim; j++) {
        lo = INFINITY;
        hi = -INFINITY;

        for (i = 0; i < n; i++) {
            x = vectors[i * dim + j];
            if (isfinite(x)) {           /* non-finite values are ignored */
                lo = x < lo ? x : lo;
                hi = x > hi ? x : hi;
            }
        }

        if (!(lo <= hi)) {               /* n == 0 or no finite value */
            min[j] = 0.0f;
            scale[j] = 1.0f;
            continue;
        }

        /* In double: hi - lo cannot overflow there. */
        step = (float) (((double) hi - (double) lo) / 255.0);
        min[j] = lo;
        scale[j] = step > 0.0f ? step : 1.0f;   /* max == min, or underflow */
    }
}


/* See vec.h. */
void
mv_sq8_encode(const float *v, size_t dim, const float *min,
    const float *scale, uint8_t *code)
{
    double t;
    size_t j;

    for (j = 0; j < dim; j++) {
        t = ((double) v[j] - (double) min[j]) / (double) scale[j];

        if (!(t > 0.0)) {                /* below range, or NaN */
            code[j] = 0;
        } else if (t >= 255.0) {
            code[j] = 255;
        } else {
            code[j] = (uint8_t) (t + 0.5);
        }
    }
}


/* See vec.h. */
float
mv_sq8_prepare_dot(const float *q, size_t dim, const float *min,
    const float *scale, float *qw)
{
    double constant = 0.0;
    size_t j;

    for (j = 0; j < dim; j++) {
        qw[j] = q[j] * scale[j];
        constant += (double) q[j] * (double) min[j];
    }

    return (float) constant;
}


/* See vec.h. */
void
mv_sq8_prepare_l2(const float *q, size_t dim, const float *min,
    const float *scale, float *qs, float *w)
{
    size_t j;

    for (j = 0; j < dim; j++) {
        qs[j] = (float) (((double) q[j] - (double) min[j])
                         / (double) scale[j]);
        w[j] = scale[j] * scale[j];
    }
}
