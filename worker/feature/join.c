/*
 * join.c -- the feature worker's item table and join (see join.h for the
 * behaviour).
 *
 * Rows are indexed by an id map (data/idmap.h); per-row arrays grow
 * together before a new id is interned, so a failed allocation leaves
 * the table as it was: a record is applied whole or not at all.  A row's
 * tags live in one malloc'd block of NUL-terminated strings, replaced
 * whole when a features record of the item comes again; categories are
 * interned once in their own map.
 *
 * The changed list holds each row whose count moved since the last commit
 * or rollback once (the ROW_CHANGED flag says it is listed), so a commit
 * costs what changed, not the table.
 */
#include <stdlib.h>
#include <string.h>

#include "data/idmap.h"
#include "feature/join.h"
#include "snapshot.h"               /* MV_CATEGORY_NONE */

#define ROW_FEATURES   0x1u         /* a features record was applied */
#define ROW_DELETED    0x2u         /* ... saying deleted */
#define ROW_CHANGED    0x4u         /* listed in changed[] */

typedef struct {
    uint64_t  count;                /* current */
    uint64_t  committed;
    int64_t   created_at_ms;
    uint32_t  category;             /* index in categories, or NONE */
    uint32_t  flags;
    uint32_t  n_tags;
    char     *tags;                 /* n_tags NUL-terminated strings */
} join_row_t;

struct mvw_join {
    uint32_t          dim;
    mvw_idmap_t       items;
    mvw_idmap_t       categories;
    join_row_t       *rows;
    uint32_t          cap;
    uint32_t         *changed;      /* row indices, cap of them */
    uint32_t          n_changed;
    uint32_t          with_features;
    float            *embedding;    /* scratch for parsing items */
    mv_item_event_t   item;         /* scratch (large) */
};


mvw_join_t *
mvw_join_new(uint32_t dim, mv_err_t *err)
{
    mvw_join_t  *j;

    if (dim > MV_DIM_MAX) {
        mv_err_set(err, "dimension %u is above %d", dim, MV_DIM_MAX);
        return NULL;
    }
    j = calloc(1, sizeof(*j));
    if (j != NULL) {
        j->embedding = malloc(sizeof(float) * (dim ? dim : MV_DIM_MAX));
    }
    if (j == NULL || j->embedding == NULL) {
        free(j);
        mv_err_set(err, "out of memory");
        return NULL;
    }
    j->dim = dim;
    mvw_idmap_init(&j->items);
    mvw_idmap_init(&j->categories);
    return j;
}


void
mvw_join_free(mvw_join_t *j)
{
    if (j == NULL) {
        return;
    }
    for (uint32_t i = 0; i < j->items.n; i++) {
        free(j->rows[i].tags);
    }
    mvw_idmap_free(&j->items);
    mvw_idmap_free(&j->categories);
    free(j->rows);
    free(j->changed);
    free(j->embedding);
    free(j);
}


/* Makes room for n rows in every per-row array. */
static int
rows_grow(mvw_join_t *j, size_t n, mv_err_t *err)
{
    size_t   cap = j->cap ? j->cap : 256;
    void    *q;

    if (n <= j->cap) {
        return MV_OK;
    }
    while (cap < n) {
        cap *= 2;
    }
    if (cap > MVW_IDMAP_MAX) {
        return mv_err_set(err, "more than %u items", MVW_IDMAP_MAX - 2);
    }
    q = realloc(j->rows, cap * sizeof(*j->rows));
    if (q == NULL) {
        return mv_err_set(err, "out of memory for %zu items", cap);
    }
    j->rows = q;
    q = realloc(j->changed, cap * sizeof(*j->changed));
    if (q == NULL) {
        return mv_err_set(err, "out of memory for %zu items", cap);
    }
    j->changed = q;
    j->cap = (uint32_t) cap;
    return MV_OK;
}


