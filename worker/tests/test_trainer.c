/*
 * test_trainer.c -- unit tests of the online trainer (trainer.h), driven
 * by records built in memory with mv_action_encode / mv_item_encode, as
 * the action log carries them:
 *
 *   - apply: an item record creates the item (category, created_at,
 *     declared popularity, content embedding as the vector with the bias
 *     coordinate 0); a repeated post updates the category and keeps the
 *     vector and popularity; an action on unknown ids creates both rows;
 *     weights per action type; weight 0 (Dislike) counts as not positive
 *     and changes nothing; refused records (bad JSON, wrong dim, unknown
 *     record type ...) count as invalid and change nothing, bit for bit;
 *   - popularity: exact sums without decay, w1 2^(-dt/h) + w2 with a
 *     half-life, an out-of-order event decayed by its own age, reads at a
 *     later time;
 *   - learning: repeated actions raise the item's score for the user,
 *     replay_ratio replays about ratio examples per event, the users' bias
 *     coordinate stays exactly 1;
 *   - publish / restore: the published file against the live model (ids,
 *     vectors bit for bit, popularity, categories, positions), generations
 *     and `keep`, a restore giving the same state and the same popularity
 *     arithmetic afterwards, refused restores, and a publish after a
 *     restore re-inserting only the items touched since;
 *   - fit: two groups of users and items learnt apart, popularity as the
 *     summed weights, refused on a non-empty trainer.
 *
 * Tests that write files get their own mkdtemp directory under /tmp (a
 * cmocka setup), removed by the teardown even when they fail.  The tests
 * at the end are regressions of bugs they found, all fixed since.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/tmpdir.h"

#include "actlog.h"
#include "data/dataset.h"
#include "events.h"
#include "model/mf.h"
#include "model/trainer.h"
#include "publish/trainer_snapshot.h"
#include "generation.h"
#include "snapshot.h"
#include "synth.h"

#define DIM     8
#define T0      1704067200000LL           /* 2024-01-01T00:00:00.000Z */
#define HOUR    3600000LL


/* ---- helpers ------------------------------------------------------------ */

static int
file_exists(const char *dir, const char *name)
{
    char         path[512];
    struct stat  st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}


static unsigned
count_snapshots(const char *dir)
{
    DIR            *dh = opendir(dir);
    struct dirent  *de;
    unsigned        n = 0;

    assert_non_null(dh);
    while ((de = readdir(dh)) != NULL) {
        n += strncmp(de->d_name, "gen-", 4) == 0
             && strcmp(de->d_name + strlen(de->d_name) - 4, ".mvm") == 0;
    }
    closedir(dh);
    return n;
}


/* Small, fast parameters: dim 8, no decay, a short replay window. */
static void
small_params(mvw_trainer_params_t *p)
{
    mvw_trainer_params_default(p);
    p->mf.dim = DIM;
    p->half_life_ms = 0.0;
    p->replay_window = 256;
    p->hnsw_m = 8;
    p->hnsw_ef_construction = 40;
}


static mvw_trainer_t *
new_trainer(const mvw_trainer_params_t *p)
{
    mv_err_t        err;
    mvw_trainer_t  *t = mvw_trainer_new(p, &err);

    if (t == NULL) {
        fail_msg("mvw_trainer_new: %s", err.msg);
    }
    return t;
}


/* Applies an item record built with mv_item_encode. */
static int
post_item_err(mvw_trainer_t *t, const char *id, const char *category,
    const float *vec, uint32_t dim, float popularity, int64_t created_ms,
    mv_err_t *err)
{
    static mv_item_event_t  ev;
    static char             buf[65536];
    float                   v[MV_DIM_MAX];
    size_t                  len;

    memset(&ev, 0, sizeof(ev));
    snprintf(ev.item_id, sizeof(ev.item_id), "%s", id);
    snprintf(ev.category, sizeof(ev.category), "%s", category);
    memcpy(v, vec, dim * sizeof(float));
    ev.embedding = v;
    ev.dim = dim;
    ev.popularity = popularity;
    ev.created_at_ms = created_ms;
    len = mv_item_encode(&ev, buf, sizeof(buf));
    assert_true(len > 0);
    return mvw_trainer_apply(t, MV_RECORD_ITEM, buf, len, T0, err);
}


static void
post_item(mvw_trainer_t *t, const char *id, const char *category,
    const float *vec, float popularity, int64_t created_ms)
{
    mv_err_t  err;

    if (post_item_err(t, id, category, vec, DIM, popularity, created_ms,
                      &err) != MV_OK)
    {
        fail_msg("item %s refused: %s", id, err.msg);
    }
}


static size_t
encode_action(const char *user, const char *item, mv_action_type_t type,
    int64_t ts, char *buf, size_t cap)
{
    mv_action_t  a;
    size_t       len;

    memset(&a, 0, sizeof(a));
    snprintf(a.user_id, sizeof(a.user_id), "%s", user);
    snprintf(a.item_id, sizeof(a.item_id), "%s", item);
    a.type = type;
    a.timestamp_ms = ts;
    len = mv_action_encode(&a, buf, cap);
    assert_true(len > 0);
    return len;
}


static void
act(mvw_trainer_t *t, const char *user, const char *item,
    mv_action_type_t type, int64_t ts)
{
    char      buf[512];
    size_t    len = encode_action(user, item, type, ts, buf, sizeof(buf));
    mv_err_t  err;

    if (mvw_trainer_apply(t, MV_RECORD_ACTION, buf, len, T0, &err)
        != MV_OK)
    {
        fail_msg("action %s -> %s refused: %s", user, item, err.msg);
    }
}


static mvw_trainer_stats_t
stats_of(const mvw_trainer_t *t)
{
    mvw_trainer_stats_t  st;

    mvw_trainer_stats(t, &st);
    return st;
}


static int64_t
item_of(const mvw_trainer_t *t, const char *id)
{
    return mvw_trainer_find_item(t, id);
}


static void
random_vec(mv_rng_t *rng, float *v, float scale)
{
    for (uint32_t k = 0; k < DIM; k++) {
        v[k] = (float) (mv_rng_normal(rng) * scale);
    }
}


/* The rank (0 = best) of item i among every item for user u. */
static uint32_t
rank_of(mvw_trainer_t *t, uint32_t u, uint32_t i, double *gap)
{
    mvw_mf_t  *mf = mvw_trainer_model(t);
    size_t     n = mvw_mf_n_items(mf);
    float     *s = malloc(n * sizeof(float));
    uint32_t   rank = 0;
    double     others = 0.0;

    assert_non_null(s);
    mvw_mf_score(mf, &u, 1, s);
    for (size_t j = 0; j < n; j++) {
        if (j != i) {
            rank += s[j] >= s[i];
            others += s[j];
        }
    }
    if (gap != NULL) {
        *gap = s[i] - others / (double) (n - 1);
    }
    free(s);
    return rank;
}


/* Everything a refused record must leave alone. */
typedef struct {
    mvw_trainer_stats_t  st;
    size_t               mf_users, mf_items;
    float               *users, *items;
    double              *pop;
} state_t;


static void
state_take(mvw_trainer_t *t, state_t *s)
{
    mvw_mf_t  *mf = mvw_trainer_model(t);

    memset(s, 0, sizeof(*s));
    s->st = stats_of(t);
    s->mf_users = mvw_mf_n_users(mf);
    s->mf_items = mvw_mf_n_items(mf);
    s->users = malloc(s->mf_users * DIM * sizeof(float) + 1);
    s->items = malloc(s->mf_items * DIM * sizeof(float) + 1);
    s->pop = malloc(s->st.n_items * sizeof(double) + 1);
    assert_true(s->users && s->items && s->pop);
    if (s->mf_users) {
        memcpy(s->users, mvw_mf_user(mf, 0),
               s->mf_users * DIM * sizeof(float));
    }
    if (s->mf_items) {
        memcpy(s->items, mvw_mf_item(mf, 0),
               s->mf_items * DIM * sizeof(float));
    }
    for (uint32_t i = 0; i < s->st.n_items; i++) {
        s->pop[i] = mvw_trainer_popularity(t, i, T0 + 5 * HOUR);
    }
}


static void
state_free(state_t *s)
{
    free(s->users);
    free(s->items);
    free(s->pop);
}


