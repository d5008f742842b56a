/*
 * trainer.c -- the online trainer: catalogue, model and replay (see
 * trainer.h for the behaviour; publishing is publish/trainer_snapshot.c).
 *
 * Per-item arrays grow together (items_grow) before a new item is interned,
 * so a failed allocation leaves the catalogue as it was: a record is
 * either applied whole or refused.  The only step that cannot be undone is
 * the learning itself, which comes last.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actlog.h"
#include "data/dataset.h"
#include "model/learn.h"
#include "model/sampler.h"
#include "model/trainer.h"
#include "model/trainer_internal.h"

#define REBUILD_MIN        1024     /* new events between sampler rebuilds */
#define LOSS_EMA_ALPHA     0.001
#define POPULARITY_MAX     3e38     /* stays a finite float */



void
mvw_trainer_params_default(mvw_trainer_params_t *p)
{
    memset(p, 0, sizeof(*p));
    mvw_mf_params_default(&p->mf);
    p->mf.dim = 64;
    p->mf.loss = MVW_MF_SOFTMAX;
    p->mf.optim = MVW_OPTIM_ADAM;
    p->mf.lr = 0.05f;
    p->mf.l2 = 0.0f;
    p->mf.item_bias = 1;
    p->mf.seed = 42;
    p->neg_ratio = 4.0;
    p->sampler_power = MVW_SAMPLER_POWER;
    mvw_action_weights_default(p->action_weights);
    p->replay_ratio = 1.0;
    p->replay_window = 100000;
    p->half_life_ms = 7.0 * 86400 * 1000;
    p->metric = MV_METRIC_IP;
    p->hnsw_m = 16;
    p->hnsw_ef_construction = 200;
    p->sq8 = 1;
    p->keep = 3;
    p->seed = 42;
}


mvw_trainer_t *
mvw_trainer_new(const mvw_trainer_params_t *p, mv_err_t *err)
{
    mvw_trainer_t  *t;

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        mv_err_set(err, "out of memory");
        return NULL;
    }

    t->p = *p;
    mvw_idmap_init(&t->users);
    mvw_idmap_init(&t->items);
    mvw_idmap_init(&t->categories);
    mvw_sampler_init(&t->sampler);
    mv_rng_seed(&t->rng, p->seed ^ 0x9e3779b97f4a7c15ull);
    mvw_dedupe_init(&t->dedupe, p->dedupe_window);

    t->mf = mvw_mf_new(&p->mf, err);
    if (t->mf == NULL) {
        goto failed;
    }
    if (mvw_learner_init(&t->learner, t->mf, &t->sampler, p->neg_ratio,
                         p->seed, err) != MV_OK)
    {
        mvw_mf_free(t->mf);
        t->mf = NULL;
        goto failed;
    }

    t->vec = malloc(p->mf.dim * sizeof(float));
    if (t->vec == NULL) {
        mv_err_set(err, "out of memory");
        goto failed;
    }
    if (p->replay_window > 0) {
        t->ring = malloc(p->replay_window * sizeof(*t->ring));
        if (t->ring == NULL) {
            mv_err_set(err, "out of memory for a replay window of %zu",
                       p->replay_window);
            goto failed;
        }
    }

    return t;

failed:
    mvw_trainer_free(t);
    return NULL;
}


void
mvw_trainer_free(mvw_trainer_t *t)
{
    if (t == NULL) {
        return;
    }
    if (t->pub != NULL) {
        t->pub_free(t->pub);
    }
    if (t->mf != NULL) {
        mvw_learner_free(&t->learner);
        mvw_mf_free(t->mf);
    }
    mvw_sampler_free(&t->sampler);
    mvw_idmap_free(&t->users);
    mvw_idmap_free(&t->items);
    mvw_idmap_free(&t->categories);
    free(t->item_category);
    free(t->item_flags);
    free(t->item_pop);
    free(t->item_pop_ms);
    free(t->item_created_ms);
    free(t->item_dirty);
    free(t->user_mark);
    free(t->user_list);
    free(t->counts);
    mv_hnsw_free(t->hnsw);
    free(t->ring);
    free(t->vec);
    mvw_dedupe_free(&t->dedupe);
    free(t);
}


