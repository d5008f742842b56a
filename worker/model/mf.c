/*
 * mf.c -- implicit-feedback matrix factorisation (see mf.h).
 *
 * Design.  The model is two growable row-major tables, U and V, with one
 * optimiser each (optim.h) and one generator for the initialisers.  The
 * user optimiser is created for dim - 1 coordinates when item_bias is on:
 * it is handed the whole row but only ever reads and writes the first
 * dim - 1 floats of the row and of the gradient, which is what keeps the
 * users' bias coordinate at exactly 1 under L2 and momentum.
 *
 * One example.  mvw_mf_loss_grad computes the scores with the library's
 * dot kernel (vec.h: AVX2 / AVX-512 when the CPU has them), then one
 * coefficient per score, c_j = dloss / ds_j, and from them the gradients
 *
 *   g_user = sum_j c_j V[j]     g_item_j = c_j U[user]
 *
 * with two vectorisable kernels (y = a x and y += a x, written in blocks
 * of 8 so that GCC vectorises them at -O2).  The scalar functions are the
 * stable forms, e = exp(-|x|):
 *
 *   softplus(x) = -log sigma(-x) = max(x, 0) + log(1 + e)
 *   sigma(x)    = 1 / (1 + e) for x >= 0,  e / (1 + e) otherwise
 *
 * so logistic and bpr cost one exp per score and one log per example (the
 * log(1 + e) terms are summed as the log of their product, see
 * mf_softplus_sum_t); the softmax subtracts the largest logit and costs
 * one exp per score plus one log.
 * For the softmax the scores, then the exponentials, are parked in the
 * first float of each negative's gradient row (overwritten last), so the
 * function needs no memory of its own and stays const.
 *
 * One step.  mvw_mf_step writes the gradients into scratch owned by the
 * model (user gradient, then one row per occurrence: positive first, then
 * the negatives), merges the rows of items that occur more than once, and
 * applies the optimisers.  Merging uses a small open-addressing table of
 * at least twice as many slots as occurrences, cleared per step, so it
 * costs O(n_neg) whatever the number of negatives.  The scratch is sized
 * for MF_SCRATCH_NEG negatives at creation and grows (doubling) only when
 * an example has more.  A step on a large model is bound by memory: the
 * rows of an example are random, so each one (weights and optimiser
 * state) is a cache miss.  The step therefore prefetches all of them
 * before computing anything, and the misses overlap; at 10k x 10k, dim
 * 64, adam, that took a step from about 1100 to 700 ns.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "model/mf.h"
#include "vec.h"

#define MF_SCRATCH_NEG   64
#define MF_PREFETCH_NEG  16
#define MF_MIN_ROWS      64
#define MF_MAX_ROWS      ((size_t) INT32_MAX)  /* cblas takes int sizes */
#define MF_SCORE_FLOATS  8192                  /* gathered users, on stack */
#define MF_HASH_MUL      2654435769u           /* 2^32 / golden ratio */

struct mvw_mf {
    mvw_mf_params_t      p;
    size_t               dim;
    size_t               dim_latent;    /* dim - item_bias */
    const mv_kernels_t  *kern;

    float               *U;
    size_t               n_users;
    size_t               cap_users;
    float               *V;
    size_t               n_items;
    size_t               cap_items;

    mvw_optim_t         *opt_users;
    mvw_optim_t         *opt_items;
    mv_rng_t             rng;

    /* Scratch of mvw_mf_step, one allocation (scratch_block). */
    void                *scratch_block;
    size_t               scratch_neg;   /* negatives it has room for */
    float               *g_user;        /* dim */
    float               *g_items;       /* (1 + scratch_neg) x dim */
    uint32_t            *distinct;      /* 1 + scratch_neg occurrences */
    uint32_t            *slots;         /* hash table, see mf_merge */
};

static const char *const mf_loss_names[MVW_MF_N_LOSSES] = {
    [MVW_MF_LOGISTIC] = "logistic",
    [MVW_MF_BPR] = "bpr",
    [MVW_MF_SOFTMAX] = "softmax",
};


