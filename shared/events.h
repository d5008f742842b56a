/*
 * events.h -- the two events Milvuso accepts from the outside (a user
 * action, an item with its features): strict parsing of their JSON bodies,
 * and the canonical JSON they are written to the action log as.
 *
 * The same parser reads HTTP bodies (nginx) and log payloads (the worker),
 * so what the trainer sees is exactly what nginx accepted.  Parsing is done
 * with cJSON and then checked field by field; a body is accepted whole or
 * refused whole with an error code and a detail naming the field:
 *
 *   "invalid_json"         not JSON, not an object, trailing bytes, a key
 *                          given twice, a string that is not UTF-8
 *   "invalid_field"        a required field missing, a field of the wrong
 *                          type, an id outside [A-Za-z0-9._:-]{1,64}, a bad
 *                          timestamp, a negative popularity, too many tags
 *   "unknown_action_type"  action_type not one of the known names
 *   "dimension_mismatch"   embedding length differs from the expected dim
 *   "non_finite_number"    an embedding value or popularity that is NaN,
 *                          infinite, or too large for a float
 *
 * Unknown fields are ignored (clients may send more than we use).  Strings
 * must be valid UTF-8 without control characters; the action log relies on
 * that (actlog.h).
 *
 * Canonical log payloads (compact JSON, fields in this order):
 *   {"event_id":"...","user_id":"...","item_id":"...","action_type":"Click",
 *    "timestamp":"2024-01-01T12:00:00.000Z"}
 *   {"event_id":"...","item_id":"...","embedding":[...],"category":"...",
 *    "tags":[...],"popularity_score":0.8,"created_at":"...Z"}
 * Floats are printed with 9 significant digits, so they read back exactly.
 */
#ifndef MV_EVENTS_H
#define MV_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "ids.h"
#include "mv_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MV_TAGS_MAX      32     /* tags per item */
#define MV_TAG_MAX       64     /* bytes of a tag */

typedef enum mv_action_type {
    MV_ACTION_VIEW = 0,
    MV_ACTION_CLICK,
    MV_ACTION_LIKE,
    MV_ACTION_SHARE,
    MV_ACTION_ADD_TO_CART,
    MV_ACTION_PURCHASE,
    MV_ACTION_DISLIKE,
    MV_ACTION_TYPES          /* count */
} mv_action_type_t;

/* "View", "Click", "Like", "Share", "AddToCart", "Purchase", "Dislike". */
const char *mv_action_type_name(mv_action_type_t t);

/*
 * The type named by s[0..len): the names above, matched without regard to
 * case, also in snake case ("add_to_cart").  Returns -1 when unknown.
 */
int mv_action_type_from_name(const char *s, size_t len);

/* Why a body was refused.  error is one of the static codes above. */
typedef struct mv_event_error {
    const char  *error;
    char         detail[192];
} mv_event_error_t;

typedef struct mv_action {
    char              event_id[MV_ID_MAX + 1];   /* "" when absent */
    char              user_id[MV_ID_MAX + 1];
    char              item_id[MV_ID_MAX + 1];
    mv_action_type_t  type;
    int64_t           timestamp_ms;   /* unix ms; now_ms when absent */
} mv_action_t;

typedef struct mv_item_event {
    char      event_id[MV_ID_MAX + 1];           /* "" when absent */
    char      item_id[MV_ID_MAX + 1];
    char      category[MV_ID_MAX + 1];           /* "" when absent */
    uint32_t  n_tags;
    char      tags[MV_TAGS_MAX][MV_TAG_MAX + 1];
    float     popularity;                        /* >= 0; 0 when absent */
    int64_t   created_at_ms;                     /* now_ms when absent */
    uint32_t  dim;                               /* embedding length */
    float    *embedding;                         /* caller's buffer */
} mv_item_event_t;

/*
 * Parses a POST /actions body (or an action log payload) of len bytes.
 * Fields: user_id, item_id (ids), action_type (string), timestamp (RFC 3339
 * string, optional), event_id (id, optional).  Returns MV_OK with a filled,
 * or MV_ERR with e filled and a unspecified.
 */
int mv_action_parse(const char *buf, size_t len, int64_t now_ms,
    mv_action_t *a, mv_event_error_t *e);

/*
 * Parses a POST /items body (or log payload).  Fields: item_id (id),
 * embedding (array of numbers, required), category (id, optional), tags
 * (array of up to MV_TAGS_MAX strings of 1..MV_TAG_MAX bytes, optional),
 * popularity_score (number >= 0, optional), created_at (RFC 3339, optional),
 * event_id (id, optional).  The embedding is written to embedding[0 ..
 * dim_cap); when expect_dim is not 0 its length must equal expect_dim,
 * otherwise it must be 1 .. dim_cap.  item->embedding is set to embedding.
 * Returns MV_OK, or MV_ERR with e filled.
 */
int mv_item_parse(const char *buf, size_t len, int64_t now_ms,
    uint32_t expect_dim, float *embedding, uint32_t dim_cap,
    mv_item_event_t *item, mv_event_error_t *e);

/*
 * Writes the canonical log payload of a (resp. item) into buf.  Returns its
 * length (no NUL counted; one is written when room is left), or 0 when cap
 * is too small.  The payload parses back to an equal event.
 */
size_t mv_action_encode(const mv_action_t *a, char *buf, size_t cap);
size_t mv_item_encode(const mv_item_event_t *item, char *buf, size_t cap);

/* Bytes mv_item_encode needs at most for an item of dimension dim. */
size_t mv_item_encode_bound(uint32_t dim);

/*
 * RFC 3339 date-time ("2024-01-01T12:00:00Z", "2024-01-01T12:00:00.250+02:00",
 * years 1970..9999, 'T' or 't' or ' ' as separator, 'Z' or 'z' or an offset)
 * to unix milliseconds.  Returns MV_OK or MV_ERR.
 */
int mv_time_parse(const char *s, size_t len, int64_t *ms);

/* Unix ms to "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes + NUL) in buf (>= 25). */
char *mv_time_format(int64_t ms, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* MV_EVENTS_H */
