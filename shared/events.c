/*
 * events.c -- strict parsing and canonical encoding of actions and items
 * (see events.h for the contract).
 *
 * A body goes through four gates before any field is looked at:
 *
 *   1. A byte scan (json_prescan) that closes the places where cJSON is
 *      more lenient than RFC 8259, or where what it decodes hides what was
 *      sent:
 *        - numbers: cJSON hands the characters [0-9+-.eE] to strtod, so it
 *          takes "01", "1.", "-.5" and "1.e5"; the scan checks the JSON
 *          number grammar;
 *        - whitespace: cJSON skips every byte <= 0x20 between tokens (NUL
 *          and control characters included); the scan allows only space,
 *          tab, CR and LF there, and no byte >= 0x7f (so no UTF-8 byte
 *          order mark either, which cJSON skips);
 *        - strings: cJSON copies raw control characters and invalid UTF-8
 *          through, decodes "\u0000" to a NUL that silently cuts the string
 *          short, and decodes a "\u" escape with non-hex digits ("\uZZZZ")
 *          to NUL as well; the scan requires well-formed UTF-8 (no
 *          overlongs, no surrogates, nothing above U+10FFFF), no raw byte
 *          below 0x20, four hex digits after "\u", and no "\u0000";
 *        - size: nesting deeper than EV_MAX_DEPTH or more than
 *          EV_MAX_VALUES values is refused before cJSON allocates a node
 *          per value (or recurses per level).
 *      The scan does not check the structure (brackets, commas, colons):
 *      that is cJSON's part, and it is strict there.
 *   2. cJSON_ParseWithLengthOpts over exactly len bytes (the body is not
 *      NUL-terminated), then only JSON whitespace may follow the value.
 *   3. The top level must be an object.
 *   4. No key may occur twice among its members (all members, not only the
 *      ones used, so that no reader of the body can see a different value
 *      than we did).  The keys are sorted (qsort, O(n log n) whatever the
 *      body) and neighbours compared.
 *
 * Then each field is checked in the order of its canonical form, and the
 * first problem is reported.  Every string kept (ids, tags) is checked
 * again after decoding: 1..max bytes of well-formed UTF-8 without control
 * characters (below 0x20, and 0x7f); ids must also pass mv_id_valid.
 * Numbers are converted from cJSON's double: a value that is infinite (cJSON
 * gives inf for "1e999") or that would round to infinity as a float is
 * refused as "non_finite_number" before the conversion (which would be
 * undefined behaviour otherwise).
 *
 * Encoding writes the canonical compact JSON through a bounded writer:
 * floats with "%.9g" (9 significant digits identify every float, so the
 * text parses back to the same bits; the C locale's decimal point is
 * assumed, as nginx and the worker never call setlocale), strings with '"',
 * '\\' and control characters escaped (parsed strings contain no control
 * characters, so this only matters for structs made by hand), timestamps
 * with mv_time_format.
 *
 * cJSON itself keeps a global "last error" that every parse writes (we
 * never read it); it is cJSON's, not ours, but it means concurrent parses
 * from several threads race on it (harmless for the results).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* strnlen (POSIX.1-2008) */
#endif

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "events.h"
#include "ids.h"


/* Deepest nesting accepted; the events themselves need 2. */
#define EV_MAX_DEPTH      32

/* Most values (strings, keys, numbers, literals, containers) accepted. */
#define EV_MAX_VALUES     (4 * MV_DIM_MAX)

/* Keys sorted on the stack up to this many members; more are malloc'ed. */
#define EV_KEYS_STACK     64

/* Longest "%.9g" of a float: "-1.17549435e-38", "-0.000123456789". */
#define EV_FLOAT_MAX      15

/* Bytes of an escaped string of n bytes, at worst (\u00XX per byte). */
#define EV_ESCAPED_MAX(n) (6 * (size_t) (n))

