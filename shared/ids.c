/*
 * ids.c -- opaque string ids and the id table (see ids.h).
 *
 * The table is three flat arrays (offsets, bytes, slots) so that the bytes
 * of a snapshot section are the table itself: a mapped file looks ids up in
 * place, without building anything.  Slots use open addressing with linear
 * probing at load factor <= 1/2, which keeps probe sequences short and the
 * lookup a couple of cache lines.
 *
 * mv_id_hash is FNV-1a over the bytes, then the length is folded in and the
 * result goes through the 64-bit finaliser of MurmurHash3 (fmix64).  FNV-1a
 * alone is simple and stable but mixes its high input bytes poorly into the
 * low bits the table masks with; the finaliser gives full avalanche (every
 * input bit flips each output bit with probability close to 1/2).  The hash
 * is part of the snapshot format: changing it requires a new format version.
 * A table's seed is XORed into the FNV start state and, rotated, into the
 * state before the finaliser; with seed 0 it is the plain hash.  A secret
 * random seed per table (the snapshot writer's) makes collisions impossible
 * to precompute for whoever chooses the ids.
 *
 * Validation of a table that came from a file must not be fooled or slowed
 * down by a hostile file.  mv_idtable_validate therefore looks every id up
 * under a total probe budget (16 per id; a correct table built with this
 * hash needs about 1.5), so the check costs O(cap + n) whatever the bytes
 * are.  The budget is part of the format: a writer must not produce tables
 * beyond it (with a load factor <= 1/2 and this hash it cannot, in
 * practice).  Finding every id at its own index, with exactly n used slots
 * each holding an index <= n, proves by counting that every index is stored
 * exactly once and that ids are unique: no scratch memory is needed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* strnlen (POSIX.1-2008) */
#endif

#include <string.h>

#include "ids.h"


#define MV_FNV_OFFSET   0xcbf29ce484222325ULL
#define MV_FNV_PRIME    0x00000100000001b3ULL

/*
 * Most slots that looking every id of a valid table up may visit in total:
 * 16 per id plus a constant.  At load factor 1/2 linear probing visits 1.5
 * slots per successful lookup on average.
 */
#define MV_IDTABLE_MAX_PROBES(n)  (16 * (uint64_t) (n) + 64)


static int
id_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':'
           || c == '-';
}


/* 1 when s[0..len) is a valid id: 1..MV_ID_MAX bytes of [A-Za-z0-9._:-]. */
int
mv_id_valid(const char *s, size_t len)
{
    size_t i;

    if (s == NULL || len == 0 || len > MV_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!id_char_ok((unsigned char) s[i])) {
            return 0;
        }
    }

    return 1;
}


/* The format's stable keyed 64-bit hash: FNV-1a, length, fmix64. */
uint64_t
mv_id_hash_seeded(uint64_t seed, const char *s, size_t len)
{
    uint64_t  h = MV_FNV_OFFSET ^ seed;
    size_t    i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) s[i];
        h *= MV_FNV_PRIME;
    }

    h ^= (uint64_t) len ^ ((seed << 32) | (seed >> 32));

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;

    return h;
}


/* The format's stable 64-bit hash of an id (seed 0). */
uint64_t
mv_id_hash(const char *s, size_t len)
{
    return mv_id_hash_seeded(0, s, len);
}


/*
 * Linear probe for s[0..len) from its home slot.  Returns the index or -1;
 * *probes is increased by the number of slots visited.
 */
static int64_t
idtable_probe(const mv_idtable_t *t, const char *s, size_t len,
    uint64_t *probes)
{
    uint32_t  mask, pos, probe, slot, idx, start, end;

    if (t->cap == 0 || len == 0 || len > MV_ID_MAX) {
        return -1;
    }

    mask = t->cap - 1;
    pos = (uint32_t) (mv_id_hash_seeded(t->seed, s, len) & mask);

    for (probe = 0; probe < t->cap; probe++) {
        slot = t->slots[pos];
        if (slot == 0) {
            break;
        }

        idx = slot - 1;
        if (idx < t->n) {
            start = t->offsets[idx];
            end = t->offsets[idx + 1];
            if (end - start == len && memcmp(t->bytes + start, s, len) == 0) {
                *probes += probe + 1;
                return idx;
            }
        }

        pos = (pos + 1) & mask;
    }

    *probes += probe + 1;
    return -1;
}


/* Index of id s[0..len) in t, or -1 when absent. */
int64_t
mv_idtable_find(const mv_idtable_t *t, const char *s, size_t len)
{
    uint64_t  probes = 0;

    return idtable_probe(t, s, len, &probes);
}


/* Pointer to id i's bytes; *len receives its length.  i < t->n. */
const char *
mv_idtable_get(const mv_idtable_t *t, uint32_t i, size_t *len)
{
    *len = t->offsets[i + 1] - t->offsets[i];
    return t->bytes + t->offsets[i];
}


/* Slot count for n ids: a power of two, >= 2n, >= 8. */
uint32_t
mv_idtable_capacity(uint32_t n)
{
    uint64_t  cap = 8;

    while (cap < 2 * (uint64_t) n) {
        cap <<= 1;
    }

    /* n <= 2^31 keeps cap within 32 bits; larger n cannot be indexed. */
    return cap > UINT32_MAX ? 0 : (uint32_t) cap;
}


