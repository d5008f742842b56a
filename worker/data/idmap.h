/*
 * idmap.h -- a growable map between string ids and dense indices 0..n-1,
 * in order of first appearance: the users and items of a dataset, the
 * items, categories and users of the catalogue and of the online trainer.
 *
 * Ids are what shared/ids.h accepts (MVW_ID_RULE).  Indices never change
 * once given, and an id's bytes stay where they are until the next id is
 * added (mvw_idmap_get returns a pointer into the map).  Lookups hash with
 * a seed drawn at random per map, so that ids chosen by clients cannot be
 * crafted to collide; the seed decides only where ids sit in the hash
 * table, never their indices, so everything observable is deterministic.
 *
 * Adding is all-or-nothing: mvw_idmap_intern leaves the map unchanged when
 * it fails, and a caller that must grow several structures together
 * reserves in each first (mvw_idmap_reserve) and then appends
 * (mvw_idmap_append), which cannot fail.  No global state.
 */
#ifndef MVW_IDMAP_H
#define MVW_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "ids.h"
#include "mv_common.h"

/* A map holds at most MVW_IDMAP_MAX - 2 ids (its hash table must stay a
   uint32_t power of two). */
#define MVW_IDMAP_MAX       (1u << 30)

/* What a valid id is, for error messages. */
#define MVW_ID_RULE         "1 to 64 bytes of [A-Za-z0-9._:-]"

typedef struct mvw_idmap {
    uint32_t   n;           /* ids; id i is the string bytes + offsets[i] */
    uint32_t   cap;         /* room in offsets (n + 1 <= cap) */
    size_t    *offsets;     /* n + 1 starts; each id is NUL-terminated */
    char      *bytes;
    size_t     bytes_len;
    size_t     bytes_cap;
    uint32_t  *slots;       /* index + 1, 0 = empty */
    uint32_t   slot_cap;    /* power of two or 0 */
    uint64_t   seed;        /* hash seed, random per map */
} mvw_idmap_t;

/*
 * A fresh random 64-bit hash seed (getrandom; without entropy yet, salt's
 * address mixed with the clocks).  For tables keyed by client-chosen data.
 */
uint64_t mvw_hash_seed_random(const void *salt);

/* Initialises an empty map (with a fresh random hash seed). */
void mvw_idmap_init(mvw_idmap_t *m);

/* Frees what m owns and leaves it empty (and initialised). */
void mvw_idmap_free(mvw_idmap_t *m);

/*
 * Index of id s[0..len), adding it as index n when new (*added tells which,
 * when non-NULL).  Returns MV_OK, or MV_ERR for an invalid id (see ids.h),
 * a full map or an allocation failure, with m unchanged.
 */
int mvw_idmap_intern(mvw_idmap_t *m, const char *s, size_t len,
    uint32_t *idx, int *added, mv_err_t *err);

/* Index of id s[0..len), or -1. */
int64_t mvw_idmap_find(const mvw_idmap_t *m, const char *s, size_t len);

/* Id of index i (< m->n), NUL-terminated, owned by the map. */
const char *mvw_idmap_get(const mvw_idmap_t *m, uint32_t i);

/*
 * Makes room for one more id of len bytes, leaving m's contents as they
 * are.  Returns MV_OK, or MV_ERR when m is full (m->n >= MVW_IDMAP_MAX - 1)
 * or memory runs out.
 */
int mvw_idmap_reserve(mvw_idmap_t *m, size_t len);

/*
 * Adds s[0..len) as index m->n and returns that index.  The id must be
 * valid and not in m, and mvw_idmap_reserve(m, len) must have succeeded
 * with no other change of m since; then it cannot fail.
 */
uint32_t mvw_idmap_append(mvw_idmap_t *m, const char *s, size_t len);

/*
 * The ids of m in index order as a malloc'd array of m->n pointers into m
 * (one element at least, so an empty map gives a valid array), for inputs
 * that take a "const char *const *" (mv_snapshot_input_t).  Valid until m
 * changes; the caller frees the array, not the ids.  NULL when memory runs
 * out.
 */
const char **mvw_idmap_pointers(const mvw_idmap_t *m);

/* Makes dst (initialised; its contents are freed) an exact copy of src.
   Returns MV_OK or MV_ERR (allocation failure, dst then empty). */
int mvw_idmap_copy(mvw_idmap_t *dst, const mvw_idmap_t *src, mv_err_t *err);

/* 1 when a and b hold the same ids at the same indices. */
int mvw_idmap_equal(const mvw_idmap_t *a, const mvw_idmap_t *b);

#endif /* MVW_IDMAP_H */