/* Makes room for n items in every per-item array. */
static int
items_grow(mvw_trainer_t *t, size_t n, mv_err_t *err)
{
    size_t   cap = t->items_cap ? t->items_cap : 256;
    void    *q;

    if (n <= t->items_cap) {
        return MV_OK;
    }
    while (cap < n) {
        cap *= 2;
    }
    if (cap > UINT32_MAX) {
        return mv_err_set(err, "too many items");
    }

#define GROW(field)                                                         \
    q = realloc(t->field, cap * sizeof(*t->field));                         \
    if (q == NULL) {                                                        \
        return mv_err_set(err, "out of memory for %zu items", cap);         \
    }                                                                       \
    t->field = q;

    GROW(item_category)
    GROW(item_flags)
    GROW(item_pop)
    GROW(item_pop_ms)
    GROW(item_created_ms)
    GROW(item_dirty)
    GROW(counts)
#undef GROW

    t->items_cap = (uint32_t) cap;
    return MV_OK;
}


/*
 * value, known at from_ms, seen from to_ms: halved per half-life forward,
 * doubled per half-life backward (so a sum kept at any reference time is
 * the same sum: an event dated after a publish adds up the same way
 * before and after a restore).  Capped so that absurd timestamps cannot
 * make it infinite.
 */
static double
decay(const mvw_trainer_t *t, double value, int64_t from_ms, int64_t to_ms)
{
    double  v;

    if (t->p.half_life_ms <= 0.0 || to_ms == from_ms) {
        return value;
    }
    v = value * exp2(-((double) to_ms - (double) from_ms)
                     / t->p.half_life_ms);
    return v < POPULARITY_MAX ? v : POPULARITY_MAX;
}


double
mvw_trainer_popularity(const mvw_trainer_t *t, uint32_t i, int64_t now_ms)
{
    return decay(t, t->item_pop[i], t->item_pop_ms[i], now_ms);
}


static void
add_popularity(mvw_trainer_t *t, uint32_t i, double w, int64_t time_ms)
{
    double  v;

    if (time_ms >= t->item_pop_ms[i]) {
        v = decay(t, t->item_pop[i], t->item_pop_ms[i], time_ms) + w;
        t->item_pop_ms[i] = time_ms;
    } else {
        v = t->item_pop[i] + decay(t, w, time_ms, t->item_pop_ms[i]);
    }
    t->item_pop[i] = v < POPULARITY_MAX ? v : POPULARITY_MAX;
}


/*
 * Interns item id, creating its row (vector from vec, or the initialiser
 * when NULL) when new.  Sets *idx and *added.
 */
static int
intern_item(mvw_trainer_t *t, const char *id, const float *vec,
    int64_t time_ms, uint32_t *idx, int *added, mv_err_t *err)
{
    int64_t   found = mvw_idmap_find(&t->items, id, strlen(id));
    uint32_t  i;

    *added = 0;
    if (found >= 0) {
        *idx = (uint32_t) found;
        return MV_OK;
    }

    /* The model row comes first.  If interning then fails, the row stays
       as a spare that the next new item takes over (the model may have
       one row more than the catalogue, never fewer). */
    i = t->items.n;
    if (items_grow(t, (size_t) i + 1, err) != MV_OK) {
        return MV_ERR;
    }
    if (mvw_mf_n_items(t->mf) == i) {
        if (mvw_mf_add_items(t->mf, 1, vec, err) != MV_OK) {
            return MV_ERR;
        }
    } else if (vec != NULL && mvw_mf_set_item(t->mf, i, vec, err) != MV_OK) {
        return MV_ERR;
    }
    if (mvw_idmap_intern(&t->items, id, strlen(id), idx, added, err)
        != MV_OK)
    {
        return MV_ERR;
    }

    t->item_category[i] = MV_CATEGORY_NONE;
    t->item_flags[i] = 0;
    t->item_pop[i] = 0.0;
    t->item_pop_ms[i] = time_ms;
    t->item_created_ms[i] = time_ms;
    t->item_dirty[i] = 1;
    t->counts[i] = 0.0;
    t->st.new_items++;
    return MV_OK;
}


