/*
 * generation.h -- a model generation made of several snapshot files, so
 * that a publish writes what changed instead of the whole model, and the
 * generations kept on disk share their unchanged files.
 *
 * A generation G is a manifest, dir/gen-<G, 20 digits>.mvm, naming its
 * segments in order: files of the snapshot format (snapshot.h) in the same
 * directory, each valid on its own.
 *   segment 0       the items segment: items, categories, graph, popularity
 *                   (dir/items-<G>.mvs).  It may hold users too.
 *   segments 1..    user segments (no items, no categories), oldest first:
 *                   usually a base holding every user as of some generation
 *                   B (dir/users-<B>.base.mvs), then deltas holding the
 *                   users changed in one generation D (dir/users-<D>.mvs).
 * A user's vector is the one in the newest segment that has the user.  The
 * manifest records each segment's identity (size, generation and header
 * CRC-32C as its header stores them); a reader refuses a generation whose
 * files do not match it, so a generation is used whole or not at all.
 *
 * The directory's `current` symlink names the published generation's
 * manifest.  A plain snapshot file (the format before manifests, still
 * what `milvuso-worker snapshot` writes) is read as a generation of one
 * segment, so `current` may name either.
 *
 * Manifest layout (little-endian; the first 40 bytes have the offsets of a
 * snapshot header's, so mv_snapshot_identity tells manifests apart too):
 *     0  magic "MVGENM\r\n"            8  u32 version (1)
 *    12  u32 endianness mark 0x01020304  16  u32 entries offset (128)
 *    20  u32 CRC-32C of the whole file with this field zeroed
 *    24  u64 file size                32  u64 generation
 *    40  i64 created_at_ms            48  u32 dim
 *    52  u32 metric                   56  u32 n_segments (1..MV_GEN_MAX_SEGMENTS)
 *    60  u32 n_positions (<= MV_SNAPSHOT_MAX_POSITIONS)
 *    64  u64 n_users: distinct users over all segments (the writer's count)
 *    72  u32 flags (0)                76  zero up to 128
 *   128  segment entries, 128 bytes each:
 *          char name[64]  a file name in the same directory, NUL padded:
 *                         [A-Za-z0-9._-]+, not starting with '.'
 *          u64 size, u64 generation, u32 header CRC (of the segment's header),
 *          u32 kind (1 items, 2 user base, 3 user delta),
 *          u32 n_items, u32 n_users, zero up to 128
 *  then  n_positions stream positions (mv_stream_pos_t, 64 bytes each),
 *        and nothing after them.
 *
 * Publish order (one publisher per directory): every segment file durable
 * (temp, fsync, rename, fsync of the directory) -> the manifest likewise ->
 * `current` renamed over -> fsync of the directory -> pruning.  A crash at
 * any point leaves `current` naming a complete generation.
 */
#ifndef MV_GENERATION_H
#define MV_GENERATION_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"
#include "snapshot.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MV_GEN_MAX_SEGMENTS   64
#define MV_GEN_NAME_MAX       63          /* bytes of a segment file name */

enum {
    MV_GEN_SEGMENT_ITEMS = 1,
    MV_GEN_SEGMENT_USER_BASE,
    MV_GEN_SEGMENT_USER_DELTA
};

/* ---- names ------------------------------------------------------------ */

/*
 * The file names of generation g's manifest ("gen-<g>.mvm"), items segment
 * ("items-<g>.mvs"), user delta ("users-<g>.mvs") and user base
 * ("users-<g>.base.mvs") into buf (>= 64 bytes).  Returns buf.
 */
char *mv_gen_manifest_name(uint64_t g, char *buf, size_t len);
char *mv_gen_items_name(uint64_t g, char *buf, size_t len);
char *mv_gen_delta_name(uint64_t g, char *buf, size_t len);
char *mv_gen_base_name(uint64_t g, char *buf, size_t len);

/* ---- writing ---------------------------------------------------------- */

/* What a manifest says, apart from the segments' identities (read from the
   files themselves). */
typedef struct mv_manifest_input {
    uint64_t                generation;
    int64_t                 created_at_ms;
    uint32_t                dim;
    mv_metric_t             metric;
    uint64_t                n_users;         /* distinct, over all segments */

    uint32_t                n_segments;      /* 1 .. MV_GEN_MAX_SEGMENTS */
    const char *const      *segments;        /* file names in dir */
    const uint32_t         *kinds;           /* MV_GEN_SEGMENT_* each */

    uint32_t                n_positions;
    const mv_stream_pos_t  *positions;
} mv_manifest_input_t;

/*
 * Writes generation in->generation's manifest into dir and publishes it:
 * reads each named segment's header (it must exist, be a complete snapshot
 * (header CRC, size) of dim and metric and of a generation <= G, segment 0
 * of kind items, the others of a user kind with no items and no
 * categories; no name twice), writes dir/gen-<G>.mvm crash-safely, points
 * dir/current at it atomically, fsyncs dir, then prunes: the newest `keep`
 * manifests of generations <= G (keep >= 1) stay, with every file they
 * name, and so does what `current` names; other manifests, segment files
 * and plain snapshot files of generations <= G are removed, and so are
 * side files "<name>.dedupe" whose file is gone.  Files of generations
 * newer than G are left alone.  Pruning is best effort and removes nothing
 * when a manifest it keeps cannot be read (the next publish retries).
 * Returns MV_OK, or MV_ERR with err set and `current` unchanged.
 */
int mv_generation_publish(const char *dir, const mv_manifest_input_t *in,
    unsigned keep, mv_err_t *err);

