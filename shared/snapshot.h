/*
 * snapshot.h -- the "shared segment": one immutable, versioned file holding
 * everything nginx needs to answer recommendations, written by the trainer
 * and mapped read-only by every nginx worker.
 *
 * Layout (little-endian; every section starts on a 64-byte boundary):
 *
 *   header (MV_SNAPSHOT_HEADER_SIZE bytes): magic "MVSNAP\r\n", format
 *     version, endianness mark, header size, file size, generation, created
 *     time, dim, metric, counts, HNSW shape, the stream positions the model
 *     includes, a section table (type, offset, length, CRC-32C per section)
 *     and a CRC-32C of the header itself.
 *   sections: item ids + hash index, item vectors (float32, normalised for
 *     cosine), item metadata, category names + hash index, HNSW level 0,
 *     HNSW upper levels, SQ8 quantiser (when the graph has codes), user ids
 *     + hash index, user vectors, popularity lists (global and per category).
 *
 * Writer: temp file -> write -> fsync -> rename -> fsync the directory; then
 * mv_snapshot_publish swaps the directory's `current` symlink atomically
 * (symlink to a temp name, rename over `current`) and removes generations
 * beyond the newest `keep`.  A published file is never modified.
 *
 * Reader: maps the file PROT_READ/MAP_SHARED and validates every byte it
 * will trust before handing out a view: magic, version, endianness, sizes,
 * bounds and alignment of every section, checksums, id tables, metadata,
 * category ids, the HNSW graph (mv_hnsw_graph_validate) and the popularity
 * lists.  A bad file is refused with a precise reason; nothing in it is
 * dereferenced unchecked.
 */
#ifndef MV_SNAPSHOT_H
#define MV_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "hnsw.h"
#include "ids.h"
#include "mv_common.h"
#include "vec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MV_SNAPSHOT_VERSION        1
#define MV_SNAPSHOT_MAX_POSITIONS  64
#define MV_SNAPSHOT_STREAM_MAX     39     /* bytes of a stream name */
#define MV_SNAPSHOT_HEADER_SIZE    8192   /* fixed; sections follow it */

#define MV_ITEM_DELETED            0x1u   /* mv_item_meta_t.flags */
#define MV_CATEGORY_NONE           0xffffffffu

/* Per-item metadata, stored as an array of these (24 bytes, packed). */
typedef struct mv_item_meta {
    uint32_t  category;        /* index into the category table, or
                                  MV_CATEGORY_NONE */
    uint32_t  flags;           /* MV_ITEM_DELETED */
    float     popularity;      /* finite, >= 0 */
    uint32_t  reserved;        /* 0 */
    int64_t   created_at_ms;   /* unix time in milliseconds */
} mv_item_meta_t;

/*
 * A position in a stream the model has consumed up to (exclusive): a Kafka
 * topic/partition/offset, or an action-log segment/offset.
 */
typedef struct mv_stream_pos {
    char      stream[MV_SNAPSHOT_STREAM_MAX + 1];   /* NUL-terminated */
    uint32_t  partition;
    uint32_t  reserved;
    uint64_t  offset;
    uint64_t  reserved2;
} mv_stream_pos_t;                                  /* 64 bytes */

/* Everything the writer needs.  The writer copies; it keeps no pointer. */
typedef struct mv_snapshot_input {
    uint64_t                generation;
    int64_t                 created_at_ms;
    uint32_t                dim;
    mv_metric_t             metric;

    uint32_t                n_items;
    const char *const      *item_ids;        /* n_items valid, unique ids */
    const float            *item_vectors;    /* n_items x dim */
    const mv_item_meta_t   *item_meta;       /* n_items */

    uint32_t                n_categories;
    const char *const      *category_names;  /* valid, unique ids */

    /* The graph over the items (node i = item i), same dim and metric.  Its
       deleted marks must agree with item_meta flags. */
    const mv_hnsw_graph_t  *graph;

    uint32_t                n_users;
    const char *const      *user_ids;
    const float            *user_vectors;    /* n_users x dim */

    uint32_t                n_positions;     /* <= MV_SNAPSHOT_MAX_POSITIONS */
    const mv_stream_pos_t  *positions;
} mv_snapshot_input_t;

/*
 * Writes a complete snapshot to path crash-safely (temp file in the same
 * directory, fsync, rename, fsync of the directory).  Popularity lists are
 * derived from item_meta (non-deleted items by popularity, descending; ties
 * by item index).  Returns MV_OK, or MV_ERR with err set; on error no file
 * appears at path and the temp file is removed.
 */
int mv_snapshot_write(const char *path, const mv_snapshot_input_t *in,
    mv_err_t *err);

/*
 * Writes generation in->generation as dir/snapshot-<generation 20 digits>.mvs
 * with mv_snapshot_write, points dir/current at it atomically, fsyncs dir,
 * and removes snapshot files beyond the newest `keep` (keep >= 1).  When
 * path_out is not NULL it receives the published file's path.  Returns MV_OK
 * or MV_ERR.
 */
int mv_snapshot_publish(const char *dir, const mv_snapshot_input_t *in,
    unsigned keep, char *path_out, size_t path_out_len, mv_err_t *err);

