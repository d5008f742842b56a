/*
 * toml_internal.h -- what the files of the TOML reader share: the parser's
 * state, the character classes, and the functions one file gives another
 * (positions and errors, whitespace and strings in toml_lex.c; scalar
 * tokens in toml_scalar.c; the node list and index in toml_doc.c; the
 * grammar and the table rules in toml.c).  Nothing outside config/toml*.c
 * includes it.
 */
#ifndef MVW_TOML_INTERNAL_H
#define MVW_TOML_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config/toml.h"
#include "mv_common.h"

/* The state of a table node (see toml.c); values are ST_VALUE. */
#define ST_VALUE      0
#define ST_IMPLICIT   1
#define ST_DOTTED     2
#define ST_DEFINED    3

/* A path of PATH_MAX bytes has at most this many segments ("a.b.c..."). */
#define SEGMENTS_MAX  (MVW_TOML_PATH_MAX / 2 + 1)

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


/* ---- character classes ------------------------------------------------- */

static inline int
is_bare(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}


static inline int
is_token(unsigned char c)
{
    return is_bare(c) || c == '+' || c == '.';
}


static inline int
is_dec(int c)
{
    return c >= '0' && c <= '9';
}


static inline int
is_hex(int c)
{
    return is_dec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}


static inline int
is_oct(int c)
{
    return c >= '0' && c <= '7';
}


static inline int
is_bin(int c)
{
    return c == '0' || c == '1';
}


static inline int
hex_value(int c)
{
    if (is_dec(c)) {
        return c - '0';
    }
    return (c | 0x20) - 'a' + 10;
}


/* ---- toml_lex.c: bytes, positions, errors, whitespace, strings ----------- */

/*
 * Checks the whole document once: every byte outside printable ASCII is a
 * tab, a line feed, a CR before a LF, or part of well-formed UTF-8.
 * MV_OK, or MV_ERR through toml_perr.
 */
int toml_check_bytes(toml_parser_t *ps, const char *buf, size_t len);

/* The 1-based column (in characters) of at, on the current line. */
uint32_t toml_column(toml_parser_t *ps, const char *at);

/*
 * Sets ps->doc->err_line / err_col to the position of at and ps->err to
 * "LINE:COL: " and the message (printf style).  Always returns MV_ERR.
 */
int toml_perr(toml_parser_t *ps, const char *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* What is at `at`, for "expected X, found Y" (bytes are checked UTF-8);
   the answer may live in ps->fbuf, until the next call. */
const char *toml_found(toml_parser_t *ps, const char *at);

/* Skips spaces and tabs. */
void toml_skip_ws(toml_parser_t *ps);

/* 1 at a line end (LF, CRLF or the end of the document). */
int toml_at_eol(const toml_parser_t *ps);

/* Skips whitespace, comments and line ends (inside arrays). */
void toml_skip_ws_nl(toml_parser_t *ps);

/*
 * After a key/value pair or a header: spaces, an optional comment, then the
 * end of the line (consumed) or of the file.  after names what came before,
 * for the message.  MV_OK or MV_ERR.
 */
int toml_end_line(toml_parser_t *ps, const char *after);

/*
 * Parses a basic or literal string at ps->p into ps->sbuf / ps->slen
 * (decoded, NUL-terminated).  MV_OK or MV_ERR.
 */
int toml_parse_string(toml_parser_t *ps);


/* ---- toml_scalar.c: scalar tokens --------------------------------------- */

/*
 * Converts the whole token t[0..n) (token characters only) into one
 * boolean, integer or float in *v.  hint: a refused word gets "(strings
 * must be quoted)" in its message.  MV_OK, or MV_ERR with a reason without
 * a position.
 */
int toml_scalar_from_token(const char *t, size_t n, mvw_toml_value_t *v,
    int hint, mv_err_t *err);


/* ---- toml_doc.c: the node list and index -------------------------------- */

/* Position of the node named path[0..len), or -1. */
int64_t toml_node_find(const mvw_toml_t *doc, const char *path, size_t len);

/*
 * Appends a table node named path[0..len) (line, col, state zero) and
 * indexes it; *pos receives its position.  MV_OK, or MV_ERR when memory
 * runs out (doc unchanged but for spare capacity).
 */
int toml_doc_add(mvw_toml_t *doc, const char *path, size_t len,
    uint32_t *pos);

#endif /* MVW_TOML_INTERNAL_H */
