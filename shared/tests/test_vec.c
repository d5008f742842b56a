/*
 * test_vec.c -- vector kernels: every kernel set this CPU supports against a
 * double-precision reference for dims 1..130 (all tail lengths, unaligned
 * too), kernel selection by name and through MILVUSO_KERNELS, SQ8 error
 * bounds, normalisation and the finiteness check.
 *
 * Inputs are allocated with exactly dim elements so AddressSanitizer builds
 * catch any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vec.h"

#define MAX_DIM  130

static const char *const kernel_names[] = { "scalar", "avx2", "avx512" };
#define KERNEL_NAMES  (sizeof(kernel_names) / sizeof(kernel_names[0]))


/* A tiny local generator so this test depends on nothing else. */
static uint64_t
next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;

    return *state;
}


/* Uniform in [lo, hi). */
static float
random_float(uint64_t *state, float lo, float hi)
{
    double u = (double) (next_random(state) >> 11) * 0x1.0p-53;

    return (float) (lo + (hi - lo) * u);
}


static float *
random_floats(uint64_t *state, size_t dim, float lo, float hi)
{
    float *v = malloc((dim > 0 ? dim : 1) * sizeof(float));
    size_t j;

    assert_non_null(v);
    for (j = 0; j < dim; j++) {
        v[j] = random_float(state, lo, hi);
    }

    return v;
}


static uint8_t *
random_codes(uint64_t *state, size_t dim)
{
    uint8_t *c = malloc(dim > 0 ? dim : 1);
    size_t   j;

    assert_non_null(c);
    for (j = 0; j < dim; j++) {
        c[j] = (uint8_t) (next_random(state) >> 56);
    }

    return c;
}


/* |got - want| within a relative tolerance of the magnitude of the terms. */
static void
assert_close(double got, double want, double magnitude)
{
    double tolerance = 1e-5 * magnitude + 1e-6;

    if (fabs(got - want) > tolerance) {
        fail_msg("got %.9g, want %.9g (tolerance %.3g)", got, want,
                 tolerance);
    }
}


/* Checks the four kernels of k on one random case of length dim. */
static void
check_kernels_at(const mv_kernels_t *k, size_t dim, uint64_t *state)
{
    float   *a = random_floats(state, dim, -2.0f, 2.0f);
    float   *b = random_floats(state, dim, -2.0f, 2.0f);
    float   *w = random_floats(state, dim, 0.0f, 0.01f);
    float   *qs = random_floats(state, dim, -10.0f, 265.0f);
    uint8_t *code = random_codes(state, dim);
    double   dot = 0, dot_mag = 0, l2 = 0, dot_u8 = 0, dot_u8_mag = 0;
    double   l2_u8 = 0, d;
    size_t   j;

    for (j = 0; j < dim; j++) {
        dot += (double) a[j] * b[j];
        dot_mag += fabs((double) a[j] * b[j]);
        d = (double) a[j] - b[j];
        l2 += d * d;
        dot_u8 += (double) a[j] * code[j];
        dot_u8_mag += fabs((double) a[j] * code[j]);
        d = (double) qs[j] - code[j];
        l2_u8 += (double) w[j] * d * d;
    }

    assert_close(k->dot(a, b, dim), dot, dot_mag);
    assert_close(k->l2sq(a, b, dim), l2, l2);
    assert_close(k->dot_u8(a, code, dim), dot_u8, dot_u8_mag);
    assert_close(k->l2sq_u8(qs, w, code, dim), l2_u8, l2_u8);

    free(a);
    free(b);
    free(w);
    free(qs);
    free(code);
}


static void
test_kernels_match_reference(void **state)
{
    const mv_kernels_t *k;
    uint64_t            rng = 0x1234567;
    size_t              i, dim, checked = 0;

    (void) state;

    for (i = 0; i < KERNEL_NAMES; i++) {
        k = mv_kernels_by_name(kernel_names[i]);
        if (k == NULL) {
            continue;
        }
        assert_string_equal(k->name, kernel_names[i]);
        for (dim = 0; dim <= MAX_DIM; dim++) {
            check_kernels_at(k, dim, &rng);
        }
        checked++;
    }

    assert_true(checked >= 1);
}


