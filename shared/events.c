/*
 * events.c -- the one parser of actions, items and user vectors (see
 * events.h for the contract and json.h for the strict JSON underneath).
 *
 * A body is loaded with mv_json_load_object (every lexical and structural
 * check, duplicate keys included), then each field is checked in the order
 * of its canonical form, and the first problem is reported.  Every string
 * kept (ids, tags) is checked again after decoding: 1..max bytes of
 * well-formed UTF-8 without control characters; ids must also pass
 * mv_id_valid.  Numbers are converted from cJSON's double: a value that is
 * infinite (cJSON gives inf for "1e999") or that would round to infinity as
 * a float is refused as "non_finite_number" before the conversion (which
 * would be undefined behaviour otherwise).
 *
 * A training example is an action's fields (the code mv_action_parse
 * runs) plus its popularity and the item's features (the tag, time and
 * deleted rules of items), in one object: one parser per format, no rule
 * of its own.
 *
 * The encoders of the canonical payloads are in events_encode.c.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "events.h"
#include "ids.h"
#include "json.h"


/*
 * The smallest number taken as unix milliseconds (1973-03-03T09:46:40Z).
 * Below it a time given as a number is far more likely unix seconds (every
 * date of the last fifty years is below 2^31 seconds) than a time before
 * 1973, and reading it as milliseconds would silently put the event in
 * January 1970; it is refused, and an earlier date is sent as RFC 3339.
 */
#define EV_TIME_NUMBER_MIN  INT64_C(100000000000)


static const char *const ev_type_names[MV_ACTION_TYPES] = {
    "View", "Click", "Like", "Share", "AddToCart", "Purchase", "Dislike"
};

static const char *const ev_type_snake[MV_ACTION_TYPES] = {
    "view", "click", "like", "share", "add_to_cart", "purchase", "dislike"
};


/* ---- errors ------------------------------------------------------------ */

static int
ev_fail(mv_event_error_t *e, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int
ev_fail(mv_event_error_t *e, const char *code, const char *fmt, ...)
{
    va_list  ap;

    if (e != NULL) {
        e->error = code;
        va_start(ap, fmt);
        vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
        va_end(ap);
    }

    return MV_ERR;
}


/* Loads the object of buf, or NULL with e filled ("invalid_json"). */
static cJSON *
ev_load(const char *buf, size_t len, mv_event_error_t *e)
{
    mv_err_t  err;
    cJSON    *root;

    root = mv_json_load_object(buf, len, &err);
    if (root == NULL) {
        ev_fail(e, "invalid_json", "%s", err.msg);
    }

    return root;
}


/* ---- fields ------------------------------------------------------------ */

/*
 * Reads id field name into out (MV_ID_MAX + 1 bytes).  An absent optional
 * field leaves out empty.
 */
static int
get_id(const cJSON *o, const char *name, int required, char *out,
    mv_event_error_t *e)
{
    const cJSON  *v = mv_json_field(o, name);
    size_t        n;

    out[0] = '\0';

    if (v == NULL) {
        if (required) {
            return ev_fail(e, "invalid_field", "field \"%s\": missing", name);
        }
        return MV_OK;
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        return ev_fail(e, "invalid_field", "field \"%s\": expected a string",
                       name);
    }

    n = strlen(v->valuestring);
    if (n == 0) {
        return ev_fail(e, "invalid_field", "field \"%s\": not an id: empty", name);
    }
    if (n > MV_ID_MAX) {
        return ev_fail(e, "invalid_field", "field \"%s\": not an id: %zu "
                       "bytes long (at most %d)", name, n, MV_ID_MAX);
    }
    if (!mv_id_valid(v->valuestring, n)) {
        return ev_fail(e, "invalid_field", "field \"%s\": not an id: a "
                       "character outside [A-Za-z0-9._:-]", name);
    }

    memcpy(out, v->valuestring, n + 1);
    return MV_OK;
}


/* Refuses field name when origin may not set it. */
static int
check_server_field(const cJSON *o, const char *name,
    mv_event_origin_t origin, mv_event_error_t *e)
{
    if (origin == MV_ORIGIN_CLIENT && mv_json_field(o, name) != NULL) {
        return ev_fail(e, "invalid_field", "field \"%s\": assigned by the "
                       "server, not accepted from a client", name);
    }

    return MV_OK;
}


/*
 * Reads an optional time field into *ms (now_ms when absent): an RFC 3339
 * string, or whole unix milliseconds within the same years.
 */
static int
get_time(const cJSON *o, const char *name, int64_t now_ms, int64_t *ms,
    mv_event_error_t *e)
{
    const cJSON  *v = mv_json_field(o, name);
    mv_err_t      err;
    double        d;

    if (v == NULL) {
        *ms = now_ms;
        return MV_OK;
    }

    if (cJSON_IsString(v) && v->valuestring != NULL) {
        if (mv_time_parse(v->valuestring, strlen(v->valuestring), ms, &err)
            != MV_OK)
        {
            return ev_fail(e, "invalid_field", "field \"%s\": %s", name,
                           err.msg);
        }
        return MV_OK;
    }

    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
        if (d == floor(d) && d >= (double) EV_TIME_NUMBER_MIN
            && d <= (double) MV_TIME_MAX_MS)
        {
            *ms = (int64_t) d;
            return MV_OK;
        }
        if (d == floor(d) && d >= 0 && d < (double) EV_TIME_NUMBER_MIN) {
            return ev_fail(e, "invalid_field", "field \"%s\": %.0f looks "
                           "like unix seconds; send unix milliseconds or an "
                           "RFC 3339 date-time", name, d);
        }
        return ev_fail(e, "invalid_field", "field \"%s\": not whole unix "
                       "milliseconds from %lld (1973-03-03) to 9999",
                       name, (long long) EV_TIME_NUMBER_MIN);
    }

    return ev_fail(e, "invalid_field", "field \"%s\": expected an RFC 3339 "
                   "string or unix milliseconds", name);
}


