/*
 * offline.c -- configuration to trainer parameters, the options the
 * offline commands share, and their publish generation (see offline.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/offline.h"
#include "generation.h"
#include "snapshot.h"
#include "worker.h"


void
mvw_trainer_params_from_config(const mvw_config_t *c,
    mvw_trainer_params_t *p)
{
    mvw_trainer_params_default(p);

    p->mf.dim = c->recommendation.embedding_dim;
    p->mf.loss = c->training.loss;
    p->mf.optim = c->training.optimizer;
    p->mf.lr = (float) c->training.learning_rate;
    p->mf.l2 = (float) c->training.l2;
    p->mf.beta1 = (float) c->training.adam_beta1;
    p->mf.beta2 = (float) c->training.adam_beta2;
    p->mf.eps = (float) c->training.adam_epsilon;
    p->mf.init = c->training.initializer;
    p->mf.init_scale = (float) c->training.init_scale;
    p->mf.init_density = (float) c->training.sparse_density;
    p->mf.item_bias = c->training.item_bias;
    p->mf.seed = c->training.seed;
    p->neg_ratio = c->training.negative_sampling_ratio;
    p->sampler_power = c->training.sampler_power;
    p->lr_decay = c->training.lr_schedule == 1;
    for (int i = 0; i < MV_ACTION_TYPES; i++) {
        p->action_weights[i] = (float) c->training.action_weights[i];
    }
    p->replay_ratio = c->training.replay_ratio;
    p->replay_window = (size_t) c->training.replay_window;
    p->dedupe_window = (size_t) c->training.dedupe_window;
    p->half_life_ms = c->worker.popularity_half_life * 1000.0;
    p->metric = c->recommendation.metric;
    p->hnsw_m = c->recommendation.hnsw_m;
    p->hnsw_ef_construction = c->recommendation.hnsw_ef_construction;
    p->keep = c->worker.keep_generations;
    p->seed = c->training.seed;
}


int
mvw_offline_opt(mvw_offline_opts_t *o, int code, const char *arg,
    const char *cmd, void (*usage)(FILE *out))
{
    mv_err_t  err;

    switch (code) {
    case MVW_OFFLINE_OPT_DATA:
        o->data = arg;
        return 0;
    case MVW_OFFLINE_OPT_FORMAT:
        if (mvw_format_from_name(arg, &o->format, &err) != MV_OK) {
            return mvw_usage_error(cmd, usage, "--format: %s", err.msg);
        }
        return 0;
    case MVW_OFFLINE_OPT_RATING:
        o->weight_from_rating = 1;
        return 0;
    case MVW_OFFLINE_OPT_CONFIG:
        o->config = arg;
        return 0;
    case MVW_OFFLINE_OPT_SET:
        if (o->n_sets == MVW_OFFLINE_MAX_SETS) {
            return mvw_usage_error(cmd, usage, "more than 64 --set: %s",
                                   arg);
        }
        if (strchr(arg, '=') == NULL) {
            return mvw_usage_error(cmd, usage, "--set wants KEY=VALUE, not "
                                   "'%s'", arg);
        }
        o->sets[o->n_sets++] = arg;
        return 0;
    }
    return mvw_usage_error(cmd, usage, "%s", "bad option");
}


int
mvw_offline_config(const mvw_offline_opts_t *o, mvw_config_t *c,
    mv_err_t *err)
{
    extern char  **environ;
    char           key[256];

    if (mvw_config_load(c, o->config, environ, err) != MV_OK) {
        return MV_ERR;
    }
    for (size_t i = 0; i < o->n_sets; i++) {
        const char  *eq = strchr(o->sets[i], '=');
        size_t       len = (size_t) (eq - o->sets[i]);
        mv_err_t     e;

        if (len == 0 || len >= sizeof(key)) {
            return mv_err_set(err, "--set %s: bad key", o->sets[i]);
        }
        memcpy(key, o->sets[i], len);
        key[len] = '\0';
        if (mvw_config_set(c, key, eq + 1, &e) != MV_OK) {
            return mv_err_set(err, "--set %s: %s", o->sets[i], e.msg);
        }
    }
    return MV_OK;
}


void
mvw_offline_load_opts(const mvw_offline_opts_t *o, const mvw_config_t *c,
    float *weights, mvw_load_opts_t *lo)
{
    for (int i = 0; i < MV_ACTION_TYPES; i++) {
        weights[i] = (float) c->training.action_weights[i];
    }
    memset(lo, 0, sizeof(*lo));
    lo->format = o->format;
    lo->action_weights = weights;
    lo->weight_from_rating = o->weight_from_rating;
}


int
mvw_offline_out_generation(const char *dir, uint64_t requested,
    uint64_t *generation, mv_err_t *err)
{
    uint64_t  newest;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return mv_err_set(err, "mkdir %s: %s", dir, strerror(errno));
    }
    if (mv_generation_newest(dir, &newest, err) != MV_OK) {
        return MV_ERR;
    }

    if (requested == 0) {
        if (newest == UINT64_MAX - 1) {
            return mv_err_set(err, "%s: generations exhausted", dir);
        }
        *generation = newest + 1;
        return MV_OK;
    }

    if (requested <= newest) {
        return mv_err_set(err, "--generation %llu is not newer than %llu, "
                          "the newest in %s", (unsigned long long) requested,
                          (unsigned long long) newest, dir);
    }
    *generation = requested;
    return MV_OK;
}
