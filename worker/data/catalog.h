/*
 * catalog.h -- the worker's item/user catalogue: JSONL line parsers and an
 * in-memory catalogue that a snapshot is built from.
 *
 * Two layers, so that the parsing can be unit-tested and fuzzed alone:
 *
 *   line parsers   mvw_parse_item_line / mvw_parse_user_line take one line
 *                  (bytes + length, no terminator needed) and return a parsed
 *                  record or MV_ERR with a reason.  They allocate nothing
 *                  that outlives the call: the embedding goes into a buffer
 *                  the caller owns.
 *   catalogue      mvw_catalog_t owns ids, vectors and metadata of items,
 *                  categories and users, with id maps (idmap.h) that
 *                  catch duplicates.  The file loaders read a whole JSONL
 *                  file and report the first problem as "FILE:LINE:
 *                  reason"; the synthetic generator (synthetic.h) fills
 *                  one too.
 *                  (Parsers in catalog.c, catalogue in catalog_store.c.)
 *
 * Item lines:  {"item_id": ID, "embedding": [numbers], "category": ID,
 *               "tags": [strings], "popularity_score": number >= 0,
 *               "created_at": RFC 3339 string or unix ms integer,
 *               "deleted": bool}
 *   Only item_id and embedding are required.  Missing category means
 *   MV_CATEGORY_NONE, popularity 0, created_at 0, deleted false.  Tags are
 *   checked (array of strings) but not kept: the snapshot has no tag
 *   section yet.  Unknown and repeated fields are errors, so a misspelt
 *   field never silently becomes a default.
 * User lines:  {"user_id": ID, "embedding": [numbers]}
 *
 * Every embedding of a file (items and users alike) has the same length, the
 * catalogue's dim, 1..MVW_DIM_MAX; values must be finite as float32 (1e39 is
 * rejected, not turned into infinity).
 */
#ifndef MVW_CATALOG_H
#define MVW_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "data/idmap.h"
#include "ids.h"
#include "mv_common.h"
#include "snapshot.h"

#define MVW_DIM_MAX        MV_DIM_MAX     /* catalog.c's parsers only */
#define MVW_LINE_MAX       (16u << 20)    /* bytes of one JSONL line */
#define MVW_TAGS_MAX       256
#define MVW_TAG_LEN_MAX    256

/* One parsed item line.  vec points at the caller's buffer. */
typedef struct mvw_item_rec {
    char      id[MV_ID_MAX + 1];
    char      category[MV_ID_MAX + 1];    /* "" when absent */
    float    *vec;
    uint32_t  dim;
    float     popularity;
    int64_t   created_at_ms;
    int       deleted;
} mvw_item_rec_t;

/* One parsed user line.  vec points at the caller's buffer. */
typedef struct mvw_user_rec {
    char      id[MV_ID_MAX + 1];
    float    *vec;
    uint32_t  dim;
} mvw_user_rec_t;

/*
 * Parses one item line of len bytes.  dim is the required embedding length,
 * or 0 to accept any length 1..min(vec_cap, MVW_DIM_MAX).  vec (vec_cap
 * floats) receives the embedding.  Returns MV_OK with *out filled, or MV_ERR
 * with err set to a reason without file or line ("\"embedding\" has 3
 * values, expected 4").  A blank line is an error here ("empty line"); the
 * file loaders skip blank lines before calling.
 */
int mvw_parse_item_line(const char *line, size_t len, uint32_t dim,
    float *vec, size_t vec_cap, mvw_item_rec_t *out, mv_err_t *err);

/* The same for a user line. */
int mvw_parse_user_line(const char *line, size_t len, uint32_t dim,
    float *vec, size_t vec_cap, mvw_user_rec_t *out, mv_err_t *err);

/*
 * Converts an RFC 3339 date-time (len bytes, e.g. "2024-01-01T12:00:00Z",
 * "2024-01-01t12:00:00.25+05:30") to unix milliseconds, independently of
 * the locale and the TZ variable.  Fractions beyond milliseconds are
 * truncated; a leap second (:60) counts as the next second.  Years 0001 to
 * 9999.  Returns MV_OK or MV_ERR with the reason.
 */
int mvw_parse_rfc3339(const char *s, size_t len, int64_t *ms, mv_err_t *err);

/*
 * Formats unix milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (at least
 * 32 bytes).  Returns buf.
 */
char *mvw_format_rfc3339(int64_t ms, char *buf, size_t len);

/* Items, categories and users, each indexed by its id map: item i is
   items' id i, row i of item_vectors, item_meta[i] and item_line[i]. */
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
