/*
 * trainer_snapshot.c -- publishing the online trainer's model as a snapshot
 * generation (see trainer_snapshot.h).
 *
 * Publishing builds the snapshot input from the live arrays (pointers into
 * the id maps and the model, no copies of vectors), brings the kept HNSW up
 * to date first: items marked dirty since the last publish are re-linked
 * with mv_hnsw_update, items added since are inserted, and with SQ8 the
 * quantiser is re-fitted to the current value ranges (cheap, O(n dim)),
 * because learned vectors drift out of the range the codes were fitted to.
 * The file itself is written by mv_snapshot_publish (temp file, fsync,
 * rename, fsync of the directory).
 *
 * Beside generation G's snapshot the trainer keeps its dedupe set
 * (model/dedupe.h) as snapshot-G.mvs.dedupe: trainer-private, never read
 * by nginx, the snapshot format unchanged.  It is written (crash-safely)
 * before the snapshot is published, so every published generation has the
 * set that matches its stream positions; a crash between the two leaves a
 * side file without its snapshot, which the next publish of that
 * generation replaces or the pruning removes.  Side files go with their
 * snapshots: after a publish, those of generations no longer present.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "model/trainer.h"
#include "model/trainer_internal.h"
#include "publish/trainer_snapshot.h"

#define DEDUPE_PREFIX  "snapshot-"
#define DEDUPE_SUFFIX  ".mvs.dedupe"


int
mvw_trainer_dedupe_path(const char *dir, uint64_t generation, char *buf,
    size_t len, mv_err_t *err)
{
    char  name[64];
    int   n;

    mv_seqname_format(DEDUPE_PREFIX, generation, DEDUPE_SUFFIX, name,
                      sizeof(name));
    n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t) n >= len) {
        return mv_err_set(err, "path too long: %s", dir);
    }
    return MV_OK;
}


/* Removes side files whose snapshot generation is gone.  Best effort. */
static void
prune_dedupe(const char *dir)
{
    DIR            *dh;
    struct dirent  *de;
    uint64_t       *gens, g;
    size_t          n, i;
    char            path[PATH_MAX];

    if (mv_snapshot_generations(dir, &gens, &n, NULL) != MV_OK) {
        return;
    }
    dh = opendir(dir);
    if (dh == NULL) {
        free(gens);
        return;
    }
    while ((de = readdir(dh)) != NULL) {
        if (!mv_seqname_parse(de->d_name, DEDUPE_PREFIX, DEDUPE_SUFFIX, &g)) {
            continue;
        }
        for (i = 0; i < n && gens[i] != g; i++) {
            /* look for its snapshot */
        }
        if (i == n
            && mvw_trainer_dedupe_path(dir, g, path, sizeof(path), NULL)
               == MV_OK)
        {
            unlink(path);
        }
    }
    closedir(dh);
    free(gens);
}


int
mvw_trainer_restore_dedupe(mvw_trainer_t *t, const char *dir,
    const mv_snapshot_view_t *v, mv_err_t *err)
{
    char  path[PATH_MAX];

    mvw_dedupe_clear(&t->dedupe);
    if (t->dedupe.window == 0 || v->n_positions == 0) {
        return MV_OK;
    }
    if (mvw_trainer_dedupe_path(dir, v->generation, path, sizeof(path), err)
        != MV_OK
        || mvw_dedupe_load(&t->dedupe, path, err) != MV_OK)
    {
        t->st.dedupe_lost++;
        return MV_ERR;
    }
    return MV_OK;
}


/* Brings the kept graph up to date with the model's item vectors. */
static int
sync_index(mvw_trainer_t *t, mv_err_t *err)
{
    uint32_t          n = t->items.n, have, moved = 0;
    mv_hnsw_params_t  hp;

    if (t->hnsw == NULL) {
        mvw_trainer_hnsw_params(t, &hp);
        t->hnsw = mv_hnsw_new(&hp, n, err);
        if (t->hnsw == NULL) {
            return MV_ERR;
        }
    }

    have = (uint32_t) mv_hnsw_size(t->hnsw);
    if (t->p.sq8 && n > 0) {
        mv_hnsw_train_quantizer(t->hnsw, mvw_mf_item(t->mf, 0), n);
    }
    for (uint32_t i = 0; i < have && i < n; i++) {
        if (t->item_dirty[i]) {
            if (mv_hnsw_update(t->hnsw, i, mvw_mf_item(t->mf, i), err)
                != MV_OK)
            {
                return MV_ERR;
            }
            moved++;
        }
    }
    for (uint32_t i = have; i < n; i++) {
        if (mv_hnsw_add(t->hnsw, mvw_mf_item(t->mf, i), err) == UINT32_MAX) {
            return MV_ERR;
        }
        moved++;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (mv_hnsw_set_deleted(t->hnsw, i,
                                (t->item_flags[i] & MV_ITEM_DELETED) != 0,
                                err) != MV_OK)
        {
            return MV_ERR;
        }
        t->item_dirty[i] = 0;
    }

    t->st.last_reinserted = moved;
    return MV_OK;
}


