/*
 * test_snapshot.c -- unit tests of the snapshot writer and reader.
 *
 * A fixture builds a real catalogue (clustered vectors, an HNSW graph with
 * some deleted nodes, categories, users, stream positions), writes it, and
 * the tests then check that reading it back gives every field and array
 * unchanged, and that every kind of damage is refused with the right reason:
 * each header field, each section table entry, each section's payload
 * (checksum), semantic damage behind recomputed checksums (fixup_crcs), and
 * truncation at every 64 bytes.  Publishing is checked for the `current`
 * swap, the retention of `keep` files and clean failures.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
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

#include "crc32c.h"
#include "hnsw.h"
#include "snapshot.h"
#include "snapshot_format.h"
#include "synth.h"


typedef struct fixture {
    uint32_t              n_items;
    uint32_t              dim;
    uint32_t              n_users;
    uint32_t              n_cat;
    mv_metric_t           metric;
    char                **item_ids;
    char                **user_ids;
    char                **cat_ids;
    float                *item_vectors;
    float                *user_vectors;
    mv_item_meta_t       *meta;
    mv_hnsw_t            *hnsw;
    mv_hnsw_graph_t       graph;
    mv_stream_pos_t       positions[3];
    mv_snapshot_input_t   in;
    char                  dir[64];
    char                  path[128];
    uint8_t              *buf;       /* the written file, 64-aligned */
    size_t                len;
} fixture_t;


