/*
 * toml.c -- the strict TOML subset parser (see toml.h for what it accepts).
 *
 * One pass over the bytes first (check_bytes): every byte outside the
 * printable ASCII range must be a tab, a line feed, a carriage return
 * followed by a line feed, or part of a well-formed UTF-8 sequence.  TOML
 * allows control characters nowhere (not in strings, not in comments), so
 * after this pass the grammar only has to look at ASCII, and an error
 * there can always name what it found.
 *
 * Then a recursive descent over lines: a line is blank, a comment, a
 * [header] or key = value, followed by an optional comment and the end of
 * the line.  Values are strings (decoded into a scratch buffer, then
 * copied), arrays (the only values that may span lines), inline tables
 * (one line, recursion bounded by MVW_TOML_DEPTH_MAX) and tokens: the
 * longest run of [A-Za-z0-9_+-.] is one boolean, integer or float, checked
 * against TOML's grammar before strtod sees it.
 *
 * The table rules are those of tomli (a compliant TOML 1.0 parser), kept
 * as a state on each table node:
 *
 *   ST_IMPLICIT  named only as a prefix of a header ([a] when [a.b] was
 *                seen): a later [a] may define it, dotted keys may use it.
 *   ST_DOTTED    created or used by dotted keys of the current section
 *                (a.b = 1 makes a ST_DOTTED): more dotted keys of the same
 *                section may add to it.  Each header turns the section's
 *                ST_DOTTED tables into ST_DEFINED.
 *   ST_DEFINED   defined by its header or by a finished section's dotted
 *                keys: a second header for it is an error ("defined
 *                twice"), and so is a dotted key that goes through it
 *                from another section.  A header may still define tables
 *                below it.
 *
 * Inline tables are closed: every table node created inside the literal
 * {...} carries the literal's id (inline_id, 0 outside literals), and a
 * key may only go through tables of the literal it is written in.  So
 * nothing can be added to an inline table from outside, nor to a nested
 * literal from its parent.
 *
 * Every error goes through perr(), which prefixes "LINE:COL: ".  Columns
 * count characters (UTF-8 lead bytes) from the start of the line; column()
 * remembers how far it counted, so a long line is counted once however
 * many keys it holds.  Nodes and their paths are malloc'ed one by one and
 * indexed by an open-addressing hash (FNV-1a, load <= 1/2); on an error
 * everything is freed before mvw_toml_parse returns.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"

#define ST_VALUE      0
#define ST_IMPLICIT   1
#define ST_DOTTED     2
#define ST_DEFINED    3

/* A path of PATH_MAX bytes has at most this many segments ("a.b.c..."). */
#define SEGMENTS_MAX  (MVW_TOML_PATH_MAX / 2 + 1)

/* Bytes of a token quoted in a message. */
#define TOKEN_SHOWN   40

typedef struct toml_key {
    char         path[MVW_TOML_PATH_MAX + 1];
    size_t       len;
    size_t       ends[SEGMENTS_MAX];    /* len after each new segment */
    size_t       n;                     /* segments after the base */
    const char  *at;                    /* the key's first byte */
    uint32_t     line;                  /* and its position */
    uint32_t     col;
} toml_key_t;

typedef struct toml_parser {
    const char  *p;
    const char  *end;
    const char  *line_start;
    uint32_t     line;
    mvw_toml_t  *doc;
    mv_err_t    *err;

    char         table[MVW_TOML_PATH_MAX + 1];  /* the current [header] */
    size_t       table_len;

    uint32_t    *pending;               /* ST_DOTTED tables to close */
    size_t       n_pending;
    size_t       cap_pending;
    uint32_t     inline_last;           /* the last inline table's id */

    char        *sbuf;                  /* a decoded string */
    size_t       slen;
    size_t       scap;

    char         fbuf[16];              /* found()'s answer */

    const char  *col_line;              /* column() remembers where it */
    const char  *col_pos;               /* counted to, so that a long */
    uint32_t     col;                   /* line is counted once */
} toml_parser_t;

