/*
 * cmd_inspect.c -- `milvuso-worker inspect PATH`: open a generation exactly
 * as nginx would (mv_generation_open: every file mapped and validated,
 * checked against its manifest), then describe it:
 * identity, shape, counts, its files, HNSW level histogram, stream
 * positions, how long validation took, and a few sample rows; --user ID
 * prints a user's vector as a recommendation would find it (newest file
 * first).  With --search ITEM_ID it also
 * runs the same HNSW search the recommendation path runs, from that item's
 * vector, excluding the item itself.
 *
 * PATH is a manifest, a plain snapshot file, the `current` link, or a
 * publish directory (then its `current` is opened).  A file that fails validation prints
 * "invalid: <reason>" and exits 1, so scripts can gate a deploy on it.
 *
 * Text output is "key: value" lines (grep-friendly); --json prints one JSON
 * object built with cJSON instead.  Ids in the snapshot are not
 * NUL-terminated: they are copied out (at most MV_ID_MAX bytes) to print.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "data/catalog.h"
#include "generation.h"
#include "rfc3339.h"
#include "hnsw.h"
#include "snapshot.h"
#include "vec.h"
#include "worker.h"

#define SAMPLE_ITEMS    3
#define SAMPLE_POPULAR  5
#define SAMPLE_USERS    3
#define MAX_K           1000

typedef struct opts {
    const char  *path;
    int          json;
    const char  *search;
    uint32_t     k;
    uint32_t     ef;
    int          all_items;
    const char  *user;
} opts_t;

/* What the printers need besides the view. */
typedef struct report {
    char        path[PATH_MAX];
    double      validate_ms;
    uint32_t    n_deleted;
    uint32_t    levels[MV_HNSW_MAX_LEVEL + 1];
    mv_hit_t   *hits;
    size_t      n_hits;
    const mv_generation_t       *gen;
    const mv_generation_info_t  *info;
    const mv_snapshot_view_t    *users;   /* newest segment with users */
    const float                 *user_vec;  /* of --user, or NULL */
} report_t;


void
mvw_cmd_inspect_usage(FILE *out)
{
    fprintf(out,
        "usage: milvuso-worker inspect PATH [--json] [--search ITEM_ID "
        "[--k 10] [--ef 64]]\n"
        "\n"
        "PATH is a snapshot file, a `current` link or a publish directory.\n"
        "Exits 1 printing \"invalid: <reason>\" when the snapshot does not\n"
        "validate.\n"
        "\n"
        "options:\n"
        "  --json            one JSON object instead of text\n"
        "  --search ITEM_ID  also list the k items nearest to ITEM_ID\n"
        "  --k K             neighbours to list (default 10, at most 1000)\n"
        "  --ef EF           search beam (default max(64, K + 1))\n"
        "  --all-items       list every item (id, category, popularity,\n"
        "                    deleted), not a sample\n"
        "  --user USER_ID    also print USER_ID's vector (null: unknown)\n"
        "  -h, --help        this text\n");
}


static int
usage_error(const char *fmt, const char *arg)
{
    return mvw_usage_error("inspect", mvw_cmd_inspect_usage, fmt, arg);
}


/* Returns -1 when the options are fine, else an exit code. */
static int
parse_opts(int argc, char **argv, opts_t *o)
{
    enum { O_JSON = 256, O_SEARCH, O_K, O_EF, O_ALL, O_USER };
    static const struct option  longopts[] = {
        { "json",   no_argument,       NULL, O_JSON },
        { "search", required_argument, NULL, O_SEARCH },
        { "k",      required_argument, NULL, O_K },
        { "ef",     required_argument, NULL, O_EF },
        { "all-items", no_argument,    NULL, O_ALL },
        { "user",   required_argument, NULL, O_USER },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int  c;

    memset(o, 0, sizeof(*o));
    o->k = 10;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            mvw_cmd_inspect_usage(stdout);
            return MVW_EXIT_OK;
        case O_JSON:
            o->json = 1;
            break;
        case O_ALL:
            o->all_items = 1;
            break;
        case O_SEARCH:
            o->search = optarg;
            break;
        case O_USER:
            o->user = optarg;
            break;
        case O_K:
            if (mvw_parse_u32(optarg, 1, MAX_K, &o->k) != 0) {
                return usage_error("--k wants 1..1000, not '%s'", optarg);
            }
            break;
        case O_EF:
            if (mvw_parse_u32(optarg, 1, MV_SEARCH_K_MAX, &o->ef) != 0) {
                return usage_error("--ef wants 1.."
                                   MVW_STRINGIFY(MV_SEARCH_K_MAX)
                                   ", not '%s'", optarg);
            }
            break;
        default:
            fprintf(stderr, "\n");
            mvw_cmd_inspect_usage(stderr);
            return MVW_EXIT_USAGE;
        }
    }

    if (optind != argc - 1) {
        return usage_error("%s", optind >= argc ? "PATH is required"
                                                : "give one PATH");
    }
    o->path = argv[optind];

    return -1;
}


