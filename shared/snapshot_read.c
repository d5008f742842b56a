/*
 * snapshot_read.c -- maps a snapshot and validates every byte it will trust
 * (see snapshot.h for the contract, snapshot_format.h for the layout).
 *
 * mv_snapshot_validate works in phases, each relying only on what the
 * previous ones proved, so nothing is ever read outside [buf, buf + len):
 *
 *   1. header:  length >= header, alignment, magic, endianness, version,
 *               header size, file size == len, header CRC, reserved bytes,
 *               dim, metric, counts, HNSW shape, stream positions;
 *   2. table:   exactly the 13 sections in type order, each 64-aligned right
 *               after the previous one, inside the file, zero padding, file
 *               size == end of the last one rounded up to 64;
 *   3. lengths: every fixed-size section has exactly its expected length
 *               (computed in uint64 from header fields already bounded, so
 *               nothing overflows), the variable ones their minimum;
 *   4. CRCs:    every section's CRC-32C;
 *   5. content: id tables, finite (and, for cosine, unit) vectors, item
 *               metadata, the HNSW graph (mv_hnsw_graph_validate plus the
 *               section's own link count and the deleted marks), the
 *               popularity lists.
 *
 * The popularity lists are checked without scratch memory: a list strictly
 * ordered by (popularity desc, index asc) has no duplicates, so a list of the
 * right length whose members all qualify is exactly the qualifying set.
 * Validation allocates nothing and costs O(file size).
 *
 * Every message is written to be read in a log line: the section number and
 * name, the index and the values that disagree.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "snapshot_format.h"


struct mv_snapshot {
    void                *map;
    size_t               len;
    uint64_t             dev;
    uint64_t             ino;
    mv_snapshot_view_t   view;
};

/* What the phases share. */
typedef struct snap_check {
    const uint8_t           *base;
    size_t                   len;
    const mv_snap_header_t  *h;
    mv_err_t                *err;
    uint32_t                 n_live;          /* non-deleted items */
    uint32_t                 n_categorized;   /* ... with a category */
} snap_check_t;


/* CRC-32C of a header with its crc field taken as zero. */
uint32_t
mv_snap_header_crc(const mv_snap_header_t *h)
{
    static const uint8_t  zero[4] = { 0, 0, 0, 0 };
    const uint8_t        *p = (const uint8_t *) h;
    size_t                at = offsetof(mv_snap_header_t, header_crc);
    uint32_t              crc;

    crc = mv_crc32c(0, p, at);
    crc = mv_crc32c(crc, zero, sizeof(zero));
    return mv_crc32c(crc, p + at + 4, MV_SNAPSHOT_HEADER_SIZE - at - 4);
}


/* Checks one item's metadata (see snapshot_format.h). */
int
mv_snap_meta_check(const mv_item_meta_t *m, uint32_t i,
    uint32_t n_categories, mv_err_t *err)
{
    if (m->category != MV_CATEGORY_NONE && m->category >= n_categories) {
        return mv_err_set(err, "item %u: category %u >= %u categories", i,
                          m->category, n_categories);
    }
    if ((m->flags & ~MV_ITEM_DELETED) != 0) {
        return mv_err_set(err, "item %u: unknown flags 0x%x", i, m->flags);
    }
    if (!isfinite(m->popularity) || !(m->popularity >= 0.0f)) {
        return mv_err_set(err, "item %u: popularity %g is not a finite "
                          "number >= 0", i, (double) m->popularity);
    }
    if (m->reserved != 0) {
        return mv_err_set(err, "item %u: reserved field is 0x%x, not 0", i,
                          m->reserved);
    }

    return MV_OK;
}