static int perr(toml_parser_t *ps, const char *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int parse_value(toml_parser_t *ps, mvw_toml_value_t *v, int in_array);
static int parse_keyval(toml_parser_t *ps, const char *base, size_t base_len,
    uint32_t inline_id, unsigned depth);


/* ---- characters ---------------------------------------------------------- */

static int
is_bare(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}


static int
is_token(unsigned char c)
{
    return is_bare(c) || c == '+' || c == '.';
}


static int
is_dec(int c)
{
    return c >= '0' && c <= '9';
}


static int
is_hex(int c)
{
    return is_dec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}


static int
is_oct(int c)
{
    return c >= '0' && c <= '7';
}


static int
is_bin(int c)
{
    return c == '0' || c == '1';
}


static int
hex_value(int c)
{
    if (is_dec(c)) {
        return c - '0';
    }
    return (c | 0x20) - 'a' + 10;
}


/*
 * Length of the well-formed UTF-8 sequence at s (avail bytes there), or 0.
 * *cp receives the code point when cp is not NULL.
 */
static size_t
utf8_seq(const unsigned char *s, size_t avail, uint32_t *cp)
{
    uint32_t  c, lo = 0x80, hi = 0xbf;
    size_t    n;

    c = s[0];
    if (c < 0x80) {
        n = 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        c &= 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
        c &= 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
        c &= 0x07;
    } else {
        return 0;
    }
    if (n > avail) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if (s[i] < lo || s[i] > hi) {
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (cp != NULL) {
        *cp = c;
    }
    return n;
}


int
mvw_toml_utf8_valid(const char *s, size_t len)
{
    const unsigned char  *u = (const unsigned char *) s;
    size_t                i = 0, n;

    while (i < len) {
        n = utf8_seq(u + i, len - i, NULL);
        if (n == 0) {
            return 0;
        }
        i += n;
    }
    return 1;
}


const char *
mvw_toml_type_name(mvw_toml_type_t type)
{
    switch (type) {
    case MVW_TOML_TABLE:   return "table";
    case MVW_TOML_STRING:  return "string";
    case MVW_TOML_INTEGER: return "integer";
    case MVW_TOML_FLOAT:   return "float";
    case MVW_TOML_BOOL:    return "boolean";
    case MVW_TOML_ARRAY:   return "array";
    }
    return "?";
}


/* ---- positions and errors ------------------------------------------------ */

/* The 1-based column (in characters) of at, on the current line. */
static uint32_t
column(toml_parser_t *ps, const char *at)
{
    if (ps->col_line != ps->line_start || at < ps->col_pos) {
        ps->col_line = ps->line_start;
        ps->col_pos = ps->line_start;
        ps->col = 1;
    }
    for (; ps->col_pos < at; ps->col_pos++) {
        if (((unsigned char) *ps->col_pos & 0xc0) != 0x80) {
            ps->col++;
        }
    }
    return ps->col;
}


static int
perr(toml_parser_t *ps, const char *at, const char *fmt, ...)
{
    char     why[256];
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);

    ps->doc->err_line = ps->line;
    ps->doc->err_col = column(ps, at);
    return mv_err_set(ps->err, "%" PRIu32 ":%" PRIu32 ": %s",
                      ps->doc->err_line, ps->doc->err_col, why);
}


/* What is at `at`, for "expected X, found Y" (bytes are checked UTF-8). */
static const char *
found(toml_parser_t *ps, const char *at)
{
    unsigned char  c;
    uint32_t       cp = 0;

    if (at >= ps->end) {
        return "the end of the file";
    }
    c = (unsigned char) *at;
    if (c == '\n' || c == '\r') {
        return "the end of the line";
    }
    if (c > 0x20 && c < 0x7f) {
        snprintf(ps->fbuf, sizeof(ps->fbuf), "'%c'", c);
    } else if (utf8_seq((const unsigned char *) at,
                        (size_t) (ps->end - at), &cp) != 0)
    {
        snprintf(ps->fbuf, sizeof(ps->fbuf), "U+%04" PRIX32, cp);
    } else {
        snprintf(ps->fbuf, sizeof(ps->fbuf), "byte 0x%02X", c);
    }
    return ps->fbuf;
}


/*
 * Refuses NUL, control characters other than tab and line ends, a CR not
 * followed by LF, and malformed UTF-8, anywhere in the document.
 */
static int
check_bytes(toml_parser_t *ps, const char *buf, size_t len)
{
    const unsigned char  *s = (const unsigned char *) buf;
    size_t                i = 0, n;
    unsigned char         c;

    while (i < len) {
        c = s[i];
        if (c == '\n') {
            ps->line++;
            ps->line_start = buf + i + 1;
            i++;
        } else if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
            i++;
        } else if (c == '\r') {
            if (i + 1 == len || s[i + 1] != '\n') {
                return perr(ps, buf + i,
                            "carriage return without a line feed");
            }
            i++;
        } else if (c == 0) {
            return perr(ps, buf + i, "NUL byte");
        } else if (c < 0x80) {
            return perr(ps, buf + i, "control character U+%04X", c);
        } else {
            n = utf8_seq(s + i, len - i, NULL);
            if (n == 0) {
                return perr(ps, buf + i, "invalid UTF-8");
            }
            i += n;
        }
    }
    ps->line = 1;
    ps->line_start = buf;
    return MV_OK;
}


