/*
 * test_toml.c -- unit tests of the worker's TOML subset parser: every
 * accepted shape with the nodes it gives, every refusal with its exact
 * "LINE:COL: reason", the limits, and the scalar parser the environment
 * uses.
 *
 * Accepted documents are a table of {document, dump}: the dump is every
 * node in document order, "[table]" or "path=value", so one row states the
 * paths, the types and the values at once.  Refused documents are a table
 * of {document, message}.  Each document is copied into a buffer of
 * exactly its length first, so that reading past it is an ASan error.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/toml.h"


typedef struct dump {
    char    buf[4096];
    size_t  len;
} dump_t;


static void
put(dump_t *d, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    d->len += (size_t) vsnprintf(d->buf + d->len, sizeof(d->buf) - d->len,
                                 fmt, ap);
    va_end(ap);
    assert_true(d->len < sizeof(d->buf));
}


static void
dump_value(dump_t *d, const mvw_toml_value_t *v)
{
    char  num[40];

    switch (v->type) {
    case MVW_TOML_STRING:
        put(d, "\"");
        for (size_t i = 0; i < v->len; i++) {
            unsigned char  c = (unsigned char) v->str[i];

            if (c == '"' || c == '\\') {
                put(d, "\\%c", c);
            } else if (c < 0x20 || c == 0x7f) {
                put(d, "\\u%04X", c);
            } else {
                put(d, "%c", c);
            }
        }
        put(d, "\"");
        break;
    case MVW_TOML_INTEGER:
        put(d, "%lld", (long long) v->integer);
        break;
    case MVW_TOML_FLOAT:
        if (isnan(v->number)) {
            put(d, "nan");
            break;
        }
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(num, sizeof(num), "%.*g", prec, v->number);
            if (strtod(num, NULL) == v->number) {
                break;
            }
        }
        put(d, "%s%s", num, strpbrk(num, ".ein") ? "" : ".0");
        break;
    case MVW_TOML_BOOL:
        put(d, v->boolean ? "true" : "false");
        break;
    case MVW_TOML_ARRAY:
        put(d, "[");
        for (size_t i = 0; i < v->n_items; i++) {
            put(d, i ? "," : "");
            dump_value(d, &v->items[i]);
        }
        put(d, "]");
        break;
    case MVW_TOML_TABLE:
        break;
    }
}


static void
dump_doc(dump_t *d, const mvw_toml_t *doc)
{
    d->len = 0;
    d->buf[0] = '\0';
    for (size_t i = 0; i < doc->n_nodes; i++) {
        const mvw_toml_node_t  *nd = &doc->nodes[i];

        put(d, i ? " " : "");
        if (nd->value.type == MVW_TOML_TABLE) {
            put(d, "[%s]", nd->path);
        } else {
            put(d, "%s=", nd->path);
            dump_value(d, &nd->value);
        }
        /* every node is found again by its path */
        assert_ptr_equal(mvw_toml_find(doc, nd->path), nd);
    }
}


/* Parses len bytes from an exact-size copy. */
static int
parse(mvw_toml_t *doc, const char *text, size_t len, mv_err_t *err)
{
    char  *copy = malloc(len ? len : 1);
    int    rc;

    assert_non_null(copy);
    memcpy(copy, text, len);
    rc = mvw_toml_parse(doc, copy, len, err);
    free(copy);
    return rc;
}


