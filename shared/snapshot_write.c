/*
 * snapshot_write.c -- writes a snapshot file (see snapshot.h for the
 * contract, snapshot_format.h for the layout).
 *
 * The writer refuses input the reader would refuse, so a published file is
 * always loadable: it checks the ids (while building the id tables), the
 * metadata, the graph (mv_hnsw_graph_validate, shape and deleted marks
 * against the metadata) and every vector (finite; for cosine, normalised
 * here when not unit norm already, so vectors that already are keep their
 * exact bits).
 *
 * Output streams through one buffer: a zero placeholder for the header, then
 * the sections in type order, each CRC'd as it passes and padded with zeros
 * to 64 bytes; the header is written last, at offset 0, once the section
 * table and the file size are known.  The file is a temp file beside the
 * target ("<path>.tmp-<pid>-<random>", created O_EXCL), fsync'd, closed and
 * renamed over the target, then the directory is fsync'd.  Any failure on
 * the way removes the temp file.
 *
 * Publishing into a directory of generations is in snapshot_publish.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "files.h"
#include "snapshot_format.h"


#define SNAP_BUF_SIZE      (1u << 20)

/* The output stream: buffered, tracking the position and the running CRC
   of the section being written. */
typedef struct snap_out {
    int                fd;
    const char        *path;       /* for messages */
    uint8_t           *buf;
    size_t             used;
    uint64_t           flushed;    /* bytes already in the file */
    uint32_t           crc;
    mv_snap_header_t  *h;
    uint32_t           type;       /* section being written */
    mv_err_t          *err;
} snap_out_t;

/* An id table built in memory. */
typedef struct snap_ids {
    uint32_t  *offsets;
    char      *bytes;
    uint32_t  *slots;
    size_t     bytes_len;
    uint32_t   cap;
    uint64_t   seed;
} snap_ids_t;




/* Writes all n bytes at offset, retrying short writes and EINTR. */
static int
pwrite_all(int fd, const void *data, size_t n, uint64_t offset,
    const char *path, mv_err_t *err)
{
    const uint8_t  *p = data;
    ssize_t         w;

    while (n > 0) {
        w = pwrite(fd, p, n, (off_t) offset);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return mv_err_set(err, "write(%s): %s", path, strerror(errno));
        }
        if (w == 0) {
            return mv_err_set(err, "write(%s): no progress", path);
        }
        p += w;
        n -= (size_t) w;
        offset += (uint64_t) w;
    }

    return MV_OK;
}


static int
out_flush(snap_out_t *o)
{
    if (o->used == 0) {
        return MV_OK;
    }
    if (pwrite_all(o->fd, o->buf, o->used, o->flushed, o->path, o->err)
        != MV_OK)
    {
        return MV_ERR;
    }
    o->flushed += o->used;
    o->used = 0;
    return MV_OK;
}


static uint64_t
out_pos(const snap_out_t *o)
{
    return o->flushed + o->used;
}


/* Appends n bytes (CRC'd into the current section). */
static int
out_write(snap_out_t *o, const void *data, size_t n)
{
    const uint8_t  *p = data;
    size_t          chunk;

    if (n == 0) {
        return MV_OK;           /* data may be NULL then */
    }

    o->crc = mv_crc32c(o->crc, data, n);

    while (n > 0) {
        if (o->used == SNAP_BUF_SIZE && out_flush(o) != MV_OK) {
            return MV_ERR;
        }
        chunk = SNAP_BUF_SIZE - o->used;
        if (chunk > n) {
            chunk = n;
        }
        memcpy(o->buf + o->used, p, chunk);
        o->used += chunk;
        p += chunk;
        n -= chunk;
    }

    return MV_OK;
}


/* Appends zeros up to the next 64-byte boundary (outside any CRC). */
static int
out_pad(snap_out_t *o)
{
    static const uint8_t  zeros[MV_SNAP_ALIGN];
    uint64_t              pos = out_pos(o);
    size_t                pad = (size_t) (mv_align_up(pos, MV_SNAP_ALIGN)
                                          - pos);
    uint32_t              crc = o->crc;
    int                   rc;

    rc = out_write(o, zeros, pad);
    o->crc = crc;
    return rc;
}


static void
section_begin(snap_out_t *o, uint32_t type)
{
    mv_snap_section_t  *s = &o->h->sections[type - 1];

    o->type = type;
    o->crc = 0;
    s->type = type;
    s->offset = out_pos(o);
}


static int
section_end(snap_out_t *o)
{
    mv_snap_section_t  *s = &o->h->sections[o->type - 1];

    s->length = out_pos(o) - s->offset;
    s->crc32c = o->crc;
    return out_pad(o);
}


