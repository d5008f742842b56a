/*
 * eval.c -- offline ranking metrics and baseline models (see eval.h for the
 * definitions).
 *
 * mvw_eval turns train and test into user rows (ascending items, from
 * dataset_matrix.c's counting sorts) and train into item rows (the user
 * sets U_i of the diversity measure).  Users are scored in batches by the
 * caller's callback; each user's row of scores goes through
 * mvw_eval_top_k, which walks the items once in index order, skips the
 * user's train items by merging with their sorted row (no per-user
 * marking), and keeps the k best in a heap whose root is the worst kept
 * item.  Walking in index order is what makes ties cheap: an item never
 * displaces an equal-scored one seen before it.  The heap is then sorted
 * in place, best first.
 *
 * Hits are found with an epoch-stamped array (stamp[i] == the user's tag
 * when i is one of their test items), so nothing is cleared between users.
 * The discounts 1/log2(r + 1) are computed once.
 *
 * Diversity needs |U_i & U_j| for every pair of a list: a merge of the two
 * sorted user rows (binary searches when one row is much shorter).  Lists
 * of different users share many pairs (popular items above all), so the
 * cosine of each pair is cached in an open-addressing table that stops
 * growing at MVW_EVAL_CACHE_MAX slots; past that, pairs are just
 * recomputed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/eval.h"
#include "synth.h"

/* Most scores held at once (floats), whatever the batch. */
#define EVAL_SCORES_MAX       (16u << 20)

/* Slots of the pair cosine cache: first size, and the most it grows to. */
#define EVAL_CACHE_MIN        (1u << 12)
#define EVAL_CACHE_MAX        (1u << 21)
#define EVAL_CACHE_EMPTY      UINT64_MAX

typedef struct pair_cache {
    uint64_t  *keys;
    double    *vals;
    size_t     cap;
    size_t     n;
} pair_cache_t;


/* ---- ranking ------------------------------------------------------------- */

/* 1 when item a ranks before item b. */
static int
ranks_before(const float *s, uint32_t a, uint32_t b)
{
    float  sa = s[a], sb = s[b];
    int    na = isnan(sa), nb = isnan(sb);

    if (na != nb) {
        return nb;              /* a number ranks before a NaN */
    }
    if (!na && sa != sb) {
        return sa > sb;
    }

    return a < b;
}


/* Restores the heap (root = the item ranked last) from position i down. */
static void
sift_down(const float *s, uint32_t *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t  l = 2 * i + 1, r = l + 1, w = i, t;

        if (l < n && ranks_before(s, h[w], h[l])) {
            w = l;
        }
        if (r < n && ranks_before(s, h[w], h[r])) {
            w = r;
        }
        if (w == i) {
            return;
        }
        t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}