/*
 * Lists the generations of the published files in dir (names
 * snapshot-<generation, 20 digits>.mvs; temp files and other names are
 * ignored), newest first, into *gens (malloc'd, the caller frees it; NULL
 * when there are none) and their number into *n.  A missing dir has none.
 * Returns MV_OK, or MV_ERR with err set when dir cannot be read.
 */
int mv_snapshot_generations(const char *dir, uint64_t **gens, size_t *n,
    mv_err_t *err);

/*
 * The newest generation among dir's published files into *newest (0 when
 * there are none or no dir), whatever `current` names: a publisher that
 * counts from it never replaces an existing file.  Returns MV_OK, or MV_ERR
 * with err set when dir cannot be read.
 */
int mv_snapshot_newest_generation(const char *dir, uint64_t *newest,
    mv_err_t *err);

/*
 * Removes what an interrupted publish into dir left behind: temp snapshot
 * files ("snapshot-*.tmp-*": of snapshots and of the files a publisher
 * keeps beside them; "gen-*.tmp-*", "items-*.tmp-*", "users-*.tmp-*": of
 * the manifests and segments of generation.h) and temp links
 * (".current.tmp-*").  Only
 * for the directory's one publisher, before it publishes (another
 * publisher's temp files are in use).  Returns the number removed, or -1
 * with err set when dir cannot be read.
 */
int mv_snapshot_remove_temps(const char *dir, mv_err_t *err);

/* A validated view of a snapshot's bytes.  Every pointer is into them. */
typedef struct mv_snapshot_view {
    uint32_t                version;
    uint64_t                generation;
    int64_t                 created_at_ms;
    uint32_t                dim;
    mv_metric_t             metric;

    uint32_t                n_items;
    mv_idtable_t            items;
    const float            *item_vectors;
    const mv_item_meta_t   *item_meta;

    uint32_t                n_categories;
    mv_idtable_t            categories;

    mv_hnsw_graph_t         graph;

    uint32_t                n_users;
    mv_idtable_t            users;
    const float            *user_vectors;

    /* popular: every non-deleted item, most popular first (n_popular).
       category c's members, most popular first, are
       cat_popular[cat_popular_offsets[c] .. cat_popular_offsets[c + 1]). */
    uint32_t                n_popular;
    const uint32_t         *popular;
    const uint32_t         *cat_popular_offsets;  /* n_categories + 1 */
    const uint32_t         *cat_popular;

    uint32_t                n_positions;
    const mv_stream_pos_t  *positions;

    size_t                  file_size;
} mv_snapshot_view_t;

/*
 * Validates len bytes at buf (which must be 64-byte aligned, as a mapping
 * is) as a snapshot and fills view.  Returns MV_OK, or MV_ERR with a precise
 * reason ("section 5 (hnsw level 0) checksum mismatch", "item 17: category 9
 * >= 4 categories", ...).  Never reads outside [buf, buf + len).
 */
int mv_snapshot_validate(const void *buf, size_t len, mv_snapshot_view_t *view,
    mv_err_t *err);

/* An open, mapped, validated snapshot file. */
typedef struct mv_snapshot mv_snapshot_t;

/*
 * Opens path (following symlinks: the file `current` names at the moment of
 * the call), maps it read-only and validates it.  Returns NULL with err set
 * ("open(...): No such file", "bad magic", ...) when the file cannot be used.
 */
mv_snapshot_t *mv_snapshot_open(const char *path, mv_err_t *err);

/* The validated view of an open snapshot (valid until mv_snapshot_close). */
const mv_snapshot_view_t *mv_snapshot_view(const mv_snapshot_t *s);

/* Identity of the mapped file (st_dev, st_ino), to notice a new `current`. */
void mv_snapshot_file_id(const mv_snapshot_t *s, uint64_t *dev, uint64_t *ino);

/*
 * What tells one snapshot file from another without validating it: where it
 * is (st_dev, st_ino), its size, and the generation and header CRC-32C as
 * stored in its first bytes (0 when the file is shorter than the fields).
 * A file that was refused is remembered by this identity: the inode of a
 * pruned file can be reused by a later one, its generation and header CRC
 * are not (a publish never repeats a generation).  Nothing here is trusted
 * beyond telling files apart.
 */
typedef struct mv_snapshot_identity {
    uint64_t  dev;
    uint64_t  ino;
    uint64_t  size;
    uint64_t  generation;
    uint32_t  header_crc;
    uint32_t  has_header;      /* 1 when generation and header_crc were read */
} mv_snapshot_identity_t;

/*
 * Fills id for the file path names now (following symlinks), from one
 * open descriptor, reading only the header's first 40 bytes.  Returns
 * MV_OK, or MV_ERR with err set when the file cannot be opened or read.
 */
int mv_snapshot_identity(const char *path, mv_snapshot_identity_t *id,
    mv_err_t *err);

/* 1 when a and b are the same file by every field of the identity. */
int mv_snapshot_identity_equal(const mv_snapshot_identity_t *a,
    const mv_snapshot_identity_t *b);

/* Unmaps and frees.  s may be NULL. */
void mv_snapshot_close(mv_snapshot_t *s);

#ifdef __cplusplus
}
#endif

#endif /* MV_SNAPSHOT_H */