/*
 * Checks a table whose arrays came from outside (see ids.h).  Bytes are
 * read only within offsets already checked against bytes_len; slots only
 * below cap.
 */
int
mv_idtable_validate(const mv_idtable_t *t, size_t bytes_len, mv_err_t *err)
{
    uint64_t  probes = 0;
    uint32_t  i, used, slot, prev, cur;
    size_t    len;
    int64_t   found;

    if (t->cap < 8 || (t->cap & (t->cap - 1)) != 0) {
        return mv_err_set(err, "slot count %u is not a power of two >= 8",
                          t->cap);
    }
    if ((uint64_t) t->cap < 2 * (uint64_t) t->n) {
        return mv_err_set(err, "slot count %u < 2 * %u ids", t->cap, t->n);
    }

    if (t->offsets[0] != 0) {
        return mv_err_set(err, "id offsets start at %u, not 0",
                          t->offsets[0]);
    }
    for (i = 0; i < t->n; i++) {
        prev = t->offsets[i];
        cur = t->offsets[i + 1];
        if (cur <= prev || cur - prev > MV_ID_MAX) {
            return mv_err_set(err, "id %u: length %lld not in 1..%d", i,
                              (long long) cur - (long long) prev, MV_ID_MAX);
        }
        if (cur > bytes_len) {
            return mv_err_set(err, "id %u: ends at %u beyond %zu id bytes",
                              i, cur, bytes_len);
        }
        if (!mv_id_valid(t->bytes + prev, cur - prev)) {
            return mv_err_set(err, "id %u: invalid character", i);
        }
    }

    /* Used slots: exactly n, each an index + 1 <= n. */
    used = 0;
    for (i = 0; i < t->cap; i++) {
        slot = t->slots[i];
        if (slot == 0) {
            continue;
        }
        if (slot > t->n) {
            return mv_err_set(err, "slot %u holds index %u > %u ids", i,
                              slot - 1, t->n);
        }
        used++;
    }
    if (used != t->n) {
        return mv_err_set(err, "%u slots used for %u ids", used, t->n);
    }

    /* Every id at its own index, within a total probe budget so that a
       hostile table cannot make this quadratic. */
    for (i = 0; i < t->n; i++) {
        const char *id = mv_idtable_get(t, i, &len);

        found = idtable_probe(t, id, len, &probes);
        if (probes > MV_IDTABLE_MAX_PROBES(t->n)) {
            return mv_err_set(err, "probe distances too long (over %llu "
                              "probes for %u ids)",
                              (unsigned long long) MV_IDTABLE_MAX_PROBES(t->n),
                              t->n);
        }
        if (found != (int64_t) i) {
            if (found < 0) {
                return mv_err_set(err, "id %u (%.*s) not found through the "
                                  "slots", i, (int) len, id);
            }
            return mv_err_set(err, "id %u (%.*s) found at index %lld "
                              "(duplicate id or wrong slot)", i, (int) len,
                              id, (long long) found);
        }
    }

    return MV_OK;
}


/* Builds the arrays of a table for n ids into caller memory (see ids.h). */
int
mv_idtable_build(const char *const *ids, uint32_t n, uint32_t *offsets,
    char *bytes, uint32_t *slots, mv_err_t *err)
{
    return mv_idtable_build_seeded(ids, n, 0, offsets, bytes, slots, err);
}


/* mv_idtable_build with a hash seed (see ids.h). */
int
mv_idtable_build_seeded(const char *const *ids, uint32_t n, uint64_t seed,
    uint32_t *offsets, char *bytes, uint32_t *slots, mv_err_t *err)
{
    mv_idtable_t  t;
    uint32_t      i, cap, mask, pos, other;
    uint64_t      total = 0;
    size_t        len;

    cap = mv_idtable_capacity(n);
    if (cap == 0) {
        return mv_err_set(err, "too many ids (%u)", n);
    }

    offsets[0] = 0;
    for (i = 0; i < n; i++) {
        len = ids[i] == NULL ? 0 : strnlen(ids[i], MV_ID_MAX + 1);
        if (!mv_id_valid(ids[i], len)) {
            return mv_err_set(err, "id %u is invalid (1..%d characters of "
                              "[A-Za-z0-9._:-])", i, MV_ID_MAX);
        }
        memcpy(bytes + total, ids[i], len);
        total += len;
        if (total > UINT32_MAX) {
            return mv_err_set(err, "ids exceed 4 GiB");
        }
        offsets[i + 1] = (uint32_t) total;
    }

    memset(slots, 0, (size_t) cap * sizeof(uint32_t));
    mask = cap - 1;

    t.n = n;
    t.cap = cap;
    t.offsets = offsets;
    t.bytes = bytes;
    t.slots = slots;
    t.seed = seed;

    for (i = 0; i < n; i++) {
        const char *id = mv_idtable_get(&t, i, &len);

        pos = (uint32_t) (mv_id_hash_seeded(seed, id, len) & mask);
        while (slots[pos] != 0) {
            other = slots[pos] - 1;
            if (offsets[other + 1] - offsets[other] == len
                && memcmp(bytes + offsets[other], id, len) == 0)
            {
                return mv_err_set(err, "duplicate id \"%.*s\" (%u and %u)",
                                  (int) len, id, other, i);
            }
            pos = (pos + 1) & mask;
        }
        slots[pos] = i + 1;
    }

    return MV_OK;
}
