/*
 * test_generation.c -- unit tests of generations (generation.h): a
 * manifest over an items segment, a user base and user deltas, published
 * and read back (newest user wins, info, reuse of unchanged segments), a
 * plain snapshot read as a generation, every bit of a manifest flipped,
 * segments replaced or missing (moved), pruning with keep and side files,
 * compaction, the clean-up of orphans, listing, and a reader racing a
 * publisher that prunes behind it ("never half-visible").
 *
 * User vectors encode where they come from: {tag, user number, 0, 1}, the
 * tag being the segment's (or, in the race, the generation's) number.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
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

#include "generation.h"
#include "generation_format.h"
#include "hnsw.h"
#include "snapshot.h"
#include "synth.h"
#include "tmpdir.h"


#define DIM      4
#define N_ITEMS  20
#define NAME_LEN 64


/* ---- helpers ------------------------------------------------------------ */

static void
user_vector(float *v, float tag, const char *id)
{
    v[0] = tag;
    v[1] = (float) (id[0] - 'a');
    v[2] = 0.0f;
    v[3] = 1.0f;
}


/*
 * Writes dir/name: a snapshot of generation gen with n_items items (and
 * their graph) and the users named by the ids (letters), each with
 * user_vector(tag).
 */
static void
write_segment(const char *dir, const char *name, uint64_t gen,
    uint32_t n_items, const char *users, float tag)
{
    mv_snapshot_input_t  in;
    mv_hnsw_params_t     p;
    mv_hnsw_t           *h = NULL;
    mv_hnsw_graph_t      graph;
    mv_item_meta_t       meta[N_ITEMS];
    mv_stream_pos_t      pos;
    float                iv[N_ITEMS * DIM], uv[26 * DIM];
    char                 item_names[N_ITEMS][16], user_names[26][2];
    const char          *item_ids[N_ITEMS], *user_ids[26];
    char                 path[512];
    mv_err_t             err;
    uint32_t             i, n_users = (uint32_t) strlen(users);

    memset(&in, 0, sizeof(in));
    memset(meta, 0, sizeof(meta));
    memset(&pos, 0, sizeof(pos));
    for (i = 0; i < n_items; i++) {
        snprintf(item_names[i], sizeof(item_names[i]), "item-%u", i);
        item_ids[i] = item_names[i];
        meta[i].category = MV_CATEGORY_NONE;
        meta[i].popularity = (float) i;
    }
    for (i = 0; i < n_users; i++) {
        user_names[i][0] = users[i];
        user_names[i][1] = '\0';
        user_ids[i] = user_names[i];
        user_vector(uv + (size_t) i * DIM, tag, user_names[i]);
    }
    if (n_items > 0) {
        mv_synth_clustered(iv, n_items, DIM, 2, 0.3f, gen, NULL);
        memset(&p, 0, sizeof(p));
        p.dim = DIM;
        p.metric = MV_METRIC_L2;
        p.M = 4;
        p.ef_construction = 16;
        p.seed = 7;
        h = mv_hnsw_new(&p, n_items, NULL);
        assert_non_null(h);
        assert_int_equal(mv_hnsw_add_batch(h, iv, n_items, NULL), MV_OK);
        mv_hnsw_graph(h, &graph);
        in.graph = &graph;
    }
    snprintf(pos.stream, sizeof(pos.stream), "user_actions");
    pos.offset = gen;

    in.generation = gen;
    in.created_at_ms = 1700000000000LL + (int64_t) gen;
    in.dim = DIM;
    in.metric = MV_METRIC_L2;
    in.n_items = n_items;
    in.item_ids = item_ids;
    in.item_vectors = iv;
    in.item_meta = meta;
    in.n_users = n_users;
    in.user_ids = user_ids;
    in.user_vectors = uv;
    in.n_positions = 1;
    in.positions = &pos;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (mv_snapshot_write(path, &in, &err) != MV_OK) {
        fail_msg("write %s: %s", path, err.msg);
    }
    mv_hnsw_free(h);
}


/* Publishes manifest gen over n segments (names, kinds). */
static int
publish(const char *dir, uint64_t gen, uint32_t n, const char *const *names,
    const uint32_t *kinds, uint64_t n_users, unsigned keep, mv_err_t *err)
{
    mv_manifest_input_t  m;
    mv_stream_pos_t      pos;

    memset(&pos, 0, sizeof(pos));
    snprintf(pos.stream, sizeof(pos.stream), "user_actions");
    pos.offset = 1000 + gen;

    memset(&m, 0, sizeof(m));
    m.generation = gen;
    m.created_at_ms = 1800000000000LL + (int64_t) gen;
    m.dim = DIM;
    m.metric = MV_METRIC_L2;
    m.n_users = n_users;
    m.n_segments = n;
    m.segments = names;
    m.kinds = kinds;
    m.n_positions = 1;
    m.positions = &pos;
    return mv_generation_publish(dir, &m, keep, err);
}


static uint64_t
file_size(const char *dir, const char *name)
{
    struct stat  st;
    char         path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t) st.st_size;
}


static int
exists(const char *dir, const char *name)
{
    struct stat  st;
    char         path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return lstat(path, &st) == 0;
}