/* See mf.h. */
void
mvw_mf_params_default(mvw_mf_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->dim = 64;
    p->loss = MVW_MF_LOGISTIC;
    p->optim = MVW_OPTIM_ADAGRAD;
    p->lr = 0.05f;
    p->l2 = 1e-5f;
    p->beta1 = 0.9f;
    p->beta2 = 0.999f;
    p->eps = 1e-8f;
    p->init = MVW_INIT_XAVIER_NORMAL;
    p->init_scale = 1.0f;
    p->init_density = 0.1f;
    p->item_bias = 0;
    p->seed = 1;
}


/* See mf.h. */
int
mvw_mf_loss_from_name(const char *name, mvw_mf_loss_t *loss)
{
    int i;

    if (name == NULL) {
        return MV_ERR;
    }

    for (i = 0; i < MVW_MF_N_LOSSES; i++) {
        if (strcmp(name, mf_loss_names[i]) == 0) {
            *loss = (mvw_mf_loss_t) i;
            return MV_OK;
        }
    }

    return MV_ERR;
}


/* See mf.h. */
const char *
mvw_mf_loss_name(mvw_mf_loss_t loss)
{
    if ((int) loss < 0 || loss >= MVW_MF_N_LOSSES) {
        return "unknown";
    }

    return mf_loss_names[loss];
}


/* Slots of the merge table for n occurrences: a power of two >= 2 n. */
static size_t
mf_hash_size(size_t n)
{
    size_t size = 4;

    while (size < 2 * n) {
        size *= 2;
    }

    return size;
}


/* Makes the step scratch hold n_neg negatives.  MV_OK or MV_ERR. */
static int
mf_grow_scratch(mvw_mf_t *m, size_t n_neg)
{
    size_t  occ, floats, ints;
    void   *block;

    if (n_neg < 2 * m->scratch_neg) {
        n_neg = 2 * m->scratch_neg;
    }
    if (n_neg > SIZE_MAX / 8 / sizeof(float) / m->dim) {
        return MV_ERR;
    }

    occ = 1 + n_neg;
    floats = m->dim + occ * m->dim;
    ints = occ + mf_hash_size(occ);

    block = malloc(floats * sizeof(float) + ints * sizeof(uint32_t));
    if (block == NULL) {
        return MV_ERR;
    }

    free(m->scratch_block);
    m->scratch_block = block;
    m->scratch_neg = n_neg;
    m->g_user = (float *) block;
    m->g_items = m->g_user + m->dim;
    m->distinct = (uint32_t *) (m->g_items + occ * m->dim);
    m->slots = m->distinct + occ;

    return MV_OK;
}


/* See mf.h. */
mvw_mf_t *
mvw_mf_new(const mvw_mf_params_t *p, mv_err_t *err)
{
    mvw_optim_params_t  op;
    mvw_mf_t           *m;

    if (p->dim == 0 || p->dim > MV_DIM_MAX) {
        mv_err_set(err, "dim %u is not in 1 .. %d", (unsigned) p->dim,
                   MV_DIM_MAX);
        return NULL;
    }
    if (p->item_bias && p->dim < 2) {
        mv_err_set(err, "item_bias needs dim >= 2");
        return NULL;
    }
    if ((int) p->loss < 0 || p->loss >= MVW_MF_N_LOSSES) {
        mv_err_set(err, "unknown loss %d", (int) p->loss);
        return NULL;
    }

    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        mv_err_set(err, "out of memory");
        return NULL;
    }

    m->p = *p;
    m->p.item_bias = p->item_bias != 0;
    m->dim = p->dim;
    m->dim_latent = p->dim - (size_t) m->p.item_bias;
    m->kern = mv_kernels_best();
    mv_rng_seed(&m->rng, p->seed);

    /* A fill of 0 rows checks the initialiser's parameters. */
    if (mvw_init_fill(p->init, NULL, 0, m->dim_latent, p->init_scale,
                      p->init_density, &m->rng, err) != MV_OK)
    {
        mvw_mf_free(m);
        return NULL;
    }

    op.lr = p->lr;
    op.l2 = p->l2;
    op.beta1 = p->beta1;
    op.beta2 = p->beta2;
    op.eps = p->eps;
    m->opt_users = mvw_optim_new(p->optim, m->dim_latent, &op, err);
    m->opt_items = mvw_optim_new(p->optim, m->dim, &op, err);
    if (m->opt_users == NULL || m->opt_items == NULL) {
        mvw_mf_free(m);
        return NULL;
    }

    if (mf_grow_scratch(m, MF_SCRATCH_NEG) != MV_OK) {
        mv_err_set(err, "out of memory");
        mvw_mf_free(m);
        return NULL;
    }

    return m;
}


