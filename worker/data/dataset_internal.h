/*
 * dataset_internal.h -- what the dataset files share and nothing outside
 * them uses: adding by id bytes, growing the interaction array, dropping
 * the pair index (dataset.c), and parsing one line of a file
 * (dataset_formats.c) for the loader (dataset_io.c).
 */
#ifndef MVW_DATASET_INTERNAL_H
#define MVW_DATASET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "events.h"
#include "mv_common.h"

/* One parsed line; user and item point into the line. */
typedef struct mvw_line_rec {
    const char  *user;
    size_t       user_len;
    const char  *item;
    size_t       item_len;
    float        weight;        /* <= 0: read but not a positive */
    int64_t      time_ms;
} mvw_line_rec_t;

/* What the line parsers need beyond the line. */
typedef struct mvw_line_ctx {
    const mvw_load_opts_t  *o;
    const float            *weights;    /* jsonl, MV_ACTION_TYPES */
    int                     first;      /* first non-blank line */
    mv_action_t             action;     /* jsonl ids live here */
} mvw_line_ctx_t;

/* What a line is (mvw_dataset_parse_line; MV_ERR for a bad line). */
enum { LINE_ADD = 1, LINE_DROP, LINE_HEADER };

/*
 * Parses one non-blank line (len bytes, no '\n' or trailing '\r') in the
 * format c->o->format into *r.  Returns LINE_ADD (a positive), LINE_DROP
 * (well formed, weight <= 0; its ids are not checked yet), LINE_HEADER (a
 * csv header, only on the first line), or MV_ERR with a reason without
 * file or line.  Clears c->first.
 */
int mvw_dataset_parse_line(mvw_line_ctx_t *c, const char *line, size_t len,
    mvw_line_rec_t *r, mv_err_t *err);

/*
 * Adds (or merges) one interaction given by id bytes, as mvw_dataset_add.
 * Everything is checked and reserved before the first write, so d is
 * unchanged on error.
 */
int mvw_dataset_add_bytes(mvw_dataset_t *d, const char *us, size_t ulen,
    const char *is, size_t ilen, float weight, int64_t time_ms,
    mv_err_t *err);

/* Makes room for want interactions in d->x.  MV_OK or MV_ERR (memory). */
int mvw_dataset_reserve(mvw_dataset_t *d, size_t want);

/* Frees the pair index (a loaded dataset does not keep it). */
void mvw_dataset_drop_pairs(mvw_dataset_t *d);

#endif /* MVW_DATASET_INTERNAL_H */
