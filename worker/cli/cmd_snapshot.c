/*
 * cmd_snapshot.c -- `milvuso-worker snapshot`: build a snapshot from a JSONL
 * catalogue (--items [--users]) or a synthetic one (--synthetic N) and
 * publish it into a directory (mv_snapshot_publish: new file, `current`
 * swapped atomically, old generations pruned to --keep).
 *
 * Order of work, so that bad input is never half-applied: parse the command
 * line; load and check the whole catalogue into memory; decide the
 * generation; only then build the HNSW graph and publish.  Any error before
 * the publish leaves the directory exactly as it was (the library's writer
 * removes its own temp file on failure).
 *
 * Vectors given to the snapshot are the graph's own copies (normalised for
 * cosine), so the item section and the graph agree bit for bit.  User
 * vectors are normalised for cosine too (a query's length does not matter
 * under cosine, and readers may then compare them directly).  A zero
 * vector has no direction, so it is refused under cosine.  Under l2 and ip
 * (maximum inner product, for models whose score is dot(user, item) and
 * whose norms carry meaning) every vector is kept exactly as given.
 *
 * The default generation is one more than the newest snapshot-*.mvs in the
 * directory; an explicit --generation must be newer than that, because
 * readers notice a new model by its larger generation.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/offline.h"
#include "data/catalog.h"
#include "data/synthetic.h"
#include "hnsw.h"
#include "snapshot.h"
#include "vec.h"
#include "worker.h"

typedef struct opts {
    const char   *out;
    unsigned      keep;
    uint64_t      generation;      /* 0: newest + 1 */
    mv_metric_t   metric;
    uint32_t      M;
    uint32_t      ef_construction;
    uint64_t      seed;
    int           sq8;
    const char   *items;
    const char   *users;           /* a file (--items) or a count */
    const char   *synthetic;
    uint32_t      dim;
    uint32_t      categories;
    int           dim_set;
    int           categories_set;
    int64_t       created_at_ms;   /* 0: now */
} opts_t;


void
mvw_cmd_snapshot_usage(FILE *out)
{
    fprintf(out,
        "usage: milvuso-worker snapshot --out DIR SOURCE [options]\n"
        "\n"
        "SOURCE is one of:\n"
        "  --items FILE.jsonl [--users FILE.jsonl]\n"
        "                        one JSON object per line (\"-\" = stdin)\n"
        "  --synthetic N [--dim 64] [--categories 20] [--users U]\n"
        "                        a seeded synthetic catalogue of N items\n"
        "\n"
        "options:\n"
        "  --out DIR             directory to publish into (required)\n"
        "  --keep N              snapshot files to keep (default 3)\n"
        "  --generation G        default: newest in DIR + 1\n"
        "  --metric cosine|l2|ip default cosine (ip: maximum inner\n"
        "                        product, vectors kept as given)\n"
        "  --M M                 HNSW links per node (default 16)\n"
        "  --ef-construction EF  HNSW build beam (default 200)\n"
        "  --seed S              HNSW levels and synthetic data (default 42)\n"
        "  --no-sq8              no SQ8 codes in the graph\n"
        "  --created-at TIME     the model's creation time, RFC 3339\n"
        "                        (default now; tests: an old model)\n"
        "  -h, --help            this text\n");
}


static double
now_sec(void)
{
    return (double) mv_clock_monotonic_us() / 1e6;
}


static int
usage_error(const char *fmt, const char *arg)
{
    return mvw_usage_error("snapshot", mvw_cmd_snapshot_usage, fmt, arg);
}