static const struct {
    const char  *doc;
    const char  *dump;
} accepted[] = {
    { "", "" },
    { "# only a comment\n\n  \t\n#\n", "" },
    { "a = 1", "a=1" },
    { "a=1\r\nb = 'x'\r\n", "a=1 b=\"x\"" },
    { "\ta = 1\t# tab and a comment with \xc3\xa9\n", "a=1" },
    { "[server]\nport = 8080 # the port\n",
      "[server] server.port=8080" },
    { "[a.b]\nc = true\n", "[a] [a.b] a.b.c=true" },
    { "[ a . b ]  # spaces\n", "[a] [a.b]" },
    { "[a]\n[b]\n", "[a] [b]" },
    { "a.b.c = 1\na . b . d = 2\n", "[a] [a.b] a.b.c=1 a.b.d=2" },
    { "\"a\" = 1\n'b c' = 2\n\"d.e\" = 3\n",
      "a=1 \"b c\"=2 \"d.e\"=3" },
    { "\"\" = 1\n", "\"\"=1" },
    { "\"q\\\"\\\\\" = 1\n", "\"q\\\"\\\\\"=1" },
    { "\"\\u0001\" = 1\n", "\"\\u0001\"=1" },
    { "\"\xca\x8e\" = 1\n", "\"\xca\x8e\"=1" },
    { "1234 = 1\n3.14159 = 'pi'\n-_- = 0\n",
      "1234=1 [3] 3.14159=\"pi\" -_-=0" },
    { "[\"a.b\".c]\n", "[\"a.b\"] [\"a.b\".c]" },

    /* strings */
    { "s = \"a\\tb\\nc\\\"q\\\\ \\b\\f\\r\"",
      "s=\"a\\u0009b\\u000Ac\\\"q\\\\ \\u0008\\u000C\\u000D\"" },
    { "s = \"\\u00e9\\U0001F600\\u007F\"",
      "s=\"\xc3\xa9\xf0\x9f\x98\x80\\u007F\"" },
    { "s = 'C:\\path\\x \"q\"'", "s=\"C:\\\\path\\\\x \\\"q\\\"\"" },
    { "s = \"\"\nt = ''\n", "s=\"\" t=\"\"" },
    { "s = \"#not a comment\" # a comment", "s=\"#not a comment\"" },
    { "s = \"tab\there\"", "s=\"tab\\u0009here\"" },

    /* integers */
    { "a = +99\nb = -17\nc = 0\nd = 1_000\ne = -0\nf = +0\n",
      "a=99 b=-17 c=0 d=1000 e=0 f=0" },
    { "a = 0xDEAD_beef\nb = 0o755\nc = 0b1101\nd = 0x0001\n",
      "a=3735928559 b=493 c=13 d=1" },
    { "a = 9223372036854775807\nb = -9223372036854775808\n"
      "c = 0x7FFFFFFFFFFFFFFF\n",
      "a=9223372036854775807 b=-9223372036854775808 "
      "c=9223372036854775807" },

    /* floats */
    { "a = 1.0\nb = 3.1415\nc = -0.01\nd = 5e+22\ne = 1e06\nf = -2E-2\n",
      "a=1.0 b=3.1415 c=-0.01 d=5e+22 e=1e+06 f=-0.02" },
    { "a = 6.626e-34\nb = 224_617.445_991\nc = 0e0\nd = -0.0\ne = 1e-0_1\n",
      "a=6.626e-34 b=224617.445991 c=0.0 d=-0.0 e=0.1" },
    { "a = inf\nb = -inf\nc = +inf\nd = nan\ne = -nan\nf = +nan\n",
      "a=inf b=-inf c=inf d=nan e=nan f=nan" },
    { "a = 1e-400\n", "a=0.0" },

    /* booleans */
    { "t = true\nf = false\n", "t=true f=false" },

    /* arrays */
    { "a = [1, 2, 3]\nb = []\nc = [ ]\n", "a=[1,2,3] b=[] c=[]" },
    { "a = [\n  'x', # first\n  \"y\",\n\n  # alone\n]\nb = 1\n",
      "a=[\"x\",\"y\"] b=1" },
    { "a = [1, 'mixed', true, 2.5, inf]", "a=[1,\"mixed\",true,2.5,inf]" },
    { "a = [\r\n1,\r\n2]\r\n", "a=[1,2]" },

    /* inline tables */
    { "t = { a = 1, b = \"x\" }\nu = {}\n",
      "[t] t.a=1 t.b=\"x\" [u]" },
    { "v = { a.b = 1, a.c = [2, 3] }\n",
      "[v] [v.a] v.a.b=1 v.a.c=[2,3]" },
    { "w = { x = { y = { z = 1 } } }\n",
      "[w] [w.x] [w.x.y] w.x.y.z=1" },
    { "[s]\nt = {a=1}\n", "[s] [s.t] s.t.a=1" },
    { "t = { a = [\n1,\n2] }\n", "[t] t.a=[1,2]" },

    /* the table rules that allow */
    { "[a.b.c]\n[a]\nx = 1\n", "[a] [a.b] [a.b.c] a.x=1" },
    { "[a]\nb.c = 1\nb.d = 2\n[a.b.e]\n",
      "[a] [a.b] a.b.c=1 a.b.d=2 [a.b.e]" },
    { "a.b = 1\n[a.c]\n", "[a] a.b=1 [a.c]" },
    { "[a.b.c]\nz = 9\n[a]\nb.d = 1\n",
      "[a] [a.b] [a.b.c] a.b.c.z=9 a.b.d=1" },
    { "[x]\n[x.y]\n[x.z]\n", "[x] [x.y] [x.z]" },
};