static void
touch(const char *dir, const char *name)
{
    char   path[512];
    FILE  *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("x", fp);
    fclose(fp);
}


static void
rm(const char *dir, const char *name)
{
    char  path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(unlink(path), 0);
}


/* The names in dir, sorted, joined by spaces (dot files included). */
static char *
dir_names(const char *dir)
{
    struct dirent  **list;
    char            *out = calloc(1, 8192);
    int              n, i;

    n = scandir(dir, &list, NULL, alphasort);
    assert_true(n >= 0);
    for (i = 0; i < n; i++) {
        if (strcmp(list[i]->d_name, ".") != 0
            && strcmp(list[i]->d_name, "..") != 0)
        {
            strcat(out, list[i]->d_name);
            strcat(out, " ");
        }
        free(list[i]);
    }
    free(list);
    return out;
}


static uint8_t *
load(const char *dir, const char *name, size_t *len)
{
    char      path[512];
    FILE     *fp;
    uint8_t  *buf = malloc(1 << 16);

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    *len = fread(buf, 1, 1 << 16, fp);
    fclose(fp);
    return buf;
}


static void
expect_user(const mv_generation_t *g, const char *id, float tag)
{
    const float  *v = mv_generation_user(g, id, strlen(id));
    float         want[DIM];

    assert_non_null(v);
    user_vector(want, tag, id);
    assert_memory_equal(v, want, sizeof(want));
}


/*
 * The overlay fixture, generation 4:
 *   items-4         20 items, users a b      tag 10
 *   users-2.base    users a c d              tag 20
 *   users-3         users c e                tag 30
 *   users-4         users d e f              tag 40
 */
typedef struct overlay {
    char        names[4][NAME_LEN];
    const char *ptrs[4];
    uint32_t    kinds[4];
} overlay_t;


static void
overlay_write(const char *dir, overlay_t *o)
{
    mv_err_t  err;

    mv_gen_items_name(4, o->names[0], NAME_LEN);
    mv_gen_base_name(2, o->names[1], NAME_LEN);
    mv_gen_delta_name(3, o->names[2], NAME_LEN);
    mv_gen_delta_name(4, o->names[3], NAME_LEN);
    write_segment(dir, o->names[0], 4, N_ITEMS, "ab", 10);
    write_segment(dir, o->names[1], 2, 0, "acd", 20);
    write_segment(dir, o->names[2], 3, 0, "ce", 30);
    write_segment(dir, o->names[3], 4, 0, "def", 40);
    o->kinds[0] = MV_GEN_SEGMENT_ITEMS;
    o->kinds[1] = MV_GEN_SEGMENT_USER_BASE;
    o->kinds[2] = MV_GEN_SEGMENT_USER_DELTA;
    o->kinds[3] = MV_GEN_SEGMENT_USER_DELTA;
    for (int i = 0; i < 4; i++) {
        o->ptrs[i] = o->names[i];
    }
    if (publish(dir, 4, 4, o->ptrs, o->kinds, 6, 3, &err) != MV_OK) {
        fail_msg("publish: %s", err.msg);
    }
}


static mv_generation_t *
open_current(const char *dir, const mv_generation_t *reuse, int *moved,
    mv_err_t *err)
{
    char  path[512];

    snprintf(path, sizeof(path), "%s/current", dir);
    return mv_generation_open(path, reuse, moved, err);
}


static void
expect_overlay(const mv_generation_t *g)
{
    expect_user(g, "a", 20);
    expect_user(g, "b", 10);
    expect_user(g, "c", 30);
    expect_user(g, "d", 40);
    expect_user(g, "e", 40);
    expect_user(g, "f", 40);
    assert_null(mv_generation_user(g, "z", 1));
    assert_null(mv_generation_user(g, "item-1", 6));
}


/* ---- tests -------------------------------------------------------------- */

static void
test_names(void **state)
{
    char  buf[NAME_LEN];

    (void) state;
    assert_string_equal(mv_gen_manifest_name(42, buf, sizeof(buf)),
                        "gen-00000000000000000042.mvm");
    assert_string_equal(mv_gen_items_name(42, buf, sizeof(buf)),
                        "items-00000000000000000042.mvs");
    assert_string_equal(mv_gen_delta_name(42, buf, sizeof(buf)),
                        "users-00000000000000000042.mvs");
    assert_string_equal(mv_gen_base_name(42, buf, sizeof(buf)),
                        "users-00000000000000000042.base.mvs");
}