static char **
make_ids(const char *fmt, uint32_t n)
{
    char      **ids = calloc((size_t) n + 1, sizeof(char *));
    char        tmp[64];
    uint32_t    i;

    for (i = 0; i < n; i++) {
        snprintf(tmp, sizeof(tmp), fmt, i);
        ids[i] = strdup(tmp);
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


static void
normalise_rows(float *v, uint32_t n, uint32_t dim)
{
    uint32_t  i, j;
    double    s;

    for (i = 0; i < n; i++) {
        s = 0;
        for (j = 0; j < dim; j++) {
            s += (double) v[(size_t) i * dim + j] * v[(size_t) i * dim + j];
        }
        s = sqrt(s);
        for (j = 0; j < dim; j++) {
            v[(size_t) i * dim + j] = (float) (v[(size_t) i * dim + j] / s);
        }
    }
}


/* Reads path into a fresh 64-aligned buffer. */
static uint8_t *
load_file(const char *path, size_t *len)
{
    FILE     *fp = fopen(path, "rb");
    uint8_t  *buf = NULL;
    long      size;

    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    assert_int_equal(posix_memalign((void **) &buf, 64,
                                    (size_t) size + 64), 0);
    assert_int_equal(fread(buf, 1, (size_t) size, fp), (size_t) size);
    fclose(fp);
    *len = (size_t) size;
    return buf;
}


static void
remove_dir(const char *dir)
{
    DIR            *d = opendir(dir);
    struct dirent  *e;
    char            path[512];

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}


static int
count_files(const char *dir)
{
    DIR            *d = opendir(dir);
    struct dirent  *e;
    int             n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}


/*
 * Builds a catalogue: clustered vectors (normalised for cosine, norms spread
 * for the inner product), every 7th
 * item deleted, categories round robin with some items uncategorised,
 * popularities with ties, an HNSW graph over the items.
 */
static void
fixture_make(fixture_t *f, uint32_t n_items, uint32_t dim, mv_metric_t metric,
    int sq8, uint32_t n_users, uint32_t n_cat)
{
    mv_hnsw_params_t  p;
    uint32_t          i;

    memset(f, 0, sizeof(*f));
    f->n_items = n_items;
    f->dim = dim;
    f->n_users = n_users;
    f->n_cat = n_cat;
    f->metric = metric;

    f->item_ids = make_ids("item-%u", n_items);
    f->user_ids = make_ids("user:%u", n_users);
    f->cat_ids = make_ids("cat.%u", n_cat);

    f->item_vectors = calloc((size_t) n_items * dim + 1, sizeof(float));
    f->user_vectors = calloc((size_t) n_users * dim + 1, sizeof(float));
    mv_synth_clustered(f->item_vectors, n_items, dim, 8, 0.3f, 42, NULL);
    mv_synth_clustered(f->user_vectors, n_users, dim, 8, 0.3f, 43, NULL);
    if (metric == MV_METRIC_COSINE) {
        normalise_rows(f->item_vectors, n_items, dim);
    }
    if (metric == MV_METRIC_IP) {
        /* norms spread 0.5x .. 4x: nothing may normalise them; and item 17
           all zeros: no direction, but a fine inner product (always 0) */
        for (i = 0; i < n_items; i++) {
            for (uint32_t j = 0; j < dim; j++) {
                f->item_vectors[(size_t) i * dim + j] *= i == 17 ? 0.0f
                                                         : 0.5f
                                                           + 0.5f * (i % 8);
            }
        }
    }

    f->meta = calloc((size_t) n_items + 1, sizeof(mv_item_meta_t));
    for (i = 0; i < n_items; i++) {
        f->meta[i].category = n_cat == 0 || i % (n_cat + 1) == n_cat
                              ? MV_CATEGORY_NONE : i % (n_cat + 1);
        f->meta[i].flags = i % 7 == 3 ? MV_ITEM_DELETED : 0;
        f->meta[i].popularity = (float) ((i * 37) % 50) * 0.5f;
        f->meta[i].created_at_ms = 1700000000000LL + i;
    }

    memset(&p, 0, sizeof(p));
    p.dim = dim;
    p.metric = metric;
    p.M = 8;
    p.ef_construction = 64;
    p.seed = 7;
    p.sq8 = sq8;
    f->hnsw = mv_hnsw_new(&p, n_items, NULL);
    assert_non_null(f->hnsw);
    assert_int_equal(mv_hnsw_add_batch(f->hnsw, f->item_vectors, n_items,
                                       NULL), MV_OK);
    for (i = 0; i < n_items; i++) {
        if (f->meta[i].flags & MV_ITEM_DELETED) {
            assert_int_equal(mv_hnsw_set_deleted(f->hnsw, i, 1, NULL), MV_OK);
        }
    }
    mv_hnsw_graph(f->hnsw, &f->graph);

    snprintf(f->positions[0].stream, sizeof(f->positions[0].stream),
             "user_actions");
    f->positions[0].partition = 0;
    f->positions[0].offset = 12345;
    snprintf(f->positions[1].stream, sizeof(f->positions[1].stream),
             "user_actions");
    f->positions[1].partition = 1;
    f->positions[1].offset = 999;
    snprintf(f->positions[2].stream, sizeof(f->positions[2].stream),
             "features");
    f->positions[2].partition = 3;
    f->positions[2].offset = UINT64_MAX - 1;

    f->in.generation = 77;
    f->in.created_at_ms = 1700000123456LL;
    f->in.dim = dim;
    f->in.metric = metric;
    f->in.n_items = n_items;
    f->in.item_ids = (const char *const *) f->item_ids;
    f->in.item_vectors = f->item_vectors;
    f->in.item_meta = f->meta;
    f->in.n_categories = n_cat;
    f->in.category_names = (const char *const *) f->cat_ids;
    f->in.graph = &f->graph;
    f->in.n_users = n_users;
    f->in.user_ids = (const char *const *) f->user_ids;
    f->in.user_vectors = f->user_vectors;
    f->in.n_positions = 3;
    f->in.positions = f->positions;

    snprintf(f->dir, sizeof(f->dir), "/tmp/mvsnap-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/snap.mvs", f->dir);
}


/* Writes the fixture's snapshot and loads its bytes. */
static void
fixture_write(fixture_t *f)
{
    mv_err_t  err;

    err.msg[0] = '\0';
    if (mv_snapshot_write(f->path, &f->in, &err) != MV_OK) {
        fail_msg("write: %s", err.msg);
    }
    free(f->buf);
    f->buf = load_file(f->path, &f->len);
}


static void
fixture_free(fixture_t *f)
{
    free_ids(f->item_ids, f->n_items);
    free_ids(f->user_ids, f->n_users);
    free_ids(f->cat_ids, f->n_cat);
    free(f->item_vectors);
    free(f->user_vectors);
    free(f->meta);
    mv_hnsw_free(f->hnsw);
    free(f->buf);
    remove_dir(f->dir);
}


static int
setup_default(void **state)
{
    fixture_t  *f = calloc(1, sizeof(*f));

    fixture_make(f, 300, 16, MV_METRIC_COSINE, 1, 50, 5);
    fixture_write(f);
    *state = f;
    return 0;
}


static int
teardown_fixture(void **state)
{
    fixture_free(*state);
    free(*state);
    return 0;
}


static mv_snap_header_t *
header_of(uint8_t *buf)
{
    return (mv_snap_header_t *) (void *) buf;
}


static uint8_t *
section_of(uint8_t *buf, uint32_t type)
{
    return buf + header_of(buf)->sections[type - 1].offset;
}


/* Recomputes every in-bounds section CRC and the header CRC. */
static void
fixup_crcs(uint8_t *buf, size_t len)
{
    mv_snap_header_t   *h = header_of(buf);
    mv_snap_section_t  *s;
    uint32_t            i;

    if (len < MV_SNAPSHOT_HEADER_SIZE) {
        return;
    }
    for (i = 0; i < MV_SNAP_MAX_SECTIONS; i++) {
        s = &h->sections[i];
        if (s->offset <= len && s->length <= len - s->offset) {
            s->crc32c = mv_crc32c(0, buf + s->offset, (size_t) s->length);
        }
    }
    h->header_crc = mv_snap_header_crc(h);
}


/* A private copy of the fixture's bytes to damage. */
static uint8_t *
copy_of(const fixture_t *f)
{
    uint8_t  *b = NULL;

    assert_int_equal(posix_memalign((void **) &b, 64, f->len + 64), 0);
    memcpy(b, f->buf, f->len);
    return b;
}


static void
expect_refused_len(const uint8_t *buf, size_t len, const char *substring)
{
    mv_snapshot_view_t  v;
    mv_err_t            err;

    err.msg[0] = '\0';
    if (mv_snapshot_validate(buf, len, &v, &err) != MV_ERR) {
        fail_msg("accepted, expected \"%s\"",
                 substring != NULL ? substring : "any error");
    }
    if (substring != NULL && strstr(err.msg, substring) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, substring);
    }
}


/* Applies the damage already done to b (fixing CRCs if asked), checks the
   refusal, frees b. */
static void
expect_refused(const fixture_t *f, uint8_t *b, int fix, const char *substring)
{
    if (fix) {
        fixup_crcs(b, f->len);
    }
    expect_refused_len(b, f->len, substring);
    free(b);
}


static void
assert_ids_equal(const mv_idtable_t *t, char **ids, uint32_t n)
{
    const char  *id;
    size_t       len;
    uint32_t     i;
    char         tmp[80];
    int          k;

    assert_int_equal(t->n, n);
    for (i = 0; i < n; i++) {
        id = mv_idtable_get(t, i, &len);
        assert_int_equal(len, strlen(ids[i]));
        assert_memory_equal(id, ids[i], len);
        assert_int_equal(mv_idtable_find(t, ids[i], len), i);
    }
    for (i = 0; i < 50; i++) {
        k = snprintf(tmp, sizeof(tmp), "absent-%u", i);
        assert_int_equal(mv_idtable_find(t, tmp, (size_t) k), -1);
    }
    if (n > 0) {
        /* a prefix of a present id is absent */
        assert_int_equal(mv_idtable_find(t, ids[0], strlen(ids[0]) - 1), -1);
    }
}


/* The expected popularity order, computed the slow obvious way. */
static void
check_popular_lists(const fixture_t *f, const mv_snapshot_view_t *v)
{
    uint32_t  i, j, k, best, n, *used, cat, pos;

    used = calloc((size_t) f->n_items + 1, sizeof(uint32_t));

    for (cat = 0; cat <= f->n_cat; cat++) {
        /* cat == n_cat stands for the global list */
        memset(used, 0, ((size_t) f->n_items + 1) * sizeof(uint32_t));
        n = 0;
        for (i = 0; i < f->n_items; i++) {
            n += !(f->meta[i].flags & MV_ITEM_DELETED)
                 && (cat == f->n_cat || f->meta[i].category == cat);
        }
        if (cat == f->n_cat) {
            assert_int_equal(v->n_popular, n);
        } else {
            assert_int_equal(v->cat_popular_offsets[cat + 1]
                             - v->cat_popular_offsets[cat], n);
        }
        for (k = 0; k < n; k++) {
            best = UINT32_MAX;
            for (j = 0; j < f->n_items; j++) {
                if (used[j] || (f->meta[j].flags & MV_ITEM_DELETED)
                    || (cat != f->n_cat && f->meta[j].category != cat))
                {
                    continue;
                }
                if (best == UINT32_MAX
                    || f->meta[j].popularity > f->meta[best].popularity)
                {
                    best = j;
                }
            }
            used[best] = 1;
            pos = cat == f->n_cat ? v->popular[k]
                                  : v->cat_popular[v->cat_popular_offsets[cat]
                                                   + k];
            assert_int_equal(pos, best);
        }
    }
    free(used);
}


/* Every field and array of the view equals the fixture's input. */
static void
check_view(const fixture_t *f, const mv_snapshot_view_t *v)
{
    const mv_hnsw_graph_t  *g = f->in.graph;
    mv_hnsw_scratch_t      *s;
    mv_hit_t                hits_file[10], hits_mem[10];
    size_t                  n_file, n_mem, q;

    assert_int_equal(v->version, MV_SNAPSHOT_VERSION);
    assert_int_equal(v->generation, f->in.generation);
    assert_int_equal(v->created_at_ms, f->in.created_at_ms);
    assert_int_equal(v->dim, f->dim);
    assert_int_equal(v->metric, f->metric);
    assert_int_equal(v->n_items, f->n_items);
    assert_int_equal(v->n_users, f->n_users);
    assert_int_equal(v->n_categories, f->n_cat);

    assert_ids_equal(&v->items, f->item_ids, f->n_items);
    assert_ids_equal(&v->users, f->user_ids, f->n_users);
    assert_ids_equal(&v->categories, f->cat_ids, f->n_cat);

    if (f->n_items > 0) {
        assert_memory_equal(v->item_vectors, f->item_vectors,
                            (size_t) f->n_items * f->dim * sizeof(float));
        assert_memory_equal(v->item_meta, f->meta,
                            (size_t) f->n_items * sizeof(mv_item_meta_t));
    }
    if (f->n_users > 0) {
        assert_memory_equal(v->user_vectors, f->user_vectors,
                            (size_t) f->n_users * f->dim * sizeof(float));
    }

    assert_int_equal(v->graph.n, f->n_items);
    if (g == NULL) {
        /* an empty catalogue written without a graph */
        assert_int_equal(v->graph.max_level, 0);
        assert_null(v->graph.sq_min);
        return;
    }
    assert_int_equal(v->graph.dim, g->dim);
    assert_int_equal(v->graph.metric, g->metric);
    assert_int_equal(v->graph.M, g->M);
    assert_int_equal(v->graph.M0, g->M0);
    assert_int_equal(v->graph.max_level, g->max_level);
    assert_int_equal(v->graph.level0_stride, g->level0_stride);
    assert_int_equal(v->graph.code_stride, g->codes != NULL ? g->code_stride : 0);
    if (g->n > 0) {
        assert_int_equal(v->graph.entry, g->entry);
        assert_memory_equal(v->graph.level0, g->level0,
                            (size_t) g->n * g->level0_stride);
        assert_memory_equal(v->graph.upper_offsets, g->upper_offsets,
                            ((size_t) g->n + 1) * sizeof(uint32_t));
        if (g->upper_offsets[g->n] > 0) {
            assert_memory_equal(v->graph.upper_links, g->upper_links,
                                g->upper_offsets[g->n] * sizeof(uint32_t));
        }
        assert_ptr_equal(v->graph.vectors, v->item_vectors);
    }
    if (g->codes != NULL) {
        assert_memory_equal(v->graph.sq_min, g->sq_min,
                            f->dim * sizeof(float));
        assert_memory_equal(v->graph.sq_scale, g->sq_scale,
                            f->dim * sizeof(float));
        assert_int_equal((uintptr_t) v->graph.codes % 64, 0);
        assert_memory_equal(v->graph.codes, g->codes,
                            (size_t) g->n * g->code_stride);
    } else {
        assert_null(v->graph.sq_min);
    }

    assert_int_equal(v->n_positions, f->in.n_positions);
    assert_memory_equal(v->positions, f->positions,
                        f->in.n_positions * sizeof(mv_stream_pos_t));
    assert_int_equal(v->file_size, f->len);

    check_popular_lists(f, v);

    /* The mapped graph searches exactly like the in-memory one. */
    if (f->n_items > 0) {
        s = mv_hnsw_scratch_new(f->n_items, f->dim, 64);
        assert_non_null(s);
        for (q = 0; q < 5 && q < f->n_users; q++) {
            n_file = mv_hnsw_search(&v->graph, mv_kernels_best(), s,
                                    f->user_vectors + q * f->dim, 10, 64,
                                    NULL, hits_file);
            n_mem = mv_hnsw_search(g, mv_kernels_best(), s,
                                   f->user_vectors + q * f->dim, 10, 64, NULL,
                                   hits_mem);
            assert_int_equal(n_file, n_mem);
            assert_memory_equal(hits_file, hits_mem,
                                n_file * sizeof(mv_hit_t));
        }
        mv_hnsw_scratch_free(s);
    }
}


static void
roundtrip(fixture_t *f)
{
    mv_snapshot_t  *snap;
    mv_err_t        err;
    struct stat     st;
    uint64_t        dev, ino;

    fixture_write(f);
    assert_int_equal(f->len % 64, 0);

    err.msg[0] = '\0';
    snap = mv_snapshot_open(f->path, &err);
    if (snap == NULL) {
        fail_msg("open: %s", err.msg);
    }
    check_view(f, mv_snapshot_view(snap));

    assert_int_equal(stat(f->path, &st), 0);
    mv_snapshot_file_id(snap, &dev, &ino);
    assert_int_equal(dev, (uint64_t) st.st_dev);
    assert_int_equal(ino, (uint64_t) st.st_ino);
    mv_snapshot_close(snap);

    /* Only the snapshot itself is in the directory: no temp left. */
    assert_int_equal(count_files(f->dir), 1);
}


static void
test_roundtrip_cosine_sq8(void **state)
{
    roundtrip(*state);
}


static void
test_roundtrip_l2_plain(void **state)
{
    fixture_t  f;

    (void) state;
    fixture_make(&f, 200, 7, MV_METRIC_L2, 0, 10, 3);
    roundtrip(&f);
    fixture_free(&f);
}


static void expect_write_fails(fixture_t *f, const char *substring);


/* The inner product: vectors written and read back exactly as given. */
static void
test_roundtrip_ip(void **state)
{
    fixture_t                  f;
    mv_snapshot_t             *snap;
    const mv_snapshot_view_t  *v;
    mv_err_t                   err;
    int                        sq8;

    (void) state;

    for (sq8 = 0; sq8 < 2; sq8++) {
        fixture_make(&f, 250, 9, MV_METRIC_IP, sq8, 12, 4);
        assert_memory_equal(f.graph.vectors, f.item_vectors,
                            250 * 9 * sizeof(float));

        roundtrip(&f);      /* item vectors bit for bit, same searches */

        snap = mv_snapshot_open(f.path, &err);
        assert_non_null(snap);
        v = mv_snapshot_view(snap);
        assert_int_equal(v->metric, MV_METRIC_IP);
        assert_int_equal(v->graph.metric, MV_METRIC_IP);
        mv_snapshot_close(snap);
        fixture_free(&f);
    }
}


/*
 * The metric field: 1, 2 and 3 are known, anything else refused.  A cosine
 * file is also a valid inner-product file (unit vectors are vectors), but
 * an inner-product file is no cosine file: its vectors are not unit norm.
 */
static void
test_metric_field(void **state)
{
    fixture_t           f, ip;
    mv_snapshot_view_t  v;
    uint8_t            *b;
    uint32_t            bad[] = { 0, 4, 5, 0x80000003u, UINT32_MAX };
    size_t              i;

    (void) state;
    fixture_make(&f, 40, 6, MV_METRIC_COSINE, 1, 3, 2);
    fixture_write(&f);

    b = copy_of(&f);
    header_of(b)->metric = MV_METRIC_IP;
    fixup_crcs(b, f.len);
    assert_int_equal(mv_snapshot_validate(b, f.len, &v, NULL), MV_OK);
    assert_int_equal(v.metric, MV_METRIC_IP);
    assert_int_equal(v.graph.metric, MV_METRIC_IP);
    free(b);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b = copy_of(&f);
        header_of(b)->metric = bad[i];
        expect_refused(&f, b, 1, "unknown metric");
    }

    fixture_make(&ip, 40, 6, MV_METRIC_IP, 0, 3, 2);
    fixture_write(&ip);
    assert_int_equal(mv_snapshot_validate(ip.buf, ip.len, &v, NULL), MV_OK);
    b = copy_of(&ip);
    header_of(b)->metric = MV_METRIC_COSINE;
    expect_refused(&ip, b, 1, "is not 1 (cosine metric)");

    /* ... but finite it must be */
    b = copy_of(&ip);
    ((float *) (void *) section_of(b, MV_SNAP_ITEM_VECTORS))[7] = INFINITY;
    expect_refused(&ip, b, 1, "item 1: vector value 1 is not finite");

    /* and the writer refuses metric 4 */
    assert_int_equal(unlink(ip.path), 0);
    ip.in.metric = (mv_metric_t) 4;
    expect_write_fails(&ip, "unknown metric 4");

    fixture_free(&ip);
    fixture_free(&f);
}