/* Returns -1 when the options are fine, else an exit code. */
static int
parse_opts(int argc, char **argv, opts_t *o)
{
    enum { O_KEEP = 256, O_GEN, O_METRIC, O_M, O_EF, O_SEED, O_NOSQ8,
           O_ITEMS, O_USERS, O_SYNTH, O_DIM, O_CATS, O_CREATED };
    static const struct option  longopts[] = {
        { "out",             required_argument, NULL, 'o' },
        { "keep",            required_argument, NULL, O_KEEP },
        { "generation",      required_argument, NULL, O_GEN },
        { "metric",          required_argument, NULL, O_METRIC },
        { "M",               required_argument, NULL, O_M },
        { "ef-construction", required_argument, NULL, O_EF },
        { "seed",            required_argument, NULL, O_SEED },
        { "no-sq8",          no_argument,       NULL, O_NOSQ8 },
        { "items",           required_argument, NULL, O_ITEMS },
        { "users",           required_argument, NULL, O_USERS },
        { "synthetic",       required_argument, NULL, O_SYNTH },
        { "dim",             required_argument, NULL, O_DIM },
        { "categories",      required_argument, NULL, O_CATS },
        { "created-at",      required_argument, NULL, O_CREATED },
        { "help",            no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    uint32_t  u32;
    int       c;

    memset(o, 0, sizeof(*o));
    o->keep = 3;
    o->metric = MV_METRIC_COSINE;
    o->M = 16;
    o->ef_construction = 200;
    o->seed = 42;
    o->sq8 = 1;
    o->dim = 64;
    o->categories = 20;

    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            mvw_cmd_snapshot_usage(stdout);
            return MVW_EXIT_OK;
        case 'o':
            o->out = optarg;
            break;
        case O_KEEP:
            if (mvw_parse_u32(optarg, 1, 1000000, &u32) != 0) {
                return usage_error("--keep wants 1..1000000, not '%s'",
                                   optarg);
            }
            o->keep = u32;
            break;
        case O_GEN:
            if (mvw_parse_u64(optarg, 1, UINT64_MAX - 1, &o->generation)
                != 0)
            {
                return usage_error("--generation wants a number >= 1, "
                                   "not '%s'", optarg);
            }
            break;
        case O_METRIC:
            if (strcmp(optarg, "cosine") == 0) {
                o->metric = MV_METRIC_COSINE;
            } else if (strcmp(optarg, "l2") == 0) {
                o->metric = MV_METRIC_L2;
            } else if (strcmp(optarg, "ip") == 0) {
                o->metric = MV_METRIC_IP;
            } else {
                return usage_error("--metric wants cosine, l2 or ip, "
                                   "not '%s'", optarg);
            }
            break;
        case O_M:
            if (mvw_parse_u32(optarg, 2, MV_HNSW_MAX_M, &o->M) != 0) {
                return usage_error("--M wants 2..64, not '%s'", optarg);
            }
            break;
        case O_EF:
            if (mvw_parse_u32(optarg, 1, MV_SEARCH_K_MAX,
                              &o->ef_construction) != 0)
            {
                return usage_error("--ef-construction wants 1.."
                                   MVW_STRINGIFY(MV_SEARCH_K_MAX)
                                   ", not '%s'", optarg);
            }
            break;
        case O_SEED:
            if (mvw_parse_u64(optarg, 0, UINT64_MAX, &o->seed) != 0) {
                return usage_error("--seed wants a number, not '%s'", optarg);
            }
            break;
        case O_NOSQ8:
            o->sq8 = 0;
            break;
        case O_CREATED:
            if (mv_time_parse(optarg, strlen(optarg), &o->created_at_ms,
                              NULL) != MV_OK || o->created_at_ms <= 0)
            {
                return usage_error("--created-at wants an RFC 3339 time "
                                   "after 1970, not '%s'", optarg);
            }
            break;
        case O_ITEMS:
            o->items = optarg;
            break;
        case O_USERS:
            o->users = optarg;
            break;
        case O_SYNTH:
            o->synthetic = optarg;
            break;
        case O_DIM:
            if (mvw_parse_u32(optarg, 1, MV_DIM_MAX, &o->dim) != 0) {
                return usage_error("--dim wants 1.."
                                   MVW_STRINGIFY(MV_DIM_MAX) ", not '%s'",
                                   optarg);
            }
            o->dim_set = 1;
            break;
        case O_CATS:
            if (mvw_parse_u32(optarg, 1, 100000, &o->categories) != 0) {
                return usage_error("--categories wants 1..100000, not '%s'",
                                   optarg);
            }
            o->categories_set = 1;
            break;
        default:
            fprintf(stderr, "\n");
            mvw_cmd_snapshot_usage(stderr);
            return MVW_EXIT_USAGE;
        }
    }

    if (optind < argc) {
        return usage_error("unexpected argument '%s'", argv[optind]);
    }
    if (o->out == NULL) {
        return usage_error("%s", "--out DIR is required");
    }
    if ((o->items == NULL) == (o->synthetic == NULL)) {
        return usage_error("%s", "give exactly one of --items and "
                           "--synthetic");
    }
    if (o->items != NULL && (o->dim_set || o->categories_set)) {
        return usage_error("%s", "--dim and --categories go with "
                           "--synthetic (a file's lines fix them)");
    }

    return -1;
}