int
mvw_trainer_publish(mvw_trainer_t *t, const char *dir,
    const mv_stream_pos_t *positions, size_t n_pos, int64_t now_ms,
    char *path_out, size_t path_out_len, mv_err_t *err)
{
    mv_snapshot_input_t   in;
    mv_hnsw_graph_t       g;
    mv_item_meta_t       *meta = NULL;
    const char          **item_ids = NULL, **user_ids = NULL;
    const char          **cat_names = NULL;
    uint32_t              ni = t->items.n, nu = t->users.n;
    uint32_t              nc = t->categories.n;
    int64_t               t0 = mv_clock_monotonic_us();
    int                   rc = MV_ERR;

    if (n_pos > MV_SNAPSHOT_MAX_POSITIONS) {
        return mv_err_set(err, "%zu stream positions, at most %d", n_pos,
                          MV_SNAPSHOT_MAX_POSITIONS);
    }
    if (sync_index(t, err) != MV_OK) {
        return MV_ERR;
    }

    meta = calloc(ni ? ni : 1, sizeof(*meta));
    item_ids = mvw_idmap_pointers(&t->items);
    user_ids = mvw_idmap_pointers(&t->users);
    cat_names = mvw_idmap_pointers(&t->categories);
    if (meta == NULL || item_ids == NULL || user_ids == NULL
        || cat_names == NULL)
    {
        mv_err_set(err, "out of memory");
        goto done;
    }

    for (uint32_t i = 0; i < ni; i++) {
        double  pop = mvw_trainer_popularity(t, i, now_ms);

        meta[i].category = t->item_category[i];
        meta[i].flags = t->item_flags[i];
        meta[i].popularity = (float) pop;
        meta[i].created_at_ms = t->item_created_ms[i];
    }

    mv_hnsw_graph(t->hnsw, &g);

    memset(&in, 0, sizeof(in));
    in.generation = t->st.generation + 1;
    in.created_at_ms = now_ms;
    in.dim = t->p.mf.dim;
    in.metric = t->p.metric;
    in.n_items = ni;
    in.item_ids = item_ids;
    in.item_vectors = ni ? mvw_mf_item(t->mf, 0) : NULL;
    in.item_meta = meta;
    in.n_categories = nc;
    in.category_names = cat_names;
    in.graph = &g;
    in.n_users = nu;
    in.user_ids = user_ids;
    in.user_vectors = nu ? mvw_mf_user(t->mf, 0) : NULL;
    in.n_positions = (uint32_t) n_pos;
    in.positions = positions;

    if (t->dedupe.window > 0) {
        char  side[PATH_MAX];

        if (mvw_trainer_dedupe_path(dir, in.generation, side, sizeof(side),
                                    err) != MV_OK
            || mvw_dedupe_save(&t->dedupe, side, err) != MV_OK)
        {
            goto done;
        }
    }

    if (mv_snapshot_publish(dir, &in, t->p.keep, path_out, path_out_len,
                            err) != MV_OK)
    {
        goto done;
    }
    prune_dedupe(dir);

    /* the published popularity is the new reference: same values on a
       restore from this file */
    for (uint32_t i = 0; i < ni; i++) {
        t->item_pop[i] = meta[i].popularity;
        t->item_pop_ms[i] = now_ms;
    }

    t->st.generation++;
    t->st.publishes++;
    t->st.pending = 0;
    t->st.last_publish_ms = now_ms;
    t->st.last_publish_s = (double) (mv_clock_monotonic_us() - t0) / 1e6;
    rc = MV_OK;

done:
    free(meta);
    free(item_ids);
    free(user_ids);
    free(cat_names);
    return rc;
}
