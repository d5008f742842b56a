/*
 * gen_snapshot_corpus.c -- writes the seed corpus of fuzz_snapshot: a few
 * tiny valid snapshots covering every metric (cosine, l2, ip: the inner
 * product's vectors as drawn, not normalised), with and without SQ8 codes,
 * deleted items, items without a category, users and stream positions, and
 * the empty catalogue.  Run by `make fuzz-corpus` whenever the format
 * changes, so the fuzzer starts from files the current reader accepts.
 * (Every run draws new id hash seeds, so files already in the corpus come
 * out with different bytes: a new seed shape alone can be copied in by
 * itself.)
 *
 *   gen_snapshot_corpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hnsw.h"
#include "snapshot.h"
#include "synth.h"


typedef struct seed_shape {
    const char   *name;
    uint32_t      n_items;
    uint32_t      dim;
    mv_metric_t   metric;
    int           sq8;
    uint32_t      n_users;
    uint32_t      n_categories;
    uint32_t      M;
} seed_shape_t;


static char **
make_ids(const char *prefix, uint32_t n)
{
    char      **ids = calloc(n + 1, sizeof(char *));
    uint32_t    i;

    for (i = 0; i < n; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "%s%u", prefix, i);
    }

    return ids;
}


static void
free_ids(char **ids, uint32_t n)
{
    uint32_t  i;

    for (i = 0; i < n; i++) {
        free(ids[i]);
    }
    free(ids);
}


static int
write_seed(const char *dir, const seed_shape_t *sh)
{
    char                  path[4096];
    char                **items, **users, **cats;
    float                *iv, *uv;
    mv_item_meta_t       *meta;
    mv_hnsw_params_t      p;
    mv_hnsw_t            *h;
    mv_hnsw_graph_t       g;
    mv_stream_pos_t       pos[2];
    mv_snapshot_input_t   in;
    mv_err_t              err;
    uint32_t              i;
    int                   rc;

    items = make_ids("i", sh->n_items);
    users = make_ids("u", sh->n_users);
    cats = make_ids("c", sh->n_categories);
    iv = calloc((size_t) sh->n_items * sh->dim + 1, sizeof(float));
    uv = calloc((size_t) sh->n_users * sh->dim + 1, sizeof(float));
    meta = calloc(sh->n_items + 1, sizeof(mv_item_meta_t));

    mv_synth_clustered(iv, sh->n_items, sh->dim, 3, 0.2f, 1, NULL);
    mv_synth_clustered(uv, sh->n_users, sh->dim, 3, 0.2f, 2, NULL);

    for (i = 0; i < sh->n_items; i++) {
        meta[i].category = sh->n_categories == 0
                           || i % (sh->n_categories + 1) == sh->n_categories
                           ? MV_CATEGORY_NONE
                           : i % (sh->n_categories + 1);
        meta[i].flags = i % 5 == 2 ? MV_ITEM_DELETED : 0;
        meta[i].popularity = (float) (i % 4);
        meta[i].created_at_ms = 1000 + i;
    }

    memset(&p, 0, sizeof(p));
    p.dim = sh->dim;
    p.metric = sh->metric;
    p.M = sh->M;
    p.ef_construction = 32;
    p.seed = 5;
    p.sq8 = sh->sq8;

    h = mv_hnsw_new(&p, sh->n_items, &err);
    if (h == NULL || mv_hnsw_add_batch(h, iv, sh->n_items, &err) != MV_OK) {
        fprintf(stderr, "%s: %s\n", sh->name, err.msg);
        return 1;
    }
    for (i = 0; i < sh->n_items; i++) {
        if (meta[i].flags & MV_ITEM_DELETED) {
            mv_hnsw_set_deleted(h, i, 1, NULL);
        }
    }
    mv_hnsw_graph(h, &g);

    memset(pos, 0, sizeof(pos));
    strcpy(pos[0].stream, "user_actions");
    pos[0].offset = 42;
    strcpy(pos[1].stream, "log");
    pos[1].partition = 1;
    pos[1].offset = 7;

    memset(&in, 0, sizeof(in));
    in.generation = sh->n_items + 1;
    in.created_at_ms = 1234;
    in.dim = sh->dim;
    in.metric = sh->metric;
    in.n_items = sh->n_items;
    in.item_ids = (const char *const *) items;
    in.item_vectors = g.vectors != NULL ? g.vectors : iv;
    in.item_meta = meta;
    in.n_categories = sh->n_categories;
    in.category_names = (const char *const *) cats;
    in.graph = &g;
    in.n_users = sh->n_users;
    in.user_ids = (const char *const *) users;
    in.user_vectors = uv;
    in.n_positions = 2;
    in.positions = pos;

    snprintf(path, sizeof(path), "%s/%s.mvs", dir, sh->name);
    rc = mv_snapshot_write(path, &in, &err) == MV_OK ? 0 : 1;
    if (rc) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
    }

    mv_hnsw_free(h);
    free_ids(items, sh->n_items);
    free_ids(users, sh->n_users);
    free_ids(cats, sh->n_categories);
    free(iv);
    free(uv);
    free(meta);

    return rc;
}


int
main(int argc, char **argv)
{
    static const seed_shape_t  shapes[] = {
        { "cosine-sq8-12", 12, 4, MV_METRIC_COSINE, 1, 3, 2, 2 },
        { "l2-plain-20", 20, 3, MV_METRIC_L2, 0, 2, 3, 3 },
        { "empty", 0, 2, MV_METRIC_COSINE, 0, 0, 0, 2 },
        { "single", 1, 2, MV_METRIC_L2, 1, 1, 1, 2 },
        { "cosine-40", 40, 2, MV_METRIC_COSINE, 1, 4, 2, 2 },
        { "ip-sq8-16", 16, 5, MV_METRIC_IP, 1, 3, 2, 2 },
        { "ip-plain-9", 9, 3, MV_METRIC_IP, 0, 2, 1, 2 },
    };
    size_t  i;
    int     rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: gen_snapshot_corpus DIR\n");
        return 2;
    }

    for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        rc |= write_seed(argv[1], &shapes[i]);
    }

    return rc;
}