/* Loads the catalogue the options name into the empty c. */
static int
load_catalog(const opts_t *o, mvw_catalog_t *c, mv_err_t *err)
{
    mvw_synth_params_t  sp;

    if (o->items != NULL) {
        if (mvw_catalog_load_items(c, o->items, err) != MV_OK) {
            return MV_ERR;
        }
        if (o->users != NULL
            && mvw_catalog_load_users(c, o->users, err) != MV_OK)
        {
            return MV_ERR;
        }
        return MV_OK;
    }

    memset(&sp, 0, sizeof(sp));
    if (mvw_parse_u32(o->synthetic, 1, UINT32_MAX - 1, &sp.n_items) != 0) {
        return mv_err_set(err, "--synthetic wants a number of items >= 1");
    }
    if (o->users != NULL
        && mvw_parse_u32(o->users, 0, UINT32_MAX - 1, &sp.n_users) != 0)
    {
        return mv_err_set(err, "--users with --synthetic wants a number");
    }
    sp.dim = o->dim;
    sp.n_categories = o->categories;
    sp.seed = o->seed;

    return mvw_synth_catalog(c, &sp, err);
}


/* Under cosine every vector needs a direction; names the first that has
   none by its source. */
static int
check_cosine(const opts_t *o, const mvw_catalog_t *c, mv_err_t *err)
{
    const char  *kinds[2] = { "item", "user" };

    for (int k = 0; k < 2; k++) {
        uint32_t      n = k == 0 ? c->items.n : c->users.n;
        const float  *v = k == 0 ? c->item_vectors : c->user_vectors;

        for (uint32_t i = 0; i < n; i++) {
            const float  *x = v + (size_t) i * c->dim;
            uint32_t      line = k == 0 ? c->item_line[i] : c->user_line[i];
            uint32_t      j;

            for (j = 0; j < c->dim && x[j] == 0.0f; j++) {
                /* look for a non-zero value */
            }
            if (j < c->dim) {
                continue;
            }
            if (line != 0) {
                return mv_err_set(err, "%s:%u: \"embedding\" is all zeros "
                                  "(no direction for the cosine metric)",
                                  k == 0 ? o->items : o->users, line);
            }
            return mv_err_set(err, "%s %u has an all-zero embedding",
                              kinds[k], i);
        }
    }

    return MV_OK;
}


/* Builds the graph over the catalogue's items, deleted marks included. */
static mv_hnsw_t *
build_graph(const opts_t *o, const mvw_catalog_t *c, mv_err_t *err)
{
    mv_hnsw_params_t  p;
    mv_hnsw_t        *h;

    memset(&p, 0, sizeof(p));
    p.dim = c->dim;
    p.metric = o->metric;
    p.M = o->M;
    p.ef_construction = o->ef_construction;
    p.seed = o->seed;
    p.sq8 = o->sq8;

    h = mv_hnsw_new(&p, c->items.n, err);
    if (h == NULL) {
        return NULL;
    }
    if (mv_hnsw_add_batch(h, c->item_vectors, c->items.n, err) != MV_OK) {
        mv_hnsw_free(h);
        return NULL;
    }
    for (uint32_t i = 0; i < c->items.n; i++) {
        if ((c->item_meta[i].flags & MV_ITEM_DELETED)
            && mv_hnsw_set_deleted(h, i, 1, err) != MV_OK)
        {
            mv_hnsw_free(h);
            return NULL;
        }
    }

    return h;
}


