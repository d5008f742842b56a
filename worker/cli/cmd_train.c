/*
 * cmd_train.c -- `milvuso-worker train`: train the model on a whole
 * interactions file with the daemon's model code (mvw_trainer_fit) and
 * publish it as a snapshot that nginx serves and that the daemon can
 * resume from.
 *
 *   milvuso-worker train --data u.data --out DIR [--format movielens]
 *       [--config FILE] [--set KEY=VALUE ...] [--generation N]
 *
 * Items get their summed interaction weight as popularity (so cold users
 * get the most-interacted items), no category, and created_at = their
 * first interaction.  The snapshot carries no stream position: a daemon
 * started on it reads its action log from the beginning.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/logging.h"
#include "cli/offline.h"
#include "publish/trainer_snapshot.h"
#include "worker.h"

typedef struct train_opts {
    mvw_offline_opts_t   off;
    const char          *out;
    uint64_t             generation;
    int                  verbose;
} train_opts_t;


void
mvw_cmd_train_usage(FILE *out)
{
    fprintf(out,
        "usage: milvuso-worker train --data FILE --out DIR [options]\n"
        "\n"
        "Trains the model on every interaction of FILE and publishes it\n"
        "into DIR (snapshot-<generation>.mvs and the `current` link).\n"
        "\n"
        "options:\n"
        MVW_OFFLINE_USAGE
        "  --out DIR          publish directory (created if missing)\n"
        "  --generation N     generation number, newer than every file in\n"
        "                     DIR (default: one more than the newest)\n"
        "  --verbose          per-epoch loss on stderr\n"
        "  -h, --help         this text\n");
}


static int
on_epoch(void *ctx, uint32_t epoch, double mean_loss)
{
    if (*(int *) ctx) {
        fprintf(stderr, "epoch %u: loss %.5f\n", epoch, mean_loss);
    }
    return 0;
}


static int
parse_opts(int argc, char **argv, train_opts_t *o)
{
    enum { O_OUT = 256, O_GEN, O_VERBOSE };
    static const struct option  longopts[] = {
        MVW_OFFLINE_LONGOPTS,
        { "out",        required_argument, NULL, O_OUT },
        { "generation", required_argument, NULL, O_GEN },
        { "verbose",    no_argument,       NULL, O_VERBOSE },
        { "help",       no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int  c, rc;

    memset(o, 0, sizeof(*o));
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            mvw_cmd_train_usage(stdout);
            return MVW_EXIT_OK;
        case O_OUT:
            o->out = optarg;
            break;
        case O_GEN:
            if (mvw_parse_u64(optarg, 1, UINT64_MAX, &o->generation) != 0) {
                return mvw_usage_error("train", mvw_cmd_train_usage,
                                       "--generation wants a number >= 1, "
                                       "not '%s'", optarg);
            }
            break;
        case O_VERBOSE:
            o->verbose = 1;
            break;
        default:
            rc = mvw_offline_opt(&o->off, c, optarg, "train",
                                 mvw_cmd_train_usage);
            if (rc != 0) {
                return rc;
            }
        }
    }
    if (optind != argc) {
        return mvw_usage_error("train", mvw_cmd_train_usage,
                               "unexpected argument '%s'", argv[optind]);
    }
    if (o->off.data == NULL || o->out == NULL) {
        return mvw_usage_error("train", mvw_cmd_train_usage, "%s",
                               "--data and --out are required");
    }
    return -1;
}


int
mvw_cmd_train(int argc, char **argv)
{
    train_opts_t          o;
    mvw_config_t         *cfg;
    mvw_dataset_t         d;
    mvw_load_opts_t       lo;
    mvw_trainer_params_t  tp;
    mvw_trainer_t        *t = NULL;
    mvw_trainer_stats_t   st;
    float                 weights[MV_ACTION_TYPES];
    char                  path[4200];
    mv_err_t              err;
    int64_t               t0;
    int                   rc, status = MVW_EXIT_FAIL;

    rc = parse_opts(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }

    mvw_dataset_init(&d);
    cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        fprintf(stderr, "milvuso-worker train: out of memory\n");
        return MVW_EXIT_FAIL;
    }
    if (mvw_offline_config(&o.off, cfg, &err) != MV_OK) {
        fprintf(stderr, "milvuso-worker train: %s\n", err.msg);
        goto done;
    }

    mvw_offline_load_opts(&o.off, cfg, weights, &lo);
    if (mvw_dataset_load_opts(&d, o.off.data, &lo, &err) != MV_OK) {
        fprintf(stderr, "milvuso-worker train: %s\n", err.msg);
        goto done;
    }

    /* The directory and the generation are settled before the long fit,
       so a bad path or number fails fast. */
    if (mvw_offline_out_generation(o.out, o.generation, &o.generation, &err)
        != MV_OK)
    {
        fprintf(stderr, "milvuso-worker train: %s\n", err.msg);
        goto done;
    }

    mvw_trainer_params_from_config(cfg, &tp);
    tp.half_life_ms = 0.0;
    t = mvw_trainer_new(&tp, &err);
    t0 = mv_clock_monotonic_us();
    if (t == NULL
        || mvw_trainer_fit(t, &d, cfg->training.epochs, on_epoch,
                           &o.verbose, &err) != MV_OK)
    {
        fprintf(stderr, "milvuso-worker train: %s\n", err.msg);
        goto done;
    }
    mvw_trainer_set_generation(t, o.generation - 1);
    if (mvw_trainer_publish(t, o.out, NULL, 0, mv_clock_realtime_ms(), path,
                            sizeof(path), &err) != MV_OK)
    {
        fprintf(stderr, "milvuso-worker train: publish: %s\n", err.msg);
        goto done;
    }

    mvw_trainer_stats(t, &st);
    printf("published %s: generation %llu, %u items, %u users, %zu "
           "interactions, %u epochs in %.2f s\n", path,
           (unsigned long long) st.generation, st.n_items, st.n_users, d.n,
           cfg->training.epochs, (double) (mv_clock_monotonic_us() - t0) / 1e6);
    status = MVW_EXIT_OK;

done:
    mvw_trainer_free(t);
    mvw_dataset_free(&d);
    free(cfg);
    return status;
}