/* See mf.h. */
void
mvw_mf_free(mvw_mf_t *m)
{
    if (m == NULL) {
        return;
    }

    free(m->U);
    free(m->V);
    mvw_optim_free(m->opt_users);
    mvw_optim_free(m->opt_items);
    free(m->scratch_block);
    free(m);
}


/*
 * Appends n rows to a table (users when is_user): allocation first, then
 * the rows, then the optimiser state, so a failure adds nothing.
 */
static int
mf_add_rows(mvw_mf_t *m, int is_user, size_t n, const float *vecs,
    mv_err_t *err)
{
    const char   *what = is_user ? "user" : "item";
    float       **table = is_user ? &m->U : &m->V;
    size_t       *count = is_user ? &m->n_users : &m->n_items;
    size_t       *cap = is_user ? &m->cap_users : &m->cap_items;
    mvw_optim_t  *o = is_user ? m->opt_users : m->opt_items;
    size_t        dim = m->dim, de, r, new_cap;
    float        *t, *base;

    if (n == 0) {
        return MV_OK;
    }
    if (n > MF_MAX_ROWS - *count) {
        return mv_err_set(err, "more than %zu %ss", MF_MAX_ROWS, what);
    }
    if (vecs != NULL) {
        for (r = 0; r < n; r++) {
            if (!mv_all_finite(vecs + r * dim, dim)) {
                return mv_err_set(err, "%s vector %zu has a non-finite "
                                  "value", what, r);
            }
        }
    }

    if (*count + n > *cap) {
        new_cap = *cap < MF_MIN_ROWS ? MF_MIN_ROWS : *cap;
        while (new_cap < *count + n) {
            new_cap *= 2;
        }
        if (new_cap > MF_MAX_ROWS) {
            new_cap = MF_MAX_ROWS;
        }
        t = realloc(*table, new_cap * dim * sizeof(float));
        if (t == NULL) {
            return mv_err_set(err, "out of memory for %zu %ss",
                              *count + n, what);
        }
        *table = t;
        *cap = new_cap;
    }

    base = *table + *count * dim;

    if (vecs != NULL) {
        memcpy(base, vecs, n * dim * sizeof(float));

    } else {
        /* Drawn as n x de, then spread to stride dim from the last row. */
        de = m->dim_latent;
        if (mvw_init_fill(m->p.init, base, n, de, m->p.init_scale,
                          m->p.init_density, &m->rng, err) != MV_OK)
        {
            return MV_ERR;
        }
        if (de < dim) {
            for (r = n; r-- > 1; ) {
                memmove(base + r * dim, base + r * de, de * sizeof(float));
            }
            for (r = 0; r < n; r++) {
                base[r * dim + de] = 0.0f;
            }
        }
    }

    if (is_user && m->p.item_bias) {
        for (r = 0; r < n; r++) {
            base[r * dim + dim - 1] = 1.0f;
        }
    }

    if (mvw_optim_reserve(o, *count + n, err) != MV_OK) {
        return MV_ERR;
    }
    *count += n;

    return MV_OK;
}


/* See mf.h. */
int
mvw_mf_add_users(mvw_mf_t *m, size_t n, const float *vecs, mv_err_t *err)
{
    return mf_add_rows(m, 1, n, vecs, err);
}


/* See mf.h. */
int
mvw_mf_add_items(mvw_mf_t *m, size_t n, const float *vecs, mv_err_t *err)
{
    return mf_add_rows(m, 0, n, vecs, err);
}


/* See mf.h. */
size_t
mvw_mf_n_users(const mvw_mf_t *m)
{
    return m->n_users;
}


