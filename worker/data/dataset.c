/*
 * dataset.c -- interaction datasets: the container, adding and merging
 * interactions, and the names of formats and action weights (see dataset.h
 * for the contract; reading and writing files is dataset_io.c, the line
 * formats dataset_formats.c, splits dataset_split.c, matrix views
 * dataset_matrix.c).
 *
 * Users and items are two id maps (idmap.h).  The (user, item) pair index
 * that merges repeated pairs is the same kind of table over interaction
 * indices, the pair hashed with MurmurHash3's finaliser after a random seed
 * is XORed in; it lives only while a dataset is being built (a loaded
 * dataset drops it, the next mvw_dataset_add rebuilds it).
 *
 * Adding an interaction first reserves room in every array it may touch,
 * then writes: a failed add leaves the dataset exactly as it was.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/dataset_internal.h"


static uint64_t
fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;

    return k;
}


/* ---- the (user, item) pair index ----------------------------------------- */

static uint64_t
pair_key(uint32_t user, uint32_t item)
{
    return (uint64_t) user << 32 | item;
}


static size_t
pair_slot(const mvw_pairs_t *p, uint32_t user, uint32_t item)
{
    return (size_t) fmix64(pair_key(user, item) ^ p->seed) & (p->cap - 1);
}


/* Interaction index of a pair of d, or -1. */
static int64_t
pairs_find(const mvw_dataset_t *d, uint32_t user, uint32_t item)
{
    const mvw_pairs_t  *p = &d->pairs;
    size_t              h, v;

    if (p->cap == 0) {
        return -1;
    }
    h = pair_slot(p, user, item);
    while ((v = p->slots[h]) != 0) {
        if (d->x[v - 1].user == user && d->x[v - 1].item == item) {
            return (int64_t) v - 1;
        }
        h = (h + 1) & (p->cap - 1);
    }

    return -1;
}


/* Enters interaction idx of x (a pair not in the index yet). */
static void
pairs_put(mvw_pairs_t *p, const mvw_interaction_t *x, size_t idx)
{
    size_t  h = pair_slot(p, x->user, x->item);

    while (p->slots[h] != 0) {
        h = (h + 1) & (p->cap - 1);
    }
    p->slots[h] = idx + 1;
}


/* Makes the index hold every interaction of d with room for want in all. */
static int
pairs_reserve(mvw_dataset_t *d, size_t want)
{
    mvw_pairs_t  np;
    size_t       cap;

    if (d->pairs.cap != 0 && want <= d->pairs.cap / 2) {
        return MV_OK;
    }
    cap = d->pairs.cap ? d->pairs.cap : 64;
    while (cap / 2 < want) {
        if (cap > SIZE_MAX / 2 / sizeof(size_t)) {
            return MV_ERR;
        }
        cap *= 2;
    }

    np.cap = cap;
    np.seed = d->pairs.cap ? d->pairs.seed : mvw_hash_seed_random(d);
    np.slots = calloc(cap, sizeof(size_t));
    if (np.slots == NULL) {
        return MV_ERR;
    }
    for (size_t j = 0; j < d->n; j++) {
        pairs_put(&np, &d->x[j], j);
    }
    free(d->pairs.slots);
    d->pairs = np;

    return MV_OK;
}


void
mvw_dataset_drop_pairs(mvw_dataset_t *d)
{
    free(d->pairs.slots);
    memset(&d->pairs, 0, sizeof(d->pairs));
}


/* ---- datasets ------------------------------------------------------------ */

void
mvw_dataset_init(mvw_dataset_t *d)
{
    memset(d, 0, sizeof(*d));
    mvw_idmap_init(&d->users);
    mvw_idmap_init(&d->items);
}


void
mvw_dataset_free(mvw_dataset_t *d)
{
    mvw_idmap_free(&d->users);
    mvw_idmap_free(&d->items);
    free(d->x);
    free(d->pairs.slots);
    mvw_dataset_init(d);
}


int
mvw_dataset_reserve(mvw_dataset_t *d, size_t want)
{
    mvw_interaction_t  *nx;
    size_t              ncap;

    if (want <= d->cap) {
        return MV_OK;
    }
    ncap = d->cap ? d->cap : 256;
    while (ncap < want) {
        if (ncap > SIZE_MAX / 2 / sizeof(mvw_interaction_t)) {
            return MV_ERR;
        }
        ncap *= 2;
    }
    nx = realloc(d->x, ncap * sizeof(mvw_interaction_t));
    if (nx == NULL) {
        return MV_ERR;
    }
    d->x = nx;
    d->cap = ncap;

    return MV_OK;
}