static void
test_accepted(void **state)
{
    mvw_toml_t  doc;
    mv_err_t    err;
    dump_t      d;

    (void) state;
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        err.msg[0] = '\0';
        if (parse(&doc, accepted[i].doc, strlen(accepted[i].doc), &err)
            != MV_OK)
        {
            print_message("case %zu: %s\n", i, err.msg);
            fail();
        }
        dump_doc(&d, &doc);
        if (strcmp(d.buf, accepted[i].dump) != 0) {
            print_message("case %zu\n", i);
        }
        assert_string_equal(d.buf, accepted[i].dump);
        mvw_toml_free(&doc);
        assert_int_equal(doc.n_nodes, 0);
    }
}


static const struct {
    const char  *doc;
    const char  *msg;
} refused[] = {
    /* syntax */
    { "a = ", "1:5: missing value" },
    { "a =", "1:4: missing value" },
    { "a = # nothing", "1:5: missing value" },
    { "a = 1 2", "1:7: expected the end of the line after the value, "
      "found '2'" },
    { "a = 1 b = 2", "1:7: expected the end of the line after the value, "
      "found 'b'" },
    { "a b = 1", "1:3: expected '=' after the key, found 'b'" },
    { "a\n= 1", "1:2: expected '=' after the key, found the end of the line" },
    { "a", "1:2: expected '=' after the key, found the end of the file" },
    { "= 1", "1:1: expected a key, found '='" },
    { "a. = 1", "1:4: expected a key, found '='" },
    { "a = =", "1:5: expected a value, found '='" },
    { "\xc3\xa9 = 1", "1:1: expected a key, found U+00E9" },
    { "a = \xc3\xa9", "1:5: expected a value, found U+00E9" },
    { "\"\xc3\xa9\" = 1 x", "1:9: expected the end of the line after the "
      "value, found 'x'" },
    { "a = \"x\" # ok\nb = \"y\" z", "2:9: expected the end of the line "
      "after the value, found 'z'" },

    /* headers */
    { "[a", "1:3: expected ']' after the table name, found the end of the "
      "file" },
    { "[]", "1:2: expected a key, found ']'" },
    { "[a.]", "1:4: expected a key, found ']'" },
    { "[a b]", "1:4: expected ']' after the table name, found 'b'" },
    { "[a] x", "1:5: expected the end of the line after the table header, "
      "found 'x'" },
    { "[a]]", "1:4: expected the end of the line after the table header, "
      "found ']'" },
    { "[[a]]", "1:1: arrays of tables ([[...]]) are not supported" },

    /* the table rules */
    { "a = 1\na = 2", "2:1: duplicate key \"a\" (first on line 1)" },
    { "a = 1\n\"a\" = 2", "2:1: duplicate key \"a\" (first on line 1)" },
    { "[s]\na = 1\n[t]\n[s.x]\n[s]\n", "5:2: table [s] defined twice "
      "(first on line 1)" },
    { "[a]\n[a]", "2:2: table [a] defined twice (first on line 1)" },
    { "[a.b]\n[a]\n[a]", "3:2: table [a] defined twice (first on line 2)" },
    { "a = 1\n[a]", "2:2: key \"a\" is already defined on line 1, it "
      "cannot be a table" },
    { "a = 1\n[a.b]", "2:2: key \"a\" is already defined on line 1, it "
      "cannot be a table" },
    { "a = 1\na.b = 2", "2:1: key \"a\" is already defined on line 1, it "
      "cannot be a table" },
    { "[a]\nb = 1\n[a.b]", "3:2: key \"a.b\" is already defined on line 2, "
      "it cannot be a table" },
    { "a.b = 1\na = 2", "2:1: key \"a\" is already a table (line 1)" },
    { "[a.b]\n[a]\nb = 1", "3:1: key \"a.b\" is already a table (line 1)" },
    { "a.b = 1\n[a]", "2:2: table [a] defined twice (first on line 1)" },
    { "[a]\nb.c = 1\n[a.b]", "3:2: table [a.b] defined twice (first on "
      "line 2)" },
    { "[a.b]\nc = 1\n[a]\nb.d = 2", "4:1: table [a.b] (line 1) cannot be "
      "extended with dotted keys" },
    { "[a]\nb.c = 1\n[x]\n[a]", "4:2: table [a] defined twice (first on "
      "line 1)" },
    { "a = {b = 1}\na.c = 2", "2:1: inline table \"a\" (line 1) cannot be "
      "extended" },
    { "a = {b = 1}\n[a]", "2:2: inline table \"a\" (line 1) cannot be "
      "extended" },
    { "a = {b = 1}\n[a.c]", "2:2: inline table \"a\" (line 1) cannot be "
      "extended" },
    { "a = {b = {c = 1}, b.d = 2}", "1:19: inline table \"a.b\" (line 1) "
      "cannot be extended" },
    { "a = {b.c = 1}\n[a.b.d]", "2:2: inline table \"a\" (line 1) cannot "
      "be extended" },
    { "a = {b = 1, b = 2}", "1:13: duplicate key \"a.b\" (first on line 1)" },
    { "a = {b.c = 1, b = 2}", "1:15: key \"a.b\" is already a table "
      "(line 1)" },

    /* strings */
    { "a = \"\"\"x\"\"\"", "1:5: multi-line strings are not supported" },
    { "a = '''x'''", "1:5: multi-line strings are not supported" },
    { "\"\"\"k\"\"\" = 1", "1:1: multi-line strings are not supported" },
    { "a = \"abc", "1:5: unterminated string" },
    { "a = \"abc\nb = 1", "1:5: unterminated string" },
    { "a = 'abc", "1:5: unterminated string" },
    { "a = \"abc\\", "1:5: unterminated string" },
    { "a = \"\\x41\"", "1:6: invalid escape \\x" },
    { "a = \"\\e\"", "1:6: invalid escape \\e" },
    { "a = \"\\ \"", "1:6: invalid escape \\ followed by U+0020" },
    { "a = \"\\u00\"", "1:6: \\u needs 4 hex digits" },
    { "a = \"\\U0001F60\"", "1:6: \\U needs 8 hex digits" },
    { "a = \"\\uD800\"", "1:6: invalid escape \\uD800 (a surrogate)" },
    { "a = \"\\uDFFF\"", "1:6: invalid escape \\uDFFF (a surrogate)" },
    { "a = \"\\U00110000\"", "1:6: invalid escape \\U00110000 (above "
      "U+10FFFF)" },
    { "a = \"\\u0000\"", "1:6: \\u0000 is not allowed in strings" },
    { "a = \"x\x01\"", "1:7: control character U+0001" },
    { "a = 'x\x1b'", "1:7: control character U+001B" },
    { "a = \"x\x7f\"", "1:7: control character U+007F" },
    { "# comment \x0c\n", "1:11: control character U+000C" },
    { "a = 1\rb = 2", "1:6: carriage return without a line feed" },
    { "a = 1\r", "1:6: carriage return without a line feed" },
    { "a = \"\xff\"", "1:6: invalid UTF-8" },
    { "a = \"\xc0\xaf\"", "1:6: invalid UTF-8" },
    { "a = \"\xed\xa0\x80\"", "1:6: invalid UTF-8" },
    { "a = \"\xf4\x90\x80\x80\"", "1:6: invalid UTF-8" },
    { "a = \"\xe2\x82\"", "1:6: invalid UTF-8" },
    { "a = 1\n# \xc3", "2:3: invalid UTF-8" },

    /* numbers and other tokens */
    { "a = 01", "1:5: leading zeros are not allowed in \"01\"" },
    { "a = -0_1", "1:5: leading zeros are not allowed in \"-0_1\"" },
    { "a = 03.14", "1:5: leading zeros are not allowed in \"03.14\"" },
    { "a = 1__0", "1:5: invalid number \"1__0\"" },
    { "a = 1_", "1:5: invalid number \"1_\"" },
    { "a = _1", "1:5: invalid value \"_1\"" },
    { "a = 1.", "1:5: invalid number \"1.\"" },
    { "a = 1._5", "1:5: invalid number \"1._5\"" },
    { "a = .5", "1:5: invalid value \".5\"" },
    { "a = 1e", "1:5: invalid number \"1e\"" },
    { "a = 1e+", "1:5: invalid number \"1e+\"" },
    { "a = 1.5.2", "1:5: invalid number \"1.5.2\"" },
    { "a = +", "1:5: invalid number \"+\"" },
    { "a = +0x1", "1:5: invalid number \"+0x1\"" },
    { "a = 0x", "1:5: invalid number \"0x\"" },
    { "a = 0xG", "1:5: invalid number \"0xG\"" },
    { "a = 0X1", "1:5: invalid number \"0X1\"" },
    { "a = 0b102", "1:5: invalid number \"0b102\"" },
    { "a = 0x_1", "1:5: invalid number \"0x_1\"" },
    { "a = +inf1", "1:5: invalid number \"+inf1\"" },
    { "a = 9223372036854775808", "1:5: integer \"9223372036854775808\" is "
      "out of range" },
    { "a = -9223372036854775809", "1:5: integer \"-9223372036854775809\" is "
      "out of range" },
    { "a = 0x8000000000000000", "1:5: integer \"0x8000000000000000\" is out "
      "of range" },
    { "a = 1e400", "1:5: float \"1e400\" is out of range" },
    { "a = -1e400", "1:5: float \"-1e400\" is out of range" },
    { "a = localhost", "1:5: invalid value \"localhost\" (strings must be "
      "quoted)" },
    { "a = True", "1:5: invalid value \"True\" (strings must be quoted)" },
    { "a = 1234567890123456789012345678901234567890123",
      "1:5: integer \"1234567890123456789012345678901234567890...\" is out "
      "of range" },
    { "a = 1979-05-27", "1:5: date-time values are not supported" },
    { "a = 1979-05-27T07:32:00Z", "1:5: date-time values are not "
      "supported" },
    { "a = 07:32:00", "1:5: date-time values are not supported" },
    { "a = [1979-05-27]", "1:6: date-time values are not supported" },

    /* arrays */
    { "a = [1, 2", "1:10: unterminated array (opened on line 1)" },
    { "a = [1,\n2,\n", "3:1: unterminated array (opened on line 1)" },
    { "a = [1 2]", "1:8: expected ',' or ']' in the array, found '2'" },
    { "a = [1,,2]", "1:8: expected a value, found ','" },
    { "a = [,]", "1:6: expected a value, found ','" },
    { "a = [[1]]", "1:6: nested arrays are not supported" },
    { "a = [{b = 1}]", "1:6: inline tables in arrays are not supported" },
    { "a = [1] [2]", "1:9: expected the end of the line after the value, "
      "found '['" },

    /* inline tables */
    { "a = {b = 1,}", "1:12: trailing comma in an inline table" },
    { "a = {b = 1\n}", "1:11: an inline table must end on the line where "
      "it starts, found the end of the line" },
    { "a = {\nb = 1}", "1:6: an inline table must end on the line where it "
      "starts, found the end of the line" },
    { "a = {b = 1 # c\n}", "1:12: an inline table must end on the line "
      "where it starts, found '#'" },
    { "a = {", "1:6: an inline table must end on the line where it starts, "
      "found the end of the file" },
    { "a = {b = 1 c = 2}", "1:12: expected ',' or '}' in the inline table, "
      "found 'c'" },
    { "a = {,}", "1:6: expected a key, found ','" },
    { "a = {b}", "1:7: expected '=' after the key, found '}'" },
    { "a = {b = }", "1:10: expected a value, found '}'" },
    { "a = {b = 1}}", "1:12: expected the end of the line after the value, "
      "found '}'" },
    { "a = {b = 1} c", "1:13: expected the end of the line after the "
      "value, found 'c'" },
};


