/*
 * test_dedupe.c -- unit tests of client event id deduplication:
 *
 *   - the set (model/dedupe.h): a window of N forgets exactly the oldest
 *     id when the N+1st comes, eviction with clusters in the table (many
 *     ids over a small window, checked against a plain list), the same
 *     sequence giving the same decisions, a window of 0 remembering none;
 *   - the side file: write and read back the same ids in the same order,
 *     every single corrupted byte refused, wrong sizes refused, a file of
 *     more ids than the window keeping the newest;
 *   - the trainer: the same marked action twice is applied once (actions,
 *     popularity, duplicates counted), also as a training example, also
 *     across publish and restore of the set; an unmarked action with a
 *     repeated event_id is applied every time; dedupe_window 0 applies
 *     every time; a missing side file is reported and counted.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/tmpdir.h"

#include "actlog.h"
#include "crc32c.h"
#include "events.h"
#include "generation.h"
#include "model/dedupe.h"
#include "model/trainer.h"
#include "publish/trainer_snapshot.h"
#include "snapshot.h"

#define DIM     8
#define T0      1704067200000LL           /* 2024-01-01T00:00:00.000Z */


/* ---- the set ------------------------------------------------------------ */

static void
test_window_evicts_oldest(void **state)
{
    mvw_dedupe_t  d;
    mv_err_t      err;

    (void) state;
    mvw_dedupe_init(&d, 3);
    assert_int_equal(mvw_dedupe_contains(&d, mvw_dedupe_hash("a")), 0);
    assert_int_equal(mvw_dedupe_add(&d, mvw_dedupe_hash("a"), &err), MV_OK);
    assert_int_equal(mvw_dedupe_add(&d, mvw_dedupe_hash("b"), &err), MV_OK);
    assert_int_equal(mvw_dedupe_add(&d, mvw_dedupe_hash("c"), &err), MV_OK);
    assert_int_equal(mvw_dedupe_count(&d), 3);
    assert_true(mvw_dedupe_contains(&d, mvw_dedupe_hash("a")));
    assert_int_equal(mvw_dedupe_add(&d, mvw_dedupe_hash("d"), &err), MV_OK);
    assert_int_equal(mvw_dedupe_count(&d), 3);
    assert_false(mvw_dedupe_contains(&d, mvw_dedupe_hash("a")));
    assert_true(mvw_dedupe_contains(&d, mvw_dedupe_hash("b")));
    assert_true(mvw_dedupe_contains(&d, mvw_dedupe_hash("d")));
    assert_true(mvw_dedupe_hash("") != 0);
    mvw_dedupe_free(&d);

    /* a window of 0 remembers nothing */
    mvw_dedupe_init(&d, 0);
    assert_int_equal(mvw_dedupe_add(&d, 42, &err), MV_OK);
    assert_false(mvw_dedupe_contains(&d, 42));
    mvw_dedupe_free(&d);
}


/* Hashes that collide in the table's low bits: clusters and backward
   shifts, checked against the plain list of the last `window` ids. */
static void
test_eviction_matches_a_list(void **state)
{
    enum { WINDOW = 37, N = 5000 };
    mvw_dedupe_t  d;
    uint64_t      last[WINDOW], h;
    size_t        n_last = 0, k;
    int           in_list;
    mv_err_t      err;

    (void) state;
    mvw_dedupe_init(&d, WINDOW);
    for (int i = 0; i < N; i++) {
        /* multiples of 128 land on few home slots: long clusters */
        h = ((uint64_t) ((i * 7919) % 97) + 1) * 128;
        for (in_list = 0, k = 0; k < n_last; k++) {
            in_list |= last[k] == h;
        }
        assert_int_equal(mvw_dedupe_contains(&d, h), in_list);
        if (in_list) {
            continue;
        }
        assert_int_equal(mvw_dedupe_add(&d, h, &err), MV_OK);
        if (n_last == WINDOW) {
            memmove(last, last + 1, (WINDOW - 1) * sizeof(*last));
            n_last--;
        }
        last[n_last++] = h;
        assert_int_equal(mvw_dedupe_count(&d), n_last);
    }
    /* the table holds exactly the ring's hashes */
    size_t  in = 0;
    for (size_t s = 0; s <= d.mask; s++) {
        in += d.slots[s] != 0;
    }
    assert_int_equal(in, d.len);
    mvw_dedupe_free(&d);
}