static void
test_overlay(void **state)
{
    const char                 *dir = *state;
    const mv_generation_info_t *info;
    mv_generation_t            *g, *g2, *g3;
    overlay_t                   o;
    mv_err_t                    err;
    char                        man[NAME_LEN], items5[NAME_LEN];
    char                        delta5[NAME_LEN];
    const char                 *names5[5];
    uint64_t                    bytes;
    int                         moved = -1, i;

    overlay_write(dir, &o);
    g = open_current(dir, NULL, &moved, &err);
    if (g == NULL) {
        fail_msg("open: %s", err.msg);
    }
    assert_int_equal(moved, 0);
    expect_overlay(g);

    info = mv_generation_info(g);
    mv_gen_manifest_name(4, man, sizeof(man));
    bytes = file_size(dir, man);
    for (i = 0; i < 4; i++) {
        bytes += file_size(dir, o.names[i]);
    }
    assert_int_equal(info->generation, 4);
    assert_int_equal(info->created_at_ms, 1800000000004LL);
    assert_int_equal(info->dim, DIM);
    assert_int_equal(info->metric, MV_METRIC_L2);
    assert_int_equal(info->n_users, 6);
    assert_int_equal(info->n_segments, 4);
    assert_int_equal(info->n_positions, 1);
    assert_string_equal(info->positions[0].stream, "user_actions");
    assert_int_equal(info->positions[0].offset, 1004);
    assert_int_equal(info->bytes, bytes);
    assert_int_equal(info->bytes_validated, bytes);
    assert_int_equal(info->segments_reused, 0);
    assert_int_equal(mv_generation_items(g)->n_items, N_ITEMS);
    assert_int_equal(mv_generation_segment(g, 3)->n_users, 3);
    assert_int_equal(mv_generation_segment(g, 1)->generation, 2);

    /* the same generation again: every segment shared */
    g2 = open_current(dir, g, &moved, &err);
    assert_non_null(g2);
    info = mv_generation_info(g2);
    assert_int_equal(info->segments_reused, 4);
    assert_int_equal(info->bytes, bytes);
    assert_int_equal(info->bytes_validated, file_size(dir, man));
    expect_overlay(g2);

    /* generation 5: a new items segment and one more delta */
    mv_gen_items_name(5, items5, sizeof(items5));
    mv_gen_delta_name(5, delta5, sizeof(delta5));
    write_segment(dir, items5, 5, N_ITEMS, "b", 11);
    write_segment(dir, delta5, 5, 0, "ag", 50);
    names5[0] = items5;
    names5[1] = o.names[1];
    names5[2] = o.names[2];
    names5[3] = o.names[3];
    names5[4] = delta5;
    {
        uint32_t  kinds5[5] = { MV_GEN_SEGMENT_ITEMS,
                                MV_GEN_SEGMENT_USER_BASE,
                                MV_GEN_SEGMENT_USER_DELTA,
                                MV_GEN_SEGMENT_USER_DELTA,
                                MV_GEN_SEGMENT_USER_DELTA };

        assert_int_equal(publish(dir, 5, 5, names5, kinds5, 7, 3, &err),
                         MV_OK);
    }
    mv_generation_close(g);          /* g2 still holds the shared segments */
    g3 = open_current(dir, g2, &moved, &err);
    assert_non_null(g3);
    info = mv_generation_info(g3);
    assert_int_equal(info->generation, 5);
    assert_int_equal(info->segments_reused, 3);
    mv_gen_manifest_name(5, man, sizeof(man));
    assert_int_equal(info->bytes_validated, file_size(dir, man)
                     + file_size(dir, items5) + file_size(dir, delta5));
    mv_generation_close(g2);
    expect_user(g3, "a", 50);
    expect_user(g3, "b", 11);
    expect_user(g3, "g", 50);
    expect_user(g3, "f", 40);
    mv_generation_close(g3);
    mv_generation_close(NULL);
}


static void
test_plain_snapshot(void **state)
{
    const char                 *dir = *state;
    const mv_generation_info_t *info;
    mv_generation_t            *g, *g2;
    mv_err_t                    err;
    char                        name[NAME_LEN], path[512];
    int                         moved = -1;

    snprintf(name, sizeof(name), "snapshot-%020u.mvs", 9u);
    write_segment(dir, name, 9, N_ITEMS, "xy", 9);
    snprintf(path, sizeof(path), "%s/current", dir);
    assert_int_equal(symlink(name, path), 0);

    g = open_current(dir, NULL, &moved, &err);
    if (g == NULL) {
        fail_msg("open: %s", err.msg);
    }
    info = mv_generation_info(g);
    assert_int_equal(moved, 0);
    assert_int_equal(info->n_segments, 1);
    assert_int_equal(info->generation, 9);
    assert_int_equal(info->n_users, 2);
    assert_int_equal(info->n_positions, 1);
    assert_int_equal(info->positions[0].offset, 9);
    assert_int_equal(info->bytes, file_size(dir, name));
    assert_int_equal(mv_generation_items(g)->n_items, N_ITEMS);
    expect_user(g, "x", 9);
    expect_user(g, "y", 9);
    assert_null(mv_generation_user(g, "a", 1));

    g2 = open_current(dir, g, NULL, &err);
    assert_non_null(g2);
    assert_int_equal(mv_generation_info(g2)->segments_reused, 1);
    assert_int_equal(mv_generation_info(g2)->bytes_validated, 0);
    mv_generation_close(g);
    expect_user(g2, "x", 9);
    mv_generation_close(g2);

    /* neither kind of file: refused, not moved */
    rm(dir, "current");
    touch(dir, "junk");
    assert_int_equal(symlink("junk", path), 0);
    assert_null(open_current(dir, NULL, &moved, &err));
    assert_int_equal(moved, 0);
    rm(dir, "current");
    assert_null(open_current(dir, NULL, &moved, &err));
    assert_int_equal(moved, 0);
}


