/*
 * toml.c -- the strict TOML subset parser: keys, values, headers and the
 * table rules (see toml.h for what it accepts).  The lexical layer is
 * toml_lex.c, scalar tokens toml_scalar.c, the node list and index
 * toml_doc.c; toml_internal.h is what they share.
 *
 * After the byte check (toml_lex.c), a recursive descent over lines: a
 * line is blank, a comment, a [header] or key = value, followed by an
 * optional comment and the end of the line.  Values are strings (decoded
 * into a scratch buffer, then copied), arrays (the only values that may
 * span lines), inline tables (one line, recursion bounded by
 * MVW_TOML_DEPTH_MAX) and tokens: the longest run of [A-Za-z0-9_+-.] is one
 * boolean, integer or float (toml_scalar.c).
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
 * Every error goes through toml_perr() ("LINE:COL: reason"); on an error
 * everything is freed before mvw_toml_parse returns.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "config/toml_internal.h"

static int parse_value(toml_parser_t *ps, mvw_toml_value_t *v, int in_array);
static int parse_keyval(toml_parser_t *ps, const char *base, size_t base_len,
    uint32_t inline_id, unsigned depth);


/* ---- nodes of the parse ------------------------------------------------ */

/*
 * Appends a node named path[0..len) for the key k (a table; callers of
 * values set value afterwards) and indexes it.  *pos receives its
 * position.
 */
static int
node_add(toml_parser_t *ps, const toml_key_t *k, size_t len, uint32_t state,
    uint32_t inline_id, uint32_t *pos)
{
    mvw_toml_node_t  *nd;

    if (toml_doc_add(ps->doc, k->path, len, pos) != MV_OK) {
        return toml_perr(ps, k->at, "out of memory");
    }
    nd = &ps->doc->nodes[*pos];
    nd->line = k->line;
    nd->col = k->col;
    nd->state = state;
    nd->inline_id = inline_id;
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
            return toml_perr(ps, at, "out of memory");
        }
        ps->pending = np;
        ps->cap_pending = cap;
    }
    ps->pending[ps->n_pending++] = pos;
    return MV_OK;
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
    return toml_perr(ps, k->at, "key is longer than %d bytes",
                     MVW_TOML_PATH_MAX);
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
    k->col = toml_column(ps, ps->p);

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
            if (toml_parse_string(ps) != MV_OK
                || key_add(ps, k, ps->sbuf, ps->slen) != MV_OK)
            {
                return MV_ERR;
            }
        } else {
            return toml_perr(ps, ps->p, "expected a key, found %s",
                             toml_found(ps, ps->p));
        }
        toml_skip_ws(ps);
        if (ps->p == ps->end || *ps->p != '.') {
            return MV_OK;
        }
        ps->p++;
        toml_skip_ws(ps);
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
        toml_skip_ws_nl(ps);
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
                toml_perr(ps, ps->p, "out of memory");
                goto fail;
            }
            items = ni;
        }
        items[n++] = item;

        toml_skip_ws_nl(ps);
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
        toml_perr(ps, ps->p, "expected ',' or ']' in the array, found %s",
                  toml_found(ps, ps->p));
        goto fail;
    }

    v->type = MVW_TOML_ARRAY;
    v->items = items;
    v->n_items = n;
    return MV_OK;

unterminated:
    toml_perr(ps, ps->p, "unterminated array (opened on line %" PRIu32 ")",
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
    if (toml_at_eol(ps) || *s == '#') {
        return toml_perr(ps, s, "missing value");
    }

    switch (*s) {
    case '"':
    case '\'':
        if (toml_parse_string(ps) != MV_OK) {
            return MV_ERR;
        }
        v->str = malloc(ps->slen + 1);
        if (v->str == NULL) {
            return toml_perr(ps, s, "out of memory");
        }
        memcpy(v->str, ps->sbuf, ps->slen + 1);
        v->len = ps->slen;
        v->type = MVW_TOML_STRING;
        return MV_OK;
    case '[':
        if (in_array) {
            return toml_perr(ps, s, "nested arrays are not supported");
        }
        return parse_array(ps, v);
    case '{':
        return toml_perr(ps, s, "inline tables in arrays are not supported");
    }

    e = ps->end;
    if ((e - s >= 5 && is_dec(s[0]) && is_dec(s[1]) && is_dec(s[2])
         && is_dec(s[3]) && s[4] == '-')
        || (e - s >= 3 && is_dec(s[0]) && is_dec(s[1]) && s[2] == ':'))
    {
        return toml_perr(ps, s, "date-time values are not supported");
    }

    while (ps->p < e && is_token((unsigned char) *ps->p)) {
        ps->p++;
    }
    if (ps->p == s) {
        return toml_perr(ps, s, "expected a value, found %s",
                         toml_found(ps, s));
    }
    if (toml_scalar_from_token(s, (size_t) (ps->p - s), v, 1, &why) != MV_OK) {
        return toml_perr(ps, s, "%s", why.msg);
    }
    return MV_OK;
}


