/*
 * events_encode.c -- the canonical JSON of actions, items and training
 * examples, as they are written to the streams (see events.h).
 *
 * Encoding writes compact JSON through a bounded writer: floats with "%.9g"
 * (9 significant digits identify every float, so the text parses back to
 * the same bits; the C locale's decimal point is assumed, as nginx and the
 * worker never call setlocale), strings with '"', '\\' and control
 * characters escaped (parsed strings contain no control characters, so
 * this only matters for structs made by hand), times with mv_time_format.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* strnlen (POSIX.1-2008) */
#endif

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "events.h"


/* Longest "%.9g" of a float: "-1.17549435e-38", "-0.000123456789". */
#define EV_FLOAT_MAX      15

/* Bytes of an escaped string of n bytes, at worst (\u00XX per byte). */
#define EV_ESCAPED_MAX(n) (6 * (size_t) (n))

/* The item payload with every string empty, every number absent. */
#define EV_ITEM_SKELETON  "{\"event_id\":\"\",\"item_id\":\"\","            \
                          "\"embedding\":[],\"category\":\"\","            \
                          "\"tags\":[],\"popularity_score\":,"             \
                          "\"created_at\":\"\",\"deleted\":true}"


/* The example payload with every string empty, every number absent. */
#define EV_EXAMPLE_SKELETON  "{\"event_id\":\"\",\"user_id\":\"\","     \
                             "\"item_id\":\"\",\"action_type\":\"\","   \
                             "\"timestamp\":\"\",\"client_event_id\":true," \
                             "\"popularity\":,"                          \
                             "\"features\":{\"category\":\"\","       \
                             "\"tags\":[],\"created_at\":\"\","       \
                             "\"deleted\":true}}"

_Static_assert(sizeof(EV_EXAMPLE_SKELETON)
               + 4 * EV_ESCAPED_MAX(MV_ID_MAX)   /* event, user, item, cat. */
               + MV_TAGS_MAX * (EV_ESCAPED_MAX(MV_TAG_MAX) + 3)
               + sizeof("AddToCart") + 20 + 2 * MV_TIME_LEN
               <= MV_EXAMPLE_ENCODE_MAX, "MV_EXAMPLE_ENCODE_MAX too small");


/* ---- encoding ---------------------------------------------------------- */

/* A bounded output buffer; full is set (and nothing more written) once a
   write does not fit. */
typedef struct ev_out {
    char    *buf;
    size_t   cap;
    size_t   len;
    int      full;
} ev_out_t;


static void
out_bytes(ev_out_t *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->len) {
        o->full = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}


static void
out_lit(ev_out_t *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}


/* A quoted JSON string of s's first bytes (up to NUL or max). */
static void
out_str(ev_out_t *o, const char *s, size_t max)
{
    static const char  hex[] = "0123456789abcdef";
    size_t             n = strnlen(s, max), i, run = 0;
    char               esc[6];

    out_bytes(o, "\"", 1);

    for (i = 0; i < n; i++) {
        unsigned char  c = (unsigned char) s[i];

        if (c != '"' && c != '\\' && c >= 0x20 && c != 0x7f) {
            continue;
        }
        out_bytes(o, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            out_bytes(o, esc, 2);
        } else {
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            out_bytes(o, esc, 6);
        }
    }
    out_bytes(o, s + run, n - run);

    out_bytes(o, "\"", 1);
}


/* A float as "%.9g" (a non-finite one, which parsing never produces, as
   null, to keep the output JSON). */
static void
out_float(ev_out_t *o, float f)
{
    char  tmp[32];
    int   n;

    if (!isfinite(f)) {
        out_lit(o, "null");
        return;
    }
    n = snprintf(tmp, sizeof(tmp), "%.9g", (double) f);
    if (n <= 0 || (size_t) n >= sizeof(tmp)) {
        o->full = 1;
        return;
    }
    out_bytes(o, tmp, (size_t) n);
}


static void
out_time(ev_out_t *o, int64_t ms)
{
    char  tmp[MV_TIME_LEN + 1];

    mv_time_format(ms, tmp, sizeof(tmp));
    out_bytes(o, "\"", 1);
    out_bytes(o, tmp, MV_TIME_LEN);
    out_bytes(o, "\"", 1);
}


static size_t
out_end(ev_out_t *o)
{
    if (o->full) {
        return 0;
    }
    if (o->len < o->cap) {
        o->buf[o->len] = '\0';
    }
    return o->len;
}


/* An action's canonical fields, without the braces around them. */
static void
out_action_fields(ev_out_t *o, const mv_action_t *a, const char *name)
{
    if (a->event_id[0] != '\0') {
        out_lit(o, "\"event_id\":");
        out_str(o, a->event_id, MV_ID_MAX);
        out_lit(o, ",");
    }
    out_lit(o, "\"user_id\":");
    out_str(o, a->user_id, MV_ID_MAX);
    out_lit(o, ",\"item_id\":");
    out_str(o, a->item_id, MV_ID_MAX);
    out_lit(o, ",\"action_type\":\"");
    out_lit(o, name);
    out_lit(o, "\",\"timestamp\":");
    out_time(o, a->timestamp_ms);
    if (a->client_event_id) {
        if (a->event_id[0] == '\0') {
            o->full = 1;        /* would not parse back: refuse */
            return;
        }
        out_lit(o, ",\"client_event_id\":true");
    }
}


