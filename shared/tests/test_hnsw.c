/*
 * test_hnsw.c -- the HNSW index against exact search: recall (cosine, L2
 * and the inner product), SQ8 distance estimates, filters, updates, delete
 * marks, copies, and the edges of the API.
 *
 * Ground truth comes from mv_exact_topk over the index's own (normalised)
 * vectors, so the comparison is exact whatever the metric.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exact.h"
#include "hnsw.h"
#include "hnsw_internal.h"
#include "synth.h"

#define N        4000
#define DIM      32
#define NQ       100
#define K        10
#define CLUSTERS 40


typedef struct fixture {
    float              *base;
    float              *queries;
    uint32_t           *cluster;
    const mv_kernels_t *kern;
} fixture_t;


/* An index of the first n rows of base. */
static mv_hnsw_t *
build_from(const float *base, mv_metric_t metric, int sq8, size_t n)
{
    mv_hnsw_params_t  p;
    mv_hnsw_t        *h;
    mv_err_t          err;

    memset(&p, 0, sizeof(p));
    p.dim = DIM;
    p.metric = metric;
    p.M = 12;
    p.ef_construction = 100;
    p.seed = 7;
    p.sq8 = sq8;

    h = mv_hnsw_new(&p, n, &err);
    assert_non_null(h);
    assert_int_equal(mv_hnsw_add_batch(h, base, n, &err), MV_OK);
    assert_int_equal(mv_hnsw_size(h), n);

    return h;
}


static mv_hnsw_t *
build(const fixture_t *f, mv_metric_t metric, int sq8, size_t n)
{
    return build_from(f->base, metric, sq8, n);
}


/* Queries as the index would hold them (normalised for cosine). */
static float *
prepared_queries(const fixture_t *f, mv_metric_t metric)
{
    float   *q;
    size_t   i;

    q = malloc(NQ * DIM * sizeof(float));
    assert_non_null(q);
    memcpy(q, f->queries, NQ * DIM * sizeof(float));

    if (metric == MV_METRIC_COSINE) {
        for (i = 0; i < NQ; i++) {
            mv_normalize(q + i * DIM, DIM);
        }
    }

    return q;
}


/* Mean recall@K of the index's answers against exact search. */
static double
recall(const fixture_t *f, mv_hnsw_t *h, mv_metric_t metric, size_t ef)
{
    mv_hnsw_graph_t     g;
    mv_hnsw_scratch_t  *s;
    mv_hit_t            hits[K];
    uint32_t           *truth;
    float              *q;
    size_t              i, j, m, found;
    mv_err_t            err;

    mv_hnsw_graph(h, &g);
    q = prepared_queries(f, metric);
    truth = malloc(NQ * K * sizeof(uint32_t));
    assert_non_null(truth);
    assert_int_equal(mv_exact_topk(g.vectors, g.n, DIM, metric, q, NQ, K,
                                   truth, NULL, &err), MV_OK);

    s = mv_hnsw_scratch_new(g.n, DIM, 512);
    assert_non_null(s);
    found = 0;

    for (i = 0; i < NQ; i++) {
        m = mv_hnsw_search(&g, f->kern, s, q + i * DIM, K, ef, NULL, hits);
        assert_int_equal(m, K);

        for (j = 1; j < m; j++) {
            assert_true(hits[j - 1].distance <= hits[j].distance);
        }

        for (j = 0; j < m; j++) {
            /* distances are exact, whatever the walk measured */
            assert_float_equal(hits[j].distance,
                mv_distance(f->kern, metric, q + i * DIM,
                            g.vectors + (size_t) hits[j].id * DIM, DIM),
                1e-5);

            for (size_t t = 0; t < K; t++) {
                if (truth[i * K + t] == hits[j].id) {
                    found++;
                    break;
                }
            }
        }
    }

    mv_hnsw_scratch_free(s);
    free(truth);
    free(q);

    return (double) found / (NQ * K);
}


static int
setup(void **state)
{
    fixture_t  *f;
    mv_rng_t    rng;
    size_t      i;

    f = calloc(1, sizeof(fixture_t));
    f->base = malloc(N * DIM * sizeof(float));
    f->queries = malloc(NQ * DIM * sizeof(float));
    f->cluster = malloc(N * sizeof(uint32_t));
    f->kern = mv_kernels_best();

    mv_synth_clustered(f->base, N, DIM, CLUSTERS, 0.6f, 11, f->cluster);
    mv_synth_clustered(f->queries, NQ, DIM, CLUSTERS, 0.6f, 11, NULL);

    /* Queries near, not on, the data. */
    mv_rng_seed(&rng, 5);
    for (i = 0; i < NQ * DIM; i++) {
        f->queries[i] += 0.3f * (float) mv_rng_normal(&rng);
    }

    *state = f;

    return 0;
}


static int
teardown(void **state)
{
    fixture_t  *f = *state;

    free(f->base);
    free(f->queries);
    free(f->cluster);
    free(f);

    return 0;
}


static void
test_recall_cosine_sq8(void **state)
{
    fixture_t  *f = *state;
    mv_hnsw_t  *h = build(f, MV_METRIC_COSINE, 1, N);

    assert_true(recall(f, h, MV_METRIC_COSINE, 64) >= 0.95);
    mv_hnsw_free(h);
}


static void
test_recall_cosine_float(void **state)
{
    fixture_t  *f = *state;
    mv_hnsw_t  *h = build(f, MV_METRIC_COSINE, 0, N);

    assert_true(recall(f, h, MV_METRIC_COSINE, 64) >= 0.95);
    mv_hnsw_free(h);
}