/* Length of "YYYY-MM-DDTHH:MM:SS.mmmZ". */
#define EV_TIME_LEN       24

/* Unix ms of 1970-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z. */
#define EV_TIME_MIN       INT64_C(0)
#define EV_TIME_MAX       INT64_C(253402300799999)

/* The item payload with every string empty, every number absent. */
#define EV_ITEM_SKELETON  "{\"event_id\":\"\",\"item_id\":\"\","            \
                          "\"embedding\":[],\"category\":\"\","            \
                          "\"tags\":[],\"popularity_score\":,"             \
                          "\"created_at\":\"\"}"

/* The smallest double that rounds to infinity as a float: FLT_MAX plus
   half an ulp (the tie rounds to even, away from FLT_MAX's odd mantissa). */
#define EV_FLOAT_OVERFLOW 0x1.ffffffp127


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


/* ---- UTF-8 ------------------------------------------------------------- */

/*
 * Length (1..4) of the well-formed UTF-8 sequence at s[0..len), len >= 1,
 * or 0 when it is not one: a stray continuation byte, an overlong form, a
 * surrogate (U+D800..DFFF), a code point above U+10FFFF, or a truncated
 * sequence.
 */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char  c = s[0], lo = 0x80, hi = 0xbf;
    size_t         n, i;

    if (c < 0x80) {
        return 1;
    }
    if (c < 0xc2) {
        return 0;               /* continuation byte, or overlong C0/C1 */
    }
    if (c < 0xe0) {
        n = 2;
    } else if (c < 0xf0) {
        n = 3;
        if (c == 0xe0) {
            lo = 0xa0;          /* overlong */
        } else if (c == 0xed) {
            hi = 0x9f;          /* surrogates */
        }
    } else if (c < 0xf5) {
        n = 4;
        if (c == 0xf0) {
            lo = 0x90;          /* overlong */
        } else if (c == 0xf4) {
            hi = 0x8f;          /* above U+10FFFF */
        }
    } else {
        return 0;
    }

    if (len < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


/*
 * Checks a decoded string we keep: 1..max bytes of UTF-8 without control
 * characters.  Returns NULL when it is fine, else what is wrong.
 */
static const char *
text_problem(const char *s, size_t len, size_t max)
{
    const unsigned char  *p = (const unsigned char *) s;
    size_t                i, n;

    if (len == 0) {
        return "empty";
    }
    if (len > max) {
        return "too long";
    }

    for (i = 0; i < len; i += n) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return "contains a control character";
        }
        n = utf8_seq(p + i, len - i);
        if (n == 0) {
            return "not UTF-8";
        }
    }

    return NULL;
}


/* ---- the byte scan ----------------------------------------------------- */

static int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}


static int
is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}


static int
is_json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


/*
 * Length of the JSON number at p[0..len) (p[0] is '-' or a digit), or 0 when
 * it does not follow the grammar  -? (0 | [1-9][0-9]*) (. [0-9]+)?
 * ([eE] [+-]? [0-9]+)?  or runs on into characters strtod would take.
 */
static size_t
scan_number(const unsigned char *p, size_t len)
{
    size_t  i = 0;

    if (p[i] == '-') {
        i++;
    }
    if (i >= len || !is_digit(p[i])) {
        return 0;
    }
    if (p[i] == '0') {
        i++;
    } else {
        while (i < len && is_digit(p[i])) {
            i++;
        }
    }

    if (i < len && p[i] == '.') {
        i++;
        if (i >= len || !is_digit(p[i])) {
            return 0;
        }
        while (i < len && is_digit(p[i])) {
            i++;
        }
    }

    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < len && (p[i] == '+' || p[i] == '-')) {
            i++;
        }
        if (i >= len || !is_digit(p[i])) {
            return 0;
        }
        while (i < len && is_digit(p[i])) {
            i++;
        }
    }

    if (i < len && (is_digit(p[i]) || p[i] == '.' || p[i] == 'e'
                    || p[i] == 'E' || p[i] == '+' || p[i] == '-'))
    {
        return 0;
    }

    return i;
}