/* Interns user id, creating its row when new (same spare-row rule). */
static int
intern_user(mvw_trainer_t *t, const char *id, uint32_t *idx, mv_err_t *err)
{
    int64_t   found = mvw_idmap_find(&t->users, id, strlen(id));
    int       added;

    if (found >= 0) {
        *idx = (uint32_t) found;
        return MV_OK;
    }
    if (mvw_mf_n_users(t->mf) == t->users.n
        && mvw_mf_add_users(t->mf, 1, NULL, err) != MV_OK)
    {
        return MV_ERR;
    }
    if (mvw_idmap_intern(&t->users, id, strlen(id), idx, &added, err)
        != MV_OK)
    {
        return MV_ERR;
    }
    t->st.new_users++;
    return MV_OK;
}


static int
category_of(mvw_trainer_t *t, const char *name, uint32_t *idx, mv_err_t *err)
{
    int  added;

    if (name[0] == '\0') {
        *idx = MV_CATEGORY_NONE;
        return MV_OK;
    }
    return mvw_idmap_intern(&t->categories, name, strlen(name), idx, &added,
                            err);
}


/* Rebuilds the negative sampler over every item's current popularity. */
static int
rebuild_sampler(mvw_trainer_t *t, mv_err_t *err)
{
    uint32_t  n = t->items.n;

    /* power 0 is uniform over every live item, never-seen ones included
       (0^0 = 1): an item nothing has pushed down would otherwise keep its
       initial score, above every item the logistic loss has trained */
    for (uint32_t i = 0; i < n; i++) {
        t->counts[i] = (t->item_flags[i] & MV_ITEM_DELETED) ? 0.0
                       : t->p.sampler_power == 0.0 ? 1.0
                       : t->item_pop[i];
    }
    if (mvw_sampler_build(&t->sampler, t->counts, n, t->p.sampler_power,
                          err) != MV_OK)
    {
        return MV_ERR;
    }
    t->since_rebuild = 0;
    t->sampler_stale = 0;
    return MV_OK;
}


static int
apply_item(mvw_trainer_t *t, const char *payload, size_t len,
    int64_t now_ms, mv_err_t *err)
{
    mv_item_event_t   *ev = &t->item_ev;
    mv_event_error_t   e;
    uint32_t           dim = t->p.mf.dim, i, cat;
    int                added;

    if (mv_item_parse(payload, len, MV_ORIGIN_DATA, now_ms, dim, t->vec,
                      dim, ev, &e) != MV_OK)
    {
        return mv_err_set(err, "item record refused: %s: %s", e.error,
                          e.detail);
    }
    if (t->p.mf.item_bias) {
        t->vec[dim - 1] = 0.0f;             /* the bias starts at 0 */
    }
    if (category_of(t, ev->category, &cat, err) != MV_OK
        || intern_item(t, ev->item_id, t->vec, ev->created_at_ms, &i,
                       &added, err) != MV_OK)
    {
        return MVW_TRAINER_FAILED;
    }

    /* A new item takes its declared popularity and creation time; a
       repeated post updates the category, time and deleted flag, and keeps
       what the stream has taught about the item (vector, popularity). */
    if (ev->category[0] != '\0') {
        t->item_category[i] = cat;
    }
    t->item_created_ms[i] = ev->created_at_ms;
    if (added) {
        t->item_pop[i] = ev->popularity;
    }
    if (ev->deleted) {
        t->item_flags[i] |= MV_ITEM_DELETED;
    } else {
        t->item_flags[i] &= ~MV_ITEM_DELETED;
    }
    t->item_dirty[i] = 1;
    t->st.items++;
    return MV_OK;
}