static int
get_embedding(const cJSON *o, uint32_t expect_dim, float *embedding,
    uint32_t dim_cap, uint32_t *dim, mv_event_error_t *e)
{
    const cJSON  *v = mv_json_field(o, "embedding"), *c;
    size_t        n = 0, i;

    if (embedding == NULL) {
        dim_cap = 0;
    }
    if (dim_cap > MV_DIM_MAX) {
        dim_cap = MV_DIM_MAX;
    }

    if (v == NULL) {
        return ev_fail(e, "invalid_field", "field \"embedding\": missing");
    }
    if (!cJSON_IsArray(v)) {
        return ev_fail(e, "invalid_field", "field \"embedding\": expected an "
                       "array of numbers");
    }

    for (c = v->child; c != NULL; c = c->next) {
        n++;
    }

    if (expect_dim != 0 && n != expect_dim) {
        return ev_fail(e, "dimension_mismatch", "field \"embedding\": "
                       "expected %u numbers, got %zu", (unsigned) expect_dim,
                       n);
    }
    if (n == 0 || n > dim_cap) {
        return ev_fail(e, "dimension_mismatch", "field \"embedding\": "
                       "expected 1 to %u numbers, got %zu",
                       (unsigned) dim_cap, n);
    }

    i = 0;
    for (c = v->child; c != NULL; c = c->next, i++) {
        if (!cJSON_IsNumber(c)) {
            return ev_fail(e, "invalid_field", "field \"embedding\": element "
                           "%zu is not a number", i);
        }
        if (mv_float_from_double(c->valuedouble, &embedding[i]) != MV_OK) {
            return ev_fail(e, "non_finite_number", "field \"embedding\": "
                           "element %zu is not finite as a float", i);
        }
    }

    *dim = (uint32_t) n;
    return MV_OK;
}