/* ---- whitespace and line ends -------------------------------------------- */

static void
skip_ws(toml_parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t')) {
        ps->p++;
    }
}


static int
at_eol(const toml_parser_t *ps)
{
    return ps->p == ps->end || *ps->p == '\n' || *ps->p == '\r';
}


/* At '\n' or "\r\n" (check_bytes made sure a CR has its LF). */
static void
newline(toml_parser_t *ps)
{
    if (*ps->p == '\r') {
        ps->p++;
    }
    ps->p++;
    ps->line++;
    ps->line_start = ps->p;
}


static void
skip_comment(toml_parser_t *ps)
{
    if (ps->p < ps->end && *ps->p == '#') {
        while (!at_eol(ps)) {
            ps->p++;
        }
    }
}


/* Spaces, comments and line ends (inside arrays). */
static void
skip_ws_nl(toml_parser_t *ps)
{
    for (;;) {
        skip_ws(ps);
        skip_comment(ps);
        if (ps->p == ps->end || (*ps->p != '\n' && *ps->p != '\r')) {
            return;
        }
        newline(ps);
    }
}


/* Spaces, an optional comment, then the end of the line or of the file. */
static int
end_line(toml_parser_t *ps, const char *after)
{
    skip_ws(ps);
    skip_comment(ps);
    if (ps->p == ps->end) {
        return MV_OK;
    }
    if (*ps->p == '\n' || *ps->p == '\r') {
        newline(ps);
        return MV_OK;
    }
    return perr(ps, ps->p, "expected the end of the line after %s, found %s",
                after, found(ps, ps->p));
}


/* ---- strings ------------------------------------------------------------- */

static int
sbuf_add(toml_parser_t *ps, const char *open, const char *s, size_t n)
{
    char    *nb;
    size_t   cap;

    if (ps->slen + n > MVW_TOML_STRING_MAX) {
        return perr(ps, open, "string is longer than %u bytes",
                    (unsigned) MVW_TOML_STRING_MAX);
    }
    if (ps->slen + n + 1 > ps->scap) {
        cap = ps->scap ? ps->scap * 2 : 256;
        while (cap < ps->slen + n + 1) {
            cap *= 2;
        }
        nb = realloc(ps->sbuf, cap);
        if (nb == NULL) {
            return perr(ps, open, "out of memory");
        }
        ps->sbuf = nb;
        ps->scap = cap;
    }
    memcpy(ps->sbuf + ps->slen, s, n);
    ps->slen += n;
    ps->sbuf[ps->slen] = '\0';
    return MV_OK;
}


/* Decodes \uXXXX or \UXXXXXXXX at esc (the backslash) into UTF-8. */
static int
parse_unicode(toml_parser_t *ps, const char *open, const char *esc)
{
    char      u[4];
    size_t    digits = esc[1] == 'u' ? 4 : 8, n;
    uint32_t  cp = 0;

    for (size_t i = 0; i < digits; i++) {
        if (esc + 2 + i >= ps->end || !is_hex((unsigned char) esc[2 + i])) {
            return perr(ps, esc, "\\%c needs %zu hex digits", esc[1],
                        digits);
        }
        cp = (cp << 4) | (uint32_t) hex_value((unsigned char) esc[2 + i]);
    }
    if (cp == 0) {
        return perr(ps, esc, "\\%c%.*s is not allowed in strings", esc[1],
                    (int) digits, esc + 2);
    }
    if (cp >= 0xd800 && cp <= 0xdfff) {
        return perr(ps, esc, "invalid escape \\%c%.*s (a surrogate)", esc[1],
                    (int) digits, esc + 2);
    }
    if (cp > 0x10ffff) {
        return perr(ps, esc, "invalid escape \\%c%.*s (above U+10FFFF)",
                    esc[1], (int) digits, esc + 2);
    }
    if (cp < 0x80) {
        u[0] = (char) cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char) (0xc0 | (cp >> 6));
        u[1] = (char) (0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char) (0xe0 | (cp >> 12));
        u[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char) (0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char) (0xf0 | (cp >> 18));
        u[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char) (0x80 | (cp & 0x3f));
        n = 4;
    }
    ps->p = esc + 2 + digits;
    return sbuf_add(ps, open, u, n);
}


