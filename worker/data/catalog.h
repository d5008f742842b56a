/*
 * catalog.h -- the worker's item/user catalogue: the in-memory catalogue a
 * snapshot is built from, and the loaders of catalogue files.
 *
 * mvw_catalog_t owns ids, vectors and metadata of items, categories and
 * users, with id maps (idmap.h) that catch duplicates.  The file loaders
 * read a whole JSONL file and report the first problem as "FILE:LINE:
 * reason"; the synthetic generator (synthetic.h) fills one too.
 *
 * Lines are read by the one parser of each format (shared/events.h), as
 * stored data (MV_ORIGIN_DATA): an item line means exactly what the same
 * JSON means as a POST /items body or an action-log record -- the same
 * fields, limits, time formats, unknown fields ignored, null as absent --
 * and may also say "deleted": true.  A line without created_at has
 * created_at 0 ("unknown"; nginx gives a posted item its arrival time).
 * Tags are checked but not kept: the snapshot has no tag section yet.
 * User lines are {"user_id": ID, "embedding": [numbers]}.
 *
 * Every embedding of a file (items and users alike) has the same length, the
 * catalogue's dim, 1..MV_DIM_MAX, set by the first line.
 */
#ifndef MVW_CATALOG_H
#define MVW_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "data/idmap.h"
#include "ids.h"
#include "mv_common.h"
#include "snapshot.h"

#define MVW_LINE_MAX       (16u << 20)    /* bytes of one JSONL line */

typedef struct mvw_catalog {
    uint32_t         dim;           /* 0 until the first embedding */

    mvw_idmap_t      items;         /* items.n items */
    uint32_t         cap_items;     /* room in the per-item arrays */
    float           *item_vectors;  /* items.n x dim */
    mv_item_meta_t  *item_meta;
    uint32_t        *item_line;     /* source line, 0 when generated */

    mvw_idmap_t      categories;    /* category names, in order of use */

    mvw_idmap_t      users;         /* users.n users */
    uint32_t         cap_users;
    float           *user_vectors;  /* users.n x dim */
    uint32_t        *user_line;
} mvw_catalog_t;

/* Initialises an empty catalogue. */
void mvw_catalog_init(mvw_catalog_t *c);

/* Frees everything c owns and leaves it empty.  Safe on an empty one. */
void mvw_catalog_free(mvw_catalog_t *c);

/*
 * Index of category name (creating it when new).  Returns MV_OK with *idx,
 * or MV_ERR (invalid name, allocation failure).
 */
int mvw_catalog_category(mvw_catalog_t *c, const char *name, uint32_t *idx,
    mv_err_t *err);

/*
 * Appends an item (vec has c->dim floats; the first add fixes c->dim to
 * dim).  category is a name or NULL/"" for none.  line is the source line
 * (0 when generated).  Returns MV_OK, or MV_ERR for an invalid or duplicate
 * id ("duplicate item_id \"x\" (first on line 3)"), a dim mismatch or an
 * allocation failure; c is unchanged then.
 */
int mvw_catalog_add_item(mvw_catalog_t *c, const char *id, const float *vec,
    uint32_t dim, const char *category, float popularity,
    int64_t created_at_ms, int deleted, uint32_t line, mv_err_t *err);

/* Appends a user; same rules as mvw_catalog_add_item. */
int mvw_catalog_add_user(mvw_catalog_t *c, const char *id, const float *vec,
    uint32_t dim, uint32_t line, mv_err_t *err);

/* Position of an item / user id, or -1. */
int64_t mvw_catalog_find_item(const mvw_catalog_t *c, const char *id);
int64_t mvw_catalog_find_user(const mvw_catalog_t *c, const char *id);

/*
 * Reads a JSONL file of items (path "-" is stdin) into c.  Blank lines are
 * skipped.  On the first problem returns MV_ERR with err "PATH:LINE:
 * reason"; the items read so far stay in c, so callers that must not
 * half-apply load into a fresh catalogue and drop it on error.  A file
 * without items is an error.
 */
int mvw_catalog_load_items(mvw_catalog_t *c, const char *path,
    mv_err_t *err);

/* The same for users (a file without users is allowed). */
int mvw_catalog_load_users(mvw_catalog_t *c, const char *path,
    mv_err_t *err);

#endif /* MVW_CATALOG_H */
