/*
 * test_publisher.c -- the trainer's publish pipeline: what a freeze
 * carries (exactly the users whose rows changed, plus the new ones), that
 * a failed publish loses none of it, generations of several files whose
 * overlay equals the model for every user, compaction into a base,
 * pruning to what the kept generations name, restore and resume from a
 * generation of several files, and the publisher's thread (hand-off,
 * busy, results collected on the caller's thread).
 */
#include <dirent.h>
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
#include "events.h"
#include "generation.h"
#include "model/mf.h"
#include "model/trainer.h"
#include "publish/publish_batch.h"
#include "publish/publisher.h"
#include "publish/trainer_snapshot.h"

#define DIM     8
#define T0      1704067200000LL


/* ---- helpers ------------------------------------------------------------ */

static mvw_trainer_t *
trainer(double replay_ratio)
{
    mvw_trainer_params_t  p;
    mvw_trainer_t        *t;
    mv_err_t              err;

    mvw_trainer_params_default(&p);
    p.mf.dim = DIM;
    p.half_life_ms = 0.0;
    p.replay_window = replay_ratio > 0 ? 64 : 0;
    p.replay_ratio = replay_ratio;
    p.neg_ratio = 2.0;
    p.hnsw_m = 8;
    p.hnsw_ef_construction = 40;
    p.keep = 2;
    p.seed = 11;
    t = mvw_trainer_new(&p, &err);
    if (t == NULL) {
        fail_msg("mvw_trainer_new: %s", err.msg);
    }
    return t;
}


static void
click(mvw_trainer_t *t, const char *user, const char *item)
{
    mv_action_t  a;
    char         buf[512];
    size_t       len;
    mv_err_t     err;

    memset(&a, 0, sizeof(a));
    snprintf(a.user_id, sizeof(a.user_id), "%s", user);
    snprintf(a.item_id, sizeof(a.item_id), "%s", item);
    a.type = MV_ACTION_CLICK;
    a.timestamp_ms = T0;
    len = mv_action_encode(&a, buf, sizeof(buf));
    assert_true(len > 0);
    if (mvw_trainer_apply(t, MV_RECORD_ACTION, buf, len, T0, &err) != MV_OK)
    {
        fail_msg("click %s %s: %s", user, item, err.msg);
    }
}


/* n clicks of users PREFIX-<k % users> on items item-<k % 13>. */
static void
clicks(mvw_trainer_t *t, const char *prefix, int n, int users)
{
    char  u[64], i[64];

    for (int k = 0; k < n; k++) {
        snprintf(u, sizeof(u), "%s-%d", prefix, k % users);
        snprintf(i, sizeof(i), "item-%d", k % 13);
        click(t, u, i);
    }
}


/* A copy of every user row of t. */
static float *
rows_of(mvw_trainer_t *t)
{
    mvw_trainer_stats_t  st;
    float               *r;

    mvw_trainer_stats(t, &st);
    r = malloc(((size_t) st.n_users + 1) * DIM * sizeof(float));
    assert_non_null(r);
    if (st.n_users > 0) {
        memcpy(r, mvw_mf_user(mvw_trainer_model(t), 0),
               (size_t) st.n_users * DIM * sizeof(float));
    }
    return r;
}


static int
in_batch(const mvw_publish_batch_t *b, uint32_t u)
{
    for (uint32_t k = 0; k < b->n_changed; k++) {
        if (b->user_index[k] == u) {
            return 1;
        }
    }
    return 0;
}


