/*
 * fuzz_toml.c -- libFuzzer target for the TOML parser and the worker's
 * configuration built on it.
 *
 * Each input goes through four doors:
 *
 *   1. mvw_toml_parse.  What it accepts must keep the contract: paths of
 *      at most 255 bytes that mvw_toml_find finds again, strings of valid
 *      UTF-8 without NUL and at most 64 KiB, arrays of scalars only.  The
 *      value nodes are then written back as one flat "path = value" line
 *      each (canonical paths are valid TOML keys) and parsed again: the
 *      second document must hold the same paths and the same values, bit
 *      for bit.  This checks escapes, numbers and paths against
 *      themselves.
 *   2. mvw_config_load_buffer.  An accepted configuration is printed,
 *      loaded back, and must be the same struct (memcmp), and print the
 *      same text again.
 *   3. mvw_config_set on the defaults, with the input split at its first
 *      '=' into key and text; an accepted value must survive the round
 *      trip of 2 as well.
 *   4. The input as one environment variable ("MILVUSO_...=...").
 *
 * A broken check calls abort(); the sanitizers catch the rest (reads past
 * the input, leaks, undefined behaviour).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
check_value(const mvw_toml_value_t *v, int in_array)
{
    switch (v->type) {
    case MVW_TOML_STRING:
        if (v->len > MVW_TOML_STRING_MAX || strlen(v->str) != v->len
            || !mvw_toml_utf8_valid(v->str, v->len))
        {
            abort();
        }
        break;
    case MVW_TOML_ARRAY:
        if (in_array) {
            abort();
        }
        for (size_t i = 0; i < v->n_items; i++) {
            check_value(&v->items[i], 1);
        }
        break;
    case MVW_TOML_INTEGER:
    case MVW_TOML_BOOL:
        break;
    case MVW_TOML_FLOAT:
        break;
    default:
        abort();
    }
}


static void
write_value(const mvw_toml_value_t *v, FILE *out)
{
    char  num[40];

    switch (v->type) {
    case MVW_TOML_STRING:
        fputc('"', out);
        for (size_t i = 0; i < v->len; i++) {
            unsigned char  c = (unsigned char) v->str[i];

            if (c == '"' || c == '\\') {
                fprintf(out, "\\%c", c);
            } else if (c < 0x20 || c == 0x7f) {
                fprintf(out, "\\u%04X", c);
            } else {
                fputc(c, out);
            }
        }
        fputc('"', out);
        break;
    case MVW_TOML_INTEGER:
        fprintf(out, "%lld", (long long) v->integer);
        break;
    case MVW_TOML_FLOAT:
        if (isnan(v->number)) {
            fputs("nan", out);
        } else if (isinf(v->number)) {
            fputs(v->number < 0 ? "-inf" : "inf", out);
        } else {
            snprintf(num, sizeof(num), "%.17g", v->number);
            fprintf(out, "%s%s", num, strpbrk(num, ".e") ? "" : ".0");
        }
        break;
    case MVW_TOML_BOOL:
        fputs(v->boolean ? "true" : "false", out);
        break;
    case MVW_TOML_ARRAY:
        fputs("[\n", out);
        for (size_t i = 0; i < v->n_items; i++) {
            write_value(&v->items[i], out);
            fputs(",\n", out);
        }
        fputc(']', out);
        break;
    default:
        abort();
    }
}


static int
same_value(const mvw_toml_value_t *a, const mvw_toml_value_t *b)
{
    if (a->type != b->type) {
        return 0;
    }
    switch (a->type) {
    case MVW_TOML_STRING:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case MVW_TOML_INTEGER:
        return a->integer == b->integer;
    case MVW_TOML_FLOAT:
        return (isnan(a->number) && isnan(b->number))
               || memcmp(&a->number, &b->number, sizeof(double)) == 0;
    case MVW_TOML_BOOL:
        return a->boolean == b->boolean;
    case MVW_TOML_ARRAY:
        if (a->n_items != b->n_items) {
            return 0;
        }
        for (size_t i = 0; i < a->n_items; i++) {
            if (!same_value(&a->items[i], &b->items[i])) {
                return 0;
            }
        }
        return 1;
    default:
        return 0;
    }
}


static void
check_document(const mvw_toml_t *doc)
{
    mvw_toml_t  again;
    mv_err_t    err;
    char       *text = NULL;
    size_t      len = 0, j = 0;
    FILE       *out;

    for (size_t i = 0; i < doc->n_nodes; i++) {
        const mvw_toml_node_t  *nd = &doc->nodes[i];

        if (strlen(nd->path) > MVW_TOML_PATH_MAX || nd->line == 0
            || mvw_toml_find(doc, nd->path) != nd)
        {
            abort();
        }
        if (nd->value.type != MVW_TOML_TABLE) {
            check_value(&nd->value, 0);
        }
    }

    out = open_memstream(&text, &len);
    if (out == NULL) {
        return;
    }
    for (size_t i = 0; i < doc->n_nodes; i++) {
        if (doc->nodes[i].value.type != MVW_TOML_TABLE) {
            fprintf(out, "%s = ", doc->nodes[i].path);
            write_value(&doc->nodes[i].value, out);
            fputc('\n', out);
        }
    }
    if (fclose(out) != 0) {
        free(text);
        return;
    }
    if (len > MVW_TOML_DOC_MAX) {
        free(text);
        return;
    }
    if (mvw_toml_parse(&again, text, len, &err) != MV_OK) {
        fprintf(stderr, "rewritten document refused: %s\n%s", err.msg, text);
        abort();
    }
    for (size_t i = 0; i < doc->n_nodes; i++) {
        const mvw_toml_node_t  *nd = &doc->nodes[i];

        if (nd->value.type == MVW_TOML_TABLE) {
            continue;
        }
        while (j < again.n_nodes
               && again.nodes[j].value.type == MVW_TOML_TABLE)
        {
            j++;
        }
        if (j == again.n_nodes || strcmp(nd->path, again.nodes[j].path) != 0
            || !same_value(&nd->value, &again.nodes[j].value))
        {
            fprintf(stderr, "value of %s changed\n", nd->path);
            abort();
        }
        j++;
    }
    mvw_toml_free(&again);
    free(text);
}


static void
check_config(const mvw_config_t *c)
{
    mvw_config_t  back;
    mv_err_t      err;
    char         *text = NULL, *again = NULL;
    size_t        len = 0, len2 = 0;
    FILE         *out;

    out = open_memstream(&text, &len);
    if (out == NULL) {
        return;
    }
    mvw_config_print(c, out);
    if (fclose(out) != 0) {
        free(text);
        return;
    }
    if (mvw_config_load_buffer(&back, "printed", text, len, NULL, &err)
        != MV_OK)
    {
        fprintf(stderr, "printed configuration refused: %s\n%s", err.msg,
                text);
        abort();
    }
    if (memcmp(c, &back, sizeof(back)) != 0) {
        abort();
    }
    out = open_memstream(&again, &len2);
    if (out != NULL) {
        mvw_config_print(&back, out);
        if (fclose(out) == 0 && (len2 != len || memcmp(text, again, len))) {
            abort();
        }
    }
    free(again);
    free(text);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char        *buf = (const char *) data;
    mvw_toml_t         doc;
    mvw_toml_value_t   v;
    mvw_config_t       c;
    mv_err_t           err;
    char              *s, *eq, *env[2];

    if (mvw_toml_parse(&doc, buf, size, &err) == MV_OK) {
        check_document(&doc);
    } else if (doc.n_nodes != 0 || doc.nodes != NULL) {
        abort();
    }
    mvw_toml_free(&doc);

    if (mvw_config_load_buffer(&c, "fuzz", buf, size, NULL, &err) == MV_OK) {
        check_config(&c);
    }

    if (mvw_toml_parse_scalar(buf, size, &v, &err) == MV_OK) {
        if (v.type != MVW_TOML_INTEGER && v.type != MVW_TOML_FLOAT
            && v.type != MVW_TOML_BOOL)
        {
            abort();
        }
        mvw_toml_value_free(&v);
    }

    /* The bytes as text: key=value for mvw_config_set, and a variable. */
    s = malloc(size + 1);
    if (s == NULL) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    eq = strchr(s, '=');
    if (eq != NULL) {
        *eq = '\0';
        mvw_config_defaults(&c);
        if (mvw_config_set(&c, s, eq + 1, &err) == MV_OK) {
            check_config(&c);
        }
        *eq = '=';
    }
    env[0] = s;
    env[1] = NULL;
    if (mvw_config_load(&c, NULL, env, &err) == MV_OK) {
        check_config(&c);
    }
    free(s);
    return 0;
}