/* Row of id, created empty when new; MV_OK or MV_ERR (table unchanged). */
static int
row_of(mvw_join_t *j, const char *id, size_t len, uint32_t *idx,
    mv_err_t *err)
{
    int64_t  found = mvw_idmap_find(&j->items, id, len);
    int      added;

    if (found >= 0) {
        *idx = (uint32_t) found;
        return MV_OK;
    }
    if (rows_grow(j, (size_t) j->items.n + 1, err) != MV_OK
        || mvw_idmap_intern(&j->items, id, len, idx, &added, err) != MV_OK)
    {
        return MV_ERR;
    }
    memset(&j->rows[*idx], 0, sizeof(j->rows[*idx]));
    j->rows[*idx].category = MV_CATEGORY_NONE;
    return MV_OK;
}


/* The tags of ev packed into one block (NULL when there are none). */
static int
pack_tags(const mv_item_event_t *ev, char **out, mv_err_t *err)
{
    size_t  size = 0, at = 0, n;
    char   *p;

    *out = NULL;
    for (uint32_t i = 0; i < ev->n_tags; i++) {
        size += strlen(ev->tags[i]) + 1;
    }
    if (size == 0) {
        return MV_OK;
    }
    p = malloc(size);
    if (p == NULL) {
        return mv_err_set(err, "out of memory");
    }
    for (uint32_t i = 0; i < ev->n_tags; i++) {
        n = strlen(ev->tags[i]) + 1;
        memcpy(p + at, ev->tags[i], n);
        at += n;
    }
    *out = p;
    return MV_OK;
}


int
mvw_join_item(mvw_join_t *j, const char *payload, size_t len,
    int64_t now_ms, mv_err_t *err)
{
    mv_item_event_t   *ev = &j->item;
    mv_event_error_t   e;
    join_row_t        *r;
    uint32_t           i, cat = MV_CATEGORY_NONE;
    char              *tags;
    int                added;

    if (mv_item_parse(payload, len, MV_ORIGIN_DATA, now_ms, j->dim,
                      j->embedding, j->dim ? j->dim : MV_DIM_MAX, ev, &e)
        != MV_OK)
    {
        return mv_err_set(err, "features record refused: %s: %s", e.error,
                          e.detail);
    }

    /* everything that can fail first: the category, the tags, the row */
    if ((ev->category[0] != '\0'
         && mvw_idmap_intern(&j->categories, ev->category,
                             strlen(ev->category), &cat, &added, err)
            != MV_OK)
        || pack_tags(ev, &tags, err) != MV_OK)
    {
        return MVW_JOIN_FAILED;
    }
    if (row_of(j, ev->item_id, strlen(ev->item_id), &i, err) != MV_OK) {
        free(tags);
        return MVW_JOIN_FAILED;
    }

    r = &j->rows[i];
    if (!(r->flags & ROW_FEATURES)) {
        j->with_features++;
    }
    free(r->tags);
    r->tags = tags;
    r->n_tags = ev->n_tags;
    r->category = cat;
    r->created_at_ms = ev->created_at_ms;
    r->flags = (r->flags & ROW_CHANGED) | ROW_FEATURES
               | (ev->deleted ? ROW_DELETED : 0);
    return MV_OK;
}


/* Fills f with row r's features. */
static void
features_of(const mvw_join_t *j, const join_row_t *r, mv_item_features_t *f)
{
    const char  *t = r->tags;
    size_t       n;

    memset(f, 0, sizeof(*f));
    if (r->category != MV_CATEGORY_NONE) {
        n = strlen(mvw_idmap_get(&j->categories, r->category));
        memcpy(f->category, mvw_idmap_get(&j->categories, r->category),
               n + 1);
    }
    for (uint32_t k = 0; k < r->n_tags; k++) {
        n = strlen(t);
        memcpy(f->tags[k], t, n + 1);
        t += n + 1;
    }
    f->n_tags = r->n_tags;
    f->created_at_ms = r->created_at_ms;
    f->deleted = (r->flags & ROW_DELETED) != 0;
}