/* Expected (or, for variable sections, minimum) length of a section. */
uint64_t
mv_snap_section_min_length(const mv_snap_header_t *h, uint32_t type)
{
    uint64_t  dim = h->dim;

    switch (type) {
    case MV_SNAP_ITEM_IDS:
    case MV_SNAP_HNSW_UPPER:
        return 4 * ((uint64_t) h->n_items + 1);
    case MV_SNAP_ITEM_SLOTS:
        return 4 * (uint64_t) mv_idtable_capacity(h->n_items);
    case MV_SNAP_ITEM_VECTORS:
        return 4 * (uint64_t) h->n_items * dim;
    case MV_SNAP_ITEM_META:
        return sizeof(mv_item_meta_t) * (uint64_t) h->n_items;
    case MV_SNAP_CATEGORY_IDS:
        return 4 * ((uint64_t) h->n_categories + 1);
    case MV_SNAP_CATEGORY_SLOTS:
        return 4 * (uint64_t) mv_idtable_capacity(h->n_categories);
    case MV_SNAP_HNSW_LEVEL0:
        return (uint64_t) h->n_items * h->hnsw_level0_stride;
    case MV_SNAP_SQ8:
        return h->hnsw_code_stride != 0
               ? mv_align_up(8 * dim, MV_SNAP_ALIGN)
                 + (uint64_t) h->n_items * h->hnsw_code_stride
               : 0;
    case MV_SNAP_USER_IDS:
        return 4 * ((uint64_t) h->n_users + 1);
    case MV_SNAP_USER_SLOTS:
        return 4 * (uint64_t) mv_idtable_capacity(h->n_users);
    case MV_SNAP_USER_VECTORS:
        return 4 * (uint64_t) h->n_users * dim;
    case MV_SNAP_POPULAR:
        return 4 * ((uint64_t) h->n_categories + 1);
    default:
        return 0;
    }
}


static int
is_variable_section(uint32_t type)
{
    return type == MV_SNAP_ITEM_IDS || type == MV_SNAP_CATEGORY_IDS
           || type == MV_SNAP_USER_IDS || type == MV_SNAP_HNSW_UPPER
           || type == MV_SNAP_POPULAR;
}


static const uint8_t *
section_data(const snap_check_t *c, uint32_t type)
{
    return c->base + c->h->sections[type - 1].offset;
}


static uint64_t
section_length(const snap_check_t *c, uint32_t type)
{
    return c->h->sections[type - 1].length;
}


static int
all_zero(const uint8_t *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 0;
        }
    }

    return 1;
}


/* ---- phase 1: header ---------------------------------------------------- */

/* Checks stream positions (see snapshot_format.h). */
int
mv_snap_positions_check(const mv_stream_pos_t *positions, uint32_t n_used,
    uint32_t n_total, mv_err_t *err)
{
    const mv_stream_pos_t  *p;
    const char             *nul;
    size_t                  name_len;
    uint32_t                i;

    for (i = 0; i < n_total; i++) {
        p = &positions[i];
        if (i >= n_used) {
            if (!all_zero((const uint8_t *) p, sizeof(*p))) {
                return mv_err_set(err, "stream position %u is unused but "
                                  "not zero", i);
            }
            continue;
        }

        nul = memchr(p->stream, '\0', sizeof(p->stream));
        if (nul == NULL) {
            return mv_err_set(err, "stream position %u: name not "
                              "NUL-terminated", i);
        }
        name_len = (size_t) (nul - p->stream);
        if (name_len == 0) {
            return mv_err_set(err, "stream position %u: empty name", i);
        }
        if (!all_zero((const uint8_t *) nul, sizeof(p->stream) - name_len)) {
            return mv_err_set(err, "stream position %u: bytes after the "
                              "name not zero", i);
        }
        if (p->reserved != 0 || p->reserved2 != 0) {
            return mv_err_set(err, "stream position %u: reserved fields "
                              "not zero", i);
        }
    }

    return MV_OK;
}


static int
check_positions(const snap_check_t *c)
{
    return mv_snap_positions_check(c->h->positions, c->h->n_positions,
                                   MV_SNAPSHOT_MAX_POSITIONS, c->err);
}


