/*
 * corpus.h -- reads shared/tests/corpus/items.txt, the one corpus of good
 * and bad items every entry path is tested with (see the file's header for
 * its lines).  Header-only, for the cmocka suites of shared/ and worker/;
 * t/035-item-corpus.t reads the same file in Perl.
 *
 * The path is MILVUSO_CORPUS when set, else shared/tests/corpus/items.txt
 * relative to the working directory (make runs the suites from the top of
 * the checkout).
 */
#ifndef MV_TEST_CORPUS_H
#define MV_TEST_CORPUS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MVT_CORPUS_DIM    4
#define MVT_CORPUS_LINES  256

typedef struct mvt_corpus_item {
    char  expect_client[32];    /* "ok" or an error code */
    char  expect_data[32];
    char *body;                 /* malloc'ed, NUL-terminated */
    int   line;
} mvt_corpus_item_t;


/* Reads the corpus into items[] (MVT_CORPUS_LINES); returns the count, or
   -1 when the file cannot be read or a line is malformed. */
static inline int
mvt_corpus_load(mvt_corpus_item_t *items)
{
    const char  *path = getenv("MILVUSO_CORPUS");
    char         line[8192], *tab, *nl;
    FILE        *f;
    int          n = 0, lineno = 0;

    if (path == NULL) {
        path = "shared/tests/corpus/items.txt";
    }
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "corpus: cannot open %s\n", path);
        return -1;
    }

    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        nl = strchr(line, '\n');
        if (nl == NULL || line[0] == '#' || line[0] == '\n') {
            if (nl == NULL) {
                fprintf(stderr, "corpus: line %d too long\n", lineno);
                fclose(f);
                return -1;
            }
            continue;
        }
        *nl = '\0';
        tab = strchr(line, '\t');
        if (tab == NULL || n == MVT_CORPUS_LINES
            || (size_t) (tab - line) >= sizeof(items[n].expect_client))
        {
            fprintf(stderr, "corpus: line %d malformed\n", lineno);
            fclose(f);
            return -1;
        }
        *tab = '\0';
        if (strncmp(line, "client=", 7) == 0) {
            snprintf(items[n].expect_client, sizeof(items[n].expect_client),
                     "%.31s", line + 7);
            snprintf(items[n].expect_data, sizeof(items[n].expect_data),
                     "ok");
        } else {
            snprintf(items[n].expect_client, sizeof(items[n].expect_client),
                     "%.31s", line);
            snprintf(items[n].expect_data, sizeof(items[n].expect_data),
                     "%.31s", line);
        }
        items[n].body = strdup(tab + 1);
        items[n].line = lineno;
        if (items[n].body == NULL) {
            fclose(f);
            return -1;
        }
        n++;
    }

    fclose(f);
    return n;
}


static inline void
mvt_corpus_free(mvt_corpus_item_t *items, int n)
{
    for (int i = 0; i < n; i++) {
        free(items[i].body);
    }
}

#endif /* MV_TEST_CORPUS_H */
