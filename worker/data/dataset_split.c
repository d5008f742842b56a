/*
 * dataset_split.c -- train/test splits of a dataset: random per user and
 * leave-last-out (see dataset.h for the contract).
 *
 * Splits group each user's interactions in input order with a counting
 * sort, decide per interaction whether it goes to test, and copy in input
 * order, so that train and test are subsequences of the input and share its
 * id maps.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/dataset_internal.h"
#include "synth.h"


/*
 * Interaction indices grouped by user, input order within a user: user u's
 * are order[start[u] .. start[u + 1]).  Both arrays are malloc'd.
 */
static int
group_by_user(const mvw_dataset_t *d, size_t **start_out,
    size_t **order_out)
{
    uint32_t  nu = d->users.n;
    size_t   *start, *order, *fill;

    start = calloc((size_t) nu + 1, sizeof(size_t));
    order = malloc((d->n ? d->n : 1) * sizeof(size_t));
    fill = malloc(((size_t) nu + 1) * sizeof(size_t));
    if (start == NULL || order == NULL || fill == NULL) {
        free(start);
        free(order);
        free(fill);
        return MV_ERR;
    }
    for (size_t j = 0; j < d->n; j++) {
        start[d->x[j].user + 1]++;
    }
    for (uint32_t u = 0; u < nu; u++) {
        start[u + 1] += start[u];
    }
    memcpy(fill, start, ((size_t) nu + 1) * sizeof(size_t));
    for (size_t j = 0; j < d->n; j++) {
        order[fill[d->x[j].user]++] = j;
    }
    free(fill);
    *start_out = start;
    *order_out = order;

    return MV_OK;
}


/* Copies d into train and test by to_test[j], with d's id maps. */
static int
split_emit(const mvw_dataset_t *d, const unsigned char *to_test,
    mvw_dataset_t *train, mvw_dataset_t *test, mv_err_t *err)
{
    mvw_dataset_t  a, b;
    size_t         nb = 0;

    for (size_t j = 0; j < d->n; j++) {
        nb += to_test[j];
    }

    mvw_dataset_init(&a);
    mvw_dataset_init(&b);
    if (mvw_idmap_copy(&a.users, &d->users, err) != MV_OK
        || mvw_idmap_copy(&a.items, &d->items, err) != MV_OK
        || mvw_idmap_copy(&b.users, &d->users, err) != MV_OK
        || mvw_idmap_copy(&b.items, &d->items, err) != MV_OK
        || mvw_dataset_reserve(&a, d->n - nb) != MV_OK
        || mvw_dataset_reserve(&b, nb) != MV_OK)
    {
        mvw_dataset_free(&a);
        mvw_dataset_free(&b);
        return mv_err_set(err, "out of memory");
    }
    for (size_t j = 0; j < d->n; j++) {
        if (to_test[j]) {
            b.x[b.n++] = d->x[j];
        } else {
            a.x[a.n++] = d->x[j];
        }
    }

    mvw_dataset_free(train);
    mvw_dataset_free(test);
    *train = a;
    *test = b;

    return MV_OK;
}


/* Uniform in [0, bound), bound >= 1, without modulo bias. */
static uint64_t
rng_below(mv_rng_t *r, uint64_t bound)
{
    uint64_t  threshold = (0 - bound) % bound;
    uint64_t  v;

    do {
        v = mv_rng_next(r);
    } while (v < threshold);

    return v % bound;
}


int
mvw_split_random(const mvw_dataset_t *d, double train_frac, uint64_t seed,
    mvw_dataset_t *train, mvw_dataset_t *test, mv_err_t *err)
{
    size_t         *start, *order;
    unsigned char  *to_test;
    mv_rng_t        rng;
    int             rc;

    if (!(train_frac >= 0.0 && train_frac <= 1.0)) {
        return mv_err_set(err, "train fraction must be within [0, 1]");
    }
    if (group_by_user(d, &start, &order) != MV_OK) {
        return mv_err_set(err, "out of memory");
    }
    to_test = calloc(d->n ? d->n : 1, 1);
    if (to_test == NULL) {
        free(start);
        free(order);
        return mv_err_set(err, "out of memory");
    }

    mv_rng_seed(&rng, seed);
    for (uint32_t u = 0; u < d->users.n; u++) {
        size_t  *p = order + start[u];
        size_t   m = start[u + 1] - start[u], keep;

        if (m == 0) {
            continue;
        }
        for (size_t i = m - 1; i > 0; i--) {
            size_t  j = (size_t) rng_below(&rng, (uint64_t) i + 1);
            size_t  t = p[i];

            p[i] = p[j];
            p[j] = t;
        }
        keep = (size_t) floor(train_frac * (double) m + 0.5);
        if (keep < 1) {
            keep = 1;
        }
        if (keep > m) {
            keep = m;
        }
        for (size_t i = keep; i < m; i++) {
            to_test[p[i]] = 1;
        }
    }

    rc = split_emit(d, to_test, train, test, err);
    free(to_test);
    free(start);
    free(order);
    return rc;
}


int
mvw_split_leave_last_out(const mvw_dataset_t *d, mvw_dataset_t *train,
    mvw_dataset_t *test, mv_err_t *err)
{
    size_t         *start, *order;
    unsigned char  *to_test;
    int             rc;

    if (group_by_user(d, &start, &order) != MV_OK) {
        return mv_err_set(err, "out of memory");
    }
    to_test = calloc(d->n ? d->n : 1, 1);
    if (to_test == NULL) {
        free(start);
        free(order);
        return mv_err_set(err, "out of memory");
    }

    for (uint32_t u = 0; u < d->users.n; u++) {
        size_t  last, a = start[u], b = start[u + 1];

        if (b - a < 2) {
            continue;
        }
        last = order[a];
        for (size_t i = a + 1; i < b; i++) {
            /* Input order within a user: >= lets a later tie win. */
            if (d->x[order[i]].time_ms >= d->x[last].time_ms) {
                last = order[i];
            }
        }
        to_test[last] = 1;
    }

    rc = split_emit(d, to_test, train, test, err);
    free(to_test);
    free(start);
    free(order);
    return rc;
}