/* Copies id i of t into buf (MV_ID_MAX + 1 bytes). */
static const char *
id_str(const mv_idtable_t *t, uint32_t i, char *buf)
{
    size_t       len;
    const char  *s = mv_idtable_get(t, i, &len);

    if (len > MV_ID_MAX) {
        len = MV_ID_MAX;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';

    return buf;
}


static const char *
category_str(const mv_snapshot_view_t *v, uint32_t item, char *buf)
{
    uint32_t  c = v->item_meta[item].category;

    if (c == MV_CATEGORY_NONE || c >= v->n_categories) {
        strcpy(buf, "-");
        return buf;
    }

    return id_str(&v->categories, c, buf);
}


static int
allow_not_self(const void *ctx, uint32_t id)
{
    return id != *(const uint32_t *) ctx;
}


/* Runs the --search query; fills r->hits.  Returns MV_OK or MV_ERR. */
static int
run_search(const opts_t *o, const mv_snapshot_view_t *v, report_t *r,
    mv_err_t *err)
{
    mv_hnsw_scratch_t  *s;
    mv_filter_t         filter;
    int64_t             idx;
    uint32_t            self;
    size_t              ef;

    idx = mv_idtable_find(&v->items, o->search, strlen(o->search));
    if (idx < 0) {
        return mv_err_set(err, "no item \"%.64s\" in the snapshot",
                          o->search);
    }
    self = (uint32_t) idx;

    ef = o->ef != 0 ? o->ef : 64;
    if (ef < (size_t) o->k + 1) {
        ef = (size_t) o->k + 1;
    }
    s = mv_hnsw_scratch_new(v->n_items, v->dim, ef);
    r->hits = malloc((size_t) o->k * sizeof(mv_hit_t));
    if (s == NULL || r->hits == NULL) {
        mv_hnsw_scratch_free(s);
        return mv_err_set(err, "out of memory");
    }

    memset(&filter, 0, sizeof(filter));
    filter.allow = allow_not_self;
    filter.ctx = &self;
    r->n_hits = mv_hnsw_search(&v->graph, mv_kernels_best(), s,
                               v->item_vectors + (size_t) self * v->dim,
                               o->k, ef, &filter, r->hits);
    mv_hnsw_scratch_free(s);

    return MV_OK;
}


/* The file name of segment i (the path's own for a plain snapshot). */
static const char *
segment_name(const report_t *r, uint32_t i)
{
    const mv_manifest_input_t  *m = mv_generation_manifest(r->gen);
    const char                 *slash;

    if (m != NULL) {
        return m->segments[i];
    }
    slash = strrchr(r->path, '/');
    return slash != NULL ? slash + 1 : r->path;
}


static void
print_text(const opts_t *o, const mv_snapshot_view_t *v, const report_t *r)
{
    const mv_hnsw_graph_t  *g = &v->graph;
    char                    a[MV_ID_MAX + 1], b[MV_ID_MAX + 1], t[40];
    uint32_t                i, n;

    printf("path: %s\n", r->path);
    printf("file_size: %llu\n", (unsigned long long) r->info->bytes);
    printf("version: %u\n", v->version);
    printf("generation: %llu\n", (unsigned long long) r->info->generation);
    printf("files: %u\n", r->info->n_segments);
    for (i = 0; i < r->info->n_segments; i++) {
        const mv_snapshot_view_t  *sv = mv_generation_segment(r->gen, i);

        printf("  %s generation %llu, %u items, %u users, %zu bytes\n",
               segment_name(r, i), (unsigned long long) sv->generation,
               sv->n_items, sv->n_users, sv->file_size);
    }
    printf("created: %s\n", mv_time_format(v->created_at_ms, t, sizeof(t)));
    printf("dim: %u\n", v->dim);
    printf("metric: %s\n", mv_metric_name(v->metric));
    printf("items: %u\n", v->n_items);
    printf("deleted: %u\n", r->n_deleted);
    printf("users: %llu\n", (unsigned long long) r->info->n_users);
    printf("categories: %u\n", v->n_categories);
    printf("popular: %u\n", v->n_popular);
    printf("hnsw: M %u, M0 %u, max_level %u, entry %u, sq8 %s\n", g->M,
           g->M0, g->max_level, g->entry, g->codes != NULL ? "on" : "off");
    printf("levels:");
    for (i = 0; i <= g->max_level && i <= MV_HNSW_MAX_LEVEL; i++) {
        printf(" %u:%u", i, r->levels[i]);
    }
    printf("   (nodes whose top level is L)\n");
    printf("positions: %u\n", v->n_positions);
    for (i = 0; i < v->n_positions; i++) {
        const mv_stream_pos_t  *p = &v->positions[i];

        printf("  %.*s partition %u offset %llu\n", MV_SNAPSHOT_STREAM_MAX,
               p->stream, p->partition, (unsigned long long) p->offset);
    }
    printf("validate_ms: %.3f\n", r->validate_ms);

    printf("%s:\n", o->all_items ? "items" : "sample items");
    n = v->n_items < SAMPLE_ITEMS || o->all_items ? v->n_items
                                                  : SAMPLE_ITEMS;
    for (i = 0; i < n; i++) {
        printf("  %s  category %s  popularity %g%s\n",
               id_str(&v->items, i, a), category_str(v, i, b),
               (double) v->item_meta[i].popularity,
               v->item_meta[i].flags & MV_ITEM_DELETED ? "  (deleted)" : "");
    }
    printf("top popular:\n");
    n = v->n_popular < SAMPLE_POPULAR ? v->n_popular : SAMPLE_POPULAR;
    for (i = 0; i < n; i++) {
        uint32_t  it = v->popular[i];

        printf("  %u. %s  category %s  popularity %g\n", i + 1,
               id_str(&v->items, it, a), category_str(v, it, b),
               (double) v->item_meta[it].popularity);
    }
    printf("sample users:\n");
    n = r->users->n_users < SAMPLE_USERS ? r->users->n_users : SAMPLE_USERS;
    for (i = 0; i < n; i++) {
        printf("  %s\n", id_str(&r->users->users, i, a));
    }
    if (o->user != NULL) {
        printf("user %s:", o->user);
        for (i = 0; r->user_vec != NULL && i < v->dim; i++) {
            printf(" %g", (double) r->user_vec[i]);
        }
        printf("%s\n", r->user_vec != NULL ? "" : " unknown");
    }

    if (o->search != NULL) {
        printf("search: %s k %u\n", o->search, o->k);
        for (size_t h = 0; h < r->n_hits; h++) {
            uint32_t  id = r->hits[h].id;

            printf("hit %zu %s distance %.6f category %s\n", h + 1,
                   id_str(&v->items, id, a), (double) r->hits[h].distance,
                   category_str(v, id, b));
        }
    }
}


static cJSON *
item_json(const mv_snapshot_view_t *v, uint32_t i)
{
    char    a[MV_ID_MAX + 1], b[MV_ID_MAX + 1], t[MV_TIME_LEN + 1];
    cJSON  *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", id_str(&v->items, i, a));
    if (v->item_meta[i].category == MV_CATEGORY_NONE) {
        cJSON_AddNullToObject(o, "category");
    } else {
        cJSON_AddStringToObject(o, "category", category_str(v, i, b));
    }
    cJSON_AddNumberToObject(o, "popularity",
                            (double) v->item_meta[i].popularity);
    cJSON_AddStringToObject(o, "created_at",
                            mv_time_format(v->item_meta[i].created_at_ms, t,
                                           sizeof(t)));
    cJSON_AddBoolToObject(o, "deleted",
                          (v->item_meta[i].flags & MV_ITEM_DELETED) != 0);

    return o;
}


/* Prints the JSON report; returns MV_ERR when cJSON ran out of memory. */
static int
print_json(const opts_t *o, const mv_snapshot_view_t *v, const report_t *r)
{
    const mv_hnsw_graph_t  *g = &v->graph;
    cJSON                  *root, *x, *arr, *sample;
    char                    a[MV_ID_MAX + 1], t[40], *text;
    uint32_t                i, n;

    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "path", r->path);
    cJSON_AddNumberToObject(root, "file_size", (double) r->info->bytes);
    cJSON_AddNumberToObject(root, "version", v->version);
    cJSON_AddNumberToObject(root, "generation",
                            (double) r->info->generation);
    arr = cJSON_AddArrayToObject(root, "files");
    for (i = 0; i < r->info->n_segments; i++) {
        const mv_snapshot_view_t  *sv = mv_generation_segment(r->gen, i);

        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", segment_name(r, i));
        cJSON_AddNumberToObject(x, "generation", (double) sv->generation);
        cJSON_AddNumberToObject(x, "items", sv->n_items);
        cJSON_AddNumberToObject(x, "users", sv->n_users);
        cJSON_AddNumberToObject(x, "bytes", (double) sv->file_size);
        cJSON_AddItemToArray(arr, x);
    }
    cJSON_AddStringToObject(root, "created_at",
                            mv_time_format(v->created_at_ms, t, sizeof(t)));
    cJSON_AddNumberToObject(root, "created_at_ms",
                            (double) v->created_at_ms);
    cJSON_AddNumberToObject(root, "dim", v->dim);
    cJSON_AddStringToObject(root, "metric", mv_metric_name(v->metric));

    x = cJSON_AddObjectToObject(root, "counts");
    cJSON_AddNumberToObject(x, "items", v->n_items);
    cJSON_AddNumberToObject(x, "deleted", r->n_deleted);
    cJSON_AddNumberToObject(x, "users", (double) r->info->n_users);
    cJSON_AddNumberToObject(x, "categories", v->n_categories);
    cJSON_AddNumberToObject(x, "popular", v->n_popular);

    x = cJSON_AddObjectToObject(root, "hnsw");
    cJSON_AddNumberToObject(x, "M", g->M);
    cJSON_AddNumberToObject(x, "M0", g->M0);
    cJSON_AddNumberToObject(x, "max_level", g->max_level);
    cJSON_AddNumberToObject(x, "entry", g->entry);
    cJSON_AddBoolToObject(x, "sq8", g->codes != NULL);
    arr = cJSON_AddArrayToObject(x, "levels");
    for (i = 0; i <= g->max_level && i <= MV_HNSW_MAX_LEVEL; i++) {
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(r->levels[i]));
    }

    arr = cJSON_AddArrayToObject(root, "positions");
    for (i = 0; i < v->n_positions; i++) {
        const mv_stream_pos_t  *p = &v->positions[i];
        char                    stream[MV_SNAPSHOT_STREAM_MAX + 1];

        snprintf(stream, sizeof(stream), "%.*s", MV_SNAPSHOT_STREAM_MAX,
                 p->stream);
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "stream", stream);
        cJSON_AddNumberToObject(x, "partition", p->partition);
        cJSON_AddNumberToObject(x, "offset", (double) p->offset);
        cJSON_AddItemToArray(arr, x);
    }
    cJSON_AddNumberToObject(root, "validate_ms", r->validate_ms);

    sample = cJSON_AddObjectToObject(root, "sample");
    arr = cJSON_AddArrayToObject(o->all_items ? root : sample, "items");
    n = v->n_items < SAMPLE_ITEMS || o->all_items ? v->n_items
                                                  : SAMPLE_ITEMS;
    for (i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, item_json(v, i));
    }
    arr = cJSON_AddArrayToObject(sample, "popular");
    n = v->n_popular < SAMPLE_POPULAR ? v->n_popular : SAMPLE_POPULAR;
    for (i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, item_json(v, v->popular[i]));
    }
    arr = cJSON_AddArrayToObject(sample, "users");
    n = r->users->n_users < SAMPLE_USERS ? r->users->n_users : SAMPLE_USERS;
    for (i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr,
            cJSON_CreateString(id_str(&r->users->users, i, a)));
    }
    if (o->user != NULL) {
        if (r->user_vec == NULL) {
            cJSON_AddNullToObject(root, "user");
        } else {
            x = cJSON_AddObjectToObject(root, "user");
            cJSON_AddStringToObject(x, "id", o->user);
            arr = cJSON_AddArrayToObject(x, "vector");
            for (i = 0; i < v->dim; i++) {
                cJSON_AddItemToArray(arr,
                    cJSON_CreateNumber((double) r->user_vec[i]));
            }
        }
    }

    if (o->search != NULL) {
        arr = cJSON_AddArrayToObject(root, "search");
        for (size_t h = 0; h < r->n_hits; h++) {
            x = item_json(v, r->hits[h].id);
            cJSON_AddNumberToObject(x, "distance",
                                    (double) r->hits[h].distance);
            cJSON_AddItemToArray(arr, x);
        }
    }

    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (text == NULL) {
        return MV_ERR;
    }
    printf("%s\n", text);
    cJSON_free(text);

    return MV_OK;
}