/* Recomputes a manifest's CRC after a deliberate change. */
static void
fix_crc(uint8_t *buf, size_t len)
{
    uint32_t  crc = mv_gen_manifest_crc(buf, len);

    memcpy(buf + offsetof(mv_gen_header_t, crc), &crc, sizeof(crc));
}


static void
test_manifest_damage(void **state)
{
    const char           *dir = *state;
    mv_manifest_input_t   in;
    mv_gen_entry_t       *e;
    overlay_t             o;
    mv_err_t              err;
    char                  man[NAME_LEN];
    uint8_t              *buf, *copy;
    void                 *mem;
    size_t                len, i;
    int                   bit;

    overlay_write(dir, &o);
    mv_gen_manifest_name(4, man, sizeof(man));
    buf = load(dir, man, &len);
    assert_int_equal(len, MV_GEN_HEADER_SIZE + 4 * MV_GEN_ENTRY_SIZE
                          + sizeof(mv_stream_pos_t));

    assert_int_equal(mv_manifest_parse(buf, len, &in, &mem, &err), MV_OK);
    assert_int_equal(in.generation, 4);
    assert_int_equal(in.n_segments, 4);
    assert_int_equal(in.n_users, 6);
    assert_string_equal(in.segments[2], o.names[2]);
    assert_int_equal(in.kinds[1], MV_GEN_SEGMENT_USER_BASE);
    assert_int_equal(in.positions[0].offset, 1004);
    free(mem);

    /* every bit of every byte */
    copy = malloc(len);
    for (i = 0; i < len; i++) {
        for (bit = 0; bit < 8; bit++) {
            memcpy(copy, buf, len);
            copy[i] ^= (uint8_t) (1u << bit);
            mem = (void *) 1;
            if (mv_manifest_parse(copy, len, &in, &mem, &err) == MV_OK) {
                fail_msg("byte %zu bit %d flipped: accepted", i, bit);
            }
            assert_null(mem);
        }
    }
    /* every truncation, and a byte more */
    for (i = 0; i < len; i++) {
        assert_int_equal(mv_manifest_parse(buf, i, &in, &mem, &err), MV_ERR);
    }
    memcpy(copy, buf, len);
    {
        uint8_t  *longer = calloc(1, len + 1);

        memcpy(longer, buf, len);
        assert_int_equal(mv_manifest_parse(longer, len + 1, &in, &mem, &err),
                         MV_ERR);
        free(longer);
    }

    /* damage behind a good checksum */
    e = (mv_gen_entry_t *) (void *) (copy + MV_GEN_HEADER_SIZE);
    e[0].kind = MV_GEN_SEGMENT_USER_DELTA;
    fix_crc(copy, len);
    assert_int_equal(mv_manifest_parse(copy, len, &in, &mem, &err), MV_ERR);
    memcpy(copy, buf, len);
    e[2].kind = MV_GEN_SEGMENT_ITEMS;
    fix_crc(copy, len);
    assert_int_equal(mv_manifest_parse(copy, len, &in, &mem, &err), MV_ERR);
    memcpy(copy, buf, len);
    memcpy(e[1].name, "../etc", 7);
    fix_crc(copy, len);
    assert_int_equal(mv_manifest_parse(copy, len, &in, &mem, &err), MV_ERR);
    memcpy(copy, buf, len);
    memcpy(e[3].name, e[2].name, sizeof(e[2].name));
    fix_crc(copy, len);
    assert_int_equal(mv_manifest_parse(copy, len, &in, &mem, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "twice"));
    memcpy(copy, buf, len);
    e[1].n_items = 3;
    fix_crc(copy, len);
    assert_int_equal(mv_manifest_parse(copy, len, &in, &mem, &err), MV_ERR);
    memcpy(copy, buf, len);
    fix_crc(copy, len);
    assert_int_equal(mv_manifest_parse(copy, len, &in, &mem, &err), MV_OK);
    free(mem);

    free(copy);
    free(buf);
}


static void
test_moved(void **state)
{
    const char       *dir = *state;
    mv_generation_t  *g;
    overlay_t         o;
    mv_err_t          err;
    char              man[NAME_LEN], path[512];
    int               moved = -1;

    overlay_write(dir, &o);

    /* a segment replaced by another file (another header) */
    write_segment(dir, o.names[2], 3, 0, "ce", 31);
    g = open_current(dir, NULL, &moved, &err);
    assert_null(g);
    assert_int_equal(moved, 1);
    assert_non_null(strstr(err.msg, o.names[2]));

    /* a segment missing */
    rm(dir, o.names[2]);
    moved = -1;
    assert_null(open_current(dir, NULL, &moved, &err));
    assert_int_equal(moved, 1);
    assert_non_null(strstr(err.msg, "No such file"));

    /* the manifest itself pruned behind `current` */
    mv_gen_manifest_name(4, man, sizeof(man));
    rm(dir, man);
    moved = -1;
    assert_null(open_current(dir, NULL, &moved, &err));
    assert_int_equal(moved, 1);

    /* a manifest that does not parse: refused, not moved */
    touch(dir, man);
    snprintf(path, sizeof(path), "%s/%s", dir, man);
    {
        FILE  *fp = fopen(path, "w");

        fputs("MVGENM\r\ngarbage", fp);
        fclose(fp);
    }
    moved = -1;
    assert_null(open_current(dir, NULL, &moved, &err));
    assert_int_equal(moved, 0);
}