/* Every user of t is found in dir/current with exactly t's row. */
static void
assert_overlay_equals_model(mvw_trainer_t *t, const char *dir)
{
    mvw_trainer_stats_t  st;
    mv_generation_t     *g;
    const float         *v;
    char                 path[512], id[64];
    mv_err_t             err;

    snprintf(path, sizeof(path), "%s/current", dir);
    g = mv_generation_open(path, NULL, NULL, &err);
    if (g == NULL) {
        fail_msg("%s: %s", path, err.msg);
    }
    mvw_trainer_stats(t, &st);
    assert_int_equal(mv_generation_info(g)->n_users, st.n_users);
    for (uint32_t u = 0; u < st.n_users; u++) {
        snprintf(id, sizeof(id), "%s", mvw_trainer_user_id(t, u));
        v = mv_generation_user(g, id, strlen(id));
        if (v == NULL) {
            fail_msg("user %s not in generation %llu", id,
                     (unsigned long long) mv_generation_info(g)->generation);
        }
        assert_memory_equal(v, mvw_mf_user(mvw_trainer_model(t), u),
                            DIM * sizeof(float));
    }
    assert_null(mv_generation_user(g, "nobody", 6));
    mv_generation_close(g);
}


/* The manifest dir/current names: segments and their kinds. */
static void
current_segments(const char *dir, uint32_t *n, uint32_t *bases,
    uint32_t *deltas)
{
    const mv_manifest_input_t  *m;
    mv_generation_t            *g;
    char                        path[512];
    mv_err_t                    err;

    snprintf(path, sizeof(path), "%s/current", dir);
    g = mv_generation_open(path, NULL, NULL, &err);
    assert_non_null(g);
    m = mv_generation_manifest(g);
    assert_non_null(m);
    *n = m->n_segments;
    *bases = *deltas = 0;
    for (uint32_t i = 1; i < m->n_segments; i++) {
        *bases += m->kinds[i] == MV_GEN_SEGMENT_USER_BASE;
        *deltas += m->kinds[i] == MV_GEN_SEGMENT_USER_DELTA;
    }
    mv_generation_close(g);
}


static void
publish(mvw_trainer_t *t, const char *dir)
{
    mv_stream_pos_t  pos = { .stream = "actions", .offset = 1 };
    mv_err_t         err;

    if (mvw_trainer_publish(t, dir, &pos, 1, T0, NULL, 0, &err) != MV_OK) {
        fail_msg("publish into %s: %s", dir, err.msg);
    }
}


static int
exists(const char *dir, const char *name)
{
    char         path[512];
    struct stat  st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}


/* ---- what a freeze carries ---------------------------------------------- */

static void
test_freeze_carries_exactly_the_changed_users(void **state)
{
    mvw_trainer_t        *t = trainer(1.0);
    mvw_publish_batch_t   b;
    mvw_trainer_stats_t   st;
    float                *before;
    uint32_t              old, moved = 0;
    mv_err_t              err;

    (void) state;
    clicks(t, "u", 200, 40);

    /* the first freeze carries every user: all new */
    assert_int_equal(mvw_trainer_freeze(t, NULL, 0, T0, &b, &err), MV_OK);
    mvw_trainer_stats(t, &st);
    assert_int_equal(b.n_changed, st.n_users);
    assert_int_equal(b.n_users_total, st.n_users);
    assert_int_equal(b.n_items, st.n_items);
    mvw_publish_batch_free(&b);

    /* nothing since: nothing */
    assert_int_equal(mvw_trainer_freeze(t, NULL, 0, T0, &b, &err), MV_OK);
    assert_int_equal(b.n_changed, 0);
    mvw_publish_batch_free(&b);

    /* a few clicks of old users (with replay touching more) and two new
       users: exactly the users whose rows changed, and the new ones */
    old = st.n_users;
    before = rows_of(t);
    click(t, "u-3", "item-1");
    click(t, "u-7", "item-2");
    click(t, "new-1", "item-3");
    click(t, "new-2", "item-4");
    assert_int_equal(mvw_trainer_freeze(t, NULL, 0, T0, &b, &err), MV_OK);
    mvw_trainer_stats(t, &st);
    assert_int_equal(st.n_users, old + 2);
    for (uint32_t u = 0; u < old; u++) {
        int changed = memcmp(before + (size_t) u * DIM,
                             mvw_mf_user(mvw_trainer_model(t), u),
                             DIM * sizeof(float)) != 0;

        assert_int_equal(in_batch(&b, u), changed);
        moved += changed;
    }
    assert_true(moved >= 2);
    assert_true(in_batch(&b, old) && in_batch(&b, old + 1));
    assert_int_equal(b.n_changed, moved + 2);
    /* the rows carried are the model's */
    for (uint32_t k = 0; k < b.n_changed; k++) {
        assert_memory_equal(b.user_vectors + (size_t) k * DIM,
                            mvw_mf_user(mvw_trainer_model(t),
                                        b.user_index[k]),
                            DIM * sizeof(float));
    }

    /* a failed publish gives them back: the next freeze carries them */
    mvw_trainer_unfreeze(t, &b);
    {
        mvw_publish_batch_t  c;

        assert_int_equal(mvw_trainer_freeze(t, NULL, 0, T0, &c, &err),
                         MV_OK);
        assert_int_equal(c.n_changed, b.n_changed);
        for (uint32_t k = 0; k < b.n_changed; k++) {
            assert_true(in_batch(&c, b.user_index[k]));
        }
        mvw_publish_batch_free(&c);
    }
    mvw_publish_batch_free(&b);
    free(before);
    mvw_trainer_free(t);
}