/* { key = value, ... } on one line, at ps->p; path names the table. */
static int
parse_inline(toml_parser_t *ps, const char *path, size_t len, uint32_t id,
    unsigned depth)
{
    ps->p++;
    toml_skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return MV_OK;
    }
    for (;;) {
        if (toml_at_eol(ps) || *ps->p == '#') {
            return toml_perr(ps, ps->p, "an inline table must end on the "
                             "line where it starts, found %s",
                             toml_found(ps, ps->p));
        }
        if (parse_keyval(ps, path, len, id, depth) != MV_OK) {
            return MV_ERR;
        }
        toml_skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            toml_skip_ws(ps);
            if (ps->p < ps->end && *ps->p == '}') {
                return toml_perr(ps, ps->p,
                                 "trailing comma in an inline table");
            }
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return MV_OK;
        }
        if (toml_at_eol(ps) || *ps->p == '#') {
            return toml_perr(ps, ps->p, "an inline table must end on the "
                             "line where it starts, found %s",
                             toml_found(ps, ps->p));
        }
        return toml_perr(ps, ps->p, "expected ',' or '}' in the inline table, "
                         "found %s", toml_found(ps, ps->p));
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
        pos = toml_node_find(ps->doc, k->path, k->ends[i]);
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
            return toml_perr(ps, k->at, "key \"%s\" is already defined on "
                             "line %" PRIu32 ", it cannot be a table",
                             nd->path, nd->line);
        }
        if (nd->inline_id != inline_id) {
            return toml_perr(ps, k->at, "inline table \"%s\" (line %" PRIu32
                             ") cannot be extended", nd->path, nd->line);
        }
        if (inline_id == 0 && nd->state == ST_DEFINED) {
            return toml_perr(ps, k->at, "table [%s] (line %" PRIu32 ") cannot "
                             "be extended with dotted keys", nd->path,
                             nd->line);
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
    pos = toml_node_find(ps->doc, k.path, k.len);
    if (pos >= 0 && ps->doc->nodes[pos].state == ST_VALUE) {
        return toml_perr(ps, k.at, "duplicate key \"%s\" (first on line %"
                         PRIu32 ")", k.path, ps->doc->nodes[pos].line);
    }
    if (pos >= 0) {
        return toml_perr(ps, k.at, "key \"%s\" is already a table (line %"
                         PRIu32 ")", k.path, ps->doc->nodes[pos].line);
    }

    if (ps->p == ps->end || *ps->p != '=') {
        return toml_perr(ps, ps->p, "expected '=' after the key, found %s",
                         toml_found(ps, ps->p));
    }
    ps->p++;
    toml_skip_ws(ps);

    if (ps->p < ps->end && *ps->p == '{') {
        if (depth == MVW_TOML_DEPTH_MAX) {
            return toml_perr(ps, ps->p, "inline tables nested more than %d "
                             "deep", MVW_TOML_DEPTH_MAX);
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
        return toml_perr(ps, ps->p - 1,
                         "arrays of tables ([[...]]) are not supported");
    }
    toml_skip_ws(ps);
    if (parse_key(ps, "", 0, &k) != MV_OK) {
        return MV_ERR;
    }
    if (ps->p == ps->end || *ps->p != ']') {
        return toml_perr(ps, ps->p, "expected ']' after the table name, "
                         "found %s", toml_found(ps, ps->p));
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
        pos = toml_node_find(ps->doc, k.path, k.ends[i]);
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
            return toml_perr(ps, k.at, "key \"%s\" is already defined on "
                             "line %" PRIu32 ", it cannot be a table",
                             nd->path, nd->line);
        }
        if (nd->inline_id != 0) {
            return toml_perr(ps, k.at, "inline table \"%s\" (line %" PRIu32
                             ") cannot be extended", nd->path, nd->line);
        }
        if (i + 1 == k.n) {
            if (nd->state == ST_DEFINED) {
                return toml_perr(ps, k.at, "table [%s] defined twice (first on "
                                 "line %" PRIu32 ")", nd->path, nd->line);
            }
            nd->state = ST_DEFINED;
            nd->line = k.line;
            nd->col = k.col;
        }
    }

    memcpy(ps->table, k.path, k.len + 1);
    ps->table_len = k.len;
    return toml_end_line(ps, "the table header");
}


static int
parse_document(toml_parser_t *ps)
{
    for (;;) {
        toml_skip_ws(ps);
        if (ps->p == ps->end) {
            return MV_OK;
        }
        if (*ps->p == '[') {
            if (parse_header(ps) != MV_OK) {
                return MV_ERR;
            }
        } else if (*ps->p == '#' || *ps->p == '\n' || *ps->p == '\r') {
            if (toml_end_line(ps, "a comment") != MV_OK) {
                return MV_ERR;
            }
        } else if (parse_keyval(ps, ps->table, ps->table_len, 0, 0) != MV_OK
                   || toml_end_line(ps, "the value") != MV_OK)
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

    rc = toml_check_bytes(&ps, buf, len);
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