/* a and b equal except for the counters a refused record may change. */
static void
state_assert_same(const state_t *a, const state_t *b)
{
    assert_int_equal(a->st.n_users, b->st.n_users);
    assert_int_equal(a->st.n_items, b->st.n_items);
    assert_int_equal(a->st.actions, b->st.actions);
    assert_int_equal(a->st.items, b->st.items);
    assert_int_equal(a->st.not_positive, b->st.not_positive);
    assert_int_equal(a->st.updates, b->st.updates);
    assert_int_equal(a->st.new_users, b->st.new_users);
    assert_int_equal(a->st.new_items, b->st.new_items);
    assert_int_equal(a->st.pending, b->st.pending);
    assert_int_equal(a->mf_users, b->mf_users);
    assert_int_equal(a->mf_items, b->mf_items);
    assert_memory_equal(a->users, b->users, a->mf_users * DIM * sizeof(float));
    assert_memory_equal(a->items, b->items, a->mf_items * DIM * sizeof(float));
    assert_memory_equal(a->pop, b->pop, a->st.n_items * sizeof(double));
}


static mv_generation_t *
open_current(const char *dir)
{
    char              path[512];
    mv_err_t          err;
    mv_generation_t  *g;

    snprintf(path, sizeof(path), "%s/current", dir);
    g = mv_generation_open(path, NULL, NULL, &err);
    if (g == NULL) {
        fail_msg("%s: %s", path, err.msg);
    }
    return g;
}


/*
 * What these tests read of a generation, as one view: its items segment
 * with the users of its newest user segment -- every user of the model
 * after a publish that carried them all (the first into a directory).
 * One of 4 static views, valid until g is closed.
 */
static const mv_snapshot_view_t *
gen_view(const mv_generation_t *g)
{
    static mv_snapshot_view_t   views[4];
    static int                  next;
    mv_snapshot_view_t         *v = &views[next++ & 3];
    const mv_snapshot_view_t   *u;
    const mv_generation_info_t *info = mv_generation_info(g);

    *v = *mv_generation_items(g);
    v->generation = info->generation;
    for (uint32_t i = info->n_segments; i-- > 1; ) {
        u = mv_generation_segment(g, i);
        if (u->n_users > 0) {
            v->n_users = u->n_users;
            v->users = u->users;
            v->user_vectors = u->user_vectors;
            break;
        }
    }
    return v;
}


/* The generation dir/current names (the test fails when it is unusable). */
static uint64_t
current_generation(const char *dir)
{
    mv_generation_t  *s = open_current(dir);
    uint64_t          g = mv_generation_info(s)->generation;

    mv_generation_close(s);
    return g;
}


static void
publish(mvw_trainer_t *t, const char *dir, const mv_stream_pos_t *pos,
    size_t n_pos, int64_t now_ms)
{
    mv_err_t  err;

    if (mvw_trainer_publish(t, dir, pos, n_pos, now_ms, NULL, 0, &err)
        != MV_OK)
    {
        fail_msg("publish into %s: %s", dir, err.msg);
    }
}


/* Id i of a snapshot table, NUL-terminated (in one of 4 static buffers). */
static const char *
tab_id(const mv_idtable_t *tab, uint32_t i)
{
    static char   buf[4][MV_ID_MAX + 1];
    static int    next;
    char         *out = buf[next++ & 3];
    const char   *s;
    size_t        len;

    s = mv_idtable_get(tab, i, &len);
    assert_true(len >= 1 && len <= MV_ID_MAX);
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}


/* The category name of snapshot item i, or NULL for none. */
static const char *
category_name(const mv_snapshot_view_t *v, uint32_t i)
{
    uint32_t  c = v->item_meta[i].category;

    return c == MV_CATEGORY_NONE ? NULL : tab_id(&v->categories, c);
}


static const mv_item_meta_t *
meta_of(const mv_snapshot_view_t *v, const char *id)
{
    int64_t  i = mv_idtable_find(&v->items, id, strlen(id));

    assert_true(i >= 0);
    return &v->item_meta[i];
}


/* ---- apply: items ------------------------------------------------------- */

static void
test_item_record_creates_item(void **state)
{
    float                v[DIM] = { 0.5f, -0.25f, 1e-3f, 3.0f, -7.5f,
                                    0.125f, 2.0f, 9.0f };
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    mv_generation_t     *s;
    const mv_snapshot_view_t *view;
    const float         *row;
    int64_t              i;
    const char          *dir = *state;

    small_params(&p);
    t = new_trainer(&p);

    post_item(t, "book-1", "books", v, 0.75f, T0 - 3 * HOUR);
    assert_int_equal(stats_of(t).items, 1);
    assert_int_equal(stats_of(t).new_items, 1);
    assert_int_equal(stats_of(t).n_items, 1);
    assert_int_equal(stats_of(t).n_users, 0);
    assert_int_equal(stats_of(t).pending, 1);

    i = item_of(t, "book-1");
    assert_int_equal(i, 0);
    row = mvw_mf_item(mvw_trainer_model(t), 0);
    assert_memory_equal(row, v, (DIM - 1) * sizeof(float));
    assert_true(row[DIM - 1] == 0.0f);              /* bias starts at 0 */
    assert_true(mvw_trainer_popularity(t, 0, T0) == 0.75);

    /* category and created_at through the published file */
    publish(t, dir, NULL, 0, T0);
    s = open_current(dir);
    view = gen_view(s);
    assert_int_equal(view->n_items, 1);
    assert_int_equal(view->n_categories, 1);
    assert_string_equal(category_name(view, 0), "books");
    assert_int_equal(view->item_meta[0].created_at_ms, T0 - 3 * HOUR);
    assert_true(view->item_meta[0].popularity == 0.75f);
    assert_int_equal(view->item_meta[0].flags, 0);
    mv_generation_close(s);

    /* without item_bias the whole embedding is the vector */
    mvw_trainer_free(t);
    p.mf.item_bias = 0;
    t = new_trainer(&p);
    post_item(t, "book-1", "", v, 0.0f, T0);
    assert_memory_equal(mvw_mf_item(mvw_trainer_model(t), 0), v,
                        sizeof(v));

    mvw_trainer_free(t);
}


static void
test_item_repost_updates_category_only(void **state)
{
    float                v1[DIM] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    float                v2[DIM] = { -1, -2, -3, -4, -5, -6, -7, -8 };
    float                before[DIM];
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    mv_generation_t     *s;
    const mv_snapshot_view_t *view;
    const char          *dir = *state;

    small_params(&p);
    t = new_trainer(&p);

    post_item(t, "a", "books", v1, 2.0f, T0);
    post_item(t, "b", "", v1, 0.0f, T0);
    memcpy(before, mvw_mf_item(mvw_trainer_model(t), 0), sizeof(before));

    post_item(t, "a", "films", v2, 9.0f, T0 + HOUR);
    /* a repost without a category keeps the one the item has */
    post_item(t, "a", "", v2, 9.0f, T0 + HOUR);
    assert_int_equal(stats_of(t).items, 4);
    assert_int_equal(stats_of(t).new_items, 2);
    assert_int_equal(stats_of(t).n_items, 2);
    assert_memory_equal(mvw_mf_item(mvw_trainer_model(t), 0), before,
                        sizeof(before));
    assert_true(mvw_trainer_popularity(t, 0, T0 + HOUR) == 2.0);

    publish(t, dir, NULL, 0, T0 + HOUR);
    s = open_current(dir);
    view = gen_view(s);
    assert_string_equal(category_name(view, 0), "films");
    assert_null(category_name(view, 1));
    assert_true(view->item_meta[0].popularity == 2.0f);
    assert_int_equal(view->item_meta[0].created_at_ms, T0 + HOUR);
    mv_generation_close(s);

    mvw_trainer_free(t);
}


/* A record saying "deleted": true marks the item deleted in the next
   generation (never returned by a search), and a later record without it
   brings the item back. */
static void
test_item_record_deleted(void **state)
{
    static const char    del[] = "{\"item_id\":\"a\",\"embedding\":"
                                 "[1,2,3,4,5,6,7,8],\"deleted\":true}";
    float                v[DIM] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    mv_generation_t     *s;
    mv_err_t             err;
    const char          *dir = *state;

    small_params(&p);
    t = new_trainer(&p);

    post_item(t, "a", "books", v, 1.0f, T0);
    post_item(t, "b", "books", v, 1.0f, T0);
    assert_int_equal(mvw_trainer_apply(t, MV_RECORD_ITEM, del,
                                       sizeof(del) - 1, T0, &err), MV_OK);
    publish(t, dir, NULL, 0, T0);
    s = open_current(dir);
    assert_true(meta_of(gen_view(s), "a")->flags & MV_ITEM_DELETED);
    assert_false(meta_of(gen_view(s), "b")->flags & MV_ITEM_DELETED);
    mv_generation_close(s);

    post_item(t, "a", "books", v, 1.0f, T0 + HOUR);
    publish(t, dir, NULL, 0, T0 + HOUR);
    s = open_current(dir);
    assert_false(meta_of(gen_view(s), "a")->flags & MV_ITEM_DELETED);
    mv_generation_close(s);

    mvw_trainer_free(t);
}