static int
check_hnsw_shape(const snap_check_t *c)
{
    const mv_snap_header_t  *h = c->h;

    if (h->hnsw_m < 2 || h->hnsw_m > MV_HNSW_MAX_M) {
        return mv_err_set(c->err, "hnsw: M %u not in 2..%d", h->hnsw_m,
                          MV_HNSW_MAX_M);
    }
    if (h->hnsw_m0 != 2 * h->hnsw_m) {
        return mv_err_set(c->err, "hnsw: M0 %u != 2 * M (%u)", h->hnsw_m0,
                          2 * h->hnsw_m);
    }
    if (h->hnsw_code_stride != 0
        && h->hnsw_code_stride != mv_hnsw_code_stride(h->dim))
    {
        return mv_err_set(c->err, "hnsw: code stride %u != expected %zu",
                          h->hnsw_code_stride, mv_hnsw_code_stride(h->dim));
    }
    if (h->hnsw_level0_stride != mv_hnsw_level0_stride(h->hnsw_m0)) {
        return mv_err_set(c->err, "hnsw: level-0 stride %u != expected %zu",
                          h->hnsw_level0_stride,
                          mv_hnsw_level0_stride(h->hnsw_m0));
    }
    if (h->hnsw_max_level > MV_HNSW_MAX_LEVEL) {
        return mv_err_set(c->err, "hnsw: max level %u > %d",
                          h->hnsw_max_level, MV_HNSW_MAX_LEVEL);
    }
    if (h->n_items == 0) {
        if (h->hnsw_max_level != 0 || h->hnsw_entry != 0) {
            return mv_err_set(c->err, "hnsw: empty graph with max level %u, "
                              "entry %u", h->hnsw_max_level, h->hnsw_entry);
        }
    } else if (h->hnsw_entry >= h->n_items) {
        return mv_err_set(c->err, "hnsw: entry %u out of range (n=%u)",
                          h->hnsw_entry, h->n_items);
    }

    return MV_OK;
}


static int
check_header(snap_check_t *c)
{
    const mv_snap_header_t  *h;
    uint32_t                 crc;

    if (c->len < MV_SNAPSHOT_HEADER_SIZE) {
        return mv_err_set(c->err, "truncated: %zu bytes < header %d",
                          c->len, MV_SNAPSHOT_HEADER_SIZE);
    }
    if (((uintptr_t) c->base % MV_SNAP_ALIGN) != 0) {
        return mv_err_set(c->err, "buffer not %d-byte aligned",
                          MV_SNAP_ALIGN);
    }

    h = (const mv_snap_header_t *) (const void *) c->base;
    c->h = h;

    if (memcmp(h->magic, MV_SNAP_MAGIC, MV_SNAP_MAGIC_LEN) != 0) {
        return mv_err_set(c->err, "bad magic");
    }
    if (h->endian_mark != MV_SNAP_ENDIAN_MARK) {
        if (h->endian_mark == 0x04030201u) {
            return mv_err_set(c->err, "endianness mark 0x04030201: file is "
                              "big-endian, this reader is little-endian");
        }
        return mv_err_set(c->err, "bad endianness mark 0x%08x",
                          h->endian_mark);
    }
    if (h->version != MV_SNAPSHOT_VERSION) {
        return mv_err_set(c->err, "unsupported format version %u",
                          h->version);
    }
    if (h->header_size != MV_SNAPSHOT_HEADER_SIZE) {
        return mv_err_set(c->err, "header size %u != %d", h->header_size,
                          MV_SNAPSHOT_HEADER_SIZE);
    }
    if (h->file_size != (uint64_t) c->len) {
        return mv_err_set(c->err, "%sfile size %zu != header file size %llu",
                          (uint64_t) c->len < h->file_size ? "truncated: "
                                                           : "",
                          c->len, (unsigned long long) h->file_size);
    }

    crc = mv_snap_header_crc(h);
    if (crc != h->header_crc) {
        return mv_err_set(c->err, "header checksum mismatch (stored 0x%08x, "
                          "computed 0x%08x)", h->header_crc, crc);
    }

    if (h->flags != 0) {
        return mv_err_set(c->err, "unknown header flags 0x%x", h->flags);
    }
    if (!all_zero(h->reserved1, sizeof(h->reserved1))) {
        return mv_err_set(c->err, "header reserved bytes not zero");
    }
    if (h->dim == 0 || h->dim > MV_SNAP_MAX_DIM) {
        return mv_err_set(c->err, "dim %u not in 1..%d", h->dim,
                          MV_SNAP_MAX_DIM);
    }
    if (!mv_metric_valid((int) h->metric)) {
        return mv_err_set(c->err, "unknown metric %u", h->metric);
    }
    if (h->n_items > MV_SNAP_MAX_COUNT || h->n_users > MV_SNAP_MAX_COUNT
        || h->n_categories > MV_SNAP_MAX_COUNT)
    {
        return mv_err_set(c->err, "counts too large (items %u, users %u, "
                          "categories %u; at most %u each)", h->n_items,
                          h->n_users, h->n_categories, MV_SNAP_MAX_COUNT);
    }
    if (h->n_positions > MV_SNAPSHOT_MAX_POSITIONS) {
        return mv_err_set(c->err, "n_positions %u > %d", h->n_positions,
                          MV_SNAPSHOT_MAX_POSITIONS);
    }

    if (check_hnsw_shape(c) != MV_OK || check_positions(c) != MV_OK) {
        return MV_ERR;
    }

    return MV_OK;
}


