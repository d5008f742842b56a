/*
 * sampler.c -- alias-table negative sampler (see sampler.h).
 *
 * Design.  Vose's construction: every probability is scaled by n, so the
 * average column holds exactly 1; columns below 1 ("small") are topped up
 * from columns above 1 ("large"), each small column taking one large item
 * as its alias, and the large one keeps what remains.  The two work lists
 * share one array of n indexes (small ones grow from the front, large ones
 * from the back).  Whatever is left when one list empties is 1 up to
 * rounding and becomes a full column whose alias is itself.  The update of
 * a large column is (q_g + q_l) - 1 rather than q_g - (1 - q_l), which
 * loses less to cancellation (Vose 1991).
 *
 * Drawing.  One 64-bit random number r gives both the column and the coin:
 * the 128-bit product r * n has the column in its high half and, in its
 * low half, a fraction uniform at a resolution of n / 2^64 that is compared
 * with the column's threshold `keep` (the column's share times 2^64).  A
 * full column has keep = UINT64_MAX and itself as alias, so it is always
 * itself.
 *
 * A build validates the counts and allocates everything it needs before it
 * writes to the sampler, so a failed rebuild leaves the old table in place.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/sampler.h"


/* See sampler.h. */
void
mvw_sampler_init(mvw_sampler_t *s)
{
    memset(s, 0, sizeof(*s));
}


/* See sampler.h. */
void
mvw_sampler_free(mvw_sampler_t *s)
{
    free(s->p);
    free(s->slots);
    mvw_sampler_init(s);
}


/* See sampler.h. */
int
mvw_sampler_build(mvw_sampler_t *s, const double *counts, size_t n,
    double power, mv_err_t *err)
{
    mvw_alias_slot_t  *slots;
    uint32_t          *work;
    double            *q, *p, cmax, sum;
    size_t             i, n_small, n_large;
    uint32_t           l, g;

    if (n == 0 || n > UINT32_MAX) {
        return mv_err_set(err, "sampler: %zu items (1 .. %u allowed)", n,
                          (unsigned) UINT32_MAX);
    }
    if (!(power >= 0.0 && isfinite(power))) {
        return mv_err_set(err, "sampler: power %g must be a number >= 0",
                          power);
    }

    cmax = 0.0;
    for (i = 0; i < n; i++) {
        if (!isfinite(counts[i])) {
            return mv_err_set(err, "sampler: count of item %zu is %g", i,
                              counts[i]);
        }
        if (counts[i] > cmax) {
            cmax = counts[i];
        }
    }

    /* Everything that can fail, before s is touched. */
    q = malloc(n * sizeof(*q));
    work = malloc(n * sizeof(*work));
    p = n > s->cap ? malloc(n * sizeof(*p)) : s->p;
    slots = n > s->cap ? malloc(n * sizeof(*slots)) : s->slots;
    if (q == NULL || work == NULL || p == NULL || slots == NULL) {
        free(q);
        free(work);
        if (n > s->cap) {
            free(p);
            free(slots);
        }
        return mv_err_set(err, "sampler: out of memory for %zu items", n);
    }
    if (n > s->cap) {
        free(s->p);
        free(s->slots);
        s->p = p;
        s->slots = slots;
        s->cap = n;
    }
    s->n = n;

    /* Weights relative to the largest count, so nothing overflows. */
    sum = 0.0;
    for (i = 0; i < n; i++) {
        if (cmax == 0.0) {
            p[i] = 1.0;
        } else {
            p[i] = counts[i] > 0.0 ? pow(counts[i] / cmax, power) : 0.0;
        }
        sum += p[i];
    }
    s->p_min = 1.0;
    for (i = 0; i < n; i++) {
        p[i] /= sum;
        if (p[i] > 0.0 && p[i] < s->p_min) {
            s->p_min = p[i];
        }
    }

    n_small = 0;
    n_large = 0;
    for (i = 0; i < n; i++) {
        q[i] = p[i] * (double) n;
        if (q[i] < 1.0) {
            work[n_small++] = (uint32_t) i;
        } else {
            work[n - 1 - n_large++] = (uint32_t) i;
        }
    }

    while (n_small > 0 && n_large > 0) {
        l = work[--n_small];
        g = work[n - n_large];

        slots[l].keep = (uint64_t) (q[l] * 0x1p64);
        slots[l].alias = g;

        q[g] = (q[g] + q[l]) - 1.0;
        if (q[g] < 1.0) {
            n_large--;
            work[n_small++] = g;
        }
    }

    /* What is left holds 1 up to rounding. */
    while (n_large > 0) {
        g = work[n - n_large--];
        slots[g].keep = UINT64_MAX;
        slots[g].alias = g;
    }
    while (n_small > 0) {
        l = work[--n_small];
        slots[l].keep = UINT64_MAX;
        slots[l].alias = l;
    }

    free(q);
    free(work);

    return MV_OK;
}


/* See sampler.h. */
uint32_t
mvw_sampler_draw(const mvw_sampler_t *s, mv_rng_t *rng)
{
    uint64_t  r, col, frac;

    assert(s->n > 0);

    r = mv_rng_next(rng);

#if defined(__SIZEOF_INT128__)
    {
        unsigned __int128 x = (unsigned __int128) r * s->n;

        col = (uint64_t) (x >> 64);
        frac = (uint64_t) x;
    }
#else
    {
        /* r * n as 128 bits, with n < 2^32. */
        uint64_t lo = (r & 0xffffffffu) * s->n;
        uint64_t hi = (r >> 32) * s->n;

        frac = lo + (hi << 32);
        col = (hi >> 32) + (frac < lo);
    }
#endif

    return frac < s->slots[col].keep ? (uint32_t) col : s->slots[col].alias;
}


/* See sampler.h. */
double
mvw_sampler_prob(const mvw_sampler_t *s, size_t i)
{
    return i < s->n ? s->p[i] : 0.0;
}
