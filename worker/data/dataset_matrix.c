/*
 * dataset_matrix.c -- a dataset as a sparse matrix: rows by user or by item
 * (compressed sparse rows), and item counts (see dataset.h).
 *
 * A view is two counting sorts (by column, then stably by row), which gives
 * rows with ascending columns in O(n + rows + cols).
 */
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"


static uint32_t
row_of(const mvw_interaction_t *x, int by_user)
{
    return by_user ? x->user : x->item;
}


static uint32_t
col_of(const mvw_interaction_t *x, int by_user)
{
    return by_user ? x->item : x->user;
}


static int
build_csr(const mvw_dataset_t *d, int by_user, mvw_csr_t *out,
    mv_err_t *err)
{
    uint32_t  nr = by_user ? d->users.n : d->items.n;
    uint32_t  nc = by_user ? d->items.n : d->users.n;
    size_t   *cstart = NULL, *order = NULL, *fill = NULL;
    size_t    n = d->n ? d->n : 1;
    mvw_csr_t m;

    memset(out, 0, sizeof(*out));
    memset(&m, 0, sizeof(m));
    m.n_rows = nr;
    m.n_cols = nc;
    m.offsets = calloc((size_t) nr + 1, sizeof(size_t));
    m.cols = malloc(n * sizeof(uint32_t));
    m.vals = malloc(n * sizeof(float));
    cstart = calloc((size_t) nc + 1, sizeof(size_t));
    order = malloc(n * sizeof(size_t));
    fill = malloc(((size_t) (nr > nc ? nr : nc) + 1) * sizeof(size_t));
    if (m.offsets == NULL || m.cols == NULL || m.vals == NULL
        || cstart == NULL || order == NULL || fill == NULL)
    {
        mvw_csr_free(&m);
        free(cstart);
        free(order);
        free(fill);
        return mv_err_set(err, "out of memory");
    }

    /* Pass 1: interaction indices ordered by column. */
    for (size_t j = 0; j < d->n; j++) {
        cstart[col_of(&d->x[j], by_user) + 1]++;
    }
    for (uint32_t c = 0; c < nc; c++) {
        cstart[c + 1] += cstart[c];
    }
    memcpy(fill, cstart, ((size_t) nc + 1) * sizeof(size_t));
    for (size_t j = 0; j < d->n; j++) {
        order[fill[col_of(&d->x[j], by_user)]++] = j;
    }

    /* Pass 2: stably by row, so each row's columns come out ascending. */
    for (size_t j = 0; j < d->n; j++) {
        m.offsets[row_of(&d->x[j], by_user) + 1]++;
    }
    for (uint32_t r = 0; r < nr; r++) {
        m.offsets[r + 1] += m.offsets[r];
    }
    memcpy(fill, m.offsets, ((size_t) nr + 1) * sizeof(size_t));
    for (size_t k = 0; k < d->n; k++) {
        const mvw_interaction_t  *x = &d->x[order[k]];
        size_t                    at = fill[row_of(x, by_user)]++;

        m.cols[at] = col_of(x, by_user);
        m.vals[at] = x->weight;
    }

    free(cstart);
    free(order);
    free(fill);
    *out = m;

    return MV_OK;
}


int
mvw_dataset_by_user(const mvw_dataset_t *d, mvw_csr_t *out, mv_err_t *err)
{
    return build_csr(d, 1, out, err);
}


int
mvw_dataset_by_item(const mvw_dataset_t *d, mvw_csr_t *out, mv_err_t *err)
{
    return build_csr(d, 0, out, err);
}


void
mvw_csr_free(mvw_csr_t *m)
{
    free(m->offsets);
    free(m->cols);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}


void
mvw_dataset_item_counts(const mvw_dataset_t *d, uint32_t *counts)
{
    memset(counts, 0, (size_t) d->items.n * sizeof(uint32_t));
    for (size_t j = 0; j < d->n; j++) {
        counts[d->x[j].item]++;
    }
}