/* ---- apply: actions ----------------------------------------------------- */

static void
test_action_creates_user_and_item(void **state)
{
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    mvw_trainer_stats_t  st;
    mvw_mf_t            *mf;

    (void) state;
    small_params(&p);
    t = new_trainer(&p);

    act(t, "u1", "i1", MV_ACTION_CLICK, T0);
    st = stats_of(t);
    assert_int_equal(st.actions, 1);
    assert_int_equal(st.new_users, 1);
    assert_int_equal(st.new_items, 1);
    assert_int_equal(st.n_users, 1);
    assert_int_equal(st.n_items, 1);
    assert_int_equal(st.not_positive, 0);
    assert_int_equal(st.invalid, 0);
    assert_true(st.updates >= 1);
    assert_int_equal(mvw_trainer_find_user(t, "u1"), 0);
    assert_int_equal(item_of(t, "i1"), 0);
    mf = mvw_trainer_model(t);
    assert_int_equal(mvw_mf_n_users(mf), 1);
    assert_int_equal(mvw_mf_n_items(mf), 1);

    /* a known user on a new item, a new user on a known item */
    act(t, "u1", "i2", MV_ACTION_VIEW, T0);
    act(t, "u2", "i1", MV_ACTION_VIEW, T0);
    act(t, "u2", "i2", MV_ACTION_VIEW, T0);
    st = stats_of(t);
    assert_int_equal(st.actions, 4);
    assert_int_equal(st.new_users, 2);
    assert_int_equal(st.new_items, 2);
    assert_int_equal(mvw_trainer_find_user(t, "u2"), 1);
    assert_int_equal(item_of(t, "i2"), 1);
    assert_int_equal(mvw_trainer_find_user(t, "nobody"), -1);
    assert_int_equal(item_of(t, "nothing"), -1);
    assert_int_equal(mvw_mf_n_users(mf), 2);
    assert_int_equal(mvw_mf_n_items(mf), 2);

    mvw_trainer_free(t);
}


static void
test_action_weights(void **state)
{
    static const float   w[MV_ACTION_TYPES] = {
        1.5f, 2.25f, 3.5f, 0.75f, 4.125f, 6.0f, 0.0f
    };
    float                def[MV_ACTION_TYPES];
    char                 id[16];
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;

    (void) state;
    small_params(&p);
    memcpy(p.action_weights, w, sizeof(w));
    t = new_trainer(&p);

    for (int k = 0; k < MV_ACTION_DISLIKE; k++) {
        snprintf(id, sizeof(id), "item-%d", k);
        act(t, "u", id, (mv_action_type_t) k, T0);
        assert_true(mvw_trainer_popularity(t, (uint32_t) item_of(t, id), T0)
                    == (double) w[k]);
    }
    /* a repeated type adds its weight again */
    act(t, "u", "item-5", MV_ACTION_PURCHASE, T0);
    assert_true(mvw_trainer_popularity(t, (uint32_t) item_of(t, "item-5"),
                                       T0) == 12.0);
    mvw_trainer_free(t);

    /* the defaults: View 1 .. Purchase 5, Dislike 0 */
    mvw_trainer_params_default(&p);
    mvw_action_weights_default(def);
    assert_memory_equal(p.action_weights, def, sizeof(def));
    assert_true(def[MV_ACTION_VIEW] == 1.0f);
    assert_true(def[MV_ACTION_PURCHASE] == 5.0f);
    assert_true(def[MV_ACTION_DISLIKE] == 0.0f);
}


static void
test_dislike_not_positive(void **state)
{
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    state_t              a, b;
    mvw_trainer_stats_t  st;

    (void) state;
    small_params(&p);
    t = new_trainer(&p);
    act(t, "u1", "i1", MV_ACTION_LIKE, T0);
    act(t, "u2", "i2", MV_ACTION_VIEW, T0);

    state_take(t, &a);
    act(t, "u1", "i1", MV_ACTION_DISLIKE, T0 + 1);
    act(t, "u1", "i2", MV_ACTION_DISLIKE, T0 + 2);
    act(t, "stranger", "unseen", MV_ACTION_DISLIKE, T0 + 3);
    state_take(t, &b);

    st = b.st;
    assert_int_equal(st.actions, a.st.actions + 3);
    assert_int_equal(st.not_positive, 3);
    assert_int_equal(st.invalid, 0);
    assert_int_equal(st.pending, a.st.pending + 3);
    /* nothing else moved: no rows, no popularity, no step */
    b.st.actions = a.st.actions;
    b.st.not_positive = a.st.not_positive;
    b.st.pending = a.st.pending;
    state_assert_same(&a, &b);
    assert_int_equal(mvw_trainer_find_user(t, "stranger"), -1);
    assert_int_equal(item_of(t, "unseen"), -1);
    state_free(&a);
    state_free(&b);
    mvw_trainer_free(t);

    /* any weight <= 0 behaves the same (here View) */
    small_params(&p);
    p.action_weights[MV_ACTION_VIEW] = 0.0f;
    t = new_trainer(&p);
    act(t, "u1", "i1", MV_ACTION_VIEW, T0);
    assert_int_equal(stats_of(t).not_positive, 1);
    assert_int_equal(stats_of(t).n_items, 0);
    assert_int_equal(stats_of(t).updates, 0);
    mvw_trainer_free(t);
}


static void
test_invalid_records_change_nothing(void **state)
{
    char                 big[65536], ok_action[512];
    float                v[DIM] = { 1, 0, 0, 0, 0, 0, 0, 0 };
    float                v9[DIM + 1] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    state_t              a, b;
    mv_err_t             err;
    mv_generation_t     *s;
    size_t               n_ok;
    int                  k;

    static const struct { uint16_t type; const char *payload; } bad[] = {
        { MV_RECORD_ACTION, "{not json" },
        { MV_RECORD_ACTION, "" },
        { MV_RECORD_ACTION, "{\"user_id\":\"u-new\",\"item_id\":\"i-new\","
                            "\"action_type\":\"Teleport\"}" },
        { MV_RECORD_ACTION, "{\"user_id\":\"u-new\"}" },
        { MV_RECORD_ACTION, "{\"user_id\":\"u new\",\"item_id\":\"i-new\","
                            "\"action_type\":\"Click\"}" },
        { MV_RECORD_ACTION, "{\"user_id\":\"u-new\",\"item_id\":\"i-new\","
                            "\"action_type\":\"Click\",\"timestamp\":"
                            "\"2024-02-30T00:00:00Z\"}" },
        { MV_RECORD_ITEM,   "[1,2,3]" },
        { MV_RECORD_ITEM,   "{\"item_id\":\"i-new\",\"category\":\"c-new\","
                            "\"embedding\":[1,2,3]}" },
        { MV_RECORD_ITEM,   "{\"item_id\":\"i-new\",\"category\":\"c-new\","
                            "\"embedding\":[1,2,3,4,5,6,7,1e39]}" },
        { MV_RECORD_ITEM,   "{\"item_id\":\"i-new\",\"category\":\"c-new\","
                            "\"embedding\":[1,2,3,4,5,6,7,8],"
                            "\"popularity_score\":-1}" },
        { MV_RECORD_ITEM,   "{\"user_id\":\"u-new\",\"item_id\":\"i-new\","
                            "\"action_type\":\"Click\"}" },
    };
    const char          *dir = *state;

    small_params(&p);
    t = new_trainer(&p);
    post_item(t, "i1", "c1", v, 1.0f, T0);
    act(t, "u1", "i1", MV_ACTION_CLICK, T0);
    act(t, "u2", "i2", MV_ACTION_SHARE, T0 + HOUR);

    state_take(t, &a);
    for (k = 0; k < (int) (sizeof(bad) / sizeof(bad[0])); k++) {
        err.msg[0] = '\0';
        if (mvw_trainer_apply(t, bad[k].type, bad[k].payload,
                              strlen(bad[k].payload), T0, &err) != MV_ERR)
        {
            fail_msg("bad record %d accepted: %s", k, bad[k].payload);
        }
        assert_true(err.msg[0] != '\0');
    }

    /* the wrong dimension through the encoder, and unknown record types
       carrying otherwise valid payloads of new ids */
    assert_int_equal(post_item_err(t, "i-new", "c-new", v9, DIM + 1, 1.0f,
                                   T0, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "dimension"));
    assert_int_equal(post_item_err(t, "i-new", "c-new", v, DIM - 1, 1.0f,
                                   T0, &err), MV_ERR);
    n_ok = encode_action("u-new", "i-new", MV_ACTION_PURCHASE, T0,
                         ok_action, sizeof(ok_action));
    assert_int_equal(mvw_trainer_apply(t, 0, ok_action, n_ok, T0, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "unknown record type"));
    assert_int_equal(mvw_trainer_apply(t, 3, ok_action, n_ok, T0, &err),
                     MV_ERR);
    assert_int_equal(mvw_trainer_apply(t, 0xffff, ok_action, n_ok, T0,
                                       &err), MV_ERR);
    /* an item payload as an action and the reverse */
    {
        mv_item_event_t  *ev = calloc(1, sizeof(*ev));
        size_t            n_item;

        assert_non_null(ev);
        snprintf(ev->item_id, sizeof(ev->item_id), "i-new");
        ev->embedding = v;
        ev->dim = DIM;
        n_item = mv_item_encode(ev, big, sizeof(big));
        assert_true(n_item > 0);
        assert_int_equal(mvw_trainer_apply(t, MV_RECORD_ACTION, big, n_item,
                                           T0, &err), MV_ERR);
        free(ev);
    }
    assert_int_equal(mvw_trainer_apply(t, MV_RECORD_ITEM, ok_action, n_ok,
                                       T0, &err), MV_ERR);
    state_take(t, &b);

    assert_int_equal(b.st.invalid,
                     a.st.invalid + sizeof(bad) / sizeof(bad[0]) + 7);
    state_assert_same(&a, &b);
    assert_int_equal(mvw_trainer_find_user(t, "u-new"), -1);
    assert_int_equal(item_of(t, "i-new"), -1);

    /* no category of a refused item reached the catalogue */
    publish(t, dir, NULL, 0, T0 + HOUR);
    s = open_current(dir);
    assert_int_equal(gen_view(s)->n_categories, 1);
    assert_int_equal(gen_view(s)->n_items, 2);
    assert_int_equal(gen_view(s)->n_users, 2);
    mv_generation_close(s);

    /* and the trainer still applies good records afterwards */
    assert_int_equal(mvw_trainer_apply(t, MV_RECORD_ACTION, ok_action, n_ok,
                                       T0, &err), MV_OK);
    assert_true(item_of(t, "i-new") == 2);

    state_free(&a);
    state_free(&b);
    mvw_trainer_free(t);
}


