/*
 * events.h -- the formats Milvuso accepts from the outside: a user action,
 * an item with its features, a user vector.  One parser per format, used by
 * every path that carries it -- POST /actions and POST /items (nginx), the
 * action log and (next) Kafka records, catalogue files, dataset files --
 * so an event means the same thing wherever it arrives; and the canonical
 * JSON they are written to the stream as (events_encode.c).
 *
 * Bodies are loaded with the strict JSON layer (json.h) and then checked
 * field by field; a body is accepted whole or refused whole with an error
 * code and a detail naming the field:
 *
 *   "invalid_json"         not JSON, not an object, trailing bytes, a key
 *                          given twice, a string that is not UTF-8
 *   "invalid_field"        a required field missing, a field of the wrong
 *                          type, an id outside [A-Za-z0-9._:-]{1,64}, a bad
 *                          time, a negative popularity, too many tags, a
 *                          field the origin may not set (below)
 *   "unknown_action_type"  action_type not one of the known names
 *   "dimension_mismatch"   embedding length differs from the expected dim
 *   "non_finite_number"    an embedding value or popularity that is NaN,
 *                          infinite, or too large for a float
 *
 * The same rules on every path:
 *   - unknown fields are ignored (as the original API's serde structs do),
 *     and a field whose value is null counts as absent;
 *   - a time ("timestamp", "created_at") is an RFC 3339 string (rfc3339.h)
 *     or whole unix milliseconds from 1973-03-03 on (a smaller number looks
 *     like unix seconds and is refused rather than read as a date in
 *     1970); absent, it is the caller's now_ms (the arrival time;
 *     catalogue loaders pass 0, "unknown");
 *   - limits: ids MV_ID_MAX bytes, MV_TAGS_MAX tags of 1..MV_TAG_MAX bytes
 *     of UTF-8 text, embeddings 1..MV_DIM_MAX finite float32 values.
 * The one difference is the origin's (mv_event_origin_t): a client of the
 * HTTP API may not send an item's "event_id" (the server names each item
 * event it accepts; a client's id is refused rather than silently
 * replaced), nor "deleted": true (items are removed through the catalogue,
 * not over HTTP), nor an action's "client_event_id" marker.  A client MAY
 * name an action with "event_id" (its retry key): the parsed action then
 * has client_event_id set, and its canonical payload carries
 * "client_event_id":true after the timestamp, which tells the trainer to
 * apply that event id once however often it arrives (a client retrying an
 * unconfirmed post).  Stored data may carry the marker only beside an
 * event_id; it is written only when set.
 *
 * Canonical log payloads (compact JSON, fields in this order):
 *   {"event_id":"...","user_id":"...","item_id":"...","action_type":"Click",
 *    "timestamp":"2024-01-01T12:00:00.000Z"}
 *   (",\"client_event_id\":true" follows the timestamp when the event id
 *   is the client's retry key.)
 *   {"event_id":"...","item_id":"...","embedding":[...],"category":"...",
 *    "tags":[...],"popularity_score":0.8,"created_at":"...Z"}
 *   ("deleted":true follows created_at for a deleted item.)
 *
 * A training example (Kafka's training_topic, written by the feature
 * worker, never by a client) is an action joined with what the feature
 * worker knew of its item at that moment: the action's canonical fields,
 * then "popularity" (how many actions on the item the feature worker has
 * joined, this one included: a whole number >= 1) and "features" (the
 * item's last features record: category when it has one, tags, created_at,
 * "deleted":true for a deleted item; null when no features record of the
 * item had been seen):
 *   {"event_id":"...","user_id":"...","item_id":"...","action_type":"Click",
 *    "timestamp":"...Z","popularity":3,"features":{"category":"books",
 *    "tags":["a"],"created_at":"...Z"}}
 * Its action part reads as an action too (unknown fields are ignored).
 * Floats are printed with 9 significant digits, so they read back exactly.
 */
#ifndef MV_EVENTS_H
#define MV_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "ids.h"
#include "mv_common.h"
#include "rfc3339.h"

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

/* Who sent the bytes being parsed (see the top of the file). */
typedef enum mv_event_origin {
    MV_ORIGIN_CLIENT = 0,    /* a request body of the HTTP API */
    MV_ORIGIN_DATA           /* data Milvuso or an operator stored: stream
                                records, catalogue and dataset files */
} mv_event_origin_t;

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
    int               client_event_id;  /* event_id is the client's retry
                                           key ("client_event_id":true) */
} mv_action_t;

typedef struct mv_item_event {
    char      event_id[MV_ID_MAX + 1];           /* "" when absent */
    char      item_id[MV_ID_MAX + 1];
    char      category[MV_ID_MAX + 1];           /* "" when absent */
    uint32_t  n_tags;
    char      tags[MV_TAGS_MAX][MV_TAG_MAX + 1];
    float     popularity;                        /* >= 0; 0 when absent */
    int64_t   created_at_ms;                     /* now_ms when absent */
    int       deleted;                           /* "deleted": true */
    uint32_t  dim;                               /* embedding length */
    float    *embedding;                         /* caller's buffer */
} mv_item_event_t;