/* ---- input checks and derived data -------------------------------------- */

static void
ids_free(snap_ids_t *t)
{
    free(t->offsets);
    free(t->bytes);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}


/*
 * Builds the table of n ids with a fresh random seed, and checks it the way
 * the reader will (which also bounds its probe lengths).
 */
static int
ids_build(snap_ids_t *t, const char *const *ids, uint32_t n,
    const char *what, mv_err_t *err)
{
    mv_idtable_t  view;
    mv_err_t      why;
    size_t        i;

    memset(t, 0, sizeof(*t));
    t->seed = mv_random_u64();

    if (n > 0 && ids == NULL) {
        return mv_err_set(err, "%s: missing", what);
    }

    t->cap = mv_idtable_capacity(n);
    for (i = 0; i < n; i++) {
        t->bytes_len += ids[i] == NULL ? 0 : strnlen(ids[i], MV_ID_MAX + 1);
    }

    t->offsets = malloc(((size_t) n + 1) * sizeof(uint32_t));
    t->bytes = malloc(t->bytes_len + 1);
    t->slots = malloc((size_t) t->cap * sizeof(uint32_t));
    if (t->offsets == NULL || t->bytes == NULL || t->slots == NULL) {
        ids_free(t);
        return mv_err_set(err, "%s: out of memory", what);
    }

    why.msg[0] = '\0';
    if (mv_idtable_build_seeded(ids, n, t->seed, t->offsets, t->bytes,
                                t->slots, &why) != MV_OK)
    {
        ids_free(t);
        return mv_err_set(err, "%s: %s", what, why.msg);
    }

    view.n = n;
    view.cap = t->cap;
    view.offsets = t->offsets;
    view.bytes = t->bytes;
    view.slots = t->slots;
    view.seed = t->seed;
    if (mv_idtable_validate(&view, t->bytes_len, &why) != MV_OK) {
        ids_free(t);
        return mv_err_set(err, "%s: %s", what, why.msg);
    }

    return MV_OK;
}


static int
check_input(const mv_snapshot_input_t *in, const mv_hnsw_graph_t *g,
    mv_err_t *err)
{
    const mv_stream_pos_t  *p;
    uint32_t                i;
    int                     marked, flagged;
    size_t                  len;

    if (in->dim == 0 || in->dim > MV_SNAP_MAX_DIM) {
        return mv_err_set(err, "dim %u not in 1..%d", in->dim,
                          MV_SNAP_MAX_DIM);
    }
    if (!mv_metric_valid(in->metric)) {
        return mv_err_set(err, "unknown metric %d", (int) in->metric);
    }
    if (in->n_items > MV_SNAP_MAX_COUNT || in->n_users > MV_SNAP_MAX_COUNT
        || in->n_categories > MV_SNAP_MAX_COUNT)
    {
        return mv_err_set(err, "counts too large (at most %u each)",
                          MV_SNAP_MAX_COUNT);
    }
    if (in->n_positions > 0 && in->positions == NULL) {
        return mv_err_set(err, "stream positions missing");
    }
    if ((in->n_items > 0 && (in->item_vectors == NULL
                             || in->item_meta == NULL))
        || (in->n_users > 0 && in->user_vectors == NULL))
    {
        return mv_err_set(err, "vectors or metadata missing");
    }

    if (in->n_positions > MV_SNAPSHOT_MAX_POSITIONS) {
        return mv_err_set(err, "n_positions %u > %d", in->n_positions,
                          MV_SNAPSHOT_MAX_POSITIONS);
    }
    for (i = 0; i < in->n_positions; i++) {
        p = &in->positions[i];
        len = strnlen(p->stream, sizeof(p->stream));
        if (len == 0 || len == sizeof(p->stream)) {
            return mv_err_set(err, "stream position %u: name empty or not "
                              "NUL-terminated", i);
        }
    }

    if (g->n != in->n_items || g->dim != in->dim
        || g->metric != in->metric)
    {
        return mv_err_set(err, "graph (n %u, dim %u, metric %d) does not "
                          "match the items (n %u, dim %u, metric %d)", g->n,
                          g->dim, (int) g->metric, in->n_items, in->dim,
                          (int) in->metric);
    }
    if (g->level0_stride > UINT32_MAX || g->code_stride > UINT32_MAX) {
        return mv_err_set(err, "graph: record too large");
    }
    if (mv_hnsw_graph_validate(g, err) != MV_OK) {
        return MV_ERR;
    }

    for (i = 0; i < in->n_items; i++) {
        if (mv_snap_meta_check(&in->item_meta[i], i, in->n_categories, err)
            != MV_OK)
        {
            return MV_ERR;
        }
        marked = mv_hnsw_is_deleted(g, i);
        flagged = (in->item_meta[i].flags & MV_ITEM_DELETED) != 0;
        if (marked != flagged) {
            return mv_err_set(err, "item %u: graph deleted mark %d != meta "
                              "deleted flag %d", i, marked, flagged);
        }
    }

    return MV_OK;
}