static void
test_roundtrip_empty(void **state)
{
    fixture_t  f;

    (void) state;
    fixture_make(&f, 0, 8, MV_METRIC_COSINE, 0, 0, 0);
    f.in.n_positions = 0;
    roundtrip(&f);

    /* no graph at all is fine for an empty catalogue */
    f.in.graph = NULL;
    roundtrip(&f);
    fixture_free(&f);
}


static void
test_roundtrip_single(void **state)
{
    fixture_t  f;

    (void) state;
    fixture_make(&f, 1, 3, MV_METRIC_L2, 1, 1, 1);
    roundtrip(&f);
    fixture_free(&f);
}


/* The writer normalises cosine vectors that are not unit norm. */
static void
test_writer_normalises(void **state)
{
    fixture_t                  f;
    mv_snapshot_t             *snap;
    const mv_snapshot_view_t  *v;
    uint32_t                   i, j;
    double                     s;
    mv_err_t                   err;

    (void) state;
    fixture_make(&f, 50, 8, MV_METRIC_COSINE, 0, 5, 2);
    for (i = 0; i < 50 * 8; i++) {
        f.item_vectors[i] *= 3.0f;
    }
    fixture_write(&f);
    snap = mv_snapshot_open(f.path, &err);
    assert_non_null(snap);
    v = mv_snapshot_view(snap);
    for (i = 0; i < 50; i++) {
        s = 0;
        for (j = 0; j < 8; j++) {
            s += (double) v->item_vectors[i * 8 + j]
                 * v->item_vectors[i * 8 + j];
            assert_true(fabsf(v->item_vectors[i * 8 + j]
                              - f.item_vectors[i * 8 + j] / 3.0f) < 1e-5f);
        }
        assert_true(fabs(s - 1.0) < 1e-5);
    }
    mv_snapshot_close(snap);

    memset(f.item_vectors + 8 * 4, 0, 8 * sizeof(float));
    assert_int_equal(mv_snapshot_write(f.path, &f.in, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "item 4: zero vector"));
    fixture_free(&f);
}