/*
 * Length of the JSON string at p[0..len) (p[0] is '"'), closing quote
 * included, or 0 with *why set when it is malformed in a way cJSON would
 * let through (or not: an unterminated string is reported here too).
 * *at receives the offset of the problem.
 */
static size_t
scan_string(const unsigned char *p, size_t len, const char **why,
    size_t *at)
{
    size_t  i = 1, n;

    while (i < len) {
        if (p[i] == '"') {
            return i + 1;
        }

        if (p[i] >= 0x80) {
            n = utf8_seq(p + i, len - i);
            if (n == 0) {
                *why = "invalid UTF-8";
                *at = i;
                return 0;
            }
            i += n;
            continue;
        }

        if (p[i] < 0x20) {
            *why = "control character in a string";
            *at = i;
            return 0;
        }

        if (p[i] == '\\') {
            if (i + 1 >= len) {
                break;
            }
            if (p[i + 1] == 'u') {
                if (len - i < 6 || !is_hex(p[i + 2]) || !is_hex(p[i + 3])
                    || !is_hex(p[i + 4]) || !is_hex(p[i + 5]))
                {
                    *why = "bad \\u escape";
                    *at = i;
                    return 0;
                }
                if (memcmp(p + i + 2, "0000", 4) == 0) {
                    *why = "\\u0000 in a string";
                    *at = i;
                    return 0;
                }
                i += 6;
                continue;
            }
            i += 2;             /* cJSON checks the escape letter */
            continue;
        }

        i++;
    }

    *why = "unterminated string";
    *at = len;
    return 0;
}


/* Gate 1 (see the top of the file). */
static int
json_prescan(const unsigned char *p, size_t len, mv_event_error_t *e)
{
    size_t       i = 0, n, at = 0, values = 0;
    unsigned     depth = 0;
    const char  *why = NULL;

    while (i < len) {
        unsigned char  c = p[i];

        if (c == '"') {
            n = scan_string(p + i, len - i, &why, &at);
            if (n == 0) {
                return ev_fail(e, "invalid_json", "%s at byte %zu", why,
                               i + at);
            }
            i += n;
            values++;

        } else if (c == '-' || is_digit(c)) {
            n = scan_number(p + i, len - i);
            if (n == 0) {
                return ev_fail(e, "invalid_json",
                               "malformed number at byte %zu", i);
            }
            i += n;
            values++;

        } else {
            if (c == '{' || c == '[') {
                if (++depth > EV_MAX_DEPTH) {
                    return ev_fail(e, "invalid_json",
                                   "nested deeper than %d levels",
                                   EV_MAX_DEPTH);
                }
                values++;
            } else if (c == '}' || c == ']') {
                if (depth > 0) {
                    depth--;
                }
            } else if (c == 't' || c == 'f' || c == 'n') {
                values++;       /* true, false, null: counted once each */
            } else if ((c < 0x20 && !is_json_space(c)) || c >= 0x7f) {
                return ev_fail(e, "invalid_json",
                               "unexpected byte 0x%02x at byte %zu",
                               (unsigned) c, i);
            }
            i++;
        }

        if (values > EV_MAX_VALUES) {
            return ev_fail(e, "invalid_json", "more than %d values",
                           EV_MAX_VALUES);
        }
    }

    return MV_OK;
}


/* ---- loading a body ---------------------------------------------------- */

static int
key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}