typedef struct pop_entry {
    float     popularity;
    uint32_t  item;
} pop_entry_t;


static int
pop_cmp(const void *a, const void *b)
{
    const pop_entry_t  *x = a, *y = b;

    if (x->popularity != y->popularity) {
        return x->popularity > y->popularity ? -1 : 1;
    }
    return x->item < y->item ? -1 : (x->item > y->item);
}


/*
 * Builds the popular section's payload: the global list, the per-category
 * offsets, the per-category lists (a stable bucket pass over the sorted
 * global list keeps each category sorted).  *out is malloc'd.
 */
static int
build_popular(const mv_snapshot_input_t *in, uint32_t **out, size_t *count,
    mv_err_t *err)
{
    const mv_item_meta_t  *meta = in->item_meta;
    pop_entry_t           *tmp;
    uint32_t              *p, *global, *offsets, *lists, *fill;
    uint32_t               i, n_live = 0, n_cat = in->n_categories, cat;
    uint64_t               n_categorized = 0;

    for (i = 0; i < in->n_items; i++) {
        if ((meta[i].flags & MV_ITEM_DELETED) == 0) {
            n_live++;
            n_categorized += meta[i].category != MV_CATEGORY_NONE;
        }
    }

    *count = (size_t) n_live + n_cat + 1 + (size_t) n_categorized;
    p = calloc(*count, sizeof(uint32_t));
    tmp = malloc(((size_t) n_live + 1) * sizeof(*tmp));
    fill = calloc((size_t) n_cat + 1, sizeof(uint32_t));
    if (p == NULL || tmp == NULL || fill == NULL) {
        free(p);
        free(tmp);
        free(fill);
        return mv_err_set(err, "popular lists: out of memory");
    }

    n_live = 0;
    for (i = 0; i < in->n_items; i++) {
        if ((meta[i].flags & MV_ITEM_DELETED) == 0) {
            tmp[n_live].popularity = meta[i].popularity;
            tmp[n_live].item = i;
            n_live++;
        }
    }
    qsort(tmp, n_live, sizeof(*tmp), pop_cmp);

    global = p;
    offsets = p + n_live;
    lists = offsets + n_cat + 1;

    for (i = 0; i < n_live; i++) {
        global[i] = tmp[i].item;
        cat = meta[tmp[i].item].category;
        if (cat != MV_CATEGORY_NONE) {
            offsets[cat + 1]++;
        }
    }
    for (cat = 0; cat < n_cat; cat++) {
        offsets[cat + 1] += offsets[cat];
        fill[cat] = offsets[cat];
    }
    for (i = 0; i < n_live; i++) {
        cat = meta[global[i]].category;
        if (cat != MV_CATEGORY_NONE) {
            lists[fill[cat]++] = global[i];
        }
    }

    free(tmp);
    free(fill);
    *out = p;
    return MV_OK;
}


/* ---- sections ----------------------------------------------------------- */

static int
write_ids(snap_out_t *o, uint32_t type, const snap_ids_t *t, uint32_t n)
{
    section_begin(o, type);
    if (out_write(o, t->offsets, ((size_t) n + 1) * sizeof(uint32_t))
            != MV_OK
        || out_write(o, t->bytes, t->bytes_len) != MV_OK
        || section_end(o) != MV_OK)
    {
        return MV_ERR;
    }

    section_begin(o, type + 1);
    if (out_write(o, t->slots, (size_t) t->cap * sizeof(uint32_t)) != MV_OK
        || section_end(o) != MV_OK)
    {
        return MV_ERR;
    }

    return MV_OK;
}


