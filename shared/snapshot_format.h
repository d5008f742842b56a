/*
 * snapshot_format.h -- the on-disk layout of a snapshot (private to
 * snapshot_write.c, snapshot_read.c and the tests that corrupt files).
 *
 * A file is the header (MV_SNAPSHOT_HEADER_SIZE bytes) followed by exactly
 * MV_SNAP_SECTION_COUNT sections, in the order of their types, each starting
 * on the 64-byte boundary right after the previous one (the first right after
 * the header), zero padding between them and after the last, so the file size
 * is a multiple of 64.  All integers and floats are little-endian; arrays are
 * used in place from the mapping, so the format is little-endian hosts only
 * (the endianness mark makes a big-endian file fail cleanly).
 *
 * Header (offsets in bytes):
 *     0  magic "MVSNAP\r\n"            8  u32 version
 *    12  u32 endianness mark 0x01020304  16  u32 header size
 *    20  u32 header CRC-32C (of the whole header with this field zeroed)
 *    24  u64 file size                32  u64 generation
 *    40  i64 created_at_ms            48  u32 dim
 *    52  u32 metric (mv_metric_t: 1 cosine, 2 l2, 3 ip)
 *                                     56  u32 n_items
 *    60  u32 n_users                  64  u32 n_categories
 *    68  u32 M   72 u32 M0   76 u32 max level   80 u32 entry
 *    84  u32 level-0 stride           88  u32 code stride (0: no codes)
 *    92  u32 n_positions              96  u32 section count
 *   100  u32 flags (0)
 *   104  u64 id hash seeds[3]: items, categories, users (random per file)
 *   128  section table: 32 entries of {u32 type, u32 flags (0), u64 offset,
 *        u64 length, u32 CRC-32C of the payload, u32 reserved (0)}; entries
 *        past the section count are zero
 *  1152  reserved (0)
 *  4096  64 stream positions (mv_stream_pos_t); those past n_positions zero
 *
 * Sections (n = the count of the items, users or categories they belong to):
 *   1 item ids        u32 offsets[n + 1], then the id bytes (offsets[n] of
 *                     them; the section length fixes the byte count)
 *   2 item slots      u32 slots[mv_idtable_capacity(n)]
 *   3 item vectors    f32 [n][dim], unit norm for cosine, as given (finite)
 *                     for l2 and ip
 *   4 item meta       mv_item_meta_t [n]
 *   5 category ids    as 1
 *   6 category slots  as 2
 *   7 hnsw level 0    n records of level0_stride bytes (hnsw.h)
 *   8 hnsw upper      u32 offsets[n + 1], then u32 links[offsets[n]]
 *   9 sq8             f32 min[dim], f32 scale[dim], zeros up to the next
 *                     64-byte boundary, then u8 codes[n][code stride]
 *                     (hnsw.h); empty without codes
 *  10 user ids        as 1
 *  11 user slots      as 2
 *  12 user vectors    f32 [n_users][dim]
 *  13 popular         u32 global[n_live], u32 cat_offsets[n_categories + 1],
 *                     u32 cat_lists[cat_offsets[n_categories]]; n_live is
 *                     the number of non-deleted items; lists are sorted by
 *                     popularity descending, ties by item index ascending
 */
#ifndef MV_SNAPSHOT_FORMAT_H
#define MV_SNAPSHOT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

#define MV_SNAP_MAGIC          "MVSNAP\r\n"
#define MV_SNAP_MAGIC_LEN      8
#define MV_SNAP_ENDIAN_MARK    0x01020304u
#define MV_SNAP_ALIGN          64
#define MV_SNAP_MAX_SECTIONS   32
#define MV_SNAP_MAX_DIM        65536
#define MV_SNAP_MAX_COUNT      (1u << 30)    /* items, users, categories */

enum {
    MV_SNAP_ITEM_IDS = 1,
    MV_SNAP_ITEM_SLOTS,
    MV_SNAP_ITEM_VECTORS,
    MV_SNAP_ITEM_META,
    MV_SNAP_CATEGORY_IDS,
    MV_SNAP_CATEGORY_SLOTS,
    MV_SNAP_HNSW_LEVEL0,
    MV_SNAP_HNSW_UPPER,
    MV_SNAP_SQ8,
    MV_SNAP_USER_IDS,
    MV_SNAP_USER_SLOTS,
    MV_SNAP_USER_VECTORS,
    MV_SNAP_POPULAR,
    MV_SNAP_SECTION_COUNT = MV_SNAP_POPULAR
};

typedef struct mv_snap_section {
    uint32_t  type;
    uint32_t  flags;
    uint64_t  offset;
    uint64_t  length;
    uint32_t  crc32c;
    uint32_t  reserved;
} mv_snap_section_t;

