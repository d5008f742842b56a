/*
 * trainer_snapshot.c -- the trainer's side of a publish (see
 * trainer_snapshot.h): the synchronous publish, taking a publish's result,
 * and restoring from a generation (its items, its users segment by
 * segment, its dedupe set).
 *
 * Beside generation G the trainer keeps its dedupe set (model/dedupe.h)
 * as gen-G.mvm.dedupe: trainer-private, never read by nginx.  The
 * publisher writes it before the manifest, so every published generation
 * has the set that matches its stream positions; pruning removes it with
 * its manifest.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "model/trainer_internal.h"
#include "publish/publish_batch.h"
#include "publish/trainer_snapshot.h"


static void
publisher_free(void *p)
{
    mvw_publisher_free(p);
}


mvw_publisher_t *
mvw_trainer_publisher(mvw_trainer_t *t, const char *dir, mv_err_t *err)
{
    if (t->pub != NULL) {
        if (strcmp(t->pub_dir, dir) == 0) {
            return t->pub;
        }
        /* another directory: its publisher gives the graph back, and the
           new one has no user segment yet, so every user goes */
        t->hnsw = mvw_publisher_release_index(t->pub);
        t->pub_free(t->pub);
        t->pub = NULL;
    }
    if (strlen(dir) >= sizeof(t->pub_dir)) {
        mv_err_set(err, "path too long: %s", dir);
        return NULL;
    }
    t->pub = mvw_publisher_new(t, dir, t->p.keep ? t->p.keep : 1, err);
    if (t->pub == NULL) {
        return NULL;
    }
    t->pub_free = publisher_free;
    strcpy(t->pub_dir, dir);
    mvw_trainer_all_users_changed(t);
    return t->pub;
}


int
mvw_trainer_resume(mvw_trainer_t *t, const char *dir,
    const mv_generation_t *g, mv_err_t *err)
{
    mvw_publisher_t  *pub = mvw_trainer_publisher(t, dir, err);

    if (pub == NULL || mvw_publisher_resume(pub, g, err) != MV_OK) {
        return MV_ERR;
    }
    if (mv_generation_manifest(g) != NULL) {
        return mvw_trainer_users_published(t, err);
    }
    return MV_OK;
}


void
mvw_trainer_published(mvw_trainer_t *t, const mvw_publish_batch_t *b,
    const mvw_publish_report_t *r)
{
    if (!r->ok) {
        mvw_trainer_unfreeze(t, b);
        return;
    }
    t->st.generation = b->generation;
    t->st.publishes++;
    t->st.pending -= b->records < t->st.pending ? b->records : t->st.pending;
    t->st.last_publish_ms = b->now_ms;
    t->st.last_publish_s = r->total_s;
    t->st.last_reinserted = r->reinserted;
}


int
mvw_trainer_publish(mvw_trainer_t *t, const char *dir,
    const mv_stream_pos_t *positions, size_t n_pos, int64_t now_ms,
    char *path_out, size_t path_out_len, mv_err_t *err)
{
    mvw_publisher_t       *pub;
    mvw_publish_batch_t    b;
    mvw_publish_report_t   r;
    char                   name[64];

    pub = mvw_trainer_publisher(t, dir, err);
    if (pub == NULL
        || mvw_trainer_freeze(t, positions, n_pos, now_ms, &b, err) != MV_OK)
    {
        return MV_ERR;
    }
    mvw_publisher_run(pub, &b, &r);
    mvw_trainer_published(t, &b, &r);
    mvw_publish_batch_free(&b);
    if (!r.ok) {
        if (err != NULL) {
            *err = r.err;
        }
        return MV_ERR;
    }
    if (path_out != NULL) {
        snprintf(path_out, path_out_len, "%s/%s", dir,
                 mv_gen_manifest_name(r.generation, name, sizeof(name)));
    }
    return MV_OK;
}


int
mvw_trainer_restore_dedupe(mvw_trainer_t *t, const char *dir,
    const mv_generation_t *g, mv_err_t *err)
{
    const mv_generation_info_t  *info = mv_generation_info(g);
    char                         name[64], path[PATH_MAX];
    int                          n;

    mvw_dedupe_clear(&t->dedupe);
    if (t->dedupe.window == 0 || info->n_positions == 0) {
        return MV_OK;
    }
    if (mv_generation_manifest(g) != NULL) {
        mv_gen_manifest_name(info->generation, name, sizeof(name));
    } else {
        mv_seqname_format("snapshot-", info->generation, ".mvs", name,
                          sizeof(name));
    }
    n = snprintf(path, sizeof(path), "%s/%s.dedupe", dir, name);
    if (n < 0 || (size_t) n >= sizeof(path)) {
        t->st.dedupe_lost++;
        return mv_err_set(err, "path too long: %s", dir);
    }
    if (mvw_dedupe_load(&t->dedupe, path, err) != MV_OK) {
        t->st.dedupe_lost++;
        return MV_ERR;
    }
    return MV_OK;
}


int
mvw_trainer_restore_generation(mvw_trainer_t *t, const mv_generation_t *g,
    mv_err_t *err)
{
    const mv_generation_info_t  *info = mv_generation_info(g);

    if (mvw_trainer_restore(t, mv_generation_items(g), err) != MV_OK) {
        return MV_ERR;
    }
    for (uint32_t i = 1; i < info->n_segments; i++) {
        if (mvw_trainer_restore_users(t, mv_generation_segment(g, i), err)
            != MV_OK)
        {
            return MV_ERR;
        }
    }
    t->st.generation = info->generation;
    mvw_trainer_all_users_changed(t);
    return MV_OK;
}