static void
mark_touched(mvw_trainer_t *t, uint32_t item)
{
    t->item_dirty[item] = 1;
    for (size_t k = 0; k < t->learner.n_last; k++) {
        t->item_dirty[t->learner.negs[k]] = 1;
    }
}


static void
learn(mvw_trainer_t *t, uint32_t user, uint32_t item, float weight)
{
    double  loss;
    size_t  n;

    loss = mvw_learn_one(&t->learner, user, item, weight);
    mark_touched(t, item);
    mvw_trainer_user_changed(t, user);
    t->st.updates++;
    t->st.loss_ema = t->st.updates == 1 ? loss
                     : (1.0 - LOSS_EMA_ALPHA) * t->st.loss_ema
                       + LOSS_EMA_ALPHA * loss;

    if (t->ring == NULL) {
        return;
    }

    t->ring[t->ring_head].user = user;
    t->ring[t->ring_head].item = item;
    t->ring[t->ring_head].weight = weight;
    t->ring[t->ring_head].time_ms = 0;
    t->ring_head = (t->ring_head + 1) % t->p.replay_window;
    if (t->ring_len < t->p.replay_window) {
        t->ring_len++;
    }

    for (n = mvw_learn_count(&t->rng, t->p.replay_ratio); n > 0; n--) {
        const mvw_interaction_t  *x;

        x = &t->ring[mv_rng_next(&t->rng) % t->ring_len];
        mvw_learn_one(&t->learner, x->user, x->item, x->weight);
        mark_touched(t, x->item);
        mvw_trainer_user_changed(t, x->user);
        t->st.updates++;
        t->st.replayed++;
    }
}


/*
 * What a training example says of an item the trainer has not been told
 * about by a features record: the category when it has none, the creation
 * time when the action has just created its row.  The features topic stays
 * the authority: what it said is never overwritten from here.
 */
static int
fill_in_features(mvw_trainer_t *t, uint32_t i, int added,
    const mv_item_features_t *f, mv_err_t *err)
{
    uint32_t  cat;

    if (t->item_category[i] == MV_CATEGORY_NONE && f->category[0] != '\0') {
        if (category_of(t, f->category, &cat, err) != MV_OK) {
            return MV_ERR;
        }
        t->item_category[i] = cat;
        t->item_dirty[i] = 1;
    }
    if (added) {
        t->item_created_ms[i] = f->created_at_ms;
    }
    return MV_OK;
}


/*
 * Learns from a parsed action once its client event id, if it has one,
 * was found new (dedupe_action); f as in learn_action.
 */
static int
learn_new_action(mvw_trainer_t *t, const mv_action_t *a,
    const mv_item_features_t *f, mv_err_t *err)
{
    uint32_t  u, i;
    int       added;
    float     w;

    w = t->p.action_weights[a->type];
    if (!(w > 0.0f)) {
        t->st.actions++;
        t->st.not_positive++;
        return MV_OK;
    }

    /* Everything that can fail comes before anything that cannot be
       undone: the rows exist (a new user or item stays created if a later
       step failed, which is harmless: ids are not counts). */
    if (intern_user(t, a->user_id, &u, err) != MV_OK
        || intern_item(t, a->item_id, NULL, a->timestamp_ms, &i, &added, err)
           != MV_OK
        || (f != NULL && fill_in_features(t, i, added, f, err) != MV_OK))
    {
        return MVW_TRAINER_FAILED;
    }

    /* An item the sampler cannot draw yet (new, or without popularity at
       the last build) is never anyone's negative, so a stream of new
       items would stay unseparated until the periodic rebuild: rebuild
       early once such items reach 1/32 of the catalogue. */
    if (i >= t->sampler.n || mvw_sampler_prob(&t->sampler, i) <= 0.0) {
        t->sampler_stale++;
    }
    add_popularity(t, i, w, a->timestamp_ms);
    if (t->sampler.n == 0
        || t->since_rebuild >= REBUILD_MIN + t->items.n / 16
        || t->sampler_stale * 32 >= t->sampler.n)
    {
        if (rebuild_sampler(t, err) != MV_OK) {
            return MVW_TRAINER_FAILED;
        }
    }
    t->since_rebuild++;
    t->st.actions++;
    learn(t, u, i, w);
    return MV_OK;
}