static void
test_refused(void **state)
{
    mvw_toml_t  doc;
    mv_err_t    err;

    (void) state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        err.msg[0] = '\0';
        if (parse(&doc, refused[i].doc, strlen(refused[i].doc), &err)
            != MV_ERR)
        {
            print_message("case %zu was accepted\n", i);
            fail();
        }
        if (strcmp(err.msg, refused[i].msg) != 0) {
            print_message("case %zu\n", i);
        }
        assert_string_equal(err.msg, refused[i].msg);
        assert_int_equal(doc.n_nodes, 0);
        assert_null(doc.nodes);
        assert_true(doc.err_line >= 1);
        mvw_toml_free(&doc);
    }
}


static void
test_positions(void **state)
{
    mvw_toml_t              doc;
    mv_err_t                err;
    const mvw_toml_node_t  *nd;
    const char             *text = "# c\n[a]\n  x = 1\n\n[b.c]\ny = [\n1,\n2]\n"
                                   "  \"\xc3\xa9\" . z = 3\n";

    (void) state;
    assert_int_equal(parse(&doc, text, strlen(text), &err), MV_OK);
    nd = mvw_toml_find(&doc, "a");
    assert_non_null(nd);
    assert_int_equal(nd->line, 2);
    assert_int_equal(nd->col, 2);
    assert_int_equal(nd->value.type, MVW_TOML_TABLE);
    nd = mvw_toml_find(&doc, "a.x");
    assert_int_equal(nd->line, 3);
    assert_int_equal(nd->col, 3);
    assert_int_equal(nd->value.type, MVW_TOML_INTEGER);
    nd = mvw_toml_find(&doc, "b");
    assert_int_equal(nd->line, 5);
    nd = mvw_toml_find(&doc, "b.c.y");
    assert_int_equal(nd->line, 6);
    assert_int_equal(nd->value.n_items, 2);
    nd = mvw_toml_find(&doc, "b.c.\"\xc3\xa9\".z");
    assert_non_null(nd);
    assert_int_equal(nd->line, 9);
    assert_int_equal(nd->col, 3);
    assert_null(mvw_toml_find(&doc, "b.c.z"));
    assert_null(mvw_toml_find(&doc, "a.x.y"));
    assert_null(mvw_toml_find(&doc, ""));
    mvw_toml_free(&doc);
    mvw_toml_free(&doc);

    /* An error on a later line, after CRLF lines and a multi-line array. */
    text = "a = 1\r\nb = [\r\n  1,\r\n]\r\nc = 1 x\r\n";
    assert_int_equal(parse(&doc, text, strlen(text), &err), MV_ERR);
    assert_string_equal(err.msg, "5:7: expected the end of the line after "
                        "the value, found 'x'");
    assert_int_equal(doc.err_line, 5);
    assert_int_equal(doc.err_col, 7);
}