/* ---- phases 2 to 4: section table, lengths, checksums ---------------- */

static int
check_table(const snap_check_t *c)
{
    const mv_snap_header_t   *h = c->h;
    const mv_snap_section_t  *s;
    uint64_t                  expected = MV_SNAPSHOT_HEADER_SIZE, end;
    uint32_t                  i, type;

    if (h->n_sections != MV_SNAP_SECTION_COUNT) {
        return mv_err_set(c->err, "section count %u != %d", h->n_sections,
                          MV_SNAP_SECTION_COUNT);
    }

    for (i = 0; i < MV_SNAP_MAX_SECTIONS; i++) {
        s = &h->sections[i];
        type = i + 1;

        if (i >= MV_SNAP_SECTION_COUNT) {
            if (!all_zero((const uint8_t *) s, sizeof(*s))) {
                return mv_err_set(c->err, "section table entry %u is unused "
                                  "but not zero", i);
            }
            continue;
        }

        if (s->type != type) {
            return mv_err_set(c->err, "section %u: type %u != expected %u "
                              "(%s)", type, s->type, type,
                              mv_snap_section_name(type));
        }
        if (s->flags != 0 || s->reserved != 0) {
            return mv_err_set(c->err, "section %u (%s) has unknown flags "
                              "0x%x", type, mv_snap_section_name(type),
                              s->flags | s->reserved);
        }
        if (s->offset % MV_SNAP_ALIGN != 0) {
            return mv_err_set(c->err, "section %u (%s) offset %llu not "
                              "%d-byte aligned", type,
                              mv_snap_section_name(type),
                              (unsigned long long) s->offset, MV_SNAP_ALIGN);
        }
        if (s->offset < expected) {
            return mv_err_set(c->err, "section %u (%s) offset %llu overlaps "
                              "the %s (ends at %llu)", type,
                              mv_snap_section_name(type),
                              (unsigned long long) s->offset,
                              i == 0 ? "header" : "previous section",
                              (unsigned long long) expected);
        }
        if (s->offset != expected) {
            return mv_err_set(c->err, "section %u (%s) offset %llu != "
                              "expected %llu (gap)", type,
                              mv_snap_section_name(type),
                              (unsigned long long) s->offset,
                              (unsigned long long) expected);
        }
        if (s->offset > h->file_size
            || s->length > h->file_size - s->offset)
        {
            return mv_err_set(c->err, "section %u (%s) [%llu, +%llu) extends "
                              "past the end of the file (%llu)", type,
                              mv_snap_section_name(type),
                              (unsigned long long) s->offset,
                              (unsigned long long) s->length,
                              (unsigned long long) h->file_size);
        }

        end = s->offset + s->length;
        expected = mv_align_up(end, MV_SNAP_ALIGN);
        if (expected > h->file_size) {
            return mv_err_set(c->err, "section %u (%s) padding extends past "
                              "the end of the file", type,
                              mv_snap_section_name(type));
        }
        if (!all_zero(c->base + end, expected - end)) {
            return mv_err_set(c->err, "section %u (%s) padding not zero",
                              type, mv_snap_section_name(type));
        }
    }

    if (expected != h->file_size) {
        return mv_err_set(c->err, "file size %llu != end of sections %llu",
                          (unsigned long long) h->file_size,
                          (unsigned long long) expected);
    }

    return MV_OK;
}