/* ---- popularity --------------------------------------------------------- */

/* Applies a training example of user -> item (features f, or NULL). */
static int
example_err(mvw_trainer_t *t, const char *user, const char *item,
    mv_action_type_t type, int64_t ts, const mv_item_features_t *f,
    mv_err_t *err)
{
    static mv_example_t  x;
    static char          buf[MV_EXAMPLE_ENCODE_MAX];
    size_t               len;

    memset(&x, 0, sizeof(x));
    snprintf(x.action.user_id, sizeof(x.action.user_id), "%s", user);
    snprintf(x.action.item_id, sizeof(x.action.item_id), "%s", item);
    x.action.type = type;
    x.action.timestamp_ms = ts;
    x.popularity = 1;
    if (f != NULL) {
        x.has_features = 1;
        x.features = *f;
    }
    len = mv_example_encode(&x, buf, sizeof(buf));
    assert_true(len > 0);
    return mvw_trainer_apply(t, MV_RECORD_EXAMPLE, buf, len, T0, err);
}


/*
 * A training example is learned as its action (the same model, counts and
 * popularity as the action itself), and fills in what the catalogue lacks
 * of its item without overriding a features record.
 */
static void
test_example_record(void **state)
{
    static const char    bad[] = "{\"user_id\":\"u1\",\"item_id\":\"i1\","
                                 "\"action_type\":\"Click\"}";
    float                v[DIM] = { 1.0f };
    mvw_trainer_params_t p;
    mvw_trainer_t       *ta, *tx;
    state_t              sa, sx;
    mv_item_features_t   f;
    mv_generation_t     *s;
    const mv_snapshot_view_t *view;
    const char          *dir = *state;
    mv_err_t             err;

    small_params(&p);
    ta = new_trainer(&p);
    tx = new_trainer(&p);
    for (int k = 0; k < 60; k++) {
        char              u[16], i[16];
        mv_action_type_t  type = (mv_action_type_t) (k % MV_ACTION_TYPES);

        snprintf(u, sizeof(u), "u%d", k % 7);
        snprintf(i, sizeof(i), "i%d", k % 5);
        act(ta, u, i, type, T0 + k * HOUR);
        assert_int_equal(example_err(tx, u, i, type, T0 + k * HOUR, NULL,
                                     &err), MV_OK);
    }
    state_take(ta, &sa);
    state_take(tx, &sx);
    state_assert_same(&sa, &sx);
    state_free(&sa);
    state_free(&sx);
    mvw_trainer_free(ta);

    /* features fill in: a new item, an item without category; a features
       record's category stays */
    memset(&f, 0, sizeof(f));
    strcpy(f.category, "books");
    f.created_at_ms = T0 - 5 * HOUR;
    assert_int_equal(example_err(tx, "u1", "new-1", MV_ACTION_CLICK, T0, &f,
                                 &err), MV_OK);
    act(tx, "u1", "bare-1", MV_ACTION_CLICK, T0 + HOUR);
    assert_int_equal(example_err(tx, "u2", "bare-1", MV_ACTION_CLICK,
                                 T0 + 2 * HOUR, &f, &err), MV_OK);
    post_item(tx, "music-1", "music", v, 0.0f, T0 - HOUR);
    assert_int_equal(example_err(tx, "u2", "music-1", MV_ACTION_CLICK,
                                 T0 + 2 * HOUR, &f, &err), MV_OK);

    /* refused: no popularity; counted, nothing learned */
    state_take(tx, &sx);
    assert_int_equal(mvw_trainer_apply(tx, MV_RECORD_EXAMPLE, bad,
                                       sizeof(bad) - 1, T0, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "popularity"));
    assert_int_equal(stats_of(tx).invalid, sx.st.invalid + 1);
    state_take(tx, &sa);
    state_assert_same(&sa, &sx);
    state_free(&sa);
    state_free(&sx);

    publish(tx, dir, NULL, 0, T0 + 3 * HOUR);
    s = open_current(dir);
    view = gen_view(s);
    assert_string_equal(category_name(view, (uint32_t) item_of(tx, "new-1")),
                        "books");
    assert_int_equal(meta_of(view, "new-1")->created_at_ms, T0 - 5 * HOUR);
    assert_string_equal(category_name(view,
                                      (uint32_t) item_of(tx, "bare-1")),
                        "books");
    assert_int_equal(meta_of(view, "bare-1")->created_at_ms, T0 + HOUR);
    assert_string_equal(category_name(view,
                                      (uint32_t) item_of(tx, "music-1")),
                        "music");
    assert_int_equal(meta_of(view, "music-1")->created_at_ms, T0 - HOUR);
    mv_generation_close(s);
    mvw_trainer_free(tx);
}


static void
test_popularity_exact_sum_without_decay(void **state)
{
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    double               want = 0.0;
    uint32_t             i;
    float                v[DIM] = { 0 };

    (void) state;
    small_params(&p);
    t = new_trainer(&p);

    for (int k = 0; k < 300; k++) {
        mv_action_type_t  type = (mv_action_type_t) (k % MV_ACTION_TYPES);

        /* times in any order, years apart: no decay at all */
        act(t, k % 2 ? "u1" : "u2", "hot", type,
            T0 + (int64_t) ((k * 7919) % 1000) * 86400000LL);
        want += p.action_weights[type];
    }
    i = (uint32_t) item_of(t, "hot");
    assert_true(mvw_trainer_popularity(t, i, T0) == want);
    assert_true(mvw_trainer_popularity(t, i, T0 + 1000000 * HOUR) == want);

    /* a declared popularity is the starting value */
    v[0] = 1.0f;
    post_item(t, "declared", "", v, 0.5f, T0);
    act(t, "u1", "declared", MV_ACTION_CLICK, T0 + HOUR);
    assert_true(mvw_trainer_popularity(t, (uint32_t) item_of(t, "declared"),
                                       T0) == 2.5);
    mvw_trainer_free(t);
}


