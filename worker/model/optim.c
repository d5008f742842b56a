/*
 * optim.c -- sparse per-row optimisers (see optim.h).
 *
 * Design.  All state of a row sits in one stretch of o->state (adagrad: G;
 * adam: the clock in MVW_ADAM_CLOCK_FLOATS floats, then m, then v), so one
 * step touches two memory areas, the weights and the row's state, and the
 * clock that adam reads first brings the start of m into the cache with
 * it (a separate clock array cost one more cache miss per row, a sixth of
 * adam's time at 10k rows).  The clock is stored through a
 * mvw_adam_clock_t pointer into the float array: the array comes from
 * malloc, so the bytes take the type they are written with, and they are
 * only ever accessed as the clock.  Capacity grows by doubling; a reserve
 * that fails leaves the optimiser usable with the rows it had.
 *
 * Kernels.  A step is a single pass over the row.  The sgd kernel is plain
 * C in blocks of 8 with a fixed inner trip count, which GCC vectorises at
 * -O2.  The adagrad and adam kernels need a square root per element, and a
 * compiler may not vectorise sqrtf while errno is live (-fmath-errno is the
 * default), so they are written with intrinsics: AVX, eight floats at a
 * time, when the CPU has it (chosen at creation the way vec.h chooses its
 * kernels, so MILVUSO_KERNELS=scalar turns it off), then SSE2 (part of the
 * x86-64 base: no dispatch), four at a time, then a scalar loop for the
 * tail and for other architectures.  All three perform the same IEEE
 * operations in the same order (no FMA; contraction is off in ISO C mode),
 * so they agree bit for bit.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "model/optim.h"
#include "vec.h"

#define OPTIM_MIN_CAP  16

_Static_assert(sizeof(mvw_adam_clock_t)
               <= MVW_ADAM_CLOCK_FLOATS * sizeof(float),
               "the clock fits its reserved floats");
_Static_assert(MVW_ADAM_CLOCK_FLOATS % 2 == 0,
               "an even row width keeps the clock's doubles aligned");

static const char *const optim_names[MVW_OPTIM_N_KINDS] = {
    [MVW_OPTIM_SGD] = "sgd",
    [MVW_OPTIM_ADAGRAD] = "adagrad",
    [MVW_OPTIM_ADAM] = "adam",
};


/* See optim.h. */
int
mvw_optim_from_name(const char *name, mvw_optim_kind_t *kind)
{
    int i;

    if (name == NULL) {
        return MV_ERR;
    }

    for (i = 0; i < MVW_OPTIM_N_KINDS; i++) {
        if (strcmp(name, optim_names[i]) == 0) {
            *kind = (mvw_optim_kind_t) i;
            return MV_OK;
        }
    }

    return MV_ERR;
}


/* See optim.h. */
const char *
mvw_optim_name(mvw_optim_kind_t kind)
{
    if ((int) kind < 0 || kind >= MVW_OPTIM_N_KINDS) {
        return "unknown";
    }

    return optim_names[kind];
}


/* See optim.h. */
void
mvw_optim_params_default(mvw_optim_kind_t kind, mvw_optim_params_t *p)
{
    p->lr = kind == MVW_OPTIM_SGD ? 0.05f
            : kind == MVW_OPTIM_ADAGRAD ? 0.1f : 0.01f;
    p->l2 = 0.0f;
    p->beta1 = 0.9f;
    p->beta2 = 0.999f;
    p->eps = 1e-8f;
}