/* ---- header ------------------------------------------------------------- */

typedef struct header_case {
    size_t       offset;     /* of the field in the header */
    int          width;      /* 1, 4 or 8 bytes */
    uint64_t     value;      /* new value; see `add` */
    int          add;        /* 1: value is added to the old one */
    int          fix;        /* recompute the header CRC */
    const char  *expect;
} header_case_t;


#define HOFF(field)  offsetof(mv_snap_header_t, field)
#define SOFF(i, field) (offsetof(mv_snap_header_t, sections) \
                        + (i) * sizeof(mv_snap_section_t) \
                        + offsetof(mv_snap_section_t, field))
#define POFF(i, field) (offsetof(mv_snap_header_t, positions) \
                        + (i) * sizeof(mv_stream_pos_t) \
                        + offsetof(mv_stream_pos_t, field))

static void
apply_case(uint8_t *b, const header_case_t *c)
{
    uint64_t  v8;
    uint32_t  v4;

    switch (c->width) {
    case 1:
        b[c->offset] = (uint8_t) (c->add ? b[c->offset] + c->value
                                         : c->value);
        break;
    case 4:
        memcpy(&v4, b + c->offset, 4);
        v4 = (uint32_t) (c->add ? v4 + c->value : c->value);
        memcpy(b + c->offset, &v4, 4);
        break;
    default:
        memcpy(&v8, b + c->offset, 8);
        v8 = c->add ? v8 + c->value : c->value;
        memcpy(b + c->offset, &v8, 8);
        break;
    }
}


static void
test_header_fields(void **state)
{
    fixture_t            *f = *state;
    const header_case_t   cases[] = {
        { 0, 1, 1, 1, 1, "bad magic" },
        { 7, 1, 0, 0, 1, "bad magic" },
        { HOFF(version), 4, 7, 0, 1, "unsupported format version 7" },
        { HOFF(version), 4, 0, 0, 1, "unsupported format version 0" },
        { HOFF(endian_mark), 4, 0x04030201, 0, 1, "big-endian" },
        { HOFF(endian_mark), 4, 0x01020305, 0, 1, "bad endianness mark" },
        { HOFF(header_size), 4, 4096, 0, 1, "header size 4096 != 8192" },
        { HOFF(file_size), 8, 64, 1, 1, "truncated: file size" },
        { HOFF(file_size), 8, (uint64_t) -64, 1, 1,
          "!= header file size" },
        { HOFF(header_crc), 4, 1, 1, 0, "header checksum mismatch" },
        { HOFF(generation), 8, 1, 1, 0, "header checksum mismatch" },
        { HOFF(dim), 4, 1, 1, 0, "header checksum mismatch" },
        { HOFF(flags), 4, 1, 0, 1, "unknown header flags 0x1" },
        { HOFF(id_seeds) + 3, 1, 9, 1, 1, "item ids: id" },
        { HOFF(id_seeds) + 16, 1, 9, 1, 1, "user ids: id" },
        { HOFF(reserved1) + 100, 1, 9, 0, 1, "reserved bytes not zero" },
        { HOFF(dim), 4, 0, 0, 1, "dim 0 not in 1..65536" },
        { HOFF(dim), 4, 1u << 20, 0, 1, "dim 1048576 not in" },
        { HOFF(dim), 4, 1, 1, 1, "hnsw: code stride 16 != expected 32" },
        { HOFF(metric), 4, 4, 0, 1, "unknown metric 4" },
        { HOFF(metric), 4, 0, 0, 1, "unknown metric 0" },
        { HOFF(n_items), 4, 1, 1, 1,
          "section 3 (item vectors) length 19200 != expected 19264" },
        { HOFF(n_items), 4, (1u << 30) + 1, 0, 1, "counts too large" },
        { HOFF(n_items), 4, 0, 0, 1, "hnsw: empty graph" },
        { HOFF(n_users), 4, 1, 1, 1, "section 12 (user vectors) length" },
        { HOFF(n_users), 4, 100, 1, 1,
          "section 10 (user ids) length 544 < minimum 604" },
        { HOFF(n_categories), 4, 1, 1, 1, "section 5 (category ids)" },
        { HOFF(n_categories), 4, 0, 0, 1,
          "section 6 (category slots) length 64 != expected 32" },
        { HOFF(hnsw_m), 4, 1, 1, 1, "hnsw: M0 16 != 2 * M (18)" },
        { HOFF(hnsw_m), 4, 1, 0, 1, "hnsw: M 1 not in 2..64" },
        { HOFF(hnsw_m), 4, 65, 0, 1, "hnsw: M 65 not in 2..64" },
        { HOFF(hnsw_m0), 4, 1, 1, 1, "hnsw: M0 17 != 2 * M (16)" },
        { HOFF(hnsw_max_level), 4, 32, 0, 1, "hnsw: max level 32 > 31" },
        { HOFF(hnsw_max_level), 4, 1, 1, 1, "hnsw: entry" },
        { HOFF(hnsw_entry), 4, 300, 0, 1,
          "hnsw: entry 300 out of range (n=300)" },
        { HOFF(hnsw_level0_stride), 4, 4, 1, 1, "hnsw: level-0 stride" },
        { HOFF(hnsw_code_stride), 4, 4, 1, 1, "hnsw: code stride" },
        { HOFF(hnsw_code_stride), 4, 0, 0, 1, "section 9 (sq8) length" },
        { HOFF(n_positions), 4, 65, 0, 1, "n_positions 65 > 64" },
        { HOFF(n_positions), 4, 2, 0, 1,
          "stream position 2 is unused but not zero" },
        { HOFF(n_positions), 4, 4, 0, 1, "stream position 3: empty name" },
        { POFF(0, stream) + 20, 1, 'x', 0, 1, "bytes after the name" },
        { POFF(1, reserved), 4, 1, 0, 1, "reserved fields not zero" },
        { POFF(2, reserved2), 8, 1, 0, 1, "reserved fields not zero" },
        { HOFF(n_sections), 4, 12, 0, 1, "section count 12 != 13" },
        { HOFF(n_sections), 4, 14, 0, 1, "section count 14 != 13" },
        { SOFF(2, type), 4, 4, 0, 1, "section 3: type 4 != expected 3" },
        { SOFF(0, type), 4, 0, 0, 1, "section 1: type 0 != expected 1" },
        { SOFF(4, flags), 4, 2, 0, 1, "section 5 (category ids) has "
          "unknown flags" },
        { SOFF(4, reserved), 4, 2, 0, 1, "unknown flags" },
        { SOFF(0, offset), 8, 0, 0, 1, "overlaps the header" },
        { SOFF(3, offset), 8, 1, 1, 1, "not 64-byte aligned" },
        { SOFF(3, offset), 8, (uint64_t) -64, 1, 1,
          "section 4 (item meta) offset" },
        { SOFF(3, offset), 8, 64, 1, 1, "(gap)" },
        { SOFF(12, offset), 8, 1ULL << 40, 0, 1, "(gap)" },
        { SOFF(3, length), 8, 4, 1, 1,
          "section 4 (item meta) length 7204 != expected 7200" },
        { SOFF(3, length), 8, 1ULL << 62, 0, 1, "past the end of the file" },
        { SOFF(12, length), 8, 64, 1, 1, "past the end of the file" },
        { SOFF(3, length), 8, (uint64_t) -8, 1, 1,
          "section 4 (item meta) padding not zero" },
        { SOFF(2, length), 8, 64, 1, 1, "overlaps the previous section" },
        { SOFF(13, type), 4, 14, 0, 1, "entry 13 is unused but not zero" },
        { SOFF(31, crc32c), 4, 1, 0, 1, "entry 31 is unused but not zero" },
        { SOFF(5, crc32c), 4, 1, 1, 1, "section 6 (category slots) "
          "checksum mismatch" },
    };
    size_t                i;
    uint8_t              *b;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        b = copy_of(f);
        apply_case(b, &cases[i]);
        if (cases[i].fix) {
            header_of(b)->header_crc = mv_snap_header_crc(header_of(b));
        }
        print_message("header case %zu: %s\n", i, cases[i].expect);
        expect_refused(f, b, 0, cases[i].expect);
    }

    /* A nonzero byte in the padding after a section. */
    b = copy_of(f);
    b[header_of(b)->sections[3].offset + header_of(b)->sections[3].length]
        = 1;
    expect_refused(f, b, 0, "section 4 (item meta) padding not zero");

    /* The untouched file is fine. */
    b = copy_of(f);
    expect_refused_len(b, 0, "truncated: 0 bytes < header 8192");
    assert_int_equal(mv_snapshot_validate(b, f->len, &(mv_snapshot_view_t) {
        0 }, NULL), MV_OK);
    free(b);
}


