/*
 * idmap.c -- the growable string id <-> dense index map (see idmap.h).
 *
 * Every id is kept NUL-terminated in one growing byte array, with its start
 * in offsets[index]; ids are found through open addressing with linear
 * probing on mv_id_hash_seeded, at load factor <= 1/2.  The seed is drawn
 * from getrandom() per map, because user and item ids of an action log or a
 * catalogue are chosen by clients and must not be able to make loading
 * quadratic; it only decides where ids sit in the slots, never their
 * indices, so everything observable stays deterministic.
 *
 * Growing reserves before it writes (mvw_idmap_reserve, then
 * mvw_idmap_append), so a caller that must change several structures at once
 * reserves in all of them first and cannot fail half-way.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "data/idmap.h"


uint64_t
mvw_hash_seed_random(const void *salt)
{
    uint64_t  seed = 0;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed)) {
        /* No entropy yet (early boot): the address and the clock still
           keep a precomputed set of colliding ids from working. */
        seed = (uint64_t) (uintptr_t) salt ^ (uint64_t) time(NULL)
               ^ (uint64_t) clock();
    }

    return seed;
}



void
mvw_idmap_init(mvw_idmap_t *m)
{
    memset(m, 0, sizeof(*m));
    m->seed = mvw_hash_seed_random(m);
}


void
mvw_idmap_free(mvw_idmap_t *m)
{
    free(m->offsets);
    free(m->bytes);
    free(m->slots);
    mvw_idmap_init(m);
}


int64_t
mvw_idmap_find(const mvw_idmap_t *m, const char *s, size_t len)
{
    uint32_t  mask, h, v;

    if (m->slot_cap == 0) {
        return -1;
    }
    mask = m->slot_cap - 1;
    h = (uint32_t) mv_id_hash_seeded(m->seed, s, len) & mask;
    while ((v = m->slots[h]) != 0) {
        size_t  off = m->offsets[v - 1];

        if (m->offsets[v] - off - 1 == len
            && memcmp(m->bytes + off, s, len) == 0)
        {
            return (int64_t) v - 1;
        }
        h = (h + 1) & mask;
    }

    return -1;
}


const char *
mvw_idmap_get(const mvw_idmap_t *m, uint32_t i)
{
    return m->bytes + m->offsets[i];
}


static void
idmap_slot_put(const mvw_idmap_t *m, uint32_t *slots, uint32_t cap,
    uint32_t i)
{
    size_t    off = m->offsets[i];
    size_t    len = m->offsets[i + 1] - off - 1;
    uint32_t  mask = cap - 1;
    uint32_t  h = (uint32_t) mv_id_hash_seeded(m->seed, m->bytes + off, len)
                  & mask;

    while (slots[h] != 0) {
        h = (h + 1) & mask;
    }
    slots[h] = i + 1;
}


int
mvw_idmap_reserve(mvw_idmap_t *m, size_t len)
{
    if (m->n >= MVW_IDMAP_MAX - 1) {
        return MV_ERR;
    }

    if (m->n + 2 > m->cap) {
        uint32_t  ncap = m->cap ? m->cap * 2 : 64;
        size_t   *no = realloc(m->offsets, (size_t) ncap * sizeof(size_t));

        if (no == NULL) {
            return MV_ERR;
        }
        if (m->cap == 0) {
            no[0] = 0;
        }
        m->offsets = no;
        m->cap = ncap;
    }

    if (len + 1 > m->bytes_cap - m->bytes_len) {
        size_t  ncap = m->bytes_cap ? m->bytes_cap : 1024;
        char   *nb;

        while (ncap - m->bytes_len < len + 1) {
            if (ncap > SIZE_MAX / 2) {
                return MV_ERR;
            }
            ncap *= 2;
        }
        nb = realloc(m->bytes, ncap);
        if (nb == NULL) {
            return MV_ERR;
        }
        m->bytes = nb;
        m->bytes_cap = ncap;
    }

    if ((uint64_t) (m->n + 1) * 2 > m->slot_cap) {
        uint32_t   ncap = m->slot_cap ? m->slot_cap * 2 : 64;
        uint32_t  *ns = calloc(ncap, sizeof(uint32_t));

        if (ns == NULL) {
            return MV_ERR;
        }
        for (uint32_t i = 0; i < m->n; i++) {
            idmap_slot_put(m, ns, ncap, i);
        }
        free(m->slots);
        m->slots = ns;
        m->slot_cap = ncap;
    }

    return MV_OK;
}


