/*
 * generation_dir.c -- a directory of generations (generation.h): pruning
 * after a publish, listing, the newest generation, and the clean-up after
 * an interrupted publish.  Manifests are parsed by generation_manifest.c.
 *
 * Everything here works from names: every file a generation may own
 * carries its generation in its name (gen-G.mvm, items-G.mvs, users-G.mvs,
 * users-G.base.mvs, snapshot-G.mvs, and "<name>.dedupe" beside any of
 * them).  What the newest `keep` manifests name (and what `current` names)
 * is kept; other such files of generations <= G go.  A manifest that
 * cannot be read when its names are needed stops the removal of segments:
 * removing nothing is always safe, removing a file a kept generation uses
 * is not.  Pruning is best effort (the publish is already visible); the
 * next publish retries.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "generation_format.h"


/* The kinds of generation-carrying names (gen_name_parse). */
typedef enum {
    GEN_FILE_NONE = 0,
    GEN_FILE_MANIFEST,
    GEN_FILE_ITEMS,
    GEN_FILE_DELTA,
    GEN_FILE_BASE,
    GEN_FILE_SNAPSHOT
} gen_file_t;

static const struct {
    gen_file_t   type;
    const char  *prefix;
    const char  *suffix;
} gen_names[] = {
    { GEN_FILE_MANIFEST, "gen-",      ".mvm" },
    { GEN_FILE_ITEMS,    "items-",    ".mvs" },
    { GEN_FILE_DELTA,    "users-",    ".mvs" },
    { GEN_FILE_BASE,     "users-",    ".base.mvs" },
    { GEN_FILE_SNAPSHOT, "snapshot-", ".mvs" }
};

#define GEN_N_NAMES  (sizeof(gen_names) / sizeof(gen_names[0]))
#define DEDUPE_SUFFIX  ".dedupe"

/* The set of names the kept generations use (small: a linear scan). */
typedef struct name_set {
    size_t   n;
    size_t   cap;
    char   **names;
} name_set_t;


/*
 * The type and generation of a generation-carrying name; *side is set to 1
 * when name is such a name followed by DEDUPE_SUFFIX.  GEN_FILE_NONE for
 * any other name (temp files included).
 */
static gen_file_t
gen_name_parse(const char *name, uint64_t *g, int *side)
{
    char    base[NAME_MAX + 1];
    size_t  len = strlen(name), dl = strlen(DEDUPE_SUFFIX), i;

    *side = 0;
    if (len > dl && len <= NAME_MAX
        && strcmp(name + len - dl, DEDUPE_SUFFIX) == 0)
    {
        memcpy(base, name, len - dl);
        base[len - dl] = '\0';
        name = base;
        *side = 1;
    }

    for (i = 0; i < GEN_N_NAMES; i++) {
        if (mv_seqname_parse(name, gen_names[i].prefix, gen_names[i].suffix,
                             g))
        {
            return gen_names[i].type;
        }
    }

    return GEN_FILE_NONE;
}


/* ---- reading a directory ------------------------------------------------ */

static int
name_set_add(name_set_t *s, const char *name)
{
    char  **grown;

    if (s->n == s->cap) {
        s->cap = s->cap == 0 ? 16 : s->cap * 2;
        grown = realloc(s->names, s->cap * sizeof(*grown));
        if (grown == NULL) {
            return MV_ERR;
        }
        s->names = grown;
    }
    s->names[s->n] = strdup(name);
    if (s->names[s->n] == NULL) {
        return MV_ERR;
    }
    s->n++;
    return MV_OK;
}


static int
name_set_has(const name_set_t *s, const char *name)
{
    size_t  i;

    for (i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}


static void
name_set_free(name_set_t *s)
{
    size_t  i;

    for (i = 0; i < s->n; i++) {
        free(s->names[i]);
    }
    free(s->names);
    memset(s, 0, sizeof(*s));
}


/*
 * Adds manifest dir/name and every segment it names to set.  MV_ERR when
 * it cannot be read or parsed (or memory runs out).
 */
static int
add_manifest_names(const char *dir, const char *name, name_set_t *set,
    mv_err_t *err)
{
    mv_manifest_input_t  in;
    char                 path[PATH_MAX];
    uint8_t             *buf;
    void                *mem;
    FILE                *fp;
    size_t               len;
    uint32_t             i;
    int                  rc;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int) sizeof(path)
        || (buf = malloc(MV_GEN_MANIFEST_MAX)) == NULL)
    {
        return mv_err_set(err, "cannot read %s/%s", dir, name);
    }
    fp = fopen(path, "rb");
    if (fp == NULL) {
        free(buf);
        return mv_err_set(err, "open(%s): %s", path, strerror(errno));
    }
    len = fread(buf, 1, MV_GEN_MANIFEST_MAX, fp);
    fclose(fp);

    rc = mv_manifest_parse(buf, len, &in, &mem, err);
    free(buf);
    if (rc != MV_OK) {
        return MV_ERR;
    }
    rc = name_set_add(set, name);
    for (i = 0; rc == MV_OK && i < in.n_segments; i++) {
        rc = name_set_add(set, in.segments[i]);
    }
    free(mem);
    return rc == MV_OK ? MV_OK : mv_err_set(err, "out of memory");
}