static void
sift_up(const float *s, uint32_t *h, uint32_t i)
{
    while (i > 0) {
        uint32_t  p = (i - 1) / 2, t;

        if (!ranks_before(s, h[p], h[i])) {
            return;
        }
        t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}


uint32_t
mvw_eval_top_k(const float *scores, uint32_t n_items, const uint32_t *exclude,
    size_t n_exclude, uint32_t k, uint32_t *out)
{
    uint32_t  n = 0;
    size_t    e = 0;

    if (k == 0) {
        return 0;
    }

    for (uint32_t i = 0; i < n_items; i++) {
        while (e < n_exclude && exclude[e] < i) {
            e++;
        }
        if (e < n_exclude && exclude[e] == i) {
            continue;
        }
        if (n < k) {
            out[n] = i;
            sift_up(scores, out, n);
            n++;
        } else if (ranks_before(scores, i, out[0])) {
            out[0] = i;
            sift_down(scores, out, n, 0);
        }
    }

    /* Heap sort: the worst kept item goes to the end each round. */
    for (uint32_t m = n; m > 1; m--) {
        uint32_t  t = out[0];

        out[0] = out[m - 1];
        out[m - 1] = t;
        sift_down(scores, out, m - 1, 0);
    }

    return n;
}


/* ---- diversity ----------------------------------------------------------- */

/* |a & b| of two ascending lists. */
static size_t
intersect(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    size_t  i = 0, j = 0, c = 0;

    if (na > nb) {
        return intersect(b, nb, a, na);
    }

    if (na * 16 < nb) {
        /* Short against long: binary search, moving the lower bound. */
        size_t  lo = 0;

        for (i = 0; i < na; i++) {
            size_t  hi = nb;

            while (lo < hi) {
                size_t  mid = lo + (hi - lo) / 2;

                if (b[mid] < a[i]) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if (lo < nb && b[lo] == a[i]) {
                c++;
                lo++;
            }
        }
        return c;
    }

    while (i < na && j < nb) {
        if (a[i] < b[j]) {
            i++;
        } else if (a[i] > b[j]) {
            j++;
        } else {
            c++;
            i++;
            j++;
        }
    }

    return c;
}


static int
cache_init(pair_cache_t *c)
{
    c->cap = EVAL_CACHE_MIN;
    c->n = 0;
    c->keys = malloc(c->cap * sizeof(uint64_t));
    c->vals = malloc(c->cap * sizeof(double));
    if (c->keys == NULL || c->vals == NULL) {
        free(c->keys);
        free(c->vals);
        return MV_ERR;
    }
    memset(c->keys, 0xff, c->cap * sizeof(uint64_t));

    return MV_OK;
}


static void
cache_free(pair_cache_t *c)
{
    free(c->keys);
    free(c->vals);
}


static size_t
cache_slot(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;

    return (size_t) key & (cap - 1);
}


/* Doubles the cache (up to the limit); on failure it simply stays. */
static void
cache_grow(pair_cache_t *c)
{
    pair_cache_t  g;

    if (c->cap >= EVAL_CACHE_MAX) {
        return;
    }
    g.cap = c->cap * 2;
    g.n = c->n;
    g.keys = malloc(g.cap * sizeof(uint64_t));
    g.vals = malloc(g.cap * sizeof(double));
    if (g.keys == NULL || g.vals == NULL) {
        free(g.keys);
        free(g.vals);
        return;
    }
    memset(g.keys, 0xff, g.cap * sizeof(uint64_t));
    for (size_t s = 0; s < c->cap; s++) {
        size_t  h;

        if (c->keys[s] == EVAL_CACHE_EMPTY) {
            continue;
        }
        h = cache_slot(c->keys[s], g.cap);
        while (g.keys[h] != EVAL_CACHE_EMPTY) {
            h = (h + 1) & (g.cap - 1);
        }
        g.keys[h] = c->keys[s];
        g.vals[h] = c->vals[s];
    }
    cache_free(c);
    *c = g;
}


/* cos(i, j) of the binary train item columns (ti: item rows of users). */
static double
item_cosine(const mvw_csr_t *ti, pair_cache_t *c, uint32_t i, uint32_t j)
{
    uint64_t  key;
    size_t    h, ni, nj;
    double    v;

    if (i > j) {
        uint32_t  t = i;

        i = j;
        j = t;
    }
    ni = ti->offsets[i + 1] - ti->offsets[i];
    nj = ti->offsets[j + 1] - ti->offsets[j];
    if (ni == 0 || nj == 0) {
        return 0.0;
    }

    key = (uint64_t) i << 32 | j;
    h = cache_slot(key, c->cap);
    while (c->keys[h] != EVAL_CACHE_EMPTY) {
        if (c->keys[h] == key) {
            return c->vals[h];
        }
        h = (h + 1) & (c->cap - 1);
    }

    v = (double) intersect(ti->cols + ti->offsets[i], ni,
                           ti->cols + ti->offsets[j], nj)
        / sqrt((double) ni * (double) nj);

    if ((c->n + 1) * 2 > c->cap) {
        cache_grow(c);
        if ((c->n + 1) * 2 > c->cap) {
            return v;           /* full: compute, do not keep */
        }
        h = cache_slot(key, c->cap);
        while (c->keys[h] != EVAL_CACHE_EMPTY) {
            h = (h + 1) & (c->cap - 1);
        }
    }
    c->keys[h] = key;
    c->vals[h] = v;
    c->n++;

    return v;
}


/* ---- evaluation ---------------------------------------------------------- */

/* The state of one evaluation run. */
typedef struct eval_run {
    mvw_csr_t      tr;          /* train, by user */
    mvw_csr_t      te;          /* test, by user */
    mvw_csr_t      ti;          /* train, by item */
    uint32_t      *users;       /* evaluated users */
    uint32_t       n_users;
    float         *scores;
    uint32_t      *list;
    uint32_t      *stamp;       /* n_items: tag of the user whose test
                                   item it is */
    unsigned char *shown;       /* n_items: recommended to someone */
    double        *disc;        /* k: 1 / log2(r + 2) */
    double        *idcg;        /* k + 1: prefix sums of disc */
    pair_cache_t   cache;
} eval_run_t;


static void
run_free(eval_run_t *r)
{
    mvw_csr_free(&r->tr);
    mvw_csr_free(&r->te);
    mvw_csr_free(&r->ti);
    free(r->users);
    free(r->scores);
    free(r->list);
    free(r->stamp);
    free(r->shown);
    free(r->disc);
    free(r->idcg);
    cache_free(&r->cache);
}


/*
 * Marks user u's test items that are not train items with tag; returns
 * how many there are.
 */
static size_t
mark_test(const eval_run_t *r, uint32_t u, uint32_t tag, uint32_t *stamp)
{
    const uint32_t  *a = r->te.cols + r->te.offsets[u];
    const uint32_t  *b = r->tr.cols + r->tr.offsets[u];
    size_t           na = r->te.offsets[u + 1] - r->te.offsets[u];
    size_t           nb = r->tr.offsets[u + 1] - r->tr.offsets[u];
    size_t           i, j = 0, n = 0;

    for (i = 0; i < na; i++) {
        while (j < nb && b[j] < a[i]) {
            j++;
        }
        if (j < nb && b[j] == a[i]) {
            continue;
        }
        if (stamp != NULL) {
            stamp[a[i]] = tag;
        }
        n++;
    }

    return n;
}


int
mvw_eval(const mvw_dataset_t *train, const mvw_dataset_t *test, uint32_t k,
    mvw_score_fn fn, void *ctx, mvw_eval_result_t *out, mv_err_t *err)
{
    eval_run_t  r;
    uint32_t    n_items = train->items.n, kk, batch;
    double      n_users_map = (double) train->users.n;
    double      sum_p = 0, sum_r = 0, sum_ndcg = 0, sum_map = 0, sum_hr = 0;
    double      sum_div = 0, sum_nov = 0;
    uint32_t    n_div = 0;
    size_t      n_shown = 0;

    memset(out, 0, sizeof(*out));
    out->k = k;
    if (k == 0) {
        return mv_err_set(err, "k must be at least 1");
    }
    if (fn == NULL) {
        return mv_err_set(err, "no score function");
    }
    if (!mvw_idmap_equal(&train->users, &test->users)
        || !mvw_idmap_equal(&train->items, &test->items))
    {
        return mv_err_set(err, "train and test do not share their id maps");
    }
    if (n_items == 0) {
        return mv_err_set(err, "no items");
    }
    kk = k < n_items ? k : n_items;

    memset(&r, 0, sizeof(r));
    if (mvw_dataset_by_user(train, &r.tr, err) != MV_OK
        || mvw_dataset_by_user(test, &r.te, err) != MV_OK
        || mvw_dataset_by_item(train, &r.ti, err) != MV_OK)
    {
        run_free(&r);
        return MV_ERR;
    }

    r.users = malloc(((size_t) train->users.n + 1) * sizeof(uint32_t));
    if (r.users == NULL) {
        run_free(&r);
        return mv_err_set(err, "out of memory");
    }
    for (uint32_t u = 0; u < train->users.n; u++) {
        if (mark_test(&r, u, 0, NULL) > 0) {
            r.users[r.n_users++] = u;
        }
    }
    if (r.n_users == 0) {
        run_free(&r);
        return MV_OK;
    }

    batch = EVAL_SCORES_MAX / n_items;
    batch = batch < 1 ? 1 : batch > MVW_EVAL_BATCH ? MVW_EVAL_BATCH : batch;
    batch = batch > r.n_users ? r.n_users : batch;
    r.scores = malloc((size_t) batch * n_items * sizeof(float));
    r.list = malloc((size_t) kk * sizeof(uint32_t));
    r.stamp = calloc(n_items, sizeof(uint32_t));
    r.shown = calloc(n_items, 1);
    r.disc = malloc((size_t) kk * sizeof(double));
    r.idcg = malloc(((size_t) kk + 1) * sizeof(double));
    if (r.scores == NULL || r.list == NULL || r.stamp == NULL
        || r.shown == NULL || r.disc == NULL || r.idcg == NULL
        || cache_init(&r.cache) != MV_OK)
    {
        run_free(&r);
        return mv_err_set(err, "out of memory");
    }
    r.idcg[0] = 0.0;
    for (uint32_t i = 0; i < kk; i++) {
        r.disc[i] = 1.0 / log2((double) i + 2.0);
        r.idcg[i + 1] = r.idcg[i] + r.disc[i];
    }

    for (uint32_t b0 = 0; b0 < r.n_users; b0 += batch) {
        uint32_t  nb = r.n_users - b0 < batch ? r.n_users - b0 : batch;

        fn(ctx, r.users + b0, nb, r.scores);

        for (uint32_t b = 0; b < nb; b++) {
            uint32_t     u = r.users[b0 + b], tag = b0 + b + 1, len;
            const float *s = r.scores + (size_t) b * n_items;
            size_t       n_test, hits = 0, ideal;
            double       dcg = 0, ap = 0, nov = 0;

            n_test = mark_test(&r, u, tag, r.stamp);
            len = mvw_eval_top_k(s, n_items, r.tr.cols + r.tr.offsets[u],
                                 r.tr.offsets[u + 1] - r.tr.offsets[u], kk,
                                 r.list);

            for (uint32_t i = 0; i < len; i++) {
                uint32_t  it = r.list[i];
                size_t    pop = r.ti.offsets[it + 1] - r.ti.offsets[it];

                if (r.stamp[it] == tag) {
                    hits++;
                    dcg += r.disc[i];
                    ap += (double) hits / (double) (i + 1);
                }
                if (!r.shown[it]) {
                    r.shown[it] = 1;
                    n_shown++;
                }
                nov -= log2(pop ? (double) pop / n_users_map
                                : 1.0 / n_users_map);
            }

            ideal = n_test < kk ? n_test : kk;
            sum_p += (double) hits / (double) k;
            sum_r += (double) hits / (double) n_test;
            sum_ndcg += dcg / r.idcg[ideal];
            sum_map += ap / (double) ideal;
            sum_hr += hits > 0;
            if (len > 0) {
                sum_nov += nov / len;
            }
            if (len >= 2) {
                double  div = 0;

                for (uint32_t i = 0; i < len; i++) {
                    for (uint32_t j = i + 1; j < len; j++) {
                        div += 1.0 - item_cosine(&r.ti, &r.cache, r.list[i],
                                                 r.list[j]);
                    }
                }
                sum_div += div / ((double) len * (len - 1) / 2.0);
                n_div++;
            }
        }
    }

    out->users = r.n_users;
    out->precision = sum_p / r.n_users;
    out->recall = sum_r / r.n_users;
    out->ndcg = sum_ndcg / r.n_users;
    out->map = sum_map / r.n_users;
    out->hit_rate = sum_hr / r.n_users;
    out->coverage = (double) n_shown / n_items;
    out->diversity = n_div ? sum_div / n_div : 0.0;
    out->novelty = sum_nov / r.n_users;

    run_free(&r);
    return MV_OK;
}


/* ---- baseline models ----------------------------------------------------- */

int
mvw_eval_popularity_init(mvw_popularity_scorer_t *s,
    const mvw_dataset_t *train, mv_err_t *err)
{
    uint32_t  *counts;

    s->n_items = train->items.n;
    s->counts = malloc(((size_t) s->n_items + 1) * sizeof(float));
    counts = malloc(((size_t) s->n_items + 1) * sizeof(uint32_t));
    if (s->counts == NULL || counts == NULL) {
        free(s->counts);
        free(counts);
        s->counts = NULL;
        return mv_err_set(err, "out of memory");
    }
    mvw_dataset_item_counts(train, counts);
    for (uint32_t i = 0; i < s->n_items; i++) {
        s->counts[i] = (float) counts[i];
    }
    free(counts);

    return MV_OK;
}


void
mvw_eval_popularity_free(mvw_popularity_scorer_t *s)
{
    free(s->counts);
    s->counts = NULL;
    s->n_items = 0;
}


void
mvw_eval_popularity_scorer(void *ctx, const uint32_t *users, size_t n,
    float *scores)
{
    const mvw_popularity_scorer_t  *s = ctx;

    (void) users;
    for (size_t b = 0; b < n; b++) {
        memcpy(scores + b * s->n_items, s->counts,
               (size_t) s->n_items * sizeof(float));
    }
}


void
mvw_eval_random_init(mvw_random_scorer_t *s, const mvw_dataset_t *train,
    uint64_t seed)
{
    s->n_items = train->items.n;
    s->seed = seed;
}


void
mvw_eval_random_scorer(void *ctx, const uint32_t *users, size_t n,
    float *scores)
{
    const mvw_random_scorer_t  *s = ctx;
    mv_rng_t                    rng;

    for (size_t b = 0; b < n; b++) {
        float  *row = scores + b * s->n_items;

        mv_rng_seed(&rng, s->seed ^ (0x9e3779b97f4a7c15ULL
                                     * ((uint64_t) users[b] + 1)));
        for (uint32_t i = 0; i < s->n_items; i++) {
            row[i] = (float) mv_rng_uniform(&rng);
        }
    }
}


/* ---- reports ------------------------------------------------------------- */

int
mvw_eval_print_table(FILE *f, const char *const *names,
    const mvw_eval_result_t *results, size_t n_models, uint32_t k)
{
    int   w = 5;
    char  h[5][24];

    for (size_t m = 0; m < n_models; m++) {
        size_t  len = strlen(names[m]);

        if (len > (size_t) w) {
            w = len > 64 ? 64 : (int) len;
        }
    }
    snprintf(h[0], sizeof(h[0]), "P@%u", k);
    snprintf(h[1], sizeof(h[1]), "R@%u", k);
    snprintf(h[2], sizeof(h[2]), "NDCG@%u", k);
    snprintf(h[3], sizeof(h[3]), "MAP@%u", k);
    snprintf(h[4], sizeof(h[4]), "HR@%u", k);

    fprintf(f, "%-*s %7s %9s %9s %9s %9s %9s %9s %9s %9s\n", w, "model",
            "users", h[0], h[1], h[2], h[3], h[4], "coverage", "diversity",
            "novelty");
    for (size_t m = 0; m < n_models; m++) {
        const mvw_eval_result_t  *r = &results[m];

        fprintf(f, "%-*s %7u %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f "
                "%9.3f\n", w, names[m], r->users, r->precision, r->recall,
                r->ndcg, r->map, r->hit_rate, r->coverage, r->diversity,
                r->novelty);
    }

    return ferror(f) ? MV_ERR : MV_OK;
}


static void
json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char  c = (unsigned char) *s;

        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}


static void
json_number(FILE *f, const char *key, double v, int last)
{
    if (isfinite(v)) {
        fprintf(f, "\"%s\":%.6f%s", key, v, last ? "" : ",");
    } else {
        fprintf(f, "\"%s\":null%s", key, last ? "" : ",");
    }
}


int
mvw_eval_print_json(FILE *f, const char *const *names,
    const mvw_eval_result_t *results, size_t n_models, uint32_t k)
{
    fprintf(f, "{\"k\":%u,\"users\":%u,\"models\":{", k,
            n_models ? results[0].users : 0);
    for (size_t m = 0; m < n_models; m++) {
        const mvw_eval_result_t  *r = &results[m];

        if (m > 0) {
            fputc(',', f);
        }
        json_string(f, names[m]);
        fputs(":{", f);
        json_number(f, "precision", r->precision, 0);
        json_number(f, "recall", r->recall, 0);
        json_number(f, "ndcg", r->ndcg, 0);
        json_number(f, "map", r->map, 0);
        json_number(f, "hit_rate", r->hit_rate, 0);
        json_number(f, "coverage", r->coverage, 0);
        json_number(f, "diversity", r->diversity, 0);
        json_number(f, "novelty", r->novelty, 1);
        fputc('}', f);
    }
    fputs("}}\n", f);

    return ferror(f) ? MV_ERR : MV_OK;
}