/* See optim.h. */
mvw_optim_t *
mvw_optim_new(mvw_optim_kind_t kind, size_t dim, const mvw_optim_params_t *p,
    mv_err_t *err)
{
    mvw_optim_t *o;

    if ((int) kind < 0 || kind >= MVW_OPTIM_N_KINDS) {
        mv_err_set(err, "unknown optimiser %d", (int) kind);
        return NULL;
    }
    if (dim == 0 || dim > SIZE_MAX / 4 / sizeof(float)) {
        mv_err_set(err, "%s: invalid dim %zu", optim_names[kind], dim);
        return NULL;
    }
    if (!(p->lr > 0.0f && isfinite(p->lr))) {
        mv_err_set(err, "%s: lr %g must be a positive number",
                   optim_names[kind], (double) p->lr);
        return NULL;
    }
    if (!(p->l2 >= 0.0f && isfinite(p->l2))) {
        mv_err_set(err, "%s: l2 %g must be a number >= 0",
                   optim_names[kind], (double) p->l2);
        return NULL;
    }
    if (kind == MVW_OPTIM_ADAM
        && !(p->beta1 >= 0.0f && p->beta1 < 1.0f
             && p->beta2 >= 0.0f && p->beta2 < 1.0f))
    {
        mv_err_set(err, "adam: beta1 %g and beta2 %g must be in [0, 1)",
                   (double) p->beta1, (double) p->beta2);
        return NULL;
    }
    if (kind != MVW_OPTIM_SGD && !(p->eps > 0.0f && isfinite(p->eps))) {
        mv_err_set(err, "%s: eps %g must be a positive number",
                   optim_names[kind], (double) p->eps);
        return NULL;
    }

    o = calloc(1, sizeof(*o));
    if (o == NULL) {
        mv_err_set(err, "%s: out of memory", optim_names[kind]);
        return NULL;
    }

    o->kind = kind;
    o->lr = p->lr;
    o->l2 = p->l2;
    o->beta1 = p->beta1;
    o->beta2 = p->beta2;
    o->eps = p->eps;
    o->dim = dim;
    o->width = kind == MVW_OPTIM_SGD ? 0
               : kind == MVW_OPTIM_ADAGRAD ? dim
               : MVW_ADAM_CLOCK_FLOATS + 2 * dim;
    /* The library's AVX2 and AVX-512 kernel sets imply AVX. */
    o->avx = strcmp(mv_kernels_best()->name, "scalar") != 0;

    return o;
}


/* See optim.h. */
void
mvw_optim_free(mvw_optim_t *o)
{
    if (o == NULL) {
        return;
    }

    free(o->state);
    free(o);
}


/* See optim.h. */
int
mvw_optim_reserve(mvw_optim_t *o, size_t rows, mv_err_t *err)
{
    float            *state;
    size_t            cap, r;

    if (rows <= o->rows) {
        return MV_OK;
    }

    if (rows > o->cap && o->width > 0) {
        cap = o->cap < OPTIM_MIN_CAP ? OPTIM_MIN_CAP : o->cap;
        while (cap < rows && cap <= SIZE_MAX / 2) {
            cap *= 2;
        }
        if (cap < rows || cap > SIZE_MAX / sizeof(float) / o->width) {
            return mv_err_set(err, "%s: %zu rows is too many",
                              optim_names[o->kind], rows);
        }

        state = realloc(o->state, cap * o->width * sizeof(float));
        if (state == NULL) {
            return mv_err_set(err, "%s: out of memory for %zu rows",
                              optim_names[o->kind], rows);
        }
        o->state = state;
        o->cap = cap;
    }

    for (r = o->rows; r < rows; r++) {
        mvw_optim_reset_row(o, r);
    }
    o->rows = rows;

    return MV_OK;
}


/* See optim.h. */
void
mvw_optim_reset_row(mvw_optim_t *o, size_t row)
{
    mvw_adam_clock_t *c;

    assert(row < o->cap || o->width == 0);

    if (o->width > 0) {
        memset(o->state + row * o->width, 0, o->width * sizeof(float));
    }
    if (o->kind == MVW_OPTIM_ADAM) {
        c = mvw_optim_row_clock(o, row);
        c->beta1_t = 1.0;
        c->beta2_t = 1.0;
        c->t = 0;
    }
}


/* See optim.h. */
void
mvw_optim_prefetch(const mvw_optim_t *o, size_t row)
{
#if defined(__GNUC__)
    const char *p;
    size_t      off;

    if (o->width == 0) {
        return;                         /* sgd: no state */
    }

    p = (const char *) (o->state + row * o->width);
    for (off = 0; off < o->width * sizeof(float); off += 64) {
        __builtin_prefetch(p + off, 1, 3);
    }
#else
    (void) o;
    (void) row;
#endif
}


/* See optim.h. */
float *
mvw_optim_row_state(const mvw_optim_t *o, size_t row)
{
    if (o->width == 0) {
        return NULL;
    }

    return o->state + row * o->width
           + (o->kind == MVW_OPTIM_ADAM ? MVW_ADAM_CLOCK_FLOATS : 0);
}