static void
test_kernels_unaligned(void **state)
{
    const mv_kernels_t *k;
    uint64_t            rng = 77;
    float              *a = random_floats(&rng, MAX_DIM + 1, -1.0f, 1.0f);
    float              *b = random_floats(&rng, MAX_DIM + 3, -1.0f, 1.0f);
    uint8_t            *code = random_codes(&rng, MAX_DIM + 5);
    double              dot, dot_u8, mag, mag_u8;
    size_t              i, dim, j;

    (void) state;

    for (i = 0; i < KERNEL_NAMES; i++) {
        k = mv_kernels_by_name(kernel_names[i]);
        if (k == NULL) {
            continue;
        }
        for (dim = 1; dim <= MAX_DIM; dim++) {
            dot = dot_u8 = mag = mag_u8 = 0;
            for (j = 0; j < dim; j++) {
                dot += (double) a[1 + j] * b[3 + j];
                mag += fabs((double) a[1 + j] * b[3 + j]);
                dot_u8 += (double) a[1 + j] * code[5 + j];
                mag_u8 += fabs((double) a[1 + j] * code[5 + j]);
            }
            assert_close(k->dot(a + 1, b + 3, dim), dot, mag);
            assert_close(k->dot_u8(a + 1, code + 5, dim), dot_u8, mag_u8);
        }
    }

    free(a);
    free(b);
    free(code);
}


static void
test_kernels_by_name(void **state)
{
    (void) state;

    assert_non_null(mv_kernels_by_name("scalar"));
    assert_null(mv_kernels_by_name("bogus"));
    assert_null(mv_kernels_by_name(""));
    assert_null(mv_kernels_by_name("AVX2"));
    assert_null(mv_kernels_by_name("avx"));
    assert_null(mv_kernels_by_name(NULL));

#if defined(__x86_64__)
    __builtin_cpu_init();
    assert_true((mv_kernels_by_name("avx2") != NULL)
                == (__builtin_cpu_supports("avx2")
                    && __builtin_cpu_supports("fma")));
    assert_true((mv_kernels_by_name("avx512") != NULL)
                == (__builtin_cpu_supports("avx512f") != 0));
#else
    assert_null(mv_kernels_by_name("avx2"));
    assert_null(mv_kernels_by_name("avx512"));
#endif
}


static void
test_kernels_env(void **state)
{
    const mv_kernels_t *fastest;
    const char         *saved_env = getenv("MILVUSO_KERNELS");
    char               *saved = saved_env ? strdup(saved_env) : NULL;
    size_t              i;

    (void) state;

    unsetenv("MILVUSO_KERNELS");
    fastest = mv_kernels_best();
    assert_non_null(fastest);
    for (i = KERNEL_NAMES; i-- > 0;) {
        if (mv_kernels_by_name(kernel_names[i]) != NULL) {
            assert_ptr_equal(fastest, mv_kernels_by_name(kernel_names[i]));
            break;
        }
    }

    for (i = 0; i < KERNEL_NAMES; i++) {
        setenv("MILVUSO_KERNELS", kernel_names[i], 1);
        if (mv_kernels_by_name(kernel_names[i]) != NULL) {
            assert_string_equal(mv_kernels_best()->name, kernel_names[i]);
        } else {
            assert_ptr_equal(mv_kernels_best(), fastest);
        }
    }

    setenv("MILVUSO_KERNELS", "nonsense", 1);
    assert_ptr_equal(mv_kernels_best(), fastest);
    setenv("MILVUSO_KERNELS", "", 1);
    assert_ptr_equal(mv_kernels_best(), fastest);

    if (saved != NULL) {
        setenv("MILVUSO_KERNELS", saved, 1);
        free(saved);
    } else {
        unsetenv("MILVUSO_KERNELS");
    }
}


static void
test_sq8_round_trip_and_approximations(void **state)
{
    enum { N = 200, DIM = 67 };
    const mv_kernels_t *k = mv_kernels_best();
    uint64_t            rng = 4242;
    float              *data = random_floats(&rng, N * DIM, -3.0f, 5.0f);
    float              *q = random_floats(&rng, DIM, -3.0f, 3.0f);
    float               min[DIM], scale[DIM], qw[DIM], qs[DIM], w[DIM];
    float               constant, decoded;
    uint8_t             code[DIM];
    double              dot_bound, l2_bound, diff;
    size_t              i, j;

    (void) state;

    mv_sq8_train(data, N, DIM, min, scale);
    constant = mv_sq8_prepare_dot(q, DIM, min, scale, qw);
    mv_sq8_prepare_l2(q, DIM, min, scale, qs, w);

    for (i = 0; i < N; i++) {
        const float *x = data + i * DIM;

        mv_sq8_encode(x, DIM, min, scale, code);
        dot_bound = 1e-4;
        l2_bound = 1e-4;
        for (j = 0; j < DIM; j++) {
            decoded = min[j] + (float) code[j] * scale[j];
            diff = fabs((double) decoded - x[j]);
            assert_true(diff <= scale[j] * 0.5 * (1 + 1e-5) + 1e-6);
            dot_bound += fabs((double) q[j]) * scale[j] * 0.5;
            l2_bound += scale[j] * 0.5
                        * (2 * fabs((double) q[j] - x[j]) + scale[j] * 0.5);
        }

        assert_true(fabs(constant + k->dot_u8(qw, code, DIM)
                         - k->dot(q, x, DIM)) <= dot_bound);
        assert_true(fabs(k->l2sq_u8(qs, w, code, DIM)
                         - k->l2sq(q, x, DIM)) <= l2_bound);
    }

    free(data);
    free(q);
}