/* ---- generations of several files --------------------------------------- */

static void
test_generations_overlay_compaction_pruning(void **state)
{
    const char     *dir = *state;
    mvw_trainer_t  *t = trainer(1.0);
    uint32_t        n, bases, deltas;
    char            prefix[32];
    mv_err_t        err;

    mvw_publisher_set_compaction(mvw_trainer_publisher(t, dir, &err), 3,
                                 1000.0);
    clicks(t, "u", 300, 50);
    publish(t, dir);
    assert_overlay_equals_model(t, dir);
    current_segments(dir, &n, &bases, &deltas);
    assert_int_equal(n, 2);                 /* items + one delta */
    assert_int_equal(deltas, 1);

    /* each generation adds a delta with what changed */
    for (int k = 0; k < 2; k++) {
        snprintf(prefix, sizeof(prefix), "w%d", k);
        clicks(t, prefix, 30, 10);
        publish(t, dir);
        assert_overlay_equals_model(t, dir);
    }
    current_segments(dir, &n, &bases, &deltas);
    assert_int_equal(bases, 0);
    assert_int_equal(deltas, 3);

    /* a fourth delta: more than 3 ... */
    clicks(t, "x", 30, 10);
    publish(t, dir);
    assert_overlay_equals_model(t, dir);
    current_segments(dir, &n, &bases, &deltas);
    assert_int_equal(bases, 0);
    assert_int_equal(deltas, 4);

    /* ... so the next publish merges them into a base (and, with no user
       changed since, names no new delta) */
    publish(t, dir);
    assert_overlay_equals_model(t, dir);
    current_segments(dir, &n, &bases, &deltas);
    assert_int_equal(bases, 1);
    assert_int_equal(deltas, 0);
    assert_true(exists(dir, "users-00000000000000000004.base.mvs"));

    /* deltas then count against the base's bytes: with a ratio of 1000
       only their number merges them again */
    clicks(t, "y", 30, 10);
    publish(t, dir);
    current_segments(dir, &n, &bases, &deltas);
    assert_int_equal(bases, 1);
    assert_int_equal(deltas, 1);
    assert_overlay_equals_model(t, dir);

    /* keep = 2: the directory holds what the two newest generations name */
    {
        unsigned  files = 0;
        DIR      *dh = opendir(dir);
        struct dirent  *de;

        assert_non_null(dh);
        while ((de = readdir(dh)) != NULL) {
            files += de->d_name[0] != '.';
        }
        closedir(dh);
        /* current, 2 manifests, 2 items files, the base, 1 delta */
        assert_int_equal(files, 7);
    }

    mvw_trainer_free(t);
}


