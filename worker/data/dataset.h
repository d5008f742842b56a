/*
 * dataset.h -- interaction datasets for the trainer: who acted on what, read
 * from MovieLens, CSV, TSV or action-log JSONL files, split into train and
 * test sets for offline evaluation (eval.h).
 *
 * A dataset is two id maps (users, items: string id <-> dense index 0..n-1,
 * in order of first appearance; idmap.h) and an array of interactions
 * {user, item, weight, time_ms}.  Every interaction is a positive: a (user,
 * item) pair appears at most once, with a weight > 0.  Splits and paired
 * loads give both of their outputs the same id maps, so an index means the
 * same user or item in train and test; a map may therefore hold ids without
 * interactions in one of the two.
 *
 * Formats (blank lines are skipped everywhere; '\r' before '\n' is ignored;
 * spaces around csv and tab-separated fields are trimmed; ids are
 * 1..MV_ID_MAX bytes of [A-Za-z0-9._:-], so MovieLens numbers are ids):
 *
 *   movielens  "user\titem\trating\tunix_seconds" (ML-100K u.data), or the
 *              same four fields separated by "::" (ML-1M/10M ratings.dat);
 *              a line with a tab is split on tabs, any other on "::" (ids
 *              of such files cannot contain "::").  Every rating counts:
 *              weight 1, or the rating itself with weight_from_rating (a
 *              rating of 0 is then not a positive and the line is dropped).
 *   csv        "user,item[,weight[,timestamp]]", an optional header line
 *              first (recognised by its first field: "user", "user_id",
 *              "userid" or "uid", in any case, e.g. ML-latest's "userId").
 *              weight >= 0 in the JSON number grammar (json.h), default 1
 *              (also when the field is empty); 0 drops the line.
 *              timestamp: whole unix seconds or an RFC 3339 date-time
 *              (rfc3339.h, years 0001..9999); default 0.  No quoting.
 *   tsv        "user_id\titem_id\tweight\ttime_ms", what
 *              mvw_dataset_write_tsv writes (weight > 0, unix ms).
 *   jsonl      one action per line in the POST /actions shape, parsed by
 *              mv_action_parse (so exactly what nginx accepts); the weight
 *              is action_weights[type], and a line whose weight is <= 0
 *              (Dislike by default) is read and checked but dropped, without
 *              adding its ids.  A missing timestamp counts as 0.
 *
 * Numbers follow the JSON number grammar (mv_number_parse: "1", "-2.5",
 * "3e2"; not ".5", "+1", "5.", no hex, no inf or nan).  Unix
 * seconds may be negative down to year 0001 and reach year 9999.
 *
 * A repeated (user, item) pair is merged into the first occurrence: the
 * weights are summed (repeated views add up, as in implicit-feedback
 * matrix factorisation) and the time is the latest of the two.  The
 * interaction keeps its first position in the array.
 *
 * Loading stops at the first problem with MV_ERR and err "PATH:LINE:
 * reason" ("PATH: reason" for the file as a whole); the output dataset is
 * only replaced when everything loaded.  Nothing here keeps global state.
 */
#ifndef MVW_DATASET_H
#define MVW_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "data/idmap.h"
#include "events.h"
#include "ids.h"
#include "mv_common.h"

typedef struct mvw_interaction {
    uint32_t  user;
    uint32_t  item;
    float     weight;       /* > 0 */
    int64_t   time_ms;      /* unix ms, 0 when the source had none */
} mvw_interaction_t;

/*
 * Index of the interaction of each (user, item) pair, for merging: a slot
 * holds an interaction index + 1 (0 = empty), the pair is read from x.
 * Built while loading or adding, dropped after a load (cap 0) and rebuilt
 * by the next mvw_dataset_add.
 */
typedef struct mvw_pairs {
    size_t    *slots;
    size_t     cap;         /* power of two or 0 */
    uint64_t   seed;        /* hash seed, random per index */
} mvw_pairs_t;

typedef struct mvw_dataset {
    mvw_idmap_t         users;
    mvw_idmap_t         items;
    size_t              n;          /* interactions */
    size_t              cap;
    mvw_interaction_t  *x;
    mvw_pairs_t         pairs;
} mvw_dataset_t;

typedef enum mvw_format {
    MVW_FORMAT_MOVIELENS = 0,
    MVW_FORMAT_CSV,
    MVW_FORMAT_TSV,
    MVW_FORMAT_JSONL
} mvw_format_t;

typedef struct mvw_load_opts {
    mvw_format_t  format;
    const float  *action_weights;     /* jsonl: MV_ACTION_TYPES finite
                                         weights; NULL = the defaults */
    int           weight_from_rating; /* movielens: weight = rating */
} mvw_load_opts_t;

/* Rows of a sparse 0/1-with-weights matrix (compressed sparse rows). */
typedef struct mvw_csr {
    uint32_t   n_rows;
    uint32_t   n_cols;
    size_t    *offsets;     /* n_rows + 1; row r is [offsets[r], [r + 1]) */
    uint32_t  *cols;        /* ascending within a row */
    float     *vals;        /* the interaction weights, beside cols */
} mvw_csr_t;


/* ---- datasets ------------------------------------------------------------ */

/* Initialises an empty dataset. */
void mvw_dataset_init(mvw_dataset_t *d);

/* Frees what d owns and leaves it empty (and initialised). */
void mvw_dataset_free(mvw_dataset_t *d);

/*
 * Adds one positive interaction by ids, merging a repeated pair as
 * described above.  weight must be finite and > 0.  Returns MV_OK, or
 * MV_ERR (invalid id, bad weight, merged weight not finite, full maps,
 * allocation failure) with the reason and d unchanged.
 */