/*
 * A basic "..." or literal '...' string at ps->p, decoded into ps->sbuf
 * (ps->slen bytes, NUL-terminated).
 */
static int
parse_string(toml_parser_t *ps)
{
    const char  *open = ps->p, *run;
    char         q = *open, c;

    if (ps->end - open >= 3 && open[1] == q && open[2] == q) {
        return perr(ps, open, "multi-line strings are not supported");
    }
    ps->p++;
    ps->slen = 0;
    if (sbuf_add(ps, open, "", 0) != MV_OK) {
        return MV_ERR;
    }

    for (;;) {
        run = ps->p;
        while (!at_eol(ps) && *ps->p != q && (q == '\'' || *ps->p != '\\')) {
            ps->p++;
        }
        if (sbuf_add(ps, open, run, (size_t) (ps->p - run)) != MV_OK) {
            return MV_ERR;
        }
        if (at_eol(ps)) {
            return perr(ps, open, "unterminated string");
        }
        if (*ps->p == q) {
            ps->p++;
            return MV_OK;
        }

        /* a backslash in a basic string */
        if (ps->p + 1 == ps->end) {
            return perr(ps, open, "unterminated string");
        }
        c = ps->p[1];
        switch (c) {
        case 'b':  c = '\b'; break;
        case 't':  c = '\t'; break;
        case 'n':  c = '\n'; break;
        case 'f':  c = '\f'; break;
        case 'r':  c = '\r'; break;
        case '"':  break;
        case '\\': break;
        case 'u':
        case 'U':
            if (parse_unicode(ps, open, ps->p) != MV_OK) {
                return MV_ERR;
            }
            continue;
        default:
            if (c > 0x20 && c < 0x7f) {
                return perr(ps, ps->p, "invalid escape \\%c", c);
            }
            return perr(ps, ps->p, "invalid escape \\ followed by %s",
                        found(ps, ps->p + 1));
        }
        if (sbuf_add(ps, open, &c, 1) != MV_OK) {
            return MV_ERR;
        }
        ps->p += 2;
    }
}


/* ---- scalar tokens ------------------------------------------------------- */

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
static int
scalar_from_token(const char *t, size_t n, mvw_toml_value_t *v, int hint,
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
    return scalar_from_token(s, len, v, 0, err);
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


/* ---- the node index ------------------------------------------------------ */

static uint32_t
path_hash(const char *s, size_t len)
{
    uint32_t  h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char) s[i]) * 16777619u;
    }
    return h;
}


/* Position of the node named path[0..len), or -1. */
static int64_t
node_find(const mvw_toml_t *doc, const char *path, size_t len)
{
    size_t                  mask, slot;
    const mvw_toml_node_t  *nd;

    if (doc->index_cap == 0) {
        return -1;
    }
    mask = doc->index_cap - 1;
    slot = path_hash(path, len) & mask;
    while (doc->index[slot] != 0) {
        nd = &doc->nodes[doc->index[slot] - 1];
        if (strncmp(nd->path, path, len) == 0 && nd->path[len] == '\0') {
            return (int64_t) doc->index[slot] - 1;
        }
        slot = (slot + 1) & mask;
    }
    return -1;
}


static void
index_put(mvw_toml_t *doc, uint32_t pos)
{
    const char  *path = doc->nodes[pos].path;
    size_t       mask = doc->index_cap - 1;
    size_t       slot = path_hash(path, strlen(path)) & mask;

    while (doc->index[slot] != 0) {
        slot = (slot + 1) & mask;
    }
    doc->index[slot] = pos + 1;
}


/*
 * Appends a node named path[0..len) for the key k (a table; callers of
 * values set value afterwards) and indexes it.  *pos receives its
 * position.
 */
