/*
 * cmd_eval.c -- `milvuso-worker eval`: split a dataset, train the model on
 * the training part with exactly the code the daemon uses online
 * (mvw_trainer_fit: the same learner, sampler, optimiser and parameters
 * from the same configuration keys), and rank every item not in each
 * user's training set (eval.h).  The popularity and random baselines are
 * evaluated on the same split in the same run, so the table compares like
 * with like.
 *
 *   milvuso-worker eval --data u.data --split random:0.8 --k 10
 *       [--seed 42] [--config FILE] [--set KEY=VALUE ...] [--json]
 *       [--save-split DIR]
 *
 * --save-split writes DIR/train.tsv and DIR/test.tsv (user, item, weight,
 * time) so that another implementation (the benchmark's Python baselines)
 * can be measured on the very same split.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/logging.h"
#include "cli/offline.h"
#include "data/eval.h"
#include "worker.h"

typedef struct eval_opts {
    mvw_offline_opts_t   off;
    const char          *split;
    uint32_t             k;
    uint64_t             seed;
    int                  json;
    int                  verbose;
    const char          *save_split;
} eval_opts_t;

typedef struct progress {
    int       verbose;
    double    t0;
} progress_t;


void
mvw_cmd_eval_usage(FILE *out)
{
    fprintf(out,
        "usage: milvuso-worker eval --data FILE [options]\n"
        "\n"
        "Splits the data, trains the model on the training part (the\n"
        "daemon's own model code and [training] settings) and reports\n"
        "Precision, Recall, NDCG, MAP and HitRate at K, catalogue\n"
        "coverage, intra-list diversity and novelty for the model and the\n"
        "popularity and random baselines.\n"
        "\n"
        "options:\n"
        MVW_OFFLINE_USAGE
        "  --split S          random:FRAC (default random:0.8, per user),\n"
        "                     leave-last-out, or files:BASE,TEST (then\n"
        "                     --data is not used)\n"
        "  --seed N           split and baseline seed (default 42)\n"
        "  --k K              list length (default 10)\n"
        "  --json             one JSON object instead of the table\n"
        "  --save-split DIR   also write DIR/train.tsv and DIR/test.tsv\n"
        "  --verbose          per-epoch loss on stderr\n"
        "  -h, --help         this text\n");
}


static double
now_s(void)
{
    return (double) mv_clock_monotonic_us() / 1e6;
}


static int
on_epoch(void *ctx, uint32_t epoch, double mean_loss)
{
    progress_t  *p = ctx;

    if (p->verbose) {
        fprintf(stderr, "epoch %u: loss %.5f (%.1f s)\n", epoch, mean_loss,
                now_s() - p->t0);
    }
    return 0;
}


static void
mf_scorer(void *ctx, const uint32_t *users, size_t n, float *scores)
{
    mvw_mf_score(ctx, users, n, scores);
}


static int
parse_opts(int argc, char **argv, eval_opts_t *o)
{
    enum { O_SPLIT = 256, O_SEED, O_K, O_JSON, O_SAVE, O_VERBOSE };
    static const struct option  longopts[] = {
        MVW_OFFLINE_LONGOPTS,
        { "split",      required_argument, NULL, O_SPLIT },
        { "seed",       required_argument, NULL, O_SEED },
        { "k",          required_argument, NULL, O_K },
        { "json",       no_argument,       NULL, O_JSON },
        { "save-split", required_argument, NULL, O_SAVE },
        { "verbose",    no_argument,       NULL, O_VERBOSE },
        { "help",       no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int  c, rc;

    memset(o, 0, sizeof(*o));
    o->split = "random:0.8";
    o->k = 10;
    o->seed = 42;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            mvw_cmd_eval_usage(stdout);
            return MVW_EXIT_OK;
        case O_SPLIT:
            o->split = optarg;
            break;
        case O_SEED:
            if (mvw_parse_u64(optarg, 0, UINT64_MAX, &o->seed) != 0) {
                return mvw_usage_error("eval", mvw_cmd_eval_usage,
                                       "--seed wants a number, not '%s'",
                                       optarg);
            }
            break;
        case O_K:
            if (mvw_parse_u32(optarg, 1, MV_SEARCH_K_MAX, &o->k) != 0) {
                return mvw_usage_error("eval", mvw_cmd_eval_usage,
                                       "--k wants 1.."
                                       MVW_STRINGIFY(MV_SEARCH_K_MAX)
                                       ", not '%s'", optarg);
            }
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_SAVE:
            o->save_split = optarg;
            break;
        case O_VERBOSE:
            o->verbose = 1;
            break;
        default:
            rc = mvw_offline_opt(&o->off, c, optarg, "eval",
                                 mvw_cmd_eval_usage);
            if (rc != 0) {
                return rc;
            }
        }
    }
    if (optind != argc) {
        return mvw_usage_error("eval", mvw_cmd_eval_usage,
                               "unexpected argument '%s'", argv[optind]);
    }
    if (o->off.data == NULL && strncmp(o->split, "files:", 6) != 0) {
        return mvw_usage_error("eval", mvw_cmd_eval_usage, "%s",
                               "--data is required");
    }
    return -1;
}


/* Loads and splits as --split says. */
static int
load_split(const eval_opts_t *o, const mvw_config_t *cfg,
    mvw_dataset_t *train, mvw_dataset_t *test, mv_err_t *err)
{
    mvw_load_opts_t  lo;
    mvw_dataset_t    all;
    float            weights[MV_ACTION_TYPES];
    int              rc;

    mvw_offline_load_opts(&o->off, cfg, weights, &lo);

    if (strncmp(o->split, "files:", 6) == 0) {
        char        base[4096];
        const char *comma = strchr(o->split + 6, ',');
        size_t      len;

        if (comma == NULL || comma == o->split + 6 || comma[1] == '\0') {
            return mv_err_set(err, "--split files: wants BASE,TEST");
        }
        len = (size_t) (comma - (o->split + 6));
        if (len >= sizeof(base)) {
            return mv_err_set(err, "--split: path too long");
        }
        memcpy(base, o->split + 6, len);
        base[len] = '\0';
        return mvw_dataset_load_pair_opts(base, comma + 1, &lo, train, test,
                                          err);
    }

    mvw_dataset_init(&all);
    if (mvw_dataset_load_opts(&all, o->off.data, &lo, err) != MV_OK) {
        mvw_dataset_free(&all);
        return MV_ERR;
    }

    if (strncmp(o->split, "random:", 7) == 0) {
        char    *end;
        double   frac = strtod(o->split + 7, &end);

        if (end == o->split + 7 || *end != '\0' || !(frac > 0.0)
            || !(frac < 1.0))
        {
            mvw_dataset_free(&all);
            return mv_err_set(err, "--split random:FRAC wants 0 < FRAC < "
                              "1, not \"%s\"", o->split + 7);
        }
        rc = mvw_split_random(&all, frac, o->seed, train, test, err);
    } else if (strcmp(o->split, "leave-last-out") == 0) {
        rc = mvw_split_leave_last_out(&all, train, test, err);
    } else {
        rc = mv_err_set(err, "unknown --split \"%s\" (random:FRAC, "
                        "leave-last-out, files:BASE,TEST)", o->split);
    }
    mvw_dataset_free(&all);
    return rc;
}