static void
test_recall_l2_sq8(void **state)
{
    fixture_t  *f = *state;
    mv_hnsw_t  *h = build(f, MV_METRIC_L2, 1, N);

    assert_true(recall(f, h, MV_METRIC_L2, 64) >= 0.95);
    mv_hnsw_free(h);
}


static void
test_recall_grows_with_ef(void **state)
{
    fixture_t  *f = *state;
    mv_hnsw_t  *h = build(f, MV_METRIC_COSINE, 1, N);
    double      low, high;

    low = recall(f, h, MV_METRIC_COSINE, 10);
    high = recall(f, h, MV_METRIC_COSINE, 200);
    assert_true(high >= low);
    assert_true(high >= 0.99);
    mv_hnsw_free(h);
}


/* ---- the inner product ---------------------------------------------------- */

/*
 * Vectors with norms spread over 0.25x .. 4x (log-uniform), as a matrix
 * factorisation's item norms spread with popularity: under the inner
 * product a long vector beats a shorter one of the same direction.
 * clustered: the fixture's vectors so scaled; else i.i.d. N(0, 1) ones (no
 * structure for the graph to lean on).
 */
static float *
ip_base(const fixture_t *f, int clustered)
{
    float     *b;
    mv_rng_t   rng;
    float      scale;
    size_t     i, j;

    b = malloc(N * DIM * sizeof(float));
    assert_non_null(b);
    mv_rng_seed(&rng, 19);

    for (i = 0; i < N; i++) {
        scale = (float) exp2(4.0 * mv_rng_uniform(&rng) - 2.0);
        for (j = 0; j < DIM; j++) {
            b[i * DIM + j] = scale * (clustered
                                      ? f->base[i * DIM + j]
                                      : (float) mv_rng_normal(&rng));
        }
    }

    return b;
}


/* Mean overlap of the exact top K under two metrics (vectors as given). */
static double
truth_overlap(const float *base, const float *q, mv_metric_t a,
    mv_metric_t b)
{
    uint32_t  *ta, *tb;
    float     *nb, *nq;
    size_t     i, j, t, same = 0;
    mv_err_t   err;

    ta = malloc(NQ * K * sizeof(uint32_t));
    tb = malloc(NQ * K * sizeof(uint32_t));
    nb = malloc(N * DIM * sizeof(float));
    nq = malloc(NQ * DIM * sizeof(float));
    assert_true(ta && tb && nb && nq);
    memcpy(nb, base, N * DIM * sizeof(float));
    memcpy(nq, q, NQ * DIM * sizeof(float));

    for (i = 0; b == MV_METRIC_COSINE && i < N; i++) {
        mv_normalize(nb + i * DIM, DIM);
    }
    for (i = 0; b == MV_METRIC_COSINE && i < NQ; i++) {
        mv_normalize(nq + i * DIM, DIM);
    }

    assert_int_equal(mv_exact_topk(base, N, DIM, a, q, NQ, K, ta, NULL,
                                   &err), MV_OK);
    assert_int_equal(mv_exact_topk(nb, N, DIM, b, nq, NQ, K, tb, NULL, &err),
                     MV_OK);

    for (i = 0; i < NQ; i++) {
        for (j = 0; j < K; j++) {
            for (t = 0; t < K; t++) {
                same += ta[i * K + j] == tb[i * K + t];
            }
        }
    }

    free(ta);
    free(tb);
    free(nb);
    free(nq);

    return (double) same / (NQ * K);
}


static void
check_ip_recall(const fixture_t *f, int sq8)
{
    float            *b;
    mv_hnsw_t        *h;
    mv_hnsw_graph_t   g;
    int               clustered;

    for (clustered = 0; clustered < 2; clustered++) {
        b = ip_base(f, clustered);
        h = build_from(b, MV_METRIC_IP, sq8, N);

        /* stored as given, bit for bit: no normalisation */
        mv_hnsw_graph(h, &g);
        assert_int_equal(g.metric, MV_METRIC_IP);
        assert_memory_equal(g.vectors, b, N * DIM * sizeof(float));

        /* the test means something: the inner product's answers are not
           cosine's (0.14..0.17 of them are) */
        assert_true(truth_overlap(b, f->queries, MV_METRIC_IP,
                                  MV_METRIC_COSINE) < 0.5);

        /* measured 0.993..0.999 at ef 64, 1.0 at ef 200 */
        assert_true(recall(f, h, MV_METRIC_IP, 64) >= 0.95);
        assert_true(recall(f, h, MV_METRIC_IP, 200) >= 0.99);

        mv_hnsw_free(h);
        free(b);
    }
}


static void
test_recall_ip_sq8(void **state)
{
    check_ip_recall(*state, 1);
}


static void
test_recall_ip_float(void **state)
{
    check_ip_recall(*state, 0);
}


/* ---- filters ---------------------------------------------------------- */

typedef struct category_filter {
    const uint32_t  *cluster;
    uint32_t         wanted;
    const uint32_t  *excluded;      /* sorted */
    size_t           n_excluded;
} category_filter_t;


