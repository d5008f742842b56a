/*
 * fuzz_snapshot.c -- libFuzzer target for mv_snapshot_validate.
 *
 * Each input is tried twice: as is (so checksum and header checks are
 * exercised), and with every in-bounds section CRC and the header CRC
 * recomputed first, so that mutations reach the structural and semantic
 * validation behind the checksums.  The corpus files are plain snapshots
 * (shared/fuzz/corpus/fuzz_snapshot/).
 *
 * When a buffer validates, the view is used the way nginx uses it: every id
 * looked up (and required to be found at its own index), every vector and
 * metadata record read, every popularity list walked, and a few HNSW
 * searches and scans run, plain and filtered by a category's members.  Any
 * out-of-bounds read there is a validation bug that ASan reports; a wrong
 * lookup traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "hnsw.h"
#include "snapshot.h"
#include "snapshot_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fix_checksums(uint8_t *buf, size_t len)
{
    mv_snap_header_t   *h = (mv_snap_header_t *) (void *) buf;
    mv_snap_section_t  *s;
    uint32_t            i;

    for (i = 0; i < MV_SNAP_MAX_SECTIONS; i++) {
        s = &h->sections[i];
        if (s->offset <= len && s->length <= len - s->offset) {
            s->crc32c = mv_crc32c(0, buf + s->offset, (size_t) s->length);
        }
    }
    h->header_crc = mv_snap_header_crc(h);
}


static void
check_ids(const mv_idtable_t *t)
{
    const char  *id;
    size_t       len;
    uint32_t     i;

    for (i = 0; i < t->n; i++) {
        id = mv_idtable_get(t, i, &len);
        if (mv_idtable_find(t, id, len) != (int64_t) i) {
            __builtin_trap();
        }
    }
    if (t->n == 0 && mv_idtable_find(t, "no-such-id", 10) >= 0) {
        __builtin_trap();
    }
}


static int
in_category(const void *ctx, uint32_t id)
{
    const mv_snapshot_view_t  *v = ctx;

    return v->item_meta[id].category == 0;
}


static float
exercise(const mv_snapshot_view_t *v)
{
    const mv_kernels_t  *kern = mv_kernels_best();
    mv_hnsw_scratch_t   *s;
    mv_filter_t          filter;
    mv_hit_t             hits[8];
    const float         *q;
    float                sum = 0.0f;
    size_t               i, n;
    uint32_t             c;

    check_ids(&v->items);
    check_ids(&v->users);
    check_ids(&v->categories);

    for (i = 0; i < (size_t) v->n_items * v->dim; i++) {
        sum += v->item_vectors[i];
    }
    for (i = 0; i < (size_t) v->n_users * v->dim; i++) {
        sum += v->user_vectors[i];
    }
    for (i = 0; i < v->n_items; i++) {
        sum += v->item_meta[i].popularity
               + (float) v->item_meta[i].category;
    }
    for (i = 0; i < v->n_popular; i++) {
        sum += v->item_meta[v->popular[i]].popularity;
    }
    for (c = 0; c < v->n_categories; c++) {
        for (i = v->cat_popular_offsets[c]; i < v->cat_popular_offsets[c + 1];
             i++)
        {
            sum += v->item_meta[v->cat_popular[i]].popularity;
        }
    }
    for (i = 0; i < v->n_positions; i++) {
        sum += (float) strlen(v->positions[i].stream);
    }

    if (v->n_items == 0) {
        return sum;
    }

    s = mv_hnsw_scratch_new(v->n_items, v->dim, 16);
    if (s == NULL) {
        return sum;
    }

    for (i = 0; i < 3; i++) {
        q = v->n_users > i ? v->user_vectors + i * v->dim
                           : v->item_vectors + (i % v->n_items) * v->dim;
        n = mv_hnsw_search(&v->graph, kern, s, q, 5, 16, NULL, hits);
        sum += n > 0 ? hits[0].distance : 0.0f;

        if (v->n_categories > 0) {
            filter.allow = in_category;
            filter.ctx = v;
            filter.candidates = v->cat_popular;
            filter.n_candidates = v->cat_popular_offsets[1];
            n = mv_hnsw_search(&v->graph, kern, s, q, 5, 16, &filter, hits);
            sum += n > 0 ? hits[0].distance : 0.0f;
        }
        n = mv_hnsw_scan(&v->graph, kern, s, q, v->popular, v->n_popular, 3,
                         NULL, hits);
        sum += n > 0 ? hits[0].distance : 0.0f;
    }

    mv_hnsw_scratch_free(s);
    return sum;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mv_snapshot_view_t  view;
    volatile float      sink;
    uint8_t            *buf;
    int                 pass;

    buf = aligned_alloc(64, mv_align_up(size + 1, 64));
    if (buf == NULL) {
        return 0;
    }

    for (pass = 0; pass < 2; pass++) {
        memcpy(buf, data, size);
        if (pass == 1) {
            if (size < MV_SNAPSHOT_HEADER_SIZE) {
                break;
            }
            fix_checksums(buf, size);
        }
        if (mv_snapshot_validate(buf, size, &view, NULL) == MV_OK) {
            sink = exercise(&view);
            (void) sink;
        }
    }

    free(buf);
    return 0;
}