/* Alignment of the buffer itself is checked. */
static void
test_unaligned_buffer(void **state)
{
    fixture_t  *f = *state;
    uint8_t    *b = NULL;

    assert_int_equal(posix_memalign((void **) &b, 64, f->len + 64), 0);
    memcpy(b + 4, f->buf, f->len);
    expect_refused_len(b + 4, f->len, "not 64-byte aligned");
    free(b);
}


/* ---- sections ----------------------------------------------------------- */

static void
test_section_checksums(void **state)
{
    fixture_t           *f = *state;
    mv_snap_section_t   *s;
    uint8_t             *b;
    uint32_t             type;
    char                 expect[96];

    for (type = 1; type <= MV_SNAP_SECTION_COUNT; type++) {
        b = copy_of(f);
        s = &header_of(b)->sections[type - 1];
        assert_true(s->length > 0);
        b[s->offset + s->length / 2] ^= 0x40;
        snprintf(expect, sizeof(expect), "section %u (%s) checksum mismatch",
                 type, mv_snap_section_name(type));
        expect_refused(f, b, 0, expect);

        /* the first and last byte too */
        b = copy_of(f);
        s = &header_of(b)->sections[type - 1];
        b[s->offset] ^= 1;
        expect_refused(f, b, 0, expect);
        b = copy_of(f);
        s = &header_of(b)->sections[type - 1];
        b[s->offset + s->length - 1] ^= 0x80;
        expect_refused(f, b, 0, expect);
    }
}


static uint32_t *
u32_at(uint8_t *b, uint32_t type, size_t index)
{
    return (uint32_t *) (void *) section_of(b, type) + index;
}


static uint32_t *
level0_word(uint8_t *b, const fixture_t *f, uint32_t node)
{
    return (uint32_t *) (void *) (section_of(b, MV_SNAP_HNSW_LEVEL0)
                                  + (size_t) node * f->graph.level0_stride);
}


static mv_item_meta_t *
meta_at(uint8_t *b, uint32_t i)
{
    return (mv_item_meta_t *) (void *) section_of(b, MV_SNAP_ITEM_META) + i;
}


/* A non-deleted node with a level-0 link count of at least 1. */
static uint32_t
live_node(const fixture_t *f, uint32_t from)
{
    uint32_t  i;

    for (i = from; i < f->n_items; i++) {
        if (!(f->meta[i].flags & MV_ITEM_DELETED)
            && (mv_hnsw_level0_record(&f->graph, i)[0] & MV_HNSW_COUNT_MASK)
               > 0)
        {
            return i;
        }
    }
    fail();
    return 0;
}


static void
test_graph_corruptions(void **state)
{
    fixture_t   *f = *state;
    uint8_t     *b;
    uint32_t     node = live_node(f, 5), i, level0_node = UINT32_MAX;
    uint32_t    *offs, *links, hi_node = UINT32_MAX;
    char         expect[128];

    /* level 0 link out of range */
    b = copy_of(f);
    level0_word(b, f, node)[1] = 900;
    snprintf(expect, sizeof(expect),
             "hnsw: node %u link 0 -> 900 out of range (n=300)", node);
    expect_refused(f, b, 1, expect);

    /* link to itself */
    b = copy_of(f);
    level0_word(b, f, node)[1] = node;
    snprintf(expect, sizeof(expect), "hnsw: node %u link 0 points to itself",
             node);
    expect_refused(f, b, 1, expect);

    /* count beyond M0 */
    b = copy_of(f);
    level0_word(b, f, node)[0] = 17;
    expect_refused(f, b, 1, "level-0 count 17 > M0 16");

    /* unknown bits in the word */
    b = copy_of(f);
    level0_word(b, f, node)[0] |= 1u << 20;
    expect_refused(f, b, 1, "has unknown bits");

    /* deleted mark set on a live item */
    b = copy_of(f);
    level0_word(b, f, node)[0] |= MV_HNSW_DELETED;
    snprintf(expect, sizeof(expect),
             "item %u: graph deleted mark 1 != meta deleted flag 0", node);
    expect_refused(f, b, 1, expect);

    /* ... and cleared on a deleted one */
    b = copy_of(f);
    level0_word(b, f, 3)[0] &= ~MV_HNSW_DELETED;
    expect_refused(f, b, 1,
                   "item 3: graph deleted mark 0 != meta deleted flag 1");

    /* upper levels: find a node with level >= 1 and a node with level 0 */
    for (i = 0; i < f->n_items; i++) {
        if (mv_hnsw_node_level(&f->graph, i) >= 1 && hi_node == UINT32_MAX
            && f->graph.upper_links[f->graph.upper_offsets[i]] > 0)
        {
            hi_node = i;
        }
        if (mv_hnsw_node_level(&f->graph, i) == 0
            && level0_node == UINT32_MAX)
        {
            level0_node = i;
        }
    }
    assert_true(hi_node != UINT32_MAX && level0_node != UINT32_MAX);

    offs = NULL;
    b = copy_of(f);
    offs = u32_at(b, MV_SNAP_HNSW_UPPER, 0);
    links = offs + f->n_items + 1;
    links[offs[hi_node] + 1] = level0_node == hi_node ? 0 : level0_node;
    snprintf(expect, sizeof(expect), "hnsw: node %u level 1 link 0 -> %u "
             "which has only level 0", hi_node, level0_node);
    expect_refused(f, b, 1, expect);

    b = copy_of(f);
    offs = u32_at(b, MV_SNAP_HNSW_UPPER, 0);
    links = offs + f->n_items + 1;
    links[offs[hi_node] + 1] = 5000;
    expect_refused(f, b, 1, "level 1 link 0 -> 5000 out of range (n=300)");

    b = copy_of(f);
    offs = u32_at(b, MV_SNAP_HNSW_UPPER, 0);
    links = offs + f->n_items + 1;
    links[offs[hi_node]] = 9;
    expect_refused(f, b, 1, "level 1: count 9 > M 8");

    /* upper offsets: not whole blocks, decreasing, wrong total */
    b = copy_of(f);
    offs = u32_at(b, MV_SNAP_HNSW_UPPER, 0);
    offs[hi_node + 1] += 1;
    expect_refused(f, b, 1, "hnsw: node");

    b = copy_of(f);
    offs = u32_at(b, MV_SNAP_HNSW_UPPER, 0);
    offs[0] = 9;
    expect_refused(f, b, 1, "upper offsets start at 9");

    b = copy_of(f);
    offs = u32_at(b, MV_SNAP_HNSW_UPPER, 0);
    offs[f->n_items] += 9;
    expect_refused(f, b, 1, "section 8 (hnsw upper) holds");

    /* sq8 parameters */
    b = copy_of(f);
    ((float *) (void *) section_of(b, MV_SNAP_SQ8))[f->dim + 3] = 0.0f;
    expect_refused(f, b, 1, "hnsw: sq8 scale[3]");
    b = copy_of(f);
    ((float *) (void *) section_of(b, MV_SNAP_SQ8))[2] = NAN;
    expect_refused(f, b, 1, "hnsw: sq8 min[2] is not finite");
}