/* Reads the optional "tags" of o into tags[0 .. *n_tags). */
static int
get_tags(const cJSON *o, char tags[][MV_TAG_MAX + 1], uint32_t *n_tags,
    mv_event_error_t *e)
{
    const cJSON  *v = mv_json_field(o, "tags"), *c;
    const char   *why;
    uint32_t      n = 0;
    size_t        len;

    *n_tags = 0;

    if (v == NULL) {
        return MV_OK;
    }
    if (!cJSON_IsArray(v)) {
        return ev_fail(e, "invalid_field", "field \"tags\": expected an "
                       "array of strings");
    }

    for (c = v->child; c != NULL; c = c->next, n++) {
        if (n == MV_TAGS_MAX) {
            return ev_fail(e, "invalid_field", "field \"tags\": more than "
                           "%d tags", MV_TAGS_MAX);
        }
        if (!cJSON_IsString(c) || c->valuestring == NULL) {
            return ev_fail(e, "invalid_field", "field \"tags\": element %u "
                           "is not a string", n);
        }
        len = strlen(c->valuestring);
        why = mv_text_problem(c->valuestring, len, MV_TAG_MAX);
        if (why != NULL) {
            return ev_fail(e, "invalid_field", "field \"tags\": element %u: "
                           "%s (1 to %d bytes of UTF-8 text)", n, why,
                           MV_TAG_MAX);
        }
        memcpy(tags[n], c->valuestring, len + 1);
    }

    *n_tags = n;
    return MV_OK;
}


static int
get_popularity(const cJSON *o, mv_item_event_t *item, mv_event_error_t *e)
{
    const cJSON  *v = mv_json_field(o, "popularity_score");

    item->popularity = 0.0f;

    if (v == NULL) {
        return MV_OK;
    }
    if (!cJSON_IsNumber(v)) {
        return ev_fail(e, "invalid_field", "field \"popularity_score\": "
                       "expected a number");
    }
    if (mv_float_from_double(v->valuedouble, &item->popularity) != MV_OK) {
        return ev_fail(e, "non_finite_number", "field \"popularity_score\": "
                       "not finite as a float");
    }
    if (v->valuedouble < 0.0) {     /* as sent: -1e-50 is refused too */
        return ev_fail(e, "invalid_field", "field \"popularity_score\": "
                       "negative");
    }
    item->popularity += 0.0f;       /* -0 (from "-0" or "-1e-400") is 0 */

    return MV_OK;
}


/* Reads an optional boolean field into *out (0 when absent). */
static int
get_bool(const cJSON *o, const char *name, int *out, mv_event_error_t *e)
{
    const cJSON  *v = mv_json_field(o, name);

    *out = 0;

    if (v == NULL) {
        return MV_OK;
    }
    if (!cJSON_IsBool(v)) {
        return ev_fail(e, "invalid_field", "field \"%s\": expected true or "
                       "false", name);
    }
    *out = cJSON_IsTrue(v);

    return MV_OK;
}


static int
get_deleted(const cJSON *o, mv_event_origin_t origin, int *deleted,
    mv_event_error_t *e)
{
    if (get_bool(o, "deleted", deleted, e) != MV_OK) {
        return MV_ERR;
    }
    if (*deleted && origin == MV_ORIGIN_CLIENT) {
        return ev_fail(e, "invalid_field", "field \"deleted\": an item is "
                       "removed through the catalogue, not by a client");
    }

    return MV_OK;
}


/* ---- action types ------------------------------------------------------ */

/* "View", "Click", ... for a known type, NULL otherwise. */
const char *
mv_action_type_name(mv_action_type_t t)
{
    if ((int) t < 0 || (int) t >= MV_ACTION_TYPES) {
        return NULL;
    }
    return ev_type_names[t];
}


static int
ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}


/* 1 when s[0..len) equals the NUL-terminated name, ignoring ASCII case. */
static int
equal_nocase(const char *s, size_t len, const char *name)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (name[i] == '\0'
            || ascii_lower((unsigned char) s[i])
               != ascii_lower((unsigned char) name[i]))
        {
            return 0;
        }
    }

    return name[len] == '\0';
}