static void
test_prune(void **state)
{
    const char  *dir = *state;
    char         names[12][NAME_LEN], side[NAME_LEN + 8], expected[4096];
    char         snap[NAME_LEN], *got;
    const char  *ptrs[8];
    uint32_t     kinds[8];
    mv_err_t     err;
    uint64_t     gen;
    int          i;

    /* a plain snapshot of an old publisher, with its side file, and a side
       file whose snapshot is gone */
    snprintf(snap, sizeof(snap), "snapshot-%020u.mvs", 1u);
    write_segment(dir, snap, 1, 0, "a", 1);
    snprintf(side, sizeof(side), "%s.dedupe", snap);
    touch(dir, side);
    snprintf(side, sizeof(side), "snapshot-%020u.mvs.dedupe", 0u);
    touch(dir, side);

    /* files of a newer generation than anything published below */
    mv_gen_items_name(9, names[10], NAME_LEN);
    mv_gen_delta_name(9, names[11], NAME_LEN);
    touch(dir, names[10]);
    touch(dir, names[11]);

    /* generation g: items-g, users-1.base, users-2 .. users-g */
    mv_gen_base_name(1, names[0], NAME_LEN);
    write_segment(dir, names[0], 1, 0, "ab", 1);
    for (gen = 1; gen <= 5; gen++) {
        mv_gen_items_name(gen, names[1], NAME_LEN);
        write_segment(dir, names[1], gen, N_ITEMS, "", 0);
        ptrs[0] = names[1];
        kinds[0] = MV_GEN_SEGMENT_ITEMS;
        ptrs[1] = names[0];
        kinds[1] = MV_GEN_SEGMENT_USER_BASE;
        if (gen >= 2) {
            mv_gen_delta_name(gen, names[gen], NAME_LEN);
            write_segment(dir, names[gen], gen, 0, "c", (float) gen);
        }
        for (i = 2; i <= (int) gen; i++) {
            ptrs[i] = names[i];
            kinds[i] = MV_GEN_SEGMENT_USER_DELTA;
        }
        mv_gen_manifest_name(gen, side, sizeof(side));
        strcat(side, ".dedupe");
        touch(dir, side);
        if (publish(dir, gen, (uint32_t) gen + 1, ptrs, kinds, 3, 2, &err)
            != MV_OK)
        {
            fail_msg("publish %llu: %s", (unsigned long long) gen, err.msg);
        }
    }

    got = dir_names(dir);
    snprintf(expected, sizeof(expected),
             "current "
             "gen-%020u.mvm gen-%020u.mvm.dedupe "
             "gen-%020u.mvm gen-%020u.mvm.dedupe "
             "items-%020u.mvs items-%020u.mvs items-%020u.mvs "
             "users-%020u.base.mvs "
             "users-%020u.mvs users-%020u.mvs users-%020u.mvs "
             "users-%020u.mvs users-%020u.mvs ",
             4u, 4u, 5u, 5u, 4u, 5u, 9u, 1u, 2u, 3u, 4u, 5u, 9u);
    assert_string_equal(got, expected);
    free(got);
}


/*
 * A kept manifest that cannot be read: what it names is unknown, so
 * neither pruning nor the orphan clean-up removes a segment.
 */
static void
test_unreadable_manifest(void **state)
{
    const char  *dir = *state;
    char         items[4][NAME_LEN], man[NAME_LEN], path[512];
    const char  *ptrs[1];
    uint32_t     kinds[1] = { MV_GEN_SEGMENT_ITEMS };
    mv_err_t     err;
    FILE        *fp;
    uint64_t     gen;

    for (gen = 1; gen <= 2; gen++) {
        mv_gen_items_name(gen, items[gen], NAME_LEN);
        write_segment(dir, items[gen], gen, 0, "a", 1);
        ptrs[0] = items[gen];
        assert_int_equal(publish(dir, gen, 1, ptrs, kinds, 1, 5, &err),
                         MV_OK);
    }
    mv_gen_manifest_name(2, man, sizeof(man));
    snprintf(path, sizeof(path), "%s/%s", dir, man);
    fp = fopen(path, "r+b");
    assert_non_null(fp);
    fputs("XX", fp);
    fclose(fp);

    /* gen 3 with keep 2 keeps gen-2, which does not parse: nothing goes */
    mv_gen_items_name(3, items[3], NAME_LEN);
    write_segment(dir, items[3], 3, 0, "a", 1);
    ptrs[0] = items[3];
    assert_int_equal(publish(dir, 3, 1, ptrs, kinds, 1, 2, &err), MV_OK);
    assert_true(exists(dir, items[1]));
    mv_gen_manifest_name(1, man, sizeof(man));
    assert_true(exists(dir, man));

    /* nor does the clean-up remove an unnamed segment */
    touch(dir, ".current.tmp-1-1");
    assert_int_equal(mv_generation_remove_orphans(dir, &err), 1);
    assert_true(exists(dir, items[1]));
    assert_true(exists(dir, items[2]));

    /* with gen-2 gone, the next publish prunes gen 1 */
    rm(dir, man);
    mv_gen_manifest_name(2, man, sizeof(man));
    rm(dir, man);
    mv_gen_items_name(4, items[0], NAME_LEN);
    write_segment(dir, items[0], 4, 0, "a", 1);
    ptrs[0] = items[0];
    assert_int_equal(publish(dir, 4, 1, ptrs, kinds, 1, 2, &err), MV_OK);
    assert_false(exists(dir, items[1]));
    assert_false(exists(dir, items[2]));
    assert_true(exists(dir, items[3]));
}


