/*
 * publish_batch.c -- freezing the trainer's changes into a batch a
 * publisher writes (see publish_batch.h).  Runs on the trainer's thread;
 * everything the batch holds is a copy, nothing points into the trainer.
 */
#include <stdlib.h>
#include <string.h>

#include "model/trainer_internal.h"
#include "publish/publish_batch.h"


/* Sizes the change marks for users [0, n): all unmarked, none listed. */
static int
marks_reset(mvw_trainer_t *t, uint32_t n, mv_err_t *err)
{
    uint8_t   *mark;
    uint32_t  *list;

    mark = calloc(n ? n : 1, 1);
    list = malloc((n ? n : 1) * sizeof(*list));
    if (mark == NULL || list == NULL) {
        free(mark);
        free(list);
        return mv_err_set(err, "out of memory for the change marks of %u "
                          "users", n);
    }
    free(t->user_mark);
    free(t->user_list);
    t->user_mark = mark;
    t->user_list = list;
    t->n_user_list = 0;
    t->users_frozen = n;
    return MV_OK;
}


void
mvw_publish_batch_free(mvw_publish_batch_t *b)
{
    mvw_idmap_free(&b->item_ids);
    mvw_idmap_free(&b->categories);
    mvw_idmap_free(&b->user_ids);
    free(b->item_vectors);
    free(b->item_meta);
    free(b->item_moved);
    free(b->user_index);
    free(b->user_vectors);
    free(b->dedupe);
    memset(b, 0, sizeof(*b));
    mvw_idmap_init(&b->item_ids);
    mvw_idmap_init(&b->categories);
    mvw_idmap_init(&b->user_ids);
}


/* The users to carry: the listed old ones, then every new one. */
static int
freeze_users(mvw_trainer_t *t, mvw_publish_batch_t *b, mv_err_t *err)
{
    uint32_t     dim = t->p.mf.dim, n, k = 0, u, idx;
    const char  *id;
    int          added;

    n = t->n_user_list + (t->users.n - t->users_frozen);
    b->user_index = malloc((n ? n : 1) * sizeof(*b->user_index));
    b->user_vectors = malloc(((size_t) n ? n : 1) * dim * sizeof(float));
    if (b->user_index == NULL || b->user_vectors == NULL) {
        return mv_err_set(err, "out of memory for %u changed users", n);
    }
    for (uint32_t j = 0; j < t->n_user_list; j++) {
        b->user_index[k++] = t->user_list[j];
    }
    for (u = t->users_frozen; u < t->users.n; u++) {
        b->user_index[k++] = u;
    }
    for (k = 0; k < n; k++) {
        u = b->user_index[k];
        id = mvw_idmap_get(&t->users, u);
        if (mvw_idmap_intern(&b->user_ids, id, strlen(id), &idx, &added, err)
            != MV_OK)
        {
            return MV_ERR;
        }
        memcpy(b->user_vectors + (size_t) k * dim, mvw_mf_user(t->mf, u),
               dim * sizeof(float));
    }
    b->n_changed = n;
    b->n_users_total = t->users.n;
    return MV_OK;
}


int
mvw_trainer_freeze(mvw_trainer_t *t, const mv_stream_pos_t *positions, size_t n_pos, int64_t now_ms,
    mvw_publish_batch_t *b, mv_err_t *err)
{
    uint32_t  ni = t->items.n, dim = t->p.mf.dim;

    memset(b, 0, sizeof(*b));
    mvw_idmap_init(&b->item_ids);
    mvw_idmap_init(&b->categories);
    mvw_idmap_init(&b->user_ids);

    if (n_pos > MV_SNAPSHOT_MAX_POSITIONS) {
        return mv_err_set(err, "%zu stream positions, at most %d", n_pos,
                          MV_SNAPSHOT_MAX_POSITIONS);
    }
    b->now_ms = now_ms;
    b->records = t->st.pending;
    b->dim = dim;
    b->metric = t->p.metric;
    b->n_items = ni;
    b->n_positions = (uint32_t) n_pos;
    if (n_pos > 0) {
        memcpy(b->positions, positions, n_pos * sizeof(*positions));
    }

    b->item_vectors = malloc(((size_t) ni ? ni : 1) * dim * sizeof(float));
    b->item_meta = calloc(ni ? ni : 1, sizeof(*b->item_meta));
    b->item_moved = malloc(ni ? ni : 1);
    if (b->item_vectors == NULL || b->item_meta == NULL
        || b->item_moved == NULL)
    {
        mv_err_set(err, "out of memory for a batch of %u items", ni);
        goto failed;
    }
    if (mvw_idmap_copy(&b->item_ids, &t->items, err) != MV_OK
        || mvw_idmap_copy(&b->categories, &t->categories, err) != MV_OK
        || freeze_users(t, b, err) != MV_OK
        || (t->dedupe.window > 0
            && mvw_dedupe_encode(&t->dedupe, &b->dedupe, &b->dedupe_len, err)
               != MV_OK))
    {
        goto failed;
    }
    if (ni > 0) {
        memcpy(b->item_vectors, mvw_mf_item(t->mf, 0),
               (size_t) ni * dim * sizeof(float));
        memcpy(b->item_moved, t->item_dirty, ni);
    }
    for (uint32_t i = 0; i < ni; i++) {
        b->item_meta[i].category = t->item_category[i];
        b->item_meta[i].flags = t->item_flags[i];
        b->item_meta[i].popularity =
            (float) mvw_trainer_popularity(t, i, now_ms);
        b->item_meta[i].created_at_ms = t->item_created_ms[i];
    }

    /* Only now that nothing can fail: the next change set starts. */
    if (marks_reset(t, t->users.n, err) != MV_OK) {
        goto failed;
    }
    for (uint32_t i = 0; i < ni; i++) {
        t->item_pop[i] = b->item_meta[i].popularity;
        t->item_pop_ms[i] = now_ms;
        t->item_dirty[i] = 0;
    }
    return MV_OK;

failed:
    mvw_publish_batch_free(b);
    return MV_ERR;
}


void
mvw_trainer_unfreeze(mvw_trainer_t *t, const mvw_publish_batch_t *b)
{
    for (uint32_t i = 0; i < b->n_items && i < t->items.n; i++) {
        if (b->item_moved[i]) {
            t->item_dirty[i] = 1;
        }
    }
    for (uint32_t k = 0; k < b->n_changed; k++) {
        mvw_trainer_user_changed(t, b->user_index[k]);
    }
}


void
mvw_trainer_all_users_changed(mvw_trainer_t *t)
{
    t->users_frozen = 0;
    t->n_user_list = 0;
}


int
mvw_trainer_users_published(mvw_trainer_t *t, mv_err_t *err)
{
    return marks_reset(t, t->users.n, err);
}