/* ["tag",...]: at most MV_TAGS_MAX of them. */
static void
out_tags(ev_out_t *o, const char tags[][MV_TAG_MAX + 1], uint32_t n_tags)
{
    out_lit(o, "[");
    if (n_tags > MV_TAGS_MAX) {
        n_tags = MV_TAGS_MAX;
    }
    for (uint32_t i = 0; i < n_tags; i++) {
        if (i > 0) {
            out_bytes(o, ",", 1);
        }
        out_str(o, tags[i], MV_TAG_MAX);
    }
    out_lit(o, "]");
}


/*
 * Writes an action's canonical payload (see events.h).  Returns its length,
 * or 0 when cap is too small or a->type is not a known type.  An action as
 * the parser makes it (ids need no escaping) takes at most 298 bytes, so 300
 * are always enough.
 */
size_t
mv_action_encode(const mv_action_t *a, char *buf, size_t cap)
{
    ev_out_t     o = { buf, buf == NULL ? 0 : cap, 0, 0 };
    const char  *name = mv_action_type_name(a->type);

    if (name == NULL) {
        return 0;
    }

    out_lit(&o, "{");
    out_action_fields(&o, a, name);
    out_lit(&o, "}");

    return out_end(&o);
}


/*
 * Writes a training example's canonical payload (see events.h): the
 * action's fields, "popularity", then "features" (an object, or null).
 */
size_t
mv_example_encode(const mv_example_t *x, char *buf, size_t cap)
{
    ev_out_t                  o = { buf, buf == NULL ? 0 : cap, 0, 0 };
    const char               *name = mv_action_type_name(x->action.type);
    const mv_item_features_t *f = &x->features;
    char                      num[24];

    if (name == NULL || x->popularity < 1
        || x->popularity > MV_EXAMPLE_POPULARITY_MAX)
    {
        return 0;
    }

    out_lit(&o, "{");
    out_action_fields(&o, &x->action, name);
    snprintf(num, sizeof(num), "%llu", (unsigned long long) x->popularity);
    out_lit(&o, ",\"popularity\":");
    out_lit(&o, num);
    out_lit(&o, ",\"features\":");
    if (!x->has_features) {
        out_lit(&o, "null}");
        return out_end(&o);
    }

    out_lit(&o, "{");
    if (f->category[0] != '\0') {
        out_lit(&o, "\"category\":");
        out_str(&o, f->category, MV_ID_MAX);
        out_lit(&o, ",");
    }
    out_lit(&o, "\"tags\":");
    out_tags(&o, f->tags, f->n_tags);
    out_lit(&o, ",\"created_at\":");
    out_time(&o, f->created_at_ms);
    if (f->deleted) {
        out_lit(&o, ",\"deleted\":true");
    }
    out_lit(&o, "}}");

    return out_end(&o);
}


/*
 * Writes an item's canonical payload (see events.h).  Returns its length, or
 * 0 when cap is too small or item->embedding is NULL with a dim above 0.
 * At most MV_TAGS_MAX tags are written.
 */
size_t
mv_item_encode(const mv_item_event_t *item, char *buf, size_t cap)
{
    ev_out_t  o = { buf, buf == NULL ? 0 : cap, 0, 0 };
    uint32_t  i;

    if (item->dim > 0 && item->embedding == NULL) {
        return 0;
    }

    out_lit(&o, "{");
    if (item->event_id[0] != '\0') {
        out_lit(&o, "\"event_id\":");
        out_str(&o, item->event_id, MV_ID_MAX);
        out_lit(&o, ",");
    }
    out_lit(&o, "\"item_id\":");
    out_str(&o, item->item_id, MV_ID_MAX);

    out_lit(&o, ",\"embedding\":[");
    for (i = 0; i < item->dim && !o.full; i++) {
        if (i > 0) {
            out_bytes(&o, ",", 1);
        }
        out_float(&o, item->embedding[i]);
    }
    out_lit(&o, "]");

    if (item->category[0] != '\0') {
        out_lit(&o, ",\"category\":");
        out_str(&o, item->category, MV_ID_MAX);
    }

    out_lit(&o, ",\"tags\":");
    out_tags(&o, item->tags, item->n_tags);

    out_lit(&o, ",\"popularity_score\":");
    out_float(&o, item->popularity);
    out_lit(&o, ",\"created_at\":");
    out_time(&o, item->created_at_ms);
    if (item->deleted) {
        out_lit(&o, ",\"deleted\":true");
    }
    out_lit(&o, "}");

    return out_end(&o);
}


/*
 * An upper bound of mv_item_encode's output for dimension dim, its NUL
 * included, whatever the strings hold (each byte escaped at worst).
 */
size_t
mv_item_encode_bound(uint32_t dim)
{
    return sizeof(EV_ITEM_SKELETON) - 1
           + 3 * EV_ESCAPED_MAX(MV_ID_MAX)          /* event, item, category */
           + MV_TAGS_MAX * (EV_ESCAPED_MAX(MV_TAG_MAX) + 3)    /* "..."[,] */
           + (size_t) dim * (EV_FLOAT_MAX + 1)                 /* number[,] */
           + EV_FLOAT_MAX                                   /* popularity */
           + MV_TIME_LEN
           + 1;                                                    /* NUL */
}