/*
 * Learns from a parsed action; f, when not NULL, is the item's side of a
 * training example (fill_in_features).  An action marked as the client's
 * retry key whose event id is in the dedupe window is not applied
 * (MVW_TRAINER_DUPLICATE); a new one is applied, then remembered (the set
 * is reserved first, so remembering cannot fail after applying).
 */
static int
learn_action(mvw_trainer_t *t, const mv_action_t *a,
    const mv_item_features_t *f, mv_err_t *err)
{
    uint64_t  h;
    int       rc;

    if (!a->client_event_id || t->dedupe.window == 0) {
        return learn_new_action(t, a, f, err);
    }

    h = mvw_dedupe_hash(a->event_id);
    if (mvw_dedupe_contains(&t->dedupe, h)) {
        t->st.duplicates++;
        memcpy(t->last_duplicate, a->event_id, sizeof(t->last_duplicate));
        return MVW_TRAINER_DUPLICATE;
    }
    if (mvw_dedupe_reserve(&t->dedupe, err) != MV_OK) {
        return MVW_TRAINER_FAILED;
    }
    rc = learn_new_action(t, a, f, err);
    if (rc == MV_OK) {
        mvw_dedupe_add(&t->dedupe, h, NULL);
    }
    return rc;
}


static int
apply_action(mvw_trainer_t *t, const char *payload, size_t len,
    int64_t now_ms, mv_err_t *err)
{
    mv_action_t        a;
    mv_event_error_t   e;

    if (mv_action_parse(payload, len, MV_ORIGIN_DATA, now_ms, &a, &e)
        != MV_OK)
    {
        return mv_err_set(err, "action record refused: %s: %s", e.error,
                          e.detail);
    }
    return learn_action(t, &a, NULL, err);
}


/* A training example: its action, with what it says of the item. */
static int
apply_example(mvw_trainer_t *t, const char *payload, size_t len,
    int64_t now_ms, mv_err_t *err)
{
    mv_example_t      *x = &t->example;
    mv_event_error_t   e;

    if (mv_example_parse(payload, len, now_ms, x, &e) != MV_OK) {
        return mv_err_set(err, "training example refused: %s: %s", e.error,
                          e.detail);
    }
    return learn_action(t, &x->action, x->has_features ? &x->features : NULL,
                        err);
}


int
mvw_trainer_apply(mvw_trainer_t *t, uint16_t type, const char *payload,
    size_t len, int64_t now_ms, mv_err_t *err)
{
    int  rc;

    switch (type) {
    case MV_RECORD_ACTION:
        rc = apply_action(t, payload, len, now_ms, err);
        break;
    case MV_RECORD_ITEM:
        rc = apply_item(t, payload, len, now_ms, err);
        break;
    case MV_RECORD_EXAMPLE:
        rc = apply_example(t, payload, len, now_ms, err);
        break;
    default:
        rc = mv_err_set(err, "unknown record type %u", (unsigned) type);
    }

    if (rc == MV_ERR) {
        t->st.invalid++;
        return MV_ERR;
    }
    if (rc == MVW_TRAINER_DUPLICATE) {
        return rc;
    }
    if (rc != MV_OK) {
        return MVW_TRAINER_FAILED;
    }
    t->st.pending++;
    return MV_OK;
}


void
mvw_trainer_hnsw_params(const mvw_trainer_t *t, mv_hnsw_params_t *hp)
{
    memset(hp, 0, sizeof(*hp));
    hp->dim = t->p.mf.dim;
    hp->metric = t->p.metric;
    hp->M = t->p.hnsw_m;
    hp->ef_construction = t->p.hnsw_ef_construction;
    hp->seed = t->p.seed;
    hp->sq8 = t->p.sq8;
}