int mvw_dataset_add(mvw_dataset_t *d, const char *user, const char *item,
    float weight, int64_t time_ms, mv_err_t *err);

/* The training weights of the action types when a caller passes NULL:
   View 1, Click 2, Like 3, Share 3, AddToCart 4, Purchase 5, Dislike 0
   (the module's defaults, with Dislike not a positive). */
void mvw_action_weights_default(float w[MV_ACTION_TYPES]);

/*
 * Sets *fmt from its name: "movielens", "csv", "tsv" or "jsonl".  Returns
 * MV_OK, or MV_ERR ("unknown dataset format \"x\" (movielens, csv, tsv,
 * jsonl)").
 */
int mvw_format_from_name(const char *name, mvw_format_t *fmt,
    mv_err_t *err);

/* The name of fmt ("?" when out of range). */
const char *mvw_format_name(mvw_format_t fmt);

/*
 * Loads the file at path ("-" is stdin) in format fmt into d, replacing
 * what d held.  action_weights (MV_ACTION_TYPES entries, any finite values)
 * are the jsonl weights, NULL for the defaults.  Returns MV_OK, or MV_ERR
 * with err "PATH:LINE: reason" (or "PATH: reason": unreadable file, no
 * interactions at all) and d untouched.
 */
int mvw_dataset_load(mvw_dataset_t *d, const char *path, mvw_format_t fmt,
    const float *action_weights, mv_err_t *err);

/* mvw_dataset_load with every option (o->format included). */
int mvw_dataset_load_opts(mvw_dataset_t *d, const char *path,
    const mvw_load_opts_t *o, mv_err_t *err);

/*
 * The same from memory: len bytes (no terminator needed), named name in
 * error messages.  The file loaders map or read the file and call this.
 */
int mvw_dataset_load_buffer(mvw_dataset_t *d, const char *name,
    const char *bytes, size_t len, const mvw_load_opts_t *o, mv_err_t *err);

/*
 * Loads a predefined split (the trainer's "files:BASE,TEST"): base_path
 * into train, test_path into test, both with the same id maps (ids seen
 * only in the test file are added after those of the base file).  Both or
 * neither of train and test are replaced.  A test pair that is also a base
 * pair is kept in both (eval.c ignores it).
 */
int mvw_dataset_load_pair(const char *base_path, const char *test_path,
    mvw_format_t fmt, const float *action_weights, mvw_dataset_t *train,
    mvw_dataset_t *test, mv_err_t *err);

/* mvw_dataset_load_pair with every option. */
int mvw_dataset_load_pair_opts(const char *base_path, const char *test_path,
    const mvw_load_opts_t *o, mvw_dataset_t *train, mvw_dataset_t *test,
    mv_err_t *err);

/*
 * Writes d as "user_id\titem_id\tweight\ttime_ms\n" lines in array order
 * (weights with 9 significant digits, so they read back exactly; format
 * tsv reads the file).  Only interactions are written: ids without one do
 * not survive a round trip.  The file is written to a temporary name,
 * synced, then renamed over path.  Returns MV_OK or MV_ERR "PATH: reason".
 */
int mvw_dataset_write_tsv(const mvw_dataset_t *d, const char *path,
    mv_err_t *err);


/* ---- splits -------------------------------------------------------------- */

/*
 * Random per-user split.  The rng (mv_rng_t seeded with seed) shuffles
 * each user's interactions in turn (users in index order, a user's
 * interactions in input order, Fisher-Yates from the end with unbiased
 * bounded draws); the first n_train go to train, the rest to test, where
 * n_train = floor(train_frac * n + 0.5) clamped to 1..n: the count is
 * rounded half up, and a user always keeps at least one interaction in
 * train (so a user with one interaction keeps it there).  train_frac in
 * [0, 1].  train and test (initialised; replaced on success) get copies of
 * d's id maps and keep d's array order.  Deterministic in (d, train_frac,
 * seed).  Returns MV_OK or MV_ERR.
 */
int mvw_split_random(const mvw_dataset_t *d, double train_frac,
    uint64_t seed, mvw_dataset_t *train, mvw_dataset_t *test,
    mv_err_t *err);

/*
 * Leave-last-out: each user with at least two interactions has the latest
 * one (largest time_ms; among equal times the one later in the array) in
 * test, everything else is in train.  Same id maps and order rules as
 * mvw_split_random.  Returns MV_OK or MV_ERR.
 */
int mvw_split_leave_last_out(const mvw_dataset_t *d, mvw_dataset_t *train,
    mvw_dataset_t *test, mv_err_t *err);


/* ---- matrix views -------------------------------------------------------- */

/*
 * The user x item matrix of d as rows (each user's items, ascending, with
 * their weights).  out is overwritten (free it with mvw_csr_free).
 * Returns MV_OK or MV_ERR (allocation failure).
 */
int mvw_dataset_by_user(const mvw_dataset_t *d, mvw_csr_t *out,
    mv_err_t *err);

/* The item x user matrix (each item's users, ascending). */
int mvw_dataset_by_item(const mvw_dataset_t *d, mvw_csr_t *out,
    mv_err_t *err);

/* Frees a matrix and zeroes it. */
void mvw_csr_free(mvw_csr_t *m);

/* counts[i] (d->items.n entries) = number of users who interacted with i. */
void mvw_dataset_item_counts(const mvw_dataset_t *d, uint32_t *counts);

#endif /* MVW_DATASET_H */