/*
 * What dir/current names (its link text, "" when there is none) and, when
 * that is a manifest, the files it names, into set.
 */
static int
add_current_names(const char *dir, name_set_t *set, mv_err_t *err)
{
    char     path[PATH_MAX], target[NAME_MAX + 1];
    ssize_t  n;
    uint64_t g;
    int      side;

    if (snprintf(path, sizeof(path), "%s/current", dir)
        >= (int) sizeof(path))
    {
        return mv_err_set(err, "path too long: %s", dir);
    }
    n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0) {
        return MV_OK;
    }
    target[n] = '\0';
    if (gen_name_parse(target, &g, &side) == GEN_FILE_MANIFEST && !side) {
        return add_manifest_names(dir, target, set, err);
    }
    return name_set_add(set, target) == MV_OK
           ? MV_OK : mv_err_set(err, "out of memory");
}


typedef struct gen_entry {
    uint64_t    generation;
    gen_file_t  type;
    char       *name;
} gen_entry_t;


static int
gen_entry_desc(const void *a, const void *b)
{
    const gen_entry_t  *x = a, *y = b;

    if (x->generation != y->generation) {
        return x->generation > y->generation ? -1 : 1;
    }
    return (int) x->type - (int) y->type;
}


static void
gen_entries_free(gen_entry_t *e, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(e[i].name);
    }
    free(e);
}


/*
 * Every file of dir whose name has one of the types in `mask` (bit 1 <<
 * type; side files not included), newest first.  A missing dir has none.
 */