/* The same sequence of ids gives the same decisions and the same ring. */
static void
test_deterministic(void **state)
{
    mvw_dedupe_t  a, b;
    char          id[32];
    int           seen_a[2000], seen_b[2000];

    (void) state;
    mvw_dedupe_init(&a, 100);
    mvw_dedupe_init(&b, 100);
    for (int pass = 0; pass < 2; pass++) {
        mvw_dedupe_t  *d = pass == 0 ? &a : &b;
        int           *seen = pass == 0 ? seen_a : seen_b;

        for (int i = 0; i < 2000; i++) {
            uint64_t  h;

            snprintf(id, sizeof(id), "ev-%d", (i * 7919) % 257);
            h = mvw_dedupe_hash(id);
            seen[i] = mvw_dedupe_contains(d, h);
            if (!seen[i]) {
                assert_int_equal(mvw_dedupe_add(d, h, NULL), MV_OK);
            }
        }
    }
    assert_memory_equal(seen_a, seen_b, sizeof(seen_a));
    assert_int_equal(a.len, b.len);
    for (size_t k = 0; k < a.len; k++) {
        assert_true(a.ring[(a.head + k) % 100] == b.ring[(b.head + k) % 100]);
    }
    mvw_dedupe_free(&a);
    mvw_dedupe_free(&b);
}


/* ---- the side file ------------------------------------------------------ */

static unsigned char *
read_all(const char *path, size_t *len)
{
    FILE           *f = fopen(path, "rb");
    unsigned char  *buf = malloc(1 << 16);

    assert_non_null(f);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}


static void
test_side_file_round_trip(void **state)
{
    const char     *dir = *state;
    char            path[256];
    mvw_dedupe_t    d, back, small;
    mv_err_t        err;
    unsigned char  *buf;
    size_t          len;

    mvw_dedupe_init(&d, 4);
    for (int i = 1; i <= 6; i++) {          /* 3..6 stay, in that order */
        assert_int_equal(mvw_dedupe_add(&d, (uint64_t) i * 1000, &err), MV_OK);
    }
    snprintf(path, sizeof(path), "%s/x.dedupe", dir);
    assert_int_equal(mvw_dedupe_save(&d, path, &err), MV_OK);

    buf = read_all(path, &len);
    assert_int_equal(len, MVW_DEDUPE_HEADER + 4 * 8 + 4);
    assert_memory_equal(buf, "MVDEDUP\0", 8);

    mvw_dedupe_init(&back, 4);
    assert_int_equal(mvw_dedupe_load(&back, path, &err), MV_OK);
    assert_int_equal(back.len, 4);
    for (size_t k = 0; k < 4; k++) {
        assert_true(back.ring[(back.head + k) % 4] == (uint64_t) (k + 3) * 1000);
    }

    /* a smaller window keeps the newest */
    mvw_dedupe_init(&small, 2);
    assert_int_equal(mvw_dedupe_decode(&small, buf, len, &err), MV_OK);
    assert_int_equal(small.len, 2);
    assert_false(mvw_dedupe_contains(&small, 4000));
    assert_true(mvw_dedupe_contains(&small, 5000));
    assert_true(mvw_dedupe_contains(&small, 6000));
    mvw_dedupe_free(&small);

    /* every single flipped bit of every byte is refused */
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            mvw_dedupe_t  c;

            buf[i] ^= (unsigned char) (1u << bit);
            mvw_dedupe_init(&c, 4);
            assert_int_equal(mvw_dedupe_decode(&c, buf, len, &err), MV_ERR);
            assert_int_equal(c.len, 0);
            mvw_dedupe_free(&c);
            buf[i] ^= (unsigned char) (1u << bit);
        }
    }
    /* truncated or extended */
    for (size_t n = 0; n < len; n++) {
        mvw_dedupe_t  c;

        mvw_dedupe_init(&c, 4);
        assert_int_equal(mvw_dedupe_decode(&c, buf, n, &err), MV_ERR);
        mvw_dedupe_free(&c);
    }
    /* a hash twice, with a valid CRC, is refused */
    memcpy(buf + MVW_DEDUPE_HEADER + 8, buf + MVW_DEDUPE_HEADER, 8);
    {
        uint32_t      crc = mv_crc32c(0, buf, len - 4);
        mvw_dedupe_t  c;

        for (int k = 0; k < 4; k++) {
            buf[len - 4 + k] = (unsigned char) (crc >> (8 * k));
        }
        mvw_dedupe_init(&c, 4);
        assert_int_equal(mvw_dedupe_decode(&c, buf, len, &err), MV_ERR);
        assert_non_null(strstr(err.msg, "twice"));
        mvw_dedupe_free(&c);
    }

    /* missing */
    snprintf(path, sizeof(path), "%s/none.dedupe", dir);
    assert_int_equal(mvw_dedupe_load(&back, path, &err), MV_ERR);

    free(buf);
    mvw_dedupe_free(&d);
    mvw_dedupe_free(&back);
}