/* See mf.h. */
size_t
mvw_mf_n_items(const mvw_mf_t *m)
{
    return m->n_items;
}


/* See mf.h. */
uint32_t
mvw_mf_dim(const mvw_mf_t *m)
{
    return (uint32_t) m->dim;
}


/* See mf.h. */
float *
mvw_mf_user(mvw_mf_t *m, uint32_t u)
{
    assert(u < m->n_users);

    return m->U + (size_t) u * m->dim;
}


/* See mf.h. */
float *
mvw_mf_item(mvw_mf_t *m, uint32_t i)
{
    assert(i < m->n_items);

    return m->V + (size_t) i * m->dim;
}


/* See mf.h. */
const mvw_mf_params_t *
mvw_mf_params(const mvw_mf_t *m)
{
    return &m->p;
}


/* See mf.h. */
int
mvw_mf_set_user(mvw_mf_t *m, uint32_t u, const float *vec, mv_err_t *err)
{
    float *row;

    if (u >= m->n_users) {
        return mv_err_set(err, "user %u out of range (%zu users)",
                          (unsigned) u, m->n_users);
    }
    if (!mv_all_finite(vec, m->dim)) {
        return mv_err_set(err, "user vector has a non-finite value");
    }

    row = m->U + (size_t) u * m->dim;
    memcpy(row, vec, m->dim * sizeof(float));
    if (m->p.item_bias) {
        row[m->dim - 1] = 1.0f;
    }
    mvw_optim_reset_row(m->opt_users, u);

    return MV_OK;
}


/* See mf.h. */
int
mvw_mf_set_item(mvw_mf_t *m, uint32_t i, const float *vec, mv_err_t *err)
{
    if (i >= m->n_items) {
        return mv_err_set(err, "item %u out of range (%zu items)",
                          (unsigned) i, m->n_items);
    }
    if (!mv_all_finite(vec, m->dim)) {
        return mv_err_set(err, "item vector has a non-finite value");
    }

    memcpy(m->V + (size_t) i * m->dim, vec, m->dim * sizeof(float));
    mvw_optim_reset_row(m->opt_items, i);

    return MV_OK;
}


/* y = a x */
static void
mf_scale(float *restrict y, const float *restrict x, float a, size_t n)
{
    size_t i = 0, k;

    for (; i + 8 <= n; i += 8) {
        for (k = 0; k < 8; k++) {
            y[i + k] = a * x[i + k];
        }
    }
    for (; i < n; i++) {
        y[i] = a * x[i];
    }
}


/* y += a x */
static void
mf_axpy(float *restrict y, const float *restrict x, float a, size_t n)
{
    size_t i = 0, k;

    for (; i + 8 <= n; i += 8) {
        for (k = 0; k < 8; k++) {
            y[i + k] += a * x[i + k];
        }
    }
    for (; i < n; i++) {
        y[i] += a * x[i];
    }
}


/*
 * A sum of softplus terms, kept as the sum of the max(x, 0) parts plus the
 * log of the product of the (1 + e) factors: one log per example instead
 * of one log1p per term.  Each factor is in (1, 2], so the product is
 * folded into the sum before it could overflow.  The price is that a term
 * with e below 2^-53 adds 0 instead of e: an absolute error of 1e-16 per
 * term, nothing next to a loss reported to a few digits.
 */
typedef struct mf_softplus_sum {
    double  sum;
    double  product;
} mf_softplus_sum_t;


/* Adds softplus(x) to *acc and returns sigma(x), stably. */
static inline double
mf_softplus_add(mf_softplus_sum_t *acc, double x)
{
    double e = exp(-fabs(x));

    acc->sum += x > 0.0 ? x : 0.0;
    acc->product *= 1.0 + e;
    if (acc->product > 0x1p512) {
        acc->sum += log(acc->product);
        acc->product = 1.0;
    }

    return x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}