static int
check_lengths(const snap_check_t *c)
{
    uint64_t  length, want;
    uint32_t  type;

    for (type = 1; type <= MV_SNAP_SECTION_COUNT; type++) {
        length = section_length(c, type);
        want = mv_snap_section_min_length(c->h, type);

        if (!is_variable_section(type)) {
            if (length != want) {
                return mv_err_set(c->err, "section %u (%s) length %llu != "
                                  "expected %llu", type,
                                  mv_snap_section_name(type),
                                  (unsigned long long) length,
                                  (unsigned long long) want);
            }
            continue;
        }

        if (length < want) {
            return mv_err_set(c->err, "section %u (%s) length %llu < "
                              "minimum %llu", type,
                              mv_snap_section_name(type),
                              (unsigned long long) length,
                              (unsigned long long) want);
        }
        if (type != MV_SNAP_ITEM_IDS && type != MV_SNAP_CATEGORY_IDS
            && type != MV_SNAP_USER_IDS && length % 4 != 0)
        {
            return mv_err_set(c->err, "section %u (%s) length %llu not a "
                              "multiple of 4", type,
                              mv_snap_section_name(type),
                              (unsigned long long) length);
        }
    }

    return MV_OK;
}


static int
check_checksums(const snap_check_t *c)
{
    const mv_snap_section_t  *s;
    uint32_t                  type, crc;

    for (type = 1; type <= MV_SNAP_SECTION_COUNT; type++) {
        s = &c->h->sections[type - 1];
        crc = mv_crc32c(0, c->base + s->offset, (size_t) s->length);
        if (crc != s->crc32c) {
            return mv_err_set(c->err, "section %u (%s) checksum mismatch",
                              type, mv_snap_section_name(type));
        }
    }

    return MV_OK;
}


/* ---- phase 5: contents -------------------------------------------------- */

static int
check_idtable(const snap_check_t *c, uint32_t ids_type, uint32_t n,
    uint64_t seed, const char *what, mv_idtable_t *t)
{
    const uint8_t  *ids = section_data(c, ids_type);
    uint64_t        bytes_len;
    mv_err_t        why;

    bytes_len = section_length(c, ids_type) - 4 * ((uint64_t) n + 1);

    t->n = n;
    t->seed = seed;
    t->cap = (uint32_t) (section_length(c, ids_type + 1) / 4);
    t->offsets = (const uint32_t *) (const void *) ids;
    t->bytes = (const char *) ids + 4 * ((size_t) n + 1);
    t->slots = (const uint32_t *) (const void *) section_data(c,
                                                              ids_type + 1);

    if (t->offsets[n] != bytes_len) {
        return mv_err_set(c->err, "section %u (%s): ids end at %u but the "
                          "section holds %llu id bytes", ids_type,
                          mv_snap_section_name(ids_type), t->offsets[n],
                          (unsigned long long) bytes_len);
    }

    why.msg[0] = '\0';
    if (mv_idtable_validate(t, (size_t) bytes_len, &why) != MV_OK) {
        return mv_err_set(c->err, "%s: %s", what, why.msg);
    }

    return MV_OK;
}


static int
check_vectors(const snap_check_t *c, const float *v, uint32_t n,
    int unit_norm, const char *what)
{
    uint32_t  i, j, dim = c->h->dim;
    double    norm2;
    float     x;

    for (i = 0; i < n; i++) {
        norm2 = 0.0;
        for (j = 0; j < dim; j++) {
            x = v[(size_t) i * dim + j];
            if (!isfinite(x)) {
                return mv_err_set(c->err, "%s %u: vector value %u is not "
                                  "finite", what, i, j);
            }
            norm2 += (double) x * x;
        }
        if (unit_norm && fabs(sqrt(norm2) - 1.0) > 1e-3) {
            return mv_err_set(c->err, "%s %u: vector norm %g is not 1 "
                              "(cosine metric)", what, i, sqrt(norm2));
        }
    }

    return MV_OK;
}


static int
check_meta(snap_check_t *c, const mv_item_meta_t *meta)
{
    uint32_t  i;

    c->n_live = 0;
    c->n_categorized = 0;

    for (i = 0; i < c->h->n_items; i++) {
        if (mv_snap_meta_check(&meta[i], i, c->h->n_categories, c->err)
            != MV_OK)
        {
            return MV_ERR;
        }
        if ((meta[i].flags & MV_ITEM_DELETED) == 0) {
            c->n_live++;
            if (meta[i].category != MV_CATEGORY_NONE) {
                c->n_categorized++;
            }
        }
    }

    return MV_OK;
}