static void
test_bytes(void **state)
{
    mvw_toml_t  doc;
    mv_err_t    err;

    (void) state;
    /* NUL bytes anywhere, including where strlen would stop. */
    assert_int_equal(parse(&doc, "a = 1\0", 6, &err), MV_ERR);
    assert_string_equal(err.msg, "1:6: NUL byte");
    assert_int_equal(parse(&doc, "a = \"x\0y\"", 9, &err), MV_ERR);
    assert_string_equal(err.msg, "1:7: NUL byte");
    assert_int_equal(parse(&doc, "\0", 1, &err), MV_ERR);
    assert_string_equal(err.msg, "1:1: NUL byte");

    /* An empty document, also without a buffer. */
    assert_int_equal(mvw_toml_parse(&doc, NULL, 0, &err), MV_OK);
    assert_int_equal(doc.n_nodes, 0);
    mvw_toml_free(&doc);

    /* Only len bytes are read: what follows is never seen. */
    assert_int_equal(parse(&doc, "a = 1 garbage", 5, &err), MV_OK);
    assert_int_equal(doc.nodes[0].value.integer, 1);
    mvw_toml_free(&doc);
    assert_int_equal(parse(&doc, "a = 'x' \"", 7, &err), MV_OK);
    mvw_toml_free(&doc);
    assert_int_equal(parse(&doc, "a = 12", 5, &err), MV_OK);
    assert_int_equal(doc.nodes[0].value.integer, 1);
    mvw_toml_free(&doc);
    assert_int_equal(parse(&doc, "a = \"\\u00e9\"", 9, &err), MV_ERR);
    assert_string_equal(err.msg, "1:6: \\u needs 4 hex digits");
    assert_int_equal(parse(&doc, "a = 'x", 6, &err), MV_ERR);
    assert_int_equal(parse(&doc, "a = \xc3\xa9", 5, &err), MV_ERR);
    assert_string_equal(err.msg, "1:5: invalid UTF-8");
}