/* ---- the trainer -------------------------------------------------------- */

static mvw_trainer_t *
dedupe_trainer(size_t window)
{
    mvw_trainer_params_t  p;
    mvw_trainer_t        *t;
    mv_err_t              err;

    mvw_trainer_params_default(&p);
    p.mf.dim = DIM;
    p.half_life_ms = 0.0;
    p.replay_window = 64;
    p.hnsw_m = 8;
    p.hnsw_ef_construction = 40;
    p.dedupe_window = window;
    t = mvw_trainer_new(&p, &err);
    if (t == NULL) {
        fail_msg("mvw_trainer_new: %s", err.msg);
    }
    return t;
}


/* Applies a Click of u on i named event_id, marked or not; returns rc. */
static int
click(mvw_trainer_t *t, const char *u, const char *i, const char *event_id,
    int marked, uint16_t type)
{
    mv_example_t  x;
    char          buf[MV_EXAMPLE_ENCODE_MAX];
    size_t        len;
    mv_err_t      err;

    memset(&x, 0, sizeof(x));
    snprintf(x.action.event_id, sizeof(x.action.event_id), "%s", event_id);
    snprintf(x.action.user_id, sizeof(x.action.user_id), "%s", u);
    snprintf(x.action.item_id, sizeof(x.action.item_id), "%s", i);
    x.action.type = MV_ACTION_CLICK;
    x.action.timestamp_ms = T0;
    x.action.client_event_id = marked;
    x.popularity = 1;
    len = type == MV_RECORD_EXAMPLE
          ? mv_example_encode(&x, buf, sizeof(buf))
          : mv_action_encode(&x.action, buf, sizeof(buf));
    assert_true(len > 0);
    return mvw_trainer_apply(t, type, buf, len, T0, &err);
}


static double
pop(mvw_trainer_t *t, const char *item)
{
    int64_t  i = mvw_trainer_find_item(t, item);

    assert_true(i >= 0);
    return mvw_trainer_popularity(t, (uint32_t) i, T0);
}