/* Gate 4: no key twice among the members of object o. */
static int
check_duplicate_keys(const cJSON *o, mv_event_error_t *e)
{
    const char   *stack[EV_KEYS_STACK];
    const char  **keys = stack;
    const cJSON  *c;
    size_t        n = 0, i;
    int           rc = MV_OK;

    for (c = o->child; c != NULL; c = c->next) {
        n++;
    }
    if (n < 2) {
        return MV_OK;
    }
    if (n > EV_KEYS_STACK) {
        keys = malloc(n * sizeof(*keys));
        if (keys == NULL) {
            return ev_fail(e, "invalid_json", "out of memory");
        }
    }

    i = 0;
    for (c = o->child; c != NULL; c = c->next) {
        keys[i++] = c->string;
    }
    qsort(keys, n, sizeof(*keys), key_cmp);

    for (i = 1; i < n; i++) {
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            size_t  klen = strlen(keys[i]);

            /* Name the key only when it is plainly printable. */
            if (klen <= 40 && mv_id_valid(keys[i], klen)) {
                rc = ev_fail(e, "invalid_json", "key \"%s\" given twice",
                             keys[i]);
            } else {
                rc = ev_fail(e, "invalid_json", "a key is given twice");
            }
            break;
        }
    }

    if (keys != stack) {
        free(keys);
    }

    return rc;
}


/*
 * Gates 1 to 4: returns the parsed top-level object (the caller deletes
 * it), or NULL with e filled.
 */
static cJSON *
load_object(const char *buf, size_t len, mv_event_error_t *e)
{
    cJSON       *root;
    const char  *end = NULL;
    size_t       i;

    if (buf == NULL || len == 0) {
        ev_fail(e, "invalid_json", "empty body");
        return NULL;
    }

    if (json_prescan((const unsigned char *) buf, len, e) != MV_OK) {
        return NULL;
    }

    root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (root == NULL) {
        if (end != NULL && end >= buf && end <= buf + len) {
            ev_fail(e, "invalid_json", "not valid JSON (at byte %zu)",
                    (size_t) (end - buf));
        } else {
            ev_fail(e, "invalid_json", "not valid JSON");
        }
        return NULL;
    }

    if (end == NULL || end < buf || end > buf + len) {
        ev_fail(e, "invalid_json", "not valid JSON");
        goto fail;
    }
    for (i = (size_t) (end - buf); i < len; i++) {
        if (!is_json_space((unsigned char) buf[i])) {
            ev_fail(e, "invalid_json", "trailing bytes after the value "
                    "(at byte %zu)", i);
            goto fail;
        }
    }

    if (!cJSON_IsObject(root)) {
        ev_fail(e, "invalid_json", "the body is not a JSON object");
        goto fail;
    }

    if (check_duplicate_keys(root, e) != MV_OK) {
        goto fail;
    }

    return root;

fail:
    cJSON_Delete(root);
    return NULL;
}


/* ---- fields ------------------------------------------------------------ */

static const cJSON *
field(const cJSON *o, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(o, name);
}


/*
 * Reads id field name into out (MV_ID_MAX + 1 bytes).  An absent optional
 * field leaves out empty.
 */
static int
get_id(const cJSON *o, const char *name, int required, char *out,
    mv_event_error_t *e)
{
    const cJSON  *v = field(o, name);
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
    if (!mv_id_valid(v->valuestring, n)) {
        return ev_fail(e, "invalid_field", "field \"%s\": not an id (1 to "
                       "%d bytes of [A-Za-z0-9._:-])", name, MV_ID_MAX);
    }

    memcpy(out, v->valuestring, n + 1);
    return MV_OK;
}


/* Reads an optional RFC 3339 field into *ms (now_ms when absent). */
static int
get_time(const cJSON *o, const char *name, int64_t now_ms, int64_t *ms,
    mv_event_error_t *e)
{
    const cJSON  *v = field(o, name);

    if (v == NULL) {
        *ms = now_ms;
        return MV_OK;
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        return ev_fail(e, "invalid_field", "field \"%s\": expected a string",
                       name);
    }
    if (mv_time_parse(v->valuestring, strlen(v->valuestring), ms) != MV_OK) {
        return ev_fail(e, "invalid_field", "field \"%s\": not an RFC 3339 "
                       "date-time in 1970..9999", name);
    }

    return MV_OK;
}