static void
test_limits(void **state)
{
    mvw_toml_t  doc;
    mv_err_t    err;
    char       *big;
    size_t      n;
    char        key[600];

    (void) state;

    /* The document size. */
    big = malloc(MVW_TOML_DOC_MAX + 1);
    assert_non_null(big);
    memset(big, '\n', MVW_TOML_DOC_MAX + 1);
    memcpy(big, "a = 1", 5);
    assert_int_equal(mvw_toml_parse(&doc, big, MVW_TOML_DOC_MAX, &err),
                     MV_OK);
    assert_int_equal(doc.n_nodes, 1);
    mvw_toml_free(&doc);
    assert_int_equal(mvw_toml_parse(&doc, big, MVW_TOML_DOC_MAX + 1, &err),
                     MV_ERR);
    assert_string_equal(err.msg, "document is larger than 1048576 bytes");
    assert_int_equal(doc.err_line, 0);

    /* The longest string, and one byte more (escapes count decoded). */
    n = (size_t) snprintf(big, 8, "s = \"");
    memset(big + n, 'x', MVW_TOML_STRING_MAX - 1);
    n += MVW_TOML_STRING_MAX - 1;
    n += (size_t) snprintf(big + n, 16, "\\u00e9\"");
    assert_int_equal(parse(&doc, big, n, &err), MV_ERR);
    assert_string_equal(err.msg, "1:5: string is longer than 65536 bytes");
    memcpy(big + n - 7, "\\t\"", 3);
    assert_int_equal(parse(&doc, big, n - 4, &err), MV_OK);
    assert_int_equal(doc.nodes[0].value.len, MVW_TOML_STRING_MAX);
    assert_int_equal(doc.nodes[0].value.str[MVW_TOML_STRING_MAX - 1], '\t');
    mvw_toml_free(&doc);

    /* Many nodes: the index grows and stays right. */
    n = 0;
    for (unsigned i = 0; i < 20000; i++) {
        n += (size_t) snprintf(big + n, 64, "[t%u]\nk%u = %u\n", i, i, i);
    }
    assert_int_equal(parse(&doc, big, n, &err), MV_OK);
    assert_int_equal(doc.n_nodes, 40000);
    for (unsigned i = 0; i < 20000; i += 997) {
        snprintf(key, sizeof(key), "t%u.k%u", i, i);
        assert_int_equal(mvw_toml_find(&doc, key)->value.integer, i);
    }
    mvw_toml_free(&doc);

    /* One line of almost 1 MiB with 80000 keys (columns are counted once). */
    n = (size_t) snprintf(big, 8, "t = {");
    for (unsigned i = 0; i < 80000; i++) {
        n += (size_t) snprintf(big + n, 32, "%sk%u=%u", i ? "," : "", i, i);
    }
    big[n++] = '}';
    assert_true(n <= MVW_TOML_DOC_MAX);
    assert_int_equal(parse(&doc, big, n, &err), MV_OK);
    assert_int_equal(doc.n_nodes, 80001);
    assert_int_equal(mvw_toml_find(&doc, "t.k79999")->col, n - 12);
    mvw_toml_free(&doc);
    memcpy(big + n - 1, ",}", 2);
    assert_int_equal(parse(&doc, big, n + 1, &err), MV_ERR);
    snprintf(key, sizeof(key), "1:%zu: trailing comma in an inline table",
             n + 1);
    assert_string_equal(err.msg, key);
    free(big);

    /* Paths: 255 bytes is the longest, header and dotted key together. */
    memset(key, 'k', sizeof(key));
    memcpy(key, "[", 1);
    memcpy(key + 1 + 200, "]\n", 2);
    memcpy(key + 203 + 54, " = 1", 4);
    assert_int_equal(parse(&doc, key, 203 + 58, &err), MV_OK);
    assert_int_equal(strlen(doc.nodes[1].path), 255);
    mvw_toml_free(&doc);
    key[203 + 54] = 'k';
    memcpy(key + 203 + 55, " = 1", 4);
    assert_int_equal(parse(&doc, key, 203 + 59, &err), MV_ERR);
    assert_string_equal(err.msg, "2:1: key is longer than 255 bytes");
    /* Quoting counts: 254 bytes of segment become 256 with the quotes. */
    key[0] = '"';
    memset(key + 1, 'q', 253);
    memcpy(key + 254, " \" = 1", 6);
    assert_int_equal(parse(&doc, key, 260, &err), MV_ERR);
    assert_string_equal(err.msg, "1:1: key is longer than 255 bytes");
    n = 0;
    for (unsigned i = 0; i < 128; i++) {
        n += (size_t) snprintf(key + n, 4, "%sa", i ? "." : "");
    }
    memcpy(key + n, "=1", 2);
    assert_int_equal(parse(&doc, key, n + 2, &err), MV_OK);
    assert_int_equal(doc.n_nodes, 128);
    mvw_toml_free(&doc);
    memcpy(key + n, ".a=1", 4);
    assert_int_equal(parse(&doc, key, n + 4, &err), MV_ERR);
    assert_string_equal(err.msg, "1:1: key is longer than 255 bytes");

    /* Inline tables nest 8 deep, not 9. */
    n = (size_t) snprintf(key, sizeof(key), "a = ");
    for (int i = 0; i < 8; i++) {
        n += (size_t) snprintf(key + n, 8, "{b = ");
    }
    n += (size_t) snprintf(key + n, 8, "1");
    for (int i = 0; i < 8; i++) {
        key[n++] = '}';
    }
    assert_int_equal(parse(&doc, key, n, &err), MV_OK);
    assert_non_null(mvw_toml_find(&doc, "a.b.b.b.b.b.b.b.b"));
    mvw_toml_free(&doc);
    n = (size_t) snprintf(key, sizeof(key), "a = ");
    for (int i = 0; i < 9; i++) {
        n += (size_t) snprintf(key + n, 8, "{b = ");
    }
    assert_int_equal(parse(&doc, key, n, &err), MV_ERR);
    assert_string_equal(err.msg, "1:45: inline tables nested more than 8 "
                        "deep");
}