static void
test_trainer_applies_marked_once(void **state)
{
    mvw_trainer_t        *t = dedupe_trainer(1000);
    mvw_trainer_stats_t   st;

    (void) state;
    assert_int_equal(click(t, "u1", "i1", "r-1", 1, MV_RECORD_ACTION), MV_OK);
    assert_int_equal(click(t, "u1", "i1", "r-1", 1, MV_RECORD_ACTION),
                     MVW_TRAINER_DUPLICATE);
    assert_string_equal(mvw_trainer_last_duplicate(t), "r-1");
    /* a training example carries the marker: the same id, still once */
    assert_int_equal(click(t, "u1", "i1", "r-1", 1, MV_RECORD_EXAMPLE),
                     MVW_TRAINER_DUPLICATE);
    assert_int_equal(click(t, "u1", "i1", "r-2", 1, MV_RECORD_EXAMPLE), MV_OK);
    assert_int_equal(click(t, "u1", "i1", "r-2", 1, MV_RECORD_EXAMPLE),
                     MVW_TRAINER_DUPLICATE);
    /* unmarked: a repeated event_id is not a retry key, applied each time */
    assert_int_equal(click(t, "u1", "i1", "srv-1", 0, MV_RECORD_ACTION), MV_OK);
    assert_int_equal(click(t, "u1", "i1", "srv-1", 0, MV_RECORD_ACTION), MV_OK);
    assert_int_equal(click(t, "u1", "i1", "r-1", 0, MV_RECORD_ACTION), MV_OK);

    mvw_trainer_stats(t, &st);
    assert_int_equal(st.actions, 5);
    assert_int_equal(st.duplicates, 3);
    assert_int_equal(st.invalid, 0);
    {
        mvw_trainer_params_t  p;

        mvw_trainer_params_default(&p);
        assert_true(pop(t, "i1")
                    == 5.0 * (double) p.action_weights[MV_ACTION_CLICK]);
    }
    mvw_trainer_free(t);

    /* popularity counts each id once: Click's weight times 5 */
    t = dedupe_trainer(1000);
    double  w;
    assert_int_equal(click(t, "u1", "i2", "one", 1, MV_RECORD_ACTION), MV_OK);
    w = pop(t, "i2");
    assert_int_equal(click(t, "u2", "i2", "one", 1, MV_RECORD_ACTION),
                     MVW_TRAINER_DUPLICATE);
    assert_true(pop(t, "i2") == w);
    assert_int_equal(mvw_trainer_find_user(t, "u2"), -1);
    mvw_trainer_free(t);

    /* dedupe_window 0: no deduplication */
    t = dedupe_trainer(0);
    assert_int_equal(click(t, "u1", "i1", "r-1", 1, MV_RECORD_ACTION), MV_OK);
    assert_int_equal(click(t, "u1", "i1", "r-1", 1, MV_RECORD_ACTION), MV_OK);
    mvw_trainer_stats(t, &st);
    assert_int_equal(st.actions, 2);
    assert_int_equal(st.duplicates, 0);
    mvw_trainer_free(t);

    /* a window of 2: the third id after evicts the first */
    t = dedupe_trainer(2);
    assert_int_equal(click(t, "u", "i", "a", 1, MV_RECORD_ACTION), MV_OK);
    assert_int_equal(click(t, "u", "i", "b", 1, MV_RECORD_ACTION), MV_OK);
    assert_int_equal(click(t, "u", "i", "c", 1, MV_RECORD_ACTION), MV_OK);
    assert_int_equal(click(t, "u", "i", "a", 1, MV_RECORD_ACTION), MV_OK);
    assert_int_equal(click(t, "u", "i", "c", 1, MV_RECORD_ACTION),
                     MVW_TRAINER_DUPLICATE);
    mvw_trainer_free(t);
}


/* dir/gen-<g>.mvm.dedupe: where generation g's set is published. */
static void
side_path(const char *dir, uint64_t g, char *buf, size_t len)
{
    snprintf(buf, len, "%s/gen-%020llu.mvm.dedupe", dir,
             (unsigned long long) g);
}