static void
test_sq8_constant_dimension(void **state)
{
    enum { N = 10, DIM = 3 };
    float   data[N * DIM], min[DIM], scale[DIM], qw[DIM], qs[DIM], w[DIM];
    float   q[DIM] = { 1.5f, -2.0f, 0.25f };
    float   constant;
    uint8_t code[DIM];
    size_t  i;

    (void) state;

    for (i = 0; i < N; i++) {
        data[i * DIM] = 3.5f;                        /* constant */
        data[i * DIM + 1] = (float) i;               /* 0..9 */
        data[i * DIM + 2] = -1.0f;                   /* constant */
    }

    mv_sq8_train(data, N, DIM, min, scale);
    assert_true(min[0] == 3.5f && scale[0] == 1.0f);
    assert_true(min[2] == -1.0f && scale[2] == 1.0f);
    assert_true(min[1] == 0.0f);
    assert_true(fabsf(scale[1] - 9.0f / 255.0f) < 1e-7f);

    mv_sq8_encode(data + 4 * DIM, DIM, min, scale, code);
    assert_int_equal(code[0], 0);
    assert_int_equal(code[2], 0);

    /* With only constant dimensions involved, the approximations are exact. */
    q[1] = 0.0f;
    constant = mv_sq8_prepare_dot(q, DIM, min, scale, qw);
    mv_sq8_prepare_l2(q, DIM, min, scale, qs, w);
    mv_sq8_encode(data, DIM, min, scale, code);              /* row 0 */
    assert_true(constant + mv_kernels_best()->dot_u8(qw, code, DIM)
                == 1.5f * 3.5f + 0.25f * -1.0f);
    assert_true(fabsf(mv_kernels_best()->l2sq_u8(qs, w, code, DIM)
                      - mv_kernels_best()->l2sq(q, data, DIM)) < 1e-6f);
}


static void
test_sq8_empty_training_and_clamping(void **state)
{
    float   min[4], scale[4];
    float   lo[2] = { 0.0f, 0.0f }, hi[2] = { 1.0f, 1.0f };
    float   outside[2] = { -5.0f, 7.0f };
    uint8_t code[2];
    size_t  j;

    (void) state;

    mv_sq8_train(NULL, 0, 4, min, scale);
    for (j = 0; j < 4; j++) {
        assert_true(min[j] == 0.0f && scale[j] == 1.0f);
    }

    mv_sq8_train((float[]) { 0.0f, 0.0f, 1.0f, 1.0f }, 2, 2, min, scale);
    mv_sq8_encode(lo, 2, min, scale, code);
    assert_int_equal(code[0], 0);
    mv_sq8_encode(hi, 2, min, scale, code);
    assert_int_equal(code[0], 255);
    mv_sq8_encode(outside, 2, min, scale, code);
    assert_int_equal(code[0], 0);
    assert_int_equal(code[1], 255);
}


static void
test_normalize(void **state)
{
    float  v[2] = { 3.0f, 4.0f };
    float  zero[5] = { 0 };
    float  bad[3] = { 1.0f, NAN, 2.0f };
    float  tiny[2] = { 1e-40f, 0.0f };
    float  big[2] = { 3e38f, 3e38f };
    size_t j;

    (void) state;

    assert_true(fabsf(mv_normalize(v, 2) - 5.0f) < 1e-6f);
    assert_true(fabsf(v[0] - 0.6f) < 1e-7f && fabsf(v[1] - 0.8f) < 1e-7f);

    assert_true(mv_normalize(zero, 5) == 0.0f);
    for (j = 0; j < 5; j++) {
        assert_true(zero[j] == 0.0f);
    }

    assert_true(mv_normalize(bad, 3) == 0.0f);
    assert_true(bad[0] == 1.0f && isnan(bad[1]) && bad[2] == 2.0f);

    assert_true(mv_normalize(tiny, 2) > 0.0f);
    assert_true(tiny[0] == 1.0f && tiny[1] == 0.0f);

    /* The norm (4.2e38) is beyond float: left unchanged. */
    assert_true(mv_normalize(big, 2) == 0.0f);
    assert_true(big[0] == 3e38f);

    assert_true(mv_normalize(v, 0) == 0.0f);
}