int
mvw_dataset_add_bytes(mvw_dataset_t *d, const char *us, size_t ulen,
    const char *is, size_t ilen, float weight, int64_t time_ms, mv_err_t *err)
{
    int64_t             fu, fi, fp = -1;
    mvw_interaction_t  *x;

    if (!mv_id_valid(us, ulen)) {
        return mv_err_set(err, "user id must be " MVW_ID_RULE);
    }
    if (!mv_id_valid(is, ilen)) {
        return mv_err_set(err, "item id must be " MVW_ID_RULE);
    }
    if (!isfinite(weight) || !(weight > 0.0f)) {
        return mv_err_set(err, "weight must be finite and > 0");
    }

    fu = mvw_idmap_find(&d->users, us, ulen);
    fi = mvw_idmap_find(&d->items, is, ilen);
    if (fu >= 0 && fi >= 0) {
        /* A loaded or split dataset has no pair index yet. */
        if (pairs_reserve(d, d->n + 1) != MV_OK) {
            return mv_err_set(err, "out of memory");
        }
        fp = pairs_find(d, (uint32_t) fu, (uint32_t) fi);
    }
    if (fp >= 0) {
        float  sum;

        x = &d->x[fp];
        sum = x->weight + weight;
        if (!isfinite(sum)) {
            return mv_err_set(err, "the summed weight of the repeated pair "
                              "is not finite");
        }
        x->weight = sum;
        if (time_ms > x->time_ms) {
            x->time_ms = time_ms;
        }
        return MV_OK;
    }

    if (fu < 0 && d->users.n >= MVW_IDMAP_MAX - 1) {
        return mv_err_set(err, "too many users (at most %u)",
                          MVW_IDMAP_MAX - 2);
    }
    if (fi < 0 && d->items.n >= MVW_IDMAP_MAX - 1) {
        return mv_err_set(err, "too many items (at most %u)",
                          MVW_IDMAP_MAX - 2);
    }
    if ((fu < 0 && mvw_idmap_reserve(&d->users, ulen) != MV_OK)
        || (fi < 0 && mvw_idmap_reserve(&d->items, ilen) != MV_OK)
        || mvw_dataset_reserve(d, d->n + 1) != MV_OK
        || pairs_reserve(d, d->n + 1) != MV_OK)
    {
        return mv_err_set(err, "out of memory");
    }

    if (fu < 0) {
        fu = mvw_idmap_append(&d->users, us, ulen);
    }
    if (fi < 0) {
        fi = mvw_idmap_append(&d->items, is, ilen);
    }
    x = &d->x[d->n];
    x->user = (uint32_t) fu;
    x->item = (uint32_t) fi;
    x->weight = weight;
    x->time_ms = time_ms;
    pairs_put(&d->pairs, x, d->n);
    d->n++;

    return MV_OK;
}


int
mvw_dataset_add(mvw_dataset_t *d, const char *user, const char *item,
    float weight, int64_t time_ms, mv_err_t *err)
{
    return mvw_dataset_add_bytes(d, user, strnlen(user, MV_ID_MAX + 1),
                                 item, strnlen(item, MV_ID_MAX + 1), weight,
                                 time_ms, err);
}


void
mvw_action_weights_default(float w[MV_ACTION_TYPES])
{
    w[MV_ACTION_VIEW] = 1.0f;
    w[MV_ACTION_CLICK] = 2.0f;
    w[MV_ACTION_LIKE] = 3.0f;
    w[MV_ACTION_SHARE] = 3.0f;
    w[MV_ACTION_ADD_TO_CART] = 4.0f;
    w[MV_ACTION_PURCHASE] = 5.0f;
    w[MV_ACTION_DISLIKE] = 0.0f;
}


static const char *const format_names[] = {
    "movielens", "csv", "tsv", "jsonl"
};


int
mvw_format_from_name(const char *name, mvw_format_t *fmt, mv_err_t *err)
{
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]);
         i++)
    {
        if (strcmp(name, format_names[i]) == 0) {
            *fmt = (mvw_format_t) i;
            return MV_OK;
        }
    }

    return mv_err_set(err, "unknown dataset format \"%.64s\" (movielens, "
                      "csv, tsv, jsonl)", name);
}


const char *
mvw_format_name(mvw_format_t fmt)
{
    if ((unsigned) fmt >= sizeof(format_names) / sizeof(format_names[0])) {
        return "?";
    }

    return format_names[fmt];
}
