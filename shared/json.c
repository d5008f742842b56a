/*
 * json.c -- strict JSON loading, the number grammar and text checks (see
 * json.h for the contract).
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
 *        - size: nesting deeper than MV_JSON_MAX_DEPTH or more than
 *          MV_JSON_MAX_VALUES values is refused before cJSON allocates a
 *          node per value (or recurses per level).
 *      The scan does not check the structure (brackets, commas, colons):
 *      that is cJSON's part, and it is strict there.
 *   2. cJSON_ParseWithLengthOpts over exactly len bytes (the body is not
 *      NUL-terminated), then only JSON whitespace may follow the value.
 *   3. The top level must be an object.
 *   4. No key may occur twice among the members of any object of the
 *      document (all members at every depth, not only the ones used, so
 *      that no reader of the body can see a different value than we did).  The keys are sorted (qsort, O(n log n) whatever the
 *      body) and neighbours compared.
 *
 * cJSON itself keeps a global "last error" that every parse writes (we
 * never read it); it is cJSON's, not ours, but it means concurrent parses
 * from several threads race on it (harmless for the results).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ids.h"
#include "json.h"


/* Keys sorted on the stack up to this many members; more are malloc'ed. */
#define JSON_KEYS_STACK    64

/* The smallest double that rounds to infinity as a float: FLT_MAX plus
   half an ulp (the tie rounds to even, away from FLT_MAX's odd mantissa). */
#define FLOAT_OVERFLOW     0x1.ffffffp127


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
const char *
mv_text_problem(const char *s, size_t len, size_t max)
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
json_prescan(const unsigned char *p, size_t len, mv_err_t *err)
{
    size_t       i = 0, n, at = 0, values = 0;
    unsigned     depth = 0;
    const char  *why = NULL;

    while (i < len) {
        unsigned char  c = p[i];

        if (c == '"') {
            n = scan_string(p + i, len - i, &why, &at);
            if (n == 0) {
                return mv_err_set(err, "%s at byte %zu", why,
                               i + at);
            }
            i += n;
            values++;

        } else if (c == '-' || is_digit(c)) {
            n = scan_number(p + i, len - i);
            if (n == 0) {
                return mv_err_set(err, "malformed number at byte %zu", i);
            }
            i += n;
            values++;

        } else {
            if (c == '{' || c == '[') {
                if (++depth > MV_JSON_MAX_DEPTH) {
                    return mv_err_set(err, "nested deeper than %d levels",
                                   MV_JSON_MAX_DEPTH);
                }
                values++;
            } else if (c == '}' || c == ']') {
                if (depth > 0) {
                    depth--;
                }
            } else if (c == 't' || c == 'f' || c == 'n') {
                values++;       /* true, false, null: counted once each */
            } else if ((c < 0x20 && !is_json_space(c)) || c >= 0x7f) {
                return mv_err_set(err, "unexpected byte 0x%02x at byte %zu",
                               (unsigned) c, i);
            }
            i++;
        }

        if (values > MV_JSON_MAX_VALUES) {
            return mv_err_set(err, "more than %d values",
                           MV_JSON_MAX_VALUES);
        }
    }

    return MV_OK;
}


static int
key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}


/* Gate 4: no key twice among the members of object o. */
static int
check_duplicate_keys(const cJSON *o, mv_err_t *err)
{
    const char   *stack[JSON_KEYS_STACK];
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
    if (n > JSON_KEYS_STACK) {
        keys = malloc(n * sizeof(*keys));
        if (keys == NULL) {
            return mv_err_set(err, "out of memory");
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
                rc = mv_err_set(err, "key \"%s\" given twice",
                             keys[i]);
            } else {
                rc = mv_err_set(err, "a key is given twice");
            }
            break;
        }
    }

    if (keys != stack) {
        free(keys);
    }

    return rc;
}


/* Gate 4 over every object of the tree (depth bounded by the prescan). */
static int
check_duplicate_keys_tree(const cJSON *v, mv_err_t *err)
{
    const cJSON  *c;

    if (cJSON_IsObject(v) && check_duplicate_keys(v, err) != MV_OK) {
        return MV_ERR;
    }

    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        for (c = v->child; c != NULL; c = c->next) {
            if (check_duplicate_keys_tree(c, err) != MV_OK) {
                return MV_ERR;
            }
        }
    }

    return MV_OK;
}


/*
 * Gates 1 to 4: returns the parsed top-level object (the caller deletes
 * it), or NULL with e filled.
 */
cJSON *
mv_json_load_object(const char *buf, size_t len, mv_err_t *err)
{
    cJSON       *root;
    const char  *end = NULL;
    size_t       i;

    if (buf == NULL || len == 0) {
        mv_err_set(err, "empty body");
        return NULL;
    }

    if (json_prescan((const unsigned char *) buf, len, err) != MV_OK) {
        return NULL;
    }

    root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (root == NULL) {
        if (end != NULL && end >= buf && end <= buf + len) {
            mv_err_set(err, "not valid JSON (at byte %zu)",
                    (size_t) (end - buf));
        } else {
            mv_err_set(err, "not valid JSON");
        }
        return NULL;
    }

    if (end == NULL || end < buf || end > buf + len) {
        mv_err_set(err, "not valid JSON");
        goto fail;
    }
    for (i = (size_t) (end - buf); i < len; i++) {
        if (!is_json_space((unsigned char) buf[i])) {
            mv_err_set(err, "trailing bytes after the value "
                    "(at byte %zu)", i);
            goto fail;
        }
    }

    if (!cJSON_IsObject(root)) {
        mv_err_set(err, "the body is not a JSON object");
        goto fail;
    }

    if (check_duplicate_keys_tree(root, err) != MV_OK) {
        goto fail;
    }

    return root;

fail:
    cJSON_Delete(root);
    return NULL;
}


const cJSON *
mv_json_field(const cJSON *o, const char *name)
{
    const cJSON  *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsNull(v) ? NULL : v;
}


size_t
mv_json_number_len(const char *p, size_t len)
{
    if (p == NULL || len == 0
        || (p[0] != '-' && !is_digit((unsigned char) p[0])))
    {
        return 0;
    }

    return scan_number((const unsigned char *) p, len);
}


int
mv_number_parse(const char *s, size_t len, double *out)
{
    char  buf[MV_NUMBER_TEXT_MAX + 1];

    if (len == 0 || len > MV_NUMBER_TEXT_MAX
        || mv_json_number_len(s, len) != len)
    {
        return MV_ERR;
    }

    memcpy(buf, s, len);
    buf[len] = '\0';
    *out = strtod(buf, NULL);

    return MV_OK;
}


int
mv_float_from_double(double d, float *f)
{
    if (!(fabs(d) < FLOAT_OVERFLOW)) {
        return MV_ERR;          /* NaN, infinite, or too large */
    }
    *f = (float) d;

    return MV_OK;
}