/* The type named by s[0..len) (either spelling, any case), or -1. */
int
mv_action_type_from_name(const char *s, size_t len)
{
    int  t;

    if (s == NULL) {
        return -1;
    }

    for (t = 0; t < MV_ACTION_TYPES; t++) {
        if (equal_nocase(s, len, ev_type_names[t])
            || equal_nocase(s, len, ev_type_snake[t]))
        {
            return t;
        }
    }

    return -1;
}


/* ---- parsing ----------------------------------------------------------- */

/*
 * Sets a->client_event_id (after a->event_id was read): from a client, an
 * event_id of its own is its retry key and the marker itself is the
 * server's to write; from data, the optional "client_event_id" boolean,
 * true only beside an event_id.
 */
static int
get_client_event_id(const cJSON *o, mv_event_origin_t origin,
    mv_action_t *a, mv_event_error_t *e)
{
    if (check_server_field(o, "client_event_id", origin, e) != MV_OK) {
        return MV_ERR;
    }
    if (origin == MV_ORIGIN_CLIENT) {
        a->client_event_id = a->event_id[0] != '\0';
        return MV_OK;
    }

    if (get_bool(o, "client_event_id", &a->client_event_id, e) != MV_OK) {
        return MV_ERR;
    }
    if (a->client_event_id && a->event_id[0] == '\0') {
        return ev_fail(e, "invalid_field", "field \"client_event_id\": true "
                       "without an event_id");
    }

    return MV_OK;
}


/* The fields of an action in object o (see mv_action_parse). */
static int
get_action(const cJSON *o, mv_event_origin_t origin, int64_t now_ms,
    mv_action_t *a, mv_event_error_t *e)
{
    const cJSON  *v;
    int           t;

    memset(a, 0, sizeof(*a));

    if (get_id(o, "event_id", 0, a->event_id, e) != MV_OK
        || get_client_event_id(o, origin, a, e) != MV_OK
        || get_id(o, "user_id", 1, a->user_id, e) != MV_OK
        || get_id(o, "item_id", 1, a->item_id, e) != MV_OK)
    {
        return MV_ERR;
    }

    v = mv_json_field(o, "action_type");
    if (v == NULL) {
        return ev_fail(e, "invalid_field", "field \"action_type\": missing");
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        return ev_fail(e, "invalid_field", "field \"action_type\": expected "
                       "a string");
    }
    t = mv_action_type_from_name(v->valuestring, strlen(v->valuestring));
    if (t < 0) {
        return ev_fail(e, "unknown_action_type", "field \"action_type\": "
                       "not one of View, Click, Like, Share, AddToCart, "
                       "Purchase, Dislike");
    }
    a->type = (mv_action_type_t) t;

    return get_time(o, "timestamp", now_ms, &a->timestamp_ms, e);
}


int
mv_action_parse(const char *buf, size_t len, mv_event_origin_t origin,
    int64_t now_ms, mv_action_t *a, mv_event_error_t *e)
{
    cJSON  *root;
    int     rc;

    root = ev_load(buf, len, e);
    if (root == NULL) {
        return MV_ERR;
    }
    rc = get_action(root, origin, now_ms, a, e);
    cJSON_Delete(root);
    return rc;
}