/* Writes n vectors, checking they are finite; normalises for cosine. */
static int
write_vectors(snap_out_t *o, uint32_t type, const float *v, uint32_t n,
    uint32_t dim, int normalise, float *row, const char *what)
{
    uint32_t  i, j;
    double    norm2, norm;
    float     x;

    section_begin(o, type);

    for (i = 0; i < n; i++) {
        norm2 = 0.0;
        for (j = 0; j < dim; j++) {
            x = v[(size_t) i * dim + j];
            if (!isfinite(x)) {
                return mv_err_set(o->err, "%s %u: vector value %u is not "
                                  "finite", what, i, j);
            }
            norm2 += (double) x * x;
            row[j] = x;
        }

        norm = sqrt(norm2);
        if (normalise && fabs(norm - 1.0) > 1e-6) {
            if (!(norm > 0.0) || !isfinite(norm)) {
                return mv_err_set(o->err, "%s %u: zero vector cannot be "
                                  "normalised (cosine metric)", what, i);
            }
            for (j = 0; j < dim; j++) {
                row[j] = (float) (row[j] / norm);
            }
        }

        if (out_write(o, row, (size_t) dim * sizeof(float)) != MV_OK) {
            return MV_ERR;
        }
    }

    return section_end(o);
}


static int
write_graph(snap_out_t *o, const mv_hnsw_graph_t *g)
{
    static const uint32_t  zero = 0;
    static const uint8_t   zeros[MV_SNAP_ALIGN];
    size_t                 pad;

    section_begin(o, MV_SNAP_HNSW_LEVEL0);
    if (out_write(o, g->level0, (size_t) g->n * g->level0_stride) != MV_OK
        || section_end(o) != MV_OK)
    {
        return MV_ERR;
    }

    section_begin(o, MV_SNAP_HNSW_UPPER);
    if (out_write(o, g->upper_offsets != NULL ? g->upper_offsets : &zero,
                  ((size_t) g->n + 1) * sizeof(uint32_t)) != MV_OK
        || (g->n > 0
            && out_write(o, g->upper_links,
                         (size_t) g->upper_offsets[g->n] * sizeof(uint32_t))
               != MV_OK)
        || section_end(o) != MV_OK)
    {
        return MV_ERR;
    }

    section_begin(o, MV_SNAP_SQ8);
    if (g->codes != NULL) {
        /* min, scale, then the codes on a cache-line boundary */
        pad = mv_align_up(8 * (size_t) g->dim, MV_SNAP_ALIGN)
              - 8 * (size_t) g->dim;

        if (out_write(o, g->sq_min, (size_t) g->dim * sizeof(float)) != MV_OK
            || out_write(o, g->sq_scale, (size_t) g->dim * sizeof(float))
               != MV_OK
            || out_write(o, zeros, pad) != MV_OK
            || out_write(o, g->codes, (size_t) g->n * g->code_stride)
               != MV_OK)
        {
            return MV_ERR;
        }
    }
    return section_end(o);
}


static void
fill_header(mv_snap_header_t *h, const mv_snapshot_input_t *in,
    const mv_hnsw_graph_t *g)
{
    uint32_t  i;

    memcpy(h->magic, MV_SNAP_MAGIC, MV_SNAP_MAGIC_LEN);
    h->version = MV_SNAPSHOT_VERSION;
    h->endian_mark = MV_SNAP_ENDIAN_MARK;
    h->header_size = MV_SNAPSHOT_HEADER_SIZE;
    h->generation = in->generation;
    h->created_at_ms = in->created_at_ms;
    h->dim = in->dim;
    h->metric = (uint32_t) in->metric;
    h->n_items = in->n_items;
    h->n_users = in->n_users;
    h->n_categories = in->n_categories;
    h->hnsw_m = g->M;
    h->hnsw_m0 = g->M0;
    h->hnsw_max_level = g->max_level;
    h->hnsw_entry = g->n == 0 ? 0 : g->entry;
    h->hnsw_level0_stride = (uint32_t) g->level0_stride;
    h->hnsw_code_stride = g->codes != NULL ? (uint32_t) g->code_stride : 0;
    h->n_positions = in->n_positions;
    h->n_sections = MV_SNAP_SECTION_COUNT;

    for (i = 0; i < in->n_positions; i++) {
        /* Copy field by field: the caller's padding and reserved bytes
           are not ours to publish. */
        memcpy(h->positions[i].stream, in->positions[i].stream,
               strnlen(in->positions[i].stream, MV_SNAPSHOT_STREAM_MAX));
        h->positions[i].partition = in->positions[i].partition;
        h->positions[i].offset = in->positions[i].offset;
    }
}


