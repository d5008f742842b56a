/*
 * toml_lex.c -- the lexical layer of the TOML reader: the byte check, line
 * and column positions, error messages, whitespace, comments, line ends and
 * strings (see toml.h for the language, toml.c for the grammar).
 *
 * One pass over the bytes first (toml_check_bytes): every byte outside the
 * printable ASCII range must be a tab, a line feed, a carriage return
 * followed by a line feed, or part of a well-formed UTF-8 sequence.  TOML
 * allows control characters nowhere (not in strings, not in comments), so
 * after this pass the grammar only has to look at ASCII, and an error
 * there can always name what it found.
 *
 * Every error goes through toml_perr(), which prefixes "LINE:COL: ".
 * Columns count characters (UTF-8 lead bytes) from the start of the line;
 * toml_column() remembers how far it counted, so a long line is counted
 * once however many keys it holds.  Strings are decoded into a scratch
 * buffer of the parser (ps->sbuf) that the caller copies from.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "config/toml_internal.h"


/* ---- UTF-8 and type names ---------------------------------------------- */

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
uint32_t
toml_column(toml_parser_t *ps, const char *at)
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


int
toml_perr(toml_parser_t *ps, const char *at, const char *fmt, ...)
{
    char     why[256];
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);

    ps->doc->err_line = ps->line;
    ps->doc->err_col = toml_column(ps, at);
    return mv_err_set(ps->err, "%" PRIu32 ":%" PRIu32 ": %s",
                      ps->doc->err_line, ps->doc->err_col, why);
}


/* What is at `at`, for "expected X, found Y" (bytes are checked UTF-8). */
const char *
toml_found(toml_parser_t *ps, const char *at)
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
int
toml_check_bytes(toml_parser_t *ps, const char *buf, size_t len)
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
                return toml_perr(ps, buf + i,
                                 "carriage return without a line feed");
            }
            i++;
        } else if (c == 0) {
            return toml_perr(ps, buf + i, "NUL byte");
        } else if (c < 0x80) {
            return toml_perr(ps, buf + i, "control character U+%04X", c);
        } else {
            n = utf8_seq(s + i, len - i, NULL);
            if (n == 0) {
                return toml_perr(ps, buf + i, "invalid UTF-8");
            }
            i += n;
        }
    }
    ps->line = 1;
    ps->line_start = buf;
    return MV_OK;
}


/* ---- whitespace and line ends -------------------------------------------- */

void
toml_skip_ws(toml_parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t')) {
        ps->p++;
    }
}


int
toml_at_eol(const toml_parser_t *ps)
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
        while (!toml_at_eol(ps)) {
            ps->p++;
        }
    }
}


/* Spaces, comments and line ends (inside arrays). */
void
toml_skip_ws_nl(toml_parser_t *ps)
{
    for (;;) {
        toml_skip_ws(ps);
        skip_comment(ps);
        if (ps->p == ps->end || (*ps->p != '\n' && *ps->p != '\r')) {
            return;
        }
        newline(ps);
    }
}


/* Spaces, an optional comment, then the end of the line or of the file. */
int
toml_end_line(toml_parser_t *ps, const char *after)
{
    toml_skip_ws(ps);
    skip_comment(ps);
    if (ps->p == ps->end) {
        return MV_OK;
    }
    if (*ps->p == '\n' || *ps->p == '\r') {
        newline(ps);
        return MV_OK;
    }
    return toml_perr(ps, ps->p, "expected the end of the line after %s, "
                     "found %s", after, toml_found(ps, ps->p));
}


/* ---- strings ------------------------------------------------------------- */

static int
sbuf_add(toml_parser_t *ps, const char *open, const char *s, size_t n)
{
    char    *nb;
    size_t   cap;

    if (ps->slen + n > MVW_TOML_STRING_MAX) {
        return toml_perr(ps, open, "string is longer than %u bytes",
                         (unsigned) MVW_TOML_STRING_MAX);
    }
    if (ps->slen + n + 1 > ps->scap) {
        cap = ps->scap ? ps->scap * 2 : 256;
        while (cap < ps->slen + n + 1) {
            cap *= 2;
        }
        nb = realloc(ps->sbuf, cap);
        if (nb == NULL) {
            return toml_perr(ps, open, "out of memory");
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
            return toml_perr(ps, esc, "\\%c needs %zu hex digits", esc[1],
                             digits);
        }
        cp = (cp << 4) | (uint32_t) hex_value((unsigned char) esc[2 + i]);
    }
    if (cp == 0) {
        return toml_perr(ps, esc, "\\%c%.*s is not allowed in strings", esc[1],
                         (int) digits, esc + 2);
    }
    if (cp >= 0xd800 && cp <= 0xdfff) {
        return toml_perr(ps, esc, "invalid escape \\%c%.*s (a surrogate)",
                         esc[1], (int) digits, esc + 2);
    }
    if (cp > 0x10ffff) {
        return toml_perr(ps, esc, "invalid escape \\%c%.*s (above U+10FFFF)",
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
int
toml_parse_string(toml_parser_t *ps)
{
    const char  *open = ps->p, *run;
    char         q = *open, c;

    if (ps->end - open >= 3 && open[1] == q && open[2] == q) {
        return toml_perr(ps, open, "multi-line strings are not supported");
    }
    ps->p++;
    ps->slen = 0;
    if (sbuf_add(ps, open, "", 0) != MV_OK) {
        return MV_ERR;
    }

    for (;;) {
        run = ps->p;
        while (!toml_at_eol(ps) && *ps->p != q
               && (q == '\'' || *ps->p != '\\'))
        {
            ps->p++;
        }
        if (sbuf_add(ps, open, run, (size_t) (ps->p - run)) != MV_OK) {
            return MV_ERR;
        }
        if (toml_at_eol(ps)) {
            return toml_perr(ps, open, "unterminated string");
        }
        if (*ps->p == q) {
            ps->p++;
            return MV_OK;
        }

        /* a backslash in a basic string */
        if (ps->p + 1 == ps->end) {
            return toml_perr(ps, open, "unterminated string");
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
                return toml_perr(ps, ps->p, "invalid escape \\%c", c);
            }
            return toml_perr(ps, ps->p, "invalid escape \\ followed by %s",
                             toml_found(ps, ps->p + 1));
        }
        if (sbuf_add(ps, open, &c, 1) != MV_OK) {
            return MV_ERR;
        }
        ps->p += 2;
    }
}
