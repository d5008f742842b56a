/*
 * synth.h -- seeded synthetic data: clustered vectors for the HNSW tests, the
 * ANN benchmark and the worker's synthetic catalogue.  The integer generator
 * is the same on every platform (own PRNG, no libc rand); normal draws go
 * through libm.
 */
#ifndef MV_SYNTH_H
#define MV_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A small, fast PRNG (xoshiro256** seeded through splitmix64). */
typedef struct mv_rng {
    uint64_t s[4];
} mv_rng_t;

void mv_rng_seed(mv_rng_t *r, uint64_t seed);
uint64_t mv_rng_next(mv_rng_t *r);
/* Uniform in [0, 1). */
double mv_rng_uniform(mv_rng_t *r);
/* Standard normal (Box-Muller). */
double mv_rng_normal(mv_rng_t *r);

/*
 * Fills out (row-major n x dim) with vectors drawn around n_clusters random
 * centres: centre ~ N(0, 1) per coordinate, point = centre + N(0, spread^2).
 * When cluster_of is non-NULL it receives each point's cluster index.
 * Deterministic in (n, dim, n_clusters, spread, seed) for one libm (the
 * normal draws use log and cos); n_clusters 0 counts as 1.  Points are not
 * normalised.
 */
void mv_synth_clustered(float *out, size_t n, size_t dim, size_t n_clusters,
    float spread, uint64_t seed, uint32_t *cluster_of);

#ifdef __cplusplus
}
#endif

#endif /* MV_SYNTH_H */