static int
scan_dir(const char *dir, unsigned mask, gen_entry_t **out, size_t *n_out,
    mv_err_t *err)
{
    DIR            *d;
    struct dirent  *de;
    gen_entry_t    *e = NULL, *grown;
    size_t          n = 0, cap = 0;
    gen_file_t      type;
    uint64_t        g;
    int             side;

    *out = NULL;
    *n_out = 0;
    d = opendir(dir);
    if (d == NULL) {
        return errno == ENOENT ? MV_OK
               : mv_err_set(err, "opendir(%s): %s", dir, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        type = gen_name_parse(de->d_name, &g, &side);
        if (type == GEN_FILE_NONE || side || !(mask & (1u << type))) {
            continue;
        }
        if (n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            grown = realloc(e, cap * sizeof(*e));
            if (grown == NULL) {
                goto nomem;
            }
            e = grown;
        }
        e[n].generation = g;
        e[n].type = type;
        e[n].name = strdup(de->d_name);
        if (e[n].name == NULL) {
            goto nomem;
        }
        n++;
    }
    closedir(d);

    if (n > 1) {
        qsort(e, n, sizeof(*e), gen_entry_desc);
    }
    *out = e;
    *n_out = n;
    return MV_OK;

nomem:
    closedir(d);
    gen_entries_free(e, n);
    return mv_err_set(err, "out of memory listing %s", dir);
}


static void
unlink_in(const char *dir, const char *name, int *removed)
{
    char  path[PATH_MAX];
    int   n = snprintf(path, sizeof(path), "%s/%s", dir, name);

    if (n > 0 && (size_t) n < sizeof(path) && unlink(path) == 0) {
        (*removed)++;
    }
}


/*
 * Removes the side files (<name>.dedupe) of generation-carrying files of
 * generations <= g_max that are gone.
 */
static int
remove_stray_sides(const char *dir, uint64_t g_max)
{
    DIR            *d = opendir(dir);
    struct dirent  *de;
    struct stat     st;
    char            path[PATH_MAX];
    uint64_t        g;
    int             side, n, removed = 0;

    if (d == NULL) {
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        if (gen_name_parse(de->d_name, &g, &side) == GEN_FILE_NONE || !side
            || g > g_max)
        {
            continue;
        }
        n = snprintf(path, sizeof(path), "%s/%.*s", dir,
                     (int) (strlen(de->d_name) - strlen(DEDUPE_SUFFIX)),
                     de->d_name);
        if (n > 0 && (size_t) n < sizeof(path) && lstat(path, &st) != 0
            && errno == ENOENT)
        {
            unlink_in(dir, de->d_name, &removed);
        }
    }
    closedir(d);
    return removed;
}


/*
 * Prunes dir after generation g was published (see the top of this file
 * and generation.h).  Best effort.
 */
void
mv_gen_prune(const char *dir, uint64_t g, unsigned keep)
{
    gen_entry_t  *e;
    name_set_t    kept;
    size_t        n, i;
    unsigned      manifests = 0;
    int           removed = 0;
    unsigned      mask = 1u << GEN_FILE_MANIFEST | 1u << GEN_FILE_ITEMS
                         | 1u << GEN_FILE_DELTA | 1u << GEN_FILE_BASE
                         | 1u << GEN_FILE_SNAPSHOT;

    memset(&kept, 0, sizeof(kept));
    if (scan_dir(dir, mask, &e, &n, NULL) != MV_OK) {
        return;
    }
    if (add_current_names(dir, &kept, NULL) != MV_OK) {
        goto done;
    }
    for (i = 0; i < n && manifests < keep; i++) {
        if (e[i].type != GEN_FILE_MANIFEST || e[i].generation > g) {
            continue;
        }
        if (add_manifest_names(dir, e[i].name, &kept, NULL) != MV_OK) {
            goto done;
        }
        manifests++;
    }

    for (i = 0; i < n; i++) {
        if (e[i].generation <= g && !name_set_has(&kept, e[i].name)) {
            unlink_in(dir, e[i].name, &removed);
        }
    }
    remove_stray_sides(dir, g);

done:
    name_set_free(&kept);
    gen_entries_free(e, n);
}


/* ---- listing and cleaning ----------------------------------------------- */

int
mv_generation_list(const char *dir, mv_generation_list_t *list,
    mv_err_t *err)
{
    gen_entry_t  *e;
    size_t        n, i;
    int           len;

    memset(list, 0, sizeof(*list));
    if (scan_dir(dir, 1u << GEN_FILE_MANIFEST | 1u << GEN_FILE_SNAPSHOT, &e,
                 &n, err) != MV_OK)
    {
        return MV_ERR;
    }
    if (n == 0) {
        return MV_OK;
    }

    list->generations = calloc(n, sizeof(uint64_t));
    list->paths = calloc(n, sizeof(char *));
    if (list->generations == NULL || list->paths == NULL) {
        goto nomem;
    }
    for (i = 0; i < n; i++) {
        len = snprintf(NULL, 0, "%s/%s", dir, e[i].name);
        list->paths[i] = malloc((size_t) len + 1);
        if (list->paths[i] == NULL) {
            goto nomem;
        }
        snprintf(list->paths[i], (size_t) len + 1, "%s/%s", dir, e[i].name);
        list->generations[i] = e[i].generation;
        list->n = i + 1;
    }
    gen_entries_free(e, n);
    return MV_OK;

nomem:
    list->n = n;
    mv_generation_list_free(list);
    gen_entries_free(e, n);
    return mv_err_set(err, "out of memory listing %s", dir);
}


void
mv_generation_list_free(mv_generation_list_t *list)
{
    size_t  i;

    if (list->paths != NULL) {
        for (i = 0; i < list->n; i++) {
            free(list->paths[i]);
        }
    }
    free(list->paths);
    free(list->generations);
    memset(list, 0, sizeof(*list));
}


int
mv_generation_newest(const char *dir, uint64_t *newest, mv_err_t *err)
{
    DIR            *d;
    struct dirent  *de;
    uint64_t        g;
    int             side;

    *newest = 0;
    d = opendir(dir);
    if (d == NULL) {
        return errno == ENOENT ? MV_OK
               : mv_err_set(err, "opendir(%s): %s", dir, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        if (gen_name_parse(de->d_name, &g, &side) != GEN_FILE_NONE
            && g > *newest)
        {
            *newest = g;
        }
    }
    closedir(d);
    return MV_OK;
}


int
mv_generation_remove_orphans(const char *dir, mv_err_t *err)
{
    gen_entry_t  *e;
    name_set_t    named;
    size_t        n, i;
    int           removed;

    removed = mv_snapshot_remove_temps(dir, err);
    if (removed < 0) {
        return -1;
    }

    memset(&named, 0, sizeof(named));
    if (scan_dir(dir, 1u << GEN_FILE_MANIFEST, &e, &n, err) != MV_OK) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (add_manifest_names(dir, e[i].name, &named, err) != MV_OK) {
            /* unreadable: what it names is unknown, so nothing goes */
            gen_entries_free(e, n);
            name_set_free(&named);
            return removed;
        }
    }
    gen_entries_free(e, n);

    if (add_current_names(dir, &named, err) != MV_OK
        || scan_dir(dir, 1u << GEN_FILE_ITEMS | 1u << GEN_FILE_DELTA
                         | 1u << GEN_FILE_BASE, &e, &n, err) != MV_OK)
    {
        name_set_free(&named);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!name_set_has(&named, e[i].name)) {
            unlink_in(dir, e[i].name, &removed);
        }
    }
    gen_entries_free(e, n);
    name_set_free(&named);
    return removed;
}