/* The set travels with the generation: restored with it. */
static void
test_trainer_set_across_restore(void **state)
{
    const char           *dir = *state;
    mvw_trainer_t        *t = dedupe_trainer(1000), *r;
    mv_stream_pos_t       pos = { .stream = "actions", .offset = 1 };
    mv_generation_t      *s;
    mvw_trainer_stats_t   st;
    char                  path[512], side[512];
    mv_err_t              err;

    assert_int_equal(click(t, "u1", "i1", "r-1", 1, MV_RECORD_ACTION), MV_OK);
    assert_int_equal(click(t, "u1", "i1", "r-2", 1, MV_RECORD_ACTION), MV_OK);
    if (mvw_trainer_publish(t, dir, &pos, 1, T0, path, sizeof(path), &err)
        != MV_OK)
    {
        fail_msg("publish: %s", err.msg);
    }
    side_path(dir, 1, side, sizeof(side));
    assert_int_equal(access(side, F_OK), 0);
    /* applied after generation 1: not in its set */
    assert_int_equal(click(t, "u1", "i1", "r-3", 1, MV_RECORD_ACTION), MV_OK);

    s = mv_generation_open(path, NULL, NULL, &err);
    assert_non_null(s);
    r = dedupe_trainer(1000);
    assert_int_equal(mvw_trainer_restore_generation(r, s, &err), MV_OK);
    assert_int_equal(mvw_trainer_restore_dedupe(r, dir, s, &err), MV_OK);
    mv_generation_close(s);

    assert_int_equal(click(r, "u1", "i1", "r-1", 1, MV_RECORD_ACTION),
                     MVW_TRAINER_DUPLICATE);
    assert_int_equal(click(r, "u1", "i1", "r-2", 1, MV_RECORD_ACTION),
                     MVW_TRAINER_DUPLICATE);
    assert_int_equal(click(r, "u1", "i1", "r-3", 1, MV_RECORD_ACTION), MV_OK);
    mvw_trainer_stats(r, &st);
    assert_int_equal(st.duplicates, 2);
    assert_int_equal(st.dedupe_lost, 0);

    /* keep: side files go with their generations */
    for (int g = 0; g < 4; g++) {
        assert_int_equal(mvw_trainer_publish(t, dir, &pos, 1, T0, NULL, 0,
                                             &err), MV_OK);
    }
    assert_int_not_equal(access(side, F_OK), 0);        /* gen 1: gone */
    side_path(dir, 5, side, sizeof(side));
    assert_int_equal(access(side, F_OK), 0);

    /* missing: reported, counted, the set empty */
    assert_int_equal(unlink(side), 0);
    snprintf(path, sizeof(path), "%s/current", dir);
    s = mv_generation_open(path, NULL, NULL, &err);
    assert_non_null(s);
    assert_int_equal(mv_generation_info(s)->generation, 5);
    assert_int_equal(mvw_trainer_restore_dedupe(r, dir, s, &err), MV_ERR);
    assert_non_null(strstr(err.msg, ".mvm.dedupe"));
    mvw_trainer_stats(r, &st);
    assert_int_equal(st.dedupe_lost, 1);
    assert_int_equal(click(r, "u1", "i1", "r-1", 1, MV_RECORD_ACTION), MV_OK);
    mv_generation_close(s);

    /* a snapshot without positions (made offline) includes no record: an
       empty set, nothing lost */
    assert_int_equal(mvw_trainer_publish(t, dir, NULL, 0, T0, path,
                                         sizeof(path), &err), MV_OK);
    s = mv_generation_open(path, NULL, NULL, &err);
    assert_non_null(s);
    side_path(dir, 6, side, sizeof(side));
    unlink(side);
    assert_int_equal(mvw_trainer_restore_dedupe(r, dir, s, &err), MV_OK);
    mv_generation_close(s);
    mvw_trainer_stats(r, &st);
    assert_int_equal(st.dedupe_lost, 1);
    assert_int_equal(click(r, "u1", "i1", "r-1", 1, MV_RECORD_ACTION), MV_OK);

    mvw_trainer_free(r);
    mvw_trainer_free(t);
}


int
main(void)
{
#define TMP(f) \
    cmocka_unit_test_setup_teardown(f, mvt_tmpdir_setup, mvt_tmpdir_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_evicts_oldest),
        cmocka_unit_test(test_eviction_matches_a_list),
        cmocka_unit_test(test_deterministic),
        TMP(test_side_file_round_trip),
        cmocka_unit_test(test_trainer_applies_marked_once),
        TMP(test_trainer_set_across_restore),
    };
#undef TMP

    return cmocka_run_group_tests(tests, NULL, NULL);
}