static int
build_and_publish(const opts_t *o, mvw_catalog_t *c, uint64_t generation,
    double t_start)
{
    mv_snapshot_input_t  in;
    mv_hnsw_graph_t      g;
    mv_hnsw_t           *h;
    mv_err_t             err;
    char                 path[4096];
    double               t_index, t_done;
    const char         **item_ids = NULL, **user_ids = NULL;
    const char         **cat_names = NULL;
    uint32_t             n_deleted = 0;
    int                  rc = MVW_EXIT_FAIL;

    h = build_graph(o, c, &err);
    if (h == NULL) {
        fprintf(stderr, "milvuso-worker snapshot: index: %s\n", err.msg);
        return MVW_EXIT_FAIL;
    }
    mv_hnsw_graph(h, &g);
    t_index = now_sec();

    if (o->metric == MV_METRIC_COSINE) {
        for (uint32_t i = 0; i < c->users.n; i++) {
            mv_normalize(c->user_vectors + (size_t) i * c->dim, c->dim);
        }
    }
    for (uint32_t i = 0; i < c->items.n; i++) {
        n_deleted += (c->item_meta[i].flags & MV_ITEM_DELETED) != 0;
    }

    item_ids = mvw_idmap_pointers(&c->items);
    user_ids = mvw_idmap_pointers(&c->users);
    cat_names = mvw_idmap_pointers(&c->categories);
    if (item_ids == NULL || user_ids == NULL || cat_names == NULL) {
        fprintf(stderr, "milvuso-worker snapshot: out of memory\n");
        goto done;
    }

    memset(&in, 0, sizeof(in));
    in.generation = generation;
    in.created_at_ms = o->created_at_ms > 0 ? o->created_at_ms
                                            : mv_clock_realtime_ms();
    in.dim = c->dim;
    in.metric = o->metric;
    in.n_items = c->items.n;
    in.item_ids = item_ids;
    in.item_vectors = g.vectors;
    in.item_meta = c->item_meta;
    in.n_categories = c->categories.n;
    in.category_names = cat_names;
    in.graph = &g;
    in.n_users = c->users.n;
    in.user_ids = user_ids;
    in.user_vectors = c->user_vectors;

    if (mv_snapshot_publish(o->out, &in, o->keep, path, sizeof(path), &err)
        != MV_OK)
    {
        fprintf(stderr, "milvuso-worker snapshot: publish: %s\n", err.msg);
        goto done;
    }
    t_done = now_sec();

    printf("published %s generation %llu: %u items (%u deleted), "
           "%u categories, %u users, dim %u %s, M %u, sq8 %s, "
           "build %.3f s (index %.3f s)\n",
           path, (unsigned long long) generation, c->items.n, n_deleted,
           c->categories.n, c->users.n, c->dim,
           mv_metric_name(o->metric), o->M,
           o->sq8 ? "on" : "off", t_done - t_start, t_index - t_start);
    rc = MVW_EXIT_OK;

done:
    free(item_ids);
    free(user_ids);
    free(cat_names);
    mv_hnsw_free(h);
    return rc;
}


int
mvw_cmd_snapshot(int argc, char **argv)
{
    opts_t         o;
    mvw_catalog_t  c;
    mv_err_t       err;
    uint64_t       generation;
    double         t_start = now_sec();
    int            rc;

    rc = parse_opts(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }

    mvw_catalog_init(&c);
    rc = MVW_EXIT_FAIL;

    if (load_catalog(&o, &c, &err) != MV_OK
        || (o.metric == MV_METRIC_COSINE && check_cosine(&o, &c, &err)
            != MV_OK))
    {
        fprintf(stderr, "milvuso-worker snapshot: %s\n", err.msg);
        goto done;
    }

    /* The directory is made before the long build, so a bad path fails
       fast; an empty directory is all a later failure can leave. */
    if (mvw_offline_out_generation(o.out, o.generation, &generation, &err)
        != MV_OK)
    {
        fprintf(stderr, "milvuso-worker snapshot: %s\n", err.msg);
        goto done;
    }

    rc = build_and_publish(&o, &c, generation, t_start);

done:
    mvw_catalog_free(&c);
    return rc;
}