static void
test_compact(void **state)
{
    const char                 *dir = *state;
    const mv_snapshot_view_t   *v;
    mv_snapshot_t              *s;
    mv_generation_t            *g, *g2;
    overlay_t                   o;
    mv_err_t                    err;
    char                        base[NAME_LEN], path[512];
    const char                 *ptrs[2];
    uint32_t                    kinds[2] = { MV_GEN_SEGMENT_ITEMS,
                                             MV_GEN_SEGMENT_USER_BASE };
    const char                 *id;
    size_t                      len;
    uint32_t                    i, seg;

    overlay_write(dir, &o);
    g = open_current(dir, NULL, NULL, &err);
    assert_non_null(g);

    mv_gen_base_name(4, base, sizeof(base));
    if (mv_generation_compact_users(dir, g, base, &err) != MV_OK) {
        fail_msg("compact: %s", err.msg);
    }
    snprintf(path, sizeof(path), "%s/%s", dir, base);
    s = mv_snapshot_open(path, &err);
    assert_non_null(s);
    v = mv_snapshot_view(s);
    assert_int_equal(v->n_users, 6);
    assert_int_equal(v->n_items, 0);
    assert_int_equal(v->generation, 4);
    assert_int_equal(v->n_positions, 1);
    for (i = 0; i < v->n_users; i++) {
        id = mv_idtable_get(&v->users, i, &len);
        assert_memory_equal(v->user_vectors + (size_t) i * DIM,
                            mv_generation_user(g, id, len),
                            DIM * sizeof(float));
    }
    for (seg = 0; seg < mv_generation_info(g)->n_segments; seg++) {
        const mv_snapshot_view_t  *sv = mv_generation_segment(g, seg);

        for (i = 0; i < sv->n_users; i++) {
            id = mv_idtable_get(&sv->users, i, &len);
            assert_true(mv_idtable_find(&v->users, id, len) >= 0);
        }
    }
    mv_snapshot_close(s);

    /* a manifest naming the base in place of the user segments; the items
       segment's own users now come second */
    ptrs[0] = o.names[0];
    ptrs[1] = base;
    assert_int_equal(publish(dir, 5, 2, ptrs, kinds, 6, 3, &err), MV_OK);
    g2 = open_current(dir, g, NULL, &err);
    assert_non_null(g2);
    assert_int_equal(mv_generation_info(g2)->segments_reused, 1);
    expect_overlay(g2);
    mv_generation_close(g2);
    mv_generation_close(g);
}


static void
test_orphans(void **state)
{
    const char  *dir = *state;
    overlay_t    o;
    mv_err_t     err;
    char         name[NAME_LEN + 32];
    mv_generation_t *g;
    int          i;

    overlay_write(dir, &o);
    snprintf(name, sizeof(name), "gen-%020u.mvm.tmp-12-00ab", 5u);
    touch(dir, name);
    snprintf(name, sizeof(name), "items-%020u.mvs.tmp-12-00ab", 5u);
    touch(dir, name);
    snprintf(name, sizeof(name), "users-%020u.base.mvs.tmp-1-2", 5u);
    touch(dir, name);
    snprintf(name, sizeof(name), "snapshot-%020u.mvs.tmp-1-2", 5u);
    touch(dir, name);
    touch(dir, ".current.tmp-3-abc");
    mv_gen_items_name(3, name, sizeof(name));
    touch(dir, name);
    mv_gen_delta_name(5, name, sizeof(name));
    touch(dir, name);
    touch(dir, "unrelated.txt");

    assert_int_equal(mv_generation_remove_orphans(dir, &err), 7);
    for (i = 0; i < 4; i++) {
        assert_true(exists(dir, o.names[i]));
    }
    assert_true(exists(dir, "unrelated.txt"));
    assert_false(exists(dir, name));
    assert_false(exists(dir, ".current.tmp-3-abc"));
    g = open_current(dir, NULL, NULL, &err);
    assert_non_null(g);
    mv_generation_close(g);
    assert_int_equal(mv_generation_remove_orphans(dir, &err), 0);
}