static void
test_popularity_half_life(void **state)
{
    const double         h = (double) HOUR, dt = 0.5 * HOUR;
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    double               want, got;
    uint32_t             i;
    float                v[DIM] = { 1, 0, 0, 0, 0, 0, 0, 0 };

    (void) state;
    small_params(&p);
    p.half_life_ms = h;
    t = new_trainer(&p);

    act(t, "u1", "x", MV_ACTION_CLICK, T0);                     /* 2 */
    act(t, "u2", "x", MV_ACTION_PURCHASE, T0 + (int64_t) dt);   /* 5 */
    i = (uint32_t) item_of(t, "x");
    want = 2.0 * exp2(-dt / h) + 5.0;
    got = mvw_trainer_popularity(t, i, T0 + (int64_t) dt);
    assert_true(fabs(got - want) <= 1e-12 * want);

    /* an event older than the last one adds its own decayed weight */
    act(t, "u3", "x", MV_ACTION_LIKE, T0 - HOUR);               /* 3 */
    want += 3.0 * exp2(-(dt + h) / h);
    got = mvw_trainer_popularity(t, i, T0 + (int64_t) dt);
    assert_true(fabs(got - want) <= 1e-12 * want);

    /* read later: the whole sum decays */
    got = mvw_trainer_popularity(t, i, T0 + (int64_t) dt + 2 * HOUR);
    assert_true(fabs(got - want / 4.0) <= 1e-12 * want);
    got = mvw_trainer_popularity(t, i, T0 + (int64_t) dt + 10 * HOUR);
    assert_true(fabs(got - want / 1024.0) <= 1e-12 * want);

    /* a declared popularity decays from created_at */
    post_item(t, "y", "", v, 8.0f, T0);
    act(t, "u1", "y", MV_ACTION_VIEW, T0 + 3 * HOUR);           /* 1 */
    got = mvw_trainer_popularity(t, (uint32_t) item_of(t, "y"),
                                 T0 + 3 * HOUR);
    assert_true(fabs(got - 2.0) <= 1e-12);

    mvw_trainer_free(t);
}


/* ---- learning ----------------------------------------------------------- */

static void
test_repeated_actions_raise_score(void **state)
{
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    mv_rng_t             rng;
    float                v[DIM];
    char                 id[32], user[32];
    uint32_t             u, target, r0, r1;
    double               gap0, gap1;

    (void) state;
    small_params(&p);
    t = new_trainer(&p);
    mv_rng_seed(&rng, 7);

    for (int k = 0; k < 30; k++) {
        snprintf(id, sizeof(id), "item-%02d", k);
        random_vec(&rng, v, 0.1f);
        post_item(t, id, "", v, 1.0f, T0);
    }
    for (int k = 0; k < 200; k++) {
        snprintf(user, sizeof(user), "other-%d", k % 10);
        snprintf(id, sizeof(id), "item-%02d", (int) (mv_rng_next(&rng) % 30));
        act(t, user, id, MV_ACTION_CLICK, T0 + k);
    }

    act(t, "me", "item-17", MV_ACTION_VIEW, T0 + 1000);
    u = (uint32_t) mvw_trainer_find_user(t, "me");
    target = (uint32_t) item_of(t, "item-17");
    r0 = rank_of(t, u, target, &gap0);
    for (int k = 0; k < 40; k++) {
        act(t, "me", "item-17", MV_ACTION_PURCHASE, T0 + 1001 + k);
    }
    r1 = rank_of(t, u, target, &gap1);
    print_message("gap %.3f -> %.3f, rank %u -> %u\n", gap0, gap1, r0, r1);
    assert_true(gap1 > gap0 + 0.5);
    assert_int_equal(r1, 0);
    assert_true(r1 <= r0);
    mvw_trainer_free(t);
}


static void
test_replay_ratio(void **state)
{
    static const double  ratios[] = { 0.0, 0.5, 1.0, 2.0, 2.25 };
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    mvw_trainer_stats_t  st;
    char                 id[32];
    const int            n = 800;

    (void) state;
    for (size_t r = 0; r < sizeof(ratios) / sizeof(ratios[0]); r++) {
        small_params(&p);
        p.replay_ratio = ratios[r];
        p.replay_window = 64;
        t = new_trainer(&p);
        for (int k = 0; k < n; k++) {
            snprintf(id, sizeof(id), "i%d", k % 13);
            act(t, k % 3 ? "u1" : "u2", id, MV_ACTION_VIEW, T0 + k);
        }
        st = stats_of(t);
        assert_int_equal(st.actions, n);
        assert_int_equal(st.updates, n + st.replayed);
        if (ratios[r] == floor(ratios[r])) {
            assert_int_equal(st.replayed, (uint64_t) (ratios[r] * n));
        } else {
            /* binomial: sd = sqrt(n q (1 - q)) <= 15 here */
            double  want = ratios[r] * n;

            assert_true(fabs((double) st.replayed - want) < 75.0);
        }
        mvw_trainer_free(t);
    }

    /* no window, no replay */
    small_params(&p);
    p.replay_ratio = 3.0;
    p.replay_window = 0;
    t = new_trainer(&p);
    for (int k = 0; k < 50; k++) {
        act(t, "u", "i", MV_ACTION_VIEW, T0 + k);
    }
    assert_int_equal(stats_of(t).replayed, 0);
    assert_int_equal(stats_of(t).updates, 50);
    mvw_trainer_free(t);
}


static void
test_user_bias_stays_one(void **state)
{
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    mvw_mf_t            *mf;
    char                 user[32], item[32];
    mv_rng_t             rng;

    (void) state;
    small_params(&p);
    p.replay_ratio = 1.5;
    t = new_trainer(&p);
    mv_rng_seed(&rng, 3);
    for (int k = 0; k < 2000; k++) {
        snprintf(user, sizeof(user), "u%d", (int) (mv_rng_next(&rng) % 25));
        snprintf(item, sizeof(item), "i%d", (int) (mv_rng_next(&rng) % 60));
        act(t, user, item, (mv_action_type_t) (k % MV_ACTION_DISLIKE),
            T0 + k);
    }
    mf = mvw_trainer_model(t);
    assert_int_equal(mvw_mf_n_users(mf), 25);
    for (uint32_t u = 0; u < mvw_mf_n_users(mf); u++) {
        assert_true(mvw_mf_user(mf, u)[DIM - 1] == 1.0f);
    }
    /* while the items' bias coordinates learnt something */
    {
        int  moved = 0;

        for (uint32_t i = 0; i < mvw_mf_n_items(mf); i++) {
            moved += mvw_mf_item(mf, i)[DIM - 1] != 0.0f;
        }
        assert_true(moved > 0);
    }
    mvw_trainer_free(t);
}


/* ---- publish ------------------------------------------------------------ */

/* A trainer with 3 categories, 40 items, 12 users, some actions. */
static mvw_trainer_t *
populated(const mvw_trainer_params_t *p, uint64_t seed)
{
    static const char *const  cats[] = { "books", "films", "", "music" };
    mvw_trainer_t            *t = new_trainer(p);
    mv_rng_t                  rng;
    float                     v[DIM];
    char                      id[32], user[32];

    mv_rng_seed(&rng, seed);
    for (int k = 0; k < 40; k++) {
        snprintf(id, sizeof(id), "item-%02d", k);
        random_vec(&rng, v, 0.3f);
        post_item(t, id, cats[k % 4], v, (float) (k % 5) * 0.5f,
                  T0 - (int64_t) k * HOUR);
    }
    for (int k = 0; k < 300; k++) {
        snprintf(user, sizeof(user), "user-%d",
                 (int) (mv_rng_next(&rng) % 12));
        snprintf(id, sizeof(id), "item-%02d", (int) (mv_rng_next(&rng) % 44));
        act(t, user, id, (mv_action_type_t) (mv_rng_next(&rng)
                                             % MV_ACTION_TYPES),
            T0 + (int64_t) (mv_rng_next(&rng) % (2 * HOUR)));
    }
    return t;
}


static void
fill_positions(mv_stream_pos_t *pos)
{
    memset(pos, 0, 2 * sizeof(*pos));
    strcpy(pos[0].stream, MV_ACTLOG_STREAM_NAME);
    pos[0].offset = (3ull << 40) | 1234;
    strcpy(pos[1].stream, "user_actions");
    pos[1].partition = 5;
    pos[1].offset = 987654321;
}


