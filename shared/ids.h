/*
 * ids.h -- opaque string ids (items, users, categories) and the id table: the
 * ids of a snapshot section plus an open-addressing hash index over them.
 *
 * An id is 1..MV_ID_MAX bytes of [A-Za-z0-9._:-] (UUIDs fit).  The table
 * layout is the on-disk layout, so a mapped snapshot looks ids up in place:
 *
 *   offsets  u32[n + 1]     id i is bytes[offsets[i] .. offsets[i+1])
 *   bytes    concatenated ids, no terminators
 *   slots    u32[cap]       cap a power of two >= 2n (>= 8); a slot holds
 *                           id index + 1, or 0 when empty; linear probing
 *                           from mv_id_hash_seeded(seed, id) & (cap - 1)
 *
 * mv_id_hash is part of the file format: it never changes within a format
 * version.  The seed of a table is chosen at random by the snapshot writer
 * (and stored in the file), so that ids chosen by a client (user ids come
 * from HTTP requests) cannot be crafted to collide and make lookups, builds
 * and validation quadratic.  Seed 0 is plain mv_id_hash.
 */
#ifndef MV_IDS_H
#define MV_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MV_ID_MAX 64

/* 1 when s[0..len) is a valid id, 0 otherwise. */
int mv_id_valid(const char *s, size_t len);

/* The format's stable 64-bit hash of an id (mv_id_hash_seeded with 0). */
uint64_t mv_id_hash(const char *s, size_t len);

/* The same hash keyed with seed (stable too). */
uint64_t mv_id_hash_seeded(uint64_t seed, const char *s, size_t len);

typedef struct mv_idtable {
    uint32_t         n;
    uint32_t         cap;        /* slots; power of two */
    const uint32_t  *offsets;    /* n + 1 */
    const char      *bytes;
    const uint32_t  *slots;      /* cap */
    uint64_t         seed;       /* hash seed the slots were built with */
} mv_idtable_t;

/* Index of id s[0..len) in t, or -1 when absent. */
int64_t mv_idtable_find(const mv_idtable_t *t, const char *s, size_t len);

/* Pointer to id i's bytes; *len receives its length.  i < t->n. */
const char *mv_idtable_get(const mv_idtable_t *t, uint32_t i, size_t *len);

/*
 * Checks a table whose arrays came from outside: offsets start at 0, grow,
 * stay within bytes_len; every id is valid; cap is a power of two >= 2n
 * (>= 8); exactly n slots are used, each holding a distinct index + 1 <= n;
 * every id is found at its own index (which also proves ids are unique),
 * with at most 16 * n + 64 slots visited in total (so a hostile table cannot
 * make validation quadratic).  Returns MV_OK or MV_ERR with the first
 * problem.
 */
int mv_idtable_validate(const mv_idtable_t *t, size_t bytes_len,
    mv_err_t *err);

/*
 * Slot count the builder uses for n ids (power of two, >= 2n, >= 8).
 */
uint32_t mv_idtable_capacity(uint32_t n);

/*
 * Builds the arrays of a table for n ids into caller memory: offsets (n + 1),
 * bytes (sum of lengths) and slots (mv_idtable_capacity(n)).  Returns MV_OK,
 * or MV_ERR naming the first invalid or duplicate id.
 */
int mv_idtable_build(const char *const *ids, uint32_t n, uint32_t *offsets,
    char *bytes, uint32_t *slots, mv_err_t *err);

/* mv_idtable_build with the slots probed from mv_id_hash_seeded(seed, id). */
int mv_idtable_build_seeded(const char *const *ids, uint32_t n,
    uint64_t seed, uint32_t *offsets, char *bytes, uint32_t *slots,
    mv_err_t *err);

#ifdef __cplusplus
}
#endif

#endif /* MV_IDS_H */