static void
test_list_newest(void **state)
{
    const char            *dir = *state;
    mv_generation_list_t   list;
    overlay_t              o;
    mv_err_t               err;
    char                   name[NAME_LEN + 16], missing[512];
    uint64_t               newest = 99;

    snprintf(missing, sizeof(missing), "%s/none", dir);
    assert_int_equal(mv_generation_list(missing, &list, &err), MV_OK);
    assert_int_equal(list.n, 0);
    mv_generation_list_free(&list);
    assert_int_equal(mv_generation_newest(missing, &newest, &err), MV_OK);
    assert_int_equal(newest, 0);

    overlay_write(dir, &o);
    snprintf(name, sizeof(name), "snapshot-%020u.mvs", 3u);
    write_segment(dir, name, 3, 0, "a", 3);
    snprintf(name, sizeof(name), "snapshot-%020u.mvs", 7u);
    write_segment(dir, name, 7, 0, "a", 7);
    snprintf(name, sizeof(name), "gen-%020u.mvm.tmp-1-1", 8u);
    touch(dir, name);

    assert_int_equal(mv_generation_list(dir, &list, &err), MV_OK);
    assert_int_equal(list.n, 3);
    assert_int_equal(list.generations[0], 7);
    assert_int_equal(list.generations[1], 4);
    assert_int_equal(list.generations[2], 3);
    snprintf(missing, sizeof(missing), "%s/gen-%020u.mvm", dir, 4u);
    assert_string_equal(list.paths[1], missing);
    mv_generation_list_free(&list);

    assert_int_equal(mv_generation_newest(dir, &newest, &err), MV_OK);
    assert_int_equal(newest, 7);
    snprintf(name, sizeof(name), "users-%020u.base.mvs", 11u);
    touch(dir, name);
    assert_int_equal(mv_generation_newest(dir, &newest, &err), MV_OK);
    assert_int_equal(newest, 11);
    snprintf(name, sizeof(name), "gen-%020u.mvm.dedupe", 12u);
    touch(dir, name);
    assert_int_equal(mv_generation_newest(dir, &newest, &err), MV_OK);
    assert_int_equal(newest, 12);
}


static void
test_publish_refusals(void **state)
{
    const char  *dir = *state;
    char         items[NAME_LEN], delta[NAME_LEN], other[NAME_LEN];
    const char  *ptrs[2];
    uint32_t     kinds[2] = { MV_GEN_SEGMENT_ITEMS,
                              MV_GEN_SEGMENT_USER_DELTA };
    mv_err_t     err;

    mv_gen_items_name(2, items, sizeof(items));
    mv_gen_delta_name(2, delta, sizeof(delta));
    write_segment(dir, items, 2, N_ITEMS, "a", 1);
    write_segment(dir, delta, 2, 0, "b", 1);
    ptrs[0] = items;
    ptrs[1] = delta;

    /* missing segment, user segment with items, wrong kind, keep 0 */
    mv_gen_delta_name(1, other, sizeof(other));
    ptrs[1] = other;
    assert_int_equal(publish(dir, 2, 2, ptrs, kinds, 2, 1, &err), MV_ERR);
    ptrs[1] = items;
    ptrs[0] = delta;
    assert_int_equal(publish(dir, 2, 2, ptrs, kinds, 2, 1, &err), MV_ERR);
    ptrs[0] = items;
    ptrs[1] = delta;
    kinds[1] = MV_GEN_SEGMENT_ITEMS;
    assert_int_equal(publish(dir, 2, 2, ptrs, kinds, 2, 1, &err), MV_ERR);
    kinds[1] = MV_GEN_SEGMENT_USER_DELTA;
    assert_int_equal(publish(dir, 2, 2, ptrs, kinds, 2, 0, &err), MV_ERR);
    /* a segment newer than the generation */
    assert_int_equal(publish(dir, 1, 2, ptrs, kinds, 2, 1, &err), MV_ERR);
    assert_false(exists(dir, "current"));

    assert_int_equal(publish(dir, 2, 2, ptrs, kinds, 2, 1, &err), MV_OK);
    assert_true(exists(dir, "current"));
}


/* ---- never half-visible ------------------------------------------------- */

#define RACE_GENERATIONS  200

typedef struct race {
    const char   *dir;
    char          segs[MV_GEN_MAX_SEGMENTS][NAME_LEN];  /* user segments */
    uint32_t      kinds[MV_GEN_MAX_SEGMENTS];
    uint32_t      n_segs;
    volatile int  done;
    int           writer_failed;
    char          writer_err[256];
    long          opened;
    long          moved;
    long          bad;
    char          reader_err[256];
} race_t;


/*
 * Publishes generations 2 .. RACE_GENERATIONS + 1 with keep = 1: each an
 * items segment (no users) and the user segments so far, its own delta
 * holding a b c (tag: the generation); every second generation the users
 * are compacted into a base, which the next manifest names in place of the
 * deltas.  User d was written by generation 1 only (tag 1), and lives on
 * through the bases.
 */