static int
allow_category(const void *ctx, uint32_t id)
{
    const category_filter_t  *cf = ctx;
    size_t                    lo = 0, hi = cf->n_excluded, mid;

    if (cf->cluster[id] != cf->wanted) {
        return 0;
    }

    while (lo < hi) {
        mid = (lo + hi) / 2;
        if (cf->excluded[mid] == id) {
            return 0;
        }
        if (cf->excluded[mid] < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    return 1;
}


static int
allow_even(const void *ctx, uint32_t id)
{
    (void) ctx;
    return (id % 2) == 0;
}


/*
 * Checks a filtered answer against exact search restricted to the allowed
 * ids: same length (min(k, allowed)), only allowed ids, and the same
 * distances rank by rank.
 */
static void
check_filtered(const fixture_t *f, const mv_hnsw_graph_t *g,
    mv_hnsw_scratch_t *s, const float *q, const mv_filter_t *filter,
    size_t min_recall_hits)
{
    mv_hit_t   hits[K], truth[K];
    size_t     m, t, j, hitcount;

    m = mv_hnsw_search(g, f->kern, s, q, K, 64, filter, hits);
    t = mv_hnsw_scan(g, f->kern, s, q, NULL, 0, K, filter, truth);

    assert_int_equal(m, t);

    for (j = 0; j < m; j++) {
        assert_true(filter->allow(filter->ctx, hits[j].id));
    }

    hitcount = 0;
    for (j = 0; j < m; j++) {
        for (size_t r = 0; r < t; r++) {
            if (truth[r].id == hits[j].id) {
                hitcount++;
                break;
            }
        }
    }

    assert_true(hitcount >= (min_recall_hits < t ? min_recall_hits : t));
}


/*
 * Category c of the fixture's clusters as a filter, checked against exact
 * search on the first 10 queries both with the member list (members, room
 * for N, receives it: the scan path) and without it (walk + fallback).
 */
static void
check_category(const fixture_t *f, const mv_hnsw_graph_t *g,
    mv_hnsw_scratch_t *s, uint32_t c, uint32_t *members)
{
    category_filter_t  cf;
    mv_filter_t        filter;
    size_t             n_members, i;

    n_members = 0;
    for (i = 0; i < N; i++) {
        if (f->cluster[i] == c) {
            members[n_members++] = (uint32_t) i;
        }
    }

    memset(&cf, 0, sizeof(cf));
    cf.cluster = f->cluster;
    cf.wanted = c;

    memset(&filter, 0, sizeof(filter));
    filter.allow = allow_category;
    filter.ctx = &cf;
    filter.candidates = members;
    filter.n_candidates = n_members;

    for (i = 0; i < 10; i++) {
        check_filtered(f, g, s, f->queries + i * DIM, &filter, K);
    }

    filter.candidates = NULL;
    filter.n_candidates = 0;

    for (i = 0; i < 10; i++) {
        check_filtered(f, g, s, f->queries + i * DIM, &filter, K - 1);
    }
}


static void
test_filter_category_selective(void **state)
{
    fixture_t          *f = *state;
    mv_hnsw_t          *h = build(f, MV_METRIC_COSINE, 1, N);
    mv_hnsw_graph_t     g;
    mv_hnsw_scratch_t  *s;
    uint32_t           *members;
    uint32_t            c;

    mv_hnsw_graph(h, &g);
    s = mv_hnsw_scratch_new(g.n, DIM, 4096);
    members = malloc(N * sizeof(uint32_t));

    for (c = 0; c < 5; c++) {
        check_category(f, &g, s, c, members);
    }

    free(members);
    mv_hnsw_scratch_free(s);
    mv_hnsw_free(h);
}


static void
test_filter_half_and_exclude(void **state)
{
    fixture_t          *f = *state;
    mv_hnsw_t          *h = build(f, MV_METRIC_COSINE, 1, N);
    mv_hnsw_graph_t     g;
    mv_hnsw_scratch_t  *s;
    mv_filter_t         filter;
    category_filter_t   cf;
    mv_hit_t            first[K], again[K];
    uint32_t            excluded[K];
    size_t              i, m, j;

    mv_hnsw_graph(h, &g);
    s = mv_hnsw_scratch_new(g.n, DIM, 4096);

    memset(&filter, 0, sizeof(filter));
    filter.allow = allow_even;

    for (i = 0; i < 20; i++) {
        check_filtered(f, &g, s, f->queries + i * DIM, &filter, K - 1);
    }

    /* Excluding an answer's items gives an answer with none of them. */
    for (i = 0; i < 10; i++) {
        m = mv_hnsw_search(&g, f->kern, s, f->queries + i * DIM, K, 64, NULL,
                           first);
        assert_int_equal(m, K);

        for (j = 0; j < K; j++) {
            excluded[j] = first[j].id;
        }
        for (j = 1; j < K; j++) {           /* insertion sort */
            uint32_t v = excluded[j];
            size_t   p = j;
            while (p > 0 && excluded[p - 1] > v) {
                excluded[p] = excluded[p - 1];
                p--;
            }
            excluded[p] = v;
        }

        memset(&cf, 0, sizeof(cf));
        cf.cluster = f->cluster;
        cf.excluded = excluded;
        cf.n_excluded = K;

        /* any cluster: use the query's nearest item's cluster */
        cf.wanted = f->cluster[first[0].id];
        filter.allow = allow_category;
        filter.ctx = &cf;

        m = mv_hnsw_search(&g, f->kern, s, f->queries + i * DIM, K, 64,
                           &filter, again);
        for (j = 0; j < m; j++) {
            for (size_t e = 0; e < K; e++) {
                assert_int_not_equal(again[j].id, excluded[e]);
            }
        }

        filter.allow = allow_even;
        filter.ctx = NULL;
    }

    mv_hnsw_scratch_free(s);
    mv_hnsw_free(h);
}


static int
allow_none(const void *ctx, uint32_t id)
{
    (void) ctx;
    (void) id;
    return 0;
}


static int
allow_three(const void *ctx, uint32_t id)
{
    (void) ctx;
    return id == 5 || id == 1234 || id == 3999;
}


static void
test_filter_fewer_than_k(void **state)
{
    fixture_t          *f = *state;
    mv_hnsw_t          *h = build(f, MV_METRIC_COSINE, 1, N);
    mv_hnsw_graph_t     g;
    mv_hnsw_scratch_t  *s;
    mv_filter_t         filter;
    mv_hit_t            hits[K];
    uint32_t            none = 0;
    size_t              m, j;

    mv_hnsw_graph(h, &g);
    s = mv_hnsw_scratch_new(g.n, DIM, 512);
    memset(&filter, 0, sizeof(filter));

    filter.allow = allow_three;
    m = mv_hnsw_search(&g, f->kern, s, f->queries, K, 32, &filter, hits);
    assert_int_equal(m, 3);
    for (j = 0; j < m; j++) {
        assert_true(allow_three(NULL, hits[j].id));
    }

    filter.allow = allow_none;
    assert_int_equal(mv_hnsw_search(&g, f->kern, s, f->queries, K, 32,
                                    &filter, hits), 0);

    /* An empty candidate list: nothing can pass. */
    filter.allow = NULL;
    filter.candidates = &none;
    filter.n_candidates = 0;
    assert_int_equal(mv_hnsw_search(&g, f->kern, s, f->queries, K, 32,
                                    &filter, hits), 0);

    mv_hnsw_scratch_free(s);
    mv_hnsw_free(h);
}


/* ---- mutations ---------------------------------------------------------- */

static void
test_deleted_never_returned(void **state)
{
    fixture_t          *f = *state;
    mv_hnsw_t          *h = build(f, MV_METRIC_COSINE, 1, N);
    mv_hnsw_graph_t     g;
    mv_hnsw_scratch_t  *s;
    mv_hit_t            hits[K];
    mv_err_t            err;
    size_t              i, j, m;

    /* Delete 90% of the items: answers still full, none deleted. */
    for (i = 0; i < N; i++) {
        if (i % 10 != 0) {
            assert_int_equal(mv_hnsw_set_deleted(h, (uint32_t) i, 1, &err),
                             MV_OK);
        }
    }

    mv_hnsw_graph(h, &g);
    s = mv_hnsw_scratch_new(g.n, DIM, 512);

    for (i = 0; i < 20; i++) {
        m = mv_hnsw_search(&g, f->kern, s, f->queries + i * DIM, K, 32, NULL,
                           hits);
        assert_int_equal(m, K);
        for (j = 0; j < m; j++) {
            assert_int_equal(hits[j].id % 10, 0);
            assert_true(mv_hnsw_is_deleted(&g, hits[j].id) == 0);
        }
    }

    /* Undelete one and find it by its own vector. */
    assert_int_equal(mv_hnsw_set_deleted(h, 77, 0, &err), MV_OK);
    m = mv_hnsw_search(&g, f->kern, s, g.vectors + 77 * DIM, 1, 32, NULL,
                       hits);
    assert_int_equal(m, 1);
    assert_int_equal(hits[0].id, 77);

    assert_int_equal(mv_hnsw_set_deleted(h, N, 1, &err), MV_ERR);

    mv_hnsw_scratch_free(s);
    mv_hnsw_free(h);
}


static void
test_updates_keep_recall(void **state)
{
    fixture_t  *f = *state;
    mv_hnsw_t  *h = build(f, MV_METRIC_COSINE, 1, N / 2);
    mv_err_t    err;
    mv_rng_t    rng;
    float       v[DIM];
    size_t      i, j, src;

    /* Move a third of the items onto other items' positions (plus noise),
       as a trainer's updates move embeddings across clusters. */
    mv_rng_seed(&rng, 3);
    for (i = 0; i < N / 6; i++) {
        src = N / 2 + (size_t) (mv_rng_next(&rng) % (N / 2));
        for (j = 0; j < DIM; j++) {
            v[j] = f->base[src * DIM + j] + 0.05f * (float) mv_rng_normal(&rng);
        }
        assert_int_equal(mv_hnsw_update(h, (uint32_t) (i * 3), v, &err),
                         MV_OK);
    }

    /* Then append the second half incrementally. */
    for (i = N / 2; i < N; i++) {
        assert_int_equal(mv_hnsw_add(h, f->base + i * DIM, &err),
                         (uint32_t) i);
    }

    assert_true(recall(f, h, MV_METRIC_COSINE, 64) >= 0.95);

    /* A moved item is found at its new place. */
    {
        mv_hnsw_graph_t     g;
        mv_hnsw_scratch_t  *s;
        mv_hit_t            hits[1];

        mv_hnsw_graph(h, &g);
        s = mv_hnsw_scratch_new(g.n, DIM, 64);
        assert_int_equal(mv_hnsw_search(&g, f->kern, s, g.vectors + 300 * DIM,
                                        1, 32, NULL, hits), 1);
        assert_int_equal(hits[0].id, 300);
        mv_hnsw_scratch_free(s);
    }

    assert_int_equal(mv_hnsw_update(h, N, v, &err), MV_ERR);
    v[0] = NAN;
    assert_int_equal(mv_hnsw_update(h, 1, v, &err), MV_ERR);

    mv_hnsw_free(h);
}


static void
test_from_graph_is_a_copy(void **state)
{
    fixture_t          *f = *state;
    mv_hnsw_t          *h = build(f, MV_METRIC_COSINE, 1, N / 4);
    mv_hnsw_t          *copy;
    mv_hnsw_graph_t     g, gc;
    mv_hnsw_params_t    p;
    mv_hnsw_scratch_t  *s;
    mv_hit_t            a[K], b[K];
    mv_err_t            err;
    size_t              i, m;

    mv_hnsw_graph(h, &g);
    memset(&p, 0, sizeof(p));
    p.dim = DIM;
    p.metric = MV_METRIC_COSINE;
    p.M = 12;
    p.ef_construction = 100;
    p.sq8 = 1;

    copy = mv_hnsw_from_graph(&g, &p, &err);
    assert_non_null(copy);
    mv_hnsw_graph(copy, &gc);
    assert_int_equal(gc.n, g.n);
    assert_int_equal(gc.entry, g.entry);
    assert_int_equal(gc.max_level, g.max_level);
    assert_memory_equal(gc.level0, g.level0, g.n * g.level0_stride);

    s = mv_hnsw_scratch_new(g.n, DIM, 64);
    for (i = 0; i < 20; i++) {
        m = mv_hnsw_search(&g, f->kern, s, f->queries + i * DIM, K, 40, NULL,
                           a);
        assert_int_equal(mv_hnsw_search(&gc, f->kern, s, f->queries + i * DIM,
                                        K, 40, NULL, b), m);
        assert_memory_equal(a, b, m * sizeof(mv_hit_t));
    }

    /* The copy is independent: growing it leaves the original alone. */
    assert_int_not_equal(mv_hnsw_add(copy, f->base, &err), UINT32_MAX);
    assert_int_equal(mv_hnsw_size(h), N / 4);

    /* Mismatched parameters are refused. */
    p.M = 8;
    assert_null(mv_hnsw_from_graph(&g, &p, &err));
    assert_non_null(strstr(err.msg, "does not match"));

    mv_hnsw_scratch_free(s);
    mv_hnsw_free(copy);
    mv_hnsw_free(h);
}


/*
 * Share of level-0 links that land within `window` ids of their node: how
 * local the numbering is (a random numbering gives about 2 window / n).
 */
static double
near_link_share(const mv_hnsw_graph_t *g, double window)
{
    const uint32_t  *rec;
    size_t           near = 0, links = 0, i, j;

    for (i = 0; i < g->n; i++) {
        rec = mv_hnsw_level0_record(g, (uint32_t) i);
        for (j = 0; j < (rec[0] & MV_HNSW_COUNT_MASK); j++) {
            near += fabs((double) rec[1 + j] - (double) i) <= window;
            links++;
        }
    }

    return (double) near / (double) links;
}


static void
test_reorder_keeps_answers(void **state)
{
    fixture_t          *f = *state;
    mv_hnsw_t          *h = build(f, MV_METRIC_COSINE, 1, N);
    mv_hnsw_t          *r;
    mv_hnsw_graph_t     g, gr;
    mv_hnsw_params_t    p;
    mv_hnsw_scratch_t  *s;
    mv_hit_t            a[K], b[K];
    uint32_t           *old_of_new, *seen;
    mv_err_t            err;
    size_t              i, j, m;

    mv_hnsw_graph(h, &g);
    memset(&p, 0, sizeof(p));
    p.dim = DIM;
    p.metric = MV_METRIC_COSINE;
    p.M = 12;
    p.ef_construction = 100;
    p.sq8 = 1;
    r = mv_hnsw_from_graph(&g, &p, &err);
    assert_non_null(r);

    /* Some nodes deleted: the marks travel with the nodes. */
    for (i = 0; i < N; i += 7) {
        assert_int_equal(mv_hnsw_set_deleted(h, (uint32_t) i, 1, &err),
                         MV_OK);
        assert_int_equal(mv_hnsw_set_deleted(r, (uint32_t) i, 1, &err),
                         MV_OK);
    }

    old_of_new = malloc(N * sizeof(uint32_t));
    assert_int_equal(mv_hnsw_reorder(r, old_of_new, &err), MV_OK);
    mv_hnsw_graph(r, &gr);
    assert_int_equal(mv_hnsw_graph_validate(&gr, &err), MV_OK);

    /* A permutation. */
    seen = calloc(N, sizeof(uint32_t));
    for (i = 0; i < N; i++) {
        assert_true(old_of_new[i] < N);
        assert_int_equal(seen[old_of_new[i]]++, 0);
        assert_int_equal(mv_hnsw_is_deleted(&gr, (uint32_t) i),
                         mv_hnsw_is_deleted(&g, old_of_new[i]));
        assert_memory_equal(gr.vectors + i * DIM,
                            g.vectors + (size_t) old_of_new[i] * DIM,
                            DIM * sizeof(float));
    }
    assert_int_equal(old_of_new[gr.entry], g.entry);

    /* Neighbours got nearby ids (measured: 0.17 of the links within 256
       ids before, 0.34 after). */
    assert_true(near_link_share(&gr, 256) > 1.5 * near_link_share(&g, 256));

    /* The same graph under other names: the same answers. */
    s = mv_hnsw_scratch_new(N, DIM, 64);
    for (i = 0; i < NQ; i++) {
        m = mv_hnsw_search(&g, f->kern, s, f->queries + i * DIM, K, 40, NULL,
                           a);
        assert_int_equal(mv_hnsw_search(&gr, f->kern, s, f->queries + i * DIM,
                                        K, 40, NULL, b), m);
        for (j = 0; j < m; j++) {
            assert_int_equal(old_of_new[b[j].id], a[j].id);
            assert_float_equal(b[j].distance, a[j].distance, 0);
        }
    }

    /* Still a working index: it grows and finds what it grows by. */
    assert_int_equal(mv_hnsw_add(r, f->queries, &err), N);
    mv_hnsw_graph(r, &gr);
    assert_int_equal(mv_hnsw_scratch_reserve(s, N + 1, DIM, 64), MV_OK);
    assert_int_equal(mv_hnsw_search(&gr, f->kern, s, f->queries, 1, 32, NULL,
                                    a), 1);
    assert_int_equal(a[0].id, N);

    mv_hnsw_scratch_free(s);
    free(seen);
    free(old_of_new);
    mv_hnsw_free(r);
    mv_hnsw_free(h);
}


/*
 * The walk's SQ8 distances estimate the exact ones for every metric: the
 * quantised dot product with its offset (1 for cosine, 0 for the inner
 * product) and the query's constant sum_j q[j] min[j], within the
 * quantisation bound sum_j |q[j]| scale[j] / 2 (L2: its own bound).
 */
static void
test_sq8_distance_estimates(void **state)
{
    static const mv_metric_t  metrics[3] = {
        MV_METRIC_COSINE, MV_METRIC_L2, MV_METRIC_IP
    };
    fixture_t          *f = *state;
    float              *b = ip_base(f, 1);
    float              *q;
    mv_hnsw_t          *h;
    mv_hnsw_graph_t     g;
    mv_hnsw_scratch_t  *s;
    mv_query_t          qc;
    const float        *x;
    double              bound, exact, est;
    size_t              mi, i, j, id;

    for (mi = 0; mi < 3; mi++) {
        h = build_from(b, metrics[mi], 1, 1000);
        mv_hnsw_graph(h, &g);
        q = prepared_queries(f, metrics[mi]);
        s = mv_hnsw_scratch_new(g.n, DIM, 16);
        assert_non_null(s);

        for (i = 0; i < 10; i++) {
            mv_query_prepare(&qc, &g, f->kern, s, q + i * DIM, 1);
            assert_true(qc.codes);

            for (id = 0; id < g.n; id += 7) {
                x = g.vectors + id * DIM;
                exact = mv_distance(f->kern, metrics[mi], q + i * DIM, x,
                                    DIM);
                est = mv_query_distance(&qc, (uint32_t) id);
                bound = 1e-3 * (1.0 + fabs(exact));
                for (j = 0; j < DIM; j++) {
                    bound += metrics[mi] == MV_METRIC_L2
                             ? g.sq_scale[j] * 0.5
                               * (2.0 * fabs((double) q[i * DIM + j] - x[j])
                                  + g.sq_scale[j] * 0.5)
                             : fabs((double) q[i * DIM + j])
                               * g.sq_scale[j] * 0.5;
                }
                assert_true(fabs(est - exact) <= bound);
            }
        }

        mv_hnsw_scratch_free(s);
        free(q);
        mv_hnsw_free(h);
    }

    free(b);
}


/*
 * Filtered search (the walk, its exact-scan completion and the candidate
 * scan), updates and incremental inserts under the inner product: vectors
 * kept as given, answers as good as exact search's.
 */
static void
test_ip_filters_and_updates(void **state)
{
    fixture_t          *f = *state;
    float              *b = ip_base(f, 1);
    mv_hnsw_t          *h = build_from(b, MV_METRIC_IP, 1, N / 2);
    mv_hnsw_graph_t     g;
    mv_hnsw_scratch_t  *s;
    mv_filter_t         filter;
    mv_hit_t            hits[K];
    mv_err_t            err;
    mv_rng_t            rng;
    uint32_t           *members;
    float               v[DIM];
    size_t              i, j, m, src;

    /* Move every third of the first half onto a (longer) copy of a second
       half item, then append the second half one by one. */
    mv_rng_seed(&rng, 23);
    for (i = 0; i < N / 6; i++) {
        src = N / 2 + (size_t) (mv_rng_next(&rng) % (N / 2));
        for (j = 0; j < DIM; j++) {
            v[j] = 1.5f * b[src * DIM + j];
        }
        assert_int_equal(mv_hnsw_update(h, (uint32_t) (i * 3), v, &err),
                         MV_OK);
        memcpy(b + i * 3 * DIM, v, sizeof(v));
    }
    for (i = N / 2; i < N; i++) {
        assert_int_equal(mv_hnsw_add(h, b + i * DIM, &err), (uint32_t) i);
    }

    mv_hnsw_graph(h, &g);
    assert_memory_equal(g.vectors, b, N * DIM * sizeof(float));
    assert_true(recall(f, h, MV_METRIC_IP, 64) >= 0.95);

    s = mv_hnsw_scratch_new(g.n, DIM, 4096);
    members = malloc(N * sizeof(uint32_t));
    assert_true(s && members);

    memset(&filter, 0, sizeof(filter));
    filter.allow = allow_even;
    for (i = 0; i < 20; i++) {
        check_filtered(f, &g, s, f->queries + i * DIM, &filter, K - 1);
    }

    for (i = 0; i < 3; i++) {
        check_category(f, &g, s, (uint32_t) i, members);
    }

    /* Three acceptable nodes: found by the exact completion, best first. */
    memset(&filter, 0, sizeof(filter));
    filter.allow = allow_three;
    m = mv_hnsw_search(&g, f->kern, s, f->queries, K, 32, &filter, hits);
    assert_int_equal(m, 3);
    for (j = 0; j < m; j++) {
        assert_true(allow_three(NULL, hits[j].id));
        assert_true(hits[j].distance
                    == mv_distance(f->kern, MV_METRIC_IP, f->queries,
                                   b + (size_t) hits[j].id * DIM, DIM));
        assert_true(j == 0 || hits[j - 1].distance <= hits[j].distance);
    }

    free(members);
    mv_hnsw_scratch_free(s);
    mv_hnsw_free(h);
    free(b);
}


/*
 * The inner product's distances are mostly negative, a best answer far
 * below -1; a vector whose products with the query overflow (+Inf and -Inf
 * in one sum: NaN) ranks last instead of upsetting the order.  It arrives
 * after the quantiser was trained on sane vectors (its code is clamped), as
 * a wild vector from a trainer would.  Small integers: every other
 * distance is exact.
 */
static void
test_ip_negative_and_overflow(void **state)
{
    fixture_t          *f = *state;
    mv_hnsw_params_t    p;
    mv_hnsw_t          *h;
    mv_hnsw_graph_t     g;
    mv_hnsw_scratch_t  *s;
    mv_hit_t            hits[60], scan[60];
    mv_err_t            err;
    float               vecs[60 * 4], q[4] = { 10.0f, 10.0f, 1.0f, 1.0f };
    size_t              i, m;
    int                 sq8;

    /* q.x = 10 (i%7 - 3) + 10 (i%5 - 2) + i%3 + i: from -50 to 94 (i = 54) */
    for (i = 0; i < 59; i++) {
        vecs[i * 4] = (float) ((int) (i % 7) - 3);
        vecs[i * 4 + 1] = (float) ((int) (i % 5) - 2);
        vecs[i * 4 + 2] = (float) (i % 3);
        vecs[i * 4 + 3] = (float) i;
    }
    vecs[59 * 4] = 3e38f;               /* 10 * 3e38 = +Inf in float */
    vecs[59 * 4 + 1] = -3e38f;          /* 10 * -3e38 = -Inf */
    vecs[59 * 4 + 2] = 0.0f;
    vecs[59 * 4 + 3] = 0.0f;

    for (sq8 = 0; sq8 < 2; sq8++) {
        memset(&p, 0, sizeof(p));
        p.dim = 4;
        p.metric = MV_METRIC_IP;
        p.M = 4;
        p.ef_construction = 40;
        p.seed = 3;
        p.sq8 = sq8;

        h = mv_hnsw_new(&p, 60, &err);
        assert_non_null(h);
        assert_int_equal(mv_hnsw_add_batch(h, vecs, 59, &err), MV_OK);
        assert_int_equal(mv_hnsw_add(h, vecs + 59 * 4, &err), 59);
        mv_hnsw_graph(h, &g);
        s = mv_hnsw_scratch_new(60, 4, 64);
        assert_non_null(s);

        m = mv_hnsw_search(&g, f->kern, s, q, 1, 16, NULL, hits);
        assert_int_equal(m, 1);
        assert_int_equal(hits[0].id, 54);
        assert_true(hits[0].distance == -94.0f);

        /* all of them: the exact order, the overflowing vector last */
        m = mv_hnsw_search(&g, f->kern, s, q, 60, 60, NULL, hits);
        assert_int_equal(m, 60);
        assert_int_equal(mv_hnsw_scan(&g, f->kern, s, q, NULL, 0, 60, NULL,
                                      scan), 60);
        for (i = 0; i < 60; i++) {
            assert_int_equal(hits[i].id, scan[i].id);
            assert_true(hits[i].distance == scan[i].distance);
            assert_true(i == 0 || hits[i - 1].distance <= hits[i].distance);
        }
        assert_int_equal(hits[59].id, 59);
        assert_true(isinf(hits[59].distance) && hits[59].distance > 0);
        assert_true(hits[58].distance == 50.0f);

        mv_hnsw_scratch_free(s);
        mv_hnsw_free(h);
    }
}


/* ---- edges of the API --------------------------------------------------- */

static void
test_edges(void **state)
{
    fixture_t          *f = *state;
    mv_hnsw_params_t    p;
    mv_hnsw_t          *h;
    mv_hnsw_graph_t     g;
    mv_hnsw_scratch_t  *s;
    mv_hit_t            hits[K];
    mv_err_t            err;
    float               bad[DIM];

    memset(&p, 0, sizeof(p));
    p.dim = DIM;
    p.metric = MV_METRIC_COSINE;
    p.M = 1;
    p.ef_construction = 10;
    assert_null(mv_hnsw_new(&p, 0, &err));
    assert_non_null(strstr(err.msg, "M 1"));
    p.M = 8;
    p.metric = (mv_metric_t) 9;
    assert_null(mv_hnsw_new(&p, 0, &err));
    p.metric = MV_METRIC_COSINE;
    p.dim = 0;
    assert_null(mv_hnsw_new(&p, 0, &err));
    p.dim = DIM;
    p.sq8 = 1;

    h = mv_hnsw_new(&p, 0, &err);
    assert_non_null(h);
    s = mv_hnsw_scratch_new(16, DIM, 16);

    /* Empty index: nothing found. */
    mv_hnsw_graph(h, &g);
    assert_int_equal(mv_hnsw_search(&g, f->kern, s, f->queries, K, 16, NULL,
                                    hits), 0);

    /* Non-finite vectors are refused and nothing is added. */
    memcpy(bad, f->base, sizeof(bad));
    bad[3] = INFINITY;
    assert_int_equal(mv_hnsw_add(h, bad, &err), UINT32_MAX);
    assert_int_equal(mv_hnsw_size(h), 0);

    /* Fewer nodes than k: all of them. */
    assert_int_equal(mv_hnsw_add_batch(h, f->base, 3, &err), MV_OK);
    mv_hnsw_graph(h, &g);
    assert_int_equal(mv_hnsw_search(&g, f->kern, s, f->queries, K, 16, NULL,
                                    hits), 3);

    /* A scratch too small for the graph or k answers 0, then is grown. */
    assert_int_equal(mv_hnsw_add_batch(h, f->base + 3 * DIM, 30, &err),
                     MV_OK);
    mv_hnsw_graph(h, &g);
    assert_int_equal(mv_hnsw_search(&g, f->kern, s, f->queries, K, 16, NULL,
                                    hits), 0);
    assert_int_equal(mv_hnsw_scratch_reserve(s, g.n, DIM, 16), MV_OK);
    assert_int_equal(mv_hnsw_search(&g, f->kern, s, f->queries, K, 16, NULL,
                                    hits), K);
    assert_int_equal(mv_hnsw_search(&g, f->kern, s, f->queries, 17, 16, NULL,
                                    hits), 0);

    /* k = 0 finds nothing. */
    assert_int_equal(mv_hnsw_search(&g, f->kern, s, f->queries, 0, 16, NULL,
                                    hits), 0);

    assert_true(mv_hnsw_memory(h) > 33 * DIM * sizeof(float));

    mv_hnsw_scratch_free(s);
    mv_hnsw_free(h);
}


static void
test_same_seed_same_graph(void **state)
{
    fixture_t        *f = *state;
    mv_hnsw_t        *a = build(f, MV_METRIC_COSINE, 1, 500);
    mv_hnsw_t        *b = build(f, MV_METRIC_COSINE, 1, 500);
    mv_hnsw_graph_t   ga, gb;

    mv_hnsw_graph(a, &ga);
    mv_hnsw_graph(b, &gb);
    assert_int_equal(ga.entry, gb.entry);
    assert_memory_equal(ga.level0, gb.level0, 500 * ga.level0_stride);
    assert_memory_equal(ga.upper_offsets, gb.upper_offsets,
                        501 * sizeof(uint32_t));

    mv_hnsw_free(a);
    mv_hnsw_free(b);
}


/*
 * mv_touch_lines loads one byte of every cache line a range spans and no
 * byte outside it: the walk touches codes and vectors at the very end of
 * their arrays.  Each range here ends where its allocation ends and starts
 * at every offset within a line, so AddressSanitizer (make unit-asan)
 * fails the test on a read past the end.
 */
static void
test_touch_lines_stays_in_range(void **state)
{
    uint8_t  *block;
    size_t    len, shift;

    (void) state;

    for (len = 1; len <= 300; len += 13) {
        for (shift = 0; shift < 64; shift += 5) {
            block = malloc(shift + len);
            assert_non_null(block);
            memset(block, 0, shift + len);
            mv_touch_lines(block + shift, len);
            free(block);
        }
    }
}


/*
 * One scratch serves graphs of different sizes (the module keeps one per
 * process across snapshot swaps).  Visited tags are epochs that wrap every
 * 255 searches; a wrap must clear the tags of the whole capacity, not only
 * of the graph searched then, or a later search of a bigger graph takes
 * nodes it has not seen for visited.  White box: a stale tag past the small
 * graph's nodes, planted with the epoch the search after a wrap takes.
 */
static void
test_scratch_wrap_clears_every_tag(void **state)
{
    fixture_t          *f = *state;
    mv_hnsw_t          *big = build(f, MV_METRIC_COSINE, 1, 2000);
    mv_hnsw_t          *small = build(f, MV_METRIC_COSINE, 1, 20);
    mv_hnsw_graph_t     gb, gs;
    mv_hnsw_scratch_t  *s, *fresh;
    mv_hit_t            want[K], got[K];
    float              *q = prepared_queries(f, MV_METRIC_COSINE);
    size_t              i, n_want;

    mv_hnsw_graph(big, &gb);
    mv_hnsw_graph(small, &gs);
    fresh = mv_hnsw_scratch_new(2000, DIM, 64);
    s = mv_hnsw_scratch_new(2000, DIM, 64);
    assert_true(fresh != NULL && s != NULL);
    n_want = mv_hnsw_search(&gb, f->kern, fresh, q, K, 10, NULL, want);
    assert_int_equal(n_want, K);

    /* stale tags past the small graph's nodes, equal to the epoch of the
       first search after a wrap but one; 256 searches of the small graph
       wrap the epoch once */
    memset(s->visited + 20, 2, 2000 - 20);
    for (i = 0; i < 256; i++) {
        assert_int_equal(mv_hnsw_search(&gs, f->kern, s, q + DIM, K, 64,
                                        NULL, got), K);
    }
    assert_int_equal(s->epoch, 1);
    for (i = 20; i < 2000; i++) {
        assert_int_equal(s->visited[i], 0);
    }

    /* the next search of the big graph answers as a fresh scratch does */
    assert_int_equal(mv_hnsw_search(&gb, f->kern, s, q, K, 10, NULL, got),
                     n_want);
    assert_memory_equal(got, want, sizeof(want));

    mv_hnsw_scratch_free(fresh);
    mv_hnsw_scratch_free(s);
    free(q);
    mv_hnsw_free(big);
    mv_hnsw_free(small);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recall_cosine_sq8),
        cmocka_unit_test(test_recall_cosine_float),
        cmocka_unit_test(test_recall_l2_sq8),
        cmocka_unit_test(test_recall_grows_with_ef),
        cmocka_unit_test(test_recall_ip_sq8),
        cmocka_unit_test(test_recall_ip_float),
        cmocka_unit_test(test_sq8_distance_estimates),
        cmocka_unit_test(test_ip_filters_and_updates),
        cmocka_unit_test(test_ip_negative_and_overflow),
        cmocka_unit_test(test_filter_category_selective),
        cmocka_unit_test(test_filter_half_and_exclude),
        cmocka_unit_test(test_filter_fewer_than_k),
        cmocka_unit_test(test_deleted_never_returned),
        cmocka_unit_test(test_updates_keep_recall),
        cmocka_unit_test(test_from_graph_is_a_copy),
        cmocka_unit_test(test_reorder_keeps_answers),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_same_seed_same_graph),
        cmocka_unit_test(test_scratch_wrap_clears_every_tag),
        cmocka_unit_test(test_touch_lines_stays_in_range),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