static int
node_add(toml_parser_t *ps, const toml_key_t *k, size_t len, uint32_t state,
    uint32_t inline_id, uint32_t *pos)
{
    const char       *at = k->at;
    mvw_toml_t       *doc = ps->doc;
    mvw_toml_node_t  *nd;
    uint32_t         *idx;
    size_t            cap;

    if (doc->n_nodes == doc->cap_nodes) {
        cap = doc->cap_nodes ? doc->cap_nodes * 2 : 32;
        nd = realloc(doc->nodes, cap * sizeof(*nd));
        if (nd == NULL) {
            return perr(ps, at, "out of memory");
        }
        doc->nodes = nd;
        doc->cap_nodes = cap;
    }
    if ((doc->n_nodes + 1) * 2 > doc->index_cap) {
        cap = doc->index_cap ? doc->index_cap * 2 : 64;
        idx = calloc(cap, sizeof(*idx));
        if (idx == NULL) {
            return perr(ps, at, "out of memory");
        }
        free(doc->index);
        doc->index = idx;
        doc->index_cap = cap;
        for (size_t i = 0; i < doc->n_nodes; i++) {
            index_put(doc, (uint32_t) i);
        }
    }

    nd = &doc->nodes[doc->n_nodes];
    memset(nd, 0, sizeof(*nd));
    nd->path = malloc(len + 1);
    if (nd->path == NULL) {
        return perr(ps, at, "out of memory");
    }
    memcpy(nd->path, k->path, len);
    nd->path[len] = '\0';
    nd->line = k->line;
    nd->col = k->col;
    nd->value.type = MVW_TOML_TABLE;
    nd->state = state;
    nd->inline_id = inline_id;
    *pos = (uint32_t) doc->n_nodes;
    doc->n_nodes++;
    index_put(doc, *pos);
    return MV_OK;
}


static int
pending_add(toml_parser_t *ps, const char *at, uint32_t pos)
{
    uint32_t  *np;
    size_t     cap;

    if (ps->n_pending == ps->cap_pending) {
        cap = ps->cap_pending ? ps->cap_pending * 2 : 16;
        np = realloc(ps->pending, cap * sizeof(*np));
        if (np == NULL) {
            return perr(ps, at, "out of memory");
        }
        ps->pending = np;
        ps->cap_pending = cap;
    }
    ps->pending[ps->n_pending++] = pos;
    return MV_OK;
}


const mvw_toml_node_t *
mvw_toml_find(const mvw_toml_t *doc, const char *path)
{
    int64_t  pos = node_find(doc, path, strlen(path));

    return pos < 0 ? NULL : &doc->nodes[pos];
}


/* ---- keys ---------------------------------------------------------------- */

/* Appends one segment (raw bytes s[0..n)) to k in canonical form. */
static int
key_add(toml_parser_t *ps, toml_key_t *k, const char *s, size_t n)
{
    static const char   hex[] = "0123456789ABCDEF";
    int                 bare = n > 0;
    size_t              len = k->len;
    char               *out = k->path;
    unsigned char       c;

    for (size_t i = 0; i < n && bare; i++) {
        bare = is_bare((unsigned char) s[i]);
    }

#define PUT(ch)                                                           \
    do {                                                                  \
        if (len == MVW_TOML_PATH_MAX) {                                   \
            goto too_long;                                                \
        }                                                                 \
        out[len++] = (ch);                                                \
    } while (0)

    if (k->n == SEGMENTS_MAX) {
        goto too_long;
    }
    if (len > 0) {
        PUT('.');
    }
    if (bare) {
        for (size_t i = 0; i < n; i++) {
            PUT(s[i]);
        }
    } else {
        PUT('"');
        for (size_t i = 0; i < n; i++) {
            c = (unsigned char) s[i];
            if (c == '"' || c == '\\') {
                PUT('\\');
                PUT((char) c);
            } else if (c < 0x20 || c == 0x7f) {
                PUT('\\');
                PUT('u');
                PUT('0');
                PUT('0');
                PUT(hex[c >> 4]);
                PUT(hex[c & 0xf]);
            } else {
                PUT((char) c);
            }
        }
        PUT('"');
    }
#undef PUT

    out[len] = '\0';
    k->len = len;
    k->ends[k->n++] = len;
    return MV_OK;

too_long:
    return perr(ps, k->at, "key is longer than %d bytes", MVW_TOML_PATH_MAX);
}


/*
 * A bare, quoted or dotted key at ps->p, appended to base[0..base_len).
 * Spaces around the dots and after the key are skipped.
 */