static void *
race_writer(void *arg)
{
    race_t           *r = arg;
    char              items[NAME_LEN], path[512];
    const char       *ptrs[MV_GEN_MAX_SEGMENTS];
    uint32_t          kinds[MV_GEN_MAX_SEGMENTS], i;
    mv_generation_t  *g;
    mv_err_t          err;
    uint64_t          gen;

    ptrs[0] = items;
    kinds[0] = MV_GEN_SEGMENT_ITEMS;
    for (gen = 2; gen <= RACE_GENERATIONS + 1 && !r->writer_failed; gen++) {
        mv_gen_items_name(gen, items, sizeof(items));
        mv_gen_delta_name(gen, r->segs[r->n_segs], NAME_LEN);
        r->kinds[r->n_segs] = MV_GEN_SEGMENT_USER_DELTA;
        r->n_segs++;
        write_segment(r->dir, items, gen, 0, "", 0);
        write_segment(r->dir, r->segs[r->n_segs - 1], gen, 0, "abc",
                      (float) gen);
        for (i = 0; i < r->n_segs; i++) {
            ptrs[i + 1] = r->segs[i];
            kinds[i + 1] = r->kinds[i];
        }
        if (publish(r->dir, gen, r->n_segs + 1, ptrs, kinds, 4, 1, &err)
            != MV_OK)
        {
            r->writer_failed = 1;
            memcpy(r->writer_err, err.msg, sizeof(r->writer_err));
            break;
        }
        if (gen % 2 != 0) {
            continue;
        }

        /* compaction: the users of gen into users-<gen>.base.mvs */
        snprintf(path, sizeof(path), "%s/current", r->dir);
        g = mv_generation_open(path, NULL, NULL, &err);
        mv_gen_base_name(gen, r->segs[0], NAME_LEN);
        if (g == NULL
            || mv_generation_compact_users(r->dir, g, r->segs[0], &err)
               != MV_OK)
        {
            r->writer_failed = 1;
            memcpy(r->writer_err, err.msg, sizeof(r->writer_err));
        }
        mv_generation_close(g);
        r->kinds[0] = MV_GEN_SEGMENT_USER_BASE;
        r->n_segs = 1;
    }
    r->done = 1;
    return NULL;
}


static void *
race_reader(void *arg)
{
    race_t                     *r = arg;
    mv_generation_t            *g, *prev = NULL;
    const float                *v;
    mv_err_t                    err;
    const char                 *ids[4] = { "a", "b", "c", "d" };
    int                         moved, i;
    float                       tag;

    while (!r->done) {
        /* with reuse and without: a full validation widens the window
           in which the publisher prunes what the manifest names */
        g = open_current(r->dir, (r->opened & 1) ? prev : NULL, &moved,
                         &err);
        if (g == NULL) {
            if (moved == 1) {
                r->moved++;
            } else {
                r->bad++;
                memcpy(r->reader_err, err.msg, sizeof(r->reader_err));
            }
            continue;
        }
        r->opened++;
        for (i = 0; i < 4; i++) {
            tag = i == 3 ? 1.0f : (float) mv_generation_info(g)->generation;
            v = mv_generation_user(g, ids[i], 1);
            if (v == NULL || v[0] != tag
                || v[1] != (float) (ids[i][0] - 'a'))
            {
                r->bad++;
                snprintf(r->reader_err, sizeof(r->reader_err),
                         "generation %g: user %s wrong", (double) tag,
                         ids[i]);
            }
        }
        mv_generation_close(prev);
        prev = g;
    }
    mv_generation_close(prev);
    return NULL;
}


static void
test_never_half_visible(void **state)
{
    race_t       r;
    pthread_t    w, rd;
    char         items[NAME_LEN], expected[4096], *got;
    const char  *ptrs[2];
    uint32_t     kinds[2] = { MV_GEN_SEGMENT_ITEMS,
                              MV_GEN_SEGMENT_USER_DELTA };
    mv_err_t     err;
    uint32_t     i;

    memset(&r, 0, sizeof(r));
    r.dir = *state;

    /* generation 1 first, so `current` always exists */
    mv_gen_items_name(1, items, sizeof(items));
    mv_gen_delta_name(1, r.segs[0], NAME_LEN);
    r.kinds[0] = MV_GEN_SEGMENT_USER_DELTA;
    r.n_segs = 1;
    write_segment(r.dir, items, 1, 0, "", 0);
    write_segment(r.dir, r.segs[0], 1, 0, "abcd", 1);
    ptrs[0] = items;
    ptrs[1] = r.segs[0];
    assert_int_equal(publish(r.dir, 1, 2, ptrs, kinds, 4, 1, &err), MV_OK);

    assert_int_equal(pthread_create(&rd, NULL, race_reader, &r), 0);
    assert_int_equal(pthread_create(&w, NULL, race_writer, &r), 0);
    pthread_join(w, NULL);
    pthread_join(rd, NULL);

    if (r.writer_failed) {
        fail_msg("writer: %s", r.writer_err);
    }
    if (r.bad > 0) {
        fail_msg("%ld bad opens, last: %s", r.bad, r.reader_err);
    }
    assert_true(r.opened > 0);
    print_message("race: %ld opens, %ld moved\n", r.opened, r.moved);

    /* keep = 1 left the last generation's files only (its base, from the
       compaction that followed it, is not named yet) */
    got = dir_names(r.dir);
    snprintf(expected, sizeof(expected), "current gen-%020u.mvm "
             "items-%020u.mvs ", RACE_GENERATIONS + 1, RACE_GENERATIONS + 1);
    for (i = 0; i < r.n_segs; i++) {
        strcat(expected, r.segs[i]);
        strcat(expected, " ");
    }
    assert_string_equal(got, expected);
    free(got);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_overlay, mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_plain_snapshot,
                                        mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_manifest_damage,
                                        mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_moved, mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_prune, mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_manifest,
                                        mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_compact, mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_orphans, mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_list_newest, mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_publish_refusals,
                                        mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_never_half_visible,
                                        mvt_tmpdir_setup,
                                        mvt_tmpdir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