static void
test_publish_matches_model(void **state)
{
    char                 path[512];
    mv_stream_pos_t      pos[2];
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    mvw_trainer_stats_t  st;
    mv_generation_t     *s;
    const mv_snapshot_view_t *v;
    mvw_mf_t            *mf;
    float                want_pop[64];
    const int64_t        now = T0 + 3 * HOUR;
    uint64_t             newest;
    mv_err_t             err;
    const char          *dir = *state;

    small_params(&p);
    p.half_life_ms = (double) HOUR;
    p.keep = 2;
    t = populated(&p, 11);
    mf = mvw_trainer_model(t);
    fill_positions(pos);

    st = stats_of(t);
    assert_true(st.n_items == 44 && st.n_users == 12);
    for (uint32_t i = 0; i < st.n_items; i++) {
        want_pop[i] = (float) mvw_trainer_popularity(t, i, now);
    }
    assert_int_equal(mv_generation_newest(dir, &newest, &err),
                     MV_OK);
    assert_int_equal(newest, 0);
    assert_int_equal(mvw_trainer_publish(t, dir, pos, 2, now, path,
                                         sizeof(path), &err), MV_OK);
    assert_non_null(strstr(path, "gen-00000000000000000001.mvm"));

    st = stats_of(t);
    assert_int_equal(st.generation, 1);
    assert_int_equal(st.publishes, 1);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.last_publish_ms, now);
    assert_int_equal(st.last_reinserted, 44);
    assert_int_equal(mv_generation_newest(dir, &newest, &err),
                     MV_OK);
    assert_int_equal(newest, 1);
    assert_int_equal(current_generation(dir), 1);

    s = open_current(dir);
    v = gen_view(s);
    assert_int_equal(v->generation, 1);
    assert_int_equal(v->created_at_ms, now);
    assert_int_equal(v->dim, DIM);
    assert_int_equal(v->metric, MV_METRIC_IP);
    assert_int_equal(v->n_positions, 2);
    assert_memory_equal(v->positions, pos, sizeof(pos));
    assert_int_equal(v->n_items, st.n_items);
    assert_int_equal(v->n_users, st.n_users);
    assert_int_equal(v->n_categories, 3);
    for (uint32_t i = 0; i < v->n_items; i++) {
        const char  *id = tab_id(&v->items, i);

        assert_int_equal(item_of(t, id), i);
        assert_true(v->item_meta[i].popularity == want_pop[i]);
        assert_int_equal(v->item_meta[i].flags, 0);
    }
    for (uint32_t u = 0; u < v->n_users; u++) {
        const char  *id = tab_id(&v->users, u);

        assert_int_equal(mvw_trainer_find_user(t, id), u);
    }
    assert_memory_equal(v->item_vectors, mvw_mf_item(mf, 0),
                        (size_t) v->n_items * DIM * sizeof(float));
    assert_memory_equal(v->user_vectors, mvw_mf_user(mf, 0),
                        (size_t) v->n_users * DIM * sizeof(float));
    /* categories by name; items first seen in an action have none */
    assert_string_equal(category_name(v, (uint32_t) item_of(t, "item-00")),
                        "books");
    assert_string_equal(category_name(v, (uint32_t) item_of(t, "item-05")),
                        "films");
    assert_null(category_name(v, (uint32_t) item_of(t, "item-06")));
    assert_string_equal(category_name(v, (uint32_t) item_of(t, "item-39")),
                        "music");
    assert_int_equal(meta_of(v, "item-07")->created_at_ms, T0 - 7 * HOUR);
    if (item_of(t, "item-41") >= 0) {
        assert_null(category_name(v, (uint32_t) item_of(t, "item-41")));
    }
    assert_int_equal(v->n_popular, v->n_items);
    mv_generation_close(s);

    /* generation 2, then 3 with keep = 2: generation 1 is removed */
    act(t, "user-1", "item-03", MV_ACTION_CLICK, now);
    publish(t, dir, pos, 1, now + 1000);
    assert_int_equal(stats_of(t).generation, 2);
    s = open_current(dir);
    assert_int_equal(gen_view(s)->generation, 2);
    assert_int_equal(gen_view(s)->n_positions, 1);
    mv_generation_close(s);
    assert_true(file_exists(dir, "gen-00000000000000000001.mvm"));
    publish(t, dir, NULL, 0, now + 2000);
    assert_int_equal(current_generation(dir), 3);
    assert_false(file_exists(dir, "gen-00000000000000000001.mvm"));
    assert_true(file_exists(dir, "gen-00000000000000000002.mvm"));
    assert_true(file_exists(dir, "gen-00000000000000000003.mvm"));
    assert_int_equal(count_snapshots(dir), 2);

    /* a failed publish keeps the generation (the next tries it again) */
    assert_int_equal(mvw_trainer_publish(t, "/proc/no-such-dir/x", NULL, 0,
                                         now, NULL, 0, &err), MV_ERR);
    assert_int_equal(stats_of(t).generation, 3);
    assert_int_equal(mvw_trainer_publish(t, dir, pos,
                                         MV_SNAPSHOT_MAX_POSITIONS + 1, now,
                                         NULL, 0, &err), MV_ERR);
    publish(t, dir, NULL, 0, now + 3000);
    assert_int_equal(current_generation(dir), 4);

    mvw_trainer_free(t);
}


/* ---- restore ------------------------------------------------------------ */

static mvw_trainer_t *
restored(const mvw_trainer_params_t *p, const char *dir)
{
    mvw_trainer_t  *r = new_trainer(p);
    mv_generation_t  *s = open_current(dir);
    mv_err_t        err;

    if (mvw_trainer_restore_generation(r, s, &err) != MV_OK) {
        fail_msg("restore: %s", err.msg);
    }
    mv_generation_close(s);
    return r;
}


/* The same further records for both: item posts, actions old and new. */
static void
more_records(mvw_trainer_t *t, int64_t from)
{
    float     v[DIM] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f };
    char      user[32], item[32];
    mv_rng_t  rng;

    mv_rng_seed(&rng, 99);
    post_item(t, "late-item", "films", v, 1.5f, from + 10);
    post_item(t, "item-04", "music", v, 7.0f, from + 20);
    for (int k = 0; k < 200; k++) {
        snprintf(user, sizeof(user), "user-%d",
                 (int) (mv_rng_next(&rng) % 15));
        snprintf(item, sizeof(item), "item-%02d",
                 (int) (mv_rng_next(&rng) % 46));
        act(t, user, item, (mv_action_type_t) (mv_rng_next(&rng)
                                               % MV_ACTION_TYPES),
            from + (int64_t) (mv_rng_next(&rng) % (3 * HOUR)) - HOUR);
    }
}


static void
test_restore_round_trip(void **state)
{
    char                 dir_a[80], dir_b[80];
    mv_stream_pos_t      pos[2];
    mvw_trainer_params_t p;
    mvw_trainer_t       *t, *r;
    mvw_trainer_stats_t  st, rt;
    mv_generation_t     *sa, *sb;
    const mv_snapshot_view_t *va, *vb;
    mvw_mf_t            *mt, *mr;
    const int64_t        now = T0 + 3 * HOUR;
    const char          *dir = *state;

    small_params(&p);
    p.half_life_ms = 2.0 * HOUR;
    t = populated(&p, 5);
    fill_positions(pos);
    publish(t, dir, pos, 2, now);

    r = restored(&p, dir);
    st = stats_of(t);
    rt = stats_of(r);
    assert_int_equal(rt.generation, 1);
    assert_int_equal(rt.n_items, st.n_items);
    assert_int_equal(rt.n_users, st.n_users);
    assert_int_equal(rt.pending, 0);
    mt = mvw_trainer_model(t);
    mr = mvw_trainer_model(r);
    assert_int_equal(mvw_mf_n_items(mr), st.n_items);
    assert_int_equal(mvw_mf_n_users(mr), st.n_users);
    assert_memory_equal(mvw_mf_item(mr, 0), mvw_mf_item(mt, 0),
                        (size_t) st.n_items * DIM * sizeof(float));
    assert_memory_equal(mvw_mf_user(mr, 0), mvw_mf_user(mt, 0),
                        (size_t) st.n_users * DIM * sizeof(float));
    for (uint32_t i = 0; i < st.n_items; i++) {
        assert_true(mvw_trainer_popularity(r, i, now)
                    == mvw_trainer_popularity(t, i, now));
        assert_true(mvw_trainer_popularity(r, i, now + 5 * HOUR)
                    == mvw_trainer_popularity(t, i, now + 5 * HOUR));
    }

    /* ids and categories: publish both again and compare the files */
    snprintf(dir_a, sizeof(dir_a), "%s/a", dir);
    snprintf(dir_b, sizeof(dir_b), "%s/b", dir);
    assert_int_equal(mkdir(dir_a, 0755), 0);
    assert_int_equal(mkdir(dir_b, 0755), 0);
    publish(t, dir_a, pos, 2, now + 1);
    publish(r, dir_b, pos, 2, now + 1);
    sa = open_current(dir_a);
    sb = open_current(dir_b);
    va = gen_view(sa);
    vb = gen_view(sb);
    assert_int_equal(va->generation, 2);
    assert_int_equal(vb->generation, 2);
    assert_int_equal(va->n_items, vb->n_items);
    assert_int_equal(va->n_categories, vb->n_categories);
    for (uint32_t c = 0; c < va->n_categories; c++) {
        assert_string_equal(tab_id(&va->categories, c),
                            tab_id(&vb->categories, c));
    }
    for (uint32_t i = 0; i < va->n_items; i++) {
        assert_string_equal(tab_id(&va->items, i),
                            tab_id(&vb->items, i));
        assert_int_equal(mvw_trainer_find_item(r,
                             tab_id(&va->items, i)), i);
    }
    for (uint32_t u = 0; u < va->n_users; u++) {
        assert_string_equal(tab_id(&va->users, u),
                            tab_id(&vb->users, u));
    }
    assert_memory_equal(va->item_meta, vb->item_meta,
                        va->n_items * sizeof(mv_item_meta_t));
    assert_memory_equal(va->item_vectors, vb->item_vectors,
                        (size_t) va->n_items * DIM * sizeof(float));
    assert_memory_equal(va->user_vectors, vb->user_vectors,
                        (size_t) va->n_users * DIM * sizeof(float));
    mv_generation_close(sa);
    mv_generation_close(sb);

    /* the same further records: the same popularity, to the bit */
    more_records(t, now + 1);
    more_records(r, now + 1);
    st = stats_of(t);
    rt = stats_of(r);
    assert_int_equal(rt.n_items, st.n_items);
    assert_int_equal(rt.n_users, st.n_users);
    for (uint32_t i = 0; i < st.n_items; i++) {
        assert_true(mvw_trainer_popularity(r, i, now + 4 * HOUR)
                    == mvw_trainer_popularity(t, i, now + 4 * HOUR));
    }
    for (uint32_t u = 0; u < rt.n_users; u++) {
        assert_true(mvw_mf_user(mr, u)[DIM - 1] == 1.0f);
    }

    mvw_trainer_free(t);
    mvw_trainer_free(r);
}