static int
parse_key(toml_parser_t *ps, const char *base, size_t base_len, toml_key_t *k)
{
    const char  *s;

    memcpy(k->path, base, base_len);
    k->path[base_len] = '\0';
    k->len = base_len;
    k->n = 0;
    k->at = ps->p;
    k->line = ps->line;
    k->col = column(ps, ps->p);

    for (;;) {
        if (ps->p < ps->end && is_bare((unsigned char) *ps->p)) {
            s = ps->p;
            while (ps->p < ps->end && is_bare((unsigned char) *ps->p)) {
                ps->p++;
            }
            if (key_add(ps, k, s, (size_t) (ps->p - s)) != MV_OK) {
                return MV_ERR;
            }
        } else if (ps->p < ps->end && (*ps->p == '"' || *ps->p == '\'')) {
            if (parse_string(ps) != MV_OK
                || key_add(ps, k, ps->sbuf, ps->slen) != MV_OK)
            {
                return MV_ERR;
            }
        } else {
            return perr(ps, ps->p, "expected a key, found %s",
                        found(ps, ps->p));
        }
        skip_ws(ps);
        if (ps->p == ps->end || *ps->p != '.') {
            return MV_OK;
        }
        ps->p++;
        skip_ws(ps);
    }
}


/* ---- values -------------------------------------------------------------- */

static int
parse_array(toml_parser_t *ps, mvw_toml_value_t *v)
{
    uint32_t           open_line = ps->line;
    mvw_toml_value_t  *items = NULL, *ni, item;
    size_t             n = 0, cap = 0;

    ps->p++;
    for (;;) {
        skip_ws_nl(ps);
        if (ps->p == ps->end) {
            goto unterminated;
        }
        if (*ps->p == ']') {
            ps->p++;
            break;
        }
        if (parse_value(ps, &item, 1) != MV_OK) {
            goto fail;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            ni = realloc(items, cap * sizeof(*ni));
            if (ni == NULL) {
                mvw_toml_value_free(&item);
                perr(ps, ps->p, "out of memory");
                goto fail;
            }
            items = ni;
        }
        items[n++] = item;

        skip_ws_nl(ps);
        if (ps->p == ps->end) {
            goto unterminated;
        }
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == ']') {
            ps->p++;
            break;
        }
        perr(ps, ps->p, "expected ',' or ']' in the array, found %s",
             found(ps, ps->p));
        goto fail;
    }

    v->type = MVW_TOML_ARRAY;
    v->items = items;
    v->n_items = n;
    return MV_OK;

unterminated:
    perr(ps, ps->p, "unterminated array (opened on line %" PRIu32 ")",
         open_line);
fail:
    for (size_t i = 0; i < n; i++) {
        mvw_toml_value_free(&items[i]);
    }
    free(items);
    return MV_ERR;
}


/* Any value but an inline table (parse_keyval handles those). */
static int
parse_value(toml_parser_t *ps, mvw_toml_value_t *v, int in_array)
{
    const char  *s = ps->p, *e;
    mv_err_t     why;

    memset(v, 0, sizeof(*v));
    if (at_eol(ps) || *s == '#') {
        return perr(ps, s, "missing value");
    }

    switch (*s) {
    case '"':
    case '\'':
        if (parse_string(ps) != MV_OK) {
            return MV_ERR;
        }
        v->str = malloc(ps->slen + 1);
        if (v->str == NULL) {
            return perr(ps, s, "out of memory");
        }
        memcpy(v->str, ps->sbuf, ps->slen + 1);
        v->len = ps->slen;
        v->type = MVW_TOML_STRING;
        return MV_OK;
    case '[':
        if (in_array) {
            return perr(ps, s, "nested arrays are not supported");
        }
        return parse_array(ps, v);
    case '{':
        return perr(ps, s, "inline tables in arrays are not supported");
    }

    e = ps->end;
    if ((e - s >= 5 && is_dec(s[0]) && is_dec(s[1]) && is_dec(s[2])
         && is_dec(s[3]) && s[4] == '-')
        || (e - s >= 3 && is_dec(s[0]) && is_dec(s[1]) && s[2] == ':'))
    {
        return perr(ps, s, "date-time values are not supported");
    }

    while (ps->p < e && is_token((unsigned char) *ps->p)) {
        ps->p++;
    }
    if (ps->p == s) {
        return perr(ps, s, "expected a value, found %s", found(ps, s));
    }
    if (scalar_from_token(s, (size_t) (ps->p - s), v, 1, &why) != MV_OK) {
        return perr(ps, s, "%s", why.msg);
    }
    return MV_OK;
}