/* Writes every section and the header into the open file. */
static int
write_file(snap_out_t *o, const mv_snapshot_input_t *in,
    const mv_hnsw_graph_t *g, mv_err_t *err)
{
    snap_ids_t   items, cats, users;
    uint32_t    *popular = NULL;
    size_t       n_popular = 0;
    float       *row;
    int          rc = MV_ERR;

    memset(&items, 0, sizeof(items));
    memset(&cats, 0, sizeof(cats));
    memset(&users, 0, sizeof(users));

    row = malloc((size_t) in->dim * sizeof(float));
    if (row == NULL) {
        return mv_err_set(err, "out of memory");
    }

    if (ids_build(&items, in->item_ids, in->n_items, "item ids", err)
            != MV_OK
        || ids_build(&cats, in->category_names, in->n_categories,
                     "category ids", err) != MV_OK
        || ids_build(&users, in->user_ids, in->n_users, "user ids", err)
            != MV_OK
        || build_popular(in, &popular, &n_popular, err) != MV_OK)
    {
        goto done;
    }

    fill_header(o->h, in, g);
    o->h->id_seeds[0] = items.seed;
    o->h->id_seeds[1] = cats.seed;
    o->h->id_seeds[2] = users.seed;

    /* Placeholder for the header, then the sections in type order. */
    if (out_write(o, o->h, MV_SNAPSHOT_HEADER_SIZE) != MV_OK
        || write_ids(o, MV_SNAP_ITEM_IDS, &items, in->n_items) != MV_OK
        || write_vectors(o, MV_SNAP_ITEM_VECTORS, in->item_vectors,
                         in->n_items, in->dim,
                         in->metric == MV_METRIC_COSINE, row, "item")
            != MV_OK)
    {
        goto done;
    }

    section_begin(o, MV_SNAP_ITEM_META);
    if (out_write(o, in->item_meta,
                  (size_t) in->n_items * sizeof(mv_item_meta_t)) != MV_OK
        || section_end(o) != MV_OK
        || write_ids(o, MV_SNAP_CATEGORY_IDS, &cats, in->n_categories)
            != MV_OK
        || write_graph(o, g) != MV_OK
        || write_ids(o, MV_SNAP_USER_IDS, &users, in->n_users) != MV_OK
        || write_vectors(o, MV_SNAP_USER_VECTORS, in->user_vectors,
                         in->n_users, in->dim, 0, row, "user") != MV_OK)
    {
        goto done;
    }

    section_begin(o, MV_SNAP_POPULAR);
    if (out_write(o, popular, n_popular * sizeof(uint32_t)) != MV_OK
        || section_end(o) != MV_OK
        || out_flush(o) != MV_OK)
    {
        goto done;
    }

    o->h->file_size = out_pos(o);
    o->h->header_crc = mv_snap_header_crc(o->h);
    rc = pwrite_all(o->fd, o->h, MV_SNAPSHOT_HEADER_SIZE, 0, o->path, err);

done:
    ids_free(&items);
    ids_free(&cats);
    ids_free(&users);
    free(popular);
    free(row);
    return rc;
}


/* Writes a complete snapshot to path crash-safely (see snapshot.h). */
int
mv_snapshot_write(const char *path, const mv_snapshot_input_t *in,
    mv_err_t *err)
{
    mv_hnsw_graph_t  empty;
    const mv_hnsw_graph_t *g = in->graph;
    snap_out_t       o;
    char             tmp[PATH_MAX];
    int              fd, rc;
    static const uint32_t  zero_offsets[1] = { 0 };

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    return mv_err_set(err, "snapshots are written on little-endian hosts "
                      "only");
#endif

    if (g == NULL) {
        if (in->n_items != 0) {
            return mv_err_set(err, "no graph for %u items", in->n_items);
        }
        memset(&empty, 0, sizeof(empty));
        empty.dim = in->dim;
        empty.metric = in->metric;
        empty.M = 16;
        empty.M0 = 32;
        empty.level0_stride = mv_hnsw_level0_stride(32);
        empty.upper_offsets = zero_offsets;
        g = &empty;
    }

    if (check_input(in, g, err) != MV_OK) {
        return MV_ERR;
    }

    memset(&o, 0, sizeof(o));
    o.buf = malloc(SNAP_BUF_SIZE);
    o.h = calloc(1, sizeof(*o.h));
    o.err = err;
    o.path = tmp;
    if (o.buf == NULL || o.h == NULL) {
        free(o.buf);
        free(o.h);
        return mv_err_set(err, "out of memory");
    }

    fd = mv_file_open_temp(path, tmp, sizeof(tmp), err);
    if (fd < 0) {
        free(o.buf);
        free(o.h);
        return MV_ERR;
    }
    o.fd = fd;

    rc = mv_file_commit(fd, write_file(&o, in, g, err), tmp, path, err);

    free(o.buf);
    free(o.h);

    if (rc != MV_OK) {
        return MV_ERR;
    }

    return mv_dir_fsync_parent(path, err);
}