/* The file PATH stands for: a directory means its `current`. */
static void
resolve(const char *path, char *out, size_t len)
{
    struct stat  st;
    char         tmp[PATH_MAX];

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(tmp, sizeof(tmp), "%s/current", path);
    } else {
        snprintf(tmp, sizeof(tmp), "%s", path);
    }
    if (realpath(tmp, out) == NULL) {
        snprintf(out, len, "%s", tmp);
    }
}


int
mvw_cmd_inspect(int argc, char **argv)
{
    opts_t                     o;
    report_t                   r;
    mv_generation_t           *gen;
    const mv_snapshot_view_t  *v;
    int64_t                    t0;
    mv_err_t                   err;
    int                        rc;

    rc = parse_opts(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }

    memset(&r, 0, sizeof(r));
    resolve(o.path, r.path, sizeof(r.path));

    t0 = mv_clock_monotonic_us();
    gen = mv_generation_open(r.path, NULL, NULL, &err);
    r.validate_ms = (double) (mv_clock_monotonic_us() - t0) / 1e3;
    if (gen == NULL) {
        printf("invalid: %s\n", err.msg);
        return MVW_EXIT_FAIL;
    }

    v = mv_generation_items(gen);
    r.gen = gen;
    r.info = mv_generation_info(gen);
    r.users = v;
    for (uint32_t i = r.info->n_segments; i-- > 0; ) {
        if (mv_generation_segment(gen, i)->n_users > 0) {
            r.users = mv_generation_segment(gen, i);
            break;
        }
    }
    if (o.user != NULL) {
        r.user_vec = mv_generation_user(gen, o.user, strlen(o.user));
    }
    for (uint32_t i = 0; i < v->n_items; i++) {
        uint32_t  lv = mv_hnsw_node_level(&v->graph, i);

        r.n_deleted += (v->item_meta[i].flags & MV_ITEM_DELETED) != 0;
        if (lv <= MV_HNSW_MAX_LEVEL) {
            r.levels[lv]++;
        }
    }

    rc = MVW_EXIT_OK;
    if (o.search != NULL && run_search(&o, v, &r, &err) != MV_OK) {
        fprintf(stderr, "milvuso-worker inspect: %s\n", err.msg);
        rc = MVW_EXIT_FAIL;
    } else if (o.json) {
        if (print_json(&o, v, &r) != MV_OK) {
            fprintf(stderr, "milvuso-worker inspect: out of memory\n");
            rc = MVW_EXIT_FAIL;
        }
    } else {
        print_text(&o, v, &r);
    }

    free(r.hits);
    mv_generation_close(gen);
    return rc;
}