typedef struct mv_snap_header {
    char               magic[MV_SNAP_MAGIC_LEN];
    uint32_t           version;
    uint32_t           endian_mark;
    uint32_t           header_size;
    uint32_t           header_crc;
    uint64_t           file_size;
    uint64_t           generation;
    int64_t            created_at_ms;
    uint32_t           dim;
    uint32_t           metric;
    uint32_t           n_items;
    uint32_t           n_users;
    uint32_t           n_categories;
    uint32_t           hnsw_m;
    uint32_t           hnsw_m0;
    uint32_t           hnsw_max_level;
    uint32_t           hnsw_entry;
    uint32_t           hnsw_level0_stride;
    uint32_t           hnsw_code_stride;
    uint32_t           n_positions;
    uint32_t           n_sections;
    uint32_t           flags;
    uint64_t           id_seeds[3];       /* items, categories, users */
    mv_snap_section_t  sections[MV_SNAP_MAX_SECTIONS];
    uint8_t            reserved1[4096 - 128 - 32 * MV_SNAP_MAX_SECTIONS];
    mv_stream_pos_t    positions[MV_SNAPSHOT_MAX_POSITIONS];
} mv_snap_header_t;

_Static_assert(sizeof(mv_snap_section_t) == 32, "section entry size");
_Static_assert(sizeof(mv_item_meta_t) == 24, "item meta size");
_Static_assert(sizeof(mv_stream_pos_t) == 64, "stream position size");
_Static_assert(offsetof(mv_snap_header_t, header_crc) == 20, "crc offset");
_Static_assert(offsetof(mv_snap_header_t, file_size) == 24, "size offset");
_Static_assert(offsetof(mv_snap_header_t, flags) == 100, "flags offset");
_Static_assert(offsetof(mv_snap_header_t, id_seeds) == 104, "seeds offset");
_Static_assert(offsetof(mv_snap_header_t, sections) == 128, "table offset");
_Static_assert(offsetof(mv_snap_header_t, positions) == 4096,
               "positions offset");
_Static_assert(sizeof(mv_snap_header_t) == MV_SNAPSHOT_HEADER_SIZE,
               "header size");


/* Human name of a section type, for error messages. */
static inline const char *
mv_snap_section_name(uint32_t type)
{
    static const char *const names[MV_SNAP_SECTION_COUNT + 1] = {
        "unknown", "item ids", "item slots", "item vectors", "item meta",
        "category ids", "category slots", "hnsw level 0", "hnsw upper",
        "sq8", "user ids", "user slots", "user vectors", "popular"
    };

    return type <= MV_SNAP_SECTION_COUNT ? names[type] : names[0];
}


/*
 * 1 when item a comes before item b in a popularity list: higher popularity
 * first, ties by lower index.  Popularities are finite (checked first).
 */
static inline int
mv_snap_popular_before(const mv_item_meta_t *meta, uint32_t a, uint32_t b)
{
    return meta[a].popularity > meta[b].popularity
           || (meta[a].popularity == meta[b].popularity && a < b);
}


/*
 * CRC-32C of a header with its crc field taken as zero (the stored value).
 * Defined in snapshot_read.c.
 */
uint32_t mv_snap_header_crc(const mv_snap_header_t *h);

/*
 * Checks one item's metadata (category < n_categories or none, known flags,
 * finite popularity >= 0, reserved 0).  Defined in snapshot_read.c.
 */
int mv_snap_meta_check(const mv_item_meta_t *m, uint32_t i,
    uint32_t n_categories, mv_err_t *err);

/*
 * Checks stream positions[0 .. n_total): the first n_used each a
 * NUL-terminated, non-empty name zero-padded, reserved fields 0; the rest
 * all zero.  Defined in snapshot_read.c (manifests use it too).
 */
int mv_snap_positions_check(const mv_stream_pos_t *positions,
    uint32_t n_used, uint32_t n_total, mv_err_t *err);

/*
 * mv_snapshot_identity of the file open as fd (path names it in errors).
 * Defined in snapshot_read.c.
 */
int mv_snapshot_identity_fd(int fd, const char *path,
    mv_snapshot_identity_t *id, mv_err_t *err);

/*
 * Expected byte length of the fixed-size section `type` for header h
 * (item ids/user ids/category ids and popular are variable: for them the
 * minimum is returned).  Never overflows for a header whose dim and shape
 * passed their checks.  Defined in snapshot_read.c.
 */
uint64_t mv_snap_section_min_length(const mv_snap_header_t *h, uint32_t type);

#endif /* MV_SNAPSHOT_FORMAT_H */
