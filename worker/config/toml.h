/*
 * toml.h -- a strict parser of the TOML subset the worker's configuration
 * needs (TOML 1.0 minus multi-line strings, date-times and arrays of
 * tables).
 *
 * The result is flat: a document is the list of the nodes it defines, in
 * document order, each named by its full dotted path ("training.epochs",
 * "training.action_weights.click") with the line and column of its key.
 * A node is either a table or a value (string, integer, float, boolean, or
 * an array of those).  That is all a typed configuration needs: it walks
 * the list once and looks each path up in its schema.  A hash index over
 * the paths finds a node in O(1) and catches redefinitions while parsing.
 *
 * Paths are canonical: a key segment that is a valid bare key is written
 * bare (so "a" and a are the same key, as in TOML), any other segment as a
 * basic string with '"', '\\' and control characters escaped, so a path
 * names exactly one sequence of segments (a."b.c" is two segments).
 *
 * Accepted: comments, blank lines (LF or CRLF), [table] and [a.b] headers,
 * key = value with bare, quoted or dotted keys, basic strings with the
 * TOML escapes (\b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX), literal strings,
 * integers (decimal, 0x, 0o, 0b, underscores between digits, int64 range),
 * floats (TOML grammar, inf and nan included), booleans, arrays of scalars
 * (over several lines, trailing comma, comments inside) and single-line
 * inline tables.  The table rules are TOML's: no key or table defined
 * twice, no value used as a table, no inline table extended, no [table]
 * header for a table that dotted keys defined, no dotted key into a table
 * that a header defined.
 *
 * Refused with "LINE:COL: reason" (1-based; the column counts characters):
 * anything else, in particular multi-line strings, date-times, [[arrays of
 * tables]], nested arrays, NUL bytes, control characters, invalid UTF-8,
 * "\u0000" and surrogates.  Limits: a document of at most MVW_TOML_DOC_MAX
 * bytes, paths of at most MVW_TOML_PATH_MAX bytes, strings of at most
 * MVW_TOML_STRING_MAX bytes, inline tables nested at most
 * MVW_TOML_DEPTH_MAX deep.
 *
 * Numbers are converted with strtod, which assumes the "C" locale (the
 * worker never calls setlocale).  No global state: parses may run in
 * parallel on different documents.
 */
#ifndef MVW_TOML_H
#define MVW_TOML_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"

#define MVW_TOML_DOC_MAX     (1u << 20)     /* bytes of a document */
#define MVW_TOML_PATH_MAX    255            /* bytes of a dotted path */
#define MVW_TOML_STRING_MAX  65536          /* bytes of a decoded string */
#define MVW_TOML_DEPTH_MAX   8              /* nested inline tables */

typedef enum mvw_toml_type {
    MVW_TOML_TABLE = 1,
    MVW_TOML_STRING,
    MVW_TOML_INTEGER,
    MVW_TOML_FLOAT,
    MVW_TOML_BOOL,
    MVW_TOML_ARRAY
} mvw_toml_type_t;

typedef struct mvw_toml_value  mvw_toml_value_t;

struct mvw_toml_value {
    mvw_toml_type_t  type;
    union {
        int          boolean;
        int64_t      integer;
        double       number;
        struct {
            char    *str;                   /* NUL-terminated, no NUL in */
            size_t   len;
        };
        struct {
            mvw_toml_value_t  *items;       /* scalars only */
            size_t             n_items;
        };
    };
};

typedef struct mvw_toml_node {
    char              *path;                /* canonical dotted path */
    uint32_t           line;                /* of the key or the header */
    uint32_t           col;
    mvw_toml_value_t   value;               /* type MVW_TOML_TABLE: none */

    /* private: how a table was defined (see toml.c) */
    uint32_t           state;
    uint32_t           inline_id;
} mvw_toml_node_t;

typedef struct mvw_toml {
    mvw_toml_node_t  *nodes;                /* in document order */
    size_t            n_nodes;
    size_t            cap_nodes;
    uint32_t         *index;                /* private: node + 1, 0 = free */
    size_t            index_cap;            /* power of two or 0 */

    uint32_t          err_line;             /* of the last error, 0 = none */
    uint32_t          err_col;
} mvw_toml_t;

/*
 * Parses the len bytes at buf (no terminator needed, never read past) into
 * doc, which the call initialises.  Returns MV_OK, or MV_ERR with err set to
 * "LINE:COL: reason" (or a reason alone for a document over the size
 * limit, line 0), doc->err_line / err_col set and no node left in doc.
 * Either way mvw_toml_free(doc) may be called.
 */
int mvw_toml_parse(mvw_toml_t *doc, const char *buf, size_t len,
    mv_err_t *err);

/* Frees what doc owns and leaves it empty.  Safe on an empty doc. */
void mvw_toml_free(mvw_toml_t *doc);

/* The node of canonical path path (a table or a value), or NULL. */
const mvw_toml_node_t *mvw_toml_find(const mvw_toml_t *doc, const char *path);

/*
 * Parses the whole of s[0..len) as one TOML integer, float or boolean (no
 * spaces, no strings, no arrays) into *v, which owns nothing after.  Used
 * for values given outside a document (environment variables).  Returns
 * MV_OK, or MV_ERR with err set to a reason without a position.
 */
int mvw_toml_parse_scalar(const char *s, size_t len, mvw_toml_value_t *v,
    mv_err_t *err);

/* Frees what v owns (strings, array items) and leaves it type 0. */
void mvw_toml_value_free(mvw_toml_value_t *v);

/* 1 if s[0..len) is well-formed UTF-8 (no overlong forms, no surrogates,
   nothing above U+10FFFF), else 0. */
int mvw_toml_utf8_valid(const char *s, size_t len);

/* "table", "string", "integer", "float", "boolean", "array". */
const char *mvw_toml_type_name(mvw_toml_type_t type);

#endif /* MVW_TOML_H */