static void
test_item_corruptions(void **state)
{
    fixture_t   *f = *state;
    uint8_t     *b;
    float       *vec;
    uint32_t    *slots, i, j, cap;
    char         expect[96];

    /* metadata */
    b = copy_of(f);
    meta_at(b, 17)->category = 9;
    expect_refused(f, b, 1, "item 17: category 9 >= 5 categories");
    b = copy_of(f);
    meta_at(b, 17)->flags = 4;
    expect_refused(f, b, 1, "item 17: unknown flags 0x4");
    b = copy_of(f);
    meta_at(b, 17)->popularity = NAN;
    expect_refused(f, b, 1, "item 17: popularity");
    b = copy_of(f);
    meta_at(b, 17)->popularity = -1.0f;
    expect_refused(f, b, 1, "item 17: popularity -1");
    b = copy_of(f);
    meta_at(b, 17)->reserved = 1;
    expect_refused(f, b, 1, "item 17: reserved field");

    /* vectors */
    vec = NULL;
    b = copy_of(f);
    vec = (float *) (void *) section_of(b, MV_SNAP_ITEM_VECTORS);
    vec[3 * f->dim + 2] = INFINITY;
    expect_refused(f, b, 1, "item 3: vector value 2 is not finite");
    b = copy_of(f);
    vec = (float *) (void *) section_of(b, MV_SNAP_ITEM_VECTORS);
    for (j = 0; j < f->dim; j++) {
        vec[8 * f->dim + j] *= 2.0f;
    }
    expect_refused(f, b, 1, "item 8: vector norm 2 is not 1");
    b = copy_of(f);
    vec = (float *) (void *) section_of(b, MV_SNAP_USER_VECTORS);
    vec[4 * f->dim] = NAN;
    expect_refused(f, b, 1, "user 4: vector value 0 is not finite");

    /* ids: invalid character, duplicate, length, slot pointing wrongly */
    b = copy_of(f);
    section_of(b, MV_SNAP_ITEM_IDS)[4 * (f->n_items + 1) + 2] = '/';
    expect_refused(f, b, 1, "item ids: id 0: invalid character");

    b = copy_of(f);
    /* item-2 -> item-1 */
    section_of(b, MV_SNAP_ITEM_IDS)[4 * (f->n_items + 1) + 6 * 2 + 5] = '1';
    expect_refused(f, b, 1, "item ids: id 2 (item-1) found at index 1 "
                   "(duplicate id or wrong slot)");

    b = copy_of(f);
    u32_at(b, MV_SNAP_ITEM_IDS, 1)[0] = 0;
    expect_refused(f, b, 1, "item ids: id 0: length 0 not in 1..64");

    b = copy_of(f);
    u32_at(b, MV_SNAP_ITEM_IDS, f->n_items)[0] -= 1;
    expect_refused(f, b, 1, "section 1 (item ids): ids end at");

    b = copy_of(f);
    slots = u32_at(b, MV_SNAP_USER_SLOTS, 0);
    cap = mv_idtable_capacity(f->n_users);
    for (i = 0; slots[i] == 0; i++) {
    }
    for (j = i + 1; slots[j] == 0; j++) {
    }
    /* slot i now names slot j's id: slot i's id is nowhere */
    snprintf(expect, sizeof(expect), "user ids: id %u (user:%u) not found "
             "through the slots", slots[i] - 1, slots[i] - 1);
    slots[i] = slots[j];
    expect_refused(f, b, 1, expect);
    (void) cap;

    b = copy_of(f);
    slots = u32_at(b, MV_SNAP_CATEGORY_SLOTS, 0);
    for (i = 0; slots[i] == 0; i++) {
    }
    slots[i] = 0;
    expect_refused(f, b, 1, "category ids: 4 slots used for 5 ids");
}


static void
test_popular_corruptions(void **state)
{
    fixture_t        *f = *state;
    uint8_t          *b;
    uint32_t         *pop, n_live = 0, i, k, *cat_off, *cat_list;
    mv_item_meta_t   *m = f->meta;
    char              expect[128];

    for (i = 0; i < f->n_items; i++) {
        n_live += !(m[i].flags & MV_ITEM_DELETED);
    }

    /* two neighbours of different popularity swapped */
    b = copy_of(f);
    pop = u32_at(b, MV_SNAP_POPULAR, 0);
    for (k = 0; m[pop[k]].popularity == m[pop[k + 1]].popularity; k++) {
    }
    i = pop[k];
    pop[k] = pop[k + 1];
    pop[k + 1] = i;
    snprintf(expect, sizeof(expect), "popular[%u]: item %u out of order",
             k + 1, i);
    expect_refused(f, b, 1, expect);

    /* equal popularity: ties must be by index */
    b = copy_of(f);
    pop = u32_at(b, MV_SNAP_POPULAR, 0);
    for (k = 0; m[pop[k]].popularity != m[pop[k + 1]].popularity; k++) {
    }
    i = pop[k];
    pop[k] = pop[k + 1];
    pop[k + 1] = i;
    expect_refused(f, b, 1, "out of order");

    /* a deleted item, a duplicate, an out of range id */
    b = copy_of(f);
    u32_at(b, MV_SNAP_POPULAR, 0)[n_live - 1] = 3;
    expect_refused(f, b, 1, "item 3 is deleted");
    b = copy_of(f);
    pop = u32_at(b, MV_SNAP_POPULAR, 0);
    pop[1] = pop[0];
    expect_refused(f, b, 1, "popular[1]");
    b = copy_of(f);
    u32_at(b, MV_SNAP_POPULAR, 0)[0] = 300;
    expect_refused(f, b, 1, "popular[0]: item 300 out of range (n=300)");

    /* category lists */
    b = copy_of(f);
    cat_off = u32_at(b, MV_SNAP_POPULAR, n_live);
    cat_list = cat_off + f->n_cat + 1;
    cat_list[cat_off[2]] = cat_list[cat_off[1]];
    expect_refused(f, b, 1, "category 2 popular[0]: item");
    b = copy_of(f);
    cat_off = u32_at(b, MV_SNAP_POPULAR, n_live);
    cat_off[2] += 1;
    expect_refused(f, b, 1, "category 1 popular[");
    b = copy_of(f);
    cat_off = u32_at(b, MV_SNAP_POPULAR, n_live);
    cat_off[0] = 1;
    expect_refused(f, b, 1, "category popular offsets span 1..");
    b = copy_of(f);
    cat_off = u32_at(b, MV_SNAP_POPULAR, n_live);
    cat_off[3] = cat_off[2] - 1;
    expect_refused(f, b, 1, "category 2 popular offsets");

    /* meta says one more item is deleted: the lists no longer match */
    b = copy_of(f);
    meta_at(b, u32_at(b, MV_SNAP_POPULAR, 0)[0])->flags = MV_ITEM_DELETED;
    level0_word(b, f, u32_at(b, MV_SNAP_POPULAR, 0)[0])[0]
        |= MV_HNSW_DELETED;
    expect_refused(f, b, 1, "section 13 (popular) length");
}