/*
 * Converts a JSON number to a float: MV_OK, or MV_ERR when it is not finite
 * or would round to infinity.
 */
static int
to_float(double d, float *f)
{
    if (!(fabs(d) < EV_FLOAT_OVERFLOW)) {
        return MV_ERR;          /* NaN, infinite, or too large */
    }
    *f = (float) d;
    return MV_OK;
}


static int
get_embedding(const cJSON *o, uint32_t expect_dim, float *embedding,
    uint32_t dim_cap, mv_item_event_t *item, mv_event_error_t *e)
{
    const cJSON  *v = field(o, "embedding"), *c;
    size_t        n = 0, i;

    if (embedding == NULL) {
        dim_cap = 0;
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
        if (to_float(c->valuedouble, &embedding[i]) != MV_OK) {
            return ev_fail(e, "non_finite_number", "field \"embedding\": "
                           "element %zu is not finite as a float", i);
        }
    }

    item->dim = (uint32_t) n;
    return MV_OK;
}


static int
get_tags(const cJSON *o, mv_item_event_t *item, mv_event_error_t *e)
{
    const cJSON  *v = field(o, "tags"), *c;
    const char   *why;
    uint32_t      n = 0;
    size_t        len;

    item->n_tags = 0;

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
        why = text_problem(c->valuestring, len, MV_TAG_MAX);
        if (why != NULL) {
            return ev_fail(e, "invalid_field", "field \"tags\": element %u: "
                           "%s (1 to %d bytes of UTF-8 text)", n, why,
                           MV_TAG_MAX);
        }
        memcpy(item->tags[n], c->valuestring, len + 1);
    }

    item->n_tags = n;
    return MV_OK;
}


static int
get_popularity(const cJSON *o, mv_item_event_t *item, mv_event_error_t *e)
{
    const cJSON  *v = field(o, "popularity_score");

    item->popularity = 0.0f;

    if (v == NULL) {
        return MV_OK;
    }
    if (!cJSON_IsNumber(v)) {
        return ev_fail(e, "invalid_field", "field \"popularity_score\": "
                       "expected a number");
    }
    if (to_float(v->valuedouble, &item->popularity) != MV_OK) {
        return ev_fail(e, "non_finite_number", "field \"popularity_score\": "
                       "not finite as a float");
    }
    if (v->valuedouble < 0.0) {     /* as sent: -1e-50 is refused too */
        return ev_fail(e, "invalid_field", "field \"popularity_score\": "
                       "negative");
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
 * Parses an action body (see events.h).  e may be NULL.  On MV_ERR, *a is
 * unspecified.
 */
int
mv_action_parse(const char *buf, size_t len, int64_t now_ms, mv_action_t *a,
    mv_event_error_t *e)
{
    cJSON        *root;
    const cJSON  *v;
    int           rc = MV_ERR, t;

    root = load_object(buf, len, e);
    if (root == NULL) {
        return MV_ERR;
    }

    memset(a, 0, sizeof(*a));

    if (get_id(root, "event_id", 0, a->event_id, e) != MV_OK
        || get_id(root, "user_id", 1, a->user_id, e) != MV_OK
        || get_id(root, "item_id", 1, a->item_id, e) != MV_OK)
    {
        goto done;
    }

    v = field(root, "action_type");
    if (v == NULL) {
        ev_fail(e, "invalid_field", "field \"action_type\": missing");
        goto done;
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        ev_fail(e, "invalid_field", "field \"action_type\": expected a "
                "string");
        goto done;
    }
    t = mv_action_type_from_name(v->valuestring, strlen(v->valuestring));
    if (t < 0) {
        ev_fail(e, "unknown_action_type", "field \"action_type\": not one of "
                "View, Click, Like, Share, AddToCart, Purchase, Dislike");
        goto done;
    }
    a->type = (mv_action_type_t) t;

    if (get_time(root, "timestamp", now_ms, &a->timestamp_ms, e) != MV_OK) {
        goto done;
    }

    rc = MV_OK;

done:
    cJSON_Delete(root);
    return rc;
}


/*
 * Parses an item body (see events.h).  The embedding goes to
 * embedding[0 .. dim_cap) (a NULL embedding counts as dim_cap 0).  e may be
 * NULL.  On MV_ERR, *item and the embedding buffer are unspecified.
 */
int
mv_item_parse(const char *buf, size_t len, int64_t now_ms,
    uint32_t expect_dim, float *embedding, uint32_t dim_cap,
    mv_item_event_t *item, mv_event_error_t *e)
{
    cJSON  *root;
    int     rc = MV_ERR;

    root = load_object(buf, len, e);
    if (root == NULL) {
        return MV_ERR;
    }

    memset(item, 0, sizeof(*item));
    item->embedding = embedding;

    if (get_id(root, "event_id", 0, item->event_id, e) != MV_OK
        || get_id(root, "item_id", 1, item->item_id, e) != MV_OK
        || get_embedding(root, expect_dim, embedding, dim_cap, item, e)
           != MV_OK
        || get_id(root, "category", 0, item->category, e) != MV_OK
        || get_tags(root, item, e) != MV_OK
        || get_popularity(root, item, e) != MV_OK
        || get_time(root, "created_at", now_ms, &item->created_at_ms, e)
           != MV_OK)
    {
        goto done;
    }

    rc = MV_OK;

done:
    cJSON_Delete(root);
    return rc;
}


/* ---- time -------------------------------------------------------------- */

/* n decimal digits at s as a number, or -1 when one is not a digit. */
static int
read_digits(const char *s, size_t n)
{
    int     v = 0;
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!is_digit((unsigned char) s[i])) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }

    return v;
}