static void
test_all_finite(void **state)
{
    float  v[9] = { 0.0f, -1.0f, FLT_MAX, -FLT_MAX, 1e-45f, 2.0f, 3.0f,
                    4.0f, 5.0f };
    float  specials[3] = { NAN, INFINITY, -INFINITY };
    float  saved;
    size_t i, pos;

    (void) state;

    assert_int_equal(mv_all_finite(v, 9), 1);
    assert_int_equal(mv_all_finite(v, 0), 1);

    for (i = 0; i < 3; i++) {
        for (pos = 0; pos < 9; pos++) {
            saved = v[pos];
            v[pos] = specials[i];
            assert_int_equal(mv_all_finite(v, 9), 0);
            assert_int_equal(mv_all_finite(v, pos), 1);
            v[pos] = saved;
        }
    }
}


static void
test_distance_helper(void **state)
{
    float a[3] = { 1.0f, 0.0f, 0.0f }, b[3] = { 0.0f, 1.0f, 0.0f };
    const mv_kernels_t *k = mv_kernels_best();

    (void) state;

    assert_true(mv_distance(k, MV_METRIC_L2, a, b, 3) == 2.0f);
    assert_true(mv_distance(k, MV_METRIC_COSINE, a, b, 3) == 1.0f);
    assert_true(mv_distance(k, MV_METRIC_COSINE, a, a, 3) == 0.0f);
    assert_true(mv_distance(k, MV_METRIC_IP, a, b, 3) == 0.0f);
    assert_true(mv_distance(k, MV_METRIC_IP, a, a, 3) == -1.0f);
}


/* The inner product: vectors as given, distance -dot, which may be < 0. */
static void
test_distance_inner_product(void **state)
{
    float  q[4] = { 1.0f, 2.0f, 0.0f, -1.0f };
    float  x[4] = { 3.0f, 0.5f, 7.0f, 2.0f };      /* q.x = 2 */
    float  y[4] = { -3.0f, 0.0f, 0.0f, 0.0f };     /* q.y = -3 */
    float  big[4] = { 3e38f, -3e38f, 0.0f, 0.0f };
    float  huge_q[4] = { 10.0f, 10.0f, 0.0f, 0.0f };
    const mv_kernels_t *k = mv_kernels_best();
    const char *names[] = { "scalar", "avx2", "avx512" };
    size_t i;

    (void) state;

    for (i = 0; i < 3; i++) {
        k = mv_kernels_by_name(names[i]);
        if (k == NULL) {
            continue;
        }
        assert_true(mv_distance(k, MV_METRIC_IP, q, x, 4) == -2.0f);
        assert_true(mv_distance(k, MV_METRIC_IP, q, y, 4) == 3.0f);
        /* a twice longer vector is twice as good: norms count */
        assert_true(mv_distance(k, MV_METRIC_IP, q, q, 4) == -6.0f);
        /* +Inf + -Inf in the float sum: ranked last, not NaN */
        assert_true(isinf(mv_distance(k, MV_METRIC_IP, huge_q, big, 4))
                    && mv_distance(k, MV_METRIC_IP, huge_q, big, 4) > 0);
    }

    assert_true(mv_metric_valid(MV_METRIC_COSINE));
    assert_true(mv_metric_valid(MV_METRIC_L2));
    assert_true(mv_metric_valid(MV_METRIC_IP));
    assert_false(mv_metric_valid(0));
    assert_false(mv_metric_valid(4));
    assert_false(mv_metric_valid(-1));
    assert_string_equal(mv_metric_name(MV_METRIC_COSINE), "cosine");
    assert_string_equal(mv_metric_name(MV_METRIC_L2), "l2");
    assert_string_equal(mv_metric_name(MV_METRIC_IP), "ip");
    assert_string_equal(mv_metric_name(4), "unknown");
    assert_true(mv_metric_score(MV_METRIC_COSINE, 0.25f) == 0.75f);
    assert_true(mv_metric_score(MV_METRIC_L2, 2.0f) == -2.0f);
    assert_true(mv_metric_score(MV_METRIC_IP, -2.0f) == 2.0f);
    assert_true(mv_metric_score(MV_METRIC_IP, 3.0f) == -3.0f);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_match_reference),
        cmocka_unit_test(test_kernels_unaligned),
        cmocka_unit_test(test_kernels_by_name),
        cmocka_unit_test(test_kernels_env),
        cmocka_unit_test(test_sq8_round_trip_and_approximations),
        cmocka_unit_test(test_sq8_constant_dimension),
        cmocka_unit_test(test_sq8_empty_training_and_clamping),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_all_finite),
        cmocka_unit_test(test_distance_helper),
        cmocka_unit_test(test_distance_inner_product),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
