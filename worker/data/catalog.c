/*
 * catalog.c -- the in-memory catalogue and the JSONL file loaders (see
 * catalog.h); every line is read by the one item (or user-vector) parser
 * of shared/events.h.
 *
 * The catalogue keeps item, category and user ids in three id maps
 * (idmap.h: one byte array per map, a seeded hash index), so an index is
 * the item's, category's or user's position everywhere.  The per-item and
 * per-user arrays grow by doubling; every check is made and every array
 * (id maps included) reserved before anything is appended, so a rejected
 * record leaves the catalogue as it was, its category included.
 *
 * A loader reads with getline (any line length; the loader refuses lines
 * over MVW_LINE_MAX), counts every line including blank ones so that the
 * reported line numbers match an editor's, and stops at the first problem.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "data/catalog.h"
#include "events.h"


/* ---- the catalogue ------------------------------------------------------- */

void
mvw_catalog_init(mvw_catalog_t *c)
{
    memset(c, 0, sizeof(*c));
    mvw_idmap_init(&c->items);
    mvw_idmap_init(&c->categories);
    mvw_idmap_init(&c->users);
}


void
mvw_catalog_free(mvw_catalog_t *c)
{
    mvw_idmap_free(&c->items);
    free(c->item_vectors);
    free(c->item_meta);
    free(c->item_line);
    mvw_idmap_free(&c->categories);
    mvw_idmap_free(&c->users);
    free(c->user_vectors);
    free(c->user_line);
    mvw_catalog_init(c);
}


/* The capacity to grow to so that want elements fit (0 on overflow). */
static uint32_t
next_cap(uint32_t cap, uint32_t want)
{
    uint64_t  ncap = cap ? cap : 64;

    while (ncap < want) {
        ncap *= 2;
    }

    return ncap > UINT32_MAX ? 0 : (uint32_t) ncap;
}


/* Reallocates *p to ncap elements of sz bytes each. */
static int
resize(void **p, uint32_t ncap, size_t sz)
{
    void  *np;

    if (sz != 0 && ncap > SIZE_MAX / sz) {
        return MV_ERR;
    }
    np = realloc(*p, (size_t) ncap * (sz ? sz : 1));
    if (np == NULL) {
        return MV_ERR;
    }
    *p = np;

    return MV_OK;
}


int
mvw_catalog_category(mvw_catalog_t *c, const char *name, uint32_t *idx,
    mv_err_t *err)
{
    size_t   len = strlen(name);
    int64_t  found;

    if (!mv_id_valid(name, len)) {
        return mv_err_set(err, "invalid category name");
    }
    found = mvw_idmap_find(&c->categories, name, len);
    if (found >= 0) {
        *idx = (uint32_t) found;
        return MV_OK;
    }
    if (c->categories.n >= MV_CATEGORY_NONE - 1) {
        return mv_err_set(err, "too many categories");
    }

    return mvw_idmap_intern(&c->categories, name, len, idx, NULL, err);
}


/* Checks an id and the embedding length shared by items and users. */
static int
check_new(const mvw_catalog_t *c, const char *kind, const char *id,
    uint32_t dim, mv_err_t *err)
{
    size_t  len = strlen(id);

    if (len == 0 || len > MV_ID_MAX || !mv_id_valid(id, len)) {
        return mv_err_set(err, "invalid %s_id", kind);
    }
    if (dim == 0 || dim > MV_DIM_MAX) {
        return mv_err_set(err, "embedding length %u out of range 1..%d",
                          dim, MV_DIM_MAX);
    }
    if (c->dim != 0 && dim != c->dim) {
        return mv_err_set(err, "\"embedding\" has %u values, expected %u",
                          dim, c->dim);
    }

    return MV_OK;
}


static int
duplicate(const char *kind, const char *id, uint32_t first_line,
    mv_err_t *err)
{
    if (first_line != 0) {
        return mv_err_set(err, "duplicate %s_id \"%s\" (first on line %u)",
                          kind, id, first_line);
    }

    return mv_err_set(err, "duplicate %s_id \"%s\"", kind, id);
}


