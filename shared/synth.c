/*
 * synth.c -- seeded synthetic data (see synth.h).
 *
 * Design.  The generator is xoshiro256** (Blackman and Vigna), whose 256-bit
 * state is filled from the 64-bit seed by splitmix64, as its authors
 * recommend.  Everything lives in the caller's mv_rng_t: normals come from
 * Box-Muller using one of the two values it produces and discarding the
 * other, so there is no cached spare value anywhere.
 *
 * Clustered data.  Centre c is drawn from its own generator, seeded from
 * (seed, c), so the centres never depend on how the points are drawn; the
 * points come from a separate generator seeded from seed.  The centres are
 * computed once into a temporary buffer; if that allocation fails they are
 * recomputed per point instead, giving the same output more slowly (the
 * function has no error path by contract).
 */
#include <math.h>
#include <stdlib.h>

#include "synth.h"

/* Decorrelates the centre and point streams derived from one seed. */
#define SYNTH_POINTS_SALT   0x9e3779b97f4a7c15ull
#define SYNTH_CENTRE_SALT   0xd1b54a32d192ed03ull


static uint64_t
splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;

    return z ^ (z >> 31);
}


static inline uint64_t
rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}


/* See synth.h. */
void
mv_rng_seed(mv_rng_t *r, uint64_t seed)
{
    uint64_t state = seed;
    int      i;

    for (i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&state);
    }
    /* splitmix64 is a bijection over distinct inputs: never all zero. */
}


/* See synth.h. */
uint64_t
mv_rng_next(mv_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t  result = rotl64(s[1] * 5, 7) * 9;
    uint64_t  t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);

    return result;
}


/* See synth.h. */
double
mv_rng_uniform(mv_rng_t *r)
{
    /* The top 53 bits, scaled: every value a multiple of 2^-53. */
    return (double) (mv_rng_next(r) >> 11) * 0x1.0p-53;
}


/* See synth.h. */
double
mv_rng_normal(mv_rng_t *r)
{
    const double two_pi = 6.283185307179586476925286766559;
    double       u1, u2;

    u1 = 1.0 - mv_rng_uniform(r);        /* (0, 1]: log(u1) is finite */
    u2 = mv_rng_uniform(r);

    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}


/* Writes centre c (dim values) of a clustering seeded with seed. */
static void
synth_centre(float *centre, size_t dim, size_t c, uint64_t seed)
{
    mv_rng_t rng;
    uint64_t state = seed ^ SYNTH_CENTRE_SALT;
    size_t   j;

    /* Distinct centres get distinct seeds (c is added after mixing). */
    mv_rng_seed(&rng, splitmix64(&state) + (uint64_t) c);

    for (j = 0; j < dim; j++) {
        centre[j] = (float) mv_rng_normal(&rng);
    }
}


/* See synth.h.  n_clusters == 0 is treated as 1. */
void
mv_synth_clustered(float *out, size_t n, size_t dim, size_t n_clusters,
    float spread, uint64_t seed, uint32_t *cluster_of)
{
    mv_rng_t rng;
    float   *centres = NULL;
    float   *point;
    size_t   i, j, c;

    if (n_clusters == 0) {
        n_clusters = 1;
    }

    if (dim > 0 && n_clusters <= SIZE_MAX / sizeof(float) / dim) {
        centres = malloc(n_clusters * dim * sizeof(float));
    }
    if (centres != NULL) {
        for (c = 0; c < n_clusters; c++) {
            synth_centre(centres + c * dim, dim, c, seed);
        }
    }

    mv_rng_seed(&rng, seed ^ SYNTH_POINTS_SALT);

    for (i = 0; i < n; i++) {
        point = out + i * dim;

        c = (size_t) (mv_rng_uniform(&rng) * (double) n_clusters);
        if (c >= n_clusters) {
            c = n_clusters - 1;
        }
        if (cluster_of != NULL) {
            cluster_of[i] = (uint32_t) c;
        }

        if (centres != NULL) {
            for (j = 0; j < dim; j++) {
                point[j] = centres[c * dim + j];
            }
        } else {
            synth_centre(point, dim, c, seed);
        }

        for (j = 0; j < dim; j++) {
            point[j] += (float) ((double) spread * mv_rng_normal(&rng));
        }
    }

    free(centres);
}