/* Every length that is not the whole file is refused, and nothing crashes
   even with the header told about the new length. */
static void
test_truncation(void **state)
{
    fixture_t  f;
    size_t     len;
    uint8_t   *b;
    mv_err_t   err;
    char       path[160];
    FILE      *fp;

    (void) state;
    fixture_make(&f, 20, 4, MV_METRIC_COSINE, 1, 3, 2);
    fixture_write(&f);

    for (len = 0; len < f.len; len += (len < 9000 ? 1 : 64)) {
        expect_refused_len(f.buf, len, len < MV_SNAPSHOT_HEADER_SIZE
                                       ? "truncated: " : "truncated: file "
                                                         "size");
        if (len >= MV_SNAPSHOT_HEADER_SIZE) {
            b = copy_of(&f);
            header_of(b)->file_size = len;
            fixup_crcs(b, len);
            expect_refused_len(b, len, NULL);
            free(b);
        }
    }
    expect_refused_len(f.buf, f.len - 1, "truncated");

    /* a longer file is refused too */
    b = copy_of(&f);
    memset(b + f.len, 0, 64);
    expect_refused_len(b, f.len + 64, "file size");
    free(b);

    /* and a truncated file on disk */
    snprintf(path, sizeof(path), "%s/short.mvs", f.dir);
    fp = fopen(path, "wb");
    fwrite(f.buf, 1, 5000, fp);
    fclose(fp);
    assert_null(mv_snapshot_open(path, &err));
    assert_non_null(strstr(err.msg, "truncated: 5000 bytes < header 8192"));
    fp = fopen(path, "wb");
    fwrite(f.buf, 1, f.len - 64, fp);
    fclose(fp);
    assert_null(mv_snapshot_open(path, &err));
    assert_non_null(strstr(err.msg, "truncated: file size"));

    fixture_free(&f);
}


/* ---- writer input checks and failures ----------------------------------- */

static void
expect_write_fails(fixture_t *f, const char *substring)
{
    mv_err_t  err;

    err.msg[0] = '\0';
    assert_int_equal(mv_snapshot_write(f->path, &f->in, &err), MV_ERR);
    if (strstr(err.msg, substring) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, substring);
    }
    /* nothing left behind: neither the target nor a temp file */
    assert_int_equal(count_files(f->dir), 0);
}


static void
test_writer_rejects(void **state)
{
    fixture_t         f;
    char             *saved;
    mv_item_meta_t    m;
    mv_stream_pos_t   p;
    float             v;

    (void) state;
    fixture_make(&f, 60, 8, MV_METRIC_COSINE, 1, 6, 3);

    saved = f.item_ids[5];
    f.item_ids[5] = f.item_ids[4];
    expect_write_fails(&f, "item ids: duplicate id \"item-4\" (4 and 5)");
    f.item_ids[5] = saved;

    saved = f.user_ids[2];
    f.user_ids[2] = (char *) "bad id";
    expect_write_fails(&f, "user ids: id 2 is invalid");
    f.user_ids[2] = saved;

    m = f.meta[9];
    f.meta[9].category = 3;
    expect_write_fails(&f, "item 9: category 3 >= 3 categories");
    f.meta[9] = m;
    f.meta[9].flags = MV_ITEM_DELETED;
    expect_write_fails(&f, "item 9: graph deleted mark 0 != meta deleted "
                       "flag 1");
    f.meta[9] = m;

    v = f.item_vectors[13];
    f.item_vectors[13] = NAN;
    expect_write_fails(&f, "item 1: vector value 5 is not finite");
    f.item_vectors[13] = v;
    v = f.user_vectors[8];
    f.user_vectors[8] = INFINITY;
    expect_write_fails(&f, "user 1: vector value 0 is not finite");
    f.user_vectors[8] = v;

    p = f.positions[1];
    memset(f.positions[1].stream, 'a', sizeof(f.positions[1].stream));
    expect_write_fails(&f, "stream position 1");
    f.positions[1] = p;

    f.in.dim = 9;
    expect_write_fails(&f, "does not match");
    f.in.dim = 8;
    f.in.graph = NULL;
    expect_write_fails(&f, "no graph for 60 items");
    f.in.graph = &f.graph;

    /* a directory that does not exist */
    snprintf(f.path, sizeof(f.path), "%s/nope/snap.mvs", f.dir);
    expect_write_fails(&f, "open(");

    /* and after all that, the input still writes fine */
    snprintf(f.path, sizeof(f.path), "%s/snap.mvs", f.dir);
    fixture_write(&f);
    assert_int_equal(count_files(f.dir), 1);
    fixture_free(&f);
}


/* ---- publishing --------------------------------------------------------- */

static void
expect_current(const fixture_t *f, uint64_t generation)
{
    char                       path[160], target[160], want[64];
    mv_snapshot_t             *snap;
    mv_err_t                   err;
    ssize_t                    n;

    snprintf(path, sizeof(path), "%s/current", f->dir);
    n = readlink(path, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    snprintf(want, sizeof(want), "snapshot-%020llu.mvs",
             (unsigned long long) generation);
    assert_string_equal(target, want);      /* relative target */

    snap = mv_snapshot_open(path, &err);
    if (snap == NULL) {
        fail_msg("open current: %s", err.msg);
    }
    assert_int_equal(mv_snapshot_view(snap)->generation, generation);
    mv_snapshot_close(snap);
}


static int
file_exists(const fixture_t *f, uint64_t generation)
{
    char         path[160];
    struct stat  st;

    snprintf(path, sizeof(path), "%s/snapshot-%020llu.mvs", f->dir,
             (unsigned long long) generation);
    return stat(path, &st) == 0;
}


/* What an interrupted publish leaves is removed; nothing else is. */
static void
test_remove_temps(void **state)
{
    static const char *const  temps[] = {
        "snapshot-00000000000000000007.mvs.tmp-123-00000000deadbeef",
        ".current.tmp-123-00000000deadbeef",
    };
    static const char *const  keep[] = {
        "snapshot-00000000000000000007.mvs", "current", "notes.tmp-1",
        "other.mvs.tmp-1",
    };
    fixture_t  f;
    char       path[512];
    FILE      *fp;
    mv_err_t   err;
    uint64_t  *gens;
    size_t     n;

    (void) state;
    fixture_make(&f, 3, 4, MV_METRIC_L2, 0, 1, 1);
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", f.dir, temps[i]);
        assert_non_null(fp = fopen(path, "w"));
        fclose(fp);
    }
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", f.dir, keep[i]);
        assert_non_null(fp = fopen(path, "w"));
        fclose(fp);
    }

    /* the listing sees the published name only, not the temp file */
    assert_int_equal(mv_snapshot_generations(f.dir, &gens, &n, &err), MV_OK);
    assert_int_equal(n, 1);
    assert_int_equal(gens[0], 7);
    free(gens);

    assert_int_equal(mv_snapshot_remove_temps(f.dir, &err), 2);
    assert_int_equal(count_files(f.dir), 4);
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", f.dir, keep[i]);
        assert_int_equal(access(path, F_OK), 0);
        unlink(path);
    }
    assert_int_equal(mv_snapshot_remove_temps(f.dir, &err), 0);
    assert_int_equal(mv_snapshot_remove_temps("/nonexistent-mvsnap", &err),
                     MV_ERR);
    fixture_free(&f);
}