uint32_t
mvw_idmap_append(mvw_idmap_t *m, const char *s, size_t len)
{
    uint32_t  i = m->n;

    memcpy(m->bytes + m->bytes_len, s, len);
    m->bytes[m->bytes_len + len] = '\0';
    m->bytes_len += len + 1;
    m->offsets[i + 1] = m->bytes_len;
    m->n = i + 1;
    idmap_slot_put(m, m->slots, m->slot_cap, i);

    return i;
}


int
mvw_idmap_intern(mvw_idmap_t *m, const char *s, size_t len, uint32_t *idx,
    int *added, mv_err_t *err)
{
    int64_t  found;

    if (!mv_id_valid(s, len)) {
        return mv_err_set(err, "invalid id (want " MVW_ID_RULE ")");
    }
    found = mvw_idmap_find(m, s, len);
    if (found >= 0) {
        *idx = (uint32_t) found;
        if (added != NULL) {
            *added = 0;
        }
        return MV_OK;
    }
    if (m->n >= MVW_IDMAP_MAX - 1) {
        return mv_err_set(err, "too many ids (at most %u)", MVW_IDMAP_MAX - 2);
    }
    if (mvw_idmap_reserve(m, len) != MV_OK) {
        return mv_err_set(err, "out of memory");
    }
    *idx = mvw_idmap_append(m, s, len);
    if (added != NULL) {
        *added = 1;
    }

    return MV_OK;
}


const char **
mvw_idmap_pointers(const mvw_idmap_t *m)
{
    const char  **ids = malloc((m->n ? m->n : 1) * sizeof(char *));

    if (ids == NULL) {
        return NULL;
    }
    for (uint32_t i = 0; i < m->n; i++) {
        ids[i] = m->bytes + m->offsets[i];
    }

    return ids;
}


int
mvw_idmap_copy(mvw_idmap_t *dst, const mvw_idmap_t *src, mv_err_t *err)
{
    mvw_idmap_t  c;

    mvw_idmap_free(dst);
    if (src->n == 0) {
        return MV_OK;
    }

    memset(&c, 0, sizeof(c));
    c.n = src->n;
    c.cap = src->n + 1;
    c.bytes_len = src->bytes_len;
    c.bytes_cap = src->bytes_len;
    c.slot_cap = src->slot_cap;
    c.seed = src->seed;
    c.offsets = malloc((size_t) c.cap * sizeof(size_t));
    c.bytes = malloc(c.bytes_cap);
    c.slots = malloc((size_t) c.slot_cap * sizeof(uint32_t));
    if (c.offsets == NULL || c.bytes == NULL || c.slots == NULL) {
        free(c.offsets);
        free(c.bytes);
        free(c.slots);
        return mv_err_set(err, "out of memory");
    }
    memcpy(c.offsets, src->offsets, (size_t) c.cap * sizeof(size_t));
    memcpy(c.bytes, src->bytes, c.bytes_len);
    memcpy(c.slots, src->slots, (size_t) c.slot_cap * sizeof(uint32_t));
    *dst = c;

    return MV_OK;
}


int
mvw_idmap_equal(const mvw_idmap_t *a, const mvw_idmap_t *b)
{
    if (a->n != b->n || a->bytes_len != b->bytes_len) {
        return 0;
    }
    if (a->n == 0) {
        return 1;
    }

    return memcmp(a->offsets, b->offsets, (a->n + 1) * sizeof(size_t)) == 0
           && memcmp(a->bytes, b->bytes, a->bytes_len) == 0;
}