static int
is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}


static int
days_in_month(int y, int m)
{
    static const int  days[12] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    return (m == 2 && is_leap(y)) ? 29 : days[m - 1];
}


/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant). */
static int64_t
days_from_civil(int y, int m, int d)
{
    int64_t   era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


/* The inverse of days_from_civil. */
static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t  era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = (int) (yoe + era * 400 + (*m <= 2));
}


/*
 * RFC 3339 date-time to unix ms (see events.h).  The fraction keeps its
 * first three digits (truncated); a leap second (:60) counts as :59.  The
 * instant, offset applied, must lie in 1970..9999 as well.
 */
int
mv_time_parse(const char *s, size_t len, int64_t *ms)
{
    int      y, mo, d, h, mi, sec, frac = 0, oh, om, sign;
    size_t   i, nfrac;
    int64_t  t;

    if (s == NULL || ms == NULL || len < 20) {
        return MV_ERR;
    }

    /* YYYY-MM-DD?HH:MM:SS */
    if (s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':'
        || (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
    {
        return MV_ERR;
    }
    y = read_digits(s, 4);
    mo = read_digits(s + 5, 2);
    d = read_digits(s + 8, 2);
    h = read_digits(s + 11, 2);
    mi = read_digits(s + 14, 2);
    sec = read_digits(s + 17, 2);
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1
        || d > days_in_month(y, mo) || h < 0 || h > 23 || mi < 0 || mi > 59
        || sec < 0 || sec > 60)
    {
        return MV_ERR;
    }
    if (sec == 60) {
        sec = 59;
    }

    /* .fraction: 1 to 9 digits, truncated to milliseconds */
    i = 19;
    if (s[i] == '.') {
        i++;
        nfrac = 0;
        while (i < len && is_digit((unsigned char) s[i])) {
            if (nfrac < 3) {
                frac = frac * 10 + (s[i] - '0');
            }
            nfrac++;
            i++;
        }
        if (nfrac == 0 || nfrac > 9) {
            return MV_ERR;
        }
        for (; nfrac < 3; nfrac++) {
            frac *= 10;
        }
    }

    /* Z, or +hh:mm / -hh:mm */
    if (i >= len) {
        return MV_ERR;
    }
    if (s[i] == 'Z' || s[i] == 'z') {
        if (len != i + 1) {
            return MV_ERR;
        }
        sign = 0;
        oh = 0;
        om = 0;
    } else if (s[i] == '+' || s[i] == '-') {
        if (len != i + 6 || s[i + 3] != ':') {
            return MV_ERR;
        }
        sign = s[i] == '+' ? 1 : -1;
        oh = read_digits(s + i + 1, 2);
        om = read_digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59) {
            return MV_ERR;
        }
    } else {
        return MV_ERR;
    }

    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= (int64_t) sign * (oh * 3600 + om * 60);
    t = t * 1000 + frac;

    if (t < EV_TIME_MIN || t > EV_TIME_MAX) {
        return MV_ERR;
    }

    *ms = t;
    return MV_OK;
}