/* See mf.h. */
double
mvw_mf_loss_grad(const mvw_mf_t *m, uint32_t user, uint32_t pos,
    float weight, const uint32_t *negs, size_t n_neg, const float *neg_logq,
    float pos_logq, float *g_user, float *g_pos, float *g_negs)
{
    const float        *u, *vp, *vn;
    size_t              dim = m->dim, k;
    double              loss, sp, sn, cp, cn, w = weight;
    double              z, zp, zmax, sum;
    mf_softplus_sum_t   acc = { 0.0, 1.0 };

    assert(user < m->n_users && pos < m->n_items);

    u = m->U + (size_t) user * dim;
    vp = m->V + (size_t) pos * dim;
    sp = m->kern->dot(u, vp, dim);

    switch (m->p.loss) {

    case MVW_MF_LOGISTIC:
        cp = -w * mf_softplus_add(&acc, -sp);
        mf_scale(g_user, vp, (float) cp, dim);
        for (k = 0; k < n_neg; k++) {
            assert(negs[k] < m->n_items);
            vn = m->V + (size_t) negs[k] * dim;
            sn = m->kern->dot(u, vn, dim);
            cn = w * mf_softplus_add(&acc, sn);
            mf_axpy(g_user, vn, (float) cn, dim);
            mf_scale(g_negs + k * dim, u, (float) cn, dim);
        }
        loss = acc.sum + log(acc.product);
        break;

    case MVW_MF_BPR:
        cp = 0.0;
        memset(g_user, 0, dim * sizeof(float));
        for (k = 0; k < n_neg; k++) {
            assert(negs[k] < m->n_items);
            vn = m->V + (size_t) negs[k] * dim;
            sn = m->kern->dot(u, vn, dim);
            cn = w * mf_softplus_add(&acc, sn - sp);
            cp -= cn;
            mf_axpy(g_user, vn, (float) cn, dim);
            mf_scale(g_negs + k * dim, u, (float) cn, dim);
        }
        mf_axpy(g_user, vp, (float) cp, dim);
        loss = acc.sum + log(acc.product);
        break;

    default:    /* MVW_MF_SOFTMAX */
        zp = sp - (double) pos_logq;
        zmax = zp;
        for (k = 0; k < n_neg; k++) {
            assert(negs[k] < m->n_items);
            vn = m->V + (size_t) negs[k] * dim;
            sn = m->kern->dot(u, vn, dim);
            g_negs[k * dim] = (float) sn;                  /* parked */
            z = sn - (neg_logq != NULL ? (double) neg_logq[k] : 0.0);
            if (z > zmax) {
                zmax = z;
            }
        }
        sum = exp(zp - zmax);
        for (k = 0; k < n_neg; k++) {
            z = (double) g_negs[k * dim]
                - (neg_logq != NULL ? (double) neg_logq[k] : 0.0);
            g_negs[k * dim] = (float) exp(z - zmax);       /* parked */
            sum += g_negs[k * dim];
        }
        loss = log(sum) - (zp - zmax);
        cp = w * (exp(zp - zmax) / sum - 1.0);
        mf_scale(g_user, vp, (float) cp, dim);
        for (k = 0; k < n_neg; k++) {
            vn = m->V + (size_t) negs[k] * dim;
            cn = w * (double) g_negs[k * dim] / sum;
            mf_axpy(g_user, vn, (float) cn, dim);
            mf_scale(g_negs + k * dim, u, (float) cn, dim);
        }
        break;
    }

    mf_scale(g_pos, u, (float) cp, dim);
    if (m->p.item_bias) {
        g_user[dim - 1] = 0.0f;
    }

    return w * loss;
}


/* A hint: starts loading n floats at p into the cache. */
static inline void
mf_prefetch(const float *p, size_t n)
{
#if defined(__GNUC__)
    size_t off;

    for (off = 0; off < n; off += 16) {
        __builtin_prefetch(p + off, 1, 3);
    }
#else
    (void) p;
    (void) n;
#endif
}


/*
 * Merges the gradient rows of items occurring more than once among the
 * 1 + n_neg occurrences (positive, then negatives): each distinct item's
 * first occurrence receives the sum, and m->distinct lists the first
 * occurrences.  Returns how many there are.
 */