int
mvw_catalog_add_item(mvw_catalog_t *c, const char *id, const float *vec,
    uint32_t dim, const char *category, float popularity,
    int64_t created_at_ms, int deleted, uint32_t line, mv_err_t *err)
{
    uint32_t        n = c->items.n, cat = MV_CATEGORY_NONE, ncap;
    size_t          len = strlen(id), cat_len = 0;
    int64_t         found;
    mv_item_meta_t *m;

    if (check_new(c, "item", id, dim, err) != MV_OK) {
        return MV_ERR;
    }
    found = mvw_idmap_find(&c->items, id, len);
    if (found >= 0) {
        return duplicate("item", id, c->item_line[found], err);
    }
    if (category != NULL && category[0] != '\0') {
        cat_len = strlen(category);
        if (!mv_id_valid(category, cat_len)) {
            return mv_err_set(err, "invalid category");
        }
        found = mvw_idmap_find(&c->categories, category, cat_len);
        if (found >= 0) {
            cat = (uint32_t) found;
        } else if (c->categories.n >= MV_CATEGORY_NONE - 1) {
            return mv_err_set(err, "too many categories");
        }
    }
    if (!(popularity >= 0.0f) || !isfinite(popularity)) {
        return mv_err_set(err, "popularity must be finite and >= 0");
    }
    if (n >= MVW_IDMAP_MAX - 2) {
        return mv_err_set(err, "too many items");
    }

    /* room in everything first: a refused item leaves c as it was */
    if (n + 1 > c->cap_items) {
        ncap = next_cap(c->cap_items, n + 1);
        if (ncap == 0
            || resize((void **) &c->item_meta, ncap, sizeof(mv_item_meta_t))
               != MV_OK
            || resize((void **) &c->item_line, ncap, sizeof(uint32_t))
               != MV_OK
            || (size_t) ncap > SIZE_MAX / sizeof(float) / dim
            || resize((void **) &c->item_vectors, ncap,
                      (size_t) dim * sizeof(float)) != MV_OK)
        {
            return mv_err_set(err, "out of memory");
        }
        c->cap_items = ncap;
    }
    if (mvw_idmap_reserve(&c->items, len) != MV_OK
        || (cat_len != 0 && cat == MV_CATEGORY_NONE
            && mvw_idmap_reserve(&c->categories, cat_len) != MV_OK))
    {
        return mv_err_set(err, "out of memory");
    }

    if (cat_len != 0 && cat == MV_CATEGORY_NONE) {
        cat = mvw_idmap_append(&c->categories, category, cat_len);
    }
    mvw_idmap_append(&c->items, id, len);
    memcpy(c->item_vectors + (size_t) n * dim, vec, dim * sizeof(float));
    m = &c->item_meta[n];
    memset(m, 0, sizeof(*m));
    m->category = cat;
    m->flags = deleted ? MV_ITEM_DELETED : 0;
    m->popularity = popularity;
    m->created_at_ms = created_at_ms;
    c->item_line[n] = line;
    c->dim = dim;

    return MV_OK;
}


int
mvw_catalog_add_user(mvw_catalog_t *c, const char *id, const float *vec,
    uint32_t dim, uint32_t line, mv_err_t *err)
{
    uint32_t  n = c->users.n, ncap;
    size_t    len = strlen(id);
    int64_t   found;

    if (check_new(c, "user", id, dim, err) != MV_OK) {
        return MV_ERR;
    }
    found = mvw_idmap_find(&c->users, id, len);
    if (found >= 0) {
        return duplicate("user", id, c->user_line[found], err);
    }
    if (n >= MVW_IDMAP_MAX - 2) {
        return mv_err_set(err, "too many users");
    }

    if (n + 1 > c->cap_users) {
        ncap = next_cap(c->cap_users, n + 1);
        if (ncap == 0
            || resize((void **) &c->user_line, ncap, sizeof(uint32_t))
               != MV_OK
            || (size_t) ncap > SIZE_MAX / sizeof(float) / dim
            || resize((void **) &c->user_vectors, ncap,
                      (size_t) dim * sizeof(float)) != MV_OK)
        {
            return mv_err_set(err, "out of memory");
        }
        c->cap_users = ncap;
    }
    if (mvw_idmap_reserve(&c->users, len) != MV_OK) {
        return mv_err_set(err, "out of memory");
    }

    mvw_idmap_append(&c->users, id, len);
    memcpy(c->user_vectors + (size_t) n * dim, vec, dim * sizeof(float));
    c->user_line[n] = line;
    c->dim = dim;

    return MV_OK;
}