static void
test_restore_refusals(void **state)
{
    mvw_trainer_params_t p, q;
    mvw_trainer_t       *t, *r;
    mv_generation_t     *s;
    mv_err_t             err;
    const char          *dir = *state;

    small_params(&p);
    t = populated(&p, 3);
    publish(t, dir, NULL, 0, T0);
    s = open_current(dir);

    q = p;
    q.mf.dim = 2 * DIM;
    r = new_trainer(&q);
    assert_int_equal(mvw_trainer_restore_generation(r, s, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "dim"));
    mvw_trainer_free(r);

    q = p;
    q.metric = MV_METRIC_L2;
    r = new_trainer(&q);
    assert_int_equal(mvw_trainer_restore_generation(r, s, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "metric"));
    mvw_trainer_free(r);

    r = new_trainer(&p);
    act(r, "u", "i", MV_ACTION_CLICK, T0);
    assert_int_equal(mvw_trainer_restore_generation(r, s, &err),
                     MV_ERR);
    mvw_trainer_free(r);

    r = new_trainer(&p);
    post_item(r, "only-an-item", "", (const float[DIM]) { 1 }, 0.0f, T0);
    assert_int_equal(mvw_trainer_restore_generation(r, s, &err),
                     MV_ERR);
    mvw_trainer_free(r);

    /* the restored trainer is non-empty too */
    r = new_trainer(&p);
    assert_int_equal(mvw_trainer_restore_generation(r, s, &err),
                     MV_OK);
    assert_int_equal(mvw_trainer_restore_generation(r, s, &err),
                     MV_ERR);
    mvw_trainer_free(r);

    mv_generation_close(s);
    mvw_trainer_free(t);
}


static void
test_publish_after_restore_reinserts_touched(void **state)
{
    char                 dir2[80];
    mvw_trainer_params_t p;
    mvw_trainer_t       *t, *r;
    mvw_trainer_stats_t  before, after;
    mv_generation_t     *s;
    uint32_t             dirty_bound;
    float                v[DIM] = { 0, 1, 0, 0, 0, 0, 0, 0 };
    const char          *dir = *state;

    small_params(&p);
    t = populated(&p, 17);
    snprintf(dir2, sizeof(dir2), "%s/next", dir);
    assert_int_equal(mkdir(dir2, 0755), 0);
    publish(t, dir, NULL, 0, T0 + 3 * HOUR);

    /* no replay, 2 negatives: an action touches at most 3 items */
    p.replay_ratio = 0.0;
    p.neg_ratio = 2.0;
    r = restored(&p, dir);
    publish(r, dir2, NULL, 0, T0 + 3 * HOUR);
    assert_int_equal(stats_of(r).last_reinserted, 0);

    act(r, "user-3", "item-12", MV_ACTION_PURCHASE, T0 + 4 * HOUR);
    publish(r, dir2, NULL, 0, T0 + 4 * HOUR);
    assert_true(stats_of(r).last_reinserted >= 1);
    assert_true(stats_of(r).last_reinserted <= 3);

    /* a new item is added on top of what was touched */
    post_item(r, "brand-new", "", v, 1.0f, T0 + 4 * HOUR);
    act(r, "user-4", "item-13", MV_ACTION_CLICK, T0 + 4 * HOUR);
    publish(r, dir2, NULL, 0, T0 + 4 * HOUR);
    assert_true(stats_of(r).last_reinserted >= 2);
    assert_true(stats_of(r).last_reinserted <= 4);
    s = open_current(dir2);
    assert_int_equal(gen_view(s)->n_items, stats_of(t).n_items + 1);
    assert_int_equal(gen_view(s)->generation, 4);
    mv_generation_close(s);
    mvw_trainer_free(r);

    /* with replay: each replayed example touches up to 3 more */
    p.replay_ratio = 2.0;
    r = restored(&p, dir);
    before = stats_of(r);
    act(r, "user-3", "item-12", MV_ACTION_PURCHASE, T0 + 4 * HOUR);
    act(r, "user-5", "item-20", MV_ACTION_VIEW, T0 + 4 * HOUR);
    publish(r, dir2, NULL, 0, T0 + 4 * HOUR);
    after = stats_of(r);
    dirty_bound = (uint32_t) (2 * 3 + 3 * (after.replayed - before.replayed));
    assert_int_equal(after.replayed - before.replayed, 4);
    assert_true(after.last_reinserted >= 1);
    assert_true(after.last_reinserted <= dirty_bound);
    assert_true(after.last_reinserted < after.n_items / 2);
    mvw_trainer_free(r);

    mvw_trainer_free(t);
}


/* ---- fit ---------------------------------------------------------------- */

static void
test_fit_two_groups(void **state)
{
    mvw_trainer_params_t p;
    mvw_trainer_t       *t, *other;
    mvw_dataset_t        d;
    mv_err_t             err;
    char                 user[32], item[32];
    double               want_pop[32] = { 0 };
    size_t               ordered = 0, pairs = 0;
    mvw_mf_t            *mf;
    float                s[32];

    (void) state;
    mvw_dataset_init(&d);
    /* group g: users g-u0..9, items g-i0..11; user u takes the 8 items
       u .. u + 7 (mod 12) of its group, with weights 1..3 */
    for (int g = 0; g < 2; g++) {
        for (int u = 0; u < 10; u++) {
            for (int k = 0; k < 8; k++) {
                int    i = (u + k) % 12;
                float  w = (float) (1 + (u + k) % 3);

                snprintf(user, sizeof(user), "%c-u%d", 'a' + g, u);
                snprintf(item, sizeof(item), "%c-i%d", 'a' + g, i);
                assert_int_equal(mvw_dataset_add(&d, user, item, w,
                                                 T0 + k, &err), MV_OK);
            }
        }
    }
    /* a repeated pair adds up */
    assert_int_equal(mvw_dataset_add(&d, "a-u0", "a-i0", 2.0f, T0, &err),
                     MV_OK);
    for (size_t k = 0; k < d.n; k++) {
        want_pop[d.x[k].item] += d.x[k].weight;
    }

    small_params(&p);
    p.lr_decay = 1;
    t = new_trainer(&p);
    assert_int_equal(mvw_trainer_fit(t, &d, 60, NULL, NULL, &err), MV_OK);
    assert_int_equal(stats_of(t).n_items, 24);
    assert_int_equal(stats_of(t).n_users, 20);
    assert_true(stats_of(t).updates >= 60 * d.n);

    for (uint32_t i = 0; i < d.items.n; i++) {
        const char  *id = mvw_idmap_get(&d.items, i);

        assert_int_equal(item_of(t, id), i);
        assert_true(mvw_trainer_popularity(t, i, 0) == want_pop[i]);
    }

    mf = mvw_trainer_model(t);
    for (uint32_t u = 0; u < d.users.n; u++) {
        char      g = mvw_idmap_get(&d.users, u)[0];
        uint32_t  best = 0;

        assert_int_equal(mvw_trainer_find_user(t, mvw_idmap_get(&d.users, u)),
                         u);
        mvw_mf_score(mf, &u, 1, s);
        for (uint32_t i = 0; i < d.items.n; i++) {
            best = s[i] > s[best] ? i : best;
            for (uint32_t j = 0; j < d.items.n; j++) {
                if (mvw_idmap_get(&d.items, i)[0] == g
                    && mvw_idmap_get(&d.items, j)[0] != g)
                {
                    ordered += s[i] > s[j];
                    pairs++;
                }
            }
        }
        assert_int_equal(mvw_idmap_get(&d.items, best)[0], g);
    }
    print_message("fit: %zu of %zu in/out pairs ordered\n", ordered, pairs);
    assert_true(ordered >= pairs * 95 / 100);

    /* refused on a non-empty trainer: fitted, or fed one action */
    assert_int_equal(mvw_trainer_fit(t, &d, 1, NULL, NULL, &err), MV_ERR);
    other = new_trainer(&p);
    act(other, "x", "y", MV_ACTION_CLICK, T0);
    assert_int_equal(mvw_trainer_fit(other, &d, 1, NULL, NULL, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "empty"));
    mvw_trainer_free(other);

    mvw_trainer_free(t);
    mvw_dataset_free(&d);
}