static int
check_graph(const snap_check_t *c, mv_snapshot_view_t *v)
{
    const mv_snap_header_t  *h = c->h;
    mv_hnsw_graph_t         *g = &v->graph;
    const uint8_t           *upper = section_data(c, MV_SNAP_HNSW_UPPER);
    uint64_t                 n_links;
    uint32_t                 i;
    int                      marked, flagged;

    n_links = section_length(c, MV_SNAP_HNSW_UPPER) / 4
              - ((uint64_t) h->n_items + 1);

    memset(g, 0, sizeof(*g));
    g->n = h->n_items;
    g->dim = h->dim;
    g->metric = (mv_metric_t) h->metric;
    g->M = h->hnsw_m;
    g->M0 = h->hnsw_m0;
    g->max_level = h->hnsw_max_level;
    g->entry = h->hnsw_entry;
    g->level0 = section_data(c, MV_SNAP_HNSW_LEVEL0);
    g->level0_stride = h->hnsw_level0_stride;
    g->code_stride = h->hnsw_code_stride;
    g->upper_offsets = (const uint32_t *) (const void *) upper;
    g->upper_links = g->upper_offsets + (size_t) h->n_items + 1;
    g->vectors = v->item_vectors;
    if (h->hnsw_code_stride != 0) {
        g->sq_min = (const float *) (const void *) section_data(c,
                                                                MV_SNAP_SQ8);
        g->sq_scale = g->sq_min + h->dim;
        g->codes = section_data(c, MV_SNAP_SQ8)
                   + mv_align_up(8 * (size_t) h->dim, MV_SNAP_ALIGN);
    }

    if (g->upper_offsets[h->n_items] != n_links) {
        return mv_err_set(c->err, "section %u (%s) holds %llu links but the "
                          "offsets end at %u", MV_SNAP_HNSW_UPPER,
                          mv_snap_section_name(MV_SNAP_HNSW_UPPER),
                          (unsigned long long) n_links,
                          g->upper_offsets[h->n_items]);
    }

    if (mv_hnsw_graph_validate(g, c->err) != MV_OK) {
        return MV_ERR;
    }

    for (i = 0; i < g->n; i++) {
        marked = mv_hnsw_is_deleted(g, i);
        flagged = (v->item_meta[i].flags & MV_ITEM_DELETED) != 0;
        if (marked != flagged) {
            return mv_err_set(c->err, "item %u: graph deleted mark %d != "
                              "meta deleted flag %d", i, marked, flagged);
        }
    }

    return MV_OK;
}


/* Checks one popularity list: members qualify and are strictly ordered. */
static int
check_popular_list(const snap_check_t *c, const mv_item_meta_t *meta,
    const uint32_t *list, uint32_t len, uint32_t category, const char *what)
{
    uint32_t  i, item;

    for (i = 0; i < len; i++) {
        item = list[i];
        if (item >= c->h->n_items) {
            return mv_err_set(c->err, "%s[%u]: item %u out of range (n=%u)",
                              what, i, item, c->h->n_items);
        }
        if (meta[item].flags & MV_ITEM_DELETED) {
            return mv_err_set(c->err, "%s[%u]: item %u is deleted", what, i,
                              item);
        }
        if (category != MV_CATEGORY_NONE && meta[item].category != category) {
            return mv_err_set(c->err, "%s[%u]: item %u has category %u, not "
                              "%u", what, i, item, meta[item].category,
                              category);
        }
        if (i > 0 && !mv_snap_popular_before(meta, list[i - 1], item)) {
            return mv_err_set(c->err, "%s[%u]: item %u out of order after "
                              "item %u", what, i, item, list[i - 1]);
        }
    }

    return MV_OK;
}