/* See optim.h. */
mvw_adam_clock_t *
mvw_optim_row_clock(const mvw_optim_t *o, size_t row)
{
    if (o->kind != MVW_OPTIM_ADAM) {
        return NULL;
    }

    return (mvw_adam_clock_t *) (void *) (o->state + row * o->width);
}


static void
optim_sgd(float *restrict w, const float *restrict g, size_t dim, float lr,
    float l2)
{
    size_t i = 0, k;

    for (; i + 8 <= dim; i += 8) {
        for (k = 0; k < 8; k++) {
            w[i + k] -= lr * (g[i + k] + l2 * w[i + k]);
        }
    }
    for (; i < dim; i++) {
        w[i] -= lr * (g[i] + l2 * w[i]);
    }
}


/*
 * AdaGrad on elements first .. dim - 1 of the row (the AVX kernel below
 * does the elements before first, when it runs).
 */
static void
optim_adagrad(float *restrict w, float *restrict acc, const float *restrict g,
    size_t first, size_t dim, float lr, float l2, float eps)
{
    size_t i = first;
    float  gi;

#if defined(__SSE2__)
    const __m128 vlr = _mm_set1_ps(lr), vl2 = _mm_set1_ps(l2);
    const __m128 veps = _mm_set1_ps(eps);
    __m128       vw, vg, va;

    for (; i + 4 <= dim; i += 4) {
        vw = _mm_loadu_ps(w + i);
        vg = _mm_add_ps(_mm_loadu_ps(g + i), _mm_mul_ps(vl2, vw));
        va = _mm_add_ps(_mm_loadu_ps(acc + i), _mm_mul_ps(vg, vg));
        _mm_storeu_ps(acc + i, va);
        vw = _mm_sub_ps(vw, _mm_div_ps(_mm_mul_ps(vlr, vg),
                                       _mm_add_ps(_mm_sqrt_ps(va), veps)));
        _mm_storeu_ps(w + i, vw);
    }
#endif

    for (; i < dim; i++) {
        gi = g[i] + l2 * w[i];
        acc[i] += gi * gi;
        w[i] -= lr * gi / (sqrtf(acc[i]) + eps);
    }
}


/*
 * Adam on elements first .. dim - 1.  m and v are the row's moments; c1 =
 * lr / (1 - beta1^t) and c2 = 1 / (1 - beta2^t) fold the bias correction
 * into two factors: w -= c1 * m / (sqrt(c2 * v) + eps).
 */
static void
optim_adam(float *restrict w, float *restrict m, float *restrict v,
    const float *restrict g, size_t first, size_t dim, float l2, float b1,
    float b2, float c1, float c2, float eps)
{
    size_t i = first;
    float  gi;

#if defined(__SSE2__)
    const __m128 vl2 = _mm_set1_ps(l2), veps = _mm_set1_ps(eps);
    const __m128 vb1 = _mm_set1_ps(b1), vb1c = _mm_set1_ps(1.0f - b1);
    const __m128 vb2 = _mm_set1_ps(b2), vb2c = _mm_set1_ps(1.0f - b2);
    const __m128 vc1 = _mm_set1_ps(c1), vc2 = _mm_set1_ps(c2);
    __m128       vw, vg, vm, vv;

    for (; i + 4 <= dim; i += 4) {
        vw = _mm_loadu_ps(w + i);
        vg = _mm_add_ps(_mm_loadu_ps(g + i), _mm_mul_ps(vl2, vw));
        vm = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)),
                        _mm_mul_ps(vb1c, vg));
        vv = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)),
                        _mm_mul_ps(vb2c, _mm_mul_ps(vg, vg)));
        _mm_storeu_ps(m + i, vm);
        _mm_storeu_ps(v + i, vv);
        vw = _mm_sub_ps(vw, _mm_div_ps(_mm_mul_ps(vc1, vm),
                                       _mm_add_ps(_mm_sqrt_ps(
                                                      _mm_mul_ps(vc2, vv)),
                                                  veps)));
        _mm_storeu_ps(w + i, vw);
    }
#endif

    for (; i < dim; i++) {
        gi = g[i] + l2 * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * (gi * gi);
        w[i] -= c1 * m[i] / (sqrtf(c2 * v[i]) + eps);
    }
}


#if defined(__x86_64__)

/* The same two kernels, eight floats at a time, on whole blocks of 8;
   they return how many elements they did. */