static size_t
mf_merge(mvw_mf_t *m, uint32_t pos, const uint32_t *negs, size_t n_neg)
{
    size_t    occ = 1 + n_neg, size = mf_hash_size(occ), r, h, nd = 0;
    uint32_t  item, first;

    memset(m->slots, 0, size * sizeof(uint32_t));

    for (r = 0; r < occ; r++) {
        item = r == 0 ? pos : negs[r - 1];
        h = (uint32_t) (item * MF_HASH_MUL);
        h = (h ^ (h >> 16)) & (size - 1);

        for ( ;; ) {
            if (m->slots[h] == 0) {
                m->slots[h] = (uint32_t) r + 1;     /* 0 means empty */
                m->distinct[nd++] = (uint32_t) r;
                break;
            }
            first = m->slots[h] - 1;
            if ((first == 0 ? pos : negs[first - 1]) == item) {
                mf_axpy(m->g_items + first * m->dim,
                        m->g_items + r * m->dim, 1.0f, m->dim);
                break;
            }
            h = (h + 1) & (size - 1);
        }
    }

    return nd;
}


/* See mf.h. */
double
mvw_mf_step(mvw_mf_t *m, uint32_t user, uint32_t pos, float weight,
    const uint32_t *negs, size_t n_neg, const float *neg_logq,
    float pos_logq)
{
    size_t    dim = m->dim, nd, d, r;
    uint32_t  item;
    double    loss;

    if (n_neg > m->scratch_neg && mf_grow_scratch(m, n_neg) != MV_OK) {
        return NAN;
    }

    /* The rows of the example are needed soon: ask for them now, so that
       their cache misses overlap instead of queueing (for the first
       MF_PREFETCH_NEG negatives: more would overflow the L1 cache). */
    assert(user < m->n_users && pos < m->n_items);
    mf_prefetch(m->U + (size_t) user * dim, dim);
    mf_prefetch(m->V + (size_t) pos * dim, dim);
    mvw_optim_prefetch(m->opt_users, user);
    mvw_optim_prefetch(m->opt_items, pos);
    for (d = 0; d < n_neg && d < MF_PREFETCH_NEG; d++) {
        assert(negs[d] < m->n_items);
        mf_prefetch(m->V + (size_t) negs[d] * dim, dim);
        mvw_optim_prefetch(m->opt_items, negs[d]);
    }

    loss = mvw_mf_loss_grad(m, user, pos, weight, negs, n_neg, neg_logq,
                            pos_logq, m->g_user, m->g_items,
                            m->g_items + dim);

    mvw_optim_step(m->opt_users, user, m->U + (size_t) user * dim,
                   m->g_user);

    if (n_neg == 0) {
        mvw_optim_step(m->opt_items, pos, m->V + (size_t) pos * dim,
                       m->g_items);
        return loss;
    }

    nd = mf_merge(m, pos, negs, n_neg);
    for (d = 0; d < nd; d++) {
        r = m->distinct[d];
        item = r == 0 ? pos : negs[r - 1];
        mvw_optim_step(m->opt_items, item, m->V + (size_t) item * dim,
                       m->g_items + r * dim);
    }

    return loss;
}


/* See mf.h. */
void
mvw_mf_score(const mvw_mf_t *m, const uint32_t *users, size_t n_users,
    float *out)
{
    float   buf[MF_SCORE_FLOATS];
    size_t  dim = m->dim, block = MF_SCORE_FLOATS / dim, k0, nb, k;

    if (m->n_items == 0) {
        return;
    }

    for (k0 = 0; k0 < n_users; k0 += nb) {
        nb = n_users - k0 < block ? n_users - k0 : block;
        for (k = 0; k < nb; k++) {
            assert(users[k0 + k] < m->n_users);
            memcpy(buf + k * dim, m->U + (size_t) users[k0 + k] * dim,
                   dim * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int) nb,
                    (int) m->n_items, (int) dim, 1.0f, buf, (int) dim, m->V,
                    (int) dim, 0.0f, out + k0 * m->n_items,
                    (int) m->n_items);
    }
}


/* See mf.h. */
void
mvw_mf_set_lr(mvw_mf_t *m, float lr)
{
    m->p.lr = lr;
    m->opt_users->lr = lr;
    m->opt_items->lr = lr;
}
