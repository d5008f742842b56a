/*
 * toml_scalar.c -- TOML's scalar tokens: booleans, integers (decimal, hex,
 * octal, binary, underscores between digits, int64 range) and floats (the
 * TOML grammar, inf and nan included), from a document or on their own
 * (mvw_toml_parse_scalar, for environment variables); and freeing values.
 *
 * A token is the longest run of [A-Za-z0-9_+-.]; it is checked against
 * TOML's grammar before strtod sees it, so strtod's own extensions (hex
 * floats, "infinity", leading spaces) never get through.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "config/toml_internal.h"

/* Bytes of a token quoted in a message. */
#define TOKEN_SHOWN   40


/* At a digit: digits with single underscores between them. */
static void
scan_digits(const char **q, const char *e, int (*isd)(int))
{
    for (;;) {
        (*q)++;
        if (*q < e && isd((unsigned char) **q)) {
            continue;
        }
        if (*q + 1 < e && **q == '_' && isd((unsigned char) (*q)[1])) {
            (*q)++;
            continue;
        }
        return;
    }
}


static int
token_eq(const char *t, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(t, word, n) == 0;
}


/* digits (underscores skipped) of base as a magnitude <= limit. */
static int
token_magnitude(const char *s, const char *e, unsigned base, uint64_t limit,
    uint64_t *out)
{
    uint64_t  v = 0, d;

    for (; s < e; s++) {
        if (*s == '_') {
            continue;
        }
        d = (uint64_t) hex_value((unsigned char) *s);
        if (v > (limit - d) / base) {
            return MV_ERR;
        }
        v = v * base + d;
    }
    *out = v;
    return MV_OK;
}


/*
 * One boolean, integer or float: the whole of t[0..n), which holds only
 * token characters.  hint: add "(strings must be quoted)" to a word.
 */
int
toml_scalar_from_token(const char *t, size_t n, mvw_toml_value_t *v, int hint,
    mv_err_t *err)
{
    const char  *s = t, *e = t + n, *q;
    int          neg = 0, sign = 0, is_float = 0;
    int          shown = n > TOKEN_SHOWN ? TOKEN_SHOWN : (int) n;
    const char  *more = n > TOKEN_SHOWN ? "..." : "";
    int        (*isd)(int) = is_dec;
    unsigned     base = 10;
    uint64_t     mag;
    char         small[128], *buf;
    double       d;
    size_t       k = 0;

    memset(v, 0, sizeof(*v));
    if (token_eq(t, n, "true") || token_eq(t, n, "false")) {
        v->type = MVW_TOML_BOOL;
        v->boolean = t[0] == 't';
        return MV_OK;
    }

    if (s < e && (*s == '+' || *s == '-')) {
        sign = 1;
        neg = *s == '-';
        s++;
    }
    if (token_eq(s, (size_t) (e - s), "inf")
        || token_eq(s, (size_t) (e - s), "nan"))
    {
        v->type = MVW_TOML_FLOAT;
        v->number = s[0] == 'i' ? HUGE_VAL : NAN;
        v->number = neg ? -v->number : v->number;
        return MV_OK;
    }

    if (s == e || !is_dec((unsigned char) *s)) {
        if (!sign && hint && ((*t | 0x20) >= 'a' && (*t | 0x20) <= 'z')) {
            return mv_err_set(err, "invalid value \"%.*s%s\" (strings must "
                              "be quoted)", shown, t, more);
        }
        if (!sign) {
            return mv_err_set(err, "invalid value \"%.*s%s\"", shown, t,
                              more);
        }
        goto invalid;
    }

    /* 0x, 0o, 0b: unsigned, an integer, leading zeros allowed */
    if (!sign && e - s > 2 && s[0] == '0'
        && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b'))
    {
        isd = s[1] == 'x' ? is_hex : s[1] == 'o' ? is_oct : is_bin;
        base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
        s += 2;
        if (!isd((unsigned char) *s)) {
            goto invalid;
        }
    }

    q = s;
    scan_digits(&q, e, isd);
    if (base == 10 && s[0] == '0' && q - s > 1) {
        return mv_err_set(err, "leading zeros are not allowed in \"%.*s%s\"",
                          shown, t, more);
    }
    if (base == 10 && q < e && *q == '.') {
        q++;
        if (q == e || !is_dec((unsigned char) *q)) {
            goto invalid;
        }
        scan_digits(&q, e, is_dec);
        is_float = 1;
    }
    if (base == 10 && q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-')) {
            q++;
        }
        if (q == e || !is_dec((unsigned char) *q)) {
            goto invalid;
        }
        scan_digits(&q, e, is_dec);
        is_float = 1;
    }
    if (q != e) {
        goto invalid;
    }

    if (!is_float) {
        if (token_magnitude(s, e, base, neg ? (uint64_t) INT64_MAX + 1
                                            : (uint64_t) INT64_MAX, &mag)
            != MV_OK)
        {
            return mv_err_set(err, "integer \"%.*s%s\" is out of range",
                              shown, t, more);
        }
        v->type = MVW_TOML_INTEGER;
        v->integer = neg ? (mag == (uint64_t) INT64_MAX + 1
                            ? INT64_MIN : -(int64_t) mag)
                         : (int64_t) mag;
        return MV_OK;
    }

    /* the grammar is checked: strtod sees only [+-0-9.eE] */
    buf = n < sizeof(small) ? small : malloc(n + 1);
    if (buf == NULL) {
        return mv_err_set(err, "out of memory");
    }
    for (const char *c = t; c < e; c++) {
        if (*c != '_') {
            buf[k++] = *c;
        }
    }
    buf[k] = '\0';
    d = strtod(buf, NULL);
    if (buf != small) {
        free(buf);
    }
    if (isinf(d)) {
        return mv_err_set(err, "float \"%.*s%s\" is out of range", shown, t,
                          more);
    }
    v->type = MVW_TOML_FLOAT;
    v->number = d;
    return MV_OK;

invalid:
    return mv_err_set(err, "invalid number \"%.*s%s\"", shown, t, more);
}


int
mvw_toml_parse_scalar(const char *s, size_t len, mvw_toml_value_t *v,
    mv_err_t *err)
{
    memset(v, 0, sizeof(*v));
    if (len == 0) {
        return mv_err_set(err, "empty value");
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_token((unsigned char) s[i])) {
            return mv_err_set(err, "not a number or a boolean");
        }
    }
    return toml_scalar_from_token(s, len, v, 0, err);
}


void
mvw_toml_value_free(mvw_toml_value_t *v)
{
    if (v->type == MVW_TOML_STRING) {
        free(v->str);
    } else if (v->type == MVW_TOML_ARRAY) {
        for (size_t i = 0; i < v->n_items; i++) {
            mvw_toml_value_free(&v->items[i]);
        }
        free(v->items);
    }
    memset(v, 0, sizeof(*v));
}