static char *
put_digits(char *p, int v, int n)
{
    int  i;

    for (i = n - 1; i >= 0; i--) {
        p[i] = (char) ('0' + v % 10);
        v /= 10;
    }

    return p + n;
}


/*
 * Unix ms to "YYYY-MM-DDTHH:MM:SS.mmmZ" in buf (len >= 25), which is
 * returned; NULL when buf is NULL or len too small.  ms outside the range
 * mv_time_parse accepts (1970..9999) is clamped into it, so the text always
 * parses back.
 */
char *
mv_time_format(int64_t ms, char *buf, size_t len)
{
    int64_t  days, rem;
    int      y, mo, d;
    char    *p = buf;

    if (buf == NULL || len < EV_TIME_LEN + 1) {
        return NULL;
    }

    if (ms < EV_TIME_MIN) {
        ms = EV_TIME_MIN;
    } else if (ms > EV_TIME_MAX) {
        ms = EV_TIME_MAX;
    }

    days = ms / 86400000;
    rem = ms % 86400000;
    civil_from_days(days, &y, &mo, &d);

    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, mo, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, (int) (rem / 3600000), 2);
    *p++ = ':';
    p = put_digits(p, (int) (rem / 60000 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (int) (rem / 1000 % 60), 2);
    *p++ = '.';
    p = put_digits(p, (int) (rem % 1000), 3);
    *p++ = 'Z';
    *p = '\0';

    return buf;
}


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
    char  tmp[EV_TIME_LEN + 1];

    mv_time_format(ms, tmp, sizeof(tmp));
    out_bytes(o, "\"", 1);
    out_bytes(o, tmp, EV_TIME_LEN);
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
    if (a->event_id[0] != '\0') {
        out_lit(&o, "\"event_id\":");
        out_str(&o, a->event_id, MV_ID_MAX);
        out_lit(&o, ",");
    }
    out_lit(&o, "\"user_id\":");
    out_str(&o, a->user_id, MV_ID_MAX);
    out_lit(&o, ",\"item_id\":");
    out_str(&o, a->item_id, MV_ID_MAX);
    out_lit(&o, ",\"action_type\":\"");
    out_lit(&o, name);
    out_lit(&o, "\",\"timestamp\":");
    out_time(&o, a->timestamp_ms);
    out_lit(&o, "}");

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
    uint32_t  i, n_tags;

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

    out_lit(&o, ",\"tags\":[");
    n_tags = item->n_tags < MV_TAGS_MAX ? item->n_tags : MV_TAGS_MAX;
    for (i = 0; i < n_tags; i++) {
        if (i > 0) {
            out_bytes(&o, ",", 1);
        }
        out_str(&o, item->tags[i], MV_TAG_MAX);
    }

    out_lit(&o, "],\"popularity_score\":");
    out_float(&o, item->popularity);
    out_lit(&o, ",\"created_at\":");
    out_time(&o, item->created_at_ms);
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
           + EV_TIME_LEN
           + 1;                                                    /* NUL */
}