static void
mark_changed(mvw_join_t *j, uint32_t i)
{
    if (!(j->rows[i].flags & ROW_CHANGED)) {
        j->rows[i].flags |= ROW_CHANGED;
        j->changed[j->n_changed++] = i;
    }
}


int
mvw_join_action(mvw_join_t *j, const char *payload, size_t len,
    int64_t now_ms, mv_example_t *x, mv_err_t *err)
{
    mv_event_error_t   e;
    join_row_t        *r;
    uint32_t           i;

    memset(x, 0, sizeof(*x));
    if (mv_action_parse(payload, len, MV_ORIGIN_DATA, now_ms, &x->action,
                        &e) != MV_OK)
    {
        return mv_err_set(err, "action record refused: %s: %s", e.error,
                          e.detail);
    }
    if (row_of(j, x->action.item_id, strlen(x->action.item_id), &i, err)
        != MV_OK)
    {
        return MVW_JOIN_FAILED;
    }
    r = &j->rows[i];
    if (r->count >= MV_EXAMPLE_POPULARITY_MAX) {
        mv_err_set(err, "item %s has %llu actions, the most an example can "
                   "carry", x->action.item_id, (unsigned long long) r->count);
        return MVW_JOIN_FAILED;
    }

    r->count++;
    mark_changed(j, i);
    x->popularity = r->count;
    x->has_features = (r->flags & ROW_FEATURES) != 0;
    if (x->has_features) {
        features_of(j, r, &x->features);
    }
    return MV_OK;
}


int
mvw_join_set_count(mvw_join_t *j, const char *id, size_t len,
    uint64_t count, mv_err_t *err)
{
    uint32_t  i;

    if (j->n_changed != 0) {
        return mv_err_set(err, "counts set while %u changed ones are "
                          "pending", j->n_changed);
    }
    if (count > MV_EXAMPLE_POPULARITY_MAX) {
        return mv_err_set(err, "count %llu is above 2^53 - 1",
                          (unsigned long long) count);
    }
    if (!mv_id_valid(id, len)) {
        return mv_err_set(err, "not an item id (" MVW_ID_RULE ")");
    }
    if (row_of(j, id, len, &i, err) != MV_OK) {
        return MVW_JOIN_FAILED;
    }
    j->rows[i].count = count;
    j->rows[i].committed = count;
    return MV_OK;
}


size_t
mvw_join_n_changed(const mvw_join_t *j)
{
    return j->n_changed;
}


const char *
mvw_join_changed(const mvw_join_t *j, size_t k, uint64_t *count)
{
    uint32_t  i = j->changed[k];

    *count = j->rows[i].count;
    return mvw_idmap_get(&j->items, i);
}


void
mvw_join_commit(mvw_join_t *j)
{
    for (uint32_t k = 0; k < j->n_changed; k++) {
        join_row_t  *r = &j->rows[j->changed[k]];

        r->committed = r->count;
        r->flags &= ~ROW_CHANGED;
    }
    j->n_changed = 0;
}


void
mvw_join_rollback(mvw_join_t *j)
{
    for (uint32_t k = 0; k < j->n_changed; k++) {
        join_row_t  *r = &j->rows[j->changed[k]];

        r->count = r->committed;
        r->flags &= ~ROW_CHANGED;
    }
    j->n_changed = 0;
}


uint64_t
mvw_join_count(const mvw_join_t *j, const char *id)
{
    int64_t  i = mvw_idmap_find(&j->items, id, strlen(id));

    return i < 0 ? 0 : j->rows[i].count;
}


void
mvw_join_stats(const mvw_join_t *j, mvw_join_stats_t *st)
{
    st->items = j->items.n;
    st->with_features = j->with_features;
    st->changed = j->n_changed;
}
