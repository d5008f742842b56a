/*
 * generation_format.h -- the on-disk layout of a manifest (generation.h has
 * the byte table) and what generation_manifest.c and generation_read.c
 * share (with generation_dir.c).  Private to them, the tests and the fuzz
 * target.
 */
#ifndef MV_GENERATION_FORMAT_H
#define MV_GENERATION_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "generation.h"
#include "snapshot_format.h"

#define MV_GEN_MAGIC           "MVGENM\r\n"
#define MV_GEN_MAGIC_LEN       8
#define MV_GEN_VERSION         1
#define MV_GEN_HEADER_SIZE     128
#define MV_GEN_ENTRY_SIZE      128
#define MV_GEN_MANIFEST_MAX    (1u << 20)     /* bytes a reader accepts */

typedef struct mv_gen_header {
    char      magic[MV_GEN_MAGIC_LEN];
    uint32_t  version;
    uint32_t  endian_mark;
    uint32_t  entries_offset;
    uint32_t  crc;
    uint64_t  file_size;
    uint64_t  generation;
    int64_t   created_at_ms;
    uint32_t  dim;
    uint32_t  metric;
    uint32_t  n_segments;
    uint32_t  n_positions;
    uint64_t  n_users;
    uint32_t  flags;
    uint8_t   reserved[MV_GEN_HEADER_SIZE - 76];
} mv_gen_header_t;

typedef struct mv_gen_entry {
    char      name[MV_GEN_NAME_MAX + 1];
    uint64_t  size;
    uint64_t  generation;
    uint32_t  header_crc;
    uint32_t  kind;
    uint32_t  n_items;
    uint32_t  n_users;
    uint8_t   reserved[MV_GEN_ENTRY_SIZE - 96];
} mv_gen_entry_t;

_Static_assert(sizeof(mv_gen_header_t) == MV_GEN_HEADER_SIZE, "header");
_Static_assert(offsetof(mv_gen_header_t, crc) == 20, "crc offset");
_Static_assert(offsetof(mv_gen_header_t, generation) == 32, "gen offset");
_Static_assert(offsetof(mv_gen_header_t, n_users) == 64, "users offset");
_Static_assert(offsetof(mv_gen_header_t, flags) == 72, "flags offset");
_Static_assert(sizeof(mv_gen_entry_t) == MV_GEN_ENTRY_SIZE, "entry");
_Static_assert(offsetof(mv_gen_entry_t, size) == 64, "entry size offset");
_Static_assert(offsetof(mv_gen_entry_t, kind) == 84, "entry kind offset");


/* CRC-32C of a manifest of len bytes with its crc field taken as zero. */
uint32_t mv_gen_manifest_crc(const void *buf, size_t len);

/*
 * 1 when name is a valid segment file name ([A-Za-z0-9._-]{1,63}, not
 * starting with '.'), 0 otherwise.
 */
int mv_gen_name_valid(const char *name, size_t len);

/*
 * After generation g was published in dir: removes what the newest keep
 * manifests of generations <= g and `current` do not use (generation.h,
 * mv_generation_publish).  Best effort.  Defined in generation_dir.c.
 */
void mv_gen_prune(const char *dir, uint64_t g, unsigned keep);

#endif /* MV_GENERATION_FORMAT_H */
