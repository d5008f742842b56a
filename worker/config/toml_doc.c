/*
 * toml_doc.c -- a parsed TOML document: its nodes in document order, the
 * hash index over their paths, lookup and freeing (see toml.h).
 *
 * Nodes and their paths are malloc'ed one by one and indexed by an
 * open-addressing hash (FNV-1a over the canonical path, linear probing,
 * load <= 1/2; the index stores position + 1, 0 = free).  The parser adds
 * nodes through toml_doc_add and sets their position and table state;
 * nothing here knows the grammar.
 */
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "config/toml_internal.h"


static uint32_t
path_hash(const char *s, size_t len)
{
    uint32_t  h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char) s[i]) * 16777619u;
    }
    return h;
}


int64_t
toml_node_find(const mvw_toml_t *doc, const char *path, size_t len)
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


int
toml_doc_add(mvw_toml_t *doc, const char *path, size_t len, uint32_t *pos)
{
    mvw_toml_node_t  *nd;
    uint32_t         *idx;
    size_t            cap;

    if (doc->n_nodes == doc->cap_nodes) {
        cap = doc->cap_nodes ? doc->cap_nodes * 2 : 32;
        nd = realloc(doc->nodes, cap * sizeof(*nd));
        if (nd == NULL) {
            return MV_ERR;
        }
        doc->nodes = nd;
        doc->cap_nodes = cap;
    }
    if ((doc->n_nodes + 1) * 2 > doc->index_cap) {
        cap = doc->index_cap ? doc->index_cap * 2 : 64;
        idx = calloc(cap, sizeof(*idx));
        if (idx == NULL) {
            return MV_ERR;
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
        return MV_ERR;
    }
    memcpy(nd->path, path, len);
    nd->path[len] = '\0';
    nd->value.type = MVW_TOML_TABLE;
    *pos = (uint32_t) doc->n_nodes;
    doc->n_nodes++;
    index_put(doc, *pos);
    return MV_OK;
}


const mvw_toml_node_t *
mvw_toml_find(const mvw_toml_t *doc, const char *path)
{
    int64_t  pos = toml_node_find(doc, path, strlen(path));

    return pos < 0 ? NULL : &doc->nodes[pos];
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