static int
save_split(const char *dir, const mvw_dataset_t *train,
    const mvw_dataset_t *test, mv_err_t *err)
{
    char  path[4200];

    if (mkdir(dir, 0755) != 0) {
        struct stat  st;

        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            return mv_err_set(err, "cannot create directory %s", dir);
        }
    }
    snprintf(path, sizeof(path), "%s/train.tsv", dir);
    if (mvw_dataset_write_tsv(train, path, err) != MV_OK) {
        return MV_ERR;
    }
    snprintf(path, sizeof(path), "%s/test.tsv", dir);
    return mvw_dataset_write_tsv(test, path, err);
}


int
mvw_cmd_eval(int argc, char **argv)
{
    eval_opts_t               o;
    mvw_config_t             *cfg = NULL;
    mvw_dataset_t             train, test;
    mvw_trainer_params_t      tp;
    mvw_trainer_t            *t = NULL;
    mvw_popularity_scorer_t   pop;
    mvw_random_scorer_t       rnd;
    mvw_eval_result_t         res[3];
    const char               *names[3] = { "milvuso-mf", "popularity",
                                           "random" };
    progress_t                pr;
    mv_err_t                  err;
    double                    t_train = 0.0;
    int                       rc, status = MVW_EXIT_FAIL;

    rc = parse_opts(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }

    mvw_dataset_init(&train);
    mvw_dataset_init(&test);
    memset(&pop, 0, sizeof(pop));

    cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        fprintf(stderr, "milvuso-worker eval: out of memory\n");
        return MVW_EXIT_FAIL;
    }
    if (mvw_offline_config(&o.off, cfg, &err) != MV_OK
        || load_split(&o, cfg, &train, &test, &err) != MV_OK
        || (o.save_split != NULL
            && save_split(o.save_split, &train, &test, &err) != MV_OK))
    {
        fprintf(stderr, "milvuso-worker eval: %s\n", err.msg);
        goto done;
    }

    mvw_trainer_params_from_config(cfg, &tp);
    tp.half_life_ms = 0.0;
    t = mvw_trainer_new(&tp, &err);
    pr.verbose = o.verbose;
    pr.t0 = now_s();
    if (t == NULL
        || mvw_trainer_fit(t, &train, cfg->training.epochs, on_epoch, &pr,
                           &err) != MV_OK)
    {
        fprintf(stderr, "milvuso-worker eval: training: %s\n", err.msg);
        goto done;
    }
    t_train = now_s() - pr.t0;

    mvw_eval_random_init(&rnd, &train, o.seed);
    if (mvw_eval(&train, &test, o.k, mf_scorer, mvw_trainer_model(t),
                 &res[0], &err) != MV_OK
        || mvw_eval_popularity_init(&pop, &train, &err) != MV_OK
        || mvw_eval(&train, &test, o.k, mvw_eval_popularity_scorer, &pop,
                    &res[1], &err) != MV_OK
        || mvw_eval(&train, &test, o.k, mvw_eval_random_scorer, &rnd,
                    &res[2], &err) != MV_OK)
    {
        fprintf(stderr, "milvuso-worker eval: %s\n", err.msg);
        goto done;
    }

    if (o.json) {
        rc = mvw_eval_print_json(stdout, names, res, 3, o.k);
    } else {
        printf("data: %s  split: %s  seed: %llu  train: %zu  test: %zu  "
               "users: %u  items: %u\n",
               o.off.data ? o.off.data : "-", o.split,
               (unsigned long long) o.seed, train.n, test.n, train.users.n,
               train.items.n);
        printf("model: %s loss, %s, dim %u, lr %g, l2 %g, %g negatives, "
               "%u epochs, trained in %.2f s (%.0f updates/s)\n",
               mvw_mf_loss_name(tp.mf.loss), mvw_optim_name(tp.mf.optim),
               tp.mf.dim, (double) tp.mf.lr, (double) tp.mf.l2,
               tp.neg_ratio, cfg->training.epochs, t_train,
               t_train > 0 ? (double) train.n * cfg->training.epochs
                             / t_train : 0.0);
        rc = mvw_eval_print_table(stdout, names, res, 3, o.k);
    }
    status = rc == MV_OK ? MVW_EXIT_OK : MVW_EXIT_FAIL;

done:
    mvw_trainer_free(t);
    mvw_eval_popularity_free(&pop);
    mvw_dataset_free(&train);
    mvw_dataset_free(&test);
    free(cfg);
    return status;
}