int
mvw_trainer_restore_users(mvw_trainer_t *t, const mv_snapshot_view_t *v,
    mv_err_t *err)
{
    uint32_t     dim = t->p.mf.dim, idx;
    const char  *s;
    size_t       len;
    int64_t      found;
    int          added;

    if (v->dim != dim) {
        return mv_err_set(err, "user segment has dim %u, the configuration "
                          "says %u", v->dim, dim);
    }
    if (mvw_mf_n_users(t->mf) != t->users.n) {
        return mv_err_set(err, "restore of users after a failed one");
    }
    for (uint32_t u = 0; u < v->n_users; u++) {
        s = mv_idtable_get(&v->users, u, &len);
        memcpy(t->vec, v->user_vectors + (size_t) u * dim,
               dim * sizeof(float));
        if (t->p.mf.item_bias) {
            t->vec[dim - 1] = 1.0f;
        }
        found = mvw_idmap_find(&t->users, s, len);
        if (found >= 0) {
            if (mvw_mf_set_user(t->mf, (uint32_t) found, t->vec, err)
                != MV_OK)
            {
                return MV_ERR;
            }
            continue;
        }
        if (mvw_mf_add_users(t->mf, 1, t->vec, err) != MV_OK) {
            return MV_ERR;
        }
        if (mvw_idmap_intern(&t->users, s, len, &idx, &added, err) != MV_OK)
        {
            return MV_ERR;
        }
    }
    return MV_OK;
}


int
mvw_trainer_restore(mvw_trainer_t *t, const mv_snapshot_view_t *v,
    mv_err_t *err)
{
    uint32_t          dim = t->p.mf.dim;
    mv_hnsw_params_t  hp;
    const char       *s;
    size_t            len;
    uint32_t          idx;
    int               added;

    if (t->items.n != 0 || t->users.n != 0) {
        return mv_err_set(err, "restore into a trainer that has data");
    }
    if (v->dim != dim) {
        return mv_err_set(err, "snapshot has dim %u, the configuration "
                          "says %u", v->dim, dim);
    }
    if (v->metric != t->p.metric) {
        return mv_err_set(err, "snapshot has metric %d, the configuration "
                          "says %d", (int) v->metric, (int) t->p.metric);
    }

    for (uint32_t c = 0; c < v->n_categories; c++) {
        s = mv_idtable_get(&v->categories, c, &len);
        if (mvw_idmap_intern(&t->categories, s, len, &idx, &added, err)
            != MV_OK)
        {
            return MV_ERR;
        }
    }

    if (items_grow(t, v->n_items, err) != MV_OK
        || mvw_mf_add_items(t->mf, v->n_items, v->item_vectors, err) != MV_OK)
    {
        return MV_ERR;
    }
    for (uint32_t i = 0; i < v->n_items; i++) {
        s = mv_idtable_get(&v->items, i, &len);
        if (mvw_idmap_intern(&t->items, s, len, &idx, &added, err) != MV_OK)
        {
            return MV_ERR;
        }
        t->item_category[i] = v->item_meta[i].category;
        t->item_flags[i] = v->item_meta[i].flags;
        t->item_pop[i] = v->item_meta[i].popularity;
        t->item_pop_ms[i] = v->created_at_ms;
        t->item_created_ms[i] = v->item_meta[i].created_at_ms;
        t->item_dirty[i] = 0;
    }

    if (mvw_trainer_restore_users(t, v, err) != MV_OK) {
        return MV_ERR;
    }

    /* The graph is kept when its shape matches the configuration; a
       changed M or SQ8 setting rebuilds it at the first publish. */
    mvw_trainer_hnsw_params(t, &hp);
    if (v->n_items > 0 && v->graph.M == hp.M
        && (v->graph.codes != NULL) == (hp.sq8 != 0))
    {
        t->hnsw = mv_hnsw_from_graph(&v->graph, &hp, err);
        if (t->hnsw == NULL) {
            return MV_ERR;
        }
    } else {
        for (uint32_t i = 0; i < v->n_items; i++) {
            t->item_dirty[i] = 1;
        }
    }

    t->st.generation = v->generation;
    return rebuild_sampler(t, err);
}