static void
test_failed_publish_loses_nothing(void **state)
{
    const char           *dir = *state;
    mvw_trainer_t        *t = trainer(0.0);
    mvw_trainer_stats_t   st;
    char                  name[64], path[512];
    mv_stream_pos_t       pos = { .stream = "actions", .offset = 1 };
    mv_err_t              err;

    clicks(t, "u", 100, 20);
    publish(t, dir);
    clicks(t, "late", 20, 5);

    /* generation 2's items file cannot be renamed into place */
    mv_gen_items_name(2, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(mvw_trainer_publish(t, dir, &pos, 1, T0, NULL, 0,
                                         &err), MV_ERR);
    mvw_trainer_stats(t, &st);
    assert_int_equal(st.generation, 1);
    assert_int_equal(rmdir(path), 0);

    /* the next try takes the next number and carries the late users */
    publish(t, dir);
    mvw_trainer_stats(t, &st);
    assert_int_equal(st.generation, 3);
    assert_true(exists(dir, "gen-00000000000000000003.mvm"));
    assert_false(exists(dir, "gen-00000000000000000002.mvm"));
    assert_overlay_equals_model(t, dir);
    mvw_trainer_free(t);
}


/* ---- restore and resume ------------------------------------------------- */

static mvw_trainer_t *
restore_resume(const char *dir)
{
    mvw_trainer_t    *r = trainer(1.0);
    mv_generation_t  *g;
    char              path[512];
    mv_err_t          err;

    snprintf(path, sizeof(path), "%s/current", dir);
    g = mv_generation_open(path, NULL, NULL, &err);
    assert_non_null(g);
    if (mvw_trainer_restore_generation(r, g, &err) != MV_OK
        || mvw_trainer_resume(r, dir, g, &err) != MV_OK)
    {
        fail_msg("restore: %s", err.msg);
    }
    mv_generation_close(g);
    return r;
}


static void
test_restore_resume_names_the_same_segments(void **state)
{
    const char           *dir = *state;
    mvw_trainer_t        *t = trainer(1.0), *r;
    mvw_trainer_stats_t   st, rt;
    mvw_publish_batch_t   b;
    uint32_t              n, bases, deltas, n2, b2, d2;
    mv_err_t              err;

    clicks(t, "u", 200, 30);
    publish(t, dir);
    clicks(t, "v", 40, 8);
    publish(t, dir);
    current_segments(dir, &n, &bases, &deltas);
    assert_int_equal(deltas, 2);

    r = restore_resume(dir);
    mvw_trainer_stats(t, &st);
    mvw_trainer_stats(r, &rt);
    assert_int_equal(rt.n_users, st.n_users);
    assert_int_equal(rt.generation, st.generation);
    assert_overlay_equals_model(r, dir);

    /* resumed: nothing to carry until something changes */
    assert_int_equal(mvw_trainer_freeze(r, NULL, 0, T0, &b, &err), MV_OK);
    assert_int_equal(b.n_changed, 0);
    mvw_publish_batch_free(&b);

    /* its next generation names the same segments plus its delta */
    click(r, "after-restore", "item-1");
    publish(r, dir);
    current_segments(dir, &n2, &b2, &d2);
    assert_int_equal(d2, deltas + 1);
    assert_overlay_equals_model(r, dir);

    mvw_trainer_free(t);
    mvw_trainer_free(r);
}


/* ---- the publisher's thread --------------------------------------------- */

static void
test_thread_hand_off(void **state)
{
    const char            *dir = *state;
    mvw_trainer_t         *t = trainer(0.0);
    mvw_publisher_t       *p;
    mvw_publish_batch_t    b, c, done;
    mvw_publish_report_t   r;
    mv_err_t               err;

    p = mvw_trainer_publisher(t, dir, &err);
    assert_non_null(p);
    assert_int_equal(mvw_publisher_start(p, &err), MV_OK);
    assert_int_equal(mvw_publisher_busy(p), 0);
    assert_int_equal(mvw_publisher_poll(p, 0, &done, &r), 0);

    clicks(t, "u", 60, 12);
    assert_int_equal(mvw_trainer_freeze(t, NULL, 0, T0, &b, &err), MV_OK);
    assert_int_equal(mvw_publisher_submit(p, &b), 1);
    assert_int_equal(b.n_changed, 0);           /* moved to the publisher */

    /* while it is not collected, another batch is refused (kept by the
       caller), and the trainer goes on */
    clicks(t, "v", 10, 2);
    assert_int_equal(mvw_trainer_freeze(t, NULL, 0, T0, &c, &err), MV_OK);
    assert_int_equal(mvw_publisher_submit(p, &c), 0);
    assert_int_equal(c.n_changed, 2);
    assert_int_equal(mvw_publisher_busy(p), 1);

    assert_int_equal(mvw_publisher_poll(p, 1, &done, &r), 1);
    assert_true(r.ok);
    assert_int_equal(r.generation, 1);
    assert_int_equal(done.n_changed, 12);
    assert_true(r.bytes > 0);
    mvw_trainer_published(t, &done, &r);
    mvw_publish_batch_free(&done);
    assert_int_equal(mvw_publisher_busy(p), 0);

    assert_int_equal(mvw_publisher_submit(p, &c), 1);
    assert_int_equal(mvw_publisher_poll(p, 1, &done, &r), 1);
    assert_true(r.ok);
    assert_int_equal(r.generation, 2);
    mvw_trainer_published(t, &done, &r);
    mvw_publish_batch_free(&done);
    assert_overlay_equals_model(t, dir);

    /* freed with a batch in flight: it is published first */
    click(t, "w", "item-1");
    assert_int_equal(mvw_trainer_freeze(t, NULL, 0, T0, &b, &err), MV_OK);
    assert_int_equal(mvw_publisher_submit(p, &b), 1);
    mvw_trainer_free(t);
    assert_true(exists(dir, "gen-00000000000000000003.mvm"));
}


/* On the thread, a compaction runs beside the publishes and is named by
   the first publish after it finished; every generation meanwhile stays
   whole. */
static void
test_background_compaction(void **state)
{
    const char            *dir = *state;
    mvw_trainer_t         *t = trainer(0.0);
    mvw_publisher_t       *p;
    mvw_publish_batch_t    b, done;
    mvw_publish_report_t   r;
    char                   prefix[32];
    int                    started = 0, compacted = 0;
    uint32_t               n, bases, deltas;
    mv_err_t               err;

    p = mvw_trainer_publisher(t, dir, &err);
    assert_non_null(p);
    mvw_publisher_set_compaction(p, 1, 1000.0);
    assert_int_equal(mvw_publisher_start(p, &err), MV_OK);
    for (int k = 0; k < 200 && !compacted; k++) {
        snprintf(prefix, sizeof(prefix), "k%d", k);
        clicks(t, prefix, 20, 4);
        assert_int_equal(mvw_trainer_freeze(t, NULL, 0, T0, &b, &err),
                         MV_OK);
        assert_int_equal(mvw_publisher_submit(p, &b), 1);
        assert_int_equal(mvw_publisher_poll(p, 1, &done, &r), 1);
        assert_true(r.ok);
        mvw_trainer_published(t, &done, &r);
        mvw_publish_batch_free(&done);
        started += r.compact_started;
        compacted += r.compacted;
        assert_overlay_equals_model(t, dir);
        if (started && !compacted) {
            usleep(10000);
        }
    }
    assert_true(started >= 1);
    assert_int_equal(compacted, 1);
    current_segments(dir, &n, &bases, &deltas);
    assert_int_equal(bases, 1);
    /* no part file is left, whatever ran */
    assert_false(exists(dir, "users-00000000000000000002.base.mvs"
                             ".tmp-compaction"));
    mvw_trainer_free(t);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freeze_carries_exactly_the_changed_users),
        cmocka_unit_test_setup_teardown(
            test_generations_overlay_compaction_pruning, mvt_tmpdir_setup,
            mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_failed_publish_loses_nothing,
                                        mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(
            test_restore_resume_names_the_same_segments, mvt_tmpdir_setup,
            mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_background_compaction,
                                        mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_thread_hand_off,
                                        mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