/*
 * Validates len bytes as a manifest (magic, version, endianness, sizes,
 * CRC, counts, names (valid, distinct), kinds, entries (size a snapshot's,
 * generation <= the manifest's, no items in a user segment), positions).  On MV_OK *in describes it with
 * pointers into a malloc'd block returned in *mem (the caller frees it).
 * Never reads outside [buf, buf + len).  The fuzz target's entry point.
 */
int mv_manifest_parse(const void *buf, size_t len, mv_manifest_input_t *in,
    void **mem, mv_err_t *err);

/*
 * Writes every user of g, each with its newest vector, to dir/name as a
 * snapshot of users only (no items), crash-safely, with g's generation,
 * dim, metric and positions: the base a later manifest names in place of
 * g's user segments.  Returns MV_OK, or MV_ERR with no file at dir/name.
 */
typedef struct mv_generation mv_generation_t;

int mv_generation_compact_users(const char *dir, const mv_generation_t *g,
    const char *name, mv_err_t *err);

/* ---- listing and cleaning -------------------------------------------- */

/*
 * Lists the generations published in dir, newest first: manifests
 * (gen-<g>.mvm) and plain snapshot files (snapshot-<g>.mvs), with the path
 * of each in paths[i] (malloc'd, freed with mv_generation_list_free).  A
 * missing dir has none.  MV_OK or MV_ERR.
 */
typedef struct mv_generation_list {
    size_t     n;
    uint64_t  *generations;
    char     **paths;
} mv_generation_list_t;

int mv_generation_list(const char *dir, mv_generation_list_t *list,
    mv_err_t *err);
void mv_generation_list_free(mv_generation_list_t *list);

/*
 * The newest generation of any file in dir that carries one (manifests,
 * segments, plain snapshots, side files) into *newest (0 when none): a
 * publisher that counts from it never reuses a file name.  MV_OK or MV_ERR.
 */
int mv_generation_newest(const char *dir, uint64_t *newest, mv_err_t *err);

/*
 * Removes what an interrupted publish left in dir: temp files of every
 * name above, temp links, and segment files that no manifest in dir names
 * (and that `current` does not name); when a manifest cannot be read, no
 * segment file is removed.  Only for the directory's one publisher, before
 * it publishes.  Returns the number removed, or -1 with err set.
 */
int mv_generation_remove_orphans(const char *dir, mv_err_t *err);

/* ---- reading ---------------------------------------------------------- */

/* What an open generation is. */
typedef struct mv_generation_info {
    uint64_t                generation;
    int64_t                 created_at_ms;
    uint32_t                dim;
    mv_metric_t             metric;
    uint64_t                n_users;         /* distinct, as recorded */
    uint32_t                n_segments;
    uint32_t                n_positions;
    const mv_stream_pos_t  *positions;
    uint64_t                bytes;           /* of all its files: the
                                                manifest (if any) and the
                                                segments */
    uint64_t                bytes_validated; /* by the open that made it:
                                                bytes minus reused segments */
    uint32_t                segments_reused;
    mv_snapshot_identity_t  identity;        /* of the file opened: the
                                                manifest, or the plain
                                                snapshot file */
} mv_generation_info_t;

/*
 * Opens path -- `current`, a manifest or a plain snapshot file (told apart
 * by magic) -- maps and validates every segment it names (the files are
 * opened relative to the manifest's directory -- path's, or its symlink
 * target's when the link text has a '/' -- and checked against the
 * identity the manifest records) and returns the generation, or NULL with
 * err set.  A segment that `reuse` (may be NULL: an open generation, e.g.
 * the one in use) has with the same identity (device, inode, size,
 * generation, header CRC) is shared instead of mapped and validated again.
 * A segment that is missing or does not match sets *moved to 1 (moved may
 * be NULL): the publisher replaced or pruned it meanwhile, and opening
 * `current` again will see a newer generation; so does a path that is a
 * symlink to a missing file (the manifest pruned right after `current`
 * moved on).  Any other failure sets it to 0.  Thread contract: segments are reference counted without locks, so
 * an open with reuse R and a close of R or of any generation sharing
 * segments with R must not run at the same time (nginx: the loader thread
 * opens with the generation in use, which the event loop closes only after
 * joining it).
 */
mv_generation_t *mv_generation_open(const char *path,
    const mv_generation_t *reuse, int *moved, mv_err_t *err);

/* Its info (valid until mv_generation_close). */
const mv_generation_info_t *mv_generation_info(const mv_generation_t *g);

/*
 * The items segment's view: items, categories, graph, popularity lists.
 * Its user fields are that one segment's users only; look users up with
 * mv_generation_user.
 */
const mv_snapshot_view_t *mv_generation_items(const mv_generation_t *g);

/*
 * The manifest g was opened from (segment names and kinds in order,
 * positions, counts), or NULL when g is a plain snapshot file.
 */
const mv_manifest_input_t *mv_generation_manifest(const mv_generation_t *g);

/* Segment i's view (i < info->n_segments; 0 is the items segment). */
const mv_snapshot_view_t *mv_generation_segment(const mv_generation_t *g,
    uint32_t i);

/*
 * The vector of user id (len bytes) in g: from the newest segment that has
 * it, or NULL when no segment does.  dim floats, valid until close.
 */
const float *mv_generation_user(const mv_generation_t *g, const char *id,
    size_t len);

/* Unmaps what no other generation shares and frees.  g may be NULL. */
void mv_generation_close(mv_generation_t *g);

#ifdef __cplusplus
}
#endif

#endif /* MV_GENERATION_H */