static int
check_popular(const snap_check_t *c, mv_snapshot_view_t *v)
{
    const uint32_t  *p;
    uint64_t         want;
    uint32_t         cat, lo, hi, n_cat = c->h->n_categories;
    char             what[48];

    want = 4 * ((uint64_t) c->n_live + n_cat + 1 + c->n_categorized);
    if (section_length(c, MV_SNAP_POPULAR) != want) {
        return mv_err_set(c->err, "section %u (%s) length %llu != expected "
                          "%llu", MV_SNAP_POPULAR,
                          mv_snap_section_name(MV_SNAP_POPULAR),
                          (unsigned long long) section_length(c,
                                                          MV_SNAP_POPULAR),
                          (unsigned long long) want);
    }

    p = (const uint32_t *) (const void *) section_data(c, MV_SNAP_POPULAR);
    v->n_popular = c->n_live;
    v->popular = p;
    v->cat_popular_offsets = p + c->n_live;
    v->cat_popular = v->cat_popular_offsets + n_cat + 1;

    if (check_popular_list(c, v->item_meta, v->popular, c->n_live,
                           MV_CATEGORY_NONE, "popular") != MV_OK)
    {
        return MV_ERR;
    }

    if (v->cat_popular_offsets[0] != 0
        || v->cat_popular_offsets[n_cat] != c->n_categorized)
    {
        return mv_err_set(c->err, "category popular offsets span %u..%u, "
                          "expected 0..%u", v->cat_popular_offsets[0],
                          v->cat_popular_offsets[n_cat], c->n_categorized);
    }

    for (cat = 0; cat < n_cat; cat++) {
        lo = v->cat_popular_offsets[cat];
        hi = v->cat_popular_offsets[cat + 1];
        if (hi < lo || hi > c->n_categorized) {
            return mv_err_set(c->err, "category %u popular offsets %u..%u "
                              "invalid", cat, lo, hi);
        }
        snprintf(what, sizeof(what), "category %u popular", cat);
        if (check_popular_list(c, v->item_meta, v->cat_popular + lo, hi - lo,
                               cat, what) != MV_OK)
        {
            return MV_ERR;
        }
    }

    return MV_OK;
}


static int
check_contents(snap_check_t *c, mv_snapshot_view_t *v)
{
    const mv_snap_header_t  *h = c->h;

    v->version = h->version;
    v->generation = h->generation;
    v->created_at_ms = h->created_at_ms;
    v->dim = h->dim;
    v->metric = (mv_metric_t) h->metric;
    v->n_items = h->n_items;
    v->n_categories = h->n_categories;
    v->n_users = h->n_users;
    v->n_positions = h->n_positions;
    v->positions = h->positions;
    v->file_size = c->len;

    v->item_vectors = (const float *) (const void *) section_data(c,
                                                     MV_SNAP_ITEM_VECTORS);
    v->item_meta = (const mv_item_meta_t *) (const void *) section_data(c,
                                                     MV_SNAP_ITEM_META);
    v->user_vectors = (const float *) (const void *) section_data(c,
                                                     MV_SNAP_USER_VECTORS);

    if (check_idtable(c, MV_SNAP_ITEM_IDS, h->n_items, h->id_seeds[0],
                      "item ids", &v->items) != MV_OK
        || check_vectors(c, v->item_vectors, h->n_items,
                         h->metric == MV_METRIC_COSINE, "item") != MV_OK
        || check_meta(c, v->item_meta) != MV_OK
        || check_idtable(c, MV_SNAP_CATEGORY_IDS, h->n_categories,
                         h->id_seeds[1], "category ids", &v->categories)
            != MV_OK
        || check_graph(c, v) != MV_OK
        || check_idtable(c, MV_SNAP_USER_IDS, h->n_users, h->id_seeds[2],
                         "user ids", &v->users) != MV_OK
        || check_vectors(c, v->user_vectors, h->n_users, 0, "user")
            != MV_OK
        || check_popular(c, v) != MV_OK)
    {
        return MV_ERR;
    }

    return MV_OK;
}


/*
 * Validates len bytes at buf as a snapshot and fills view (see snapshot.h
 * and the top of this file).  view is written only on success.
 */
int
mv_snapshot_validate(const void *buf, size_t len, mv_snapshot_view_t *view,
    mv_err_t *err)
{
    snap_check_t        c;
    mv_snapshot_view_t  v;

    memset(&c, 0, sizeof(c));
    memset(&v, 0, sizeof(v));
    c.base = buf;
    c.len = len;
    c.err = err;

    if (buf == NULL) {
        return mv_err_set(err, "no snapshot bytes");
    }

    if (check_header(&c) != MV_OK
        || check_table(&c) != MV_OK
        || check_lengths(&c) != MV_OK
        || check_checksums(&c) != MV_OK
        || check_contents(&c, &v) != MV_OK)
    {
        return MV_ERR;
    }

    *view = v;
    return MV_OK;
}


/* ---- the mapped file ---------------------------------------------------- */

/*
 * Opens path (following symlinks), maps it read-only and validates it.
 * Returns NULL with err set when the file cannot be used.
 */