/* { key = value, ... } on one line, at ps->p; path names the table. */
static int
parse_inline(toml_parser_t *ps, const char *path, size_t len, uint32_t id,
    unsigned depth)
{
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return MV_OK;
    }
    for (;;) {
        if (at_eol(ps) || *ps->p == '#') {
            return perr(ps, ps->p, "an inline table must end on the line "
                        "where it starts, found %s", found(ps, ps->p));
        }
        if (parse_keyval(ps, path, len, id, depth) != MV_OK) {
            return MV_ERR;
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == '}') {
                return perr(ps, ps->p, "trailing comma in an inline table");
            }
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return MV_OK;
        }
        if (at_eol(ps) || *ps->p == '#') {
            return perr(ps, ps->p, "an inline table must end on the line "
                        "where it starts, found %s", found(ps, ps->p));
        }
        return perr(ps, ps->p, "expected ',' or '}' in the inline table, "
                    "found %s", found(ps, ps->p));
    }
}


/*
 * Checks that the tables the key k goes through (its prefixes after the
 * base) may take it, creating the missing ones.
 */
static int
key_tables(toml_parser_t *ps, const toml_key_t *k, uint32_t inline_id)
{
    mvw_toml_node_t  *nd;
    int64_t           pos;
    uint32_t          np = 0;

    for (size_t i = 0; i + 1 < k->n; i++) {
        pos = node_find(ps->doc, k->path, k->ends[i]);
        if (pos < 0) {
            if (node_add(ps, k, k->ends[i],
                         inline_id ? ST_DEFINED : ST_DOTTED, inline_id, &np)
                != MV_OK
                || (inline_id == 0 && pending_add(ps, k->at, np) != MV_OK))
            {
                return MV_ERR;
            }
            continue;
        }
        nd = &ps->doc->nodes[pos];
        if (nd->state == ST_VALUE) {
            return perr(ps, k->at, "key \"%s\" is already defined on line %"
                        PRIu32 ", it cannot be a table", nd->path, nd->line);
        }
        if (nd->inline_id != inline_id) {
            return perr(ps, k->at, "inline table \"%s\" (line %" PRIu32
                        ") cannot be extended", nd->path, nd->line);
        }
        if (inline_id == 0 && nd->state == ST_DEFINED) {
            return perr(ps, k->at, "table [%s] (line %" PRIu32 ") cannot be "
                        "extended with dotted keys", nd->path, nd->line);
        }
        if (inline_id == 0 && nd->state == ST_IMPLICIT) {
            nd->state = ST_DOTTED;
            if (pending_add(ps, k->at, (uint32_t) pos) != MV_OK) {
                return MV_ERR;
            }
        }
    }
    return MV_OK;
}


/* key = value at ps->p, the key relative to base (a table's path). */
static int
parse_keyval(toml_parser_t *ps, const char *base, size_t base_len,
    uint32_t inline_id, unsigned depth)
{
    toml_key_t         k;
    mvw_toml_value_t   v;
    int64_t            pos;
    uint32_t           np = 0;

    if (parse_key(ps, base, base_len, &k) != MV_OK
        || key_tables(ps, &k, inline_id) != MV_OK)
    {
        return MV_ERR;
    }
    pos = node_find(ps->doc, k.path, k.len);
    if (pos >= 0 && ps->doc->nodes[pos].state == ST_VALUE) {
        return perr(ps, k.at, "duplicate key \"%s\" (first on line %" PRIu32
                    ")", k.path, ps->doc->nodes[pos].line);
    }
    if (pos >= 0) {
        return perr(ps, k.at, "key \"%s\" is already a table (line %" PRIu32
                    ")", k.path, ps->doc->nodes[pos].line);
    }

    if (ps->p == ps->end || *ps->p != '=') {
        return perr(ps, ps->p, "expected '=' after the key, found %s",
                    found(ps, ps->p));
    }
    ps->p++;
    skip_ws(ps);

    if (ps->p < ps->end && *ps->p == '{') {
        if (depth == MVW_TOML_DEPTH_MAX) {
            return perr(ps, ps->p, "inline tables nested more than %d deep",
                        MVW_TOML_DEPTH_MAX);
        }
        if (node_add(ps, &k, k.len, ST_DEFINED, ++ps->inline_last, &np)
            != MV_OK)
        {
            return MV_ERR;
        }
        return parse_inline(ps, k.path, k.len, ps->inline_last, depth + 1);
    }

    if (parse_value(ps, &v, 0) != MV_OK) {
        return MV_ERR;
    }
    if (node_add(ps, &k, k.len, ST_VALUE, inline_id, &np) != MV_OK)
    {
        mvw_toml_value_free(&v);
        return MV_ERR;
    }
    ps->doc->nodes[np].value = v;
    return MV_OK;
}