int64_t
mvw_catalog_find_item(const mvw_catalog_t *c, const char *id)
{
    return mvw_idmap_find(&c->items, id, strlen(id));
}


int64_t
mvw_catalog_find_user(const mvw_catalog_t *c, const char *id)
{
    return mvw_idmap_find(&c->users, id, strlen(id));
}


/* ---- file loading -------------------------------------------------------- */

static int
blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
            return 0;
        }
    }

    return 1;
}


static int
load_file(mvw_catalog_t *c, const char *path, int users, mv_err_t *err)
{
    FILE             *f;
    char             *line = NULL;
    size_t            cap = 0;
    ssize_t           got;
    uint32_t          lineno = 0, added = 0;
    float            *vec;
    mv_item_event_t  *it;
    mv_event_error_t  ev;
    mv_err_t          e;
    int               rc = MV_ERR;

    vec = malloc(MV_DIM_MAX * sizeof(float));
    it = malloc(sizeof(*it));
    if (vec == NULL || it == NULL) {
        free(vec);
        free(it);
        return mv_err_set(err, "%s: out of memory", path);
    }
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        mv_err_set(err, "%s: %s", path, strerror(errno));
        free(vec);
        free(it);
        return MV_ERR;
    }

    while ((got = getline(&line, &cap, f)) != -1) {
        size_t  len = (size_t) got;

        if (lineno == UINT32_MAX) {
            mv_err_set(err, "%s: too many lines", path);
            goto done;
        }
        lineno++;
        if (blank(line, len)) {
            continue;
        }

        if (len > MVW_LINE_MAX) {
            mv_err_set(err, "%s:%u: line longer than %u bytes", path, lineno,
                       MVW_LINE_MAX);
            goto done;
        }

        if (users) {
            mv_user_vector_t  u;

            if (mv_user_vector_parse(line, len, c->dim, vec, MV_DIM_MAX, &u,
                                     &ev) != MV_OK)
            {
                mv_err_set(err, "%s:%u: %s", path, lineno, ev.detail);
                goto done;
            }
            if (mvw_catalog_add_user(c, u.user_id, u.embedding, u.dim,
                                     lineno, &e) != MV_OK)
            {
                mv_err_set(err, "%s:%u: %s", path, lineno, e.msg);
                goto done;
            }
        } else {
            if (mv_item_parse(line, len, MV_ORIGIN_DATA, 0, c->dim, vec,
                              MV_DIM_MAX, it, &ev) != MV_OK)
            {
                mv_err_set(err, "%s:%u: %s", path, lineno, ev.detail);
                goto done;
            }
            if (mvw_catalog_add_item(c, it->item_id, it->embedding, it->dim,
                                     it->category, it->popularity,
                                     it->created_at_ms, it->deleted, lineno,
                                     &e) != MV_OK)
            {
                mv_err_set(err, "%s:%u: %s", path, lineno, e.msg);
                goto done;
            }
        }
        added++;
    }

    if (ferror(f)) {
        mv_err_set(err, "%s: read error: %s", path, strerror(errno));
        goto done;
    }
    if (!users && added == 0) {
        mv_err_set(err, "%s: no items", path);
        goto done;
    }
    rc = MV_OK;

done:
    free(line);
    free(vec);
    free(it);
    if (f != stdin) {
        fclose(f);
    }
    return rc;
}


int
mvw_catalog_load_items(mvw_catalog_t *c, const char *path, mv_err_t *err)
{
    return load_file(c, path, 0, err);
}


int
mvw_catalog_load_users(mvw_catalog_t *c, const char *path, mv_err_t *err)
{
    return load_file(c, path, 1, err);
}
