/*
 * synthetic.c -- the seeded synthetic catalogue (see synthetic.h).
 *
 * Three independent random streams are derived from the one seed (vectors,
 * popularity permutation, users), so changing the number of users does not
 * change the items.  Category members are grouped with a counting sort so a
 * user can draw items of its category in O(1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/synthetic.h"
#include "synth.h"

#define STREAM_POPULARITY  0x9e3779b97f4a7c15ULL
#define STREAM_USERS       0xc2b2ae3d27d4eb4fULL
#define MAX_CATEGORIES     100000u
#define MAX_ENTITIES       100000000u


static int
add_items(mvw_catalog_t *c, const mvw_synth_params_t *p, const float *vecs,
    const uint32_t *cluster_of, mv_err_t *err)
{
    mv_rng_t   rng;
    uint32_t  *perm;
    float     *pop;
    char       id[32];
    int        rc = MV_OK;

    perm = malloc((size_t) p->n_items * sizeof(uint32_t));
    pop = malloc((size_t) p->n_items * sizeof(float));
    if (perm == NULL || pop == NULL) {
        free(perm);
        free(pop);
        return mv_err_set(err, "out of memory");
    }

    /* Fisher-Yates: perm[r] is the item of popularity rank r. */
    mv_rng_seed(&rng, p->seed ^ STREAM_POPULARITY);
    for (uint32_t i = 0; i < p->n_items; i++) {
        perm[i] = i;
    }
    for (uint32_t i = p->n_items - 1; i > 0; i--) {
        uint32_t  j = (uint32_t) (mv_rng_next(&rng) % ((uint64_t) i + 1));
        uint32_t  t = perm[i];

        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint32_t r = 0; r < p->n_items; r++) {
        pop[perm[r]] = 1.0f / (float) (r + 1);
    }

    for (uint32_t i = 0; i < p->n_items && rc == MV_OK; i++) {
        char  cat[32];

        snprintf(id, sizeof(id), "item-%06u", i);
        snprintf(cat, sizeof(cat), "cat-%02u", cluster_of[i]);
        rc = mvw_catalog_add_item(c, id, vecs + (size_t) i * p->dim, p->dim,
                                  cat, pop[i],
                                  MVW_SYNTH_BASE_MS + (int64_t) i * 1000, 0,
                                  0, err);
    }

    free(perm);
    free(pop);
    return rc;
}


static int
add_users(mvw_catalog_t *c, const mvw_synth_params_t *p,
    const uint32_t *cluster_of, mv_err_t *err)
{
    mv_rng_t   rng;
    uint32_t  *offsets, *members, *fill;
    float     *v;
    char       id[32];
    int        rc = MV_OK;
    size_t     dim = p->dim;

    offsets = calloc((size_t) p->n_categories + 1, sizeof(uint32_t));
    fill = calloc((size_t) p->n_categories, sizeof(uint32_t));
    members = malloc((size_t) p->n_items * sizeof(uint32_t));
    v = malloc(dim * sizeof(float));
    if (offsets == NULL || fill == NULL || members == NULL || v == NULL) {
        rc = mv_err_set(err, "out of memory");
        goto done;
    }

    for (uint32_t i = 0; i < p->n_items; i++) {
        offsets[cluster_of[i] + 1]++;
    }
    for (uint32_t k = 0; k < p->n_categories; k++) {
        offsets[k + 1] += offsets[k];
    }
    for (uint32_t i = 0; i < p->n_items; i++) {
        uint32_t  k = cluster_of[i];

        members[offsets[k] + fill[k]++] = i;
    }

    mv_rng_seed(&rng, p->seed ^ STREAM_USERS);
    for (uint32_t u = 0; u < p->n_users && rc == MV_OK; u++) {
        uint32_t  k = (uint32_t) (mv_rng_next(&rng) % p->n_categories);
        uint32_t  n_k = offsets[k + 1] - offsets[k];

        memset(v, 0, dim * sizeof(float));
        for (int draw = 0; draw < 3; draw++) {
            uint32_t  item = n_k > 0
                ? members[offsets[k] + mv_rng_next(&rng) % n_k]
                : (uint32_t) (mv_rng_next(&rng) % p->n_items);
            const float  *x = c->item_vectors + (size_t) item * dim;

            for (size_t j = 0; j < dim; j++) {
                v[j] += x[j] / 3.0f;
            }
        }
        for (size_t j = 0; j < dim; j++) {
            v[j] += MVW_SYNTH_USER_NOISE * (float) mv_rng_normal(&rng);
        }

        snprintf(id, sizeof(id), "user-%06u", u);
        rc = mvw_catalog_add_user(c, id, v, p->dim, 0, err);
    }

done:
    free(offsets);
    free(fill);
    free(members);
    free(v);
    return rc;
}


int
mvw_synth_catalog(mvw_catalog_t *c, const mvw_synth_params_t *p,
    mv_err_t *err)
{
    float     *vecs;
    uint32_t  *cluster_of, idx;
    char       cat[32];
    int        rc;

    if (p->n_items < 1 || p->n_items > MAX_ENTITIES) {
        return mv_err_set(err, "items must be 1..%u", MAX_ENTITIES);
    }
    if (p->dim < 1 || p->dim > MV_DIM_MAX) {
        return mv_err_set(err, "dim must be 1..%d", MV_DIM_MAX);
    }
    if (p->n_categories < 1 || p->n_categories > MAX_CATEGORIES) {
        return mv_err_set(err, "categories must be 1..%u", MAX_CATEGORIES);
    }
    if (p->n_users > MAX_ENTITIES) {
        return mv_err_set(err, "users must be 0..%u", MAX_ENTITIES);
    }
    if ((size_t) p->n_items > SIZE_MAX / sizeof(float) / p->dim) {
        return mv_err_set(err, "catalogue too large");
    }

    /* Every category exists, in cluster order, so index == cluster. */
    for (uint32_t k = 0; k < p->n_categories; k++) {
        snprintf(cat, sizeof(cat), "cat-%02u", k);
        if (mvw_catalog_category(c, cat, &idx, err) != MV_OK) {
            return MV_ERR;
        }
    }

    vecs = malloc((size_t) p->n_items * p->dim * sizeof(float));
    cluster_of = malloc((size_t) p->n_items * sizeof(uint32_t));
    if (vecs == NULL || cluster_of == NULL) {
        free(vecs);
        free(cluster_of);
        return mv_err_set(err, "out of memory");
    }
    mv_synth_clustered(vecs, p->n_items, p->dim, p->n_categories,
                       MVW_SYNTH_SPREAD, p->seed, cluster_of);

    rc = add_items(c, p, vecs, cluster_of, err);
    if (rc == MV_OK && p->n_users > 0) {
        rc = add_users(c, p, cluster_of, err);
    }

    free(vecs);
    free(cluster_of);
    return rc;
}