int
mv_item_parse(const char *buf, size_t len, mv_event_origin_t origin,
    int64_t now_ms, uint32_t expect_dim, float *embedding, uint32_t dim_cap,
    mv_item_event_t *item, mv_event_error_t *e)
{
    cJSON  *root;
    int     rc = MV_ERR;

    root = ev_load(buf, len, e);
    if (root == NULL) {
        return MV_ERR;
    }

    memset(item, 0, sizeof(*item));
    item->embedding = embedding;

    if (check_server_field(root, "event_id", origin, e) != MV_OK
        || get_id(root, "event_id", 0, item->event_id, e) != MV_OK
        || get_id(root, "item_id", 1, item->item_id, e) != MV_OK
        || get_embedding(root, expect_dim, embedding, dim_cap, &item->dim, e)
           != MV_OK
        || get_id(root, "category", 0, item->category, e) != MV_OK
        || get_tags(root, item->tags, &item->n_tags, e) != MV_OK
        || get_popularity(root, item, e) != MV_OK
        || get_time(root, "created_at", now_ms, &item->created_at_ms, e)
           != MV_OK
        || get_deleted(root, origin, &item->deleted, e) != MV_OK)
    {
        goto done;
    }

    rc = MV_OK;

done:
    cJSON_Delete(root);
    return rc;
}


/* "popularity" of an example: a whole number 1 .. the maximum. */
static int
get_count(const cJSON *o, uint64_t *count, mv_event_error_t *e)
{
    const cJSON  *v = mv_json_field(o, "popularity");
    double        d;

    if (v == NULL) {
        return ev_fail(e, "invalid_field", "field \"popularity\": missing");
    }
    if (!cJSON_IsNumber(v)) {
        return ev_fail(e, "invalid_field", "field \"popularity\": expected "
                       "a number");
    }
    d = v->valuedouble;
    if (!(d >= 1.0 && d <= (double) MV_EXAMPLE_POPULARITY_MAX)
        || d != floor(d))
    {
        return ev_fail(e, "invalid_field", "field \"popularity\": not a "
                       "whole number from 1 to 2^53 - 1");
    }
    *count = (uint64_t) d;
    return MV_OK;
}


/* "features" of an example: null or absent, or the item's features. */
static int
get_features(const cJSON *o, int64_t now_ms, mv_example_t *x,
    mv_event_error_t *e)
{
    const cJSON         *v = mv_json_field(o, "features");
    mv_item_features_t  *f = &x->features;

    x->has_features = 0;
    if (v == NULL) {
        return MV_OK;
    }
    if (!cJSON_IsObject(v)) {
        return ev_fail(e, "invalid_field", "field \"features\": expected an "
                       "object or null");
    }
    if (get_id(v, "category", 0, f->category, e) != MV_OK
        || get_tags(v, f->tags, &f->n_tags, e) != MV_OK
        || get_time(v, "created_at", now_ms, &f->created_at_ms, e) != MV_OK
        || get_deleted(v, MV_ORIGIN_DATA, &f->deleted, e) != MV_OK)
    {
        return MV_ERR;
    }
    x->has_features = 1;
    return MV_OK;
}


int
mv_example_parse(const char *buf, size_t len, int64_t now_ms,
    mv_example_t *x, mv_event_error_t *e)
{
    cJSON  *root;
    int     rc = MV_ERR;

    root = ev_load(buf, len, e);
    if (root == NULL) {
        return MV_ERR;
    }

    memset(x, 0, sizeof(*x));
    if (get_action(root, MV_ORIGIN_DATA, now_ms, &x->action, e) == MV_OK
        && get_count(root, &x->popularity, e) == MV_OK
        && get_features(root, now_ms, x, e) == MV_OK)
    {
        rc = MV_OK;
    }

    cJSON_Delete(root);
    return rc;
}


int
mv_user_vector_parse(const char *buf, size_t len, uint32_t expect_dim,
    float *embedding, uint32_t dim_cap, mv_user_vector_t *u,
    mv_event_error_t *e)
{
    cJSON  *root;
    int     rc = MV_ERR;

    root = ev_load(buf, len, e);
    if (root == NULL) {
        return MV_ERR;
    }

    memset(u, 0, sizeof(*u));
    u->embedding = embedding;

    if (get_id(root, "user_id", 1, u->user_id, e) == MV_OK
        && get_embedding(root, expect_dim, embedding, dim_cap, &u->dim, e)
           == MV_OK)
    {
        rc = MV_OK;
    }

    cJSON_Delete(root);
    return rc;
}