/* The item's side of a training example. */
typedef struct mv_item_features {
    char      category[MV_ID_MAX + 1];           /* "" when absent */
    uint32_t  n_tags;
    char      tags[MV_TAGS_MAX][MV_TAG_MAX + 1];
    int64_t   created_at_ms;
    int       deleted;
} mv_item_features_t;

/* The largest popularity an example carries (the last integer a JSON
   number holds exactly). */
#define MV_EXAMPLE_POPULARITY_MAX  ((UINT64_C(1) << 53) - 1)

typedef struct mv_example {
    mv_action_t         action;
    uint64_t            popularity;      /* 1 .. MV_EXAMPLE_POPULARITY_MAX */
    int                 has_features;    /* 0: "features" null or absent */
    mv_item_features_t  features;        /* when has_features */
} mv_example_t;

typedef struct mv_user_vector {
    char      user_id[MV_ID_MAX + 1];
    uint32_t  dim;
    float    *embedding;                         /* caller's buffer */
} mv_user_vector_t;

/*
 * Parses an action of len bytes from origin.  Fields: user_id, item_id
 * (ids), action_type (string), timestamp (optional, see the top), event_id
 * (id, optional), client_event_id (bool, optional; refused from
 * MV_ORIGIN_CLIENT, true refused without an event_id).  a->client_event_id
 * is set when a client named the event (MV_ORIGIN_CLIENT with an event_id)
 * or stored data carries "client_event_id":true.  Returns MV_OK with *a
 * filled, or MV_ERR with e filled (e may be NULL) and *a unspecified.
 */
int mv_action_parse(const char *buf, size_t len, mv_event_origin_t origin,
    int64_t now_ms, mv_action_t *a, mv_event_error_t *e);

/*
 * Parses an item of len bytes from origin.  Fields: item_id (id), embedding
 * (array of numbers, required), category (id), tags (array of up to
 * MV_TAGS_MAX strings), popularity_score (number >= 0), created_at (see the
 * top), deleted (bool; true refused from MV_ORIGIN_CLIENT), event_id (id;
 * refused from MV_ORIGIN_CLIENT); all but item_id and embedding optional.
 * The embedding is written to embedding[0 .. dim_cap); when expect_dim is
 * not 0 its length must equal expect_dim, otherwise it must be 1 ..
 * min(dim_cap, MV_DIM_MAX).  item->embedding is set to embedding.  Returns
 * MV_OK, or MV_ERR with e filled.
 */
int mv_item_parse(const char *buf, size_t len, mv_event_origin_t origin,
    int64_t now_ms, uint32_t expect_dim, float *embedding, uint32_t dim_cap,
    mv_item_event_t *item, mv_event_error_t *e);

/*
 * Parses a user vector {"user_id": id, "embedding": [numbers]} (catalogue
 * user files), with the embedding rules of mv_item_parse.  Returns MV_OK or
 * MV_ERR with e filled.
 */
int mv_user_vector_parse(const char *buf, size_t len, uint32_t expect_dim,
    float *embedding, uint32_t dim_cap, mv_user_vector_t *u,
    mv_event_error_t *e);

/*
 * Parses a training example (see the top): the fields of an action from
 * MV_ORIGIN_DATA (mv_action_parse's rules, now_ms for a missing
 * timestamp), "popularity" (required, a whole number 1 ..
 * MV_EXAMPLE_POPULARITY_MAX) and "features" (null or absent: none; else
 * an object with category (id), tags, created_at (now_ms when absent) and
 * deleted, each optional, with mv_item_parse's rules; unknown fields
 * ignored).  Returns MV_OK with *x filled, or MV_ERR with e filled.
 */
int mv_example_parse(const char *buf, size_t len, int64_t now_ms,
    mv_example_t *x, mv_event_error_t *e);

/*
 * Writes the canonical payload of example x into buf.  Returns its length
 * (a NUL follows when room is left), or 0 when cap is too small, the
 * action type is unknown or the popularity is out of range.  It parses
 * back to an equal example; MV_EXAMPLE_ENCODE_MAX bytes are always enough.
 */
size_t mv_example_encode(const mv_example_t *x, char *buf, size_t cap);

/* An upper bound of mv_example_encode's output, its NUL included. */
#define MV_EXAMPLE_ENCODE_MAX  16384

/*
 * Writes the canonical log payload of a (resp. item) into buf.  Returns its
 * length (no NUL counted; one is written when room is left), or 0 when cap
 * is too small (or an action has client_event_id without an event_id).
 * The payload parses back (from MV_ORIGIN_DATA) to an equal event.
 */
size_t mv_action_encode(const mv_action_t *a, char *buf, size_t cap);
size_t mv_item_encode(const mv_item_event_t *item, char *buf, size_t cap);

/* Bytes mv_item_encode needs at most for an item of dimension dim. */
size_t mv_item_encode_bound(uint32_t dim);

#ifdef __cplusplus
}
#endif

#endif /* MV_EVENTS_H */