static void
test_publish(void **state)
{
    fixture_t  f;
    char       out[256], want[256];
    mv_err_t   err;
    uint64_t   g;

    (void) state;
    fixture_make(&f, 30, 4, MV_METRIC_L2, 0, 2, 1);

    for (g = 1; g <= 5; g++) {
        f.in.generation = g;
        err.msg[0] = '\0';
        if (mv_snapshot_publish(f.dir, &f.in, 2, out, sizeof(out), &err)
            != MV_OK)
        {
            fail_msg("publish: %s", err.msg);
        }
        snprintf(want, sizeof(want), "%s/snapshot-%020llu.mvs", f.dir,
                 (unsigned long long) g);
        assert_string_equal(out, want);
        expect_current(&f, g);
        assert_true(file_exists(&f, g));
        assert_int_equal(file_exists(&f, g - 1), g >= 2);
        assert_false(file_exists(&f, g - 2));
        /* the kept files and `current`, no temp links */
        assert_int_equal(count_files(f.dir), (g >= 2 ? 2 : 1) + 1);
    }
    {
        uint64_t  *gens;
        size_t     n;

        assert_int_equal(mv_snapshot_generations(f.dir, &gens, &n, &err),
                         MV_OK);
        assert_int_equal(n, 2);
        assert_int_equal(gens[0], 5);
        assert_int_equal(gens[1], 4);
        free(gens);
        assert_int_equal(mv_snapshot_generations("/nonexistent-mvsnap",
                                                 &gens, &n, &err), MV_OK);
        assert_int_equal(n, 0);
        assert_null(gens);
    }

    /* Republishing an older generation: it becomes current and survives
       although two newer files exist. */
    f.in.generation = 3;
    assert_int_equal(mv_snapshot_publish(f.dir, &f.in, 2, NULL, 0, &err),
                     MV_OK);
    expect_current(&f, 3);
    assert_true(file_exists(&f, 3) && file_exists(&f, 4)
                && file_exists(&f, 5));

    /* keep = 1 with a newer generation leaves exactly one file */
    f.in.generation = 10;
    assert_int_equal(mv_snapshot_publish(f.dir, &f.in, 1, NULL, 0, &err),
                     MV_OK);
    expect_current(&f, 10);
    assert_int_equal(count_files(f.dir), 2);

    /* other files in the directory are never touched */
    {
        char  path[160];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/snapshot-1.mvs", f.dir);
        fp = fopen(path, "w");
        fclose(fp);
        f.in.generation = 11;
        assert_int_equal(mv_snapshot_publish(f.dir, &f.in, 1, NULL, 0, &err),
                         MV_OK);
        assert_int_equal(count_files(f.dir), 3);
    }

    /* errors: keep 0, small path_out, missing directory */
    assert_int_equal(mv_snapshot_publish(f.dir, &f.in, 0, NULL, 0, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "keep"));
    assert_int_equal(mv_snapshot_publish(f.dir, &f.in, 1, out, 10, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "path_out too small"));
    snprintf(want, sizeof(want), "%s/missing", f.dir);
    assert_int_equal(mv_snapshot_publish(want, &f.in, 1, NULL, 0, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "open("));
    assert_int_equal(count_files(f.dir), 3);

    fixture_free(&f);
}


static void
test_open_errors(void **state)
{
    fixture_t  *f = *state;
    mv_err_t    err;
    char        path[160];

    snprintf(path, sizeof(path), "%s/none.mvs", f->dir);
    assert_null(mv_snapshot_open(path, &err));
    assert_non_null(strstr(err.msg, "open("));
    assert_non_null(strstr(err.msg, "No such file"));

    assert_null(mv_snapshot_open(f->dir, &err));
    assert_non_null(strstr(err.msg, "not a regular file"));

    mv_snapshot_close(NULL);
}


/* Overwrites path in place (same inode) with len bytes of buf. */
static void
rewrite_in_place(const char *path, const void *buf, size_t len)
{
    FILE  *fp = fopen(path, "r+b");

    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(truncate(path, (off_t) len), 0);
}


/*
 * mv_snapshot_identity: a file rewritten in place keeps its inode but not
 * its identity (another generation, another header CRC); a file too short
 * for the fields is still identified (by where it is and its size); a
 * missing one is an error.
 */
static void
test_identity(void **state)
{
    fixture_t               *f = *state;
    mv_snapshot_identity_t   a, b;
    mv_err_t                 err;
    struct stat              st;
    uint8_t                 *other;
    size_t                   other_len;
    char                     path[160];

    assert_int_equal(mv_snapshot_identity(f->path, &a, &err), MV_OK);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(a.dev, (uint64_t) st.st_dev);
    assert_int_equal(a.ino, (uint64_t) st.st_ino);
    assert_int_equal(a.size, (uint64_t) f->len);
    assert_int_equal(a.has_header, 1);
    assert_int_equal(a.generation, header_of(f->buf)->generation);
    assert_int_equal(a.header_crc, header_of(f->buf)->header_crc);
    assert_true(mv_snapshot_identity_equal(&a, &a));

    /* the next generation, written elsewhere, copied over the same inode */
    f->in.generation++;
    snprintf(path, sizeof(path), "%s/next.mvs", f->dir);
    assert_int_equal(mv_snapshot_write(path, &f->in, &err), MV_OK);
    other = load_file(path, &other_len);
    rewrite_in_place(f->path, other, other_len);

    assert_int_equal(mv_snapshot_identity(f->path, &b, &err), MV_OK);
    assert_int_equal(b.ino, a.ino);
    assert_int_equal(b.generation, a.generation + 1);
    assert_int_not_equal(b.header_crc, a.header_crc);
    assert_false(mv_snapshot_identity_equal(&a, &b));

    /* too short for the fields: identified by place and size only */
    rewrite_in_place(f->path, other, 10);
    assert_int_equal(mv_snapshot_identity(f->path, &b, &err), MV_OK);
    assert_int_equal(b.has_header, 0);
    assert_int_equal(b.size, 10);
    assert_int_equal(b.generation, 0);
    assert_false(mv_snapshot_identity_equal(&a, &b));
    free(other);

    snprintf(path, sizeof(path), "%s/none.mvs", f->dir);
    assert_int_equal(mv_snapshot_identity(path, &b, &err), MV_ERR);
    assert_non_null(strstr(err.msg, "open("));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_cosine_sq8,
                                        setup_default, teardown_fixture),
        cmocka_unit_test(test_roundtrip_l2_plain),
        cmocka_unit_test(test_roundtrip_ip),
        cmocka_unit_test(test_metric_field),
        cmocka_unit_test(test_roundtrip_empty),
        cmocka_unit_test(test_roundtrip_single),
        cmocka_unit_test(test_writer_normalises),
        cmocka_unit_test_setup_teardown(test_header_fields, setup_default,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_unaligned_buffer,
                                        setup_default, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_section_checksums,
                                        setup_default, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_graph_corruptions,
                                        setup_default, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_item_corruptions,
                                        setup_default, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_popular_corruptions,
                                        setup_default, teardown_fixture),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_remove_temps),
        cmocka_unit_test_setup_teardown(test_open_errors, setup_default,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_identity, setup_default,
                                        teardown_fixture),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