void
mvw_trainer_stats(const mvw_trainer_t *t, mvw_trainer_stats_t *st)
{
    *st = t->st;
    st->n_users = t->users.n;
    st->n_items = t->items.n;
}


mvw_mf_t *
mvw_trainer_model(mvw_trainer_t *t)
{
    return t->mf;
}


int64_t
mvw_trainer_find_item(const mvw_trainer_t *t, const char *id)
{
    return mvw_idmap_find(&t->items, id, strlen(id));
}


const char *
mvw_trainer_user_id(const mvw_trainer_t *t, uint32_t u)
{
    return mvw_idmap_get(&t->users, u);
}


int64_t
mvw_trainer_find_user(const mvw_trainer_t *t, const char *id)
{
    return mvw_idmap_find(&t->users, id, strlen(id));
}


int
mvw_trainer_fit(mvw_trainer_t *t, const mvw_dataset_t *d, uint32_t epochs,
    int (*progress)(void *ctx, uint32_t epoch, double mean_loss), void *ctx,
    mv_err_t *err)
{
    uint32_t  idx;
    int       added;
    int64_t   latest = 0;

    if (t->items.n != 0 || t->users.n != 0) {
        return mv_err_set(err, "offline training needs an empty trainer");
    }

    if (items_grow(t, d->items.n, err) != MV_OK
        || mvw_mf_add_items(t->mf, d->items.n, NULL, err) != MV_OK
        || mvw_mf_add_users(t->mf, d->users.n, NULL, err) != MV_OK)
    {
        return MV_ERR;
    }
    for (uint32_t i = 0; i < d->items.n; i++) {
        const char  *id = mvw_idmap_get(&d->items, i);

        if (mvw_idmap_intern(&t->items, id, strlen(id), &idx, &added, err)
            != MV_OK)
        {
            return MV_ERR;
        }
        t->item_category[i] = MV_CATEGORY_NONE;
        t->item_flags[i] = 0;
        t->item_pop[i] = 0.0;
        t->item_pop_ms[i] = 0;
        t->item_created_ms[i] = 0;
        t->item_dirty[i] = 1;
    }
    for (uint32_t u = 0; u < d->users.n; u++) {
        const char  *id = mvw_idmap_get(&d->users, u);

        if (mvw_idmap_intern(&t->users, id, strlen(id), &idx, &added, err)
            != MV_OK)
        {
            return MV_ERR;
        }
    }

    /* popularity = the sum of weights, undecayed, as of the dataset's
       latest interaction (a publish with a half-life decays it from
       there); created_at = the item's first interaction */
    for (size_t k = 0; k < d->n; k++) {
        const mvw_interaction_t  *x = &d->x[k];

        t->item_pop[x->item] += x->weight;
        if (t->item_created_ms[x->item] == 0
            || x->time_ms < t->item_created_ms[x->item])
        {
            t->item_created_ms[x->item] = x->time_ms;
        }
        if (x->time_ms > latest) {
            latest = x->time_ms;
        }
    }
    for (uint32_t i = 0; i < d->items.n; i++) {
        t->item_pop_ms[i] = latest;
    }

    if (rebuild_sampler(t, err) != MV_OK) {
        return MV_ERR;
    }
    t->learner.lr_decay = t->p.lr_decay;
    if (mvw_learn_fit(&t->learner, d->x, d->n, epochs, progress, ctx, err)
        != MV_OK)
    {
        return MV_ERR;
    }
    t->st.updates += t->learner.steps;
    return MV_OK;
}


void
mvw_trainer_set_generation(mvw_trainer_t *t, uint64_t g)
{
    t->st.generation = g;
}


const char *
mvw_trainer_last_duplicate(const mvw_trainer_t *t)
{
    return t->last_duplicate;
}