static void
test_scalar(void **state)
{
    mvw_toml_value_t  v;
    mv_err_t          err;

    static const struct {
        const char       *text;
        mvw_toml_type_t   type;
        double            value;
        const char       *msg;
    } cases[] = {
        { "42", MVW_TOML_INTEGER, 42, NULL },
        { "-7", MVW_TOML_INTEGER, -7, NULL },
        { "0x10", MVW_TOML_INTEGER, 16, NULL },
        { "1_000", MVW_TOML_INTEGER, 1000, NULL },
        { "0.01", MVW_TOML_FLOAT, 0.01, NULL },
        { "1e3", MVW_TOML_FLOAT, 1000, NULL },
        { "-inf", MVW_TOML_FLOAT, -HUGE_VAL, NULL },
        { "true", MVW_TOML_BOOL, 1, NULL },
        { "false", MVW_TOML_BOOL, 0, NULL },
        { "", 0, 0, "empty value" },
        { " 5", 0, 0, "not a number or a boolean" },
        { "5 ", 0, 0, "not a number or a boolean" },
        { "\"5\"", 0, 0, "not a number or a boolean" },
        { "abc", 0, 0, "invalid value \"abc\"" },
        { "yes", 0, 0, "invalid value \"yes\"" },
        { "1.", 0, 0, "invalid number \"1.\"" },
        { "007", 0, 0, "leading zeros are not allowed in \"007\"" },
        { "1e999", 0, 0, "float \"1e999\" is out of range" },
        { "99999999999999999999", 0, 0,
          "integer \"99999999999999999999\" is out of range" },
    };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int  rc = mvw_toml_parse_scalar(cases[i].text, strlen(cases[i].text),
                                        &v, &err);

        if (cases[i].msg != NULL) {
            assert_int_equal(rc, MV_ERR);
            assert_string_equal(err.msg, cases[i].msg);
            continue;
        }
        assert_int_equal(rc, MV_OK);
        assert_int_equal(v.type, cases[i].type);
        if (v.type == MVW_TOML_INTEGER) {
            assert_true(v.integer == (int64_t) cases[i].value);
        } else if (v.type == MVW_TOML_FLOAT) {
            assert_true(v.number == cases[i].value);
        } else {
            assert_int_equal(v.boolean, (int) cases[i].value);
        }
        mvw_toml_value_free(&v);
    }

    assert_int_equal(mvw_toml_parse_scalar("12", 1, &v, &err), MV_OK);
    assert_int_equal(v.integer, 1);
    assert_int_equal(mvw_toml_parse_scalar("nan", 3, &v, &err), MV_OK);
    assert_true(isnan(v.number));

    assert_int_equal(mvw_toml_utf8_valid("a\xc3\xa9\xf0\x9f\x98\x80", 7), 1);
    assert_int_equal(mvw_toml_utf8_valid("\xc3", 1), 0);
    assert_int_equal(mvw_toml_utf8_valid("\xed\xa0\x80", 3), 0);
    assert_int_equal(mvw_toml_utf8_valid("\xe0\x80\x80", 3), 0);
    assert_int_equal(mvw_toml_utf8_valid("\xf5\x80\x80\x80", 4), 0);
    assert_int_equal(mvw_toml_utf8_valid("", 0), 1);
    assert_string_equal(mvw_toml_type_name(MVW_TOML_FLOAT), "float");
    assert_string_equal(mvw_toml_type_name(MVW_TOML_TABLE), "table");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_scalar),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
