/*
 * fuzz_dataset.c -- libFuzzer target for the trainer's dataset loaders.
 *
 * Every input is loaded from memory in each format (movielens with and
 * without weight_from_rating, csv, tsv, jsonl with the default weights and
 * with weights that drop View and keep Dislike).  A refused input must
 * leave the output dataset as it was.  An accepted one must satisfy the
 * contract: at least one interaction; indices inside the id maps; valid ids
 * that find their own index; weights finite and > 0; times within years
 * 0001..9999; no (user, item) pair twice.  It is then written as tsv lines
 * (as mvw_dataset_write_tsv formats them), which must load back to the same
 * dataset, split both ways (the parts must partition it), and evaluated
 * with the popularity model (metrics within their ranges).  Anything else
 * is an abort, so the sanitizers and these checks together are the oracle.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/eval.h"

#define MIN_MS  (-62135596800000LL)     /* 0001-01-01T00:00:00Z */
#define MAX_MS  253402300799999LL       /* 9999-12-31T23:59:59.999Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
check_map(const mvw_idmap_t *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        const char  *id = mvw_idmap_get(m, i);
        size_t       len = strlen(id);

        if (!mv_id_valid(id, len) || mvw_idmap_find(m, id, len) != i) {
            abort();
        }
    }
}


static void
check_dataset(const mvw_dataset_t *d)
{
    mvw_csr_t  m;

    check_map(&d->users);
    check_map(&d->items);
    for (size_t j = 0; j < d->n; j++) {
        const mvw_interaction_t  *x = &d->x[j];

        if (x->user >= d->users.n || x->item >= d->items.n
            || !isfinite(x->weight) || !(x->weight > 0.0f)
            || x->time_ms < MIN_MS || x->time_ms > MAX_MS)
        {
            abort();
        }
    }

    /* Rows strictly ascending: no pair twice. */
    if (mvw_dataset_by_user(d, &m, NULL) != MV_OK) {
        abort();
    }
    if (m.offsets[m.n_rows] != d->n) {
        abort();
    }
    for (uint32_t r = 0; r < m.n_rows; r++) {
        for (size_t k = m.offsets[r] + 1; k < m.offsets[r + 1]; k++) {
            if (m.cols[k - 1] >= m.cols[k]) {
                abort();
            }
        }
    }
    mvw_csr_free(&m);
}


static int
same_x(const mvw_interaction_t *a, const mvw_interaction_t *b)
{
    return a->user == b->user && a->item == b->item
           && a->weight == b->weight && a->time_ms == b->time_ms;
}


/* The tsv text of d, as mvw_dataset_write_tsv writes it (malloc'd). */
static char *
tsv_text(const mvw_dataset_t *d, size_t *len)
{
    char    *buf = NULL;
    FILE    *f = open_memstream(&buf, len);

    if (f == NULL) {
        abort();
    }
    for (size_t j = 0; j < d->n; j++) {
        fprintf(f, "%s\t%s\t%.9g\t%lld\n",
                mvw_idmap_get(&d->users, d->x[j].user),
                mvw_idmap_get(&d->items, d->x[j].item),
                (double) d->x[j].weight, (long long) d->x[j].time_ms);
    }
    if (fclose(f) != 0) {
        abort();
    }

    return buf;
}


static void
check_roundtrip(const mvw_dataset_t *d)
{
    mvw_load_opts_t  o = { MVW_FORMAT_TSV, NULL, 0 };
    mvw_dataset_t    back;
    mv_err_t         err;
    size_t           len;
    char            *text = tsv_text(d, &len);

    mvw_dataset_init(&back);
    if (mvw_dataset_load_buffer(&back, "tsv", text, len, &o, &err) != MV_OK
        || !mvw_idmap_equal(&back.users, &d->users)
        || !mvw_idmap_equal(&back.items, &d->items) || back.n != d->n)
    {
        abort();
    }
    for (size_t j = 0; j < d->n; j++) {
        if (!same_x(&back.x[j], &d->x[j])) {
            abort();
        }
    }
    mvw_dataset_free(&back);
    free(text);
}


static void
check_partition(const mvw_dataset_t *d, const mvw_dataset_t *a,
    const mvw_dataset_t *b)
{
    size_t  i = 0, j = 0;

    if (!mvw_idmap_equal(&a->users, &d->users)
        || !mvw_idmap_equal(&b->items, &d->items)
        || a->n + b->n != d->n)
    {
        abort();
    }
    for (size_t k = 0; k < d->n; k++) {
        if (i < a->n && same_x(&a->x[i], &d->x[k])) {
            i++;
        } else if (j < b->n && same_x(&b->x[j], &d->x[k])) {
            j++;
        } else {
            abort();
        }
    }
}


static int
in_unit(double v)
{
    return v >= 0.0 && v <= 1.0 + 1e-9;
}


static void
check_splits_and_eval(const mvw_dataset_t *d, uint64_t seed)
{
    mvw_dataset_t            tr, te;
    mvw_popularity_scorer_t  pop;
    mvw_eval_result_t        r;
    mv_err_t                 err;

    mvw_dataset_init(&tr);
    mvw_dataset_init(&te);

    if (mvw_split_leave_last_out(d, &tr, &te, &err) != MV_OK) {
        abort();
    }
    check_partition(d, &tr, &te);

    if (mvw_split_random(d, 0.7, seed, &tr, &te, &err) != MV_OK) {
        abort();
    }
    check_partition(d, &tr, &te);

    if (mvw_eval_popularity_init(&pop, &tr, &err) != MV_OK
        || mvw_eval(&tr, &te, 1 + (uint32_t) (seed % 5),
                    mvw_eval_popularity_scorer, &pop, &r, &err) != MV_OK)
    {
        abort();
    }
    if (!in_unit(r.precision) || !in_unit(r.recall) || !in_unit(r.ndcg)
        || !in_unit(r.map) || !in_unit(r.hit_rate) || !in_unit(r.coverage)
        || !in_unit(r.diversity) || !(r.novelty >= 0.0)
        || !isfinite(r.novelty) || r.users > d->users.n)
    {
        abort();
    }
    mvw_eval_popularity_free(&pop);

    mvw_dataset_free(&tr);
    mvw_dataset_free(&te);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char       *bytes = (const char *) data;
    float             w[MV_ACTION_TYPES];
    mvw_load_opts_t   opts[6] = {
        { MVW_FORMAT_MOVIELENS, NULL, 0 },
        { MVW_FORMAT_MOVIELENS, NULL, 1 },
        { MVW_FORMAT_CSV, NULL, 0 },
        { MVW_FORMAT_TSV, NULL, 0 },
        { MVW_FORMAT_JSONL, NULL, 0 },
        { MVW_FORMAT_JSONL, w, 0 },
    };
    mvw_dataset_t     d;
    mv_err_t          err;

    mvw_action_weights_default(w);
    w[MV_ACTION_VIEW] = -1.0f;
    w[MV_ACTION_DISLIKE] = 0.25f;

    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        mvw_dataset_init(&d);
        if (mvw_dataset_load_buffer(&d, "in", bytes, size, &opts[i], &err)
            == MV_OK)
        {
            if (d.n == 0) {
                abort();
            }
            check_dataset(&d);
            check_roundtrip(&d);
            check_splits_and_eval(&d, size + i);
        } else if (d.n != 0 || d.users.n != 0 || d.items.n != 0
                   || strncmp(err.msg, "in:", 3) != 0)
        {
            abort();
        }
        mvw_dataset_free(&d);
    }

    return 0;
}