static int
stop_after_two(void *ctx, uint32_t epoch, double mean_loss)
{
    uint32_t  *calls = ctx;

    assert_true(isfinite(mean_loss));
    assert_int_equal(epoch, ++*calls);
    return epoch == 2;
}


static void
test_fit_progress_stops(void **state)
{
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    mvw_dataset_t        d;
    mv_err_t             err;
    uint32_t             calls = 0;

    (void) state;
    mvw_dataset_init(&d);
    assert_int_equal(mvw_dataset_add(&d, "u", "i", 1.0f, 0, &err), MV_OK);
    assert_int_equal(mvw_dataset_add(&d, "u", "j", 1.0f, 0, &err), MV_OK);
    small_params(&p);
    t = new_trainer(&p);
    assert_int_equal(mvw_trainer_fit(t, &d, 10, stop_after_two, &calls,
                                     &err), MV_OK);
    assert_int_equal(calls, 2);
    mvw_trainer_free(t);
    mvw_dataset_free(&d);
}


/* ---- regressions -----------------------------------------------------------
 *
 * Bugs these tests found (fixed in commit 2a9657e), each kept as a test that
 * fails when the bug comes back.
 */


/*
 * A positive on an item the negative sampler cannot draw yet (posted after
 * the sampler's last build, or without popularity then) used to get log q =
 * log(1e-30) in the sampled softmax's correction: its logit was raised by
 * 69, so neither its row nor the user's moved and the example taught
 * nothing.  learn.c's log_q now counts such an item as the rarest drawable
 * one.  Since commit af8c007 the trainer also rebuilds the sampler early,
 * once positives on undrawable items reach 1/32 of what it can draw, so the
 * test builds the sampler over 200 items and then gives a posted item, with
 * popularity 0, three purchases: all three are learnt while it is still
 * undrawable, and its row must move (with q = 1e-30 it stays bit for bit).
 */
static void
test_bug_new_item_learns_before_sampler_rebuild(void **state)
{
    mvw_trainer_params_t p;
    mvw_trainer_t       *t;
    mvw_mf_t            *mf;
    float                v[DIM] = { 0.1f, -0.2f, 0.3f, 0.1f, 0, 0, 0, 0 };
    float                before[DIM];
    uint32_t             i;
    char                 id[16];

    (void) state;
    small_params(&p);                     /* softmax, power 0.75 */
    t = new_trainer(&p);
    mf = mvw_trainer_model(t);

    /* 200 items with popularity; the first action builds the sampler
       over all of them (and resets its count of undrawable positives) */
    for (int k = 0; k < 200; k++) {
        snprintf(id, sizeof(id), "i%d", k);
        post_item(t, id, "", v, 1.0f, T0);
    }
    act(t, "ux", "i0", MV_ACTION_CLICK, T0 + 1);
    post_item(t, "new", "", v, 0.0f, T0 + 2);       /* not drawable */
    i = (uint32_t) item_of(t, "new");
    memcpy(before, mvw_mf_item(mf, i), sizeof(before));

    for (int k = 0; k < 3; k++) {         /* 3 * 32 < 200: no rebuild */
        act(t, "me", "new", MV_ACTION_PURCHASE, T0 + 3 + k);
    }
    assert_memory_not_equal(mvw_mf_item(mf, i), before, sizeof(before));
    mvw_trainer_free(t);
}


/*
 * An event stamped after the publish time (a client clock ahead of the
 * worker's) used to leave the item's reference time after now_ms in the
 * original trainer, while a restore takes the publish time as every item's
 * reference: the same further records then gave different popularity in
 * the original and in the restored trainer, breaking the exactly-once
 * arithmetic of trainer.h.  Fixed by decaying backward in time too (decay()
 * used to refuse to grow a value backwards) and by re-referencing every
 * item's popularity to the publish time at each publish.
 */
static void
test_bug_future_event_restore_same_popularity(void **state)
{
    mvw_trainer_params_t p;
    mvw_trainer_t       *t, *r;
    const int64_t        now = T0 + 3 * HOUR;
    uint32_t             ti, ri;
    const char          *dir = *state;

    small_params(&p);
    p.half_life_ms = (double) HOUR;
    t = populated(&p, 21);                  /* events up to T0 + 2 h */

    act(t, "u1", "x", MV_ACTION_PURCHASE, now + HOUR);  /* ahead of now */
    publish(t, dir, NULL, 0, now);
    r = restored(&p, dir);

    act(t, "u2", "x", MV_ACTION_CLICK, now + 2 * HOUR);
    act(r, "u2", "x", MV_ACTION_CLICK, now + 2 * HOUR);
    ti = (uint32_t) item_of(t, "x");
    ri = (uint32_t) item_of(r, "x");
    print_message("original %.6f, restored %.6f\n",
                  mvw_trainer_popularity(t, ti, now + 2 * HOUR),
                  mvw_trainer_popularity(r, ri, now + 2 * HOUR));
    assert_true(mvw_trainer_popularity(t, ti, now + 2 * HOUR)
                == mvw_trainer_popularity(r, ri, now + 2 * HOUR));

    mvw_trainer_free(t);
    mvw_trainer_free(r);
}


/*
 * Restoring a snapshot whose graph has no upper-level links (one item, or
 * a few that all drew level 0) used to make mv_hnsw_from_graph
 * (shared/hnsw.c) call memcpy(h->upper_links, g->upper_links, 0) with NULL
 * pointers: undefined behaviour, which the sanitizer build
 * (-fsanitize=undefined -fno-sanitize-recover) reports as "null pointer
 * passed as argument 1" and aborts on.  The copy is now skipped when there
 * are no upper links; the test can only fail in the sanitizer build.
 */
static void
test_bug_restore_graph_without_upper_levels(void **state)
{
    const char           *dir = *state;
    float                 v[DIM] = { 1, 0, 0, 0, 0, 0, 0, 0 };
    mvw_trainer_params_t  p;
    mvw_trainer_t        *t, *r;

    small_params(&p);
    t = new_trainer(&p);
    post_item(t, "only", "", v, 1.0f, T0);
    act(t, "u", "only", MV_ACTION_CLICK, T0);
    publish(t, dir, NULL, 0, T0);
    r = restored(&p, dir);
    assert_int_equal(stats_of(r).n_items, 1);
    mvw_trainer_free(r);
    mvw_trainer_free(t);
}


int
main(void)
{
#define WITH_TMPDIR(f) \
    cmocka_unit_test_setup_teardown(f, mvt_tmpdir_setup, mvt_tmpdir_teardown)

    const struct CMUnitTest  tests[] = {
        WITH_TMPDIR(test_item_record_creates_item),
        WITH_TMPDIR(test_item_repost_updates_category_only),
        WITH_TMPDIR(test_item_record_deleted),
        cmocka_unit_test(test_action_creates_user_and_item),
        cmocka_unit_test(test_action_weights),
        cmocka_unit_test(test_dislike_not_positive),
        WITH_TMPDIR(test_invalid_records_change_nothing),
        WITH_TMPDIR(test_example_record),
        cmocka_unit_test(test_popularity_exact_sum_without_decay),
        cmocka_unit_test(test_popularity_half_life),
        cmocka_unit_test(test_repeated_actions_raise_score),
        cmocka_unit_test(test_replay_ratio),
        cmocka_unit_test(test_user_bias_stays_one),
        WITH_TMPDIR(test_publish_matches_model),
        WITH_TMPDIR(test_restore_round_trip),
        WITH_TMPDIR(test_restore_refusals),
        WITH_TMPDIR(test_publish_after_restore_reinserts_touched),
        cmocka_unit_test(test_fit_two_groups),
        cmocka_unit_test(test_fit_progress_stops),
        cmocka_unit_test(test_bug_new_item_learns_before_sampler_rebuild),
        WITH_TMPDIR(test_bug_future_event_restore_same_popularity),
        /* last: under UBSan it aborts the program */
        WITH_TMPDIR(test_bug_restore_graph_without_upper_levels),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