/* [a.b] at ps->p. */
static int
parse_header(toml_parser_t *ps)
{
    toml_key_t        k;
    mvw_toml_node_t  *nd;
    int64_t           pos;
    uint32_t          np = 0;

    ps->p++;
    if (ps->p < ps->end && *ps->p == '[') {
        return perr(ps, ps->p - 1,
                    "arrays of tables ([[...]]) are not supported");
    }
    skip_ws(ps);
    if (parse_key(ps, "", 0, &k) != MV_OK) {
        return MV_ERR;
    }
    if (ps->p == ps->end || *ps->p != ']') {
        return perr(ps, ps->p, "expected ']' after the table name, found %s",
                    found(ps, ps->p));
    }
    ps->p++;

    /* The previous section's dotted tables are closed now. */
    for (size_t i = 0; i < ps->n_pending; i++) {
        nd = &ps->doc->nodes[ps->pending[i]];
        if (nd->state == ST_DOTTED) {
            nd->state = ST_DEFINED;
        }
    }
    ps->n_pending = 0;

    for (size_t i = 0; i < k.n; i++) {
        pos = node_find(ps->doc, k.path, k.ends[i]);
        if (pos < 0) {
            if (node_add(ps, &k, k.ends[i],
                         i + 1 < k.n ? ST_IMPLICIT : ST_DEFINED, 0, &np)
                != MV_OK)
            {
                return MV_ERR;
            }
            continue;
        }
        nd = &ps->doc->nodes[pos];
        if (nd->state == ST_VALUE) {
            return perr(ps, k.at, "key \"%s\" is already defined on line %"
                        PRIu32 ", it cannot be a table", nd->path, nd->line);
        }
        if (nd->inline_id != 0) {
            return perr(ps, k.at, "inline table \"%s\" (line %" PRIu32
                        ") cannot be extended", nd->path, nd->line);
        }
        if (i + 1 == k.n) {
            if (nd->state == ST_DEFINED) {
                return perr(ps, k.at, "table [%s] defined twice (first on "
                            "line %" PRIu32 ")", nd->path, nd->line);
            }
            nd->state = ST_DEFINED;
            nd->line = k.line;
            nd->col = k.col;
        }
    }

    memcpy(ps->table, k.path, k.len + 1);
    ps->table_len = k.len;
    return end_line(ps, "the table header");
}


static int
parse_document(toml_parser_t *ps)
{
    for (;;) {
        skip_ws(ps);
        if (ps->p == ps->end) {
            return MV_OK;
        }
        if (*ps->p == '[') {
            if (parse_header(ps) != MV_OK) {
                return MV_ERR;
            }
        } else if (*ps->p == '#' || *ps->p == '\n' || *ps->p == '\r') {
            if (end_line(ps, "a comment") != MV_OK) {
                return MV_ERR;
            }
        } else if (parse_keyval(ps, ps->table, ps->table_len, 0, 0) != MV_OK
                   || end_line(ps, "the value") != MV_OK)
        {
            return MV_ERR;
        }
    }
}


int
mvw_toml_parse(mvw_toml_t *doc, const char *buf, size_t len, mv_err_t *err)
{
    toml_parser_t  ps;
    int            rc;
    uint32_t       line, col;

    memset(doc, 0, sizeof(*doc));
    if (len > MVW_TOML_DOC_MAX) {
        return mv_err_set(err, "document is larger than %u bytes",
                          (unsigned) MVW_TOML_DOC_MAX);
    }

    if (buf == NULL) {
        buf = "";
    }
    memset(&ps, 0, sizeof(ps));
    ps.p = buf;
    ps.end = buf + len;
    ps.line_start = buf;
    ps.line = 1;
    ps.doc = doc;
    ps.err = err;

    rc = check_bytes(&ps, buf, len);
    if (rc == MV_OK) {
        rc = parse_document(&ps);
    }
    free(ps.pending);
    free(ps.sbuf);

    if (rc != MV_OK) {
        line = doc->err_line;
        col = doc->err_col;
        mvw_toml_free(doc);
        doc->err_line = line;
        doc->err_col = col;
    }
    return rc;
}


void
mvw_toml_free(mvw_toml_t *doc)
{
    for (size_t i = 0; i < doc->n_nodes; i++) {
        free(doc->nodes[i].path);
        mvw_toml_value_free(&doc->nodes[i].value);
    }
    free(doc->nodes);
    free(doc->index);
    memset(doc, 0, sizeof(*doc));
}