__attribute__((target("avx")))
static size_t
optim_adagrad_avx(float *restrict w, float *restrict acc,
    const float *restrict g, size_t dim, float lr, float l2, float eps)
{
    const __m256 vlr = _mm256_set1_ps(lr), vl2 = _mm256_set1_ps(l2);
    const __m256 veps = _mm256_set1_ps(eps);
    __m256       vw, vg, va;
    size_t       i;

    for (i = 0; i + 8 <= dim; i += 8) {
        vw = _mm256_loadu_ps(w + i);
        vg = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_mul_ps(vl2, vw));
        va = _mm256_add_ps(_mm256_loadu_ps(acc + i), _mm256_mul_ps(vg, vg));
        _mm256_storeu_ps(acc + i, va);
        vw = _mm256_sub_ps(vw,
                           _mm256_div_ps(_mm256_mul_ps(vlr, vg),
                                         _mm256_add_ps(_mm256_sqrt_ps(va),
                                                       veps)));
        _mm256_storeu_ps(w + i, vw);
    }

    return i;
}


__attribute__((target("avx")))
static size_t
optim_adam_avx(float *restrict w, float *restrict m, float *restrict v,
    const float *restrict g, size_t dim, float l2, float b1, float b2,
    float c1, float c2, float eps)
{
    const __m256 vl2 = _mm256_set1_ps(l2), veps = _mm256_set1_ps(eps);
    const __m256 vb1 = _mm256_set1_ps(b1), vb1c = _mm256_set1_ps(1.0f - b1);
    const __m256 vb2 = _mm256_set1_ps(b2), vb2c = _mm256_set1_ps(1.0f - b2);
    const __m256 vc1 = _mm256_set1_ps(c1), vc2 = _mm256_set1_ps(c2);
    __m256       vw, vg, vm, vv;
    size_t       i;

    for (i = 0; i + 8 <= dim; i += 8) {
        vw = _mm256_loadu_ps(w + i);
        vg = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_mul_ps(vl2, vw));
        vm = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)),
                           _mm256_mul_ps(vb1c, vg));
        vv = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)),
                           _mm256_mul_ps(vb2c, _mm256_mul_ps(vg, vg)));
        _mm256_storeu_ps(m + i, vm);
        _mm256_storeu_ps(v + i, vv);
        vw = _mm256_sub_ps(vw,
                           _mm256_div_ps(_mm256_mul_ps(vc1, vm),
                                         _mm256_add_ps(_mm256_sqrt_ps(
                                             _mm256_mul_ps(vc2, vv)), veps)));
        _mm256_storeu_ps(w + i, vw);
    }

    return i;
}

#endif /* __x86_64__ */


/* See optim.h. */
void
mvw_optim_step(mvw_optim_t *o, size_t row, float *w, const float *g)
{
    mvw_adam_clock_t *c;
    float            *s;
    float             c1, c2;
    size_t            first;

    assert(row < o->rows);

    switch (o->kind) {

    case MVW_OPTIM_SGD:
        optim_sgd(w, g, o->dim, o->lr, o->l2);
        break;

    case MVW_OPTIM_ADAGRAD:
        s = o->state + row * o->width;
        first = 0;
#if defined(__x86_64__)
        if (o->avx) {
            first = optim_adagrad_avx(w, s, g, o->dim, o->lr, o->l2, o->eps);
        }
#endif
        optim_adagrad(w, s, g, first, o->dim, o->lr, o->l2, o->eps);
        break;

    case MVW_OPTIM_ADAM:
        c = mvw_optim_row_clock(o, row);
        if (c->t < UINT32_MAX) {
            c->t++;
        }
        c->beta1_t *= o->beta1;
        c->beta2_t *= o->beta2;
        c1 = (float) ((double) o->lr / (1.0 - c->beta1_t));
        c2 = (float) (1.0 / (1.0 - c->beta2_t));
        s = o->state + row * o->width + MVW_ADAM_CLOCK_FLOATS;
        first = 0;
#if defined(__x86_64__)
        if (o->avx) {
            first = optim_adam_avx(w, s, s + o->dim, g, o->dim, o->l2,
                                   o->beta1, o->beta2, c1, c2, o->eps);
        }
#endif
        optim_adam(w, s, s + o->dim, g, first, o->dim, o->l2, o->beta1,
                   o->beta2, c1, c2, o->eps);
        break;

    default:
        break;
    }
}