mv_snapshot_t *
mv_snapshot_open(const char *path, mv_err_t *err)
{
    mv_snapshot_t  *s;
    struct stat     st;
    void           *map;
    size_t          len;
    int             fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mv_err_set(err, "open(%s): %s", path, strerror(errno));
        return NULL;
    }

    if (fstat(fd, &st) != 0) {
        mv_err_set(err, "fstat(%s): %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        mv_err_set(err, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t) st.st_size < MV_SNAPSHOT_HEADER_SIZE) {
        mv_err_set(err, "%s: truncated: %lld bytes < header %d", path,
                   (long long) st.st_size, MV_SNAPSHOT_HEADER_SIZE);
        close(fd);
        return NULL;
    }
    if ((uint64_t) st.st_size > SIZE_MAX) {
        mv_err_set(err, "%s: too large to map", path);
        close(fd);
        return NULL;
    }
    len = (size_t) st.st_size;

    map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        mv_err_set(err, "mmap(%s): %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    close(fd);

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        mv_err_set(err, "out of memory");
        munmap(map, len);
        return NULL;
    }
    s->map = map;
    s->len = len;
    s->dev = (uint64_t) st.st_dev;
    s->ino = (uint64_t) st.st_ino;

    if (mv_snapshot_validate(map, len, &s->view, err) != MV_OK) {
        mv_snapshot_close(s);
        return NULL;
    }

    return s;
}


/* The validated view of an open snapshot (valid until mv_snapshot_close). */
const mv_snapshot_view_t *
mv_snapshot_view(const mv_snapshot_t *s)
{
    return &s->view;
}


/* Identity of the mapped file (st_dev, st_ino). */
void
mv_snapshot_file_id(const mv_snapshot_t *s, uint64_t *dev, uint64_t *ino)
{
    *dev = s->dev;
    *ino = s->ino;
}


/*
 * The identity of the file open as fd (see snapshot_format.h): fstat and
 * one pread of the header's start on the same descriptor, so every field
 * is of one file even while `current` is being swapped.
 */
int
mv_snapshot_identity_fd(int fd, const char *path, mv_snapshot_identity_t *id,
    mv_err_t *err)
{
    uint8_t      head[offsetof(mv_snap_header_t, generation)
                      + sizeof(uint64_t)];
    uint32_t     crc;
    uint64_t     gen;
    ssize_t      n;
    struct stat  st;

    memset(id, 0, sizeof(*id));

    if (fstat(fd, &st) != 0) {
        return mv_err_set(err, "fstat(%s): %s", path, strerror(errno));
    }

    id->dev = (uint64_t) st.st_dev;
    id->ino = (uint64_t) st.st_ino;
    id->size = (uint64_t) st.st_size;

    do {
        n = pread(fd, head, sizeof(head), 0);
    } while (n < 0 && errno == EINTR);

    if (n < 0) {
        return mv_err_set(err, "read(%s): %s", path, strerror(errno));
    }

    if ((size_t) n == sizeof(head)) {
        /* little-endian fields at fixed offsets (snapshot_format.h) */
        memcpy(&crc, head + offsetof(mv_snap_header_t, header_crc),
               sizeof(crc));
        memcpy(&gen, head + offsetof(mv_snap_header_t, generation),
               sizeof(gen));
        id->header_crc = crc;
        id->generation = gen;
        id->has_header = 1;
    }

    return MV_OK;
}


/* The identity of the file path names (see snapshot.h). */
int
mv_snapshot_identity(const char *path, mv_snapshot_identity_t *id,
    mv_err_t *err)
{
    int  fd, rc;

    memset(id, 0, sizeof(*id));

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return mv_err_set(err, "open(%s): %s", path, strerror(errno));
    }
    rc = mv_snapshot_identity_fd(fd, path, id, err);
    close(fd);
    return rc;
}


int
mv_snapshot_identity_equal(const mv_snapshot_identity_t *a,
    const mv_snapshot_identity_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size
           && a->generation == b->generation
           && a->header_crc == b->header_crc
           && a->has_header == b->has_header;
}


/* Unmaps and frees.  s may be NULL. */
void
mv_snapshot_close(mv_snapshot_t *s)
{
    if (s == NULL) {
        return;
    }

    munmap(s->map, s->len);
    free(s);
}
